/* Project quotas: the openstack CLI's `quota show` and `quota set`
 * (openstackclient common/quota.py). show merges what each service with a
 * catalog entry says (compute always; volume and network when the catalog
 * has them) under openstack's names ("key-pairs", "secgroups"); set
 * changes the compute limits, the ones stratosd enforces at create. */
#include "cmd_quota.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "auth.h"
#include "http.h"
#include "identity.h"
#include "lib/cleanup.h"
#include "lib/json.h"
#include "services.h"

/* Nova's quota names and the option/output names openstack uses. */
static const char *const compute_quotas[][2] = {
    {"cores", "cores"},
    {"fixed_ips", "fixed-ips"},
    {"injected_file_content_bytes", "injected-file-size"},
    {"injected_file_path_bytes", "injected-path-size"},
    {"injected_files", "injected-files"},
    {"instances", "instances"},
    {"key_pairs", "key-pairs"},
    {"metadata_items", "properties"},
    {"ram", "ram"},
    {"server_groups", "server-groups"},
    {"server_group_members", "server-group-members"},
};

/* Output renames after the merge: nova-network's and Cinder's names. */
static const char *const other_renames[][2] = {
    {"floating_ips", "floating-ips"},
    {"security_group_rules", "secgroup-rules"},
    {"security_groups", "secgroups"},
    {"backup_gigabytes", "backup-gigabytes"},
    {"per_volume_gigabytes", "per-volume-gigabytes"},
};

/* Neutron's quota names as openstacksdk's Quota resource calls them. */
static const char *const network_names[][2] = {
    {"floatingip", "floating_ips"},
    {"network", "networks"},
    {"port", "ports"},
    {"rbac_policy", "rbac_policies"},
    {"router", "routers"},
    {"security_group_rule", "security_group_rules"},
    {"security_group", "security_groups"},
    {"subnetpool", "subnet_pools"},
    {"subnet", "subnets"},
};

/* The project shown: the one named (a Keystone lookup), else the token's. */
static int target_project(struct st_cli_ctx *ctx, const char *value, char **ret_id, char **ret_name,
                          struct st_err **err)
{
    if (value) {
        st_autoptr(json_t) p = NULL;
        int r = st_cli_identity_find(ctx, &st_cli_identity_projects, value, NULL, &p, err);
        if (r < 0)
            return r;
        *ret_id = st_strdup(st_cli_identity_str(p, "id"));
        *ret_name = st_strdup(st_cli_identity_str(p, "name"));
        return 0;
    }
    struct st_cli_auth *a;
    struct st_cli_http *h;
    json_t *token;
    int r = st_cli_ctx_auth(ctx, &a, err);
    if (r == 0)
        r = st_cli_ctx_http(ctx, &h, err);
    if (r == 0)
        r = st_cli_auth_token_data(a, h, &token, err);
    if (r < 0)
        return r;
    json_t *project = json_object_get(token, "project");
    if (!json_is_object(project))
        return st_err_set(err, -EINVAL, "the token is not scoped to a project: name one");
    *ret_id = st_strdup(st_cli_identity_str(project, "id"));
    *ret_name = st_strdup(st_cli_identity_str(project, "name"));
    return 0;
}

/* The URL of an optional service when the login's catalog has it (a
 * missing endpoint is skipped, as openstack's EndpointNotFound). */
static char *optional_service(struct st_cli_ctx *ctx, const char *type)
{
    struct st_cli_auth *a;
    char *url = NULL;
    if (st_cli_ctx_auth(ctx, &a, NULL) < 0 || !a->catalog ||
        st_cli_auth_service_url(a, type, &url, NULL) < 0)
        return NULL;
    return url;
}

static int get_json(struct st_cli_ctx *ctx, const char *url, json_t **ret, struct st_err **err)
{
    struct st_cli_http *h;
    int r = st_cli_ctx_http(ctx, &h, err);
    if (r < 0)
        return r;
    return st_cli_http_json(h, "GET", url, NULL, ret, err);
}

