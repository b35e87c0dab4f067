/* `stratosd run`; see run.h. Signals are blocked in every thread and taken
 * with sigwait in the main thread, so no handler ever runs inside a worker. */
#include "run.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <string.h>

#include "agent/agent.h"
#include "api/app.h"
#include "api/audit.h"
#include "api/internal.h"
#include "api/router.h"
#include "api/server.h"
#include "api/system.h"
#include "ctrl/placement.h"
#include "ctrl/router_ha.h"
#include "daemon/init.h"
#include "daemon/routes.h"
#include "identity/identity.h"
#include "lib/cleanup.h"
#include "lib/files.h"
#include "lib/log.h"
#include "lib/times.h"
#include "store/kv.h"
#include "version.h"

#define ST_DAEMON_SHUTDOWN_GRACE_MS 10000

/* /healthz's store check: a real read through the store. */
static int check_store(void *userdata, struct st_err **err)
{
    struct st_kv *kv = userdata;
    st_autoptr(st_kv_entry) e = NULL;
    int r = st_kv_get(kv, ST_DAEMON_CLUSTER_KEY, &e, err);
    return r == -ENOENT ? st_err_set(err, -EIO, "cluster record missing") : r;
}

static int wait_for_signal(void)
{
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    for (;;) {
        int sig;
        if (sigwait(&set, &sig) == 0)
            return sig;
    }
}

/* The node agent of roles agent and all: its state lives in
 * <data-dir>/agent (instances, image cache, simulated nodes). */
static int start_agent(const struct st_daemon_config *cfg, const char *controller_url,
                       struct st_agent **ret, struct st_err **err)
{
    st_autofree char *dir = st_sprintf("%s/agent", cfg->data_dir);
    struct st_agent_config acfg = {
        .controller_url = controller_url,
        .node_name = cfg->node_name,
        .node_token_file = cfg->node_token_file,
        .data_dir = dir,
        .drivers = cfg->drivers,
        .sim_nodes = cfg->sim_nodes,
        .cpu_allocation_ratio = cfg->cpu_allocation_ratio,
        .ram_allocation_ratio = cfg->ram_allocation_ratio,
        .disk_allocation_ratio = cfg->disk_allocation_ratio,
        .vtep = cfg->vtep,
        .external_bridge = cfg->external_bridge,
        .no_network = cfg->no_network,
        .console_log_max = cfg->console_log_max,
        .image_cache_max_age_s = cfg->image_cache_max_age_s,
    };
    int r = st_agent_start(&acfg, ret, err);
    return r < 0 ? st_err_prefix(err, r, "starting the node agent") : 0;
}

/* Role agent: no store and no cloud API here (the controller holds them);
 * this process serves only /healthz, /version and / on --listen, for
 * probes and for the tests that wait for it, and runs the agent. */
static int run_agent_role(const struct st_daemon_config *cfg, struct st_err **err)
{
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGPIPE);
    pthread_sigmask(SIG_BLOCK, &set, NULL);
    int r = st_mkdir_p(cfg->data_dir, 0700, err);
    if (r < 0)
        return st_err_prefix(err, r, "preparing data dir");
    struct st_api_app app = {.data_dir = cfg->data_dir, .public_url = cfg->public_url};
    st_autoptr(st_router) router = st_router_new(&app);
    struct st_api_system sys = {.role = st_daemon_role_name(cfg->role)};
    r = st_api_system_register(router, &sys, err);
    if (r < 0)
        return r;
    struct st_api_server_config scfg = {.listen = cfg->listen,
                                        .threads = cfg->threads ? cfg->threads : 1,
                                        .tls_cert = cfg->tls_cert,
                                        .tls_key = cfg->tls_key,
                                        .access_log = false};
    struct st_api_server *srv = NULL;
    r = st_api_server_start(&scfg, router, &srv, err);
    if (r < 0)
        return st_err_prefix(err, r, "starting API server on %s", cfg->listen);
    struct st_agent *agent = NULL;
    r = start_agent(cfg, cfg->controller_url, &agent, err);
    if (r < 0) {
        st_api_server_stop(srv, 0);
        return r;
    }
    st_log_info("stratosd_ready",
                "version=%s role=agent listen=%s port=%u node=%s controller=%s data_dir=%s",
                ST_VERSION, cfg->listen, st_api_server_port(srv), cfg->node_name,
                cfg->controller_url, cfg->data_dir);
    int sig = wait_for_signal();
    st_log_info("stratosd_stopping", "signal=%s", strsignal(sig));
    st_agent_stop(agent); /* instances keep running */
    st_api_server_stop(srv, ST_DAEMON_SHUTDOWN_GRACE_MS);
    st_log_info("stratosd_stopped", "%s", "clean=true");
    return 0;
}

