/* Nodes and the node view: what each agent tells about its node's
 * networking (VTEP, external bridge, whether it can host routers), which of
 * its ports it has plugged, and the view an agent programs its node from
 * (model.h, the end): its servers' ports, their networks with the other
 * nodes' VTEPs and ports (head-end replication and l2population), their
 * security groups with members, the routers it hosts, and the external
 * subnet.
 *
 * The view reads each prefix once and joins in memory (JSON objects as hash
 * maps), so its cost grows with the store's size, not with the number of
 * lookups per port; the servers are read straight from Nova's documents
 * (spec.host), without linking the compute service. Security-group rules
 * are the exception: one prefix read per group the node needs (model.h),
 * never every rule of every project. */
#include <errno.h>
#include <string.h>

#include "compute/model.h"
#include "lib/cleanup.h"
#include "lib/json.h"
#include "lib/log.h"
#include "lib/uuid.h"
#include "network/l3-priv.h"
#include "network/model.h"
#include "network/network-priv.h"
#include "store/kv.h"

static bool node_name_ok(const char *node)
{
    return l3_id_ok(node) && strlen(node) <= 253;
}

int st_network_node_register(struct st_kv *kv, const char *node, json_t *facts, struct st_err **err)
{
    if (!node_name_ok(node))
        return st_err_set(err, -EINVAL, "invalid node name '%s'", node ? node : "");
    if (!json_is_object(facts))
        return st_err_set(err, -EINVAL, "node network facts must be an object");
    uint32_t addr;
    json_t *vtep = json_object_get(facts, "vtep");
    json_t *mtu = json_object_get(facts, "uplink_mtu");
    json_t *bridge = json_object_get(facts, "external_bridge");
    json_t *l3 = json_object_get(facts, "l3");
    if (vtep && !json_is_null(vtep) && net_ip_parse(json_string_value(vtep), &addr) < 0)
        return st_err_set(err, -EINVAL, "vtep must be an IPv4 address");
    if (mtu &&
        (!json_is_integer(mtu) || json_integer_value(mtu) < 576 || json_integer_value(mtu) > 65535))
        return st_err_set(err, -EINVAL, "uplink_mtu must be an integer 576-65535");
    if (bridge && !json_is_null(bridge) &&
        (!json_is_string(bridge) || json_string_length(bridge) == 0 ||
         json_string_length(bridge) > 15))
        return st_err_set(err, -EINVAL, "external_bridge must be an interface name");
    if (l3 && !json_is_boolean(l3))
        return st_err_set(err, -EINVAL, "l3 must be a boolean");
    bool has_bridge = bridge && json_is_string(bridge);
    st_autoptr(json_t) doc = json_pack(
        "{s:s, s:O, s:I, s:O, s:b}", "name", node, "vtep", vtep ? vtep : json_null(), "uplink_mtu",
        (json_int_t)(mtu ? json_integer_value(mtu) : 1500), "external_bridge",
        has_bridge ? bridge : json_null(), "l3", l3 ? json_is_true(l3) : has_bridge);
    st_autofree char *key = st_sprintf("%s%s", ST_NETWORK_NODES_PREFIX, node);
    /* Agents register at every start: an unchanged report writes nothing,
     * so it wakes no watcher. */
    st_autoptr(st_kv_entry) e = NULL;
    st_autoptr(json_t) old = NULL;
    if (st_kv_get(kv, key, &e, NULL) == 0 &&
        st_json_parse_object(e->value, e->value_len, &old, NULL) == 0 && json_equal(old, doc))
        return 0;
    st_autofree char *text = st_json_dumps(doc);
    int r = st_kv_put(kv, key, text, strlen(text), ST_KV_ANY, NULL, err);
    if (r < 0)
        return st_err_prefix(err, r, "storing the network facts of node %s", node);
    st_log_info("network_node_register", "node=%s vtep=%s l3=%s", node,
                json_string_value(vtep) ? json_string_value(vtep) : "-",
                json_is_true(json_object_get(doc, "l3")) ? "true" : "false");
    return 0;
}

