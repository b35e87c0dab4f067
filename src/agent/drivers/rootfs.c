/* Image cache, overlay roots and safe writes into a root filesystem; see
 * rootfs.h for the choices. */
#include "rootfs.h"

#include <archive.h>
#include <archive_entry.h>
#include <jansson.h>
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
#include "lib/json.h"
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

/* Opens and locks <dir>/.lock (creating dir and file as needed). A prune
 * removes the lock file and its directory while it holds the lock, so a
 * waiter may be granted a lock on a file that no longer has a name: the
 * file locked must still be the one under the name, else it tries again.
 * wait false: -EBUSY at once when another holds it. */
static int image_lock(const char *dir, bool wait, int *ret_fd, struct st_err **err)
{
    st_autofree char *path = st_sprintf("%s/.lock", dir);
    for (int attempt = 0; attempt < 100; attempt++) {
        int r = st_mkdir_p(dir, 0700, err);
        if (r == -ENOENT) { /* removed between its mkdir and its check */
            st_err_clear(err);
            continue;
        }
        if (r < 0)
            return r;
        st_autoclose int fd = open(path, O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0600);
        if (fd < 0) {
            if (errno == ENOENT) /* the directory went meanwhile */
                continue;
            return st_err_errno(err, "open %s", path);
        }
        while (flock(fd, LOCK_EX | (wait ? 0 : LOCK_NB)) < 0) {
            if (errno == EWOULDBLOCK)
                return -EBUSY;
            if (errno != EINTR)
                return st_err_errno(err, "flock %s", path);
        }
        struct stat held, named;
        if (fstat(fd, &held) < 0)
            return st_err_errno(err, "fstat %s", path);
        if (stat(path, &named) == 0 && named.st_dev == held.st_dev && named.st_ino == held.st_ino) {
            *ret_fd = st_steal_fd(&fd);
            return 0;
        }
    }
    return st_err_set(err, -EAGAIN, "%s keeps being removed; giving up", path);
}

static void touch(const char *path)
{
    utimensat(AT_FDCWD, path, NULL, AT_SYMLINK_NOFOLLOW);
}

/* Under the image's lock: <dir>/rootfs from tarball. */
static int unpack_locked(const char *dir, const char *image_id, const char *tarball,
                         const char *rootfs, struct st_err **err)
{
    if (!tarball || access(tarball, F_OK) < 0)
        return st_err_set(err, -EAGAIN,
                          "the file of image %s went away before it was unpacked (the image "
                          "cache was pruned meanwhile)",
                          image_id);
    /* Under the lock, a leftover temporary directory is a crashed unpack. */
    st_autofree char *tmp = st_sprintf("%s/rootfs.tmp", dir);
    int r = st_rootfs_remove_tree(tmp, err);
    if (r < 0)
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
    return 0;
}

static int record_write(const char *instance_dir, const char *image_id, struct st_err **err)
{
    st_autofree char *path = st_sprintf("%s/" ST_ROOTFS_IMAGE_RECORD, instance_dir);
    st_autofree char *tmp = st_sprintf("%s.tmp", path);
    st_autofree char *text = st_sprintf("%s\n", image_id);
    st_autoclose int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (fd < 0)
        return st_err_errno(err, "open %s", tmp);
    size_t len = strlen(text);
    if (write(fd, text, len) != (ssize_t)len)
        return st_err_errno(err, "write %s", tmp);
    if (rename(tmp, path) < 0)
        return st_err_errno(err, "rename %s", tmp);
    return 0;
}

int st_rootfs_image_get(const char *images_dir, const char *image_id, const char *tarball,
                        const char *instance_dir, char **ret, struct st_err **err)
{
    st_autofree char *dir = NULL;
    int r = st_path_join(images_dir, image_id, &dir, err);
    if (r < 0)
        return st_err_prefix(err, r, "image id");
    if (image_id[0] == '.')
        return st_err_set(err, -EINVAL, "invalid image id '%s'", image_id);
    st_autofree char *rootfs = st_sprintf("%s/rootfs", dir);
    st_autoclose int lock = -1;
    if ((r = image_lock(dir, true, &lock, err)) < 0)
        return r;
    if (access(rootfs, F_OK) != 0 && (r = unpack_locked(dir, image_id, tarball, rootfs, err)) < 0)
        return r;
    if (instance_dir && (r = record_write(instance_dir, image_id, err)) < 0)
        return st_err_prefix(err, r, "recording the image of %s", instance_dir);
    touch(dir);
    *ret = st_steal(&rootfs);
    return 0;
}

