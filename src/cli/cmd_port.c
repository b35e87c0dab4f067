/* Neutron ports: the openstack CLI's `port create|list|show|set|delete`
 * (openstackclient network/v2/port.py over openstacksdk). A port is a MAC
 * and fixed IPs on a network, owned by a device (a server, a router) and
 * filtered by its security groups; --fixed-ip names subnets by name or ID
 * and the CLI sends their IDs. */
#include "cmd_port.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "lib/cleanup.h"
#include "lib/json.h"
#include "neutron.h"

enum { GROUP_STATE = 1, GROUP_FIXED_IP, GROUP_SECURITY_GROUP, GROUP_PORT_SECURITY, GROUP_DEVICE };

static const struct st_cli_nfield port_fields[] = {
    {"admin_state_up", "admin_state_up", ST_CLI_NFMT_ADMIN_STATE},
    {"allowed_address_pairs", "allowed_address_pairs", ST_CLI_NFMT_LIST_DICT},
    {"binding_host_id", "binding:host_id", ST_CLI_NFMT_NONE},
    {"binding_profile", "binding:profile", ST_CLI_NFMT_DICT},
    {"binding_vif_details", "binding:vif_details", ST_CLI_NFMT_DICT},
    {"binding_vif_type", "binding:vif_type", ST_CLI_NFMT_NONE},
    {"binding_vnic_type", "binding:vnic_type", ST_CLI_NFMT_NONE},
    {"created_at", "created_at", ST_CLI_NFMT_NONE},
    {"data_plane_status", "data_plane_status", ST_CLI_NFMT_NONE},
    {"description", "description", ST_CLI_NFMT_NONE},
    {"device_id", "device_id", ST_CLI_NFMT_NONE},
    {"device_owner", "device_owner", ST_CLI_NFMT_NONE},
    {"device_profile", "device_profile", ST_CLI_NFMT_NONE},
    {"dns_assignment", "dns_assignment", ST_CLI_NFMT_LIST_DICT},
    {"dns_domain", "dns_domain", ST_CLI_NFMT_NONE},
    {"dns_name", "dns_name", ST_CLI_NFMT_NONE},
    {"extra_dhcp_opts", "extra_dhcp_opts", ST_CLI_NFMT_LIST_DICT},
    {"fixed_ips", "fixed_ips", ST_CLI_NFMT_LIST_DICT},
    {"id", "id", ST_CLI_NFMT_NONE},
    {"ip_allocation", "ip_allocation", ST_CLI_NFMT_NONE},
    {"mac_address", "mac_address", ST_CLI_NFMT_NONE},
    {"name", "name", ST_CLI_NFMT_NONE},
    {"network_id", "network_id", ST_CLI_NFMT_NONE},
    {"numa_affinity_policy", "numa_affinity_policy", ST_CLI_NFMT_NONE},
    {"port_security_enabled", "port_security_enabled", ST_CLI_NFMT_NONE},
    {"project_id", "project_id", ST_CLI_NFMT_NONE},
    {"propagate_uplink_status", "propagate_uplink_status", ST_CLI_NFMT_NONE},
    {"qos_network_policy_id", "qos_network_policy_id", ST_CLI_NFMT_NONE},
    {"qos_policy_id", "qos_policy_id", ST_CLI_NFMT_NONE},
    {"resource_request", "resource_request", ST_CLI_NFMT_NONE},
    {"revision_number", "revision_number", ST_CLI_NFMT_NONE},
    {"security_group_ids", "security_groups", ST_CLI_NFMT_LIST},
    {"status", "status", ST_CLI_NFMT_NONE},
    {"tags", "tags", ST_CLI_NFMT_LIST},
    {"trunk_details", "trunk_details", ST_CLI_NFMT_NONE},
    {"updated_at", "updated_at", ST_CLI_NFMT_NONE},
    {NULL, NULL, 0},
};

/* The first five are the default list; --long adds the rest. */
static const struct st_cli_nfield list_fields[] = {
    {"ID", "id", ST_CLI_NFMT_NONE},
    {"Name", "name", ST_CLI_NFMT_NONE},
    {"MAC Address", "mac_address", ST_CLI_NFMT_NONE},
    {"Fixed IP Addresses", "fixed_ips", ST_CLI_NFMT_LIST_DICT},
    {"Status", "status", ST_CLI_NFMT_NONE},
    {"Security Groups", "security_groups", ST_CLI_NFMT_LIST},
    {"Device Owner", "device_owner", ST_CLI_NFMT_NONE},
    {"Tags", "tags", ST_CLI_NFMT_LIST},
};