int st_network_port_status_report(struct st_kv *kv, const char *node, json_t *ports,
                                  struct st_err **err)
{
    if (!node_name_ok(node))
        return st_err_set(err, -EINVAL, "invalid node name '%s'", node ? node : "");
    if (!json_is_object(ports))
        return st_err_set(err, -EINVAL, "port status must be an object");
    const char *id;
    json_t *v;
    json_object_foreach(ports, id, v)
    {
        const char *s = json_string_value(v);
        if (!st_uuid_valid(id) ||
            !(l3_streq(s, "ACTIVE") || l3_streq(s, "DOWN") || l3_streq(s, "ERROR")))
            return st_err_set(err, -EINVAL, "port %s: status must be ACTIVE, DOWN or ERROR", id);
    }
    st_autoptr(json_t) known = NULL;
    int r = net_doc_list(kv, ST_NETWORK_PORT_STATUS_PREFIX, &known, err);
    if (r < 0)
        return r;
    st_autoptr(json_t) by_id = json_object();
    size_t i;
    json_t *doc;
    json_array_foreach(known, i, doc)
    {
        if (l3_str(doc, "port_id"))
            json_object_set(by_id, l3_str(doc, "port_id"), doc);
    }
    char now[32];
    l3_now(now);
    json_object_foreach(ports, id, v)
    {
        json_t *old = json_object_get(by_id, id);
        if (old && l3_streq(l3_str(old, "status"), json_string_value(v)) &&
            l3_streq(l3_str(old, "host"), node))
            continue; /* unchanged: no write, no wake-up */
        st_autoptr(json_t) status =
            json_pack("{s:s, s:O, s:s, s:s}", "port_id", id, "status", v, "host", node, "at", now);
        st_autofree char *key = st_sprintf("%s%s", ST_NETWORK_PORT_STATUS_PREFIX, id);
        st_autofree char *text = st_json_dumps(status);
        if ((r = st_kv_put(kv, key, text, strlen(text), ST_KV_ANY, NULL, err)) < 0)
            return st_err_prefix(err, r, "storing the status of port %s", id);
    }
    return 0;
}

/* ---- the view ---- */

struct view {
    const char *node;
    const char *vtep;                       /* this node's, or NULL */
    json_t *nodes;                          /* name → facts */
    json_t *server_host;                    /* server id → spec.host */
    json_t *nets, *subnets, *routers, *sgs; /* id → document */
    json_t *ports, *fips;                   /* arrays */
};

/* Reads a prefix into an object id → document (id_key names the id). */
static int load_map(struct st_kv *kv, const char *prefix, const char *id_key, json_t **ret,
                    struct st_err **err)
{
    st_autoptr(json_t) all = NULL;
    int r = net_doc_list(kv, prefix, &all, err);
    if (r < 0)
        return r;
    json_t *map = json_object();
    size_t i;
    json_t *doc;
    json_array_foreach(all, i, doc)
    {
        if (l3_str(doc, id_key))
            json_object_set(map, l3_str(doc, id_key), doc);
    }
    *ret = map;
    return 0;
}

/* The node a port's packets live on: its server's, or its router's. */
static const char *port_host(struct view *v, json_t *port)
{
    const char *owner = l3_str(port, "device_owner"), *device = l3_str(port, "device_id");
    if (!device || !*device)
        return NULL;
    if (owner && strncmp(owner, "network:", 8) == 0) {
        if (l3_streq(owner, L3_OWNER_INTERFACE) || l3_streq(owner, L3_OWNER_GATEWAY))
            return l3_str(json_object_get(v->routers, device), "host");
        return NULL;
    }
    return json_string_value(json_object_get(v->server_host, device));
}

static const char *node_vtep(struct view *v, const char *node)
{
    return l3_str(json_object_get(v->nodes, node), "vtep");
}

static json_t *first_fixed(json_t *port)
{
    return json_array_get(json_object_get(port, "fixed_ips"), 0);
}

static int prefixlen_of(json_t *subnet)
{
    uint32_t addr;
    int len = 0;
    if (net_cidr_parse(l3_str(subnet, "cidr"), &addr, &len) < 0)
        return -1;
    return len;
}

