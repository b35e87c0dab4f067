/* Projects: the tenants every resource belongs to. Names are unique within
 * a domain (records.c claims them). Deleting a project removes its role
 * assignments and revokes the tokens of the users who held them, as does
 * disabling it, so that no token keeps acting in it. */
#include "identity-priv.h"

#include <errno.h>
#include <string.h>

#include "identity/records.h"
#include "lib/json.h"
#include "lib/uuid.h"
#include "store/kv.h"

#define TAGS_MAX    80
#define TAG_LEN_MAX 255

static int check_tags(json_t *tags, struct st_err **err)
{
    if (json_array_size(tags) > TAGS_MAX)
        return st_err_set(err, -EINVAL, "a project has at most %d tags", TAGS_MAX);
    size_t i;
    json_t *t;
    json_array_foreach(tags, i, t)
    {
        const char *s = json_string_value(t);
        if (!s)
            return st_err_set(err, -EINVAL, "field 'tags' must be an array of strings");
        size_t len = strlen(s);
        if (len == 0 || len > TAG_LEN_MAX || strpbrk(s, "/,"))
            return st_err_set(err, -EINVAL,
                              "invalid tag '%s': 1 to %d characters, without '/' or ','", s,
                              TAG_LEN_MAX);
    }
    return 0;
}

/* Copies the settable fields present in src onto doc, validated. */
static int apply_fields(json_t *doc, json_t *src, struct st_err **err)
{
    const char *s;
    bool b;
    json_t *v;
    int r = st_json_get_str(src, "name", false, &s, err);
    if (r == 0) {
        r = st_idrec_check_name("project", s, err);
        if (r < 0)
            return r;
        json_object_set_new(doc, "name", json_string(s));
    } else if (r != -ENOENT) {
        return r;
    }
    r = st_json_get_str(src, "description", false, &s, err);
    if (r == 0) {
        if (strlen(s) > 65535)
            return st_err_set(err, -EINVAL, "description is too long");
        json_object_set_new(doc, "description", json_string(s));
    } else if (r != -ENOENT) {
        return r;
    }
    r = st_json_get_bool(src, "enabled", false, &b, err);
    if (r == 0)
        json_object_set_new(doc, "enabled", json_boolean(b));
    else if (r != -ENOENT)
        return r;
    r = st_json_get_array(src, "tags", false, &v, err);
    if (r == 0) {
        r = check_tags(v, err);
        if (r < 0)
            return r;
        json_object_set(doc, "tags", v);
    } else if (r != -ENOENT) {
        return r;
    }
    r = st_json_get_obj(src, "options", false, &v, err);
    if (r == 0)
        json_object_set(doc, "options", v);
    else if (r != -ENOENT)
        return r;
    r = st_json_get_bool(src, "is_domain", false, &b, err);
    if (r == 0 && b)
        return st_err_set(err, -EINVAL, "projects acting as domains are not supported");
    if (r < 0 && r != -ENOENT)
        return r;
    return 0;
}

int st_identity_project_create(struct st_identity *id, json_t *req, json_t **ret,
                               struct st_err **err)
{
    if (!json_is_object(req))
        return st_err_set(err, -EINVAL, "project must be an object");
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
    st_autoptr(json_t) doc = json_pack("{s:s, s:s, s:s, s:s, s:b, s:[], s:{}, s:s}", "id", rid,
                                       "name", name, "domain_id", domain_id, "description", "",
                                       "enabled", 1, "tags", "options", "created_at", now);
    r = apply_fields(doc, req, err);
    if (r < 0)
        return r;
    st_autoptr(st_err) local = NULL;
    r = st_idrec_create(id->kv, "projects", doc, &local);
    if (r == -EEXIST)
        return st_identity_err_duplicate(err, "project", name, domain_id);
    if (r < 0) {
        st_err_set(err, r, "%s", st_err_msg(local));
        return st_err_prefix(err, r, "creating project '%s'", name);
    }
    *ret = st_steal(&doc);
    return 0;
}

