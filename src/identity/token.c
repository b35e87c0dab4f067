/* Tokens: the secret handed to a client is 32 random bytes (base64url, 43
 * characters); only its SHA-256 is kept, so a copy of the store does not
 * hold usable tokens. A token is
 *   /identity/tokens/<sha256 hex>      {user, project, roles, issued_at,
 *                                       expires_at, audit_id}
 *   /identity/user-tokens/<user>/<sha256 hex>   its expiry (ms), so that all
 *                                       of a user's tokens can be revoked.
 *
 * Every API request validates a token, so validation is O(1) and mostly
 * in memory: a direct-mapped cache of CACHE_SLOTS entries keyed by the hash,
 * locked in stripes so that worker threads rarely meet. A miss reads the
 * store and fills the slot. Revocation deletes from the store, then bumps a
 * revocation epoch and clears the slots concerned; a miss only fills its
 * slot if no revocation happened since it started reading, so a token being
 * revoked cannot be put back into the cache by a concurrent validation.
 * A revocation through another controller reaches this cache the same way,
 * through the identity watch (watch.c) that sees the token's key deleted;
 * while that watch fails, the cache is not consulted.
 * Expired tokens are deleted when met (validation, and a sweep of the
 * user's tokens at every SWEEP_EVERY-th issue). */
#include "identity-priv.h"

#include <errno.h>
#include <openssl/sha.h>
#include <stdatomic.h>
#include <string.h>

#include "identity/records.h"
#include "lib/json.h"
#include "lib/log.h"
#include "lib/uuid.h"
#include "store/kv.h"

#define CACHE_SLOTS   4096 /* a power of two; the index is the hash's first 12 bits */
#define CACHE_STRIPES 64
#define SECRET_BYTES  32
#define SECRET_LEN    43 /* base64url of 32 bytes, no padding */
#define SECRET_MAX    512
#define HASH_HEX_LEN  (2 * SHA256_DIGEST_LENGTH + 1)
#define SWEEP_EVERY   16

#define USER_TOKENS_PREFIX "/identity/user-tokens/"

static const char *const auth_failed = "The request you have made requires authentication.";

struct cache_slot {
    char hash[HASH_HEX_LEN];
    struct st_token *token; /* owned; NULL when empty */
};

struct token_cache {
    pthread_mutex_t locks[CACHE_STRIPES];
    struct cache_slot slots[CACHE_SLOTS];
    atomic_uint_fast64_t epoch;
    atomic_uint sweep_counter;
};

void st_token_free(struct st_token *t)
{
    if (!t)
        return;
    free(t->hash);
    free(t->user_id);
    free(t->user_name);
    free(t->user_domain_id);
    free(t->project_id);
    free(t->project_name);
    free(t->project_domain_id);
    for (size_t i = 0; i < t->n_roles; i++) {
        free(t->role_ids[i]);
        free(t->role_names[i]);
    }
    free(t->role_ids);
    free(t->role_names);
    free(t->audit_id);
    free(t);
}

static struct st_token *token_dup(const struct st_token *t)
{
    struct st_token *c = st_new0(struct st_token, 1);
    c->hash = st_strdup(t->hash);
    c->user_id = st_strdup(t->user_id);
    c->user_name = st_strdup(t->user_name);
    c->user_domain_id = st_strdup(t->user_domain_id);
    c->project_id = st_strdup(t->project_id);
    c->project_name = st_strdup(t->project_name);
    c->project_domain_id = st_strdup(t->project_domain_id);
    c->n_roles = t->n_roles;
    c->role_ids = st_new0(char *, t->n_roles);
    c->role_names = st_new0(char *, t->n_roles);
    for (size_t i = 0; i < t->n_roles; i++) {
        c->role_ids[i] = st_strdup(t->role_ids[i]);
        c->role_names[i] = st_strdup(t->role_names[i]);
    }
    c->issued_at_ms = t->issued_at_ms;
    c->expires_at_ms = t->expires_at_ms;
    c->audit_id = st_strdup(t->audit_id);
    return c;
}

void st_token_subject(const struct st_token *t, struct st_policy_subject *ret)
{
    *ret = (struct st_policy_subject){
        .user_id = t->user_id,
        .project_id = t->project_id,
        .roles = (const char *const *)t->role_names,
        .n_roles = t->n_roles,
    };
}

