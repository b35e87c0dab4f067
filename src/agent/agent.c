/* The node agent; see agent.h for what it does and which threads do it.
 * This file holds the nodes (the real one and the simulated ones), their
 * assignment maps and work queues, and the threads; the decision of what to
 * do with one server is the pure table in reconcile.c. This is an edge in
 * the sense of STYLE.md: errors end here, as log lines and status reports. */
#include "agent/agent.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "agent/client.h"
#include "agent/driver.h"
#include "agent/drivers/container.h"
#include "agent/drivers/rootfs.h"
#include "agent/host.h"
#include "agent/image_cache.h"
#include "agent/netplan.h"
#include "agent/reaper.h"
#include "agent/reconcile.h"
#include "compute/model.h"
#include "lib/files.h"
#include "lib/json.h"
#include "lib/log.h"
#include "lib/times.h"

#define AGENT_MAX_DRIVERS      4
#define AGENT_MAX_HOUSEKEEPERS 4
#define AGENT_BACKOFF_MIN_MS   1000
#define AGENT_BACKOFF_MAX_MS   30000
#define AGENT_NODE_NAME_MAX    200
#define AGENT_TOKEN_MAX        4096
#define AGENT_POLL_SLACK_S     15 /* beyond the long-poll wait before a request times out */

struct node_driver {
    const char *kind; /* what the node offers with it: "container", "vm" */
    const struct st_driver *drv;
};

struct agent_node {
    struct st_agent *agent;
    size_t index;
    char *name;
    char *data_dir;
    bool fleet; /* one of --sim-nodes: polled by a housekeeper, reconciled inline */
    struct node_driver drivers[AGENT_MAX_DRIVERS];
    size_t n_drivers;
    json_t *kinds;    /* advertised: ["container"] */
    json_t *capacity; /* {"vcpus", "cpu_mhz", "memory_mb", "disk_gb"} */
    bool simulated;
    struct st_driver_ctx ctx;

    pthread_mutex_t lock; /* guards everything below */
    pthread_cond_t cond;  /* workers: queue not empty, check due, or stop */
    /* id → {"doc": server document, "queued", "busy", "again": bools,
     *       "console": where the console log pushed ends (absent: none yet),
     *       counted from the log's first byte ever, "console_dropped":
     *       bytes trimmed from its head so far} */
    json_t *servers;
    char **queue;
    size_t q_head, q_len, q_cap;
    int64_t next_check_ms;
    int64_t next_prune_ms; /* the image cache's (the real node's workers) */

    /* Owned by the one thread that polls the node (watcher or housekeeper). */
    int64_t revision;
    int64_t next_resync_ms;
    int64_t next_poll_ms, poll_backoff_ms;
    bool poll_failing;
    /* Owned by the node's housekeeper. */
    int64_t next_heartbeat_ms, hb_backoff_ms;
    bool registered, hb_failing;

    pthread_t watcher;
    bool watcher_started;
    struct st_agent_client *watch_client;
    pthread_t *workers;
    struct st_agent_client **worker_clients;
    size_t n_workers, n_workers_started;
};

struct housekeeper {
    struct st_agent *agent;
    size_t index;
    pthread_t thread;
    bool started;
    struct st_agent_client *client;
};

struct st_agent {
    char *controller_url;
    char *token;
    char *data_dir;
    char *az;
    double cpu_ratio, ram_ratio, disk_ratio; /* allocation ratios, sent with every heartbeat */
    unsigned lease_s, poll_wait_s, check_ms, resync_s, sim_poll_ms, workers, stop_grace_s;
    size_t console_log_max;
    unsigned image_max_age_s, image_prune_s;

    int stop; /* read with __atomic_load_n: clients poll it */
    pthread_mutex_t lock;
    pthread_cond_t cond; /* interruptible sleeps */

    struct agent_node **nodes;
    size_t n_nodes;
    struct housekeeper *hk;
    size_t n_hk;
    struct st_reaper *reaper;
    struct st_agent_client *image_client;
    struct st_image_cache *images;
    struct st_netplan *netplan; /* the real node's networking; NULL without */
    int64_t t0_ns;

    unsigned nodes_registered;
    unsigned long heartbeats, heartbeat_errors, polls, reports, actions, console_pushes;
    int64_t register_all_ns; /* 0 until every node registered */
};

static int64_t mono_ms(void)
{
    return st_time_mono_ns() / 1000000;
}

static bool stopping(struct st_agent *a)
{
    return __atomic_load_n(&a->stop, __ATOMIC_ACQUIRE);
}

static void count(unsigned long *counter)
{
    __atomic_add_fetch(counter, 1, __ATOMIC_RELAXED);
}

static void cond_init_mono(pthread_cond_t *c)
{
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(c, &ca);
    pthread_condattr_destroy(&ca);
}

static struct timespec mono_deadline(int64_t at_ms)
{
    return (struct timespec){.tv_sec = at_ms / 1000, .tv_nsec = (at_ms % 1000) * 1000000};
}

/* Sleeps until at_ms (monotonic) or until the agent stops. */
static void agent_sleep_until(struct st_agent *a, int64_t at_ms)
{
    struct timespec ts = mono_deadline(at_ms);
    pthread_mutex_lock(&a->lock);
    while (!stopping(a) && mono_ms() < at_ms) {
        if (pthread_cond_timedwait(&a->cond, &a->lock, &ts) == ETIMEDOUT)
            break;
    }
    pthread_mutex_unlock(&a->lock);
}

static int64_t backoff_next(int64_t cur, int64_t max)
{
    int64_t next = cur ? cur * 2 : AGENT_BACKOFF_MIN_MS;
    return next > max ? max : next;
}

/* ---- the per-node assignment map and work queue (node->lock held) ---- */

static bool entry_flag(json_t *entry, const char *flag)
{
    return json_is_true(json_object_get(entry, flag));
}

static void entry_set(json_t *entry, const char *flag, bool on)
{
    json_object_set_new(entry, flag, json_boolean(on));
}

static void enqueue_locked(struct agent_node *n, const char *id)
{
    json_t *entry = json_object_get(n->servers, id);
    if (!entry || entry_flag(entry, "queued"))
        return;
    entry_set(entry, "queued", true);
    if (n->q_head + n->q_len == n->q_cap) {
        if (n->q_head > 0) {
            memmove(n->queue, n->queue + n->q_head, n->q_len * sizeof(*n->queue));
            n->q_head = 0;
        } else {
            n->q_cap = n->q_cap ? n->q_cap * 2 : 64;
            n->queue = st_xrealloc(n->queue, n->q_cap * sizeof(*n->queue));
        }
    }
    n->queue[n->q_head + n->q_len++] = st_strdup(id);
}

