/* os-hypervisors and os-services: the nodes agents registered
 * (/compute/nodes/, see compute/model.h), as Nova's admin views show
 * compute hosts. Each node is one hypervisor and one "nova-compute"
 * service; up or down by its heartbeat against its lease; used resources
 * from what the scheduler allocated on it. Admin only (the policy's
 * compute:hypervisor:* and compute:service:*). */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "api/app.h"
#include "api/auth.h"
#include "api/nova-priv.h"
#include "api/router.h"
#include "compute/resources.h"
#include "lib/cleanup.h"
#include "lib/json.h"
#include "lib/times.h"

/* Besides the microversion, every view here is the cloud admin's: the
 * policy's reader role holds "compute:*:list" without the admin-only
 * denials, so the handler says it again. */
#define MICROVERSION(req, resp, err)                                                               \
    do {                                                                                           \
        int mv_ = nova_microversion((req), (resp), (err));                                         \
        if (mv_ != 0)                                                                              \
            return mv_ < 0 ? mv_ : 0;                                                              \
        if (!st_api_is_cloud_admin(req))                                                           \
            return st_err_set((err), -EPERM, "Policy doesn't allow %s to be performed.",           \
                              (req)->route->action);                                               \
    } while (0)

static json_int_t num(json_t *obj, const char *key)
{
    return json_integer_value(json_object_get(obj, key));
}

/* The drivers the node runs, "container,vm"; "none" when it offers none. */
static char *hypervisor_type(json_t *node)
{
    char *out = NULL;
    size_t i;
    json_t *d;
    json_array_foreach(json_object_get(node, "drivers"), i, d)
    {
        if (!json_is_string(d))
            continue;
        char *next = st_sprintf("%s%s%s", out ? out : "", out ? "," : "", json_string_value(d));
        free(out);
        out = next;
    }
    return out ? out : st_strdup("none");
}

static json_t *render(json_t *node, bool detail)
{
    json_t *out =
        json_pack("{s:O, s:O, s:O, s:O}", "id", json_object_get(node, "id"), "hypervisor_hostname",
                  json_object_get(node, "name"), "state", json_object_get(node, "state"), "status",
                  json_object_get(node, "status"));
    if (!detail)
        return out;
    json_t *cap = json_object_get(node, "capacity"), *used = json_object_get(node, "used");
    json_int_t mem = num(cap, "memory_mb"), disk = num(cap, "disk_gb");
    json_int_t mem_used = num(used, "memory_mb"), disk_used = num(used, "disk_gb");
    st_autoptr(json_t) info = json_pack(
        "{s:I, s:O?, s:O?, s:O?}", "mhz", num(cap, "cpu_mhz"), "drivers",
        json_object_get(node, "drivers"), "allocation_ratio",
        json_object_get(node, "allocation_ratio"), "simulated", json_object_get(node, "simulated"));
    st_autofree char *cpu_info = st_json_dumps(info);
    st_autofree char *type = hypervisor_type(node);
    st_autoptr(json_t) more = json_pack(
        "{s:s, s:i, s:O, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:i, s:I, s:I, s:s, "
        "s:{s:O, s:O, s:n}}",
        "hypervisor_type", type, "hypervisor_version", 1000, "host_ip",
        json_is_string(json_object_get(node, "address")) ? json_object_get(node, "address")
                                                         : json_null(),
        "vcpus", num(cap, "vcpus"), "memory_mb", mem, "local_gb", disk, "vcpus_used",
        num(used, "vcpus"), "memory_mb_used", mem_used, "local_gb_used", disk_used, "free_ram_mb",
        mem - mem_used, "free_disk_gb", disk - disk_used, "current_workload", 0, "running_vms",
        num(used, "servers"), "disk_available_least", disk - disk_used, "cpu_info", cpu_info,
        "service", "host", json_object_get(node, "name"), "id", json_object_get(node, "id"),
        "disabled_reason");
    json_object_update(out, more);
    /* The ratios the scheduler admits with, under the names of Nova's
     * settings (stratosd --cpu-allocation-ratio ...), which the openstack
     * CLI prints as it prints every field of the hypervisor. */
    static const char *const ratios[][2] = {{"cpu", "cpu_allocation_ratio"},
                                            {"memory", "ram_allocation_ratio"},
                                            {"disk", "disk_allocation_ratio"}};
    json_t *ratio = json_object_get(node, "allocation_ratio");
    for (size_t i = 0; i < ST_ARRAY_SIZE(ratios); i++) {
        json_t *v = json_object_get(ratio, ratios[i][0]);
        if (json_is_number(v))
            json_object_set_new(out, ratios[i][1], json_real(json_number_value(v)));
    }
    return out;
}

