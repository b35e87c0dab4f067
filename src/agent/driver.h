/* What a compute driver implements (DESIGN.md "Drivers"): a small table of
 * operations, one file per driver under drivers/. The agent's reconcile loop
 * calls them to make what runs on the node match the server specs assigned
 * to it; every operation is idempotent, so a crash at any point is repaired
 * by calling it again. A NULL optional operation means -EOPNOTSUPP.
 *
 * Instances are named by the server's uuid. Each driver keeps its per-
 * instance state under <agent data dir>/instances/<uuid>/ and must be able
 * to rediscover running instances after an agent restart (re-adoption). */
#pragma once

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "lib/err.h"

struct st_driver_ctx {
    const char *data_dir; /* the agent's data dir */
    const char *node_name;
    /* Fetches an image file into the node's cache and returns its path
     * (borrowed until the driver is freed). Supplied by the agent. */
    int (*image_path)(void *agent, const char *image_id, const char **ret_path,
                      struct st_err **err);
    void *agent;
};

enum st_instance_state {
    ST_INSTANCE_ABSENT = 0, /* nothing of it on this node */
    ST_INSTANCE_CREATED,    /* prepared (rootfs, bundle) but not running */
    ST_INSTANCE_RUNNING,
    ST_INSTANCE_STOPPED, /* ran and exited / was stopped */
};

struct st_instance_info {
    enum st_instance_state state;
    int pid;         /* main process, 0 if none */
    int exit_status; /* for STOPPED */
    json_t *details; /* driver facts for status.instance (owned; may be NULL) */
};

struct st_instance_stats {
    uint64_t cpu_usage_ns;
    uint64_t memory_bytes;
    uint64_t pids;
};

struct st_driver {
    const char *name; /* "container", "vm", "sim" */

    /* Fills what this node can run with this driver: capacity facts and
     * whether the driver is usable here at all (-EOPNOTSUPP with a reason). */
    int (*probe)(struct st_driver_ctx *ctx, json_t *ret_facts, struct st_err **err);

    /* Prepares the instance from the server document (spec as in
     * compute/model.h): image unpacked, root filesystem, config. */
    int (*create)(struct st_driver_ctx *ctx, json_t *server, struct st_err **err);
    int (*start)(struct st_driver_ctx *ctx, json_t *server, struct st_err **err);
    /* Graceful stop: SIGTERM (or ACPI), then kill after grace_s. */
    int (*stop)(struct st_driver_ctx *ctx, const char *id, int grace_s, struct st_err **err);
    /* Removes everything of the instance: processes, mounts, cgroups, files. */
    int (*destroy)(struct st_driver_ctx *ctx, const char *id, struct st_err **err);
    int (*state)(struct st_driver_ctx *ctx, const char *id, struct st_instance_info *ret,
                 struct st_err **err);
    /* Ids of every instance this driver has on the node (re-adoption and
     * garbage collection of instances no longer assigned). Optional. */
    int (*list)(struct st_driver_ctx *ctx, json_t **ret_ids, struct st_err **err);
    /* Optional. */
    int (*stats)(struct st_driver_ctx *ctx, const char *id, struct st_instance_stats *ret,
                 struct st_err **err);
    /* Path of the console log file (stdout/stderr of the instance). */
    int (*console_path)(struct st_driver_ctx *ctx, const char *id, char **ret, struct st_err **err);
};

/* The drivers built in, by name (NULL when unknown). */
const struct st_driver *st_driver_lookup(const char *name);
void st_instance_info_clear(struct st_instance_info *info);
