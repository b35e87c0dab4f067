/* Neutron's front door: the version documents (public, as Neutron's are),
 * the extension list that openstacksdk consults before some commands (it
 * shows or hides columns and options by what is listed, so it names only
 * what stratos really serves), Neutron's quota API over network/quota.h
 * (`openstack quota show` and `quota set`: limits, defaults, usage; setting
 * and resetting are admin only, "network:quota:update" in the policy), and
 * the registration of the resource files. */
#include "neutron.h"

#include <errno.h>
#include <string.h>

#include "api/app.h"
#include "api/auth.h"
#include "api/neutron-priv.h"
#include "api/router.h"
#include "lib/cleanup.h"
#include "lib/json.h"
#include "network/quota.h"

static int get_versions(struct st_http_request *req, struct st_http_response *resp,
                        struct st_err **err)
{
    (void)err;
    struct st_api_app *app = req->app;
    st_autofree char *self = st_sprintf("%s%s/", app->public_url, NEUTRON_PREFIX);
    st_http_resp_json(resp, 200,
                      json_pack("{s:[{s:s, s:s, s:[{s:s, s:s}]}]}", "versions", "id", "v2.0",
                                "status", "CURRENT", "links", "rel", "self", "href", self));
    return 0;
}

/* GET /v2.0: the collections it serves, as Neutron lists them. */
static int get_resources(struct st_http_request *req, struct st_http_response *resp,
                         struct st_err **err)
{
    (void)err;
    static const char *const collections[][2] = {
        {"network", "networks"},
        {"subnet", "subnets"},
        {"port", "ports"},
        {"security_group", "security-groups"},
        {"security_group_rule", "security-group-rules"},
        {"router", "routers"},
        {"floatingip", "floatingips"},
    };
    struct st_api_app *app = req->app;
    json_t *rows = json_array();
    for (size_t i = 0; i < ST_ARRAY_SIZE(collections); i++) {
        st_autofree char *href =
            st_sprintf("%s%s/%s", app->public_url, NEUTRON_PREFIX, collections[i][1]);
        json_array_append_new(rows, json_pack("{s:s, s:s, s:[{s:s, s:s}]}", "name",
                                              collections[i][0], "collection", collections[i][1],
                                              "links", "rel", "self", "href", href));
    }
    st_http_resp_json(resp, 200, json_pack("{s:o}", "resources", rows));
    return 0;
}

/* ---- extensions ---- */

static const struct {
    const char *alias, *name, *description, *updated;
} extensions[] = {
    {"external-net", "Neutron external network",
     "Adds external network attribute to network resource.", "2013-01-14T10:00:00-00:00"},
    {"router", "Neutron L3 Router",
     "Router abstraction for basic L3 forwarding between L2 Neutron networks and access to "
     "external networks via a NAT gateway.",
     "2012-07-20T10:00:00-00:00"},
    {"ext-gw-mode", "Neutron L3 Configurable external gateway mode",
     "Extension of the router abstraction for specifying whether SNAT should occur on the "
     "external gateway",
     "2013-03-28T10:00:00-00:00"},
    {"extraroute", "Neutron Extra Route", "Extra routes configuration for L3 router",
     "2013-02-01T10:00:00-00:00"},
    {"security-group", "security-group", "The security groups extension.",
     "2012-10-05T10:00:00-00:00"},
    {"stateful-security-group", "Stateful security group",
     "Indicates if the security group is stateful or not", "2019-11-26T09:00:00-00:00"},
    {"port-security", "Port Security", "Provides port security", "2012-07-23T10:00:00-00:00"},
    {"provider", "Provider Network", "Expose mapping of virtual networks to physical networks",
     "2012-09-07T10:00:00-00:00"},
    {"binding", "Port Binding", "Expose port bindings of a virtual port to external application",
     "2014-02-03T10:00:00-00:00"},
    {"net-mtu", "Network MTU", "Provides MTU attribute for a network resource.",
     "2015-03-25T10:00:00-00:00"},
    {"quotas", "Quota management support", "Expose functions for quotas management per tenant",
     "2012-07-29T10:00:00-00:00"},
    {"quota_details", "Quota details management support",
     "Expose functions for quotas usage statistics per project", "2017-02-10T10:00:00-00:00"},
    {"standard-attr-description", "standard-attr-description",
     "Extension to add descriptions to standard attributes", "2016-02-10T10:00:00-00:00"},
    {"standard-attr-revisions", "Resource revision numbers",
     "This extension will display the revision number of neutron resources.",
     "2016-04-11T10:00:00-00:00"},
    {"standard-attr-timestamp", "Resource timestamps",
     "Adds created_at and updated_at fields to all Neutron resources that have Neutron "
     "standard attributes.",
     "2016-09-12T10:00:00-00:00"},
    {"project-id", "project_id field enabled",
     "Extension that indicates that project_id field is enabled.", "2016-09-09T09:09:09-09:09"},
};

