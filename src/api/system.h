/* The routes every stratosd answers whatever its role, without a token:
 * `GET /healthz` (is this process able to serve: its checks, such as a read
 * through the store), `GET /version` (what build this is; also the HTTP
 * benchmark's target, so its body is built once) and `GET /` (an index). */
#pragma once

#include "api/router.h"
#include "lib/err.h"

struct st_api_system {
    /* /healthz's "store" check: 0 when the store answers; NULL = no check */
    int (*store_check)(void *userdata, struct st_err **err);
    void *userdata;
    const char *role; /* shown by /version ("all-in-one", "controller", ...); may be NULL */
};

/* Adds the three routes to r; sys is copied (the router keeps the copy). */
int st_api_system_register(struct st_router *r, const struct st_api_system *sys,
                           struct st_err **err);
