/* Nova flavors: the openstack CLI's `flavor` commands (openstackclient
 * compute/v2/flavor.py over openstacksdk) with their options, requests and
 * output: the SDK's lookups, extra specs shown as "properties", access
 * lists of private flavors. Only microversion 2.1 is spoken, as stratosd
 * serves it, so the options that need more fail as openstack's do. */
#include "cmd_flavor.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "http.h"
#include "identity.h"
#include "lib/cleanup.h"
#include "lib/json.h"
#include "output.h"
#include "services.h"

enum { GROUP_PUBLIC = 1 };

#define SHOW (ST_CLI_CMD_SHOW | ST_CLI_CMD_AUTH | ST_CLI_CMD_PY_STR)
#define LIST (ST_CLI_CMD_LIST | ST_CLI_CMD_AUTH | ST_CLI_CMD_PY_STR)

/* The fields openstack shows for a flavor at 2.1 (the SDK resource's,
 * renamed back to Nova's names), with extra_specs as "properties"; an
 * absent field shows as None. */
static json_t *flavor_view(const json_t *flavor, json_t *extra_specs)
{
    static const char *const fields[] = {
        "OS-FLV-DISABLED:disabled",
        "OS-FLV-EXT-DATA:ephemeral",
        "description",
        "disk",
        "id",
        "name",
        "os-flavor-access:is_public",
        "ram",
        "rxtx_factor",
        "swap",
        "vcpus",
    };
    json_t *v = json_object();
    for (size_t i = 0; i < ST_ARRAY_SIZE(fields); i++) {
        json_t *f = json_object_get(flavor, fields[i]);
        json_object_set_new(v, fields[i], f ? json_incref(f) : json_null());
    }
    json_t *specs = extra_specs ? extra_specs : json_object_get(flavor, "extra_specs");
    st_autoptr(json_t) empty = json_object();
    json_object_set_new(v, "properties", st_cli_dict_column(specs ? specs : empty));
    return v;
}

static bool flavor_is_public(const json_t *flavor)
{
    return !json_is_false(json_object_get(flavor, "os-flavor-access:is_public"));
}

/* GET /flavors/{id}/os-extra_specs: the SDK's get_extra_specs. */
static int extra_specs(struct st_cli_ctx *ctx, const json_t *flavor, json_t **ret,
                       struct st_err **err)
{
    st_autofree char *path = st_cli_object_path(&st_cli_kind_flavor, flavor, "/os-extra_specs");
    st_autoptr(json_t) doc = NULL;
    int r = st_cli_service_call(ctx, ST_CLI_NOVA_SDK, "GET", path, NULL, &doc, err);
    if (r < 0)
        return r;
    json_t *specs = json_object_get(doc, "extra_specs");
    *ret = json_is_object(specs) ? json_incref(specs) : json_object();
    return 0;
}

static int find_flavor(struct st_cli_ctx *ctx, const char *value, json_t **ret_flavor,
                       json_t **ret_specs, struct st_err **err)
{
    st_autoptr(json_t) flavor = NULL;
    int r = st_cli_find(ctx, &st_cli_kind_flavor, value, &flavor, err);
    if (r == 0 && ret_specs)
        r = extra_specs(ctx, flavor, ret_specs, err);
    if (r == 0)
        *ret_flavor = st_steal(&flavor);
    return r;
}

static int project_id(struct st_cli_ctx *ctx, char **ret, struct st_err **err)
{
    st_autoptr(json_t) p = NULL;
    int r = st_cli_identity_find_lenient(ctx, &st_cli_identity_projects,
                                         st_cli_args_get(&ctx->args, "project"),
                                         st_cli_args_get(&ctx->args, "project-domain"), &p, err);
    if (r == 0)
        *ret = st_strdup(st_cli_identity_str(p, "id"));
    return r;
}

