/* Tests of the agent's child processes (src/agent/drivers/proc.c), through
 * which the container driver runs crun and every other tool: output
 * captured, failures and timeouts reported with their cause (including a
 * step between fork and exec), reaping, a child that starts with a clean
 * signal state and no stray descriptor while the agent's own is untouched,
 * a mount hidden from the child (needs root; skipped otherwise), and
 * threads spawning at once. */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/wait.h>
#include <unistd.h>
#include <cmocka.h>

#include "agent/drivers/proc.h"
#include "container_harness.h"
#include "lib/cleanup.h"
#include "lib/err.h"
#include "lib/times.h"

/* ---------------------------------------------------------- processes */

static void test_proc(void **state)
{
    (void)state;
    st_autofree char *out = NULL;
    st_autoptr(st_err) err = NULL;
    assert_int_equal(
        st_proc_run((const char *const[]){"echo", "a b", NULL}, NULL, 5000, 100, &out, &err), 0);
    assert_string_equal(out, "a b\n");

    int r =
        st_proc_run((const char *const[]){"sh", "-c", "echo first >&2; echo why >&2; exit 3", NULL},
                    NULL, 5000, 100, NULL, &err);
    assert_int_equal(r, -EIO);
    assert_non_null(strstr(err->msg, "exited with 3: why"));
    st_err_clear(&err);

    int64_t t0 = st_time_mono_ns();
    r = st_proc_run((const char *const[]){"sleep", "10", NULL}, NULL, 200, 100, NULL, &err);
    assert_int_equal(r, -ETIMEDOUT);
    assert_true(st_time_mono_ns() - t0 < 3000000000LL);
    st_err_clear(&err);

    r = st_proc_run((const char *const[]){"no-such-program-xyz", NULL}, NULL, 1000, 10, NULL, &err);
    assert_int_equal(r, -ENOENT);
    st_err_clear(&err);

    /* A failure between fork and exec comes back as an error naming the step. */
    struct st_proc_opts o = {.stdin_fd = -1,
                             .stdout_fd = -1,
                             .stderr_fd = -1,
                             .join_cgroups =
                                 (const char *const[]){"/nonexistent/cgroup.procs", NULL}};
    pid_t pid;
    r = st_proc_spawn((const char *const[]){"true", NULL}, &o, &pid, &err);
    assert_int_equal(r, -ENOENT);
    assert_non_null(strstr(err->msg, "joining a cgroup"));
    st_err_clear(&err);

    /* st_proc_reap leaves a waited-for child alone; st_proc_wait gets it. */
    assert_int_equal(
        st_proc_spawn((const char *const[]){"sh", "-c", "exit 7", NULL}, NULL, &pid, &err), 0);
    usleep(100000);
    int status = 0;
    assert_int_equal(st_proc_reap(pid, &status), 0);
    assert_int_equal(st_proc_wait(pid, 5000, &status, &err), 0);
    assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 7);
    assert_int_equal(st_proc_wait_exit(pid, 10), 0); /* gone */
}

/* The child starts clean whatever the agent's signal state, which the
 * spawn leaves as it was: the child shares the agent's memory until exec
 * (proc.c), so a reset that leaked back would break the daemon. */
static volatile sig_atomic_t usr1_seen;
static void on_usr1(int sig)
{
    (void)sig;
    usr1_seen = 1;
}

static void test_proc_child_state(void **state)
{
    (void)state;
    struct sigaction handler = {.sa_handler = on_usr1}, ign = {.sa_handler = SIG_IGN};
    struct sigaction old_usr1, old_pipe;
    sigaction(SIGUSR1, &handler, &old_usr1);
    sigaction(SIGPIPE, &ign, &old_pipe);
    sigset_t usr2, old_mask;
    sigemptyset(&usr2);
    sigaddset(&usr2, SIGUSR2);
    pthread_sigmask(SIG_BLOCK, &usr2, &old_mask);
    /* A descriptor someone forgot to mark close-on-exec. */
    int nul = open("/dev/null", O_RDONLY);
    assert_true(nul >= 0);
    int leaky = fcntl(nul, F_DUPFD, 50);
    close(nul);
    assert_true(leaky >= 50);

    struct st_proc_opts o = {.stdin_fd = -1, .stdout_fd = -1, .stderr_fd = -1, .new_session = true};
    st_autofree char *status = NULL, *stat = NULL, *fd = NULL;
    st_autoptr(st_err) err = NULL;
    assert_int_equal(st_proc_run((const char *const[]){"cat", "/proc/self/status", NULL}, &o, 5000,
                                 64 * 1024, &status, &err),
                     0);
    assert_int_equal(st_proc_run((const char *const[]){"cat", "/proc/self/stat", NULL}, &o, 5000,
                                 4096, &stat, &err),
                     0);
    st_autofree char *script =
        st_sprintf("if [ -e /proc/self/fd/%d ]; then echo open; else echo closed; fi", leaky);
    assert_int_equal(
        st_proc_run((const char *const[]){"sh", "-c", script, NULL}, &o, 5000, 100, &fd, &err), 0);
    close(leaky);

    /* Nothing blocked, nothing ignored; its own session; no stray fd. */
    if (!strstr(status, "\nSigBlk:\t0000000000000000\n") ||
        !strstr(status, "\nSigIgn:\t0000000000000000\n"))
        fail_msg("the child's signal state is not clean:\n%s", status);
    int pid = 0, sid = -1;
    const char *paren = strrchr(stat, ')');
    assert_non_null(paren);
    pid = atoi(stat);
    assert_int_equal(sscanf(paren + 2, "%*c %*d %*d %d", &sid), 1);
    assert_int_equal(sid, pid);
    assert_string_equal(fd, "closed\n");

    /* The agent's side is untouched: handler, ignored signal, mask. */
    struct sigaction now;
    sigaction(SIGUSR1, NULL, &now);
    assert_ptr_equal(now.sa_handler, on_usr1);
    sigaction(SIGPIPE, NULL, &now);
    assert_ptr_equal(now.sa_handler, SIG_IGN);
    sigset_t mask;
    pthread_sigmask(SIG_SETMASK, NULL, &mask);
    assert_true(sigismember(&mask, SIGUSR2));
    assert_false(sigismember(&mask, SIGUSR1));
    usr1_seen = 0;
    raise(SIGUSR1);
    assert_int_equal(usr1_seen, 1);

    pthread_sigmask(SIG_SETMASK, &old_mask, NULL);
    sigaction(SIGUSR1, &old_usr1, NULL);
    sigaction(SIGPIPE, &old_pipe, NULL);
}

