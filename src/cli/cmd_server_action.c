/* What is done to an existing server: the openstack CLI's `server delete`,
 * `server start`, `server stop`, `server reboot` (novaclient at 2.1) and
 * `console log show` (openstacksdk). Each finds the server by name or ID
 * and sends one request; like openstack, these stop at the first server
 * that fails. `--wait` polls as server create's does (cmd_server.c). */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "cmd_server.h"
#include "http.h"
#include "lib/cleanup.h"
#include "lib/json.h"
#include "services.h"

static bool all_projects(struct st_cli_ctx *ctx)
{
    return st_cli_args_flag(&ctx->args, "all-projects") || st_cli_env_true("ALL_PROJECTS");
}

/* novaclient's find_resource(servers, value, all_tenants=...). */
static int find_server(struct st_cli_ctx *ctx, const char *value, json_t **ret, struct st_err **err)
{
    return st_cli_find_in(ctx, &st_cli_kind_server, value,
                          all_projects(ctx) ? "all_tenants=True" : NULL, ret, err);
}

/* POST /servers/{id}/action with body. */
static int server_action(struct st_cli_ctx *ctx, enum st_cli_service svc, const json_t *server,
                         const json_t *body, json_t **ret, struct st_err **err)
{
    st_autofree char *path = st_cli_object_path(&st_cli_kind_server, server, "/action");
    return st_cli_service_call(ctx, svc, "POST", path, body, ret, err);
}

static int run_delete(struct st_cli_ctx *ctx, struct st_err **err)
{
    bool force = st_cli_args_flag(&ctx->args, "force");
    for (size_t i = 0; i < ctx->args.n_pos; i++) {
        st_autoptr(json_t) server = NULL;
        int r = find_server(ctx, ctx->args.pos[i], &server, err);
        if (r < 0)
            return r;
        if (force) {
            st_autoptr(json_t) body = json_pack("{s:n}", "forceDelete");
            r = server_action(ctx, ST_CLI_NOVA, server, body, NULL, err);
        } else {
            st_autofree char *path = st_cli_object_path(&st_cli_kind_server, server, NULL);
            r = st_cli_service_call(ctx, ST_CLI_NOVA, "DELETE", path, NULL, NULL, err);
        }
        if (r == 0 && st_cli_args_flag(&ctx->args, "wait"))
            r = st_cli_server_wait(ctx, st_cli_str(server, "id"), st_cli_str(server, "name"),
                                   "deleting", true, NULL, err);
        if (r < 0)
            return r;
    }
    return 0;
}

/* server start / stop: {"os-start": null} / {"os-stop": null}. */
static int power_action(struct st_cli_ctx *ctx, const char *action, struct st_err **err)
{
    for (size_t i = 0; i < ctx->args.n_pos; i++) {
        st_autoptr(json_t) server = NULL;
        int r = find_server(ctx, ctx->args.pos[i], &server, err);
        if (r < 0)
            return r;
        st_autoptr(json_t) body = json_pack("{s:n}", action);
        r = server_action(ctx, ST_CLI_NOVA, server, body, NULL, err);
        if (r < 0)
            return r;
    }
    return 0;
}

static int run_start(struct st_cli_ctx *ctx, struct st_err **err)
{
    return power_action(ctx, "os-start", err);
}

static int run_stop(struct st_cli_ctx *ctx, struct st_err **err)
{
    return power_action(ctx, "os-stop", err);
}

static int run_reboot(struct st_cli_ctx *ctx, struct st_err **err)
{
    st_autoptr(json_t) server = NULL;
    int r = st_cli_find(ctx, &st_cli_kind_server, ctx->args.pos[0], &server, err);
    if (r < 0)
        return r;
    const char *type = st_cli_args_flag(&ctx->args, "hard") ? "HARD" : "SOFT";
    st_autoptr(json_t) body = json_pack("{s:{s:s}}", "reboot", "type", type);
    r = server_action(ctx, ST_CLI_NOVA, server, body, NULL, err);
    if (r < 0 || !st_cli_args_flag(&ctx->args, "wait"))
        return r;
    r = st_cli_server_wait(ctx, st_cli_str(server, "id"), st_cli_str(server, "name"), "rebooting",
                           false, NULL, err);
    if (r < 0)
        return r;
    fputs("Complete\n", ctx->out);
    return 0;
}

