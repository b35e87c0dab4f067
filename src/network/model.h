/* The network state model (Neutron v2.0's resources as kept in the store),
 * shared by the Neutron API (src/api/neutron*.c), Nova's server create
 * (ports), the internal API that serves each node its network view, and the
 * agents (which never touch the store; they get the view, below).
 *
 * Every document carries Neutron's common fields: "id", "name",
 * "project_id" (= "tenant_id" in responses), "description", "tags": [],
 * "created_at", "updated_at" (RFC 3339 without fraction, "...Z"),
 * "revision_number" (bumped by each update). Writers read-modify-write with
 * compare-and-swap on the document's mod_rev.
 *
 * /network/networks/<uuid>
 *   {..., "admin_state_up": true, "shared": false, "router:external": false,
 *    "mtu": 1450, "status": "ACTIVE", "port_security_enabled": true,
 *    "provider:network_type": "vxlan" | "flat",
 *    "provider:physical_network": null | "external",
 *    "provider:segmentation_id": <vni> | null,
 *    "subnets": ["<subnet uuid>", ...]}
 *   Tenant networks are VXLAN with a VNI from the pool
 *   [ST_NETWORK_VNI_MIN, ST_NETWORK_VNI_MAX]; an external network
 *   (router:external, admin only) is "flat" on physical network "external":
 *   the node's external bridge (agent flag --external-bridge).
 * /network/vnis/<vni>            "<network uuid>"   (CAS-absent: one owner)
 *
 * /network/subnets/<uuid>
 *   {..., "network_id", "ip_version": 4, "cidr": "10.0.2.0/24",
 *    "gateway_ip": "10.0.2.1" | null, "allocation_pools": [{"start","end"}],
 *    "dns_nameservers": [], "host_routes": [{"destination","nexthop"}],
 *    "enable_dhcp": true, "ipv6_address_mode": null, "ipv6_ra_mode": null,
 *    "subnetpool_id": null, "service_types": [], "segment_id": null}
 *
 * /network/ipam/<subnet uuid>/<dotted ip>   "<port uuid>"
 *   One key per allocated address, written CAS-absent, so two concurrent
 *   allocations never get the same address; deleted with the port. The
 *   gateway address is never allocated to a port other than the router
 *   interface that owns it. Floating IPs and router gateways allocate from
 *   the external subnet the same way.
 *
 * /network/ports/<uuid>
 *   {..., "network_id", "mac_address": "fa:16:3e:xx:xx:xx",
 *    "fixed_ips": [{"subnet_id", "ip_address"}], "device_id": "" | "<uuid>",
 *    "device_owner": "" | "compute:nova" | "network:router_interface"
 *                  | "network:router_gateway" | "network:floatingip",
 *    "security_groups": ["<sg uuid>"], "port_security_enabled": true,
 *    "admin_state_up": true, "status": "DOWN" | "ACTIVE",
 *    "binding:host_id": "" | "<node>", "binding:vif_type": "unbound" | "ovs",
 *    "allowed_address_pairs": [], "extra_dhcp_opts": []}
 *   A compute port's binding:host_id is the server's spec.host (filled in
 *   when read, from the server document); status is ACTIVE once its agent
 *   reported it plugged (/network/port-status/<uuid>).
 * /network/macs/<network uuid>/<mac>   "<port uuid>"   (CAS-absent)
 * /network/port-status/<uuid>  {"status": "ACTIVE", "host": "<node>", "at": "RFC 3339"}
 *
 * /network/security_groups/<uuid>
 *   {..., "stateful": true}
 *   The group without its rules (a new group is written with its first
 *   rules in one transaction), which the API shows embedded
 *   ("security_group_rules": [R, ...]) and counts in its revision_number
 *   and updated_at (from /network/sg-changes/, below). A document written
 *   before rules had keys of their own still carries its rules in that
 *   array: they are read from there too, and moved to keys of their own by
 *   the first rule create or delete in the group (one transaction per rule,
 *   each holding only while the document is unchanged, then the document
 *   without the array), so a crash half-way shows every rule exactly once.
 * /network/security_group_rules/<sg uuid>/<rule uuid>   R
 *   One key per rule, so a rule change writes one small key, never its
 *   group and the other rules, and a group's rules are one prefix list (in
 *   creation order: by create_rev). R as Neutron's rule:
 *   {"id", "security_group_id", "direction": "ingress" | "egress",
 *    "ethertype": "IPv4" | "IPv6", "protocol": null | "tcp" | "udp" | "icmp"
 *    | "<number>", "port_range_min": null | n, "port_range_max": null | n,
 *    "remote_ip_prefix": null | "cidr", "remote_group_id": null | "<uuid>",
 *    "remote_address_group_id": null, "normalized_cidr": null | "cidr",
 *    "description", "project_id", "tenant_id", "tags", "revision_number",
 *    "created_at", "updated_at"}
 *   For ICMP, port_range_min is the type and port_range_max the code.
 * /network/sg-rules/<rule uuid>        "<security group uuid>"
 *   Finds a rule's group from its id alone (GET and DELETE
 *   /v2.0/security-group-rules/<id>).
 * /network/sg-rule-keys/<sg uuid>/<fingerprint>   "<rule uuid>"
 *   One per distinct rule of a group (direction, ethertype, protocol
 *   number, ports, remote prefix with 0.0.0.0/0 as none, remote group;
 *   '/' written '_'): created absent, so of two identical creates racing
 *   one wins and the other is told SecurityGroupRuleExists.
 * /network/sg-changes/<sg uuid>        "<RFC 3339 of the last rule change>"
 *   Written by every rule create and delete without a condition (so they
 *   never contend); its version is how many rule changes the group's
 *   revision_number adds to the document's.
 *   A rule create is ONE transaction: the rule, its id key, its fingerprint
 *   (absent before) and the change mark, only while the group's document
 *   (and a remote group's) is the one read; a delete is one too. No crash
 *   leaves a rule without its keys or keys without their rule.
 * /network/sg-deleting/<sg uuid>       the group's last document
 *   A group delete removes the document and writes this in one
 *   transaction, then deletes the group's rules (their keys), the rules of
 *   other groups that name it as remote group, its quota entries, and this
 *   key last. Rules are only ever reached through their group's document,
 *   and a rule naming a remote group shows only while that group stands,
 *   so what a crash leaves in between is never seen (nor counted); the next
 *   group create or delete finishes every such leftover.
 * /network/default-sg/<project_id>     "<security group uuid>"
 *   CAS-absent, so a project gets exactly one "default" group even when its
 *   first two calls race. The default group has Neutron's four rules: egress
 *   IPv4 and IPv6 to anywhere, ingress IPv4 and IPv6 from the group itself.
 *
 * /network/routers/<uuid>
 *   {..., "admin_state_up": true, "status": "ACTIVE",
 *    "external_gateway_info": null | {"network_id", "enable_snat": true,
 *        "external_fixed_ips": [{"subnet_id", "ip_address"}]},
 *    "routes": [], "distributed": false, "ha": false,
 *    "host": "<node>" | null}     -- the node that runs its namespace
 *   Interfaces are ports with device_owner "network:router_interface" and
 *   device_id = router id (holding the subnet's gateway_ip); the gateway is
 *   a port "network:router_gateway" on the external network.
 *
 * /network/floatingips/<uuid>
 *   {..., "floating_network_id", "floating_ip_address", "port_id" | null,
 *    "fixed_ip_address" | null, "router_id" | null, "status": "DOWN" | "ACTIVE",
 *    "port_details": null}
 *
 * /network/nodes/<node>   what an agent told about its node's networking:
 *   {"vtep": "192.0.2.10", "uplink_mtu": 1500, "external_bridge": "br-ex" | null,
 *    "l3": true}   -- l3: it can host router namespaces (has the external bridge)
 *
 * ---------------------------------------------------------------------
 * The node view: what GET /internal/v1/nodes/<node>/network returns to an
 * agent (st_network_node_view), everything it needs to program its node:
 * {"revision": <store revision it was computed at>,
 *  "vtep": "...", "mtu_overhead": 50,
 *  "networks": [{"id", "vni": 1001 | null, "type": "vxlan" | "flat",
 *                "bridge": "stbr-1001" | <the node's external bridge>,
 *                "vxlan": "stvx-1001" | null,
 *                "mtu": 1450, "external": false,
 *                "peers": ["<vtep of another node with ports on it>", ...],
 *                "remote_ports": [{"mac", "ip", "vtep"}]}],  -- l2population
 *  "ports": [{"id", "network_id", "server_id", "mac", "ip", "prefixlen": 24,
 *             "gateway": "10.0.2.1" | null, "mtu": 1450,
 *             "host_routes": [...], "dns_nameservers": [...],
 *             "port_security": true, "security_groups": ["<uuid>"]}],
 *             -- the compute ports of servers placed on this node
 *  "security_groups": {"<uuid>": {"rules": [R, ...],
 *                                 "members": ["10.0.2.5", ...]}},
 *             -- every group a local port uses or a local rule names as
 *                remote_group_id; members = fixed IPs of the group's ports
 *                (for remote_group_id rules)
 *  "routers": [{"id", "snat": true,
 *               "gateway": null | {"ip", "prefixlen", "gateway_ip", "mac",
 *                                  "network_id"},
 *               "interfaces": [{"port_id", "network_id", "vni", "mac", "ip",
 *                               "prefixlen", "cidr", "mtu"}],
 *               "floating_ips": [{"ip", "fixed_ip"}]}],
 *             -- routers whose "host" is this node
 *  "external": null | {"network_id", "cidr", "gateway_ip", "prefixlen"}}
 *             -- the external subnet, whose gateway_ip the agent puts on its
 *                external bridge so the host reaches floating IPs
 * A network is listed when this node hosts one of its ports or one of its
 * routers' interfaces.
 */
