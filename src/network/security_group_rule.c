/* Security group rules: Neutron's validation (protocols, port ranges, ICMP
 * type and code, remote prefix or remote group), duplicate detection, and
 * the rules' place in the store (model.h). Each rule is a key of its own
 * under its group, written in one transaction with the key that finds its
 * group from its id and the key that makes it unique in its group, so rule
 * creates on one group never rewrite the group nor contend with each other,
 * and two identical creates racing end in one rule and one
 * SecurityGroupRuleExists. Groups written before (rules inside the group's
 * document) are read as they are and moved to this layout by their first
 * rule change. */
#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "lib/cleanup.h"
#include "lib/json.h"
#include "lib/log.h"
#include "lib/times.h"
#include "lib/uuid.h"
#include "network/core-priv.h"
#include "network/l3-priv.h"
#include "network/model.h"
#include "network/network-priv.h"
#include "network/quota.h"
#include "store/kv.h"

void l3_now(char buf[32])
{
    st_time_rfc3339(st_time_now_ms() / 1000, buf, 32);
}

json_t *l3_sg_rule_new(const char *sg_id, const char *project_id, const char *direction,
                       const char *ethertype, const char *remote_group_id)
{
    char id[ST_UUID_LEN], now[32];
    st_uuid_new(id);
    project_id = project_id ? project_id : "";
    l3_now(now);
    return json_pack(
        "{s:s, s:s, s:s, s:s, s:n, s:n, s:n, s:n, s:o, s:n, s:n, s:s, s:s, s:s, "
        "s:[], s:i, s:s, s:s}",
        "id", id, "security_group_id", sg_id, "direction", direction, "ethertype", ethertype,
        "protocol", "port_range_min", "port_range_max", "remote_ip_prefix", "remote_group_id",
        remote_group_id ? json_string(remote_group_id) : json_null(), "remote_address_group_id",
        "normalized_cidr", "description", "", "project_id", project_id, "tenant_id", project_id,
        "tags", "revision_number", 0, "created_at", now, "updated_at", now);
}

/* ---- validation ---- */

static const struct {
    const char *name;
    int number;
} protocols[] = {
    {"ah", 51},         {"dccp", 33},      {"egp", 8},         {"esp", 50},
    {"gre", 47},        {"icmp", 1},       {"icmpv6", 58},     {"igmp", 2},
    {"ipip", 4},        {"ipv6-icmp", 58}, {"ospf", 89},       {"pgm", 113},
    {"rsvp", 46},       {"sctp", 132},     {"tcp", 6},         {"udp", 17},
    {"udplite", 136},   {"vrrp", 112},     {"ipv6-encap", 41}, {"ipv6-frag", 44},
    {"ipv6-nonxt", 59}, {"ipv6-opts", 60}, {"ipv6-route", 43},
};

/* The IP protocol number of a stored protocol ("tcp", "6"), -1 for any. */
static int proto_number(const char *p)
{
    if (!p)
        return -1;
    if (isdigit((unsigned char)p[0]))
        return atoi(p);
    for (size_t i = 0; i < ST_ARRAY_SIZE(protocols); i++)
        if (strcmp(p, protocols[i].name) == 0)
            return protocols[i].number;
    return -1;
}

/* protocol: null, "any", a name or 0-255 (string or number) → *ret (NULL
 * for all protocols). */
static int parse_protocol(json_t *v, char **ret, struct st_err **err)
{
    *ret = NULL;
    if (!v || json_is_null(v))
        return 0;
    char buf[32];
    if (json_is_integer(v)) {
        snprintf(buf, sizeof(buf), "%lld", (long long)json_integer_value(v));
    } else if (json_is_string(v) && json_string_length(v) < sizeof(buf)) {
        snprintf(buf, sizeof(buf), "%s", json_string_value(v));
        for (char *c = buf; *c; c++)
            *c = (char)tolower((unsigned char)*c);
    } else {
        return st_err_set(err, -EINVAL, "Invalid input for protocol. Reason: not a protocol.");
    }
    if (buf[0] == '\0' || strcmp(buf, "any") == 0)
        return 0;
    bool digits = strspn(buf, "0123456789") == strlen(buf);
    if (digits && strlen(buf) <= 3 && atoi(buf) <= 255) {
        *ret = st_sprintf("%d", atoi(buf));
        return 0;
    }
    for (size_t i = 0; !digits && i < ST_ARRAY_SIZE(protocols); i++)
        if (strcmp(buf, protocols[i].name) == 0) {
            *ret = st_strdup(buf);
            return 0;
        }
    return st_err_set(err, -EINVAL,
                      "Security group rule protocol %s not supported. Only protocol values [None, "
                      "tcp, udp, icmp, icmpv6, sctp, ...] and integer representations [0 to 255] "
                      "are supported.",
                      buf);
}

/* A port or ICMP value: null, an integer or a decimal string. */
static int parse_port(json_t *req, const char *key, json_t **ret, struct st_err **err)
{
    json_t *v = json_object_get(req, key);
    long long n;
    if (!v || json_is_null(v)) {
        *ret = json_null();
        return 0;
    }
    if (json_is_integer(v)) {
        n = json_integer_value(v);
    } else if (json_is_string(v) && json_string_length(v) > 0 && json_string_length(v) < 8 &&
               strspn(json_string_value(v), "0123456789") == json_string_length(v)) {
        n = atoll(json_string_value(v));
    } else {
        return st_err_set(err, -EINVAL, "Invalid input for %s. Reason: not an integer.", key);
    }
    if (n < 0 || n > 65535)
        return st_err_set(err, -EINVAL, "Invalid value for port %lld.", n);
    *ret = json_integer(n);
    return 0;
}