static int nodes(struct st_http_request *req, json_t **ret, struct st_err **err)
{
    struct st_api_app *app = req->app;
    return st_compute_nodes_summary(app->kv, st_time_now_ms(), ret, err);
}

static int hypervisor_list(struct st_http_request *req, struct st_http_response *resp, bool detail,
                           struct st_err **err)
{
    MICROVERSION(req, resp, err);
    st_autoptr(json_t) all = NULL;
    int r = nodes(req, &all, err);
    if (r < 0)
        return r;
    const char *match = st_http_query(req, "hypervisor_hostname_pattern");
    json_t *rows = json_array();
    size_t i;
    json_t *node;
    json_array_foreach(all, i, node)
    {
        if (match && !strstr(json_string_value(json_object_get(node, "name")), match))
            continue;
        json_array_append_new(rows, render(node, detail));
    }
    st_http_resp_json(resp, 200, json_pack("{s:o}", "hypervisors", rows));
    return 0;
}

static int list_brief(struct st_http_request *req, struct st_http_response *resp,
                      struct st_err **err)
{
    return hypervisor_list(req, resp, false, err);
}

static int list_detail(struct st_http_request *req, struct st_http_response *resp,
                       struct st_err **err)
{
    return hypervisor_list(req, resp, true, err);
}

/* The node named in the path, by id (the integer the lists show) or by
 * host name (a new reference). */
static int find_node(struct st_http_request *req, json_t **ret, struct st_err **err)
{
    st_autoptr(json_t) all = NULL;
    int r = nodes(req, &all, err);
    if (r < 0)
        return r;
    const char *want = st_http_param(req, "hypervisor_id");
    size_t i;
    json_t *node;
    json_array_foreach(all, i, node)
    {
        char id[32];
        snprintf(id, sizeof(id), "%lld", (long long)num(node, "id"));
        if (strcmp(id, want) == 0 ||
            strcmp(json_string_value(json_object_get(node, "name")), want) == 0) {
            *ret = json_incref(node);
            return 0;
        }
    }
    return st_err_set(err, -ENOENT, "Hypervisor with ID %s could not be found.", want);
}

static int hypervisor_show(struct st_http_request *req, struct st_http_response *resp,
                           struct st_err **err)
{
    MICROVERSION(req, resp, err);
    st_autoptr(json_t) node = NULL;
    int r = find_node(req, &node, err);
    if (r < 0)
        return r;
    st_http_resp_json(resp, 200, json_pack("{s:o}", "hypervisor", render(node, true)));
    return 0;
}

/* Agents do not report the host's uptime; the last heartbeat says more. */
static int hypervisor_uptime(struct st_http_request *req, struct st_http_response *resp,
                             struct st_err **err)
{
    MICROVERSION(req, resp, err);
    st_autoptr(json_t) node = NULL;
    int r = find_node(req, &node, err);
    if (r < 0)
        return r;
    json_t *out = render(node, false);
    const char *beat = json_string_value(json_object_get(node, "heartbeat_at"));
    st_autofree char *uptime = st_sprintf("last heartbeat %s", beat ? beat : "never");
    json_object_set_new(out, "uptime", json_string(uptime));
    st_http_resp_json(resp, 200, json_pack("{s:o}", "hypervisor", out));
    return 0;
}

