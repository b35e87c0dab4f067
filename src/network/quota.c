/* Neutron's quotas: the limits per project, the usage documents that creates
 * claim in with compare-and-swap, and the recount that corrects them from
 * the real resources when a create would be refused. See quota.h for why
 * usage is kept as one entry per resource. */
#include "network/quota.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "lib/cleanup.h"
#include "lib/json.h"
#include "lib/log.h"
#include "lib/times.h"
#include "lib/uuid.h"
#include "network/l3-priv.h"
#include "network/model.h"
#include "network/network-priv.h"
#include "store/kv.h"

/* A usage entry without its resource is taken for a create in flight for
 * this long before it counts as the leftover of a crash. */
#define USAGE_GRACE_MS 30000
#define CAS_ATTEMPTS   1000

static const struct {
    const char *name;
    int64_t def;
    const char *prefix; /* where the resources are kept (NULL: not counted) */
} resources[ST_NETWORK_QUOTA_N] = {
    [ST_NETWORK_QUOTA_NETWORK] = {"network", 100, ST_NETWORK_NETWORKS_PREFIX},
    [ST_NETWORK_QUOTA_SUBNET] = {"subnet", 100, ST_NETWORK_SUBNETS_PREFIX},
    [ST_NETWORK_QUOTA_PORT] = {"port", 500, ST_NETWORK_PORTS_PREFIX},
    [ST_NETWORK_QUOTA_ROUTER] = {"router", 10, ST_NETWORK_ROUTERS_PREFIX},
    [ST_NETWORK_QUOTA_FLOATINGIP] = {"floatingip", 50, ST_NETWORK_FIPS_PREFIX},
    [ST_NETWORK_QUOTA_SECURITY_GROUP] = {"security_group", 10, ST_NETWORK_SGS_PREFIX},
    /* rules are counted through their groups (l3_sg_rule_ids) */
    [ST_NETWORK_QUOTA_SECURITY_GROUP_RULE] = {"security_group_rule", 100, ST_NETWORK_SGS_PREFIX},
    [ST_NETWORK_QUOTA_SUBNETPOOL] = {"subnetpool", -1, NULL},
    [ST_NETWORK_QUOTA_RBAC_POLICY] = {"rbac_policy", 10, NULL},
};

/* Neutron's DB_INTEGER_MAX_VALUE: the largest limit it stores. */
#define LIMIT_MAX 2147483647LL

const char *st_network_quota_name(enum st_network_quota_resource res)
{
    return res < ST_NETWORK_QUOTA_N ? resources[res].name : NULL;
}

void st_network_quota_defaults(struct st_network_quota *ret)
{
    for (size_t i = 0; i < ST_NETWORK_QUOTA_N; i++)
        ret->limit[i] = resources[i].def;
}

/* Project ids become part of keys: nothing that could reach another key. */
static int check_project(const char *project_id, struct st_err **err)
{
    size_t n = project_id ? strlen(project_id) : 0;
    if (n == 0 || n > 64)
        return st_err_set(err, -EINVAL, "Invalid project id '%s'.", project_id ? project_id : "");
    for (size_t i = 0; i < n; i++) {
        char c = project_id[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '-' || c == '_'))
            return st_err_set(err, -EINVAL, "Invalid project id '%s'.", project_id);
    }
    return 0;
}

/* Reads a JSON object; *ret NULL and *ret_rev ST_KV_ABSENT when absent. */
static int read_doc(struct st_kv *kv, const char *key, json_t **ret, int64_t *ret_rev,
                    struct st_err **err)
{
    st_autoptr(st_kv_entry) e = NULL;
    struct st_err *kerr = NULL;
    int r = st_kv_get(kv, key, &e, &kerr);
    if (r == -ENOENT) {
        st_err_free(kerr);
        *ret = NULL;
        *ret_rev = ST_KV_ABSENT;
        return 0;
    }
    if (r < 0) {
        if (err && !*err)
            *err = kerr;
        else
            st_err_free(kerr);
        return st_err_prefix(err, r, "reading %s", key);
    }
    if ((r = st_json_parse_object(e->value, e->value_len, ret, err)) < 0)
        return st_err_prefix(err, r, "reading %s", key);
    *ret_rev = e->mod_rev;
    return 0;
}

