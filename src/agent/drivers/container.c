/* The container driver: one crun container per server, its root an overlay
 * over the node's unpacked image, its limits in cgroups.
 *
 * On disk, under the agent's data dir:
 *   images/<image id>/rootfs        the unpacked image, shared, never written
 *   instances/<id>/bundle/config.json, bundle/rootfs (the overlay mount)
 *   instances/<id>/upper, work      the instance's own layer
 *   instances/<id>/console.log      stdout and stderr of the container (kept
 *                                   bounded: st_container_console_trim)
 *   instances/<id>/image            the cached image it is made of (rootfs.h)
 *   instances/<id>/container.pid    written by crun (the container's init)
 *   instances/<id>/cgroups.json     where its cgroups are (cgroup.h)
 *   instances/<id>/exit-status      how it ended, once the agent knows
 *   instances/<id>/crun.log         crun's own error messages
 *   crun/                           crun's state (--root), per agent
 * Nothing is kept in memory: state comes from crun state, the pid file and
 * the cgroups, so an agent restarted while containers run re-adopts them.
 *
 * Lifecycle: create prepares everything (image, overlay, files written into
 * the root once per instance: the public key, user data, /etc/hostname;
 * config.json; cgroups). start regenerates config.json and the cgroup limits
 * (so a changed spec applies at the next start), removes a stopped crun
 * container of the same id, and runs `crun run --detach` with stdout and
 * stderr on the console log; on v1 and hybrid hosts crun's cgroup manager is
 * disabled and the crun process is placed in the instance's cgroups before
 * exec (cgroup.h). stop sends SIGTERM, then SIGKILL after the grace period,
 * and reaps. destroy kills and deletes the crun container, unmounts the
 * overlay, removes the cgroups and the instance directory: nothing is left.
 * Every operation is idempotent; the agent serializes operations on one
 * instance. */
#include "container.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/falloc.h>
#include <openssl/evp.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/wait.h>
#include <unistd.h>

#include "agent/host.h"
#include "lib/cleanup.h"
#include "lib/files.h"
#include "lib/json.h"
#include "lib/log.h"
#include "oci.h"
#include "proc.h"
#include "rootfs.h"

#define CRUN_TIMEOUT_MS   60000
#define CRUN_STATE_MAX    (64 * 1024)
#define KILL_WAIT_MS      10000
#define CPU_PERIOD_US     100000
#define CPU_QUOTA_MIN_US  1000
#define CPU_PERIOD_MIN_US 1000
#define CPU_PERIOD_MAX_US 1000000
#define USER_DATA_MAX     (64 * 1024)
#define USER_DATA_DIR     "var/lib/cloud/instance"
#define USER_DATA_SCRIPT  "/var/lib/cloud/instance/scripts/user-data"
#define USER_DATA_SEM_DIR "/var/lib/cloud/instance/sem"
#define USER_DATA_SEM     USER_DATA_SEM_DIR "/user-data"

/* Runs the user-data script once per instance (the semaphore lives in the
 * instance's own layer, as cloud-init's does), then becomes the command. */
static const char user_data_wrapper[] =
    "if [ ! -e " USER_DATA_SEM " ]; then " USER_DATA_SCRIPT "; "
    "echo \"stratos-init: user-data script exited with status $?\"; "
    "mkdir -p " USER_DATA_SEM_DIR " && : > " USER_DATA_SEM "; fi; exec \"$@\"";

static const char idle_loop[] = "trap 'exit 0' TERM; while :; do sleep 3600 & wait $!; done";

struct paths {
    char *inst, *bundle, *rootfs, *upper, *work, *config, *console, *pidfile, *cgroups, *exitfile,
        *crunlog, *crunroot, *crundir, *images;
};

static void paths_clear(struct paths *p)
{
    char **all[] = {&p->inst,    &p->bundle,   &p->rootfs,  &p->upper,   &p->work,
                    &p->config,  &p->console,  &p->pidfile, &p->cgroups, &p->exitfile,
                    &p->crunlog, &p->crunroot, &p->crundir, &p->images};
    for (size_t i = 0; i < ST_ARRAY_SIZE(all); i++) {
        free(*all[i]);
        *all[i] = NULL;
    }
}

static bool id_valid(const char *id)
{
    if (!id || !id[0] || strlen(id) > 128 || id[0] == '.')
        return false;
    for (const char *p = id; *p; p++)
        if (!isalnum((unsigned char)*p) && *p != '-' && *p != '_' && *p != '.')
            return false;
    return true;
}

static int paths_get(struct st_driver_ctx *ctx, const char *id, struct paths *p,
                     struct st_err **err)
{
    if (!id_valid(id))
        return st_err_set(err, -EINVAL, "invalid instance id '%s'", id ? id : "");
    p->inst = st_sprintf("%s/instances/%s", ctx->data_dir, id);
    p->bundle = st_sprintf("%s/bundle", p->inst);
    p->rootfs = st_sprintf("%s/rootfs", p->bundle);
    p->upper = st_sprintf("%s/upper", p->inst);
    p->work = st_sprintf("%s/work", p->inst);
    p->config = st_sprintf("%s/config.json", p->bundle);
    p->console = st_sprintf("%s/console.log", p->inst);
    p->pidfile = st_sprintf("%s/container.pid", p->inst);
    p->cgroups = st_sprintf("%s/cgroups.json", p->inst);
    p->exitfile = st_sprintf("%s/exit-status", p->inst);
    p->crunlog = st_sprintf("file:%s/crun.log", p->inst);
    p->crunroot = st_sprintf("%s/crun", ctx->data_dir);
    p->crundir = st_sprintf("%s/%s", p->crunroot, id);
    p->images = st_sprintf("%s/images", ctx->data_dir);
    return 0;
}

static bool exists(const char *path)
{
    return access(path, F_OK) == 0;
}

