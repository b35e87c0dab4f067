/* Neutron subnets: the openstack CLI's `subnet create|list|show|set|delete`
 * (openstackclient network/v2/subnet.py over openstacksdk). A subnet is a
 * CIDR on a network with its gateway, allocation pools, DNS servers, host
 * routes and DHCP switch; --host-route's "gateway" is Neutron's "nexthop",
 * renamed both ways as openstack does. */
#include "cmd_subnet.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "lib/cleanup.h"
#include "lib/json.h"
#include "neutron.h"

enum { GROUP_DHCP = 1, GROUP_DNS_PUBLISH };

static const struct st_cli_nfield subnet_fields[] = {
    {"allocation_pools", "allocation_pools", ST_CLI_NFMT_POOLS},
    {"cidr", "cidr", ST_CLI_NFMT_NONE},
    {"created_at", "created_at", ST_CLI_NFMT_NONE},
    {"description", "description", ST_CLI_NFMT_NONE},
    {"dns_nameservers", "dns_nameservers", ST_CLI_NFMT_LIST},
    {"dns_publish_fixed_ip", "dns_publish_fixed_ip", ST_CLI_NFMT_NONE},
    {"enable_dhcp", "enable_dhcp", ST_CLI_NFMT_NONE},
    {"gateway_ip", "gateway_ip", ST_CLI_NFMT_NONE},
    {"host_routes", "host_routes", ST_CLI_NFMT_ROUTES},
    {"id", "id", ST_CLI_NFMT_NONE},
    {"ip_version", "ip_version", ST_CLI_NFMT_NONE},
    {"ipv6_address_mode", "ipv6_address_mode", ST_CLI_NFMT_NONE},
    {"ipv6_ra_mode", "ipv6_ra_mode", ST_CLI_NFMT_NONE},
    {"name", "name", ST_CLI_NFMT_NONE},
    {"network_id", "network_id", ST_CLI_NFMT_NONE},
    {"project_id", "project_id", ST_CLI_NFMT_NONE},
    {"revision_number", "revision_number", ST_CLI_NFMT_NONE},
    {"segment_id", "segment_id", ST_CLI_NFMT_NONE},
    {"service_types", "service_types", ST_CLI_NFMT_LIST},
    {"subnetpool_id", "subnetpool_id", ST_CLI_NFMT_NONE},
    {"tags", "tags", ST_CLI_NFMT_LIST},
    {"updated_at", "updated_at", ST_CLI_NFMT_NONE},
    {NULL, NULL, 0},
};

/* The first four are the default list; --long shows them all. */
static const struct st_cli_nfield list_fields[] = {
    {"ID", "id", ST_CLI_NFMT_NONE},
    {"Name", "name", ST_CLI_NFMT_NONE},
    {"Network", "network_id", ST_CLI_NFMT_NONE},
    {"Subnet", "cidr", ST_CLI_NFMT_NONE},
    {"Project", "project_id", ST_CLI_NFMT_NONE},
    {"DHCP", "enable_dhcp", ST_CLI_NFMT_NONE},
    {"Name Servers", "dns_nameservers", ST_CLI_NFMT_LIST},
    {"Allocation Pools", "allocation_pools", ST_CLI_NFMT_POOLS},
    {"Host Routes", "host_routes", ST_CLI_NFMT_ROUTES},
    {"IP Version", "ip_version", ST_CLI_NFMT_NONE},
    {"Gateway", "gateway_ip", ST_CLI_NFMT_NONE},
    {"Service Types", "service_types", ST_CLI_NFMT_LIST},
    {"Tags", "tags", ST_CLI_NFMT_LIST},
};

static const char *const pool_keys[] = {"start", "end", NULL};
static const char *const route_keys[] = {"destination", "gateway", NULL};

/* Appends the items of the subnet's field after the new ones, as "subnet
 * set" adds to what is there (unless --no-<what> cleared it). */
static void append_existing(json_t *list, const json_t *subnet, const char *key)
{
    size_t i;
    json_t *item;
    json_array_foreach(json_object_get(subnet, key), i, item) json_array_append(list, item);
}

