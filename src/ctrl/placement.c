/* The placement controller (see placement.h for the protocol): its thread,
 * the relist / watch loop that keeps the view current, the placement of one
 * server (schedule, allocate with CAS, bind with CAS), the no-valid-host
 * fault, and the reconciliation a full relist runs. Only this thread touches
 * the view; the store is the only thing shared with other controllers. */
#include "ctrl/placement.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "compute/model.h"
#include "ctrl/view.h"
#include "lib/cleanup.h"
#include "lib/json.h"
#include "lib/log.h"
#include "lib/times.h"
#include "store/kv.h"

#define DEFAULT_RELIST_MS 30000
#define WATCH_POLL_MS     200 /* bounds how long stop waits */
#define LIST_PAGE         500
#define PLACE_ATTEMPTS    32 /* lost allocation swaps before leaving a server for later */
#define CAS_ATTEMPTS      32
#define ERROR_BACKOFF_MS  500
#define WATCH_PREFIX      "/compute/"

struct st_ctrl_placement {
    struct st_kv *kv;
    struct st_ctrl_placement_config cfg;
    pthread_t thread;
    bool stop;
    struct st_ctrl_view *view;
    int64_t watch_rev;
    /* the view's snapshot, as of the last st_ctrl_view_snapshot */
    struct st_sched_node *nodes;
    struct st_ctrl_view_host **hosts;
    uint32_t *members;    /* per snapshot node: members of the group being placed */
    size_t *member_nodes; /* the snapshot nodes that host one */
    size_t members_cap;
    size_t start; /* where spread's sampled scan begins next */
    struct st_ctrl_placement_stats stats;
};

#define STAT_ADD(p, field) __atomic_add_fetch(&(p)->stats.field, 1, __ATOMIC_RELAXED)

static int64_t now_ms(struct st_ctrl_placement *p)
{
    return p->cfg.now_ms ? p->cfg.now_ms(p->cfg.now_userdata) : st_time_now_ms();
}

static bool stopping(struct st_ctrl_placement *p)
{
    return __atomic_load_n(&p->stop, __ATOMIC_ACQUIRE);
}

static void sleep_ms(int ms)
{
    struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000};
    nanosleep(&ts, NULL);
}

static char *key_of(const char *prefix, const char *name)
{
    return st_sprintf("%s%s", prefix, name);
}

/* Applies what we just read or wrote, so the view does not wait for the
 * watch to learn it. */
static void view_apply_entry(struct st_ctrl_placement *p, const char *key, const char *value,
                             size_t len, int64_t mod_rev, int64_t create_rev)
{
    st_ctrl_view_apply(p->view, key, value, len, mod_rev, create_rev);
}

/* ---- allocations ------------------------------------------------------- */

/* Re-reads one allocation document into the view (after a lost swap). */
static int refresh_alloc(struct st_ctrl_placement *p, const char *host, struct st_err **err)
{
    st_autofree char *key = key_of(ST_COMPUTE_ALLOCATIONS_PREFIX, host);
    st_autoptr(st_kv_entry) e = NULL;
    int r = st_kv_get(p->kv, key, &e, err);
    if (r == -ENOENT) {
        st_err_clear(err);
        struct st_ctrl_view_host *h = st_ctrl_view_host(p->view, host);
        int64_t rev = st_kv_revision(p->kv);
        if (h && h->alloc && rev > h->alloc_rev)
            view_apply_entry(p, key, NULL, 0, rev, 0);
        return 0;
    }
    if (r < 0)
        return r;
    view_apply_entry(p, key, e->value, e->value_len, e->mod_rev, e->create_rev);
    return 0;
}

/* Adds the server to the host's allocation as the view knows it: -ECANCELED
 * (view refreshed) when the document moved since. */
