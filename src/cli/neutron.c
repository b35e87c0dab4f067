/* The network commands' shared pieces; see neutron.h. The request
 * sequences and messages are openstackclient 6.0's over openstacksdk
 * 0.101's, read from their sources and checked against the real CLI. */
#include "neutron.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "http.h"
#include "identity.h"
#include "lib/cleanup.h"
#include "lib/json.h"
#include "output.h"

/* ---- lookups ---- */

const struct st_cli_kind st_cli_kind_subnet = {ST_CLI_NEUTRON, "/subnets", "subnet", "/subnets",
                                               "subnets",      "name",     true,     true,
                                               false,          "Subnet"};
const struct st_cli_kind st_cli_kind_port = {ST_CLI_NEUTRON, "/ports", "port", "/ports", "ports",
                                             "name",         true,     true,   false,    "Port"};
const struct st_cli_kind st_cli_kind_router = {ST_CLI_NEUTRON, "/routers", "router", "/routers",
                                               "routers",      "name",     true,     true,
                                               false,          "Router"};
const struct st_cli_kind st_cli_kind_floatingip = {
    ST_CLI_NEUTRON,        "/floatingips", "floatingip", "/floatingips", "floatingips",
    "floating_ip_address", false,          true,         false,          "FloatingIP"};
const struct st_cli_kind st_cli_kind_security_group_rule = {ST_CLI_NEUTRON,
                                                            "/security-group-rules",
                                                            "security_group_rule",
                                                            "/security-group-rules",
                                                            "security_group_rules",
                                                            "name",
                                                            false,
                                                            true,
                                                            false,
                                                            "SecurityGroupRule"};

/* ---- calls ---- */

/* The last HTTP error's text as openstackclient's show commands print it
 * ("ConflictException: 409, <message>"), for st_cli_neutron_sdk_error;
 * the CLI runs one command, so one slot suffices. */
static char *last_error, *last_error_short;

/* openstacksdk's raise_from_response: the exception class of a status and
 * its details, the "message" of the error body's objects. */
static int sdk_http_error(const char *url, const struct st_cli_http_response *resp,
                          struct st_err **err)
{
    const char *cls = resp->status == 409   ? "ConflictException"
                      : resp->status == 404 ? "NotFoundException"
                      : resp->status == 400 ? "BadRequestException"
                      : resp->status == 412 ? "PreconditionFailedException"
                                            : "HttpException";
    char *buf = NULL;
    size_t len;
    FILE *f = open_memstream(&buf, &len);
    if (!f)
        abort();
    st_autoptr(json_t) doc = NULL;
    size_t n = 0;
    if (resp->body_len > 0 && st_json_parse(resp->body, resp->body_len, &doc, NULL) == 0) {
        const char *key;
        json_t *v;
        json_object_foreach(doc, key, v)
        {
            const char *m = json_string_value(json_object_get(v, "message"));
            if (m && *m)
                fprintf(f, "%s%s", n++ ? "\n" : "", m);
        }
        const char *m = json_string_value(json_object_get(doc, "message"));
        if (n == 0 && m && *m)
            fprintf(f, "%s", m), n++;
    }
    if (n == 0)
        fputs(resp->reason && *resp->reason ? resp->reason : resp->body ? resp->body : "", f);
    fclose(f);
    st_autofree char *details = buf;
    const char *source = resp->status >= 400 && resp->status < 500 ? "Client" : "Server";
    free(last_error);
    free(last_error_short);
    last_error = st_sprintf("%s: %ld: %s Error for url: %s%s%s", cls, resp->status, source, url,
                            *details ? ", " : "", details);
    last_error_short = st_sprintf("%s: %ld%s%s", cls, resp->status, *details ? ", " : "", details);
    return st_err_set(err, st_cli_http_errno(resp->status), "%s", last_error);
}

