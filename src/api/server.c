/* The HTTP server on libmicrohttpd (MHD); see server.h.
 *
 * A request's life, in MHD's callbacks:
 *  - on_uri (the request line is in): one allocation holds the request, a copy
 *    of the raw URI and room to decode its path; the request id is made here.
 *  - on_request, first call (headers in, no body byte read yet): the route is
 *    looked up, the body limit checked against Content-Length, the auth hook
 *    and a streaming route's opening call run. A refusal (404, 405, 413,
 *    401...) of a request with a body is answered now, which MHD allows only
 *    at this point: the client is told before it sends the body (and MHD
 *    closes the connection after); without a body it waits for the last call,
 *    so the connection is kept.
 *  - on_request with data: the body is buffered up to the limit, or handed to
 *    a streaming route. MHD cannot answer in the middle of a body, so a body
 *    found too big only now (chunked) is drained without being kept, and the
 *    413 goes out at its end (past ST_API_DISCARD_MAX the connection is cut).
 *  - on_request, last call: the handler runs and its response is queued.
 *  - on_completed (response sent or connection gone): the access log line,
 *    then everything is freed.
 * The listening socket is ours (bound before MHD starts, so errors name the
 * address and port 0 reports the real port). Shutdown quiesces MHD and takes
 * the listener out of LISTEN, waits for the requests in flight, then stops. */
#include "server.h"

#include <arpa/inet.h>
#include <errno.h>
#include <pthread.h>
#include <inttypes.h>
#include <microhttpd.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "api/errors.h"
#include "api/http.h"
#include "api/router.h"
#include "lib/cleanup.h"
#include "lib/files.h"
#include "lib/log.h"
#include "lib/times.h"
#include "lib/uuid.h"

#define ST_API_DISCARD_MAX    (16 * 1024 * 1024)
#define ST_API_LISTEN_BACKLOG 1024
#define ST_API_REQUEST_ID_LEN (4 + ST_UUID_LEN)
/* MHD's per-connection pool: request line, headers, read buffer (so the size
 * of body chunks) and response headers. MHD zeroes it after every request, so
 * a bigger pool costs CPU on each one (64 KiB showed as 13% of a GET). */
#define ST_API_CONN_MEMORY_LIMIT (32 * 1024)
/* How often parked long-polls look again even without a wake (deadlines). */
#define ST_API_PARK_RECHECK_MS 500

struct api_req;

struct st_api_server {
    struct MHD_Daemon *daemon;
    /* Long-polls: connections whose handler answered -EINPROGRESS are
     * suspended here and resumed (the handler runs again) on
     * st_api_server_wake() or every ST_API_PARK_RECHECK_MS, so a waiting
     * request never holds a worker thread. */
    pthread_mutex_t park_lock;
    pthread_cond_t park_cond;
    struct api_req *parked;
    uint64_t wake_gen; /* bumped by every wake (under park_lock) */
    bool wake_pending;
    bool waker_stop;
    pthread_t waker;
    bool waker_started;
    struct st_router *router;
    size_t body_limit;
    bool access_log;
    bool stopping;
    int in_flight;
    int listen_fd;
    uint16_t port;
    char *tls_cert;
    char *tls_key;
};

/* Per connection (MHD's socket context): the peer, formatted once. */
struct conn_ctx {
    char peer[INET6_ADDRSTRLEN];
};

enum req_state {
    REQ_NEW,      /* only the request line seen */
    REQ_BODY,     /* routed, taking the body */
    REQ_DISCARD,  /* refused mid-body: draining, the error goes out at the end */
    REQ_ANSWERED, /* a response is queued */
};

struct api_req {
    struct st_http_request req;
    struct st_http_exchange x;
    struct st_api_server *srv;
    struct MHD_Connection *con; /* while parked */
    uint64_t wake_gen;          /* srv->wake_gen when its handler last started */
    struct api_req *next_parked;
    int64_t start_ns;
    enum req_state state;
    int status;                      /* of the queued response */
    uint64_t bytes;                  /* body bytes of the queued response */
    bool has_body;                   /* Content-Length > 0 or a chunked body */
    struct st_http_response refusal; /* REQ_DISCARD: what to answer at the end */
    char *body;
    size_t body_len, body_cap;
    uint64_t discarded;
    const char *raw_path;
    size_t raw_path_len;
    char *path_storage;
    struct st_http_path path;
    char request_id[ST_API_REQUEST_ID_LEN];
    char mem[]; /* raw URI, then 2 * (path length + 2) bytes for st_http_path_split */
};

/* "req-<uuid4>". The random bytes come from a per-thread batch: one
 * getrandom(2) per 32 requests instead of one each (ids need to be unique,
 * not secret). */
