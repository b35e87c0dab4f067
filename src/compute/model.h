/* The compute state model: how servers, nodes and allocations are kept in
 * the store, shared by the Nova API (writes spec), the scheduler controller
 * (writes spec.host), the internal API that agents talk to (reads spec,
 * writes status) and the agents (which never touch the store).
 *
 * /compute/servers/<uuid>  one document per server:
 * {
 *   "id": "<uuid>", "name": "demo", "project_id": "<32hex>", "user_id": "<32hex>",
 *   "created_at": "RFC 3339", "updated_at": "RFC 3339",
 *   "spec": {                        -- desired state, written by the API
 *     "flavor":  {"id", "name", "vcpus", "ram" (MiB), "disk" (GiB), "extra_specs": {}},
 *     "image":   {"id", "name", "container_format", "disk_format", "checksum",
 *                 "size", "properties": {}},
 *     "driver":  "container" | "vm",     -- from the image: docker → container
 *     "key_name": "k" | null, "public_key": "ssh-ed25519 ..." | null,
 *     "user_data": "<base64>" | null, "metadata": {},
 *     "availability_zone": "nova" | null, "server_group": "<uuid>" | null,
 *     "networks": [{"uuid": ...}, ...],  -- as requested
 *     "security_groups": [{"name": "default"}, ...],  -- resolved, by name
 *     "ports": [{"port_id", "network_id", "network_name", "mac", "ip",
 *                "subnet_id"}],     -- made at create (network/network.h);
 *                                     released when the document goes
 *     "resources": {                 -- what the scheduler admits and the agent enforces
 *        "vcpus": 2, "memory_mb": 4096, "disk_gb": 20,
 *        "cpu_reservation_mhz": 0, "cpu_limit_mhz": 0 (0 = none), "cpu_shares": 1024,
 *        "cpu_period_us": 0, "cpu_quota_us": 0 (the flavor's quota:cpu_period/cpu_quota,
 *                          for the whole instance; 0 = none),
 *        "memory_reservation_mb": 4096, "memory_limit_mb": 4096, "pids_limit": 4096 },
 *                                    -- computed by st_compute_resources (resources.h)
 *     "resource_policy": {...} | null, -- the named policy, verbatim, for show
 *     "power": "on" | "off",          -- os-start / os-stop
 *     "reboot": <int>,                -- bumped by each reboot action
 *     "reboot_type": "SOFT" | "HARD", -- of the last reboot (absent before one)
 *     "deleted": false,               -- true once DELETE was asked
 *     "host": null | "<node name>"    -- written once by the scheduler (CAS)
 *   },
 *   "status": {                      -- observed state, written for the agent
 *     "state": "BUILD" | "ACTIVE" | "SHUTOFF" | "REBOOT" | "HARD_REBOOT" | "ERROR"
 *              | "DELETED",          -- DELETED is reported, never stored
 *                                       (server.h: the document is removed)
 *     "task_state": null | "scheduling" | "spawning" | "powering-off" | ...,
 *     "power_state": 0 NOSTATE | 1 RUNNING | 4 SHUTDOWN | 6 CRASHED,
 *     "fault": null | {"code": 500, "message": "...", "created": "RFC 3339"},
 *     "launched_at": null | "RFC 3339", "observed_reboot": <int>,
 *     "instance": {"pid": 123, ...}   -- driver facts, for debugging
 *   }
 * }
 * Writers always read-modify-write with compare-and-swap on the document's
 * mod_rev (st_compute_server_update does the retry loop).
 *
 * /compute/nodes/<name>  one document per node (written by the internal API
 * on an agent's register and heartbeat):
 * { "name", "created_at", "drivers": ["container", "sim", ...],
 *   "capacity": {"vcpus", "cpu_mhz" (per core), "memory_mb", "disk_gb"},
 *   "allocation_ratio": {"cpu": 4.0, "memory": 1.0, "disk": 1.0},
 *   "availability_zone": "nova", "labels": {},
 *   "heartbeat_at": "RFC 3339", "lease_seconds": 30, "simulated": false,
 *   "usage": {...last reported} }
 * A node whose heartbeat is older than its lease is "down": the scheduler
 * skips it.
 *
 * /compute/allocations/<node>  what the scheduler has placed on a node:
 * { "servers": {"<uuid>": {"vcpus", "memory_mb", "disk_gb",
 *                          "cpu_reservation_mhz", "memory_reservation_mb"}} }
 * Placement writes the server's spec.host only after adding the server here
 * with compare-and-swap, so two schedulers never double-book a node; the
 * entry is removed when the server is deleted.
 *
 * /compute/consoles/<uuid>  the tail (64 KiB) of a server's console log,
 * pushed by its agent.
 *
 * /compute/quotas/<project_id>, /compute/quota-usage/<project_id>,
 * /compute/quota-claims/<project_id>/<server uuid>  a project's compute
 * limits, its usage counters and one claim per server counted (quota.h).
 *
 * /compute/server_groups/<uuid>  one document per server group (Nova's
 * os-server-groups, compute/server_group.h; read by the placement controller):
 * { "id", "name", "project_id", "user_id", "created_at",
 *   "policies": ["affinity" | "anti-affinity" | "soft-affinity" | ...],
 *   "policy": "affinity" (optional, the 2.64 form; wins over policies),
 *   "members": ["<server uuid>", ...] }   -- added by server create after the
 *                                          server's document is written
 * A server is a member if it is listed in members or its spec.server_group
 * names the group; placement enforces affinity and anti-affinity (the soft
 * policies are preferences, not enforced yet).
 */
#pragma once

#define ST_COMPUTE_SERVERS_PREFIX       "/compute/servers/"
#define ST_COMPUTE_NODES_PREFIX         "/compute/nodes/"
#define ST_COMPUTE_ALLOCATIONS_PREFIX   "/compute/allocations/"
#define ST_COMPUTE_CONSOLES_PREFIX      "/compute/consoles/"
#define ST_COMPUTE_SERVER_GROUPS_PREFIX "/compute/server_groups/"
#define ST_COMPUTE_CONSOLE_MAX          (64 * 1024)
