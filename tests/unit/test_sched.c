/* Unit tests of src/sched: every filter (what it removes and the reason it
 * gives), both weighers and their tie-break by name, server group affinity
 * and anti-affinity, the soft policies (weighers: members part or gather
 * while capacity allows, land elsewhere when it does not, and are seen by
 * the sampled scan), the fault text a user reads, the sampled scan, bad
 * arguments, and property tests over random snapshots: the scheduler never
 * picks a node where admission would be exceeded, and finds every node
 * where it would not. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "lib/cleanup.h"
#include "lib/err.h"
#include "sched/sched.h"

static const char *const sim_drivers[] = {"sim"};
static const char *const both_drivers[] = {"container", "sim"};
static const char *const group_g1[] = {"g1"};

/* A 16-core, 2.5 GHz, 64 GiB, 1 TB node with Nova's default ratios. */
static struct st_sched_node node(const char *name)
{
    return (struct st_sched_node){
        .name = name,
        .alive = true,
        .drivers = sim_drivers,
        .n_drivers = 1,
        .availability_zone = "nova",
        .vcpus = 16,
        .cpu_mhz = 2500,
        .memory_mb = 65536,
        .disk_gb = 1000,
        .cpu_ratio = 4.0,
        .memory_ratio = 1.0,
        .disk_ratio = 1.0,
    };
}

static struct st_sched_request request(uint32_t vcpus, uint64_t mem_mb)
{
    return (struct st_sched_request){
        .res = {.vcpus = vcpus,
                .memory_mb = mem_mb,
                .memory_reservation_mb = mem_mb,
                .disk_gb = 10},
        .driver = "sim",
    };
}

/* Places with every node examined; returns how many fit (all ranked). */
static size_t place_all(const struct st_sched_node *nodes, size_t n,
                        const struct st_sched_request *req, enum st_sched_weigher w, size_t *order,
                        struct st_sched_explain *ex)
{
    struct st_sched_options opts = {.weigher = w};
    size_t k = 99;
    st_autoptr(st_err) err = NULL;
    int r = st_sched_place(nodes, n, req, &opts, order, n, &k, ex, &err);
    if (r < 0)
        fail_msg("st_sched_place: %s", st_err_msg(err));
    return k;
}

static const char *explain_text(const struct st_sched_explain *ex)
{
    static char buf[1024];
    st_sched_explain_format(ex, buf, sizeof(buf));
    return buf;
}

/* ---- filters ---- */

static void test_filter_alive_driver_zone(void **state)
{
    (void)state;
    struct st_sched_node nodes[4] = {node("a"), node("b"), node("c"), node("d")};
    nodes[0].alive = false;
    nodes[1].drivers = both_drivers;
    nodes[1].n_drivers = 2;
    nodes[2].availability_zone = "az2";
    size_t order[4];
    struct st_sched_explain ex;

    struct st_sched_request req = request(1, 1024);
    req.driver = "container";
    assert_int_equal(place_all(nodes, 4, &req, ST_SCHED_SPREAD, order, &ex), 1);
    assert_string_equal(nodes[order[0]].name, "b");
    assert_int_equal(ex.filters[ST_SCHED_FILTER_ALIVE].removed, 1);
    assert_int_equal(ex.filters[ST_SCHED_FILTER_DRIVER].removed, 2);
    assert_string_equal(ex.filters[ST_SCHED_FILTER_DRIVER].reason, "cannot run driver 'container'");

    req.driver = "sim";
    req.availability_zone = "az2";
    assert_int_equal(place_all(nodes, 4, &req, ST_SCHED_SPREAD, order, &ex), 1);
    assert_string_equal(nodes[order[0]].name, "c");
    assert_int_equal(ex.filters[ST_SCHED_FILTER_ZONE].removed, 2);
    assert_string_equal(ex.filters[ST_SCHED_FILTER_ZONE].reason, "not in availability zone 'az2'");

    /* no driver and no zone asked: every live node */
    req.driver = NULL;
    req.availability_zone = NULL;
    assert_int_equal(place_all(nodes, 4, &req, ST_SCHED_SPREAD, order, &ex), 3);
    assert_int_equal(ex.n_fit, 3);
    assert_int_equal(ex.n_nodes, 4);
}

static void test_filter_vcpus_ratio(void **state)
{
    (void)state;
    struct st_sched_node nodes[2] = {node("a"), node("b")};
    nodes[0].used.vcpus = 60; /* of 16 × 4.0 = 64 */
    nodes[1].cpu_ratio = 1.5; /* 24 */
    nodes[1].used.vcpus = 22;
    size_t order[2];
    struct st_sched_explain ex;
    struct st_sched_request req = request(4, 1024);
    assert_int_equal(place_all(nodes, 2, &req, ST_SCHED_SPREAD, order, &ex), 1);
    assert_string_equal(nodes[order[0]].name, "a"); /* 64 exactly */
    req.res.vcpus = 5;
    assert_int_equal(place_all(nodes, 2, &req, ST_SCHED_SPREAD, order, &ex), 0);
    assert_int_equal(ex.filters[ST_SCHED_FILTER_VCPUS].removed, 2);
    assert_string_equal(ex.filters[ST_SCHED_FILTER_VCPUS].reason, "needs 5 vCPUs, most free 4");
    /* a fractional capacity admits up to it: 16 × 1.1 = 17.6 → 17 */
    nodes[1].cpu_ratio = 1.1;
    nodes[1].used.vcpus = 12;
    assert_int_equal(place_all(&nodes[1], 1, &req, ST_SCHED_SPREAD, order, &ex), 1);
    nodes[1].used.vcpus = 13;
    assert_int_equal(place_all(&nodes[1], 1, &req, ST_SCHED_SPREAD, order, &ex), 0);
}

