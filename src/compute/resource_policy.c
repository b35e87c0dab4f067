/* Resource policies: validation and normalization of the seed's
 * resourcePolicy document, its YAML reader, and the named policies of each
 * project in the store; see resource_policy.h. Quantities are parsed as
 * exact decimals (no floating point), so "2.5GHz" is 2500 MHz, not 2499. */
#include "resource_policy.h"

#include <errno.h>
#include <libfyaml.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "lib/cleanup.h"
#include "lib/json.h"
#include "lib/times.h"
#include "store/kv.h"

/* ---- quantities ---- */

/* A unit: value in the base unit = number * num / den. */
struct unit {
    const char *name;
    int64_t num, den;
};

static const struct unit cpu_units[] = {{"MHz", 1, 1}, {"GHz", 1000, 1}};
/* GB is GiB, as VMware uses it in reservations and limits. */
static const struct unit mem_units[] = {{"MB", 1, 1},           {"MiB", 1, 1},
                                        {"GB", 1024, 1},        {"GiB", 1024, 1},
                                        {"TB", 1024 * 1024, 1}, {"TiB", 1024 * 1024, 1}};
static const struct unit bw_units[] = {{"Kbps", 1, 1}, {"Mbps", 1000, 1}, {"Gbps", 1000000, 1}};
static const struct unit latency_units[] = {{"us", 1, 1}, {"ms", 1000, 1}, {"s", 1000000, 1}};

#define QUANTITY_MAX ((int64_t)1 << 50)

static char *unit_names(const struct unit *units, size_t n)
{
    char *s = st_strdup("");
    for (size_t i = 0; i < n; i++) {
        char *next =
            st_sprintf("%s%s%s", s, i == 0 ? "" : (i + 1 == n ? " or " : ", "), units[i].name);
        free(s);
        s = next;
    }
    return s;
}

/* Parses "<decimal> <unit>" (spaces optional) into the base unit, rounding
 * to the nearest. Units compare case-insensitively. */
static int parse_quantity(const char *field, json_t *v, const struct unit *units, size_t n_units,
                          int64_t *ret, struct st_err **err)
{
    st_autofree char *names = unit_names(units, n_units);
    if (json_is_number(v))
        return st_err_set(err, -EINVAL, "%s: a bare number is ambiguous; give a unit (%s)", field,
                          names);
    if (!json_is_string(v))
        return st_err_set(err, -EINVAL, "%s: expected a quantity such as '2%s'", field,
                          units[n_units - 1].name);
    const char *s = json_string_value(v), *p = s;
    while (*p == ' ')
        p++;
    if (*p < '0' || *p > '9')
        return st_err_set(err, -EINVAL, "%s: '%s' is not a quantity (expected e.g. '2%s')", field,
                          s, units[n_units - 1].name);
    __int128 micro = 0;
    int int_digits = 0;
    for (; *p >= '0' && *p <= '9'; p++) {
        if (++int_digits > 15)
            return st_err_set(err, -ERANGE, "%s: '%s' is too large", field, s);
        micro = micro * 10 + (*p - '0');
    }
    micro *= 1000000;
    if (*p == '.') {
        p++;
        int64_t scale = 100000;
        if (*p < '0' || *p > '9')
            return st_err_set(err, -EINVAL, "%s: '%s' is not a quantity", field, s);
        for (; *p >= '0' && *p <= '9'; p++) {
            if (scale == 0)
                return st_err_set(err, -EINVAL, "%s: '%s' has more than 6 decimals", field, s);
            micro += (*p - '0') * scale;
            scale /= 10;
        }
    }
    while (*p == ' ')
        p++;
    size_t ulen = strlen(p);
    while (ulen && p[ulen - 1] == ' ')
        ulen--;
    if (ulen == 0)
        return st_err_set(err, -EINVAL, "%s: '%s' has no unit (use %s)", field, s, names);
    for (size_t i = 0; i < n_units; i++) {
        if (strlen(units[i].name) != ulen || strncasecmp(p, units[i].name, ulen) != 0)
            continue;
        __int128 den = (__int128)units[i].den * 1000000;
        __int128 val = (micro * units[i].num + den / 2) / den;
        if (val > QUANTITY_MAX)
            return st_err_set(err, -ERANGE, "%s: '%s' is too large", field, s);
        *ret = (int64_t)val;
        return 0;
    }
    return st_err_set(err, -EINVAL, "%s: unknown unit '%.*s' (use %s)", field, (int)ulen, p, names);
}

