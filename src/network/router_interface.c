/* Router interfaces: ports with device_owner "network:router_interface"
 * and device_id = the router, holding their subnet's gateway address (made
 * here from a subnet_id) or a port the user brought (port_id). A subnet has
 * at most one router interface and a router's subnets do not overlap.
 *
 * Interfaces are ports, not fields of the router, so adding or removing one
 * also bumps the router's document with compare-and-swap: a delete that
 * checked for interfaces then fails its own compare-and-swap instead of
 * leaving a port behind on a router that is gone. */
#include <errno.h>
#include <string.h>

#include "lib/cleanup.h"
#include "lib/json.h"
#include "lib/log.h"
#include "network/l3-priv.h"
#include "network/model.h"
#include "network/network-priv.h"
#include "store/kv.h"

#define OWNER_INTERFACE L3_OWNER_INTERFACE

static json_t *interface_info(json_t *router, json_t *port, const char *subnet_id)
{
    return json_pack("{s:O, s:s, s:[s], s:O, s:O, s:O, s:O}", "id", json_object_get(router, "id"),
                     "subnet_id", subnet_id, "subnet_ids", subnet_id, "port_id",
                     json_object_get(port, "id"), "network_id", json_object_get(port, "network_id"),
                     "tenant_id", json_object_get(router, "project_id"), "project_id",
                     json_object_get(router, "project_id"));
}

/* A subnet may hold one router interface; a router's interfaces may not
 * overlap. */
static int check_attachable(struct st_kv *kv, json_t *ports, const char *router_id, json_t *subnet,
                            struct st_err **err)
{
    const char *subnet_id = l3_str(subnet, "id");
    st_autoptr(json_t) subnets = NULL;
    int r = net_doc_list(kv, ST_NETWORK_SUBNETS_PREFIX, &subnets, err);
    if (r < 0)
        return r;
    uint32_t a = 0, b = 0;
    int alen = 0, blen = 0;
    net_cidr_parse(l3_str(subnet, "cidr"), &a, &alen);
    size_t i, j;
    json_t *port, *other;
    json_array_foreach(ports, i, port)
    {
        if (!l3_streq(l3_str(port, "device_owner"), OWNER_INTERFACE))
            continue;
        if (l3_port_has_subnet(port, subnet_id))
            return st_err_set(err, -EBUSY, "Subnet %s already has an interface on router %s.",
                              subnet_id, l3_str(port, "device_id"));
        if (!l3_streq(l3_str(port, "device_id"), router_id))
            continue;
        json_array_foreach(subnets, j, other)
        {
            if (!l3_port_has_subnet(port, l3_str(other, "id")) ||
                net_cidr_parse(l3_str(other, "cidr"), &b, &blen) < 0)
                continue;
            int len = alen < blen ? alen : blen;
            uint32_t mask = len ? 0xffffffffu << (32 - len) : 0;
            if ((a & mask) == (b & mask))
                return st_err_set(
                    err, -EBUSY, "Cidr %s of subnet %s overlaps with cidr %s of subnet %s",
                    l3_str(subnet, "cidr"), subnet_id, l3_str(other, "cidr"), l3_str(other, "id"));
        }
    }
    return 0;
}

/* Makes (subnet_id) or takes (port_id) the interface port; *ret: the port
 * as stored. *ret_made: whether it was made here (undo: delete). */
static int attach_port(struct st_kv *kv, const struct st_network_caller *who, json_t *router,
                       json_t *body, json_t *ports, json_t **ret, bool *ret_made,
                       struct st_err **err)
{
    const char *router_id = l3_str(router, "id");
    const char *subnet_id = l3_str(body, "subnet_id"), *port_id = l3_str(body, "port_id");
    st_autoptr(json_t) subnet = NULL;
    st_autoptr(json_t) port = NULL;
    int64_t port_rev = 0;
    int r;
    if (port_id) {
        r = net_doc_get(kv, ST_NETWORK_PORTS_PREFIX, port_id, &port, &port_rev, err);
        if (r == -ENOENT || (r == 0 && !net_visible(who, port)))
            return st_err_set(err, -ENOENT, "Port %s could not be found.", port_id);
        if (r < 0)
            return r;
        const char *device = l3_str(port, "device_id");
        if ((device && *device) || (l3_str(port, "device_owner") && *l3_str(port, "device_owner")))
            return st_err_set(err, -EBUSY,
                              "Unable to complete operation on port %s for network %s. Port "
                              "already has an attached device %s.",
                              port_id, l3_str(port, "network_id"), device ? device : "");
        subnet_id = l3_str(json_array_get(json_object_get(port, "fixed_ips"), 0), "subnet_id");
        if (!subnet_id)
            return st_err_set(err, -EINVAL,
                              "Bad router request: Router port must have at least one fixed IP.");
    }
    r = net_doc_get(kv, ST_NETWORK_SUBNETS_PREFIX, subnet_id, &subnet, NULL, err);
    if (r == -ENOENT || (r == 0 && !port_id && !net_visible(who, subnet)))
        return st_err_set(err, -ENOENT, "Subnet %s could not be found.", subnet_id);
    if (r < 0 || (r = check_attachable(kv, ports, router_id, subnet, err)) < 0)
        return r;
    if (!port_id) {
        const char *gateway = l3_str(subnet, "gateway_ip");
        if (!gateway)
            return st_err_set(err, -EINVAL,
                              "Bad router request: Subnet %s does not have a gateway IP.",
                              subnet_id);
        *ret_made = true;
        return net_port_create_internal(kv, l3_str(router, "project_id"),
                                        l3_str(subnet, "network_id"), subnet_id, gateway, router_id,
                                        OWNER_INTERFACE, ret, err);
    }
    json_object_set_new(port, "device_id", json_string(router_id));
    json_object_set_new(port, "device_owner", json_string(OWNER_INTERFACE));
    if ((r = net_doc_put(kv, ST_NETWORK_PORTS_PREFIX, port, port_rev, err)) < 0)
        return r;
    *ret_made = false;
    *ret = st_steal(&port);
    return 0;
}

