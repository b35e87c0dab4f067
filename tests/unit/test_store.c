/* Unit tests of src/store, on each backend: what a caller sees from
 * put/get/delete/list, revisions, compare-and-swap under contention, watch
 * streams, compaction, reopening, bad input and multi-key transactions
 * (atomic, one revision, watched whole, raced). The "store" group runs them
 * on SQLite, with what only SQLite has (surviving kill -9 of the process
 * that holds the file, the schema migration of an older file); the
 * "store-etcd" group runs the same tests on a real etcd started for each
 * test (skipped when etcd is not installed), with what only etcd has:
 * several endpoints, two handles as two controllers, etcd's request limit,
 * history from before a handle was opened or older than its window of
 * recent events, etcd killed and restarted under an open handle. Each test
 * runs in its own temporary directory, removed afterwards. */
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <poll.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sqlite3.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <cmocka.h>

#include "lib/cleanup.h"
#include "lib/err.h"
#include "lib/times.h"
#include "store/kv-priv.h"
#include "store/kv.h"

struct fixture {
    char dir[256];
    char path[300]; /* what open_store opens: a file, or the etcd URL */
    pid_t etcd;     /* > 0 while the fixture's etcd runs */
    int client_port, peer_port;
};

static int setup(void **state)
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

static int rm_one(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb;
    (void)flag;
    (void)ftw;
    return remove(path);
}

static int teardown(void **state)
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
static int free_port(void)
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
static int etcd_start(struct fixture *f)
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

static void etcd_kill(struct fixture *f, int sig)
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

static int setup_etcd(void **state)
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

static int teardown_etcd(void **state)
{
    struct fixture *f = *state;
    etcd_kill(f, SIGTERM);
    return teardown(state);
}

static struct st_kv *open_store(const char *path, int64_t history)
{
    struct st_kv_options opts = {.history = history};
    struct st_kv *kv = NULL;
    st_autoptr(st_err) err = NULL;
    int r = st_kv_open(path, &opts, &kv, &err);
    if (r < 0)
        fail_msg("open %s: %s", path, st_err_msg(err));
    return kv;
}

static int64_t put_str(struct st_kv *kv, const char *key, const char *value, int64_t expect)
{
    int64_t rev = 0;
    st_autoptr(st_err) err = NULL;
    int r = st_kv_put(kv, key, value, strlen(value), expect, &rev, &err);
    if (r < 0)
        fail_msg("put %s: %s", key, st_err_msg(err));
    return rev;
}

static void test_basic(void **state)
{
    struct fixture *f = *state;
    st_autoptr(st_kv) kv = open_store(f->path, 0);
    assert_int_equal(st_kv_revision(kv), 0);

    st_autoptr(st_err) err = NULL;
    st_autoptr(st_kv_entry) e = NULL;
    assert_int_equal(st_kv_get(kv, "/servers/a", &e, &err), -ENOENT);
    assert_non_null(strstr(err->msg, "'/servers/a' not found"));
    st_err_clear(&err);

    put_str(kv, "/servers/a", "{\"name\":\"a\"}", ST_KV_ANY);
    assert_int_equal(st_kv_get(kv, "/servers/a", &e, &err), 0);
    assert_string_equal(e->key, "/servers/a");
    assert_string_equal(e->value, "{\"name\":\"a\"}");
    assert_int_equal(e->value_len, 12);

    /* values are bytes: embedded NULs and the empty value round-trip */
    const char bin[] = {'x', 0, 'y', 0};
    assert_int_equal(st_kv_put(kv, "/bin", bin, sizeof(bin), ST_KV_ANY, NULL, &err), 0);
    assert_int_equal(st_kv_put(kv, "/empty", NULL, 0, ST_KV_ANY, NULL, &err), 0);
    st_autoptr(st_kv_entry) b = NULL;
    assert_int_equal(st_kv_get(kv, "/bin", &b, &err), 0);
    assert_int_equal(b->value_len, sizeof(bin));
    assert_memory_equal(b->value, bin, sizeof(bin));
    st_autoptr(st_kv_entry) em = NULL;
    assert_int_equal(st_kv_get(kv, "/empty", &em, &err), 0);
    assert_int_equal(em->value_len, 0);
    assert_string_equal(em->value, "");

    put_str(kv, "/servers/b", "{}", ST_KV_ANY);
    st_autoptr(st_kv_list) l = NULL;
    assert_int_equal(st_kv_list(kv, "/servers/", NULL, 0, &l, &err), 0);
    assert_int_equal(l->count, 2);
    assert_false(l->more);
    assert_string_equal(l->entries[0].key, "/servers/a");
    assert_string_equal(l->entries[1].key, "/servers/b");
    assert_int_equal(l->revision, 4);

    int64_t rev = 0;
    assert_int_equal(st_kv_delete(kv, "/servers/a", ST_KV_ANY, &rev, &err), 0);
    assert_int_equal(rev, 5);
    assert_int_equal(st_kv_delete(kv, "/servers/a", ST_KV_ANY, &rev, &err), -ENOENT);
    assert_non_null(strstr(err->msg, "not found"));
    st_err_clear(&err);
    st_autoptr(st_kv_entry) gone = NULL;
    assert_int_equal(st_kv_get(kv, "/servers/a", &gone, NULL), -ENOENT);
    assert_int_equal(st_kv_revision(kv), 5);
}

static void test_revisions(void **state)
{
    struct fixture *f = *state;
    st_autoptr(st_kv) kv = open_store(f->path, 0);
    assert_int_equal(put_str(kv, "/k", "1", ST_KV_ANY), 1);
    assert_int_equal(put_str(kv, "/other", "x", ST_KV_ANY), 2);
    assert_int_equal(put_str(kv, "/k", "2", ST_KV_ANY), 3);

    st_autoptr(st_kv_entry) e = NULL;
    assert_int_equal(st_kv_get(kv, "/k", &e, NULL), 0);
    assert_int_equal(e->create_rev, 1);
    assert_int_equal(e->mod_rev, 3);
    assert_int_equal(e->version, 2);
    assert_string_equal(e->value, "2");

    /* a delete and re-create starts the key's life again */
    int64_t rev;
    assert_int_equal(st_kv_delete(kv, "/k", 3, &rev, NULL), 0);
    assert_int_equal(rev, 4);
    assert_int_equal(put_str(kv, "/k", "3", ST_KV_ABSENT), 5);
    st_autoptr(st_kv_entry) e2 = NULL;
    assert_int_equal(st_kv_get(kv, "/k", &e2, NULL), 0);
    assert_int_equal(e2->create_rev, 5);
    assert_int_equal(e2->mod_rev, 5);
    assert_int_equal(e2->version, 1);
    assert_int_equal(st_kv_revision(kv), 5);
}

static void test_cas(void **state)
{
    struct fixture *f = *state;
    st_autoptr(st_kv) kv = open_store(f->path, 0);
    st_autoptr(st_err) err = NULL;
    int64_t rev = put_str(kv, "/cas", "v1", ST_KV_ABSENT);

    assert_int_equal(st_kv_put(kv, "/cas", "v2", 2, ST_KV_ABSENT, NULL, &err), -ECANCELED);
    assert_non_null(strstr(err->msg, "'/cas' already exists"));
    st_err_clear(&err);

    int64_t rev2 = put_str(kv, "/cas", "v2", rev);
    assert_true(rev2 > rev);
    assert_int_equal(st_kv_put(kv, "/cas", "v3", 2, rev, NULL, &err), -ECANCELED);
    assert_non_null(strstr(err->msg, "was modified"));
    st_err_clear(&err);
    assert_int_equal(st_kv_put(kv, "/nope", "v", 1, rev, NULL, &err), -ECANCELED);
    assert_non_null(strstr(err->msg, "no longer exists"));
    st_err_clear(&err);

    /* a refused write changes nothing, not even the revision */
    st_autoptr(st_kv_entry) e = NULL;
    assert_int_equal(st_kv_get(kv, "/cas", &e, NULL), 0);
    assert_string_equal(e->value, "v2");
    assert_int_equal(st_kv_revision(kv), rev2);

    assert_int_equal(st_kv_delete(kv, "/cas", rev, NULL, &err), -ECANCELED);
    st_err_clear(&err);
    assert_int_equal(st_kv_delete(kv, "/cas", rev2, NULL, &err), 0);
    assert_int_equal(st_kv_delete(kv, "/cas", rev2, NULL, &err), -ENOENT);
}