/* os-flavor-access: addTenantAccess / removeTenantAccess for --project. */
static int tenant_access(struct st_cli_ctx *ctx, const json_t *flavor, const char *action,
                         struct st_err **err)
{
    st_autofree char *pid = NULL;
    int r = project_id(ctx, &pid, err);
    if (r < 0)
        return r;
    st_autofree char *path = st_cli_object_path(&st_cli_kind_flavor, flavor, "/action");
    st_autoptr(json_t) body = json_pack("{s:{s:s}}", action, "tenant", pid);
    return st_cli_service_call(ctx, ST_CLI_NOVA_SDK, "POST", path, body, NULL, err);
}

static int description_unsupported(struct st_cli_ctx *ctx, struct st_err **err)
{
    if (!st_cli_args_get(&ctx->args, "description"))
        return 0;
    return st_err_set(err, -EOPNOTSUPP,
                      "The --description parameter requires server support for API "
                      "microversion 2.55");
}

/* ---- create ---- */

static int run_create(struct st_cli_ctx *ctx, struct st_err **err)
{
    const struct st_cli_args *a = &ctx->args;
    long ram, disk, ephemeral, swap, vcpus;
    int rc;
    if ((rc = st_cli_ctx_int_option(ctx, "ram", 256, &ram)) != 0 ||
        (rc = st_cli_ctx_int_option(ctx, "disk", 0, &disk)) != 0 ||
        (rc = st_cli_ctx_int_option(ctx, "ephemeral", 0, &ephemeral)) != 0 ||
        (rc = st_cli_ctx_int_option(ctx, "swap", 0, &swap)) != 0 ||
        (rc = st_cli_ctx_int_option(ctx, "vcpus", 1, &vcpus)) != 0)
        return rc;
    double rxtx = 1.0;
    const char *rx = st_cli_args_get(a, "rxtx-factor");
    if (rx) {
        char *end = NULL;
        rxtx = strtod(rx, &end);
        if (end == rx || *end || !isfinite(rxtx))
            return st_cli_ctx_usage_error(ctx, "argument --rxtx-factor: invalid float value: '%s'",
                                          rx);
    }
    bool is_public = !st_cli_args_flag(a, "private");
    if (st_cli_args_get(a, "project") && is_public)
        return st_err_set(err, -EINVAL, "--project is only allowed with --private");
    int r = description_unsupported(ctx, err);
    if (r < 0)
        return r;
    st_autoptr(json_t) props = json_object();
    r = st_cli_key_values(ctx, "property", props, err);
    if (r < 0)
        return r;

    /* the SDK's body: an absent --id is sent as null (Nova picks one) */
    const char *id = st_cli_args_get(a, "id");
    st_autoptr(json_t) body = json_pack(
        "{s:{s:s,s:I,s:I,s:I,s:o,s:I,s:I,s:f,s:b}}", "flavor", "name", a->pos[0], "ram",
        (json_int_t)ram, "vcpus", (json_int_t)vcpus, "disk", (json_int_t)disk, "id",
        id ? json_string(id) : json_null(), "swap", (json_int_t)swap, "OS-FLV-EXT-DATA:ephemeral",
        (json_int_t)ephemeral, "rxtx_factor", rxtx, "os-flavor-access:is_public", is_public);
    st_autoptr(json_t) doc = NULL;
    r = st_cli_service_call(ctx, ST_CLI_NOVA_SDK, "POST", "/flavors", body, &doc, err);
    if (r < 0)
        return r;
    json_t *flavor = json_object_get(doc, "flavor");
    if (!json_is_object(flavor))
        return st_err_set(err, -EPROTO, "invalid response to POST /flavors: no flavor object");

    /* the flavor exists now: later steps only warn, as openstack's do */
    if (st_cli_args_get(a, "project")) {
        st_autoptr(st_err) e = NULL;
        if (tenant_access(ctx, flavor, "addTenantAccess", &e) < 0)
            fprintf(ctx->err, "Failed to add project %s access to flavor: %s\n",
                    st_cli_args_get(a, "project"), st_err_msg(e));
    }
    st_autoptr(json_t) specs = NULL;
    if (json_object_size(props) > 0) {
        st_autofree char *path = st_cli_object_path(&st_cli_kind_flavor, flavor, "/os-extra_specs");
        st_autoptr(json_t) sbody = json_pack("{s:O}", "extra_specs", props);
        st_autoptr(json_t) sdoc = NULL;
        st_autoptr(st_err) e = NULL;
        if (st_cli_service_call(ctx, ST_CLI_NOVA_SDK, "POST", path, sbody, &sdoc, &e) < 0)
            fprintf(ctx->err, "Failed to set flavor properties: %s\n", st_err_msg(e));
        else if (json_is_object(json_object_get(sdoc, "extra_specs")))
            specs = json_incref(json_object_get(sdoc, "extra_specs"));
    }
    st_autoptr(json_t) view = flavor_view(flavor, specs);
    return st_cli_ctx_show(ctx, view, err);
}