static int alloc_add(struct st_ctrl_placement *p, const char *host, const char *id,
                     const struct st_sched_resources *res, struct st_err **err)
{
    struct st_ctrl_view_host *h = st_ctrl_view_host(p->view, host);
    bool exists = h && h->alloc;
    st_autoptr(json_t) doc = exists ? json_deep_copy(h->alloc) : json_object();
    int64_t expect = exists ? h->alloc_rev : ST_KV_ABSENT;
    json_t *servers = json_object_get(doc, "servers");
    if (!json_is_object(servers)) {
        servers = json_object();
        json_object_set_new(doc, "servers", servers);
    }
    if (json_object_get(servers, id))
        return 0;
    json_object_set_new(servers, id, st_ctrl_view_resources_json(res));
    st_autofree char *key = key_of(ST_COMPUTE_ALLOCATIONS_PREFIX, host);
    st_autofree char *text = st_json_dumps(doc);
    int64_t rev = 0;
    int r = st_kv_put(p->kv, key, text, strlen(text), expect, &rev, err);
    if (r == -ECANCELED) {
        st_err_clear(err);
        STAT_ADD(p, conflicts);
        r = refresh_alloc(p, host, err);
        return r < 0 ? r : -ECANCELED;
    }
    if (r < 0)
        return st_err_prefix(err, r, "allocating server %s on node %s", id, host);
    view_apply_entry(p, key, text, strlen(text), rev, exists ? 0 : rev);
    return 0;
}

/* Removes the server from the host's allocation, read fresh from the store. */
static int alloc_remove(struct st_ctrl_placement *p, const char *host, const char *id,
                        struct st_err **err)
{
    st_autofree char *key = key_of(ST_COMPUTE_ALLOCATIONS_PREFIX, host);
    for (int attempt = 0; attempt < CAS_ATTEMPTS; attempt++) {
        st_autoptr(st_kv_entry) e = NULL;
        int r = st_kv_get(p->kv, key, &e, err);
        if (r == -ENOENT) {
            st_err_clear(err);
            return 0;
        }
        if (r < 0)
            return r;
        st_autoptr(json_t) doc = NULL;
        if ((r = st_json_parse_object(e->value, e->value_len, &doc, err)) < 0)
            return st_err_prefix(err, r, "allocation of node %s", host);
        json_t *servers = json_object_get(doc, "servers");
        if (!json_object_get(servers, id)) {
            view_apply_entry(p, key, e->value, e->value_len, e->mod_rev, e->create_rev);
            return 0;
        }
        json_object_del(servers, id);
        st_autofree char *text = st_json_dumps(doc);
        int64_t rev = 0;
        r = st_kv_put(p->kv, key, text, strlen(text), e->mod_rev, &rev, err);
        if (r == -ECANCELED) {
            st_err_clear(err);
            continue;
        }
        if (r < 0)
            return st_err_prefix(err, r, "releasing server %s on node %s", id, host);
        view_apply_entry(p, key, text, strlen(text), rev, e->create_rev);
        STAT_ADD(p, released);
        st_log_info("allocation_released", "server=%s node=%s", id, host);
        return 0;
    }
    return st_err_set(err, -EAGAIN, "allocation of node %s is contended", host);
}

/* ---- server documents -------------------------------------------------- */

typedef int (*server_edit_fn)(json_t *doc, void *userdata);

/* Read-modify-write of a server document with compare-and-swap. edit
 * returns 1 to write, 0 to leave the document as it is, or a negative
 * errno; the result is edit's verdict (or -ENOENT if the server is gone). */
