/* Users: names unique within a domain, argon2id password hashes that never
 * leave this module (every record handed out is stripped of its hash). A
 * password change, a disable or a delete revokes the user's tokens; a delete
 * also removes their role assignments. */
#include "identity-priv.h"

#include <errno.h>
#include <string.h>

#include "identity/records.h"
#include "lib/json.h"
#include "lib/uuid.h"

/* Copies the settable fields present in src (except the password) onto
 * doc, validated. */
static int apply_fields(json_t *doc, json_t *src, struct st_err **err)
{
    const char *s;
    bool b;
    json_t *v;
    int r = st_json_get_str(src, "name", false, &s, err);
    if (r == 0) {
        r = st_idrec_check_name("user", s, err);
        if (r < 0)
            return r;
        json_object_set_new(doc, "name", json_string(s));
    } else if (r != -ENOENT) {
        return r;
    }
    r = st_json_get_bool(src, "enabled", false, &b, err);
    if (r == 0)
        json_object_set_new(doc, "enabled", json_boolean(b));
    else if (r != -ENOENT)
        return r;
    /* Keystone keeps these extra attributes of a user as given. */
    static const char *const extras[] = {"description", "email"};
    for (size_t i = 0; i < ST_ARRAY_SIZE(extras); i++) {
        r = st_json_get_str(src, extras[i], false, &s, err);
        if (r == 0 && strlen(s) > 65535)
            return st_err_set(err, -EINVAL, "field '%s' is too long", extras[i]);
        if (r == 0)
            json_object_set_new(doc, extras[i], json_string(s));
        else if (r != -ENOENT)
            return r;
    }
    v = json_object_get(src, "default_project_id");
    if (v) {
        if (json_is_null(v))
            json_object_set_new(doc, "default_project_id", json_null());
        else if (json_is_string(v) && json_string_length(v) > 0 && json_string_length(v) <= 64)
            json_object_set(doc, "default_project_id", v);
        else
            return st_err_set(err, -EINVAL, "field 'default_project_id' must be a project id");
    }
    r = st_json_get_obj(src, "options", false, &v, err);
    if (r == 0)
        json_object_set(doc, "options", v);
    else if (r != -ENOENT)
        return r;
    return 0;
}

/* The new password hash when src sets a password (*ret stays NULL when it
 * does not); null means "no password", stored as no hash. */
static int hash_password(struct st_identity *id, json_t *src, bool *ret_set, char **ret,
                         struct st_err **err)
{
    json_t *v = json_object_get(src, "password");
    *ret_set = v != NULL;
    if (!v || json_is_null(v))
        return 0;
    if (!json_is_string(v))
        return st_err_set(err, -EINVAL, "field 'password' must be a string");
    return st_password_hash(json_string_value(v), &id->cfg.cost, ret, err);
}

int st_identity_user_create(struct st_identity *id, json_t *req, json_t **ret, struct st_err **err)
{
    if (!json_is_object(req))
        return st_err_set(err, -EINVAL, "user must be an object");
    const char *name, *domain_id = ST_IDENTITY_DEFAULT_DOMAIN_ID;
    int r = st_json_get_str(req, "name", true, &name, err);
    if (r < 0)
        return r;
    r = st_json_get_str(req, "domain_id", false, &domain_id, err);
    if (r < 0 && r != -ENOENT)
        return r;
    r = st_identity_check_domain(id, domain_id, err);
    if (r < 0)
        return r;

    char rid[ST_HEX32_LEN], now[32];
    st_uuid_hex32(rid);
    st_identity_timestamp(id, now);
    st_autoptr(json_t) doc =
        json_pack("{s:s, s:s, s:s, s:b, s:n, s:{}, s:s}", "id", rid, "name", name, "domain_id",
                  domain_id, "enabled", 1, "default_project_id", "options", "created_at", now);
    r = apply_fields(doc, req, err);
    if (r < 0)
        return r;
    /* Refuse a duplicate before paying for the hash. */
    st_autoptr(json_t) existing = NULL;
    st_autoptr(st_err) found = NULL;
    r = st_idrec_find(id->kv, "users", domain_id, name, &existing, &found);
    if (r == 0)
        return st_identity_err_duplicate(err, "user", name, domain_id);
    if (r != -ENOENT)
        return st_err_set(err, r, "creating user '%s': %s", name,
                          found ? st_err_msg(found) : "failed");
    bool set;
    st_autofree char *hash = NULL;
    r = hash_password(id, req, &set, &hash, err);
    if (r < 0)
        return r;
    if (hash)
        json_object_set_new(doc, "password_hash", json_string(hash));
    st_autoptr(st_err) local = NULL;
    r = st_idrec_create(id->kv, "users", doc, &local);
    if (r == -EEXIST)
        return st_identity_err_duplicate(err, "user", name, domain_id);
    if (r < 0) {
        st_err_set(err, r, "%s", st_err_msg(local));
        return st_err_prefix(err, r, "creating user '%s'", name);
    }
    *ret = st_identity_user_public(doc);
    return 0;
}

