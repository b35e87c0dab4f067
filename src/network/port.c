/* Ports, as the Neutron API sees them: the checks a user's request goes
 * through (network, MAC, addresses, security groups and port security),
 * reads that show the live binding (the host of the server a compute port
 * belongs to, the status its agent reported) and updates with
 * compare-and-swap. Claims and the document itself are made in
 * port_alloc.c. */
#include "network/network.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "lib/cleanup.h"
#include "lib/json.h"
#include "lib/log.h"
#include "lib/times.h"
#include "network/core-priv.h"
#include "network/model.h"
#include "network/network-priv.h"
#include "store/kv.h"

/* Where Nova keeps its servers (compute/model.h): read, never written. */
#define COMPUTE_SERVERS_PREFIX "/compute/servers/"

static int not_found(struct st_err **err, const char *id)
{
    return st_err_set(err, -ENOENT, "Port %s could not be found.", id);
}

static bool owns(const struct st_network_caller *who, json_t *doc)
{
    const char *p = json_string_value(json_object_get(doc, "project_id"));
    return who->is_admin || (p && who->project_id && strcmp(p, who->project_id) == 0);
}

static const char *str(json_t *doc, const char *key)
{
    return json_string_value(json_object_get(doc, key));
}

/* A port is seen by its project and by admins only, also on a shared
 * network. */
static int read_port(struct st_kv *kv, const struct st_network_caller *who, const char *id,
                     json_t **ret, int64_t *ret_rev, struct st_err **err)
{
    st_autoptr(json_t) port = NULL;
    int r = net_doc_get(kv, ST_NETWORK_PORTS_PREFIX, id, &port, ret_rev, err);
    if (r == -ENOENT || (r == 0 && !owns(who, port)))
        return not_found(err, id);
    if (r < 0)
        return r;
    *ret = st_steal(&port);
    return 0;
}

static const struct net_doc_kind port_kind = {ST_NETWORK_PORTS_PREFIX, read_port, 50, -EBUSY,
                                              "Port"};

static bool starts_with(const char *s, const char *prefix)
{
    return s && strncmp(s, prefix, strlen(prefix)) == 0;
}

static int check_mac(const char *mac, char out[18], struct st_err **err)
{
    unsigned b[6];
    char tail;
    if (!mac || strlen(mac) != 17 ||
        sscanf(mac, "%2x:%2x:%2x:%2x:%2x:%2x%c", &b[0], &b[1], &b[2], &b[3], &b[4], &b[5], &tail) !=
            6 ||
        (b[0] & 1) || (b[0] | b[1] | b[2] | b[3] | b[4] | b[5]) == 0)
        return st_err_set(err, -EINVAL,
                          "Invalid input for mac_address. Reason: '%s' is not a valid MAC "
                          "address.",
                          mac ?: "?");
    snprintf(out, 18, "%02x:%02x:%02x:%02x:%02x:%02x", (unsigned char)b[0], (unsigned char)b[1],
             (unsigned char)b[2], (unsigned char)b[3], (unsigned char)b[4], (unsigned char)b[5]);
    return 0;
}

int net_port_security_groups(struct st_kv *kv, const struct st_network_caller *who,
                             const char *project, json_t *req_sgs, bool port_security,
                             const char *device_owner, json_t **ret, struct st_err **err)
{
    st_autoptr(json_t) out = json_array();
    if (!req_sgs || json_is_null(req_sgs)) {
        if (port_security && !starts_with(device_owner, "network:")) {
            st_autofree char *id = NULL;
            int r = st_security_group_ensure_default(kv, project, &id, err);
            if (r < 0)
                return r;
            json_array_append_new(out, json_string(id));
        }
        *ret = st_steal(&out);
        return 0;
    }
    if (!json_is_array(req_sgs))
        return st_err_set(err, -EINVAL,
                          "Invalid input for security_groups. Reason: it must be a list of ids.");
    if (!port_security && json_array_size(req_sgs) > 0)
        return st_err_set(err, -EINVAL,
                          "Port security must be enabled and port must have an IP "
                          "address in order to use security groups.");
    size_t i;
    json_t *v;
    json_array_foreach(req_sgs, i, v)
    {
        const char *id = json_string_value(v);
        st_autoptr(json_t) sg = NULL;
        int r = id ? net_doc_get(kv, ST_NETWORK_SGS_PREFIX, id, &sg, NULL, err) : -ENOENT;
        if (r == 0 && !who->is_admin && strcmp(str(sg, "project_id") ?: "", project ?: "") != 0)
            r = -ENOENT;
        if (r == -ENOENT)
            return st_err_set(err, -ENOENT, "Security group %s does not exist", id ?: "?");
        if (r < 0)
            return r;
        bool dup = false;
        size_t j;
        json_t *seen;
        json_array_foreach(out, j, seen) dup = dup || strcmp(json_string_value(seen), id) == 0;
        if (!dup)
            json_array_append_new(out, json_string(id));
    }
    *ret = st_steal(&out);
    return 0;
}

