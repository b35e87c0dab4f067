/* Neutron security groups: the openstack CLI's `security group create|
 * list|show|set|delete` (openstackclient network/v2/security_group.py over
 * openstacksdk). A group is a named set of rules (the rule commands are in
 * cmd_security_group_rule.c) that ports carry; a new group allows all
 * egress and no ingress, and every project has one named "default". */
#include "cmd_security_group.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "lib/cleanup.h"
#include "lib/json.h"
#include "neutron.h"

enum { GROUP_STATEFUL = 1 };

/* The SDK SecurityGroup's attributes: "project_id" is its tenant_id, the
 * rules are shown trimmed (NetworkSecurityGroupRulesColumn), the tags as
 * they are (no formatter). */
static const struct st_cli_nfield group_fields[] = {
    {"created_at", "created_at", ST_CLI_NFMT_NONE},
    {"description", "description", ST_CLI_NFMT_NONE},
    {"id", "id", ST_CLI_NFMT_NONE},
    {"name", "name", ST_CLI_NFMT_NONE},
    {"project_id", "tenant_id", ST_CLI_NFMT_NONE},
    {"revision_number", "revision_number", ST_CLI_NFMT_NONE},
    {"rules", "security_group_rules", ST_CLI_NFMT_SG_RULES},
    {"stateful", "stateful", ST_CLI_NFMT_NONE},
    {"tags", "tags", ST_CLI_NFMT_NONE},
    {"updated_at", "updated_at", ST_CLI_NFMT_NONE},
    {NULL, NULL, 0},
};

static const struct st_cli_nfield list_fields[] = {
    {"ID", "id", ST_CLI_NFMT_NONE},
    {"Name", "name", ST_CLI_NFMT_NONE},
    {"Description", "description", ST_CLI_NFMT_NONE},
    {"Project", "project_id", ST_CLI_NFMT_NONE},
    {"Tags", "tags", ST_CLI_NFMT_NONE},
};

static int run_create(struct st_cli_ctx *ctx, struct st_err **err)
{
    const char *name = ctx->args.pos[0];
    const char *description = st_cli_args_get(&ctx->args, "description");
    /* the description defaults to the name, as openstack sends it */
    st_autoptr(json_t) attrs =
        json_pack("{s:s,s:s}", "name", name, "description", description ? description : name);
    st_cli_neutron_flag_pair(ctx, attrs, "stateful", "stateful", "stateless");
    int r = st_cli_neutron_project_attr(ctx, attrs, err);
    if (r < 0)
        return r;
    return st_cli_neutron_create_show(ctx, &st_cli_kind_security_group, attrs, group_fields,
                                      ST_CLI_NEUTRON_SDK_ERRORS, err);
}

static int run_list(struct st_cli_ctx *ctx, struct st_err **err)
{
    /* the fields openstack asks for, then the filters */
    struct st_cli_neutron_query q = {0};
    static const char *const fields[] = {"id", "name", "description", "project_id", "tags"};
    for (size_t i = 0; i < ST_ARRAY_SIZE(fields); i++)
        st_cli_neutron_query_add(&q, "fields", fields[i]);
    int r = st_cli_neutron_query_project(ctx, &q, err);
    if (r < 0) {
        st_cli_neutron_query_clear(&q);
        return r;
    }
    return st_cli_neutron_list_print(ctx, &st_cli_kind_security_group, &q, list_fields,
                                     ST_ARRAY_SIZE(list_fields), err);
}

static int run_show(struct st_cli_ctx *ctx, struct st_err **err)
{
    return st_cli_neutron_run_show(ctx, &st_cli_kind_security_group, group_fields,
                                   ST_CLI_NEUTRON_SDK_ERRORS, err);
}

static int set_attrs(struct st_cli_ctx *ctx, const json_t *group, json_t *attrs, void *data,
                     struct st_err **err)
{
    (void)group;
    (void)data;
    (void)err;
    st_cli_neutron_string_option(ctx, attrs, "name", "name");
    st_cli_neutron_string_option(ctx, attrs, "description", "description");
    st_cli_neutron_flag_pair(ctx, attrs, "stateful", "stateful", "stateless");
    return 0;
}

static int run_set(struct st_cli_ctx *ctx, struct st_err **err)
{
    /* sent even when empty, as openstack does */
    return st_cli_neutron_run_set(ctx, &st_cli_kind_security_group, set_attrs, NULL,
                                  ST_CLI_NEUTRON_SEND_EMPTY, err);
}

static int run_delete(struct st_cli_ctx *ctx, struct st_err **err)
{
    return st_cli_neutron_delete_each(ctx, &st_cli_kind_security_group, "group", err);
}

/* ---- the table ---- */

#define STATEFUL_OPTIONS                                                                           \
    ST_CLI_FLAG("stateful", "Security group is stateful (Default)", GROUP_STATEFUL),               \
        ST_CLI_FLAG("stateless", "Security group is stateless", GROUP_STATEFUL)

static const struct st_cli_option create_opts[] = {
    ST_CLI_VALUE("description", "<description>", "Security group description"),
    ST_CLI_VALUE("project", "<project>", "Owner's project (name or ID)"),
    STATEFUL_OPTIONS,
    ST_CLI_VALUE("project-domain", "<project-domain>",
                 "Domain the project belongs to (name or ID). This can be used in case "
                 "collisions between project names exist."),
    ST_CLI_OPTIONS_END,
};

static const struct st_cli_option list_opts[] = {
    ST_CLI_NEUTRON_PROJECT_OPTIONS("List security groups according to the project (name or ID)"),
    ST_CLI_OPTIONS_END,
};

static const struct st_cli_option set_opts[] = {
    ST_CLI_VALUE("name", "<new-name>", "New security group name"),
    ST_CLI_VALUE("description", "<description>", "New security group description"),
    STATEFUL_OPTIONS,
    ST_CLI_OPTIONS_END,
};

const struct st_cli_command st_cli_security_group_commands[] = {
    {"security group create", "Create a new security group", NULL, create_opts,
     ST_CLI_NEUTRON_ARG("<name>", "New security group name", 0), ST_CLI_NEUTRON_SHOW, run_create},
    {"security group delete", "Delete security group(s)", NULL, NULL,
     ST_CLI_NEUTRON_ARG("<group>", "Security group(s) to delete (name or ID)", ST_CLI_ARG_MULTI),
     ST_CLI_NEUTRON_CMD, run_delete},
    {"security group list", "List security groups", NULL, list_opts, NULL, ST_CLI_NEUTRON_LIST,
     run_list},
    {"security group set", "Set security group properties", NULL, set_opts,
     ST_CLI_NEUTRON_ARG("<group>", "Security group to modify (name or ID)", 0), ST_CLI_NEUTRON_CMD,
     run_set},
    {"security group show", "Display security group details", NULL, NULL,
     ST_CLI_NEUTRON_ARG("<group>", "Security group to display (name or ID)", 0),
     ST_CLI_NEUTRON_SHOW, run_show},
    {NULL, NULL, NULL, NULL, NULL, 0, NULL},
};
