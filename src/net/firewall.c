/* Security groups as one nftables ruleset per node, and the one seam through
 * which every ruleset reaches the kernel (libnftables, in a namespace).
 *
 * The ruleset is text rendered from the node view, so what the kernel gets
 * is exactly what the golden files show, and applying it is one nft
 * transaction that first deletes and then recreates tables `inet stratos`
 * and `bridge stratos`: re-applying with fewer ports or groups leaves no
 * stale chain, set or map behind, and no packet ever sees half a ruleset.
 *
 * How bridged traffic is filtered (measured on kernel 6.18, where
 * br_netfilter is built in and CONFIG_NF_CONNTRACK_BRIDGE is off): with
 * bridge-nf-call-iptables = 1 a bridged IPv4 packet traverses the inet
 * hooks with iifname = oifname = the *bridge*, never the bridge port, so a
 * port is known there by (bridge, address); the bridge family sees the
 * port (iifname = the veth) but has no conntrack. Hence:
 * - table bridge stratos, prerouting: anti-spoofing on the veth. A secured
 *   port may send IPv4 only from its own MAC and address, ARP only for its
 *   own address (or 0.0.0.0 probes), a DHCP request from 0.0.0.0; nothing
 *   else. IPv6 is dropped both ways on secured ports: the network model is
 *   IPv4-only, so an IPv6 rule has nothing to act on and IPv6 would be an
 *   unfiltered side door (IPv6 rules in groups are skipped).
 * - table inet stratos: stateful security groups. Two base chains on the
 *   forward hook: egress (priority filter) looks up `iifname . ip saddr`
 *   in a verdict map of source ports, ingress (priority filter + 10)
 *   `oifname . ip daddr` in a map of destination ports. An accept in one
 *   base chain only ends that chain, so a packet between two ports of this
 *   node passes the sender's egress and then the receiver's ingress, with
 *   no marks. Established and related traffic is accepted first; invalid
 *   traffic of a secured port is dropped. The input and output hooks apply
 *   the same maps to traffic between a port and the node itself.
 * - conntrack zones: tenant networks may overlap, so each VXLAN bridge's
 *   traffic is tracked in its own zone (`ct zone set` at priority raw).
 * Each group is one chain per direction; its rules are merged where they
 * differ only in ports or ICMP types (`tcp dport { 80, 443, 1000-2000 }`),
 * and a remote group is a named set of its members' addresses. Ports with
 * the same groups share one chain per direction (ports-<n>-ingress) that
 * jumps to their groups' chains and drops what none accepted, so a
 * thousand ports in "default" cost map elements, not chains; likewise
 * anti-spoofing is set elements in five shared rules. Ports without port
 * security, router interfaces and anything else on the bridges are not
 * filtered. Groups are always stateful (a "stateful": false group is
 * treated as stateful), and a connection that a removed rule let in lives
 * on in conntrack until it ends: the ruleset does not flush conntrack. */
#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include <nftables/libnftables.h>

#include "lib/cleanup.h"
#include "lib/log.h"
#include "net/firewall-priv.h"
#include "net/firewall.h"
#include "net/net.h"

/* ---- validation and text helpers (firewall-priv.h) ---- */

bool st_fw_id_valid(const char *s)
{
    if (!s || !*s || strlen(s) > 64)
        return false;
    for (const char *p = s; *p; p++)
        if (!isalnum((unsigned char)*p) && *p != '-')
            return false;
    return true;
}

bool st_fw_ipv4_valid(const char *s)
{
    struct in_addr a;
    return s && inet_pton(AF_INET, s, &a) == 1;
}

bool st_fw_mac_parse(const char *s, char buf[18])
{
    if (!s || strlen(s) != 17)
        return false;
    for (int i = 0; i < 17; i++) {
        if (i % 3 == 2) {
            if (s[i] != ':')
                return false;
        } else if (!isxdigit((unsigned char)s[i])) {
            return false;
        }
        buf[i] = (char)tolower((unsigned char)s[i]);
    }
    buf[17] = '\0';
    return true;
}

bool st_fw_cidr_normalize(const char *s, char buf[32])
{
    if (!s || strlen(s) >= 32)
        return false;
    char addr[32];
    strcpy(addr, s);
    long prefix = 32;
    char *slash = strchr(addr, '/');
    if (slash) {
        *slash = '\0';
        const char *p = slash + 1;
        if (!*p || strlen(p) > 2)
            return false;
        for (const char *q = p; *q; q++)
            if (!isdigit((unsigned char)*q))
                return false;
        prefix = strtol(p, NULL, 10);
        if (prefix > 32)
            return false;
    }
    struct in_addr a;
    if (inet_pton(AF_INET, addr, &a) != 1)
        return false;
    if (prefix == 0) {
        buf[0] = '\0';
        return true;
    }
    uint32_t mask = prefix == 32 ? 0xffffffffu : ~(0xffffffffu >> prefix);
    a.s_addr = htonl(ntohl(a.s_addr) & mask);
    char net[INET_ADDRSTRLEN];
    inet_ntop(AF_INET, &a, net, sizeof(net));
    snprintf(buf, 32, "%s/%u", net, (unsigned)prefix & 0x3f);
    return true;
}

