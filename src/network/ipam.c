/* IP address management: one store key per allocated address,
 * /network/ipam/<subnet>/<ip> = "<port>", written only if absent. The store's
 * compare-and-swap is the lock: two ports that race for an address cannot
 * both get it, whichever process or node they are made on, and an address
 * is free again the moment its key is deleted. A request for "any" address
 * takes the lowest free one of the subnet's allocation pools, never the
 * gateway (which belongs to the router interface of the subnet). */
#include "network/network-priv.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "lib/cleanup.h"
#include "lib/json.h"
#include "network/core-priv.h"
#include "network/model.h"
#include "store/kv.h"

static int cmp_u32(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return x < y ? -1 : x > y;
}

/* The addresses allocated in the subnet now, sorted, so the search below
 * tries only addresses that were free when it started. */
static int used_addresses(struct st_kv *kv, const char *subnet_id, uint32_t **ret, size_t *ret_n,
                          struct st_err **err)
{
    st_autofree char *prefix = st_sprintf("%s%s/", ST_NETWORK_IPAM_PREFIX, subnet_id);
    st_autofree uint32_t *used = NULL;
    size_t n = 0, cap = 0;
    st_autofree char *after = NULL;
    for (;;) {
        st_autoptr(st_kv_list) l = NULL;
        int r = st_kv_list(kv, prefix, after, 4096, &l, err);
        if (r < 0)
            return r;
        for (size_t i = 0; i < l->count; i++) {
            uint32_t a;
            if (net_ip_parse(l->entries[i].key + strlen(prefix), &a) < 0)
                continue;
            if (n == cap) {
                cap = cap ? cap * 2 : 64;
                used = st_xrealloc(used, cap * sizeof(*used));
            }
            used[n++] = a;
        }
        if (!l->more || l->count == 0)
            break;
        free(after);
        after = st_strdup(l->entries[l->count - 1].key);
    }
    if (n)
        qsort(used, n, sizeof(*used), cmp_u32);
    *ret = st_steal(&used);
    *ret_n = n;
    return 0;
}

static int claim_address(struct st_kv *kv, const char *subnet_id, uint32_t addr,
                         const char *port_id, struct st_err **err)
{
    char ip[16];
    net_ip_format(addr, ip);
    st_autofree char *key = st_sprintf("%s%s/%s", ST_NETWORK_IPAM_PREFIX, subnet_id, ip);
    return net_claim(kv, key, port_id, err);
}

static int allocate_specific(struct st_kv *kv, json_t *subnet, const char *want,
                             const char *port_id, char ret_ip[16], struct st_err **err)
{
    const char *id = json_string_value(json_object_get(subnet, "id"));
    const char *cidr = json_string_value(json_object_get(subnet, "cidr"));
    uint32_t net, addr;
    int len;
    if (net_cidr_parse(cidr, &net, &len) < 0)
        return st_err_set(err, -EINVAL, "subnet %s has a bad cidr", id);
    uint32_t mask = net_prefix_mask(len);
    /* The network and broadcast addresses are no host's (Neutron). */
    if (net_ip_parse(want, &addr) < 0 || (addr & mask) != net ||
        (len < 31 && (addr == net || addr == (net | ~mask))))
        return st_err_set(err, -EINVAL,
                          "Invalid input for operation: IP address %s is not a valid IP for "
                          "the specified subnet.",
                          want);
    int r = claim_address(kv, id, addr, port_id, err);
    if (r == -EEXIST)
        return st_err_set(err, -EEXIST, "IP address %s already allocated in subnet %s", want, id);
    if (r < 0)
        return r;
    net_ip_format(addr, ret_ip);
    return 0;
}

int net_ipam_allocate(struct st_kv *kv, json_t *subnet, const char *want, const char *port_id,
                      char ret_ip[16], struct st_err **err)
{
    if (want)
        return allocate_specific(kv, subnet, want, port_id, ret_ip, err);
    const char *id = json_string_value(json_object_get(subnet, "id"));
    const char *network_id = json_string_value(json_object_get(subnet, "network_id"));
    uint32_t gateway = 0;
    bool has_gateway =
        net_ip_parse(json_string_value(json_object_get(subnet, "gateway_ip")), &gateway) == 0;
    st_autofree uint32_t *used = NULL;
    size_t n_used = 0;
    int r = used_addresses(kv, id, &used, &n_used, err);
    if (r < 0)
        return st_err_prefix(err, r, "allocating an address in subnet %s", id);
    size_t i;
    json_t *pool;
    json_array_foreach(json_object_get(subnet, "allocation_pools"), i, pool)
    {
        uint32_t start, end;
        if (net_ip_parse(json_string_value(json_object_get(pool, "start")), &start) < 0 ||
            net_ip_parse(json_string_value(json_object_get(pool, "end")), &end) < 0)
            continue;
        for (uint64_t a = start; a <= end; a++) {
            uint32_t addr = (uint32_t)a;
            if ((has_gateway && addr == gateway) ||
                (n_used && bsearch(&addr, used, n_used, sizeof(*used), cmp_u32)))
                continue;
            r = claim_address(kv, id, addr, port_id, err);
            if (r == -EEXIST)
                continue; /* taken since the list: the next one */
            if (r < 0)
                return st_err_prefix(err, r, "allocating an address in subnet %s", id);
            net_ip_format(addr, ret_ip);
            return 0;
        }
    }
    return st_err_set(err, -ENOSPC, "No more IP addresses available on network %s.",
                      network_id ? network_id : "");
}

int net_ipam_release(struct st_kv *kv, const char *subnet_id, const char *ip, struct st_err **err)
{
    uint32_t addr;
    if (!subnet_id || net_ip_parse(ip, &addr) < 0)
        return 0; /* nothing this module could have written */
    st_autofree char *key = st_sprintf("%s%s/%s", ST_NETWORK_IPAM_PREFIX, subnet_id, ip);
    int r = net_unclaim(kv, key, err);
    return r < 0 ? st_err_prefix(err, r, "releasing %s in subnet %s", ip, subnet_id) : 0;
}
