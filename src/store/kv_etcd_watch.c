/* st_kv_watch on etcd: one watch stream per store handle, over every key,
 * fed by a background thread into a window of recent events that all the
 * process's watchers read (as the Kubernetes API server's watch cache).
 *
 * Why not one etcd watch per call: a watch tells what happened under its
 * range and nothing else, so a call could never tell "nothing under this
 * prefix up to revision R" (what a poll, and the revision a quiet watcher
 * moves on to, need); and a watch that starts in the past waits for etcd's
 * catch-up loop (up to 100 ms). The stream over every key sees every
 * revision (each etcd revision is at least one put or delete), so the
 * window knows exactly up to which revision it is complete (`synced`), and a
 * call answers from memory: the events after after_rev under its prefix,
 * else it waits for the next ones. A poll (timeout 0) first reads the
 * current revision, then waits for the stream to reach it, so it sees every
 * write that finished before it.
 *
 * The window holds the events after `base` up to `synced`, at most
 * keep_revs revisions and WINDOW_BYTES bytes; a call from before `base`
 * (older than the window, or from before the handle was opened) reads the
 * missing stretch with a watch of its own from after_rev up to `base`, then
 * goes on from the window. -ESTALE when etcd has compacted that stretch, or
 * when after_rev is older than this process's own compactions (as on
 * SQLite).
 *
 * The stream reconnects on its own (next endpoint when one cannot be
 * reached) from the revision after the last it saw, so no event is lost
 * across an etcd restart; if etcd compacted past it meanwhile, the window
 * restarts at the compaction and older watchers get -ESTALE. While the
 * stream is down a poll fails, and a wait that ends with the stream still
 * down returns its error, so callers see etcd's outage. */
#include "kv_etcd.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "lib/cleanup.h"
#include "lib/json.h"
#include "lib/log.h"
#include "lib/times.h"

#define WINDOW_BYTES     (8 * 1024 * 1024)
#define WINDOW_REVS_MIN  1000
#define WINDOW_REVS_MAX  10000
#define POLL_SYNC_MS     5000  /* how long a poll waits for the stream to catch up */
#define CATCH_UP_MS      15000 /* how long a watch from before the window may take */
#define BACKOFF_FIRST_MS 100
#define BACKOFF_MAX_MS   2000
#define STREAM_START_MS  5000

struct st_etcd_watch {
    struct st_kv_etcd *e;
    pthread_t thread;
    bool started;
    bool stopping; /* atomic */
    CURLM *multi;  /* the stream's; curl_multi_wakeup interrupts it */

    pthread_mutex_t mu;
    pthread_cond_t cond; /* every change below */
    /* the window: events[start .. start + count), in revision order */
    struct st_kv_event *events;
    size_t start, count, cap;
    size_t bytes;
    int64_t base;   /* every event after base is in the window */
    int64_t synced; /* every event up to synced has arrived */
    int64_t keep_revs;
    bool connected;
    int err_code; /* the stream's last failure, while it is down */
    char *err_msg;
    bool woken;
};

/* ---- one watch stream ------------------------------------------------ */

struct stream {
    /* <0: fail the stream (*err set), >0: done, 0: go on */
    int (*on_result)(struct stream *s, json_t *result, struct st_err **err);
    void *userdata;
    CURL *curl;
    char *buf;
    size_t len, cap;
    long status;
    bool ended;
    int r;
    struct st_err *err;
};