/* _get_attrs after the create-only fields: gateway, pools, DHCP, DNS,
 * routes, service types, description; with subnet (set), the lists add to
 * the subnet's. Returns 0 or -errno. */
static int subnet_attrs(struct st_cli_ctx *ctx, const json_t *subnet, json_t *attrs,
                        struct st_err **err)
{
    const char *gateway = st_cli_args_get(&ctx->args, "gateway");
    if (gateway) {
        if (subnet && strcasecmp(gateway, "auto") == 0)
            return st_err_set(err, -EINVAL,
                              "Auto option is not available for Subnet Set. Valid options are "
                              "<ip-address> or none");
        if (strcasecmp(gateway, "none") == 0)
            json_object_set_new(attrs, "gateway_ip", json_null());
        else if (strcasecmp(gateway, "auto") != 0) {
            st_autofree char *lower = st_cli_neutron_lower(gateway);
            json_object_set_new(attrs, "gateway_ip", json_string(lower));
        }
    }
    st_autoptr(json_t) pools = NULL;
    st_autoptr(json_t) routes = NULL;
    int rc = st_cli_neutron_multi_kv(ctx, "allocation-pool", pool_keys, NULL, &pools, err);
    if (rc == 0)
        rc = st_cli_neutron_multi_kv(ctx, "host-route", route_keys, NULL, &routes, err);
    if (rc != 0)
        return rc;
    bool set = subnet != NULL;
    if (json_array_size(pools) > 0) {
        if (set && !st_cli_args_flag(&ctx->args, "no-allocation-pool"))
            append_existing(pools, subnet, "allocation_pools");
        json_object_set(attrs, "allocation_pools", pools);
    } else if (st_cli_args_flag(&ctx->args, "no-allocation-pool")) {
        json_object_set_new(attrs, "allocation_pools", json_array());
    }
    st_cli_neutron_flag_pair(ctx, attrs, "enable_dhcp", "dhcp", "no-dhcp");
    st_cli_neutron_flag_pair(ctx, attrs, "dns_publish_fixed_ip", "dns-publish-fixed-ip",
                             "no-dns-publish-fixed-ip");
    json_t *dns = st_cli_neutron_strings_option(ctx, attrs, "dns_nameservers", "dns-nameserver");
    if (dns) {
        if (set && !st_cli_args_flag(&ctx->args, "no-dns-nameservers"))
            append_existing(dns, subnet, "dns_nameservers");
    } else if (st_cli_args_flag(&ctx->args, "no-dns-nameservers")) {
        json_object_set_new(attrs, "dns_nameservers", json_array());
    }
    if (json_array_size(routes) > 0) {
        st_cli_neutron_routes_to_api(routes);
        if (set && !st_cli_args_flag(&ctx->args, "no-host-route"))
            append_existing(routes, subnet, "host_routes");
        json_object_set(attrs, "host_routes", routes);
    } else if (st_cli_args_flag(&ctx->args, "no-host-route")) {
        json_object_set_new(attrs, "host_routes", json_array());
    }
    json_t *types = st_cli_neutron_strings_option(ctx, attrs, "service_types", "service-type");
    if (types && set)
        append_existing(types, subnet, "service_types");
    st_cli_neutron_string_option(ctx, attrs, "description", "description");
    return 0;
}

static int run_create(struct st_cli_ctx *ctx, struct st_err **err)
{
    const struct st_cli_args *a = &ctx->args;
    st_autoptr(json_t) attrs = json_pack("{s:s}", "name", a->pos[0]);
    int r = st_cli_neutron_project_attr(ctx, attrs, err);
    if (r == 0)
        r = st_cli_neutron_id_option(ctx, attrs, "network_id", "network", &st_cli_kind_network,
                                     err);
    if (r < 0)
        return r;
    st_cli_neutron_string_option(ctx, attrs, "cidr", "subnet-range");
    const char *version = st_cli_args_get(a, "ip-version");
    json_object_set_new(attrs, "ip_version", json_integer(version ? atoi(version) : 4));
    st_cli_neutron_string_option(ctx, attrs, "ipv6_ra_mode", "ipv6-ra-mode");
    st_cli_neutron_string_option(ctx, attrs, "ipv6_address_mode", "ipv6-address-mode");
    r = subnet_attrs(ctx, NULL, attrs, err);
    if (r != 0)
        return r;
    return st_cli_neutron_create_show(ctx, &st_cli_kind_subnet, attrs, subnet_fields, 0, err);
}

