/* Keystone v3 administration: projects, users, roles, domains, grants and
 * role assignments. Requests are unwrapped ({"project": {...}}) and handed to
 * the identity service; its records are rendered in Keystone's shapes, with
 * the links and defaults the openstack CLI reads. Exact ?name= filters, as
 * python-keystoneclient relies on them (§2.5). */
#include <errno.h>
#include <string.h>

#include "api/app.h"
#include "api/auth.h"
#include "api/keystone-priv.h"
#include "api/router.h"
#include "identity/identity.h"
#include "lib/cleanup.h"
#include "lib/json.h"
#include "lib/uuid.h"

json_t *keystone_domain_ref(const struct st_api_app *app, const char *domain_id)
{
    if (!domain_id || strcmp(domain_id, ST_IDENTITY_DEFAULT_DOMAIN_ID) == 0)
        return json_pack("{s:s, s:s}", "id", ST_IDENTITY_DEFAULT_DOMAIN_ID, "name",
                         ST_IDENTITY_DEFAULT_DOMAIN_NAME);
    st_autoptr(json_t) d = NULL;
    const char *name = domain_id;
    if (st_identity_domain_get(app->identity, domain_id, &d, NULL) == 0)
        name = json_string_value(json_object_get(d, "name")) ?: domain_id;
    return json_pack("{s:s, s:s}", "id", domain_id, "name", name);
}

void keystone_stable_id(const char *name, char out[ST_HEX32_LEN_KS])
{
    char padded[16] = {0};
    size_t n = strlen(name);
    memcpy(padded, name, n < sizeof(padded) ? n : sizeof(padded));
    st_hex_encode(padded, sizeof(padded), out);
}

static const char *str(json_t *o, const char *k)
{
    return json_string_value(json_object_get(o, k));
}

static json_t *self_link(const struct st_api_app *app, const char *collection, const char *id)
{
    st_autofree char *url = st_sprintf("%s/identity/v3/%s/%s", app->public_url, collection, id);
    return json_pack("{s:s}", "self", url);
}

static json_t *render_project(const struct st_api_app *app, json_t *doc)
{
    json_t *p = json_deep_copy(doc);
    json_object_del(p, "created_at");
    json_object_set(p, "parent_id", json_object_get(doc, "domain_id"));
    json_object_set_new(p, "is_domain", json_false());
    if (!json_object_get(p, "description"))
        json_object_set_new(p, "description", json_string(""));
    if (!json_object_get(p, "tags"))
        json_object_set_new(p, "tags", json_array());
    if (!json_object_get(p, "options"))
        json_object_set_new(p, "options", json_object());
    json_object_set_new(p, "links", self_link(app, "projects", str(doc, "id")));
    return p;
}

static json_t *render_user(const struct st_api_app *app, json_t *doc)
{
    json_t *u = json_deep_copy(doc);
    json_object_del(u, "password_hash");
    json_object_del(u, "created_at");
    json_object_set_new(u, "password_expires_at", json_null());
    if (!json_object_get(u, "options"))
        json_object_set_new(u, "options", json_object());
    json_object_set_new(u, "links", self_link(app, "users", str(doc, "id")));
    return u;
}

static json_t *render_role(const struct st_api_app *app, json_t *doc)
{
    json_t *r = json_deep_copy(doc);
    json_object_del(r, "created_at");
    if (!json_object_get(r, "domain_id"))
        json_object_set_new(r, "domain_id", json_null());
    if (!json_object_get(r, "description"))
        json_object_set_new(r, "description", json_null());
    json_object_set_new(r, "options", json_object());
    json_object_set_new(r, "links", self_link(app, "roles", str(doc, "id")));
    return r;
}

static json_t *render_domain(const struct st_api_app *app, json_t *doc)
{
    json_t *d = json_deep_copy(doc);
    if (!json_object_get(d, "description"))
        json_object_set_new(d, "description", json_string(""));
    json_object_set_new(d, "tags", json_array());
    json_object_set_new(d, "options", json_object());
    json_object_set_new(d, "links", self_link(app, "domains", str(doc, "id")));
    return d;
}

typedef json_t *(*render_fn)(const struct st_api_app *app, json_t *doc);

static json_t *render_list(const struct st_api_app *app, const char *collection, json_t *docs,
                           render_fn render)
{
    json_t *rows = json_array();
    size_t i;
    json_t *doc;
    json_array_foreach(docs, i, doc) json_array_append_new(rows, render(app, doc));
    st_autofree char *self = st_sprintf("%s/identity/v3/%s", app->public_url, collection);
    return json_pack("{s:o, s:{s:s, s:n, s:n}}", collection, rows, "links", "self", self, "next",
                     "previous");
}