/* Neutron's _validate_port_range, with its messages. */
static int check_ports(const char *proto, json_t *pmin, json_t *pmax, struct st_err **err)
{
    bool has_min = !json_is_null(pmin), has_max = !json_is_null(pmax);
    long long lo = json_integer_value(pmin), hi = json_integer_value(pmax);
    if (!has_min && !has_max)
        return 0;
    if (!proto)
        return st_err_set(err, -EINVAL, "Must also specify protocol if port range is given.");
    int num = proto_number(proto);
    if (num == 6 || num == 17 || num == 33 || num == 132 || num == 136) {
        if ((has_min && lo == 0) || (has_max && hi == 0))
            return st_err_set(err, -EINVAL, "Invalid value for port 0.");
        if (has_min && has_max && lo <= hi)
            return 0;
        return st_err_set(err, -EINVAL,
                          "For TCP/UDP protocols, port_range_min must be <= port_range_max");
    }
    if (num == 1 || num == 58) {
        if (has_min && lo > 255)
            return st_err_set(err, -EINVAL,
                              "Invalid value for ICMP type (port_range_min) %lld. It must be 0 "
                              "to 255.",
                              lo);
        if (has_max && hi > 255)
            return st_err_set(err, -EINVAL,
                              "Invalid value for ICMP code (port_range_max) %lld. It must be 0 "
                              "to 255.",
                              hi);
        if (!has_min)
            return st_err_set(err, -EINVAL,
                              "ICMP code (port-range-max) %lld is provided but ICMP type "
                              "(port-range-min) is missing.",
                              hi);
        return 0;
    }
    return st_err_set(err, -EINVAL,
                      "Invalid protocol %s for port range, only supported for TCP, UDP, UDPLITE, "
                      "SCTP and DCCP protocols.",
                      proto);
}

/* "10.0.0.5/24" → "10.0.0.0/24" (a bare address is a /32 or /128), the
 * family in *ret_family. */
static int normalize_prefix(const char *text, char **ret, int *ret_family, struct st_err **err)
{
    char addr[64];
    const char *slash = strchr(text, '/');
    size_t alen = slash ? (size_t)(slash - text) : strlen(text);
    unsigned char bytes[16];
    if (alen == 0 || alen >= sizeof(addr))
        goto bad;
    memcpy(addr, text, alen);
    addr[alen] = '\0';
    int family = strchr(addr, ':') ? AF_INET6 : AF_INET;
    int max = family == AF_INET ? 32 : 128, len = max;
    if (inet_pton(family, addr, bytes) != 1)
        goto bad;
    if (slash) {
        const char *p = slash + 1;
        if (*p == '\0' || strlen(p) > 3 || strspn(p, "0123456789") != strlen(p))
            goto bad;
        len = atoi(p);
        if (len > max)
            goto bad;
    }
    for (int bit = len; bit < max; bit++)
        bytes[bit / 8] &= (unsigned char)~(0x80 >> (bit % 8));
    char out[INET6_ADDRSTRLEN];
    inet_ntop(family, bytes, out, sizeof(out));
    *ret = st_sprintf("%s/%d", out, len);
    *ret_family = family;
    return 0;
bad:
    return st_err_set(err, -EINVAL,
                      "Invalid input for remote_ip_prefix. Reason: '%s' is not a valid IP %s.",
                      text, "subnet");
}

static json_t *str_or_null(const char *s)
{
    return s ? json_string(s) : json_null();
}

/* Builds the rule a request asks for in group sg (validated, normalized). */
static int build_rule(json_t *req, json_t *sg, json_t **ret, struct st_err **err)
{
    const char *direction = l3_str(req, "direction");
    if (!direction)
        return st_err_set(err, -EINVAL,
                          "Failed to parse request. Required attribute 'direction' not specified");
    if (strcmp(direction, "ingress") != 0 && strcmp(direction, "egress") != 0)
        return st_err_set(err, -EINVAL, "Invalid input for direction. Reason: '%s' is not in %s.",
                          direction, "['ingress', 'egress']");
    const char *ethertype = "IPv4";
    json_t *et = json_object_get(req, "ethertype");
    if (et && !json_is_null(et)) {
        const char *e = json_string_value(et);
        if (e && strcasecmp(e, "ipv4") == 0)
            ethertype = "IPv4";
        else if (e && strcasecmp(e, "ipv6") == 0)
            ethertype = "IPv6";
        else
            return st_err_set(err, -EINVAL,
                              "Invalid input for ethertype. Reason: '%s' is not in %s.",
                              e ? e : "?", "['IPv4', 'IPv6']");
    }
    st_autofree char *proto = NULL;
    int r = parse_protocol(json_object_get(req, "protocol"), &proto, err);
    if (r < 0)
        return r;
    if (proto_number(proto) == 58 && strcmp(ethertype, "IPv4") == 0)
        return st_err_set(err, -EINVAL, "Invalid ethertype %s for protocol %s.", ethertype, proto);
    st_autoptr(json_t) pmin = NULL;
    st_autoptr(json_t) pmax = NULL;
    if ((r = parse_port(req, "port_range_min", &pmin, err)) < 0 ||
        (r = parse_port(req, "port_range_max", &pmax, err)) < 0 ||
        (r = check_ports(proto, pmin, pmax, err)) < 0)
        return r;
    const char *prefix = l3_str(req, "remote_ip_prefix");
    const char *remote_group = l3_str(req, "remote_group_id");
    if (prefix && remote_group)
        return st_err_set(err, -EINVAL,
                          "Only remote_ip_prefix or remote_group_id may be provided.");
    st_autofree char *cidr = NULL;
    if (prefix) {
        int family = 0;
        if ((r = normalize_prefix(prefix, &cidr, &family, err)) < 0)
            return r;
        if ((family == AF_INET) != (strcmp(ethertype, "IPv4") == 0))
            return st_err_set(err, -EINVAL, "Conflicting value ethertype %s for CIDR %s", ethertype,
                              prefix);
    }
    const char *desc = l3_str(req, "description");
    if (desc && strlen(desc) > ST_NETWORK_DESC_MAX)
        return st_err_set(err, -EINVAL,
                          "Invalid input for description. Reason: '%s' exceeds maximum length "
                          "of %d.",
                          desc, ST_NETWORK_DESC_MAX);
    json_t *rule = l3_sg_rule_new(l3_str(sg, "id"), l3_str(sg, "project_id"), direction, ethertype,
                                  remote_group);
    json_object_set_new(rule, "protocol", str_or_null(proto));
    json_object_set(rule, "port_range_min", pmin);
    json_object_set(rule, "port_range_max", pmax);
    json_object_set_new(rule, "remote_ip_prefix", str_or_null(cidr));
    json_object_set_new(rule, "normalized_cidr", str_or_null(cidr));
    if (desc)
        json_object_set_new(rule, "description", json_string(desc));
    *ret = rule;
    return 0;
}

