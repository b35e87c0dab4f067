/* `stratos server create|list|show` (cmd_server.c) and `stratos server
 * delete|start|stop|reboot` with `stratos console log show`
 * (cmd_server_action.c), and what the two share. */
#pragma once

#include <jansson.h>
#include <stdbool.h>

#include "command.h"
#include "lib/err.h"

extern const struct st_cli_command st_cli_server_commands[];
extern const struct st_cli_command st_cli_server_action_commands[];

/* GET /servers/{id}: the server object (a new reference); -ENOENT when
 * Nova answers 404. */
int st_cli_server_get(struct st_cli_ctx *ctx, const char *id, json_t **ret, struct st_err **err);

/* Polls GET /servers/{id} (100 ms, doubling to 1 s) until the server is
 * ACTIVE, or gone when until_gone (delete --wait), printing its status on
 * ctx->err as it changes: "Server demo: BUILD (spawning)" (rewritten in
 * place on a terminal). ERROR fails with "Error <verb> server: <name>"
 * (verb: "creating", "deleting", "rebooting") and the fault's message on
 * the next line. *ret (optional) is the ACTIVE server. Never gives up on
 * its own, as openstack's --wait. */
int st_cli_server_wait(struct st_cli_ctx *ctx, const char *id, const char *name, const char *verb,
                       bool until_gone, json_t **ret, struct st_err **err);
