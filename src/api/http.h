/* What a handler sees of HTTP: the request (method, decoded path and its
 * parameters, body, headers, query) and the response it fills in (status,
 * JSON or raw bytes or a file, extra headers). The server (server.c) owns the
 * wire; handlers use only this header, so they can be driven without one.
 * The path and query parsers live here too because they face the network
 * and are fuzzed (tests/fuzz/fuzz_router.c). */
#pragma once

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "api/errors.h"
#include "lib/err.h"

struct st_route;

#define ST_ROUTE_MAX_PARAMS   8
#define ST_ROUTE_MAX_SEGMENTS 32

struct st_http_param {
    const char *name;
    char *value; /* URL-decoded */
};

struct st_http_kv {
    char *key;
    char *value;
};

/* The server's side of a request, behind req->conn: headers come from the
 * connection, the query is parsed on first use. A request built by hand (in a
 * test) may point conn at one of these with mhd NULL and its own headers. */
struct st_http_exchange {
    void *mhd;                        /* struct MHD_Connection *, or NULL */
    const struct st_http_kv *headers; /* used when mhd is NULL */
    size_t n_headers;
    const char *raw_query; /* after '?', still encoded; NULL or "" when none */
    struct st_http_kv *query;
    size_t n_query;
    bool query_parsed;
};

struct st_http_request {
    const char *method;
    const char *path; /* URL-decoded path, no query string */
    const char *request_id;
    int64_t start_ns; /* monotonic time the request arrived (long-poll deadlines) */
    const char *body; /* whole body, NUL-terminated (non-stream routes); NULL when empty */
    size_t body_len;
    struct st_http_param params[ST_ROUTE_MAX_PARAMS];
    size_t n_params;
    const struct st_route *route;
    void *app;        /* the router's app pointer (service context) */
    void *auth;       /* set by the router's authenticate hook (identity) */
    void *stream;     /* per-request state of a streaming route */
    void *conn;       /* struct st_http_exchange *, for headers and query */
    const char *peer; /* client address, for logs and rate limits */
};

struct st_http_header {
    char *name;
    char *value;
};

#define ST_HTTP_MAX_RESP_HEADERS 16

/* Handlers get it zeroed with fd = -1; the builders below fill it. */
struct st_http_response {
    int status;   /* 0 = 200 with a body, 204 without */
    json_t *json; /* rendered compact, Content-Type: application/json */
    char *body;   /* or raw bytes with content_type */
    size_t body_len;
    bool body_borrowed; /* body outlives the response (built once); not freed */
    char *content_type;
    int fd; /* or a file to send (fd >= 0, closed by the server), file_size bytes */
    uint64_t file_size;
    struct st_http_header headers[ST_HTTP_MAX_RESP_HEADERS];
    size_t n_headers;
};

/* Request accessors. Path parameters by name; headers case-insensitively;
 * query values URL-decoded ('+' is a space), the first value of a key or all
 * values of a repeated key ("fields=id&fields=name"). */
const char *st_http_param(const struct st_http_request *req, const char *name);
const char *st_http_header(const struct st_http_request *req, const char *name);
const char *st_http_query(const struct st_http_request *req, const char *key);
size_t st_http_query_all(const struct st_http_request *req, const char *key, const char **ret,
                         size_t max);

/* Response builders. The json reference is stolen; bytes are copied, except
 * by st_http_resp_static (data must outlive the server: a body built once);
 * st_http_resp_file takes fd. Each replaces any body set before. */
void st_http_resp_json(struct st_http_response *resp, int status, json_t *json);
void st_http_resp_bytes(struct st_http_response *resp, int status, const char *content_type,
                        const void *data, size_t len);
void st_http_resp_static(struct st_http_response *resp, int status, const char *content_type,
                         const void *data, size_t len);
void st_http_resp_file(struct st_http_response *resp, int status, const char *content_type, int fd,
                       uint64_t size);
/* Adds a header (copied); past ST_HTTP_MAX_RESP_HEADERS it is dropped and logged. */
void st_http_resp_header(struct st_http_response *resp, const char *name, const char *value);
/* Answers with the route's error shape, from a handler that wants to choose
 * the error's name (S3 "NoSuchBucket", Neutron "NetworkNotFound"); returns 0
 * so a handler can `return st_http_resp_error(...)`. type may be NULL. */
__attribute__((format(printf, 5, 6))) int st_http_resp_error(const struct st_http_request *req,
                                                             struct st_http_response *resp,
                                                             int status, const char *type,
                                                             const char *fmt, ...);
/* Frees what the response holds and leaves it empty (fd = -1). */
void st_http_resp_reset(struct st_http_response *resp);

/* In-place percent-decoding of s[0..len) (plus_is_space for query strings).
 * Malformed escapes and "%00" are kept as they are, so the result is always
 * a C string that means what it shows. Returns the new length and writes
 * a NUL there. */
size_t st_http_url_decode(char *s, size_t len, bool plus_is_space);

/* Splits a raw query ("a=1&b=x%20y&a=2", without '?') in place into decoded
 * pairs, in order; a key without '=' has value "". Returns how many pairs
 * were found, storing at most max of them. */
size_t st_http_query_parse(char *query, struct st_http_kv *ret, size_t max);

/* A request path split into decoded segments. "/a/b%20c/" gives segments
 * "a", "b c" (a trailing slash is tolerated, an empty inner segment kept as
 * ""); decoded is the whole path decoded ("/a/b c/"), and seg_off[i] is where
 * segment i starts in it (for "{rest+}" parameters). */
struct st_http_path {
    char *decoded;
    char *seg[ST_ROUTE_MAX_SEGMENTS];
    size_t seg_off[ST_ROUTE_MAX_SEGMENTS];
    size_t n_seg;
};

/* Splits raw[0..len) using storage, which must hold 2 * (len + 2) bytes.
 * -EINVAL when the path does not start with '/', -E2BIG past
 * ST_ROUTE_MAX_SEGMENTS segments (no route can match it). */
int st_http_path_split(const char *raw, size_t len, char *storage, struct st_http_path *ret);
