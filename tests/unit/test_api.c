/* Unit tests of src/api: the errno table and error bodies, the router and the
 * URL parsers on their own, then a real server on 127.0.0.1 (port 0) spoken
 * to over real sockets with raw HTTP/1.1: what a client sees (status, headers,
 * bodies, keep-alive, limits, concurrency, graceful stop, TLS, IPv6). Last,
 * the Keystone routes served by two controllers (two identity instances on
 * one SQLite store): a project's own users read its record, and a token
 * revoked at one is refused by the other. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <cmocka.h>

#include "api/app.h"
#include "api/auth.h"
#include "api/errors.h"
#include "api/http.h"
#include "api/keystone.h"
#include "api/router.h"
#include "api/server.h"
#include "api/system.h"
#include "identity/identity-priv.h"
#include "identity/identity.h"
#include "lib/cleanup.h"
#include "lib/files.h"
#include "lib/json.h"
#include "lib/times.h"
#include "lib/uuid.h"
#include "store/kv.h"

/* ---- a tiny HTTP/1.1 client ------------------------------------------------ */

struct http_resp {
    int status;
    char head[8192]; /* status line and headers */
    char *body;
    size_t body_len;
};

/* Bytes read past one response stay here for the next (keep-alive). */
struct conn {
    int fd;
    char buf[65536];
    size_t len;
};

static void resp_clear(struct http_resp *r)
{
    free(r->body);
    memset(r, 0, sizeof(*r));
}

static int conn_open_addr(int family, const char *addr, uint16_t port)
{
    int fd = socket(family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    assert_true(fd >= 0);
    struct timeval tv = {.tv_sec = 10};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
    int r;
    if (family == AF_INET6) {
        struct sockaddr_in6 sa = {.sin6_family = AF_INET6, .sin6_port = htons(port)};
        inet_pton(AF_INET6, addr, &sa.sin6_addr);
        r = connect(fd, (struct sockaddr *)&sa, sizeof(sa));
    } else {
        struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(port)};
        inet_pton(AF_INET, addr, &sa.sin_addr);
        r = connect(fd, (struct sockaddr *)&sa, sizeof(sa));
    }
    if (r < 0) {
        int e = errno;
        close(fd);
        return -e;
    }
    return fd;
}

static void conn_open(struct conn *c, uint16_t port)
{
    c->len = 0;
    c->fd = conn_open_addr(AF_INET, "127.0.0.1", port);
    assert_true(c->fd >= 0);
}

static void conn_close(struct conn *c)
{
    if (c->fd >= 0)
        close(c->fd);
    c->fd = -1;
}

static int send_all(int fd, const void *data, size_t len)
{
    const char *p = data;
    while (len > 0) {
        ssize_t w = send(fd, p, len, MSG_NOSIGNAL);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return -errno;
        p += w;
        len -= (size_t)w;
    }
    return 0;
}

__attribute__((format(printf, 2, 3))) static void conn_send(struct conn *c, const char *fmt, ...)
{
    char req[8192];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(req, sizeof(req), fmt, ap);
    va_end(ap);
    assert_true(n > 0 && (size_t)n < sizeof(req));
    assert_int_equal(send_all(c->fd, req, (size_t)n), 0);
}

/* Reads more into c->buf; 0 at EOF. */
static ssize_t conn_fill(struct conn *c)
{
    assert_true(c->len < sizeof(c->buf));
    ssize_t r;
    do
        r = recv(c->fd, c->buf + c->len, sizeof(c->buf) - c->len, 0);
    while (r < 0 && errno == EINTR);
    if (r > 0)
        c->len += (size_t)r;
    return r;
}

static const char *find_header(const char *head, const char *name, char *out, size_t size)
{
    size_t nlen = strlen(name);
    for (const char *p = strstr(head, "\r\n"); p && p[2]; p = strstr(p + 2, "\r\n")) {
        const char *line = p + 2;
        if (strncasecmp(line, name, nlen) == 0 && line[nlen] == ':') {
            const char *v = line + nlen + 1;
            while (*v == ' ')
                v++;
            const char *end = strstr(v, "\r\n");
            size_t len = end ? (size_t)(end - v) : strlen(v);
            snprintf(out, size, "%.*s", (int)len, v);
            return out;
        }
    }
    return NULL;
}

static const char *header(const struct http_resp *r, const char *name)
{
    static __thread char value[1024];
    return find_header(r->head, name, value, sizeof(value));
}

/* Reads one response: headers, then Content-Length bytes of body (none for
 * HEAD, 204 and 304), or up to EOF when there is no length. */
static int conn_read(struct conn *c, bool head_request, struct http_resp *out)
{
    memset(out, 0, sizeof(*out));
    char *end;
    while (!(end = memmem(c->buf, c->len, "\r\n\r\n", 4)))
        if (conn_fill(c) <= 0)
            return -EIO;
    size_t hlen = (size_t)(end - c->buf) + 4;
    if (hlen >= sizeof(out->head))
        return -E2BIG;
    memcpy(out->head, c->buf, hlen);
    out->head[hlen] = '\0';
    if (sscanf(out->head, "HTTP/1.1 %d", &out->status) != 1)
        return -EBADMSG;
    memmove(c->buf, c->buf + hlen, c->len - hlen);
    c->len -= hlen;

    char v[64];
    bool has_len = find_header(out->head, "Content-Length", v, sizeof(v)) != NULL;
    size_t want = has_len ? strtoull(v, NULL, 10) : SIZE_MAX;
    if (head_request || out->status == 204 || out->status == 304)
        want = 0;
    size_t cap = want == SIZE_MAX ? 1 << 20 : want;
    out->body = calloc(1, cap + 1);
    while (out->body_len < want) {
        if (c->len == 0) {
            ssize_t r = conn_fill(c);
            if (r <= 0) {
                if (want == SIZE_MAX)
                    break;
                return -EIO;
            }
        }
        size_t take = c->len < want - out->body_len ? c->len : want - out->body_len;
        if (out->body_len + take > cap)
            return -E2BIG;
        memcpy(out->body + out->body_len, c->buf, take);
        out->body_len += take;
        memmove(c->buf, c->buf + take, c->len - take);
        c->len -= take;
    }
    out->body[out->body_len] = '\0';
    return 0;
}

/* One request on a new connection. */
__attribute__((format(printf, 3, 4))) static void http(uint16_t port, struct http_resp *out,
                                                       const char *fmt, ...)
{
    char req[8192];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(req, sizeof(req), fmt, ap);
    va_end(ap);
    assert_true(n > 0 && (size_t)n < sizeof(req));
    struct conn c;
    conn_open(&c, port);
    assert_int_equal(send_all(c.fd, req, (size_t)n), 0);
    assert_int_equal(conn_read(&c, strncmp(req, "HEAD ", 5) == 0, out), 0);
    conn_close(&c);
}

static void http_get(uint16_t port, const char *path, struct http_resp *out)
{
    http(port, out, "GET %s HTTP/1.1\r\nHost: test\r\n\r\n", path);
}

static json_t *body_json(const struct http_resp *r)
{
    json_error_t e;
    json_t *v = json_loadb(r->body, r->body_len, 0, &e);
    if (!v)
        fail_msg("body is not JSON (%s): %s", e.text, r->body);
    return v;
}

/* The error message of a Keystone/Nova/Neutron-shaped body under key. */
static const char *err_message(json_t *body, const char *key)
{
    json_t *o = json_object_get(body, key);
    assert_non_null(o);
    const char *m = json_string_value(json_object_get(o, "message"));
    assert_non_null(m);
    return m;
}

/* ---- the test router --------------------------------------------------------- */

static bool check_fails;
static int volatile slow_started;

static int store_check(void *userdata, struct st_err **err)
{
    assert_ptr_equal(userdata, &check_fails);
    if (check_fails)
        return st_err_set(err, -EIO, "store: database is locked");
    return 0;
}

static int auth_hook(struct st_http_request *req, struct st_err **err)
{
    const char *token = st_http_header(req, "x-auth-token");
    if (!token)
        return st_err_set(err, -EACCES, "The request you have made requires authentication.");
    if (strcmp(token, "reader") == 0)
        return st_err_set(err, -EPERM, "Policy doesn't allow %s to be performed.",
                          req->route->action);
    if (strcmp(token, "good") != 0)
        return st_err_set(err, -EACCES, "The token is not valid.");
    req->auth = st_strdup("admin"); /* freed by the router's auth_free when the request ends */
    return 0;
}

static int server_create(struct st_http_request *req, struct st_http_response *resp,
                         struct st_err **err)
{
    assert_string_equal(req->auth, "admin");
    st_autoptr(json_t) body = NULL;
    int r = st_json_parse_object(req->body, req->body_len, &body, err);
    if (r < 0)
        return r;
    json_t *server;
    r = st_json_get_obj(body, "server", true, &server, err);
    if (r < 0)
        return r;
    const char *name;
    r = st_json_get_str(server, "name", true, &name, err);
    if (r < 0)
        return r;
    st_http_resp_header(resp, "Location", "/compute/v2.1/servers/1");
    st_http_resp_json(resp, 202, json_pack("{s:{s:s}}", "server", "name", name));
    return 0;
}

