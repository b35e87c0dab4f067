/* Making the node match its network view (netplan.h): networks, ports,
 * routers, the firewall, and the removal of what the view no longer has.
 * Each step is an idempotent "ensure" of net/net.h, so this runs whole on
 * every change and on every poll, and repairs whatever drifted. */
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agent/netplan-priv.h"
#include "lib/cleanup.h"
#include "lib/files.h"
#include "lib/json.h"
#include "lib/log.h"
#include "net/firewall.h"
#include "net/net.h"

void netplan_name(const char *prefix, const char *uuid, size_t n, char buf[16])
{
    size_t len = strlen(prefix);
    if (len > 15)
        len = 15;
    memcpy(buf, prefix, len);
    for (const char *p = uuid ? uuid : ""; *p && len < 15 && n > 0; p++) {
        if (*p == '-')
            continue;
        buf[len++] = *p;
        n--;
    }
    buf[len] = '\0';
}

static const char *str(json_t *o, const char *k)
{
    return json_string_value(json_object_get(o, k));
}

static unsigned uint_of(json_t *o, const char *k, unsigned def)
{
    json_t *v = json_object_get(o, k);
    return json_is_integer(v) && json_integer_value(v) > 0 ? (unsigned)json_integer_value(v) : def;
}

/* Keeps the first error, logs every one. */
static void note(int r, struct st_err **first, struct st_err **e, int *ret, const char *what,
                 const char *name)
{
    if (r >= 0)
        return;
    st_log_warn("netplan_failed", "what=%s name=%s error=\"%s\"", what, name ? name : "",
                st_err_msg(*e));
    if (*ret == 0) {
        *ret = r;
        *first = *e;
        *e = NULL;
    } else {
        st_err_clear(e);
    }
}

static json_t *network_of(json_t *view, const char *id)
{
    size_t i;
    json_t *n;
    json_array_foreach(json_object_get(view, "networks"), i, n)
    {
        const char *nid = str(n, "id");
        if (nid && id && strcmp(nid, id) == 0)
            return n;
    }
    return NULL;
}

static int ensure_network(struct st_netplan *np, struct st_net *host, json_t *net,
                          struct st_err **err)
{
    const char *bridge = str(net, "bridge"), *vxlan = str(net, "vxlan");
    if (!bridge)
        return st_err_set(err, -EINVAL, "network %s has no bridge in the view", str(net, "id"));
    unsigned mtu = uint_of(net, "mtu", 1450);
    if (json_is_true(json_object_get(net, "external")))
        return st_net_bridge_ensure(host, bridge, 0, err); /* the operator's MTU */
    int r = st_net_bridge_ensure(host, bridge, mtu, err);
    if (r < 0 || !vxlan)
        return r;
    struct st_net_vxlan vx = {
        .name = vxlan,
        .vni = (uint32_t)json_integer_value(json_object_get(net, "vni")),
        .local = np->vtep,
        .mtu = mtu,
        .master = bridge,
    };
    if ((r = st_net_vxlan_ensure(host, &vx, err)) < 0)
        return r;
    /* head-end replication to every peer, and each remote port's MAC at
     * its node (Neutron's l2population) */
    st_autoptr(json_t) fdb = json_array();
    size_t i;
    json_t *v;
    json_array_foreach(json_object_get(net, "peers"), i, v)
    {
        if (json_is_string(v))
            json_array_append_new(fdb,
                                  json_pack("{s:s, s:O}", "mac", "00:00:00:00:00:00", "dst", v));
    }
    json_array_foreach(json_object_get(net, "remote_ports"), i, v)
    {
        if (str(v, "mac") && str(v, "vtep"))
            json_array_append_new(fdb, json_pack("{s:O, s:O}", "mac", json_object_get(v, "mac"),
                                                 "dst", json_object_get(v, "vtep")));
    }
    return st_net_fdb_sync(host, vxlan, fdb, err);
}

