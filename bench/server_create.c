/* bench_server_create: the Nova API client of bench/server-create.sh and
 * bench/compute-scale.sh. It speaks HTTP with libcurl (one kept-alive
 * connection for sequential work, curl multi for concurrent work), so the
 * figures are the server's and not a CLI's start-up cost: `openstack server
 * create` alone spends ~1 s in Python before its first request.
 *
 *   bench_server_create [opts] COMPUTE_URL seq N FLAVOR IMAGE
 *       N servers one after another: POST /servers, then GET /servers/{id}
 *       every poll interval until ACTIVE; the latency is POST to the first
 *       GET that answers ACTIVE. Each server is then deleted and awaited
 *       (404) before the next, untimed, so every create meets an idle node.
 *       One unmeasured server first: it unpacks the image into the node's
 *       cache, a once-per-node cost reported on its own.
 *   bench_server_create [opts] COMPUTE_URL par N FLAVOR IMAGE
 *       N POSTs at once (at most -c in flight), then GET /servers/detail
 *       every poll interval until every accepted server is ACTIVE or ERROR.
 *   bench_server_create [opts] COMPUTE_URL delete-all
 *       DELETE every server the token's project lists (at most -c in
 *       flight), then wait until the list is empty.
 *   bench_server_create [opts] COMPUTE_URL get PATH N
 *       N sequential GETs of COMPUTE_URL PATH: latency p50/p95/max.
 * Options: -p poll interval in ms (seq 2, par 20), -c requests in flight
 * (100), -w timeout in seconds per wait (120), -x server name prefix
 * ("bench"). The token is $OS_TOKEN (a Keystone token: `openstack token
 * issue`). Results are printed as one line of key=value per mode on stdout
 * for the scripts to read; problems go to stderr. */
#include <curl/curl.h>
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "lib/cleanup.h"
#include "lib/json.h"
#include "lib/times.h"

#define BODY_MAX (256 * 1024 * 1024)

static const char *base_url;
static struct curl_slist *headers;
static int poll_ms = -1;
static int in_flight = 100;
static int timeout_s = 120;
static const char *prefix = "bench";

struct buf {
    char *data;
    size_t len, cap;
};

static size_t on_body(char *p, size_t size, size_t n, void *userdata)
{
    struct buf *b = userdata;
    size_t add = size * n;
    if (b->len + add + 1 > BODY_MAX)
        return 0;
    if (b->len + add + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 4096;
        while (cap < b->len + add + 1)
            cap *= 2;
        b->data = realloc(b->data, cap);
        if (!b->data)
            abort();
        b->cap = cap;
    }
    memcpy(b->data + b->len, p, add);
    b->len += add;
    b->data[b->len] = '\0';
    return add;
}

static double ms_since(int64_t t0)
{
    return (double)(st_time_mono_ns() - t0) / 1e6;
}

static void sleep_ms(int ms)
{
    struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
        ;
}

/* Sets up handle for METHOD base_url+path with body; the response goes to b. */
static void prepare(CURL *h, const char *method, const char *path, const char *body, struct buf *b)
{
    st_autofree char *url = st_sprintf("%s%s", base_url, path);
    b->len = 0;
    if (b->data)
        b->data[0] = '\0';
    curl_easy_setopt(h, CURLOPT_URL, url);
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, headers);
    curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, method);
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h, CURLOPT_TIMEOUT, (long)timeout_s);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, b);
    if (body) {
        curl_easy_setopt(h, CURLOPT_POSTFIELDS, body);
        curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE, (long)strlen(body));
    } else {
        curl_easy_setopt(h, CURLOPT_HTTPGET, 1L);
        curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, method);
    }
}

/* One request on the kept-alive handle; returns the HTTP status, or -1. */
static long request(CURL *h, const char *method, const char *path, const char *body, struct buf *b)
{
    prepare(h, method, path, body, b);
    CURLcode rc = curl_easy_perform(h);
    if (rc != CURLE_OK) {
        fprintf(stderr, "bench_server_create: %s %s: %s\n", method, path, curl_easy_strerror(rc));
        return -1;
    }
    long code = 0;
    curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &code);
    return code;
}