static void test_filter_cpu_reservation(void **state)
{
    (void)state;
    /* 16 × 2500 = 40,000 MHz physical; the 4.0 ratio does not raise it */
    struct st_sched_node nodes[2] = {node("a"), node("b")};
    nodes[0].used.cpu_reservation_mhz = 38000;
    nodes[1].cpu_ratio = 0.5; /* holds half back: 20,000 */
    nodes[1].used.cpu_reservation_mhz = 17000;
    size_t order[2];
    struct st_sched_explain ex;
    struct st_sched_request req = request(1, 1024);
    req.res.cpu_reservation_mhz = 2000; /* a: exactly 40,000 */
    assert_int_equal(place_all(nodes, 2, &req, ST_SCHED_SPREAD, order, &ex), 2);
    req.res.cpu_reservation_mhz = 2500;
    assert_int_equal(place_all(nodes, 2, &req, ST_SCHED_SPREAD, order, &ex), 1);
    assert_string_equal(nodes[order[0]].name, "b");
    req.res.cpu_reservation_mhz = 3500;
    assert_int_equal(place_all(nodes, 2, &req, ST_SCHED_SPREAD, order, &ex), 0);
    assert_int_equal(ex.filters[ST_SCHED_FILTER_CPU].removed, 2);
    assert_string_equal(ex.filters[ST_SCHED_FILTER_CPU].reason,
                        "needs 3500 MHz reserved, most free 3000 MHz");
    /* no reservation asked: the MHz filter does not apply */
    nodes[0].used.cpu_reservation_mhz = 40000;
    req.res.cpu_reservation_mhz = 0;
    assert_int_equal(place_all(nodes, 2, &req, ST_SCHED_SPREAD, order, &ex), 2);
}

static void test_filter_memory_disk(void **state)
{
    (void)state;
    struct st_sched_node nodes[3] = {node("a"), node("b"), node("c")};
    nodes[0].used.memory_reservation_mb = 65536 - 1024;
    nodes[1].used.memory_reservation_mb = 65536 - 3072;
    nodes[2].memory_ratio = 2.0; /* reservations never overcommit */
    nodes[2].used.memory_reservation_mb = 65536 - 2048;
    size_t order[3];
    struct st_sched_explain ex;
    struct st_sched_request req = request(1, 4096);
    assert_int_equal(place_all(nodes, 3, &req, ST_SCHED_SPREAD, order, &ex), 0);
    assert_int_equal(ex.filters[ST_SCHED_FILTER_MEMORY].removed, 3);
    assert_string_equal(ex.filters[ST_SCHED_FILTER_MEMORY].reason,
                        "needs 4096 MiB reserved, most free 3072 MiB");
    /* memory_mb without a reservation is not admitted: limits may overcommit */
    req.res.memory_reservation_mb = 0;
    assert_int_equal(place_all(nodes, 3, &req, ST_SCHED_SPREAD, order, &ex), 3);

    nodes[0].used.disk_gb = 995;
    nodes[1].disk_ratio = 2.0;
    nodes[1].used.disk_gb = 1995;
    nodes[2].used.disk_gb = 1000;
    req.res.disk_gb = 5;
    assert_int_equal(place_all(nodes, 3, &req, ST_SCHED_SPREAD, order, &ex), 2);
    req.res.disk_gb = 6;
    assert_int_equal(place_all(nodes, 3, &req, ST_SCHED_SPREAD, order, &ex), 0);
    assert_int_equal(ex.filters[ST_SCHED_FILTER_DISK].removed, 3);
    assert_string_equal(ex.filters[ST_SCHED_FILTER_DISK].reason, "needs 6 GiB, most free 5 GiB");
}

static void test_filter_order(void **state)
{
    (void)state;
    /* a node failing several filters counts against the first only */
    struct st_sched_node nodes[2] = {node("a"), node("b")};
    nodes[0].alive = false;
    nodes[0].used.memory_reservation_mb = 65536;
    nodes[1].used.memory_reservation_mb = 65536;
    nodes[1].used.disk_gb = 1000;
    size_t order[2];
    struct st_sched_explain ex;
    struct st_sched_request req = request(1, 4096);
    assert_int_equal(place_all(nodes, 2, &req, ST_SCHED_SPREAD, order, &ex), 0);
    assert_int_equal(ex.filters[ST_SCHED_FILTER_ALIVE].removed, 1);
    assert_int_equal(ex.filters[ST_SCHED_FILTER_MEMORY].removed, 1);
    assert_int_equal(ex.filters[ST_SCHED_FILTER_DISK].removed, 0);
    assert_int_equal(ex.n_filters, ST_SCHED_N_FILTERS);
    for (size_t f = 0; f < ex.n_filters; f++)
        assert_non_null(ex.filters[f].filter);
    assert_string_equal(ex.filters[ST_SCHED_FILTER_GROUP].filter, "group");
}

/* ---- groups ---- */

