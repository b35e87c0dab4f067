/* A subnet's addressing, checked and completed as Neutron does: the CIDR
 * (host bits zero), the gateway (default: the first host; null: none), the
 * allocation pools (default: the rest of the hosts; inside the CIDR, not
 * overlapping, not holding the gateway), DNS servers and host routes. Used
 * by create and by update, where what the request leaves out keeps its
 * stored value. */
#include "network/core-priv.h"

#include <errno.h>
#include <string.h>

#include "lib/cleanup.h"
#include "lib/json.h"
#include "network/network-priv.h"

struct range {
    uint32_t start, end;
};

static int check_cidr(const char *cidr, uint32_t *ret_net, int *ret_len, struct st_err **err)
{
    uint32_t addr;
    int len;
    if (!cidr)
        return st_err_set(err, -EINVAL,
                          "Bad subnets request: a subnetpool must be specified in "
                          "the absence of a cidr.");
    if (net_cidr_parse(cidr, &addr, &len) < 0)
        return st_err_set(err, -EINVAL,
                          "Invalid input for cidr. Reason: '%s' is not a valid IP "
                          "subnet.",
                          cidr);
    uint32_t net = addr & net_prefix_mask(len);
    if (net != addr) {
        char ip[16];
        net_ip_format(net, ip);
        return st_err_set(err, -EINVAL,
                          "Invalid input for cidr. Reason: '%s' isn't a recognized IP subnet "
                          "cidr, '%s/%d' is recommended.",
                          cidr, ip, len);
    }
    *ret_net = net;
    *ret_len = len;
    return 0;
}

/* The first and last host of net/len (the whole range for /31 and /32). */
static struct range hosts(uint32_t net, int len)
{
    uint32_t last = net | ~net_prefix_mask(len);
    if (len >= 31)
        return (struct range){net, last};
    return (struct range){net + 1, last - 1};
}

static json_t *pool_json(uint32_t start, uint32_t end)
{
    char s[16], e[16];
    net_ip_format(start, s);
    net_ip_format(end, e);
    return json_pack("{s:s, s:s}", "start", s, "end", e);
}

static json_t *default_pools(struct range h, bool has_gw, uint32_t gw)
{
    json_t *pools = json_array();
    if (!has_gw || gw < h.start || gw > h.end) {
        json_array_append_new(pools, pool_json(h.start, h.end));
        return pools;
    }
    if (gw > h.start)
        json_array_append_new(pools, pool_json(h.start, gw - 1));
    if (gw < h.end)
        json_array_append_new(pools, pool_json(gw + 1, h.end));
    return pools;
}

static int check_pools(json_t *pools, const char *cidr, struct range h, json_t **ret,
                       struct st_err **err)
{
    if (!json_is_array(pools))
        return st_err_set(err, -EINVAL,
                          "Invalid input for allocation_pools. Reason: Invalid "
                          "data format for IP pool: it must be a list.");
    size_t n = json_array_size(pools), i;
    st_autofree struct range *r = st_new0(struct range, n);
    json_t *p;
    json_array_foreach(pools, i, p)
    {
        const char *s = json_string_value(json_object_get(p, "start"));
        const char *e = json_string_value(json_object_get(p, "end"));
        if (!s || !e || net_ip_parse(s, &r[i].start) < 0 || net_ip_parse(e, &r[i].end) < 0)
            return st_err_set(err, -EINVAL,
                              "Invalid input for allocation_pools. Reason: Invalid data format "
                              "for IP pool: each needs a valid 'start' and 'end'.");
        if (r[i].start > r[i].end)
            return st_err_set(err, -EINVAL, "The allocation pool %s-%s is not valid.", s, e);
        if (r[i].start < h.start || r[i].end > h.end)
            return st_err_set(err, -EINVAL,
                              "The allocation pool %s-%s spans beyond the subnet cidr %s.", s, e,
                              cidr);
        for (size_t j = 0; j < i; j++)
            if (r[i].start <= r[j].end && r[j].start <= r[i].end) {
                json_t *o = json_array_get(pools, j);
                return st_err_set(err, -EINVAL, "Found overlapping allocation pools: %s-%s %s-%s",
                                  json_string_value(json_object_get(o, "start")),
                                  json_string_value(json_object_get(o, "end")), s, e);
            }
    }
    json_t *out = json_array();
    for (i = 0; i < n; i++)
        json_array_append_new(out, pool_json(r[i].start, r[i].end));
    *ret = out;
    return 0;
}

static int check_nameservers(json_t *v, json_t **ret, struct st_err **err)
{
    if (json_is_null(v)) {
        *ret = json_array();
        return 0;
    }
    if (!json_is_array(v))
        return st_err_set(err, -EINVAL,
                          "Invalid input for dns_nameservers. Reason: it must be a list.");
    st_autoptr(json_t) out = json_array();
    size_t i, j;
    json_t *s, *seen;
    json_array_foreach(v, i, s)
    {
        uint32_t a;
        const char *ip = json_string_value(s);
        if (!ip || net_ip_parse(ip, &a) < 0)
            return st_err_set(err, -EINVAL,
                              "Invalid input for dns_nameservers. Reason: '%s' is not a valid "
                              "nameserver. '%s' is not a valid IP address.",
                              ip ?: "?", ip ?: "?");
        json_array_foreach(
            out, j,
            seen) if (strcmp(json_string_value(seen), ip) ==
                      0) return st_err_set(err, -EINVAL,
                                           "Invalid input for dns_nameservers. Reason: Duplicate "
                                           "nameserver '%s'.",
                                           ip);
        json_array_append_new(out, json_string(ip));
    }
    *ret = st_steal(&out);
    return 0;
}

