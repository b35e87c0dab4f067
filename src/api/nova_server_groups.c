/* Nova's os-server-groups at 2.1: create (200), list (the caller's
 * project; every project for an admin who asks with all_projects, as
 * Nova), show and delete (204). Bodies carry what openstacksdk's
 * ServerGroup reads: id, name, policies, members, metadata (always empty,
 * as Nova), and project_id and user_id (Nova's 2.13 fields: harmless at 2.1
 * and what `openstack server group show` prints). The service (compute/
 * server_group.h) does the work; this file parses, authorizes and renders.
 * Another project's group is "not found", as everywhere in stratos. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "api/app.h"
#include "api/auth.h"
#include "api/nova-priv.h"
#include "api/router.h"
#include "compute/server_group.h"
#include "identity/identity.h"
#include "lib/cleanup.h"
#include "lib/json.h"

#define MAX_LIMIT 1000 /* Nova's osapi_max_limit */

#define MICROVERSION(req, resp, err)                                                               \
    do {                                                                                           \
        int mv_ = nova_microversion((req), (resp), (err));                                         \
        if (mv_ != 0)                                                                              \
            return mv_ < 0 ? mv_ : 0;                                                              \
    } while (0)

static json_t *render(json_t *doc)
{
    json_t *policies = json_object_get(doc, "policies");
    json_t *members = json_object_get(doc, "members");
    return json_pack("{s:O?, s:O?, s:o, s:o, s:{}, s:O?, s:O?}", "id", json_object_get(doc, "id"),
                     "name", json_object_get(doc, "name"), "policies",
                     json_is_array(policies) ? json_deep_copy(policies) : json_array(), "members",
                     json_is_array(members) ? json_deep_copy(members) : json_array(), "metadata",
                     "project_id", json_object_get(doc, "project_id"), "user_id",
                     json_object_get(doc, "user_id"));
}

/* Loads the group named by the path and checks action on its project. */
static int load_group(struct st_http_request *req, const char *action, json_t **ret,
                      struct st_err **err)
{
    struct st_api_app *app = req->app;
    const char *id = st_http_param(req, "server_group_id");
    int r = st_server_group_get(app->kv, id, ret, err);
    if (r < 0)
        return r;
    st_autoptr(st_err) aerr = NULL;
    r = st_api_authorize(req, action, json_string_value(json_object_get(*ret, "project_id")),
                         &aerr);
    if (r == -ENOENT)
        r = st_err_set(err, -ENOENT, "Server group %s could not be found.", id);
    else if (r < 0)
        r = st_err_set(err, r, "%s", st_err_msg(aerr));
    if (r < 0) {
        json_decref(*ret);
        *ret = NULL;
    }
    return r;
}

static int group_create(struct st_http_request *req, struct st_http_response *resp,
                        struct st_err **err)
{
    MICROVERSION(req, resp, err);
    struct st_api_app *app = req->app;
    st_autoptr(json_t) body = NULL;
    int r = st_json_parse_object(req->body ? req->body : "", req->body_len, &body, err);
    if (r < 0)
        return r;
    json_t *group = json_object_get(body, "server_group");
    if (!group)
        return st_err_set(err, -EINVAL,
                          "Invalid input for field/attribute server_group. 'server_group' is a "
                          "required property");
    const struct st_token *t = st_api_token(req);
    struct st_compute_caller who = {.project_id = t ? t->project_id : NULL,
                                    .user_id = t ? t->user_id : NULL,
                                    .is_admin = st_api_is_cloud_admin(req)};
    st_autoptr(json_t) doc = NULL;
    if ((r = st_server_group_create(app->kv, &who, group, &doc, err)) < 0)
        return r;
    st_http_resp_json(resp, 200, json_pack("{s:o}", "server_group", render(doc)));
    return 0;
}

/* Nova's common.limited: non-negative integers; limit 0 or beyond the
 * maximum means the maximum. */
static int query_count(struct st_http_request *req, const char *name, size_t def, size_t *ret,
                       struct st_err **err)
{
    const char *v = st_http_query(req, name);
    *ret = def;
    if (!v)
        return 0;
    char *end = NULL;
    long long n = strtoll(v, &end, 10);
    if (!v[0] || *end || n < 0)
        return st_err_set(err, -EINVAL, "%s param must be a non-negative integer", name);
    *ret = (size_t)n;
    return 0;
}

static int group_list(struct st_http_request *req, struct st_http_response *resp,
                      struct st_err **err)
{
    MICROVERSION(req, resp, err);
    struct st_api_app *app = req->app;
    size_t limit, offset;
    int r = query_count(req, "limit", MAX_LIMIT, &limit, err);
    if (r < 0 || (r = query_count(req, "offset", 0, &offset, err)) < 0)
        return r;
    if (limit == 0 || limit > MAX_LIMIT)
        limit = MAX_LIMIT;
    const struct st_token *t = st_api_token(req);
    /* Nova: the presence of all_projects, whatever its value, for admins */
    const char *project = t ? t->project_id : NULL;
    if (st_http_query(req, "all_projects") && st_api_is_cloud_admin(req))
        project = NULL;
    st_autoptr(json_t) docs = NULL;
    if ((r = st_server_group_list(app->kv, project, &docs, err)) < 0)
        return r;
    json_t *rows = json_array();
    for (size_t i = offset; i < json_array_size(docs) && json_array_size(rows) < limit; i++)
        json_array_append_new(rows, render(json_array_get(docs, i)));
    st_http_resp_json(resp, 200, json_pack("{s:o}", "server_groups", rows));
    return 0;
}

static int group_show(struct st_http_request *req, struct st_http_response *resp,
                      struct st_err **err)
{
    MICROVERSION(req, resp, err);
    st_autoptr(json_t) doc = NULL;
    int r = load_group(req, "compute:server_group:show", &doc, err);
    if (r < 0)
        return r;
    st_http_resp_json(resp, 200, json_pack("{s:o}", "server_group", render(doc)));
    return 0;
}

static int group_delete(struct st_http_request *req, struct st_http_response *resp,
                        struct st_err **err)
{
    MICROVERSION(req, resp, err);
    struct st_api_app *app = req->app;
    st_autoptr(json_t) doc = NULL;
    int r = load_group(req, "compute:server_group:delete", &doc, err);
    if (r < 0)
        return r;
    if ((r = st_server_group_delete(app->kv, json_string_value(json_object_get(doc, "id")), err)) <
        0)
        return r;
    st_http_resp_json(resp, 204, NULL);
    return 0;
}

static const struct st_route routes[] = {
    NOVA_ROUTE("POST", "/os-server-groups", "compute:server_group:create", 0, group_create),
    NOVA_ROUTE("GET", "/os-server-groups", "compute:server_group:list", 0, group_list),
    NOVA_ROUTE("GET", "/os-server-groups/{server_group_id}", "compute:server_group:show", 0,
               group_show),
    NOVA_ROUTE("DELETE", "/os-server-groups/{server_group_id}", "compute:server_group:delete", 0,
               group_delete),
};

int nova_server_groups_register(struct st_router *r, struct st_err **err)
{
    return st_router_add_all(r, routes, ST_ARRAY_SIZE(routes), err);
}