/* One port: the veth into its server's namespace, address, route. */
static int plug_port(struct st_netplan *np, struct st_net *host, json_t *view, json_t *port,
                     unsigned index, bool default_route, struct st_err **err)
{
    const char *server = str(port, "server_id"), *id = str(port, "id");
    json_t *net = network_of(view, str(port, "network_id"));
    if (!server || !id || !net)
        return st_err_set(err, -EINVAL, "port %s is incomplete in the view", id ? id : "?");
    st_autofree char *ns = st_sprintf("%s/%s", np->netns_dir, server);
    if (!st_net_netns_exists(ns))
        return -ENOENT; /* not prepared on this node (yet): nothing to plug into */
    char host_if[16], peer[16];
    st_fw_port_ifname(id, host_if);
    snprintf(peer, sizeof(peer), "eth%u", index);
    unsigned mtu = uint_of(port, "mtu", uint_of(net, "mtu", 1450));
    struct st_net_veth veth = {
        .host_name = host_if,
        .peer_name = peer,
        .peer_netns = ns,
        .peer_mac = str(port, "mac"),
        .mtu = mtu,
        .master = str(net, "bridge"),
    };
    int r = st_net_veth_ensure(host, &veth, err);
    if (r < 0)
        return r;
    st_autoptr(st_net) inside = NULL;
    if ((r = st_net_open(ns, &inside, err)) < 0)
        return r;
    json_int_t plen = json_integer_value(json_object_get(port, "prefixlen"));
    st_autofree char *cidr = st_sprintf("%s/%d", str(port, "ip"), plen > 0 ? (int)plen : 24);
    st_autoptr(json_t) cidrs = json_pack("[s]", cidr);
    if ((r = st_net_addr_sync(inside, peer, cidrs, err)) < 0)
        return r;
    const char *gw = str(port, "gateway");
    if (default_route && gw && gw[0] &&
        (r = st_net_route_default_ensure(inside, peer, gw, err)) < 0)
        return r;
    /* the subnet's host routes, as DHCP would have given them */
    size_t i;
    json_t *route;
    json_array_foreach(json_object_get(port, "host_routes"), i, route)
    {
        const char *dst = str(route, "destination"), *via = str(route, "nexthop");
        if (dst && via && (r = st_net_route_ensure(inside, peer, dst, via, err)) < 0)
            return r;
    }
    return 0;
}

static int plug_ports(struct st_netplan *np, struct st_net *host, json_t *wanted,
                      struct st_err **first, int *ret)
{
    json_t *view = np->view;
    st_autoptr(json_t) per_server = json_object(); /* server → ports plugged so far */
    json_t *plugged = json_object();
    size_t i;
    json_t *port;
    json_array_foreach(json_object_get(view, "ports"), i, port)
    {
        const char *server = str(port, "server_id"), *id = str(port, "id");
        if (!server || !id)
            continue;
        unsigned index = (unsigned)json_integer_value(json_object_get(per_server, server));
        json_object_set_new(per_server, server, json_integer(index + 1));
        char host_if[16];
        st_fw_port_ifname(id, host_if);
        json_object_set_new(wanted, host_if, json_true());
        st_autoptr(st_err) e = NULL;
        int r = plug_port(np, host, view, port, index, index == 0, &e);
        if (r == -ENOENT && !e)
            continue;
        if (r == 0)
            json_object_set_new(plugged, id, json_string("ACTIVE"));
        else
            json_object_set_new(plugged, id, json_string("ERROR"));
        note(r, first, &e, ret, "port", id);
    }
    json_decref(np->plugged);
    np->plugged = plugged;
    return 0;
}

