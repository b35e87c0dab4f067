/* IPv4 addresses and routes of a link, over route netlink (libnl-route-3).
 *
 * addr_sync makes a link's IPv4 addresses exactly a list. It removes
 * before it adds: removing a primary address also removes the secondaries
 * of its subnet (unless promote_secondaries), so an address added first as
 * a secondary could vanish with the primary it was meant to replace. When
 * something was removed, every wanted address is (re)added, "already
 * there" being success.
 *
 * Routes live in the main table; an ensure reads the table first and
 * replaces (NLM_F_REPLACE) only a route that is missing or differs, so a
 * reconcile that changes nothing sends nothing. */
#include <arpa/inet.h>
#include <errno.h>
#include <linux/rtnetlink.h>
#include <netlink/route/nexthop.h>
#include <stdlib.h>
#include <string.h>

#include "net/net-priv.h"

static struct nl_addr *ipv4_addr(const struct in_addr *in, unsigned prefixlen)
{
    struct nl_addr *a = nl_addr_build(AF_INET, in, sizeof(*in));
    if (!a)
        abort();
    nl_addr_set_prefixlen(a, (int)prefixlen);
    return a;
}

static bool ipv4_equal(struct nl_addr *a, const struct in_addr *in)
{
    return a && nl_addr_get_family(a) == AF_INET && nl_addr_get_len(a) == 4 &&
           !memcmp(nl_addr_get_binary_addr(a), in, 4);
}

static int ifindex_of(struct st_net *net, const char *ifname, const char *what, struct st_err **err)
{
    int idx = st_net_link_index(net, ifname);
    if (idx == -ENODEV)
        return st_err_set(err, idx, "%s %s: no such device", what, ifname);
    if (idx < 0)
        return st_err_set(err, idx, "%s %s: %s", what, ifname, strerror(-idx));
    return idx;
}

static int addr_add(struct st_net *net, int ifindex, const char *ifname, const char *cidr,
                    const struct in_addr *in, unsigned prefixlen, struct st_err **err)
{
    st_autoptr(rtnl_addr) addr = rtnl_addr_alloc();
    if (!addr)
        abort();
    st_autoptr(nl_addr) local = ipv4_addr(in, prefixlen);
    rtnl_addr_set_ifindex(addr, ifindex);
    rtnl_addr_set_family(addr, AF_INET);
    rtnl_addr_set_local(addr, local);
    if (prefixlen < 31) {
        /* The subnet's broadcast, as `ip addr add .. brd +` sets it. */
        uint32_t host = prefixlen ? 0xffffffffu >> prefixlen : 0xffffffffu;
        struct in_addr brd = {.s_addr = in->s_addr | htonl(host)};
        st_autoptr(nl_addr) b = ipv4_addr(&brd, 32);
        rtnl_addr_set_broadcast(addr, b);
    }
    int r = st_net_nlret(net, rtnl_addr_add(net->sk, addr, NLM_F_EXCL));
    if (r == -EEXIST)
        return 0;
    if (r < 0)
        return st_net_fail(net, err, "adding address %s to %s", cidr, ifname);
    return 0;
}

int st_net_addr_ensure(struct st_net *net, const char *ifname, const char *cidr,
                       struct st_err **err)
{
    struct in_addr in;
    unsigned plen;
    if (st_net_parse_cidr(cidr, &in, &plen) < 0)
        return st_err_set(err, -EINVAL, "adding address to %s: invalid address '%s'", ifname,
                          cidr ? cidr : "(null)");
    int idx = ifindex_of(net, ifname, "adding an address to", err);
    if (idx < 0)
        return idx;
    return addr_add(net, idx, ifname, cidr, &in, plen, err);
}

struct wanted_addr {
    const char *cidr;
    struct in_addr in;
    unsigned prefixlen;
    bool present;
};

int st_net_addr_sync(struct st_net *net, const char *ifname, json_t *cidrs, struct st_err **err)
{
    if (!json_is_array(cidrs))
        return st_err_set(err, -EINVAL, "syncing the addresses of %s: not a list", ifname);
    size_t n = json_array_size(cidrs);
    st_autofree struct wanted_addr *want = st_new0(struct wanted_addr, n);
    for (size_t i = 0; i < n; i++) {
        want[i].cidr = json_string_value(json_array_get(cidrs, i));
        if (st_net_parse_cidr(want[i].cidr, &want[i].in, &want[i].prefixlen) < 0)
            return st_err_set(err, -EINVAL, "syncing the addresses of %s: invalid address '%s'",
                              ifname, want[i].cidr ? want[i].cidr : "(not a string)");
    }
    int idx = ifindex_of(net, ifname, "syncing the addresses of", err);
    if (idx < 0)
        return idx;

    st_autoptr(nl_cache) cache = NULL;
    int r = st_net_nlret(net, rtnl_addr_alloc_cache(net->sk, &cache));
    if (r < 0)
        return st_net_fail(net, err, "reading the addresses of %s", ifname);
    bool removed = false;
    for (struct nl_object *o = nl_cache_get_first(cache); o; o = nl_cache_get_next(o)) {
        struct rtnl_addr *a = (struct rtnl_addr *)o;
        if (rtnl_addr_get_ifindex(a) != idx || rtnl_addr_get_family(a) != AF_INET)
            continue;
        struct nl_addr *local = rtnl_addr_get_local(a);
        bool wanted = false;
        for (size_t i = 0; i < n; i++) {
            if (ipv4_equal(local, &want[i].in) &&
                (unsigned)rtnl_addr_get_prefixlen(a) == want[i].prefixlen) {
                want[i].present = true;
                wanted = true;
            }
        }
        if (wanted)
            continue;
        r = st_net_nlret(net, rtnl_addr_delete(net->sk, a, 0));
        if (r < 0 && r != -EADDRNOTAVAIL) {
            char buf[64];
            return st_net_fail(net, err, "removing address %s from %s",
                               nl_addr2str(local, buf, sizeof(buf)), ifname);
        }
        removed = true;
    }
    for (size_t i = 0; i < n; i++) {
        if (want[i].present && !removed)
            continue;
        r = addr_add(net, idx, ifname, want[i].cidr, &want[i].in, want[i].prefixlen, err);
        if (r < 0)
            return r;
    }
    return 0;
}

