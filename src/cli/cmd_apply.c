/* `stratos apply -f FILE`: stratos's own declarative command (openstack has
 * none). A file holds one or more YAML or JSON documents; each is
 * dispatched on what it is — its "kind" field when it has one, else its one
 * top-level key besides "metadata" — to the kind's handler, which makes it
 * so with idempotent requests. Today's kinds are the seed's
 * `resourcePolicy`, stored by name through /stratos/v1/resource-policies,
 * and the seed's `vpc`, made of Neutron resources (apply_vpc.c); later
 * kinds (deployments) add one row to apply_kinds. Every
 * document is checked before anything is sent, so a file with one bad
 * document changes nothing. Also `stratos resource policy list|show|delete`
 * for what apply stored. */
#include "cmd_apply.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "apply_vpc.h"
#include "auth.h"
#include "document.h"
#include "http.h"
#include "lib/cleanup.h"
#include "lib/files.h"
#include "lib/json.h"
#include "output.h"
#include "services.h"

#define POLICIES_PATH "/stratos/v1/resource-policies"

/* The stratos API's base URL: the catalog's "stratos" entry when the login
 * has one, else stratosd's own path under the endpoint. */
static int stratos_url(struct st_cli_ctx *ctx, const char *path, char **ret, struct st_err **err)
{
    struct st_cli_auth *a = ctx->auth;
    st_autofree char *base = NULL;
    if (a && a->catalog && st_cli_auth_service_url(a, "stratos", &base, NULL) == 0) {
        *ret = st_sprintf("%s%s", base, path + strlen("/stratos"));
        return 0;
    }
    const char *endpoint;
    int r = st_cli_ctx_endpoint(ctx, &endpoint, err);
    if (r < 0)
        return r;
    *ret = st_sprintf("%s%s", endpoint, path);
    return 0;
}

static int stratos_call(struct st_cli_ctx *ctx, const char *method, const char *path,
                        const json_t *body, json_t **ret, struct st_err **err)
{
    struct st_cli_http *h;
    int r = st_cli_ctx_http(ctx, &h, err); /* logs in first: the catalog may say where */
    if (r < 0)
        return r;
    st_autofree char *url = NULL;
    r = stratos_url(ctx, path, &url, err);
    if (r < 0)
        return r;
    return st_cli_http_json(h, method, url, body, ret, err);
}

/* The object of an answer wrapped as {"resource_policy": {...}}, or the
 * answer itself. */
static json_t *unwrap(json_t *doc, const char *key)
{
    json_t *inner = json_object_get(doc, key);
    return json_is_object(inner) ? inner : doc;
}

/* A policy as `show` prints it: the document, its sections as dotted
 * key='value' text in tables. */
static json_t *policy_view(const json_t *policy)
{
    json_t *v = json_deep_copy(policy);
    const char *key;
    json_t *val;
    void *tmp;
    json_object_foreach_safe(v, tmp, key, val)
    {
        if (json_is_object(val))
            json_object_set_new(v, key, st_cli_dict_column(val));
        else if (json_is_array(val))
            json_object_set_new(v, key, st_cli_list_column(val));
    }
    return v;
}

static void warn_not_enforced(struct st_cli_ctx *ctx, const json_t *policy)
{
    size_t i;
    json_t *section;
    json_array_foreach(json_object_get(policy, "not_enforced"), i, section)
        fprintf(ctx->err, "warning: resource policy '%s': %s is stored but not enforced yet\n",
                st_cli_str(policy, "name"), json_string_value(section));
}

/* ---- kinds ---- */

struct apply_kind {
    const char *key;  /* the top-level key: "resourcePolicy" */
    const char *kind; /* the "kind" field naming it: "ResourcePolicy" */
    /* a problem of the document (exit refused_status), before anything is sent */
    int (*check)(struct st_cli_ctx *ctx, const json_t *doc, struct st_err **err);
    int (*apply)(struct st_cli_ctx *ctx, const json_t *doc, bool dry_run, struct st_err **err);
    /* the exit status of a document its check refuses: 2 for a malformed
     * policy (a usage error), 1 for a VPC whose network plan is wrong */
    int refused_status;
};

/* --name, else metadata.name, else "default". */
static const char *policy_name(struct st_cli_ctx *ctx, const json_t *doc)
{
    const char *name = st_cli_args_get(&ctx->args, "name");
    if (!name)
        name = json_string_value(json_object_get(json_object_get(doc, "metadata"), "name"));
    return name ? name : "default";
}

