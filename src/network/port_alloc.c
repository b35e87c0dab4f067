/* Making and unmaking ports: the claims a port holds (its MAC, one
 * /network/ipam key per address) and its document, in an order that never
 * lets two ports share an address and leaves nothing behind on failure. The
 * API's checks live in port.c; router, floating IP and server code come here
 * through net_port_create_internal and net_port_make. */
#include "network/core-priv.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "lib/cleanup.h"
#include "lib/json.h"
#include "lib/log.h"
#include "lib/uuid.h"
#include "network/model.h"
#include "network/network-priv.h"
#include "network/quota.h"
#include "store/kv.h"

static bool router_interface_owner(const char *owner)
{
    return owner && strncmp(owner, "network:router_interface", 24) == 0;
}

/* The subnet document and the address wanted in it for one fixed_ips entry
 * ("subnet_id" and/or "ip_address"). */
static int resolve_fixed_ip(struct st_kv *kv, json_t *network, json_t *entry, json_t **ret_subnet,
                            const char **ret_ip, struct st_err **err)
{
    const char *net_id = json_string_value(json_object_get(network, "id"));
    json_t *subnets = json_object_get(network, "subnets");
    const char *subnet_id = json_string_value(json_object_get(entry, "subnet_id"));
    const char *ip = json_string_value(json_object_get(entry, "ip_address"));
    if (!json_is_object(entry))
        return st_err_set(err, -EINVAL,
                          "Invalid input for fixed_ips. Reason: Invalid data format "
                          "for fixed IP: each entry must be an object.");
    if (subnet_id) {
        bool on_network = false;
        size_t i;
        json_t *s;
        json_array_foreach(subnets, i, s) on_network =
            on_network || strcmp(json_string_value(s) ?: "", subnet_id) == 0;
        int r = on_network
                    ? net_doc_get(kv, ST_NETWORK_SUBNETS_PREFIX, subnet_id, ret_subnet, NULL, err)
                    : -ENOENT;
        if (r == -ENOENT)
            return st_err_set(err, -EINVAL,
                              "Invalid input for operation: Failed to create port on network %s, "
                              "because fixed_ips included invalid subnet %s.",
                              net_id, subnet_id);
        *ret_ip = ip;
        return r;
    }
    if (!ip) {
        /* {} asks for any address of the first subnet, as no fixed_ips does. */
        const char *first = json_string_value(json_array_get(subnets, 0));
        if (!first)
            return st_err_set(err, -EINVAL,
                              "Invalid input for operation: network %s has no subnet to take an "
                              "address from.",
                              net_id);
        *ret_ip = NULL;
        int r = net_doc_get(kv, ST_NETWORK_SUBNETS_PREFIX, first, ret_subnet, NULL, err);
        return r == -ENOENT ? st_err_set(err, -ENOENT, "Subnet %s could not be found.", first) : r;
    }
    uint32_t addr;
    if (net_ip_parse(ip, &addr) < 0)
        return st_err_set(err, -EINVAL,
                          "Invalid input for ip_address. Reason: '%s' is not a valid IP address.",
                          ip);
    size_t i;
    json_t *s;
    json_array_foreach(subnets, i, s)
    {
        json_t *subnet = NULL;
        if (net_doc_get(kv, ST_NETWORK_SUBNETS_PREFIX, json_string_value(s), &subnet, NULL, NULL) <
            0)
            continue;
        uint32_t net;
        int len;
        if (net_cidr_parse(json_string_value(json_object_get(subnet, "cidr")), &net, &len) == 0 &&
            (addr & net_prefix_mask(len)) == net) {
            *ret_subnet = subnet;
            *ret_ip = ip;
            return 0;
        }
        json_decref(subnet);
    }
    return st_err_set(err, -EINVAL,
                      "Invalid input for operation: IP address %s is not a valid IP for any of "
                      "the subnets on the specified network.",
                      ip);
}