/* Whether the main table has exactly this route: same destination, one
 * next hop on ifindex through gateway (or on-link). */
static bool route_present(struct nl_cache *cache, const struct in_addr *dst, unsigned plen,
                          int ifindex, const struct in_addr *gw)
{
    for (struct nl_object *o = nl_cache_get_first(cache); o; o = nl_cache_get_next(o)) {
        struct rtnl_route *rt = (struct rtnl_route *)o;
        if (rtnl_route_get_table(rt) != RT_TABLE_MAIN || rtnl_route_get_family(rt) != AF_INET ||
            rtnl_route_get_type(rt) != RTN_UNICAST || rtnl_route_get_tos(rt) != 0 ||
            rtnl_route_get_priority(rt) != 0)
            continue;
        struct nl_addr *d = rtnl_route_get_dst(rt);
        if (!d || nl_addr_get_prefixlen(d) != plen)
            continue;
        /* libnl gives the default route a zero-length address. */
        if (plen > 0 && !ipv4_equal(d, dst))
            continue;
        if (rtnl_route_get_nnexthops(rt) != 1)
            return false;
        struct rtnl_nexthop *nh = rtnl_route_nexthop_n(rt, 0);
        struct nl_addr *g = rtnl_route_nh_get_gateway(nh);
        if (rtnl_route_nh_get_ifindex(nh) != ifindex)
            return false;
        if (gw ? !ipv4_equal(g, gw) : g != NULL)
            return false;
        return true;
    }
    return false;
}

static int route_ensure(struct st_net *net, const char *ifname, const char *dst_text,
                        const struct in_addr *dst, unsigned plen, const char *gateway,
                        struct st_err **err)
{
    struct in_addr gw;
    if (gateway && st_net_parse_ipv4(gateway, &gw) < 0)
        return st_err_set(err, -EINVAL, "adding route to %s: invalid gateway '%s'", dst_text,
                          gateway);
    int idx = ifindex_of(net, ifname, "adding a route on", err);
    if (idx < 0)
        return idx;

    st_autoptr(nl_cache) cache = NULL;
    int r = st_net_nlret(net, rtnl_route_alloc_cache(net->sk, AF_INET, 0, &cache));
    if (r < 0)
        return st_net_fail(net, err, "reading the routes of %s", ifname);
    if (route_present(cache, dst, plen, idx, gateway ? &gw : NULL))
        return 0;

    st_autoptr(rtnl_route) route = rtnl_route_alloc();
    if (!route)
        abort();
    st_autoptr(nl_addr) d = ipv4_addr(dst, plen);
    rtnl_route_set_family(route, AF_INET);
    rtnl_route_set_table(route, RT_TABLE_MAIN);
    rtnl_route_set_type(route, RTN_UNICAST);
    rtnl_route_set_protocol(route, RTPROT_STATIC);
    rtnl_route_set_scope(route, gateway ? RT_SCOPE_UNIVERSE : RT_SCOPE_LINK);
    rtnl_route_set_dst(route, d);
    struct rtnl_nexthop *nh = rtnl_route_nh_alloc();
    if (!nh)
        abort();
    rtnl_route_nh_set_ifindex(nh, idx);
    if (gateway) {
        st_autoptr(nl_addr) g = ipv4_addr(&gw, 32);
        rtnl_route_nh_set_gateway(nh, g);
    }
    rtnl_route_add_nexthop(route, nh); /* the route owns nh now */
    r = st_net_nlret(net, rtnl_route_add(net->sk, route, NLM_F_REPLACE));
    if (r < 0) {
        if (gateway)
            return st_net_fail(net, err, "adding route to %s via %s on %s", dst_text, gateway,
                               ifname);
        return st_net_fail(net, err, "adding route to %s on %s", dst_text, ifname);
    }
    return 0;
}

int st_net_route_default_ensure(struct st_net *net, const char *ifname, const char *gateway,
                                struct st_err **err)
{
    if (!gateway)
        return st_err_set(err, -EINVAL, "adding the default route on %s: no gateway", ifname);
    struct in_addr any = {0};
    return route_ensure(net, ifname, "default", &any, 0, gateway, err);
}

int st_net_route_ensure(struct st_net *net, const char *ifname, const char *dst,
                        const char *gateway, struct st_err **err)
{
    struct in_addr in;
    unsigned plen;
    if (st_net_parse_cidr(dst, &in, &plen) < 0)
        return st_err_set(err, -EINVAL, "adding a route on %s: invalid destination '%s'", ifname,
                          dst ? dst : "(null)");
    return route_ensure(net, ifname, dst, &in, plen, gateway, err);
}
