/* The server service: documents, the compare-and-swap update loop, list and
 * filters, delete, power actions and the console; see server.h. The create
 * path (request validation) is in server_create.c, what agents report in
 * server_report.c. */
#include "server.h"

#include <errno.h>
#include <regex.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "compute/model.h"
#include "compute/node.h"
#include "compute/quota.h"
#include "compute/server-priv.h"
#include "network/network.h"
#include "lib/cleanup.h"
#include "lib/json.h"
#include "lib/log.h"
#include "lib/times.h"
#include "store/kv.h"

#define CAS_ATTEMPTS 1000

const char *server_str(json_t *o, const char *k)
{
    return json_string_value(json_object_get(o, k));
}

json_t *server_spec(json_t *doc)
{
    return json_object_get(doc, "spec");
}

json_t *server_status_obj(json_t *doc)
{
    return json_object_get(doc, "status");
}

/* A server id names a key: anything that could not be one of ours is
 * simply not found (never a 500, never a path outside the prefix). */
static bool id_usable(const char *id)
{
    size_t n = id ? strlen(id) : 0;
    if (n == 0 || n > 64)
        return false;
    for (size_t i = 0; i < n; i++)
        if (id[i] == '/' || (unsigned char)id[i] < 0x20 || id[i] == 0x7f)
            return false;
    return true;
}

int server_not_found(const char *id, struct st_err **err)
{
    return st_err_set(err, -ENOENT, "Instance %s could not be found.", id ? id : "");
}

char *server_key(const char *id)
{
    return st_sprintf("%s%s", ST_COMPUTE_SERVERS_PREFIX, id);
}

void server_now(char buf[ST_TIME_RFC3339_LEN])
{
    st_time_rfc3339(st_time_now_ms() / 1000, buf, ST_TIME_RFC3339_LEN);
}

int st_compute_server_get(struct st_kv *kv, const char *id, json_t **ret_doc, int64_t *ret_mod_rev,
                          struct st_err **err)
{
    if (!id_usable(id))
        return server_not_found(id, err);
    st_autofree char *key = server_key(id);
    st_autoptr(st_kv_entry) e = NULL;
    st_autoptr(st_err) gerr = NULL;
    int r = st_kv_get(kv, key, &e, &gerr);
    if (r == -ENOENT)
        return server_not_found(id, err);
    if (r < 0)
        return st_err_set(err, r, "reading server %s: %s", id, st_err_msg(gerr));
    r = st_json_parse_object(e->value, e->value_len, ret_doc, err);
    if (r < 0)
        return st_err_prefix(err, r, "server document %s", id);
    if (ret_mod_rev)
        *ret_mod_rev = e->mod_rev;
    return 0;
}

int st_compute_server_update(struct st_kv *kv, const char *id, st_compute_server_fn fn,
                             void *userdata, json_t **ret_doc, struct st_err **err)
{
    st_autofree char *key = NULL;
    for (int attempt = 0; attempt < CAS_ATTEMPTS; attempt++) {
        st_autoptr(json_t) doc = NULL;
        int64_t rev = 0;
        int r = st_compute_server_get(kv, id, &doc, &rev, err);
        if (r < 0)
            return r;
        r = fn(doc, userdata, err);
        if (r < 0)
            return r;
        if (r == ST_COMPUTE_UNCHANGED) {
            if (ret_doc)
                *ret_doc = st_steal(&doc);
            return 0;
        }
        char now[ST_TIME_RFC3339_LEN];
        server_now(now);
        json_object_set_new(doc, "updated_at", json_string(now));
        if (!key)
            key = server_key(id);
        st_autofree char *text = st_json_dumps(doc);
        r = st_kv_put(kv, key, text, strlen(text), rev, NULL, err);
        if (r == -ECANCELED) {
            st_err_clear(err);
            continue;
        }
        if (r < 0)
            return st_err_prefix(err, r, "writing server %s", id);
        if (ret_doc)
            *ret_doc = st_steal(&doc);
        return 0;
    }
    return st_err_set(err, -EAGAIN, "server %s is changing too often; try again", id);
}

