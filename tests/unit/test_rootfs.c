/* Tests of the node's images and root filesystems (src/agent/drivers/
 * rootfs.c): image unpacking in each compression a user's tar makes (and
 * the archives it must refuse: paths, hard links and symlinks that escape
 * the root, device nodes), the image cache shared by concurrent creates,
 * its prune (unused past the max age, deleted from Glance, never while an
 * instance uses it or a create holds its lock, racing creates), and safe
 * writes into a root filesystem whose symlinks point outside. Each test
 * runs in its own temporary directory, removed even when it fails. */
#include <archive.h>
#include <archive_entry.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <time.h>
#include <unistd.h>
#include <cmocka.h>

#include "agent/drivers/rootfs.h"
#include "container_harness.h"
#include "lib/cleanup.h"
#include "lib/err.h"
#include "lib/files.h"
#include "lib/json.h"

/* --------------------------------------------------------------- images */

static void make_tree(const char *root)
{
    st_autoptr(st_err) e = NULL;
    st_autofree char *bin = st_sprintf("%s/bin", root);
    st_autofree char *etc = st_sprintf("%s/etc", root);
    st_autofree char *secret = st_sprintf("%s/root", root);
    assert_int_equal(st_mkdir_p(bin, 0755, &e), 0);
    assert_int_equal(st_mkdir_p(etc, 0755, &e), 0);
    assert_int_equal(st_mkdir_p(secret, 0700, &e), 0);
    chmod(secret, 0700);
    st_autofree char *tool = st_sprintf("%s/bin/tool", root);
    write_text(tool, "#!/bin/sh\necho tool\n", 0755);
    st_autofree char *os = st_sprintf("%s/etc/os-release", root);
    write_text(os, "ID=test\n", 0644);
    st_autofree char *link = st_sprintf("%s/bin/sh", root);
    assert_int_equal(symlink("/bin/tool", link), 0);
}

static void check_tree(const char *root)
{
    struct stat st;
    st_autofree char *tool = st_sprintf("%s/bin/tool", root);
    assert_int_equal(stat(tool, &st), 0);
    assert_int_equal(st.st_mode & 07777, 0755);
    st_autofree char *secret = st_sprintf("%s/root", root);
    assert_int_equal(stat(secret, &st), 0);
    assert_int_equal(st.st_mode & 07777, 0700);
    st_autofree char *os = st_sprintf("%s/etc/os-release", root);
    st_autofree char *text = read_text(os);
    assert_string_equal(text, "ID=test\n");
    st_autofree char *link = st_sprintf("%s/bin/sh", root);
    char target[256] = {0};
    assert_int_equal(readlink(link, target, sizeof(target) - 1), (ssize_t)strlen("/bin/tool"));
    assert_string_equal(target, "/bin/tool");
}

static void test_unpack_compressions(void **state)
{
    const char *tmp = *state;
    st_autofree char *src = st_sprintf("%s/src", tmp);
    make_tree(src);
    /* tar picks the compression from the name (-a), as a user's tar would. */
    const char *names[] = {"plain.tar", "gzip.tar.gz", "zstd.tar.zst"};
    for (size_t i = 0; i < ST_ARRAY_SIZE(names); i++) {
        st_autofree char *tar = st_sprintf("%s/%s", tmp, names[i]);
        assert_int_equal(
            run((const char *const[]){"tar", "-a", "-C", src, "-cf", tar, ".", NULL}, NULL), 0);
        st_autofree char *magic = read_text(tar);
        assert_non_null(magic);
        if (i == 1)
            assert_true((unsigned char)magic[0] == 0x1f && (unsigned char)magic[1] == 0x8b);
        if (i == 2)
            assert_true((unsigned char)magic[0] == 0x28 && (unsigned char)magic[1] == 0xb5);
        st_autofree char *dest = st_sprintf("%s/out%zu", tmp, i);
        st_autoptr(st_err) err = NULL;
        int r = st_rootfs_unpack(tar, dest, &err);
        if (r < 0)
            fprintf(stderr, "%s: %s\n", names[i], st_err_msg(err));
        assert_int_equal(r, 0);
        check_tree(dest);
    }

    /* The cache: unpacked once, then the same directory again. */
    st_autofree char *images = st_sprintf("%s/images", tmp);
    st_autofree char *tar = st_sprintf("%s/gzip.tar.gz", tmp);
    st_autofree char *rootfs = NULL, *again = NULL;
    st_autoptr(st_err) err = NULL;
    assert_int_equal(st_rootfs_image_get(images, "img-1", tar, NULL, &rootfs, &err), 0);
    check_tree(rootfs);
    struct stat a, b;
    assert_int_equal(stat(rootfs, &a), 0);
    assert_int_equal(st_rootfs_image_get(images, "img-1", "/nonexistent.tar", NULL, &again, &err),
                     0);
    assert_int_equal(stat(again, &b), 0);
    assert_int_equal(a.st_ino, b.st_ino);
    st_autofree char *bad = NULL;
    assert_int_equal(st_rootfs_image_get(images, "../x", tar, NULL, &bad, &err), -EINVAL);
}