static json_t *opt_str(const char *s)
{
    return s ? json_string(s) : json_null();
}

/* A borrowed value for json_pack's "O", null when absent. */
static json_t *val(json_t *v)
{
    return v ? v : json_null();
}

static json_int_t mtu_of(json_t *net)
{
    json_int_t mtu = json_integer_value(json_object_get(net, "mtu"));
    return mtu > 0 ? mtu : ST_NETWORK_VXLAN_MTU;
}

static json_t *opt_int(int n)
{
    return n >= 0 ? json_integer(n) : json_null();
}

static json_t *network_entry(struct view *v, json_t *net, json_t *hosts, json_t *remote_ports)
{
    json_t *vni = json_object_get(net, "provider:segmentation_id");
    bool flat = l3_streq(l3_str(net, "provider:network_type"), "flat");
    const char *bridge =
        flat ? l3_str(json_object_get(v->nodes, v->node), "external_bridge") : NULL;
    json_t *peers = json_array();
    const char *host;
    json_t *unused;
    json_object_foreach(hosts, host, unused)
    {
        const char *vtep = node_vtep(v, host);
        bool seen = false;
        size_t i;
        json_t *p;
        json_array_foreach(peers, i, p)
        {
            seen = seen || l3_streq(json_string_value(p), vtep);
        }
        if (!flat && vtep && !l3_streq(host, v->node) && !l3_streq(vtep, v->vtep) && !seen)
            json_array_append_new(peers, json_string(vtep));
    }
    json_t *entry = json_pack(
        "{s:O, s:O, s:s, s:o, s:o, s:I, s:b, s:o, s:o}", "id", val(json_object_get(net, "id")),
        "vni", flat || !vni ? json_null() : vni, "type", flat ? "flat" : "vxlan", "bridge",
        flat ? opt_str(bridge) : json_sprintf("stbr-%lld", (long long)json_integer_value(vni)),
        "vxlan", flat ? json_null() : json_sprintf("stvx-%lld", (long long)json_integer_value(vni)),
        "mtu", mtu_of(net), "external", json_is_true(json_object_get(net, "router:external")),
        "peers", peers, "remote_ports",
        flat || !remote_ports ? json_array() : json_deep_copy(remote_ports));
    return entry;
}

static json_t *port_entry(struct view *v, json_t *port)
{
    json_t *fixed = first_fixed(port);
    json_t *subnet = json_object_get(v->subnets, l3_str(fixed, "subnet_id") ?: "");
    json_t *net = json_object_get(v->nets, l3_str(port, "network_id") ?: "");
    json_t *routes = json_object_get(subnet, "host_routes");
    json_t *dns = json_object_get(subnet, "dns_nameservers");
    json_t *sgs = json_object_get(port, "security_groups");
    json_t *security = json_object_get(port, "port_security_enabled");
    return json_pack(
        "{s:O, s:O, s:O, s:O, s:o, s:o, s:o, s:I, s:o, s:o, s:b, s:o}", "id",
        val(json_object_get(port, "id")), "network_id", val(json_object_get(port, "network_id")),
        "server_id", val(json_object_get(port, "device_id")), "mac",
        val(json_object_get(port, "mac_address")), "ip", opt_str(l3_str(fixed, "ip_address")),
        "prefixlen", opt_int(subnet ? prefixlen_of(subnet) : -1), "gateway",
        opt_str(l3_str(subnet, "gateway_ip")), "mtu", mtu_of(net), "host_routes",
        routes ? json_deep_copy(routes) : json_array(), "dns_nameservers",
        dns ? json_deep_copy(dns) : json_array(), "port_security",
        !security || json_is_true(security), "security_groups",
        sgs ? json_deep_copy(sgs) : json_array());
}

/* Adds group id (when it exists and is not there yet) to out with its
 * rules, read with one prefix list. */
