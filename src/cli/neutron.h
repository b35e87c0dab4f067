/* What the network commands (network, subnet, port, router, floating ip,
 * security group [rule]) share: the openstacksdk lookups of the Neutron
 * resources, the calls (POST/PUT with the resource's wrapper key), list
 * queries as the SDK spells them, the SDK's error texts, and osc-lib's
 * parsers for "key=value,key=value" options; neutron_view.h has the
 * columns and formatters, so that what a command prints is what
 * `openstack` prints for the same server answer. */
#pragma once

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

#include "command.h"
#include "lib/err.h"
#include "neutron_view.h"
#include "services.h"

/* openstacksdk lookups (GET /<coll>/<value>, then the list matched on ID or
 * name). st_cli_kind_network and st_cli_kind_security_group are in
 * services.h; a floating IP's name is its address, and neither it nor a
 * rule has a name filter, so their lists come whole. */
extern const struct st_cli_kind st_cli_kind_subnet;
extern const struct st_cli_kind st_cli_kind_port;
extern const struct st_cli_kind st_cli_kind_router;
extern const struct st_cli_kind st_cli_kind_floatingip;
extern const struct st_cli_kind st_cli_kind_security_group_rule;

/* ---- calls ---- */

/* One call to Neutron: path ("/networks?name=x") after the network URL
 * and /v2.0, JSON in and out (*ret NULL for an empty answer; ret may be
 * NULL). An HTTP error fails with openstacksdk's text: "ConflictException:
 * 409: Client Error for url: <url>, <the server's message>". */
int st_cli_neutron_call(struct st_cli_ctx *ctx, const char *method, const char *path,
                        const json_t *body, json_t **ret, struct st_err **err);

/* POST <collection> {"<key>": attrs}: the new object (a new reference). */
int st_cli_neutron_create(struct st_cli_ctx *ctx, const struct st_cli_kind *kind,
                          const json_t *attrs, json_t **ret, struct st_err **err);
/* PUT <collection>/<id of obj> {"<key>": attrs}; ret (optional) gets the
 * updated object. */
int st_cli_neutron_update(struct st_cli_ctx *ctx, const struct st_cli_kind *kind, const json_t *obj,
                          const json_t *attrs, json_t **ret, struct st_err **err);
/* GET <collection>[?query]: the list (a new reference). */
int st_cli_neutron_get_list(struct st_cli_ctx *ctx, const struct st_cli_kind *kind,
                            const char *query, json_t **ret, struct st_err **err);
/* The ID of the object whose ID or name is value (st_cli_find), in a new
 * string. */
int st_cli_neutron_find_id(struct st_cli_ctx *ctx, const struct st_cli_kind *kind,
                           const char *value, char **ret, struct st_err **err);
/* Deletes every positional of the command, found by name or ID, going on
 * after a failure: "Failed to delete <noun> with name or ID 'x': ..." per
 * failure, then "1 of 2 <noun>s failed to delete.". */
int st_cli_neutron_delete_each(struct st_cli_ctx *ctx, const struct st_cli_kind *kind,
                               const char *noun, struct st_err **err);

/* openstackclient's network-or-compute show commands (network, floating
 * ip, security group and rule create and show) report the SDK's failures
 * as "Error while executing command: <message>"; returns r. */
int st_cli_neutron_sdk_error(struct st_err **err, int r);

/* ---- queries ---- */

/* A list query in the making: "key=value&..." with both escaped, as
 * python-requests encodes the SDK's parameters. */
struct st_cli_neutron_query {
    char *text; /* NULL while empty */
};
void st_cli_neutron_query_add(struct st_cli_neutron_query *q, const char *key, const char *value);
/* Python's str() of a boolean, as the SDK sends it: "True" | "False". */
void st_cli_neutron_query_bool(struct st_cli_neutron_query *q, const char *key, bool value);
void st_cli_neutron_query_clear(struct st_cli_neutron_query *q);

/* ---- options ---- */

/* osc-lib's MultiKeyValueAction: every --<option> "k=v,k2=v2" as an object,
 * its keys checked against required and optional (NULL-terminated; both
 * NULL: any key). *ret is an array (empty when the option is absent).
 * -EINVAL with osc-lib's message ("Missing required keys end.\nRequired
 * keys are: start, end"), which openstack prints bare and exits 1 on. */
int st_cli_neutron_multi_kv(struct st_cli_ctx *ctx, const char *option, const char *const *required,
                            const char *const *optional, json_t **ret, struct st_err **err);
/* Sets attrs[key] to true for --<on>, false for --<off>, else leaves it. */
void st_cli_neutron_flag_pair(struct st_cli_ctx *ctx, json_t *attrs, const char *key,
                              const char *on, const char *off);
/* Sets attrs[key] to the value of --<option> when given. */
void st_cli_neutron_string_option(struct st_cli_ctx *ctx, json_t *attrs, const char *key,
                                  const char *option);
/* The ID of --project (within --project-domain) as openstackclient finds
 * it, or NULL (and 0) when --project is absent. */
int st_cli_neutron_project_id(struct st_cli_ctx *ctx, char **ret, struct st_err **err);

/* --project / --project-domain, as identity_common adds them. */
#define ST_CLI_NEUTRON_PROJECT_OPTIONS(what)                                                       \
    ST_CLI_VALUE("project", "<project>", what),                                                    \
        ST_CLI_VALUE("project-domain", "<project-domain>",                                         \
                     "Domain the project belongs to (name or ID). This can be used in case "       \
                     "collisions between project names exist.")

/* The flags every network command carries: a login, and the server's
 * values as Python's str() where openstackclient has no formatter. */
#define ST_CLI_NEUTRON_SHOW (ST_CLI_CMD_SHOW | ST_CLI_CMD_AUTH | ST_CLI_CMD_PY_STR)
#define ST_CLI_NEUTRON_LIST (ST_CLI_CMD_LIST | ST_CLI_CMD_AUTH | ST_CLI_CMD_PY_STR)
#define ST_CLI_NEUTRON_CMD  (ST_CLI_CMD_AUTH | ST_CLI_CMD_PY_STR)