static void test_list_paging(void **state)
{
    struct fixture *f = *state;
    st_autoptr(st_kv) kv = open_store(f->path, 0);
    /* neighbours that a sloppy prefix match would catch: LIKE wildcards,
     * the byte after '/', and high bytes */
    const char *keys[] = {"/a_b/1", "/a_b/2", "/a_b/3",    "/a_b/4",        "/a_b/5",
                          "/a_b/6", "/a_b/7", "/a_b/\x01", "/a_b/\xff\xff", "/axb/1",
                          "/a_b0",  "/a_b",   "/a_c/1"};
    for (size_t i = 0; i < ST_ARRAY_SIZE(keys); i++)
        put_str(kv, keys[i], keys[i], ST_KV_ANY);

    const char *want[] = {"/a_b/\x01", "/a_b/1", "/a_b/2", "/a_b/3",       "/a_b/4",
                          "/a_b/5",    "/a_b/6", "/a_b/7", "/a_b/\xff\xff"};
    size_t got = 0, pages = 0;
    st_autofree char *after = NULL;
    for (;;) {
        st_autoptr(st_kv_list) l = NULL;
        st_autoptr(st_err) err = NULL;
        assert_int_equal(st_kv_list(kv, "/a_b/", after, 4, &l, &err), 0);
        assert_int_equal(l->revision, (int64_t)ST_ARRAY_SIZE(keys));
        pages++;
        for (size_t i = 0; i < l->count; i++) {
            assert_true(got < ST_ARRAY_SIZE(want));
            assert_string_equal(l->entries[i].key, want[got]);
            assert_string_equal(l->entries[i].value, want[got]);
            got++;
        }
        if (!l->more)
            break;
        assert_int_equal(l->count, 4);
        free(after);
        after = st_strdup(l->entries[l->count - 1].key);
    }
    assert_int_equal(got, ST_ARRAY_SIZE(want));
    assert_int_equal(pages, 3);

    /* a page that ends exactly at the last key says there is no more */
    st_autoptr(st_kv_list) exact = NULL;
    assert_int_equal(st_kv_list(kv, "/a_b/", "/a_b/5", 3, &exact, NULL), 0);
    assert_int_equal(exact->count, 3);
    assert_false(exact->more);

    /* start_after past the prefix's range: nothing */
    st_autoptr(st_kv_list) late = NULL;
    assert_int_equal(st_kv_list(kv, "/a_b/", "/a_c", 0, &late, NULL), 0);
    assert_int_equal(late->count, 0);
    assert_false(late->more);

    /* start_after before the prefix starts at the prefix */
    st_autoptr(st_kv_list) early = NULL;
    assert_int_equal(st_kv_list(kv, "/a_b/", "/", 1, &early, NULL), 0);
    assert_int_equal(early->count, 1);
    assert_string_equal(early->entries[0].key, "/a_b/\x01");
    assert_true(early->more);

    /* every key, and a prefix of 0xff bytes (no successor string) */
    st_autoptr(st_kv_list) all = NULL;
    assert_int_equal(st_kv_list(kv, "", NULL, 0, &all, NULL), 0);
    assert_int_equal(all->count, ST_ARRAY_SIZE(keys));
    for (size_t i = 1; i < all->count; i++)
        assert_true(strcmp(all->entries[i - 1].key, all->entries[i].key) < 0);
    st_autoptr(st_kv_list) ff = NULL;
    assert_int_equal(st_kv_list(kv, "/a_b/\xff", NULL, 0, &ff, NULL), 0);
    assert_int_equal(ff->count, 1);
    assert_string_equal(ff->entries[0].key, "/a_b/\xff\xff");
    st_autoptr(st_kv_list) none = NULL;
    assert_int_equal(st_kv_list(kv, "/zzz/", NULL, 0, &none, NULL), 0);
    assert_int_equal(none->count, 0);
    assert_false(none->more);
}

static void test_prefix_end(void **state)
{
    (void)state;
    size_t n;
    st_autofree char *a = st_kv_prefix_end("/a/", &n);
    assert_string_equal(a, "/a0");
    assert_int_equal(n, 3);
    st_autofree char *b = st_kv_prefix_end("/a\xff\xff", &n);
    assert_string_equal(b, "/b");
    assert_null(st_kv_prefix_end("\xff\xff", &n));
    assert_null(st_kv_prefix_end("", &n));
}

/* ---- concurrency ---------------------------------------------------- */

#define CAS_THREADS    8
#define CAS_INCREMENTS 40

struct cas_ctx {
    struct st_kv *kv;
    int conflicts;
    int failures;
};

static void *cas_worker(void *arg)
{
    struct cas_ctx *c = arg;
    for (int i = 0; i < CAS_INCREMENTS; i++) {
        for (;;) {
            st_autoptr(st_kv_entry) e = NULL;
            st_autoptr(st_err) err = NULL;
            if (st_kv_get(c->kv, "/counter", &e, &err) < 0) {
                __atomic_add_fetch(&c->failures, 1, __ATOMIC_RELAXED);
                return NULL;
            }
            char buf[32];
            int n = snprintf(buf, sizeof(buf), "%ld", strtol(e->value, NULL, 10) + 1);
            int r = st_kv_put(c->kv, "/counter", buf, (size_t)n, e->mod_rev, NULL, &err);
            if (r == 0)
                break;
            if (r != -ECANCELED) {
                __atomic_add_fetch(&c->failures, 1, __ATOMIC_RELAXED);
                return NULL;
            }
            __atomic_add_fetch(&c->conflicts, 1, __ATOMIC_RELAXED);
        }
    }
    return NULL;
}

static void test_concurrent_cas(void **state)
{
    struct fixture *f = *state;
    st_autoptr(st_kv) kv = open_store(f->path, 0);
    put_str(kv, "/counter", "0", ST_KV_ABSENT);
    struct cas_ctx c = {.kv = kv};
    pthread_t t[CAS_THREADS];
    for (int i = 0; i < CAS_THREADS; i++)
        assert_int_equal(pthread_create(&t[i], NULL, cas_worker, &c), 0);
    for (int i = 0; i < CAS_THREADS; i++)
        pthread_join(t[i], NULL);
    assert_int_equal(c.failures, 0);
    st_autoptr(st_kv_entry) e = NULL;
    assert_int_equal(st_kv_get(kv, "/counter", &e, NULL), 0);
    assert_int_equal(strtol(e->value, NULL, 10), CAS_THREADS * CAS_INCREMENTS);
    assert_int_equal(e->version, CAS_THREADS * CAS_INCREMENTS + 1);
    print_message("    %d increments, %d CAS conflicts retried\n", CAS_THREADS * CAS_INCREMENTS,
                  c.conflicts);
}

/* ---- watch ------------------------------------------------------------ */

#define WATCH_OPS 300

struct watch_ctx {
    struct st_kv *kv;
    int64_t start_rev;
    int calls;
    int errors;
    struct st_kv_event seen[WATCH_OPS];
    size_t count;
};

/* Every 5th operation under /w/ is a delete of the previous key; noise under
 * /wx/ (which shares the bytes "/w") must not show up. */
static void *watch_writer(void *arg)
{
    struct watch_ctx *c = arg;
    char key[64], val[64];
    for (int i = 0; i < WATCH_OPS; i++) {
        if (i % 5 == 4) {
            snprintf(key, sizeof(key), "/w/%04d", i - 1);
            if (st_kv_delete(c->kv, key, ST_KV_ANY, NULL, NULL) < 0)
                c->errors++;
        } else {
            snprintf(key, sizeof(key), "/w/%04d", i);
            snprintf(val, sizeof(val), "value-%d", i);
            if (st_kv_put(c->kv, key, val, strlen(val), ST_KV_ANY, NULL, NULL) < 0)
                c->errors++;
        }
        if (i % 7 == 0 && st_kv_put(c->kv, "/wx/noise", "n", 1, ST_KV_ANY, NULL, NULL) < 0)
            c->errors++;
        if (i % 50 == 0)
            usleep(2000);
    }
    return NULL;
}

static void *watch_reader(void *arg)
{
    struct watch_ctx *c = arg;
    int64_t after = c->start_rev;
    while (c->count < WATCH_OPS) {
        st_autoptr(st_kv_events) ev = NULL;
        st_autoptr(st_err) err = NULL;
        if (st_kv_watch(c->kv, "/w/", after, 5000, &ev, &err) < 0) {
            c->errors++;
            return NULL;
        }
        c->calls++;
        if (ev->count == 0) /* a 5 s silence: the writer is done or stuck */
            return NULL;
        for (size_t i = 0; i < ev->count && c->count < WATCH_OPS; i++) {
            c->seen[c->count] = ev->events[i];
            ev->events[i].kv = (struct st_kv_entry){0}; /* keep the strings */
            c->count++;
        }
        after = ev->revision;
    }
    return NULL;
}

static void test_watch_stream(void **state)
{
    struct fixture *f = *state;
    st_autoptr(st_kv) kv = open_store(f->path, 0);
    put_str(kv, "/w/before", "x", ST_KV_ANY);
    struct watch_ctx *c = st_new0(struct watch_ctx, 1);
    c->kv = kv;
    c->start_rev = st_kv_revision(kv);
    pthread_t w, r;
    assert_int_equal(pthread_create(&r, NULL, watch_reader, c), 0);
    assert_int_equal(pthread_create(&w, NULL, watch_writer, c), 0);
    pthread_join(w, NULL);
    pthread_join(r, NULL);
    assert_int_equal(c->errors, 0);
    assert_int_equal(c->count, WATCH_OPS);
    int64_t prev = c->start_rev;
    for (int i = 0; i < WATCH_OPS; i++) {
        struct st_kv_event *e = &c->seen[i];
        char key[64], val[64];
        assert_true(e->kv.mod_rev > prev);
        prev = e->kv.mod_rev;
        if (i % 5 == 4) {
            snprintf(key, sizeof(key), "/w/%04d", i - 1);
            assert_int_equal(e->type, ST_KV_EVENT_DELETE);
            assert_string_equal(e->kv.key, key);
            assert_null(e->kv.value);
        } else {
            snprintf(key, sizeof(key), "/w/%04d", i);
            snprintf(val, sizeof(val), "value-%d", i);
            assert_int_equal(e->type, ST_KV_EVENT_PUT);
            assert_string_equal(e->kv.key, key);
            assert_string_equal(e->kv.value, val);
            assert_int_equal(e->kv.create_rev, e->kv.mod_rev);
            assert_int_equal(e->kv.version, 1);
        }
    }
    print_message("    %d events in %d watch calls\n", WATCH_OPS, c->calls);
    for (int i = 0; i < WATCH_OPS; i++)
        st_kv_entry_clear(&c->seen[i].kv);
    free(c);
}

static void test_watch_timeout(void **state)
{
    struct fixture *f = *state;
    st_autoptr(st_kv) kv = open_store(f->path, 0);
    put_str(kv, "/elsewhere", "x", ST_KV_ANY);
    int64_t t0 = st_time_mono_ns();
    st_autoptr(st_kv_events) ev = NULL;
    assert_int_equal(st_kv_watch(kv, "/quiet/", 0, 200, &ev, NULL), 0);
    int64_t ms = (st_time_mono_ns() - t0) / 1000000;
    assert_int_equal(ev->count, 0);
    assert_int_equal(ev->revision, 1);
    assert_true(ms >= 190);
    assert_true(ms < 2000);

    /* timeout 0 is a poll */
    st_autoptr(st_kv_events) now = NULL;
    assert_int_equal(st_kv_watch(kv, "/", 0, 0, &now, NULL), 0);
    assert_int_equal(now->count, 1);
}

