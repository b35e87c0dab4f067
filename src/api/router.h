/* The router: routes are (method, path pattern) pairs with path parameters
 * ("/compute/v2.1/servers/{server_id}"), each with a policy action name and
 * the API family whose error shape it answers in. A route without an action
 * name is refused at registration, so no endpoint can be left open by
 * accident. 404 when no pattern matches, 405 (with Allow) when the path
 * matches but the method does not. Every GET route also answers HEAD.
 *
 * Patterns are split once at registration; a lookup splits the request path
 * once and scans the routes with that many segments, allocating nothing.
 * Among patterns that match, literal segments win over parameters, leftmost
 * first ("/servers/detail" beats "/servers/{id}"). */
#pragma once

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "api/errors.h"
#include "api/http.h"
#include "lib/cleanup.h"
#include "lib/err.h"

enum st_route_flags {
    ST_ROUTE_PUBLIC = 1 << 0, /* no token needed (version documents, healthz) */
    ST_ROUTE_STREAM = 1 << 1, /* body is streamed to on_body_chunk, no size limit */
};

typedef int (*st_route_fn)(struct st_http_request *req, struct st_http_response *resp,
                           struct st_err **err);
/* Streaming routes: called once with data NULL and len 0 as soon as the
 * headers are in (an error there answers before the client sends its body:
 * check the target exists here), then for each chunk; then handler runs with
 * body NULL. req->stream is the route's own state, freed with stream_free. */
typedef int (*st_route_chunk_fn)(struct st_http_request *req, const char *data, size_t len,
                                 struct st_err **err);

struct st_route {
    const char *method;  /* "GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS" */
    const char *pattern; /* "/a/{x}/b"; "{x}" matches one non-empty segment; a last
                            segment "{x+}" matches the rest of the path, slashes included */
    const char *action;  /* policy action, e.g. "compute:server:create"; required */
    enum st_api_family family;
    unsigned flags; /* enum st_route_flags */
    st_route_fn handler;
    st_route_chunk_fn on_body_chunk; /* ST_ROUTE_STREAM only */
    void (*stream_free)(void *stream);
    void *userdata; /* the route's own context, as req->route->userdata */
};

struct st_router;

/* Called for every non-PUBLIC route, after the headers and before the body
 * and the handler; a negative return (-EACCES → 401, -EPERM → 403, ...)
 * answers the request with that error. With no hook set, non-PUBLIC routes
 * answer 401: an unconfigured server is closed, not open. */
typedef int (*st_router_auth_fn)(struct st_http_request *req, struct st_err **err);

/* Routes are added before the server starts; a router is read-only (and so
 * shared without locks by the server's threads) while it serves. */
struct st_router *st_router_new(void *app);
void st_router_free(struct st_router *r);
ST_DEFINE_AUTOPTR(st_router, st_router_free)

void st_router_set_auth(struct st_router *r, st_router_auth_fn fn);
/* Frees what the hook left in req->auth, when the request ends. */
void st_router_set_auth_free(struct st_router *r, void (*free_fn)(void *auth));

/* Called once a routed request has been answered (the audit log). */
typedef void (*st_router_observer_fn)(const struct st_http_request *req, int status,
                                      void *userdata);
void st_router_set_observer(struct st_router *r, st_router_observer_fn fn, void *userdata);

/* The family of a 404 or 405 for a path no route claims: by default the
 * family of the route sharing the longest literal prefix with the path
 * ("/compute/v2.1/nope" answers as Nova), else this one (PLAIN by default;
 * an S3 router sets ST_API_S3). */
void st_router_set_family(struct st_router *r, enum st_api_family family);

/* Keeps ptr until the router is freed, then calls free_fn(ptr): for context
 * that several routes share through their userdata. */
void st_router_own(struct st_router *r, void *ptr, void (*free_fn)(void *));

/* Registers a route (the struct and its strings are copied). -EINVAL if
 * action or handler is missing, the method is unknown or the pattern is
 * malformed; -EEXIST if the same method and pattern shape exist already. */
int st_router_add(struct st_router *r, const struct st_route *route, struct st_err **err);
int st_router_add_all(struct st_router *r, const struct st_route *routes, size_t n,
                      struct st_err **err);

/* Visits every registered route in order (for the authorization matrix test). */
void st_router_foreach(const struct st_router *r,
                       void (*fn)(const struct st_route *route, void *userdata), void *userdata);

struct st_route_match {
    const struct st_route *route; /* on success */
    struct st_http_param params[ST_ROUTE_MAX_PARAMS];
    size_t n_params;
    enum st_api_family family; /* the error shape for a failed match */
    char allow[64];            /* for 405: "GET, HEAD, DELETE" */
};

/* Finds the route for method and a split path: 0, -ENOENT (404) or -EBADRQC
 * (405, allow filled). Param values point into path. */
int st_router_match(const struct st_router *r, const char *method, const struct st_http_path *path,
                    struct st_route_match *ret);

/* What the server needs of the router besides matching. */
void *st_router_app(const struct st_router *r);
st_router_auth_fn st_router_auth(const struct st_router *r);
void st_router_auth_release(const struct st_router *r, void *auth);
void st_router_observe(const struct st_router *r, const struct st_http_request *req, int status);