struct token_cache *st_token_cache_new(void)
{
    struct token_cache *c = st_new0(struct token_cache, 1);
    for (size_t i = 0; i < CACHE_STRIPES; i++)
        pthread_mutex_init(&c->locks[i], NULL);
    atomic_init(&c->epoch, 0);
    atomic_init(&c->sweep_counter, 0);
    return c;
}

void st_token_cache_free(struct token_cache *c)
{
    if (!c)
        return;
    for (size_t i = 0; i < CACHE_SLOTS; i++)
        st_token_free(c->slots[i].token);
    for (size_t i = 0; i < CACHE_STRIPES; i++)
        pthread_mutex_destroy(&c->locks[i]);
    free(c);
}

static size_t slot_index(const char *hash)
{
    size_t v = 0;
    for (int i = 0; i < 3; i++) {
        char ch = hash[i];
        v = v * 16 + (size_t)(ch <= '9' ? ch - '0' : ch - 'a' + 10);
    }
    return v & (CACHE_SLOTS - 1);
}

static pthread_mutex_t *slot_lock(struct token_cache *c, size_t index)
{
    return &c->locks[index % CACHE_STRIPES];
}

void st_token_cache_clear(struct token_cache *c)
{
    atomic_fetch_add(&c->epoch, 1);
    for (size_t i = 0; i < CACHE_SLOTS; i++) {
        pthread_mutex_lock(slot_lock(c, i));
        st_token_free(c->slots[i].token);
        c->slots[i].token = NULL;
        c->slots[i].hash[0] = '\0';
        pthread_mutex_unlock(slot_lock(c, i));
    }
}

/* Drops hash from the cache (after its revocation or expiry). */
static void cache_forget(struct token_cache *c, const char *hash)
{
    size_t i = slot_index(hash);
    pthread_mutex_lock(slot_lock(c, i));
    struct cache_slot *s = &c->slots[i];
    if (s->token && strcmp(s->hash, hash) == 0) {
        st_token_free(s->token);
        s->token = NULL;
        s->hash[0] = '\0';
    }
    pthread_mutex_unlock(slot_lock(c, i));
}

void st_token_cache_forget(struct token_cache *c, const char *hash)
{
    atomic_fetch_add(&c->epoch, 1);
    cache_forget(c, hash);
}

/* Puts t (a copy) into its slot, unless a revocation happened since epoch. */
static void cache_fill(struct token_cache *c, const struct st_token *t, uint64_t epoch)
{
    size_t i = slot_index(t->hash);
    struct st_token *copy = token_dup(t);
    pthread_mutex_lock(slot_lock(c, i));
    if (atomic_load(&c->epoch) == epoch) {
        struct cache_slot *s = &c->slots[i];
        st_token_free(s->token);
        s->token = copy;
        copy = NULL;
        strcpy(s->hash, t->hash);
    }
    pthread_mutex_unlock(slot_lock(c, i));
    st_token_free(copy);
}

enum cache_answer { CACHE_MISS, CACHE_HIT, CACHE_EXPIRED };

static enum cache_answer cache_lookup(struct token_cache *c, const char *hash, int64_t now_ms,
                                      struct st_token **ret)
{
    size_t i = slot_index(hash);
    enum cache_answer a = CACHE_MISS;
    pthread_mutex_lock(slot_lock(c, i));
    struct cache_slot *s = &c->slots[i];
    if (s->token && strcmp(s->hash, hash) == 0) {
        if (now_ms < s->token->expires_at_ms) {
            *ret = token_dup(s->token);
            a = CACHE_HIT;
        } else {
            st_token_free(s->token);
            s->token = NULL;
            s->hash[0] = '\0';
            a = CACHE_EXPIRED;
        }
    }
    pthread_mutex_unlock(slot_lock(c, i));
    return a;
}

static void hash_secret(const char *secret, char out[HASH_HEX_LEN])
{
    unsigned char md[SHA256_DIGEST_LENGTH];
    SHA256((const unsigned char *)secret, strlen(secret), md);
    st_hex_encode(md, sizeof(md), out);
}

static char *token_key(const char *hash)
{
    return st_sprintf(ST_IDENTITY_TOKENS_PREFIX "%s", hash);
}

