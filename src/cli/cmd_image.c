/* Glance images: the openstack CLI's `image` commands (openstackclient
 * image/v2/image.py over openstacksdk). Uploads and downloads stream the
 * file through libcurl in small pieces, so a many-GB image never sits in
 * memory; everything else is one JSON call. Images are shown as openstack
 * formats them: the known fields, the rest gathered as "properties". */
#include "cmd_image.h"

#include <errno.h>
#include <fcntl.h>
#include <openssl/evp.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "http.h"
#include "identity.h"
#include "lib/cleanup.h"
#include "lib/json.h"
#include "output.h"
#include "services.h"

enum { GROUP_VISIBILITY = 1, GROUP_PROTECTED, GROUP_ACTIVATE, GROUP_HIDDEN };

#define SHOW (ST_CLI_CMD_SHOW | ST_CLI_CMD_AUTH | ST_CLI_CMD_PY_STR)
#define LIST (ST_CLI_CMD_LIST | ST_CLI_CMD_AUTH | ST_CLI_CMD_PY_STR)

#define PATCH_TYPE "application/openstack-images-v2.1-json-patch"

/* ---- showing an image ---- */

/* osc-lib's format_size: 3000 → "3K", 1536000 → "1.5M" (powers of 1000). */
static char *format_size(double size)
{
    static const char *const suffix[] = {"", "K", "M", "G", "T", "P", "E", "Z"};
    size_t i = 0;
    while (size >= 1000.0 && i + 1 < ST_ARRAY_SIZE(suffix)) {
        size /= 1000.0;
        i++;
    }
    char num[64];
    snprintf(num, sizeof(num), "%.1f", size);
    size_t n = strlen(num);
    while (n > 0 && num[n - 1] == '0')
        num[--n] = '\0';
    if (n > 0 && num[n - 1] == '.')
        num[--n] = '\0';
    return st_sprintf("%s%s", num, suffix[i]);
}

/* openstackclient's _format_image: the fields below as they are (unset
 * ones left out), tags as a list, and every other field, user properties
 * included, gathered in "properties". */
static json_t *image_view(const json_t *image, bool human_readable)
{
    static const char *const fields[] = {
        "status",     "name",       "container_format", "created_at", "size",   "disk_format",
        "updated_at", "visibility", "min_disk",         "protected",  "id",     "file",
        "checksum",   "owner",      "virtual_size",     "min_ram",    "schema",
    };
    json_t *v = json_object();
    json_t *props = json_object();
    const char *key;
    json_t *val;
    json_object_foreach((json_t *)image, key, val)
    {
        bool known = false;
        for (size_t i = 0; i < ST_ARRAY_SIZE(fields) && !known; i++)
            known = strcmp(key, fields[i]) == 0;
        if (json_is_null(val) || strcmp(key, "tags") == 0 || strcmp(key, "self") == 0 ||
            strcmp(key, "location") == 0)
            continue;
        if (known)
            json_object_set(v, key, val);
        else if (strcmp(key, "properties") == 0 && json_is_object(val))
            json_object_update(props, val);
        else
            json_object_set(props, key, val);
    }
    if (human_readable) {
        json_t *size = json_object_get(image, "size");
        st_autofree char *text = format_size(json_is_number(size) ? json_number_value(size) : 0);
        json_object_set_new(v, "size", json_string(text));
    }
    json_t *tags = json_object_get(image, "tags");
    st_autoptr(json_t) none = json_array();
    json_object_set_new(v, "tags", st_cli_list_column(json_is_array(tags) ? tags : none));
    if (json_object_size(props) > 0)
        json_object_set_new(v, "properties", st_cli_dict_column(props));
    json_decref(props);
    return v;
}

static int show_image(struct st_cli_ctx *ctx, const json_t *image, bool human_readable,
                      struct st_err **err)
{
    st_autoptr(json_t) view = image_view(image, human_readable);
    return st_cli_ctx_show(ctx, view, err);
}

static int project_id(struct st_cli_ctx *ctx, char **ret, struct st_err **err)
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

static const char *visibility_option(const struct st_cli_args *a)
{
    static const char *const choices[] = {"public", "private", "community", "shared", "all"};
    for (size_t i = 0; i < ST_ARRAY_SIZE(choices); i++)
        if (st_cli_args_flag(a, choices[i]))
            return choices[i];
    return NULL;
}

