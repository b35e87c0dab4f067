/* moby's default seccomp profile (profiles/seccomp/default.json, moby/moby
 * commit 00f3d189e420) transcribed as data, and the evaluation of its
 * conditions that moby does in profiles/seccomp/seccomp_linux.go. Rules keep
 * moby's order and grouping so that a diff against a newer default.json is a
 * diff of this table. The architectures stratos runs on (x86_64, aarch64)
 * come from its archMap; the rules for other architectures (ppc64le, s390,
 * riscv64) are kept, and drop out when the table is evaluated.
 *
 * Below the table: the translation of a linux.seccomp object to BPF with
 * libseccomp, crun's (libcrun/seccomp.c, libcrun_generate_seccomp) call for
 * call, and the per-process cache of compiled profiles. */
#include "seccomp.h"

#include <ctype.h>
#include <errno.h>
#include <openssl/evp.h>
#include <pthread.h>
#include <seccomp.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "lib/cleanup.h"
#include "lib/json.h"
#include "lib/log.h"
#include "lib/times.h"

#define NAMES(...) ((const char *const[]){__VA_ARGS__, NULL})

/* The system calls moby allows to every container, unconditionally. */
static const char *const allowed[] = {
    "accept",
    "accept4",
    "access",
    "adjtimex",
    "alarm",
    "bind",
    "brk",
    "capget",
    "capset",
    "chdir",
    "chmod",
    "chown",
    "chown32",
    "clock_adjtime",
    "clock_adjtime64",
    "clock_getres",
    "clock_getres_time64",
    "clock_gettime",
    "clock_gettime64",
    "clock_nanosleep",
    "clock_nanosleep_time64",
    "close",
    "close_range",
    "connect",
    "copy_file_range",
    "creat",
    "dup",
    "dup2",
    "dup3",
    "epoll_create",
    "epoll_create1",
    "epoll_ctl",
    "epoll_ctl_old",
    "epoll_pwait",
    "epoll_pwait2",
    "epoll_wait",
    "epoll_wait_old",
    "eventfd",
    "eventfd2",
    "execve",
    "execveat",
    "exit",
    "exit_group",
    "faccessat",
    "faccessat2",
    "fadvise64",
    "fadvise64_64",
    "fallocate",
    "fanotify_mark",
    "fchdir",
    "fchmod",
    "fchmodat",
    "fchown",
    "fchown32",
    "fchownat",
    "fcntl",
    "fcntl64",
    "fdatasync",
    "fgetxattr",
    "flistxattr",
    "flock",
    "fork",
    "fremovexattr",
    "fsetxattr",
    "fstat",
    "fstat64",
    "fstatat64",
    "fstatfs",
    "fstatfs64",
    "fsync",
    "ftruncate",
    "ftruncate64",
    "futex",
    "futex_time64",
    "futex_waitv",
    "futimesat",
    "getcpu",
    "getcwd",
    "getdents",
    "getdents64",
    "getegid",
    "getegid32",
    "geteuid",
    "geteuid32",
    "getgid",
    "getgid32",
    "getgroups",
    "getgroups32",
    "getitimer",
    "getpeername",
    "getpgid",
    "getpgrp",
    "getpid",
    "getppid",
    "getpriority",
    "getrandom",
    "getresgid",
    "getresgid32",
    "getresuid",
    "getresuid32",
    "getrlimit",
    "get_robust_list",
    "getrusage",
    "getsid",
    "getsockname",
    "getsockopt",
    "get_thread_area",
    "gettid",
    "gettimeofday",
    "getuid",
    "getuid32",
    "getxattr",
    "inotify_add_watch",
    "inotify_init",
    "inotify_init1",
    "inotify_rm_watch",
    "io_cancel",
    "ioctl",
    "io_destroy",
    "io_getevents",
    "io_pgetevents",
    "io_pgetevents_time64",
    "ioprio_get",
    "ioprio_set",
    "io_setup",
    "io_submit",
    "io_uring_enter",
    "io_uring_register",
    "io_uring_setup",
    "ipc",
    "kill",
    "landlock_add_rule",
    "landlock_create_ruleset",
    "landlock_restrict_self",
    "lchown",
    "lchown32",
    "lgetxattr",
    "link",
    "linkat",
    "listen",
    "listxattr",
    "llistxattr",
    "_llseek",
    "lremovexattr",
    "lseek",
    "lsetxattr",
    "lstat",
    "lstat64",
    "madvise",
    "membarrier",
    "memfd_create",
    "memfd_secret",
    "mincore",
    "mkdir",
    "mkdirat",
    "mknod",
    "mknodat",
    "mlock",
    "mlock2",
    "mlockall",
    "mmap",
    "mmap2",
    "mprotect",
    "mq_getsetattr",
    "mq_notify",
    "mq_open",
    "mq_timedreceive",
    "mq_timedreceive_time64",
    "mq_timedsend",
    "mq_timedsend_time64",
    "mq_unlink",
    "mremap",
    "msgctl",
    "msgget",
    "msgrcv",
    "msgsnd",
    "msync",
    "munlock",
    "munlockall",
    "munmap",
    "name_to_handle_at",
    "nanosleep",
    "newfstatat",
    "_newselect",
    "open",
    "openat",
    "openat2",
    "pause",
    "pidfd_open",
    "pidfd_send_signal",
    "pipe",
    "pipe2",
    "pkey_alloc",
    "pkey_free",
    "pkey_mprotect",
    "poll",
    "ppoll",
    "ppoll_time64",
    "prctl",
    "pread64",
    "preadv",
    "preadv2",
    "prlimit64",
    "process_mrelease",
    "pselect6",
    "pselect6_time64",
    "pwrite64",
    "pwritev",
    "pwritev2",
    "read",
    "readahead",
    "readlink",
    "readlinkat",
    "readv",
    "recv",
    "recvfrom",
    "recvmmsg",
    "recvmmsg_time64",
    "recvmsg",
    "remap_file_pages",
    "removexattr",
    "rename",
    "renameat",
    "renameat2",
    "restart_syscall",
    "rmdir",
    "rseq",
    "rt_sigaction",
    "rt_sigpending",
    "rt_sigprocmask",
    "rt_sigqueueinfo",
    "rt_sigreturn",
    "rt_sigsuspend",
    "rt_sigtimedwait",
    "rt_sigtimedwait_time64",
    "rt_tgsigqueueinfo",
    "sched_getaffinity",
    "sched_getattr",
    "sched_getparam",
    "sched_get_priority_max",
    "sched_get_priority_min",
    "sched_getscheduler",
    "sched_rr_get_interval",
    "sched_rr_get_interval_time64",
    "sched_setaffinity",
    "sched_setattr",
    "sched_setparam",
    "sched_setscheduler",
    "sched_yield",
    "seccomp",
    "select",
    "semctl",
    "semget",
    "semop",
    "semtimedop",
    "semtimedop_time64",
    "send",
    "sendfile",
    "sendfile64",
    "sendmmsg",
    "sendmsg",
    "sendto",
    "setfsgid",
    "setfsgid32",
    "setfsuid",
    "setfsuid32",
    "setgid",
    "setgid32",
    "setgroups",
    "setgroups32",
    "setitimer",
    "setpgid",
    "setpriority",
    "setregid",
    "setregid32",
    "setresgid",
    "setresgid32",
    "setresuid",
    "setresuid32",
    "setreuid",
    "setreuid32",
    "setrlimit",
    "set_robust_list",
    "setsid",
    "setsockopt",
    "set_thread_area",
    "set_tid_address",
    "setuid",
    "setuid32",
    "setxattr",
    "shmat",
    "shmctl",
    "shmdt",
    "shmget",
    "shutdown",
    "sigaltstack",
    "signalfd",
    "signalfd4",
    "sigprocmask",
    "sigreturn",
    "socketcall",
    "socketpair",
    "splice",
    "stat",
    "stat64",
    "statfs",
    "statfs64",
    "statx",
    "symlink",
    "symlinkat",
    "sync",
    "sync_file_range",
    "syncfs",
    "sysinfo",
    "tee",
    "tgkill",
    "time",
    "timer_create",
    "timer_delete",
    "timer_getoverrun",
    "timer_gettime",
    "timer_gettime64",
    "timer_settime",
    "timer_settime64",
    "timerfd_create",
    "timerfd_gettime",
    "timerfd_gettime64",
    "timerfd_settime",
    "timerfd_settime64",
    "times",
    "tkill",
    "truncate",
    "truncate64",
    "ugetrlimit",
    "umask",
    "uname",
    "unlink",
    "unlinkat",
    "utime",
    "utimensat",
    "utimensat_time64",
    "utimes",
    "vfork",
    "vmsplice",
    "wait4",
    "waitid",
    "waitpid",
    "write",
    "writev",
};