static int server_show(struct st_http_request *req, struct st_http_response *resp,
                       struct st_err **err)
{
    (void)resp;
    st_http_resp_header(resp, "X-Should-Vanish", "1");
    return st_err_set(err, -ENOENT, "Instance %s could not be found.",
                      st_http_param(req, "server_id"));
}

static int not_found(struct st_http_request *req, struct st_http_response *resp,
                     struct st_err **err)
{
    (void)resp;
    return st_err_set(err, -ENOENT, "Thing %s could not be found.", st_http_param(req, "id"));
}

static int echo(struct st_http_request *req, struct st_http_response *resp, struct st_err **err)
{
    (void)err;
    const char *ks[8];
    size_t n = st_http_query_all(req, "k", ks, 8);
    json_t *arr = json_array();
    for (size_t i = 0; i < n; i++)
        json_array_append_new(arr, json_string(ks[i]));
    const char *x = st_http_query(req, "x");
    st_http_resp_json(resp, 200,
                      json_pack("{s:s,s:s,s:s,s:o,s:s?,s:s}", "a", st_http_param(req, "a"), "b",
                                st_http_param(req, "b"), "path", req->path, "k", arr, "x", x,
                                "peer", req->peer));
    return 0;
}

static int item(struct st_http_request *req, struct st_http_response *resp, struct st_err **err)
{
    (void)req;
    (void)err;
    resp->status = 204;
    return 0;
}

static int small_post(struct st_http_request *req, struct st_http_response *resp,
                      struct st_err **err)
{
    (void)err;
    st_http_resp_json(resp, 200, json_pack("{s:I}", "len", (json_int_t)req->body_len));
    return 0;
}

struct upload {
    uint64_t bytes;
    uint64_t hash;
};

static uint64_t fnv1a(uint64_t h, const void *data, size_t len)
{
    const unsigned char *p = data;
    for (size_t i = 0; i < len; i++) {
        h ^= p[i];
        h *= 1099511628211ull;
    }
    return h;
}

static int upload_chunk(struct st_http_request *req, const char *data, size_t len,
                        struct st_err **err)
{
    (void)err;
    if (!data) {
        assert_null(req->stream);
        struct upload *u = st_new0(struct upload, 1);
        u->hash = 14695981039346656037ull;
        req->stream = u;
        return 0;
    }
    struct upload *u = req->stream;
    u->bytes += len;
    u->hash = fnv1a(u->hash, data, len);
    return 0;
}

static int upload_done(struct st_http_request *req, struct st_http_response *resp,
                       struct st_err **err)
{
    (void)err;
    assert_null(req->body);
    struct upload *u = req->stream;
    char hash[32];
    snprintf(hash, sizeof(hash), "%016llx", (unsigned long long)u->hash);
    st_http_resp_json(resp, 201,
                      json_pack("{s:I,s:s}", "bytes", (json_int_t)u->bytes, "hash", hash));
    return 0;
}

static int refuse_upload(struct st_http_request *req, const char *data, size_t len,
                         struct st_err **err)
{
    (void)req;
    (void)data;
    (void)len;
    return st_err_set(err, -ENOENT, "No image found with ID nope.");
}

static int slow(struct st_http_request *req, struct st_http_response *resp, struct st_err **err)
{
    (void)req;
    (void)err;
    __atomic_store_n(&slow_started, 1, __ATOMIC_SEQ_CST);
    struct timespec ts = {0, 400 * 1000 * 1000};
    nanosleep(&ts, NULL);
    st_http_resp_json(resp, 200, json_pack("{s:b}", "slept", 1));
    return 0;
}

static int fail_internal(struct st_http_request *req, struct st_http_response *resp,
                         struct st_err **err)
{
    (void)req;
    (void)resp;
    return st_err_set(err, -EIO, "secret: write /var/lib/stratos/store.db: I/O error");
}

static int s3_error(struct st_http_request *req, struct st_http_response *resp, struct st_err **err)
{
    (void)err;
    return st_http_resp_error(req, resp, 404, "NoSuchBucket", "The bucket <%s> does not exist",
                              st_http_param(req, "bucket"));
}

static const struct st_route test_routes[] = {
    {.method = "POST",
     .pattern = "/compute/v2.1/servers",
     .action = "compute:server:create",
     .family = ST_API_NOVA,
     .handler = server_create},
    {.method = "GET",
     .pattern = "/compute/v2.1/servers/{server_id}",
     .action = "compute:server:show",
     .family = ST_API_NOVA,
     .handler = server_show},
    {.method = "GET",
     .pattern = "/network/v2.0/networks/{id}",
     .action = "network:show",
     .family = ST_API_NEUTRON,
     .flags = ST_ROUTE_PUBLIC,
     .handler = not_found},
    {.method = "GET",
     .pattern = "/s3/{id}",
     .action = "s3:bucket:show",
     .family = ST_API_S3,
     .flags = ST_ROUTE_PUBLIC,
     .handler = not_found},
    {.method = "PUT",
     .pattern = "/s3/{bucket}",
     .action = "s3:bucket:create",
     .family = ST_API_S3,
     .flags = ST_ROUTE_PUBLIC,
     .handler = s3_error},
    {.method = "GET",
     .pattern = "/echo/{a}/{b}",
     .action = "test:echo",
     .flags = ST_ROUTE_PUBLIC,
     .handler = echo},
    {.method = "GET",
     .pattern = "/items/{id}",
     .action = "test:item:show",
     .flags = ST_ROUTE_PUBLIC,
     .handler = item},
    {.method = "DELETE",
     .pattern = "/items/{id}",
     .action = "test:item:delete",
     .flags = ST_ROUTE_PUBLIC,
     .handler = item},
    {.method = "POST",
     .pattern = "/small",
     .action = "test:small",
     .flags = ST_ROUTE_PUBLIC,
     .handler = small_post},
    {.method = "PUT",
     .pattern = "/upload",
     .action = "test:upload",
     .flags = ST_ROUTE_PUBLIC | ST_ROUTE_STREAM,
     .handler = upload_done,
     .on_body_chunk = upload_chunk,
     .stream_free = free},
    {.method = "PUT",
     .pattern = "/image/v2/images/{id}/file",
     .action = "image:upload",
     .family = ST_API_GLANCE,
     .flags = ST_ROUTE_PUBLIC | ST_ROUTE_STREAM,
     .handler = upload_done,
     .on_body_chunk = refuse_upload},
    {.method = "GET",
     .pattern = "/slow",
     .action = "test:slow",
     .flags = ST_ROUTE_PUBLIC,
     .handler = slow},
    {.method = "GET",
     .pattern = "/fail",
     .action = "test:fail",
     .flags = ST_ROUTE_PUBLIC,
     .handler = fail_internal},
};

static struct st_router *test_router_new(void)
{
    struct st_router *r = st_router_new(NULL);
    st_router_set_auth(r, auth_hook);
    st_router_set_auth_free(r, free);
    st_autoptr(st_err) err = NULL;
    struct st_api_system sys = {
        .store_check = store_check, .userdata = &check_fails, .role = "test"};
    assert_int_equal(st_api_system_register(r, &sys, &err), 0);
    assert_int_equal(st_router_add_all(r, test_routes, ST_ARRAY_SIZE(test_routes), &err), 0);
    return r;
}

static struct st_router *router;
static struct st_api_server *server;
static uint16_t port;

static int group_setup(void **state)
{
    (void)state;
    router = test_router_new();
    struct st_api_server_config cfg = {.listen = "127.0.0.1:0", .threads = 4, .access_log = true};
    st_autoptr(st_err) err = NULL;
    if (st_api_server_start(&cfg, router, &server, &err) < 0) {
        fprintf(stderr, "server: %s\n", st_err_msg(err));
        return -1;
    }
    port = st_api_server_port(server);
    return port ? 0 : -1;
}

static int group_teardown(void **state)
{
    (void)state;
    st_api_server_stop(server, 1000);
    st_router_free(router);
    return 0;
}

/* ---- units: errors, router, parsers ------------------------------------------- */

