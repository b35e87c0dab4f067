/* The CLI's HTTP client; see http.h. One curl easy handle per client, reset
 * between requests but keeping its connection cache, so that a command that
 * makes several calls (lookups, then the action) pays for one connection. */
#include "http.h"

#include <ctype.h>
#include <curl/curl.h>
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "lib/json.h"
#include "version.h"

#define MAX_RESPONSE_BYTES (256u * 1024 * 1024)

struct st_cli_http {
    CURL *curl;
    char *base_url;
    char *cacert;
    char *token;
    bool insecure;
    long timeout_s;
    FILE *debug;
};

int st_cli_http_new(const struct st_cli_http_opts *opts, struct st_cli_http **ret,
                    struct st_err **err)
{
    static bool global_done;
    if (!global_done) {
        if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
            return st_err_set(err, -EIO, "initialising libcurl failed");
        global_done = true;
    }
    if (!opts->base_url || !*opts->base_url)
        return st_err_set(err, -EINVAL, "no stratosd URL given");
    struct st_cli_http *h = st_new0(struct st_cli_http, 1);
    h->curl = curl_easy_init();
    if (!h->curl) {
        free(h);
        return st_err_set(err, -ENOMEM, "creating a libcurl handle failed");
    }
    h->base_url = st_strdup(opts->base_url);
    size_t n = strlen(h->base_url);
    while (n > 0 && h->base_url[n - 1] == '/')
        h->base_url[--n] = '\0';
    h->cacert = st_strdup(opts->cacert);
    h->insecure = opts->insecure;
    h->timeout_s = opts->timeout_s > 0 ? opts->timeout_s : ST_CLI_HTTP_DEFAULT_TIMEOUT_S;
    h->debug = opts->debug;
    *ret = h;
    return 0;
}

void st_cli_http_free(struct st_cli_http *h)
{
    if (!h)
        return;
    curl_easy_cleanup(h->curl);
    free(h->base_url);
    free(h->cacert);
    free(h->token);
    free(h);
}

const char *st_cli_http_base_url(const struct st_cli_http *h)
{
    return h->base_url;
}

void st_cli_http_set_token(struct st_cli_http *h, const char *token)
{
    free(h->token);
    h->token = st_strdup(token);
}

void st_cli_http_response_clear(struct st_cli_http_response *resp)
{
    if (!resp)
        return;
    free(resp->reason);
    free(resp->body);
    for (size_t i = 0; i < resp->n_headers; i++)
        free(resp->headers[i]);
    free(resp->headers);
    *resp = (struct st_cli_http_response){0};
}

const char *st_cli_http_response_header(const struct st_cli_http_response *resp, const char *name)
{
    size_t n = strlen(name);
    for (size_t i = 0; i < resp->n_headers; i++) {
        const char *h = resp->headers[i];
        if (strncasecmp(h, name, n) == 0 && h[n] == ':') {
            const char *v = h + n + 1;
            while (*v == ' ' || *v == '\t')
                v++;
            return v;
        }
    }
    return NULL;
}

const char *st_cli_http_response_request_id(const struct st_cli_http_response *resp)
{
    static const char *const names[] = {"x-openstack-request-id", "x-compute-request-id",
                                        "x-request-id"};
    for (size_t i = 0; i < ST_ARRAY_SIZE(names); i++) {
        const char *v = st_cli_http_response_header(resp, names[i]);
        if (v && *v)
            return v;
    }
    return NULL;
}

/* ---- curl callbacks ---- */

static size_t on_body(char *data, size_t size, size_t nmemb, void *userdata)
{
    struct st_cli_http_response *resp = userdata;
    size_t n = size * nmemb;
    if (resp->body_len + n > MAX_RESPONSE_BYTES)
        return 0; /* curl fails the transfer with CURLE_WRITE_ERROR */
    resp->body = st_xrealloc(resp->body, resp->body_len + n + 1);
    memcpy(resp->body + resp->body_len, data, n);
    resp->body_len += n;
    resp->body[resp->body_len] = '\0';
    return n;
}