static char *user_token_key(const char *user_id, const char *hash)
{
    return st_sprintf(USER_TOKENS_PREFIX "%s/%s", user_id, hash);
}

static char *dup_member(json_t *obj, const char *key)
{
    return st_strdup(json_string_value(json_object_get(obj, key)));
}

static int token_from_json(const char *hash, json_t *doc, struct st_token **ret,
                           struct st_err **err)
{
    json_t *user = json_object_get(doc, "user"), *project = json_object_get(doc, "project");
    json_t *roles = json_object_get(doc, "roles");
    if (!json_is_object(user) || !json_is_string(json_object_get(user, "id")) ||
        !json_is_array(roles) || !json_is_integer(json_object_get(doc, "expires_at")))
        return st_err_set(err, -EINVAL, "token record %.8s... is malformed", hash);
    st_autoptr(st_token) t = st_new0(struct st_token, 1);
    t->hash = st_strdup(hash);
    t->user_id = dup_member(user, "id");
    t->user_name = dup_member(user, "name");
    t->user_domain_id = dup_member(user, "domain_id");
    if (json_is_object(project)) {
        t->project_id = dup_member(project, "id");
        t->project_name = dup_member(project, "name");
        t->project_domain_id = dup_member(project, "domain_id");
    }
    t->n_roles = json_array_size(roles);
    t->role_ids = st_new0(char *, t->n_roles);
    t->role_names = st_new0(char *, t->n_roles);
    for (size_t i = 0; i < t->n_roles; i++) {
        json_t *role = json_array_get(roles, i);
        t->role_ids[i] = st_strdup(json_string_value(json_object_get(role, "id")) ?: "");
        t->role_names[i] = st_strdup(json_string_value(json_object_get(role, "name")) ?: "");
    }
    t->issued_at_ms = json_integer_value(json_object_get(doc, "issued_at"));
    t->expires_at_ms = json_integer_value(json_object_get(doc, "expires_at"));
    t->audit_id = dup_member(doc, "audit_id");
    *ret = st_steal(&t);
    return 0;
}

/* Deletes a token's two keys (either may be gone already). */
static int delete_token(struct st_identity *id, const char *user_id, const char *hash,
                        struct st_err **err)
{
    st_autofree char *key = token_key(hash);
    st_autoptr(st_err) local = NULL;
    int r = st_kv_delete(id->kv, key, ST_KV_ANY, NULL, &local);
    if (r < 0 && r != -ENOENT)
        return st_err_set(err, r, "deleting token %.8s...: %s", hash, st_err_msg(local));
    if (user_id) {
        st_autofree char *ikey = user_token_key(user_id, hash);
        st_err_clear(&local);
        r = st_kv_delete(id->kv, ikey, ST_KV_ANY, NULL, &local);
        if (r < 0 && r != -ENOENT)
            return st_err_set(err, r, "deleting token %.8s...: %s", hash, st_err_msg(local));
    }
    return 0;
}

/* Calls fn for every token of a user, with the expiry the index records. */
static int for_each_user_token(struct st_identity *id, const char *user_id,
                               int (*fn)(struct st_identity *id, const char *user_id,
                                         const char *hash, int64_t expires_at_ms,
                                         struct st_err **err),
                               struct st_err **err)
{
    st_autofree char *prefix = st_sprintf(USER_TOKENS_PREFIX "%s/", user_id);
    size_t plen = strlen(prefix);
    st_autofree char *last = NULL;
    for (;;) {
        st_autoptr(st_kv_list) page = NULL;
        int r = st_kv_list(id->kv, prefix, last, 1000, &page, err);
        if (r < 0)
            return st_err_prefix(err, r, "listing the tokens of user %s", user_id);
        for (size_t i = 0; i < page->count; i++) {
            const struct st_kv_entry *e = &page->entries[i];
            r = fn(id, user_id, e->key + plen, strtoll(e->value, NULL, 10), err);
            if (r < 0)
                return r;
        }
        if (!page->more || page->count == 0)
            return 0;
        free(last);
        last = st_strdup(page->entries[page->count - 1].key);
    }
}

static int revoke_one(struct st_identity *id, const char *user_id, const char *hash,
                      int64_t expires_at_ms, struct st_err **err)
{
    (void)expires_at_ms;
    int r = delete_token(id, user_id, hash, err);
    st_token_cache_forget(id->cache, hash);
    return r;
}