static int server_update(struct st_ctrl_placement *p, const char *id, server_edit_fn edit,
                         void *userdata, struct st_err **err)
{
    st_autofree char *key = key_of(ST_COMPUTE_SERVERS_PREFIX, id);
    for (int attempt = 0; attempt < CAS_ATTEMPTS; attempt++) {
        st_autoptr(st_kv_entry) e = NULL;
        int r = st_kv_get(p->kv, key, &e, err);
        if (r == -ENOENT) {
            st_err_clear(err);
            struct st_ctrl_view_server *s = st_ctrl_view_server(p->view, id);
            if (s)
                view_apply_entry(p, key, NULL, 0, st_kv_revision(p->kv), 0);
            return -ENOENT;
        }
        if (r < 0)
            return r;
        st_autoptr(json_t) doc = NULL;
        if ((r = st_json_parse_object(e->value, e->value_len, &doc, err)) < 0)
            return st_err_prefix(err, r, "server %s", id);
        int verdict = edit(doc, userdata);
        if (verdict <= 0) {
            view_apply_entry(p, key, e->value, e->value_len, e->mod_rev, e->create_rev);
            return verdict;
        }
        char now[ST_TIME_RFC3339_LEN];
        st_time_rfc3339(now_ms(p) / 1000, now, sizeof(now));
        json_object_set_new(doc, "updated_at", json_string(now));
        st_autofree char *text = st_json_dumps(doc);
        int64_t rev = 0;
        r = st_kv_put(p->kv, key, text, strlen(text), e->mod_rev, &rev, err);
        if (r == -ECANCELED) {
            st_err_clear(err);
            continue;
        }
        if (r < 0)
            return st_err_prefix(err, r, "writing server %s", id);
        view_apply_entry(p, key, text, strlen(text), rev, e->create_rev);
        return verdict;
    }
    return st_err_set(err, -EAGAIN, "server %s is contended", id);
}

static json_t *obj_child(json_t *doc, const char *k)
{
    json_t *o = json_object_get(doc, k);
    if (!json_is_object(o)) {
        o = json_object();
        json_object_set_new(doc, k, o);
    }
    return o;
}

/* Still waiting for a host? Returns 1 if so, else why not. */
static int server_placeable(json_t *doc, const char **ret_host)
{
    json_t *spec = json_object_get(doc, "spec");
    json_t *status = json_object_get(doc, "status");
    *ret_host = json_string_value(json_object_get(spec, "host"));
    if (*ret_host)
        return -EEXIST;
    const char *state = json_string_value(json_object_get(status, "state"));
    if (json_is_true(json_object_get(spec, "deleted")) || !state || strcmp(state, "BUILD") != 0)
        return -ECANCELED;
    return 1;
}

struct bind_edit {
    const char *host;
    bool already; /* spec.host was already this host */
};

static int edit_bind(json_t *doc, void *userdata)
{
    struct bind_edit *b = userdata;
    const char *host;
    int r = server_placeable(doc, &host);
    if (r == -EEXIST && strcmp(host, b->host) == 0) {
        b->already = true;
        return 0;
    }
    if (r <= 0)
        return r;
    json_object_set_new(obj_child(doc, "spec"), "host", json_string(b->host));
    json_object_set_new(obj_child(doc, "status"), "task_state", json_string("spawning"));
    return 1;
}

/* Writes spec.host = host for a server allocated there; if the server is
 * gone, deleted, failed or placed elsewhere, the allocation entry goes. */
static int bind(struct st_ctrl_placement *p, const char *id, const char *host_in, bool adopting,
                struct st_err **err)
{
    st_autofree char *host = st_strdup(host_in); /* the caller's may go with the view */
    struct bind_edit b = {.host = host};
    int r = server_update(p, id, edit_bind, &b, err);
    if (r == 1 || (r == 0 && b.already)) {
        if (r == 1) {
            STAT_ADD(p, placed);
            if (adopting)
                STAT_ADD(p, adopted);
            st_log_info("server_placed", "server=%s node=%s%s", id, host,
                        adopting ? " adopted=true" : "");
        }
        return 0;
    }
    if (r == -ENOENT || r == -EEXIST || r == -ECANCELED) {
        int rr = alloc_remove(p, host, id, err);
        return rr < 0 ? rr : r;
    }
    return r;
}

struct fail_edit {
    const char *message;
    const char *created;
};

static int edit_fail(json_t *doc, void *userdata)
{
    struct fail_edit *f = userdata;
    const char *host;
    int r = server_placeable(doc, &host);
    if (r <= 0)
        return r == -EEXIST ? 0 : r;
    json_t *status = obj_child(doc, "status");
    json_object_set_new(status, "state", json_string("ERROR"));
    json_object_set_new(status, "task_state", json_null());
    json_object_set_new(
        status, "fault",
        json_pack("{s:i, s:s, s:s}", "code", 500, "message", f->message, "created", f->created));
    return 1;
}