static int ensure_router(struct st_netplan *np, struct st_net *host, json_t *router, json_t *wanted,
                         struct st_err **err)
{
    const char *id = str(router, "id");
    char nsname[64];
    snprintf(nsname, sizeof(nsname), "qrouter-%s", id);
    st_autofree char *ns = st_sprintf("%s/%s", np->netns_dir, nsname);
    if (!st_net_netns_exists(ns))
        json_object_del(np->router_rules, id); /* a new namespace has no rules yet */
    int r = st_net_netns_create(ns, err);
    if (r < 0 || (r = st_net_sysctl_set(ns, "net/ipv4/ip_forward", "1", err)) < 0)
        return r;
    st_autoptr(st_net) inside = NULL;
    if ((r = st_net_open(ns, &inside, err)) < 0)
        return r;
    size_t i;
    json_t *itf;
    json_array_foreach(json_object_get(router, "interfaces"), i, itf)
    {
        json_t *net = network_of(np->view, str(itf, "network_id"));
        char host_if[16], peer[16];
        netplan_name("str-", str(itf, "port_id"), 10, host_if);
        netplan_name("qr-", str(itf, "port_id"), 11, peer);
        json_object_set_new(wanted, host_if, json_true());
        struct st_net_veth veth = {
            .host_name = host_if,
            .peer_name = peer,
            .peer_netns = ns,
            .peer_mac = str(itf, "mac"),
            .mtu = uint_of(itf, "mtu", uint_of(net, "mtu", 1450)),
            .master = net ? str(net, "bridge") : NULL,
        };
        if ((r = st_net_veth_ensure(host, &veth, err)) < 0)
            return r;
        /* the router's MAC lives here now, whatever a node it left still
         * sends over VXLAN until its agent removes its stale namespace */
        if (veth.peer_mac && veth.master &&
            (r = st_net_bridge_fdb_pin(host, host_if, veth.peer_mac, err)) < 0)
            return r;
        json_int_t plen = json_integer_value(json_object_get(itf, "prefixlen"));
        st_autofree char *cidr = st_sprintf("%s/%d", str(itf, "ip"), plen > 0 ? (int)plen : 24);
        st_autoptr(json_t) cidrs = json_pack("[s]", cidr);
        if ((r = st_net_addr_sync(inside, peer, cidrs, err)) < 0)
            return r;
    }
    json_t *gw = json_object_get(router, "gateway");
    char gw_if[16] = "";
    if (json_is_object(gw)) {
        char host_if[16];
        netplan_name("stg-", id, 10, host_if);
        netplan_name("qg-", id, 11, gw_if);
        json_object_set_new(wanted, host_if, json_true());
        struct st_net_veth veth = {
            .host_name = host_if,
            .peer_name = gw_if,
            .peer_netns = ns,
            .peer_mac = str(gw, "mac"),
            .master = np->ext_bridge,
        };
        if ((r = st_net_veth_ensure(host, &veth, err)) < 0)
            return r;
        json_int_t plen = json_integer_value(json_object_get(gw, "prefixlen"));
        st_autoptr(json_t) cidrs = json_array();
        json_array_append_new(cidrs,
                              json_sprintf("%s/%d", str(gw, "ip"), plen > 0 ? (int)plen : 24));
        json_t *fip;
        json_array_foreach(json_object_get(router, "floating_ips"), i, fip)
        {
            if (str(fip, "ip"))
                json_array_append_new(cidrs, json_sprintf("%s/32", str(fip, "ip")));
        }
        if ((r = st_net_addr_sync(inside, gw_if, cidrs, err)) < 0)
            return r;
        const char *via = str(gw, "gateway_ip");
        if (via && (r = st_net_route_default_ensure(inside, gw_if, via, err)) < 0)
            return r;
    }
    st_autofree char *rules = NULL;
    if ((r = st_fw_render_router(router, gw_if[0] ? gw_if : NULL, &rules, err)) < 0)
        return r;
    const char *applied = str(np->router_rules, id);
    if (applied && strcmp(applied, rules) == 0)
        return 0;
    if ((r = st_fw_apply(ns, rules, err)) < 0)
        return r;
    json_object_set_new(np->router_rules, id, json_string(rules));
    return 0;
}

/* The external bridge, with the external subnet's gateway address, so this
 * host reaches floating IPs and routers' gateways (as devstack's br-ex). */