static int policy_check(struct st_cli_ctx *ctx, const json_t *doc, struct st_err **err)
{
    (void)ctx;
    if (!json_is_object(json_object_get(doc, "resourcePolicy")))
        return st_err_set(err, -EINVAL, "resourcePolicy must be a mapping");
    json_t *meta = json_object_get(doc, "metadata");
    if (meta && !(json_is_object(meta) && (!json_object_get(meta, "name") ||
                                           json_is_string(json_object_get(meta, "name")))))
        return st_err_set(err, -EINVAL, "metadata must be a mapping with a text name");
    return 0;
}

static int policy_apply(struct st_cli_ctx *ctx, const json_t *doc, bool dry_run,
                        struct st_err **err)
{
    const char *name = policy_name(ctx, doc);
    st_autofree char *esc = st_cli_http_escape(name);
    st_autofree char *path = st_sprintf(POLICIES_PATH "/%s", esc);
    st_autoptr(json_t) body = json_pack("{s:s,s:O}", "name", name, "resourcePolicy",
                                        json_object_get(doc, "resourcePolicy"));
    if (dry_run) {
        st_autofree char *url = NULL;
        int r = stratos_url(ctx, path, &url, err);
        if (r < 0)
            return r;
        st_autofree char *text = json_dumps(body, JSON_INDENT(2) | JSON_ENSURE_ASCII);
        fprintf(ctx->out, "PUT %s (dry run)\n%s\n", url, text);
        return 0;
    }
    st_autoptr(json_t) doc_out = NULL;
    int r = stratos_call(ctx, "PUT", path, body, &doc_out, err);
    if (r < 0)
        return r;
    json_t *policy = unwrap(doc_out, "resource_policy");
    warn_not_enforced(ctx, policy);
    st_autoptr(json_t) view = policy_view(policy);
    return st_cli_ctx_show(ctx, view, err);
}

static const struct apply_kind apply_kinds[] = {
    {"resourcePolicy", "ResourcePolicy", policy_check, policy_apply, 2},
    {"vpc", "VPC", st_cli_vpc_check, st_cli_vpc_apply, 1},
};

/* The kind of one document, or -EINVAL naming what it is and what is known. */
static int document_kind(const json_t *doc, const struct apply_kind **ret, struct st_err **err)
{
    if (!json_is_object(doc))
        return st_err_set(err, -EINVAL, "a document must be a mapping, not a %s",
                          json_is_array(doc) ? "list" : "scalar");
    char *known = NULL;
    size_t len;
    FILE *f = open_memstream(&known, &len);
    if (!f)
        abort();
    for (size_t i = 0; i < ST_ARRAY_SIZE(apply_kinds); i++)
        fprintf(f, "%s%s", i ? ", " : "", apply_kinds[i].key);
    fclose(f);
    st_autofree char *known_text = known;

    const char *kind = json_string_value(json_object_get(doc, "kind"));
    if (kind) {
        for (size_t i = 0; i < ST_ARRAY_SIZE(apply_kinds); i++)
            if (strcmp(apply_kinds[i].kind, kind) == 0) {
                *ret = &apply_kinds[i];
                return 0;
            }
        return st_err_set(err, -EINVAL, "unknown kind '%s' (known: %s)", kind, known_text);
    }
    const char *found = NULL;
    const char *key;
    json_t *val;
    json_object_foreach((json_t *)doc, key, val)
    {
        if (strcmp(key, "metadata") == 0 || strcmp(key, "apiVersion") == 0)
            continue;
        if (found)
            return st_err_set(err, -EINVAL,
                              "more than one kind of document: '%s' and '%s' (one per "
                              "document; separate documents with ---)",
                              found, key);
        found = key;
    }
    if (!found)
        return st_err_set(err, -EINVAL, "an empty document (known kinds: %s)", known_text);
    for (size_t i = 0; i < ST_ARRAY_SIZE(apply_kinds); i++)
        if (strcmp(apply_kinds[i].key, found) == 0) {
            *ret = &apply_kinds[i];
            return 0;
        }
    return st_err_set(err, -EINVAL, "unknown kind of document '%s' (known: %s)", found, known_text);
}

