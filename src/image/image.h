/* The image service: a registry of images (records in the store) and their
 * files (one file per image in the controller's data dir). Glance v2 is the
 * model: an image is created "queued" with its metadata, receives its bytes
 * once ("saving" while they stream in, md5/sha512/size computed on the way,
 * never the whole file in memory), and is then "active" and immutable.
 *
 * Store: /images/<uuid>, one JSON document per image:
 *   {"id", "name" (string|null), "project_id" (the owner), "status",
 *    "visibility": "public"|"private"|"shared"|"community", "protected",
 *    "os_hidden", "disk_format", "container_format" (string|null),
 *    "min_disk", "min_ram", "size", "virtual_size", "checksum" (md5 hex),
 *    "os_hash_algo" ("sha512"), "os_hash_value", "tags": [],
 *    "properties": {"os_command_line": "...", ...}  -- user properties, strings
 *    "created_at", "updated_at",
 *    "upload": {"id", "renewed_at_ms"}             -- only while "saving"}
 * Files: <data-dir>/images/<uuid>, written to a temporary name, fsynced and
 * renamed into place before the record says "active".
 *
 * Who sees what: a public or community image is visible to every project, a
 * private or shared one only to its owner's project (image members are not
 * implemented, so "shared" behaves as "private"); an admin sees every image.
 * Lists show public images and the caller's own (community ones only when
 * asked for). Policy (who may publicize, write, delete) is decided by the
 * API layer before it calls in here; the service only keeps the records
 * consistent.
 *
 * Attributes come in Glance's flat view: core attributes and user properties
 * side by side ({"name": "x", "os_command_line": "/bin/sh"}); the stored
 * document keeps the properties apart, as compute/model.h's spec.image does. */
#pragma once

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "lib/cleanup.h"
#include "lib/err.h"

struct st_kv;

#define ST_IMAGE_KEY_PREFIX         "/images/"
#define ST_IMAGE_DIR                "images" /* under the data dir */
#define ST_IMAGE_NAME_MAX           255
#define ST_IMAGE_SIZE_MAX           (1ULL << 40) /* Glance's default image_size_cap: 1 TiB */
#define ST_IMAGE_PROPERTIES_MAX     128          /* Glance's image_property_quota */
#define ST_IMAGE_TAGS_MAX           128          /* Glance's image_tag_quota */
#define ST_IMAGE_PROPERTY_VALUE_MAX 65535
#define ST_IMAGE_PER_PROJECT_MAX    1000
/* A "saving" image whose upload has not been heard of for this long is taken
 * over by the next upload (its uploader died); uploads renew it as they go. */
#define ST_IMAGE_UPLOAD_LEASE_MS (60 * 1000)

/* Creates a queued image owned by project_id from Glance's create body:
 * name, id (a UUID, optional), disk_format, container_format, visibility
 * (default "shared", as Glance), protected, os_hidden, min_disk, min_ram,
 * tags, and any other key as a user property (a string). -EINVAL for a bad
 * value or format, -EPERM for a read-only attribute (status, size, ...),
 * -EEXIST for an id that is taken, -EDQUOT past ST_IMAGE_PER_PROJECT_MAX.
 * *ret (optional) is the stored document. */
int st_image_create(struct st_kv *kv, const char *project_id, json_t *attrs, json_t **ret,
                    struct st_err **err);

/* The stored document, whoever owns it; -ENOENT when absent. *ret_rev
 * (optional) is its mod_rev. */
int st_image_get(struct st_kv *kv, const char *id, json_t **ret, int64_t *ret_rev,
                 struct st_err **err);

/* True when the caller (a project, or an admin) may see this document. */
bool st_image_visible(json_t *doc, const char *project_id, bool is_admin);

/* The document if the caller may see it; -ENOENT ("No image found with ID
 * x") otherwise, so that another project's image is not revealed. */
int st_image_get_visible(struct st_kv *kv, const char *project_id, bool is_admin, const char *id,
                         json_t **ret, struct st_err **err);

/* An image by ID or name, as the caller sees it. A name matches the
 * caller's own images first, then public and community ones, then (admin
 * only) other projects'; two matches at the first level that has any give
 * -EEXIST ("more than one image named ..."), none -ENOENT. */
int st_image_find_visible(struct st_kv *kv, const char *project_id, bool is_admin,
                          const char *name_or_id, json_t **ret, struct st_err **err);

