/* Child processes of the agent; see proc.h. A child is started with
 * clone(CLONE_VM | CLONE_VFORK), as glibc's posix_spawn does, rather than
 * posix_spawn itself, because it may have to enter cgroups or a private
 * mount namespace between clone and exec, which posix_spawn cannot express;
 * and rather than fork, because fork copies the page tables of the whole
 * multi-threaded daemon, the child tears them down again at exec, and every
 * thread of the daemon then takes a copy-on-write fault on each page it
 * writes: measured in stratosd, a spawn of crun took 3.6 ms with fork and
 * 0.5 ms this way, and crun itself ran ~2 ms faster, on the path of every
 * server start.
 *
 * The child shares the parent's memory (the calling thread is suspended
 * until it execs or exits, the others run on), so between clone and exec it
 * runs only async-signal-safe system calls on data prepared before the
 * clone, on a stack of its own, touching no lock and no heap; it reports a
 * failed step by writing it into the parent's memory before _exit. All
 * signals are blocked across the clone, and the child resets every handler
 * to the default before it unblocks them, so that no handler of the daemon
 * ever runs in it. */
#include "proc.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "agent/reaper.h"
#include "lib/cleanup.h"
#include "lib/times.h"

extern char **environ;

#define STDERR_TAIL_MAX 4096
/* The child's stack: a few small frames of system calls (posix_spawn's is
 * smaller still), above a guard page. */
#define CHILD_STACK_SIZE (64 * 1024)

/* Pids that a caller waits for (only it reaps them), under one lock with
 * the clone. */
static pthread_mutex_t proc_lock = PTHREAD_MUTEX_INITIALIZER;
static pid_t *reserved;
static size_t n_reserved, cap_reserved;

static void reserve_locked(pid_t pid)
{
    if (n_reserved == cap_reserved) {
        cap_reserved = cap_reserved ? cap_reserved * 2 : 16;
        reserved = st_xrealloc(reserved, cap_reserved * sizeof(*reserved));
    }
    reserved[n_reserved++] = pid;
}

static bool is_reserved_locked(pid_t pid)
{
    for (size_t i = 0; i < n_reserved; i++)
        if (reserved[i] == pid)
            return true;
    return false;
}

static void unreserve(pid_t pid)
{
    pthread_mutex_lock(&proc_lock);
    for (size_t i = 0; i < n_reserved; i++) {
        if (reserved[i] == pid) {
            reserved[i] = reserved[--n_reserved];
            break;
        }
    }
    pthread_mutex_unlock(&proc_lock);
}

static int pidfd_open_(pid_t pid)
{
    return (int)syscall(SYS_pidfd_open, pid, 0);
}

int st_proc_subreaper_enable(struct st_err **err)
{
    if (prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) < 0)
        return st_err_errno(err, "prctl(PR_SET_CHILD_SUBREAPER)");
    return 0;
}

int st_proc_find_exec(const char *name, char **ret, struct st_err **err)
{
    if (strchr(name, '/')) {
        *ret = st_strdup(name);
        return 0;
    }
    const char *path = getenv("PATH");
    if (!path || !path[0])
        path = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
    st_autofree char *copy = st_strdup(path);
    char *save = NULL;
    for (char *dir = strtok_r(copy, ":", &save); dir; dir = strtok_r(NULL, ":", &save)) {
        st_autofree char *cand = st_sprintf("%s/%s", dir, name);
        struct stat st;
        if (stat(cand, &st) == 0 && S_ISREG(st.st_mode) && access(cand, X_OK) == 0) {
            *ret = st_steal(&cand);
            return 0;
        }
    }
    return st_err_set(err, -ENOENT, "'%s' not found in PATH (%s)", name, path);
}

static const char *const child_steps[] = {
    "setsid",
    "unshare(CLONE_NEWNS)",
    "making mounts private",
    "detaching the hidden mount",
    "joining a cgroup",
    "redirecting standard streams",
    "exec",
};

/* Everything the child needs, prepared by the parent; the child writes
 * failed_step and failed_errno (it shares the parent's memory). */
struct child_args {
    const char *path;
    const char *const *argv;
    const struct st_proc_opts *opts;
    int fds[3];               /* stdin, stdout, stderr */
    volatile int failed_step; /* index into child_steps; -1: none */
    volatile int failed_errno;
};

