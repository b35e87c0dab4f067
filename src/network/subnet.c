/* Subnets: an IPv4 CIDR on a network, with the gateway and allocation
 * pools that IPAM (ipam.c) hands addresses from. A subnet is listed in its
 * network's "subnets"; the id is added there with compare-and-swap, which
 * is also where a new subnet is checked against its siblings' CIDRs, so two
 * overlapping subnets made at once cannot both land. CIDRs may overlap
 * across networks (each project its own 10.0.0.0/24). A subnet goes only
 * when no port holds an address in it. */
#include "network/network.h"

#include <errno.h>
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
    return st_err_set(err, -ENOENT, "Subnet %s could not be found.", id);
}

static bool owns(const struct st_network_caller *who, json_t *doc)
{
    const char *p = json_string_value(json_object_get(doc, "project_id"));
    return who->is_admin || (p && who->project_id && strcmp(p, who->project_id) == 0);
}

/* A subnet is seen by its project, by admins, and by everyone when its
 * network is shared or external. */
static bool open_network(json_t *network)
{
    return json_is_true(json_object_get(network, "shared")) ||
           json_is_true(json_object_get(network, "router:external"));
}

static bool subnet_visible(struct st_kv *kv, const struct st_network_caller *who, json_t *doc)
{
    if (owns(who, doc))
        return true;
    st_autoptr(json_t) network = NULL;
    const char *net_id = json_string_value(json_object_get(doc, "network_id"));
    return net_doc_get(kv, ST_NETWORK_NETWORKS_PREFIX, net_id, &network, NULL, NULL) == 0 &&
           open_network(network);
}

static int read_subnet(struct st_kv *kv, const struct st_network_caller *who, const char *id,
                       json_t **ret, int64_t *ret_rev, struct st_err **err)
{
    st_autoptr(json_t) doc = NULL;
    int r = net_doc_get(kv, ST_NETWORK_SUBNETS_PREFIX, id, &doc, ret_rev, err);
    if (r == -ENOENT || (r == 0 && !subnet_visible(kv, who, doc)))
        return not_found(err, id);
    if (r < 0)
        return r;
    *ret = st_steal(&doc);
    return 0;
}

static const struct net_doc_kind subnet_kind = {ST_NETWORK_SUBNETS_PREFIX, read_subnet, 50, -EBUSY,
                                                "Subnet"};

/* Adds the subnet to its network: in the same compare-and-swap, checks
 * that the network stands and that no sibling's CIDR overlaps. */
static int link_to_network(struct st_kv *kv, json_t *subnet, struct st_err **err)
{
    const char *net_id = json_string_value(json_object_get(subnet, "network_id"));
    const char *id = json_string_value(json_object_get(subnet, "id"));
    const char *cidr = json_string_value(json_object_get(subnet, "cidr"));
    for (int attempt = 0; attempt < 100; attempt++) {
        int r = net_parent_check(kv, ST_NETWORK_NETWORKS_PREFIX, net_id, err);
        if (r == -ENOENT)
            return st_err_set(err, r, "Network %s could not be found.", net_id);
        if (r < 0)
            return r;
        st_autoptr(json_t) network = NULL;
        int64_t rev;
        if ((r = net_doc_get(kv, ST_NETWORK_NETWORKS_PREFIX, net_id, &network, &rev, err)) < 0) {
            if (r == -ENOENT)
                continue;
            return r;
        }
        if (net_doc_marked(network))
            continue;
        json_t *ids = json_object_get(network, "subnets");
        size_t i;
        json_t *sid;
        json_array_foreach(ids, i, sid)
        {
            st_autoptr(json_t) other = NULL;
            if (net_doc_get(kv, ST_NETWORK_SUBNETS_PREFIX, json_string_value(sid), &other, NULL,
                            NULL) < 0)
                continue;
            const char *ocidr = json_string_value(json_object_get(other, "cidr"));
            if (net_cidrs_overlap(cidr, ocidr))
                return st_err_set(err, -EINVAL,
                                  "Invalid input for operation: Requested subnet with cidr: %s "
                                  "for network: %s overlaps with another subnet.",
                                  cidr, net_id);
        }
        json_array_append_new(ids, json_string(id));
        r = net_doc_put(kv, ST_NETWORK_NETWORKS_PREFIX, network, rev, err);
        if (r == -ECANCELED) {
            st_err_clear(err);
            continue;
        }
        return r;
    }
    return st_err_set(err, -EBUSY, "Network %s kept changing; try again", net_id);
}

