/* What the container driver's tests (test_container.c, test_rootfs.c,
 * test_proc.c, test_seccomp.c) share: the source tree (for golden files and
 * scripts), a temporary directory per test removed even when the test
 * fails, small file helpers, running a command with its output captured,
 * and the config.json of the golden file (test_container.c compares it,
 * test_seccomp.c reads its linux.seccomp). Header-only, as cli_harness.h:
 * each test is its own executable. */
#pragma once

#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "agent/drivers/cgroup.h"
#include "agent/drivers/oci.h"
#include "agent/drivers/proc.h"
#include "agent/drivers/rootfs.h"
#include "lib/cleanup.h"
#include "lib/err.h"
#include "lib/files.h"
#include "lib/json.h"

static inline char *source_dir(void)
{
    const char *env = getenv("ST_SOURCE_DIR");
    if (env && env[0])
        return st_strdup(env);
    /* __FILE__ is tests/unit/container_harness.h under the source tree. */
    char *s = st_strdup(__FILE__);
    char *p = strstr(s, "/tests/unit/");
    if (p)
        *p = '\0';
    return s;
}

static inline char *make_tmp(void)
{
    char *t = st_strdup("/tmp/st-container-test-XXXXXX");
    assert_non_null(mkdtemp(t));
    return t;
}

static inline void rm_tree(const char *path)
{
    st_autoptr(st_err) e = NULL;
    if (path && st_rootfs_remove_tree(path, &e) < 0)
        fprintf(stderr, "cleanup: %s\n", st_err_msg(e));
}

/* A temporary directory per test, removed even when the test fails. */
static inline int tmp_setup(void **state)
{
    *state = make_tmp();
    return 0;
}

static inline int tmp_teardown(void **state)
{
    rm_tree(*state);
    free(*state);
    return 0;
}

static inline void write_text(const char *path, const char *text, mode_t mode)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
    fchmod(fd, mode);
    close(fd);
}

static inline char *read_text(const char *path)
{
    char *text = NULL;
    st_autoptr(st_err) e = NULL;
    if (st_read_file(path, 4 << 20, &text, NULL, &e) < 0)
        return NULL;
    return text;
}

static inline int run(const char *const argv[], char **out)
{
    st_autoptr(st_err) e = NULL;
    int r = st_proc_run(argv, NULL, 30000, 1 << 20, out, &e);
    if (r < 0)
        fprintf(stderr, "%s: %s\n", argv[0], st_err_msg(e));
    return r;
}

/* The server that tests/data/oci-config.golden.json describes: its limits
 * (test_seccomp.c builds its other configs with them) and its config.json. */
static const struct st_cgroup_limits golden_limits = {
    .cpu_shares = 2048,
    .cpu_quota_us = 50000,
    .cpu_period_us = 100000,
    .memory_limit = 512LL << 20,
    .memory_reservation = 256LL << 20,
    .pids_limit = 512,
};

static inline json_t *golden_config(enum st_cgroup_layout layout)
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
