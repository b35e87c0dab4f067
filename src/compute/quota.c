/* Compute quotas and the per-project usage document; see quota.h. */
#include "quota.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "compute/model.h"
#include "lib/cleanup.h"
#include "lib/json.h"
#include "lib/log.h"
#include "lib/times.h"
#include "lib/uuid.h"
#include "store/kv.h"

/* A usage entry without its server is assumed to be a create in flight for
 * this long before it counts as the leftover of a crash. */
#define USAGE_GRACE_MS 30000
#define CAS_ATTEMPTS   10000

static const struct {
    const char *name;
    int64_t def;
} quota_keys[ST_QUOTA_N_KEYS] = {
    [ST_QUOTA_INSTANCES] = {"instances", 10},
    [ST_QUOTA_CORES] = {"cores", 20},
    [ST_QUOTA_RAM] = {"ram", 51200},
    [ST_QUOTA_KEY_PAIRS] = {"key_pairs", 100},
    [ST_QUOTA_METADATA_ITEMS] = {"metadata_items", 128},
    [ST_QUOTA_SERVER_GROUPS] = {"server_groups", 10},
    [ST_QUOTA_SERVER_GROUP_MEMBERS] = {"server_group_members", 10},
    [ST_QUOTA_INJECTED_FILES] = {"injected_files", 5},
    [ST_QUOTA_INJECTED_FILE_CONTENT_BYTES] = {"injected_file_content_bytes", 10240},
    [ST_QUOTA_INJECTED_FILE_PATH_BYTES] = {"injected_file_path_bytes", 255},
};

/* Network quotas that Nova 2.1 still accepts but Neutron owns: accepted and
 * ignored, as Nova's nova-network-less deployments do. */
static const char *const ignored_keys[] = {"fixed_ips", "floating_ips", "security_groups",
                                           "security_group_rules"};

const char *st_compute_quota_key_name(enum st_compute_quota_key k)
{
    return k < ST_QUOTA_N_KEYS ? quota_keys[k].name : NULL;
}

void st_compute_quota_defaults(struct st_compute_quota *ret)
{
    for (size_t i = 0; i < ST_QUOTA_N_KEYS; i++)
        ret->limit[i] = quota_keys[i].def;
}

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

/* Reads a document; *ret NULL and *ret_rev ST_KV_ABSENT when the key is absent. */
static int read_doc(struct st_kv *kv, const char *key, json_t **ret, int64_t *ret_rev,
                    struct st_err **err)
{
    st_autoptr(st_kv_entry) e = NULL;
    int r = st_kv_get(kv, key, &e, err);
    if (r == -ENOENT) {
        st_err_clear(err);
        *ret = NULL;
        *ret_rev = ST_KV_ABSENT;
        return 0;
    }
    if (r < 0)
        return r;
    r = st_json_parse_object(e->value, e->value_len, ret, err);
    if (r < 0)
        return st_err_prefix(err, r, "document %s", key);
    *ret_rev = e->mod_rev;
    return 0;
}

static int write_doc(struct st_kv *kv, const char *key, json_t *doc, int64_t rev,
                     struct st_err **err)
{
    st_autofree char *text = st_json_dumps(doc);
    return st_kv_put(kv, key, text, strlen(text), rev, NULL, err);
}

static void apply_limits(json_t *doc, struct st_compute_quota *q)
{
    st_compute_quota_defaults(q);
    for (size_t i = 0; doc && i < ST_QUOTA_N_KEYS; i++) {
        json_t *v = json_object_get(doc, quota_keys[i].name);
        if (json_is_integer(v))
            q->limit[i] = json_integer_value(v);
    }
}