/* A remote prefix of everything means the same as none. */
static const char *prefix_key(json_t *rule)
{
    const char *p = l3_str(rule, "remote_ip_prefix");
    if (l3_streq(p, "0.0.0.0/0") || l3_streq(p, "::/0"))
        return NULL;
    return p;
}

/* ---- keys ---- */

static char *group_key(const char *sg_id)
{
    return st_sprintf("%s%s", ST_NETWORK_SGS_PREFIX, sg_id);
}

static char *rule_key(const char *sg_id, const char *rule_id)
{
    return st_sprintf("%s%s/%s", ST_NETWORK_SG_RULES_PREFIX, sg_id, rule_id);
}

static char *id_key(const char *rule_id)
{
    return st_sprintf("%s%s", ST_NETWORK_SG_RULE_IDS_PREFIX, rule_id);
}

static char *changes_key(const char *sg_id)
{
    return st_sprintf("%s%s", ST_NETWORK_SG_CHANGES_PREFIX, sg_id);
}

/* The key that makes a rule unique in its group: what Neutron compares to
 * call two rules the same (not the description), with "tcp" and "6" alike
 * and a remote prefix of everything as none. */
static char *fingerprint_key(const char *sg_id, json_t *rule)
{
    char lo[24] = "-", hi[24] = "-";
    json_t *pmin = json_object_get(rule, "port_range_min");
    json_t *pmax = json_object_get(rule, "port_range_max");
    if (json_is_integer(pmin))
        snprintf(lo, sizeof(lo), "%lld", (long long)json_integer_value(pmin));
    if (json_is_integer(pmax))
        snprintf(hi, sizeof(hi), "%lld", (long long)json_integer_value(pmax));
    const char *prefix = prefix_key(rule), *remote = l3_str(rule, "remote_group_id");
    char *key =
        st_sprintf("%s%s/%s,%s,%d,%s,%s,%s,%s", ST_NETWORK_SG_RULE_FPS_PREFIX, sg_id,
                   l3_str(rule, "direction") ?: "", l3_str(rule, "ethertype") ?: "",
                   proto_number(l3_str(rule, "protocol")), lo, hi, prefix ?: "-", remote ?: "-");
    /* one '/' only, between the group and the fingerprint */
    for (char *c = key + strlen(ST_NETWORK_SG_RULE_FPS_PREFIX) + strlen(sg_id) + 1; *c; c++)
        if (*c == '/')
            *c = '_';
    return key;
}

/* ---- transactions ---- */

/* A transaction being built, owning the strings its compares and ops point
 * to. */
struct txn {
    struct st_kv_cmp cmps[4];
    size_t n_cmps;
    struct st_kv_op ops[ST_KV_TXN_OPS_MAX];
    size_t n_ops;
    char *owned[2 * ST_KV_TXN_OPS_MAX + 4];
    size_t n_owned;
};

static struct txn *txn_new(void)
{
    return st_new0(struct txn, 1);
}

static void txn_free(struct txn *t)
{
    for (size_t i = 0; t && i < t->n_owned; i++)
        free(t->owned[i]);
    free(t);
}
ST_DEFINE_AUTOPTR(txn, txn_free)

static const char *txn_keep(struct txn *t, char *s)
{
    t->owned[t->n_owned++] = s;
    return s;
}

static void txn_cmp(struct txn *t, char *key, int64_t expect_mod_rev)
{
    t->cmps[t->n_cmps++] = (struct st_kv_cmp){txn_keep(t, key), expect_mod_rev};
}

static void txn_put(struct txn *t, char *key, char *value)
{
    const char *v = txn_keep(t, value);
    t->ops[t->n_ops++] = (struct st_kv_op){ST_KV_OP_PUT, txn_keep(t, key), v, strlen(v)};
}

static void txn_del(struct txn *t, char *key)
{
    t->ops[t->n_ops++] = (struct st_kv_op){ST_KV_OP_DELETE, txn_keep(t, key), NULL, 0};
}

