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
 *  GET  /internal/v1/nodes/{node}/servers?after=R&wait=S
 *       the server documents assigned to the node (spec.host == node) that
 *       changed after revision R (all of them when R is 0), waiting up to S
 *       seconds (≤ 60) for a change → 200 {"revision": R2, "servers": [...]};
 *       410 when R was compacted: list again with after=0.
 *  PUT  /internal/v1/servers/{server_id}/status   {"state", "power_state", ...}
 *       merges into the document's status; a server whose spec.deleted is
 *       true and whose reported state is "DELETED" is removed for good (with
 *       its allocation and console) → 204
 *  PUT  /internal/v1/servers/{server_id}/console  (text/plain, ≤ 64 KiB) → 204
 *  GET  /internal/v1/images/{image_id}/file        → 200, the image bytes
 */
#pragma once

#include "lib/err.h"

struct st_router;
struct st_api_app;

#define ST_INTERNAL_NODE_TOKEN_FILE "node-token"

int st_api_internal_register(struct st_router *r, struct st_api_app *app, struct st_err **err);