/* One condition on an argument, as the OCI runtime spec writes it. */
struct arg {
    unsigned index;
    uint64_t value;
    const char *op;
};

/* A rule of default.json past its first (unconditional) one. A NULL list
 * is no condition; caps are all required (includes) or any one excludes;
 * arches use Go's names, as default.json does (amd64, arm64, ...). */
struct rule {
    const char *const *names;
    const char *action;
    int errno_ret; /* SCMP_ACT_ERRNO's errno; 0: the profile's default */
    const struct arg *arg;
    const char *const *inc_caps, *const *inc_arches;
    const char *const *exc_caps, *const *exc_arches;
};

#define ALLOW        "SCMP_ACT_ALLOW"
#define ARG(i, v, o) (&(const struct arg){(i), (v), (o)})

/* CLONE_NEWNS | NEWUTS | NEWIPC | NEWUSER | NEWPID | NEWNET | NEWCGROUP:
 * clone with none of them set (masked value 0) makes a thread or a process,
 * never a namespace. */
#define CLONE_NS_FLAGS 2114060288

static const struct rule rules[] = {
    /* includes.minKernel 4.8 (before it, ptrace could bypass seccomp):
     * older kernels cannot run stratos anyway, so the rule always holds. */
    {.names = NAMES("process_vm_readv", "process_vm_writev", "ptrace"), .action = ALLOW},
    /* AF_VSOCK (40) talks to the host's hypervisor sockets. */
    {.names = NAMES("socket"), .action = ALLOW, .arg = ARG(0, 40, "SCMP_CMP_NE")},
    /* PER_LINUX, PER_LINUX32, UNAME26, UNAME26|PER_LINUX32 and the query
     * 0xffffffff: nothing else (READ_IMPLIES_EXEC, ADDR_NO_RANDOMIZE ...). */
    {.names = NAMES("personality"), .action = ALLOW, .arg = ARG(0, 0, "SCMP_CMP_EQ")},
    {.names = NAMES("personality"), .action = ALLOW, .arg = ARG(0, 8, "SCMP_CMP_EQ")},
    {.names = NAMES("personality"), .action = ALLOW, .arg = ARG(0, 131072, "SCMP_CMP_EQ")},
    {.names = NAMES("personality"), .action = ALLOW, .arg = ARG(0, 131080, "SCMP_CMP_EQ")},
    {.names = NAMES("personality"), .action = ALLOW, .arg = ARG(0, 4294967295, "SCMP_CMP_EQ")},
    {.names = NAMES("sync_file_range2", "swapcontext"),
     .action = ALLOW,
     .inc_arches = NAMES("ppc64le")},
    {.names = NAMES("arm_fadvise64_64", "arm_sync_file_range", "sync_file_range2", "breakpoint",
                    "cacheflush", "set_tls"),
     .action = ALLOW,
     .inc_arches = NAMES("arm", "arm64")},
    {.names = NAMES("arch_prctl"), .action = ALLOW, .inc_arches = NAMES("amd64", "x32")},
    {.names = NAMES("modify_ldt"), .action = ALLOW, .inc_arches = NAMES("amd64", "x32", "x86")},
    {.names = NAMES("s390_pci_mmio_read", "s390_pci_mmio_write", "s390_runtime_instr"),
     .action = ALLOW,
     .inc_arches = NAMES("s390", "s390x")},
    {.names = NAMES("riscv_flush_icache"), .action = ALLOW, .inc_arches = NAMES("riscv64")},
    {.names = NAMES("open_by_handle_at"),
     .action = ALLOW,
     .inc_caps = NAMES("CAP_DAC_READ_SEARCH")},
    {.names = NAMES("bpf", "clone", "clone3", "fanotify_init", "fsconfig", "fsmount", "fsopen",
                    "fspick", "lookup_dcookie", "mount", "mount_setattr", "move_mount", "open_tree",
                    "perf_event_open", "quotactl", "quotactl_fd", "setdomainname", "sethostname",
                    "setns", "syslog", "umount", "umount2", "unshare"),
     .action = ALLOW,
     .inc_caps = NAMES("CAP_SYS_ADMIN")},
    {.names = NAMES("clone"),
     .action = ALLOW,
     .arg = ARG(0, CLONE_NS_FLAGS, "SCMP_CMP_MASKED_EQ"),
     .exc_caps = NAMES("CAP_SYS_ADMIN"),
     .exc_arches = NAMES("s390", "s390x")},
    /* s390 orders clone's parameters differently */
    {.names = NAMES("clone"),
     .action = ALLOW,
     .arg = ARG(1, CLONE_NS_FLAGS, "SCMP_CMP_MASKED_EQ"),
     .inc_arches = NAMES("s390", "s390x"),
     .exc_caps = NAMES("CAP_SYS_ADMIN")},
    /* clone3 passes its flags in memory, where a filter cannot look:
     * ENOSYS makes glibc fall back to clone, checked above. */
    {.names = NAMES("clone3"),
     .action = "SCMP_ACT_ERRNO",
     .errno_ret = ENOSYS,
     .exc_caps = NAMES("CAP_SYS_ADMIN")},
    {.names = NAMES("reboot"), .action = ALLOW, .inc_caps = NAMES("CAP_SYS_BOOT")},
    {.names = NAMES("chroot"), .action = ALLOW, .inc_caps = NAMES("CAP_SYS_CHROOT")},
    {.names = NAMES("delete_module", "init_module", "finit_module"),
     .action = ALLOW,
     .inc_caps = NAMES("CAP_SYS_MODULE")},
    {.names = NAMES("acct"), .action = ALLOW, .inc_caps = NAMES("CAP_SYS_PACCT")},
    {.names = NAMES("kcmp", "pidfd_getfd", "process_madvise", "process_vm_readv",
                    "process_vm_writev", "ptrace"),
     .action = ALLOW,
     .inc_caps = NAMES("CAP_SYS_PTRACE")},
    {.names = NAMES("iopl", "ioperm"), .action = ALLOW, .inc_caps = NAMES("CAP_SYS_RAWIO")},
    {.names = NAMES("settimeofday", "stime", "clock_settime", "clock_settime64"),
     .action = ALLOW,
     .inc_caps = NAMES("CAP_SYS_TIME")},
    {.names = NAMES("vhangup"), .action = ALLOW, .inc_caps = NAMES("CAP_SYS_TTY_CONFIG")},
    {.names = NAMES("get_mempolicy", "mbind", "set_mempolicy", "set_mempolicy_home_node"),
     .action = ALLOW,
     .inc_caps = NAMES("CAP_SYS_NICE")},
    {.names = NAMES("syslog"), .action = ALLOW, .inc_caps = NAMES("CAP_SYSLOG")},
    {.names = NAMES("bpf"), .action = ALLOW, .inc_caps = NAMES("CAP_BPF")},
    {.names = NAMES("perf_event_open"), .action = ALLOW, .inc_caps = NAMES("CAP_PERFMON")},
};

