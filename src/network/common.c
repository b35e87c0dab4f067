/* What every file of the network service shares: Neutron's common document
 * fields, reading and writing documents with compare-and-swap, who sees
 * what (project scoping, shared and external networks), Neutron's equality
 * filters, the API shape of a document, the API's get, list and
 * read-modify-write update of one, and IPv4 text <-> number. Kept in one
 * place so that networks, subnets, ports, groups and routers answer
 * alike. */
#include "network/network-priv.h"

#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "lib/cleanup.h"
#include "lib/json.h"
#include "lib/log.h"
#include "lib/times.h"
#include "lib/uuid.h"
#include "store/kv.h"

static void now_rfc3339(char buf[ST_TIME_RFC3339_LEN])
{
    st_time_rfc3339(time(NULL), buf, ST_TIME_RFC3339_LEN);
}

json_t *net_doc_new(const char *project_id, const char *name)
{
    char id[ST_UUID_LEN], now[ST_TIME_RFC3339_LEN];
    st_uuid_new(id);
    now_rfc3339(now);
    return json_pack("{s:s, s:s, s:s, s:s, s:[], s:s, s:s, s:i}", "id", id, "name",
                     name ? name : "", "project_id", project_id ? project_id : "", "description",
                     "", "tags", "created_at", now, "updated_at", now, "revision_number", 0);
}

int net_doc_get(struct st_kv *kv, const char *prefix, const char *id, json_t **ret,
                int64_t *ret_rev, struct st_err **err)
{
    /* A name where an id belongs (the CLI's lookups try the name first) or a
     * path-like string is simply not found, never a different key. */
    if (!id || !*id || strchr(id, '/'))
        return -ENOENT;
    st_autofree char *key = st_sprintf("%s%s", prefix, id);
    if (strlen(key) > ST_KV_KEY_MAX)
        return -ENOENT;
    st_autoptr(st_kv_entry) e = NULL;
    struct st_err *kerr = NULL;
    int r = st_kv_get(kv, key, &e, &kerr);
    if (r == -ENOENT) {
        st_err_free(kerr);
        return -ENOENT;
    }
    if (r < 0) {
        if (err && !*err)
            *err = kerr;
        else
            st_err_free(kerr);
        return st_err_prefix(err, r, "reading %s", key);
    }
    json_t *doc = NULL;
    if ((r = st_json_parse_object(e->value, e->value_len, &doc, err)) < 0)
        return st_err_prefix(err, r, "reading %s", key);
    *ret = doc;
    if (ret_rev)
        *ret_rev = e->mod_rev;
    return 0;
}

int net_doc_put(struct st_kv *kv, const char *prefix, json_t *doc, int64_t expected_rev,
                struct st_err **err)
{
    const char *id = json_string_value(json_object_get(doc, "id"));
    if (!id)
        return st_err_set(err, -EINVAL, "document under %s has no id", prefix);
    if (expected_rev != ST_KV_ABSENT) {
        char now[ST_TIME_RFC3339_LEN];
        now_rfc3339(now);
        json_int_t rev = json_integer_value(json_object_get(doc, "revision_number"));
        json_object_set_new(doc, "revision_number", json_integer(rev + 1));
        json_object_set_new(doc, "updated_at", json_string(now));
    }
    st_autofree char *key = st_sprintf("%s%s", prefix, id);
    st_autofree char *text = st_json_dumps(doc);
    int r = st_kv_put(kv, key, text, strlen(text), expected_rev, NULL, err);
    if (r == -ECANCELED)
        return st_err_prefix(err, r, "%s changed while it was being written", key);
    if (r < 0)
        return st_err_prefix(err, r, "writing %s", key);
    return 0;
}

int net_doc_list(struct st_kv *kv, const char *prefix, json_t **ret, struct st_err **err)
{
    st_autoptr(json_t) out = json_array();
    st_autofree char *after = NULL;
    for (;;) {
        st_autoptr(st_kv_list) l = NULL;
        int r = st_kv_list(kv, prefix, after, 1000, &l, err);
        if (r < 0)
            return st_err_prefix(err, r, "listing %s", prefix);
        for (size_t i = 0; i < l->count; i++) {
            json_t *doc = NULL;
            struct st_err *perr = NULL;
            if (st_json_parse_object(l->entries[i].value, l->entries[i].value_len, &doc, &perr) <
                0) {
                /* One damaged document must not hide every other one. */
                st_log_warn("network_bad_document", "key=%s error=\"%s\"", l->entries[i].key,
                            st_err_msg(perr));
                st_err_free(perr);
                continue;
            }
            json_array_append_new(out, doc);
        }
        if (!l->more || l->count == 0)
            break;
        free(after);
        after = st_strdup(l->entries[l->count - 1].key);
    }
    *ret = st_steal(&out);
    return 0;
}

