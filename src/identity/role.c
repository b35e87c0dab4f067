/* Roles: global names (no domain) that grants bind users to. The built-in
 * admin, member and reader carry the policy engine's own rules and can be
 * neither deleted, renamed nor redefined; a custom role may carry rules
 * ({allow, deny, all_projects}) kept in its record. The policy engine holds
 * the custom roles of every role record: reloaded all at once when the
 * service starts, after each role write here, and whenever the identity
 * watch (watch.c) sees a role change made through another controller. */
#include "identity-priv.h"

#include <errno.h>
#include <string.h>

#include "identity/records.h"
#include "lib/json.h"
#include "lib/log.h"
#include "lib/uuid.h"
#include "store/kv.h"

#define PATTERNS_MAX 256

static const char *const builtin_roles[] = {"admin", "member", "reader"};

static bool is_builtin(const char *name)
{
    for (size_t i = 0; i < ST_ARRAY_SIZE(builtin_roles); i++)
        if (name && strcmp(name, builtin_roles[i]) == 0)
            return true;
    return false;
}

struct rules {
    const char **allow;
    size_t n_allow;
    const char **deny;
    size_t n_deny;
    bool all_projects;
};

static void rules_clear(struct rules *r)
{
    free(r->allow);
    free(r->deny);
}

/* Patterns of rules[key] (borrowed from the JSON). */
static int parse_patterns(json_t *rules, const char *key, const char ***ret, size_t *ret_n,
                          struct st_err **err)
{
    json_t *arr;
    int r = st_json_get_array(rules, key, false, &arr, err);
    if (r == -ENOENT)
        return 0;
    if (r < 0)
        return st_err_prefix(err, r, "rules");
    if (json_array_size(arr) > PATTERNS_MAX)
        return st_err_set(err, -EINVAL, "rules: at most %d patterns in '%s'", PATTERNS_MAX, key);
    const char **out = st_new0(const char *, json_array_size(arr));
    size_t i;
    json_t *p;
    json_array_foreach(arr, i, p)
    {
        if (!json_is_string(p)) {
            free(out);
            return st_err_set(err, -EINVAL, "rules: '%s' must be an array of strings", key);
        }
        out[i] = json_string_value(p);
    }
    *ret = out;
    *ret_n = json_array_size(arr);
    return 0;
}

static int parse_rules(json_t *rules, struct rules *ret, struct st_err **err)
{
    *ret = (struct rules){0};
    if (!json_is_object(rules))
        return st_err_set(err, -EINVAL, "field 'rules' must be an object");
    const char *key;
    json_t *v;
    json_object_foreach(rules, key, v)
    {
        if (strcmp(key, "allow") != 0 && strcmp(key, "deny") != 0 &&
            strcmp(key, "all_projects") != 0)
            return st_err_set(err, -EINVAL,
                              "rules: unknown field '%s' (expected allow, deny, all_projects)",
                              key);
    }
    int r = st_json_get_bool(rules, "all_projects", false, &ret->all_projects, err);
    if (r < 0 && r != -ENOENT)
        return st_err_prefix(err, r, "rules");
    r = parse_patterns(rules, "allow", &ret->allow, &ret->n_allow, err);
    if (r == 0)
        r = parse_patterns(rules, "deny", &ret->deny, &ret->n_deny, err);
    if (r < 0)
        rules_clear(ret);
    return r;
}

/* Checks rules the way the policy engine will take them, on a scratch
 * policy so that a bad role never reaches the live one. */
static int validate_rules(const char *name, json_t *rules, struct st_err **err)
{
    struct rules parsed;
    int r = parse_rules(rules, &parsed, err);
    if (r < 0)
        return r;
    st_autoptr(st_policy) scratch = st_policy_new();
    r = st_policy_set_role(scratch, name, parsed.allow, parsed.n_allow, parsed.deny, parsed.n_deny,
                           parsed.all_projects, err);
    rules_clear(&parsed);
    return r < 0 ? st_err_prefix(err, r, "rules") : 0;
}

/* The custom roles' rules of one page of role records, appended to defs
 * (borrowing from docs, which keeps the parsed records). A record that
 * does not parse, or whose rules do not, is left out with a warning: it
 * was validated when written, so only another version could have made it,
 * and one bad role must not keep every other from loading. */