/* Writes with compare-and-swap on rev; -ECANCELED (err untouched) when
 * another writer got in first. */
static int write_doc(struct st_kv *kv, const char *key, json_t *doc, int64_t rev,
                     struct st_err **err)
{
    st_autofree char *text = st_json_dumps(doc);
    struct st_err *kerr = NULL;
    int r = st_kv_put(kv, key, text, strlen(text), rev, NULL, &kerr);
    if (r == -ECANCELED || r == 0) {
        st_err_free(kerr);
        return r;
    }
    if (err && !*err)
        *err = kerr;
    else
        st_err_free(kerr);
    return st_err_prefix(err, r, "writing %s", key);
}

static void apply_limits(json_t *doc, struct st_network_quota *q)
{
    st_network_quota_defaults(q);
    for (size_t i = 0; doc && i < ST_NETWORK_QUOTA_N; i++) {
        json_t *v = json_object_get(doc, resources[i].name);
        if (json_is_integer(v))
            q->limit[i] = json_integer_value(v);
    }
}

static char *limits_key(const char *project_id)
{
    return st_sprintf("%s%s", ST_NETWORK_QUOTAS_PREFIX, project_id);
}

static char *usage_key(const char *project_id, enum st_network_quota_resource res)
{
    return st_sprintf("%s%s/%s", ST_NETWORK_QUOTA_USAGE_PREFIX, project_id, resources[res].name);
}

int st_network_quota_get(struct st_kv *kv, const char *project_id, struct st_network_quota *ret,
                         struct st_err **err)
{
    int r = check_project(project_id, err);
    if (r < 0)
        return r;
    st_autofree char *key = limits_key(project_id);
    st_autoptr(json_t) doc = NULL;
    int64_t rev;
    if ((r = read_doc(kv, key, &doc, &rev, err)) < 0)
        return r;
    apply_limits(doc, ret);
    return 0;
}

/* ---- counting ---- */

static const char *str(json_t *doc, const char *key)
{
    return json_string_value(json_object_get(doc, key));
}

/* The ids of the project's resources of kind res that exist now: {"<id>":
 * true} (new reference). */
static int real_ids(struct st_kv *kv, const char *project_id, enum st_network_quota_resource res,
                    json_t **ret, struct st_err **err)
{
    st_autoptr(json_t) all = NULL;
    int r = res == ST_NETWORK_QUOTA_SECURITY_GROUP_RULE
                ? l3_sg_rule_ids(kv, project_id, ret, err)
                : net_doc_list(kv, resources[res].prefix, &all, err);
    if (r < 0)
        return st_err_prefix(err, r, "counting %ss of project %s", resources[res].name, project_id);
    if (res == ST_NETWORK_QUOTA_SECURITY_GROUP_RULE)
        return 0;
    json_t *ids = json_object();
    size_t i;
    json_t *doc;
    json_array_foreach(all, i, doc)
    {
        if (strcmp(str(doc, "project_id") ?: "", project_id) == 0 && str(doc, "id"))
            json_object_set_new(ids, str(doc, "id"), json_true());
    }
    *ret = ids;
    return 0;
}

/* Brings usage in line with real (the resources that exist): drops entries
 * without a resource that are older than the grace period, adopts
 * resources without an entry (stamped 0, so that a later recount may drop
 * them again). Returns how many entries changed. */
