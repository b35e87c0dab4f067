/* The node agent (DESIGN.md "Processes"; stratosd --role agent, or inside
 * the all-in-one daemon): it registers its node with the controller over
 * the internal API (api/internal.h) and heartbeats it as a lease, watches
 * the servers assigned to the node (long-poll, level-triggered: a full list
 * first, then changes, a full list again every minute and after a 410), and
 * makes each one real through a driver (agent/driver.h): create and start,
 * stop, reboot, destroy, and garbage collection of instances nobody assigns
 * any more. It reports status only when it changed, pushes the console tail
 * when it grew (after trimming the log to its cap), prunes the node's image
 * cache (drivers/rootfs.h), and is the child subreaper of the processes its
 * drivers leave behind (reaper.h).
 *
 * What it never does: touch the store, run the controller's rules, or stop
 * an instance because the controller is unreachable (it retries with
 * backoff; instances keep running). A restarted agent re-adopts running
 * instances (the driver reports them RUNNING: ACTIVE, no second create).
 *
 * Simulated nodes (sim_nodes > 0): the process also registers N nodes named
 * "<node_name>-sim-0001", ..., each with its own heartbeat and data dir
 * (<data_dir>/sim/<name>), all served by the sim test double
 * (drivers/sim.c). They poll their assignments without waiting (wait=0)
 * every sim_poll_ms instead of holding a long-poll each, so a thousand of
 * them do not hold a thousand controller connections.
 *
 * Threads: one reaper; per real node one watcher (long-poll) and `workers`
 * reconcile workers (a server is reconciled by one worker at a time; a slow
 * stop does not hold up the others); up to four housekeepers that send the
 * heartbeats and drive the simulated nodes. */
#pragma once

#include <stdbool.h>

#include "lib/cleanup.h"
#include "lib/err.h"

struct st_agent_config {
    const char *controller_url;    /* "http://127.0.0.1:8080" */
    const char *node_name;         /* [A-Za-z0-9._-], ≤ 200 characters */
    const char *node_token_file;   /* holds the cluster's node token */
    const char *data_dir;          /* the agent's own state: instances/, images/, sim/ */
    const char *drivers;           /* "container,sim"; NULL or "" = probe every built-in
                                      driver except the sim test double */
    unsigned sim_nodes;            /* simulated nodes besides this one */
    double cpu_allocation_ratio;   /* what every node registers with (capacity × ratio is */
    double ram_allocation_ratio;   /* what the scheduler admits); 0 = the defaults below, */
    double disk_allocation_ratio;  /* Nova's initial_*_allocation_ratio */
    const char *availability_zone; /* NULL = "nova" */
    unsigned lease_s;              /* 0 = 30; heartbeats every lease/3 */
    unsigned poll_wait_s;          /* long-poll wait; 0 = 20 (the API caps it at 60) */
    unsigned check_interval_ms;    /* re-check of every instance's actual state (a crash, an
                                      OOM kill, console growth); 0 = 5000 */
    unsigned resync_s;             /* full assignment list; 0 = 60 */
    unsigned sim_poll_ms;          /* simulated nodes' poll period; 0 = 5000 */
    unsigned workers;              /* reconcile workers of the real node; 0 = 4 */
    unsigned stop_grace_s;         /* SIGTERM → SIGKILL grace for stop; 0 = 10 */
    const char *vtep;              /* VXLAN source address; NULL = the default route's */
    const char *external_bridge;   /* NULL = "br-ex" (agent/netplan.h) */
    bool no_network;               /* do not program networking (servers with ports fail) */
    /* An instance's console log is trimmed past this many bytes (drivers/
     * container.h); 0 = ST_AGENT_DEFAULT_CONSOLE_LOG_MAX. */
    size_t console_log_max;
    /* A cached image no instance uses is removed after this many seconds
     * unused (drivers/rootfs.h); 0 = ST_AGENT_DEFAULT_IMAGE_CACHE_MAX_AGE_S. */
    unsigned image_cache_max_age_s;
};

#define ST_AGENT_DEFAULT_LEASE_S 30

#define ST_AGENT_DEFAULT_CPU_ALLOCATION_RATIO  4.0
#define ST_AGENT_DEFAULT_RAM_ALLOCATION_RATIO  1.0
#define ST_AGENT_DEFAULT_DISK_ALLOCATION_RATIO 1.0
#define ST_AGENT_MAX_ALLOCATION_RATIO          1000.0 /* what the controller accepts */

#define ST_AGENT_DEFAULT_CONSOLE_LOG_MAX (1024 * 1024)
/* As Nova's remove_unused_original_minimum_age_seconds. */
#define ST_AGENT_DEFAULT_IMAGE_CACHE_MAX_AGE_S 86400
/* How often the image cache is pruned (Nova: every 2400 s). The environment
 * variable, for tests only, sets other seconds. */
#define ST_AGENT_IMAGE_PRUNE_INTERVAL_S   600
#define ST_AGENT_IMAGE_PRUNE_INTERVAL_ENV "STRATOS_TEST_IMAGE_PRUNE_INTERVAL_S"

struct st_agent;

/* Validates cfg, reads the node token, probes the drivers and starts the
 * threads; the first registration happens in the background (an agent
 * started before its controller keeps trying). Errors: unknown or unusable
 * driver named in cfg->drivers, missing token file, bad node name. */
int st_agent_start(const struct st_agent_config *cfg, struct st_agent **ret, struct st_err **err);

/* Stops the threads (in-flight requests are cut short) and frees the agent.
 * Instances keep running: the next agent re-adopts them. NULL-tolerant. */
void st_agent_stop(struct st_agent *a);
ST_DEFINE_AUTOPTR(st_agent, st_agent_stop)

struct st_agent_stats {
    unsigned nodes;            /* this node + simulated ones */
    unsigned nodes_registered; /* nodes whose registration succeeded at least once */
    unsigned long heartbeats;  /* successful PUT /nodes (registrations included) */
    unsigned long heartbeat_errors;
    unsigned long polls;   /* successful assignment lists */
    unsigned long reports; /* status PUTs */
    unsigned long actions; /* driver operations (create_start, stop, ...) */
    unsigned long console_pushes;
    double register_all_ms; /* start → every node registered; 0 until then */
};

void st_agent_get_stats(struct st_agent *a, struct st_agent_stats *ret);
