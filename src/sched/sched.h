/* The scheduler: a pure function from a snapshot of nodes (capacity,
 * what is already allocated, whether alive) and one request (resources,
 * driver, zone, group policy) to a ranked choice of nodes, or a reason per
 * filter when none fits. No store, no I/O, no allocation: the controller
 * (ctrl/placement.c) feeds it a snapshot, passes the output arrays and
 * writes the placement with compare-and-swap.
 *
 * Admission, per node and per resource, of what is already allocated there
 * (node.used) plus the request:
 *   vcpus   Σ vcpus                 ≤ vcpus × cpu_ratio
 *   cpu     Σ cpu_reservation_mhz   ≤ vcpus × cpu_mhz × min(cpu_ratio, 1)
 *   memory  Σ memory_reservation_mb ≤ memory_mb × min(memory_ratio, 1)
 *   disk    Σ disk_gb               ≤ disk_gb × disk_ratio
 * Reservations are guarantees the kernel must be able to honour for every
 * server at once, so they admit against physical capacity: an allocation
 * ratio below 1 holds some of it back, a ratio above 1 overcommits only
 * what is not guaranteed (vCPUs, disk), as vSphere does with reservations
 * and Nova with its ratios. A request of 0 for a resource always passes
 * that resource's filter.
 *
 * Filters run in a fixed order, and each node is counted against the first
 * filter that removes it: alive, driver, zone, group, vcpus, cpu, memory,
 * disk. Weighers score the nodes that pass, from each node's usage after
 * the placement as a fraction of what it can admit (the mean of the cpu
 * fraction, the larger of vcpus and MHz reserved, and the memory fraction):
 * spread puts the least used first (the default), pack the most used.
 * Equal scores are broken by node name, so the result is deterministic.
 *
 * Soft-affinity and soft-anti-affinity are weighers, never filters, as
 * Nova's ServerGroupSoftAffinityWeigher and ServerGroupSoftAntiAffinityWeigher
 * (multipliers 1.0): a node's weight grows (soft-affinity) or shrinks
 * (soft-anti-affinity) with the number of the group's members already on
 * it, normalised as Nova's weighers are, (w - min) / (max - min) over the
 * nodes that pass the filters (0 for all when they are equal), and added
 * to the load weigher's weight: 1 - usage for spread, usage for pack, a
 * fraction of capacity and so already on the same 0..1 scale (Nova's
 * weighers may declare such fixed bounds). A preference therefore beats
 * any load difference short of an empty node against a full one, and a
 * preferred node that is full has been filtered out, so the server still
 * lands elsewhere. The sampled scan also examines, beyond its window, every
 * node that hosts a member, so the preference holds on large clusters. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "lib/err.h"

struct st_sched_resources {
    uint32_t vcpus;
    uint64_t memory_mb;
    uint64_t disk_gb;
    uint64_t cpu_reservation_mhz;
    uint64_t memory_reservation_mb;
};

struct st_sched_node {
    const char *name;
    bool alive;
    const char *const *drivers;
    size_t n_drivers;
    const char *availability_zone;
    uint32_t vcpus;
    uint32_t cpu_mhz; /* per core */
    uint64_t memory_mb;
    uint64_t disk_gb;
    double cpu_ratio, memory_ratio, disk_ratio;
    struct st_sched_resources used; /* sum over what is allocated on the node */
    /* server groups with a member on this node (for affinity rules) */
    const char *const *groups;
    size_t n_groups;
    /* how many members of each of groups[] the node hosts (the soft
     * policies weigh them); NULL = one each */
    const uint32_t *group_members;
};

enum st_sched_group_policy {
    ST_SCHED_GROUP_NONE,
    ST_SCHED_GROUP_AFFINITY,
    ST_SCHED_GROUP_ANTI_AFFINITY,
    ST_SCHED_GROUP_SOFT_AFFINITY,      /* a weigher: prefer nodes with members */
    ST_SCHED_GROUP_SOFT_ANTI_AFFINITY, /* a weigher: prefer nodes without */
};

enum st_sched_weigher {
    ST_SCHED_SPREAD,
    ST_SCHED_PACK,
};

