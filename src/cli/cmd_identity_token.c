/* `token issue` shows the token this very run logged in with (as openstack
 * does: a new login per command, so "issue" is the login itself), for use
 * as OS_TOKEN by scripts; `token revoke` ends a token before it expires.
 * Columns and texts are openstackclient's identity/v3/token.py. */
#include "cmd_identity_token.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "auth.h"
#include "http.h"
#include "identity.h"
#include "lib/cleanup.h"
#include "lib/json.h"

/* Keystone's "2030-01-01T12:00:00.000000Z" as openstack prints it:
 * strftime('%Y-%m-%dT%H:%M:%S%z') of the parsed time, the offset kept. */
static char *format_expires(const char *s)
{
    size_t n = strlen(s);
    if (n < 19)
        return st_strdup(s);
    const char *tz = s + 19;
    if (*tz == '.')
        for (tz++; *tz >= '0' && *tz <= '9'; tz++)
            ;
    if ((tz[0] == '+' || tz[0] == '-') && strlen(tz) >= 6 && tz[3] == ':')
        return st_sprintf("%.19s%c%.2s%.2s", s, tz[0], tz + 1, tz + 4);
    if ((tz[0] == '+' || tz[0] == '-') && strlen(tz) >= 5)
        return st_sprintf("%.19s%.5s", s, tz);
    return st_sprintf("%.19s+0000", s); /* "Z", or no offset: UTC */
}

static int run_issue(struct st_cli_ctx *ctx, struct st_err **err)
{
    struct st_cli_auth *a;
    struct st_cli_http *h;
    json_t *token;
    int r = st_cli_ctx_auth(ctx, &a, err);
    if (r == 0)
        r = st_cli_ctx_http(ctx, &h, err);
    if (r == 0)
        r = st_cli_auth_token_data(a, h, &token, err);
    if (r < 0)
        return r;

    st_autoptr(json_t) data = json_object();
    json_object_set_new(data, "id", json_string(a->token));
    const char *expires = json_string_value(json_object_get(token, "expires_at"));
    if (expires) {
        st_autofree char *e = format_expires(expires);
        json_object_set_new(data, "expires", json_string(e));
    }
    const char *project =
        json_string_value(json_object_get(json_object_get(token, "project"), "id"));
    if (project)
        json_object_set_new(data, "project_id", json_string(project));
    const char *user = json_string_value(json_object_get(json_object_get(token, "user"), "id"));
    if (user)
        json_object_set_new(data, "user_id", json_string(user));
    const char *domain = json_string_value(json_object_get(json_object_get(token, "domain"), "id"));
    if (domain)
        json_object_set_new(data, "domain_id", json_string(domain));
    if (json_object_get(token, "system"))
        json_object_set_new(data, "system", json_string("all"));
    return st_cli_ctx_show(ctx, data, err);
}

/* DELETE /auth/tokens names the token in X-Subject-Token, not the URL. */
static int run_revoke(struct st_cli_ctx *ctx, struct st_err **err)
{
    struct st_cli_http *h;
    int r = st_cli_ctx_http(ctx, &h, err);
    if (r < 0)
        return r;
    st_autofree char *base = NULL;
    r = st_cli_ctx_service_url(ctx, "identity", &base, err);
    if (r < 0)
        return r;
    st_autofree char *url = st_sprintf("%s/auth/tokens", base);
    st_autofree char *subject = st_sprintf("X-Subject-Token: %s", ctx->args.pos[0]);
    const char *headers[] = {subject, NULL};
    return st_cli_http_json_with(h, "DELETE", url, headers, NULL, NULL, err);
}

static const struct st_cli_arg revoke_args[] = {
    {"<token>", "Token to be deleted", 0},
    {NULL, NULL, 0},
};

const struct st_cli_command st_cli_token_commands[] = {
    {"token issue", "Issue new token",
     "Issue new token: log in with the configured credentials and show the token, its expiry, "
     "project and user.",
     NULL, NULL, ST_CLI_CMD_SHOW | ST_CLI_CMD_AUTH | ST_CLI_CMD_PY_STR, run_issue},
    {"token revoke", "Revoke existing token", NULL, NULL, revoke_args, ST_CLI_CMD_AUTH, run_revoke},
    {NULL, NULL, NULL, NULL, NULL, 0, NULL},
};
