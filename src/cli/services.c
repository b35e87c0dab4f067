/* Service calls and lookups for the compute, image and network commands;
 * see services.h. The request sequences were read from python3-
 * openstackclient 6.0.0, novaclient 18.1.0 and openstacksdk 0.101.0 and
 * checked against the real CLI talking to a recording server. */
#include "services.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <openssl/evp.h>

#include "auth.h"
#include "http.h"
#include "lib/cleanup.h"
#include "lib/json.h"
#include "output.h"

/* ---- calls ---- */

static const char *const nova_headers[] = {"X-OpenStack-Nova-API-Version: 2.1", NULL};
static const char *const sdk_headers[] = {"OpenStack-API-Version: compute 2.1",
                                          "X-OpenStack-Nova-API-Version: 2.1", NULL};

static bool ends_with(const char *s, const char *suffix)
{
    size_t n = strlen(s), m = strlen(suffix);
    return n >= m && strcmp(s + n - m, suffix) == 0;
}

int st_cli_service_url(struct st_cli_ctx *ctx, enum st_cli_service svc, char **ret,
                       struct st_err **err)
{
    static const char *const types[] = {
        [ST_CLI_NOVA] = "compute",
        [ST_CLI_NOVA_SDK] = "compute",
        [ST_CLI_GLANCE] = "image",
        [ST_CLI_NEUTRON] = "network",
    };
    st_autofree char *base = NULL;
    int r = st_cli_ctx_service_url(ctx, types[svc], &base, err);
    if (r < 0)
        return r;
    /* the image and network URLs are unversioned in real catalogs; the
     * SDK appends the version, and so do we */
    if (svc == ST_CLI_GLANCE && !ends_with(base, "/v2"))
        *ret = st_sprintf("%s/v2", base);
    else if (svc == ST_CLI_NEUTRON && !ends_with(base, "/v2.0"))
        *ret = st_sprintf("%s/v2.0", base);
    else
        *ret = st_steal(&base);
    return 0;
}

static const char *const *service_headers(enum st_cli_service svc)
{
    return svc == ST_CLI_NOVA ? nova_headers : svc == ST_CLI_NOVA_SDK ? sdk_headers : NULL;
}

int st_cli_service_call_as(struct st_cli_ctx *ctx, enum st_cli_service svc, const char *method,
                           const char *path, const char *content_type, const json_t *body,
                           json_t **ret, struct st_err **err)
{
    struct st_cli_http *h;
    int r = st_cli_ctx_http(ctx, &h, err);
    if (r < 0)
        return r;
    st_autofree char *base = NULL;
    r = st_cli_service_url(ctx, svc, &base, err);
    if (r < 0)
        return r;
    st_autofree char *url = st_sprintf("%s%s", base, path);
    if (!content_type || strcmp(content_type, "application/json") == 0)
        return st_cli_http_json_with(h, method, url, service_headers(svc), body, ret, err);

    /* another content type: the same exchange, spelled out */
    st_autofree char *text = body ? st_json_dumps(body) : NULL;
    struct st_cli_http_response resp = {0};
    r = st_cli_http_request_with(h, method, url, service_headers(svc), content_type, text,
                                 text ? strlen(text) : 0, &resp, err);
    if (r < 0)
        return r;
    if (resp.status < 200 || resp.status >= 300) {
        st_autofree char *msg =
            st_cli_http_error_message(resp.status, resp.reason, resp.body, resp.body_len,
                                      st_cli_http_response_request_id(&resp));
        r = st_err_set(err, st_cli_http_errno(resp.status), "%s", msg);
    } else if (ret) {
        *ret = NULL;
        if (resp.body_len > 0 && st_json_parse(resp.body, resp.body_len, ret, err) < 0)
            r = st_err_prefix(err, -EPROTO, "invalid response to %s %s", method, url);
    }
    st_cli_http_response_clear(&resp);
    return r;
}

