/* The generic Neutron handlers and the edge's helpers. Every Neutron
 * resource is created, listed, shown, updated and deleted the same way, so
 * one set of handlers serves them all from the resource's table (the route's
 * userdata): parse and check the body as Neutron's attribute map does
 * (unknown attributes, read-only project, admin-only attributes), take the
 * caller from the token, call the service, and render its answer or its
 * failure in Neutron's words. Failures are recognized by their Neutron
 * wording, because the exception type a client sees ("NetworkInUse",
 * "IpAddressAlreadyAllocated") depends on the cause, not on the errno. */
#include <errno.h>
#include <fnmatch.h>
#include <string.h>
#include <strings.h>

#include "api/app.h"
#include "api/auth.h"
#include "api/http.h"
#include "api/neutron-priv.h"
#include "api/router.h"
#include "identity/identity.h"
#include "lib/cleanup.h"
#include "lib/json.h"
#include "lib/uuid.h"

/* Neutron's exceptions by their messages (neutron_lib/exceptions), with the
 * status Neutron gives them where the errno table would say otherwise (an
 * exhausted pool is 409, not 507). First match wins: specific before general. */
static const struct {
    const char *pattern; /* fnmatch, case-insensitive */
    int status;
    const char *type;
} known_errors[] = {
    {"Network * could not be found*", 404, "NetworkNotFound"},
    {"Subnet * could not be found*", 404, "SubnetNotFound"},
    {"Port * could not be found*", 404, "PortNotFound"},
    {"Security group rule * does not exist*", 404, "SecurityGroupRuleNotFound"},
    {"Security group * does not exist*", 404, "SecurityGroupNotFound"},
    {"Router * could not be found*", 404, "RouterNotFound"},
    {"Floating IP * could not be found*", 404, "FloatingIPNotFound"},
    {"External network * is not reachable from subnet *", 404,
     "ExternalGatewayForFloatingIPNotFound"},
    {"Router * has no interface on subnet *", 404, "RouterInterfaceNotFoundForSubnet"},
    {"Router * does not have an interface with id *", 404, "RouterInterfaceNotFound"},
    {"Unable to complete operation on network *", 409, "NetworkInUse"},
    {"Unable to complete operation on subnet *", 409, "SubnetInUse"},
    {"Unable to complete operation for network *. The mac address * is in use*", 409,
     "MacAddressInUse"},
    {"Security group rule already exists*", 409, "SecurityGroupRuleExists"},
    {"Default security group already exists*", 409, "SecurityGroupDefaultAlreadyExists"},
    {"Updating default security group not allowed*", 409, "SecurityGroupCannotUpdateDefault"},
    {"Security group * in use*", 409, "SecurityGroupInUse"},
    {"Insufficient rights for removing default security group*", 409,
     "SecurityGroupCannotRemoveDefault"},
    {"Router * still has ports*", 409, "RouterInUse"},
    {"IP address * already allocated in subnet *", 409, "IpAddressAlreadyAllocated"},
    {"No more IP addresses available*", 409, "IpAddressGenerationFailure"},
    {"Cannot associate floating IP *", 409, "FloatingIPPortAlreadyAssociated"},
    {"Quota exceeded for resources*", 409, "OverQuota"},
    {"For TCP/UDP protocols, port_range_min must be <= port_range_max*", 400,
     "SecurityGroupInvalidPortRange"},
    {"Invalid value for port *", 400, "SecurityGroupInvalidPortValue"},
    {"Invalid value for ICMP *", 400, "SecurityGroupInvalidIcmpValue"},
    {"ICMP code (port-range-max) * is provided but ICMP type *", 400,
     "SecurityGroupMissingIcmpType"},
    {"Must also specify protocol if port range is given*", 400,
     "SecurityGroupProtocolRequiredWithPorts"},
    {"Invalid protocol * for port range*", 400, "SecurityGroupInvalidProtocolForPortRange"},
    {"Security group rule protocol * not supported*", 400, "SecurityGroupRuleInvalidProtocol"},
    {"Invalid ethertype * for protocol *", 400, "SecurityGroupRuleInvalidEtherType"},
    {"Only remote_ip_prefix or remote_group_id may be provided*", 400,
     "SecurityGroupRemoteGroupAndRemoteIpPrefix"},
    {"Conflicting value ethertype * for CIDR *", 400, "SecurityGroupRuleParameterConflict"},
    {"Invalid input for *", 400, "InvalidInput"},
    {"Bad * request: *", 400, "BadRequest"},
    {"Router already has a port on subnet *", 400, "BadRequest"},
    {"* is disallowed by policy*", 403, "PolicyNotAuthorized"},
};

