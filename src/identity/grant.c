/* Role assignments (grants): a user holds a role on a project. Each grant
 * is two keys, so it can be listed both by project and by user without a
 * scan:
 *   /identity/grants/<project_id>/<user_id>/<role_id>
 *   /identity/grants-by-user/<user_id>/<project_id>/<role_id>
 * The first is the truth (checks read it); the index is written after it
 * and removed before it. Removing a grant revokes the user's tokens, which
 * carry the roles they were issued with. */
#include "identity-priv.h"

#include <errno.h>
#include <string.h>

#include "identity/records.h"
#include "lib/json.h"
#include "store/kv.h"

#define GRANTS_PREFIX  "/identity/grants/"
#define BY_USER_PREFIX "/identity/grants-by-user/"

static char *grant_key(const char *project_id, const char *user_id, const char *role_id)
{
    return st_sprintf(GRANTS_PREFIX "%s/%s/%s", project_id, user_id, role_id);
}

static char *index_key(const char *project_id, const char *user_id, const char *role_id)
{
    return st_sprintf(BY_USER_PREFIX "%s/%s/%s", user_id, project_id, role_id);
}

static bool id_usable(const char *s)
{
    return s && s[0] && !strchr(s, '/') && strlen(s) <= ST_IDREC_NAME_MAX;
}

static int err_no_grant(struct st_err **err, const char *project_id, const char *user_id,
                        const char *role_id)
{
    return st_err_set(err, -ENOENT,
                      "Could not find role assignment with role: %s, user or group: %s, "
                      "project, domain, or system: %s.",
                      role_id, user_id, project_id);
}

int st_identity_grant_add(struct st_identity *id, const char *project_id, const char *user_id,
                          const char *role_id, struct st_err **err)
{
    pthread_mutex_lock(&id->cascade_lock);
    st_autoptr(json_t) project = NULL;
    st_autoptr(json_t) user = NULL;
    st_autoptr(json_t) role = NULL;
    int r = st_identity_get_record(id, "projects", "project", project_id, &project, NULL, err);
    if (r == 0)
        r = st_identity_get_record(id, "users", "user", user_id, &user, NULL, err);
    if (r == 0)
        r = st_identity_get_record(id, "roles", "role", role_id, &role, NULL, err);
    if (r == 0) {
        char now[32];
        st_identity_timestamp(id, now);
        st_autoptr(json_t) v = json_pack("{s:s}", "created_at", now);
        st_autofree char *value = st_json_dumps(v);
        st_autofree char *key = grant_key(project_id, user_id, role_id);
        st_autofree char *ikey = index_key(project_id, user_id, role_id);
        r = st_kv_put(id->kv, key, value, strlen(value), ST_KV_ANY, NULL, err);
        if (r == 0)
            r = st_kv_put(id->kv, ikey, value, strlen(value), ST_KV_ANY, NULL, err);
        if (r < 0)
            st_err_prefix(err, r, "granting role %s to user %s on project %s", role_id, user_id,
                          project_id);
    }
    pthread_mutex_unlock(&id->cascade_lock);
    return r;
}

int st_identity_grant_check(struct st_identity *id, const char *project_id, const char *user_id,
                            const char *role_id, struct st_err **err)
{
    if (!id_usable(project_id) || !id_usable(user_id) || !id_usable(role_id))
        return err_no_grant(err, project_id ?: "", user_id ?: "", role_id ?: "");
    st_autofree char *key = grant_key(project_id, user_id, role_id);
    st_autoptr(st_kv_entry) e = NULL;
    st_autoptr(st_err) local = NULL;
    int r = st_kv_get(id->kv, key, &e, &local);
    if (r == -ENOENT)
        return err_no_grant(err, project_id, user_id, role_id);
    if (r < 0)
        return st_err_set(err, r, "reading %s: %s", key, st_err_msg(local));
    return 0;
}

/* Deletes both keys of a grant; -ENOENT when it was not there. */
static int delete_grant(struct st_identity *id, const char *project_id, const char *user_id,
                        const char *role_id, struct st_err **err)
{
    st_autofree char *key = grant_key(project_id, user_id, role_id);
    st_autofree char *ikey = index_key(project_id, user_id, role_id);
    st_autoptr(st_err) local = NULL;
    int r = st_kv_delete(id->kv, ikey, ST_KV_ANY, NULL, &local);
    if (r < 0 && r != -ENOENT)
        return st_err_set(err, r, "deleting %s: %s", ikey, st_err_msg(local));
    st_err_clear(&local);
    r = st_kv_delete(id->kv, key, ST_KV_ANY, NULL, &local);
    if (r == -ENOENT)
        return -ENOENT;
    if (r < 0)
        return st_err_set(err, r, "deleting %s: %s", key, st_err_msg(local));
    return 0;
}