static void test_group_affinity(void **state)
{
    (void)state;
    static const char *const g1[] = {"g1"};
    struct st_sched_node nodes[3] = {node("a"), node("b"), node("c")};
    nodes[1].groups = g1;
    nodes[1].n_groups = 1;
    size_t order[3];
    struct st_sched_explain ex;
    struct st_sched_request req = request(1, 1024);
    req.group = "g1";
    req.group_policy = ST_SCHED_GROUP_AFFINITY;
    req.group_has_members = true;
    assert_int_equal(place_all(nodes, 3, &req, ST_SCHED_SPREAD, order, &ex), 1);
    assert_string_equal(nodes[order[0]].name, "b");
    assert_int_equal(ex.filters[ST_SCHED_FILTER_GROUP].removed, 2);
    assert_string_equal(ex.filters[ST_SCHED_FILTER_GROUP].reason,
                        "affinity: no member of server group g1 there");
    /* the member's node is full: affinity does not fall back elsewhere */
    nodes[1].used.memory_reservation_mb = 65536;
    assert_int_equal(place_all(nodes, 3, &req, ST_SCHED_SPREAD, order, &ex), 0);
    assert_string_equal(explain_text(&ex),
                        "No valid host was found. 3 nodes; group: removed 2 (affinity: no member "
                        "of server group g1 there); memory: removed 1 (needs 1024 MiB reserved, "
                        "most free 0 MiB).");
    /* the first member may go anywhere */
    req.group_has_members = false;
    nodes[1].groups = NULL;
    nodes[1].n_groups = 0;
    assert_int_equal(place_all(nodes, 3, &req, ST_SCHED_SPREAD, order, &ex), 2);
}

static void test_group_anti_affinity(void **state)
{
    (void)state;
    static const char *const groups[] = {"other", "g1"};
    struct st_sched_node nodes[3] = {node("a"), node("b"), node("c")};
    nodes[0].groups = groups;
    nodes[0].n_groups = 2;
    nodes[2].groups = groups;
    nodes[2].n_groups = 1; /* only "other" */
    size_t order[3];
    struct st_sched_explain ex;
    struct st_sched_request req = request(1, 1024);
    req.group = "g1";
    req.group_policy = ST_SCHED_GROUP_ANTI_AFFINITY;
    req.group_has_members = true;
    assert_int_equal(place_all(nodes, 3, &req, ST_SCHED_SPREAD, order, &ex), 2);
    assert_string_equal(nodes[order[0]].name, "b");
    assert_string_equal(nodes[order[1]].name, "c");
    assert_int_equal(ex.filters[ST_SCHED_FILTER_GROUP].removed, 1);
    assert_string_equal(ex.filters[ST_SCHED_FILTER_GROUP].reason,
                        "anti-affinity: already hosts a member of server group g1");
}

/* ---- soft group policies (weighers, never filters) ---- */

/* A snapshot whose nodes may host members of g1, counted per node. */
struct soft_cluster {
    struct st_sched_node nodes[10];
    uint32_t members[10];
    size_t n;
};

static void soft_cluster_init(struct soft_cluster *c, size_t n)
{
    static const char *const names[] = {"a", "b", "c", "d", "e", "f", "g", "h", "i", "j"};
    assert_true(n <= 10);
    *c = (struct soft_cluster){.n = n};
    for (size_t i = 0; i < n; i++) {
        c->nodes[i] = node(names[i]);
        c->nodes[i].groups = group_g1;
        c->nodes[i].group_members = &c->members[i];
    }
}

/* Gives node i m members of g1 (n_groups 0 when none, as the controller
 * marks only the nodes that host one). */
static void soft_set_members(struct soft_cluster *c, size_t i, uint32_t m)
{
    c->members[i] = m;
    c->nodes[i].n_groups = m ? 1 : 0;
}

static struct st_sched_request soft_request(enum st_sched_group_policy policy)
{
    struct st_sched_request req = request(2, 4096);
    req.group = "g1";
    req.group_policy = policy;
    return req;
}

/* Places one member as the controller would (best node, then booked on
 * the snapshot); returns the node's index. Fails the test when nothing
 * fits: a soft policy never makes a placement fail. */
static size_t soft_place(struct soft_cluster *c, const struct st_sched_request *req,
                         enum st_sched_weigher w)
{
    size_t order[10];
    struct st_sched_explain ex;
    size_t k = place_all(c->nodes, c->n, req, w, order, &ex);
    if (k == 0)
        fail_msg("no node: %s", explain_text(&ex));
    assert_int_equal(ex.filters[ST_SCHED_FILTER_GROUP].removed, 0);
    size_t best = order[0];
    struct st_sched_node *nd = &c->nodes[best];
    nd->used.vcpus += req->res.vcpus;
    nd->used.memory_mb += req->res.memory_mb;
    nd->used.memory_reservation_mb += req->res.memory_reservation_mb;
    nd->used.disk_gb += req->res.disk_gb;
    soft_set_members(c, best, c->members[best] + 1);
    return best;
}

