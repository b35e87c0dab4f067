/* Routers: the documents, the external gateway (a "network:router_gateway"
 * port on an external network, SNAT on by default) and the interfaces
 * (ports with device_owner "network:router_interface" holding a subnet's
 * gateway address). A router runs on one node, its "host": the running node
 * that reported l3 (it has the external bridge) hosting the fewest routers,
 * chosen when the router is made or first used and kept while that node
 * runs; router_ha.c moves it when the node stops. Interfaces are in
 * router_interface.c. */
#include <errno.h>
#include <string.h>

#include "compute/model.h"
#include "compute/node.h" /* ST_COMPUTE_NODE_LEASE_DEFAULT only: compute is not linked */
#include "lib/cleanup.h"
#include "lib/json.h"
#include "lib/log.h"
#include "lib/times.h"
#include "network/l3-priv.h"
#include "network/model.h"
#include "network/network-priv.h"
#include "network/quota.h"
#include "store/kv.h"

#define OWNER_INTERFACE L3_OWNER_INTERFACE
#define OWNER_GATEWAY   L3_OWNER_GATEWAY

static int not_found(const char *id, struct st_err **err)
{
    st_err_clear(err);
    return st_err_set(err, -ENOENT, "Router %s could not be found.", id ? id : "");
}

int l3_router_read(struct st_kv *kv, const struct st_network_caller *who, const char *id,
                   json_t **ret, int64_t *ret_rev, struct st_err **err)
{
    int r = l3_id_ok(id)
                ? net_doc_get_visible(kv, who, ST_NETWORK_ROUTERS_PREFIX, id, ret, ret_rev, err)
                : -ENOENT;
    return r == -ENOENT ? not_found(id, err) : r;
}

static const struct net_doc_kind router_kind = {ST_NETWORK_ROUTERS_PREFIX, l3_router_read,
                                                L3_CAS_ATTEMPTS, -ECANCELED, "router"};

/* ---- the host ------------------------------------------------------------
 * A node can run routers while it reported l3 (/network/nodes/<node>) and
 * its lease holds: the node document the compute side keeps
 * (/compute/nodes/<node>, compute/model.h) is read here as a document, the
 * way the node view reads servers, so the network service still links no
 * compute code. A node without one has no lease: it is not running. */

static bool lease_holds(json_t *node, int64_t now_ms)
{
    /* st_compute_node_alive's rule, on the same fields */
    const char *hb = l3_str(node, "heartbeat_at");
    int64_t at = 0;
    if (!hb || st_time_parse_rfc3339(hb, &at) < 0)
        return false;
    json_int_t lease = json_integer_value(json_object_get(node, "lease_seconds"));
    if (lease <= 0)
        lease = ST_COMPUTE_NODE_LEASE_DEFAULT;
    return now_ms - at <= lease * 1000;
}

/* 1 if the node's lease holds, 0 if not (or it has no node document); a
 * store that cannot answer is an error, never a node found dead. */
static int node_running(struct st_kv *kv, const char *name, int64_t now_ms, struct st_err **err)
{
    st_autofree char *key = st_sprintf("%s%s", ST_COMPUTE_NODES_PREFIX, name);
    st_autoptr(st_kv_entry) e = NULL;
    st_autoptr(json_t) node = NULL;
    int r = st_kv_get(kv, key, &e, err);
    if (r == -ENOENT) {
        st_err_clear(err);
        return 0;
    }
    if (r < 0)
        return st_err_prefix(err, r, "reading node %s", name);
    return st_json_parse_object(e->value, e->value_len, &node, NULL) == 0 &&
           lease_holds(node, now_ms);
}