static const char *const fixed_ip_keys[] = {"subnet", "ip-address", NULL};
static const char *const filter_ip_keys[] = {"subnet", "ip-address", "ip-substring", NULL};

/* _prepare_fixed_ips: --fixed-ip subnet=<name or ID>,ip-address=<ip> as the
 * API's {"subnet_id", "ip_address"}. Returns 0 or -errno. */
static int fixed_ips(struct st_cli_ctx *ctx, json_t **ret, struct st_err **err)
{
    st_autoptr(json_t) specs = NULL;
    int rc = st_cli_neutron_multi_kv(ctx, "fixed-ip", NULL, fixed_ip_keys, &specs, err);
    if (rc != 0)
        return rc;
    return st_cli_neutron_fixed_ips(ctx, specs, true, ret, err);
}

/* The IDs of --security-group's groups, after those of `existing`. */
static int security_group_ids(struct st_cli_ctx *ctx, const json_t *existing, json_t **ret,
                              struct st_err **err)
{
    st_autoptr(json_t) ids = existing ? json_copy((json_t *)existing) : json_array();
    char *const *groups;
    size_t n = st_cli_args_all(&ctx->args, "security-group", &groups);
    for (size_t i = 0; i < n; i++) {
        st_autofree char *id = NULL;
        int r = st_cli_neutron_find_id(ctx, &st_cli_kind_security_group, groups[i], &id, err);
        if (r < 0)
            return r;
        json_array_append_new(ids, json_string(id));
    }
    *ret = st_steal(&ids);
    return 0;
}

/* _get_attrs: what create and set share, in openstack's order. */
static int port_attrs(struct st_cli_ctx *ctx, json_t *attrs, const char *name,
                      const char *network_id, struct st_err **err)
{
    st_cli_neutron_string_option(ctx, attrs, "description", "description");
    st_cli_neutron_string_option(ctx, attrs, "device_id", "device");
    st_cli_neutron_string_option(ctx, attrs, "device_owner", "device-owner");
    /* --enable is create's default: the SDK sends admin_state_up either way */
    if (network_id)
        json_object_set_new(attrs, "admin_state_up", json_true());
    st_cli_neutron_flag_pair(ctx, attrs, "admin_state_up", "enable", "disable");
    st_cli_neutron_string_option(ctx, attrs, "binding:vnic_type", "vnic-type");
    st_cli_neutron_string_option(ctx, attrs, "binding:host_id", "host");
    st_cli_neutron_string_option(ctx, attrs, "mac_address", "mac-address");
    st_cli_neutron_string_option(ctx, attrs, "dns_domain", "dns-domain");
    st_cli_neutron_string_option(ctx, attrs, "dns_name", "dns-name");
    if (name)
        json_object_set_new(attrs, "name", json_string(name));
    if (network_id)
        json_object_set_new(attrs, "network_id", json_string(network_id));
    int r = st_cli_neutron_project_attr(ctx, attrs, err);
    if (r < 0)
        return r;
    st_cli_neutron_flag_pair(ctx, attrs, "port_security_enabled", "enable-port-security",
                             "disable-port-security");
    return 0;
}

static int run_create(struct st_cli_ctx *ctx, struct st_err **err)
{
    const struct st_cli_args *a = &ctx->args;
    st_autofree char *network_id = NULL;
    int r = st_cli_neutron_find_id(ctx, &st_cli_kind_network, st_cli_args_get(a, "network"),
                                   &network_id, err);
    if (r < 0)
        return r;
    st_autoptr(json_t) ips = NULL;
    r = fixed_ips(ctx, &ips, err);
    if (r != 0)
        return r;
    st_autoptr(json_t) attrs = json_object();
    r = port_attrs(ctx, attrs, a->pos[0], network_id, err);
    if (r < 0)
        return r;
    if (json_array_size(ips) > 0)
        json_object_set(attrs, "fixed_ips", ips);
    else if (st_cli_args_flag(a, "no-fixed-ip"))
        json_object_set_new(attrs, "fixed_ips", json_array());
    if (st_cli_args_flag(a, "security-group")) {
        st_autoptr(json_t) ids = NULL;
        r = security_group_ids(ctx, NULL, &ids, err);
        if (r < 0)
            return r;
        json_object_set(attrs, "security_groups", ids);
    } else if (st_cli_args_flag(a, "no-security-group")) {
        json_object_set_new(attrs, "security_groups", json_array());
    }
    return st_cli_neutron_create_show(ctx, &st_cli_kind_port, attrs, port_fields, 0, err);
}