static int int_field(struct st_cli_ctx *ctx, const char *option, const char *field, json_t *obj,
                     int *ret_rc)
{
    if (!st_cli_args_get(&ctx->args, option))
        return 0;
    long n;
    *ret_rc = st_cli_ctx_int_option(ctx, option, 0, &n);
    if (*ret_rc == 0)
        json_object_set_new(obj, field, json_integer(n));
    return *ret_rc;
}

/* ---- create ---- */

/* The image data: --file, or standard input when it is a file or a pipe
 * (openstack reads a redirected stdin); -1 when there is none. */
static int open_data(struct st_cli_ctx *ctx, int *ret_fd, int64_t *ret_size, struct st_err **err)
{
    const char *file = st_cli_args_get(&ctx->args, "file");
    struct stat st;
    *ret_fd = -1;
    *ret_size = -1;
    if (file) {
        int fd = open(file, O_RDONLY | O_CLOEXEC);
        if (fd < 0)
            return st_err_set(err, -errno, "[Errno %d] %s: '%s'", errno, strerror(errno), file);
        int e = fstat(fd, &st) < 0 ? errno : S_ISDIR(st.st_mode) ? EISDIR : 0;
        if (e == 0 && !S_ISREG(st.st_mode))
            e = EINVAL; /* a device or a socket: its size is unknown */
        if (e) {
            close(fd);
            return st_err_set(err, -e, "[Errno %d] %s: '%s'", e, strerror(e), file);
        }
        *ret_fd = fd;
        *ret_size = st.st_size;
        return 0;
    }
    if (isatty(STDIN_FILENO) || fstat(STDIN_FILENO, &st) < 0)
        return 0;
    if (S_ISREG(st.st_mode)) {
        off_t pos = lseek(STDIN_FILENO, 0, SEEK_CUR);
        *ret_fd = STDIN_FILENO;
        *ret_size = st.st_size - (pos > 0 ? pos : 0);
    } else if (S_ISFIFO(st.st_mode)) {
        *ret_fd = STDIN_FILENO; /* size unknown: sent chunked */
    }
    return 0;
}

static int upload(struct st_cli_ctx *ctx, const char *id, int fd, int64_t size, struct st_err **err)
{
    struct st_cli_http *h;
    int r = st_cli_ctx_http(ctx, &h, err);
    if (r < 0)
        return r;
    st_autofree char *base = NULL;
    r = st_cli_service_url(ctx, ST_CLI_GLANCE, &base, err);
    if (r < 0)
        return r;
    st_autofree char *esc = st_cli_http_escape(id);
    st_autofree char *url = st_sprintf("%s/images/%s/file", base, esc);
    struct st_cli_http_response resp = {0};
    r = st_cli_http_upload(h, "PUT", url, NULL, "application/octet-stream", fd,
                           size < 0 ? UINT64_MAX : (uint64_t)size, &resp, err);
    if (r < 0)
        return r;
    if (resp.status < 200 || resp.status >= 300) {
        st_autofree char *msg =
            st_cli_http_error_message(resp.status, resp.reason, resp.body, resp.body_len,
                                      st_cli_http_response_request_id(&resp));
        r = st_err_set(err, st_cli_http_errno(resp.status), "%s", msg);
    }
    st_cli_http_response_clear(&resp);
    return r;
}

