/* What the identity service's files share and nothing else may use (tests
 * aside): the context, the token cache and rate limiter it holds, the store
 * watch that keeps them in step with other controllers, the clock seam that
 * lets tests expire tokens without sleeping, and helpers for the
 * Keystone-worded errors every record kind answers with. */
#pragma once

#include <pthread.h>
#include <stdint.h>

#include "identity/identity.h"
#include "identity/ratelimit.h"

struct token_cache;

struct st_identity {
    struct st_kv *kv;
    struct st_identity_config cfg; /* with defaults filled in */
    struct st_policy *policy;
    struct token_cache *cache;
    struct st_ratelimit *user_failures;
    struct st_ratelimit *peer_failures;

    /* Serialises the writes that touch several keys of related records
     * (grants against the deletion of their user, project or role), so a
     * grant never outlives what it names within one controller. */
    pthread_mutex_t cascade_lock;

    /* Serialises reloads of the custom roles' rules (each one reads every
     * role and replaces them all), so that an older read is never applied
     * over a newer one. */
    pthread_mutex_t roles_lock;

    /* The store watch (watch.c): one thread that forgets the tokens deleted
     * through any controller and reloads the roles when one changes.
     * watch_in_sync (atomic) is false while the watch fails: the token cache
     * may then miss revocations and is not trusted. */
    pthread_t watcher;
    bool watching;
    bool watch_stop;    /* atomic */
    bool watch_in_sync; /* atomic */
    int64_t watch_rev;  /* where the watch starts, and where it stopped */

    /* A hash of a password nobody knows, verified when the user is unknown
     * so that a failed login costs the same whether the user exists. */
    char *dummy_hash;

    int64_t (*now_ms)(void *data);
    void *now_data;
};

/* The identity service's clock (wall-clock ms); tests move it forward. */
int64_t st_identity_now_ms(struct st_identity *id);
/* Replaces the clock (NULL restores the wall clock). For tests only. */
void st_identity_set_clock(struct st_identity *id, int64_t (*now_ms)(void *data), void *data);

/* The RFC 3339 form of now, for created_at. */
void st_identity_timestamp(struct st_identity *id, char buf[32]);

/* Reads a record by id with Keystone's "Could not find <what>: <id>." on
 * -ENOENT. kind is the records.h kind ("projects"), what its singular. */
int st_identity_get_record(struct st_identity *id, const char *kind, const char *what,
                           const char *rec_id, json_t **ret, int64_t *ret_rev, struct st_err **err);

/* Deletes a record with Keystone's "Could not find <what>: <id>." on
 * -ENOENT. The caller holds cascade_lock and purges what referred to it. */
int st_identity_delete_record(struct st_identity *id, const char *kind, const char *what,
                              const char *rec_id, struct st_err **err);

/* Keystone's 409 wording: "Conflict occurred attempting to store project -
 * Duplicate entry found with name proj-a at domain ID default." */
int st_identity_err_duplicate(struct st_err **err, const char *what, const char *name,
                              const char *domain_id);

/* Records of a kind matching an exact name and domain (either NULL = any),
 * as a new JSON array. */
int st_identity_list_filtered(struct st_identity *id, const char *kind, const char *name,
                              const char *domain_id, json_t **ret, struct st_err **err);

/* A copy of a user record without its password hash. */
json_t *st_identity_user_public(json_t *user);

/* Checks that domain_id names an existing, known domain (-EINVAL if not). */
int st_identity_check_domain(struct st_identity *id, const char *domain_id, struct st_err **err);

/* Grants of a user on a project: the role ids (new JSON array of strings). */
int st_identity_grant_roles(struct st_identity *id, const char *project_id, const char *user_id,
                            json_t **ret, struct st_err **err);
/* Removes every grant matching the filters (project or user or role, at
 * least one non-NULL) and revokes the tokens of the users concerned. The
 * caller holds cascade_lock. */
int st_identity_grant_purge(struct st_identity *id, const char *project_id, const char *user_id,
                            const char *role_id, struct st_err **err);

/* Issues a token for a user (record) on a project (record or NULL) with
 * the given roles ({id, name} array): writes it, caches it, returns the
 * secret. */
int st_identity_token_issue(struct st_identity *id, json_t *user, json_t *project, json_t *roles,
                            char **ret_secret, struct st_token **ret, struct st_err **err);

/* The token cache: created at st_identity_new, freed with it. */
struct token_cache *st_token_cache_new(void);
void st_token_cache_free(struct token_cache *c);
/* Empties the cache (benchmarks of the uncached path, tests, and the watch
 * when it may have missed revocations); validations that began before it
 * do not fill it. */
void st_token_cache_clear(struct token_cache *c);
/* Forgets one token (its hash) deleted through any controller; a
 * validation that began before does not put it back. */
void st_token_cache_forget(struct token_cache *c, const char *hash);

/* The store keys of tokens: TOKENS_PREFIX + the hex SHA-256 of the secret. */
#define ST_IDENTITY_TOKENS_PREFIX "/identity/tokens/"
#define ST_IDENTITY_ROLES_PREFIX  "/identity/roles/"
/* Every identity key starts with this (the watch's prefix). */
#define ST_IDENTITY_PREFIX "/identity/"

/* Reads every role record and gives the policy engine the custom roles'
 * rules in one step. *ret_rev (optional) receives the store revision the
 * roles were read at: a watch from it misses no later change. */
int st_identity_roles_reload(struct st_identity *id, int64_t *ret_rev, struct st_err **err);

/* Starts the watch from revision rev (st_identity_new does; a restart
 * after st_identity_watch_stop goes on from id->watch_rev). The cache is
 * trusted from the first poll that caught up. */
int st_identity_watch_start(struct st_identity *id, int64_t rev, struct st_err **err);

/* The password hash of nobody, made by st_identity_new. */
const char *st_identity_dummy_hash(struct st_identity *id);

/* base64url without padding of n bytes into out (4 * ceil(n / 3) + 1 bytes
 * is enough). */
void st_identity_b64url(const void *buf, size_t n, char *out);
