/* Nodes as the controller knows them: one document per agent, written when
 * it registers and on every heartbeat (a lease: a node whose heartbeat is
 * older than lease_seconds is down and gets no new servers). The shape is
 * in compute/model.h; this file validates what agents send and keeps the
 * fields only the controller sets (created_at, heartbeat_at). */
#pragma once

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "lib/err.h"

struct st_kv;

#define ST_COMPUTE_NODE_NAME_MAX      63
#define ST_COMPUTE_NODE_LEASE_DEFAULT 30

/* Node names: 1..63 letters, digits, '.', '_' or '-', starting with a
 * letter or digit (a hostname, usable as a store key and a path). */
int st_compute_node_check_name(const char *name, struct st_err **err);

/* Registers or heartbeats a node: the body's fields ("drivers", "capacity",
 * "allocation_ratio", "availability_zone", "labels", "lease_seconds",
 * "usage", "simulated", "facts", "version", "address") replace the stored
 * ones, absent ones are kept; the first registration needs "drivers" and
 * "capacity". heartbeat_at becomes now. *ret (optional) is the stored
 * document. */
int st_compute_node_put(struct st_kv *kv, const char *name, json_t *body, json_t **ret,
                        struct st_err **err);

/* -ENOENT when unknown. */
int st_compute_node_get(struct st_kv *kv, const char *name, json_t **ret, struct st_err **err);

/* Every node, in name order. */
int st_compute_node_list(struct st_kv *kv, json_t **ret, struct st_err **err);

/* Whether the node's lease holds at now_ms (heartbeat_at + lease_seconds). */
bool st_compute_node_alive(json_t *node, int64_t now_ms);
