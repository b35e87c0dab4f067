/* The auth hook and authorization helpers; see auth.h. */
#include "auth.h"

#include <errno.h>
#include <string.h>

#include "api/app.h"
#include "api/internal.h"
#include "api/router.h"
#include "identity/identity.h"
#include "lib/log.h"

static void free_token(void *p)
{
    st_token_free(p);
}

static int authenticate(struct st_http_request *req, struct st_err **err)
{
    struct st_api_app *app = req->app;
    /* The agents' internal API takes the node token and nothing else; the
     * node token is not a Keystone token, so it opens nothing else. */
    if (strncmp(req->route->action, "internal:", 9) == 0)
        return st_api_internal_authenticate(req, err);
    const char *secret = st_http_header(req, "X-Auth-Token");
    if (!secret || !secret[0])
        return st_err_set(err, -EACCES, "The request you have made requires authentication.");
    struct st_token *token = NULL;
    int r = st_identity_validate(app->identity, secret, &token, err);
    if (r < 0)
        return r == -EACCES ? r : st_err_prefix(err, r, "validating token");
    req->auth = token;
    struct st_policy_subject who;
    st_token_subject(token, &who);
    return st_policy_check(st_identity_policy(app->identity), &who, req->route->action, NULL, err);
}

void st_api_auth_install(struct st_router *r)
{
    st_router_set_auth(r, authenticate);
    st_router_set_auth_free(r, free_token);
}

const struct st_token *st_api_token(const struct st_http_request *req)
{
    return req->auth;
}

int st_api_authorize(const struct st_http_request *req, const char *action,
                     const char *target_project_id, struct st_err **err)
{
    struct st_api_app *app = req->app;
    const struct st_token *token = req->auth;
    if (!token)
        return st_err_set(err, -EACCES, "The request you have made requires authentication.");
    struct st_policy_subject who;
    st_token_subject(token, &who);
    return st_policy_check(st_identity_policy(app->identity), &who, action, target_project_id, err);
}

bool st_api_is_cloud_admin(const struct st_http_request *req)
{
    struct st_api_app *app = req->app;
    const struct st_token *token = req->auth;
    if (!token)
        return false;
    struct st_policy_subject who;
    st_token_subject(token, &who);
    return st_policy_is_cloud_admin(st_identity_policy(app->identity), &who);
}
