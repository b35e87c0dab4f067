/* The agent as child subreaper (prctl PR_SET_CHILD_SUBREAPER): processes
 * orphaned below it (a container's init once `crun run --detach` exits) are
 * re-parented to the agent instead of init, and the agent must reap them
 * when they end; this machine's init reaps orphans only 1-2 s late, which
 * would leave a dead container looking alive (its pid still answers kill 0).
 *
 * The reaper thread never steals an exit status a driver waits for: it only
 * reaps a zombie child that has stayed unreaped for grace_ms (a driver that
 * forks a helper waits for it right away). It first asks the kernel whether
 * any child is a zombie at all (waitid with WNOWAIT: one cheap call every
 * 100 ms) and only then scans /proc for which ones. The exit statuses of the
 * last reaped processes are kept so a driver can still learn how its
 * instance ended (st_reaper_exit_status). */
#pragma once

#include <stdbool.h>
#include <sys/types.h>

#include "lib/err.h"

struct st_reaper;

#define ST_REAPER_DEFAULT_GRACE_MS 200

/* Makes the process a child subreaper and starts the thread. */
int st_reaper_start(unsigned grace_ms, struct st_reaper **ret, struct st_err **err);
void st_reaper_stop(struct st_reaper *r); /* NULL-tolerant; joins the thread */

/* The wait status (as waitpid gives it) of a process this reaper reaped
 * recently (the last 256); -ENOENT when unknown. Thread-safe. */
int st_reaper_exit_status(pid_t pid, int *ret_status);

/* Number of processes reaped since the process started (tests, metrics). */
unsigned long st_reaper_count(void);
