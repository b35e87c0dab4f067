/* The router: routes are (method, path pattern) pairs with path parameters
 * ("/compute/v2.1/servers/{server_id}"), each with a policy action name and
 * the API family whose error shape it answers in. A route without an action
 * name is refused at registration, so no endpoint can be left open by
 * accident. 404 when no pattern matches, 405 (with Allow) when the path
 * matches but the method does not. */
#pragma once

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "lib/cleanup.h"
#include "lib/err.h"

/* Which error body a route answers with (../shared/specs §2.4). */
enum st_api_family {
    ST_API_PLAIN,    /* {"error": {"code": N, "title": "...", "message": "..."}} */
    ST_API_KEYSTONE, /* same shape as PLAIN */
    ST_API_NOVA,     /* {"itemNotFound": {"code": 404, "message": "..."}} */
    ST_API_CINDER,   /* same shape as NOVA */
    ST_API_NEUTRON,  /* {"NeutronError": {"type": "...", "message": "...", "detail": ""}} */
    ST_API_GLANCE,   /* JSON {"error": ...}; Glance's clients accept it */
    ST_API_S3,       /* <Error><Code>NoSuchKey</Code>...</Error> */
};

enum st_route_flags {
    ST_ROUTE_PUBLIC = 1 << 0, /* no token needed (version documents, healthz) */
    ST_ROUTE_STREAM = 1 << 1, /* body is streamed to on_body_chunk, no size limit */
};

#define ST_ROUTE_MAX_PARAMS 8

struct st_http_param {
    const char *name;
    char *value; /* URL-decoded */
};

struct st_http_request {
    const char *method;
    const char *path; /* URL-decoded path, no query string */
    const char *request_id;
    const char *body; /* whole body (non-stream routes); may be NULL when empty */
    size_t body_len;
    struct st_http_param params[ST_ROUTE_MAX_PARAMS];
    size_t n_params;
    const struct st_route *route;
    void *app;       /* the router's app pointer (service context) */
    void *auth;      /* set by the router's authenticate hook (identity) */
    void *stream;    /* per-request state of a streaming route */
    void *conn;      /* opaque server connection, for headers and query */
    const char *peer; /* client address, for logs and rate limits */
};

struct st_http_header {
    char *name;
    char *value;
};

struct st_http_response {
    int status;
    json_t *json;       /* rendered compact, Content-Type: application/json */
    char *body;         /* or raw bytes with content_type */
    size_t body_len;
    char *content_type;
    int fd;             /* or a file to send (fd >= 0), file_size bytes */
    uint64_t file_size;
    struct st_http_header headers[16];
    size_t n_headers;
};

typedef int (*st_route_fn)(struct st_http_request *req, struct st_http_response *resp,
                           struct st_err **err);
/* Streaming routes: called for each chunk, then handler runs with body NULL. */
typedef int (*st_route_chunk_fn)(struct st_http_request *req, const char *data, size_t len,
                                 struct st_err **err);

struct st_route {
    const char *method;  /* "GET", "HEAD", "POST", "PUT", "PATCH", "DELETE" */
    const char *pattern; /* "/a/{x}/b"; "{x}" matches one non-empty segment */
    const char *action;  /* policy action, e.g. "compute:server:create"; required */
    enum st_api_family family;
    unsigned flags; /* enum st_route_flags */
    st_route_fn handler;
    st_route_chunk_fn on_body_chunk; /* ST_ROUTE_STREAM only */
    void (*stream_free)(void *stream);
};

struct st_router;

/* Called for every non-PUBLIC route before its handler; a negative return
 * (-EACCES → 401, -EPERM → 403, ...) answers the request with that error. */
typedef int (*st_router_auth_fn)(struct st_http_request *req, struct st_err **err);

struct st_router *st_router_new(void *app);
void st_router_free(struct st_router *r);
ST_DEFINE_AUTOPTR(st_router, st_router_free)

void st_router_set_auth(struct st_router *r, st_router_auth_fn fn);

/* Registers a route (the struct is copied). -EINVAL if action or handler is
 * missing, the pattern is malformed, or the same method+pattern exists. */
int st_router_add(struct st_router *r, const struct st_route *route, struct st_err **err);
int st_router_add_all(struct st_router *r, const struct st_route *routes, size_t n,
                      struct st_err **err);

/* Visits every registered route (for the authorization matrix test). */
void st_router_foreach(const struct st_router *r,
                       void (*fn)(const struct st_route *route, void *userdata), void *userdata);

/* Request accessors. Path parameters by name; headers case-insensitively;
 * query values URL-decoded (first value, or all values of a repeated key). */
const char *st_http_param(const struct st_http_request *req, const char *name);
const char *st_http_header(const struct st_http_request *req, const char *name);
const char *st_http_query(const struct st_http_request *req, const char *key);
size_t st_http_query_all(const struct st_http_request *req, const char *key, const char **ret,
                         size_t max);

/* Response builders. The json reference is stolen. */
void st_http_resp_json(struct st_http_response *resp, int status, json_t *json);
void st_http_resp_bytes(struct st_http_response *resp, int status, const char *content_type,
                        const void *data, size_t len);
void st_http_resp_header(struct st_http_response *resp, const char *name, const char *value);

/* The one table from negative errno to HTTP status, used for every error. */
int st_http_status_from_errno(int code);