/* Derived files (regenerated at every start): temp + rename, no fsync. */
static int write_derived(const char *path, const char *text, struct st_err **err)
{
    st_autofree char *tmp = st_sprintf("%s.tmp", path);
    st_autoclose int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0)
        return st_err_errno(err, "open %s", tmp);
    size_t len = strlen(text);
    if (write(fd, text, len) != (ssize_t)len)
        return st_err_errno(err, "write %s", tmp);
    if (rename(tmp, path) < 0)
        return st_err_errno(err, "rename %s", tmp);
    return 0;
}

/* The crun command line: global options first, then argv_tail. */
static void crun_argv(const struct paths *p, const char *crun, bool manage_cgroups,
                      const char *const *tail, const char **out, size_t max)
{
    size_t n = 0;
    out[n++] = crun;
    out[n++] = "--root";
    out[n++] = p->crunroot;
    out[n++] = "--log";
    out[n++] = p->crunlog;
    if (!manage_cgroups)
        out[n++] = "--cgroup-manager=disabled";
    for (; *tail && n + 1 < max; tail++)
        out[n++] = *tail;
    out[n] = NULL;
}

static int crun_path(char **ret, struct st_err **err)
{
    int r = st_proc_find_exec("crun", ret, err);
    return r < 0 ? st_err_prefix(err, r, "the container runtime (Debian package crun)") : r;
}

static int crun_run(const struct paths *p, const char *const *tail, char **ret_out,
                    struct st_err **err)
{
    st_autofree char *crun = NULL;
    int r = crun_path(&crun, err);
    if (r < 0)
        return r;
    const struct st_cgroup_host *host;
    if ((r = st_cgroup_host_get(&host, err)) < 0)
        return r;
    const char *argv[24];
    crun_argv(p, crun, host->layout == ST_CGROUP_V2, tail, argv, ST_ARRAY_SIZE(argv));
    return st_proc_run(argv, NULL, CRUN_TIMEOUT_MS, CRUN_STATE_MAX, ret_out, err);
}

int st_container_limits(json_t *resources, unsigned node_mhz, struct st_cgroup_limits *ret,
                        struct st_err **err)
{
    int64_t shares = 0, limit_mhz = 0, quota = 0, period = 0, mem_res = 0, mem_lim = 0, pids = 0;
    struct {
        const char *key;
        int64_t *v;
    } fields[] = {{"cpu_shares", &shares},
                  {"cpu_limit_mhz", &limit_mhz},
                  {"cpu_quota_us", &quota},
                  {"cpu_period_us", &period},
                  {"memory_reservation_mb", &mem_res},
                  {"memory_limit_mb", &mem_lim},
                  {"pids_limit", &pids}};
    for (size_t i = 0; resources && i < ST_ARRAY_SIZE(fields); i++) {
        int r = st_json_get_int(resources, fields[i].key, false, fields[i].v, err);
        if (r < 0 && r != -ENOENT)
            return st_err_prefix(err, r, "spec.resources");
        if (*fields[i].v < 0)
            return st_err_set(err, -EINVAL, "spec.resources.%s must not be negative",
                              fields[i].key);
    }
    *ret = (struct st_cgroup_limits){
        .cpu_shares = shares > 0 ? (uint64_t)shares : 1024,
        .cpu_quota_us = -1,
        .cpu_period_us = CPU_PERIOD_US,
        .memory_limit = mem_lim > 0 ? mem_lim * 1024 * 1024 : -1,
        .memory_reservation = mem_res > 0 ? mem_res * 1024 * 1024 : -1,
        .pids_limit = pids > 0 ? pids : -1,
    };
    /* The kernel's range for cpu.shares. */
    if (ret->cpu_shares < 2)
        ret->cpu_shares = 2;
    if (ret->cpu_shares > 262144)
        ret->cpu_shares = 262144;
    /* The flavor's quota:cpu_quota/cpu_period (Nova's extra specs), for the
     * whole instance. The kernel takes periods of 1 ms to 1 s: a longer one
     * is scaled down with its quota, keeping the share of a core. */
    if (quota > 0) {
        if (period <= 0)
            period = CPU_PERIOD_US;
        if (period > CPU_PERIOD_MAX_US) {
            quota = quota * CPU_PERIOD_MAX_US / period;
            period = CPU_PERIOD_MAX_US;
        }
        ret->cpu_period_us = (uint64_t)(period < CPU_PERIOD_MIN_US ? CPU_PERIOD_MIN_US : period);
        ret->cpu_quota_us = quota < CPU_QUOTA_MIN_US ? CPU_QUOTA_MIN_US : quota;
    }
    if (limit_mhz > 0) {
        if (node_mhz == 0)
            return st_err_set(err, -EINVAL, "cpu limit of %lld MHz but the node's clock is unknown",
                              (long long)limit_mhz);
        int64_t q = limit_mhz * (int64_t)ret->cpu_period_us / node_mhz;
        if (q < CPU_QUOTA_MIN_US)
            q = CPU_QUOTA_MIN_US;
        if (ret->cpu_quota_us < 0 || q < ret->cpu_quota_us) /* both given: the stricter */
            ret->cpu_quota_us = q;
    }
    if (ret->memory_limit > 0 && ret->memory_reservation > ret->memory_limit)
        ret->memory_reservation = ret->memory_limit;
    return 0;
}

static char **strv_new(const char *const *v)
{
    size_t n = 0;
    while (v[n])
        n++;
    char **out = st_new0(char *, n + 1);
    for (size_t i = 0; i < n; i++)
        out[i] = st_strdup(v[i]);
    return out;
}

