/* The internal API agents use (/internal/v1, see internal.h): node
 * register/heartbeat, the long-poll of a node's assignments, status and
 * console reports, and image downloads. Authenticated by the cluster's node
 * token, loaded here at registration (and created if an older data dir
 * lacks it) and checked by st_api_internal_authenticate, which the auth
 * hook calls for every "internal:*" action instead of Keystone. The work is
 * in compute/ (server.h, node.h) and image/; this file parses and answers. */
#include "internal.h"

#include <errno.h>
#include <pthread.h>
#include <time.h>
#include <stdlib.h>
#include <string.h>

#include "api/app.h"
#include "api/router.h"
#include "api/server.h"
#include "compute/model.h"
#include "compute/node.h"
#include "compute/node_token.h"
#include "compute/server.h"
#include "image/image.h"
#include "network/model.h"
#include "network/network.h"
#include "lib/cleanup.h"
#include "lib/json.h"
#include "lib/log.h"
#include "lib/times.h"
#include "store/kv.h"

#define INTERNAL_PREFIX "/internal/v1"
#define WAIT_MAX_S      60

struct internal_ctx {
    char *node_token; /* NULL: no token configured, every request is refused */
};

static void ctx_free(void *p)
{
    struct internal_ctx *ctx = p;
    if (!ctx)
        return;
    if (ctx->node_token) {
        explicit_bzero(ctx->node_token, strlen(ctx->node_token));
        free(ctx->node_token);
    }
    free(ctx);
}

int st_api_internal_authenticate(struct st_http_request *req, struct st_err **err)
{
    const struct internal_ctx *ctx = req->route ? req->route->userdata : NULL;
    if (!ctx || !ctx->node_token)
        return st_err_set(err, -EACCES, "The internal API has no node token configured.");
    const char *presented = st_http_header(req, "X-Node-Token");
    if (!presented || !presented[0])
        return st_err_set(err, -EACCES, "The internal API requires a node token (X-Node-Token).");
    if (!st_compute_node_token_equal(ctx->node_token, presented))
        return st_err_set(err, -EACCES, "The node token is not valid.");
    return 0;
}

static int parse_body(struct st_http_request *req, json_t **ret, struct st_err **err)
{
    return st_json_parse_object(req->body ? req->body : "", req->body_len, ret, err);
}

static int put_node(struct st_http_request *req, struct st_http_response *resp, struct st_err **err)
{
    struct st_api_app *app = req->app;
    st_autoptr(json_t) body = NULL;
    int r = parse_body(req, &body, err);
    if (r < 0)
        return r;
    json_t *doc = NULL;
    r = st_compute_node_put(app->kv, st_http_param(req, "node"), body, &doc, err);
    if (r < 0)
        return r;
    st_http_resp_json(resp, 200, json_pack("{s:o}", "node", doc));
    return 0;
}

static int query_int(struct st_http_request *req, const char *key, int64_t max, int64_t *ret,
                     struct st_err **err)
{
    const char *v = st_http_query(req, key);
    *ret = 0;
    if (!v)
        return 0;
    char *end = NULL;
    errno = 0;
    long long n = strtoll(v, &end, 10);
    if (!v[0] || *end || errno || n < 0 || n > max)
        return st_err_set(err, -EINVAL, "%s must be an integer from 0 to %lld", key,
                          (long long)max);
    *ret = n;
    return 0;
}

