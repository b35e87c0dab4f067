/* Image cache, overlay roots and safe writes into a root filesystem; see
 * rootfs.h for the choices. */
#include "rootfs.h"

#include <archive.h>
#include <archive_entry.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/openat2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "lib/cleanup.h"
#include "lib/files.h"
#include "lib/log.h"

#define REMOVE_DEPTH_MAX 4096

/* "../x", "a/../../x" and "/x" may not leave the root; "./a" is fine. */
static int check_member(const char *name, const char *what, struct st_err **err)
{
    if (name[0] == '/')
        return st_err_set(err, -EINVAL, "image %s '%s' is an absolute path", what, name);
    for (const char *p = name; *p;) {
        const char *e = strchrnul(p, '/');
        if (e - p == 2 && p[0] == '.' && p[1] == '.')
            return st_err_set(err, -EINVAL, "image %s '%s' escapes the root filesystem ('..')",
                              what, name);
        p = *e ? e + 1 : e;
    }
    return 0;
}

static bool is_root_member(const char *name)
{
    for (const char *p = name; *p; p++)
        if (*p != '.' && *p != '/')
            return false;
    return true; /* "", ".", "./", "././" */
}

static int copy_data(struct archive *in, struct archive *out)
{
    for (;;) {
        const void *buf;
        size_t size;
        la_int64_t offset;
        int r = archive_read_data_block(in, &buf, &size, &offset);
        if (r == ARCHIVE_EOF)
            return ARCHIVE_OK;
        if (r < ARCHIVE_OK)
            return r;
        if (archive_write_data_block(out, buf, size, offset) < ARCHIVE_OK)
            return ARCHIVE_FAILED;
    }
}

static int unpack_into(struct archive *in, struct archive *out, const char *tarball,
                       const char *dest, struct st_err **err)
{
    struct archive_entry *entry;
    size_t skipped_devices = 0;
    for (;;) {
        int r = archive_read_next_header(in, &entry);
        if (r == ARCHIVE_EOF)
            break;
        if (r < ARCHIVE_WARN)
            return st_err_set(err, -EINVAL, "reading %s: %s", tarball, archive_error_string(in));
        if (!archive_entry_pathname(entry))
            return st_err_set(err, -EINVAL, "reading %s: member without a name", tarball);
        /* Copies: setting the full paths below frees the entry's strings. */
        st_autofree char *name = st_strdup(archive_entry_pathname(entry));
        if ((r = check_member(name, "member", err)) < 0)
            return r;
        st_autofree char *link = st_strdup(archive_entry_hardlink(entry));
        if (link && (r = check_member(link, "hard link target", err)) < 0)
            return r;
        if (is_root_member(name))
            continue;
        mode_t type = archive_entry_filetype(entry);
        if (type == AE_IFCHR || type == AE_IFBLK) {
            skipped_devices++;
            continue;
        }
        st_autofree char *full = st_sprintf("%s/%s", dest, name);
        archive_entry_set_pathname(entry, full);
        if (link) {
            st_autofree char *full_link = st_sprintf("%s/%s", dest, link);
            archive_entry_set_hardlink(entry, full_link);
        }
        if (archive_write_header(out, entry) < ARCHIVE_WARN)
            return st_err_set(err, -EINVAL, "unpacking '%s': %s", name, archive_error_string(out));
        if (archive_entry_size(entry) > 0 && copy_data(in, out) < ARCHIVE_WARN)
            return st_err_set(err, -EIO, "unpacking '%s': %s", name,
                              archive_error_string(in) ? archive_error_string(in)
                                                       : archive_error_string(out));
        if (archive_write_finish_entry(out) < ARCHIVE_WARN)
            return st_err_set(err, -EIO, "unpacking '%s': %s", name, archive_error_string(out));
    }
    if (skipped_devices)
        st_log_info("image_devices_skipped", "image=%s count=%zu", tarball, skipped_devices);
    return 0;
}

