/* spec.resources from a flavor and a resource policy, the policy a server
 * is given, and the summary of the nodes; see resources.h. */
#include "resources.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "compute/model.h"
#include "compute/resource_policy.h"
#include "lib/cleanup.h"
#include "lib/json.h"
#include "lib/times.h"
#include "store/kv.h"

/* An extra spec as an integer: 0, -ENOENT when absent, -EINVAL when not one. */
static int spec_int(json_t *specs, const char *key, int64_t *ret, struct st_err **err)
{
    json_t *v = json_object_get(specs, key);
    if (!v)
        return -ENOENT;
    if (json_is_integer(v)) {
        *ret = json_integer_value(v);
        return 0;
    }
    const char *s = json_string_value(v);
    char *end = NULL;
    errno = 0;
    long long n = s && s[0] ? strtoll(s, &end, 10) : 0;
    if (!s || !s[0] || *end || errno)
        return st_err_set(err, -EINVAL, "flavor extra spec %s: '%s' is not an integer", key,
                          s ? s : "(not a string)");
    *ret = n;
    return 0;
}

static int flavor_int(json_t *flavor, const char *key, int64_t min, int64_t *ret,
                      struct st_err **err)
{
    json_t *v = json_object_get(flavor, key);
    if (!json_is_integer(v) || json_integer_value(v) < min)
        return st_err_set(err, -EINVAL, "flavor %s must be an integer of at least %lld", key,
                          (long long)min);
    *ret = json_integer_value(v);
    return 0;
}

/* Sets *ret from the spec when present; a present but bad value fails. */
static int take_spec(json_t *specs, const char *key, int64_t min, int64_t *ret, bool *ret_set,
                     struct st_err **err)
{
    int64_t v = 0;
    int r = spec_int(specs, key, &v, err);
    if (r == -ENOENT)
        return 0;
    if (r < 0)
        return r;
    if (v < min)
        return st_err_set(err, -EINVAL, "flavor extra spec %s: %lld is below %lld", key,
                          (long long)v, (long long)min);
    *ret = v;
    if (ret_set)
        *ret_set = true;
    return 0;
}

static bool take_int(json_t *obj, const char *key, int64_t *ret)
{
    json_t *v = json_object_get(obj, key);
    if (!json_is_integer(v))
        return false;
    *ret = json_integer_value(v);
    return true;
}

int st_compute_resources(json_t *flavor, json_t *policy, json_t **ret_resources,
                         struct st_err **err)
{
    if (!json_is_object(flavor))
        return st_err_set(err, -EINVAL, "no flavor to size the server from");
    int64_t vcpus, ram, disk;
    int r;
    if ((r = flavor_int(flavor, "vcpus", 1, &vcpus, err)) < 0 ||
        (r = flavor_int(flavor, "ram", 1, &ram, err)) < 0 ||
        (r = flavor_int(flavor, "disk", 0, &disk, err)) < 0)
        return r;
    json_t *specs = json_object_get(flavor, "extra_specs");

    int64_t shares = ST_SHARES_NORMAL * vcpus, cpu_res = 0, cpu_lim = 0;
    int64_t period = ST_CPU_PERIOD_DEFAULT, quota = 0, pids = ST_PIDS_LIMIT_DEFAULT;
    int64_t mem_res = 0, mem_lim = 0;
    bool mem_res_set = false, mem_lim_set = false;
    if ((r = take_spec(specs, "quota:cpu_shares", 2, &shares, NULL, err)) < 0 ||
        (r = take_spec(specs, "resources:cpu_reservation_mhz", 0, &cpu_res, NULL, err)) < 0 ||
        (r = take_spec(specs, "resources:cpu_limit_mhz", 1, &cpu_lim, NULL, err)) < 0 ||
        (r = take_spec(specs, "quota:cpu_period", 1000, &period, NULL, err)) < 0 ||
        (r = take_spec(specs, "quota:cpu_quota", INT64_MIN, &quota, NULL, err)) < 0 ||
        (r = take_spec(specs, "resources:memory_reservation_mb", 0, &mem_res, &mem_res_set, err)) <
            0 ||
        (r = take_spec(specs, "resources:memory_limit_mb", 1, &mem_lim, &mem_lim_set, err)) < 0 ||
        (r = take_spec(specs, "resources:pids_limit", 16, &pids, NULL, err)) < 0)
        return r;
    /* Nova applies quota:cpu_quota to each vCPU; the instance's cgroup gets the sum */
    quota = quota > 0 ? quota * vcpus : 0;