/* The body's single wrapper object: {"project": {...}}. */
static int unwrap(struct st_http_request *req, const char *key, json_t **ret_body,
                  json_t **ret_inner, struct st_err **err)
{
    int r = st_json_parse_object(req->body, req->body_len, ret_body, err);
    if (r < 0)
        return r;
    return st_json_get_obj(*ret_body, key, true, ret_inner, err);
}

static int respond(struct st_http_response *resp, int status, const char *key, json_t *value)
{
    st_http_resp_json(resp, status, json_pack("{s:o}", key, value));
    return 0;
}

/* ---- projects, users, roles: one set of handlers over a table ---- */

/* What differs between the three record kinds; the route's userdata. */
struct ks_kind {
    const char *key;    /* "project": the body's wrapper and the response's */
    const char *plural; /* "projects" */
    const char *param;  /* "project_id" */
    render_fn render;
    int (*list)(struct st_identity *id, struct st_http_request *req, json_t **ret,
                struct st_err **err);
    int (*create)(struct st_identity *id, json_t *req, json_t **ret, struct st_err **err);
    int (*get)(struct st_identity *id, const char *rec_id, json_t **ret, struct st_err **err);
    int (*update)(struct st_identity *id, const char *rec_id, json_t *patch, json_t **ret,
                  struct st_err **err);
    int (*delete)(struct st_identity *id, const char *rec_id, struct st_err **err);
};

static int list_projects(struct st_identity *id, struct st_http_request *req, json_t **ret,
                         struct st_err **err)
{
    return st_identity_project_list(id, st_http_query(req, "name"), st_http_query(req, "domain_id"),
                                    ret, err);
}

static int list_users(struct st_identity *id, struct st_http_request *req, json_t **ret,
                      struct st_err **err)
{
    return st_identity_user_list(id, st_http_query(req, "name"), st_http_query(req, "domain_id"),
                                 ret, err);
}

static int list_roles(struct st_identity *id, struct st_http_request *req, json_t **ret,
                      struct st_err **err)
{
    return st_identity_role_list(id, st_http_query(req, "name"), ret, err);
}

static const struct ks_kind kind_project = {
    "project",
    "projects",
    "project_id",
    render_project,
    list_projects,
    st_identity_project_create,
    st_identity_project_get,
    st_identity_project_update,
    st_identity_project_delete,
};

static const struct ks_kind kind_user = {
    "user",
    "users",
    "user_id",
    render_user,
    list_users,
    st_identity_user_create,
    st_identity_user_get,
    st_identity_user_update,
    st_identity_user_delete,
};

static const struct ks_kind kind_role = {
    "role",
    "roles",
    "role_id",
    render_role,
    list_roles,
    st_identity_role_create,
    st_identity_role_get,
    st_identity_role_update,
    st_identity_role_delete,
};

static const struct ks_kind *route_kind(const struct st_http_request *req)
{
    return req->route->userdata;
}

static int kind_list(struct st_http_request *req, struct st_http_response *resp,
                     struct st_err **err)
{
    struct st_api_app *app = req->app;
    const struct ks_kind *k = route_kind(req);
    st_autoptr(json_t) docs = NULL;
    int r = k->list(app->identity, req, &docs, err);
    if (r < 0)
        return r;
    st_http_resp_json(resp, 200, render_list(app, k->plural, docs, k->render));
    return 0;
}

static int kind_create(struct st_http_request *req, struct st_http_response *resp,
                       struct st_err **err)
{
    struct st_api_app *app = req->app;
    const struct ks_kind *k = route_kind(req);
    st_autoptr(json_t) body = NULL;
    json_t *inner, *doc = NULL;
    int r = unwrap(req, k->key, &body, &inner, err);
    if (r < 0 || (r = k->create(app->identity, inner, &doc, err)) < 0)
        return r;
    st_autoptr(json_t) owned = doc;
    return respond(resp, 201, k->key, k->render(app, doc));
}

static int kind_show(struct st_http_request *req, struct st_http_response *resp,
                     struct st_err **err)
{
    struct st_api_app *app = req->app;
    const struct ks_kind *k = route_kind(req);
    st_autoptr(json_t) doc = NULL;
    int r = k->get(app->identity, st_http_param(req, k->param), &doc, err);
    if (r < 0)
        return r;
    return respond(resp, 200, k->key, k->render(app, doc));
}