int st_container_command(json_t *image_properties, const char *rootfs, bool has_script,
                         char ***ret_argv, struct st_err **err)
{
    char **main_argv = NULL;
    const char *cmdline = json_string_value(json_object_get(image_properties, "os_command_line"));
    if (cmdline && cmdline[0]) {
        int r = st_oci_split_command(cmdline, &main_argv, err);
        if (r < 0)
            return st_err_prefix(err, r, "image property os_command_line");
    } else if (st_rootfs_has_exec(rootfs, "/sbin/init")) {
        main_argv = strv_new((const char *const[]){"/sbin/init", NULL});
    } else if (st_rootfs_has_exec(rootfs, "/bin/sh")) {
        main_argv = strv_new((const char *const[]){"/bin/sh", "-c", idle_loop, NULL});
    } else {
        return st_err_set(err, -ENOEXEC,
                          "the image has no os_command_line property, no /sbin/init "
                          "and no /bin/sh: nothing to run");
    }
    if (!has_script) {
        *ret_argv = main_argv;
        return 0;
    }
    if (!st_rootfs_has_exec(rootfs, "/bin/sh")) {
        st_cgroup_strv_free(main_argv);
        return st_err_set(err, -ENOEXEC,
                          "user_data is a script, but the image has no /bin/sh to "
                          "run it before the command");
    }
    size_t n = 0;
    while (main_argv[n])
        n++;
    char **argv = st_new0(char *, n + 5);
    argv[0] = st_strdup("/bin/sh");
    argv[1] = st_strdup("-c");
    argv[2] = st_strdup(user_data_wrapper);
    argv[3] = st_strdup("stratos-init"); /* $0 */
    for (size_t i = 0; i < n; i++)
        argv[4 + i] = main_argv[i];
    free(main_argv);
    *ret_argv = argv;
    return 0;
}

/* spec.user_data, base64-decoded (Nova carries it encoded). */
static int user_data_decode(json_t *spec, char **ret, size_t *ret_len, struct st_err **err)
{
    *ret = NULL;
    *ret_len = 0;
    const char *b64 = json_string_value(json_object_get(spec, "user_data"));
    if (!b64 || !b64[0])
        return 0;
    size_t in_len = strlen(b64);
    if (in_len > USER_DATA_MAX * 4 / 3 + 4096)
        return st_err_set(err, -EFBIG, "user_data is larger than %d bytes", USER_DATA_MAX);
    unsigned char *out = st_xcalloc(1, in_len + 1);
    EVP_ENCODE_CTX *ectx = EVP_ENCODE_CTX_new();
    if (!ectx)
        abort();
    int n1 = 0, n2 = 0;
    EVP_DecodeInit(ectx);
    int r1 = EVP_DecodeUpdate(ectx, out, &n1, (const unsigned char *)b64, (int)in_len);
    int r2 = r1 >= 0 ? EVP_DecodeFinal(ectx, out + n1, &n2) : -1;
    EVP_ENCODE_CTX_free(ectx);
    if (r1 < 0 || r2 < 0) {
        free(out);
        return st_err_set(err, -EINVAL, "user_data is not valid base64");
    }
    out[n1 + n2] = '\0';
    *ret = (char *)out;
    *ret_len = (size_t)(n1 + n2);
    return 0;
}

static bool user_data_is_script(json_t *spec)
{
    st_autofree char *ud = NULL;
    size_t len;
    st_autoptr(st_err) e = NULL;
    return user_data_decode(spec, &ud, &len, &e) == 0 && len >= 2 && ud[0] == '#' && ud[1] == '!';
}

/* The clock per core the node registered (agent/host.h reads it the same
 * way), read once: a quota must not drift with the current frequency. */
static unsigned node_mhz(struct st_driver_ctx *ctx)
{
    static unsigned cached;
    unsigned mhz = __atomic_load_n(&cached, __ATOMIC_RELAXED);
    if (mhz)
        return mhz;
    st_autoptr(json_t) cap = NULL;
    st_autoptr(st_err) e = NULL;
    if (st_host_capacity(ctx->data_dir, NULL, &cap, &e) < 0)
        return 0;
    mhz = (unsigned)json_integer_value(json_object_get(cap, "cpu_mhz"));
    __atomic_store_n(&cached, mhz, __ATOMIC_RELAXED);
    return mhz;
}

/* v1/hybrid: every directory is there (v2: crun creates it at run). */
static bool cgroup_dirs_exist(json_t *dirs)
{
    if (json_object_get(dirs, "unified"))
        return true;
    const char *ctrl;
    json_t *v;
    json_object_foreach(dirs, ctrl, v)
    {
        if (!exists(json_string_value(v)))
            return false;
    }
    return true;
}

/* config.json and the cgroups, from the server document: at create and at
 * every start (the rootfs must be mounted: the command depends on it). */
static int configure(struct st_driver_ctx *ctx, json_t *server, const struct paths *p,
                     struct st_err **err)
{
    const char *id = json_string_value(json_object_get(server, "id"));
    const char *name = json_string_value(json_object_get(server, "name"));
    json_t *spec = json_object_get(server, "spec");
    json_t *image = json_object_get(spec, "image");

    struct st_cgroup_limits limits;
    int r = st_container_limits(json_object_get(spec, "resources"), node_mhz(ctx), &limits, err);
    if (r < 0)
        return r;
    char **argv = NULL;
    r = st_container_command(json_object_get(image, "properties"), p->rootfs,
                             user_data_is_script(spec), &argv, err);
    if (r < 0)
        return r;
    const struct st_cgroup_host *host;
    if ((r = st_cgroup_host_get(&host, err)) < 0) {
        st_cgroup_strv_free(argv);
        return r;
    }
    st_autofree char *hostname = st_oci_hostname(name, id);
    struct st_oci_params params = {
        .id = id,
        .name = name,
        .hostname = hostname,
        .args = (const char *const *)argv,
        .limits = &limits,
        .layout = host->layout,
        .netns = json_string_value(json_object_get(server, "netns")),
        .flavor_specs = json_object_get(json_object_get(spec, "flavor"), "extra_specs"),
    };
    st_autoptr(json_t) config = NULL;
    r = st_oci_config_new(&params, &config, err);
    st_cgroup_strv_free(argv);
    if (r < 0)
        return r;
    st_autofree char *text = st_json_dumps_pretty(config);
    st_autoptr(json_t) dirs = NULL;
    if ((r = st_cgroup_instance_dirs(host, id, &dirs, err)) < 0)
        return r;
    /* Same config (it carries the limits) and cgroups in place: nothing to
     * do, which keeps create + start from writing everything twice. */
    st_autofree char *old = NULL;
    st_autoptr(st_err) oerr = NULL;
    if (st_read_file(p->config, 1 << 20, &old, NULL, &oerr) == 0 && strcmp(old, text) == 0 &&
        exists(p->cgroups) && cgroup_dirs_exist(dirs))
        return 0;
    if ((r = write_derived(p->config, text, err)) < 0)
        return r;
    st_autoptr(json_t) cg =
        json_pack("{s:s, s:O}", "layout", st_cgroup_layout_name(host->layout), "dirs", dirs);
    st_autofree char *cg_text = st_json_dumps_pretty(cg);
    if ((r = write_derived(p->cgroups, cg_text, err)) < 0)
        return r;
    return st_cgroup_instance_apply(dirs, &limits, err);
}