int st_compute_quota_get(struct st_kv *kv, const char *project_id, struct st_compute_quota *ret,
                         struct st_err **err)
{
    int r = check_project(project_id, err);
    if (r < 0)
        return r;
    st_autofree char *key = st_sprintf("%s%s", ST_COMPUTE_QUOTAS_PREFIX, project_id);
    st_autoptr(json_t) doc = NULL;
    int64_t rev;
    r = read_doc(kv, key, &doc, &rev, err);
    if (r < 0)
        return r;
    apply_limits(doc, ret);
    return 0;
}

static void sum_usage(json_t *usage, struct st_compute_quota_usage *u)
{
    *u = (struct st_compute_quota_usage){0};
    json_t *servers = json_object_get(usage, "servers");
    const char *id;
    json_t *e;
    json_object_foreach(servers, id, e)
    {
        u->instances++;
        u->cores += json_integer_value(json_object_get(e, "cores"));
        u->ram += json_integer_value(json_object_get(e, "ram"));
    }
}

static size_t prune_usage(struct st_kv *kv, json_t *usage);

int st_compute_quota_usage(struct st_kv *kv, const char *project_id,
                           struct st_compute_quota_usage *ret, struct st_err **err)
{
    int r = check_project(project_id, err);
    if (r < 0)
        return r;
    st_autofree char *key = st_sprintf("%s%s", ST_COMPUTE_USAGE_PREFIX, project_id);
    for (int attempt = 0; attempt < CAS_ATTEMPTS; attempt++) {
        st_autoptr(json_t) doc = NULL;
        int64_t rev;
        r = read_doc(kv, key, &doc, &rev, err);
        if (r < 0)
            return r;
        /* A crash between a reservation and its server's write (or between
         * a server's removal and its release) leaves an entry that is no
         * one's: not counted here either, or the usage shown stays wrong
         * until a create happens to hit a limit. Dropped for good, so the
         * pruning (and its log line) happens once. */
        if (doc && prune_usage(kv, doc) > 0) {
            r = write_doc(kv, key, doc, rev, err);
            if (r == -ECANCELED) {
                st_err_clear(err);
                continue;
            }
            if (r < 0)
                return r;
        }
        sum_usage(doc, ret);
        return 0;
    }
    return st_err_set(err, -EAGAIN, "quota usage of project %s is contended; try again",
                      project_id);
}

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
            return st_err_set(err, -EINVAL,
                              "Invalid input for field/attribute %s. Value: %s. "
                              "'%s' is not an integer",
                              key, s, s);
        *ret = n;
    } else {
        return st_err_set(err, -EINVAL, "Invalid input for field/attribute %s: must be an integer",
                          key);
    }
    if (*ret < -1 || *ret > INT32_MAX)
        return st_err_set(err, -EINVAL,
                          "Invalid input for field/attribute %s. Value: %lld. must be between "
                          "-1 and %d",
                          key, (long long)*ret, INT32_MAX);
    return 0;
}

static bool is_ignored_key(const char *k)
{
    for (size_t i = 0; i < ST_ARRAY_SIZE(ignored_keys); i++)
        if (strcmp(k, ignored_keys[i]) == 0)
            return true;
    return false;
}