/* ---- list ---- */

static const struct st_cli_column list_cols[] = {
    {"ID", "id"},
    {"Name", "name"},
    {"RAM", "ram"},
    {"Disk", "disk"},
    {"Ephemeral", "OS-FLV-EXT-DATA:ephemeral"},
    {"VCPUs", "vcpus"},
    {"Is Public", "os-flavor-access:is_public"},
    {"Swap", "swap"},
    {"RXTX Factor", "rxtx_factor"},
    {"Properties", "properties"},
};

static int run_list(struct st_cli_ctx *ctx, struct st_err **err)
{
    const struct st_cli_args *a = &ctx->args;
    long min_disk, min_ram, limit;
    int rc;
    if ((rc = st_cli_ctx_int_option(ctx, "min-disk", 0, &min_disk)) != 0 ||
        (rc = st_cli_ctx_int_option(ctx, "min-ram", 0, &min_ram)) != 0 ||
        (rc = st_cli_ctx_int_option(ctx, "limit", 0, &limit)) != 0)
        return rc;
    /* is_public is ternary: None lists both */
    const char *is_public = st_cli_args_flag(a, "all")       ? "None"
                            : st_cli_args_flag(a, "private") ? "False"
                                                             : "True";
    char *buf = NULL;
    size_t len;
    FILE *f = open_memstream(&buf, &len);
    if (!f)
        abort();
    fprintf(f, "/flavors/detail?is_public=%s", is_public);
    if (limit)
        fprintf(f, "&limit=%ld", limit);
    if (st_cli_args_get(a, "marker")) {
        st_autofree char *m = st_cli_http_escape(st_cli_args_get(a, "marker"));
        fprintf(f, "&marker=%s", m);
    }
    if (min_disk)
        fprintf(f, "&minDisk=%ld", min_disk);
    if (min_ram)
        fprintf(f, "&minRam=%ld", min_ram);
    fclose(f);
    st_autofree char *path = buf;

    st_autoptr(json_t) doc = NULL;
    int r = st_cli_service_call(ctx, ST_CLI_NOVA_SDK, "GET", path, NULL, &doc, err);
    if (r < 0)
        return r;
    json_t *flavors = json_object_get(doc, "flavors");
    if (!json_is_array(flavors))
        return st_err_set(err, -EPROTO, "invalid response to GET %s: no \"flavors\" list", path);
    bool is_long = st_cli_args_flag(a, "long");
    st_autoptr(json_t) rows = json_array();
    size_t i;
    json_t *flavor;
    json_array_foreach(flavors, i, flavor)
    {
        json_t *row = json_deep_copy(flavor);
        json_array_append_new(rows, row);
        if (!is_long)
            continue;
        /* extra specs are not in a 2.1 flavor: one call each, as the SDK
         * does (only when the Properties column is shown) */
        json_t *specs = json_object_get(flavor, "extra_specs");
        st_autoptr(json_t) fetched = NULL;
        if (!json_is_object(specs) || json_object_size(specs) == 0) {
            r = extra_specs(ctx, flavor, &fetched, err);
            if (r < 0)
                return r;
            specs = fetched;
        }
        json_object_set_new(row, "properties", st_cli_dict_column(specs));
    }
    return st_cli_ctx_list(ctx, list_cols, is_long ? 10 : 7, rows, err);
}