static size_t stream_write(char *p, size_t size, size_t n, void *userdata)
{
    struct stream *s = userdata;
    size_t add = size * n;
    if (s->ended)
        return 0;
    if (s->len + add + 1 > s->cap) {
        s->cap = (s->len + add + 1) * 2;
        s->buf = st_xrealloc(s->buf, s->cap);
    }
    memcpy(s->buf + s->len, p, add);
    s->len += add;
    s->buf[s->len] = 0;
    if (!s->status)
        curl_easy_getinfo(s->curl, CURLINFO_RESPONSE_CODE, &s->status);
    if (s->status != 200)
        return add; /* an error body: read whole, reported at the end */

    /* the gateway writes one JSON object per line: {"result": ...} or
     * {"error": ...} */
    char *line = s->buf, *nl;
    while ((nl = memchr(line, '\n', (size_t)(s->buf + s->len - line)))) {
        st_autoptr(json_t) msg = json_loadb(line, (size_t)(nl - line), 0, NULL);
        line = nl + 1;
        json_t *result = json_object_get(msg, "result");
        int r;
        if (json_is_object(result)) {
            r = s->on_result(s, result, &s->err);
        } else {
            json_t *error = json_object_get(msg, "error");
            const char *m = json_string_value(json_object_get(error, "message"));
            r = st_err_set(&s->err, -EIO, "etcd watch stream: %s",
                           m     ? m
                           : msg ? "an answer without a result"
                                 : "an answer that is not JSON");
        }
        if (r != 0) {
            s->ended = true;
            s->r = r < 0 ? r : 0;
            return 0; /* ends the transfer */
        }
    }
    s->len -= (size_t)(line - s->buf);
    memmove(s->buf, line, s->len);
    return add;
}

static bool stop_requested(const bool *stop)
{
    return stop && __atomic_load_n(stop, __ATOMIC_ACQUIRE);
}

/* Runs a watch of every key, events after `after` (a store revision),
 * until on_result ends it, the stream fails, *stop is set or the deadline
 * (monotonic ns; 0 = none) passes. */
static int stream_run(struct st_kv_etcd *e, CURLM *multi, int64_t after, struct stream *s,
                      int64_t deadline, const bool *stop, struct st_err **err)
{
    st_autoptr(json_t) create = json_object();
    st_etcd_set_b64(create, "key", "", 1);
    st_etcd_set_b64(create, "range_end", "", 1); /* every key */
    st_etcd_set_int(create, "start_revision", st_etcd_rev_from_st(after + 1));
    st_autoptr(json_t) req = json_pack("{s:O}", "create_request", create);
    st_autofree char *body = json_dumps(req, JSON_COMPACT);
    unsigned idx;
    const char *endpoint = st_etcd_endpoint(e, &idx);
    st_autofree char *url = st_sprintf("%s/v3/watch", endpoint);
    char errbuf[CURL_ERROR_SIZE];

    CURL *c = curl_easy_init();
    if (!c || !body)
        abort();
    s->curl = c;
    st_etcd_curl_setup(e, c, url, errbuf);
    curl_easy_setopt(c, CURLOPT_POST, 1L);
    curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, stream_write);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, s);
    curl_multi_add_handle(multi, c);

    CURLcode cc = CURLE_OK;
    bool done = false, timed_out = false;
    while (!done && !s->ended && !stop_requested(stop)) {
        int running = 0;
        curl_multi_perform(multi, &running);
        int left;
        CURLMsg *m;
        while ((m = curl_multi_info_read(multi, &left))) {
            if (m->msg == CURLMSG_DONE && m->easy_handle == c) {
                cc = m->data.result;
                done = true;
            }
        }
        if (done || s->ended)
            break;
        int wait_ms = 1000;
        if (deadline) {
            int64_t left_ms = (deadline - st_time_mono_ns()) / 1000000;
            if (left_ms <= 0) {
                timed_out = true;
                break;
            }
            if (left_ms < wait_ms)
                wait_ms = (int)left_ms;
        }
        curl_multi_poll(multi, NULL, 0, wait_ms, NULL);
    }
    curl_multi_remove_handle(multi, c);
    curl_easy_cleanup(c);
    s->curl = NULL;

    int r = 0;
    if (s->ended) {
        r = s->r;
        if (s->err) {
            if (err && !*err)
                *err = st_steal(&s->err);
            st_err_clear(&s->err);
        }
    } else if (stop_requested(stop)) {
        r = 0;
    } else if (timed_out) {
        r = st_err_set(err, -ETIMEDOUT, "etcd at %s: the watch did not answer in time", endpoint);
    } else if (cc == CURLE_OK && s->status != 200) {
        r = st_etcd_status_fail(err, endpoint, s->status, s->buf, s->len);
    } else if (cc == CURLE_OK) {
        /* the gateway's last words may lack their newline */
        st_autoptr(json_t) last = s->len ? json_loadb(s->buf, s->len, 0, NULL) : NULL;
        const char *m =
            json_string_value(json_object_get(json_object_get(last, "error"), "message"));
        r = st_err_set(err, -EAGAIN, "etcd at %s: the watch stream ended%s%s", endpoint,
                       m ? ": " : "", m ? m : "");
    } else {
        if (cc == CURLE_COULDNT_CONNECT || cc == CURLE_COULDNT_RESOLVE_HOST)
            st_etcd_endpoint_failed(e, idx);
        r = st_etcd_curl_fail(err, endpoint, cc, errbuf, false);
    }
    free(s->buf);
    s->buf = NULL;
    s->len = s->cap = 0;
    return r;
}