int st_identity_user_get(struct st_identity *id, const char *user_id, json_t **ret,
                         struct st_err **err)
{
    st_autoptr(json_t) doc = NULL;
    int r = st_identity_get_record(id, "users", "user", user_id, &doc, NULL, err);
    if (r < 0)
        return r;
    *ret = st_identity_user_public(doc);
    return 0;
}

int st_identity_user_find(struct st_identity *id, const char *domain_id, const char *name,
                          json_t **ret, struct st_err **err)
{
    st_autoptr(json_t) doc = NULL;
    st_autoptr(st_err) local = NULL;
    int r = st_idrec_find(id->kv, "users", domain_id ? domain_id : ST_IDENTITY_DEFAULT_DOMAIN_ID,
                          name, &doc, &local);
    if (r == -ENOENT)
        return st_err_set(err, r, "Could not find user: %s.", name ? name : "");
    if (r < 0)
        return st_err_set(err, r, "finding user '%s': %s", name, st_err_msg(local));
    *ret = st_identity_user_public(doc);
    return 0;
}

int st_identity_user_list(struct st_identity *id, const char *name, const char *domain_id,
                          json_t **ret, struct st_err **err)
{
    st_autoptr(json_t) users = NULL;
    int r = st_identity_list_filtered(id, "users", name, domain_id, &users, err);
    if (r < 0)
        return r;
    size_t i;
    json_t *u;
    json_array_foreach(users, i, u) json_object_del(u, "password_hash");
    *ret = st_steal(&users);
    return 0;
}

int st_identity_user_update(struct st_identity *id, const char *user_id, json_t *patch,
                            json_t **ret, struct st_err **err)
{
    if (!json_is_object(patch))
        return st_err_set(err, -EINVAL, "user must be an object");
    bool password_set;
    st_autofree char *hash = NULL;
    int r = hash_password(id, patch, &password_set, &hash, err);
    if (r < 0)
        return r;
    for (int attempt = 0;; attempt++) {
        st_autoptr(json_t) doc = NULL;
        int64_t rev;
        r = st_identity_get_record(id, "users", "user", user_id, &doc, &rev, err);
        if (r < 0)
            return r;
        const char *d;
        r = st_json_get_str(patch, "domain_id", false, &d, err);
        if (r == 0 && strcmp(d, json_string_value(json_object_get(doc, "domain_id")) ?: "") != 0)
            return st_err_set(err, -EINVAL, "a user cannot move to another domain");
        if (r < 0 && r != -ENOENT)
            return r;
        bool was_enabled = json_is_true(json_object_get(doc, "enabled"));
        r = apply_fields(doc, patch, err);
        if (r < 0)
            return r;
        if (password_set) {
            if (hash)
                json_object_set_new(doc, "password_hash", json_string(hash));
            else
                json_object_del(doc, "password_hash");
        }
        st_autoptr(st_err) local = NULL;
        r = st_idrec_update(id->kv, "users", doc, rev, &local);
        if (r == -ECANCELED && attempt < 20)
            continue;
        if (r == -EEXIST)
            return st_identity_err_duplicate(err, "user",
                                             json_string_value(json_object_get(doc, "name")),
                                             json_string_value(json_object_get(doc, "domain_id")));
        if (r < 0) {
            st_err_set(err, r, "%s", st_err_msg(local));
            return st_err_prefix(err, r, "updating user %s", user_id);
        }
        bool disabled = was_enabled && !json_is_true(json_object_get(doc, "enabled"));
        if (password_set || disabled) {
            r = st_identity_revoke_user(id, user_id, err);
            if (r < 0)
                return st_err_prefix(err, r, "revoking the tokens of user %s", user_id);
        }
        *ret = st_identity_user_public(doc);
        return 0;
    }
}

int st_identity_user_delete(struct st_identity *id, const char *user_id, struct st_err **err)
{
    pthread_mutex_lock(&id->cascade_lock);
    st_autoptr(json_t) doc = NULL;
    int r = st_identity_get_record(id, "users", "user", user_id, &doc, NULL, err);
    if (r == 0)
        r = st_identity_delete_record(id, "users", "user", user_id, err);
    if (r == 0)
        r = st_identity_grant_purge(id, NULL, user_id, NULL, err);
    if (r == 0)
        r = st_identity_revoke_user(id, user_id, err);
    pthread_mutex_unlock(&id->cascade_lock);
    return r;
}