static int add_group(struct st_kv *kv, struct view *v, const char *id, json_t *out,
                     struct st_err **err)
{
    json_t *doc = json_object_get(v->sgs, id ? id : "");
    if (!doc || json_object_get(out, id))
        return 0;
    json_t *rules = NULL;
    int r = l3_sg_rules_read(kv, doc, &rules, err);
    if (r < 0)
        return r;
    json_object_set_new(out, id, json_pack("{s:o, s:[]}", "rules", rules, "members"));
    return 0;
}

/* Fills the members of the groups in out: the fixed IPs of their ports, on
 * any node. */
static void add_members(struct view *v, json_t *out)
{
    size_t i, j;
    json_t *port, *sg;
    json_array_foreach(v->ports, i, port)
    {
        json_array_foreach(json_object_get(port, "security_groups"), j, sg)
        {
            json_t *members =
                json_object_get(json_object_get(out, json_string_value(sg) ?: ""), "members");
            size_t k;
            json_t *fixed;
            json_array_foreach(json_object_get(port, "fixed_ips"), k, fixed)
            {
                if (members && l3_str(fixed, "ip_address"))
                    json_array_append(members, json_object_get(fixed, "ip_address"));
            }
        }
    }
}

/* Every group a local port uses, and the remote groups their rules name;
 * members: the fixed IPs of the ports (on any node) in each group. */
static int security_groups(struct st_kv *kv, struct view *v, json_t *local_ports, json_t **ret,
                           struct st_err **err)
{
    st_autoptr(json_t) out = json_object();
    size_t i, j;
    json_t *port, *sg;
    int r;
    json_array_foreach(local_ports, i, port)
    {
        json_array_foreach(json_object_get(port, "security_groups"), j, sg)
        {
            if ((r = add_group(kv, v, json_string_value(sg), out, err)) < 0)
                return r;
        }
    }
    st_autoptr(json_t) remote = json_object();
    const char *id;
    json_t *entry, *rule;
    json_object_foreach(out, id, entry)
    {
        json_array_foreach(json_object_get(entry, "rules"), i, rule)
        {
            const char *rg = l3_str(rule, "remote_group_id");
            if (rg && !json_object_get(out, rg))
                json_object_set_new(remote, rg, json_true());
        }
    }
    json_t *unused;
    json_object_foreach(remote, id, unused)
    {
        if ((r = add_group(kv, v, id, out, err)) < 0)
            return r;
    }
    add_members(v, out);
    *ret = st_steal(&out);
    return 0;
}

static json_t *router_entry(struct view *v, json_t *router, json_t *ports_by_device)
{
    const char *id = l3_str(router, "id");
    json_t *egi = json_object_get(router, "external_gateway_info");
    json_t *gateway = json_null(), *interfaces = json_array(), *fips = json_array();
    size_t i;
    json_t *port;
    json_array_foreach(json_object_get(ports_by_device, id), i, port)
    {
        json_t *fixed = first_fixed(port);
        json_t *subnet = json_object_get(v->subnets, l3_str(fixed, "subnet_id") ?: "");
        json_t *net = json_object_get(v->nets, l3_str(port, "network_id") ?: "");
        if (l3_streq(l3_str(port, "device_owner"), L3_OWNER_GATEWAY) && json_is_object(egi)) {
            json_decref(gateway);
            gateway =
                json_pack("{s:o, s:o, s:o, s:O, s:O}", "ip", opt_str(l3_str(fixed, "ip_address")),
                          "prefixlen", opt_int(subnet ? prefixlen_of(subnet) : -1), "gateway_ip",
                          opt_str(l3_str(subnet, "gateway_ip")), "mac",
                          val(json_object_get(port, "mac_address")), "network_id",
                          val(json_object_get(port, "network_id")));
        } else if (l3_streq(l3_str(port, "device_owner"), L3_OWNER_INTERFACE)) {
            json_t *vni = json_object_get(net, "provider:segmentation_id");
            json_array_append_new(
                interfaces, json_pack("{s:O, s:O, s:O, s:O, s:o, s:o, s:o, s:I}", "port_id",
                                      val(json_object_get(port, "id")), "network_id",
                                      val(json_object_get(port, "network_id")), "vni", val(vni),
                                      "mac", val(json_object_get(port, "mac_address")), "ip",
                                      opt_str(l3_str(fixed, "ip_address")), "prefixlen",
                                      opt_int(subnet ? prefixlen_of(subnet) : -1), "cidr",
                                      opt_str(l3_str(subnet, "cidr")), "mtu", mtu_of(net)));
        }
    }
    json_t *fip;
    json_array_foreach(v->fips, i, fip)
    {
        if (l3_streq(l3_str(fip, "router_id"), id) && l3_str(fip, "fixed_ip_address"))
            json_array_append_new(fips, json_pack("{s:O, s:O}", "ip",
                                                  val(json_object_get(fip, "floating_ip_address")),
                                                  "fixed_ip",
                                                  val(json_object_get(fip, "fixed_ip_address"))));
    }
    bool snat = json_is_object(egi) && !json_is_false(json_object_get(egi, "enable_snat"));
    return json_pack("{s:s, s:b, s:o, s:o, s:o}", "id", id, "snat", snat, "gateway", gateway,
                     "interfaces", interfaces, "floating_ips", fips);
}