int st_cli_service_call(struct st_cli_ctx *ctx, enum st_cli_service svc, const char *method,
                        const char *path, const json_t *body, json_t **ret, struct st_err **err)
{
    return st_cli_service_call_as(ctx, svc, method, path, NULL, body, ret, err);
}

/* ---- lookups ---- */

const struct st_cli_kind st_cli_kind_flavor = {
    ST_CLI_NOVA_SDK, "/flavors", "flavor", "/flavors/detail?is_public=None",
    "flavors",       "name",     false,    true,
    false,           "Flavor"};
const struct st_cli_kind st_cli_kind_flavor_nova = {
    ST_CLI_NOVA, "/flavors", "flavor", "/flavors", "flavors", "name", false, false, true, "flavor"};
const struct st_cli_kind st_cli_kind_server = {
    ST_CLI_NOVA, "/servers", "server", "/servers", "servers", "name", true, false, true, "server"};
const struct st_cli_kind st_cli_kind_server_sdk = {
    ST_CLI_NOVA_SDK, "/servers", "server", "/servers", "servers",
    "name",          true,       true,     false,      "Server"};
const struct st_cli_kind st_cli_kind_image = {ST_CLI_GLANCE, "/images", NULL, "/images", "images",
                                              "name",        true,      true, false,     "Image"};
const struct st_cli_kind st_cli_kind_keypair = {
    ST_CLI_NOVA_SDK, "/os-keypairs", "keypair", "/os-keypairs", "keypairs",
    "name",          false,          true,      false,          "Keypair"};
const struct st_cli_kind st_cli_kind_hypervisor = {
    ST_CLI_NOVA,   "/os-hypervisors",     "hypervisor", "/os-hypervisors/detail",
    "hypervisors", "hypervisor_hostname", false,        false,
    false,         "hypervisor"};
const struct st_cli_kind st_cli_kind_network = {ST_CLI_NEUTRON, "/networks", "network", "/networks",
                                                "networks",     "name",      true,      true,
                                                false,          "Network"};
const struct st_cli_kind st_cli_kind_security_group = {ST_CLI_NEUTRON,
                                                       "/security-groups",
                                                       "security_group",
                                                       "/security-groups",
                                                       "security_groups",
                                                       "name",
                                                       true,
                                                       true,
                                                       false,
                                                       "SecurityGroup"};

const char *st_cli_str(const json_t *obj, const char *key)
{
    const char *s = json_string_value(json_object_get(obj, key));
    return s ? s : "";
}

/* A JSON value as the text it is compared by: strings as they are,
 * integers in decimal (hypervisor and keypair IDs are numbers). */
static char *id_text(const json_t *v)
{
    if (json_is_string(v))
        return st_strdup(json_string_value(v));
    if (json_is_integer(v))
        return st_sprintf("%" JSON_INTEGER_FORMAT, json_integer_value(v));
    return st_strdup("");
}

char *st_cli_object_path(const struct st_cli_kind *kind, const json_t *obj, const char *suffix)
{
    /* keypairs are named, not numbered, in URLs */
    const char *field = strcmp(kind->collection, "/os-keypairs") == 0 ? "name" : "id";
    st_autofree char *id = id_text(json_object_get(obj, field));
    st_autofree char *esc = st_cli_http_escape(id);
    return st_sprintf("%s/%s%s", kind->collection, esc, suffix ? suffix : "");
}

/* The object of a GET by ID: 0 with *ret NULL when the answer is no object
 * (404, 400, or any error for novaclient, which swallows them all); an
 * SDK lookup fails on the other errors, as openstacksdk does. */