/* A positive integer given as a number or a string of digits. */
static int parse_count(const char *field, json_t *v, int64_t min, int64_t max, int64_t *ret,
                       struct st_err **err)
{
    int64_t n;
    if (json_is_integer(v)) {
        n = json_integer_value(v);
    } else if (json_is_string(v)) {
        const char *s = json_string_value(v);
        char *end = NULL;
        errno = 0;
        n = strtoll(s, &end, 10);
        if (!s[0] || *end || errno || s[0] == '-' || s[0] == '+' || s[0] == ' ')
            return st_err_set(err, -EINVAL, "%s: '%s' is not an integer", field, s);
    } else {
        return st_err_set(err, -EINVAL, "%s: expected an integer", field);
    }
    if (n < min || n > max)
        return st_err_set(err, -ERANGE, "%s: %lld is out of range [%lld, %lld]", field,
                          (long long)n, (long long)min, (long long)max);
    *ret = n;
    return 0;
}

/* Refuses members other than the allowed ones: a typo must not be dropped. */
static int check_members(json_t *obj, const char *field, const char *const *allowed, size_t n,
                         struct st_err **err)
{
    if (!json_is_object(obj))
        return st_err_set(err, -EINVAL, "%s: expected a mapping", field);
    const char *key;
    json_t *v;
    json_object_foreach(obj, key, v)
    {
        bool ok = false;
        for (size_t i = 0; i < n && !ok; i++)
            ok = strcmp(key, allowed[i]) == 0;
        if (!ok) {
            st_autofree char *list = st_strdup("");
            for (size_t i = 0; i < n; i++) {
                char *next = st_sprintf("%s%s%s", list, i ? ", " : "", allowed[i]);
                free(list);
                list = next;
            }
            return st_err_set(err, -EINVAL, "%s: unknown field '%s' (known: %s)", field, key, list);
        }
    }
    if (json_object_size(obj) == 0)
        return st_err_set(err, -EINVAL, "%s: empty mapping", field);
    return 0;
}

/* ---- sections ---- */

static int normalize_shares(json_t *v, json_t **ret, struct st_err **err)
{
    const char *field = "resourcePolicy.compute.cpu.shares";
    static const char *const levels[] = {"low", "normal", "high"};
    json_t *level = v, *custom = NULL;
    if (json_is_object(v)) {
        static const char *const keys[] = {"level", "shares"};
        int r = check_members(v, field, keys, ST_ARRAY_SIZE(keys), err);
        if (r < 0)
            return r;
        level = json_object_get(v, "level");
        custom = json_object_get(v, "shares");
        if (level && json_is_string(level) && strcasecmp(json_string_value(level), "custom") == 0) {
            if (!custom)
                return st_err_set(err, -EINVAL, "%s: level custom needs a 'shares' number", field);
            level = NULL;
        } else if (custom) {
            return st_err_set(err, -EINVAL, "%s: 'shares' goes with level custom only", field);
        }
    }
    if (level && json_is_string(level)) {
        const char *s = json_string_value(level);
        for (size_t i = 0; i < ST_ARRAY_SIZE(levels); i++)
            if (strcasecmp(s, levels[i]) == 0) {
                *ret = json_string(levels[i]);
                return 0;
            }
        if (s[0] < '0' || s[0] > '9')
            return st_err_set(err, -EINVAL,
                              "%s: unknown level '%s' (use low, normal, high or a number)", field,
                              s);
        custom = level;
    } else if (level) {
        custom = level;
    }
    int64_t n;
    /* cgroup v1 cpu.shares bounds; the agent scales them to v2's weight */
    int r = parse_count(field, custom, 2, 262144, &n, err);
    if (r < 0)
        return r;
    *ret = json_integer(n);
    return 0;
}