static void collect_rules(const struct st_kv_list *page, json_t *docs,
                          struct st_policy_rules **defs, size_t *n, size_t *cap)
{
    for (size_t i = 0; i < page->count; i++) {
        json_t *doc = NULL;
        if (st_json_parse_object(page->entries[i].value, page->entries[i].value_len, &doc, NULL) <
            0) {
            st_log_warn("role_skipped", "key=%s reason=\"not a JSON object\"",
                        page->entries[i].key);
            continue;
        }
        json_array_append_new(docs, doc);
        json_t *rules = json_object_get(doc, "rules");
        const char *name = json_string_value(json_object_get(doc, "name"));
        if (!rules || json_is_null(rules) || !name || is_builtin(name))
            continue;
        struct rules parsed;
        st_autoptr(st_err) err = NULL;
        if (validate_rules(name, rules, &err) < 0 || parse_rules(rules, &parsed, &err) < 0) {
            st_log_warn("role_skipped", "role=\"%s\" reason=\"%s\"", name, st_err_msg(err));
            continue;
        }
        if (*n == *cap) {
            *cap = *cap ? 2 * *cap : 8;
            *defs = st_xrealloc(*defs, *cap * sizeof(**defs));
        }
        (*defs)[(*n)++] = (struct st_policy_rules){name,        parsed.allow,  parsed.n_allow,
                                                   parsed.deny, parsed.n_deny, parsed.all_projects};
    }
}

int st_identity_roles_reload(struct st_identity *id, int64_t *ret_rev, struct st_err **err)
{
    pthread_mutex_lock(&id->roles_lock);
    st_autoptr(json_t) docs = json_array();
    struct st_policy_rules *defs = NULL;
    size_t n = 0, cap = 0;
    int64_t rev = 0;
    st_autofree char *last = NULL;
    int r;
    for (;;) {
        st_autoptr(st_kv_list) page = NULL;
        r = st_kv_list(id->kv, ST_IDENTITY_ROLES_PREFIX, last, 500, &page, err);
        if (r < 0) {
            st_err_prefix(err, r, "listing roles");
            break;
        }
        if (!rev)
            rev = page->revision;
        collect_rules(page, docs, &defs, &n, &cap);
        if (!page->more || page->count == 0)
            break;
        free(last);
        last = st_strdup(page->entries[page->count - 1].key);
    }
    if (r == 0)
        r = st_policy_replace_custom(id->policy, defs, n, err);
    for (size_t i = 0; i < n; i++) {
        free((void *)defs[i].allow);
        free((void *)defs[i].deny);
    }
    free(defs);
    pthread_mutex_unlock(&id->roles_lock);
    if (r == 0 && ret_rev)
        *ret_rev = rev;
    return r;
}

/* After a role write: this controller enforces it at once (the watch would
 * too, a moment later). The write is done, so a failed reload is not the
 * caller's failure: it is logged, and the watch retries. */
static void reload_after_write(struct st_identity *id, const char *name)
{
    st_autoptr(st_err) err = NULL;
    if (st_identity_roles_reload(id, NULL, &err) < 0)
        st_log_warn("roles_reload_failed", "role=\"%s\" error=\"%s\"", name, st_err_msg(err));
}

static int err_builtin(struct st_err **err, const char *name)
{
    return st_err_set(err, -EPERM, "role '%s' is built in", name);
}

/* Copies description and rules from src onto doc, validated. */
static int apply_fields(json_t *doc, json_t *src, const char *name, struct st_err **err)
{
    json_t *v = json_object_get(src, "description");
    if (v) {
        if (!json_is_null(v) && !json_is_string(v))
            return st_err_set(err, -EINVAL, "field 'description' must be a string");
        if (json_is_string(v) && json_string_length(v) > 65535)
            return st_err_set(err, -EINVAL, "description is too long");
        json_object_set(doc, "description", v);
    }
    v = json_object_get(src, "rules");
    if (v) {
        if (is_builtin(name))
            return err_builtin(err, name);
        if (json_is_null(v)) {
            json_object_del(doc, "rules");
        } else {
            int r = validate_rules(name, v, err);
            if (r < 0)
                return r;
            json_object_set(doc, "rules", v);
        }
    }
    return 0;
}

int st_identity_role_create(struct st_identity *id, json_t *req, json_t **ret, struct st_err **err)
{
    if (!json_is_object(req))
        return st_err_set(err, -EINVAL, "role must be an object");
    const char *name;
    int r = st_json_get_str(req, "name", true, &name, err);
    if (r < 0)
        return r;
    r = st_idrec_check_name("role", name, err);
    if (r < 0)
        return r;
    json_t *domain = json_object_get(req, "domain_id");
    if (domain && !json_is_null(domain))
        return st_err_set(err, -EINVAL, "domain-specific roles are not supported");

    char rid[ST_HEX32_LEN];
    st_uuid_hex32(rid);
    st_autoptr(json_t) doc = json_pack("{s:s, s:s, s:n, s:n, s:{}}", "id", rid, "name", name,
                                       "domain_id", "description", "options");
    r = apply_fields(doc, req, name, err);
    if (r < 0)
        return r;
    st_autoptr(st_err) local = NULL;
    r = st_idrec_create(id->kv, "roles", doc, &local);
    if (r == -EEXIST)
        return st_identity_err_duplicate(err, "role", name, NULL);
    if (r < 0) {
        st_err_set(err, r, "%s", st_err_msg(local));
        return st_err_prefix(err, r, "creating role '%s'", name);
    }
    reload_after_write(id, name);
    *ret = st_steal(&doc);
    return 0;
}

