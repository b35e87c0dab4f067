/* Password authentication: finds the user (by id, or by name within a
 * domain), refuses rate-limited users and sources before doing any work,
 * verifies the password with argon2id (against a dummy hash when the user
 * does not exist, so the time taken does not tell), checks that user,
 * domain and project are enabled and that the user holds a role on the
 * project, and issues the token. Every failure looks the same to the
 * caller; the reason goes to the debug log, never with the password. */
#include "identity-priv.h"

#include <errno.h>
#include <string.h>

#include "identity/records.h"
#include "lib/json.h"
#include "lib/log.h"

static const char *const auth_failed = "The request you have made requires authentication.";

static int fail(struct st_err **err, const char *reason, const char *who)
{
    st_log_debug("auth_failed", "reason=\"%s\" user=\"%s\"", reason, who ? who : "");
    return st_err_set(err, -EACCES, "%s", auth_failed);
}

/* The id of the domain given by id or name (the default when neither);
 * NULL when it does not exist or is disabled. */
static const char *resolve_domain(struct st_identity *id, const char *domain_id,
                                  const char *domain_name, json_t **ret_domain)
{
    int r;
    if (domain_id)
        r = st_idrec_get(id->kv, "domains", domain_id, ret_domain, NULL, NULL);
    else if (domain_name)
        r = st_idrec_find(id->kv, "domains", NULL, domain_name, ret_domain, NULL);
    else
        r = st_idrec_get(id->kv, "domains", ST_IDENTITY_DEFAULT_DOMAIN_ID, ret_domain, NULL, NULL);
    if (r < 0 || !json_is_true(json_object_get(*ret_domain, "enabled")))
        return NULL;
    return json_string_value(json_object_get(*ret_domain, "id"));
}

static int refused(struct st_err **err, int64_t retry_s)
{
    return st_err_set(err, -EBUSY, "too many failed logins, try again in %lld seconds",
                      (long long)retry_s);
}

/* The roles ({id, name}) the user holds on the project. */
static int project_roles(struct st_identity *id, const char *project_id, const char *user_id,
                         json_t **ret, struct st_err **err)
{
    st_autoptr(json_t) ids = NULL;
    int r = st_identity_grant_roles(id, project_id, user_id, &ids, err);
    if (r < 0)
        return r;
    st_autoptr(json_t) roles = json_array();
    size_t i;
    json_t *rid;
    json_array_foreach(ids, i, rid)
    {
        st_autoptr(json_t) role = NULL;
        if (st_idrec_get(id->kv, "roles", json_string_value(rid), &role, NULL, NULL) < 0)
            continue; /* deleted meanwhile */
        json_array_append_new(roles, json_pack("{s:O, s:O}", "id", json_object_get(role, "id"),
                                               "name", json_object_get(role, "name")));
    }
    *ret = st_steal(&roles);
    return 0;
}

int st_identity_authenticate(struct st_identity *id, const struct st_auth_request *req,
                             char **ret_secret, struct st_token **ret, struct st_err **err)
{
    if (!req || !req->password || (!req->user_id && !req->user_name))
        return fail(err, "no user or password", NULL);
    const char *who = req->user_id ? req->user_id : req->user_name;

    /* The user, and the key its failures are counted under: its id when it
     * exists, else what was asked for (unknown names are limited too). */
    st_autoptr(json_t) user = NULL;
    st_autoptr(json_t) user_domain = NULL;
    st_autofree char *key = NULL;
    if (req->user_id) {
        st_idrec_get(id->kv, "users", req->user_id, &user, NULL, NULL);
    } else {
        const char *domain_id =
            resolve_domain(id, req->user_domain_id, req->user_domain_name, &user_domain);
        if (domain_id)
            st_idrec_find(id->kv, "users", domain_id, req->user_name, &user, NULL);
        else
            key = st_sprintf("?%s/%s",
                             req->user_domain_id     ? req->user_domain_id
                             : req->user_domain_name ? req->user_domain_name
                                                     : ST_IDENTITY_DEFAULT_DOMAIN_ID,
                             req->user_name);
    }
    if (user)
        key = st_sprintf("user:%s", json_string_value(json_object_get(user, "id")));
    else if (!key)
        key = st_sprintf("?%s/%s", req->user_domain_id ? req->user_domain_id : "",
                         req->user_id ? req->user_id : req->user_name);

    int64_t now = st_identity_now_ms(id), retry_s = 0;
    if (req->peer && st_ratelimit_check(id->peer_failures, req->peer, now, &retry_s) < 0) {
        st_log_warn("auth_refused", "reason=peer_rate_limited peer=%s", req->peer);
        return refused(err, retry_s);
    }
    if (st_ratelimit_check(id->user_failures, key, now, &retry_s) < 0) {
        st_log_warn("auth_refused", "reason=user_rate_limited user=\"%s\"", who);
        return refused(err, retry_s);
    }

    const char *hash = json_string_value(json_object_get(user, "password_hash"));
    int r = st_password_verify(hash ? hash : st_identity_dummy_hash(id), req->password, NULL);
    if (r < 0 || !hash) {
        st_ratelimit_fail(id->user_failures, key, now);
        if (req->peer)
            st_ratelimit_fail(id->peer_failures, req->peer, now);
        return fail(err, user ? "wrong password" : "unknown user", who);
    }
    st_ratelimit_reset(id->user_failures, key);
    if (!json_is_true(json_object_get(user, "enabled")))
        return fail(err, "user disabled", who);
    if (!user_domain) {
        const char *domain_id = json_string_value(json_object_get(user, "domain_id"));
        if (!resolve_domain(id, domain_id ? domain_id : "", NULL, &user_domain))
            return fail(err, "user's domain disabled", who);
    }

    st_autoptr(json_t) project = NULL;
    st_autoptr(json_t) project_domain = NULL;
    st_autoptr(json_t) roles = NULL;
    if (req->project_id || req->project_name) {
        if (req->project_id) {
            st_idrec_get(id->kv, "projects", req->project_id, &project, NULL, NULL);
        } else {
            const char *domain_id = resolve_domain(id, req->project_domain_id,
                                                   req->project_domain_name, &project_domain);
            if (domain_id)
                st_idrec_find(id->kv, "projects", domain_id, req->project_name, &project, NULL);
        }
        if (!project)
            return fail(err, "no such project", who);
        if (!json_is_true(json_object_get(project, "enabled")))
            return fail(err, "project disabled", who);
        r = project_roles(id, json_string_value(json_object_get(project, "id")),
                          json_string_value(json_object_get(user, "id")), &roles, err);
        if (r < 0)
            return st_err_prefix(err, r, "authenticating");
        if (json_array_size(roles) == 0)
            return fail(err, "no role on project", who);
    } else {
        roles = json_array();
    }
    return st_identity_token_issue(id, user, project, roles, ret_secret, ret, err);
}
