/* Host cgroup layout detection and instance cgroups; see cgroup.h for the
 * approach and why. */
#include "cgroup.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "lib/cleanup.h"
#include "lib/files.h"
#include "lib/json.h"

#define PROC_TEXT_MAX (1024 * 1024)
#define STRATOS_DIR   "stratos"

const struct st_cgroup_device st_cgroup_default_devices[] = {
    {'c', 1, 3, "rwm"},    /* /dev/null */
    {'c', 1, 5, "rwm"},    /* /dev/zero */
    {'c', 1, 7, "rwm"},    /* /dev/full */
    {'c', 1, 8, "rwm"},    /* /dev/random */
    {'c', 1, 9, "rwm"},    /* /dev/urandom */
    {'c', 5, 0, "rwm"},    /* /dev/tty */
    {'c', 5, 1, "rwm"},    /* /dev/console */
    {'c', 5, 2, "rwm"},    /* /dev/ptmx */
    {'c', 136, -1, "rwm"}, /* /dev/pts/N */
};
const size_t st_cgroup_n_default_devices = ST_ARRAY_SIZE(st_cgroup_default_devices);

/* The controllers an instance gets on v1; the first three carry limits. */
static const char *const v1_controllers[] = {"cpu", "memory", "pids", "cpuacct", "devices"};
#define V1_REQUIRED 3

const char *st_cgroup_layout_name(enum st_cgroup_layout layout)
{
    switch (layout) {
    case ST_CGROUP_V1:
        return "v1";
    case ST_CGROUP_HYBRID:
        return "hybrid";
    case ST_CGROUP_V2:
        return "v2";
    default:
        return "none";
    }
}

void st_cgroup_host_free(struct st_cgroup_host *host)
{
    if (!host)
        return;
    for (size_t i = 0; i < host->n_hier; i++) {
        free(host->hier[i].controllers);
        free(host->hier[i].mount);
        free(host->hier[i].own);
    }
    free(host->unified);
    free(host->unified_own);
    free(host);
}
ST_DEFINE_AUTOPTR(st_cgroup_host, st_cgroup_host_free)

/* mountinfo escapes space, tab, newline and backslash as \ooo. */
static char *unescape_octal(const char *s)
{
    char *out = st_xcalloc(1, strlen(s) + 1);
    char *o = out;
    while (*s) {
        if (s[0] == '\\' && s[1] >= '0' && s[1] <= '7' && s[2] >= '0' && s[2] <= '7' &&
            s[3] >= '0' && s[3] <= '7') {
            *o++ = (char)(((s[1] - '0') << 6) | ((s[2] - '0') << 3) | (s[3] - '0'));
            s += 4;
        } else {
            *o++ = *s++;
        }
    }
    return out;
}

