/* The router rescheduling controller (router_ha.h): its thread, the tick
 * that decides whether a full pass is due, and the memory of which routers
 * were already reported as waiting for a host, so each is logged once. The
 * passes themselves, and every write, are network/router_ha.c's. */
#include "ctrl/router_ha.h"

#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "lib/cleanup.h"
#include "lib/json.h"
#include "lib/log.h"
#include "lib/times.h"
#include "network/model.h"
#include "network/router_ha.h"
#include "store/kv.h"

#define DEFAULT_INTERVAL_MS 2000
#define DEFAULT_RESYNC_MS   60000
#define STOP_POLL_MS        200 /* bounds how long stop waits */

struct st_ctrl_router_ha {
    struct st_kv *kv;
    struct st_ctrl_router_ha_config cfg;
    pthread_t thread;
    bool stop;
    json_t *hosts;     /* the usable nodes at the last pass; NULL before the first */
    json_t *stranded;  /* {"<router id>": host | null} already logged as waiting */
    int64_t watch_rev; /* router changes after this revision are not yet passed over */
    struct st_ctrl_router_ha_stats stats;
};

#define STAT_ADD(c, field, n) __atomic_add_fetch(&(c)->stats.field, (n), __ATOMIC_RELAXED)

static bool stopping(struct st_ctrl_router_ha *c)
{
    return __atomic_load_n(&c->stop, __ATOMIC_ACQUIRE);
}

static int64_t now_ms(struct st_ctrl_router_ha *c)
{
    return c->cfg.now_ms ? c->cfg.now_ms(c->cfg.now_userdata) : st_time_now_ms();
}

static int64_t mono_ms(void)
{
    return st_time_mono_ns() / 1000000;
}

static void sleep_ms(int ms)
{
    struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000};
    nanosleep(&ts, NULL);
}

/* Logs the routers newly waiting for a host, and forgets the ones that no
 * longer are (moved, deleted), so a router stranded again is logged again. */
static void note_stranded(struct st_ctrl_router_ha *c, json_t *stranded)
{
    const char *id;
    json_t *host;
    json_object_foreach(stranded, id, host)
    {
        if (json_object_get(c->stranded, id))
            continue;
        STAT_ADD(c, stranded, 1);
        st_log_warn("router_reschedule_waiting", "id=%s host=%s reason=\"no running l3 node\"", id,
                    json_is_string(host) ? json_string_value(host) : "-");
    }
    json_decref(c->stranded);
    c->stranded = json_incref(stranded);
}

/* Whether routers changed since the last pass: a watch that does not wait. */
static bool routers_changed(struct st_ctrl_router_ha *c)
{
    st_autoptr(st_kv_events) ev = NULL;
    st_autoptr(st_err) err = NULL;
    int r = st_kv_watch(c->kv, ST_NETWORK_ROUTERS_PREFIX, c->watch_rev, 0, &ev, &err);
    if (r < 0) {
        if (r != -ESTALE)
            st_log_warn("router_ha_watch_failed", "error=\"%s\"", st_err_msg(err));
        return true; /* compacted or failing: a pass finds out */
    }
    return ev->count > 0;
}

