/* `stratos version` and `stratos status`: the two commands that need no
 * credentials and answer "which stratosd is this, and is it well?". They
 * are also the model for every later command: one table entry, one
 * function that makes its requests through the context and prints one
 * object or one list with the user's output options. */
#include "cmd_system.h"

#include <errno.h>
#include <string.h>

#include "http.h"
#include "lib/cleanup.h"
#include "lib/json.h"
#include "version.h"

/* GET /version, shown with the client's own version and the endpoint. */
static int run_version(struct st_cli_ctx *ctx, struct st_err **err)
{
    struct st_cli_http *h;
    int r = st_cli_ctx_http(ctx, &h, err);
    if (r < 0)
        return r;
    st_autoptr(json_t) v = NULL;
    r = st_cli_http_json(h, "GET", "/version", NULL, &v, err);
    if (r < 0)
        return r;
    if (!json_is_object(v))
        return st_err_set(err, -EPROTO, "invalid response to GET /version: not a JSON object");
    st_autoptr(json_t) shown = json_deep_copy(v);
    json_object_set_new(shown, "client_version", json_string(ST_VERSION));
    json_object_set_new(shown, "endpoint", json_string(st_cli_http_base_url(h)));
    return st_cli_ctx_show(ctx, shown, err);
}

/* The server's version for `status`, or null when /version does not say. */
static json_t *server_version(struct st_cli_http *h)
{
    st_autoptr(json_t) v = NULL;
    if (st_cli_http_json(h, "GET", "/version", NULL, &v, NULL) < 0)
        return json_null();
    json_t *s = json_object_get(v, "version");
    return json_is_string(s) ? json_incref(s) : json_null();
}

/* GET /healthz: 200 {"status": "ok", "checks": {...}} when healthy; any
 * other answer is unhealthy and still shown, with the server's message. */
static int run_status(struct st_cli_ctx *ctx, struct st_err **err)
{
    struct st_cli_http *h;
    int r = st_cli_ctx_http(ctx, &h, err);
    if (r < 0)
        return r;
    struct st_cli_http_response resp = {0};
    r = st_cli_http_request(h, "GET", "/healthz", NULL, NULL, 0, &resp, err);
    if (r < 0)
        return r;

    st_autoptr(json_t) body = NULL;
    if (resp.body_len > 0)
        (void)st_json_parse(resp.body, resp.body_len, &body, NULL);
    json_t *status = json_object_get(body, "status");
    json_t *checks = json_object_get(body, "checks");
    bool healthy = resp.status == 200 &&
                   (!json_is_string(status) || strcmp(json_string_value(status), "ok") == 0);

    st_autoptr(json_t) shown = json_object();
    json_object_set_new(shown, "endpoint", json_string(st_cli_http_base_url(h)));
    if (json_is_string(status))
        json_object_set(shown, "status", status);
    else
        json_object_set_new(shown, "status", json_string(healthy ? "ok" : "unavailable"));
    if (json_is_object(checks))
        json_object_set_new(shown, "checks", json_deep_copy(checks));
    if (resp.status != 200) {
        st_autofree char *msg =
            st_cli_http_error_message(resp.status, resp.reason, resp.body, resp.body_len,
                                      st_cli_http_response_request_id(&resp));
        json_object_set_new(shown, "error", json_string(msg));
    }
    st_cli_http_response_clear(&resp);
    json_object_set_new(shown, "version", server_version(h));

    r = st_cli_ctx_show(ctx, shown, err);
    if (r < 0)
        return r;
    return healthy ? 0 : 1;
}

const struct st_cli_command st_cli_system_commands[] = {
    {"version", "Show the versions of this client and of stratosd",
     "Show the versions of this client and of stratosd: the server's name, release and the API "
     "versions it serves (GET /version).",
     NULL, NULL, ST_CLI_CMD_SHOW, run_version},
    {"status", "Show whether stratosd is up and healthy",
     "Show whether stratosd is up and its checks (store, ...) pass (GET /healthz). Exits 0 when "
     "healthy, 1 otherwise.",
     NULL, NULL, ST_CLI_CMD_SHOW, run_status},
    {NULL, NULL, NULL, NULL, NULL, 0, NULL},
};
