/* Tests of the containers' seccomp filter (src/agent/drivers/seccomp.c and
 * linux.seccomp in config.json): Docker's default profile as stratos writes
 * it (what it allows, what it refuses, per architecture) and the admin's
 * flavor opt-out; the program compiled from it with libseccomp, cached per
 * architecture and capability set, loaded into a child to see the kernel
 * refuse what the profile refuses, compiled with crun's reading of the
 * profile format, and byte for byte the program crun compiles itself (that
 * one needs root and crun; skipped otherwise). */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/personality.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>
#include <cmocka.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <openssl/evp.h>

#include "agent/drivers/cgroup.h"
#include "agent/drivers/oci.h"
#include "agent/drivers/proc.h"
#include "agent/drivers/seccomp.h"
#include "container_harness.h"
#include "lib/cleanup.h"
#include "lib/err.h"
#include "lib/files.h"
#include "lib/json.h"
#include "lib/times.h"

/* ------------------------------------------------------- seccomp profile */

/* The rules of linux.seccomp that name syscall, and how many of them carry
 * argument conditions. */
static size_t seccomp_rules_naming(json_t *seccomp, const char *syscall, size_t *ret_with_args)
{
    size_t n = 0, with_args = 0, i, j;
    json_t *rule, *name;
    json_array_foreach(json_object_get(seccomp, "syscalls"), i, rule)
    {
        json_array_foreach(json_object_get(rule, "names"), j, name)
        {
            if (strcmp(json_string_value(name), syscall) != 0)
                continue;
            n++;
            with_args += json_object_get(rule, "args") != NULL;
        }
    }
    if (ret_with_args)
        *ret_with_args = with_args;
    return n;
}

static json_t *config_with_specs(json_t *specs, const char *arch, int want)
{
    const char *args[] = {"/bin/sh", NULL};
    struct st_oci_params p = {
        .id = "0b6e0c3c-6a2b-4f3e-9d1a-3c5e7f9a1b2d",
        .name = "s",
        .hostname = "s",
        .args = args,
        .limits = &golden_limits,
        .layout = ST_CGROUP_V2,
        .flavor_specs = specs,
        .arch = arch,
    };
    json_t *config = NULL;
    st_autoptr(st_err) err = NULL;
    assert_int_equal(st_oci_config_new(&p, &config, &err), want);
    if (want < 0)
        printf("refused as expected: %s\n", st_err_msg(err));
    return config;
}