/* ---- derived views ---- */

static int64_t spec_int(json_t *doc, const char *k)
{
    return json_integer_value(json_object_get(server_spec(doc), k));
}

bool server_reboot_pending(json_t *doc)
{
    return spec_int(doc, "reboot") >
           json_integer_value(json_object_get(server_status_obj(doc), "observed_reboot"));
}

static const char *state_of(json_t *doc)
{
    const char *s = server_str(server_status_obj(doc), "state");
    return s ? s : "BUILD";
}

const char *st_compute_server_status(json_t *doc)
{
    const char *state = state_of(doc);
    if (strcmp(state, "ACTIVE") == 0 && server_reboot_pending(doc) &&
        !json_is_true(json_object_get(server_spec(doc), "deleted"))) {
        const char *type = server_str(server_spec(doc), "reboot_type");
        return type && strcmp(type, "HARD") == 0 ? "HARD_REBOOT" : "REBOOT";
    }
    return state;
}

const char *st_compute_server_vm_state(json_t *doc)
{
    static const struct {
        const char *state, *vm;
    } map[] = {{"BUILD", "building"},     {"ACTIVE", "active"},   {"REBOOT", "active"},
               {"HARD_REBOOT", "active"}, {"SHUTOFF", "stopped"}, {"ERROR", "error"},
               {"DELETED", "deleted"}};
    const char *state = state_of(doc);
    for (size_t i = 0; i < ST_ARRAY_SIZE(map); i++)
        if (strcmp(state, map[i].state) == 0)
            return map[i].vm;
    return "building";
}

const char *st_compute_server_task_state(json_t *doc)
{
    json_t *spec = server_spec(doc);
    const char *state = state_of(doc);
    if (json_is_true(json_object_get(spec, "deleted")))
        return "deleting";
    if (strcmp(state, "ERROR") == 0 || strcmp(state, "DELETED") == 0)
        return NULL;
    if (strcmp(state, "BUILD") == 0) {
        if (json_is_null(json_object_get(spec, "host")) || !json_object_get(spec, "host"))
            return "scheduling";
        /* placed: what the agent says it is doing, else spawning */
        const char *t = server_str(server_status_obj(doc), "task_state");
        return t && strcmp(t, "scheduling") != 0 ? t : "spawning";
    }
    const char *power = server_str(spec, "power");
    bool off = power && strcmp(power, "off") == 0;
    if (server_reboot_pending(doc)) {
        const char *type = server_str(spec, "reboot_type");
        return type && strcmp(type, "HARD") == 0 ? "rebooting_hard" : "rebooting";
    }
    if (off && strcmp(state, "SHUTOFF") != 0)
        return "powering-off";
    if (!off && strcmp(state, "SHUTOFF") == 0)
        return "powering-on";
    return NULL;
}

/* ---- list ---- */

struct listed {
    json_t *doc;
    int64_t create_rev;
};

static int newest_first(const void *a, const void *b)
{
    const struct listed *x = a, *y = b;
    return x->create_rev < y->create_rev ? 1 : x->create_rev > y->create_rev ? -1 : 0;
}

static bool eq_or_null(const char *want, const char *have)
{
    return !want || (have && strcmp(want, have) == 0);
}

