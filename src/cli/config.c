/* Global options and credentials; see config.h. Each global option has one
 * row below: its flag, its environment variable and the config field it
 * fills, so that a new one is one line. */
#include "config.h"

#include <curl/curl.h>
#include <errno.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "auth.h"
#include "http.h"
#include "lib/cleanup.h"

const struct st_cli_option st_cli_global_options[] = {
    {"version", 0, ST_CLI_OPT_FLAG, NULL, "show program's version number and exit", NULL, false, 0},
    {"help", 'h', ST_CLI_OPT_FLAG, NULL, "show this help message and exit", NULL, false, 0},
    {"debug", 0, ST_CLI_OPT_FLAG, NULL,
     "show every HTTP request and response on stderr (tokens and passwords hidden)", NULL, false,
     0},
    {"os-endpoint", 0, ST_CLI_OPT_VALUE, "<url>",
     "stratosd base URL (Env: STRATOS_URL; default: the host of the auth URL, else "
     "http://127.0.0.1:8080)",
     NULL, false, 0},
    {"os-auth-url", 0, ST_CLI_OPT_VALUE, "<auth-url>", "Authentication URL (Env: OS_AUTH_URL)",
     NULL, false, 0},
    {"os-username", 0, ST_CLI_OPT_VALUE, "<auth-username>",
     "Authentication username (Env: OS_USERNAME)", NULL, false, 0},
    {"os-user-id", 0, ST_CLI_OPT_VALUE, "<auth-user-id>",
     "Authentication user ID, instead of the name (Env: OS_USER_ID)", NULL, false, 0},
    {"os-password", 0, ST_CLI_OPT_VALUE, "<auth-password>",
     "Authentication password (Env: OS_PASSWORD)", NULL, false, 0},
    {"os-project-name", 0, ST_CLI_OPT_VALUE, "<auth-project-name>",
     "Project name to scope to (Env: OS_PROJECT_NAME)", NULL, false, 0},
    {"os-project-id", 0, ST_CLI_OPT_VALUE, "<auth-project-id>",
     "Project ID to scope to (Env: OS_PROJECT_ID)", NULL, false, 0},
    {"os-user-domain-name", 0, ST_CLI_OPT_VALUE, "<auth-user-domain-name>",
     "Domain name of the user (Env: OS_USER_DOMAIN_NAME)", NULL, false, 0},
    {"os-user-domain-id", 0, ST_CLI_OPT_VALUE, "<auth-user-domain-id>",
     "Domain ID of the user (Env: OS_USER_DOMAIN_ID)", NULL, false, 0},
    {"os-project-domain-name", 0, ST_CLI_OPT_VALUE, "<auth-project-domain-name>",
     "Domain name of the project (Env: OS_PROJECT_DOMAIN_NAME)", NULL, false, 0},
    {"os-project-domain-id", 0, ST_CLI_OPT_VALUE, "<auth-project-domain-id>",
     "Domain ID of the project (Env: OS_PROJECT_DOMAIN_ID)", NULL, false, 0},
    {"os-default-domain", 0, ST_CLI_OPT_VALUE, "<auth-domain>",
     "Default domain ID of the user and the project when no domain is given, default=default "
     "(Env: OS_DEFAULT_DOMAIN)",
     NULL, false, 0},
    {"os-region-name", 0, ST_CLI_OPT_VALUE, "<auth-region-name>",
     "Authentication region name (Env: OS_REGION_NAME)", NULL, false, 0},
    {"os-interface", 0, ST_CLI_OPT_VALUE, "<interface>",
     "Select an interface type of the catalog: public, internal or admin, default=public (Env: "
     "OS_INTERFACE)",
     NULL, false, 0},
    {"os-token", 0, ST_CLI_OPT_VALUE, "<auth-token>", "Authentication token (Env: OS_TOKEN)", NULL,
     false, 0},
    {"os-cacert", 0, ST_CLI_OPT_VALUE, "<ca-bundle-file>",
     "CA certificate bundle file (Env: OS_CACERT)", NULL, false, 0},
    {"insecure", 0, ST_CLI_OPT_FLAG, NULL,
     "Disable server certificate verification (Env: OS_INSECURE)", NULL, false, 0},
    {"timeout", 0, ST_CLI_OPT_VALUE, "<seconds>", "Set request timeout (in seconds)", NULL, false,
     0},
    {NULL, 0, 0, NULL, NULL, NULL, false, 0},
};

/* The config field and environment variable behind each global option. */
static const struct {
    const char *option;
    const char *env;
    size_t field; /* offset of a char * field */
} fields[] = {
    {"os-endpoint", "STRATOS_URL", offsetof(struct st_cli_config, endpoint)},
    {"os-auth-url", "OS_AUTH_URL", offsetof(struct st_cli_config, auth_url)},
    {"os-username", "OS_USERNAME", offsetof(struct st_cli_config, username)},
    {"os-user-id", "OS_USER_ID", offsetof(struct st_cli_config, user_id)},
    {"os-password", "OS_PASSWORD", offsetof(struct st_cli_config, password)},
    {"os-project-name", "OS_PROJECT_NAME", offsetof(struct st_cli_config, project_name)},
    {"os-project-id", "OS_PROJECT_ID", offsetof(struct st_cli_config, project_id)},
    {"os-user-domain-name", "OS_USER_DOMAIN_NAME",
     offsetof(struct st_cli_config, user_domain_name)},
    {"os-user-domain-id", "OS_USER_DOMAIN_ID", offsetof(struct st_cli_config, user_domain_id)},
    {"os-project-domain-name", "OS_PROJECT_DOMAIN_NAME",
     offsetof(struct st_cli_config, project_domain_name)},
    {"os-project-domain-id", "OS_PROJECT_DOMAIN_ID",
     offsetof(struct st_cli_config, project_domain_id)},
    {"os-default-domain", "OS_DEFAULT_DOMAIN", offsetof(struct st_cli_config, default_domain)},
    {"os-interface", "OS_INTERFACE", offsetof(struct st_cli_config, interface)},
    {"os-region-name", "OS_REGION_NAME", offsetof(struct st_cli_config, region_name)},
    {"os-token", "OS_TOKEN", offsetof(struct st_cli_config, token)},
    {"os-cacert", "OS_CACERT", offsetof(struct st_cli_config, cacert)},
};