static size_t recount(json_t *usage, json_t *real, const char *project_id,
                      enum st_network_quota_resource res)
{
    int64_t now = st_time_now_ms();
    size_t dropped = 0, adopted = 0;
    const char *id;
    json_t *at, *tmp;
    json_object_foreach_safe(usage, tmp, id, at)
    {
        if (!json_object_get(real, id) && now - json_integer_value(at) > USAGE_GRACE_MS) {
            json_object_del(usage, id);
            dropped++;
        }
    }
    json_t *v;
    json_object_foreach(real, id, v)
    {
        if (!json_object_get(usage, id)) {
            json_object_set_new(usage, id, json_integer(0));
            adopted++;
        }
    }
    if (dropped || adopted)
        st_log_info("network_quota_recounted", "project=%s resource=%s dropped=%zu adopted=%zu",
                    project_id, resources[res].name, dropped, adopted);
    return dropped + adopted;
}

/* A short random pause between CAS attempts, so that many creates in one
 * project do not retry in lock step. */
static void backoff(int attempt)
{
    if (attempt < 2)
        return;
    unsigned char b;
    st_random_bytes(&b, 1);
    int cap_us = attempt < 10 ? 200 * attempt : 2000;
    struct timespec ts = {0, (long)(b % (cap_us + 1)) * 1000};
    nanosleep(&ts, NULL);
}

static int check_resource(enum st_network_quota_resource res, struct st_err **err)
{
    if (res >= ST_NETWORK_QUOTA_N_COUNTED)
        return st_err_set(err, -EINVAL, "%s is not counted", st_network_quota_name(res) ?: "?");
    return 0;
}

/* Adds ids to the project's usage of res; with check, only within limit. */
static int add_ids(struct st_kv *kv, const char *project_id, enum st_network_quota_resource res,
                   const char *const *ids, size_t n, bool check, struct st_err **err)
{
    if (!project_id || !*project_id || n == 0)
        return 0;
    int r;
    if ((r = check_project(project_id, err)) < 0 || (r = check_resource(res, err)) < 0)
        return r;
    int64_t limit = -1;
    if (check) {
        struct st_network_quota q;
        if ((r = st_network_quota_get(kv, project_id, &q, err)) < 0)
            return r;
        limit = q.limit[res];
    }
    st_autofree char *key = usage_key(project_id, res);
    for (int attempt = 0; attempt < CAS_ATTEMPTS; attempt++) {
        backoff(attempt);
        st_autoptr(json_t) usage = NULL;
        st_autoptr(json_t) real = NULL;
        int64_t rev;
        if ((r = read_doc(kv, key, &usage, &rev, err)) < 0)
            return r;
        if (!usage) {
            /* The first claim: count what the project has already. */
            if ((r = real_ids(kv, project_id, res, &real, err)) < 0)
                return r;
            usage = json_object();
            recount(usage, real, project_id, res);
        }
        size_t fresh = 0;
        for (size_t i = 0; i < n; i++)
            fresh += json_object_get(usage, ids[i]) ? 0 : 1;
        if (fresh == 0)
            return 0;
        if (limit >= 0 && (int64_t)(json_object_size(usage) + fresh) > limit) {
            /* Read after the usage, so that a resource deleted in between is
             * either still counted or already released. */
            if (!real && (r = real_ids(kv, project_id, res, &real, err)) < 0)
                return r;
            size_t changed = recount(usage, real, project_id, res);
            if ((int64_t)(json_object_size(usage) + fresh) > limit) {
                if (changed) /* keep the correction; a lost race loses nothing */
                    write_doc(kv, key, usage, rev, NULL);
                return st_err_set(err, -EDQUOT, "Quota exceeded for resources: ['%s'].",
                                  resources[res].name);
            }
        }
        int64_t now = st_time_now_ms();
        for (size_t i = 0; i < n; i++)
            if (!json_object_get(usage, ids[i]))
                json_object_set_new(usage, ids[i], json_integer(now));
        r = write_doc(kv, key, usage, rev, err);
        if (r != -ECANCELED)
            return r;
    }
    return st_err_set(err, -EAGAIN, "the %s usage of project %s is contended; try again",
                      resources[res].name, project_id);
}

