/* The identity service's context: the store it keeps its records in, its
 * configuration, the policy engine (with the custom roles' rules loaded from
 * the store), the token cache, the failed-login limiters and the store watch
 * that keeps the last three in step with other controllers. Also the small
 * helpers every record kind shares: Keystone's error wording, the clock, and
 * encodings. */
#include "identity-priv.h"

#include <errno.h>
#include <openssl/evp.h>
#include <string.h>

#include "identity/records.h"
#include "lib/json.h"
#include "lib/log.h"
#include "lib/times.h"
#include "lib/uuid.h"
#include "store/kv.h"

#define RATELIMIT_SLOTS 4096

static int64_t wall_clock(void *data)
{
    (void)data;
    return st_time_now_ms();
}

int64_t st_identity_now_ms(struct st_identity *id)
{
    return id->now_ms(id->now_data);
}

void st_identity_set_clock(struct st_identity *id, int64_t (*now_ms)(void *data), void *data)
{
    id->now_ms = now_ms ? now_ms : wall_clock;
    id->now_data = now_ms ? data : NULL;
}

void st_identity_timestamp(struct st_identity *id, char buf[32])
{
    st_time_rfc3339(st_identity_now_ms(id) / 1000, buf, 32);
}

void st_identity_b64url(const void *buf, size_t n, char *out)
{
    static const char alphabet[] =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    const unsigned char *p = buf;
    size_t o = 0;
    for (size_t i = 0; i < n; i += 3) {
        uint32_t v = (uint32_t)p[i] << 16;
        if (i + 1 < n)
            v |= (uint32_t)p[i + 1] << 8;
        if (i + 2 < n)
            v |= p[i + 2];
        out[o++] = alphabet[(v >> 18) & 63];
        out[o++] = alphabet[(v >> 12) & 63];
        if (i + 1 < n)
            out[o++] = alphabet[(v >> 6) & 63];
        if (i + 2 < n)
            out[o++] = alphabet[v & 63];
    }
    out[o] = '\0';
}

int st_identity_get_record(struct st_identity *id, const char *kind, const char *what,
                           const char *rec_id, json_t **ret, int64_t *ret_rev, struct st_err **err)
{
    st_autoptr(st_err) local = NULL;
    int r = st_idrec_get(id->kv, kind, rec_id, ret, ret_rev, &local);
    if (r == -ENOENT)
        return st_err_set(err, r, "Could not find %s: %s.", what, rec_id ? rec_id : "");
    if (r < 0) {
        st_err_set(err, r, "%s", st_err_msg(local));
        return st_err_prefix(err, r, "reading %s %s", what, rec_id);
    }
    return 0;
}

int st_identity_err_duplicate(struct st_err **err, const char *what, const char *name,
                              const char *domain_id)
{
    if (domain_id)
        return st_err_set(err, -EEXIST,
                          "Conflict occurred attempting to store %s - Duplicate entry found "
                          "with name %s at domain ID %s.",
                          what, name, domain_id);
    return st_err_set(err, -EEXIST,
                      "Conflict occurred attempting to store %s - Duplicate entry found with "
                      "name %s.",
                      what, name);
}

json_t *st_identity_user_public(json_t *user)
{
    json_t *copy = json_deep_copy(user);
    if (!copy)
        abort();
    json_object_del(copy, "password_hash");
    return copy;
}

int st_identity_check_domain(struct st_identity *id, const char *domain_id, struct st_err **err)
{
    st_autoptr(json_t) domain = NULL;
    st_autoptr(st_err) local = NULL;
    int r = st_idrec_get(id->kv, "domains", domain_id, &domain, NULL, &local);
    if (r == -ENOENT)
        return st_err_set(err, -EINVAL, "domain '%s' does not exist", domain_id);
    if (r < 0)
        return st_err_set(err, r, "reading domain %s: %s", domain_id, st_err_msg(local));
    return 0;
}

int st_identity_list_filtered(struct st_identity *id, const char *kind, const char *name,
                              const char *domain_id, json_t **ret, struct st_err **err)
{
    st_autoptr(json_t) all = NULL;
    int r = st_idrec_list(id->kv, kind, &all, err);
    if (r < 0)
        return st_err_prefix(err, r, "listing %s", kind);
    st_autoptr(json_t) out = json_array();
    size_t i;
    json_t *rec;
    json_array_foreach(all, i, rec)
    {
        const char *n = json_string_value(json_object_get(rec, "name"));
        const char *d = json_string_value(json_object_get(rec, "domain_id"));
        if (name && strcmp(n ?: "", name) != 0)
            continue;
        if (domain_id && strcmp(d ?: "", domain_id) != 0)
            continue;
        json_array_append(out, rec);
    }
    *ret = st_steal(&out);
    return 0;
}

/* argon2's encoding: standard base64 without padding. */
static void b64_nopad(const uint8_t *in, size_t n, char *out)
{
    int len = EVP_EncodeBlock((unsigned char *)out, in, (int)n);
    while (len > 0 && out[len - 1] == '=')
        out[--len] = '\0';
}

/* An argon2id hash at the configured cost whose salt and digest are random:
 * no password matches it, and verifying against it costs what a real one
 * does. Written out rather than computed, so start-up pays no argon2 run. */