static void test_error_table(void **state)
{
    (void)state;
    static const struct {
        int code, status;
    } cases[] = {
        {-EINVAL, 400}, {-EACCES, 401},     {-EPERM, 403},  {-ENOENT, 404},    {-EBADRQC, 405},
        {-EEXIST, 409}, {-ECANCELED, 409},  {-EFBIG, 413},  {-E2BIG, 413},     {-EMEDIUMTYPE, 415},
        {-EUSERS, 429}, {-EOPNOTSUPP, 501}, {-EAGAIN, 503}, {-ESHUTDOWN, 503}, {-ETIMEDOUT, 504},
        {-ENOSPC, 507}, {-EIO, 500},        {-ENOMEM, 500}, {0, 200},
    };
    for (size_t i = 0; i < ST_ARRAY_SIZE(cases); i++)
        assert_int_equal(st_http_status_from_errno(cases[i].code), cases[i].status);
    assert_string_equal(st_http_reason(404), "Not Found");
    assert_string_equal(st_api_error_type(ST_API_NOVA, 409), "conflictingRequest");
    assert_string_equal(st_api_error_type(ST_API_CINDER, 413), "overLimit");
    assert_string_equal(st_api_error_type(ST_API_NOVA, 418), "computeFault");
    assert_string_equal(st_api_error_type(ST_API_NEUTRON, 404), "HTTPNotFound");
    assert_string_equal(st_api_error_type(ST_API_S3, 404), "NoSuchKey");

    struct st_http_response resp = {.fd = -1};
    st_api_error_render(&resp, ST_API_NOVA, 404, NULL, "Instance x could not be found.", "req-1");
    assert_int_equal(resp.status, 404);
    st_autofree char *s = st_json_dumps(resp.json);
    assert_string_equal(s, "{\"itemNotFound\":{\"code\":404,\"message\":\"Instance x could not be "
                           "found.\"}}");
    free(s);
    st_api_error_render(&resp, ST_API_KEYSTONE, 409, NULL, "Duplicate entry.", "req-1");
    s = st_json_dumps(resp.json);
    assert_string_equal(s, "{\"error\":{\"code\":409,\"title\":\"Conflict\",\"message\":"
                           "\"Duplicate entry.\"}}");
    free(s);
    st_api_error_render(&resp, ST_API_NEUTRON, 409, "NetworkInUse", "in use", "req-1");
    s = st_json_dumps(resp.json);
    assert_string_equal(s, "{\"NeutronError\":{\"type\":\"NetworkInUse\",\"message\":\"in use\","
                           "\"detail\":\"\"}}");
    /* S3: XML, escaped, and no 401 */
    st_api_error_render(&resp, ST_API_S3, 401, NULL, "a <b> & 'c'", "req-9");
    assert_int_equal(resp.status, 403);
    assert_null(resp.json);
    assert_string_equal(resp.content_type, "application/xml");
    assert_string_equal(resp.body, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>"
                                   "AccessDenied</Code><Message>a &lt;b&gt; &amp; &apos;c&apos;"
                                   "</Message><RequestId>req-9</RequestId></Error>");
    /* invalid UTF-8 in a message still gives a well-formed body */
    st_api_error_render(&resp, ST_API_NOVA, 400, NULL, "bad \xff name", "req-1");
    assert_non_null(resp.json);
    st_http_resp_reset(&resp);
}

static int noop(struct st_http_request *req, struct st_http_response *resp, struct st_err **err)
{
    (void)req;
    (void)resp;
    (void)err;
    return 0;
}

static void count_route(const struct st_route *route, void *userdata)
{
    assert_non_null(route->action);
    (*(size_t *)userdata)++;
}

static void test_router_register(void **state)
{
    (void)state;
    st_autoptr(st_router) r = st_router_new(NULL);
    struct {
        struct st_route route;
        int code;
        const char *msg;
    } bad[] = {
        {{.method = "GET", .pattern = "/a", .handler = noop}, -EINVAL, "no policy action"},
        {{.method = "GET", .pattern = "/a", .action = "", .handler = noop},
         -EINVAL,
         "no policy action"},
        {{.method = "GET", .pattern = "/a", .action = "x"}, -EINVAL, "no handler"},
        {{.method = "FETCH", .pattern = "/a", .action = "x", .handler = noop},
         -EINVAL,
         "unknown method"},
        {{.method = "GET", .pattern = "a", .action = "x", .handler = noop},
         -EINVAL,
         "must start with '/'"},
        {{.method = "GET", .pattern = "/a//b", .action = "x", .handler = noop},
         -EINVAL,
         "empty segment"},
        {{.method = "GET", .pattern = "/{}", .action = "x", .handler = noop},
         -EINVAL,
         "bad parameter"},
        {{.method = "GET", .pattern = "/{a}/{a}", .action = "x", .handler = noop},
         -EINVAL,
         "repeats parameter"},
        {{.method = "GET", .pattern = "/{k+}/x", .action = "x", .handler = noop},
         -EINVAL,
         "must be the last"},
        {{.method = "GET", .pattern = "/a{b}", .action = "x", .handler = noop},
         -EINVAL,
         "bad segment"},
        {{.method = "PUT",
          .pattern = "/a",
          .action = "x",
          .handler = noop,
          .flags = ST_ROUTE_STREAM},
         -EINVAL,
         "no on_body_chunk"},
    };
    for (size_t i = 0; i < ST_ARRAY_SIZE(bad); i++) {
        st_autoptr(st_err) err = NULL;
        assert_int_equal(st_router_add(r, &bad[i].route, &err), bad[i].code);
        assert_non_null(err);
        if (!strstr(err->msg, bad[i].msg))
            fail_msg("case %zu: '%s' does not say '%s'", i, err->msg, bad[i].msg);
    }
    struct st_route ok = {
        .method = "GET", .pattern = "/v/{id}", .action = "v:show", .handler = noop};
    assert_int_equal(st_router_add(r, &ok, NULL), 0);
    /* the same shape again, even with another parameter name or a trailing slash */
    struct st_route dup = {
        .method = "GET", .pattern = "/v/{name}/", .action = "v:other", .handler = noop};
    st_autoptr(st_err) err = NULL;
    assert_int_equal(st_router_add(r, &dup, &err), -EEXIST);
    assert_non_null(strstr(err->msg, "already registered"));
    dup.method = "DELETE";
    assert_int_equal(st_router_add(r, &dup, NULL), 0);
    size_t n = 0;
    st_router_foreach(r, count_route, &n);
    assert_int_equal(n, 2);
}

static int split(const char *raw, char *storage, struct st_http_path *p)
{
    return st_http_path_split(raw, strlen(raw), storage, p);
}

static void test_router_match(void **state)
{
    (void)state;
    st_autoptr(st_router) r = st_router_new(NULL);
    const struct st_route routes[] = {
        {.method = "GET",
         .pattern = "/compute/v2.1/servers/{id}",
         .action = "show",
         .family = ST_API_NOVA,
         .handler = noop},
        {.method = "GET",
         .pattern = "/compute/v2.1/servers/detail",
         .action = "detail",
         .family = ST_API_NOVA,
         .handler = noop},
        {.method = "DELETE",
         .pattern = "/compute/v2.1/servers/{id}",
         .action = "delete",
         .family = ST_API_NOVA,
         .handler = noop},
        {.method = "GET", .pattern = "/", .action = "root", .handler = noop},
        {.method = "GET",
         .pattern = "/s3/{bucket}/{key+}",
         .action = "object",
         .family = ST_API_S3,
         .handler = noop},
        {.method = "HEAD", .pattern = "/h", .action = "head", .handler = noop},
        {.method = "GET", .pattern = "/h", .action = "get", .handler = noop},
        {.method = "GET", .pattern = "/h2", .action = "get2", .handler = noop},
        {.method = "HEAD", .pattern = "/h2", .action = "head2", .handler = noop},
    };
    assert_int_equal(st_router_add_all(r, routes, ST_ARRAY_SIZE(routes), NULL), 0);
    char storage[1024];
    struct st_http_path p;
    struct st_route_match m;

    /* a literal beats a parameter, whatever the order of registration */
    assert_int_equal(split("/compute/v2.1/servers/detail", storage, &p), 0);
    assert_int_equal(st_router_match(r, "GET", &p, &m), 0);
    assert_string_equal(m.route->action, "detail");
    assert_int_equal(m.n_params, 0);
    /* ... but the method comes first: DELETE /servers/detail is a delete */
    assert_int_equal(st_router_match(r, "DELETE", &p, &m), 0);
    assert_string_equal(m.route->action, "delete");
    assert_string_equal(m.params[0].value, "detail");

    /* decoding per segment: %20 is a space, %2F stays inside its segment */
    assert_int_equal(split("/compute/v2.1/servers/web%20server%2F1/", storage, &p), 0);
    assert_string_equal(p.decoded, "/compute/v2.1/servers/web server/1/");
    assert_int_equal(st_router_match(r, "GET", &p, &m), 0);
    assert_string_equal(m.route->action, "show");
    assert_string_equal(m.params[0].name, "id");
    assert_string_equal(m.params[0].value, "web server/1");

    /* HEAD is answered by GET, or by its own route when there is one */
    assert_int_equal(st_router_match(r, "HEAD", &p, &m), 0);
    assert_string_equal(m.route->action, "show");
    assert_int_equal(split("/h", storage, &p), 0);
    assert_int_equal(st_router_match(r, "HEAD", &p, &m), 0);
    assert_string_equal(m.route->action, "head");
    assert_int_equal(split("/h2", storage, &p), 0);
    assert_int_equal(st_router_match(r, "HEAD", &p, &m), 0);
    assert_string_equal(m.route->action, "head2");
    assert_int_equal(st_router_match(r, "GET", &p, &m), 0);
    assert_string_equal(m.route->action, "get2");

    /* 405 with every method of the path */
    assert_int_equal(split("/compute/v2.1/servers/1", storage, &p), 0);
    assert_int_equal(st_router_match(r, "PUT", &p, &m), -EBADRQC);
    assert_string_equal(m.allow, "GET, HEAD, DELETE");
    assert_int_equal(m.family, ST_API_NOVA);
    assert_int_equal(st_router_match(r, "BREW", &p, &m), -EBADRQC);

    /* 404 in the family of the routes sharing the longest prefix */
    assert_int_equal(split("/compute/v2.1/flavors", storage, &p), 0);
    assert_int_equal(st_router_match(r, "GET", &p, &m), -ENOENT);
    assert_int_equal(m.family, ST_API_NOVA);
    assert_int_equal(split("/nope", storage, &p), 0);
    assert_int_equal(st_router_match(r, "GET", &p, &m), -ENOENT);
    assert_int_equal(m.family, ST_API_PLAIN);
    /* an empty segment matches no parameter */
    assert_int_equal(split("/compute/v2.1/servers//", storage, &p), 0);
    assert_int_equal(st_router_match(r, "GET", &p, &m), -ENOENT);

    /* the root, with and without its slash */
    assert_int_equal(split("/", storage, &p), 0);
    assert_int_equal(p.n_seg, 0);
    assert_int_equal(st_router_match(r, "GET", &p, &m), 0);
    assert_string_equal(m.route->action, "root");

    /* "{key+}" takes the rest, slashes and a trailing one included */
    assert_int_equal(split("/s3/b/photos/2026//a%20b.jpg/", storage, &p), 0);
    assert_int_equal(st_router_match(r, "GET", &p, &m), 0);
    assert_string_equal(m.route->action, "object");
    assert_string_equal(m.params[0].value, "b");
    assert_string_equal(m.params[1].value, "photos/2026//a b.jpg/");
    assert_int_equal(split("/s3/b/", storage, &p), 0);
    assert_int_equal(st_router_match(r, "GET", &p, &m), -ENOENT);
    assert_int_equal(m.family, ST_API_S3);

    /* what is not a path */
    assert_int_equal(split("*", storage, &p), -EINVAL);
    char many[200] = "";
    for (int i = 0; i < 40; i++)
        strcat(many, "/x");
    assert_int_equal(split(many, storage, &p), -E2BIG);
    /* malformed escapes and %00 are kept as they are */
    assert_int_equal(split("/a%zz%00%4", storage, &p), 0);
    assert_string_equal(p.seg[0], "a%zz%00%4");
}