static json_t *parse(const struct buf *b)
{
    return b->data ? json_loadb(b->data, b->len, 0, NULL) : NULL;
}

static const char *server_field(json_t *server, const char *key)
{
    return json_string_value(json_object_get(server, key));
}

static char *create_body(const char *name, const char *flavor, const char *image)
{
    st_autoptr(json_t) body = json_pack("{s:{s:s, s:s, s:s}}", "server", "name", name, "flavorRef",
                                        flavor, "imageRef", image);
    return st_json_dumps(body);
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* Nearest-rank percentile of a sorted array. */
static double pct(const double *v, int n, int p)
{
    if (n <= 0)
        return 0;
    return v[(p * (n - 1) + 50) / 100];
}

/* Polls GET /servers/{id} until its status is ACTIVE (returns 0) or ERROR or
 * the timeout (returns -1, with the reason printed). */
static int wait_active(CURL *h, struct buf *b, const char *id)
{
    st_autofree char *path = st_sprintf("/servers/%s", id);
    int64_t t0 = st_time_mono_ns();
    while (ms_since(t0) < timeout_s * 1000.0) {
        long code = request(h, "GET", path, NULL, b);
        if (code == 200) {
            st_autoptr(json_t) doc = parse(b);
            json_t *server = json_object_get(doc, "server");
            const char *status = server_field(server, "status");
            if (status && strcmp(status, "ACTIVE") == 0)
                return 0;
            if (status && strcmp(status, "ERROR") == 0) {
                json_t *fault = json_object_get(server, "fault");
                fprintf(stderr, "bench_server_create: server %s: ERROR: %s\n", id,
                        server_field(fault, "message") ?: "(no fault)");
                return -1;
            }
        } else {
            fprintf(stderr, "bench_server_create: GET %s: %ld %s\n", path, code,
                    b->data ? b->data : "");
            return -1;
        }
        sleep_ms(poll_ms);
    }
    fprintf(stderr, "bench_server_create: server %s: not ACTIVE after %d s\n", id, timeout_s);
    return -1;
}

/* DELETE /servers/{id}, then wait until it answers 404. */
static int delete_wait(CURL *h, struct buf *b, const char *id)
{
    st_autofree char *path = st_sprintf("/servers/%s", id);
    long code = request(h, "DELETE", path, NULL, b);
    if (code != 204 && code != 404) {
        fprintf(stderr, "bench_server_create: DELETE %s: %ld %s\n", path, code,
                b->data ? b->data : "");
        return -1;
    }
    int64_t t0 = st_time_mono_ns();
    while (ms_since(t0) < timeout_s * 1000.0) {
        if (request(h, "GET", path, NULL, b) == 404)
            return 0;
        sleep_ms(5);
    }
    fprintf(stderr, "bench_server_create: server %s: still there %d s after DELETE\n", id,
            timeout_s);
    return -1;
}

static int run_seq(int n, const char *flavor, const char *image)
{
    CURL *h = curl_easy_init();
    struct buf b = {0};
    double *lat = st_new0(double, (size_t)n + 1);
    double *del = st_new0(double, (size_t)n + 1);
    int measured = 0, errors = 0;
    double first_ms = 0;
    for (int i = 0; i <= n; i++) {
        st_autofree char *name = st_sprintf("%s-seq-%d", prefix, i);
        st_autofree char *body = create_body(name, flavor, image);
        int64_t t0 = st_time_mono_ns();
        long code = request(h, "POST", "/servers", body, &b);
        st_autoptr(json_t) doc = code == 202 ? parse(&b) : NULL;
        const char *id = server_field(json_object_get(doc, "server"), "id");
        if (!id) {
            fprintf(stderr, "bench_server_create: POST /servers: %ld %s\n", code,
                    b.data ? b.data : "");
            errors++;
            continue;
        }
        st_autofree char *sid = st_strdup(id);
        int ok = wait_active(h, &b, sid);
        double ms = ms_since(t0);
        if (ok < 0)
            errors++;
        else if (i == 0)
            first_ms = ms;
        else
            lat[measured++] = ms;
        int64_t t1 = st_time_mono_ns();
        if (delete_wait(h, &b, sid) < 0)
            errors++;
        del[i] = ms_since(t1);
    }
    qsort(lat, (size_t)measured, sizeof(*lat), cmp_double);
    qsort(del, (size_t)n + 1, sizeof(*del), cmp_double);
    printf("seq n=%d measured=%d errors=%d first_ms=%.1f p50_ms=%.1f p95_ms=%.1f max_ms=%.1f "
           "min_ms=%.1f delete_p50_ms=%.1f poll_ms=%d\n",
           n, measured, errors, first_ms, pct(lat, measured, 50), pct(lat, measured, 95),
           measured ? lat[measured - 1] : 0, measured ? lat[0] : 0, pct(del, n + 1, 50), poll_ms);
    free(lat);
    free(del);
    free(b.data);
    curl_easy_cleanup(h);
    return errors ? 1 : 0;
}

struct job {
    CURL *h;
    struct buf b;
    char *body;
    char *path;
    long code;
};

/* Runs jobs[0..n) through curl multi with at most in_flight at a time;
 * fills each job's code (-1 on a transport error). */
static void run_jobs(struct job *jobs, int n, const char *method)
{
    CURLM *m = curl_multi_init();
    curl_multi_setopt(m, CURLMOPT_MAX_TOTAL_CONNECTIONS, (long)in_flight);
    curl_multi_setopt(m, CURLMOPT_MAX_HOST_CONNECTIONS, (long)in_flight);
    int next = 0, running = 0;
    while (next < n || running > 0) {
        while (next < n && running < in_flight) {
            struct job *j = &jobs[next++];
            j->h = curl_easy_init();
            prepare(j->h, method, j->path, j->body, &j->b);
            curl_easy_setopt(j->h, CURLOPT_PRIVATE, j);
            curl_multi_add_handle(m, j->h);
            running++;
        }
        int still;
        curl_multi_perform(m, &still);
        CURLMsg *msg;
        int left;
        while ((msg = curl_multi_info_read(m, &left))) {
            if (msg->msg != CURLMSG_DONE)
                continue;
            struct job *j;
            curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, (char **)&j);
            if (msg->data.result == CURLE_OK)
                curl_easy_getinfo(j->h, CURLINFO_RESPONSE_CODE, &j->code);
            else {
                j->code = -1;
                fprintf(stderr, "bench_server_create: %s %s: %s\n", method, j->path,
                        curl_easy_strerror(msg->data.result));
            }
            curl_multi_remove_handle(m, j->h);
            curl_easy_cleanup(j->h);
            j->h = NULL;
            running--;
        }
        if (running > 0)
            curl_multi_poll(m, NULL, 0, 100, NULL);
    }
    curl_multi_cleanup(m);
}

