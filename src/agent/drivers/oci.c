/* config.json generation; see oci.h for what goes in and why. The keys come
 * out in a fixed order so that the golden file in tests/data stays stable. */
#include "oci.h"

#include <ctype.h>
#include <errno.h>
#include <string.h>

#include "lib/cleanup.h"
#include "lib/json.h"
#include "seccomp.h"

#define ARGV_MAX 256

static const char *const capabilities[] = {
    "CAP_CHOWN",  "CAP_DAC_OVERRIDE", "CAP_FSETID",  "CAP_FOWNER",           "CAP_SETGID",
    "CAP_SETUID", "CAP_SETFCAP",      "CAP_SETPCAP", "CAP_NET_BIND_SERVICE", "CAP_SYS_CHROOT",
    "CAP_KILL",   "CAP_AUDIT_WRITE",
};

/* runc's defaults (libcontainer/specconv). */
static const char *const masked_paths[] = {
    "/proc/acpi",
    "/proc/asound",
    "/proc/kcore",
    "/proc/keys",
    "/proc/latency_stats",
    "/proc/timer_list",
    "/proc/timer_stats",
    "/proc/sched_debug",
    "/proc/scsi",
    "/sys/firmware",
    "/sys/devices/virtual/powercap",
};
static const char *const readonly_paths[] = {
    "/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger",
};
static const char *const namespaces[] = {"pid", "mount", "ipc", "uts", "network", "cgroup"};

static json_t *strings(const char *const *v, size_t n)
{
    json_t *a = json_array();
    for (size_t i = 0; i < n; i++)
        json_array_append_new(a, json_string(v[i]));
    return a;
}

static json_t *mount_entry(const char *dest, const char *type, const char *source,
                           const char *const *opts, size_t n)
{
    return json_pack("{s:s, s:s, s:s, s:o}", "destination", dest, "type", type, "source", source,
                     "options", strings(opts, n));
}

static json_t *mounts(enum st_cgroup_layout layout)
{
    static const char *const proc_o[] = {"nosuid", "noexec", "nodev"};
    static const char *const dev_o[] = {"nosuid", "strictatime", "mode=755", "size=65536k"};
    static const char *const pts_o[] = {"nosuid",        "noexec",    "newinstance",
                                        "ptmxmode=0666", "mode=0620", "gid=5"};
    static const char *const shm_o[] = {"nosuid", "noexec", "nodev", "mode=1777", "size=65536k"};
    static const char *const mq_o[] = {"nosuid", "noexec", "nodev"};
    static const char *const sys_o[] = {"nosuid", "noexec", "nodev", "ro"};
    static const char *const cg_o[] = {"nosuid", "noexec", "nodev", "relatime", "ro"};
    json_t *m = json_array();
    json_array_append_new(m, mount_entry("/proc", "proc", "proc", proc_o, ST_ARRAY_SIZE(proc_o)));
    json_array_append_new(m, mount_entry("/dev", "tmpfs", "tmpfs", dev_o, ST_ARRAY_SIZE(dev_o)));
    json_array_append_new(m,
                          mount_entry("/dev/pts", "devpts", "devpts", pts_o, ST_ARRAY_SIZE(pts_o)));
    json_array_append_new(m, mount_entry("/dev/shm", "tmpfs", "shm", shm_o, ST_ARRAY_SIZE(shm_o)));
    json_array_append_new(
        m, mount_entry("/dev/mqueue", "mqueue", "mqueue", mq_o, ST_ARRAY_SIZE(mq_o)));
    json_array_append_new(m, mount_entry("/sys", "sysfs", "sysfs", sys_o, ST_ARRAY_SIZE(sys_o)));
    /* On v1/hybrid crun's manager is disabled and would expose the host's
     * hierarchies; the container gets no cgroup mount there. */
    if (layout == ST_CGROUP_V2)
        json_array_append_new(
            m, mount_entry("/sys/fs/cgroup", "cgroup", "cgroup", cg_o, ST_ARRAY_SIZE(cg_o)));
    return m;
}