static int match_known(const char *msg)
{
    for (size_t i = 0; i < ST_ARRAY_SIZE(known_errors); i++)
        if (fnmatch(known_errors[i].pattern, msg, FNM_CASEFOLD) == 0)
            return (int)i;
    return -1;
}

int neutron_fail(const struct st_http_request *req, struct st_http_response *resp, int code,
                 const struct st_err *err, const struct neutron_resource *res)
{
    const char *msg = err ? st_err_msg(err) : NULL;
    if (!msg)
        return code;
    /* the Neutron sentence may come after a context prefix ("adding ...: ") */
    int k = match_known(msg);
    for (const char *p = strstr(msg, ": "); k < 0 && p; p = strstr(p + 2, ": "))
        k = match_known(p + 2);
    int status = st_http_status_from_errno(code);
    const char *type = NULL;
    if (k >= 0) {
        status = known_errors[k].status;
        type = known_errors[k].type;
    } else if (status >= 500) {
        return code; /* the server logs the cause and shows a generic message */
    } else if (status == 404 && res) {
        type = res->not_found_type;
    }
    return st_http_resp_error(req, resp, status, type, "%s", msg);
}

const char *neutron_path_id(const struct st_http_request *req, struct st_http_response *resp,
                            const struct neutron_resource *res)
{
    const char *id = st_http_param(req, res->param);
    if (id && st_uuid_valid(id))
        return id;
    /* a name where an id goes: the clients' lookups expect a plain 404 */
    st_http_resp_error(req, resp, 404, res->not_found_type, "%s %s %s", res->noun, id ? id : "",
                       res->not_found_tail);
    return NULL;
}

void neutron_caller(const struct st_http_request *req, struct st_network_caller *ret)
{
    const struct st_token *t = st_api_token(req);
    *ret = (struct st_network_caller){.project_id = t ? t->project_id : NULL,
                                      .user_id = t ? t->user_id : NULL,
                                      .is_admin = st_api_is_cloud_admin(req)};
}

int neutron_body(const struct st_http_request *req, const char *key, json_t **ret_body,
                 json_t **ret_inner, struct st_err **err)
{
    if (!req->body || req->body_len == 0)
        return st_err_set(err, -EINVAL, "Resource body required");
    json_error_t je;
    json_t *body = json_loadb(req->body, req->body_len, JSON_REJECT_DUPLICATES, &je);
    if (!body)
        return st_err_set(err, -EINVAL, "Malformed request body: %s (line %d, column %d)", je.text,
                          je.line, je.column);
    if (!json_is_object(body)) {
        json_decref(body);
        return st_err_set(err, -EINVAL, "Body contains invalid data");
    }
    if (key) {
        json_t *inner = json_object_get(body, key);
        if (!json_is_object(inner)) {
            json_decref(body);
            return st_err_set(err, -EINVAL, "Unable to find '%s' in request body", key);
        }
        if (ret_inner)
            *ret_inner = inner;
    }
    *ret_body = body;
    return 0;
}

/* Query keys that are not attribute filters. */
static const char *const not_filters[] = {"fields",   "limit",    "marker", "page_reverse",
                                          "sort_key", "sort_dir", "verbose"};
/* Boolean attributes: Python's clients send True/False. */
static const char *const bool_attrs[] = {"admin_state_up",        "shared",      "router:external",
                                         "enable_dhcp",           "is_default",  "stateful",
                                         "port_security_enabled", "distributed", "ha"};

static bool in_list(const char *s, const char *const *list, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(s, list[i]) == 0)
            return true;
    return false;
}

json_t *neutron_filters(const struct st_http_request *req)
{
    json_t *filters = json_object();
    struct st_http_exchange *x = req->conn;
    if (!x)
        return filters;
    st_http_query(req, ""); /* parses the query string once */
    for (size_t i = 0; i < x->n_query; i++) {
        const char *key = x->query[i].key, *value = x->query[i].value;
        if (!key[0] || in_list(key, not_filters, ST_ARRAY_SIZE(not_filters)))
            continue;
        if (strcmp(key, "tenant_id") == 0)
            key = "project_id";
        json_t *v;
        if (in_list(key, bool_attrs, ST_ARRAY_SIZE(bool_attrs)) &&
            (strcasecmp(value, "true") == 0 || strcasecmp(value, "false") == 0))
            v = json_string(strcasecmp(value, "true") == 0 ? "true" : "false");
        else
            v = json_string(value);
        if (!v) /* not UTF-8: nothing can equal it */
            v = json_string("\xef\xbf\xbd");
        json_t *old = json_object_get(filters, key);
        if (!old) {
            json_object_set_new(filters, key, v);
        } else if (json_is_array(old)) {
            json_array_append_new(old, v);
        } else {
            json_object_set_new(filters, key, json_pack("[O, o]", old, v));
        }
    }
    return filters;
}