/* What GET /v2/images may ask for. NULL/negative/zero fields do not filter. */
struct st_image_filter {
    const char *id;
    const char *name;
    const char *visibility;    /* public|private|shared|community|all */
    const char *member_status; /* accepted|pending|rejected|all: images shared with the caller */
    const char *status;
    const char *owner; /* a project id (an admin sees any project's this way) */
    const char *disk_format;
    const char *container_format;
    const char *const *tags; /* all must be present */
    size_t n_tags;
    int hidden;                 /* -1: either, 0: not hidden (the default view), 1: hidden only */
    int protected_;             /* -1: either, 0 or 1 */
    int64_t size_min, size_max; /* -1: no bound */
    json_t *properties;         /* {"key": "value"}: user properties that must match */
    bool all_projects;          /* admin: every project's images */
    const char *sort_key;       /* created_at (default), updated_at, name, id, size, status */
    bool sort_asc;              /* default newest/largest first, as Glance */
    const char *marker;         /* id of the last image of the previous page */
    size_t limit;               /* 0: no limit */
};

/* Sets the defaults above (hidden 0, everything else off). */
void st_image_filter_init(struct st_image_filter *f);

/* The images the caller may list that match f, as a JSON array of stored
 * documents (new reference); *ret_more tells whether a next page exists.
 * -EINVAL for an unknown visibility, status, sort key, or a marker that is
 * not a visible image. */
int st_image_list(struct st_kv *kv, const char *project_id, bool is_admin,
                  const struct st_image_filter *f, json_t **ret, bool *ret_more,
                  struct st_err **err);

/* Applies a JSON patch in Glance's v2.1 form ([{"op": "add"|"replace"|
 * "remove", "path": "/name", "value": ...}], paths naming core attributes,
 * user properties or "/tags[/N|-]") atomically. -EPERM for a read-only or
 * core attribute removal, or a format change after the upload; -EINVAL for
 * bad values; -EEXIST (409) for replacing or removing an absent property. */
int st_image_update(struct st_kv *kv, const char *id, json_t *ops, json_t **ret,
                    struct st_err **err);

/* Adds (idempotent) or removes (-ENOENT when absent) one tag. */
int st_image_tag_add(struct st_kv *kv, const char *id, const char *tag, struct st_err **err);
int st_image_tag_remove(struct st_kv *kv, const char *id, const char *tag, struct st_err **err);

/* Deletes the record, then the file. -EPERM for a protected image. */
int st_image_delete(struct st_kv *kv, const char *data_dir, const char *id, struct st_err **err);

/* Streaming upload, in three steps so that an HTTP body can be fed chunk by
 * chunk: begin (the image must be queued, or "saving" with a lapsed lease,
 * and have both formats: -EALREADY when it has data, -EBUSY while another
 * upload runs, -EINVAL without formats) marks it "saving"; write appends
 * (hashing as it goes; -EFBIG past ST_IMAGE_SIZE_MAX); commit fsyncs,
 * renames and marks it "active" (*ret, optional, the new document). Freeing
 * an upload that was not committed removes its temporary file and puts the
 * image back to "queued". */
struct st_image_upload;
int st_image_upload_begin(struct st_kv *kv, const char *data_dir, const char *id,
                          struct st_image_upload **ret, struct st_err **err);
int st_image_upload_write(struct st_image_upload *up, const void *data, size_t len,
                          struct st_err **err);
int st_image_upload_commit(struct st_image_upload *up, json_t **ret, struct st_err **err);
void st_image_upload_free(struct st_image_upload *up);
ST_DEFINE_AUTOPTR(st_image_upload, st_image_upload_free)

/* Creates an image (as st_image_create) and uploads the file at path into
 * it; on failure the half-made image is deleted. For `stratosd init
 * --import-image` and tests. */
int st_image_import(struct st_kv *kv, const char *data_dir, const char *project_id, json_t *attrs,
                    const char *path, json_t **ret, struct st_err **err);

/* Opens an active image's file for reading (no visibility check: for the
 * internal API that agents use, and the download handler after its own
 * check). -ENOENT for no such image, -ENXIO when it has no data yet. */
int st_image_open_file(struct st_kv *kv, const char *data_dir, const char *id, int *ret_fd,
                       uint64_t *ret_size, struct st_err **err);

/* "<data_dir>/images/<id>" (id must be a valid UUID: -EINVAL otherwise). */
int st_image_file_path(const char *data_dir, const char *id, char **ret, struct st_err **err);

/* Removes image files that no record names (left by a crash between a
 * record's deletion and its file's) and temporary upload files older than an
 * hour. Idempotent; `stratosd init` runs it. */
int st_image_gc(struct st_kv *kv, const char *data_dir, struct st_err **err);

/* Glance's format lists. */
bool st_image_disk_format_valid(const char *fmt);
bool st_image_container_format_valid(const char *fmt);