static json_t *resources(const struct st_cgroup_limits *l)
{
    json_t *devices = json_array();
    json_array_append_new(devices, json_pack("{s:b, s:s}", "allow", 0, "access", "rwm"));
    for (size_t i = 0; i < st_cgroup_n_default_devices; i++) {
        const struct st_cgroup_device *d = &st_cgroup_default_devices[i];
        json_t *e = json_pack("{s:b, s:s%}", "allow", 1, "type", &d->type, (size_t)1);
        if (d->major >= 0)
            json_object_set_new(e, "major", json_integer(d->major));
        if (d->minor >= 0)
            json_object_set_new(e, "minor", json_integer(d->minor));
        json_object_set_new(e, "access", json_string(d->access));
        json_array_append_new(devices, e);
    }
    json_t *memory = json_object();
    if (l->memory_limit > 0) {
        json_object_set_new(memory, "limit", json_integer(l->memory_limit));
        /* memory+swap = memory: swap is no way around the hard limit */
        json_object_set_new(memory, "swap", json_integer(l->memory_limit));
    }
    if (l->memory_reservation > 0)
        json_object_set_new(memory, "reservation", json_integer(l->memory_reservation));
    json_t *cpu = json_pack("{s:I}", "shares", (json_int_t)l->cpu_shares);
    if (l->cpu_quota_us > 0)
        json_object_set_new(cpu, "quota", json_integer(l->cpu_quota_us));
    json_object_set_new(cpu, "period", json_integer((json_int_t)l->cpu_period_us));
    json_t *r = json_pack("{s:o, s:o, s:o}", "devices", devices, "memory", memory, "cpu", cpu);
    if (l->pids_limit > 0)
        json_object_set_new(r, "pids", json_pack("{s:I}", "limit", (json_int_t)l->pids_limit));
    return r;
}

/* The flavor's stratos:seccomp: true when it asks for no filter. Anything
 * but the two known values is refused rather than guessed at: a typo must
 * not silently unconfine (or confine) a workload. */
static int seccomp_unconfined(json_t *flavor_specs, bool *ret, struct st_err **err)
{
    json_t *v = json_object_get(flavor_specs, "stratos:seccomp");
    const char *s = json_string_value(v);
    *ret = false;
    if (!v || (s && strcmp(s, "runtime/default") == 0))
        return 0;
    if (s && strcmp(s, "unconfined") == 0) {
        *ret = true;
        return 0;
    }
    if (!s)
        return st_err_set(err, -EINVAL, "flavor extra spec stratos:seccomp is not a string");
    return st_err_set(err, -EINVAL,
                      "flavor extra spec stratos:seccomp is '%s': it must be 'runtime/default' "
                      "or 'unconfined'",
                      s);
}

void st_oci_seccomp_warm(void)
{
    const struct st_seccomp_bpf *bpf = NULL;
    st_autoptr(st_err) err = NULL;
    (void)st_seccomp_bpf_get(NULL, capabilities, ST_ARRAY_SIZE(capabilities), &bpf, &err);
}

int st_oci_config_new(const struct st_oci_params *p, json_t **ret, struct st_err **err)
{
    if (!p->args || !p->args[0])
        return st_err_set(err, -EINVAL, "no command to run");
    bool unconfined;
    int r = seccomp_unconfined(p->flavor_specs, &unconfined, err);
    if (r < 0)
        return r;
    json_t *seccomp = NULL;
    const struct st_seccomp_bpf *bpf = NULL;
    if (!unconfined) {
        size_t n_caps = ST_ARRAY_SIZE(capabilities);
        if ((r = st_seccomp_profile_new(p->arch, capabilities, n_caps, &seccomp, err)) < 0)
            return r;
        /* Without the program (seccomp.c logged why, once) crun compiles
         * linux.seccomp itself: slower, just as safe. */
        st_autoptr(st_err) bpf_err = NULL;
        if (st_seccomp_bpf_get(p->arch, capabilities, n_caps, &bpf, &bpf_err) < 0)
            bpf = NULL;
    }
    json_t *args = json_array();
    for (const char *const *a = p->args; *a; a++)
        json_array_append_new(args, json_string(*a));
    st_autofree char *hostname_env = st_sprintf("HOSTNAME=%s", p->hostname);
    json_t *env = json_pack("[s, s, s]",
                            "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:"
                            "/sbin:/bin",
                            hostname_env, "HOME=/root");
    json_t *caps = strings(capabilities, ST_ARRAY_SIZE(capabilities));
    json_t *process =
        json_pack("{s:b, s:{s:i, s:i}, s:o, s:o, s:s, s:{s:O, s:O, s:O}, s:b}", "terminal", 0,
                  "user", "uid", 0, "gid", 0, "args", args, "env", env, "cwd", "/", "capabilities",
                  "bounding", caps, "effective", caps, "permitted", caps, "noNewPrivileges", 1);
    json_decref(caps);

    json_t *ns = json_array();
    for (size_t i = 0; i < ST_ARRAY_SIZE(namespaces); i++) {
        json_t *n = json_pack("{s:s}", "type", namespaces[i]);
        if (p->netns && strcmp(namespaces[i], "network") == 0)
            json_object_set_new(n, "path", json_string(p->netns));
        json_array_append_new(ns, n);
    }
    json_t *linux_ = json_pack("{s:o, s:o}", "namespaces", ns, "resources", resources(p->limits));
    if (p->layout == ST_CGROUP_V2)
        json_object_set_new(linux_, "cgroupsPath", json_sprintf("/stratos/%s", p->id));
    json_object_set_new(linux_, "maskedPaths", strings(masked_paths, ST_ARRAY_SIZE(masked_paths)));
    json_object_set_new(linux_, "readonlyPaths",
                        strings(readonly_paths, ST_ARRAY_SIZE(readonly_paths)));
    if (seccomp)
        json_object_set_new(linux_, "seccomp", seccomp);

    json_t *config =
        json_pack("{s:s, s:o, s:{s:s, s:b}, s:s, s:o, s:{s:s, s:s}, s:o}", "ociVersion", "1.0.2",
                  "process", process, "root", "path", "rootfs", "readonly", 0, "hostname",
                  p->hostname, "mounts", mounts(p->layout), "annotations", "org.stratos.server.id",
                  p->id, "org.stratos.server.name", p->name ? p->name : "", "linux", linux_);
    if (!config)
        return st_err_set(err, -EINVAL, "building config.json: invalid value");
    if (bpf)
        json_object_set_new(json_object_get(config, "annotations"), "run.oci.seccomp_bpf_data",
                            json_string(bpf->base64));
    *ret = config;
    return 0;
}