/* A response's events, converted (revision order, a revision whole). */
static int parse_events(json_t *result, struct st_kv_event **ret, size_t *ret_n,
                        struct st_err **err)
{
    json_t *events = json_object_get(result, "events");
    size_t n = json_array_size(events);
    struct st_kv_event *ev = n ? st_new0(struct st_kv_event, n) : NULL;
    for (size_t i = 0; i < n; i++) {
        json_t *je = json_array_get(events, i);
        const char *type = json_string_value(json_object_get(je, "type"));
        ev[i].type = type && strcmp(type, "DELETE") == 0 ? ST_KV_EVENT_DELETE : ST_KV_EVENT_PUT;
        int r = st_etcd_entry_from_json(json_object_get(je, "kv"), ev[i].type == ST_KV_EVENT_PUT,
                                        &ev[i].kv, err);
        if (r < 0) {
            for (size_t k = 0; k < i; k++)
                st_kv_entry_clear(&ev[k].kv);
            free(ev);
            return r;
        }
        if (ev[i].type == ST_KV_EVENT_DELETE)
            ev[i].kv.create_rev = ev[i].kv.version = 0;
    }
    *ret = ev;
    *ret_n = n;
    return 0;
}

static int compacted_error(struct st_err **err, int64_t after, json_t *result)
{
    int64_t c = st_etcd_rev_to_st(st_etcd_int(result, "compact_revision")) - 1;
    return st_err_set(err, -ESTALE,
                      "watch from revision %lld: history up to revision %lld was compacted, "
                      "relist",
                      (long long)after, (long long)c);
}

/* ---- the window -------------------------------------------------------- */

static size_t event_bytes(const struct st_kv_event *ev)
{
    return sizeof(*ev) + strlen(ev->kv.key) + ev->kv.value_len;
}

static void window_clear(struct st_etcd_watch *w)
{
    for (size_t i = 0; i < w->count; i++)
        st_kv_entry_clear(&w->events[w->start + i].kv);
    w->start = w->count = 0;
    w->bytes = 0;
}

/* Drops the oldest revisions, whole, beyond the window's bounds. */
static void window_evict(struct st_etcd_watch *w)
{
    while (w->count > 0) {
        int64_t rev = w->events[w->start].kv.mod_rev;
        if (w->synced - rev < w->keep_revs && w->bytes <= WINDOW_BYTES)
            break;
        while (w->count > 0 && w->events[w->start].kv.mod_rev == rev) {
            struct st_kv_event *ev = &w->events[w->start];
            w->bytes -= event_bytes(ev);
            st_kv_entry_clear(&ev->kv);
            w->start++;
            w->count--;
        }
        w->base = rev;
    }
    if (w->count == 0)
        w->start = 0;
}

/* Takes ownership of the events (those already seen, after a reconnect,
 * are dropped). Called with mu held. */
