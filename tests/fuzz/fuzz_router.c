/* libFuzzer harness for what the API server parses from the network before
 * any handler runs: the request path (splitting, percent-decoding, route
 * matching with parameters, "{rest+}" and 404/405 decisions) and the query
 * string (pairs, '+' and %-decoding, repeated keys). Input: the first byte
 * picks a method, the rest is a request target "path?query".
 * Build and run: see tests/fuzz/README.md. */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "api/http.h"
#include "api/router.h"

static int noop(struct st_http_request *req, struct st_http_response *resp, struct st_err **err)
{
    (void)req;
    (void)resp;
    (void)err;
    return 0;
}

static const char *const methods[] = {"GET",   "HEAD",   "POST",    "PUT",
                                      "PATCH", "DELETE", "OPTIONS", "BREW"};

static struct st_router *router_get(void)
{
    static struct st_router *r;
    if (r)
        return r;
    r = st_router_new(NULL);
    static const char *const patterns[][2] = {
        {"GET", "/"},
        {"GET", "/version"},
        {"GET", "/compute/v2.1/servers"},
        {"POST", "/compute/v2.1/servers"},
        {"GET", "/compute/v2.1/servers/detail"},
        {"GET", "/compute/v2.1/servers/{server_id}"},
        {"DELETE", "/compute/v2.1/servers/{server_id}"},
        {"POST", "/compute/v2.1/servers/{server_id}/action"},
        {"GET", "/identity/v3/projects/{project_id}/users/{user_id}/roles/{role_id}"},
        {"HEAD", "/s3/{bucket}"},
        {"GET", "/s3/{bucket}/{key+}"},
        {"PUT", "/s3/{bucket}/{key+}"},
        {"GET", "/{a}/{b}/{c}/{d}/{e}/{f}/{g}/{h}"},
    };
    for (size_t i = 0; i < sizeof(patterns) / sizeof(patterns[0]); i++) {
        struct st_route route = {
            .method = patterns[i][0], .pattern = patterns[i][1], .action = "fuzz", .handler = noop};
        if (st_router_add(r, &route, NULL) < 0)
            abort();
    }
    return r;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    const char *method = methods[data[0] % (sizeof(methods) / sizeof(methods[0]))];
    char *target = strndup((const char *)data + 1, size - 1); /* stops at a NUL, as MHD does */
    if (!target)
        abort();
    char *query = strchr(target, '?');
    if (query)
        *query++ = '\0';

    size_t len = strlen(target);
    char *storage = malloc(2 * (len + 2));
    struct st_http_path path;
    int r = st_http_path_split(target, len, storage, &path);
    if (r == 0) {
        if (path.decoded[0] != '/' || path.n_seg > ST_ROUTE_MAX_SEGMENTS)
            abort();
        struct st_route_match m;
        r = st_router_match(router_get(), method, &path, &m);
        if (r == 0) {
            for (size_t i = 0; i < m.n_params; i++)
                if (!m.params[i].name || !m.params[i].value || !m.params[i].value[0])
                    abort();
        } else if (r == -EBADRQC) {
            if (!m.allow[0])
                abort();
        } else if (r != -ENOENT) {
            abort();
        }
    } else if (r != -EINVAL && r != -E2BIG) {
        abort();
    }

    if (query) {
        /* through the accessors, as a handler sees it */
        struct st_http_exchange x = {.raw_query = query};
        struct st_http_request req = {.conn = &x};
        const char *vals[4];
        size_t n = st_http_query_all(&req, "fields", vals, 4);
        for (size_t i = 0; i < n; i++)
            if (!vals[i])
                abort();
        (void)st_http_query(&req, "name");
        for (size_t i = 0; i < x.n_query; i++)
            if (!x.query[i].key || !x.query[i].value)
                abort();
        free(x.query);
    }
    free(storage);
    free(target);
    return 0;
}
