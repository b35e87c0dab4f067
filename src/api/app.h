/* What API handlers reach through req->app: the services and the facts about
 * this deployment that responses mention (the public URL clients are told to
 * use, the service catalog). Built by the daemon, borrowed by the router. */
#pragma once

#include <stddef.h>

struct st_kv;
struct st_identity;

/* One catalog entry: type ("compute"), name ("nova") and the path under the
 * public URL ("/compute/v2.1"); "{project_id}" in the path is replaced by
 * the token's project. */
struct st_api_service {
    const char *type;
    const char *name;
    const char *path;
};

#define ST_API_MAX_SERVICES 16
#define ST_API_REGION       "RegionOne"

struct st_api_app {
    struct st_kv *kv;
    struct st_identity *identity;
    const char *data_dir;   /* the controller's data dir (image files, node token) */
    const char *public_url; /* "http://127.0.0.1:8080", no trailing slash */
    struct st_api_service services[ST_API_MAX_SERVICES];
    size_t n_services;
};

/* Adds a catalog entry (each API family registers its own). */
void st_api_app_add_service(struct st_api_app *app, const char *type, const char *name,
                            const char *path);