FILE *st_fw_text_open(char **buf, size_t *len)
{
    FILE *f = open_memstream(buf, len);
    if (!f)
        abort();
    return f;
}

int st_fw_strcmp_ptr(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

int st_fw_vni_zone(json_t *vni)
{
    if (!json_is_integer(vni) || json_integer_value(vni) <= 0)
        return 0;
    json_int_t v = json_integer_value(vni);
    return v <= 65535 ? (int)v : (int)(1 + v % 65535);
}

void st_fw_port_ifname(const char *port_id, char buf[16])
{
    size_t n = 0;
    memcpy(buf, "stp-", 4);
    n = 4;
    for (const char *p = port_id; p && *p && n < 14; p++)
        if (isxdigit((unsigned char)*p))
            buf[n++] = (char)tolower((unsigned char)*p);
    buf[n] = '\0';
}

/* ---- a growing array of strings (borrowed from the view) ---- */

struct strv {
    const char **v;
    size_t n, cap;
};

static void strv_push(struct strv *sv, const char *s)
{
    if (sv->n == sv->cap) {
        sv->cap = sv->cap ? sv->cap * 2 : 16;
        sv->v = st_xrealloc(sv->v, sv->cap * sizeof(*sv->v));
    }
    sv->v[sv->n++] = s;
}

/* Sorts and drops duplicates. */
static void strv_sort_uniq(struct strv *sv)
{
    if (sv->n == 0)
        return;
    qsort(sv->v, sv->n, sizeof(*sv->v), st_fw_strcmp_ptr);
    size_t w = 1;
    for (size_t i = 1; i < sv->n; i++)
        if (strcmp(sv->v[i], sv->v[w - 1]) != 0)
            sv->v[w++] = sv->v[i];
    sv->n = w;
}

static void strv_free(struct strv *sv)
{
    free(sv->v);
}

/* ---- rules ---- */

/* Neutron's protocol names that mean something over IPv4. */
static const struct {
    const char *name;
    int number;
} protocols[] = {
    {"icmp", 1},   {"igmp", 2},  {"ipip", 4},   {"tcp", 6},       {"egp", 8}, {"udp", 17},
    {"dccp", 33},  {"rsvp", 46}, {"gre", 47},   {"esp", 50},      {"ah", 51}, {"ospf", 89},
    {"vrrp", 112}, {"pgm", 113}, {"sctp", 132}, {"udplite", 136},
};

/* The protocols whose rules match destination ports. */
static const char *port_protocol_name(int proto)
{
    switch (proto) {
    case 6:
        return "tcp";
    case 17:
        return "udp";
    case 33:
        return "dccp";
    case 132:
        return "sctp";
    case 136:
        return "udplite";
    default:
        return NULL;
    }
}

#define PROTO_ANY (-1)

/* -1 (any), 0..255, or -EINVAL. */
static int parse_protocol(json_t *v)
{
    if (!v || json_is_null(v))
        return PROTO_ANY;
    if (json_is_integer(v)) {
        json_int_t n = json_integer_value(v);
        return n >= 0 && n <= 255 ? (int)n : -EINVAL;
    }
    if (!json_is_string(v))
        return -EINVAL;
    const char *s = json_string_value(v);
    if (!*s || strcmp(s, "any") == 0)
        return PROTO_ANY;
    if (isdigit((unsigned char)s[0])) {
        char *end;
        long n = strtol(s, &end, 10);
        return *end == '\0' && n >= 0 && n <= 255 ? (int)n : -EINVAL;
    }
    for (size_t i = 0; i < ST_ARRAY_SIZE(protocols); i++)
        if (strcasecmp(s, protocols[i].name) == 0)
            return protocols[i].number;
    return -EINVAL;
}

/* A port number or ICMP type/code: -1 when absent, -EINVAL when out of
 * range. */
static int parse_number(json_t *v, int max)
{
    if (!v || json_is_null(v))
        return -1;
    if (!json_is_integer(v))
        return -EINVAL;
    json_int_t n = json_integer_value(v);
    return n >= 0 && n <= max ? (int)n : -EINVAL;
}

struct range {
    int lo, hi;
};

static int range_cmp(const void *a, const void *b)
{
    const struct range *x = a, *y = b;
    if (x->lo != y->lo)
        return x->lo < y->lo ? -1 : 1;
    return x->hi < y->hi ? -1 : x->hi > y->hi;
}

static void range_push(struct range **v, size_t *n, int lo, int hi)
{
    *v = st_xrealloc(*v, (*n + 1) * sizeof(**v));
    (*v)[(*n)++] = (struct range){lo, hi};
}

/* The rules of one group and direction that share a remote and a
 * protocol, merged into one nft rule (plus one per ICMP type and code). */
struct bucket {
    char remote[160];    /* "ip saddr 10.0.0.0/8 ", "ip daddr @sg-<id>-members " or "" */
    int proto;           /* PROTO_ANY or 0..255 */
    bool any;            /* some rule puts no limit on ports or ICMP type */
    struct range *ports; /* ports, or ICMP types as (type, type) */
    size_t n_ports;
    struct range *codes; /* ICMP (type, code) */
    size_t n_codes;
};

struct buckets {
    struct bucket *v;
    size_t n;
};

static struct bucket *bucket_get(struct buckets *bs, const char *remote, int proto)
{
    for (size_t i = 0; i < bs->n; i++)
        if (bs->v[i].proto == proto && strcmp(bs->v[i].remote, remote) == 0)
            return &bs->v[i];
    bs->v = st_xrealloc(bs->v, (bs->n + 1) * sizeof(*bs->v));
    struct bucket *b = &bs->v[bs->n++];
    memset(b, 0, sizeof(*b));
    snprintf(b->remote, sizeof(b->remote), "%s", remote);
    b->proto = proto;
    return b;
}

static int bucket_cmp(const void *a, const void *b)
{
    const struct bucket *x = a, *y = b;
    int c = strcmp(x->remote, y->remote);
    if (c)
        return c;
    return x->proto < y->proto ? -1 : x->proto > y->proto;
}

static void buckets_free(struct buckets *bs)
{
    for (size_t i = 0; i < bs->n; i++) {
        free(bs->v[i].ports);
        free(bs->v[i].codes);
    }
    free(bs->v);
}

/* Adds one Neutron rule to the buckets of its direction. Returns -EINVAL
 * with a reason for a rule that cannot be rendered; the caller skips it
 * (a skipped rule allows nothing: the firewall fails closed). */
static int bucket_add_rule(struct buckets *bs, json_t *rule, bool ingress, struct strv *remotes,
                           const char **reason)
{
    const char *ethertype = json_string_value(json_object_get(rule, "ethertype"));
    if (ethertype && strcmp(ethertype, "IPv4") != 0) {
        *reason = "not IPv4";
        return -EINVAL;
    }
    int proto = parse_protocol(json_object_get(rule, "protocol"));
    if (proto < PROTO_ANY) {
        *reason = "unknown protocol";
        return -EINVAL;
    }

    char remote[160] = "";
    const char *addr = ingress ? "saddr" : "daddr";
    json_t *prefix_v = json_object_get(rule, "remote_ip_prefix");
    json_t *group_v = json_object_get(rule, "remote_group_id");
    if (prefix_v && !json_is_null(prefix_v)) {
        char cidr[32];
        if (!st_fw_cidr_normalize(json_string_value(prefix_v), cidr)) {
            *reason = "remote_ip_prefix is not an IPv4 prefix";
            return -EINVAL;
        }
        if (cidr[0])
            snprintf(remote, sizeof(remote), "ip %s %s ", addr, cidr);
    }
    if (group_v && !json_is_null(group_v)) {
        const char *gid = json_string_value(group_v);
        if (!st_fw_id_valid(gid)) {
            *reason = "remote_group_id is not an id";
            return -EINVAL;
        }
        size_t len = strlen(remote);
        snprintf(remote + len, sizeof(remote) - len, "ip %s @sg-%s-members ", addr, gid);
        strv_push(remotes, gid);
    }

    const char *l4 = port_protocol_name(proto);
    int lo = -1, hi = -1;
    if (l4 || proto == 1) {
        int max = l4 ? 65535 : 255;
        lo = parse_number(json_object_get(rule, "port_range_min"), max);
        hi = parse_number(json_object_get(rule, "port_range_max"), max);
        if (lo < -1 || hi < -1) {
            *reason = "port_range_min/max out of range";
            return -EINVAL;
        }
        if (l4) {
            if (lo < 0)
                lo = hi; /* only a maximum: that one port */
            if (hi < 0)
                hi = lo;
            if (lo > hi) {
                *reason = "port_range_min is above port_range_max";
                return -EINVAL;
            }
        }
    }

    struct bucket *b = bucket_get(bs, remote, proto);
    if (proto == PROTO_ANY || (!l4 && proto != 1) || lo < 0)
        b->any = true; /* any port, any ICMP type or a protocol without ports */
    else if (l4)
        range_push(&b->ports, &b->n_ports, lo, hi);
    else if (hi < 0)
        range_push(&b->ports, &b->n_ports, lo, lo); /* ICMP type, any code */
    else
        range_push(&b->codes, &b->n_codes, lo, hi); /* ICMP type and code */
    return 0;
}

/* Sorts ranges and merges those that overlap or touch: nft refuses
 * overlapping intervals in some versions, and the text stays canonical. */
static void ranges_merge(struct range *v, size_t *n)
{
    if (*n == 0)
        return;
    qsort(v, *n, sizeof(*v), range_cmp);
    size_t w = 0;
    for (size_t i = 1; i < *n; i++) {
        if (v[i].lo <= v[w].hi + 1) {
            if (v[i].hi > v[w].hi)
                v[w].hi = v[i].hi;
        } else {
            v[++w] = v[i];
        }
    }
    *n = w + 1;
}

static void print_ranges(FILE *out, const struct range *v, size_t n)
{
    if (n > 1)
        fputs("{ ", out);
    for (size_t i = 0; i < n; i++) {
        if (i)
            fputs(", ", out);
        if (v[i].lo == v[i].hi)
            fprintf(out, "%d", v[i].lo);
        else
            fprintf(out, "%d-%d", v[i].lo, v[i].hi);
    }
    if (n > 1)
        fputs(" }", out);
}

static void print_bucket(FILE *out, struct bucket *b)
{
    const char *l4 = port_protocol_name(b->proto);
    if (b->proto == PROTO_ANY) {
        fprintf(out, "\t\t%saccept\n", b->remote);
        return;
    }
    if (b->any || (!l4 && b->proto != 1)) {
        if (l4 || b->proto == 1)
            fprintf(out, "\t\t%smeta l4proto %s accept\n", b->remote, l4 ? l4 : "icmp");
        else
            fprintf(out, "\t\t%smeta l4proto %d accept\n", b->remote, b->proto);
        return;
    }
    if (b->n_ports) {
        ranges_merge(b->ports, &b->n_ports);
        fprintf(out, "\t\t%s%s ", b->remote, l4 ? l4 : "icmp");
        fputs(l4 ? "dport " : "type ", out);
        print_ranges(out, b->ports, b->n_ports);
        fputs(" accept\n", out);
    }
    if (b->n_codes) {
        /* a (type, code) whose type is already accepted whole adds nothing */
        qsort(b->codes, b->n_codes, sizeof(*b->codes), range_cmp);
        for (size_t i = 0; i < b->n_codes; i++) {
            const struct range *c = &b->codes[i];
            if (i && range_cmp(c, &b->codes[i - 1]) == 0)
                continue;
            bool covered = false;
            for (size_t j = 0; j < b->n_ports; j++)
                covered |= b->ports[j].lo <= c->lo && c->lo <= b->ports[j].hi;
            if (!covered)
                fprintf(out, "\t\t%sicmp type %d icmp code %d accept\n", b->remote, c->lo, c->hi);
        }
    }
}

/* The chain of one group and direction. Remote groups it names are added
 * to remotes. */
static void print_group_chain(FILE *out, const char *sg_id, json_t *sg, bool ingress,
                              struct strv *remotes)
{
    const char *dir = ingress ? "ingress" : "egress";
    json_t *rules = json_object_get(sg, "rules");
    size_t n = json_is_array(rules) ? json_array_size(rules) : 0;

    /* rule order does not matter to the verdict (every rule accepts); the
     * text is made independent of it by sorting the merged rules */
    struct buckets bs = {0};
    for (size_t i = 0; i < n; i++) {
        json_t *r = json_array_get(rules, i);
        const char *d = json_string_value(json_object_get(r, "direction"));
        if (!json_is_object(r) || !d || strcmp(d, dir) != 0)
            continue;
        const char *reason = NULL;
        if (bucket_add_rule(&bs, r, ingress, remotes, &reason) < 0 &&
            strcmp(reason, "not IPv4") != 0) {
            const char *id = json_string_value(json_object_get(r, "id"));
            st_log_warn("firewall_rule_skipped", "security_group=%s rule=%s reason=\"%s\"", sg_id,
                        id ? id : "?", reason);
        }
    }
    if (bs.n)
        qsort(bs.v, bs.n, sizeof(*bs.v), bucket_cmp);

    fprintf(out, "\n\tchain sg-%s-%s {\n", sg_id, dir);
    for (size_t i = 0; i < bs.n; i++)
        print_bucket(out, &bs.v[i]);
    fputs("\t}\n", out);
    buckets_free(&bs);
}

/* ---- ports ---- */

struct port {
    const char *id;
    const char *ip; /* NULL: none yet */
    const char *bridge;
    char mac[18];
    char ifname[16];
    json_t *groups;
    char *groups_key; /* its valid group ids, sorted, comma-separated */
    size_t groupset;  /* 1-based index of groups_key among the ports' */
};

static int port_cmp(const void *a, const void *b)
{
    return strcmp(((const struct port *)a)->id, ((const struct port *)b)->id);
}

struct net {
    const char *id;
    const char *bridge;
    int zone; /* 0: the default zone */
};

static int net_cmp(const void *a, const void *b)
{
    return strcmp(((const struct net *)a)->bridge, ((const struct net *)b)->bridge);
}

static int load_networks(json_t *view, struct net **ret, size_t *ret_n, struct st_err **err)
{
    json_t *nets = json_object_get(view, "networks");
    size_t n = json_is_array(nets) ? json_array_size(nets) : 0;
    struct net *v = st_new0(struct net, n);
    for (size_t i = 0; i < n; i++) {
        json_t *nw = json_array_get(nets, i);
        v[i].id = json_string_value(json_object_get(nw, "id"));
        v[i].bridge = json_string_value(json_object_get(nw, "bridge"));
        v[i].zone = st_fw_vni_zone(json_object_get(nw, "vni"));
        if (!v[i].id || !v[i].bridge || st_net_check_ifname(v[i].bridge, NULL) < 0) {
            free(v);
            return st_err_set(err, -EINVAL, "network %zu of the view: bad id or bridge", i);
        }
    }
    *ret = v;
    *ret_n = n;
    return 0;
}

static int load_port(json_t *p, size_t i, const struct net *nets, size_t n_nets, struct port *port,
                     struct st_err **err)
{
    port->id = json_string_value(json_object_get(p, "id"));
    if (!st_fw_id_valid(port->id))
        return st_err_set(err, -EINVAL, "port %zu of the view: bad id", i);
    if (!st_fw_mac_parse(json_string_value(json_object_get(p, "mac")), port->mac))
        return st_err_set(err, -EINVAL, "port %s: bad mac", port->id);
    json_t *ip = json_object_get(p, "ip");
    if (ip && !json_is_null(ip)) {
        port->ip = json_string_value(ip);
        if (!st_fw_ipv4_valid(port->ip))
            return st_err_set(err, -EINVAL, "port %s: bad ip", port->id);
    }
    const char *net_id = json_string_value(json_object_get(p, "network_id"));
    for (size_t k = 0; net_id && k < n_nets && !port->bridge; k++)
        if (strcmp(nets[k].id, net_id) == 0)
            port->bridge = nets[k].bridge;
    if (!port->bridge)
        return st_err_set(err, -EINVAL, "port %s: network %s is not in the view", port->id,
                          net_id ? net_id : "(none)");
    st_fw_port_ifname(port->id, port->ifname);
    port->groups = json_object_get(p, "security_groups");
    return 0;
}

/* The view's ports that have port security, sorted by id. */
static int load_ports(json_t *view, const struct net *nets, size_t n_nets, struct port **ret,
                      size_t *ret_n, struct st_err **err)
{
    json_t *ports = json_object_get(view, "ports");
    size_t n = json_is_array(ports) ? json_array_size(ports) : 0;
    st_autofree struct port *v = st_new0(struct port, n);
    size_t m = 0;
    for (size_t i = 0; i < n; i++) {
        json_t *p = json_array_get(ports, i);
        json_t *ps = json_object_get(p, "port_security");
        if (ps && !json_is_true(ps))
            continue; /* not filtered */
        int r = load_port(p, i, nets, n_nets, &v[m], err);
        if (r < 0)
            return r;
        m++;
    }
    qsort(v, m, sizeof(*v), port_cmp);
    *ret = st_steal(&v);
    *ret_n = m;
    return 0;
}

/* The ids of a port's groups, valid ones only, sorted, once each, joined
 * with commas: ports with the same key share their chains. */
static char *port_groups_key(const struct port *p)
{
    struct strv ids = {0};
    size_t i;
    json_t *g;
    json_array_foreach(p->groups, i, g)
    {
        const char *id = json_string_value(g);
        if (st_fw_id_valid(id))
            strv_push(&ids, id);
        else
            st_log_warn("firewall_group_skipped", "port=%s reason=\"bad group id\"", p->id);
    }
    strv_sort_uniq(&ids);
    char *buf = NULL;
    size_t len = 0;
    FILE *out = st_fw_text_open(&buf, &len);
    for (size_t k = 0; k < ids.n; k++)
        fprintf(out, "%s%s", k ? "," : "", ids.v[k]);
    fclose(out);
    strv_free(&ids);
    return buf;
}

/* ---- the inet table ---- */

static void print_port_map(FILE *out, const char *name, const struct port *ports, size_t n,
                           const char *dir)
{
    fprintf(out, "\tmap %s {\n\t\ttype ifname . ipv4_addr : verdict\n", name);
    bool first = true;
    for (size_t i = 0; i < n; i++) {
        if (!ports[i].ip)
            continue;
        fprintf(out, "%s\t\t\t\"%s\" . %s : jump ports-%zu-%s",
                first ? "\t\telements = {\n" : ",\n", ports[i].bridge, ports[i].ip,
                ports[i].groupset, dir);
        first = false;
    }
    if (!first)
        fputs("\n\t\t}\n", out);
    fputs("\t}\n", out);
}

static void print_member_set(FILE *out, json_t *sgs, const char *sg_id)
{
    json_t *members = json_object_get(json_object_get(sgs, sg_id), "members");
    struct strv ips = {0};
    size_t i;
    json_t *m;
    json_array_foreach(members, i, m)
    {
        const char *ip = json_string_value(m);
        if (st_fw_ipv4_valid(ip))
            strv_push(&ips, ip);
    }
    strv_sort_uniq(&ips);
    fprintf(out, "\n\tset sg-%s-members {\n\t\ttype ipv4_addr\n", sg_id);
    for (size_t k = 0; k < ips.n; k++)
        fprintf(out, "%s\t\t\t%s", k ? ",\n" : "\t\telements = {\n", ips.v[k]);
    if (ips.n)
        fputs("\n\t\t}\n", out);
    fputs("\t}\n", out);
    strv_free(&ips);
}

/* Both directions of a bridge's traffic in its network's zone: received
 * packets by their input bridge, the node's own by their output bridge. */
static void print_zone_chain(FILE *out, bool output, const struct net *nets, size_t n)
{
    const char *hook = output ? "output" : "prerouting";
    fprintf(out, "\n\tchain zone-%s {\n\t\ttype filter hook %s priority raw; policy accept;\n",
            hook, hook);
    bool first = true;
    for (size_t i = 0; i < n; i++) {
        if (!nets[i].zone || (i && strcmp(nets[i].bridge, nets[i - 1].bridge) == 0))
            continue;
        if (first)
            fprintf(out, "\t\tct zone set %s map { ", output ? "oifname" : "iifname");
        else
            fputs(", ", out);
        fprintf(out, "\"%s\" : %d", nets[i].bridge, nets[i].zone);
        first = false;
    }
    if (!first)
        fputs(" }\n", out);
    fputs("\t}\n", out);
}

static void print_base_chain(FILE *out, const char *name, const char *hook, const char *priority,
                             const char *match, const char *map)
{
    fprintf(out,
            "\n\tchain %s {\n"
            "\t\ttype filter hook %s priority %s; policy accept;\n"
            "\t\tct state established,related accept\n"
            "\t\t%s vmap @%s\n"
            "\t}\n",
            name, hook, priority, match, map);
}

/* The chains of the ports whose groups are `key`: what no group accepts
 * is dropped. */
static void print_groupset_chains(FILE *out, size_t index, const char *key)
{
    for (int ingress = 1; ingress >= 0; ingress--) {
        const char *dir = ingress ? "ingress" : "egress";
        fprintf(out, "\n\tchain ports-%zu-%s {\n\t\tct state invalid drop\n", index, dir);
        /* DHCP: a port may always get its address, and may never serve one */
        if (ingress)
            fputs("\t\tudp sport 67 udp dport 68 accept\n", out);
        else
            fputs("\t\tudp sport 67 udp dport 68 drop\n"
                  "\t\tudp sport 68 udp dport 67 accept\n",
                  out);
        for (const char *g = key; *g;) {
            size_t len = strcspn(g, ",");
            fprintf(out, "\t\tjump sg-%.*s-%s\n", (int)len, g, dir);
            g += len + (g[len] == ',');
        }
        fputs("\t\tcounter drop\n\t}\n", out);
    }
}

static void print_inet_table(FILE *out, json_t *view, struct port *ports, size_t n_ports,
                             struct net *nets, size_t n_nets)
{
    json_t *sgs = json_object_get(view, "security_groups");

    /* ports with the same groups share a pair of chains (most ports of a
     * project are in "default" alone); a port without an address yet
     * sends and receives no IPv4, so it needs none */
    struct strv sets = {0}, used = {0}, remotes = {0};
    for (size_t i = 0; i < n_ports; i++)
        if (ports[i].ip)
            strv_push(&sets, ports[i].groups_key);
    strv_sort_uniq(&sets);
    for (size_t i = 0; i < n_ports; i++) {
        if (!ports[i].ip)
            continue;
        const char **found =
            bsearch(&ports[i].groups_key, sets.v, sets.n, sizeof(*sets.v), st_fw_strcmp_ptr);
        ports[i].groupset = (size_t)(found - sets.v) + 1;
    }
    /* the groups of those get chains (empty ones for a group the view
     * lacks); their rules' remote groups get member sets */
    for (size_t i = 0; i < sets.n; i++) {
        for (const char *g = sets.v[i]; *g;) {
            size_t len = strcspn(g, ",");
            strv_push(&used, st_strndup(g, len)); /* owned: freed below */
            g += len + (g[len] == ',');
        }
    }
    if (used.n)
        qsort(used.v, used.n, sizeof(*used.v), st_fw_strcmp_ptr);

    char *chains_buf = NULL;
    size_t chains_len = 0;
    FILE *chains = st_fw_text_open(&chains_buf, &chains_len);
    for (size_t i = 0; i < sets.n; i++)
        print_groupset_chains(chains, i + 1, sets.v[i]);
    for (size_t i = 0; i < used.n; i++) {
        if (i && strcmp(used.v[i], used.v[i - 1]) == 0)
            continue;
        json_t *sg = json_object_get(sgs, used.v[i]);
        print_group_chain(chains, used.v[i], sg, true, &remotes);
        print_group_chain(chains, used.v[i], sg, false, &remotes);
    }
    fclose(chains);
    strv_sort_uniq(&remotes);

    fputs("table inet stratos {\n", out);
    print_port_map(out, "egress-ports", ports, n_ports, "egress");
    fputc('\n', out);
    print_port_map(out, "ingress-ports", ports, n_ports, "ingress");
    for (size_t i = 0; i < remotes.n; i++)
        print_member_set(out, sgs, remotes.v[i]);

    qsort(nets, n_nets, sizeof(*nets), net_cmp);
    print_zone_chain(out, false, nets, n_nets);
    print_zone_chain(out, true, nets, n_nets);

    print_base_chain(out, "forward-egress", "forward", "filter", "iifname . ip saddr",
                     "egress-ports");
    print_base_chain(out, "forward-ingress", "forward", "filter + 10", "oifname . ip daddr",
                     "ingress-ports");
    print_base_chain(out, "input", "input", "filter", "iifname . ip saddr", "egress-ports");
    print_base_chain(out, "output", "output", "filter", "oifname . ip daddr", "ingress-ports");
    fwrite(chains_buf, 1, chains_len, out);
    fputs("}\n", out);

    free(chains_buf);
    strv_free(&sets);
    for (size_t i = 0; i < used.n; i++)
        free((char *)used.v[i]);
    strv_free(&used);
    strv_free(&remotes);
}

/* ---- the bridge table ---- */

/* One set element per line: `first` tells whether the list is open yet. */
static void element_sep(FILE *out, bool *first)
{
    fputs(*first ? "\t\telements = {\n\t\t\t" : ",\n\t\t\t", out);
    *first = false;
}

static void element_end(FILE *out, bool first)
{
    if (!first)
        fputs("\n\t\t}\n", out);
    fputs("\t}\n", out);
}

/* Anti-spoofing without a chain or a rule per port: what each port may
 * send from is a set element, so a thousand ports cost a thousand
 * elements in the same five rules. */
static void print_bridge_table(FILE *out, const struct port *ports, size_t n)
{
    bool first = true;
    fputs("table bridge stratos {\n\tset secured-ports {\n\t\ttype ifname\n", out);
    for (size_t i = 0; i < n; i++) {
        element_sep(out, &first);
        fprintf(out, "\"%s\"", ports[i].ifname);
    }
    element_end(out, first);

    first = true;
    fputs("\n\tset port-macs {\n\t\ttype ifname . ether_addr\n", out);
    for (size_t i = 0; i < n; i++) {
        element_sep(out, &first);
        fprintf(out, "\"%s\" . %s", ports[i].ifname, ports[i].mac);
    }
    element_end(out, first);

    first = true;
    fputs("\n\tset port-ips {\n\t\ttype ifname . ipv4_addr\n", out);
    for (size_t i = 0; i < n; i++) {
        if (!ports[i].ip)
            continue;
        element_sep(out, &first);
        fprintf(out, "\"%s\" . %s", ports[i].ifname, ports[i].ip);
    }
    element_end(out, first);

    /* ARP: for its own address, or 0.0.0.0 (RFC 5227 probes) */
    first = true;
    fputs("\n\tset port-arps {\n\t\ttype ifname . ether_addr . ipv4_addr\n", out);
    for (size_t i = 0; i < n; i++) {
        element_sep(out, &first);
        fprintf(out, "\"%s\" . %s . 0.0.0.0", ports[i].ifname, ports[i].mac);
        if (ports[i].ip) {
            element_sep(out, &first);
            fprintf(out, "\"%s\" . %s . %s", ports[i].ifname, ports[i].mac, ports[i].ip);
        }
    }
    element_end(out, first);

    fputs("\n\tchain prerouting {\n"
          "\t\ttype filter hook prerouting priority filter; policy accept;\n"
          "\t\tiifname @secured-ports jump anti-spoofing\n"
          "\t}\n"
          "\n\tchain postrouting {\n"
          "\t\ttype filter hook postrouting priority filter; policy accept;\n"
          "\t\toifname @secured-ports ether type ip6 drop\n"
          "\t}\n"
          "\n\tchain anti-spoofing {\n"
          "\t\tiifname . ether saddr != @port-macs counter drop\n"
          "\t\tiifname . ip saddr @port-ips accept\n"
          "\t\tip saddr 0.0.0.0 ip daddr 255.255.255.255 udp sport 68 udp dport 67 accept\n"
          "\t\tarp htype 1 arp ptype ip iifname . arp saddr ether . arp saddr ip @port-arps "
          "accept\n"
          "\t\tcounter drop\n"
          "\t}\n"
          "}\n",
          out);
}

int st_fw_render_ports(json_t *view, char **ret, struct st_err **err)
{
    if (!json_is_object(view))
        return st_err_set(err, -EINVAL, "rendering security groups: the view is not an object");

    struct net *nets = NULL;
    size_t n_nets = 0;
    int r = load_networks(view, &nets, &n_nets, err);
    if (r < 0)
        return st_err_prefix(err, r, "rendering security groups");
    struct port *ports = NULL;
    size_t n_ports = 0;
    r = load_ports(view, nets, n_nets, &ports, &n_ports, err);
    if (r < 0) {
        free(nets);
        return st_err_prefix(err, r, "rendering security groups");
    }

    char *buf = NULL;
    size_t len = 0;
    FILE *out = st_fw_text_open(&buf, &len);
    /* create-then-delete makes the deletion succeed whether or not the
     * tables exist; all of it is one transaction */
    fputs("# Security groups of this node, rendered by stratos from its network view.\n"
          "table inet stratos {}\n"
          "delete table inet stratos\n"
          "table bridge stratos {}\n"
          "delete table bridge stratos\n",
          out);
    for (size_t i = 0; i < n_ports; i++)
        ports[i].groups_key = port_groups_key(&ports[i]);
    print_inet_table(out, view, ports, n_ports, nets, n_nets);
    print_bridge_table(out, ports, n_ports);
    fclose(out);

    for (size_t i = 0; i < n_ports; i++)
        free(ports[i].groups_key);
    free(ports);
    free(nets);
    *ret = buf;
    return 0;
}

/* ---- applying ---- */

/* libnftables keeps some state outside its context (symbol tables, the
 * gmp allocator); one ruleset at a time per process is plenty. */
static pthread_mutex_t nft_lock = PTHREAD_MUTEX_INITIALIZER;

/* nft reports the kernel's errno only as text. */
static int nft_error_code(const char *msg)
{
    static const struct {
        const char *text;
        int code;
    } codes[] = {
        {"Operation not permitted", -EPERM},    {"Operation not supported", -EOPNOTSUPP},
        {"No such file or directory", -ENOENT}, {"File exists", -EEXIST},
        {"Device or resource busy", -EBUSY},    {"Cannot allocate memory", -ENOMEM},
    };
    for (size_t i = 0; msg && i < ST_ARRAY_SIZE(codes); i++)
        if (strstr(msg, codes[i].text))
            return codes[i].code;
    return -EINVAL;
}

/* nft's error buffer is several lines per error: "<file>:<line>:<cols>:
 * Error: <message>", the source line, and carets under it. One line each:
 * "line 12:3-8: Error: ... (at: jump a)". */
static char *nft_error_summary(const char *msg, const char *path)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *out = st_fw_text_open(&buf, &len);
    int errors = 0;
    size_t path_len = strlen(path);
    const char *line = msg ? msg : "";
    while (*line && errors < 3) {
        const char *end = strchrnul(line, '\n');
        if (memmem(line, (size_t)(end - line), "Error:", 6)) {
            const char *from = line;
            if (strncmp(from, path, path_len) == 0 && from[path_len] == ':') {
                from += path_len + 1;
                fputs(errors ? "; line " : "line ", out);
            } else if (errors) {
                fputs("; ", out);
            }
            fprintf(out, "%.*s", (int)(end - from), from);
            errors++;
            const char *next = *end ? end + 1 : end;
            const char *next_end = strchrnul(next, '\n');
            while (next < next_end && isspace((unsigned char)*next))
                next++;
            if (next < next_end && !memchr(next, '^', (size_t)(next_end - next)))
                fprintf(out, " (at: %.*s)", (int)(next_end - next), next);
        }
        line = *end ? end + 1 : end;
    }
    if (errors == 0)
        fputs(msg && *msg ? msg : "failed without a message", out);
    fclose(out);
    size_t n = strlen(buf);
    while (n && isspace((unsigned char)buf[n - 1]))
        buf[--n] = '\0';
    return buf;
}

