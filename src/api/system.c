/* System routes; see system.h. The bodies of /version and / never change
 * while the process runs, so they are rendered once at registration and
 * served as borrowed bytes: no JSON work and no copy per request. */
#include "system.h"

#include <errno.h>
#include <microhttpd.h>
#include <string.h>

#include "lib/cleanup.h"
#include "lib/json.h"
#include "lib/log.h"
#include "version.h"

struct system_ctx {
    struct st_api_system sys;
    char *role;
    char *version_body;
    size_t version_len;
    char *root_body;
    size_t root_len;
};

static void system_ctx_free(void *p)
{
    struct system_ctx *c = p;
    free(c->role);
    free(c->version_body);
    free(c->root_body);
    free(c);
}

static int get_version(struct st_http_request *req, struct st_http_response *resp,
                       struct st_err **err)
{
    (void)err;
    const struct system_ctx *c = req->route->userdata;
    st_http_resp_static(resp, 200, "application/json", c->version_body, c->version_len);
    return 0;
}

static int get_root(struct st_http_request *req, struct st_http_response *resp, struct st_err **err)
{
    (void)err;
    const struct system_ctx *c = req->route->userdata;
    st_http_resp_static(resp, 200, "application/json", c->root_body, c->root_len);
    return 0;
}

static int get_healthz(struct st_http_request *req, struct st_http_response *resp,
                       struct st_err **err)
{
    (void)err;
    const struct system_ctx *c = req->route->userdata;
    json_t *checks = json_object();
    bool ok = true;
    if (c->sys.store_check) {
        st_autoptr(st_err) cerr = NULL;
        int r = c->sys.store_check(c->sys.userdata, &cerr);
        if (r < 0) {
            ok = false;
            const char *msg = cerr ? st_err_msg(cerr) : strerror(-r);
            st_log_warn("healthz_failed", "check=store error=\"%s\"", msg);
            json_object_set_new(checks, "store", json_string(msg));
        } else {
            json_object_set_new(checks, "store", json_string("ok"));
        }
    }
    json_t *body = json_pack("{s:s,s:o}", "status", ok ? "ok" : "fail", "checks", checks);
    if (!body)
        abort();
    st_http_resp_json(resp, ok ? 200 : 503, body);
    return 0;
}

int st_api_system_register(struct st_router *r, const struct st_api_system *sys,
                           struct st_err **err)
{
    struct system_ctx *c = st_new0(struct system_ctx, 1);
    c->sys = *sys;
    c->role = st_strdup(sys->role);
    c->sys.role = c->role;
    st_router_own(r, c, system_ctx_free);

    st_autoptr(json_t) version =
        json_pack("{s:s,s:s,s:{s:s,s:s}}", "name", "stratos", "version", ST_VERSION, "libraries",
                  "libmicrohttpd", MHD_get_version(), "jansson", JANSSON_VERSION);
    if (!version)
        abort();
    if (c->role)
        json_object_set_new(version, "role", json_string(c->role));
    c->version_body = st_json_dumps(version);
    c->version_len = strlen(c->version_body);

    st_autoptr(json_t) root = json_pack("{s:s,s:s,s:[{s:s,s:s},{s:s,s:s}]}", "name", "stratos",
                                        "version", ST_VERSION, "links", "rel", "version", "href",
                                        "/version", "rel", "healthz", "href", "/healthz");
    if (!root)
        abort();
    c->root_body = st_json_dumps(root);
    c->root_len = strlen(c->root_body);

    const struct st_route routes[] = {
        {.method = "GET",
         .pattern = "/",
         .action = "system:root",
         .flags = ST_ROUTE_PUBLIC,
         .handler = get_root,
         .userdata = c},
        {.method = "GET",
         .pattern = "/version",
         .action = "system:version",
         .flags = ST_ROUTE_PUBLIC,
         .handler = get_version,
         .userdata = c},
        {.method = "GET",
         .pattern = "/healthz",
         .action = "system:healthz",
         .flags = ST_ROUTE_PUBLIC,
         .handler = get_healthz,
         .userdata = c},
    };
    return st_router_add_all(r, routes, ST_ARRAY_SIZE(routes), err);
}
