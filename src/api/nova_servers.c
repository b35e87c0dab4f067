/* Nova's servers at 2.1: create, list (brief and detail), show, delete and
 * the actions (os-start, os-stop, reboot, os-getConsoleOutput), rendered
 * from the server documents of compute/model.h in the shape §4.4 of the API
 * subset describes and python-novaclient reads. The service (compute/
 * server.h) does the work; this file parses, authorizes and renders. The
 * quota routes ride along (nova_quotas.c). */
#include <errno.h>
#include <openssl/evp.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "api/app.h"
#include "api/auth.h"
#include "api/nova-priv.h"
#include "api/router.h"
#include "compute/server.h"
#include "identity/identity.h"
#include "network/network.h"
#include "lib/cleanup.h"
#include "lib/json.h"
#include "lib/times.h"
#include "lib/uuid.h"

#define CONSOLE_LINES_MAX 100000

static const char *str(json_t *o, const char *k)
{
    return json_string_value(json_object_get(o, k));
}

/* The caller as the service sees it. */
static void caller(const struct st_http_request *req, struct st_compute_caller *who)
{
    const struct st_token *t = st_api_token(req);
    *who = (struct st_compute_caller){.project_id = t ? t->project_id : NULL,
                                      .user_id = t ? t->user_id : NULL,
                                      .is_admin = st_api_is_cloud_admin(req)};
}

/* Loads the server named by the path and checks action on its project;
 * another project's server is "not found", as if it did not exist. */
static int load_server(struct st_http_request *req, const char *action, json_t **ret,
                       struct st_err **err)
{
    struct st_api_app *app = req->app;
    const char *id = st_http_param(req, "server_id");
    int r = st_compute_server_get(app->kv, id, ret, NULL, err);
    if (r < 0)
        return r;
    st_autoptr(st_err) aerr = NULL;
    r = st_api_authorize(req, action, str(*ret, "project_id"), &aerr);
    if (r == -ENOENT)
        r = st_err_set(err, -ENOENT, "Instance %s could not be found.", id);
    else if (r < 0)
        r = st_err_set(err, r, "%s", st_err_msg(aerr));
    if (r < 0) {
        json_decref(*ret);
        *ret = NULL;
    }
    return r;
}

/* ---- rendering ---- */

static json_t *bookmark(const struct st_api_app *app, const char *collection, const char *id)
{
    st_autofree char *href = st_sprintf("%s/compute/%s/%s", app->public_url, collection, id);
    return json_pack("{s:s, s:[{s:s, s:s}]}", "id", id, "links", "rel", "bookmark", "href", href);
}

/* Nova's hostId: sha224(project_id + host), so that a project sees which of
 * its servers share a host without learning the host's name. */
static json_t *host_id(const char *project_id, const char *host)
{
    if (!host || !project_id)
        return json_string("");
    st_autofree char *in = st_sprintf("%s%s", project_id, host);
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int n = 0;
    if (!EVP_Digest(in, strlen(in), md, &n, EVP_sha224(), NULL))
        return json_string("");
    char hex[2 * EVP_MAX_MD_SIZE + 1];
    st_hex_encode(md, n, hex);
    return json_string(hex);
}

/* "2030-01-01T11:00:05.000000", the form Nova gives launched_at. */
static json_t *nova_time(const char *rfc3339)
{
    int64_t ms;
    if (!rfc3339 || st_time_parse_rfc3339(rfc3339, &ms) < 0)
        return json_null();
    char buf[ST_TIME_RFC3339_LEN];
    st_time_rfc3339_us(ms, buf, sizeof(buf));
    size_t n = strlen(buf);
    if (n && buf[n - 1] == 'Z')
        buf[n - 1] = '\0';
    return json_string(buf);
}

/* Nova's "addresses": {network name: [{"version", "addr", "OS-EXT-IPS:type",
 * "OS-EXT-IPS-MAC:mac_addr"}]} from the ports made at create, each fixed
 * address followed by its floating one (fips: port → address, may be NULL). */
