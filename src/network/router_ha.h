/* Routers off stopped nodes: Neutron's allow_automatic_l3agent_failover,
 * without VRRP. A router runs on its "host" (model.h), a node that can run
 * routers: it reported l3 (/network/nodes/<node>) and its lease holds
 * (/compute/nodes/<node>: heartbeat_at + lease_seconds). When the host
 * stops, tenants lose SNAT and floating IPs until the router runs somewhere
 * else; st_router_ha_reschedule puts it somewhere else.
 *
 * One call is one level-triggered pass over every router: one whose host
 * cannot run it (lease expired, node document gone, no longer l3) or that
 * has none is bound to the usable node hosting the fewest routers, with
 * compare-and-swap on its document. A lost swap re-reads the router: if a
 * peer (another controller on the same store, an API update) gave it a
 * usable host meanwhile, it stays there, so two controllers never move one
 * router twice. A router on a usable host is never touched: a node that
 * comes back does not get its routers back (its agent removes their
 * namespaces, as it removes whatever its view no longer holds), and nothing
 * flaps. The new host's agent builds the namespace, NAT and gateway from its
 * node view, which the write wakes.
 *
 * The controller that runs passes (when nodes come or go, when routers
 * change, and periodically) is ctrl/router_ha.h. */
#pragma once

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "lib/err.h"

struct st_kv;

struct st_router_ha_pass {
    size_t routers; /* routers looked at */
    size_t moved;   /* bound to a new host by this pass (event router_rescheduled) */
    size_t settled; /* found on a usable host when re-read: a peer was first */
    size_t failed;  /* could not be written (logged; the next pass tries again) */
    /* {"<router id>": "<its host>" | null}: routers that need a host while
     * no node can take one (new reference, never NULL) */
    json_t *stranded;
};

/* The nodes that can run routers at now_ms: {"<node>": 0} (new reference),
 * compared by the controller between passes to notice a node stopping or
 * starting without listing the routers. */
int st_router_ha_hosts(struct st_kv *kv, int64_t now_ms, json_t **ret, struct st_err **err);

/* One pass as of now_ms. *ret is filled even on failure (what was done);
 * release it with st_router_ha_pass_clear. Fails only when the routers or
 * nodes cannot be read. */
int st_router_ha_reschedule(struct st_kv *kv, int64_t now_ms, struct st_router_ha_pass *ret,
                            struct st_err **err);

void st_router_ha_pass_clear(struct st_router_ha_pass *pass);