static int node_servers(struct st_http_request *req, struct st_http_response *resp,
                        struct st_err **err)
{
    struct st_api_app *app = req->app;
    const char *node = st_http_param(req, "node");
    int r = st_compute_node_check_name(node, err);
    if (r < 0)
        return r;
    int64_t after, wait_s;
    if ((r = query_int(req, "after", INT64_MAX, &after, err)) < 0 ||
        (r = query_int(req, "wait", WAIT_MAX_S, &wait_s, err)) < 0)
        return r;
    json_t *docs = NULL;
    int64_t rev = 0;
    st_autoptr(st_err) werr = NULL;
    /* Never block a worker thread: look now, and if there is nothing yet and
     * time is left, park (the server re-runs this on a store change, see
     * st_api_internal_waker_start, or within half a second). */
    r = st_compute_server_watch_host(app->kv, node, after, 0, &docs, &rev, &werr);
    if (r == 0 && after > 0 && json_array_size(docs) == 0 &&
        st_time_mono_ns() - req->start_ns < wait_s * 1000000000LL) {
        json_decref(docs);
        return -EINPROGRESS;
    }
    if (r == -ESTALE)
        return st_http_resp_error(req, resp, 410, NULL,
                                  "Revision %lld has been compacted: list again with after=0.",
                                  (long long)after);
    if (r < 0)
        return st_err_set(err, r, "%s", st_err_msg(werr));
    st_http_resp_json(resp, 200,
                      json_pack("{s:I, s:o}", "revision", (json_int_t)rev, "servers", docs));
    return 0;
}

static int put_status(struct st_http_request *req, struct st_http_response *resp,
                      struct st_err **err)
{
    struct st_api_app *app = req->app;
    st_autoptr(json_t) body = NULL;
    int r = parse_body(req, &body, err);
    if (r < 0)
        return r;
    const char *id = st_http_param(req, "server_id");
    st_autoptr(st_err) rerr = NULL;
    r = st_compute_server_report(app->kv, id, body, &rerr);
    const char *state = json_string_value(json_object_get(body, "state"));
    if (r == -ENOENT && state && strcmp(state, "DELETED") == 0)
        r = 0; /* removed already: a repeated report of the same end */
    if (r < 0)
        return st_err_set(err, r, "%s", st_err_msg(rerr));
    st_http_resp_json(resp, 204, NULL);
    return 0;
}

static int put_console(struct st_http_request *req, struct st_http_response *resp,
                       struct st_err **err)
{
    struct st_api_app *app = req->app;
    int r = st_compute_server_console_put(app->kv, st_http_param(req, "server_id"), req->body,
                                          req->body_len, err);
    if (r < 0)
        return r;
    st_http_resp_json(resp, 204, NULL);
    return 0;
}

static int get_image_file(struct st_http_request *req, struct st_http_response *resp,
                          struct st_err **err)
{
    struct st_api_app *app = req->app;
    if (!app->data_dir)
        return st_err_set(err, -ENOENT, "no image store on this controller");
    int fd = -1;
    uint64_t size = 0;
    int r =
        st_image_open_file(app->kv, app->data_dir, st_http_param(req, "image_id"), &fd, &size, err);
    if (r < 0)
        return r;
    st_http_resp_file(resp, 200, "application/octet-stream", fd, size);
    return 0;
}

/* ---- networking: what an agent tells of its node, its node view ---- */

typedef int (*node_put_fn)(struct st_kv *kv, const char *node, json_t *body, struct st_err **err);

/* PUT /nodes/{node}/...: a JSON body handed to fn, 204. */
static int put_node_json(struct st_http_request *req, struct st_http_response *resp, node_put_fn fn,
                         struct st_err **err)
{
    struct st_api_app *app = req->app;
    const char *node = st_http_param(req, "node");
    int r = st_compute_node_check_name(node, err);
    if (r < 0)
        return r;
    st_autoptr(json_t) body = NULL;
    if ((r = parse_body(req, &body, err)) < 0 || (r = fn(app->kv, node, body, err)) < 0)
        return r;
    st_http_resp_json(resp, 204, NULL);
    return 0;
}

static int put_node_network(struct st_http_request *req, struct st_http_response *resp,
                            struct st_err **err)
{
    return put_node_json(req, resp, st_network_node_register, err);
}

/* FNV-1a over the view's canonical text (sorted keys, no revision): the
 * agent sends back the digest it has, and the poll parks while the view
 * is still the same. Not a security measure, only change detection. */
static void view_digest(json_t *view, char out[17])
{
    st_autoptr(json_t) copy = json_copy(view);
    json_object_del(copy, "revision");
    st_autofree char *text = json_dumps(copy, JSON_COMPACT | JSON_SORT_KEYS);
    uint64_t h = 0xcbf29ce484222325ULL;
    for (const char *p = text ? text : ""; *p; p++) {
        h ^= (unsigned char)*p;
        h *= 0x100000001b3ULL;
    }
    snprintf(out, 17, "%016llx", (unsigned long long)h);
}