static void test_query_parse(void **state)
{
    (void)state;
    char q[] = "fields=id&fields=name&a+b=c%20d+e&flag&&scope.project.id=p1&bad=%zz%00&=v";
    struct st_http_kv kv[16];
    size_t n = st_http_query_parse(q, kv, 16);
    assert_int_equal(n, 7);
    assert_string_equal(kv[0].key, "fields");
    assert_string_equal(kv[1].value, "name");
    assert_string_equal(kv[2].key, "a b");
    assert_string_equal(kv[2].value, "c d e");
    assert_string_equal(kv[3].key, "flag");
    assert_string_equal(kv[3].value, "");
    assert_string_equal(kv[4].key, "scope.project.id");
    assert_string_equal(kv[5].value, "%zz%00");
    assert_string_equal(kv[6].key, "");
    /* a bounded output still counts everything */
    char q2[] = "a=1&b=2&c=3";
    assert_int_equal(st_http_query_parse(q2, kv, 2), 3);

    /* the accessors over a request built by hand */
    struct st_http_kv headers[] = {{"X-Auth-Token", "t0k"}};
    struct st_http_exchange x = {
        .raw_query = "k=1&x=a+b&k=2&k=3", .headers = headers, .n_headers = 1};
    struct st_http_request req = {.conn = &x};
    const char *vals[2];
    assert_int_equal(st_http_query_all(&req, "k", vals, 2), 2);
    assert_string_equal(vals[0], "1");
    assert_string_equal(vals[1], "2");
    assert_string_equal(st_http_query(&req, "x"), "a b");
    assert_null(st_http_query(&req, "nope"));
    assert_string_equal(st_http_header(&req, "x-auth-token"), "t0k");
    free(x.query);
}

/* ---- the server, over sockets ---------------------------------------------------- */

static void assert_request_id(const struct http_resp *r, char *out)
{
    const char *id = header(r, "x-openstack-request-id");
    assert_non_null(id);
    assert_int_equal(strncmp(id, "req-", 4), 0);
    assert_true(st_uuid_valid(id + 4));
    if (out)
        strcpy(out, id);
}

static void test_version_and_healthz(void **state)
{
    (void)state;
    struct http_resp r;
    http_get(port, "/version", &r);
    assert_int_equal(r.status, 200);
    assert_string_equal(header(&r, "Content-Type"), "application/json");
    st_autoptr(json_t) v = body_json(&r);
    assert_string_equal(json_string_value(json_object_get(v, "name")), "stratos");
    assert_non_null(json_string_value(json_object_get(v, "version")));
    assert_string_equal(json_string_value(json_object_get(v, "role")), "test");
    assert_null(strchr(r.body, ' ')); /* compact */
    char id1[64], id2[64];
    assert_request_id(&r, id1);
    resp_clear(&r);
    http_get(port, "/version", &r);
    assert_request_id(&r, id2);
    assert_string_not_equal(id1, id2);
    resp_clear(&r);

    http_get(port, "/healthz", &r);
    assert_int_equal(r.status, 200);
    assert_string_equal(r.body, "{\"status\":\"ok\",\"checks\":{\"store\":\"ok\"}}");
    resp_clear(&r);
    check_fails = true;
    http_get(port, "/healthz", &r);
    check_fails = false;
    assert_int_equal(r.status, 503);
    assert_string_equal(
        r.body, "{\"status\":\"fail\",\"checks\":{\"store\":\"store: database is locked\"}}");
    resp_clear(&r);

    http_get(port, "/", &r);
    assert_int_equal(r.status, 200);
    assert_non_null(strstr(r.body, "\"/healthz\""));
    resp_clear(&r);
}

static void test_not_found_shapes(void **state)
{
    (void)state;
    struct http_resp r;
    http_get(port, "/nope?token=secret", &r);
    assert_int_equal(r.status, 404);
    assert_request_id(&r, NULL);
    st_autoptr(json_t) v = body_json(&r);
    json_t *e = json_object_get(v, "error");
    assert_int_equal(json_integer_value(json_object_get(e, "code")), 404);
    assert_string_equal(json_string_value(json_object_get(e, "title")), "Not Found");
    assert_string_equal(err_message(v, "error"), "Could not find a route for GET /nope.");
    resp_clear(&r);

    /* under a Nova prefix, even with no route: Nova's shape */
    http_get(port, "/compute/v2.1/flavors", &r);
    assert_int_equal(r.status, 404);
    st_autoptr(json_t) n = body_json(&r);
    assert_int_equal(
        json_integer_value(json_object_get(json_object_get(n, "itemNotFound"), "code")), 404);
    resp_clear(&r);

    /* a handler's -ENOENT, with its message; its headers are dropped */
    http(port, &r, "GET /compute/v2.1/servers/web-01 HTTP/1.1\r\nX-Auth-Token: good\r\n\r\n");
    assert_int_equal(r.status, 404);
    assert_null(header(&r, "X-Should-Vanish"));
    st_autoptr(json_t) s = body_json(&r);
    assert_string_equal(err_message(s, "itemNotFound"), "Instance web-01 could not be found.");
    resp_clear(&r);

    http_get(port, "/network/v2.0/networks/private", &r);
    assert_int_equal(r.status, 404);
    st_autoptr(json_t) ne = body_json(&r);
    json_t *nerr = json_object_get(ne, "NeutronError");
    assert_string_equal(json_string_value(json_object_get(nerr, "type")), "HTTPNotFound");
    assert_string_equal(json_string_value(json_object_get(nerr, "message")),
                        "Thing private could not be found.");
    assert_string_equal(json_string_value(json_object_get(nerr, "detail")), "");
    resp_clear(&r);

    /* S3: XML, with the request id in the body too */
    http_get(port, "/s3/photos", &r);
    assert_int_equal(r.status, 404);
    assert_string_equal(header(&r, "Content-Type"), "application/xml");
    char id[64], want[256];
    assert_request_id(&r, id);
    snprintf(want, sizeof(want),
             "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>NoSuchKey</Code><Message>"
             "Thing photos could not be found.</Message><RequestId>%s</RequestId></Error>",
             id);
    assert_string_equal(r.body, want);
    resp_clear(&r);
    /* a handler naming its own error */
    http(port, &r, "PUT /s3/x%%3Cy HTTP/1.1\r\nContent-Length: 0\r\n\r\n");
    assert_int_equal(r.status, 404);
    assert_non_null(strstr(r.body, "<Code>NoSuchBucket</Code><Message>The bucket &lt;x&lt;y&gt; "
                                   "does not exist</Message>"));
    resp_clear(&r);
}

