/* Authentication and authorization at the API edge. The router's auth hook
 * (installed by st_api_auth_install) runs before every non-public route: it
 * validates X-Auth-Token through the identity service (401 when missing,
 * unknown, expired or revoked) and asks the policy engine whether the
 * token's roles allow the route's action in the token's own project (403
 * when not). Handlers that load a resource then call st_api_authorize with
 * the resource's project, which answers 404 for another project's resource
 * unless the caller's role reaches every project. */
#pragma once

#include <stdbool.h>

#include "lib/err.h"

struct st_router;
struct st_http_request;
struct st_token;

void st_api_auth_install(struct st_router *r);

/* The validated token of the request (non-public routes only). */
const struct st_token *st_api_token(const struct st_http_request *req);

/* Checks action against a target project (NULL = none). */
int st_api_authorize(const struct st_http_request *req, const char *action,
                     const char *target_project_id, struct st_err **err);

/* True when the caller may act in every project (admin). */
bool st_api_is_cloud_admin(const struct st_http_request *req);