int l3_router_hosts(struct st_kv *kv, int64_t now_ms, json_t **ret, struct st_err **err)
{
    st_autoptr(json_t) nodes = NULL;
    int r = net_doc_list(kv, ST_NETWORK_NODES_PREFIX, &nodes, err);
    if (r < 0)
        return st_err_prefix(err, r, "listing network nodes");
    st_autoptr(json_t) hosts = json_object();
    size_t i;
    json_t *doc;
    json_array_foreach(nodes, i, doc)
    {
        const char *name = l3_str(doc, "name");
        if (!name || !json_is_true(json_object_get(doc, "l3")))
            continue;
        if ((r = node_running(kv, name, now_ms, err)) < 0)
            return r;
        if (r)
            json_object_set_new(hosts, name, json_integer(0));
    }
    *ret = st_steal(&hosts);
    return 0;
}

void l3_router_count(json_t *hosts, json_t *routers)
{
    size_t i;
    json_t *doc;
    json_array_foreach(routers, i, doc)
    {
        json_t *n = json_object_get(hosts, l3_str(doc, "host") ? l3_str(doc, "host") : "");
        if (n)
            json_integer_set(n, json_integer_value(n) + 1);
    }
}

const char *l3_router_least_loaded(json_t *hosts)
{
    const char *best = NULL, *name;
    json_int_t best_load = 0;
    json_t *n;
    json_object_foreach(hosts, name, n)
    {
        json_int_t load = json_integer_value(n);
        if (!best || load < best_load || (load == best_load && strcmp(name, best) < 0)) {
            best = name;
            best_load = load;
        }
    }
    return best;
}

char *l3_router_pick_host(struct st_kv *kv)
{
    st_autoptr(json_t) hosts = NULL;
    st_autoptr(json_t) routers = NULL;
    if (l3_router_hosts(kv, st_time_now_ms(), &hosts, NULL) < 0 ||
        net_doc_list(kv, ST_NETWORK_ROUTERS_PREFIX, &routers, NULL) < 0)
        return NULL;
    l3_router_count(hosts, routers);
    return st_strdup(l3_router_least_loaded(hosts));
}

static void fill_host(struct st_kv *kv, json_t *router)
{
    if (l3_str(router, "host"))
        return;
    st_autofree char *host = l3_router_pick_host(kv);
    if (host)
        json_object_set_new(router, "host", json_string(host));
}

int l3_router_rebind(struct st_kv *kv, const char *id, json_t *hosts, const char *to,
                     char **ret_from, struct st_err **err)
{
    *ret_from = NULL;
    for (int attempt = 0; attempt < L3_CAS_ATTEMPTS; attempt++) {
        st_autoptr(json_t) doc = NULL;
        int64_t rev = 0;
        int r = net_doc_get(kv, ST_NETWORK_ROUTERS_PREFIX, id, &doc, &rev, err);
        if (r == -ENOENT) {
            st_err_clear(err);
            return 0;
        }
        if (r < 0)
            return r;
        const char *from = l3_str(doc, "host");
        if (from && json_object_get(hosts, from))
            return 0; /* on a usable host: a peer moved it, or it never needed to move */
        st_autofree char *was = st_strdup(from);
        json_object_set_new(doc, "host", json_string(to));
        r = net_doc_put(kv, ST_NETWORK_ROUTERS_PREFIX, doc, rev, err);
        if (r == -ECANCELED) {
            st_err_clear(err);
            continue;
        }
        if (r < 0)
            return st_err_prefix(err, r, "moving router %s to node %s", id, to);
        *ret_from = st_steal(&was);
        return 1;
    }
    return st_err_set(err, -ECANCELED, "router %s kept changing; try again", id);
}

/* Whether a floating IP is associated through router_id (and, with subnet
 * set, to an address of that subnet). */
