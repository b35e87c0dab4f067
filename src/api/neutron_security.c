/* Neutron's security groups and their rules (openstack-api-subset.md 5.3,
 * 5.4) as resource tables for the generic handlers. A group's create answer
 * must carry its rules as a list (the CLI prints them); rules have no update
 * in Neutron's API, only create and delete. */
#include "api/neutron-priv.h"
#include "lib/cleanup.h"

static void rule_decorate(json_t *doc)
{
    neutron_common_fields(doc);
    neutron_default(doc, "remote_address_group_id", json_null());
    neutron_default(doc, "remote_group_id", json_null());
    neutron_default(doc, "remote_ip_prefix", json_null());
    neutron_default(doc, "normalized_cidr", json_null());
    neutron_default(doc, "port_range_min", json_null());
    neutron_default(doc, "port_range_max", json_null());
    neutron_default(doc, "protocol", json_null());
}

/* ---- security groups ---- */

static const char *const group_create_attrs[] = {"name", "description", "stateful", NULL};
static const char *const group_update_attrs[] = {"name", "description", "stateful", NULL};

static void group_decorate(json_t *doc)
{
    neutron_common_fields(doc);
    neutron_default(doc, "stateful", json_true());
    if (!json_is_array(json_object_get(doc, "security_group_rules")))
        json_object_set_new(doc, "security_group_rules", json_array());
    size_t i;
    json_t *rule;
    json_array_foreach(json_object_get(doc, "security_group_rules"), i, rule) rule_decorate(rule);
}

static const struct neutron_resource group_resource = {
    .singular = "security_group",
    .plural = "security_groups",
    .param = "security_group_id",
    .not_found_type = "SecurityGroupNotFound",
    .noun = "Security group",
    .not_found_tail = "does not exist",
    .create_attrs = group_create_attrs,
    .update_attrs = group_update_attrs,
    .create = st_security_group_create,
    .get = st_security_group_get,
    .list = st_security_group_list,
    .update = st_security_group_update,
    .del = st_security_group_delete,
    .decorate = group_decorate,
};

/* ---- security group rules ---- */

static const char *const rule_create_attrs[] = {
    "security_group_id", "direction",        "ethertype",       "protocol",    "port_range_min",
    "port_range_max",    "remote_ip_prefix", "remote_group_id", "description", NULL,
};

static const struct neutron_resource rule_resource = {
    .singular = "security_group_rule",
    .plural = "security_group_rules",
    .param = "rule_id",
    .not_found_type = "SecurityGroupRuleNotFound",
    .noun = "Security group rule",
    .not_found_tail = "does not exist",
    .create_attrs = rule_create_attrs,
    .create = st_security_group_rule_create,
    .get = st_security_group_rule_get,
    .list = st_security_group_rule_list,
    .del = st_security_group_rule_delete,
    .decorate = rule_decorate,
};

static const struct st_route routes[] = {
    NEUTRON_CRUD_ROUTES("security-groups", "security_group_id", "network:security_group",
                        &group_resource),
    NEUTRON_UPDATE_ROUTE("security-groups", "security_group_id", "network:security_group",
                         &group_resource),
    NEUTRON_CRUD_ROUTES("security-group-rules", "rule_id", "network:security_group_rule",
                        &rule_resource),
};

int neutron_security_register(struct st_router *r, struct st_err **err)
{
    return st_router_add_all(r, routes, ST_ARRAY_SIZE(routes), err);
}
