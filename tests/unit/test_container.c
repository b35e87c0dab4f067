/* Tests of the container driver (src/agent/drivers): config.json against its
 * golden file (tests/data/oci-config.golden.json; ST_UPDATE_GOLDEN=1
 * rewrites it), command splitting, hostnames, limits, cgroup layout
 * detection on v1/hybrid/v2 fixtures, image unpacking (and the archives it
 * must refuse), safe writes into a root filesystem, child processes, and a
 * REAL container run by crun on this machine: namespaces, hostname, user
 * data on the console, the key, cgroup limits read back from the kernel,
 * stop, start, re-adoption by another process, OOM, the CPU quota, and a
 * destroy that leaves no process, mount, cgroup or directory. The real tests
 * skip (saying why) without root, crun or overlayfs. */
#include <archive.h>
#include <archive_entry.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/falloc.h>
#include <linux/magic.h>
#include <pthread.h>
#include <sched.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/mount.h>
#include <sys/personality.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/statfs.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <cmocka.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <openssl/evp.h>

#include "agent/drivers/cgroup.h"
#include "agent/drivers/container.h"
#include "agent/drivers/oci.h"
#include "agent/drivers/proc.h"
#include "agent/drivers/rootfs.h"
#include "agent/drivers/seccomp.h"
#include "lib/cleanup.h"
#include "lib/err.h"
#include "lib/files.h"
#include "lib/json.h"
#include "lib/times.h"
#include "lib/uuid.h"

/* ---------------------------------------------------------------- helpers */

static char *source_dir(void)
{
    const char *env = getenv("ST_SOURCE_DIR");
    if (env && env[0])
        return st_strdup(env);
    /* __FILE__ is tests/unit/test_container.c under the source tree. */
    char *s = st_strdup(__FILE__);
    char *p = strstr(s, "/tests/unit/");
    if (p)
        *p = '\0';
    return s;
}

static char *make_tmp(void)
{
    char *t = st_strdup("/tmp/st-container-test-XXXXXX");
    assert_non_null(mkdtemp(t));
    return t;
}

static void rm_tree(const char *path)
{
    st_autoptr(st_err) e = NULL;
    if (path && st_rootfs_remove_tree(path, &e) < 0)
        fprintf(stderr, "cleanup: %s\n", st_err_msg(e));
}

/* A temporary directory per test, removed even when the test fails. */
static int tmp_setup(void **state)
{
    *state = make_tmp();
    return 0;
}

static int tmp_teardown(void **state)
{
    rm_tree(*state);
    free(*state);
    return 0;
}

static void write_text(const char *path, const char *text, mode_t mode)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
    fchmod(fd, mode);
    close(fd);
}

static char *read_text(const char *path)
{
    char *text = NULL;
    st_autoptr(st_err) e = NULL;
    if (st_read_file(path, 4 << 20, &text, NULL, &e) < 0)
        return NULL;
    return text;
}

static int run(const char *const argv[], char **out)
{
    st_autoptr(st_err) e = NULL;
    int r = st_proc_run(argv, NULL, 30000, 1 << 20, out, &e);
    if (r < 0)
        fprintf(stderr, "%s: %s\n", argv[0], st_err_msg(e));
    return r;
}

/* --------------------------------------------------------------- config */

static const struct st_cgroup_limits golden_limits = {
    .cpu_shares = 2048,
    .cpu_quota_us = 50000,
    .cpu_period_us = 100000,
    .memory_limit = 512LL << 20,
    .memory_reservation = 256LL << 20,
    .pids_limit = 512,
};

static json_t *golden_config(enum st_cgroup_layout layout)
{
    const char *args[] = {"/bin/sh", "-c", "echo hello; exec sleep 3600", NULL};
    st_autofree char *hostname =
        st_oci_hostname("Web 01_Demo!", "0b6e0c3c-6a2b-4f3e-9d1a-3c5e7f9a1b2d");
    struct st_oci_params p = {
        .id = "0b6e0c3c-6a2b-4f3e-9d1a-3c5e7f9a1b2d",
        .name = "Web 01_Demo!",
        .hostname = hostname,
        .args = args,
        .limits = &golden_limits,
        .layout = layout,
        .arch = "x86_64", /* the golden file is the same on every build machine */
    };
    json_t *config = NULL;
    st_autoptr(st_err) err = NULL;
    assert_int_equal(st_oci_config_new(&p, &config, &err), 0);
    return config;
}

static void test_oci_golden(void **state)
{
    (void)state;
    st_autoptr(json_t) config = golden_config(ST_CGROUP_HYBRID);
    /* The compiled seccomp program depends on libseccomp's version and on the
     * build machine (its architecture is always in, as under crun): the
     * golden file holds a placeholder; test_seccomp_bpf_* check the value. */
    json_t *annotations = json_object_get(config, "annotations");
    assert_non_null(json_object_get(annotations, "run.oci.seccomp_bpf_data"));
    json_object_set_new(annotations, "run.oci.seccomp_bpf_data",
                        json_string("<base64 of linux.seccomp compiled by libseccomp>"));
    st_autofree char *text = st_json_dumps_pretty(config);
    st_autofree char *src = source_dir();
    st_autofree char *golden = st_sprintf("%s/tests/data/oci-config.golden.json", src);
    st_autofree char *want_text = st_sprintf("%s\n", text);
    const char *update = getenv("ST_UPDATE_GOLDEN");
    if (update && strcmp(update, "1") == 0) {
        write_text(golden, want_text, 0644);
        printf("rewrote %s\n", golden);
    }
    st_autofree char *have = read_text(golden);
    if (!have || strcmp(have, want_text) != 0) {
        printf("config.json differs from %s (rerun with ST_UPDATE_GOLDEN=1 if the change is "
               "intended); generated:\n%s\n",
               golden, want_text);
        fail();
    }
    /* What the golden file must say, whatever it holds. */
    assert_string_equal(json_string_value(json_object_get(config, "hostname")), "web-01-demo");
    json_t *process = json_object_get(config, "process");
    assert_true(json_is_true(json_object_get(process, "noNewPrivileges")));
    json_t *caps = json_object_get(json_object_get(process, "capabilities"), "bounding");
    for (size_t i = 0; i < json_array_size(caps); i++) {
        const char *c = json_string_value(json_array_get(caps, i));
        assert_string_not_equal(c, "CAP_NET_RAW");
        assert_string_not_equal(c, "CAP_SYS_ADMIN");
        assert_string_not_equal(c, "CAP_MKNOD");
    }
    json_t *linux_ = json_object_get(config, "linux");
    const char *want_ns[] = {"pid", "mount", "ipc", "uts", "network", "cgroup"};
    json_t *ns = json_object_get(linux_, "namespaces");
    assert_int_equal(json_array_size(ns), ST_ARRAY_SIZE(want_ns));
    for (size_t i = 0; i < ST_ARRAY_SIZE(want_ns); i++)
        assert_string_equal(json_string_value(json_object_get(json_array_get(ns, i), "type")),
                            want_ns[i]);
    json_t *res = json_object_get(linux_, "resources");
    assert_int_equal(json_integer_value(json_object_get(json_object_get(res, "cpu"), "quota")),
                     50000);
    assert_int_equal(
        json_integer_value(json_object_get(json_object_get(res, "memory"), "reservation")),
        256 << 20);
    assert_null(json_object_get(linux_, "cgroupsPath")); /* hybrid: the agent's cgroups */
}

static void test_oci_v2(void **state)
{
    (void)state;
    st_autoptr(json_t) config = golden_config(ST_CGROUP_V2);
    json_t *linux_ = json_object_get(config, "linux");
    assert_string_equal(json_string_value(json_object_get(linux_, "cgroupsPath")),
                        "/stratos/0b6e0c3c-6a2b-4f3e-9d1a-3c5e7f9a1b2d");
    json_t *mounts = json_object_get(config, "mounts");
    bool cgroup_mount = false;
    for (size_t i = 0; i < json_array_size(mounts); i++)
        cgroup_mount =
            cgroup_mount ||
            strcmp(json_string_value(json_object_get(json_array_get(mounts, i), "destination")),
                   "/sys/fs/cgroup") == 0;
    assert_true(cgroup_mount);
}

static void test_hostname(void **state)
{
    (void)state;
    struct {
        const char *name, *want;
    } cases[] = {
        {"demo", "demo"},
        {"Web Server_01", "web-server-01"},
        {"--x..", "x"},
        {"Ünïcode ✓ box", "ncode--box"},
        {"!!!", "server-abcdef12"},
        {NULL, "server-abcdef12"},
        {"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
         "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"},
    };
    for (size_t i = 0; i < ST_ARRAY_SIZE(cases); i++) {
        st_autofree char *h = st_oci_hostname(cases[i].name, "abcdef12-3456");
        assert_string_equal(h, cases[i].want);
    }
}

static void expect_split(const char *line, const char *const *want)
{
    char **argv = NULL;
    st_autoptr(st_err) err = NULL;
    assert_int_equal(st_oci_split_command(line, &argv, &err), 0);
    size_t i = 0;
    for (; want[i]; i++) {
        assert_non_null(argv[i]);
        assert_string_equal(argv[i], want[i]);
    }
    assert_null(argv[i]);
    st_cgroup_strv_free(argv);
}

static void test_split_command(void **state)
{
    (void)state;
    expect_split("/bin/httpd -f -p 80",
                 (const char *const[]){"/bin/httpd", "-f", "-p", "80", NULL});
    expect_split("  sh  -c 'echo $HOME; ls'  ",
                 (const char *const[]){"sh", "-c", "echo $HOME; ls", NULL});
    expect_split("a\"b c\"d e\\ f", (const char *const[]){"ab cd", "e f", NULL});
    expect_split("\"say \\\"hi\\\" \\$x \\n\"", (const char *const[]){"say \"hi\" $x \\n", NULL});
    expect_split("x '' y", (const char *const[]){"x", "", "y", NULL});
    expect_split("$(reboot) `id` *", (const char *const[]){"$(reboot)", "`id`", "*", NULL});

    const char *bad[] = {"echo 'open", "echo \"open", "   ", "", "trailing\\"};
    for (size_t i = 0; i < ST_ARRAY_SIZE(bad); i++) {
        char **argv = NULL;
        st_autoptr(st_err) err = NULL;
        assert_int_equal(st_oci_split_command(bad[i], &argv, &err), -EINVAL);
        assert_non_null(err);
    }
    st_autoptr(st_err) err = NULL;
    char **argv = NULL;
    assert_int_equal(st_oci_split_command("echo 'open", &argv, &err), -EINVAL);
    assert_non_null(strstr(err->msg, "unterminated ' quote at offset 5"));
}