/* The digest of each node's view at a store revision: a parked poll that
 * is re-run (a wake, or the half-second recheck) with nothing written
 * since parks again without computing the view. A small direct-mapped
 * cache: a collision only costs a recomputation. */
#define VIEW_CACHE_SLOTS 64
static struct {
    char node[64];
    int64_t revision;
    char digest[17];
} view_cache[VIEW_CACHE_SLOTS];
static pthread_mutex_t view_cache_lock = PTHREAD_MUTEX_INITIALIZER;

static size_t view_slot(const char *node)
{
    size_t h = 5381;
    for (const char *p = node; *p; p++)
        h = h * 33 + (unsigned char)*p;
    return h % VIEW_CACHE_SLOTS;
}

static bool view_unchanged(const char *node, int64_t revision, const char *digest)
{
    size_t i = view_slot(node);
    pthread_mutex_lock(&view_cache_lock);
    bool same = view_cache[i].revision == revision && strcmp(view_cache[i].node, node) == 0 &&
                strcmp(view_cache[i].digest, digest) == 0;
    pthread_mutex_unlock(&view_cache_lock);
    return same;
}

static void view_remember(const char *node, int64_t revision, const char *digest)
{
    if (strlen(node) >= sizeof(view_cache[0].node))
        return;
    size_t i = view_slot(node);
    pthread_mutex_lock(&view_cache_lock);
    snprintf(view_cache[i].node, sizeof(view_cache[i].node), "%s", node);
    view_cache[i].revision = revision;
    snprintf(view_cache[i].digest, sizeof(view_cache[i].digest), "%s", digest);
    pthread_mutex_unlock(&view_cache_lock);
}

static int get_node_network(struct st_http_request *req, struct st_http_response *resp,
                            struct st_err **err)
{
    struct st_api_app *app = req->app;
    const char *node = st_http_param(req, "node");
    int r = st_compute_node_check_name(node, err);
    if (r < 0)
        return r;
    int64_t wait_s;
    if ((r = query_int(req, "wait", WAIT_MAX_S, &wait_s, err)) < 0)
        return r;
    const char *have = st_http_query(req, "digest");
    bool time_left = st_time_mono_ns() - req->start_ns < wait_s * 1000000000LL;
    int64_t revision = st_kv_revision(app->kv);
    if (have && time_left && view_unchanged(node, revision, have))
        return -EINPROGRESS; /* nothing written since: still the same view */
    json_t *view = NULL;
    if ((r = st_network_node_view(app->kv, node, &view, err)) < 0)
        return r;
    char digest[17];
    view_digest(view, digest);
    view_remember(node, revision, digest);
    if (have && strcmp(have, digest) == 0 && time_left) {
        json_decref(view);
        return -EINPROGRESS; /* parked: re-run on a store change */
    }
    st_http_resp_json(resp, 200, json_pack("{s:s, s:o}", "digest", digest, "view", view));
    return 0;
}

static int put_port_status(struct st_http_request *req, struct st_http_response *resp,
                           struct st_err **err)
{
    return put_node_json(req, resp, st_network_port_status_report, err);
}

#define INTERNAL_ROUTE(m, p, a, fn)                                                                \
    {                                                                                              \
        .method = (m), .pattern = INTERNAL_PREFIX p, .action = (a), .family = ST_API_PLAIN,        \
        .handler = (fn)                                                                            \
    }

static const struct st_route routes[] = {
    INTERNAL_ROUTE("PUT", "/nodes/{node}", "internal:node:update", put_node),
    INTERNAL_ROUTE("GET", "/nodes/{node}/servers", "internal:server:list", node_servers),
    INTERNAL_ROUTE("PUT", "/nodes/{node}/network", "internal:network:update", put_node_network),
    INTERNAL_ROUTE("GET", "/nodes/{node}/network", "internal:network:get", get_node_network),
    INTERNAL_ROUTE("PUT", "/nodes/{node}/port-status", "internal:port:update", put_port_status),
    INTERNAL_ROUTE("PUT", "/servers/{server_id}/status", "internal:server:update", put_status),
    INTERNAL_ROUTE("PUT", "/servers/{server_id}/console", "internal:console:update", put_console),
    INTERNAL_ROUTE("GET", "/images/{image_id}/file", "internal:image:get", get_image_file),
};