struct cache_job {
    const char *images, *tar;
    int r;
    char *rootfs;
};

static void *cache_worker(void *arg)
{
    struct cache_job *j = arg;
    st_autoptr(st_err) err = NULL;
    j->r = st_rootfs_image_get(j->images, "shared", j->tar, NULL, &j->rootfs, &err);
    return NULL;
}

static void test_image_cache_concurrent(void **state)
{
    const char *tmp = *state;
    st_autofree char *src = st_sprintf("%s/src", tmp);
    make_tree(src);
    st_autofree char *tar = st_sprintf("%s/img.tar", tmp);
    assert_int_equal(run((const char *const[]){"tar", "-C", src, "-cf", tar, ".", NULL}, NULL), 0);
    st_autofree char *images = st_sprintf("%s/images", tmp);
    struct cache_job jobs[4];
    pthread_t t[4];
    for (int i = 0; i < 4; i++) {
        jobs[i] = (struct cache_job){.images = images, .tar = tar};
        assert_int_equal(pthread_create(&t[i], NULL, cache_worker, &jobs[i]), 0);
    }
    for (int i = 0; i < 4; i++) {
        pthread_join(t[i], NULL);
        assert_int_equal(jobs[i].r, 0);
        assert_string_equal(jobs[i].rootfs, jobs[0].rootfs);
        check_tree(jobs[i].rootfs);
    }
    for (int i = 0; i < 4; i++)
        free(jobs[i].rootfs);
    st_autofree char *leftover = st_sprintf("%s/shared/rootfs.tmp", images);
    assert_int_equal(access(leftover, F_OK), -1);
}

/* ------------------------------------------------------ image cache prune */

static void test_prune_due(void **state)
{
    (void)state;
    const int64_t now = 1000000, day = 86400;
    /* in use: never, whatever its age or Glance says */
    assert_false(st_rootfs_prune_due(true, -1, now - 10 * day, now, day));
    assert_false(st_rootfs_prune_due(true, 1, now - 10 * day, now, day));
    /* unused: after the max age, not at it */
    assert_false(st_rootfs_prune_due(false, -1, now - day, now, day));
    assert_true(st_rootfs_prune_due(false, -1, now - day - 1, now, day));
    assert_true(st_rootfs_prune_due(false, 0, now - day - 1, now, day));
    /* unused and deleted from Glance: at once */
    assert_true(st_rootfs_prune_due(false, 1, now, now, day));
    assert_false(st_rootfs_prune_due(false, 0, now, now, day));
    /* a clock that went back: not old */
    assert_false(st_rootfs_prune_due(false, -1, now + 100, now, day));
}

static void set_mtime(const char *path, int64_t t)
{
    struct timespec ts[2] = {{.tv_sec = t}, {.tv_sec = t}};
    assert_int_equal(utimensat(AT_FDCWD, path, ts, AT_SYMLINK_NOFOLLOW), 0);
}

static int64_t mtime_of(const char *path)
{
    struct stat st;
    return lstat(path, &st) == 0 ? (int64_t)st.st_mtim.tv_sec : -1;
}