/* The image id an instance directory records: 1 and *ret, 0 when it has no
 * record, -EINVAL when the record is unreadable or not an id. */
static int record_read(const char *instance_dir, char **ret)
{
    st_autofree char *path = st_sprintf("%s/" ST_ROOTFS_IMAGE_RECORD, instance_dir);
    st_autofree char *text = NULL;
    size_t len = 0;
    st_autoptr(st_err) e = NULL;
    int r = st_read_file(path, 512, &text, &len, &e);
    if (r == -ENOENT)
        return 0;
    if (r < 0)
        return -EINVAL;
    while (len > 0 && (text[len - 1] == '\n' || text[len - 1] == ' '))
        text[--len] = '\0';
    if (!st_path_component_valid(text) || text[0] == '.')
        return -EINVAL;
    *ret = st_steal(&text);
    return 1;
}

void st_rootfs_image_release(const char *images_dir, const char *instance_dir)
{
    st_autofree char *id = NULL;
    if (record_read(instance_dir, &id) != 1)
        return;
    st_autofree char *dir = st_sprintf("%s/%s", images_dir, id);
    touch(dir);
}

bool st_rootfs_prune_due(bool in_use, int gone, int64_t last_used_s, int64_t now_s,
                         int64_t max_age_s)
{
    if (in_use)
        return false;
    if (gone > 0)
        return true;
    return now_s - last_used_s > max_age_s;
}

/* The images the instances under instances_dir use (id → true). An
 * instance whose image cannot be told makes *ret_unknown its name: one with
 * a bundle (it was created) but no record, or with a record unreadable. An
 * instance directory without either is being created (it takes the image's
 * lock before it mounts anything) or failed before it had a root. */
static int scan_users(const char *instances_dir, json_t **ret_used, char **ret_unknown,
                      struct st_err **err)
{
    *ret_used = json_object();
    *ret_unknown = NULL;
    DIR *d = opendir(instances_dir);
    if (!d)
        return errno == ENOENT ? 0 : st_err_errno(err, "opendir %s", instances_dir);
    struct dirent *e;
    while ((e = readdir(d))) {
        if (e->d_name[0] == '.')
            continue;
        st_autofree char *inst = st_sprintf("%s/%s", instances_dir, e->d_name);
        st_autofree char *id = NULL;
        int r = record_read(inst, &id);
        if (r == 1) {
            json_object_set_new(*ret_used, id, json_true());
            continue;
        }
        st_autofree char *config = st_sprintf("%s/bundle/config.json", inst);
        if ((r < 0 || access(config, F_OK) == 0) && !*ret_unknown)
            *ret_unknown = st_strdup(e->d_name);
    }
    closedir(d);
    return 0;
}

/* The newer of the mtimes of the image's directory and file; 0 if neither. */
static int64_t last_used(const char *dir, const char *blob)
{
    struct stat st;
    int64_t t = 0;
    if (lstat(dir, &st) == 0)
        t = st.st_mtim.tv_sec;
    if (lstat(blob, &st) == 0 && st.st_mtim.tv_sec > t)
        t = st.st_mtim.tv_sec;
    return t;
}

/* The downloaded file of an image, as agent/image_cache.h names it. */
static char *blob_path(const char *images_dir, const char *id)
{
    return st_sprintf("%s/%s.blob", images_dir, id);
}

/* Removes image id, unless an instance turned out to use it once its lock
 * is held: returns 1 when removed, 0 when kept. The unpacked tree is first
 * renamed out of the way (under the lock: a create after us finds no rootfs
 * and unpacks again), then deleted without the lock (slow for a big image,
 * and nobody needs to wait for it). */
