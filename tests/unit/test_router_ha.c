/* Unit tests of router rescheduling (network/router_ha.h, ctrl/router_ha.h)
 * over a temporary SQLite store with node documents written as the
 * internal API writes them: a router whose host's lease expired (or whose
 * host is gone, or no longer l3) moves to the running l3 node with the
 * fewest routers; with no running l3 node it stays and is reported once; a
 * router on a running host is never written, nor taken back by a node that
 * returns; two controllers racing move each router exactly once; a new
 * router never lands on a stopped node; and the controller's thread moves a
 * router when only time passes (a lease runs out) and gives a host to a
 * router made while no node could take one. */
#include <errno.h>
#include <ftw.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <cmocka.h>

#include "compute/model.h"
#include "ctrl/router_ha.h"
#include "lib/cleanup.h"
#include "lib/json.h"
#include "lib/log.h"
#include "lib/times.h"
#include "network/model.h"
#include "network/network.h"
#include "network/router_ha.h"
#include "store/kv.h"

#define DEADLINE_MS 10000

struct fixture {
    char dir[256];
    char *db;
    struct st_kv *kv;
};

static int setup(void **state)
{
    struct fixture *f = st_new0(struct fixture, 1);
    const char *tmp = getenv("TMPDIR");
    snprintf(f->dir, sizeof(f->dir), "%s/st-router-ha-XXXXXX", tmp && tmp[0] ? tmp : "/tmp");
    if (!mkdtemp(f->dir))
        return -1;
    f->db = st_sprintf("%s/store.db", f->dir);
    if (st_kv_open(f->db, NULL, &f->kv, NULL) < 0)
        return -1;
    st_log_set_level(ST_LOG_ERROR);
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
    st_kv_close(f->kv);
    int r = nftw(f->dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
    free(f->db);
    free(f);
    return r;
}

/* ---- store helpers ---- */

static void put_json(struct st_kv *kv, const char *key, json_t *doc)
{
    st_autofree char *text = st_json_dumps(doc);
    st_autoptr(st_err) err = NULL;
    if (st_kv_put(kv, key, text, strlen(text), ST_KV_ANY, NULL, &err) < 0)
        fail_msg("put %s: %s", key, st_err_msg(err));
}

static json_t *get_json(struct st_kv *kv, const char *key, int64_t *ret_rev)
{
    st_autoptr(st_kv_entry) e = NULL;
    if (st_kv_get(kv, key, &e, NULL) < 0)
        return NULL;
    json_t *doc = NULL;
    if (st_json_parse_object(e->value, e->value_len, &doc, NULL) < 0)
        fail_msg("%s is not JSON", key);
    if (ret_rev)
        *ret_rev = e->mod_rev;
    return doc;
}

/* A node as the agent reports it: its network facts (l3 or not) and its
 * compute document, last heartbeat at heartbeat_ms with a lease of
 * lease_s. */
static void put_node_at(struct st_kv *kv, const char *name, bool l3, int64_t heartbeat_ms,
                        int lease_s)
{
    st_autoptr(json_t) facts = json_pack("{s:s, s:b}", "vtep", "192.0.2.1", "l3", l3);
    st_autoptr(st_err) err = NULL;
    if (st_network_node_register(kv, name, facts, &err) < 0)
        fail_msg("register %s: %s", name, st_err_msg(err));
    char hb[ST_TIME_RFC3339_LEN];
    st_time_rfc3339_ms(heartbeat_ms, hb, sizeof(hb));
    st_autoptr(json_t) doc =
        json_pack("{s:s, s:[s], s:{s:i}, s:s, s:i}", "name", name, "drivers", "container",
                  "capacity", "vcpus", 4, "heartbeat_at", hb, "lease_seconds", lease_s);
    st_autofree char *key = st_sprintf("%s%s", ST_COMPUTE_NODES_PREFIX, name);
    put_json(kv, key, doc);
}

/* Heartbeating age_s seconds ago, with the default 30 s lease. */
static void put_node(struct st_kv *kv, const char *name, bool l3, int age_s)
{
    put_node_at(kv, name, l3, st_time_now_ms() - (int64_t)age_s * 1000, 30);
}

/* Each router in a project of its own, so Neutron's quota of 10 routers
 * per project never stops a test that makes more. */
static char *make_router(struct st_kv *kv, const char *name)
{
    st_autoptr(json_t) req = json_pack("{s:s}", "name", name);
    st_autoptr(json_t) router = NULL;
    st_autoptr(st_err) err = NULL;
    st_autofree char *project = st_sprintf("project-%s", name);
    struct st_network_caller who = {project, "u-alice", false};
    if (st_router_create(kv, &who, req, &router, &err) < 0)
        fail_msg("router create: %s", st_err_msg(err));
    return st_strdup(json_string_value(json_object_get(router, "id")));
}

static json_t *get_router(struct st_kv *kv, const char *id, int64_t *ret_rev)
{
    st_autofree char *key = st_sprintf("%s%s", ST_NETWORK_ROUTERS_PREFIX, id);
    json_t *doc = get_json(kv, key, ret_rev);
    if (!doc)
        fail_msg("router %s is gone", id);
    return doc;
}

/* The router's host as stored (NULL when none); the string is the caller's. */
static char *host_of(struct st_kv *kv, const char *id)
{
    st_autoptr(json_t) doc = get_router(kv, id, NULL);
    return st_strdup(json_string_value(json_object_get(doc, "host")));
}

/* What an earlier binding left: the router on host (NULL: none). */
static void set_host(struct st_kv *kv, const char *id, const char *host)
{
    st_autoptr(json_t) doc = get_router(kv, id, NULL);
    json_object_set_new(doc, "host", host ? json_string(host) : json_null());
    st_autofree char *key = st_sprintf("%s%s", ST_NETWORK_ROUTERS_PREFIX, id);
    put_json(kv, key, doc);
}

static char *router_on(struct st_kv *kv, const char *name, const char *host)
{
    char *id = make_router(kv, name);
    set_host(kv, id, host);
    return id;
}

static void assert_host(struct st_kv *kv, const char *id, const char *want)
{
    st_autofree char *host = host_of(kv, id);
    if (!host || strcmp(host, want) != 0)
        fail_msg("router %s: host %s, want %s", id, host ? host : "(none)", want);
}

static void pass(struct st_kv *kv, struct st_router_ha_pass *ret)
{
    st_autoptr(st_err) err = NULL;
    if (st_router_ha_reschedule(kv, st_time_now_ms(), ret, &err) < 0)
        fail_msg("pass: %s", st_err_msg(err));
}

/* ---- one pass ---- */

static void test_moves_to_least_loaded(void **state)
{
    struct fixture *f = *state;
    put_node(f->kv, "n1", true, 120); /* lease expired */
    put_node(f->kv, "n2", true, 0);
    put_node(f->kv, "n3", true, 0);
    put_node(f->kv, "n4", false, 0); /* running, but no external bridge */
    st_autofree char *b1 = router_on(f->kv, "b1", "n2");
    st_autofree char *b2 = router_on(f->kv, "b2", "n2");
    st_autofree char *d1 = router_on(f->kv, "d1", "n1");
    st_autofree char *d2 = router_on(f->kv, "d2", "n1");
    st_autofree char *d3 = router_on(f->kv, "d3", "n1");
    int64_t rev_b1 = 0, rev_b1_after = 0;
    st_autoptr(json_t) before = get_router(f->kv, b1, &rev_b1);

    struct st_router_ha_pass p;
    pass(f->kv, &p);
    assert_int_equal(p.routers, 5);
    assert_int_equal(p.moved, 3);
    assert_int_equal(p.failed, 0);
    assert_int_equal(json_object_size(p.stranded), 0);
    st_router_ha_pass_clear(&p);
    /* n3 had none, n2 two: n3 takes two, then the tie (2-2) goes by name */
    const char *moved[] = {d1, d2, d3};
    int on_n2 = 0, on_n3 = 0;
    for (size_t i = 0; i < ST_ARRAY_SIZE(moved); i++) {
        st_autofree char *host = host_of(f->kv, moved[i]);
        on_n2 += host && strcmp(host, "n2") == 0;
        on_n3 += host && strcmp(host, "n3") == 0;
    }
    assert_int_equal(on_n3, 2);
    assert_int_equal(on_n2, 1);
    /* the routers of the running host are not even written */
    st_autoptr(json_t) after = get_router(f->kv, b1, &rev_b1_after);
    assert_int_equal(rev_b1_after, rev_b1);
    assert_true(json_equal(before, after));
    assert_host(f->kv, b2, "n2");

    /* again: nothing left to do */
    pass(f->kv, &p);
    assert_int_equal(p.moved, 0);
    st_router_ha_pass_clear(&p);
}

static void test_gone_or_not_l3_host_moves(void **state)
{
    struct fixture *f = *state;
    put_node(f->kv, "n2", true, 0);
    put_node(f->kv, "n5", false, 0);                         /* lost its external bridge */
    st_autofree char *gone = router_on(f->kv, "gone", "n9"); /* no such node */
    st_autofree char *flat = router_on(f->kv, "flat", "n5");
    st_autofree char *none = router_on(f->kv, "none", NULL);
    struct st_router_ha_pass p;
    pass(f->kv, &p);
    assert_int_equal(p.moved, 3);
    st_router_ha_pass_clear(&p);
    assert_host(f->kv, gone, "n2");
    assert_host(f->kv, flat, "n2");
    assert_host(f->kv, none, "n2");
}

static void test_no_running_l3_node_stays(void **state)
{
    struct fixture *f = *state;
    put_node(f->kv, "n1", true, 120);
    put_node(f->kv, "n2", false, 0);
    st_autofree char *r1 = router_on(f->kv, "r1", "n1");
    int64_t rev = 0, rev_after = 0;
    st_autoptr(json_t) before = get_router(f->kv, r1, &rev);
    struct st_router_ha_pass p;
    pass(f->kv, &p);
    assert_int_equal(p.moved, 0);
    assert_string_equal(json_string_value(json_object_get(p.stranded, r1)), "n1");
    st_router_ha_pass_clear(&p);
    st_autoptr(json_t) after = get_router(f->kv, r1, &rev_after);
    assert_int_equal(rev_after, rev);
    assert_true(json_equal(before, after));
}

static void test_returning_node_keeps_nothing(void **state)
{
    struct fixture *f = *state;
    put_node(f->kv, "n1", true, 120);
    put_node(f->kv, "n2", true, 0);
    st_autofree char *r1 = router_on(f->kv, "r1", "n1");
    struct st_router_ha_pass p;
    pass(f->kv, &p);
    assert_int_equal(p.moved, 1);
    st_router_ha_pass_clear(&p);
    assert_host(f->kv, r1, "n2");
    /* n1 heartbeats again and hosts nothing: the router stays on n2 */
    put_node(f->kv, "n1", true, 0);
    int64_t rev = 0, rev_after = 0;
    st_autoptr(json_t) before = get_router(f->kv, r1, &rev);
    pass(f->kv, &p);
    assert_int_equal(p.moved, 0);
    st_router_ha_pass_clear(&p);
    st_autoptr(json_t) after = get_router(f->kv, r1, &rev_after);
    assert_int_equal(rev_after, rev);
    /* ... while a new router goes to it, the running node with fewest */
    st_autofree char *r2 = make_router(f->kv, "r2");
    assert_host(f->kv, r2, "n1");
}

static void test_create_skips_stopped_node(void **state)
{
    struct fixture *f = *state;
    put_node(f->kv, "n1", true, 120); /* stopped, and hosting nothing */
    put_node(f->kv, "n2", true, 0);
    st_autofree char *a = router_on(f->kv, "a", "n2");
    st_autofree char *b = make_router(f->kv, "b");
    assert_host(f->kv, b, "n2");
    /* no running l3 node at all: no host, as before any node reported l3 */
    put_node(f->kv, "n2", true, 120);
    st_autofree char *c = make_router(f->kv, "c");
    st_autofree char *host = host_of(f->kv, c);
    assert_null(host);
}

/* ---- two controllers ---- */

struct racer {
    struct st_kv *kv;
    pthread_barrier_t *go;
    struct st_router_ha_pass pass;
    int r;
};

static void *race(void *arg)
{
    struct racer *x = arg;
    pthread_barrier_wait(x->go);
    x->r = st_router_ha_reschedule(x->kv, st_time_now_ms(), &x->pass, NULL);
    return NULL;
}

static void test_two_controllers_move_once(void **state)
{
    struct fixture *f = *state;
    enum { ROUTERS = 24, ROUNDS = 4 };
    put_node(f->kv, "n2", true, 0);
    put_node(f->kv, "n3", true, 0);
    char *ids[ROUTERS];
    for (int i = 0; i < ROUTERS; i++) {
        st_autofree char *name = st_sprintf("r%d", i);
        ids[i] = make_router(f->kv, name);
    }
    /* a second handle on the same file: another controller process */
    st_autoptr(st_kv) kv2 = NULL;
    assert_int_equal(st_kv_open(f->db, NULL, &kv2, NULL), 0);
    for (int round = 0; round < ROUNDS; round++) {
        put_node(f->kv, "n1", true, 0);
        for (int i = 0; i < ROUTERS; i++)
            set_host(f->kv, ids[i], "n1");
        put_node(f->kv, "n1", true, 120);
        json_int_t revs[ROUTERS];
        for (int i = 0; i < ROUTERS; i++) {
            st_autoptr(json_t) doc = get_router(f->kv, ids[i], NULL);
            revs[i] = json_integer_value(json_object_get(doc, "revision_number"));
        }
        pthread_barrier_t go;
        pthread_barrier_init(&go, NULL, 2);
        struct racer a = {.kv = f->kv, .go = &go}, b = {.kv = kv2, .go = &go};
        pthread_t ta, tb;
        pthread_create(&ta, NULL, race, &a);
        pthread_create(&tb, NULL, race, &b);
        pthread_join(ta, NULL);
        pthread_join(tb, NULL);
        pthread_barrier_destroy(&go);
        assert_int_equal(a.r, 0);
        assert_int_equal(b.r, 0);
        assert_int_equal(a.pass.failed + b.pass.failed, 0);
        if (a.pass.moved + b.pass.moved != ROUTERS)
            fail_msg("round %d: %zu + %zu moves for %d routers", round, a.pass.moved, b.pass.moved,
                     ROUTERS);
        st_router_ha_pass_clear(&a.pass);
        st_router_ha_pass_clear(&b.pass);
        for (int i = 0; i < ROUTERS; i++) {
            st_autoptr(json_t) doc = get_router(f->kv, ids[i], NULL);
            const char *host = json_string_value(json_object_get(doc, "host"));
            assert_true(host && (strcmp(host, "n2") == 0 || strcmp(host, "n3") == 0));
            /* written once: by the winner of the swap */
            assert_int_equal(json_integer_value(json_object_get(doc, "revision_number")),
                             revs[i] + 1);
        }
    }
    for (int i = 0; i < ROUTERS; i++)
        free(ids[i]);
}

/* ---- the controller's thread ---- */

static int64_t fake_now;

static int64_t fake_clock(void *userdata)
{
    (void)userdata;
    return __atomic_load_n(&fake_now, __ATOMIC_ACQUIRE);
}

/* Waits until router id is on want; fails after DEADLINE_MS. */
static void wait_host(struct st_kv *kv, const char *id, const char *want)
{
    for (int64_t t0 = st_time_mono_ns(); (st_time_mono_ns() - t0) / 1000000 < DEADLINE_MS;) {
        st_autofree char *host = host_of(kv, id);
        if (host && strcmp(host, want) == 0)
            return;
        usleep(10000);
    }
    assert_host(kv, id, want);
}

/* The process's stderr, sent to a file between capture_start and
 * capture_end, which returns what was written. */
struct captured {
    int saved;
    char path[300];
};

static void capture_start(struct fixture *f, struct captured *c)
{
    snprintf(c->path, sizeof(c->path), "%s/stderr.log", f->dir);
    fflush(stderr);
    c->saved = dup(2);
    FILE *out = fopen(c->path, "w");
    assert_non_null(out);
    dup2(fileno(out), 2);
    fclose(out);
}

static char *capture_end(struct captured *c)
{
    fflush(stderr);
    dup2(c->saved, 2);
    close(c->saved);
    FILE *in = fopen(c->path, "r");
    assert_non_null(in);
    char *text = st_new0(char, 1 << 16);
    size_t n = fread(text, 1, (1 << 16) - 1, in);
    text[n] = '\0';
    fclose(in);
    return text;
}

static size_t count(const char *text, const char *needle)
{
    size_t n = 0;
    for (const char *p = strstr(text, needle); p; p = strstr(p + 1, needle))
        n++;
    return n;
}

static void test_controller_follows_leases(void **state)
{
    struct fixture *f = *state;
    int64_t t0 = st_time_now_ms();
    __atomic_store_n(&fake_now, t0, __ATOMIC_RELEASE);
    put_node_at(f->kv, "n1", true, t0 - 20000, 30); /* 10 s of lease left */
    put_node_at(f->kv, "n2", true, t0, 3600);
    st_autofree char *r1 = router_on(f->kv, "r1", "n1");
    st_autofree char *r2 = router_on(f->kv, "r2", "n2");

    struct captured cap;
    capture_start(f, &cap);
    st_log_set_level(ST_LOG_INFO);
    /* a full pass at every other tick, to show that waiting is reported once */
    struct st_ctrl_router_ha_config cfg = {
        .interval_ms = 20, .resync_ms = 40, .now_ms = fake_clock};
    struct st_ctrl_router_ha *c = NULL;
    assert_int_equal(st_ctrl_router_ha_start(f->kv, &cfg, &c, NULL), 0);
    /* while the lease holds, nothing moves */
    struct st_ctrl_router_ha_stats s = {0};
    for (int i = 0; i < 500 && s.passes == 0; i++) {
        usleep(10000);
        st_ctrl_router_ha_get_stats(c, &s);
    }
    usleep(100000);
    assert_host(f->kv, r1, "n1");
    /* only time passes: n1's lease runs out, r1 moves, r2 stays */
    __atomic_store_n(&fake_now, t0 + 15000, __ATOMIC_RELEASE);
    wait_host(f->kv, r1, "n2");
    assert_host(f->kv, r2, "n2");

    /* every node stops: a router made now has no host; all three wait, and
     * each is reported once however many passes run */
    __atomic_store_n(&fake_now, t0 + 7200 * 1000, __ATOMIC_RELEASE);
    put_node_at(f->kv, "n1", true, t0 - 120000, 30);
    put_node_at(f->kv, "n2", true, t0 - 120000, 30);
    st_autofree char *r3 = make_router(f->kv, "r3");
    st_autofree char *none = host_of(f->kv, r3);
    assert_null(none);
    st_ctrl_router_ha_get_stats(c, &s);
    uint64_t passes = s.passes;
    for (int i = 0; i < 500 && s.passes < passes + 5; i++) {
        usleep(10000);
        st_ctrl_router_ha_get_stats(c, &s);
    }
    assert_true(s.passes >= passes + 5);
    assert_int_equal(s.stranded, 3);
    /* a node comes: r3 gets it at once; r1 and r2 move to it too */
    put_node_at(f->kv, "n3", true, t0 + 7200 * 1000, 30);
    wait_host(f->kv, r3, "n3");
    wait_host(f->kv, r1, "n3");
    wait_host(f->kv, r2, "n3");
    st_ctrl_router_ha_get_stats(c, &s);
    st_ctrl_router_ha_stop(c);
    st_log_set_level(ST_LOG_ERROR);
    st_autofree char *log = capture_end(&cap);

    assert_int_equal(s.moved, 4);
    assert_int_equal(s.errors, 0);
    assert_int_equal(s.stranded, 3); /* r1, r2 and r3, once each */
    st_autofree char *moved = st_sprintf("event=router_rescheduled id=%s from=n1 to=n2", r1);
    if (count(log, moved) != 1)
        fail_msg("want one '%s' in:\n%s", moved, log);
    st_autofree char *given = st_sprintf("event=router_rescheduled id=%s from=- to=n3", r3);
    if (count(log, given) != 1)
        fail_msg("want one '%s' in:\n%s", given, log);
    st_autofree char *waiting = st_sprintf("event=router_reschedule_waiting id=%s host=-", r3);
    if (count(log, waiting) != 1)
        fail_msg("want one '%s' in:\n%s", waiting, log);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_moves_to_least_loaded, setup, teardown),
        cmocka_unit_test_setup_teardown(test_gone_or_not_l3_host_moves, setup, teardown),
        cmocka_unit_test_setup_teardown(test_no_running_l3_node_stays, setup, teardown),
        cmocka_unit_test_setup_teardown(test_returning_node_keeps_nothing, setup, teardown),
        cmocka_unit_test_setup_teardown(test_create_skips_stopped_node, setup, teardown),
        cmocka_unit_test_setup_teardown(test_two_controllers_move_once, setup, teardown),
        cmocka_unit_test_setup_teardown(test_controller_follows_leases, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