int net_doc_get_visible(struct st_kv *kv, const struct st_network_caller *who, const char *prefix,
                        const char *id, json_t **ret, int64_t *ret_rev, struct st_err **err)
{
    st_autoptr(json_t) doc = NULL;
    int r = net_doc_get(kv, prefix, id, &doc, ret_rev, err);
    if (r == 0 && !net_visible(who, doc))
        return -ENOENT;
    if (r < 0)
        return r;
    *ret = st_steal(&doc);
    return 0;
}

int net_doc_list_visible(struct st_kv *kv, const struct st_network_caller *who, const char *prefix,
                         json_t *filters, json_t **ret, struct st_err **err)
{
    st_autoptr(json_t) all = NULL;
    int r = net_doc_list(kv, prefix, &all, err);
    if (r < 0)
        return r;
    json_t *out = json_array();
    size_t i;
    json_t *doc;
    json_array_foreach(all, i, doc)
    {
        if (net_list_visible(who, doc) && net_filter_match(doc, filters))
            json_array_append_new(out, net_public(doc));
    }
    *ret = out;
    return 0;
}

int net_doc_show(struct st_kv *kv, const struct st_network_caller *who,
                 const struct net_doc_kind *kind, const char *id, json_t **ret, struct st_err **err)
{
    st_autoptr(json_t) doc = NULL;
    int r = kind->read(kv, who, id, &doc, NULL, err);
    if (r < 0)
        return r;
    *ret = net_public(doc);
    return 0;
}

int net_doc_update(struct st_kv *kv, const struct st_network_caller *who,
                   const struct net_doc_kind *kind, const char *id, json_t *req,
                   net_doc_edit_fn *edit, json_t **ret, struct st_err **err)
{
    for (int attempt = 0; attempt < kind->attempts; attempt++) {
        st_autoptr(json_t) doc = NULL;
        int64_t rev = 0;
        int r;
        if ((r = kind->read(kv, who, id, &doc, &rev, err)) < 0 ||
            (r = edit(kv, who, doc, req, err)) < 0)
            return r;
        r = net_doc_put(kv, kind->prefix, doc, rev, err);
        if (r == -ECANCELED) {
            st_err_clear(err);
            continue;
        }
        if (r < 0)
            return r;
        if (ret)
            *ret = st_steal(&doc);
        return 0;
    }
    return st_err_set(err, kind->busy, "%s %s kept changing; try again", kind->noun, id);
}

static bool is_true(json_t *doc, const char *key)
{
    return json_is_true(json_object_get(doc, key));
}

static bool same_project(const struct st_network_caller *who, json_t *doc)
{
    const char *p = json_string_value(json_object_get(doc, "project_id"));
    return p && who->project_id && strcmp(p, who->project_id) == 0;
}

bool net_visible(const struct st_network_caller *who, json_t *doc)
{
    return who->is_admin || same_project(who, doc) || is_true(doc, "shared") ||
           is_true(doc, "router:external");
}

bool net_list_visible(const struct st_network_caller *who, json_t *doc)
{
    return same_project(who, doc) || is_true(doc, "shared") || is_true(doc, "router:external");
}

/* The query-string form of a JSON scalar: strings as they are, booleans as
 * "true"/"false", numbers in decimal, null as "" (Neutron matches "" too). */
static char *scalar_text(json_t *v)
{
    switch (json_typeof(v)) {
    case JSON_STRING:
        return st_strdup(json_string_value(v));
    case JSON_TRUE:
        return st_strdup("true");
    case JSON_FALSE:
        return st_strdup("false");
    case JSON_INTEGER:
        return st_sprintf("%" JSON_INTEGER_FORMAT, json_integer_value(v));
    case JSON_REAL:
        return st_sprintf("%g", json_real_value(v));
    case JSON_NULL:
        return st_strdup("");
    default:
        return NULL;
    }
}