/* default.json's archMap, for the architectures stratos builds for. */
static const struct {
    const char *machine; /* uname -m */
    const char *go_arch; /* the name default.json's rules use */
    const char *const *scmp;
} arches[] = {
    {"x86_64", "amd64", NAMES("SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32")},
    {"aarch64", "arm64", NAMES("SCMP_ARCH_AARCH64", "SCMP_ARCH_ARM")},
};

const char *st_seccomp_native_arch(void)
{
#if defined(__x86_64__)
    return "x86_64";
#elif defined(__aarch64__)
    return "aarch64";
#elif defined(__i386__)
    return "i686";
#elif defined(__arm__)
    return "armv7l";
#else
    return "unknown";
#endif
}

static bool in_list(const char *const *list, const char *s)
{
    for (; list && *list; list++)
        if (strcmp(*list, s) == 0)
            return true;
    return false;
}

static bool has_cap(const char *const *caps, size_t n_caps, const char *cap)
{
    for (size_t i = 0; i < n_caps; i++)
        if (strcmp(caps[i], cap) == 0)
            return true;
    return false;
}

/* moby's evaluation: any excluded arch or capability drops the rule; every
 * included capability, and one of the included arches, must be there. */
static bool rule_applies(const struct rule *r, const char *go_arch, const char *const *caps,
                         size_t n_caps)
{
    if (in_list(r->exc_arches, go_arch))
        return false;
    for (const char *const *c = r->exc_caps; c && *c; c++)
        if (has_cap(caps, n_caps, *c))
            return false;
    if (r->inc_arches && !in_list(r->inc_arches, go_arch))
        return false;
    for (const char *const *c = r->inc_caps; c && *c; c++)
        if (!has_cap(caps, n_caps, *c))
            return false;
    return true;
}

