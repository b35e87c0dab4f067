/* The HTTP/1.1 server on libmicrohttpd: a thread pool, keep-alive, a body
 * limit (streaming for routes that take uploads), a request id and access log
 * line for every request, optional TLS, and graceful shutdown. It knows no
 * resource kinds: it hands each request to the router (router.h). */
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
    const char *listen;   /* "127.0.0.1:8080", "[::1]:8080", ":8080"; port 0 = any */
    unsigned threads;     /* thread pool size; 0 = number of CPUs */
    size_t body_limit;    /* bytes; 0 = ST_API_DEFAULT_BODY_LIMIT */
    const char *tls_cert; /* PEM file paths; both or neither */
    const char *tls_key;
    unsigned connection_limit; /* 0 = 1024 */
    unsigned timeout_s;        /* idle connection timeout; 0 = 60 */
    bool access_log;           /* one log line per request (default on in stratosd) */
};

struct st_api_server;

/* Binds and starts serving. The router is borrowed and must outlive the server. */
int st_api_server_start(const struct st_api_server_config *cfg, struct st_router *router,
                        struct st_api_server **ret, struct st_err **err);

/* The port actually bound (useful with port 0). */
uint16_t st_api_server_port(const struct st_api_server *srv);

/* Graceful stop: stops accepting, lets in-flight requests finish (up to
 * grace_ms), then closes everything and frees srv. NULL-tolerant. */
void st_api_server_stop(struct st_api_server *srv, int grace_ms);

void st_api_server_free_now(struct st_api_server *srv); /* stop with no grace */
ST_DEFINE_AUTOPTR(st_api_server, st_api_server_free_now)