static int run_create(struct st_cli_ctx *ctx, struct st_err **err)
{
    const struct st_cli_args *a = &ctx->args;
    const char *name = a->pos[0];
    const char *cf = st_cli_args_get(a, "container-format");
    const char *df = st_cli_args_get(a, "disk-format");
    st_autoptr(json_t) image = json_pack("{s:s,s:s,s:s}", "name", name, "disk_format",
                                         df ? df : "raw", "container_format", cf ? cf : "bare");
    int rc = 0;
    if (int_field(ctx, "min-disk", "min_disk", image, &rc) ||
        int_field(ctx, "min-ram", "min_ram", image, &rc))
        return rc;
    if (st_cli_args_get(a, "id"))
        json_object_set_new(image, "id", json_string(st_cli_args_get(a, "id")));
    const char *visibility = visibility_option(a);
    if (visibility)
        json_object_set_new(image, "visibility", json_string(visibility));
    if (st_cli_args_flag(a, "protected") || st_cli_args_flag(a, "unprotected"))
        json_object_set_new(image, "protected", json_boolean(st_cli_args_flag(a, "protected")));
    char *const *tags;
    size_t n_tags = st_cli_args_all(a, "tag", &tags);
    if (n_tags > 0) {
        json_t *t = json_array();
        for (size_t i = 0; i < n_tags; i++)
            json_array_append_new(t, json_string(tags[i]));
        json_object_set_new(image, "tags", t);
    }
    /* properties are top-level keys, as Glance keeps them */
    int r = st_cli_key_values(ctx, "property", image, err);
    if (r < 0)
        return r;
    st_autofree char *owner = NULL;
    r = project_id(ctx, &owner, err);
    if (r < 0)
        return r;
    if (owner)
        json_object_set_new(image, "owner", json_string(owner));
    /* what openstacksdk always adds: its checksums (blank, it does not
     * compute them for openstack's uploads) and an object name */
    json_object_set_new(image, "owner_specified.openstack.md5", json_string(""));
    json_object_set_new(image, "owner_specified.openstack.sha256", json_string(""));
    st_autofree char *object = st_sprintf("images/%s", name);
    json_object_set_new(image, "owner_specified.openstack.object", json_string(object));

    /* open the data first, so that a bad --file creates nothing */
    int fd;
    int64_t size;
    r = open_data(ctx, &fd, &size, err);
    if (r < 0)
        return r;
    st_autoclose int owned_fd = fd == STDIN_FILENO ? -1 : fd;

    st_autoptr(json_t) created = NULL;
    r = st_cli_service_call(ctx, ST_CLI_GLANCE, "POST", "/images", image, &created, err);
    if (r < 0)
        return r;
    const char *id = json_string_value(json_object_get(created, "id"));
    if (!id)
        return st_err_set(err, -EPROTO, "Request requires an ID but none was found");
    if (fd < 0)
        return show_image(ctx, created, false, err);
    r = upload(ctx, id, fd, size, err);
    if (r < 0)
        return r;
    /* show the image as it is now (active, size, checksum), where
     * openstack shows the queued one it created */
    st_autoptr(json_t) now = NULL;
    st_autofree char *esc = st_cli_http_escape(id);
    st_autofree char *path = st_sprintf("/images/%s", esc);
    r = st_cli_service_call(ctx, ST_CLI_GLANCE, "GET", path, NULL, &now, err);
    if (r < 0)
        return r;
    return show_image(ctx, now, false, err);
}

/* ---- list ---- */

static const struct st_cli_column list_cols[] = {
    {"ID", "id"},
    {"Name", "name"},
    {"Status", "status"},
};
static const struct st_cli_column long_cols[] = {
    {"ID", "id"},
    {"Name", "name"},
    {"Disk Format", "disk_format"},
    {"Container Format", "container_format"},
    {"Size", "size"},
    {"Checksum", "checksum"},
    {"Status", "status"},
    {"Visibility", "visibility"},
    {"Protected", "protected"},
    {"Project", "owner"},
    {"Tags", "tags"},
};

static void add_query(FILE *f, bool *first, const char *key, const char *value)
{
    if (!value)
        return;
    st_autofree char *v = st_cli_http_escape(value);
    fprintf(f, "%c%s=%s", *first ? '?' : '&', key, v);
    *first = false;
}

/* Keeps the rows whose field key (a property) equals value as text. */
static void filter_property(json_t *rows, const char *key, const char *value)
{
    for (size_t i = json_array_size(rows); i-- > 0;) {
        json_t *v = json_object_get(json_array_get(rows, i), key);
        st_autofree char *text = v ? st_cli_output_cell(v) : NULL;
        if (!text || strcmp(text, value) != 0)
            json_array_remove(rows, i);
    }
}