static int sweep_one(struct st_identity *id, const char *user_id, const char *hash,
                     int64_t expires_at_ms, struct st_err **err)
{
    (void)err;
    if (expires_at_ms <= st_identity_now_ms(id))
        delete_token(id, user_id, hash, NULL); /* best effort */
    return 0;
}

/* After writing a token: its index is still there (no revocation removed
 * it) and the user is as authenticated: present, enabled, same password.
 * 0 when so, -EACCES when not, another error when the store cannot tell. */
static int still_valid(struct st_identity *id, const char *ikey, json_t *user, struct st_err **err)
{
    st_autoptr(st_kv_entry) index = NULL;
    st_autoptr(st_err) local = NULL;
    int r = st_kv_get(id->kv, ikey, &index, &local);
    if (r == -ENOENT)
        return -EACCES;
    if (r < 0)
        return st_err_set(err, r, "checking the new token: %s", st_err_msg(local));
    const char *user_id = json_string_value(json_object_get(user, "id"));
    st_autoptr(json_t) now = NULL;
    st_err_clear(&local);
    r = st_idrec_get(id->kv, "users", user_id, &now, NULL, &local);
    if (r == -ENOENT)
        return -EACCES;
    if (r < 0)
        return st_err_set(err, r, "checking the new token's user %s: %s", user_id,
                          local ? st_err_msg(local) : "failed");
    json_t *hash = json_object_get(now, "password_hash");
    bool same = json_is_true(json_object_get(now, "enabled")) &&
                json_equal(hash, json_object_get(user, "password_hash"));
    return same ? 0 : -EACCES;
}

int st_identity_token_issue(struct st_identity *id, json_t *user, json_t *project, json_t *roles,
                            char **ret_secret, struct st_token **ret, struct st_err **err)
{
    uint8_t raw[SECRET_BYTES], audit_raw[16];
    char secret[SECRET_LEN + 2], hash[HASH_HEX_LEN], audit[32];
    st_random_bytes(raw, sizeof(raw));
    st_identity_b64url(raw, sizeof(raw), secret);
    st_random_bytes(audit_raw, sizeof(audit_raw));
    st_identity_b64url(audit_raw, sizeof(audit_raw), audit);
    hash_secret(secret, hash);

    const char *user_id = json_string_value(json_object_get(user, "id"));
    uint64_t epoch = atomic_load(&id->cache->epoch);
    int64_t now = st_identity_now_ms(id);
    int64_t expires = now + id->cfg.token_ttl_s * 1000;
    st_autoptr(json_t) doc = json_pack(
        "{s:{s:s, s:s, s:s}, s:n, s:O, s:I, s:I, s:s}", "user", "id", user_id, "name",
        json_string_value(json_object_get(user, "name")), "domain_id",
        json_string_value(json_object_get(user, "domain_id")), "project", "roles", roles,
        "issued_at", (json_int_t)now, "expires_at", (json_int_t)expires, "audit_id", audit);
    if (!doc)
        return st_err_set(err, -EINVAL, "cannot issue a token for a malformed user record");
    if (project)
        json_object_set_new(
            doc, "project",
            json_pack("{s:s?, s:s?, s:s?}", "id", json_string_value(json_object_get(project, "id")),
                      "name", json_string_value(json_object_get(project, "name")), "domain_id",
                      json_string_value(json_object_get(project, "domain_id"))));

    /* The index first. A revocation of the user (which follows the change
     * of their record that caused it) then either lists the index and
     * deletes the token, which the index check below notices, or listed
     * before the index was written, and then the user record read after
     * shows the change. */
    st_autofree char *ikey = user_token_key(user_id, hash);
    st_autofree char *key = token_key(hash);
    st_autofree char *expiry = st_sprintf("%lld", (long long)expires);
    int r = st_kv_put(id->kv, ikey, expiry, strlen(expiry), ST_KV_ANY, NULL, err);
    if (r < 0)
        return st_err_prefix(err, r, "issuing a token");
    st_autofree char *value = st_json_dumps(doc);
    r = st_kv_put(id->kv, key, value, strlen(value), ST_KV_ABSENT, NULL, err);
    if (r < 0) {
        delete_token(id, user_id, hash, NULL);
        return st_err_prefix(err, r, "issuing a token");
    }
    r = still_valid(id, ikey, user, err);
    if (r < 0) {
        delete_token(id, user_id, hash, NULL);
        return r == -EACCES ? st_err_set(err, r, "%s", auth_failed)
                            : st_err_prefix(err, r, "issuing a token");
    }

    st_autoptr(st_token) t = NULL;
    r = token_from_json(hash, doc, &t, err);
    if (r < 0)
        return r;
    cache_fill(id->cache, t, epoch);
    if (atomic_fetch_add(&id->cache->sweep_counter, 1) % SWEEP_EVERY == SWEEP_EVERY - 1)
        for_each_user_token(id, user_id, sweep_one, NULL);
    st_log_info("token_issued", "user_id=%s project_id=%s audit_id=%s", user_id,
                t->project_id ? t->project_id : "-", audit);
    *ret_secret = st_strdup(secret);
    *ret = st_steal(&t);
    return 0;
}

