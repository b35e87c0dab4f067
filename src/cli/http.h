/* The CLI's HTTP client (libcurl): one connection kept alive across the
 * requests of a command, JSON in and out, timeouts, TLS options, the token
 * header, and `--debug` logging of every exchange the way `openstack
 * --debug` prints it (a curl command line, the response status, headers and
 * body), with tokens and passwords redacted. HTTP errors become one line
 * for the user, taken from whichever OpenStack error shape the body has:
 * "Instance x could not be found. (HTTP 404) (Request-ID: req-...)". */
#pragma once

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "lib/cleanup.h"
#include "lib/err.h"

struct st_cli_http_opts {
    const char *base_url; /* "http://127.0.0.1:8080"; paths are appended to it */
    const char *cacert;   /* CA bundle file, or NULL for the system's */
    bool insecure;        /* skip certificate verification */
    long timeout_s;       /* whole request; 0 = ST_CLI_HTTP_DEFAULT_TIMEOUT_S */
    FILE *debug;          /* when non-NULL, every exchange is logged here */
};

#define ST_CLI_HTTP_DEFAULT_TIMEOUT_S 60
#define ST_CLI_HTTP_CONNECT_TIMEOUT_S 10

struct st_cli_http_response {
    long status;
    char *reason; /* "Not Found", from the status line */
    char *body;   /* NUL-terminated (body_len excludes the NUL) */
    size_t body_len;
    char **headers; /* "Name: value" lines, as received */
    size_t n_headers;
};

struct st_cli_http;

int st_cli_http_new(const struct st_cli_http_opts *opts, struct st_cli_http **ret,
                    struct st_err **err);
void st_cli_http_free(struct st_cli_http *h);
ST_DEFINE_AUTOPTR(st_cli_http, st_cli_http_free)

const char *st_cli_http_base_url(const struct st_cli_http *h);
/* The token sent as X-Auth-Token on every request from now on (NULL: none). */
void st_cli_http_set_token(struct st_cli_http *h, const char *token);

/* One exchange. path is appended to the base URL unless it is a full URL.
 * Fails only when no HTTP answer came back: "cannot reach stratosd at
 * http://127.0.0.1:8080: Connection refused" (-ECONNREFUSED), timeouts
 * (-ETIMEDOUT), TLS failures; an HTTP error status is a success here. */
int st_cli_http_request(struct st_cli_http *h, const char *method, const char *path,
                        const char *content_type, const void *body, size_t body_len,
                        struct st_cli_http_response *ret, struct st_err **err);
/* The same with extra request headers: NULL-terminated "Name: value" lines
 * (Keystone's X-Subject-Token), or NULL. */
int st_cli_http_request_with(struct st_cli_http *h, const char *method, const char *path,
                             const char *const *headers, const char *content_type, const void *body,
                             size_t body_len, struct st_cli_http_response *ret,
                             struct st_err **err);
/* One exchange whose body is streamed from fd (size bytes from its current
 * offset, sent with that Content-Length), read as libcurl asks for it and
 * never held whole in memory: image uploads. A stalled transfer fails after
 * the timeout; a long one does not. */
int st_cli_http_upload(struct st_cli_http *h, const char *method, const char *path,
                       const char *const *headers, const char *content_type, int fd, uint64_t size,
                       struct st_cli_http_response *ret, struct st_err **err);
/* GET whose 2xx body is written to fd as it arrives (image downloads),
 * each piece also shown to observe (may be NULL: a checksum); *ret_bytes
 * (optional) counts it. An error answer's body stays in *ret. */
int st_cli_http_download(struct st_cli_http *h, const char *path, const char *const *headers,
                         int fd, void (*observe)(const void *data, size_t len, void *arg),
                         void *observe_arg, uint64_t *ret_bytes, struct st_cli_http_response *ret,
                         struct st_err **err);
void st_cli_http_response_clear(struct st_cli_http_response *resp);
/* A response header by name (case-insensitive), or NULL. */
const char *st_cli_http_response_header(const struct st_cli_http_response *resp, const char *name);
/* The request id the server gave (x-openstack-request-id and kin), or NULL. */
const char *st_cli_http_response_request_id(const struct st_cli_http_response *resp);

/* A JSON exchange: body (may be NULL) is sent as application/json; a 2xx
 * answer's body is parsed into *ret (NULL when empty; ret may be NULL to
 * ignore it). A status >= 400 fails with st_cli_http_error_message() and the
 * errno of st_cli_http_errno(). */
int st_cli_http_json(struct st_cli_http *h, const char *method, const char *path,
                     const json_t *body, json_t **ret, struct st_err **err);
/* The same with extra request headers, as st_cli_http_request_with. */
int st_cli_http_json_with(struct st_cli_http *h, const char *method, const char *path,
                          const char *const *headers, const json_t *body, json_t **ret,
                          struct st_err **err);

/* s percent-encoded for a URL path segment or query value (RFC 3986: all
 * but unreserved characters), so that names with spaces or '&' survive. */
char *st_cli_http_escape(const char *s);

/* The message a user sees for an HTTP error: the server's message from any
 * OpenStack error shape ({"error": {"message"}}, {"itemNotFound":
 * {"message"}}, {"NeutronError": {"message"}}, {"message"}), else the text
 * of a non-JSON body, else the reason phrase; then " (HTTP 404)" and, when
 * known, " (Request-ID: req-...)". */
char *st_cli_http_error_message(long status, const char *reason, const char *body, size_t len,
                                const char *request_id);

/* Negative errno for an HTTP status: 404 → -ENOENT, 409 → -EEXIST, ... */
int st_cli_http_errno(long status);
