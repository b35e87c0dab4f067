/* Nova flavors at 2.1: list (brief and detail, with Nova's is_public
 * semantics, the literal "None" included), show, create and delete (admin
 * only, by the policy), extra specs (what `openstack flavor set --property`
 * and `flavor show` use) and the access list of private flavors. The
 * flavor service (compute/flavor.h) keeps them; this file speaks Nova. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "api/app.h"
#include "api/auth.h"
#include "api/nova-priv.h"
#include "api/router.h"
#include "compute/flavor.h"
#include "identity/identity.h"
#include "lib/cleanup.h"
#include "lib/json.h"

#define FLAVOR_LIMIT_MAX 1000

#define MICROVERSION(req, resp, err)                                                               \
    do {                                                                                           \
        int mv_ = nova_microversion((req), (resp), (err));                                         \
        if (mv_ != 0)                                                                              \
            return mv_ < 0 ? mv_ : 0;                                                              \
    } while (0)

static const char *caller_project(const struct st_http_request *req)
{
    const struct st_token *t = st_api_token(req);
    return t ? t->project_id : NULL;
}

static json_t *render(const struct st_api_app *app, json_t *doc, bool brief)
{
    const char *id = json_string_value(json_object_get(doc, "id"));
    if (brief)
        return json_pack("{s:O, s:O, s:o}", "id", json_object_get(doc, "id"), "name",
                         json_object_get(doc, "name"), "links", nova_links(app, "flavors", id));
    json_int_t swap = json_integer_value(json_object_get(doc, "swap"));
    return json_pack(
        "{s:O, s:O, s:O, s:O, s:O, s:O, s:o, s:O, s:O, s:b, s:o}", "id", json_object_get(doc, "id"),
        "name", json_object_get(doc, "name"), "ram", json_object_get(doc, "ram"), "vcpus",
        json_object_get(doc, "vcpus"), "disk", json_object_get(doc, "disk"),
        "OS-FLV-EXT-DATA:ephemeral", json_object_get(doc, "ephemeral"), "swap",
        swap ? json_integer(swap) : json_string(""), "rxtx_factor",
        json_object_get(doc, "rxtx_factor"), "os-flavor-access:is_public",
        json_object_get(doc, "is_public"), "OS-FLV-DISABLED:disabled",
        json_is_true(json_object_get(doc, "disabled")), "links", nova_links(app, "flavors", id));
}

/* The flavor named in the path, if the caller may see it (404 otherwise). */
static int load(struct st_http_request *req, json_t **ret, struct st_err **err)
{
    struct st_api_app *app = req->app;
    const char *id = st_http_param(req, "flavor_id");
    int r = st_flavor_get(app->kv, id, ret, err);
    if (r < 0)
        return r;
    if (!st_api_is_cloud_admin(req) && !st_flavor_visible(*ret, caller_project(req))) {
        json_decref(*ret);
        *ret = NULL;
        return st_err_set(err, -ENOENT, "Flavor %s could not be found.", id);
    }
    return 0;
}

/* ---- list ---- */

enum tristate { TRI_TRUE, TRI_FALSE, TRI_NONE };

static int parse_is_public(const char *v, enum tristate *ret, struct st_err **err)
{
    static const char *const yes[] = {"true", "1", "t", "yes", "y", "on"};
    static const char *const no[] = {"false", "0", "f", "no", "n", "off"};
    if (!v) {
        *ret = TRI_TRUE;
        return 0;
    }
    if (strcasecmp(v, "none") == 0) {
        *ret = TRI_NONE;
        return 0;
    }
    for (size_t i = 0; i < ST_ARRAY_SIZE(yes); i++)
        if (strcasecmp(v, yes[i]) == 0) {
            *ret = TRI_TRUE;
            return 0;
        }
    for (size_t i = 0; i < ST_ARRAY_SIZE(no); i++)
        if (strcasecmp(v, no[i]) == 0) {
            *ret = TRI_FALSE;
            return 0;
        }
    return st_err_set(err, -EINVAL, "Invalid is_public filter [%s]", v);
}

