/* Neutron routers: the openstack CLI's `router create|list|show|set|unset|
 * delete` and `router add|remove subnet|port` (openstackclient
 * network/v2/router.py over openstacksdk). A router joins subnets (an
 * interface is a port holding the subnet's gateway IP) and takes its
 * gateway on an external network, where it source-NATs (SNAT) what leaves
 * the subnets unless --disable-snat. */
#include "cmd_router.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "lib/cleanup.h"
#include "lib/json.h"
#include "neutron.h"
#include "output.h"

enum { GROUP_STATE = 1, GROUP_DISTRIBUTED, GROUP_HA, GROUP_SNAT };

/* The SDK Router's attributes under openstackclient's names; "ha" and
 * "distributed" join them when the server says (see with_extras). */
static const struct st_cli_nfield router_fields[] = {
    {"admin_state_up", "admin_state_up", ST_CLI_NFMT_ADMIN_STATE},
    {"availability_zone_hints", "availability_zone_hints", ST_CLI_NFMT_LIST},
    {"availability_zones", "availability_zones", ST_CLI_NFMT_LIST},
    {"created_at", "created_at", ST_CLI_NFMT_NONE},
    {"description", "description", ST_CLI_NFMT_NONE},
    {"enable_ndp_proxy", "enable_ndp_proxy", ST_CLI_NFMT_NONE},
    {"external_gateway_info", "external_gateway_info", ST_CLI_NFMT_JSON},
    {"flavor_id", "flavor_id", ST_CLI_NFMT_NONE},
    {"id", "id", ST_CLI_NFMT_NONE},
    {"name", "name", ST_CLI_NFMT_NONE},
    {"project_id", "project_id", ST_CLI_NFMT_NONE},
    {"revision_number", "revision_number", ST_CLI_NFMT_NONE},
    {"routes", "routes", ST_CLI_NFMT_ROUTES},
    {"status", "status", ST_CLI_NFMT_NONE},
    {"tags", "tags", ST_CLI_NFMT_LIST},
    {"tenant_id", "tenant_id", ST_CLI_NFMT_NONE},
    {"updated_at", "updated_at", ST_CLI_NFMT_NONE},
    {NULL, NULL, 0},
};

static int show_router(struct st_cli_ctx *ctx, const json_t *router, json_t *interfaces,
                       struct st_err **err)
{
    st_autoptr(json_t) view = st_cli_neutron_view(router_fields, router);
    static const char *const extras[] = {"distributed", "ha"};
    for (size_t i = 0; i < ST_ARRAY_SIZE(extras); i++) {
        json_t *v = json_object_get(router, extras[i]);
        if (v && !json_is_null(v))
            json_object_set(view, extras[i], v);
    }
    if (interfaces)
        json_object_set_new(view, "interfaces_info",
                            st_cli_neutron_cell(ST_CLI_NFMT_JSON, interfaces));
    return st_cli_ctx_show(ctx, view, err);
}

/* --external-gateway's external_gateway_info; 0 or -errno. */
static int gateway_info(struct st_cli_ctx *ctx, json_t *attrs, struct st_err **err)
{
    const struct st_cli_args *a = &ctx->args;
    const char *network = st_cli_args_get(a, "external-gateway");
    if (!network)
        return 0;
    static const char *const ip_keys[] = {"subnet", "ip-address", NULL};
    st_autoptr(json_t) specs = NULL;
    int rc = st_cli_neutron_multi_kv(ctx, "fixed-ip", NULL, ip_keys, &specs, err);
    if (rc != 0)
        return rc;
    st_autofree char *network_id = NULL;
    int r = st_cli_neutron_find_id(ctx, &st_cli_kind_network, network, &network_id, err);
    if (r < 0)
        return r;
    json_t *info = json_pack("{s:s}", "network_id", network_id);
    json_object_set_new(attrs, "external_gateway_info", info);
    st_cli_neutron_flag_pair(ctx, info, "enable_snat", "enable-snat", "disable-snat");
    if (json_array_size(specs) == 0)
        return 0;
    json_t *ips = NULL;
    r = st_cli_neutron_fixed_ips(ctx, specs, false, &ips, err);
    if (r == 0)
        json_object_set_new(info, "external_fixed_ips", ips);
    return r;
}