static void test_limits(void **state)
{
    (void)state;
    st_autoptr(json_t) res =
        json_pack("{s:i, s:i, s:i, s:i, s:i, s:i}", "vcpus", 2, "cpu_shares", 2048, "cpu_limit_mhz",
                  1300, "memory_reservation_mb", 256, "memory_limit_mb", 512, "pids_limit", 100);
    struct st_cgroup_limits l;
    st_autoptr(st_err) err = NULL;
    assert_int_equal(st_container_limits(res, 2600, &l, &err), 0);
    assert_int_equal(l.cpu_shares, 2048);
    assert_int_equal(l.cpu_period_us, 100000);
    assert_int_equal(l.cpu_quota_us, 50000); /* 1.3 GHz over 2.6 GHz cores: half a core */
    assert_int_equal(l.memory_limit, 512LL << 20);
    assert_int_equal(l.memory_reservation, 256LL << 20);
    assert_int_equal(l.pids_limit, 100);

    /* Two cores' worth; nothing else given. */
    st_autoptr(json_t) res2 = json_pack("{s:i}", "cpu_limit_mhz", 4000);
    assert_int_equal(st_container_limits(res2, 2000, &l, &err), 0);
    assert_int_equal(l.cpu_quota_us, 200000);
    assert_int_equal(l.cpu_shares, 1024);
    assert_int_equal(l.memory_limit, -1);
    assert_int_equal(l.pids_limit, -1);

    assert_int_equal(st_container_limits(NULL, 2000, &l, &err), 0);
    assert_int_equal(l.cpu_quota_us, -1);

    st_autoptr(json_t) bad = json_pack("{s:i}", "memory_limit_mb", -5);
    assert_int_equal(st_container_limits(bad, 2000, &l, &err), -EINVAL);
    assert_non_null(strstr(err->msg, "memory_limit_mb"));
}

/* ------------------------------------------------------------- cgroups */

static const char hybrid_mountinfo[] =
    "22 27 0:21 / /proc rw,relatime - proc proc rw\n"
    "31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755\n"
    "32 31 0:29 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu\n"
    "33 31 0:30 / /sys/fs/cgroup/cpuacct rw,relatime - cgroup cgroup rw,cpuacct\n"
    "34 31 0:31 / /sys/fs/cgroup/cpuset rw,relatime - cgroup cgroup rw,cpuset\n"
    "35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory\n"
    "36 31 0:33 / /sys/fs/cgroup/devices rw,relatime - cgroup cgroup rw,devices\n"
    "39 31 0:36 / /sys/fs/cgroup/pids rw,relatime - cgroup cgroup rw,pids\n"
    "40 31 0:37 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,name=systemd\n"
    "41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw\n";
static const char hybrid_self[] = "9:name=systemd:/\n8:pids:/\n5:devices:/\n"
                                  "4:memory:/process_api/bf77\n3:cpuset:/\n2:cpuacct:/\n"
                                  "1:cpu:/\n0::/\n";
static const char proc_cgroups[] = "#subsys_name\thierarchy\tnum_cgroups\tenabled\n"
                                   "cpuset\t3\t1\t1\ncpu\t1\t1\t1\ncpuacct\t2\t1\t1\n"
                                   "blkio\t7\t1\t1\nmemory\t4\t40\t1\ndevices\t5\t1\t1\n"
                                   "freezer\t6\t1\t1\nhugetlb\t0\t1\t1\npids\t8\t1\t1\n";

static int fake_controllers(const char *mount, char **ret, void *data)
{
    (void)mount;
    *ret = st_strdup(data ? data : "");
    return 0;
}

static void test_cgroup_hybrid(void **state)
{
    (void)state;
    struct st_cgroup_host *h = NULL;
    st_autoptr(st_err) err = NULL;
    assert_int_equal(st_cgroup_host_parse(hybrid_mountinfo, hybrid_self, proc_cgroups,
                                          fake_controllers, "hugetlb\n", &h, &err),
                     0);
    assert_int_equal(h->layout, ST_CGROUP_HYBRID);
    assert_string_equal(h->unified, "/sys/fs/cgroup/unified");
    st_autoptr(json_t) dirs = NULL;
    assert_int_equal(st_cgroup_instance_dirs(h, "abc", &dirs, &err), 0);
    assert_string_equal(json_string_value(json_object_get(dirs, "memory")),
                        "/sys/fs/cgroup/memory/process_api/bf77/stratos/abc");
    assert_string_equal(json_string_value(json_object_get(dirs, "cpu")),
                        "/sys/fs/cgroup/cpu/stratos/abc");
    assert_string_equal(json_string_value(json_object_get(dirs, "cpuacct")),
                        "/sys/fs/cgroup/cpuacct/stratos/abc");
    assert_string_equal(json_string_value(json_object_get(dirs, "pids")),
                        "/sys/fs/cgroup/pids/stratos/abc");
    assert_string_equal(json_string_value(json_object_get(dirs, "devices")),
                        "/sys/fs/cgroup/devices/stratos/abc");
    char **procs = st_cgroup_instance_join_files(dirs);
    size_t n = 0;
    while (procs[n])
        n++;
    assert_int_equal(n, 5);
    st_cgroup_strv_free(procs);
    st_cgroup_host_free(h);

    /* The same mounts with an empty cgroup2: plain v1 for crun. */
    assert_int_equal(st_cgroup_host_parse(hybrid_mountinfo, hybrid_self, proc_cgroups,
                                          fake_controllers, "", &h, &err),
                     0);
    assert_int_equal(h->layout, ST_CGROUP_V1);
    st_cgroup_host_free(h);
}

static void test_cgroup_v1_comounted(void **state)
{
    (void)state;
    const char mi[] = "30 25 0:26 / /sys/fs/cgroup ro - tmpfs tmpfs ro,mode=755\n"
                      "33 30 0:29 / /sys/fs/cgroup/cpu,cpuacct rw - cgroup cgroup rw,cpu,cpuacct\n"
                      "34 30 0:30 / /sys/fs/cgroup/memory rw - cgroup cgroup rw,memory\n"
                      "35 30 0:31 / /sys/fs/cgroup/pids rw - cgroup cgroup rw,pids\n"
                      "36 30 0:32 /docker/x /sys/fs/cgroup/blkio rw - cgroup cgroup rw,blkio\n";
    const char self[] = "4:pids:/system.slice/agent.service\n3:memory:/system.slice/agent.service\n"
                        "2:cpu,cpuacct:/system.slice/agent.service\n";
    struct st_cgroup_host *h = NULL;
    st_autoptr(st_err) err = NULL;
    assert_int_equal(st_cgroup_host_parse(mi, self, proc_cgroups, fake_controllers, NULL, &h, &err),
                     0);
    assert_int_equal(h->layout, ST_CGROUP_V1);
    assert_null(h->unified);
    st_autoptr(json_t) dirs = NULL;
    assert_int_equal(st_cgroup_instance_dirs(h, "i1", &dirs, &err), 0);
    const char *cpu = json_string_value(json_object_get(dirs, "cpu"));
    assert_string_equal(cpu, "/sys/fs/cgroup/cpu,cpuacct/system.slice/agent.service/stratos/i1");
    assert_string_equal(json_string_value(json_object_get(dirs, "cpuacct")), cpu);
    assert_null(json_object_get(dirs, "devices")); /* not mounted: optional */
    char **procs = st_cgroup_instance_join_files(dirs);
    size_t n = 0;
    while (procs[n])
        n++;
    assert_int_equal(n, 3); /* cpu+cpuacct share one directory */
    st_cgroup_strv_free(procs);
    st_cgroup_host_free(h);

    /* Without a pids hierarchy its limit cannot be enforced: refuse. */
    const char mi2[] = "33 30 0:29 / /sys/fs/cgroup/cpu rw - cgroup cgroup rw,cpu\n"
                       "34 30 0:30 / /sys/fs/cgroup/memory rw - cgroup cgroup rw,memory\n";
    assert_int_equal(st_cgroup_host_parse(mi2, "1:cpu:/\n2:memory:/\n", proc_cgroups,
                                          fake_controllers, NULL, &h, &err),
                     0);
    st_autoptr(json_t) d2 = NULL;
    assert_int_equal(st_cgroup_instance_dirs(h, "i1", &d2, &err), -EOPNOTSUPP);
    assert_non_null(strstr(err->msg, "pids"));
    st_cgroup_host_free(h);
}

static void test_cgroup_v2(void **state)
{
    (void)state;
    const char mi[] = "30 25 0:26 / /sys/fs/cgroup rw,nosuid - cgroup2 cgroup2 rw,nsdelegate\n";
    struct st_cgroup_host *h = NULL;
    st_autoptr(st_err) err = NULL;
    assert_int_equal(st_cgroup_host_parse(mi, "0::/system.slice/agent.service\n", "",
                                          fake_controllers, "cpu memory pids", &h, &err),
                     0);
    assert_int_equal(h->layout, ST_CGROUP_V2);
    st_autoptr(json_t) dirs = NULL;
    assert_int_equal(st_cgroup_instance_dirs(h, "i2", &dirs, &err), 0);
    assert_string_equal(json_string_value(json_object_get(dirs, "unified")),
                        "/sys/fs/cgroup/stratos/i2");
    assert_int_equal(json_object_size(dirs), 1);
    st_cgroup_host_free(h);

    assert_int_equal(st_cgroup_host_parse("22 27 0:21 / /proc rw - proc proc rw\n", "", "",
                                          fake_controllers, NULL, &h, &err),
                     -EOPNOTSUPP);
}

/* --------------------------------------------------------------- images */

static void make_tree(const char *root)
{
    st_autoptr(st_err) e = NULL;
    st_autofree char *bin = st_sprintf("%s/bin", root);
    st_autofree char *etc = st_sprintf("%s/etc", root);
    st_autofree char *secret = st_sprintf("%s/root", root);
    assert_int_equal(st_mkdir_p(bin, 0755, &e), 0);
    assert_int_equal(st_mkdir_p(etc, 0755, &e), 0);
    assert_int_equal(st_mkdir_p(secret, 0700, &e), 0);
    chmod(secret, 0700);
    st_autofree char *tool = st_sprintf("%s/bin/tool", root);
    write_text(tool, "#!/bin/sh\necho tool\n", 0755);
    st_autofree char *os = st_sprintf("%s/etc/os-release", root);
    write_text(os, "ID=test\n", 0644);
    st_autofree char *link = st_sprintf("%s/bin/sh", root);
    assert_int_equal(symlink("/bin/tool", link), 0);
}