int st_api_internal_register(struct st_router *r, struct st_api_app *app, struct st_err **err)
{
    struct internal_ctx *ctx = st_new0(struct internal_ctx, 1);
    st_router_own(r, ctx, ctx_free);
    if (app->data_dir) {
        /* `stratosd init` creates the token; a data dir made before it
         * existed gets one here, so its agents can be given it */
        int ret = st_compute_node_token_ensure(app->data_dir, err);
        if (ret < 0 || (ret = st_compute_node_token_load(app->data_dir, &ctx->node_token, err)) < 0)
            return st_err_prefix(err, ret, "loading the node token");
    } else {
        st_log_warn("internal_api_closed", "%s", "reason=\"no data dir, so no node token\"");
    }
    for (size_t i = 0; i < ST_ARRAY_SIZE(routes); i++) {
        struct st_route route = routes[i];
        route.userdata = ctx;
        int ret = st_router_add(r, &route, err);
        if (ret < 0)
            return ret;
    }
    return 0;
}

/* Wakes the server's parked long-polls whenever a server document or the
 * network state changes. */
struct st_api_internal_waker {
    struct st_kv *kv;
    struct st_api_server *srv;
    pthread_t thread;
    bool stop;
};

/* What parked polls wait for: server documents (assignments) and network
 * state (node views; quota bookkeeping is no part of one). Heartbeats and the
 * like wake nobody. */
static bool wakes_polls(const struct st_kv_events *ev)
{
    for (size_t i = 0; i < ev->count; i++) {
        const char *k = ev->events[i].kv.key;
        if (strncmp(k, ST_COMPUTE_SERVERS_PREFIX, strlen(ST_COMPUTE_SERVERS_PREFIX)) == 0 ||
            (strncmp(k, "/network/", strlen("/network/")) == 0 &&
             strncmp(k, "/network/quota", strlen("/network/quota")) != 0)) /* not in a view */
            return true;
    }
    return false;
}

static void *waker_main(void *arg)
{
    struct st_api_internal_waker *w = arg;
    int64_t rev = st_kv_revision(w->kv);
    while (!__atomic_load_n(&w->stop, __ATOMIC_SEQ_CST)) {
        st_autoptr(st_kv_events) ev = NULL;
        int r = st_kv_watch(w->kv, "/", rev, 1000, &ev, NULL);
        if (r == -ESTALE) {
            rev = st_kv_revision(w->kv);
            st_api_server_wake(w->srv);
            continue;
        }
        if (r < 0) {
            struct timespec ts = {0, 100 * 1000 * 1000};
            nanosleep(&ts, NULL);
            continue;
        }
        if (wakes_polls(ev))
            st_api_server_wake(w->srv);
        else if (ev->revision == rev) {
            /* the watch returned at once with nothing (a store being woken
             * for shutdown): do not spin */
            struct timespec ts = {0, 50 * 1000 * 1000};
            nanosleep(&ts, NULL);
        }
        if (ev->revision > rev)
            rev = ev->revision;
    }
    return NULL;
}

int st_api_internal_waker_start(struct st_kv *kv, struct st_api_server *srv,
                                struct st_api_internal_waker **ret, struct st_err **err)
{
    struct st_api_internal_waker *w = st_new0(struct st_api_internal_waker, 1);
    w->kv = kv;
    w->srv = srv;
    int r = pthread_create(&w->thread, NULL, waker_main, w);
    if (r != 0) {
        free(w);
        return st_err_set(err, -r, "starting the internal API waker: %s", strerror(r));
    }
    *ret = w;
    return 0;
}

void st_api_internal_waker_stop(struct st_api_internal_waker *w)
{
    if (!w)
        return;
    __atomic_store_n(&w->stop, true, __ATOMIC_SEQ_CST);
    pthread_join(w->thread, NULL);
    free(w);
}
