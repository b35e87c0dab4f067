/* Glance v2 at /image: the versions document (no token), images (create,
 * list, show, patch, delete), their data (streamed upload and download) and
 * tags, in the shapes of ../shared/specs/openstack-api-subset.md §6. */
#pragma once

#include "lib/err.h"

struct st_router;
struct st_api_app;

#define ST_GLANCE_PREFIX "/image"

int st_api_glance_register(struct st_router *r, struct st_api_app *app, struct st_err **err);
