/* Nova keypairs: the openstack CLI's `keypair` commands (openstackclient
 * compute/v2/keypair.py over openstacksdk): import a public key from a
 * file, or let the server generate a pair and print (or save) the private
 * key once; list, show, delete. Keypairs belong to the user, and the
 * options that need a later microversion (--type, --user) fail as
 * openstack's do at 2.1. */
#include "cmd_keypair.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "http.h"
#include "lib/cleanup.h"
#include "lib/files.h"
#include "lib/json.h"
#include "services.h"

enum { GROUP_KEY = 1 };

#define PUBLIC_KEY_MAX (64 * 1024)

/* The fields openstack shows (the SDK's Keypair, which calls its name its
 * id and "deleted" is_deleted), without the keys. */
static json_t *keypair_view(const json_t *kp, bool with_private_key)
{
    json_t *v = json_object();
    json_t *f;
    json_object_set_new(v, "created_at",
                        (f = json_object_get(kp, "created_at")) ? json_incref(f) : json_null());
    json_object_set_new(v, "fingerprint",
                        (f = json_object_get(kp, "fingerprint")) ? json_incref(f) : json_null());
    json_object_set_new(v, "id", (f = json_object_get(kp, "name")) ? json_incref(f) : json_null());
    json_object_set_new(v, "is_deleted",
                        (f = json_object_get(kp, "deleted")) ? json_incref(f) : json_null());
    json_object_set_new(v, "name",
                        (f = json_object_get(kp, "name")) ? json_incref(f) : json_null());
    if (with_private_key)
        json_object_set_new(v, "private_key",
                            (f = json_object_get(kp, "private_key")) ? json_incref(f)
                                                                     : json_null());
    /* the SDK's default type at 2.1, where Nova does not say */
    json_object_set_new(v, "type",
                        (f = json_object_get(kp, "type")) ? json_incref(f) : json_string("ssh"));
    json_object_set_new(v, "user_id",
                        (f = json_object_get(kp, "user_id")) ? json_incref(f) : json_null());
    return v;
}

static int microversion_needed(struct st_cli_ctx *ctx, const char *option, const char *version,
                               struct st_err **err)
{
    if (!st_cli_args_get(&ctx->args, option))
        return 0;
    return st_err_set(err, -EOPNOTSUPP,
                      "--os-compute-api-version %s or greater is required to support the --%s "
                      "option",
                      version, option);
}

/* Writes the private key readable by its owner only (openstack leaves it
 * to the umask; a private key should not be world-readable). */
static int save_private_key(const char *path, const char *key, struct st_err **err)
{
    st_autoclose int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    size_t len = strlen(key), done = 0;
    while (fd >= 0 && done < len) {
        ssize_t w = write(fd, key + done, len - done);
        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0)
            break;
        done += (size_t)w;
    }
    if (fd < 0 || done < len || fsync(fd) < 0)
        return st_err_set(err, -errno, "Key file %s can not be saved: %s", path, strerror(errno));
    return 0;
}