/* reservation and limit of one resource; reservation may be 0, limit not. */
static int normalize_reservation_limit(json_t *obj, const char *field, const struct unit *units,
                                       size_t n_units, const char *suffix, json_t *out,
                                       struct st_err **err)
{
    int64_t res = -1, lim = -1;
    json_t *v;
    if ((v = json_object_get(obj, "reservation"))) {
        st_autofree char *f = st_sprintf("%s.reservation", field);
        int r = parse_quantity(f, v, units, n_units, &res, err);
        if (r < 0)
            return r;
        st_autofree char *k = st_sprintf("reservation_%s", suffix);
        json_object_set_new(out, k, json_integer(res));
    }
    if ((v = json_object_get(obj, "limit"))) {
        st_autofree char *f = st_sprintf("%s.limit", field);
        int r = parse_quantity(f, v, units, n_units, &lim, err);
        if (r < 0)
            return r;
        if (lim == 0)
            return st_err_set(err, -EINVAL,
                              "%s: a limit of 0 allows nothing; leave it out for none", f);
        st_autofree char *k = st_sprintf("limit_%s", suffix);
        json_object_set_new(out, k, json_integer(lim));
    }
    if (res >= 0 && lim > 0 && res > lim)
        return st_err_set(err, -EINVAL, "%s: reservation (%s) is above the limit (%s)", field,
                          json_string_value(json_object_get(obj, "reservation")),
                          json_string_value(json_object_get(obj, "limit")));
    return 0;
}

static int normalize_compute(json_t *compute, json_t *out, struct st_err **err)
{
    static const char *const keys[] = {"cpu", "memory"};
    int r = check_members(compute, "resourcePolicy.compute", keys, ST_ARRAY_SIZE(keys), err);
    if (r < 0)
        return r;
    json_t *cpu = json_object_get(compute, "cpu");
    if (cpu) {
        static const char *const cpu_keys[] = {"reservation", "limit", "shares"};
        const char *field = "resourcePolicy.compute.cpu";
        if ((r = check_members(cpu, field, cpu_keys, ST_ARRAY_SIZE(cpu_keys), err)) < 0)
            return r;
        json_t *c = json_object();
        json_object_set_new(out, "cpu", c);
        r = normalize_reservation_limit(cpu, field, cpu_units, ST_ARRAY_SIZE(cpu_units), "mhz", c,
                                        err);
        if (r < 0)
            return r;
        json_t *shares = json_object_get(cpu, "shares");
        if (shares) {
            json_t *s = NULL;
            if ((r = normalize_shares(shares, &s, err)) < 0)
                return r;
            json_object_set_new(c, "shares", s);
        }
    }
    json_t *mem = json_object_get(compute, "memory");
    if (mem) {
        static const char *const mem_keys[] = {"reservation", "limit"};
        const char *field = "resourcePolicy.compute.memory";
        if ((r = check_members(mem, field, mem_keys, ST_ARRAY_SIZE(mem_keys), err)) < 0)
            return r;
        json_t *m = json_object();
        json_object_set_new(out, "memory", m);
        r = normalize_reservation_limit(mem, field, mem_units, ST_ARRAY_SIZE(mem_units), "mb", m,
                                        err);
        if (r < 0)
            return r;
    }
    return 0;
}