struct wake_ctx {
    struct st_kv *kv;
    int r;
    size_t count;
    int64_t ms;
};

static void *long_poll(void *arg)
{
    struct wake_ctx *c = arg;
    st_autoptr(st_kv_events) ev = NULL;
    int64_t t0 = st_time_mono_ns();
    c->r = st_kv_watch(c->kv, "/", st_kv_revision(c->kv), 20000, &ev, NULL);
    c->ms = (st_time_mono_ns() - t0) / 1000000;
    c->count = ev ? ev->count : 99;
    return NULL;
}

static void test_watch_wake_all(void **state)
{
    struct fixture *f = *state;
    st_autoptr(st_kv) kv = open_store(f->path, 0);
    struct wake_ctx c = {.kv = kv};
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, long_poll, &c), 0);
    usleep(100 * 1000);
    st_kv_wake_all(kv);
    pthread_join(t, NULL);
    assert_int_equal(c.r, 0);
    assert_int_equal(c.count, 0);
    assert_true(c.ms < 5000);
    /* sticky: a long-poll that starts after shutdown began returns at once */
    long_poll(&c);
    assert_true(c.ms < 1000);
}

static void test_compaction(void **state)
{
    struct fixture *f = *state;
    st_autoptr(st_kv) kv = open_store(f->path, 10);
    char key[32];
    for (int i = 0; i < 50; i++) {
        snprintf(key, sizeof(key), "/c/%02d", i);
        put_str(kv, key, "v", ST_KV_ANY);
    }
    st_autoptr(st_err) err = NULL;
    st_autoptr(st_kv_events) ev = NULL;
    assert_int_equal(st_kv_watch(kv, "/c/", 0, 0, &ev, &err), -ESTALE);
    assert_non_null(strstr(err->msg, "compacted, relist"));
    st_err_clear(&err);
    /* automatic compaction keeps at least the last `history` revisions */
    st_autoptr(st_kv_events) recent = NULL;
    assert_int_equal(st_kv_watch(kv, "/c/", 40, 0, &recent, &err), 0);
    assert_int_equal(recent->count, 10);

    /* the way back: relist, then watch from the list's revision */
    st_autoptr(st_kv_list) l = NULL;
    assert_int_equal(st_kv_list(kv, "/c/", NULL, 0, &l, &err), 0);
    assert_int_equal(l->count, 50);
    assert_int_equal(l->revision, 50);
    int64_t rev = put_str(kv, "/c/new", "n", ST_KV_ANY);
    st_autoptr(st_kv_events) after = NULL;
    assert_int_equal(st_kv_watch(kv, "/c/", l->revision, 0, &after, &err), 0);
    assert_int_equal(after->count, 1);
    assert_int_equal(after->events[0].kv.mod_rev, rev);
    assert_string_equal(after->events[0].kv.key, "/c/new");

    /* explicit compaction; keys themselves are untouched */
    assert_int_equal(st_kv_compact(kv, 100, &err), -EINVAL);
    st_err_clear(&err);
    assert_int_equal(st_kv_compact(kv, 48, &err), 0);
    st_autoptr(st_kv_events) stale = NULL;
    assert_int_equal(st_kv_watch(kv, "", 47, 0, &stale, &err), -ESTALE);
    st_err_clear(&err);
    st_autoptr(st_kv_events) ok = NULL;
    assert_int_equal(st_kv_watch(kv, "", 48, 0, &ok, &err), 0);
    assert_int_equal(ok->count, 3);
    assert_int_equal(st_kv_compact(kv, 10, &err), 0); /* already compacted: no-op */
    st_autoptr(st_kv_entry) e = NULL;
    assert_int_equal(st_kv_get(kv, "/c/00", &e, &err), 0);
    assert_int_equal(e->mod_rev, 1);
}

struct busy_ctx {
    struct st_kv *kv;
    int errors;
};

static void *busy_writer(void *arg)
{
    struct busy_ctx *c = arg;
    usleep(50 * 1000);
    for (int i = 0; i < 30; i++) {
        if (st_kv_put(c->kv, "/busy/k", "b", 1, ST_KV_ANY, NULL, NULL) < 0)
            c->errors++;
        usleep(2000);
    }
    if (st_kv_put(c->kv, "/quiet/k", "q", 1, ST_KV_ANY, NULL, NULL) < 0)
        c->errors++;
    return NULL;
}

/* A watcher of a quiet prefix keeps up while a busy one is written (and
 * compacted) past the revision it started from: it gets its event, not
 * -ESTALE. */
static void test_watch_quiet_prefix(void **state)
{
    struct fixture *f = *state;
    st_autoptr(st_kv) kv = open_store(f->path, 10);
    int64_t start = put_str(kv, "/quiet/start", "s", ST_KV_ANY);
    struct busy_ctx c = {.kv = kv};
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, busy_writer, &c), 0);
    st_autoptr(st_err) err = NULL;
    st_autoptr(st_kv_events) ev = NULL;
    int r = st_kv_watch(kv, "/quiet/", start, 10000, &ev, &err);
    pthread_join(t, NULL);
    if (r < 0)
        fail_msg("watch: %s", st_err_msg(err));
    assert_int_equal(c.errors, 0);
    assert_int_equal(ev->count, 1);
    assert_string_equal(ev->events[0].kv.key, "/quiet/k");
    assert_int_equal(ev->events[0].kv.mod_rev, start + 31);
    assert_int_equal(ev->revision, start + 31);
    /* the busy prefix was compacted past `start` meanwhile */
    st_autoptr(st_kv_events) stale = NULL;
    assert_int_equal(st_kv_watch(kv, "/busy/", start, 0, &stale, NULL), -ESTALE);
}

static void test_reopen(void **state)
{
    struct fixture *f = *state;
    struct st_kv *kv = open_store(f->path, 0);
    put_str(kv, "/r/a", "1", ST_KV_ANY);
    put_str(kv, "/r/b", "2", ST_KV_ANY);
    assert_int_equal(st_kv_delete(kv, "/r/a", ST_KV_ANY, NULL, NULL), 0);
    st_kv_close(kv);

    /* on SQLite, the "sqlite:" URL form of the same file */
    st_autofree char *url = f->etcd ? st_strdup(f->path) : st_sprintf("sqlite:%s", f->path);
    st_autoptr(st_kv) again = open_store(url, 0);
    assert_int_equal(st_kv_revision(again), 3);
    st_autoptr(st_kv_entry) e = NULL;
    assert_int_equal(st_kv_get(again, "/r/b", &e, NULL), 0);
    assert_string_equal(e->value, "2");
    assert_int_equal(e->mod_rev, 2);
    st_autoptr(st_kv_events) ev = NULL;
    assert_int_equal(st_kv_watch(again, "/r/", 0, 0, &ev, NULL), 0);
    assert_int_equal(ev->count, 3);
    assert_int_equal(ev->events[2].type, ST_KV_EVENT_DELETE);
    assert_int_equal(put_str(again, "/r/c", "3", ST_KV_ANY), 4);
}

/* ---- crash ------------------------------------------------------------ */

static void crash_child(const char *path, int fd)
{
    struct st_kv *kv = NULL;
    if (st_kv_open(path, NULL, &kv, NULL) < 0)
        _exit(2);
    char key[32], val[256];
    for (uint32_t i = 0;; i++) {
        snprintf(key, sizeof(key), "k%u", i);
        int n = snprintf(val, sizeof(val), "{\"index\":%u,\"pad\":\"%0200u\"}", i, i);
        if (st_kv_put(kv, key, val, (size_t)n, ST_KV_ABSENT, NULL, NULL) < 0)
            _exit(3);
        if (write(fd, &i, sizeof(i)) != sizeof(i))
            _exit(4);
    }
}