static int run_list(struct st_cli_ctx *ctx, struct st_err **err)
{
    const struct st_cli_args *a = &ctx->args;
    struct st_cli_neutron_query q = {0};
    st_cli_neutron_query_option(ctx, &q, "ip_version", "ip-version");
    st_cli_neutron_query_flag_pair(ctx, &q, "enable_dhcp", "dhcp", "no-dhcp");
    char *const *types;
    size_t n = st_cli_args_all(a, "service-type", &types);
    for (size_t i = 0; i < n; i++)
        st_cli_neutron_query_add(&q, "service_types", types[i]);
    int r = st_cli_neutron_query_project(ctx, &q, err);
    if (r == 0)
        r = st_cli_neutron_query_id(ctx, &q, "network_id", "network", &st_cli_kind_network, err);
    if (r < 0) {
        st_cli_neutron_query_clear(&q);
        return r;
    }
    st_cli_neutron_query_option(ctx, &q, "gateway_ip", "gateway");
    st_cli_neutron_query_option(ctx, &q, "name", "name");
    st_cli_neutron_query_option(ctx, &q, "cidr", "subnet-range");
    return st_cli_neutron_list_print(ctx, &st_cli_kind_subnet, &q, list_fields,
                                     st_cli_args_flag(a, "long") ? ST_ARRAY_SIZE(list_fields) : 4,
                                     err);
}

static int run_show(struct st_cli_ctx *ctx, struct st_err **err)
{
    return st_cli_neutron_run_show(ctx, &st_cli_kind_subnet, subnet_fields, 0, err);
}

static int set_attrs(struct st_cli_ctx *ctx, const json_t *subnet, json_t *attrs, void *data,
                     struct st_err **err)
{
    (void)data;
    st_cli_neutron_string_option(ctx, attrs, "name", "name");
    return subnet_attrs(ctx, subnet, attrs, err);
}

static int run_set(struct st_cli_ctx *ctx, struct st_err **err)
{
    return st_cli_neutron_run_set(ctx, &st_cli_kind_subnet, set_attrs, NULL, 0, err);
}

static int run_delete(struct st_cli_ctx *ctx, struct st_err **err)
{
    return st_cli_neutron_delete_each(ctx, &st_cli_kind_subnet, "subnet", err);
}

/* ---- the table ---- */

#define POOL_OPTION(help)                                                                          \
    {                                                                                              \
        "allocation-pool", 0, ST_CLI_OPT_APPEND, "start=<ip-address>,end=<ip-address>", help,      \
            NULL, false, 0                                                                         \
    }
#define ROUTE_OPTION(help)                                                                         \
    {                                                                                              \
        "host-route", 0, ST_CLI_OPT_APPEND, "destination=<subnet>,gateway=<ip-address>", help,     \
            NULL, false, 0                                                                         \
    }
#define DNS_PUBLISH_OPTIONS(on_help, off_help)                                                     \
    ST_CLI_FLAG("dns-publish-fixed-ip", on_help, GROUP_DNS_PUBLISH),                               \
        ST_CLI_FLAG("no-dns-publish-fixed-ip", off_help, GROUP_DNS_PUBLISH)
#define SERVICE_TYPE_OPTION                                                                        \
    ST_CLI_APPEND("service-type", "<service-type>",                                                \
                  "Service type for this subnet e.g.: network:floatingip_agent_gateway. Must be "  \
                  "a valid device owner value for a network port (repeat option to set multiple "  \
                  "service types)")