/* The text goes through a memfd read as a file rather than through
 * nft_run_cmd_from_buffer: nft 1.0.6 reports errors in a buffer without
 * their line and quotes the buffer's first line as their source, while a
 * file's errors carry line, columns and the right source line. */
static int run_nft(void *userdata, struct st_err **err)
{
    const char *text = userdata;
    st_autoclose int fd = memfd_create("stratos-ruleset", MFD_CLOEXEC);
    if (fd < 0)
        return st_err_errno(err, "memfd_create");
    size_t len = strlen(text);
    for (size_t done = 0; done < len;) {
        ssize_t w = write(fd, text + done, len - done);
        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0)
            return st_err_errno(err, "writing the ruleset to a memfd");
        done += (size_t)w;
    }
    char path[32];
    snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);

    pthread_mutex_lock(&nft_lock);
    struct nft_ctx *nft = nft_ctx_new(NFT_CTX_DEFAULT);
    if (!nft) {
        pthread_mutex_unlock(&nft_lock);
        return st_err_set(err, -ENOMEM, "nft: cannot create a context");
    }
    nft_ctx_buffer_output(nft);
    nft_ctx_buffer_error(nft);
    int r = 0;
    if (nft_run_cmd_from_filename(nft, path) != 0) {
        const char *msg = nft_ctx_get_error_buffer(nft);
        st_autofree char *summary = nft_error_summary(msg, path);
        r = st_err_set(err, nft_error_code(msg), "nft: %s", summary);
    }
    nft_ctx_free(nft);
    pthread_mutex_unlock(&nft_lock);
    return r;
}

