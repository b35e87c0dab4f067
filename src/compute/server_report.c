/* What agents tell the controller about servers, through the internal API:
 * status reports merged into the document (and the final removal once a
 * deleted server is destroyed), console tails, and the watch of a node's
 * assignments that their long-poll is built on. See server.h. */
#include <errno.h>
#include <string.h>

#include "compute/model.h"
#include "compute/server-priv.h"
#include "compute/server.h"
#include "lib/cleanup.h"
#include "lib/json.h"
#include "lib/log.h"
#include "lib/times.h"
#include "store/kv.h"

#define FAULT_MESSAGE_MAX 4096

static const char *const states[] = {"BUILD",       "ACTIVE", "SHUTOFF", "REBOOT",
                                     "HARD_REBOOT", "ERROR",  "DELETED"};

static bool state_valid(const char *s)
{
    for (size_t i = 0; i < ST_ARRAY_SIZE(states); i++)
        if (strcmp(s, states[i]) == 0)
            return true;
    return false;
}

/* Checks the report's known fields; others are merged as they are (driver
 * facts the agent wants to show). */
static int check_report(json_t *report, struct st_err **err)
{
    if (!json_is_object(report))
        return st_err_set(err, -EINVAL, "a status report must be a JSON object");
    json_t *v = json_object_get(report, "state");
    if (v && (!json_is_string(v) || !state_valid(json_string_value(v))))
        return st_err_set(err, -EINVAL,
                          "state must be one of BUILD, ACTIVE, SHUTOFF, REBOOT, HARD_REBOOT, "
                          "ERROR, DELETED");
    v = json_object_get(report, "power_state");
    if (v && (!json_is_integer(v) || json_integer_value(v) < 0 || json_integer_value(v) > 7))
        return st_err_set(err, -EINVAL, "power_state must be an integer from 0 to 7");
    v = json_object_get(report, "task_state");
    if (v && !json_is_null(v) && (!json_is_string(v) || json_string_length(v) > 64))
        return st_err_set(err, -EINVAL, "task_state must be null or a short string");
    v = json_object_get(report, "observed_reboot");
    if (v && (!json_is_integer(v) || json_integer_value(v) < 0))
        return st_err_set(err, -EINVAL, "observed_reboot must be a non-negative integer");
    v = json_object_get(report, "fault");
    if (v && !json_is_null(v) && (!json_is_object(v) || !server_str(v, "message")))
        return st_err_set(err, -EINVAL, "fault must be null or {\"message\": ..., \"code\": N}");
    v = json_object_get(report, "instance");
    if (v && !json_is_null(v) && !json_is_object(v))
        return st_err_set(err, -EINVAL, "instance must be null or an object");
    const char *k;
    json_object_foreach(report, k, v)
    {
        if (strcmp(k, "launched_at") == 0 || strcmp(k, "observed_at") == 0)
            return st_err_set(err, -EINVAL, "%s is set by the controller", k);
    }
    return 0;
}

/* Nova's fault: {code, message, created}; the message is bounded. */
static json_t *normalize_fault(json_t *fault, const char *now)
{
    json_t *f = json_deep_copy(fault);
    const char *msg = server_str(f, "message");
    if (strlen(msg) > FAULT_MESSAGE_MAX) {
        st_autofree char *cut = st_strndup(msg, FAULT_MESSAGE_MAX);
        json_object_set_new(f, "message", json_string(cut));
    }
    if (!json_is_integer(json_object_get(f, "code")))
        json_object_set_new(f, "code", json_integer(500));
    if (!server_str(f, "created"))
        json_object_set_new(f, "created", json_string(now));
    return f;
}

struct merge {
    json_t *report;
    bool remove; /* out: the server was deleted and is destroyed */
};

static int merge_report(json_t *doc, void *userdata, struct st_err **err)
{
    struct merge *m = userdata;
    json_t *spec = server_spec(doc), *status = server_status_obj(doc);
    if (!json_is_object(status)) {
        status = json_object();
        json_object_set_new(doc, "status", status);
    }
    const char *state = server_str(m->report, "state");
    if (state && strcmp(state, "DELETED") == 0) {
        if (!json_is_true(json_object_get(spec, "deleted")))
            return st_err_set(err, -EBUSY,
                              "server %s was not deleted: report its instance as ERROR (with a "
                              "fault) if it vanished",
                              server_str(doc, "id"));
        m->remove = true;
        return ST_COMPUTE_UNCHANGED;
    }
    st_autoptr(json_t) before = json_deep_copy(status);
    char now[ST_TIME_RFC3339_LEN];
    server_now(now);
    const char *k;
    json_t *v;
    json_object_foreach(m->report, k, v)
    {
        if (strcmp(k, "fault") == 0 && json_is_object(v))
            json_object_set_new(status, k, normalize_fault(v, now));
        else
            json_object_set(status, k, v);
    }
    if (state && strcmp(state, "ACTIVE") == 0 && !server_str(status, "launched_at"))
        json_object_set_new(status, "launched_at", json_string(now));
    if (!json_object_get(m->report, "task_state")) {
        /* the task that the API recorded is over once the state it aimed
         * at is reached: recompute it from spec and the new status */
        json_object_set_new(status, "task_state", json_null());
        const char *task = st_compute_server_task_state(doc);
        if (task && strcmp(task, "scheduling") != 0)
            json_object_set_new(status, "task_state", json_string(task));
    }
    /* agents repeat their reports: an unchanged status is not rewritten,
     * so that it wakes no watcher */
    return json_equal(before, status) ? ST_COMPUTE_UNCHANGED : 0;
}

