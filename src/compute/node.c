/* Node documents; see node.h. */
#include "node.h"

#include <errno.h>
#include <string.h>

#include "compute/model.h"
#include "lib/cleanup.h"
#include "lib/json.h"
#include "lib/times.h"
#include "store/kv.h"

#define MAX_DRIVERS 16
#define MAX_LABELS  64

int st_compute_node_check_name(const char *name, struct st_err **err)
{
    size_t n = name ? strlen(name) : 0;
    bool ok = n > 0 && n <= ST_COMPUTE_NODE_NAME_MAX;
    for (size_t i = 0; ok && i < n; i++) {
        char c = name[i];
        bool alnum = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
        ok = alnum || (i > 0 && (c == '.' || c == '_' || c == '-'));
    }
    if (!ok)
        return st_err_set(err, -EINVAL,
                          "invalid node name '%s': 1 to %d letters, digits, '.', '_' or '-', "
                          "starting with a letter or digit",
                          name ? name : "", ST_COMPUTE_NODE_NAME_MAX);
    return 0;
}

static int check_uint_fields(json_t *obj, const char *what, const char *const *keys, bool required,
                             struct st_err **err)
{
    if (!json_is_object(obj))
        return st_err_set(err, -EINVAL, "%s must be an object", what);
    for (size_t i = 0; keys[i]; i++) {
        json_t *v = json_object_get(obj, keys[i]);
        if (!v && !required)
            continue;
        if (!json_is_integer(v) || json_integer_value(v) < 0)
            return st_err_set(err, -EINVAL, "%s.%s must be a non-negative integer", what, keys[i]);
    }
    return 0;
}

static int check_body(json_t *body, struct st_err **err)
{
    static const char *const known[] = {"drivers",
                                        "capacity",
                                        "allocation_ratio",
                                        "availability_zone",
                                        "labels",
                                        "lease_seconds",
                                        "usage",
                                        "simulated",
                                        "facts",
                                        "version",
                                        "address"};
    static const char *const capacity[] = {"vcpus", "cpu_mhz", "memory_mb", "disk_gb", NULL};
    if (!json_is_object(body))
        return st_err_set(err, -EINVAL, "a node must be a JSON object");
    const char *k;
    json_t *v;
    json_object_foreach(body, k, v)
    {
        size_t i = 0;
        while (i < ST_ARRAY_SIZE(known) && strcmp(k, known[i]) != 0)
            i++;
        if (i == ST_ARRAY_SIZE(known))
            return st_err_set(err, -EINVAL, "unknown node field '%s'", k);
    }
    json_t *drivers = json_object_get(body, "drivers");
    if (drivers) {
        if (!json_is_array(drivers) || json_array_size(drivers) > MAX_DRIVERS)
            return st_err_set(err, -EINVAL, "drivers must be a list of at most %d names",
                              MAX_DRIVERS);
        size_t i;
        json_array_foreach(drivers, i, v)
        {
            if (!json_is_string(v) || json_string_length(v) == 0 || json_string_length(v) > 32)
                return st_err_set(err, -EINVAL, "drivers must be names of 1 to 32 characters");
        }
    }
    json_t *cap = json_object_get(body, "capacity");
    int r;
    if (cap && (r = check_uint_fields(cap, "capacity", capacity, true, err)) < 0)
        return r;
    json_t *ratio = json_object_get(body, "allocation_ratio");
    if (ratio) {
        if (!json_is_object(ratio))
            return st_err_set(err, -EINVAL, "allocation_ratio must be an object");
        json_object_foreach(ratio, k, v)
        {
            if (!json_is_number(v) || json_number_value(v) <= 0 || json_number_value(v) > 1000)
                return st_err_set(err, -EINVAL,
                                  "allocation_ratio.%s must be a number above 0 (at most 1000)", k);
        }
    }
    v = json_object_get(body, "availability_zone");
    if (v && (!json_is_string(v) || json_string_length(v) == 0 || json_string_length(v) > 255))
        return st_err_set(err, -EINVAL,
                          "availability_zone must be a string of 1 to 255 "
                          "characters");
    json_t *labels = json_object_get(body, "labels");
    if (labels) {
        if (!json_is_object(labels) || json_object_size(labels) > MAX_LABELS)
            return st_err_set(err, -EINVAL, "labels must be an object of at most %d strings",
                              MAX_LABELS);
        json_object_foreach(labels, k, v)
        {
            if (!json_is_string(v) || strlen(k) > 255 || json_string_length(v) > 255)
                return st_err_set(err, -EINVAL,
                                  "labels must map names to strings (255 "
                                  "characters at most)");
        }
    }
    v = json_object_get(body, "lease_seconds");
    if (v && (!json_is_integer(v) || json_integer_value(v) < 1 || json_integer_value(v) > 3600))
        return st_err_set(err, -EINVAL, "lease_seconds must be an integer from 1 to 3600");
    v = json_object_get(body, "simulated");
    if (v && !json_is_boolean(v))
        return st_err_set(err, -EINVAL, "simulated must be true or false");
    const char *objects[] = {"usage", "facts"};
    for (size_t i = 0; i < ST_ARRAY_SIZE(objects); i++) {
        v = json_object_get(body, objects[i]);
        if (v && !json_is_object(v))
            return st_err_set(err, -EINVAL, "%s must be an object", objects[i]);
    }
    const char *strings[] = {"version", "address"};
    for (size_t i = 0; i < ST_ARRAY_SIZE(strings); i++) {
        v = json_object_get(body, strings[i]);
        if (v && (!json_is_string(v) || json_string_length(v) > 255))
            return st_err_set(err, -EINVAL, "%s must be a string of at most 255 characters",
                              strings[i]);
    }
    return 0;
}