static void test_seccomp_profile(void **state)
{
    (void)state;
    st_autoptr(json_t) config = golden_config(ST_CGROUP_HYBRID);
    json_t *seccomp = json_object_get(json_object_get(config, "linux"), "seccomp");
    assert_non_null(seccomp);
    assert_string_equal(json_string_value(json_object_get(seccomp, "defaultAction")),
                        "SCMP_ACT_ERRNO");
    assert_int_equal(json_integer_value(json_object_get(seccomp, "defaultErrnoRet")), EPERM);
    json_t *arches = json_object_get(seccomp, "architectures");
    assert_int_equal(json_array_size(arches), 3);
    assert_string_equal(json_string_value(json_array_get(arches, 0)), "SCMP_ARCH_X86_64");

    /* No name twice: a syscall is allowed by one plain rule, or only by
     * rules with argument conditions (which a plain rule would void). */
    st_autoptr(json_t) seen = json_object();
    size_t i, j;
    json_t *rule, *name;
    json_array_foreach(json_object_get(seccomp, "syscalls"), i, rule)
    {
        bool conditional = json_object_get(rule, "args") != NULL;
        assert_true(json_array_size(json_object_get(rule, "names")) > 0);
        st_autoptr(json_t) in_rule = json_object();
        json_array_foreach(json_object_get(rule, "names"), j, name)
        {
            const char *n = json_string_value(name);
            assert_null(json_object_get(in_rule, n));
            json_object_set_new(in_rule, n, json_true());
            json_t *before = json_object_get(seen, n);
            if (before && (!conditional || !json_is_true(before)))
                fail_msg("seccomp: %s appears in two rules, one without conditions", n);
            json_object_set_new(seen, n, json_boolean(conditional));
        }
    }

    const char *allowed[] = {"read",   "write",     "execve", "exit_group",
                             "openat", "mmap",      "futex",  "rt_sigaction",
                             "wait4",  "nanosleep", "chroot", "arch_prctl"};
    for (i = 0; i < ST_ARRAY_SIZE(allowed); i++) {
        size_t with_args;
        if (seccomp_rules_naming(seccomp, allowed[i], &with_args) != 1 || with_args != 0)
            fail_msg("seccomp: %s is not allowed unconditionally", allowed[i]);
    }
    /* What a container without CAP_SYS_ADMIN must not reach. */
    const char *refused[] = {"kexec_load",
                             "kexec_file_load",
                             "init_module",
                             "finit_module",
                             "delete_module",
                             "bpf",
                             "keyctl",
                             "add_key",
                             "request_key",
                             "mount",
                             "umount2",
                             "unshare",
                             "setns",
                             "swapon",
                             "reboot",
                             "perf_event_open",
                             "open_by_handle_at",
                             "iopl",
                             "settimeofday",
                             "userfaultfd",
                             "syslog",
                             "acct"};
    for (i = 0; i < ST_ARRAY_SIZE(refused); i++)
        if (seccomp_rules_naming(seccomp, refused[i], NULL) != 0)
            fail_msg("seccomp: %s is allowed", refused[i]);
    assert_int_equal(seccomp_rules_naming(seccomp, "modify_ldt", NULL), 1); /* x86 only */
    assert_int_equal(seccomp_rules_naming(seccomp, "cacheflush", NULL), 0); /* arm only */
    /* clone only without namespace flags; clone3 answers ENOSYS (glibc then
     * uses clone); personality only for the usual personas; socket not for
     * AF_VSOCK. */
    size_t with_args;
    assert_int_equal(seccomp_rules_naming(seccomp, "clone", &with_args), 1);
    assert_int_equal(with_args, 1);
    assert_int_equal(seccomp_rules_naming(seccomp, "personality", &with_args), 5);
    assert_int_equal(with_args, 5);
    assert_int_equal(seccomp_rules_naming(seccomp, "socket", &with_args), 1);
    assert_int_equal(with_args, 1);
    json_array_foreach(json_object_get(seccomp, "syscalls"), i, rule)
    {
        const char *first = json_string_value(json_array_get(json_object_get(rule, "names"), 0));
        json_t *arg = json_array_get(json_object_get(rule, "args"), 0);
        if (strcmp(first, "clone") == 0) {
            assert_string_equal(json_string_value(json_object_get(arg, "op")),
                                "SCMP_CMP_MASKED_EQ");
            assert_int_equal(json_integer_value(json_object_get(arg, "value")),
                             CLONE_NEWNS | CLONE_NEWUTS | CLONE_NEWIPC | CLONE_NEWUSER |
                                 CLONE_NEWPID | CLONE_NEWNET | CLONE_NEWCGROUP);
        } else if (strcmp(first, "clone3") == 0) {
            assert_string_equal(json_string_value(json_object_get(rule, "action")),
                                "SCMP_ACT_ERRNO");
            assert_int_equal(json_integer_value(json_object_get(rule, "errnoRet")), ENOSYS);
        } else if (strcmp(first, "socket") == 0) {
            assert_string_equal(json_string_value(json_object_get(arg, "op")), "SCMP_CMP_NE");
            assert_int_equal(json_integer_value(json_object_get(arg, "value")), AF_VSOCK);
        }
    }

    /* aarch64: its own architectures and ARM's extra calls, no x86 ones. */
    st_autoptr(json_t) arm = config_with_specs(NULL, "aarch64", 0);
    json_t *arm_seccomp = json_object_get(json_object_get(arm, "linux"), "seccomp");
    assert_string_equal(
        json_string_value(json_array_get(json_object_get(arm_seccomp, "architectures"), 0)),
        "SCMP_ARCH_AARCH64");
    assert_int_equal(seccomp_rules_naming(arm_seccomp, "cacheflush", NULL), 1);
    assert_int_equal(seccomp_rules_naming(arm_seccomp, "arch_prctl", NULL), 0);
    /* An architecture without a profile is refused, not run unfiltered. */
    assert_null(config_with_specs(NULL, "mips64", -EOPNOTSUPP));
}

