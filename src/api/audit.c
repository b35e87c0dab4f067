/* The batched audit log; see audit.h. */
#include "audit.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdbool.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "api/router.h"
#include "identity/identity.h"
#include "lib/json.h"
#include "lib/log.h"
#include "lib/times.h"

#define AUDIT_FLUSH_MS    200
#define AUDIT_BUFFER_HIGH (256 * 1024)

struct st_audit {
    int fd;
    pthread_mutex_t lock;    /* the buffer */
    pthread_mutex_t io_lock; /* write + fsync, so batches land in order */
    pthread_cond_t cond;
    pthread_t thread;
    char *buf;
    size_t len, cap;
    bool stopping;
};

static int write_all(int fd, const char *p, size_t len)
{
    while (len > 0) {
        ssize_t n = write(fd, p, len);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return -errno;
        }
        p += n;
        len -= (size_t)n;
    }
    return 0;
}

/* Takes the buffer under the lock, writes and fsyncs it outside. */
static int flush(struct st_audit *a)
{
    pthread_mutex_lock(&a->io_lock);
    pthread_mutex_lock(&a->lock);
    char *buf = a->buf;
    size_t len = a->len;
    a->buf = NULL;
    a->len = a->cap = 0;
    pthread_mutex_unlock(&a->lock);
    int r = 0;
    if (len > 0) {
        r = write_all(a->fd, buf, len);
        if (r == 0 && fdatasync(a->fd) < 0)
            r = -errno;
        if (r < 0)
            st_log_error("audit_write_failed", "error=\"%s\" bytes=%zu", strerror(-r), len);
    }
    pthread_mutex_unlock(&a->io_lock);
    free(buf);
    return r;
}

static void *flusher(void *arg)
{
    struct st_audit *a = arg;
    pthread_mutex_lock(&a->lock);
    for (;;) {
        struct timespec deadline;
        clock_gettime(CLOCK_REALTIME, &deadline);
        deadline.tv_nsec += AUDIT_FLUSH_MS * 1000000L;
        if (deadline.tv_nsec >= 1000000000L) {
            deadline.tv_sec++;
            deadline.tv_nsec -= 1000000000L;
        }
        while (!a->stopping && a->len < AUDIT_BUFFER_HIGH &&
               pthread_cond_timedwait(&a->cond, &a->lock, &deadline) != ETIMEDOUT)
            ;
        bool stopping = a->stopping;
        pthread_mutex_unlock(&a->lock);
        flush(a);
        if (stopping)
            return NULL;
        pthread_mutex_lock(&a->lock);
    }
}

int st_audit_open(const char *path, struct st_audit **ret, struct st_err **err)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
    if (fd < 0)
        return st_err_errno(err, "open audit log %s", path);
    struct st_audit *a = st_new0(struct st_audit, 1);
    a->fd = fd;
    pthread_mutex_init(&a->lock, NULL);
    pthread_mutex_init(&a->io_lock, NULL);
    pthread_cond_init(&a->cond, NULL);
    int r = pthread_create(&a->thread, NULL, flusher, a);
    if (r != 0) {
        close(fd);
        free(a);
        return st_err_set(err, -r, "starting audit flusher: %s", strerror(r));
    }
    *ret = a;
    return 0;
}

void st_audit_record(struct st_audit *a, const struct st_audit_event *ev)
{
    if (!a)
        return;
    char now[ST_TIME_RFC3339_LEN];
    st_time_rfc3339_ms(st_time_now_ms(), now, sizeof(now));
    st_autoptr(json_t) line =
        json_pack("{s:s, s:s?, s:s?, s:s?, s:s?, s:s?, s:s?, s:s?, s:s?, s:i, s:s, s:s?}", "time",
                  now, "request_id", ev->request_id, "user_id", ev->user_id, "user_name",
                  ev->user_name, "project_id", ev->project_id, "action", ev->action, "method",
                  ev->method, "path", ev->path, "target", ev->target, "status", ev->status,
                  "result", ev->status < 400 ? "success" : "failure", "peer", ev->peer);
    if (!line)
        return;
    st_autofree char *text = st_json_dumps(line);
    size_t n = strlen(text);
    pthread_mutex_lock(&a->lock);
    if (a->len + n + 1 > a->cap) {
        a->cap = (a->len + n + 1) * 2;
        a->buf = st_xrealloc(a->buf, a->cap);
    }
    memcpy(a->buf + a->len, text, n);
    a->buf[a->len + n] = '\n';
    a->len += n + 1;
    if (a->len >= AUDIT_BUFFER_HIGH)
        pthread_cond_signal(&a->cond);
    pthread_mutex_unlock(&a->lock);
}

int st_audit_flush(struct st_audit *a, struct st_err **err)
{
    int r = flush(a);
    return r < 0 ? st_err_set(err, r, "writing audit log: %s", strerror(-r)) : 0;
}

void st_audit_close(struct st_audit *a)
{
    if (!a)
        return;
    pthread_mutex_lock(&a->lock);
    a->stopping = true;
    pthread_cond_signal(&a->cond);
    pthread_mutex_unlock(&a->lock);
    pthread_join(a->thread, NULL);
    close(a->fd);
    pthread_mutex_destroy(&a->lock);
    pthread_mutex_destroy(&a->io_lock);
    pthread_cond_destroy(&a->cond);
    free(a->buf);
    free(a);
}

static void observe(const struct st_http_request *req, int status, void *userdata)
{
    const char *m = req->method;
    if (!m || strcmp(m, "GET") == 0 || strcmp(m, "HEAD") == 0 || strcmp(m, "OPTIONS") == 0)
        return;
    const struct st_token *t = req->auth;
    /* The last path parameter names the target ("/servers/{server_id}"). */
    const char *target = req->n_params ? req->params[req->n_params - 1].value : NULL;
    struct st_audit_event ev = {
        .request_id = req->request_id,
        .user_id = t ? t->user_id : NULL,
        .user_name = t ? t->user_name : NULL,
        .project_id = t ? t->project_id : NULL,
        .action = req->route->action,
        .method = m,
        .path = req->path,
        .target = target,
        .status = status,
        .peer = req->peer,
    };
    st_audit_record(userdata, &ev);
}

void st_api_audit_install(struct st_router *r, struct st_audit *a)
{
    st_router_set_observer(r, observe, a);
}
