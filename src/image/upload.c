/* Image files: the streamed upload (temporary file, md5 and sha512 computed
 * as the bytes pass, fsync, rename into place, then the record says
 * "active"), the file import that `stratosd init` uses, opening a file for
 * download, and the sweep of files left behind by a crash.
 *
 * While an upload runs the record is "saving" with a lease that the upload
 * renews as bytes arrive: a second upload is refused (409) while the lease
 * holds, and takes over once it has lapsed (the first uploader died), so a
 * crash mid-upload never leaves an image stuck. Order of the last steps:
 * the file is renamed into place before the record turns "active", so an
 * active image always has its file; the opposite leftover (a file without
 * a record) is what st_image_gc removes. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "image/image-priv.h"
#include "image/image.h"
#include "lib/cleanup.h"
#include "lib/files.h"
#include "lib/json.h"
#include "lib/log.h"
#include "lib/times.h"
#include "lib/uuid.h"
#include "store/kv.h"

#define UPLOAD_TMP_PREFIX ".upload-"
#define UPLOAD_RENEW_MS   (ST_IMAGE_UPLOAD_LEASE_MS / 4)
#define GC_TMP_AGE_S      3600
#define QCOW2_HEADER_LEN  32

struct st_image_upload {
    struct st_kv *kv;
    char id[ST_UUID_LEN];
    char upload_id[ST_HEX32_LEN];
    char *tmp_path;
    char *final_path;
    int fd;
    EVP_MD_CTX *md5;
    EVP_MD_CTX *sha512;
    uint64_t size;
    unsigned char head[QCOW2_HEADER_LEN]; /* the first bytes, for qcow2's virtual size */
    char md5_hex[2 * 16 + 1];
    char sha512_hex[2 * 64 + 1];
    int64_t renewed_ms;
    bool began;     /* the record says "saving" with our upload id */
    bool renamed;   /* the file is at final_path */
    bool committed; /* the record says "active" */
    bool failed;    /* a write failed: commit refuses */
};

int st_image_file_path(const char *data_dir, const char *id, char **ret, struct st_err **err)
{
    if (!data_dir)
        return st_err_set(err, -EINVAL, "no data dir for image files");
    if (!id || !st_uuid_valid(id))
        return st_err_set(err, -EINVAL, "invalid image id '%s'", id ? id : "");
    *ret = st_sprintf("%s/%s/%s", data_dir, ST_IMAGE_DIR, id);
    return 0;
}

static bool upload_is(json_t *doc, const char *upload_id)
{
    const char *mine = json_string_value(json_object_get(json_object_get(doc, "upload"), "id"));
    return mine && strcmp(mine, upload_id) == 0 &&
           strcmp(json_string_value(json_object_get(doc, "status")), "saving") == 0;
}

static json_t *lease(const struct st_image_upload *up)
{
    return json_pack("{s:s, s:I}", "id", up->upload_id, "renewed_at_ms",
                     (json_int_t)st_time_now_ms());
}

static int begin_edit(json_t *doc, void *userdata, struct st_err **err)
{
    struct st_image_upload *up = userdata;
    const char *status = json_string_value(json_object_get(doc, "status"));
    if (strcmp(status, "saving") == 0) {
        json_int_t renewed =
            json_integer_value(json_object_get(json_object_get(doc, "upload"), "renewed_at_ms"));
        if (renewed + ST_IMAGE_UPLOAD_LEASE_MS > st_time_now_ms())
            return st_err_set(err, -EBUSY, "Image %s is being uploaded by another request.",
                              up->id);
        st_log_warn("image_upload_takeover", "id=%s reason=\"the previous upload's lease lapsed\"",
                    up->id);
    } else if (strcmp(status, "queued") != 0) {
        return st_err_set(err, -EALREADY,
                          "Image %s already has data: status transition from %s to saving is not "
                          "allowed.",
                          up->id, status);
    }
    if (json_is_null(json_object_get(doc, "disk_format")) ||
        json_is_null(json_object_get(doc, "container_format")))
        return st_err_set(err, -EINVAL,
                          "Properties disk_format, container_format must be set prior to saving "
                          "data.");
    json_object_set_new(doc, "status", json_string("saving"));
    json_object_set_new(doc, "upload", lease(up));
    return 0;
}