static void check_tree(const char *root)
{
    struct stat st;
    st_autofree char *tool = st_sprintf("%s/bin/tool", root);
    assert_int_equal(stat(tool, &st), 0);
    assert_int_equal(st.st_mode & 07777, 0755);
    st_autofree char *secret = st_sprintf("%s/root", root);
    assert_int_equal(stat(secret, &st), 0);
    assert_int_equal(st.st_mode & 07777, 0700);
    st_autofree char *os = st_sprintf("%s/etc/os-release", root);
    st_autofree char *text = read_text(os);
    assert_string_equal(text, "ID=test\n");
    st_autofree char *link = st_sprintf("%s/bin/sh", root);
    char target[256] = {0};
    assert_int_equal(readlink(link, target, sizeof(target) - 1), (ssize_t)strlen("/bin/tool"));
    assert_string_equal(target, "/bin/tool");
}

static void test_unpack_compressions(void **state)
{
    const char *tmp = *state;
    st_autofree char *src = st_sprintf("%s/src", tmp);
    make_tree(src);
    /* tar picks the compression from the name (-a), as a user's tar would. */
    const char *names[] = {"plain.tar", "gzip.tar.gz", "zstd.tar.zst"};
    for (size_t i = 0; i < ST_ARRAY_SIZE(names); i++) {
        st_autofree char *tar = st_sprintf("%s/%s", tmp, names[i]);
        assert_int_equal(
            run((const char *const[]){"tar", "-a", "-C", src, "-cf", tar, ".", NULL}, NULL), 0);
        st_autofree char *magic = read_text(tar);
        assert_non_null(magic);
        if (i == 1)
            assert_true((unsigned char)magic[0] == 0x1f && (unsigned char)magic[1] == 0x8b);
        if (i == 2)
            assert_true((unsigned char)magic[0] == 0x28 && (unsigned char)magic[1] == 0xb5);
        st_autofree char *dest = st_sprintf("%s/out%zu", tmp, i);
        st_autoptr(st_err) err = NULL;
        int r = st_rootfs_unpack(tar, dest, &err);
        if (r < 0)
            fprintf(stderr, "%s: %s\n", names[i], st_err_msg(err));
        assert_int_equal(r, 0);
        check_tree(dest);
    }

    /* The cache: unpacked once, then the same directory again. */
    st_autofree char *images = st_sprintf("%s/images", tmp);
    st_autofree char *tar = st_sprintf("%s/gzip.tar.gz", tmp);
    st_autofree char *rootfs = NULL, *again = NULL;
    st_autoptr(st_err) err = NULL;
    assert_int_equal(st_rootfs_image_get(images, "img-1", tar, NULL, &rootfs, &err), 0);
    check_tree(rootfs);
    struct stat a, b;
    assert_int_equal(stat(rootfs, &a), 0);
    assert_int_equal(st_rootfs_image_get(images, "img-1", "/nonexistent.tar", NULL, &again, &err),
                     0);
    assert_int_equal(stat(again, &b), 0);
    assert_int_equal(a.st_ino, b.st_ino);
    st_autofree char *bad = NULL;
    assert_int_equal(st_rootfs_image_get(images, "../x", tar, NULL, &bad, &err), -EINVAL);
}

struct cache_job {
    const char *images, *tar;
    int r;
    char *rootfs;
};

static void *cache_worker(void *arg)
{
    struct cache_job *j = arg;
    st_autoptr(st_err) err = NULL;
    j->r = st_rootfs_image_get(j->images, "shared", j->tar, NULL, &j->rootfs, &err);
    return NULL;
}

static void test_image_cache_concurrent(void **state)
{
    const char *tmp = *state;
    st_autofree char *src = st_sprintf("%s/src", tmp);
    make_tree(src);
    st_autofree char *tar = st_sprintf("%s/img.tar", tmp);
    assert_int_equal(run((const char *const[]){"tar", "-C", src, "-cf", tar, ".", NULL}, NULL), 0);
    st_autofree char *images = st_sprintf("%s/images", tmp);
    struct cache_job jobs[4];
    pthread_t t[4];
    for (int i = 0; i < 4; i++) {
        jobs[i] = (struct cache_job){.images = images, .tar = tar};
        assert_int_equal(pthread_create(&t[i], NULL, cache_worker, &jobs[i]), 0);
    }
    for (int i = 0; i < 4; i++) {
        pthread_join(t[i], NULL);
        assert_int_equal(jobs[i].r, 0);
        assert_string_equal(jobs[i].rootfs, jobs[0].rootfs);
        check_tree(jobs[i].rootfs);
    }
    for (int i = 0; i < 4; i++)
        free(jobs[i].rootfs);
    st_autofree char *leftover = st_sprintf("%s/shared/rootfs.tmp", images);
    assert_int_equal(access(leftover, F_OK), -1);
}

/* ------------------------------------------------------ the console bound */

/* n lines "line 000042 xxxx...\n" of 64 bytes each, numbered from first. */
static void append_lines(const char *path, int first, int n)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
    assert_true(fd >= 0);
    char line[96];
    for (int i = first; i < first + n; i++) {
        snprintf(line, sizeof(line), "line %06d %051d\n", i, 0);
        assert_int_equal(write(fd, line, 64), 64);
    }
    close(fd);
}

static off_t file_size(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 ? st.st_size : -1;
}

/* Whether the file system under dir collapses ranges (ext4, xfs: yes). */
static bool fs_collapses(const char *dir)
{
    st_autofree char *probe = st_sprintf("%s/collapse-probe", dir);
    int fd = open(probe, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    assert_true(fd >= 0);
    static char block[65536];
    assert_int_equal(write(fd, block, sizeof(block)), (ssize_t)sizeof(block));
    bool ok = fallocate(fd, FALLOC_FL_COLLAPSE_RANGE, 0, 4096) == 0 ||
              fallocate(fd, FALLOC_FL_COLLAPSE_RANGE, 0, 16384) == 0;
    close(fd);
    unlink(probe);
    return ok;
}

/* The lines of text are consecutive numbers ending at last (the first line
 * may be cut); with gaps_ok, only increasing (a copy may lose an append). */
static void check_lines(const char *text, int last, bool gaps_ok)
{
    const char *p = strchr(text, '\n');
    assert_non_null(p);
    p++;
    int prev = -1, n = 0;
    while (*p) {
        const char *eol = strchr(p, '\n');
        assert_non_null(eol);
        assert_int_equal(eol - p, 63);
        assert_memory_equal(p, "line ", 5);
        int v = atoi(p + 5);
        if (prev >= 0 && !gaps_ok)
            assert_int_equal(v, prev + 1);
        if (prev >= 0)
            assert_true(v > prev);
        prev = v;
        n++;
        p = eol + 1;
    }
    assert_true(n > 0);
    assert_int_equal(prev, last);
}

static void check_trim(const char *dir, bool collapses)
{
    st_autofree char *log = st_sprintf("%s/console.log", dir);
    const uint64_t max = 64 * 1024;
    struct st_container_trim t;
    st_autoptr(st_err) err = NULL;

    /* No log yet: nothing to do. */
    assert_int_equal(st_container_console_trim(log, max, &t, &err), 0);
    assert_int_equal(t.dropped, 0);

    /* Exactly at half the cap: kept whole. */
    append_lines(log, 0, 512);
    assert_int_equal(file_size(log), (off_t)(max / 2));
    assert_int_equal(st_container_console_trim(log, max, &t, &err), 0);
    assert_int_equal(t.dropped, 0);
    assert_int_equal(file_size(log), (off_t)(max / 2));

    /* One line past it: the head goes, the newest quarter (or so) stays. */
    append_lines(log, 512, 1);
    st_autofree char *before = read_text(log);
    off_t size = file_size(log);
    assert_int_equal(st_container_console_trim(log, max, &t, &err), 0);
    assert_true(t.dropped > 0);
    assert_int_equal(t.collapsed, collapses);
    off_t after = file_size(log);
    /* offsets: what went plus what stays is what there was */
    assert_int_equal((off_t)t.dropped + after, size);
    assert_true(after >= (off_t)(max / 4) - 4096 && after <= (off_t)(max / 4) + 4096);
    if (collapses)
        assert_int_equal(t.dropped % 4096, 0);
    else
        assert_int_equal(t.dropped % 64, 0); /* the copy starts at a line */
    st_autofree char *text = read_text(log);
    assert_memory_equal(text, before + t.dropped, (size_t)after); /* the newest bytes, intact */
    check_lines(text, 512, false);

    /* Within the cap again: nothing more. */
    assert_int_equal(st_container_console_trim(log, max, &t, &err), 0);
    assert_int_equal(t.dropped, 0);

    /* A cap smaller than a block: no whole block to collapse, so a copy,
     * from the next line start (the newest 100 bytes begin mid-line). */
    st_autofree char *small = st_sprintf("%s/small.log", dir);
    append_lines(small, 0, 5);
    assert_int_equal(st_container_console_trim(small, 400, &t, &err), 0);
    assert_false(t.collapsed);
    assert_int_equal(t.dropped, 256);
    st_autofree char *small_text = read_text(small);
    assert_int_equal(strlen(small_text), 64);
    assert_memory_equal(small_text, "line 000004 ", 12);

    /* Not a regular file: refused. */
    st_autoptr(st_err) e2 = NULL;
    assert_true(st_container_console_trim(dir, max, &t, &e2) < 0);
}

static void test_console_trim(void **state)
{
    const char *tmp = *state;
    bool collapses = fs_collapses(tmp);
    if (!collapses)
        printf("note: %s cannot collapse ranges; only the copy is tested there\n", tmp);
    check_trim(tmp, collapses);
}

/* tmpfs has no FALLOC_FL_COLLAPSE_RANGE: the copy fallback. */
static void test_console_trim_tmpfs(void **state)
{
    (void)state;
    struct statfs sfs;
    if (statfs("/dev/shm", &sfs) < 0 || sfs.f_type != TMPFS_MAGIC) {
        printf("SKIP: /dev/shm is not a tmpfs\n");
        skip();
    }
    char dir[] = "/dev/shm/st-console-test-XXXXXX";
    assert_non_null(mkdtemp(dir));
    assert_false(fs_collapses(dir));
    check_trim(dir, false);
    rm_tree(dir);
}

struct writer {
    const char *path;
    int lines;
};

/* As a container writes its console: one O_APPEND descriptor, many writes. */
static void *writer_main(void *arg)
{
    struct writer *w = arg;
    int fd = open(w->path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
    assert_true(fd >= 0);
    char line[96];
    for (int i = 0; i < w->lines; i++) {
        snprintf(line, sizeof(line), "line %06d %051d\n", i, 0);
        assert_int_equal(write(fd, line, 64), 64);
        if (i % 256 == 0)
            sched_yield();
    }
    close(fd);
    return NULL;
}

/* Trims while a writer appends: with a collapse nothing is lost or torn;
 * with the copy an append may be lost (the documented window), never torn. */
static void check_trim_concurrent(const char *dir, bool collapses)
{
    st_autofree char *log = st_sprintf("%s/console.log", dir);
    struct writer w = {.path = log, .lines = 40000};
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, writer_main, &w), 0);
    unsigned trims = 0;
    uint64_t dropped = 0;
    for (int i = 0; i < 2000 && (trims < 20 || i < 50); i++) {
        struct st_container_trim tr;
        st_autoptr(st_err) err = NULL;
        assert_int_equal(st_container_console_trim(log, 32 * 1024, &tr, &err), 0);
        trims += tr.dropped > 0;
        dropped += tr.dropped;
        usleep(200);
    }
    pthread_join(t, NULL);
    append_lines(log, w.lines, 1);
    st_autofree char *text = read_text(log);
    check_lines(text, w.lines, !collapses);
    if (collapses) /* not a byte lost: dropped + size is all that was written */
        assert_int_equal(dropped + (uint64_t)file_size(log), (uint64_t)(w.lines + 1) * 64);
    assert_true(trims > 0);
}