static char *dequeue_locked(struct agent_node *n)
{
    if (!n->q_len)
        return NULL;
    char *id = n->queue[n->q_head++];
    if (--n->q_len == 0)
        n->q_head = 0;
    json_t *entry = json_object_get(n->servers, id);
    if (entry)
        entry_set(entry, "queued", false);
    return id;
}

static void enqueue_all_locked(struct agent_node *n)
{
    const char *id;
    json_t *entry;
    json_object_foreach(n->servers, id, entry) enqueue_locked(n, id);
}

static void node_forget(struct agent_node *n, const char *id)
{
    pthread_mutex_lock(&n->lock);
    json_object_del(n->servers, id);
    pthread_mutex_unlock(&n->lock);
}

/* Records what was just reported in the local copy of the document, so the
 * next check does not report it again before the controller's copy, with
 * our write in it, comes back through the watch. */
static void node_merge_status(struct agent_node *n, const char *id, json_t *doc, json_t *report)
{
    json_t *copy = json_deep_copy(doc);
    json_t *status = json_object_get(copy, "status");
    if (!json_is_object(status)) {
        status = json_object();
        json_object_set_new(copy, "status", status);
    }
    json_object_update(status, report);
    pthread_mutex_lock(&n->lock);
    json_t *entry = json_object_get(n->servers, id);
    if (entry && json_object_get(entry, "doc") == doc)
        json_object_set(entry, "doc", copy);
    pthread_mutex_unlock(&n->lock);
    json_decref(copy);
}

/* ---- drivers ---- */

static const struct st_driver *node_driver(struct agent_node *n, json_t *server)
{
    const char *kind =
        json_string_value(json_object_get(json_object_get(server, "spec"), "driver"));
    if (!kind)
        return n->n_drivers == 1 ? n->drivers[0].drv : NULL;
    for (size_t i = 0; i < n->n_drivers; i++) {
        if (strcmp(n->drivers[i].kind, kind) == 0)
            return n->drivers[i].drv;
    }
    return NULL;
}

static int node_image_path(void *node, const char *image_id, const char **ret_path,
                           struct st_err **err)
{
    struct agent_node *n = node;
    return st_image_cache_path(n->agent->images, image_id, ret_path, err);
}

/* Probes drv for node n and adds it under the kind it offers. required:
 * the user named it, so a failed probe is an error rather than a warning. */
static int node_add_driver(struct agent_node *n, const struct st_driver *drv, bool required,
                           struct st_err **err)
{
    st_autoptr(json_t) facts = json_object();
    st_autoptr(st_err) perr = NULL;
    int r = drv->probe ? drv->probe(&n->ctx, facts, &perr) : 0;
    if (r < 0) {
        if (required)
            return st_err_set(err, r, "driver %s cannot run on this node: %s", drv->name,
                              perr ? st_err_msg(perr) : strerror(-r));
        st_log_warn("agent_driver_unavailable", "node=%s driver=%s reason=\"%s\"", n->name,
                    drv->name, perr ? st_err_msg(perr) : strerror(-r));
        return 0;
    }
    const char *kind = json_string_value(json_object_get(facts, "kind"));
    if (!kind)
        kind = drv->name;
    for (size_t i = 0; i < n->n_drivers; i++) {
        if (strcmp(n->drivers[i].kind, kind) == 0) {
            st_log_warn("agent_driver_shadowed", "node=%s driver=%s kind=%s used=%s", n->name,
                        drv->name, kind, n->drivers[i].drv->name);
            return 0;
        }
    }
    if (n->n_drivers == AGENT_MAX_DRIVERS)
        return st_err_set(err, -E2BIG, "too many drivers");
    /* The kind string must outlive facts: keep it in the advertised list. */
    json_array_append_new(n->kinds, json_string(kind));
    n->drivers[n->n_drivers++] = (struct node_driver){
        .kind = json_string_value(json_array_get(n->kinds, json_array_size(n->kinds) - 1)),
        .drv = drv};
    if (json_is_true(json_object_get(facts, "simulated")))
        n->simulated = true;
    json_t *cap = json_object_get(facts, "capacity");
    if (json_is_object(cap))
        json_object_update(n->capacity, cap);
    return 0;
}

static bool node_name_valid(const char *name)
{
    size_t len = strlen(name);
    if (len == 0 || len > AGENT_NODE_NAME_MAX || name[0] == '.' || name[0] == '-')
        return false;
    for (const char *p = name; *p; p++) {
        if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
              *p == '.' || *p == '_' || *p == '-'))
            return false;
    }
    return true;
}

static void node_free(struct agent_node *n)
{
    if (!n)
        return;
    for (size_t i = 0; i < n->q_len; i++)
        free(n->queue[n->q_head + i]);
    free(n->queue);
    json_decref(n->servers);
    json_decref(n->kinds);
    json_decref(n->capacity);
    st_agent_client_free(n->watch_client);
    for (size_t i = 0; i < n->n_workers; i++)
        st_agent_client_free(n->worker_clients[i]);
    free(n->worker_clients);
    free(n->workers);
    pthread_mutex_destroy(&n->lock);
    pthread_cond_destroy(&n->cond);
    free(n->name);
    free(n->data_dir);
    free(n);
}

static struct agent_node *node_new(struct st_agent *a, const char *name, const char *data_dir,
                                   json_t *host_capacity)
{
    struct agent_node *n = st_new0(struct agent_node, 1);
    n->agent = a;
    n->name = st_strdup(name);
    n->data_dir = st_strdup(data_dir);
    n->kinds = json_array();
    n->capacity = json_deep_copy(host_capacity);
    n->servers = json_object();
    pthread_mutex_init(&n->lock, NULL);
    cond_init_mono(&n->cond);
    n->ctx = (struct st_driver_ctx){
        .data_dir = n->data_dir, .node_name = n->name, .image_path = node_image_path, .agent = n};
    return n;
}

/* ---- talking to the controller ---- */

