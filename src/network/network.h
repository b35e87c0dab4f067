/* The network service: Neutron's resources (model.h) over the store.
 * Pure state: no packets here; agents program nodes from the node view.
 *
 * Conventions: functions take the caller (from the token) and answer with
 * Neutron's wording in err: -ENOENT "Network <id> could not be found.",
 * -EINVAL for bad input (400 "Invalid input for ..."), -EEXIST /
 * -EBUSY for conflicts (409: "Unable to complete operation on network X.
 * There are one or more ports still in use on the network.",
 * "Security group rule already exists. Rule id is <id>.",
 * "IP address 10.0.0.5 already allocated in subnet <id>"), -EPERM for what
 * only an admin may do (403). A resource of another project is -ENOENT, not
 * -EPERM, unless it is shared (networks: shared or router:external).
 *
 * Lists are scoped to the caller's project even for admins (the CLI's name
 * lookups need one match; openstack-api-subset.md 5.5), plus shared and
 * external networks; `filters` is a JSON object of the query's equality
 * filters ({"name": "private", "network_id": "..."}; values compared as
 * strings, booleans as "true"/"false"; an array value means "any of"), and
 * unknown filter keys are ignored as Neutron does. Returned documents are
 * the API shapes (with tenant_id = project_id), new references. */
#pragma once

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "lib/err.h"

struct st_kv;

struct st_network_caller {
    const char *project_id;
    const char *user_id;
    bool is_admin;
};

/* ---- networks (network.c) ---- */
/* req: the value of "network": name, admin_state_up, shared (admin),
 * router:external (admin), mtu (<= 1450 for vxlan), description,
 * port_security_enabled, provider:* (admin; ignored except network_type
 * "flat" + physical_network "external" for an external network). */
int st_network_create(struct st_kv *kv, const struct st_network_caller *who, json_t *req,
                      json_t **ret, struct st_err **err);
int st_network_get(struct st_kv *kv, const struct st_network_caller *who, const char *id,
                   json_t **ret, struct st_err **err);
int st_network_list(struct st_kv *kv, const struct st_network_caller *who, json_t *filters,
                    json_t **ret, struct st_err **err);
int st_network_update(struct st_kv *kv, const struct st_network_caller *who, const char *id,
                      json_t *req, json_t **ret, struct st_err **err);
/* -EBUSY (NetworkInUse) while a port of a live device is on it; ports whose
 * server no longer exists are released on the way. Frees the VNI. */
int st_network_delete(struct st_kv *kv, const struct st_network_caller *who, const char *id,
                      struct st_err **err);

/* ---- subnets (subnet.c) ---- */
/* req: name, network_id, cidr, ip_version (4), gateway_ip (null = none),
 * allocation_pools, dns_nameservers, host_routes, enable_dhcp, description.
 * Fills the defaults of openstack-api-subset.md 5.2; adds the id to the
 * network's "subnets". CIDRs may overlap across networks. */
int st_subnet_create(struct st_kv *kv, const struct st_network_caller *who, json_t *req,
                     json_t **ret, struct st_err **err);
int st_subnet_get(struct st_kv *kv, const struct st_network_caller *who, const char *id,
                  json_t **ret, struct st_err **err);
int st_subnet_list(struct st_kv *kv, const struct st_network_caller *who, json_t *filters,
                   json_t **ret, struct st_err **err);
int st_subnet_update(struct st_kv *kv, const struct st_network_caller *who, const char *id,
                     json_t *req, json_t **ret, struct st_err **err);
/* -EBUSY (SubnetInUse) while ports hold addresses in it. */
int st_subnet_delete(struct st_kv *kv, const struct st_network_caller *who, const char *id,
                     struct st_err **err);

/* ---- ports (port.c, ipam.c) ---- */
/* req: network_id, name, fixed_ips ([{"subnet_id"?, "ip_address"?}]),
 * mac_address, device_id, device_owner, security_groups (ids; default: the
 * project's "default" group, for compute ports), port_security_enabled,
 * admin_state_up. Allocates the next free address of the network's first
 * subnet (or the requested one) with compare-and-swap. */
int st_port_create(struct st_kv *kv, const struct st_network_caller *who, json_t *req, json_t **ret,
                   struct st_err **err);
int st_port_get(struct st_kv *kv, const struct st_network_caller *who, const char *id, json_t **ret,
                struct st_err **err);