static void test_console_trim_concurrent(void **state)
{
    const char *tmp = *state;
    check_trim_concurrent(tmp, fs_collapses(tmp));
    struct statfs sfs;
    if (statfs("/dev/shm", &sfs) == 0 && sfs.f_type == TMPFS_MAGIC) {
        char dir[] = "/dev/shm/st-console-test-XXXXXX";
        assert_non_null(mkdtemp(dir));
        check_trim_concurrent(dir, false);
        rm_tree(dir);
    }
}

/* ------------------------------------------------------ image cache prune */

static void test_prune_due(void **state)
{
    (void)state;
    const int64_t now = 1000000, day = 86400;
    /* in use: never, whatever its age or Glance says */
    assert_false(st_rootfs_prune_due(true, -1, now - 10 * day, now, day));
    assert_false(st_rootfs_prune_due(true, 1, now - 10 * day, now, day));
    /* unused: after the max age, not at it */
    assert_false(st_rootfs_prune_due(false, -1, now - day, now, day));
    assert_true(st_rootfs_prune_due(false, -1, now - day - 1, now, day));
    assert_true(st_rootfs_prune_due(false, 0, now - day - 1, now, day));
    /* unused and deleted from Glance: at once */
    assert_true(st_rootfs_prune_due(false, 1, now, now, day));
    assert_false(st_rootfs_prune_due(false, 0, now, now, day));
    /* a clock that went back: not old */
    assert_false(st_rootfs_prune_due(false, -1, now + 100, now, day));
}

static void set_mtime(const char *path, int64_t t)
{
    struct timespec ts[2] = {{.tv_sec = t}, {.tv_sec = t}};
    assert_int_equal(utimensat(AT_FDCWD, path, ts, AT_SYMLINK_NOFOLLOW), 0);
}

static int64_t mtime_of(const char *path)
{
    struct stat st;
    return lstat(path, &st) == 0 ? (int64_t)st.st_mtim.tv_sec : -1;
}

/* images/<id>/rootfs (with a file) and/or images/<id>.blob, unused since t. */
static void fake_image(const char *images, const char *id, bool unpacked, bool blob, int64_t t)
{
    st_autofree char *dir = st_sprintf("%s/%s", images, id);
    if (unpacked) {
        st_autofree char *etc = st_sprintf("%s/rootfs/etc", dir);
        st_autoptr(st_err) e = NULL;
        assert_int_equal(st_mkdir_p(etc, 0755, &e), 0);
        st_autofree char *f = st_sprintf("%s/os-release", etc);
        write_text(f, "ID=test\n", 0644);
        set_mtime(dir, t);
    }
    if (blob) {
        st_autofree char *b = st_sprintf("%s/%s.blob", images, id);
        write_text(b, "tarball", 0600);
        set_mtime(b, t);
    }
}

static bool image_present(const char *images, const char *id)
{
    st_autofree char *dir = st_sprintf("%s/%s", images, id);
    st_autofree char *b = st_sprintf("%s/%s.blob", images, id);
    return access(dir, F_OK) == 0 || access(b, F_OK) == 0;
}

struct gone_calls {
    json_t *asked; /* ids asked about */
};

static int fake_gone(void *userdata, const char *image_id)
{
    struct gone_calls *g = userdata;
    json_object_set_new(g->asked, image_id, json_true());
    if (strcmp(image_id, "img-deleted") == 0)
        return 1;
    if (strcmp(image_id, "img-unknown") == 0)
        return -1;
    return 0;
}

static void test_image_prune(void **state)
{
    const char *tmp = *state;
    st_autofree char *images = st_sprintf("%s/images", tmp);
    st_autofree char *instances = st_sprintf("%s/instances", tmp);
    st_autoptr(st_err) err = NULL;
    assert_int_equal(st_mkdir_p(images, 0700, &err), 0);
    int64_t now = time(NULL), old = now - 3 * 86400;

    fake_image(images, "img-used", true, true, old);     /* an instance's: stays, touched */
    fake_image(images, "img-stopped", true, false, old); /* a stopped instance's: stays */
    fake_image(images, "img-old", true, true, old);      /* unused for 3 days: goes */
    fake_image(images, "img-blob", false, true, old);    /* a download never unpacked: goes */
    fake_image(images, "img-new", true, true, now - 60); /* unused for a minute: stays */
    fake_image(images, "img-deleted", true, true, now);  /* gone from Glance: goes at once */
    fake_image(images, "img-unknown", true, false, now); /* Glance unreachable: stays */
    /* instances: two with records, one being created (no record, no bundle
     * yet: it takes the image's lock before it mounts anything), and one
     * that is not a container (the sim driver's) */
    const char *inst[][2] = {{"i-running", "img-used"},
                             {"i-stopped", "img-stopped"},
                             {"i-creating", NULL},
                             {"i-sim", NULL}};
    for (size_t i = 0; i < ST_ARRAY_SIZE(inst); i++) {
        st_autofree char *d = st_sprintf("%s/%s", instances, inst[i][0]);
        assert_int_equal(st_mkdir_p(d, 0700, &err), 0);
        if (inst[i][1]) {
            st_autofree char *rec = st_sprintf("%s/" ST_ROOTFS_IMAGE_RECORD, d);
            st_autofree char *text = st_sprintf("%s\n", inst[i][1]);
            write_text(rec, text, 0600);
        }
    }
    /* a crashed prune's leftover */
    st_autofree char *trash = st_sprintf("%s/.trash-img-x/etc", images);
    assert_int_equal(st_mkdir_p(trash, 0700, &err), 0);

    struct gone_calls g = {.asked = json_object()};
    struct st_rootfs_prune opts = {
        .max_age_s = 86400, .now_s = now, .image_gone = fake_gone, .userdata = &g};
    unsigned removed = 0;
    assert_int_equal(st_rootfs_image_prune(images, instances, &opts, &removed, &err), 0);
    assert_int_equal(removed, 3);
    assert_true(image_present(images, "img-used"));
    assert_true(image_present(images, "img-stopped"));
    assert_true(image_present(images, "img-new"));
    assert_true(image_present(images, "img-unknown"));
    assert_false(image_present(images, "img-old"));
    assert_false(image_present(images, "img-blob"));
    assert_false(image_present(images, "img-deleted"));
    /* in use: its unused age starts again now */
    st_autofree char *used_dir = st_sprintf("%s/img-used", images);
    assert_true(mtime_of(used_dir) >= now);
    /* Glance is asked only about unused images not already too old */
    assert_null(json_object_get(g.asked, "img-used"));
    assert_null(json_object_get(g.asked, "img-old"));
    assert_non_null(json_object_get(g.asked, "img-new"));
    assert_non_null(json_object_get(g.asked, "img-deleted"));
    /* nothing half-removed is left: no trash, no rootfs of a removed image */
    st_autofree char *count = st_sprintf("test $(ls -A '%s' | grep -c trash) -eq 0", images);
    assert_int_equal(system(count), 0);

    /* A create taking an image records it; the prune then keeps it. */
    st_autofree char *src = st_sprintf("%s/src", tmp);
    make_tree(src);
    st_autofree char *tar = st_sprintf("%s/img.tar", tmp);
    assert_int_equal(run((const char *const[]){"tar", "-C", src, "-cf", tar, ".", NULL}, NULL), 0);
    st_autofree char *inst_new = st_sprintf("%s/i-new", instances);
    assert_int_equal(st_mkdir_p(inst_new, 0700, &err), 0);
    st_autofree char *lower = NULL;
    assert_int_equal(st_rootfs_image_get(images, "img-fresh", tar, inst_new, &lower, &err), 0);
    check_tree(lower);
    st_autofree char *rec = st_sprintf("%s/" ST_ROOTFS_IMAGE_RECORD, inst_new);
    st_autofree char *rec_text = read_text(rec);
    assert_string_equal(rec_text, "img-fresh\n");
    opts.now_s = now + 10 * 86400;
    opts.image_gone = NULL;
    assert_int_equal(st_rootfs_image_prune(images, instances, &opts, &removed, &err), 0);
    assert_int_equal(removed, 2); /* img-new and img-unknown, unused for 10 days */
    assert_true(image_present(images, "img-fresh"));
    assert_true(image_present(images, "img-used"));
    assert_true(image_present(images, "img-stopped"));
    check_tree(lower);

    /* The instance goes (its destroy touches the image first): after the
     * max age from then, the image goes too. */
    st_autofree char *fresh_dir = st_sprintf("%s/img-fresh", images);
    set_mtime(fresh_dir, old);
    st_rootfs_image_release(images, inst_new);
    assert_true(mtime_of(fresh_dir) >= now);
    rm_tree(inst_new);
    opts.now_s = time(NULL) + 10;
    assert_int_equal(st_rootfs_image_prune(images, instances, &opts, &removed, &err), 0);
    assert_true(image_present(images, "img-fresh"));
    opts.now_s = time(NULL) + 86400 + 10;
    assert_int_equal(st_rootfs_image_prune(images, instances, &opts, &removed, &err), 0);
    assert_int_equal(removed, 1);
    assert_false(image_present(images, "img-fresh"));

    /* A create after the prune unpacks again; without the file: -EAGAIN
     * (the agent fetches it again). */
    st_autofree char *again = NULL;
    st_autoptr(st_err) e2 = NULL;
    assert_int_equal(
        st_rootfs_image_get(images, "img-fresh", "/nonexistent.tar", NULL, &again, &e2), -EAGAIN);
    assert_int_equal(st_rootfs_image_get(images, "img-fresh", tar, NULL, &again, &err), 0);
    check_tree(again);

    /* An image whose lock a create holds is left alone. */
    st_autofree char *lock_path = st_sprintf("%s/img-fresh/.lock", images);
    int lock = open(lock_path, O_RDWR | O_CLOEXEC);
    assert_true(lock >= 0);
    assert_int_equal(flock(lock, LOCK_EX), 0);
    opts.now_s = time(NULL) + 86400 + 10;
    assert_int_equal(st_rootfs_image_prune(images, instances, &opts, &removed, &err), 0);
    assert_int_equal(removed, 0);
    assert_true(image_present(images, "img-fresh"));
    close(lock);

    /* An instance with a bundle but no record (an older agent's): its image
     * is unknown, so nothing at all is removed. */
    st_autofree char *legacy = st_sprintf("%s/i-legacy/bundle", instances);
    assert_int_equal(st_mkdir_p(legacy, 0700, &err), 0);
    st_autofree char *config = st_sprintf("%s/config.json", legacy);
    write_text(config, "{}", 0600);
    assert_int_equal(st_rootfs_image_prune(images, instances, &opts, &removed, &err), 0);
    assert_int_equal(removed, 0);
    assert_true(image_present(images, "img-fresh"));
    st_autofree char *legacy_dir = st_sprintf("%s/i-legacy", instances);
    rm_tree(legacy_dir);
    assert_int_equal(st_rootfs_image_prune(images, instances, &opts, &removed, &err), 0);
    assert_int_equal(removed, 1);
    assert_false(image_present(images, "img-fresh"));
    json_decref(g.asked);
}