static void test_crash(void **state)
{
    struct fixture *f = *state;
    unsigned seed = (unsigned)st_time_mono_ns();
    for (int round = 0; round < 5; round++) {
        char path[400];
        snprintf(path, sizeof(path), "%s/crash-%d.db", f->dir, round);
        int fds[2];
        assert_int_equal(pipe(fds), 0);
        pid_t pid = fork();
        assert_true(pid >= 0);
        if (pid == 0) {
            close(fds[0]);
            crash_child(path, fds[1]);
        }
        close(fds[1]);
        int delay_ms = 50 + (int)(rand_r(&seed) % 251);
        /* read acknowledgements while the child runs, so the pipe never
         * fills; the last one read before the kill is the floor */
        int64_t deadline = st_time_mono_ns() + (int64_t)delay_ms * 1000000;
        int64_t acked = -1;
        uint32_t i;
        for (;;) {
            int64_t left = (deadline - st_time_mono_ns()) / 1000000;
            if (left <= 0)
                break;
            struct pollfd p = {.fd = fds[0], .events = POLLIN};
            if (poll(&p, 1, (int)left) > 0) {
                if (read(fds[0], &i, sizeof(i)) != sizeof(i))
                    break;
                acked = i;
            }
        }
        kill(pid, SIGKILL);
        int status;
        assert_int_equal(waitpid(pid, &status, 0), pid);
        assert_true(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
        while (read(fds[0], &i, sizeof(i)) == sizeof(i))
            acked = i;
        close(fds[0]);

        st_autoptr(st_kv) kv = open_store(path, 0);
        for (int64_t k = 0; k <= acked; k++) {
            char key[32], want[256];
            snprintf(key, sizeof(key), "k%u", (unsigned)k);
            snprintf(want, sizeof(want), "{\"index\":%u,\"pad\":\"%0200u\"}", (unsigned)k,
                     (unsigned)k);
            st_autoptr(st_kv_entry) e = NULL;
            st_autoptr(st_err) err = NULL;
            if (st_kv_get(kv, key, &e, &err) < 0)
                fail_msg("round %d: acknowledged key %s lost after kill -9: %s", round, key,
                         st_err_msg(err));
            assert_string_equal(e->value, want);
        }
        /* the store works after recovery: revision continues */
        assert_true(st_kv_revision(kv) >= acked + 1);
        put_str(kv, "/after-crash", "ok", ST_KV_ANY);
        print_message("    round %d: killed after %d ms, %lld acknowledged puts all present\n",
                      round, delay_ms, (long long)acked + 1);
    }
}

/* ---- bad input -------------------------------------------------------- */

static void expect_err(int r, int code, struct st_err **err, const char *needle)
{
    assert_int_equal(r, code);
    assert_non_null(*err);
    if (!strstr((*err)->msg, needle))
        fail_msg("message '%s' lacks '%s'", (*err)->msg, needle);
    st_err_clear(err);
}

static void test_bad_input(void **state)
{
    struct fixture *f = *state;
    st_autoptr(st_kv) kv = open_store(f->path, 0);
    st_autoptr(st_err) err = NULL;
    st_autoptr(st_kv_entry) e = NULL;

    expect_err(st_kv_put(kv, "", "v", 1, ST_KV_ANY, NULL, &err), -EINVAL, &err, "empty");
    expect_err(st_kv_put(kv, NULL, "v", 1, ST_KV_ANY, NULL, &err), -EINVAL, &err, "empty");
    expect_err(st_kv_get(kv, "", &e, &err), -EINVAL, &err, "empty");
    expect_err(st_kv_delete(kv, "", ST_KV_ANY, NULL, &err), -EINVAL, &err, "empty");

    char long_key[ST_KV_KEY_MAX + 2];
    memset(long_key, 'k', sizeof(long_key));
    long_key[ST_KV_KEY_MAX + 1] = 0;
    expect_err(st_kv_put(kv, long_key, "v", 1, ST_KV_ANY, NULL, &err), -EINVAL, &err,
               "1025 bytes, more than 1024");
    expect_err(st_kv_list(kv, long_key, NULL, 0, &(struct st_kv_list *){NULL}, &err), -EINVAL, &err,
               "more than 1024");
    long_key[ST_KV_KEY_MAX] = 0; /* exactly the limit is fine */
    assert_int_equal(st_kv_put(kv, long_key, "v", 1, ST_KV_ANY, NULL, &err), 0);

    /* A key is a C string, so a NUL cannot be inside one: "a\0b" is the key
     * "a", and a value NULL with a length is refused. */
    assert_int_equal(st_kv_put(kv, "a\0b", "v", 1, ST_KV_ANY, NULL, &err), 0);
    assert_int_equal(st_kv_get(kv, "a", &e, &err), 0);
    expect_err(st_kv_put(kv, "/k", NULL, 5, ST_KV_ANY, NULL, &err), -EINVAL, &err,
               "value is missing");
    expect_err(st_kv_put(kv, "/k", "v", ST_KV_VALUE_MAX + 1, ST_KV_ANY, NULL, &err), -EFBIG, &err,
               "more than");
    expect_err(st_kv_put(kv, "/k", "v", 1, -7, NULL, &err), -EINVAL, &err, "not a revision");
    expect_err(st_kv_watch(kv, "/", -1, 0, &(struct st_kv_events *){NULL}, &err), -EINVAL, &err,
               "not a revision");
    expect_err(st_kv_watch(kv, "/", 0, -1, &(struct st_kv_events *){NULL}, &err), -EINVAL, &err,
               "negative");
    expect_err(st_kv_compact(kv, -1, &err), -EINVAL, &err, "not a revision");
    /* nothing above was written */
    assert_int_equal(st_kv_revision(kv), 2);
}

static void test_bad_open(void **state)
{
    struct fixture *f = *state;
    st_autoptr(st_err) err = NULL;
    struct st_kv *kv = NULL;
    expect_err(st_kv_open("redis://x", NULL, &kv, &err), -EINVAL, &err, "unknown scheme 'redis'");
    expect_err(st_kv_open("", NULL, &kv, &err), -EINVAL, &err, "empty");
    st_autofree char *missing = st_sprintf("%s/no/such/dir/store.db", f->dir);
    expect_err(st_kv_open(missing, NULL, &kv, &err), -ENOENT, &err, "No such file");

    /* not a database */
    st_autofree char *junk = st_sprintf("%s/junk.db", f->dir);
    FILE *fp = fopen(junk, "w");
    assert_non_null(fp);
    for (int i = 0; i < 200; i++)
        fputs("this is not a database file\n", fp);
    fclose(fp);
    assert_true(st_kv_open(junk, NULL, &kv, &err) < 0);
    assert_non_null(strstr(err->msg, junk));
    st_err_clear(&err);

    /* a schema from a newer build is refused, not mangled */
    kv = open_store(f->path, 0);
    st_kv_close(kv);
    sqlite3 *db;
    assert_int_equal(sqlite3_open(f->path, &db), SQLITE_OK);
    assert_int_equal(sqlite3_exec(db, "PRAGMA user_version = 99", NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(db);
    kv = NULL;
    expect_err(st_kv_open(f->path, NULL, &kv, &err), -EPROTO, &err, "schema version 99");
    assert_null(kv);
}

/* ---- transactions ----------------------------------------------------- */

static struct st_kv_op op_put(const char *key, const char *value)
{
    return (struct st_kv_op){
        .type = ST_KV_OP_PUT, .key = key, .value = value, .value_len = value ? strlen(value) : 0};
}

static struct st_kv_op op_del(const char *key)
{
    return (struct st_kv_op){.type = ST_KV_OP_DELETE, .key = key};
}

static void assert_value(struct st_kv *kv, const char *key, const char *want, int64_t mod_rev)
{
    st_autoptr(st_kv_entry) e = NULL;
    st_autoptr(st_err) err = NULL;
    if (st_kv_get(kv, key, &e, &err) < 0)
        fail_msg("get %s: %s", key, st_err_msg(err));
    assert_string_equal(e->value, want);
    if (mod_rev)
        assert_int_equal(e->mod_rev, mod_rev);
}

static void assert_absent(struct st_kv *kv, const char *key)
{
    st_autoptr(st_kv_entry) e = NULL;
    assert_int_equal(st_kv_get(kv, key, &e, NULL), -ENOENT);
}

/* Every key a transaction writes gets its one revision; a delete of an
 * absent key is a no-op, and a transaction that writes nothing takes no
 * revision. */
static void test_txn_one_revision(void **state)
{
    struct fixture *f = *state;
    st_autoptr(st_kv) kv = open_store(f->path, 0);
    int64_t old = put_str(kv, "/t/old", "o", ST_KV_ANY);   /* 1 */
    int64_t gone = put_str(kv, "/t/gone", "g", ST_KV_ANY); /* 2 */

    const struct st_kv_cmp cmps[] = {
        {"/t/old", old}, {"/t/new", ST_KV_ABSENT}, {"/t/anything", ST_KV_ANY}};
    const struct st_kv_op ops[] = {op_put("/t/new", "n"), op_put("/t/old", "o2"), op_del("/t/gone"),
                                   op_del("/t/never"), op_put("/t/empty", NULL)};
    int64_t rev = 0;
    st_autoptr(st_err) err = NULL;
    if (st_kv_txn(kv, cmps, ST_ARRAY_SIZE(cmps), ops, ST_ARRAY_SIZE(ops), &rev, &err) < 0)
        fail_msg("txn: %s", st_err_msg(err));
    assert_int_equal(rev, gone + 1);
    assert_int_equal(st_kv_revision(kv), rev);
    assert_value(kv, "/t/new", "n", rev);
    assert_value(kv, "/t/old", "o2", rev);
    assert_value(kv, "/t/empty", "", rev);
    assert_absent(kv, "/t/gone");
    assert_absent(kv, "/t/never");
    st_autoptr(st_kv_entry) e = NULL;
    assert_int_equal(st_kv_get(kv, "/t/old", &e, NULL), 0);
    assert_int_equal(e->create_rev, old);
    assert_int_equal(e->version, 2);
    st_autoptr(st_kv_entry) n = NULL;
    assert_int_equal(st_kv_get(kv, "/t/new", &n, NULL), 0);
    assert_int_equal(n->create_rev, rev);
    assert_int_equal(n->version, 1);

    /* the next write takes the next revision: one was used, not five */
    assert_int_equal(put_str(kv, "/t/after", "a", ST_KV_ANY), rev + 1);

    /* nothing to write: no revision, *ret_rev is the current one */
    const struct st_kv_op noop[] = {op_del("/t/gone"), op_del("/t/never")};
    int64_t rev2 = 0;
    assert_int_equal(st_kv_txn(kv, NULL, 0, noop, ST_ARRAY_SIZE(noop), &rev2, &err), 0);
    assert_int_equal(rev2, rev + 1);
    const struct st_kv_cmp holds[] = {{"/t/old", rev}, {"/t/gone", ST_KV_ABSENT}};
    assert_int_equal(st_kv_txn(kv, holds, 2, NULL, 0, &rev2, &err), 0); /* compares only */
    assert_int_equal(rev2, rev + 1);
    assert_int_equal(st_kv_revision(kv), rev + 1);
    st_autoptr(st_kv_events) ev = NULL;
    assert_int_equal(st_kv_watch(kv, "/t/", rev + 1, 0, &ev, NULL), 0);
    assert_int_equal(ev->count, 0);

    /* the transaction survives a reopen as it was */
    st_kv_close(st_steal(&kv));
    st_autoptr(st_kv) again = open_store(f->path, 0);
    assert_int_equal(st_kv_revision(again), rev + 1);
    assert_value(again, "/t/new", "n", rev);
    assert_value(again, "/t/old", "o2", rev);
}

/* A failed compare, any of them, refuses the whole transaction. */
static void test_txn_all_or_nothing(void **state)
{
    struct fixture *f = *state;
    st_autoptr(st_kv) kv = open_store(f->path, 0);
    int64_t a = put_str(kv, "/t/a", "a1", ST_KV_ANY);
    int64_t b = put_str(kv, "/t/b", "b1", ST_KV_ANY);
    const struct st_kv_op ops[] = {op_put("/t/a", "a2"), op_del("/t/b"), op_put("/t/c", "c")};
    struct {
        struct st_kv_cmp cmps[3];
        const char *why;
    } refused[] = {
        {{{"/t/a", a}, {"/t/b", b}, {"/t/c", a}}, "compare 2 failed: key '/t/c' no longer exists"},
        {{{"/t/a", a}, {"/t/b", a}, {"/t/c", ST_KV_ABSENT}},
         "compare 1 failed: key '/t/b' was modified: mod_rev is 2, expected 1"},
        {{{"/t/a", ST_KV_ABSENT}, {"/t/b", b}, {"/t/c", ST_KV_ABSENT}},
         "compare 0 failed: key '/t/a' already exists (mod_rev 1)"},
    };
    for (size_t i = 0; i < ST_ARRAY_SIZE(refused); i++) {
        st_autoptr(st_err) err = NULL;
        int64_t rev = -5;
        assert_int_equal(st_kv_txn(kv, refused[i].cmps, 3, ops, ST_ARRAY_SIZE(ops), &rev, &err),
                         -ECANCELED);
        if (!strstr(err->msg, refused[i].why))
            fail_msg("case %zu: '%s' lacks '%s'", i, err->msg, refused[i].why);
        assert_int_equal(rev, -5);
        assert_int_equal(st_kv_revision(kv), b);
        assert_value(kv, "/t/a", "a1", a);
        assert_value(kv, "/t/b", "b1", b);
        assert_absent(kv, "/t/c");
    }
    /* and the same with every compare true goes through */
    const struct st_kv_cmp ok[] = {{"/t/a", a}, {"/t/b", b}, {"/t/c", ST_KV_ABSENT}};
    int64_t rev = 0;
    assert_int_equal(st_kv_txn(kv, ok, 3, ops, ST_ARRAY_SIZE(ops), &rev, NULL), 0);
    assert_int_equal(rev, b + 1);
    assert_value(kv, "/t/a", "a2", rev);
    assert_absent(kv, "/t/b");
    assert_value(kv, "/t/c", "c", rev);
}

struct txn_watch_ctx {
    struct st_kv *kv;
    int64_t after;
    int r;
    struct st_kv_events *ev;
};

static void *txn_watcher(void *arg)
{
    struct txn_watch_ctx *c = arg;
    c->r = st_kv_watch(c->kv, "/tw/", c->after, 10000, &c->ev, NULL);
    return NULL;
}

/* A watcher waiting when the transaction commits wakes with all of its
 * events in one call, in the order of the operations, all at its revision. */
static void test_txn_watch(void **state)
{
    struct fixture *f = *state;
    st_autoptr(st_kv) kv = open_store(f->path, 0);
    put_str(kv, "/tw/x", "x", ST_KV_ANY);
    struct txn_watch_ctx c = {.kv = kv, .after = st_kv_revision(kv)};
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, txn_watcher, &c), 0);
    usleep(50 * 1000);
    const struct st_kv_op ops[] = {op_put("/tw/z", "z"), op_del("/tw/x"), op_put("/other", "o"),
                                   op_put("/tw/a", "a")};
    int64_t rev = 0;
    assert_int_equal(st_kv_txn(kv, NULL, 0, ops, ST_ARRAY_SIZE(ops), &rev, NULL), 0);
    pthread_join(t, NULL);
    st_autoptr(st_kv_events) ev = c.ev;
    assert_int_equal(c.r, 0);
    assert_int_equal(ev->count, 3);
    assert_int_equal(ev->revision, rev);
    const char *keys[] = {"/tw/z", "/tw/x", "/tw/a"};
    for (size_t i = 0; i < 3; i++) {
        assert_string_equal(ev->events[i].kv.key, keys[i]);
        assert_int_equal(ev->events[i].kv.mod_rev, rev);
        assert_int_equal(ev->events[i].type, i == 1 ? ST_KV_EVENT_DELETE : ST_KV_EVENT_PUT);
    }
    assert_string_equal(ev->events[2].kv.value, "a");

    /* from just before the revision, or from 0, it is there whole; from it,
     * nothing */
    st_autoptr(st_kv_events) all = NULL;
    assert_int_equal(st_kv_watch(kv, "", 0, 0, &all, NULL), 0);
    assert_int_equal(all->count, 5);
    for (size_t i = 1; i < 5; i++)
        assert_int_equal(all->events[i].kv.mod_rev, rev);
    st_autoptr(st_kv_events) none = NULL;
    assert_int_equal(st_kv_watch(kv, "", rev, 0, &none, NULL), 0);
    assert_int_equal(none->count, 0);
}

/* ---- transactions under contention ---- */

#define RACE_THREADS 8
#define RACE_ROUNDS  40

struct txn_race_ctx {
    struct st_kv *kv;
    pthread_barrier_t start;
    int wins[RACE_ROUNDS];
    int errors;
};

struct txn_racer {
    struct txn_race_ctx *c;
    int index;
};

/* Each round, every thread tries the same transaction: "/race/<round>" must
 * be absent; it writes that key and a second one naming itself. */
static void *txn_racer(void *arg)
{
    struct txn_racer *me = arg;
    struct txn_race_ctx *c = me->c;
    for (int round = 0; round < RACE_ROUNDS; round++) {
        char key[32], owner[32], who[16];
        snprintf(key, sizeof(key), "/race/%02d", round);
        snprintf(owner, sizeof(owner), "/race-owner/%02d", round);
        snprintf(who, sizeof(who), "t%d", me->index);
        const struct st_kv_cmp cmp = {key, ST_KV_ABSENT};
        const struct st_kv_op ops[] = {op_put(key, who), op_put(owner, who)};
        pthread_barrier_wait(&c->start);
        st_autoptr(st_err) err = NULL;
        int r = st_kv_txn(c->kv, &cmp, 1, ops, 2, NULL, &err);
        if (r == 0)
            __atomic_add_fetch(&c->wins[round], 1, __ATOMIC_RELAXED);
        else if (r != -ECANCELED)
            __atomic_add_fetch(&c->errors, 1, __ATOMIC_RELAXED);
    }
    return NULL;
}

static void test_txn_race(void **state)
{
    struct fixture *f = *state;
    st_autoptr(st_kv) kv = open_store(f->path, 0);
    struct txn_race_ctx c = {.kv = kv};
    pthread_barrier_init(&c.start, NULL, RACE_THREADS);
    pthread_t t[RACE_THREADS];
    struct txn_racer racers[RACE_THREADS];
    for (int i = 0; i < RACE_THREADS; i++) {
        racers[i] = (struct txn_racer){.c = &c, .index = i};
        assert_int_equal(pthread_create(&t[i], NULL, txn_racer, &racers[i]), 0);
    }
    for (int i = 0; i < RACE_THREADS; i++)
        pthread_join(t[i], NULL);
    pthread_barrier_destroy(&c.start);
    assert_int_equal(c.errors, 0);
    for (int round = 0; round < RACE_ROUNDS; round++) {
        assert_int_equal(c.wins[round], 1);
        char key[32], owner[32];
        snprintf(key, sizeof(key), "/race/%02d", round);
        snprintf(owner, sizeof(owner), "/race-owner/%02d", round);
        st_autoptr(st_kv_entry) k = NULL;
        st_autoptr(st_kv_entry) o = NULL;
        assert_int_equal(st_kv_get(kv, key, &k, NULL), 0);
        assert_int_equal(st_kv_get(kv, owner, &o, NULL), 0);
        /* the winner wrote both: same writer, same revision */
        assert_string_equal(k->value, o->value);
        assert_int_equal(k->mod_rev, o->mod_rev);
        assert_int_equal(k->version, 1);
    }
    assert_int_equal(st_kv_revision(kv), RACE_ROUNDS);
}

#define MOVE_THREADS 4
#define MOVES        50
#define ACCOUNTS     3

struct move_ctx {
    struct st_kv *kv;
    int conflicts;
    int failures;
};

/* Moves one unit from one account to the next with a compare on both: the
 * sum of the accounts never changes, whatever interleaves. */
static void *mover(void *arg)
{
    struct move_ctx *c = arg;
    unsigned seed = (unsigned)(uintptr_t)&seed;
    for (int i = 0; i < MOVES; i++) {
        int from = (int)(rand_r(&seed) % ACCOUNTS), to = (from + 1) % ACCOUNTS;
        for (;;) {
            char kf[16], kt[16], vf[32], vt[32];
            snprintf(kf, sizeof(kf), "/acct/%d", from);
            snprintf(kt, sizeof(kt), "/acct/%d", to);
            st_autoptr(st_kv_entry) ef = NULL;
            st_autoptr(st_kv_entry) et = NULL;
            if (st_kv_get(c->kv, kf, &ef, NULL) < 0 || st_kv_get(c->kv, kt, &et, NULL) < 0) {
                __atomic_add_fetch(&c->failures, 1, __ATOMIC_RELAXED);
                return NULL;
            }
            snprintf(vf, sizeof(vf), "%ld", strtol(ef->value, NULL, 10) - 1);
            snprintf(vt, sizeof(vt), "%ld", strtol(et->value, NULL, 10) + 1);
            const struct st_kv_cmp cmps[] = {{kf, ef->mod_rev}, {kt, et->mod_rev}};
            const struct st_kv_op ops[] = {op_put(kf, vf), op_put(kt, vt)};
            int r = st_kv_txn(c->kv, cmps, 2, ops, 2, NULL, NULL);
            if (r == 0)
                break;
            if (r != -ECANCELED) {
                __atomic_add_fetch(&c->failures, 1, __ATOMIC_RELAXED);
                return NULL;
            }
            __atomic_add_fetch(&c->conflicts, 1, __ATOMIC_RELAXED);
        }
    }
    return NULL;
}

static void test_txn_concurrent_moves(void **state)
{
    struct fixture *f = *state;
    st_autoptr(st_kv) kv = open_store(f->path, 0);
    char key[16];
    for (int i = 0; i < ACCOUNTS; i++) {
        snprintf(key, sizeof(key), "/acct/%d", i);
        put_str(kv, key, "1000", ST_KV_ABSENT);
    }
    struct move_ctx c = {.kv = kv};
    pthread_t t[MOVE_THREADS];
    for (int i = 0; i < MOVE_THREADS; i++)
        assert_int_equal(pthread_create(&t[i], NULL, mover, &c), 0);
    for (int i = 0; i < MOVE_THREADS; i++)
        pthread_join(t[i], NULL);
    assert_int_equal(c.failures, 0);
    long sum = 0, versions = 0;
    for (int i = 0; i < ACCOUNTS; i++) {
        snprintf(key, sizeof(key), "/acct/%d", i);
        st_autoptr(st_kv_entry) e = NULL;
        assert_int_equal(st_kv_get(kv, key, &e, NULL), 0);
        sum += strtol(e->value, NULL, 10);
        versions += e->version - 1;
    }
    assert_int_equal(sum, ACCOUNTS * 1000);
    assert_int_equal(versions, 2 * MOVE_THREADS * MOVES); /* each move wrote two keys */
    assert_int_equal(st_kv_revision(kv), ACCOUNTS + MOVE_THREADS * MOVES);
    print_message("    %d moves, %d conflicts retried\n", MOVE_THREADS * MOVES, c.conflicts);
}

/* ---- transactions and crashes ---- */

/* Transaction i writes /p/<i>, /q/<i> and /last = i (a compare on /last's
 * revision), then acknowledges i. */
static void txn_crash_child(const char *path, int fd)
{
    struct st_kv *kv = NULL;
    if (st_kv_open(path, NULL, &kv, NULL) < 0)
        _exit(2);
    int64_t last_rev = ST_KV_ABSENT;
    char p[32], q[32], val[256], last[32];
    for (uint32_t i = 0;; i++) {
        snprintf(p, sizeof(p), "/p/%u", i);
        snprintf(q, sizeof(q), "/q/%u", i);
        snprintf(val, sizeof(val), "{\"index\":%u,\"pad\":\"%0200u\"}", i, i);
        snprintf(last, sizeof(last), "%u", i);
        const struct st_kv_cmp cmp = {"/last", last_rev};
        const struct st_kv_op ops[] = {op_put(p, val), op_put(q, val), op_put("/last", last)};
        if (st_kv_txn(kv, &cmp, 1, ops, 3, &last_rev, NULL) < 0)
            _exit(3);
        if (write(fd, &i, sizeof(i)) != sizeof(i))
            _exit(4);
    }
}

static void test_txn_crash(void **state)
{
    struct fixture *f = *state;
    unsigned seed = (unsigned)st_time_mono_ns();
    for (int round = 0; round < 3; round++) {
        char path[400];
        snprintf(path, sizeof(path), "%s/txn-crash-%d.db", f->dir, round);
        int fds[2];
        assert_int_equal(pipe(fds), 0);
        pid_t pid = fork();
        assert_true(pid >= 0);
        if (pid == 0) {
            close(fds[0]);
            txn_crash_child(path, fds[1]);
        }
        close(fds[1]);
        int delay_ms = 50 + (int)(rand_r(&seed) % 201);
        int64_t deadline = st_time_mono_ns() + (int64_t)delay_ms * 1000000;
        int64_t acked = -1;
        uint32_t i;
        for (;;) {
            int64_t left = (deadline - st_time_mono_ns()) / 1000000;
            if (left <= 0)
                break;
            struct pollfd pfd = {.fd = fds[0], .events = POLLIN};
            if (poll(&pfd, 1, (int)left) > 0) {
                if (read(fds[0], &i, sizeof(i)) != sizeof(i))
                    break;
                acked = i;
            }
        }
        kill(pid, SIGKILL);
        int status;
        assert_int_equal(waitpid(pid, &status, 0), pid);
        while (read(fds[0], &i, sizeof(i)) == sizeof(i))
            acked = i;
        close(fds[0]);

        /* every acknowledged transaction whole; the one in flight whole or
         * not at all; /last names the last one present */
        st_autoptr(st_kv) kv = open_store(path, 0);
        st_autoptr(st_kv_entry) le = NULL;
        int64_t last = -1;
        if (st_kv_get(kv, "/last", &le, NULL) == 0)
            last = strtol(le->value, NULL, 10);
        assert_true(last >= acked);
        assert_true(last <= acked + 1);
        st_autoptr(st_kv_list) ps = NULL;
        st_autoptr(st_kv_list) qs = NULL;
        assert_int_equal(st_kv_list(kv, "/p/", NULL, 0, &ps, NULL), 0);
        assert_int_equal(st_kv_list(kv, "/q/", NULL, 0, &qs, NULL), 0);
        assert_int_equal(ps->count, (size_t)(last + 1));
        assert_int_equal(qs->count, (size_t)(last + 1));
        for (size_t k = 0; k < ps->count; k++) {
            assert_int_equal(ps->entries[k].mod_rev, qs->entries[k].mod_rev);
            assert_string_equal(ps->entries[k].value, qs->entries[k].value);
        }
        assert_int_equal(st_kv_revision(kv), last + 1);
        print_message("    round %d: killed after %d ms, %lld acknowledged transactions whole, "
                      "%s\n",
                      round, delay_ms, (long long)acked + 1,
                      last > acked ? "the one in flight too" : "the one in flight absent");
    }
}

/* ---- transactions: bad input ---- */

static void test_txn_bad_input(void **state)
{
    struct fixture *f = *state;
    st_autoptr(st_kv) kv = open_store(f->path, 0);
    st_autoptr(st_err) err = NULL;

    struct st_kv_op many[ST_KV_TXN_OPS_MAX + 1];
    struct st_kv_cmp cmps[ST_KV_TXN_OPS_MAX + 1];
    char keys[ST_KV_TXN_OPS_MAX + 1][16];
    for (size_t i = 0; i < ST_ARRAY_SIZE(many); i++) {
        snprintf(keys[i], sizeof(keys[i]), "/m/%03zu", i);
        many[i] = op_put(keys[i], "v");
        cmps[i] = (struct st_kv_cmp){keys[i], ST_KV_ABSENT};
    }
    expect_err(st_kv_txn(kv, NULL, 0, many, ST_KV_TXN_OPS_MAX + 1, NULL, &err), -EINVAL, &err,
               "more than 128");
    expect_err(st_kv_txn(kv, cmps, ST_KV_TXN_OPS_MAX + 1, many, 1, NULL, &err), -EINVAL, &err,
               "more than 128");
    expect_err(st_kv_txn(kv, NULL, 1, many, 1, NULL, &err), -EINVAL, &err, "missing");

    const struct st_kv_op twice[] = {op_put("/d", "1"), op_put("/e", "2"), op_del("/d")};
    expect_err(st_kv_txn(kv, NULL, 0, twice, 3, NULL, &err), -EINVAL, &err,
               "operations 0 and 2: key '/d' written twice");
    const struct st_kv_op empty_key[] = {op_put("/ok", "1"), op_put("", "2")};
    expect_err(st_kv_txn(kv, NULL, 0, empty_key, 2, NULL, &err), -EINVAL, &err,
               "transaction operation 1: invalid key: empty");
    const struct st_kv_cmp bad_cmp[] = {{"/ok", 1}, {"/ok", -3}};
    expect_err(st_kv_txn(kv, bad_cmp, 2, many, 1, NULL, &err), -EINVAL, &err,
               "transaction compare 1: key '/ok': condition mod_rev -3 is not a revision");
    const struct st_kv_op no_value[] = {
        {.type = ST_KV_OP_PUT, .key = "/nv", .value = NULL, .value_len = 3}};
    expect_err(st_kv_txn(kv, NULL, 0, no_value, 1, NULL, &err), -EINVAL, &err, "value is missing");
    const struct st_kv_op bad_type[] = {{.type = (enum st_kv_op_type)7, .key = "/bt"}};
    expect_err(st_kv_txn(kv, NULL, 0, bad_type, 1, NULL, &err), -EINVAL, &err, "unknown type 7");
    /* each value within the limit, but not together (the values are never read) */
    static const char big = 0;
    const struct st_kv_op too_big[] = {
        {.type = ST_KV_OP_PUT, .key = "/b1", .value = &big, .value_len = ST_KV_VALUE_MAX / 2},
        {.type = ST_KV_OP_PUT, .key = "/b2", .value = &big, .value_len = ST_KV_VALUE_MAX / 2 + 1}};
    expect_err(st_kv_txn(kv, NULL, 0, too_big, 2, NULL, &err), -EFBIG, &err,
               "more than 8388608 bytes in one transaction");
    /* nothing above was written; exactly the limit of operations is fine */
    assert_int_equal(st_kv_revision(kv), 0);
    int64_t rev = 0;
    if (st_kv_txn(kv, cmps, ST_KV_TXN_OPS_MAX, many, ST_KV_TXN_OPS_MAX, &rev, &err) < 0)
        fail_msg("txn of %d: %s", ST_KV_TXN_OPS_MAX, st_err_msg(err));
    assert_int_equal(rev, 1);
    st_autoptr(st_kv_list) l = NULL;
    assert_int_equal(st_kv_list(kv, "/m/", NULL, 0, &l, NULL), 0);
    assert_int_equal(l->count, ST_KV_TXN_OPS_MAX);
}

/* ---- schema migration ---- */

/* A store written by a build before transactions (schema 1, one event per
 * revision as the events' rowid) opens with its keys, revision and history. */
static void test_migrate_v1(void **state)
{
    struct fixture *f = *state;
    sqlite3 *db;
    assert_int_equal(sqlite3_open(f->path, &db), SQLITE_OK);
    const char *v1 =
        "PRAGMA journal_mode = WAL;"
        "CREATE TABLE kv (key TEXT PRIMARY KEY NOT NULL, value BLOB NOT NULL,"
        " create_rev INTEGER NOT NULL, mod_rev INTEGER NOT NULL, version INTEGER NOT NULL)"
        " WITHOUT ROWID;"
        "CREATE TABLE events (rev INTEGER PRIMARY KEY, type INTEGER NOT NULL, key TEXT NOT NULL,"
        " value BLOB, create_rev INTEGER NOT NULL, version INTEGER NOT NULL);"
        "CREATE TABLE meta (id INTEGER PRIMARY KEY CHECK (id = 1),"
        " compacted_rev INTEGER NOT NULL);"
        "INSERT INTO meta VALUES (1, 1);"
        "INSERT INTO kv VALUES ('/v1/a', 'a2', 2, 4, 2);"
        "INSERT INTO events VALUES (2, 0, '/v1/a', 'a1', 2, 1);"
        "INSERT INTO events VALUES (3, 0, '/v1/b', 'b', 3, 1);"
        "INSERT INTO events VALUES (4, 0, '/v1/a', 'a2', 2, 2);"
        "INSERT INTO events VALUES (5, 1, '/v1/b', NULL, 0, 0);"
        "PRAGMA user_version = 1;";
    assert_int_equal(sqlite3_exec(db, v1, NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(db);

    st_autoptr(st_kv) kv = open_store(f->path, 0);
    assert_int_equal(st_kv_revision(kv), 5);
    assert_value(kv, "/v1/a", "a2", 4);
    st_autoptr(st_kv_events) ev = NULL;
    assert_int_equal(st_kv_watch(kv, "/v1/", 1, 0, &ev, NULL), 0);
    assert_int_equal(ev->count, 4);
    for (size_t i = 0; i < 4; i++)
        assert_int_equal(ev->events[i].kv.mod_rev, (int64_t)i + 2);
    assert_int_equal(ev->events[3].type, ST_KV_EVENT_DELETE);
    st_autoptr(st_kv_events) stale = NULL;
    assert_int_equal(st_kv_watch(kv, "/v1/", 0, 0, &stale, NULL), -ESTALE);

    const struct st_kv_op ops[] = {op_put("/v1/a", "a3"), op_put("/v1/c", "c")};
    const struct st_kv_cmp cmp = {"/v1/a", 4};
    int64_t rev = 0;
    assert_int_equal(st_kv_txn(kv, &cmp, 1, ops, 2, &rev, NULL), 0);
    assert_int_equal(rev, 6);
    st_autoptr(st_kv_events) more = NULL;
    assert_int_equal(st_kv_watch(kv, "/v1/", 5, 0, &more, NULL), 0);
    assert_int_equal(more->count, 2);
    assert_string_equal(more->events[1].kv.key, "/v1/c");
}

/* ---- etcd only ---------------------------------------------------------- */

static void test_etcd_urls(void **state)
{
    struct fixture *f = *state;
    st_autoptr(st_err) err = NULL;
    struct st_kv *kv = NULL;
    expect_err(st_kv_open("etcd://", NULL, &kv, &err), -EINVAL, &err, "no path");
    expect_err(st_kv_open("etcd://127.0.0.1:2379/prefix", NULL, &kv, &err), -EINVAL, &err,
               "is not host:port[,host:port...]");
    expect_err(st_kv_open("etcd://127.0.0.1:", NULL, &kv, &err), -EINVAL, &err, "has no port");
    expect_err(st_kv_open("etcd://,", NULL, &kv, &err), -EINVAL, &err, "no endpoint");
    /* nothing listens there: the error names etcd, the address and why */
    int dead = free_port();
    st_autofree char *url = st_sprintf("etcd://127.0.0.1:%d", dead);
    st_autofree char *want = st_sprintf("etcd at http://127.0.0.1:%d", dead);
    expect_err(st_kv_open(url, NULL, &kv, &err), -ECONNREFUSED, &err, want);
    assert_null(kv);

    /* a dead endpoint first: requests and the watch stream go to the next */
    st_autofree char *both = st_sprintf("etcd://127.0.0.1:%d,127.0.0.1:%d", dead, f->client_port);
    st_autoptr(st_kv) two = open_store(both, 0);
    int64_t rev = put_str(two, "/f/a", "1", ST_KV_ABSENT);
    assert_value(two, "/f/a", "1", rev);
    st_autoptr(st_kv_events) ev = NULL;
    assert_int_equal(st_kv_watch(two, "/f/", 0, 0, &ev, &err), 0);
    assert_int_equal(ev->count, 1);
    assert_int_equal(ev->revision, rev);
}

struct cross_ctx {
    struct st_kv *kv;
    int64_t after;
    int r;
    struct st_kv_events *ev;
};

static void *cross_watcher(void *arg)
{
    struct cross_ctx *c = arg;
    c->r = st_kv_watch(c->kv, "/x/", c->after, 20000, &c->ev, NULL);
    return NULL;
}

/* Two handles are two controllers on one etcd: each sees the other's
 * writes at once (a poll included), compare-and-swap decides between them,
 * and a watcher of one is woken by a write through the other. */
static void test_etcd_two_handles(void **state)
{
    struct fixture *f = *state;
    st_autoptr(st_kv) a = open_store(f->path, 0);
    st_autoptr(st_kv) b = open_store(f->path, 0);
    int64_t rev = put_str(a, "/x/flavor", "m1.small", ST_KV_ABSENT);
    assert_value(b, "/x/flavor", "m1.small", rev);
    assert_int_equal(st_kv_revision(b), rev);
    st_autoptr(st_kv_events) poll = NULL;
    assert_int_equal(st_kv_watch(b, "/x/", rev - 1, 0, &poll, NULL), 0);
    assert_int_equal(poll->count, 1);

    st_autoptr(st_err) err = NULL;
    assert_int_equal(st_kv_put(b, "/x/flavor", "m1.big", 6, ST_KV_ABSENT, NULL, &err), -ECANCELED);
    st_err_clear(&err);
    int64_t rev2 = put_str(b, "/x/flavor", "m1.big", rev);
    assert_int_equal(st_kv_put(a, "/x/flavor", "m1.tiny", 7, rev, NULL, &err), -ECANCELED);
    assert_non_null(strstr(err->msg, "was modified"));
    st_err_clear(&err);

    struct cross_ctx c = {.kv = b, .after = rev2};
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, cross_watcher, &c), 0);
    usleep(50 * 1000);
    int64_t t0 = st_time_mono_ns();
    assert_int_equal(st_kv_delete(a, "/x/flavor", rev2, NULL, &err), 0);
    pthread_join(t, NULL);
    st_autoptr(st_kv_events) ev = c.ev;
    assert_int_equal(c.r, 0);
    assert_int_equal(ev->count, 1);
    assert_int_equal(ev->events[0].type, ST_KV_EVENT_DELETE);
    assert_int_equal(ev->events[0].kv.mod_rev, rev2 + 1);
    print_message("    a delete through one handle woke the other's watcher in %.1f ms\n",
                  (st_time_mono_ns() - t0) / 1e6);
}

/* etcd refuses requests over 1.5 MiB: the store says so before sending;
 * a value just under it round-trips byte for byte. */
static void test_etcd_request_limit(void **state)
{
    struct fixture *f = *state;
    st_autoptr(st_kv) kv = open_store(f->path, 0);
    size_t big = 2 * 1024 * 1024, fits = 1400 * 1024;
    st_autofree unsigned char *buf = st_xcalloc(big, 1);
    for (size_t i = 0; i < big; i++)
        buf[i] = (unsigned char)(i * 131 + (i >> 9));
    st_autoptr(st_err) err = NULL;
    expect_err(st_kv_put(kv, "/big", buf, big, ST_KV_ANY, NULL, &err), -EFBIG, &err,
               "etcd's --max-request-bytes");
    const struct st_kv_op ops[] = {
        {.type = ST_KV_OP_PUT, .key = "/big/1", .value = buf, .value_len = fits},
        {.type = ST_KV_OP_PUT, .key = "/big/2", .value = buf, .value_len = fits}};
    expect_err(st_kv_txn(kv, NULL, 0, ops, 2, NULL, &err), -EFBIG, &err,
               "etcd's --max-request-bytes");
    assert_int_equal(st_kv_revision(kv), 0);
    if (st_kv_put(kv, "/big", buf, fits, ST_KV_ABSENT, NULL, &err) < 0)
        fail_msg("put of %zu bytes: %s", fits, st_err_msg(err));
    st_autoptr(st_kv_entry) e = NULL;
    if (st_kv_get(kv, "/big", &e, &err) < 0)
        fail_msg("get of %zu bytes: %s", fits, st_err_msg(err));
    assert_int_equal(e->value_len, fits);
    assert_memory_equal(e->value, buf, fits);
}

/* A handle opened on a store with history reads it from etcd (the events
 * before the handle's own stream), then carries on from its stream. */
static void test_etcd_history_before_open(void **state)
{
    struct fixture *f = *state;
    struct st_kv *first = open_store(f->path, 0);
    put_str(first, "/h/a", "1", ST_KV_ANY);
    put_str(first, "/other", "x", ST_KV_ANY);
    put_str(first, "/h/b", "2", ST_KV_ANY);
    st_kv_close(first);

    st_autoptr(st_kv) kv = open_store(f->path, 0);
    st_autoptr(st_kv_events) ev = NULL;
    assert_int_equal(st_kv_watch(kv, "/h/", 1, 1000, &ev, NULL), 0);
    assert_int_equal(ev->count, 1);
    assert_string_equal(ev->events[0].kv.key, "/h/b");
    assert_int_equal(ev->revision, 3);
    /* nothing under the prefix before the handle: it waits on its stream,
     * and says how far it looked */
    int64_t t0 = st_time_mono_ns();
    st_autoptr(st_kv_events) none = NULL;
    assert_int_equal(st_kv_watch(kv, "/nothing/", 0, 300, &none, NULL), 0);
    assert_int_equal(none->count, 0);
    assert_int_equal(none->revision, 3);
    assert_true((st_time_mono_ns() - t0) / 1000000 >= 290);
}

#define WINDOW_WRITERS 4
#define WINDOW_PUTS    1200
#define WINDOW_VALUE   (8 * 1024) /* 1,200 of them are past the window's 8 MiB */

struct window_ctx {
    struct st_kv *kv;
    int index;
    int errors;
};

static void *window_writer(void *arg)
{
    struct window_ctx *c = arg;
    char key[32];
    char value[WINDOW_VALUE];
    memset(value, 'v', sizeof(value));
    for (int i = c->index; i < WINDOW_PUTS; i += WINDOW_WRITERS) {
        snprintf(key, sizeof(key), "/win/%04d", i);
        if (st_kv_put(c->kv, key, value, sizeof(value), ST_KV_ABSENT, NULL, NULL) < 0)
            c->errors++;
    }
    return NULL;
}

/* A watcher further behind than the process's window of recent events
 * reads the older stretch from etcd, then the rest from the window: every
 * event, in order, none twice. */
static void test_etcd_window(void **state)
{
    struct fixture *f = *state;
    st_autoptr(st_kv) kv = open_store(f->path, 0);
    struct window_ctx c[WINDOW_WRITERS];
    pthread_t t[WINDOW_WRITERS];
    for (int i = 0; i < WINDOW_WRITERS; i++) {
        c[i] = (struct window_ctx){.kv = kv, .index = i};
        assert_int_equal(pthread_create(&t[i], NULL, window_writer, &c[i]), 0);
    }
    for (int i = 0; i < WINDOW_WRITERS; i++) {
        pthread_join(t[i], NULL);
        assert_int_equal(c[i].errors, 0);
    }
    assert_int_equal(st_kv_revision(kv), WINDOW_PUTS);
    int64_t after = 0, first_stop = 0;
    size_t seen = 0;
    int calls = 0;
    while (after < WINDOW_PUTS) {
        st_autoptr(st_kv_events) ev = NULL;
        st_autoptr(st_err) err = NULL;
        if (st_kv_watch(kv, "/win/", after, 0, &ev, &err) < 0)
            fail_msg("watch from %lld: %s", (long long)after, st_err_msg(err));
        assert_true(ev->count > 0);
        for (size_t i = 0; i < ev->count; i++)
            assert_int_equal(ev->events[i].kv.mod_rev, after + (int64_t)i + 1);
        seen += ev->count;
        after = ev->revision;
        if (!first_stop)
            first_stop = after;
        calls++;
    }
    assert_int_equal(seen, WINDOW_PUTS);
    /* the first call ended where the window begins: the older stretch came
     * from etcd */
    assert_true(first_stop < WINDOW_PUTS);
    print_message("    %d events from revision 0 in %d calls (etcd up to %lld, then the window)\n",
                  WINDOW_PUTS, calls, (long long)first_stop);
}

struct outage_ctx {
    struct st_kv *kv;
    int64_t after;
    int r;
    struct st_kv_events *ev;
    struct st_err *err;
};

static void *outage_watcher(void *arg)
{
    struct outage_ctx *c = arg;
    c->r = st_kv_watch(c->kv, "/o/", c->after, 20000, &c->ev, &c->err);
    return NULL;
}

/* etcd killed under an open handle: requests fail at once and say why;
 * etcd back on the same data: what was acknowledged is there, revisions go
 * on, and a watcher parked through the outage gets the next write. */
static void test_etcd_restart(void **state)
{
    struct fixture *f = *state;
    st_autoptr(st_kv) kv = open_store(f->path, 0);
    int64_t rev = 0;
    char key[32];
    for (int i = 0; i < 20; i++) {
        snprintf(key, sizeof(key), "/o/%02d", i);
        rev = put_str(kv, key, key, ST_KV_ABSENT);
    }
    struct outage_ctx c = {.kv = kv, .after = rev};
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, outage_watcher, &c), 0);
    usleep(50 * 1000);

    etcd_kill(f, SIGKILL);
    st_autoptr(st_err) err = NULL;
    int64_t t0 = st_time_mono_ns();
    assert_int_equal(st_kv_put(kv, "/o/down", "x", 1, ST_KV_ANY, NULL, &err), -ECONNREFUSED);
    st_autofree char *where = st_sprintf("etcd at http://127.0.0.1:%d", f->client_port);
    assert_non_null(strstr(err->msg, where));
    st_err_clear(&err);
    st_autoptr(st_kv_entry) e = NULL;
    assert_int_equal(st_kv_get(kv, "/o/00", &e, &err), -ECONNREFUSED);
    st_err_clear(&err);
    st_autoptr(st_kv_events) poll = NULL;
    assert_true(st_kv_watch(kv, "/o/", 0, 0, &poll, &err) < 0);
    st_err_clear(&err);
    assert_int_equal(st_kv_revision(kv), rev); /* the last one seen */
    assert_true((st_time_mono_ns() - t0) / 1000000 < 3000);

    assert_int_equal(etcd_start(f), 0);
    for (int i = 0; i < 20; i++) {
        snprintf(key, sizeof(key), "/o/%02d", i);
        assert_value(kv, key, key, rev - 19 + i);
    }
    int64_t next = put_str(kv, "/o/back", "y", ST_KV_ABSENT);
    assert_int_equal(next, rev + 1);
    pthread_join(t, NULL);
    st_autoptr(st_kv_events) ev = c.ev;
    st_autoptr(st_err) werr = c.err;
    if (c.r < 0)
        fail_msg("watch across the outage: %s", st_err_msg(werr));
    assert_int_equal(ev->count, 1);
    assert_string_equal(ev->events[0].kv.key, "/o/back");
    assert_int_equal(ev->events[0].kv.mod_rev, next);
    /* and a poll sees it too */
    st_autoptr(st_kv_events) after = NULL;
    assert_int_equal(st_kv_watch(kv, "/o/", rev, 0, &after, NULL), 0);
    assert_int_equal(after->count, 1);
}