static bool keep(json_t *doc, const struct st_compute_server_filter *f, regex_t *name_re)
{
    json_t *spec = server_spec(doc);
    if (!eq_or_null(f->project_id, server_str(doc, "project_id")))
        return false;
    if (f->name) {
        const char *name = server_str(doc, "name");
        if (!name)
            return false;
        if (name_re ? regexec(name_re, name, 0, NULL, 0) != 0 : !strstr(name, f->name))
            return false;
    }
    if (f->status && strcasecmp(f->status, st_compute_server_status(doc)) != 0)
        return false;
    if (!eq_or_null(f->host, server_str(spec, "host")))
        return false;
    if (f->availability_zone) {
        const char *az = server_str(spec, "availability_zone");
        if (strcmp(f->availability_zone, az ? az : "nova") != 0)
            return false;
    }
    if (!eq_or_null(f->key_name, server_str(spec, "key_name")))
        return false;
    if (!eq_or_null(f->image, server_str(json_object_get(spec, "image"), "id")))
        return false;
    if (!eq_or_null(f->flavor, server_str(json_object_get(spec, "flavor"), "id")))
        return false;
    if (f->changes_since_ms > 0) {
        int64_t at = 0;
        const char *u = server_str(doc, "updated_at");
        if (!u || st_time_parse_rfc3339(u, &at) < 0 || at < f->changes_since_ms)
            return false;
    }
    return true;
}

int st_compute_server_list(struct st_kv *kv, const struct st_compute_server_filter *f,
                           json_t **ret_docs, struct st_err **err)
{
    st_autoptr(st_kv_list) l = NULL;
    int r = st_kv_list(kv, ST_COMPUTE_SERVERS_PREFIX, NULL, 0, &l, err);
    if (r < 0)
        return st_err_prefix(err, r, "listing servers");
    /* Nova treats name as a regular expression; a name that is not one is
     * matched as a plain substring rather than refused. */
    regex_t re;
    bool have_re = f->name && regcomp(&re, f->name, REG_EXTENDED | REG_NOSUB) == 0;
    struct listed *rows = st_new0(struct listed, l->count);
    size_t n = 0;
    for (size_t i = 0; i < l->count; i++) {
        json_t *doc = json_loadb(l->entries[i].value, l->entries[i].value_len, 0, NULL);
        if (!json_is_object(doc)) {
            st_log_warn("server_document_unreadable", "key=%s", l->entries[i].key);
            json_decref(doc);
            continue;
        }
        if (!keep(doc, f, have_re ? &re : NULL)) {
            json_decref(doc);
            continue;
        }
        rows[n++] = (struct listed){doc, l->entries[i].create_rev};
    }
    if (have_re)
        regfree(&re);
    qsort(rows, n, sizeof(*rows), newest_first);
    size_t start = 0;
    if (f->marker) {
        while (start < n && !eq_or_null(f->marker, server_str(rows[start].doc, "id")))
            start++;
        if (start == n)
            r = st_err_set(err, -EINVAL, "marker [%s] not found", f->marker);
        else
            start++;
    }
    json_t *out = json_array();
    for (size_t i = 0; i < n; i++) {
        if (r == 0 && i >= start && (!f->limit || json_array_size(out) < f->limit))
            json_array_append(out, rows[i].doc);
        json_decref(rows[i].doc);
    }
    free(rows);
    if (r < 0) {
        json_decref(out);
        return r;
    }
    *ret_docs = out;
    return 0;
}

/* ---- allocations ---- */

int server_allocation_remove(struct st_kv *kv, const char *node, const char *id,
                             struct st_err **err)
{
    st_autofree char *key = st_sprintf("%s%s", ST_COMPUTE_ALLOCATIONS_PREFIX, node);
    for (int attempt = 0; attempt < CAS_ATTEMPTS; attempt++) {
        st_autoptr(st_kv_entry) e = NULL;
        int r = st_kv_get(kv, key, &e, err);
        if (r == -ENOENT) {
            st_err_clear(err);
            return 0;
        }
        if (r < 0)
            return r;
        st_autoptr(json_t) doc = json_loadb(e->value, e->value_len, 0, NULL);
        json_t *servers = json_object_get(doc, "servers");
        if (!json_object_get(servers, id))
            return 0;
        json_object_del(servers, id);
        st_autofree char *text = st_json_dumps(doc);
        r = st_kv_put(kv, key, text, strlen(text), e->mod_rev, NULL, err);
        if (r == -ECANCELED) {
            st_err_clear(err);
            continue;
        }
        return r;
    }
    return st_err_set(err, -EAGAIN, "allocations of node %s are contended", node);
}