/* Only the network's owner (or an admin) may make router or DHCP style
 * ports, as Neutron's create_port:device_owner rule says. */
static int check_owner_field(const struct st_network_caller *who, json_t *network,
                             const char *device_owner, struct st_err **err)
{
    if (starts_with(device_owner, "network:") && !owns(who, network))
        return st_err_set(err, -EPERM, "(rule:create_port:device_owner) is disallowed by policy");
    return 0;
}

int st_port_create(struct st_kv *kv, const struct st_network_caller *who, json_t *req, json_t **ret,
                   struct st_err **err)
{
    if (!json_is_object(req))
        return st_err_set(err, -EINVAL, "Invalid input: the body must hold a port object.");
    const char *net_id = str(req, "network_id");
    if (!net_id)
        return st_err_set(err, -EINVAL,
                          "Failed to parse request. Required attribute 'network_id' not specified");
    const char *project = NULL;
    int r;
    if ((r = net_check_text(req, "name", ST_NETWORK_NAME_MAX, err)) < 0 ||
        (r = net_check_text(req, "description", ST_NETWORK_DESC_MAX, err)) < 0 ||
        (r = net_check_text(req, "device_id", ST_NETWORK_NAME_MAX, err)) < 0 ||
        (r = net_check_text(req, "device_owner", ST_NETWORK_NAME_MAX, err)) < 0 ||
        (r = net_owner(who, req, &project, err)) < 0)
        return r;
    st_autoptr(json_t) network = NULL;
    r = net_doc_get_visible(kv, who, ST_NETWORK_NETWORKS_PREFIX, net_id, &network, NULL, err);
    if (r == -ENOENT)
        return st_err_set(err, -ENOENT, "Network %s could not be found.", net_id);
    if (r < 0)
        return r;
    if (!owns(who, network) && !json_is_true(json_object_get(network, "shared")))
        return st_err_set(err, -EPERM, "Tenant %s not allowed to create port on this network",
                          project);
    const char *owner = str(req, "device_owner");
    if ((r = check_owner_field(who, network, owner, err)) < 0)
        return r;
    bool admin_up = true;
    bool port_security = json_is_true(json_object_get(network, "port_security_enabled"));
    if ((r = net_get_bool(req, "admin_state_up", &admin_up, err)) < 0 ||
        (r = net_get_bool(req, "port_security_enabled", &port_security, err)) < 0)
        return r;
    char mac[18];
    json_t *mac_v = json_object_get(req, "mac_address");
    if (mac_v && (r = check_mac(json_string_value(mac_v), mac, err)) < 0)
        return r;
    json_t *fixed = json_object_get(req, "fixed_ips");
    if (fixed && !json_is_array(fixed))
        return st_err_set(err, -EINVAL,
                          "Invalid input for fixed_ips. Reason: Invalid data "
                          "format for fixed IP: it must be a list.");
    st_autoptr(json_t) sgs = NULL;
    if ((r = net_port_security_groups(kv, who, project, json_object_get(req, "security_groups"),
                                      port_security, owner, &sgs, err)) < 0)
        return r;
    struct net_port_spec spec = {
        .project_id = project,
        .network = network,
        .fixed_ips = fixed,
        .mac = mac_v ? mac : NULL,
        .name = str(req, "name"),
        .description = str(req, "description"),
        .device_id = str(req, "device_id"),
        .device_owner = owner,
        .security_groups = sgs,
        .port_security = port_security,
        .admin_state_up = admin_up,
    };
    st_autoptr(json_t) port = NULL;
    if ((r = net_port_make(kv, &spec, &port, err)) < 0)
        return r;
    st_log_info("port_created", "id=%s network=%s ip=%s", str(port, "id"), net_id,
                str(json_array_get(json_object_get(port, "fixed_ips"), 0), "ip_address") ?: "-");
    net_port_decorate(kv, port);
    *ret = net_public(port);
    return 0;
}