static int kind_update(struct st_http_request *req, struct st_http_response *resp,
                       struct st_err **err)
{
    struct st_api_app *app = req->app;
    const struct ks_kind *k = route_kind(req);
    st_autoptr(json_t) body = NULL;
    json_t *inner, *doc = NULL;
    int r = unwrap(req, k->key, &body, &inner, err);
    if (r < 0 || (r = k->update(app->identity, st_http_param(req, k->param), inner, &doc, err)) < 0)
        return r;
    st_autoptr(json_t) owned = doc;
    return respond(resp, 200, k->key, k->render(app, doc));
}

static int kind_delete(struct st_http_request *req, struct st_http_response *resp,
                       struct st_err **err)
{
    struct st_api_app *app = req->app;
    const struct ks_kind *k = route_kind(req);
    int r = k->delete (app->identity, st_http_param(req, k->param), err);
    if (r == 0)
        resp->status = 204;
    return r;
}

/* A user may read themself; anything else is for admins. */
static int user_show(struct st_http_request *req, struct st_http_response *resp,
                     struct st_err **err)
{
    struct st_api_app *app = req->app;
    const char *user_id = st_http_param(req, "user_id");
    /* A user may read themself; anything else is for admins (policy). */
    const struct st_token *t = st_api_token(req);
    if (strcmp(t->user_id, user_id) != 0 && !st_api_is_cloud_admin(req))
        return st_err_set(err, -ENOENT, "Could not find user: %s.", user_id);
    st_autoptr(json_t) doc = NULL;
    int r = st_identity_user_get(app->identity, user_id, &doc, err);
    if (r < 0)
        return r;
    return respond(resp, 200, "user", render_user(app, doc));
}

/* A project's record: its own users may read it (Keystone's
 * identity:get_project is project_id:%(target.project.id)s, which the
 * openstack CLI needs for `project show` and `quota show|set` of one's own
 * project); the policy lets readers and members through the route, and the
 * target project decides, as for any resource: another project's is not
 * found unless one's roles reach every project. */
static int project_show(struct st_http_request *req, struct st_http_response *resp,
                        struct st_err **err)
{
    struct st_api_app *app = req->app;
    const char *project_id = st_http_param(req, "project_id");
    st_autoptr(st_err) denied = NULL;
    int r = st_api_authorize(req, "identity:project:show", project_id, &denied);
    if (r == -ENOENT)
        return st_err_set(err, r, "Could not find project: %s.", project_id);
    if (r < 0)
        return st_err_set(err, r, "%s", st_err_msg(denied));
    st_autoptr(json_t) doc = NULL;
    r = st_identity_project_get(app->identity, project_id, &doc, err);
    if (r < 0)
        return r;
    return respond(resp, 200, "project", render_project(app, doc));
}

/* The projects a user holds a role on (`openstack project list --my-projects`
 * and keystoneauth's unscoped flows). */
static int user_projects(struct st_http_request *req, struct st_http_response *resp,
                         struct st_err **err)
{
    struct st_api_app *app = req->app;
    const char *user_id = st_http_param(req, "user_id");
    const struct st_token *t = st_api_token(req);
    if (strcmp(t->user_id, user_id) != 0 && !st_api_is_cloud_admin(req))
        return st_err_set(err, -ENOENT, "Could not find user: %s.", user_id);
    st_autoptr(json_t) grants = NULL;
    int r = st_identity_grant_list(app->identity, NULL, user_id, NULL, &grants, err);
    if (r < 0)
        return r;
    st_autoptr(json_t) docs = json_array();
    st_autoptr(json_t) seen = json_object();
    size_t i;
    json_t *g;
    json_array_foreach(grants, i, g)
    {
        const char *pid = str(g, "project_id");
        if (json_object_get(seen, pid))
            continue;
        json_object_set_new(seen, pid, json_true());
        json_t *p = NULL;
        st_autoptr(st_err) local = NULL;
        r = st_identity_project_get(app->identity, pid, &p, &local);
        if (r == 0)
            json_array_append_new(docs, p);
        else if (r != -ENOENT) /* deleted meanwhile is fine; a store failure is not */
            return st_err_set(err, r, "%s", st_err_msg(local));
    }
    st_http_resp_json(resp, 200, render_list(app, "projects", docs, render_project));
    return 0;
}

/* ---- domains ---- */