/* Files written into the instance's root once, at create. */
static int write_guest_files(json_t *server, const struct paths *p, struct st_err **err)
{
    const char *id = json_string_value(json_object_get(server, "id"));
    json_t *spec = json_object_get(server, "spec");
    st_autofree char *hostname =
        st_oci_hostname(json_string_value(json_object_get(server, "name")), id);
    st_autofree char *etc_hostname = st_sprintf("%s\n", hostname);
    int r = st_rootfs_write(p->rootfs, "etc/hostname", etc_hostname, strlen(etc_hostname), 0644,
                            0755, err);
    if (r < 0)
        return r;
    /* the subnet's DNS servers, which the agent adds beside "netns" (as
     * DHCP would hand them out) */
    json_t *dns = json_object_get(server, "dns_nameservers");
    if (json_array_size(dns) > 0) {
        st_autofree char *conf = st_strdup("");
        size_t i;
        json_t *ns;
        json_array_foreach(dns, i, ns)
        {
            const char *a = json_string_value(ns);
            if (!a || strspn(a, "0123456789.:abcdefABCDEF") != strlen(a))
                continue; /* an address only: it becomes a line of a file */
            char *next = st_sprintf("%snameserver %s\n", conf, a);
            free(conf);
            conf = next;
        }
        if (conf[0] && (r = st_rootfs_write(p->rootfs, "etc/resolv.conf", conf, strlen(conf), 0644,
                                            0755, err)) < 0)
            return st_err_prefix(err, r, "writing /etc/resolv.conf");
    }
    const char *key = json_string_value(json_object_get(spec, "public_key"));
    if (key && key[0]) {
        st_autofree char *line = st_sprintf("%s%s", key, key[strlen(key) - 1] == '\n' ? "" : "\n");
        if ((r = st_rootfs_write(p->rootfs, "root/.ssh/authorized_keys", line, strlen(line), 0600,
                                 0700, err)) < 0)
            return st_err_prefix(err, r, "installing the public key");
    }
    st_autofree char *ud = NULL;
    size_t ud_len;
    if ((r = user_data_decode(spec, &ud, &ud_len, err)) < 0)
        return r;
    if (ud) {
        if ((r = st_rootfs_write(p->rootfs, USER_DATA_DIR "/user-data.txt", ud, ud_len, 0600, 0700,
                                 err)) < 0)
            return st_err_prefix(err, r, "writing user_data");
        if (ud_len >= 2 && ud[0] == '#' && ud[1] == '!' &&
            (r = st_rootfs_write(p->rootfs, USER_DATA_SCRIPT, ud, ud_len, 0700, 0700, err)) < 0)
            return st_err_prefix(err, r, "writing user_data");
    }
    return 0;
}

static int ensure_root(struct st_driver_ctx *ctx, json_t *server, const struct paths *p,
                       struct st_err **err)
{
    if (st_rootfs_is_mounted(p->rootfs))
        return 0;
    json_t *image = json_object_get(json_object_get(server, "spec"), "image");
    const char *image_id = json_string_value(json_object_get(image, "id"));
    if (!image_id)
        return st_err_set(err, -EINVAL, "the server has no spec.image.id");
    if (!ctx->image_path)
        return st_err_set(err, -EINVAL, "the agent supplies no image files");
    st_autofree char *lower = NULL;
    int r;
    /* -EAGAIN: the node's image cache was pruned between the fetch and the
     * unpack; the image cache fetches the file again. */
    for (int attempt = 0;; attempt++) {
        const char *tarball;
        if ((r = ctx->image_path(ctx->agent, image_id, &tarball, err)) < 0)
            return st_err_prefix(err, r, "fetching image %s", image_id);
        r = st_rootfs_image_get(p->images, image_id, tarball, p->inst, &lower, err);
        if (r != -EAGAIN || attempt == 2)
            break;
        st_err_clear(err);
    }
    if (r < 0)
        return r;
    const char *dirs[] = {p->upper, p->work, p->rootfs};
    for (size_t i = 0; i < ST_ARRAY_SIZE(dirs); i++)
        if ((r = st_mkdir_p(dirs[i], 0700, err)) < 0)
            return r;
    return st_rootfs_overlay_mount(lower, p->upper, p->work, p->rootfs, err);
}

static int container_create(struct st_driver_ctx *ctx, json_t *server, struct st_err **err)
{
    const char *id = json_string_value(json_object_get(server, "id"));
    struct paths p = {0};
    int r = paths_get(ctx, id, &p, err);
    if (r == 0)
        r = st_mkdir_p(p.bundle, 0700, err);
    if (r == 0)
        r = ensure_root(ctx, server, &p, err);
    /* The guest files go in once: a key the user added later, or a
     * user-data semaphore, must survive a restart. */
    if (r == 0 && !exists(p.config))
        r = write_guest_files(server, &p, err);
    if (r == 0)
        r = configure(ctx, server, &p, err);
    paths_clear(&p);
    return r;
}

