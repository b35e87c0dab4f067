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
 * The cache is pruned as Nova's image cache manager prunes its base images:
 * an image that no instance on the node uses (running or stopped) is removed
 * once it has been unused for a maximum age, or at once when it no longer
 * exists in the image service. Which instance uses which image is on disk,
 * not in memory: every instance directory holds a record naming its image
 * (ST_ROOTFS_IMAGE_RECORD), written under the image's lock before its
 * overlay is mounted, and the prune checks the records again under that same
 * lock before it removes anything. So a create racing a prune either comes
 * first (and the prune sees its record) or finds the image gone and unpacks
 * it again; the removal itself is a rename out of the way, so no create ever
 * mounts a half-deleted lower directory. An image directory's mtime is when
 * the image was last seen in use (each take and each prune pass that finds
 * it in use touch it; an instance's destroy too).
 *
 * Writing into a root filesystem (keys, user data, /etc/hostname) resolves
 * paths with openat2(RESOLVE_IN_ROOT): a symlink in the image such as
 * /root/.ssh -> /etc resolves inside the root, never on the host. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "lib/err.h"

/* Unpacks tarball into dest (created; must not exist yet). Exposed for
 * tests; the driver uses st_rootfs_image_get. */
int st_rootfs_unpack(const char *tarball, const char *dest, struct st_err **err);

/* The file in an instance directory that names the image its root is made
 * of (the image id and a newline). */
#define ST_ROOTFS_IMAGE_RECORD "image"

/* The cached rootfs of image_id, unpacking tarball on first use:
 * *ret = <images_dir>/<image_id>/rootfs. With instance_dir, records under
 * the image's lock that this instance uses the image (see above). -EAGAIN
 * when the image must be unpacked but tarball is gone (a prune removed it
 * meanwhile): fetch the file again and retry. */
int st_rootfs_image_get(const char *images_dir, const char *image_id, const char *tarball,
                        const char *instance_dir, char **ret, struct st_err **err);

/* Marks the image that instance_dir records as used now (its unused age
 * starts again), before the instance goes. Nothing to do without a record. */
void st_rootfs_image_release(const char *images_dir, const char *instance_dir);

struct st_rootfs_prune {
    int64_t max_age_s; /* unused for longer than this: removed */
    int64_t now_s;     /* wall clock, seconds (file times are compared with it) */
    /* Optional, asked only about images no instance uses and not yet too
     * old: 1 when the image no longer exists in the image service (it goes
     * at once), 0 when it does, negative when that cannot be told now. */
    int (*image_gone)(void *userdata, const char *image_id);
    void *userdata;
};

/* The decision for one cached image: true when it goes. gone as above. */
bool st_rootfs_prune_due(bool in_use, int gone, int64_t last_used_s, int64_t now_s,
                         int64_t max_age_s);

/* One pass of the image cache manager over images_dir, the instances being
 * the directories of instances_dir: every image (an unpacked directory
 * and/or a downloaded <id>.blob, agent/image_cache.h) in use is touched,
 * every one due is removed. An instance directory that has a bundle but no
 * record (made before records existed) uses an unknown image: then nothing
 * is removed. *ret_removed (may be NULL): how many images went. */
int st_rootfs_image_prune(const char *images_dir, const char *instances_dir,
                          const struct st_rootfs_prune *opts, unsigned *ret_removed,
                          struct st_err **err);

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