int st_daemon_run(const struct st_daemon_config *cfg, struct st_err **err)
{
    if (cfg->role == ST_ROLE_AGENT)
        return run_agent_role(cfg, err);
    int64_t t0 = st_time_mono_ns();
    if (!st_daemon_is_initialized(cfg))
        return st_err_set(err, -ENOENT,
                          "data dir %s is not initialised: run 'stratosd init --data-dir %s%s%s'",
                          cfg->data_dir, cfg->data_dir, cfg->store ? " --store " : "",
                          cfg->store ? cfg->store : "");

    /* Block before any thread starts so every thread inherits the mask. */
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGPIPE);
    pthread_sigmask(SIG_BLOCK, &set, NULL);

    st_autofree char *store_path = st_daemon_store_path(cfg);
    st_autoptr(st_kv) kv = NULL;
    int r = st_kv_open(cfg->store ? cfg->store : store_path, NULL, &kv, err);
    if (r < 0)
        return st_err_prefix(err, r, "opening store");
    if (cfg->store) { /* a shared store is ready once some init bootstrapped it */
        st_autoptr(st_kv_entry) cluster = NULL;
        r = st_kv_get(kv, ST_DAEMON_CLUSTER_KEY, &cluster, err);
        if (r == -ENOENT) {
            st_err_clear(err);
            return st_err_set(err, r, "store %s is not initialised: run 'stratosd init --store %s'",
                              cfg->store, cfg->store);
        }
        if (r < 0)
            return st_err_prefix(err, r, "reading the cluster record");
    }

    /* Gives BUILD servers a node (stopped before the store closes). */
    st_autoptr(st_ctrl_placement) placement = NULL;
    r = st_ctrl_placement_start(kv, NULL, &placement, err);
    if (r < 0)
        return r;
    /* Moves routers off nodes whose lease expired (stopped beside placement). */
    st_autoptr(st_ctrl_router_ha) router_ha = NULL;
    r = st_ctrl_router_ha_start(kv, NULL, &router_ha, err);
    if (r < 0)
        return r;

    struct st_identity_config icfg = {.token_ttl_s = cfg->token_ttl_s};
    st_autoptr(st_identity) identity = NULL;
    r = st_identity_new(kv, &icfg, &identity, err);
    if (r < 0)
        return st_err_prefix(err, r, "opening identity");

    st_autofree char *audit_path = st_sprintf("%s/%s", cfg->data_dir, ST_DAEMON_AUDIT_FILE);
    st_autoptr(st_audit) audit = NULL;
    r = st_audit_open(audit_path, &audit, err);
    if (r < 0)
        return r;

    /* The public URL goes into the catalog; with port 0 it is known only
     * once the server has bound, so it is completed below. */
    st_autofree char *public_url = st_strdup(cfg->public_url);
    struct st_api_app app = {
        .kv = kv, .identity = identity, .data_dir = cfg->data_dir, .public_url = public_url};
    st_autoptr(st_router) router = st_router_new(&app);
    st_api_audit_install(router, audit);
    struct st_api_system sys = {
        .store_check = check_store,
        .userdata = kv,
        .role = st_daemon_role_name(cfg->role),
    };
    r = st_daemon_routes_register(router, &app, &sys, err);
    if (r < 0)
        return r;

    struct st_api_server_config scfg = {
        .listen = cfg->listen,
        .threads = cfg->threads,
        .body_limit = cfg->body_limit,
        .tls_cert = cfg->tls_cert,
        .tls_key = cfg->tls_key,
        .access_log = cfg->access_log,
    };
    struct st_api_server *srv = NULL;
    r = st_api_server_start(&scfg, router, &srv, err);
    if (r < 0)
        return st_err_prefix(err, r, "starting API server on %s", cfg->listen);
    size_t ul = strlen(public_url);
    st_autofree char *bound_url = NULL; /* both strings live until shutdown */
    if (ul > 2 && strcmp(public_url + ul - 2, ":0") == 0) {
        bound_url = st_sprintf("%.*s:%u", (int)(ul - 2), public_url, st_api_server_port(srv));
        __atomic_store_n(&app.public_url, bound_url, __ATOMIC_RELEASE);
    }

    st_log_info("stratosd_listening", "port=%u startup_ms=%.1f", st_api_server_port(srv),
                (st_time_mono_ns() - t0) / 1e6);

    struct st_api_internal_waker *waker = NULL;
    r = st_api_internal_waker_start(kv, srv, &waker, err);
    if (r < 0) {
        st_api_server_stop(srv, 0);
        return r;
    }

    struct st_agent *agent = NULL;
    if (cfg->role == ST_ROLE_ALL) {
        r = start_agent(cfg, cfg->controller_url ? cfg->controller_url : app.public_url, &agent,
                        err);
        if (r < 0) {
            st_api_internal_waker_stop(waker);
            st_api_server_stop(srv, 0);
            return r;
        }
    }

    st_log_info("stratosd_ready",
                "version=%s role=%s listen=%s port=%u public_url=%s data_dir=%s startup_ms=%.1f",
                ST_VERSION, st_daemon_role_name(cfg->role), cfg->listen, st_api_server_port(srv),
                app.public_url, cfg->data_dir, (st_time_mono_ns() - t0) / 1e6);

    int sig = wait_for_signal();
    st_log_info("stratosd_stopping", "signal=%s", strsignal(sig));
    st_agent_stop(agent); /* first: it is a client of this server; instances keep running */
    st_ctrl_placement_stop(st_steal(&placement));
    st_ctrl_router_ha_stop(st_steal(&router_ha));
    st_identity_watch_stop(identity); /* requests still served read tokens from the store */
    st_api_internal_waker_stop(waker);
    st_kv_wake_all(kv);
    st_api_server_stop(srv, ST_DAEMON_SHUTDOWN_GRACE_MS);
    st_log_info("stratosd_stopped", "%s", "clean=true");
    return 0;
}