static int read_input(const char *file, char **ret, size_t *ret_len, struct st_err **err)
{
    if (strcmp(file, "-") != 0)
        return st_read_file(file, ST_CLI_DOCUMENT_MAX, ret, ret_len, err);
    char *buf = NULL;
    size_t n = 0;
    for (;;) {
        buf = st_xrealloc(buf, n + 65536 + 1);
        ssize_t k = read(STDIN_FILENO, buf + n, 65536);
        if (k < 0 && errno == EINTR)
            continue;
        if (k < 0) {
            free(buf);
            return st_err_errno(err, "reading standard input");
        }
        if (k == 0)
            break;
        n += (size_t)k;
        if (n > ST_CLI_DOCUMENT_MAX) {
            free(buf);
            return st_err_set(err, -EFBIG, "standard input is larger than %d bytes",
                              ST_CLI_DOCUMENT_MAX);
        }
    }
    buf[n] = '\0';
    *ret = buf;
    *ret_len = n;
    return 0;
}

static int run_apply(struct st_cli_ctx *ctx, struct st_err **err)
{
    const char *file = st_cli_args_get(&ctx->args, "filename");
    st_autofree char *text = NULL;
    size_t len;
    int r = read_input(file, &text, &len, err);
    if (r < 0)
        return r;
    st_autoptr(json_t) docs = NULL;
    st_autoptr(st_err) e = NULL;
    if (st_cli_document_parse(text, len, &docs, &e) < 0) {
        fprintf(ctx->err, "stratos apply: error: %s: %s\n", file, st_err_msg(e));
        return 2;
    }
    if (json_array_size(docs) == 0) {
        fprintf(ctx->err, "stratos apply: error: %s: no document in it\n", file);
        return 2;
    }
    if (json_array_size(docs) > 1 && st_cli_args_get(&ctx->args, "name")) {
        fprintf(ctx->err, "stratos apply: error: --name names one document, %s has %zu\n", file,
                json_array_size(docs));
        return 2;
    }
    /* every document checked before the first is applied */
    size_t n = json_array_size(docs);
    st_autofree const struct apply_kind **kinds = st_new0(const struct apply_kind *, n);
    for (size_t i = 0; i < n; i++) {
        json_t *doc = json_array_get(docs, i);
        int status = 2;
        int bad = document_kind(doc, &kinds[i], &e);
        if (bad == 0 && (bad = kinds[i]->check(ctx, doc, &e)) < 0)
            status = kinds[i]->refused_status;
        if (bad < 0) {
            if (n > 1)
                fprintf(ctx->err, "stratos apply: error: %s: document %zu: %s\n", file, i + 1,
                        st_err_msg(e));
            else
                fprintf(ctx->err, "stratos apply: error: %s: %s\n", file, st_err_msg(e));
            return status;
        }
    }
    bool dry_run = st_cli_args_flag(&ctx->args, "dry-run");
    for (size_t i = 0; i < n; i++) {
        r = kinds[i]->apply(ctx, json_array_get(docs, i), dry_run, err);
        if (r < 0)
            return r;
    }
    return 0;
}

/* ---- resource policy list | show | delete ---- */

static const struct st_cli_column policy_cols[] = {
    {"Name", "name"},
    {"Project ID", "project_id"},
    {"Not Enforced", "not_enforced"},
    {"Updated At", "updated_at"},
    {"Resource Policy", "resourcePolicy"},
};

static int run_policy_list(struct st_cli_ctx *ctx, struct st_err **err)
{
    st_autoptr(json_t) doc = NULL;
    const char *path = st_cli_args_flag(&ctx->args, "all-projects") ? POLICIES_PATH
                           "?all_projects=true"
                                                                    : POLICIES_PATH;
    int r = stratos_call(ctx, "GET", path, NULL, &doc, err);
    if (r < 0)
        return r;
    json_t *list = json_is_array(doc) ? doc : json_object_get(doc, "resource_policies");
    if (!json_is_array(list))
        return st_err_set(err, -EPROTO, "invalid response to GET %s: no list", path);
    st_autoptr(json_t) rows = json_array();
    size_t i;
    json_t *p;
    json_array_foreach(list, i, p) json_array_append_new(rows, policy_view(p));
    return st_cli_ctx_list(ctx, policy_cols, st_cli_args_flag(&ctx->args, "long") ? 5 : 4, rows,
                           err);
}