static void heartbeat(struct agent_node *n, struct st_agent_client *c)
{
    struct st_agent *a = n->agent;
    pthread_mutex_lock(&n->lock);
    size_t instances = json_object_size(n->servers);
    pthread_mutex_unlock(&n->lock);
    st_autoptr(json_t) body = json_pack(
        "{s:O,s:O,s:s,s:{},s:i,s:{s:I},s:b}", "drivers", n->kinds, "capacity", n->capacity,
        "availability_zone", a->az, "labels", "lease_seconds", (int)a->lease_s, "usage",
        "instances", (json_int_t)instances, "simulated", n->simulated);
    /* Every heartbeat carries the ratios, so a restart with new ones applies them. */
    json_object_set_new(body, "allocation_ratio",
                        json_pack("{s:f,s:f,s:f}", "cpu", a->cpu_ratio, "memory", a->ram_ratio,
                                  "disk", a->disk_ratio));
    st_autofree char *path = st_sprintf("/internal/v1/nodes/%s", n->name);
    st_autoptr(st_err) err = NULL;
    int r = st_agent_client_request(c, "PUT", path, body, 0, NULL, NULL, &err);
    int64_t now = mono_ms();
    int64_t period = a->lease_s * 1000 / 3;
    if (r == 0) {
        count(&a->heartbeats);
        n->hb_backoff_ms = 0;
        n->next_heartbeat_ms = now + period;
        if (n->hb_failing)
            st_log_info("agent_heartbeat_recovered", "node=%s", n->name);
        n->hb_failing = false;
        if (!n->registered) {
            n->registered = true;
            if (!n->fleet) {
                st_autofree char *kinds = st_json_dumps(n->kinds);
                st_autofree char *cap = st_json_dumps(n->capacity);
                st_log_info("agent_node_registered",
                            "node=%s controller=%s drivers=%s capacity=%s simulated=%s", n->name,
                            a->controller_url, kinds, cap, n->simulated ? "true" : "false");
            }
            unsigned done = __atomic_add_fetch(&a->nodes_registered, 1, __ATOMIC_ACQ_REL);
            if (done == a->n_nodes) {
                int64_t ns = st_time_mono_ns() - a->t0_ns;
                __atomic_store_n(&a->register_all_ns, ns, __ATOMIC_RELEASE);
                st_log_info("agent_registered", "nodes=%zu ms=%.1f", a->n_nodes, ns / 1e6);
            }
        }
        return;
    }
    if (r == -ECANCELED)
        return;
    count(&a->heartbeat_errors);
    n->hb_backoff_ms = backoff_next(n->hb_backoff_ms,
                                    period > AGENT_BACKOFF_MIN_MS ? period : AGENT_BACKOFF_MIN_MS);
    n->next_heartbeat_ms = now + n->hb_backoff_ms;
    if (!n->hb_failing || !n->fleet)
        st_log_warn("agent_heartbeat_failed", "node=%s retry_ms=%lld error=\"%s\"", n->name,
                    (long long)n->hb_backoff_ms, st_err_msg(err));
    n->hb_failing = true;
}

/* Takes an assignment list into the map: new and changed servers are
 * queued for reconciliation; with a full list, servers no longer in it
 * leave the map (their instances are then garbage). */
static void node_apply(struct agent_node *n, json_t *servers, bool full)
{
    st_autoptr(json_t) seen = full ? json_object() : NULL;
    pthread_mutex_lock(&n->lock);
    size_t i;
    json_t *doc;
    json_array_foreach(servers, i, doc)
    {
        const char *id = json_string_value(json_object_get(doc, "id"));
        if (!id || !st_path_component_valid(id) || id[0] == '.')
            continue;
        json_t *entry = json_object_get(n->servers, id);
        if (!entry) {
            entry = json_object();
            json_object_set_new(n->servers, id, entry);
        }
        json_object_set(entry, "doc", doc);
        enqueue_locked(n, id);
        if (seen)
            json_object_set_new(seen, id, json_true());
        json_t *image = json_object_get(json_object_get(doc, "spec"), "image");
        st_image_cache_expect(n->agent->images, json_string_value(json_object_get(image, "id")),
                              json_string_value(json_object_get(image, "checksum")));
    }
    if (seen) {
        const char *id;
        json_t *entry;
        void *tmp;
        json_object_foreach_safe(n->servers, tmp, id, entry)
        {
            if (!json_object_get(seen, id) && !entry_flag(entry, "busy"))
                json_object_del(n->servers, id);
        }
    }
    pthread_cond_broadcast(&n->cond);
    pthread_mutex_unlock(&n->lock);
}

/* Instances a driver has that no assignment names any more: destroyed.
 * Runs only right after a successful full list. */
static void node_gc(struct agent_node *n)
{
    for (size_t d = 0; d < n->n_drivers; d++) {
        const struct st_driver *drv = n->drivers[d].drv;
        if (!drv->list)
            continue;
        st_autoptr(json_t) ids = NULL;
        st_autoptr(st_err) err = NULL;
        if (drv->list(&n->ctx, &ids, &err) < 0) {
            st_log_warn("agent_gc_failed", "node=%s driver=%s error=\"%s\"", n->name, drv->name,
                        st_err_msg(err));
            continue;
        }
        size_t i;
        json_t *v;
        json_array_foreach(ids, i, v)
        {
            const char *id = json_string_value(v);
            if (!id)
                continue;
            pthread_mutex_lock(&n->lock);
            bool assigned = json_object_get(n->servers, id) != NULL;
            pthread_mutex_unlock(&n->lock);
            if (assigned)
                continue;
            st_autoptr(st_err) derr = NULL;
            int r = drv->destroy(&n->ctx, id, &derr);
            count(&n->agent->actions);
            if (r < 0)
                st_log_warn("agent_gc_failed", "node=%s server=%s driver=%s error=\"%s\"", n->name,
                            id, drv->name, st_err_msg(derr));
            else
                st_log_info("agent_gc", "node=%s server=%s driver=%s reason=\"not assigned\"",
                            n->name, id, drv->name);
            if (r == 0 && !n->fleet &&
                st_netplan_instance_release(n->agent->netplan, id, &derr) < 0)
                st_log_warn("agent_gc_failed", "node=%s server=%s what=network error=\"%s\"",
                            n->name, id, st_err_msg(derr));
        }
    }
}

/* One assignment list request: a full one when due (first, every resync_s,
 * after a 410), else the changes after the last revision, waiting up to
 * wait_s for one. */
static int node_poll(struct agent_node *n, struct st_agent_client *c, unsigned wait_s,
                     struct st_err **err)
{
    struct st_agent *a = n->agent;
    for (int attempt = 0; attempt < 2; attempt++) {
        int64_t now = mono_ms();
        bool full = n->revision == 0 || now >= n->next_resync_ms;
        st_autofree char *path =
            st_sprintf("/internal/v1/nodes/%s/servers?after=%lld&wait=%u", n->name,
                       full ? 0LL : (long long)n->revision, full ? 0 : wait_s);
        st_autoptr(json_t) resp = NULL;
        int r = st_agent_client_request(
            c, "GET", path, NULL, (int)(full ? 0 : wait_s) + AGENT_POLL_SLACK_S, NULL, &resp, err);
        if (r == -ESTALE) { /* the revision was compacted away: list everything again */
            st_err_clear(err);
            n->revision = 0;
            continue;
        }
        if (r < 0)
            return r;
        json_t *servers = json_object_get(resp, "servers");
        if (!json_is_array(servers))
            return st_err_set(err, -EPROTO, "GET %s: answer has no 'servers' list", path);
        count(&a->polls);
        json_int_t rev = json_integer_value(json_object_get(resp, "revision"));
        node_apply(n, servers, full);
        if (rev > 0)
            n->revision = rev;
        if (full) {
            n->next_resync_ms = now + (int64_t)a->resync_s * 1000;
            node_gc(n);
        }
        return 0;
    }
    return st_err_set(err, -ESTALE, "assignments of node %s: revision compacted twice", n->name);
}