static json_t *names_json(const char *const *names)
{
    json_t *a = json_array();
    for (; *names; names++)
        json_array_append_new(a, json_string(*names));
    return a;
}

static json_t *rule_json(const struct rule *r)
{
    json_t *o = json_pack("{s:o, s:s}", "names", names_json(r->names), "action", r->action);
    if (r->errno_ret)
        json_object_set_new(o, "errnoRet", json_integer(r->errno_ret));
    if (r->arg)
        json_object_set_new(o, "args",
                            json_pack("[{s:I, s:I, s:s}]", "index", (json_int_t)r->arg->index,
                                      "value", (json_int_t)r->arg->value, "op", r->arg->op));
    return o;
}

int st_seccomp_profile_new(const char *arch, const char *const *caps, size_t n_caps, json_t **ret,
                           struct st_err **err)
{
    if (!arch)
        arch = st_seccomp_native_arch();
    size_t a = 0;
    while (a < ST_ARRAY_SIZE(arches) && strcmp(arches[a].machine, arch) != 0)
        a++;
    if (a == ST_ARRAY_SIZE(arches))
        return st_err_set(err, -EOPNOTSUPP,
                          "no seccomp profile for the %s architecture (x86_64 and aarch64 have "
                          "one; the flavor extra spec stratos:seccomp=unconfined runs without)",
                          arch);
    json_t *first = json_array();
    for (size_t i = 0; i < ST_ARRAY_SIZE(allowed); i++)
        json_array_append_new(first, json_string(allowed[i]));
    json_t *syscalls = json_array();
    json_array_append_new(syscalls, json_pack("{s:o, s:s}", "names", first, "action", ALLOW));
    for (size_t i = 0; i < ST_ARRAY_SIZE(rules); i++)
        if (rule_applies(&rules[i], arches[a].go_arch, caps, n_caps))
            json_array_append_new(syscalls, rule_json(&rules[i]));
    *ret = json_pack("{s:s, s:i, s:o, s:o}", "defaultAction", "SCMP_ACT_ERRNO", "defaultErrnoRet",
                     EPERM, "architectures", names_json(arches[a].scmp), "syscalls", syscalls);
    return 0;
}