static int run_list(struct st_cli_ctx *ctx, struct st_err **err)
{
    const struct st_cli_args *a = &ctx->args;
    struct st_cli_neutron_query q = {0};
    st_autoptr(json_t) specs = NULL;
    int r = st_cli_neutron_multi_kv(ctx, "fixed-ip", NULL, filter_ip_keys, &specs, err);
    if (r != 0)
        return r;
    st_cli_neutron_query_option(ctx, &q, "device_owner", "device-owner");
    st_cli_neutron_query_option(ctx, &q, "device_id", "device-id");
    /* --router, --server and --device-id exclude each other */
    bool router = st_cli_args_get(a, "router") != NULL;
    if ((r = st_cli_neutron_query_id(ctx, &q, "device_id", router ? "router" : "server",
                                     router ? &st_cli_kind_router : &st_cli_kind_server, err)) < 0)
        goto out;
    st_cli_neutron_query_option(ctx, &q, "binding:host_id", "host");
    r = st_cli_neutron_query_id(ctx, &q, "network_id", "network", &st_cli_kind_network, err);
    if (r < 0)
        goto out;
    st_cli_neutron_query_option(ctx, &q, "mac_address", "mac-address");
    if ((r = st_cli_neutron_query_project(ctx, &q, err)) < 0)
        goto out;
    st_cli_neutron_query_option(ctx, &q, "name", "name");
    size_t i;
    json_t *spec;
    json_array_foreach(specs, i, spec)
    {
        /* _prepare_filter_fixed_ips: fixed_ips=subnet_id=<id> and kin */
        if (*st_cli_str(spec, "subnet")) {
            st_autofree char *id = NULL;
            r = st_cli_neutron_find_id(ctx, &st_cli_kind_subnet, st_cli_str(spec, "subnet"), &id,
                                       err);
            if (r < 0)
                goto out;
            st_autofree char *f = st_sprintf("subnet_id=%s", id);
            st_cli_neutron_query_add(&q, "fixed_ips", f);
        }
        if (json_object_get(spec, "ip-address")) {
            st_autofree char *f = st_sprintf("ip_address=%s", st_cli_str(spec, "ip-address"));
            st_cli_neutron_query_add(&q, "fixed_ips", f);
        }
        if (json_object_get(spec, "ip-substring")) {
            st_autofree char *f =
                st_sprintf("ip_address_substr=%s", st_cli_str(spec, "ip-substring"));
            st_cli_neutron_query_add(&q, "fixed_ips", f);
        }
    }
    char *const *groups;
    size_t n = st_cli_args_all(a, "security-group", &groups);
    for (i = 0; i < n; i++)
        st_cli_neutron_query_add(&q, "security_groups", groups[i]);
    return st_cli_neutron_list_print(ctx, &st_cli_kind_port, &q, list_fields,
                                     st_cli_args_flag(a, "long") ? ST_ARRAY_SIZE(list_fields) : 5,
                                     err);
out:
    st_cli_neutron_query_clear(&q);
    return r;
}

static int run_show(struct st_cli_ctx *ctx, struct st_err **err)
{
    return st_cli_neutron_run_show(ctx, &st_cli_kind_port, port_fields, 0, err);
}

/* set's changes of port; data is --fixed-ip's (found before the port). */
static int set_attrs(struct st_cli_ctx *ctx, const json_t *port, json_t *attrs, void *data,
                     struct st_err **err)
{
    const struct st_cli_args *a = &ctx->args;
    json_t *ips = data;
    int r = port_attrs(ctx, attrs, st_cli_args_get(a, "name"), NULL, err);
    if (r < 0)
        return r;
    /* new fixed IPs and groups add to the port's, unless --no-... cleared them */
    if (st_cli_args_flag(a, "no-fixed-ip"))
        json_object_set_new(attrs, "fixed_ips", json_array());
    if (json_array_size(ips) > 0) {
        json_t *all = json_object_get(attrs, "fixed_ips");
        if (!all) {
            all = json_array();
            json_object_set_new(attrs, "fixed_ips", all);
            size_t i;
            json_t *ip;
            json_array_foreach(json_object_get(port, "fixed_ips"), i,
                               ip) if (st_cli_neutron_truthy(ip)) json_array_append(all, ip);
        }
        json_array_extend(all, ips);
    }
    if (st_cli_args_flag(a, "no-security-group"))
        json_object_set_new(attrs, "security_groups", json_array());
    if (st_cli_args_flag(a, "security-group")) {
        json_t *existing = json_object_get(attrs, "security_groups");
        if (!existing)
            existing = json_object_get(port, "security_groups");
        st_autoptr(json_t) ids = NULL;
        r = security_group_ids(ctx, json_is_array(existing) ? existing : NULL, &ids, err);
        if (r < 0)
            return r;
        json_object_set(attrs, "security_groups", ids);
    }
    return 0;
}