static int run_console_log(struct st_cli_ctx *ctx, struct st_err **err)
{
    long lines;
    int rc = st_cli_ctx_int_option(ctx, "lines", -1, &lines);
    if (rc)
        return rc;
    if (st_cli_args_get(&ctx->args, "lines") && lines < 0)
        return st_cli_ctx_usage_error(ctx, "\"%s\" should be a non-negative integer.",
                                      st_cli_args_get(&ctx->args, "lines"));
    st_autoptr(json_t) server = NULL;
    int r = st_cli_find(ctx, &st_cli_kind_server_sdk, ctx->args.pos[0], &server, err);
    if (r < 0)
        return r;
    st_autoptr(json_t) body =
        lines >= 0 ? json_pack("{s:{s:I}}", "os-getConsoleOutput", "length", (json_int_t)lines)
                   : json_pack("{s:{}}", "os-getConsoleOutput");
    st_autoptr(json_t) doc = NULL;
    r = server_action(ctx, ST_CLI_NOVA_SDK, server, body, &doc, err);
    if (r < 0)
        return r;
    const char *out = json_string_value(json_object_get(doc, "output"));
    size_t len = json_string_length(json_object_get(doc, "output"));
    if (out && len > 0) {
        fwrite(out, 1, len, ctx->out);
        if (out[len - 1] != '\n')
            fputc('\n', ctx->out);
    }
    return 0;
}

/* ---- the table ---- */

#define ALL_PROJECTS_OPTION(what)                                                                  \
    ST_CLI_FLAG("all-projects",                                                                    \
                what " server(s) in another project by name (admin only)(can be specified using "  \
                     "the ALL_PROJECTS envvar)",                                                   \
                0)

static const struct st_cli_option delete_opts[] = {
    ST_CLI_FLAG("force", "Force delete server(s)", 0),
    ALL_PROJECTS_OPTION("Delete"),
    ST_CLI_FLAG("wait", "Wait for delete to complete", 0),
    ST_CLI_OPTIONS_END,
};
static const struct st_cli_arg delete_args[] = {
    {"<server>", "Server(s) to delete (name or ID)", ST_CLI_ARG_MULTI},
    {NULL, NULL, 0},
};

static const struct st_cli_option start_opts[] = {
    ALL_PROJECTS_OPTION("Start"),
    ST_CLI_OPTIONS_END,
};
static const struct st_cli_arg start_args[] = {
    {"<server>", "Server(s) to start (name or ID)", ST_CLI_ARG_MULTI},
    {NULL, NULL, 0},
};

static const struct st_cli_option stop_opts[] = {
    ALL_PROJECTS_OPTION("Stop"),
    ST_CLI_OPTIONS_END,
};
static const struct st_cli_arg stop_args[] = {
    {"<server>", "Server(s) to stop (name or ID)", ST_CLI_ARG_MULTI},
    {NULL, NULL, 0},
};

enum { GROUP_REBOOT = 1 };

static const struct st_cli_option reboot_opts[] = {
    ST_CLI_FLAG("hard", "Perform a hard reboot", GROUP_REBOOT),
    ST_CLI_FLAG("soft", "Perform a soft reboot", GROUP_REBOOT),
    ST_CLI_FLAG("wait", "Wait for reboot to complete", 0),
    ST_CLI_OPTIONS_END,
};
static const struct st_cli_arg reboot_args[] = {
    {"<server>", "Server (name or ID)", 0},
    {NULL, NULL, 0},
};

static const struct st_cli_option console_opts[] = {
    ST_CLI_VALUE("lines", "<num-lines>",
                 "Number of lines to display from the end of the log (default=all)"),
    ST_CLI_OPTIONS_END,
};
static const struct st_cli_arg console_args[] = {
    {"<server>", "Server to show console log (name or ID)", 0},
    {NULL, NULL, 0},
};

const struct st_cli_command st_cli_server_action_commands[] = {
    {"server delete", "Delete server(s)", NULL, delete_opts, delete_args, ST_CLI_CMD_AUTH,
     run_delete},
    {"server start", "Start server(s).", NULL, start_opts, start_args, ST_CLI_CMD_AUTH, run_start},
    {"server stop", "Stop server(s).", NULL, stop_opts, stop_args, ST_CLI_CMD_AUTH, run_stop},
    {"server reboot", "Perform a hard or soft server reboot", NULL, reboot_opts, reboot_args,
     ST_CLI_CMD_AUTH, run_reboot},
    {"console log show", "Show server's console output", NULL, console_opts, console_args,
     ST_CLI_CMD_AUTH, run_console_log},
    {NULL, NULL, NULL, NULL, NULL, 0, NULL},
};
