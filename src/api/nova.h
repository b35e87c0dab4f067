/* Nova v2.1 at /compute/v2.1: the version documents and every Nova route
 * family (flavors, keypairs, servers, server groups, hypervisors and
 * services), plus the stratos-native resource policies of compute
 * (/stratos/v1/resource-policies), in the shapes of
 * ../shared/specs/openstack-api-subset.md §4. */
#pragma once

#include "lib/err.h"

struct st_router;
struct st_api_app;

/* Registers the routes and the catalog entry ("compute", "nova", "/compute/v2.1"). */
int st_api_nova_register(struct st_router *r, struct st_api_app *app, struct st_err **err);
