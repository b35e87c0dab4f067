/* Unit tests of what only the etcd backend of src/store has, each on a real
 * etcd started for the test (all skipped when etcd is not installed):
 * several endpoints in one URL, two handles as two controllers on one etcd,
 * etcd's request limit, history from before a handle was opened or older
 * than its window of recent events, etcd killed and restarted under an open
 * handle. The tests that hold on every backend run on etcd too, from
 * test_store.c and test_store_txn.c. Each test runs in its own temporary
 * directory, removed afterwards. */
#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include "lib/cleanup.h"
#include "lib/err.h"
#include "lib/times.h"
#include "store/kv.h"
#include "store_harness.h"

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

int main(void)
{
    const struct CMUnitTest etcd_tests[] = {
        cmocka_unit_test_setup_teardown(test_etcd_urls, setup_etcd, teardown_etcd),
        cmocka_unit_test_setup_teardown(test_etcd_two_handles, setup_etcd, teardown_etcd),
        cmocka_unit_test_setup_teardown(test_etcd_request_limit, setup_etcd, teardown_etcd),
        cmocka_unit_test_setup_teardown(test_etcd_history_before_open, setup_etcd, teardown_etcd),
        cmocka_unit_test_setup_teardown(test_etcd_window, setup_etcd, teardown_etcd),
        cmocka_unit_test_setup_teardown(test_etcd_restart, setup_etcd, teardown_etcd),
    };
    if (!etcd_binary()) {
        printf("SKIP: etcd is not installed (scripts/install-deps.sh installs etcd-server)\n");
        return 77;
    }
    return cmocka_run_group_tests_name("store-etcd-only", etcd_tests, NULL, NULL);
}