static int domain_list(struct st_http_request *req, struct st_http_response *resp,
                       struct st_err **err)
{
    struct st_api_app *app = req->app;
    st_autoptr(json_t) docs = NULL;
    int r = st_identity_domain_list(app->identity, st_http_query(req, "name"), &docs, err);
    if (r < 0)
        return r;
    st_http_resp_json(resp, 200, render_list(app, "domains", docs, render_domain));
    return 0;
}

static int domain_show(struct st_http_request *req, struct st_http_response *resp,
                       struct st_err **err)
{
    struct st_api_app *app = req->app;
    st_autoptr(json_t) doc = NULL;
    int r = st_identity_domain_get(app->identity, st_http_param(req, "domain_id"), &doc, err);
    if (r < 0)
        return r;
    return respond(resp, 200, "domain", render_domain(app, doc));
}

/* ---- grants ---- */

static int grant_put(struct st_http_request *req, struct st_http_response *resp,
                     struct st_err **err)
{
    struct st_api_app *app = req->app;
    int r =
        st_identity_grant_add(app->identity, st_http_param(req, "project_id"),
                              st_http_param(req, "user_id"), st_http_param(req, "role_id"), err);
    if (r == 0)
        resp->status = 204;
    return r;
}

static int grant_head(struct st_http_request *req, struct st_http_response *resp,
                      struct st_err **err)
{
    struct st_api_app *app = req->app;
    int r =
        st_identity_grant_check(app->identity, st_http_param(req, "project_id"),
                                st_http_param(req, "user_id"), st_http_param(req, "role_id"), err);
    if (r == 0)
        resp->status = 204;
    return r;
}

static int grant_delete(struct st_http_request *req, struct st_http_response *resp,
                        struct st_err **err)
{
    struct st_api_app *app = req->app;
    int r =
        st_identity_grant_remove(app->identity, st_http_param(req, "project_id"),
                                 st_http_param(req, "user_id"), st_http_param(req, "role_id"), err);
    if (r == 0)
        resp->status = 204;
    return r;
}

static int grant_list_roles(struct st_http_request *req, struct st_http_response *resp,
                            struct st_err **err)
{
    struct st_api_app *app = req->app;
    st_autoptr(json_t) grants = NULL;
    int r = st_identity_grant_list(app->identity, st_http_param(req, "project_id"),
                                   st_http_param(req, "user_id"), NULL, &grants, err);
    if (r < 0)
        return r;
    st_autoptr(json_t) roles = json_array();
    size_t i;
    json_t *g;
    json_array_foreach(grants, i, g)
    {
        json_t *role = NULL;
        st_autoptr(st_err) local = NULL;
        r = st_identity_role_get(app->identity, str(g, "role_id"), &role, &local);
        if (r == 0)
            json_array_append_new(roles, role);
        else if (r != -ENOENT) /* deleted meanwhile is fine; a store failure is not */
            return st_err_set(err, r, "%s", st_err_msg(local));
    }
    st_http_resp_json(resp, 200, render_list(app, "roles", roles, render_role));
    return 0;
}

static json_t *named(struct st_api_app *app, const char *kind, const char *id, bool names)
{
    json_t *ref = json_pack("{s:s}", "id", id);
    if (!names)
        return ref;
    st_autoptr(json_t) doc = NULL;
    int r = strcmp(kind, "role") == 0   ? st_identity_role_get(app->identity, id, &doc, NULL)
            : strcmp(kind, "user") == 0 ? st_identity_user_get(app->identity, id, &doc, NULL)
                                        : st_identity_project_get(app->identity, id, &doc, NULL);
    if (r == 0) {
        json_object_set(ref, "name", json_object_get(doc, "name"));
        if (strcmp(kind, "role") != 0)
            json_object_set_new(ref, "domain", keystone_domain_ref(app, str(doc, "domain_id")));
    }
    return ref;
}