static int ensure_external(struct st_netplan *np, struct st_net *host, struct st_err **err)
{
    json_t *ext = json_object_get(np->view, "external");
    bool routers = json_array_size(json_object_get(np->view, "routers")) > 0;
    if (!json_is_object(ext) && !routers)
        return 0;
    int r = st_net_bridge_ensure(host, np->ext_bridge, 0, err);
    if (r < 0 || !json_is_object(ext) || !str(ext, "gateway_ip"))
        return r;
    json_int_t plen = json_integer_value(json_object_get(ext, "prefixlen"));
    st_autofree char *cidr = st_sprintf("%s/%d", str(ext, "gateway_ip"), plen > 0 ? (int)plen : 24);
    return st_net_addr_ensure(host, np->ext_bridge, cidr, err);
}

static bool ours(const char *name)
{
    static const char *const prefixes[] = {"stbr-", "stvx-", "stp-", "str-", "stg-"};
    for (size_t i = 0; i < sizeof(prefixes) / sizeof(prefixes[0]); i++)
        if (strncmp(name, prefixes[i], strlen(prefixes[i])) == 0)
            return true;
    return false;
}

/* Devices and router namespaces the view no longer has. */
static void remove_stale(struct st_netplan *np, struct st_net *host, json_t *wanted,
                         json_t *routers_wanted, struct st_err **first, int *ret)
{
    st_autoptr(json_t) links = NULL;
    st_autoptr(st_err) e = NULL;
    if (st_net_link_list(host, "st", &links, &e) < 0) {
        note(-EIO, first, &e, ret, "link_list", "");
        return;
    }
    size_t i;
    json_t *l;
    json_array_foreach(links, i, l)
    {
        const char *name = json_string_value(l);
        if (!name || !ours(name) || json_object_get(wanted, name) ||
            strcmp(name, np->ext_bridge) == 0)
            continue;
        st_log_info("netplan_remove", "link=%s", name);
        note(st_net_link_delete(host, name, &e), first, &e, ret, "link_delete", name);
    }
    DIR *d = opendir(np->netns_dir);
    if (!d)
        return;
    struct dirent *de;
    while ((de = readdir(d))) {
        if (strncmp(de->d_name, "qrouter-", 8) != 0 || json_object_get(routers_wanted, de->d_name))
            continue;
        st_autofree char *ns = st_sprintf("%s/%s", np->netns_dir, de->d_name);
        st_log_info("netplan_remove", "router_netns=%s", de->d_name);
        note(st_net_netns_delete(ns, &e), first, &e, ret, "netns_delete", de->d_name);
    }
    closedir(d);
}

/* Connections the last ruleset allowed and the new one does not lose their
 * conntrack entries (firewall.h). What the last ruleset allowed is kept in
 * <data-dir>/firewall-grants.json as well, so a rule removed while the
 * agent was down is revoked at its first apply after the restart. */
static int revoke_established(struct st_netplan *np, json_t *grants, struct st_err **err)
{
    st_autofree char *path = st_sprintf("%s/firewall-grants.json", np->data_dir);
    if (!np->fw_grants)
        np->fw_grants = json_load_file(path, 0, NULL); /* none yet: nothing to revoke */
    int r = 0;
    if (np->fw_grants) {
        st_autoptr(json_t) revoked = st_fw_revoked(np->fw_grants, grants);
        unsigned deleted = 0;
        if ((r = st_fw_conntrack_flush(NULL, revoked, &deleted, err)) < 0)
            return r;
        if (json_array_size(revoked) > 0)
            st_log_info("netplan_conntrack_flush", "ports=%zu connections=%u",
                        json_array_size(revoked), deleted);
    }
    st_autofree char *text = json_dumps(grants, JSON_COMPACT);
    if (!text)
        abort();
    if ((r = st_write_file_atomic(path, text, strlen(text), 0600, err)) < 0)
        return r;
    json_decref(np->fw_grants);
    np->fw_grants = json_incref(grants);
    return 0;
}