void net_port_decorate(struct st_kv *kv, json_t *port)
{
    const char *id = str(port, "id");
    st_autoptr(st_kv_entry) e = NULL;
    st_autoptr(json_t) status = NULL;
    st_autofree char *key = st_sprintf("%s%s", ST_NETWORK_PORT_STATUS_PREFIX, id ?: "");
    if (st_kv_get(kv, key, &e, NULL) == 0 &&
        st_json_parse_object(e->value, e->value_len, &status, NULL) == 0 && str(status, "status"))
        json_object_set(port, "status", json_object_get(status, "status"));
    if (!json_is_true(json_object_get(port, "admin_state_up")))
        json_object_set_new(port, "status", json_string("DOWN"));

    /* The host that runs the port: the server's node for compute ports,
     * the router's node for a router's ports. */
    const char *owner = str(port, "device_owner"), *device = str(port, "device_id");
    bool compute = starts_with(owner, "compute:");
    const char *prefix = compute                                 ? COMPUTE_SERVERS_PREFIX
                         : starts_with(owner, "network:router_") ? ST_NETWORK_ROUTERS_PREFIX
                                                                 : NULL;
    const char *host = NULL;
    st_autoptr(json_t) dev = NULL;
    if (prefix && device && *device && net_doc_get(kv, prefix, device, &dev, NULL, NULL) == 0)
        host = compute ? str(json_object_get(dev, "spec"), "host") : str(dev, "host");
    json_object_set_new(port, "binding:host_id", json_string(host ?: ""));
    json_object_set_new(port, "binding:vif_type", json_string(host && *host ? "ovs" : "unbound"));
}

/* Nova makes a server's ports before its document (as it asks Neutron
 * before it builds), so a young compute port without a server may be one
 * whose server is being written right now. */
#define ORPHAN_GRACE_S 60

bool net_port_is_orphan(struct st_kv *kv, json_t *port)
{
    const char *device = str(port, "device_id");
    if (!starts_with(str(port, "device_owner"), "compute:") || !device || !*device)
        return false;
    int64_t created_ms = 0;
    if (st_time_parse_rfc3339(str(port, "created_at") ?: "", &created_ms) < 0 ||
        st_time_now_ms() - created_ms < ORPHAN_GRACE_S * 1000)
        return false;
    st_autoptr(json_t) server = NULL;
    return net_doc_get(kv, COMPUTE_SERVERS_PREFIX, device, &server, NULL, NULL) == -ENOENT;
}

int net_ports_where(struct st_kv *kv, const char *key, const char *value, json_t **ret,
                    struct st_err **err)
{
    st_autoptr(json_t) all = NULL;
    int r = net_doc_list(kv, ST_NETWORK_PORTS_PREFIX, &all, err);
    if (r < 0)
        return r;
    json_t *out = json_array();
    size_t i;
    json_t *port;
    json_array_foreach(all, i, port) if (strcmp(str(port, key) ?: "", value) == 0)
        json_array_append(out, port);
    *ret = out;
    return 0;
}

int st_port_get(struct st_kv *kv, const struct st_network_caller *who, const char *id, json_t **ret,
                struct st_err **err)
{
    st_autoptr(json_t) port = NULL;
    int r = read_port(kv, who, id, &port, NULL, err);
    if (r < 0)
        return r;
    net_port_decorate(kv, port);
    *ret = net_public(port);
    return 0;
}

int st_port_list(struct st_kv *kv, const struct st_network_caller *who, json_t *filters,
                 json_t **ret, struct st_err **err)
{
    st_autoptr(json_t) all = NULL;
    int r = net_doc_list(kv, ST_NETWORK_PORTS_PREFIX, &all, err);
    if (r < 0)
        return r;
    /* Stored filters first; what decoration fills in is matched after it,
     * so most ports cost no extra read. */
    st_autoptr(json_t) stored = json_is_object(filters) ? json_copy(filters) : json_object();
    json_object_del(stored, "status");
    json_object_del(stored, "binding:host_id");
    json_object_del(stored, "binding:vif_type");
    json_t *out = json_array();
    size_t i;
    json_t *port;
    json_array_foreach(all, i, port)
    {
        if (!net_list_visible(who, port) || !net_filter_match(port, stored))
            continue;
        net_port_decorate(kv, port);
        if (net_filter_match(port, filters))
            json_array_append_new(out, net_public(port));
    }
    *ret = out;
    return 0;
}