/* ---- reconciling one server ---- */

/* Trims the console log to its cap, then pushes its tail (≤ 64 KiB, from a
 * line start) when it grew. What a trim drops is counted, so the position
 * pushed (dropped + size) only grows: a trim alone sends nothing, and a log
 * that was trimmed and grew back to the same size is still sent. */
static void push_console(struct agent_node *n, struct st_agent_client *c,
                         const struct st_driver *drv, const char *id)
{
    if (!drv->console_path)
        return;
    st_autofree char *path = NULL;
    if (drv->console_path(&n->ctx, id, &path, NULL) < 0 || !path)
        return;
    struct st_container_trim trim;
    st_autoptr(st_err) terr = NULL;
    if (st_container_console_trim(path, n->agent->console_log_max, &trim, &terr) < 0)
        st_log_warn("agent_console_trim_failed", "node=%s server=%s error=\"%s\"", n->name, id,
                    st_err_msg(terr));
    else if (trim.dropped)
        st_log_debug("agent_console_trimmed", "node=%s server=%s dropped=%llu how=%s", n->name, id,
                     (unsigned long long)trim.dropped, trim.collapsed ? "collapse" : "copy");
    st_autoclose int fd = open(path, O_RDONLY | O_CLOEXEC);
    struct stat st;
    if (fd < 0 || fstat(fd, &st) < 0)
        return;
    pthread_mutex_lock(&n->lock);
    json_t *entry = json_object_get(n->servers, id);
    json_int_t dropped = json_integer_value(json_object_get(entry, "console_dropped"));
    if (entry && trim.dropped) {
        dropped += (json_int_t)trim.dropped;
        json_object_set_new(entry, "console_dropped", json_integer(dropped));
    }
    json_t *pushed = json_object_get(entry, "console");
    bool same = !entry || (pushed && json_integer_value(pushed) == dropped + st.st_size);
    pthread_mutex_unlock(&n->lock);
    if (same)
        return;
    off_t off = st.st_size > ST_COMPUTE_CONSOLE_MAX ? st.st_size - ST_COMPUTE_CONSOLE_MAX : 0;
    size_t want = (size_t)(st.st_size - off);
    st_autofree char *buf = st_xcalloc(want + 1, 1);
    ssize_t got = pread(fd, buf, want, off);
    if (got < 0)
        return;
    const char *start = buf;
    if (off > 0 || dropped > 0) { /* do not begin inside a line (or a UTF-8 sequence) */
        const char *nl = memchr(buf, '\n', (size_t)got);
        if (nl)
            start = nl + 1;
    }
    st_autofree char *url = st_sprintf("/internal/v1/servers/%s/console", id);
    st_autoptr(st_err) err = NULL;
    int r = st_agent_client_put_text(c, url, start, (size_t)(buf + got - start), &err);
    if (r < 0) {
        if (r != -ECANCELED)
            st_log_debug("agent_console_failed", "node=%s server=%s error=\"%s\"", n->name, id,
                         st_err_msg(err));
        return;
    }
    count(&n->agent->console_pushes);
    pthread_mutex_lock(&n->lock);
    entry = json_object_get(n->servers, id);
    if (entry)
        json_object_set_new(entry, "console", json_integer(dropped + got + off));
    pthread_mutex_unlock(&n->lock);
}

/* A server with ports runs in the network namespace netplan prepared: the
 * driver is given the document with "netns" (the path) added. *ret_doc is
 * a new reference to use in place of doc. */
static int prepare_network(struct agent_node *n, struct st_agent_client *c, json_t *doc,
                           json_t **ret_doc, struct st_err **err)
{
    *ret_doc = json_incref(doc);
    json_t *ports = json_object_get(json_object_get(doc, "spec"), "ports");
    if (n->fleet || json_array_size(ports) == 0)
        return 0;
    if (!n->agent->netplan)
        return st_err_set(err, -EOPNOTSUPP,
                          "node %s cannot plug ports: networking is not available here", n->name);
    st_autofree char *netns = NULL;
    json_t *dns = NULL;
    int r = st_netplan_instance_prepare(n->agent->netplan, c, doc, &netns, &dns, err);
    if (r < 0)
        return st_err_prefix(err, r, "plugging the server's ports");
    if (netns) {
        json_t *copy = json_copy(doc);
        json_object_set_new(copy, "netns", json_string(netns));
        json_object_set_new(copy, "dns_nameservers", dns ? dns : json_array());
        dns = NULL;
        json_decref(*ret_doc);
        *ret_doc = copy;
    }
    json_decref(dns);
    return 0;
}

static int run_action(struct agent_node *n, struct st_agent_client *c, const struct st_driver *drv,
                      json_t *doc_in, const char *id, enum st_agent_action action,
                      struct st_err **err)
{
    struct st_driver_ctx *ctx = &n->ctx;
    int grace = (int)n->agent->stop_grace_s;
    int r = 0;
    st_autoptr(json_t) doc = json_incref(doc_in);
    if ((action == ST_AGENT_CREATE_START || action == ST_AGENT_START ||
         action == ST_AGENT_REBOOT) &&
        strcmp(drv->name, "sim") != 0) { /* the test double needs no network */
        json_decref(doc);
        if ((r = prepare_network(n, c, doc_in, &doc, err)) < 0)
            return r;
    }
    switch (action) {
    case ST_AGENT_NONE:
    case ST_AGENT_REPORT:
        return 0;
    case ST_AGENT_CREATE_START:
        r = drv->create(ctx, doc, err);
        if (r < 0)
            return st_err_prefix(err, r, "creating the instance");
        r = drv->start(ctx, doc, err);
        return r < 0 ? st_err_prefix(err, r, "starting the instance") : 0;
    case ST_AGENT_START:
        r = drv->start(ctx, doc, err);
        return r < 0 ? st_err_prefix(err, r, "starting the instance") : 0;
    case ST_AGENT_STOP:
        r = drv->stop(ctx, id, grace, err);
        return r < 0 ? st_err_prefix(err, r, "stopping the instance") : 0;
    case ST_AGENT_REBOOT:
        r = drv->stop(ctx, id, grace, err);
        if (r == 0)
            r = drv->start(ctx, doc, err);
        return r < 0 ? st_err_prefix(err, r, "rebooting the instance") : 0;
    case ST_AGENT_DESTROY:
        r = drv->destroy(ctx, id, err);
        if (r < 0)
            return st_err_prefix(err, r, "deleting the instance");
        if (!n->fleet && (r = st_netplan_instance_release(n->agent->netplan, id, err)) < 0)
            return st_err_prefix(err, r, "unplugging the server's ports");
        return 0;
    }
    return 0;
}