static void test_soft_anti_affinity_spreads_members(void **state)
{
    (void)state;
    struct soft_cluster c;
    struct st_sched_request req = soft_request(ST_SCHED_GROUP_SOFT_ANTI_AFFINITY);
    /* with pack as well: the preference beats packing onto one node */
    for (int w = ST_SCHED_SPREAD; w <= ST_SCHED_PACK; w++) {
        soft_cluster_init(&c, 3);
        bool seen[3] = {false};
        for (int m = 0; m < 3; m++) {
            size_t at = soft_place(&c, &req, w);
            if (seen[at])
                fail_msg("%s: member %d on %s, which already has one", st_sched_weigher_name(w), m,
                         c.nodes[at].name);
            seen[at] = true;
        }
        /* a fourth member still lands (on a node with one already) */
        size_t at = soft_place(&c, &req, w);
        assert_int_equal(c.members[at], 2);
    }

    /* the node with the fewest members wins, even over a less used one */
    soft_cluster_init(&c, 3);
    soft_set_members(&c, 0, 2);
    soft_set_members(&c, 1, 1);
    c.nodes[1].used.memory_reservation_mb = 16384;
    c.nodes[1].used.vcpus = 16;
    soft_set_members(&c, 2, 0);
    c.nodes[2].used.memory_reservation_mb = 40960; /* the most used, but no member */
    c.nodes[2].used.vcpus = 40;
    size_t order[3];
    struct st_sched_explain ex;
    assert_int_equal(place_all(c.nodes, 3, &req, ST_SCHED_SPREAD, order, &ex), 3);
    assert_string_equal(c.nodes[order[0]].name, "c");
    /* normalised over the nodes that fit, the weights add: b (one member:
     * 0.5 + 1 - 0.30 used after placement) beats a less used a with two
     * members (0 + 1 - 0.05) */
    assert_string_equal(c.nodes[order[1]].name, "b");
    assert_string_equal(c.nodes[order[2]].name, "a");
    /* the member-free node is full: the member goes to the next best, no fault */
    c.nodes[2].used.memory_reservation_mb = 65536;
    assert_int_equal(place_all(c.nodes, 3, &req, ST_SCHED_SPREAD, order, &ex), 2);
    assert_string_equal(c.nodes[order[0]].name, "b");
    assert_int_equal(ex.filters[ST_SCHED_FILTER_GROUP].removed, 0);
}

static void test_soft_affinity_gathers_members(void **state)
{
    (void)state;
    struct soft_cluster c;
    struct st_sched_request req = soft_request(ST_SCHED_GROUP_SOFT_AFFINITY);
    for (int w = ST_SCHED_SPREAD; w <= ST_SCHED_PACK; w++) {
        soft_cluster_init(&c, 3);
        /* the first member where the weigher puts it: a with spread (names
         * break ties); then the others follow it, spread or not */
        size_t first = soft_place(&c, &req, w);
        for (int m = 1; m < 3; m++)
            assert_int_equal(soft_place(&c, &req, w), first);
        assert_int_equal(c.members[first], 3);
    }
    /* a member on the last node by name draws the next ones there */
    soft_cluster_init(&c, 3);
    soft_set_members(&c, 2, 1);
    c.nodes[2].used.memory_reservation_mb = 16384;
    c.nodes[2].used.vcpus = 16;
    assert_int_equal(soft_place(&c, &req, ST_SCHED_SPREAD), 2);
    assert_int_equal(soft_place(&c, &req, ST_SCHED_SPREAD), 2);

    /* the members' node is full: the server lands elsewhere, no fault */
    c.nodes[2].used.memory_reservation_mb = 65536 - 1024;
    size_t order[3];
    struct st_sched_explain ex;
    assert_int_equal(place_all(c.nodes, 3, &req, ST_SCHED_SPREAD, order, &ex), 2);
    assert_string_equal(c.nodes[order[0]].name, "a");
    assert_int_equal(ex.filters[ST_SCHED_FILTER_GROUP].removed, 0);
    assert_int_equal(ex.filters[ST_SCHED_FILTER_MEMORY].removed, 1);
    /* and every node full is the usual fault, with no group in it */
    for (size_t i = 0; i < 3; i++)
        c.nodes[i].used.memory_reservation_mb = 65536;
    assert_int_equal(place_all(c.nodes, 3, &req, ST_SCHED_SPREAD, order, &ex), 0);
    assert_string_equal(explain_text(&ex), "No valid host was found. 3 nodes; memory: removed 3 "
                                           "(needs 4096 MiB reserved, most free 0 MiB).");
}

/* The sampled scan still sees the members' nodes outside its window. */
static void test_soft_sampled(void **state)
{
    (void)state;
    struct soft_cluster c;
    soft_cluster_init(&c, 10);
    soft_set_members(&c, 8, 1);
    struct st_sched_request req = soft_request(ST_SCHED_GROUP_SOFT_AFFINITY);
    struct st_sched_options opts = {.weigher = ST_SCHED_SPREAD, .start = 2, .enough = 3};
    size_t order[10], k = 0;
    struct st_sched_explain ex;
    assert_int_equal(st_sched_place(c.nodes, 10, &req, &opts, order, 10, &k, &ex, NULL), 0);
    /* the window 2, 3, 4, then node 8 */
    assert_int_equal(ex.n_nodes, 4);
    assert_int_equal(k, 4);
    assert_string_equal(c.nodes[order[0]].name, "i");
    /* soft-anti-affinity: the window's nodes, without a member, come first */
    req.group_policy = ST_SCHED_GROUP_SOFT_ANTI_AFFINITY;
    assert_int_equal(st_sched_place(c.nodes, 10, &req, &opts, order, 10, &k, &ex, NULL), 0);
    assert_int_equal(k, 4);
    assert_string_equal(c.nodes[order[0]].name, "c");
    assert_string_equal(c.nodes[order[3]].name, "i");
    /* the same from the request's list of member nodes, without a sweep:
     * a listed node inside the window is not examined twice, one without a
     * mark or out of range not at all */
    soft_set_members(&c, 3, 2);
    const size_t listed[] = {3, 8, 9, 42};
    req.member_nodes = listed;
    req.n_member_nodes = 4;
    req.group_policy = ST_SCHED_GROUP_SOFT_AFFINITY;
    assert_int_equal(st_sched_place(c.nodes, 10, &req, &opts, order, 10, &k, &ex, NULL), 0);
    assert_int_equal(ex.n_nodes, 4);
    assert_int_equal(k, 4);
    assert_string_equal(c.nodes[order[0]].name, "d"); /* two members */
    assert_string_equal(c.nodes[order[1]].name, "i");
    /* hard policies do not widen the window: d is filtered out, and the
     * window moves on to three that fit (c, e, f), not to i */
    req.group_policy = ST_SCHED_GROUP_ANTI_AFFINITY;
    assert_int_equal(st_sched_place(c.nodes, 10, &req, &opts, order, 10, &k, &ex, NULL), 0);
    assert_int_equal(ex.n_nodes, 4);
    assert_int_equal(ex.filters[ST_SCHED_FILTER_GROUP].removed, 1);
    assert_int_equal(k, 3);
    for (size_t j = 0; j < k; j++)
        assert_string_not_equal(c.nodes[order[j]].name, "i");
}

