/* Nova server groups: the openstack CLI's `server group` commands
 * (openstackclient compute/v2/server_group.py over openstacksdk) at
 * microversion 2.1: create with one policy (affinity by default), list
 * (ID, Name, Policies; --long adds Members, Project Id, User Id), show and
 * delete by name or ID. The soft policies, which openstack refuses below
 * 2.15, are accepted: stratos serves them at 2.1. --rule needs 2.64 and
 * fails as openstack's does. */
#include "cmd_server_group.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "http.h"
#include "lib/cleanup.h"
#include "lib/json.h"
#include "services.h"

/* openstacksdk's find_server_group: GET by ID, then the list matched on ID
 * or name ("No ServerGroup found for x"). */
static const struct st_cli_kind kind_server_group = {
    .svc = ST_CLI_NOVA_SDK,
    .collection = "/os-server-groups",
    .key = "server_group",
    .list = "/os-server-groups",
    .list_key = "server_groups",
    .name_field = "name",
    .name_query = false,
    .sdk = true,
    .refetch = false,
    .noun = "ServerGroup",
};

static json_t *field(const json_t *obj, const char *key)
{
    json_t *v = json_object_get(obj, key);
    return v ? json_incref(v) : json_null();
}

/* The columns openstack shows at 2.1 (the SDK's ServerGroup without
 * metadata, policy and rules; member_ids shown as "members"), with its
 * ListColumn formatters. */
static json_t *group_view(const json_t *g)
{
    json_t *v = json_object();
    json_object_set_new(v, "id", field(g, "id"));
    json_t *members = field(g, "members");
    json_object_set_new(v, "members", st_cli_list_column(members));
    json_decref(members);
    json_object_set_new(v, "name", field(g, "name"));
    json_t *policies = field(g, "policies");
    json_object_set_new(v, "policies", st_cli_list_column(policies));
    json_decref(policies);
    json_object_set_new(v, "project_id", field(g, "project_id"));
    json_object_set_new(v, "user_id", field(g, "user_id"));
    return v;
}

static int run_create(struct st_cli_ctx *ctx, struct st_err **err)
{
    const struct st_cli_args *a = &ctx->args;
    if (st_cli_args_get(a, "rule"))
        return st_err_set(err, -EOPNOTSUPP,
                          "--os-compute-api-version 2.64 or greater is required to support the "
                          "--rule option");
    const char *policy = st_cli_args_get(a, "policy");
    st_autoptr(json_t) body = json_pack("{s:{s:s, s:[s]}}", "server_group", "name", a->pos[0],
                                        "policies", policy ? policy : "affinity");
    st_autoptr(json_t) doc = NULL;
    int r = st_cli_service_call(ctx, ST_CLI_NOVA_SDK, "POST", "/os-server-groups", body, &doc, err);
    if (r < 0)
        return r;
    json_t *g = json_object_get(doc, "server_group");
    if (!json_is_object(g))
        return st_err_set(err, -EPROTO,
                          "invalid response to POST /os-server-groups: no server_group");
    st_autoptr(json_t) view = group_view(g);
    return st_cli_ctx_show(ctx, view, err);
}

static const struct st_cli_column list_cols[] = {
    {"ID", "id"},
    {"Name", "name"},
    {"Policies", "policies"},
    {"Members", "members"},
    {"Project Id", "project_id"},
    {"User Id", "user_id"},
};

static int run_list(struct st_cli_ctx *ctx, struct st_err **err)
{
    const struct st_cli_args *a = &ctx->args;
    long offset, limit;
    int rc = st_cli_ctx_int_option(ctx, "offset", 0, &offset);
    if (rc == 0)
        rc = st_cli_ctx_int_option(ctx, "limit", 0, &limit);
    if (rc)
        return rc;
    char *buf = NULL;
    size_t len;
    FILE *f = open_memstream(&buf, &len);
    if (!f)
        abort();
    fputs("/os-server-groups", f);
    char sep = '?';
    if (st_cli_args_flag(a, "all-projects")) {
        fprintf(f, "%call_projects=True", sep);
        sep = '&';
    }
    /* openstack leaves out a zero, as a falsy value */
    if (limit) {
        fprintf(f, "%climit=%ld", sep, limit);
        sep = '&';
    }
    if (offset)
        fprintf(f, "%coffset=%ld", sep, offset);
    fclose(f);
    st_autofree char *path = buf;
    st_autoptr(json_t) doc = NULL;
    int r = st_cli_service_call(ctx, ST_CLI_NOVA_SDK, "GET", path, NULL, &doc, err);
    if (r < 0)
        return r;
    json_t *items = json_object_get(doc, "server_groups");
    if (!json_is_array(items))
        return st_err_set(err, -EPROTO,
                          "invalid response to GET /os-server-groups: no server_groups");
    st_autoptr(json_t) rows = json_array();
    size_t i;
    json_t *g;
    json_array_foreach(items, i, g) json_array_append_new(rows, group_view(g));
    size_t n_cols = st_cli_args_flag(a, "long") ? ST_ARRAY_SIZE(list_cols) : 3;
    return st_cli_ctx_list(ctx, list_cols, n_cols, rows, err);
}