int st_cli_neutron_call(struct st_cli_ctx *ctx, const char *method, const char *path,
                        const json_t *body, json_t **ret, struct st_err **err)
{
    struct st_cli_http *h;
    int r = st_cli_ctx_http(ctx, &h, err);
    if (r < 0)
        return r;
    st_autofree char *base = NULL;
    r = st_cli_service_url(ctx, ST_CLI_NEUTRON, &base, err);
    if (r < 0)
        return r;
    st_autofree char *url = st_sprintf("%s%s", base, path);
    st_autofree char *text = body ? st_json_dumps(body) : NULL;
    struct st_cli_http_response resp = {0};
    r = st_cli_http_request_with(h, method, url, NULL, "application/json", text,
                                 text ? strlen(text) : 0, &resp, err);
    if (r < 0)
        return r;
    if (resp.status < 200 || resp.status >= 300)
        r = sdk_http_error(url, &resp, err);
    else if (ret && resp.body_len > 0 && st_json_parse(resp.body, resp.body_len, ret, err) < 0)
        r = st_err_prefix(err, -EPROTO, "invalid response to %s %s", method, url);
    else if (ret && resp.body_len == 0)
        *ret = NULL;
    st_cli_http_response_clear(&resp);
    return r;
}

/* doc[key] as a new reference, or -EPROTO naming the call. */
static int unwrap(json_t *doc, const char *key, const char *method, const char *path, json_t **ret,
                  struct st_err **err)
{
    json_t *obj = json_object_get(doc, key);
    if (!json_is_object(obj))
        return st_err_set(err, -EPROTO, "invalid response to %s %s: no \"%s\" object", method, path,
                          key);
    *ret = json_incref(obj);
    return 0;
}

int st_cli_neutron_create(struct st_cli_ctx *ctx, const struct st_cli_kind *kind,
                          const json_t *attrs, json_t **ret, struct st_err **err)
{
    st_autoptr(json_t) body = json_pack("{s:O}", kind->key, (json_t *)attrs);
    st_autoptr(json_t) doc = NULL;
    int r = st_cli_neutron_call(ctx, "POST", kind->collection, body, &doc, err);
    if (r < 0)
        return r;
    return unwrap(doc, kind->key, "POST", kind->collection, ret, err);
}

int st_cli_neutron_update(struct st_cli_ctx *ctx, const struct st_cli_kind *kind, const json_t *obj,
                          const json_t *attrs, json_t **ret, struct st_err **err)
{
    st_autofree char *path = st_cli_object_path(kind, obj, NULL);
    st_autoptr(json_t) body = json_pack("{s:O}", kind->key, (json_t *)attrs);
    st_autoptr(json_t) doc = NULL;
    int r = st_cli_neutron_call(ctx, "PUT", path, body, &doc, err);
    if (r < 0 || !ret)
        return r;
    return unwrap(doc, kind->key, "PUT", path, ret, err);
}

int st_cli_neutron_get_list(struct st_cli_ctx *ctx, const struct st_cli_kind *kind,
                            const char *query, json_t **ret, struct st_err **err)
{
    st_autofree char *path = query ? st_sprintf("%s?%s", kind->list, query) : st_strdup(kind->list);
    st_autoptr(json_t) doc = NULL;
    int r = st_cli_neutron_call(ctx, "GET", path, NULL, &doc, err);
    if (r < 0)
        return r;
    json_t *list = json_object_get(doc, kind->list_key);
    if (!json_is_array(list))
        return st_err_set(err, -EPROTO, "invalid response to GET %s: no \"%s\" list", path,
                          kind->list_key);
    *ret = json_incref(list);
    return 0;
}

int st_cli_neutron_find_id(struct st_cli_ctx *ctx, const struct st_cli_kind *kind,
                           const char *value, char **ret, struct st_err **err)
{
    st_autoptr(json_t) obj = NULL;
    int r = st_cli_find(ctx, kind, value, &obj, err);
    if (r < 0)
        return r;
    *ret = st_strdup(st_cli_str(obj, "id"));
    return 0;
}

