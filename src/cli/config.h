/* Where the CLI connects and who it is: the openstack CLI's global options
 * (--os-auth-url, --os-username, ..., --os-token, --insecure, --debug) with
 * the OS_* environment variables of an openrc file as defaults, plus
 * --os-endpoint / STRATOS_URL for the stratosd base URL. It also owns the
 * seam where credentials become a token (st_cli_config_authenticate): an
 * explicit token, or a Keystone password login. */
#pragma once

#include <stdbool.h>

#include "args.h"
#include "lib/err.h"

struct st_cli_http;
struct st_cli_auth;

#define ST_CLI_DEFAULT_ENDPOINT "http://127.0.0.1:8080"

struct st_cli_config {
    char *auth_url;
    char *username;
    char *user_id;
    char *password;
    char *project_name;
    char *project_id;
    char *user_domain_name;
    char *user_domain_id;
    char *project_domain_name;
    char *project_domain_id;
    char *default_domain; /* NULL: "default", as osc-lib */
    char *region_name;
    char *interface; /* NULL: "public" */
    char *token;
    char *cacert;
    char *endpoint; /* --os-endpoint / STRATOS_URL, as given */
    bool insecure;
    bool debug;
    bool help;      /* -h/--help anywhere on the line */
    bool version;   /* --version */
    long timeout_s; /* --timeout; 0 = the HTTP client's default */
};

/* The global options, NULL-name terminated (for parsing and `stratos --help`). */
extern const struct st_cli_option st_cli_global_options[];

/* Fills cfg from the environment, then from the global options found
 * anywhere in argv[0..argc) (flags win over the environment); every other
 * token is left, in order, in ret_args->rest. Usage errors are -EINVAL. */
int st_cli_config_load(struct st_cli_config *cfg, int argc, char *const *argv,
                       struct st_cli_args *ret_args, struct st_err **err);

void st_cli_config_clear(struct st_cli_config *cfg);

/* The stratosd base URL: --os-endpoint / STRATOS_URL when given, else the
 * scheme://host[:port] of the auth URL, else ST_CLI_DEFAULT_ENDPOINT. */
int st_cli_config_endpoint(const struct st_cli_config *cfg, char **ret, struct st_err **err);

/* Makes http send a token for the configured credentials and returns who
 * is logged in and where the services are: --os-token / OS_TOKEN as is,
 * else a Keystone password login at the auth URL (auth.h). Without either,
 * the openstack CLI's message: "Missing value auth-url required for auth
 * plugin password" (-EINVAL). */
int st_cli_config_authenticate(const struct st_cli_config *cfg, struct st_cli_http *http,
                               struct st_cli_auth **ret, struct st_err **err);
