/* The agent's HTTP client to the controller's internal API (api/internal.h),
 * over libcurl: a base URL, the node token in X-Node-Token, JSON in and out,
 * timeouts, long-polls that a stop request interrupts at once, and
 * downloads streamed to a file. One client per thread (a libcurl handle is
 * not shared); each keeps its connection alive between requests. */
#pragma once

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

#include "lib/cleanup.h"
#include "lib/err.h"

struct st_agent_client;

/* stop, when non-NULL, is polled while a request is in flight: once it reads
 * non-zero the request ends with -ECANCELED (see st_agent_client_wake). */
struct st_agent_client *st_agent_client_new(const char *base_url, const char *token,
                                            const int *stop);
void st_agent_client_free(struct st_agent_client *c);
ST_DEFINE_AUTOPTR(st_agent_client, st_agent_client_free)

/* Makes a request in flight notice *stop now rather than at its next poll
 * (thread-safe; callable from any thread). */
void st_agent_client_wake(struct st_agent_client *c);

/* method path (under the base URL) with an optional JSON body. timeout_s
 * bounds the whole exchange (0 = 30 s). On a 2xx, *ret_json (if asked) is the
 * parsed body or NULL when empty. Errors: the transport ("controller
 * http://... unreachable: ...", -ECONNREFUSED, -ETIMEDOUT, -EHOSTUNREACH),
 * -ECANCELED when stopped, and HTTP statuses as errno: 401/403 -EACCES,
 * 404 -ENOENT, 409 -EBUSY, 410 -ESTALE, 413 -EFBIG, other 4xx -EINVAL,
 * 5xx -EIO, each with the server's message. *ret_status (if asked) is the
 * HTTP status, 0 when there was none. */
int st_agent_client_request(struct st_agent_client *c, const char *method, const char *path,
                            json_t *body, int timeout_s, long *ret_status, json_t **ret_json,
                            struct st_err **err);

/* PUT of a text/plain body (the console tail). */
int st_agent_client_put_text(struct st_agent_client *c, const char *path, const char *data,
                             size_t len, struct st_err **err);

/* GET path streamed into fd; on_chunk (optional) sees every chunk written
 * (for a checksum). No overall timeout: a transfer slower than 1 byte/s for
 * 60 s fails. */
int st_agent_client_download(struct st_agent_client *c, const char *path, int fd,
                             void (*on_chunk)(void *userdata, const void *data, size_t len),
                             void *userdata, struct st_err **err);