/* ---- show ---- */

static int run_show(struct st_cli_ctx *ctx, struct st_err **err)
{
    st_autoptr(json_t) flavor = NULL;
    st_autoptr(json_t) specs = NULL;
    int r = find_flavor(ctx, ctx->args.pos[0], &flavor, &specs, err);
    if (r < 0)
        return r;
    st_autoptr(json_t) view = flavor_view(flavor, specs);
    json_object_set_new(view, "access_project_ids", json_null());
    if (!flavor_is_public(flavor)) {
        st_autofree char *path =
            st_cli_object_path(&st_cli_kind_flavor, flavor, "/os-flavor-access");
        st_autoptr(json_t) doc = NULL;
        st_autoptr(st_err) e = NULL;
        if (st_cli_service_call(ctx, ST_CLI_NOVA_SDK, "GET", path, NULL, &doc, &e) < 0) {
            fprintf(ctx->err, "Failed to get access projects list for flavor '%s': %s\n",
                    ctx->args.pos[0], st_err_msg(e));
        } else {
            json_t *ids = json_array();
            size_t i;
            json_t *acc;
            json_array_foreach(json_object_get(doc, "flavor_access"), i, acc)
                json_array_append(ids, json_object_get(acc, "tenant_id"));
            json_object_set_new(view, "access_project_ids", ids);
        }
    }
    return st_cli_ctx_show(ctx, view, err);
}

/* ---- set / unset ---- */

static int run_set(struct st_cli_ctx *ctx, struct st_err **err)
{
    const struct st_cli_args *a = &ctx->args;
    st_autoptr(json_t) flavor = NULL;
    st_autoptr(json_t) specs = NULL;
    int r = find_flavor(ctx, a->pos[0], &flavor, &specs, err);
    if (r < 0)
        return r;
    r = description_unsupported(ctx, err);
    if (r < 0)
        return r;
    st_autoptr(json_t) props = json_object();
    r = st_cli_key_values(ctx, "property", props, err);
    if (r < 0)
        return r;
    size_t failed = 0;
    if (st_cli_args_flag(a, "no-property")) {
        const char *key;
        json_t *v;
        json_object_foreach(specs, key, v)
        {
            st_autofree char *k = st_cli_http_escape(key);
            st_autofree char *suffix = st_sprintf("/os-extra_specs/%s", k);
            st_autofree char *path = st_cli_object_path(&st_cli_kind_flavor, flavor, suffix);
            st_autoptr(st_err) e = NULL;
            if (st_cli_service_call(ctx, ST_CLI_NOVA_SDK, "DELETE", path, NULL, NULL, &e) < 0) {
                fprintf(ctx->err, "Failed to clear flavor properties: %s\n", st_err_msg(e));
                failed++;
                break;
            }
        }
    }
    if (json_object_size(props) > 0) {
        st_autofree char *path = st_cli_object_path(&st_cli_kind_flavor, flavor, "/os-extra_specs");
        st_autoptr(json_t) body = json_pack("{s:O}", "extra_specs", props);
        st_autoptr(st_err) e = NULL;
        if (st_cli_service_call(ctx, ST_CLI_NOVA_SDK, "POST", path, body, NULL, &e) < 0) {
            fprintf(ctx->err, "Failed to set flavor properties: %s\n", st_err_msg(e));
            failed++;
        }
    }
    if (st_cli_args_get(a, "project")) {
        st_autoptr(st_err) e = NULL;
        if (flavor_is_public(flavor))
            st_err_set(&e, -EINVAL, "Cannot set access for a public flavor");
        else
            tenant_access(ctx, flavor, "addTenantAccess", &e);
        if (e) {
            fprintf(ctx->err, "Failed to set flavor access to project: %s\n", st_err_msg(e));
            failed++;
        }
    }
    if (failed > 0)
        return st_err_set(err, -EIO, "Command Failed: One or more of the operations failed");
    return 0;
}