struct prune_race {
    const char *images, *instances, *tar;
    int creates;
    int failures;
    bool stop; /* __atomic */
};

static void *race_creator(void *arg)
{
    struct prune_race *pr = arg;
    for (int i = 0; i < pr->creates; i++) {
        st_autofree char *inst = st_sprintf("%s/i-%d", pr->instances, i);
        st_autoptr(st_err) err = NULL;
        st_autofree char *lower = NULL;
        if (st_mkdir_p(inst, 0700, &err) < 0 ||
            st_rootfs_image_get(pr->images, "img-race", pr->tar, inst, &lower, &err) < 0) {
            fprintf(stderr, "create %d: %s\n", i, st_err_msg(err));
            pr->failures++;
            continue;
        }
        /* what the overlay would mount: whole, and stays whole while used */
        st_autofree char *f = st_sprintf("%s/etc/os-release", lower);
        st_autofree char *text = read_text(f);
        if (!text || strcmp(text, "ID=test\n") != 0)
            pr->failures++;
        usleep(500);
        st_autofree char *later = read_text(f);
        if (!later)
            pr->failures++;
        rm_tree(inst); /* the instance goes: the image is free again */
    }
    __atomic_store_n(&pr->stop, true, __ATOMIC_RELEASE);
    return NULL;
}

/* Creates race a prune that removes the image whenever nobody uses it: a
 * create either keeps the image (its record is seen) or unpacks it again;
 * never a missing or half-deleted root. */
static void test_image_prune_race(void **state)
{
    const char *tmp = *state;
    st_autofree char *src = st_sprintf("%s/src", tmp);
    make_tree(src);
    st_autofree char *tar = st_sprintf("%s/img.tar", tmp);
    assert_int_equal(run((const char *const[]){"tar", "-C", src, "-cf", tar, ".", NULL}, NULL), 0);
    /* the prune removes the blob with the image: keep the tarball elsewhere */
    st_autofree char *images = st_sprintf("%s/images", tmp);
    st_autofree char *instances = st_sprintf("%s/instances", tmp);
    st_autoptr(st_err) err = NULL;
    assert_int_equal(st_mkdir_p(instances, 0700, &err), 0);
    struct prune_race pr = {.images = images, .instances = instances, .tar = tar, .creates = 200};
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, race_creator, &pr), 0);
    unsigned total = 0;
    struct st_rootfs_prune opts = {.max_age_s = 0};
    while (!__atomic_load_n(&pr.stop, __ATOMIC_ACQUIRE)) {
        unsigned removed = 0;
        opts.now_s = time(NULL) + 10; /* everything unused is old */
        assert_int_equal(st_rootfs_image_prune(images, instances, &opts, &removed, &err), 0);
        total += removed;
    }
    pthread_join(t, NULL);
    assert_int_equal(pr.failures, 0);
    assert_true(total > 0); /* the race really ran */
}

/* An archive written entry by entry, names as given (tar would fix them). */
struct entry {
    const char *name;
    mode_t type;
    const char *content_or_target;
};

static void write_archive(const char *path, const struct entry *entries, size_t n)
{
    struct archive *a = archive_write_new();
    archive_write_set_format_pax_restricted(a);
    assert_int_equal(archive_write_open_filename(a, path), ARCHIVE_OK);
    for (size_t i = 0; i < n; i++) {
        struct archive_entry *e = archive_entry_new();
        archive_entry_set_pathname(e, entries[i].name);
        archive_entry_set_filetype(e, entries[i].type);
        archive_entry_set_perm(e, entries[i].type == AE_IFDIR ? 0755 : 0644);
        const char *c = entries[i].content_or_target;
        if (entries[i].type == AE_IFLNK)
            archive_entry_set_symlink(e, c);
        else if (entries[i].type == AE_IFCHR)
            archive_entry_set_rdev(e, makedev(8, 0));
        else if (entries[i].type == AE_IFREG)
            archive_entry_set_size(e, c ? (la_int64_t)strlen(c) : 0);
        else if (entries[i].type == 0) { /* hard link */
            archive_entry_set_filetype(e, AE_IFREG);
            archive_entry_set_hardlink(e, c);
        }
        assert_int_equal(archive_write_header(a, e), ARCHIVE_OK);
        if (entries[i].type == AE_IFREG && c)
            archive_write_data(a, c, strlen(c));
        archive_entry_free(e);
    }
    archive_write_close(a);
    archive_write_free(a);
}

static bool dir_empty(const char *path)
{
    struct stat st;
    if (stat(path, &st) < 0)
        return true;
    return st.st_nlink == 2; /* only . and .. */
}

static void test_unpack_refuses_escapes(void **state)
{
    const char *tmp = *state;
    st_autofree char *outside = st_sprintf("%s/outside", tmp);
    assert_int_equal(mkdir(outside, 0755), 0);
    st_autofree char *escape_name = st_sprintf("../outside/evil");
    st_autofree char *abs_name = st_sprintf("%s/abs", outside);
    st_autofree char *pwned = st_sprintf("lnk/pwned");
    struct {
        struct entry e[2];
        size_t n;
        const char *want; /* in the error message */
    } cases[] = {
        {{{"ok", AE_IFREG, "x"}, {escape_name, AE_IFREG, "evil"}}, 2, "'../outside/evil'"},
        {{{"a/../../outside/evil", AE_IFREG, "evil"}}, 1, "escapes the root"},
        {{{abs_name, AE_IFREG, "evil"}}, 1, "is an absolute path"},
        {{{"hl", 0, "../outside/x"}}, 1, "hard link target"},
        /* A symlink planted to the outside, then a file through it. */
        {{{"lnk", AE_IFLNK, outside}, {pwned, AE_IFREG, "evil"}}, 2, "lnk/pwned"},
    };
    for (size_t i = 0; i < ST_ARRAY_SIZE(cases); i++) {
        st_autofree char *tar = st_sprintf("%s/bad%zu.tar", tmp, i);
        write_archive(tar, cases[i].e, cases[i].n);
        st_autofree char *dest = st_sprintf("%s/dest%zu", tmp, i);
        st_autoptr(st_err) err = NULL;
        int r = st_rootfs_unpack(tar, dest, &err);
        if (r == 0 || !strstr(err->msg, cases[i].want))
            fprintf(stderr, "case %zu: r=%d msg=%s\n", i, r, err ? err->msg : "(none)");
        assert_true(r < 0);
        assert_non_null(strstr(err->msg, cases[i].want));
        assert_true(dir_empty(outside));
    }

    /* Device nodes are skipped, the rest unpacks. */
    st_autofree char *tar = st_sprintf("%s/dev.tar", tmp);
    struct entry dev[] = {{"dev", AE_IFDIR, NULL},
                          {"dev/sda", AE_IFCHR, NULL},
                          {"etc", AE_IFDIR, NULL},
                          {"etc/x", AE_IFREG, "y"}};
    write_archive(tar, dev, ST_ARRAY_SIZE(dev));
    st_autofree char *dest = st_sprintf("%s/devdest", tmp);
    st_autoptr(st_err) err = NULL;
    assert_int_equal(st_rootfs_unpack(tar, dest, &err), 0);
    st_autofree char *sda = st_sprintf("%s/dev/sda", dest);
    st_autofree char *x = st_sprintf("%s/etc/x", dest);
    assert_int_equal(access(sda, F_OK), -1);
    assert_int_equal(access(x, F_OK), 0);
}

static void test_rootfs_write_stays_inside(void **state)
{
    const char *tmp = *state;
    st_autofree char *root = st_sprintf("%s/root", tmp);
    st_autofree char *outside = st_sprintf("%s/outside", tmp);
    st_autofree char *etc = st_sprintf("%s/etc", root);
    st_autoptr(st_err) err = NULL;
    assert_int_equal(st_mkdir_p(etc, 0755, &err), 0);
    assert_int_equal(mkdir(outside, 0755), 0);

    /* Normal case: dirs created, modes enforced. */
    assert_int_equal(
        st_rootfs_write(root, "/root/.ssh/authorized_keys", "k\n", 2, 0600, 0700, &err), 0);
    struct stat st;
    st_autofree char *keys = st_sprintf("%s/root/.ssh/authorized_keys", root);
    st_autofree char *ssh = st_sprintf("%s/root/.ssh", root);
    assert_int_equal(stat(keys, &st), 0);
    assert_int_equal(st.st_mode & 07777, 0600);
    assert_int_equal(stat(ssh, &st), 0);
    assert_int_equal(st.st_mode & 07777, 0700);

    /* A directory symlink to an absolute host path resolves in the root. */
    st_autofree char *lnk = st_sprintf("%s/var", root);
    assert_int_equal(symlink(outside, lnk), 0);
    int r = st_rootfs_write(root, "var/lib/x", "y", 1, 0644, 0755, &err);
    (void)r; /* created inside root (at root/<outside>/lib) or refused: either way... */
    assert_true(dir_empty(outside)); /* ...the host path is untouched */
    st_err_clear(&err);

    /* The file itself a symlink to the outside: refused. */
    st_autofree char *target = st_sprintf("%s/hostfile", outside);
    st_autofree char *hn = st_sprintf("%s/hostname", etc);
    assert_int_equal(symlink(target, hn), 0);
    assert_true(st_rootfs_write(root, "etc/hostname", "h\n", 2, 0644, 0755, &err) < 0);
    assert_int_equal(access(target, F_OK), -1);

    /* Executable lookups resolve symlinks inside the root too. */
    st_autofree char *bin = st_sprintf("%s/bin", root);
    assert_int_equal(mkdir(bin, 0755), 0);
    st_autofree char *tool = st_sprintf("%s/bin/tool", root);
    write_text(tool, "x", 0755);
    st_autofree char *sh = st_sprintf("%s/bin/sh", root);
    assert_int_equal(symlink("/bin/tool", sh), 0);
    assert_true(st_rootfs_has_exec(root, "/bin/sh"));
    assert_false(st_rootfs_has_exec(root, "/sbin/init"));
    st_autofree char *esc = st_sprintf("%s/bin/esc", root);
    assert_int_equal(symlink("/bin/sh", esc), 0); /* host /bin/sh, but resolved in root */
    assert_true(st_rootfs_has_exec(root, "/bin/esc"));
    st_autofree char *dangling = st_sprintf("%s/bin/true", root);
    assert_int_equal(symlink("/usr/bin/true", dangling), 0); /* exists on host, not in root */
    assert_false(st_rootfs_has_exec(root, "/bin/true"));

    /* remove_tree does not follow a symlink out. */
    st_autofree char *keep = st_sprintf("%s/keep", outside);
    write_text(keep, "keep", 0644);
    st_autofree char *lnk2 = st_sprintf("%s/out", root);
    assert_int_equal(symlink(outside, lnk2), 0);
    assert_int_equal(st_rootfs_remove_tree(root, &err), 0);
    assert_int_equal(access(root, F_OK), -1);
    assert_int_equal(access(keep, F_OK), 0);
}