static void window_append(struct st_etcd_watch *w, struct st_kv_event *ev, size_t n)
{
    if (w->start + w->count + n > w->cap) {
        if (w->start > 0) {
            memmove(w->events, w->events + w->start, w->count * sizeof(*w->events));
            w->start = 0;
        }
        if (w->count + n > w->cap) {
            w->cap = (w->count + n) * 2;
            w->events = st_xrealloc(w->events, w->cap * sizeof(*w->events));
        }
    }
    for (size_t i = 0; i < n; i++) {
        if (ev[i].kv.mod_rev <= w->synced) {
            st_kv_entry_clear(&ev[i].kv);
            continue;
        }
        w->events[w->start + w->count++] = ev[i];
        w->bytes += event_bytes(&ev[i]);
    }
    if (n && ev[n - 1].kv.mod_rev > w->synced)
        w->synced = ev[n - 1].kv.mod_rev;
    window_evict(w);
}

static bool matches(const char *key, const char *prefix, size_t prefix_len)
{
    return strncmp(key, prefix, prefix_len) == 0;
}

static void events_add(struct st_kv_events *out, const struct st_kv_event *ev, size_t *cap)
{
    if (out->count == *cap) {
        *cap = *cap ? *cap * 2 : 16;
        out->events = st_xrealloc(out->events, *cap * sizeof(*out->events));
    }
    struct st_kv_event *e = &out->events[out->count++];
    *e = *ev;
    e->kv.key = st_strdup(ev->kv.key);
    if (ev->kv.value) {
        e->kv.value = st_xcalloc(ev->kv.value_len + 1, 1);
        memcpy(e->kv.value, ev->kv.value, ev->kv.value_len);
    }
}

/* Copies the window's events after `after` under prefix. mu held. */
static void window_collect(struct st_etcd_watch *w, const char *prefix, int64_t after,
                           struct st_kv_events *out, size_t *cap)
{
    size_t lo = 0, hi = w->count;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (w->events[w->start + mid].kv.mod_rev <= after)
            lo = mid + 1;
        else
            hi = mid;
    }
    size_t plen = strlen(prefix);
    for (size_t i = lo; i < w->count; i++) {
        const struct st_kv_event *ev = &w->events[w->start + i];
        if (matches(ev->kv.key, prefix, plen))
            events_add(out, ev, cap);
    }
}

/* ---- the stream thread ------------------------------------------------- */

static void deadline_after(struct timespec *ts, int64_t ms)
{
    clock_gettime(CLOCK_MONOTONIC, ts);
    ts->tv_sec += ms / 1000;
    ts->tv_nsec += (long)(ms % 1000) * 1000000L;
    if (ts->tv_nsec >= 1000000000L) {
        ts->tv_sec++;
        ts->tv_nsec -= 1000000000L;
    }
}

/* Returns whether the stream was up. */
static bool set_down(struct st_etcd_watch *w, const struct st_err *err)
{
    pthread_mutex_lock(&w->mu);
    bool was_up = w->connected;
    w->connected = false;
    free(w->err_msg);
    w->err_msg = st_strdup(err ? err->msg : "the watch stream is down");
    w->err_code = err ? err->code : -EAGAIN;
    pthread_cond_broadcast(&w->cond);
    pthread_mutex_unlock(&w->mu);
    return was_up;
}

/* A canceled watch: etcd compacted past where the stream resumes. The
 * window restarts at the compaction; returns 1 (reconnect at once). */
static int restart_after_compaction(struct st_etcd_watch *w, json_t *result, struct st_err **err)
{
    int64_t c = st_etcd_int(result, "compact_revision");
    if (c <= 0) {
        const char *why = json_string_value(json_object_get(result, "cancel_reason"));
        return st_err_set(err, -EIO, "etcd canceled the watch stream: %s", why ? why : "no reason");
    }
    pthread_mutex_lock(&w->mu);
    int64_t from = w->synced;
    window_clear(w);
    w->base = w->synced = st_etcd_rev_to_st(c) - 1;
    pthread_cond_broadcast(&w->cond);
    pthread_mutex_unlock(&w->mu);
    st_log_warn("store_watch_gap",
                "from=%lld resumed=%lld hint=\"etcd compacted the history while the watch "
                "stream was down; older watchers relist\"",
                (long long)from, (long long)w->base);
    return 1;
}

