/* Flavors in the store: validation in Nova's terms, unique names through a
 * claim key, extra specs checked where stratos reads them, and the access
 * list of private flavors; see flavor.h. */
#include "flavor.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "compute/resource_policy.h"
#include "lib/cleanup.h"
#include "lib/json.h"
#include "lib/times.h"
#include "lib/uuid.h"
#include "store/kv.h"

#define INT32_LIMIT    2147483647LL
#define CLAIM_GRACE_MS (30 * 1000)
#define UPDATE_RETRIES 16

static const char *str(json_t *o, const char *k)
{
    return json_string_value(json_object_get(o, k));
}

static char *flavor_key(const char *id)
{
    return st_sprintf("%s%s", ST_FLAVORS_PREFIX, id);
}

static char *name_key(const char *name)
{
    return st_sprintf("%s%s", ST_FLAVOR_NAMES_PREFIX, name);
}

static void now_rfc3339(char buf[ST_TIME_RFC3339_LEN])
{
    st_time_rfc3339(st_time_now_ms() / 1000, buf, ST_TIME_RFC3339_LEN);
}

/* A decimal integer in a string, nothing around it. */
static bool parse_int_text(const char *s, int64_t *ret)
{
    if (!s || !s[0] || s[0] == ' ' || s[0] == '+')
        return false;
    char *end = NULL;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (errno || *end)
        return false;
    *ret = v;
    return true;
}

/* Nova takes these as integers or strings of digits. */
static int get_int_field(json_t *req, const char *key, bool required, int64_t min, int64_t max,
                         int64_t *ret, struct st_err **err)
{
    json_t *v = json_object_get(req, key);
    if (!v || json_is_null(v)) {
        if (required)
            return st_err_set(err, -EINVAL, "Invalid input: '%s' is a required property", key);
        return -ENOENT;
    }
    int64_t n;
    if (json_is_integer(v))
        n = json_integer_value(v);
    else if (json_is_string(v) && parse_int_text(json_string_value(v), &n))
        ;
    else if (json_is_string(v) && json_string_value(v)[0] == '\0' && !required)
        return -ENOENT; /* "swap": "" means none, as Nova shows it */
    else
        return st_err_set(err, -EINVAL, "Invalid input for field '%s': must be an integer", key);
    if (n < min || n > max)
        return st_err_set(err, -EINVAL,
                          "Invalid input for field '%s': %lld is out of range [%lld, %lld]", key,
                          (long long)n, (long long)min, (long long)max);
    *ret = n;
    return 0;
}

static bool id_char(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
           c == ' ' || c == '_' || c == '-';
}

/* Nova: ^(?! )[a-zA-Z0-9. _-]+(?<! )$, at most 255. */
static int check_id(const char *id, struct st_err **err)
{
    size_t len = strlen(id);
    if (len == 0 || len > ST_FLAVOR_NAME_MAX)
        return st_err_set(err, -EINVAL, "Invalid input for field 'id': must be 1 to %d characters",
                          ST_FLAVOR_NAME_MAX);
    if (id[0] == ' ' || id[len - 1] == ' ' || strcmp(id, ".") == 0 || strcmp(id, "..") == 0)
        return st_err_set(err, -EINVAL, "Invalid input for field 'id': '%s'", id);
    for (const char *c = id; *c; c++)
        if (!id_char(*c))
            return st_err_set(err, -EINVAL,
                              "Invalid input for field 'id': '%s' may only hold letters, digits, "
                              "'.', ' ', '_' and '-'",
                              id);
    return 0;
}

static int check_name(const char *name, struct st_err **err)
{
    size_t len = name ? strlen(name) : 0;
    if (len == 0)
        return st_err_set(err, -EINVAL, "Invalid input: 'name' is a required property");
    if (len > ST_FLAVOR_NAME_MAX)
        return st_err_set(err, -EINVAL, "Invalid input for field 'name': longer than %d characters",
                          ST_FLAVOR_NAME_MAX);
    if (name[0] == ' ' || name[len - 1] == ' ')
        return st_err_set(err, -EINVAL,
                          "Invalid input for field 'name': leading or trailing whitespace");
    for (const unsigned char *c = (const unsigned char *)name; *c; c++)
        if (*c < 0x20 || *c == 0x7f)
            return st_err_set(err, -EINVAL,
                              "Invalid input for field 'name': contains a control character");
    return 0;
}

