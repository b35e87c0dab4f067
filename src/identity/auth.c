/* Password authentication: finds the user (by id, or by name within a
 * domain), refuses rate-limited users and sources before doing any work,
 * verifies the password with argon2id (against a dummy hash when the user
 * does not exist, so the time taken does not tell), checks that user,
 * domain and project are enabled and that the user holds a role on the
 * project, and issues the token. Every failure looks the same to the
 * caller; the reason goes to the debug log, never with the password. A
 * store that cannot answer is not a failed login: its error is returned
 * (503 at the API) and counts against no one's rate limit. */
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

/* Reads a record the login names. Absence is an answer (0, *ret NULL),
 * which the caller turns into the one authentication failure; any other
 * failure is the store's (unreachable, say) and is returned as it is, so
 * that the client is told 503 and not that its credentials are wrong. */
static int lookup(int r, struct st_err *local, const char *what, const char *which,
                  struct st_err **err)
{
    if (r == 0 || r == -ENOENT)
        return 0;
    return st_err_set(err, r, "reading %s '%s': %s", what, which ? which : "",
                      local ? st_err_msg(local) : "failed");
}

static int get_record(struct st_identity *id, const char *kind, const char *what,
                      const char *rec_id, json_t **ret, struct st_err **err)
{
    st_autoptr(st_err) local = NULL;
    *ret = NULL;
    int r = st_idrec_get(id->kv, kind, rec_id, ret, NULL, &local);
    return lookup(r, local, what, rec_id, err);
}

static int find_record(struct st_identity *id, const char *kind, const char *what,
                       const char *domain_id, const char *name, json_t **ret, struct st_err **err)
{
    st_autoptr(st_err) local = NULL;
    *ret = NULL;
    int r = st_idrec_find(id->kv, kind, domain_id, name, ret, &local);
    return lookup(r, local, what, name, err);
}

/* The domain given by id or name (the default when neither) in
 * *ret_domain, left NULL when it does not exist or is disabled. */
static int resolve_domain(struct st_identity *id, const char *domain_id, const char *domain_name,
                          json_t **ret_domain, struct st_err **err)
{
    int r;
    if (domain_id)
        r = get_record(id, "domains", "domain", domain_id, ret_domain, err);
    else if (domain_name)
        r = find_record(id, "domains", "domain", NULL, domain_name, ret_domain, err);
    else
        r = get_record(id, "domains", "domain", ST_IDENTITY_DEFAULT_DOMAIN_ID, ret_domain, err);
    if (r < 0)
        return r;
    if (*ret_domain && !json_is_true(json_object_get(*ret_domain, "enabled"))) {
        json_decref(*ret_domain);
        *ret_domain = NULL;
    }
    return 0;
}

static const char *domain_id_of(json_t *domain)
{
    return json_string_value(json_object_get(domain, "id"));
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
        r = get_record(id, "roles", "role", json_string_value(rid), &role, err);
        if (r < 0)
            return r;
        if (!role)
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
    int r;
    if (req->user_id) {
        r = get_record(id, "users", "user", req->user_id, &user, err);
    } else {
        r = resolve_domain(id, req->user_domain_id, req->user_domain_name, &user_domain, err);
        if (r == 0 && user_domain)
            r = find_record(id, "users", "user", domain_id_of(user_domain), req->user_name, &user,
                            err);
        else if (r == 0)
            key = st_sprintf("?%s/%s",
                             req->user_domain_id     ? req->user_domain_id
                             : req->user_domain_name ? req->user_domain_name
                                                     : ST_IDENTITY_DEFAULT_DOMAIN_ID,
                             req->user_name);
    }
    /* Before any failure is counted: the store's is not the client's. */
    if (r < 0)
        return st_err_prefix(err, r, "authenticating");
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
    r = st_password_verify(hash ? hash : st_identity_dummy_hash(id), req->password, NULL);
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
        r = resolve_domain(id, domain_id ? domain_id : "", NULL, &user_domain, err);
        if (r < 0)
            return st_err_prefix(err, r, "authenticating");
        if (!user_domain)
            return fail(err, "user's domain disabled", who);
    }

    st_autoptr(json_t) project = NULL;
    st_autoptr(json_t) project_domain = NULL;
    st_autoptr(json_t) roles = NULL;
    if (req->project_id || req->project_name) {
        if (req->project_id) {
            r = get_record(id, "projects", "project", req->project_id, &project, err);
        } else {
            r = resolve_domain(id, req->project_domain_id, req->project_domain_name,
                               &project_domain, err);
            if (r == 0 && project_domain)
                r = find_record(id, "projects", "project", domain_id_of(project_domain),
                                req->project_name, &project, err);
        }
        if (r < 0)
            return st_err_prefix(err, r, "authenticating");
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
