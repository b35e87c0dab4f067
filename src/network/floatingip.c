/* Floating IPs: an address of an external network's subnet, held by a
 * "network:floatingip" port (so IPAM never gives it to anyone else), and
 * optionally associated with a fixed address of a port. An association
 * goes through a router: one with its gateway on the floating IP's network
 * and an interface on the port's subnet, which then does the DNAT (the node
 * view lists a router's floating IPs). */
#include <errno.h>
#include <string.h>

#include "lib/cleanup.h"
#include "lib/json.h"
#include "lib/log.h"
#include "network/l3-priv.h"
#include "network/model.h"
#include "network/network-priv.h"
#include "network/quota.h"
#include "store/kv.h"

static int not_found(const char *id, struct st_err **err)
{
    st_err_clear(err);
    return st_err_set(err, -ENOENT, "Floating IP %s could not be found", id ? id : "");
}

static int read_fip(struct st_kv *kv, const struct st_network_caller *who, const char *id,
                    json_t **ret, int64_t *ret_rev, struct st_err **err)
{
    int r = l3_id_ok(id)
                ? net_doc_get_visible(kv, who, ST_NETWORK_FIPS_PREFIX, id, ret, ret_rev, err)
                : -ENOENT;
    return r == -ENOENT ? not_found(id, err) : r;
}

static const struct net_doc_kind fip_kind = {ST_NETWORK_FIPS_PREFIX, read_fip, L3_CAS_ATTEMPTS,
                                             -ECANCELED, "floating IP"};

/* The port's IPv4 address to associate: `want`, or its only one. */
static int pick_fixed_ip(json_t *port, const char *want, const char **ret_ip,
                         const char **ret_subnet, struct st_err **err)
{
    const char *port_id = l3_str(port, "id");
    int count = 0;
    size_t i;
    json_t *fixed;
    json_array_foreach(json_object_get(port, "fixed_ips"), i, fixed)
    {
        uint32_t addr;
        const char *ip = l3_str(fixed, "ip_address");
        if (net_ip_parse(ip, &addr) < 0 || (want && !l3_streq(ip, want)))
            continue;
        if (count++ == 0) {
            *ret_ip = ip;
            *ret_subnet = l3_str(fixed, "subnet_id");
        }
    }
    if (want && count == 0)
        return st_err_set(err, -EINVAL,
                          "Bad floatingip request: Port %s does not have fixed ip %s.", port_id,
                          want);
    if (count == 0)
        return st_err_set(err, -EINVAL,
                          "Bad floatingip request: Port %s does not have any IPv4 address.",
                          port_id);
    if (count > 1)
        return st_err_set(err, -EINVAL,
                          "Bad floatingip request: Port %s has multiple fixed IPv4 addresses.  "
                          "Must provide a specific IPv4 address when assigning a floating IP.",
                          port_id);
    return 0;
}

/* The router that reaches external network net_id from subnet_id: its
 * gateway on the network and an interface on the subnet. */
static int find_router(struct st_kv *kv, const char *net_id, const char *subnet_id,
                       char **ret_router, struct st_err **err)
{
    st_autoptr(json_t) routers = NULL;
    st_autoptr(json_t) ports = NULL;
    int r;
    if ((r = net_doc_list(kv, ST_NETWORK_ROUTERS_PREFIX, &routers, err)) < 0 ||
        (r = net_doc_list(kv, ST_NETWORK_PORTS_PREFIX, &ports, err)) < 0)
        return r;
    size_t i, j;
    json_t *router, *port;
    json_array_foreach(routers, i, router)
    {
        const char *gw_net = l3_str(json_object_get(router, "external_gateway_info"), "network_id");
        if (!l3_streq(gw_net, net_id))
            continue;
        json_array_foreach(ports, j, port)
        {
            if (l3_is_router_port(port, l3_str(router, "id"), L3_OWNER_INTERFACE) &&
                l3_port_has_subnet(port, subnet_id)) {
                *ret_router = st_strdup(l3_str(router, "id"));
                return 0;
            }
        }
    }
    return -ENOENT;
}

