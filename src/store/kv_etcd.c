/* The etcd v3 store backend, for several controllers sharing one state: it
 * speaks etcd's gRPC-gateway JSON API (POST /v3/kv/range, put, deleterange,
 * txn, compaction; /v3/watch) over HTTP with libcurl, keys and values in
 * base64, 64-bit integers as JSON strings. URL: "etcd://host:port[,host:port
 * ...]"; a request that cannot connect to one endpoint goes to the next
 * (only then: a request that may have reached etcd is never sent twice).
 *
 * Revisions: etcd counts its empty store as revision 1 and gives the first
 * write revision 2; kv.h says an empty store is at 0 and the first write
 * gets 1. Every revision this backend shows is etcd's minus one (mod_rev,
 * create_rev, list and watch revisions, compaction), so all backends number
 * the same history the same way; etcdctl shows one more.
 *
 * Conditions map as kv.h says for st_kv_txn: mod_rev == x is Compare(MOD) ==
 * x + 1, ST_KV_ABSENT is Compare(CREATE) == 0. The failure branch reads the
 * compared keys (keys only) at the same revision, so a refused write says
 * why, with the same words as SQLite's.
 *
 * Size: etcd refuses a request over its --max-request-bytes (1.5 MiB by
 * default), well under ST_KV_VALUE_MAX (8 MiB). Writes over ETCD_REQUEST_MAX
 * are refused here with -EFBIG before they are sent, and etcd's own "request
 * is too large" (a server with a lower limit) is -EFBIG too; values are not
 * split across keys (that would break atomicity and watches).
 *
 * Watches are served by kv_etcd_watch.c (one watch stream per store handle,
 * shared by every watcher of the process). Thread-safe: each request borrows
 * a curl handle (and its kept-alive connection) from a small pool. */
#include "kv_etcd.h"

#include <errno.h>
#include <openssl/evp.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/cleanup.h"
#include "lib/json.h"
#include "lib/log.h"

#define ETCD_DEFAULT_PORT  "2379"
#define CONNECT_TIMEOUT_MS 3000
/* Above etcd's own request timeout (about 5 s plus a leader election), so
 * that etcd answers first when it can. */
#define REQUEST_TIMEOUT_MS 15000
#define COMPACT_EVERY_MAX  1000
/* What one compare or operation adds to a request besides its key and
 * value (protobuf framing, the raft entry's header), rounded up. */
#define OP_OVERHEAD 64

ST_DEFINE_AUTOPTR(curl_slist, curl_slist_free_all)

static pthread_once_t curl_once = PTHREAD_ONCE_INIT;
static CURLcode curl_init_result;

static void curl_init_once(void)
{
    curl_init_result = curl_global_init(CURL_GLOBAL_DEFAULT);
}

/* ---- base64 and JSON ------------------------------------------------ */

char *st_etcd_b64(const void *data, size_t len)
{
    char *out = st_xcalloc(4 * ((len + 2) / 3) + 1, 1);
    EVP_EncodeBlock((unsigned char *)out, data, (int)len);
    return out;
}

int st_etcd_unb64(const char *s, char **ret, size_t *ret_len)
{
    size_t n = s ? strlen(s) : 0;
    if (n % 4 != 0)
        return -EBADMSG;
    char *out = st_xcalloc(n / 4 * 3 + 1, 1);
    int len = n ? EVP_DecodeBlock((unsigned char *)out, (const unsigned char *)s, (int)n) : 0;
    if (len < 0) {
        free(out);
        return -EBADMSG;
    }
    /* EVP_DecodeBlock counts the padding as zero bytes */
    for (size_t i = n; i > 0 && s[i - 1] == '='; i--)
        len--;
    out[len] = 0;
    *ret = out;
    if (ret_len)
        *ret_len = (size_t)len;
    return 0;
}

void st_etcd_set_b64(json_t *obj, const char *field, const void *data, size_t len)
{
    char *b = st_etcd_b64(data, len);
    json_object_set_new(obj, field, json_string(b));
    free(b);
}

void st_etcd_set_int(json_t *obj, const char *field, int64_t v)
{
    char buf[32];
    snprintf(buf, sizeof(buf), "%lld", (long long)v);
    json_object_set_new(obj, field, json_string(buf));
}

/* The gateway writes int64s as strings and leaves out zero values. */
int64_t st_etcd_int(const json_t *obj, const char *field)
{
    json_t *v = json_object_get(obj, field);
    if (json_is_string(v))
        return strtoll(json_string_value(v), NULL, 10);
    if (json_is_integer(v))
        return json_integer_value(v);
    return 0;
}

