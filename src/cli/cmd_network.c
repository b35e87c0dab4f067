/* Neutron networks: the openstack CLI's `network create|list|show|set|
 * delete` (openstackclient network/v2/network.py over openstacksdk) with
 * its options, request bodies and columns. An external network
 * (--external, admin only) is the uplink routers take their gateway on;
 * the provider options say how a network is built (stratos: vxlan for
 * tenant networks, flat on "external" for the uplink). */
#include "cmd_network.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "lib/cleanup.h"
#include "lib/json.h"
#include "neutron.h"

enum {
    GROUP_SHARE = 1,
    GROUP_STATE,
    GROUP_PORT_SECURITY,
    GROUP_EXTERNAL,
    GROUP_DEFAULT,
};

/* The SDK Network's attributes, under openstackclient's names. */
static const struct st_cli_nfield network_fields[] = {
    {"admin_state_up", "admin_state_up", ST_CLI_NFMT_ADMIN_STATE},
    {"availability_zone_hints", "availability_zone_hints", ST_CLI_NFMT_LIST},
    {"availability_zones", "availability_zones", ST_CLI_NFMT_LIST},
    {"created_at", "created_at", ST_CLI_NFMT_NONE},
    {"description", "description", ST_CLI_NFMT_NONE},
    {"dns_domain", "dns_domain", ST_CLI_NFMT_NONE},
    {"id", "id", ST_CLI_NFMT_NONE},
    {"ipv4_address_scope", "ipv4_address_scope", ST_CLI_NFMT_NONE},
    {"ipv6_address_scope", "ipv6_address_scope", ST_CLI_NFMT_NONE},
    {"is_default", "is_default", ST_CLI_NFMT_NONE},
    {"is_vlan_transparent", "vlan_transparent", ST_CLI_NFMT_NONE},
    {"mtu", "mtu", ST_CLI_NFMT_NONE},
    {"name", "name", ST_CLI_NFMT_NONE},
    {"port_security_enabled", "port_security_enabled", ST_CLI_NFMT_NONE},
    {"project_id", "project_id", ST_CLI_NFMT_NONE},
    {"provider:network_type", "provider:network_type", ST_CLI_NFMT_NONE},
    {"provider:physical_network", "provider:physical_network", ST_CLI_NFMT_NONE},
    {"provider:segmentation_id", "provider:segmentation_id", ST_CLI_NFMT_NONE},
    {"qos_policy_id", "qos_policy_id", ST_CLI_NFMT_NONE},
    {"revision_number", "revision_number", ST_CLI_NFMT_NONE},
    {"router:external", "router:external", ST_CLI_NFMT_ROUTER_EXTERNAL},
    {"segments", "segments", ST_CLI_NFMT_NONE},
    {"shared", "shared", ST_CLI_NFMT_NONE},
    {"status", "status", ST_CLI_NFMT_NONE},
    {"subnets", "subnets", ST_CLI_NFMT_LIST},
    {"tags", "tags", ST_CLI_NFMT_LIST},
    {"updated_at", "updated_at", ST_CLI_NFMT_NONE},
    {NULL, NULL, 0},
};

static const struct st_cli_nfield list_fields[] = {
    {"ID", "id", ST_CLI_NFMT_NONE},
    {"Name", "name", ST_CLI_NFMT_NONE},
    {"Subnets", "subnets", ST_CLI_NFMT_LIST},
};

static const struct st_cli_nfield long_fields[] = {
    {"ID", "id", ST_CLI_NFMT_NONE},
    {"Name", "name", ST_CLI_NFMT_NONE},
    {"Status", "status", ST_CLI_NFMT_NONE},
    {"Project", "project_id", ST_CLI_NFMT_NONE},
    {"State", "admin_state_up", ST_CLI_NFMT_ADMIN_STATE},
    {"Shared", "shared", ST_CLI_NFMT_NONE},
    {"Subnets", "subnets", ST_CLI_NFMT_LIST},
    {"Network Type", "provider:network_type", ST_CLI_NFMT_NONE},
    {"Router Type", "router:external", ST_CLI_NFMT_ROUTER_EXTERNAL},
    {"Availability Zones", "availability_zones", ST_CLI_NFMT_LIST},
    {"Tags", "tags", ST_CLI_NFMT_LIST},
};

