/* What the store's tests (test_store.c, test_store_txn.c, test_store_etcd.c)
 * share: the fixture, a temporary directory per test removed afterwards,
 * and for the etcd groups a real etcd per test on ports of its own (started
 * on the fixture's directory, killed and restarted at will); opening the
 * store the fixture names (a file, or the etcd URL) and the few assertions
 * every group makes. Header-only, as cli_harness.h: each test is its own
 * executable. */
#pragma once

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "lib/cleanup.h"
#include "lib/err.h"
#include "lib/times.h"
#include "store/kv.h"

struct fixture {
    char dir[256];
    char path[300]; /* what open_store opens: a file, or the etcd URL */
    pid_t etcd;     /* > 0 while the fixture's etcd runs */
    int client_port, peer_port;
};

static inline int setup(void **state)
{
    struct fixture *f = st_new0(struct fixture, 1);
    const char *tmp = getenv("TMPDIR");
    snprintf(f->dir, sizeof(f->dir), "%s/st-store-test-XXXXXX", tmp && tmp[0] ? tmp : "/tmp");
    if (!mkdtemp(f->dir)) {
        free(f);
        return -1;
    }
    snprintf(f->path, sizeof(f->path), "%s/store.db", f->dir);
    *state = f;
    return 0;
}

static inline int rm_one(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb;
    (void)flag;
    (void)ftw;
    return remove(path);
}

static inline int teardown(void **state)
{
    struct fixture *f = *state;
    int r = nftw(f->dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
    free(f);
    return r;
}

/* ---- a real etcd per test ------------------------------------------- */

static const char *etcd_binary(void)
{
    static const char *const paths[] = {"/usr/bin/etcd", "/usr/local/bin/etcd"};
    for (size_t i = 0; i < ST_ARRAY_SIZE(paths); i++)
        if (access(paths[i], X_OK) == 0)
            return paths[i];
    return NULL;
}

/* A port the kernel has just handed out (and taken back): free unless
 * someone else grabs it meanwhile, which etcd would then report. */
static inline int free_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof(a);
    if (fd < 0 || bind(fd, (struct sockaddr *)&a, sizeof(a)) < 0 ||
        getsockname(fd, (struct sockaddr *)&a, &len) < 0) {
        if (fd >= 0)
            close(fd);
        return -1;
    }
    close(fd);
    return ntohs(a.sin_port);
}

/* Starts etcd on the fixture's data dir and ports (a restart keeps both)
 * and waits until it answers. */
static inline int etcd_start(struct fixture *f)
{
    char data[320], log[320], client[64], peer[64], cluster[80];
    snprintf(data, sizeof(data), "%s/etcd", f->dir);
    snprintf(log, sizeof(log), "%s/etcd.log", f->dir);
    snprintf(client, sizeof(client), "http://127.0.0.1:%d", f->client_port);
    snprintf(peer, sizeof(peer), "http://127.0.0.1:%d", f->peer_port);
    snprintf(cluster, sizeof(cluster), "st=%s", peer);
    pid_t pid = fork();
    if (pid < 0)
        return -1;
    if (pid == 0) {
        int fd = open(log, O_WRONLY | O_CREAT | O_APPEND, 0600);
        if (fd >= 0) {
            dup2(fd, 1);
            dup2(fd, 2);
        }
        /* one member elects itself: a short election makes it ready in
         * tens of milliseconds */
        execl(etcd_binary(), "etcd", "--name", "st", "--data-dir", data, "--listen-client-urls",
              client, "--advertise-client-urls", client, "--listen-peer-urls", peer,
              "--initial-advertise-peer-urls", peer, "--initial-cluster", cluster,
              "--heartbeat-interval", "10", "--election-timeout", "100", "--logger", "zap",
              "--log-level", "warn", (char *)NULL);
        _exit(127);
    }
    f->etcd = pid;
    int64_t deadline = st_time_mono_ns() + 10 * 1000000000LL;
    while (st_time_mono_ns() < deadline) {
        struct st_kv *kv = NULL;
        if (st_kv_open(f->path, NULL, &kv, NULL) == 0) {
            st_kv_close(kv);
            return 0;
        }
        if (waitpid(pid, NULL, WNOHANG) == pid) {
            f->etcd = 0;
            return -1;
        }
        usleep(20 * 1000);
    }
    return -1;
}

static inline void etcd_kill(struct fixture *f, int sig)
{
    if (f->etcd <= 0)
        return;
    kill(f->etcd, sig);
    int64_t deadline = st_time_mono_ns() + 5 * 1000000000LL;
    while (waitpid(f->etcd, NULL, WNOHANG) == 0) {
        if (st_time_mono_ns() > deadline) {
            kill(f->etcd, SIGKILL);
            waitpid(f->etcd, NULL, 0);
            break;
        }
        usleep(10 * 1000);
    }
    f->etcd = 0;
}

static inline int setup_etcd(void **state)
{
    if (setup(state) < 0)
        return -1;
    struct fixture *f = *state;
    for (int attempt = 0; attempt < 3; attempt++) {
        f->client_port = free_port();
        f->peer_port = free_port();
        snprintf(f->path, sizeof(f->path), "etcd://127.0.0.1:%d", f->client_port);
        if (f->client_port > 0 && f->peer_port > 0 && f->client_port != f->peer_port &&
            etcd_start(f) == 0)
            return 0;
        etcd_kill(f, SIGKILL);
        char data[320];
        snprintf(data, sizeof(data), "%s/etcd", f->dir);
        nftw(data, rm_one, 16, FTW_DEPTH | FTW_PHYS);
    }
    print_error("etcd did not start; its log is in %s/etcd.log\n", f->dir);
    return -1;
}

static inline int teardown_etcd(void **state)
{
    struct fixture *f = *state;
    etcd_kill(f, SIGTERM);
    return teardown(state);
}

static inline struct st_kv *open_store(const char *path, int64_t history)
{
    struct st_kv_options opts = {.history = history};
    struct st_kv *kv = NULL;
    st_autoptr(st_err) err = NULL;
    int r = st_kv_open(path, &opts, &kv, &err);
    if (r < 0)
        fail_msg("open %s: %s", path, st_err_msg(err));
    return kv;
}

static inline int64_t put_str(struct st_kv *kv, const char *key, const char *value, int64_t expect)
{
    int64_t rev = 0;
    st_autoptr(st_err) err = NULL;
    int r = st_kv_put(kv, key, value, strlen(value), expect, &rev, &err);
    if (r < 0)
        fail_msg("put %s: %s", key, st_err_msg(err));
    return rev;
}

/* A call that must fail with code and a message containing needle. */
static inline void expect_err(int r, int code, struct st_err **err, const char *needle)
{
    assert_int_equal(r, code);
    assert_non_null(*err);
    if (!strstr((*err)->msg, needle))
        fail_msg("message '%s' lacks '%s'", (*err)->msg, needle);
    st_err_clear(err);
}

/* key holds want (and, unless mod_rev is 0, was last written at mod_rev). */
static inline void assert_value(struct st_kv *kv, const char *key, const char *want,
                                int64_t mod_rev)
{
    st_autoptr(st_kv_entry) e = NULL;
    st_autoptr(st_err) err = NULL;
    if (st_kv_get(kv, key, &e, &err) < 0)
        fail_msg("get %s: %s", key, st_err_msg(err));
    assert_string_equal(e->value, want);
    if (mod_rev)
        assert_int_equal(e->mod_rev, mod_rev);
}