static json_t *addresses(json_t *spec, json_t *fips)
{
    json_t *out = json_object();
    size_t i;
    json_t *p;
    json_array_foreach(json_object_get(spec, "ports"), i, p)
    {
        const char *net = str(p, "network_name"), *ip = str(p, "ip");
        if (!ip)
            continue;
        if (!net || !net[0])
            net = str(p, "network_id");
        json_t *list = json_object_get(out, net);
        if (!list) {
            list = json_array();
            json_object_set_new(out, net, list);
        }
        json_array_append_new(list, json_pack("{s:i, s:s, s:s, s:O?}", "version", 4, "addr", ip,
                                              "OS-EXT-IPS:type", "fixed", "OS-EXT-IPS-MAC:mac_addr",
                                              json_object_get(p, "mac")));
        const char *port = str(p, "port_id");
        const char *fip = port ? json_string_value(json_object_get(fips, port)) : NULL;
        if (fip)
            json_array_append_new(list,
                                  json_pack("{s:i, s:s, s:s, s:O?}", "version", 4, "addr", fip,
                                            "OS-EXT-IPS:type", "floating",
                                            "OS-EXT-IPS-MAC:mac_addr", json_object_get(p, "mac")));
    }
    return out;
}

static json_t *render_server(struct st_http_request *req, json_t *doc, json_t *fips)
{
    struct st_api_app *app = req->app;
    json_t *spec = json_object_get(doc, "spec"), *status = json_object_get(doc, "status");
    const char *id = str(doc, "id"), *host = str(spec, "host");
    const char *az = str(spec, "availability_zone");
    json_t *flavor = json_object_get(spec, "flavor"), *image = json_object_get(spec, "image");
    json_t *metadata = json_object_get(spec, "metadata");
    json_t *sgs = json_object_get(spec, "security_groups");
    const char *task = st_compute_server_task_state(doc);
    json_t *power = json_object_get(status, "power_state");
    json_t *s = json_pack(
        "{s:s, s:O?, s:s, s:O?, s:O?, s:o, s:o, s:O?, s:O?, s:o, s:s, s:s, s:o, s:o, s:O?, "
        "s:o, s:[], s:s, s:i, s:s, s:s, s:s, s:s?, s:I, s:o, s:n, s:o}",
        "id", id, "name", json_object_get(doc, "name"), "status", st_compute_server_status(doc),
        "tenant_id", json_object_get(doc, "project_id"), "user_id", json_object_get(doc, "user_id"),
        "metadata", json_is_object(metadata) ? json_deep_copy(metadata) : json_object(), "hostId",
        host_id(str(doc, "project_id"), host), "created", json_object_get(doc, "created_at"),
        "updated", json_object_get(doc, "updated_at"), "addresses", addresses(spec, fips),
        "accessIPv4", "", "accessIPv6", "", "flavor",
        bookmark(app, "flavors", str(flavor, "id") ?: ""), "image",
        str(image, "id") ? bookmark(app, "images", str(image, "id")) : json_string(""), "key_name",
        json_object_get(spec, "key_name"), "security_groups",
        json_is_array(sgs) ? json_deep_copy(sgs) : json_pack("[{s:s}]", "name", "default"),
        "os-extended-volumes:volumes_attached", "OS-DCF:diskConfig", "MANUAL", "progress", 0,
        "config_drive", "", "OS-EXT-AZ:availability_zone", az ? az : "nova", "OS-EXT-STS:vm_state",
        st_compute_server_vm_state(doc), "OS-EXT-STS:task_state", task, "OS-EXT-STS:power_state",
        (json_int_t)(json_is_integer(power) ? json_integer_value(power) : 0),
        "OS-SRV-USG:launched_at", nova_time(str(status, "launched_at")), "OS-SRV-USG:terminated_at",
        "links", nova_links(app, "servers", id));
    if (!s)
        return json_pack("{s:s, s:{}}", "id", id ? id : "", "metadata");
    if (st_api_is_cloud_admin(req)) {
        st_autofree char *instance = st_sprintf("instance-%.8s", id);
        json_object_set_new(s, "OS-EXT-SRV-ATTR:host", host ? json_string(host) : json_null());
        json_object_set_new(s, "OS-EXT-SRV-ATTR:hypervisor_hostname",
                            host ? json_string(host) : json_null());
        json_object_set_new(s, "OS-EXT-SRV-ATTR:instance_name", json_string(instance));
    }
    json_t *fault = json_object_get(status, "fault");
    if (strcmp(st_compute_server_status(doc), "ERROR") == 0 && json_is_object(fault))
        json_object_set_new(s, "fault",
                            json_pack("{s:O?, s:O?, s:O?}", "code", json_object_get(fault, "code"),
                                      "message", json_object_get(fault, "message"), "created",
                                      json_object_get(fault, "created")));
    return s;
}