static void request_id_new(char out[ST_API_REQUEST_ID_LEN])
{
    static __thread uint8_t pool[32 * 16];
    static __thread size_t used = sizeof(pool);
    if (used == sizeof(pool)) {
        st_random_bytes(pool, sizeof(pool));
        used = 0;
    }
    uint8_t *b = pool + used;
    used += 16;
    b[6] = (b[6] & 0x0f) | 0x40; /* version 4 */
    b[8] = (b[8] & 0x3f) | 0x80; /* RFC 4122 variant */
    char hex[33];
    st_hex_encode(b, 16, hex);
    memcpy(out, "req-", 4);
    char *o = out + 4;
    static const int groups[] = {8, 4, 4, 4, 12};
    const char *h = hex;
    for (size_t g = 0; g < 5; g++) {
        memcpy(o, h, (size_t)groups[g]);
        o += groups[g];
        h += groups[g];
        *o++ = g < 4 ? '-' : '\0';
    }
}

static void req_free(struct api_req *q)
{
    if (q->req.stream && q->req.route && q->req.route->stream_free)
        q->req.route->stream_free(q->req.stream);
    st_router_auth_release(q->srv->router, q->req.auth);
    free(q->body);
    free(q->x.query);
    st_http_resp_reset(&q->refusal);
    free(q);
}

static struct api_req *req_new(struct st_api_server *srv, const char *uri)
{
    size_t len = strlen(uri);
    struct api_req *q = st_xcalloc(1, sizeof(*q) + (len + 1) + 2 * (len + 2));
    q->srv = srv;
    q->start_ns = st_time_mono_ns();
    memcpy(q->mem, uri, len + 1);
    char *qm = strchr(q->mem, '?');
    if (qm) {
        *qm = '\0';
        q->x.raw_query = qm + 1;
    }
    q->raw_path = q->mem;
    q->raw_path_len = strlen(q->mem);
    q->path_storage = q->mem + len + 1;
    request_id_new(q->request_id);
    q->req.request_id = q->request_id;
    q->req.start_ns = q->start_ns;
    q->req.conn = &q->x;
    q->req.path = q->raw_path;
    q->req.peer = "";
    q->refusal.fd = -1;
    __atomic_add_fetch(&srv->in_flight, 1, __ATOMIC_SEQ_CST);
    return q;
}

/* MHD_OPTION_URI_LOG_CALLBACK: the first sight of a request, with the raw URI
 * (query string included, nothing decoded); the result becomes *req_cls. */
static void *on_uri(void *cls, const char *uri, struct MHD_Connection *con)
{
    (void)con;
    return req_new(cls, uri);
}

/* Copies s into buf for a log line, replacing what could forge or split a
 * line (spaces, quotes, control bytes) and truncating long values. */
static const char *log_safe(const char *s, char *buf, size_t size)
{
    size_t i = 0;
    for (; s && s[i] && i < size - 1; i++) {
        unsigned char c = (unsigned char)s[i];
        buf[i] = (c <= ' ' || c >= 0x7f || c == '"' || c == '\\') ? '?' : (char)c;
    }
    buf[i] = '\0';
    if (s && s[i] && size > 4)
        memcpy(buf + size - 4, "...", 4);
    return buf;
}

static void on_completed(void *cls, struct MHD_Connection *con, void **req_cls,
                         enum MHD_RequestTerminationCode toe)
{
    struct st_api_server *srv = cls;
    struct api_req *q = *req_cls;
    if (!q)
        return;
    *req_cls = NULL;
    int status = q->status;
    if (!status) { /* MHD answered by itself (malformed request, headers too big) */
        const union MHD_ConnectionInfo *ci =
            MHD_get_connection_info(con, MHD_CONNECTION_INFO_HTTP_STATUS);
        status = ci ? (int)ci->http_status : 0;
    }
    st_router_observe(srv->router, &q->req, status);
    if (srv->access_log) {
        char path[256], method[16];
        int64_t us = (st_time_mono_ns() - q->start_ns) / 1000;
        st_log_set_request_id(q->request_id);
        /* latency as integers: printf's floating point is a visible cost here */
        st_log(ST_LOG_INFO, "http_request",
               "method=%s path=%s status=%d bytes=%" PRIu64 " latency_ms=%" PRId64
               ".%03d peer=%s%s",
               log_safe(q->req.method ? q->req.method : "-", method, sizeof(method)),
               log_safe(q->raw_path, path, sizeof(path)), status, q->bytes, us / 1000,
               (int)(us % 1000), q->req.peer,
               toe == MHD_REQUEST_TERMINATED_COMPLETED_OK ? "" : " aborted=true");
        st_log_set_request_id(NULL);
    }
    req_free(q);
    __atomic_sub_fetch(&srv->in_flight, 1, __ATOMIC_SEQ_CST);
}

