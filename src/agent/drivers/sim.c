/* The "sim" driver: a TEST DOUBLE that runs nothing. It lets one machine
 * stand in for thousands of nodes in scheduler and control-plane scale tests
 * (stratosd --drivers sim, --sim-nodes N): it takes any image, "creates" and
 * "starts" an instance by writing a small state file, and says so in the
 * instance's console log and facts ("simulated": true). Its state lives in
 * <data dir>/instances/<uuid>/sim.json, so an agent restart re-adopts its
 * instances exactly as with a real driver; the counters there (creates,
 * starts, stops) let tests check that a restart did not recreate anything.
 *
 * A node using it advertises the "container" kind with a fixed simulated
 * capacity (32 vCPUs at 2400 MHz, 128 GiB, 1000 GB), so the scheduler
 * places ordinary container servers on it.
 *
 * Failure injection through the server's metadata, for tests:
 *   "sim:fail": "create" | "start" | "stop" | "destroy"  that operation fails;
 *   "sim:exit": "<status>"  the instance "exits" with that status right after
 *                           starting ("sim:reason": "oom" says why). */
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "agent/driver.h"
#include "lib/cleanup.h"
#include "lib/files.h"
#include "lib/json.h"
#include "lib/times.h"

#define SIM_STATE_FILE   "sim.json"
#define SIM_CONSOLE_FILE "console.log"

static int instance_dir(struct st_driver_ctx *ctx, const char *id, char **ret, struct st_err **err)
{
    st_autofree char *base = st_sprintf("%s/instances", ctx->data_dir);
    return st_path_join(base, id, ret, err);
}

static int load(struct st_driver_ctx *ctx, const char *id, json_t **ret, struct st_err **err)
{
    st_autofree char *dir = NULL;
    int r = instance_dir(ctx, id, &dir, err);
    if (r < 0)
        return r;
    st_autofree char *path = st_sprintf("%s/" SIM_STATE_FILE, dir);
    st_autofree char *text = NULL;
    size_t len;
    r = st_read_file(path, 64 * 1024, &text, &len, NULL);
    if (r == -ENOENT)
        return -ENOENT; /* no error object: absence is an answer, not a failure */
    if (r < 0)
        return st_err_errno(err, "reading %s", path);
    r = st_json_parse_object(text, len, ret, err);
    return r < 0 ? st_err_prefix(err, r, "%s", path) : 0;
}

/* Written to a temporary name and renamed: a crash leaves old or new. Not
 * fsynced: a simulated instance need not survive a power loss. */
static int save(struct st_driver_ctx *ctx, const char *id, json_t *state, struct st_err **err)
{
    st_autofree char *dir = NULL;
    int r = instance_dir(ctx, id, &dir, err);
    if (r < 0)
        return r;
    r = st_mkdir_p(dir, 0700, err);
    if (r < 0)
        return r;
    st_autofree char *path = st_sprintf("%s/" SIM_STATE_FILE, dir);
    st_autofree char *tmp = st_sprintf("%s.tmp", path);
    st_autofree char *text = st_json_dumps(state);
    FILE *f = fopen(tmp, "we");
    if (!f)
        return st_err_errno(err, "creating %s", tmp);
    size_t len = strlen(text);
    bool ok = fwrite(text, 1, len, f) == len;
    if (fclose(f) != 0 || !ok) {
        unlink(tmp);
        return st_err_errno(err, "writing %s", tmp);
    }
    if (rename(tmp, path) < 0)
        return st_err_errno(err, "renaming %s", tmp);
    return 0;
}