/* The child runs on a stack AddressSanitizer does not know (its _exit would
 * warn of one), so the sanitizer keeps out of these two functions. */
#define CHILD_CODE __attribute__((no_sanitize_address))

static CHILD_CODE __attribute__((noreturn)) void child_fail(struct child_args *a, int step)
{
    a->failed_errno = errno;
    a->failed_step = step;
    _exit(127);
}

/* Runs in the child, on its own stack, in the parent's memory. */
static CHILD_CODE int child_main(void *arg)
{
    struct child_args *a = arg;
    const struct st_proc_opts *o = a->opts;
    /* First, while every signal is still blocked: no handler of the parent
     * may run here (the table is the child's own copy: no CLONE_SIGHAND). */
    /* The raw system call: glibc's sigaction refuses signals 32 and 33
     * (its own), which a parent may still have left ignored. */
    struct {
        void (*handler)(int);
        unsigned long flags;
        void (*restorer)(void);
        uint64_t mask;
    } dfl = {.handler = SIG_DFL};
    for (int s = 1; s < NSIG; s++)
        if (s != SIGKILL && s != SIGSTOP)
            syscall(SYS_rt_sigaction, s, &dfl, NULL, sizeof(dfl.mask));
    if (o->new_session && setsid() < 0)
        child_fail(a, 0);
    if (o->hide_mount) {
        if (unshare(CLONE_NEWNS) < 0)
            child_fail(a, 1);
        if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0)
            child_fail(a, 2);
        if (umount2(o->hide_mount, MNT_DETACH) < 0 && errno != EINVAL)
            child_fail(a, 3);
    }
    for (const char *const *f = o->join_cgroups; f && *f; f++) {
        int fd = open(*f, O_WRONLY | O_CLOEXEC);
        if (fd < 0 || write(fd, "0\n", 2) != 2)
            child_fail(a, 4);
        close(fd);
    }
    /* Lift the three above 2 first, so that one of them already on 0-2 (an
     * agent started with closed standard streams) is not clobbered. The
     * descriptor table is the child's own (no CLONE_FILES). */
    int fds[3] = {a->fds[0], a->fds[1], a->fds[2]};
    for (int i = 0; i < 3; i++)
        if (fds[i] < 3 && (fds[i] = fcntl(fds[i], F_DUPFD_CLOEXEC, 3)) < 0)
            child_fail(a, 5);
    for (int i = 0; i < 3; i++)
        if (dup2(fds[i], i) < 0)
            child_fail(a, 5);
    /* The agent's own descriptors (sockets, the store) stay out of the child
     * even where a library forgot O_CLOEXEC. */
    syscall(SYS_close_range, 3U, ~0U, 4U /* CLOSE_RANGE_CLOEXEC */);
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
    execve(a->path, (char *const *)a->argv, environ);
    child_fail(a, 6);
}

int st_proc_spawn(const char *const argv[], const struct st_proc_opts *opts, pid_t *ret_pid,
                  struct st_err **err)
{
    static const struct st_proc_opts none = {.stdin_fd = -1, .stdout_fd = -1, .stderr_fd = -1};
    const struct st_proc_opts *o = opts ? opts : &none;
    if (!argv || !argv[0])
        return st_err_set(err, -EINVAL, "empty argv");
    st_autofree char *path = NULL;
    int r = st_proc_find_exec(argv[0], &path, err);
    if (r < 0)
        return r;
    st_autoclose int devnull = open("/dev/null", O_RDWR | O_CLOEXEC);
    if (devnull < 0)
        return st_err_errno(err, "open /dev/null");
    struct child_args a = {
        .path = path,
        .argv = argv,
        .opts = o,
        .fds = {o->stdin_fd >= 0 ? o->stdin_fd : devnull,
                o->stdout_fd >= 0 ? o->stdout_fd : devnull,
                o->stderr_fd >= 0 ? o->stderr_fd : devnull},
        .failed_step = -1,
    };
    long page = sysconf(_SC_PAGESIZE);
    size_t map_size = CHILD_STACK_SIZE + (size_t)page;
    char *stack = mmap(NULL, map_size, PROT_READ | PROT_WRITE,
                       MAP_PRIVATE | MAP_ANONYMOUS | MAP_STACK, -1, 0);
    if (stack == MAP_FAILED)
        return st_err_errno(err, "mmap for %s", argv[0]);
    if (mprotect(stack, (size_t)page, PROT_NONE) < 0) { /* the guard page */
        r = st_err_errno(err, "mprotect");
        munmap(stack, map_size);
        return r;
    }

    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    pthread_mutex_lock(&proc_lock);
    /* The stack grows down on every architecture Debian runs this on. */
    pid_t pid = clone(child_main, stack + map_size, CLONE_VM | CLONE_VFORK | SIGCHLD, &a);
    int saved = errno;
    if (pid > 0)
        reserve_locked(pid);
    pthread_mutex_unlock(&proc_lock);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    /* CLONE_VFORK: the child has exec'd or exited, its stack is free. */
    munmap(stack, map_size);
    if (pid < 0) {
        errno = saved;
        return st_err_errno(err, "clone for %s", argv[0]);
    }
    if (a.failed_step >= 0) {
        int step = a.failed_step, e = a.failed_errno;
        int status;
        st_proc_wait(pid, -1, &status, NULL);
        const char *what = step < (int)ST_ARRAY_SIZE(child_steps) ? child_steps[step] : "?";
        return st_err_set(err, -e, "starting %s: %s: %s", path, what, strerror(e));
    }
    *ret_pid = pid;
    return 0;
}