static void on_connection(void *cls, struct MHD_Connection *con, void **socket_context,
                          enum MHD_ConnectionNotificationCode code)
{
    (void)cls;
    if (code == MHD_CONNECTION_NOTIFY_CLOSED) {
        free(*socket_context);
        *socket_context = NULL;
        return;
    }
    struct conn_ctx *c = st_new0(struct conn_ctx, 1);
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(con, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
    const struct sockaddr *sa = ci ? ci->client_addr : NULL;
    if (sa && sa->sa_family == AF_INET) {
        inet_ntop(AF_INET, &((const struct sockaddr_in *)sa)->sin_addr, c->peer, sizeof(c->peer));
    } else if (sa && sa->sa_family == AF_INET6) {
        const struct in6_addr *a = &((const struct sockaddr_in6 *)sa)->sin6_addr;
        if (IN6_IS_ADDR_V4MAPPED(a)) /* a dual-stack listener: show the IPv4 address */
            inet_ntop(AF_INET, &a->s6_addr[12], c->peer, sizeof(c->peer));
        else
            inet_ntop(AF_INET6, a, c->peer, sizeof(c->peer));
    }
    *socket_context = c;
}

__attribute__((format(printf, 2, 0))) static void on_mhd_log(void *cls, const char *fmt, va_list ap)
{
    (void)cls;
    char msg[512];
    vsnprintf(msg, sizeof(msg), fmt, ap);
    size_t n = strlen(msg);
    while (n > 0 && (msg[n - 1] == '\n' || msg[n - 1] == '\r'))
        msg[--n] = '\0';
    st_log_warn("http_server", "msg=\"%s\"", msg);
}

/* MHD_PANIC: libmicrohttpd found its own state broken. Say where, then abort
 * (a panic handler must not return). */
static void on_mhd_panic(void *cls, const char *file, unsigned int line, const char *reason)
{
    (void)cls;
    st_log_error("http_server_panic", "file=%s line=%u reason=\"%s\"", file ? file : "?", line,
                 reason ? reason : "?");
    abort();
}

/* Queues resp (consuming what it holds) as the request's answer. */
static enum MHD_Result answer(struct api_req *q, struct MHD_Connection *con,
                              struct st_http_response *resp)
{
    int status = resp->status;
    bool has_body = resp->json || resp->body || resp->fd >= 0;
    if (!status)
        status = has_body ? 200 : 204;
    bool bodiless = status < 200 || status == 204 || status == 304;

    struct MHD_Response *mr = NULL;
    const char *ctype = resp->content_type;
    uint64_t len = 0;
    if (bodiless) {
        mr = MHD_create_response_from_buffer(0, NULL, MHD_RESPMEM_PERSISTENT);
    } else if (resp->json) {
        char *s = json_dumps(resp->json, JSON_COMPACT | JSON_ENCODE_ANY);
        if (!s)
            abort();
        len = strlen(s);
        mr = MHD_create_response_from_buffer(len, s, MHD_RESPMEM_MUST_FREE);
        if (!ctype)
            ctype = "application/json";
    } else if (resp->body) {
        len = resp->body_len;
        mr = MHD_create_response_from_buffer(
            len, resp->body, resp->body_borrowed ? MHD_RESPMEM_PERSISTENT : MHD_RESPMEM_MUST_FREE);
        resp->body = NULL;
    } else if (resp->fd >= 0) {
        len = resp->file_size;
        mr = MHD_create_response_from_fd64(len, resp->fd);
        if (mr)
            resp->fd = -1; /* MHD closes it */
    } else {
        mr = MHD_create_response_from_buffer(0, NULL, MHD_RESPMEM_PERSISTENT);
    }
    if (!mr) {
        st_log_error("http_response_failed", "status=%d", status);
        st_http_resp_reset(resp);
        return MHD_NO;
    }
    MHD_add_response_header(mr, "X-Openstack-Request-Id", q->request_id);
    if (ctype && !bodiless)
        MHD_add_response_header(mr, MHD_HTTP_HEADER_CONTENT_TYPE, ctype);
    for (size_t i = 0; i < resp->n_headers; i++)
        MHD_add_response_header(mr, resp->headers[i].name, resp->headers[i].value);
    if (__atomic_load_n(&q->srv->stopping, __ATOMIC_RELAXED))
        MHD_add_response_header(mr, MHD_HTTP_HEADER_CONNECTION, "close");