static int apply_update(struct st_kv *kv, const struct st_network_caller *who, json_t *port,
                        json_t *req, struct st_err **err)
{
    static const char *const read_only[] = {"network_id", "mac_address", "fixed_ips", "project_id",
                                            "tenant_id"};
    for (size_t i = 0; i < ST_ARRAY_SIZE(read_only); i++) {
        json_t *v = json_object_get(req, read_only[i]);
        if (v && !json_equal(v, json_object_get(port, read_only[i])))
            return st_err_set(err, -EINVAL, "Cannot update read-only attribute %s", read_only[i]);
    }
    bool admin_up = json_is_true(json_object_get(port, "admin_state_up"));
    bool port_security = json_is_true(json_object_get(port, "port_security_enabled"));
    int r;
    if ((r = net_check_text(req, "name", ST_NETWORK_NAME_MAX, err)) < 0 ||
        (r = net_check_text(req, "description", ST_NETWORK_DESC_MAX, err)) < 0 ||
        (r = net_check_text(req, "device_id", ST_NETWORK_NAME_MAX, err)) < 0 ||
        (r = net_check_text(req, "device_owner", ST_NETWORK_NAME_MAX, err)) < 0 ||
        (r = net_get_bool(req, "admin_state_up", &admin_up, err)) < 0 ||
        (r = net_get_bool(req, "port_security_enabled", &port_security, err)) < 0)
        return r;
    const char *owner = str(req, "device_owner");
    if (owner && starts_with(owner, "network:") && !who->is_admin &&
        strcmp(owner, str(port, "device_owner") ?: "") != 0) {
        st_autoptr(json_t) network = NULL;
        net_doc_get(kv, ST_NETWORK_NETWORKS_PREFIX, str(port, "network_id"), &network, NULL, NULL);
        if (!network || (r = check_owner_field(who, network, owner, err)) < 0)
            return r < 0 ? r : st_err_set(err, -EPERM, "(rule:update_port) is disallowed");
    }
    json_t *req_sgs = json_object_get(req, "security_groups");
    if (req_sgs) {
        st_autoptr(json_t) sgs = NULL;
        json_t *empty = json_is_null(req_sgs) ? json_array() : NULL;
        r = net_port_security_groups(kv, who, str(port, "project_id"), empty ? empty : req_sgs,
                                     port_security, str(port, "device_owner"), &sgs, err);
        json_decref(empty);
        if (r < 0)
            return r;
        json_object_set(port, "security_groups", sgs);
    } else if (!port_security && json_array_size(json_object_get(port, "security_groups")) > 0) {
        return st_err_set(err, -EBUSY,
                          "Port has security group associated. Cannot disable port "
                          "security or ip address until security group is removed");
    }
    net_set_text(port, req, "name");
    net_set_text(port, req, "description");
    net_set_text(port, req, "device_id");
    net_set_text(port, req, "device_owner");
    json_object_set_new(port, "admin_state_up", json_boolean(admin_up));
    json_object_set_new(port, "port_security_enabled", json_boolean(port_security));
    return 0;
}

int st_port_update(struct st_kv *kv, const struct st_network_caller *who, const char *id,
                   json_t *req, json_t **ret, struct st_err **err)
{
    if (!json_is_object(req))
        return st_err_set(err, -EINVAL, "Invalid input: the body must hold a port object.");
    st_autoptr(json_t) port = NULL;
    int r = net_doc_update(kv, who, &port_kind, id, req, apply_update, &port, err);
    if (r < 0)
        return r;
    net_port_decorate(kv, port);
    *ret = net_public(port);
    return 0;
}

int st_port_delete(struct st_kv *kv, const struct st_network_caller *who, const char *id,
                   struct st_err **err)
{
    st_autoptr(json_t) port = NULL;
    int r = read_port(kv, who, id, &port, NULL, err);
    if (r < 0)
        return r;
    /* Routers and floating IPs own their ports; they go through them. */
    const char *owner = str(port, "device_owner");
    if (starts_with(owner, "network:router_") || starts_with(owner, "network:floatingip"))
        return st_err_set(err, -EBUSY,
                          "Port %s cannot be deleted directly via the port API: has device owner "
                          "%s.",
                          id, owner);
    if ((r = net_port_delete_internal(kv, id, err)) < 0)
        return r;
    st_log_info("port_deleted", "id=%s", id);
    return 0;
}

int net_port_unbind(struct st_kv *kv, const char *port_id, struct st_err **err)
{
    for (int attempt = 0; attempt < 50; attempt++) {
        st_autoptr(json_t) port = NULL;
        int64_t rev;
        int r = net_doc_get(kv, ST_NETWORK_PORTS_PREFIX, port_id, &port, &rev, err);
        if (r == -ENOENT)
            return 0;
        if (r < 0)
            return r;
        json_object_set_new(port, "device_id", json_string(""));
        json_object_set_new(port, "device_owner", json_string(""));
        json_object_set_new(port, "binding:host_id", json_string(""));
        json_object_set_new(port, "binding:vif_type", json_string("unbound"));
        json_object_del(port, "_user_port");
        r = net_doc_put(kv, ST_NETWORK_PORTS_PREFIX, port, rev, err);
        if (r == -ECANCELED) {
            st_err_clear(err);
            continue;
        }
        if (r < 0)
            return r;
        st_autofree char *key = st_sprintf("%s%s", ST_NETWORK_PORT_STATUS_PREFIX, port_id);
        net_unclaim(kv, key, NULL);
        return 0;
    }
    return st_err_set(err, -EBUSY, "Port %s kept changing; try again", port_id);
}