static int run_list(struct st_cli_ctx *ctx, struct st_err **err)
{
    const struct st_cli_args *a = &ctx->args;
    long limit;
    int rc = st_cli_ctx_int_option(ctx, "limit", 0, &limit);
    if (rc)
        return rc;
    st_autofree char *marker = NULL, *owner = NULL;
    int r;
    if (st_cli_args_get(a, "marker")) {
        st_autoptr(json_t) m = NULL;
        r = st_cli_find(ctx, &st_cli_kind_image, st_cli_args_get(a, "marker"), &m, err);
        if (r < 0)
            return r;
        marker = st_strdup(st_cli_str(m, "id"));
    }
    r = project_id(ctx, &owner, err);
    if (r < 0)
        return r;

    char *buf = NULL;
    size_t len;
    FILE *f = open_memstream(&buf, &len);
    if (!f)
        abort();
    fputs("/images", f);
    bool first = true;
    st_autofree char *limit_text = limit ? st_sprintf("%ld", limit) : NULL;
    add_query(f, &first, "visibility", visibility_option(a));
    add_query(f, &first, "limit", limit_text);
    add_query(f, &first, "marker", marker);
    add_query(f, &first, "name", st_cli_args_get(a, "name"));
    add_query(f, &first, "status", st_cli_args_get(a, "status"));
    add_query(f, &first, "member_status", st_cli_args_get(a, "member-status"));
    char *const *tags;
    size_t n_tags = st_cli_args_all(a, "tag", &tags);
    for (size_t i = 0; i < n_tags; i++)
        add_query(f, &first, "tag", tags[i]);
    add_query(f, &first, "owner", owner);
    add_query(f, &first, "os_hidden", st_cli_args_flag(a, "hidden") ? "True" : NULL);
    fclose(f);
    st_autofree char *path = buf;

    /* every page, following Glance's "next" links unless --limit asks for
     * one page; a bound on pages guards against a server that loops */
    st_autoptr(json_t) rows = json_array();
    st_autofree char *next = st_strdup(path);
    for (unsigned page = 0; next && page < 10000; page++) {
        st_autoptr(json_t) doc = NULL;
        r = st_cli_service_call(ctx, ST_CLI_GLANCE, "GET", next, NULL, &doc, err);
        if (r < 0)
            return r;
        json_t *images = json_object_get(doc, "images");
        if (!json_is_array(images))
            return st_err_set(err, -EPROTO, "invalid response to GET %s: no \"images\" list", next);
        json_array_extend(rows, images);
        free(next);
        next = NULL;
        const char *link = json_string_value(json_object_get(doc, "next"));
        if (link && !limit && json_array_size(images) > 0)
            next = st_strdup(strncmp(link, "/v2/", 4) == 0 ? link + 3 : link);
    }
    st_autoptr(json_t) props = json_object();
    r = st_cli_key_values(ctx, "property", props, err);
    if (r < 0)
        return r;
    const char *key;
    json_t *val;
    json_object_foreach(props, key, val) filter_property(rows, key, json_string_value(val));
    const char *sort = st_cli_args_get(a, "sort");
    r = st_cli_identity_sort(rows, sort ? sort : "name:asc", err);
    if (r < 0)
        return r;
    bool is_long = st_cli_args_flag(a, "long");
    if (is_long) {
        size_t i;
        json_t *row;
        json_array_foreach(rows, i, row)
        {
            json_t *t = json_object_get(row, "tags");
            st_autoptr(json_t) none = json_array();
            json_object_set_new(row, "tags", st_cli_list_column(json_is_array(t) ? t : none));
        }
        return st_cli_ctx_list(ctx, long_cols, ST_ARRAY_SIZE(long_cols), rows, err);
    }
    return st_cli_ctx_list(ctx, list_cols, ST_ARRAY_SIZE(list_cols), rows, err);
}

/* ---- show, delete, save ---- */

static int run_show(struct st_cli_ctx *ctx, struct st_err **err)
{
    st_autoptr(json_t) image = NULL;
    int r = st_cli_find(ctx, &st_cli_kind_image, ctx->args.pos[0], &image, err);
    if (r < 0)
        return r;
    return show_image(ctx, image, st_cli_args_flag(&ctx->args, "human-readable"), err);
}

static int delete_one(struct st_cli_ctx *ctx, const char *value, void *data, struct st_err **err)
{
    (void)data;
    st_autoptr(json_t) image = NULL;
    int r = st_cli_find(ctx, &st_cli_kind_image, value, &image, err);
    if (r < 0)
        return r;
    st_autofree char *path = st_cli_object_path(&st_cli_kind_image, image, NULL);
    return st_cli_service_call(ctx, ST_CLI_GLANCE, "DELETE", path, NULL, NULL, err);
}