static int run_create(struct st_cli_ctx *ctx, struct st_err **err)
{
    const struct st_cli_args *a = &ctx->args;
    int r = microversion_needed(ctx, "type", "2.2", err);
    if (r == 0)
        r = microversion_needed(ctx, "user", "2.10", err);
    if (r < 0)
        return r;
    st_autoptr(json_t) keypair = json_pack("{s:s}", "name", a->pos[0]);
    const char *pub_file = st_cli_args_get(a, "public-key");
    if (pub_file) {
        st_autofree char *text = NULL;
        size_t len;
        st_autoptr(st_err) e = NULL;
        if (st_read_file(pub_file, PUBLIC_KEY_MAX, &text, &len, &e) < 0)
            return st_err_set(err, -ENOENT, "Key file %s not found: %s", pub_file, st_err_msg(e));
        /* verbatim, trailing newline included, as openstack sends it */
        json_object_set_new(keypair, "public_key", json_stringn(text, len));
    }
    st_autoptr(json_t) body = json_pack("{s:O}", "keypair", keypair);
    st_autoptr(json_t) doc = NULL;
    r = st_cli_service_call(ctx, ST_CLI_NOVA_SDK, "POST", "/os-keypairs", body, &doc, err);
    if (r < 0)
        return r;
    json_t *kp = json_object_get(doc, "keypair");
    if (!json_is_object(kp))
        return st_err_set(err, -EPROTO, "invalid response to POST /os-keypairs: no keypair");
    const char *priv_file = st_cli_args_get(a, "private-key");
    const char *priv = json_string_value(json_object_get(kp, "private_key"));
    if (priv_file) {
        r = save_private_key(priv_file, priv ? priv : "", err);
        if (r < 0)
            return r;
    }
    if (pub_file || priv_file) {
        st_autoptr(json_t) view = keypair_view(kp, false);
        return st_cli_ctx_show(ctx, view, err);
    }
    /* the generated private key, shown once (as `nova keypair-add`) */
    fputs(priv ? priv : "", ctx->out);
    st_autoptr(json_t) none = json_object();
    return st_cli_ctx_show(ctx, none, err);
}

static const struct st_cli_column list_cols[] = {
    {"Name", "name"},
    {"Fingerprint", "fingerprint"},
};

static int run_list(struct st_cli_ctx *ctx, struct st_err **err)
{
    int r = microversion_needed(ctx, "user", "2.10", err);
    if (r == 0)
        r = microversion_needed(ctx, "project", "2.10", err);
    if (r == 0)
        r = microversion_needed(ctx, "marker", "2.35", err);
    if (r == 0)
        r = microversion_needed(ctx, "limit", "2.35", err);
    if (r < 0)
        return r;
    st_autoptr(json_t) doc = NULL;
    r = st_cli_service_call(ctx, ST_CLI_NOVA_SDK, "GET", "/os-keypairs", NULL, &doc, err);
    if (r < 0)
        return r;
    json_t *items = json_object_get(doc, "keypairs");
    if (!json_is_array(items))
        return st_err_set(err, -EPROTO, "invalid response to GET /os-keypairs: no keypairs");
    /* each item is wrapped: {"keypair": {...}} */
    st_autoptr(json_t) rows = json_array();
    size_t i;
    json_t *item;
    json_array_foreach(items, i, item)
    {
        json_t *kp = json_object_get(item, "keypair");
        json_array_append(rows, json_is_object(kp) ? kp : item);
    }
    return st_cli_ctx_list(ctx, list_cols, ST_ARRAY_SIZE(list_cols), rows, err);
}

static int run_show(struct st_cli_ctx *ctx, struct st_err **err)
{
    int r = microversion_needed(ctx, "user", "2.10", err);
    if (r < 0)
        return r;
    st_autoptr(json_t) kp = NULL;
    r = st_cli_find(ctx, &st_cli_kind_keypair, ctx->args.pos[0], &kp, err);
    if (r < 0)
        return r;
    if (st_cli_args_flag(&ctx->args, "public-key")) {
        fputs(st_cli_str(kp, "public_key"), ctx->out);
        st_autoptr(json_t) none = json_object();
        return st_cli_ctx_show(ctx, none, err);
    }
    st_autoptr(json_t) view = keypair_view(kp, true);
    return st_cli_ctx_show(ctx, view, err);
}

static int delete_one(struct st_cli_ctx *ctx, const char *name, void *data, struct st_err **err)
{
    (void)data;
    /* by name, no lookup first, as the SDK deletes */
    st_autofree char *esc = st_cli_http_escape(name);
    st_autofree char *path = st_sprintf("/os-keypairs/%s", esc);
    return st_cli_service_call(ctx, ST_CLI_NOVA_SDK, "DELETE", path, NULL, NULL, err);
}