/* 400 "Unrecognized attribute(s) 'a, b'" for what the resource does not have. */
static int check_attrs(json_t *body, const char *const *allowed, struct st_err **err)
{
    char unknown[512] = "";
    size_t off = 0;
    const char *key;
    json_t *v;
    json_object_foreach(body, key, v)
    {
        if (strcmp(key, "project_id") == 0 || strcmp(key, "tenant_id") == 0)
            continue;
        bool ok = false;
        for (const char *const *a = allowed; a && *a && !ok; a++)
            ok = strcmp(*a, key) == 0;
        if (ok)
            continue;
        int n = snprintf(unknown + off, sizeof(unknown) - off, "%s%s", off ? ", " : "", key);
        if (n > 0)
            off = off + (size_t)n < sizeof(unknown) ? off + (size_t)n : sizeof(unknown) - 1;
    }
    if (off)
        return st_err_set(err, -EINVAL, "Unrecognized attribute(s) '%s'", unknown);
    return 0;
}

/* The project a create names (project_id or tenant_id): an admin may
 * create in another project, as Neutron's policy allows; *ret_project keeps
 * the string alive once the keys leave the body. An update may not move a
 * resource. */
static int take_project(const char *singular, json_t *body, bool create,
                        struct st_network_caller *who, json_t **ret_project, struct st_err **err)
{
    json_t *p = json_object_get(body, "project_id"), *t = json_object_get(body, "tenant_id");
    if (!p && !t)
        return 0;
    if (!create)
        return st_err_set(err, -EINVAL, "Cannot update read-only attribute %s",
                          p ? "project_id" : "tenant_id");
    if ((p && !json_is_string(p)) || (t && !json_is_string(t)))
        return st_err_set(err, -EINVAL,
                          "Invalid input for project_id. Reason: '%s' is not a valid string.",
                          p ? "project_id" : "tenant_id");
    if (p && t && !json_equal(p, t))
        return st_err_set(err, -EINVAL, "'project_id' and 'tenant_id' do not match");
    json_t *project = json_incref(p ? p : t);
    json_object_del(body, "project_id");
    json_object_del(body, "tenant_id");
    const char *want = json_string_value(project);
    if (who->project_id && strcmp(want, who->project_id) != 0) {
        if (!who->is_admin) {
            json_decref(project);
            return st_err_set(err, -EPERM, "(rule:create_%s) is disallowed by policy", singular);
        }
        who->project_id = want;
    }
    *ret_project = project;
    return 0;
}

/* Attributes that only an admin may set away from their default. */
static int check_admin_attrs(const struct st_http_request *req, const struct neutron_resource *res,
                             json_t *body, const char *verb, struct st_err **err)
{
    for (const struct neutron_admin_attr *a = res->admin_attrs; a && a->name; a++) {
        json_t *v = json_object_get(body, a->name);
        if (!v || (a->default_false ? json_is_false(v) : json_is_null(v)))
            continue;
        st_autoptr(st_err) denied = NULL;
        if (st_api_authorize(req, "network:network:external", NULL, &denied) < 0)
            return st_err_set(err, -EPERM, "(rule:%s_%s and rule:%s_%s:%s) is disallowed by policy",
                              verb, res->singular, verb, res->singular, a->name);
    }
    return 0;
}

static const struct neutron_resource *resource_of(const struct st_http_request *req)
{
    return req->route->userdata;
}

static json_t *render(const struct neutron_resource *res, json_t *doc)
{
    if (res->decorate)
        res->decorate(doc);
    return json_pack("{s:O}", res->singular, doc);
}

