/* Unit tests of src/image: records (create, validation, visibility across
 * projects, lists with filters and pages, JSON-patch updates, delete) and
 * files (streamed upload with md5/sha512 of known content, the rules of who
 * may upload when, aborts, import, open for download, the crash sweep). */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <time.h>
#include <cmocka.h>

#include "image/image-priv.h"
#include "image/image.h"
#include "lib/cleanup.h"
#include "lib/files.h"
#include "lib/json.h"
#include "store/kv.h"

#define PA "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
#define PB "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"

/* md5 and sha512 of "abc" (RFC 1321, FIPS 180-2 test vectors) */
#define ABC_MD5 "900150983cd24fb0d6963f7d28e17f72"
#define ABC_SHA512                                                                                 \
    "ddaf35a193617abacc417349ae20413112e6fa4e89a97ea20a9eeee64b55d39a2192992a274fc1a836ba3c23a3fe" \
    "e"                                                                                            \
    "bbd454d4423643ce80e2a9ac94fa54ca49f"

struct fx {
    char dir[64];
    struct st_kv *kv;
};

static int setup(void **state)
{
    struct fx *f = st_new0(struct fx, 1);
    strcpy(f->dir, "/tmp/st-test-image-XXXXXX");
    assert_non_null(mkdtemp(f->dir));
    st_autofree char *db = st_sprintf("%s/stratos.db", f->dir);
    assert_int_equal(st_kv_open(db, NULL, &f->kv, NULL), 0);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fx *f = *state;
    st_kv_close(f->kv);
    st_autofree char *cmd = st_sprintf("rm -rf %s", f->dir);
    int r = system(cmd);
    free(f);
    return r == 0 ? 0 : -1;
}

static json_t *make(struct fx *f, const char *project, const char *json)
{
    st_autoptr(json_t) attrs = json_loads(json, 0, NULL);
    assert_non_null(attrs);
    json_t *doc = NULL;
    st_autoptr(st_err) err = NULL;
    int r = st_image_create(f->kv, project, attrs, &doc, &err);
    if (r < 0)
        fail_msg("create %s: %s", json, st_err_msg(err));
    return doc;
}

static const char *id_of(json_t *doc)
{
    return json_string_value(json_object_get(doc, "id"));
}

static const char *str(json_t *doc, const char *key)
{
    return json_string_value(json_object_get(doc, key));
}

static int create_err(struct fx *f, const char *json, char **ret_msg)
{
    st_autoptr(json_t) attrs = json_loads(json, 0, NULL);
    assert_non_null(attrs);
    st_autoptr(st_err) err = NULL;
    st_autoptr(json_t) doc = NULL;
    int r = st_image_create(f->kv, PA, attrs, &doc, &err);
    if (ret_msg)
        *ret_msg = st_strdup(err ? err->msg : "");
    return r;
}

static void upload_bytes(struct fx *f, const char *id, const char *const *chunks, size_t n)
{
    st_autoptr(st_image_upload) up = NULL;
    st_autoptr(st_err) err = NULL;
    if (st_image_upload_begin(f->kv, f->dir, id, &up, &err) < 0)
        fail_msg("begin: %s", st_err_msg(err));
    for (size_t i = 0; i < n; i++)
        assert_int_equal(st_image_upload_write(up, chunks[i], strlen(chunks[i]), NULL), 0);
    assert_int_equal(st_image_upload_commit(up, NULL, NULL), 0);
}

static size_t count_files(struct fx *f, const char *prefix)
{
    st_autofree char *path = st_sprintf("%s/images", f->dir);
    DIR *d = opendir(path);
    if (!d)
        return 0;
    size_t n = 0;
    struct dirent *de;
    while ((de = readdir(d)))
        if (strncmp(de->d_name, prefix, strlen(prefix)) == 0)
            n++;
    closedir(d);
    return n;
}

