/* Keystone calls and name-or-ID lookups for the identity commands; see
 * identity.h. The order of the requests and the texts of the failures are
 * osc-lib's find_resource and openstackclient.identity.common's, read from
 * python3-openstackclient 6.0.0. */
#include "identity.h"

#include <errno.h>
#include <string.h>

#include "auth.h"
#include "http.h"
#include "lib/cleanup.h"
#include "lib/json.h"

const struct st_cli_identity_kind st_cli_identity_projects = {"projects", "project"};
const struct st_cli_identity_kind st_cli_identity_users = {"users", "user"};
const struct st_cli_identity_kind st_cli_identity_roles = {"roles", "role"};
const struct st_cli_identity_kind st_cli_identity_domains = {"domains", "domain"};
const struct st_cli_identity_kind st_cli_identity_groups = {"groups", "group"};

const char *st_cli_identity_str(const json_t *obj, const char *key)
{
    const char *s = json_string_value(json_object_get(obj, key));
    return s ? s : "";
}

int st_cli_identity_call(struct st_cli_ctx *ctx, const char *method, const char *path,
                         const json_t *body, json_t **ret, struct st_err **err)
{
    struct st_cli_http *h;
    int r = st_cli_ctx_http(ctx, &h, err);
    if (r < 0)
        return r;
    st_autofree char *base = NULL;
    r = st_cli_ctx_service_url(ctx, "identity", &base, err);
    if (r < 0)
        return r;
    st_autofree char *url = st_sprintf("%s%s", base, path);
    return st_cli_http_json(h, method, url, body, ret, err);
}

/* GET by ID: the object, or NULL for any HTTP error (osc-lib catches them
 * all and goes on to the name); only a failed exchange is an error. */
static int get_by_id(struct st_cli_ctx *ctx, const struct st_cli_identity_kind *kind,
                     const char *value, json_t **ret, struct st_err **err)
{
    struct st_cli_http *h;
    int r = st_cli_ctx_http(ctx, &h, err);
    if (r < 0)
        return r;
    st_autofree char *base = NULL;
    r = st_cli_ctx_service_url(ctx, "identity", &base, err);
    if (r < 0)
        return r;
    st_autofree char *id = st_cli_http_escape(value);
    st_autofree char *url = st_sprintf("%s/%s/%s", base, kind->collection, id);
    struct st_cli_http_response resp = {0};
    r = st_cli_http_request(h, "GET", url, NULL, NULL, 0, &resp, err);
    if (r < 0)
        return r;
    *ret = NULL;
    st_autoptr(json_t) doc = NULL;
    if (resp.status >= 200 && resp.status < 300 &&
        st_json_parse(resp.body, resp.body_len, &doc, NULL) == 0 &&
        json_is_object(json_object_get(doc, kind->key)))
        *ret = json_incref(json_object_get(doc, kind->key));
    st_cli_http_response_clear(&resp);
    return 0;
}

int st_cli_identity_find(struct st_cli_ctx *ctx, const struct st_cli_identity_kind *kind,
                         const char *value, const char *domain_id, json_t **ret,
                         struct st_err **err)
{
    json_t *found = NULL;
    int r = get_by_id(ctx, kind, value, &found, err);
    if (r < 0)
        return r;
    if (found) {
        *ret = found;
        return 0;
    }
    /* keystoneclient's find(): the list as the server filters it, no
     * matching here, so Keystone's name filter must be exact */
    st_autofree char *name = st_cli_http_escape(value);
    st_autofree char *dom = domain_id ? st_cli_http_escape(domain_id) : NULL;
    st_autofree char *path =
        dom ? st_sprintf("/%s?domain_id=%s&name=%s", kind->collection, dom, name)
            : st_sprintf("/%s?name=%s", kind->collection, name);
    st_autoptr(json_t) doc = NULL;
    st_autoptr(st_err) e = NULL;
    r = st_cli_identity_call(ctx, "GET", path, NULL, &doc, &e);
    if (r == -ENOENT) /* keystoneclient takes a 404 list as no match */
        return st_err_set(err, -ENOENT, "No %s with a name or ID of '%s' exists.", kind->key,
                          value);
    if (r < 0) {
        st_err_set(err, r, "%s", st_err_msg(e));
        return r;
    }
    json_t *rows = json_object_get(doc, kind->collection);
    if (!json_is_array(rows))
        return st_err_set(err, -EPROTO, "invalid response to GET %s: no \"%s\" list", path,
                          kind->collection);
    if (json_array_size(rows) == 0)
        return st_err_set(err, -ENOENT, "No %s with a name or ID of '%s' exists.", kind->key,
                          value);
    if (json_array_size(rows) > 1)
        return st_err_set(err, -ENOTUNIQ, "More than one %s exists with the name '%s'.", kind->key,
                          value);
    *ret = json_incref(json_array_get(rows, 0));
    return 0;
}