static void console_line(struct st_driver_ctx *ctx, const char *id, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void console_line(struct st_driver_ctx *ctx, const char *id, const char *fmt, ...)
{
    st_autofree char *dir = NULL;
    if (instance_dir(ctx, id, &dir, NULL) < 0)
        return;
    st_autofree char *path = st_sprintf("%s/" SIM_CONSOLE_FILE, dir);
    FILE *f = fopen(path, "ae");
    if (!f)
        return;
    char now[ST_TIME_RFC3339_LEN];
    st_time_rfc3339_ms(st_time_now_ms(), now, sizeof(now));
    fprintf(f, "[%s] [sim] ", now);
    va_list ap;
    va_start(ap, fmt);
    vfprintf(f, fmt, ap);
    va_end(ap);
    fputc('\n', f);
    fclose(f);
}

static const char *meta(json_t *server, const char *key)
{
    return json_string_value(
        json_object_get(json_object_get(json_object_get(server, "spec"), "metadata"), key));
}

static bool fails(json_t *state, const char *op)
{
    const char *f = json_string_value(json_object_get(state, "fail"));
    return f && strcmp(f, op) == 0;
}

static void bump(json_t *state, const char *counter)
{
    json_object_set_new(state, counter,
                        json_integer(json_integer_value(json_object_get(state, counter)) + 1));
}

static int sim_probe(struct st_driver_ctx *ctx, json_t *ret_facts, struct st_err **err)
{
    (void)ctx;
    (void)err;
    json_object_set_new(ret_facts, "kind", json_string("container"));
    json_object_set_new(ret_facts, "simulated", json_true());
    json_object_set_new(ret_facts, "capacity",
                        json_pack("{s:i,s:i,s:i,s:i}", "vcpus", 32, "cpu_mhz", 2400, "memory_mb",
                                  131072, "disk_gb", 1000));
    return 0;
}

static int sim_create(struct st_driver_ctx *ctx, json_t *server, struct st_err **err)
{
    const char *id = json_string_value(json_object_get(server, "id"));
    if (!id)
        return st_err_set(err, -EINVAL, "server document has no id");
    st_autoptr(json_t) state = NULL;
    int r = load(ctx, id, &state, err);
    if (r == 0)
        return 0; /* idempotent: created already */
    if (r != -ENOENT)
        return r;
    const char *fail = meta(server, "sim:fail");
    if (fail && strcmp(fail, "create") == 0)
        return st_err_set(err, -EIO, "simulated failure of create (metadata sim:fail)");
    const char *image = json_string_value(
        json_object_get(json_object_get(json_object_get(server, "spec"), "image"), "id"));
    state = json_pack("{s:s,s:s,s:i,s:i,s:i}", "state", "created", "image", image ? image : "",
                      "creates", 1, "starts", 0, "stops", 0);
    if (fail)
        json_object_set_new(state, "fail", json_string(fail));
    const char *exit_status = meta(server, "sim:exit");
    if (exit_status)
        json_object_set_new(state, "exit_after_start", json_integer(atoi(exit_status)));
    const char *reason = meta(server, "sim:reason");
    if (reason)
        json_object_set_new(state, "reason", json_string(reason));
    r = save(ctx, id, state, err);
    if (r < 0)
        return st_err_prefix(err, r, "creating simulated instance %s", id);
    console_line(ctx, id, "simulated instance %s created on node %s (image %s); nothing runs", id,
                 ctx->node_name ? ctx->node_name : "?", image ? image : "?");
    return 0;
}

static int sim_start(struct st_driver_ctx *ctx, json_t *server, struct st_err **err)
{
    const char *id = json_string_value(json_object_get(server, "id"));
    if (!id)
        return st_err_set(err, -EINVAL, "server document has no id");
    st_autoptr(json_t) state = NULL;
    int r = load(ctx, id, &state, err);
    if (r == -ENOENT)
        return st_err_set(err, -ENOENT, "simulated instance %s does not exist", id);
    if (r < 0)
        return r;
    if (fails(state, "start"))
        return st_err_set(err, -EIO, "simulated failure of start (metadata sim:fail)");
    const char *cur = json_string_value(json_object_get(state, "state"));
    if (cur && strcmp(cur, "running") == 0)
        return 0;
    json_t *exit_after = json_object_get(state, "exit_after_start");
    json_object_set_new(state, "state", json_string(exit_after ? "stopped" : "running"));
    if (exit_after)
        json_object_set(state, "exit_status", exit_after);
    bump(state, "starts");
    r = save(ctx, id, state, err);
    if (r < 0)
        return r;
    console_line(ctx, id, "simulated instance started (name %s)",
                 json_string_value(json_object_get(server, "name")) ?: "?");
    if (exit_after)
        console_line(ctx, id, "simulated instance exited with status %d",
                     (int)json_integer_value(exit_after));
    return 0;
}

static int sim_stop(struct st_driver_ctx *ctx, const char *id, int grace_s, struct st_err **err)
{
    (void)grace_s;
    st_autoptr(json_t) state = NULL;
    int r = load(ctx, id, &state, err);
    if (r == -ENOENT)
        return 0;
    if (r < 0)
        return r;
    if (fails(state, "stop"))
        return st_err_set(err, -EIO, "simulated failure of stop (metadata sim:fail)");
    const char *cur = json_string_value(json_object_get(state, "state"));
    if (!cur || strcmp(cur, "running") != 0)
        return 0;
    json_object_set_new(state, "state", json_string("stopped"));
    json_object_set_new(state, "exit_status", json_integer(0));
    bump(state, "stops");
    r = save(ctx, id, state, err);
    if (r == 0)
        console_line(ctx, id, "simulated instance stopped");
    return r;
}

static int sim_destroy(struct st_driver_ctx *ctx, const char *id, struct st_err **err)
{
    st_autoptr(json_t) state = NULL;
    int r = load(ctx, id, &state, err);
    if (r < 0 && r != -ENOENT)
        return r;
    if (r == 0 && fails(state, "destroy"))
        return st_err_set(err, -EIO, "simulated failure of destroy (metadata sim:fail)");
    st_autofree char *dir = NULL;
    r = instance_dir(ctx, id, &dir, err);
    if (r < 0)
        return r;
    /* Only the files this driver writes; anything else left is a bug to see. */
    static const char *const files[] = {SIM_STATE_FILE, SIM_STATE_FILE ".tmp", SIM_CONSOLE_FILE};
    for (size_t i = 0; i < ST_ARRAY_SIZE(files); i++) {
        st_autofree char *p = st_sprintf("%s/%s", dir, files[i]);
        if (unlink(p) < 0 && errno != ENOENT)
            return st_err_errno(err, "removing %s", p);
    }
    if (rmdir(dir) < 0 && errno != ENOENT)
        return st_err_errno(err, "removing %s", dir);
    return 0;
}

static int sim_state(struct st_driver_ctx *ctx, const char *id, struct st_instance_info *ret,
                     struct st_err **err)
{
    *ret = (struct st_instance_info){.state = ST_INSTANCE_ABSENT};
    st_autoptr(json_t) state = NULL;
    int r = load(ctx, id, &state, err);
    if (r == -ENOENT)
        return 0;
    if (r < 0)
        return r;
    const char *s = json_string_value(json_object_get(state, "state"));
    ret->state = !s                          ? ST_INSTANCE_CREATED
                 : strcmp(s, "running") == 0 ? ST_INSTANCE_RUNNING
                 : strcmp(s, "stopped") == 0 ? ST_INSTANCE_STOPPED
                                             : ST_INSTANCE_CREATED;
    ret->exit_status = (int)json_integer_value(json_object_get(state, "exit_status"));
    ret->details =
        json_pack("{s:s,s:b,s:I,s:I,s:I}", "driver", "sim", "simulated", 1, "creates",
                  (json_int_t)json_integer_value(json_object_get(state, "creates")), "starts",
                  (json_int_t)json_integer_value(json_object_get(state, "starts")), "stops",
                  (json_int_t)json_integer_value(json_object_get(state, "stops")));
    json_t *reason = json_object_get(state, "reason");
    if (reason && ret->state == ST_INSTANCE_STOPPED)
        json_object_set(ret->details, "reason", reason);
    return 0;
}

static int sim_list(struct st_driver_ctx *ctx, json_t **ret_ids, struct st_err **err)
{
    st_autofree char *base = st_sprintf("%s/instances", ctx->data_dir);
    json_t *ids = json_array();
    DIR *d = opendir(base);
    if (!d) {
        if (errno == ENOENT) {
            *ret_ids = ids;
            return 0;
        }
        json_decref(ids);
        return st_err_errno(err, "listing %s", base);
    }
    struct dirent *de;
    while ((de = readdir(d))) {
        if (de->d_name[0] == '.')
            continue;
        st_autofree char *p = st_sprintf("%s/%s/" SIM_STATE_FILE, base, de->d_name);
        if (access(p, F_OK) == 0)
            json_array_append_new(ids, json_string(de->d_name));
    }
    closedir(d);
    *ret_ids = ids;
    return 0;
}

static int sim_stats(struct st_driver_ctx *ctx, const char *id, struct st_instance_stats *ret,
                     struct st_err **err)
{
    (void)ctx;
    (void)id;
    (void)err;
    *ret = (struct st_instance_stats){0}; /* nothing runs, nothing is used */
    return 0;
}

static int sim_console_path(struct st_driver_ctx *ctx, const char *id, char **ret,
                            struct st_err **err)
{
    st_autofree char *dir = NULL;
    int r = instance_dir(ctx, id, &dir, err);
    if (r < 0)
        return r;
    *ret = st_sprintf("%s/" SIM_CONSOLE_FILE, dir);
    return 0;
}

const struct st_driver st_driver_sim = {
    .name = "sim",
    .probe = sim_probe,
    .create = sim_create,
    .start = sim_start,
    .stop = sim_stop,
    .destroy = sim_destroy,
    .state = sim_state,
    .list = sim_list,
    .stats = sim_stats,
    .console_path = sim_console_path,
};
