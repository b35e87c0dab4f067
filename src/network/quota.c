/* Neutron's quotas: the limits per project, the counters and claim keys
 * that creates claim in with one store transaction each, the conversion of
 * the usage documents of the format before, and the recount that corrects
 * counters and claims from the real resources when a create would be
 * refused. See quota.h for why usage is kept as a counter plus one claim
 * per resource. */
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

/* A claim without its resource is taken for a create in flight for
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
    if (!st_id_valid(project_id))
        return st_err_set(err, -EINVAL, "Invalid project id '%s'.", project_id ? project_id : "");
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

/* ---- the store's transactions ---- */

/* A transaction being built, owning the keys and values its compares and
 * ops point to. Room for the counter and ST_KV_TXN_OPS_MAX - 1 claims. */
struct txn {
    struct st_kv_cmp cmps[ST_KV_TXN_OPS_MAX];
    size_t n_cmps;
    struct st_kv_op ops[ST_KV_TXN_OPS_MAX];
    size_t n_ops;
    char *owned[3 * ST_KV_TXN_OPS_MAX];
    size_t n_owned;
};

/* Claims one transaction may change, beside the counter. */
#define TXN_CLAIMS (ST_KV_TXN_OPS_MAX - 1)

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

static void txn_cmp(struct txn *t, const char *key, int64_t expect_mod_rev)
{
    t->cmps[t->n_cmps++] = (struct st_kv_cmp){key, expect_mod_rev};
}

static void txn_put(struct txn *t, const char *key, char *value)
{
    const char *v = txn_keep(t, value);
    t->ops[t->n_ops++] = (struct st_kv_op){ST_KV_OP_PUT, key, v, strlen(v)};
}

static void txn_del(struct txn *t, const char *key)
{
    t->ops[t->n_ops++] = (struct st_kv_op){ST_KV_OP_DELETE, key, NULL, 0};
}

/* Runs t; -ECANCELED (err untouched) when a compare failed. *ret_rev
 * (optional): the revision it wrote. */
static int txn_run(struct st_kv *kv, struct txn *t, int64_t *ret_rev, struct st_err **err)
{
    struct st_err *kerr = NULL;
    int r = st_kv_txn(kv, t->cmps, t->n_cmps, t->ops, t->n_ops, ret_rev, &kerr);
    if (r == 0 || r == -ECANCELED) {
        st_err_free(kerr);
        return r;
    }
    if (err && !*err)
        *err = kerr;
    else
        st_err_free(kerr);
    return r;
}

/* ---- counters and claims ---- */

static const char *str(json_t *doc, const char *key)
{
    return json_string_value(json_object_get(doc, key));
}

/* Resource ids become part of claim keys: nothing that could reach another
 * key (uuids in practice). */
static char *claims_prefix(const char *project_id, enum st_network_quota_resource res)
{
    return st_sprintf("%s%s/%s/", ST_NETWORK_QUOTA_CLAIMS_PREFIX, project_id, resources[res].name);
}

static char *claim_key(const char *project_id, enum st_network_quota_resource res, const char *id)
{
    return st_sprintf("%s%s/%s/%s", ST_NETWORK_QUOTA_CLAIMS_PREFIX, project_id, resources[res].name,
                      id);
}

static char *dump_claim(int64_t at)
{
    return st_sprintf("{\"at\": %lld}", (long long)at);
}

static char *dump_counter(int64_t used)
{
    return st_sprintf("{\"used\": %lld}", (long long)(used > 0 ? used : 0));
}

/* One project's counter of one resource kind, as read. */
struct counter {
    const char *project_id;
    enum st_network_quota_resource res;
    char *key;
    int64_t used;
    int64_t rev; /* ST_KV_ABSENT: no counter yet (used 0) */
};

static void counter_init(struct counter *c, const char *project_id,
                         enum st_network_quota_resource res)
{
    *c = (struct counter){project_id, res, usage_key(project_id, res), 0, ST_KV_ABSENT};
}

static void counter_fini(struct counter *c)
{
    free(c->key);
}

/* The project's claims of c's kind: {"<id>": {"at": ms, "rev": mod_rev}}
 * (new reference). */
