/* Unit tests of src/store's key-value API, on each backend: what a caller
 * sees from put/get/delete/list, revisions, compare-and-swap under
 * contention, watch streams, compaction, reopening and bad input. The
 * "store" group runs them on SQLite, with what only SQLite has (surviving
 * kill -9 of the process that holds the file, files it must refuse to
 * open); the "store-etcd" group runs the same tests on a real etcd started
 * for each test (skipped when etcd is not installed). Multi-key
 * transactions are tested in test_store_txn.c, what only etcd has in
 * test_store_etcd.c. Each test runs in its own temporary directory,
 * removed afterwards. */
#include <errno.h>
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
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <cmocka.h>

#include "lib/cleanup.h"
#include "lib/err.h"
#include "lib/times.h"
#include "store/kv-priv.h"
#include "store/kv.h"
#include "store_harness.h"

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
        cmocka_unit_test_setup_teardown(test_bad_input, su, td)

int main(void)
{
    const struct CMUnitTest sqlite_tests[] = {
        cmocka_unit_test(test_prefix_end),
        ALL_BACKENDS(setup, teardown),
        cmocka_unit_test_setup_teardown(test_crash, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_open, setup, teardown),
    };
    const struct CMUnitTest etcd_tests[] = {
        ALL_BACKENDS(setup_etcd, teardown_etcd),
    };
    int failed = cmocka_run_group_tests_name("store", sqlite_tests, NULL, NULL);
    if (!etcd_binary()) {
        printf("etcd is not installed (scripts/install-deps.sh installs etcd-server): "
               "skipping the store-etcd group\n");
        return failed;
    }
    return failed + cmocka_run_group_tests_name("store-etcd", etcd_tests, NULL, NULL);
}