/* Associates doc (a floating IP, its address known) with req's port_id and
 * fixed_ip_address, as Neutron checks it. */
static int associate(struct st_kv *kv, const struct st_network_caller *who, json_t *doc,
                     json_t *req, struct st_err **err)
{
    const char *port_id = l3_str(req, "port_id"), *fip_id = l3_str(doc, "id");
    const char *net_id = l3_str(doc, "floating_network_id");
    st_autoptr(json_t) port = NULL;
    int r = net_doc_get_visible(kv, who, ST_NETWORK_PORTS_PREFIX, port_id, &port, NULL, err);
    if (r == -ENOENT)
        return st_err_set(err, -ENOENT, "Port %s could not be found.", port_id);
    if (r < 0)
        return r;
    const char *ip = NULL, *subnet_id = NULL;
    if ((r = pick_fixed_ip(port, l3_str(req, "fixed_ip_address"), &ip, &subnet_id, err)) < 0)
        return r;
    st_autofree char *router_id = NULL;
    r = find_router(kv, net_id, subnet_id, &router_id, err);
    if (r == -ENOENT)
        return st_err_set(err, -ENOENT,
                          "External network %s is not reachable from subnet %s.  Therefore, "
                          "cannot associate Port %s with a Floating IP.",
                          net_id, subnet_id, port_id);
    if (r < 0)
        return r;
    st_autoptr(json_t) fips = NULL;
    if ((r = net_doc_list(kv, ST_NETWORK_FIPS_PREFIX, &fips, err)) < 0)
        return r;
    size_t i;
    json_t *other;
    json_array_foreach(fips, i, other)
    {
        if (!l3_streq(l3_str(other, "id"), fip_id) && l3_streq(l3_str(other, "port_id"), port_id) &&
            l3_streq(l3_str(other, "fixed_ip_address"), ip) &&
            l3_streq(l3_str(other, "floating_network_id"), net_id))
            return st_err_set(err, -EBUSY,
                              "Cannot associate floating IP %s (%s) with port %s using fixed IP "
                              "%s, as that fixed IP already has a floating IP on external "
                              "network %s.",
                              l3_str(doc, "floating_ip_address"), fip_id, port_id, ip, net_id);
    }
    json_object_set_new(doc, "port_id", json_string(port_id));
    json_object_set_new(doc, "fixed_ip_address", json_string(ip));
    json_object_set_new(doc, "router_id", json_string(router_id));
    json_object_set_new(doc, "status", json_string("ACTIVE"));
    return 0;
}

static void disassociate(json_t *doc)
{
    json_object_set_new(doc, "port_id", json_null());
    json_object_set_new(doc, "fixed_ip_address", json_null());
    json_object_set_new(doc, "router_id", json_null());
    json_object_set_new(doc, "status", json_string("DOWN"));
}

static int check_request(json_t *req, struct st_err **err)
{
    if (!json_is_object(req))
        return st_err_set(err, -EINVAL, "Invalid input: floatingip must be an object.");
    static const char *const ids[] = {
        "port_id",  "fixed_ip_address", "description", "floating_ip_address", "floating_network_id",
        "subnet_id"};
    for (size_t i = 0; i < ST_ARRAY_SIZE(ids); i++) {
        json_t *v = json_object_get(req, ids[i]);
        if (v && !json_is_null(v) &&
            (!json_is_string(v) || json_string_length(v) > ST_NETWORK_DESC_MAX))
            return st_err_set(err, -EINVAL, "Invalid input for %s. Reason: not a valid string.",
                              ids[i]);
    }
    return 0;
}

