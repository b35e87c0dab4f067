/* Security group rules: Neutron's validation (protocols, port ranges, ICMP
 * type and code, remote prefix or remote group), duplicate detection, and
 * the rules' place in the store. Rules live inside their group's document
 * (model.h), so every change is one compare-and-swap on the group; the key
 * /network/sg-rules/<rule id> → group id finds a rule's group without
 * reading every group, and is rebuilt from the groups when missing. */
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

void l3_sg_rules_index(struct st_kv *kv, json_t *sg)
{
    const char *sg_id = l3_str(sg, "id");
    size_t i;
    json_t *rule;
    json_array_foreach(json_object_get(sg, "security_group_rules"), i, rule)
    {
        st_autofree char *key = st_sprintf("%s%s", ST_NETWORK_SG_RULES_PREFIX, l3_str(rule, "id"));
        st_autoptr(st_err) err = NULL;
        if (st_kv_put(kv, key, sg_id, strlen(sg_id), ST_KV_ANY, NULL, &err) < 0)
            st_log_warn("sg_rule_index", "key=%s error=\"%s\"", key, st_err_msg(err));
    }
}

void l3_sg_rules_unindex(struct st_kv *kv, json_t *sg)
{
    size_t i;
    json_t *rule;
    json_array_foreach(json_object_get(sg, "security_group_rules"), i, rule)
    {
        st_autofree char *key = st_sprintf("%s%s", ST_NETWORK_SG_RULES_PREFIX, l3_str(rule, "id"));
        st_kv_delete(kv, key, ST_KV_ANY, NULL, NULL);
    }
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

static bool same_opt(const char *a, const char *b)
{
    return (!a && !b) || l3_streq(a, b);
}

static bool same_rule(json_t *a, json_t *b)
{
    return l3_streq(l3_str(a, "direction"), l3_str(b, "direction")) &&
           l3_streq(l3_str(a, "ethertype"), l3_str(b, "ethertype")) &&
           proto_number(l3_str(a, "protocol")) == proto_number(l3_str(b, "protocol")) &&
           json_equal(json_object_get(a, "port_range_min"), json_object_get(b, "port_range_min")) &&
           json_equal(json_object_get(a, "port_range_max"), json_object_get(b, "port_range_max")) &&
           same_opt(prefix_key(a), prefix_key(b)) &&
           same_opt(l3_str(a, "remote_group_id"), l3_str(b, "remote_group_id"));
}

/* ---- the store ---- */

static int rule_not_found(const char *id, struct st_err **err)
{
    st_err_clear(err);
    return st_err_set(err, -ENOENT, "Security group rule %s does not exist", id ? id : "");
}

/* The group holding rule id: through the index, else by reading every
 * group (the index is written after the group, so a crash in between can
 * leave it behind). */
static int find_rule_group(struct st_kv *kv, const char *rule_id, char **ret_group,
                           struct st_err **err)
{
    st_autofree char *key = st_sprintf("%s%s", ST_NETWORK_SG_RULES_PREFIX, rule_id);
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

static json_t *rule_in(json_t *sg, const char *rule_id, size_t *ret_index)
{
    size_t i;
    json_t *rule;
    json_array_foreach(json_object_get(sg, "security_group_rules"), i, rule)
    {
        if (l3_streq(l3_str(rule, "id"), rule_id)) {
            if (ret_index)
                *ret_index = i;
            return rule;
        }
    }
    return NULL;
}

/* Adds the rule of req, with id rule_id, to its group with compare-and-swap;
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
        int64_t rev = 0;
        if ((r = l3_sg_read(kv, who, sg_id, &sg, &rev, err)) < 0)
            return r;
        st_autoptr(json_t) rule = NULL;
        if ((r = build_rule(req, sg, &rule, err)) < 0)
            return r;
        json_object_set_new(rule, "id", json_string(rule_id));
        const char *remote = l3_str(rule, "remote_group_id");
        if (remote && !l3_streq(remote, sg_id)) {
            st_autoptr(json_t) other = NULL;
            if ((r = l3_sg_read(kv, who, remote, &other, NULL, err)) < 0)
                return r;
        }
        json_t *rules = json_object_get(sg, "security_group_rules");
        size_t i;
        json_t *old;
        json_array_foreach(rules, i, old)
        {
            if (same_rule(old, rule))
                return st_err_set(err, -EEXIST,
                                  "Security group rule already exists. Rule id is %s.",
                                  l3_str(old, "id"));
        }
        if (!*ret_claimed) {
            const char *project = l3_str(sg, "project_id");
            if ((r = st_network_quota_claim(kv, project, ST_NETWORK_QUOTA_SECURITY_GROUP_RULE,
                                            rule_id, err)) < 0)
                return r;
            *ret_claimed = st_strdup(project ?: "");
        }
        json_array_append(rules, rule);
        r = net_doc_put(kv, ST_NETWORK_SGS_PREFIX, sg, rev, err);
        if (r == -ECANCELED) {
            st_err_clear(err);
            continue;
        }
        if (r < 0)
            return st_err_prefix(err, r, "storing security group %s", sg_id);
        st_autofree char *key = st_sprintf("%s%s", ST_NETWORK_SG_RULES_PREFIX, rule_id);
        if (st_kv_put(kv, key, sg_id, strlen(sg_id), ST_KV_ANY, NULL, NULL) < 0)
            st_log_warn("sg_rule_index", "key=%s", key);
        st_log_info("sg_rule_create", "id=%s security_group=%s", rule_id, sg_id);
        if (ret)
            *ret = st_steal(&rule);
        return 0;
    }
    return st_err_set(err, -ECANCELED, "security group %s kept changing; try again", sg_id);
}

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
    json_t *rule = rule_in(sg, id, NULL);
    if (!rule)
        return rule_not_found(id, err);
    *ret = json_deep_copy(rule);
    return 0;
}

int st_security_group_rule_list(struct st_kv *kv, const struct st_network_caller *who,
                                json_t *filters, json_t **ret, struct st_err **err)
{
    int r = l3_ensure_default(kv, who, err);
    if (r < 0)
        return r;
    st_autoptr(json_t) all = NULL;
    if ((r = net_doc_list(kv, ST_NETWORK_SGS_PREFIX, &all, err)) < 0)
        return r;
    json_t *out = json_array();
    size_t i, j;
    json_t *sg, *rule;
    json_array_foreach(all, i, sg)
    {
        if (!net_list_visible(who, sg))
            continue;
        json_array_foreach(json_object_get(sg, "security_group_rules"), j, rule)
        {
            if (!filters || net_filter_match(rule, filters))
                json_array_append(out, rule);
        }
    }
    *ret = out;
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
    for (int attempt = 0; attempt < L3_CAS_ATTEMPTS; attempt++) {
        st_autoptr(json_t) sg = NULL;
        int64_t rev = 0;
        if ((r = l3_sg_read(kv, who, sg_id, &sg, &rev, err)) < 0)
            return r == -ENOENT ? rule_not_found(id, err) : r;
        size_t index = 0;
        if (!rule_in(sg, id, &index))
            return rule_not_found(id, err);
        json_array_remove(json_object_get(sg, "security_group_rules"), index);
        r = net_doc_put(kv, ST_NETWORK_SGS_PREFIX, sg, rev, err);
        if (r == -ECANCELED) {
            st_err_clear(err);
            continue;
        }
        if (r < 0)
            return st_err_prefix(err, r, "storing security group %s", sg_id);
        st_network_quota_release_one(kv, l3_str(sg, "project_id"),
                                     ST_NETWORK_QUOTA_SECURITY_GROUP_RULE, id);
        st_autofree char *key = st_sprintf("%s%s", ST_NETWORK_SG_RULES_PREFIX, id);
        st_kv_delete(kv, key, ST_KV_ANY, NULL, NULL);
        st_log_info("sg_rule_delete", "id=%s security_group=%s", id, sg_id);
        return 0;
    }
    return st_err_set(err, -ECANCELED, "security group %s kept changing; try again", sg_id);
}