int st_identity_validate(struct st_identity *id, const char *secret, struct st_token **ret,
                         struct st_err **err)
{
    size_t len = secret ? strlen(secret) : 0;
    if (len == 0 || len > SECRET_MAX)
        return st_err_set(err, -EACCES, "%s", auth_failed);
    char hash[HASH_HEX_LEN];
    hash_secret(secret, hash);
    int64_t now = st_identity_now_ms(id);

    /* The cache misses the revocations made through other controllers
     * while the watch is failing: then only the store answers. */
    if (__atomic_load_n(&id->watch_in_sync, __ATOMIC_ACQUIRE) &&
        cache_lookup(id->cache, hash, now, ret) == CACHE_HIT)
        return 0;
    uint64_t epoch = atomic_load(&id->cache->epoch);
    st_autofree char *key = token_key(hash);
    st_autoptr(st_kv_entry) e = NULL;
    st_autoptr(st_err) local = NULL;
    int r = st_kv_get(id->kv, key, &e, &local);
    if (r == -ENOENT)
        return st_err_set(err, -EACCES, "%s", auth_failed);
    if (r < 0)
        return st_err_set(err, r, "reading token %.8s...: %s", hash, st_err_msg(local));
    st_autoptr(json_t) doc = NULL;
    st_autoptr(st_token) t = NULL;
    r = st_json_parse_object(e->value, e->value_len, &doc, err);
    if (r == 0)
        r = token_from_json(hash, doc, &t, err);
    if (r < 0)
        return st_err_prefix(err, r, "reading token %.8s...", hash);
    if (now >= t->expires_at_ms) {
        delete_token(id, t->user_id, hash, NULL);
        return st_err_set(err, -EACCES, "%s", auth_failed);
    }
    cache_fill(id->cache, t, epoch);
    *ret = st_steal(&t);
    return 0;
}

int st_identity_revoke(struct st_identity *id, const char *secret, struct st_err **err)
{
    size_t len = secret ? strlen(secret) : 0;
    if (len == 0 || len > SECRET_MAX)
        return st_err_set(err, -ENOENT, "Could not find token.");
    char hash[HASH_HEX_LEN];
    hash_secret(secret, hash);
    st_autofree char *key = token_key(hash);
    st_autoptr(st_kv_entry) e = NULL;
    st_autoptr(st_err) local = NULL;
    int r = st_kv_get(id->kv, key, &e, &local);
    if (r == -ENOENT)
        return st_err_set(err, -ENOENT, "Could not find token.");
    if (r < 0)
        return st_err_set(err, r, "reading token %.8s...: %s", hash, st_err_msg(local));
    st_autoptr(json_t) doc = NULL;
    const char *user_id = NULL;
    if (st_json_parse_object(e->value, e->value_len, &doc, NULL) == 0)
        user_id = json_string_value(json_object_get(json_object_get(doc, "user"), "id"));
    r = revoke_one(id, user_id, hash, 0, err);
    if (r == 0)
        st_log_info("token_revoked", "user_id=%s", user_id ? user_id : "-");
    return r;
}

int st_identity_revoke_user(struct st_identity *id, const char *user_id, struct st_err **err)
{
    if (!user_id || !user_id[0] || strchr(user_id, '/'))
        return 0;
    int r = for_each_user_token(id, user_id, revoke_one, err);
    if (r == 0)
        st_log_info("tokens_revoked", "user_id=%s", user_id);
    return r;
}