static int fail_server(struct st_ctrl_placement *p, const char *id, const char *message,
                       struct st_err **err)
{
    char created[ST_TIME_RFC3339_LEN];
    st_time_rfc3339(now_ms(p) / 1000, created, sizeof(created));
    struct fail_edit f = {.message = message, .created = created};
    int r = server_update(p, id, edit_fail, &f, err);
    if (r == 1) {
        STAT_ADD(p, failed);
        st_log_warn("server_no_valid_host", "server=%s fault=\"%s\"", id, message);
    }
    return r < 0 && r != -ENOENT && r != -ECANCELED ? r : 0;
}

/* ---- scheduling one server --------------------------------------------- */

/* Marks the nodes hosting members of the server's group (other than the
 * server itself), with how many each hosts (the soft policies weigh the
 * count), and fills the request's group fields; true if it touched the
 * snapshot. */
static bool apply_group(struct st_ctrl_placement *p, const struct st_ctrl_view_server *s, size_t n,
                        struct st_sched_request *req, const char **group_id)
{
    struct st_ctrl_view_group *g = s->group ? st_ctrl_view_group(p->view, s->group) : NULL;
    if (!g || g->policy == ST_SCHED_GROUP_NONE)
        return false;
    *group_id = g->id;
    req->group = g->id;
    req->group_policy = g->policy;
    if (n > p->members_cap) {
        p->members_cap = n;
        p->members = st_xrealloc(p->members, n * sizeof(*p->members));
        p->member_nodes = st_xrealloc(p->member_nodes, n * sizeof(*p->member_nodes));
    }
    req->member_nodes = p->member_nodes;
    req->n_member_nodes = 0;
    bool hard = g->policy == ST_SCHED_GROUP_AFFINITY || g->policy == ST_SCHED_GROUP_ANTI_AFFINITY;
    for (size_t i = 0; i < n; i++) {
        json_t *servers = json_object_get(p->hosts[i]->alloc, "servers");
        const char *sid;
        json_t *entry;
        uint32_t count = 0;
        json_object_foreach(servers, sid, entry)
        {
            if (strcmp(sid, s->id) == 0 || !st_ctrl_view_is_member(p->view, g, sid))
                continue;
            count++;
            if (hard)
                break; /* a filter needs only whether */
        }
        p->members[i] = count;
        if (count) {
            p->nodes[i].groups = group_id;
            p->nodes[i].n_groups = 1;
            p->nodes[i].group_members = &p->members[i];
            p->member_nodes[req->n_member_nodes++] = i;
            req->group_has_members = true;
        }
    }
    return true;
}

static struct st_sched_request request_of(const struct st_ctrl_view_server *s)
{
    return (struct st_sched_request){
        .res = s->res,
        .driver = s->driver,
        .availability_zone = s->zone,
    };
}

/* bind's answers that mean "someone else settled this server" are fine. */
static int settled(int r)
{
    return r == -ENOENT || r == -EEXIST || r == -ECANCELED ? 0 : r;
}