static int get_by_id(struct st_cli_ctx *ctx, const struct st_cli_kind *kind, const char *value,
                     json_t **ret, struct st_err **err)
{
    *ret = NULL;
    struct st_cli_http *h;
    int r = st_cli_ctx_http(ctx, &h, err);
    if (r < 0)
        return r;
    st_autofree char *base = NULL;
    r = st_cli_service_url(ctx, kind->svc, &base, err);
    if (r < 0)
        return r;
    st_autofree char *id = st_cli_http_escape(value);
    st_autofree char *url = st_sprintf("%s%s/%s", base, kind->collection, id);
    struct st_cli_http_response resp = {0};
    r = st_cli_http_request_with(h, "GET", url, service_headers(kind->svc), NULL, NULL, 0, &resp,
                                 err);
    if (r < 0)
        return r;
    if (resp.status >= 200 && resp.status < 300) {
        st_autoptr(json_t) doc = NULL;
        if (st_json_parse(resp.body, resp.body_len, &doc, NULL) == 0) {
            json_t *obj = kind->key ? json_object_get(doc, kind->key) : doc;
            if (json_is_object(obj))
                *ret = json_incref(obj);
        }
    } else if (kind->sdk && resp.status != 404 && resp.status != 400) {
        st_autofree char *msg =
            st_cli_http_error_message(resp.status, resp.reason, resp.body, resp.body_len,
                                      st_cli_http_response_request_id(&resp));
        r = st_err_set(err, st_cli_http_errno(resp.status), "%s", msg);
    }
    st_cli_http_response_clear(&resp);
    return r;
}

static bool value_matches(const json_t *field, const char *value)
{
    st_autofree char *text = id_text(field);
    return json_is_string(field) || json_is_integer(field) ? strcmp(text, value) == 0 : false;
}

int st_cli_find(struct st_cli_ctx *ctx, const struct st_cli_kind *kind, const char *value,
                json_t **ret, struct st_err **err)
{
    return st_cli_find_in(ctx, kind, value, NULL, ret, err);
}

int st_cli_find_in(struct st_cli_ctx *ctx, const struct st_cli_kind *kind, const char *value,
                   const char *query, json_t **ret, struct st_err **err)
{
    json_t *found = NULL;
    int r = get_by_id(ctx, kind, value, &found, err);
    if (r < 0)
        return r;
    if (found) {
        *ret = found;
        return 0;
    }
    char *buf = NULL;
    size_t len;
    FILE *f = open_memstream(&buf, &len);
    if (!f)
        abort();
    fputs(kind->list, f);
    bool first = !strchr(kind->list, '?');
    if (query) {
        fprintf(f, "%c%s", first ? '?' : '&', query);
        first = false;
    }
    if (kind->name_query) {
        st_autofree char *name = st_cli_http_escape(value);
        fprintf(f, "%c%s=%s", first ? '?' : '&', kind->name_field, name);
    }
    fclose(f);
    st_autofree char *path = buf;
    st_autoptr(json_t) doc = NULL;
    r = st_cli_service_call(ctx, kind->svc, "GET", path, NULL, &doc, err);
    if (r < 0)
        return r;
    json_t *rows = json_object_get(doc, kind->list_key);
    if (!json_is_array(rows))
        return st_err_set(err, -EPROTO, "invalid response to GET %s: no \"%s\" list", path,
                          kind->list_key);
    /* both libraries match on the client side, whatever the server's
     * filter did: the SDK the ID or the name, novaclient the name */
    json_t *match = NULL;
    size_t i, n = 0;
    json_t *row;
    json_array_foreach(rows, i, row)
    {
        json_t *item = json_object_get(row, kind->key ? kind->key : "");
        if (!json_is_object(item))
            item = row; /* keypair lists wrap each row: {"keypair": {...}} */
        bool hit = value_matches(json_object_get(item, kind->name_field), value) ||
                   (kind->sdk && value_matches(json_object_get(item, "id"), value));
        if (hit) {
            match = item;
            n++;
        }
    }
    if (n == 0)
        return kind->sdk ? st_err_set(err, -ENOENT, "No %s found for %s", kind->noun, value)
                         : st_err_set(err, -ENOENT, "No %s with a name or ID of '%s' exists.",
                                      kind->noun, value);
    if (n > 1)
        return st_err_set(err, -ENOTUNIQ, "More than one %s exists with the name '%s'.", kind->noun,
                          value);
    if (kind->refetch) {
        /* novaclient's list rows are summaries: the object comes by ID */
        st_autofree char *again = st_cli_object_path(kind, match, NULL);
        st_autoptr(json_t) full = NULL;
        r = st_cli_service_call(ctx, kind->svc, "GET", again, NULL, &full, err);
        if (r < 0)
            return r;
        json_t *obj = json_object_get(full, kind->key);
        if (!json_is_object(obj))
            return st_err_set(err, -EPROTO, "invalid response to GET %s: no \"%s\" object", again,
                              kind->key);
        *ret = json_incref(obj);
        return 0;
    }
    *ret = json_incref(match);
    return 0;
}

