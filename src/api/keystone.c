/* Keystone v3: the version documents and the token API (password login,
 * validation, revocation), with the service catalog built from the services
 * the API registered. The admin resources are in keystone_admin.c. */
#include "keystone.h"

#include <errno.h>
#include <string.h>

#include "api/app.h"
#include "api/auth.h"
#include "api/keystone-priv.h"
#include "api/router.h"
#include "identity/identity.h"
#include "lib/cleanup.h"
#include "lib/json.h"
#include "lib/times.h"

#define KEYSTONE_VERSION_ID      "v3.14"
#define KEYSTONE_VERSION_UPDATED "2020-04-07T00:00:00Z"

static json_t *version_doc(const struct st_api_app *app)
{
    st_autofree char *self = st_sprintf("%s/identity/v3/", app->public_url);
    return json_pack("{s:s, s:s, s:s, s:[{s:s, s:s}], s:[{s:s, s:s}]}", "id", KEYSTONE_VERSION_ID,
                     "status", "stable", "updated", KEYSTONE_VERSION_UPDATED, "links", "rel",
                     "self", "href", self, "media-types", "base", "application/json", "type",
                     "application/vnd.openstack.identity-v3+json");
}

static int get_version(struct st_http_request *req, struct st_http_response *resp,
                       struct st_err **err)
{
    (void)err;
    st_http_resp_json(resp, 200, json_pack("{s:o}", "version", version_doc(req->app)));
    return 0;
}

static int get_versions(struct st_http_request *req, struct st_http_response *resp,
                        struct st_err **err)
{
    (void)err;
    st_http_resp_json(resp, 300,
                      json_pack("{s:{s:[o]}}", "versions", "values", version_doc(req->app)));
    return 0;
}

static json_t *catalog(const struct st_api_app *app, const char *project_id)
{
    json_t *cat = json_array();
    for (size_t i = 0; i < app->n_services; i++) {
        const struct st_api_service *s = &app->services[i];
        st_autofree char *path = st_strdup(s->path);
        char *hole = strstr(path, "{project_id}");
        if (hole) {
            if (!project_id)
                continue; /* a project-bound endpoint means nothing unscoped */
            *hole = '\0';
            char *rest = hole + strlen("{project_id}");
            char *full = st_sprintf("%s%s%s", path, project_id, rest);
            free(path);
            path = full;
        }
        st_autofree char *url = st_sprintf("%s%s", app->public_url, path);
        char id[ST_HEX32_LEN_KS];
        keystone_stable_id(s->type, id);
        json_array_append_new(
            cat, json_pack("{s:s, s:s, s:s, s:[{s:s, s:s, s:s, s:s, s:s}]}", "id", id, "type",
                           s->type, "name", s->name, "endpoints", "id", id, "interface", "public",
                           "region", ST_API_REGION, "region_id", ST_API_REGION, "url", url));
    }
    return cat;
}

json_t *st_api_keystone_token_body(const struct st_api_app *app, const struct st_token *t)
{
    char issued[ST_TIME_RFC3339_LEN], expires[ST_TIME_RFC3339_LEN];
    st_time_rfc3339_us(t->issued_at_ms, issued, sizeof(issued));
    st_time_rfc3339_us(t->expires_at_ms, expires, sizeof(expires));
    json_t *user =
        json_pack("{s:s, s:s, s:o, s:n}", "id", t->user_id, "name", t->user_name, "domain",
                  keystone_domain_ref(app, t->user_domain_id), "password_expires_at");
    json_t *token =
        json_pack("{s:s, s:s, s:[s], s:[s], s:o, s:b}", "issued_at", issued, "expires_at", expires,
                  "methods", "password", "audit_ids", t->audit_id, "user", user, "is_domain", 0);
    if (t->project_id) {
        json_t *roles = json_array();
        for (size_t i = 0; i < t->n_roles; i++)
            json_array_append_new(
                roles, json_pack("{s:s, s:s}", "id", t->role_ids[i], "name", t->role_names[i]));
        json_object_set_new(token, "project",
                            json_pack("{s:s, s:s, s:o}", "id", t->project_id, "name",
                                      t->project_name, "domain",
                                      keystone_domain_ref(app, t->project_domain_id)));
        json_object_set_new(token, "roles", roles);
    }
    json_object_set_new(token, "catalog", catalog(app, t->project_id));
    return json_pack("{s:o}", "token", token);
}

