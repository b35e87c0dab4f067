/* The HTTP/1.1 server on libmicrohttpd: a thread pool, keep-alive, a body
 * limit (streaming for routes that take uploads), a request id and access log
 * line for every request, optional TLS, and graceful shutdown. It knows no
 * resource kinds: it hands each request to the router (router.h).
 *
 * What every response carries: `X-Openstack-Request-Id: req-<uuid>` (the same
 * id is in every log line of the request), a correct Content-Length (none and
 * no body for 204/304; HEAD gets the GET's headers without the body), and
 * `Content-Type: application/json` for JSON bodies. Route lookup, the body
 * limit, authentication and a streaming route's opening call happen as soon
 * as the headers are in, so a 404/405/413/401 never waits for a body.
 * Handlers run on the pool's threads: a handler that blocks holds up the
 * other connections of its thread, so size `threads` for blocking work. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "lib/cleanup.h"
#include "lib/err.h"

struct st_router;
struct st_http_request;

#define ST_API_DEFAULT_BODY_LIMIT (1024 * 1024)

struct st_api_server_config {
    const char *listen;   /* "127.0.0.1:8080", "[::1]:8080", ":8080" (every address, IPv6
                             and IPv4), or a host name; port 0 = any (see _port()) */
    unsigned threads;     /* thread pool size; 0 = number of CPUs */
    size_t body_limit;    /* bytes; 0 = ST_API_DEFAULT_BODY_LIMIT; over it: 413 */
    const char *tls_cert; /* PEM file paths; both or neither */
    const char *tls_key;
    unsigned connection_limit; /* 0 = 1024 */
    unsigned timeout_s;        /* idle connection timeout; 0 = 60 */
    bool access_log;           /* one log line per request (default on in stratosd) */
};

struct st_api_server;

/* Binds and starts serving. The router is borrowed, must outlive the server
 * and must not change while it serves. Errors name the cause: "bind
 * 127.0.0.1:8080: Address already in use" (-EADDRINUSE), a missing PEM file
 * (-ENOENT), a malformed address (-EINVAL). */
int st_api_server_start(const struct st_api_server_config *cfg, struct st_router *router,
                        struct st_api_server **ret, struct st_err **err);

/* Long-polls: a handler that answers -EINPROGRESS is parked (its
 * connection suspended, no thread held) and called again after a wake or
 * within half a second; it decides from req->start_ns when to give up and
 * answer. st_api_server_wake() re-runs every parked handler now (call it when
 * what they wait for may have happened, e.g. after a store commit). */
void st_api_server_wake(struct st_api_server *srv);

/* The port actually bound (useful with port 0). */
uint16_t st_api_server_port(const struct st_api_server *srv);

/* Graceful stop: stops accepting (new clients are refused at once), lets
 * in-flight requests finish (up to grace_ms; their responses say
 * "Connection: close"), then closes everything, idle keep-alive connections
 * included, and frees srv. NULL-tolerant. */
void st_api_server_stop(struct st_api_server *srv, int grace_ms);

void st_api_server_free_now(struct st_api_server *srv); /* stop with no grace */
ST_DEFINE_AUTOPTR(st_api_server, st_api_server_free_now)
