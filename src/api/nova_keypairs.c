/* Nova keypairs at 2.1: import or generate (200, with "private_key" for a
 * generated pair), list (each row in its own "keypair" wrapper), show and
 * delete (202). Keypairs belong to the token's user; an admin may name
 * another user with ?user_id= (as Nova's 2.10, harmless at 2.1). */
#include <errno.h>
#include <string.h>

#include "api/app.h"
#include "api/auth.h"
#include "api/nova-priv.h"
#include "api/router.h"
#include "compute/keypair.h"
#include "identity/identity.h"
#include "lib/cleanup.h"
#include "lib/json.h"

#define MICROVERSION(req, resp, err)                                                               \
    do {                                                                                           \
        int mv_ = nova_microversion((req), (resp), (err));                                         \
        if (mv_ != 0)                                                                              \
            return mv_ < 0 ? mv_ : 0;                                                              \
    } while (0)

/* The user whose keypairs a request is about. */
static int target_user(struct st_http_request *req, const char *asked, const char **ret,
                       struct st_err **err)
{
    const struct st_token *t = st_api_token(req);
    if (!asked || strcmp(asked, t->user_id) == 0) {
        *ret = t->user_id;
        return 0;
    }
    if (!st_api_is_cloud_admin(req))
        return st_err_set(err, -EPERM,
                          "Policy doesn't allow os_compute_api:os-keypairs to be "
                          "performed for another user.");
    *ret = asked;
    return 0;
}

static json_t *render(json_t *doc, bool full)
{
    json_t *out = json_pack("{s:O, s:O, s:O}", "name", json_object_get(doc, "name"), "public_key",
                            json_object_get(doc, "public_key"), "fingerprint",
                            json_object_get(doc, "fingerprint"));
    if (!full)
        return out;
    json_object_set(out, "user_id", json_object_get(doc, "user_id"));
    json_object_set(out, "id", json_object_get(doc, "id"));
    json_object_set(out, "created_at", json_object_get(doc, "created_at"));
    json_object_set_new(out, "deleted", json_false());
    json_object_set_new(out, "deleted_at", json_null());
    json_object_set_new(out, "updated_at", json_null());
    return out;
}

static int keypair_create(struct st_http_request *req, struct st_http_response *resp,
                          struct st_err **err)
{
    MICROVERSION(req, resp, err);
    struct st_api_app *app = req->app;
    st_autoptr(json_t) body = NULL;
    json_t *kp = NULL;
    int r = st_json_parse_object(req->body, req->body_len, &body, err);
    if (r < 0 || (r = st_json_get_obj(body, "keypair", true, &kp, err)) < 0)
        return r;
    const char *name = NULL, *public_key = NULL, *type = NULL, *asked = NULL;
    if ((r = st_json_get_str(kp, "name", true, &name, err)) < 0)
        return r;
    if ((r = st_json_get_str(kp, "public_key", false, &public_key, err)) < 0 && r != -ENOENT)
        return r;
    if ((r = st_json_get_str(kp, "type", false, &type, err)) < 0 && r != -ENOENT)
        return r;
    if (type && strcmp(type, "ssh") != 0)
        return st_err_set(err, -EINVAL, "Keypair data is invalid: only type 'ssh' is supported");
    if ((r = st_json_get_str(kp, "user_id", false, &asked, err)) < 0 && r != -ENOENT)
        return r;
    const char *user = NULL;
    if ((r = target_user(req, asked, &user, err)) < 0)
        return r;
    st_autoptr(json_t) doc = NULL;
    st_autofree char *private_key = NULL;
    if ((r = st_keypair_create(app->kv, user, name, public_key, &doc,
                               public_key ? NULL : &private_key, err)) < 0)
        return r;
    json_t *out = render(doc, false);
    json_object_set(out, "user_id", json_object_get(doc, "user_id"));
    if (private_key)
        json_object_set_new(out, "private_key", json_string(private_key));
    st_http_resp_json(resp, 200, json_pack("{s:o}", "keypair", out));
    return 0;
}

static int keypair_list(struct st_http_request *req, struct st_http_response *resp,
                        struct st_err **err)
{
    MICROVERSION(req, resp, err);
    struct st_api_app *app = req->app;
    const char *user = NULL;
    int r = target_user(req, st_http_query(req, "user_id"), &user, err);
    if (r < 0)
        return r;
    st_autoptr(json_t) docs = NULL;
    if ((r = st_keypair_list(app->kv, user, &docs, err)) < 0)
        return r;
    json_t *rows = json_array();
    size_t i;
    json_t *doc;
    json_array_foreach(docs, i, doc)
        json_array_append_new(rows, json_pack("{s:o}", "keypair", render(doc, false)));
    st_http_resp_json(resp, 200, json_pack("{s:o}", "keypairs", rows));
    return 0;
}

static int keypair_show(struct st_http_request *req, struct st_http_response *resp,
                        struct st_err **err)
{
    MICROVERSION(req, resp, err);
    struct st_api_app *app = req->app;
    const char *user = NULL;
    int r = target_user(req, st_http_query(req, "user_id"), &user, err);
    if (r < 0)
        return r;
    st_autoptr(json_t) doc = NULL;
    if ((r = st_keypair_get(app->kv, user, st_http_param(req, "keypair_name"), &doc, err)) < 0)
        return r;
    st_http_resp_json(resp, 200, json_pack("{s:o}", "keypair", render(doc, true)));
    return 0;
}

static int keypair_delete(struct st_http_request *req, struct st_http_response *resp,
                          struct st_err **err)
{
    MICROVERSION(req, resp, err);
    struct st_api_app *app = req->app;
    const char *user = NULL;
    int r = target_user(req, st_http_query(req, "user_id"), &user, err);
    if (r < 0)
        return r;
    if ((r = st_keypair_delete(app->kv, user, st_http_param(req, "keypair_name"), err)) < 0)
        return r;
    resp->status = 202;
    return 0;
}

static const struct st_route routes[] = {
    NOVA_ROUTE("GET", "/os-keypairs", "compute:keypair:list", 0, keypair_list),
    NOVA_ROUTE("POST", "/os-keypairs", "compute:keypair:create", 0, keypair_create),
    NOVA_ROUTE("GET", "/os-keypairs/{keypair_name}", "compute:keypair:show", 0, keypair_show),
    NOVA_ROUTE("DELETE", "/os-keypairs/{keypair_name}", "compute:keypair:delete", 0,
               keypair_delete),
};

int nova_keypairs_register(struct st_router *r, struct st_err **err)
{
    return st_router_add_all(r, routes, ST_ARRAY_SIZE(routes), err);
}
