/* Glance v2: the adapter between the image service (image/image.h) and the
 * wire. It decides who may do what (visibility first, so that another
 * project's private image is a 404; then the policy action against the
 * image's owner, so that writing someone else's public image is a 403), and
 * renders records in Glance's flat shape: core attributes and user
 * properties side by side, "owner" for the project, "self"/"file"/"schema"
 * links. The upload is a streaming route: the image is checked and marked
 * "saving" before the client sends a byte, then every chunk goes straight
 * to the service's file writer. */
#include "glance.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/app.h"
#include "api/auth.h"
#include "api/router.h"
#include "identity/identity.h"
#include "image/image.h"
#include "lib/cleanup.h"
#include "lib/json.h"

#define GLANCE_V2         ST_GLANCE_PREFIX "/v2"
#define GLANCE_VERSION    "v2.9"
#define GLANCE_LIMIT_DEF  25   /* Glance's limit_param_default */
#define GLANCE_LIMIT_MAX  1000 /* Glance's api_limit_max */
#define GLANCE_PATCH_TYPE "application/openstack-images-v2.1-json-patch"
#define GLANCE_QUERY_TAGS 32

#define GLANCE_ROUTE(m, p, a, fl, fn)                                                              \
    {                                                                                              \
        .method = (m), .pattern = (p), .action = (a), .family = ST_API_GLANCE, .flags = (fl),      \
        .handler = (fn)                                                                            \
    }

/* ---- callers and rendering ------------------------------------------- */

static const char *caller_project(const struct st_http_request *req)
{
    const struct st_token *t = st_api_token(req);
    return t ? t->project_id : NULL;
}

static json_t *render(json_t *doc)
{
    static const char *const core[] = {
        "id",       "name",         "status",           "visibility", "protected",    "os_hidden",
        "checksum", "os_hash_algo", "os_hash_value",    "size",       "virtual_size", "min_disk",
        "min_ram",  "disk_format",  "container_format", "tags",       "created_at",   "updated_at",
    };
    json_t *out = json_object();
    for (size_t i = 0; i < ST_ARRAY_SIZE(core); i++) {
        json_t *v = json_object_get(doc, core[i]);
        json_object_set(out, core[i], v ? v : json_null());
    }
    const char *id = json_string_value(json_object_get(doc, "id"));
    json_object_set(out, "owner", json_object_get(doc, "project_id"));
    json_object_set_new(out, "self", json_sprintf("/v2/images/%s", id));
    json_object_set_new(out, "file", json_sprintf("/v2/images/%s/file", id));
    json_object_set_new(out, "schema", json_string("/v2/schemas/image"));
    const char *key;
    json_t *value;
    json_object_foreach(json_object_get(doc, "properties"), key, value)
    {
        if (!json_object_get(out, key))
            json_object_set(out, key, value);
    }
    return out;
}

/* Loads an image the caller may see (404 otherwise). */
static int load_visible(struct st_http_request *req, json_t **ret, struct st_err **err)
{
    struct st_api_app *app = req->app;
    return st_image_get_visible(app->kv, caller_project(req), st_api_is_cloud_admin(req),
                                st_http_param(req, "image_id"), ret, err);
}

/* A write on a visible image: the policy decides against the image's owner;
 * another project's image that the caller can see (a public one) is a 403,
 * not a 404, since its existence is no secret. */
static int authorize_write(struct st_http_request *req, const char *action, json_t *doc,
                           struct st_err **err)
{
    const char *owner = json_string_value(json_object_get(doc, "project_id"));
    int r = st_api_authorize(req, action, owner, err);
    if (r == -ENOENT) {
        st_err_clear(err);
        return st_err_set(err, -EPERM,
                          "You are not permitted to modify image %s of another "
                          "project.",
                          json_string_value(json_object_get(doc, "id")));
    }
    return r;
}

static int authorize_publicize(struct st_http_request *req, struct st_err **err)
{
    int r = st_api_authorize(req, "image:image:publicize", NULL, err);
    if (r == -EPERM) {
        st_err_clear(err);
        return st_err_set(err, -EPERM,
                          "You are not authorized to make an image public: only an "
                          "admin may (policy image:image:publicize).");
    }
    return r;
}

/* ---- versions ----------------------------------------------------------- */