int st_rootfs_unpack(const char *tarball, const char *dest, struct st_err **err)
{
    if (mkdir(dest, 0755) < 0 && errno != EEXIST)
        return st_err_errno(err, "mkdir %s", dest);
    /* The full path is checked for symlinks by SECURE_SYMLINKS, so it must
     * be canonical. */
    st_autofree char *real = realpath(dest, NULL);
    if (!real)
        return st_err_errno(err, "realpath %s", dest);
    struct archive *in = archive_read_new();
    struct archive *out = archive_write_disk_new();
    if (!in || !out)
        abort();
    archive_read_support_filter_all(in);
    archive_read_support_format_tar(in);
    /* Numeric owners (no lookup in the host's passwd), modes, times,
     * xattrs (file capabilities), and never through a planted symlink. */
    archive_write_disk_set_options(
        out, ARCHIVE_EXTRACT_OWNER | ARCHIVE_EXTRACT_PERM | ARCHIVE_EXTRACT_TIME |
                 ARCHIVE_EXTRACT_XATTR | ARCHIVE_EXTRACT_ACL | ARCHIVE_EXTRACT_FFLAGS |
                 ARCHIVE_EXTRACT_SECURE_SYMLINKS | ARCHIVE_EXTRACT_SECURE_NODOTDOT);
    int r;
    if (archive_read_open_filename(in, tarball, 128 * 1024) != ARCHIVE_OK)
        r = st_err_set(err, -EINVAL, "opening %s: %s", tarball, archive_error_string(in));
    else
        r = unpack_into(in, out, tarball, real, err);
    if (archive_write_close(out) != ARCHIVE_OK && r == 0)
        r = st_err_set(err, -EIO, "unpacking %s: %s", tarball, archive_error_string(out));
    archive_write_free(out);
    archive_read_free(in);
    return r;
}