int st_proc_wait(pid_t pid, int timeout_ms, int *ret_status, struct st_err **err)
{
    int status = 0;
    int result = 0;
    if (timeout_ms >= 0) {
        st_autoclose int pfd = pidfd_open_(pid);
        if (pfd >= 0) {
            struct pollfd p = {.fd = pfd, .events = POLLIN};
            int64_t deadline = st_time_mono_ns() + (int64_t)timeout_ms * 1000000;
            for (;;) {
                int64_t left = (deadline - st_time_mono_ns()) / 1000000;
                int pr = poll(&p, 1, left > 0 ? (int)left : 0);
                if (pr > 0)
                    break;
                if (pr < 0 && errno == EINTR)
                    continue;
                kill(pid, SIGKILL);
                result = st_err_set(err, -ETIMEDOUT, "pid %d did not exit within %d ms; killed",
                                    (int)pid, timeout_ms);
                break;
            }
        }
    }
    pid_t w;
    do
        w = waitpid(pid, &status, 0);
    while (w < 0 && errno == EINTR);
    int saved = errno;
    unreserve(pid);
    if (w < 0 && result == 0) {
        errno = saved;
        return st_err_errno(err, "waitpid %d", (int)pid);
    }
    if (ret_status)
        *ret_status = status;
    return result;
}

char *st_proc_describe_status(int status)
{
    if (WIFEXITED(status))
        return st_sprintf("exited with %d", WEXITSTATUS(status));
    if (WIFSIGNALED(status))
        return st_sprintf("killed by signal %d (%s)", WTERMSIG(status),
                          strsignal(WTERMSIG(status)));
    return st_sprintf("wait status 0x%x", status);
}

/* The last non-empty line of a buffer, for error messages. */
static char *last_line(const char *buf, size_t len)
{
    while (len && (buf[len - 1] == '\n' || buf[len - 1] == ' ' || buf[len - 1] == '\r'))
        len--;
    size_t start = len;
    while (start && buf[start - 1] != '\n')
        start--;
    return st_strndup(buf + start, len - start);
}