int st_port_list(struct st_kv *kv, const struct st_network_caller *who, json_t *filters,
                 json_t **ret, struct st_err **err);
/* name, security_groups, port_security_enabled, admin_state_up,
 * device_id/device_owner, description. */
int st_port_update(struct st_kv *kv, const struct st_network_caller *who, const char *id,
                   json_t *req, json_t **ret, struct st_err **err);
/* Releases its addresses and MAC; disassociates floating IPs. */
int st_port_delete(struct st_kv *kv, const struct st_network_caller *who, const char *id,
                   struct st_err **err);

/* ---- servers' ports (server_ports.c), for Nova ---- */
/* Resolves Nova's request: networks = [{"uuid"}, {"port"}, {"uuid",
 * "fixed_ip"}] or NULL (absent: the project's only network; none → no
 * port; several → -EBUSY "Multiple possible networks found, use a Network
 * ID to be more specific."), security_groups = [{"name": name or id}] or
 * NULL (= the project's "default"). Creates one port per network with
 * device_id = server_id, device_owner "compute:nova". On any failure the
 * ports made so far are deleted. *ret_ports, in request order:
 * [{"port_id", "network_id", "network_name", "mac", "ip", "subnet_id"}];
 * *ret_sg_names: [{"name": "default"}, ...] for the server body.
 * Errors in Nova's words: "Network X could not be found.", "Security group
 * X not found for project Y." (-EINVAL, 400), "Port X is still in use.",
 * "Maximum number of ports exceeded" (-EDQUOT, 403: the port quota). */
int st_network_server_ports_create(struct st_kv *kv, const struct st_network_caller *who,
                                   const char *server_id, json_t *networks, json_t *security_groups,
                                   json_t **ret_ports, json_t **ret_sg_names, struct st_err **err);
/* Deletes every port whose device_id is device_id (compute ports when a
 * server is deleted; ports passed in by the user as {"port": id} are
 * unbound instead, as Nova does). Idempotent. */
int st_network_device_ports_release(struct st_kv *kv, const char *device_id, struct st_err **err);

/* ---- security groups (security_group.c) ---- */
/* Makes the project's "default" group if it has none (CAS on
 * /network/default-sg/<project>); *ret_id (caller frees) may be NULL. Every
 * security-group call runs it first, as Neutron does on a project's first
 * call. */
int st_security_group_ensure_default(struct st_kv *kv, const char *project_id, char **ret_id,
                                     struct st_err **err);
/* req: name, description (default: the name), stateful. New groups get the
 * two egress rules (IPv4, IPv6). */
int st_security_group_create(struct st_kv *kv, const struct st_network_caller *who, json_t *req,
                             json_t **ret, struct st_err **err);
int st_security_group_get(struct st_kv *kv, const struct st_network_caller *who, const char *id,
                          json_t **ret, struct st_err **err);
int st_security_group_list(struct st_kv *kv, const struct st_network_caller *who, json_t *filters,
                           json_t **ret, struct st_err **err);
int st_security_group_update(struct st_kv *kv, const struct st_network_caller *who, const char *id,
                             json_t *req, json_t **ret, struct st_err **err);
/* -EBUSY (SecurityGroupInUse) while a port uses it; the default group
 * cannot be deleted by non-admins (409 as Neutron). */
int st_security_group_delete(struct st_kv *kv, const struct st_network_caller *who, const char *id,
                             struct st_err **err);
/* A name or id of the caller's project's group → id (-ENOENT; -EBUSY when a
 * name matches several: "Multiple security_group matches found for name
 * 'x', use an ID to be more specific."). */
int st_security_group_resolve(struct st_kv *kv, const struct st_network_caller *who,
                              const char *name_or_id, char **ret_id, json_t **ret_doc,
                              struct st_err **err);

/* ---- security group rules (security_group_rule.c) ---- */
/* req: security_group_id, direction, ethertype, protocol (name or number;
 * "any"/null = all), port_range_min/max (validated: 1-65535, min <= max,
 * only with tcp/udp/sctp; ICMP type 0-255 / code 0-255), remote_ip_prefix
 * (normalized; must match ethertype), remote_group_id, description.
 * -EEXIST "Security group rule already exists. Rule id is X." (409). */
int st_security_group_rule_create(struct st_kv *kv, const struct st_network_caller *who,
                                  json_t *req, json_t **ret, struct st_err **err);
int st_security_group_rule_get(struct st_kv *kv, const struct st_network_caller *who,
                               const char *id, json_t **ret, struct st_err **err);