static int place_one(struct st_ctrl_placement *p, const char *id, struct st_err **err)
{
    for (int attempt = 0; attempt < PLACE_ATTEMPTS; attempt++) {
        struct st_ctrl_view_server *s = st_ctrl_view_server(p->view, id);
        if (!s || s->host || s->deleted || s->state != ST_CTRL_SERVER_BUILD)
            return 0;
        /* Allocated already (a peer's placement in flight, or ours before a
         * crash): finish that placement rather than book a second node. */
        if (s->alloc_host)
            return settled(bind(p, id, s->alloc_host, true, err));

        size_t n = st_ctrl_view_snapshot(p->view, now_ms(p), &p->nodes, &p->hosts);
        struct st_sched_request req = request_of(s);
        const char *group_id = NULL;
        if (apply_group(p, s, n, &req, &group_id))
            st_ctrl_view_snapshot_invalidate(p->view); /* marks set: not for the next server */
        struct st_sched_options opts = {.weigher = p->cfg.weigher};
        if (!p->cfg.score_all_nodes) {
            opts.enough = st_sched_enough(n);
            opts.start = p->cfg.weigher == ST_SCHED_SPREAD ? p->start : 0;
        }
        struct st_sched_explain explain;
        size_t best = 0, k = 0;
        int r = st_sched_place(p->nodes, n, &req, &opts, &best, 1, &k, &explain, err);
        if (r < 0)
            return r;
        if (opts.weigher == ST_SCHED_SPREAD && n)
            p->start = (p->start + explain.n_nodes) % n;

        if (k == 0) {
            /* Definitive only if it would not fit even without the
             * allocations still in flight (not yet bound to that node). */
            for (size_t i = 0; i < n; i++)
                p->nodes[i].used =
                    st_ctrl_view_alloc_sum(p->view, p->hosts[i]->alloc, p->hosts[i]->name);
            st_ctrl_view_snapshot_invalidate(p->view);
            opts.enough = 0;
            size_t k2 = 0;
            if ((r = st_sched_place(p->nodes, n, &req, &opts, &best, 1, &k2, &explain, err)) < 0)
                return r;
            if (k2 > 0) {
                STAT_ADD(p, deferred);
                return 0;
            }
            char msg[1024];
            st_sched_explain_format(&explain, msg, sizeof(msg));
            return fail_server(p, id, msg, err);
        }

        st_autofree char *host = st_strdup(p->nodes[best].name);
        r = alloc_add(p, host, id, &s->res, err);
        if (r == -ECANCELED)
            continue; /* the view has that node's allocation fresh: schedule again */
        if (r < 0)
            return r;
        return settled(bind(p, id, host, false, err));
    }
    st_log_warn("placement_contended", "server=%s attempts=%d", id, PLACE_ATTEMPTS);
    return 0;
}

struct pending {
    char *id;
    int64_t create_rev;
};

static int pending_cmp(const void *a, const void *b)
{
    const struct pending *x = a, *y = b;
    if (x->create_rev != y->create_rev)
        return x->create_rev < y->create_rev ? -1 : 1;
    return strcmp(x->id, y->id);
}

/* Places every server waiting for a host, oldest first. */
static void place_pending(struct st_ctrl_placement *p)
{
    struct st_ctrl_view *v = p->view;
    size_t n = 0;
    for (size_t i = 0; i < v->servers.n; i++) {
        struct st_ctrl_view_server *s = v->servers.items[i];
        n += !s->host && !s->deleted && s->state == ST_CTRL_SERVER_BUILD;
    }
    if (!n)
        return;
    struct pending *list = st_new0(struct pending, n);
    size_t k = 0;
    for (size_t i = 0; i < v->servers.n && k < n; i++) {
        struct st_ctrl_view_server *s = v->servers.items[i];
        if (!s->host && !s->deleted && s->state == ST_CTRL_SERVER_BUILD)
            list[k++] = (struct pending){st_strdup(s->id), s->create_rev};
    }
    qsort(list, k, sizeof(*list), pending_cmp);
    for (size_t i = 0; i < k; i++) {
        if (!stopping(p)) {
            st_autoptr(st_err) err = NULL;
            if (place_one(p, list[i].id, &err) < 0)
                st_log_warn("placement_error", "server=%s error=\"%s\"", list[i].id,
                            st_err_msg(err));
        }
        free(list[i].id);
    }
    free(list);
}

/* ---- relist and reconcile ---------------------------------------------- */

