/* /stratos/v1/resource-policies: the named resource policies of the
 * caller's project (compute/resource_policy.h). PUT creates or replaces,
 * so applying the same document twice is harmless (201 then 200); bodies
 * are JSON, or YAML with a YAML Content-Type, so the seed's document can be
 * sent as it is written:
 *   {"name": "gold", "resourcePolicy": {"compute": {...}, ...}}
 * An admin may act on another project with ?project_id=, and list every
 * project's with ?all_projects=true. Errors in the plain shape
 * {"error": {"code", "title", "message"}}. */
#include "stratos_policies.h"

#include <errno.h>
#include <string.h>
#include <strings.h>

#include "api/app.h"
#include "api/auth.h"
#include "api/router.h"
#include "compute/resource_policy.h"
#include "identity/identity.h"
#include "lib/cleanup.h"
#include "lib/json.h"

#define POLICIES_PATH "/stratos/v1/resource-policies"

#define POLICY_ROUTE(m, p, a, fn)                                                                  \
    {                                                                                              \
        .method = (m), .pattern = POLICIES_PATH p, .action = (a), .family = ST_API_PLAIN,          \
        .handler = (fn)                                                                            \
    }

/* The project a request acts on: the token's, or (admins) ?project_id=. A
 * member naming another project gets 404, as for any foreign resource. */
static int target_project(struct st_http_request *req, const char **ret, struct st_err **err)
{
    const struct st_token *t = st_api_token(req);
    const char *asked = st_http_query(req, "project_id");
    *ret = asked && asked[0] ? asked : t->project_id;
    return st_api_authorize(req, req->route->action, *ret, err);
}

static bool truthy(const char *v)
{
    return v && (strcasecmp(v, "true") == 0 || strcmp(v, "1") == 0 || strcasecmp(v, "yes") == 0);
}

static int policy_list(struct st_http_request *req, struct st_http_response *resp,
                       struct st_err **err)
{
    struct st_api_app *app = req->app;
    const char *project = NULL;
    if (truthy(st_http_query(req, "all_projects")) && st_api_is_cloud_admin(req)) {
        project = NULL;
    } else {
        int r = target_project(req, &project, err);
        if (r < 0)
            return r;
    }
    st_autoptr(json_t) docs = NULL;
    int r = st_resource_policy_list(app->kv, project, &docs, err);
    if (r < 0)
        return r;
    st_http_resp_json(resp, 200, json_pack("{s:O}", "resource_policies", docs));
    return 0;
}

static int policy_show(struct st_http_request *req, struct st_http_response *resp,
                       struct st_err **err)
{
    struct st_api_app *app = req->app;
    const char *project = NULL;
    int r = target_project(req, &project, err);
    if (r < 0)
        return r;
    st_autoptr(json_t) doc = NULL;
    if ((r = st_resource_policy_get(app->kv, project, st_http_param(req, "policy_name"), &doc,
                                    err)) < 0)
        return r;
    st_http_resp_json(resp, 200, json_pack("{s:O}", "resource_policy", doc));
    return 0;
}

static bool is_yaml(const char *content_type)
{
    return content_type && strcasestr(content_type, "yaml");
}

/* {"name"?, "resourcePolicy"} or a manifest {"kind": "ResourcePolicy",
 * "metadata": {"name"}, "resourcePolicy"}; the name must agree with the URL. */
static int read_body(struct st_http_request *req, const char *name, json_t **ret_body,
                     json_t **ret_policy, struct st_err **err)
{
    int r;
    if (is_yaml(st_http_header(req, "Content-Type"))) {
        r = st_resource_policy_parse_text(req->body, req->body_len, ret_body, err);
        if (r == 0 && !json_is_object(*ret_body))
            r = st_err_set(err, -EINVAL, "the document must be a mapping");
    } else {
        r = st_json_parse_object(req->body, req->body_len, ret_body, err);
    }
    if (r < 0)
        return r;
    static const char *const known[] = {"name", "resourcePolicy", "kind", "apiVersion", "metadata"};
    const char *key;
    json_t *v;
    json_object_foreach(*ret_body, key, v)
    {
        bool ok = false;
        for (size_t i = 0; i < ST_ARRAY_SIZE(known) && !ok; i++)
            ok = strcmp(key, known[i]) == 0;
        if (!ok)
            return st_err_set(err, -EINVAL, "unknown field '%s' (expected name and resourcePolicy)",
                              key);
    }
    const char *kind = json_string_value(json_object_get(*ret_body, "kind"));
    if (json_object_get(*ret_body, "kind") && (!kind || strcmp(kind, "ResourcePolicy") != 0))
        return st_err_set(err, -EINVAL, "kind must be ResourcePolicy");
    json_t *jname = json_object_get(*ret_body, "name");
    if (!jname)
        jname = json_object_get(json_object_get(*ret_body, "metadata"), "name");
    if (jname && (!json_is_string(jname) || strcmp(json_string_value(jname), name) != 0))
        return st_err_set(err, -EINVAL, "the body names the policy '%s' but the URL '%s'",
                          json_is_string(jname) ? json_string_value(jname) : "(not a string)",
                          name);
    *ret_policy = json_object_get(*ret_body, "resourcePolicy");
    if (!*ret_policy)
        return st_err_set(err, -EINVAL, "missing required field 'resourcePolicy'");
    return 0;
}

static int policy_put(struct st_http_request *req, struct st_http_response *resp,
                      struct st_err **err)
{
    struct st_api_app *app = req->app;
    const char *project = NULL;
    int r = target_project(req, &project, err);
    if (r < 0)
        return r;
    const char *name = st_http_param(req, "policy_name");
    if ((r = st_resource_policy_check_name(name, err)) < 0)
        return r;
    st_autoptr(json_t) body = NULL;
    json_t *policy = NULL;
    if ((r = read_body(req, name, &body, &policy, err)) < 0)
        return r;
    st_autoptr(json_t) doc = NULL;
    bool created = false;
    if ((r = st_resource_policy_put(app->kv, project, name, policy, &doc, &created, err)) < 0)
        return r;
    st_http_resp_json(resp, created ? 201 : 200, json_pack("{s:O}", "resource_policy", doc));
    return 0;
}

static int policy_delete(struct st_http_request *req, struct st_http_response *resp,
                         struct st_err **err)
{
    struct st_api_app *app = req->app;
    const char *project = NULL;
    int r = target_project(req, &project, err);
    if (r < 0)
        return r;
    if ((r = st_resource_policy_delete(app->kv, project, st_http_param(req, "policy_name"), err)) <
        0)
        return r;
    resp->status = 204;
    return 0;
}

static const struct st_route routes[] = {
    POLICY_ROUTE("GET", "", "compute:resource_policy:list", policy_list),
    POLICY_ROUTE("GET", "/{policy_name}", "compute:resource_policy:show", policy_show),
    POLICY_ROUTE("PUT", "/{policy_name}", "compute:resource_policy:update", policy_put),
    POLICY_ROUTE("DELETE", "/{policy_name}", "compute:resource_policy:delete", policy_delete),
};

int stratos_policies_register(struct st_router *r, struct st_err **err)
{
    return st_router_add_all(r, routes, ST_ARRAY_SIZE(routes), err);
}
