/* The placement controller's view of /compute/ (see view.h): three tables
 * sorted by key (binary search, insertion by memmove: nodes and servers
 * number in the thousands and change one at a time), the parsing of node,
 * allocation, server and group documents into the few fields placement
 * uses, and the snapshot handed to the scheduler. */
#include "ctrl/view.h"

#include <errno.h>
#include <string.h>

#include "compute/model.h"
#include "lib/cleanup.h"
#include "lib/json.h"
#include "lib/log.h"
#include "lib/times.h"

#define DEFAULT_LEASE_S      30
#define DEFAULT_CPU_RATIO    4.0
#define DEFAULT_MEMORY_RATIO 1.0
#define DEFAULT_DISK_RATIO   1.0
#define DEFAULT_ZONE         "nova"

/* ---- sorted tables ---------------------------------------------------- */

static const char *item_key(const void *item)
{
    return *(char *const *)item;
}

/* The first index whose key is >= key; *found when equal. */
static size_t table_lower(const struct st_ctrl_view_table *t, const char *key, bool *found)
{
    size_t lo = 0, hi = t->n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (strcmp(item_key(t->items[mid]), key) < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    *found = lo < t->n && strcmp(item_key(t->items[lo]), key) == 0;
    return lo;
}

static void *table_get(const struct st_ctrl_view_table *t, const char *key)
{
    bool found;
    size_t i = table_lower(t, key, &found);
    return found ? t->items[i] : NULL;
}

static void table_insert(struct st_ctrl_view_table *t, size_t pos, void *item)
{
    if (t->n == t->cap) {
        t->cap = t->cap ? 2 * t->cap : 64;
        t->items = st_xrealloc(t->items, t->cap * sizeof(*t->items));
    }
    memmove(&t->items[pos + 1], &t->items[pos], (t->n - pos) * sizeof(*t->items));
    t->items[pos] = item;
    t->n++;
}

static void table_remove(struct st_ctrl_view_table *t, size_t pos)
{
    memmove(&t->items[pos], &t->items[pos + 1], (t->n - pos - 1) * sizeof(*t->items));
    t->n--;
}

/* ---- JSON field helpers (absent or mistyped → default) ----------------- */

static const char *jstr(json_t *o, const char *k)
{
    json_t *v = json_object_get(o, k);
    return json_is_string(v) ? json_string_value(v) : NULL;
}

static double jnum(json_t *o, const char *k, double def)
{
    json_t *v = json_object_get(o, k);
    return json_is_number(v) ? json_number_value(v) : def;
}

static uint64_t juint(json_t *o, const char *k, uint64_t def)
{
    json_t *v = json_object_get(o, k);
    if (!json_is_number(v))
        return def;
    double d = json_number_value(v);
    return d > 0 ? (uint64_t)d : 0;
}

/* ---- hosts: nodes and allocations ------------------------------------ */

static void host_clear_node(struct st_ctrl_view_host *h)
{
    for (size_t i = 0; i < h->n_drivers; i++)
        free(h->drivers[i]);
    free(h->drivers);
    free(h->zone);
    h->drivers = NULL;
    h->n_drivers = 0;
    h->zone = NULL;
    h->has_node = false;
}

static void host_free(struct st_ctrl_view_host *h)
{
    if (!h)
        return;
    host_clear_node(h);
    json_decref(h->alloc);
    free(h->name);
    free(h);
}

static struct st_ctrl_view_host *host_get_or_add(struct st_ctrl_view *v, const char *name)
{
    bool found;
    size_t i = table_lower(&v->hosts, name, &found);
    if (found)
        return v->hosts.items[i];
    struct st_ctrl_view_host *h = st_new0(struct st_ctrl_view_host, 1);
    h->name = st_strdup(name);
    table_insert(&v->hosts, i, h);
    return h;
}

static void host_drop_if_empty(struct st_ctrl_view *v, struct st_ctrl_view_host *h)
{
    if (h->has_node || h->alloc)
        return;
    bool found;
    size_t i = table_lower(&v->hosts, h->name, &found);
    if (found)
        table_remove(&v->hosts, i);
    host_free(h);
}

/* One snapshot entry from its host (alive is set per snapshot). */
static void snap_fill(struct st_ctrl_view *v, struct st_ctrl_view_host *h)
{
    v->snap[h->snap_idx] = (struct st_sched_node){
        .name = h->name,
        .drivers = (const char *const *)h->drivers,
        .n_drivers = h->n_drivers,
        .availability_zone = h->zone,
        .vcpus = h->vcpus,
        .cpu_mhz = h->cpu_mhz,
        .memory_mb = h->memory_mb,
        .disk_gb = h->disk_gb,
        .cpu_ratio = h->cpu_ratio,
        .memory_ratio = h->memory_ratio,
        .disk_ratio = h->disk_ratio,
        .used = h->used,
    };
}

static void node_parse(struct st_ctrl_view_host *h, json_t *doc)
{
    host_clear_node(h);
    h->has_node = true;
    json_t *drivers = json_object_get(doc, "drivers");
    size_t nd = json_is_array(drivers) ? json_array_size(drivers) : 0;
    h->drivers = st_new0(char *, nd);
    for (size_t i = 0; i < nd; i++) {
        json_t *d = json_array_get(drivers, i);
        if (json_is_string(d))
            h->drivers[h->n_drivers++] = st_strdup(json_string_value(d));
    }
    const char *zone = jstr(doc, "availability_zone");
    h->zone = st_strdup(zone ? zone : DEFAULT_ZONE);
    json_t *cap = json_object_get(doc, "capacity");
    h->vcpus = (uint32_t)juint(cap, "vcpus", 0);
    h->cpu_mhz = (uint32_t)juint(cap, "cpu_mhz", 0);
    h->memory_mb = juint(cap, "memory_mb", 0);
    h->disk_gb = juint(cap, "disk_gb", 0);
    json_t *ratio = json_object_get(doc, "allocation_ratio");
    h->cpu_ratio = jnum(ratio, "cpu", DEFAULT_CPU_RATIO);
    h->memory_ratio = jnum(ratio, "memory", DEFAULT_MEMORY_RATIO);
    h->disk_ratio = jnum(ratio, "disk", DEFAULT_DISK_RATIO);
    int64_t hb = 0;
    const char *hbs = jstr(doc, "heartbeat_at");
    if (!hbs || st_time_parse_rfc3339(hbs, &hb) < 0)
        hb = 0;
    h->heartbeat_ms = hb;
    h->lease_ms = (int64_t)(jnum(doc, "lease_seconds", DEFAULT_LEASE_S) * 1000);
}

static void resources_from_json(json_t *o, struct st_sched_resources *r)
{
    r->vcpus = (uint32_t)juint(o, "vcpus", 0);
    r->memory_mb = juint(o, "memory_mb", 0);
    r->disk_gb = juint(o, "disk_gb", 0);
    r->cpu_reservation_mhz = juint(o, "cpu_reservation_mhz", 0);
    r->memory_reservation_mb = juint(o, "memory_reservation_mb", r->memory_mb);
}

json_t *st_ctrl_view_resources_json(const struct st_sched_resources *r)
{
    return json_pack("{s:I,s:I,s:I,s:I,s:I}", "vcpus", (json_int_t)r->vcpus, "memory_mb",
                     (json_int_t)r->memory_mb, "disk_gb", (json_int_t)r->disk_gb,
                     "cpu_reservation_mhz", (json_int_t)r->cpu_reservation_mhz,
                     "memory_reservation_mb", (json_int_t)r->memory_reservation_mb);
}

struct st_sched_resources st_ctrl_view_alloc_sum(struct st_ctrl_view *v, json_t *alloc,
                                                 const char *bound_to)
{
    struct st_sched_resources sum = {0};
    json_t *servers = json_object_get(alloc, "servers");
    const char *id;
    json_t *entry;
    json_object_foreach(servers, id, entry)
    {
        if (bound_to) {
            struct st_ctrl_view_server *s = st_ctrl_view_server(v, id);
            if (!s || !s->host || strcmp(s->host, bound_to) != 0)
                continue;
        }
        struct st_sched_resources r;
        resources_from_json(entry, &r);
        sum.vcpus += r.vcpus;
        sum.memory_mb += r.memory_mb;
        sum.disk_gb += r.disk_gb;
        sum.cpu_reservation_mhz += r.cpu_reservation_mhz;
        sum.memory_reservation_mb += r.memory_reservation_mb;
    }
    return sum;
}

/* Keeps servers' alloc_host in step as the host's allocation changes. */
static void index_alloc(struct st_ctrl_view *v, struct st_ctrl_view_host *h, json_t *alloc,
                        bool add)
{
    json_t *servers = json_object_get(alloc, "servers");
    const char *id;
    json_t *entry;
    json_object_foreach(servers, id, entry)
    {
        struct st_ctrl_view_server *s = st_ctrl_view_server(v, id);
        if (!s)
            continue;
        if (add && !s->alloc_host) {
            s->alloc_host = st_strdup(h->name);
        } else if (!add && s->alloc_host && strcmp(s->alloc_host, h->name) == 0) {
            free(s->alloc_host);
            s->alloc_host = NULL;
        }
    }
}

static void host_set_alloc(struct st_ctrl_view *v, struct st_ctrl_view_host *h, json_t *doc,
                           int64_t rev)
{
    if (h->alloc) {
        index_alloc(v, h, h->alloc, false);
        json_decref(h->alloc);
    }
    h->alloc = doc; /* takes the reference */
    h->alloc_rev = doc ? rev : 0;
    h->used = doc ? st_ctrl_view_alloc_sum(v, doc, NULL) : (struct st_sched_resources){0};
    if (doc)
        index_alloc(v, h, doc, true);
    if (v->snap_valid && h->has_node)
        v->snap[h->snap_idx].used = h->used;
}

/* ---- servers and groups ------------------------------------------------ */

static void server_free(struct st_ctrl_view_server *s)
{
    if (!s)
        return;
    free(s->id);
    free(s->host);
    free(s->alloc_host);
    free(s->group);
    free(s->driver);
    free(s->zone);
    free(s);
}

static void server_parse(struct st_ctrl_view_server *s, json_t *doc)
{
    json_t *spec = json_object_get(doc, "spec");
    json_t *status = json_object_get(doc, "status");
    free(s->host);
    free(s->group);
    free(s->driver);
    free(s->zone);
    s->host = st_strdup(jstr(spec, "host"));
    s->group = st_strdup(jstr(spec, "server_group"));
    s->driver = st_strdup(jstr(spec, "driver"));
    s->zone = st_strdup(jstr(spec, "availability_zone"));
    s->deleted = json_is_true(json_object_get(spec, "deleted"));
    const char *state = jstr(status, "state");
    s->state = state && strcmp(state, "BUILD") == 0 ? ST_CTRL_SERVER_BUILD : ST_CTRL_SERVER_OTHER;
    json_t *res = json_object_get(spec, "resources");
    if (json_is_object(res)) {
        resources_from_json(res, &s->res);
    } else {
        json_t *flavor = json_object_get(spec, "flavor");
        s->res = (struct st_sched_resources){
            .vcpus = (uint32_t)juint(flavor, "vcpus", 0),
            .memory_mb = juint(flavor, "ram", 0),
            .disk_gb = juint(flavor, "disk", 0),
        };
        s->res.memory_reservation_mb = s->res.memory_mb;
    }
}

static void group_free(struct st_ctrl_view_group *g)
{
    if (!g)
        return;
    json_decref(g->members);
    free(g->id);
    free(g);
}

static enum st_sched_group_policy policy_parse(const char *p)
{
    if (p && strcmp(p, "affinity") == 0)
        return ST_SCHED_GROUP_AFFINITY;
    if (p && strcmp(p, "anti-affinity") == 0)
        return ST_SCHED_GROUP_ANTI_AFFINITY;
    if (p && strcmp(p, "soft-affinity") == 0)
        return ST_SCHED_GROUP_SOFT_AFFINITY; /* preferences: weighers, not filters */
    if (p && strcmp(p, "soft-anti-affinity") == 0)
        return ST_SCHED_GROUP_SOFT_ANTI_AFFINITY;
    return ST_SCHED_GROUP_NONE;
}

static void group_parse(struct st_ctrl_view_group *g, json_t *doc)
{
    const char *policy = jstr(doc, "policy"); /* microversion 2.64 form */
    json_t *policies = json_object_get(doc, "policies");
    if (!policy && json_is_array(policies) && json_array_size(policies) > 0)
        policy = json_string_value(json_array_get(policies, 0));
    g->policy = policy_parse(policy);
    json_decref(g->members);
    json_t *members = json_object_get(doc, "members");
    g->members = json_is_array(members) ? json_incref(members) : json_array();
}

/* ---- the view ------------------------------------------------------------ */

struct st_ctrl_view *st_ctrl_view_new(void)
{
    return st_new0(struct st_ctrl_view, 1);
}

void st_ctrl_view_free(struct st_ctrl_view *v)
{
    if (!v)
        return;
    for (size_t i = 0; i < v->hosts.n; i++)
        host_free(v->hosts.items[i]);
    for (size_t i = 0; i < v->servers.n; i++)
        server_free(v->servers.items[i]);
    for (size_t i = 0; i < v->groups.n; i++)
        group_free(v->groups.items[i]);
    free(v->hosts.items);
    free(v->servers.items);
    free(v->groups.items);
    free(v->snap);
    free(v->snap_hosts);
    free(v);
}

struct st_ctrl_view_host *st_ctrl_view_host(struct st_ctrl_view *v, const char *name)
{
    return table_get(&v->hosts, name);
}

struct st_ctrl_view_server *st_ctrl_view_server(struct st_ctrl_view *v, const char *id)
{
    return table_get(&v->servers, id);
}

struct st_ctrl_view_group *st_ctrl_view_group(struct st_ctrl_view *v, const char *id)
{
    return table_get(&v->groups, id);
}

static json_t *parse_doc(const char *key, const char *value, size_t len)
{
    json_t *doc = NULL;
    st_autoptr(st_err) err = NULL;
    if (st_json_parse_object(value, len, &doc, &err) < 0) {
        st_log_warn("placement_bad_document", "key=%s error=\"%s\"", key, st_err_msg(err));
        return NULL;
    }
    return doc;
}

static void apply_node(struct st_ctrl_view *v, const char *name, json_t *doc, int64_t rev)
{
    struct st_ctrl_view_host *h = st_ctrl_view_host(v, name);
    if (h && rev <= h->node_rev)
        return;
    if (!doc) {
        if (h) {
            if (h->has_node)
                v->snap_valid = false;
            host_clear_node(h);
            h->node_rev = rev;
            host_drop_if_empty(v, h);
        }
        return;
    }
    h = host_get_or_add(v, name);
    bool known = h->has_node;
    node_parse(h, doc);
    h->node_rev = rev;
    if (!known)
        v->snap_valid = false; /* a new member: rebuild */
    else if (v->snap_valid)
        snap_fill(v, h); /* a heartbeat: one entry (its strings were reallocated) */
}

static void apply_alloc(struct st_ctrl_view *v, const char *name, json_t *doc, int64_t rev)
{
    struct st_ctrl_view_host *h = st_ctrl_view_host(v, name);
    if (h && h->alloc && rev <= h->alloc_rev)
        return;
    if (!doc) {
        if (h) {
            host_set_alloc(v, h, NULL, 0);
            host_drop_if_empty(v, h);
        }
        return;
    }
    h = host_get_or_add(v, name);
    host_set_alloc(v, h, json_incref(doc), rev);
}

static void apply_server(struct st_ctrl_view *v, const char *id, json_t *doc, int64_t rev,
                         int64_t create_rev)
{
    bool found;
    size_t i = table_lower(&v->servers, id, &found);
    struct st_ctrl_view_server *s = found ? v->servers.items[i] : NULL;
    if (s && rev <= s->rev)
        return;
    if (!doc) {
        if (s) {
            table_remove(&v->servers, i);
            server_free(s);
        }
        return;
    }
    if (!s) {
        s = st_new0(struct st_ctrl_view_server, 1);
        s->id = st_strdup(id);
        table_insert(&v->servers, i, s);
    }
    server_parse(s, doc);
    s->rev = rev;
    s->create_rev = create_rev;
}

static void apply_group(struct st_ctrl_view *v, const char *id, json_t *doc, int64_t rev)
{
    bool found;
    size_t i = table_lower(&v->groups, id, &found);
    struct st_ctrl_view_group *g = found ? v->groups.items[i] : NULL;
    if (g && rev <= g->rev)
        return;
    if (!doc) {
        if (g) {
            table_remove(&v->groups, i);
            group_free(g);
        }
        return;
    }
    if (!g) {
        g = st_new0(struct st_ctrl_view_group, 1);
        g->id = st_strdup(id);
        table_insert(&v->groups, i, g);
    }
    group_parse(g, doc);
    g->rev = rev;
}

static const char *suffix(const char *key, const char *prefix)
{
    size_t n = strlen(prefix);
    if (strncmp(key, prefix, n) != 0 || !key[n] || strchr(key + n, '/'))
        return NULL;
    return key + n;
}

void st_ctrl_view_apply(struct st_ctrl_view *v, const char *key, const char *value, size_t len,
                        int64_t mod_rev, int64_t create_rev)
{
    const char *name;
    enum { NODE, ALLOC, SERVER, GROUP } kind;
    if ((name = suffix(key, ST_COMPUTE_NODES_PREFIX)))
        kind = NODE;
    else if ((name = suffix(key, ST_COMPUTE_ALLOCATIONS_PREFIX)))
        kind = ALLOC;
    else if ((name = suffix(key, ST_COMPUTE_SERVERS_PREFIX)))
        kind = SERVER;
    else if ((name = suffix(key, ST_COMPUTE_SERVER_GROUPS_PREFIX)))
        kind = GROUP;
    else
        return;
    st_autoptr(json_t) doc = value ? parse_doc(key, value, len) : NULL;
    switch (kind) {
    case NODE:
        apply_node(v, name, doc, mod_rev);
        break;
    case ALLOC:
        apply_alloc(v, name, doc, mod_rev);
        break;
    case SERVER:
        apply_server(v, name, doc, mod_rev, create_rev);
        break;
    case GROUP:
        apply_group(v, name, doc, mod_rev);
        break;
    }
}

void st_ctrl_view_index_allocs(struct st_ctrl_view *v)
{
    for (size_t i = 0; i < v->servers.n; i++) {
        struct st_ctrl_view_server *s = v->servers.items[i];
        free(s->alloc_host);
        s->alloc_host = NULL;
    }
    for (size_t i = 0; i < v->hosts.n; i++) {
        struct st_ctrl_view_host *h = v->hosts.items[i];
        if (h->alloc)
            index_alloc(v, h, h->alloc, true);
    }
}

void st_ctrl_view_snapshot_invalidate(struct st_ctrl_view *v)
{
    v->snap_valid = false;
}

size_t st_ctrl_view_snapshot(struct st_ctrl_view *v, int64_t now_ms,
                             struct st_sched_node **ret_nodes,
                             struct st_ctrl_view_host ***ret_hosts)
{
    if (!v->snap_valid) {
        if (v->hosts.n > v->snap_cap) {
            v->snap_cap = v->hosts.n + v->hosts.n / 2 + 16;
            v->snap = st_xrealloc(v->snap, v->snap_cap * sizeof(*v->snap));
            v->snap_hosts = st_xrealloc(v->snap_hosts, v->snap_cap * sizeof(*v->snap_hosts));
        }
        size_t k = 0;
        for (size_t i = 0; i < v->hosts.n; i++) {
            struct st_ctrl_view_host *h = v->hosts.items[i];
            if (!h->has_node)
                continue;
            h->snap_idx = k;
            v->snap_hosts[k++] = h;
            snap_fill(v, h);
        }
        v->snap_n = k;
        v->snap_valid = true;
    }
    for (size_t i = 0; i < v->snap_n; i++) {
        const struct st_ctrl_view_host *h = v->snap_hosts[i];
        v->snap[i].alive = h->heartbeat_ms > 0 && h->heartbeat_ms + h->lease_ms > now_ms;
    }
    *ret_nodes = v->snap;
    *ret_hosts = v->snap_hosts;
    return v->snap_n;
}

bool st_ctrl_view_is_member(struct st_ctrl_view *v, const struct st_ctrl_view_group *g,
                            const char *server_id)
{
    struct st_ctrl_view_server *s = st_ctrl_view_server(v, server_id);
    if (s && s->group && strcmp(s->group, g->id) == 0)
        return true;
    size_t i;
    json_t *m;
    json_array_foreach(g->members, i, m)
    {
        if (json_is_string(m) && strcmp(json_string_value(m), server_id) == 0)
            return true;
    }
    return false;
}
