/* The agent's HTTP client; see client.h. Every request goes through one
 * curl multi handle per client so that the wait can be cut short: the loop
 * polls with curl_multi_poll and another thread's curl_multi_wakeup (on
 * stop) returns it at once, which a plain curl_easy_perform cannot do. The
 * easy handle and the multi handle's connection cache are reused, so
 * heartbeats and long-polls ride one kept-alive connection. */
#include "agent/client.h"

#include <curl/curl.h>
#include <errno.h>
#include <pthread.h>
#include <string.h>
#include <unistd.h>

#include "lib/json.h"
#include "lib/log.h"

#define CLIENT_DEFAULT_TIMEOUT_S  30
#define CLIENT_CONNECT_TIMEOUT_MS 5000
/* The largest JSON answer kept in memory: a full assignment list of a node
 * with thousands of servers stays far below it. */
#define CLIENT_MAX_BODY (256u * 1024 * 1024)

struct st_agent_client {
    char *base_url;
    char *token_header;
    const int *stop;
    CURL *easy;
    CURLM *multi;
};

static pthread_once_t curl_once = PTHREAD_ONCE_INIT;

static void curl_init_once(void)
{
    curl_global_init(CURL_GLOBAL_DEFAULT);
}

struct st_agent_client *st_agent_client_new(const char *base_url, const char *token,
                                            const int *stop)
{
    pthread_once(&curl_once, curl_init_once);
    struct st_agent_client *c = st_new0(struct st_agent_client, 1);
    size_t n = strlen(base_url);
    while (n > 0 && base_url[n - 1] == '/')
        n--;
    c->base_url = st_strndup(base_url, n);
    c->token_header = st_sprintf("X-Node-Token: %s", token ? token : "");
    c->stop = stop;
    c->easy = curl_easy_init();
    c->multi = curl_multi_init();
    if (!c->easy || !c->multi)
        abort();
    return c;
}

void st_agent_client_free(struct st_agent_client *c)
{
    if (!c)
        return;
    curl_easy_cleanup(c->easy);
    curl_multi_cleanup(c->multi);
    free(c->base_url);
    if (c->token_header)
        explicit_bzero(c->token_header, strlen(c->token_header));
    free(c->token_header);
    free(c);
}

void st_agent_client_wake(struct st_agent_client *c)
{
    if (c)
        curl_multi_wakeup(c->multi);
}

static bool stopped(const struct st_agent_client *c)
{
    return c->stop && __atomic_load_n(c->stop, __ATOMIC_ACQUIRE);
}

struct buffer {
    char *data;
    size_t len, cap;
    bool too_big;
};

static size_t buffer_write(char *ptr, size_t size, size_t nmemb, void *userdata)
{
    struct buffer *b = userdata;
    size_t n = size * nmemb;
    if (b->len + n > CLIENT_MAX_BODY) {
        b->too_big = true;
        return 0;
    }
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 4096;
        while (cap < b->len + n + 1)
            cap *= 2;
        b->data = st_xrealloc(b->data, cap);
        b->cap = cap;
    }
    memcpy(b->data + b->len, ptr, n);
    b->len += n;
    b->data[b->len] = '\0';
    return n;
}

static int curl_errno(CURLcode cc)
{
    switch (cc) {
    case CURLE_COULDNT_CONNECT:
        return -ECONNREFUSED;
    case CURLE_COULDNT_RESOLVE_HOST:
    case CURLE_COULDNT_RESOLVE_PROXY:
        return -EHOSTUNREACH;
    case CURLE_OPERATION_TIMEDOUT:
        return -ETIMEDOUT;
    case CURLE_WRITE_ERROR:
        return -EIO;
    case CURLE_URL_MALFORMAT:
    case CURLE_UNSUPPORTED_PROTOCOL:
        return -EINVAL;
    default:
        return -ECONNRESET;
    }
}

static int status_errno(long status)
{
    switch (status) {
    case 401:
    case 403:
        return -EACCES;
    case 404:
        return -ENOENT;
    case 409:
        return -EBUSY;
    case 410:
        return -ESTALE;
    case 413:
        return -EFBIG;
    default:
        return status >= 500 ? -EIO : -EINVAL;
    }
}

/* The message of an error body, whatever the family's shape: {"message"},
 * {"error": {"message"}}, {"itemNotFound": {"message"}}, ...; else the raw
 * start of the body. */
static char *error_message(const struct buffer *b)
{
    if (!b->len)
        return st_strdup("(empty body)");
    st_autoptr(json_t) v = json_loadb(b->data, b->len, 0, NULL);
    if (json_is_object(v)) {
        json_t *m = json_object_get(v, "message");
        if (json_is_string(m))
            return st_strdup(json_string_value(m));
        const char *key;
        json_t *inner;
        json_object_foreach(v, key, inner)
        {
            m = json_object_get(inner, "message");
            if (json_is_string(m))
                return st_strdup(json_string_value(m));
        }
    }
    return st_sprintf("%.200s", b->data);
}

