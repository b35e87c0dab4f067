/* The container driver (DESIGN.md "Drivers"): Linux containers run by crun
 * from OCI bundles, one per server. See container.c for the lifecycle and
 * the on-disk layout, cgroup.h for how cgroups are handled on v1, hybrid
 * and v2 hosts, oci.h for what config.json holds, rootfs.h for images. */
#pragma once

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "agent/driver.h"
#include "cgroup.h"
#include "lib/err.h"

extern const struct st_driver st_driver_container;

/* What the instance is held to, from spec.resources (compute/model.h) and
 * the node's clock per core: cpu.shares = cpu_shares (1024 when absent),
 * quota = cpu_limit_mhz / node_mhz x period (period 100000 us; none when
 * the limit is 0) or the flavor's cpu_quota_us / cpu_period_us, the
 * stricter when both are given; memory soft limit = memory_reservation_mb,
 * hard limit = memory_limit_mb, pids = pids_limit (0 or absent: none). */
int st_container_limits(json_t *resources, unsigned node_mhz, struct st_cgroup_limits *ret,
                        struct st_err **err);

/* What runs in the container whose root filesystem is rootfs: the image
 * property os_command_line (split without a shell), else /sbin/init if it
 * is an executable there, else /bin/sh kept alive by an idle loop (a shell
 * without a terminal would exit at once and the server would never be
 * ACTIVE; the loop leaves on SIGTERM so a stop is prompt). has_script adds
 * the cloud-init style wrapper that runs the user-data script first, once
 * per instance, its output on the console. NULL-terminated; free with
 * st_cgroup_strv_free. */
int st_container_command(json_t *image_properties, const char *rootfs, bool has_script,
                         char ***ret_argv, struct st_err **err);

/* The console log (instances/<id>/console.log) is written by the container
 * itself, through the O_APPEND descriptor crun hands its init: it survives
 * agent restarts, and nothing of the agent sits in the pipe. So it is kept
 * bounded from the side, by the agent on each check of the instance (every
 * few seconds): a log larger than half of max is cut to its newest quarter
 * of max. Half, because the server goes on writing until the next check: a
 * log never exceeds max as long as the server writes less than max/2 per
 * check interval (100 KiB/s for 1 MiB and 5 s); a quarter kept, so a trim
 * comes once per max/4 of output rather than at every check.
 *
 * Where the file system can (ext4, xfs), the head goes with
 * fallocate(FALLOC_FL_COLLAPSE_RANGE) over whole blocks: the kernel shifts
 * the extents under the inode lock that appends also take, so nothing the
 * container writes meanwhile is lost, and nothing is copied; what stays is
 * max/4 plus less than one block. Elsewhere (tmpfs, overlayfs over tmpfs)
 * the tail is copied to the start (from a line start) and the file
 * truncated: an append that lands between the end of the copy and the
 * truncation is lost (a window of microseconds, once per trim).
 *
 * An absent log is no error (ret->dropped 0). */
struct st_container_trim {
    uint64_t dropped; /* bytes dropped from the head; 0: the log was within max/2 */
    bool collapsed;   /* by FALLOC_FL_COLLAPSE_RANGE (else copied) */
};

int st_container_console_trim(const char *path, uint64_t max, struct st_container_trim *ret,
                              struct st_err **err);