/* ---- extra specs ---- */

static bool spec_key_char(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
           c == '_' || c == ':' || c == '.' || c == ' ' || c == '/';
}

struct int_spec {
    const char *key;
    int64_t min, max;
};

/* The keys stratos reads, with the range that makes sense for each. */
static const struct int_spec int_specs[] = {
    {"quota:cpu_shares", 2, 262144}, /* cgroup v1 cpu.shares bounds */
    {"quota:cpu_period", 1000, 1000000},
    {"quota:cpu_quota", -1, 1000000000}, /* per vCPU, as Nova; <= 0 is no limit */
    {"resources:cpu_reservation_mhz", 0, 100000000},
    {"resources:cpu_limit_mhz", 1, 100000000},
    {"resources:memory_reservation_mb", 0, INT32_LIMIT},
    {"resources:memory_limit_mb", 1, INT32_LIMIT},
    {"resources:pids_limit", 16, 4194304},
};

int st_flavor_check_extra_spec(const char *key, const char *value, struct st_err **err)
{
    size_t klen = key ? strlen(key) : 0;
    if (klen == 0 || klen > 255)
        return st_err_set(err, -EINVAL, "extra spec key must be 1 to 255 characters");
    for (const char *c = key; *c; c++)
        if (!spec_key_char(*c))
            return st_err_set(err, -EINVAL,
                              "extra spec key '%s' may only hold letters, digits and "
                              "'-_:. /'",
                              key);
    if (!value)
        return st_err_set(err, -EINVAL, "extra spec %s: the value must be a string", key);
    if (strlen(value) > 255)
        return st_err_set(err, -EINVAL, "extra spec %s: the value is longer than 255 characters",
                          key);
    for (size_t i = 0; i < ST_ARRAY_SIZE(int_specs); i++) {
        if (strcmp(key, int_specs[i].key) != 0)
            continue;
        int64_t n;
        if (!parse_int_text(value, &n))
            return st_err_set(err, -EINVAL, "extra spec %s: '%s' is not an integer", key, value);
        if (n < int_specs[i].min || n > int_specs[i].max)
            return st_err_set(err, -EINVAL, "extra spec %s: %lld is out of range [%lld, %lld]", key,
                              (long long)n, (long long)int_specs[i].min,
                              (long long)int_specs[i].max);
        if (strcmp(key, "quota:cpu_quota") == 0 && n > 0 && n < 1000)
            return st_err_set(err, -EINVAL,
                              "extra spec quota:cpu_quota: %lld us is below the kernel's "
                              "minimum of 1000 (or -1 for no limit)",
                              (long long)n);
        return 0;
    }
    if (strcmp(key, "stratos:resource_policy") == 0) {
        int r = st_resource_policy_check_name(value, err);
        return r < 0 ? st_err_prefix(err, r, "extra spec stratos:resource_policy") : 0;
    }
    /* The container driver's seccomp filter (agent/drivers/seccomp.h): only
     * an admin's flavor may lift it, never a user's image property. */
    if (strcmp(key, "stratos:seccomp") == 0) {
        if (strcmp(value, "runtime/default") != 0 && strcmp(value, "unconfined") != 0)
            return st_err_set(err, -EINVAL,
                              "extra spec stratos:seccomp: '%s' is neither 'runtime/default' nor "
                              "'unconfined'",
                              value);
        return 0;
    }
    if (strncmp(key, "stratos:", 8) == 0)
        return st_err_set(err, -EINVAL,
                          "unknown extra spec %s (stratos reads stratos:resource_policy and "
                          "stratos:seccomp)",
                          key);
    return 0;
}