int64_t st_etcd_header_rev(const json_t *resp)
{
    return st_etcd_int(json_object_get(resp, "header"), "revision");
}

int st_etcd_entry_from_json(const json_t *kv, bool with_value, struct st_kv_entry *e,
                            struct st_err **err)
{
    *e = (struct st_kv_entry){0};
    const char *key = json_string_value(json_object_get(kv, "key"));
    if (!key || st_etcd_unb64(key, &e->key, NULL) < 0)
        return st_err_set(err, -EBADMSG, "etcd answered a key that is not base64");
    if (with_value) {
        json_t *v = json_object_get(kv, "value");
        if (st_etcd_unb64(json_is_string(v) ? json_string_value(v) : "", &e->value, &e->value_len) <
            0) {
            st_kv_entry_clear(e);
            return st_err_set(err, -EBADMSG, "etcd answered a value that is not base64");
        }
    }
    e->create_rev = st_etcd_rev_to_st(st_etcd_int(kv, "create_revision"));
    e->mod_rev = st_etcd_rev_to_st(st_etcd_int(kv, "mod_revision"));
    e->version = st_etcd_int(kv, "version");
    if (e->create_rev < 0)
        e->create_rev = 0;
    return 0;
}

/* ---- HTTP ----------------------------------------------------------- */

struct http_buf {
    char *data;
    size_t len, cap;
};

static size_t http_write(char *p, size_t size, size_t n, void *userdata)
{
    struct http_buf *b = userdata;
    size_t add = size * n;
    if (b->len + add + 1 > b->cap) {
        b->cap = (b->len + add + 1) * 2;
        b->data = st_xrealloc(b->data, b->cap);
    }
    memcpy(b->data + b->len, p, add);
    b->len += add;
    b->data[b->len] = 0;
    return add;
}

static CURL *pool_get(struct st_kv_etcd *e)
{
    pthread_mutex_lock(&e->pool_mu);
    CURL *c = e->n_idle ? e->idle[--e->n_idle] : NULL;
    pthread_mutex_unlock(&e->pool_mu);
    if (!c && !(c = curl_easy_init()))
        abort();
    return c;
}

static void pool_put(struct st_kv_etcd *e, CURL *c)
{
    pthread_mutex_lock(&e->pool_mu);
    if (e->n_idle < ETCD_POOL_MAX) {
        e->idle[e->n_idle++] = c;
        c = NULL;
    }
    pthread_mutex_unlock(&e->pool_mu);
    if (c)
        curl_easy_cleanup(c);
}

void st_etcd_curl_setup(struct st_kv_etcd *e, CURL *c, const char *url, char *errbuf)
{
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, e->headers);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_NOPROXY, "*");
    curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, (long)CONNECT_TIMEOUT_MS);
    curl_easy_setopt(c, CURLOPT_TCP_KEEPALIVE, 1L);
    curl_easy_setopt(c, CURLOPT_TCP_KEEPIDLE, 10L);
    curl_easy_setopt(c, CURLOPT_TCP_KEEPINTVL, 5L);
    curl_easy_setopt(c, CURLOPT_ERRORBUFFER, errbuf);
    errbuf[0] = 0;
}

/* A transport failure as an errno a caller (and the API's status table)
 * can act on: 503 while etcd is unreachable, 504 on a timeout. */
int st_etcd_curl_fail(struct st_err **err, const char *endpoint, CURLcode cc, const char *errbuf,
                      bool write)
{
    int code;
    bool sent = true;
    switch (cc) {
    case CURLE_COULDNT_CONNECT:
        code = -ECONNREFUSED;
        sent = false;
        break;
    case CURLE_COULDNT_RESOLVE_HOST:
        code = -EHOSTUNREACH;
        sent = false;
        break;
    case CURLE_OPERATION_TIMEDOUT:
        code = -ETIMEDOUT;
        break;
    case CURLE_OUT_OF_MEMORY:
        abort();
    default:
        code = -EAGAIN; /* the connection was lost */
        break;
    }
    const char *tail = write && sent ? " (the write may or may not have been applied)" : "";
    return st_err_set(err, code, "etcd at %s: %s%s", endpoint,
                      errbuf && errbuf[0] ? errbuf : curl_easy_strerror(cc), tail);
}