    q->status = status;
    q->bytes = strcmp(q->req.method, "HEAD") == 0 ? 0 : len;
    q->state = REQ_ANSWERED;
    enum MHD_Result r = MHD_queue_response(con, (unsigned)status, mr);
    MHD_destroy_response(mr);
    st_http_resp_reset(resp);
    return r;
}

/* Renders a failure into resp with the family's error body: the one errno
 * table gives the status; a 500 hides its message from the client and logs it. */
static void render_error(struct api_req *q, struct st_http_response *resp,
                         enum st_api_family family, int code, const struct st_err *err)
{
    int status = st_http_status_from_errno(code);
    const char *msg = err ? st_err_msg(err) : NULL;
    if (status >= 500) {
        char path[256];
        st_log_error("http_error", "method=%s path=%s status=%d errno=%d error=\"%s\"",
                     q->req.method, log_safe(q->raw_path, path, sizeof(path)), status, -code,
                     msg ? msg : strerror(-code));
    }
    if (status == 500 || !msg)
        msg = status == 500 ? ST_API_INTERNAL_ERROR_MESSAGE : st_http_reason(status);
    st_api_error_render(resp, family, status, NULL, msg, q->request_id);
}

/* Refuses a request from its headers. With a body on the way, the answer goes
 * out now, before the client sends it (MHD then closes the connection, which
 * is the only way not to read it). Without one, the answer waits for MHD's
 * last call, so the connection stays open for the next request (clients look
 * names up by expecting 404s: they should not pay a reconnect for each). */
static enum MHD_Result refuse(struct api_req *q, struct MHD_Connection *con)
{
    if (q->has_body)
        return answer(q, con, &q->refusal);
    q->state = REQ_DISCARD;
    return MHD_YES;
}

static enum MHD_Result refuse_err(struct api_req *q, struct MHD_Connection *con,
                                  enum st_api_family family, int code, const struct st_err *err)
{
    render_error(q, &q->refusal, family, code, err);
    return refuse(q, con);
}

__attribute__((format(printf, 5, 6))) static enum MHD_Result
refuse_errf(struct api_req *q, struct MHD_Connection *con, enum st_api_family family, int code,
            const char *fmt, ...)
{
    st_autoptr(st_err) err = NULL;
    va_list ap;
    va_start(ap, fmt);
    st_err_setv(&err, code, fmt, ap);
    va_end(ap);
    return refuse_err(q, con, family, code, err);
}

static enum MHD_Result on_headers(struct api_req *q, struct MHD_Connection *con, const char *method)
{
    struct st_api_server *srv = q->srv;
    q->state = REQ_BODY;
    q->req.method = method;
    q->req.app = st_router_app(srv->router);
    q->x.mhd = con;
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(con, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
    if (ci && ci->socket_context)
        q->req.peer = ((struct conn_ctx *)ci->socket_context)->peer;
    const char *cl =
        MHD_lookup_connection_value(con, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
    unsigned long long content_length = cl ? strtoull(cl, NULL, 10) : 0;
    q->has_body = content_length > 0 ||
                  MHD_lookup_connection_value(con, MHD_HEADER_KIND,
                                              MHD_HTTP_HEADER_TRANSFER_ENCODING) != NULL;

    int r = st_http_path_split(q->raw_path, q->raw_path_len, q->path_storage, &q->path);
    if (r == -EINVAL)
        return refuse_errf(q, con, ST_API_PLAIN, -EINVAL,
                           "The request target must be an absolute path.");
    q->req.path = q->path.decoded;
    struct st_route_match m;
    if (r == 0)
        r = st_router_match(srv->router, method, &q->path, &m);
    else
        m.family = ST_API_PLAIN;
    if (r == -ENOENT || r == -E2BIG)
        return refuse_errf(q, con, m.family, -ENOENT, "Could not find a route for %s %s.", method,
                           q->req.path);
    if (r == -EBADRQC) {
        st_http_resp_header(&q->refusal, "Allow", m.allow);
        return refuse_errf(q, con, m.family, -EBADRQC,
                           "Method %s is not allowed for %s (allowed: %s).", method, q->req.path,
                           m.allow);
    }
    const struct st_route *route = m.route;
    q->req.route = route;
    memcpy(q->req.params, m.params, sizeof(m.params[0]) * m.n_params);
    q->req.n_params = m.n_params;

    if (!(route->flags & ST_ROUTE_STREAM)) {
        if (content_length > srv->body_limit)
            return refuse_errf(q, con, route->family, -EFBIG,
                               "Request body of %llu bytes is larger than the limit of %zu bytes.",
                               content_length, srv->body_limit);
        if (content_length > 0) {
            q->body_cap = (size_t)content_length;
            q->body = st_xcalloc(1, q->body_cap + 1);
        }
    }

    if (!(route->flags & ST_ROUTE_PUBLIC)) {
        st_autoptr(st_err) err = NULL;
        st_router_auth_fn auth = st_router_auth(srv->router);
        r = auth ? auth(&q->req, &err)
                 : st_err_set(&err, -EACCES, "The request you have made requires authentication.");
        if (r < 0)
            return refuse_err(q, con, route->family, r, err);
    }
    if (route->flags & ST_ROUTE_STREAM) {
        st_autoptr(st_err) err = NULL;
        r = route->on_body_chunk(&q->req, NULL, 0, &err);
        if (r < 0)
            return refuse_err(q, con, route->family, r, err);
    }
    return MHD_YES;
}

/* MHD cannot answer in the middle of a body: drain it, answer at its end. */
static void refuse_mid_body(struct api_req *q, int code, const struct st_err *err, size_t discarded)
{
    render_error(q, &q->refusal, q->req.route->family, code, err);
    q->state = REQ_DISCARD;
    q->discarded = discarded;
    free(q->body);
    q->body = NULL;
    q->body_len = q->body_cap = 0;
}

static enum MHD_Result on_body(struct api_req *q, const char *data, size_t len)
{
    if (q->state == REQ_ANSWERED)
        return MHD_YES; /* answered at the headers; MHD drops the rest */
    if (q->state == REQ_DISCARD) {
        q->discarded += len;
        return q->discarded > ST_API_DISCARD_MAX ? MHD_NO : MHD_YES;
    }
    const struct st_route *route = q->req.route;
    if (route->flags & ST_ROUTE_STREAM) {
        st_autoptr(st_err) err = NULL;
        int r = route->on_body_chunk(&q->req, data, len, &err);
        if (r < 0)
            refuse_mid_body(q, r, err, 0);
        return MHD_YES;
    }
    size_t limit = q->srv->body_limit;
    if (len > limit - q->body_len) {
        st_autoptr(st_err) err = NULL;
        st_err_set(&err, -EFBIG, "Request body is larger than the limit of %zu bytes.", limit);
        refuse_mid_body(q, -EFBIG, err, q->body_len + len);
        return MHD_YES;
    }
    if (q->body_len + len > q->body_cap) {
        size_t cap = q->body_cap ? q->body_cap : 16384;
        while (cap < q->body_len + len)
            cap *= 2;
        if (cap > limit)
            cap = limit;
        q->body = st_xrealloc(q->body, cap + 1);
        q->body_cap = cap;
    }
    memcpy(q->body + q->body_len, data, len);
    q->body_len += len;
    return MHD_YES;
}

static void server_free(struct st_api_server *srv);

static void park(struct api_req *q, struct MHD_Connection *con)
{
    struct st_api_server *srv = q->srv;
    MHD_suspend_connection(con);
    pthread_mutex_lock(&srv->park_lock);
    if (srv->wake_gen != q->wake_gen) {
        /* a wake came while the handler ran (it may have read the store
         * before the change): look again now rather than at the recheck */
        pthread_mutex_unlock(&srv->park_lock);
        MHD_resume_connection(con);
        return;
    }
    q->con = con;
    q->next_parked = srv->parked;
    srv->parked = q;
    pthread_mutex_unlock(&srv->park_lock);
}

/* Resumes every parked connection: MHD calls their handlers again. */
static void resume_all(struct st_api_server *srv)
{
    pthread_mutex_lock(&srv->park_lock);
    struct api_req *q = srv->parked;
    srv->parked = NULL;
    pthread_mutex_unlock(&srv->park_lock);
    while (q) {
        struct api_req *next = q->next_parked;
        q->next_parked = NULL;
        MHD_resume_connection(q->con);
        q = next;
    }
}

static void *waker_main(void *arg)
{
    struct st_api_server *srv = arg;
    pthread_mutex_lock(&srv->park_lock);
    while (!srv->waker_stop) {
        if (!srv->wake_pending) {
            struct timespec ts;
            clock_gettime(CLOCK_REALTIME, &ts);
            ts.tv_nsec += ST_API_PARK_RECHECK_MS * 1000000L;
            ts.tv_sec += ts.tv_nsec / 1000000000L;
            ts.tv_nsec %= 1000000000L;
            pthread_cond_timedwait(&srv->park_cond, &srv->park_lock, &ts);
        }
        srv->wake_pending = false;
        if (!srv->parked)
            continue;
        pthread_mutex_unlock(&srv->park_lock);
        resume_all(srv);
        pthread_mutex_lock(&srv->park_lock);
    }
    pthread_mutex_unlock(&srv->park_lock);
    return NULL;
}

void st_api_server_wake(struct st_api_server *srv)
{
    if (!srv)
        return;
    pthread_mutex_lock(&srv->park_lock);
    srv->wake_pending = true;
    __atomic_store_n(&srv->wake_gen, srv->wake_gen + 1, __ATOMIC_RELEASE);
    pthread_cond_signal(&srv->park_cond);
    pthread_mutex_unlock(&srv->park_lock);
}

static enum MHD_Result on_end(struct api_req *q, struct MHD_Connection *con)
{
    if (q->state == REQ_ANSWERED)
        return MHD_YES;
    if (q->state == REQ_DISCARD)
        return answer(q, con, &q->refusal);
    const struct st_route *route = q->req.route;
    if (q->body) {
        q->body[q->body_len] = '\0';
        q->req.body = q->body_len ? q->body : NULL;
        q->req.body_len = q->body_len;
    }
    struct st_http_response resp = {.fd = -1};
    st_autoptr(st_err) err = NULL;
    q->wake_gen = __atomic_load_n(&q->srv->wake_gen, __ATOMIC_ACQUIRE);
    int r = route->handler(&q->req, &resp, &err);
    if (r == -EINPROGRESS) {
        st_http_resp_reset(&resp);
        if (!__atomic_load_n(&q->srv->stopping, __ATOMIC_SEQ_CST)) {
            park(q, con);
            return MHD_YES;
        }
        st_err_clear(&err);
        r = st_err_set(&err, -ESHUTDOWN, "The server is shutting down.");
    }
    if (r < 0) {
        /* a failed handler's headers (a Location, an ETag) do not belong to its error */
        st_http_resp_reset(&resp);
        render_error(q, &resp, route->family, r, err);
    }
    return answer(q, con, &resp);
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *con, const char *url,
                                  const char *method, const char *version, const char *data,
                                  size_t *data_size, void **req_cls)
{
    (void)version;
    struct api_req *q = *req_cls;
    if (!q) /* not seen by on_uri (cannot happen with MHD 0.9.75, kept for safety) */
        *req_cls = q = req_new(cls, url);
    st_log_set_request_id(q->request_id);
    enum MHD_Result r;
    if (q->state == REQ_NEW) {
        r = on_headers(q, con, method);
    } else if (*data_size) {
        r = on_body(q, data, *data_size);
        *data_size = 0;
    } else {
        r = on_end(q, con);
    }
    st_log_set_request_id(NULL);
    return r;
}

/* A bound, listening, non-blocking socket on a (the first address found). */
static int listen_on(const char *host, const char *port, bool dual_stack, const char *what,
                     int *ret_fd, struct st_err **err)
{
    struct addrinfo hints = {.ai_socktype = SOCK_STREAM,
                             .ai_flags = AI_PASSIVE | AI_NUMERICSERV,
                             .ai_family = AF_UNSPEC};
    struct addrinfo *ai = NULL;
    int gr = getaddrinfo(host, port, &hints, &ai);
    if (gr != 0)
        return st_err_set(err, gr == EAI_SYSTEM ? -errno : -EINVAL, "listen address '%s': %s", what,
                          gai_strerror(gr));
    int r = 0;
    st_autoclose int fd = socket(ai->ai_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd < 0) {
        r = st_err_errno(err, "socket for %s", what);
    } else {
        int one = 1, v6only = dual_stack ? 0 : 1;
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
        if (ai->ai_family == AF_INET6)
            setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &v6only, sizeof(v6only));
        if (bind(fd, ai->ai_addr, ai->ai_addrlen) < 0)
            r = st_err_errno(err, "bind %s", what);
        else if (listen(fd, ST_API_LISTEN_BACKLOG) < 0)
            r = st_err_errno(err, "listen %s", what);
        else
            *ret_fd = st_steal_fd(&fd);
    }
    freeaddrinfo(ai);
    return r;
}

/* Parses "host:port", "[v6]:port" or ":port" (every address: IPv6 and IPv4
 * on one dual-stack socket, or IPv4 alone where IPv6 is off) and opens it. */
static int listen_open(const char *listen_addr, int *ret_fd, uint16_t *ret_port, bool *ret_v6,
                       struct st_err **err)
{
    if (!listen_addr || !listen_addr[0])
        return st_err_set(err, -EINVAL, "no listen address given");
    *ret_fd = -1;
    char host[256];
    const char *port;
    if (listen_addr[0] == '[') {
        const char *close_br = strchr(listen_addr, ']');
        if (!close_br || close_br[1] != ':' || (size_t)(close_br - listen_addr) > sizeof(host))
            return st_err_set(err, -EINVAL, "listen address '%s': expected [address]:port",
                              listen_addr);
        snprintf(host, sizeof(host), "%.*s", (int)(close_br - listen_addr - 1), listen_addr + 1);
        port = close_br + 2;
    } else {
        const char *colon = strrchr(listen_addr, ':');
        if (!colon || (size_t)(colon - listen_addr) >= sizeof(host))
            return st_err_set(err, -EINVAL, "listen address '%s': expected host:port", listen_addr);
        snprintf(host, sizeof(host), "%.*s", (int)(colon - listen_addr), listen_addr);
        port = colon + 1;
    }
    char *end;
    unsigned long p = strtoul(port, &end, 10);
    if (!port[0] || *end || p > 65535)
        return st_err_set(err, -EINVAL, "listen address '%s': bad port '%s'", listen_addr, port);