/* _get_attrs, in openstack's order; 0 or -errno. */
static int router_attrs(struct st_cli_ctx *ctx, json_t *attrs, const char *purpose,
                        struct st_err **err)
{
    const struct st_cli_args *a = &ctx->args;
    bool snat = st_cli_args_flag(a, "enable-snat") || st_cli_args_flag(a, "disable-snat") ||
                st_cli_args_flag(a, "fixed-ip");
    if (snat && !st_cli_args_get(a, "external-gateway"))
        return st_err_set(err, -EINVAL, "You must specify '--external-gateway' in order to %s",
                          purpose);
    st_cli_neutron_string_option(ctx, attrs, "name", "name");
    st_cli_neutron_flag_pair(ctx, attrs, "admin_state_up", "enable", "disable");
    st_cli_neutron_flag_pair(ctx, attrs, "distributed", "distributed", "centralized");
    st_cli_neutron_strings_option(ctx, attrs, "availability_zone_hints", "availability-zone-hint");
    st_cli_neutron_string_option(ctx, attrs, "description", "description");
    int r = st_cli_neutron_project_attr(ctx, attrs, err);
    if (r < 0)
        return r;
    r = gateway_info(ctx, attrs, err);
    if (r != 0)
        return r;
    st_cli_neutron_flag_pair(ctx, attrs, "ha", "ha", "no-ha");
    return 0;
}

static int run_create(struct st_cli_ctx *ctx, struct st_err **err)
{
    st_autoptr(json_t) attrs =
        json_pack("{s:s,s:b}", "name", ctx->args.pos[0], "admin_state_up", true);
    /* checked before the router exists: openstack creates it, then fails */
    int r = router_attrs(ctx, attrs, "specify SNAT or fixed-ip values", err);
    if (r != 0)
        return r;
    st_autoptr(json_t) router = NULL;
    r = st_cli_neutron_create(ctx, &st_cli_kind_router, attrs, &router, err);
    if (r < 0)
        return r;
    return show_router(ctx, router, NULL, err);
}

static int run_list(struct st_cli_ctx *ctx, struct st_err **err)
{
    const struct st_cli_args *a = &ctx->args;
    struct st_cli_neutron_query q = {0};
    st_cli_neutron_query_option(ctx, &q, "name", "name");
    st_cli_neutron_query_flag_pair(ctx, &q, "admin_state_up", "enable", "disable");
    st_autoptr(json_t) routers = NULL;
    int r = st_cli_neutron_query_project(ctx, &q, err);
    if (r == 0)
        r = st_cli_neutron_get_list(ctx, &st_cli_kind_router, q.text, &routers, err);
    st_cli_neutron_query_clear(&q);
    if (r < 0)
        return r;
    struct st_cli_nfield cols[16] = {
        {"ID", "id", ST_CLI_NFMT_NONE},
        {"Name", "name", ST_CLI_NFMT_NONE},
        {"Status", "status", ST_CLI_NFMT_NONE},
        {"State", "admin_state_up", ST_CLI_NFMT_ADMIN_STATE},
        {"Project", "project_id", ST_CLI_NFMT_NONE},
    };
    size_t n = 5;
    /* "Distributed" and "HA" appear once a router says, in that order */
    bool distributed = false, ha = false;
    size_t i;
    json_t *router;
    json_array_foreach(routers, i, router)
    {
        json_t *d = json_object_get(router, "distributed"), *h = json_object_get(router, "ha");
        if (d && !json_is_null(d) && !distributed) {
            distributed = true;
            cols[n++] = (struct st_cli_nfield){"Distributed", "distributed", ST_CLI_NFMT_NONE};
        }
        if (h && !json_is_null(h) && !ha) {
            ha = true;
            cols[n++] = (struct st_cli_nfield){"HA", "ha", ST_CLI_NFMT_NONE};
        }
    }
    if (st_cli_args_flag(a, "long")) {
        cols[n++] = (struct st_cli_nfield){"Routes", "routes", ST_CLI_NFMT_ROUTES};
        cols[n++] = (struct st_cli_nfield){"External gateway info", "external_gateway_info",
                                           ST_CLI_NFMT_JSON};
        /* availability zones only with the extension, as openstack asks */
        st_autoptr(json_t) ext = NULL;
        st_autoptr(st_err) e = NULL;
        if (st_cli_neutron_call(ctx, "GET", "/extensions/router_availability_zone", NULL, &ext,
                                &e) == 0)
            cols[n++] = (struct st_cli_nfield){"Availability zones", "availability_zones",
                                               ST_CLI_NFMT_LIST};
        cols[n++] = (struct st_cli_nfield){"Tags", "tags", ST_CLI_NFMT_LIST};
    }
    return st_cli_neutron_list(ctx, cols, n, routers, err);
}

