/* bench_sched: how fast servers get a node, in two parts.
 *
 * 1. The scheduler alone (st_sched_place, a pure function): in-memory
 *    snapshots of 100, 1,000 and 10,000 simulated nodes (driver "sim", the
 *    test double of DESIGN.md: nothing runs on them), 5% of them down, each
 *    placement applied to the snapshot so nodes fill up as they would.
 *    Placements/s for spread and pack, with every node ranked ("full") and
 *    with the Kubernetes-style sampled scan the controller uses ("sampled":
 *    stop once st_sched_enough(n) nodes fit, rotating the start for spread).
 *
 * 2. End to end through the placement controller on a real SQLite store
 *    (durable writes, as in production): N simulated nodes written
 *    directly to the store as the internal API would, S BUILD servers
 *    written as the Nova API would, then the controller started and timed
 *    until every server has spec.host. Each placement costs two durable
 *    compare-and-swap writes (allocation, then server), so the store's raw
 *    put rate, measured in the same run on the same filesystem, over two is
 *    the ceiling this figure is compared with.
 *
 *   bench_sched [-t seconds per case] [-N nodes] [-s servers] [-d dir]
 * Defaults: 0.5 s per case (median of 3 runs), 1,000 nodes, 1,000 servers,
 * the current directory. */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "compute/model.h"
#include "ctrl/placement.h"
#include "lib/cleanup.h"
#include "lib/err.h"
#include "lib/json.h"
#include "lib/log.h"
#include "lib/times.h"
#include "lib/uuid.h"
#include "sched/sched.h"
#include "store/kv.h"

static const char *const sim_drivers[] = {"sim"};

static double now_s(void)
{
    return st_time_mono_ns() / 1e9;
}

static void die(const char *what, struct st_err *err)
{
    fprintf(stderr, "bench_sched: %s: %s\n", what, err ? st_err_msg(err) : "failed");
    exit(1);
}

/* ---- part 1: the pure scheduler ---- */

struct cluster {
    size_t n;
    struct st_sched_node *nodes;
    char (*names)[32];
};

static void cluster_reset(struct cluster *c)
{
    for (size_t i = 0; i < c->n; i++) {
        c->nodes[i] = (struct st_sched_node){
            .name = c->names[i],
            .alive = i % 20 != 7, /* 5% down */
            .drivers = sim_drivers,
            .n_drivers = 1,
            .availability_zone = "nova",
            .vcpus = 64,
            .cpu_mhz = 2500,
            .memory_mb = 262144,
            .disk_gb = 4000,
            .cpu_ratio = 4.0,
            .memory_ratio = 1.0,
            .disk_ratio = 1.0,
        };
    }
}

static struct cluster cluster_new(size_t n)
{
    struct cluster c = {.n = n};
    c.nodes = st_new0(struct st_sched_node, n);
    c.names = st_xcalloc(n, sizeof(*c.names));
    for (size_t i = 0; i < n; i++)
        snprintf(c.names[i], sizeof(c.names[i]), "sim-%05zu", i);
    cluster_reset(&c);
    return c;
}

static void cluster_free(struct cluster *c)
{
    free(c->nodes);
    free(c->names);
}

/* Placements/s over `seconds`: a rotating mix of flavours (1-8 vCPUs,
 * 1-16 GiB reserved), each placement applied to its node. */