int neutron_list(struct st_http_request *req, struct st_http_response *resp, struct st_err **err)
{
    const struct neutron_resource *res = resource_of(req);
    struct st_api_app *app = req->app;
    struct st_network_caller who;
    neutron_caller(req, &who);
    st_autoptr(json_t) filters = neutron_filters(req);
    /* an admin asking for one project's resources lists as that project */
    json_t *project = json_object_get(filters, "project_id");
    if (who.is_admin && json_is_string(project))
        who.project_id = json_string_value(project);
    st_autoptr(json_t) docs = NULL;
    int r = res->list(app->kv, &who, filters, &docs, err);
    if (r < 0)
        return neutron_fail(req, resp, r, *err, res);
    json_t *rows = json_is_array(docs) ? json_incref(docs) : json_array();
    size_t i;
    json_t *doc;
    json_array_foreach(rows, i, doc) if (res->decorate) res->decorate(doc);
    st_http_resp_json(resp, 200, json_pack("{s:o}", res->plural, rows));
    return 0;
}

int neutron_create(struct st_http_request *req, struct st_http_response *resp, struct st_err **err)
{
    const struct neutron_resource *res = resource_of(req);
    struct st_api_app *app = req->app;
    struct st_network_caller who;
    neutron_caller(req, &who);
    st_autoptr(json_t) body = NULL;
    st_autoptr(json_t) project = NULL;
    json_t *inner = NULL;
    int r = neutron_body(req, res->singular, &body, &inner, err);
    if (r == 0)
        r = check_attrs(inner, res->create_attrs, err);
    if (r == 0)
        r = take_project(res->singular, inner, true, &who, &project, err);
    if (r == 0)
        r = check_admin_attrs(req, res, inner, "create", err);
    st_autoptr(json_t) doc = NULL;
    if (r == 0) {
        if (res->prepare)
            res->prepare(inner, true);
        r = res->create(app->kv, &who, inner, &doc, err);
    }
    if (r < 0)
        return neutron_fail(req, resp, r, *err, res);
    st_http_resp_json(resp, 201, render(res, doc));
    return 0;
}

int neutron_show(struct st_http_request *req, struct st_http_response *resp, struct st_err **err)
{
    const struct neutron_resource *res = resource_of(req);
    struct st_api_app *app = req->app;
    const char *id = neutron_path_id(req, resp, res);
    if (!id)
        return 0;
    struct st_network_caller who;
    neutron_caller(req, &who);
    st_autoptr(json_t) doc = NULL;
    int r = res->get(app->kv, &who, id, &doc, err);
    if (r < 0)
        return neutron_fail(req, resp, r, *err, res);
    st_http_resp_json(resp, 200, render(res, doc));
    return 0;
}

int neutron_update(struct st_http_request *req, struct st_http_response *resp, struct st_err **err)
{
    const struct neutron_resource *res = resource_of(req);
    struct st_api_app *app = req->app;
    const char *id = neutron_path_id(req, resp, res);
    if (!id)
        return 0;
    struct st_network_caller who;
    neutron_caller(req, &who);
    st_autoptr(json_t) body = NULL;
    st_autoptr(json_t) project = NULL;
    json_t *inner = NULL;
    int r = neutron_body(req, res->singular, &body, &inner, err);
    if (r == 0)
        r = check_attrs(inner, res->update_attrs, err);
    if (r == 0)
        r = take_project(res->singular, inner, false, &who, &project, err);
    if (r == 0)
        r = check_admin_attrs(req, res, inner, "update", err);
    st_autoptr(json_t) doc = NULL;
    if (r == 0) {
        if (res->prepare)
            res->prepare(inner, false);
        r = res->update(app->kv, &who, id, inner, &doc, err);
    }
    if (r < 0)
        return neutron_fail(req, resp, r, *err, res);
    st_http_resp_json(resp, 200, render(res, doc));
    return 0;
}

int neutron_delete(struct st_http_request *req, struct st_http_response *resp, struct st_err **err)
{
    const struct neutron_resource *res = resource_of(req);
    struct st_api_app *app = req->app;
    const char *id = neutron_path_id(req, resp, res);
    if (!id)
        return 0;
    struct st_network_caller who;
    neutron_caller(req, &who);
    int r = res->del(app->kv, &who, id, err);
    if (r < 0)
        return neutron_fail(req, resp, r, *err, res);
    resp->status = 204;
    return 0;
}

void neutron_default(json_t *doc, const char *key, json_t *value)
{
    if (json_object_get(doc, key))
        json_decref(value);
    else
        json_object_set_new(doc, key, value);
}

void neutron_common_fields(json_t *doc)
{
    json_t *project = json_object_get(doc, "project_id");
    if (project)
        neutron_default(doc, "tenant_id", json_incref(project));
    neutron_default(doc, "description", json_string(""));
    neutron_default(doc, "tags", json_array());
}