/* PUTs report when it changes the document's status; drops the server from
 * the map once it is DELETED or gone from the controller. */
static void send_report(struct agent_node *n, struct st_agent_client *c, const char *id,
                        json_t *doc, json_t *report)
{
    if (!st_agent_status_changed(doc, report))
        return;
    st_autofree char *path = st_sprintf("/internal/v1/servers/%s/status", id);
    st_autoptr(st_err) err = NULL;
    int r = st_agent_client_request(c, "PUT", path, report, 0, NULL, NULL, &err);
    const char *state = json_string_value(json_object_get(report, "state"));
    if (r == -ENOENT || (r == 0 && state && strcmp(state, "DELETED") == 0)) {
        node_forget(n, id);
        return;
    }
    if (r < 0) {
        if (r != -ECANCELED)
            st_log_warn("agent_report_failed", "node=%s server=%s state=%s error=\"%s\"", n->name,
                        id, state ? state : "?", st_err_msg(err));
        return; /* the next check reports again */
    }
    count(&n->agent->reports);
    st_log_debug("agent_report", "node=%s server=%s state=%s", n->name, id, state);
    node_merge_status(n, id, doc, report);
}

static void reconcile_server(struct agent_node *n, struct st_agent_client *c, const char *id,
                             json_t *doc)
{
    const struct st_driver *drv = node_driver(n, doc);
    json_t *spec = json_object_get(doc, "spec");
    if (!drv) {
        const char *kind = json_string_value(json_object_get(spec, "driver"));
        struct st_agent_decision d = {.action = ST_AGENT_REPORT};
        if (json_is_true(json_object_get(spec, "deleted"))) {
            d.state = "DELETED"; /* nothing of it can exist here */
        } else {
            d.state = "ERROR";
            snprintf(d.fault, sizeof(d.fault), "node %s has no '%s' driver", n->name,
                     kind ? kind : "(none named)");
        }
        st_autoptr(json_t) report = st_agent_status_report(doc, &d, NULL, NULL, st_time_now_ms());
        send_report(n, c, id, doc, report);
        return;
    }

    struct st_instance_info info = {0};
    st_autoptr(st_err) err = NULL;
    int r = drv->state(&n->ctx, id, &info, &err);
    if (r < 0) {
        st_log_warn("agent_state_failed", "node=%s server=%s driver=%s error=\"%s\"", n->name, id,
                    drv->name, st_err_msg(err));
        return;
    }
    struct st_agent_decision d;
    st_agent_decide(doc, &info, &d);
    if (d.action == ST_AGENT_NONE) {
        st_instance_info_clear(&info);
        push_console(n, c, drv, id);
        return;
    }
    struct st_instance_info after = info;
    if (d.action != ST_AGENT_REPORT) {
        st_instance_info_clear(&info);
        int64_t t0 = st_time_mono_ns();
        r = run_action(n, c, drv, doc, id, d.action, &err);
        count(&n->agent->actions);
        double ms = (st_time_mono_ns() - t0) / 1e6;
        if (r < 0)
            st_log_warn("agent_action_failed", "node=%s server=%s action=%s ms=%.1f error=\"%s\"",
                        n->name, id, st_agent_action_name(d.action), ms, st_err_msg(err));
        else if (n->fleet)
            st_log_debug("agent_action", "node=%s server=%s action=%s ms=%.1f", n->name, id,
                         st_agent_action_name(d.action), ms);
        else
            st_log_info("agent_action", "node=%s server=%s action=%s ms=%.1f", n->name, id,
                        st_agent_action_name(d.action), ms);
        after = (struct st_instance_info){0};
        st_autoptr(st_err) serr = NULL;
        if (drv->state(&n->ctx, id, &after, &serr) < 0)
            after = (struct st_instance_info){.state = ST_INSTANCE_ABSENT};
    }
    st_autoptr(json_t) report =
        st_agent_status_report(doc, &d, &after, r < 0 ? st_err_msg(err) : NULL, st_time_now_ms());
    st_instance_info_clear(&after);
    send_report(n, c, id, doc, report);
    if (d.action != ST_AGENT_DESTROY)
        push_console(n, c, drv, id);
}

/* Reconciles one server unless another thread is at it (then it is marked
 * to be done again right after). */
static void reconcile_id(struct agent_node *n, struct st_agent_client *c, const char *id)
{
    pthread_mutex_lock(&n->lock);
    json_t *entry = json_object_get(n->servers, id);
    if (!entry) {
        pthread_mutex_unlock(&n->lock);
        return;
    }
    if (entry_flag(entry, "busy")) {
        entry_set(entry, "again", true);
        pthread_mutex_unlock(&n->lock);
        return;
    }
    entry_set(entry, "busy", true);
    json_t *doc = json_incref(json_object_get(entry, "doc"));
    pthread_mutex_unlock(&n->lock);

    reconcile_server(n, c, id, doc);
    json_decref(doc);

    pthread_mutex_lock(&n->lock);
    entry = json_object_get(n->servers, id);
    if (entry) {
        entry_set(entry, "busy", false);
        if (entry_flag(entry, "again")) {
            entry_set(entry, "again", false);
            enqueue_locked(n, id);
            pthread_cond_signal(&n->cond);
        }
    }
    pthread_mutex_unlock(&n->lock);
}

/* ---- the image cache manager ---- */

struct prune_arg {
    struct agent_node *node;
    struct st_agent_client *client;
};

/* Whether Glance still has the image: HEAD of its file (404: gone). */
static int image_gone(void *userdata, const char *image_id)
{
    struct prune_arg *pa = userdata;
    st_autofree char *url = st_sprintf("/internal/v1/images/%s/file", image_id);
    st_autoptr(st_err) err = NULL;
    int r = st_agent_client_request(pa->client, "HEAD", url, NULL, 0, NULL, NULL, &err);
    if (r == 0)
        return 0;
    if (r == -ENOENT)
        return 1;
    if (r != -ECANCELED)
        st_log_debug("agent_image_check_failed", "node=%s image=%s error=\"%s\"", pa->node->name,
                     image_id, st_err_msg(err));
    return -1;
}

