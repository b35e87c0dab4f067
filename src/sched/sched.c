/* The scheduler's filters, weighers and explanation (see sched.h for the
 * admission rules). One pass over the snapshot (two for a soft group
 * policy, whose weigher is normalised over the nodes that fit, so a first
 * pass finds them): each node either falls to the first filter that
 * rejects it, which counts it and remembers the most free amount it saw
 * (for the fault message), or gets a score and competes for a place in a
 * bounded heap of the best max_order nodes kept in the caller's output
 * array. Nothing is allocated, so a placement over 10,000 nodes costs a
 * few tens of microseconds. */
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
    /* a soft group policy: the members' counts over the nodes that fit */
    bool soft;
    uint32_t members_min, members_max;
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

/* How many members of the group the node hosts. */
static uint32_t members_on(const struct st_sched_node *nd, const char *group)
{
    for (size_t i = 0; i < nd->n_groups; i++) {
        const char *g = nd->groups[i];
        if (g == group || (g && strcmp(g, group) == 0))
            return nd->group_members ? nd->group_members[i] : 1;
    }
    return 0;
}

static inline bool soft_policy(enum st_sched_group_policy p)
{
    return p == ST_SCHED_GROUP_SOFT_AFFINITY || p == ST_SCHED_GROUP_SOFT_ANTI_AFFINITY;
}

/* The soft group weigher's weight, 0..1: the members on the node
 * normalised over the nodes that fit (Nova's normalize), counted up for
 * soft-affinity and down for soft-anti-affinity (Nova weighs -count). */
static inline double group_weight(const struct place_ctx *c, const struct st_sched_node *nd)
{
    if (c->members_max == c->members_min)
        return 0;
    double range = (double)c->members_max - c->members_min;
    uint32_t m = members_on(nd, c->req->group);
    double above_min = (double)m - c->members_min;
    return c->req->group_policy == ST_SCHED_GROUP_SOFT_AFFINITY ? above_min / range
                                                                : 1.0 - above_min / range;
}

/* The node's score in the weigher's direction (spread: lower is better,
 * pack: higher). Without a soft policy, the usage itself; with one, the
 * sum of the two weights of sched.h written as a usage: for spread
 * (1 - usage) + g ranks as usage - g, for pack usage + g. */
static inline struct usage score(const struct place_ctx *c, const struct st_sched_node *nd)
{
    struct usage u = node_usage(nd, c->req);
    if (!c->soft)
        return u;
    double load = u.num / u.den / 2; /* the mean of the cpu and memory fractions */
    double g = group_weight(c, nd);
    return (struct usage){c->weigher == ST_SCHED_PACK ? load + g : load - g, 1};
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
    return ranks_before(c, b, score(c, &c->nodes[b]), a, score(c, &c->nodes[a]));
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
    if (req->group_policy == ST_SCHED_GROUP_AFFINITY ||
        req->group_policy == ST_SCHED_GROUP_ANTI_AFFINITY) {
        bool has = members_on(nd, req->group) > 0;
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

/* The nodes a placement examines: from start, wrapping around, until
 * enough fit (the window); then, for a soft group policy, the nodes outside
 * the window that host a member of the group: those the request lists, or
 * else found by sweeping the rest. The caller counts fit. */
struct scan {
    size_t n, start, enough, i;
    size_t window; /* nodes visited in the window */
    bool window_done;
    size_t next; /* in req->member_nodes, or nodes swept past the window */
    size_t examined, fit;
};

static struct scan scan_begin(size_t n, size_t start, size_t enough)
{
    return (struct scan){.n = n, .start = start, .enough = enough, .i = start};
}

static inline size_t scan_advance(struct scan *sc)
{
    size_t i = sc->i;
    sc->i = i + 1 == sc->n ? 0 : i + 1;
    return i;
}

static bool scan_next(struct scan *sc, const struct st_sched_node *nodes,
                      const struct st_sched_request *req, size_t *ret)
{
    if (!sc->window_done) {
        if (sc->window < sc->n && sc->fit < sc->enough) {
            sc->window++;
            sc->examined++;
            *ret = scan_advance(sc);
            return true;
        }
        sc->window_done = true;
    }
    if (!soft_policy(req->group_policy) || sc->window == sc->n)
        return false;
    if (req->member_nodes) {
        while (sc->next < req->n_member_nodes) {
            size_t i = req->member_nodes[sc->next++];
            size_t offset = i >= sc->start ? i - sc->start : i + sc->n - sc->start;
            if (i >= sc->n || offset < sc->window || !members_on(&nodes[i], req->group))
                continue;
            sc->examined++;
            *ret = i;
            return true;
        }
        return false;
    }
    while (sc->window + sc->next < sc->n) {
        size_t i = scan_advance(sc);
        sc->next++;
        if (!members_on(&nodes[i], req->group))
            continue;
        sc->examined++;
        *ret = i;
        return true;
    }
    return false;
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

    struct place_ctx c = {.nodes = nodes,
                          .req = req,
                          .weigher = opts->weigher,
                          .soft = soft_policy(req->group_policy)};
    size_t enough = opts->enough ? opts->enough : n;
    size_t start = n ? opts->start % n : 0;
    /* A soft policy normalises over the nodes that fit, so a first pass
     * finds them (and their members' counts) before the ranking pass. */
    if (c.soft) {
        struct tally scratch = {0};
        struct scan sc = scan_begin(n, start, enough);
        size_t i;
        bool any = false;
        while (scan_next(&sc, nodes, req, &i)) {
            if (filter_node(&nodes[i], req, &scratch) != ST_SCHED_N_FILTERS)
                continue;
            sc.fit++;
            uint32_t m = members_on(&nodes[i], req->group);
            c.members_min = !any || m < c.members_min ? m : c.members_min;
            c.members_max = !any || m > c.members_max ? m : c.members_max;
            any = true;
        }
    }

    struct tally t = {0};
    for (size_t f = 0; f < ST_SCHED_N_FILTERS; f++)
        t.most_free[f] = -1;
    size_t kept = 0;
    struct usage root_usage = {0, 1}; /* of ret_order[0] once the heap is full */
    struct scan sc = scan_begin(n, start, enough);
    size_t i;
    while (scan_next(&sc, nodes, req, &i)) {
        const struct st_sched_node *nd = &nodes[i];
        if (filter_node(nd, req, &t) != ST_SCHED_N_FILTERS)
            continue;
        sc.fit++;
        if (!max_order)
            continue;
        struct usage u = score(&c, nd);
        if (kept < max_order) {
            ret_order[kept] = i;
            sift_up(&c, ret_order, kept);
            kept++;
            if (kept == max_order)
                root_usage = score(&c, &nodes[ret_order[0]]);
        } else if (ranks_before(&c, i, u, ret_order[0], root_usage)) {
            ret_order[0] = i;
            sift_down(&c, ret_order, kept, 0);
            root_usage = score(&c, &nodes[ret_order[0]]);
        }
    }
    size_t fit = sc.fit, examined = sc.examined;

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