char *st_oci_hostname(const char *name, const char *id)
{
    size_t len = name ? strlen(name) : 0;
    char *out = st_xcalloc(1, len + 1);
    size_t n = 0;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)name[i];
        if (c == ' ' || c == '_')
            out[n++] = '-';
        else if (isascii(c) && (isalnum(c) || c == '.' || c == '-'))
            out[n++] = (char)tolower(c);
    }
    out[n] = '\0';
    if (n > 63)
        out[n = 63] = '\0';
    size_t start = 0;
    while (out[start] == '-' || out[start] == '.')
        start++;
    while (n > start && (out[n - 1] == '-' || out[n - 1] == '.'))
        out[--n] = '\0';
    if (n == start) {
        free(out);
        return st_sprintf("server-%.8s", id ? id : "");
    }
    memmove(out, out + start, n - start + 1);
    return out;
}

int st_oci_split_command(const char *cmdline, char ***ret_argv, struct st_err **err)
{
    size_t len = strlen(cmdline);
    char **argv = st_new0(char *, ARGV_MAX + 1);
    size_t argc = 0;
    st_autofree char *word = st_xcalloc(1, len + 1);
    size_t wl = 0;
    bool in_word = false;
    int r = 0;
    for (size_t i = 0; i < len && r == 0; i++) {
        char c = cmdline[i];
        if (c == ' ' || c == '\t' || c == '\n') {
            if (in_word) {
                if (argc == ARGV_MAX) {
                    r = st_err_set(err, -EINVAL, "command line has more than %d words", ARGV_MAX);
                    break;
                }
                argv[argc++] = st_strndup(word, wl);
                wl = 0;
                in_word = false;
            }
            continue;
        }
        in_word = true;
        if (c == '\\') {
            if (i + 1 < len && cmdline[i + 1] == '\n')
                i++; /* line continuation */
            else if (i + 1 < len)
                word[wl++] = cmdline[++i];
            else
                r = st_err_set(err, -EINVAL, "command line ends with a lone backslash");
        } else if (c == '\'') {
            const char *end = strchr(cmdline + i + 1, '\'');
            if (!end) {
                r = st_err_set(err, -EINVAL,
                               "unterminated ' quote at offset %zu of the command "
                               "line",
                               i);
                break;
            }
            size_t n = (size_t)(end - (cmdline + i + 1));
            memcpy(word + wl, cmdline + i + 1, n);
            wl += n;
            i += n + 1;
        } else if (c == '"') {
            size_t j = i + 1;
            for (; j < len && cmdline[j] != '"'; j++) {
                if (cmdline[j] == '\\' && j + 1 < len && strchr("\"\\$`\n", cmdline[j + 1])) {
                    if (cmdline[j + 1] != '\n')
                        word[wl++] = cmdline[j + 1];
                    j++;
                } else {
                    word[wl++] = cmdline[j];
                }
            }
            if (j >= len) {
                r = st_err_set(err, -EINVAL,
                               "unterminated \" quote at offset %zu of the command "
                               "line",
                               i);
                break;
            }
            i = j;
        } else {
            word[wl++] = c;
        }
    }
    if (r == 0 && in_word) {
        if (argc == ARGV_MAX)
            r = st_err_set(err, -EINVAL, "command line has more than %d words", ARGV_MAX);
        else
            argv[argc++] = st_strndup(word, wl);
    }
    if (r == 0 && argc == 0)
        r = st_err_set(err, -EINVAL, "command line is empty");
    if (r < 0) {
        st_cgroup_strv_free(argv);
        return r;
    }
    *ret_argv = argv;
    return 0;
}