/* The tests that hold on every backend, with the fixture that opens it. */
#define ALL_BACKENDS(su, td)                                                                       \
    cmocka_unit_test_setup_teardown(test_basic, su, td),                                           \
        cmocka_unit_test_setup_teardown(test_revisions, su, td),                                   \
        cmocka_unit_test_setup_teardown(test_cas, su, td),                                         \
        cmocka_unit_test_setup_teardown(test_list_paging, su, td),                                 \
        cmocka_unit_test_setup_teardown(test_concurrent_cas, su, td),                              \
        cmocka_unit_test_setup_teardown(test_watch_stream, su, td),                                \
        cmocka_unit_test_setup_teardown(test_watch_timeout, su, td),                               \
        cmocka_unit_test_setup_teardown(test_watch_wake_all, su, td),                              \
        cmocka_unit_test_setup_teardown(test_compaction, su, td),                                  \
        cmocka_unit_test_setup_teardown(test_watch_quiet_prefix, su, td),                          \
        cmocka_unit_test_setup_teardown(test_reopen, su, td),                                      \
        cmocka_unit_test_setup_teardown(test_bad_input, su, td),                                   \
        cmocka_unit_test_setup_teardown(test_txn_one_revision, su, td),                            \
        cmocka_unit_test_setup_teardown(test_txn_all_or_nothing, su, td),                          \
        cmocka_unit_test_setup_teardown(test_txn_watch, su, td),                                   \
        cmocka_unit_test_setup_teardown(test_txn_race, su, td),                                    \
        cmocka_unit_test_setup_teardown(test_txn_concurrent_moves, su, td),                        \
        cmocka_unit_test_setup_teardown(test_txn_bad_input, su, td)