static size_t on_header(char *data, size_t size, size_t nmemb, void *userdata)
{
    struct st_cli_http_response *resp = userdata;
    size_t n = size * nmemb, len = n;
    while (len > 0 && (data[len - 1] == '\r' || data[len - 1] == '\n'))
        len--;
    if (len == 0)
        return n;
    if (len > 5 && strncmp(data, "HTTP/", 5) == 0) {
        /* a new status line (after 100 Continue or a redirect): start over */
        for (size_t i = 0; i < resp->n_headers; i++)
            free(resp->headers[i]);
        resp->n_headers = 0;
        free(resp->reason);
        resp->reason = NULL;
        const char *p = memchr(data, ' ', len);
        if (p)
            p = memchr(p + 1, ' ', len - (size_t)(p + 1 - data));
        if (p)
            resp->reason = st_strndup(p + 1, len - (size_t)(p + 1 - data));
        return n;
    }
    resp->headers = st_xrealloc(resp->headers, (resp->n_headers + 1) * sizeof(char *));
    resp->headers[resp->n_headers++] = st_strndup(data, len);
    return n;
}

/* ---- --debug ---- */

static bool is_secret_header(const char *line)
{
    return strncasecmp(line, "X-Auth-Token:", 13) == 0 ||
           strncasecmp(line, "X-Subject-Token:", 16) == 0;
}

/* Hides the values of password-like fields in a JSON document. */
static void redact_json(json_t *v)
{
    const char *key;
    json_t *val;
    size_t i;
    if (json_is_object(v)) {
        json_object_foreach(v, key, val)
        {
            if (json_is_string(val) &&
                (strcasecmp(key, "password") == 0 || strcasecmp(key, "secret") == 0 ||
                 strcasecmp(key, "adminPass") == 0))
                json_object_set_new(v, key, json_string("***"));
            else
                redact_json(val);
        }
    } else if (json_is_array(v)) {
        json_array_foreach(v, i, val) redact_json(val);
    }
}

static void debug_body(FILE *f, const char *content_type, const char *body, size_t len)
{
    st_autoptr(json_t) j = NULL;
    if (content_type && strstr(content_type, "json") && st_json_parse(body, len, &j, NULL) == 0) {
        redact_json(j);
        st_autofree char *s = st_json_dumps(j);
        fputs(s, f);
    } else {
        fwrite(body, 1, len, f);
    }
}

static void debug_request(struct st_cli_http *h, const char *method, const char *url,
                          const struct curl_slist *headers, const char *content_type,
                          const void *body, size_t len)
{
    fprintf(h->debug, "REQ: curl -g -i%s -X %s %s", h->insecure ? " --insecure" : "", method, url);
    for (const struct curl_slist *l = headers; l; l = l->next) {
        if (strcmp(l->data, "Expect:") == 0)
            continue;
        if (is_secret_header(l->data))
            fprintf(h->debug, " -H \"%.*s ***\"", (int)(strchr(l->data, ':') - l->data + 1),
                    l->data);
        else
            fprintf(h->debug, " -H \"%s\"", l->data);
    }
    if (body && len > 0) {
        fputs(" -d '", h->debug);
        debug_body(h->debug, content_type, body, len);
        fputc('\'', h->debug);
    }
    fputc('\n', h->debug);
    fflush(h->debug);
}

static void debug_response(struct st_cli_http *h, const char *method, const char *url,
                           const struct st_cli_http_response *resp)
{
    fprintf(h->debug, "RESP: [%ld]", resp->status);
    for (size_t i = 0; i < resp->n_headers; i++) {
        if (is_secret_header(resp->headers[i]))
            fprintf(h->debug, " %.*s ***",
                    (int)(strchr(resp->headers[i], ':') - resp->headers[i] + 1), resp->headers[i]);
        else
            fprintf(h->debug, " %s", resp->headers[i]);
    }
    fputc('\n', h->debug);
    const char *ct = st_cli_http_response_header(resp, "Content-Type");
    if (resp->body_len > 0) {
        if (!ct || strstr(ct, "json") || strncasecmp(ct, "text/", 5) == 0) {
            fputs("RESP BODY: ", h->debug);
            debug_body(h->debug, ct, resp->body, resp->body_len);
            fputc('\n', h->debug);
        } else {
            fprintf(h->debug,
                    "RESP BODY: Omitted, Content-Type is set to %s. Only JSON and text "
                    "responses have their bodies logged.\n",
                    ct);
        }
    }
    const char *rid = st_cli_http_response_request_id(resp);
    if (rid)
        fprintf(h->debug, "%s call to %s used request id %s\n", method, url, rid);
    fflush(h->debug);
}