static void test_method_not_allowed(void **state)
{
    (void)state;
    struct http_resp r;
    http(port, &r, "POST /items/7 HTTP/1.1\r\nContent-Length: 2\r\n\r\n{}");
    assert_int_equal(r.status, 405);
    assert_string_equal(header(&r, "Allow"), "GET, HEAD, DELETE");
    assert_request_id(&r, NULL);
    st_autoptr(json_t) v = body_json(&r);
    assert_string_equal(err_message(v, "error"),
                        "Method POST is not allowed for /items/7 (allowed: GET, HEAD, DELETE).");
    resp_clear(&r);
    http(port, &r, "DELETE /items/7 HTTP/1.1\r\n\r\n");
    assert_int_equal(r.status, 204);
    assert_null(header(&r, "Content-Type"));
    assert_int_equal(r.body_len, 0);
    resp_clear(&r);
}

static void test_auth(void **state)
{
    (void)state;
    struct http_resp r;
    const char *body = "{\"server\":{\"name\":\"web-01\"}}";
    http(port, &r, "POST /compute/v2.1/servers HTTP/1.1\r\nContent-Length: %zu\r\n\r\n%s",
         strlen(body), body);
    assert_int_equal(r.status, 401);
    st_autoptr(json_t) a = body_json(&r);
    assert_string_equal(err_message(a, "unauthorized"),
                        "The request you have made requires authentication.");
    resp_clear(&r);
    http(port, &r,
         "POST /compute/v2.1/servers HTTP/1.1\r\nX-Auth-Token: reader\r\nContent-Length: "
         "%zu\r\n\r\n%s",
         strlen(body), body);
    assert_int_equal(r.status, 403);
    st_autoptr(json_t) f = body_json(&r);
    assert_string_equal(err_message(f, "forbidden"),
                        "Policy doesn't allow compute:server:create to be performed.");
    resp_clear(&r);
    http(port, &r,
         "POST /compute/v2.1/servers HTTP/1.1\r\nx-auth-token: good\r\nContent-Length: "
         "%zu\r\n\r\n%s",
         strlen(body), body);
    assert_int_equal(r.status, 202);
    assert_string_equal(header(&r, "Location"), "/compute/v2.1/servers/1");
    assert_string_equal(r.body, "{\"server\":{\"name\":\"web-01\"}}");
    resp_clear(&r);
}

static void test_bad_json(void **state)
{
    (void)state;
    struct http_resp r;
    const char *bad[] = {"{\"server\": {\"name\": ", "{\"server\":{\"name\":5}}", "[1]",
                         "{\"other\":1}"};
    const char *msg[] = {"invalid JSON: ", "field 'name' must be a string",
                         "invalid JSON: expected an object at the top level",
                         "missing required field 'server'"};
    for (size_t i = 0; i < ST_ARRAY_SIZE(bad); i++) {
        http(port, &r,
             "POST /compute/v2.1/servers HTTP/1.1\r\nX-Auth-Token: good\r\nContent-Type: "
             "application/json\r\nContent-Length: %zu\r\n\r\n%s",
             strlen(bad[i]), bad[i]);
        assert_int_equal(r.status, 400);
        st_autoptr(json_t) v = body_json(&r);
        const char *m = err_message(v, "badRequest");
        if (strncmp(m, msg[i], strlen(msg[i])) != 0)
            fail_msg("case %zu: '%s' does not start with '%s'", i, m, msg[i]);
        resp_clear(&r);
    }
}

static void test_body_limit(void **state)
{
    (void)state;
    struct http_resp r;
    /* declared too big: refused from the headers, before any body byte */
    struct conn c;
    conn_open(&c, port);
    conn_send(&c, "POST /small HTTP/1.1\r\nContent-Length: %d\r\n\r\n", 2 * 1024 * 1024);
    assert_int_equal(conn_read(&c, false, &r), 0);
    assert_int_equal(r.status, 413);
    st_autoptr(json_t) v = body_json(&r);
    assert_string_equal(err_message(v, "error"),
                        "Request body of 2097152 bytes is larger than the limit of 1048576 bytes.");
    resp_clear(&r);
    conn_close(&c);

    /* chunked, no length: found out on the way, answered at the end */
    conn_open(&c, port);
    conn_send(&c, "POST /small HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n");
    static char chunk[64 * 1024];
    memset(chunk, 'x', sizeof(chunk));
    for (int i = 0; i < 32; i++) {
        conn_send(&c, "%zx\r\n", sizeof(chunk));
        assert_int_equal(send_all(c.fd, chunk, sizeof(chunk)), 0);
        conn_send(&c, "\r\n");
    }
    conn_send(&c, "0\r\n\r\n");
    assert_int_equal(conn_read(&c, false, &r), 0);
    assert_int_equal(r.status, 413);
    assert_request_id(&r, NULL);
    resp_clear(&r);
    conn_close(&c);

    /* the server is fine: a body under the limit goes through */
    size_t len = 1024 * 1024;
    char *big = malloc(len);
    memset(big, 'y', len);
    conn_open(&c, port);
    conn_send(&c, "POST /small HTTP/1.1\r\nContent-Length: %zu\r\n\r\n", len);
    assert_int_equal(send_all(c.fd, big, len), 0);
    assert_int_equal(conn_read(&c, false, &r), 0);
    assert_int_equal(r.status, 200);
    assert_string_equal(r.body, "{\"len\":1048576}");
    resp_clear(&r);
    conn_close(&c);
    free(big);
    http_get(port, "/version", &r);
    assert_int_equal(r.status, 200);
    resp_clear(&r);
}

static void test_stream_upload(void **state)
{
    (void)state;
    size_t len = 5 * 1024 * 1024;
    unsigned char *data = malloc(len);
    uint64_t x = 88172645463325252ull;
    for (size_t i = 0; i < len; i++) {
        x ^= x << 13, x ^= x >> 7, x ^= x << 17;
        data[i] = (unsigned char)x;
    }
    char want[128];
    snprintf(want, sizeof(want), "{\"bytes\":%zu,\"hash\":\"%016llx\"}", len,
             (unsigned long long)fnv1a(14695981039346656037ull, data, len));

    struct conn c;
    struct http_resp r;
    conn_open(&c, port);
    conn_send(&c,
              "PUT /upload HTTP/1.1\r\nContent-Type: application/octet-stream\r\n"
              "Content-Length: %zu\r\n\r\n",
              len);
    assert_int_equal(send_all(c.fd, data, len), 0);
    assert_int_equal(conn_read(&c, false, &r), 0);
    assert_int_equal(r.status, 201);
    assert_string_equal(r.body, want);
    resp_clear(&r);
    conn_close(&c);
    free(data);

    /* a streaming route refusing from the headers: answered before the body */
    conn_open(&c, port);
    conn_send(&c, "PUT /image/v2/images/nope/file HTTP/1.1\r\nContent-Length: 1000000000\r\n\r\n");
    assert_int_equal(conn_read(&c, false, &r), 0);
    assert_int_equal(r.status, 404);
    st_autoptr(json_t) v = body_json(&r);
    assert_string_equal(err_message(v, "error"), "No image found with ID nope.");
    resp_clear(&r);
    conn_close(&c);
}

static void test_keep_alive_and_head(void **state)
{
    (void)state;
    struct conn c;
    struct http_resp r;
    conn_open(&c, port);
    conn_send(&c, "GET /version HTTP/1.1\r\nHost: t\r\n\r\n");
    assert_int_equal(conn_read(&c, false, &r), 0);
    assert_int_equal(r.status, 200);
    size_t version_len = r.body_len;
    char id1[64];
    assert_request_id(&r, id1);
    assert_null(header(&r, "Connection"));
    resp_clear(&r);

    /* HEAD: same headers, Content-Length of the GET, and no body bytes (else
     * the next response on this connection would not parse) */
    conn_send(&c, "HEAD /version HTTP/1.1\r\nHost: t\r\n\r\n");
    assert_int_equal(conn_read(&c, true, &r), 0);
    assert_int_equal(r.status, 200);
    assert_int_equal(strtoul(header(&r, "Content-Length"), NULL, 10), version_len);
    assert_string_equal(header(&r, "Content-Type"), "application/json");
    resp_clear(&r);

    /* a 404 keeps the connection open too */
    conn_send(&c, "GET /nope HTTP/1.1\r\nHost: t\r\n\r\n");
    assert_int_equal(conn_read(&c, false, &r), 0);
    assert_int_equal(r.status, 404);
    assert_null(header(&r, "Connection"));
    resp_clear(&r);

    /* two pipelined requests on the same connection */
    conn_send(&c, "GET /echo/1/2 HTTP/1.1\r\nHost: t\r\n\r\nGET /version HTTP/1.1\r\nHost: "
                  "t\r\n\r\n");
    assert_int_equal(conn_read(&c, false, &r), 0);
    assert_int_equal(r.status, 200);
    assert_non_null(strstr(r.body, "\"a\":\"1\""));
    resp_clear(&r);
    assert_int_equal(conn_read(&c, false, &r), 0);
    assert_int_equal(r.status, 200);
    assert_int_equal(r.body_len, version_len);
    char id2[64];
    assert_request_id(&r, id2);
    assert_string_not_equal(id1, id2);
    resp_clear(&r);
    conn_close(&c);
}

