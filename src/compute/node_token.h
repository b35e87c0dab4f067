/* The cluster's node token: one shared secret that agents present to the
 * controller's internal API (X-Node-Token). `stratosd init` creates it in the
 * controller's data dir, once; the controller loads it at start and agents
 * are given a copy (the all-in-one daemon reads the same file). It is a
 * separate secret from every Keystone token, so a leaked user token never
 * reaches the internal API and a leaked node token never reaches the user
 * APIs. */
#pragma once

#include <stdbool.h>
#include <stddef.h>

#include "lib/err.h"

#define ST_COMPUTE_NODE_TOKEN_FILE  "node-token"
#define ST_COMPUTE_NODE_TOKEN_BYTES 32
#define ST_COMPUTE_NODE_TOKEN_LEN   (2 * ST_COMPUTE_NODE_TOKEN_BYTES) /* hex characters */

/* Creates <data_dir>/node-token (mode 0600, 32 random bytes as hex and a
 * newline) unless it exists: idempotent, an existing token is never
 * replaced (agents hold copies of it). */
int st_compute_node_token_ensure(const char *data_dir, struct st_err **err);

/* Reads <data_dir>/node-token into *ret (the hex string, no newline):
 * -ENOENT when absent, -EINVAL when it is not a token this file wrote,
 * -EPERM when readable by others than its owner. */
int st_compute_node_token_load(const char *data_dir, char **ret, struct st_err **err);

/* Compares a presented token with the expected one in constant time (for
 * equal lengths); false for NULL or empty. */
bool st_compute_node_token_equal(const char *expected, const char *presented);