static int run_delete(struct st_cli_ctx *ctx, struct st_err **err)
{
    size_t failed = st_cli_each(ctx, delete_one, NULL, "Failed to delete image with name or ID");
    if (failed > 0)
        return st_err_set(err, -EIO, "Failed to delete %zu of %zu images.", failed,
                          ctx->args.n_pos);
    return 0;
}

static void md5_update(const void *data, size_t len, void *arg)
{
    EVP_DigestUpdate(arg, data, len);
}

static int run_save(struct st_cli_ctx *ctx, struct st_err **err)
{
    st_autoptr(json_t) image = NULL;
    int r = st_cli_find(ctx, &st_cli_kind_image, ctx->args.pos[0], &image, err);
    if (r < 0)
        return r;
    struct st_cli_http *h;
    r = st_cli_ctx_http(ctx, &h, err);
    if (r < 0)
        return r;
    st_autofree char *base = NULL;
    r = st_cli_service_url(ctx, ST_CLI_GLANCE, &base, err);
    if (r < 0)
        return r;
    st_autofree char *path = st_cli_object_path(&st_cli_kind_image, image, "/file");
    st_autofree char *url = st_sprintf("%s%s", base, path);

    const char *file = st_cli_args_get(&ctx->args, "file");
    int fd = STDOUT_FILENO;
    if (file) {
        fd = open(file, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0666);
        if (fd < 0)
            return st_err_set(err, -errno, "[Errno %d] %s: '%s'", errno, strerror(errno), file);
    } else {
        fflush(ctx->out);
    }
    struct st_cli_http_response resp = {0};
    EVP_MD_CTX *md5 = EVP_MD_CTX_new();
    if (!md5 || EVP_DigestInit_ex(md5, EVP_md5(), NULL) != 1)
        abort();
    r = st_cli_http_download(h, url, NULL, fd, md5_update, md5, NULL, &resp, err);
    if (r == 0 && (resp.status < 200 || resp.status >= 300)) {
        st_autofree char *msg =
            st_cli_http_error_message(resp.status, resp.reason, resp.body, resp.body_len,
                                      st_cli_http_response_request_id(&resp));
        r = st_err_set(err, st_cli_http_errno(resp.status), "%s", msg);
    }
    if (r == 0) {
        /* the SDK's check: Content-MD5, else the image's checksum */
        const char *want = st_cli_http_response_header(&resp, "Content-MD5");
        if (!want || !*want)
            want = json_string_value(json_object_get(image, "checksum"));
        unsigned char digest[EVP_MAX_MD_SIZE];
        unsigned int n = 0;
        char hex[2 * EVP_MAX_MD_SIZE + 1] = "";
        EVP_DigestFinal_ex(md5, digest, &n);
        for (unsigned int i = 0; i < n; i++)
            snprintf(hex + 2 * i, 3, "%02x", digest[i]);
        if (want && *want && strcmp(want, hex) != 0)
            r = st_err_set(err, -EIO, "Unable to download image: checksum mismatch: %s != %s", want,
                           hex);
    }
    EVP_MD_CTX_free(md5);
    st_cli_http_response_clear(&resp);
    if (file) {
        if (r == 0 && fsync(fd) < 0)
            r = st_err_set(err, -errno, "writing %s: %s", file, strerror(errno));
        close(fd);
        if (r < 0)
            unlink(file); /* no half image left behind */
    }
    return r;
}

/* ---- set ---- */

