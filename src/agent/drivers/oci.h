/* The OCI runtime configuration (config.json) of a container instance,
 * generated with jansson, plus the two small text transformations that
 * feed it: the hostname from a server name, and an image's
 * os_command_line split into argv without a shell.
 *
 * What every container gets, and why:
 *  - namespaces pid, mount, ipc, uts, network (a new, empty one: networking
 *    comes later; crun brings loopback up) and cgroup;
 *  - process.noNewPrivileges, root user; no rlimits: the container inherits
 *    the agent's (raising them needs CAP_SYS_RESOURCE, which a sandboxed or
 *    unprivileged-limit agent may lack);
 *  - capabilities: Docker's default set less NET_RAW (raw sockets allow
 *    ARP/ICMP spoofing towards neighbours on a shared bridge) and MKNOD
 *    (device nodes; the devices cgroup denies them anyway): CHOWN,
 *    DAC_OVERRIDE, FSETID, FOWNER, SETGID, SETUID, SETFCAP, SETPCAP,
 *    NET_BIND_SERVICE, SYS_CHROOT, KILL, AUDIT_WRITE, in the bounding,
 *    effective and permitted sets; none inheritable or ambient;
 *  - runc's default masked paths (/proc/kcore, /proc/keys, /sys/firmware,
 *    ...) and read-only paths (/proc/sys, /proc/sysrq-trigger, ...);
 *  - mounts: /proc, /dev (tmpfs), /dev/pts, /dev/shm (64 MiB), /dev/mqueue,
 *    /sys read-only, and on cgroup v2 hosts /sys/fs/cgroup read-only (the
 *    container's own subtree, through its cgroup namespace);
 *  - linux.resources from the instance's limits and the default device list;
 *    on v2 hosts also cgroupsPath "/stratos/<id>" for crun's manager (on v1
 *    and hybrid hosts the agent applies the same values itself, cgroup.h);
 *  - linux.seccomp: Docker's default profile (seccomp.h) for the capabilities
 *    above, unless the flavor says stratos:seccomp=unconfined. That opt-out
 *    is read from the flavor only: flavors are made by admins, while image
 *    properties are made by users, who must not be able to lift the filter;
 *  - with it, the annotation run.oci.seccomp_bpf_data: the same profile
 *    compiled once per agent process (seccomp.h), which crun loads instead of
 *    compiling linux.seccomp at every start. linux.seccomp stays, for readers
 *    of the bundle and for runtimes that do not know the annotation. */
#pragma once

#include <jansson.h>

#include "cgroup.h"
#include "lib/err.h"

struct st_oci_params {
    const char *id;          /* instance (server) uuid */
    const char *name;        /* server name, kept as an annotation */
    const char *hostname;    /* st_oci_hostname(name) */
    const char *const *args; /* NULL-terminated, non-empty */
    const struct st_cgroup_limits *limits;
    enum st_cgroup_layout layout; /* decides cgroupsPath and the cgroup mount */
    const char *netns;            /* network namespace to join (its ports plugged by the agent's
                                     netplan), or NULL for a new one with only "lo" */
    json_t *flavor_specs;         /* the server's spec.flavor.extra_specs, or NULL: stratos:seccomp
                                     is "runtime/default" (the default) or "unconfined" */
    const char *arch;             /* the seccomp profile's architecture (uname -m); NULL: this
                                     build's (the golden test pins it) */
};

/* The config.json object (new reference). */
int st_oci_config_new(const struct st_oci_params *p, json_t **ret, struct st_err **err);

/* Compiles the default seccomp filter of this host's containers ahead of
 * the first one (the driver's probe calls it), so no create waits for it.
 * Failing is harmless: it is logged once, and crun compiles at start. */
void st_oci_seccomp_warm(void);

/* A valid hostname from a server name, as Nova sanitizes one: lower case,
 * spaces and '_' become '-', other characters outside [a-z0-9.-] go,
 * leading/trailing '-' and '.' go, at most 63 bytes; "server-<first 8 of
 * id>" when nothing is left. */
char *st_oci_hostname(const char *name, const char *id);

/* Splits a command line as a POSIX shell splits words, with no expansion of
 * any kind: blanks separate words, '...' is literal, "..." is literal but
 * for \" \\ \$ \` and \newline, a backslash outside quotes escapes the next
 * character. -EINVAL (message saying where) for an unterminated quote, an
 * empty command or more than 256 words. *ret_argv is NULL-terminated; free
 * with st_cgroup_strv_free. */
int st_oci_split_command(const char *cmdline, char ***ret_argv, struct st_err **err);