/* images/<id>/rootfs (with a file) and/or images/<id>.blob, unused since t. */
static void fake_image(const char *images, const char *id, bool unpacked, bool blob, int64_t t)
{
    st_autofree char *dir = st_sprintf("%s/%s", images, id);
    if (unpacked) {
        st_autofree char *etc = st_sprintf("%s/rootfs/etc", dir);
        st_autoptr(st_err) e = NULL;
        assert_int_equal(st_mkdir_p(etc, 0755, &e), 0);
        st_autofree char *f = st_sprintf("%s/os-release", etc);
        write_text(f, "ID=test\n", 0644);
        set_mtime(dir, t);
    }
    if (blob) {
        st_autofree char *b = st_sprintf("%s/%s.blob", images, id);
        write_text(b, "tarball", 0600);
        set_mtime(b, t);
    }
}

static bool image_present(const char *images, const char *id)
{
    st_autofree char *dir = st_sprintf("%s/%s", images, id);
    st_autofree char *b = st_sprintf("%s/%s.blob", images, id);
    return access(dir, F_OK) == 0 || access(b, F_OK) == 0;
}

struct gone_calls {
    json_t *asked; /* ids asked about */
};

static int fake_gone(void *userdata, const char *image_id)
{
    struct gone_calls *g = userdata;
    json_object_set_new(g->asked, image_id, json_true());
    if (strcmp(image_id, "img-deleted") == 0)
        return 1;
    if (strcmp(image_id, "img-unknown") == 0)
        return -1;
    return 0;
}