static int run_delete(struct st_cli_ctx *ctx, struct st_err **err)
{
    int r = microversion_needed(ctx, "user", "2.10", err);
    if (r < 0)
        return r;
    size_t failed = st_cli_each(ctx, delete_one, NULL, "Failed to delete key with name");
    if (failed > 0)
        return st_err_set(err, -EIO, "%zu of %zu keys failed to delete.", failed, ctx->args.n_pos);
    return 0;
}

/* ---- the table ---- */

#define USER_OPTIONS                                                                               \
    ST_CLI_VALUE("user", "<user>",                                                                 \
                 "The owner of the keypair. (admin only) (name or ID). Requires "                  \
                 "``--os-compute-api-version`` 2.10 or greater."),                                 \
        ST_CLI_VALUE("user-domain", "<user-domain>",                                               \
                     "Domain the user belongs to (name or ID). This can be used in case "          \
                     "collisions between user names exist.")

static const char *const key_types[] = {"ssh", "x509", NULL};

static const struct st_cli_option create_opts[] = {
    {"public-key", 0, ST_CLI_OPT_VALUE, "<file>",
     "Filename for public key to add. If not used, creates a private key.", NULL, false, GROUP_KEY},
    {"private-key", 0, ST_CLI_OPT_VALUE, "<file>",
     "Filename for private key to save. If not used, print private key in console.", NULL, false,
     GROUP_KEY},
    {"type", 0, ST_CLI_OPT_VALUE, "<type>",
     "Keypair type. Can be ssh or x509. (Supported by API versions '2.2' - '2.latest')", key_types,
     false, 0},
    USER_OPTIONS,
    ST_CLI_OPTIONS_END,
};
static const struct st_cli_arg create_args[] = {
    {"<name>", "New public or private key name", 0},
    {NULL, NULL, 0},
};

static const struct st_cli_option list_opts[] = {
    ST_CLI_VALUE("user", "<user>",
                 "Show keypairs for another user (admin only) (name or ID). Requires "
                 "``--os-compute-api-version`` 2.10 or greater."),
    ST_CLI_VALUE("project", "<project>",
                 "Show keypairs for all users associated with project (admin only) (name or "
                 "ID). Requires ``--os-compute-api-version`` 2.10 or greater."),
    ST_CLI_VALUE("marker", "<marker>", "The last keypair ID of the previous page"),
    ST_CLI_VALUE("limit", "<limit>", "Maximum number of keypairs to display"),
    ST_CLI_OPTIONS_END,
};

static const struct st_cli_option show_opts[] = {
    ST_CLI_FLAG("public-key", "Show only bare public key paired with the generated key", 0),
    USER_OPTIONS,
    ST_CLI_OPTIONS_END,
};
static const struct st_cli_arg show_args[] = {
    {"<key>", "Public or private key to display (name only)", 0},
    {NULL, NULL, 0},
};

static const struct st_cli_option delete_opts[] = {
    USER_OPTIONS,
    ST_CLI_OPTIONS_END,
};
static const struct st_cli_arg delete_args[] = {
    {"<key>", "Name of key(s) to delete (name only)", ST_CLI_ARG_MULTI},
    {NULL, NULL, 0},
};

#define SHOW (ST_CLI_CMD_SHOW | ST_CLI_CMD_AUTH | ST_CLI_CMD_PY_STR)
#define LIST (ST_CLI_CMD_LIST | ST_CLI_CMD_AUTH | ST_CLI_CMD_PY_STR)

const struct st_cli_command st_cli_keypair_commands[] = {
    {"keypair create", "Create new public or private key for server ssh access", NULL, create_opts,
     create_args, SHOW, run_create},
    {"keypair delete", "Delete public or private key(s)", NULL, delete_opts, delete_args,
     ST_CLI_CMD_AUTH, run_delete},
    {"keypair list", "List key fingerprints", NULL, list_opts, NULL, LIST, run_list},
    {"keypair show", "Display key details", NULL, show_opts, show_args, SHOW, run_show},
    {NULL, NULL, NULL, NULL, NULL, 0, NULL},
};