static int run_show(struct st_cli_ctx *ctx, struct st_err **err)
{
    st_autoptr(json_t) g = NULL;
    int r = st_cli_find(ctx, &kind_server_group, ctx->args.pos[0], &g, err);
    if (r < 0)
        return r;
    st_autoptr(json_t) view = group_view(g);
    return st_cli_ctx_show(ctx, view, err);
}

static int run_delete(struct st_cli_ctx *ctx, struct st_err **err)
{
    size_t failed = 0;
    for (size_t i = 0; i < ctx->args.n_pos; i++) {
        st_autoptr(st_err) e = NULL;
        st_autoptr(json_t) g = NULL;
        int r = st_cli_find(ctx, &kind_server_group, ctx->args.pos[i], &g, &e);
        if (r == 0) {
            st_autofree char *path = st_cli_object_path(&kind_server_group, g, NULL);
            r = st_cli_service_call(ctx, ST_CLI_NOVA_SDK, "DELETE", path, NULL, NULL, &e);
        }
        if (r < 0) {
            /* openstack logs the bare error of each and goes on */
            fprintf(ctx->err, "%s\n", st_err_msg(e));
            failed++;
        }
    }
    if (failed > 0)
        return st_err_set(err, -EIO, "%zu of %zu server groups failed to delete.", failed,
                          ctx->args.n_pos);
    return 0;
}

/* ---- the table ---- */

static const char *const policies[] = {"affinity", "anti-affinity", "soft-affinity",
                                       "soft-anti-affinity", NULL};

static const struct st_cli_option create_opts[] = {
    {"policy", 0, ST_CLI_OPT_VALUE, "<policy>",
     "Add a policy to <name> (affinity, anti-affinity, soft-affinity or soft-anti-affinity; "
     "default: affinity)",
     policies, false, 0},
    ST_CLI_APPEND("rule", "<key=value>",
                  "A rule for the policy. Currently, only the 'max_server_per_host' rule is "
                  "supported for the 'anti-affinity' policy. Requires "
                  "``--os-compute-api-version`` 2.64 or greater."),
    ST_CLI_OPTIONS_END,
};
static const struct st_cli_arg create_args[] = {
    {"<name>", "New server group name", 0},
    {NULL, NULL, 0},
};

static const struct st_cli_option list_opts[] = {
    ST_CLI_FLAG("all-projects", "Display information from all projects (admin only)", 0),
    ST_CLI_FLAG("long", "List additional fields in output", 0),
    ST_CLI_VALUE("offset", "<offset>",
                 "Index from which to start listing servers. This should typically be a factor "
                 "of --limit. Display all servers groups if not specified."),
    ST_CLI_VALUE("limit", "<limit>",
                 "Maximum number of server groups to display. If limit is greater than "
                 "'osapi_max_limit' option of Nova API, 'osapi_max_limit' will be used instead."),
    ST_CLI_OPTIONS_END,
};

static const struct st_cli_arg show_args[] = {
    {"<server-group>", "server group to display (name or ID)", 0},
    {NULL, NULL, 0},
};

static const struct st_cli_arg delete_args[] = {
    {"<server-group>", "server group(s) to delete (name or ID)", ST_CLI_ARG_MULTI},
    {NULL, NULL, 0},
};

#define SHOW (ST_CLI_CMD_SHOW | ST_CLI_CMD_AUTH | ST_CLI_CMD_PY_STR)
#define LIST (ST_CLI_CMD_LIST | ST_CLI_CMD_AUTH | ST_CLI_CMD_PY_STR)

const struct st_cli_command st_cli_server_group_commands[] = {
    {"server group create", "Create a new server group.", NULL, create_opts, create_args, SHOW,
     run_create},
    {"server group delete", "Delete existing server group(s).", NULL, NULL, delete_args,
     ST_CLI_CMD_AUTH, run_delete},
    {"server group list", "List all server groups.", NULL, list_opts, NULL, LIST, run_list},
    {"server group show", "Display server group details.", NULL, NULL, show_args, SHOW, run_show},
    {NULL, NULL, NULL, NULL, NULL, 0, NULL},
};