int st_compute_server_report(struct st_kv *kv, const char *id, json_t *report, struct st_err **err)
{
    int r = check_report(report, err);
    if (r < 0)
        return r;
    struct merge m = {.report = report};
    st_autoptr(json_t) doc = NULL;
    r = st_compute_server_update(kv, id, merge_report, &m, &doc, err);
    if (r < 0 || !m.remove)
        return r;
    /* The deleted server is destroyed on its node: remove it for good. The
     * document goes first (with CAS, so a concurrent change is not lost
     * silently), then what hangs off it. A crash in between leaves a quota
     * entry without a server, which quota.c prunes when it matters, and an
     * allocation entry without a server, which the placement controller's
     * reconcile must drop. */
    for (int attempt = 0; attempt < 100; attempt++) {
        int64_t rev = 0;
        st_autoptr(json_t) cur = NULL;
        r = st_compute_server_get(kv, id, &cur, &rev, err);
        if (r < 0)
            return r;
        st_autofree char *key = server_key(id);
        r = st_kv_delete(kv, key, rev, NULL, err);
        if (r == -ECANCELED) {
            st_err_clear(err);
            continue;
        }
        if (r < 0)
            return st_err_prefix(err, r, "removing server %s", id);
        st_log_info("server_removed", "server=%s reason=destroyed host=%s", id,
                    server_str(server_spec(cur), "host") ?: "");
        return server_release(kv, cur, err);
    }
    return st_err_set(err, -EAGAIN, "server %s is changing too often; try again", id);
}

int st_compute_server_console_put(struct st_kv *kv, const char *id, const char *data, size_t len,
                                  struct st_err **err)
{
    st_autoptr(json_t) doc = NULL;
    int r = st_compute_server_get(kv, id, &doc, NULL, err);
    if (r < 0)
        return r;
    if (len > ST_COMPUTE_CONSOLE_MAX) {
        data += len - ST_COMPUTE_CONSOLE_MAX;
        len = ST_COMPUTE_CONSOLE_MAX;
    }
    st_autofree char *key = st_sprintf("%s%s", ST_COMPUTE_CONSOLES_PREFIX, id);
    st_autoptr(st_kv_entry) old = NULL;
    /* len 0: data may be NULL (an empty body), which memcmp must not get,
     * even for 0 bytes; a restarted agent pushes an empty log again. */
    if (st_kv_get(kv, key, &old, NULL) == 0 && old->value_len == len &&
        (len == 0 || memcmp(old->value, data, len) == 0))
        return 0;
    return st_kv_put(kv, key, data ? data : "", len, ST_KV_ANY, NULL, err);
}

static bool assigned_to(json_t *doc, const char *host)
{
    const char *h = server_str(server_spec(doc), "host");
    return h && strcmp(h, host) == 0;
}

static int list_host(struct st_kv *kv, const char *host, json_t **ret_docs, int64_t *ret_rev,
                     struct st_err **err)
{
    st_autoptr(st_kv_list) l = NULL;
    int r = st_kv_list(kv, ST_COMPUTE_SERVERS_PREFIX, NULL, 0, &l, err);
    if (r < 0)
        return st_err_prefix(err, r, "listing servers");
    json_t *out = json_array();
    for (size_t i = 0; i < l->count; i++) {
        json_t *doc = json_loadb(l->entries[i].value, l->entries[i].value_len, 0, NULL);
        if (json_is_object(doc) && assigned_to(doc, host))
            json_array_append(out, doc);
        json_decref(doc);
    }
    *ret_docs = out;
    *ret_rev = l->revision;
    return 0;
}

int st_compute_server_watch_host(struct st_kv *kv, const char *host, int64_t after_rev, int wait_ms,
                                 json_t **ret_docs, int64_t *ret_rev, struct st_err **err)
{
    if (after_rev <= 0)
        return list_host(kv, host, ret_docs, ret_rev, err);
    int64_t deadline = st_time_mono_ns() + (int64_t)wait_ms * 1000000;
    int64_t rev = after_rev;
    /* one entry per server, the latest version wins; keys keep the order
     * of first change */
    st_autoptr(json_t) changed = json_object();
    for (;;) {
        int64_t left_ms = (deadline - st_time_mono_ns()) / 1000000;
        st_autoptr(st_kv_events) ev = NULL;
        int r = st_kv_watch(kv, ST_COMPUTE_SERVERS_PREFIX, rev, left_ms > 0 ? (int)left_ms : 0, &ev,
                            err);
        if (r < 0)
            return r; /* -ESTALE: compacted, the caller lists again */
        for (size_t i = 0; i < ev->count; i++) {
            struct st_kv_event *e = &ev->events[i];
            if (e->type != ST_KV_EVENT_PUT)
                continue;
            json_t *doc = json_loadb(e->kv.value, e->kv.value_len, 0, NULL);
            if (json_is_object(doc) && assigned_to(doc, host))
                json_object_set(changed, server_str(doc, "id") ?: e->kv.key, doc);
            json_decref(doc);
        }
        if (ev->revision > rev)
            rev = ev->revision;
        if (json_object_size(changed) > 0 || left_ms <= 0 || ev->count == 0)
            break;
    }
    json_t *out = json_array();
    const char *k;
    json_t *v;
    json_object_foreach(changed, k, v) json_array_append(out, v);
    *ret_docs = out;
    *ret_rev = rev;
    return 0;
}
