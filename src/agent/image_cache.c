/* The node's image cache; see image_cache.h. */
#include "agent/image_cache.h"

#include <errno.h>
#include <fcntl.h>
#include <openssl/evp.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "agent/client.h"
#include "lib/files.h"
#include "lib/json.h"
#include "lib/log.h"
#include "lib/times.h"
#include "lib/uuid.h"

struct st_image_cache {
    char *dir;
    struct st_agent_client *client;
    pthread_mutex_t lock;
    json_t *expected; /* image id → md5 hex */
    json_t *paths;    /* image id → path of a verified file (strings live until free) */
};

int st_image_cache_new(const char *dir, struct st_agent_client *client, struct st_image_cache **ret,
                       struct st_err **err)
{
    int r = st_mkdir_p(dir, 0700, err);
    if (r < 0)
        return st_err_prefix(err, r, "image cache");
    struct st_image_cache *c = st_new0(struct st_image_cache, 1);
    c->dir = st_strdup(dir);
    c->client = client;
    pthread_mutex_init(&c->lock, NULL);
    c->expected = json_object();
    c->paths = json_object();
    *ret = c;
    return 0;
}

void st_image_cache_free(struct st_image_cache *c)
{
    if (!c)
        return;
    pthread_mutex_destroy(&c->lock);
    json_decref(c->expected);
    json_decref(c->paths);
    free(c->dir);
    free(c);
}

void st_image_cache_expect(struct st_image_cache *c, const char *image_id, const char *md5_hex)
{
    if (!c || !image_id || !md5_hex || !md5_hex[0])
        return;
    pthread_mutex_lock(&c->lock);
    json_object_set_new(c->expected, image_id, json_string(md5_hex));
    pthread_mutex_unlock(&c->lock);
}

static void md5_update(void *userdata, const void *data, size_t len)
{
    EVP_DigestUpdate(userdata, data, len);
}

/* Called with the lock held: downloads into a temporary file of the cache
 * dir, checks, fsyncs and renames it to path. */
static int fetch(struct st_image_cache *c, const char *image_id, const char *path,
                 const char *expected, struct st_err **err)
{
    st_autofree char *tmp = st_sprintf("%s/.%s.XXXXXX", c->dir, image_id);
    st_autoclose int fd = mkostemp(tmp, O_CLOEXEC);
    if (fd < 0)
        return st_err_errno(err, "creating %s", tmp);
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    if (!md || !EVP_DigestInit_ex(md, EVP_md5(), NULL))
        abort();
    int64_t t0 = st_time_mono_ns();
    st_autofree char *url = st_sprintf("/internal/v1/images/%s/file", image_id);
    int r = st_agent_client_download(c->client, url, fd, md5_update, md, err);
    unsigned char digest[EVP_MAX_MD_SIZE];
    unsigned dlen = 0;
    EVP_DigestFinal_ex(md, digest, &dlen);
    EVP_MD_CTX_free(md);
    if (r < 0)
        goto fail;
    char hex[2 * EVP_MAX_MD_SIZE + 1];
    st_hex_encode(digest, dlen, hex);
    if (expected && strcasecmp(expected, hex) != 0) {
        r = st_err_set(err, -EBADMSG, "image %s: checksum mismatch: got md5 %s, expected %s",
                       image_id, hex, expected);
        goto fail;
    }
    if (!expected)
        st_log_warn("image_unchecked", "image=%s md5=%s hint=\"no checksum known\"", image_id, hex);
    if (fsync(fd) < 0) {
        r = st_err_errno(err, "fsync %s", tmp);
        goto fail;
    }
    if (rename(tmp, path) < 0) {
        r = st_err_errno(err, "renaming %s", tmp);
        goto fail;
    }
    r = st_fsync_parent(path, err);
    if (r < 0)
        return r;
    struct stat st = {0};
    fstat(fd, &st);
    st_log_info("image_fetched", "image=%s bytes=%lld md5=%s ms=%.1f", image_id,
                (long long)st.st_size, hex, (st_time_mono_ns() - t0) / 1e6);
    return 0;
fail:
    unlink(tmp);
    return r;
}

int st_image_cache_path(struct st_image_cache *c, const char *image_id, const char **ret_path,
                        struct st_err **err)
{
    if (!image_id || !st_path_component_valid(image_id) || image_id[0] == '.')
        return st_err_set(err, -EINVAL, "invalid image id '%s'", image_id ? image_id : "");
    st_autofree char *path = st_sprintf("%s/%s.blob", c->dir, image_id);
    pthread_mutex_lock(&c->lock);
    int r = 0;
    json_t *known = json_object_get(c->paths, image_id);
    /* A file the image cache's prune removed (drivers/rootfs.h) is fetched
     * again, under the same name: borrowed paths stay valid. */
    if (known && access(json_string_value(known), F_OK) == 0) {
        *ret_path = json_string_value(known);
        goto out;
    }
    /* A file under its final name was verified before its rename. */
    if (access(path, F_OK) != 0) {
        const char *expected = json_string_value(json_object_get(c->expected, image_id));
        r = fetch(c, image_id, path, expected, err);
        if (r < 0) {
            st_err_prefix(err, r, "fetching image %s", image_id);
            goto out;
        }
    }
    if (!known)
        json_object_set_new(c->paths, image_id, json_string(path));
    *ret_path = json_string_value(json_object_get(c->paths, image_id));
out:
    pthread_mutex_unlock(&c->lock);
    return r;
}