/* Room for this many more ops (and as many owned strings, two each). */
static bool txn_room(struct txn *t, size_t ops)
{
    return t->n_ops + ops <= ST_KV_TXN_OPS_MAX;
}

/* The keys that store a rule of group sg_id: the rule, its id key, its
 * fingerprint. */
static void txn_put_rule(struct txn *t, const char *sg_id, json_t *rule)
{
    const char *id = l3_str(rule, "id");
    txn_put(t, rule_key(sg_id, id), st_json_dumps(rule));
    txn_put(t, id_key(id), st_strdup(sg_id));
    txn_put(t, fingerprint_key(sg_id, rule), st_strdup(id));
}

/* Marks a rule change of the group: unconditional, so rule changes never
 * contend on it; its version counts them (l3_sg_present). */
static void txn_mark_change(struct txn *t, const char *sg_id)
{
    char now[32];
    l3_now(now);
    txn_put(t, changes_key(sg_id), st_strdup(now));
}

static int txn_run(struct st_kv *kv, struct txn *t, struct st_err **err)
{
    return st_kv_txn(kv, t->cmps, t->n_cmps, t->ops, t->n_ops, NULL, err);
}

/* ---- reading ---- */

static int rule_not_found(const char *id, struct st_err **err)
{
    st_err_clear(err);
    return st_err_set(err, -ENOENT, "Security group rule %s does not exist", id ? id : "");
}

/* A document from before keeps its rules inside (model.h). */
static bool carries_rules(json_t *sg)
{
    return json_object_get(sg, "security_group_rules") != NULL;
}

struct keyed_rule {
    json_t *rule;
    int64_t create_rev;
};

static int keyed_cmp(const void *a, const void *b)
{
    const struct keyed_rule *x = a, *y = b;
    if (x->create_rev != y->create_rev)
        return x->create_rev < y->create_rev ? -1 : 1;
    /* A new group's first rules share one revision: Neutron's order,
     * egress before ingress and IPv4 before IPv6. */
    int c = strcmp(l3_str(x->rule, "direction") ?: "", l3_str(y->rule, "direction") ?: "");
    if (c == 0)
        c = strcmp(l3_str(x->rule, "ethertype") ?: "", l3_str(y->rule, "ethertype") ?: "");
    if (c == 0)
        c = strcmp(l3_str(x->rule, "id") ?: "", l3_str(y->rule, "id") ?: "");
    return c;
}

/* Whether rule (of group sg_id) names a remote group that is gone: one
 * that the group's delete has not dropped yet (a crash stopped it;
 * model.h), never shown. known: remote group id → whether it stands, so
 * that each is read once. */
static int remote_gone(struct st_kv *kv, const char *sg_id, json_t *rule, json_t *known,
                       bool *ret_gone, struct st_err **err)
{
    const char *remote = l3_str(rule, "remote_group_id");
    *ret_gone = false;
    if (!remote || l3_streq(remote, sg_id))
        return 0;
    json_t *stands = json_object_get(known, remote);
    if (!stands) {
        st_autofree char *key = group_key(remote);
        st_autoptr(st_kv_entry) e = NULL;
        int r = l3_id_ok(remote) ? st_kv_get(kv, key, &e, NULL) : -ENOENT;
        if (r < 0 && r != -ENOENT)
            return st_err_set(err, r, "reading %s", key);
        json_object_set_new(known, remote, stands = json_boolean(r == 0));
    }
    *ret_gone = !json_is_true(stands);
    return 0;
}

/* l3_sg_rules_read; with_dangling: also the rules that remote_gone hides. */
static int read_rules(struct st_kv *kv, json_t *sg, bool with_dangling, json_t **ret,
                      struct st_err **err)
{
    const char *sg_id = l3_str(sg, "id");
    if (!l3_id_ok(sg_id))
        return st_err_set(err, -EINVAL, "a security group document without an id");
    st_autofree char *prefix = st_sprintf("%s%s/", ST_NETWORK_SG_RULES_PREFIX, sg_id);
    st_autofree struct keyed_rule *keyed = NULL;
    size_t n = 0, cap = 0;
    st_autofree char *after = NULL;
    int r = 0;
    for (;;) {
        st_autoptr(st_kv_list) l = NULL;
        if ((r = st_kv_list(kv, prefix, after, 1000, &l, err)) < 0) {
            r = st_err_prefix(err, r, "listing the rules of security group %s", sg_id);
            break;
        }
        for (size_t i = 0; i < l->count; i++) {
            json_t *rule = NULL;
            st_autoptr(st_err) perr = NULL;
            if (st_json_parse_object(l->entries[i].value, l->entries[i].value_len, &rule, &perr) <
                0) {
                /* One damaged rule must not hide its group's others. */
                st_log_warn("network_bad_document", "key=%s error=\"%s\"", l->entries[i].key,
                            st_err_msg(perr));
                continue;
            }
            if (n == cap) {
                cap = cap ? 2 * cap : 64;
                keyed = st_xrealloc(keyed, cap * sizeof(*keyed));
            }
            keyed[n++] = (struct keyed_rule){rule, l->entries[i].create_rev};
        }
        if (!l->more || l->count == 0)
            break;
        free(after);
        after = st_strdup(l->entries[l->count - 1].key);
    }
    if (r < 0) {
        for (size_t i = 0; i < n; i++)
            json_decref(keyed[i].rule);
        return r;
    }
    if (n > 1)
        qsort(keyed, n, sizeof(*keyed), keyed_cmp);
    st_autoptr(json_t) all = json_array();
    st_autoptr(json_t) seen = json_object();
    for (size_t i = 0; i < n; i++) {
        if (l3_str(keyed[i].rule, "id"))
            json_object_set_new(seen, l3_str(keyed[i].rule, "id"), json_true());
        json_array_append_new(all, keyed[i].rule);
    }
    /* A document from before: its rules not moved yet (all of them, or the
     * rest after a move that stopped half-way). */
    size_t i;
    json_t *rule;
    json_array_foreach(json_object_get(sg, "security_group_rules"), i, rule)
    {
        if (!json_object_get(seen, l3_str(rule, "id") ?: ""))
            json_array_append(all, rule);
    }
    if (with_dangling) {
        *ret = st_steal(&all);
        return 0;
    }
    st_autoptr(json_t) known = json_object();
    st_autoptr(json_t) out = json_array();
    json_array_foreach(all, i, rule)
    {
        bool gone = false;
        if ((r = remote_gone(kv, sg_id, rule, known, &gone, err)) < 0)
            return r;
        if (!gone)
            json_array_append(out, rule);
    }
    *ret = st_steal(&out);
    return 0;
}