static int delete_one(struct st_cli_ctx *ctx, const char *value, void *data, struct st_err **err)
{
    const struct st_cli_kind *kind = data;
    st_autoptr(json_t) obj = NULL;
    int r = st_cli_find(ctx, kind, value, &obj, err);
    if (r < 0)
        return r;
    st_autofree char *path = st_cli_object_path(kind, obj, NULL);
    return st_cli_neutron_call(ctx, "DELETE", path, NULL, NULL, err);
}

int st_cli_neutron_delete_each(struct st_cli_ctx *ctx, const struct st_cli_kind *kind,
                               const char *noun, struct st_err **err)
{
    st_autofree char *prefix = st_sprintf("Failed to delete %s with name or ID", noun);
    size_t failed = st_cli_each(ctx, delete_one, (void *)kind, prefix);
    if (failed > 0)
        return st_err_set(err, -EIO, "%zu of %zu %ss failed to delete.", failed, ctx->args.n_pos,
                          noun);
    return 0;
}

int st_cli_neutron_sdk_error(struct st_err **err, int r)
{
    if (r >= 0)
        return r;
    /* an HTTP error is told by the exception's short text and details */
    if (last_error && err && *err && strcmp(st_err_msg(*err), last_error) == 0) {
        st_err_clear(err);
        return st_err_set(err, r, "Error while executing command: %s", last_error_short);
    }
    return st_err_prefix(err, r, "Error while executing command");
}

int st_cli_neutron_list_where(struct st_cli_ctx *ctx, const struct st_cli_kind *kind,
                              const char *key, const char *value, json_t **ret, struct st_err **err)
{
    struct st_cli_neutron_query q = {0};
    st_cli_neutron_query_add(&q, key, value);
    int r = st_cli_neutron_get_list(ctx, kind, q.text, ret, err);
    st_cli_neutron_query_clear(&q);
    return r;
}

int st_cli_neutron_router_ports(struct st_cli_ctx *ctx, const json_t *router, json_t **ret,
                                struct st_err **err)
{
    st_autoptr(json_t) ports = NULL;
    int r = st_cli_neutron_list_where(ctx, &st_cli_kind_port, "device_id", st_cli_str(router, "id"),
                                      &ports, err);
    if (r < 0)
        return r;
    st_autoptr(json_t) interfaces = json_array();
    size_t i;
    json_t *port;
    json_array_foreach(ports, i, port)
    {
        if (strcmp(st_cli_str(port, "device_owner"), "network:router_gateway") != 0)
            json_array_append(interfaces, port);
    }
    *ret = st_steal(&interfaces);
    return 0;
}

int st_cli_neutron_router_interface(struct st_cli_ctx *ctx, const json_t *router,
                                    const char *action, const char *key, const char *id,
                                    struct st_err **err)
{
    st_autofree char *suffix = st_sprintf("/%s", action);
    st_autofree char *path = st_cli_object_path(&st_cli_kind_router, router, suffix);
    st_autoptr(json_t) body = json_pack("{s:s}", key, id);
    return st_cli_neutron_call(ctx, "PUT", path, body, NULL, err);
}

/* ---- the commands' skeletons ---- */

static int sdk_error_if(unsigned flags, struct st_err **err, int r)
{
    return flags & ST_CLI_NEUTRON_SDK_ERRORS ? st_cli_neutron_sdk_error(err, r) : r;
}

int st_cli_neutron_create_show(struct st_cli_ctx *ctx, const struct st_cli_kind *kind,
                               const json_t *attrs, const struct st_cli_nfield *fields,
                               unsigned flags, struct st_err **err)
{
    st_autoptr(json_t) obj = NULL;
    int r = st_cli_neutron_create(ctx, kind, attrs, &obj, err);
    if (r < 0)
        return sdk_error_if(flags, err, r);
    return st_cli_neutron_show(ctx, fields, obj, err);
}

