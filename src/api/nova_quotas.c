/* Nova's quota sets and absolute limits at 2.1: `openstack quota show` and
 * `quota set` (os-quota-sets, with /defaults and /detail) and `openstack
 * limits show --absolute` (/limits), over compute/quota.h. Reading a
 * project's quota needs a role in it (or admin); changing one is admin
 * only ("compute:quota:update" is in the policy's admin-only list). */
#include <errno.h>
#include <string.h>
#include <strings.h>

#include "api/app.h"
#include "api/auth.h"
#include "api/nova-priv.h"
#include "api/router.h"
#include "compute/quota.h"
#include "identity/identity.h"
#include "lib/cleanup.h"
#include "lib/json.h"

/* Network quotas that Nova 2.1 still shows, as "unlimited" (Neutron owns them). */
static const char *const network_keys[] = {"fixed_ips", "floating_ips", "security_groups",
                                           "security_group_rules"};

#define MICROVERSION(req, resp, err)                                                               \
    do {                                                                                           \
        int mv_ = nova_microversion(req, resp, err);                                               \
        if (mv_ != 0)                                                                              \
            return mv_ < 0 ? mv_ : 0;                                                              \
    } while (0)

/* The project of the path, checked against the caller. */
static int target_project(struct st_http_request *req, const char *action, const char **ret,
                          struct st_err **err)
{
    const char *project = st_http_param(req, "project_id");
    st_autoptr(st_err) aerr = NULL;
    int r = st_api_authorize(req, action, project, &aerr);
    if (r == -ENOENT)
        return st_err_set(err, -ENOENT, "Project %s could not be found.", project);
    if (r < 0)
        return st_err_set(err, r, "%s", st_err_msg(aerr));
    *ret = project;
    return 0;
}

static json_t *render_limits(const struct st_compute_quota *q, const char *project_id)
{
    json_t *set = json_object();
    if (project_id)
        json_object_set_new(set, "id", json_string(project_id));
    for (size_t i = 0; i < ST_QUOTA_N_KEYS; i++)
        json_object_set_new(set, st_compute_quota_key_name(i), json_integer(q->limit[i]));
    for (size_t i = 0; i < ST_ARRAY_SIZE(network_keys); i++)
        json_object_set_new(set, network_keys[i], json_integer(-1));
    return json_pack("{s:o}", "quota_set", set);
}

static int show_quota(struct st_http_request *req, struct st_http_response *resp,
                      struct st_err **err)
{
    MICROVERSION(req, resp, err);
    struct st_api_app *app = req->app;
    const char *project;
    int r = target_project(req, "compute:quota:show", &project, err);
    if (r < 0)
        return r;
    struct st_compute_quota q;
    if ((r = st_compute_quota_get(app->kv, project, &q, err)) < 0)
        return r;
    st_http_resp_json(resp, 200, render_limits(&q, project));
    return 0;
}

static int show_defaults(struct st_http_request *req, struct st_http_response *resp,
                         struct st_err **err)
{
    MICROVERSION(req, resp, err);
    const char *project;
    int r = target_project(req, "compute:quota:show", &project, err);
    if (r < 0)
        return r;
    struct st_compute_quota q;
    st_compute_quota_defaults(&q);
    st_http_resp_json(resp, 200, render_limits(&q, project));
    return 0;
}

static int show_detail(struct st_http_request *req, struct st_http_response *resp,
                       struct st_err **err)
{
    MICROVERSION(req, resp, err);
    struct st_api_app *app = req->app;
    const char *project;
    int r = target_project(req, "compute:quota:show", &project, err);
    if (r < 0)
        return r;
    struct st_compute_quota q;
    struct st_compute_quota_usage u;
    if ((r = st_compute_quota_get(app->kv, project, &q, err)) < 0 ||
        (r = st_compute_quota_usage(app->kv, project, &u, err)) < 0)
        return r;
    json_t *set = json_pack("{s:s}", "id", project);
    for (size_t i = 0; i < ST_QUOTA_N_KEYS; i++) {
        int64_t used = i == ST_QUOTA_INSTANCES ? u.instances
                       : i == ST_QUOTA_CORES   ? u.cores
                       : i == ST_QUOTA_RAM     ? u.ram
                                               : 0;
        json_object_set_new(set, st_compute_quota_key_name(i),
                            json_pack("{s:I, s:I, s:i}", "in_use", (json_int_t)used, "limit",
                                      (json_int_t)q.limit[i], "reserved", 0));
    }
    for (size_t i = 0; i < ST_ARRAY_SIZE(network_keys); i++)
        json_object_set_new(set, network_keys[i],
                            json_pack("{s:i, s:i, s:i}", "in_use", 0, "limit", -1, "reserved", 0));
    st_http_resp_json(resp, 200, json_pack("{s:o}", "quota_set", set));
    return 0;
}

