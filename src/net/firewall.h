/* Security groups and router NAT as nftables rulesets, rendered as text from
 * the node view (network/model.h) and applied in one transaction through
 * libnftables — never by running `nft`.
 *
 * Security groups live in the node's own namespace, in one table
 * `inet stratos`, on the forward hook: bridged IPv4 traffic reaches it
 * through br_netfilter (net.bridge.bridge-nf-call-iptables = 1, per
 * namespace), and conntrack makes the rules stateful (established and
 * related traffic is accepted first, invalid dropped). Ports are matched by
 * (bridge, address) — for bridged packets the forward hook sees the bridge
 * as both iifname and oifname — through verdict maps, so the cost of a
 * packet does not grow with the number of ports. Two forward base chains,
 * egress (priority filter) and ingress (filter + 10): an accept ends only
 * its own base chain, so traffic between two local ports is checked against
 * the sender's egress and then the receiver's ingress. Ports with the same
 * groups share one chain per direction; each rule's remote group is a named
 * set of its members' addresses, so thousands of rules stay fast. The same
 * maps run on the input and output hooks (port ↔ node traffic). Each VXLAN
 * network has its own conntrack zone (from its VNI), so overlapping tenant
 * subnets do not collide. Anti-spoofing (table `bridge stratos`, where
 * iifname is the veth): set entries of veth + MAC, veth + IP and veth + MAC
 * + ARP address behind a few shared rules; DHCP requests and ARP probes are
 * allowed, acting as a DHCP server is not. IPv6 from and to secured ports is
 * dropped (IPv4 only for now). Ports without port security and router
 * interfaces are not filtered.
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
 * the name of its gateway interface inside its namespace (NULL: none). */
int st_fw_render_router(json_t *router, const char *gw_ifname, char **ret, struct st_err **err);
/* Runs ruleset text through libnftables inside the namespace at netns
 * (NULL: the caller's). On error, err carries nft's message. */
int st_fw_apply(const char *netns, const char *text, struct st_err **err);
/* Deletes a table ("inet", "stratos"); 0 if absent. */
int st_fw_delete_table(const char *netns, const char *family, const char *name,
                       struct st_err **err);

/* ---- revoking what is already established ----
 * The ruleset is stateful: a connection a rule allowed stays allowed by
 * "ct state established" after the rule is gone. As Neutron's firewall
 * drivers do, the agent deletes the tracked connections of every port that
 * lost something it was allowed (a rule, a remote group member, port
 * security turned on) or that was removed (its address may be reused at
 * once). A deleted entry costs a live, still-allowed connection nothing:
 * its next packet is tracked again and passes the rules.
 *
 * A view's grants: {"<port id>": {"zone": Z, "ip": "10.0.2.5",
 *                                 "grants": {"<rule in canonical form>": true}}}
 * with remote groups expanded to one grant per member address, and a port
 * without port security granted "*" (everything). */
int st_fw_port_grants(json_t *view, json_t **ret, struct st_err **err);
/* The ports of old that new lacks or grants less: [{"zone": Z, "ip": "..."}]. */
json_t *st_fw_revoked(json_t *old_grants, json_t *new_grants);
/* Deletes every tracked connection of the namespace at netns (NULL: the
 * caller's) in one of the given zones whose original source or destination
 * is that zone's address ([{"zone", "ip"}], as st_fw_revoked returns);
 * *ret_deleted (optional) receives how many. Through libnetfilter_conntrack. */
int st_fw_conntrack_flush(const char *netns, json_t *targets, unsigned *ret_deleted,
                          struct st_err **err);