static int run_policy_show(struct st_cli_ctx *ctx, struct st_err **err)
{
    st_autofree char *esc = st_cli_http_escape(ctx->args.pos[0]);
    st_autofree char *path = st_sprintf(POLICIES_PATH "/%s", esc);
    st_autoptr(json_t) doc = NULL;
    int r = stratos_call(ctx, "GET", path, NULL, &doc, err);
    if (r < 0)
        return r;
    st_autoptr(json_t) view = policy_view(unwrap(doc, "resource_policy"));
    return st_cli_ctx_show(ctx, view, err);
}

static int delete_one(struct st_cli_ctx *ctx, const char *name, void *data, struct st_err **err)
{
    (void)data;
    st_autofree char *esc = st_cli_http_escape(name);
    st_autofree char *path = st_sprintf(POLICIES_PATH "/%s", esc);
    return stratos_call(ctx, "DELETE", path, NULL, NULL, err);
}

static int run_policy_delete(struct st_cli_ctx *ctx, struct st_err **err)
{
    size_t failed =
        st_cli_each(ctx, delete_one, NULL, "Failed to delete resource policy with name");
    if (failed > 0)
        return st_err_set(err, -EIO, "%zu of %zu resource policies failed to delete.", failed,
                          ctx->args.n_pos);
    return 0;
}

/* ---- the table ---- */

static const struct st_cli_option apply_opts[] = {
    {"filename", 'f', ST_CLI_OPT_VALUE, "<file>",
     "The file to apply: YAML or JSON, one or more documents (- for standard input)", NULL, true,
     0},
    ST_CLI_VALUE("name", "<name>",
                 "Name of what the document defines (default: its own name or metadata.name, "
                 "else \"default\" for a policy, \"vpc\" for a VPC)"),
    ST_CLI_FLAG("dry-run",
                "Print the requests that would be sent (for a VPC, the plan), and send none", 0),
    ST_CLI_OPTIONS_END,
};

static const struct st_cli_option list_opts[] = {
    ST_CLI_FLAG("all-projects", "Include all projects (admin only)", 0),
    ST_CLI_FLAG("long", "List additional fields in output", 0),
    ST_CLI_OPTIONS_END,
};

static const struct st_cli_arg show_args[] = {
    {"<name>", "Resource policy to display", 0},
    {NULL, NULL, 0},
};
static const struct st_cli_arg delete_args[] = {
    {"<name>", "Resource policy(ies) to delete", ST_CLI_ARG_MULTI},
    {NULL, NULL, 0},
};

#define SHOW (ST_CLI_CMD_SHOW | ST_CLI_CMD_AUTH | ST_CLI_CMD_PY_STR)

const struct st_cli_command st_cli_apply_commands[] = {
    {"apply", "Make the cloud match a file of documents (resourcePolicy, vpc)",
     "Make the cloud match a file of YAML or JSON documents, each applied idempotently.\n"
     "A document's kind is its \"kind\" field or its one top-level key:\n"
     "  resourcePolicy  the seed's compute, storage and network policy, stored by\n"
     "                  the name in metadata.name or --name (else \"default\")\n"
     "  vpc             a network (vpc.name, else \"vpc\") with the range vpc.cidr,\n"
     "                  its subnets (public: reached through floating IPs; private),\n"
     "                  and with internet_gateway a router <name>-router whose\n"
     "                  gateway is on the external network (SNAT with nat_gateway)\n"
     "Every document is checked before any is applied: an unknown kind or a bad\n"
     "policy exits 2, a bad VPC exits 1. --dry-run sends no write (for a VPC, it\n"
     "prints the plan: what would be created, what exists).",
     /* no output options: -f names the file, as kubectl's; results print
      * as tables */
     apply_opts, NULL, ST_CLI_CMD_AUTH | ST_CLI_CMD_PY_STR, run_apply},
    {"resource policy list", "List resource policies", NULL, list_opts, NULL,
     ST_CLI_CMD_LIST | ST_CLI_CMD_AUTH | ST_CLI_CMD_PY_STR, run_policy_list},
    {"resource policy show", "Display a resource policy", NULL, NULL, show_args, SHOW,
     run_policy_show},
    {"resource policy delete", "Delete resource policy(ies)", NULL, NULL, delete_args,
     ST_CLI_CMD_AUTH, run_policy_delete},
    {NULL, NULL, NULL, NULL, NULL, 0, NULL},
};