/* The external network's subnet to take the address from. */
static int pick_subnet(json_t *net, const char *want, const char **ret, struct st_err **err)
{
    const char *net_id = l3_str(net, "id");
    size_t i;
    json_t *s;
    json_array_foreach(json_object_get(net, "subnets"), i, s)
    {
        if (!want || l3_streq(json_string_value(s), want)) {
            *ret = json_string_value(s);
            return 0;
        }
    }
    if (want)
        return st_err_set(err, -EINVAL, "Bad floatingip request: Subnet %s is not on network %s.",
                          want, net_id);
    return st_err_set(err, -EINVAL,
                      "Bad floatingip request: Network %s does not contain any IPv4 subnet.",
                      net_id);
}

int st_floatingip_create(struct st_kv *kv, const struct st_network_caller *who, json_t *req,
                         json_t **ret, struct st_err **err)
{
    int r = check_request(req, err);
    if (r < 0)
        return r;
    const char *net_id = l3_str(req, "floating_network_id");
    if (!net_id)
        return st_err_set(err, -EINVAL,
                          "Failed to parse request. Required attribute "
                          "'floating_network_id' not specified");
    const char *want_ip = l3_str(req, "floating_ip_address");
    if (want_ip && !who->is_admin)
        return st_err_set(err, -EPERM, "Only admins may choose a floating IP address.");
    const char *project = NULL;
    if ((r = l3_owner(who, req, "a floating IP", &project, err)) < 0)
        return r;
    st_autoptr(json_t) net = NULL;
    r = net_doc_get(kv, ST_NETWORK_NETWORKS_PREFIX, net_id, &net, NULL, err);
    if (r == -ENOENT)
        return st_err_set(err, -ENOENT, "Network %s could not be found.", net_id);
    if (r < 0)
        return r;
    if (!json_is_true(json_object_get(net, "router:external")))
        return st_err_set(err, -EINVAL,
                          "Bad floatingip request: Network %s is not a valid external network.",
                          net_id);
    const char *subnet_id = NULL;
    if ((r = pick_subnet(net, l3_str(req, "subnet_id"), &subnet_id, err)) < 0)
        return r;

    st_autoptr(json_t) doc = net_doc_new(project, "");
    json_object_del(doc, "name");
    const char *id = l3_str(doc, "id");
    if ((r = st_network_quota_claim(kv, project, ST_NETWORK_QUOTA_FLOATINGIP, id, err)) < 0)
        return r;
    st_autoptr(json_t) port = NULL;
    if ((r = net_port_create_internal(kv, "", net_id, subnet_id, want_ip, id, L3_OWNER_FLOATINGIP,
                                      &port, err)) < 0) {
        st_network_quota_release_one(kv, project, ST_NETWORK_QUOTA_FLOATINGIP, id);
        return st_err_prefix(err, r, "creating a floating IP");
    }
    const char *port_id = l3_str(port, "id");
    json_object_update_new(
        doc, json_pack("{s:s, s:O, s:n, s:n, s:n, s:s, s:n, s:[], s:s}", "floating_network_id",
                       net_id, "floating_ip_address",
                       json_object_get(json_array_get(json_object_get(port, "fixed_ips"), 0),
                                       "ip_address"),
                       "port_id", "fixed_ip_address", "router_id", "status", "DOWN", "port_details",
                       "port_forwardings", "_port", port_id));
    if (l3_str(req, "description"))
        json_object_set_new(doc, "description", json_string(l3_str(req, "description")));
    if (l3_str(req, "port_id"))
        r = associate(kv, who, doc, req, err);
    if (r == 0)
        r = net_doc_put(kv, ST_NETWORK_FIPS_PREFIX, doc, ST_KV_ABSENT, err);
    if (r < 0) {
        net_port_delete_internal(kv, port_id, NULL);
        st_network_quota_release_one(kv, project, ST_NETWORK_QUOTA_FLOATINGIP, id);
        return r;
    }
    st_log_info("floatingip_create", "id=%s ip=%s port=%s", id, l3_str(doc, "floating_ip_address"),
                l3_str(doc, "port_id") ? l3_str(doc, "port_id") : "-");
    if (ret)
        *ret = net_public(doc);
    return 0;
}