static void test_image_prune(void **state)
{
    const char *tmp = *state;
    st_autofree char *images = st_sprintf("%s/images", tmp);
    st_autofree char *instances = st_sprintf("%s/instances", tmp);
    st_autoptr(st_err) err = NULL;
    assert_int_equal(st_mkdir_p(images, 0700, &err), 0);
    int64_t now = time(NULL), old = now - 3 * 86400;

    fake_image(images, "img-used", true, true, old);     /* an instance's: stays, touched */
    fake_image(images, "img-stopped", true, false, old); /* a stopped instance's: stays */
    fake_image(images, "img-old", true, true, old);      /* unused for 3 days: goes */
    fake_image(images, "img-blob", false, true, old);    /* a download never unpacked: goes */
    fake_image(images, "img-new", true, true, now - 60); /* unused for a minute: stays */
    fake_image(images, "img-deleted", true, true, now);  /* gone from Glance: goes at once */
    fake_image(images, "img-unknown", true, false, now); /* Glance unreachable: stays */
    /* instances: two with records, one being created (no record, no bundle
     * yet: it takes the image's lock before it mounts anything), and one
     * that is not a container (the sim driver's) */
    const char *inst[][2] = {{"i-running", "img-used"},
                             {"i-stopped", "img-stopped"},
                             {"i-creating", NULL},
                             {"i-sim", NULL}};
    for (size_t i = 0; i < ST_ARRAY_SIZE(inst); i++) {
        st_autofree char *d = st_sprintf("%s/%s", instances, inst[i][0]);
        assert_int_equal(st_mkdir_p(d, 0700, &err), 0);
        if (inst[i][1]) {
            st_autofree char *rec = st_sprintf("%s/" ST_ROOTFS_IMAGE_RECORD, d);
            st_autofree char *text = st_sprintf("%s\n", inst[i][1]);
            write_text(rec, text, 0600);
        }
    }
    /* a crashed prune's leftover */
    st_autofree char *trash = st_sprintf("%s/.trash-img-x/etc", images);
    assert_int_equal(st_mkdir_p(trash, 0700, &err), 0);

    struct gone_calls g = {.asked = json_object()};
    struct st_rootfs_prune opts = {
        .max_age_s = 86400, .now_s = now, .image_gone = fake_gone, .userdata = &g};
    unsigned removed = 0;
    assert_int_equal(st_rootfs_image_prune(images, instances, &opts, &removed, &err), 0);
    assert_int_equal(removed, 3);
    assert_true(image_present(images, "img-used"));
    assert_true(image_present(images, "img-stopped"));
    assert_true(image_present(images, "img-new"));
    assert_true(image_present(images, "img-unknown"));
    assert_false(image_present(images, "img-old"));
    assert_false(image_present(images, "img-blob"));
    assert_false(image_present(images, "img-deleted"));
    /* in use: its unused age starts again now */
    st_autofree char *used_dir = st_sprintf("%s/img-used", images);
    assert_true(mtime_of(used_dir) >= now);
    /* Glance is asked only about unused images not already too old */
    assert_null(json_object_get(g.asked, "img-used"));
    assert_null(json_object_get(g.asked, "img-old"));
    assert_non_null(json_object_get(g.asked, "img-new"));
    assert_non_null(json_object_get(g.asked, "img-deleted"));
    /* nothing half-removed is left: no trash, no rootfs of a removed image */
    st_autofree char *count = st_sprintf("test $(ls -A '%s' | grep -c trash) -eq 0", images);
    assert_int_equal(system(count), 0);

    /* A create taking an image records it; the prune then keeps it. */
    st_autofree char *src = st_sprintf("%s/src", tmp);
    make_tree(src);
    st_autofree char *tar = st_sprintf("%s/img.tar", tmp);
    assert_int_equal(run((const char *const[]){"tar", "-C", src, "-cf", tar, ".", NULL}, NULL), 0);
    st_autofree char *inst_new = st_sprintf("%s/i-new", instances);
    assert_int_equal(st_mkdir_p(inst_new, 0700, &err), 0);
    st_autofree char *lower = NULL;
    assert_int_equal(st_rootfs_image_get(images, "img-fresh", tar, inst_new, &lower, &err), 0);
    check_tree(lower);
    st_autofree char *rec = st_sprintf("%s/" ST_ROOTFS_IMAGE_RECORD, inst_new);
    st_autofree char *rec_text = read_text(rec);
    assert_string_equal(rec_text, "img-fresh\n");
    opts.now_s = now + 10 * 86400;
    opts.image_gone = NULL;
    assert_int_equal(st_rootfs_image_prune(images, instances, &opts, &removed, &err), 0);
    assert_int_equal(removed, 2); /* img-new and img-unknown, unused for 10 days */
    assert_true(image_present(images, "img-fresh"));
    assert_true(image_present(images, "img-used"));
    assert_true(image_present(images, "img-stopped"));
    check_tree(lower);

    /* The instance goes (its destroy touches the image first): after the
     * max age from then, the image goes too. */
    st_autofree char *fresh_dir = st_sprintf("%s/img-fresh", images);
    set_mtime(fresh_dir, old);
    st_rootfs_image_release(images, inst_new);
    assert_true(mtime_of(fresh_dir) >= now);
    rm_tree(inst_new);
    opts.now_s = time(NULL) + 10;
    assert_int_equal(st_rootfs_image_prune(images, instances, &opts, &removed, &err), 0);
    assert_true(image_present(images, "img-fresh"));
    opts.now_s = time(NULL) + 86400 + 10;
    assert_int_equal(st_rootfs_image_prune(images, instances, &opts, &removed, &err), 0);
    assert_int_equal(removed, 1);
    assert_false(image_present(images, "img-fresh"));

    /* A create after the prune unpacks again; without the file: -EAGAIN
     * (the agent fetches it again). */
    st_autofree char *again = NULL;
    st_autoptr(st_err) e2 = NULL;
    assert_int_equal(
        st_rootfs_image_get(images, "img-fresh", "/nonexistent.tar", NULL, &again, &e2), -EAGAIN);
    assert_int_equal(st_rootfs_image_get(images, "img-fresh", tar, NULL, &again, &err), 0);
    check_tree(again);

    /* An image whose lock a create holds is left alone. */
    st_autofree char *lock_path = st_sprintf("%s/img-fresh/.lock", images);
    int lock = open(lock_path, O_RDWR | O_CLOEXEC);
    assert_true(lock >= 0);
    assert_int_equal(flock(lock, LOCK_EX), 0);
    opts.now_s = time(NULL) + 86400 + 10;
    assert_int_equal(st_rootfs_image_prune(images, instances, &opts, &removed, &err), 0);
    assert_int_equal(removed, 0);
    assert_true(image_present(images, "img-fresh"));
    close(lock);

    /* An instance with a bundle but no record (an older agent's): its image
     * is unknown, so nothing at all is removed. */
    st_autofree char *legacy = st_sprintf("%s/i-legacy/bundle", instances);
    assert_int_equal(st_mkdir_p(legacy, 0700, &err), 0);
    st_autofree char *config = st_sprintf("%s/config.json", legacy);
    write_text(config, "{}", 0600);
    assert_int_equal(st_rootfs_image_prune(images, instances, &opts, &removed, &err), 0);
    assert_int_equal(removed, 0);
    assert_true(image_present(images, "img-fresh"));
    st_autofree char *legacy_dir = st_sprintf("%s/i-legacy", instances);
    rm_tree(legacy_dir);
    assert_int_equal(st_rootfs_image_prune(images, instances, &opts, &removed, &err), 0);
    assert_int_equal(removed, 1);
    assert_false(image_present(images, "img-fresh"));
    json_decref(g.asked);
}