static const char *const ip_versions[] = {"4", "6", NULL};
static const char *const ipv6_modes[] = {"dhcpv6-stateful", "dhcpv6-stateless", "slaac", NULL};

static const struct st_cli_option create_opts[] = {
    ST_CLI_NEUTRON_PROJECT_OPTIONS("Owner's project (name or ID)"),
    ST_CLI_VALUE("subnet-range", "<subnet-range>",
                 "Subnet range in CIDR notation (required if --subnet-pool is not specified, "
                 "optional otherwise)"),
    ST_CLI_FLAG("dhcp", "Enable DHCP (default)", GROUP_DHCP),
    ST_CLI_FLAG("no-dhcp", "Disable DHCP", GROUP_DHCP),
    DNS_PUBLISH_OPTIONS("Enable publishing fixed IPs in DNS",
                        "Disable publishing fixed IPs in DNS (default)"),
    ST_CLI_VALUE("gateway", "<gateway>",
                 "Specify a gateway for the subnet.  The three options are: <ip-address>: "
                 "Specific IP address to use as the gateway, 'auto': Gateway address should "
                 "automatically be chosen from within the subnet itself, 'none': This subnet will "
                 "not use a gateway, e.g.: --gateway 192.168.9.1, --gateway auto, --gateway none "
                 "(default is 'auto')."),
    {"ip-version", 0, ST_CLI_OPT_VALUE, NULL,
     "IP version (default is 4).  Note that when subnet pool is specified, IP version is "
     "determined from the subnet pool and this option is ignored.",
     ip_versions, false, 0},
    {"ipv6-ra-mode", 0, ST_CLI_OPT_VALUE, NULL,
     "IPv6 RA (Router Advertisement) mode, valid modes: [dhcpv6-stateful, dhcpv6-stateless, "
     "slaac]",
     ipv6_modes, false, 0},
    {"ipv6-address-mode", 0, ST_CLI_OPT_VALUE, NULL,
     "IPv6 address mode, valid modes: [dhcpv6-stateful, dhcpv6-stateless, slaac]", ipv6_modes,
     false, 0},
    {"network", 0, ST_CLI_OPT_VALUE, "<network>", "Network this subnet belongs to (name or ID)",
     NULL, true, 0},
    ST_CLI_VALUE("description", "<description>", "Set subnet description"),
    POOL_OPTION("Allocation pool IP addresses for this subnet e.g.: "
                "start=192.168.199.2,end=192.168.199.254 (repeat option to add multiple IP "
                "addresses)"),
    ST_CLI_APPEND("dns-nameserver", "<dns-nameserver>",
                  "DNS server for this subnet (repeat option to set multiple DNS servers)"),
    ROUTE_OPTION("Additional route for this subnet e.g.: "
                 "destination=10.10.0.0/16,gateway=192.168.71.254 destination: destination subnet "
                 "(in CIDR notation) gateway: nexthop IP address (repeat option to add multiple "
                 "routes)"),
    SERVICE_TYPE_OPTION,
    ST_CLI_OPTIONS_END,
};

static const struct st_cli_option list_opts[] = {
    ST_CLI_FLAG("long", "List additional fields in output", 0),
    {"ip-version", 0, ST_CLI_OPT_VALUE, "<ip-version>",
     "List only subnets of given IP version in output. Allowed values for IP version are 4 and "
     "6.",
     ip_versions, false, 0},
    ST_CLI_FLAG("dhcp", "List subnets which have DHCP enabled", GROUP_DHCP),
    ST_CLI_FLAG("no-dhcp", "List subnets which have DHCP disabled", GROUP_DHCP),
    ST_CLI_APPEND("service-type", "<service-type>",
                  "List only subnets of a given service type in output e.g.: "
                  "network:floatingip_agent_gateway. Must be a valid device owner value for a "
                  "network port (repeat option to list multiple service types)"),
    ST_CLI_NEUTRON_PROJECT_OPTIONS(
        "List only subnets which belong to a given project in output (name or ID)"),
    ST_CLI_VALUE("network", "<network>",
                 "List only subnets which belong to a given network in output (name or ID)"),
    ST_CLI_VALUE("gateway", "<gateway>", "List only subnets of given gateway IP in output"),
    ST_CLI_VALUE("name", "<name>", "List only subnets of given name in output"),
    ST_CLI_VALUE("subnet-range", "<subnet-range>",
                 "List only subnets of given subnet range (in CIDR notation) in output e.g.: "
                 "--subnet-range 10.10.0.0/16"),
    ST_CLI_OPTIONS_END,
};