/* ---- weighers ---- */

static void test_weigher_spread_pack(void **state)
{
    (void)state;
    struct st_sched_node nodes[3] = {node("a"), node("b"), node("c")};
    nodes[0].used.memory_reservation_mb = 32768; /* half */
    nodes[0].used.vcpus = 32;
    nodes[1].used.memory_reservation_mb = 8192;
    nodes[1].used.vcpus = 8;
    nodes[2].used.memory_reservation_mb = 16384;
    nodes[2].used.vcpus = 16;
    size_t order[3];
    struct st_sched_explain ex;
    struct st_sched_request req = request(2, 4096);
    assert_int_equal(place_all(nodes, 3, &req, ST_SCHED_SPREAD, order, &ex), 3);
    assert_string_equal(nodes[order[0]].name, "b");
    assert_string_equal(nodes[order[1]].name, "c");
    assert_string_equal(nodes[order[2]].name, "a");
    assert_int_equal(place_all(nodes, 3, &req, ST_SCHED_PACK, order, &ex), 3);
    assert_string_equal(nodes[order[0]].name, "a");
    assert_string_equal(nodes[order[1]].name, "c");
    assert_string_equal(nodes[order[2]].name, "b");

    /* usage is relative to what a node admits: a big node half full ranks
     * with a small node half full, below a small empty one */
    struct st_sched_node mixed[2] = {node("big"), node("small")};
    mixed[0].memory_mb = 262144;
    mixed[0].vcpus = 64;
    mixed[0].used.memory_reservation_mb = 131072;
    mixed[0].used.vcpus = 128;
    assert_int_equal(place_all(mixed, 2, &req, ST_SCHED_SPREAD, order, &ex), 2);
    assert_string_equal(mixed[order[0]].name, "small");

    /* the cpu fraction is the larger of vCPUs and MHz reserved */
    struct st_sched_node cpu[2] = {node("x"), node("y")};
    cpu[0].used.cpu_reservation_mhz = 30000; /* 75 % of 40,000 MHz */
    cpu[1].used.vcpus = 32;                  /* 50 % of 64 */
    assert_int_equal(place_all(cpu, 2, &req, ST_SCHED_SPREAD, order, &ex), 2);
    assert_string_equal(cpu[order[0]].name, "y");
}

static void test_weigher_ties_by_name(void **state)
{
    (void)state;
    /* equal nodes, given out of name order: ranked by name */
    struct st_sched_node nodes[4] = {node("n3"), node("n1"), node("n4"), node("n2")};
    size_t order[4];
    struct st_sched_explain ex;
    struct st_sched_request req = request(2, 4096);
    for (int w = ST_SCHED_SPREAD; w <= ST_SCHED_PACK; w++) {
        assert_int_equal(place_all(nodes, 4, &req, w, order, &ex), 4);
        assert_string_equal(nodes[order[0]].name, "n1");
        assert_string_equal(nodes[order[1]].name, "n2");
        assert_string_equal(nodes[order[2]].name, "n3");
        assert_string_equal(nodes[order[3]].name, "n4");
    }
    /* asking for fewer gives the same head */
    struct st_sched_options opts = {.weigher = ST_SCHED_SPREAD};
    size_t k = 0;
    assert_int_equal(st_sched_place(nodes, 4, &req, &opts, order, 2, &k, NULL, NULL), 0);
    assert_int_equal(k, 2);
    assert_string_equal(nodes[order[0]].name, "n1");
    assert_string_equal(nodes[order[1]].name, "n2");
    /* and max_order 0 just counts */
    assert_int_equal(st_sched_place(nodes, 4, &req, &opts, NULL, 0, &k, &ex, NULL), 0);
    assert_int_equal(k, 0);
    assert_int_equal(ex.n_fit, 4);
}

/* ---- explanation ---- */

static void test_explain_text(void **state)
{
    (void)state;
    struct st_sched_node nodes[5] = {node("a"), node("b"), node("c"), node("d"), node("e")};
    nodes[0].alive = false;
    for (int i = 1; i < 5; i++)
        nodes[i].used.memory_reservation_mb = 65536 - 1024 * (uint64_t)i;
    size_t order[5];
    struct st_sched_explain ex;
    struct st_sched_request req = request(1, 8192);
    assert_int_equal(place_all(nodes, 5, &req, ST_SCHED_SPREAD, order, &ex), 0);
    assert_string_equal(explain_text(&ex),
                        "No valid host was found. 5 nodes; alive: removed 1 (heartbeat older than "
                        "lease); memory: removed 4 (needs 8192 MiB reserved, most free 4096 MiB).");
    assert_int_equal(place_all(NULL, 0, &req, ST_SCHED_SPREAD, order, &ex), 0);
    assert_string_equal(explain_text(&ex), "No valid host was found. There are no compute nodes.");
    assert_int_equal(place_all(nodes, 1, &req, ST_SCHED_SPREAD, order, &ex), 0);
    assert_string_equal(explain_text(&ex), "No valid host was found. 1 node; alive: removed 1 "
                                           "(heartbeat older than lease).");
    /* truncation keeps a terminated string */
    char small[20];
    st_sched_explain_format(&ex, small, sizeof(small));
    assert_string_equal(small, "No valid host was f");
}