static int run_set(struct st_cli_ctx *ctx, struct st_err **err)
{
    const struct st_cli_args *a = &ctx->args;
    st_autoptr(json_t) image = NULL;
    int r = st_cli_find(ctx, &st_cli_kind_image, a->pos[0], &image, err);
    if (r < 0)
        return r;
    st_autofree char *owner = NULL;
    r = project_id(ctx, &owner, err);
    if (r < 0)
        return r;
    if (st_cli_args_flag(a, "deactivate") || st_cli_args_flag(a, "activate")) {
        const char *action =
            st_cli_args_flag(a, "deactivate") ? "/actions/deactivate" : "/actions/reactivate";
        st_autofree char *path = st_cli_object_path(&st_cli_kind_image, image, action);
        r = st_cli_service_call(ctx, ST_CLI_GLANCE, "POST", path, NULL, NULL, err);
        if (r < 0)
            return r;
    }

    /* the changes, then one JSON patch of "add" operations (which replace
     * existing members), in key order as openstacksdk makes it */
    st_autoptr(json_t) changes = json_object();
    static const char *const strings[][2] = {
        {"name", "name"},
        {"container-format", "container_format"},
        {"disk-format", "disk_format"},
        {"architecture", "architecture"},
        {"instance-id", "instance_id"},
        {"kernel-id", "kernel_id"},
        {"os-distro", "os_distro"},
        {"os-version", "os_version"},
        {"ramdisk-id", "ramdisk_id"},
    };
    for (size_t i = 0; i < ST_ARRAY_SIZE(strings); i++)
        if (st_cli_args_get(a, strings[i][0]))
            json_object_set_new(changes, strings[i][1],
                                json_string(st_cli_args_get(a, strings[i][0])));
    int rc = 0;
    if (int_field(ctx, "min-disk", "min_disk", changes, &rc) ||
        int_field(ctx, "min-ram", "min_ram", changes, &rc))
        return rc;
    r = st_cli_key_values(ctx, "property", changes, err);
    if (r < 0)
        return r;
    if (st_cli_args_flag(a, "protected") || st_cli_args_flag(a, "unprotected"))
        json_object_set_new(changes, "protected", json_boolean(st_cli_args_flag(a, "protected")));
    const char *visibility = visibility_option(a);
    if (visibility)
        json_object_set_new(changes, "visibility", json_string(visibility));
    if (owner)
        json_object_set_new(changes, "owner", json_string(owner));
    char *const *tags;
    size_t n_tags = st_cli_args_all(a, "tag", &tags);
    if (n_tags > 0) {
        /* added to the current ones, without repeats */
        json_t *current = json_object_get(image, "tags");
        json_t *all = json_is_array(current) ? json_deep_copy(current) : json_array();
        for (size_t i = 0; i < n_tags; i++) {
            bool seen = false;
            size_t j;
            json_t *t;
            json_array_foreach(all, j, t) seen = seen || strcmp(json_string_value(t), tags[i]) == 0;
            if (!seen)
                json_array_append_new(all, json_string(tags[i]));
        }
        json_object_set_new(changes, "tags", all);
    }
    if (st_cli_args_flag(a, "hidden") || st_cli_args_flag(a, "unhidden"))
        json_object_set_new(changes, "os_hidden", json_boolean(st_cli_args_flag(a, "hidden")));
    if (json_object_size(changes) == 0)
        return 0;

    size_t n = json_object_size(changes), i = 0;
    st_autofree const char **keys = st_new0(const char *, n);
    const char *key;
    json_t *val;
    json_object_foreach(changes, key, val) keys[i++] = key;
    for (i = 1; i < n; i++)
        for (size_t j = i; j > 0 && strcmp(keys[j - 1], keys[j]) > 0; j--) {
            const char *t = keys[j];
            keys[j] = keys[j - 1];
            keys[j - 1] = t;
        }
    st_autoptr(json_t) patch = json_array();
    for (i = 0; i < n; i++) {
        st_autofree char *p = st_sprintf("/%s", keys[i]);
        json_array_append_new(patch, json_pack("{s:s,s:s,s:O}", "op", "add", "path", p, "value",
                                               json_object_get(changes, keys[i])));
    }
    st_autofree char *path = st_cli_object_path(&st_cli_kind_image, image, NULL);
    return st_cli_service_call_as(ctx, ST_CLI_GLANCE, "PATCH", path, PATCH_TYPE, patch, NULL, err);
}

/* ---- the table ---- */

static const char *const container_formats[] = {"ami",    "ari", "aki", "bare",
                                                "docker", "ova", "ovf", NULL};
static const char *const disk_formats[] = {"ami",   "ari",  "aki", "vhd", "vmdk",  "raw",
                                           "qcow2", "vhdx", "vdi", "iso", "ploop", NULL};