static json_t *extension_doc(size_t i)
{
    return json_pack("{s:s, s:s, s:s, s:s, s:[]}", "alias", extensions[i].alias, "name",
                     extensions[i].name, "description", extensions[i].description, "updated",
                     extensions[i].updated, "links");
}

static int list_extensions(struct st_http_request *req, struct st_http_response *resp,
                           struct st_err **err)
{
    (void)req;
    (void)err;
    json_t *rows = json_array();
    for (size_t i = 0; i < ST_ARRAY_SIZE(extensions); i++)
        json_array_append_new(rows, extension_doc(i));
    st_http_resp_json(resp, 200, json_pack("{s:o}", "extensions", rows));
    return 0;
}

static int show_extension(struct st_http_request *req, struct st_http_response *resp,
                          struct st_err **err)
{
    (void)err;
    const char *alias = st_http_param(req, "alias");
    for (size_t i = 0; i < ST_ARRAY_SIZE(extensions); i++) {
        if (strcmp(extensions[i].alias, alias) == 0) {
            st_http_resp_json(resp, 200, json_pack("{s:o}", "extension", extension_doc(i)));
            return 0;
        }
    }
    return st_http_resp_error(req, resp, 404, NULL, "Extension with alias %s does not exist",
                              alias);
}

/* ---- quotas ---- */

/* The project of the path, for action: one's own, or any for an admin (404
 * otherwise, as for another project's resources). */
static int quota_project(struct st_http_request *req, const char *action, const char **ret,
                         struct st_err **err)
{
    const char *project = st_http_param(req, "project_id");
    st_autoptr(st_err) denied = NULL;
    int r = st_api_authorize(req, action, project, &denied);
    if (r == -ENOENT)
        return st_err_set(err, -ENOENT, "Project %s could not be found.", project);
    if (r < 0)
        return st_err_set(err, r, "%s", st_err_msg(denied));
    *ret = project;
    return 0;
}

static json_t *render_limits(const struct st_network_quota *q)
{
    json_t *set = json_object();
    for (size_t i = 0; i < ST_NETWORK_QUOTA_N; i++)
        json_object_set_new(set, st_network_quota_name(i), json_integer(q->limit[i]));
    return json_pack("{s:o}", "quota", set);
}

static int show_quota(struct st_http_request *req, struct st_http_response *resp,
                      struct st_err **err)
{
    struct st_api_app *app = req->app;
    const char *project;
    struct st_network_quota q;
    int r;
    if ((r = quota_project(req, "network:quota:show", &project, err)) < 0 ||
        (r = st_network_quota_get(app->kv, project, &q, err)) < 0)
        return neutron_fail(req, resp, r, *err, NULL);
    st_http_resp_json(resp, 200, render_limits(&q));
    return 0;
}

static int show_quota_default(struct st_http_request *req, struct st_http_response *resp,
                              struct st_err **err)
{
    const char *project;
    int r = quota_project(req, "network:quota:show", &project, err);
    if (r < 0)
        return neutron_fail(req, resp, r, *err, NULL);
    struct st_network_quota q;
    st_network_quota_defaults(&q);
    st_http_resp_json(resp, 200, render_limits(&q));
    return 0;
}

static int show_quota_details(struct st_http_request *req, struct st_http_response *resp,
                              struct st_err **err)
{
    struct st_api_app *app = req->app;
    const char *project;
    struct st_network_quota q;
    struct st_network_quota_usage u;
    int r;
    if ((r = quota_project(req, "network:quota:show", &project, err)) < 0 ||
        (r = st_network_quota_get(app->kv, project, &q, err)) < 0 ||
        (r = st_network_quota_usage(app->kv, project, &u, err)) < 0)
        return neutron_fail(req, resp, r, *err, NULL);
    json_t *set = json_object();
    for (size_t i = 0; i < ST_NETWORK_QUOTA_N; i++)
        json_object_set_new(set, st_network_quota_name(i),
                            json_pack("{s:I, s:I, s:I}", "limit", (json_int_t)q.limit[i], "used",
                                      (json_int_t)u.used[i], "reserved",
                                      (json_int_t)u.reserved[i]));
    st_http_resp_json(resp, 200, json_pack("{s:o}", "quota", set));
    return 0;
}

