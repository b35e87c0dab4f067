/* Bootstrap: what a new cloud needs before anyone can log in (as keystone-
 * manage bootstrap does): the Default domain, the built-in roles, the admin
 * project and the admin user holding the admin role on it. Idempotent: what
 * exists is left as it is (only a missing admin grant is restored), and the
 * generated admin password is returned only when the user is created now. */
#include "identity-priv.h"

#include <errno.h>
#include <string.h>

#include "identity/records.h"
#include "lib/json.h"
#include "lib/log.h"
#include "lib/uuid.h"

#define ADMIN_PASSWORD_BYTES 18 /* 24 base64url characters */

/* Finds a record by name, creating it with create() when missing; a
 * concurrent create of the same name is found instead. */
static int ensure(struct st_identity *id, const char *kind, const char *domain_id, json_t *req,
                  int (*create)(struct st_identity *, json_t *, json_t **, struct st_err **),
                  json_t **ret, bool *ret_created, struct st_err **err)
{
    const char *name = json_string_value(json_object_get(req, "name"));
    if (ret_created)
        *ret_created = false;
    for (int attempt = 0; attempt < 3; attempt++) {
        st_autoptr(st_err) local = NULL;
        int r = st_idrec_find(id->kv, kind, domain_id, name, ret, &local);
        if (r == 0)
            return 0;
        if (r != -ENOENT)
            return st_err_set(err, r, "finding %s '%s': %s", kind, name,
                              local ? st_err_msg(local) : "failed");
        st_err_clear(&local);
        r = create(id, req, ret, &local);
        if (r == 0) {
            if (ret_created)
                *ret_created = true;
            return 0;
        }
        if (r != -EEXIST)
            return st_err_set(err, r, "%s", st_err_msg(local));
    }
    return st_err_set(err, -EAGAIN, "cannot create or find %s '%s'", kind, name);
}

int st_identity_bootstrap(struct st_identity *id, char **ret_password, struct st_err **err)
{
    *ret_password = NULL;
    st_autoptr(json_t) admin_role = NULL;
    static const char *const roles[] = {"admin", "member", "reader"};
    for (size_t i = 0; i < ST_ARRAY_SIZE(roles); i++) {
        st_autoptr(json_t) req = json_pack("{s:s}", "name", roles[i]);
        st_autoptr(json_t) role = NULL;
        int r = ensure(id, "roles", NULL, req, st_identity_role_create, &role, NULL, err);
        if (r < 0)
            return st_err_prefix(err, r, "bootstrap: role '%s'", roles[i]);
        if (i == 0)
            admin_role = st_steal(&role);
    }

    st_autoptr(json_t) project_req =
        json_pack("{s:s, s:s, s:s}", "name", "admin", "domain_id", ST_IDENTITY_DEFAULT_DOMAIN_ID,
                  "description", "Bootstrap project for initializing the cloud.");
    st_autoptr(json_t) project = NULL;
    int r = ensure(id, "projects", ST_IDENTITY_DEFAULT_DOMAIN_ID, project_req,
                   st_identity_project_create, &project, NULL, err);
    if (r < 0)
        return st_err_prefix(err, r, "bootstrap: project 'admin'");

    uint8_t raw[ADMIN_PASSWORD_BYTES];
    char password[2 * ADMIN_PASSWORD_BYTES];
    st_random_bytes(raw, sizeof(raw));
    st_identity_b64url(raw, sizeof(raw), password);
    st_autoptr(json_t) user_req =
        json_pack("{s:s, s:s, s:s, s:s}", "name", "admin", "domain_id",
                  ST_IDENTITY_DEFAULT_DOMAIN_ID, "password", password, "default_project_id",
                  json_string_value(json_object_get(project, "id")));
    st_autoptr(json_t) user = NULL;
    bool created;
    r = ensure(id, "users", ST_IDENTITY_DEFAULT_DOMAIN_ID, user_req, st_identity_user_create, &user,
               &created, err);
    if (r < 0)
        return st_err_prefix(err, r, "bootstrap: user 'admin'");

    const char *project_id = json_string_value(json_object_get(project, "id"));
    const char *user_id = json_string_value(json_object_get(user, "id"));
    const char *role_id = json_string_value(json_object_get(admin_role, "id"));
    if (st_identity_grant_check(id, project_id, user_id, role_id, NULL) < 0) {
        r = st_identity_grant_add(id, project_id, user_id, role_id, err);
        if (r < 0)
            return st_err_prefix(err, r, "bootstrap: granting admin");
    }
    if (created) {
        st_log_info("bootstrap", "user=admin user_id=%s project_id=%s", user_id, project_id);
        *ret_password = st_strdup(password);
    }
    return 0;
}