static int run_set(struct st_cli_ctx *ctx, struct st_err **err)
{
    st_autoptr(json_t) ips = NULL;
    int r = fixed_ips(ctx, &ips, err);
    if (r != 0)
        return r;
    return st_cli_neutron_run_set(ctx, &st_cli_kind_port, set_attrs, ips, 0, err);
}

static int run_delete(struct st_cli_ctx *ctx, struct st_err **err)
{
    return st_cli_neutron_delete_each(ctx, &st_cli_kind_port, "port", err);
}

/* ---- the table ---- */

static const char *const vnic_types[] = {"direct", "direct-physical", "macvtap",
                                         "normal", "baremetal",       "virtio-forwarder",
                                         "vdpa",   "remote-managed",  NULL};

#define UPDATABLE_OPTIONS                                                                          \
    ST_CLI_VALUE("description", "<description>", "Description of this port"),                      \
        ST_CLI_VALUE("device", "<device-id>", "Port device ID"),                                   \
        ST_CLI_VALUE("mac-address", "<mac-address>", "MAC address of this port (admin only)"),     \
        ST_CLI_VALUE("device-owner", "<device-owner>",                                             \
                     "Device owner of this port. This is the entity that uses the port (for "      \
                     "example, network:dhcp)."),                                                   \
        {"vnic-type",                                                                              \
         0,                                                                                        \
         ST_CLI_OPT_VALUE,                                                                         \
         "<vnic-type>",                                                                            \
         "VNIC type for this port (direct | direct-physical | macvtap | normal | baremetal | "     \
         "virtio-forwarder | vdpa | remote-managed, default: normal)",                             \
         vnic_types,                                                                               \
         false,                                                                                    \
         0},                                                                                       \
        ST_CLI_VALUE("host", "<host-id>", "Allocate port on host <host-id> (ID only)"),            \
        ST_CLI_VALUE("dns-domain", "dns-domain",                                                   \
                     "Set DNS domain to this port (requires dns_domain extension for ports)"),     \
        ST_CLI_VALUE("dns-name", "<dns-name>",                                                     \
                     "Set DNS name for this port (requires DNS integration extension)")

#define FIXED_IP_OPTION(group)                                                                     \
    {                                                                                              \
        "fixed-ip", 0, ST_CLI_OPT_APPEND, "subnet=<subnet>,ip-address=<ip-address>",               \
            "Desired IP and/or subnet for this port (name or ID): "                                \
            "subnet=<subnet>,ip-address=<ip-address> "                                             \
            "(repeat option to set multiple fixed IP addresses)",                                  \
            NULL, false, group                                                                     \
    }

#define SECURITY_GROUP_OPTION(group)                                                               \
    {                                                                                              \
        "security-group", 0, ST_CLI_OPT_APPEND, "<security-group>",                                \
            "Security group to associate with this port (name or ID) (repeat option to set "       \
            "multiple "                                                                            \
            "security groups)",                                                                    \
            NULL, false, group                                                                     \
    }

#define PORT_SECURITY_OPTIONS(on_help)                                                             \
    ST_CLI_FLAG("enable-port-security", on_help, GROUP_PORT_SECURITY),                             \
        ST_CLI_FLAG("disable-port-security", "Disable port security for this port",                \
                    GROUP_PORT_SECURITY)