/* Extra spec values as Nova stores them: text. */
static json_t *spec_text(json_t *v)
{
    if (json_is_string(v))
        return json_incref(v);
    if (json_is_integer(v)) {
        st_autofree char *s = st_sprintf("%lld", (long long)json_integer_value(v));
        return json_string(s);
    }
    if (json_is_real(v)) {
        st_autofree char *s = st_sprintf("%g", json_real_value(v));
        return json_string(s);
    }
    if (json_is_boolean(v))
        return json_string(json_is_true(v) ? "True" : "False");
    return NULL;
}

/* ---- name claims ---- */

static char *claim_value(const char *id)
{
    st_autoptr(json_t) v = json_pack("{s:s, s:I}", "id", id, "at", (json_int_t)st_time_now_ms());
    return st_json_dumps(v);
}

static int claim_name(struct st_kv *kv, const char *name, const char *id, struct st_err **err)
{
    st_autofree char *key = name_key(name);
    st_autofree char *value = claim_value(id);
    for (int attempt = 0; attempt < 5; attempt++) {
        int r = st_kv_put(kv, key, value, strlen(value), ST_KV_ABSENT, NULL, err);
        if (r != -ECANCELED)
            return r;
        st_err_clear(err);
        st_autoptr(st_kv_entry) claim = NULL;
        r = st_kv_get(kv, key, &claim, err);
        if (r == -ENOENT) {
            st_err_clear(err);
            continue;
        }
        if (r < 0)
            return r;
        st_autoptr(json_t) cv = NULL;
        const char *owner = NULL;
        int64_t at = 0;
        if (st_json_parse_object(claim->value, claim->value_len, &cv, NULL) == 0) {
            owner = str(cv, "id");
            at = json_integer_value(json_object_get(cv, "at"));
        }
        st_autoptr(json_t) flavor = NULL;
        r = owner ? st_flavor_get(kv, owner, &flavor, err) : -ENOENT;
        if (r == 0 && strcmp(str(flavor, "name") ?: "", name) == 0)
            return st_err_set(err, -EEXIST, "Flavor with name %s already exists.", name);
        if (r < 0 && r != -ENOENT)
            return r;
        st_err_clear(err);
        /* a young claim belongs to a create between its claim and its write */
        if (owner && st_time_now_ms() - at < CLAIM_GRACE_MS)
            return st_err_set(err, -EEXIST, "Flavor with name %s already exists.", name);
        r = st_kv_put(kv, key, value, strlen(value), claim->mod_rev, NULL, err);
        if (r != -ECANCELED)
            return r;
        st_err_clear(err);
    }
    return st_err_set(err, -EEXIST, "Flavor with name %s already exists.", name);
}

/* Drops the claim of name if it still names id. */
static void release_name(struct st_kv *kv, const char *name, const char *id)
{
    st_autofree char *key = name_key(name);
    st_autoptr(st_kv_entry) claim = NULL;
    if (st_kv_get(kv, key, &claim, NULL) < 0)
        return;
    st_autoptr(json_t) cv = NULL;
    if (st_json_parse_object(claim->value, claim->value_len, &cv, NULL) == 0 &&
        strcmp(str(cv, "id") ?: "", id) == 0)
        st_kv_delete(kv, key, claim->mod_rev, NULL, NULL);
}

/* ---- create, read, delete ---- */

