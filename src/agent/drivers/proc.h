/* Child processes of the agent: spawning programs from argv arrays (never
 * through a shell), waiting for them with a timeout, and reaping. The agent
 * is a child subreaper (prctl PR_SET_CHILD_SUBREAPER): container init
 * processes that crun leaves behind when it detaches become the agent's
 * children, because this machine's init reaps orphans 1-2 s late and the
 * agent must know promptly when an instance exits.
 *
 * Reaping has one rule: a pid that a caller is waiting for (st_proc_wait,
 * st_proc_run) is reaped only by that caller, which does so as soon as it
 * exits (the agent's reaper thread, agent/reaper.h, leaves a zombie alone
 * for a grace period for exactly this reason). Spawns and reaps take one
 * lock, so a child that exits at once cannot slip between the two. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "lib/err.h"

struct st_proc_opts {
    int stdin_fd;  /* -1: /dev/null */
    int stdout_fd; /* -1: /dev/null (st_proc_run captures instead) */
    int stderr_fd; /* -1: /dev/null (st_proc_run captures instead) */
    /* Files the child writes "0" (itself) into before exec, e.g. cgroup v1
     * "tasks" files, so the program and everything it forks start inside
     * those cgroups (st_cgroup_instance_join_files says why "tasks"). */
    const char *const *join_cgroups;
    /* A mount point the child detaches in a private mount namespace of its
     * own before exec (hides the hybrid cgroup2 mount from crun). */
    const char *hide_mount;
    bool new_session; /* setsid(): no terminal signals from the agent's tty */
};

/* Sets the calling process as child subreaper (idempotent). */
int st_proc_subreaper_enable(struct st_err **err);

/* The absolute path of an executable, looked up in PATH as execvp would
 * (names containing '/' are returned as they are). -ENOENT when absent. */
int st_proc_find_exec(const char *name, char **ret, struct st_err **err);

/* Starts argv[0] (a path, or a name looked up in PATH) with argv. opts may be
 * NULL (all standard streams on /dev/null). The pid is reserved for the
 * caller: only st_proc_wait reaps it. */
int st_proc_spawn(const char *const argv[], const struct st_proc_opts *opts, pid_t *ret_pid,
                  struct st_err **err);

/* Waits up to timeout_ms (-1: forever) for a child started by st_proc_spawn
 * and reaps it; *ret_status is the raw wait status. On timeout the child is
 * killed with SIGKILL and reaped, and -ETIMEDOUT is returned. */
int st_proc_wait(pid_t pid, int timeout_ms, int *ret_status, struct st_err **err);

/* Runs argv to completion (timeout_ms as st_proc_wait), capturing up to
 * max_out bytes of stdout (*ret_out, NUL-terminated, may be NULL) and the
 * tail of stderr. A non-zero exit is an error whose message names the
 * program, its exit code and the last line of its stderr. */
int st_proc_run(const char *const argv[], const struct st_proc_opts *opts, int timeout_ms,
                size_t max_out, char **ret_out, struct st_err **err);

/* Reaps pid if it is a zombie child of ours that no caller waits for.
 * Returns 1 and *ret_status (raw wait status) when reaped now, or reaped
 * earlier by the agent's reaper thread (agent/reaper.h, which remembers
 * statuses); 0 when it is still running; -ECHILD when it is not our child
 * and its end is unknown (for instance adopted from a previous agent). */
int st_proc_reap(pid_t pid, int *ret_status);

/* Waits up to timeout_ms for any process (child or not) to exit, through a
 * pidfd. 0 when it has exited (or never existed), -ETIMEDOUT otherwise. */
int st_proc_wait_exit(pid_t pid, int timeout_ms);

/* "exited with 3" / "killed by signal 9 (Killed)" for a wait status. */
char *st_proc_describe_status(int status);
