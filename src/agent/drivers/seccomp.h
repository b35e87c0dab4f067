/* The default seccomp profile of containers: the one Docker, containerd and
 * Kubernetes' RuntimeDefault apply (moby's profiles/seccomp/default.json),
 * kept here as a static table and rendered as the linux.seccomp object of an
 * OCI config.json. It is an allowlist: every system call that is not listed
 * fails with EPERM; clone3 fails with ENOSYS so that glibc falls back to
 * clone, which is allowed only without namespace flags.
 *
 * moby's rules carry conditions (includes/excludes on capabilities, on the
 * CPU architecture and on the kernel version); they are evaluated here as
 * moby evaluates them at container creation, against the capabilities the
 * container keeps and the architecture it runs on. Without CAP_SYS_ADMIN a
 * container has no mount, unshare, setns or bpf; keyctl, kexec_load,
 * init_module, swapon and the like are refused to every container.
 *
 * The profile is also compiled here, once per agent process and profile, to
 * the BPF program that the kernel loads: crun 1.8 compiles linux.seccomp
 * with libseccomp at every container start (15 ms on a loaded 2-core node,
 * mostly for the x86 and x32 sub-architectures), while the program given in
 * the annotation run.oci.seccomp_bpf_data is loaded as is. The compilation
 * is crun's own (libcrun/seccomp.c), from the same JSON, so that the
 * program and the linux.seccomp beside it in config.json cannot disagree. */
#pragma once

#include <jansson.h>
#include <stddef.h>

#include "lib/cleanup.h"
#include "lib/err.h"

/* The architecture this build runs on, as uname(2) names it ("x86_64",
 * "aarch64"), or the compiler's idea of it. */
const char *st_seccomp_native_arch(void);

/* The profile for a container on arch (uname's name; NULL: this build's)
 * holding the capabilities caps[0..n_caps) (names as in config.json,
 * "CAP_CHOWN", ...). -EOPNOTSUPP for an architecture the profile does not
 * cover (x86_64 and aarch64 are covered): a container is not run without
 * its filter by accident. *ret is a new reference. */
int st_seccomp_profile_new(const char *arch, const char *const *caps, size_t n_caps, json_t **ret,
                           struct st_err **err);

/* A compiled filter: the classic BPF program seccomp(SECCOMP_SET_MODE_FILTER)
 * takes (len bytes, len / 8 instructions of struct sock_filter), and the same
 * bytes in base64 (no line breaks), as run.oci.seccomp_bpf_data wants them. */
struct st_seccomp_bpf {
    unsigned char *data;
    size_t len;
    char *base64;
};

void st_seccomp_bpf_free(struct st_seccomp_bpf *bpf);
ST_DEFINE_AUTOPTR(st_seccomp_bpf, st_seccomp_bpf_free)

/* Compiles an OCI linux.seccomp object as crun does: defaultAction (with
 * defaultErrnoRet, EPERM when absent) for every call no rule names; a call
 * made with an architecture's convention that is not listed kills the thread
 * (libseccomp's bad-architecture action, which crun keeps); the host's own
 * architecture is always included; a rule whose action is the default one
 * adds nothing; a system call name libseccomp does not know is skipped (a
 * newer profile on an older libseccomp), as crun skips it; several
 * conditions on one argument make one rule each. -EINVAL for an unknown
 * action, operator or architecture. */
int st_seccomp_compile(json_t *profile, struct st_seccomp_bpf **ret, struct st_err **err);

/* The compiled st_seccomp_profile_new(arch, caps, n_caps), from a cache
 * shared by all threads: the first call for an (architecture, capability
 * set) compiles it, later calls return the same program. *ret belongs to the
 * cache and lives as long as the process. A failure is remembered too, and
 * logged once: the caller then leaves the compilation to the runtime. */
int st_seccomp_bpf_get(const char *arch, const char *const *caps, size_t n_caps,
                       const struct st_seccomp_bpf **ret, struct st_err **err);