static int list_into(struct st_kv *kv, struct st_ctrl_view *v, const char *prefix, int64_t *min_rev,
                     struct st_err **err)
{
    st_autofree char *after = NULL;
    for (;;) {
        st_autoptr(st_kv_list) l = NULL;
        int r = st_kv_list(kv, prefix, after, LIST_PAGE, &l, err);
        if (r < 0)
            return st_err_prefix(err, r, "listing %s", prefix);
        if (l->revision < *min_rev)
            *min_rev = l->revision;
        for (size_t i = 0; i < l->count; i++) {
            struct st_kv_entry *e = &l->entries[i];
            st_ctrl_view_apply(v, e->key, e->value, e->value_len, e->mod_rev, e->create_rev);
        }
        if (!l->more || !l->count)
            return 0;
        free(after);
        after = st_strdup(l->entries[l->count - 1].key);
    }
}

/* A fresh view from full lists. Allocations are read before servers, so an
 * allocation entry whose server is missing from the later list names a
 * server that is truly gone (servers exist before they are allocated). */
static int relist(struct st_ctrl_placement *p, struct st_err **err)
{
    static const char *const prefixes[] = {ST_COMPUTE_NODES_PREFIX, ST_COMPUTE_ALLOCATIONS_PREFIX,
                                           ST_COMPUTE_SERVER_GROUPS_PREFIX,
                                           ST_COMPUTE_SERVERS_PREFIX};
    struct st_ctrl_view *v = st_ctrl_view_new();
    int64_t min_rev = INT64_MAX;
    for (size_t i = 0; i < ST_ARRAY_SIZE(prefixes); i++) {
        int r = list_into(p->kv, v, prefixes[i], &min_rev, err);
        if (r < 0) {
            st_ctrl_view_free(v);
            return r;
        }
    }
    st_ctrl_view_index_allocs(v);
    st_ctrl_view_free(p->view);
    p->view = v;
    p->watch_rev = min_rev;
    STAT_ADD(p, relists);
    return 0;
}

enum fix_kind { FIX_REMOVE, FIX_ADOPT, FIX_RESTORE };

struct fix {
    enum fix_kind kind;
    char *host, *id;
};

static void fix_add(struct fix **fixes, size_t *n, size_t *cap, enum fix_kind kind,
                    const char *host, const char *id)
{
    if (*n == *cap) {
        *cap = *cap ? 2 * *cap : 16;
        *fixes = st_xrealloc(*fixes, *cap * sizeof(**fixes));
    }
    (*fixes)[(*n)++] = (struct fix){kind, st_strdup(host), st_strdup(id)};
}

/* Restores the entry of a server placed on host (it runs there whatever the
 * allocation says), without admission: the node is already committed. */
static int alloc_restore(struct st_ctrl_placement *p, const char *host, const char *id,
                         struct st_err **err)
{
    for (int attempt = 0; attempt < CAS_ATTEMPTS; attempt++) {
        struct st_ctrl_view_server *s = st_ctrl_view_server(p->view, id);
        if (!s || !s->host || strcmp(s->host, host) != 0 || s->deleted)
            return 0;
        struct st_sched_resources res = s->res;
        int r = alloc_add(p, host, id, &res, err);
        if (r == -ECANCELED)
            continue;
        if (r == 0)
            st_log_warn("allocation_restored", "server=%s node=%s", id, host);
        return r;
    }
    return st_err_set(err, -EAGAIN, "allocation of node %s is contended", host);
}

