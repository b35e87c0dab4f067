/* The scheduler's filters, weighers and explanation (see sched.h for the
 * admission rules). One pass over the snapshot: each node either falls to
 * the first filter that rejects it, which counts it and remembers the most
 * free amount it saw (for the fault message), or gets a usage score and
 * competes for a place in a bounded heap of the best max_order nodes kept
 * in the caller's output array. Nothing is allocated, so a placement over
 * 10,000 nodes costs a few tens of microseconds. */
#include "sched/sched.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

static const char *const filter_names[ST_SCHED_N_FILTERS] = {
    [ST_SCHED_FILTER_ALIVE] = "alive",   [ST_SCHED_FILTER_DRIVER] = "driver",
    [ST_SCHED_FILTER_ZONE] = "zone",     [ST_SCHED_FILTER_GROUP] = "group",
    [ST_SCHED_FILTER_VCPUS] = "vcpus",   [ST_SCHED_FILTER_CPU] = "cpu",
    [ST_SCHED_FILTER_MEMORY] = "memory", [ST_SCHED_FILTER_DISK] = "disk",
};

/* Capacity comparisons are in doubles (ratios are fractional); this keeps
 * 16 × 1.1 from rejecting a request that needs exactly 17.6. */
#define FIT_EPSILON 1e-6

/* An unset ratio (0) means 1.0, so a zeroed snapshot admits at face value. */
static inline double ratio_or_one(double r)
{
    return r > 0 ? r : 1.0;
}

/* Reservations never admit beyond the hardware (see sched.h). */
static inline double reservable(double r)
{
    r = ratio_or_one(r);
    return r < 1.0 ? r : 1.0;
}

/* A usage is kept as a fraction num / den (den > 0) and compared by cross
 * multiplication: the hot loop then has no division, whose latency was half
 * the cost of a placement. */
struct usage {
    double num, den;
};

static inline struct usage ufrac(double used, double cap)
{
    return cap > 0 ? (struct usage){used, cap} : (struct usage){1, 1};
}

static inline bool usage_less(struct usage a, struct usage b)
{
    return a.num * b.den < b.num * a.den;
}

static inline bool usage_equal(struct usage a, struct usage b)
{
    return a.num * b.den == b.num * a.den;
}

struct place_ctx {
    const struct st_sched_node *nodes;
    const struct st_sched_request *req;
    enum st_sched_weigher weigher;
};

/* The node's usage after the placement, 0 (empty) .. 2 (full): the sum of
 * its cpu fraction (the larger of vCPUs and MHz reserved) and its memory
 * fraction. */
static inline struct usage node_usage(const struct st_sched_node *nd,
                                      const struct st_sched_request *req)
{
    struct usage cpu =
        ufrac((double)nd->used.vcpus + req->res.vcpus, nd->vcpus * ratio_or_one(nd->cpu_ratio));
    double mhz_cap = (double)nd->vcpus * nd->cpu_mhz * reservable(nd->cpu_ratio);
    if (mhz_cap > 0) {
        struct usage mhz = {(double)nd->used.cpu_reservation_mhz + req->res.cpu_reservation_mhz,
                            mhz_cap};
        if (usage_less(cpu, mhz))
            cpu = mhz;
    }
    struct usage mem =
        ufrac((double)nd->used.memory_reservation_mb + req->res.memory_reservation_mb,
              (double)nd->memory_mb * reservable(nd->memory_ratio));
    return (struct usage){cpu.num * mem.den + mem.num * cpu.den, cpu.den * mem.den};
}

/* Strict total order: score, then name, then index. */
static bool ranks_before(const struct place_ctx *c, size_t a, struct usage ua, size_t b,
                         struct usage ub)
{
    if (!usage_equal(ua, ub))
        return c->weigher == ST_SCHED_PACK ? usage_less(ub, ua) : usage_less(ua, ub);
    const char *na = c->nodes[a].name ? c->nodes[a].name : "";
    const char *nb = c->nodes[b].name ? c->nodes[b].name : "";
    int r = strcmp(na, nb);
    if (r != 0)
        return r < 0;
    return a < b;
}