int st_router_add_interface(struct st_kv *kv, const struct st_network_caller *who,
                            const char *router_id, json_t *body, json_t **ret, struct st_err **err)
{
    st_autoptr(json_t) router = NULL;
    st_autoptr(json_t) ports = NULL;
    int r = l3_router_read(kv, who, router_id, &router, NULL, err);
    if (r < 0)
        return r;
    bool by_subnet = l3_str(body, "subnet_id"), by_port = l3_str(body, "port_id");
    if (by_subnet == by_port)
        return st_err_set(err, -EINVAL,
                          by_port ? "Bad router request: Cannot specify both subnet-id and port-id."
                                  : "Bad router request: Either subnet_id or port_id must be "
                                    "specified.");
    if ((r = net_doc_list(kv, ST_NETWORK_PORTS_PREFIX, &ports, err)) < 0)
        return r;
    st_autoptr(json_t) port = NULL;
    bool made = false;
    if ((r = attach_port(kv, who, router, body, ports, &port, &made, err)) < 0)
        return st_err_prefix(err, r, "adding an interface to router %s", router_id);
    const char *subnet_id =
        l3_str(json_array_get(json_object_get(port, "fixed_ips"), 0), "subnet_id");
    if ((r = l3_router_touch(kv, router_id, err)) < 0) {
        if (made) {
            net_port_delete_internal(kv, l3_str(port, "id"), NULL);
        } else {
            int64_t rev = 0;
            st_autoptr(json_t) again = NULL;
            if (net_doc_get(kv, ST_NETWORK_PORTS_PREFIX, l3_str(port, "id"), &again, &rev, NULL) ==
                0) {
                json_object_set_new(again, "device_id", json_string(""));
                json_object_set_new(again, "device_owner", json_string(""));
                net_doc_put(kv, ST_NETWORK_PORTS_PREFIX, again, rev, NULL);
            }
        }
        return r;
    }
    st_log_info("router_interface_add", "router=%s subnet=%s port=%s", router_id,
                subnet_id ? subnet_id : "-", l3_str(port, "id"));
    if (ret)
        *ret = interface_info(router, port, subnet_id ? subnet_id : "");
    return 0;
}

int st_router_remove_interface(struct st_kv *kv, const struct st_network_caller *who,
                               const char *router_id, json_t *body, json_t **ret,
                               struct st_err **err)
{
    st_autoptr(json_t) router = NULL;
    st_autoptr(json_t) ports = NULL;
    int r = l3_router_read(kv, who, router_id, &router, NULL, err);
    if (r < 0 || (r = net_doc_list(kv, ST_NETWORK_PORTS_PREFIX, &ports, err)) < 0)
        return r;
    const char *subnet_id = l3_str(body, "subnet_id"), *port_id = l3_str(body, "port_id");
    if (!subnet_id && !port_id)
        return st_err_set(err, -EINVAL,
                          "Bad router request: Either subnet_id or port_id must be "
                          "specified.");
    json_t *found = NULL, *port;
    size_t i;
    json_array_foreach(ports, i, port)
    {
        if (l3_is_router_port(port, router_id, OWNER_INTERFACE) &&
            (!port_id || l3_streq(l3_str(port, "id"), port_id)) &&
            (!subnet_id || l3_port_has_subnet(port, subnet_id)))
            found = port;
    }
    if (!found && port_id)
        return st_err_set(err, -ENOENT, "Router %s does not have an interface with id %s",
                          router_id, port_id);
    if (!found)
        return st_err_set(err, -ENOENT, "Router %s has no interface on subnet %s", router_id,
                          subnet_id);
    if (!subnet_id)
        subnet_id = l3_str(json_array_get(json_object_get(found, "fixed_ips"), 0), "subnet_id");
    st_autoptr(json_t) subnet = NULL;
    bool used = false;
    if (subnet_id &&
        net_doc_get(kv, ST_NETWORK_SUBNETS_PREFIX, subnet_id, &subnet, NULL, err) == 0 &&
        (r = l3_router_fips_using(kv, router_id, subnet, &used, err)) < 0)
        return r;
    if (used)
        return st_err_set(err, -EBUSY,
                          "Router interface for subnet %s on router %s cannot be deleted, as it is "
                          "required by one or more floating IPs.",
                          subnet_id, router_id);
    if ((r = net_port_delete_internal(kv, l3_str(found, "id"), err)) < 0)
        return st_err_prefix(err, r, "removing an interface of router %s", router_id);
    l3_router_touch(kv, router_id, NULL);
    st_log_info("router_interface_remove", "router=%s port=%s", router_id, l3_str(found, "id"));
    if (ret)
        *ret = interface_info(router, found, subnet_id ? subnet_id : "");
    return 0;
}