    int r;
    if (host[0]) {
        r = listen_on(host, port, false, listen_addr, ret_fd, err);
    } else {
        struct st_err *v6err = NULL;
        r = listen_on("::", port, true, listen_addr, ret_fd, &v6err);
        if (r == -EAFNOSUPPORT || r == -EADDRNOTAVAIL) /* IPv6 is off on this host */
            r = listen_on("0.0.0.0", port, false, listen_addr, ret_fd, err);
        else if (r < 0)
            r = st_err_set(err, r, "%s", st_err_msg(v6err));
        st_err_free(v6err);
    }
    if (r < 0)
        return r;

    struct sockaddr_storage ss;
    socklen_t sl = sizeof(ss);
    if (getsockname(*ret_fd, (struct sockaddr *)&ss, &sl) < 0) {
        r = st_err_errno(err, "getsockname %s", listen_addr);
        close(*ret_fd);
        *ret_fd = -1;
        return r;
    }
    *ret_v6 = ss.ss_family == AF_INET6;
    *ret_port = ntohs(*ret_v6 ? ((struct sockaddr_in6 *)&ss)->sin6_port
                              : ((struct sockaddr_in *)&ss)->sin_port);
    return 0;
}

static unsigned ncpus(void)
{
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n > 0 ? (unsigned)n : 1;
}

int st_api_server_start(const struct st_api_server_config *cfg, struct st_router *router,
                        struct st_api_server **ret, struct st_err **err)
{
    if (!!cfg->tls_cert != !!cfg->tls_key)
        return st_err_set(err, -EINVAL, "TLS needs both a certificate and a key");
    struct st_api_server *srv = st_new0(struct st_api_server, 1);
    srv->router = router;
    srv->listen_fd = -1; /* MHD owns it until quiesced */
    srv->body_limit = cfg->body_limit ? cfg->body_limit : ST_API_DEFAULT_BODY_LIMIT;
    srv->access_log = cfg->access_log;
    pthread_mutex_init(&srv->park_lock, NULL);
    pthread_cond_init(&srv->park_cond, NULL);

