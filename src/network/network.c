/* Networks: Neutron's L2 segments. A tenant network is a VXLAN segment with
 * a VNI of its own (vni.c); an external network, which only an admin makes,
 * is the flat network on the nodes' external bridge. Deleting one takes its
 * subnets with it, as Neutron does, but not while a live port is on it: the
 * ports of servers that no longer exist are released on the way, since
 * nobody else ever would. */
#include "network/network.h"

#include <errno.h>
#include <inttypes.h>
#include <string.h>

#include "lib/cleanup.h"
#include "lib/json.h"
#include "lib/log.h"
#include "network/core-priv.h"
#include "network/model.h"
#include "network/network-priv.h"
#include "network/quota.h"
#include "store/kv.h"

static int not_found(struct st_err **err, const char *id)
{
    return st_err_set(err, -ENOENT, "Network %s could not be found.", id);
}

static int read_network(struct st_kv *kv, const struct st_network_caller *who, const char *id,
                        json_t **ret, int64_t *ret_rev, struct st_err **err)
{
    int r = net_doc_get_visible(kv, who, ST_NETWORK_NETWORKS_PREFIX, id, ret, ret_rev, err);
    return r == -ENOENT ? not_found(err, id) : r;
}

static const struct net_doc_kind network_kind = {ST_NETWORK_NETWORKS_PREFIX, read_network, 50,
                                                 -EBUSY, "Network"};

static int denied(struct st_err **err, const char *rule)
{
    return st_err_set(err, -EPERM, "(rule:%s) is disallowed by policy", rule);
}

static bool has_provider_attrs(json_t *req)
{
    return json_object_get(req, "provider:network_type") ||
           json_object_get(req, "provider:physical_network") ||
           json_object_get(req, "provider:segmentation_id");
}

static int check_mtu(json_t *req, int max, int64_t *ret_mtu, struct st_err **err)
{
    json_t *v = json_object_get(req, "mtu");
    if (!v || json_is_null(v))
        return 0;
    if (!json_is_integer(v))
        return st_err_set(err, -EINVAL, "Invalid input for mtu. Reason: '%s' is not an integer.",
                          json_is_string(v) ? json_string_value(v) : "value");
    int64_t mtu = json_integer_value(v);
    if (mtu < 68)
        return st_err_set(err, -EINVAL,
                          "Invalid input for mtu. Reason: '%" PRId64
                          "' is too small - must be at least '68'.",
                          mtu);
    if (mtu > max)
        return st_err_set(err, -EINVAL,
                          "Invalid input for operation: Requested MTU is too big, maximum is %d.",
                          max);
    *ret_mtu = mtu;
    return 0;
}

/* The segment the request asks for: VXLAN (the default) or the flat
 * external network; *ret_want_vni: an admin's provider:segmentation_id. */
static int check_provider(json_t *req, bool external, bool *ret_flat, int64_t *ret_want_vni,
                          struct st_err **err)
{
    const char *type = json_string_value(json_object_get(req, "provider:network_type"));
    const char *phys = json_string_value(json_object_get(req, "provider:physical_network"));
    json_t *seg = json_object_get(req, "provider:segmentation_id");
    if (type && strcmp(type, "vxlan") != 0 && strcmp(type, "flat") != 0)
        return st_err_set(err, -EINVAL,
                          "Invalid input for operation: network_type value '%s' not supported.",
                          type);
    bool flat = external || (type && strcmp(type, "flat") == 0);
    if (external && type && strcmp(type, "flat") != 0)
        return st_err_set(err, -EINVAL,
                          "Invalid input for operation: an external network is flat on physical "
                          "network 'external'.");
    if (flat && phys && strcmp(phys, "external") != 0)
        return st_err_set(err, -EINVAL,
                          "Invalid input for operation: physical_network '%s' unknown for flat "
                          "provider network.",
                          phys);
    if (!flat && phys)
        return st_err_set(err, -EINVAL,
                          "Invalid input for operation: provider:physical_network specified for "
                          "vxlan network.");
    if (seg && !json_is_null(seg)) {
        if (flat || !json_is_integer(seg))
            return st_err_set(err, -EINVAL,
                              "Invalid input for operation: segmentation_id is not valid here.");
        *ret_want_vni = json_integer_value(seg);
    }
    *ret_flat = flat;
    return 0;
}