static int allocate_fixed_ips(struct st_kv *kv, const struct net_port_spec *spec, json_t *port,
                              struct st_err **err)
{
    const char *port_id = json_string_value(json_object_get(port, "id"));
    json_t *out = json_object_get(port, "fixed_ips");
    st_autoptr(json_t) wanted = spec->fixed_ips ? json_incref(spec->fixed_ips) : json_array();
    if (!spec->fixed_ips && json_array_size(json_object_get(spec->network, "subnets")) > 0)
        json_array_append_new(wanted, json_object());
    size_t i;
    json_t *entry;
    json_array_foreach(wanted, i, entry)
    {
        st_autoptr(json_t) subnet = NULL;
        const char *ip = NULL;
        int r = resolve_fixed_ip(kv, spec->network, entry, &subnet, &ip, err);
        if (r < 0)
            return r;
        const char *subnet_id = json_string_value(json_object_get(subnet, "id"));
        const char *gateway = json_string_value(json_object_get(subnet, "gateway_ip"));
        /* The gateway belongs to the subnet's router interface alone. */
        if (ip && gateway && strcmp(ip, gateway) == 0 &&
            !router_interface_owner(spec->device_owner))
            return st_err_set(err, -EEXIST, "IP address %s already allocated in subnet %s", ip,
                              subnet_id);
        char got[16];
        if ((r = net_ipam_allocate(kv, subnet, ip, port_id, got, err)) < 0)
            return r;
        json_array_append_new(out,
                              json_pack("{s:s, s:s}", "subnet_id", subnet_id, "ip_address", got));
    }
    return 0;
}

static int claim_mac(struct st_kv *kv, const struct net_port_spec *spec, json_t *port,
                     struct st_err **err)
{
    const char *net_id = json_string_value(json_object_get(spec->network, "id"));
    const char *port_id = json_string_value(json_object_get(port, "id"));
    for (int attempt = 0; attempt < 32; attempt++) {
        char mac[18];
        if (spec->mac) {
            snprintf(mac, sizeof(mac), "%s", spec->mac);
        } else {
            unsigned char b[3];
            st_random_bytes(b, sizeof(b));
            snprintf(mac, sizeof(mac), "fa:16:3e:%02x:%02x:%02x", b[0], b[1], b[2]);
        }
        st_autofree char *key = st_sprintf("%s%s/%s", ST_NETWORK_MACS_PREFIX, net_id, mac);
        int r = net_claim(kv, key, port_id, err);
        if (r == 0) {
            json_object_set_new(port, "mac_address", json_string(mac));
            return 0;
        }
        if (r != -EEXIST)
            return r;
        if (spec->mac)
            return st_err_set(err, -EEXIST,
                              "Unable to complete operation for network %s. The mac address %s "
                              "is in use.",
                              net_id, mac);
    }
    return st_err_set(err, -EBUSY, "no free MAC address found on network %s", net_id);
}

void net_port_release_claims(struct st_kv *kv, json_t *port)
{
    size_t i;
    json_t *fip;
    json_array_foreach(json_object_get(port, "fixed_ips"), i, fip)
    {
        struct st_err *e = NULL;
        if (net_ipam_release(kv, json_string_value(json_object_get(fip, "subnet_id")),
                             json_string_value(json_object_get(fip, "ip_address")), &e) < 0)
            st_log_warn("network_release_failed", "error=\"%s\"", st_err_msg(e));
        st_err_free(e);
    }
    const char *mac = json_string_value(json_object_get(port, "mac_address"));
    const char *net_id = json_string_value(json_object_get(port, "network_id"));
    if (mac && *mac && net_id) {
        st_autofree char *key = st_sprintf("%s%s/%s", ST_NETWORK_MACS_PREFIX, net_id, mac);
        struct st_err *e = NULL;
        if (net_unclaim(kv, key, &e) < 0)
            st_log_warn("network_release_failed", "error=\"%s\"", st_err_msg(e));
        st_err_free(e);
    }
}