/* ---- options and loops ---- */

int st_cli_key_values(struct st_cli_ctx *ctx, const char *option, json_t *obj, struct st_err **err)
{
    char *const *items;
    size_t n = st_cli_args_all(&ctx->args, option, &items);
    for (size_t i = 0; i < n; i++) {
        const char *eq = strchr(items[i], '=');
        if (!eq)
            return st_err_set(err, -EINVAL, "Expected 'key=value' type, but got: %s", items[i]);
        if (eq == items[i])
            return st_err_set(err, -EINVAL, "Property key must be specified: %s", items[i]);
        st_autofree char *key = st_strndup(items[i], (size_t)(eq - items[i]));
        json_object_set_new(obj, key, json_string(eq + 1));
    }
    return 0;
}

size_t st_cli_each(struct st_cli_ctx *ctx,
                   int (*fn)(struct st_cli_ctx *, const char *, void *, struct st_err **),
                   void *data, const char *fail_prefix)
{
    size_t errors = 0;
    for (size_t i = 0; i < ctx->args.n_pos; i++) {
        st_autoptr(st_err) e = NULL;
        if (fn(ctx, ctx->args.pos[i], data, &e) < 0) {
            errors++;
            fprintf(ctx->err, "%s '%s': %s\n", fail_prefix, ctx->args.pos[i], st_err_msg(e));
        }
    }
    return errors;
}

/* ---- formatters ---- */