static int renew_edit(json_t *doc, void *userdata, struct st_err **err)
{
    struct st_image_upload *up = userdata;
    if (!upload_is(doc, up->upload_id))
        return st_err_set(err, -EBUSY, "the upload of image %s was taken over by another request",
                          up->id);
    json_object_set_new(doc, "upload", lease(up));
    return 0;
}

static int revert_edit(json_t *doc, void *userdata, struct st_err **err)
{
    struct st_image_upload *up = userdata;
    if (!upload_is(doc, up->upload_id))
        return st_err_set(err, -ECANCELED, "not ours any more");
    json_object_set_new(doc, "status", json_string("queued"));
    json_object_del(doc, "upload");
    return 0;
}

static uint64_t qcow2_virtual_size(const unsigned char *h, uint64_t have)
{
    if (have < QCOW2_HEADER_LEN || memcmp(h, "QFI\xfb", 4) != 0)
        return 0;
    uint64_t v = 0;
    for (int i = 24; i < 32; i++)
        v = v << 8 | h[i];
    return v;
}

static void hex_digest(EVP_MD_CTX *ctx, char *out)
{
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int n = 0;
    EVP_DigestFinal_ex(ctx, md, &n);
    st_hex_encode(md, n, out);
}

/* Renames the file into place (once, even when a conflict makes image_edit
 * call this again on a fresh copy), then makes the document active. */
static int commit_edit(json_t *doc, void *userdata, struct st_err **err)
{
    struct st_image_upload *up = userdata;
    if (!upload_is(doc, up->upload_id))
        return st_err_set(err, -EBUSY, "the upload of image %s was taken over by another request",
                          up->id);
    if (!up->renamed) {
        if (rename(up->tmp_path, up->final_path) < 0)
            return st_err_errno(err, "rename %s", up->tmp_path);
        up->renamed = true;
        int r = st_fsync_parent(up->final_path, err);
        if (r < 0)
            return r;
    }
    json_object_set_new(doc, "status", json_string("active"));
    json_object_del(doc, "upload");
    json_object_set_new(doc, "size", json_integer((json_int_t)up->size));
    json_object_set_new(doc, "checksum", json_string(up->md5_hex));
    json_object_set_new(doc, "os_hash_algo", json_string("sha512"));
    json_object_set_new(doc, "os_hash_value", json_string(up->sha512_hex));
    const char *disk = json_string_value(json_object_get(doc, "disk_format"));
    uint64_t vsize = 0;
    if (disk && strcmp(disk, "raw") == 0)
        vsize = up->size;
    else if (disk && strcmp(disk, "qcow2") == 0)
        vsize = qcow2_virtual_size(up->head, up->size);
    json_object_set_new(doc, "virtual_size", vsize ? json_integer((json_int_t)vsize) : json_null());
    return 0;
}

void st_image_upload_free(struct st_image_upload *up)
{
    if (!up)
        return;
    if (up->fd >= 0)
        close(up->fd);
    if (!up->renamed && up->tmp_path)
        unlink(up->tmp_path);
    if (up->began && !up->committed) {
        st_autoptr(st_err) err = NULL;
        int r = image_edit(up->kv, up->id, revert_edit, up, NULL, &err);
        if (r < 0 && r != -ENOENT && r != -ECANCELED)
            st_log_warn("image_upload_revert_failed", "id=%s error=\"%s\"", up->id,
                        st_err_msg(err));
        else if (r == 0)
            st_log_info("image_upload_aborted", "id=%s received=%llu", up->id,
                        (unsigned long long)up->size);
    }
    EVP_MD_CTX_free(up->md5);
    EVP_MD_CTX_free(up->sha512);
    free(up->tmp_path);
    free(up->final_path);
    free(up);
}

int st_image_upload_begin(struct st_kv *kv, const char *data_dir, const char *id,
                          struct st_image_upload **ret, struct st_err **err)
{
    st_autoptr(st_image_upload) up = st_new0(struct st_image_upload, 1);
    up->kv = kv;
    up->fd = -1;
    int r = st_image_file_path(data_dir, id, &up->final_path, err);
    if (r < 0)
        return r == -EINVAL ? st_err_prefix(err, -ENOENT, "No image found with ID %s", id) : r;
    snprintf(up->id, sizeof(up->id), "%s", id);
    st_uuid_hex32(up->upload_id);