/* heap[0] is the worst of the kept nodes, so a newcomer is compared with
 * one node; scores are recomputed rather than stored, to need no scratch. */
static bool worse(const struct place_ctx *c, size_t a, size_t b)
{
    return ranks_before(c, b, node_usage(&c->nodes[b], c->req), a,
                        node_usage(&c->nodes[a], c->req));
}

static void sift_down(const struct place_ctx *c, size_t *heap, size_t k, size_t pos)
{
    for (;;) {
        size_t l = 2 * pos + 1, r = l + 1, top = pos;
        if (l < k && worse(c, heap[l], heap[top]))
            top = l;
        if (r < k && worse(c, heap[r], heap[top]))
            top = r;
        if (top == pos)
            return;
        size_t t = heap[pos];
        heap[pos] = heap[top];
        heap[top] = t;
        pos = top;
    }
}

static void sift_up(const struct place_ctx *c, size_t *heap, size_t pos)
{
    while (pos > 0) {
        size_t parent = (pos - 1) / 2;
        if (!worse(c, heap[pos], heap[parent]))
            return;
        size_t t = heap[pos];
        heap[pos] = heap[parent];
        heap[parent] = t;
        pos = parent;
    }
}

static bool offers_driver(const struct st_sched_node *nd, const char *driver)
{
    for (size_t i = 0; i < nd->n_drivers; i++) {
        const char *d = nd->drivers[i];
        if (d == driver || (d && strcmp(d, driver) == 0))
            return true;
    }
    return false;
}

static bool hosts_group(const struct st_sched_node *nd, const char *group)
{
    for (size_t i = 0; i < nd->n_groups; i++) {
        const char *g = nd->groups[i];
        if (g == group || (g && strcmp(g, group) == 0))
            return true;
    }
    return false;
}

/* Per filter: how many nodes it removed and the most free amount among
 * them (-1: none seen), for the reason text. */
struct tally {
    size_t removed[ST_SCHED_N_FILTERS];
    double most_free[ST_SCHED_N_FILTERS];
};

static inline void reject(struct tally *t, enum st_sched_filter f, double free_amount)
{
    t->removed[f]++;
    if (free_amount > t->most_free[f])
        t->most_free[f] = free_amount;
}

/* Returns the filter that rejects the node, or ST_SCHED_N_FILTERS when it
 * fits. */
static enum st_sched_filter filter_node(const struct st_sched_node *nd,
                                        const struct st_sched_request *req, struct tally *t)
{
    if (!nd->alive) {
        reject(t, ST_SCHED_FILTER_ALIVE, 0);
        return ST_SCHED_FILTER_ALIVE;
    }
    if (req->driver && !offers_driver(nd, req->driver)) {
        reject(t, ST_SCHED_FILTER_DRIVER, 0);
        return ST_SCHED_FILTER_DRIVER;
    }
    if (req->availability_zone &&
        !(nd->availability_zone && strcmp(nd->availability_zone, req->availability_zone) == 0)) {
        reject(t, ST_SCHED_FILTER_ZONE, 0);
        return ST_SCHED_FILTER_ZONE;
    }
    if (req->group && req->group_policy != ST_SCHED_GROUP_NONE) {
        bool has = hosts_group(nd, req->group);
        if ((req->group_policy == ST_SCHED_GROUP_AFFINITY && req->group_has_members && !has) ||
            (req->group_policy == ST_SCHED_GROUP_ANTI_AFFINITY && has)) {
            reject(t, ST_SCHED_FILTER_GROUP, 0);
            return ST_SCHED_FILTER_GROUP;
        }
    }
    if (req->res.vcpus) {
        double cap = nd->vcpus * ratio_or_one(nd->cpu_ratio);
        if ((double)nd->used.vcpus + req->res.vcpus > cap + FIT_EPSILON) {
            reject(t, ST_SCHED_FILTER_VCPUS, cap - nd->used.vcpus);
            return ST_SCHED_FILTER_VCPUS;
        }
    }
    if (req->res.cpu_reservation_mhz) {
        double cap = (double)nd->vcpus * nd->cpu_mhz * reservable(nd->cpu_ratio);
        double used = (double)nd->used.cpu_reservation_mhz;
        if (used + req->res.cpu_reservation_mhz > cap + FIT_EPSILON) {
            reject(t, ST_SCHED_FILTER_CPU, cap - used);
            return ST_SCHED_FILTER_CPU;
        }
    }
    if (req->res.memory_reservation_mb) {
        double cap = (double)nd->memory_mb * reservable(nd->memory_ratio);
        double used = (double)nd->used.memory_reservation_mb;
        if (used + req->res.memory_reservation_mb > cap + FIT_EPSILON) {
            reject(t, ST_SCHED_FILTER_MEMORY, cap - used);
            return ST_SCHED_FILTER_MEMORY;
        }
    }
    if (req->res.disk_gb) {
        double cap = (double)nd->disk_gb * ratio_or_one(nd->disk_ratio);
        double used = (double)nd->used.disk_gb;
        if (used + req->res.disk_gb > cap + FIT_EPSILON) {
            reject(t, ST_SCHED_FILTER_DISK, cap - used);
            return ST_SCHED_FILTER_DISK;
        }
    }
    return ST_SCHED_N_FILTERS;
}