static int run_unset(struct st_cli_ctx *ctx, struct st_err **err)
{
    const struct st_cli_args *a = &ctx->args;
    st_autoptr(json_t) flavor = NULL;
    st_autoptr(json_t) specs = NULL;
    int r = find_flavor(ctx, a->pos[0], &flavor, &specs, err);
    if (r < 0)
        return r;
    size_t failed = 0;
    char *const *keys;
    size_t n = st_cli_args_all(a, "property", &keys);
    for (size_t i = 0; i < n; i++) {
        st_autofree char *k = st_cli_http_escape(keys[i]);
        st_autofree char *suffix = st_sprintf("/os-extra_specs/%s", k);
        st_autofree char *path = st_cli_object_path(&st_cli_kind_flavor, flavor, suffix);
        st_autoptr(st_err) e = NULL;
        if (st_cli_service_call(ctx, ST_CLI_NOVA_SDK, "DELETE", path, NULL, NULL, &e) < 0) {
            fprintf(ctx->err, "Failed to unset flavor property: %s\n", st_err_msg(e));
            failed++;
        }
    }
    if (st_cli_args_get(a, "project")) {
        st_autoptr(st_err) e = NULL;
        if (flavor_is_public(flavor))
            st_err_set(&e, -EINVAL, "Cannot remove access for a public flavor");
        else
            tenant_access(ctx, flavor, "removeTenantAccess", &e);
        if (e) {
            fprintf(ctx->err, "Failed to remove flavor access from project: %s\n", st_err_msg(e));
            failed++;
        }
    }
    if (failed > 0)
        return st_err_set(err, -EIO, "Command Failed: One or more of the operations failed");
    return 0;
}

/* ---- delete ---- */

static int delete_one(struct st_cli_ctx *ctx, const char *value, void *data, struct st_err **err)
{
    (void)data;
    st_autoptr(json_t) flavor = NULL;
    int r = st_cli_find(ctx, &st_cli_kind_flavor, value, &flavor, err);
    if (r < 0)
        return r;
    st_autofree char *path = st_cli_object_path(&st_cli_kind_flavor, flavor, NULL);
    return st_cli_service_call(ctx, ST_CLI_NOVA_SDK, "DELETE", path, NULL, NULL, err);
}

static int run_delete(struct st_cli_ctx *ctx, struct st_err **err)
{
    size_t failed = st_cli_each(ctx, delete_one, NULL, "Failed to delete flavor with name or ID");
    if (failed > 0)
        return st_err_set(err, -EIO, "%zu of %zu flavors failed to delete.", failed,
                          ctx->args.n_pos);
    return 0;
}

/* ---- the table ---- */

#define PROJECT_DOMAIN_OPTION                                                                      \
    ST_CLI_VALUE("project-domain", "<project-domain>",                                             \
                 "Domain the project belongs to (name or ID). This can be used in case "           \
                 "collisions between project names exist.")

static const struct st_cli_option create_opts[] = {
    ST_CLI_VALUE("id", "<id>", "Unique flavor ID"),
    ST_CLI_VALUE("ram", "<size-mb>", "Memory size in MB (default 256M)"),
    ST_CLI_VALUE("disk", "<size-gb>", "Disk size in GB (default 0G)"),
    ST_CLI_VALUE("ephemeral", "<size-gb>", "Ephemeral disk size in GB (default 0G)"),
    ST_CLI_VALUE("swap", "<size-mb>", "Additional swap space size in MB (default 0M)"),
    ST_CLI_VALUE("vcpus", "<vcpus>", "Number of vcpus (default 1)"),
    ST_CLI_VALUE("rxtx-factor", "<factor>", "RX/TX factor (default 1.0)"),
    ST_CLI_FLAG("public", "Flavor is available to other projects (default)", GROUP_PUBLIC),
    ST_CLI_FLAG("private", "Flavor is not available to other projects", GROUP_PUBLIC),
    ST_CLI_APPEND("property", "<key=value>",
                  "Property to add for this flavor (repeat option to set multiple properties)"),
    ST_CLI_VALUE("project", "<project>",
                 "Allow <project> to access private flavor (name or ID) (Must be used with "
                 "--private option)"),
    PROJECT_DOMAIN_OPTION,
    ST_CLI_VALUE("description", "<description>",
                 "Description for the flavor.(Supported by API versions '2.55' - '2.latest'"),
    ST_CLI_OPTIONS_END,
};
static const struct st_cli_arg create_args[] = {
    {"<flavor-name>", "New flavor name", 0},
    {NULL, NULL, 0},
};