/* One pass over the node's cached images (drivers/rootfs.h says which go). */
static void prune_images(struct agent_node *n, struct st_agent_client *c)
{
    struct st_agent *a = n->agent;
    st_autofree char *images = st_sprintf("%s/images", n->data_dir);
    st_autofree char *instances = st_sprintf("%s/instances", n->data_dir);
    struct prune_arg pa = {n, c};
    struct st_rootfs_prune opts = {
        .max_age_s = a->image_max_age_s,
        .now_s = st_time_now_ms() / 1000,
        .image_gone = image_gone,
        .userdata = &pa,
    };
    unsigned removed = 0;
    st_autoptr(st_err) err = NULL;
    if (st_rootfs_image_prune(images, instances, &opts, &removed, &err) < 0)
        st_log_warn("agent_image_prune_failed", "node=%s error=\"%s\"", n->name, st_err_msg(err));
    else if (removed)
        st_log_info("agent_image_prune", "node=%s removed=%u", n->name, removed);
}

/* ---- threads ---- */

struct worker_arg {
    struct agent_node *node;
    struct st_agent_client *client;
};

static void *worker_main(void *arg)
{
    struct worker_arg wa = *(struct worker_arg *)arg;
    free(arg);
    struct agent_node *n = wa.node;
    struct st_agent *a = n->agent;
    pthread_mutex_lock(&n->lock);
    while (!stopping(a)) {
        int64_t now = mono_ms();
        if (now >= n->next_check_ms) { /* level-triggered: look at every instance again */
            n->next_check_ms = now + a->check_ms;
            enqueue_all_locked(n);
        }
        if (now >= n->next_prune_ms) { /* one worker takes it */
            n->next_prune_ms = now + (int64_t)a->image_prune_s * 1000;
            pthread_mutex_unlock(&n->lock);
            prune_images(n, wa.client);
            pthread_mutex_lock(&n->lock);
            continue;
        }
        char *id = dequeue_locked(n);
        if (!id) {
            int64_t wake =
                n->next_check_ms < n->next_prune_ms ? n->next_check_ms : n->next_prune_ms;
            struct timespec ts = mono_deadline(wake);
            pthread_cond_timedwait(&n->cond, &n->lock, &ts);
            continue;
        }
        pthread_mutex_unlock(&n->lock);
        reconcile_id(n, wa.client, id);
        free(id);
        pthread_mutex_lock(&n->lock);
    }
    pthread_mutex_unlock(&n->lock);
    return NULL;
}

static void *watcher_main(void *arg)
{
    struct agent_node *n = arg;
    struct st_agent *a = n->agent;
    while (!stopping(a)) {
        st_autoptr(st_err) err = NULL;
        int r = node_poll(n, n->watch_client, a->poll_wait_s, &err);
        if (r == 0) {
            if (n->poll_failing)
                st_log_info("agent_watch_recovered", "node=%s", n->name);
            n->poll_failing = false;
            n->poll_backoff_ms = 0;
            continue;
        }
        if (r == -ECANCELED)
            break;
        n->poll_backoff_ms = backoff_next(n->poll_backoff_ms, AGENT_BACKOFF_MAX_MS);
        st_log_warn("agent_watch_failed", "node=%s retry_ms=%lld error=\"%s\"", n->name,
                    (long long)n->poll_backoff_ms, st_err_msg(err));
        n->poll_failing = true;
        agent_sleep_until(a, mono_ms() + n->poll_backoff_ms);
    }
    return NULL;
}

/* A simulated node's turn: list its assignments (no wait) and reconcile
 * every one of them inline (the sim driver answers from small files). */
static void fleet_poll(struct agent_node *n, struct st_agent_client *c)
{
    struct st_agent *a = n->agent;
    st_autoptr(st_err) err = NULL;
    int r = node_poll(n, c, 0, &err);
    int64_t now = mono_ms();
    if (r < 0) {
        if (r == -ECANCELED)
            return;
        n->poll_backoff_ms = backoff_next(n->poll_backoff_ms, AGENT_BACKOFF_MAX_MS);
        n->next_poll_ms = now + n->poll_backoff_ms;
        if (!n->poll_failing)
            st_log_warn("agent_watch_failed", "node=%s retry_ms=%lld error=\"%s\"", n->name,
                        (long long)n->poll_backoff_ms, st_err_msg(err));
        n->poll_failing = true;
        return;
    }
    n->poll_failing = false;
    n->poll_backoff_ms = 0;
    n->next_poll_ms = now + a->sim_poll_ms;
    pthread_mutex_lock(&n->lock);
    st_autoptr(json_t) ids = json_array();
    const char *id;
    json_t *entry;
    json_object_foreach(n->servers, id, entry) json_array_append_new(ids, json_string(id));
    /* the queue is not used for fleet nodes: everything is done now */
    while (n->q_len) {
        free(dequeue_locked(n));
    }
    pthread_mutex_unlock(&n->lock);
    size_t i;
    json_t *v;
    json_array_foreach(ids, i, v)
    {
        if (stopping(a))
            return;
        reconcile_id(n, c, json_string_value(v));
    }
}

static void *housekeeper_main(void *arg)
{
    struct housekeeper *hk = arg;
    struct st_agent *a = hk->agent;
    while (!stopping(a)) {
        int64_t next = mono_ms() + 1000;
        for (size_t i = hk->index; i < a->n_nodes && !stopping(a); i += a->n_hk) {
            struct agent_node *n = a->nodes[i];
            if (mono_ms() >= n->next_heartbeat_ms)
                heartbeat(n, hk->client);
            if (n->fleet && n->registered && mono_ms() >= n->next_poll_ms)
                fleet_poll(n, hk->client);
            if (n->next_heartbeat_ms < next)
                next = n->next_heartbeat_ms;
            if (n->fleet && n->registered && n->next_poll_ms < next)
                next = n->next_poll_ms;
        }
        agent_sleep_until(a, next);
    }
    return NULL;
}

/* ---- start and stop ---- */

static int read_token(const char *path, char **ret, struct st_err **err)
{
    st_autofree char *text = NULL;
    size_t len = 0;
    int r = st_read_file(path, AGENT_TOKEN_MAX, &text, &len, err);
    if (r < 0)
        return st_err_prefix(err, r,
                             "node token: copy the controller's <data-dir>/node-token here "
                             "or name it with --node-token-file");
    while (len > 0 && (text[len - 1] == '\n' || text[len - 1] == '\r' || text[len - 1] == ' '))
        text[--len] = '\0';
    if (len == 0)
        return st_err_set(err, -EINVAL, "node token file %s is empty", path);
    *ret = st_steal(&text);
    return 0;
}

/* The drivers of the real node: the ones named, or every built-in one whose
 * probe succeeds (the sim test double only when named). */
