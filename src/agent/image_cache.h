/* The node's image cache: image files fetched from the controller (GET
 * /internal/v1/images/{id}/file) into <agent data dir>/images/<id>.blob,
 * written to a temporary file, checked against the image's md5 checksum
 * (the server document's spec.image.checksum, as Glance computes it),
 * fsynced and renamed, so a file under its final name is always whole and
 * right. Drivers reach it through st_driver_ctx.image_path. Downloads are
 * serialized (one at a time per node), which also makes two servers of the
 * same new image fetch it once. */
#pragma once

#include "lib/cleanup.h"
#include "lib/err.h"

struct st_agent_client;
struct st_image_cache;

/* client is borrowed and used only under the cache's lock. */
int st_image_cache_new(const char *dir, struct st_agent_client *client, struct st_image_cache **ret,
                       struct st_err **err);
void st_image_cache_free(struct st_image_cache *c);
ST_DEFINE_AUTOPTR(st_image_cache, st_image_cache_free)

/* Records the checksum an image must have (from a server document); NULL or
 * empty = unknown (the download is then accepted unchecked, with a warning). */
void st_image_cache_expect(struct st_image_cache *c, const char *image_id, const char *md5_hex);

/* The local file of an image, fetched first if needed; *ret_path is
 * borrowed and valid until the cache is freed. */
int st_image_cache_path(struct st_image_cache *c, const char *image_id, const char **ret_path,
                        struct st_err **err);