int l3_sg_rules_read(struct st_kv *kv, json_t *sg, json_t **ret, struct st_err **err)
{
    return read_rules(kv, sg, false, ret, err);
}

int l3_sg_present(struct st_kv *kv, json_t *sg, json_t **ret, struct st_err **err)
{
    st_autoptr(json_t) rules = NULL;
    int r = l3_sg_rules_read(kv, sg, &rules, err);
    if (r < 0)
        return r;
    st_autofree char *key = changes_key(l3_str(sg, "id"));
    st_autoptr(st_kv_entry) e = NULL;
    st_autoptr(st_err) kerr = NULL;
    r = st_kv_get(kv, key, &e, &kerr);
    if (r < 0 && r != -ENOENT)
        return st_err_set(err, r, "reading %s: %s", key, st_err_msg(kerr));
    json_t *out = net_public(sg);
    json_object_set(out, "security_group_rules", rules);
    if (e) {
        /* Neutron bumps a group's revision with each change of its rules. */
        json_int_t rev = json_integer_value(json_object_get(out, "revision_number"));
        json_object_set_new(out, "revision_number", json_integer(rev + e->version));
        const char *at = l3_str(out, "updated_at");
        if (!at || strcmp(e->value, at) > 0)
            json_object_set_new(out, "updated_at", json_string(e->value));
    }
    *ret = out;
    return 0;
}

/* The group holding rule id: through its id key, else (a rule of a
 * document from before whose id key a crash lost) by reading every group. */
static int find_rule_group(struct st_kv *kv, const char *rule_id, char **ret_group,
                           struct st_err **err)
{
    st_autofree char *key = id_key(rule_id);
    st_autoptr(st_kv_entry) e = NULL;
    if (st_kv_get(kv, key, &e, NULL) == 0) {
        *ret_group = st_strndup(e->value, e->value_len);
        return 0;
    }
    st_autoptr(json_t) all = NULL;
    int r = net_doc_list(kv, ST_NETWORK_SGS_PREFIX, &all, err);
    if (r < 0)
        return r;
    size_t i, j;
    json_t *sg, *rule;
    json_array_foreach(all, i, sg)
    {
        json_array_foreach(json_object_get(sg, "security_group_rules"), j, rule)
        {
            if (l3_streq(l3_str(rule, "id"), rule_id)) {
                *ret_group = st_strdup(l3_str(sg, "id"));
                return 0;
            }
        }
    }
    return rule_not_found(rule_id, err);
}

/* ---- writing ---- */

int l3_sg_write_new(struct st_kv *kv, json_t *sg, json_t *rules, struct st_err **err)
{
    const char *sg_id = l3_str(sg, "id");
    if (!l3_id_ok(sg_id) || carries_rules(sg) || 1 + 3 * json_array_size(rules) > ST_KV_TXN_OPS_MAX)
        return st_err_set(err, -EINVAL, "a new security group must have an id and few rules");
    st_autoptr(txn) t = txn_new();
    txn_cmp(t, group_key(sg_id), ST_KV_ABSENT);
    txn_put(t, group_key(sg_id), st_json_dumps(sg));
    size_t i;
    json_t *rule;
    json_array_foreach(rules, i, rule)
    {
        txn_put_rule(t, sg_id, rule);
    }
    int r = txn_run(kv, t, err);
    if (r < 0 && r != -ECANCELED)
        return st_err_prefix(err, r, "storing security group %s", sg_id);
    return r;
}

/* Moves the rules that a document from before carries (read at rev) to
 * keys of their own: one transaction per rule, so that they keep their
 * order (create_rev), each holding only while the document is the one read
 * (so that no rule deleted after a move comes back from a mover that was
 * late), then the document without them, its revision_number unchanged
 * (nothing a user sees changes). -ECANCELED: it changed; read it again. */
