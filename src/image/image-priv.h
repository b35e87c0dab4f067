/* Shared between the image service's files (record.c, attrs.c, patch.c,
 * upload.c) and its unit test only. */
#pragma once

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "lib/err.h"

struct st_kv;

/* "/images/<id>"; id must be a UUID (-ENOENT otherwise: no such image). */
int image_key(const char *id, char **ret, struct st_err **err);

/* Writes doc at its key if the record is still at expect_rev (ST_KV_ABSENT
 * for a new one); -ECANCELED when it changed. */
int image_store(struct st_kv *kv, json_t *doc, int64_t expect_rev, struct st_err **err);

/* A fresh queued document (no formats, no data, visibility "shared"). */
json_t *image_doc_new(const char *id, const char *project_id);

/* Sets updated_at to now. */
void image_touch(json_t *doc);

/* Sets one attribute of Glance's flat view on a stored document: a core
 * attribute, or a user property (value NULL removes it; removing a core
 * attribute is -EPERM). creating allows "id" and formats at any status. */
int image_attr_set(json_t *doc, const char *key, json_t *value, bool creating, struct st_err **err);

/* True for Glance's core attribute names (settable or read-only). */
bool image_attr_is_core(const char *key);

/* Validates one tag (1..255 bytes, no control characters). */
int image_tag_check(const char *tag, struct st_err **err);

/* Read-modify-write with compare-and-swap, retried on conflicts: fn edits a
 * copy of the current document (return < 0 to give up). *ret (optional)
 * receives the written document. */
typedef int (*image_edit_fn)(json_t *doc, void *userdata, struct st_err **err);
int image_edit(struct st_kv *kv, const char *id, image_edit_fn fn, void *userdata, json_t **ret,
               struct st_err **err);