struct prune_race {
    const char *images, *instances, *tar;
    int creates;
    int failures;
    bool stop; /* __atomic */
};

static void *race_creator(void *arg)
{
    struct prune_race *pr = arg;
    for (int i = 0; i < pr->creates; i++) {
        st_autofree char *inst = st_sprintf("%s/i-%d", pr->instances, i);
        st_autoptr(st_err) err = NULL;
        st_autofree char *lower = NULL;
        if (st_mkdir_p(inst, 0700, &err) < 0 ||
            st_rootfs_image_get(pr->images, "img-race", pr->tar, inst, &lower, &err) < 0) {
            fprintf(stderr, "create %d: %s\n", i, st_err_msg(err));
            pr->failures++;
            continue;
        }
        /* what the overlay would mount: whole, and stays whole while used */
        st_autofree char *f = st_sprintf("%s/etc/os-release", lower);
        st_autofree char *text = read_text(f);
        if (!text || strcmp(text, "ID=test\n") != 0)
            pr->failures++;
        usleep(500);
        st_autofree char *later = read_text(f);
        if (!later)
            pr->failures++;
        rm_tree(inst); /* the instance goes: the image is free again */
    }
    __atomic_store_n(&pr->stop, true, __ATOMIC_RELEASE);
    return NULL;
}

/* Creates race a prune that removes the image whenever nobody uses it: a
 * create either keeps the image (its record is seen) or unpacks it again;
 * never a missing or half-deleted root. */
static void test_image_prune_race(void **state)
{
    const char *tmp = *state;
    st_autofree char *src = st_sprintf("%s/src", tmp);
    make_tree(src);
    st_autofree char *tar = st_sprintf("%s/img.tar", tmp);
    assert_int_equal(run((const char *const[]){"tar", "-C", src, "-cf", tar, ".", NULL}, NULL), 0);
    /* the prune removes the blob with the image: keep the tarball elsewhere */
    st_autofree char *images = st_sprintf("%s/images", tmp);
    st_autofree char *instances = st_sprintf("%s/instances", tmp);
    st_autoptr(st_err) err = NULL;
    assert_int_equal(st_mkdir_p(instances, 0700, &err), 0);
    struct prune_race pr = {.images = images, .instances = instances, .tar = tar, .creates = 200};
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, race_creator, &pr), 0);
    unsigned total = 0;
    struct st_rootfs_prune opts = {.max_age_s = 0};
    while (!__atomic_load_n(&pr.stop, __ATOMIC_ACQUIRE)) {
        unsigned removed = 0;
        opts.now_s = time(NULL) + 10; /* everything unused is old */
        assert_int_equal(st_rootfs_image_prune(images, instances, &opts, &removed, &err), 0);
        total += removed;
    }
    pthread_join(t, NULL);
    assert_int_equal(pr.failures, 0);
    assert_true(total > 0); /* the race really ran */
}

/* An archive written entry by entry, names as given (tar would fix them). */
struct entry {
    const char *name;
    mode_t type;
    const char *content_or_target;
};