/* A program that cannot be executed fails st_proc_spawn with exec's errno
 * and the step named, and leaves no child behind. */
static void test_proc_exec_fails(void **state)
{
    const char *tmp = *state;
    st_autofree char *path = st_sprintf("%s/not-executable", tmp);
    write_text(path, "#!/bin/sh\nexit 0\n", 0644);
    pid_t pid = 0;
    st_autoptr(st_err) err = NULL;
    int r = st_proc_spawn((const char *const[]){path, NULL}, NULL, &pid, &err);
    assert_int_equal(r, -EACCES);
    assert_non_null(strstr(err->msg, "exec: Permission denied"));
    assert_int_equal(pid, 0);
    assert_true(waitpid(-1, NULL, WNOHANG) <= 0); /* the failed child is reaped: no zombie */
}

/* hide_mount: the child (and what it runs) does not see the mount; the
 * agent still does. Needs root (mount). */
static void test_proc_hide_mount(void **state)
{
    const char *tmp = *state;
    if (geteuid() != 0) {
        fprintf(stderr, "SKIP test_proc_hide_mount: needs root\n");
        skip();
    }
    st_autofree char *m = st_sprintf("%s/hidden", tmp);
    assert_int_equal(mkdir(m, 0700), 0);
    assert_int_equal(mount("tmpfs", m, "tmpfs", 0, "size=64k"), 0);
    st_autofree char *needle = st_sprintf(" %s ", m);
    struct st_proc_opts o = {.stdin_fd = -1, .stdout_fd = -1, .stderr_fd = -1, .hide_mount = m};
    st_autofree char *child = NULL;
    st_autoptr(st_err) err = NULL;
    int r = st_proc_run((const char *const[]){"cat", "/proc/self/mountinfo", NULL}, &o, 5000,
                        1 << 20, &child, &err);
    st_autofree char *ours = read_text("/proc/self/mountinfo");
    umount2(m, MNT_DETACH);
    assert_int_equal(r, 0);
    assert_non_null(strstr(child, " / / ")); /* it did see its mounts */
    assert_null(strstr(child, needle));
    assert_non_null(strstr(ours, needle));
}

/* Threads spawning at once each get their own child and its status (each
 * child has a stack of its own in the shared address space). */
#define SPAWN_THREADS 4
#define SPAWNS_EACH   25

static void *spawn_many(void *arg)
{
    intptr_t base = (intptr_t)arg;
    for (int i = 0; i < SPAWNS_EACH; i++) {
        int code = (int)(base * SPAWNS_EACH + i) % 250;
        st_autofree char *script = st_sprintf("exit %d", code);
        pid_t pid;
        st_autoptr(st_err) err = NULL;
        if (st_proc_spawn((const char *const[]){"sh", "-c", script, NULL}, NULL, &pid, &err) < 0)
            return (void *)1;
        int status;
        if (st_proc_wait(pid, 10000, &status, &err) < 0 || !WIFEXITED(status) ||
            WEXITSTATUS(status) != code)
            return (void *)1;
    }
    return NULL;
}

static void test_proc_concurrent(void **state)
{
    (void)state;
    pthread_t t[SPAWN_THREADS];
    for (intptr_t i = 0; i < SPAWN_THREADS; i++)
        assert_int_equal(pthread_create(&t[i], NULL, spawn_many, (void *)i), 0);
    int failed = 0;
    for (int i = 0; i < SPAWN_THREADS; i++) {
        void *r;
        pthread_join(t[i], &r);
        failed += r != NULL;
    }
    assert_int_equal(failed, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_proc),
        cmocka_unit_test(test_proc_child_state),
        cmocka_unit_test_setup_teardown(test_proc_exec_fails, tmp_setup, tmp_teardown),
        cmocka_unit_test_setup_teardown(test_proc_hide_mount, tmp_setup, tmp_teardown),
        cmocka_unit_test(test_proc_concurrent),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
