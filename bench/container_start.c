/* bench_container_start: what the container driver adds on top of crun. In
 * one run, on one node, with the same rootfs tarball:
 *   - driver: create + start of a new server through st_driver_container
 *     (overlay mount, guest files, config.json, cgroups and limits,
 *     `crun run --detach`), until crun has detached with the container
 *     running; destroy is timed apart;
 *   - bare crun: `crun run --detach` of the very same bundle (an instance the
 *     driver created but did not start) under a fresh container id, then
 *     `crun delete --force`. On v1/hybrid hosts bare crun gets the same
 *     treatment the driver gives it to run at all (cgroup manager disabled,
 *     the hybrid cgroup2 mount detached in a private mount namespace) but no
 *     cgroups: it is the floor.
 * Both run in each iteration, in alternating order, and both are cleaned up
 * only after both were measured, so drift and cleanup hit both alike. The
 * first create (which unpacks the image into the node's cache) is reported
 * on its own and left out of the percentiles.
 *
 *   bench_container_start TARBALL [-n iterations] [-d data_dir]
 * Needs root and crun. Prints p50/p95 of each and the goal:
 * driver p50 <= 1.5 x bare p50 + 15 ms. */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "agent/drivers/cgroup.h"
#include "agent/drivers/container.h"
#include "agent/drivers/proc.h"
#include "lib/cleanup.h"
#include "lib/err.h"
#include "lib/files.h"
#include "lib/json.h"
#include "lib/log.h"
#include "lib/times.h"
#include "lib/uuid.h"

static const char *tarball;

static int image_path(void *agent, const char *image_id, const char **ret_path, struct st_err **err)
{
    (void)agent;
    (void)image_id;
    (void)err;
    *ret_path = tarball;
    return 0;
}