/* ------------------------------------------------------------ compiling */

/* crun's names: SCMP_ACT_<name>; ERRNO and TRACE carry errno_ret. */
static int action_of(const char *name, int errno_ret, uint32_t *ret, struct st_err **err)
{
    static const struct {
        const char *name;
        uint32_t action;
    } actions[] = {
        {"SCMP_ACT_ALLOW", SCMP_ACT_ALLOW},
        {"SCMP_ACT_KILL", SCMP_ACT_KILL},
        {"SCMP_ACT_TRAP", SCMP_ACT_TRAP},
        {"SCMP_ACT_LOG", SCMP_ACT_LOG},
        {"SCMP_ACT_KILL_PROCESS", SCMP_ACT_KILL_PROCESS},
        {"SCMP_ACT_KILL_THREAD", SCMP_ACT_KILL_THREAD},
    };
    if (name && strcmp(name, "SCMP_ACT_ERRNO") == 0) {
        *ret = SCMP_ACT_ERRNO((uint32_t)errno_ret);
        return 0;
    }
    if (name && strcmp(name, "SCMP_ACT_TRACE") == 0) {
        *ret = SCMP_ACT_TRACE((uint32_t)errno_ret);
        return 0;
    }
    for (size_t i = 0; name && i < ST_ARRAY_SIZE(actions); i++)
        if (strcmp(name, actions[i].name) == 0) {
            *ret = actions[i].action;
            return 0;
        }
    /* SCMP_ACT_NOTIFY needs a listener the agent does not run. */
    return st_err_set(err, -EINVAL, "unknown seccomp action '%s'", name ? name : "(none)");
}