static void test_command(void **state)
{
    const char *tmp = *state;
    st_autoptr(st_err) err = NULL;
    char **argv = NULL;
    /* Nothing to run. */
    assert_int_equal(st_container_command(NULL, tmp, false, &argv, &err), -ENOEXEC);
    st_err_clear(&err);

    st_autofree char *bin = st_sprintf("%s/bin", tmp);
    assert_int_equal(mkdir(bin, 0755), 0);
    st_autofree char *sh = st_sprintf("%s/bin/sh", tmp);
    write_text(sh, "x", 0755);
    assert_int_equal(st_container_command(NULL, tmp, false, &argv, &err), 0);
    assert_string_equal(argv[0], "/bin/sh");
    assert_string_equal(argv[1], "-c");
    assert_non_null(strstr(argv[2], "while :"));
    st_cgroup_strv_free(argv);

    st_autofree char *sbin = st_sprintf("%s/sbin", tmp);
    assert_int_equal(mkdir(sbin, 0755), 0);
    st_autofree char *init = st_sprintf("%s/sbin/init", tmp);
    write_text(init, "x", 0755);
    assert_int_equal(st_container_command(NULL, tmp, false, &argv, &err), 0);
    assert_string_equal(argv[0], "/sbin/init");
    assert_null(argv[1]);
    st_cgroup_strv_free(argv);

    st_autoptr(json_t) props = json_pack("{s:s}", "os_command_line", "/bin/httpd -f -p '8080'");
    assert_int_equal(st_container_command(props, tmp, true, &argv, &err), 0);
    assert_string_equal(argv[0], "/bin/sh");
    assert_non_null(strstr(argv[2], "/var/lib/cloud/instance/scripts/user-data"));
    assert_string_equal(argv[3], "stratos-init");
    assert_string_equal(argv[4], "/bin/httpd");
    assert_string_equal(argv[7], "8080");
    assert_null(argv[8]);
    st_cgroup_strv_free(argv);

    st_autoptr(json_t) bad = json_pack("{s:s}", "os_command_line", "echo 'x");
    assert_int_equal(st_container_command(bad, tmp, false, &argv, &err), -EINVAL);
    assert_non_null(strstr(err->msg, "os_command_line"));
}

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

/* ------------------------------------------------------ real container */

struct real {
    char *tmp, *data, *tarball;
    struct st_driver_ctx ctx;
    char id[ST_UUID_LEN];
    char skip_reason[256];
};

static int real_image_path(void *agent, const char *image_id, const char **ret_path,
                           struct st_err **err)
{
    (void)image_id;
    (void)err;
    struct real *r = agent;
    *ret_path = r->tarball;
    return 0;
}

/* The busybox rootfs, built once for all the real tests (removed by the
 * group teardown): scripts/busybox-rootfs.sh when it exists, else a minimal
 * one made here from /bin/busybox. */
static char *image_dir, *image_tarball;

static int make_busybox_image(void)
{
    if (image_tarball)
        return 0;
    image_dir = make_tmp();
    st_autofree char *src = source_dir();
    st_autofree char *script = st_sprintf("%s/scripts/busybox-rootfs.sh", src);
    st_autofree char *tarball = st_sprintf("%s/busybox.tar", image_dir);
    int r;
    if (access(script, R_OK) == 0) {
        r = run((const char *const[]){"bash", script, tarball, NULL}, NULL);
    } else {
        st_autofree char *root = st_sprintf("%s/bbroot", image_dir);
        st_autofree char *bin = st_sprintf("%s/bin", root);
        st_autoptr(st_err) e = NULL;
        if (st_mkdir_p(bin, 0755, &e) < 0)
            return -1;
        st_autofree char *bb = st_sprintf("%s/busybox", bin);
        if (run((const char *const[]){"cp", "/bin/busybox", bb, NULL}, NULL) < 0)
            return -1;
        const char *applets[] = {"sh", "sleep", "hostname", "cat", "echo", "mkdir", "tail"};
        for (size_t i = 0; i < ST_ARRAY_SIZE(applets); i++) {
            st_autofree char *l = st_sprintf("%s/%s", bin, applets[i]);
            if (symlink("/bin/busybox", l) < 0)
                return -1;
        }
        r = run((const char *const[]){"tar", "-C", root, "-cf", tarball, ".", NULL}, NULL);
    }
    if (r == 0)
        image_tarball = st_steal(&tarball);
    return r;
}

static int group_teardown(void **state)
{
    (void)state;
    rm_tree(image_dir);
    free(image_dir);
    free(image_tarball);
    return 0;
}

static int real_setup(void **state)
{
    struct real *r = st_new0(struct real, 1);
    *state = r;
    st_autofree char *crun = NULL;
    st_autoptr(st_err) e = NULL;
    if (geteuid() != 0) {
        snprintf(r->skip_reason, sizeof(r->skip_reason), "not root");
        return 0;
    }
    if (st_proc_find_exec("crun", &crun, &e) < 0 || access("/bin/busybox", X_OK) < 0) {
        snprintf(r->skip_reason, sizeof(r->skip_reason),
                 "crun or /bin/busybox missing (apt-get install crun busybox-static)");
        return 0;
    }
    struct st_driver_ctx probe_ctx = {.data_dir = "/tmp"};
    st_autoptr(json_t) facts = json_object();
    if (st_driver_container.probe(&probe_ctx, facts, &e) < 0) {
        snprintf(r->skip_reason, sizeof(r->skip_reason), "driver unusable here: %s", st_err_msg(e));
        return 0;
    }
    /* As the agent: a subreaper, so detached containers are our children. */
    assert_int_equal(st_proc_subreaper_enable(&e), 0);
    if (make_busybox_image() < 0) {
        snprintf(r->skip_reason, sizeof(r->skip_reason), "could not build the busybox image");
        return 0;
    }
    r->tmp = make_tmp();
    r->data = st_sprintf("%s/data", r->tmp);
    assert_int_equal(mkdir(r->data, 0700), 0);
    r->tarball = st_strdup(image_tarball);
    r->ctx = (struct st_driver_ctx){
        .data_dir = r->data, .node_name = "test", .image_path = real_image_path, .agent = r};
    st_uuid_new(r->id);
    return 0;
}

static int real_teardown(void **state)
{
    struct real *r = *state;
    if (r->tmp) {
        st_autoptr(st_err) e = NULL;
        if (st_driver_container.destroy(&r->ctx, r->id, &e) < 0)
            fprintf(stderr, "teardown destroy: %s\n", st_err_msg(e));
        rm_tree(r->tmp);
    }
    free(r->tmp);
    free(r->data);
    free(r->tarball);
    free(r);
    return 0;
}