int l3_router_fips_using(struct st_kv *kv, const char *router_id, json_t *subnet, bool *ret_used,
                         struct st_err **err)
{
    st_autoptr(json_t) fips = NULL;
    int r = net_doc_list(kv, ST_NETWORK_FIPS_PREFIX, &fips, err);
    if (r < 0)
        return r;
    uint32_t net = 0, ip = 0;
    int len = 0;
    bool in_subnet = subnet && net_cidr_parse(l3_str(subnet, "cidr"), &net, &len) == 0;
    uint32_t mask = len ? 0xffffffffu << (32 - len) : 0;
    size_t i;
    json_t *fip;
    *ret_used = false;
    json_array_foreach(fips, i, fip)
    {
        if (!l3_streq(l3_str(fip, "router_id"), router_id))
            continue;
        if (!subnet || (in_subnet && net_ip_parse(l3_str(fip, "fixed_ip_address"), &ip) == 0 &&
                        (ip & mask) == (net & mask)))
            *ret_used = true;
    }
    return 0;
}

/* Makes the gateway port that external_gateway_info asks for; *ret_info:
 * the router's external_gateway_info. */
static int make_gateway(struct st_kv *kv, const struct st_network_caller *who,
                        const char *router_id, json_t *info, json_t **ret_info, char **ret_port_id,
                        struct st_err **err)
{
    const char *net_id = l3_str(info, "network_id");
    if (!net_id)
        return st_err_set(err, -EINVAL,
                          "Invalid input for external_gateway_info. Reason: "
                          "network_id is required.");
    st_autoptr(json_t) net = NULL;
    int r = net_doc_get(kv, ST_NETWORK_NETWORKS_PREFIX, net_id, &net, NULL, err);
    if (r == -ENOENT)
        return st_err_set(err, -ENOENT, "Network %s could not be found.", net_id);
    if (r < 0)
        return r;
    if (!json_is_true(json_object_get(net, "router:external")))
        return st_err_set(err, -EINVAL,
                          "Bad router request: Network %s is not an external network.", net_id);
    json_t *snat = json_object_get(info, "enable_snat");
    if (snat && !json_is_boolean(snat) && !json_is_null(snat))
        return st_err_set(err, -EINVAL, "Invalid input for enable_snat. Reason: not a boolean.");
    json_t *want = json_array_get(json_object_get(info, "external_fixed_ips"), 0);
    const char *subnet_id = l3_str(want, "subnet_id"), *ip = l3_str(want, "ip_address");
    if (ip && !who->is_admin)
        return st_err_set(err, -EPERM, "Only admins may choose a router's gateway address.");
    json_t *subnets = json_object_get(net, "subnets");
    bool on_net = false;
    size_t i;
    json_t *s;
    json_array_foreach(subnets, i, s)
    {
        on_net = on_net || l3_streq(json_string_value(s), subnet_id);
    }
    if (subnet_id && !on_net)
        return st_err_set(err, -EINVAL, "Bad router request: Subnet %s is not on network %s.",
                          subnet_id, net_id);
    if (!subnet_id)
        subnet_id = json_string_value(json_array_get(subnets, 0));
    if (!subnet_id)
        return st_err_set(err, -EINVAL, "Bad router request: Network %s has no subnet.", net_id);
    st_autoptr(json_t) port = NULL;
    if ((r = net_port_create_internal(kv, "", net_id, subnet_id, ip, router_id, OWNER_GATEWAY,
                                      &port, err)) < 0)
        return st_err_prefix(err, r, "setting the gateway of router %s", router_id);
    json_t *fixed = json_array();
    json_array_foreach(json_object_get(port, "fixed_ips"), i, s)
    {
        json_array_append_new(fixed,
                              json_pack("{s:O, s:O}", "subnet_id", json_object_get(s, "subnet_id"),
                                        "ip_address", json_object_get(s, "ip_address")));
    }
    *ret_info = json_pack("{s:s, s:b, s:o}", "network_id", net_id, "enable_snat",
                          !snat || !json_is_false(snat), "external_fixed_ips", fixed);
    *ret_port_id = st_strdup(l3_str(port, "id"));
    return 0;
}