/* A server that was never placed has no allocation, unless a scheduler
 * crashed between writing the allocation and the placement: look on every
 * node (only for such deletes, which are rare). */
static int allocation_remove_anywhere(struct st_kv *kv, const char *id, struct st_err **err)
{
    st_autoptr(st_kv_list) l = NULL;
    int r = st_kv_list(kv, ST_COMPUTE_ALLOCATIONS_PREFIX, NULL, 0, &l, err);
    if (r < 0)
        return r;
    size_t plen = strlen(ST_COMPUTE_ALLOCATIONS_PREFIX);
    for (size_t i = 0; i < l->count; i++) {
        if (!strstr(l->entries[i].value, id))
            continue;
        r = server_allocation_remove(kv, l->entries[i].key + plen, id, err);
        if (r < 0)
            return r;
    }
    return 0;
}

/* Everything a deleted server leaves besides its document. */
int server_release(struct st_kv *kv, json_t *doc, struct st_err **err)
{
    const char *id = server_str(doc, "id");
    const char *host = server_str(server_spec(doc), "host");
    int r = host ? server_allocation_remove(kv, host, id, err)
                 : allocation_remove_anywhere(kv, id, err);
    if (r < 0)
        return st_err_prefix(err, r, "releasing the allocation of server %s", id);
    st_autofree char *ckey = st_sprintf("%s%s", ST_COMPUTE_CONSOLES_PREFIX, id);
    r = st_kv_delete(kv, ckey, ST_KV_ANY, NULL, err);
    if (r == -ENOENT)
        st_err_clear(err);
    else if (r < 0)
        return st_err_prefix(err, r, "removing the console of server %s", id);
    const char *project = server_str(doc, "project_id");
    if (project && (r = st_compute_quota_release(kv, project, id, err)) < 0)
        return st_err_prefix(err, r, "releasing the quota of server %s", id);
    if ((r = st_network_device_ports_release(kv, id, err)) < 0)
        return st_err_prefix(err, r, "releasing the ports of server %s", id);
    return 0;
}

/* ---- delete ---- */

/* Whether a node's agent can be expected to destroy what it runs: the node
 * is known and its lease holds. Otherwise a delete is done here, as Nova's
 * "local delete" when a compute service is down; an agent that comes back
 * removes the instances no longer assigned to it. A store error counts as
 * alive (the safe side: the deletion waits for the agent). */
static bool node_alive(struct st_kv *kv, const char *node)
{
    st_autoptr(json_t) doc = NULL;
    st_autoptr(st_err) err = NULL;
    int r = st_compute_node_get(kv, node, &doc, &err);
    if (r == -ENOENT)
        return false;
    return r < 0 || st_compute_node_alive(doc, st_time_now_ms());
}

static int mark_deleted(json_t *doc, void *userdata, struct st_err **err)
{
    (void)userdata;
    (void)err;
    json_t *spec = server_spec(doc);
    if (json_is_true(json_object_get(spec, "deleted")))
        return ST_COMPUTE_UNCHANGED;
    json_object_set_new(spec, "deleted", json_true());
    json_object_set_new(server_status_obj(doc), "task_state", json_string("deleting"));
    return 0;
}