/* Reads {"id": ...} / {"name": ..., "domain": {"id"|"name"}} references. */
static int read_named_ref(json_t *obj, const char *what, const char **ret_id, const char **ret_name,
                          const char **ret_domain_id, const char **ret_domain_name,
                          struct st_err **err)
{
    int r = st_json_get_str(obj, "id", false, ret_id, err);
    if (r < 0 && r != -ENOENT)
        return st_err_prefix(err, r, "%s", what);
    r = st_json_get_str(obj, "name", false, ret_name, err);
    if (r < 0 && r != -ENOENT)
        return st_err_prefix(err, r, "%s", what);
    if (!*ret_id && !*ret_name)
        return st_err_set(err, -EINVAL, "%s needs an id or a name", what);
    json_t *domain = NULL;
    r = st_json_get_obj(obj, "domain", false, &domain, err);
    if (r < 0 && r != -ENOENT)
        return st_err_prefix(err, r, "%s", what);
    if (domain) {
        r = st_json_get_str(domain, "id", false, ret_domain_id, err);
        if (r < 0 && r != -ENOENT)
            return st_err_prefix(err, r, "%s domain", what);
        r = st_json_get_str(domain, "name", false, ret_domain_name, err);
        if (r < 0 && r != -ENOENT)
            return st_err_prefix(err, r, "%s domain", what);
    }
    return 0;
}

static int parse_auth(json_t *body, struct st_auth_request *ar, struct st_err **err)
{
    json_t *auth, *identity, *methods, *password, *user, *scope = NULL;
    int r = st_json_get_obj(body, "auth", true, &auth, err);
    if (r < 0)
        return r;
    if ((r = st_json_get_obj(auth, "identity", true, &identity, err)) < 0 ||
        (r = st_json_get_array(identity, "methods", true, &methods, err)) < 0)
        return r;
    bool has_password = false;
    size_t i;
    json_t *m;
    json_array_foreach(methods, i, m)
    {
        if (!json_is_string(m))
            return st_err_set(err, -EINVAL, "auth methods must be strings");
        if (strcmp(json_string_value(m), "password") == 0)
            has_password = true;
    }
    if (!has_password)
        return st_err_set(err, -EACCES, "only the password method is supported");
    if ((r = st_json_get_obj(identity, "password", true, &password, err)) < 0 ||
        (r = st_json_get_obj(password, "user", true, &user, err)) < 0)
        return r;
    r = read_named_ref(user, "user", &ar->user_id, &ar->user_name, &ar->user_domain_id,
                       &ar->user_domain_name, err);
    if (r < 0)
        return r;
    if ((r = st_json_get_str(user, "password", true, &ar->password, err)) < 0)
        return r;
    r = st_json_get_obj(auth, "scope", false, &scope, err);
    if (r < 0 && r != -ENOENT)
        return r;
    if (scope) {
        json_t *project = NULL;
        r = st_json_get_obj(scope, "project", false, &project, err);
        if (r == -ENOENT) {
            if (json_object_get(scope, "domain") || json_object_get(scope, "system"))
                return st_err_set(err, -EINVAL,
                                  "only project-scoped and unscoped tokens are supported");
            return 0;
        }
        if (r < 0)
            return r;
        r = read_named_ref(project, "scope.project", &ar->project_id, &ar->project_name,
                           &ar->project_domain_id, &ar->project_domain_name, err);
        if (r < 0)
            return r;
    }
    return 0;
}