/* One wanted value against one document value. Array values (subnets,
 * security_groups, tags) match when any element does; a list of objects
 * (fixed_ips) takes "key=value" as Neutron's fixed_ips=ip_address=X does. */
static bool value_matches(json_t *have, const char *want)
{
    if (json_is_array(have)) {
        size_t i;
        json_t *el;
        const char *eq = strchr(want, '=');
        json_array_foreach(have, i, el)
        {
            if (json_is_object(el) && eq) {
                st_autofree char *k = st_strndup(want, (size_t)(eq - want));
                st_autofree char *t = scalar_text(json_object_get(el, k));
                if (t && strcmp(t, eq + 1) == 0)
                    return true;
            } else if (value_matches(el, want)) {
                return true;
            }
        }
        return false;
    }
    st_autofree char *t = scalar_text(have);
    /* The SDK sends Python's spelling of booleans ("True"). */
    if (json_is_boolean(have))
        return strcasecmp(t, want) == 0;
    return t && strcmp(t, want) == 0;
}

static bool want_matches(json_t *have, json_t *want)
{
    if (json_is_array(want)) {
        size_t i;
        json_t *w;
        json_array_foreach(want, i, w) if (want_matches(have, w)) return true;
        return json_array_size(want) == 0;
    }
    st_autofree char *t = scalar_text(want);
    return t && value_matches(have, t);
}

bool net_filter_match(json_t *doc, json_t *filters)
{
    static const char *const not_filters[] = {"fields",   "limit",    "marker",
                                              "sort_key", "sort_dir", "page_reverse"};
    if (!json_is_object(filters))
        return true;
    const char *key;
    json_t *want;
    json_object_foreach(filters, key, want)
    {
        bool skip = false;
        for (size_t i = 0; i < ST_ARRAY_SIZE(not_filters); i++)
            skip = skip || strcmp(key, not_filters[i]) == 0;
        if (skip)
            continue;
        json_t *have = json_object_get(doc, strcmp(key, "tenant_id") == 0 ? "project_id" : key);
        if (!have)
            continue; /* unknown attribute: ignored, as Neutron does */
        if (!want_matches(have, want))
            return false;
    }
    return true;
}

json_t *net_public(json_t *doc)
{
    json_t *out = json_deep_copy(doc);
    /* Keys starting with '_' are the service's own bookkeeping (a delete in
     * progress, a port the user brought to a server): never shown. */
    const char *key;
    json_t *v;
    void *tmp;
    json_object_foreach_safe(out, tmp, key, v) if (key[0] == '_') json_object_del(out, key);
    json_t *project = json_object_get(out, "project_id");
    if (project)
        json_object_set(out, "tenant_id", project);
    return out;
}

int net_ip_parse(const char *ip, uint32_t *ret_addr)
{
    struct in_addr a;
    /* inet_pton takes exactly four decimal parts, unlike inet_aton's
     * "10.1" and octal forms, which Neutron refuses too. */
    if (!ip || strlen(ip) > 15 || inet_pton(AF_INET, ip, &a) != 1)
        return -EINVAL;
    *ret_addr = ntohl(a.s_addr);
    return 0;
}

int net_cidr_parse(const char *cidr, uint32_t *ret_addr, int *ret_prefixlen)
{
    if (!cidr)
        return -EINVAL;
    const char *slash = strchr(cidr, '/');
    if (!slash || slash == cidr || (size_t)(slash - cidr) > 15)
        return -EINVAL;
    char ip[16];
    memcpy(ip, cidr, (size_t)(slash - cidr));
    ip[slash - cidr] = '\0';
    const char *p = slash + 1;
    size_t n = strlen(p);
    if (n == 0 || n > 2 || (n == 2 && p[0] == '0'))
        return -EINVAL;
    int len = 0;
    for (; *p; p++) {
        if (*p < '0' || *p > '9')
            return -EINVAL;
        len = len * 10 + (*p - '0');
    }
    if (len > 32)
        return -EINVAL;
    uint32_t addr;
    if (net_ip_parse(ip, &addr) < 0)
        return -EINVAL;
    *ret_addr = addr;
    *ret_prefixlen = len;
    return 0;
}

void net_ip_format(uint32_t addr, char buf[16])
{
    snprintf(buf, 16, "%u.%u.%u.%u", addr >> 24, (addr >> 16) & 0xff, (addr >> 8) & 0xff,
             addr & 0xff);
}