static int check_routes(json_t *v, json_t **ret, struct st_err **err)
{
    if (json_is_null(v)) {
        *ret = json_array();
        return 0;
    }
    if (!json_is_array(v))
        return st_err_set(err, -EINVAL,
                          "Invalid input for host_routes. Reason: it must be a list.");
    st_autoptr(json_t) out = json_array();
    size_t i;
    json_t *route;
    json_array_foreach(v, i, route)
    {
        const char *dest = json_string_value(json_object_get(route, "destination"));
        const char *hop = json_string_value(json_object_get(route, "nexthop"));
        uint32_t a, net;
        int len;
        if (!dest || !hop || net_cidr_parse(dest, &net, &len) < 0 || net_ip_parse(hop, &a) < 0)
            return st_err_set(err, -EINVAL,
                              "Invalid input for host_routes. Reason: Invalid data format for "
                              "hostroute: each needs a 'destination' CIDR and a 'nexthop' IP.");
        char ip[16];
        net_ip_format(net & net_prefix_mask(len), ip);
        st_autofree char *norm = st_sprintf("%s/%d", ip, len);
        json_array_append_new(out, json_pack("{s:s, s:s}", "destination", norm, "nexthop", hop));
    }
    *ret = st_steal(&out);
    return 0;
}

int net_subnet_check(json_t *req, json_t *base, json_t *out, struct st_err **err)
{
    const char *cidr = json_string_value(json_object_get(base ? base : req, "cidr"));
    if (!base && json_object_get(req, "cidr") && !cidr)
        return st_err_set(err, -EINVAL, "Invalid input for cidr. Reason: it must be a string.");
    uint32_t net = 0;
    int len = 0, r;
    if ((r = check_cidr(cidr, &net, &len, err)) < 0)
        return r;
    bool dhcp = base ? json_is_true(json_object_get(base, "enable_dhcp")) : true;
    if ((r = net_get_bool(req, "enable_dhcp", &dhcp, err)) < 0)
        return r;
    if (len > 30 && dhcp)
        return st_err_set(err, -EINVAL,
                          "Invalid input for operation: Subnet has a prefix "
                          "length that is incompatible with DHCP service enabled.");
    struct range h = hosts(net, len);

    /* The gateway: asked for (null = none), kept, or the first host. */
    json_t *gw_v = json_object_get(req, "gateway_ip");
    if (!gw_v && base)
        gw_v = json_object_get(base, "gateway_ip");
    uint32_t gw = 0;
    bool has_gw = true;
    char gw_text[16];
    if (!gw_v) {
        gw = h.start;
    } else if (json_is_null(gw_v)) {
        has_gw = false;
    } else {
        const char *s = json_string_value(gw_v);
        if (!s || net_ip_parse(s, &gw) < 0)
            return st_err_set(err, -EINVAL,
                              "Invalid input for gateway_ip. Reason: '%s' is not a valid IP "
                              "address.",
                              s ?: "?");
        if (gw < h.start || gw > h.end)
            return st_err_set(err, -EINVAL,
                              "Invalid input for operation: Gateway is not valid on subnet.");
    }
    net_ip_format(gw, gw_text);

    json_t *pools_v = json_object_get(req, "allocation_pools");
    st_autoptr(json_t) pools = NULL;
    if (pools_v && !json_is_null(pools_v)) {
        if ((r = check_pools(pools_v, cidr, h, &pools, err)) < 0)
            return r;
    } else if (base && !pools_v) {
        pools = json_incref(json_object_get(base, "allocation_pools"));
    } else {
        pools = default_pools(h, has_gw, gw);
    }
    size_t i;
    json_t *p;
    json_array_foreach(pools, i, p)
    {
        uint32_t s = 0, e = 0;
        net_ip_parse(json_string_value(json_object_get(p, "start")), &s);
        net_ip_parse(json_string_value(json_object_get(p, "end")), &e);
        if (has_gw && gw >= s && gw <= e)
            return st_err_set(err, -EBUSY, "Gateway ip %s conflicts with allocation pool %s-%s",
                              gw_text, json_string_value(json_object_get(p, "start")),
                              json_string_value(json_object_get(p, "end")));
    }

    st_autoptr(json_t) dns = NULL;
    st_autoptr(json_t) routes = NULL;
    json_t *v;
    if ((v = json_object_get(req, "dns_nameservers"))) {
        if ((r = check_nameservers(v, &dns, err)) < 0)
            return r;
    } else {
        dns = base ? json_incref(json_object_get(base, "dns_nameservers")) : json_array();
    }
    if ((v = json_object_get(req, "host_routes"))) {
        if ((r = check_routes(v, &routes, err)) < 0)
            return r;
    } else {
        routes = base ? json_incref(json_object_get(base, "host_routes")) : json_array();
    }
    char net_text[16];
    net_ip_format(net, net_text);
    json_object_set_new(out, "cidr", json_sprintf("%s/%d", net_text, len));
    json_object_set_new(out, "gateway_ip", has_gw ? json_string(gw_text) : json_null());
    json_object_set(out, "allocation_pools", pools);
    json_object_set(out, "dns_nameservers", dns);
    json_object_set(out, "host_routes", routes);
    json_object_set_new(out, "enable_dhcp", json_boolean(dhcp));
    return 0;
}

bool net_cidrs_overlap(const char *a, const char *b)
{
    uint32_t na, nb;
    int la, lb;
    if (net_cidr_parse(a, &na, &la) < 0 || net_cidr_parse(b, &nb, &lb) < 0)
        return false;
    int len = la < lb ? la : lb;
    return (na & net_prefix_mask(len)) == (nb & net_prefix_mask(len));
}