static int list_claims(struct st_kv *kv, const struct counter *c, json_t **ret, struct st_err **err)
{
    st_autofree char *prefix = claims_prefix(c->project_id, c->res);
    size_t plen = strlen(prefix);
    st_autoptr(json_t) claims = json_object();
    st_autofree char *after = NULL;
    for (;;) {
        st_autoptr(st_kv_list) l = NULL;
        int r = st_kv_list(kv, prefix, after, 1000, &l, err);
        if (r < 0)
            return st_err_prefix(err, r, "listing %s", prefix);
        for (size_t i = 0; i < l->count; i++) {
            st_autoptr(json_t) doc =
                json_loadb(l->entries[i].value, l->entries[i].value_len, 0, NULL);
            json_object_set_new(
                claims, l->entries[i].key + plen,
                json_pack("{s:I, s:I}", "at",
                          (json_int_t)json_integer_value(json_object_get(doc, "at")), "rev",
                          (json_int_t)l->entries[i].mod_rev));
        }
        if (!l->more || l->count == 0)
            break;
        free(after);
        after = st_strdup(l->entries[l->count - 1].key);
    }
    *ret = st_steal(&claims);
    return 0;
}

static int64_t claim_int(json_t *claim, const char *name)
{
    return json_integer_value(json_object_get(claim, name));
}

/* Whether a counter document is of the format before: {"<id>": <claimed
 * at>, ...}, or half converted (a counter beside the entries not yet
 * moved). */
static bool is_legacy(json_t *doc)
{
    return json_object_size(doc) != 1 || !json_is_integer(json_object_get(doc, "used"));
}

/* Moves the entries of a document of the format before (doc, read at rev)
 * to claim keys, keeping their times, as many as one transaction holds; the
 * counter becomes the number of claims, the document keeping the entries
 * not yet moved beside it. An entry whose claim exists already is dropped
 * rather than counted twice (and one whose id could not be a key, which no
 * resource has). -ECANCELED when something changed meanwhile
 * (read again). */
static int convert_legacy(struct st_kv *kv, const struct counter *c, json_t *doc, int64_t rev,
                          struct st_err **err)
{
    st_autoptr(json_t) claims = NULL;
    int r = list_claims(kv, c, &claims, err);
    if (r < 0)
        return r;
    int64_t used = (int64_t)json_object_size(claims);
    st_autoptr(txn) t = txn_new();
    txn_cmp(t, c->key, rev);
    size_t moved = 0, already = 0;
    const char *id;
    json_t *at, *tmp;
    json_object_foreach_safe(doc, tmp, id, at)
    {
        if (strcmp(id, "used") == 0)
            continue;
        if (moved == TXN_CLAIMS)
            break;
        if (st_id_valid(id) && !json_object_get(claims, id)) {
            const char *ckey = txn_keep(t, claim_key(c->project_id, c->res, id));
            txn_cmp(t, ckey, ST_KV_ABSENT);
            txn_put(t, ckey, dump_claim(json_integer_value(at)));
            used++;
            moved++;
        } else {
            already++;
        }
        json_object_del(doc, id);
    }
    json_object_set_new(doc, "used", json_integer(used));
    size_t left = json_object_size(doc) - 1;
    txn_put(t, c->key, st_json_dumps(doc));
    if ((r = txn_run(kv, t, NULL, err)) < 0)
        return r == -ECANCELED ? r : st_err_prefix(err, r, "converting %s", c->key);
    st_log_info("network_quota_usage_converted",
                "project=%s resource=%s moved=%zu counted_already=%zu left=%zu", c->project_id,
                resources[c->res].name, moved, already, left);
    return 0;
}