int st_cli_neutron_run_show(struct st_cli_ctx *ctx, const struct st_cli_kind *kind,
                            const struct st_cli_nfield *fields, unsigned flags, struct st_err **err)
{
    st_autoptr(json_t) obj = NULL;
    int r = st_cli_find(ctx, kind, ctx->args.pos[0], &obj, err);
    if (r < 0)
        return sdk_error_if(flags, err, r);
    return st_cli_neutron_show(ctx, fields, obj, err);
}

int st_cli_neutron_run_set(struct st_cli_ctx *ctx, const struct st_cli_kind *kind,
                           st_cli_neutron_attrs_fn *fill, void *data, unsigned flags,
                           struct st_err **err)
{
    st_autoptr(json_t) obj = NULL;
    int r = st_cli_find(ctx, kind, ctx->args.pos[0], &obj, err);
    if (r < 0)
        return r;
    st_autoptr(json_t) attrs = json_object();
    r = fill(ctx, obj, attrs, data, err);
    if (r != 0)
        return r;
    if (json_object_size(attrs) == 0 && !(flags & ST_CLI_NEUTRON_SEND_EMPTY))
        return 0;
    return st_cli_neutron_update(ctx, kind, obj, attrs, NULL, err);
}

int st_cli_neutron_list_print(struct st_cli_ctx *ctx, const struct st_cli_kind *kind,
                              struct st_cli_neutron_query *q, const struct st_cli_nfield *fields,
                              size_t n, struct st_err **err)
{
    st_autoptr(json_t) objects = NULL;
    int r = st_cli_neutron_get_list(ctx, kind, q->text, &objects, err);
    st_cli_neutron_query_clear(q);
    if (r < 0)
        return r;
    return st_cli_neutron_list(ctx, fields, n, objects, err);
}

/* ---- queries ---- */

void st_cli_neutron_query_add(struct st_cli_neutron_query *q, const char *key, const char *value)
{
    st_autofree char *k = st_cli_http_escape(key);
    st_autofree char *v = st_cli_http_escape(value);
    char *text = q->text ? st_sprintf("%s&%s=%s", q->text, k, v) : st_sprintf("%s=%s", k, v);
    free(q->text);
    q->text = text;
}

void st_cli_neutron_query_bool(struct st_cli_neutron_query *q, const char *key, bool value)
{
    st_cli_neutron_query_add(q, key, value ? "True" : "False");
}

void st_cli_neutron_query_clear(struct st_cli_neutron_query *q)
{
    free(q->text);
    q->text = NULL;
}

void st_cli_neutron_query_option(struct st_cli_ctx *ctx, struct st_cli_neutron_query *q,
                                 const char *key, const char *option)
{
    const char *v = st_cli_args_get(&ctx->args, option);
    if (v)
        st_cli_neutron_query_add(q, key, v);
}

void st_cli_neutron_query_flag_pair(struct st_cli_ctx *ctx, struct st_cli_neutron_query *q,
                                    const char *key, const char *on, const char *off)
{
    if (st_cli_args_flag(&ctx->args, on) || st_cli_args_flag(&ctx->args, off))
        st_cli_neutron_query_bool(q, key, st_cli_args_flag(&ctx->args, on));
}

/* The ID of --<option>'s object, or NULL (and 0) when it is absent. */
static int option_id(struct st_cli_ctx *ctx, const char *option, const struct st_cli_kind *kind,
                     char **ret, struct st_err **err)
{
    const char *value = st_cli_args_get(&ctx->args, option);
    *ret = NULL;
    return value ? st_cli_neutron_find_id(ctx, kind, value, ret, err) : 0;
}

int st_cli_neutron_query_id(struct st_cli_ctx *ctx, struct st_cli_neutron_query *q, const char *key,
                            const char *option, const struct st_cli_kind *kind, struct st_err **err)
{
    st_autofree char *id = NULL;
    int r = option_id(ctx, option, kind, &id, err);
    if (id)
        st_cli_neutron_query_add(q, key, id);
    return r;
}

int st_cli_neutron_query_project(struct st_cli_ctx *ctx, struct st_cli_neutron_query *q,
                                 struct st_err **err)
{
    st_autofree char *project = NULL;
    int r = st_cli_neutron_project_id(ctx, &project, err);
    if (project)
        st_cli_neutron_query_add(q, "project_id", project);
    return r;
}