/* The external subnet: of the first local router's gateway, else (on a node
 * with an external bridge) of the first external network. */
static json_t *external_entry(struct view *v, json_t *local_routers)
{
    const char *net_id = NULL;
    size_t i;
    json_t *r;
    json_array_foreach(local_routers, i, r)
    {
        if (!net_id)
            net_id = l3_str(json_object_get(r, "gateway"), "network_id");
    }
    const char *key;
    json_t *net;
    if (!net_id && l3_str(json_object_get(v->nodes, v->node), "external_bridge")) {
        json_object_foreach(v->nets, key, net)
        {
            if (!net_id && json_is_true(json_object_get(net, "router:external")))
                net_id = key;
        }
    }
    net = json_object_get(v->nets, net_id ? net_id : "");
    const char *subnet_id = json_string_value(json_array_get(json_object_get(net, "subnets"), 0));
    json_t *subnet = json_object_get(v->subnets, subnet_id ? subnet_id : "");
    if (!subnet)
        return json_null();
    return json_pack("{s:s, s:O, s:o, s:o}", "network_id", net_id, "cidr",
                     val(json_object_get(subnet, "cidr")), "gateway_ip",
                     opt_str(l3_str(subnet, "gateway_ip")), "prefixlen",
                     opt_int(prefixlen_of(subnet)));
}

static void view_free(struct view *v)
{
    json_decref(v->nodes);
    json_decref(v->server_host);
    json_decref(v->nets);
    json_decref(v->subnets);
    json_decref(v->routers);
    json_decref(v->sgs);
    json_decref(v->ports);
    json_decref(v->fips);
}

static int view_load(struct st_kv *kv, struct view *v, struct st_err **err)
{
    st_autoptr(json_t) servers = NULL;
    int r;
    if ((r = load_map(kv, ST_NETWORK_NODES_PREFIX, "name", &v->nodes, err)) < 0 ||
        (r = net_doc_list(kv, ST_COMPUTE_SERVERS_PREFIX, &servers, err)) < 0 ||
        (r = load_map(kv, ST_NETWORK_NETWORKS_PREFIX, "id", &v->nets, err)) < 0 ||
        (r = load_map(kv, ST_NETWORK_SUBNETS_PREFIX, "id", &v->subnets, err)) < 0 ||
        (r = load_map(kv, ST_NETWORK_ROUTERS_PREFIX, "id", &v->routers, err)) < 0 ||
        (r = load_map(kv, ST_NETWORK_SGS_PREFIX, "id", &v->sgs, err)) < 0 ||
        (r = net_doc_list(kv, ST_NETWORK_PORTS_PREFIX, &v->ports, err)) < 0 ||
        (r = net_doc_list(kv, ST_NETWORK_FIPS_PREFIX, &v->fips, err)) < 0)
        return r;
    v->server_host = json_object();
    size_t i;
    json_t *server;
    json_array_foreach(servers, i, server)
    {
        json_t *host = json_object_get(json_object_get(server, "spec"), "host");
        if (l3_str(server, "id") && json_is_string(host))
            json_object_set(v->server_host, l3_str(server, "id"), host);
    }
    v->vtep = node_vtep(v, v->node);
    return 0;
}

