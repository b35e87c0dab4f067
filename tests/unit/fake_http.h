/* A tiny HTTP server for the CLI's unit tests, header-only so that every
 * test file that drives the CLI end to end can use it: it answers fixed
 * routes (method, path and query as sent) from a thread on a loopback port,
 * 404 {"error": {"message": "no route"}} for anything else, and keeps
 * what it received (heads, and one "METHOD target body" line per request
 * in `log`) for the test to check. Routes can change their answer after a
 * number of hits (fake_later), for polling and for creates that answer a
 * different object each time. */
#pragma once

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>

#include "lib/cleanup.h"

struct fake_route {
    const char *path;    /* "/x" for GET /x, or "PUT /x"; the query is part of it */
    const char *status;  /* "200 OK" */
    const char *headers; /* extra header lines, each ending in \r\n */
    const char *body;
};

/* A route's answer once it has answered `after` times, for polling (BUILD,
 * then ACTIVE; 200, then 404): route names the route by its path. */
struct fake_later {
    const char *route;
    unsigned after;
    const char *status;
    const char *body;
};

#define FAKE_MAX_ROUTES 64

struct fake_server {
    int fd;
    uint16_t port;
    pthread_t thread;
    const struct fake_route *routes;
    size_t n_routes;
    const struct fake_later *later;
    size_t n_later;
    unsigned hits[FAKE_MAX_ROUTES];
    int stop_pipe[2];
    char requests[65536]; /* every request, head and (small) body, concatenated */
    size_t requests_len;
    char log[32768]; /* "METHOD target body" per request, one a line; large bodies as <N bytes> */
    size_t log_len;
    char *upload; /* the last body over 16 KiB, whole (image uploads) */
    size_t upload_len;
};

/* The Content-Length of a request head, 0 when absent. */
static inline size_t content_length(const char *head)
{
    for (const char *p = head; (p = strchr(p, '\n')); p++)
        if (strncasecmp(p + 1, "Content-Length:", 15) == 0)
            return (size_t)strtoul(p + 16, NULL, 10);
    return 0;
}

static inline void *fake_main(void *arg)
{
    struct fake_server *s = arg;
    for (;;) {
        struct pollfd p[2] = {{s->fd, POLLIN, 0}, {s->stop_pipe[0], POLLIN, 0}};
        if (poll(p, 2, -1) < 0 || (p[1].revents & POLLIN))
            return NULL;
        int c = accept(s->fd, NULL, NULL);
        if (c < 0)
            continue;
        /* the head, and the body: kept whole, read on past the buffer when
         * it is large */
        char req[16384];
        size_t n = 0, want = 0;
        char *end = NULL;
        while (n < sizeof(req) - 1) {
            ssize_t k = read(c, req + n, sizeof(req) - 1 - n);
            if (k <= 0)
                break;
            n += (size_t)k;
            req[n] = '\0';
            if (!end && (end = strstr(req, "\r\n\r\n")))
                want = (size_t)(end + 4 - req) + content_length(req);
            if (end && n >= want)
                break;
        }
        req[n] = '\0';
        size_t body_len = end ? content_length(req) : 0;
        char *body = st_new0(char, body_len + 1);
        size_t have = end ? n - (size_t)(end + 4 - req) : 0;
        if (have > body_len)
            have = body_len;
        if (end)
            memcpy(body, end + 4, have);
        while (have < body_len) {
            ssize_t k = read(c, body + have, body_len - have);
            if (k <= 0)
                break;
            have += (size_t)k;
        }
        bool big = body_len > 16384;
        if (big) {
            free(s->upload);
            s->upload = body;
            s->upload_len = have;
            body = NULL;
        }
        size_t keep = big ? (size_t)(end + 4 - req) : n; /* a large body's head only */
        if (s->requests_len + keep < sizeof(s->requests)) {
            memcpy(s->requests + s->requests_len, req, keep);
            s->requests_len += keep;
            s->requests[s->requests_len] = '\0';
        }
        const char *sp = strchr(req, ' ');
        const char *sp2 = sp ? strchr(sp + 1, ' ') : NULL;
        st_autofree char *method = sp ? st_strndup(req, (size_t)(sp - req)) : st_strdup("");
        st_autofree char *target = sp2 ? st_strndup(sp + 1, (size_t)(sp2 - sp - 1)) : st_strdup("");
        st_autofree char *shown = big ? st_sprintf("<%zu bytes>", have) : st_strdup(body);
        int w = snprintf(s->log + s->log_len, sizeof(s->log) - s->log_len, "%s %s %s\n", method,
                         target, shown);
        if (w > 0 && s->log_len + (size_t)w < sizeof(s->log))
            s->log_len += (size_t)w;
        free(body);

        const struct fake_route *route = NULL;
        size_t ri = 0;
        for (size_t i = 0; i < s->n_routes && !route; i++) {
            const char *path = s->routes[i].path;
            const char *m = "GET";
            st_autofree char *rm = NULL;
            if (path[0] != '/') {
                const char *space = strchr(path, ' ');
                rm = st_strndup(path, (size_t)(space - path));
                m = rm;
                path = space + 1;
            }
            if (strcmp(m, method) == 0 && strcmp(path, target) == 0) {
                route = &s->routes[i];
                ri = i;
            }
        }
        static const struct fake_route missing = {"", "404 Not Found", "",
                                                  "{\"error\": {\"message\": \"no route\"}}"};
        const char *status = route ? route->status : missing.status;
        const char *rbody = route ? route->body : missing.body;
        for (size_t i = 0; route && ri < FAKE_MAX_ROUTES && i < s->n_later; i++)
            if (strcmp(s->later[i].route, route->path) == 0 && s->hits[ri]++ >= s->later[i].after) {
                status = s->later[i].status;
                rbody = s->later[i].body;
            }
        if (!route)
            route = &missing;
        if (!rbody)
            rbody = "";
        st_autofree char *resp =
            st_sprintf("HTTP/1.1 %s\r\nContent-Type: application/json\r\nContent-Length: %zu\r\n"
                       "Connection: close\r\n%s\r\n%s",
                       status, strlen(rbody), route->headers ? route->headers : "", rbody);
        ssize_t wr = write(c, resp, strlen(resp));
        (void)wr;
        close(c);
    }
}

static inline void fake_start_later(struct fake_server *s, const struct fake_route *routes,
                                    size_t n, const struct fake_later *later, size_t n_later)
{
    memset(s, 0, sizeof(*s));
    s->routes = routes;
    s->n_routes = n;
    s->later = later;
    s->n_later = n_later;
    s->fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    assert_true(s->fd >= 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    assert_int_equal(bind(s->fd, (struct sockaddr *)&a, sizeof(a)), 0);
    assert_int_equal(listen(s->fd, 8), 0);
    socklen_t len = sizeof(a);
    assert_int_equal(getsockname(s->fd, (struct sockaddr *)&a, &len), 0);
    s->port = ntohs(a.sin_port);
    assert_int_equal(pipe(s->stop_pipe), 0);
    assert_int_equal(pthread_create(&s->thread, NULL, fake_main, s), 0);
}

static inline void fake_start(struct fake_server *s, const struct fake_route *routes, size_t n)
{
    fake_start_later(s, routes, n, NULL, 0);
}

static inline void fake_stop(struct fake_server *s)
{
    ssize_t w = write(s->stop_pipe[1], "x", 1);
    (void)w;
    pthread_join(s->thread, NULL);
    free(s->upload);
    s->upload = NULL;
    close(s->fd);
    close(s->stop_pipe[0]);
    close(s->stop_pipe[1]);
}