static void jobs_free(struct job *jobs, int n)
{
    for (int i = 0; i < n; i++) {
        free(jobs[i].b.data);
        free(jobs[i].body);
        free(jobs[i].path);
    }
    free(jobs);
}

static int run_par(int n, const char *flavor, const char *image)
{
    struct job *jobs = st_new0(struct job, (size_t)n);
    for (int i = 0; i < n; i++) {
        st_autofree char *name = st_sprintf("%s-par-%d", prefix, i);
        jobs[i].body = create_body(name, flavor, image);
        jobs[i].path = st_strdup("/servers");
    }
    int64_t t0 = st_time_mono_ns();
    run_jobs(jobs, n, "POST");
    double posted_ms = ms_since(t0);

    /* id -> last seen status (and fault), for the servers the API accepted */
    st_autoptr(json_t) mine = json_object();
    st_autoptr(json_t) faults = json_object();
    int post_errors = 0;
    for (int i = 0; i < n; i++) {
        st_autoptr(json_t) doc = jobs[i].code == 202 ? parse(&jobs[i].b) : NULL;
        const char *id = server_field(json_object_get(doc, "server"), "id");
        if (id) {
            json_object_set_new(mine, id, json_string("BUILD"));
            continue;
        }
        if (post_errors++ < 5)
            fprintf(stderr, "bench_server_create: POST /servers: %ld %s\n", jobs[i].code,
                    jobs[i].b.data ? jobs[i].b.data : "");
    }
    jobs_free(jobs, n);

    CURL *h = curl_easy_init();
    struct buf b = {0};
    int active = 0, failed = 0, polls = 0, poll_failures = 0;
    int accepted = (int)json_object_size(mine);
    double done_ms = 0, list_ms_max = 0;
    while (ms_since(t0) < timeout_s * 1000.0) {
        int64_t tl = st_time_mono_ns();
        long code = request(h, "GET", "/servers/detail", NULL, &b);
        double list_ms = ms_since(tl);
        polls++;
        if (list_ms > list_ms_max)
            list_ms_max = list_ms;
        if (code != 200 && ++poll_failures >= 20) {
            fprintf(stderr,
                    "bench_server_create: GET /servers/detail failed 20 times; giving up\n");
            break;
        }
        if (code == 200)
            poll_failures = 0;
        st_autoptr(json_t) doc = code == 200 ? parse(&b) : NULL;
        json_t *servers = json_object_get(doc, "servers"), *s;
        size_t i;
        json_array_foreach(servers, i, s)
        {
            const char *id = server_field(s, "id"), *status = server_field(s, "status");
            if (id && status && json_object_get(mine, id))
                json_object_set_new(mine, id, json_string(status));
            const char *fault = server_field(json_object_get(s, "fault"), "message");
            if (id && fault && json_object_get(mine, id))
                json_object_set_new(faults, id, json_string(fault));
        }
        active = failed = 0;
        const char *id;
        json_t *v;
        json_object_foreach(mine, id, v)
        {
            active += strcmp(json_string_value(v), "ACTIVE") == 0;
            failed += strcmp(json_string_value(v), "ERROR") == 0;
        }
        if (active + failed == accepted) {
            done_ms = ms_since(t0);
            break;
        }
        sleep_ms(poll_ms);
    }
    if (!done_ms)
        done_ms = ms_since(t0);
    const char *id;
    json_t *v;
    int shown = 0;
    json_object_foreach(mine, id, v)
    {
        if (strcmp(json_string_value(v), "ACTIVE") != 0 && shown++ < 5)
            fprintf(stderr, "bench_server_create: server %s: %s %s\n", id, json_string_value(v),
                    json_string_value(json_object_get(faults, id)) ?: "");
    }
    int not_active = n - active;
    printf("par n=%d in_flight=%d accepted=%d post_errors=%d posted_ms=%.1f all_done_ms=%.1f "
           "active=%d error=%d not_active=%d polls=%d poll_ms=%d list_ms_max=%.1f\n",
           n, in_flight, accepted, post_errors, posted_ms, done_ms, active, failed, not_active,
           polls, poll_ms, list_ms_max);
    free(b.data);
    curl_easy_cleanup(h);
    return not_active ? 1 : 0;
}

