/* Preparing a data dir (`stratosd init`): the directory, the store and its
 * schema, the cluster's record, the identity bootstrap (Default domain, the
 * admin/member/reader roles, the admin project and user) and admin-openrc
 * with the admin's credentials. Idempotent: running it again changes nothing
 * that exists (but points admin-openrc at a new address). */
#pragma once

#include <stdbool.h>

#include "daemon/config.h"
#include "lib/err.h"

#define ST_DAEMON_STORE_FILE  "stratos.db"
#define ST_DAEMON_CLUSTER_KEY "/cluster/info"
#define ST_DAEMON_OPENRC_FILE "admin-openrc"
#define ST_DAEMON_AUDIT_FILE  "audit.log"

int st_daemon_init(const struct st_daemon_config *cfg, struct st_err **err);

/* "<data-dir>/admin-openrc": the admin's OS_* variables (mode 0600). */
char *st_daemon_openrc_path(const struct st_daemon_config *cfg);

/* *ret = "<data-dir>/stratos.db". */
char *st_daemon_store_path(const struct st_daemon_config *cfg);

/* True when `stratosd init` has prepared cfg->data_dir. */
bool st_daemon_is_initialized(const struct st_daemon_config *cfg);