/* One ruleset for every port of the node. A node that never had a port
 * never touches nftables (several test agents may share a namespace);
 * once its last port is gone, its tables go. */
static int apply_firewall(struct st_netplan *np, struct st_err **err)
{
    int r;
    st_autoptr(json_t) grants = NULL;
    if ((r = st_fw_port_grants(np->view, &grants, err)) < 0)
        return r;
    if (json_array_size(json_object_get(np->view, "ports")) == 0) {
        if (!np->fw_applied)
            return 0;
        if ((r = st_fw_delete_table(NULL, "inet", "stratos", err)) < 0 ||
            (r = st_fw_delete_table(NULL, "bridge", "stratos", err)) < 0)
            return r;
        free(np->fw_applied);
        np->fw_applied = NULL;
    } else {
        st_autofree char *rules = NULL;
        if ((r = st_fw_render_ports(np->view, &rules, err)) < 0)
            return r;
        if (np->fw_applied && strcmp(rules, np->fw_applied) == 0 && np->fw_grants &&
            json_equal(np->fw_grants, grants))
            return 0; /* applied, and revoked what it took away */
        if ((r = st_fw_apply(NULL, rules, err)) < 0)
            return r;
        free(np->fw_applied);
        np->fw_applied = st_steal(&rules);
    }
    return revoke_established(np, grants, err);
}

int netplan_apply(struct st_netplan *np, struct st_err **err)
{
    if (!np->view)
        return 0;
    st_autoptr(st_net) host = NULL;
    int r = st_net_open(NULL, &host, err);
    if (r < 0)
        return r;
    int ret = 0;
    struct st_err *first = NULL;
    st_autoptr(st_err) e = NULL;
    st_autoptr(json_t) wanted = json_object();
    st_autoptr(json_t) routers_wanted = json_object();

    note(ensure_external(np, host, &e), &first, &e, &ret, "external_bridge", np->ext_bridge);
    size_t i;
    json_t *v;
    json_array_foreach(json_object_get(np->view, "networks"), i, v)
    {
        if (str(v, "bridge"))
            json_object_set_new(wanted, str(v, "bridge"), json_true());
        if (str(v, "vxlan"))
            json_object_set_new(wanted, str(v, "vxlan"), json_true());
        note(ensure_network(np, host, v, &e), &first, &e, &ret, "network", str(v, "id"));
    }
    plug_ports(np, host, wanted, &first, &ret);
    json_array_foreach(json_object_get(np->view, "routers"), i, v)
    {
        st_autofree char *name = st_sprintf("qrouter-%s", str(v, "id"));
        json_object_set_new(routers_wanted, name, json_true());
        note(ensure_router(np, host, v, wanted, &e), &first, &e, &ret, "router", str(v, "id"));
    }
    note(apply_firewall(np, &e), &first, &e, &ret, "firewall", "");
    remove_stale(np, host, wanted, routers_wanted, &first, &ret);
    if (ret < 0 && err)
        *err = first;
    else
        st_err_clear(&first);
    return ret;
}

void netplan_announce(struct st_netplan *np, const char *server_id)
{
    st_autofree char *ns = st_sprintf("%s/%s", np->netns_dir, server_id);
    unsigned index = 0;
    size_t i;
    json_t *port;
    json_array_foreach(json_object_get(np->view, "ports"), i, port)
    {
        const char *server = str(port, "server_id");
        if (!server || strcmp(server, server_id) != 0)
            continue;
        char ifname[16];
        snprintf(ifname, sizeof(ifname), "eth%u", index++);
        st_autoptr(st_err) e = NULL;
        if (str(port, "ip") && st_net_arp_announce(ns, ifname, str(port, "ip"), &e) < 0)
            st_log_warn("netplan_announce_failed", "server=%s port=%s error=\"%s\"", server_id,
                        str(port, "id"), st_err_msg(e));
    }
}