static int hypervisor_statistics(struct st_http_request *req, struct st_http_response *resp,
                                 struct st_err **err)
{
    MICROVERSION(req, resp, err);
    st_autoptr(json_t) all = NULL;
    int r = nodes(req, &all, err);
    if (r < 0)
        return r;
    json_int_t count = 0, vcpus = 0, mem = 0, disk = 0, vcpus_used = 0, mem_used = 0, disk_used = 0,
               vms = 0;
    size_t i;
    json_t *node;
    json_array_foreach(all, i, node)
    {
        json_t *cap = json_object_get(node, "capacity"), *used = json_object_get(node, "used");
        count++;
        vcpus += num(cap, "vcpus");
        mem += num(cap, "memory_mb");
        disk += num(cap, "disk_gb");
        vcpus_used += num(used, "vcpus");
        mem_used += num(used, "memory_mb");
        disk_used += num(used, "disk_gb");
        vms += num(used, "servers");
    }
    st_http_resp_json(resp, 200,
                      json_pack("{s:{s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:i, s:I, s:I}}",
                                "hypervisor_statistics", "count", count, "vcpus", vcpus,
                                "memory_mb", mem, "local_gb", disk, "vcpus_used", vcpus_used,
                                "memory_mb_used", mem_used, "local_gb_used", disk_used,
                                "free_ram_mb", mem - mem_used, "free_disk_gb", disk - disk_used,
                                "current_workload", 0, "running_vms", vms, "disk_available_least",
                                disk - disk_used));
    return 0;
}

/* Nova's services show times without a zone: "2030-01-01T11:00:05.000000". */
static json_t *service_time(json_t *rfc3339)
{
    int64_t ms;
    const char *s = json_string_value(rfc3339);
    if (!s || st_time_parse_rfc3339(s, &ms) < 0)
        return json_null();
    char buf[ST_TIME_RFC3339_LEN];
    st_time_rfc3339_us(ms, buf, sizeof(buf));
    size_t len = strlen(buf);
    if (len && buf[len - 1] == 'Z')
        buf[len - 1] = '\0';
    return json_string(buf);
}

static int service_list(struct st_http_request *req, struct st_http_response *resp,
                        struct st_err **err)
{
    MICROVERSION(req, resp, err);
    st_autoptr(json_t) all = NULL;
    int r = nodes(req, &all, err);
    if (r < 0)
        return r;
    const char *host = st_http_query(req, "host"), *binary = st_http_query(req, "binary");
    json_t *rows = json_array();
    size_t i;
    json_t *node;
    json_array_foreach(all, i, node)
    {
        const char *name = json_string_value(json_object_get(node, "name"));
        if ((host && strcmp(host, name) != 0) || (binary && strcmp(binary, "nova-compute") != 0))
            continue;
        const char *az = json_string_value(json_object_get(node, "availability_zone"));
        json_array_append_new(rows, json_pack("{s:O, s:s, s:s, s:s, s:O, s:O, s:o, s:n, s:b}", "id",
                                              json_object_get(node, "id"), "binary", "nova-compute",
                                              "host", name, "zone", az ? az : "nova", "status",
                                              json_object_get(node, "status"), "state",
                                              json_object_get(node, "state"), "updated_at",
                                              service_time(json_object_get(node, "heartbeat_at")),
                                              "disabled_reason", "forced_down", 0));
    }
    st_http_resp_json(resp, 200, json_pack("{s:o}", "services", rows));
    return 0;
}

/* Host aggregates are not a stratos concept (availability zones are node
 * labels); `openstack hypervisor show` asks for them, so the list is empty. */
static int aggregate_list(struct st_http_request *req, struct st_http_response *resp,
                          struct st_err **err)
{
    MICROVERSION(req, resp, err);
    st_http_resp_json(resp, 200, json_pack("{s:[]}", "aggregates"));
    return 0;
}

static const struct st_route routes[] = {
    NOVA_ROUTE("GET", "/os-aggregates", "compute:aggregate:list", 0, aggregate_list),
    NOVA_ROUTE("GET", "/os-hypervisors", "compute:hypervisor:list", 0, list_brief),
    NOVA_ROUTE("GET", "/os-hypervisors/detail", "compute:hypervisor:list", 0, list_detail),
    NOVA_ROUTE("GET", "/os-hypervisors/statistics", "compute:hypervisor:show", 0,
               hypervisor_statistics),
    NOVA_ROUTE("GET", "/os-hypervisors/{hypervisor_id}", "compute:hypervisor:show", 0,
               hypervisor_show),
    NOVA_ROUTE("GET", "/os-hypervisors/{hypervisor_id}/uptime", "compute:hypervisor:show", 0,
               hypervisor_uptime),
    NOVA_ROUTE("GET", "/os-services", "compute:service:list", 0, service_list),
};

int nova_hosts_register(struct st_router *r, struct st_err **err)
{
    return st_router_add_all(r, routes, ST_ARRAY_SIZE(routes), err);
}