static int cmp_keys(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* osc-lib's format_dict, to the letter: keys sorted, nested dicts dotted,
 * values as Python's str() ("['a']" for a list, True), None as "key=". */
static char *format_dict(const json_t *obj, const char *prefix)
{
    size_t n = json_object_size(obj), i = 0;
    st_autofree const char **keys = st_new0(const char *, n + 1);
    const char *key;
    json_t *v;
    json_object_foreach((json_t *)obj, key, v) keys[i++] = key;
    qsort(keys, n, sizeof(*keys), cmp_keys);
    char *buf = NULL;
    size_t len;
    FILE *f = open_memstream(&buf, &len);
    if (!f)
        abort();
    for (i = 0; i < n; i++) {
        v = json_object_get(obj, keys[i]);
        st_autofree char *path = prefix ? st_sprintf("%s.%s", prefix, keys[i]) : st_strdup(keys[i]);
        if (json_is_object(v)) {
            st_autofree char *inner = format_dict(v, path);
            fprintf(f, "%s, ", inner);
        } else if (!json_is_null(v)) {
            st_autofree char *text =
                json_is_array(v) ? st_cli_output_repr(v) : st_cli_output_cell(v);
            fprintf(f, "%s='%s', ", path, text);
        } else {
            fprintf(f, "%s=, ", path);
        }
    }
    fclose(f);
    buf[len >= 2 ? len - 2 : 0] = '\0'; /* output[:-2] */
    return buf;
}

json_t *st_cli_dict_column(json_t *value)
{
    if (!json_is_object(value))
        return json_incref(value);
    st_autofree char *text = format_dict(value, NULL);
    return st_cli_output_formatted(text, json_incref(value));
}

/* osc-lib's format_list: the items' texts sorted, joined by sep. */
static char *sorted_join(json_t *list, const char *sep)
{
    size_t n = json_array_size(list), i;
    char **texts = st_new0(char *, n + 1);
    json_t *item;
    json_array_foreach(list, i, item) texts[i] = st_cli_output_cell(item);
    for (i = 1; i < n; i++)
        for (size_t j = i; j > 0 && strcmp(texts[j - 1], texts[j]) > 0; j--) {
            char *t = texts[j];
            texts[j] = texts[j - 1];
            texts[j - 1] = t;
        }
    char *buf = NULL;
    size_t len;
    FILE *f = open_memstream(&buf, &len);
    if (!f)
        abort();
    for (i = 0; i < n; i++) {
        fprintf(f, "%s%s", i ? sep : "", texts[i]);
        free(texts[i]);
    }
    free(texts);
    fclose(f);
    return buf;
}

json_t *st_cli_list_column(json_t *value)
{
    if (!json_is_array(value))
        return json_incref(value);
    st_autofree char *text = sorted_join(value, ", ");
    return st_cli_output_formatted(text, json_incref(value));
}

json_t *st_cli_list_dict_column(json_t *value)
{
    if (!json_is_array(value))
        return json_incref(value);
    char *buf = NULL;
    size_t len;
    FILE *f = open_memstream(&buf, &len);
    if (!f)
        abort();
    size_t i;
    json_t *item;
    json_array_foreach(value, i, item)
    {
        st_autofree char *t = st_cli_output_cell(item);
        fprintf(f, "%s%s", i ? "\n" : "", t);
    }
    fclose(f);
    json_t *cell = st_cli_output_formatted(buf, json_incref(value));
    free(buf);
    return cell;
}

json_t *st_cli_dict_list_column(json_t *value)
{
    if (!json_is_object(value))
        return json_incref(value);
    size_t n = json_object_size(value), i = 0;
    st_autofree const char **keys = st_new0(const char *, n + 1);
    const char *key;
    json_t *v;
    json_object_foreach(value, key, v) keys[i++] = key;
    for (i = 1; i < n; i++)
        for (size_t j = i; j > 0 && strcmp(keys[j - 1], keys[j]) > 0; j--) {
            const char *t = keys[j];
            keys[j] = keys[j - 1];
            keys[j - 1] = t;
        }
    char *buf = NULL;
    size_t len;
    FILE *f = open_memstream(&buf, &len);
    if (!f)
        abort();
    bool first = true;
    for (i = 0; i < n; i++) {
        json_t *list = json_object_get(value, keys[i]);
        if (json_is_null(list))
            continue;
        st_autofree char *items = json_is_array(list) ? sorted_join(list, ", ") : NULL;
        fprintf(f, "%s%s=%s", first ? "" : "; ", keys[i], items ? items : "");
        first = false;
    }
    fclose(f);
    json_t *cell = st_cli_output_formatted(buf, json_incref(value));
    free(buf);
    return cell;
}

void st_cli_poll_sleep(unsigned attempt)
{
    long ms = attempt >= 4 ? 1000 : 100L << attempt;
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) < 0 && errno == EINTR) {
    }
}

char *st_cli_base64(const void *data, size_t n)
{
    char *out = st_new0(char, 4 * ((n + 2) / 3) + 1);
    if (n > 0)
        EVP_EncodeBlock((unsigned char *)out, data, (int)n);
    return out;
}

bool st_cli_env_true(const char *name)
{
    static const char *const words[] = {"1", "t", "true", "on", "y", "yes"};
    const char *v = getenv(name);
    for (size_t i = 0; v && i < ST_ARRAY_SIZE(words); i++)
        if (strcasecmp(v, words[i]) == 0)
            return true;
    return false;
}