int st_fw_apply(const char *netns, const char *text, struct st_err **err)
{
    int r =
        netns ? st_net_netns_run(netns, run_nft, (void *)text, err) : run_nft((void *)text, err);
    if (r < 0)
        return st_err_prefix(err, r, "applying ruleset in %s", netns ? netns : "this namespace");
    return 0;
}

int st_fw_delete_table(const char *netns, const char *family, const char *name, struct st_err **err)
{
    static const char *const families[] = {"ip", "ip6", "inet", "arp", "bridge", "netdev"};
    bool known = false;
    for (size_t i = 0; family && i < ST_ARRAY_SIZE(families); i++)
        known |= strcmp(family, families[i]) == 0;
    if (!known)
        return st_err_set(err, -EINVAL, "unknown nftables family '%s'", family ? family : "");
    bool valid = name && *name && strlen(name) <= 64;
    for (const char *p = name; valid && *p; p++)
        valid = isalnum((unsigned char)*p) || strchr("-_.", *p);
    if (!valid)
        return st_err_set(err, -EINVAL, "bad nftables table name '%s'", name ? name : "");

    st_autofree char *text =
        st_sprintf("table %s %s {}\ndelete table %s %s\n", family, name, family, name);
    int r = st_fw_apply(netns, text, err);
    if (r < 0)
        return st_err_prefix(err, r, "deleting table %s %s", family, name);
    return 0;
}
