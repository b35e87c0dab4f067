/* Network namespaces named by a path, and work done inside them.
 *
 * A namespace outlives the thread that made it because it is bind-mounted
 * on a file (as `ip netns add` does under /run/netns): creating one is a
 * short-lived thread that unshares its network namespace, brings "lo" up
 * and bind-mounts /proc/thread-self/ns/net on the file. Work inside a
 * namespace runs on another short-lived thread that setns()es into it and
 * exits when done, so no long-lived thread of the daemon ever changes
 * namespace (a thread that did would silently send every later netlink
 * request, sysctl and socket of its own into the wrong namespace).
 *
 * Namespace files are created and removed under one process-wide lock, so
 * two concurrent creates of one path cannot stack two mounts on it. */
#include <errno.h>
#include <fcntl.h>
#include <linux/magic.h>
#include <pthread.h>
#include <sched.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <unistd.h>

#include "lib/cleanup.h"
#include "net/net-priv.h"

static pthread_mutex_t netns_lock = PTHREAD_MUTEX_INITIALIZER;

static int netns_check_path(const char *path, struct st_err **err)
{
    if (!path || path[0] != '/')
        return st_err_set(err, -EINVAL, "namespace path '%s' is not absolute",
                          path ? path : "(null)");
    return 0;
}

bool st_net_netns_exists(const char *path)
{
    struct statfs sfs;
    if (!path || statfs(path, &sfs) < 0)
        return false;
    return sfs.f_type == NSFS_MAGIC;
}

struct netns_call {
    const char *path;
    int (*fn)(void *userdata, struct st_err **err);
    void *userdata;
    struct st_err **err;
    int ret;
};

static void *netns_run_thread(void *arg)
{
    struct netns_call *call = arg;
    st_autoclose int fd = open(call->path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        call->ret = st_err_errno(call->err, "entering namespace %s", call->path);
        return NULL;
    }
    struct statfs sfs;
    if (fstatfs(fd, &sfs) < 0 || sfs.f_type != NSFS_MAGIC) {
        call->ret = st_err_set(call->err, -ENOENT,
                               "entering namespace %s: no namespace is bound there", call->path);
        return NULL;
    }
    if (setns(fd, CLONE_NEWNET) < 0) {
        call->ret = st_err_errno(call->err, "entering namespace %s", call->path);
        return NULL;
    }
    call->ret = call->fn(call->userdata, call->err);
    return NULL;
}

static int netns_spawn(void *(*start)(void *), struct netns_call *call, struct st_err **err)
{
    pthread_t thread;
    int r = pthread_create(&thread, NULL, start, call);
    if (r != 0)
        return st_err_set(err, -r, "starting a namespace thread: %s", strerror(r));
    pthread_join(thread, NULL);
    return call->ret;
}

int st_net_netns_run(const char *path, int (*fn)(void *userdata, struct st_err **err),
                     void *userdata, struct st_err **err)
{
    /* The caller's own namespace needs no thread: nobody else's namespace
     * is ever entered on the caller's thread. */
    if (!path)
        return fn(userdata, err);
    int r = netns_check_path(path, err);
    if (r < 0)
        return r;
    struct netns_call call = {.path = path, .fn = fn, .userdata = userdata, .err = err};
    return netns_spawn(netns_run_thread, &call, err);
}

static int lo_up(struct st_err **err)
{
    st_autoptr(st_net) net = NULL;
    int r = st_net_open(NULL, &net, err);
    if (r < 0)
        return r;
    return st_net_link_set_up(net, "lo", err);
}

static void *netns_create_thread(void *arg)
{
    struct netns_call *call = arg;
    if (unshare(CLONE_NEWNET) < 0) {
        call->ret = st_err_errno(call->err, "creating namespace %s", call->path);
        return NULL;
    }
    call->ret = lo_up(call->err);
    if (call->ret < 0) {
        call->ret = st_err_prefix(call->err, call->ret, "creating namespace %s", call->path);
        return NULL;
    }
    if (mount("/proc/thread-self/ns/net", call->path, "none", MS_BIND, NULL) < 0) {
        call->ret = st_err_errno(call->err, "binding namespace on %s", call->path);
        return NULL;
    }
    call->ret = 0;
    return NULL;
}

int st_net_netns_create(const char *path, struct st_err **err)
{
    int r = netns_check_path(path, err);
    if (r < 0)
        return r;
    pthread_mutex_lock(&netns_lock);
    if (st_net_netns_exists(path)) {
        pthread_mutex_unlock(&netns_lock);
        return 0;
    }
    /* A file left by a crash between create and mount is reused. */
    int fd = open(path, O_RDONLY | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0) {
        r = st_err_errno(err, "creating namespace file %s", path);
        pthread_mutex_unlock(&netns_lock);
        return r;
    }
    close(fd);
    struct netns_call call = {.path = path, .err = err};
    r = netns_spawn(netns_create_thread, &call, err);
    if (r < 0)
        unlink(path);
    pthread_mutex_unlock(&netns_lock);
    return r;
}

int st_net_netns_delete(const char *path, struct st_err **err)
{
    int r = netns_check_path(path, err);
    if (r < 0)
        return r;
    pthread_mutex_lock(&netns_lock);
    /* Mounts may be stacked (an older create raced with a foreign one):
     * peel them all; EINVAL means nothing is mounted there any more. */
    for (int i = 0; i < 16 && st_net_netns_exists(path); i++) {
        if (umount2(path, MNT_DETACH) < 0 && errno != EINVAL) {
            r = st_err_errno(err, "unmounting namespace %s", path);
            pthread_mutex_unlock(&netns_lock);
            return r;
        }
    }
    if (unlink(path) < 0 && errno != ENOENT)
        r = st_err_errno(err, "removing namespace file %s", path);
    pthread_mutex_unlock(&netns_lock);
    return r;
}

struct sysctl_write {
    const char *key;
    const char *value;
};

static int sysctl_write_here(void *userdata, struct st_err **err)
{
    struct sysctl_write *w = userdata;
    st_autofree char *path = st_sprintf("/proc/sys/%s", w->key);
    /* /proc/sys/net resolves against the namespace of the opening thread. */
    st_autoclose int fd = open(path, O_WRONLY | O_CLOEXEC);
    if (fd < 0)
        return st_err_errno(err, "setting sysctl %s", w->key);
    size_t len = strlen(w->value);
    ssize_t n = write(fd, w->value, len);
    if (n < 0)
        return st_err_errno(err, "setting sysctl %s to %s", w->key, w->value);
    if ((size_t)n != len)
        return st_err_set(err, -EIO, "setting sysctl %s to %s: short write", w->key, w->value);
    return 0;
}

static bool sysctl_key_valid(const char *key)
{
    if (!key || !key[0] || key[0] == '/' || strstr(key, "..") || strstr(key, "//"))
        return false;
    for (const char *p = key; *p; p++) {
        if (!(('a' <= *p && *p <= 'z') || ('A' <= *p && *p <= 'Z') || ('0' <= *p && *p <= '9') ||
              *p == '_' || *p == '-' || *p == '.' || *p == '/'))
            return false;
    }
    return true;
}

int st_net_sysctl_set(const char *netns, const char *key, const char *value, struct st_err **err)
{
    if (!sysctl_key_valid(key))
        return st_err_set(err, -EINVAL, "invalid sysctl name '%s'", key ? key : "(null)");
    if (!value || strchr(value, '\n'))
        return st_err_set(err, -EINVAL, "invalid value for sysctl %s", key);
    struct sysctl_write w = {.key = key, .value = value};
    return st_net_netns_run(netns, sysctl_write_here, &w, err);
}