/* Every server id the token's project lists; NULL on failure. */
static json_t *list_ids(CURL *h, struct buf *b)
{
    if (request(h, "GET", "/servers", NULL, b) != 200) {
        fprintf(stderr, "bench_server_create: GET /servers: %s\n", b->data ? b->data : "");
        return NULL;
    }
    st_autoptr(json_t) doc = parse(b);
    json_t *ids = json_array(), *s;
    size_t i;
    json_array_foreach(json_object_get(doc, "servers"), i, s)
    {
        json_array_append(ids, json_object_get(s, "id"));
    }
    return ids;
}

static int run_delete_all(void)
{
    CURL *h = curl_easy_init();
    struct buf b = {0};
    int rc = 1;
    int64_t t0 = st_time_mono_ns();
    st_autoptr(json_t) ids = list_ids(h, &b);
    if (!ids)
        goto out;
    int n = (int)json_array_size(ids), errors = 0;
    struct job *jobs = st_new0(struct job, (size_t)n);
    for (int i = 0; i < n; i++)
        jobs[i].path = st_sprintf("/servers/%s", json_string_value(json_array_get(ids, i)));
    run_jobs(jobs, n, "DELETE");
    for (int i = 0; i < n; i++) {
        if (jobs[i].code != 204 && jobs[i].code != 404 && errors++ < 5)
            fprintf(stderr, "bench_server_create: DELETE %s: %ld %s\n", jobs[i].path, jobs[i].code,
                    jobs[i].b.data ? jobs[i].b.data : "");
    }
    jobs_free(jobs, n);
    size_t left = (size_t)n;
    while (ms_since(t0) < timeout_s * 1000.0) {
        st_autoptr(json_t) now = list_ids(h, &b);
        left = now ? json_array_size(now) : left;
        if (now && left == 0)
            break;
        sleep_ms(poll_ms);
    }
    printf("delete-all n=%d errors=%d left=%zu ms=%.1f\n", n, errors, left, ms_since(t0));
    rc = errors || left ? 1 : 0;
out:
    free(b.data);
    curl_easy_cleanup(h);
    return rc;
}

