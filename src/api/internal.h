/* The internal API at /internal/v1: how agents reach cluster state (they
 * never touch the store). Authenticated with the cluster's node token
 * (header X-Node-Token: the secret in <controller data-dir>/node-token,
 * created by `stratosd init`); routes carry actions "internal:*:*" which the
 * auth hook checks against that token instead of a Keystone token.
 *
 *  PUT  /internal/v1/nodes/{node}
 *       {"drivers": [...], "capacity": {...}, "availability_zone": "nova",
 *        "labels": {}, "lease_seconds": 30, "usage": {...}, "simulated": false}
 *       register or heartbeat (upsert of /compute/nodes/<node>) → 200 {"node": {...}}
 *       (compute/node.h: the first request needs drivers and capacity, later
 *       ones may send only what changed, e.g. {"usage": {...}}; also accepted:
 *       "allocation_ratio", "facts", "version", "address"; unknown fields 400)
 *  GET  /internal/v1/nodes/{node}/servers?after=R&wait=S
 *       the server documents assigned to the node (spec.host == node) that
 *       changed after revision R (all of them when R is 0, answered at once),
 *       waiting up to S seconds (≤ 60, default 0) for a change → 200
 *       {"revision": R2, "servers": [...]} (pass R2 as the next after; an
 *       empty list after the wait is normal); 410 when R was compacted: list
 *       again with after=0. A server leaves the list only by being removed,
 *       which happens after its agent reported it DELETED.
 *       The wait holds one of the API's worker threads (server.h).
 *  PUT  /internal/v1/servers/{server_id}/status
 *       {"state": BUILD|ACTIVE|SHUTOFF|REBOOT|HARD_REBOOT|ERROR|DELETED,
 *        "power_state": 0..7, "task_state": null|"...", "observed_reboot": N,
 *        "fault": null|{"message", "code" (default 500)}, "instance": {...}}
 *       (all optional) merges into the document's status → 204. Leaving out
 *       task_state clears the task once the state it aimed at is reached;
 *       the first ACTIVE sets launched_at. "DELETED" for a server whose
 *       spec.deleted is true removes it for good (with its allocation,
 *       console and quota entry); repeated for a server already gone → 204;
 *       for a server nobody deleted → 409 (report ERROR with a fault).
 *  PUT  /internal/v1/servers/{server_id}/console  (text/plain) → 204; the last
 *       64 KiB of the body are kept (send the tail of the log, not a diff)
 *  GET  /internal/v1/images/{image_id}/file        → 200, the image bytes
 *
 * Errors use the plain shape {"error": {"code", "title", "message"}}: 401
 * for a missing or wrong token (a Keystone token is never accepted here,
 * and a node token nowhere else), 400 bad input, 404 unknown server/image.
 */
#pragma once

#include "lib/err.h"

struct st_router;
struct st_api_app;

#define ST_INTERNAL_NODE_TOKEN_FILE "node-token"

struct st_http_request;

/* Registers the routes; loads <app->data_dir>/node-token (creating it when
 * an older data dir lacks it). Without a data dir the routes answer 401. */
int st_api_internal_register(struct st_router *r, struct st_api_app *app, struct st_err **err);

/* The assignment long-poll parks instead of blocking a thread; this thread
 * watches the store and wakes the parked polls when a server changes. */
struct st_kv;
struct st_api_server;
struct st_api_internal_waker;
int st_api_internal_waker_start(struct st_kv *kv, struct st_api_server *srv,
                                struct st_api_internal_waker **ret, struct st_err **err);
void st_api_internal_waker_stop(struct st_api_internal_waker *w);

/* The auth hook's check for "internal:*" routes: X-Node-Token against the
 * loaded token, in constant time. -EACCES (401) otherwise. */
int st_api_internal_authenticate(struct st_http_request *req, struct st_err **err);
