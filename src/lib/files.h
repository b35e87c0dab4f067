/* Files and paths: joining a user-supplied name onto a trusted directory
 * without escaping it, creating directories, reading a bounded file and
 * writing one atomically and durably (temp file, fsync, rename, fsync dir). */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "err.h"

#define ST_NAME_MAX 255

/* True if name is usable as one path component: 1..ST_NAME_MAX bytes, not
 * "." or "..", no '/', no control characters. */
bool st_path_component_valid(const char *name);

/* *ret = base + "/" + name, where name must be a single valid component.
 * -EINVAL with a message naming the bad input otherwise. */
int st_path_join(const char *base, const char *name, char **ret, struct st_err **err);

/* As st_path_join, for a relative path of several components ("a/b/c"),
 * each validated; no leading '/', no empty, "." or ".." component. */
int st_path_join_rel(const char *base, const char *rel, char **ret, struct st_err **err);

/* mkdir -p; existing directories are fine. */
int st_mkdir_p(const char *path, mode_t mode, struct st_err **err);

/* Reads at most max bytes (-EFBIG if larger); *ret is NUL-terminated. */
int st_read_file(const char *path, size_t max, char **ret, size_t *ret_len, struct st_err **err);

/* Writes path atomically with the given mode: after return the content
 * survives a crash or power loss, and readers see old or new, never half. */
int st_write_file_atomic(const char *path, const void *data, size_t len, mode_t mode,
                         struct st_err **err);

/* fsync of the directory holding path (after create/rename/unlink). */
int st_fsync_parent(const char *path, struct st_err **err);