static void write_archive(const char *path, const struct entry *entries, size_t n)
{
    struct archive *a = archive_write_new();
    archive_write_set_format_pax_restricted(a);
    assert_int_equal(archive_write_open_filename(a, path), ARCHIVE_OK);
    for (size_t i = 0; i < n; i++) {
        struct archive_entry *e = archive_entry_new();
        archive_entry_set_pathname(e, entries[i].name);
        archive_entry_set_filetype(e, entries[i].type);
        archive_entry_set_perm(e, entries[i].type == AE_IFDIR ? 0755 : 0644);
        const char *c = entries[i].content_or_target;
        if (entries[i].type == AE_IFLNK)
            archive_entry_set_symlink(e, c);
        else if (entries[i].type == AE_IFCHR)
            archive_entry_set_rdev(e, makedev(8, 0));
        else if (entries[i].type == AE_IFREG)
            archive_entry_set_size(e, c ? (la_int64_t)strlen(c) : 0);
        else if (entries[i].type == 0) { /* hard link */
            archive_entry_set_filetype(e, AE_IFREG);
            archive_entry_set_hardlink(e, c);
        }
        assert_int_equal(archive_write_header(a, e), ARCHIVE_OK);
        if (entries[i].type == AE_IFREG && c)
            archive_write_data(a, c, strlen(c));
        archive_entry_free(e);
    }
    archive_write_close(a);
    archive_write_free(a);
}

static bool dir_empty(const char *path)
{
    struct stat st;
    if (stat(path, &st) < 0)
        return true;
    return st.st_nlink == 2; /* only . and .. */
}

static void test_unpack_refuses_escapes(void **state)
{
    const char *tmp = *state;
    st_autofree char *outside = st_sprintf("%s/outside", tmp);
    assert_int_equal(mkdir(outside, 0755), 0);
    st_autofree char *escape_name = st_sprintf("../outside/evil");
    st_autofree char *abs_name = st_sprintf("%s/abs", outside);
    st_autofree char *pwned = st_sprintf("lnk/pwned");
    struct {
        struct entry e[2];
        size_t n;
        const char *want; /* in the error message */
    } cases[] = {
        {{{"ok", AE_IFREG, "x"}, {escape_name, AE_IFREG, "evil"}}, 2, "'../outside/evil'"},
        {{{"a/../../outside/evil", AE_IFREG, "evil"}}, 1, "escapes the root"},
        {{{abs_name, AE_IFREG, "evil"}}, 1, "is an absolute path"},
        {{{"hl", 0, "../outside/x"}}, 1, "hard link target"},
        /* A symlink planted to the outside, then a file through it. */
        {{{"lnk", AE_IFLNK, outside}, {pwned, AE_IFREG, "evil"}}, 2, "lnk/pwned"},
    };
    for (size_t i = 0; i < ST_ARRAY_SIZE(cases); i++) {
        st_autofree char *tar = st_sprintf("%s/bad%zu.tar", tmp, i);
        write_archive(tar, cases[i].e, cases[i].n);
        st_autofree char *dest = st_sprintf("%s/dest%zu", tmp, i);
        st_autoptr(st_err) err = NULL;
        int r = st_rootfs_unpack(tar, dest, &err);
        if (r == 0 || !strstr(err->msg, cases[i].want))
            fprintf(stderr, "case %zu: r=%d msg=%s\n", i, r, err ? err->msg : "(none)");
        assert_true(r < 0);
        assert_non_null(strstr(err->msg, cases[i].want));
        assert_true(dir_empty(outside));
    }

    /* Device nodes are skipped, the rest unpacks. */
    st_autofree char *tar = st_sprintf("%s/dev.tar", tmp);
    struct entry dev[] = {{"dev", AE_IFDIR, NULL},
                          {"dev/sda", AE_IFCHR, NULL},
                          {"etc", AE_IFDIR, NULL},
                          {"etc/x", AE_IFREG, "y"}};
    write_archive(tar, dev, ST_ARRAY_SIZE(dev));
    st_autofree char *dest = st_sprintf("%s/devdest", tmp);
    st_autoptr(st_err) err = NULL;
    assert_int_equal(st_rootfs_unpack(tar, dest, &err), 0);
    st_autofree char *sda = st_sprintf("%s/dev/sda", dest);
    st_autofree char *x = st_sprintf("%s/etc/x", dest);
    assert_int_equal(access(sda, F_OK), -1);
    assert_int_equal(access(x, F_OK), 0);
}