int st_cli_identity_find_lenient(struct st_cli_ctx *ctx, const struct st_cli_identity_kind *kind,
                                 const char *value, const char *domain, json_t **ret,
                                 struct st_err **err)
{
    st_autoptr(json_t) dom = NULL;
    if (domain && *domain) {
        int r =
            st_cli_identity_find_lenient(ctx, &st_cli_identity_domains, domain, NULL, &dom, err);
        if (r < 0)
            return r;
    }
    st_autoptr(st_err) e = NULL;
    int r = st_cli_identity_find(ctx, kind, value, dom ? st_cli_identity_str(dom, "id") : NULL, ret,
                                 &e);
    if (r == -EPERM) {
        *ret = json_pack("{s:s,s:s}", "id", value, "name", value);
        return 0;
    }
    if (r < 0) {
        st_err_set(err, r, "%s", st_err_msg(e));
        return r;
    }
    return 0;
}

const char *st_cli_identity_token_resource(struct st_cli_ctx *ctx, const char *resource,
                                           const char *value, const char *domain)
{
    struct st_cli_auth *a;
    struct st_cli_http *h;
    json_t *token;
    if (st_cli_ctx_auth(ctx, &a, NULL) < 0 || st_cli_ctx_http(ctx, &h, NULL) < 0 ||
        st_cli_auth_token_data(a, h, &token, NULL) < 0)
        return value;
    json_t *obj = json_object_get(token, resource);
    const char *id = json_string_value(json_object_get(obj, "id"));
    const char *name = json_string_value(json_object_get(obj, "name"));
    if (domain && *domain) {
        json_t *d = json_object_get(obj, "domain");
        const char *did = json_string_value(json_object_get(d, "id"));
        const char *dname = json_string_value(json_object_get(d, "name"));
        if (!(did && strcmp(did, domain) == 0) && !(dname && strcmp(dname, domain) == 0))
            return value;
    }
    return id && name && strcmp(name, value) == 0 ? id : value;
}

int st_cli_identity_show(struct st_cli_ctx *ctx, const json_t *obj, struct st_err **err)
{
    if (!json_is_object(obj))
        return st_err_set(err, -EPROTO, "invalid response from Keystone: not an object");
    st_autoptr(json_t) shown = json_copy((json_t *)obj);
    json_object_del(shown, "links");
    return st_cli_ctx_show(ctx, shown, err);
}

int st_cli_identity_domain_id(struct st_cli_ctx *ctx, const char *value, char **ret,
                              struct st_err **err)
{
    *ret = NULL;
    if (!value)
        return 0;
    st_autoptr(json_t) d = NULL;
    int r = st_cli_identity_find_lenient(ctx, &st_cli_identity_domains, value, NULL, &d, err);
    if (r < 0)
        return r;
    *ret = st_strdup(st_cli_identity_str(d, "id"));
    return 0;
}

int st_cli_identity_properties(struct st_cli_ctx *ctx, json_t *obj, struct st_err **err)
{
    char *const *props;
    size_t n = st_cli_args_all(&ctx->args, "property", &props);
    for (size_t i = 0; i < n; i++) {
        const char *eq = strchr(props[i], '=');
        if (!eq)
            return st_err_set(err, -EINVAL, "Expected 'key=value' type, but got: %s", props[i]);
        if (eq == props[i])
            return st_err_set(err, -EINVAL, "Property key must be specified: %s", props[i]);
        st_autofree char *key = st_strndup(props[i], (size_t)(eq - props[i]));
        json_object_set_new(obj, key, json_string(eq + 1));
    }
    return 0;
}