static json_t *render_brief(const struct st_api_app *app, json_t *doc)
{
    return json_pack("{s:O?, s:O?, s:o}", "id", json_object_get(doc, "id"), "name",
                     json_object_get(doc, "name"), "links",
                     nova_links(app, "servers", str(doc, "id")));
}

/* ---- handlers ---- */

#define MICROVERSION(req, resp, err)                                                               \
    do {                                                                                           \
        int mv_ = nova_microversion(req, resp, err);                                               \
        if (mv_ != 0)                                                                              \
            return mv_ < 0 ? mv_ : 0;                                                              \
    } while (0)

static int create_server(struct st_http_request *req, struct st_http_response *resp,
                         struct st_err **err)
{
    MICROVERSION(req, resp, err);
    struct st_api_app *app = req->app;
    st_autoptr(json_t) body = NULL;
    int r = st_json_parse_object(req->body ? req->body : "", req->body_len, &body, err);
    if (r < 0)
        return r;
    json_t *server = json_object_get(body, "server");
    if (!json_is_object(server))
        return st_err_set(err, -EINVAL,
                          "Invalid input for field/attribute server. 'server' is "
                          "a required property");
    json_t *hints = json_object_get(body, "os:scheduler_hints");
    if (!hints)
        hints = json_object_get(body, "OS-SCH-HNT:scheduler_hints");
    struct st_compute_caller who;
    caller(req, &who);
    st_autoptr(json_t) doc = NULL;
    r = st_compute_server_create(app->kv, &who, server, hints, &doc, err);
    if (r < 0)
        return r;
    const char *id = str(doc, "id");
    json_t *sgs = json_object_get(json_object_get(doc, "spec"), "security_groups");
    st_autofree char *location = st_sprintf("%s%s/servers/%s", app->public_url, NOVA_PREFIX, id);
    st_http_resp_header(resp, "Location", location);
    st_http_resp_json(resp, 202,
                      json_pack("{s:{s:s, s:o, s:s, s:O}}", "server", "id", id, "links",
                                nova_links(app, "servers", id), "OS-DCF:diskConfig", "MANUAL",
                                "security_groups", sgs));
    return 0;
}

static bool truthy(const char *v)
{
    return v && strcasecmp(v, "0") != 0 && strcasecmp(v, "false") != 0 && strcasecmp(v, "f") != 0 &&
           strcasecmp(v, "no") != 0 && strcasecmp(v, "off") != 0;
}

static int parse_list_query(struct st_http_request *req, struct st_compute_server_filter *f,
                            bool *ret_empty, struct st_err **err)
{
    const struct st_token *t = st_api_token(req);
    bool admin = st_api_is_cloud_admin(req);
    *ret_empty = false;
    f->project_id = t ? t->project_id : NULL;
    const char *all = st_http_query(req, "all_tenants");
    if (!all)
        all = st_http_query(req, "all_projects");
    if (admin && all && (all[0] == '\0' || truthy(all)))
        f->project_id = NULL;
    const char *tenant = st_http_query(req, "project_id") ?: st_http_query(req, "tenant_id");
    if (admin && tenant && !f->project_id)
        f->project_id = tenant;
    f->name = st_http_query(req, "name");
    f->status = st_http_query(req, "status");
    if (admin)
        f->host = st_http_query(req, "host");
    f->availability_zone = st_http_query(req, "availability_zone");
    f->key_name = st_http_query(req, "key_name");
    f->image = st_http_query(req, "image");
    f->flavor = st_http_query(req, "flavor");
    f->marker = st_http_query(req, "marker");
    const char *since = st_http_query(req, "changes-since");
    if (since && st_time_parse_rfc3339(since, &f->changes_since_ms) < 0)
        return st_err_set(err, -EINVAL,
                          "Invalid input for query parameters changes-since. "
                          "Value: %.64s. It is not a valid date-time",
                          since);
    const char *limit = st_http_query(req, "limit");
    if (limit) {
        char *end = NULL;
        long long n = strtoll(limit, &end, 10);
        if (!limit[0] || *end || n < 0)
            return st_err_set(err, -EINVAL,
                              "Invalid input for query parameters limit. Value: "
                              "%.32s. must be a non-negative integer",
                              limit);
        f->limit = (size_t)n;
        if (n == 0)
            *ret_empty = true;
    }
    /* deleted servers are not kept: asking for them finds none */
    if (truthy(st_http_query(req, "deleted")))
        *ret_empty = true;
    return 0;
}

