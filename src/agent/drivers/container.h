/* The container driver (DESIGN.md "Drivers"): Linux containers run by crun
 * from OCI bundles, one per server. See container.c for the lifecycle and
 * the on-disk layout, cgroup.h for how cgroups are handled on v1, hybrid
 * and v2 hosts, oci.h for what config.json holds, rootfs.h for images. */
#pragma once

#include <jansson.h>

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