int st_compute_quota_set(struct st_kv *kv, const char *project_id, json_t *changes, bool force,
                         struct st_compute_quota *ret, struct st_err **err)
{
    int r = check_project(project_id, err);
    if (r < 0)
        return r;
    if (!json_is_object(changes))
        return st_err_set(err, -EINVAL, "quota_set must be an object");
    /* validate everything before writing anything */
    int64_t wanted[ST_QUOTA_N_KEYS];
    bool given[ST_QUOTA_N_KEYS] = {false};
    const char *k;
    json_t *v;
    json_object_foreach(changes, k, v)
    {
        if (is_ignored_key(k))
            continue;
        size_t i = 0;
        while (i < ST_QUOTA_N_KEYS && strcmp(quota_keys[i].name, k) != 0)
            i++;
        if (i == ST_QUOTA_N_KEYS)
            return st_err_set(err, -EINVAL,
                              "Invalid input for field/attribute quota_set. Additional properties "
                              "are not allowed ('%s' was unexpected)",
                              k);
        r = parse_limit(k, v, &wanted[i], err);
        if (r < 0)
            return r;
        given[i] = true;
    }
    if (!force) {
        struct st_compute_quota_usage u;
        r = st_compute_quota_usage(kv, project_id, &u, err);
        if (r < 0)
            return r;
        int64_t used[] = {
            [ST_QUOTA_INSTANCES] = u.instances, [ST_QUOTA_CORES] = u.cores, [ST_QUOTA_RAM] = u.ram};
        for (size_t i = 0; i <= ST_QUOTA_RAM; i++)
            if (given[i] && wanted[i] != -1 && wanted[i] < used[i])
                return st_err_set(err, -EINVAL,
                                  "Quota limit %lld for %s must be greater than or equal to "
                                  "already used and reserved %lld.",
                                  (long long)wanted[i], quota_keys[i].name, (long long)used[i]);
    }
    st_autofree char *key = st_sprintf("%s%s", ST_COMPUTE_QUOTAS_PREFIX, project_id);
    for (int attempt = 0; attempt < CAS_ATTEMPTS; attempt++) {
        st_autoptr(json_t) doc = NULL;
        int64_t rev;
        r = read_doc(kv, key, &doc, &rev, err);
        if (r < 0)
            return r;
        if (!doc)
            doc = json_object();
        for (size_t i = 0; i < ST_QUOTA_N_KEYS; i++)
            if (given[i])
                json_object_set_new(doc, quota_keys[i].name, json_integer(wanted[i]));
        r = write_doc(kv, key, doc, rev, err);
        if (r == -ECANCELED) {
            st_err_clear(err);
            continue;
        }
        if (r < 0)
            return r;
        apply_limits(doc, ret);
        return 0;
    }
    return st_err_set(err, -EAGAIN, "quota of project %s is changing too often; try again",
                      project_id);
}

int st_compute_quota_reset(struct st_kv *kv, const char *project_id, struct st_err **err)
{
    int r = check_project(project_id, err);
    if (r < 0)
        return r;
    st_autofree char *key = st_sprintf("%s%s", ST_COMPUTE_QUOTAS_PREFIX, project_id);
    r = st_kv_delete(kv, key, ST_KV_ANY, NULL, err);
    if (r == -ENOENT) {
        st_err_clear(err);
        return 0;
    }
    return r;
}

/* Drops entries whose server document is gone (older than the grace
 * period: younger ones are creates in flight) or marked deleted. Returns
 * how many were dropped. */
static size_t prune_usage(struct st_kv *kv, json_t *usage)
{
    json_t *servers = json_object_get(usage, "servers");
    int64_t now = st_time_now_ms();
    size_t dropped = 0;
    const char *id;
    json_t *e, *tmp;
    json_object_foreach_safe(servers, tmp, id, e)
    {
        st_autofree char *key = st_sprintf("%s%s", ST_COMPUTE_SERVERS_PREFIX, id);
        st_autoptr(st_kv_entry) se = NULL;
        st_autoptr(st_err) gerr = NULL;
        int r = st_kv_get(kv, key, &se, &gerr);
        bool stale = false;
        if (r == -ENOENT) {
            stale = now - json_integer_value(json_object_get(e, "at")) > USAGE_GRACE_MS;
        } else if (r == 0) {
            st_autoptr(json_t) doc = json_loadb(se->value, se->value_len, 0, NULL);
            stale = json_is_true(json_object_get(json_object_get(doc, "spec"), "deleted"));
        }
        if (stale) {
            st_log_info("quota_usage_pruned", "server=%s", id);
            json_object_del(servers, id);
            dropped++;
        }
    }
    return dropped;
}