/* ---- requests ---- */

static int transport_error(struct st_cli_http *h, CURLcode rc, const char *errbuf,
                           struct st_err **err)
{
    const char *detail = errbuf[0] ? errbuf : curl_easy_strerror(rc);
    long os_errno = 0;
    curl_off_t connect_us = 0;
    curl_easy_getinfo(h->curl, CURLINFO_OS_ERRNO, &os_errno);
    curl_easy_getinfo(h->curl, CURLINFO_CONNECT_TIME_T, &connect_us);
    switch (rc) {
    case CURLE_COULDNT_CONNECT:
        if (os_errno > 0)
            return st_err_set(err, -(int)os_errno, "cannot reach stratosd at %s: %s", h->base_url,
                              strerror((int)os_errno));
        return st_err_set(err, -ECONNREFUSED, "cannot reach stratosd at %s: %s", h->base_url,
                          detail);
    case CURLE_COULDNT_RESOLVE_HOST:
    case CURLE_COULDNT_RESOLVE_PROXY:
        return st_err_set(err, -EHOSTUNREACH, "cannot reach stratosd at %s: %s", h->base_url,
                          detail);
    case CURLE_OPERATION_TIMEDOUT:
        if (connect_us == 0)
            return st_err_set(err, -ETIMEDOUT, "cannot reach stratosd at %s: %s", h->base_url,
                              strerror(ETIMEDOUT));
        return st_err_set(err, -ETIMEDOUT, "stratosd at %s did not answer within %ld s",
                          h->base_url, h->timeout_s);
    case CURLE_SSL_CONNECT_ERROR:
    case CURLE_PEER_FAILED_VERIFICATION:
    case CURLE_SSL_CERTPROBLEM:
    case CURLE_SSL_CIPHER:
    case CURLE_SSL_CACERT_BADFILE:
        return st_err_set(err, -EPROTO, "TLS error talking to stratosd at %s: %s", h->base_url,
                          detail);
    case CURLE_URL_MALFORMAT:
    case CURLE_UNSUPPORTED_PROTOCOL:
        return st_err_set(err, -EINVAL, "invalid stratosd URL '%s': %s", h->base_url, detail);
    case CURLE_GOT_NOTHING:
    case CURLE_RECV_ERROR:
    case CURLE_SEND_ERROR:
        return st_err_set(err, -ECONNRESET, "connection to stratosd at %s failed: %s", h->base_url,
                          detail);
    case CURLE_WRITE_ERROR:
        return st_err_set(err, -EFBIG, "response from stratosd at %s is larger than %u bytes",
                          h->base_url, MAX_RESPONSE_BYTES);
    default:
        return st_err_set(err, -EIO, "request to stratosd at %s failed: %s", h->base_url, detail);
    }
}

int st_cli_http_request(struct st_cli_http *h, const char *method, const char *path,
                        const char *content_type, const void *body, size_t body_len,
                        struct st_cli_http_response *ret, struct st_err **err)
{
    return st_cli_http_request_with(h, method, path, NULL, content_type, body, body_len, ret, err);
}

/* What one exchange sends and where its body goes: the request body from
 * memory or streamed from a file descriptor, the answer in memory or, when
 * it is a success, streamed to a file descriptor. */
struct xfer {
    const char *method;
    const char *path;
    const char *const *headers;
    const char *content_type;
    const void *body; /* in memory ... */
    size_t body_len;
    int in_fd; /* ... or read from here as curl asks (-1: none) */
    uint64_t in_size;
    int in_errno; /* a failed read() of in_fd */
    int out_fd;   /* a 2xx answer's body goes here (-1: into the response) */
    void (*observe)(const void *data, size_t len, void *arg); /* sees what goes there */
    void *observe_arg;
    int out_errno;
    uint64_t out_bytes;
    CURL *curl;
    struct st_cli_http_response *resp;
};

static size_t on_read(char *buf, size_t size, size_t nitems, void *userdata)
{
    struct xfer *x = userdata;
    for (;;) {
        ssize_t n = read(x->in_fd, buf, size * nitems);
        if (n >= 0)
            return (size_t)n;
        if (errno != EINTR) {
            x->in_errno = errno;
            return CURL_READFUNC_ABORT;
        }
    }
}