/* The admin's opt-out, the flavor extra spec stratos:seccomp. */
static void test_seccomp_flavor_opt_out(void **state)
{
    (void)state;
    st_autoptr(json_t) specs = json_pack("{s:s}", "stratos:seccomp", "unconfined");
    st_autoptr(json_t) config = config_with_specs(specs, "x86_64", 0);
    assert_null(json_object_get(json_object_get(config, "linux"), "seccomp"));
    /* unconfined needs no profile for the architecture */
    st_autoptr(json_t) mips = config_with_specs(specs, "mips64", 0);
    assert_null(json_object_get(json_object_get(mips, "linux"), "seccomp"));

    json_object_set_new(specs, "stratos:seccomp", json_string("runtime/default"));
    st_autoptr(json_t) dflt = config_with_specs(specs, "x86_64", 0);
    assert_non_null(json_object_get(json_object_get(dflt, "linux"), "seccomp"));
    /* other extra specs change nothing */
    st_autoptr(json_t) other = json_pack("{s:s}", "quota:cpu_shares", "512");
    st_autoptr(json_t) plain = config_with_specs(other, "x86_64", 0);
    assert_non_null(json_object_get(json_object_get(plain, "linux"), "seccomp"));
    /* a typo must not unconfine, nor start the server confined unnoticed */
    json_object_set_new(specs, "stratos:seccomp", json_string("Unconfined"));
    assert_null(config_with_specs(specs, "x86_64", -EINVAL));
    json_object_set_new(specs, "stratos:seccomp", json_integer(0));
    assert_null(config_with_specs(specs, "x86_64", -EINVAL));
}

/* ------------------------------------------------ compiled seccomp filter */

/* The capabilities config.json keeps (bounding set), NULL-terminated. */
static const char **config_caps(json_t *config, size_t *ret_n)
{
    json_t *caps = json_object_get(
        json_object_get(json_object_get(config, "process"), "capabilities"), "bounding");
    size_t n = json_array_size(caps);
    const char **v = st_new0(const char *, n + 1);
    for (size_t i = 0; i < n; i++)
        v[i] = json_string_value(json_array_get(caps, i));
    *ret_n = n;
    return v;
}

/* Decodes base64 as crun will (standard alphabet, padded, one line). */
static unsigned char *unbase64(const char *b64, size_t *ret_len)
{
    size_t n = strlen(b64);
    assert_int_equal(n % 4, 0);
    assert_null(strchr(b64, '\n'));
    unsigned char *out = st_xcalloc(1, n / 4 * 3 + 1);
    int len = EVP_DecodeBlock(out, (const unsigned char *)b64, (int)n);
    assert_true(len >= 0);
    for (size_t i = n; i > 0 && b64[i - 1] == '='; i--)
        len--; /* EVP_DecodeBlock counts the padding in */
    *ret_len = (size_t)len;
    return out;
}

/* What a process sees of a few system calls (0: success, else errno). */
struct seccomp_probe {
    int getpid, fork, personality, clone3, keyctl, unshare_user;
};

static int errno_of_call(long rc)
{
    return rc < 0 ? errno : 0;
}

/* Runs the calls in a child that first loads bpf (when non-NULL) as crun
 * does: no_new_privs, then the filter. */