int st_compute_node_put(struct st_kv *kv, const char *name, json_t *body, json_t **ret,
                        struct st_err **err)
{
    int r = st_compute_node_check_name(name, err);
    if (r < 0 || (r = check_body(body, err)) < 0)
        return r;
    st_autofree char *key = st_sprintf("%s%s", ST_COMPUTE_NODES_PREFIX, name);
    for (int attempt = 0; attempt < 100; attempt++) {
        st_autoptr(st_kv_entry) e = NULL;
        st_autoptr(json_t) doc = NULL;
        int64_t rev = ST_KV_ABSENT;
        char now[ST_TIME_RFC3339_LEN];
        st_time_rfc3339_ms(st_time_now_ms(), now, sizeof(now));
        r = st_kv_get(kv, key, &e, err);
        if (r == 0) {
            r = st_json_parse_object(e->value, e->value_len, &doc, err);
            if (r < 0)
                return st_err_prefix(err, r, "node document %s", name);
            rev = e->mod_rev;
        } else if (r == -ENOENT) {
            st_err_clear(err);
            if (!json_object_get(body, "drivers") || !json_object_get(body, "capacity"))
                return st_err_set(err, -EINVAL,
                                  "node %s is not registered: the first request needs drivers "
                                  "and capacity",
                                  name);
            doc = json_pack("{s:s, s:s, s:[], s:{}, s:{s:f, s:f, s:f}, s:s, s:{}, s:i, s:b, "
                            "s:{}}",
                            "name", name, "created_at", now, "drivers", "capacity",
                            "allocation_ratio", "cpu", 4.0, "memory", 1.0, "disk", 1.0,
                            "availability_zone", "nova", "labels", "lease_seconds",
                            ST_COMPUTE_NODE_LEASE_DEFAULT, "simulated", 0, "usage");
        } else {
            return r;
        }
        json_object_update(doc, body);
        json_object_set_new(doc, "heartbeat_at", json_string(now));
        st_autofree char *text = st_json_dumps(doc);
        r = st_kv_put(kv, key, text, strlen(text), rev, NULL, err);
        if (r == -ECANCELED) {
            st_err_clear(err);
            continue;
        }
        if (r < 0)
            return st_err_prefix(err, r, "writing node %s", name);
        if (ret)
            *ret = st_steal(&doc);
        return 0;
    }
    return st_err_set(err, -EAGAIN, "node %s is changing too often; try again", name);
}

int st_compute_node_get(struct st_kv *kv, const char *name, json_t **ret, struct st_err **err)
{
    if (st_compute_node_check_name(name, NULL) < 0)
        return st_err_set(err, -ENOENT, "node %s not found", name ? name : "");
    st_autofree char *key = st_sprintf("%s%s", ST_COMPUTE_NODES_PREFIX, name);
    st_autoptr(st_kv_entry) e = NULL;
    int r = st_kv_get(kv, key, &e, err);
    if (r == -ENOENT) {
        st_err_clear(err);
        return st_err_set(err, -ENOENT, "node %s not found", name);
    }
    if (r < 0)
        return r;
    return st_json_parse_object(e->value, e->value_len, ret, err);
}

int st_compute_node_list(struct st_kv *kv, json_t **ret, struct st_err **err)
{
    st_autoptr(st_kv_list) l = NULL;
    int r = st_kv_list(kv, ST_COMPUTE_NODES_PREFIX, NULL, 0, &l, err);
    if (r < 0)
        return r;
    json_t *out = json_array();
    for (size_t i = 0; i < l->count; i++) {
        json_t *doc = json_loadb(l->entries[i].value, l->entries[i].value_len, 0, NULL);
        if (json_is_object(doc))
            json_array_append(out, doc);
        json_decref(doc);
    }
    *ret = out;
    return 0;
}

bool st_compute_node_alive(json_t *node, int64_t now_ms)
{
    const char *hb = json_string_value(json_object_get(node, "heartbeat_at"));
    int64_t at = 0;
    if (!hb || st_time_parse_rfc3339(hb, &at) < 0)
        return false;
    int64_t lease = json_integer_value(json_object_get(node, "lease_seconds"));
    if (lease <= 0)
        lease = ST_COMPUTE_NODE_LEASE_DEFAULT;
    return now_ms - at <= lease * 1000;
}