/* What a crash between allocation and binding (or a lost race) leaves. */
static void reconcile(struct st_ctrl_placement *p)
{
    struct st_ctrl_view *v = p->view;
    struct fix *fixes = NULL;
    size_t n = 0, cap = 0;
    st_autoptr(json_t) adopted = json_object(); /* server ids given a host in this pass */
    for (size_t i = 0; i < v->hosts.n; i++) {
        struct st_ctrl_view_host *h = v->hosts.items[i];
        const char *id;
        json_t *entry;
        json_object_foreach(json_object_get(h->alloc, "servers"), id, entry)
        {
            struct st_ctrl_view_server *s = st_ctrl_view_server(v, id);
            if (!s || (s->host && strcmp(s->host, h->name) != 0) ||
                (!s->host && (s->deleted || s->state != ST_CTRL_SERVER_BUILD))) {
                fix_add(&fixes, &n, &cap, FIX_REMOVE, h->name, id);
            } else if (!s->host && !json_object_get(adopted, id)) {
                /* Further entries of the same server go once it has a host. */
                json_object_set_new(adopted, id, json_true());
                fix_add(&fixes, &n, &cap, FIX_ADOPT, h->name, id);
            }
        }
    }
    for (size_t i = 0; i < v->servers.n; i++) {
        struct st_ctrl_view_server *s = v->servers.items[i];
        if (!s->host || s->deleted)
            continue;
        struct st_ctrl_view_host *h = st_ctrl_view_host(v, s->host);
        if (!h || !json_object_get(json_object_get(h->alloc, "servers"), s->id))
            fix_add(&fixes, &n, &cap, FIX_RESTORE, s->host, s->id);
    }
    for (size_t i = 0; i < n; i++) {
        st_autoptr(st_err) err = NULL;
        int r = 0;
        if (!stopping(p)) {
            switch (fixes[i].kind) {
            case FIX_REMOVE:
                r = alloc_remove(p, fixes[i].host, fixes[i].id, &err);
                break;
            case FIX_ADOPT:
                r = bind(p, fixes[i].id, fixes[i].host, true, &err);
                break;
            case FIX_RESTORE:
                r = alloc_restore(p, fixes[i].host, fixes[i].id, &err);
                break;
            }
        }
        if (r < 0 && r != -ENOENT && r != -EEXIST && r != -ECANCELED)
            st_log_warn("placement_reconcile_error", "server=%s node=%s error=\"%s\"", fixes[i].id,
                        fixes[i].host, st_err_msg(err));
        free(fixes[i].host);
        free(fixes[i].id);
    }
    free(fixes);
}

/* ---- the loop ---------------------------------------------------------- */

/* A server document that disappears takes its allocation entry with it
 * (the internal API removes it too; this covers any path that did not). */
static void release_deleted(struct st_ctrl_placement *p, const char *id, const char *host)
{
    struct st_ctrl_view_host *h = st_ctrl_view_host(p->view, host);
    if (!h || !json_object_get(json_object_get(h->alloc, "servers"), id))
        return;
    st_autoptr(st_err) err = NULL;
    if (alloc_remove(p, host, id, &err) < 0)
        st_log_warn("placement_release_error", "server=%s node=%s error=\"%s\"", id, host,
                    st_err_msg(err));
}

static void apply_events(struct st_ctrl_placement *p, struct st_kv_events *ev)
{
    size_t plen = strlen(ST_COMPUTE_SERVERS_PREFIX);
    for (size_t i = 0; i < ev->count; i++) {
        struct st_kv_event *e = &ev->events[i];
        if (e->type == ST_KV_EVENT_DELETE &&
            strncmp(e->kv.key, ST_COMPUTE_SERVERS_PREFIX, plen) == 0) {
            struct st_ctrl_view_server *s = st_ctrl_view_server(p->view, e->kv.key + plen);
            st_autofree char *id = s ? st_strdup(s->id) : NULL;
            st_autofree char *host = s ? st_strdup(s->host ? s->host : s->alloc_host) : NULL;
            st_ctrl_view_apply(p->view, e->kv.key, NULL, 0, e->kv.mod_rev, 0);
            if (id && host)
                release_deleted(p, id, host);
            continue;
        }
        st_ctrl_view_apply(p->view, e->kv.key, e->type == ST_KV_EVENT_PUT ? e->kv.value : NULL,
                           e->kv.value_len, e->kv.mod_rev, e->kv.create_rev);
    }
}