static struct seccomp_probe probe_syscalls(const struct st_seccomp_bpf *bpf)
{
    int fds[2];
    assert_int_equal(pipe2(fds, O_CLOEXEC), 0);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        close(fds[0]);
        if (bpf) {
            struct sock_fprog prog = {.len = (unsigned short)(bpf->len / 8),
                                      .filter = (struct sock_filter *)bpf->data};
            if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0 ||
                prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog, 0, 0) < 0)
                _exit(2);
        }
        struct seccomp_probe p;
        p.getpid = errno_of_call(syscall(SYS_getpid));
        pid_t c = fork(); /* glibc: clone without namespace flags */
        if (c == 0)
            _exit(0);
        p.fork = errno_of_call(c);
        if (c > 0)
            waitpid(c, NULL, 0);
        p.personality = errno_of_call(personality(0xffffffff));
        /* size 0 is EINVAL to the kernel itself: ENOSYS can only be the filter */
        p.clone3 = errno_of_call(syscall(SYS_clone3, NULL, 0));
        p.keyctl = errno_of_call(syscall(SYS_keyctl, 0 /* KEYCTL_GET_KEYRING_ID */,
                                         -3 /* KEY_SPEC_SESSION_KEYRING */, 0));
        p.unshare_user = errno_of_call(unshare(CLONE_NEWUSER)); /* last: it changes us */
        _exit(write(fds[1], &p, sizeof(p)) == sizeof(p) ? 0 : 3);
    }
    close(fds[1]);
    struct seccomp_probe p;
    ssize_t n = read(fds[0], &p, sizeof(p));
    close(fds[0]);
    int status;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
        fail_msg("probe child: wait status 0x%x (2: loading the filter failed)", status);
    assert_int_equal(n, sizeof(p));
    return p;
}

static bool profile_covers_host(void)
{
    const char *arch = st_seccomp_native_arch();
    return strcmp(arch, "x86_64") == 0 || strcmp(arch, "aarch64") == 0;
}

/* The program in config.json is the cached compilation of the profile, and
 * the kernel, given it, refuses what the profile refuses. */
static void test_seccomp_bpf_loaded(void **state)
{
    (void)state;
    if (!profile_covers_host())
        skip();
    st_autoptr(json_t) config = config_with_specs(NULL, NULL, 0);
    const char *b64 = json_string_value(
        json_object_get(json_object_get(config, "annotations"), "run.oci.seccomp_bpf_data"));
    assert_non_null(b64);
    assert_non_null(json_object_get(json_object_get(config, "linux"), "seccomp"));
    size_t n_caps;
    st_autofree const char **caps = config_caps(config, &n_caps);
    const struct st_seccomp_bpf *bpf = NULL;
    st_autoptr(st_err) err = NULL;
    assert_int_equal(st_seccomp_bpf_get(NULL, caps, n_caps, &bpf, &err), 0);
    assert_string_equal(b64, bpf->base64);
    size_t len;
    st_autofree unsigned char *data = unbase64(b64, &len);
    assert_int_equal(len, bpf->len);
    assert_memory_equal(data, bpf->data, len);
    printf("compiled profile: %zu instructions, %zu bytes of base64\n", bpf->len / 8, strlen(b64));

    /* Without the filter the same calls do not fail this way, or the
     * checks below would prove nothing. */
    struct seccomp_probe open = probe_syscalls(NULL);
    assert_int_equal(open.getpid, 0);
    assert_int_not_equal(open.clone3, ENOSYS);
    assert_int_not_equal(open.keyctl, EPERM);

    struct seccomp_probe p = probe_syscalls(bpf);
    assert_int_equal(p.getpid, 0);
    assert_int_equal(p.fork, 0);
    assert_int_equal(p.personality, 0);
    assert_int_equal(p.clone3, ENOSYS);
    assert_int_equal(p.keyctl, EPERM);
    assert_int_equal(p.unshare_user, EPERM);

    /* A flavor without the filter gets neither. */
    st_autoptr(json_t) specs = json_pack("{s:s}", "stratos:seccomp", "unconfined");
    st_autoptr(json_t) open_config = config_with_specs(specs, NULL, 0);
    assert_null(
        json_object_get(json_object_get(open_config, "annotations"), "run.oci.seccomp_bpf_data"));
}