static int operator_of(const char *name, enum scmp_compare *ret, struct st_err **err)
{
    static const struct {
        const char *name;
        enum scmp_compare op;
    } ops[] = {
        {"SCMP_CMP_NE", SCMP_CMP_NE},
        {"SCMP_CMP_LT", SCMP_CMP_LT},
        {"SCMP_CMP_LE", SCMP_CMP_LE},
        {"SCMP_CMP_EQ", SCMP_CMP_EQ},
        {"SCMP_CMP_GE", SCMP_CMP_GE},
        {"SCMP_CMP_GT", SCMP_CMP_GT},
        {"SCMP_CMP_MASKED_EQ", SCMP_CMP_MASKED_EQ},
    };
    for (size_t i = 0; name && i < ST_ARRAY_SIZE(ops); i++)
        if (strcmp(name, ops[i].name) == 0) {
            *ret = ops[i].op;
            return 0;
        }
    return st_err_set(err, -EINVAL, "unknown seccomp operator '%s'", name ? name : "(none)");
}

/* An errnoRet only means something to the actions that return it. */
static int errno_of(json_t *obj, const char *key, const char *action, int *ret, struct st_err **err)
{
    json_t *v = json_object_get(obj, key);
    if (!v)
        return 0;
    if (!action || (strcmp(action, "SCMP_ACT_ERRNO") != 0 && strcmp(action, "SCMP_ACT_TRACE") != 0))
        return st_err_set(err, -EINVAL, "seccomp %s given for action '%s'", key,
                          action ? action : "(none)");
    *ret = (int)json_integer_value(v);
    return 0;
}

static void release_ctx(scmp_filter_ctx *ctx)
{
    if (*ctx)
        seccomp_release(*ctx);
}

static int add_architectures(scmp_filter_ctx ctx, json_t *list, struct st_err **err)
{
    size_t i;
    json_t *v;
    json_array_foreach(list, i, v)
    {
        const char *name = json_string_value(v);
        if (!name)
            return st_err_set(err, -EINVAL, "seccomp architecture %zu is not a string", i);
        const char *bare = strncmp(name, "SCMP_ARCH_", 10) == 0 ? name + 10 : name;
        char lower[32];
        size_t n = 0;
        for (; bare[n] && n < sizeof(lower) - 1; n++)
            lower[n] = (char)tolower((unsigned char)bare[n]);
        lower[n] = '\0';
        uint32_t token = seccomp_arch_resolve_name(lower);
        if (token == 0)
            return st_err_set(err, -EINVAL, "unknown seccomp architecture '%s'", name);
        /* seccomp_init put the host's in already */
        int r = seccomp_arch_add(ctx, token);
        if (r < 0 && r != -EEXIST)
            return st_err_set(err, r, "adding seccomp architecture '%s': %s", name, strerror(-r));
    }
    return 0;
}

/* One name of a rule: no condition, all conditions in one rule, or, when
 * one argument is compared twice (which libseccomp refuses in one rule),
 * one rule per condition. */
static int add_rule(scmp_filter_ctx ctx, uint32_t action, int nr, const char *name,
                    const struct scmp_arg_cmp *cmp, size_t n_cmp, bool split, struct st_err **err)
{
    int r = 0;
    if (!split)
        r = seccomp_rule_add_array(ctx, action, nr, (unsigned)n_cmp, n_cmp ? cmp : NULL);
    else
        for (size_t k = 0; k < n_cmp && r == 0; k++)
            r = seccomp_rule_add_array(ctx, action, nr, 1, &cmp[k]);
    if (r < 0)
        return st_err_set(err, r, "seccomp rule for '%s': %s", name, strerror(-r));
    return 0;
}

