/* Neutron's layer 2: networks, subnets and ports (openstack-api-subset.md
 * 5.1, 5.2). Each is a resource table for the generic handlers: the
 * attributes a request may carry, which of them only an admin may set
 * (shared and external networks, provider attributes), Neutron's not-found
 * wording, and the fields the clients print that the service does not keep
 * (a subnet's allocation_pools and host_routes must be lists: the CLI
 * iterates them). */
#include "api/neutron-priv.h"
#include "lib/cleanup.h"

/* A list attribute the CLI iterates: [] when the service left it out or null. */
static void ensure_list(json_t *doc, const char *key)
{
    if (!json_is_array(json_object_get(doc, key)))
        json_object_set_new(doc, key, json_array());
}

/* ---- networks ---- */

static const char *const network_create_attrs[] = {
    "name",
    "admin_state_up",
    "shared",
    "router:external",
    "mtu",
    "description",
    "port_security_enabled",
    "provider:network_type",
    "provider:physical_network",
    "provider:segmentation_id",
    NULL,
};

static const char *const network_update_attrs[] = {
    "name",        "admin_state_up",        "shared", "router:external", "mtu",
    "description", "port_security_enabled", NULL,
};

static const struct neutron_admin_attr network_admin_attrs[] = {
    {"shared", true},
    {"router:external", true},
    {"provider:network_type", false},
    {"provider:physical_network", false},
    {"provider:segmentation_id", false},
    {NULL, false},
};

static void network_decorate(json_t *doc)
{
    neutron_common_fields(doc);
    ensure_list(doc, "subnets");
    neutron_default(doc, "availability_zone_hints", json_array());
    neutron_default(doc, "availability_zones", json_pack("[s]", "nova"));
    neutron_default(doc, "ipv4_address_scope", json_null());
    neutron_default(doc, "ipv6_address_scope", json_null());
    neutron_default(doc, "is_default", json_false());
    neutron_default(doc, "qos_policy_id", json_null());
    neutron_default(doc, "dns_domain", json_string(""));
    neutron_default(doc, "l2_adjacency", json_true());
}

static const struct neutron_resource network_resource = {
    .singular = "network",
    .plural = "networks",
    .param = "network_id",
    .not_found_type = "NetworkNotFound",
    .noun = "Network",
    .not_found_tail = "could not be found.",
    .create_attrs = network_create_attrs,
    .update_attrs = network_update_attrs,
    .admin_attrs = network_admin_attrs,
    .create = st_network_create,
    .get = st_network_get,
    .list = st_network_list,
    .update = st_network_update,
    .del = st_network_delete,
    .decorate = network_decorate,
};

/* ---- subnets ---- */

static const char *const subnet_create_attrs[] = {
    "name",        "network_id",       "cidr",        "ip_version",  "gateway_ip",
    "description", "allocation_pools", "host_routes", "enable_dhcp", "dns_nameservers",
    NULL,
};

static const char *const subnet_update_attrs[] = {
    "name",        "gateway_ip",  "description",     "allocation_pools",
    "host_routes", "enable_dhcp", "dns_nameservers", NULL,
};

static void subnet_decorate(json_t *doc)
{
    neutron_common_fields(doc);
    ensure_list(doc, "allocation_pools");
    ensure_list(doc, "host_routes");
    ensure_list(doc, "dns_nameservers");
    ensure_list(doc, "service_types");
    neutron_default(doc, "ipv6_address_mode", json_null());
    neutron_default(doc, "ipv6_ra_mode", json_null());
    neutron_default(doc, "subnetpool_id", json_null());
    neutron_default(doc, "segment_id", json_null());
    neutron_default(doc, "dns_publish_fixed_ip", json_null());
}

static const struct neutron_resource subnet_resource = {
    .singular = "subnet",
    .plural = "subnets",
    .param = "subnet_id",
    .not_found_type = "SubnetNotFound",
    .noun = "Subnet",
    .not_found_tail = "could not be found.",
    .create_attrs = subnet_create_attrs,
    .update_attrs = subnet_update_attrs,
    .create = st_subnet_create,
    .get = st_subnet_get,
    .list = st_subnet_list,
    .update = st_subnet_update,
    .del = st_subnet_delete,
    .decorate = subnet_decorate,
};

/* ---- ports ---- */

static const char *const port_create_attrs[] = {
    "network_id",
    "name",
    "fixed_ips",
    "mac_address",
    "device_id",
    "device_owner",
    "security_groups",
    "port_security_enabled",
    "admin_state_up",
    "description",
    NULL,
};

static const char *const port_update_attrs[] = {
    "name",      "security_groups", "port_security_enabled", "admin_state_up",
    "device_id", "device_owner",    "description",           NULL,
};

static void port_decorate(json_t *doc)
{
    neutron_common_fields(doc);
    ensure_list(doc, "fixed_ips");
    ensure_list(doc, "security_groups");
    ensure_list(doc, "allowed_address_pairs");
    ensure_list(doc, "extra_dhcp_opts");
    neutron_default(doc, "binding:vnic_type", json_string("normal"));
    neutron_default(doc, "binding:profile", json_object());
    neutron_default(doc, "binding:vif_details", json_object());
    neutron_default(doc, "qos_policy_id", json_null());
    neutron_default(doc, "qos_network_policy_id", json_null());
    neutron_default(doc, "ip_allocation", json_string("immediate"));
    neutron_default(doc, "resource_request", json_null());
}

static const struct neutron_resource port_resource = {
    .singular = "port",
    .plural = "ports",
    .param = "port_id",
    .not_found_type = "PortNotFound",
    .noun = "Port",
    .not_found_tail = "could not be found.",
    .create_attrs = port_create_attrs,
    .update_attrs = port_update_attrs,
    .create = st_port_create,
    .get = st_port_get,
    .list = st_port_list,
    .update = st_port_update,
    .del = st_port_delete,
    .decorate = port_decorate,
};

static const struct st_route routes[] = {
    NEUTRON_CRUD_ROUTES("networks", "network_id", "network:network", &network_resource),
    NEUTRON_UPDATE_ROUTE("networks", "network_id", "network:network", &network_resource),
    NEUTRON_CRUD_ROUTES("subnets", "subnet_id", "network:subnet", &subnet_resource),
    NEUTRON_UPDATE_ROUTE("subnets", "subnet_id", "network:subnet", &subnet_resource),
    NEUTRON_CRUD_ROUTES("ports", "port_id", "network:port", &port_resource),
    NEUTRON_UPDATE_ROUTE("ports", "port_id", "network:port", &port_resource),
};

int neutron_networks_register(struct st_router *r, struct st_err **err)
{
    return st_router_add_all(r, routes, ST_ARRAY_SIZE(routes), err);
}