#define VISIBILITY_OPTIONS(what)                                                                   \
    ST_CLI_FLAG("public", what "accessible to the public", GROUP_VISIBILITY),                      \
        ST_CLI_FLAG("private", what "inaccessible to the public (default)", GROUP_VISIBILITY),     \
        ST_CLI_FLAG("community", what "accessible to the community", GROUP_VISIBILITY),            \
        ST_CLI_FLAG("shared", what "shared", GROUP_VISIBILITY)
#define PROJECT_OPTIONS(help)                                                                      \
    ST_CLI_VALUE("project", "<project>", help),                                                    \
        ST_CLI_VALUE("project-domain", "<project-domain>",                                         \
                     "Domain the project belongs to (name or ID). This can be used in case "       \
                     "collisions between project names exist.")

static const struct st_cli_option create_opts[] = {
    ST_CLI_VALUE("id", "<id>", "Image ID to reserve"),
    {"container-format", 0, ST_CLI_OPT_VALUE, "<container-format>",
     "Image container format. The supported options are: ami, ari, aki, bare, docker, ova, ovf. "
     "The default format is: bare",
     container_formats, false, 0},
    {"disk-format", 0, ST_CLI_OPT_VALUE, "<disk-format>",
     "Image disk format. The supported options are: ami, ari, aki, vhd, vmdk, raw, qcow2, vhdx, "
     "vdi, iso, ploop. The default format is: raw",
     disk_formats, false, 0},
    ST_CLI_VALUE("min-disk", "<disk-gb>", "Minimum disk size needed to boot image, in gigabytes"),
    ST_CLI_VALUE("min-ram", "<ram-mb>", "Minimum RAM size needed to boot image, in megabytes"),
    ST_CLI_VALUE("file", "<file>", "Upload image from local file"),
    ST_CLI_FLAG("protected", "Prevent image from being deleted", GROUP_PROTECTED),
    ST_CLI_FLAG("unprotected", "Allow image to be deleted (default)", GROUP_PROTECTED),
    VISIBILITY_OPTIONS("Image is "),
    ST_CLI_APPEND("property", "<key=value>",
                  "Set a property on this image (repeat option to set multiple properties)"),
    ST_CLI_APPEND("tag", "<tag>", "Set a tag on this image (repeat option to set multiple tags)"),
    PROJECT_OPTIONS("Set an alternate project on this image (name or ID)"),
    ST_CLI_OPTIONS_END,
};
static const struct st_cli_arg create_args[] = {
    {"<image-name>", "New image name", 0},
    {NULL, NULL, 0},
};

static const struct st_cli_option list_opts[] = {
    ST_CLI_FLAG("public", "List only public images", GROUP_VISIBILITY),
    ST_CLI_FLAG("private", "List only private images", GROUP_VISIBILITY),
    ST_CLI_FLAG("community", "List only community images", GROUP_VISIBILITY),
    ST_CLI_FLAG("shared", "List only shared images", GROUP_VISIBILITY),
    ST_CLI_FLAG("all", "List all images", GROUP_VISIBILITY),
    ST_CLI_APPEND("property", "<key=value>",
                  "Filter output based on property (repeat option to filter on multiple "
                  "properties)"),
    ST_CLI_VALUE("name", "<name>", "Filter images based on name."),
    ST_CLI_VALUE("status", "<status>", "Filter images based on status."),
    ST_CLI_VALUE("member-status", "<member-status>",
                 "Filter images based on member status. The supported options are: accepted, "
                 "pending, rejected, all. "),
    PROJECT_OPTIONS("Search by project (admin only) (name or ID)"),
    ST_CLI_APPEND("tag", "<tag>",
                  "Filter images based on tag. (repeat option to filter on multiple tags)"),
    ST_CLI_FLAG("hidden", "List hidden images", 0),
    ST_CLI_FLAG("long", "List additional fields in output", 0),
    ST_CLI_VALUE("sort", "<key>[:<direction>]",
                 "Sort output by selected keys and directions (asc or desc) (default: name:asc), "
                 "multiple keys and directions can be specified separated by comma"),
    ST_CLI_VALUE("limit", "<num-images>", "Maximum number of images to display."),
    ST_CLI_VALUE("marker", "<image>",
                 "The last image of the previous page. Display list of images after marker. "
                 "Display all images if not specified. (name or ID)"),
    ST_CLI_OPTIONS_END,
};