static int get_versions(struct st_http_request *req, struct st_http_response *resp,
                        struct st_err **err)
{
    (void)err;
    const struct st_api_app *app = req->app;
    st_autofree char *href = st_sprintf("%s" GLANCE_V2 "/", app->public_url);
    json_t *versions = json_array();
    /* v2.9 down to v2.0, as Glance lists them; clients pick the newest. */
    for (int minor = 9; minor >= 0; minor--) {
        char id[8];
        snprintf(id, sizeof(id), "v2.%d", minor);
        json_array_append_new(versions, json_pack("{s:s, s:s, s:[{s:s, s:s}]}", "id", id, "status",
                                                  minor == 9 ? "CURRENT" : "SUPPORTED", "links",
                                                  "rel", "self", "href", href));
    }
    st_http_resp_json(resp, 300, json_pack("{s:o}", "versions", versions));
    return 0;
}

/* ---- images ------------------------------------------------------------- */

static int parse_bool(const char *name, const char *s, int *ret, struct st_err **err)
{
    if (strcasecmp(s, "true") == 0 || strcmp(s, "1") == 0)
        *ret = 1;
    else if (strcasecmp(s, "false") == 0 || strcmp(s, "0") == 0)
        *ret = 0;
    else
        return st_err_set(err, -EINVAL, "Invalid value for %s: '%s' (expected true or false)", name,
                          s);
    return 0;
}

static int parse_count(const char *name, const char *s, int64_t *ret, struct st_err **err)
{
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (!s[0] || *end || errno || v < 0)
        return st_err_set(err, -EINVAL, "Invalid value for %s: '%s' (expected a number >= 0)", name,
                          s);
    *ret = v;
    return 0;
}

