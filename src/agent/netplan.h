/* The agent's network reconcile (DESIGN.md "Networking"): it tells the
 * controller what its node offers (VTEP address, uplink MTU, external
 * bridge), follows the node view (network/model.h) with a long-poll, and
 * makes the node match it through the data plane primitives (net/net.h,
 * net/firewall.h): a bridge and a VXLAN device per network with the FDB of
 * the peers (head-end replication), a veth pair per port into its
 * instance's network namespace (MAC, address, MTU, default route), a
 * namespace per router with its interfaces, gateway, floating IPs and NAT,
 * the external bridge's address, and one nftables ruleset for every port's
 * security groups. Level-triggered: every pass ensures the whole view and
 * removes what the view no longer has (devices named stbr-/stvx-/stp-/
 * str-/stg-, router namespaces), so a restart repairs everything.
 *
 * Instances: each server with ports runs in a network namespace bound at
 * <data_dir>/netns/<server uuid>, made and plugged by
 * st_netplan_instance_prepare before the driver creates the instance (the
 * driver joins it: the OCI config's network namespace path) and removed by
 * st_netplan_instance_release after the driver destroyed it. The namespace
 * outlives the instance's processes, so a stop/start keeps its address. */
#pragma once

#include <jansson.h>
#include <stdbool.h>

#include "lib/cleanup.h"
#include "lib/err.h"

struct st_agent_client;

struct st_netplan_config {
    const char *node_name;
    const char *data_dir;        /* the agent's */
    const char *controller_url;  /* for the netplan thread's own client */
    const char *token;           /* node token */
    const char *vtep;            /* VXLAN source address; NULL: the address of the
                                    interface holding the default route, else 127.0.0.1 */
    const char *external_bridge; /* NULL: "br-ex"; created if missing */
    unsigned poll_wait_s;        /* long-poll wait; 0 = 20 */
    const int *stop;             /* the agent's stop flag */
};

struct st_netplan;

/* Checks the config and the host (netlink, nftables usable: -EOPNOTSUPP
 * with the reason otherwise) and starts the thread. */
int st_netplan_start(const struct st_netplan_config *cfg, struct st_netplan **ret,
                     struct st_err **err);
/* Stops the thread; devices stay (instances keep their network). */
void st_netplan_stop(struct st_netplan *np);
ST_DEFINE_AUTOPTR(st_netplan, st_netplan_stop)

/* Wakes the thread's long-poll (st_agent_client_wake) at stop. */
void st_netplan_wake(struct st_netplan *np);

/* For a server document with spec.ports: fetches the node view if the
 * ports are not in the one held, makes the instance's namespace, plugs its
 * ports and applies the firewall, so the instance starts with its network
 * and its rules. *ret_netns (caller frees): the namespace path, NULL when
 * the server has no ports; *ret_dns: the DNS servers of its ports' subnets
 * (new array, maybe empty). */
int st_netplan_instance_prepare(struct st_netplan *np, struct st_agent_client *c, json_t *server,
                                char **ret_netns, json_t **ret_dns, struct st_err **err);
/* Unplugs the server's ports and removes its namespace (idempotent). */
int st_netplan_instance_release(struct st_netplan *np, const char *server_id, struct st_err **err);