static void test_params_and_query(void **state)
{
    (void)state;
    struct http_resp r;
    http_get(port, "/echo/hello%20world/a%2Fb/?k=1&x=a+b%26c&k=2&fields=id", &r);
    assert_int_equal(r.status, 200);
    st_autoptr(json_t) v = body_json(&r);
    assert_string_equal(json_string_value(json_object_get(v, "a")), "hello world");
    assert_string_equal(json_string_value(json_object_get(v, "b")), "a/b");
    assert_string_equal(json_string_value(json_object_get(v, "path")), "/echo/hello world/a/b/");
    assert_string_equal(json_string_value(json_object_get(v, "x")), "a b&c");
    assert_string_equal(json_string_value(json_object_get(v, "peer")), "127.0.0.1");
    json_t *k = json_object_get(v, "k");
    assert_int_equal(json_array_size(k), 2);
    assert_string_equal(json_string_value(json_array_get(k, 0)), "1");
    assert_string_equal(json_string_value(json_array_get(k, 1)), "2");
    resp_clear(&r);
}

static void test_internal_error(void **state)
{
    (void)state;
    struct http_resp r;
    http_get(port, "/fail", &r);
    assert_int_equal(r.status, 500);
    assert_null(strstr(r.body, "secret"));
    st_autoptr(json_t) v = body_json(&r);
    assert_string_equal(err_message(v, "error"), ST_API_INTERNAL_ERROR_MESSAGE);
    resp_clear(&r);
}

/* The access log line an operator reads: one per request, no query string
 * (it may carry secrets), latency with microseconds, the peer. */
static void test_access_log(void **state)
{
    (void)state;
    char path[] = "/tmp/st-test-api-log-XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    unlink(path); /* nothing left behind, whatever happens below */
    int saved = dup(STDERR_FILENO);
    dup2(fd, STDERR_FILENO);
    struct http_resp r;
    http_get(port, "/echo/a%20b/c?token=secret&x=1", &r);
    char id[64] = "";
    const char *hid = header(&r, "x-openstack-request-id");
    if (hid)
        snprintf(id, sizeof(id), "%s", hid);
    int status = r.status;
    size_t bytes = r.body_len;
    resp_clear(&r);
    /* the line is written once the response is sent: give it a moment */
    static char log[1 << 16];
    for (int i = 0; i < 200; i++) {
        ssize_t n = pread(fd, log, sizeof(log) - 1, 0);
        log[n > 0 ? n : 0] = '\0';
        if (id[0] && strstr(log, id))
            break;
        usleep(5000);
    }
    dup2(saved, STDERR_FILENO);
    close(saved);
    close(fd);
    assert_int_equal(status, 200);
    assert_true(id[0]);
    char *line = strstr(log, id);
    assert_non_null(line);
    *strchrnul(line, '\n') = '\0';
    char want[256];
    snprintf(want, sizeof(want),
             " method=GET path=/echo/a%%20b/c status=200 bytes=%zu latency_ms=", bytes);
    if (!strstr(line, want))
        fail_msg("'%s' does not contain '%s'", line, want);
    assert_null(strstr(line, "secret"));
    assert_non_null(strstr(line, " peer=127.0.0.1"));
    const char *lat = strstr(line, "latency_ms=") + strlen("latency_ms=");
    unsigned ms, us;
    char dot;
    assert_int_equal(sscanf(lat, "%u%c%3u", &ms, &dot, &us), 3);
    assert_int_equal(dot, '.');
    assert_int_equal(strspn(strchr(lat, '.') + 1, "0123456789"), 3);
}

#define N_CONCURRENT 200

static void test_concurrent(void **state)
{
    (void)state;
    struct peer {
        int fd;
        int phase; /* 0 connecting, 1 waiting for the answer, 2 answered */
        char buf[2048];
        size_t len;
    };
    struct peer *p = calloc(N_CONCURRENT, sizeof(*p));
    struct pollfd pfd[N_CONCURRENT];
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(port)};
    inet_pton(AF_INET, "127.0.0.1", &sa.sin_addr);
    for (int i = 0; i < N_CONCURRENT; i++) {
        p[i].fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        assert_true(p[i].fd >= 0);
        int r = connect(p[i].fd, (struct sockaddr *)&sa, sizeof(sa));
        assert_true(r == 0 || errno == EINPROGRESS);
    }
    int answered = 0;
    int64_t deadline = st_time_mono_ns() + 20ll * 1000 * 1000 * 1000;
    while (answered < N_CONCURRENT && st_time_mono_ns() < deadline) {
        for (int i = 0; i < N_CONCURRENT; i++) {
            pfd[i].fd = p[i].phase == 2 ? -1 : p[i].fd;
            pfd[i].events = p[i].phase == 0 ? POLLOUT : POLLIN;
        }
        assert_true(poll(pfd, N_CONCURRENT, 1000) >= 0);
        for (int i = 0; i < N_CONCURRENT; i++) {
            if (!pfd[i].revents)
                continue;
            if (p[i].phase == 0) {
                int soerr = 0;
                socklen_t sl = sizeof(soerr);
                getsockopt(p[i].fd, SOL_SOCKET, SO_ERROR, &soerr, &sl);
                assert_int_equal(soerr, 0);
                char req[128];
                int n = snprintf(req, sizeof(req), "GET /echo/%d/c HTTP/1.1\r\nHost: t\r\n\r\n", i);
                assert_int_equal(send(p[i].fd, req, (size_t)n, MSG_NOSIGNAL), n);
                p[i].phase = 1;
                continue;
            }
            ssize_t n = recv(p[i].fd, p[i].buf + p[i].len, sizeof(p[i].buf) - 1 - p[i].len, 0);
            assert_true(n > 0);
            p[i].len += (size_t)n;
            p[i].buf[p[i].len] = '\0';
            char *body = strstr(p[i].buf, "\r\n\r\n");
            char cl[32];
            if (!body || !find_header(p[i].buf, "Content-Length", cl, sizeof(cl)))
                continue;
            if (strlen(body + 4) < strtoul(cl, NULL, 10))
                continue;
            char want[64];
            snprintf(want, sizeof(want), "{\"a\":\"%d\",\"b\":\"c\"", i);
            assert_int_equal(strncmp(p[i].buf, "HTTP/1.1 200 ", 13), 0);
            if (strncmp(body + 4, want, strlen(want)) != 0)
                fail_msg("connection %d got %s", i, body + 4);
            p[i].phase = 2;
            answered++;
        }
    }
    assert_int_equal(answered, N_CONCURRENT);
    for (int i = 0; i < N_CONCURRENT; i++)
        close(p[i].fd);
    free(p);
}

struct slow_client {
    uint16_t port;
    struct http_resp resp;
    int rc;
};

static void *slow_client_run(void *arg)
{
    struct slow_client *sc = arg;
    struct conn c;
    c.len = 0;
    c.fd = conn_open_addr(AF_INET, "127.0.0.1", sc->port);
    if (c.fd < 0) {
        sc->rc = c.fd;
        return NULL;
    }
    const char req[] = "GET /slow HTTP/1.1\r\nHost: t\r\n\r\n";
    sc->rc = send_all(c.fd, req, sizeof(req) - 1);
    if (sc->rc == 0)
        sc->rc = conn_read(&c, false, &sc->resp);
    close(c.fd);
    return NULL;
}

struct stopper {
    struct st_api_server *srv;
    double ms;
    int done;
};

static void *stopper_run(void *arg)
{
    struct stopper *st = arg;
    int64_t t0 = st_time_mono_ns();
    st_api_server_stop(st->srv, 5000);
    st->ms = (double)(st_time_mono_ns() - t0) / 1e6;
    __atomic_store_n(&st->done, 1, __ATOMIC_SEQ_CST);
    return NULL;
}

static void test_graceful_stop(void **state)
{
    (void)state;
    st_autoptr(st_router) r = test_router_new();
    struct st_api_server_config cfg = {.listen = "127.0.0.1:0", .threads = 2};
    struct st_api_server *srv = NULL;
    assert_int_equal(st_api_server_start(&cfg, r, &srv, NULL), 0);
    struct slow_client sc = {.port = st_api_server_port(srv)};
    /* an idle keep-alive connection must not hold the stop up */
    struct conn idle;
    conn_open(&idle, sc.port);

    slow_started = 0;
    pthread_t client, stopper;
    assert_int_equal(pthread_create(&client, NULL, slow_client_run, &sc), 0);
    while (!__atomic_load_n(&slow_started, __ATOMIC_SEQ_CST))
        usleep(1000);
    struct stopper st = {.srv = srv};
    assert_int_equal(pthread_create(&stopper, NULL, stopper_run, &st), 0);
    /* while the slow request runs, new clients are refused, not queued */
    bool refused = false;
    for (int i = 0; i < 300 && !refused; i++) {
        int fd = conn_open_addr(AF_INET, "127.0.0.1", sc.port);
        if (fd == -ECONNREFUSED)
            refused = __atomic_load_n(&slow_started, __ATOMIC_SEQ_CST) &&
                      !__atomic_load_n(&st.done, __ATOMIC_SEQ_CST);
        else if (fd >= 0)
            close(fd);
        usleep(1000);
    }
    assert_true(refused);
    pthread_join(client, NULL);
    pthread_join(stopper, NULL);

    assert_int_equal(sc.rc, 0);
    assert_int_equal(sc.resp.status, 200);
    assert_string_equal(sc.resp.body, "{\"slept\":true}");
    assert_string_equal(header(&sc.resp, "Connection"), "close");
    resp_clear(&sc.resp);
    if (st.ms > 3000)
        fail_msg("stop took %.0f ms for a 400 ms request", st.ms);
    assert_int_equal(conn_open_addr(AF_INET, "127.0.0.1", sc.port), -ECONNREFUSED);
    conn_close(&idle);
}

