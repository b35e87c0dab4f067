/* What the network commands (network, subnet, port, router, floating ip,
 * security group [rule]) and apply's VPC share: the openstacksdk lookups
 * of the Neutron resources, the calls (POST/PUT with the resource's
 * wrapper key), the skeletons of create, show, set and list, list queries
 * as the SDK spells them, the SDK's error texts, and osc-lib's parsers for
 * "key=value,key=value" options; neutron_view.h has the
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

/* The list of a kind filtered on one field (GET <list>?key=value). */
int st_cli_neutron_list_where(struct st_cli_ctx *ctx, const struct st_cli_kind *kind,
                              const char *key, const char *value, json_t **ret,
                              struct st_err **err);
/* A router's interfaces: its ports but the gateway's (a new list). */
int st_cli_neutron_router_ports(struct st_cli_ctx *ctx, const json_t *router, json_t **ret,
                                struct st_err **err);
/* PUT /routers/<id>/<action> {"<key>": id}: "add_router_interface" or
 * "remove_router_interface" of a subnet ("subnet_id") or port ("port_id"). */
int st_cli_neutron_router_interface(struct st_cli_ctx *ctx, const json_t *router,
                                    const char *action, const char *key, const char *id,
                                    struct st_err **err);

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
/* key=<value of --option>, when given. */
void st_cli_neutron_query_option(struct st_cli_ctx *ctx, struct st_cli_neutron_query *q,
                                 const char *key, const char *option);
/* key=True for --<on>, key=False for --<off>. */
void st_cli_neutron_query_flag_pair(struct st_cli_ctx *ctx, struct st_cli_neutron_query *q,
                                    const char *key, const char *on, const char *off);
/* key=<ID of --option's object>, when given. */
int st_cli_neutron_query_id(struct st_cli_ctx *ctx, struct st_cli_neutron_query *q, const char *key,
                            const char *option, const struct st_cli_kind *kind,
                            struct st_err **err);
/* project_id=<ID of --project>, when given. */
int st_cli_neutron_query_project(struct st_cli_ctx *ctx, struct st_cli_neutron_query *q,
                                 struct st_err **err);

/* ---- the commands' skeletons ---- */

enum st_cli_neutron_flags {
    /* failures as "Error while executing command: ..." (st_cli_neutron_sdk_error) */
    ST_CLI_NEUTRON_SDK_ERRORS = 1 << 0,
    /* set: PUT even when no option asks for a change (security group set) */
    ST_CLI_NEUTRON_SEND_EMPTY = 1 << 1,
};

/* <noun> create's end: POST attrs, print the new object under fields. */
int st_cli_neutron_create_show(struct st_cli_ctx *ctx, const struct st_cli_kind *kind,
                               const json_t *attrs, const struct st_cli_nfield *fields,
                               unsigned flags, struct st_err **err);
/* <noun> show: the object named by the first positional under fields. */
int st_cli_neutron_run_show(struct st_cli_ctx *ctx, const struct st_cli_kind *kind,
                            const struct st_cli_nfield *fields, unsigned flags,
                            struct st_err **err);
/* Fills attrs for a set of obj: 0, or what run returns (a usage error's
 * exit status, a negative errno). */
typedef int st_cli_neutron_attrs_fn(struct st_cli_ctx *ctx, const json_t *obj, json_t *attrs,
                                    void *data, struct st_err **err);
/* <noun> set|unset: the object named by the first positional, its changes
 * from fill, one PUT; nothing to change sends nothing, as openstack does
 * (unless ST_CLI_NEUTRON_SEND_EMPTY). */
int st_cli_neutron_run_set(struct st_cli_ctx *ctx, const struct st_cli_kind *kind,
                           st_cli_neutron_attrs_fn *fill, void *data, unsigned flags,
                           struct st_err **err);
/* <noun> list's end: GET the list with q's query (q is cleared), print
 * its first n columns. */
int st_cli_neutron_list_print(struct st_cli_ctx *ctx, const struct st_cli_kind *kind,
                              struct st_cli_neutron_query *q, const struct st_cli_nfield *fields,
                              size_t n, struct st_err **err);

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
/* Sets attrs[key] to the values of the repeatable --<option> as a list
 * when given; returns that list (borrowed), or NULL. */
json_t *st_cli_neutron_strings_option(struct st_cli_ctx *ctx, json_t *attrs, const char *key,
                                      const char *option);
/* Sets attrs[key] to the ID of --<option>'s object when given. */
int st_cli_neutron_id_option(struct st_cli_ctx *ctx, json_t *attrs, const char *key,
                             const char *option, const struct st_cli_kind *kind,
                             struct st_err **err);
/* The ID of --project (within --project-domain) as openstackclient finds
 * it, or NULL (and 0) when --project is absent. */
int st_cli_neutron_project_id(struct st_cli_ctx *ctx, char **ret, struct st_err **err);
/* Sets attrs["project_id"] to the ID of --project when given. */
int st_cli_neutron_project_attr(struct st_cli_ctx *ctx, json_t *attrs, struct st_err **err);
/* --fixed-ip's parsed specs ({"subnet": name or ID, "ip-address": ip}) as
 * the API's [{"subnet_id", "ip_address"}]. A port keeps an address given
 * empty ("ip-address" in spec), a router's gateway drops it (Python's
 * spec.get("ip-address")): keep_empty_address says which. */
int st_cli_neutron_fixed_ips(struct st_cli_ctx *ctx, const json_t *specs, bool keep_empty_address,
                             json_t **ret, struct st_err **err);
/* --host-route / --route's "gateway" as the API's "nexthop", in place. */
void st_cli_neutron_routes_to_api(json_t *routes);
/* s in lower case (ASCII, as Python's str.lower() for these options), or
 * NULL for NULL; the caller frees it. */
char *st_cli_neutron_lower(const char *s);

/* A table of one positional, for the command tables. */
#define ST_CLI_NEUTRON_ARG(metavar, help, flags)                                                   \
    ((const struct st_cli_arg[]){{metavar, help, flags}, {NULL, NULL, 0}})

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