int st_network_create(struct st_kv *kv, const struct st_network_caller *who, json_t *req,
                      json_t **ret, struct st_err **err)
{
    if (!json_is_object(req))
        return st_err_set(err, -EINVAL, "Invalid input: the body must hold a network object.");
    const char *project = NULL;
    bool admin_up = true, shared = false, external = false, port_security = true, flat = false;
    int64_t mtu = 0, want_vni = 0;
    int r;
    if ((r = net_check_text(req, "name", ST_NETWORK_NAME_MAX, err)) < 0 ||
        (r = net_check_text(req, "description", ST_NETWORK_DESC_MAX, err)) < 0 ||
        (r = net_owner(who, req, &project, err)) < 0 ||
        (r = net_get_bool(req, "admin_state_up", &admin_up, err)) < 0 ||
        (r = net_get_bool(req, "shared", &shared, err)) < 0 ||
        (r = net_get_bool(req, "router:external", &external, err)) < 0 ||
        (r = net_get_bool(req, "port_security_enabled", &port_security, err)) < 0)
        return r;
    if (shared && !who->is_admin)
        return denied(err, "create_network and rule:create_network:shared");
    if (external && !who->is_admin)
        return denied(err, "create_network and rule:create_network:router:external");
    if (has_provider_attrs(req) && !who->is_admin)
        return denied(err, "create_network and rule:create_network:provider:network_type");
    if ((r = check_provider(req, external, &flat, &want_vni, err)) < 0 ||
        (r = check_mtu(req, flat ? 1500 : ST_NETWORK_VXLAN_MTU, &mtu, err)) < 0)
        return r;
    if (!mtu)
        mtu = flat ? 1500 : ST_NETWORK_VXLAN_MTU;

    st_autoptr(json_t) doc = net_doc_new(project, json_string_value(json_object_get(req, "name")));
    const char *id = json_string_value(json_object_get(doc, "id"));
    const char *desc = json_string_value(json_object_get(req, "description"));
    json_object_set_new(doc, "description", json_string(desc ? desc : ""));
    int64_t vni = 0;
    if ((r = st_network_quota_claim(kv, project, ST_NETWORK_QUOTA_NETWORK, id, err)) < 0)
        return r;
    if (flat)
        r = net_flat_claim(kv, id, err);
    else
        r = net_vni_allocate(kv, id, want_vni, &vni, err);
    if (r < 0) {
        st_network_quota_release_one(kv, project, ST_NETWORK_QUOTA_NETWORK, id);
        return r;
    }
    json_object_set_new(doc, "admin_state_up", json_boolean(admin_up));
    json_object_set_new(doc, "shared", json_boolean(shared));
    json_object_set_new(doc, "router:external", json_boolean(external));
    json_object_set_new(doc, "mtu", json_integer(mtu));
    json_object_set_new(doc, "status", json_string("ACTIVE"));
    json_object_set_new(doc, "port_security_enabled", json_boolean(port_security));
    json_object_set_new(doc, "provider:network_type", json_string(flat ? "flat" : "vxlan"));
    json_object_set_new(doc, "provider:physical_network",
                        flat ? json_string("external") : json_null());
    json_object_set_new(doc, "provider:segmentation_id", flat ? json_null() : json_integer(vni));
    json_object_set_new(doc, "subnets", json_array());
    json_object_set_new(doc, "availability_zone_hints", json_array());
    json_object_set_new(doc, "availability_zones", json_pack("[s]", "nova"));
    json_object_set_new(doc, "ipv4_address_scope", json_null());
    json_object_set_new(doc, "ipv6_address_scope", json_null());
    json_object_set_new(doc, "is_default", json_false());
    json_object_set_new(doc, "qos_policy_id", json_null());
    json_object_set_new(doc, "dns_domain", json_string(""));
    if ((r = net_doc_put(kv, ST_NETWORK_NETWORKS_PREFIX, doc, ST_KV_ABSENT, err)) < 0) {
        if (flat)
            net_flat_release(kv, id, NULL);
        else
            net_vni_release(kv, vni, NULL);
        st_network_quota_release_one(kv, project, ST_NETWORK_QUOTA_NETWORK, id);
        return r;
    }
    st_log_info("network_created", "id=%s project=%s vni=%" PRId64, id, project, vni);
    *ret = net_public(doc);
    return 0;
}