static int query_int(struct st_http_request *req, const char *key, int64_t *ret,
                     struct st_err **err)
{
    const char *v = st_http_query(req, key);
    if (!v)
        return -ENOENT;
    char *end = NULL;
    errno = 0;
    long long n = strtoll(v, &end, 10);
    if (!v[0] || *end || errno || n < 0)
        return st_err_set(err, -EINVAL, "Invalid %s filter [%s]", key, v);
    *ret = n;
    return 0;
}

/* Nova: an admin filters by is_public (True by default, None for all); a
 * project sees the public flavors and the private ones shared with it. */
static bool listed(json_t *doc, const char *project, bool admin, enum tristate is_public)
{
    bool pub = json_is_true(json_object_get(doc, "is_public"));
    if (!admin || is_public == TRI_TRUE)
        return pub || st_flavor_visible(doc, project);
    return is_public == TRI_NONE || !pub;
}

static int list(struct st_http_request *req, struct st_http_response *resp, bool brief,
                struct st_err **err)
{
    MICROVERSION(req, resp, err);
    struct st_api_app *app = req->app;
    enum tristate is_public = TRI_TRUE;
    int r = parse_is_public(st_http_query(req, "is_public"), &is_public, err);
    if (r < 0)
        return r;
    int64_t min_ram = 0, min_disk = 0, limit = FLAVOR_LIMIT_MAX;
    if (((r = query_int(req, "minRam", &min_ram, err)) < 0 && r != -ENOENT) ||
        ((r = query_int(req, "minDisk", &min_disk, err)) < 0 && r != -ENOENT) ||
        ((r = query_int(req, "limit", &limit, err)) < 0 && r != -ENOENT))
        return r;
    if (limit > FLAVOR_LIMIT_MAX)
        limit = FLAVOR_LIMIT_MAX;
    st_autoptr(json_t) docs = NULL;
    if ((r = st_flavor_list(app->kv, &docs, err)) < 0)
        return r;
    const char *project = caller_project(req);
    bool admin = st_api_is_cloud_admin(req);
    const char *marker = st_http_query(req, "marker");
    bool after_marker = marker == NULL;
    json_t *rows = json_array();
    size_t i;
    json_t *doc;
    json_array_foreach(docs, i, doc)
    {
        if (!listed(doc, project, admin, is_public))
            continue;
        if (!after_marker) {
            after_marker = strcmp(json_string_value(json_object_get(doc, "id")), marker) == 0;
            continue;
        }
        if (json_integer_value(json_object_get(doc, "ram")) < min_ram ||
            json_integer_value(json_object_get(doc, "disk")) < min_disk)
            continue;
        if ((int64_t)json_array_size(rows) >= limit)
            break;
        json_array_append_new(rows, render(app, doc, brief));
    }
    if (!after_marker) {
        json_decref(rows);
        return st_err_set(err, -EINVAL, "marker [%s] not found", marker);
    }
    st_http_resp_json(resp, 200, json_pack("{s:o}", "flavors", rows));
    return 0;
}

static int flavor_list(struct st_http_request *req, struct st_http_response *resp,
                       struct st_err **err)
{
    return list(req, resp, true, err);
}

static int flavor_list_detail(struct st_http_request *req, struct st_http_response *resp,
                              struct st_err **err)
{
    return list(req, resp, false, err);
}

/* ---- one flavor ---- */

static int flavor_show(struct st_http_request *req, struct st_http_response *resp,
                       struct st_err **err)
{
    MICROVERSION(req, resp, err);
    st_autoptr(json_t) doc = NULL;
    int r = load(req, &doc, err);
    if (r < 0)
        return r;
    st_http_resp_json(resp, 200, json_pack("{s:o}", "flavor", render(req->app, doc, false)));
    return 0;
}

/* Nova's request names → the service's. */
static json_t *translate_create(json_t *f)
{
    json_t *out = json_deep_copy(f);
    static const char *const renames[][2] = {{"OS-FLV-EXT-DATA:ephemeral", "ephemeral"},
                                             {"os-flavor-access:is_public", "is_public"}};
    for (size_t i = 0; i < ST_ARRAY_SIZE(renames); i++) {
        json_t *v = json_object_get(f, renames[i][0]);
        if (v) {
            json_object_set(out, renames[i][1], v);
            json_object_del(out, renames[i][0]);
        }
    }
    return out;
}