static int build_flavor(json_t *req, json_t **ret, struct st_err **err)
{
    if (!json_is_object(req))
        return st_err_set(err, -EINVAL, "Invalid input: 'flavor' must be an object");
    const char *name = NULL;
    json_t *jname = json_object_get(req, "name");
    if (jname && !json_is_string(jname))
        return st_err_set(err, -EINVAL, "Invalid input for field 'name': must be a string");
    name = json_string_value(jname);
    int r = check_name(name, err);
    if (r < 0)
        return r;
    int64_t vcpus, ram, disk, swap = 0, ephemeral = 0;
    if ((r = get_int_field(req, "vcpus", true, 1, INT32_LIMIT, &vcpus, err)) < 0 ||
        (r = get_int_field(req, "ram", true, 1, INT32_LIMIT, &ram, err)) < 0 ||
        (r = get_int_field(req, "disk", true, 0, INT32_LIMIT, &disk, err)) < 0)
        return r;
    if ((r = get_int_field(req, "swap", false, 0, INT32_LIMIT, &swap, err)) < 0 && r != -ENOENT)
        return r;
    if ((r = get_int_field(req, "ephemeral", false, 0, INT32_LIMIT, &ephemeral, err)) < 0 &&
        r != -ENOENT)
        return r;
    double rxtx = 1.0;
    json_t *v = json_object_get(req, "rxtx_factor");
    if (v && !json_is_null(v)) {
        if (!json_is_number(v) || json_number_value(v) <= 0 || json_number_value(v) > 1e6)
            return st_err_set(err, -EINVAL,
                              "Invalid input for field 'rxtx_factor': must be a positive number");
        rxtx = json_number_value(v);
    }
    bool is_public = true;
    v = json_object_get(req, "is_public");
    if (v && !json_is_null(v)) {
        if (!json_is_boolean(v))
            return st_err_set(err, -EINVAL,
                              "Invalid input for field 'is_public': must be a "
                              "boolean");
        is_public = json_is_true(v);
    }
    v = json_object_get(req, "description");
    if (v && !json_is_null(v) && (!json_is_string(v) || strlen(json_string_value(v)) > 65535))
        return st_err_set(err, -EINVAL,
                          "Invalid input for field 'description': a string of at most 65535 "
                          "characters");
    char id[ST_UUID_LEN];
    json_t *jid = json_object_get(req, "id");
    st_autofree char *given = NULL;
    if (json_is_string(jid))
        given = st_strdup(json_string_value(jid));
    else if (json_is_integer(jid))
        given = st_sprintf("%lld", (long long)json_integer_value(jid));
    else if (jid && !json_is_null(jid))
        return st_err_set(err, -EINVAL, "Invalid input for field 'id': must be a string or null");
    if (given && (r = check_id(given, err)) < 0)
        return r;
    if (!given)
        st_uuid_new(id);
    char now[ST_TIME_RFC3339_LEN];
    now_rfc3339(now);
    *ret = json_pack("{s:s, s:s, s:I, s:I, s:I, s:I, s:I, s:f, s:b, s:b, s:O, s:{}, s:[], s:s, "
                     "s:s}",
                     "id", given ? given : id, "name", name, "vcpus", (json_int_t)vcpus, "ram",
                     (json_int_t)ram, "disk", (json_int_t)disk, "swap", (json_int_t)swap,
                     "ephemeral", (json_int_t)ephemeral, "rxtx_factor", rxtx, "is_public",
                     is_public, "disabled", 0, "description", v ? v : json_null(), "extra_specs",
                     "access", "created_at", now, "updated_at", now);
    return 0;
}

int st_flavor_create(struct st_kv *kv, json_t *req, json_t **ret, struct st_err **err)
{
    st_autoptr(json_t) doc = NULL;
    int r = build_flavor(req, &doc, err);
    if (r < 0)
        return r;
    st_autoptr(st_kv_list) all = NULL;
    if ((r = st_kv_list(kv, ST_FLAVORS_PREFIX, NULL, ST_FLAVOR_MAX, &all, err)) < 0)
        return r;
    if (all->count >= ST_FLAVOR_MAX)
        return st_err_set(err, -EDQUOT, "there are %d flavors already, the limit", ST_FLAVOR_MAX);
    const char *id = str(doc, "id"), *name = str(doc, "name");
    if ((r = claim_name(kv, name, id, err)) < 0)
        return r;
    st_autofree char *key = flavor_key(id);
    st_autofree char *value = st_json_dumps(doc);
    r = st_kv_put(kv, key, value, strlen(value), ST_KV_ABSENT, NULL, err);
    if (r < 0) {
        release_name(kv, name, id);
        if (r == -ECANCELED) {
            st_err_clear(err);
            return st_err_set(err, -EEXIST, "Flavor with ID %s already exists.", id);
        }
        return st_err_prefix(err, r, "storing flavor %s", name);
    }
    if (ret)
        *ret = st_steal(&doc);
    return 0;
}