static int window_result(struct stream *s, json_t *result, struct st_err **err)
{
    struct st_etcd_watch *w = s->userdata;
    if (json_is_true(json_object_get(result, "canceled")))
        return restart_after_compaction(w, result, err);
    if (json_is_true(json_object_get(result, "created"))) {
        int64_t now = st_etcd_rev_to_st(st_etcd_header_rev(result));
        pthread_mutex_lock(&w->mu);
        if (now < w->synced) {
            /* etcd is behind what this process saw: its data was replaced
             * (a restored snapshot). Start again from where it is, rather
             * than wait for revisions it will reuse. */
            int64_t was = w->synced;
            window_clear(w);
            w->base = w->synced = now;
            pthread_mutex_unlock(&w->mu);
            __atomic_store_n(&w->e->compacted, 0, __ATOMIC_RELAXED);
            st_log_error("store_revision_went_back",
                         "from=%lld to=%lld hint=\"etcd's data was replaced; restart the "
                         "controllers so that every cache relists\"",
                         (long long)was, (long long)now);
            return 1;
        }
        bool was_down = w->err_msg != NULL;
        w->connected = true;
        free(w->err_msg);
        w->err_msg = NULL;
        w->err_code = 0;
        pthread_cond_broadcast(&w->cond);
        pthread_mutex_unlock(&w->mu);
        if (was_down)
            st_log_info("store_watch_resumed", "endpoint=%s", st_etcd_endpoint(w->e, NULL));
    }
    struct st_kv_event *ev;
    size_t n;
    int r = parse_events(result, &ev, &n, err);
    if (r < 0 || n == 0)
        return r;
    pthread_mutex_lock(&w->mu);
    window_append(w, ev, n);
    pthread_cond_broadcast(&w->cond);
    pthread_mutex_unlock(&w->mu);
    free(ev);
    return 0;
}

/* Sleeps up to ms unless stop is requested. */
static void backoff(struct st_etcd_watch *w, int ms)
{
    struct timespec ts;
    deadline_after(&ts, ms);
    pthread_mutex_lock(&w->mu);
    while (!stop_requested(&w->stopping))
        if (pthread_cond_timedwait(&w->cond, &w->mu, &ts) == ETIMEDOUT)
            break;
    pthread_mutex_unlock(&w->mu);
}

static void *stream_main(void *arg)
{
    struct st_etcd_watch *w = arg;
    int delay = BACKOFF_FIRST_MS;
    char *last_logged = NULL;
    while (!stop_requested(&w->stopping)) {
        pthread_mutex_lock(&w->mu);
        int64_t after = w->synced;
        pthread_mutex_unlock(&w->mu);
        struct stream s = {.on_result = window_result, .userdata = w};
        st_autoptr(st_err) err = NULL;
        int r = stream_run(w->e, w->multi, after, &s, 0, &w->stopping, &err);
        if (stop_requested(&w->stopping))
            break;
        if (r == 0 && !err)
            st_err_set(&err, -EAGAIN, "the watch stream was restarted");
        bool was_up = set_down(w, err);
        if (s.ended && s.r == 0) /* restarted: a compaction, or etcd went back */
            continue;
        if (!last_logged || strcmp(last_logged, st_err_msg(err)) != 0) {
            st_log_warn("store_watch_down", "error=\"%s\" retry_ms=%d", st_err_msg(err), delay);
            free(last_logged);
            last_logged = st_strdup(st_err_msg(err));
        }
        if (was_up)
            delay = BACKOFF_FIRST_MS;
        backoff(w, delay);
        delay = delay * 2 > BACKOFF_MAX_MS ? BACKOFF_MAX_MS : delay * 2;
    }
    free(last_logged);
    return NULL;
}

