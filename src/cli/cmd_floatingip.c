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

static int run_create(struct st_cli_ctx *ctx, struct st_err **err)
{
    st_autoptr(json_t) attrs = json_object();
    st_autofree char *network_id = NULL;
    int r = st_cli_neutron_find_id(ctx, &st_cli_kind_network, ctx->args.pos[0], &network_id, err);
    if (r < 0)
        return st_cli_neutron_sdk_error(err, r);
    json_object_set_new(attrs, "floating_network_id", json_string(network_id));
    if ((r = st_cli_neutron_id_option(ctx, attrs, "subnet_id", "subnet", &st_cli_kind_subnet,
                                      err)) < 0 ||
        (r = st_cli_neutron_id_option(ctx, attrs, "port_id", "port", &st_cli_kind_port, err)) < 0)
        return st_cli_neutron_sdk_error(err, r);
    st_cli_neutron_string_option(ctx, attrs, "floating_ip_address", "floating-ip-address");
    st_cli_neutron_string_option(ctx, attrs, "fixed_ip_address", "fixed-ip-address");
    st_cli_neutron_string_option(ctx, attrs, "description", "description");
    if ((r = st_cli_neutron_project_attr(ctx, attrs, err)) < 0)
        return r;
    st_cli_neutron_string_option(ctx, attrs, "dns_domain", "dns-domain");
    st_cli_neutron_string_option(ctx, attrs, "dns_name", "dns-name");
    return st_cli_neutron_create_show(ctx, &st_cli_kind_floatingip, attrs, create_fields,
                                      ST_CLI_NEUTRON_SDK_ERRORS, err);
}

static int run_list(struct st_cli_ctx *ctx, struct st_err **err)
{
    struct st_cli_neutron_query q = {0};
    int r;
    if ((r = st_cli_neutron_query_id(ctx, &q, "floating_network_id", "network",
                                     &st_cli_kind_network, err)) < 0 ||
        (r = st_cli_neutron_query_id(ctx, &q, "port_id", "port", &st_cli_kind_port, err)) < 0)
        goto out;
    st_cli_neutron_query_option(ctx, &q, "fixed_ip_address", "fixed-ip-address");
    st_cli_neutron_query_option(ctx, &q, "floating_ip_address", "floating-ip-address");
    st_cli_neutron_query_option(ctx, &q, "status", "status");
    if ((r = st_cli_neutron_query_project(ctx, &q, err)) < 0 ||
        (r = st_cli_neutron_query_id(ctx, &q, "router_id", "router", &st_cli_kind_router, err)) < 0)
        goto out;
    return st_cli_neutron_list_print(
        ctx, &st_cli_kind_floatingip, &q, list_fields,
        st_cli_args_flag(&ctx->args, "long") ? ST_ARRAY_SIZE(list_fields) : 6, err);
out:
    st_cli_neutron_query_clear(&q);
    return r;
}

static int run_show(struct st_cli_ctx *ctx, struct st_err **err)
{
    return st_cli_neutron_run_show(ctx, &st_cli_kind_floatingip, show_fields,
                                   ST_CLI_NEUTRON_SDK_ERRORS, err);
}

static int set_attrs(struct st_cli_ctx *ctx, const json_t *fip, json_t *attrs, void *data,
                     struct st_err **err)
{
    (void)fip;
    (void)data;
    int r = st_cli_neutron_id_option(ctx, attrs, "port_id", "port", &st_cli_kind_port, err);
    if (r < 0)
        return r;
    st_cli_neutron_string_option(ctx, attrs, "fixed_ip_address", "fixed-ip-address");
    st_cli_neutron_string_option(ctx, attrs, "description", "description");
    return 0;
}

static int run_set(struct st_cli_ctx *ctx, struct st_err **err)
{
    return st_cli_neutron_run_set(ctx, &st_cli_kind_floatingip, set_attrs, NULL, 0, err);
}

/* --port: port_id null; nothing else to unset */
static int unset_attrs(struct st_cli_ctx *ctx, const json_t *fip, json_t *attrs, void *data,
                       struct st_err **err)
{
    (void)fip;
    (void)data;
    (void)err;
    if (st_cli_args_flag(&ctx->args, "port"))
        json_object_set_new(attrs, "port_id", json_null());
    return 0;
}

static int run_unset(struct st_cli_ctx *ctx, struct st_err **err)
{
    return st_cli_neutron_run_set(ctx, &st_cli_kind_floatingip, unset_attrs, NULL, 0, err);
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

const struct st_cli_command st_cli_floatingip_commands[] = {
    {"floating ip create", "Create floating IP", NULL, create_opts,
     ST_CLI_NEUTRON_ARG("<network>", "Network to allocate floating IP from (name or ID)", 0),
     ST_CLI_NEUTRON_SHOW, run_create},
    {"floating ip delete", "Delete floating IP(s)", NULL, NULL,
     ST_CLI_NEUTRON_ARG("<floating-ip>", "Floating IP(s) to delete (IP address or ID)",
                        ST_CLI_ARG_MULTI),
     ST_CLI_NEUTRON_CMD, run_delete},
    {"floating ip list", "List floating IP(s)", NULL, list_opts, NULL, ST_CLI_NEUTRON_LIST,
     run_list},
    {"floating ip set", "Set floating IP Properties", NULL, set_opts,
     ST_CLI_NEUTRON_ARG("<floating-ip>", "Floating IP to modify (IP address or ID)", 0),
     ST_CLI_NEUTRON_CMD, run_set},
    {"floating ip show", "Display floating IP details", NULL, NULL,
     ST_CLI_NEUTRON_ARG("<floating-ip>", "Floating IP to display (IP address or ID)", 0),
     ST_CLI_NEUTRON_SHOW, run_show},
    {"floating ip unset", "Unset floating IP Properties", NULL, unset_opts,
     ST_CLI_NEUTRON_ARG("<floating-ip>", "Floating IP to disassociate (IP address or ID)", 0),
     ST_CLI_NEUTRON_CMD, run_unset},
    {NULL, NULL, NULL, NULL, NULL, 0, NULL},
};