static int run_show(struct st_cli_ctx *ctx, struct st_err **err)
{
    st_autoptr(json_t) router = NULL;
    int r = st_cli_find(ctx, &st_cli_kind_router, ctx->args.pos[0], &router, err);
    if (r < 0)
        return r;
    /* interfaces_info: the fixed IPs of its ports but the gateway's */
    st_autoptr(json_t) ports = NULL;
    r = st_cli_neutron_router_ports(ctx, router, &ports, err);
    if (r < 0)
        return r;
    st_autoptr(json_t) interfaces = json_array();
    size_t i, j;
    json_t *port, *ip;
    json_array_foreach(ports, i, port)
    {
        json_array_foreach(json_object_get(port, "fixed_ips"), j, ip)
        {
            json_t *ipa = json_object_get(ip, "ip_address"),
                   *sub = json_object_get(ip, "subnet_id");
            json_array_append_new(interfaces,
                                  json_pack("{s:O,s:O,s:O}", "port_id", json_object_get(port, "id"),
                                            "ip_address", ipa ? ipa : json_null(), "subnet_id",
                                            sub ? sub : json_null()));
        }
    }
    return show_router(ctx, router, interfaces, err);
}

/* --route destination=,gateway= as the API's {"destination", "nexthop"}. */
static int parse_routes(struct st_cli_ctx *ctx, json_t **ret, struct st_err **err)
{
    static const char *const keys[] = {"destination", "gateway", NULL};
    int rc = st_cli_neutron_multi_kv(ctx, "route", keys, NULL, ret, err);
    if (rc == 0)
        st_cli_neutron_routes_to_api(*ret);
    return rc;
}

static int set_attrs(struct st_cli_ctx *ctx, const json_t *router, json_t *attrs, void *data,
                     struct st_err **err)
{
    (void)data;
    const struct st_cli_args *a = &ctx->args;
    st_autoptr(json_t) routes = NULL;
    int r = router_attrs(ctx, attrs, "update the SNAT or fixed-ip values", err);
    if (r == 0)
        r = parse_routes(ctx, &routes, err);
    if (r != 0)
        return r;
    if (st_cli_args_flag(a, "route")) {
        if (!st_cli_args_flag(a, "no-route"))
            json_array_extend(routes, json_object_get(router, "routes"));
        json_object_set(attrs, "routes", routes);
    } else if (st_cli_args_flag(a, "no-route")) {
        json_object_set_new(attrs, "routes", json_array());
    }
    return 0;
}

static int run_set(struct st_cli_ctx *ctx, struct st_err **err)
{
    return st_cli_neutron_run_set(ctx, &st_cli_kind_router, set_attrs, NULL, 0, err);
}

static int unset_attrs(struct st_cli_ctx *ctx, const json_t *router, json_t *attrs, void *data,
                       struct st_err **err)
{
    (void)data;
    st_autoptr(json_t) remove = NULL;
    int r = parse_routes(ctx, &remove, err);
    if (r != 0)
        return r;
    if (json_array_size(remove) > 0) {
        json_t *kept = json_is_array(json_object_get(router, "routes"))
                           ? json_copy(json_object_get(router, "routes"))
                           : json_array();
        json_object_set_new(attrs, "routes", kept);
        size_t i, j;
        json_t *want, *have;
        json_array_foreach(remove, i, want)
        {
            bool found = false;
            json_array_foreach(kept, j, have) if (json_equal(have, want))
            {
                json_array_remove(kept, j);
                found = true;
                break;
            }
            if (!found) {
                st_autofree char *text = st_cli_output_repr(want);
                return st_err_set(err, -EINVAL, "Router does not contain route %s", text);
            }
        }
    }
    if (st_cli_args_flag(&ctx->args, "external-gateway"))
        json_object_set_new(attrs, "external_gateway_info", json_object());
    return 0;
}

static int run_unset(struct st_cli_ctx *ctx, struct st_err **err)
{
    return st_cli_neutron_run_set(ctx, &st_cli_kind_router, unset_attrs, NULL, 0, err);
}

static int run_delete(struct st_cli_ctx *ctx, struct st_err **err)
{
    return st_cli_neutron_delete_each(ctx, &st_cli_kind_router, "router", err);
}