/* Asserts a driver call succeeded, printing its error otherwise. */
#define ASSERT_OK(call, err)                                                                       \
    do {                                                                                           \
        int rc_ = (call);                                                                          \
        if (rc_ < 0)                                                                               \
            fail_msg("%s: %d %s", #call, rc_, (err) ? st_err_msg(err) : "");                       \
    } while (0)

#define SKIP_UNLESS_REAL(r)                                                                        \
    do {                                                                                           \
        if ((r)->skip_reason[0]) {                                                                 \
            printf("SKIP real container test: %s\n", (r)->skip_reason);                            \
            skip();                                                                                \
        }                                                                                          \
    } while (0)

static json_t *server_doc(struct real *r, const char *name, json_t *resources, const char *cmdline)
{
    json_t *props = json_object();
    if (cmdline)
        json_object_set_new(props, "os_command_line", json_string(cmdline));
    return json_pack("{s:s, s:s, s:{s:{s:s, s:s, s:o}, s:s, s:o, s:s, s:s}}", "id", r->id, "name",
                     name, "spec", "image", "id", "busybox-test", "container_format", "docker",
                     "properties", props, "driver", "container", "resources", resources,
                     "public_key", "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIJtest test@stratos",
                     "user_data",
                     /* #!/bin/sh\necho "hello-from-user-data $(hostname)"\n */
                     "IyEvYmluL3NoCmVjaG8gImhlbGxvLWZyb20tdXNlci1kYXRhICQoaG9zdG5hbWUpIgo=");
}

static unsigned host_mhz(void)
{
    st_autofree char *text = read_text("/proc/cpuinfo");
    const char *p = text ? strstr(text, "cpu MHz") : NULL;
    p = p ? strchr(p, ':') : NULL;
    double mhz = p ? strtod(p + 1, NULL) : 0;
    return mhz >= 1 ? (unsigned)(mhz + 0.5) : 1000;
}

static char *inst_file(struct real *r, const char *name)
{
    return st_sprintf("%s/instances/%s/%s", r->data, r->id, name);
}

static int64_t read_int_file(const char *dir, const char *file)
{
    st_autofree char *path = st_sprintf("%s/%s", dir, file);
    st_autofree char *text = read_text(path);
    if (!text) {
        fprintf(stderr, "cannot read %s\n", path);
        return -2;
    }
    if (strncmp(text, "max", 3) == 0)
        return -1;
    return strtoll(text, NULL, 10);
}

static bool mounted_under(const char *prefix)
{
    st_autofree char *mi = read_text("/proc/self/mountinfo");
    return mi && strstr(mi, prefix);
}

/* Every cgroup directory of the instance, from cgroups.json. */
static json_t *instance_cgroups(struct real *r)
{
    st_autofree char *path = inst_file(r, "cgroups.json");
    st_autofree char *text = read_text(path);
    assert_non_null(text);
    json_t *cg = NULL;
    st_autoptr(st_err) e = NULL;
    assert_int_equal(st_json_parse_object(text, strlen(text), &cg, &e), 0);
    return cg;
}

static void check_limits(json_t *cg, pid_t pid, const char *id, int64_t quota)
{
    json_t *dirs = json_object_get(cg, "dirs");
    const char *u = json_string_value(json_object_get(dirs, "unified"));
    if (u) { /* v2: crun wrote them */
        st_autofree char *max = st_sprintf("%s/memory.max", u);
        st_autofree char *text = read_text(max);
        assert_non_null(text);
        assert_int_equal(strtoll(text, NULL, 10), 128LL << 20);
        assert_int_equal(read_int_file(u, "memory.low"), 64LL << 20);
        assert_int_equal(read_int_file(u, "pids.max"), 256);
        return;
    }
    const char *mem = json_string_value(json_object_get(dirs, "memory"));
    const char *cpu = json_string_value(json_object_get(dirs, "cpu"));
    const char *pids = json_string_value(json_object_get(dirs, "pids"));
    assert_non_null(mem);
    assert_non_null(cpu);
    assert_non_null(pids);
    assert_int_equal(read_int_file(mem, "memory.limit_in_bytes"), 128LL << 20);
    assert_int_equal(read_int_file(mem, "memory.soft_limit_in_bytes"), 64LL << 20);
    assert_int_equal(read_int_file(cpu, "cpu.shares"), 2048);
    assert_int_equal(read_int_file(cpu, "cpu.cfs_period_us"), 100000);
    assert_int_equal(read_int_file(cpu, "cpu.cfs_quota_us"), quota);
    assert_int_equal(read_int_file(pids, "pids.max"), 256);
    /* ...and the container's init is really in them. */
    st_autofree char *procs = st_sprintf("%s/cgroup.procs", mem);
    st_autofree char *list = read_text(procs);
    assert_non_null(list);
    char want[32];
    snprintf(want, sizeof(want), "%d\n", (int)pid);
    assert_non_null(strstr(list, want));
    /* Seen from the host's cgroup namespace, its memory cgroup is ours. */
    st_autofree char *self_path = st_sprintf("/proc/%d/cgroup", (int)pid);
    st_autofree char *self = read_text(self_path);
    assert_non_null(self);
    st_autofree char *line = st_sprintf("/stratos/%s\n", id);
    const char *m = strstr(self, ":memory:");
    assert_non_null(m);
    const char *eol = strchr(m, '\n');
    assert_non_null(eol);
    assert_true(strncmp(eol + 1 - strlen(line), line, strlen(line)) == 0);
}

static void wait_for_console(struct real *r, const char *needle)
{
    st_autofree char *path = inst_file(r, "console.log");
    for (int i = 0; i < 300; i++) {
        st_autofree char *text = read_text(path);
        if (text && strstr(text, needle))
            return;
        usleep(10000);
    }
    st_autofree char *text = read_text(path);
    printf("console.log: %s\n", text ? text : "(none)");
    fail_msg("'%s' not on the console", needle);
}

static size_t count_in(const char *hay, const char *needle)
{
    size_t n = 0;
    for (const char *p = hay; (p = strstr(p, needle)); p += strlen(needle))
        n++;
    return n;
}

static void test_real_lifecycle(void **state)
{
    struct real *r = *state;
    SKIP_UNLESS_REAL(r);
    const struct st_driver *d = &st_driver_container;
    unsigned mhz = host_mhz();
    st_autoptr(json_t) res = json_pack(
        "{s:i, s:i, s:i, s:i, s:i, s:i}", "vcpus", 1, "cpu_shares", 2048, "cpu_limit_mhz",
        (int)(mhz / 2), "memory_reservation_mb", 64, "memory_limit_mb", 128, "pids_limit", 256);
    int64_t quota = (int64_t)(mhz / 2) * 100000 / mhz;
    st_autoptr(json_t) server = server_doc(r, "Demo Server_1", json_incref(res), NULL);
    st_autoptr(st_err) err = NULL;

    /* An "old agent" process creates and starts it, then goes away. */
    int64_t t0 = st_time_mono_ns();
    pid_t old = fork();
    if (old == 0) {
        st_autoptr(st_err) e = NULL;
        int rc = d->create(&r->ctx, server, &e);
        if (rc == 0)
            rc = d->start(&r->ctx, server, &e);
        if (rc < 0)
            fprintf(stderr, "old agent: %s\n", st_err_msg(e));
        _exit(rc < 0 ? 1 : 0);
    }
    int status;
    assert_int_equal(waitpid(old, &status, 0), old);
    assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    printf("create+start: %.1f ms\n", (st_time_mono_ns() - t0) / 1e6);

    /* This process re-adopts it from crun state and the pid file. */
    struct st_instance_info info = {0};
    ASSERT_OK(d->state(&r->ctx, r->id, &info, &err), err);
    assert_int_equal(info.state, ST_INSTANCE_RUNNING);
    pid_t pid = info.pid;
    assert_true(pid > 0);
    st_instance_info_clear(&info);

    /* Its own namespaces. */
    const char *ns[] = {"pid", "mnt", "uts", "net", "ipc", "cgroup"};
    for (size_t i = 0; i < ST_ARRAY_SIZE(ns); i++) {
        char mine[128] = {0}, theirs[128] = {0};
        st_autofree char *a = st_sprintf("/proc/self/ns/%s", ns[i]);
        st_autofree char *b = st_sprintf("/proc/%d/ns/%s", (int)pid, ns[i]);
        assert_true(readlink(a, mine, sizeof(mine) - 1) > 0);
        assert_true(readlink(b, theirs, sizeof(theirs) - 1) > 0);
        if (strcmp(mine, theirs) == 0)
            fail_msg("namespace %s is the host's (%s)", ns[i], mine);
    }
    /* Hostname in its uts namespace = the sanitized server name. */
    char pidstr[16];
    snprintf(pidstr, sizeof(pidstr), "%d", (int)pid);
    st_autofree char *hn = NULL;
    assert_int_equal(
        run((const char *const[]){"nsenter", "-t", pidstr, "-u", "hostname", NULL}, &hn), 0);
    assert_string_equal(hn, "demo-server-1\n");
    /* Only loopback in its network namespace. */
    st_autofree char *links = NULL;
    assert_int_equal(
        run((const char *const[]){"nsenter", "-t", pidstr, "-n", "ip", "-o", "link", NULL}, &links),
        0);
    assert_non_null(strstr(links, "lo:"));
    assert_int_equal(count_in(links, "\n"), 1);

    /* The user-data script ran first, its output on the console. */
    wait_for_console(r, "hello-from-user-data demo-server-1");
    wait_for_console(r, "user-data script exited with status 0");

    /* The key, with the modes sshd wants. */
    struct stat st;
    st_autofree char *keys = st_sprintf("/proc/%d/root/root/.ssh/authorized_keys", (int)pid);
    st_autofree char *ssh = st_sprintf("/proc/%d/root/root/.ssh", (int)pid);
    assert_int_equal(stat(keys, &st), 0);
    assert_int_equal(st.st_mode & 07777, 0600);
    assert_int_equal(stat(ssh, &st), 0);
    assert_int_equal(st.st_mode & 07777, 0700);
    st_autofree char *key_text = read_text(keys);
    assert_non_null(strstr(key_text, "test@stratos"));

    /* Limits, read back from the kernel. */
    st_autoptr(json_t) cg = instance_cgroups(r);
    check_limits(cg, pid, r->id, quota);
    /* Its cgroup namespace is rooted at its own cgroups: from inside, "/". */
    st_autofree char *cg_file = st_sprintf("/proc/%d/cgroup", (int)pid);
    st_autofree char *inside = NULL;
    assert_int_equal(
        run((const char *const[]){"nsenter", "-t", pidstr, "-C", "cat", cg_file, NULL}, &inside),
        0);
    bool v2 = json_object_get(json_object_get(cg, "dirs"), "unified") != NULL;
    if (!strstr(inside, v2 ? "0::/\n" : ":memory:/\n"))
        fail_msg("cgroups seen from inside the container:\n%s", inside);
    struct st_instance_stats stats;
    ASSERT_OK(d->stats(&r->ctx, r->id, &stats, &err), err);
    assert_true(stats.memory_bytes > 0);
    assert_true(stats.pids >= 1);

    /* Stop: SIGTERM is enough for the idle shell. */
    t0 = st_time_mono_ns();
    ASSERT_OK(d->stop(&r->ctx, r->id, 5, &err), err);
    assert_true(st_time_mono_ns() - t0 < 3000000000LL);
    ASSERT_OK(d->state(&r->ctx, r->id, &info, &err), err);
    assert_int_equal(info.state, ST_INSTANCE_STOPPED);
    assert_int_equal(info.exit_status, 0);
    st_instance_info_clear(&info);
    st_autofree char *proc_dir = st_sprintf("/proc/%d", (int)pid);
    assert_int_equal(access(proc_dir, F_OK), -1);     /* reaped, not a zombie */
    ASSERT_OK(d->stop(&r->ctx, r->id, 5, &err), err); /* idempotent */

    /* Start again: running, user data not run twice. */
    ASSERT_OK(d->start(&r->ctx, server, &err), err);
    ASSERT_OK(d->state(&r->ctx, r->id, &info, &err), err);
    assert_int_equal(info.state, ST_INSTANCE_RUNNING);
    pid_t pid2 = info.pid;
    st_instance_info_clear(&info);
    ASSERT_OK(d->start(&r->ctx, server, &err), err); /* idempotent */
    usleep(200000);
    st_autofree char *console_path = NULL;
    ASSERT_OK(d->console_path(&r->ctx, r->id, &console_path, &err), err);
    st_autofree char *console = read_text(console_path);
    assert_int_equal(count_in(console, "hello-from-user-data"), 1);

    json_t *ids = NULL;
    ASSERT_OK(d->list(&r->ctx, &ids, &err), err);
    assert_int_equal(json_array_size(ids), 1);
    assert_string_equal(json_string_value(json_array_get(ids, 0)), r->id);
    json_decref(ids);

    /* Destroy: nothing left behind. */
    st_autofree char *inst = st_sprintf("%s/instances/%s", r->data, r->id);
    ASSERT_OK(d->destroy(&r->ctx, r->id, &err), err);
    st_autofree char *proc2 = st_sprintf("/proc/%d", (int)pid2);
    assert_int_equal(access(proc2, F_OK), -1);
    assert_false(mounted_under(inst));
    json_t *dirs = json_object_get(cg, "dirs");
    const char *k;
    json_t *v;
    json_object_foreach(dirs, k, v)
    {
        if (access(json_string_value(v), F_OK) == 0)
            fail_msg("cgroup %s left behind", json_string_value(v));
    }
    assert_int_equal(access(inst, F_OK), -1);
    st_autofree char *crun_state = st_sprintf("%s/crun/%s", r->data, r->id);
    assert_int_equal(access(crun_state, F_OK), -1);
    ASSERT_OK(d->state(&r->ctx, r->id, &info, &err), err);
    assert_int_equal(info.state, ST_INSTANCE_ABSENT);
    st_instance_info_clear(&info);
    ASSERT_OK(d->destroy(&r->ctx, r->id, &err), err); /* idempotent */
}

static void wait_stopped(struct real *r, struct st_instance_info *info, int max_ms)
{
    st_autoptr(st_err) err = NULL;
    for (int i = 0; i < max_ms / 20; i++) {
        st_instance_info_clear(info);
        assert_int_equal(st_driver_container.state(&r->ctx, r->id, info, &err), 0);
        if (info->state == ST_INSTANCE_STOPPED)
            return;
        usleep(20000);
    }
    fail_msg("instance still %d after %d ms", info->state, max_ms);
}

static void test_real_oom(void **state)
{
    struct real *r = *state;
    SKIP_UNLESS_REAL(r);
    const struct st_driver *d = &st_driver_container;
    /* tail on /dev/zero keeps everything it reads (there is no newline). */
    st_autoptr(json_t) res = json_pack("{s:i, s:i}", "memory_limit_mb", 32, "pids_limit", 64);
    st_autoptr(json_t) server = server_doc(r, "hog", json_incref(res), "tail /dev/zero");
    json_object_del(json_object_get(server, "spec"), "user_data");
    st_autoptr(st_err) err = NULL;
    ASSERT_OK(d->create(&r->ctx, server, &err), err);
    ASSERT_OK(d->start(&r->ctx, server, &err), err);
    struct st_instance_info info = {0};
    wait_stopped(r, &info, 5000);
    assert_int_equal(info.exit_status, 128 + SIGKILL);
    assert_string_equal(json_string_value(json_object_get(info.details, "reason")), "oom");
    assert_true(json_integer_value(json_object_get(info.details, "oom_kills")) >= 1);
    st_instance_info_clear(&info);
    ASSERT_OK(d->destroy(&r->ctx, r->id, &err), err);
}

static void test_real_cpu_quota(void **state)
{
    struct real *r = *state;
    SKIP_UNLESS_REAL(r);
    const struct st_driver *d = &st_driver_container;
    unsigned mhz = host_mhz();
    st_autoptr(json_t) res = json_pack("{s:i}", "cpu_limit_mhz", (int)(mhz / 2));
    st_autoptr(json_t) server =
        server_doc(r, "busy", json_incref(res), "/bin/sh -c 'while :; do :; done'");
    json_object_del(json_object_get(server, "spec"), "user_data");
    st_autoptr(st_err) err = NULL;
    ASSERT_OK(d->create(&r->ctx, server, &err), err);
    ASSERT_OK(d->start(&r->ctx, server, &err), err);
    usleep(300000);
    struct st_instance_stats a, b;
    ASSERT_OK(d->stats(&r->ctx, r->id, &a, &err), err);
    int64_t t0 = st_time_mono_ns();
    usleep(1000000);
    ASSERT_OK(d->stats(&r->ctx, r->id, &b, &err), err);
    double cores = (double)(b.cpu_usage_ns - a.cpu_usage_ns) / (double)(st_time_mono_ns() - t0);
    printf("busy loop under a half-core quota: %.2f cores\n", cores);
    assert_true(cores > 0.4 && cores < 0.6);
    /* A shell that ignores nothing still stops within the grace. */
    ASSERT_OK(d->stop(&r->ctx, r->id, 1, &err), err);
    ASSERT_OK(d->destroy(&r->ctx, r->id, &err), err);
}

/* A chatty container's console log stays bounded while it writes (the
 * agent trims it on every check; here, every few ms), and what stays is
 * the newest output, whole: the container's own O_APPEND writes continue
 * at the new end. Its image is recorded in its instance directory. */
static void test_real_console_trim(void **state)
{
    struct real *r = *state;
    SKIP_UNLESS_REAL(r);
    const struct st_driver *d = &st_driver_container;
    st_autoptr(json_t) server = server_doc(
        r, "chatty", json_object(),
        "/bin/sh -c 'i=0; while [ $i -lt 100000 ]; do echo \"line $i\"; i=$((i+1)); done; "
        "echo done; exec sleep 3600'");
    st_autoptr(st_err) err = NULL;
    ASSERT_OK(d->create(&r->ctx, server, &err), err);
    st_autofree char *record = inst_file(r, ST_ROOTFS_IMAGE_RECORD);
    st_autofree char *record_text = read_text(record);
    assert_non_null(record_text);
    assert_string_equal(record_text, "busybox-test\n");
    ASSERT_OK(d->start(&r->ctx, server, &err), err);

    st_autofree char *log = inst_file(r, "console.log");
    const uint64_t max = 64 * 1024;
    bool collapses = fs_collapses(r->tmp);
    uint64_t dropped = 0;
    unsigned trims = 0;
    off_t largest = 0;
    for (int i = 0; i < 6000; i++) {
        struct st_container_trim t;
        ASSERT_OK(st_container_console_trim(log, max, &t, &err), err);
        dropped += t.dropped;
        trims += t.dropped > 0;
        off_t size = file_size(log);
        if (size > largest)
            largest = size;
        st_autofree char *text = read_text(log);
        if (text && strstr(text, "\ndone\n"))
            break;
        usleep(5000);
    }
    struct st_container_trim t;
    ASSERT_OK(st_container_console_trim(log, max, &t, &err), err);
    dropped += t.dropped;
    st_autofree char *text = read_text(log);
    assert_non_null(text);
    assert_non_null(strstr(text, "\nline 99999\ndone\n"));
    printf("console: %u trims, %llu bytes dropped, %lld kept, largest seen %lld (cap %llu, %s)\n",
           trims, (unsigned long long)dropped, (long long)file_size(log), (long long)largest,
           (unsigned long long)max, collapses ? "collapse" : "copy");
    assert_true(trims > 0);
    assert_true(file_size(log) <= (off_t)max);
    /* the newest lines, in order (the first may be cut; with a copy an
     * append may be lost in its window, so only increasing) */
    const char *p = strchr(text, '\n') + 1;
    long prev = -1;
    for (const char *eol; (eol = strchr(p, '\n')) && strncmp(p, "done\n", 5) != 0; p = eol + 1) {
        assert_memory_equal(p, "line ", 5);
        long v = strtol(p + 5, NULL, 10);
        if (prev >= 0)
            assert_true(collapses ? v == prev + 1 : v > prev);
        prev = v;
    }
    assert_int_equal(prev, 99999);
}

static void test_real_bad_command(void **state)
{
    struct real *r = *state;
    SKIP_UNLESS_REAL(r);
    const struct st_driver *d = &st_driver_container;
    st_autoptr(json_t) server = server_doc(r, "bad", json_object(), "/bin/no-such-binary");
    json_object_del(json_object_get(server, "spec"), "user_data");
    st_autoptr(st_err) err = NULL;
    ASSERT_OK(d->create(&r->ctx, server, &err), err);
    int rc = d->start(&r->ctx, server, &err);
    assert_true(rc < 0);
    assert_non_null(strstr(err->msg, "no-such-binary"));
    st_err_clear(&err);
    ASSERT_OK(d->destroy(&r->ctx, r->id, &err), err);
    st_autofree char *inst = st_sprintf("%s/instances/%s", r->data, r->id);
    assert_int_equal(access(inst, F_OK), -1);
    assert_false(mounted_under(inst));
}

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
    int rc = st_proc_run(create, &opts, 30000, 0, NULL, &err);
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
        cmocka_unit_test(test_oci_golden),
        cmocka_unit_test(test_oci_v2),
        cmocka_unit_test(test_hostname),
        cmocka_unit_test(test_split_command),
        cmocka_unit_test(test_limits),
        cmocka_unit_test(test_cgroup_hybrid),
        cmocka_unit_test(test_cgroup_v1_comounted),
        cmocka_unit_test(test_cgroup_v2),
        cmocka_unit_test_setup_teardown(test_unpack_compressions, tmp_setup, tmp_teardown),
        cmocka_unit_test_setup_teardown(test_image_cache_concurrent, tmp_setup, tmp_teardown),
        cmocka_unit_test_setup_teardown(test_console_trim, tmp_setup, tmp_teardown),
        cmocka_unit_test(test_console_trim_tmpfs),
        cmocka_unit_test_setup_teardown(test_console_trim_concurrent, tmp_setup, tmp_teardown),
        cmocka_unit_test(test_prune_due),
        cmocka_unit_test_setup_teardown(test_image_prune, tmp_setup, tmp_teardown),
        cmocka_unit_test_setup_teardown(test_image_prune_race, tmp_setup, tmp_teardown),
        cmocka_unit_test_setup_teardown(test_unpack_refuses_escapes, tmp_setup, tmp_teardown),
        cmocka_unit_test_setup_teardown(test_rootfs_write_stays_inside, tmp_setup, tmp_teardown),
        cmocka_unit_test_setup_teardown(test_command, tmp_setup, tmp_teardown),
        cmocka_unit_test(test_proc),
        cmocka_unit_test(test_proc_child_state),
        cmocka_unit_test_setup_teardown(test_proc_exec_fails, tmp_setup, tmp_teardown),
        cmocka_unit_test_setup_teardown(test_proc_hide_mount, tmp_setup, tmp_teardown),
        cmocka_unit_test(test_proc_concurrent),
        cmocka_unit_test_setup_teardown(test_real_lifecycle, real_setup, real_teardown),
        cmocka_unit_test_setup_teardown(test_real_oom, real_setup, real_teardown),
        cmocka_unit_test_setup_teardown(test_real_cpu_quota, real_setup, real_teardown),
        cmocka_unit_test_setup_teardown(test_real_console_trim, real_setup, real_teardown),
        cmocka_unit_test_setup_teardown(test_real_bad_command, real_setup, real_teardown),
        cmocka_unit_test(test_seccomp_profile),
        cmocka_unit_test(test_seccomp_flavor_opt_out),
        cmocka_unit_test(test_seccomp_bpf_loaded),
        cmocka_unit_test(test_seccomp_bpf_cache),
        cmocka_unit_test(test_seccomp_compile_semantics),
        cmocka_unit_test(test_seccomp_bpf_same_as_crun),
    };
    return cmocka_run_group_tests(tests, NULL, group_teardown);
}