static int move_rules(struct st_kv *kv, json_t *sg, int64_t rev, struct st_err **err)
{
    const char *sg_id = l3_str(sg, "id");
    st_autofree char *sg_key = group_key(sg_id);
    size_t i, moved = 0;
    json_t *rule;
    int r;
    json_array_foreach(json_object_get(sg, "security_group_rules"), i, rule)
    {
        if (!l3_id_ok(l3_str(rule, "id")))
            continue; /* not a rule anyone could name */
        st_autofree char *key = rule_key(sg_id, l3_str(rule, "id"));
        st_autoptr(st_kv_entry) e = NULL;
        if (st_kv_get(kv, key, &e, NULL) == 0)
            continue; /* moved by an attempt that stopped half-way */
        st_autoptr(txn) t = txn_new();
        txn_cmp(t, st_strdup(sg_key), rev);
        txn_put_rule(t, sg_id, rule);
        if ((r = txn_run(kv, t, err)) < 0)
            return r == -ECANCELED ? r : st_err_prefix(err, r, "moving rules of group %s", sg_id);
        moved++;
    }
    st_autoptr(json_t) bare = json_deep_copy(sg);
    json_object_del(bare, "security_group_rules");
    st_autofree char *text = st_json_dumps(bare);
    if ((r = st_kv_put(kv, sg_key, text, strlen(text), rev, NULL, err)) < 0)
        return r == -ECANCELED ? r : st_err_prefix(err, r, "moving rules of group %s", sg_id);
    st_log_info("sg_rules_moved", "security_group=%s rules=%zu", sg_id, moved);
    return 0;
}

/* Reads group sg_id for a rule change: with visibility checked when who is
 * set, and moved to the new layout first when it is a document from before
 * (then read again). */
static int read_for_change(struct st_kv *kv, const struct st_network_caller *who, const char *sg_id,
                           json_t **ret, int64_t *ret_rev, struct st_err **err)
{
    for (int attempt = 0; attempt < L3_CAS_ATTEMPTS; attempt++) {
        st_autoptr(json_t) sg = NULL;
        int r = who ? l3_sg_read(kv, who, sg_id, &sg, ret_rev, err)
                    : net_doc_get(kv, ST_NETWORK_SGS_PREFIX, sg_id, &sg, ret_rev, err);
        if (r < 0)
            return r;
        if (!carries_rules(sg)) {
            *ret = st_steal(&sg);
            return 0;
        }
        if ((r = move_rules(kv, sg, *ret_rev, err)) < 0 && r != -ECANCELED)
            return r;
        st_err_clear(err);
    }
    return st_err_set(err, -ECANCELED, "security group %s kept changing; try again", sg_id);
}

/* Adds the rule of req, with id rule_id, to its group in one transaction;
 * claims the rule in the group's project's quota once it is known to be
 * valid and new (*ret_claimed: that project, for the caller to release the
 * claim if the rule is not written after all). */
static int add_rule(struct st_kv *kv, const struct st_network_caller *who, const char *sg_id,
                    json_t *req, const char *rule_id, char **ret_claimed, json_t **ret,
                    struct st_err **err)
{
    int r;
    for (int attempt = 0; attempt < L3_CAS_ATTEMPTS; attempt++) {
        st_autoptr(json_t) sg = NULL;
        int64_t rev = 0, remote_rev = 0;
        if ((r = read_for_change(kv, who, sg_id, &sg, &rev, err)) < 0)
            return r;
        st_autoptr(json_t) rule = NULL;
        if ((r = build_rule(req, sg, &rule, err)) < 0)
            return r;
        json_object_set_new(rule, "id", json_string(rule_id));
        const char *remote = l3_str(rule, "remote_group_id");
        if (remote && !l3_streq(remote, sg_id)) {
            st_autoptr(json_t) other = NULL;
            if ((r = l3_sg_read(kv, who, remote, &other, &remote_rev, err)) < 0)
                return r;
        }
        st_autofree char *fp = fingerprint_key(sg_id, rule);
        st_autoptr(st_kv_entry) same = NULL;
        if (st_kv_get(kv, fp, &same, NULL) == 0)
            return st_err_set(err, -EEXIST, "Security group rule already exists. Rule id is %s.",
                              same->value);
        if (!*ret_claimed) {
            const char *project = l3_str(sg, "project_id");
            if ((r = st_network_quota_claim(kv, project, ST_NETWORK_QUOTA_SECURITY_GROUP_RULE,
                                            rule_id, err)) < 0)
                return r;
            *ret_claimed = st_strdup(project ?: "");
        }
        /* Only while the group (and a remote group) stands as read, so
         * that a group delete never leaves a rule behind, and only as the
         * first of its kind. */
        st_autoptr(txn) t = txn_new();
        txn_cmp(t, group_key(sg_id), rev);
        txn_cmp(t, st_strdup(fp), ST_KV_ABSENT);
        if (remote_rev > 0)
            txn_cmp(t, group_key(remote), remote_rev);
        txn_put_rule(t, sg_id, rule);
        txn_mark_change(t, sg_id);
        r = txn_run(kv, t, err);
        if (r == -ECANCELED) {
            st_err_clear(err);
            continue;
        }
        if (r < 0)
            return st_err_prefix(err, r, "storing a rule of security group %s", sg_id);
        st_log_info("sg_rule_create", "id=%s security_group=%s", rule_id, sg_id);
        if (ret)
            *ret = st_steal(&rule);
        return 0;
    }
    return st_err_set(err, -ECANCELED, "security group %s kept changing; try again", sg_id);
}

/* Deletes rule_id of group sg_id (its keys, in one transaction) and
 * releases it from the quota: -ENOENT (err unset) when either is gone. */
