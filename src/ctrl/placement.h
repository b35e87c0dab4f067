/* The placement controller: the thread that gives every new server a node.
 * It keeps a view of /compute/ (ctrl/view.h: a full list, then one watch on
 * /compute/ — servers, nodes, allocations and groups in one ordered stream,
 * other keys skipped — relisting on -ESTALE and every relist interval:
 * level-triggered), and for each server whose spec.host is null,
 * spec.deleted false and status.state BUILD it asks the scheduler
 * (sched/sched.h) for the best node, then
 *   1. adds the server to /compute/allocations/<node> with compare-and-swap
 *      (a lost swap re-reads that document and schedules again), and
 *   2. sets spec.host and status.task_state "spawning" on the server with
 *      compare-and-swap (if the server was deleted or placed meanwhile, the
 *      allocation entry is removed again).
 * Two controllers on one store therefore never double-book a node: every
 * admission is checked against the exact allocation document it replaces.
 * When nothing fits, the server goes to ERROR with a fault whose message
 * says, per filter, how many nodes were removed and why. A server that
 * would fit if allocations still in flight (written, host not yet set) were
 * discounted is left for the next pass instead, so a race between two
 * controllers never fails a server that a moment later has room.
 *
 * Each full relist also reconciles what a crash between steps 1 and 2 can
 * leave: entries of servers that no longer exist or are placed on another
 * node are removed; a BUILD server listed in a node's allocation without a
 * host gets that node as its host; a placed server missing from its node's
 * allocation is added back (it runs there). */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include "lib/cleanup.h"
#include "lib/err.h"
#include "sched/sched.h"

struct st_kv;
struct st_ctrl_placement;

struct st_ctrl_placement_config {
    enum st_sched_weigher weigher; /* ST_SCHED_SPREAD (the zero value) or ST_SCHED_PACK */
    unsigned relist_interval_ms;   /* full relist + reconcile; 0 = 30 s */
    /* Rank every node rather than stop after st_sched_enough(n) fit
     * (Kubernetes-style sampling, which spread combines with a rotating
     * start; pack always scans from the first node). */
    bool score_all_nodes;
    /* Test hook: the wall clock in ms (leases, timestamps); NULL = real. */
    int64_t (*now_ms)(void *userdata);
    void *now_userdata;
};

struct st_ctrl_placement_stats {
    uint64_t placed;    /* spec.host written by this controller */
    uint64_t failed;    /* servers set to ERROR: no valid host */
    uint64_t conflicts; /* compare-and-swaps lost on an allocation */
    uint64_t deferred;  /* passes that left a server for allocations in flight */
    uint64_t adopted;   /* hosts set from an allocation left by a crash or a peer */
    uint64_t released;  /* allocation entries removed (deleted or placed elsewhere) */
    uint64_t relists;   /* full lists of /compute/ */
};

/* Starts the controller's thread on kv (which must outlive it); cfg may be
 * NULL (defaults). The first full list happens on the thread. */
int st_ctrl_placement_start(struct st_kv *kv, const struct st_ctrl_placement_config *cfg,
                            struct st_ctrl_placement **ret, struct st_err **err);

/* Stops and joins the thread (within one watch poll, 200 ms), frees p.
 * NULL-tolerant. A placement in progress finishes its current write. */
void st_ctrl_placement_stop(struct st_ctrl_placement *p);

void st_ctrl_placement_get_stats(struct st_ctrl_placement *p, struct st_ctrl_placement_stats *ret);

ST_DEFINE_AUTOPTR(st_ctrl_placement, st_ctrl_placement_stop)