static int run_get(const char *path, int n)
{
    CURL *h = curl_easy_init();
    struct buf b = {0};
    double *lat = st_new0(double, (size_t)n);
    int errors = 0;
    request(h, "GET", path, NULL, &b); /* connection and token cache warm */
    for (int i = 0; i < n; i++) {
        int64_t t0 = st_time_mono_ns();
        long code = request(h, "GET", path, NULL, &b);
        lat[i] = ms_since(t0);
        errors += code != 200;
    }
    qsort(lat, (size_t)n, sizeof(*lat), cmp_double);
    printf("get path=%s n=%d errors=%d bytes=%zu p50_ms=%.1f p95_ms=%.1f max_ms=%.1f\n", path, n,
           errors, b.len, pct(lat, n, 50), pct(lat, n, 95), lat[n - 1]);
    free(lat);
    free(b.data);
    curl_easy_cleanup(h);
    return errors ? 1 : 0;
}

static int usage(const char *argv0)
{
    fprintf(stderr,
            "usage: %s [-p poll_ms] [-c in_flight] [-w timeout_s] [-x prefix] COMPUTE_URL\n"
            "           seq N FLAVOR IMAGE | par N FLAVOR IMAGE | delete-all | get PATH N\n"
            "       the Keystone token is read from $OS_TOKEN\n",
            argv0);
    return 2;
}

int main(int argc, char **argv)
{
    int opt;
    while ((opt = getopt(argc, argv, "p:c:w:x:")) != -1) {
        switch (opt) {
        case 'p':
            poll_ms = atoi(optarg);
            break;
        case 'c':
            in_flight = atoi(optarg);
            break;
        case 'w':
            timeout_s = atoi(optarg);
            break;
        case 'x':
            prefix = optarg;
            break;
        default:
            return usage(argv[0]);
        }
    }
    const char *token = getenv("OS_TOKEN");
    if (argc - optind < 2 || !token || !token[0] || in_flight < 1 || timeout_s < 1)
        return usage(argv[0]);
    base_url = argv[optind];
    const char *mode = argv[optind + 1];
    char **rest = argv + optind + 2;
    int nrest = argc - optind - 2;

    curl_global_init(CURL_GLOBAL_DEFAULT);
    st_autofree char *auth = st_sprintf("X-Auth-Token: %s", token);
    headers = curl_slist_append(NULL, auth);
    headers = curl_slist_append(headers, "Content-Type: application/json");
    headers = curl_slist_append(headers, "Accept: application/json");
    /* no "Expect: 100-continue" round trip before a POST body */
    headers = curl_slist_append(headers, "Expect:");

    int rc;
    if (strcmp(mode, "seq") == 0 && nrest == 3 && atoi(rest[0]) > 0) {
        poll_ms = poll_ms < 0 ? 2 : poll_ms;
        rc = run_seq(atoi(rest[0]), rest[1], rest[2]);
    } else if (strcmp(mode, "par") == 0 && nrest == 3 && atoi(rest[0]) > 0) {
        poll_ms = poll_ms < 0 ? 20 : poll_ms;
        rc = run_par(atoi(rest[0]), rest[1], rest[2]);
    } else if (strcmp(mode, "delete-all") == 0 && nrest == 0) {
        poll_ms = poll_ms < 0 ? 20 : poll_ms;
        rc = run_delete_all();
    } else if (strcmp(mode, "get") == 0 && nrest == 2 && atoi(rest[1]) > 0) {
        rc = run_get(rest[0], atoi(rest[1]));
    } else {
        rc = usage(argv[0]);
    }
    curl_slist_free_all(headers);
    curl_global_cleanup();
    return rc;
}