static int add_syscalls(scmp_filter_ctx ctx, uint32_t default_action, json_t *syscalls,
                        struct st_err **err)
{
    size_t i, j;
    json_t *rule, *name;
    json_array_foreach(syscalls, i, rule)
    {
        const char *action_name = json_string_value(json_object_get(rule, "action"));
        int errno_ret = EPERM;
        uint32_t action;
        int r;
        if ((r = errno_of(rule, "errnoRet", action_name, &errno_ret, err)) < 0 ||
            (r = action_of(action_name, errno_ret, &action, err)) < 0)
            return st_err_prefix(err, r, "seccomp rule %zu", i);
        if (action == default_action)
            continue;
        json_t *args = json_object_get(rule, "args");
        struct scmp_arg_cmp cmp[6];
        size_t n_cmp = 0;
        unsigned seen[6] = {0};
        bool split = false;
        for (; n_cmp < json_array_size(args) && n_cmp < 6; n_cmp++) {
            json_t *a = json_array_get(args, n_cmp);
            json_int_t index = json_integer_value(json_object_get(a, "index"));
            if (index < 0 || index >= 6)
                return st_err_set(err, -EINVAL, "seccomp rule %zu: argument index %lld", i,
                                  (long long)index);
            split = split || seen[index]++ > 0;
            cmp[n_cmp] = (struct scmp_arg_cmp){
                .arg = (unsigned)index,
                .datum_a = (scmp_datum_t)json_integer_value(json_object_get(a, "value")),
                .datum_b = (scmp_datum_t)json_integer_value(json_object_get(a, "valueTwo")),
            };
            if ((r = operator_of(json_string_value(json_object_get(a, "op")), &cmp[n_cmp].op,
                                 err)) < 0)
                return st_err_prefix(err, r, "seccomp rule %zu", i);
        }
        json_array_foreach(json_object_get(rule, "names"), j, name)
        {
            const char *s = json_string_value(name);
            int nr = s ? seccomp_syscall_resolve_name(s) : __NR_SCMP_ERROR;
            if (nr == __NR_SCMP_ERROR) {
                st_log_debug("seccomp_unknown_syscall", "name=%s", s ? s : "(not a string)");
                continue;
            }
            if ((r = add_rule(ctx, action, nr, s, cmp, n_cmp, split, err)) < 0)
                return r;
        }
    }
    return 0;
}

/* libseccomp 2.5 exports to a file descriptor only. */
static int export_bpf(scmp_filter_ctx ctx, struct st_seccomp_bpf **ret, struct st_err **err)
{
    st_autoclose int fd = memfd_create("st-seccomp-bpf", MFD_CLOEXEC);
    if (fd < 0)
        return st_err_errno(err, "memfd_create");
    int r = seccomp_export_bpf(ctx, fd);
    if (r < 0)
        return st_err_set(err, r, "seccomp_export_bpf: %s", strerror(-r));
    struct stat st;
    if (fstat(fd, &st) < 0)
        return st_err_errno(err, "fstat of the exported seccomp program");
    size_t len = (size_t)st.st_size;
    if (len == 0 || len % 8 != 0)
        return st_err_set(err, -EIO, "exported seccomp program has %zu bytes", len);
    st_autofree unsigned char *data = st_xcalloc(1, len);
    for (size_t off = 0; off < len;) {
        ssize_t n = pread(fd, data + off, len - off, (off_t)off);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return n < 0 ? st_err_errno(err, "reading the exported seccomp program")
                         : st_err_set(err, -EIO, "exported seccomp program is short");
        off += (size_t)n;
    }
    struct st_seccomp_bpf *bpf = st_new0(struct st_seccomp_bpf, 1);
    bpf->base64 = st_xcalloc(1, 4 * ((len + 2) / 3) + 1);
    EVP_EncodeBlock((unsigned char *)bpf->base64, data, (int)len);
    bpf->len = len;
    bpf->data = st_steal(&data);
    *ret = bpf;
    return 0;
}