int st_security_group_rule_list(struct st_kv *kv, const struct st_network_caller *who,
                                json_t *filters, json_t **ret, struct st_err **err);
int st_security_group_rule_delete(struct st_kv *kv, const struct st_network_caller *who,
                                  const char *id, struct st_err **err);

/* ---- routers (router.c) ---- */
/* req: name, admin_state_up, external_gateway_info ({"network_id",
 * "enable_snat", "external_fixed_ips"}), description. Setting a gateway
 * allocates an address on the external network's subnet (a
 * "network:router_gateway" port) and binds the router to a node that
 * reported l3 (the one hosting fewest routers) as "host". */
int st_router_create(struct st_kv *kv, const struct st_network_caller *who, json_t *req,
                     json_t **ret, struct st_err **err);
int st_router_get(struct st_kv *kv, const struct st_network_caller *who, const char *id,
                  json_t **ret, struct st_err **err);
int st_router_list(struct st_kv *kv, const struct st_network_caller *who, json_t *filters,
                   json_t **ret, struct st_err **err);
/* name, admin_state_up, external_gateway_info (set, change or null to
 * clear), routes. */
int st_router_update(struct st_kv *kv, const struct st_network_caller *who, const char *id,
                     json_t *req, json_t **ret, struct st_err **err);
/* -EBUSY (RouterInUse) while it has interfaces. */
int st_router_delete(struct st_kv *kv, const struct st_network_caller *who, const char *id,
                     struct st_err **err);
/* body: {"subnet_id"} (a port holding the subnet's gateway_ip) or
 * {"port_id"}. *ret: Neutron's {"id" (router), "subnet_id", "subnet_ids",
 * "port_id", "network_id", "tenant_id", "project_id"}. -EBUSY when the
 * subnet already has a router interface or overlaps another interface's
 * subnet of this router. */
int st_router_add_interface(struct st_kv *kv, const struct st_network_caller *who,
                            const char *router_id, json_t *body, json_t **ret, struct st_err **err);
int st_router_remove_interface(struct st_kv *kv, const struct st_network_caller *who,
                               const char *router_id, json_t *body, json_t **ret,
                               struct st_err **err);

/* ---- floating IPs (floatingip.c) ---- */
/* req: floating_network_id (an external network), port_id, fixed_ip_address,
 * floating_ip_address (admin), description. Associating needs a router with
 * a gateway on that external network and an interface on the port's subnet
 * (-ENOENT "External network X is not reachable from subnet Y..." as
 * Neutron, 404). */
int st_floatingip_create(struct st_kv *kv, const struct st_network_caller *who, json_t *req,
                         json_t **ret, struct st_err **err);
int st_floatingip_get(struct st_kv *kv, const struct st_network_caller *who, const char *id,
                      json_t **ret, struct st_err **err);
int st_floatingip_list(struct st_kv *kv, const struct st_network_caller *who, json_t *filters,
                       json_t **ret, struct st_err **err);
/* {"port_id": id | null, "fixed_ip_address"}: associate / disassociate. */
int st_floatingip_update(struct st_kv *kv, const struct st_network_caller *who, const char *id,
                         json_t *req, json_t **ret, struct st_err **err);
int st_floatingip_delete(struct st_kv *kv, const struct st_network_caller *who, const char *id,
                         struct st_err **err);
/* Every associated floating IP by port: {"<port uuid>": "172.24.4.3"} (new
 * reference), for Nova's server addresses; not scoped (the caller shows
 * only ports of servers it may see). */
int st_floatingip_by_port(struct st_kv *kv, json_t **ret, struct st_err **err);

/* ---- nodes and the node view (node_view.c) ---- */
/* Stores what an agent reports of its node's networking (model.h
 * /network/nodes/<node>): {"vtep", "uplink_mtu", "external_bridge", "l3"}. */
int st_network_node_register(struct st_kv *kv, const char *node, json_t *facts,
                             struct st_err **err);
/* The node view of model.h for `node`, computed from the store. */
int st_network_node_view(struct st_kv *kv, const char *node, json_t **ret, struct st_err **err);
/* An agent reports which ports it has plugged: {"<port uuid>": "ACTIVE" |
 * "DOWN" | "ERROR"}; stored under /network/port-status/. */
int st_network_port_status_report(struct st_kv *kv, const char *node, json_t *ports,
                                  struct st_err **err);