/* The first limit the request would exceed, with Nova's message. */
static int check_limits(const struct st_compute_quota *q, const struct st_compute_quota_usage *u,
                        int64_t cores, int64_t ram, struct st_err **err)
{
    const struct {
        enum st_compute_quota_key key;
        int64_t req, used;
    } checks[] = {{ST_QUOTA_INSTANCES, 1, u->instances},
                  {ST_QUOTA_CORES, cores, u->cores},
                  {ST_QUOTA_RAM, ram, u->ram}};
    for (size_t i = 0; i < ST_ARRAY_SIZE(checks); i++) {
        int64_t limit = q->limit[checks[i].key];
        if (limit >= 0 && checks[i].used + checks[i].req > limit) {
            const char *name = quota_keys[checks[i].key].name;
            return st_err_set(err, -EDQUOT,
                              "Quota exceeded for %s: Requested %lld, but already used %lld of "
                              "%lld %s",
                              name, (long long)checks[i].req, (long long)checks[i].used,
                              (long long)limit, name);
        }
    }
    return 0;
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

int st_compute_quota_reserve(struct st_kv *kv, const char *project_id, const char *server_id,
                             int64_t cores, int64_t ram_mb, struct st_err **err)
{
    struct st_compute_quota q;
    int r = st_compute_quota_get(kv, project_id, &q, err);
    if (r < 0)
        return r;
    st_autofree char *key = st_sprintf("%s%s", ST_COMPUTE_USAGE_PREFIX, project_id);
    for (int attempt = 0; attempt < CAS_ATTEMPTS; attempt++) {
        backoff(attempt);
        st_autoptr(json_t) doc = NULL;
        int64_t rev;
        r = read_doc(kv, key, &doc, &rev, err);
        if (r < 0)
            return r;
        if (!doc)
            doc = json_object();
        json_t *servers = json_object_get(doc, "servers");
        if (!json_is_object(servers)) {
            servers = json_object();
            json_object_set_new(doc, "servers", servers);
        }
        if (json_object_get(servers, server_id))
            return 0;
        struct st_compute_quota_usage u;
        sum_usage(doc, &u);
        st_autoptr(st_err) over = NULL;
        if (check_limits(&q, &u, cores, ram_mb, &over) < 0) {
            if (prune_usage(kv, doc) == 0) {
                st_err_set(err, over->code, "%s", over->msg);
                return over->code;
            }
            sum_usage(doc, &u);
            r = check_limits(&q, &u, cores, ram_mb, err);
            if (r < 0)
                return r;
        }
        json_object_set_new(servers, server_id,
                            json_pack("{s:I, s:I, s:I}", "cores", (json_int_t)cores, "ram",
                                      (json_int_t)ram_mb, "at", (json_int_t)st_time_now_ms()));
        r = write_doc(kv, key, doc, rev, err);
        if (r == -ECANCELED) {
            st_err_clear(err);
            continue;
        }
        return r;
    }
    return st_err_set(err, -EAGAIN, "quota usage of project %s is contended; try again",
                      project_id);
}

int st_compute_quota_release(struct st_kv *kv, const char *project_id, const char *server_id,
                             struct st_err **err)
{
    int r = check_project(project_id, err);
    if (r < 0)
        return r;
    st_autofree char *key = st_sprintf("%s%s", ST_COMPUTE_USAGE_PREFIX, project_id);
    for (int attempt = 0; attempt < CAS_ATTEMPTS; attempt++) {
        backoff(attempt);
        st_autoptr(json_t) doc = NULL;
        int64_t rev;
        r = read_doc(kv, key, &doc, &rev, err);
        if (r < 0)
            return r;
        json_t *servers = doc ? json_object_get(doc, "servers") : NULL;
        if (!servers || !json_object_get(servers, server_id))
            return 0;
        json_object_del(servers, server_id);
        r = write_doc(kv, key, doc, rev, err);
        if (r == -ECANCELED) {
            st_err_clear(err);
            continue;
        }
        return r;
    }
    return st_err_set(err, -EAGAIN, "quota usage of project %s is contended; try again",
                      project_id);
}