static double run_sched(struct cluster *c, enum st_sched_weigher w, bool sampled, double seconds,
                        size_t *ret_resets)
{
    static const uint32_t vcpus[] = {1, 2, 4, 8};
    cluster_reset(c);
    struct st_sched_options opts = {.weigher = w, .enough = sampled ? st_sched_enough(c->n) : 0};
    size_t placed = 0, resets = 0;
    double t0 = now_s(), t = t0;
    while (t - t0 < seconds) {
        for (int batch = 0; batch < 64; batch++) {
            uint32_t v = vcpus[placed % 4];
            struct st_sched_request req = {
                .res = {.vcpus = v,
                        .memory_mb = 2048 * v,
                        .memory_reservation_mb = 2048 * v,
                        .disk_gb = 20},
                .driver = "sim",
            };
            struct st_sched_explain ex;
            size_t best = 0, k = 0;
            if (st_sched_place(c->nodes, c->n, &req, &opts, &best, 1, &k, &ex, NULL) < 0)
                die("st_sched_place", NULL);
            if (sampled && w == ST_SCHED_SPREAD)
                opts.start += ex.n_nodes;
            if (!k) { /* full: start again from an empty cluster */
                cluster_reset(c);
                resets++;
                continue;
            }
            struct st_sched_node *nd = &c->nodes[best];
            nd->used.vcpus += req.res.vcpus;
            nd->used.memory_mb += req.res.memory_mb;
            nd->used.memory_reservation_mb += req.res.memory_reservation_mb;
            nd->used.disk_gb += req.res.disk_gb;
            placed++;
        }
        t = now_s();
    }
    *ret_resets += resets;
    return placed / (t - t0);
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static void part_sched(double seconds)
{
    static const size_t sizes[] = {100, 1000, 10000};
    printf("== st_sched_place over in-memory snapshots of simulated nodes (median of 3)\n");
    printf("%8s %-7s %-12s %14s %13s\n", "nodes", "weigher", "scan", "placements/s",
           "us/placement");
    for (size_t s = 0; s < ST_ARRAY_SIZE(sizes); s++) {
        struct cluster c = cluster_new(sizes[s]);
        for (int w = ST_SCHED_SPREAD; w <= ST_SCHED_PACK; w++) {
            for (int sampled = 0; sampled <= 1; sampled++) {
                double runs[3];
                size_t resets = 0;
                for (int r = 0; r < 3; r++)
                    runs[r] = run_sched(&c, w, sampled, seconds, &resets);
                qsort(runs, 3, sizeof(runs[0]), cmp_double);
                char scan[24];
                if (sampled && st_sched_enough(c.n) < c.n)
                    snprintf(scan, sizeof(scan), "sampled %zu", st_sched_enough(c.n));
                else
                    snprintf(scan, sizeof(scan), sampled ? "sampled all" : "full");
                printf("%8zu %-7s %-12s %14.0f %13.2f%s\n", c.n,
                       st_sched_weigher_name((enum st_sched_weigher)w), scan, runs[1],
                       1e6 / runs[1], resets ? "  (cluster filled and reset)" : "");
            }
        }
        cluster_free(&c);
    }
}

/* ---- part 2: through the controller and the store ---- */

static void put_json(struct st_kv *kv, const char *key, json_t *doc)
{
    st_autofree char *text = st_json_dumps(doc);
    st_autoptr(st_err) err = NULL;
    if (st_kv_put(kv, key, text, strlen(text), ST_KV_ANY, NULL, &err) < 0)
        die("put", err);
}

/* Durable single-threaded puts of server-sized documents: the ceiling. */
static double raw_put_rate(struct st_kv *kv, int n)
{
    st_autofree char *value = NULL;
    {
        st_autoptr(json_t) doc = json_pack("{s:s, s:s}", "name", "bench", "pad", "");
        char pad[1200];
        memset(pad, 'x', sizeof(pad) - 1);
        pad[sizeof(pad) - 1] = '\0';
        json_object_set_new(doc, "pad", json_string(pad));
        value = st_json_dumps(doc);
    }
    static int base; /* fresh keys on every call */
    double t0 = now_s();
    for (int i = 0; i < n; i++) {
        char key[64];
        snprintf(key, sizeof(key), "/bench/put/%06d", base++);
        st_autoptr(st_err) err = NULL;
        if (st_kv_put(kv, key, value, strlen(value), ST_KV_ANY, NULL, &err) < 0)
            die("raw put", err);
    }
    return n / (now_s() - t0);
}

static void write_nodes(struct st_kv *kv, int n)
{
    char hb[ST_TIME_RFC3339_LEN];
    st_time_rfc3339(st_time_now_ms() / 1000, hb, sizeof(hb));
    for (int i = 0; i < n; i++) {
        char name[32];
        snprintf(name, sizeof(name), "sim-%05d", i);
        st_autoptr(json_t) doc = json_pack(
            "{s:s, s:s, s:[s], s:{s:i, s:i, s:i, s:i}, s:{s:f, s:f, s:f}, s:s, s:{}, s:s, s:i, "
            "s:b, s:{}}",
            "name", name, "created_at", hb, "drivers", "sim", "capacity", "vcpus", 64, "cpu_mhz",
            2500, "memory_mb", 262144, "disk_gb", 4000, "allocation_ratio", "cpu", 4.0, "memory",
            1.0, "disk", 1.0, "availability_zone", "nova", "labels", "heartbeat_at", hb,
            "lease_seconds", 3600, "simulated", 1, "usage");
        st_autofree char *key = st_sprintf("%s%s", ST_COMPUTE_NODES_PREFIX, name);
        put_json(kv, key, doc);
    }
}

/* A BUILD server shaped as the Nova API writes it (model.h). */
static void write_server(struct st_kv *kv, int i)
{
    char id[ST_UUID_LEN], now[ST_TIME_RFC3339_LEN];
    st_uuid_new(id);
    st_time_rfc3339(st_time_now_ms() / 1000, now, sizeof(now));
    int v = 1 << (i % 4);
    st_autoptr(json_t) doc = json_pack(
        "{s:s, s:s, s:s, s:s, s:s, s:s, "
        "s:{s:{s:s, s:s, s:i, s:i, s:i, s:{}}, s:{s:s, s:s, s:s}, s:s, s:n, s:n, s:n, s:{}, s:n, "
        "s:n, s:{s:i, s:i, s:i, s:i, s:i, s:i, s:i, s:i, s:i, s:i}, s:n, s:s, s:i, s:b, s:n}, "
        "s:{s:s, s:s, s:i, s:n, s:n, s:i, s:n}}",
        "id", id, "name", "bench", "project_id", "0123456789abcdef0123456789abcdef", "user_id",
        "0123456789abcdef0123456789abcdef", "created_at", now, "updated_at", now, "spec", "flavor",
        "id", "m1", "name", "m1", "vcpus", v, "ram", 2048 * v, "disk", 20, "extra_specs", "image",
        "id", "busybox", "name", "busybox", "container_format", "docker", "driver", "sim",
        "key_name", "public_key", "user_data", "metadata", "availability_zone", "server_group",
        "resources", "vcpus", v, "memory_mb", 2048 * v, "disk_gb", 20, "cpu_reservation_mhz", 0,
        "cpu_limit_mhz", 0, "cpu_shares", 1024 * v, "memory_reservation_mb", 2048 * v,
        "memory_limit_mb", 2048 * v, "pids_limit", 4096, "io_weight", 100, "resource_policy",
        "power", "on", "reboot", 0, "deleted", 0, "host", "status", "state", "BUILD", "task_state",
        "scheduling", "power_state", 0, "fault", "launched_at", "observed_reboot", 0, "instance");
    if (!doc)
        die("building a server document", NULL);
    st_autofree char *key = st_sprintf("%s%s", ST_COMPUTE_SERVERS_PREFIX, id);
    put_json(kv, key, doc);
}

static long rss_kib(void)
{
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    long kib = -1;
    while (f && fgets(line, sizeof(line), f))
        if (sscanf(line, "VmRSS: %ld kB", &kib) == 1)
            break;
    if (f)
        fclose(f);
    return kib;
}

static void part_controller(const char *dir, int nodes, int servers)
{
    st_autofree char *path = st_sprintf("%s/bench-sched-%d.db", dir, (int)getpid());
    struct st_kv *kv = NULL;
    st_autoptr(st_err) err = NULL;
    if (st_kv_open(path, NULL, &kv, &err) < 0)
        die(path, err);

    printf("\n== placement controller, SQLite store (durable), %d simulated nodes, %d servers\n",
           nodes, servers);
    double t0 = now_s();
    write_nodes(kv, nodes);
    double t_nodes = now_s() - t0;
    double put_rate = raw_put_rate(kv, 500);
    t0 = now_s();
    for (int i = 0; i < servers; i++)
        write_server(kv, i);
    double t_servers = now_s() - t0;
    printf("store: %d node documents in %.2f s, %d server documents in %.2f s (%.0f puts/s)\n",
           nodes, t_nodes, servers, t_servers, servers / t_servers);

    struct st_ctrl_placement *p = NULL;
    t0 = now_s();
    if (st_ctrl_placement_start(kv, NULL, &p, &err) < 0)
        die("starting the controller", err);
    struct st_ctrl_placement_stats st = {0};
    double deadline = t0 + 600;
    while (st.placed + st.failed < (uint64_t)servers && now_s() < deadline) {
        struct timespec ts = {0, 2000000};
        nanosleep(&ts, NULL);
        st_ctrl_placement_get_stats(p, &st);
    }
    double elapsed = now_s() - t0;
    long rss = rss_kib();
    st_ctrl_placement_stop(p);
    /* fsync cost drifts with whatever else the disk does: measure the raw
     * rate before and after, and compare with their mean */
    double put_after = raw_put_rate(kv, 500);
    printf("store raw put rate (1.2 KB values, 1 thread): %.0f puts/s before, %.0f after -> "
           "ceiling at 2 puts per placement: %.0f placements/s\n",
           put_rate, put_after, (put_rate + put_after) / 4);
    put_rate = (put_rate + put_after) / 2;
    double rate = st.placed / elapsed;
    printf("controller: %" PRIu64 " placed, %" PRIu64 " failed in %.2f s (from start, first "
           "full list included) = %.0f placements/s = %.0f%% of the store ceiling\n",
           st.placed, st.failed, elapsed, rate, 100 * rate / (put_rate / 2));
    printf("            %" PRIu64 " lost swaps, %" PRIu64 " full lists; process RSS %ld KiB\n",
           st.conflicts, st.relists, rss);
    st_kv_close(kv);
    static const char *const suffixes[] = {"", "-wal", "-shm"};
    for (size_t i = 0; i < ST_ARRAY_SIZE(suffixes); i++) {
        st_autofree char *f = st_sprintf("%s%s", path, suffixes[i]);
        unlink(f);
    }
}

int main(int argc, char **argv)
{
    double seconds = 0.5;
    int nodes = 1000, servers = 1000;
    const char *dir = ".";
    int opt;
    while ((opt = getopt(argc, argv, "t:N:s:d:h")) != -1) {
        switch (opt) {
        case 't':
            seconds = atof(optarg);
            break;
        case 'N':
            nodes = atoi(optarg);
            break;
        case 's':
            servers = atoi(optarg);
            break;
        case 'd':
            dir = optarg;
            break;
        default:
            fprintf(stderr, "usage: %s [-t seconds per case] [-N nodes] [-s servers] [-d dir]\n",
                    argv[0]);
            return opt == 'h' ? 0 : 2;
        }
    }
    if (seconds <= 0 || nodes < 1 || servers < 1) {
        fprintf(stderr, "bench_sched: need -t > 0, -N >= 1, -s >= 1\n");
        return 2;
    }
    st_log_set_level(ST_LOG_WARN);
    part_sched(seconds);
    part_controller(dir, nodes, servers);
    return 0;
}