static int list(struct st_http_request *req, struct st_http_response *resp, bool detail,
                struct st_err **err)
{
    MICROVERSION(req, resp, err);
    struct st_api_app *app = req->app;
    struct st_compute_server_filter f = {0};
    bool empty = false;
    int r = parse_list_query(req, &f, &empty, err);
    if (r < 0)
        return r;
    st_autoptr(json_t) docs = NULL;
    if (empty) {
        docs = json_array();
    } else if ((r = st_compute_server_list(app->kv, &f, &docs, err)) < 0) {
        return r;
    }
    st_autoptr(json_t) fips = NULL;
    if (detail && json_array_size(docs) > 0 && (r = st_floatingip_by_port(app->kv, &fips, err)) < 0)
        return r;
    json_t *rows = json_array();
    size_t i;
    json_t *doc;
    json_array_foreach(docs, i, doc)
    {
        json_array_append_new(rows,
                              detail ? render_server(req, doc, fips) : render_brief(app, doc));
    }
    json_t *out = json_pack("{s:o}", "servers", rows);
    if (f.limit && json_array_size(docs) == f.limit) {
        st_autofree char *next =
            st_sprintf("%s%s/servers%s?limit=%zu&marker=%s", app->public_url, NOVA_PREFIX,
                       detail ? "/detail" : "", f.limit,
                       str(json_array_get(docs, json_array_size(docs) - 1), "id"));
        json_object_set_new(out, "servers_links",
                            json_pack("[{s:s, s:s}]", "rel", "next", "href", next));
    }
    st_http_resp_json(resp, 200, out);
    return 0;
}

static int list_servers(struct st_http_request *req, struct st_http_response *resp,
                        struct st_err **err)
{
    return list(req, resp, false, err);
}

static int list_servers_detail(struct st_http_request *req, struct st_http_response *resp,
                               struct st_err **err)
{
    return list(req, resp, true, err);
}

static int show_server(struct st_http_request *req, struct st_http_response *resp,
                       struct st_err **err)
{
    MICROVERSION(req, resp, err);
    st_autoptr(json_t) doc = NULL;
    int r = load_server(req, "compute:server:show", &doc, err);
    if (r < 0)
        return r;
    st_autoptr(json_t) fips = NULL;
    struct st_api_app *app = req->app;
    if ((r = st_floatingip_by_port(app->kv, &fips, err)) < 0)
        return r;
    st_http_resp_json(resp, 200, json_pack("{s:o}", "server", render_server(req, doc, fips)));
    return 0;
}

static int delete_server(struct st_http_request *req, struct st_http_response *resp,
                         struct st_err **err)
{
    MICROVERSION(req, resp, err);
    struct st_api_app *app = req->app;
    st_autoptr(json_t) doc = NULL;
    int r = load_server(req, "compute:server:delete", &doc, err);
    if (r < 0)
        return r;
    r = st_compute_server_delete(app->kv, str(doc, "id"), err);
    if (r < 0)
        return r;
    st_http_resp_json(resp, 204, NULL);
    return 0;
}

/* length: an integer or a string of one (novaclient and the SDK send
 * either); absent or -1 means the whole log. */