static int configure_drivers(struct agent_node *n, const char *list, struct st_err **err)
{
    if (!list || !list[0]) {
        static const char *const probe[] = {"container", "vm"};
        for (size_t i = 0; i < ST_ARRAY_SIZE(probe); i++) {
            const struct st_driver *drv = st_driver_lookup(probe[i]);
            if (!drv)
                continue;
            int r = node_add_driver(n, drv, false, err);
            if (r < 0)
                return r;
        }
        if (n->n_drivers == 0)
            st_log_warn("agent_no_driver",
                        "node=%s hint=\"no driver can run here: the node registers but gets "
                        "no servers; --drivers sim runs the simulated test double\"",
                        n->name);
        return 0;
    }
    st_autofree char *copy = st_strdup(list);
    char *save = NULL;
    for (char *name = strtok_r(copy, ",", &save); name; name = strtok_r(NULL, ",", &save)) {
        while (*name == ' ')
            name++;
        const struct st_driver *drv = st_driver_lookup(name);
        if (!drv)
            return st_err_set(err, -EINVAL, "unknown driver '%s' (built in: %s)", name,
                              st_driver_lookup("container") ? "container, sim" : "sim");
        int r = node_add_driver(n, drv, true, err);
        if (r < 0)
            return r;
    }
    return 0;
}

static bool is_sim_only(struct agent_node *n)
{
    for (size_t i = 0; i < n->n_drivers; i++)
        if (strcmp(n->drivers[i].drv->name, "sim") != 0)
            return false;
    return true;
}

static int start_thread(pthread_t *t, void *(*fn)(void *), void *arg, struct st_err **err)
{
    int e = pthread_create(t, NULL, fn, arg);
    return e ? st_err_set(err, -e, "starting agent thread: %s", strerror(e)) : 0;
}

static int agent_threads_start(struct st_agent *a, struct st_err **err)
{
    int r = st_reaper_start(ST_REAPER_DEFAULT_GRACE_MS, &a->reaper, err);
    if (r < 0)
        return r;
    for (size_t i = 0; i < a->n_nodes; i++) {
        struct agent_node *n = a->nodes[i];
        if (n->fleet)
            continue;
        n->watch_client = st_agent_client_new(a->controller_url, a->token, &a->stop);
        r = start_thread(&n->watcher, watcher_main, n, err);
        if (r < 0)
            return r;
        n->watcher_started = true;
        n->n_workers = a->workers;
        n->workers = st_new0(pthread_t, n->n_workers);
        n->worker_clients = st_new0(struct st_agent_client *, n->n_workers);
        for (size_t w = 0; w < n->n_workers; w++) {
            n->worker_clients[w] = st_agent_client_new(a->controller_url, a->token, &a->stop);
            struct worker_arg *wa = st_new0(struct worker_arg, 1);
            *wa = (struct worker_arg){n, n->worker_clients[w]};
            r = start_thread(&n->workers[w], worker_main, wa, err);
            if (r < 0) {
                free(wa);
                return r;
            }
            n->n_workers_started++;
        }
    }
    for (size_t i = 0; i < a->n_hk; i++) {
        struct housekeeper *hk = &a->hk[i];
        r = start_thread(&hk->thread, housekeeper_main, hk, err);
        if (r < 0)
            return r;
        hk->started = true;
    }
    return 0;
}

int st_agent_start(const struct st_agent_config *cfg, struct st_agent **ret, struct st_err **err)
{
    if (!cfg->controller_url || !cfg->controller_url[0])
        return st_err_set(err, -EINVAL, "agent: no controller URL");
    if (!cfg->node_name || !node_name_valid(cfg->node_name))
        return st_err_set(err, -EINVAL,
                          "invalid node name '%s': use 1-%d letters, digits, '.', '_' or '-'",
                          cfg->node_name ? cfg->node_name : "", AGENT_NODE_NAME_MAX);
    if (!cfg->data_dir || !cfg->data_dir[0])
        return st_err_set(err, -EINVAL, "agent: no data dir");
    if (cfg->sim_nodes > 100000)
        return st_err_set(err, -EINVAL, "sim-nodes %u is more than 100000", cfg->sim_nodes);
    const double ratios[] = {cfg->cpu_allocation_ratio, cfg->ram_allocation_ratio,
                             cfg->disk_allocation_ratio};
    for (size_t i = 0; i < ST_ARRAY_SIZE(ratios); i++)
        if (!(ratios[i] >= 0 && ratios[i] <= ST_AGENT_MAX_ALLOCATION_RATIO))
            return st_err_set(err, -EINVAL, "allocation ratio %g is not above 0 and at most %g",
                              ratios[i], ST_AGENT_MAX_ALLOCATION_RATIO);

    st_autoptr(st_agent) a = st_new0(struct st_agent, 1);
    a->t0_ns = st_time_mono_ns();
    pthread_mutex_init(&a->lock, NULL);
    cond_init_mono(&a->cond);
    a->controller_url = st_strdup(cfg->controller_url);
    a->data_dir = st_strdup(cfg->data_dir);
    a->az = st_strdup(cfg->availability_zone ? cfg->availability_zone : "nova");
    a->cpu_ratio = cfg->cpu_allocation_ratio > 0 ? cfg->cpu_allocation_ratio
                                                 : ST_AGENT_DEFAULT_CPU_ALLOCATION_RATIO;
    a->ram_ratio = cfg->ram_allocation_ratio > 0 ? cfg->ram_allocation_ratio
                                                 : ST_AGENT_DEFAULT_RAM_ALLOCATION_RATIO;
    a->disk_ratio = cfg->disk_allocation_ratio > 0 ? cfg->disk_allocation_ratio
                                                   : ST_AGENT_DEFAULT_DISK_ALLOCATION_RATIO;
    a->lease_s = cfg->lease_s ? cfg->lease_s : ST_AGENT_DEFAULT_LEASE_S;
    a->poll_wait_s = cfg->poll_wait_s ? cfg->poll_wait_s : 20;
    if (a->poll_wait_s > 60)
        a->poll_wait_s = 60;
    a->check_ms = cfg->check_interval_ms ? cfg->check_interval_ms : 5000;
    a->resync_s = cfg->resync_s ? cfg->resync_s : 60;
    a->sim_poll_ms = cfg->sim_poll_ms ? cfg->sim_poll_ms : 5000;
    a->workers = cfg->workers ? cfg->workers : 4;
    a->stop_grace_s = cfg->stop_grace_s ? cfg->stop_grace_s : 10;
    a->console_log_max =
        cfg->console_log_max ? cfg->console_log_max : ST_AGENT_DEFAULT_CONSOLE_LOG_MAX;
    a->image_max_age_s = cfg->image_cache_max_age_s ? cfg->image_cache_max_age_s
                                                    : ST_AGENT_DEFAULT_IMAGE_CACHE_MAX_AGE_S;
    a->image_prune_s = ST_AGENT_IMAGE_PRUNE_INTERVAL_S;
    const char *prune_env = getenv(ST_AGENT_IMAGE_PRUNE_INTERVAL_ENV);
    if (prune_env && atoi(prune_env) > 0)
        a->image_prune_s = (unsigned)atoi(prune_env);

    int r = read_token(cfg->node_token_file ? cfg->node_token_file : "", &a->token, err);
    if (r < 0)
        return r;
    r = st_mkdir_p(a->data_dir, 0700, err);
    if (r < 0)
        return st_err_prefix(err, r, "agent data dir");
    st_autoptr(json_t) host = NULL;
    r = st_host_capacity(a->data_dir, NULL, &host, err);
    if (r < 0)
        return st_err_prefix(err, r, "probing host capacity");

    a->image_client = st_agent_client_new(a->controller_url, a->token, &a->stop);
    st_autofree char *images = st_sprintf("%s/images", a->data_dir);
    r = st_image_cache_new(images, a->image_client, &a->images, err);
    if (r < 0)
        return r;

    a->n_nodes = 1 + cfg->sim_nodes;
    a->nodes = st_new0(struct agent_node *, a->n_nodes);
    a->nodes[0] = node_new(a, cfg->node_name, a->data_dir, host);
    r = configure_drivers(a->nodes[0], cfg->drivers, err);
    if (r < 0)
        return r;
    for (size_t i = 1; i < a->n_nodes; i++) {
        st_autofree char *name = st_sprintf("%s-sim-%04zu", cfg->node_name, i);
        st_autofree char *dir = st_sprintf("%s/sim/%s", a->data_dir, name);
        r = st_mkdir_p(dir, 0700, err);
        if (r < 0)
            return r;
        struct agent_node *n = node_new(a, name, dir, host);
        a->nodes[i] = n;
        n->index = i;
        n->fleet = true;
        r = node_add_driver(n, st_driver_lookup("sim"), true, err);
        if (r < 0)
            return r;
        /* spread the first polls over one period */
        n->next_poll_ms = mono_ms() + (int64_t)(i * a->sim_poll_ms / a->n_nodes);
    }
    a->n_hk = cfg->sim_nodes ? (cfg->sim_nodes < AGENT_MAX_HOUSEKEEPERS ? cfg->sim_nodes
                                                                        : AGENT_MAX_HOUSEKEEPERS)
                             : 1;
    a->hk = st_new0(struct housekeeper, a->n_hk);
    for (size_t i = 0; i < a->n_hk; i++)
        a->hk[i] = (struct housekeeper){
            .agent = a,
            .index = i,
            .client = st_agent_client_new(a->controller_url, a->token, &a->stop)};

    if (!cfg->no_network && a->nodes[0]->n_drivers > 0 && !is_sim_only(a->nodes[0])) {
        struct st_netplan_config ncfg = {
            .node_name = cfg->node_name,
            .data_dir = a->data_dir,
            .controller_url = a->controller_url,
            .token = a->token,
            .vtep = cfg->vtep,
            .external_bridge = cfg->external_bridge,
            .poll_wait_s = a->poll_wait_s,
            .stop = &a->stop,
        };
        st_autoptr(st_err) nerr = NULL;
        r = st_netplan_start(&ncfg, &a->netplan, &nerr);
        if (r == -EOPNOTSUPP)
            st_log_warn("agent_no_network", "node=%s reason=\"%s\"", cfg->node_name,
                        st_err_msg(nerr));
        else if (r < 0)
            return st_err_set(err, r, "%s", st_err_msg(nerr));
    }
    r = agent_threads_start(a, err);
    if (r < 0)
        return r;
    st_autofree char *kinds = st_json_dumps(a->nodes[0]->kinds);
    st_log_info("agent_started",
                "node=%s controller=%s data_dir=%s drivers=%s sim_nodes=%u lease_s=%u",
                cfg->node_name, a->controller_url, a->data_dir, kinds, cfg->sim_nodes, a->lease_s);
    *ret = st_steal(&a);
    return 0;
}