int st_network_node_view(struct st_kv *kv, const char *node, json_t **ret, struct st_err **err)
{
    if (!node_name_ok(node))
        return st_err_set(err, -EINVAL, "invalid node name '%s'", node ? node : "");
    /* Taken first: whatever changes while the view is read is after it, so
     * an agent watching from here misses nothing. */
    int64_t revision = st_kv_revision(kv);
    struct view v = {.node = node};
    int r = view_load(kv, &v, err);
    if (r < 0) {
        view_free(&v);
        return st_err_prefix(err, r, "computing the network view of node %s", node);
    }
    /* One pass over the ports: which nodes each network spans, the ports
     * each network has elsewhere, this node's ports, ports by device. */
    st_autoptr(json_t) net_hosts = json_object();
    st_autoptr(json_t) remote_ports = json_object();
    st_autoptr(json_t) by_device = json_object();
    st_autoptr(json_t) local_ports = json_array();
    size_t i;
    json_t *port;
    json_array_foreach(v.ports, i, port)
    {
        const char *host = port_host(&v, port), *net_id = l3_str(port, "network_id");
        const char *device = l3_str(port, "device_id");
        if (device && *device) {
            if (!json_object_get(by_device, device))
                json_object_set_new(by_device, device, json_array());
            json_array_append(json_object_get(by_device, device), port);
        }
        if (!host || !net_id)
            continue;
        if (!json_object_get(net_hosts, net_id))
            json_object_set_new(net_hosts, net_id, json_object());
        json_object_set_new(json_object_get(net_hosts, net_id), host, json_true());
        const char *owner = l3_str(port, "device_owner");
        bool compute = !owner || strncmp(owner, "network:", 8) != 0;
        if (l3_streq(host, v.node)) {
            if (compute)
                json_array_append(local_ports, port);
            continue;
        }
        const char *vtep = node_vtep(&v, host);
        const char *ip = l3_str(first_fixed(port), "ip_address");
        if (!vtep || l3_streq(vtep, v.vtep) || !l3_str(port, "mac_address"))
            continue;
        if (!json_object_get(remote_ports, net_id))
            json_object_set_new(remote_ports, net_id, json_array());
        json_array_append_new(json_object_get(remote_ports, net_id),
                              json_pack("{s:O, s:o, s:s}", "mac",
                                        val(json_object_get(port, "mac_address")), "ip",
                                        opt_str(ip), "vtep", vtep));
    }

    json_t *networks = json_array(), *ports = json_array(), *routers = json_array();
    const char *net_id;
    json_t *net;
    json_object_foreach(v.nets, net_id, net)
    {
        json_t *hosts = json_object_get(net_hosts, net_id);
        if (json_object_get(hosts, node))
            json_array_append_new(
                networks, network_entry(&v, net, hosts, json_object_get(remote_ports, net_id)));
    }
    json_array_foreach(local_ports, i, port)
    {
        json_array_append_new(ports, port_entry(&v, port));
    }
    const char *router_id;
    json_t *router;
    json_object_foreach(v.routers, router_id, router)
    {
        if (l3_streq(l3_str(router, "host"), node))
            json_array_append_new(routers, router_entry(&v, router, by_device));
    }
    json_t *external = external_entry(&v, routers);
    json_t *sgs = NULL;
    if ((r = security_groups(kv, &v, local_ports, &sgs, err)) < 0) {
        json_decref(networks);
        json_decref(ports);
        json_decref(routers);
        json_decref(external);
        view_free(&v);
        return st_err_prefix(err, r, "computing the network view of node %s", node);
    }
    *ret = json_pack("{s:I, s:o, s:i, s:o, s:o, s:o, s:o, s:o}", "revision", (json_int_t)revision,
                     "vtep", opt_str(v.vtep), "mtu_overhead", ST_NETWORK_VXLAN_OVERHEAD, "networks",
                     networks, "ports", ports, "security_groups", sgs, "routers", routers,
                     "external", external);
    view_free(&v);
    return 0;
}