/* The segment as a number when it is one (Neutron's type), else as given. */
static json_t *segment_value(const char *s)
{
    char *end = NULL;
    long long n = strtoll(s, &end, 10);
    return *s && !*end ? json_integer(n) : json_string(s);
}

/* _get_attrs_network: the body shared by create and set (of net), in its
 * order. */
static int network_attrs(struct st_cli_ctx *ctx, const json_t *net, json_t *attrs, void *data,
                         struct st_err **err)
{
    (void)net;
    (void)data;
    st_cli_neutron_string_option(ctx, attrs, "name", "name");
    st_cli_neutron_flag_pair(ctx, attrs, "admin_state_up", "enable", "disable");
    st_cli_neutron_flag_pair(ctx, attrs, "shared", "share", "no-share");
    st_cli_neutron_flag_pair(ctx, attrs, "port_security_enabled", "enable-port-security",
                             "disable-port-security");
    int r = st_cli_neutron_project_attr(ctx, attrs, err);
    if (r < 0)
        return r;
    st_cli_neutron_strings_option(ctx, attrs, "availability_zone_hints", "availability-zone-hint");
    st_cli_neutron_string_option(ctx, attrs, "description", "description");
    long mtu;
    int rc = st_cli_ctx_int_option(ctx, "mtu", 0, &mtu);
    if (rc != 0)
        return rc;
    if (mtu)
        json_object_set_new(attrs, "mtu", json_integer(mtu));
    st_cli_neutron_flag_pair(ctx, attrs, "router:external", "external", "internal");
    st_cli_neutron_flag_pair(ctx, attrs, "is_default", "default", "no-default");
    st_cli_neutron_string_option(ctx, attrs, "provider:network_type", "provider-network-type");
    st_cli_neutron_string_option(ctx, attrs, "provider:physical_network",
                                 "provider-physical-network");
    const char *segment = st_cli_args_get(&ctx->args, "provider-segment");
    if (segment)
        json_object_set_new(attrs, "provider:segmentation_id", segment_value(segment));
    st_cli_neutron_string_option(ctx, attrs, "dns_domain", "dns-domain");
    return 0;
}

static int run_create(struct st_cli_ctx *ctx, struct st_err **err)
{
    st_autoptr(json_t) attrs = json_pack("{s:s}", "name", ctx->args.pos[0]);
    /* --enable is the default: the SDK sends admin_state_up either way */
    json_object_set_new(attrs, "admin_state_up", json_true());
    int r = network_attrs(ctx, NULL, attrs, NULL, err);
    if (r != 0)
        return r;
    return st_cli_neutron_create_show(ctx, &st_cli_kind_network, attrs, network_fields,
                                      ST_CLI_NEUTRON_SDK_ERRORS, err);
}

static int run_list(struct st_cli_ctx *ctx, struct st_err **err)
{
    struct st_cli_neutron_query q = {0};
    st_cli_neutron_query_flag_pair(ctx, &q, "router:external", "external", "internal");
    st_cli_neutron_query_option(ctx, &q, "name", "name");
    st_cli_neutron_query_flag_pair(ctx, &q, "admin_state_up", "enable", "disable");
    int r = st_cli_neutron_query_project(ctx, &q, err);
    if (r < 0) {
        st_cli_neutron_query_clear(&q);
        return r;
    }
    st_cli_neutron_query_flag_pair(ctx, &q, "shared", "share", "no-share");
    st_cli_neutron_query_option(ctx, &q, "status", "status");
    st_cli_neutron_query_option(ctx, &q, "provider:network_type", "provider-network-type");
    st_cli_neutron_query_option(ctx, &q, "provider:physical_network", "provider-physical-network");
    st_cli_neutron_query_option(ctx, &q, "provider:segmentation_id", "provider-segment");
    if (st_cli_args_flag(&ctx->args, "long"))
        return st_cli_neutron_list_print(ctx, &st_cli_kind_network, &q, long_fields,
                                         ST_ARRAY_SIZE(long_fields), err);
    return st_cli_neutron_list_print(ctx, &st_cli_kind_network, &q, list_fields,
                                     ST_ARRAY_SIZE(list_fields), err);
}

