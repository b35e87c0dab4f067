/* The compute nodes as Nova shows them: the openstack CLI's `hypervisor
 * list`, `hypervisor show` (novaclient) and `compute service list`
 * (openstacksdk). stratosd lists its agents' nodes through os-hypervisors
 * and os-services, so these are how an operator sees the pool. */
#include "cmd_hypervisor.h"

#include <errno.h>
#include <regex.h>
#include <stdlib.h>
#include <string.h>

#include "http.h"
#include "lib/cleanup.h"
#include "lib/json.h"
#include "services.h"

#define SHOW (ST_CLI_CMD_SHOW | ST_CLI_CMD_AUTH | ST_CLI_CMD_PY_STR)
#define LIST (ST_CLI_CMD_LIST | ST_CLI_CMD_AUTH | ST_CLI_CMD_PY_STR)

static const struct st_cli_column hypervisor_cols[] = {
    {"ID", "id"},
    {"Hypervisor Hostname", "hypervisor_hostname"},
    {"Hypervisor Type", "hypervisor_type"},
    {"Host IP", "host_ip"},
    {"State", "state"},
    {"vCPUs Used", "vcpus_used"},
    {"vCPUs", "vcpus"},
    {"Memory MB Used", "memory_mb_used"},
    {"Memory MB", "memory_mb"},
};

static int run_list(struct st_cli_ctx *ctx, struct st_err **err)
{
    const struct st_cli_args *a = &ctx->args;
    const char *matching = st_cli_args_get(a, "matching");
    if (matching && (st_cli_args_get(a, "marker") || st_cli_args_get(a, "limit")))
        return st_err_set(err, -EINVAL, "--matching is not compatible with --marker or --limit");
    static const char *const paged[] = {"marker", "limit"};
    for (size_t i = 0; i < ST_ARRAY_SIZE(paged); i++)
        if (st_cli_args_get(a, paged[i]))
            return st_err_set(err, -EOPNOTSUPP,
                              "--os-compute-api-version 2.33 or greater is required to support "
                              "the --%s option",
                              paged[i]);
    st_autofree char *path = NULL;
    if (matching) {
        st_autofree char *m = st_cli_http_escape(matching);
        path = st_sprintf("/os-hypervisors/%s/search", m);
    } else {
        path = st_strdup("/os-hypervisors/detail");
    }
    st_autoptr(json_t) doc = NULL;
    int r = st_cli_service_call(ctx, ST_CLI_NOVA, "GET", path, NULL, &doc, err);
    if (r < 0)
        return r;
    json_t *rows = json_object_get(doc, "hypervisors");
    if (!json_is_array(rows))
        return st_err_set(err, -EPROTO, "invalid response to GET %s: no \"hypervisors\" list",
                          path);
    return st_cli_ctx_list(ctx, hypervisor_cols, st_cli_args_flag(a, "long") ? 9 : 5, rows, err);
}

/* The uptime line ("17:37:14 up 2:33, 3 users, load average: 0.33, ...")
 * split as openstackclient's regular expression does. */
static void add_uptime(json_t *h, const char *uptime)
{
    static regex_t re;
    static bool ready;
    if (!ready) {
        if (regcomp(&re,
                    "^[[:space:]]*(.+)[[:space:]]up[[:space:]]+(.+),[[:space:]]+(.+)[[:space:]]"
                    "users?,[[:space:]]+load average:[[:space:]](.+)",
                    REG_EXTENDED) != 0)
            abort();
        ready = true;
    }
    regmatch_t m[5];
    if (!uptime || regexec(&re, uptime, 5, m, 0) != 0)
        return;
    static const char *const keys[] = {"host_time", "uptime", "users", "load_average"};
    for (size_t i = 0; i < 4; i++)
        json_object_set_new(
            h, keys[i],
            json_stringn(uptime + m[i + 1].rm_so, (size_t)(m[i + 1].rm_eo - m[i + 1].rm_so)));
}

