/* Shared by the Nova files (nova.c: version document, microversion headers
 * and registration; nova_flavors.c, nova_keypairs.c, nova_servers.c, ...). */
#pragma once

#include <jansson.h>

#include "api/errors.h"
#include "api/router.h"

struct st_api_app;

#define NOVA_PREFIX "/compute/v2.1"

/* A Nova route table entry (Nova's error shapes). */
#define NOVA_ROUTE(m, p, a, fl, fn)                                                                \
    {                                                                                              \
        .method = (m), .pattern = NOVA_PREFIX p, .action = (a), .family = ST_API_NOVA,             \
        .flags = (fl), .handler = (fn)                                                             \
    }

/* [{"rel": "self", "href": <public>/compute/v2.1/<collection>/<id>},
 *  {"rel": "bookmark", "href": <public>/compute/<collection>/<id>}] */
json_t *nova_links(const struct st_api_app *app, const char *collection, const char *id);

/* Checks the requested microversion (X-OpenStack-Nova-API-Version or
 * OpenStack-API-Version: compute X): only 2.1 is served; anything else
 * answers 406 computeFault as Nova does. Adds the echo headers to resp.
 * Returns 0 to go on; 1 when it has answered (the 406 is in resp; no errno
 * maps to 406, so the handler returns 0 and sends resp as it is); -EINVAL
 * (400) for a malformed version. Use it as:
 *     if ((r = nova_microversion(req, resp, err)) != 0)
 *         return r < 0 ? r : 0; */
int nova_microversion(struct st_http_request *req, struct st_http_response *resp,
                      struct st_err **err);

/* Each Nova file registers its routes. */
int nova_flavors_register(struct st_router *r, struct st_err **err);
int nova_keypairs_register(struct st_router *r, struct st_err **err);
int nova_server_groups_register(struct st_router *r, struct st_err **err);
int nova_servers_register(struct st_router *r, struct st_err **err);
/* os-quota-sets and limits; called by nova_servers_register (nova_servers.c). */
int nova_quotas_register(struct st_router *r, struct st_err **err);
int nova_hosts_register(struct st_router *r, struct st_err **err); /* os-hypervisors, os-services */