int st_identity_project_get(struct st_identity *id, const char *project_id, json_t **ret,
                            struct st_err **err)
{
    return st_identity_get_record(id, "projects", "project", project_id, ret, NULL, err);
}

int st_identity_project_find(struct st_identity *id, const char *domain_id, const char *name,
                             json_t **ret, struct st_err **err)
{
    st_autoptr(st_err) local = NULL;
    int r = st_idrec_find(id->kv, "projects", domain_id ? domain_id : ST_IDENTITY_DEFAULT_DOMAIN_ID,
                          name, ret, &local);
    if (r == -ENOENT)
        return st_err_set(err, r, "Could not find project: %s.", name ? name : "");
    if (r < 0)
        return st_err_set(err, r, "finding project '%s': %s", name, st_err_msg(local));
    return 0;
}

int st_identity_project_list(struct st_identity *id, const char *name, const char *domain_id,
                             json_t **ret, struct st_err **err)
{
    return st_identity_list_filtered(id, "projects", name, domain_id, ret, err);
}

int st_identity_project_update(struct st_identity *id, const char *project_id, json_t *patch,
                               json_t **ret, struct st_err **err)
{
    if (!json_is_object(patch))
        return st_err_set(err, -EINVAL, "project must be an object");
    for (int attempt = 0;; attempt++) {
        st_autoptr(json_t) doc = NULL;
        int64_t rev;
        int r = st_identity_get_record(id, "projects", "project", project_id, &doc, &rev, err);
        if (r < 0)
            return r;
        const char *d;
        r = st_json_get_str(patch, "domain_id", false, &d, err);
        if (r == 0 && strcmp(d, json_string_value(json_object_get(doc, "domain_id")) ?: "") != 0)
            return st_err_set(err, -EINVAL, "a project cannot move to another domain");
        if (r < 0 && r != -ENOENT)
            return r;
        bool was_enabled = json_is_true(json_object_get(doc, "enabled"));
        r = apply_fields(doc, patch, err);
        if (r < 0)
            return r;
        st_autoptr(st_err) local = NULL;
        r = st_idrec_update(id->kv, "projects", doc, rev, &local);
        if (r == -ECANCELED && attempt < 20)
            continue;
        const char *name = json_string_value(json_object_get(doc, "name"));
        if (r == -EEXIST)
            return st_identity_err_duplicate(err, "project", name,
                                             json_string_value(json_object_get(doc, "domain_id")));
        if (r < 0) {
            st_err_set(err, r, "%s", st_err_msg(local));
            return st_err_prefix(err, r, "updating project %s", project_id);
        }
        if (was_enabled && !json_is_true(json_object_get(doc, "enabled"))) {
            /* Tokens scoped to a disabled project must stop working: revoke
             * those of everyone assigned to it. */
            st_autoptr(json_t) grants = NULL;
            r = st_identity_grant_list(id, project_id, NULL, NULL, &grants, err);
            size_t i;
            json_t *g;
            json_array_foreach(grants, i, g)
            {
                if (r == 0)
                    r = st_identity_revoke_user(
                        id, json_string_value(json_object_get(g, "user_id")), err);
            }
            if (r < 0)
                return st_err_prefix(err, r, "revoking tokens of disabled project %s", project_id);
        }
        *ret = st_steal(&doc);
        return 0;
    }
}

int st_identity_project_delete(struct st_identity *id, const char *project_id, struct st_err **err)
{
    pthread_mutex_lock(&id->cascade_lock);
    st_autoptr(json_t) doc = NULL;
    int r = st_identity_get_record(id, "projects", "project", project_id, &doc, NULL, err);
    if (r == 0)
        r = st_identity_delete_record(id, "projects", "project", project_id, err);
    if (r == 0)
        r = st_identity_grant_purge(id, project_id, NULL, NULL, err);
    pthread_mutex_unlock(&id->cascade_lock);
    return r;
}