int st_compute_server_delete(struct st_kv *kv, const char *id, struct st_err **err)
{
    st_autofree char *key = NULL;
    for (int attempt = 0; attempt < CAS_ATTEMPTS; attempt++) {
        st_autoptr(json_t) doc = NULL;
        int64_t rev = 0;
        int r = st_compute_server_get(kv, id, &doc, &rev, err);
        if (r < 0)
            return r;
        const char *host = server_str(server_spec(doc), "host");
        if (host && node_alive(kv, host)) {
            /* its agent destroys it and reports DELETED (server_report.c) */
            r = st_compute_server_update(kv, id, mark_deleted, NULL, NULL, err);
            if (r < 0)
                return r;
            return st_compute_quota_release(kv, server_str(doc, "project_id"), id, err);
        }
        /* never placed, or its node is gone or down: nothing will report */
        if (!key)
            key = server_key(id);
        r = st_kv_delete(kv, key, rev, NULL, err);
        if (r == -ECANCELED) { /* placed meanwhile: look again */
            st_err_clear(err);
            continue;
        }
        if (r == -ENOENT)
            return server_not_found(id, err);
        if (r < 0)
            return r;
        st_log_info("server_removed", "server=%s reason=%s host=%s", id,
                    host ? "node_down" : "never_placed", host ? host : "");
        return server_release(kv, doc, err);
    }
    return st_err_set(err, -EAGAIN, "server %s is changing too often; try again", id);
}

/* ---- power actions ---- */

struct action {
    const char *verb; /* for messages: 'stop', 'start', 'reboot' */
    const char *id;
    bool hard;
};

static int refuse(const struct action *a, const char *what, const char *value, struct st_err **err)
{
    return st_err_set(err, -EBUSY, "Cannot '%s' instance %s while it is in %s %s", a->verb, a->id,
                      what, value);
}

/* Nova's check_instance_state: the vm_state, then a task in progress. */
static int check_state(json_t *doc, const struct action *a, const char *const *allowed,
                       struct st_err **err)
{
    const char *vm = st_compute_server_vm_state(doc);
    bool ok = false;
    for (size_t i = 0; allowed[i] && !ok; i++)
        ok = strcmp(vm, allowed[i]) == 0;
    /* an ERROR server that never ran has nothing to act on */
    if (!ok || (strcmp(vm, "error") == 0 && !server_str(server_spec(doc), "host")))
        return refuse(a, "vm_state", vm, err);
    const char *task = st_compute_server_task_state(doc);
    if (task)
        return refuse(a, "task_state", task, err);
    return 0;
}

static int do_stop(json_t *doc, void *userdata, struct st_err **err)
{
    static const char *const allowed[] = {"active", "error", NULL};
    int r = check_state(doc, userdata, allowed, err);
    if (r < 0)
        return r;
    json_object_set_new(server_spec(doc), "power", json_string("off"));
    json_object_set_new(server_status_obj(doc), "task_state", json_string("powering-off"));
    return 0;
}

static int do_start(json_t *doc, void *userdata, struct st_err **err)
{
    static const char *const allowed[] = {"stopped", NULL};
    int r = check_state(doc, userdata, allowed, err);
    if (r < 0)
        return r;
    json_object_set_new(server_spec(doc), "power", json_string("on"));
    json_object_set_new(server_status_obj(doc), "task_state", json_string("powering-on"));
    return 0;
}

static int do_reboot(json_t *doc, void *userdata, struct st_err **err)
{
    const struct action *a = userdata;
    static const char *const soft[] = {"active", NULL};
    static const char *const hard[] = {"active", "stopped", "error", NULL};
    int r = check_state(doc, a, a->hard ? hard : soft, err);
    if (r < 0)
        return r;
    json_t *spec = server_spec(doc);
    json_object_set_new(spec, "reboot", json_integer(spec_int(doc, "reboot") + 1));
    json_object_set_new(spec, "reboot_type", json_string(a->hard ? "HARD" : "SOFT"));
    json_object_set_new(spec, "power", json_string("on")); /* a hard reboot starts a stopped one */
    json_object_set_new(server_status_obj(doc), "task_state",
                        json_string(a->hard ? "rebooting_hard" : "rebooting"));
    return 0;
}