/* etcd's error body {"error", "message", "code" (a gRPC code)} as an errno. */
int st_etcd_status_fail(struct st_err **err, const char *endpoint, long status, const char *body,
                        size_t len)
{
    st_autoptr(json_t) j = json_loadb(body ? body : "", len, 0, NULL);
    const char *msg = json_string_value(json_object_get(j, "message"));
    if (!msg)
        msg = json_string_value(json_object_get(j, "error"));
    if (!msg)
        return st_err_set(err, -EIO, "etcd at %s: HTTP %ld: %.200s (is this an etcd v3 endpoint?)",
                          endpoint, status, body && len ? body : "no body");
    int64_t grpc = st_etcd_int(j, "code");
    int code;
    switch (grpc) {
    case 3: /* InvalidArgument */
        code = strstr(msg, "too large") ? -EFBIG : -EINVAL;
        break;
    case 4: /* DeadlineExceeded */
        code = -ETIMEDOUT;
        break;
    case 5: /* NotFound */
        code = -ENOENT;
        break;
    case 8: /* ResourceExhausted: the space quota, or too many requests */
        code = strstr(msg, "space") ? -ENOSPC : -EAGAIN;
        break;
    case 11: /* OutOfRange: compacted or future revisions */
        code = -ERANGE;
        break;
    case 14: /* Unavailable: no leader, leader changed, stopping */
        code = -EAGAIN;
        break;
    default:
        code = -EIO;
        break;
    }
    if (code == -EIO)
        return st_err_set(err, code, "etcd at %s: %s (gRPC code %lld, HTTP %ld)", endpoint, msg,
                          (long long)grpc, status);
    return st_err_set(err, code, "etcd at %s: %s", endpoint, msg);
}

const char *st_etcd_endpoint(struct st_kv_etcd *e, unsigned *ret_index)
{
    unsigned i = __atomic_load_n(&e->preferred, __ATOMIC_RELAXED) % e->n_endpoints;
    if (ret_index)
        *ret_index = i;
    return e->endpoints[i];
}

void st_etcd_endpoint_failed(struct st_kv_etcd *e, unsigned index)
{
    unsigned next = (index + 1) % e->n_endpoints;
    if (__atomic_compare_exchange_n(&e->preferred, &index, next, false, __ATOMIC_RELAXED,
                                    __ATOMIC_RELAXED) &&
        e->n_endpoints > 1)
        st_log_warn("store_etcd_failover", "from=%s to=%s", e->endpoints[index],
                    e->endpoints[next]);
}

static void note_revision(struct st_kv_etcd *e, int64_t etcd_rev)
{
    int64_t rev = st_etcd_rev_to_st(etcd_rev);
    int64_t seen = __atomic_load_n(&e->last_rev, __ATOMIC_RELAXED);
    while (rev > seen && !__atomic_compare_exchange_n(&e->last_rev, &seen, rev, false,
                                                      __ATOMIC_RELAXED, __ATOMIC_RELAXED))
        ;
}

/* POSTs req to path on the preferred endpoint (the next ones only when it
 * cannot connect) and parses the answer. */
int st_etcd_call(struct st_kv_etcd *e, const char *path, const json_t *req, json_t **ret,
                 struct st_err **err)
{
    st_autofree char *body = json_dumps(req, JSON_COMPACT);
    if (!body)
        abort();
    size_t body_len = strlen(body);
    st_autoptr(st_err) conn_err = NULL;
    for (size_t attempt = 0; attempt < e->n_endpoints; attempt++) {
        unsigned idx;
        const char *endpoint = st_etcd_endpoint(e, &idx);
        st_autofree char *url = st_sprintf("%s%s", endpoint, path);
        struct http_buf out = {0};
        char errbuf[CURL_ERROR_SIZE];
        CURL *c = pool_get(e);
        st_etcd_curl_setup(e, c, url, errbuf);
        curl_easy_setopt(c, CURLOPT_POST, 1L);
        curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
        curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)body_len);
        curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, (long)REQUEST_TIMEOUT_MS);
        curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, http_write);
        curl_easy_setopt(c, CURLOPT_WRITEDATA, &out);
        CURLcode cc = curl_easy_perform(c);
        long status = 0;
        curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
        curl_easy_setopt(c, CURLOPT_POSTFIELDS, NULL);
        curl_easy_setopt(c, CURLOPT_ERRORBUFFER, NULL);
        pool_put(e, c);
        st_autofree char *resp = out.data;
        if (cc == CURLE_COULDNT_CONNECT || cc == CURLE_COULDNT_RESOLVE_HOST) {
            /* never reached etcd: safe to send to the next endpoint */
            st_err_clear(&conn_err);
            st_etcd_curl_fail(&conn_err, endpoint, cc, errbuf, false);
            st_etcd_endpoint_failed(e, idx);
            continue;
        }
        if (cc != CURLE_OK)
            return st_etcd_curl_fail(err, endpoint, cc, errbuf, strcmp(path, "/v3/kv/range") != 0);
        if (status != 200)
            return st_etcd_status_fail(err, endpoint, status, resp, out.len);
        json_t *j = json_loadb(resp ? resp : "", out.len, 0, NULL);
        if (!json_is_object(j)) {
            json_decref(j);
            return st_err_set(err, -EBADMSG, "etcd at %s: the answer to %s is not a JSON object",
                              endpoint, path);
        }
        note_revision(e, st_etcd_header_rev(j));
        *ret = j;
        return 0;
    }
    int code = conn_err->code;
    if (err && !*err)
        *err = st_steal(&conn_err);
    return code;
}