static int check_request(json_t *req, struct st_err **err)
{
    if (!json_is_object(req))
        return st_err_set(err, -EINVAL, "Invalid input: router must be an object.");
    static const char *const texts[] = {"name", "description"};
    for (size_t i = 0; i < ST_ARRAY_SIZE(texts); i++) {
        json_t *v = json_object_get(req, texts[i]);
        if (v && (!json_is_string(v) || json_string_length(v) > ST_NETWORK_NAME_MAX))
            return st_err_set(err, -EINVAL,
                              "Invalid input for %s. Reason: not a string of at most %d "
                              "characters.",
                              texts[i], ST_NETWORK_NAME_MAX);
    }
    json_t *up = json_object_get(req, "admin_state_up");
    if (up && !json_is_boolean(up))
        return st_err_set(err, -EINVAL,
                          "Invalid input for admin_state_up. Reason: not a valid boolean value.");
    json_t *egi = json_object_get(req, "external_gateway_info");
    if (egi && !json_is_null(egi) && !json_is_object(egi))
        return st_err_set(err, -EINVAL, "Invalid input for external_gateway_info.");
    json_t *routes = json_object_get(req, "routes");
    if (routes && !json_is_array(routes) && !json_is_null(routes))
        return st_err_set(err, -EINVAL, "Invalid input for routes. Reason: not a list.");
    size_t i;
    json_t *route;
    json_array_foreach(routes, i, route)
    {
        uint32_t a;
        int len;
        if (net_cidr_parse(l3_str(route, "destination"), &a, &len) < 0 ||
            net_ip_parse(l3_str(route, "nexthop"), &a) < 0)
            return st_err_set(err, -EINVAL,
                              "Invalid input for routes. Reason: each route needs a destination "
                              "CIDR and a nexthop address.");
    }
    return 0;
}

static void apply_simple(json_t *doc, json_t *req)
{
    static const char *const keys[] = {"name", "description", "admin_state_up", "routes"};
    for (size_t i = 0; i < ST_ARRAY_SIZE(keys); i++) {
        json_t *v = json_object_get(req, keys[i]);
        if (v)
            json_object_set_new(doc, keys[i], json_is_null(v) ? json_array() : json_deep_copy(v));
    }
}

static bool wants_gateway(json_t *egi)
{
    return json_is_object(egi) && json_object_get(egi, "network_id");
}

int st_router_create(struct st_kv *kv, const struct st_network_caller *who, json_t *req,
                     json_t **ret, struct st_err **err)
{
    int r = check_request(req, err);
    if (r < 0)
        return r;
    const char *project = NULL;
    if ((r = l3_owner(who, req, "a router", &project, err)) < 0)
        return r;
    st_autoptr(json_t) doc = net_doc_new(project, l3_str(req, "name"));
    json_object_update_new(doc, json_pack("{s:b, s:s, s:n, s:[], s:b, s:b, s:n, s:[], s:[s]}",
                                          "admin_state_up", true, "status", "ACTIVE",
                                          "external_gateway_info", "routes", "distributed", false,
                                          "ha", false, "host", "availability_zone_hints",
                                          "availability_zones", "nova"));
    apply_simple(doc, req);
    const char *id = l3_str(doc, "id");
    if ((r = st_network_quota_claim(kv, project, ST_NETWORK_QUOTA_ROUTER, id, err)) < 0)
        return r;
    st_autofree char *gw_port = NULL;
    json_t *egi = json_object_get(req, "external_gateway_info");
    if (wants_gateway(egi)) {
        json_t *info = NULL;
        if ((r = make_gateway(kv, who, id, egi, &info, &gw_port, err)) < 0) {
            st_network_quota_release_one(kv, project, ST_NETWORK_QUOTA_ROUTER, id);
            return r;
        }
        json_object_set_new(doc, "external_gateway_info", info);
        json_object_set_new(doc, "_gw_port", json_string(gw_port));
    }
    fill_host(kv, doc);
    if ((r = net_doc_put(kv, ST_NETWORK_ROUTERS_PREFIX, doc, ST_KV_ABSENT, err)) < 0) {
        if (gw_port)
            net_port_delete_internal(kv, gw_port, NULL);
        st_network_quota_release_one(kv, project, ST_NETWORK_QUOTA_ROUTER, id);
        return st_err_prefix(err, r, "creating router");
    }
    st_log_info("router_create", "id=%s host=%s", id,
                l3_str(doc, "host") ? l3_str(doc, "host") : "-");
    if (ret)
        *ret = net_public(doc);
    return 0;
}