/* ---- options ---- */

static bool in_list(const char *const *list, const char *s)
{
    for (; list && *list; list++)
        if (strcmp(*list, s) == 0)
            return true;
    return false;
}

/* "a, b" of the keys of a list (NULL-terminated) or of an object's. */
static char *join_keys(const char *const *list, const json_t *obj)
{
    char *buf = NULL;
    size_t len;
    FILE *f = open_memstream(&buf, &len);
    if (!f)
        abort();
    size_t n = 0;
    for (; list && *list; list++)
        fprintf(f, "%s%s", n++ ? ", " : "", *list);
    const char *key;
    json_t *v;
    json_object_foreach((json_t *)obj, key, v) fprintf(f, "%s%s", n++ ? ", " : "", key);
    fclose(f);
    return buf;
}

/* One "k=v,k2=v2" value as an object; -EINVAL with osc-lib's message. */
static int parse_kv(const char *text, const char *const *required, const char *const *optional,
                    json_t **ret, struct st_err **err)
{
    st_autoptr(json_t) params = json_object();
    st_autofree char *copy = st_strdup(text);
    /* split keeps empty pieces: "a=1,,b=2" fails on the empty one */
    for (char *kv = copy, *next; kv; kv = next) {
        next = strchr(kv, ',');
        if (next)
            *next++ = '\0';
        char *eq = strchr(kv, '=');
        if (!eq)
            return st_err_set(err, -EINVAL,
                              "Expected comma separated 'key=value' pairs, but got: %s", kv);
        if (eq == kv)
            return st_err_set(err, -EINVAL, "Each property key must be specified: %s", kv);
        *eq = '\0';
        json_object_set_new(params, kv, json_string(eq + 1));
    }
    if (required || optional) {
        st_autoptr(json_t) invalid = json_object();
        const char *key;
        json_t *v;
        json_object_foreach(params, key, v) if (!in_list(required, key) && !in_list(optional, key))
            json_object_set_new(invalid, key, json_null());
        if (json_object_size(invalid) > 0) {
            st_autofree char *bad = join_keys(NULL, invalid);
            st_autoptr(json_t) none = json_object();
            char *valid_buf = NULL;
            size_t len;
            FILE *f = open_memstream(&valid_buf, &len);
            if (!f)
                abort();
            st_autofree char *req = join_keys(required, none);
            st_autofree char *opt = join_keys(optional, none);
            fprintf(f, "%s%s%s", req, *req && *opt ? ", " : "", opt);
            fclose(f);
            st_autofree char *valid = valid_buf;
            return st_err_set(err, -EINVAL, "Invalid keys %s specified.\nValid keys are: %s", bad,
                              valid);
        }
        st_autoptr(json_t) missing = json_object();
        for (const char *const *k = required; k && *k; k++)
            if (!json_object_get(params, *k))
                json_object_set_new(missing, *k, json_null());
        if (json_object_size(missing) > 0) {
            st_autoptr(json_t) none = json_object();
            st_autofree char *lacking = join_keys(NULL, missing);
            st_autofree char *all = join_keys(required, none);
            return st_err_set(err, -EINVAL, "Missing required keys %s.\nRequired keys are: %s",
                              lacking, all);
        }
    }
    *ret = st_steal(&params);
    return 0;
}

int st_cli_neutron_multi_kv(struct st_cli_ctx *ctx, const char *option, const char *const *required,
                            const char *const *optional, json_t **ret, struct st_err **err)
{
    st_autoptr(json_t) list = json_array();
    char *const *values;
    size_t n = st_cli_args_all(&ctx->args, option, &values);
    for (size_t i = 0; i < n; i++) {
        json_t *obj = NULL;
        int r = parse_kv(values[i], required, optional, &obj, err);
        if (r < 0)
            return r;
        json_array_append_new(list, obj);
    }
    *ret = st_steal(&list);
    return 0;
}

