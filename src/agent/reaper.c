/* Child subreaper and its reaping thread; see reaper.h. */
#include "agent/reaper.h"

#include <dirent.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "lib/cleanup.h"
#include "lib/log.h"
#include "lib/times.h"

#define REAPER_TICK_MS     100
#define REAPER_MAX_ZOMBIES 256
#define REAPER_HISTORY     256

struct zombie {
    pid_t pid;
    int64_t first_seen_ns;
};

struct st_reaper {
    pthread_t thread;
    pthread_mutex_t lock;
    pthread_cond_t cond;
    bool stop;
    unsigned grace_ms;
    struct zombie seen[REAPER_MAX_ZOMBIES];
    size_t n_seen;
};

/* Recently reaped: shared by every reaper (a process has one anyway). */
static pthread_mutex_t history_lock = PTHREAD_MUTEX_INITIALIZER;
static struct {
    pid_t pid;
    int status;
} history[REAPER_HISTORY];
static size_t history_next;
static unsigned long reaped_total;

int st_reaper_exit_status(pid_t pid, int *ret_status)
{
    int r = -ENOENT;
    pthread_mutex_lock(&history_lock);
    for (size_t i = 0; i < REAPER_HISTORY; i++) {
        /* newest first, so a recycled pid gives its latest life */
        size_t j = (history_next + REAPER_HISTORY - 1 - i) % REAPER_HISTORY;
        if (history[j].pid == pid && pid > 0) {
            *ret_status = history[j].status;
            r = 0;
            break;
        }
    }
    pthread_mutex_unlock(&history_lock);
    return r;
}

unsigned long st_reaper_count(void)
{
    pthread_mutex_lock(&history_lock);
    unsigned long n = reaped_total;
    pthread_mutex_unlock(&history_lock);
    return n;
}

static void remember(pid_t pid, int status)
{
    pthread_mutex_lock(&history_lock);
    history[history_next].pid = pid;
    history[history_next].status = status;
    history_next = (history_next + 1) % REAPER_HISTORY;
    reaped_total++;
    pthread_mutex_unlock(&history_lock);
}

/* True when /proc/<pid>/stat says a zombie whose parent is us. */
static bool is_our_zombie(pid_t pid, pid_t self)
{
    char path[64], buf[512];
    snprintf(path, sizeof(path), "/proc/%d/stat", pid);
    FILE *f = fopen(path, "re");
    if (!f)
        return false;
    size_t n = fread(buf, 1, sizeof(buf) - 1, f);
    fclose(f);
    buf[n] = '\0';
    /* "pid (comm) S ppid ...": comm may hold spaces and parens; the last ')' ends it. */
    char *p = strrchr(buf, ')');
    char state;
    int ppid;
    if (!p || sscanf(p + 1, " %c %d", &state, &ppid) != 2)
        return false;
    return state == 'Z' && ppid == self;
}

static void scan_and_reap(struct st_reaper *r)
{
    pid_t self = getpid();
    int64_t now = st_time_mono_ns();
    struct zombie found[REAPER_MAX_ZOMBIES];
    size_t n_found = 0;
    DIR *d = opendir("/proc");
    if (!d)
        return;
    struct dirent *de;
    while ((de = readdir(d)) && n_found < REAPER_MAX_ZOMBIES) {
        char *end;
        long pid = strtol(de->d_name, &end, 10);
        if (*end || pid <= 0 || !is_our_zombie((pid_t)pid, self))
            continue;
        int64_t first = now;
        for (size_t i = 0; i < r->n_seen; i++)
            if (r->seen[i].pid == pid)
                first = r->seen[i].first_seen_ns;
        found[n_found++] = (struct zombie){(pid_t)pid, first};
    }
    closedir(d);

    r->n_seen = 0;
    for (size_t i = 0; i < n_found; i++) {
        if (now - found[i].first_seen_ns < (int64_t)r->grace_ms * 1000000) {
            r->seen[r->n_seen++] = found[i];
            continue;
        }
        int status;
        pid_t got = waitpid(found[i].pid, &status, WNOHANG);
        if (got == found[i].pid) {
            remember(got, status);
            st_log_debug("agent_reaped", "pid=%d status=%d", got, status);
        }
    }
}

static void *reaper_main(void *arg)
{
    struct st_reaper *r = arg;
    pthread_mutex_lock(&r->lock);
    while (!r->stop) {
        pthread_mutex_unlock(&r->lock);
        siginfo_t si = {0};
        if (waitid(P_ALL, 0, &si, WEXITED | WNOHANG | WNOWAIT) == 0 && si.si_pid != 0)
            scan_and_reap(r);
        else
            r->n_seen = 0;
        pthread_mutex_lock(&r->lock);
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        ts.tv_nsec += REAPER_TICK_MS * 1000000L;
        if (ts.tv_nsec >= 1000000000L) {
            ts.tv_sec++;
            ts.tv_nsec -= 1000000000L;
        }
        if (!r->stop)
            pthread_cond_timedwait(&r->cond, &r->lock, &ts);
    }
    pthread_mutex_unlock(&r->lock);
    return NULL;
}

int st_reaper_start(unsigned grace_ms, struct st_reaper **ret, struct st_err **err)
{
    if (prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) < 0)
        return st_err_errno(err, "prctl(PR_SET_CHILD_SUBREAPER)");
    struct st_reaper *r = st_new0(struct st_reaper, 1);
    r->grace_ms = grace_ms;
    pthread_mutex_init(&r->lock, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&r->cond, &ca);
    pthread_condattr_destroy(&ca);
    int e = pthread_create(&r->thread, NULL, reaper_main, r);
    if (e) {
        pthread_mutex_destroy(&r->lock);
        pthread_cond_destroy(&r->cond);
        free(r);
        return st_err_set(err, -e, "starting reaper thread: %s", strerror(e));
    }
    *ret = r;
    return 0;
}

void st_reaper_stop(struct st_reaper *r)
{
    if (!r)
        return;
    pthread_mutex_lock(&r->lock);
    r->stop = true;
    pthread_cond_signal(&r->cond);
    pthread_mutex_unlock(&r->lock);
    pthread_join(r->thread, NULL);
    pthread_mutex_destroy(&r->lock);
    pthread_cond_destroy(&r->cond);
    free(r);
}