/* One tick: true if it ran a pass that succeeded or had nothing to do. */
static bool tick(struct st_ctrl_router_ha *c, bool *need_pass)
{
    int64_t now = now_ms(c);
    st_autoptr(json_t) hosts = NULL;
    st_autoptr(st_err) err = NULL;
    if (st_router_ha_hosts(c->kv, now, &hosts, &err) < 0) {
        STAT_ADD(c, errors, 1);
        st_log_warn("router_ha_hosts_failed", "error=\"%s\"", st_err_msg(err));
        return false;
    }
    if (!*need_pass && c->hosts && json_equal(hosts, c->hosts) && !routers_changed(c))
        return true;
    /* Changes from here on are seen by the next tick's watch, whether or
     * not this pass read them. */
    int64_t rev = st_kv_revision(c->kv);
    struct st_router_ha_pass pass;
    int r = st_router_ha_reschedule(c->kv, now, &pass, &err);
    STAT_ADD(c, passes, 1);
    STAT_ADD(c, moved, pass.moved);
    STAT_ADD(c, settled, pass.settled);
    if (r < 0) {
        STAT_ADD(c, errors, 1);
        st_log_warn("router_ha_pass_failed", "error=\"%s\"", st_err_msg(err));
        st_router_ha_pass_clear(&pass);
        return false;
    }
    note_stranded(c, pass.stranded);
    size_t failed = pass.failed;
    st_router_ha_pass_clear(&pass);
    if (failed) { /* logged per router; all of them again at the next tick */
        STAT_ADD(c, errors, 1);
        return false;
    }
    json_decref(c->hosts);
    c->hosts = st_steal(&hosts);
    c->watch_rev = rev;
    *need_pass = false;
    return true;
}

static void *router_ha_thread(void *arg)
{
    struct st_ctrl_router_ha *c = arg;
    unsigned interval = c->cfg.interval_ms ? c->cfg.interval_ms : DEFAULT_INTERVAL_MS;
    unsigned resync = c->cfg.resync_ms ? c->cfg.resync_ms : DEFAULT_RESYNC_MS;
    bool need_pass = true;
    int64_t next_resync = mono_ms() + resync;
    while (!stopping(c)) {
        int64_t start = mono_ms();
        if (start >= next_resync) {
            need_pass = true;
            next_resync = start + resync;
        }
        if (!tick(c, &need_pass))
            need_pass = true;
        int64_t next = start + interval;
        for (int64_t now = mono_ms(); now < next && !stopping(c); now = mono_ms())
            sleep_ms(next - now < STOP_POLL_MS ? (int)(next - now) : STOP_POLL_MS);
    }
    return NULL;
}

int st_ctrl_router_ha_start(struct st_kv *kv, const struct st_ctrl_router_ha_config *cfg,
                            struct st_ctrl_router_ha **ret, struct st_err **err)
{
    if (!kv || !ret)
        return st_err_set(err, -EINVAL, "router rescheduling controller: missing store");
    struct st_ctrl_router_ha *c = st_new0(struct st_ctrl_router_ha, 1);
    c->kv = kv;
    if (cfg)
        c->cfg = *cfg;
    c->stranded = json_object();
    int r = pthread_create(&c->thread, NULL, router_ha_thread, c);
    if (r != 0) {
        json_decref(c->stranded);
        free(c);
        return st_err_set(err, -r, "starting the router rescheduling controller: %s", strerror(r));
    }
    st_log_info("router_ha_started", "interval_ms=%u",
                c->cfg.interval_ms ? c->cfg.interval_ms : DEFAULT_INTERVAL_MS);
    *ret = c;
    return 0;
}

void st_ctrl_router_ha_stop(struct st_ctrl_router_ha *c)
{
    if (!c)
        return;
    __atomic_store_n(&c->stop, true, __ATOMIC_RELEASE);
    pthread_join(c->thread, NULL);
    json_decref(c->hosts);
    json_decref(c->stranded);
    free(c);
}

void st_ctrl_router_ha_get_stats(struct st_ctrl_router_ha *c, struct st_ctrl_router_ha_stats *ret)
{
    *ret = (struct st_ctrl_router_ha_stats){
        .passes = __atomic_load_n(&c->stats.passes, __ATOMIC_RELAXED),
        .moved = __atomic_load_n(&c->stats.moved, __ATOMIC_RELAXED),
        .settled = __atomic_load_n(&c->stats.settled, __ATOMIC_RELAXED),
        .stranded = __atomic_load_n(&c->stats.stranded, __ATOMIC_RELAXED),
        .errors = __atomic_load_n(&c->stats.errors, __ATOMIC_RELAXED),
    };
}