int st_network_quota_claim(struct st_kv *kv, const char *project_id,
                           enum st_network_quota_resource res, const char *id, struct st_err **err)
{
    const char *ids[] = {id};
    return add_ids(kv, project_id, res, ids, id ? 1 : 0, true, err);
}

int st_network_quota_charge(struct st_kv *kv, const char *project_id,
                            enum st_network_quota_resource res, const char *const *ids, size_t n,
                            struct st_err **err)
{
    return add_ids(kv, project_id, res, ids, n, false, err);
}

static int remove_ids(struct st_kv *kv, const char *project_id, enum st_network_quota_resource res,
                      const char *const *ids, size_t n, struct st_err **err)
{
    int r;
    if ((r = check_project(project_id, err)) < 0 || (r = check_resource(res, err)) < 0)
        return r;
    st_autofree char *key = usage_key(project_id, res);
    for (int attempt = 0; attempt < CAS_ATTEMPTS; attempt++) {
        backoff(attempt);
        st_autoptr(json_t) usage = NULL;
        int64_t rev;
        if ((r = read_doc(kv, key, &usage, &rev, err)) < 0)
            return r;
        size_t gone = 0;
        for (size_t i = 0; usage && i < n; i++)
            gone += json_object_del(usage, ids[i]) == 0 ? 1 : 0;
        if (gone == 0)
            return 0;
        r = write_doc(kv, key, usage, rev, err);
        if (r != -ECANCELED)
            return r;
    }
    return st_err_set(err, -EAGAIN, "the %s usage of project %s is contended", resources[res].name,
                      project_id);
}

int st_network_quota_release(struct st_kv *kv, const char *project_id,
                             enum st_network_quota_resource res, const char *const *ids, size_t n,
                             struct st_err **err)
{
    if (!project_id || !*project_id || n == 0)
        return 0;
    st_autoptr(st_err) lerr = NULL;
    int r = remove_ids(kv, project_id, res, ids, n, &lerr);
    if (r == 0)
        return 0;
    st_log_warn("network_quota_release_failed", "project=%s resource=%s error=\"%s\"", project_id,
                st_network_quota_name(res) ?: "?", st_err_msg(lerr));
    return st_err_set(err, r, "%s", st_err_msg(lerr));
}

void st_network_quota_release_one(struct st_kv *kv, const char *project_id,
                                  enum st_network_quota_resource res, const char *id)
{
    const char *ids[] = {id};
    st_network_quota_release(kv, project_id, res, ids, id ? 1 : 0, NULL);
}

/* The usage of one resource, corrected by a recount that is kept. */
static int usage_of(struct st_kv *kv, const char *project_id, enum st_network_quota_resource res,
                    int64_t *ret_used, int64_t *ret_reserved, struct st_err **err)
{
    st_autofree char *key = usage_key(project_id, res);
    for (int attempt = 0; attempt < CAS_ATTEMPTS; attempt++) {
        backoff(attempt);
        st_autoptr(json_t) usage = NULL;
        st_autoptr(json_t) real = NULL;
        int64_t rev;
        int r;
        if ((r = read_doc(kv, key, &usage, &rev, err)) < 0 ||
            (r = real_ids(kv, project_id, res, &real, err)) < 0)
            return r;
        /* No document yet: nothing claimed, nothing to correct. */
        if (usage && recount(usage, real, project_id, res) > 0) {
            r = write_doc(kv, key, usage, rev, err);
            if (r == -ECANCELED)
                continue;
            if (r < 0)
                return r;
        }
        /* after the recount every real resource has its entry */
        *ret_used = (int64_t)json_object_size(real);
        *ret_reserved = usage ? (int64_t)(json_object_size(usage) - json_object_size(real)) : 0;
        return 0;
    }
    return st_err_set(err, -EAGAIN, "the %s usage of project %s is contended; try again",
                      resources[res].name, project_id);
}