    if (policy && !json_is_null(policy)) {
        json_t *rp = json_object_get(policy, "resourcePolicy");
        st_autoptr(json_t) norm = NULL;
        if ((r = st_resource_policy_normalize(rp ? rp : policy, &norm, NULL, err)) < 0)
            return st_err_prefix(err, r, "resource policy");
        json_t *compute = json_object_get(norm, "compute");
        json_t *cpu = json_object_get(compute, "cpu"), *mem = json_object_get(compute, "memory");
        take_int(cpu, "reservation_mhz", &cpu_res);
        if (take_int(cpu, "limit_mhz", &cpu_lim))
            quota = 0; /* the policy's limit replaces the flavor's quota */
        json_t *s = json_object_get(cpu, "shares");
        if (json_is_integer(s))
            shares = json_integer_value(s);
        else if (json_is_string(s))
            shares = vcpus * (strcmp(json_string_value(s), "low") == 0    ? ST_SHARES_LOW
                              : strcmp(json_string_value(s), "high") == 0 ? ST_SHARES_HIGH
                                                                          : ST_SHARES_NORMAL);
        if (take_int(mem, "reservation_mb", &mem_res))
            mem_res_set = true;
        if (take_int(mem, "limit_mb", &mem_lim))
            mem_lim_set = true;
    }
    if (shares > 262144)
        shares = 262144; /* many vCPUs at high: the kernel's ceiling */
    if (!mem_lim_set)
        mem_lim = mem_res_set && mem_res > ram ? mem_res : ram;
    if (!mem_res_set)
        mem_res = ram < mem_lim ? ram : mem_lim;
    if (mem_res > mem_lim)
        return st_err_set(err, -EINVAL,
                          "memory reservation of %lld MiB is above the limit of %lld MiB",
                          (long long)mem_res, (long long)mem_lim);
    if (cpu_lim > 0 && cpu_res > cpu_lim)
        return st_err_set(err, -EINVAL,
                          "cpu reservation of %lld MHz is above the limit of %lld "
                          "MHz",
                          (long long)cpu_res, (long long)cpu_lim);
    *ret_resources = json_pack(
        "{s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I}", "vcpus", (json_int_t)vcpus,
        "memory_mb", (json_int_t)ram, "disk_gb", (json_int_t)disk, "cpu_reservation_mhz",
        (json_int_t)cpu_res, "cpu_limit_mhz", (json_int_t)cpu_lim, "cpu_shares", (json_int_t)shares,
        "cpu_period_us", (json_int_t)(quota > 0 ? period : 0), "cpu_quota_us", (json_int_t)quota,
        "memory_reservation_mb", (json_int_t)mem_res, "memory_limit_mb", (json_int_t)mem_lim,
        "pids_limit", (json_int_t)pids);
    return 0;
}

int st_compute_policy_for(struct st_kv *kv, const char *project_id, json_t *flavor,
                          json_t *metadata, json_t **ret_policy, struct st_err **err)
{
    *ret_policy = NULL;
    const char *name = json_string_value(json_object_get(metadata, "resource_policy"));
    const char *from = "the server's metadata resource_policy";
    if (!name) {
        name = json_string_value(
            json_object_get(json_object_get(flavor, "extra_specs"), "stratos:resource_policy"));
        from = "the flavor's extra spec stratos:resource_policy";
    }
    if (!name)
        return 0;
    int r = st_resource_policy_get(kv, project_id, name, ret_policy, err);
    if (r == -ENOENT) {
        st_err_clear(err);
        return st_err_set(err, -EINVAL, "resource policy '%s' (from %s) not found in this project",
                          name, from);
    }
    return r;
}