/* router add|remove subnet|port: the subnet or port first, then the
 * router, then PUT /routers/<id>/<action> {"subnet_id" | "port_id": id}. */
static int interface_call(struct st_cli_ctx *ctx, const struct st_cli_kind *what, const char *key,
                          const char *action, struct st_err **err)
{
    st_autofree char *id = NULL;
    int r = st_cli_neutron_find_id(ctx, what, ctx->args.pos[1], &id, err);
    if (r < 0)
        return r;
    st_autoptr(json_t) router = NULL;
    r = st_cli_find(ctx, &st_cli_kind_router, ctx->args.pos[0], &router, err);
    if (r < 0)
        return r;
    return st_cli_neutron_router_interface(ctx, router, action, key, id, err);
}

static int run_add_subnet(struct st_cli_ctx *ctx, struct st_err **err)
{
    return interface_call(ctx, &st_cli_kind_subnet, "subnet_id", "add_router_interface", err);
}

static int run_remove_subnet(struct st_cli_ctx *ctx, struct st_err **err)
{
    return interface_call(ctx, &st_cli_kind_subnet, "subnet_id", "remove_router_interface", err);
}

static int run_add_port(struct st_cli_ctx *ctx, struct st_err **err)
{
    return interface_call(ctx, &st_cli_kind_port, "port_id", "add_router_interface", err);
}

static int run_remove_port(struct st_cli_ctx *ctx, struct st_err **err)
{
    return interface_call(ctx, &st_cli_kind_port, "port_id", "remove_router_interface", err);
}

/* ---- the table ---- */

#define GATEWAY_OPTIONS                                                                            \
    ST_CLI_VALUE("external-gateway", "<network>",                                                  \
                 "External Network used as router's gateway (name or ID)"),                        \
        ST_CLI_APPEND("fixed-ip", "subnet=<subnet>,ip-address=<ip-address>",                       \
                      "Desired IP and/or subnet (name or ID) on external gateway: "                \
                      "subnet=<subnet>,ip-address=<ip-address> (repeat option to set multiple "    \
                      "fixed IP addresses)"),                                                      \
        ST_CLI_FLAG("enable-snat", "Enable Source NAT on external gateway", GROUP_SNAT),           \
        ST_CLI_FLAG("disable-snat", "Disable Source NAT on external gateway", GROUP_SNAT)

#define ROUTE_OPTION(help)                                                                         \
    {                                                                                              \
        "route", 0, ST_CLI_OPT_APPEND, "destination=<subnet>,gateway=<ip-address>", help, NULL,    \
            false, 0                                                                               \
    }

static const struct st_cli_option create_opts[] = {
    ST_CLI_FLAG("enable", "Enable router (default)", GROUP_STATE),
    ST_CLI_FLAG("disable", "Disable router", GROUP_STATE),
    ST_CLI_FLAG("distributed", "Create a distributed router", GROUP_DISTRIBUTED),
    ST_CLI_FLAG("centralized", "Create a centralized router", GROUP_DISTRIBUTED),
    ST_CLI_FLAG("ha", "Create a highly available router", GROUP_HA),
    ST_CLI_FLAG("no-ha", "Create a legacy router", GROUP_HA),
    ST_CLI_VALUE("description", "<description>", "Set router description"),
    ST_CLI_NEUTRON_PROJECT_OPTIONS("Owner's project (name or ID)"),
    ST_CLI_APPEND("availability-zone-hint", "<availability-zone>",
                  "Availability Zone in which to create this router (Router Availability Zone "
                  "extension required, repeat option to set multiple availability zones)"),
    GATEWAY_OPTIONS,
    ST_CLI_OPTIONS_END,
};

static const struct st_cli_option list_opts[] = {
    ST_CLI_VALUE("name", "<name>", "List routers according to their name"),
    ST_CLI_FLAG("enable", "List enabled routers", GROUP_STATE),
    ST_CLI_FLAG("disable", "List disabled routers", GROUP_STATE),
    ST_CLI_FLAG("long", "List additional fields in output", 0),
    ST_CLI_NEUTRON_PROJECT_OPTIONS("List routers according to their project (name or ID)"),
    ST_CLI_OPTIONS_END,
};