int st_seccomp_compile(json_t *profile, struct st_seccomp_bpf **ret, struct st_err **err)
{
    const char *default_name = json_string_value(json_object_get(profile, "defaultAction"));
    int default_errno = EPERM;
    uint32_t default_action;
    int r;
    if (!default_name)
        return st_err_set(err, -EINVAL, "seccomp profile has no defaultAction");
    if ((r = errno_of(profile, "defaultErrnoRet", default_name, &default_errno, err)) < 0 ||
        (r = action_of(default_name, default_errno, &default_action, err)) < 0)
        return r;
    __attribute__((cleanup(release_ctx))) scmp_filter_ctx ctx = seccomp_init(default_action);
    if (!ctx)
        return st_err_set(err, -EINVAL, "seccomp_init(%s) failed", default_name);
    /* Only seccomp_load reads CTL_NNP; the program is exported, and crun sets
     * no_new_privs itself, from process.noNewPrivileges. Nothing else is set:
     * the bad-architecture action and the optimizer stay libseccomp's
     * defaults, as under crun. */
    if ((r = add_architectures(ctx, json_object_get(profile, "architectures"), err)) < 0 ||
        (r = add_syscalls(ctx, default_action, json_object_get(profile, "syscalls"), err)) < 0)
        return r;
    return export_bpf(ctx, ret, err);
}

void st_seccomp_bpf_free(struct st_seccomp_bpf *bpf)
{
    if (!bpf)
        return;
    free(bpf->data);
    free(bpf->base64);
    free(bpf);
}

/* ------------------------------------------------------------ the cache */

/* A handful of entries at most (architectures x capability sets), made once
 * and never evicted: a list will do. A failed compilation is kept (bpf
 * NULL) so that it is neither retried nor logged at every start. */
struct cache_entry {
    char *key;
    struct st_seccomp_bpf *bpf;
    int code;
    char *error;
    struct cache_entry *next;
};

static pthread_mutex_t cache_lock = PTHREAD_MUTEX_INITIALIZER;
static struct cache_entry *cache;

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* "arch:CAP_A,CAP_B": the capabilities sorted, since their order does not
 * change the profile. */
static char *cache_key(const char *arch, const char *const *caps, size_t n_caps)
{
    st_autofree const char **sorted = st_new0(const char *, n_caps);
    memcpy(sorted, caps, n_caps * sizeof(*caps));
    qsort(sorted, n_caps, sizeof(*sorted), cmp_str);
    char *key = st_sprintf("%s:", arch);
    for (size_t i = 0; i < n_caps; i++) {
        char *next = st_sprintf("%s%s%s", key, i ? "," : "", sorted[i]);
        free(key);
        key = next;
    }
    return key;
}

static struct cache_entry *compile_entry(const char *arch, const char *const *caps, size_t n_caps,
                                         char *key)
{
    struct cache_entry *e = st_new0(struct cache_entry, 1);
    e->key = key;
    st_autoptr(st_err) cerr = NULL;
    st_autoptr(json_t) profile = NULL;
    int64_t t0 = st_time_mono_ns();
    int r = st_seccomp_profile_new(arch, caps, n_caps, &profile, &cerr);
    if (r == 0)
        r = st_seccomp_compile(profile, &e->bpf, &cerr);
    if (r < 0) {
        e->code = r;
        e->error = st_strdup(st_err_msg(cerr));
        st_log_warn("seccomp_compile_failed",
                    "arch=%s error=\"%s\" fallback=\"the runtime compiles linux.seccomp at every "
                    "start\"",
                    arch, e->error);
    } else {
        st_log_info("seccomp_compiled", "arch=%s instructions=%zu ms=%.1f", arch, e->bpf->len / 8,
                    (double)(st_time_mono_ns() - t0) / 1e6);
    }
    return e;
}

int st_seccomp_bpf_get(const char *arch, const char *const *caps, size_t n_caps,
                       const struct st_seccomp_bpf **ret, struct st_err **err)
{
    if (!arch)
        arch = st_seccomp_native_arch();
    char *key = cache_key(arch, caps, n_caps);
    pthread_mutex_lock(&cache_lock);
    struct cache_entry *e = cache;
    while (e && strcmp(e->key, key) != 0)
        e = e->next;
    if (e) {
        free(key);
    } else {
        /* Compiled under the lock: threads starting the first containers at
         * once wait for one compilation rather than each doing its own. */
        e = compile_entry(arch, caps, n_caps, key);
        e->next = cache;
        cache = e;
    }
    pthread_mutex_unlock(&cache_lock);
    if (!e->bpf)
        return st_err_set(err, e->code, "%s", e->error);
    *ret = e->bpf;
    return 0;
}