static size_t on_body_to_fd(char *data, size_t size, size_t nmemb, void *userdata)
{
    struct xfer *x = userdata;
    long status = 0;
    curl_easy_getinfo(x->curl, CURLINFO_RESPONSE_CODE, &status);
    if (status < 200 || status >= 300)
        return on_body(data, size, nmemb, x->resp); /* an error page: keep it */
    size_t n = size * nmemb;
    for (size_t done = 0; done < n;) {
        ssize_t w = write(x->out_fd, data + done, n - done);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0) {
            x->out_errno = w < 0 ? errno : EIO;
            return 0; /* curl fails the transfer with CURLE_WRITE_ERROR */
        }
        done += (size_t)w;
    }
    if (x->observe)
        x->observe(data, n, x->observe_arg);
    x->out_bytes += n;
    return n;
}

static int perform(struct st_cli_http *h, struct xfer *x, struct st_cli_http_response *ret,
                   struct st_err **err)
{
    const char *method = x->method, *path = x->path;
    bool full = strncmp(path, "http://", 7) == 0 || strncmp(path, "https://", 8) == 0;
    st_autofree char *url = full ? st_strdup(path) : st_sprintf("%s%s", h->base_url, path);
    struct st_cli_http_response resp = {0};
    char errbuf[CURL_ERROR_SIZE] = "";
    CURL *c = h->curl;
    x->curl = c;
    x->resp = &resp;

    /* reset keeps live connections, so keep-alive works across requests */
    curl_easy_reset(c);
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    if (x->in_fd < 0 && x->out_fd < 0) {
        curl_easy_setopt(c, CURLOPT_TIMEOUT, h->timeout_s);
    } else {
        /* a transfer of gigabytes may take long: fail only when it stalls
         * (under 1 byte/s for the timeout) */
        curl_easy_setopt(c, CURLOPT_LOW_SPEED_LIMIT, 1L);
        curl_easy_setopt(c, CURLOPT_LOW_SPEED_TIME, h->timeout_s);
    }
    curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT,
                     h->timeout_s < ST_CLI_HTTP_CONNECT_TIMEOUT_S ? h->timeout_s
                                                                  : ST_CLI_HTTP_CONNECT_TIMEOUT_S);
    curl_easy_setopt(c, CURLOPT_ERRORBUFFER, errbuf);
    if (x->out_fd >= 0) {
        curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body_to_fd);
        curl_easy_setopt(c, CURLOPT_WRITEDATA, x);
    } else {
        curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
        curl_easy_setopt(c, CURLOPT_WRITEDATA, &resp);
    }
    curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(c, CURLOPT_HEADERDATA, &resp);
    if (h->cacert)
        curl_easy_setopt(c, CURLOPT_CAINFO, h->cacert);
    if (h->insecure) {
        curl_easy_setopt(c, CURLOPT_SSL_VERIFYPEER, 0L);
        curl_easy_setopt(c, CURLOPT_SSL_VERIFYHOST, 0L);
    }

    bool streams = x->in_fd >= 0;
    bool sends_body = streams || x->body || strcmp(method, "POST") == 0 ||
                      strcmp(method, "PUT") == 0 || strcmp(method, "PATCH") == 0;
    if (strcmp(method, "HEAD") == 0)
        curl_easy_setopt(c, CURLOPT_NOBODY, 1L);
    else if (strcmp(method, "GET") != 0 && strcmp(method, "POST") != 0)
        curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
    if (streams) {
        /* the body is read from the file as curl sends it, with its length
         * known up front (Content-Length, as Glance wants) */
        curl_easy_setopt(c, CURLOPT_UPLOAD, 1L);
        curl_easy_setopt(c, CURLOPT_READFUNCTION, on_read);
        curl_easy_setopt(c, CURLOPT_READDATA, x);
        curl_easy_setopt(c, CURLOPT_INFILESIZE_LARGE, (curl_off_t)x->in_size);
    } else if (sends_body) {
        curl_easy_setopt(c, CURLOPT_POSTFIELDS, x->body ? (const char *)x->body : "");
        curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)(x->body ? x->body_len : 0));
    }

    struct curl_slist *headers = NULL;
    headers = curl_slist_append(headers, "Accept: application/json");
    headers = curl_slist_append(headers, "User-Agent: stratos/" ST_VERSION);
    if (sends_body && x->content_type) {
        st_autofree char *ct = st_sprintf("Content-Type: %s", x->content_type);
        headers = curl_slist_append(headers, ct);
    }
    if (h->token) {
        st_autofree char *tok = st_sprintf("X-Auth-Token: %s", h->token);
        headers = curl_slist_append(headers, tok);
    }
    for (const char *const *hx = x->headers; hx && *hx; hx++)
        headers = curl_slist_append(headers, *hx);
    headers = curl_slist_append(headers, "Expect:"); /* no 100-continue round trip */
    if (!headers)
        abort();
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, headers);

    if (h->debug) {
        debug_request(h, method, url, headers, x->content_type, x->body, x->body_len);
        if (streams)
            fprintf(h->debug, "REQ BODY: %" PRIu64 " bytes streamed from a file\n", x->in_size);
    }
    CURLcode rc = curl_easy_perform(c);
    curl_slist_free_all(headers);
    if (rc != CURLE_OK) {
        int r;
        if (x->in_errno)
            r = st_err_set(err, -x->in_errno, "reading the request body: %s",
                           strerror(x->in_errno));
        else if (x->out_errno)
            r = st_err_set(err, -x->out_errno, "writing the response body: %s",
                           strerror(x->out_errno));
        else
            r = transport_error(h, rc, errbuf, err);
        if (h->debug)
            fprintf(h->debug, "REQ FAILED: %s\n", (err && *err) ? (*err)->msg : errbuf);
        st_cli_http_response_clear(&resp);
        return r;
    }
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &resp.status);
    if (!resp.body)
        resp.body = st_strdup("");
    if (h->debug)
        debug_response(h, method, url, &resp);
    *ret = resp;
    return 0;
}