int st_etcd_watch_start(struct st_kv_etcd *e, int64_t rev, struct st_err **err)
{
    struct st_etcd_watch *w = st_new0(struct st_etcd_watch, 1);
    w->e = e;
    w->base = w->synced = rev;
    w->keep_revs = e->history + e->compact_every;
    if (w->keep_revs < WINDOW_REVS_MIN)
        w->keep_revs = WINDOW_REVS_MIN;
    if (w->keep_revs > WINDOW_REVS_MAX)
        w->keep_revs = WINDOW_REVS_MAX;
    pthread_mutex_init(&w->mu, NULL);
    pthread_condattr_t attr;
    pthread_condattr_init(&attr);
    pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
    pthread_cond_init(&w->cond, &attr);
    pthread_condattr_destroy(&attr);
    w->multi = curl_multi_init();
    if (!w->multi)
        abort();
    e->watch = w;
    int r = pthread_create(&w->thread, NULL, stream_main, w);
    if (r != 0)
        return st_err_set(err, -r, "starting the etcd watch thread: %s", strerror(r));
    w->started = true;

    /* Open returns with the stream live: a write made after it is in the
     * window, and no compaction can come between (a process that writes
     * and compacts at once would otherwise cut its own stream's start). */
    struct timespec deadline;
    deadline_after(&deadline, STREAM_START_MS);
    pthread_mutex_lock(&w->mu);
    while (!w->connected && !w->err_msg)
        if (pthread_cond_timedwait(&w->cond, &w->mu, &deadline) == ETIMEDOUT)
            break;
    if (!w->connected)
        r = st_err_set(err, w->err_code ? w->err_code : -ETIMEDOUT, "starting the watch stream: %s",
                       w->err_msg ? w->err_msg : "etcd did not answer in time");
    pthread_mutex_unlock(&w->mu);
    return r;
}

void st_etcd_watch_stop(struct st_kv_etcd *e)
{
    struct st_etcd_watch *w = e->watch;
    if (!w)
        return;
    if (w->started) {
        pthread_mutex_lock(&w->mu);
        __atomic_store_n(&w->stopping, true, __ATOMIC_RELEASE);
        pthread_cond_broadcast(&w->cond);
        pthread_mutex_unlock(&w->mu);
        curl_multi_wakeup(w->multi);
        pthread_join(w->thread, NULL);
    }
    curl_multi_cleanup(w->multi);
    window_clear(w);
    free(w->events);
    free(w->err_msg);
    pthread_mutex_destroy(&w->mu);
    pthread_cond_destroy(&w->cond);
    free(w);
    e->watch = NULL;
}

/* ---- st_kv_watch -------------------------------------------------------- */

struct catch_up {
    const char *prefix;
    size_t prefix_len;
    int64_t after, upto;
    struct st_kv_events *out;
    size_t cap;
};

static int catch_up_result(struct stream *s, json_t *result, struct st_err **err)
{
    struct catch_up *c = s->userdata;
    if (json_is_true(json_object_get(result, "canceled"))) {
        if (st_etcd_int(result, "compact_revision") > 0)
            return compacted_error(err, c->after, result);
        const char *why = json_string_value(json_object_get(result, "cancel_reason"));
        return st_err_set(err, -EIO, "etcd canceled the watch: %s", why ? why : "no reason");
    }
    struct st_kv_event *ev;
    size_t n;
    int r = parse_events(result, &ev, &n, err);
    if (r < 0)
        return r;
    bool reached = false;
    for (size_t i = 0; i < n; i++) {
        if (ev[i].kv.mod_rev <= c->upto && matches(ev[i].kv.key, c->prefix, c->prefix_len))
            events_add(c->out, &ev[i], &c->cap);
        if (ev[i].kv.mod_rev >= c->upto)
            reached = true;
        st_kv_entry_clear(&ev[i].kv);
    }
    free(ev);
    return reached ? 1 : 0;
}

/* The events in (after, upto] under prefix, from etcd: a watch of every
 * key, which ends at the first event of revision upto or later (every
 * revision has one). */
