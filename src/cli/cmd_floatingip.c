/* Neutron floating IPs: the openstack CLI's `floating ip create|list|show|
 * set|unset|delete` (openstackclient network/v2/floating_ip.py over
 * openstacksdk). A floating IP is an address of an external network that
 * the router of a port's subnet translates to the port's fixed IP (DNAT
 * in, SNAT out): how a server on a private subnet is reached from outside.
 * It is found by ID or by its address, which the SDK calls its name. */
#include "cmd_floatingip.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "lib/cleanup.h"
#include "lib/json.h"
#include "neutron.h"

/* create prints the SDK's values as they are (port_details as a Python
 * dict); show formats port_details with format_dict (see show_fields). */
#define FIP_FIELDS(port_details_fmt)                                                               \
    {"created_at", "created_at", ST_CLI_NFMT_NONE},                                                \
        {"description", "description", ST_CLI_NFMT_NONE},                                          \
        {"dns_domain", "dns_domain", ST_CLI_NFMT_NONE},                                            \
        {"dns_name", "dns_name", ST_CLI_NFMT_NONE},                                                \
        {"fixed_ip_address", "fixed_ip_address", ST_CLI_NFMT_NONE},                                \
        {"floating_ip_address", "floating_ip_address", ST_CLI_NFMT_NONE},                          \
        {"floating_network_id", "floating_network_id", ST_CLI_NFMT_NONE},                          \
        {"id", "id", ST_CLI_NFMT_NONE}, {"name", "floating_ip_address", ST_CLI_NFMT_NONE},         \
        {"port_details", "port_details", port_details_fmt},                                        \
        {"port_id", "port_id", ST_CLI_NFMT_NONE}, {"project_id", "project_id", ST_CLI_NFMT_NONE},  \
        {"qos_policy_id", "qos_policy_id", ST_CLI_NFMT_NONE},                                      \
        {"revision_number", "revision_number", ST_CLI_NFMT_NONE},                                  \
        {"router_id", "router_id", ST_CLI_NFMT_NONE}, {"status", "status", ST_CLI_NFMT_NONE},      \
        {"subnet_id", "subnet_id", ST_CLI_NFMT_NONE}, {"tags", "tags", ST_CLI_NFMT_NONE},          \
        {"updated_at", "updated_at", ST_CLI_NFMT_NONE},                                            \
    {                                                                                              \
        NULL, NULL, 0                                                                              \
    }

static const struct st_cli_nfield create_fields[] = {FIP_FIELDS(ST_CLI_NFMT_NONE)};
static const struct st_cli_nfield show_fields[] = {FIP_FIELDS(ST_CLI_NFMT_DICT_TEXT)};

/* The first six are the default list; --long adds the rest. */
static const struct st_cli_nfield list_fields[] = {
    {"ID", "id", ST_CLI_NFMT_NONE},
    {"Floating IP Address", "floating_ip_address", ST_CLI_NFMT_NONE},
    {"Fixed IP Address", "fixed_ip_address", ST_CLI_NFMT_NONE},
    {"Port", "port_id", ST_CLI_NFMT_NONE},
    {"Floating Network", "floating_network_id", ST_CLI_NFMT_NONE},
    {"Project", "project_id", ST_CLI_NFMT_NONE},
    {"Router", "router_id", ST_CLI_NFMT_NONE},
    {"Status", "status", ST_CLI_NFMT_NONE},
    {"Description", "description", ST_CLI_NFMT_NONE},
    {"Tags", "tags", ST_CLI_NFMT_NONE},
    {"DNS Name", "dns_name", ST_CLI_NFMT_NONE},
    {"DNS Domain", "dns_domain", ST_CLI_NFMT_NONE},
};

/* attrs[key] = the ID of --<option>'s object, when given. */
static int id_option(struct st_cli_ctx *ctx, json_t *attrs, const char *key, const char *option,
                     const struct st_cli_kind *kind, struct st_err **err)
{
    const char *value = st_cli_args_get(&ctx->args, option);
    if (!value)
        return 0;
    st_autofree char *id = NULL;
    int r = st_cli_neutron_find_id(ctx, kind, value, &id, err);
    if (r == 0)
        json_object_set_new(attrs, key, json_string(id));
    return r;
}

