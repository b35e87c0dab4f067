/* The identity service: domains, projects, users, roles, role assignments
 * (grants) and tokens, kept in the store; authentication (argon2id
 * passwords, rate-limited failures) and token validation (SHA-256 of the
 * token looked up in an in-memory cache, then the store). Several instances
 * may serve one store: each watches it for revocations and role changes.
 * A store failure is reported as such (the API answers 503), never as a
 * failed authentication. It knows no HTTP:
 * the Keystone API (api/keystone.c) renders what it returns.
 *
 * Records are JSON documents in their internal shape:
 *   domain  {id, name, description, enabled}
 *   project {id, name, domain_id, description, enabled, tags, options, created_at}
 *   user    {id, name, domain_id, enabled, default_project_id, options,
 *            password_hash (never leaves this module), created_at}
 *   role    {id, name, domain_id: null, description, rules?: {allow, deny, all_projects}}
 * Ids are 32 hex digits, as Keystone's. The domain "default" (name
 * "Default") always exists after bootstrap. */
#pragma once

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "identity/password.h"
#include "identity/policy.h"
#include "lib/cleanup.h"
#include "lib/err.h"

struct st_kv;
struct st_identity;

#define ST_IDENTITY_DEFAULT_DOMAIN_ID   "default"
#define ST_IDENTITY_DEFAULT_DOMAIN_NAME "Default"
#define ST_IDENTITY_TOKEN_TTL_DEFAULT   (12 * 3600)

struct st_identity_config {
    int64_t token_ttl_s;            /* 0 = ST_IDENTITY_TOKEN_TTL_DEFAULT */
    struct st_password_cost cost;   /* zero = ST_PASSWORD_COST_DEFAULT */
    unsigned max_failures;          /* per user and per source in the window; 0 = 5 */
    unsigned failure_window_s;      /* 0 = 300 */
    unsigned max_failures_per_peer; /* 0 = 20 */
};

/* Opens the identity service over kv and starts its store watch: one
 * thread that keeps this instance in step with every other on the same
 * store (other controllers on one etcd): a token revoked through any of
 * them is forgotten by this one's cache, and a role's rules changed through
 * any of them are enforced here, within moments. */
int st_identity_new(struct st_kv *kv, const struct st_identity_config *cfg,
                    struct st_identity **ret, struct st_err **err);
/* Stops the store watch (its thread ends within a fifth of a second); for the
 * daemon's shutdown, before the store is woken and closed. Idempotent;
 * st_identity_free does it too. */
void st_identity_watch_stop(struct st_identity *id);
void st_identity_free(struct st_identity *id);
ST_DEFINE_AUTOPTR(st_identity, st_identity_free)

struct st_policy *st_identity_policy(struct st_identity *id);
struct st_kv *st_identity_kv(struct st_identity *id);

/* ---- bootstrap ---- */

/* Creates what a new cloud needs, leaving what exists: the Default domain;
 * roles admin, member, reader; project "admin"; user "admin" with the admin
 * role on it. *ret_password receives the admin password when the user was
 * created now (NULL when it existed). */
int st_identity_bootstrap(struct st_identity *id, char **ret_password, struct st_err **err);

/* ---- tokens ---- */

struct st_token {
    char *hash; /* hex SHA-256 of the secret: the store key, never the secret */
    char *user_id;
    char *user_name;
    char *user_domain_id;
    char *project_id; /* NULL when unscoped */
    char *project_name;
    char *project_domain_id;
    char **role_ids;
    char **role_names;
    size_t n_roles;
    int64_t issued_at_ms;
    int64_t expires_at_ms;
    char *audit_id;
};
void st_token_free(struct st_token *t);
ST_DEFINE_AUTOPTR(st_token, st_token_free)

/* The subject a policy check needs (borrowing from t). */
void st_token_subject(const struct st_token *t, struct st_policy_subject *ret);

/* What a password login names: the user by id, or by name within a domain
 * (by id or name); the scope by project id, or project name within a domain,
 * or none (unscoped). */
struct st_auth_request {
    const char *user_id;
    const char *user_name;
    const char *user_domain_id;
    const char *user_domain_name;
    const char *password;
    const char *project_id;
    const char *project_name;
    const char *project_domain_id;
    const char *project_domain_name;
    const char *peer; /* the client's address, for rate limiting */
};

/* Authenticates and issues a token: *ret_secret is the token to hand to the
 * client (only ever returned here), *ret the token. -EACCES for any failed
 * authentication (unknown user, wrong password, disabled, no role on the
 * project) with a message that does not tell which; -EBUSY when the user or
 * the source is rate-limited. */