struct bpf_job {
    const char *const *caps;
    size_t n_caps;
    const struct st_seccomp_bpf *bpf;
};

static void *bpf_worker(void *arg)
{
    struct bpf_job *j = arg;
    st_autoptr(st_err) err = NULL;
    if (st_seccomp_bpf_get("x86_64", j->caps, j->n_caps, &j->bpf, &err) < 0)
        j->bpf = NULL;
    return NULL;
}

/* Compiled once per (architecture, capability set), whichever thread asks. */
static void test_seccomp_bpf_cache(void **state)
{
    (void)state;
    /* a set no other test uses, so that the threads race for its compilation */
    const char *caps[] = {"CAP_CHOWN", "CAP_KILL", "CAP_SYSLOG"};
    const char *reordered[] = {"CAP_SYSLOG", "CAP_CHOWN", "CAP_KILL"};
    struct bpf_job jobs[4];
    pthread_t threads[4];
    for (int i = 0; i < 4; i++) {
        jobs[i] = (struct bpf_job){.caps = caps, .n_caps = ST_ARRAY_SIZE(caps)};
        assert_int_equal(pthread_create(&threads[i], NULL, bpf_worker, &jobs[i]), 0);
    }
    for (int i = 0; i < 4; i++)
        assert_int_equal(pthread_join(threads[i], NULL), 0);
    const struct st_seccomp_bpf *first = jobs[0].bpf;
    assert_non_null(first);
    for (int i = 1; i < 4; i++)
        assert_ptr_equal(jobs[i].bpf, first);

    /* again, and in another order: the same program, not a new compilation */
    const struct st_seccomp_bpf *again = NULL;
    st_autoptr(st_err) err = NULL;
    int64_t t0 = st_time_mono_ns();
    assert_int_equal(st_seccomp_bpf_get("x86_64", reordered, 3, &again, &err), 0);
    int64_t lookup_ns = st_time_mono_ns() - t0;
    assert_ptr_equal(again, first);
    printf("cached lookup: %.3f ms\n", (double)lookup_ns / 1e6);

    /* another capability set, another program: CAP_SYS_ADMIN allows unshare */
    const char *admin[] = {"CAP_CHOWN", "CAP_KILL", "CAP_SYSLOG", "CAP_SYS_ADMIN"};
    const struct st_seccomp_bpf *other = NULL;
    assert_int_equal(st_seccomp_bpf_get("x86_64", admin, 4, &other, &err), 0);
    assert_ptr_not_equal(other, first);
    assert_true(other->len != first->len || memcmp(other->data, first->data, first->len) != 0);
    /* ...another architecture too */
    const struct st_seccomp_bpf *arm = NULL;
    assert_int_equal(st_seccomp_bpf_get("aarch64", caps, 3, &arm, &err), 0);
    assert_ptr_not_equal(arm, first);
    /* no profile, no program: an error each time, never a NULL program */
    assert_int_equal(st_seccomp_bpf_get("mips64", caps, 3, &arm, &err), -EOPNOTSUPP);
    st_err_clear(&err);
    assert_int_equal(st_seccomp_bpf_get("mips64", caps, 3, &arm, &err), -EOPNOTSUPP);
}

