/* What a server is promised: spec.resources of model.h, computed from its
 * flavor (vcpus, ram, disk and the extra specs stratos reads) and an
 * optional resource policy, which wins where both say something. The
 * scheduler admits on the reservations; the agent enforces shares, quota and
 * limits. Also the view of the nodes that os-hypervisors and os-services
 * show (capacity, what is allocated, up or down).
 *
 * The mapping:
 *   vcpus, memory_mb, disk_gb     flavor vcpus, ram, disk
 *   cpu_shares                    policy shares (low/normal/high = 512/1024/2048
 *                                 per vCPU, as vSphere; a number is for the whole
 *                                 instance), else quota:cpu_shares, else 1024/vCPU
 *   cpu_reservation_mhz           policy cpu reservation, else
 *                                 resources:cpu_reservation_mhz, else 0
 *   cpu_limit_mhz                 policy cpu limit, else resources:cpu_limit_mhz,
 *                                 else 0 (none)
 *   cpu_period_us, cpu_quota_us   quota:cpu_period (default 100000) and
 *                                 quota:cpu_quota, which Nova applies per vCPU:
 *                                 quota = cpu_quota x vcpus for the instance;
 *                                 0 = none; dropped when the policy sets a limit
 *   memory_reservation_mb         policy memory reservation, else
 *                                 resources:memory_reservation_mb, else
 *                                 min(ram, limit)
 *   memory_limit_mb               policy memory limit, else
 *                                 resources:memory_limit_mb, else
 *                                 max(ram, reservation)
 *   pids_limit                    resources:pids_limit, else 4096
 * So without a policy or extra specs: memory reservation = limit = ram, no
 * cpu reservation, normal shares. Policy quantities are converted as in
 * resource_policy.h (GB means GiB: 4GB is 4096 MiB). */
#pragma once

#include <jansson.h>
#include <stdint.h>

#include "lib/err.h"

struct st_kv;

#define ST_PIDS_LIMIT_DEFAULT 4096
#define ST_CPU_PERIOD_DEFAULT 100000

/* flavor: a stored flavor or a server's spec.flavor ({"vcpus", "ram",
 * "disk", "extra_specs"}); policy (nullable): a stored policy document
 * ({"resourcePolicy": ...}) or a bare resourcePolicy object. *ret_resources
 * is a new object. -EINVAL when they contradict each other (a reservation
 * above a limit) or a value is malformed. */
int st_compute_resources(json_t *flavor, json_t *policy, json_t **ret_resources,
                         struct st_err **err);

/* The policy a server gets: its metadata's "resource_policy", else its
 * flavor's extra spec "stratos:resource_policy", looked up in the server's
 * project. *ret_policy is NULL when neither names one; a name that does not
 * exist is -EINVAL ("resource policy 'gold' (from the flavor's extra spec
 * stratos:resource_policy) not found in this project"). */
int st_compute_policy_for(struct st_kv *kv, const char *project_id, json_t *flavor,
                          json_t *metadata, json_t **ret_policy, struct st_err **err);

/* The nodes of /compute/nodes/ as the admin views show them, in name order:
 * [{"id": <integer, stable>, "name", "state": "up"|"down", "status": "enabled",
 *   "heartbeat_at", "created_at", "drivers", "availability_zone", "simulated",
 *   "capacity": {...}, "allocation_ratio": {...}, "labels", "address",
 *   "used": {"vcpus", "memory_mb", "disk_gb", "cpu_reservation_mhz",
 *            "memory_reservation_mb", "servers"}}]
 * A node is down when its last heartbeat is older than its lease at now_ms. */
int st_compute_nodes_summary(struct st_kv *kv, int64_t now_ms, json_t **ret, struct st_err **err);