int st_cli_http_request_with(struct st_cli_http *h, const char *method, const char *path,
                             const char *const *extra_headers, const char *content_type,
                             const void *body, size_t body_len, struct st_cli_http_response *ret,
                             struct st_err **err)
{
    struct xfer x = {
        .method = method,
        .path = path,
        .headers = extra_headers,
        .content_type = content_type,
        .body = body,
        .body_len = body_len,
        .in_fd = -1,
        .out_fd = -1,
    };
    return perform(h, &x, ret, err);
}

int st_cli_http_upload(struct st_cli_http *h, const char *method, const char *path,
                       const char *const *headers, const char *content_type, int fd, uint64_t size,
                       struct st_cli_http_response *ret, struct st_err **err)
{
    struct xfer x = {
        .method = method,
        .path = path,
        .headers = headers,
        .content_type = content_type,
        .in_fd = fd,
        .in_size = size,
        .out_fd = -1,
    };
    return perform(h, &x, ret, err);
}

int st_cli_http_download(struct st_cli_http *h, const char *path, const char *const *headers,
                         int fd, void (*observe)(const void *data, size_t len, void *arg),
                         void *observe_arg, uint64_t *ret_bytes, struct st_cli_http_response *ret,
                         struct st_err **err)
{
    struct xfer x = {
        .method = "GET",
        .path = path,
        .headers = headers,
        .in_fd = -1,
        .out_fd = fd,
        .observe = observe,
        .observe_arg = observe_arg,
    };
    int r = perform(h, &x, ret, err);
    if (r == 0 && ret_bytes)
        *ret_bytes = x.out_bytes;
    return r;
}

int st_cli_http_errno(long status)
{
    switch (status) {
    case 400:
        return -EINVAL;
    case 401:
        return -EACCES;
    case 403:
        return -EPERM;
    case 404:
        return -ENOENT;
    case 405:
        return -EOPNOTSUPP;
    case 409:
        return -EEXIST;
    case 413:
        return -EFBIG;
    case 429:
    case 503:
        return -EAGAIN;
    case 504:
        return -ETIMEDOUT;
    default:
        return -EIO;
    }
}