static int console_length(json_t *args, int64_t *ret, struct st_err **err)
{
    *ret = -1;
    json_t *v = json_is_object(args) ? json_object_get(args, "length") : NULL;
    if (!v || json_is_null(v))
        return 0;
    if (json_is_integer(v)) {
        *ret = json_integer_value(v);
    } else if (json_is_string(v)) {
        const char *s = json_string_value(v);
        char *end = NULL;
        *ret = strtoll(s, &end, 10);
        if (!s[0] || *end)
            return st_err_set(err, -EINVAL,
                              "Invalid input for field/attribute length. Value: "
                              "%.32s. '%.32s' does not match '^-?[0-9]+$'",
                              s, s);
    } else {
        return st_err_set(err, -EINVAL,
                          "Invalid input for field/attribute length: must be an "
                          "integer");
    }
    if (*ret < -1)
        return st_err_set(err, -EINVAL,
                          "Invalid input for field/attribute length. Value: %lld. "
                          "%lld is less than the minimum of -1",
                          (long long)*ret, (long long)*ret);
    if (*ret > CONSOLE_LINES_MAX)
        *ret = -1;
    return 0;
}

static int server_action(struct st_http_request *req, struct st_http_response *resp,
                         struct st_err **err)
{
    MICROVERSION(req, resp, err);
    struct st_api_app *app = req->app;
    /* the server first, so that another project's is "not found" whatever
     * the body says */
    st_autoptr(json_t) doc = NULL;
    int r = load_server(req, "compute:server:action", &doc, err);
    if (r < 0)
        return r;
    st_autoptr(json_t) body = NULL;
    r = st_json_parse_object(req->body ? req->body : "", req->body_len, &body, err);
    if (r < 0)
        return r;
    if (json_object_size(body) != 1)
        return st_err_set(err, -EINVAL, "Malformed request body: name exactly one action");
    const char *name = json_object_iter_key(json_object_iter(body));
    json_t *args = json_object_iter_value(json_object_iter(body));
    static const struct {
        const char *name, *action;
    } actions[] = {{"os-stop", "compute:server:stop"},
                   {"os-start", "compute:server:start"},
                   {"reboot", "compute:server:reboot"},
                   {"os-getConsoleOutput", "compute:server:console"}};
    size_t i = 0;
    while (i < ST_ARRAY_SIZE(actions) && strcmp(actions[i].name, name) != 0)
        i++;
    if (i == ST_ARRAY_SIZE(actions))
        return st_err_set(err, -EINVAL, "There is no such action: %.64s", name);
    r = st_api_authorize(req, actions[i].action, str(doc, "project_id"), err);
    if (r < 0)
        return r;
    const char *id = str(doc, "id");
    if (strcmp(name, "os-stop") == 0) {
        r = st_compute_server_stop(app->kv, id, err);
    } else if (strcmp(name, "os-start") == 0) {
        r = st_compute_server_start(app->kv, id, err);
    } else if (strcmp(name, "reboot") == 0) {
        const char *type = json_is_object(args) ? str(args, "type") : NULL;
        if (!type || (strcasecmp(type, "SOFT") != 0 && strcasecmp(type, "HARD") != 0))
            return st_err_set(err, -EINVAL,
                              "Invalid input for field/attribute reboot: 'type' "
                              "must be SOFT or HARD");
        r = st_compute_server_reboot(app->kv, id, strcasecmp(type, "HARD") == 0, err);
    } else {
        int64_t length;
        if ((r = console_length(args, &length, err)) < 0)
            return r;
        st_autofree char *output = NULL;
        if ((r = st_compute_server_console(app->kv, id, length, &output, err)) < 0)
            return r;
        st_http_resp_json(resp, 200, json_pack("{s:s}", "output", output));
        return 0;
    }
    if (r < 0)
        return r;
    st_http_resp_json(resp, 202, NULL);
    return 0;
}

static const struct st_route routes[] = {
    NOVA_ROUTE("POST", "/servers", "compute:server:create", 0, create_server),
    NOVA_ROUTE("GET", "/servers", "compute:server:list", 0, list_servers),
    NOVA_ROUTE("GET", "/servers/detail", "compute:server:list", 0, list_servers_detail),
    NOVA_ROUTE("GET", "/servers/{server_id}", "compute:server:show", 0, show_server),
    NOVA_ROUTE("DELETE", "/servers/{server_id}", "compute:server:delete", 0, delete_server),
    NOVA_ROUTE("POST", "/servers/{server_id}/action", "compute:server:action", 0, server_action),
};

int nova_servers_register(struct st_router *r, struct st_err **err)
{
    int ret = st_router_add_all(r, routes, ST_ARRAY_SIZE(routes), err);
    if (ret < 0)
        return ret;
    return nova_quotas_register(r, err);
}