/* ---- nodes ---- */

static json_t *node_usage(struct st_kv *kv, const char *name)
{
    json_int_t vcpus = 0, mem = 0, disk = 0, cpu_res = 0, mem_res = 0, n = 0;
    st_autofree char *key = st_sprintf("%s%s", ST_COMPUTE_ALLOCATIONS_PREFIX, name);
    st_autoptr(st_kv_entry) e = NULL;
    st_autoptr(json_t) alloc = NULL;
    if (st_kv_get(kv, key, &e, NULL) == 0 &&
        st_json_parse_object(e->value, e->value_len, &alloc, NULL) == 0) {
        const char *id;
        json_t *s;
        json_object_foreach(json_object_get(alloc, "servers"), id, s)
        {
            n++;
            vcpus += json_integer_value(json_object_get(s, "vcpus"));
            mem += json_integer_value(json_object_get(s, "memory_mb"));
            disk += json_integer_value(json_object_get(s, "disk_gb"));
            cpu_res += json_integer_value(json_object_get(s, "cpu_reservation_mhz"));
            mem_res += json_integer_value(json_object_get(s, "memory_reservation_mb"));
        }
    }
    return json_pack("{s:I, s:I, s:I, s:I, s:I, s:I}", "vcpus", vcpus, "memory_mb", mem, "disk_gb",
                     disk, "cpu_reservation_mhz", cpu_res, "memory_reservation_mb", mem_res,
                     "servers", n);
}

static const char *node_state(json_t *node, int64_t now_ms)
{
    int64_t beat = 0;
    const char *at = json_string_value(json_object_get(node, "heartbeat_at"));
    if (!at || st_time_parse_rfc3339(at, &beat) < 0)
        return "down";
    json_int_t lease = json_integer_value(json_object_get(node, "lease_seconds"));
    if (lease <= 0)
        lease = 30;
    return now_ms - beat <= lease * 1000 ? "up" : "down";
}

int st_compute_nodes_summary(struct st_kv *kv, int64_t now_ms, json_t **ret, struct st_err **err)
{
    st_autoptr(json_t) out = json_array();
    st_autoptr(st_kv_list) prev = NULL;
    const char *after = NULL;
    for (;;) {
        st_autoptr(st_kv_list) l = NULL;
        int r = st_kv_list(kv, ST_COMPUTE_NODES_PREFIX, after, 1000, &l, err);
        if (r < 0)
            return r;
        for (size_t i = 0; i < l->count; i++) {
            st_autoptr(json_t) node = NULL;
            if (st_json_parse_object(l->entries[i].value, l->entries[i].value_len, &node, NULL) < 0)
                continue;
            const char *name = l->entries[i].key + strlen(ST_COMPUTE_NODES_PREFIX);
            json_t *row = json_object();
            json_object_set_new(row, "id", json_integer(l->entries[i].create_rev));
            json_object_set_new(row, "name", json_string(name));
            json_object_set_new(row, "state", json_string(node_state(node, now_ms)));
            json_object_set_new(row, "status", json_string("enabled"));
            static const char *const copied[] = {"heartbeat_at",      "created_at", "drivers",
                                                 "availability_zone", "simulated",  "capacity",
                                                 "allocation_ratio",  "labels",     "address"};
            for (size_t k = 0; k < ST_ARRAY_SIZE(copied); k++) {
                json_t *v = json_object_get(node, copied[k]);
                json_object_set(row, copied[k], v ? v : json_null());
            }
            json_object_set_new(row, "used", node_usage(kv, name));
            json_array_append_new(out, row);
        }
        if (!l->more || l->count == 0)
            break;
        after = l->entries[l->count - 1].key;
        st_kv_list_free(prev);
        prev = st_steal(&l); /* keeps after alive for the next page */
    }
    *ret = st_steal(&out);
    return 0;
}