    int r;
    if (cfg->tls_cert) {
        if (!MHD_is_feature_supported(MHD_FEATURE_TLS)) {
            r = st_err_set(err, -EOPNOTSUPP, "this libmicrohttpd was built without TLS");
            goto fail;
        }
        r = st_read_file(cfg->tls_cert, 1024 * 1024, &srv->tls_cert, NULL, err);
        if (r >= 0)
            r = st_read_file(cfg->tls_key, 1024 * 1024, &srv->tls_key, NULL, err);
        if (r < 0) {
            r = st_err_prefix(err, r, "reading TLS certificate and key");
            goto fail;
        }
    }

    int fd = -1;
    bool v6 = false;
    r = listen_open(cfg->listen, &fd, &srv->port, &v6, err);
    if (r < 0)
        goto fail;

    MHD_set_panic_func(on_mhd_panic, NULL);
    unsigned threads = cfg->threads ? cfg->threads : ncpus();
    /* poll, not epoll: with MHD 0.9.75's epoll thread pool, when ~200
     * connections arrive at once, 128 of them can be accepted and never read
     * (reproduced with a bare MHD daemon); MHD_quiesce_daemon also races its
     * workers' epoll_ctl there and panics. poll costs O(connections) per wakeup,
     * which is fine for an API server's hundreds of keep-alive connections. */
    unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_POLL | MHD_USE_ITC |
                     MHD_USE_ERROR_LOG | MHD_ALLOW_SUSPEND_RESUME;
    if (v6)
        flags |= MHD_USE_IPv6;
    if (cfg->tls_cert)
        flags |= MHD_USE_TLS;
    struct MHD_OptionItem ops[16] = {
        {MHD_OPTION_LISTEN_SOCKET, fd, NULL},
        {MHD_OPTION_CONNECTION_LIMIT, cfg->connection_limit ? cfg->connection_limit : 1024, NULL},
        {MHD_OPTION_CONNECTION_TIMEOUT, cfg->timeout_s ? cfg->timeout_s : 60, NULL},
        {MHD_OPTION_CONNECTION_MEMORY_LIMIT, ST_API_CONN_MEMORY_LIMIT, NULL},
        {MHD_OPTION_URI_LOG_CALLBACK, (intptr_t)on_uri, srv},
        {MHD_OPTION_NOTIFY_COMPLETED, (intptr_t)on_completed, srv},
        {MHD_OPTION_NOTIFY_CONNECTION, (intptr_t)on_connection, srv},
    };
    size_t n = 7;
    if (threads > 1)
        ops[n++] = (struct MHD_OptionItem){MHD_OPTION_THREAD_POOL_SIZE, threads, NULL};
    if (cfg->tls_cert) {
        ops[n++] = (struct MHD_OptionItem){MHD_OPTION_HTTPS_MEM_CERT, 0, srv->tls_cert};
        ops[n++] = (struct MHD_OptionItem){MHD_OPTION_HTTPS_MEM_KEY, 0, srv->tls_key};
    }
    ops[n] = (struct MHD_OptionItem){MHD_OPTION_END, 0, NULL};