/* Reads c's counter, converting a document of the format before first. */
static int counter_read(struct st_kv *kv, struct counter *c, struct st_err **err)
{
    for (int attempt = 0; attempt < CAS_ATTEMPTS; attempt++) {
        st_autoptr(json_t) doc = NULL;
        int64_t rev;
        int r = read_doc(kv, c->key, &doc, &rev, err);
        if (r < 0)
            return r;
        if (doc && is_legacy(doc)) {
            r = convert_legacy(kv, c, doc, rev, err);
            if (r < 0 && r != -ECANCELED)
                return r;
            continue;
        }
        c->used = doc ? json_integer_value(json_object_get(doc, "used")) : 0;
        c->rev = rev;
        return 0;
    }
    return st_err_set(err, -EAGAIN, "the %s usage of project %s is contended; try again",
                      resources[c->res].name, c->project_id);
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

/* Brings c's claims in line with the resources that exist: drops the
 * claims without a resource that are older than the grace period, adopts
 * the resources without a claim (stamped 0, so that a later recount may
 * drop them again), and sets the counter to the number of claims, in as
 * many transactions as that takes, each comparing the counter (which every
 * claim's write changes too, so the claims listed are the claims there
 * are). *ret_real: how many resources exist. Leaves c read afresh. */
static int recount(struct st_kv *kv, struct counter *c, int64_t *ret_real, struct st_err **err)
{
    for (int attempt = 0; attempt < CAS_ATTEMPTS; attempt++) {
        backoff(attempt);
        st_autoptr(json_t) claims = NULL;
        st_autoptr(json_t) real = NULL;
        int r;
        /* the counter first, then the claims and the resources: a change
         * of either after the counter was read fails the transactions */
        if ((r = counter_read(kv, c, err)) < 0 || (r = list_claims(kv, c, &claims, err)) < 0 ||
            (r = real_ids(kv, c->project_id, c->res, &real, err)) < 0)
            return r;
        int64_t now = st_time_now_ms();
        st_autoptr(json_t) drop = json_array();
        st_autoptr(json_t) adopt = json_array();
        const char *id;
        json_t *v;
        json_object_foreach(claims, id, v)
        {
            if (!json_object_get(real, id) && now - claim_int(v, "at") > USAGE_GRACE_MS)
                json_array_append_new(drop, json_string(id));
        }
        json_object_foreach(real, id, v)
        {
            if (!json_object_get(claims, id) && st_id_valid(id))
                json_array_append_new(adopt, json_string(id));
        }
        *ret_real = (int64_t)json_object_size(real);
        int64_t count = (int64_t)json_object_size(claims);
        size_t n_drop = json_array_size(drop), n_adopt = json_array_size(adopt);
        if (n_drop == 0 && n_adopt == 0 && count == c->used)
            return 0;
        int64_t rev = c->rev;
        size_t i = 0, j = 0;
        do {
            st_autoptr(txn) t = txn_new();
            txn_cmp(t, c->key, rev);
            for (; i < n_drop && t->n_ops < TXN_CLAIMS; i++) {
                const char *cid = json_string_value(json_array_get(drop, i));
                const char *ckey = txn_keep(t, claim_key(c->project_id, c->res, cid));
                txn_cmp(t, ckey, claim_int(json_object_get(claims, cid), "rev"));
                txn_del(t, ckey);
                count--;
            }
            for (; i == n_drop && j < n_adopt && t->n_ops < TXN_CLAIMS; j++) {
                const char *ckey =
                    txn_keep(t, claim_key(c->project_id, c->res,
                                          json_string_value(json_array_get(adopt, j))));
                txn_cmp(t, ckey, ST_KV_ABSENT);
                txn_put(t, ckey, dump_claim(0));
                count++;
            }
            txn_put(t, c->key, dump_counter(count));
            if ((r = txn_run(kv, t, &rev, err)) < 0)
                break;
        } while (i < n_drop || j < n_adopt);
        if (r == -ECANCELED)
            continue;
        if (r < 0)
            return st_err_prefix(err, r, "recounting %s", c->key);
        if (n_drop || n_adopt)
            st_log_info("network_quota_recounted", "project=%s resource=%s dropped=%zu adopted=%zu",
                        c->project_id, resources[c->res].name, n_drop, n_adopt);
        c->used = count;
        c->rev = rev;
        return 0;
    }
    return st_err_set(err, -EAGAIN, "the %s usage of project %s is contended; try again",
                      resources[c->res].name, c->project_id);
}

static int check_resource(enum st_network_quota_resource res, struct st_err **err)
{
    if (res >= ST_NETWORK_QUOTA_N_COUNTED)
        return st_err_set(err, -EINVAL, "%s is not counted", st_network_quota_name(res) ?: "?");
    return 0;
}

static int check_ids(const char *const *ids, size_t n, struct st_err **err)
{
    for (size_t i = 0; i < n; i++)
        if (!st_id_valid(ids[i]))
            return st_err_set(err, -EINVAL, "Invalid resource id '%s'.", ids[i] ?: "");
    return 0;
}

/* Whether ids[i]'s claim exists, for each i with !skip[i]; sets skip[i]
 * where it does. Returns how many are left. */
static size_t skip_claimed(struct st_kv *kv, const struct counter *c, const char *const *ids,
                           size_t n, bool *skip)
{
    size_t left = 0;
    for (size_t i = 0; i < n; i++) {
        if (skip[i])
            continue;
        st_autofree char *ckey = claim_key(c->project_id, c->res, ids[i]);
        st_autoptr(st_kv_entry) e = NULL;
        if (st_kv_get(kv, ckey, &e, NULL) == 0)
            skip[i] = true;
        else
            left++;
    }
    return left;
}

/* Whether ids[i] is one of ids[0..i-1]. */
static bool seen_before(const char *const *ids, size_t i)
{
    for (size_t j = 0; j < i; j++)
        if (strcmp(ids[i], ids[j]) == 0)
            return true;
    return false;
}

/* Claims ids (at most TXN_CLAIMS) in c's kind; with limit >= 0, only
 * within it. The common path is one read and one transaction. */
static int add_batch(struct st_kv *kv, struct counter *c, const char *const *ids, size_t n,
                     int64_t limit, struct st_err **err)
{
    bool skip[TXN_CLAIMS] = {false};
    bool counted = false, corrected = false;
    size_t fresh = n;
    /* an id twice would be two ops on one key, which a transaction refuses */
    for (size_t i = 0; i < n; i++)
        if (seen_before(ids, i)) {
            skip[i] = true;
            fresh--;
        }
    for (int attempt = 0; attempt < CAS_ATTEMPTS; attempt++) {
        backoff(attempt);
        int r = counter_read(kv, c, err);
        if (r < 0)
            return r;
        int64_t real;
        if (c->rev == ST_KV_ABSENT && !counted) {
            /* The first claim: count what the project has already. */
            counted = true;
            if ((r = recount(kv, c, &real, err)) < 0)
                return r;
        }
        if (limit >= 0 && c->used + (int64_t)fresh > limit) {
            /* claimed already (a retried create) is counted already */
            if ((fresh = skip_claimed(kv, c, ids, n, skip)) == 0)
                return 0;
            if (c->used + (int64_t)fresh > limit) {
                if (corrected)
                    return st_err_set(err, -EDQUOT, "Quota exceeded for resources: ['%s'].",
                                      resources[c->res].name);
                corrected = true;
                if ((r = recount(kv, c, &real, err)) < 0)
                    return r;
                continue;
            }
        }
        int64_t now = st_time_now_ms();
        st_autoptr(txn) t = txn_new();
        txn_cmp(t, c->key, c->rev);
        for (size_t i = 0; i < n; i++) {
            if (skip[i])
                continue;
            const char *ckey = txn_keep(t, claim_key(c->project_id, c->res, ids[i]));
            txn_cmp(t, ckey, ST_KV_ABSENT);
            txn_put(t, ckey, dump_claim(now));
        }
        txn_put(t, c->key, dump_counter(c->used + (int64_t)fresh));
        r = txn_run(kv, t, NULL, err);
        if (r != -ECANCELED)
            return r < 0 ? st_err_prefix(err, r, "claiming in %s", c->key) : 0;
        if ((fresh = skip_claimed(kv, c, ids, n, skip)) == 0)
            return 0;
    }
    return st_err_set(err, -EAGAIN, "the %s usage of project %s is contended; try again",
                      resources[c->res].name, c->project_id);
}

/* Adds ids to the project's usage of res; with check, only within limit. */
static int add_ids(struct st_kv *kv, const char *project_id, enum st_network_quota_resource res,
                   const char *const *ids, size_t n, bool check, struct st_err **err)
{
    if (!project_id || !*project_id || n == 0)
        return 0;
    int r;
    if ((r = check_project(project_id, err)) < 0 || (r = check_resource(res, err)) < 0 ||
        (r = check_ids(ids, n, err)) < 0)
        return r;
    int64_t limit = -1;
    if (check) {
        struct st_network_quota q;
        if ((r = st_network_quota_get(kv, project_id, &q, err)) < 0)
            return r;
        limit = q.limit[res];
    }
    struct counter c;
    counter_init(&c, project_id, res);
    for (size_t i = 0; i < n && r >= 0; i += TXN_CLAIMS)
        r = add_batch(kv, &c, ids + i, n - i < TXN_CLAIMS ? n - i : TXN_CLAIMS, limit, err);
    counter_fini(&c);
    return r;
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

/* Releases the claims of ids (at most TXN_CLAIMS) that exist, in one
 * transaction that compares them and the counter. */
static int remove_batch(struct st_kv *kv, struct counter *c, const char *const *ids, size_t n,
                        struct st_err **err)
{
    bool counted = false;
    for (int attempt = 0; attempt < CAS_ATTEMPTS; attempt++) {
        backoff(attempt);
        int r = counter_read(kv, c, err);
        if (r < 0)
            return r;
        st_autoptr(txn) t = txn_new();
        txn_cmp(t, c->key, c->rev);
        int64_t gone = 0;
        for (size_t i = 0; i < n; i++) {
            if (!st_id_valid(ids[i]) || seen_before(ids, i))
                continue;
            const char *ckey = txn_keep(t, claim_key(c->project_id, c->res, ids[i]));
            st_autoptr(st_kv_entry) e = NULL;
            struct st_err *gerr = NULL;
            if ((r = st_kv_get(kv, ckey, &e, &gerr)) == -ENOENT) {
                st_err_free(gerr);
                continue;
            }
            if (r < 0) {
                if (err && !*err)
                    *err = gerr;
                else
                    st_err_free(gerr);
                return st_err_prefix(err, r, "reading %s", ckey);
            }
            txn_cmp(t, ckey, e->mod_rev);
            txn_del(t, ckey);
            gone++;
        }
        if (gone == 0)
            return 0;
        if (c->rev == ST_KV_ABSENT && !counted) {
            /* claims without a counter (someone removed it): count them
             * first, or the counter would start below them */
            counted = true;
            int64_t real;
            if ((r = recount(kv, c, &real, err)) < 0)
                return r;
            continue;
        }
        txn_put(t, c->key, dump_counter(c->used - gone));
        r = txn_run(kv, t, NULL, err);
        if (r != -ECANCELED)
            return r < 0 ? st_err_prefix(err, r, "releasing in %s", c->key) : 0;
    }
    return st_err_set(err, -EAGAIN, "the %s usage of project %s is contended",
                      resources[c->res].name, c->project_id);
}

static int remove_ids(struct st_kv *kv, const char *project_id, enum st_network_quota_resource res,
                      const char *const *ids, size_t n, struct st_err **err)
{
    int r;
    if ((r = check_project(project_id, err)) < 0 || (r = check_resource(res, err)) < 0)
        return r;
    struct counter c;
    counter_init(&c, project_id, res);
    for (size_t i = 0; i < n && r >= 0; i += TXN_CLAIMS)
        r = remove_batch(kv, &c, ids + i, n - i < TXN_CLAIMS ? n - i : TXN_CLAIMS, err);
    counter_fini(&c);
    return r;
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

int st_network_quota_usage(struct st_kv *kv, const char *project_id,
                           struct st_network_quota_usage *ret, struct st_err **err)
{
    int r = check_project(project_id, err);
    if (r < 0)
        return r;
    *ret = (struct st_network_quota_usage){0};
    for (size_t i = 0; i < ST_NETWORK_QUOTA_N_COUNTED && r >= 0; i++) {
        struct counter c;
        counter_init(&c, project_id, i);
        int64_t real = 0;
        /* after the recount every resource that exists has its claim; the
         * other claims are creates in flight */
        if ((r = recount(kv, &c, &real, err)) >= 0) {
            ret->used[i] = real;
            ret->reserved[i] = c.used > real ? c.used - real : 0;
        }
        counter_fini(&c);
    }
    return r;
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
