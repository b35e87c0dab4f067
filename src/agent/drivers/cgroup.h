/* The host's cgroup layout and the cgroups of container instances.
 *
 * Three layouts exist in the wild, and this agent meets all three:
 *  - v2 (unified): one cgroup2 hierarchy at /sys/fs/cgroup. crun's own
 *    cgroupfs manager creates /sys/fs/cgroup/stratos/<id> and applies
 *    linux.resources from config.json (cpu.weight from shares, cpu.max,
 *    memory.low/max, pids.max); this code only reads it back.
 *  - v1 (legacy): one hierarchy per controller (or per group of co-mounted
 *    controllers) under /sys/fs/cgroup/<name>.
 *  - hybrid: v1 controllers plus a cgroup2 mount (/sys/fs/cgroup/unified)
 *    that holds some controller (hugetlb on these machines). crun refuses it
 *    ("cgroups in hybrid mode not supported") before consulting its cgroup
 *    manager, so even --cgroup-manager=disabled fails.
 * For v1 and hybrid the agent manages the cgroups itself: it creates
 * <hierarchy>/<agent's own cgroup>/stratos/<id> for cpu, cpuacct, memory,
 * pids and devices, writes the limits, and spawns crun with its cgroup
 * manager disabled from inside those cgroups (the child joins them before
 * exec), so the container and everything it forks are born in them and its
 * cgroup namespace is rooted there. On hybrid hosts the child also detaches
 * the cgroup2 mount in a private mount namespace of its own, where crun then
 * sees plain v1. Nothing on the host is changed and no hand-made step is
 * needed. Nesting under the agent's own cgroup keeps instances inside
 * whatever the agent was given (a systemd unit with Delegate=yes, a
 * sandbox's memory cgroup). The other way that works -- hide the cgroup2
 * mount and let crun's cgroupfs manager do v1 -- was rejected: crun puts
 * one cgroupsPath under the root of every hierarchy, outside the agent's
 * own cgroups. The cost of this way: crun's own setup (a few MB, a few ms of
 * CPU) is charged to the instance, and crun delete knows nothing of the
 * cgroups, so destroy removes them (cgroups.json in the instance directory
 * says where they are).
 *
 * Detection reads /proc/self/mountinfo (which hierarchies are mounted where),
 * /proc/cgroups (which controllers are enabled) and /proc/self/cgroup (the
 * agent's own place in each hierarchy). */
#pragma once

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "lib/err.h"

enum st_cgroup_layout {
    ST_CGROUP_UNKNOWN = 0,
    ST_CGROUP_V1,
    ST_CGROUP_HYBRID,
    ST_CGROUP_V2,
};

#define ST_CGROUP_HIER_MAX 32

struct st_cgroup_hier {
    char *controllers; /* "cpu", "cpu,cpuacct", "memory", ... as mounted */
    char *mount;       /* where the hierarchy is mounted */
    char *own;         /* the agent's cgroup in it, relative to the mount */
};

struct st_cgroup_host {
    enum st_cgroup_layout layout;
    char *unified;     /* the cgroup2 mount point, NULL without one */
    char *unified_own; /* the agent's cgroup2 path ("0::" line) */
    size_t n_hier;     /* v1 hierarchies */
    struct st_cgroup_hier hier[ST_CGROUP_HIER_MAX];
};

/* What the agent enforces on an instance, in kernel units. */
struct st_cgroup_limits {
    uint64_t cpu_shares;        /* v1 cpu.shares; crun maps it to cpu.weight on v2 */
    int64_t cpu_quota_us;       /* -1: none */
    uint64_t cpu_period_us;     /* 100000 */
    int64_t memory_limit;       /* bytes, -1: none (also the memory+swap limit) */
    int64_t memory_reservation; /* bytes, -1: none (v1 soft limit, v2 memory.low) */
    int64_t pids_limit;         /* -1: none */
};

/* The devices a container may use (runc's and Docker's default list, less
 * mknod rights: CAP_MKNOD is dropped anyway). v1: devices.allow lines after
 * "a" in devices.deny; v2: linux.resources.devices, which crun turns into an
 * eBPF program. major/minor -1 means any. */
struct st_cgroup_device {
    char type; /* 'c' or 'b' */
    int major, minor;
    const char *access;
};
extern const struct st_cgroup_device st_cgroup_default_devices[];
extern const size_t st_cgroup_n_default_devices;

const char *st_cgroup_layout_name(enum st_cgroup_layout layout);

/* Parses the three /proc texts; read_controllers returns the content of a
 * cgroup2 mount's cgroup.controllers (a seam for tests: the host's reads the
 * file). */
int st_cgroup_host_parse(const char *mountinfo, const char *self_cgroup, const char *proc_cgroups,
                         int (*read_controllers)(const char *mount, char **ret, void *data),
                         void *data, struct st_cgroup_host **ret, struct st_err **err);
void st_cgroup_host_free(struct st_cgroup_host *host);

/* The host's layout, detected once per process (borrowed, never freed). */
int st_cgroup_host_get(const struct st_cgroup_host **ret, struct st_err **err);

/* The cgroup directories of instance id, by controller:
 *  v1/hybrid: {"cpu": ".../cpu/<own>/stratos/<id>", "cpuacct": ..., "memory":
 *              ..., "pids": ..., "devices": ...} (co-mounted controllers
 *              share a directory);
 *  v2:        {"unified": "/sys/fs/cgroup/stratos/<id>"}.
 * The driver keeps this object in the instance directory so that removal
 * and statistics do not depend on where a restarted agent runs. */
int st_cgroup_instance_dirs(const struct st_cgroup_host *host, const char *id, json_t **ret,
                            struct st_err **err);

/* v1/hybrid: creates the directories and writes the limits (idempotent:
 * rewriting the same values is harmless). Missing cpu, memory or pids
 * controllers are an error: their limits could not be enforced. */
int st_cgroup_instance_apply(json_t *dirs, const struct st_cgroup_limits *limits,
                             struct st_err **err);

/* The files a child writes "0" into to join the instance's cgroups before
 * exec: v1 "tasks", one per distinct directory (NULL-terminated; free with
 * st_cgroup_strv_free). Moving the calling thread itself through "tasks"
 * lets the kernel skip its global threadgroup lock, whose RCU grace period
 * costs 2-3 ms per hierarchy through cgroup.procs (12 ms of a 30 ms start on
 * this machine); the child is single-threaded, so its thread is the whole
 * process. */
char **st_cgroup_instance_join_files(json_t *dirs);
void st_cgroup_strv_free(char **strv);

/* Removes the directories (retrying briefly while the last tasks leave) and
 * the "stratos" parents when empty. Absent directories are fine. */
int st_cgroup_instance_remove(json_t *dirs, struct st_err **err);

/* Usage and OOM kills read back from the instance's cgroups; fields that a
 * layout lacks stay 0. */
struct st_cgroup_usage {
    uint64_t cpu_usage_ns;
    uint64_t memory_bytes;
    uint64_t pids;
    uint64_t oom_kills;
};
int st_cgroup_instance_usage(json_t *dirs, struct st_cgroup_usage *ret, struct st_err **err);