/* st_seccomp_compile of a profile given as JSON text; NULL on refusal. */
static struct st_seccomp_bpf *compile_text(const char *text, int want)
{
    json_t *profile = NULL;
    st_autoptr(st_err) err = NULL;
    assert_int_equal(st_json_parse_object(text, strlen(text), &profile, &err), 0);
    struct st_seccomp_bpf *bpf = NULL;
    int r = st_seccomp_compile(profile, &bpf, &err);
    json_decref(profile);
    if (r != want)
        fail_msg("compiling %s: %d, want %d (%s)", text, r, want, err ? st_err_msg(err) : "");
    if (r < 0)
        printf("refused as expected: %s\n", st_err_msg(err));
    return bpf;
}

static void assert_same_program(const struct st_seccomp_bpf *a, const struct st_seccomp_bpf *b)
{
    assert_non_null(a);
    assert_non_null(b);
    assert_int_equal(a->len, b->len);
    assert_memory_equal(a->data, b->data, a->len);
}

#define HOST_ARCH_PROFILE(arches, rules)                                                           \
    "{\"defaultAction\": \"SCMP_ACT_ERRNO\", \"architectures\": [" arches "], "                    \
    "\"syscalls\": [" rules "]}"

/* crun's reading of linux.seccomp, on cases the default profile does not
 * exercise. */
static void test_seccomp_compile_semantics(void **state)
{
    (void)state;
    const char *native = strcmp(st_seccomp_native_arch(), "aarch64") == 0 ? "\"SCMP_ARCH_AARCH64\""
                                                                          : "\"SCMP_ARCH_X86_64\"";
    st_autofree char *base_text =
        st_sprintf(HOST_ARCH_PROFILE("%s", "{\"names\": [\"getpid\", \"read\"], \"action\": "
                                           "\"SCMP_ACT_ALLOW\"}"),
                   native);
    st_autoptr(st_seccomp_bpf) base = compile_text(base_text, 0);
    assert_true(base->len > 0 && base->len % 8 == 0);

    /* the host's architecture is in whether listed or not */
    st_autoptr(st_seccomp_bpf) implicit =
        compile_text(HOST_ARCH_PROFILE("", "{\"names\": [\"getpid\", \"read\"], \"action\": "
                                           "\"SCMP_ACT_ALLOW\"}"),
                     0);
    assert_same_program(implicit, base);
    /* a name libseccomp does not know is skipped, not an error */
    st_autofree char *unknown_text =
        st_sprintf(HOST_ARCH_PROFILE("%s", "{\"names\": [\"getpid\", \"no_such_call\", \"read\"], "
                                           "\"action\": \"SCMP_ACT_ALLOW\"}"),
                   native);
    st_autoptr(st_seccomp_bpf) unknown = compile_text(unknown_text, 0);
    assert_same_program(unknown, base);
    /* defaultErrnoRet is EPERM when absent; a rule with the default action
     * (ERRNO without errnoRet: EPERM) adds nothing */
    st_autofree char *explicit_text = st_sprintf(
        "{\"defaultAction\": \"SCMP_ACT_ERRNO\", \"defaultErrnoRet\": %d, \"architectures\": "
        "[%s], \"syscalls\": [{\"names\": [\"getpid\", \"read\"], \"action\": "
        "\"SCMP_ACT_ALLOW\"}, {\"names\": [\"kill\"], \"action\": \"SCMP_ACT_ERRNO\"}]}",
        EPERM, native);
    st_autoptr(st_seccomp_bpf) explicit_ = compile_text(explicit_text, 0);
    assert_same_program(explicit_, base);
    /* ...while another errno is a rule of its own */
    st_autofree char *enosys_text = st_sprintf(
        HOST_ARCH_PROFILE("%s", "{\"names\": [\"getpid\", \"read\"], \"action\": "
                                "\"SCMP_ACT_ALLOW\"}, {\"names\": [\"kill\"], \"action\": "
                                "\"SCMP_ACT_ERRNO\", \"errnoRet\": %d}"),
        native, ENOSYS);
    st_autoptr(st_seccomp_bpf) enosys = compile_text(enosys_text, 0);
    assert_true(enosys->len > base->len);
    /* two conditions on one argument: one rule each (libseccomp refuses them
     * in one), so either value is allowed */
    st_autofree char *two_text = st_sprintf(
        HOST_ARCH_PROFILE("%s", "{\"names\": [\"personality\"], \"action\": \"SCMP_ACT_ALLOW\", "
                                "\"args\": [{\"index\": 0, \"value\": 0, \"op\": "
                                "\"SCMP_CMP_EQ\"}, {\"index\": 0, \"value\": 8, \"op\": "
                                "\"SCMP_CMP_EQ\"}]}"),
        native);
    st_autoptr(st_seccomp_bpf) two = compile_text(two_text, 0);
    assert_true(two->len > 0);

    /* what crun refuses */
    assert_null(compile_text(HOST_ARCH_PROFILE("\"SCMP_ARCH_PDP11\"", ""), -EINVAL));
    assert_null(compile_text(
        HOST_ARCH_PROFILE("", "{\"names\": [\"read\"], \"action\": \"SCMP_ACT_ALLOW\", "
                              "\"errnoRet\": 1}"),
        -EINVAL));
    assert_null(compile_text(
        HOST_ARCH_PROFILE("", "{\"names\": [\"read\"], \"action\": \"SCMP_ACT_MAYBE\"}"), -EINVAL));
    assert_null(compile_text(
        HOST_ARCH_PROFILE("",
                          "{\"names\": [\"read\"], \"action\": \"SCMP_ACT_ALLOW\", "
                          "\"args\": [{\"index\": 0, \"value\": 1, \"op\": \"SCMP_CMP_XOR\"}]}"),
        -EINVAL));
    assert_null(compile_text(
        HOST_ARCH_PROFILE("", "{\"names\": [\"read\"], \"action\": \"SCMP_ACT_ALLOW\", "
                              "\"args\": [{\"index\": 6, \"value\": 1, \"op\": \"SCMP_CMP_EQ\"}]}"),
        -EINVAL));
    assert_null(compile_text("{\"syscalls\": []}", -EINVAL));
}

