/* Compute quotas: the limits, and the usage counters and claims that a
 * create is checked against; see quota.h. */
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

/* A claim without its server is assumed to be a create in flight for this
 * long before it counts as the leftover of a crash. */
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
    if (!st_id_valid(project_id))
        return st_err_set(err, -EINVAL, "Invalid project id '%s'.", project_id ? project_id : "");
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
    int64_t rev = ST_KV_ABSENT;
    r = read_doc(kv, key, &doc, &rev, err);
    if (r < 0)
        return r;
    apply_limits(doc, ret);
    return 0;
}

/* ---- usage: counters and claims ---- */

static char *usage_key(const char *project_id)
{
    return st_sprintf("%s%s", ST_COMPUTE_USAGE_PREFIX, project_id);
}

static char *claim_key(const char *project_id, const char *server_id)
{
    return st_sprintf("%s%s/%s", ST_COMPUTE_CLAIMS_PREFIX, project_id, server_id);
}

static int64_t get_int(json_t *doc, const char *name)
{
    return json_integer_value(json_object_get(doc, name));
}

static char *dump_counters(const struct st_compute_quota_usage *u)
{
    st_autoptr(json_t) doc = json_pack("{s:I, s:I, s:I}", "instances", (json_int_t)u->instances,
                                       "cores", (json_int_t)u->cores, "ram", (json_int_t)u->ram);
    return st_json_dumps(doc);
}

static char *dump_claim(int64_t cores, int64_t ram, int64_t at)
{
    st_autoptr(json_t) doc = json_pack("{s:I, s:I, s:I}", "cores", (json_int_t)cores, "ram",
                                       (json_int_t)ram, "at", (json_int_t)at);
    return st_json_dumps(doc);
}

static struct st_kv_op put_op(const char *key, const char *text)
{
    return (struct st_kv_op){
        .type = ST_KV_OP_PUT, .key = key, .value = text, .value_len = strlen(text)};
}

/* The old format, {"servers": {"<uuid>": {"cores", "ram", "at"}}}, becomes
 * counters and claim keys: entries move to claims and into the counters in
 * one transaction (the document's revision compared), so the project's usage
 * is the same before and after and at every step between. A project of more
 * servers than one transaction holds takes several, the document keeping the
 * entries not yet moved beside the counters. Returns -ECANCELED when the
 * document changed meanwhile (read it again). */
static int convert_legacy(struct st_kv *kv, const char *project_id, const char *ukey, json_t *doc,
                          int64_t rev, struct st_err **err)
{
    json_t *servers = json_object_get(doc, "servers");
    struct st_compute_quota_usage u = {get_int(doc, "instances"), get_int(doc, "cores"),
                                       get_int(doc, "ram")};
    struct st_kv_op ops[ST_KV_TXN_OPS_MAX];
    char *texts[ST_KV_TXN_OPS_MAX];
    size_t n = 0;
    const char *id;
    json_t *e, *tmp;
    json_object_foreach_safe(servers, tmp, id, e)
    {
        if (n == ST_KV_TXN_OPS_MAX - 1) /* one op for the counters */
            break;
        int64_t cores = get_int(e, "cores"), ram = get_int(e, "ram");
        u.instances++;
        u.cores += cores;
        u.ram += ram;
        ops[n] = put_op(claim_key(project_id, id), dump_claim(cores, ram, get_int(e, "at")));
        texts[n] = (char *)ops[n].value;
        n++;
        json_object_del(servers, id);
    }
    size_t left = json_object_size(servers);
    st_autoptr(json_t) next = json_pack("{s:I, s:I, s:I}", "instances", (json_int_t)u.instances,
                                        "cores", (json_int_t)u.cores, "ram", (json_int_t)u.ram);
    if (left > 0)
        json_object_set(next, "servers", servers);
    st_autofree char *text = st_json_dumps(next);
    ops[n] = put_op(ukey, text);
    const struct st_kv_cmp cmp = {ukey, rev};
    int r = st_kv_txn(kv, &cmp, 1, ops, n + 1, NULL, err);
    for (size_t i = 0; i < n; i++) {
        free((char *)ops[i].key);
        free(texts[i]);
    }
    if (r < 0)
        return r;
    st_log_info("quota_usage_converted", "project=%s servers=%zu left=%zu", project_id, n, left);
    return 0;
}

/* The project's counters and the revision of their document (ST_KV_ABSENT:
 * none yet, all zero), converting a document of the old format first. */