json_t *st_cli_identity_immutable_options(struct st_cli_ctx *ctx)
{
    json_t *o = json_object();
    if (st_cli_args_flag(&ctx->args, "immutable"))
        json_object_set_new(o, "immutable", json_true());
    if (st_cli_args_flag(&ctx->args, "no-immutable"))
        json_object_set_new(o, "immutable", json_false());
    return o;
}

int st_cli_identity_delete_each(struct st_cli_ctx *ctx, const struct st_cli_identity_kind *kind,
                                const char *domain_id, struct st_err **err)
{
    size_t errors = 0;
    for (size_t i = 0; i < ctx->args.n_pos; i++) {
        const char *value = ctx->args.pos[i];
        st_autoptr(st_err) e = NULL;
        st_autoptr(json_t) obj = NULL;
        int r = st_cli_identity_find(ctx, kind, value, domain_id, &obj, &e);
        if (r == 0) {
            st_autofree char *id = st_cli_http_escape(st_cli_identity_str(obj, "id"));
            st_autofree char *path = st_sprintf("/%s/%s", kind->collection, id);
            r = st_cli_identity_call(ctx, "DELETE", path, NULL, NULL, &e);
        }
        if (r < 0) {
            errors++;
            fprintf(ctx->err, "Failed to delete %s with name or ID '%s': %s\n", kind->key, value,
                    st_err_msg(e));
        }
    }
    if (errors > 0)
        return st_err_set(err, -EIO, "%zu of %zu %s failed to delete.", errors, ctx->args.n_pos,
                          kind->collection);
    return 0;
}

/* Python's ordering of two field values, for sort_items: numbers by value,
 * strings by code point, None first (Python 3 would raise; keep going). */
static int field_cmp(json_t *a, json_t *b)
{
    if (json_is_number(a) && json_is_number(b)) {
        double x = json_number_value(a), y = json_number_value(b);
        return (x > y) - (x < y);
    }
    if (json_is_string(a) && json_is_string(b))
        return strcmp(json_string_value(a), json_string_value(b));
    if (json_is_boolean(a) && json_is_boolean(b))
        return json_is_true(a) - json_is_true(b);
    return json_is_null(b) - json_is_null(a);
}

int st_cli_identity_sort(json_t *rows, const char *sort, struct st_err **err)
{
    if (!sort)
        return 0;
    st_autofree char *copy = st_strdup(sort);
    char **keys = NULL;
    size_t n_keys = 0;
    char *save = NULL;
    for (char *k = strtok_r(copy, ",", &save); k; k = strtok_r(NULL, ",", &save)) {
        keys = st_xrealloc(keys, (n_keys + 1) * sizeof(*keys));
        keys[n_keys++] = k;
    }
    int r = 0;
    /* last key first, each a stable sort: the first key ends up major */
    for (size_t k = n_keys; k-- > 0 && r == 0;) {
        char *key = keys[k];
        bool reverse = false;
        char *colon = strchr(key, ':');
        if (colon) {
            *colon = '\0';
            const char *dir = colon + 1;
            if (!*key) {
                r = st_err_set(err, -EINVAL, "'<empty string>'' is not a valid sort key");
                break;
            }
            if (strcmp(dir, "asc") != 0 && strcmp(dir, "desc") != 0) {
                r = st_err_set(err, -EINVAL,
                               "'%s' is not a valid sort direction for sort key %s, use 'asc' or "
                               "'desc' instead",
                               *dir ? dir : "<empty string>", key);
                break;
            }
            reverse = strcmp(dir, "desc") == 0;
        }
        size_t n = json_array_size(rows);
        for (size_t i = 0; i < n; i++)
            if (!json_object_get(json_array_get(rows, i), key)) {
                r = st_err_set(err, -EINVAL, "Resource doesn't have field %s", key);
                break;
            }
        /* insertion sort: stable, and lists here are short */
        for (size_t i = 1; r == 0 && i < n; i++) {
            json_t *row = json_incref(json_array_get(rows, i));
            size_t j = i;
            while (j > 0) {
                int c = field_cmp(json_object_get(json_array_get(rows, j - 1), key),
                                  json_object_get(row, key));
                if (reverse ? c >= 0 : c <= 0)
                    break;
                json_array_set(rows, j, json_array_get(rows, j - 1));
                j--;
            }
            json_array_set_new(rows, j, row);
        }
    }
    free(keys);
    return r;
}