int st_identity_authenticate(struct st_identity *id, const struct st_auth_request *req,
                             char **ret_secret, struct st_token **ret, struct st_err **err);

/* Validates a token secret: -EACCES when unknown, expired or revoked. */
int st_identity_validate(struct st_identity *id, const char *secret, struct st_token **ret,
                         struct st_err **err);

/* Revokes one token (by secret); -ENOENT when unknown. */
int st_identity_revoke(struct st_identity *id, const char *secret, struct st_err **err);

/* Revokes every token of a user (on delete, disable, password change,
 * role removal). */
int st_identity_revoke_user(struct st_identity *id, const char *user_id, struct st_err **err);

/* ---- domains, projects, users, roles ---- */

/* Lookups by id, -ENOENT when absent. */
int st_identity_domain_get(struct st_identity *id, const char *domain_id, json_t **ret,
                           struct st_err **err);
int st_identity_domain_find(struct st_identity *id, const char *name, json_t **ret,
                            struct st_err **err);
int st_identity_domain_list(struct st_identity *id, const char *name, json_t **ret,
                            struct st_err **err);

/* req: {name, description?, enabled?, domain_id?, tags?, options?}. */
int st_identity_project_create(struct st_identity *id, json_t *req, json_t **ret,
                               struct st_err **err);
int st_identity_project_get(struct st_identity *id, const char *project_id, json_t **ret,
                            struct st_err **err);
int st_identity_project_find(struct st_identity *id, const char *domain_id, const char *name,
                             json_t **ret, struct st_err **err);
/* Filters may be NULL: exact name, domain_id. */
int st_identity_project_list(struct st_identity *id, const char *name, const char *domain_id,
                             json_t **ret, struct st_err **err);
/* patch: {name?, description?, enabled?, tags?, options?}. */
int st_identity_project_update(struct st_identity *id, const char *project_id, json_t *patch,
                               json_t **ret, struct st_err **err);
int st_identity_project_delete(struct st_identity *id, const char *project_id, struct st_err **err);

/* req: {name, password?, enabled?, domain_id?, default_project_id?, options?}. */
int st_identity_user_create(struct st_identity *id, json_t *req, json_t **ret, struct st_err **err);
int st_identity_user_get(struct st_identity *id, const char *user_id, json_t **ret,
                         struct st_err **err);
int st_identity_user_find(struct st_identity *id, const char *domain_id, const char *name,
                          json_t **ret, struct st_err **err);
int st_identity_user_list(struct st_identity *id, const char *name, const char *domain_id,
                          json_t **ret, struct st_err **err);
/* patch: {name?, password?, enabled?, default_project_id?, options?}. */
int st_identity_user_update(struct st_identity *id, const char *user_id, json_t *patch,
                            json_t **ret, struct st_err **err);
int st_identity_user_delete(struct st_identity *id, const char *user_id, struct st_err **err);

/* req: {name, description?, rules?: {allow: [...], deny: [...], all_projects}}. */
int st_identity_role_create(struct st_identity *id, json_t *req, json_t **ret, struct st_err **err);
int st_identity_role_get(struct st_identity *id, const char *role_id, json_t **ret,
                         struct st_err **err);
int st_identity_role_find(struct st_identity *id, const char *name, json_t **ret,
                          struct st_err **err);
int st_identity_role_list(struct st_identity *id, const char *name, json_t **ret,
                          struct st_err **err);
int st_identity_role_update(struct st_identity *id, const char *role_id, json_t *patch,
                            json_t **ret, struct st_err **err);
int st_identity_role_delete(struct st_identity *id, const char *role_id, struct st_err **err);

/* ---- grants: a user holds a role on a project ---- */

/* -ENOENT when the project, user or role does not exist. */
int st_identity_grant_add(struct st_identity *id, const char *project_id, const char *user_id,
                          const char *role_id, struct st_err **err);
/* 0 when granted, -ENOENT otherwise. */
int st_identity_grant_check(struct st_identity *id, const char *project_id, const char *user_id,
                            const char *role_id, struct st_err **err);
int st_identity_grant_remove(struct st_identity *id, const char *project_id, const char *user_id,
                             const char *role_id, struct st_err **err);
/* Assignments matching the filters (NULL = any), as an array of
 * {project_id, user_id, role_id}. */
int st_identity_grant_list(struct st_identity *id, const char *project_id, const char *user_id,
                           const char *role_id, json_t **ret, struct st_err **err);