int st_identity_role_get(struct st_identity *id, const char *role_id, json_t **ret,
                         struct st_err **err)
{
    return st_identity_get_record(id, "roles", "role", role_id, ret, NULL, err);
}

int st_identity_role_find(struct st_identity *id, const char *name, json_t **ret,
                          struct st_err **err)
{
    st_autoptr(st_err) local = NULL;
    int r = st_idrec_find(id->kv, "roles", NULL, name, ret, &local);
    if (r == -ENOENT)
        return st_err_set(err, r, "Could not find role: %s.", name ? name : "");
    if (r < 0)
        return st_err_set(err, r, "finding role '%s': %s", name, st_err_msg(local));
    return 0;
}

int st_identity_role_list(struct st_identity *id, const char *name, json_t **ret,
                          struct st_err **err)
{
    return st_identity_list_filtered(id, "roles", name, NULL, ret, err);
}

/* Revokes the tokens of everyone holding role_id: their tokens name it. */
static int revoke_holders(struct st_identity *id, const char *role_id, struct st_err **err)
{
    st_autoptr(json_t) grants = NULL;
    int r = st_identity_grant_list(id, NULL, NULL, role_id, &grants, err);
    size_t i;
    json_t *g;
    json_array_foreach(grants, i, g)
    {
        if (r == 0)
            r = st_identity_revoke_user(id, json_string_value(json_object_get(g, "user_id")), err);
    }
    return r;
}

int st_identity_role_update(struct st_identity *id, const char *role_id, json_t *patch,
                            json_t **ret, struct st_err **err)
{
    if (!json_is_object(patch))
        return st_err_set(err, -EINVAL, "role must be an object");
    for (int attempt = 0;; attempt++) {
        st_autoptr(json_t) doc = NULL;
        int64_t rev;
        int r = st_identity_get_record(id, "roles", "role", role_id, &doc, &rev, err);
        if (r < 0)
            return r;
        st_autofree char *old_name = st_strdup(json_string_value(json_object_get(doc, "name")));
        const char *name = old_name;
        r = st_json_get_str(patch, "name", false, &name, err);
        if (r < 0 && r != -ENOENT)
            return r;
        bool renamed = strcmp(name, old_name) != 0;
        if (renamed) {
            if (is_builtin(old_name))
                return err_builtin(err, old_name);
            if (is_builtin(name))
                return st_identity_err_duplicate(err, "role", name, NULL);
            r = st_idrec_check_name("role", name, err);
            if (r < 0)
                return r;
            json_object_set_new(doc, "name", json_string(name));
        }
        r = apply_fields(doc, patch, name, err);
        if (r < 0)
            return r;
        st_autoptr(st_err) local = NULL;
        r = st_idrec_update(id->kv, "roles", doc, rev, &local);
        if (r == -ECANCELED && attempt < 20)
            continue;
        if (r == -EEXIST)
            return st_identity_err_duplicate(err, "role", name, NULL);
        if (r < 0) {
            st_err_set(err, r, "%s", st_err_msg(local));
            return st_err_prefix(err, r, "updating role %s", role_id);
        }
        reload_after_write(id, name);
        /* Tokens carry role names: those naming the old one must go. */
        if (renamed) {
            r = revoke_holders(id, role_id, err);
            if (r < 0)
                return r;
        }
        *ret = st_steal(&doc);
        return 0;
    }
}

int st_identity_role_delete(struct st_identity *id, const char *role_id, struct st_err **err)
{
    st_autoptr(json_t) doc = NULL;
    int r = st_identity_get_record(id, "roles", "role", role_id, &doc, NULL, err);
    if (r < 0)
        return r;
    const char *name = json_string_value(json_object_get(doc, "name"));
    if (is_builtin(name))
        return err_builtin(err, name);
    pthread_mutex_lock(&id->cascade_lock);
    r = st_identity_delete_record(id, "roles", "role", role_id, err);
    if (r == 0)
        r = st_identity_grant_purge(id, NULL, NULL, role_id, err);
    pthread_mutex_unlock(&id->cascade_lock);
    reload_after_write(id, name);
    return r;
}