/* Appends "&key=value" (percent-encoded) to a growing query string. */
static void query_add(char **q, const char *key, const char *value)
{
    static const char hex[] = "0123456789ABCDEF";
    size_t n = strlen(value);
    st_autofree char *enc = st_new0(char, 3 * n + 1);
    char *o = enc;
    for (const unsigned char *c = (const unsigned char *)value; *c; c++) {
        if ((*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') || (*c >= '0' && *c <= '9') ||
            *c == '-' || *c == '_' || *c == '.' || *c == '~') {
            *o++ = (char)*c;
        } else {
            *o++ = '%';
            *o++ = hex[*c >> 4];
            *o++ = hex[*c & 15];
        }
    }
    char *next = st_sprintf("%s%s%s=%s", *q ? *q : "", *q ? "&" : "", key, enc);
    free(*q);
    *q = next;
}

/* Query keys that are not filters on image properties. */
static bool query_is_control(const char *key)
{
    static const char *const keys[] = {
        "limit",         "marker",      "sort_key",  "sort_dir",    "sort",
        "all_projects",  "all_tenants", "id",        "name",        "visibility",
        "member_status", "status",      "owner",     "disk_format", "container_format",
        "tag",           "os_hidden",   "protected", "size_min",    "size_max",
    };
    for (size_t i = 0; i < ST_ARRAY_SIZE(keys); i++)
        if (strcmp(key, keys[i]) == 0)
            return true;
    return false;
}

static int parse_filter(struct st_http_request *req, struct st_image_filter *f, const char **tags,
                        json_t *props, struct st_err **err)
{
    st_image_filter_init(f);
    int r;
    const char *v;
    f->id = st_http_query(req, "id");
    f->name = st_http_query(req, "name");
    f->visibility = st_http_query(req, "visibility");
    f->member_status = st_http_query(req, "member_status");
    f->status = st_http_query(req, "status");
    f->owner = st_http_query(req, "owner");
    f->disk_format = st_http_query(req, "disk_format");
    f->container_format = st_http_query(req, "container_format");
    f->marker = st_http_query(req, "marker");
    f->n_tags = st_http_query_all(req, "tag", tags, GLANCE_QUERY_TAGS);
    f->tags = tags;
    if (f->n_tags > GLANCE_QUERY_TAGS)
        return st_err_set(err, -EINVAL, "at most %d tag filters", GLANCE_QUERY_TAGS);
    if ((v = st_http_query(req, "os_hidden")) && (r = parse_bool("os_hidden", v, &f->hidden, err)))
        return r;
    if ((v = st_http_query(req, "protected")) &&
        (r = parse_bool("protected", v, &f->protected_, err)))
        return r;
    if ((v = st_http_query(req, "size_min")) && (r = parse_count("size_min", v, &f->size_min, err)))
        return r;
    if ((v = st_http_query(req, "size_max")) && (r = parse_count("size_max", v, &f->size_max, err)))
        return r;
    int all = 0;
    if ((v = st_http_query(req, "all_projects")) || (v = st_http_query(req, "all_tenants"))) {
        if ((r = parse_bool("all_projects", v, &all, err)) < 0)
            return r;
    }
    f->all_projects = all;

    int64_t limit = GLANCE_LIMIT_DEF;
    if ((v = st_http_query(req, "limit")) && (r = parse_count("limit", v, &limit, err)))
        return r;
    f->limit = limit > GLANCE_LIMIT_MAX ? GLANCE_LIMIT_MAX : (size_t)limit;
    if (limit == 0)
        f->limit = GLANCE_LIMIT_DEF;

    /* sort_key/sort_dir, or the newer sort=key:dir (the first key is used) */
    f->sort_key = st_http_query(req, "sort_key");
    const char *dir = st_http_query(req, "sort_dir");
    const char *sort = st_http_query(req, "sort");
    if (sort && !f->sort_key) {
        const char *colon = strchr(sort, ':');
        const char *comma = strchr(sort, ',');
        size_t klen = colon   ? (size_t)(colon - sort)
                      : comma ? (size_t)(comma - sort)
                              : strlen(sort);
        if (colon && comma && comma < colon)
            klen = (size_t)(comma - sort);
        static const char *const keys[] = {"created_at", "updated_at", "name",
                                           "id",         "size",       "status"};
        for (size_t i = 0; i < ST_ARRAY_SIZE(keys); i++)
            if (strlen(keys[i]) == klen && strncmp(sort, keys[i], klen) == 0)
                f->sort_key = keys[i];
        if (!f->sort_key)
            return st_err_set(err, -EINVAL, "Invalid sort key in '%s'", sort);
        if (colon && (!comma || colon < comma))
            dir = strncmp(colon + 1, "asc", 3) == 0 ? "asc" : "desc";
    }
    if (dir && strcmp(dir, "asc") != 0 && strcmp(dir, "desc") != 0)
        return st_err_set(err, -EINVAL, "Invalid sort direction: %s", dir);
    f->sort_asc = dir && strcmp(dir, "asc") == 0;

    /* Anything else filters on a user property, as Glance does. */
    struct st_http_exchange *x = req->conn;
    for (size_t i = 0; x && i < x->n_query; i++) {
        const char *key = x->query[i].key;
        if (!query_is_control(key) && key[0])
            json_object_set_new(props, key, json_string(x->query[i].value));
    }
    f->properties = props;
    return 0;
}

/* "/v2/images?<the same filters>&marker=<last>&limit=<n>", as Glance. */
static char *next_link(struct st_http_request *req, const char *last_id, size_t limit)
{
    st_autofree char *q = NULL;
    struct st_http_exchange *x = req->conn;
    for (size_t i = 0; x && i < x->n_query; i++) {
        if (strcmp(x->query[i].key, "marker") != 0 && strcmp(x->query[i].key, "limit") != 0)
            query_add(&q, x->query[i].key, x->query[i].value);
    }
    query_add(&q, "marker", last_id);
    char n[24];
    snprintf(n, sizeof(n), "%zu", limit);
    query_add(&q, "limit", n);
    return st_sprintf("/v2/images?%s", q);
}

static int list_images(struct st_http_request *req, struct st_http_response *resp,
                       struct st_err **err)
{
    struct st_api_app *app = req->app;
    struct st_image_filter f;
    const char *tags[GLANCE_QUERY_TAGS + 1];
    st_autoptr(json_t) props = json_object();
    int r = parse_filter(req, &f, tags, props, err);
    if (r < 0)
        return r;
    st_autoptr(json_t) docs = NULL;
    bool more = false;
    r = st_image_list(app->kv, caller_project(req), st_api_is_cloud_admin(req), &f, &docs, &more,
                      err);
    if (r < 0)
        return r;
    json_t *images = json_array();
    size_t i;
    json_t *doc;
    json_array_foreach(docs, i, doc)
    {
        json_array_append_new(images, render(doc));
    }
    json_t *body = json_pack("{s:o, s:s, s:s}", "images", images, "first", "/v2/images", "schema",
                             "/v2/schemas/images");
    if (more && json_array_size(docs) > 0) {
        json_t *last = json_array_get(docs, json_array_size(docs) - 1);
        st_autofree char *next =
            next_link(req, json_string_value(json_object_get(last, "id")), f.limit);
        json_object_set_new(body, "next", json_string(next));
    }
    st_http_resp_json(resp, 200, body);
    return 0;
}

static int create_image(struct st_http_request *req, struct st_http_response *resp,
                        struct st_err **err)
{
    struct st_api_app *app = req->app;
    st_autoptr(json_t) body = NULL;
    int r = st_json_parse_object(req->body, req->body_len, &body, err);
    if (r < 0)
        return r;
    const char *project = caller_project(req);
    json_t *owner = json_object_get(body, "owner");
    if (owner && !json_is_null(owner) &&
        (!json_is_string(owner) || strcmp(json_string_value(owner), project) != 0) &&
        !st_api_is_cloud_admin(req))
        return st_err_set(err, -EPERM, "You are not permitted to create images owned by '%s'.",
                          json_is_string(owner) ? json_string_value(owner) : "?");
    if (owner && json_is_null(owner))
        json_object_del(body, "owner");
    const char *vis = json_string_value(json_object_get(body, "visibility"));
    if (vis && strcmp(vis, "public") == 0 && (r = authorize_publicize(req, err)) < 0)
        return r;
    st_autoptr(json_t) doc = NULL;
    r = st_image_create(app->kv, project, body, &doc, err);
    if (r < 0)
        return r;
    st_autofree char *location = st_sprintf("%s" GLANCE_V2 "/images/%s", app->public_url,
                                            json_string_value(json_object_get(doc, "id")));
    st_http_resp_header(resp, "Location", location);
    st_http_resp_json(resp, 201, render(doc));
    return 0;
}

static int show_image(struct st_http_request *req, struct st_http_response *resp,
                      struct st_err **err)
{
    st_autoptr(json_t) doc = NULL;
    int r = load_visible(req, &doc, err);
    if (r < 0)
        return r;
    st_http_resp_json(resp, 200, render(doc));
    return 0;
}

static bool content_type_is(const struct st_http_request *req, const char *want)
{
    const char *ct = st_http_header(req, "Content-Type");
    size_t n = strlen(want);
    return ct && strncasecmp(ct, want, n) == 0 && (ct[n] == '\0' || ct[n] == ';' || ct[n] == ' ');
}

static int update_image(struct st_http_request *req, struct st_http_response *resp,
                        struct st_err **err)
{
    struct st_api_app *app = req->app;
    st_autoptr(json_t) doc = NULL;
    int r = load_visible(req, &doc, err);
    if (r < 0)
        return r;
    if ((r = authorize_write(req, "image:image:update", doc, err)) < 0)
        return r;
    if (!content_type_is(req, GLANCE_PATCH_TYPE))
        return st_err_set(err, -EMEDIUMTYPE,
                          "Unsupported Content-Type: an image patch is " GLANCE_PATCH_TYPE);
    st_autoptr(json_t) ops = NULL;
    if ((r = st_json_parse(req->body, req->body_len, &ops, err)) < 0)
        return r;
    if (!json_is_array(ops))
        return st_err_set(err, -EINVAL, "the patch must be a JSON list of operations");
    size_t i;
    json_t *op;
    json_array_foreach(ops, i, op)
    {
        const char *path = json_string_value(json_object_get(op, "path"));
        const char *value = json_string_value(json_object_get(op, "value"));
        if (!path)
            continue;
        if (strcmp(path, "/visibility") == 0 && value && strcmp(value, "public") == 0 &&
            (r = authorize_publicize(req, err)) < 0)
            return r;
        if (strcmp(path, "/owner") == 0 && !st_api_is_cloud_admin(req))
            return st_err_set(err, -EPERM, "Only an admin may change the owner of an image.");
    }
    st_autoptr(json_t) updated = NULL;
    r = st_image_update(app->kv, st_http_param(req, "image_id"), ops, &updated, err);
    if (r < 0)
        return r;
    st_http_resp_json(resp, 200, render(updated));
    return 0;
}

static int delete_image(struct st_http_request *req, struct st_http_response *resp,
                        struct st_err **err)
{
    struct st_api_app *app = req->app;
    st_autoptr(json_t) doc = NULL;
    int r = load_visible(req, &doc, err);
    if (r < 0)
        return r;
    if ((r = authorize_write(req, "image:image:delete", doc, err)) < 0)
        return r;
    if ((r = st_image_delete(app->kv, app->data_dir, st_http_param(req, "image_id"), err)) < 0)
        return r;
    resp->status = 204;
    return 0;
}

/* ---- data ----------------------------------------------------------------- */

static int upload_chunk(struct st_http_request *req, const char *data, size_t len,
                        struct st_err **err)
{
    struct st_api_app *app = req->app;
    if (data)
        return st_image_upload_write(req->stream, data, len, err);
    /* The opening call, before the body: refuse what would be refused at its end. */
    st_autoptr(json_t) doc = NULL;
    int r = load_visible(req, &doc, err);
    if (r < 0)
        return r;
    if ((r = authorize_write(req, "image:image:upload", doc, err)) < 0)
        return r;
    if (st_http_header(req, "Content-Type") && !content_type_is(req, "application/octet-stream"))
        return st_err_set(err, -EMEDIUMTYPE,
                          "Unsupported Content-Type: image data is application/octet-stream");
    struct st_image_upload *up = NULL;
    r = st_image_upload_begin(app->kv, app->data_dir, st_http_param(req, "image_id"), &up, err);
    if (r < 0)
        return r;
    req->stream = up;
    return 0;
}

static void upload_free(void *stream)
{
    st_image_upload_free(stream);
}

static int upload_image(struct st_http_request *req, struct st_http_response *resp,
                        struct st_err **err)
{
    int r = st_image_upload_commit(req->stream, NULL, err);
    if (r < 0)
        return r;
    resp->status = 204;
    return 0;
}

static int download_image(struct st_http_request *req, struct st_http_response *resp,
                          struct st_err **err)
{
    struct st_api_app *app = req->app;
    st_autoptr(json_t) doc = NULL;
    int r = load_visible(req, &doc, err);
    if (r < 0)
        return r;
    const char *status = json_string_value(json_object_get(doc, "status"));
    if (strcmp(status, "active") != 0) {
        resp->status = 204; /* Glance: an image without data has an empty body */
        return 0;
    }
    int fd = -1;
    uint64_t size = 0;
    r = st_image_open_file(app->kv, app->data_dir, st_http_param(req, "image_id"), &fd, &size, err);
    if (r < 0)
        return r;
    const char *md5 = json_string_value(json_object_get(doc, "checksum"));
    if (md5)
        st_http_resp_header(resp, "Content-MD5", md5);
    st_http_resp_file(resp, 200, "application/octet-stream", fd, size);
    return 0;
}

/* ---- tags ------------------------------------------------------------------ */

static int tag_change(struct st_http_request *req, struct st_http_response *resp, bool add,
                      struct st_err **err)
{
    struct st_api_app *app = req->app;
    st_autoptr(json_t) doc = NULL;
    int r = load_visible(req, &doc, err);
    if (r < 0)
        return r;
    if ((r = authorize_write(req, "image:image:update", doc, err)) < 0)
        return r;
    const char *id = st_http_param(req, "image_id"), *tag = st_http_param(req, "tag");
    r = add ? st_image_tag_add(app->kv, id, tag, err) : st_image_tag_remove(app->kv, id, tag, err);
    if (r < 0)
        return r;
    resp->status = 204;
    return 0;
}

static int add_tag(struct st_http_request *req, struct st_http_response *resp, struct st_err **err)
{
    return tag_change(req, resp, true, err);
}

static int remove_tag(struct st_http_request *req, struct st_http_response *resp,
                      struct st_err **err)
{
    return tag_change(req, resp, false, err);
}

static const struct st_route routes[] = {
    GLANCE_ROUTE("GET", ST_GLANCE_PREFIX, "image:version:list", ST_ROUTE_PUBLIC, get_versions),
    GLANCE_ROUTE("GET", GLANCE_V2, "image:version:show", ST_ROUTE_PUBLIC, get_versions),
    GLANCE_ROUTE("GET", GLANCE_V2 "/images", "image:image:list", 0, list_images),
    GLANCE_ROUTE("POST", GLANCE_V2 "/images", "image:image:create", 0, create_image),
    GLANCE_ROUTE("GET", GLANCE_V2 "/images/{image_id}", "image:image:show", 0, show_image),
    GLANCE_ROUTE("PATCH", GLANCE_V2 "/images/{image_id}", "image:image:update", 0, update_image),
    GLANCE_ROUTE("DELETE", GLANCE_V2 "/images/{image_id}", "image:image:delete", 0, delete_image),
    GLANCE_ROUTE("GET", GLANCE_V2 "/images/{image_id}/file", "image:image:get", 0, download_image),
    {
        .method = "PUT",
        .pattern = GLANCE_V2 "/images/{image_id}/file",
        .action = "image:image:upload",
        .family = ST_API_GLANCE,
        .flags = ST_ROUTE_STREAM,
        .handler = upload_image,
        .on_body_chunk = upload_chunk,
        .stream_free = upload_free,
    },
    GLANCE_ROUTE("PUT", GLANCE_V2 "/images/{image_id}/tags/{tag}", "image:image:update", 0,
                 add_tag),
    GLANCE_ROUTE("DELETE", GLANCE_V2 "/images/{image_id}/tags/{tag}", "image:image:update", 0,
                 remove_tag),
};

int st_api_glance_register(struct st_router *r, struct st_api_app *app, struct st_err **err)
{
    st_api_app_add_service(app, "image", "glance", ST_GLANCE_PREFIX);
    return st_router_add_all(r, routes, ST_ARRAY_SIZE(routes), err);
}