static double floor_free(double v)
{
    return v > 0 ? (double)(uint64_t)v : 0;
}

static void fill_reason(const struct st_sched_request *req, const struct tally *t,
                        enum st_sched_filter f, char *buf, size_t len)
{
    double most = floor_free(t->most_free[f]);
    switch (f) {
    case ST_SCHED_FILTER_ALIVE:
        snprintf(buf, len, "heartbeat older than lease");
        break;
    case ST_SCHED_FILTER_DRIVER:
        snprintf(buf, len, "cannot run driver '%s'", req->driver);
        break;
    case ST_SCHED_FILTER_ZONE:
        snprintf(buf, len, "not in availability zone '%s'", req->availability_zone);
        break;
    case ST_SCHED_FILTER_GROUP:
        if (req->group_policy == ST_SCHED_GROUP_AFFINITY)
            snprintf(buf, len, "affinity: no member of server group %s there", req->group);
        else
            snprintf(buf, len, "anti-affinity: already hosts a member of server group %s",
                     req->group);
        break;
    case ST_SCHED_FILTER_VCPUS:
        snprintf(buf, len, "needs %" PRIu32 " vCPUs, most free %.0f", req->res.vcpus, most);
        break;
    case ST_SCHED_FILTER_CPU:
        snprintf(buf, len, "needs %" PRIu64 " MHz reserved, most free %.0f MHz",
                 req->res.cpu_reservation_mhz, most);
        break;
    case ST_SCHED_FILTER_MEMORY:
        snprintf(buf, len, "needs %" PRIu64 " MiB reserved, most free %.0f MiB",
                 req->res.memory_reservation_mb, most);
        break;
    case ST_SCHED_FILTER_DISK:
        snprintf(buf, len, "needs %" PRIu64 " GiB, most free %.0f GiB", req->res.disk_gb, most);
        break;
    case ST_SCHED_N_FILTERS:
        buf[0] = '\0';
        break;
    }
}

size_t st_sched_enough(size_t n)
{
    if (n <= 100)
        return n;
    size_t pct = n / 125 < 45 ? 50 - n / 125 : 5;
    size_t k = n * pct / 100;
    return k < 100 ? 100 : k;
}