int st_network_get(struct st_kv *kv, const struct st_network_caller *who, const char *id,
                   json_t **ret, struct st_err **err)
{
    return net_doc_show(kv, who, &network_kind, id, ret, err);
}

int st_network_list(struct st_kv *kv, const struct st_network_caller *who, json_t *filters,
                    json_t **ret, struct st_err **err)
{
    return net_doc_list_visible(kv, who, ST_NETWORK_NETWORKS_PREFIX, filters, ret, err);
}

static bool is_owner(const struct st_network_caller *who, json_t *doc)
{
    const char *p = json_string_value(json_object_get(doc, "project_id"));
    return who->is_admin || (p && who->project_id && strcmp(p, who->project_id) == 0);
}

static int apply_update(struct st_kv *kv, const struct st_network_caller *who, json_t *doc,
                        json_t *req, struct st_err **err)
{
    (void)kv;
    if (!is_owner(who, doc))
        return denied(err, "update_network");
    bool flat =
        strcmp(json_string_value(json_object_get(doc, "provider:network_type")) ?: "", "flat") == 0;
    bool admin_up = json_is_true(json_object_get(doc, "admin_state_up"));
    bool shared = json_is_true(json_object_get(doc, "shared"));
    bool external = json_is_true(json_object_get(doc, "router:external"));
    bool was_external = external;
    bool port_security = json_is_true(json_object_get(doc, "port_security_enabled"));
    int64_t mtu = json_integer_value(json_object_get(doc, "mtu"));
    int r;
    if ((r = net_check_text(req, "name", ST_NETWORK_NAME_MAX, err)) < 0 ||
        (r = net_check_text(req, "description", ST_NETWORK_DESC_MAX, err)) < 0 ||
        (r = net_get_bool(req, "admin_state_up", &admin_up, err)) < 0 ||
        (r = net_get_bool(req, "shared", &shared, err)) < 0 ||
        (r = net_get_bool(req, "router:external", &external, err)) < 0 ||
        (r = net_get_bool(req, "port_security_enabled", &port_security, err)) < 0 ||
        (r = check_mtu(req, flat ? 1500 : ST_NETWORK_VXLAN_MTU, &mtu, err)) < 0)
        return r;
    if (json_object_get(req, "shared") && !who->is_admin)
        return denied(err, "update_network and rule:update_network:shared");
    if (json_object_get(req, "router:external") && !who->is_admin)
        return denied(err, "update_network and rule:update_network:router:external");
    /* The segment type follows router:external (flat on the external
     * bridge), and a segment cannot change under live ports. */
    if (external != was_external)
        return st_err_set(err, -EINVAL,
                          "Invalid input for operation: router:external cannot "
                          "be changed after the network is created.");
    if (has_provider_attrs(req))
        return st_err_set(err, -EINVAL,
                          "Invalid input for operation: Plugin does not support "
                          "updating provider attributes.");
    net_set_text(doc, req, "name");
    net_set_text(doc, req, "description");
    json_object_set_new(doc, "admin_state_up", json_boolean(admin_up));
    json_object_set_new(doc, "shared", json_boolean(shared));
    json_object_set_new(doc, "port_security_enabled", json_boolean(port_security));
    json_object_set_new(doc, "mtu", json_integer(mtu));
    return 0;
}

int st_network_update(struct st_kv *kv, const struct st_network_caller *who, const char *id,
                      json_t *req, json_t **ret, struct st_err **err)
{
    if (!json_is_object(req))
        return st_err_set(err, -EINVAL, "Invalid input: the body must hold a network object.");
    st_autoptr(json_t) doc = NULL;
    int r = net_doc_update(kv, who, &network_kind, id, req, apply_update, &doc, err);
    if (r < 0)
        return r;
    *ret = net_public(doc);
    return 0;
}