static int run_show(struct st_cli_ctx *ctx, struct st_err **err)
{
    return st_cli_neutron_run_show(ctx, &st_cli_kind_network, network_fields,
                                   ST_CLI_NEUTRON_SDK_ERRORS, err);
}

static int run_set(struct st_cli_ctx *ctx, struct st_err **err)
{
    return st_cli_neutron_run_set(ctx, &st_cli_kind_network, network_attrs, NULL, 0, err);
}

static int run_delete(struct st_cli_ctx *ctx, struct st_err **err)
{
    return st_cli_neutron_delete_each(ctx, &st_cli_kind_network, "network", err);
}

/* ---- the table ---- */

#define SHARE_OPTIONS(share_help, no_share_help)                                                   \
    ST_CLI_FLAG("share", share_help, GROUP_SHARE),                                                 \
        ST_CLI_FLAG("no-share", no_share_help, GROUP_SHARE)

#define COMMON_OPTIONS                                                                             \
    ST_CLI_FLAG("enable-port-security",                                                            \
                "Enable port security by default for ports created on this network (default)",     \
                GROUP_PORT_SECURITY),                                                              \
        ST_CLI_FLAG("disable-port-security",                                                       \
                    "Disable port security by default for ports created on this network",          \
                    GROUP_PORT_SECURITY),                                                          \
        ST_CLI_FLAG("external",                                                                    \
                    "Set this network as an external network (external-net extension required)",   \
                    GROUP_EXTERNAL),                                                               \
        ST_CLI_FLAG("internal", "Set this network as an internal network (default)",               \
                    GROUP_EXTERNAL),                                                               \
        ST_CLI_FLAG("default",                                                                     \
                    "Specify if this network should be used as the default external network",      \
                    GROUP_DEFAULT),                                                                \
        ST_CLI_FLAG("no-default",                                                                  \
                    "Do not use the network as the default external network (default)",            \
                    GROUP_DEFAULT),                                                                \
        ST_CLI_VALUE("provider-network-type", "<provider-network-type>",                           \
                     "The physical mechanism by which the virtual network is implemented. For "    \
                     "example: flat, geneve, gre, local, vlan, vxlan."),                           \
        ST_CLI_VALUE("provider-physical-network", "<provider-physical-network>",                   \
                     "Name of the physical network over which the virtual network is "             \
                     "implemented"),                                                               \
        ST_CLI_VALUE("provider-segment", "<provider-segment>",                                     \
                     "VLAN ID for VLAN networks or Tunnel ID for GENEVE/GRE/VXLAN networks"),      \
        ST_CLI_VALUE("dns-domain", "<dns-domain>",                                                 \
                     "Set DNS domain for this network (requires DNS integration extension)")

static const struct st_cli_option create_opts[] = {
    SHARE_OPTIONS("Share the network between projects",
                  "Do not share the network between projects"),
    ST_CLI_FLAG("enable", "Enable network (default)", GROUP_STATE),
    ST_CLI_FLAG("disable", "Disable network", GROUP_STATE),
    ST_CLI_NEUTRON_PROJECT_OPTIONS("Owner's project (name or ID)"),
    ST_CLI_VALUE("description", "<description>", "Set network description"),
    ST_CLI_VALUE("mtu", "<mtu>", "Set network mtu"),
    ST_CLI_APPEND("availability-zone-hint", "<availability-zone>",
                  "Availability Zone in which to create this network (Network Availability Zone "
                  "extension required, repeat option to set multiple availability zones)"),
    COMMON_OPTIONS,
    ST_CLI_OPTIONS_END,
};