static int read_flavor(struct st_kv *kv, const char *id, json_t **ret, int64_t *ret_rev,
                       struct st_err **err)
{
    if (!id || check_id(id, NULL) < 0)
        return st_err_set(err, -ENOENT, "Flavor %s could not be found.", id ? id : "");
    st_autofree char *key = flavor_key(id);
    st_autoptr(st_kv_entry) e = NULL;
    int r = st_kv_get(kv, key, &e, err);
    if (r == -ENOENT) {
        st_err_clear(err);
        return st_err_set(err, -ENOENT, "Flavor %s could not be found.", id);
    }
    if (r < 0)
        return r;
    if ((r = st_json_parse_object(e->value, e->value_len, ret, err)) < 0)
        return st_err_prefix(err, r, "reading %s", key);
    if (ret_rev)
        *ret_rev = e->mod_rev;
    return 0;
}

int st_flavor_get(struct st_kv *kv, const char *id, json_t **ret, struct st_err **err)
{
    return read_flavor(kv, id, ret, NULL, err);
}

int st_flavor_list(struct st_kv *kv, json_t **ret, struct st_err **err)
{
    st_autoptr(st_kv_list) l = NULL;
    int r = st_kv_list(kv, ST_FLAVORS_PREFIX, NULL, 0, &l, err);
    if (r < 0)
        return r;
    json_t *out = json_array();
    for (size_t i = 0; i < l->count; i++) {
        json_t *doc = NULL;
        if (st_json_parse_object(l->entries[i].value, l->entries[i].value_len, &doc, NULL) == 0)
            json_array_append_new(out, doc);
    }
    *ret = out;
    return 0;
}

int st_flavor_delete(struct st_kv *kv, const char *id, struct st_err **err)
{
    st_autoptr(json_t) doc = NULL;
    int64_t rev = 0;
    int r = read_flavor(kv, id, &doc, &rev, err);
    if (r < 0)
        return r;
    st_autofree char *key = flavor_key(id);
    r = st_kv_delete(kv, key, rev, NULL, err);
    if (r == -ENOENT || r == -ECANCELED) {
        st_err_clear(err);
        return st_err_set(err, -ENOENT, "Flavor %s could not be found.", id);
    }
    if (r < 0)
        return r;
    release_name(kv, str(doc, "name"), id);
    return 0;
}

bool st_flavor_visible(json_t *flavor, const char *project_id)
{
    if (json_is_true(json_object_get(flavor, "is_public")))
        return true;
    size_t i;
    json_t *p;
    json_array_foreach(json_object_get(flavor, "access"), i, p)
    {
        if (project_id && json_is_string(p) && strcmp(json_string_value(p), project_id) == 0)
            return true;
    }
    return false;
}

/* ---- updates ---- */

typedef int (*update_fn)(json_t *doc, void *userdata, struct st_err **err);

/* Read-modify-write with compare-and-swap, retried when another writer won. */
static int update_flavor(struct st_kv *kv, const char *id, update_fn fn, void *userdata,
                         json_t **ret, struct st_err **err)
{
    for (int attempt = 0; attempt < UPDATE_RETRIES; attempt++) {
        st_autoptr(json_t) doc = NULL;
        int64_t rev = 0;
        int r = read_flavor(kv, id, &doc, &rev, err);
        if (r < 0)
            return r;
        if ((r = fn(doc, userdata, err)) < 0)
            return r;
        char now[ST_TIME_RFC3339_LEN];
        now_rfc3339(now);
        json_object_set_new(doc, "updated_at", json_string(now));
        st_autofree char *key = flavor_key(id);
        st_autofree char *value = st_json_dumps(doc);
        r = st_kv_put(kv, key, value, strlen(value), rev, NULL, err);
        if (r == -ECANCELED) {
            st_err_clear(err);
            continue;
        }
        if (r < 0)
            return st_err_prefix(err, r, "updating flavor %s", id);
        if (ret)
            *ret = st_steal(&doc);
        return 0;
    }
    return st_err_set(err, -ECANCELED, "flavor %s kept changing; try again", id);
}