static void *placement_thread(void *arg)
{
    struct st_ctrl_placement *p = arg;
    bool need_relist = true;
    int64_t next_relist = 0;
    unsigned interval = p->cfg.relist_interval_ms ? p->cfg.relist_interval_ms : DEFAULT_RELIST_MS;
    while (!stopping(p)) {
        int64_t mono = st_time_mono_ns() / 1000000;
        if (need_relist || mono >= next_relist) {
            st_autoptr(st_err) err = NULL;
            if (relist(p, &err) < 0) {
                st_log_error("placement_relist_failed", "error=\"%s\"", st_err_msg(err));
                sleep_ms(ERROR_BACKOFF_MS);
                continue;
            }
            reconcile(p);
            need_relist = false;
            next_relist = mono + interval;
        }
        place_pending(p);

        mono = st_time_mono_ns() / 1000000;
        int64_t wait = next_relist - mono;
        int timeout = wait < 0 ? 0 : wait > WATCH_POLL_MS ? WATCH_POLL_MS : (int)wait;
        st_autoptr(st_kv_events) ev = NULL;
        st_autoptr(st_err) err = NULL;
        int r = st_kv_watch(p->kv, WATCH_PREFIX, p->watch_rev, timeout, &ev, &err);
        if (r == -ESTALE) {
            need_relist = true;
            continue;
        }
        if (r < 0) {
            st_log_error("placement_watch_failed", "error=\"%s\"", st_err_msg(err));
            need_relist = true;
            sleep_ms(ERROR_BACKOFF_MS);
            continue;
        }
        apply_events(p, ev);
        if (ev->revision > p->watch_rev)
            p->watch_rev = ev->revision;
        /* A store woken for shutdown answers every watch at once: do not
         * spin on it until stop arrives. */
        if (!ev->count && st_time_mono_ns() / 1000000 - mono < timeout / 2)
            sleep_ms(WATCH_POLL_MS / 4);
    }
    return NULL;
}

int st_ctrl_placement_start(struct st_kv *kv, const struct st_ctrl_placement_config *cfg,
                            struct st_ctrl_placement **ret, struct st_err **err)
{
    if (!kv || !ret)
        return st_err_set(err, -EINVAL, "placement controller: missing store");
    struct st_ctrl_placement *p = st_new0(struct st_ctrl_placement, 1);
    p->kv = kv;
    if (cfg)
        p->cfg = *cfg;
    if (p->cfg.weigher != ST_SCHED_SPREAD && p->cfg.weigher != ST_SCHED_PACK) {
        free(p);
        return st_err_set(err, -EINVAL, "placement controller: unknown weigher");
    }
    p->view = st_ctrl_view_new();
    int r = pthread_create(&p->thread, NULL, placement_thread, p);
    if (r != 0) {
        st_ctrl_view_free(p->view);
        free(p);
        return st_err_set(err, -r, "starting the placement controller: %s", strerror(r));
    }
    st_log_info("placement_started", "weigher=%s relist_ms=%u",
                st_sched_weigher_name(p->cfg.weigher),
                p->cfg.relist_interval_ms ? p->cfg.relist_interval_ms : DEFAULT_RELIST_MS);
    *ret = p;
    return 0;
}

void st_ctrl_placement_stop(struct st_ctrl_placement *p)
{
    if (!p)
        return;
    __atomic_store_n(&p->stop, true, __ATOMIC_RELEASE);
    pthread_join(p->thread, NULL);
    st_ctrl_view_free(p->view);
    free(p->members);
    free(p->member_nodes);
    free(p);
}

void st_ctrl_placement_get_stats(struct st_ctrl_placement *p, struct st_ctrl_placement_stats *ret)
{
    *ret = (struct st_ctrl_placement_stats){
        .placed = __atomic_load_n(&p->stats.placed, __ATOMIC_RELAXED),
        .failed = __atomic_load_n(&p->stats.failed, __ATOMIC_RELAXED),
        .conflicts = __atomic_load_n(&p->stats.conflicts, __ATOMIC_RELAXED),
        .deferred = __atomic_load_n(&p->stats.deferred, __ATOMIC_RELAXED),
        .adopted = __atomic_load_n(&p->stats.adopted, __ATOMIC_RELAXED),
        .released = __atomic_load_n(&p->stats.released, __ATOMIC_RELAXED),
        .relists = __atomic_load_n(&p->stats.relists, __ATOMIC_RELAXED),
    };
}