static int flavor_create(struct st_http_request *req, struct st_http_response *resp,
                         struct st_err **err)
{
    MICROVERSION(req, resp, err);
    struct st_api_app *app = req->app;
    st_autoptr(json_t) body = NULL;
    json_t *f = NULL;
    int r = st_json_parse_object(req->body, req->body_len, &body, err);
    if (r < 0 || (r = st_json_get_obj(body, "flavor", true, &f, err)) < 0)
        return r;
    st_autoptr(json_t) in = translate_create(f);
    st_autoptr(json_t) doc = NULL;
    if ((r = st_flavor_create(app->kv, in, &doc, err)) < 0)
        return r;
    st_http_resp_json(resp, 200, json_pack("{s:o}", "flavor", render(app, doc, false)));
    return 0;
}

static int flavor_delete(struct st_http_request *req, struct st_http_response *resp,
                         struct st_err **err)
{
    MICROVERSION(req, resp, err);
    struct st_api_app *app = req->app;
    int r = st_flavor_delete(app->kv, st_http_param(req, "flavor_id"), err);
    if (r < 0)
        return r;
    resp->status = 202;
    return 0;
}

/* ---- extra specs ---- */

static int specs_list(struct st_http_request *req, struct st_http_response *resp,
                      struct st_err **err)
{
    MICROVERSION(req, resp, err);
    st_autoptr(json_t) doc = NULL;
    int r = load(req, &doc, err);
    if (r < 0)
        return r;
    json_t *specs = json_object_get(doc, "extra_specs");
    st_http_resp_json(resp, 200,
                      json_pack("{s:o}", "extra_specs",
                                json_is_object(specs) ? json_incref(specs) : json_object()));
    return 0;
}

static int specs_create(struct st_http_request *req, struct st_http_response *resp,
                        struct st_err **err)
{
    MICROVERSION(req, resp, err);
    struct st_api_app *app = req->app;
    st_autoptr(json_t) body = NULL;
    json_t *specs = NULL;
    int r = st_json_parse_object(req->body, req->body_len, &body, err);
    if (r < 0 || (r = st_json_get_obj(body, "extra_specs", true, &specs, err)) < 0)
        return r;
    st_autoptr(json_t) stored = NULL;
    if ((r = st_flavor_set_extra_specs(app->kv, st_http_param(req, "flavor_id"), specs, &stored,
                                       err)) < 0)
        return r;
    st_http_resp_json(resp, 200, json_pack("{s:O}", "extra_specs", stored));
    return 0;
}

static int spec_show(struct st_http_request *req, struct st_http_response *resp,
                     struct st_err **err)
{
    MICROVERSION(req, resp, err);
    st_autoptr(json_t) doc = NULL;
    int r = load(req, &doc, err);
    if (r < 0)
        return r;
    const char *key = st_http_param(req, "spec_key");
    json_t *v = json_object_get(json_object_get(doc, "extra_specs"), key);
    if (!v)
        return st_err_set(err, -ENOENT, "Flavor %s has no extra specs with key %s.",
                          st_http_param(req, "flavor_id"), key);
    st_http_resp_json(resp, 200, json_pack("{s:O}", key, v));
    return 0;
}

static int spec_update(struct st_http_request *req, struct st_http_response *resp,
                       struct st_err **err)
{
    MICROVERSION(req, resp, err);
    struct st_api_app *app = req->app;
    const char *key = st_http_param(req, "spec_key");
    st_autoptr(json_t) body = NULL;
    int r = st_json_parse_object(req->body, req->body_len, &body, err);
    if (r < 0)
        return r;
    if (json_object_size(body) > 1)
        return st_err_set(err, -EINVAL, "Request body contains too many items");
    if (!json_object_get(body, key))
        return st_err_set(err, -EINVAL, "Request body and URI mismatch");
    st_autoptr(json_t) stored = NULL;
    if ((r = st_flavor_set_extra_specs(app->kv, st_http_param(req, "flavor_id"), body, &stored,
                                       err)) < 0)
        return r;
    st_http_resp_json(resp, 200, json_incref(stored));
    return 0;
}

static int spec_delete(struct st_http_request *req, struct st_http_response *resp,
                       struct st_err **err)
{
    MICROVERSION(req, resp, err);
    struct st_api_app *app = req->app;
    int r = st_flavor_unset_extra_spec(app->kv, st_http_param(req, "flavor_id"),
                                       st_http_param(req, "spec_key"), err);
    if (r < 0)
        return r;
    resp->status = 200;
    return 0;
}