static const struct st_cli_option show_opts[] = {
    ST_CLI_FLAG("human-readable", "Print image size in a human-friendly format.", 0),
    ST_CLI_OPTIONS_END,
};
static const struct st_cli_arg show_args[] = {
    {"<image>", "Image to display (name or ID)", 0},
    {NULL, NULL, 0},
};

static const struct st_cli_arg delete_args[] = {
    {"<image>", "Image(s) to delete (name or ID)", ST_CLI_ARG_MULTI},
    {NULL, NULL, 0},
};

static const struct st_cli_option save_opts[] = {
    ST_CLI_VALUE("file", "<filename>", "Downloaded image save filename (default: stdout)"),
    ST_CLI_OPTIONS_END,
};
static const struct st_cli_arg save_args[] = {
    {"<image>", "Image to save (name or ID)", 0},
    {NULL, NULL, 0},
};

static const struct st_cli_option set_opts[] = {
    ST_CLI_VALUE("name", "<name>", "New image name"),
    ST_CLI_VALUE("min-disk", "<disk-gb>", "Minimum disk size needed to boot image, in gigabytes"),
    ST_CLI_VALUE("min-ram", "<ram-mb>", "Minimum RAM size needed to boot image, in megabytes"),
    {"container-format", 0, ST_CLI_OPT_VALUE, "<container-format>",
     "Image container format. The supported options are: ami, ari, aki, bare, docker, ova, ovf",
     container_formats, false, 0},
    {"disk-format", 0, ST_CLI_OPT_VALUE, "<disk-format>",
     "Image disk format. The supported options are: ami, ari, aki, vhd, vmdk, raw, qcow2, vhdx, "
     "vdi, iso, ploop",
     disk_formats, false, 0},
    ST_CLI_FLAG("protected", "Prevent image from being deleted", GROUP_PROTECTED),
    ST_CLI_FLAG("unprotected", "Allow image to be deleted (default)", GROUP_PROTECTED),
    VISIBILITY_OPTIONS("Image is "),
    ST_CLI_APPEND("property", "<key=value>",
                  "Set a property on this image (repeat option to set multiple properties)"),
    ST_CLI_APPEND("tag", "<tag>", "Set a tag on this image (repeat option to set multiple tags)"),
    ST_CLI_VALUE("architecture", "<architecture>", "Operating system architecture"),
    ST_CLI_VALUE("instance-id", "<instance-id>", "ID of server instance used to create this image"),
    ST_CLI_VALUE("kernel-id", "<kernel-id>", "ID of kernel image used to boot this disk image"),
    ST_CLI_VALUE("os-distro", "<os-distro>", "Operating system distribution name"),
    ST_CLI_VALUE("os-version", "<os-version>", "Operating system distribution version"),
    ST_CLI_VALUE("ramdisk-id", "<ramdisk-id>", "ID of ramdisk image used to boot this disk image"),
    ST_CLI_FLAG("deactivate", "Deactivate the image", GROUP_ACTIVATE),
    ST_CLI_FLAG("activate", "Activate the image", GROUP_ACTIVATE),
    PROJECT_OPTIONS("Set an alternate project on this image (name or ID)"),
    ST_CLI_FLAG("hidden", "Hide the image", GROUP_HIDDEN),
    ST_CLI_FLAG("unhidden", "Unhide the image", GROUP_HIDDEN),
    ST_CLI_OPTIONS_END,
};
static const struct st_cli_arg set_args[] = {
    {"<image>", "Image to modify (name or ID)", 0},
    {NULL, NULL, 0},
};

const struct st_cli_command st_cli_image_commands[] = {
    {"image create", "Create/upload an image", NULL, create_opts, create_args, SHOW, run_create},
    {"image delete", "Delete image(s)", NULL, NULL, delete_args, ST_CLI_CMD_AUTH, run_delete},
    {"image list", "List available images", NULL, list_opts, NULL, LIST, run_list},
    {"image save", "Save an image locally", NULL, save_opts, save_args, ST_CLI_CMD_AUTH, run_save},
    {"image set", "Set image properties", NULL, set_opts, set_args, ST_CLI_CMD_AUTH, run_set},
    {"image show", "Display image details", NULL, show_opts, show_args, SHOW, run_show},
    {NULL, NULL, NULL, NULL, NULL, 0, NULL},
};
