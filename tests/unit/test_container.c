/* Tests of the container driver (src/agent/drivers): config.json against its
 * golden file (tests/data/oci-config.golden.json; ST_UPDATE_GOLDEN=1
 * rewrites it), command splitting, hostnames, limits, cgroup layout
 * detection on v1/hybrid/v2 fixtures, the console log kept under its cap,
 * the command a container runs, and a REAL container run by crun on this
 * machine: namespaces, hostname, user data on the console, the key, cgroup
 * limits read back from the kernel, stop, start, re-adoption by another
 * process, OOM, the CPU quota, and a destroy that leaves no process, mount,
 * cgroup or directory. The real tests skip (saying why) without root, crun
 * or overlayfs. Image unpacking and the image cache are tested in
 * test_rootfs.c, child processes in test_proc.c, the seccomp profile and its
 * compiled filter in test_seccomp.c. */
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
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/wait.h>
#include <unistd.h>
#include <cmocka.h>

#include "agent/drivers/cgroup.h"
#include "agent/drivers/container.h"
#include "agent/drivers/oci.h"
#include "agent/drivers/proc.h"
#include "agent/drivers/rootfs.h"
#include "container_harness.h"
#include "lib/cleanup.h"
#include "lib/err.h"
#include "lib/json.h"
#include "lib/times.h"
#include "lib/uuid.h"

/* --------------------------------------------------------------- config */

static void test_oci_golden(void **state)
{
    (void)state;
    st_autoptr(json_t) config = golden_config(ST_CGROUP_HYBRID);
    /* The compiled seccomp program depends on libseccomp's version and on the
     * build machine (its architecture is always in, as under crun): the
     * golden file holds a placeholder; test_seccomp.c checks the value. */
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

/* ------------------------------------------------- what a container runs */

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
        cmocka_unit_test_setup_teardown(test_console_trim, tmp_setup, tmp_teardown),
        cmocka_unit_test(test_console_trim_tmpfs),
        cmocka_unit_test_setup_teardown(test_console_trim_concurrent, tmp_setup, tmp_teardown),
        cmocka_unit_test_setup_teardown(test_command, tmp_setup, tmp_teardown),
        cmocka_unit_test_setup_teardown(test_real_lifecycle, real_setup, real_teardown),
        cmocka_unit_test_setup_teardown(test_real_oom, real_setup, real_teardown),
        cmocka_unit_test_setup_teardown(test_real_cpu_quota, real_setup, real_teardown),
        cmocka_unit_test_setup_teardown(test_real_console_trim, real_setup, real_teardown),
        cmocka_unit_test_setup_teardown(test_real_bad_command, real_setup, real_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, group_teardown);
}
