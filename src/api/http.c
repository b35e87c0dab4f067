/* Request accessors, response builders, and the parsers of what a client
 * puts in a URL (path segments, percent-encoding, query strings); see http.h.
 * The parsers work in place in buffers the caller sized, so a request costs
 * no allocation here but the query's, made once and only if a handler asks. */
#include "http.h"

#include <errno.h>
#include <microhttpd.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "lib/cleanup.h"
#include "lib/log.h"
#include "router.h"

static int hex_value(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

size_t st_http_url_decode(char *s, size_t len, bool plus_is_space)
{
    size_t o = 0;
    for (size_t i = 0; i < len; i++) {
        char c = s[i];
        if (c == '%' && i + 2 < len) {
            int hi = hex_value(s[i + 1]), lo = hex_value(s[i + 2]);
            if (hi >= 0 && lo >= 0 && (hi | lo) != 0) {
                s[o++] = (char)(hi << 4 | lo);
                i += 2;
                continue;
            }
        } else if (c == '+' && plus_is_space) {
            c = ' ';
        }
        s[o++] = c;
    }
    s[o] = '\0';
    return o;
}

size_t st_http_query_parse(char *query, struct st_http_kv *ret, size_t max)
{
    size_t n = 0;
    char *p = query;
    while (p && *p) {
        char *amp = strchrnul(p, '&');
        char *next = *amp ? amp + 1 : NULL;
        *amp = '\0';
        if (*p) {
            char *eq = strchr(p, '=');
            char *value = amp; /* "" for a key without '=' */
            if (eq) {
                *eq = '\0';
                value = eq + 1;
                st_http_url_decode(value, strlen(value), true);
            }
            st_http_url_decode(p, strlen(p), true);
            if (n < max)
                ret[n] = (struct st_http_kv){p, value};
            n++;
        }
        p = next;
    }
    return n;
}

int st_http_path_split(const char *raw, size_t len, char *storage, struct st_http_path *ret)
{
    ret->n_seg = 0;
    ret->decoded = storage;
    ret->decoded[0] = '\0';
    if (len == 0 || raw[0] != '/')
        return -EINVAL;
    /* storage: decoded[len + 2] then the segments, each NUL-terminated */
    char *segbuf = storage + len + 2;
    size_t dpos = 0, spos = 0;
    size_t i = 1;
    while (i <= len) {
        size_t start = i;
        while (i < len && raw[i] != '/')
            i++;
        size_t seglen = i - start;
        if (start == len) {
            /* a trailing slash: tolerated, no empty last segment */
            if (len > 1)
                ret->decoded[dpos++] = '/';
            break;
        }
        if (ret->n_seg == ST_ROUTE_MAX_SEGMENTS)
            return -E2BIG;
        char *seg = segbuf + spos;
        memcpy(seg, raw + start, seglen);
        size_t dlen = st_http_url_decode(seg, seglen, false);
        ret->seg[ret->n_seg] = seg;
        ret->decoded[dpos++] = '/';
        ret->seg_off[ret->n_seg] = dpos;
        memcpy(ret->decoded + dpos, seg, dlen);
        dpos += dlen;
        spos += dlen + 1;
        ret->n_seg++;
        i++; /* skip the '/' */
    }
    if (dpos == 0)
        ret->decoded[dpos++] = '/';
    ret->decoded[dpos] = '\0';
    return 0;
}

const char *st_http_param(const struct st_http_request *req, const char *name)
{
    for (size_t i = 0; i < req->n_params; i++)
        if (strcmp(req->params[i].name, name) == 0)
            return req->params[i].value;
    return NULL;
}

const char *st_http_header(const struct st_http_request *req, const char *name)
{
    const struct st_http_exchange *x = req->conn;
    if (!x)
        return NULL;
    if (x->mhd)
        return MHD_lookup_connection_value(x->mhd, MHD_HEADER_KIND, name);
    for (size_t i = 0; i < x->n_headers; i++)
        if (strcasecmp(x->headers[i].key, name) == 0)
            return x->headers[i].value;
    return NULL;
}

/* Parses the query on first use: one allocation holds the copy and the pairs. */
static void query_parse_once(struct st_http_exchange *x)
{
    if (x->query_parsed)
        return;
    x->query_parsed = true;
    if (!x->raw_query || !x->raw_query[0])
        return;
    size_t len = strlen(x->raw_query), max = 1;
    for (const char *p = x->raw_query; *p; p++)
        max += *p == '&';
    char *mem = st_xcalloc(1, max * sizeof(struct st_http_kv) + len + 1);
    struct st_http_kv *kv = (struct st_http_kv *)mem;
    char *copy = mem + max * sizeof(struct st_http_kv);
    memcpy(copy, x->raw_query, len + 1);
    x->query = kv;
    x->n_query = st_http_query_parse(copy, kv, max);
}

const char *st_http_query(const struct st_http_request *req, const char *key)
{
    const char *v = NULL;
    st_http_query_all(req, key, &v, 1);
    return v;
}

size_t st_http_query_all(const struct st_http_request *req, const char *key, const char **ret,
                         size_t max)
{
    struct st_http_exchange *x = req->conn;
    if (!x)
        return 0;
    query_parse_once(x);
    size_t n = 0;
    for (size_t i = 0; i < x->n_query; i++) {
        if (strcmp(x->query[i].key, key) != 0)
            continue;
        if (n < max)
            ret[n] = x->query[i].value;
        n++;
    }
    return n < max ? n : max;
}

static void resp_clear_body(struct st_http_response *resp)
{
    json_decref(resp->json);
    resp->json = NULL;
    if (!resp->body_borrowed)
        free(resp->body);
    resp->body = NULL;
    resp->body_len = 0;
    resp->body_borrowed = false;
    free(resp->content_type);
    resp->content_type = NULL;
    if (resp->fd >= 0)
        close(resp->fd);
    resp->fd = -1;
    resp->file_size = 0;
}

void st_http_resp_reset(struct st_http_response *resp)
{
    resp_clear_body(resp);
    for (size_t i = 0; i < resp->n_headers; i++) {
        free(resp->headers[i].name);
        free(resp->headers[i].value);
    }
    resp->n_headers = 0;
    resp->status = 0;
}

void st_http_resp_json(struct st_http_response *resp, int status, json_t *json)
{
    resp_clear_body(resp);
    resp->status = status;
    resp->json = json;
}

void st_http_resp_bytes(struct st_http_response *resp, int status, const char *content_type,
                        const void *data, size_t len)
{
    resp_clear_body(resp);
    resp->status = status;
    resp->body = st_xcalloc(1, len + 1);
    if (len)
        memcpy(resp->body, data, len);
    resp->body_len = len;
    resp->content_type = st_strdup(content_type);
}

void st_http_resp_static(struct st_http_response *resp, int status, const char *content_type,
                         const void *data, size_t len)
{
    resp_clear_body(resp);
    resp->status = status;
    resp->body = (char *)data;
    resp->body_len = len;
    resp->body_borrowed = true;
    resp->content_type = st_strdup(content_type);
}

void st_http_resp_file(struct st_http_response *resp, int status, const char *content_type, int fd,
                       uint64_t size)
{
    resp_clear_body(resp);
    resp->status = status;
    resp->fd = fd;
    resp->file_size = size;
    resp->content_type = st_strdup(content_type);
}

void st_http_resp_header(struct st_http_response *resp, const char *name, const char *value)
{
    if (resp->n_headers == ST_HTTP_MAX_RESP_HEADERS) {
        st_log_error("http_too_many_headers", "dropped=%s", name);
        return;
    }
    resp->headers[resp->n_headers].name = st_strdup(name);
    resp->headers[resp->n_headers].value = st_strdup(value);
    resp->n_headers++;
}

int st_http_resp_error(const struct st_http_request *req, struct st_http_response *resp, int status,
                       const char *type, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    st_autofree char *msg = NULL;
    if (vasprintf(&msg, fmt, ap) < 0)
        abort();
    va_end(ap);
    enum st_api_family family = req->route ? req->route->family : ST_API_PLAIN;
    st_api_error_render(resp, family, status, type, msg, req->request_id);
    return 0;
}