static int run_show(struct st_cli_ctx *ctx, struct st_err **err)
{
    st_autoptr(json_t) found = NULL;
    int r = st_cli_find(ctx, &st_cli_kind_hypervisor, ctx->args.pos[0], &found, err);
    if (r < 0)
        return r;
    st_autoptr(json_t) h = json_deep_copy(found);
    json_t *service = json_object_get(found, "service");
    const char *service_host = st_cli_str(service, "host");
    /* the aggregates holding the node's host and its uptime: extras that
     * a cloud without them does not fail the command for */
    json_t *member_of = json_array();
    json_object_set_new(h, "aggregates", member_of);
    st_autoptr(json_t) aggs = NULL;
    if (st_cli_service_call(ctx, ST_CLI_NOVA, "GET", "/os-aggregates", NULL, &aggs, NULL) == 0) {
        size_t i, j;
        json_t *agg, *host;
        json_array_foreach(json_object_get(aggs, "aggregates"), i, agg) json_array_foreach(
            json_object_get(agg, "hosts"), j,
            host) if (json_is_string(host) && strcmp(json_string_value(host), service_host) == 0)
            json_array_append(member_of, json_object_get(agg, "name"));
    }
    st_autofree char *uptime_path = st_cli_object_path(&st_cli_kind_hypervisor, found, "/uptime");
    st_autoptr(json_t) up = NULL;
    if (st_cli_service_call(ctx, ST_CLI_NOVA, "GET", uptime_path, NULL, &up, NULL) == 0)
        add_uptime(h,
                   json_string_value(json_object_get(json_object_get(up, "hypervisor"), "uptime")));
    json_object_set(h, "service_id", json_object_get(service, "id"));
    json_object_set(h, "service_host", json_object_get(service, "host"));
    json_object_del(h, "service");
    /* before 2.28 cpu_info is JSON in a string */
    json_t *cpu = json_object_get(found, "cpu_info");
    st_autoptr(json_t) cpu_obj = NULL;
    if (json_is_string(cpu) && json_string_length(cpu) > 0)
        (void)st_json_parse(json_string_value(cpu), json_string_length(cpu), &cpu_obj, NULL);
    if (!json_is_object(cpu_obj)) {
        json_decref(cpu_obj);
        cpu_obj = json_is_object(cpu) ? json_incref(cpu) : json_object();
    }
    json_object_set_new(h, "cpu_info", st_cli_dict_column(cpu_obj));
    return st_cli_ctx_show(ctx, h, err);
}

static const struct st_cli_column service_cols[] = {
    {"ID", "id"},
    {"Binary", "binary"},
    {"Host", "host"},
    {"Zone", "zone"},
    {"Status", "status"},
    {"State", "state"},
    {"Updated At", "updated_at"},
    {"Disabled Reason", "disabled_reason"},
};

static int run_service_list(struct st_cli_ctx *ctx, struct st_err **err)
{
    const struct st_cli_args *a = &ctx->args;
    char *buf = NULL;
    size_t len;
    FILE *f = open_memstream(&buf, &len);
    if (!f)
        abort();
    fputs("/os-services", f);
    bool first = true;
    if (st_cli_args_get(a, "host")) {
        st_autofree char *v = st_cli_http_escape(st_cli_args_get(a, "host"));
        fprintf(f, "?host=%s", v);
        first = false;
    }
    if (st_cli_args_get(a, "service")) {
        st_autofree char *v = st_cli_http_escape(st_cli_args_get(a, "service"));
        fprintf(f, "%cbinary=%s", first ? '?' : '&', v);
    }
    fclose(f);
    st_autofree char *path = buf;
    st_autoptr(json_t) doc = NULL;
    int r = st_cli_service_call(ctx, ST_CLI_NOVA_SDK, "GET", path, NULL, &doc, err);
    if (r < 0)
        return r;
    json_t *rows = json_object_get(doc, "services");
    if (!json_is_array(rows))
        return st_err_set(err, -EPROTO, "invalid response to GET %s: no \"services\" list", path);
    return st_cli_ctx_list(ctx, service_cols, st_cli_args_flag(a, "long") ? 8 : 7, rows, err);
}

/* ---- the table ---- */

static const struct st_cli_option list_opts[] = {
    ST_CLI_VALUE("matching", "<hostname>",
                 "Filter hypervisors using <hostname> substringHypervisor Type and Host IP are "
                 "not supported when using --matching"),
    ST_CLI_VALUE("marker", "<marker>",
                 "The UUID of the last hypervisor of the previous page; displays list of "
                 "hypervisors after 'marker'. (supported with --os-compute-api-version 2.33 or "
                 "above)"),
    ST_CLI_VALUE("limit", "<limit>",
                 "Maximum number of hypervisors to display. Note that there is a configurable max "
                 "limit on the server, and the limit that is used will be the minimum of what is "
                 "requested here and what is configured in the server. (supported with "
                 "--os-compute-api-version 2.33 or above)"),
    ST_CLI_FLAG("long", "List additional fields in output", 0),
    ST_CLI_OPTIONS_END,
};

static const struct st_cli_arg show_args[] = {
    {"<hypervisor>", "Hypervisor to display (name or ID)", 0},
    {NULL, NULL, 0},
};

static const struct st_cli_option service_opts[] = {
    ST_CLI_VALUE("host", "<host>", "List services on specified host (name only)"),
    ST_CLI_VALUE("service", "<service>",
                 "List only specified service binaries (name only). For example, "
                 "``nova-compute``, ``nova-conductor``, etc."),
    ST_CLI_FLAG("long", "List additional fields in output", 0),
    ST_CLI_OPTIONS_END,
};

const struct st_cli_command st_cli_hypervisor_commands[] = {
    {"hypervisor list", "List hypervisors", NULL, list_opts, NULL, LIST, run_list},
    {"hypervisor show", "Display hypervisor details", NULL, NULL, show_args, SHOW, run_show},
    {"compute service list", "List compute services",
     "List compute services. Using ``--os-compute-api-version`` 2.53 or greater will return the "
     "ID as a UUID value which can be used to uniquely identify the service in a multi-cell "
     "deployment.",
     service_opts, NULL, LIST, run_service_list},
    {NULL, NULL, NULL, NULL, NULL, 0, NULL},
};