static void unlink_from_network(struct st_kv *kv, const char *net_id, const char *id)
{
    for (int attempt = 0; attempt < 100; attempt++) {
        st_autoptr(json_t) network = NULL;
        int64_t rev;
        if (net_doc_get(kv, ST_NETWORK_NETWORKS_PREFIX, net_id, &network, &rev, NULL) < 0)
            return;
        json_t *ids = json_object_get(network, "subnets");
        size_t i;
        json_t *sid;
        bool found = false;
        json_array_foreach(ids, i, sid) if (strcmp(json_string_value(sid) ?: "", id) == 0)
        {
            json_array_remove(ids, i);
            found = true;
            break;
        }
        if (!found)
            return;
        struct st_err *e = NULL;
        int r = net_doc_put(kv, ST_NETWORK_NETWORKS_PREFIX, network, rev, &e);
        st_err_free(e);
        if (r != -ECANCELED)
            return;
    }
}

int st_subnet_create(struct st_kv *kv, const struct st_network_caller *who, json_t *req,
                     json_t **ret, struct st_err **err)
{
    if (!json_is_object(req))
        return st_err_set(err, -EINVAL, "Invalid input: the body must hold a subnet object.");
    const char *net_id = json_string_value(json_object_get(req, "network_id"));
    if (!net_id)
        return st_err_set(err, -EINVAL,
                          "Failed to parse request. Required attribute 'network_id' not specified");
    json_t *ipv = json_object_get(req, "ip_version");
    if (ipv &&
        !(json_is_integer(ipv) && (json_integer_value(ipv) == 4 || json_integer_value(ipv) == 6)))
        return st_err_set(err, -EINVAL, "Invalid input for ip_version. Reason: it must be 4 or 6.");
    if (ipv && json_integer_value(ipv) == 6)
        return st_err_set(err, -EINVAL,
                          "Invalid input for operation: only IPv4 subnets are supported.");
    const char *project = NULL;
    int r;
    if ((r = net_check_text(req, "name", ST_NETWORK_NAME_MAX, err)) < 0 ||
        (r = net_check_text(req, "description", ST_NETWORK_DESC_MAX, err)) < 0 ||
        (r = net_owner(who, req, &project, err)) < 0)
        return r;
    st_autoptr(json_t) network = NULL;
    r = net_doc_get_visible(kv, who, ST_NETWORK_NETWORKS_PREFIX, net_id, &network, NULL, err);
    if (r == -ENOENT)
        return st_err_set(err, -ENOENT, "Network %s could not be found.", net_id);
    if (r < 0)
        return r;
    if (!owns(who, network))
        return st_err_set(err, -EPERM, "(rule:create_subnet) is disallowed by policy");

    st_autoptr(json_t) doc = net_doc_new(project, json_string_value(json_object_get(req, "name")));
    const char *desc = json_string_value(json_object_get(req, "description"));
    json_object_set_new(doc, "description", json_string(desc ?: ""));
    json_object_set_new(doc, "network_id", json_string(net_id));
    json_object_set_new(doc, "ip_version", json_integer(4));
    if ((r = net_subnet_check(req, NULL, doc, err)) < 0)
        return r;
    json_object_set_new(doc, "ipv6_address_mode", json_null());
    json_object_set_new(doc, "ipv6_ra_mode", json_null());
    json_object_set_new(doc, "subnetpool_id", json_null());
    json_object_set_new(doc, "service_types", json_array());
    json_object_set_new(doc, "segment_id", json_null());
    json_object_set_new(doc, "dns_publish_fixed_ip", json_null());
    const char *id = json_string_value(json_object_get(doc, "id"));
    if ((r = st_network_quota_claim(kv, project, ST_NETWORK_QUOTA_SUBNET, id, err)) < 0)
        return r;
    if ((r = net_doc_put(kv, ST_NETWORK_SUBNETS_PREFIX, doc, ST_KV_ABSENT, err)) < 0) {
        st_network_quota_release_one(kv, project, ST_NETWORK_QUOTA_SUBNET, id);
        return r;
    }
    if ((r = link_to_network(kv, doc, err)) < 0) {
        st_autofree char *key = st_sprintf("%s%s", ST_NETWORK_SUBNETS_PREFIX, id);
        st_kv_delete(kv, key, ST_KV_ANY, NULL, NULL);
        st_network_quota_release_one(kv, project, ST_NETWORK_QUOTA_SUBNET, id);
        return r;
    }
    st_log_info("subnet_created", "id=%s network=%s cidr=%s",
                json_string_value(json_object_get(doc, "id")), net_id,
                json_string_value(json_object_get(doc, "cidr")));
    *ret = net_public(doc);
    return 0;
}