int st_compute_server_stop(struct st_kv *kv, const char *id, struct st_err **err)
{
    struct action a = {"stop", id, false};
    return st_compute_server_update(kv, id, do_stop, &a, NULL, err);
}

int st_compute_server_start(struct st_kv *kv, const char *id, struct st_err **err)
{
    struct action a = {"start", id, false};
    return st_compute_server_update(kv, id, do_start, &a, NULL, err);
}

int st_compute_server_reboot(struct st_kv *kv, const char *id, bool hard, struct st_err **err)
{
    struct action a = {"reboot", id, hard};
    return st_compute_server_update(kv, id, do_reboot, &a, NULL, err);
}

/* ---- console ---- */

/* Appends s[0..n) to out as valid UTF-8 without control characters other
 * than \t, \n and \r (a JSON string that a terminal shows safely); invalid
 * bytes become U+FFFD. */
static size_t sanitize(const unsigned char *s, size_t n, char *out)
{
    size_t o = 0;
    for (size_t i = 0; i < n;) {
        unsigned char c = s[i];
        if (c < 0x80) {
            if (c >= 0x20 ? c != 0x7f : (c == '\t' || c == '\n' || c == '\r'))
                out[o++] = (char)c;
            i++;
            continue;
        }
        size_t len = c >= 0xf0 && c <= 0xf4 ? 4 : c >= 0xe0 ? 3 : c >= 0xc2 && c < 0xe0 ? 2 : 0;
        bool ok = len > 0 && i + len <= n;
        for (size_t k = 1; ok && k < len; k++)
            ok = (s[i + k] & 0xc0) == 0x80;
        if (ok && len == 3) /* no overlong forms, no surrogates */
            ok = !(c == 0xe0 && s[i + 1] < 0xa0) && !(c == 0xed && s[i + 1] >= 0xa0);
        if (ok && len == 4)
            ok = !(c == 0xf0 && s[i + 1] < 0x90) && !(c == 0xf4 && s[i + 1] >= 0x90);
        if (ok) {
            memcpy(out + o, s + i, len);
            o += len;
            i += len;
        } else {
            memcpy(out + o, "\xef\xbf\xbd", 3);
            o += 3;
            i++;
        }
    }
    out[o] = '\0';
    return o;
}

/* Where the last `lines` lines of s[0..n) start (a final line without a
 * newline counts as a line). */
static size_t tail_start(const char *s, size_t n, int64_t lines)
{
    size_t end = n;
    if (end > 0 && s[end - 1] == '\n')
        end--;
    int64_t seen = 0;
    for (size_t i = end; i > 0; i--) {
        if (s[i - 1] == '\n' && ++seen == lines)
            return i;
    }
    return 0;
}

int st_compute_server_console(struct st_kv *kv, const char *id, int64_t lines, char **ret,
                              struct st_err **err)
{
    st_autoptr(json_t) doc = NULL;
    int r = st_compute_server_get(kv, id, &doc, NULL, err);
    if (r < 0)
        return r;
    if (!server_str(server_spec(doc), "host"))
        return st_err_set(err, -EBUSY, "Instance %s is not ready.", id);
    st_autofree char *key = st_sprintf("%s%s", ST_COMPUTE_CONSOLES_PREFIX, id);
    st_autoptr(st_kv_entry) e = NULL;
    r = st_kv_get(kv, key, &e, err);
    if (r == -ENOENT) {
        st_err_clear(err);
        *ret = st_strdup("");
        return 0;
    }
    if (r < 0)
        return st_err_prefix(err, r, "reading the console of server %s", id);
    size_t start = 0;
    if (lines == 0)
        start = e->value_len;
    else if (lines > 0)
        start = tail_start(e->value, e->value_len, lines);
    char *out = st_new0(char, 3 * (e->value_len - start) + 1);
    sanitize((const unsigned char *)e->value + start, e->value_len - start, out);
    *ret = out;
    return 0;
}
