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
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <cmocka.h>

#include "agent/drivers/cgroup.h"
#include "agent/drivers/container.h"
#include "agent/drivers/oci.h"
#include "agent/drivers/proc.h"
#include "agent/drivers/rootfs.h"
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
    assert_int_equal(st_rootfs_image_get(images, "img-1", tar, &rootfs, &err), 0);
    check_tree(rootfs);
    struct stat a, b;
    assert_int_equal(stat(rootfs, &a), 0);
    assert_int_equal(st_rootfs_image_get(images, "img-1", "/nonexistent.tar", &again, &err), 0);
    assert_int_equal(stat(again, &b), 0);
    assert_int_equal(a.st_ino, b.st_ino);
    st_autofree char *bad = NULL;
    assert_int_equal(st_rootfs_image_get(images, "../x", tar, &bad, &err), -EINVAL);
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
    j->r = st_rootfs_image_get(j->images, "shared", j->tar, &j->rootfs, &err);
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
        cmocka_unit_test_setup_teardown(test_real_bad_command, real_setup, real_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, group_teardown);
}
