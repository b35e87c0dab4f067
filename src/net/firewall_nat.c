/* A router's NAT as an nftables ruleset for its namespace: table
 * `ip stratos-nat`, replaced whole in one transaction like the security
 * groups' tables (firewall.c applies it).
 *
 * - prerouting: each floating IP is DNATed to its fixed IP, whichever side
 *   the packet comes from (the agent puts the floating IPs as /32
 *   addresses on the gateway interface, so the router answers ARP for
 *   them).
 * - postrouting, out of the gateway interface: a fixed IP that has a
 *   floating IP leaves as that floating IP; the rest of the internal
 *   subnets leave as the gateway address when SNAT is on (Neutron's
 *   enable_snat). Replies are un-NATed by conntrack.
 * - hairpin: a server reaching another server's floating IP from inside
 *   is DNATed back out of an internal interface; without a source NAT the
 *   target would answer the client directly, from its fixed IP, and the
 *   client would drop the answer. Such packets are masqueraded to the
 *   router's own address on that subnet, as Neutron does.
 * Maps keep the cost of a packet flat in the number of floating IPs. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "lib/cleanup.h"
#include "net/firewall-priv.h"
#include "net/firewall.h"
#include "net/net.h"

struct fip {
    const char *ip, *fixed;
};

static int fip_cmp(const void *a, const void *b)
{
    return strcmp(((const struct fip *)a)->ip, ((const struct fip *)b)->ip);
}

static void print_map(FILE *out, const char *prefix, const struct fip *v, size_t n, bool dnat)
{
    fprintf(out, "\t\t%s map { ", prefix);
    for (size_t i = 0; i < n; i++)
        fprintf(out, "%s%s : %s", i ? ", " : "", dnat ? v[i].ip : v[i].fixed,
                dnat ? v[i].fixed : v[i].ip);
    fputs(" }\n", out);
}

int st_fw_render_router(json_t *router, const char *gw_ifname, char **ret, struct st_err **err)
{
    const char *id = json_string_value(json_object_get(router, "id"));
    if (!json_is_object(router) || !st_fw_id_valid(id))
        return st_err_set(err, -EINVAL, "rendering router NAT: the router has no valid id");

    json_t *gw = json_object_get(router, "gateway");
    const char *gw_ip = NULL;
    if (json_is_object(gw)) {
        gw_ip = json_string_value(json_object_get(gw, "ip"));
        if (!st_fw_ipv4_valid(gw_ip))
            return st_err_set(err, -EINVAL, "rendering NAT of router %s: bad gateway ip", id);
        if (!gw_ifname || st_net_check_ifname(gw_ifname, NULL) < 0)
            return st_err_set(err, -EINVAL,
                              "rendering NAT of router %s: bad gateway interface name '%s'", id,
                              gw_ifname ? gw_ifname : "");
    }
    json_t *snat_v = json_object_get(router, "snat");
    bool snat = !snat_v || json_is_true(snat_v);

    /* internal subnets, normalised, sorted, once each */
    json_t *ifaces = json_object_get(router, "interfaces");
    size_t n_if = json_is_array(ifaces) ? json_array_size(ifaces) : 0;
    st_autofree char(*cidrs)[32] = st_xcalloc(n_if ? n_if : 1, sizeof(*cidrs));
    st_autofree const char **cidr_ptrs = st_new0(const char *, n_if);
    size_t n_cidrs = 0;
    for (size_t i = 0; i < n_if; i++) {
        const char *c = json_string_value(json_object_get(json_array_get(ifaces, i), "cidr"));
        if (!st_fw_cidr_normalize(c, cidrs[n_cidrs]) || !cidrs[n_cidrs][0])
            return st_err_set(err, -EINVAL, "rendering NAT of router %s: bad interface cidr '%s'",
                              id, c ? c : "");
        cidr_ptrs[n_cidrs] = cidrs[n_cidrs];
        n_cidrs++;
    }
    qsort(cidr_ptrs, n_cidrs, sizeof(*cidr_ptrs), st_fw_strcmp_ptr);
    size_t w = 0;
    for (size_t i = 0; i < n_cidrs; i++)
        if (w == 0 || strcmp(cidr_ptrs[i], cidr_ptrs[w - 1]) != 0)
            cidr_ptrs[w++] = cidr_ptrs[i];
    n_cidrs = w;

    /* floating IPs that are associated, sorted by floating IP */
    json_t *fips_v = json_object_get(router, "floating_ips");
    size_t n_all = json_is_array(fips_v) ? json_array_size(fips_v) : 0;
    st_autofree struct fip *fips = st_new0(struct fip, n_all);
    size_t n_fips = 0;
    for (size_t i = 0; i < n_all; i++) {
        json_t *f = json_array_get(fips_v, i);
        const char *ip = json_string_value(json_object_get(f, "ip"));
        json_t *fixed = json_object_get(f, "fixed_ip");
        if (!fixed || json_is_null(fixed))
            continue; /* not associated: nothing to translate */
        if (!st_fw_ipv4_valid(ip) || !st_fw_ipv4_valid(json_string_value(fixed)))
            return st_err_set(err, -EINVAL, "rendering NAT of router %s: bad floating ip entry",
                              id);
        fips[n_fips++] = (struct fip){ip, json_string_value(fixed)};
    }
    qsort(fips, n_fips, sizeof(*fips), fip_cmp);
    for (size_t i = 1; i < n_fips; i++) {
        if (strcmp(fips[i].ip, fips[i - 1].ip) == 0)
            return st_err_set(err, -EINVAL,
                              "rendering NAT of router %s: floating ip %s listed twice", id,
                              fips[i].ip);
    }

    char *buf = NULL;
    size_t len = 0;
    FILE *out = st_fw_text_open(&buf, &len);
    fprintf(out,
            "# NAT of router %s, rendered by stratos.\n"
            "table ip stratos-nat {}\n"
            "delete table ip stratos-nat\n"
            "table ip stratos-nat {\n"
            "\tchain prerouting {\n"
            "\t\ttype nat hook prerouting priority dstnat; policy accept;\n",
            id);
    if (gw_ip && n_fips)
        print_map(out, "dnat to ip daddr", fips, n_fips, true);
    fputs("\t}\n"
          "\n\tchain postrouting {\n"
          "\t\ttype nat hook postrouting priority srcnat; policy accept;\n",
          out);
    if (gw_ip) {
        if (n_fips) {
            st_autofree char *prefix = st_sprintf("oifname \"%s\" snat to ip saddr", gw_ifname);
            print_map(out, prefix, fips, n_fips, false);
        }
        if (snat && n_cidrs) {
            fprintf(out, "\t\toifname \"%s\" ip saddr ", gw_ifname);
            if (n_cidrs > 1)
                fputs("{ ", out);
            for (size_t i = 0; i < n_cidrs; i++)
                fprintf(out, "%s%s", i ? ", " : "", cidr_ptrs[i]);
            fprintf(out, "%s snat to %s\n", n_cidrs > 1 ? " }" : "", gw_ip);
        }
        if (n_fips)
            fprintf(out, "\t\tiifname != \"%s\" oifname != \"%s\" ct status dnat masquerade\n",
                    gw_ifname, gw_ifname);
    }
    fputs("\t}\n}\n", out);
    fclose(out);
    *ret = buf;
    return 0;
}