static void test_listen_errors(void **state)
{
    (void)state;
    st_autoptr(st_router) r = st_router_new(NULL);
    const char *bad[] = {"nonsense", "127.0.0.1:99999", "[::1", "127.0.0.1:x", ""};
    for (size_t i = 0; i < ST_ARRAY_SIZE(bad); i++) {
        struct st_api_server_config cfg = {.listen = bad[i]};
        struct st_api_server *srv = NULL;
        st_autoptr(st_err) err = NULL;
        assert_int_equal(st_api_server_start(&cfg, r, &srv, &err), -EINVAL);
        assert_null(srv);
        assert_non_null(err);
    }
    /* the port of the running server is taken */
    char listen[64];
    snprintf(listen, sizeof(listen), "127.0.0.1:%u", port);
    struct st_api_server_config cfg = {.listen = listen};
    struct st_api_server *srv = NULL;
    st_autoptr(st_err) err = NULL;
    assert_int_equal(st_api_server_start(&cfg, r, &srv, &err), -EADDRINUSE);
    assert_non_null(strstr(err->msg, "bind 127.0.0.1:"));
    /* TLS files that do not exist are named */
    st_autoptr(st_err) terr = NULL;
    struct st_api_server_config tcfg = {
        .listen = "127.0.0.1:0", .tls_cert = "/nonexistent.pem", .tls_key = "/nonexistent.key"};
    assert_int_equal(st_api_server_start(&tcfg, r, &srv, &terr), -ENOENT);
    assert_non_null(strstr(terr->msg, "/nonexistent.pem"));
}

static void test_ipv6(void **state)
{
    (void)state;
    int probe = socket(AF_INET6, SOCK_STREAM, 0);
    if (probe < 0)
        skip();
    close(probe);
    st_autoptr(st_router) r = test_router_new();
    struct st_api_server_config cfg = {.listen = "[::1]:0", .threads = 1};
    struct st_api_server *srv = NULL;
    st_autoptr(st_err) err = NULL;
    int rc = st_api_server_start(&cfg, r, &srv, &err);
    if (rc == -EADDRNOTAVAIL || rc == -EAFNOSUPPORT) {
        printf("no ::1 here: %s\n", st_err_msg(err));
        skip();
    }
    assert_int_equal(rc, 0);
    struct conn c;
    c.len = 0;
    c.fd = conn_open_addr(AF_INET6, "::1", st_api_server_port(srv));
    assert_true(c.fd >= 0);
    conn_send(&c, "GET /echo/v6/x HTTP/1.1\r\nHost: t\r\n\r\n");
    struct http_resp resp;
    assert_int_equal(conn_read(&c, false, &resp), 0);
    assert_int_equal(resp.status, 200);
    assert_non_null(strstr(resp.body, "\"peer\":\"::1\""));
    resp_clear(&resp);
    conn_close(&c);
    st_api_server_stop(srv, 1000);
}

/* ":port" listens on every address: IPv4 clients come in (through a
 * dual-stack socket where IPv6 is on) and are shown as IPv4 */
static void test_listen_any(void **state)
{
    (void)state;
    st_autoptr(st_router) r = test_router_new();
    struct st_api_server_config cfg = {.listen = ":0", .threads = 1};
    struct st_api_server *srv = NULL;
    st_autoptr(st_err) err = NULL;
    assert_int_equal(st_api_server_start(&cfg, r, &srv, &err), 0);
    struct conn c;
    conn_open(&c, st_api_server_port(srv));
    conn_send(&c, "GET /echo/any/x HTTP/1.1\r\nHost: t\r\n\r\n");
    struct http_resp resp;
    assert_int_equal(conn_read(&c, false, &resp), 0);
    assert_int_equal(resp.status, 200);
    assert_non_null(strstr(resp.body, "\"peer\":\"127.0.0.1\""));
    resp_clear(&resp);
    conn_close(&c);
    st_api_server_stop(srv, 1000);
}

static char tls_dir[] = "/tmp/st-test-api-XXXXXX";

static int tls_setup(void **state)
{
    (void)state;
    return mkdtemp(tls_dir) ? 0 : -1;
}

static int tls_teardown(void **state)
{
    (void)state;
    st_autofree char *rm = st_sprintf("rm -rf %s", tls_dir);
    return system(rm) == 0 ? 0 : -1;
}

static void test_tls(void **state)
{
    (void)state;
    if (system("command -v openssl >/dev/null && command -v curl >/dev/null") != 0) {
        printf("openssl or curl missing: TLS not tested\n");
        skip();
    }
    const char *dir = tls_dir;
    st_autofree char *gen = st_sprintf(
        "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 1 "
        "-subj /CN=localhost -keyout %s/key.pem -out %s/cert.pem >/dev/null 2>&1",
        dir, dir);
    assert_int_equal(system(gen), 0);
    st_autofree char *cert = st_sprintf("%s/cert.pem", dir);
    st_autofree char *key = st_sprintf("%s/key.pem", dir);

    st_autoptr(st_router) r = test_router_new();
    struct st_api_server_config cfg = {
        .listen = "127.0.0.1:0", .threads = 1, .tls_cert = cert, .tls_key = key};
    struct st_api_server *srv = NULL;
    st_autoptr(st_err) err = NULL;
    assert_int_equal(st_api_server_start(&cfg, r, &srv, &err), 0);
    st_autofree char *cmd =
        st_sprintf("curl -sk --max-time 10 -o %s/out -o /dev/null -w '%%{http_code}' "
                   "https://127.0.0.1:%u/version https://127.0.0.1:%u/version",
                   dir, st_api_server_port(srv), st_api_server_port(srv));
    FILE *f = popen(cmd, "r");
    char codes[16] = "";
    assert_non_null(fgets(codes, sizeof(codes), f));
    pclose(f);
    assert_string_equal(codes, "200200");
    st_autofree char *out_path = st_sprintf("%s/out", dir);
    st_autofree char *out = NULL;
    assert_int_equal(st_read_file(out_path, 4096, &out, NULL, NULL), 0);
    assert_non_null(strstr(out, "\"name\":\"stratos\""));
    /* plain HTTP to a TLS port gets nowhere */
    struct http_resp resp;
    struct conn c;
    conn_open(&c, st_api_server_port(srv));
    conn_send(&c, "GET /version HTTP/1.1\r\n\r\n");
    assert_int_not_equal(conn_read(&c, false, &resp), 0);
    resp_clear(&resp);
    conn_close(&c);
    st_api_server_stop(srv, 1000);

    /* a key that is not a key */
    struct st_api_server_config bad = cfg;
    bad.tls_key = cert;
    st_autoptr(st_err) berr = NULL;
    assert_true(st_api_server_start(&bad, r, &srv, &berr) < 0);
    assert_non_null(berr);
}

/* ---- Keystone on two controllers ------------------------------------------------ */

/* One controller: an identity instance over the shared store, and the
 * Keystone routes served with the real auth hook. */
struct controller {
    struct st_identity *identity;
    struct st_api_app app;
    struct st_router *router;
    struct st_api_server *srv;
    uint16_t port;
};

static struct {
    char dir[64];
    struct st_kv *kv;
    struct controller a, b;
    char *p1, *p2;                             /* project ids */
    char *tok_member, *tok_reader, *tok_admin; /* member and reader of p1; admin of "admin" */
} ks;

static char *ks_id(json_t *doc)
{
    return st_strdup(json_string_value(json_object_get(doc, "id")));
}

static void ks_user(const char *name, const char *project_id, const char *role)
{
    st_autoptr(json_t) req = json_pack("{s:s, s:s}", "name", name, "password", "pw");
    st_autoptr(json_t) user = NULL;
    st_autoptr(json_t) r = NULL;
    assert_int_equal(st_identity_user_create(ks.a.identity, req, &user, NULL), 0);
    assert_int_equal(st_identity_role_find(ks.a.identity, role, &r, NULL), 0);
    assert_int_equal(st_identity_grant_add(ks.a.identity, project_id,
                                           json_string_value(json_object_get(user, "id")),
                                           json_string_value(json_object_get(r, "id")), NULL),
                     0);
}

static char *ks_login(const char *user, const char *password, const char *project)
{
    struct st_auth_request ar = {.user_name = user, .password = password, .project_name = project};
    char *secret = NULL;
    st_autoptr(st_token) t = NULL;
    st_autoptr(st_err) err = NULL;
    if (st_identity_authenticate(ks.a.identity, &ar, &secret, &t, &err) < 0)
        fail_msg("login %s: %s", user, st_err_msg(err));
    return secret;
}