/* The message of an OpenStack error body, borrowed from j, or NULL. */
static const char *json_error_message(json_t *j)
{
    if (!json_is_object(j))
        return NULL;
    json_t *e = json_object_get(j, "error");
    if (json_is_string(e))
        return json_string_value(e);
    if (json_is_object(e) && json_is_string(json_object_get(e, "message")))
        return json_string_value(json_object_get(e, "message"));
    /* Nova, Cinder, Neutron: one key naming the fault, holding the message */
    if (json_object_size(j) == 1) {
        const char *key;
        json_t *v;
        json_object_foreach(j, key, v)
        {
            if (json_is_object(v) && json_is_string(json_object_get(v, "message")))
                return json_string_value(json_object_get(v, "message"));
        }
    }
    static const char *const flat[] = {"message", "detail", "faultstring", "title"};
    for (size_t i = 0; i < ST_ARRAY_SIZE(flat); i++)
        if (json_is_string(json_object_get(j, flat[i])))
            return json_string_value(json_object_get(j, flat[i]));
    return NULL;
}

/* A non-JSON body (Glance answers with a small HTML page) as one line:
 * tags dropped, white space collapsed, at most 512 bytes. */
static char *text_message(const char *body, size_t len)
{
    char *out = st_new0(char, len + 1);
    size_t n = 0;
    bool in_tag = false, space = false;
    for (size_t i = 0; i < len && n < 512; i++) {
        char ch = body[i];
        if (ch == '<') {
            in_tag = true;
            space = n > 0;
            continue;
        }
        if (in_tag) {
            in_tag = ch != '>';
            continue;
        }
        if (isspace((unsigned char)ch)) {
            space = n > 0;
            continue;
        }
        if (space)
            out[n++] = ' ';
        space = false;
        out[n++] = ch;
    }
    out[n] = '\0';
    return out;
}

char *st_cli_http_error_message(long status, const char *reason, const char *body, size_t len,
                                const char *request_id)
{
    st_autofree char *msg = NULL;
    st_autoptr(json_t) j = NULL;
    if (body && len > 0 && st_json_parse(body, len, &j, NULL) == 0) {
        const char *m = json_error_message(j);
        if (m && *m)
            msg = st_strdup(m);
    }
    if (!msg && body && len > 0 && !j)
        msg = text_message(body, len);
    if (!msg || !*msg) {
        free(msg);
        msg = st_strdup(reason && *reason ? reason : "HTTP error");
    }
    if (request_id)
        return st_sprintf("%s (HTTP %ld) (Request-ID: %s)", msg, status, request_id);
    return st_sprintf("%s (HTTP %ld)", msg, status);
}

int st_cli_http_json(struct st_cli_http *h, const char *method, const char *path,
                     const json_t *body, json_t **ret, struct st_err **err)
{
    return st_cli_http_json_with(h, method, path, NULL, body, ret, err);
}

int st_cli_http_json_with(struct st_cli_http *h, const char *method, const char *path,
                          const char *const *headers, const json_t *body, json_t **ret,
                          struct st_err **err)
{
    st_autofree char *text = body ? st_json_dumps(body) : NULL;
    struct st_cli_http_response resp = {0};
    int r = st_cli_http_request_with(h, method, path, headers, "application/json", text,
                                     text ? strlen(text) : 0, &resp, err);
    if (r < 0)
        return r;
    if (resp.status < 200 || resp.status >= 300) {
        st_autofree char *msg =
            st_cli_http_error_message(resp.status, resp.reason, resp.body, resp.body_len,
                                      st_cli_http_response_request_id(&resp));
        r = st_err_set(err, st_cli_http_errno(resp.status), "%s", msg);
        st_cli_http_response_clear(&resp);
        return r;
    }
    json_t *j = NULL;
    if (ret && resp.body_len > 0 && strcmp(method, "HEAD") != 0) {
        r = st_json_parse(resp.body, resp.body_len, &j, err);
        if (r < 0) {
            st_cli_http_response_clear(&resp);
            return st_err_prefix(err, r, "invalid response to %s %s", method, path);
        }
    }
    st_cli_http_response_clear(&resp);
    if (ret)
        *ret = j;
    return 0;
}

char *st_cli_http_escape(const char *s)
{
    /* curl_easy_escape needs no handle; it keeps only A-Z a-z 0-9 - . _ ~ */
    char *e = curl_easy_escape(NULL, s, 0);
    if (!e)
        abort();
    char *r = st_strdup(e);
    curl_free(e);
    return r;
}