static void test_rootfs_write_stays_inside(void **state)
{
    const char *tmp = *state;
    st_autofree char *root = st_sprintf("%s/root", tmp);
    st_autofree char *outside = st_sprintf("%s/outside", tmp);
    st_autofree char *etc = st_sprintf("%s/etc", root);
    st_autoptr(st_err) err = NULL;
    assert_int_equal(st_mkdir_p(etc, 0755, &err), 0);
    assert_int_equal(mkdir(outside, 0755), 0);

    /* Normal case: dirs created, modes enforced. */
    assert_int_equal(
        st_rootfs_write(root, "/root/.ssh/authorized_keys", "k\n", 2, 0600, 0700, &err), 0);
    struct stat st;
    st_autofree char *keys = st_sprintf("%s/root/.ssh/authorized_keys", root);
    st_autofree char *ssh = st_sprintf("%s/root/.ssh", root);
    assert_int_equal(stat(keys, &st), 0);
    assert_int_equal(st.st_mode & 07777, 0600);
    assert_int_equal(stat(ssh, &st), 0);
    assert_int_equal(st.st_mode & 07777, 0700);

    /* A directory symlink to an absolute host path resolves in the root. */
    st_autofree char *lnk = st_sprintf("%s/var", root);
    assert_int_equal(symlink(outside, lnk), 0);
    int r = st_rootfs_write(root, "var/lib/x", "y", 1, 0644, 0755, &err);
    (void)r; /* created inside root (at root/<outside>/lib) or refused: either way... */
    assert_true(dir_empty(outside)); /* ...the host path is untouched */
    st_err_clear(&err);

    /* The file itself a symlink to the outside: refused. */
    st_autofree char *target = st_sprintf("%s/hostfile", outside);
    st_autofree char *hn = st_sprintf("%s/hostname", etc);
    assert_int_equal(symlink(target, hn), 0);
    assert_true(st_rootfs_write(root, "etc/hostname", "h\n", 2, 0644, 0755, &err) < 0);
    assert_int_equal(access(target, F_OK), -1);

    /* Executable lookups resolve symlinks inside the root too. */
    st_autofree char *bin = st_sprintf("%s/bin", root);
    assert_int_equal(mkdir(bin, 0755), 0);
    st_autofree char *tool = st_sprintf("%s/bin/tool", root);
    write_text(tool, "x", 0755);
    st_autofree char *sh = st_sprintf("%s/bin/sh", root);
    assert_int_equal(symlink("/bin/tool", sh), 0);
    assert_true(st_rootfs_has_exec(root, "/bin/sh"));
    assert_false(st_rootfs_has_exec(root, "/sbin/init"));
    st_autofree char *esc = st_sprintf("%s/bin/esc", root);
    assert_int_equal(symlink("/bin/sh", esc), 0); /* host /bin/sh, but resolved in root */
    assert_true(st_rootfs_has_exec(root, "/bin/esc"));
    st_autofree char *dangling = st_sprintf("%s/bin/true", root);
    assert_int_equal(symlink("/usr/bin/true", dangling), 0); /* exists on host, not in root */
    assert_false(st_rootfs_has_exec(root, "/bin/true"));

    /* remove_tree does not follow a symlink out. */
    st_autofree char *keep = st_sprintf("%s/keep", outside);
    write_text(keep, "keep", 0644);
    st_autofree char *lnk2 = st_sprintf("%s/out", root);
    assert_int_equal(symlink(outside, lnk2), 0);
    assert_int_equal(st_rootfs_remove_tree(root, &err), 0);
    assert_int_equal(access(root, F_OK), -1);
    assert_int_equal(access(keep, F_OK), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_unpack_compressions, tmp_setup, tmp_teardown),
        cmocka_unit_test_setup_teardown(test_image_cache_concurrent, tmp_setup, tmp_teardown),
        cmocka_unit_test(test_prune_due),
        cmocka_unit_test_setup_teardown(test_image_prune, tmp_setup, tmp_teardown),
        cmocka_unit_test_setup_teardown(test_image_prune_race, tmp_setup, tmp_teardown),
        cmocka_unit_test_setup_teardown(test_unpack_refuses_escapes, tmp_setup, tmp_teardown),
        cmocka_unit_test_setup_teardown(test_rootfs_write_stays_inside, tmp_setup, tmp_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