static const char *const statuses[] = {"ACTIVE", "BUILD", "DOWN", "ERROR", NULL};
static const char *const network_types[] = {"flat", "geneve", "gre", "local",
                                            "vlan", "vxlan",  NULL};

static const struct st_cli_option list_opts[] = {
    ST_CLI_FLAG("external", "List external networks", GROUP_EXTERNAL),
    ST_CLI_FLAG("internal", "List internal networks", GROUP_EXTERNAL),
    ST_CLI_FLAG("long", "List additional fields in output", 0),
    ST_CLI_VALUE("name", "<name>", "List networks according to their name"),
    ST_CLI_FLAG("enable", "List enabled networks", GROUP_STATE),
    ST_CLI_FLAG("disable", "List disabled networks", GROUP_STATE),
    ST_CLI_NEUTRON_PROJECT_OPTIONS("List networks according to their project (name or ID)"),
    SHARE_OPTIONS("List networks shared between projects",
                  "List networks not shared between projects"),
    {"status", 0, ST_CLI_OPT_VALUE, "<status>",
     "List networks according to their status ('ACTIVE', 'BUILD', 'DOWN', 'ERROR')", statuses,
     false, 0},
    {"provider-network-type", 0, ST_CLI_OPT_VALUE, "<provider-network-type>",
     "List networks according to their physical mechanisms. The supported options are: flat, "
     "geneve, gre, local, vlan, vxlan.",
     network_types, false, 0},
    ST_CLI_VALUE("provider-physical-network", "<provider-physical-network>",
                 "List networks according to name of the physical network"),
    ST_CLI_VALUE("provider-segment", "<provider-segment>",
                 "List networks according to VLAN ID for VLAN networks or Tunnel ID for "
                 "GENEVE/GRE/VXLAN networks"),
    ST_CLI_OPTIONS_END,
};

static const struct st_cli_option set_opts[] = {
    ST_CLI_VALUE("name", "<name>", "Set network name"),
    ST_CLI_FLAG("enable", "Enable network", GROUP_STATE),
    ST_CLI_FLAG("disable", "Disable network", GROUP_STATE),
    SHARE_OPTIONS("Share the network between projects",
                  "Do not share the network between projects"),
    ST_CLI_VALUE("description", "<description", "Set network description"),
    ST_CLI_VALUE("mtu", "<mtu", "Set network mtu"),
    COMMON_OPTIONS,
    ST_CLI_OPTIONS_END,
};

const struct st_cli_command st_cli_network_commands[] = {
    {"network create", "Create new network", NULL, create_opts,
     ST_CLI_NEUTRON_ARG("<name>", "New network name", 0), ST_CLI_NEUTRON_SHOW, run_create},
    {"network delete", "Delete network(s)", NULL, NULL,
     ST_CLI_NEUTRON_ARG("<network>", "Network(s) to delete (name or ID)", ST_CLI_ARG_MULTI),
     ST_CLI_NEUTRON_CMD, run_delete},
    {"network list", "List networks", NULL, list_opts, NULL, ST_CLI_NEUTRON_LIST, run_list},
    {"network set", "Set network properties", NULL, set_opts,
     ST_CLI_NEUTRON_ARG("<network>", "Network to modify (name or ID)", 0), ST_CLI_NEUTRON_CMD,
     run_set},
    {"network show", "Show network details", NULL, NULL,
     ST_CLI_NEUTRON_ARG("<network>", "Network to display (name or ID)", 0), ST_CLI_NEUTRON_SHOW,
     run_show},
    {NULL, NULL, NULL, NULL, NULL, 0, NULL},
};