int st_subnet_get(struct st_kv *kv, const struct st_network_caller *who, const char *id,
                  json_t **ret, struct st_err **err)
{
    return net_doc_show(kv, who, &subnet_kind, id, ret, err);
}

int st_subnet_list(struct st_kv *kv, const struct st_network_caller *who, json_t *filters,
                   json_t **ret, struct st_err **err)
{
    st_autoptr(json_t) networks = NULL;
    st_autoptr(json_t) all = NULL;
    int r = net_doc_list(kv, ST_NETWORK_NETWORKS_PREFIX, &networks, err);
    if (r == 0)
        r = net_doc_list(kv, ST_NETWORK_SUBNETS_PREFIX, &all, err);
    if (r < 0)
        return r;
    /* Subnets of shared and external networks are everyone's to see. */
    st_autoptr(json_t) open_ids = json_object();
    size_t i;
    json_t *doc;
    json_array_foreach(networks, i, doc) if (open_network(doc))
        json_object_set_new(open_ids, json_string_value(json_object_get(doc, "id")), json_true());
    json_t *out = json_array();
    json_array_foreach(all, i, doc)
    {
        const char *net_id = json_string_value(json_object_get(doc, "network_id"));
        const char *p = json_string_value(json_object_get(doc, "project_id"));
        bool mine = p && who->project_id && strcmp(p, who->project_id) == 0;
        bool open = net_id && json_object_get(open_ids, net_id);
        if ((mine || open) && net_filter_match(doc, filters))
            json_array_append_new(out, net_public(doc));
    }
    *ret = out;
    return 0;
}

static int apply_update(struct st_kv *kv, const struct st_network_caller *who, json_t *doc,
                        json_t *req, struct st_err **err)
{
    static const char *const read_only[] = {"cidr", "network_id", "ip_version",
                                            "id",   "project_id", "tenant_id"};
    (void)kv;
    if (!owns(who, doc))
        return st_err_set(err, -EPERM, "(rule:update_subnet) is disallowed by policy");
    for (size_t i = 0; i < ST_ARRAY_SIZE(read_only); i++) {
        json_t *v = json_object_get(req, read_only[i]);
        if (v && !json_equal(v, json_object_get(doc, read_only[i])))
            return st_err_set(err, -EINVAL, "Cannot update read-only attribute %s", read_only[i]);
    }
    int r = net_subnet_check(req, doc, doc, err);
    if (r < 0)
        return r;
    net_set_text(doc, req, "name");
    net_set_text(doc, req, "description");
    return 0;
}