/* Ports that keep the network: all but the compute ports of servers that
 * are gone, which are released here (their owner never will). */
static int count_live_ports(struct st_kv *kv, const char *id, size_t *ret_live, struct st_err **err)
{
    st_autoptr(json_t) ports = NULL;
    int r = net_ports_where(kv, "network_id", id, &ports, err);
    if (r < 0)
        return r;
    size_t live = 0, i;
    json_t *port;
    json_array_foreach(ports, i, port)
    {
        const char *pid = json_string_value(json_object_get(port, "id"));
        if (!net_port_is_orphan(kv, port)) {
            live++;
            continue;
        }
        st_log_info("network_orphan_port_released", "port=%s network=%s", pid, id);
        if (json_is_true(json_object_get(port, "_user_port"))) {
            live++; /* the user's own port outlives the server, as in Neutron */
            r = net_port_unbind(kv, pid, err);
        } else {
            r = net_port_delete_internal(kv, pid, err);
        }
        if (r < 0)
            return r;
    }
    *ret_live = live;
    return 0;
}

static void drop_subnet(struct st_kv *kv, const char *subnet_id)
{
    st_autofree char *ipam = st_sprintf("%s%s/", ST_NETWORK_IPAM_PREFIX, subnet_id);
    net_unclaim_all(kv, ipam);
    st_autoptr(json_t) subnet = NULL;
    net_doc_get(kv, ST_NETWORK_SUBNETS_PREFIX, subnet_id, &subnet, NULL, NULL);
    st_autofree char *key = st_sprintf("%s%s", ST_NETWORK_SUBNETS_PREFIX, subnet_id);
    if (st_kv_delete(kv, key, ST_KV_ANY, NULL, NULL) == 0 && subnet)
        st_network_quota_release_one(kv, json_string_value(json_object_get(subnet, "project_id")),
                                     ST_NETWORK_QUOTA_SUBNET, subnet_id);
}

int st_network_delete(struct st_kv *kv, const struct st_network_caller *who, const char *id,
                      struct st_err **err)
{
    st_autoptr(json_t) doc = NULL;
    int r = read_network(kv, who, id, &doc, NULL, err);
    if (r < 0)
        return r;
    if (!is_owner(who, doc))
        return denied(err, "delete_network");
    json_decref(st_steal(&doc));
    if ((r = net_parent_mark(kv, ST_NETWORK_NETWORKS_PREFIX, id, true, &doc, err)) < 0)
        return r == -ENOENT ? not_found(err, id) : r;
    size_t live = 0;
    r = count_live_ports(kv, id, &live, err);
    if (r < 0 || live > 0) {
        net_parent_mark(kv, ST_NETWORK_NETWORKS_PREFIX, id, false, NULL, NULL);
        if (r < 0)
            return r;
        return st_err_set(err, -EBUSY,
                          "Unable to complete operation on network %s. There are one or more "
                          "ports still in use on the network.",
                          id);
    }
    size_t i;
    json_t *sid;
    json_array_foreach(json_object_get(doc, "subnets"), i, sid)
        drop_subnet(kv, json_string_value(sid));
    st_autofree char *key = st_sprintf("%s%s", ST_NETWORK_NETWORKS_PREFIX, id);
    r = st_kv_delete(kv, key, ST_KV_ANY, NULL, err);
    if (r == -ENOENT) {
        st_err_clear(err);
        return not_found(err, id); /* a concurrent delete won */
    }
    if (r < 0)
        return st_err_prefix(err, r, "deleting network %s", id);
    st_network_quota_release_one(kv, json_string_value(json_object_get(doc, "project_id")),
                                 ST_NETWORK_QUOTA_NETWORK, id);
    st_autofree char *macs = st_sprintf("%s%s/", ST_NETWORK_MACS_PREFIX, id);
    net_unclaim_all(kv, macs);
    json_t *vni = json_object_get(doc, "provider:segmentation_id");
    if (json_is_integer(vni))
        net_vni_release(kv, json_integer_value(vni), NULL);
    else
        net_flat_release(kv, id, NULL);
    st_log_info("network_deleted", "id=%s", id);
    return 0;
}
