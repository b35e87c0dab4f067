/* The placement controller's in-memory view of /compute/: nodes and their
 * allocations (one "host" entry per node name), servers (only the fields
 * placement needs) and server groups, fed by a full list and then by watch
 * events, the way a Kubernetes informer feeds its scheduler. The view may
 * lag the store; it never decides on its own: every placement is written
 * with compare-and-swap against the revision the view holds, and a lost
 * swap re-reads the one document that moved.
 *
 * Each entry remembers the mod_rev it was built from and an event applies
 * only if it is newer, so replaying events from before a list (a watch that
 * starts at the oldest of several list revisions) converges to the store. */
#pragma once

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "sched/sched.h"

struct st_ctrl_view_host {
    char *name; /* first member: the sorted tables key on it */
    /* /compute/nodes/<name>; has_node false while only an allocation is known */
    bool has_node;
    int64_t node_rev;
    char **drivers;
    size_t n_drivers;
    char *zone;
    uint32_t vcpus, cpu_mhz;
    uint64_t memory_mb, disk_gb;
    double cpu_ratio, memory_ratio, disk_ratio;
    int64_t heartbeat_ms; /* 0: never */
    int64_t lease_ms;
    /* /compute/allocations/<name>: {"servers": {"<uuid>": {resources}}} */
    json_t *alloc;     /* NULL when absent */
    int64_t alloc_rev; /* 0 when absent: create with ST_KV_ABSENT */
    struct st_sched_resources used;
    size_t snap_idx; /* its entry in the view's snapshot, while that is valid */
};

enum st_ctrl_server_state {
    ST_CTRL_SERVER_BUILD,
    ST_CTRL_SERVER_OTHER, /* ACTIVE, ERROR, ...: nothing to place */
};

struct st_ctrl_view_server {
    char *id;
    int64_t rev, create_rev;
    char *host;       /* spec.host, NULL until placed */
    char *alloc_host; /* a host whose allocation lists the server, NULL if none */
    char *group;      /* spec.server_group */
    char *driver;     /* spec.driver */
    char *zone;       /* spec.availability_zone */
    bool deleted;     /* spec.deleted */
    enum st_ctrl_server_state state;
    struct st_sched_resources res; /* spec.resources, else the flavor's */
};

struct st_ctrl_view_group {
    char *id;
    int64_t rev;
    enum st_sched_group_policy policy;
    json_t *members; /* array of server ids, never NULL */
};

struct st_ctrl_view_table {
    void **items; /* sorted by their first member, a char * key */
    size_t n, cap;
};

struct st_ctrl_view {
    struct st_ctrl_view_table hosts, servers, groups;
    /* The scheduler's snapshot of the hosts that have a node document, in
     * name order, kept in step entry by entry (a heartbeat or an allocation
     * rewrites one entry) and rebuilt only when a node comes or goes. */
    struct st_sched_node *snap;
    struct st_ctrl_view_host **snap_hosts;
    size_t snap_n, snap_cap;
    bool snap_valid;
};

struct st_ctrl_view *st_ctrl_view_new(void);
void st_ctrl_view_free(struct st_ctrl_view *v);

/* Applies a PUT (value != NULL) or a DELETE (value NULL; mod_rev is the
 * delete's revision) of a key under /compute/; other keys are ignored, as
 * are events no newer than the entry. A document that does not parse is
 * logged and treated as absent. */
void st_ctrl_view_apply(struct st_ctrl_view *v, const char *key, const char *value, size_t len,
                        int64_t mod_rev, int64_t create_rev);

/* Sets every server's alloc_host from the allocations (after a full list,
 * where allocations are read before the servers they name). */
void st_ctrl_view_index_allocs(struct st_ctrl_view *v);

struct st_ctrl_view_host *st_ctrl_view_host(struct st_ctrl_view *v, const char *name);
struct st_ctrl_view_server *st_ctrl_view_server(struct st_ctrl_view *v, const char *id);
struct st_ctrl_view_group *st_ctrl_view_group(struct st_ctrl_view *v, const char *id);

/* Sums an allocation document's entries; with bound_to, only those of
 * servers the view knows to be placed there (spec.host == bound_to). */
struct st_sched_resources st_ctrl_view_alloc_sum(struct st_ctrl_view *v, json_t *alloc,
                                                 const char *bound_to);

/* The resources an allocation entry records for a server. */
json_t *st_ctrl_view_resources_json(const struct st_sched_resources *r);

/* The snapshot for the scheduler: *ret_nodes and *ret_hosts (parallel, in
 * name order) with alive = heartbeat_at + lease_seconds > now_ms refreshed.
 * Returns how many. Valid until the next apply; a caller that changes
 * entries (group marks, discounted usage) calls
 * st_ctrl_view_snapshot_invalidate afterwards. */
size_t st_ctrl_view_snapshot(struct st_ctrl_view *v, int64_t now_ms,
                             struct st_sched_node **ret_nodes,
                             struct st_ctrl_view_host ***ret_hosts);
void st_ctrl_view_snapshot_invalidate(struct st_ctrl_view *v);

/* Is the server a member of the group: named in its members, or created
 * with spec.server_group = group. */
bool st_ctrl_view_is_member(struct st_ctrl_view *v, const struct st_ctrl_view_group *g,
                            const char *server_id);