static json_t *port_skeleton(const struct net_port_spec *spec)
{
    json_t *port = net_doc_new(spec->project_id, spec->name);
    json_object_set_new(port, "description", json_string(spec->description ?: ""));
    json_object_set(port, "network_id", json_object_get(spec->network, "id"));
    json_object_set_new(port, "mac_address", json_string(""));
    json_object_set_new(port, "fixed_ips", json_array());
    json_object_set_new(port, "device_id", json_string(spec->device_id ?: ""));
    json_object_set_new(port, "device_owner", json_string(spec->device_owner ?: ""));
    json_object_set_new(port, "security_groups",
                        spec->security_groups ? json_deep_copy(spec->security_groups)
                                              : json_array());
    json_object_set_new(port, "port_security_enabled", json_boolean(spec->port_security));
    json_object_set_new(port, "admin_state_up", json_boolean(spec->admin_state_up));
    json_object_set_new(port, "status", json_string("DOWN"));
    json_object_set_new(port, "binding:host_id", json_string(""));
    json_object_set_new(port, "binding:vif_type", json_string("unbound"));
    json_object_set_new(port, "binding:vnic_type", json_string("normal"));
    json_object_set_new(port, "binding:profile", json_object());
    json_object_set_new(port, "binding:vif_details", json_object());
    json_object_set_new(port, "allowed_address_pairs", json_array());
    json_object_set_new(port, "extra_dhcp_opts", json_array());
    json_object_set_new(port, "dns_name", json_string(""));
    json_object_set_new(port, "qos_policy_id", json_null());
    return port;
}

int net_port_make(struct st_kv *kv, const struct net_port_spec *spec, json_t **ret,
                  struct st_err **err)
{
    st_autoptr(json_t) port = port_skeleton(spec);
    const char *net_id = json_string_value(json_object_get(spec->network, "id"));
    const char *port_id = json_string_value(json_object_get(port, "id"));
    bool written = false;
    int r =
        spec->over_quota_ok
            ? st_network_quota_charge(kv, spec->project_id, ST_NETWORK_QUOTA_PORT, &port_id, 1, err)
            : st_network_quota_claim(kv, spec->project_id, ST_NETWORK_QUOTA_PORT, port_id, err);
    if (r < 0)
        return r;
    r = claim_mac(kv, spec, port, err);
    if (r == 0)
        r = allocate_fixed_ips(kv, spec, port, err);
    if (r == 0 && (r = net_doc_put(kv, ST_NETWORK_PORTS_PREFIX, port, ST_KV_ABSENT, err)) == 0)
        written = true;
    /* Claims first, then the parents: see claim.c. */
    if (r == 0) {
        r = net_parent_check(kv, ST_NETWORK_NETWORKS_PREFIX, net_id, err);
        if (r == -ENOENT)
            st_err_set(err, r, "Network %s could not be found.", net_id);
    }
    size_t i;
    json_t *fip;
    json_array_foreach(json_object_get(port, "fixed_ips"), i, fip)
    {
        if (r < 0)
            break;
        const char *subnet_id = json_string_value(json_object_get(fip, "subnet_id"));
        r = net_parent_check(kv, ST_NETWORK_SUBNETS_PREFIX, subnet_id, err);
        if (r == -ENOENT)
            st_err_set(err, r, "Subnet %s could not be found.", subnet_id);
    }
    if (r < 0) {
        if (written) {
            st_autofree char *key = st_sprintf("%s%s", ST_NETWORK_PORTS_PREFIX, port_id);
            st_kv_delete(kv, key, ST_KV_ANY, NULL, NULL);
        }
        net_port_release_claims(kv, port);
        st_network_quota_release_one(kv, spec->project_id, ST_NETWORK_QUOTA_PORT, port_id);
        return r;
    }
    *ret = st_steal(&port);
    return 0;
}