int st_floatingip_get(struct st_kv *kv, const struct st_network_caller *who, const char *id,
                      json_t **ret, struct st_err **err)
{
    return net_doc_show(kv, who, &fip_kind, id, ret, err);
}

int st_floatingip_list(struct st_kv *kv, const struct st_network_caller *who, json_t *filters,
                       json_t **ret, struct st_err **err)
{
    return net_doc_list_visible(kv, who, ST_NETWORK_FIPS_PREFIX, filters, ret, err);
}

int st_floatingip_by_port(struct st_kv *kv, json_t **ret, struct st_err **err)
{
    st_autoptr(json_t) docs = NULL;
    int r = net_doc_list(kv, ST_NETWORK_FIPS_PREFIX, &docs, err);
    if (r < 0)
        return r;
    json_t *map = json_object();
    size_t i;
    json_t *doc;
    json_array_foreach(docs, i, doc)
    {
        const char *port = l3_str(doc, "port_id"), *addr = l3_str(doc, "floating_ip_address");
        if (port && addr)
            json_object_set_new(map, port, json_string(addr));
    }
    *ret = map;
    return 0;
}

static int apply_update(struct st_kv *kv, const struct st_network_caller *who, json_t *doc,
                        json_t *req, struct st_err **err)
{
    json_t *port = json_object_get(req, "port_id");
    int r;
    if (port && json_is_null(port))
        disassociate(doc);
    else if (port && (r = associate(kv, who, doc, req, err)) < 0)
        return r;
    if (l3_str(req, "description"))
        json_object_set_new(doc, "description", json_string(l3_str(req, "description")));
    return 0;
}

int st_floatingip_update(struct st_kv *kv, const struct st_network_caller *who, const char *id,
                         json_t *req, json_t **ret, struct st_err **err)
{
    int r = check_request(req, err);
    if (r < 0)
        return r;
    st_autoptr(json_t) doc = NULL;
    if ((r = net_doc_update(kv, who, &fip_kind, id, req, apply_update, &doc, err)) < 0)
        return r;
    st_log_info("floatingip_update", "id=%s port=%s", id,
                l3_str(doc, "port_id") ? l3_str(doc, "port_id") : "-");
    if (ret)
        *ret = net_public(doc);
    return 0;
}

int st_floatingip_delete(struct st_kv *kv, const struct st_network_caller *who, const char *id,
                         struct st_err **err)
{
    for (int attempt = 0; attempt < L3_CAS_ATTEMPTS; attempt++) {
        st_autoptr(json_t) doc = NULL;
        int64_t rev = 0;
        int r = read_fip(kv, who, id, &doc, &rev, err);
        if (r < 0)
            return r;
        st_autofree char *key = st_sprintf("%s%s", ST_NETWORK_FIPS_PREFIX, id);
        r = st_kv_delete(kv, key, rev, NULL, err);
        if (r == -ECANCELED) {
            st_err_clear(err);
            continue;
        }
        if (r == -ENOENT)
            return not_found(id, err);
        if (r < 0)
            return st_err_prefix(err, r, "deleting floating IP %s", id);
        st_network_quota_release_one(kv, l3_str(doc, "project_id"), ST_NETWORK_QUOTA_FLOATINGIP,
                                     id);
        const char *port_id = l3_str(doc, "_port");
        if (port_id && (r = net_port_delete_internal(kv, port_id, err)) < 0 && r != -ENOENT)
            return st_err_prefix(err, r, "releasing floating IP %s", id);
        st_err_clear(err);
        st_log_info("floatingip_delete", "id=%s", id);
        return 0;
    }
    return st_err_set(err, -ECANCELED, "floating IP %s kept changing; try again", id);
}