int st_rootfs_image_get(const char *images_dir, const char *image_id, const char *tarball,
                        char **ret, struct st_err **err)
{
    st_autofree char *dir = NULL;
    int r = st_path_join(images_dir, image_id, &dir, err);
    if (r < 0)
        return st_err_prefix(err, r, "image id");
    st_autofree char *rootfs = st_sprintf("%s/rootfs", dir);
    if (access(rootfs, F_OK) == 0) {
        *ret = st_steal(&rootfs);
        return 0;
    }
    if ((r = st_mkdir_p(dir, 0700, err)) < 0)
        return r;
    st_autofree char *lock_path = st_sprintf("%s/.lock", dir);
    st_autoclose int lock = open(lock_path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (lock < 0)
        return st_err_errno(err, "open %s", lock_path);
    while (flock(lock, LOCK_EX) < 0)
        if (errno != EINTR)
            return st_err_errno(err, "flock %s", lock_path);
    if (access(rootfs, F_OK) == 0) { /* another thread unpacked it meanwhile */
        *ret = st_steal(&rootfs);
        return 0;
    }
    /* Under the lock, a leftover temporary directory is a crashed unpack. */
    st_autofree char *tmp = st_sprintf("%s/rootfs.tmp", dir);
    if ((r = st_rootfs_remove_tree(tmp, err)) < 0)
        return r;
    if ((r = st_rootfs_unpack(tarball, tmp, err)) < 0) {
        st_autoptr(st_err) ignored = NULL;
        st_rootfs_remove_tree(tmp, &ignored);
        return st_err_prefix(err, r, "unpacking image %s", image_id);
    }
    /* Contents on disk before the name says the cache is complete. */
    st_autoclose int tfd = open(tmp, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (tfd < 0 || syncfs(tfd) < 0)
        return st_err_errno(err, "syncfs %s", tmp);
    if (rename(tmp, rootfs) < 0)
        return st_err_errno(err, "rename %s to %s", tmp, rootfs);
    if ((r = st_fsync_parent(rootfs, err)) < 0)
        return r;
    st_log_info("image_unpacked", "image=%s rootfs=%s", image_id, rootfs);
    *ret = st_steal(&rootfs);
    return 0;
}

/* mountinfo escapes space, tab, newline and backslash as \ooo. */
static void unescape(char *s)
{
    char *o = s;
    while (*s) {
        if (s[0] == '\\' && s[1] >= '0' && s[1] <= '7' && s[2] >= '0' && s[2] <= '7' &&
            s[3] >= '0' && s[3] <= '7') {
            *o++ = (char)(((s[1] - '0') << 6) | ((s[2] - '0') << 3) | (s[3] - '0'));
            s += 4;
        } else {
            *o++ = *s++;
        }
    }
    *o = '\0';
}

bool st_rootfs_is_mounted(const char *path)
{
    st_autofree char *real = realpath(path, NULL);
    if (!real)
        return false;
    FILE *f = fopen("/proc/self/mountinfo", "re");
    if (!f)
        return false;
    bool found = false;
    char *line = NULL;
    size_t cap = 0;
    while (!found && getline(&line, &cap, f) > 0) {
        char point[4096];
        if (sscanf(line, "%*s %*s %*s %*s %4095s", point) != 1)
            continue;
        unescape(point);
        found = strcmp(point, real) == 0;
    }
    free(line);
    fclose(f);
    return found;
}

int st_rootfs_overlay_mount(const char *lower, const char *upper, const char *work,
                            const char *target, struct st_err **err)
{
    if (st_rootfs_is_mounted(target))
        return 0;
    const char *paths[] = {lower, upper, work};
    for (size_t i = 0; i < ST_ARRAY_SIZE(paths); i++)
        if (strpbrk(paths[i], ",:\\"))
            return st_err_set(err, -EINVAL,
                              "overlay path '%s' contains ',', ':' or '\\', which overlayfs "
                              "options cannot carry; choose another data directory",
                              paths[i]);
    st_autofree char *opts = st_sprintf("lowerdir=%s,upperdir=%s,workdir=%s", lower, upper, work);
    if (mount("overlay", target, "overlay", MS_NODEV, opts) < 0)
        return st_err_errno(err, "mounting overlay on %s (%s)", target, opts);
    return 0;
}

int st_rootfs_umount(const char *target, struct st_err **err)
{
    if (!st_rootfs_is_mounted(target))
        return 0;
    if (umount2(target, 0) == 0)
        return 0;
    /* Busy: a process still holds it. Detach it from the tree so the
     * directory can go; the kernel frees it with its last user. */
    if (errno == EBUSY && umount2(target, MNT_DETACH) == 0)
        return 0;
    return st_err_errno(err, "unmounting %s", target);
}

static int open_in_root(int rootfd, const char *rel, int flags)
{
    struct open_how how = {
        .flags = (unsigned long long)(flags | O_CLOEXEC),
        .resolve = RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS,
    };
    return (int)syscall(SYS_openat2, rootfd, rel[0] ? rel : ".", &how, sizeof(how));
}

/* An fd on directory rel (inside the root), created with mode if missing. */
static int ensure_dir(int rootfd, const char *rel, mode_t mode, int depth, struct st_err **err)
{
    int fd = open_in_root(rootfd, rel, O_RDONLY | O_DIRECTORY);
    if (fd >= 0)
        return fd;
    if (errno != ENOENT)
        return st_err_errno(err, "opening directory /%s in the root filesystem", rel);
    if (depth > 64)
        return st_err_set(err, -ELOOP, "directory /%s: too deep", rel);
    st_autofree char *parent = st_strdup(rel);
    char *slash = strrchr(parent, '/');
    const char *base = rel;
    if (slash) {
        *slash = '\0';
        base = rel + (slash - parent) + 1;
    } else {
        parent[0] = '\0';
    }
    st_autoclose int pfd = ensure_dir(rootfd, parent, mode, depth + 1, err);
    if (pfd < 0)
        return pfd;
    if (mkdirat(pfd, base, mode) < 0 && errno != EEXIST)
        return st_err_errno(err, "creating directory /%s in the root filesystem", rel);
    /* EEXIST with ENOENT above means a dangling symlink: refuse it. */
    fd = openat(pfd, base, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0)
        return st_err_errno(err, "opening directory /%s in the root filesystem", rel);
    return fd;
}

int st_rootfs_write(const char *root, const char *rel, const void *data, size_t len, mode_t mode,
                    mode_t dir_mode, struct st_err **err)
{
    while (*rel == '/')
        rel++;
    st_autoclose int rootfd = open(root, O_PATH | O_DIRECTORY | O_CLOEXEC);
    if (rootfd < 0)
        return st_err_errno(err, "open %s", root);
    st_autofree char *dir = st_strdup(rel);
    char *slash = strrchr(dir, '/');
    const char *base = rel;
    if (slash) {
        *slash = '\0';
        base = rel + (slash - dir) + 1;
    } else {
        dir[0] = '\0';
    }
    if (!st_path_component_valid(base))
        return st_err_set(err, -EINVAL, "invalid file name '%s'", rel);
    st_autoclose int dfd = ensure_dir(rootfd, dir, dir_mode, 0, err);
    if (dfd < 0)
        return dfd;
    if (dir[0] && fchmod(dfd, dir_mode) < 0)
        return st_err_errno(err, "chmod /%s in the root filesystem", dir);
    st_autoclose int fd =
        openat(dfd, base, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, mode);
    if (fd < 0)
        return st_err_errno(err, "writing /%s in the root filesystem", rel);
    if (fchmod(fd, mode) < 0)
        return st_err_errno(err, "chmod /%s in the root filesystem", rel);
    for (size_t off = 0; off < len;) {
        ssize_t n = write(fd, (const char *)data + off, len - off);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return st_err_errno(err, "writing /%s in the root filesystem", rel);
        off += (size_t)n;
    }
    return 0;
}

bool st_rootfs_has_exec(const char *root, const char *rel)
{
    while (*rel == '/')
        rel++;
    st_autoclose int rootfd = open(root, O_PATH | O_DIRECTORY | O_CLOEXEC);
    if (rootfd < 0)
        return false;
    st_autoclose int fd = open_in_root(rootfd, rel, O_PATH);
    struct stat st;
    return fd >= 0 && fstat(fd, &st) == 0 && S_ISREG(st.st_mode) && (st.st_mode & 0111);
}

static int remove_at(int dirfd, const char *name, const char *path, dev_t dev, int depth,
                     struct st_err **err)
{
    struct stat st;
    if (fstatat(dirfd, name, &st, AT_SYMLINK_NOFOLLOW) < 0)
        return errno == ENOENT ? 0 : st_err_errno(err, "stat %s", path);
    if (!S_ISDIR(st.st_mode)) {
        if (unlinkat(dirfd, name, 0) < 0 && errno != ENOENT)
            return st_err_errno(err, "unlink %s", path);
        return 0;
    }
    if (st.st_dev != dev)
        return st_err_set(err, -EBUSY, "%s is still a mount point; not removing through it", path);
    if (depth > REMOVE_DEPTH_MAX)
        return st_err_set(err, -ELOOP, "%s: directory tree deeper than %d", path, REMOVE_DEPTH_MAX);
    /* Entries removed while reading may hide others from readdir on some
     * file systems: a second pass catches them. */
    for (int pass = 0;; pass++) {
        int fd = openat(dirfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (fd < 0)
            return st_err_errno(err, "open %s", path);
        DIR *d = fdopendir(fd);
        if (!d) {
            close(fd);
            return st_err_errno(err, "fdopendir %s", path);
        }
        int r = 0;
        struct dirent *e;
        while (r == 0 && (e = readdir(d))) {
            if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
                continue;
            st_autofree char *child = st_sprintf("%s/%s", path, e->d_name);
            r = remove_at(fd, e->d_name, child, dev, depth + 1, err);
        }
        closedir(d);
        if (r < 0)
            return r;
        if (unlinkat(dirfd, name, AT_REMOVEDIR) == 0 || errno == ENOENT)
            return 0;
        if (errno != ENOTEMPTY || pass >= 2)
            return st_err_errno(err, "rmdir %s", path);
    }
}

int st_rootfs_remove_tree(const char *path, struct st_err **err)
{
    struct stat st;
    if (lstat(path, &st) < 0)
        return errno == ENOENT ? 0 : st_err_errno(err, "stat %s", path);
    return remove_at(AT_FDCWD, path, path, st.st_dev, 0, err);
}