static char **field_of(struct st_cli_config *cfg, size_t offset)
{
    return (char **)((char *)cfg + offset);
}

static bool env_true(const char *v)
{
    return v && (strcmp(v, "1") == 0 || strcasecmp(v, "true") == 0 || strcasecmp(v, "yes") == 0 ||
                 strcasecmp(v, "on") == 0);
}

int st_cli_config_load(struct st_cli_config *cfg, int argc, char *const *argv,
                       struct st_cli_args *ret_args, struct st_err **err)
{
    *cfg = (struct st_cli_config){0};
    for (size_t i = 0; i < ST_ARRAY_SIZE(fields); i++) {
        const char *v = getenv(fields[i].env);
        if (v && *v)
            *field_of(cfg, fields[i].field) = st_strdup(v);
    }
    cfg->insecure = env_true(getenv("OS_INSECURE"));

    const struct st_cli_option *const tables[] = {st_cli_global_options};
    struct st_cli_args a;
    int r = st_cli_args_parse(tables, 1, argc, argv, true, &a, err);
    if (r < 0)
        return r;
    for (size_t i = 0; i < ST_ARRAY_SIZE(fields); i++) {
        const char *v = st_cli_args_get(&a, fields[i].option);
        if (v) {
            char **f = field_of(cfg, fields[i].field);
            free(*f);
            *f = st_strdup(v);
        }
    }
    cfg->insecure = cfg->insecure || st_cli_args_flag(&a, "insecure");
    cfg->debug = st_cli_args_flag(&a, "debug");
    cfg->help = st_cli_args_flag(&a, "help");
    cfg->version = st_cli_args_flag(&a, "version");
    const char *t = st_cli_args_get(&a, "timeout");
    if (t) {
        char *end;
        errno = 0;
        long v = strtol(t, &end, 10);
        if (errno || end == t || *end || v <= 0) {
            st_cli_args_clear(&a);
            return st_err_set(err, -EINVAL, "argument --timeout: invalid int value: '%s'", t);
        }
        cfg->timeout_s = v;
    }
    *ret_args = a;
    return 0;
}

void st_cli_config_clear(struct st_cli_config *cfg)
{
    if (!cfg)
        return;
    for (size_t i = 0; i < ST_ARRAY_SIZE(fields); i++)
        free(*field_of(cfg, fields[i].field));
    *cfg = (struct st_cli_config){0};
}

int st_cli_config_endpoint(const struct st_cli_config *cfg, char **ret, struct st_err **err)
{
    if (cfg->endpoint && *cfg->endpoint) {
        char *e = st_strdup(cfg->endpoint);
        size_t n = strlen(e);
        while (n > 0 && e[n - 1] == '/')
            e[--n] = '\0';
        *ret = e;
        return 0;
    }
    if (!cfg->auth_url || !*cfg->auth_url) {
        *ret = st_strdup(ST_CLI_DEFAULT_ENDPOINT);
        return 0;
    }
    /* stratosd serves Keystone under /identity on its one port, so the
     * auth URL's origin is the endpoint of everything */
    CURLU *u = curl_url();
    if (!u)
        abort();
    char *scheme = NULL, *host = NULL, *port = NULL;
    int r = 0;
    CURLUcode rc = curl_url_set(u, CURLUPART_URL, cfg->auth_url, CURLU_DEFAULT_SCHEME);
    if (rc == CURLUE_OK)
        rc = curl_url_get(u, CURLUPART_SCHEME, &scheme, 0);
    if (rc == CURLUE_OK)
        rc = curl_url_get(u, CURLUPART_HOST, &host, 0);
    if (rc == CURLUE_OK) {
        if (curl_url_get(u, CURLUPART_PORT, &port, 0) != CURLUE_OK)
            port = NULL;
        *ret = port ? st_sprintf("%s://%s:%s", scheme, host, port)
                    : st_sprintf("%s://%s", scheme, host);
    } else {
        r = st_err_set(err, -EINVAL, "invalid auth URL '%s': %s", cfg->auth_url,
                       curl_url_strerror(rc));
    }
    curl_free(scheme);
    curl_free(host);
    curl_free(port);
    curl_url_cleanup(u);
    return r;
}

int st_cli_config_authenticate(const struct st_cli_config *cfg, struct st_cli_http *http,
                               struct st_cli_auth **ret, struct st_err **err)
{
    if (cfg->token && *cfg->token)
        return st_cli_auth_from_token(cfg, http, ret, err);
    /* the openstack CLI's words for what is missing, in its order */
    if (!cfg->auth_url || !*cfg->auth_url)
        return st_err_set(err, -EINVAL, "Missing value auth-url required for auth plugin password");
    if ((!cfg->username || !*cfg->username) && (!cfg->user_id || !*cfg->user_id))
        return st_err_set(err, -EINVAL,
                          "Missing parameter(s): \nSet a username with --os-username, OS_USERNAME, "
                          "or auth.username or set a user-id with --os-user-id, OS_USER_ID, or "
                          "auth.user_id");
    return st_cli_auth_login(cfg, http, ret, err);
}