static int run_show(struct st_cli_ctx *ctx, struct st_err **err)
{
    st_autofree char *id = NULL, *name = NULL;
    int r = target_project(ctx, ctx->args.n_pos > 0 ? ctx->args.pos[0] : NULL, &id, &name, err);
    if (r < 0)
        return r;
    bool defaults = st_cli_args_flag(&ctx->args, "default");
    st_autofree char *esc = st_cli_http_escape(id);
    st_autofree char *path = st_sprintf("/os-quota-sets/%s%s", esc, defaults ? "/defaults" : "");
    st_autoptr(json_t) doc = NULL;
    r = st_cli_service_call(ctx, ST_CLI_NOVA, "GET", path, NULL, &doc, err);
    if (r < 0)
        return r;
    json_t *set = json_object_get(doc, "quota_set");
    if (!json_is_object(set))
        return st_err_set(err, -EPROTO, "invalid response to GET %s: no quota_set", path);
    st_autoptr(json_t) info = json_deep_copy(set);

    st_autofree char *volume = optional_service(ctx, "volumev3");
    if (volume) {
        st_autofree char *url = st_sprintf("%s/os-quota-sets/%s%s", volume, esc,
                                           defaults ? "/defaults" : "?usage=False");
        st_autoptr(json_t) vdoc = NULL;
        r = get_json(ctx, url, &vdoc, err);
        if (r < 0)
            return r;
        json_object_update(info, json_object_get(vdoc, "quota_set"));
    }
    st_autofree char *network = optional_service(ctx, "network");
    if (network) {
        size_t n = strlen(network);
        bool versioned = n >= 5 && strcmp(network + n - 5, "/v2.0") == 0;
        st_autofree char *url = st_sprintf("%s%s/quotas/%s%s", network, versioned ? "" : "/v2.0",
                                           esc, defaults ? "/default" : "");
        st_autoptr(json_t) ndoc = NULL;
        r = get_json(ctx, url, &ndoc, err);
        if (r < 0)
            return r;
        json_t *q = json_object_get(ndoc, "quota");
        for (size_t i = 0; i < ST_ARRAY_SIZE(network_names); i++) {
            json_t *v = json_object_get(q, network_names[i][0]);
            if (v && !json_is_null(v))
                json_object_set(info, network_names[i][1], v);
        }
    }
    for (size_t i = 0; i < ST_ARRAY_SIZE(compute_quotas) + ST_ARRAY_SIZE(other_renames); i++) {
        const char *const *pair = i < ST_ARRAY_SIZE(compute_quotas)
                                      ? compute_quotas[i]
                                      : other_renames[i - ST_ARRAY_SIZE(compute_quotas)];
        json_t *v = json_object_get(info, pair[0]);
        if (strcmp(pair[0], pair[1]) == 0 || !v || json_is_null(v))
            continue;
        json_object_set(info, pair[1], v);
        json_object_del(info, pair[0]);
    }
    if (json_object_get(info, "id")) {
        json_object_set(info, "project", json_object_get(info, "id"));
        json_object_del(info, "id");
        json_object_del(info, "project_id");
        json_object_set_new(info, "project_name", json_string(name));
    }
    return st_cli_ctx_show(ctx, info, err);
}

static int run_set(struct st_cli_ctx *ctx, struct st_err **err)
{
    st_autoptr(json_t) quota = json_object();
    for (size_t i = 0; i < ST_ARRAY_SIZE(compute_quotas); i++) {
        long v;
        int rc = st_cli_ctx_int_option(ctx, compute_quotas[i][1], 0, &v);
        if (rc)
            return rc;
        if (st_cli_args_get(&ctx->args, compute_quotas[i][1]))
            json_object_set_new(quota, compute_quotas[i][0], json_integer(v));
    }
    if (st_cli_args_flag(&ctx->args, "force"))
        json_object_set_new(quota, "force", json_true());
    st_autoptr(json_t) p = NULL;
    int r = st_cli_identity_find(ctx, &st_cli_identity_projects, ctx->args.pos[0], NULL, &p, err);
    if (r < 0 || json_object_size(quota) == 0)
        return r;
    st_autofree char *esc = st_cli_http_escape(st_cli_identity_str(p, "id"));
    st_autofree char *path = st_sprintf("/os-quota-sets/%s", esc);
    st_autoptr(json_t) body = json_pack("{s:O}", "quota_set", quota);
    return st_cli_service_call(ctx, ST_CLI_NOVA, "PUT", path, body, NULL, err);
}

/* ---- the table ---- */

static const struct st_cli_option show_opts[] = {
    ST_CLI_FLAG("default", "Show default quotas for <project>", 0),
    ST_CLI_OPTIONS_END,
};
static const struct st_cli_arg show_args[] = {
    {"<project/class>", "Show quotas for this project or class (name or ID)", ST_CLI_ARG_OPTIONAL},
    {NULL, NULL, 0},
};

#define QUOTA_OPTION(name) ST_CLI_VALUE(name, "<" name ">", "New value for the " name " quota")

static const struct st_cli_option set_opts[] = {
    QUOTA_OPTION("cores"),
    QUOTA_OPTION("fixed-ips"),
    QUOTA_OPTION("injected-file-size"),
    QUOTA_OPTION("injected-path-size"),
    QUOTA_OPTION("injected-files"),
    QUOTA_OPTION("instances"),
    QUOTA_OPTION("key-pairs"),
    QUOTA_OPTION("properties"),
    QUOTA_OPTION("ram"),
    QUOTA_OPTION("server-groups"),
    QUOTA_OPTION("server-group-members"),
    ST_CLI_FLAG("force", "Force quota update (only supported by compute and network)", 0),
    ST_CLI_OPTIONS_END,
};
static const struct st_cli_arg set_args[] = {
    {"<project/class>", "Set quotas for this project or class (name/ID)", 0},
    {NULL, NULL, 0},
};

const struct st_cli_command st_cli_quota_commands[] = {
    {"quota set", "Set quotas for project or class", NULL, set_opts, set_args, ST_CLI_CMD_AUTH,
     run_set},
    {"quota show", "Show quotas for project or class",
     "Show quotas for project or class. Specify ``--os-compute-api-version 2.50`` or higher to "
     "see ``server-groups`` and ``server-group-members`` output for a given quota class.",
     show_opts, show_args, ST_CLI_CMD_SHOW | ST_CLI_CMD_AUTH | ST_CLI_CMD_PY_STR, run_show},
    {NULL, NULL, NULL, NULL, NULL, 0, NULL},
};