int st_network_quota_usage(struct st_kv *kv, const char *project_id,
                           struct st_network_quota_usage *ret, struct st_err **err)
{
    int r = check_project(project_id, err);
    if (r < 0)
        return r;
    *ret = (struct st_network_quota_usage){0};
    for (size_t i = 0; i < ST_NETWORK_QUOTA_N_COUNTED; i++)
        if ((r = usage_of(kv, project_id, i, &ret->used[i], &ret->reserved[i], err)) < 0)
            return r;
    return 0;
}

/* ---- limits ---- */

static int parse_bool(json_t *v, const char *key, bool *ret, struct st_err **err)
{
    if (json_is_boolean(v)) {
        *ret = json_is_true(v);
        return 0;
    }
    const char *s = json_string_value(v);
    if (s && (strcmp(s, "true") == 0 || strcmp(s, "True") == 0 || strcmp(s, "false") == 0 ||
              strcmp(s, "False") == 0)) {
        *ret = s[0] == 't' || s[0] == 'T';
        return 0;
    }
    return st_err_set(err, -EINVAL, "Invalid input for %s. Reason: '%s' is not a valid boolean.",
                      key, s ? s : "value");
}

/* Neutron's convert_to_int and its range check. */
static int parse_limit(const char *key, json_t *v, int64_t *ret, struct st_err **err)
{
    if (json_is_integer(v)) {
        *ret = json_integer_value(v);
    } else if (json_is_string(v)) {
        const char *s = json_string_value(v);
        char *end = NULL;
        errno = 0;
        long long n = strtoll(s, &end, 10);
        if (!s[0] || *end || errno)
            return st_err_set(err, -EINVAL, "Invalid input for operation: '%s' is not an integer.",
                              s);
        *ret = n;
    } else {
        st_autofree char *text = json_dumps(v, JSON_ENCODE_ANY);
        return st_err_set(err, -EINVAL, "Invalid input for operation: '%s' is not an integer.",
                          text ? text : "?");
    }
    if (*ret < -1 || *ret > LIMIT_MAX)
        return st_err_set(err, -EINVAL,
                          "Invalid input for %s. Reason: '%lld' is not in range -1 through %lld.",
                          key, (long long)*ret, LIMIT_MAX);
    return 0;
}

static int find_resource(const char *name)
{
    for (int i = 0; i < ST_NETWORK_QUOTA_N; i++)
        if (strcmp(resources[i].name, name) == 0)
            return i;
    return -1;
}