/* ---- access (private flavors) ---- */

static int access_list(struct st_http_request *req, struct st_http_response *resp,
                       struct st_err **err)
{
    MICROVERSION(req, resp, err);
    if (!st_api_is_cloud_admin(req))
        return st_err_set(err, -EPERM,
                          "Policy doesn't allow os_compute_api:os-flavor-access to "
                          "be performed.");
    st_autoptr(json_t) doc = NULL;
    int r = load(req, &doc, err);
    if (r < 0)
        return r;
    const char *id = st_http_param(req, "flavor_id");
    if (json_is_true(json_object_get(doc, "is_public")))
        return st_err_set(err, -ENOENT, "Access list not available for public flavors.");
    json_t *rows = json_array();
    size_t i;
    json_t *p;
    json_array_foreach(json_object_get(doc, "access"), i, p)
        json_array_append_new(rows, json_pack("{s:s, s:O}", "flavor_id", id, "tenant_id", p));
    st_http_resp_json(resp, 200, json_pack("{s:o}", "flavor_access", rows));
    return 0;
}

/* POST /flavors/{id}/action: {"addTenantAccess": {"tenant": id}} or
 * {"removeTenantAccess": ...}; answers the new access list. */
static int flavor_action(struct st_http_request *req, struct st_http_response *resp,
                         struct st_err **err)
{
    MICROVERSION(req, resp, err);
    struct st_api_app *app = req->app;
    st_autoptr(json_t) body = NULL;
    int r = st_json_parse_object(req->body, req->body_len, &body, err);
    if (r < 0)
        return r;
    json_t *add = json_object_get(body, "addTenantAccess");
    json_t *remove = json_object_get(body, "removeTenantAccess");
    json_t *arg = add ? add : remove;
    if (!arg || json_object_size(body) != 1)
        return st_err_set(err, -EINVAL,
                          "flavor actions are addTenantAccess and removeTenantAccess");
    const char *tenant = json_string_value(json_object_get(arg, "tenant"));
    if (!tenant)
        return st_err_set(err, -EINVAL, "Invalid input: 'tenant' is a required property");
    const char *id = st_http_param(req, "flavor_id");
    if ((r = st_flavor_access(app->kv, id, tenant, add != NULL, err)) < 0)
        return r;
    return access_list(req, resp, err);
}

static const struct st_route routes[] = {
    NOVA_ROUTE("GET", "/flavors", "compute:flavor:list", 0, flavor_list),
    NOVA_ROUTE("GET", "/flavors/detail", "compute:flavor:list", 0, flavor_list_detail),
    NOVA_ROUTE("POST", "/flavors", "compute:flavor:create", 0, flavor_create),
    NOVA_ROUTE("GET", "/flavors/{flavor_id}", "compute:flavor:show", 0, flavor_show),
    NOVA_ROUTE("DELETE", "/flavors/{flavor_id}", "compute:flavor:delete", 0, flavor_delete),
    NOVA_ROUTE("GET", "/flavors/{flavor_id}/os-extra_specs", "compute:flavor:show", 0, specs_list),
    NOVA_ROUTE("POST", "/flavors/{flavor_id}/os-extra_specs", "compute:flavor:update", 0,
               specs_create),
    NOVA_ROUTE("GET", "/flavors/{flavor_id}/os-extra_specs/{spec_key}", "compute:flavor:show", 0,
               spec_show),
    NOVA_ROUTE("PUT", "/flavors/{flavor_id}/os-extra_specs/{spec_key}", "compute:flavor:update", 0,
               spec_update),
    NOVA_ROUTE("DELETE", "/flavors/{flavor_id}/os-extra_specs/{spec_key}", "compute:flavor:update",
               0, spec_delete),
    NOVA_ROUTE("GET", "/flavors/{flavor_id}/os-flavor-access", "compute:flavor:access", 0,
               access_list),
    NOVA_ROUTE("POST", "/flavors/{flavor_id}/action", "compute:flavor:update", 0, flavor_action),
};

int nova_flavors_register(struct st_router *r, struct st_err **err)
{
    return st_router_add_all(r, routes, ST_ARRAY_SIZE(routes), err);
}