static int read_pid(const struct paths *p, pid_t *ret)
{
    st_autofree char *text = NULL;
    st_autoptr(st_err) e = NULL;
    *ret = 0;
    if (st_read_file(p->pidfile, 64, &text, NULL, &e) < 0)
        return -ENOENT;
    long v = strtol(text, NULL, 10);
    if (v <= 0)
        return -EINVAL;
    *ret = (pid_t)v;
    return 0;
}

/* Shell-style code for a wait status: exit code, or 128 + signal. */
static int status_code(int status)
{
    if (WIFEXITED(status))
        return WEXITSTATUS(status);
    if (WIFSIGNALED(status))
        return 128 + WTERMSIG(status);
    return -1;
}

/* Reaps the container's init if it is our zombie, keeping how it ended. */
static void collect_exit(const struct paths *p, pid_t pid)
{
    int status;
    if (pid <= 0 || st_proc_reap(pid, &status) != 1 || exists(p->exitfile))
        return;
    char buf[32];
    snprintf(buf, sizeof(buf), "%d\n", status_code(status));
    st_autoptr(st_err) e = NULL;
    write_derived(p->exitfile, buf, &e);
}

static int read_exit(const struct paths *p, int *ret)
{
    st_autofree char *text = NULL;
    st_autoptr(st_err) e = NULL;
    if (st_read_file(p->exitfile, 64, &text, NULL, &e) < 0)
        return -ENOENT;
    *ret = (int)strtol(text, NULL, 10);
    return 0;
}

/* crun's view: "running", "stopped", "created", "paused", or NULL when crun
 * has no such container. */
static int crun_status(const struct paths *p, const char *id, char **ret_status, pid_t *ret_pid,
                       struct st_err **err)
{
    *ret_status = NULL;
    *ret_pid = 0;
    if (!exists(p->crundir))
        return 0;
    st_autofree char *out = NULL;
    int r = crun_run(p, (const char *const[]){"state", id, NULL}, &out, err);
    if (r < 0) {
        if (!exists(p->crundir)) { /* deleted meanwhile */
            st_err_clear(err);
            return 0;
        }
        return r;
    }
    st_autoptr(json_t) state = NULL;
    if ((r = st_json_parse_object(out, strlen(out), &state, err)) < 0)
        return st_err_prefix(err, r, "crun state");
    const char *s = json_string_value(json_object_get(state, "status"));
    *ret_status = st_strdup(s ? s : "unknown");
    *ret_pid = (pid_t)json_integer_value(json_object_get(state, "pid"));
    return 0;
}

/* A dead process not reaped yet still answers kill(pid, 0), so crun calls
 * it running; an init adopted from a previous agent is reaped by the
 * machine's init, late. */
static bool is_zombie(pid_t pid)
{
    char path[64], buf[512];
    snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
    st_autoclose int fd = open(path, O_RDONLY | O_CLOEXEC);
    ssize_t n = fd >= 0 ? read(fd, buf, sizeof(buf) - 1) : -1;
    if (n <= 0)
        return false;
    buf[n] = '\0';
    const char *paren = strrchr(buf, ')'); /* comm may hold spaces and parens */
    return paren && paren[1] == ' ' && paren[2] == 'Z';
}

/* True when pid is a live process inside this instance's cgroups: the
 * kernel's answer, cheap, and proof against a recycled pid. */
static bool pid_in_instance(pid_t pid, const char *id)
{
    if (pid <= 0 || kill(pid, 0) < 0 || is_zombie(pid))
        return false;
    char path[64], buf[4096];
    snprintf(path, sizeof(path), "/proc/%d/cgroup", (int)pid);
    st_autoclose int fd = open(path, O_RDONLY | O_CLOEXEC);
    ssize_t n = fd >= 0 ? read(fd, buf, sizeof(buf) - 1) : -1;
    if (n <= 0)
        return false;
    buf[n] = '\0';
    char needle[128];
    snprintf(needle, sizeof(needle), "/stratos/%s\n", id);
    return strstr(buf, needle) != NULL;
}

static int container_state(struct st_driver_ctx *ctx, const char *id, struct st_instance_info *ret,
                           struct st_err **err)
{
    *ret = (struct st_instance_info){.state = ST_INSTANCE_ABSENT};
    struct paths p = {0};
    int r = paths_get(ctx, id, &p, err);
    if (r < 0)
        return r;
    if (!exists(p.inst)) {
        paths_clear(&p);
        return 0;
    }
    pid_t pid = 0;
    bool started = read_pid(&p, &pid) == 0;
    collect_exit(&p, pid);
    st_autofree char *status = NULL;
    pid_t crun_pid = 0;
    /* The common case, a running container, needs no `crun state` (one
     * exec of crun, several ms): its init is alive in its own cgroups. */
    if (started && pid_in_instance(pid, id)) {
        status = st_strdup("running");
        crun_pid = pid;
    } else if (started && (r = crun_status(&p, id, &status, &crun_pid, err)) < 0) {
        paths_clear(&p);
        return r;
    }
    const struct st_cgroup_host *host = NULL;
    st_autoptr(st_err) herr = NULL;
    st_cgroup_host_get(&host, &herr);
    json_t *details = json_pack("{s:s, s:s}", "runtime", "crun", "cgroup_layout",
                                host ? st_cgroup_layout_name(host->layout) : "unknown");
    ret->details = details;
    bool alive = status && (strcmp(status, "running") == 0 || strcmp(status, "paused") == 0);
    if (alive && is_zombie(crun_pid ? crun_pid : pid))
        alive = false;
    if (!alive)
        collect_exit(&p, pid); /* it may have died since we looked: reap it now */
    if (status && strcmp(status, "created") == 0) {
        ret->state = ST_INSTANCE_CREATED;
    } else if (alive) {
        ret->state = ST_INSTANCE_RUNNING;
        ret->pid = crun_pid ? crun_pid : pid;
        json_object_set_new(details, "pid", json_integer(ret->pid));
    } else if (started && (status || exists(p.exitfile))) {
        ret->state = ST_INSTANCE_STOPPED;
        if (read_exit(&p, &ret->exit_status) < 0) {
            ret->exit_status = -1;
            json_object_set_new(details, "reason",
                                json_string("it ended while the agent was not watching; exit "
                                            "status unknown"));
        }
        json_object_set_new(details, "exit_status", json_integer(ret->exit_status));
    } else {
        ret->state = ST_INSTANCE_CREATED;
    }
    /* The kernel's OOM kills in the instance's cgroups: a stopped instance
     * with any was killed for its memory. */
    st_autofree char *cg_text = NULL;
    st_autoptr(json_t) cg = NULL;
    st_autoptr(st_err) cerr = NULL;
    if (st_read_file(p.cgroups, 64 * 1024, &cg_text, NULL, &cerr) == 0 &&
        st_json_parse_object(cg_text, strlen(cg_text), &cg, &cerr) == 0) {
        struct st_cgroup_usage u;
        st_cgroup_instance_usage(json_object_get(cg, "dirs"), &u, &cerr);
        json_object_set_new(details, "oom_kills", json_integer((json_int_t)u.oom_kills));
        if (ret->state == ST_INSTANCE_STOPPED && u.oom_kills > 0)
            json_object_set_new(details, "reason", json_string("oom"));
    }
    paths_clear(&p);
    return 0;
}