static void test_create_defaults(void **state)
{
    struct fx *f = *state;
    st_autoptr(json_t) doc = make(f, PA,
                                  "{\"name\": \"busybox\", \"disk_format\": \"raw\", "
                                  "\"container_format\": \"docker\", \"os_command_line\": "
                                  "\"/bin/sh -c 'echo hi'\", \"tags\": [\"a\", \"a\", \"b\"]}");
    assert_string_equal(str(doc, "status"), "queued");
    assert_string_equal(str(doc, "visibility"), "shared");
    assert_string_equal(str(doc, "project_id"), PA);
    assert_string_equal(str(doc, "container_format"), "docker");
    assert_true(json_is_null(json_object_get(doc, "checksum")));
    assert_true(json_is_null(json_object_get(doc, "size")));
    assert_int_equal(json_array_size(json_object_get(doc, "tags")), 2);
    assert_string_equal(str(json_object_get(doc, "properties"), "os_command_line"),
                        "/bin/sh -c 'echo hi'");
    /* what is stored is what was returned */
    st_autoptr(json_t) again = NULL;
    assert_int_equal(st_image_get(f->kv, id_of(doc), &again, NULL, NULL), 0);
    assert_true(json_equal(doc, again));
    /* a chosen id is kept, and taken only once */
    st_autoptr(json_t) chosen =
        make(f, PA, "{\"id\": \"0b7ad31d-9c65-4a63-a1b3-5d21a27cf000\", \"name\": \"x\"}");
    assert_string_equal(id_of(chosen), "0b7ad31d-9c65-4a63-a1b3-5d21a27cf000");
    assert_int_equal(create_err(f, "{\"id\": \"0b7ad31d-9c65-4a63-a1b3-5d21a27cf000\"}", NULL),
                     -EEXIST);
}