int st_identity_grant_remove(struct st_identity *id, const char *project_id, const char *user_id,
                             const char *role_id, struct st_err **err)
{
    if (!id_usable(project_id) || !id_usable(user_id) || !id_usable(role_id))
        return err_no_grant(err, project_id ?: "", user_id ?: "", role_id ?: "");
    pthread_mutex_lock(&id->cascade_lock);
    int r = delete_grant(id, project_id, user_id, role_id, err);
    pthread_mutex_unlock(&id->cascade_lock);
    if (r == -ENOENT)
        return err_no_grant(err, project_id, user_id, role_id);
    if (r < 0)
        return r;
    return st_identity_revoke_user(id, user_id, err);
}

/* Splits "a/b/c" (after a key prefix) into three parts; false if malformed. */
static bool split3(const char *rest, char *a, char *b, char *c, size_t len)
{
    const char *s1 = strchr(rest, '/');
    const char *s2 = s1 ? strchr(s1 + 1, '/') : NULL;
    if (!s1 || !s2 || strchr(s2 + 1, '/'))
        return false;
    size_t la = (size_t)(s1 - rest), lb = (size_t)(s2 - s1 - 1), lc = strlen(s2 + 1);
    if (la >= len || lb >= len || lc >= len)
        return false;
    memcpy(a, rest, la);
    a[la] = '\0';
    memcpy(b, s1 + 1, lb);
    b[lb] = '\0';
    memcpy(c, s2 + 1, lc + 1);
    return true;
}

int st_identity_grant_list(struct st_identity *id, const char *project_id, const char *user_id,
                           const char *role_id, json_t **ret, struct st_err **err)
{
    st_autoptr(json_t) out = json_array();
    if ((project_id && !id_usable(project_id)) || (user_id && !id_usable(user_id)) ||
        (role_id && !id_usable(role_id))) {
        *ret = st_steal(&out);
        return 0;
    }
    /* By project (and user) from the grants, by user alone from the index. */
    bool by_user = user_id && !project_id;
    st_autofree char *prefix = project_id && user_id
                                   ? st_sprintf(GRANTS_PREFIX "%s/%s/", project_id, user_id)
                               : project_id ? st_sprintf(GRANTS_PREFIX "%s/", project_id)
                               : user_id    ? st_sprintf(BY_USER_PREFIX "%s/", user_id)
                                            : st_strdup(GRANTS_PREFIX);
    size_t base_len = strlen(by_user ? BY_USER_PREFIX : GRANTS_PREFIX);
    st_autofree char *last = NULL;
    for (;;) {
        st_autoptr(st_kv_list) page = NULL;
        int r = st_kv_list(id->kv, prefix, last, 1000, &page, err);
        if (r < 0)
            return st_err_prefix(err, r, "listing role assignments");
        for (size_t i = 0; i < page->count; i++) {
            char a[ST_IDREC_NAME_MAX + 1], b[ST_IDREC_NAME_MAX + 1], c[ST_IDREC_NAME_MAX + 1];
            if (!split3(page->entries[i].key + base_len, a, b, c, sizeof(a)))
                continue;
            const char *p = by_user ? b : a, *u = by_user ? a : b;
            if ((project_id && strcmp(p, project_id) != 0) ||
                (user_id && strcmp(u, user_id) != 0) || (role_id && strcmp(c, role_id) != 0))
                continue;
            json_array_append_new(
                out, json_pack("{s:s, s:s, s:s}", "project_id", p, "user_id", u, "role_id", c));
        }
        if (!page->more || page->count == 0)
            break;
        free(last);
        last = st_strdup(page->entries[page->count - 1].key);
    }
    *ret = st_steal(&out);
    return 0;
}

int st_identity_grant_roles(struct st_identity *id, const char *project_id, const char *user_id,
                            json_t **ret, struct st_err **err)
{
    st_autoptr(json_t) grants = NULL;
    int r = st_identity_grant_list(id, project_id, user_id, NULL, &grants, err);
    if (r < 0)
        return r;
    st_autoptr(json_t) roles = json_array();
    size_t i;
    json_t *g;
    json_array_foreach(grants, i, g) json_array_append(roles, json_object_get(g, "role_id"));
    *ret = st_steal(&roles);
    return 0;
}

int st_identity_grant_purge(struct st_identity *id, const char *project_id, const char *user_id,
                            const char *role_id, struct st_err **err)
{
    st_autoptr(json_t) grants = NULL;
    int r = st_identity_grant_list(id, project_id, user_id, role_id, &grants, err);
    if (r < 0)
        return r;
    st_autoptr(json_t) users = json_object();
    size_t i;
    json_t *g;
    json_array_foreach(grants, i, g)
    {
        const char *u = json_string_value(json_object_get(g, "user_id"));
        r = delete_grant(id, json_string_value(json_object_get(g, "project_id")), u,
                         json_string_value(json_object_get(g, "role_id")), err);
        if (r < 0 && r != -ENOENT)
            return r;
        json_object_set_new(users, u, json_true());
    }
    const char *u;
    json_t *v;
    json_object_foreach(users, u, v)
    {
        r = st_identity_revoke_user(id, u, err);
        if (r < 0)
            return r;
    }
    return 0;
}