/* Runs the prepared easy handle to completion through the multi handle. */
static int perform(struct st_agent_client *c, const char *what, long *ret_status,
                   struct st_err **err)
{
    if (ret_status)
        *ret_status = 0;
    if (stopped(c))
        return st_err_set(err, -ECANCELED, "%s: agent stopping", what);
    char errbuf[CURL_ERROR_SIZE] = "";
    curl_easy_setopt(c->easy, CURLOPT_ERRORBUFFER, errbuf);
    CURLMcode mc = curl_multi_add_handle(c->multi, c->easy);
    if (mc != CURLM_OK)
        return st_err_set(err, -EIO, "%s: %s", what, curl_multi_strerror(mc));
    int running = 1;
    int r = 0;
    while (running) {
        mc = curl_multi_perform(c->multi, &running);
        if (mc != CURLM_OK) {
            r = st_err_set(err, -EIO, "%s: %s", what, curl_multi_strerror(mc));
            break;
        }
        if (!running)
            break;
        if (stopped(c)) {
            r = st_err_set(err, -ECANCELED, "%s: agent stopping", what);
            break;
        }
        mc = curl_multi_poll(c->multi, NULL, 0, 1000, NULL);
        if (mc != CURLM_OK) {
            r = st_err_set(err, -EIO, "%s: %s", what, curl_multi_strerror(mc));
            break;
        }
    }
    CURLcode cc = CURLE_OK;
    if (r == 0) {
        int left;
        CURLMsg *msg;
        while ((msg = curl_multi_info_read(c->multi, &left))) {
            if (msg->msg == CURLMSG_DONE && msg->easy_handle == c->easy)
                cc = msg->data.result;
        }
    }
    curl_multi_remove_handle(c->multi, c->easy);
    if (r < 0)
        return r;
    if (cc != CURLE_OK)
        return st_err_set(err, curl_errno(cc), "%s: controller %s unreachable: %s", what,
                          c->base_url, errbuf[0] ? errbuf : curl_easy_strerror(cc));
    long status = 0;
    curl_easy_getinfo(c->easy, CURLINFO_RESPONSE_CODE, &status);
    if (ret_status)
        *ret_status = status;
    return 0;
}

static void prepare(struct st_agent_client *c, const char *method, const char *path,
                    struct curl_slist **headers)
{
    curl_easy_reset(c->easy);
    st_autofree char *url = st_sprintf("%s%s", c->base_url, path);
    curl_easy_setopt(c->easy, CURLOPT_URL, url); /* libcurl copies strings */
    curl_easy_setopt(c->easy, CURLOPT_CUSTOMREQUEST, method);
    curl_easy_setopt(c->easy, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c->easy, CURLOPT_CONNECTTIMEOUT_MS, (long)CLIENT_CONNECT_TIMEOUT_MS);
    curl_easy_setopt(c->easy, CURLOPT_TCP_KEEPALIVE, 1L);
    *headers = curl_slist_append(*headers, c->token_header);
    *headers = curl_slist_append(*headers, "Expect:");
    if (strcmp(method, "HEAD") == 0)
        curl_easy_setopt(c->easy, CURLOPT_NOBODY, 1L);
}

int st_agent_client_request(struct st_agent_client *c, const char *method, const char *path,
                            json_t *body, int timeout_s, long *ret_status, json_t **ret_json,
                            struct st_err **err)
{
    struct curl_slist *headers = NULL;
    prepare(c, method, path, &headers);
    headers = curl_slist_append(headers, "Accept: application/json");
    st_autofree char *payload = NULL;
    if (body) {
        payload = st_json_dumps(body);
        headers = curl_slist_append(headers, "Content-Type: application/json");
        curl_easy_setopt(c->easy, CURLOPT_POSTFIELDS, payload);
        curl_easy_setopt(c->easy, CURLOPT_POSTFIELDSIZE, (long)strlen(payload));
    }
    curl_easy_setopt(c->easy, CURLOPT_HTTPHEADER, headers);
    curl_easy_setopt(c->easy, CURLOPT_TIMEOUT_MS,
                     1000L * (timeout_s > 0 ? timeout_s : CLIENT_DEFAULT_TIMEOUT_S));
    struct buffer b = {0};
    curl_easy_setopt(c->easy, CURLOPT_WRITEFUNCTION, buffer_write);
    curl_easy_setopt(c->easy, CURLOPT_WRITEDATA, &b);

