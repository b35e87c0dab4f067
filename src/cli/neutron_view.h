/* How the network commands print Neutron's objects: openstackclient's
 * columns (the SDK's attribute names, "binding_host_id" for the server's
 * "binding:host_id") and formatters ("UP" for admin_state_up, "a, b" for
 * lists, "start-end" for allocation pools), as cells for output.c, so that
 * a table, -f json and -f value print what `openstack` prints. */
#pragma once

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

#include "command.h"
#include "lib/err.h"

/* The formatters of openstackclient's network commands. */
enum st_cli_nfmt {
    ST_CLI_NFMT_NONE,            /* the value as the server gave it */
    ST_CLI_NFMT_LIST,            /* ListColumn: "a, b" (sorted) */
    ST_CLI_NFMT_LIST_DICT,       /* ListDictColumn: one "k='v', ..." line per object */
    ST_CLI_NFMT_DICT,            /* DictColumn: "k='v', ..." */
    ST_CLI_NFMT_ADMIN_STATE,     /* AdminStateColumn: "UP" | "DOWN" */
    ST_CLI_NFMT_ROUTER_EXTERNAL, /* RouterExternalColumn: "External" | "Internal" */
    ST_CLI_NFMT_POOLS,           /* AllocationPoolsColumn: "start-end,start-end" */
    ST_CLI_NFMT_ROUTES,          /* HostRoutesColumn / RoutesColumn: nexthop shown as gateway */
    ST_CLI_NFMT_JSON,            /* RouterInfoColumn: json.dumps() of the value */
    ST_CLI_NFMT_SG_RULES,        /* NetworkSecurityGroupRulesColumn */
    ST_CLI_NFMT_DICT_TEXT,       /* utils.format_dict as a plain function: text in every format */
};

/* One column of a show or list: the name the user sees, the server's
 * field it comes from (the SDK's renames: "binding_host_id" from
 * "binding:host_id") and its formatter. Tables end with a NULL column. */
struct st_cli_nfield {
    const char *column;
    const char *key;
    enum st_cli_nfmt fmt;
};

/* A cell of value (borrowed; NULL = absent = None) under fmt. */
json_t *st_cli_neutron_cell(enum st_cli_nfmt fmt, const json_t *value);
/* The object a show prints: every field of the table, None when absent. */
json_t *st_cli_neutron_view(const struct st_cli_nfield *fields, const json_t *obj);
/* Prints obj under the fields (a show). */
int st_cli_neutron_show(struct st_cli_ctx *ctx, const struct st_cli_nfield *fields,
                        const json_t *obj, struct st_err **err);
/* Prints the server's objects under the first n columns of fields (a list). */
int st_cli_neutron_list(struct st_cli_ctx *ctx, const struct st_cli_nfield *fields, size_t n,
                        const json_t *objects, struct st_err **err);

/* Python's truth of a JSON value: null, false, 0, "", [] and {} are false. */
bool st_cli_neutron_truthy(const json_t *v);
