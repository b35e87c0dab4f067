/* Shared between the Keystone files (keystone.c, keystone_admin.c) only. */
#pragma once

#include <jansson.h>

#include "lib/err.h"

struct st_api_app;
struct st_router;

#define ST_HEX32_LEN_KS 33

/* {"id": domain_id, "name": its name} for token bodies and assignments. */
json_t *keystone_domain_ref(const struct st_api_app *app, const char *domain_id);

/* A fixed 32-hex id derived from a short name (catalog entries). */
void keystone_stable_id(const char *name, char out[ST_HEX32_LEN_KS]);

/* A Keystone route table entry. */
#define KS_ROUTE(m, p, a, fl, fn)                                                                  \
    {                                                                                              \
        .method = (m), .pattern = (p), .action = (a), .family = ST_API_KEYSTONE, .flags = (fl),    \
        .handler = (fn)                                                                            \
    }

int keystone_admin_register(struct st_router *r, struct st_err **err);
