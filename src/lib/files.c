/* Paths and files; see files.h. */
#include "files.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cleanup.h"

bool st_path_component_valid(const char *name)
{
    if (!name || !name[0] || strcmp(name, ".") == 0 || strcmp(name, "..") == 0)
        return false;
    size_t n = 0;
    for (const unsigned char *p = (const unsigned char *)name; *p; p++, n++) {
        if (*p == '/' || *p < 0x20 || *p == 0x7f || n >= ST_NAME_MAX)
            return false;
    }
    return true;
}

int st_path_join(const char *base, const char *name, char **ret, struct st_err **err)
{
    if (!st_path_component_valid(name))
        return st_err_set(err, -EINVAL,
                          "invalid name '%s': must be 1-%d characters, not '.' or "
                          "'..', without '/' or control characters",
                          name ? name : "", ST_NAME_MAX);
    size_t bl = strlen(base);
    *ret = st_sprintf("%s%s%s", base, bl && base[bl - 1] == '/' ? "" : "/", name);
    return 0;
}

int st_path_join_rel(const char *base, const char *rel, char **ret, struct st_err **err)
{
    if (!rel || !rel[0] || rel[0] == '/')
        return st_err_set(err, -EINVAL, "invalid relative path '%s'", rel ? rel : "");
    st_autofree char *copy = st_strdup(rel);
    char *save = NULL;
    size_t len = strlen(rel);
    if (rel[len - 1] == '/' || strstr(rel, "//"))
        return st_err_set(err, -EINVAL, "invalid relative path '%s': empty component", rel);
    for (char *c = strtok_r(copy, "/", &save); c; c = strtok_r(NULL, "/", &save)) {
        if (!st_path_component_valid(c))
            return st_err_set(err, -EINVAL, "invalid relative path '%s': bad component '%s'", rel,
                              c);
    }
    size_t bl = strlen(base);
    *ret = st_sprintf("%s%s%s", base, bl && base[bl - 1] == '/' ? "" : "/", rel);
    return 0;
}

int st_mkdir_p(const char *path, mode_t mode, struct st_err **err)
{
    st_autofree char *p = st_strdup(path);
    for (char *s = p + 1; *s; s++) {
        if (*s != '/')
            continue;
        *s = '\0';
        if (mkdir(p, mode) < 0 && errno != EEXIST)
            return st_err_errno(err, "mkdir %s", p);
        *s = '/';
    }
    if (mkdir(p, mode) < 0 && errno != EEXIST)
        return st_err_errno(err, "mkdir %s", p);
    struct stat st;
    if (stat(p, &st) < 0)
        return st_err_errno(err, "stat %s", p);
    if (!S_ISDIR(st.st_mode))
        return st_err_set(err, -ENOTDIR, "%s exists and is not a directory", p);
    return 0;
}

int st_read_file(const char *path, size_t max, char **ret, size_t *ret_len, struct st_err **err)
{
    st_autoclose int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return st_err_errno(err, "open %s", path);
    size_t cap = 4096, len = 0;
    st_autofree char *buf = st_xcalloc(1, cap);
    for (;;) {
        if (len + 1 >= cap) {
            cap *= 2;
            buf = st_xrealloc(buf, cap);
        }
        ssize_t n = read(fd, buf + len, cap - len - 1);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return st_err_errno(err, "read %s", path);
        }
        if (n == 0)
            break;
        len += (size_t)n;
        if (len > max)
            return st_err_set(err, -EFBIG, "%s is larger than %zu bytes", path, max);
    }
    buf[len] = '\0';
    if (ret_len)
        *ret_len = len;
    *ret = st_steal(&buf);
    return 0;
}

int st_fsync_parent(const char *path, struct st_err **err)
{
    st_autofree char *copy = st_strdup(path);
    const char *dir = dirname(copy);
    st_autoclose int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return st_err_errno(err, "open %s", dir);
    if (fsync(fd) < 0)
        return st_err_errno(err, "fsync %s", dir);
    return 0;
}

int st_write_file_atomic(const char *path, const void *data, size_t len, mode_t mode,
                         struct st_err **err)
{
    st_autofree char *tmp = st_sprintf("%s.tmp.%d", path, (int)getpid());
    st_autoclose int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
    if (fd < 0)
        return st_err_errno(err, "create %s", tmp);
    if (fchmod(fd, mode) < 0)
        return st_err_errno(err, "chmod %s", tmp);
    const char *p = data;
    size_t left = len;
    while (left > 0) {
        ssize_t n = write(fd, p, left);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            int r = st_err_errno(err, "write %s", tmp);
            unlink(tmp);
            return r;
        }
        p += n;
        left -= (size_t)n;
    }
    if (fsync(fd) < 0) {
        int r = st_err_errno(err, "fsync %s", tmp);
        unlink(tmp);
        return r;
    }
    if (rename(tmp, path) < 0) {
        int r = st_err_errno(err, "rename %s to %s", tmp, path);
        unlink(tmp);
        return r;
    }
    return st_fsync_parent(path, err);
}