static int make_dummy_hash(struct st_identity *id, struct st_err **err)
{
    (void)err;
    uint8_t salt[16], digest[32];
    char salt64[32], digest64[48];
    st_random_bytes(salt, sizeof(salt));
    st_random_bytes(digest, sizeof(digest));
    b64_nopad(salt, sizeof(salt), salt64);
    b64_nopad(digest, sizeof(digest), digest64);
    id->dummy_hash = st_sprintf("$argon2id$v=19$m=%u,t=%u,p=%u$%s$%s", id->cfg.cost.m_cost_kib,
                                id->cfg.cost.t_cost, id->cfg.cost.parallelism, salt64, digest64);
    return 0;
}

const char *st_identity_dummy_hash(struct st_identity *id)
{
    return id->dummy_hash;
}

/* The Default domain: always there, so that projects and users can be
 * created in it before (or without) a bootstrap. */
static int ensure_default_domain(struct st_identity *id, struct st_err **err)
{
    st_autoptr(json_t) domain = NULL;
    st_autoptr(st_err) local = NULL;
    int r = st_idrec_get(id->kv, "domains", ST_IDENTITY_DEFAULT_DOMAIN_ID, &domain, NULL, &local);
    if (r == 0)
        return 0;
    if (r != -ENOENT)
        return st_err_set(err, r, "reading the default domain: %s", st_err_msg(local));
    st_autoptr(json_t) doc = json_pack("{s:s, s:s, s:s, s:b}", "id", ST_IDENTITY_DEFAULT_DOMAIN_ID,
                                       "name", ST_IDENTITY_DEFAULT_DOMAIN_NAME, "description",
                                       "The default domain", "enabled", 1);
    st_err_clear(&local);
    r = st_idrec_create(id->kv, "domains", doc, &local);
    if (r == -EEXIST)
        return 0; /* created concurrently */
    if (r < 0)
        return st_err_set(err, r, "creating the default domain: %s", st_err_msg(local));
    return 0;
}

int st_identity_new(struct st_kv *kv, const struct st_identity_config *cfg,
                    struct st_identity **ret, struct st_err **err)
{
    struct st_identity_config c = cfg ? *cfg : (struct st_identity_config){0};
    if (c.token_ttl_s == 0)
        c.token_ttl_s = ST_IDENTITY_TOKEN_TTL_DEFAULT;
    if (c.token_ttl_s < 0)
        return st_err_set(err, -EINVAL, "token TTL must be positive");
    if (c.cost.t_cost == 0 && c.cost.m_cost_kib == 0 && c.cost.parallelism == 0)
        c.cost = ST_PASSWORD_COST_DEFAULT;
    if (c.cost.t_cost == 0 || c.cost.parallelism == 0 || c.cost.m_cost_kib < 8 * c.cost.parallelism)
        return st_err_set(err, -EINVAL, "invalid argon2id cost t=%u m=%u KiB p=%u", c.cost.t_cost,
                          c.cost.m_cost_kib, c.cost.parallelism);
    if (c.max_failures == 0)
        c.max_failures = 5;
    if (c.failure_window_s == 0)
        c.failure_window_s = 300;
    if (c.max_failures_per_peer == 0)
        c.max_failures_per_peer = 20;

    struct st_identity *id = st_new0(struct st_identity, 1);
    id->kv = kv;
    id->cfg = c;
    id->policy = st_policy_new();
    id->cache = st_token_cache_new();
    id->user_failures =
        st_ratelimit_new(RATELIMIT_SLOTS, c.max_failures, (int64_t)c.failure_window_s * 1000);
    id->peer_failures = st_ratelimit_new(RATELIMIT_SLOTS, c.max_failures_per_peer,
                                         (int64_t)c.failure_window_s * 1000);
    pthread_mutex_init(&id->cascade_lock, NULL);
    pthread_mutex_init(&id->roles_lock, NULL);
    id->now_ms = wall_clock;

    /* Made now rather than at the first unknown user, so that every failed
     * login costs the same. */
    int r = make_dummy_hash(id, err);
    if (r == 0)
        r = ensure_default_domain(id, err);
    /* The roles are read at some revision; the watch goes on from there, so
     * no role change (nor revocation) through another controller is missed
     * from now on. */
    int64_t rev = 0;
    if (r == 0)
        r = st_identity_roles_reload(id, &rev, err);
    if (r == 0)
        r = st_identity_watch_start(id, rev, err);
    if (r < 0) {
        st_identity_free(id);
        return st_err_prefix(err, r, "opening the identity service");
    }
    *ret = id;
    return 0;
}

void st_identity_free(struct st_identity *id)
{
    if (!id)
        return;
    st_identity_watch_stop(id);
    st_policy_free(id->policy);
    st_token_cache_free(id->cache);
    st_ratelimit_free(id->user_failures);
    st_ratelimit_free(id->peer_failures);
    pthread_mutex_destroy(&id->cascade_lock);
    pthread_mutex_destroy(&id->roles_lock);
    free(id->dummy_hash);
    free(id);
}

struct st_policy *st_identity_policy(struct st_identity *id)
{
    return id->policy;
}

struct st_kv *st_identity_kv(struct st_identity *id)
{
    return id->kv;
}

int st_identity_delete_record(struct st_identity *id, const char *kind, const char *what,
                              const char *rec_id, struct st_err **err)
{
    st_autoptr(st_err) local = NULL;
    int r = st_idrec_delete(id->kv, kind, rec_id, &local);
    if (r == -ENOENT)
        return st_err_set(err, r, "Could not find %s: %s.", what, rec_id);
    if (r < 0)
        return st_err_set(err, r, "deleting %s %s: %s", what, rec_id, st_err_msg(local));
    return 0;
}