static int image_remove(const char *images_dir, const char *instances_dir, const char *id,
                        struct st_err **err)
{
    st_autofree char *dir = st_sprintf("%s/%s", images_dir, id);
    st_autofree char *blob = blob_path(images_dir, id);
    st_autofree char *rootfs = st_sprintf("%s/rootfs", dir);
    st_autofree char *trash = st_sprintf("%s/.trash-%s", images_dir, id);
    st_autoclose int lock = -1;
    int r = image_lock(dir, false, &lock, err);
    if (r == -EBUSY)
        return 0; /* a create holds it: in use */
    if (r < 0)
        return r;
    st_autoptr(json_t) used = NULL;
    st_autofree char *unknown = NULL;
    if ((r = scan_users(instances_dir, &used, &unknown, err)) < 0)
        return r;
    if (unknown || json_object_get(used, id))
        return 0;
    if ((r = st_rootfs_remove_tree(trash, err)) < 0)
        return r;
    if (rename(rootfs, trash) < 0 && errno != ENOENT)
        return st_err_errno(err, "rename %s to %s", rootfs, trash);
    if (unlink(blob) < 0 && errno != ENOENT)
        return st_err_errno(err, "unlink %s", blob);
    st_autofree char *tmp = st_sprintf("%s/rootfs.tmp", dir);
    if ((r = st_rootfs_remove_tree(tmp, err)) < 0)
        return r;
    st_autofree char *lock_path = st_sprintf("%s/.lock", dir);
    unlink(lock_path);
    if (rmdir(dir) < 0 && errno != ENOENT)
        st_log_warn("image_prune_leftover", "dir=%s error=\"%s\"", dir, strerror(errno));
    close(st_steal_fd(&lock));
    return (r = st_rootfs_remove_tree(trash, err)) < 0 ? r : 1;
}

/* Image ids in images_dir: directories and <id>.blob files (dot names are
 * temporary downloads and trash). Trash a crashed prune left goes now. */
static int list_images(const char *images_dir, json_t **ret, struct st_err **err)
{
    *ret = json_object();
    DIR *d = opendir(images_dir);
    if (!d)
        return errno == ENOENT ? 0 : st_err_errno(err, "opendir %s", images_dir);
    struct dirent *e;
    while ((e = readdir(d))) {
        if (strncmp(e->d_name, ".trash-", 7) == 0) {
            st_autofree char *trash = st_sprintf("%s/%s", images_dir, e->d_name);
            st_autoptr(st_err) terr = NULL;
            if (st_rootfs_remove_tree(trash, &terr) < 0)
                st_log_warn("image_prune_leftover", "error=\"%s\"", st_err_msg(terr));
        }
        if (e->d_name[0] == '.')
            continue;
        size_t len = strlen(e->d_name);
        struct stat st;
        bool is_dir =
            e->d_type == DT_DIR ||
            (e->d_type == DT_UNKNOWN &&
             fstatat(dirfd(d), e->d_name, &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISDIR(st.st_mode));
        if (is_dir) {
            json_object_set_new(*ret, e->d_name, json_true());
        } else if (len > 5 && strcmp(e->d_name + len - 5, ".blob") == 0) {
            st_autofree char *id = st_strndup(e->d_name, len - 5);
            json_object_set_new(*ret, id, json_true());
        }
    }
    closedir(d);
    return 0;
}

int st_rootfs_image_prune(const char *images_dir, const char *instances_dir,
                          const struct st_rootfs_prune *opts, unsigned *ret_removed,
                          struct st_err **err)
{
    if (ret_removed)
        *ret_removed = 0;
    st_autoptr(json_t) images = NULL;
    st_autoptr(json_t) used = NULL;
    st_autofree char *unknown = NULL;
    int r;
    if ((r = list_images(images_dir, &images, err)) < 0 ||
        (r = scan_users(instances_dir, &used, &unknown, err)) < 0)
        return r;
    if (unknown && json_object_size(images) > 0) {
        st_log_warn("image_prune_skipped",
                    "instance=%s reason=\"it records no image (made by an older agent?): no "
                    "image is removed while it exists\"",
                    unknown);
        return 0;
    }
    const char *id;
    json_t *v;
    json_object_foreach(images, id, v)
    {
        st_autofree char *dir = st_sprintf("%s/%s", images_dir, id);
        st_autofree char *blob = blob_path(images_dir, id);
        bool in_use = json_object_get(used, id) != NULL;
        if (in_use) {
            touch(dir);
            touch(blob);
            continue;
        }
        int64_t t = last_used(dir, blob);
        int gone = -1;
        if (!st_rootfs_prune_due(false, -1, t, opts->now_s, opts->max_age_s) && opts->image_gone)
            gone = opts->image_gone(opts->userdata, id);
        if (!st_rootfs_prune_due(false, gone, t, opts->now_s, opts->max_age_s))
            continue;
        r = image_remove(images_dir, instances_dir, id, err);
        if (r < 0)
            return st_err_prefix(err, r, "removing image %s from the cache", id);
        if (r == 0)
            continue;
        st_log_info("image_pruned", "image=%s reason=%s unused_s=%lld", id,
                    gone > 0 ? "deleted" : "unused", (long long)(opts->now_s - t));
        if (ret_removed)
            (*ret_removed)++;
    }
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