static int remove_rule(struct st_kv *kv, const char *sg_id, const char *rule_id,
                       struct st_err **err)
{
    st_autofree char *key = rule_key(sg_id, rule_id);
    for (int attempt = 0; attempt < L3_CAS_ATTEMPTS; attempt++) {
        st_autoptr(json_t) sg = NULL;
        int64_t rev = 0;
        int r = read_for_change(kv, NULL, sg_id, &sg, &rev, err);
        if (r < 0)
            return r;
        st_autoptr(st_kv_entry) e = NULL;
        st_autoptr(json_t) rule = NULL;
        if ((r = st_kv_get(kv, key, &e, NULL)) == -ENOENT)
            return -ENOENT;
        if (r < 0)
            return st_err_set(err, r, "reading %s", key);
        if ((r = st_json_parse_object(e->value, e->value_len, &rule, err)) < 0)
            return st_err_prefix(err, r, "reading %s", key);
        st_autoptr(txn) t = txn_new();
        txn_cmp(t, st_strdup(key), e->mod_rev);
        txn_del(t, st_strdup(key));
        txn_del(t, id_key(rule_id));
        /* Its fingerprint, unless (a duplicate in a document from before)
         * another rule holds it. */
        st_autofree char *fp = fingerprint_key(sg_id, rule);
        st_autoptr(st_kv_entry) owner = NULL;
        if (st_kv_get(kv, fp, &owner, NULL) == 0 && l3_streq(owner->value, rule_id)) {
            txn_cmp(t, st_strdup(fp), owner->mod_rev);
            txn_del(t, st_strdup(fp));
        }
        txn_mark_change(t, sg_id);
        r = txn_run(kv, t, err);
        if (r == -ECANCELED) {
            st_err_clear(err);
            continue;
        }
        if (r < 0)
            return st_err_prefix(err, r, "deleting rule %s of security group %s", rule_id, sg_id);
        st_network_quota_release_one(kv, l3_str(sg, "project_id"),
                                     ST_NETWORK_QUOTA_SECURITY_GROUP_RULE, rule_id);
        st_log_info("sg_rule_delete", "id=%s security_group=%s", rule_id, sg_id);
        return 0;
    }
    return st_err_set(err, -ECANCELED, "security group %s kept changing; try again", sg_id);
}

/* Drops the rules of other groups that name sg_id as their remote group (as
 * Neutron's foreign key cascades). */
static void drop_remote_rules(struct st_kv *kv, const char *sg_id)
{
    st_autoptr(json_t) all = NULL;
    if (net_doc_list(kv, ST_NETWORK_SGS_PREFIX, &all, NULL) < 0)
        return;
    size_t i, j;
    json_t *sg, *rule;
    json_array_foreach(all, i, sg)
    {
        st_autoptr(json_t) rules = NULL;
        if (read_rules(kv, sg, true, &rules, NULL) < 0)
            continue;
        json_array_foreach(rules, j, rule)
        {
            st_autoptr(st_err) err = NULL;
            if (l3_streq(l3_str(rule, "remote_group_id"), sg_id) &&
                remove_rule(kv, l3_str(sg, "id"), l3_str(rule, "id"), &err) < 0 && err)
                st_log_warn("sg_rule_drop_failed", "id=%s error=\"%s\"", l3_str(rule, "id"),
                            st_err_msg(err));
        }
    }
}

void l3_sg_rules_purge(struct st_kv *kv, json_t *sg)
{
    const char *sg_id = l3_str(sg, "id");
    st_autoptr(json_t) rules = NULL;
    st_autoptr(st_err) err = NULL;
    if (read_rules(kv, sg, true, &rules, &err) < 0) {
        st_log_warn("sg_rules_purge_failed", "security_group=%s error=\"%s\"", sg_id,
                    st_err_msg(err));
        return;
    }
    /* The keys of its rules, many to a transaction. */
    size_t n = json_array_size(rules);
    for (size_t i = 0; i < n;) {
        st_autoptr(txn) t = txn_new();
        for (; i < n && txn_room(t, 3); i++) {
            json_t *rule = json_array_get(rules, i);
            const char *id = l3_str(rule, "id") ?: "";
            txn_del(t, rule_key(sg_id, id));
            txn_del(t, id_key(id));
            txn_del(t, fingerprint_key(sg_id, rule));
        }
        if (txn_run(kv, t, &err) < 0) {
            st_log_warn("sg_rules_purge_failed", "security_group=%s error=\"%s\"", sg_id,
                        st_err_msg(err));
            return;
        }
    }
    /* and whatever else is under the group (fingerprints a duplicate in a
     * document from before shared) */
    st_autofree char *fps = st_sprintf("%s%s/", ST_NETWORK_SG_RULE_FPS_PREFIX, sg_id);
    net_unclaim_all(kv, fps);
    st_autofree char *changes = changes_key(sg_id);
    st_kv_delete(kv, changes, ST_KV_ANY, NULL, NULL);

    const char **ids = st_new0(const char *, n + 1);
    for (size_t i = 0; i < n; i++)
        ids[i] = l3_str(json_array_get(rules, i), "id");
    st_network_quota_release(kv, l3_str(sg, "project_id"), ST_NETWORK_QUOTA_SECURITY_GROUP_RULE,
                             ids, n, NULL);
    free(ids);
    drop_remote_rules(kv, sg_id);
}

int l3_sg_rule_ids(struct st_kv *kv, const char *project_id, json_t **ret, struct st_err **err)
{
    st_autoptr(json_t) all = NULL;
    int r = net_doc_list(kv, ST_NETWORK_SGS_PREFIX, &all, err);
    if (r < 0)
        return r;
    st_autoptr(json_t) ids = json_object();
    size_t i, j;
    json_t *sg, *rule;
    json_array_foreach(all, i, sg)
    {
        if (!l3_streq(l3_str(sg, "project_id"), project_id))
            continue;
        st_autoptr(json_t) rules = NULL;
        if ((r = l3_sg_rules_read(kv, sg, &rules, err)) < 0)
            return r;
        json_array_foreach(rules, j, rule)
        {
            if (l3_str(rule, "id"))
                json_object_set_new(ids, l3_str(rule, "id"), json_true());
        }
    }
    *ret = st_steal(&ids);
    return 0;
}