int st_network_quota_set(struct st_kv *kv, const char *project_id, json_t *changes,
                         struct st_network_quota *ret, struct st_err **err)
{
    int r = check_project(project_id, err);
    if (r < 0)
        return r;
    if (!json_is_object(changes))
        return st_err_set(err, -EINVAL, "Unable to find 'quota' in request body");
    /* everything is checked before anything is written */
    int64_t wanted[ST_NETWORK_QUOTA_N];
    bool given[ST_NETWORK_QUOTA_N] = {false};
    bool check_limit = false, force = false;
    char unknown[256] = "";
    size_t off = 0;
    const char *k;
    json_t *v;
    json_object_foreach(changes, k, v)
    {
        if (strcmp(k, "check_limit") == 0 || strcmp(k, "force") == 0) {
            if ((r = parse_bool(v, k, k[0] == 'c' ? &check_limit : &force, err)) < 0)
                return r;
            continue;
        }
        int i = find_resource(k);
        if (i < 0) {
            int n = snprintf(unknown + off, sizeof(unknown) - off, "%s%s", off ? ", " : "", k);
            if (n > 0)
                off = off + (size_t)n < sizeof(unknown) ? off + (size_t)n : sizeof(unknown) - 1;
            continue;
        }
        if ((r = parse_limit(k, v, &wanted[i], err)) < 0)
            return r;
        given[i] = true;
    }
    if (off)
        return st_err_set(err, -EINVAL, "Unrecognized attribute(s) '%s'", unknown);
    if (check_limit && !force) {
        struct st_network_quota_usage u;
        if ((r = st_network_quota_usage(kv, project_id, &u, err)) < 0)
            return r;
        for (size_t i = 0; i < ST_NETWORK_QUOTA_N_COUNTED; i++) {
            int64_t used = u.used[i] + u.reserved[i];
            if (given[i] && wanted[i] >= 0 && wanted[i] < used)
                return st_err_set(err, -EINVAL,
                                  "Quota limit %lld for %s must be greater than or equal to "
                                  "already used %lld",
                                  (long long)wanted[i], resources[i].name, (long long)used);
        }
    }
    st_autofree char *key = limits_key(project_id);
    for (int attempt = 0; attempt < CAS_ATTEMPTS; attempt++) {
        backoff(attempt);
        st_autoptr(json_t) doc = NULL;
        int64_t rev;
        if ((r = read_doc(kv, key, &doc, &rev, err)) < 0)
            return r;
        if (!doc)
            doc = json_object();
        for (size_t i = 0; i < ST_NETWORK_QUOTA_N; i++)
            if (given[i])
                json_object_set_new(doc, resources[i].name, json_integer(wanted[i]));
        r = write_doc(kv, key, doc, rev, err);
        if (r == -ECANCELED)
            continue;
        if (r < 0)
            return r;
        st_log_info("network_quota_set", "project=%s", project_id);
        apply_limits(doc, ret);
        return 0;
    }
    return st_err_set(err, -EAGAIN, "the quota of project %s is changing too often; try again",
                      project_id);
}

int st_network_quota_reset(struct st_kv *kv, const char *project_id, struct st_err **err)
{
    int r = check_project(project_id, err);
    if (r < 0)
        return r;
    st_autofree char *key = limits_key(project_id);
    struct st_err *kerr = NULL;
    r = st_kv_delete(kv, key, ST_KV_ANY, NULL, &kerr);
    if (r == -ENOENT || r == 0) {
        st_err_free(kerr);
        if (r == 0)
            st_log_info("network_quota_reset", "project=%s", project_id);
        return 0;
    }
    if (err && !*err)
        *err = kerr;
    else
        st_err_free(kerr);
    return st_err_prefix(err, r, "deleting %s", key);
}

int st_network_quota_list(struct st_kv *kv, json_t **ret, struct st_err **err)
{
    st_autoptr(json_t) rows = json_array();
    st_autofree char *after = NULL;
    size_t plen = strlen(ST_NETWORK_QUOTAS_PREFIX);
    for (;;) {
        st_autoptr(st_kv_list) l = NULL;
        int r = st_kv_list(kv, ST_NETWORK_QUOTAS_PREFIX, after, 1000, &l, err);
        if (r < 0)
            return st_err_prefix(err, r, "listing %s", ST_NETWORK_QUOTAS_PREFIX);
        for (size_t i = 0; i < l->count; i++) {
            st_autoptr(json_t) doc = NULL;
            if (st_json_parse_object(l->entries[i].value, l->entries[i].value_len, &doc, NULL) < 0)
                continue;
            const char *project = l->entries[i].key + plen;
            struct st_network_quota q;
            apply_limits(doc, &q);
            json_t *row = json_pack("{s:s, s:s}", "project_id", project, "tenant_id", project);
            for (size_t k = 0; k < ST_NETWORK_QUOTA_N; k++)
                json_object_set_new(row, resources[k].name, json_integer(q.limit[k]));
            json_array_append_new(rows, row);
        }
        if (!l->more || l->count == 0)
            break;
        free(after);
        after = st_strdup(l->entries[l->count - 1].key);
    }
    *ret = st_steal(&rows);
    return 0;
}