static const struct st_cli_option set_opts[] = {
    ST_CLI_VALUE("name", "<name>", "Updated name of the subnet"),
    ST_CLI_FLAG("dhcp", "Enable DHCP", GROUP_DHCP),
    ST_CLI_FLAG("no-dhcp", "Disable DHCP", GROUP_DHCP),
    DNS_PUBLISH_OPTIONS("Enable publishing fixed IPs in DNS",
                        "Disable publishing fixed IPs in DNS"),
    ST_CLI_VALUE("gateway", "<gateway>",
                 "Specify a gateway for the subnet. The options are: <ip-address>: Specific IP "
                 "address to use as the gateway, 'none': This subnet will not use a gateway, "
                 "e.g.: --gateway 192.168.9.1, --gateway none."),
    ST_CLI_VALUE("description", "<description>", "Set subnet description"),
    POOL_OPTION("Allocation pool IP addresses for this subnet e.g.: "
                "start=192.168.199.2,end=192.168.199.254 (repeat option to add multiple IP "
                "addresses)"),
    ST_CLI_FLAG("no-allocation-pool",
                "Clear associated allocation-pools from the subnet. Specify both "
                "--allocation-pool and --no-allocation-pool to overwrite the current allocation "
                "pool information.",
                0),
    ST_CLI_APPEND("dns-nameserver", "<dns-nameserver>",
                  "DNS server for this subnet (repeat option to set multiple DNS servers)"),
    ST_CLI_FLAG("no-dns-nameservers",
                "Clear existing information of DNS Nameservers. Specify both --dns-nameserver "
                "and --no-dns-nameserver to overwrite the current DNS Nameserver information.",
                0),
    ROUTE_OPTION("Additional route for this subnet e.g.: "
                 "destination=10.10.0.0/16,gateway=192.168.71.254 destination: destination subnet "
                 "(in CIDR notation) gateway: nexthop IP address (repeat option to add multiple "
                 "routes)"),
    ST_CLI_FLAG("no-host-route",
                "Clear associated host-routes from the subnet. Specify both --host-route and "
                "--no-host-route to overwrite the current host route information.",
                0),
    SERVICE_TYPE_OPTION,
    ST_CLI_OPTIONS_END,
};

const struct st_cli_command st_cli_subnet_commands[] = {
    {"subnet create", "Create a subnet", NULL, create_opts,
     ST_CLI_NEUTRON_ARG("<name>", "New subnet name", 0), ST_CLI_NEUTRON_SHOW, run_create},
    {"subnet delete", "Delete subnet(s)", NULL, NULL,
     ST_CLI_NEUTRON_ARG("<subnet>", "Subnet(s) to delete (name or ID)", ST_CLI_ARG_MULTI),
     ST_CLI_NEUTRON_CMD, run_delete},
    {"subnet list", "List subnets", NULL, list_opts, NULL, ST_CLI_NEUTRON_LIST, run_list},
    {"subnet set", "Set subnet properties", NULL, set_opts,
     ST_CLI_NEUTRON_ARG("<subnet>", "Subnet to modify (name or ID)", 0), ST_CLI_NEUTRON_CMD,
     run_set},
    {"subnet show", "Display subnet details", NULL, NULL,
     ST_CLI_NEUTRON_ARG("<subnet>", "Subnet to display (name or ID)", 0), ST_CLI_NEUTRON_SHOW,
     run_show},
    {NULL, NULL, NULL, NULL, NULL, 0, NULL},
};