int st_proc_run(const char *const argv[], const struct st_proc_opts *opts, int timeout_ms,
                size_t max_out, char **ret_out, struct st_err **err)
{
    struct st_proc_opts o =
        opts ? *opts : (struct st_proc_opts){.stdin_fd = -1, .stdout_fd = -1, .stderr_fd = -1};
    int outp[2] = {-1, -1}, errp[2] = {-1, -1};
    if (pipe2(outp, O_CLOEXEC) < 0 || pipe2(errp, O_CLOEXEC) < 0) {
        int r = st_err_errno(err, "pipe");
        for (int i = 0; i < 2; i++) {
            if (outp[i] >= 0)
                close(outp[i]);
            if (errp[i] >= 0)
                close(errp[i]);
        }
        return r;
    }
    o.stdout_fd = outp[1];
    o.stderr_fd = errp[1];
    pid_t pid;
    int r = st_proc_spawn(argv, &o, &pid, err);
    close(outp[1]);
    close(errp[1]);
    if (r < 0) {
        close(outp[0]);
        close(errp[0]);
        return r;
    }

    st_autofree char *out = st_xcalloc(1, max_out + 1);
    size_t out_len = 0;
    char tail[STDERR_TAIL_MAX];
    size_t tail_len = 0;
    struct pollfd p[2] = {{.fd = outp[0], .events = POLLIN}, {.fd = errp[0], .events = POLLIN}};
    int64_t deadline = timeout_ms >= 0 ? st_time_mono_ns() + (int64_t)timeout_ms * 1000000 : 0;
    while (p[0].fd >= 0 || p[1].fd >= 0) {
        int wait_ms = -1;
        if (timeout_ms >= 0) {
            int64_t left = (deadline - st_time_mono_ns()) / 1000000;
            if (left <= 0)
                break; /* st_proc_wait below kills it */
            wait_ms = (int)left;
        }
        int pr = poll(p, 2, wait_ms);
        if (pr < 0 && errno == EINTR)
            continue;
        if (pr <= 0)
            break;
        for (int i = 0; i < 2; i++) {
            if (p[i].fd < 0 || !p[i].revents)
                continue;
            char buf[4096];
            ssize_t n = read(p[i].fd, buf, sizeof(buf));
            if (n < 0 && errno == EINTR)
                continue;
            if (n <= 0) {
                close(p[i].fd);
                p[i].fd = -1;
                continue;
            }
            if (i == 0) {
                size_t take = (size_t)n < max_out - out_len ? (size_t)n : max_out - out_len;
                memcpy(out + out_len, buf, take);
                out_len += take;
            } else {
                if ((size_t)n >= sizeof(tail)) {
                    memcpy(tail, buf + n - sizeof(tail), sizeof(tail));
                    tail_len = sizeof(tail);
                } else {
                    if (tail_len + (size_t)n > sizeof(tail)) {
                        size_t drop = tail_len + (size_t)n - sizeof(tail);
                        memmove(tail, tail + drop, tail_len - drop);
                        tail_len -= drop;
                    }
                    memcpy(tail + tail_len, buf, (size_t)n);
                    tail_len += (size_t)n;
                }
            }
        }
    }
    for (int i = 0; i < 2; i++)
        if (p[i].fd >= 0)
            close(p[i].fd);

    int left_ms = -1;
    if (timeout_ms >= 0) {
        int64_t left = (deadline - st_time_mono_ns()) / 1000000;
        left_ms = left > 0 ? (int)left : 0;
    }
    int status;
    r = st_proc_wait(pid, left_ms, &status, err);
    if (r < 0)
        return st_err_prefix(err, r, "running %s", argv[0]);
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
        st_autofree char *how = st_proc_describe_status(status);
        st_autofree char *line = last_line(tail, tail_len);
        return st_err_set(err, WIFEXITED(status) ? -EIO : -EINTR, "%s %s%s%s", argv[0], how,
                          line[0] ? ": " : "", line);
    }
    if (ret_out)
        *ret_out = st_steal(&out);
    return 0;
}

int st_proc_reap(pid_t pid, int *ret_status)
{
    int result;
    pthread_mutex_lock(&proc_lock);
    if (is_reserved_locked(pid)) {
        result = 0;
    } else {
        int status;
        pid_t w = waitpid(pid, &status, WNOHANG);
        if (w == pid) {
            *ret_status = status;
            result = 1;
        } else if (w == 0) {
            result = 0;
        } else {
            result = st_reaper_exit_status(pid, ret_status) == 0 ? 1 : -ECHILD;
        }
    }
    pthread_mutex_unlock(&proc_lock);
    return result;
}

int st_proc_wait_exit(pid_t pid, int timeout_ms)
{
    if (pid <= 0)
        return 0;
    st_autoclose int pfd = pidfd_open_(pid);
    if (pfd < 0)
        return errno == ESRCH ? 0 : -errno;
    struct pollfd p = {.fd = pfd, .events = POLLIN};
    int64_t deadline = st_time_mono_ns() + (int64_t)timeout_ms * 1000000;
    for (;;) {
        int64_t left = (deadline - st_time_mono_ns()) / 1000000;
        int pr = poll(&p, 1, left > 0 ? (int)left : 0);
        if (pr > 0)
            return 0;
        if (pr < 0 && errno == EINTR)
            continue;
        return -ETIMEDOUT;
    }
}