/* ---- the sampled scan ---- */

static void test_sampling(void **state)
{
    (void)state;
    assert_int_equal(st_sched_enough(0), 0);
    assert_int_equal(st_sched_enough(50), 50);
    assert_int_equal(st_sched_enough(100), 100);
    assert_int_equal(st_sched_enough(1000), 420);
    assert_int_equal(st_sched_enough(10000), 500);
    assert_int_equal(st_sched_enough(100000), 5000);

    enum { N = 10 };
    struct st_sched_node nodes[N];
    char names[N][8];
    for (int i = 0; i < N; i++) {
        snprintf(names[i], sizeof(names[i]), "n%d", i);
        nodes[i] = node(names[i]);
    }
    nodes[8].used.memory_reservation_mb = 65536; /* full */
    struct st_sched_request req = request(1, 1024);
    struct st_sched_options opts = {.weigher = ST_SCHED_SPREAD, .start = 7, .enough = 3};
    size_t order[N], k = 0;
    struct st_sched_explain ex;
    assert_int_equal(st_sched_place(nodes, N, &req, &opts, order, N, &k, &ex, NULL), 0);
    /* examined 7, 8 (full), 9, 0: three fit, ranked by name */
    assert_int_equal(ex.n_nodes, 4);
    assert_int_equal(ex.n_fit, 3);
    assert_int_equal(k, 3);
    assert_string_equal(nodes[order[0]].name, "n0");
    assert_string_equal(nodes[order[1]].name, "n7");
    assert_string_equal(nodes[order[2]].name, "n9");
    /* nothing fits: every node is examined, whatever enough says */
    req.res.memory_reservation_mb = 1 << 20;
    opts.start = 123; /* taken modulo n */
    assert_int_equal(st_sched_place(nodes, N, &req, &opts, order, N, &k, &ex, NULL), 0);
    assert_int_equal(k, 0);
    assert_int_equal(ex.n_nodes, N);
    assert_int_equal(ex.filters[ST_SCHED_FILTER_MEMORY].removed, N);
}

static void test_bad_arguments(void **state)
{
    (void)state;
    struct st_sched_node n1 = node("a");
    struct st_sched_request req = request(1, 1024);
    size_t order[1], k;
    st_autoptr(st_err) err = NULL;
    assert_int_equal(st_sched_place(&n1, 1, NULL, NULL, order, 1, &k, NULL, &err), -EINVAL);
    st_err_clear(&err);
    assert_int_equal(st_sched_place(NULL, 1, &req, NULL, order, 1, &k, NULL, &err), -EINVAL);
    st_err_clear(&err);
    assert_int_equal(st_sched_place(&n1, 1, &req, NULL, NULL, 1, &k, NULL, &err), -EINVAL);
    st_err_clear(&err);
    struct st_sched_options opts = {.weigher = (enum st_sched_weigher)7};
    assert_int_equal(st_sched_place(&n1, 1, &req, &opts, order, 1, &k, NULL, &err), -EINVAL);
    assert_string_equal(st_err_msg(err), "scheduler: unknown weigher 7");
    st_err_clear(&err);
    req.group_policy = ST_SCHED_GROUP_AFFINITY;
    assert_int_equal(st_sched_place(&n1, 1, &req, NULL, order, 1, &k, NULL, &err), -EINVAL);
    st_err_clear(&err);
    /* NULL options: spread over every node */
    req.group_policy = ST_SCHED_GROUP_NONE;
    assert_int_equal(st_sched_place(&n1, 1, &req, NULL, order, 1, &k, NULL, &err), 0);
    assert_int_equal(k, 1);

    enum st_sched_weigher w;
    assert_int_equal(st_sched_weigher_parse("pack", &w, NULL), 0);
    assert_int_equal(w, ST_SCHED_PACK);
    assert_int_equal(st_sched_weigher_parse("spread", &w, NULL), 0);
    assert_int_equal(w, ST_SCHED_SPREAD);
    assert_int_equal(st_sched_weigher_parse("binpack", &w, &err), -EINVAL);
    assert_string_equal(st_err_msg(err), "unknown weigher 'binpack' (expected spread or pack)");
    assert_string_equal(st_sched_weigher_name(ST_SCHED_PACK), "pack");
}

/* ---- properties over random snapshots ---- */