static int usage_read(struct st_kv *kv, const char *project_id, const char *ukey,
                      struct st_compute_quota_usage *ret, int64_t *ret_rev, struct st_err **err)
{
    for (int attempt = 0; attempt < CAS_ATTEMPTS; attempt++) {
        st_autoptr(json_t) doc = NULL;
        int64_t rev = ST_KV_ABSENT;
        int r = read_doc(kv, ukey, &doc, &rev, err);
        if (r < 0)
            return r;
        if (json_object_get(doc, "servers")) {
            r = convert_legacy(kv, project_id, ukey, doc, rev, err);
            if (r == -ECANCELED)
                st_err_clear(err);
            else if (r < 0)
                return st_err_prefix(err, r, "converting the quota usage of project %s",
                                     project_id);
            continue;
        }
        *ret = (struct st_compute_quota_usage){get_int(doc, "instances"), get_int(doc, "cores"),
                                               get_int(doc, "ram")};
        *ret_rev = rev;
        return 0;
    }
    return st_err_set(err, -EAGAIN, "quota usage of project %s is contended; try again",
                      project_id);
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

static int64_t sub_floor0(int64_t a, int64_t b)
{
    return a > b ? a - b : 0;
}

/* Removes server_id's claim and takes it off the counters, in one
 * transaction that compares both. The counters never go below zero: they
 * cannot legitimately, and a hand-edited store should not make them. */
static int release_claim(struct st_kv *kv, const char *project_id, const char *server_id,
                         struct st_err **err)
{
    st_autofree char *ukey = usage_key(project_id);
    st_autofree char *ckey = claim_key(project_id, server_id);
    for (int attempt = 0; attempt < CAS_ATTEMPTS; attempt++) {
        backoff(attempt);
        struct st_compute_quota_usage u;
        int64_t urev = ST_KV_ABSENT;
        int r = usage_read(kv, project_id, ukey, &u, &urev, err);
        if (r < 0)
            return r;
        st_autoptr(json_t) claim = NULL;
        int64_t crev = ST_KV_ABSENT;
        if ((r = read_doc(kv, ckey, &claim, &crev, err)) < 0)
            return r;
        if (!claim)
            return 0;
        u.instances = sub_floor0(u.instances, 1);
        u.cores = sub_floor0(u.cores, get_int(claim, "cores"));
        u.ram = sub_floor0(u.ram, get_int(claim, "ram"));
        st_autofree char *text = dump_counters(&u);
        const struct st_kv_cmp cmps[] = {{ukey, urev}, {ckey, crev}};
        const struct st_kv_op ops[] = {put_op(ukey, text), {.type = ST_KV_OP_DELETE, .key = ckey}};
        r = st_kv_txn(kv, cmps, ST_ARRAY_SIZE(cmps), ops, ST_ARRAY_SIZE(ops), NULL, err);
        if (r == -ECANCELED) {
            st_err_clear(err);
            continue;
        }
        return r;
    }
    return st_err_set(err, -EAGAIN, "quota usage of project %s is contended; try again",
                      project_id);
}

/* Whether a claim is no one's: its server is marked deleted (the release
 * that follows the mark was lost), or it has no server and is older than the
 * grace period (younger ones are creates in flight). */
static bool claim_stale(struct st_kv *kv, const char *server_id, json_t *claim, int64_t now)
{
    st_autofree char *key = st_sprintf("%s%s", ST_COMPUTE_SERVERS_PREFIX, server_id);
    st_autoptr(st_kv_entry) se = NULL;
    st_autoptr(st_err) gerr = NULL;
    int r = st_kv_get(kv, key, &se, &gerr);
    if (r == -ENOENT)
        return now - get_int(claim, "at") > USAGE_GRACE_MS;
    if (r < 0)
        return false;
    st_autoptr(json_t) doc = json_loadb(se->value, se->value_len, 0, NULL);
    return json_is_true(json_object_get(json_object_get(doc, "spec"), "deleted"));
}

/* Releases the project's stale claims (the leftovers of a crash between a
 * claim and its server's write, or between a server's removal and its
 * release). Reads every claim and its server, so it runs only where it
 * matters: when a create would be refused, and when usage is shown. Returns
 * how many were released. */
static int prune_claims(struct st_kv *kv, const char *project_id, size_t *ret_released,
                        struct st_err **err)
{
    st_autofree char *prefix = st_sprintf("%s%s/", ST_COMPUTE_CLAIMS_PREFIX, project_id);
    size_t plen = strlen(prefix);
    int64_t now = st_time_now_ms();
    *ret_released = 0;
    st_autofree char *after = NULL;
    for (;;) {
        st_autoptr(st_kv_list) l = NULL;
        int r = st_kv_list(kv, prefix, after, 1000, &l, err);
        if (r < 0)
            return r;
        for (size_t i = 0; i < l->count; i++) {
            const char *id = l->entries[i].key + plen;
            st_autoptr(json_t) claim =
                json_loadb(l->entries[i].value, l->entries[i].value_len, 0, NULL);
            if (!claim_stale(kv, id, claim, now))
                continue;
            if ((r = release_claim(kv, project_id, id, err)) < 0)
                return st_err_prefix(err, r, "releasing the stale quota claim of server %s", id);
            st_log_info("quota_usage_pruned", "project=%s server=%s", project_id, id);
            (*ret_released)++;
        }
        if (!l->more)
            return 0;
        free(after);
        after = st_strdup(l->entries[l->count - 1].key);
    }
}

int st_compute_quota_usage(struct st_kv *kv, const char *project_id,
                           struct st_compute_quota_usage *ret, struct st_err **err)
{
    int r = check_project(project_id, err);
    if (r < 0)
        return r;
    st_autofree char *ukey = usage_key(project_id);
    int64_t rev = ST_KV_ABSENT;
    if ((r = usage_read(kv, project_id, ukey, ret, &rev, err)) < 0)
        return r;
    /* A crash's leftover is not counted here either, or the usage shown
     * stays wrong until a create happens to hit a limit; released for good,
     * so this (and its log line) happens once. */
    if (ret->instances == 0 && ret->cores == 0 && ret->ram == 0)
        return 0;
    size_t released;
    if ((r = prune_claims(kv, project_id, &released, err)) < 0)
        return r;
    if (released > 0)
        r = usage_read(kv, project_id, ukey, ret, &rev, err);
    return r;
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
        int64_t rev = ST_KV_ABSENT;
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

static bool claim_exists(struct st_kv *kv, const char *ckey)
{
    st_autoptr(st_kv_entry) e = NULL;
    return st_kv_get(kv, ckey, &e, NULL) == 0;
}

int st_compute_quota_reserve(struct st_kv *kv, const char *project_id, const char *server_id,
                             int64_t cores, int64_t ram_mb, struct st_err **err)
{
    struct st_compute_quota q;
    int r = st_compute_quota_get(kv, project_id, &q, err);
    if (r < 0)
        return r;
    if (!server_id || !server_id[0] || strchr(server_id, '/'))
        return st_err_set(err, -EINVAL, "Invalid server id '%s'.", server_id ? server_id : "");
    st_autofree char *ukey = usage_key(project_id);
    st_autofree char *ckey = claim_key(project_id, server_id);
    st_autofree char *claim = dump_claim(cores, ram_mb, st_time_now_ms());
    bool pruned = false;
    for (int attempt = 0; attempt < CAS_ATTEMPTS; attempt++) {
        backoff(attempt);
        struct st_compute_quota_usage u;
        int64_t urev = ST_KV_ABSENT;
        if ((r = usage_read(kv, project_id, ukey, &u, &urev, err)) < 0)
            return r;
        st_autoptr(st_err) over = NULL;
        if (check_limits(&q, &u, cores, ram_mb, &over) < 0) {
            if (claim_exists(kv, ckey)) /* counted already */
                return 0;
            size_t released = 0;
            if (!pruned && (r = prune_claims(kv, project_id, &released, err)) < 0)
                return r;
            pruned = true;
            if (released > 0)
                continue;
            st_err_set(err, over->code, "%s", over->msg);
            return over->code;
        }
        u.instances += 1;
        u.cores += cores;
        u.ram += ram_mb;
        st_autofree char *counters = dump_counters(&u);
        const struct st_kv_cmp cmps[] = {{ukey, urev}, {ckey, ST_KV_ABSENT}};
        const struct st_kv_op ops[] = {put_op(ukey, counters), put_op(ckey, claim)};
        r = st_kv_txn(kv, cmps, ST_ARRAY_SIZE(cmps), ops, ST_ARRAY_SIZE(ops), NULL, err);
        if (r == -ECANCELED) {
            st_err_clear(err);
            if (claim_exists(kv, ckey))
                return 0;
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
    if (!server_id || !server_id[0] || strchr(server_id, '/'))
        return st_err_set(err, -EINVAL, "Invalid server id '%s'.", server_id ? server_id : "");
    return release_claim(kv, project_id, server_id, err);
}
