/* Keystone authentication for the CLI: the password login exactly as the
 * openstack CLI performs it (keystoneauth's v3 password plugin with
 * osc-lib's default domain, body for body), the token it yields, and the
 * service catalog that says where every other service lives. A token given
 * as is (--os-token) has no catalog; then the services are found at
 * stratosd's own paths under the endpoint (/compute/v2.1, ...). */
#pragma once

#include <jansson.h>

#include "config.h"
#include "lib/cleanup.h"
#include "lib/err.h"

struct st_cli_http;

struct st_cli_auth {
    char *token;        /* sent as X-Auth-Token */
    char *auth_url;     /* Keystone v3 as configured: ".../identity/v3", no trailing '/' */
    char *endpoint;     /* stratosd base URL: services' home when there is no catalog */
    char *interface;    /* catalog interface: "public" unless --os-interface */
    char *region;       /* --os-region-name, or NULL for any region */
    json_t *token_data; /* the "token" object (user, project, expires_at, catalog) or NULL */
    /* the login's service catalog; NULL for a token given as is, whose
     * services stay where --os-endpoint and --os-auth-url say, whatever a
     * validation of it returns */
    json_t *catalog;
};

void st_cli_auth_free(struct st_cli_auth *a);
ST_DEFINE_AUTOPTR(st_cli_auth, st_cli_auth_free)

/* The body of POST /auth/tokens for cfg's password credentials, as
 * keystoneauth builds it: the user by id, or by name with its domain (by id
 * before name; the default domain id when neither is given); the scope to
 * the project by id, or by name with its domain; no scope without a
 * project (an unscoped token). */
json_t *st_cli_auth_password_body(const struct st_cli_config *cfg);

/* Logs in with cfg's password through http: POST <auth URL>/auth/tokens,
 * the token from X-Subject-Token, the token data (and catalog) from the
 * body. Keystone's refusal comes back as the user sees it from openstack:
 * "The request you have made requires authentication. (HTTP 401)
 * (Request-ID: req-...)" (-EACCES). Also sets http's token. */
int st_cli_auth_login(const struct st_cli_config *cfg, struct st_cli_http *http,
                      struct st_cli_auth **ret, struct st_err **err);

/* Wraps a token given as is (no request); also sets http's token. */
int st_cli_auth_from_token(const struct st_cli_config *cfg, struct st_cli_http *http,
                           struct st_cli_auth **ret, struct st_err **err);

/* The token data: the login's, or for a token given as is, Keystone's
 * answer to GET /auth/tokens with the token as X-Subject-Token. Borrowed. */
int st_cli_auth_token_data(struct st_cli_auth *a, struct st_cli_http *http, json_t **ret,
                           struct st_err **err);

/* The URL of a service ("identity", "compute", "network", "image",
 * "volumev3"; aliases of block-storage match each other) for the chosen
 * interface and region, without a trailing '/'. From the catalog when the
 * login gave one ("public endpoint for compute service not found",
 * -ENOENT, as keystoneauth says when it is missing); else the auth URL for
 * identity and stratosd's paths under the endpoint for the others. */
int st_cli_auth_service_url(const struct st_cli_auth *a, const char *type, char **ret,
                            struct st_err **err);
