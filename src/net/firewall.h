/* Security groups and router NAT as nftables rulesets, rendered as text from
 * the node view (network/model.h) and applied in one transaction through
 * libnftables — never by running `nft`.
 *
 * Security groups live in the node's own namespace, in one table
 * `inet stratos`, on the forward hook: bridged IPv4 traffic reaches it
 * through br_netfilter (net.bridge.bridge-nf-call-iptables = 1, per
 * namespace), and conntrack makes the rules stateful (established and
 * related traffic is accepted first, invalid dropped). Ports are matched by
 * (bridge, address) — `meta iifname . ip saddr` for egress and
 * `meta oifname . ip daddr` for ingress — through verdict maps, so the cost
 * of a packet does not grow with the number of ports; each security group
 * is one chain shared by its ports, and each rule's remote group is a named
 * set of its members' addresses, so thousands of rules stay fast. A port's
 * ingress chain jumps to the chains of its groups and drops what none
 * accepted; egress likewise (egress chains `return` on a match so that the
 * destination port's ingress is still checked when both ends are local).
 * Anti-spoofing: a port may only send from its own MAC and IP (table
 * `bridge stratos`, on the bridge port). Ports without port security and
 * router interfaces are not filtered.
 *
 * A router's namespace gets table `ip stratos-nat`: SNAT of its internal
 * subnets out of the gateway interface (when snat), DNAT of each floating
 * IP to its fixed IP and SNAT of the reply path. */
#pragma once

#include <jansson.h>

#include "lib/err.h"

/* The name of a port's host-side veth ("stp-" + the first 10 hex digits of
 * the port id without dashes) into buf (16 bytes). Shared with netplan.c.
 * Bridges are named in the view (networks[].bridge). */
void st_fw_port_ifname(const char *port_id, char buf[16]);

/* The whole security-group ruleset for a node view: text that, applied,
 * replaces tables `inet stratos` and `bridge stratos` atomically (it
 * creates, flushes and refills them). Deterministic (golden-file tested):
 * ports, groups and rules in id order. Caller frees *ret. */
int st_fw_render_ports(json_t *view, char **ret, struct st_err **err);
/* The NAT ruleset of one router of the view (its "routers" entry), given
 * the names of its gateway interface and internal interfaces. */
int st_fw_render_router(json_t *router, const char *gw_ifname, char **ret, struct st_err **err);
/* Runs ruleset text through libnftables inside the namespace at netns
 * (NULL: the caller's). On error, err carries nft's message. */
int st_fw_apply(const char *netns, const char *text, struct st_err **err);
/* Deletes a table ("inet", "stratos"); 0 if absent. */
int st_fw_delete_table(const char *netns, const char *family, const char *name,
                       struct st_err **err);