static int post_token(struct st_http_request *req, struct st_http_response *resp,
                      struct st_err **err)
{
    struct st_api_app *app = req->app;
    st_autoptr(json_t) body = NULL;
    int r = st_json_parse_object(req->body, req->body_len, &body, err);
    if (r < 0)
        return r;
    struct st_auth_request ar = {.peer = req->peer};
    r = parse_auth(body, &ar, err);
    if (r < 0)
        return r;
    st_autofree char *secret = NULL;
    st_autoptr(st_token) token = NULL;
    r = st_identity_authenticate(app->identity, &ar, &secret, &token, err);
    if (r < 0)
        return r;
    st_http_resp_header(resp, "X-Subject-Token", secret);
    st_http_resp_json(resp, 201, st_api_keystone_token_body(app, token));
    /* The audit line of a login names who logged in; the router frees it. */
    req->auth = st_steal(&token);
    return 0;
}

static int subject_token(struct st_http_request *req, struct st_token **ret, struct st_err **err)
{
    struct st_api_app *app = req->app;
    const char *subject = st_http_header(req, "X-Subject-Token");
    if (!subject || !subject[0])
        return st_err_set(err, -EINVAL, "X-Subject-Token header is required");
    const struct st_token *caller = st_api_token(req);
    int r = st_identity_validate(app->identity, subject, ret, err);
    if (r == -EACCES) {
        st_err_clear(err);
        return st_err_set(err, -ENOENT, "Could not find token.");
    }
    if (r < 0)
        return r;
    /* Only admins may look at other users' tokens. */
    if (strcmp((*ret)->user_id, caller->user_id) != 0 && !st_api_is_cloud_admin(req)) {
        st_token_free(*ret);
        *ret = NULL;
        return st_err_set(err, -ENOENT, "Could not find token.");
    }
    return 0;
}

static int get_token(struct st_http_request *req, struct st_http_response *resp,
                     struct st_err **err)
{
    st_autoptr(st_token) token = NULL;
    int r = subject_token(req, &token, err);
    if (r < 0)
        return r;
    st_http_resp_header(resp, "X-Subject-Token", st_http_header(req, "X-Subject-Token"));
    st_http_resp_json(resp, 200, st_api_keystone_token_body(req->app, token));
    return 0;
}

static int head_token(struct st_http_request *req, struct st_http_response *resp,
                      struct st_err **err)
{
    st_autoptr(st_token) token = NULL;
    int r = subject_token(req, &token, err);
    if (r < 0)
        return r;
    resp->status = 200;
    return 0;
}

static int delete_token(struct st_http_request *req, struct st_http_response *resp,
                        struct st_err **err)
{
    struct st_api_app *app = req->app;
    st_autoptr(st_token) token = NULL;
    int r = subject_token(req, &token, err);
    if (r < 0)
        return r;
    r = st_identity_revoke(app->identity, st_http_header(req, "X-Subject-Token"), err);
    if (r < 0)
        return r;
    resp->status = 204;
    return 0;
}

static const struct st_route token_routes[] = {
    KS_ROUTE("GET", "/identity", "identity:version:list", ST_ROUTE_PUBLIC, get_versions),
    KS_ROUTE("GET", "/identity/v3", "identity:version:show", ST_ROUTE_PUBLIC, get_version),
    KS_ROUTE("POST", "/identity/v3/auth/tokens", "identity:token:issue", ST_ROUTE_PUBLIC,
             post_token),
    KS_ROUTE("GET", "/identity/v3/auth/tokens", "identity:token:validate", 0, get_token),
    KS_ROUTE("HEAD", "/identity/v3/auth/tokens", "identity:token:check", 0, head_token),
    KS_ROUTE("DELETE", "/identity/v3/auth/tokens", "identity:token:revoke", 0, delete_token),
};

int st_api_keystone_register(struct st_router *r, struct st_api_app *app, struct st_err **err)
{
    st_api_app_add_service(app, "identity", "keystone", "/identity/v3");
    int ret = st_router_add_all(r, token_routes, ST_ARRAY_SIZE(token_routes), err);
    if (ret < 0)
        return ret;
    return keystone_admin_register(r, err);
}