int st_router_get(struct st_kv *kv, const struct st_network_caller *who, const char *id,
                  json_t **ret, struct st_err **err)
{
    return net_doc_show(kv, who, &router_kind, id, ret, err);
}

int st_router_list(struct st_kv *kv, const struct st_network_caller *who, json_t *filters,
                   json_t **ret, struct st_err **err)
{
    return net_doc_list_visible(kv, who, ST_NETWORK_ROUTERS_PREFIX, filters, ret, err);
}

/* Applies a change of external_gateway_info to doc: *ret_new_port is a
 * port made for it (to delete if the write fails), *ret_old_port the one
 * it replaces (to delete once the write succeeded). */
/* Whether every address asked for (subnet and/or address) is one the
 * gateway holds already: then the gateway stays as it is. */
static bool same_fixed_ips(json_t *want, json_t *have)
{
    size_t i, j;
    json_t *w, *h;
    json_array_foreach(want, i, w)
    {
        bool found = false;
        json_array_foreach(have, j, h)
        {
            found = found || ((!l3_str(w, "subnet_id") ||
                               l3_streq(l3_str(w, "subnet_id"), l3_str(h, "subnet_id"))) &&
                              (!l3_str(w, "ip_address") ||
                               l3_streq(l3_str(w, "ip_address"), l3_str(h, "ip_address"))));
        }
        if (!found)
            return false;
    }
    return true;
}

static int change_gateway(struct st_kv *kv, const struct st_network_caller *who, json_t *doc,
                          json_t *want, char **ret_new_port, char **ret_old_port,
                          struct st_err **err)
{
    const char *id = l3_str(doc, "id");
    json_t *old = json_object_get(doc, "external_gateway_info");
    const char *old_net = l3_str(old, "network_id");
    int r;
    if (wants_gateway(want) && l3_streq(l3_str(want, "network_id"), old_net) &&
        same_fixed_ips(json_object_get(want, "external_fixed_ips"),
                       json_object_get(old, "external_fixed_ips"))) {
        json_t *snat = json_object_get(want, "enable_snat");
        if (json_is_boolean(snat))
            json_object_set(old, "enable_snat", snat);
        return 0;
    }
    bool used = false;
    if (old_net && (r = l3_router_fips_using(kv, id, NULL, &used, err)) < 0)
        return r;
    if (used)
        return st_err_set(err, -EBUSY,
                          "Gateway cannot be updated for router %s, since a gateway to external "
                          "network %s is required by one or more floating IPs.",
                          id, old_net);
    *ret_old_port = st_strdup(l3_str(doc, "_gw_port"));
    json_object_set_new(doc, "external_gateway_info", json_null());
    json_object_del(doc, "_gw_port");
    if (!wants_gateway(want))
        return 0;
    json_t *info = NULL;
    if ((r = make_gateway(kv, who, id, want, &info, ret_new_port, err)) < 0)
        return r;
    json_object_set_new(doc, "external_gateway_info", info);
    json_object_set_new(doc, "_gw_port", json_string(*ret_new_port));
    return 0;
}