/* The program stratos hands crun is byte for byte the one crun compiles from
 * the same linux.seccomp (read back from its state directory after `crun
 * create`): crun's semantics, not an approximation. Needs root and crun. */
static void test_seccomp_bpf_same_as_crun(void **state)
{
    (void)state;
    st_autofree char *crun = NULL;
    st_autoptr(st_err) err = NULL;
    const struct st_cgroup_host *host = NULL;
    if (geteuid() != 0 || st_proc_find_exec("crun", &crun, &err) < 0 ||
        st_cgroup_host_get(&host, &err) < 0 || !profile_covers_host()) {
        printf("SKIP: needs root, crun and a host with a profile (%s)\n",
               err ? st_err_msg(err) : "not root");
        skip();
    }
    st_autoptr(json_t) config = config_with_specs(NULL, NULL, 0);
    const char *b64 = json_string_value(
        json_object_get(json_object_get(config, "annotations"), "run.oci.seccomp_bpf_data"));
    assert_non_null(b64);
    st_autofree char *tmp = make_tmp();
    st_autofree char *bundle = st_sprintf("%s/bundle", tmp);
    st_autofree char *dev = st_sprintf("%s/rootfs/dev", bundle);
    st_autofree char *bin = st_sprintf("%s/rootfs/bin", bundle);
    st_autofree char *exe = st_sprintf("%s/true", bin);
    st_autofree char *root = st_sprintf("%s/state", tmp);
    st_autofree char *pidfile = st_sprintf("%s/init.pid", tmp);
    st_autofree char *rootfs = st_sprintf("%s/rootfs", bundle);
    assert_int_equal(mkdir(bundle, 0700), 0);
    assert_int_equal(mkdir(rootfs, 0755), 0);
    assert_int_equal(mkdir(dev, 0755), 0);
    assert_int_equal(mkdir(bin, 0755), 0);
    write_text(exe, "#!/bin/sh\n", 0755); /* created, never started: only looked up */
    /* The smallest bundle crun creates, with stratos's linux.seccomp and no
     * annotation: crun compiles it. */
    st_autoptr(json_t) mini = json_pack(
        "{s:s, s:{s:[s], s:s, s:{s:i, s:i}, s:b}, s:{s:s}, s:[], s:{s:[{s:s}, {s:s}], s:O}}",
        "ociVersion", "1.0.2", "process", "args", "/bin/true", "cwd", "/", "user", "uid", 0, "gid",
        0, "noNewPrivileges", 1, "root", "path", "rootfs", "mounts", "linux", "namespaces", "type",
        "mount", "type", "pid", "seccomp",
        json_object_get(json_object_get(config, "linux"), "seccomp"));
    assert_non_null(mini);
    st_autofree char *cfg_path = st_sprintf("%s/config.json", bundle);
    st_autofree char *cfg_text = st_json_dumps_pretty(mini);
    write_text(cfg_path, cfg_text, 0600);
    struct st_proc_opts opts = {
        .stdin_fd = -1,
        .stdout_fd = -1,
        .stderr_fd = 2,
        .hide_mount = host->layout == ST_CGROUP_HYBRID ? host->unified : NULL,
    };
    /* no cgroups: they have nothing to do with seccomp */
    const char *id = "st-seccomp-test";
    const char *create[] = {crun,     "--root",   root,   "--cgroup-manager=disabled",
                            "create", "--bundle", bundle, "--pid-file",
                            pidfile,  id,         NULL};
    /* spawned and waited for, not st_proc_run: that one reads crun's output
     * until it closes, which the created container keeps open */
    pid_t pid = 0;
    int created = 0;
    int rc = st_proc_spawn(create, &opts, &pid, &err);
    if (rc == 0)
        rc = st_proc_wait(pid, 30000, &created, &err);
    if (rc == 0 && !(WIFEXITED(created) && WEXITSTATUS(created) == 0))
        rc = st_err_set(&err, -EIO, "crun create exited with status %d", created);
    st_autofree char *theirs_path = st_sprintf("%s/%s/seccomp.bpf", root, id);
    st_autofree char *theirs = NULL;
    size_t theirs_len = 0;
    st_autoptr(st_err) rerr = NULL;
    if (rc == 0)
        st_read_file(theirs_path, 1 << 20, &theirs, &theirs_len, &rerr);
    /* clean up before judging */
    st_autofree char *pid_text = read_text(pidfile);
    st_autoptr(st_err) derr = NULL;
    const char *del[] = {crun,     "--root",  root, "--cgroup-manager=disabled",
                         "delete", "--force", id,   NULL};
    st_proc_run(del, &opts, 30000, 0, NULL, &derr);
    pid_t init = pid_text ? (pid_t)strtol(pid_text, NULL, 10) : 0;
    if (init > 0 && st_proc_wait_exit(init, 10000) == 0) {
        int status;
        st_proc_reap(init, &status); /* ours when we are a subreaper */
    }
    rm_tree(tmp);
    if (rc < 0)
        fail_msg("crun create: %s", st_err_msg(err));
    if (!theirs)
        fail_msg("crun left no seccomp.bpf: %s", st_err_msg(rerr));
    size_t len;
    st_autofree unsigned char *ours = unbase64(b64, &len);
    printf("crun's program: %zu bytes, ours: %zu\n", theirs_len, len);
    assert_int_equal(theirs_len, len);
    assert_memory_equal(theirs, ours, len);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_seccomp_profile),
        cmocka_unit_test(test_seccomp_flavor_opt_out),
        cmocka_unit_test(test_seccomp_bpf_loaded),
        cmocka_unit_test(test_seccomp_bpf_cache),
        cmocka_unit_test(test_seccomp_compile_semantics),
        cmocka_unit_test(test_seccomp_bpf_same_as_crun),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
