/* Unit tests of src/store's multi-key transactions (st_kv_txn), on each
 * backend: atomic, one revision for all their writes, refused whole when any
 * compare fails, seen whole by a watcher, raced by threads that try the same
 * transaction or move units between accounts, and their bad input. The
 * "store-txn" group runs them on SQLite, with what only SQLite has (every
 * acknowledged transaction whole after kill -9 of the process that holds
 * the file, the schema migration of a file written before transactions);
 * the "store-txn-etcd" group runs the same tests on a real etcd started for
 * each test (skipped when etcd is not installed). Each test runs in its own
 * temporary directory, removed afterwards. */
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
#include <unistd.h>
#include <cmocka.h>

#include "lib/cleanup.h"
#include "lib/err.h"
#include "lib/times.h"
#include "store/kv.h"
#include "store_harness.h"

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

/* The transaction tests that hold on every backend, with the fixture that opens it. */
#define ALL_BACKENDS(su, td)                                                                       \
    cmocka_unit_test_setup_teardown(test_txn_one_revision, su, td),                                \
        cmocka_unit_test_setup_teardown(test_txn_all_or_nothing, su, td),                          \
        cmocka_unit_test_setup_teardown(test_txn_watch, su, td),                                   \
        cmocka_unit_test_setup_teardown(test_txn_race, su, td),                                    \
        cmocka_unit_test_setup_teardown(test_txn_concurrent_moves, su, td),                        \
        cmocka_unit_test_setup_teardown(test_txn_bad_input, su, td)

int main(void)
{
    const struct CMUnitTest sqlite_tests[] = {
        ALL_BACKENDS(setup, teardown),
        cmocka_unit_test_setup_teardown(test_txn_crash, setup, teardown),
        cmocka_unit_test_setup_teardown(test_migrate_v1, setup, teardown),
    };
    const struct CMUnitTest etcd_tests[] = {
        ALL_BACKENDS(setup_etcd, teardown_etcd),
    };
    int failed = cmocka_run_group_tests_name("store-txn", sqlite_tests, NULL, NULL);
    if (!etcd_binary()) {
        printf("etcd is not installed (scripts/install-deps.sh installs etcd-server): "
               "skipping the store-txn-etcd group\n");
        return failed;
    }
    return failed + cmocka_run_group_tests_name("store-txn-etcd", etcd_tests, NULL, NULL);
}