    r = image_edit(kv, id, begin_edit, up, NULL, err);
    if (r < 0)
        return r;
    up->began = true;
    up->renewed_ms = st_time_now_ms();

    st_autofree char *dir = st_sprintf("%s/%s", data_dir, ST_IMAGE_DIR);
    if ((r = st_mkdir_p(dir, 0700, err)) < 0)
        return r;
    up->tmp_path = st_sprintf("%s/" UPLOAD_TMP_PREFIX "%s-%s", dir, id, up->upload_id);
    up->fd = open(up->tmp_path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (up->fd < 0)
        return st_err_errno(err, "creating %s", up->tmp_path);
    up->md5 = EVP_MD_CTX_new();
    up->sha512 = EVP_MD_CTX_new();
    if (!up->md5 || !up->sha512 || !EVP_DigestInit_ex(up->md5, EVP_md5(), NULL) ||
        !EVP_DigestInit_ex(up->sha512, EVP_sha512(), NULL))
        return st_err_set(err, -EIO, "cannot initialise md5/sha512 digests");
    st_log_info("image_upload_started", "id=%s", id);
    *ret = st_steal(&up);
    return 0;
}

int st_image_upload_write(struct st_image_upload *up, const void *data, size_t len,
                          struct st_err **err)
{
    if (up->failed || up->fd < 0)
        return st_err_set(err, -EIO, "the upload of image %s already failed", up->id);
    if (len > ST_IMAGE_SIZE_MAX - up->size) {
        up->failed = true;
        return st_err_set(err, -EFBIG, "Image exceeds the storage quota of %llu bytes.",
                          (unsigned long long)ST_IMAGE_SIZE_MAX);
    }
    if (up->size < QCOW2_HEADER_LEN) {
        size_t n = QCOW2_HEADER_LEN - up->size < len ? QCOW2_HEADER_LEN - up->size : len;
        memcpy(up->head + up->size, data, n);
    }
    EVP_DigestUpdate(up->md5, data, len);
    EVP_DigestUpdate(up->sha512, data, len);
    const char *p = data;
    size_t left = len;
    while (left > 0) {
        ssize_t n = write(up->fd, p, left);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            up->failed = true;
            int code = errno == ENOSPC || errno == EDQUOT ? -ENOSPC : -errno;
            return st_err_set(err, code, "writing image %s: %s", up->id, strerror(errno));
        }
        p += n;
        left -= (size_t)n;
    }
    up->size += len;
    int64_t now = st_time_now_ms();
    if (now - up->renewed_ms >= UPLOAD_RENEW_MS) {
        int r = image_edit(up->kv, up->id, renew_edit, up, NULL, err);
        if (r < 0) {
            up->failed = true;
            return r;
        }
        up->renewed_ms = now;
    }
    return 0;
}

int st_image_upload_commit(struct st_image_upload *up, json_t **ret, struct st_err **err)
{
    if (up->failed || up->fd < 0)
        return st_err_set(err, -EIO, "the upload of image %s already failed", up->id);
    if (fsync(up->fd) < 0) {
        up->failed = true;
        return st_err_errno(err, "fsync %s", up->tmp_path);
    }
    close(up->fd);
    up->fd = -1;

    hex_digest(up->md5, up->md5_hex);
    hex_digest(up->sha512, up->sha512_hex);

    st_autoptr(json_t) doc = NULL;
    int r = image_edit(up->kv, up->id, commit_edit, up, &doc, err);
    if (r < 0) {
        /* deleted during the upload: the renamed file belongs to nobody */
        if (r == -ENOENT && up->renamed)
            unlink(up->final_path);
        up->failed = true;
        return r;
    }
    up->committed = true;
    st_log_info("image_upload_done", "id=%s size=%llu checksum=%s", up->id,
                (unsigned long long)up->size, up->md5_hex);
    if (ret)
        *ret = st_steal(&doc);
    return 0;
}