/* Where the crun process goes before exec: the instance's cgroups (v1 and
 * hybrid), and out of sight of the cgroup2 mount (hybrid). */
static int launch(const struct paths *p, const char *id, const char *crun,
                  const struct st_cgroup_host *host, struct st_err **err)
{
    st_autoclose int console = open(p->console, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
    if (console < 0)
        return st_err_errno(err, "open %s", p->console);
    st_autofree char *cg_text = NULL;
    st_autoptr(json_t) cg = NULL;
    int r;
    if ((r = st_read_file(p->cgroups, 64 * 1024, &cg_text, NULL, err)) < 0 ||
        (r = st_json_parse_object(cg_text, strlen(cg_text), &cg, err)) < 0)
        return r;
    bool v2 = host->layout == ST_CGROUP_V2;
    char **join = v2 ? NULL : st_cgroup_instance_join_files(json_object_get(cg, "dirs"));
    const char *argv[24];
    crun_argv(p, crun, v2,
              (const char *const[]){"run", "--detach", "--bundle", p->bundle, "--pid-file",
                                    p->pidfile, id, NULL},
              argv, ST_ARRAY_SIZE(argv));
    struct st_proc_opts opts = {
        .stdin_fd = -1,
        .stdout_fd = console,
        .stderr_fd = console,
        .join_cgroups = (const char *const *)join,
        .hide_mount = host->layout == ST_CGROUP_HYBRID ? host->unified : NULL,
        .new_session = true,
    };
    pid_t pid;
    r = st_proc_spawn(argv, &opts, &pid, err);
    st_cgroup_strv_free(join);
    if (r < 0)
        return r;
    int status;
    if ((r = st_proc_wait(pid, CRUN_TIMEOUT_MS, &status, err)) < 0)
        return r;
    if (WIFEXITED(status) && WEXITSTATUS(status) == 0)
        return 0;
    /* crun's message (also on the console) for the error. */
    st_autofree char *how = st_proc_describe_status(status);
    st_autofree char *log = NULL;
    st_autoptr(st_err) lerr = NULL;
    st_read_file(p->crunlog + strlen("file:"), 64 * 1024, &log, NULL, &lerr);
    const char *last = "";
    if (log) {
        char *end = log + strlen(log);
        while (end > log && end[-1] == '\n')
            *--end = '\0';
        char *nl = strrchr(log, '\n');
        last = nl ? nl + 1 : log;
    }
    return st_err_set(err, -EIO, "crun run %s%s%s", how, last[0] ? ": " : "", last);
}

static int start_with(struct st_driver_ctx *ctx, json_t *server, const char *id,
                      const struct paths *p, struct st_err **err)
{
    int r = 0;
    if (!exists(p->config) && (r = container_create(ctx, server, err)) < 0)
        return r;
    struct st_instance_info info = {0};
    if ((r = container_state(ctx, id, &info, err)) < 0)
        return r;
    bool running = info.state == ST_INSTANCE_RUNNING;
    st_instance_info_clear(&info);
    if (running)
        return 0;
    st_autofree char *crun = NULL;
    const struct st_cgroup_host *host = NULL;
    if ((r = ensure_root(ctx, server, p, err)) < 0 || (r = configure(ctx, server, p, err)) < 0 ||
        (r = crun_path(&crun, err)) < 0 || (r = st_cgroup_host_get(&host, err)) < 0)
        return r;
    /* A container that ran before under this id: crun keeps it "stopped". */
    if (exists(p->crundir) &&
        (r = crun_run(p, (const char *const[]){"delete", "--force", id, NULL}, NULL, err)) < 0)
        return r;
    unlink(p->pidfile);
    unlink(p->exitfile);
    if ((r = launch(p, id, crun, host, err)) < 0)
        return r;
    st_log_info("container_started", "id=%s", id);
    return 0;
}

static int container_start(struct st_driver_ctx *ctx, json_t *server, struct st_err **err)
{
    const char *id = json_string_value(json_object_get(server, "id"));
    struct paths p = {0};
    int r = paths_get(ctx, id, &p, err);
    if (r == 0)
        r = start_with(ctx, server, id, &p, err);
    paths_clear(&p);
    return r;
}

/* Signals the container's processes through crun ("kill" is harmless when
 * it has just exited). */
static void crun_kill(const struct paths *p, const char *id, const char *sig)
{
    st_autoptr(st_err) e = NULL;
    if (crun_run(p, (const char *const[]){"kill", id, sig, NULL}, NULL, &e) < 0)
        st_log_debug("container_kill_failed", "id=%s signal=%s error=\"%s\"", id, sig,
                     st_err_msg(e));
}

static int container_stop(struct st_driver_ctx *ctx, const char *id, int grace_s,
                          struct st_err **err)
{
    struct st_instance_info info = {0};
    int r = container_state(ctx, id, &info, err);
    pid_t pid = info.pid;
    bool running = info.state == ST_INSTANCE_RUNNING;
    st_instance_info_clear(&info);
    if (r < 0 || !running)
        return r;
    struct paths p = {0};
    if ((r = paths_get(ctx, id, &p, err)) < 0)
        return r;
    crun_kill(&p, id, "SIGTERM");
    if (st_proc_wait_exit(pid, grace_s > 0 ? grace_s * 1000 : 0) < 0) {
        st_log_info("container_stop_kill", "id=%s grace_s=%d", id, grace_s);
        crun_kill(&p, id, "SIGKILL");
        if (st_proc_wait_exit(pid, KILL_WAIT_MS) < 0) {
            paths_clear(&p);
            return st_err_set(err, -ETIMEDOUT, "container %s did not die after SIGKILL", id);
        }
    }
    collect_exit(&p, pid);
    paths_clear(&p);
    return 0;
}

static int remove_cgroups(const struct paths *p, const char *id, struct st_err **err)
{
    st_autofree char *text = NULL;
    st_autoptr(json_t) cg = NULL;
    st_autoptr(st_err) e = NULL;
    json_t *dirs = NULL;
    st_autoptr(json_t) computed = NULL;
    if (st_read_file(p->cgroups, 64 * 1024, &text, NULL, &e) == 0 &&
        st_json_parse_object(text, strlen(text), &cg, &e) == 0) {
        dirs = json_object_get(cg, "dirs");
    } else {
        /* No record (crash before it was written): where they would be. */
        const struct st_cgroup_host *host;
        if (st_cgroup_host_get(&host, &e) < 0 ||
            st_cgroup_instance_dirs(host, id, &computed, &e) < 0)
            return 0;
        dirs = computed;
    }
    return st_cgroup_instance_remove(dirs, err);
}

/* Returns 1 when something of the instance was there and is gone now. */
static int destroy_with(const char *id, const struct paths *p, struct st_err **err)
{
    if (!exists(p->inst) && !exists(p->crundir) && !st_rootfs_is_mounted(p->rootfs))
        return 0;
    pid_t pid = 0;
    read_pid(p, &pid);
    if (exists(p->crundir)) {
        st_autoptr(st_err) derr = NULL;
        int r = crun_run(p, (const char *const[]){"delete", "--force", id, NULL}, NULL, &derr);
        if (r < 0 && exists(p->crundir))
            return st_err_set(err, r, "deleting container %s: %s", id, st_err_msg(derr));
    }
    /* crun delete --force sent SIGKILL; the pid namespace dies with its
     * init, which the agent reaps. */
    if (pid > 0 && st_proc_wait_exit(pid, KILL_WAIT_MS) < 0)
        return st_err_set(err, -ETIMEDOUT, "container %s (pid %d) did not die", id, (int)pid);
    collect_exit(p, pid);
    int r;
    if ((r = st_rootfs_umount(p->rootfs, err)) < 0 || (r = remove_cgroups(p, id, err)) < 0)
        return r;
    st_rootfs_image_release(p->images, p->inst); /* its image's unused age starts now */
    if ((r = st_rootfs_remove_tree(p->inst, err)) < 0)
        return r;
    return 1;
}

static int container_destroy(struct st_driver_ctx *ctx, const char *id, struct st_err **err)
{
    struct paths p = {0};
    int r = paths_get(ctx, id, &p, err);
    if (r == 0)
        r = destroy_with(id, &p, err);
    if (r > 0)
        st_log_info("container_destroyed", "id=%s", id);
    paths_clear(&p);
    return r < 0 ? r : 0;
}

static int container_list(struct st_driver_ctx *ctx, json_t **ret_ids, struct st_err **err)
{
    st_autofree char *dir = st_sprintf("%s/instances", ctx->data_dir);
    json_t *ids = json_array();
    DIR *d = opendir(dir);
    if (!d) {
        if (errno == ENOENT) {
            *ret_ids = ids;
            return 0;
        }
        json_decref(ids);
        return st_err_errno(err, "opendir %s", dir);
    }
    struct dirent *e;
    while ((e = readdir(d)))
        if (id_valid(e->d_name))
            json_array_append_new(ids, json_string(e->d_name));
    closedir(d);
    *ret_ids = ids;
    return 0;
}

static int container_stats(struct st_driver_ctx *ctx, const char *id, struct st_instance_stats *ret,
                           struct st_err **err)
{
    struct paths p = {0};
    int r = paths_get(ctx, id, &p, err);
    if (r < 0)
        return r;
    st_autofree char *text = NULL;
    st_autoptr(json_t) cg = NULL;
    if ((r = st_read_file(p.cgroups, 64 * 1024, &text, NULL, err)) == 0 &&
        (r = st_json_parse_object(text, strlen(text), &cg, err)) == 0) {
        struct st_cgroup_usage u;
        r = st_cgroup_instance_usage(json_object_get(cg, "dirs"), &u, err);
        *ret = (struct st_instance_stats){
            .cpu_usage_ns = u.cpu_usage_ns, .memory_bytes = u.memory_bytes, .pids = u.pids};
    }
    paths_clear(&p);
    return r;
}

static int container_console_path(struct st_driver_ctx *ctx, const char *id, char **ret,
                                  struct st_err **err)
{
    if (!id_valid(id))
        return st_err_set(err, -EINVAL, "invalid instance id '%s'", id ? id : "");
    *ret = st_sprintf("%s/instances/%s/console.log", ctx->data_dir, id);
    return 0;
}

/* ---- the console log's bound (container.h) ---- */

#define TRIM_COPY_CHUNK (64 * 1024)
#define TRIM_LINE_SEEK  4096 /* how far the copy looks for a line start */

/* Copies [from, EOF) to the start and truncates there; returns the bytes
 * dropped. Reading until pread finds the end (the file may grow while it
 * copies) leaves only the moment between that read and the truncation for
 * an append to be lost in. */
static int trim_copy(int fd, const char *path, uint64_t from, uint64_t *ret_dropped,
                     struct st_err **err)
{
    st_autofree char *buf = st_xcalloc(1, TRIM_COPY_CHUNK);
    /* Start at a line (the byte before from is a newline) when one starts
     * soon after from and something stays: the log users see should not
     * begin mid-line. */
    ssize_t n = pread(fd, buf, TRIM_LINE_SEEK, (off_t)(from - 1));
    if (n < 0)
        return st_err_errno(err, "read %s", path);
    const char *nl = memchr(buf, '\n', (size_t)n);
    if (nl && (uint64_t)(nl - buf) + 1 < (uint64_t)n)
        from += (uint64_t)(nl - buf);
    uint64_t src = from, dst = 0;
    for (;;) {
        n = pread(fd, buf, TRIM_COPY_CHUNK, (off_t)src);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return st_err_errno(err, "read %s", path);
        if (n == 0)
            break;
        for (ssize_t done = 0; done < n;) {
            ssize_t w = pwrite(fd, buf + done, (size_t)(n - done), (off_t)(dst + (uint64_t)done));
            if (w < 0 && errno == EINTR)
                continue;
            if (w < 0)
                return st_err_errno(err, "write %s", path);
            done += w;
        }
        src += (uint64_t)n;
        dst += (uint64_t)n;
    }
    if (ftruncate(fd, (off_t)dst) < 0)
        return st_err_errno(err, "truncate %s", path);
    *ret_dropped = src - dst;
    return 0;
}

int st_container_console_trim(const char *path, uint64_t max, struct st_container_trim *ret,
                              struct st_err **err)
{
    *ret = (struct st_container_trim){0};
    st_autoclose int fd = open(path, O_RDWR | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0)
        return errno == ENOENT ? 0 : st_err_errno(err, "open %s", path);
    struct stat st;
    if (fstat(fd, &st) < 0)
        return st_err_errno(err, "fstat %s", path);
    if (!S_ISREG(st.st_mode))
        return st_err_set(err, -EINVAL, "%s is not a regular file", path);
    uint64_t size = (uint64_t)st.st_size;
    if (size <= max / 2)
        return 0;
    uint64_t drop = size - max / 4;
    struct statfs sfs;
    uint64_t block = fstatfs(fd, &sfs) == 0 && sfs.f_bsize > 0 ? (uint64_t)sfs.f_bsize : 4096;
    /* Whole blocks only, rounded down: a little more than max/4 stays. The
     * range must end before the end of the file, which it does (max/4 > 0
     * bytes stay). */
    uint64_t blocks = drop / block * block;
    if (blocks > 0 && fallocate(fd, FALLOC_FL_COLLAPSE_RANGE, 0, (off_t)blocks) == 0) {
        *ret = (struct st_container_trim){.dropped = blocks, .collapsed = true};
        return 0;
    }
    /* EOPNOTSUPP: the file system has no such thing (tmpfs); EINVAL: not
     * for this file or these offsets. Anything else is a real failure. */
    if (blocks > 0 && errno != EOPNOTSUPP && errno != EINVAL && errno != ENOSYS)
        return st_err_errno(err, "collapsing the head of %s", path);
    int r = trim_copy(fd, path, drop, &ret->dropped, err);
    return r < 0 ? r : 0;
}

static bool filesystem_supported(const char *name)
{
    st_autofree char *text = NULL;
    st_autoptr(st_err) e = NULL;
    if (st_read_file("/proc/filesystems", 64 * 1024, &text, NULL, &e) < 0)
        return false;
    for (char *line = strtok(text, "\n"); line; line = strtok(NULL, "\n")) {
        char *tab = strrchr(line, '\t');
        if (strcmp(tab ? tab + 1 : line, name) == 0)
            return true;
    }
    return false;
}

static int container_probe(struct st_driver_ctx *ctx, json_t *ret_facts, struct st_err **err)
{
    (void)ctx;
    if (geteuid() != 0)
        return st_err_set(err, -EOPNOTSUPP, "containers need the agent to run as root");
    st_autofree char *crun = NULL;
    int r = crun_path(&crun, err);
    if (r < 0)
        return st_err_set(err, -EOPNOTSUPP, "crun is not installed (Debian package crun)");
    if (!filesystem_supported("overlay"))
        return st_err_set(err, -EOPNOTSUPP, "the kernel has no overlayfs");
    const struct st_cgroup_host *host;
    if ((r = st_cgroup_host_get(&host, err)) < 0)
        return st_err_prefix(err, -EOPNOTSUPP, "cgroups");
    st_autofree char *version = NULL;
    st_autoptr(st_err) verr = NULL;
    if (st_proc_run((const char *const[]){crun, "--version", NULL}, NULL, 10000, 4096, &version,
                    &verr) == 0) {
        char *nl = strchr(version, '\n');
        if (nl)
            *nl = '\0';
    }
    st_oci_seccomp_warm();
    json_object_set_new(ret_facts, "kind", json_string("container"));
    json_object_set_new(ret_facts, "runtime", json_string(version ? version : "crun"));
    json_object_set_new(ret_facts, "cgroup_layout",
                        json_string(st_cgroup_layout_name(host->layout)));
    st_log_info("container_driver_ready", "runtime=\"%s\" cgroup_layout=%s",
                version ? version : "crun", st_cgroup_layout_name(host->layout));
    return 0;
}

const struct st_driver st_driver_container = {
    .name = "container",
    .probe = container_probe,
    .create = container_create,
    .start = container_start,
    .stop = container_stop,
    .destroy = container_destroy,
    .state = container_state,
    .list = container_list,
    .stats = container_stats,
    .console_path = container_console_path,
};