static const struct st_cli_option list_opts[] = {
    ST_CLI_FLAG("public", "List only public flavors (default)", GROUP_PUBLIC),
    ST_CLI_FLAG("private", "List only private flavors", GROUP_PUBLIC),
    ST_CLI_FLAG("all", "List all flavors, whether public or private", GROUP_PUBLIC),
    ST_CLI_VALUE("min-disk", "<min-disk>", "Filters the flavors by a minimum disk space, in GiB."),
    ST_CLI_VALUE("min-ram", "<min-ram>", "Filters the flavors by a minimum RAM, in MiB."),
    ST_CLI_FLAG("long", "List additional fields in output", 0),
    ST_CLI_VALUE("marker", "<flavor-id>", "The last flavor ID of the previous page"),
    ST_CLI_VALUE("limit", "<num-flavors>", "Maximum number of flavors to display."),
    ST_CLI_OPTIONS_END,
};

static const struct st_cli_arg show_args[] = {
    {"<flavor>", "Flavor to display (name or ID)", 0},
    {NULL, NULL, 0},
};

static const struct st_cli_option set_opts[] = {
    ST_CLI_FLAG("no-property",
                "Remove all properties from this flavor (specify both --no-property and "
                "--property to remove the current properties before setting new properties.)",
                0),
    ST_CLI_APPEND("property", "<key=value>",
                  "Property to add or modify for this flavor (repeat option to set multiple "
                  "properties)"),
    ST_CLI_VALUE("project", "<project>", "Set flavor access to project (name or ID) (admin only)"),
    PROJECT_DOMAIN_OPTION,
    ST_CLI_VALUE("description", "<description>",
                 "Set description for the flavor.(Supported by API versions '2.55' - "
                 "'2.latest'"),
    ST_CLI_OPTIONS_END,
};
static const struct st_cli_arg set_args[] = {
    {"<flavor>", "Flavor to modify (name or ID)", 0},
    {NULL, NULL, 0},
};

static const struct st_cli_option unset_opts[] = {
    ST_CLI_APPEND("property", "<key>",
                  "Property to remove from flavor (repeat option to unset multiple properties)"),
    ST_CLI_VALUE("project", "<project>",
                 "Remove flavor access from project (name or ID) (admin only)"),
    PROJECT_DOMAIN_OPTION,
    ST_CLI_OPTIONS_END,
};

static const struct st_cli_arg delete_args[] = {
    {"<flavor>", "Flavor(s) to delete (name or ID)", ST_CLI_ARG_MULTI},
    {NULL, NULL, 0},
};

const struct st_cli_command st_cli_flavor_commands[] = {
    {"flavor create", "Create new flavor", NULL, create_opts, create_args, SHOW, run_create},
    {"flavor delete", "Delete flavor(s)", NULL, NULL, delete_args, ST_CLI_CMD_AUTH, run_delete},
    {"flavor list", "List flavors", NULL, list_opts, NULL, LIST, run_list},
    {"flavor set", "Set flavor properties", NULL, set_opts, set_args, ST_CLI_CMD_AUTH, run_set},
    {"flavor show", "Display flavor details", NULL, NULL, show_args, SHOW, run_show},
    {"flavor unset", "Unset flavor properties", NULL, unset_opts, set_args, ST_CLI_CMD_AUTH,
     run_unset},
    {NULL, NULL, NULL, NULL, NULL, 0, NULL},
};