int net_port_create_internal(struct st_kv *kv, const char *project_id, const char *network_id,
                             const char *subnet_id, const char *ip, const char *device_id,
                             const char *device_owner, json_t **ret, struct st_err **err)
{
    st_autoptr(json_t) network = NULL;
    int r = net_doc_get(kv, ST_NETWORK_NETWORKS_PREFIX, network_id, &network, NULL, err);
    if (r == -ENOENT)
        return st_err_set(err, r, "Network %s could not be found.", network_id);
    if (r < 0)
        return r;
    st_autoptr(json_t) fixed = NULL;
    if (subnet_id || ip) {
        json_t *entry = json_object();
        if (subnet_id)
            json_object_set_new(entry, "subnet_id", json_string(subnet_id));
        if (ip)
            json_object_set_new(entry, "ip_address", json_string(ip));
        fixed = json_pack("[o]", entry);
    }
    struct net_port_spec spec = {
        .project_id = project_id,
        .network = network,
        .fixed_ips = fixed,
        .device_id = device_id,
        .device_owner = device_owner,
        .port_security = false,
        .admin_state_up = true,
        .over_quota_ok = true,
    };
    return net_port_make(kv, &spec, ret, err);
}

/* A floating IP pointing at a deleted port would NAT to nobody. */
static void disassociate_floating_ips(struct st_kv *kv, const char *port_id)
{
    st_autoptr(json_t) fips = NULL;
    if (net_doc_list(kv, ST_NETWORK_FIPS_PREFIX, &fips, NULL) < 0)
        return;
    size_t i;
    json_t *fip;
    json_array_foreach(fips, i, fip)
    {
        const char *fid = json_string_value(json_object_get(fip, "id"));
        for (int attempt = 0; attempt < 20; attempt++) {
            st_autoptr(json_t) doc = NULL;
            int64_t rev;
            if (net_doc_get(kv, ST_NETWORK_FIPS_PREFIX, fid, &doc, &rev, NULL) < 0)
                break;
            const char *p = json_string_value(json_object_get(doc, "port_id"));
            if (!p || strcmp(p, port_id) != 0)
                break;
            json_object_set_new(doc, "port_id", json_null());
            json_object_set_new(doc, "fixed_ip_address", json_null());
            json_object_set_new(doc, "router_id", json_null());
            json_object_set_new(doc, "status", json_string("DOWN"));
            struct st_err *e = NULL;
            int r = net_doc_put(kv, ST_NETWORK_FIPS_PREFIX, doc, rev, &e);
            st_err_free(e);
            if (r != -ECANCELED)
                break;
        }
    }
}

int net_port_delete_internal(struct st_kv *kv, const char *port_id, struct st_err **err)
{
    st_autoptr(json_t) port = NULL;
    int r = net_doc_get(kv, ST_NETWORK_PORTS_PREFIX, port_id, &port, NULL, err);
    if (r == -ENOENT)
        return 0;
    if (r < 0)
        return r;
    disassociate_floating_ips(kv, port_id);
    /* The document goes first: a crash after it leaves claims that no port
     * names (reclaimed when the subnet or network goes), never a port whose
     * address someone else got. */
    st_autofree char *key = st_sprintf("%s%s", ST_NETWORK_PORTS_PREFIX, port_id);
    struct st_err *kerr = NULL;
    r = st_kv_delete(kv, key, ST_KV_ANY, NULL, &kerr);
    if (r == -ENOENT) {
        st_err_free(kerr);
        return 0; /* someone else deleted it and released its claims */
    }
    if (r < 0) {
        if (err && !*err)
            *err = kerr;
        else
            st_err_free(kerr);
        return st_err_prefix(err, r, "deleting port %s", port_id);
    }
    net_port_release_claims(kv, port);
    st_network_quota_release_one(kv, json_string_value(json_object_get(port, "project_id")),
                                 ST_NETWORK_QUOTA_PORT, port_id);
    st_autofree char *status_key = st_sprintf("%s%s", ST_NETWORK_PORT_STATUS_PREFIX, port_id);
    net_unclaim(kv, status_key, NULL);
    return 0;
}