#pragma once

#define ST_NETWORK_NETWORKS_PREFIX    "/network/networks/"
#define ST_NETWORK_SUBNETS_PREFIX     "/network/subnets/"
#define ST_NETWORK_PORTS_PREFIX       "/network/ports/"
#define ST_NETWORK_PORT_STATUS_PREFIX "/network/port-status/"
#define ST_NETWORK_IPAM_PREFIX        "/network/ipam/"
#define ST_NETWORK_MACS_PREFIX        "/network/macs/"
#define ST_NETWORK_VNIS_PREFIX        "/network/vnis/"
#define ST_NETWORK_SGS_PREFIX         "/network/security_groups/"
#define ST_NETWORK_SG_RULES_PREFIX    "/network/security_group_rules/"
#define ST_NETWORK_SG_RULE_IDS_PREFIX "/network/sg-rules/"
#define ST_NETWORK_SG_RULE_FPS_PREFIX "/network/sg-rule-keys/"
#define ST_NETWORK_SG_CHANGES_PREFIX  "/network/sg-changes/"
#define ST_NETWORK_SG_DELETING_PREFIX "/network/sg-deleting/"
#define ST_NETWORK_DEFAULT_SG_PREFIX  "/network/default-sg/"
#define ST_NETWORK_ROUTERS_PREFIX     "/network/routers/"
#define ST_NETWORK_FIPS_PREFIX        "/network/floatingips/"
#define ST_NETWORK_NODES_PREFIX       "/network/nodes/"

#define ST_NETWORK_VNI_MIN        1001
#define ST_NETWORK_VNI_MAX        16000000
#define ST_NETWORK_VXLAN_MTU      1450 /* 1500 - 50 bytes of VXLAN over IPv4 */
#define ST_NETWORK_VXLAN_OVERHEAD 50
#define ST_NETWORK_NAME_MAX       255
#define ST_NETWORK_DESC_MAX       255