static const struct st_cli_option create_opts[] = {
    {"network", 0, ST_CLI_OPT_VALUE, "<network>", "Network this port belongs to (name or ID)", NULL,
     true, 0},
    UPDATABLE_OPTIONS,
    FIXED_IP_OPTION(GROUP_FIXED_IP),
    ST_CLI_FLAG("no-fixed-ip", "No IP or subnet for this port.", GROUP_FIXED_IP),
    ST_CLI_FLAG("enable", "Enable port (default)", GROUP_STATE),
    ST_CLI_FLAG("disable", "Disable port", GROUP_STATE),
    ST_CLI_NEUTRON_PROJECT_OPTIONS("Owner's project (name or ID)"),
    SECURITY_GROUP_OPTION(GROUP_SECURITY_GROUP),
    ST_CLI_FLAG("no-security-group", "Associate no security groups with this port",
                GROUP_SECURITY_GROUP),
    PORT_SECURITY_OPTIONS("Enable port security for this port (Default)"),
    ST_CLI_OPTIONS_END,
};

static const struct st_cli_option list_opts[] = {
    ST_CLI_VALUE("device-owner", "<device-owner>",
                 "List only ports with the specified device owner. This is the entity that uses "
                 "the port (for example, network:dhcp)."),
    ST_CLI_VALUE("host", "<host-id>", "List only ports bound to this host ID"),
    ST_CLI_VALUE("network", "<network>", "List only ports connected to this network (name or ID)"),
    {"router", 0, ST_CLI_OPT_VALUE, "<router>",
     "List only ports attached to this router (name or ID)", NULL, false, GROUP_DEVICE},
    {"server", 0, ST_CLI_OPT_VALUE, "<server>",
     "List only ports attached to this server (name or ID)", NULL, false, GROUP_DEVICE},
    {"device-id", 0, ST_CLI_OPT_VALUE, "<device-id>",
     "List only ports with the specified device ID", NULL, false, GROUP_DEVICE},
    ST_CLI_VALUE("mac-address", "<mac-address>", "List only ports with this MAC address"),
    ST_CLI_FLAG("long", "List additional fields in output", 0),
    ST_CLI_NEUTRON_PROJECT_OPTIONS("List ports according to their project (name or ID)"),
    ST_CLI_VALUE("name", "<name>", "List ports according to their name"),
    ST_CLI_APPEND("security-group", "<security-group>",
                  "List only ports associated with this security group"),
    ST_CLI_APPEND("fixed-ip", "subnet=<subnet>,ip-address=<ip-address>,ip-substring=<ip-substring>",
                  "Desired IP and/or subnet for filtering ports (name or ID): "
                  "subnet=<subnet>,ip-address=<ip-address>,ip-substring=<ip-substring> (repeat "
                  "option to set multiple fixed IP addresses)"),
    ST_CLI_OPTIONS_END,
};

static const struct st_cli_option set_opts[] = {
    UPDATABLE_OPTIONS,
    ST_CLI_FLAG("enable", "Enable port", GROUP_STATE),
    ST_CLI_FLAG("disable", "Disable port", GROUP_STATE),
    ST_CLI_VALUE("name", "<name>", "Set port name"),
    FIXED_IP_OPTION(0),
    ST_CLI_FLAG("no-fixed-ip",
                "Clear existing information of fixed IP addresses.Specify both --fixed-ip and "
                "--no-fixed-ip to overwrite the current fixed IP addresses.",
                0),
    SECURITY_GROUP_OPTION(0),
    ST_CLI_FLAG("no-security-group", "Clear existing security groups associated with this port", 0),
    PORT_SECURITY_OPTIONS("Enable port security for this port"),
    ST_CLI_OPTIONS_END,
};

const struct st_cli_command st_cli_port_commands[] = {
    {"port create", "Create a new port", NULL, create_opts,
     ST_CLI_NEUTRON_ARG("<name>", "Name of this port", 0), ST_CLI_NEUTRON_SHOW, run_create},
    {"port delete", "Delete port(s)", NULL, NULL,
     ST_CLI_NEUTRON_ARG("<port>", "Port(s) to delete (name or ID)", ST_CLI_ARG_MULTI),
     ST_CLI_NEUTRON_CMD, run_delete},
    {"port list", "List ports", NULL, list_opts, NULL, ST_CLI_NEUTRON_LIST, run_list},
    {"port set", "Set port properties", NULL, set_opts,
     ST_CLI_NEUTRON_ARG("<port>", "Port to modify (name or ID)", 0), ST_CLI_NEUTRON_CMD, run_set},
    {"port show", "Display port details", NULL, NULL,
     ST_CLI_NEUTRON_ARG("<port>", "Port to display (name or ID)", 0), ST_CLI_NEUTRON_SHOW,
     run_show},
    {NULL, NULL, NULL, NULL, NULL, 0, NULL},
};