static int role_assignments(struct st_http_request *req, struct st_http_response *resp,
                            struct st_err **err)
{
    struct st_api_app *app = req->app;
    const char *include = st_http_query(req, "include_names");
    bool names = include && (strcasecmp(include, "true") == 0 || strcmp(include, "1") == 0);
    st_autoptr(json_t) rows = json_array();
    if (!st_http_query(req, "scope.domain.id") && !st_http_query(req, "group.id")) {
        st_autoptr(json_t) grants = NULL;
        int r = st_identity_grant_list(app->identity, st_http_query(req, "scope.project.id"),
                                       st_http_query(req, "user.id"), st_http_query(req, "role.id"),
                                       &grants, err);
        if (r < 0)
            return r;
        size_t i;
        json_t *g;
        json_array_foreach(grants, i, g)
        {
            const char *pid = str(g, "project_id"), *uid = str(g, "user_id"),
                       *rid = str(g, "role_id");
            st_autofree char *link = st_sprintf("%s/identity/v3/projects/%s/users/%s/roles/%s",
                                                app->public_url, pid, uid, rid);
            json_array_append_new(rows, json_pack("{s:o, s:o, s:{s:o}, s:{s:s}}", "role",
                                                  named(app, "role", rid, names), "user",
                                                  named(app, "user", uid, names), "scope",
                                                  "project", named(app, "project", pid, names),
                                                  "links", "assignment", link));
        }
    }
    st_autofree char *self = st_sprintf("%s/identity/v3/role_assignments", app->public_url);
    st_http_resp_json(resp, 200,
                      json_pack("{s:O, s:{s:s, s:n, s:n}}", "role_assignments", rows, "links",
                                "self", self, "next", "previous"));
    return 0;
}

#define KS ST_API_KEYSTONE
#define KS_KIND_ROUTE(m, p, a, fn, kind)                                                           \
    {                                                                                              \
        .method = (m), .pattern = (p), .action = (a), .family = ST_API_KEYSTONE, .handler = (fn),  \
        .userdata = (void *)(kind)                                                                 \
    }
#define GRANT "/identity/v3/projects/{project_id}/users/{user_id}/roles/{role_id}"

static const struct st_route admin_routes[] = {
    KS_KIND_ROUTE("GET", "/identity/v3/projects", "identity:project:list", kind_list,
                  &kind_project),
    KS_KIND_ROUTE("POST", "/identity/v3/projects", "identity:project:create", kind_create,
                  &kind_project),
    KS_ROUTE("GET", "/identity/v3/projects/{project_id}", "identity:project:show", 0, project_show),
    KS_KIND_ROUTE("PATCH", "/identity/v3/projects/{project_id}", "identity:project:update",
                  kind_update, &kind_project),
    KS_KIND_ROUTE("DELETE", "/identity/v3/projects/{project_id}", "identity:project:delete",
                  kind_delete, &kind_project),
    KS_KIND_ROUTE("GET", "/identity/v3/users", "identity:user:list", kind_list, &kind_user),
    KS_KIND_ROUTE("POST", "/identity/v3/users", "identity:user:create", kind_create, &kind_user),
    KS_ROUTE("GET", "/identity/v3/users/{user_id}", "identity:token:self_show", 0, user_show),
    KS_KIND_ROUTE("PATCH", "/identity/v3/users/{user_id}", "identity:user:update", kind_update,
                  &kind_user),
    KS_KIND_ROUTE("DELETE", "/identity/v3/users/{user_id}", "identity:user:delete", kind_delete,
                  &kind_user),
    KS_ROUTE("GET", "/identity/v3/users/{user_id}/projects", "identity:token:self_projects", 0,
             user_projects),
    KS_KIND_ROUTE("GET", "/identity/v3/roles", "identity:role:list", kind_list, &kind_role),
    KS_KIND_ROUTE("POST", "/identity/v3/roles", "identity:role:create", kind_create, &kind_role),
    KS_KIND_ROUTE("GET", "/identity/v3/roles/{role_id}", "identity:role:show", kind_show,
                  &kind_role),
    KS_KIND_ROUTE("PATCH", "/identity/v3/roles/{role_id}", "identity:role:update", kind_update,
                  &kind_role),
    KS_KIND_ROUTE("DELETE", "/identity/v3/roles/{role_id}", "identity:role:delete", kind_delete,
                  &kind_role),
    KS_ROUTE("GET", "/identity/v3/domains", "identity:domain:list", 0, domain_list),
    KS_ROUTE("GET", "/identity/v3/domains/{domain_id}", "identity:domain:show", 0, domain_show),
    KS_ROUTE("PUT", GRANT, "identity:grant:create", 0, grant_put),
    KS_ROUTE("HEAD", GRANT, "identity:grant:check", 0, grant_head),
    KS_ROUTE("DELETE", GRANT, "identity:grant:delete", 0, grant_delete),
    KS_ROUTE("GET", "/identity/v3/projects/{project_id}/users/{user_id}/roles",
             "identity:grant:list", 0, grant_list_roles),
    KS_ROUTE("GET", "/identity/v3/role_assignments", "identity:assignment:list", 0,
             role_assignments),
};

int keystone_admin_register(struct st_router *r, struct st_err **err)
{
    return st_router_add_all(r, admin_routes, ST_ARRAY_SIZE(admin_routes), err);
}
