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