static int catch_up(struct st_kv_etcd *e, const char *prefix, int64_t after, int64_t upto,
                    struct st_kv_events *out, struct st_err **err)
{
    struct catch_up c = {
        .prefix = prefix, .prefix_len = strlen(prefix), .after = after, .upto = upto, .out = out};
    size_t have = out->count;
    c.cap = have;
    struct stream s = {.on_result = catch_up_result, .userdata = &c};
    CURLM *multi = curl_multi_init();
    if (!multi)
        abort();
    int r = stream_run(e, multi, after, &s, st_time_mono_ns() + (int64_t)CATCH_UP_MS * 1000000,
                       NULL, err);
    curl_multi_cleanup(multi);
    if (r == 0 && !s.ended)
        r = st_err_set(err, -EAGAIN, "etcd watch from revision %lld ended early", (long long)after);
    if (r < 0) {
        for (size_t i = have; i < out->count; i++)
            st_kv_entry_clear(&out->events[i].kv);
        out->count = have;
    }
    return r;
}

int st_etcd_watch(void *impl, const char *prefix, int64_t after_rev, int timeout_ms,
                  struct st_kv_events **ret, struct st_err **err)
{
    struct st_kv_etcd *e = impl;
    struct st_etcd_watch *w = e->watch;
    int64_t compacted = __atomic_load_n(&e->compacted, __ATOMIC_RELAXED);
    if (after_rev < compacted)
        return st_err_set(err, -ESTALE,
                          "watch from revision %lld: history up to revision %lld was compacted, "
                          "relist",
                          (long long)after_rev, (long long)compacted);
    /* a poll answers what was written before it: wait for the stream to
     * reach the current revision */
    int64_t want = 0;
    struct timespec deadline;
    if (timeout_ms == 0) {
        int r = st_etcd_revision_read(e, &want, err);
        if (r < 0)
            return r;
        deadline_after(&deadline, POLL_SYNC_MS);
    } else {
        deadline_after(&deadline, timeout_ms);
    }

    st_autoptr(st_kv_events) out = st_new0(struct st_kv_events, 1);
    size_t cap = 0;
    int64_t from = after_rev;
    bool last = false;
    pthread_mutex_lock(&w->mu);
    for (;;) {
        if (from < w->base) {
            int64_t upto = w->base;
            pthread_mutex_unlock(&w->mu);
            int r = catch_up(e, prefix, from, upto, out, err);
            if (r < 0)
                return r;
            if (out->count > 0) {
                out->revision = upto;
                *ret = st_steal(&out);
                return 0;
            }
            from = upto;
            pthread_mutex_lock(&w->mu);
            continue;
        }
        cap = out->count;
        window_collect(w, prefix, from, out, &cap);
        if (w->synced > from)
            from = w->synced;
        if (out->count > 0 || last || (timeout_ms == 0 && w->synced >= want) ||
            (timeout_ms > 0 && w->woken))
            break;
        if (pthread_cond_timedwait(&w->cond, &w->mu, &deadline) == ETIMEDOUT) {
            if (timeout_ms == 0) {
                int code = w->err_code ? w->err_code : -ETIMEDOUT;
                st_err_set(err, code,
                           "etcd watch: the stream is at revision %lld, the store at %lld%s%s",
                           (long long)w->synced, (long long)want, w->err_msg ? ": " : "",
                           w->err_msg ? w->err_msg : "");
                pthread_mutex_unlock(&w->mu);
                return code;
            }
            if (!w->connected && w->err_msg) {
                int code = w->err_code;
                st_err_set(err, code, "%s", w->err_msg);
                pthread_mutex_unlock(&w->mu);
                return code;
            }
            last = true; /* one more look, then return what there is */
        }
    }
    out->revision = from > after_rev ? from : after_rev;
    pthread_mutex_unlock(&w->mu);
    *ret = st_steal(&out);
    return 0;
}

void st_etcd_wake_all(void *impl)
{
    struct st_kv_etcd *e = impl;
    struct st_etcd_watch *w = e->watch;
    pthread_mutex_lock(&w->mu);
    w->woken = true;
    pthread_cond_broadcast(&w->cond);
    pthread_mutex_unlock(&w->mu);
}
