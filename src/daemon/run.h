/* Serving (`stratosd run`): opens the store, wires the API routes and runs
 * the roles asked for until SIGTERM or SIGINT, then stops gracefully:
 * no new connections, in-flight requests finish, the store closes cleanly. */
#pragma once

#include "daemon/config.h"
#include "lib/err.h"

/* Blocks until a termination signal; 0 after a clean shutdown. */
int st_daemon_run(const struct st_daemon_config *cfg, struct st_err **err);