struct st_sched_request {
    struct st_sched_resources res;
    const char *driver;            /* NULL = any */
    const char *availability_zone; /* NULL = any */
    const char *group;             /* NULL = none */
    enum st_sched_group_policy group_policy;
    bool group_has_members; /* affinity: members exist somewhere */
    /* Optional, for the soft policies: the indices of the nodes that host a
     * member (each once), so that a sampled scan reaches them outside its
     * window without sweeping every node for them. */
    const size_t *member_nodes;
    size_t n_member_nodes;
};

/* The filters, in the order they run; index of st_sched_explain.filters. */
enum st_sched_filter {
    ST_SCHED_FILTER_ALIVE,
    ST_SCHED_FILTER_DRIVER,
    ST_SCHED_FILTER_ZONE,
    ST_SCHED_FILTER_GROUP,
    ST_SCHED_FILTER_VCPUS,
    ST_SCHED_FILTER_CPU,
    ST_SCHED_FILTER_MEMORY,
    ST_SCHED_FILTER_DISK,
    ST_SCHED_N_FILTERS,
};

#define ST_SCHED_MAX_FILTERS ST_SCHED_N_FILTERS

/* Why the nodes were removed, per filter, for a fault message better than
 * Nova's bare "No valid host was found". Every filter has its slot, in
 * order; reason is "" for a filter that removed nothing. */
struct st_sched_explain {
    size_t n_nodes; /* examined (all of them when none fits) */
    size_t n_fit;   /* nodes that passed every filter */
    size_t n_filters;
    struct {
        const char *filter; /* "alive", "driver", "zone", "group", "vcpus", "cpu", ... */
        size_t removed;
        char reason[128]; /* e.g. "needs 2000 MHz reserved, most free 1200 MHz" */
    } filters[ST_SCHED_MAX_FILTERS];
};

/* How to search. A scan that stops once `enough` nodes fit is what keeps
 * placement fast on large clusters: Kubernetes' scheduler does the same
 * (percentageOfNodesToScore, from a rotating start index); the nodes that
 * are examined are still ranked exactly, and a request that fits nowhere is
 * always checked against every node, so its explanation is complete. A
 * request with a soft group policy also examines the nodes outside the
 * window that host a member of its group (counted in n_nodes). */
struct st_sched_options {
    enum st_sched_weigher weigher;
    size_t start;  /* index of the first node examined; the scan wraps around */
    size_t enough; /* stop once this many nodes fit; 0 = examine every node */
};

/* Kubernetes' adaptive default for st_sched_options.enough: every node up
 * to 100, then max(100, n × max(5, 50 − n/125) %) — 500 of 10,000. */
size_t st_sched_enough(size_t n);

/* Ranks the nodes that fit, best first: ret_order (room for max_order
 * indices into nodes) receives the best min(fit, max_order) of them and
 * *ret_n how many were written (0: none fits, explain says why). The cost
 * is one pass over the nodes examined plus O(fit × log max_order), so ask
 * for the few the caller may try (a controller that loses a
 * compare-and-swap moves on to the next), not for all. opts NULL = spread,
 * from node 0, every node. explain (may be NULL) counts the nodes examined
 * in n_nodes: a caller that rotates adds it to its next start. -EINVAL on
 * bad arguments. */
int st_sched_place(const struct st_sched_node *nodes, size_t n, const struct st_sched_request *req,
                   const struct st_sched_options *opts, size_t *ret_order, size_t max_order,
                   size_t *ret_n, struct st_sched_explain *explain, struct st_err **err);

/* The fault message: "No valid host was found. 5 nodes; alive: removed 1
 * (heartbeat older than lease); memory: removed 4 (needs 4096 MiB reserved,
 * most free 1024 MiB)". Always NUL-terminated, truncated to len. */
void st_sched_explain_format(const struct st_sched_explain *e, char *buf, size_t len);

/* "spread" | "pack" → weigher; -EINVAL (with a message) on anything else. */
int st_sched_weigher_parse(const char *s, enum st_sched_weigher *ret, struct st_err **err);
const char *st_sched_weigher_name(enum st_sched_weigher w);