static int merge_specs(json_t *doc, void *userdata, struct st_err **err)
{
    json_t *add = userdata;
    json_t *specs = json_object_get(doc, "extra_specs");
    if (!json_is_object(specs)) {
        specs = json_object();
        json_object_set_new(doc, "extra_specs", specs);
    }
    json_object_update(specs, add);
    if (json_object_size(specs) > ST_FLAVOR_EXTRA_SPECS_MAX)
        return st_err_set(err, -EINVAL, "a flavor may hold at most %d extra specs",
                          ST_FLAVOR_EXTRA_SPECS_MAX);
    return 0;
}

int st_flavor_set_extra_specs(struct st_kv *kv, const char *id, json_t *specs, json_t **ret,
                              struct st_err **err)
{
    if (!json_is_object(specs))
        return st_err_set(err, -EINVAL, "Invalid input: 'extra_specs' must be an object");
    st_autoptr(json_t) text = json_object();
    const char *key;
    json_t *v;
    json_object_foreach(specs, key, v)
    {
        json_t *t = spec_text(v);
        if (!t)
            return st_err_set(err, -EINVAL, "extra spec %s: the value must be a string", key);
        json_object_set_new(text, key, t);
        int r = st_flavor_check_extra_spec(key, json_string_value(t), err);
        if (r < 0)
            return r;
    }
    int r = update_flavor(kv, id, merge_specs, text, NULL, err);
    if (r < 0)
        return r;
    if (ret)
        *ret = st_steal(&text);
    return 0;
}

struct unset_ctx {
    const char *id, *key;
};

static int drop_spec(json_t *doc, void *userdata, struct st_err **err)
{
    struct unset_ctx *c = userdata;
    if (json_object_del(json_object_get(doc, "extra_specs"), c->key) < 0)
        return st_err_set(err, -ENOENT, "Flavor %s has no extra specs with key %s.", c->id, c->key);
    return 0;
}

int st_flavor_unset_extra_spec(struct st_kv *kv, const char *id, const char *key,
                               struct st_err **err)
{
    struct unset_ctx c = {id, key};
    return update_flavor(kv, id, drop_spec, &c, NULL, err);
}

struct access_ctx {
    const char *id, *project_id;
    bool add;
};

static int change_access(json_t *doc, void *userdata, struct st_err **err)
{
    struct access_ctx *c = userdata;
    if (json_is_true(json_object_get(doc, "is_public")))
        return st_err_set(err, -EINVAL, "Can not %s access to a public flavor.",
                          c->add ? "add" : "remove");
    json_t *access = json_object_get(doc, "access");
    if (!json_is_array(access)) {
        access = json_array();
        json_object_set_new(doc, "access", access);
    }
    size_t i;
    json_t *p;
    json_array_foreach(access, i, p)
    {
        if (strcmp(json_string_value(p) ?: "", c->project_id) != 0)
            continue;
        if (c->add)
            return st_err_set(err, -EEXIST,
                              "Flavor access already exists for flavor %s and project %s "
                              "combination.",
                              c->id, c->project_id);
        json_array_remove(access, i);
        return 0;
    }
    if (!c->add)
        return st_err_set(err, -ENOENT, "Flavor access not found for %s / %s combination.", c->id,
                          c->project_id);
    if (json_array_size(access) >= 1000)
        return st_err_set(err, -EINVAL, "a flavor may be shared with at most 1000 projects");
    json_array_append_new(access, json_string(c->project_id));
    return 0;
}

int st_flavor_access(struct st_kv *kv, const char *id, const char *project_id, bool add,
                     struct st_err **err)
{
    size_t len = project_id ? strlen(project_id) : 0;
    if (len == 0 || len > 64 || strchr(project_id, '/'))
        return st_err_set(err, -EINVAL, "Invalid input for field 'tenant'");
    struct access_ctx c = {id, project_id, add};
    return update_flavor(kv, id, change_access, &c, NULL, err);
}