int st_subnet_update(struct st_kv *kv, const struct st_network_caller *who, const char *id,
                     json_t *req, json_t **ret, struct st_err **err)
{
    if (!json_is_object(req))
        return st_err_set(err, -EINVAL, "Invalid input: the body must hold a subnet object.");
    int r;
    if ((r = net_check_text(req, "name", ST_NETWORK_NAME_MAX, err)) < 0 ||
        (r = net_check_text(req, "description", ST_NETWORK_DESC_MAX, err)) < 0)
        return r;
    st_autoptr(json_t) doc = NULL;
    if ((r = net_doc_update(kv, who, &subnet_kind, id, req, apply_update, &doc, err)) < 0)
        return r;
    *ret = net_public(doc);
    return 0;
}

/* Addresses still held in the subnet by ports; compute ports of deleted
 * servers are released on the way. */
static int count_holders(struct st_kv *kv, const char *id, size_t *ret_live, struct st_err **err)
{
    st_autofree char *prefix = st_sprintf("%s%s/", ST_NETWORK_IPAM_PREFIX, id);
    st_autoptr(st_kv_list) l = NULL;
    int r = st_kv_list(kv, prefix, NULL, 0, &l, err);
    if (r < 0)
        return r;
    size_t live = 0;
    for (size_t i = 0; i < l->count; i++) {
        st_autoptr(json_t) owner = NULL;
        st_json_parse(l->entries[i].value, l->entries[i].value_len, &owner, NULL);
        const char *port_id = json_string_value(owner);
        st_autoptr(json_t) port = NULL;
        r = port_id ? net_doc_get(kv, ST_NETWORK_PORTS_PREFIX, port_id, &port, NULL, err) : -ENOENT;
        if (r == -ENOENT) {
            /* A port that died half-way, or one being made right now: its
             * claim goes with the subnet, and stays if the subnet does. */
            continue;
        }
        if (r < 0)
            return r;
        if (!net_port_is_orphan(kv, port) || json_is_true(json_object_get(port, "_user_port"))) {
            live++;
            continue;
        }
        if ((r = net_port_delete_internal(kv, port_id, err)) < 0)
            return r;
    }
    *ret_live = live;
    return 0;
}

int st_subnet_delete(struct st_kv *kv, const struct st_network_caller *who, const char *id,
                     struct st_err **err)
{
    st_autoptr(json_t) doc = NULL;
    int r = read_subnet(kv, who, id, &doc, NULL, err);
    if (r < 0)
        return r;
    if (!owns(who, doc))
        return st_err_set(err, -EPERM, "(rule:delete_subnet) is disallowed by policy");
    if ((r = net_parent_mark(kv, ST_NETWORK_SUBNETS_PREFIX, id, true, NULL, err)) < 0)
        return r == -ENOENT ? not_found(err, id) : r;
    size_t live = 0;
    r = count_holders(kv, id, &live, err);
    if (r < 0 || live > 0) {
        net_parent_mark(kv, ST_NETWORK_SUBNETS_PREFIX, id, false, NULL, NULL);
        if (r < 0)
            return r;
        return st_err_set(err, -EBUSY,
                          "Unable to complete operation on subnet %s: One or more ports have an "
                          "IP allocation from this subnet.",
                          id);
    }
    /* Out of the network first, so no new port picks it as the default. */
    unlink_from_network(kv, json_string_value(json_object_get(doc, "network_id")), id);
    st_autofree char *key = st_sprintf("%s%s", ST_NETWORK_SUBNETS_PREFIX, id);
    r = st_kv_delete(kv, key, ST_KV_ANY, NULL, err);
    if (r == -ENOENT) {
        st_err_clear(err);
        return not_found(err, id);
    }
    if (r < 0)
        return st_err_prefix(err, r, "deleting subnet %s", id);
    st_network_quota_release_one(kv, json_string_value(json_object_get(doc, "project_id")),
                                 ST_NETWORK_QUOTA_SUBNET, id);
    st_autofree char *ipam = st_sprintf("%s%s/", ST_NETWORK_IPAM_PREFIX, id);
    net_unclaim_all(kv, ipam);
    st_log_info("subnet_deleted", "id=%s", id);
    return 0;
}