    st_autofree char *what = st_sprintf("%s %s", method, path);
    long status = 0;
    int r = perform(c, what, &status, err);
    curl_slist_free_all(headers);
    if (ret_status)
        *ret_status = status;
    if (r < 0 && b.too_big)
        r = st_err_set(err, -EFBIG, "%s: answer larger than %u bytes", what, CLIENT_MAX_BODY);
    if (r == 0 && (status < 200 || status > 299)) {
        st_autofree char *msg = error_message(&b);
        r = st_err_set(err, status_errno(status), "%s: %ld %s", what, status, msg);
    }
    if (r == 0 && ret_json) {
        *ret_json = NULL;
        if (b.len) {
            r = st_json_parse(b.data, b.len, ret_json, err);
            if (r < 0)
                st_err_prefix(err, r, "%s: answer", what);
        }
    }
    free(b.data);
    return r;
}

int st_agent_client_put_text(struct st_agent_client *c, const char *path, const char *data,
                             size_t len, struct st_err **err)
{
    struct curl_slist *headers = NULL;
    prepare(c, "PUT", path, &headers);
    headers = curl_slist_append(headers, "Content-Type: text/plain; charset=utf-8");
    curl_easy_setopt(c->easy, CURLOPT_HTTPHEADER, headers);
    curl_easy_setopt(c->easy, CURLOPT_POSTFIELDS, data ? data : "");
    curl_easy_setopt(c->easy, CURLOPT_POSTFIELDSIZE, (long)len);
    curl_easy_setopt(c->easy, CURLOPT_TIMEOUT_MS, 1000L * CLIENT_DEFAULT_TIMEOUT_S);
    struct buffer b = {0};
    curl_easy_setopt(c->easy, CURLOPT_WRITEFUNCTION, buffer_write);
    curl_easy_setopt(c->easy, CURLOPT_WRITEDATA, &b);
    st_autofree char *what = st_sprintf("PUT %s", path);
    long status = 0;
    int r = perform(c, what, &status, err);
    curl_slist_free_all(headers);
    if (r == 0 && (status < 200 || status > 299)) {
        st_autofree char *msg = error_message(&b);
        r = st_err_set(err, status_errno(status), "%s: %ld %s", what, status, msg);
    }
    free(b.data);
    return r;
}

struct download {
    int fd;
    void (*on_chunk)(void *, const void *, size_t);
    void *userdata;
    int error;              /* errno of a failed write */
    struct buffer err_body; /* the body of a non-2xx answer, for its message */
    CURL *easy;
};

static size_t download_write(char *ptr, size_t size, size_t nmemb, void *userdata)
{
    struct download *d = userdata;
    size_t n = size * nmemb;
    long status = 0;
    curl_easy_getinfo(d->easy, CURLINFO_RESPONSE_CODE, &status);
    if (status < 200 || status > 299) /* keep the error text, not in the file */
        return d->err_body.len > 4096 ? n : buffer_write(ptr, 1, n, &d->err_body);
    size_t off = 0;
    while (off < n) {
        ssize_t w = write(d->fd, ptr + off, n - off);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            d->error = errno;
            return 0;
        }
        off += (size_t)w;
    }
    if (d->on_chunk)
        d->on_chunk(d->userdata, ptr, n);
    return n;
}

int st_agent_client_download(struct st_agent_client *c, const char *path, int fd,
                             void (*on_chunk)(void *userdata, const void *data, size_t len),
                             void *userdata, struct st_err **err)
{
    struct curl_slist *headers = NULL;
    prepare(c, "GET", path, &headers);
    curl_easy_setopt(c->easy, CURLOPT_HTTPHEADER, headers);
    curl_easy_setopt(c->easy, CURLOPT_LOW_SPEED_LIMIT, 1L);
    curl_easy_setopt(c->easy, CURLOPT_LOW_SPEED_TIME, 60L);
    struct download d = {.fd = fd, .on_chunk = on_chunk, .userdata = userdata, .easy = c->easy};
    curl_easy_setopt(c->easy, CURLOPT_WRITEFUNCTION, download_write);
    curl_easy_setopt(c->easy, CURLOPT_WRITEDATA, &d);
    st_autofree char *what = st_sprintf("GET %s", path);
    long status = 0;
    int r = perform(c, what, &status, err);
    curl_slist_free_all(headers);
    if (d.error) {
        st_err_clear(err);
        r = st_err_set(err, -d.error, "%s: writing: %s", what, strerror(d.error));
    } else if (r == 0 && (status < 200 || status > 299)) {
        st_autofree char *msg = error_message(&d.err_body);
        r = st_err_set(err, status_errno(status), "%s: %ld %s", what, status, msg);
    }
    free(d.err_body.data);
    return r;
}