/* ---- open and close ------------------------------------------------- */

/* "host:port[,host:port...]" → "http://host:port" each. */
static int parse_endpoints(struct st_kv_etcd *e, const char *location, struct st_err **err)
{
    if (strpbrk(location, "/?#@ "))
        return st_err_set(err, -EINVAL,
                          "etcd store URL: '%s' is not host:port[,host:port...] (no path, "
                          "query or credentials; plain http)",
                          location);
    st_autofree char *copy = st_strdup(location);
    char *save = NULL;
    for (char *tok = strtok_r(copy, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
        if (!tok[0])
            continue;
        /* a port after the host, or after the ']' of an IPv6 address */
        const char *close = strrchr(tok, ']');
        const char *colon = strrchr(close ? close : tok, ':');
        if (tok[0] == '[' && !close)
            return st_err_set(err, -EINVAL, "etcd store URL: endpoint '%s' lacks its ']'", tok);
        if (colon && !colon[1])
            return st_err_set(err, -EINVAL, "etcd store URL: endpoint '%s' has no port", tok);
        e->endpoints = st_xrealloc(e->endpoints, (e->n_endpoints + 1) * sizeof(char *));
        e->endpoints[e->n_endpoints++] = colon ? st_sprintf("http://%s", tok)
                                               : st_sprintf("http://%s:%s", tok, ETCD_DEFAULT_PORT);
    }
    if (e->n_endpoints == 0)
        return st_err_set(err, -EINVAL, "etcd store URL: no endpoint in '%s'", location);
    return 0;
}

static void etcd_close(void *impl);

static int etcd_open(const char *location, const struct st_kv_options *opts, void **ret_impl,
                     struct st_err **err)
{
    pthread_once(&curl_once, curl_init_once);
    if (curl_init_result != CURLE_OK)
        return st_err_set(err, -EIO, "initialising libcurl: %s",
                          curl_easy_strerror(curl_init_result));
    struct st_kv_etcd *e = st_new0(struct st_kv_etcd, 1);
    e->history = opts->history;
    e->compact_every = e->history / 10;
    if (e->compact_every < 1)
        e->compact_every = 1;
    if (e->compact_every > COMPACT_EVERY_MAX)
        e->compact_every = COMPACT_EVERY_MAX;
    pthread_mutex_init(&e->pool_mu, NULL);
    e->headers = curl_slist_append(NULL, "Content-Type: application/json");
    /* no "Expect: 100-continue" round trip before large bodies */
    e->headers = curl_slist_append(e->headers, "Expect:");
    if (!e->headers)
        abort();

    int r = parse_endpoints(e, location, err);
    if (r < 0)
        goto fail;
    /* One read: etcd answers (or we say why not), and the watch stream
     * starts from here. */
    int64_t rev = 0;
    r = st_etcd_revision_read(e, &rev, err);
    if (r < 0)
        goto fail;
    r = st_etcd_watch_start(e, rev, err);
    if (r < 0)
        goto fail;
    st_log_debug("store_etcd_open", "endpoints=%s revision=%lld", location, (long long)rev);
    *ret_impl = e;
    return 0;
fail:
    etcd_close(e);
    return r;
}

static void etcd_close(void *impl)
{
    struct st_kv_etcd *e = impl;
    if (!e)
        return;
    st_etcd_watch_stop(e);
    for (size_t i = 0; i < e->n_idle; i++)
        curl_easy_cleanup(e->idle[i]);
    for (size_t i = 0; i < e->n_endpoints; i++)
        free(e->endpoints[i]);
    free(e->endpoints);
    curl_slist_free_all(e->headers);
    pthread_mutex_destroy(&e->pool_mu);
    free(e);
}

/* ---- reads ---------------------------------------------------------- */

/* A linearizable read of one key that does not exist ("\0") answers the
 * current revision at the cost of a read index, no data. */
int st_etcd_revision_read(struct st_kv_etcd *e, int64_t *ret, struct st_err **err)
{
    st_autoptr(json_t) req = json_object();
    st_etcd_set_b64(req, "key", "", 1);
    json_object_set_new(req, "count_only", json_true());
    st_autoptr(json_t) resp = NULL;
    int r = st_etcd_call(e, "/v3/kv/range", req, &resp, err);
    if (r < 0)
        return r;
    *ret = st_etcd_rev_to_st(st_etcd_header_rev(resp));
    return 0;
}

static int64_t etcd_revision(void *impl)
{
    struct st_kv_etcd *e = impl;
    st_autoptr(st_err) err = NULL;
    int64_t rev;
    if (st_etcd_revision_read(e, &rev, &err) == 0)
        return rev;
    rev = __atomic_load_n(&e->last_rev, __ATOMIC_RELAXED);
    st_log_warn("store_revision_failed", "error=\"%s\" fallback=%lld", st_err_msg(err),
                (long long)rev);
    return rev;
}

static int etcd_get(void *impl, const char *key, struct st_kv_entry **ret, struct st_err **err)
{
    struct st_kv_etcd *e = impl;
    st_autoptr(json_t) req = json_object();
    st_etcd_set_b64(req, "key", key, strlen(key));
    st_autoptr(json_t) resp = NULL;
    int r = st_etcd_call(e, "/v3/kv/range", req, &resp, err);
    if (r < 0)
        return r;
    json_t *kv = json_array_get(json_object_get(resp, "kvs"), 0);
    if (!kv)
        return st_err_set(err, -ENOENT, "key " ST_KV_KEY_FMT " not found", ST_KV_KEY_ARG(key));
    struct st_kv_entry *ent = st_new0(struct st_kv_entry, 1);
    r = st_etcd_entry_from_json(kv, true, ent, err);
    if (r < 0) {
        free(ent);
        return r;
    }
    *ret = ent;
    return 0;
}

static int etcd_list(void *impl, const char *prefix, const char *start_after, size_t limit,
                     struct st_kv_list **ret, struct st_err **err)
{
    struct st_kv_etcd *e = impl;
    st_autoptr(json_t) req = json_object();
    /* From the prefix, or from just after the previous page's last key (the
     * key with a NUL byte appended is the smallest one after it). */
    if (start_after && strcmp(start_after, prefix) >= 0)
        st_etcd_set_b64(req, "key", start_after, strlen(start_after) + 1);
    else if (prefix[0])
        st_etcd_set_b64(req, "key", prefix, strlen(prefix));
    else
        st_etcd_set_b64(req, "key", "", 1);
    size_t end_len;
    st_autofree char *end = st_kv_prefix_end(prefix, &end_len);
    if (end)
        st_etcd_set_b64(req, "range_end", end, end_len);
    else
        st_etcd_set_b64(req, "range_end", "", 1); /* "\0": every key from key on */
    if (limit)
        st_etcd_set_int(req, "limit", (int64_t)limit);
    st_autoptr(json_t) resp = NULL;
    int r = st_etcd_call(e, "/v3/kv/range", req, &resp, err);
    if (r < 0)
        return r;
    st_autoptr(st_kv_list) l = st_new0(struct st_kv_list, 1);
    l->revision = st_etcd_rev_to_st(st_etcd_header_rev(resp));
    l->more = json_is_true(json_object_get(resp, "more"));
    json_t *kvs = json_object_get(resp, "kvs");
    size_t n = json_array_size(kvs);
    l->entries = st_new0(struct st_kv_entry, n);
    for (size_t i = 0; i < n; i++) {
        r = st_etcd_entry_from_json(json_array_get(kvs, i), true, &l->entries[i], err);
        if (r < 0)
            return r;
        l->count++;
    }
    *ret = st_steal(&l);
    return 0;
}

/* ---- writes --------------------------------------------------------- */

static int too_large(const char *key, size_t bytes, struct st_err **err)
{
    return st_err_set(err, -EFBIG,
                      "key " ST_KV_KEY_FMT ": a write of %zu bytes, more than the etcd store "
                      "takes in one request (%d bytes, etcd's --max-request-bytes)",
                      ST_KV_KEY_ARG(key), bytes, ETCD_REQUEST_MAX);
}

static void add_compare(json_t *cmps, const char *key, int64_t expect)
{
    json_t *c = json_object();
    st_etcd_set_b64(c, "key", key, strlen(key));
    if (expect == ST_KV_ABSENT) {
        json_object_set_new(c, "target", json_string("CREATE"));
        st_etcd_set_int(c, "create_revision", 0);
    } else {
        json_object_set_new(c, "target", json_string("MOD"));
        st_etcd_set_int(c, "mod_revision", st_etcd_rev_from_st(expect));
    }
    json_array_append_new(cmps, c);
}

static void add_range(json_t *ops, const char *key)
{
    json_t *range = json_object();
    st_etcd_set_b64(range, "key", key, strlen(key));
    json_object_set_new(range, "keys_only", json_true());
    json_array_append_new(ops, json_pack("{s:o}", "request_range", range));
}

static void add_put(json_t *ops, const char *key, const void *value, size_t value_len)
{
    json_t *put = json_object();
    st_etcd_set_b64(put, "key", key, strlen(key));
    st_etcd_set_b64(put, "value", value, value_len);
    json_array_append_new(ops, json_pack("{s:o}", "request_put", put));
}

static void add_delete(json_t *ops, const char *key)
{
    json_t *del = json_object();
    st_etcd_set_b64(del, "key", key, strlen(key));
    json_array_append_new(ops, json_pack("{s:o}", "request_delete_range", del));
}

/* The key's state as the failure branch read it: exists and its mod_rev. */
static bool range_result(const json_t *resp, size_t i, int64_t *ret_mod_rev)
{
    json_t *rr =
        json_object_get(json_array_get(json_object_get(resp, "responses"), i), "response_range");
    json_t *kv = json_array_get(json_object_get(rr, "kvs"), 0);
    *ret_mod_rev = kv ? st_etcd_rev_to_st(st_etcd_int(kv, "mod_revision")) : 0;
    return kv != NULL;
}

/* Why a compare failed, in the SQLite backend's words. 0 when it held. */
static int explain(const char *key, int64_t expect, bool exists, int64_t mod_rev,
                   struct st_err **err)
{
    if (expect == ST_KV_ABSENT) {
        if (!exists)
            return 0;
        return st_err_set(err, -ECANCELED, "key " ST_KV_KEY_FMT " already exists (mod_rev %lld)",
                          ST_KV_KEY_ARG(key), (long long)mod_rev);
    }
    if (!exists)
        return st_err_set(err, -ECANCELED,
                          "key " ST_KV_KEY_FMT " no longer exists (expected mod_rev %lld)",
                          ST_KV_KEY_ARG(key), (long long)expect);
    if (mod_rev != expect)
        return st_err_set(err, -ECANCELED,
                          "key " ST_KV_KEY_FMT " was modified: mod_rev is %lld, expected %lld",
                          ST_KV_KEY_ARG(key), (long long)mod_rev, (long long)expect);
    return 0;
}

static int etcd_put(void *impl, const char *key, const void *value, size_t value_len,
                    int64_t expect_mod_rev, int64_t *ret_rev, struct st_err **err)
{
    struct st_kv_etcd *e = impl;
    size_t bytes = strlen(key) + value_len + OP_OVERHEAD;
    if (bytes > ETCD_REQUEST_MAX)
        return too_large(key, bytes, err);
    st_autoptr(json_t) resp = NULL;
    int r;
    if (expect_mod_rev == ST_KV_ANY) {
        st_autoptr(json_t) req = json_object();
        st_etcd_set_b64(req, "key", key, strlen(key));
        st_etcd_set_b64(req, "value", value, value_len);
        if ((r = st_etcd_call(e, "/v3/kv/put", req, &resp, err)) < 0)
            return r;
    } else {
        st_autoptr(json_t) req = json_object();
        json_t *cmps = json_array(), *success = json_array(), *failure = json_array();
        json_object_set_new(req, "compare", cmps);
        json_object_set_new(req, "success", success);
        json_object_set_new(req, "failure", failure);
        add_compare(cmps, key, expect_mod_rev);
        add_put(success, key, value, value_len);
        add_range(failure, key);
        if ((r = st_etcd_call(e, "/v3/kv/txn", req, &resp, err)) < 0)
            return r;
        if (!json_is_true(json_object_get(resp, "succeeded"))) {
            int64_t mod_rev;
            bool exists = range_result(resp, 0, &mod_rev);
            r = explain(key, expect_mod_rev, exists, mod_rev, err);
            return r < 0 ? r
                         : st_err_set(err, -ECANCELED, "key " ST_KV_KEY_FMT ": condition failed",
                                      ST_KV_KEY_ARG(key));
        }
    }
    int64_t rev = st_etcd_rev_to_st(st_etcd_header_rev(resp));
    st_etcd_compact_auto(e, rev);
    if (ret_rev)
        *ret_rev = rev;
    return 0;
}

static int etcd_delete(void *impl, const char *key, int64_t expect_mod_rev, int64_t *ret_rev,
                       struct st_err **err)
{
    struct st_kv_etcd *e = impl;
    st_autoptr(json_t) resp = NULL;
    int r;
    int64_t deleted;
    if (expect_mod_rev == ST_KV_ANY) {
        st_autoptr(json_t) req = json_object();
        st_etcd_set_b64(req, "key", key, strlen(key));
        if ((r = st_etcd_call(e, "/v3/kv/deleterange", req, &resp, err)) < 0)
            return r;
        deleted = st_etcd_int(resp, "deleted");
    } else {
        st_autoptr(json_t) req = json_object();
        json_t *cmps = json_array(), *success = json_array(), *failure = json_array();
        json_object_set_new(req, "compare", cmps);
        json_object_set_new(req, "success", success);
        json_object_set_new(req, "failure", failure);
        add_compare(cmps, key, expect_mod_rev);
        add_delete(success, key);
        add_range(failure, key);
        if ((r = st_etcd_call(e, "/v3/kv/txn", req, &resp, err)) < 0)
            return r;
        if (!json_is_true(json_object_get(resp, "succeeded"))) {
            int64_t mod_rev;
            if (!range_result(resp, 0, &mod_rev))
                return st_err_set(err, -ENOENT, "key " ST_KV_KEY_FMT " not found",
                                  ST_KV_KEY_ARG(key));
            r = explain(key, expect_mod_rev, true, mod_rev, err);
            return r < 0 ? r
                         : st_err_set(err, -ECANCELED, "key " ST_KV_KEY_FMT ": condition failed",
                                      ST_KV_KEY_ARG(key));
        }
        json_t *dr = json_object_get(json_array_get(json_object_get(resp, "responses"), 0),
                                     "response_delete_range");
        deleted = st_etcd_int(dr, "deleted");
    }
    if (deleted == 0)
        return st_err_set(err, -ENOENT, "key " ST_KV_KEY_FMT " not found", ST_KV_KEY_ARG(key));
    int64_t rev = st_etcd_rev_to_st(st_etcd_header_rev(resp));
    st_etcd_compact_auto(e, rev);
    if (ret_rev)
        *ret_rev = rev;
    return 0;
}

static int etcd_txn(void *impl, const struct st_kv_cmp *cmps, size_t n_cmps,
                    const struct st_kv_op *ops, size_t n_ops, int64_t *ret_rev, struct st_err **err)
{
    struct st_kv_etcd *e = impl;
    size_t bytes = 0;
    for (size_t i = 0; i < n_cmps; i++)
        bytes += strlen(cmps[i].key) + OP_OVERHEAD;
    for (size_t i = 0; i < n_ops; i++)
        bytes +=
            strlen(ops[i].key) + (ops[i].type == ST_KV_OP_PUT ? ops[i].value_len : 0) + OP_OVERHEAD;
    if (bytes > ETCD_REQUEST_MAX)
        return st_err_set(err, -EFBIG,
                          "transaction of %zu bytes: more than the etcd store takes in one "
                          "request (%d bytes, etcd's --max-request-bytes)",
                          bytes, ETCD_REQUEST_MAX);

    st_autoptr(json_t) req = json_object();
    json_t *jc = json_array(), *success = json_array(), *failure = json_array();
    json_object_set_new(req, "compare", jc);
    json_object_set_new(req, "success", success);
    json_object_set_new(req, "failure", failure);
    for (size_t i = 0; i < n_cmps; i++) {
        if (cmps[i].expect_mod_rev == ST_KV_ANY)
            continue;
        add_compare(jc, cmps[i].key, cmps[i].expect_mod_rev);
        add_range(failure, cmps[i].key);
    }
    for (size_t i = 0; i < n_ops; i++) {
        if (ops[i].type == ST_KV_OP_PUT)
            add_put(success, ops[i].key, ops[i].value ? ops[i].value : "", ops[i].value_len);
        else
            add_delete(success, ops[i].key);
    }
    st_autoptr(json_t) resp = NULL;
    int r = st_etcd_call(e, "/v3/kv/txn", req, &resp, err);
    if (r < 0)
        return st_err_prefix(err, r, "transaction");
    if (!json_is_true(json_object_get(resp, "succeeded"))) {
        size_t k = 0;
        for (size_t i = 0; i < n_cmps; i++) {
            if (cmps[i].expect_mod_rev == ST_KV_ANY)
                continue;
            int64_t mod_rev;
            bool exists = range_result(resp, k++, &mod_rev);
            r = explain(cmps[i].key, cmps[i].expect_mod_rev, exists, mod_rev, err);
            if (r < 0)
                return st_err_prefix(err, r, "transaction compare %zu failed", i);
        }
        return st_err_set(err, -ECANCELED, "transaction: a compare failed");
    }
    int64_t rev = st_etcd_rev_to_st(st_etcd_header_rev(resp));
    st_etcd_compact_auto(e, rev);
    if (ret_rev)
        *ret_rev = rev;
    return 0;
}

/* ---- compaction ----------------------------------------------------- */

/* etcd's compaction at revision C keeps the events of C and later; dropping
 * ours up to and including rev keeps etcd's rev + 2 and later. */
static int compact_request(struct st_kv_etcd *e, int64_t etcd_rev, struct st_err **err)
{
    st_autoptr(json_t) req = json_object();
    st_etcd_set_int(req, "revision", etcd_rev);
    st_autoptr(json_t) resp = NULL;
    st_autoptr(st_err) e2 = NULL;
    int r = st_etcd_call(e, "/v3/kv/compaction", req, &resp, &e2);
    if (r == -ERANGE && strstr(st_err_msg(e2), "has been compacted"))
        return 0; /* another controller got there first: the same outcome */
    if (r < 0) {
        if (err && !*err)
            *err = st_steal(&e2);
        return r;
    }
    return 0;
}

static void note_compacted(struct st_kv_etcd *e, int64_t rev)
{
    int64_t seen = __atomic_load_n(&e->compacted, __ATOMIC_RELAXED);
    while (rev > seen && !__atomic_compare_exchange_n(&e->compacted, &seen, rev, false,
                                                      __ATOMIC_RELAXED, __ATOMIC_RELAXED))
        ;
}

static int etcd_compact(void *impl, int64_t rev, struct st_err **err)
{
    struct st_kv_etcd *e = impl;
    if (rev <= __atomic_load_n(&e->compacted, __ATOMIC_RELAXED))
        return 0;
    st_autoptr(st_err) e2 = NULL;
    int r = compact_request(e, st_etcd_rev_from_st(rev + 1), &e2);
    if (r == -ERANGE) {
        /* etcd's rev + 2 is in the future: rev is the current revision (its
         * own events stay in etcd then, though no watcher gets them) or
         * later than it */
        int64_t cur;
        if ((r = st_etcd_revision_read(e, &cur, err)) < 0)
            return r;
        if (rev > cur)
            return st_err_set(err, -EINVAL,
                              "compact to revision %lld: the store is at revision %lld",
                              (long long)rev, (long long)cur);
        st_err_clear(&e2);
        r = compact_request(e, st_etcd_rev_from_st(rev), &e2);
    }
    if (r < 0) {
        if (err && !*err)
            *err = st_steal(&e2);
        return st_err_prefix(err, r, "compact to revision %lld", (long long)rev);
    }
    note_compacted(e, rev);
    return 0;
}

/* As the SQLite backend: once the history kept passes `history` by
 * compact_every revisions, drop what is older (one extra request, made by
 * one writer at a time; a failure only delays it). */
void st_etcd_compact_auto(struct st_kv_etcd *e, int64_t rev)
{
    int64_t done = __atomic_load_n(&e->compacted, __ATOMIC_RELAXED);
    if (rev - done <= e->history + e->compact_every)
        return;
    if (__atomic_exchange_n(&e->compacting, true, __ATOMIC_ACQUIRE))
        return;
    st_autoptr(st_err) err = NULL;
    int64_t target = rev - e->history;
    int r = compact_request(e, st_etcd_rev_from_st(target + 1), &err);
    if (r < 0)
        st_log_warn("store_compact_failed", "revision=%lld error=\"%s\"", (long long)target,
                    st_err_msg(err));
    else
        note_compacted(e, target);
    __atomic_store_n(&e->compacting, false, __ATOMIC_RELEASE);
}

const struct st_kv_backend st_kv_etcd_backend = {
    .name = "etcd",
    .open = etcd_open,
    .close = etcd_close,
    .revision = etcd_revision,
    .get = etcd_get,
    .put = etcd_put,
    .delete = etcd_delete,
    .txn = etcd_txn,
    .list = etcd_list,
    .watch = st_etcd_watch,
    .compact = etcd_compact,
    .wake_all = st_etcd_wake_all,
};