int st_image_import(struct st_kv *kv, const char *data_dir, const char *project_id, json_t *attrs,
                    const char *path, json_t **ret, struct st_err **err)
{
    st_autoclose int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return st_err_errno(err, "opening %s", path);
    st_autoptr(json_t) doc = NULL;
    int r = st_image_create(kv, project_id, attrs, &doc, err);
    if (r < 0)
        return r;
    const char *id = json_string_value(json_object_get(doc, "id"));
    st_autoptr(st_image_upload) up = NULL;
    r = st_image_upload_begin(kv, data_dir, id, &up, err);
    static const size_t chunk = 256 * 1024;
    st_autofree char *buf = st_new0(char, chunk);
    while (r == 0) {
        ssize_t n = read(fd, buf, chunk);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            r = st_err_errno(err, "reading %s", path);
        else if (n == 0)
            break;
        else
            r = st_image_upload_write(up, buf, (size_t)n, err);
    }
    if (r == 0)
        r = st_image_upload_commit(up, ret, err);
    if (r < 0) {
        st_image_upload_free(st_steal(&up)); /* revert before deleting */
        st_image_delete(kv, data_dir, id, NULL);
        return st_err_prefix(err, r, "importing %s", path);
    }
    return 0;
}

int st_image_open_file(struct st_kv *kv, const char *data_dir, const char *id, int *ret_fd,
                       uint64_t *ret_size, struct st_err **err)
{
    st_autoptr(json_t) doc = NULL;
    int r = st_image_get(kv, id, &doc, NULL, err);
    if (r < 0)
        return r;
    const char *status = json_string_value(json_object_get(doc, "status"));
    if (strcmp(status, "active") != 0)
        return st_err_set(err, -ENXIO, "Image %s has no data (status %s).", id, status);
    st_autofree char *path = NULL;
    if ((r = st_image_file_path(data_dir, id, &path, err)) < 0)
        return r;
    st_autoclose int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return st_err_errno(err, "opening the file of image %s", id);
    struct stat st;
    if (fstat(fd, &st) < 0)
        return st_err_errno(err, "stat %s", path);
    json_int_t size = json_integer_value(json_object_get(doc, "size"));
    if ((uint64_t)st.st_size != (uint64_t)size)
        return st_err_set(err, -EIO, "the file of image %s has %lld bytes, its record says %lld",
                          id, (long long)st.st_size, (long long)size);
    *ret_fd = st_steal_fd(&fd);
    *ret_size = (uint64_t)st.st_size;
    return 0;
}

int st_image_gc(struct st_kv *kv, const char *data_dir, struct st_err **err)
{
    st_autofree char *dir_path = st_sprintf("%s/%s", data_dir, ST_IMAGE_DIR);
    DIR *dir = opendir(dir_path);
    if (!dir)
        return errno == ENOENT ? 0 : st_err_errno(err, "opening %s", dir_path);
    int r = 0;
    size_t removed = 0;
    time_t now = time(NULL);
    struct dirent *de;
    while ((de = readdir(dir))) {
        const char *name = de->d_name;
        bool tmp = strncmp(name, UPLOAD_TMP_PREFIX, strlen(UPLOAD_TMP_PREFIX)) == 0;
        if (!tmp && !st_uuid_valid(name))
            continue;
        struct stat st;
        if (fstatat(dirfd(dir), name, &st, AT_SYMLINK_NOFOLLOW) < 0 || !S_ISREG(st.st_mode))
            continue;
        bool stale;
        if (tmp) {
            stale = now - st.st_mtime > GC_TMP_AGE_S;
        } else {
            st_autofree char *key = st_sprintf("%s%s", ST_IMAGE_KEY_PREFIX, name);
            st_autoptr(st_kv_entry) e = NULL;
            int g = st_kv_get(kv, key, &e, err);
            if (g < 0 && g != -ENOENT) {
                r = g;
                break;
            }
            st_err_clear(err);
            stale = g == -ENOENT;
        }
        if (stale && unlinkat(dirfd(dir), name, 0) == 0) {
            st_log_info("image_file_removed", "file=%s reason=%s", name,
                        tmp ? "stale-upload" : "no-record");
            removed++;
        }
    }
    closedir(dir);
    return r;
}