static int controller_start(struct controller *c)
{
    struct st_identity_config icfg = {.cost = {1, 64, 1}};
    st_autoptr(st_err) err = NULL;
    if (st_identity_new(ks.kv, &icfg, &c->identity, &err) < 0) {
        fprintf(stderr, "identity: %s\n", st_err_msg(err));
        return -1;
    }
    c->app = (struct st_api_app){
        .kv = ks.kv, .identity = c->identity, .data_dir = ks.dir, .public_url = "http://test"};
    c->router = st_router_new(&c->app);
    st_api_auth_install(c->router);
    struct st_api_server_config cfg = {.listen = "127.0.0.1:0", .threads = 2};
    if (st_api_keystone_register(c->router, &c->app, &err) < 0 ||
        st_api_server_start(&cfg, c->router, &c->srv, &err) < 0) {
        fprintf(stderr, "keystone server: %s\n", st_err_msg(err));
        return -1;
    }
    c->port = st_api_server_port(c->srv);
    return 0;
}

static void controller_stop(struct controller *c)
{
    st_api_server_stop(c->srv, 1000);
    st_router_free(c->router);
    st_identity_free(c->identity);
}

static int keystone_setup(void **state)
{
    (void)state;
    strcpy(ks.dir, "/tmp/st-test-api-ks-XXXXXX");
    if (!mkdtemp(ks.dir))
        return -1;
    st_autofree char *db = st_sprintf("%s/stratos.db", ks.dir);
    if (st_kv_open(db, NULL, &ks.kv, NULL) < 0 || controller_start(&ks.a) < 0 ||
        controller_start(&ks.b) < 0)
        return -1;
    st_autofree char *admin_pw = NULL;
    assert_int_equal(st_identity_bootstrap(ks.a.identity, &admin_pw, NULL), 0);
    const char *names[] = {"p1", "p2"};
    char **ids[] = {&ks.p1, &ks.p2};
    for (size_t i = 0; i < 2; i++) {
        st_autoptr(json_t) req = json_pack("{s:s}", "name", names[i]);
        st_autoptr(json_t) doc = NULL;
        assert_int_equal(st_identity_project_create(ks.a.identity, req, &doc, NULL), 0);
        *ids[i] = ks_id(doc);
    }
    ks_user("member1", ks.p1, "member");
    ks_user("reader1", ks.p1, "reader");
    ks.tok_member = ks_login("member1", "pw", "p1");
    ks.tok_reader = ks_login("reader1", "pw", "p1");
    ks.tok_admin = ks_login("admin", admin_pw, "admin");
    return 0;
}

static int keystone_teardown(void **state)
{
    (void)state;
    controller_stop(&ks.a);
    controller_stop(&ks.b);
    st_kv_close(ks.kv);
    free(ks.p1);
    free(ks.p2);
    free(ks.tok_member);
    free(ks.tok_reader);
    free(ks.tok_admin);
    st_autofree char *cmd = st_sprintf("rm -rf %s", ks.dir);
    return system(cmd) == 0 ? 0 : -1;
}

/* GET path with a token at port; returns the status (body in *out). */
static int ks_get(uint16_t p, const char *path, const char *token, struct http_resp *out)
{
    http(p, out, "GET %s HTTP/1.1\r\nHost: test\r\nX-Auth-Token: %s\r\n\r\n", path, token);
    return out->status;
}

/* A project's own users read its record (`openstack project show` and
 * `quota show|set` of one's project need it), as Keystone's
 * identity:get_project; another project's is not found, and listing
 * projects stays an admin's. */
static void test_keystone_project_show(void **state)
{
    (void)state;
    struct http_resp r;
    st_autofree char *own = st_sprintf("/identity/v3/projects/%s", ks.p1);
    st_autofree char *other = st_sprintf("/identity/v3/projects/%s", ks.p2);
    const char *own_tokens[] = {ks.tok_member, ks.tok_reader};
    for (size_t i = 0; i < ST_ARRAY_SIZE(own_tokens); i++) {
        assert_int_equal(ks_get(ks.b.port, own, own_tokens[i], &r), 200);
        st_autoptr(json_t) body = body_json(&r);
        assert_string_equal(
            json_string_value(json_object_get(json_object_get(body, "project"), "name")), "p1");
        resp_clear(&r);

        assert_int_equal(ks_get(ks.b.port, other, own_tokens[i], &r), 404);
        st_autoptr(json_t) nf = body_json(&r);
        st_autofree char *msg = st_sprintf("Could not find project: %s.", ks.p2);
        assert_string_equal(err_message(nf, "error"), msg);
        resp_clear(&r);

        assert_int_equal(ks_get(ks.b.port, "/identity/v3/projects", own_tokens[i], &r), 403);
        resp_clear(&r);
        assert_int_equal(ks_get(ks.b.port, "/identity/v3/projects/p1", own_tokens[i], &r), 404);
        resp_clear(&r);
    }
    /* reading is all: the record stays an admin's to change */
    http(ks.b.port, &r,
         "PATCH %s HTTP/1.1\r\nHost: test\r\nX-Auth-Token: %s\r\nContent-Type: "
         "application/json\r\nContent-Length: 33\r\n\r\n{\"project\": {\"description\": \"x\"}}",
         own, ks.tok_member);
    assert_int_equal(r.status, 403);
    resp_clear(&r);
    /* the admin reads any, and an unknown one is not found */
    assert_int_equal(ks_get(ks.b.port, other, ks.tok_admin, &r), 200);
    resp_clear(&r);
    assert_int_equal(ks_get(ks.b.port, "/identity/v3/projects/nope", ks.tok_admin, &r), 404);
    resp_clear(&r);
}

/* A token revoked through controller A (DELETE /v3/auth/tokens) is refused
 * by controller B, which had validated it, within a second. */
static void test_keystone_revoke_across_controllers(void **state)
{
    (void)state;
    struct http_resp r;
    st_autofree char *secret = ks_login("member1", "pw", "p1");
    st_autofree char *own = st_sprintf("/identity/v3/projects/%s", ks.p1);
    for (int i = 0; i < 400 && !__atomic_load_n(&ks.b.identity->watch_in_sync, __ATOMIC_ACQUIRE);
         i++)
        usleep(5 * 1000);
    assert_int_equal(ks_get(ks.b.port, own, secret, &r), 200); /* B holds it now */
    resp_clear(&r);

    http(ks.a.port, &r,
         "DELETE /identity/v3/auth/tokens HTTP/1.1\r\nHost: test\r\nX-Auth-Token: "
         "%s\r\nX-Subject-Token: %s\r\n\r\n",
         secret, secret);
    assert_int_equal(r.status, 204);
    resp_clear(&r);

    int64_t t0 = st_time_mono_ns(), ms = 0;
    int status = 200;
    while (status == 200 && ms <= 1000) {
        status = ks_get(ks.b.port, own, secret, &r);
        resp_clear(&r);
        ms = (st_time_mono_ns() - t0) / 1000000;
        if (status == 200)
            usleep(5 * 1000);
    }
    if (status != 401)
        fail_msg("B answers %d for a token revoked through A %lld ms ago", status, (long long)ms);
    print_message("B answered 401 %lld ms after the revocation through A\n", (long long)ms);
    /* the other tokens are unaffected */
    assert_int_equal(ks_get(ks.b.port, own, ks.tok_member, &r), 200);
    resp_clear(&r);
}

int main(void)
{
    const struct CMUnitTest units[] = {
        cmocka_unit_test(test_error_table),
        cmocka_unit_test(test_router_register),
        cmocka_unit_test(test_router_match),
        cmocka_unit_test(test_query_parse),
    };
    const struct CMUnitTest served[] = {
        cmocka_unit_test(test_version_and_healthz),
        cmocka_unit_test(test_not_found_shapes),
        cmocka_unit_test(test_method_not_allowed),
        cmocka_unit_test(test_auth),
        cmocka_unit_test(test_bad_json),
        cmocka_unit_test(test_body_limit),
        cmocka_unit_test(test_stream_upload),
        cmocka_unit_test(test_keep_alive_and_head),
        cmocka_unit_test(test_params_and_query),
        cmocka_unit_test(test_internal_error),
        cmocka_unit_test(test_access_log),
        cmocka_unit_test(test_concurrent),
        cmocka_unit_test(test_listen_errors),
        cmocka_unit_test(test_graceful_stop),
        cmocka_unit_test(test_ipv6),
        cmocka_unit_test(test_listen_any),
        cmocka_unit_test_setup_teardown(test_tls, tls_setup, tls_teardown),
    };
    const struct CMUnitTest keystone[] = {
        cmocka_unit_test(test_keystone_project_show),
        cmocka_unit_test(test_keystone_revoke_across_controllers),
    };
    int failed = cmocka_run_group_tests_name("api units", units, NULL, NULL);
    failed += cmocka_run_group_tests_name("api server", served, group_setup, group_teardown);
    failed += cmocka_run_group_tests_name("keystone on two controllers", keystone, keystone_setup,
                                          keystone_teardown);
    return failed;
}
