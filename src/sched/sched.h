/* The scheduler: a pure function from a snapshot of nodes (capacity,
 * what is already allocated, whether alive) and one request (resources,
 * driver, zone, group policy) to a ranked choice of nodes, or a reason per
 * filter when none fits. No store, no I/O: the controller (ctrl/) feeds it a
 * snapshot and writes the placement with compare-and-swap.
 *
 * Admission is on reservations: on each node, per resource, the sum of the
 * reservations of what is placed there plus the request must not exceed
 * capacity × allocation ratio. Filters: alive, driver, availability zone,
 * capacity (cpu MHz reservations, memory reservations, vcpus × ratio, disk),
 * server group affinity / anti-affinity. Weighers: spread (most free first,
 * the default) or pack (least free first). */
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
};

enum st_sched_group_policy {
    ST_SCHED_GROUP_NONE,
    ST_SCHED_GROUP_AFFINITY,
    ST_SCHED_GROUP_ANTI_AFFINITY,
};

enum st_sched_weigher {
    ST_SCHED_SPREAD,
    ST_SCHED_PACK,
};

struct st_sched_request {
    struct st_sched_resources res;
    const char *driver;
    const char *availability_zone; /* NULL = any */
    const char *group;             /* NULL = none */
    enum st_sched_group_policy group_policy;
    bool group_has_members;        /* affinity: members exist somewhere */
};

#define ST_SCHED_MAX_FILTERS 8

/* Why the nodes were removed, per filter, for a fault message better than
 * Nova's bare "No valid host was found". */
struct st_sched_explain {
    size_t n_nodes;
    size_t n_filters;
    struct {
        const char *filter;  /* "alive", "driver", "zone", "cpu", "memory", ... */
        size_t removed;
        char reason[96];     /* e.g. "needs 2000 MHz, most free is 1200 MHz" */
    } filters[ST_SCHED_MAX_FILTERS];
};

/* Ranks the nodes that fit, best first: *ret_order receives up to n indices
 * into nodes, *ret_n how many fit (0: none, explain says why). */
int st_sched_place(const struct st_sched_node *nodes, size_t n, const struct st_sched_request *req,
                   enum st_sched_weigher weigher, size_t *ret_order, size_t *ret_n,
                   struct st_sched_explain *explain, struct st_err **err);

/* "No valid host was found: 3 nodes; alive removed 1 (heartbeat older than
 * lease); memory removed 2 (needs 4096 MiB reserved, most free is 1024 MiB)". */
void st_sched_explain_format(const struct st_sched_explain *e, char *buf, size_t len);