static int run_create(struct st_cli_ctx *ctx, struct st_err **err)
{
    st_autoptr(json_t) attrs = json_object();
    st_autofree char *network_id = NULL;
    int r = st_cli_neutron_find_id(ctx, &st_cli_kind_network, ctx->args.pos[0], &network_id, err);
    if (r < 0)
        return st_cli_neutron_sdk_error(err, r);
    json_object_set_new(attrs, "floating_network_id", json_string(network_id));
    if ((r = id_option(ctx, attrs, "subnet_id", "subnet", &st_cli_kind_subnet, err)) < 0 ||
        (r = id_option(ctx, attrs, "port_id", "port", &st_cli_kind_port, err)) < 0)
        return st_cli_neutron_sdk_error(err, r);
    st_cli_neutron_string_option(ctx, attrs, "floating_ip_address", "floating-ip-address");
    st_cli_neutron_string_option(ctx, attrs, "fixed_ip_address", "fixed-ip-address");
    st_cli_neutron_string_option(ctx, attrs, "description", "description");
    st_autofree char *project = NULL;
    if ((r = st_cli_neutron_project_id(ctx, &project, err)) < 0)
        return r;
    if (project)
        json_object_set_new(attrs, "project_id", json_string(project));
    st_cli_neutron_string_option(ctx, attrs, "dns_domain", "dns-domain");
    st_cli_neutron_string_option(ctx, attrs, "dns_name", "dns-name");
    st_autoptr(json_t) fip = NULL;
    r = st_cli_neutron_create(ctx, &st_cli_kind_floatingip, attrs, &fip, err);
    if (r < 0)
        return st_cli_neutron_sdk_error(err, r);
    return st_cli_neutron_show(ctx, create_fields, fip, err);
}

static int run_list(struct st_cli_ctx *ctx, struct st_err **err)
{
    const struct st_cli_args *a = &ctx->args;
    st_autoptr(json_t) q = json_object();
    st_autofree char *project = NULL;
    int r;
    if ((r = id_option(ctx, q, "floating_network_id", "network", &st_cli_kind_network, err)) < 0 ||
        (r = id_option(ctx, q, "port_id", "port", &st_cli_kind_port, err)) < 0)
        return r;
    st_cli_neutron_string_option(ctx, q, "fixed_ip_address", "fixed-ip-address");
    st_cli_neutron_string_option(ctx, q, "floating_ip_address", "floating-ip-address");
    st_cli_neutron_string_option(ctx, q, "status", "status");
    if ((r = st_cli_neutron_project_id(ctx, &project, err)) < 0)
        return r;
    if (project)
        json_object_set_new(q, "project_id", json_string(project));
    if ((r = id_option(ctx, q, "router_id", "router", &st_cli_kind_router, err)) < 0)
        return r;
    struct st_cli_neutron_query query = {0};
    const char *key;
    json_t *v;
    json_object_foreach(q, key, v) st_cli_neutron_query_add(&query, key, json_string_value(v));
    st_autoptr(json_t) fips = NULL;
    r = st_cli_neutron_get_list(ctx, &st_cli_kind_floatingip, query.text, &fips, err);
    st_cli_neutron_query_clear(&query);
    if (r < 0)
        return r;
    return st_cli_neutron_list(
        ctx, list_fields, st_cli_args_flag(a, "long") ? ST_ARRAY_SIZE(list_fields) : 6, fips, err);
}

static int run_show(struct st_cli_ctx *ctx, struct st_err **err)
{
    st_autoptr(json_t) fip = NULL;
    int r = st_cli_find(ctx, &st_cli_kind_floatingip, ctx->args.pos[0], &fip, err);
    if (r < 0)
        return st_cli_neutron_sdk_error(err, r);
    return st_cli_neutron_show(ctx, show_fields, fip, err);
}

static int run_set(struct st_cli_ctx *ctx, struct st_err **err)
{
    st_autoptr(json_t) fip = NULL;
    int r = st_cli_find(ctx, &st_cli_kind_floatingip, ctx->args.pos[0], &fip, err);
    if (r < 0)
        return r;
    st_autoptr(json_t) attrs = json_object();
    if ((r = id_option(ctx, attrs, "port_id", "port", &st_cli_kind_port, err)) < 0)
        return r;
    st_cli_neutron_string_option(ctx, attrs, "fixed_ip_address", "fixed-ip-address");
    st_cli_neutron_string_option(ctx, attrs, "description", "description");
    if (json_object_size(attrs) == 0)
        return 0;
    return st_cli_neutron_update(ctx, &st_cli_kind_floatingip, fip, attrs, NULL, err);
}

static int run_unset(struct st_cli_ctx *ctx, struct st_err **err)
{
    st_autoptr(json_t) fip = NULL;
    int r = st_cli_find(ctx, &st_cli_kind_floatingip, ctx->args.pos[0], &fip, err);
    if (r < 0)
        return r;
    if (!st_cli_args_flag(&ctx->args, "port"))
        return 0;
    st_autoptr(json_t) attrs = json_pack("{s:n}", "port_id");
    return st_cli_neutron_update(ctx, &st_cli_kind_floatingip, fip, attrs, NULL, err);
}