static int normalize_storage(json_t *storage, json_t *out, struct st_err **err)
{
    static const char *const keys[] = {"type", "size", "iops"};
    const char *field = "resourcePolicy.storage";
    int r = check_members(storage, field, keys, ST_ARRAY_SIZE(keys), err);
    if (r < 0)
        return r;
    json_t *v;
    if ((v = json_object_get(storage, "type"))) {
        const char *t = json_string_value(v);
        size_t len = t ? strlen(t) : 0;
        if (len == 0 || len > 64)
            return st_err_set(err, -EINVAL, "%s.type: expected a name such as SSD or HDD", field);
        for (const char *c = t; *c; c++)
            if (!((*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') ||
                  (*c >= '0' && *c <= '9') || *c == '-' || *c == '_'))
                return st_err_set(err, -EINVAL,
                                  "%s.type: '%s' has characters other than "
                                  "letters, digits, '-' and '_'",
                                  field, t);
        json_object_set_new(out, "type", json_string(t));
    }
    if ((v = json_object_get(storage, "size"))) {
        int64_t mib;
        if ((r = parse_quantity("resourcePolicy.storage.size", v, mem_units,
                                ST_ARRAY_SIZE(mem_units), &mib, err)) < 0)
            return r;
        if (mib == 0)
            return st_err_set(err, -EINVAL, "%s.size: must be more than 0", field);
        json_object_set_new(out, "size_gb", json_integer((mib + 1023) / 1024));
    }
    if ((v = json_object_get(storage, "iops"))) {
        int64_t iops;
        if ((r = parse_count("resourcePolicy.storage.iops", v, 1, 100000000, &iops, err)) < 0)
            return r;
        json_object_set_new(out, "iops", json_integer(iops));
    }
    return 0;
}

static int normalize_network(json_t *network, json_t *out, struct st_err **err)
{
    static const char *const keys[] = {"bandwidth", "latency"};
    const char *field = "resourcePolicy.network";
    int r = check_members(network, field, keys, ST_ARRAY_SIZE(keys), err);
    if (r < 0)
        return r;
    json_t *v;
    if ((v = json_object_get(network, "bandwidth"))) {
        int64_t kbps;
        if ((r = parse_quantity("resourcePolicy.network.bandwidth", v, bw_units,
                                ST_ARRAY_SIZE(bw_units), &kbps, err)) < 0)
            return r;
        if (kbps == 0)
            return st_err_set(err, -EINVAL, "%s.bandwidth: must be more than 0", field);
        json_object_set_new(out, "bandwidth_kbps", json_integer(kbps));
    }
    if ((v = json_object_get(network, "latency"))) {
        /* "<10ms" and "<=10ms" both mean "at most", the only sense a bound has */
        const char *s = json_string_value(v);
        json_t *rest = v;
        st_autoptr(json_t) stripped = NULL;
        if (s && s[0] == '<') {
            stripped = json_string(s + (s[1] == '=' ? 2 : 1));
            rest = stripped;
        }
        int64_t us;
        if ((r = parse_quantity("resourcePolicy.network.latency", rest, latency_units,
                                ST_ARRAY_SIZE(latency_units), &us, err)) < 0)
            return r;
        json_object_set_new(out, "latency_us", json_integer(us));
    }
    return 0;
}

int st_resource_policy_normalize(json_t *policy, json_t **ret_resources, json_t **ret_not_enforced,
                                 struct st_err **err)
{
    static const char *const keys[] = {"compute", "storage", "network"};
    int r = check_members(policy, "resourcePolicy", keys, ST_ARRAY_SIZE(keys), err);
    if (r < 0)
        return r;
    st_autoptr(json_t) out = json_object();
    st_autoptr(json_t) not_enforced = json_array();
    json_t *v;
    if ((v = json_object_get(policy, "compute"))) {
        json_t *c = json_object();
        json_object_set_new(out, "compute", c);
        if ((r = normalize_compute(v, c, err)) < 0)
            return r;
    }
    if ((v = json_object_get(policy, "storage"))) {
        json_t *s = json_object();
        json_object_set_new(out, "storage", s);
        if ((r = normalize_storage(v, s, err)) < 0)
            return r;
        json_array_append_new(not_enforced, json_string("storage"));
    }
    if ((v = json_object_get(policy, "network"))) {
        json_t *n = json_object();
        json_object_set_new(out, "network", n);
        if ((r = normalize_network(v, n, err)) < 0)
            return r;
        json_array_append_new(not_enforced, json_string("network"));
    }
    if (ret_resources)
        *ret_resources = st_steal(&out);
    if (ret_not_enforced)
        *ret_not_enforced = st_steal(&not_enforced);
    return 0;
}

/* ---- YAML ---- */

#define YAML_DEPTH_MAX 32

static bool all_digits(const char *s, size_t len)
{
    if (len == 0)
        return false;
    for (size_t i = 0; i < len; i++)
        if (s[i] < '0' || s[i] > '9')
            return false;
    return true;
}

/* YAML 1.2 core schema for a plain scalar. */
static json_t *plain_scalar(const char *s, size_t len)
{
    static const char *const nulls[] = {"", "~", "null", "Null", "NULL"};
    static const char *const trues[] = {"true", "True", "TRUE"};
    static const char *const falses[] = {"false", "False", "FALSE"};
    for (size_t i = 0; i < ST_ARRAY_SIZE(nulls); i++)
        if (len == strlen(nulls[i]) && memcmp(s, nulls[i], len) == 0)
            return json_null();
    for (size_t i = 0; i < ST_ARRAY_SIZE(trues); i++)
        if (len == strlen(trues[i]) && memcmp(s, trues[i], len) == 0)
            return json_true();
    for (size_t i = 0; i < ST_ARRAY_SIZE(falses); i++)
        if (len == strlen(falses[i]) && memcmp(s, falses[i], len) == 0)
            return json_false();
    st_autofree char *z = st_strndup(s, len);
    size_t sign = (z[0] == '-' || z[0] == '+') ? 1 : 0;
    if (len <= 18 && all_digits(z + sign, len - sign))
        return json_integer(strtoll(z, NULL, 10));
    /* [-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)? */
    const char *p = z + sign;
    bool digits = false;
    while (*p >= '0' && *p <= '9')
        p++, digits = true;
    if (*p == '.') {
        p++;
        while (*p >= '0' && *p <= '9')
            p++, digits = true;
    }
    if (digits && (*p == 'e' || *p == 'E')) {
        p++;
        if (*p == '-' || *p == '+')
            p++;
        if (*p < '0' || *p > '9')
            digits = false;
        while (*p >= '0' && *p <= '9')
            p++;
    }
    if (digits && !*p)
        return json_real(strtod(z, NULL));
    return json_stringn(s, len);
}

static int node_to_json(struct fy_node *n, int depth, json_t **ret, struct st_err **err)
{
    if (depth > YAML_DEPTH_MAX)
        return st_err_set(err, -EINVAL, "document nests deeper than %d levels", YAML_DEPTH_MAX);
    if (!n) {
        *ret = json_null();
        return 0;
    }
    if (fy_node_is_alias(n))
        return st_err_set(err, -EINVAL, "YAML aliases are not supported");
    switch (fy_node_get_type(n)) {
    case FYNT_SCALAR: {
        size_t len = 0;
        const char *s = fy_node_get_scalar(n, &len);
        if (!s)
            s = "";
        *ret = fy_node_get_style(n) == FYNS_PLAIN ? plain_scalar(s, len) : json_stringn(s, len);
        if (!*ret) /* jansson refuses invalid UTF-8 */
            return st_err_set(err, -EINVAL, "document is not valid UTF-8");
        return 0;
    }
    case FYNT_SEQUENCE: {
        st_autoptr(json_t) arr = json_array();
        void *iter = NULL;
        struct fy_node *item;
        while ((item = fy_node_sequence_iterate(n, &iter))) {
            json_t *v = NULL;
            int r = node_to_json(item, depth + 1, &v, err);
            if (r < 0)
                return r;
            json_array_append_new(arr, v);
        }
        *ret = st_steal(&arr);
        return 0;
    }
    case FYNT_MAPPING: {
        st_autoptr(json_t) obj = json_object();
        void *iter = NULL;
        struct fy_node_pair *pair;
        while ((pair = fy_node_mapping_iterate(n, &iter))) {
            struct fy_node *k = fy_node_pair_key(pair);
            if (!k || !fy_node_is_scalar(k) || fy_node_is_alias(k))
                return st_err_set(err, -EINVAL, "mapping keys must be plain strings");
            st_autofree char *key = st_strdup(fy_node_get_scalar0(k));
            json_t *v = NULL;
            int r = node_to_json(fy_node_pair_value(pair), depth + 1, &v, err);
            if (r < 0)
                return r;
            if (json_object_set_new(obj, key, v) < 0)
                return st_err_set(err, -EINVAL, "key '%s' is not valid UTF-8", key);
        }
        *ret = st_steal(&obj);
        return 0;
    }
    }
    return st_err_set(err, -EINVAL, "unexpected YAML node");
}

static void capture_diag(struct fy_diag *diag, void *user, const char *buf, size_t len)
{
    (void)diag;
    char **msg = user;
    if (!*msg) {
        while (len && (buf[len - 1] == '\n' || buf[len - 1] == ' '))
            len--;
        *msg = st_strndup(buf, len);
    }
}

int st_resource_policy_parse_text(const char *text, size_t len, json_t **ret, struct st_err **err)
{
    if (!text || len == 0)
        return st_err_set(err, -EINVAL, "empty document");
    if (len > ST_RESOURCE_POLICY_TEXT_MAX)
        return st_err_set(err, -EFBIG, "document is larger than %d bytes",
                          ST_RESOURCE_POLICY_TEXT_MAX);
    st_autofree char *diag_msg = NULL;
    struct fy_diag_cfg dcfg;
    fy_diag_cfg_default(&dcfg);
    dcfg.fp = NULL;
    dcfg.output_fn = capture_diag;
    dcfg.user = &diag_msg;
    dcfg.colorize = false;
    struct fy_diag *diag = fy_diag_create(&dcfg);
    if (!diag)
        abort();
    struct fy_parse_cfg pcfg = {.flags = FYPCF_DEFAULT_DOC | FYPCF_QUIET, .diag = diag};
    struct fy_document *doc = fy_document_build_from_string(&pcfg, text, len);
    int r;
    if (!doc) {
        r = st_err_set(err, -EINVAL, "invalid YAML: %s", diag_msg ? diag_msg : "parse error");
    } else if (!fy_document_root(doc)) {
        r = st_err_set(err, -EINVAL, "empty document");
    } else {
        r = node_to_json(fy_document_root(doc), 0, ret, err);
    }
    fy_document_destroy(doc);
    fy_diag_destroy(diag);
    return r;
}

/* ---- the store ---- */

int st_resource_policy_check_name(const char *name, struct st_err **err)
{
    size_t len = name ? strlen(name) : 0;
    if (len == 0)
        return st_err_set(err, -EINVAL, "resource policy name must not be empty");
    if (len > ST_RESOURCE_POLICY_NAME_MAX)
        return st_err_set(err, -EINVAL, "resource policy name is longer than %d characters",
                          ST_RESOURCE_POLICY_NAME_MAX);
    for (const char *c = name; *c; c++)
        if (!((*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') || (*c >= '0' && *c <= '9') ||
              *c == '-' || *c == '_' || *c == '.'))
            return st_err_set(err, -EINVAL,
                              "resource policy name '%s' may only hold letters, digits, '.', "
                              "'_' and '-'",
                              name);
    if (strcmp(name, ".") == 0 || strcmp(name, "..") == 0)
        return st_err_set(err, -EINVAL, "resource policy name '%s' is reserved", name);
    return 0;
}

static int check_project(const char *project_id, struct st_err **err)
{
    if (!project_id || !project_id[0] || strchr(project_id, '/'))
        return st_err_set(err, -EINVAL, "a resource policy needs a project");
    return 0;
}

static char *policy_key(const char *project_id, const char *name)
{
    return st_sprintf("%s%s/%s", ST_RESOURCE_POLICIES_PREFIX, project_id, name);
}

static int read_doc(struct st_kv *kv, const char *project_id, const char *name, json_t **ret,
                    int64_t *ret_rev, struct st_err **err)
{
    st_autofree char *key = policy_key(project_id, name);
    st_autoptr(st_kv_entry) e = NULL;
    int r = st_kv_get(kv, key, &e, err);
    if (r == -ENOENT) {
        st_err_clear(err);
        return st_err_set(err, -ENOENT, "resource policy '%s' not found", name);
    }
    if (r < 0)
        return r;
    if ((r = st_json_parse_object(e->value, e->value_len, ret, err)) < 0)
        return st_err_prefix(err, r, "reading %s", key);
    if (ret_rev)
        *ret_rev = e->mod_rev;
    return 0;
}

static int count_policies(struct st_kv *kv, const char *project_id, size_t *ret,
                          struct st_err **err)
{
    st_autofree char *prefix = st_sprintf("%s%s/", ST_RESOURCE_POLICIES_PREFIX, project_id);
    st_autoptr(st_kv_list) l = NULL;
    int r = st_kv_list(kv, prefix, NULL, ST_RESOURCE_POLICY_PER_PROJECT + 1, &l, err);
    if (r < 0)
        return r;
    *ret = l->count;
    return 0;
}

int st_resource_policy_put(struct st_kv *kv, const char *project_id, const char *name,
                           json_t *resource_policy, json_t **ret_doc, bool *ret_created,
                           struct st_err **err)
{
    int r = check_project(project_id, err);
    if (r < 0 || (r = st_resource_policy_check_name(name, err)) < 0)
        return r;
    if (!resource_policy)
        return st_err_set(err, -EINVAL, "missing required field 'resourcePolicy'");
    st_autoptr(json_t) resources = NULL;
    st_autoptr(json_t) not_enforced = NULL;
    if ((r = st_resource_policy_normalize(resource_policy, &resources, &not_enforced, err)) < 0)
        return r;
    st_autofree char *key = policy_key(project_id, name);
    for (int attempt = 0; attempt < 8; attempt++) {
        st_autoptr(json_t) old = NULL;
        int64_t rev = ST_KV_ABSENT;
        r = read_doc(kv, project_id, name, &old, &rev, err);
        if (r == -ENOENT) {
            st_err_clear(err);
            size_t n = 0;
            if ((r = count_policies(kv, project_id, &n, err)) < 0)
                return r;
            if (n >= ST_RESOURCE_POLICY_PER_PROJECT)
                return st_err_set(err, -EDQUOT, "a project may hold at most %d resource policies",
                                  ST_RESOURCE_POLICY_PER_PROJECT);
        } else if (r < 0) {
            return r;
        } else if (json_equal(json_object_get(old, "resourcePolicy"), resource_policy)) {
            /* an apply of what is there already changes nothing */
            if (ret_created)
                *ret_created = false;
            if (ret_doc)
                *ret_doc = st_steal(&old);
            return 0;
        }
        char now[ST_TIME_RFC3339_LEN];
        st_time_rfc3339(st_time_now_ms() / 1000, now, sizeof(now));
        json_t *created = old ? json_object_get(old, "created_at") : NULL;
        st_autoptr(json_t) doc =
            json_pack("{s:s, s:s, s:o, s:s, s:O, s:O, s:O}", "name", name, "project_id", project_id,
                      "created_at", created ? json_incref(created) : json_string(now), "updated_at",
                      now, "resourcePolicy", resource_policy, "resources", resources,
                      "not_enforced", not_enforced);
        st_autofree char *value = st_json_dumps(doc);
        r = st_kv_put(kv, key, value, strlen(value), rev, NULL, err);
        if (r == -ECANCELED) {
            st_err_clear(err);
            continue;
        }
        if (r < 0)
            return st_err_prefix(err, r, "storing resource policy '%s'", name);
        if (ret_created)
            *ret_created = !old;
        if (ret_doc)
            *ret_doc = st_steal(&doc);
        return 0;
    }
    return st_err_set(err, -ECANCELED, "resource policy '%s' kept changing; try again", name);
}

int st_resource_policy_get(struct st_kv *kv, const char *project_id, const char *name, json_t **ret,
                           struct st_err **err)
{
    if (check_project(project_id, NULL) < 0 || st_resource_policy_check_name(name, NULL) < 0)
        return st_err_set(err, -ENOENT, "resource policy '%s' not found", name ? name : "");
    return read_doc(kv, project_id, name, ret, NULL, err);
}

int st_resource_policy_list(struct st_kv *kv, const char *project_id, json_t **ret,
                            struct st_err **err)
{
    if (project_id && check_project(project_id, NULL) < 0) {
        *ret = json_array();
        return 0;
    }
    st_autofree char *prefix = project_id
                                   ? st_sprintf("%s%s/", ST_RESOURCE_POLICIES_PREFIX, project_id)
                                   : st_strdup(ST_RESOURCE_POLICIES_PREFIX);
    st_autoptr(json_t) out = json_array();
    const char *after = NULL;
    st_autoptr(st_kv_list) l = NULL;
    for (;;) {
        st_autoptr(st_kv_list) page = NULL;
        int r = st_kv_list(kv, prefix, after, 500, &page, err);
        if (r < 0)
            return r;
        for (size_t i = 0; i < page->count; i++) {
            json_t *doc = NULL;
            if (st_json_parse_object(page->entries[i].value, page->entries[i].value_len, &doc,
                                     NULL) == 0)
                json_array_append_new(out, doc);
        }
        if (!page->more || page->count == 0)
            break;
        st_kv_list_free(l);
        l = st_steal(&page);
        after = l->entries[l->count - 1].key;
    }
    *ret = st_steal(&out);
    return 0;
}

int st_resource_policy_delete(struct st_kv *kv, const char *project_id, const char *name,
                              struct st_err **err)
{
    if (check_project(project_id, NULL) < 0 || st_resource_policy_check_name(name, NULL) < 0)
        return st_err_set(err, -ENOENT, "resource policy '%s' not found", name ? name : "");
    st_autofree char *key = policy_key(project_id, name);
    int r = st_kv_delete(kv, key, ST_KV_ANY, NULL, err);
    if (r == -ENOENT) {
        st_err_clear(err);
        return st_err_set(err, -ENOENT, "resource policy '%s' not found", name);
    }
    return r;
}