int st_router_update(struct st_kv *kv, const struct st_network_caller *who, const char *id,
                     json_t *req, json_t **ret, struct st_err **err)
{
    int r = check_request(req, err);
    if (r < 0)
        return r;
    for (int attempt = 0; attempt < L3_CAS_ATTEMPTS; attempt++) {
        st_autoptr(json_t) doc = NULL;
        int64_t rev = 0;
        if ((r = l3_router_read(kv, who, id, &doc, &rev, err)) < 0)
            return r;
        apply_simple(doc, req);
        st_autofree char *new_port = NULL;
        st_autofree char *old_port = NULL;
        json_t *want = json_object_get(req, "external_gateway_info");
        if (want && (r = change_gateway(kv, who, doc, want, &new_port, &old_port, err)) < 0)
            return r;
        fill_host(kv, doc);
        r = net_doc_put(kv, ST_NETWORK_ROUTERS_PREFIX, doc, rev, err);
        if (r < 0 && new_port)
            net_port_delete_internal(kv, new_port, NULL);
        if (r == -ECANCELED) {
            st_err_clear(err);
            continue;
        }
        if (r < 0)
            return r;
        if (old_port)
            net_port_delete_internal(kv, old_port, NULL);
        if (ret)
            *ret = net_public(doc);
        return 0;
    }
    return st_err_set(err, -ECANCELED, "router %s kept changing; try again", id);
}

int st_router_delete(struct st_kv *kv, const struct st_network_caller *who, const char *id,
                     struct st_err **err)
{
    for (int attempt = 0; attempt < L3_CAS_ATTEMPTS; attempt++) {
        st_autoptr(json_t) doc = NULL;
        st_autoptr(json_t) ports = NULL;
        int64_t rev = 0;
        int r;
        if ((r = l3_router_read(kv, who, id, &doc, &rev, err)) < 0 ||
            (r = net_doc_list(kv, ST_NETWORK_PORTS_PREFIX, &ports, err)) < 0)
            return r;
        size_t i;
        json_t *port;
        json_array_foreach(ports, i, port)
        {
            if (l3_is_router_port(port, id, OWNER_INTERFACE))
                return st_err_set(err, -EBUSY, "Router %s still has ports", id);
        }
        st_autofree char *key = st_sprintf("%s%s", ST_NETWORK_ROUTERS_PREFIX, id);
        r = st_kv_delete(kv, key, rev, NULL, err);
        if (r == -ECANCELED) {
            st_err_clear(err);
            continue;
        }
        if (r == -ENOENT)
            return not_found(id, err);
        if (r < 0)
            return st_err_prefix(err, r, "deleting router %s", id);
        st_network_quota_release_one(kv, l3_str(doc, "project_id"), ST_NETWORK_QUOTA_ROUTER, id);
        json_array_foreach(ports, i, port)
        {
            if (l3_is_router_port(port, id, OWNER_GATEWAY))
                net_port_delete_internal(kv, l3_str(port, "id"), NULL);
        }
        st_log_info("router_delete", "id=%s", id);
        return 0;
    }
    return st_err_set(err, -ECANCELED, "router %s kept changing; try again", id);
}

/* Bumps the router's document (and gives it a host if it has none); -ENOENT
 * when it is gone. */
int l3_router_touch(struct st_kv *kv, const char *id, struct st_err **err)
{
    for (int attempt = 0; attempt < L3_CAS_ATTEMPTS; attempt++) {
        st_autoptr(json_t) doc = NULL;
        int64_t rev = 0;
        int r = net_doc_get(kv, ST_NETWORK_ROUTERS_PREFIX, id, &doc, &rev, err);
        if (r == -ENOENT)
            return not_found(id, err);
        if (r < 0)
            return r;
        fill_host(kv, doc);
        r = net_doc_put(kv, ST_NETWORK_ROUTERS_PREFIX, doc, rev, err);
        if (r != -ECANCELED)
            return r;
        st_err_clear(err);
    }
    return st_err_set(err, -ECANCELED, "router %s kept changing; try again", id);
}