    /* the logger goes first, so MHD's messages about the options reach it too */
    srv->daemon =
        MHD_start_daemon(flags, 0, NULL, NULL, on_request, srv, MHD_OPTION_EXTERNAL_LOGGER,
                         on_mhd_log, srv, MHD_OPTION_ARRAY, ops, MHD_OPTION_END);
    if (!srv->daemon) {
        close(fd);
        r = st_err_set(err, -EIO,
                       "libmicrohttpd could not start on %s (bad TLS certificate or key? "
                       "see the http_server log lines)",
                       cfg->listen);
        goto fail;
    }
    r = pthread_create(&srv->waker, NULL, waker_main, srv);
    if (r != 0) {
        server_free(srv);
        return st_err_set(err, -r, "starting the long-poll waker: %s", strerror(r));
    }
    srv->waker_started = true;
    *ret = srv;
    return 0;

fail:
    pthread_mutex_destroy(&srv->park_lock);
    pthread_cond_destroy(&srv->park_cond);
    free(srv->tls_cert);
    free(srv->tls_key);
    free(srv);
    return r;
}

uint16_t st_api_server_port(const struct st_api_server *srv)
{
    return srv->port;
}

static void stop_waker(struct st_api_server *srv)
{
    if (!srv->waker_started)
        return;
    pthread_mutex_lock(&srv->park_lock);
    srv->waker_stop = true;
    pthread_cond_signal(&srv->park_cond);
    pthread_mutex_unlock(&srv->park_lock);
    pthread_join(srv->waker, NULL);
    srv->waker_started = false;
}

static void server_free(struct st_api_server *srv)
{
    __atomic_store_n(&srv->stopping, true, __ATOMIC_SEQ_CST);
    stop_waker(srv);
    resume_all(srv); /* MHD must not be stopped with suspended connections */
    if (srv->daemon)
        MHD_stop_daemon(srv->daemon);
    pthread_mutex_destroy(&srv->park_lock);
    pthread_cond_destroy(&srv->park_cond);
    if (srv->listen_fd >= 0) /* quiesced: MHD gave it back */
        close(srv->listen_fd);
    free(srv->tls_cert);
    free(srv->tls_key);
    free(srv);
}

void st_api_server_stop(struct st_api_server *srv, int grace_ms)
{
    if (!srv)
        return;
    __atomic_store_n(&srv->stopping, true, __ATOMIC_SEQ_CST);
    /* MHD stops polling the listener and hands it back; it must stay open
     * until MHD is stopped (a worker may still hold it), but shutdown() takes
     * it out of LISTEN now, so new clients are refused instead of queued */
    MHD_socket lfd = MHD_quiesce_daemon(srv->daemon);
    if (lfd != MHD_INVALID_SOCKET) {
        shutdown(lfd, SHUT_RDWR);
        srv->listen_fd = lfd;
    }
    /* parked long-polls run once more and answer (503, shutting down) */
    resume_all(srv);
    int64_t deadline = st_time_mono_ns() + (int64_t)(grace_ms > 0 ? grace_ms : 0) * 1000000;
    while (__atomic_load_n(&srv->in_flight, __ATOMIC_SEQ_CST) > 0 && st_time_mono_ns() < deadline) {
        struct timespec ts = {0, 2 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    int left = __atomic_load_n(&srv->in_flight, __ATOMIC_SEQ_CST);
    if (left > 0)
        st_log_warn("http_shutdown", "in_flight=%d grace_ms=%d msg=\"cutting requests off\"", left,
                    grace_ms);
    server_free(srv);
}

void st_api_server_free_now(struct st_api_server *srv)
{
    if (srv)
        server_free(srv); /* MHD closes a listener it was not asked to give back */
}
