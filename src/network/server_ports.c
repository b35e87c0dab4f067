/* The ports of a server, for Nova: what server create asks of Neutron
 * (one port per requested network, or the user's own port bound to the
 * server, with the requested security groups) and what server delete
 * gives back. All or nothing: when one network of the request fails, the
 * ports made so far are deleted and the bound ones given back. Errors are
 * in Nova's words, since the user called Nova. */
#include "network/network.h"

#include <errno.h>
#include <string.h>

#include "lib/cleanup.h"
#include "lib/json.h"
#include "lib/log.h"
#include "network/core-priv.h"
#include "network/model.h"
#include "network/network-priv.h"
#include "store/kv.h"

static const char *str(json_t *doc, const char *key)
{
    return json_string_value(json_object_get(doc, key));
}

/* Nova's choice when no network is named: the only network the project
 * may use (its own or a shared one; never an external one). */
static int only_network(struct st_kv *kv, const struct st_network_caller *who, json_t **ret_id,
                        struct st_err **err)
{
    st_autoptr(json_t) all = NULL;
    int r = net_doc_list(kv, ST_NETWORK_NETWORKS_PREFIX, &all, err);
    if (r < 0)
        return r;
    json_t *found = NULL;
    size_t i, n = 0;
    json_t *doc;
    json_array_foreach(all, i, doc)
    {
        if (!net_list_visible(who, doc) || json_is_true(json_object_get(doc, "router:external")))
            continue;
        found = doc;
        n++;
    }
    if (n > 1)
        return st_err_set(err, -EBUSY,
                          "Multiple possible networks found, use a Network ID to be "
                          "more specific.");
    *ret_id = found ? json_incref(json_object_get(found, "id")) : NULL;
    return 0;
}

/* Requested groups (names or ids) → ids, and the names the server shows. */
static int resolve_groups(struct st_kv *kv, const struct st_network_caller *who, json_t *groups,
                          json_t **ret_ids, json_t **ret_names, struct st_err **err)
{
    st_autoptr(json_t) ids = json_array();
    st_autoptr(json_t) names = json_array();
    st_autoptr(json_t) wanted = groups && json_array_size(groups)
                                    ? json_incref(groups)
                                    : json_pack("[{s:s}]", "name", "default");
    int r = st_security_group_ensure_default(kv, who->project_id, NULL, err);
    if (r < 0)
        return r;
    size_t i;
    json_t *g;
    json_array_foreach(wanted, i, g)
    {
        const char *name = json_is_string(g) ? json_string_value(g) : str(g, "name");
        st_autofree char *id = NULL;
        st_autoptr(json_t) doc = NULL;
        r = name ? st_security_group_resolve(kv, who, name, &id, &doc, err) : -ENOENT;
        if (r == -ENOENT) {
            st_err_clear(err);
            return st_err_set(err, -EINVAL, "Security group %s not found for project %s.",
                              name ?: "?", who->project_id);
        }
        if (r < 0)
            return r;
        json_array_append_new(ids, json_string(id));
        json_array_append_new(names, json_pack("{s:s}", "name", str(doc, "name") ?: name));
    }
    *ret_ids = st_steal(&ids);
    *ret_names = st_steal(&names);
    return 0;
}

/* Binds the user's own port to the server; it is given back, not deleted,
 * when the server goes. */
static int bind_port(struct st_kv *kv, const struct st_network_caller *who, const char *port_id,
                     const char *server_id, json_t **ret, struct st_err **err)
{
    for (int attempt = 0; attempt < 50; attempt++) {
        st_autoptr(json_t) port = NULL;
        int64_t rev;
        int r = net_doc_get(kv, ST_NETWORK_PORTS_PREFIX, port_id, &port, &rev, err);
        const char *p = str(port, "project_id");
        if (r == -ENOENT || (r == 0 && !who->is_admin && strcmp(p ?: "", who->project_id) != 0))
            return st_err_set(err, -EINVAL, "Port %s could not be found.", port_id);
        if (r < 0)
            return r;
        if (*(str(port, "device_id") ?: ""))
            return st_err_set(err, -EBUSY, "Port %s is still in use.", port_id);
        json_object_set_new(port, "device_id", json_string(server_id));
        json_object_set_new(port, "device_owner", json_string("compute:nova"));
        json_object_set_new(port, "_user_port", json_true());
        r = net_doc_put(kv, ST_NETWORK_PORTS_PREFIX, port, rev, err);
        if (r == -ECANCELED) {
            st_err_clear(err);
            continue;
        }
        if (r < 0)
            return r;
        *ret = st_steal(&port);
        return 0;
    }
    return st_err_set(err, -EBUSY, "Port %s kept changing; try again", port_id);
}

