/* Preparing a data dir (`stratosd init`): the directory, the store and its
 * schema, and the cluster's identity record. Idempotent: running it again
 * changes nothing that exists. */
#pragma once

#include <stdbool.h>

#include "daemon/config.h"
#include "lib/err.h"

#define ST_DAEMON_STORE_FILE "stratos.db"
#define ST_DAEMON_CLUSTER_KEY "/cluster/info"

int st_daemon_init(const struct st_daemon_config *cfg, struct st_err **err);

/* *ret = "<data-dir>/stratos.db". */
char *st_daemon_store_path(const struct st_daemon_config *cfg);

/* True when `stratosd init` has prepared cfg->data_dir. */
bool st_daemon_is_initialized(const struct st_daemon_config *cfg);