static const struct st_cli_option set_opts[] = {
    ST_CLI_VALUE("name", "<name>", "Set router name"),
    ST_CLI_VALUE("description", "<description>", "Set router description"),
    ST_CLI_FLAG("enable", "Enable router", GROUP_STATE),
    ST_CLI_FLAG("disable", "Disable router", GROUP_STATE),
    ST_CLI_FLAG("distributed", "Set router to distributed mode (disabled router only)",
                GROUP_DISTRIBUTED),
    ST_CLI_FLAG("centralized", "Set router to centralized mode (disabled router only)",
                GROUP_DISTRIBUTED),
    ROUTE_OPTION("Add routes to the router destination: destination subnet (in CIDR notation) "
                 "gateway: nexthop IP address (repeat option to add multiple routes)"),
    ST_CLI_FLAG("no-route",
                "Clear routes associated with the router. Specify both --route and --no-route "
                "to overwrite current value of routes.",
                0),
    ST_CLI_FLAG("ha", "Set the router as highly available (disabled router only)", GROUP_HA),
    ST_CLI_FLAG("no-ha", "Clear high availability attribute of the router (disabled router only)",
                GROUP_HA),
    GATEWAY_OPTIONS,
    ST_CLI_OPTIONS_END,
};

static const struct st_cli_option unset_opts[] = {
    ROUTE_OPTION("Routes to be removed from the router destination: destination subnet (in CIDR "
                 "notation) gateway: nexthop IP address (repeat option to unset multiple "
                 "routes)"),
    ST_CLI_FLAG("external-gateway", "Remove external gateway information from the router", 0),
    ST_CLI_OPTIONS_END,
};

static const struct st_cli_arg set_args[] = {{"<router>", "Router to modify (name or ID)", 0},
                                             {NULL, NULL, 0}};
static const struct st_cli_arg add_subnet_args[] = {
    {"<router>", "Router to which subnet will be added (name or ID)", 0},
    {"<subnet>", "Subnet to be added (name or ID)", 0},
    {NULL, NULL, 0}};
static const struct st_cli_arg remove_subnet_args[] = {
    {"<router>", "Router from which the subnet will be removed (name or ID)", 0},
    {"<subnet>", "Subnet to be removed (name or ID)", 0},
    {NULL, NULL, 0}};
static const struct st_cli_arg add_port_args[] = {
    {"<router>", "Router to which port will be added (name or ID)", 0},
    {"<port>", "Port to be added (name or ID)", 0},
    {NULL, NULL, 0}};
static const struct st_cli_arg remove_port_args[] = {
    {"<router>", "Router from which port will be removed (name or ID)", 0},
    {"<port>", "Port to be removed and deleted (name or ID)", 0},
    {NULL, NULL, 0}};

const struct st_cli_command st_cli_router_commands[] = {
    {"router add port", "Add a port to a router", NULL, NULL, add_port_args, ST_CLI_NEUTRON_CMD,
     run_add_port},
    {"router add subnet", "Add a subnet to a router", NULL, NULL, add_subnet_args,
     ST_CLI_NEUTRON_CMD, run_add_subnet},
    {"router create", "Create a new router", NULL, create_opts,
     ST_CLI_NEUTRON_ARG("<name>", "New router name", 0), ST_CLI_NEUTRON_SHOW, run_create},
    {"router delete", "Delete router(s)", NULL, NULL,
     ST_CLI_NEUTRON_ARG("<router>", "Router(s) to delete (name or ID)", ST_CLI_ARG_MULTI),
     ST_CLI_NEUTRON_CMD, run_delete},
    {"router list", "List routers", NULL, list_opts, NULL, ST_CLI_NEUTRON_LIST, run_list},
    {"router remove port", "Remove a port from a router", NULL, NULL, remove_port_args,
     ST_CLI_NEUTRON_CMD, run_remove_port},
    {"router remove subnet", "Remove a subnet from a router", NULL, NULL, remove_subnet_args,
     ST_CLI_NEUTRON_CMD, run_remove_subnet},
    {"router set", "Set router properties", NULL, set_opts, set_args, ST_CLI_NEUTRON_CMD, run_set},
    {"router show", "Display router details", NULL, NULL,
     ST_CLI_NEUTRON_ARG("<router>", "Router to display (name or ID)", 0), ST_CLI_NEUTRON_SHOW,
     run_show},
    {"router unset", "Unset router properties", NULL, unset_opts, set_args, ST_CLI_NEUTRON_CMD,
     run_unset},
    {NULL, NULL, NULL, NULL, NULL, 0, NULL},
};