static int run_delete(struct st_cli_ctx *ctx, struct st_err **err)
{
    return st_cli_neutron_delete_each(ctx, &st_cli_kind_floatingip, "floating_ip", err);
}

/* ---- the table ---- */

static const char *const statuses[] = {"ACTIVE", "DOWN", NULL};

static const struct st_cli_option create_opts[] = {
    ST_CLI_VALUE("subnet", "<subnet>",
                 "Subnet on which you want to create the floating IP (name or ID)"),
    ST_CLI_VALUE("port", "<port>", "Port to be associated with the floating IP (name or ID)"),
    ST_CLI_VALUE("floating-ip-address", "<ip-address>", "Floating IP address"),
    ST_CLI_VALUE("fixed-ip-address", "<ip-address>", "Fixed IP address mapped to the floating IP"),
    ST_CLI_VALUE("description", "<description>", "Set floating IP description"),
    ST_CLI_NEUTRON_PROJECT_OPTIONS("Owner's project (name or ID)"),
    ST_CLI_VALUE("dns-domain", "<dns-domain>", "Set DNS domain for this floating IP"),
    ST_CLI_VALUE("dns-name", "<dns-name>", "Set DNS name for this floating IP"),
    ST_CLI_OPTIONS_END,
};

static const struct st_cli_option list_opts[] = {
    ST_CLI_VALUE("network", "<network>",
                 "List floating IP(s) according to given network (name or ID)"),
    ST_CLI_VALUE("port", "<port>", "List floating IP(s) according to given port (name or ID)"),
    ST_CLI_VALUE("fixed-ip-address", "<ip-address>",
                 "List floating IP(s) according to given fixed IP address"),
    ST_CLI_VALUE("floating-ip-address", "<ip-address>",
                 "List floating IP(s) according to given floating IP address"),
    ST_CLI_FLAG("long", "List additional fields in output", 0),
    {"status", 0, ST_CLI_OPT_VALUE, "<status>",
     "List floating IP(s) according to given status ('ACTIVE', 'DOWN')", statuses, false, 0},
    ST_CLI_NEUTRON_PROJECT_OPTIONS("List floating IP(s) according to given project (name or ID)"),
    ST_CLI_VALUE("router", "<router>",
                 "List floating IP(s) according to given router (name or ID)"),
    ST_CLI_OPTIONS_END,
};

static const struct st_cli_option set_opts[] = {
    ST_CLI_VALUE("port", "<port>", "Associate the floating IP with port (name or ID)"),
    ST_CLI_VALUE("fixed-ip-address", "<ip-address>",
                 "Fixed IP of the port (required only if port has multiple IPs)"),
    ST_CLI_VALUE("description", "<description>", "Set floating IP description"),
    ST_CLI_OPTIONS_END,
};

static const struct st_cli_option unset_opts[] = {
    ST_CLI_FLAG("port", "Disassociate any port associated with the floating IP", 0),
    ST_CLI_OPTIONS_END,
};

static const struct st_cli_arg create_args[] = {
    {"<network>", "Network to allocate floating IP from (name or ID)", 0}, {NULL, NULL, 0}};
static const struct st_cli_arg show_args[] = {
    {"<floating-ip>", "Floating IP to display (IP address or ID)", 0}, {NULL, NULL, 0}};
static const struct st_cli_arg set_args[] = {
    {"<floating-ip>", "Floating IP to modify (IP address or ID)", 0}, {NULL, NULL, 0}};
static const struct st_cli_arg unset_args[] = {
    {"<floating-ip>", "Floating IP to disassociate (IP address or ID)", 0}, {NULL, NULL, 0}};
static const struct st_cli_arg delete_args[] = {
    {"<floating-ip>", "Floating IP(s) to delete (IP address or ID)", ST_CLI_ARG_MULTI},
    {NULL, NULL, 0}};

const struct st_cli_command st_cli_floatingip_commands[] = {
    {"floating ip create", "Create floating IP", NULL, create_opts, create_args,
     ST_CLI_NEUTRON_SHOW, run_create},
    {"floating ip delete", "Delete floating IP(s)", NULL, NULL, delete_args, ST_CLI_NEUTRON_CMD,
     run_delete},
    {"floating ip list", "List floating IP(s)", NULL, list_opts, NULL, ST_CLI_NEUTRON_LIST,
     run_list},
    {"floating ip set", "Set floating IP Properties", NULL, set_opts, set_args, ST_CLI_NEUTRON_CMD,
     run_set},
    {"floating ip show", "Display floating IP details", NULL, NULL, show_args, ST_CLI_NEUTRON_SHOW,
     run_show},
    {"floating ip unset", "Unset floating IP Properties", NULL, unset_opts, unset_args,
     ST_CLI_NEUTRON_CMD, run_unset},
    {NULL, NULL, NULL, NULL, NULL, 0, NULL},
};
