/* The whole API of a controller in one place: the auth hook and every
 * family's routes on one router. stratosd serves it; the authorization
 * matrix test walks it, so a route added here is a route the test covers. */
#pragma once

#include "lib/err.h"

struct st_router;
struct st_api_app;
struct st_api_system;

int st_daemon_routes_register(struct st_router *r, struct st_api_app *app,
                              const struct st_api_system *sys, struct st_err **err);