int st_sched_place(const struct st_sched_node *nodes, size_t n, const struct st_sched_request *req,
                   const struct st_sched_options *opts, size_t *ret_order, size_t max_order,
                   size_t *ret_n, struct st_sched_explain *explain, struct st_err **err)
{
    static const struct st_sched_options defaults = {.weigher = ST_SCHED_SPREAD};
    if (!opts)
        opts = &defaults;
    if (!req || !ret_n || (n && !nodes) || (max_order && !ret_order))
        return st_err_set(err, -EINVAL, "scheduler: missing nodes, request or output");
    if (opts->weigher != ST_SCHED_SPREAD && opts->weigher != ST_SCHED_PACK)
        return st_err_set(err, -EINVAL, "scheduler: unknown weigher %d", (int)opts->weigher);
    if (req->group_policy != ST_SCHED_GROUP_NONE && !req->group)
        return st_err_set(err, -EINVAL, "scheduler: a group policy needs a group");

    struct place_ctx c = {.nodes = nodes, .req = req, .weigher = opts->weigher};
    struct tally t = {0};
    for (size_t f = 0; f < ST_SCHED_N_FILTERS; f++)
        t.most_free[f] = -1;
    size_t fit = 0, kept = 0, examined = 0;
    size_t enough = opts->enough ? opts->enough : n;
    struct usage root_usage = {0, 1}; /* of ret_order[0] once the heap is full */
    size_t i = n ? opts->start % n : 0;

    for (; examined < n && fit < enough; examined++, i = i + 1 == n ? 0 : i + 1) {
        const struct st_sched_node *nd = &nodes[i];
        if (filter_node(nd, req, &t) != ST_SCHED_N_FILTERS)
            continue;
        fit++;
        if (!max_order)
            continue;
        struct usage u = node_usage(nd, req);
        if (kept < max_order) {
            ret_order[kept] = i;
            sift_up(&c, ret_order, kept);
            kept++;
            if (kept == max_order)
                root_usage = node_usage(&nodes[ret_order[0]], req);
        } else if (ranks_before(&c, i, u, ret_order[0], root_usage)) {
            ret_order[0] = i;
            sift_down(&c, ret_order, kept, 0);
            root_usage = node_usage(&nodes[ret_order[0]], req);
        }
    }

    /* Heap sort: the worst goes last each round, leaving the best first. */
    for (size_t end = kept; end > 1; end--) {
        size_t tmp = ret_order[0];
        ret_order[0] = ret_order[end - 1];
        ret_order[end - 1] = tmp;
        sift_down(&c, ret_order, end - 1, 0);
    }
    *ret_n = kept;

    if (explain) {
        explain->n_nodes = examined;
        explain->n_fit = fit;
        explain->n_filters = ST_SCHED_N_FILTERS;
        for (size_t f = 0; f < ST_SCHED_N_FILTERS; f++) {
            explain->filters[f].filter = filter_names[f];
            explain->filters[f].removed = t.removed[f];
            explain->filters[f].reason[0] = '\0';
            if (t.removed[f])
                fill_reason(req, &t, (enum st_sched_filter)f, explain->filters[f].reason,
                            sizeof(explain->filters[f].reason));
        }
    }
    return 0;
}

void st_sched_explain_format(const struct st_sched_explain *e, char *buf, size_t len)
{
    if (!buf || !len)
        return;
    size_t off = 0;
#define APPEND(...)                                                                                \
    do {                                                                                           \
        if (off < len) {                                                                           \
            int w_ = snprintf(buf + off, len - off, __VA_ARGS__);                                  \
            off += w_ > 0 ? (size_t)w_ : 0;                                                        \
        }                                                                                          \
    } while (0)
    APPEND("No valid host was found.");
    if (!e) {
        return;
    } else if (e->n_nodes == 0) {
        APPEND(" There are no compute nodes.");
    } else {
        APPEND(" %zu node%s", e->n_nodes, e->n_nodes == 1 ? "" : "s");
        for (size_t f = 0; f < e->n_filters && f < ST_SCHED_MAX_FILTERS; f++) {
            if (!e->filters[f].removed)
                continue;
            APPEND("; %s: removed %zu", e->filters[f].filter, e->filters[f].removed);
            if (e->filters[f].reason[0])
                APPEND(" (%s)", e->filters[f].reason);
        }
        if (e->n_fit)
            APPEND("; %zu fit", e->n_fit);
        APPEND(".");
    }
#undef APPEND
}

int st_sched_weigher_parse(const char *s, enum st_sched_weigher *ret, struct st_err **err)
{
    if (s && strcmp(s, "spread") == 0)
        *ret = ST_SCHED_SPREAD;
    else if (s && strcmp(s, "pack") == 0)
        *ret = ST_SCHED_PACK;
    else
        return st_err_set(err, -EINVAL, "unknown weigher '%s' (expected spread or pack)",
                          s ? s : "");
    return 0;
}

const char *st_sched_weigher_name(enum st_sched_weigher w)
{
    return w == ST_SCHED_PACK ? "pack" : "spread";
}