void st_cli_neutron_flag_pair(struct st_cli_ctx *ctx, json_t *attrs, const char *key,
                              const char *on, const char *off)
{
    if (st_cli_args_flag(&ctx->args, on))
        json_object_set_new(attrs, key, json_true());
    if (st_cli_args_flag(&ctx->args, off))
        json_object_set_new(attrs, key, json_false());
}

void st_cli_neutron_string_option(struct st_cli_ctx *ctx, json_t *attrs, const char *key,
                                  const char *option)
{
    const char *v = st_cli_args_get(&ctx->args, option);
    if (v)
        json_object_set_new(attrs, key, json_string(v));
}

json_t *st_cli_neutron_strings_option(struct st_cli_ctx *ctx, json_t *attrs, const char *key,
                                      const char *option)
{
    char *const *values;
    size_t n = st_cli_args_all(&ctx->args, option, &values);
    if (n == 0)
        return NULL;
    json_t *list = json_array();
    for (size_t i = 0; i < n; i++)
        json_array_append_new(list, json_string(values[i]));
    json_object_set_new(attrs, key, list);
    return list;
}

int st_cli_neutron_id_option(struct st_cli_ctx *ctx, json_t *attrs, const char *key,
                             const char *option, const struct st_cli_kind *kind,
                             struct st_err **err)
{
    st_autofree char *id = NULL;
    int r = option_id(ctx, option, kind, &id, err);
    if (id)
        json_object_set_new(attrs, key, json_string(id));
    return r;
}

int st_cli_neutron_project_id(struct st_cli_ctx *ctx, char **ret, struct st_err **err)
{
    *ret = NULL;
    const char *project = st_cli_args_get(&ctx->args, "project");
    if (!project)
        return 0;
    st_autoptr(json_t) p = NULL;
    int r = st_cli_identity_find_lenient(ctx, &st_cli_identity_projects, project,
                                         st_cli_args_get(&ctx->args, "project-domain"), &p, err);
    if (r == 0)
        *ret = st_strdup(st_cli_identity_str(p, "id"));
    return r;
}

int st_cli_neutron_project_attr(struct st_cli_ctx *ctx, json_t *attrs, struct st_err **err)
{
    st_autofree char *project = NULL;
    int r = st_cli_neutron_project_id(ctx, &project, err);
    if (project)
        json_object_set_new(attrs, "project_id", json_string(project));
    return r;
}

int st_cli_neutron_fixed_ips(struct st_cli_ctx *ctx, const json_t *specs, bool keep_empty_address,
                             json_t **ret, struct st_err **err)
{
    st_autoptr(json_t) ips = json_array();
    size_t i;
    json_t *spec;
    json_array_foreach(specs, i, spec)
    {
        json_t *ip = json_object();
        json_array_append_new(ips, ip);
        const char *subnet = st_cli_str(spec, "subnet");
        if (*subnet) {
            st_autofree char *id = NULL;
            int r = st_cli_neutron_find_id(ctx, &st_cli_kind_subnet, subnet, &id, err);
            if (r < 0)
                return r;
            json_object_set_new(ip, "subnet_id", json_string(id));
        }
        json_t *address = json_object_get(spec, "ip-address");
        if (address && (keep_empty_address || *json_string_value(address)))
            json_object_set(ip, "ip_address", address);
    }
    *ret = st_steal(&ips);
    return 0;
}

void st_cli_neutron_routes_to_api(json_t *routes)
{
    size_t i;
    json_t *route;
    json_array_foreach(routes, i, route)
    {
        json_object_set(route, "nexthop", json_object_get(route, "gateway"));
        json_object_del(route, "gateway");
    }
}

char *st_cli_neutron_lower(const char *s)
{
    char *lower = s ? st_strdup(s) : NULL;
    for (char *p = lower; p && *p; p++)
        *p = (char)(*p >= 'A' && *p <= 'Z' ? *p - 'A' + 'a' : *p);
    return lower;
}