/* GET /v2.0/quotas: the projects whose quotas differ from the defaults;
 * an admin sees every project, anyone else only their own. */
static int list_quotas(struct st_http_request *req, struct st_http_response *resp,
                       struct st_err **err)
{
    struct st_api_app *app = req->app;
    struct st_network_caller who;
    neutron_caller(req, &who);
    st_autoptr(json_t) rows = NULL;
    int r = st_network_quota_list(app->kv, &rows, err);
    if (r < 0)
        return neutron_fail(req, resp, r, *err, NULL);
    json_t *out = json_array();
    size_t i;
    json_t *row;
    json_array_foreach(rows, i, row)
    {
        const char *p = json_string_value(json_object_get(row, "project_id"));
        if (who.is_admin || (p && who.project_id && strcmp(p, who.project_id) == 0))
            json_array_append(out, row);
    }
    st_http_resp_json(resp, 200, json_pack("{s:o}", "quotas", out));
    return 0;
}

static int update_quota(struct st_http_request *req, struct st_http_response *resp,
                        struct st_err **err)
{
    struct st_api_app *app = req->app;
    const char *project;
    st_autoptr(json_t) body = NULL;
    json_t *changes = NULL;
    struct st_network_quota q;
    int r;
    if ((r = quota_project(req, "network:quota:update", &project, err)) < 0 ||
        (r = neutron_body(req, "quota", &body, &changes, err)) < 0 ||
        (r = st_network_quota_set(app->kv, project, changes, &q, err)) < 0)
        return neutron_fail(req, resp, r, *err, NULL);
    st_http_resp_json(resp, 200, render_limits(&q));
    return 0;
}

static int delete_quota(struct st_http_request *req, struct st_http_response *resp,
                        struct st_err **err)
{
    struct st_api_app *app = req->app;
    const char *project;
    int r;
    if ((r = quota_project(req, "network:quota:update", &project, err)) < 0 ||
        (r = st_network_quota_reset(app->kv, project, err)) < 0)
        return neutron_fail(req, resp, r, *err, NULL);
    resp->status = 204;
    return 0;
}

static const struct st_route routes[] = {
    {.method = "GET",
     .pattern = "/network",
     .action = "network:version:list",
     .family = ST_API_NEUTRON,
     .flags = ST_ROUTE_PUBLIC,
     .handler = get_versions},
    {.method = "GET",
     .pattern = NEUTRON_PREFIX,
     .action = "network:version:show",
     .family = ST_API_NEUTRON,
     .flags = ST_ROUTE_PUBLIC,
     .handler = get_resources},
    NEUTRON_ROUTE("GET", "/extensions", "network:extension:list", list_extensions, NULL),
    NEUTRON_ROUTE("GET", "/extensions/{alias}", "network:extension:show", show_extension, NULL),
    NEUTRON_ROUTE("GET", "/quotas", "network:quota:list", list_quotas, NULL),
    NEUTRON_ROUTE("GET", "/quotas/{project_id}", "network:quota:show", show_quota, NULL),
    NEUTRON_ROUTE("PUT", "/quotas/{project_id}", "network:quota:update", update_quota, NULL),
    NEUTRON_ROUTE("DELETE", "/quotas/{project_id}", "network:quota:update", delete_quota, NULL),
    NEUTRON_ROUTE("GET", "/quotas/{project_id}/default", "network:quota:show", show_quota_default,
                  NULL),
    NEUTRON_ROUTE("GET", "/quotas/{project_id}/details", "network:quota:show", show_quota_details,
                  NULL),
};

int st_api_neutron_register(struct st_router *r, struct st_api_app *app, struct st_err **err)
{
    st_api_app_add_service(app, "network", "neutron", "/network");
    int ret = st_router_add_all(r, routes, ST_ARRAY_SIZE(routes), err);
    if (ret < 0 || (ret = neutron_networks_register(r, err)) < 0 ||
        (ret = neutron_security_register(r, err)) < 0)
        return ret;
    return neutron_routers_register(r, err);
}