static json_t *server_doc(const char *id)
{
    return json_pack("{s:s, s:s, s:{s:{s:s, s:s, s:{}}, s:s, s:{s:i, s:i, s:i, s:i, s:i, s:i},"
                     " s:s}}",
                     "id", id, "name", "bench", "spec", "image", "id", "bench-image",
                     "container_format", "docker", "properties", "driver", "container", "resources",
                     "vcpus", 1, "cpu_shares", 1024, "cpu_limit_mhz", 1000, "memory_reservation_mb",
                     256, "memory_limit_mb", 512, "pids_limit", 1024, "public_key",
                     "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIBench bench@stratos");
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static double pct(double *v, int n, int p)
{
    qsort(v, (size_t)n, sizeof(*v), cmp_double);
    int i = (p * (n - 1) + 50) / 100;
    return v[i];
}

static void die(const char *what, struct st_err *err)
{
    fprintf(stderr, "bench_container_start: %s: %s\n", what, err ? st_err_msg(err) : "?");
    exit(1);
}

/* crun run --detach of bundle as id, the way the driver runs it, minus the
 * cgroups; returns the milliseconds until crun has detached. */
static double bare_start(const char *crun, const char *root, const char *bundle, const char *id,
                         const struct st_cgroup_host *host)
{
    st_autofree char *pidfile = st_sprintf("%s/bare-%s.pid", root, id);
    bool v2 = host->layout == ST_CGROUP_V2;
    const char *argv[16];
    int n = 0;
    argv[n++] = crun;
    argv[n++] = "--root";
    argv[n++] = root;
    if (!v2)
        argv[n++] = "--cgroup-manager=disabled";
    argv[n++] = "run";
    argv[n++] = "--detach";
    argv[n++] = "--bundle";
    argv[n++] = bundle;
    argv[n++] = "--pid-file";
    argv[n++] = pidfile;
    argv[n++] = id;
    argv[n] = NULL;
    struct st_proc_opts opts = {
        .stdin_fd = -1,
        .stdout_fd = -1,
        .stderr_fd = 2,
        .hide_mount = host->layout == ST_CGROUP_HYBRID ? host->unified : NULL,
        .new_session = true,
    };
    st_autoptr(st_err) err = NULL;
    int64_t t0 = st_time_mono_ns();
    pid_t pid;
    int status;
    if (st_proc_spawn(argv, &opts, &pid, &err) < 0 || st_proc_wait(pid, 60000, &status, &err) < 0)
        die("bare crun run", err);
    double ms = (st_time_mono_ns() - t0) / 1e6;
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
        die("bare crun run failed", NULL);
    return ms;
}

/* crun delete --force, and reap the init (we are its subreaper). */
static void bare_stop(const char *crun, const char *root, const char *id)
{
    st_autofree char *pidfile = st_sprintf("%s/bare-%s.pid", root, id);
    st_autoptr(st_err) err = NULL;
    st_autofree char *text = NULL;
    pid_t init = 0;
    if (st_read_file(pidfile, 64, &text, NULL, &err) == 0)
        init = (pid_t)strtol(text, NULL, 10);
    if (st_proc_run((const char *const[]){crun, "--root", root, "delete", "--force", id, NULL},
                    NULL, 60000, 0, NULL, &err) < 0)
        die("crun delete", err);
    if (init > 0) {
        int status;
        st_proc_wait_exit(init, 10000);
        st_proc_reap(init, &status);
    }
    unlink(pidfile);
}

/* One measured create+start through the driver. */
static double driver_start(struct st_driver_ctx *ctx, json_t *server, double *ret_create_ms)
{
    st_autoptr(st_err) err = NULL;
    int64_t t0 = st_time_mono_ns();
    if (st_driver_container.create(ctx, server, &err) < 0)
        die("create", err);
    int64_t t1 = st_time_mono_ns();
    if (st_driver_container.start(ctx, server, &err) < 0)
        die("start", err);
    *ret_create_ms = (t1 - t0) / 1e6;
    return (st_time_mono_ns() - t0) / 1e6;
}

int main(int argc, char **argv)
{
    int iterations = 20;
    const char *dir = NULL;
    int opt;
    while ((opt = getopt(argc, argv, "n:d:")) != -1) {
        if (opt == 'n')
            iterations = atoi(optarg);
        else if (opt == 'd')
            dir = optarg;
        else
            return 2;
    }
    if (optind >= argc || iterations < 2) {
        fprintf(stderr, "usage: %s TARBALL [-n iterations] [-d data_dir]\n", argv[0]);
        return 2;
    }
    tarball = argv[optind];
    st_log_set_level(ST_LOG_WARN);
    st_autoptr(st_err) err = NULL;
    st_autofree char *data = st_strdup(dir ? dir : "/tmp/st-bench-container-XXXXXX");
    if (!dir && !mkdtemp(data))
        return 1;
    struct st_driver_ctx ctx = {.data_dir = data, .node_name = "bench", .image_path = image_path};
    const struct st_driver *d = &st_driver_container;
    st_autoptr(json_t) facts = json_object();
    if (d->probe(&ctx, facts, &err) < 0)
        die("probe", err);
    if (st_proc_subreaper_enable(&err) < 0)
        die("subreaper", err);
    const struct st_cgroup_host *host;
    if (st_cgroup_host_get(&host, &err) < 0)
        die("cgroups", err);
    st_autofree char *crun = NULL;
    if (st_proc_find_exec("crun", &crun, &err) < 0)
        die("crun", err);

    /* The bundle bare crun runs: a created, never started instance. */
    char ref_id[ST_UUID_LEN];
    st_uuid_new(ref_id);
    st_autoptr(json_t) ref = server_doc(ref_id);
    int64_t t0 = st_time_mono_ns();
    if (d->create(&ctx, ref, &err) < 0)
        die("create", err);
    double first_ms = (st_time_mono_ns() - t0) / 1e6;
    st_autofree char *bundle = st_sprintf("%s/instances/%s/bundle", data, ref_id);
    st_autofree char *bare_root = st_sprintf("%s/bare-crun", data);

    double *drv = st_new0(double, (size_t)iterations);
    double *create = st_new0(double, (size_t)iterations);
    double *bare = st_new0(double, (size_t)iterations);
    double *destroy = st_new0(double, (size_t)iterations);
    for (int i = 0; i < iterations; i++) {
        char id[ST_UUID_LEN], bare_id[40];
        st_uuid_new(id);
        snprintf(bare_id, sizeof(bare_id), "bare-%d", i);
        st_autoptr(json_t) server = server_doc(id);
        /* Alternate which goes first; clean up after both are measured. */
        if (i % 2 == 0) {
            drv[i] = driver_start(&ctx, server, &create[i]);
            bare[i] = bare_start(crun, bare_root, bundle, bare_id, host);
        } else {
            bare[i] = bare_start(crun, bare_root, bundle, bare_id, host);
            drv[i] = driver_start(&ctx, server, &create[i]);
        }
        int64_t t2 = st_time_mono_ns();
        if (d->destroy(&ctx, id, &err) < 0)
            die("destroy", err);
        destroy[i] = (st_time_mono_ns() - t2) / 1e6;
        bare_stop(crun, bare_root, bare_id);
    }
    if (d->destroy(&ctx, ref_id, &err) < 0)
        die("destroy", err);

    double d50 = pct(drv, iterations, 50), d95 = pct(drv, iterations, 95);
    double b50 = pct(bare, iterations, 50), b95 = pct(bare, iterations, 95);
    double c50 = pct(create, iterations, 50), x50 = pct(destroy, iterations, 50);
    double goal = 1.5 * b50 + 15.0;
    printf("cgroup layout: %s; runtime: %s; %d iterations\n", st_cgroup_layout_name(host->layout),
           json_string_value(json_object_get(facts, "runtime")), iterations);
    printf("first create (unpacks the image into the cache): %.1f ms\n", first_ms);
    printf("driver create+start: p50 %.1f ms  p95 %.1f ms  (create alone p50 %.1f ms)\n", d50, d95,
           c50);
    printf("bare crun run:       p50 %.1f ms  p95 %.1f ms\n", b50, b95);
    printf("driver destroy:      p50 %.1f ms\n", x50);
    printf("ratio driver/bare p50: %.2f; goal p50 <= 1.5 x bare + 15 ms = %.1f ms: %s\n", d50 / b50,
           goal, d50 <= goal ? "met" : "NOT met");
    free(drv);
    free(create);
    free(bare);
    free(destroy);
    if (!dir) {
        st_autofree char *bare_state = st_sprintf("%s/bare-crun", data);
        rmdir(bare_state);
        st_autofree char *crun_state = st_sprintf("%s/crun", data);
        rmdir(crun_state);
        st_autofree char *inst = st_sprintf("%s/instances", data);
        rmdir(inst);
        /* images/ holds the unpacked cache */
        st_proc_run((const char *const[]){"rm", "-rf", "--one-file-system", data, NULL}, NULL,
                    60000, 0, NULL, &err);
    }
    return 0;
}