int main(void)
{
    const struct CMUnitTest sqlite_tests[] = {
        cmocka_unit_test(test_prefix_end),
        ALL_BACKENDS(setup, teardown),
        cmocka_unit_test_setup_teardown(test_crash, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_open, setup, teardown),
        cmocka_unit_test_setup_teardown(test_txn_crash, setup, teardown),
        cmocka_unit_test_setup_teardown(test_migrate_v1, setup, teardown),
    };
    const struct CMUnitTest etcd_tests[] = {
        ALL_BACKENDS(setup_etcd, teardown_etcd),
        cmocka_unit_test_setup_teardown(test_etcd_urls, setup_etcd, teardown_etcd),
        cmocka_unit_test_setup_teardown(test_etcd_two_handles, setup_etcd, teardown_etcd),
        cmocka_unit_test_setup_teardown(test_etcd_request_limit, setup_etcd, teardown_etcd),
        cmocka_unit_test_setup_teardown(test_etcd_history_before_open, setup_etcd, teardown_etcd),
        cmocka_unit_test_setup_teardown(test_etcd_window, setup_etcd, teardown_etcd),
        cmocka_unit_test_setup_teardown(test_etcd_restart, setup_etcd, teardown_etcd),
    };
    int failed = cmocka_run_group_tests_name("store", sqlite_tests, NULL, NULL);
    if (!etcd_binary()) {
        printf("etcd is not installed (scripts/install-deps.sh installs etcd-server): "
               "skipping the store-etcd group\n");
        return failed;
    }
    return failed + cmocka_run_group_tests_name("store-etcd", etcd_tests, NULL, NULL);
}