static void test_create_rejects_bad_input(void **state)
{
    struct fx *f = *state;
    st_autofree char *msg = NULL;
    assert_int_equal(create_err(f, "{\"disk_format\": \"floppy\"}", &msg), -EINVAL);
    assert_non_null(strstr(msg, "disk_format 'floppy'"));
    assert_int_equal(create_err(f, "{\"container_format\": \"zip\"}", NULL), -EINVAL);
    assert_int_equal(create_err(f, "{\"visibility\": \"everyone\"}", NULL), -EINVAL);
    assert_int_equal(create_err(f, "{\"min_ram\": -1}", NULL), -EINVAL);
    assert_int_equal(create_err(f, "{\"protected\": \"yes\"}", NULL), -EINVAL);
    assert_int_equal(create_err(f, "{\"id\": \"not-a-uuid\"}", NULL), -EINVAL);
    assert_int_equal(create_err(f, "{\"hw_cpu_cores\": 2}", NULL), -EINVAL);
    assert_int_equal(create_err(f, "{\"tags\": [\"\"]}", NULL), -EINVAL);
    char big[300];
    memset(big, 'n', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    st_autofree char *long_name = st_sprintf("{\"name\": \"%s\"}", big);
    assert_int_equal(create_err(f, long_name, NULL), -EINVAL);
    free(msg);
    msg = NULL;
    assert_int_equal(create_err(f, "{\"status\": \"active\"}", &msg), -EPERM);
    assert_string_equal(msg, "Attribute 'status' is read-only.");
    assert_int_equal(create_err(f, "{\"checksum\": \"x\"}", NULL), -EPERM);
    assert_int_equal(create_err(f, "{\"os_glance_x\": \"y\"}", NULL), -EPERM);
    /* nothing was stored by the refusals */
    struct st_image_filter flt;
    st_image_filter_init(&flt);
    st_autoptr(json_t) list = NULL;
    assert_int_equal(st_image_list(f->kv, PA, false, &flt, &list, NULL, NULL), 0);
    assert_int_equal(json_array_size(list), 0);
}

static void test_upload_known_checksums(void **state)
{
    struct fx *f = *state;
    st_autoptr(json_t) doc = make(
        f, PA, "{\"name\": \"abc\", \"disk_format\": \"raw\", \"container_format\": \"bare\"}");
    const char *chunks[] = {"a", "", "bc"};
    upload_bytes(f, id_of(doc), chunks, 3);
    st_autoptr(json_t) got = NULL;
    assert_int_equal(st_image_get(f->kv, id_of(doc), &got, NULL, NULL), 0);
    assert_string_equal(str(got, "status"), "active");
    assert_int_equal(json_integer_value(json_object_get(got, "size")), 3);
    assert_int_equal(json_integer_value(json_object_get(got, "virtual_size")), 3);
    assert_string_equal(str(got, "checksum"), ABC_MD5);
    assert_string_equal(str(got, "os_hash_algo"), "sha512");
    assert_string_equal(str(got, "os_hash_value"), ABC_SHA512);
    assert_null(json_object_get(got, "upload"));
    /* the bytes are in the file, and no temporary file is left */
    st_autofree char *path = NULL, *content = NULL;
    assert_int_equal(st_image_file_path(f->dir, id_of(doc), &path, NULL), 0);
    assert_int_equal(st_read_file(path, 100, &content, NULL, NULL), 0);
    assert_string_equal(content, "abc");
    assert_int_equal(count_files(f, ".upload-"), 0);
    /* an active image takes no second upload */
    st_autoptr(st_image_upload) up = NULL;
    assert_int_equal(st_image_upload_begin(f->kv, f->dir, id_of(doc), &up, NULL), -EALREADY);
}

static void test_upload_rules(void **state)
{
    struct fx *f = *state;
    /* no formats yet: refused before any byte */
    st_autoptr(json_t) bare = make(f, PA, "{\"name\": \"noformat\"}");
    st_autoptr(st_image_upload) up = NULL;
    assert_int_equal(st_image_upload_begin(f->kv, f->dir, id_of(bare), &up, NULL), -EINVAL);
    assert_int_equal(
        st_image_upload_begin(f->kv, f->dir, "8c2a5f5e-1111-4222-8333-444455556666", &up, NULL),
        -ENOENT);

    st_autoptr(json_t) doc = make(
        f, PA, "{\"name\": \"big\", \"disk_format\": \"qcow2\", \"container_format\": \"bare\"}");
    const char *id = id_of(doc);
    assert_int_equal(st_image_upload_begin(f->kv, f->dir, id, &up, NULL), 0);
    st_autoptr(json_t) saving = NULL;
    assert_int_equal(st_image_get(f->kv, id, &saving, NULL, NULL), 0);
    assert_string_equal(str(saving, "status"), "saving");
    /* a second upload while the first holds its lease is refused */
    st_autoptr(st_image_upload) second = NULL;
    assert_int_equal(st_image_upload_begin(f->kv, f->dir, id, &second, NULL), -EBUSY);
    assert_int_equal(st_image_upload_write(up, "partial", 7, NULL), 0);
    assert_int_equal(count_files(f, ".upload-"), 1);
    /* an abandoned upload (client gone) puts the image back and leaves no file */
    st_image_upload_free(st_steal(&up));
    st_autoptr(json_t) queued = NULL;
    assert_int_equal(st_image_get(f->kv, id, &queued, NULL, NULL), 0);
    assert_string_equal(str(queued, "status"), "queued");
    assert_int_equal(count_files(f, ".upload-"), 0);

    /* an uploader that died: its lapsed lease is taken over */
    assert_int_equal(st_image_upload_begin(f->kv, f->dir, id, &up, NULL), 0);
    st_autoptr(json_t) stale = NULL;
    int64_t rev = 0;
    assert_int_equal(st_image_get(f->kv, id, &stale, &rev, NULL), 0);
    json_object_set_new(json_object_get(stale, "upload"), "renewed_at_ms", json_integer(1));
    assert_int_equal(image_store(f->kv, stale, rev, NULL), 0);
    assert_int_equal(st_image_upload_begin(f->kv, f->dir, id, &second, NULL), 0);
    /* the first one lost the image: it may not commit over the new one */
    assert_int_equal(st_image_upload_commit(up, NULL, NULL), -EBUSY);
    /* a qcow2 header gives the virtual size */
    unsigned char hdr[32] = {'Q', 'F', 'I', 0xfb, 0, 0, 0, 3};
    hdr[24 + 4] = 0x01; /* 0x1000000 bytes = 16 MiB (big-endian at offset 24) */
    assert_int_equal(st_image_upload_write(second, hdr, 20, NULL), 0);
    assert_int_equal(st_image_upload_write(second, hdr + 20, 12, NULL), 0);
    st_autoptr(json_t) active = NULL;
    assert_int_equal(st_image_upload_commit(second, &active, NULL), 0);
    assert_string_equal(str(active, "status"), "active");
    assert_int_equal(json_integer_value(json_object_get(active, "size")), 32);
    assert_int_equal(json_integer_value(json_object_get(active, "virtual_size")), 0x1000000);
}

static void test_import_and_open(void **state)
{
    struct fx *f = *state;
    st_autofree char *src = st_sprintf("%s/abc.tar", f->dir);
    assert_int_equal(st_write_file_atomic(src, "abc", 3, 0600, NULL), 0);
    st_autoptr(json_t) attrs =
        json_pack("{s:s, s:s, s:s, s:s}", "name", "seed", "disk_format", "raw", "container_format",
                  "docker", "visibility", "public");
    st_autoptr(json_t) doc = NULL;
    assert_int_equal(st_image_import(f->kv, f->dir, PA, attrs, src, &doc, NULL), 0);
    assert_string_equal(str(doc, "status"), "active");
    assert_string_equal(str(doc, "checksum"), ABC_MD5);
    int fd = -1;
    uint64_t size = 0;
    assert_int_equal(st_image_open_file(f->kv, f->dir, id_of(doc), &fd, &size, NULL), 0);
    char buf[8] = "";
    assert_int_equal(read(fd, buf, sizeof(buf)), 3);
    assert_memory_equal(buf, "abc", 3);
    assert_int_equal(size, 3);
    close(fd);
    /* a missing file fails the import and leaves no image behind */
    st_autofree char *missing = st_sprintf("%s/nope.tar", f->dir);
    assert_int_equal(st_image_import(f->kv, f->dir, PA, attrs, missing, NULL, NULL), -ENOENT);
    /* a queued image has nothing to open */
    st_autoptr(json_t) queued = make(f, PA, "{\"name\": \"q\"}");
    assert_int_equal(st_image_open_file(f->kv, f->dir, id_of(queued), &fd, &size, NULL), -ENXIO);
    assert_int_equal(st_image_open_file(f->kv, f->dir, "garbage", &fd, &size, NULL), -ENOENT);
}

static size_t list_count(struct fx *f, const char *project, bool admin, struct st_image_filter *flt)
{
    st_autoptr(json_t) list = NULL;
    assert_int_equal(st_image_list(f->kv, project, admin, flt, &list, NULL, NULL), 0);
    return json_array_size(list);
}

static void test_visibility_across_projects(void **state)
{
    struct fx *f = *state;
    st_autoptr(json_t) priv = make(f, PA, "{\"name\": \"mine\", \"visibility\": \"private\"}");
    st_autoptr(json_t) shared = make(f, PA, "{\"name\": \"shared\"}");
    st_autoptr(json_t) pub = make(f, PA, "{\"name\": \"pub\", \"visibility\": \"public\"}");
    st_autoptr(json_t) comm = make(f, PA, "{\"name\": \"comm\", \"visibility\": \"community\"}");
    st_autoptr(json_t) other = make(f, PB, "{\"name\": \"mine\", \"visibility\": \"private\"}");
    json_t *got = NULL;

    /* project B: A's private and shared images do not exist for it */
    assert_int_equal(st_image_get_visible(f->kv, PB, false, id_of(priv), &got, NULL), -ENOENT);
    assert_int_equal(st_image_get_visible(f->kv, PB, false, id_of(shared), &got, NULL), -ENOENT);
    assert_int_equal(st_image_get_visible(f->kv, PB, false, id_of(pub), &got, NULL), 0);
    json_decref(got);
    assert_int_equal(st_image_get_visible(f->kv, PB, false, id_of(comm), &got, NULL), 0);
    json_decref(got);
    /* an admin sees everything */
    assert_int_equal(st_image_get_visible(f->kv, PB, true, id_of(priv), &got, NULL), 0);
    json_decref(got);

    struct st_image_filter flt;
    st_image_filter_init(&flt);
    /* lists: public + own; others' community images only when asked for */
    assert_int_equal(list_count(f, PA, false, &flt), 4);
    assert_int_equal(list_count(f, PB, false, &flt), 2);
    flt.visibility = "community";
    assert_int_equal(list_count(f, PB, false, &flt), 1);
    flt.visibility = "private";
    assert_int_equal(list_count(f, PB, false, &flt), 1);
    flt.visibility = "all";
    assert_int_equal(list_count(f, PB, false, &flt), 3);
    flt.visibility = NULL;
    /* an admin lists its own view, or every project's when it asks */
    assert_int_equal(list_count(f, "admin-project", true, &flt), 1);
    flt.all_projects = true;
    assert_int_equal(list_count(f, "admin-project", true, &flt), 5);
    flt.all_projects = false;
    flt.owner = PA;
    assert_int_equal(list_count(f, "admin-project", true, &flt), 4);
    assert_int_equal(list_count(f, PB, false, &flt), 1); /* not an admin: only A's public one */

    /* lookups by name: each project finds its own "mine" */
    assert_int_equal(st_image_find_visible(f->kv, PB, false, "mine", &got, NULL), 0);
    assert_string_equal(id_of(got), id_of(other));
    json_decref(got);
    assert_int_equal(st_image_find_visible(f->kv, PA, false, "mine", &got, NULL), 0);
    assert_string_equal(id_of(got), id_of(priv));
    json_decref(got);
    assert_int_equal(st_image_find_visible(f->kv, PB, false, "pub", &got, NULL), 0);
    json_decref(got);
    assert_int_equal(st_image_find_visible(f->kv, PB, false, "shared", &got, NULL), -ENOENT);
    assert_int_equal(st_image_find_visible(f->kv, PB, false, id_of(pub), &got, NULL), 0);
    json_decref(got);
    /* two public images of one name are ambiguous */
    st_autoptr(json_t) pub2 = make(f, PA, "{\"name\": \"pub\", \"visibility\": \"public\"}");
    assert_int_equal(st_image_find_visible(f->kv, PB, false, "pub", &got, NULL), -EEXIST);
}

static void test_list_filters_and_pages(void **state)
{
    struct fx *f = *state;
    char ids[5][40];
    for (int i = 0; i < 5; i++) {
        st_autofree char *json = st_sprintf(
            "{\"name\": \"img%d\", \"disk_format\": \"%s\", \"container_format\": \"bare\", "
            "\"tags\": [\"t%d\"], \"os_hidden\": %s, \"flavor\": \"%s\"}",
            i, i % 2 ? "qcow2" : "raw", i, i == 4 ? "true" : "false", i < 2 ? "small" : "big");
        st_autoptr(json_t) doc = make(f, PA, json);
        strcpy(ids[i], id_of(doc));
    }
    struct st_image_filter flt;
    st_image_filter_init(&flt);
    /* hidden images are out of the default view */
    assert_int_equal(list_count(f, PA, false, &flt), 4);
    flt.hidden = 1;
    assert_int_equal(list_count(f, PA, false, &flt), 1);
    flt.hidden = -1;
    flt.disk_format = "qcow2";
    assert_int_equal(list_count(f, PA, false, &flt), 2);
    flt.disk_format = NULL;
    const char *tags[] = {"t2"};
    flt.tags = tags;
    flt.n_tags = 1;
    assert_int_equal(list_count(f, PA, false, &flt), 1);
    flt.n_tags = 0;
    st_autoptr(json_t) props = json_pack("{s:s}", "flavor", "small");
    flt.properties = props;
    assert_int_equal(list_count(f, PA, false, &flt), 2);
    flt.properties = NULL;
    flt.name = "img3";
    assert_int_equal(list_count(f, PA, false, &flt), 1);
    flt.name = NULL;

    /* pages of 2, newest first, following the marker */
    flt.limit = 2;
    st_autoptr(json_t) all = json_array();
    const char *marker = NULL;
    for (int page = 0; page < 3; page++) {
        flt.marker = marker;
        json_t *list = NULL;
        bool more = false;
        assert_int_equal(st_image_list(f->kv, PA, false, &flt, &list, &more, NULL), 0);
        json_array_extend(all, list);
        json_decref(list);
        assert_int_equal(more, page < 2);
        marker = id_of(json_array_get(all, json_array_size(all) - 1));
    }
    assert_int_equal(json_array_size(all), 5);
    for (int i = 0; i < 5; i++)
        assert_string_equal(id_of(json_array_get(all, (size_t)i)), ids[4 - i]);
    /* ascending by name */
    flt.marker = NULL;
    flt.limit = 0;
    flt.sort_key = "name";
    flt.sort_asc = true;
    st_autoptr(json_t) byname = NULL;
    assert_int_equal(st_image_list(f->kv, PA, false, &flt, &byname, NULL, NULL), 0);
    assert_string_equal(str(json_array_get(byname, 0), "name"), "img0");
    /* bad filters are 400s, not empty lists */
    flt.sort_key = "colour";
    assert_int_equal(st_image_list(f->kv, PA, false, &flt, &byname, NULL, NULL), -EINVAL);
    flt.sort_key = NULL;
    flt.status = "sleeping";
    assert_int_equal(st_image_list(f->kv, PA, false, &flt, &byname, NULL, NULL), -EINVAL);
    flt.status = NULL;
    flt.marker = "0b7ad31d-9c65-4a63-a1b3-5d21a27cf999";
    assert_int_equal(st_image_list(f->kv, PA, false, &flt, &byname, NULL, NULL), -EINVAL);
}

static int patch(struct fx *f, const char *id, const char *ops_json, json_t **ret)
{
    st_autoptr(json_t) ops = json_loads(ops_json, 0, NULL);
    assert_non_null(ops);
    return st_image_update(f->kv, id, ops, ret, NULL);
}

static void test_patch(void **state)
{
    struct fx *f = *state;
    st_autoptr(json_t) doc = make(f, PA,
                                  "{\"name\": \"old\", \"disk_format\": \"raw\", "
                                  "\"container_format\": \"docker\", \"k\": \"v\"}");
    const char *id = id_of(doc);
    st_autoptr(json_t) up = NULL;
    assert_int_equal(patch(f, id,
                           "[{\"op\": \"replace\", \"path\": \"/name\", \"value\": \"new\"},"
                           " {\"op\": \"add\", \"path\": \"/os_command_line\", \"value\": \"/x\"},"
                           " {\"op\": \"remove\", \"path\": \"/k\"},"
                           " {\"op\": \"add\", \"path\": \"/a~1b\", \"value\": \"slash\"},"
                           " {\"op\": \"add\", \"path\": \"/tags/-\", \"value\": \"t1\"},"
                           " {\"op\": \"add\", \"path\": \"/tags/0\", \"value\": \"t0\"},"
                           " {\"op\": \"replace\", \"path\": \"/min_ram\", \"value\": 64}]",
                           &up),
                     0);
    assert_string_equal(str(up, "name"), "new");
    json_t *props = json_object_get(up, "properties");
    assert_string_equal(str(props, "os_command_line"), "/x");
    assert_string_equal(str(props, "a/b"), "slash");
    assert_null(json_object_get(props, "k"));
    assert_string_equal(json_string_value(json_array_get(json_object_get(up, "tags"), 0)), "t0");
    assert_int_equal(json_array_size(json_object_get(up, "tags")), 2);
    assert_int_equal(json_integer_value(json_object_get(up, "min_ram")), 64);

    /* refusals change nothing: the patch is all or nothing */
    assert_int_equal(patch(f, id,
                           "[{\"op\": \"replace\", \"path\": \"/name\", \"value\": \"lost\"},"
                           " {\"op\": \"replace\", \"path\": \"/missing\", \"value\": \"x\"}]",
                           NULL),
                     -EEXIST);
    assert_int_equal(patch(f, id, "[{\"op\": \"remove\", \"path\": \"/name\"}]", NULL), -EPERM);
    assert_int_equal(
        patch(f, id, "[{\"op\": \"replace\", \"path\": \"/status\", \"value\": \"active\"}]", NULL),
        -EPERM);
    assert_int_equal(patch(f, id, "[{\"op\": \"move\", \"path\": \"/name\"}]", NULL), -EINVAL);
    assert_int_equal(
        patch(f, id, "[{\"op\": \"add\", \"path\": \"/a/b\", \"value\": \"x\"}]", NULL), -EINVAL);
    assert_int_equal(patch(f, id, "[{\"op\": \"remove\", \"path\": \"/tags/9\"}]", NULL), -EINVAL);
    assert_int_equal(patch(f, id, "{\"op\": \"remove\"}", NULL), -EINVAL);
    st_autoptr(json_t) same = NULL;
    assert_int_equal(st_image_get(f->kv, id, &same, NULL, NULL), 0);
    assert_string_equal(str(same, "name"), "new");

    /* tags one by one */
    assert_int_equal(st_image_tag_add(f->kv, id, "t1", NULL), 0); /* already there */
    assert_int_equal(st_image_tag_remove(f->kv, id, "t0", NULL), 0);
    assert_int_equal(st_image_tag_remove(f->kv, id, "t0", NULL), -ENOENT);

    /* formats are fixed once the data is in */
    const char *chunks[] = {"abc"};
    upload_bytes(f, id, chunks, 1);
    assert_int_equal(
        patch(f, id, "[{\"op\": \"replace\", \"path\": \"/disk_format\", \"value\": \"qcow2\"}]",
              NULL),
        -EPERM);
    assert_int_equal(patch(f, "0b7ad31d-9c65-4a63-a1b3-5d21a27cf998", "[]", NULL), -ENOENT);
}

static void test_delete(void **state)
{
    struct fx *f = *state;
    st_autoptr(json_t) doc = make(
        f, PA, "{\"name\": \"d\", \"disk_format\": \"raw\", \"container_format\": \"docker\"}");
    const char *id = id_of(doc);
    const char *chunks[] = {"abc"};
    upload_bytes(f, id, chunks, 1);
    st_autofree char *path = NULL;
    assert_int_equal(st_image_file_path(f->dir, id, &path, NULL), 0);
    assert_int_equal(access(path, F_OK), 0);

    assert_int_equal(
        patch(f, id, "[{\"op\": \"replace\", \"path\": \"/protected\", \"value\": true}]", NULL),
        0);
    assert_int_equal(st_image_delete(f->kv, f->dir, id, NULL), -EPERM);
    assert_int_equal(access(path, F_OK), 0);
    assert_int_equal(
        patch(f, id, "[{\"op\": \"replace\", \"path\": \"/protected\", \"value\": false}]", NULL),
        0);
    assert_int_equal(st_image_delete(f->kv, f->dir, id, NULL), 0);
    assert_int_not_equal(access(path, F_OK), 0);
    json_t *gone = NULL;
    assert_int_equal(st_image_get(f->kv, id, &gone, NULL, NULL), -ENOENT);
    assert_int_equal(st_image_delete(f->kv, f->dir, id, NULL), -ENOENT);

    /* an image deleted while its upload streams: the upload fails, no file stays */
    st_autoptr(json_t) doc2 =
        make(f, PA, "{\"name\": \"e\", \"disk_format\": \"raw\", \"container_format\": \"bare\"}");
    st_autoptr(st_image_upload) up = NULL;
    assert_int_equal(st_image_upload_begin(f->kv, f->dir, id_of(doc2), &up, NULL), 0);
    assert_int_equal(st_image_upload_write(up, "abc", 3, NULL), 0);
    assert_int_equal(st_image_delete(f->kv, f->dir, id_of(doc2), NULL), 0);
    assert_int_equal(st_image_upload_commit(up, NULL, NULL), -ENOENT);
    st_image_upload_free(st_steal(&up));
    assert_int_equal(count_files(f, ""), 2); /* "." and ".." */
}

static void test_gc(void **state)
{
    struct fx *f = *state;
    st_autoptr(json_t) doc = make(
        f, PA, "{\"name\": \"keep\", \"disk_format\": \"raw\", \"container_format\": \"bare\"}");
    const char *chunks[] = {"abc"};
    upload_bytes(f, id_of(doc), chunks, 1);
    st_autofree char *orphan = st_sprintf("%s/images/0b7ad31d-9c65-4a63-a1b3-5d21a27cf997", f->dir);
    st_autofree char *old_tmp = st_sprintf("%s/images/.upload-old", f->dir);
    st_autofree char *new_tmp = st_sprintf("%s/images/.upload-new", f->dir);
    assert_int_equal(st_write_file_atomic(orphan, "x", 1, 0600, NULL), 0);
    assert_int_equal(st_write_file_atomic(old_tmp, "x", 1, 0600, NULL), 0);
    assert_int_equal(st_write_file_atomic(new_tmp, "x", 1, 0600, NULL), 0);
    struct timeval two_hours_ago[2] = {{time(NULL) - 7200, 0}, {time(NULL) - 7200, 0}};
    assert_int_equal(utimes(old_tmp, two_hours_ago), 0);
    assert_int_equal(st_image_gc(f->kv, f->dir, NULL), 0);
    assert_int_not_equal(access(orphan, F_OK), 0);
    assert_int_not_equal(access(old_tmp, F_OK), 0);
    assert_int_equal(access(new_tmp, F_OK), 0);
    int fd = -1;
    uint64_t size = 0;
    assert_int_equal(st_image_open_file(f->kv, f->dir, id_of(doc), &fd, &size, NULL), 0);
    close(fd);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_create_defaults, setup, teardown),
        cmocka_unit_test_setup_teardown(test_create_rejects_bad_input, setup, teardown),
        cmocka_unit_test_setup_teardown(test_upload_known_checksums, setup, teardown),
        cmocka_unit_test_setup_teardown(test_upload_rules, setup, teardown),
        cmocka_unit_test_setup_teardown(test_import_and_open, setup, teardown),
        cmocka_unit_test_setup_teardown(test_visibility_across_projects, setup, teardown),
        cmocka_unit_test_setup_teardown(test_list_filters_and_pages, setup, teardown),
        cmocka_unit_test_setup_teardown(test_patch, setup, teardown),
        cmocka_unit_test_setup_teardown(test_delete, setup, teardown),
        cmocka_unit_test_setup_teardown(test_gc, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
