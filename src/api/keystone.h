/* Keystone v3 at /identity: version documents, tokens with the service
 * catalog, projects, users, roles, domains, grants and role assignments, in
 * the shapes of ../shared/specs/openstack-api-subset.md §3. */
#pragma once

#include "lib/err.h"

struct st_router;
struct st_api_app;
struct st_token;

#include <jansson.h>

int st_api_keystone_register(struct st_router *r, struct st_api_app *app, struct st_err **err);

/* The body of a token response ({"token": {...}}), catalog included. */
json_t *st_api_keystone_token_body(const struct st_api_app *app, const struct st_token *t);
