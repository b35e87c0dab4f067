/* Unit tests of src/ctrl's placement controller against a real SQLite store
 * in a temporary directory: what a user of the store sees after the
 * controller ran — spec.host and task_state on placed servers, their
 * entries in the nodes' allocations, ERROR with a fault that names the
 * filter, dead nodes skipped, two controllers racing for too little room
 * never double-booking, server groups, and recovery from what a crash
 * between the two writes of a placement leaves. */
#include <errno.h>
#include <ftw.h>
#include <inttypes.h>
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
#include "ctrl/placement.h"
#include "lib/cleanup.h"
#include "lib/err.h"
#include "lib/json.h"
#include "lib/log.h"
#include "lib/times.h"
#include "lib/uuid.h"
#include "store/kv.h"

#define DEADLINE_MS 10000

struct fixture {
    char dir[256];
    struct st_kv *kv;
    struct st_ctrl_placement *ctrl[2];
};

static int setup(void **state)
{
    struct fixture *f = st_new0(struct fixture, 1);
    const char *tmp = getenv("TMPDIR");
    snprintf(f->dir, sizeof(f->dir), "%s/st-ctrl-test-XXXXXX", tmp && tmp[0] ? tmp : "/tmp");
    if (!mkdtemp(f->dir)) {
        free(f);
        return -1;
    }
    st_autofree char *path = st_sprintf("%s/store.db", f->dir);
    st_autoptr(st_err) err = NULL;
    if (st_kv_open(path, NULL, &f->kv, &err) < 0) {
        print_error("open %s: %s\n", path, st_err_msg(err));
        return -1;
    }
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
    for (size_t i = 0; i < ST_ARRAY_SIZE(f->ctrl); i++)
        st_ctrl_placement_stop(f->ctrl[i]);
    st_kv_close(f->kv);
    int r = nftw(f->dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
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

/* NULL when absent. */
static json_t *get_json(struct st_kv *kv, const char *key)
{
    st_autoptr(st_kv_entry) e = NULL;
    if (st_kv_get(kv, key, &e, NULL) < 0)
        return NULL;
    json_t *doc = NULL;
    if (st_json_parse_object(e->value, e->value_len, &doc, NULL) < 0)
        fail_msg("%s is not JSON", key);
    return doc;
}

/* A node as the internal API writes it, heartbeating age_s seconds ago. */
static void put_node(struct st_kv *kv, const char *name, int vcpus, int memory_mb, int age_s)
{
    char hb[ST_TIME_RFC3339_LEN];
    st_time_rfc3339(st_time_now_ms() / 1000 - age_s, hb, sizeof(hb));
    st_autoptr(json_t) doc = json_pack(
        "{s:s, s:[s], s:{s:i, s:i, s:i, s:i}, s:{s:f, s:f, s:f}, s:s, s:s, s:i, s:b}", "name", name,
        "drivers", "sim", "capacity", "vcpus", vcpus, "cpu_mhz", 2500, "memory_mb", memory_mb,
        "disk_gb", 1000, "allocation_ratio", "cpu", 4.0, "memory", 1.0, "disk", 1.0,
        "availability_zone", "nova", "heartbeat_at", hb, "lease_seconds", 30, "simulated", 1);
    st_autofree char *key = st_sprintf("%s%s", ST_COMPUTE_NODES_PREFIX, name);
    put_json(kv, key, doc);
}

/* A BUILD server as the Nova API writes it, with a new id in id. */
static void put_server(struct st_kv *kv, char id[ST_UUID_LEN], int memory_mb, const char *group)
{
    st_uuid_new(id);
    st_autoptr(json_t) doc = json_pack(
        "{s:s, s:s, s:s, s:{s:s, s:{s:i, s:i, s:i, s:i, s:i}, s:b, s:n, s:s?, s:n}, "
        "s:{s:s, s:s, s:n}}",
        "id", id, "name", "vm", "project_id", "p1", "spec", "driver", "sim", "resources", "vcpus",
        1, "memory_mb", memory_mb, "disk_gb", 10, "cpu_reservation_mhz", 0, "memory_reservation_mb",
        memory_mb, "deleted", 0, "host", "server_group", group, "availability_zone", "status",
        "state", "BUILD", "task_state", "scheduling", "fault");
    st_autofree char *key = st_sprintf("%s%s", ST_COMPUTE_SERVERS_PREFIX, id);
    put_json(kv, key, doc);
}

static json_t *get_server(struct st_kv *kv, const char *id)
{
    st_autofree char *key = st_sprintf("%s%s", ST_COMPUTE_SERVERS_PREFIX, id);
    return get_json(kv, key);
}

static const char *spec_host(json_t *doc)
{
    return json_string_value(json_object_get(json_object_get(doc, "spec"), "host"));
}

static const char *status_str(json_t *doc, const char *k)
{
    return json_string_value(json_object_get(json_object_get(doc, "status"), k));
}

static const char *fault_message(json_t *doc)
{
    json_t *fault = json_object_get(json_object_get(doc, "status"), "fault");
    return json_string_value(json_object_get(fault, "message"));
}

/* The server ids in a node's allocation, as a JSON object (empty if none). */
static json_t *alloc_servers(struct st_kv *kv, const char *node)
{
    st_autofree char *key = st_sprintf("%s%s", ST_COMPUTE_ALLOCATIONS_PREFIX, node);
    st_autoptr(json_t) doc = get_json(kv, key);
    json_t *servers = json_object_get(doc, "servers");
    return servers ? json_incref(servers) : json_object();
}

static void sleep_ms(int ms)
{
    struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000};
    nanosleep(&ts, NULL);
}

/* Has the server left BUILD-without-host (placed or failed)? */
static bool settled(struct st_kv *kv, const char *id)
{
    st_autoptr(json_t) doc = get_server(kv, id);
    const char *state = status_str(doc, "state");
    return doc && (spec_host(doc) || (state && strcmp(state, "BUILD") != 0));
}

static void wait_settled(struct st_kv *kv, char (*ids)[ST_UUID_LEN], size_t n)
{
    int64_t deadline = st_time_mono_ns() / 1000000 + DEADLINE_MS;
    for (size_t i = 0; i < n; i++) {
        while (!settled(kv, ids[i])) {
            if (st_time_mono_ns() / 1000000 > deadline)
                fail_msg("server %s still has no host and no fault after %d ms", ids[i],
                         DEADLINE_MS);
            sleep_ms(10);
        }
    }
}

static struct st_ctrl_placement *start(struct st_kv *kv, const struct st_ctrl_placement_config *cfg)
{
    struct st_ctrl_placement *p = NULL;
    st_autoptr(st_err) err = NULL;
    if (st_ctrl_placement_start(kv, cfg, &p, &err) < 0)
        fail_msg("start: %s", st_err_msg(err));
    return p;
}

/* ---- tests ---- */

static void test_places_build_servers(void **state)
{
    struct fixture *f = *state;
    put_node(f->kv, "node-a", 8, 16384, 0);
    put_node(f->kv, "node-b", 8, 16384, 0);
    char ids[4][ST_UUID_LEN];
    put_server(f->kv, ids[0], 4096, NULL);
    f->ctrl[0] = start(f->kv, NULL);
    wait_settled(f->kv, ids, 1);
    /* servers created while the controller runs come through the watch */
    for (int i = 1; i < 4; i++)
        put_server(f->kv, ids[i], 4096, NULL);
    wait_settled(f->kv, ids, 4);

    int on_a = 0, on_b = 0;
    for (int i = 0; i < 4; i++) {
        st_autoptr(json_t) doc = get_server(f->kv, ids[i]);
        const char *host = spec_host(doc);
        assert_non_null(host);
        assert_string_equal(status_str(doc, "state"), "BUILD");
        assert_string_equal(status_str(doc, "task_state"), "spawning");
        assert_non_null(json_object_get(doc, "updated_at"));
        /* the allocation was written first and lists it with its resources */
        st_autoptr(json_t) servers = alloc_servers(f->kv, host);
        json_t *entry = json_object_get(servers, ids[i]);
        assert_non_null(entry);
        assert_int_equal(json_integer_value(json_object_get(entry, "memory_reservation_mb")), 4096);
        on_a += strcmp(host, "node-a") == 0;
        on_b += strcmp(host, "node-b") == 0;
    }
    /* spread: two each */
    assert_int_equal(on_a, 2);
    assert_int_equal(on_b, 2);
    struct st_ctrl_placement_stats st;
    st_ctrl_placement_get_stats(f->ctrl[0], &st);
    assert_int_equal(st.placed, 4);
    assert_int_equal(st.failed, 0);
}

static void test_pack_weigher(void **state)
{
    struct fixture *f = *state;
    put_node(f->kv, "node-a", 8, 16384, 0);
    put_node(f->kv, "node-b", 8, 16384, 0);
    char ids[3][ST_UUID_LEN];
    for (int i = 0; i < 3; i++)
        put_server(f->kv, ids[i], 4096, NULL);
    struct st_ctrl_placement_config cfg = {.weigher = ST_SCHED_PACK};
    f->ctrl[0] = start(f->kv, &cfg);
    wait_settled(f->kv, ids, 3);
    for (int i = 0; i < 3; i++) {
        st_autoptr(json_t) doc = get_server(f->kv, ids[i]);
        assert_string_equal(spec_host(doc), "node-a");
    }
}

static void test_no_valid_host_fault(void **state)
{
    struct fixture *f = *state;
    put_node(f->kv, "node-a", 8, 2048, 0);
    put_node(f->kv, "node-b", 8, 3072, 0);
    char ids[1][ST_UUID_LEN];
    put_server(f->kv, ids[0], 4096, NULL);
    f->ctrl[0] = start(f->kv, NULL);
    wait_settled(f->kv, ids, 1);
    st_autoptr(json_t) doc = get_server(f->kv, ids[0]);
    assert_null(spec_host(doc));
    assert_string_equal(status_str(doc, "state"), "ERROR");
    assert_true(json_is_null(json_object_get(json_object_get(doc, "status"), "task_state")));
    json_t *fault = json_object_get(json_object_get(doc, "status"), "fault");
    assert_int_equal(json_integer_value(json_object_get(fault, "code")), 500);
    assert_string_equal(fault_message(doc),
                        "No valid host was found. 2 nodes; memory: removed 2 (needs 4096 MiB "
                        "reserved, most free 3072 MiB).");
    int64_t created;
    assert_int_equal(
        st_time_parse_rfc3339(json_string_value(json_object_get(fault, "created")), &created), 0);
    /* nothing was booked */
    st_autoptr(json_t) a = alloc_servers(f->kv, "node-a");
    st_autoptr(json_t) b = alloc_servers(f->kv, "node-b");
    assert_int_equal(json_object_size(a) + json_object_size(b), 0);
}

static void test_dead_node_skipped(void **state)
{
    struct fixture *f = *state;
    put_node(f->kv, "node-a", 8, 65536, 120); /* lease 30 s, last seen 2 min ago */
    put_node(f->kv, "node-b", 8, 8192, 0);
    char ids[2][ST_UUID_LEN];
    put_server(f->kv, ids[0], 4096, NULL);
    put_server(f->kv, ids[1], 8192, NULL); /* only the dead node has room */
    f->ctrl[0] = start(f->kv, NULL);
    wait_settled(f->kv, ids, 2);
    st_autoptr(json_t) d0 = get_server(f->kv, ids[0]);
    assert_string_equal(spec_host(d0), "node-b");
    st_autoptr(json_t) d1 = get_server(f->kv, ids[1]);
    assert_string_equal(status_str(d1, "state"), "ERROR");
    assert_string_equal(fault_message(d1),
                        "No valid host was found. 2 nodes; alive: removed 1 (heartbeat older than "
                        "lease); memory: removed 1 (needs 8192 MiB reserved, most free 4096 MiB).");
}

static int64_t clock_plus_minute(void *userdata)
{
    (void)userdata;
    return st_time_now_ms() + 60000;
}

static void test_now_hook(void **state)
{
    struct fixture *f = *state;
    /* a fresh heartbeat is a minute old by the hook's clock: lease expired */
    put_node(f->kv, "node-a", 8, 65536, 0);
    char ids[1][ST_UUID_LEN];
    put_server(f->kv, ids[0], 1024, NULL);
    struct st_ctrl_placement_config cfg = {.now_ms = clock_plus_minute};
    f->ctrl[0] = start(f->kv, &cfg);
    wait_settled(f->kv, ids, 1);
    st_autoptr(json_t) doc = get_server(f->kv, ids[0]);
    assert_string_equal(fault_message(doc), "No valid host was found. 1 node; alive: removed 1 "
                                            "(heartbeat older than lease).");
}

/* Room for exactly N servers, 2N servers, two controllers: N placed, one
 * per node, the other N in ERROR for memory, and no node booked twice. */
static void test_two_controllers_never_double_book(void **state)
{
    struct fixture *f = *state;
    enum { N = 6 };
    char names[N][16];
    for (int i = 0; i < N; i++) {
        snprintf(names[i], sizeof(names[i]), "node-%d", i);
        put_node(f->kv, names[i], 2 + 2 * i, 4096, 0);
    }
    char ids[2 * N][ST_UUID_LEN];
    for (int i = 0; i < 2 * N; i++)
        put_server(f->kv, ids[i], 4096, NULL);
    /* Opposite weighers over nodes of different sizes: the two controllers
     * pick different nodes for the same server as well as the same node. */
    struct st_ctrl_placement_config spread = {.weigher = ST_SCHED_SPREAD};
    struct st_ctrl_placement_config pack = {.weigher = ST_SCHED_PACK};
    f->ctrl[0] = start(f->kv, &spread);
    f->ctrl[1] = start(f->kv, &pack);
    wait_settled(f->kv, ids, 2 * N);

    int placed = 0, errors = 0;
    bool used[N] = {false};
    for (int i = 0; i < 2 * N; i++) {
        st_autoptr(json_t) doc = get_server(f->kv, ids[i]);
        const char *host = spec_host(doc);
        if (host) {
            placed++;
            int idx = atoi(host + strlen("node-"));
            assert_false(used[idx]);
            used[idx] = true;
            st_autoptr(json_t) servers = alloc_servers(f->kv, host);
            assert_int_equal(json_object_size(servers), 1);
            assert_non_null(json_object_get(servers, ids[i]));
        } else {
            errors++;
            assert_string_equal(status_str(doc, "state"), "ERROR");
            assert_non_null(strstr(fault_message(doc), "memory: removed 6 (needs 4096 MiB "
                                                       "reserved, most free 0 MiB)"));
        }
    }
    assert_int_equal(placed, N);
    assert_int_equal(errors, N);
    /* after the dust settles no allocation lists a server placed elsewhere */
    sleep_ms(300);
    for (int i = 0; i < N; i++) {
        st_autoptr(json_t) servers = alloc_servers(f->kv, names[i]);
        assert_int_equal(json_object_size(servers), 1);
    }
    /* (counters are bumped just after the writes a test sees: read them late) */
    struct st_ctrl_placement_stats s0, s1;
    st_ctrl_placement_get_stats(f->ctrl[0], &s0);
    st_ctrl_placement_get_stats(f->ctrl[1], &s1);
    print_message("race: placed %" PRIu64 "+%" PRIu64 " failed %" PRIu64 "+%" PRIu64
                  " lost swaps %" PRIu64 "+%" PRIu64 " deferred %" PRIu64 "+%" PRIu64 "\n",
                  s0.placed, s1.placed, s0.failed, s1.failed, s0.conflicts, s1.conflicts,
                  s0.deferred, s1.deferred);
    assert_int_equal(s0.placed + s1.placed, N); /* each host written once */
    assert_int_equal(s0.failed + s1.failed, N);
}

static void put_group(struct st_kv *kv, char id[ST_UUID_LEN], const char *policy)
{
    st_uuid_new(id);
    st_autoptr(json_t) doc = json_pack("{s:s, s:s, s:s, s:[s], s:[]}", "id", id, "name", "g",
                                       "project_id", "p1", "policies", policy, "members");
    st_autofree char *key = st_sprintf("%s%s", ST_COMPUTE_SERVER_GROUPS_PREFIX, id);
    put_json(kv, key, doc);
}

static void test_server_groups(void **state)
{
    struct fixture *f = *state;
    for (int i = 0; i < 3; i++) {
        char name[16];
        snprintf(name, sizeof(name), "node-%d", i);
        put_node(f->kv, name, 16, 65536, 0);
    }
    char anti[ST_UUID_LEN], aff[ST_UUID_LEN];
    put_group(f->kv, anti, "anti-affinity");
    put_group(f->kv, aff, "affinity");
    f->ctrl[0] = start(f->kv, NULL);

    /* anti-affinity: one per node, and a fourth finds no node */
    char ids[4][ST_UUID_LEN];
    for (int i = 0; i < 4; i++) {
        put_server(f->kv, ids[i], 1024, anti);
        wait_settled(f->kv, &ids[i], 1); /* one at a time: members known */
    }
    bool seen[3] = {false};
    for (int i = 0; i < 3; i++) {
        st_autoptr(json_t) doc = get_server(f->kv, ids[i]);
        assert_non_null(spec_host(doc));
        int idx = atoi(spec_host(doc) + strlen("node-"));
        assert_false(seen[idx]);
        seen[idx] = true;
    }
    st_autoptr(json_t) fourth = get_server(f->kv, ids[3]);
    assert_string_equal(status_str(fourth, "state"), "ERROR");
    st_autofree char *expect = st_sprintf(
        "No valid host was found. 3 nodes; group: removed 3 (anti-affinity: already hosts a "
        "member of server group %s).",
        anti);
    assert_string_equal(fault_message(fourth), expect);

    /* affinity: all members on the first one's node, even when spread would
     * choose another */
    char same[3][ST_UUID_LEN];
    for (int i = 0; i < 3; i++) {
        put_server(f->kv, same[i], 8192, aff);
        wait_settled(f->kv, &same[i], 1);
    }
    st_autoptr(json_t) first = get_server(f->kv, same[0]);
    for (int i = 1; i < 3; i++) {
        st_autoptr(json_t) doc = get_server(f->kv, same[i]);
        assert_string_equal(spec_host(doc), spec_host(first));
    }
}

static void put_alloc(struct st_kv *kv, const char *node, json_t *servers)
{
    st_autoptr(json_t) doc = json_pack("{s:O}", "servers", servers);
    st_autofree char *key = st_sprintf("%s%s", ST_COMPUTE_ALLOCATIONS_PREFIX, node);
    put_json(kv, key, doc);
}

/* What a controller killed between its two writes leaves, and worse. */
static void test_crash_recovery(void **state)
{
    struct fixture *f = *state;
    put_node(f->kv, "node-a", 8, 16384, 0);
    put_node(f->kv, "node-b", 8, 16384, 0);
    /* 1: allocated on node-b (not spread's choice), host never written */
    char orphan[ST_UUID_LEN];
    put_server(f->kv, orphan, 4096, NULL);
    /* 2: an allocation whose server was deleted since */
    char gone[ST_UUID_LEN];
    st_uuid_new(gone);
    /* 3: allocated on node-a but placed on node-b by another controller */
    char elsewhere[ST_UUID_LEN];
    put_server(f->kv, elsewhere, 2048, NULL);
    {
        st_autoptr(json_t) doc = get_server(f->kv, elsewhere);
        json_object_set_new(json_object_get(doc, "spec"), "host", json_string("node-b"));
        st_autofree char *key = st_sprintf("%s%s", ST_COMPUTE_SERVERS_PREFIX, elsewhere);
        put_json(f->kv, key, doc);
    }
    /* (node-b's allocation lacks "elsewhere": it is restored) */
    st_autoptr(json_t) res =
        json_pack("{s:i, s:i, s:i, s:i, s:i}", "vcpus", 1, "memory_mb", 4096, "disk_gb", 10,
                  "cpu_reservation_mhz", 0, "memory_reservation_mb", 4096);
    st_autoptr(json_t) on_a = json_pack("{s:O, s:O}", gone, res, elsewhere, res);
    st_autoptr(json_t) on_b = json_pack("{s:O}", orphan, res);
    put_alloc(f->kv, "node-a", on_a);
    put_alloc(f->kv, "node-b", on_b);

    f->ctrl[0] = start(f->kv, NULL);
    char ids[1][ST_UUID_LEN];
    memcpy(ids[0], orphan, ST_UUID_LEN);
    wait_settled(f->kv, ids, 1);
    st_autoptr(json_t) doc = get_server(f->kv, orphan);
    assert_string_equal(spec_host(doc), "node-b"); /* adopted, not placed again */
    assert_string_equal(status_str(doc, "task_state"), "spawning");

    int64_t deadline = st_time_mono_ns() / 1000000 + DEADLINE_MS;
    for (;;) {
        st_autoptr(json_t) a = alloc_servers(f->kv, "node-a");
        st_autoptr(json_t) b = alloc_servers(f->kv, "node-b");
        if (json_object_size(a) == 0 && json_object_size(b) == 2 && json_object_get(b, orphan) &&
            json_object_get(b, elsewhere))
            break;
        if (st_time_mono_ns() / 1000000 > deadline) {
            st_autofree char *sa = st_json_dumps(a);
            st_autofree char *sb = st_json_dumps(b);
            fail_msg("allocations not reconciled: node-a %s node-b %s", sa, sb);
        }
        sleep_ms(10);
    }
    struct st_ctrl_placement_stats st;
    st_ctrl_placement_get_stats(f->ctrl[0], &st);
    assert_int_equal(st.adopted, 1);
    assert_int_equal(st.released, 2);
}

/* A server document removed for good releases its entry; a server created
 * afterwards gets the room back. */
static void test_delete_releases(void **state)
{
    struct fixture *f = *state;
    put_node(f->kv, "node-a", 8, 4096, 0);
    char ids[2][ST_UUID_LEN];
    put_server(f->kv, ids[0], 4096, NULL);
    f->ctrl[0] = start(f->kv, NULL);
    wait_settled(f->kv, ids, 1);
    st_autoptr(json_t) doc = get_server(f->kv, ids[0]);
    assert_string_equal(spec_host(doc), "node-a");
    st_autofree char *key = st_sprintf("%s%s", ST_COMPUTE_SERVERS_PREFIX, ids[0]);
    assert_int_equal(st_kv_delete(f->kv, key, ST_KV_ANY, NULL, NULL), 0);
    int64_t deadline = st_time_mono_ns() / 1000000 + DEADLINE_MS;
    for (;;) {
        st_autoptr(json_t) a = alloc_servers(f->kv, "node-a");
        if (json_object_size(a) == 0)
            break;
        if (st_time_mono_ns() / 1000000 > deadline)
            fail_msg("allocation of a deleted server not released");
        sleep_ms(10);
    }
    put_server(f->kv, ids[1], 4096, NULL);
    wait_settled(f->kv, &ids[1], 1);
    st_autoptr(json_t) d1 = get_server(f->kv, ids[1]);
    assert_string_equal(spec_host(d1), "node-a");
}

/* History compacted under the controller's watch: it lists again and goes on. */
static void test_survives_compaction(void **state)
{
    struct fixture *f = *state;
    put_node(f->kv, "node-a", 8, 65536, 0);
    struct st_ctrl_placement_config cfg = {.relist_interval_ms = 400};
    f->ctrl[0] = start(f->kv, &cfg);
    char ids[3][ST_UUID_LEN];
    put_server(f->kv, ids[0], 1024, NULL);
    wait_settled(f->kv, ids, 1);
    for (int i = 0; i < 50; i++)
        put_node(f->kv, "node-b", 8, 65536, 0);
    assert_int_equal(st_kv_compact(f->kv, st_kv_revision(f->kv), NULL), 0);
    put_server(f->kv, ids[1], 1024, NULL);
    put_server(f->kv, ids[2], 1024, NULL);
    wait_settled(f->kv, ids, 3);
    for (int i = 0; i < 3; i++) {
        st_autoptr(json_t) doc = get_server(f->kv, ids[i]);
        assert_non_null(spec_host(doc));
    }
}

static void test_bad_config(void **state)
{
    struct fixture *f = *state;
    struct st_ctrl_placement *p = NULL;
    st_autoptr(st_err) err = NULL;
    struct st_ctrl_placement_config cfg = {.weigher = (enum st_sched_weigher)9};
    assert_int_equal(st_ctrl_placement_start(f->kv, &cfg, &p, &err), -EINVAL);
    assert_null(p);
    st_err_clear(&err);
    assert_int_equal(st_ctrl_placement_start(NULL, NULL, &p, &err), -EINVAL);
    st_ctrl_placement_stop(NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_places_build_servers, setup, teardown),
        cmocka_unit_test_setup_teardown(test_pack_weigher, setup, teardown),
        cmocka_unit_test_setup_teardown(test_no_valid_host_fault, setup, teardown),
        cmocka_unit_test_setup_teardown(test_dead_node_skipped, setup, teardown),
        cmocka_unit_test_setup_teardown(test_now_hook, setup, teardown),
        cmocka_unit_test_setup_teardown(test_two_controllers_never_double_book, setup, teardown),
        cmocka_unit_test_setup_teardown(test_server_groups, setup, teardown),
        cmocka_unit_test_setup_teardown(test_crash_recovery, setup, teardown),
        cmocka_unit_test_setup_teardown(test_delete_releases, setup, teardown),
        cmocka_unit_test_setup_teardown(test_survives_compaction, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_config, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