/* ---- the API's operations ---- */

int st_security_group_rule_create(struct st_kv *kv, const struct st_network_caller *who,
                                  json_t *req, json_t **ret, struct st_err **err)
{
    if (!json_is_object(req))
        return st_err_set(err, -EINVAL, "Invalid input: security_group_rule must be an object.");
    const char *sg_id = l3_str(req, "security_group_id");
    if (!sg_id)
        return st_err_set(err, -EINVAL,
                          "Failed to parse request. Required attribute "
                          "'security_group_id' not specified");
    int r = l3_ensure_default(kv, who, err);
    if (r < 0)
        return r;
    /* one id for every attempt, so that the quota claim is the rule's */
    char rule_id[ST_UUID_LEN];
    st_uuid_new(rule_id);
    st_autofree char *claimed = NULL;
    r = add_rule(kv, who, sg_id, req, rule_id, &claimed, ret, err);
    if (r < 0 && claimed)
        st_network_quota_release_one(kv, claimed, ST_NETWORK_QUOTA_SECURITY_GROUP_RULE, rule_id);
    return r;
}

int st_security_group_rule_get(struct st_kv *kv, const struct st_network_caller *who,
                               const char *id, json_t **ret, struct st_err **err)
{
    if (!l3_id_ok(id))
        return rule_not_found(id, err);
    st_autofree char *sg_id = NULL;
    int r = find_rule_group(kv, id, &sg_id, err);
    if (r < 0)
        return r;
    st_autoptr(json_t) sg = NULL;
    if ((r = l3_sg_read(kv, who, sg_id, &sg, NULL, err)) < 0)
        return r == -ENOENT ? rule_not_found(id, err) : r;
    st_autofree char *key = rule_key(sg_id, id);
    st_autoptr(st_kv_entry) e = NULL;
    st_autoptr(json_t) rule = NULL;
    if ((r = st_kv_get(kv, key, &e, NULL)) == 0) {
        if ((r = st_json_parse_object(e->value, e->value_len, &rule, err)) < 0)
            return st_err_prefix(err, r, "reading %s", key);
    } else if (r != -ENOENT) {
        return st_err_set(err, r, "reading %s", key);
    } else {
        size_t i;
        json_t *old;
        json_array_foreach(json_object_get(sg, "security_group_rules"), i, old)
        {
            if (!rule && l3_streq(l3_str(old, "id"), id))
                rule = json_deep_copy(old);
        }
    }
    st_autoptr(json_t) known = json_object();
    bool gone = false;
    if (rule && (r = remote_gone(kv, sg_id, rule, known, &gone, err)) < 0)
        return r;
    if (!rule || gone)
        return rule_not_found(id, err);
    *ret = st_steal(&rule);
    return 0;
}

/* The groups a rule list looks in: those its security_group_id filter
 * names, else every group. */
static int groups_to_list(struct st_kv *kv, json_t *filters, json_t **ret, struct st_err **err)
{
    json_t *want = json_object_get(filters, "security_group_id");
    if (!json_is_string(want) && !json_is_array(want))
        return net_doc_list(kv, ST_NETWORK_SGS_PREFIX, ret, err);
    st_autoptr(json_t) named = json_is_string(want) ? json_pack("[O]", want) : json_incref(want);
    json_t *out = json_array();
    size_t i;
    json_t *id;
    json_array_foreach(named, i, id)
    {
        json_t *sg = NULL;
        int r = net_doc_get(kv, ST_NETWORK_SGS_PREFIX, json_string_value(id), &sg, NULL, err);
        if (r == 0)
            json_array_append_new(out, sg);
        else if (r != -ENOENT) {
            json_decref(out);
            return r;
        }
    }
    *ret = out;
    return 0;
}

int st_security_group_rule_list(struct st_kv *kv, const struct st_network_caller *who,
                                json_t *filters, json_t **ret, struct st_err **err)
{
    int r = l3_ensure_default(kv, who, err);
    if (r < 0)
        return r;
    st_autoptr(json_t) groups = NULL;
    if ((r = groups_to_list(kv, filters, &groups, err)) < 0)
        return r;
    st_autoptr(json_t) out = json_array();
    size_t i, j;
    json_t *sg, *rule;
    json_array_foreach(groups, i, sg)
    {
        if (!net_list_visible(who, sg))
            continue;
        st_autoptr(json_t) rules = NULL;
        if ((r = l3_sg_rules_read(kv, sg, &rules, err)) < 0)
            return r;
        json_array_foreach(rules, j, rule)
        {
            if (!filters || net_filter_match(rule, filters))
                json_array_append(out, rule);
        }
    }
    *ret = st_steal(&out);
    return 0;
}

int st_security_group_rule_delete(struct st_kv *kv, const struct st_network_caller *who,
                                  const char *id, struct st_err **err)
{
    if (!l3_id_ok(id))
        return rule_not_found(id, err);
    st_autofree char *sg_id = NULL;
    int r = find_rule_group(kv, id, &sg_id, err);
    if (r < 0)
        return r;
    st_autoptr(json_t) sg = NULL;
    if ((r = l3_sg_read(kv, who, sg_id, &sg, NULL, err)) < 0 ||
        (r = remove_rule(kv, sg_id, id, err)) < 0)
        return r == -ENOENT ? rule_not_found(id, err) : r;
    return 0;
}