static int make_port(struct st_kv *kv, const struct st_network_caller *who, const char *server_id,
                     const char *net_id, const char *fixed_ip, json_t *sg_ids, json_t **ret,
                     struct st_err **err)
{
    st_autoptr(json_t) network = NULL;
    int r = net_doc_get_visible(kv, who, ST_NETWORK_NETWORKS_PREFIX, net_id, &network, NULL, err);
    if (r == -ENOENT || (r == 0 && net_doc_marked(network)))
        return st_err_set(err, -EINVAL, "Network %s could not be found.", net_id);
    if (r < 0)
        return r;
    bool port_security = json_is_true(json_object_get(network, "port_security_enabled"));
    st_autoptr(json_t) fixed = fixed_ip ? json_pack("[{s:s}]", "ip_address", fixed_ip) : NULL;
    struct net_port_spec spec = {
        .project_id = who->project_id,
        .network = network,
        .fixed_ips = fixed,
        .device_id = server_id,
        .device_owner = "compute:nova",
        .security_groups = port_security ? sg_ids : NULL,
        .port_security = port_security,
        .admin_state_up = true,
    };
    r = net_port_make(kv, &spec, ret, err);
    if (r == -EDQUOT) {
        /* Nova's PortLimitExceeded (403), not Neutron's OverQuota */
        st_err_clear(err);
        return st_err_set(err, -EDQUOT, "Maximum number of ports exceeded");
    }
    return r;
}

static void undo(struct st_kv *kv, json_t *made, json_t *bound)
{
    size_t i;
    json_t *v;
    json_array_foreach(made, i, v) net_port_delete_internal(kv, json_string_value(v), NULL);
    json_array_foreach(bound, i, v) net_port_unbind(kv, json_string_value(v), NULL);
}

static json_t *port_row(struct st_kv *kv, json_t *port)
{
    st_autoptr(json_t) network = NULL;
    net_doc_get(kv, ST_NETWORK_NETWORKS_PREFIX, str(port, "network_id"), &network, NULL, NULL);
    json_t *fip = json_array_get(json_object_get(port, "fixed_ips"), 0);
    return json_pack("{s:s?, s:s?, s:s?, s:s?, s:s?, s:s?}", "port_id", str(port, "id"),
                     "network_id", str(port, "network_id"), "network_name", str(network, "name"),
                     "mac", str(port, "mac_address"), "ip", str(fip, "ip_address"), "subnet_id",
                     str(fip, "subnet_id"));
}

int st_network_server_ports_create(struct st_kv *kv, const struct st_network_caller *who,
                                   const char *server_id, json_t *networks, json_t *security_groups,
                                   json_t **ret_ports, json_t **ret_sg_names, struct st_err **err)
{
    st_autoptr(json_t) wanted = NULL;
    int r;
    const char *word = json_string_value(networks);
    if (word && strcmp(word, "none") == 0) {
        wanted = json_array();
    } else if (!networks || json_is_null(networks) || (word && strcmp(word, "auto") == 0)) {
        st_autoptr(json_t) id = NULL;
        if ((r = only_network(kv, who, &id, err)) < 0)
            return r;
        wanted = id ? json_pack("[{s:O}]", "uuid", id) : json_array();
    } else if (json_is_array(networks)) {
        wanted = json_incref(networks);
    } else {
        return st_err_set(err, -EINVAL, "Bad networks format: it must be a list.");
    }
    st_autoptr(json_t) sg_ids = NULL;
    st_autoptr(json_t) sg_names = NULL;
    if ((r = resolve_groups(kv, who, security_groups, &sg_ids, &sg_names, err)) < 0)
        return r;
    st_autoptr(json_t) made = json_array();
    st_autoptr(json_t) bound = json_array();
    st_autoptr(json_t) rows = json_array();
    size_t i;
    json_t *req;
    json_array_foreach(wanted, i, req)
    {
        const char *port_id = str(req, "port"), *net_id = str(req, "uuid");
        st_autoptr(json_t) port = NULL;
        if (port_id) {
            r = bind_port(kv, who, port_id, server_id, &port, err);
            if (r == 0)
                json_array_append_new(bound, json_string(port_id));
        } else if (net_id) {
            r = make_port(kv, who, server_id, net_id, str(req, "fixed_ip"), sg_ids, &port, err);
            if (r == 0)
                json_array_append(made, json_object_get(port, "id"));
        } else {
            r = st_err_set(err, -EINVAL,
                           "Bad networks format: network uuid is not in proper "
                           "format or a port is required.");
        }
        if (r < 0) {
            undo(kv, made, bound);
            return r;
        }
        json_array_append_new(rows, port_row(kv, port));
    }
    st_log_info("server_ports_created", "server=%s ports=%zu", server_id, json_array_size(rows));
    *ret_ports = st_steal(&rows);
    *ret_sg_names = st_steal(&sg_names);
    return 0;
}

int st_network_device_ports_release(struct st_kv *kv, const char *device_id, struct st_err **err)
{
    if (!device_id || !*device_id)
        return 0;
    st_autoptr(json_t) ports = NULL;
    int r = net_ports_where(kv, "device_id", device_id, &ports, err);
    if (r < 0)
        return r;
    size_t i;
    json_t *port;
    json_array_foreach(ports, i, port)
    {
        const char *id = str(port, "id"), *owner = str(port, "device_owner") ?: "";
        if (json_is_true(json_object_get(port, "_user_port")))
            r = net_port_unbind(kv, id, err);
        else if (strncmp(owner, "compute:", 8) == 0)
            r = net_port_delete_internal(kv, id, err);
        else
            continue; /* routers' and floating IPs' ports are theirs to release */
        if (r < 0)
            return st_err_prefix(err, r, "releasing the ports of %s", device_id);
    }
    return 0;
}