/* The admission rules of sched.h, written again independently. */
static bool oracle_fits(const struct st_sched_node *n, const struct st_sched_request *q)
{
    double cr = n->cpu_ratio > 0 ? n->cpu_ratio : 1, mr = n->memory_ratio > 0 ? n->memory_ratio : 1;
    double dr = n->disk_ratio > 0 ? n->disk_ratio : 1;
    if (!n->alive)
        return false;
    if (q->driver) {
        bool ok = false;
        for (size_t i = 0; i < n->n_drivers; i++)
            ok |= strcmp(n->drivers[i], q->driver) == 0;
        if (!ok)
            return false;
    }
    if (q->availability_zone && strcmp(n->availability_zone, q->availability_zone) != 0)
        return false;
    if (q->res.vcpus && n->used.vcpus + q->res.vcpus > n->vcpus * cr + 1e-6)
        return false;
    if (q->res.cpu_reservation_mhz && n->used.cpu_reservation_mhz + q->res.cpu_reservation_mhz >
                                          (double)n->vcpus * n->cpu_mhz * (cr < 1 ? cr : 1) + 1e-6)
        return false;
    if (q->res.memory_reservation_mb &&
        n->used.memory_reservation_mb + q->res.memory_reservation_mb >
            n->memory_mb * (mr < 1 ? mr : 1) + 1e-6)
        return false;
    if (q->res.disk_gb && n->used.disk_gb + q->res.disk_gb > n->disk_gb * dr + 1e-6)
        return false;
    return true;
}

static bool oracle_within(const struct st_sched_node *n)
{
    double cr = n->cpu_ratio, mr = n->memory_ratio, dr = n->disk_ratio;
    return n->used.vcpus <= n->vcpus * cr + 1e-6 &&
           n->used.cpu_reservation_mhz <=
               (double)n->vcpus * n->cpu_mhz * (cr < 1 ? cr : 1) + 1e-6 &&
           n->used.memory_reservation_mb <= n->memory_mb * (mr < 1 ? mr : 1) + 1e-6 &&
           n->used.disk_gb <= n->disk_gb * dr + 1e-6;
}

static uint64_t rnd(uint64_t *s, uint64_t n)
{
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    return n ? *s % n : 0;
}

/* The weight of sched.h, written again independently: the load weigher
 * (1 - usage for spread, usage for pack) plus, for a soft policy, the
 * members' count normalised over the nodes that fit. */
static double oracle_weight(const struct st_sched_node *nodes, size_t n, size_t at,
                            const struct st_sched_request *q, enum st_sched_weigher w)
{
    const struct st_sched_node *nd = &nodes[at];
    double cr = nd->cpu_ratio > 0 ? nd->cpu_ratio : 1,
           mr = nd->memory_ratio > 0 ? nd->memory_ratio : 1;
    double cpu = (nd->used.vcpus + q->res.vcpus) / (nd->vcpus * cr);
    double mhz = (double)(nd->used.cpu_reservation_mhz + q->res.cpu_reservation_mhz) /
                 ((double)nd->vcpus * nd->cpu_mhz * (cr < 1 ? cr : 1));
    double mem = (double)(nd->used.memory_reservation_mb + q->res.memory_reservation_mb) /
                 (nd->memory_mb * (mr < 1 ? mr : 1));
    double load = ((cpu > mhz ? cpu : mhz) + mem) / 2;
    double weight = w == ST_SCHED_SPREAD ? 1 - load : load;
    if (q->group_policy != ST_SCHED_GROUP_SOFT_AFFINITY &&
        q->group_policy != ST_SCHED_GROUP_SOFT_ANTI_AFFINITY)
        return weight;
    double lo = 1e9, hi = -1;
    for (size_t i = 0; i < n; i++) {
        if (!oracle_fits(&nodes[i], q))
            continue;
        double m = nodes[i].n_groups ? nodes[i].group_members[0] : 0;
        lo = m < lo ? m : lo;
        hi = m > hi ? m : hi;
    }
    double m = nd->n_groups ? nd->group_members[0] : 0;
    if (hi > lo)
        weight += q->group_policy == ST_SCHED_GROUP_SOFT_AFFINITY ? (m - lo) / (hi - lo)
                                                                  : (hi - m) / (hi - lo);
    return weight;
}

