/* The router rescheduling controller: the thread that keeps every router on
 * a node that can run it (network/router_ha.h has the rule and the pass).
 * It is level-triggered and keeps nothing that matters in memory: every
 * tick (interval_ms) it reads which nodes can run routers (a list of the
 * network nodes and one read per l3 node's lease, not of the routers) and
 * whether any router changed since its last pass (a watch on
 * /network/routers/ that does not wait); a full pass runs when either
 * changed, when the last pass failed, and every resync_ms. So a crash
 * anywhere is finished by the next pass of this or any other controller,
 * and a router made while no node could take it gets one at the first tick
 * after a node can.
 *
 * Runs in the controller role, beside placement; several controllers on one
 * store each run one, and compare-and-swap makes one of them move each
 * router. A router that needs a host while none can take it is logged
 * once (router_reschedule_waiting), not at every pass. */
#pragma once

#include <stdint.h>

#include "lib/cleanup.h"
#include "lib/err.h"

struct st_kv;
struct st_ctrl_router_ha;

struct st_ctrl_router_ha_config {
    unsigned interval_ms; /* how often the hosts are checked; 0 = 2000 */
    unsigned resync_ms;   /* a full pass at least this often; 0 = 60000 */
    /* Test hook: the wall clock in ms (leases); NULL = real. */
    int64_t (*now_ms)(void *userdata);
    void *now_userdata;
};

struct st_ctrl_router_ha_stats {
    uint64_t passes;   /* full passes over the routers */
    uint64_t moved;    /* routers this controller bound to a new host */
    uint64_t settled;  /* routers a peer had moved by the time this one wrote */
    uint64_t stranded; /* routers found needing a host with none usable (once each) */
    uint64_t errors;   /* passes or moves that failed (retried at the next tick) */
};

/* Starts the thread on kv (which must outlive it); cfg may be NULL. The
 * first pass runs at once, on the thread. */
int st_ctrl_router_ha_start(struct st_kv *kv, const struct st_ctrl_router_ha_config *cfg,
                            struct st_ctrl_router_ha **ret, struct st_err **err);

/* Stops and joins the thread (within 200 ms, or the pass in progress), frees
 * it. NULL-tolerant. */
void st_ctrl_router_ha_stop(struct st_ctrl_router_ha *c);

void st_ctrl_router_ha_get_stats(struct st_ctrl_router_ha *c, struct st_ctrl_router_ha_stats *ret);

ST_DEFINE_AUTOPTR(st_ctrl_router_ha, st_ctrl_router_ha_stop)