void st_agent_stop(struct st_agent *a)
{
    if (!a)
        return;
    __atomic_store_n(&a->stop, 1, __ATOMIC_RELEASE);
    pthread_mutex_lock(&a->lock);
    pthread_cond_broadcast(&a->cond);
    pthread_mutex_unlock(&a->lock);
    st_agent_client_wake(a->image_client);
    for (size_t i = 0; i < a->n_hk; i++)
        st_agent_client_wake(a->hk[i].client);
    for (size_t i = 0; i < a->n_nodes; i++) {
        struct agent_node *n = a->nodes[i];
        if (!n)
            continue;
        st_agent_client_wake(n->watch_client);
        for (size_t w = 0; w < n->n_workers; w++)
            st_agent_client_wake(n->worker_clients[w]);
        pthread_mutex_lock(&n->lock);
        pthread_cond_broadcast(&n->cond);
        pthread_mutex_unlock(&n->lock);
    }
    st_netplan_wake(a->netplan);
    for (size_t i = 0; i < a->n_hk; i++) {
        if (a->hk[i].started)
            pthread_join(a->hk[i].thread, NULL);
        st_agent_client_free(a->hk[i].client);
    }
    free(a->hk);
    for (size_t i = 0; i < a->n_nodes; i++) {
        struct agent_node *n = a->nodes[i];
        if (!n)
            continue;
        if (n->watcher_started)
            pthread_join(n->watcher, NULL);
        for (size_t w = 0; w < n->n_workers_started; w++)
            pthread_join(n->workers[w], NULL);
        node_free(n);
    }
    free(a->nodes);
    st_netplan_stop(a->netplan);
    st_reaper_stop(a->reaper);
    st_image_cache_free(a->images);
    st_agent_client_free(a->image_client);
    if (a->token)
        explicit_bzero(a->token, strlen(a->token));
    free(a->token);
    free(a->controller_url);
    free(a->data_dir);
    free(a->az);
    pthread_mutex_destroy(&a->lock);
    pthread_cond_destroy(&a->cond);
    free(a);
}

void st_agent_get_stats(struct st_agent *a, struct st_agent_stats *ret)
{
    *ret = (struct st_agent_stats){
        .nodes = (unsigned)a->n_nodes,
        .nodes_registered = __atomic_load_n(&a->nodes_registered, __ATOMIC_ACQUIRE),
        .heartbeats = __atomic_load_n(&a->heartbeats, __ATOMIC_RELAXED),
        .heartbeat_errors = __atomic_load_n(&a->heartbeat_errors, __ATOMIC_RELAXED),
        .polls = __atomic_load_n(&a->polls, __ATOMIC_RELAXED),
        .reports = __atomic_load_n(&a->reports, __ATOMIC_RELAXED),
        .actions = __atomic_load_n(&a->actions, __ATOMIC_RELAXED),
        .console_pushes = __atomic_load_n(&a->console_pushes, __ATOMIC_RELAXED),
        .register_all_ms = __atomic_load_n(&a->register_all_ns, __ATOMIC_ACQUIRE) / 1e6,
    };
}