/* True if the comma lists a and b hold the same names, in any order. */
static bool same_set(const char *a, const char *b)
{
    st_autofree char *ca = st_strdup(a);
    size_t na = 0, nb = 0;
    char *save = NULL;
    for (char *t = strtok_r(ca, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
        na++;
        size_t tl = strlen(t);
        bool found = false;
        for (const char *p = b; *p;) {
            const char *e = strchrnul(p, ',');
            if ((size_t)(e - p) == tl && strncmp(p, t, tl) == 0)
                found = true;
            p = *e ? e + 1 : e;
        }
        if (!found)
            return false;
    }
    for (const char *p = b; *p;) {
        const char *e = strchrnul(p, ',');
        if (e > p)
            nb++;
        p = *e ? e + 1 : e;
    }
    return na == nb;
}

static bool list_has(const char *list, const char *name)
{
    size_t nl = strlen(name);
    for (const char *p = list; *p;) {
        const char *e = strchrnul(p, ',');
        if ((size_t)(e - p) == nl && strncmp(p, name, nl) == 0)
            return true;
        p = *e ? e + 1 : e;
    }
    return false;
}

/* Enabled controller names from /proc/cgroups, as a comma list. */
static char *enabled_controllers(const char *proc_cgroups)
{
    st_autofree char *copy = st_strdup(proc_cgroups);
    char *out = st_strdup("");
    char *save = NULL;
    for (char *line = strtok_r(copy, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        if (line[0] == '#')
            continue;
        char name[64];
        unsigned hier, num, enabled;
        if (sscanf(line, "%63s %u %u %u", name, &hier, &num, &enabled) != 4 || !enabled)
            continue;
        char *next = st_sprintf("%s%s%s", out, out[0] ? "," : "", name);
        free(out);
        out = next;
    }
    return out;
}

/* The agent's path in the hierarchy whose controller list is ctrls ("" for
 * the cgroup2 line "0::/path"), or NULL. */
static char *own_path(const char *self_cgroup, const char *ctrls)
{
    st_autofree char *copy = st_strdup(self_cgroup);
    char *save = NULL;
    for (char *line = strtok_r(copy, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        char *c1 = strchr(line, ':');
        char *c2 = c1 ? strchr(c1 + 1, ':') : NULL;
        if (!c2)
            continue;
        *c2 = '\0';
        const char *list = c1 + 1;
        if ((!ctrls[0] && !list[0]) || (ctrls[0] && list[0] && same_set(list, ctrls)))
            return st_strdup(c2 + 1);
    }
    return NULL;
}

/* own relative to the mount's root: "/" and "" become "". */
static char *relative_own(const char *own, const char *root)
{
    if (!own)
        return st_strdup("");
    size_t rl = strlen(root);
    if (strcmp(root, "/") != 0 && strncmp(own, root, rl) == 0 &&
        (own[rl] == '\0' || own[rl] == '/'))
        own += rl;
    if (strcmp(own, "/") == 0)
        own = "";
    return st_strdup(own);
}

int st_cgroup_host_parse(const char *mountinfo, const char *self_cgroup, const char *proc_cgroups,
                         int (*read_controllers)(const char *mount, char **ret, void *data),
                         void *data, struct st_cgroup_host **ret, struct st_err **err)
{
    st_autoptr(st_cgroup_host) host = st_new0(struct st_cgroup_host, 1);
    st_autofree char *enabled = enabled_controllers(proc_cgroups);
    st_autofree char *copy = st_strdup(mountinfo);
    bool unified_at_root = false;
    char *save = NULL;
    for (char *line = strtok_r(copy, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        /* id parent maj:min root mountpoint opts [optional...] - fstype source superopts */
        char *sep = strstr(line, " - ");
        if (!sep)
            continue;
        *sep = '\0';
        char fstype[32], source[256], super[1024];
        if (sscanf(sep + 3, "%31s %255s %1023s", fstype, source, super) != 3)
            continue;
        bool v2 = strcmp(fstype, "cgroup2") == 0;
        if (!v2 && strcmp(fstype, "cgroup") != 0)
            continue;
        char root[1024], point[1024];
        if (sscanf(line, "%*s %*s %*s %1023s %1023s", root, point) != 2)
            continue;
        st_autofree char *mnt = unescape_octal(point);
        st_autofree char *mroot = unescape_octal(root);
        if (v2) {
            if (host->unified)
                continue;
            host->unified = st_steal(&mnt);
            st_autofree char *own = own_path(self_cgroup, "");
            host->unified_own = relative_own(own, mroot);
            unified_at_root = strcmp(host->unified, "/sys/fs/cgroup") == 0;
            continue;
        }
        /* The controllers of a v1 hierarchy are the mount options that
         * /proc/cgroups names; "name=systemd" and friends carry none. */
        st_autofree char *ctrls = st_strdup("");
        char *s2 = NULL;
        for (char *o = strtok_r(super, ",", &s2); o; o = strtok_r(NULL, ",", &s2)) {
            if (!list_has(enabled, o))
                continue;
            char *next = st_sprintf("%s%s%s", ctrls, ctrls[0] ? "," : "", o);
            free(ctrls);
            ctrls = next;
        }
        if (!ctrls[0])
            continue;
        bool dup = false;
        for (size_t i = 0; i < host->n_hier; i++)
            dup = dup || same_set(host->hier[i].controllers, ctrls);
        if (dup || host->n_hier == ST_CGROUP_HIER_MAX)
            continue;
        struct st_cgroup_hier *h = &host->hier[host->n_hier++];
        st_autofree char *own = own_path(self_cgroup, ctrls);
        h->own = relative_own(own, mroot);
        h->controllers = st_steal(&ctrls);
        h->mount = st_steal(&mnt);
    }

    if (host->unified && unified_at_root) {
        host->layout = ST_CGROUP_V2;
    } else if (host->n_hier > 0) {
        host->layout = ST_CGROUP_V1;
        if (host->unified) {
            st_autofree char *ctrls = NULL;
            int r = read_controllers(host->unified, &ctrls, data);
            if (r < 0)
                return st_err_set(err, r, "reading %s/cgroup.controllers: %s", host->unified,
                                  strerror(-r));
            for (char *p = ctrls; *p; p++)
                if (*p != ' ' && *p != '\n') {
                    host->layout = ST_CGROUP_HYBRID;
                    break;
                }
        }
    } else {
        return st_err_set(err, -EOPNOTSUPP, "no cgroup hierarchy is mounted");
    }
    *ret = st_steal(&host);
    return 0;
}

static int read_host_controllers(const char *mount, char **ret, void *data)
{
    (void)data;
    st_autofree char *path = st_sprintf("%s/cgroup.controllers", mount);
    st_autoptr(st_err) e = NULL;
    int r = st_read_file(path, 64 * 1024, ret, NULL, &e);
    return r;
}

static pthread_mutex_t host_lock = PTHREAD_MUTEX_INITIALIZER;
static struct st_cgroup_host *host_cached;

int st_cgroup_host_get(const struct st_cgroup_host **ret, struct st_err **err)
{
    pthread_mutex_lock(&host_lock);
    int r = 0;
    if (!host_cached) {
        st_autofree char *mi = NULL, *self = NULL, *pc = NULL;
        if ((r = st_read_file("/proc/self/mountinfo", PROC_TEXT_MAX, &mi, NULL, err)) < 0 ||
            (r = st_read_file("/proc/self/cgroup", PROC_TEXT_MAX, &self, NULL, err)) < 0 ||
            (r = st_read_file("/proc/cgroups", PROC_TEXT_MAX, &pc, NULL, err)) < 0) {
            pthread_mutex_unlock(&host_lock);
            return st_err_prefix(err, r, "detecting the cgroup layout");
        }
        r = st_cgroup_host_parse(mi, self, pc, read_host_controllers, NULL, &host_cached, err);
    }
    pthread_mutex_unlock(&host_lock);
    if (r < 0)
        return st_err_prefix(err, r, "detecting the cgroup layout");
    *ret = host_cached;
    return 0;
}

static const struct st_cgroup_hier *find_hier(const struct st_cgroup_host *host, const char *ctrl)
{
    for (size_t i = 0; i < host->n_hier; i++)
        if (list_has(host->hier[i].controllers, ctrl))
            return &host->hier[i];
    return NULL;
}

int st_cgroup_instance_dirs(const struct st_cgroup_host *host, const char *id, json_t **ret,
                            struct st_err **err)
{
    if (!st_path_component_valid(id))
        return st_err_set(err, -EINVAL, "invalid instance id '%s'", id);
    st_autoptr(json_t) dirs = json_object();
    if (host->layout == ST_CGROUP_V2) {
        /* crun's cgroupfs manager, cgroupsPath "/stratos/<id>". */
        json_object_set_new(dirs, "unified",
                            json_sprintf("%s/" STRATOS_DIR "/%s", host->unified, id));
    } else {
        for (size_t i = 0; i < ST_ARRAY_SIZE(v1_controllers); i++) {
            const struct st_cgroup_hier *h = find_hier(host, v1_controllers[i]);
            if (!h) {
                if (i < V1_REQUIRED)
                    return st_err_set(err, -EOPNOTSUPP,
                                      "the %s cgroup controller is not mounted: its limits "
                                      "could not be enforced",
                                      v1_controllers[i]);
                continue;
            }
            json_object_set_new(dirs, v1_controllers[i],
                                json_sprintf("%s%s/" STRATOS_DIR "/%s", h->mount, h->own, id));
        }
    }
    *ret = st_steal(&dirs);
    return 0;
}

static int write_value(const char *dir, const char *file, const char *value, struct st_err **err)
{
    st_autofree char *path = st_sprintf("%s/%s", dir, file);
    st_autoclose int fd = open(path, O_WRONLY | O_CLOEXEC);
    if (fd < 0)
        return st_err_errno(err, "opening %s", path);
    size_t len = strlen(value);
    if (write(fd, value, len) != (ssize_t)len)
        return st_err_errno(err, "writing '%s' to %s", value, path);
    return 0;
}

static int write_int(const char *dir, const char *file, int64_t v, struct st_err **err)
{
    char buf[32];
    snprintf(buf, sizeof(buf), "%" PRId64, v);
    return write_value(dir, file, buf, err);
}

static bool file_exists(const char *dir, const char *file)
{
    st_autofree char *path = st_sprintf("%s/%s", dir, file);
    return access(path, F_OK) == 0;
}

static int apply_cpu(const char *dir, const struct st_cgroup_limits *l, struct st_err **err)
{
    int r;
    if ((r = write_int(dir, "cpu.shares", (int64_t)l->cpu_shares, err)) < 0 ||
        (r = write_int(dir, "cpu.cfs_period_us", (int64_t)l->cpu_period_us, err)) < 0 ||
        (r = write_int(dir, "cpu.cfs_quota_us", l->cpu_quota_us > 0 ? l->cpu_quota_us : -1, err)) <
            0)
        return r;
    return 0;
}

static int apply_memory(const char *dir, const struct st_cgroup_limits *l, struct st_err **err)
{
    /* memory+swap must never be below memory: lift it first, then set both
     * to the limit, so swap gives no way around the hard limit. */
    bool memsw = file_exists(dir, "memory.memsw.limit_in_bytes");
    int r;
    if (memsw && (r = write_int(dir, "memory.memsw.limit_in_bytes", -1, err)) < 0)
        return r;
    if ((r = write_int(dir, "memory.limit_in_bytes", l->memory_limit > 0 ? l->memory_limit : -1,
                       err)) < 0)
        return r;
    if (memsw && l->memory_limit > 0 &&
        (r = write_int(dir, "memory.memsw.limit_in_bytes", l->memory_limit, err)) < 0)
        return r;
    return write_int(dir, "memory.soft_limit_in_bytes",
                     l->memory_reservation > 0 ? l->memory_reservation : -1, err);
}

static int apply_pids(const char *dir, const struct st_cgroup_limits *l, struct st_err **err)
{
    if (l->pids_limit > 0)
        return write_int(dir, "pids.max", l->pids_limit, err);
    return write_value(dir, "pids.max", "max", err);
}

static int apply_devices(const char *dir, struct st_err **err)
{
    int r = write_value(dir, "devices.deny", "a", err);
    for (size_t i = 0; r == 0 && i < st_cgroup_n_default_devices; i++) {
        const struct st_cgroup_device *d = &st_cgroup_default_devices[i];
        char rule[64], maj[16], min[16];
        snprintf(maj, sizeof(maj), d->major < 0 ? "*" : "%d", d->major);
        snprintf(min, sizeof(min), d->minor < 0 ? "*" : "%d", d->minor);
        snprintf(rule, sizeof(rule), "%c %s:%s %s", d->type, maj, min, d->access);
        r = write_value(dir, "devices.allow", rule, err);
    }
    return r;
}

int st_cgroup_instance_apply(json_t *dirs, const struct st_cgroup_limits *limits,
                             struct st_err **err)
{
    if (json_object_get(dirs, "unified"))
        return 0; /* v2: crun applies linux.resources */
    const char *ctrl;
    json_t *v;
    json_object_foreach(dirs, ctrl, v)
    {
        const char *dir = json_string_value(v);
        if (!dir)
            return st_err_set(err, -EINVAL, "cgroup directory of %s is not a string", ctrl);
        int r = st_mkdir_p(dir, 0755, err);
        if (r < 0)
            return st_err_prefix(err, r, "creating the %s cgroup", ctrl);
        if (strcmp(ctrl, "cpu") == 0)
            r = apply_cpu(dir, limits, err);
        else if (strcmp(ctrl, "memory") == 0)
            r = apply_memory(dir, limits, err);
        else if (strcmp(ctrl, "pids") == 0)
            r = apply_pids(dir, limits, err);
        else if (strcmp(ctrl, "devices") == 0)
            r = apply_devices(dir, err);
        if (r < 0)
            return st_err_prefix(err, r, "setting the %s cgroup limits", ctrl);
    }
    return 0;
}

/* Distinct directories (co-mounted controllers share one). */
static size_t distinct_dirs(json_t *dirs, const char **out, size_t max)
{
    size_t n = 0;
    const char *ctrl;
    json_t *v;
    json_object_foreach(dirs, ctrl, v)
    {
        const char *d = json_string_value(v);
        bool seen = !d;
        for (size_t i = 0; i < n && !seen; i++)
            seen = strcmp(out[i], d) == 0;
        if (!seen && n < max)
            out[n++] = d;
    }
    return n;
}

char **st_cgroup_instance_join_files(json_t *dirs)
{
    const char *d[ST_CGROUP_HIER_MAX];
    size_t n = distinct_dirs(dirs, d, ST_ARRAY_SIZE(d));
    char **out = st_new0(char *, n + 1);
    for (size_t i = 0; i < n; i++)
        out[i] = st_sprintf("%s/tasks", d[i]);
    return out;
}

void st_cgroup_strv_free(char **strv)
{
    if (!strv)
        return;
    for (char **p = strv; *p; p++)
        free(*p);
    free(strv);
}

int st_cgroup_instance_remove(json_t *dirs, struct st_err **err)
{
    const char *d[ST_CGROUP_HIER_MAX];
    size_t n = distinct_dirs(dirs, d, ST_ARRAY_SIZE(d));
    for (size_t i = 0; i < n; i++) {
        /* The last tasks of a killed container may take a moment to leave. */
        for (int attempt = 0;; attempt++) {
            if (rmdir(d[i]) == 0 || errno == ENOENT)
                break;
            if (errno != EBUSY || attempt >= 200)
                return st_err_errno(err, "removing cgroup %s", d[i]);
            nanosleep(&(struct timespec){.tv_nsec = 10 * 1000 * 1000}, NULL);
        }
        /* The "stratos" parent goes with its last instance; another agent's
         * instance there keeps it (ENOTEMPTY/EBUSY are fine). */
        st_autofree char *parent = st_strdup(d[i]);
        char *slash = strrchr(parent, '/');
        if (slash) {
            *slash = '\0';
            const char *base = strrchr(parent, '/');
            if (base && strcmp(base + 1, STRATOS_DIR) == 0)
                (void)rmdir(parent);
        }
    }
    return 0;
}

/* The number after "key " in a flat keyed file (cpu.stat, memory.events). */
static int read_keyed(const char *dir, const char *file, const char *key, uint64_t *ret)
{
    st_autofree char *path = st_sprintf("%s/%s", dir, file);
    st_autofree char *text = NULL;
    st_autoptr(st_err) e = NULL;
    if (st_read_file(path, 64 * 1024, &text, NULL, &e) < 0)
        return -ENOENT;
    size_t kl = strlen(key);
    for (char *line = text; line && *line;) {
        if (strncmp(line, key, kl) == 0 && line[kl] == ' ') {
            *ret = strtoull(line + kl + 1, NULL, 10);
            return 0;
        }
        line = strchr(line, '\n');
        if (line)
            line++;
    }
    return -ENOENT;
}

static int read_u64(const char *dir, const char *file, uint64_t *ret)
{
    st_autofree char *path = st_sprintf("%s/%s", dir, file);
    st_autofree char *text = NULL;
    st_autoptr(st_err) e = NULL;
    if (st_read_file(path, 4096, &text, NULL, &e) < 0)
        return -ENOENT;
    *ret = strtoull(text, NULL, 10);
    return 0;
}

int st_cgroup_instance_usage(json_t *dirs, struct st_cgroup_usage *ret, struct st_err **err)
{
    (void)err;
    memset(ret, 0, sizeof(*ret));
    const char *u = json_string_value(json_object_get(dirs, "unified"));
    if (u) {
        uint64_t usec = 0;
        if (read_keyed(u, "cpu.stat", "usage_usec", &usec) == 0)
            ret->cpu_usage_ns = usec * 1000;
        read_u64(u, "memory.current", &ret->memory_bytes);
        read_u64(u, "pids.current", &ret->pids);
        read_keyed(u, "memory.events", "oom_kill", &ret->oom_kills);
        return 0;
    }
    const char *d;
    if ((d = json_string_value(json_object_get(dirs, "cpuacct"))))
        read_u64(d, "cpuacct.usage", &ret->cpu_usage_ns);
    if ((d = json_string_value(json_object_get(dirs, "memory")))) {
        read_u64(d, "memory.usage_in_bytes", &ret->memory_bytes);
        read_keyed(d, "memory.oom_control", "oom_kill", &ret->oom_kills);
    }
    if ((d = json_string_value(json_object_get(dirs, "pids"))))
        read_u64(d, "pids.current", &ret->pids);
    return 0;
}