static void test_property_random_snapshots(void **state)
{
    (void)state;
    static const double ratios[] = {0.5, 1.0, 1.5, 4.0};
    static const char *const zones[] = {"nova", "az2"};
    enum { N = 60 };
    char names[N][8];
    struct st_sched_node nodes[N];
    uint32_t members[N];
    uint64_t seed = 0x9e3779b97f4a7c15ull;
    size_t placed_total = 0;
    for (int round = 0; round < 200; round++) {
        size_t n = 1 + rnd(&seed, N);
        for (size_t i = 0; i < n; i++) {
            snprintf(names[i], sizeof(names[i]), "n%02zu", rnd(&seed, 100));
            nodes[i] = node(names[i]);
            nodes[i].alive = rnd(&seed, 10) != 0;
            nodes[i].drivers = rnd(&seed, 4) ? sim_drivers : both_drivers;
            nodes[i].n_drivers = nodes[i].drivers == sim_drivers ? 1 : 2;
            nodes[i].availability_zone = zones[rnd(&seed, 2)];
            nodes[i].vcpus = 1 + (uint32_t)rnd(&seed, 32);
            nodes[i].memory_mb = 1024 * (1 + rnd(&seed, 64));
            nodes[i].disk_gb = 10 * (1 + rnd(&seed, 50));
            nodes[i].cpu_ratio = ratios[rnd(&seed, 4)];
            nodes[i].memory_ratio = ratios[rnd(&seed, 4)];
            nodes[i].disk_ratio = ratios[rnd(&seed, 4)];
            members[i] = (uint32_t)rnd(&seed, 4);
            nodes[i].groups = group_g1;
            nodes[i].n_groups = members[i] ? 1 : 0;
            nodes[i].group_members = &members[i];
        }
        /* fill the snapshot by placing random requests until a run of
         * requests fits nowhere, checking every answer */
        int misses = 0;
        while (misses < 20) {
            struct st_sched_request req = {
                .res = {.vcpus = 1 + (uint32_t)rnd(&seed, 8),
                        .cpu_reservation_mhz = rnd(&seed, 3) ? 0 : 500 * rnd(&seed, 8),
                        .memory_reservation_mb = 512 * rnd(&seed, 16),
                        .disk_gb = 5 * rnd(&seed, 10)},
                .driver = rnd(&seed, 5) ? "sim" : "container",
                .availability_zone = rnd(&seed, 3) ? NULL : zones[rnd(&seed, 2)],
            };
            static const enum st_sched_group_policy soft[] = {ST_SCHED_GROUP_NONE,
                                                              ST_SCHED_GROUP_SOFT_AFFINITY,
                                                              ST_SCHED_GROUP_SOFT_ANTI_AFFINITY};
            req.group_policy = soft[rnd(&seed, 3)];
            req.group = req.group_policy != ST_SCHED_GROUP_NONE ? "g1" : NULL;
            enum st_sched_weigher w = rnd(&seed, 2) ? ST_SCHED_PACK : ST_SCHED_SPREAD;
            size_t order[N];
            struct st_sched_explain ex;
            size_t k = place_all(nodes, n, &req, w, order, &ex);
            /* exactly the nodes the oracle admits, no node twice */
            size_t expect = 0;
            for (size_t i = 0; i < n; i++)
                expect += oracle_fits(&nodes[i], &req);
            assert_int_equal(k, expect);
            assert_int_equal(ex.n_fit, expect);
            size_t removed = 0;
            for (size_t f = 0; f < ex.n_filters; f++)
                removed += ex.filters[f].removed;
            assert_int_equal(removed + k, n);
            for (size_t j = 0; j < k; j++) {
                assert_true(order[j] < n);
                assert_true(oracle_fits(&nodes[order[j]], &req));
                for (size_t m = 0; m < j; m++)
                    assert_true(order[m] != order[j]);
            }
            if (k == 0) {
                misses++;
                continue;
            }
            /* the first has the highest weight (ties: by name) */
            double top = oracle_weight(nodes, n, order[0], &req, w);
            for (size_t j = 1; j < k; j++)
                if (oracle_weight(nodes, n, order[j], &req, w) > top + 1e-9)
                    fail_msg("node %s (weight %.6f) ranked below %s (%.6f)", nodes[order[j]].name,
                             oracle_weight(nodes, n, order[j], &req, w), nodes[order[0]].name, top);
            struct st_sched_node *best = &nodes[order[0]];
            if (req.group) {
                members[order[0]]++;
                best->n_groups = 1;
            }
            best->used.vcpus += req.res.vcpus;
            best->used.cpu_reservation_mhz += req.res.cpu_reservation_mhz;
            best->used.memory_reservation_mb += req.res.memory_reservation_mb;
            best->used.disk_gb += req.res.disk_gb;
            placed_total++;
            assert_true(oracle_within(best));
        }
        for (size_t i = 0; i < n; i++)
            assert_true(oracle_within(&nodes[i]));
    }
    assert_true(placed_total > 1000); /* the property was exercised */
}

/* Sampled scans: whatever start and enough, only admissible nodes. */
static void test_property_sampled(void **state)
{
    (void)state;
    enum { N = 200 };
    char names[N][8];
    struct st_sched_node nodes[N];
    for (int i = 0; i < N; i++) {
        snprintf(names[i], sizeof(names[i]), "s%03d", i);
        nodes[i] = node(names[i]);
        nodes[i].memory_mb = 8192;
    }
    uint64_t seed = 42;
    struct st_sched_options opts = {.weigher = ST_SCHED_SPREAD, .enough = st_sched_enough(N)};
    size_t placed = 0;
    for (;;) {
        struct st_sched_request req = request(1, 512 * (1 + rnd(&seed, 8)));
        size_t best, k;
        struct st_sched_explain ex;
        assert_int_equal(st_sched_place(nodes, N, &req, &opts, &best, 1, &k, &ex, NULL), 0);
        if (!k) {
            assert_int_equal(ex.n_nodes, N);
            /* a full cluster: every node would be exceeded by this request */
            for (int i = 0; i < N; i++)
                assert_false(oracle_fits(&nodes[i], &req));
            break;
        }
        assert_true(oracle_fits(&nodes[best], &req));
        opts.start += ex.n_nodes;
        nodes[best].used.memory_reservation_mb += req.res.memory_reservation_mb;
        nodes[best].used.vcpus += 1;
        nodes[best].used.disk_gb += 10;
        placed++;
    }
    for (int i = 0; i < N; i++)
        assert_true(oracle_within(&nodes[i]));
    assert_true(placed > N);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_filter_alive_driver_zone),
        cmocka_unit_test(test_filter_vcpus_ratio),
        cmocka_unit_test(test_filter_cpu_reservation),
        cmocka_unit_test(test_filter_memory_disk),
        cmocka_unit_test(test_filter_order),
        cmocka_unit_test(test_group_affinity),
        cmocka_unit_test(test_group_anti_affinity),
        cmocka_unit_test(test_soft_anti_affinity_spreads_members),
        cmocka_unit_test(test_soft_affinity_gathers_members),
        cmocka_unit_test(test_soft_sampled),
        cmocka_unit_test(test_weigher_spread_pack),
        cmocka_unit_test(test_weigher_ties_by_name),
        cmocka_unit_test(test_explain_text),
        cmocka_unit_test(test_sampling),
        cmocka_unit_test(test_bad_arguments),
        cmocka_unit_test(test_property_random_snapshots),
        cmocka_unit_test(test_property_sampled),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
