/* Root filesystems of container instances: the node's read-only cache of
 * unpacked images, the per-instance overlayfs over it, and safe writes into
 * a root filesystem that the image's author controls.
 *
 * Images are rootfs tarballs (plain, gzip or zstd). They are unpacked with
 * libarchive rather than by running tar: one pass that detects the
 * compression itself, a check of every member name before anything is
 * written (an absolute name or a ".." component rejects the whole image,
 * with the member named in the error), libarchive's SECURE_SYMLINKS and
 * SECURE_NODOTDOT as a second line (never extract through a symlink the
 * archive planted), and device nodes skipped (the container's /dev is a
 * tmpfs, and the overlay is mounted nodev). Each image is unpacked once per
 * node into <data>/images/<image id>/rootfs: into a temporary directory,
 * then renamed, under a lock file, so concurrent creates of the same image
 * unpack it once and a crash leaves no half cache.
 *
 * Writing into a root filesystem (keys, user data, /etc/hostname) resolves
 * paths with openat2(RESOLVE_IN_ROOT): a symlink in the image such as
 * /root/.ssh -> /etc resolves inside the root, never on the host. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "lib/err.h"

/* Unpacks tarball into dest (created; must not exist yet). Exposed for
 * tests; the driver uses st_rootfs_image_get. */
int st_rootfs_unpack(const char *tarball, const char *dest, struct st_err **err);

/* The cached rootfs of image_id, unpacking tarball on first use:
 * *ret = <images_dir>/<image_id>/rootfs. */
int st_rootfs_image_get(const char *images_dir, const char *image_id, const char *tarball,
                        char **ret, struct st_err **err);

/* Mounts overlayfs at target (lower read-only, upper and work per instance),
 * nodev; nothing to do when target is already a mount point. */
int st_rootfs_overlay_mount(const char *lower, const char *upper, const char *work,
                            const char *target, struct st_err **err);

/* True if path is a mount point in this mount namespace (mountinfo). */
bool st_rootfs_is_mounted(const char *path);

/* Unmounts target; nothing to do when it is not mounted. */
int st_rootfs_umount(const char *target, struct st_err **err);

/* Writes rel (e.g. "root/.ssh/authorized_keys") under root with mode,
 * creating missing parent directories with dir_mode; the file's own
 * directory is set to dir_mode even when it existed (sshd insists on 0700
 * for .ssh). The file itself must not be a symlink. */
int st_rootfs_write(const char *root, const char *rel, const void *data, size_t len, mode_t mode,
                    mode_t dir_mode, struct st_err **err);

/* True if rel resolves (inside root) to an executable regular file. */
bool st_rootfs_has_exec(const char *root, const char *rel);

/* rm -rf that never follows a symlink nor crosses into another mount
 * (a still-mounted overlay is left alone, and then its parent fails to go:
 * the error says so). Absent path: 0. */
int st_rootfs_remove_tree(const char *path, struct st_err **err);