static int update_quota(struct st_http_request *req, struct st_http_response *resp,
                        struct st_err **err)
{
    MICROVERSION(req, resp, err);
    struct st_api_app *app = req->app;
    const char *project;
    int r = target_project(req, "compute:quota:update", &project, err);
    if (r < 0)
        return r;
    st_autoptr(json_t) body = NULL;
    if ((r = st_json_parse_object(req->body ? req->body : "", req->body_len, &body, err)) < 0)
        return r;
    json_t *set = json_object_get(body, "quota_set");
    if (!json_is_object(set))
        return st_err_set(err, -EINVAL,
                          "Invalid input for field/attribute quota_set. "
                          "'quota_set' is a required property");
    st_autoptr(json_t) changes = json_deep_copy(set);
    bool force = false;
    json_t *f = json_object_get(changes, "force");
    if (f) {
        force = json_is_true(f) ||
                (json_is_string(f) && (strcasecmp(json_string_value(f), "true") == 0 ||
                                       strcmp(json_string_value(f), "1") == 0));
        json_object_del(changes, "force");
    }
    struct st_compute_quota q;
    if ((r = st_compute_quota_set(app->kv, project, changes, force, &q, err)) < 0)
        return r;
    st_http_resp_json(resp, 200, render_limits(&q, NULL));
    return 0;
}

static int delete_quota(struct st_http_request *req, struct st_http_response *resp,
                        struct st_err **err)
{
    MICROVERSION(req, resp, err);
    struct st_api_app *app = req->app;
    const char *project;
    int r = target_project(req, "compute:quota:update", &project, err);
    if (r < 0)
        return r;
    if ((r = st_compute_quota_reset(app->kv, project, err)) < 0)
        return r;
    st_http_resp_json(resp, 202, NULL);
    return 0;
}

static int show_limits(struct st_http_request *req, struct st_http_response *resp,
                       struct st_err **err)
{
    MICROVERSION(req, resp, err);
    struct st_api_app *app = req->app;
    const struct st_token *t = st_api_token(req);
    const char *project = t ? t->project_id : NULL;
    const char *other = st_http_query(req, "tenant_id");
    if (other && st_api_is_cloud_admin(req))
        project = other;
    if (!project)
        return st_err_set(err, -EPERM, "limits need a project-scoped token");
    struct st_compute_quota q;
    struct st_compute_quota_usage u;
    int r;
    if ((r = st_compute_quota_get(app->kv, project, &q, err)) < 0 ||
        (r = st_compute_quota_usage(app->kv, project, &u, err)) < 0)
        return r;
    json_t *absolute = json_pack(
        "{s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:i, s:i, s:i, s:i, s:i, "
        "s:i}",
        "maxTotalInstances", (json_int_t)q.limit[ST_QUOTA_INSTANCES], "maxTotalCores",
        (json_int_t)q.limit[ST_QUOTA_CORES], "maxTotalRAMSize", (json_int_t)q.limit[ST_QUOTA_RAM],
        "maxTotalKeypairs", (json_int_t)q.limit[ST_QUOTA_KEY_PAIRS], "maxServerMeta",
        (json_int_t)q.limit[ST_QUOTA_METADATA_ITEMS], "maxPersonality",
        (json_int_t)q.limit[ST_QUOTA_INJECTED_FILES], "maxPersonalitySize",
        (json_int_t)q.limit[ST_QUOTA_INJECTED_FILE_CONTENT_BYTES], "maxServerGroups",
        (json_int_t)q.limit[ST_QUOTA_SERVER_GROUPS], "maxServerGroupMembers",
        (json_int_t)q.limit[ST_QUOTA_SERVER_GROUP_MEMBERS], "totalInstancesUsed",
        (json_int_t)u.instances, "totalCoresUsed", (json_int_t)u.cores, "totalRAMUsed",
        (json_int_t)u.ram, "maxImageMeta", 128, "maxSecurityGroups", -1, "maxSecurityGroupRules",
        -1, "maxTotalFloatingIps", -1, "totalFloatingIpsUsed", 0, "totalServerGroupsUsed", 0);
    st_http_resp_json(resp, 200,
                      json_pack("{s:{s:[], s:o}}", "limits", "rate", "absolute", absolute));
    return 0;
}

static const struct st_route routes[] = {
    NOVA_ROUTE("GET", "/os-quota-sets/{project_id}", "compute:quota:show", 0, show_quota),
    NOVA_ROUTE("PUT", "/os-quota-sets/{project_id}", "compute:quota:update", 0, update_quota),
    NOVA_ROUTE("DELETE", "/os-quota-sets/{project_id}", "compute:quota:update", 0, delete_quota),
    NOVA_ROUTE("GET", "/os-quota-sets/{project_id}/defaults", "compute:quota:show", 0,
               show_defaults),
    NOVA_ROUTE("GET", "/os-quota-sets/{project_id}/detail", "compute:quota:show", 0, show_detail),
    NOVA_ROUTE("GET", "/limits", "compute:limit:show", 0, show_limits),
};

int nova_quotas_register(struct st_router *r, struct st_err **err)
{
    return st_router_add_all(r, routes, ST_ARRAY_SIZE(routes), err);
}
