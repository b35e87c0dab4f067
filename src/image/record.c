/* Image records in the store: create, read, who may see them, lookups by
 * name, the filtered and paged list, tags, delete. Every change is a
 * read-modify-write with compare-and-swap on the record's revision, retried
 * on conflict, so concurrent API calls never lose each other's changes. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
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

#define EDIT_ATTEMPTS 20

int image_key(const char *id, char **ret, struct st_err **err)
{
    if (!id || !st_uuid_valid(id))
        return st_err_set(err, -ENOENT, "No image found with ID %s", id ? id : "(none)");
    *ret = st_sprintf("%s%s", ST_IMAGE_KEY_PREFIX, id);
    return 0;
}

static void now_rfc3339(char buf[ST_TIME_RFC3339_LEN])
{
    st_time_rfc3339(st_time_now_ms() / 1000, buf, ST_TIME_RFC3339_LEN);
}

json_t *image_doc_new(const char *id, const char *project_id)
{
    char now[ST_TIME_RFC3339_LEN];
    now_rfc3339(now);
    return json_pack("{s:s, s:n, s:s, s:s, s:s, s:b, s:b, s:n, s:n, s:i, s:i, s:n, s:n, s:n, s:n, "
                     "s:n, s:[], s:{}, s:s, s:s}",
                     "id", id, "name", "project_id", project_id, "status", "queued", "visibility",
                     "shared", "protected", 0, "os_hidden", 0, "disk_format", "container_format",
                     "min_disk", 0, "min_ram", 0, "size", "virtual_size", "checksum",
                     "os_hash_algo", "os_hash_value", "tags", "properties", "created_at", now,
                     "updated_at", now);
}

void image_touch(json_t *doc)
{
    char now[ST_TIME_RFC3339_LEN];
    now_rfc3339(now);
    json_object_set_new(doc, "updated_at", json_string(now));
}

int image_store(struct st_kv *kv, json_t *doc, int64_t expect_rev, struct st_err **err)
{
    st_autofree char *key = NULL;
    int r = image_key(json_string_value(json_object_get(doc, "id")), &key, err);
    if (r < 0)
        return r;
    st_autofree char *value = st_json_dumps(doc);
    return st_kv_put(kv, key, value, strlen(value), expect_rev, NULL, err);
}

int st_image_get(struct st_kv *kv, const char *id, json_t **ret, int64_t *ret_rev,
                 struct st_err **err)
{
    st_autofree char *key = NULL;
    int r = image_key(id, &key, err);
    if (r < 0)
        return r;
    st_autoptr(st_kv_entry) e = NULL;
    r = st_kv_get(kv, key, &e, err);
    if (r == -ENOENT) {
        st_err_clear(err);
        return st_err_set(err, -ENOENT, "No image found with ID %s", id);
    }
    if (r < 0)
        return r;
    json_t *doc = NULL;
    r = st_json_parse_object(e->value, e->value_len, &doc, err);
    if (r < 0)
        return st_err_prefix(err, -EIO, "image record %s", id);
    if (ret_rev)
        *ret_rev = e->mod_rev;
    *ret = doc;
    return 0;
}

static const char *str_of(json_t *doc, const char *key)
{
    const char *s = json_string_value(json_object_get(doc, key));
    return s ? s : "";
}

bool st_image_visible(json_t *doc, const char *project_id, bool is_admin)
{
    if (is_admin)
        return true;
    const char *vis = str_of(doc, "visibility");
    if (strcmp(vis, "public") == 0 || strcmp(vis, "community") == 0)
        return true;
    return project_id && strcmp(str_of(doc, "project_id"), project_id) == 0;
}

int st_image_get_visible(struct st_kv *kv, const char *project_id, bool is_admin, const char *id,
                         json_t **ret, struct st_err **err)
{
    json_t *doc = NULL;
    int r = st_image_get(kv, id, &doc, NULL, err);
    if (r < 0)
        return r;
    if (!st_image_visible(doc, project_id, is_admin)) {
        json_decref(doc);
        return st_err_set(err, -ENOENT, "No image found with ID %s", id);
    }
    *ret = doc;
    return 0;
}

/* Calls fn for every record (parsed) with its create revision. */
typedef int (*scan_fn)(json_t *doc, int64_t create_rev, void *userdata, struct st_err **err);

static int scan(struct st_kv *kv, scan_fn fn, void *userdata, struct st_err **err)
{
    st_autofree char *after = NULL;
    for (;;) {
        st_autoptr(st_kv_list) page = NULL;
        int r = st_kv_list(kv, ST_IMAGE_KEY_PREFIX, after, 500, &page, err);
        if (r < 0)
            return r;
        for (size_t i = 0; i < page->count; i++) {
            st_autoptr(json_t) doc = NULL;
            struct st_kv_entry *e = &page->entries[i];
            if (st_json_parse_object(e->value, e->value_len, &doc, NULL) < 0) {
                st_log_warn("image_record_invalid", "key=%s", e->key);
                continue;
            }
            r = fn(doc, e->create_rev, userdata, err);
            if (r < 0)
                return r;
        }
        if (!page->more || page->count == 0)
            return 0;
        free(after);
        after = st_strdup(page->entries[page->count - 1].key);
    }
}

static int count_project(json_t *doc, int64_t rev, void *userdata, struct st_err **err)
{
    (void)rev;
    (void)err;
    struct {
        const char *project_id;
        size_t n;
    } *c = userdata;
    if (strcmp(str_of(doc, "project_id"), c->project_id) == 0)
        c->n++;
    return 0;
}

int st_image_create(struct st_kv *kv, const char *project_id, json_t *attrs, json_t **ret,
                    struct st_err **err)
{
    if (!json_is_object(attrs))
        return st_err_set(err, -EINVAL, "the image must be a JSON object");
    char id[ST_UUID_LEN];
    json_t *given = json_object_get(attrs, "id");
    if (given) {
        if (!json_is_string(given) || !st_uuid_valid(json_string_value(given)))
            return st_err_set(err, -EINVAL, "Invalid value for 'id': expected a UUID");
        snprintf(id, sizeof(id), "%s", json_string_value(given));
    } else {
        st_uuid_new(id);
    }
    st_autoptr(json_t) doc = image_doc_new(id, project_id);
    const char *key;
    json_t *value;
    json_object_foreach(attrs, key, value)
    {
        int r = image_attr_set(doc, key, value, true, err);
        if (r < 0)
            return r;
    }

    struct {
        const char *project_id;
        size_t n;
    } count = {json_string_value(json_object_get(doc, "project_id")), 0};
    int r = scan(kv, count_project, &count, err);
    if (r < 0)
        return r;
    if (count.n >= ST_IMAGE_PER_PROJECT_MAX)
        return st_err_set(err, -EDQUOT, "Maximum number of images per project (%d) exceeded",
                          ST_IMAGE_PER_PROJECT_MAX);

    r = image_store(kv, doc, ST_KV_ABSENT, err);
    if (r == -ECANCELED) {
        st_err_clear(err);
        return st_err_set(err, -EEXIST, "Image with identifier %s already exists!", id);
    }
    if (r < 0)
        return r;
    st_log_info("image_created", "id=%s project_id=%s name=\"%s\"", id, count.project_id,
                str_of(doc, "name"));
    if (ret)
        *ret = st_steal(&doc);
    return 0;
}

int image_edit(struct st_kv *kv, const char *id, image_edit_fn fn, void *userdata, json_t **ret,
               struct st_err **err)
{
    for (int attempt = 0;; attempt++) {
        st_autoptr(json_t) doc = NULL;
        int64_t rev = 0;
        int r = st_image_get(kv, id, &doc, &rev, err);
        if (r < 0)
            return r;
        r = fn(doc, userdata, err);
        if (r < 0)
            return r;
        image_touch(doc);
        r = image_store(kv, doc, rev, err);
        if (r == -ECANCELED && attempt < EDIT_ATTEMPTS) {
            st_err_clear(err);
            continue;
        }
        if (r < 0)
            return r;
        if (ret)
            *ret = st_steal(&doc);
        return 0;
    }
}

static int tag_add(json_t *doc, void *userdata, struct st_err **err)
{
    json_t *tags = json_deep_copy(json_object_get(doc, "tags"));
    if (!json_is_array(tags)) {
        json_decref(tags);
        tags = json_array();
    }
    json_array_append_new(tags, json_string(userdata));
    int r = image_attr_set(doc, "tags", tags, false, err);
    json_decref(tags);
    return r;
}

int st_image_tag_add(struct st_kv *kv, const char *id, const char *tag, struct st_err **err)
{
    int r = image_tag_check(tag, err);
    if (r < 0)
        return r;
    return image_edit(kv, id, tag_add, (void *)tag, NULL, err);
}

static int tag_remove(json_t *doc, void *userdata, struct st_err **err)
{
    json_t *tags = json_object_get(doc, "tags");
    size_t i;
    json_t *t;
    json_array_foreach(tags, i, t)
    {
        if (strcmp(json_string_value(t), userdata) == 0) {
            json_array_remove(tags, i);
            return 0;
        }
    }
    return st_err_set(err, -ENOENT, "Tag %s not found", (const char *)userdata);
}

int st_image_tag_remove(struct st_kv *kv, const char *id, const char *tag, struct st_err **err)
{
    return image_edit(kv, id, tag_remove, (void *)tag, NULL, err);
}

int st_image_delete(struct st_kv *kv, const char *data_dir, const char *id, struct st_err **err)
{
    st_autofree char *key = NULL;
    int r = image_key(id, &key, err);
    if (r < 0)
        return r;
    for (int attempt = 0;; attempt++) {
        st_autoptr(json_t) doc = NULL;
        int64_t rev = 0;
        r = st_image_get(kv, id, &doc, &rev, err);
        if (r < 0)
            return r;
        if (json_is_true(json_object_get(doc, "protected")))
            return st_err_set(err, -EPERM, "Image %s is protected and cannot be deleted.", id);
        r = st_kv_delete(kv, key, rev, NULL, err);
        if (r == -ECANCELED && attempt < EDIT_ATTEMPTS) {
            st_err_clear(err);
            continue;
        }
        if (r < 0)
            return r;
        break;
    }
    /* The record is gone first: a crash now leaves a file no record names,
     * which st_image_gc removes; never a record whose file is missing. */
    st_autofree char *path = NULL;
    r = st_image_file_path(data_dir, id, &path, err);
    if (r < 0)
        return r;
    if (unlink(path) < 0 && errno != ENOENT)
        st_log_warn("image_file_unlink_failed", "path=%s errno=%d", path, errno);
    else
        st_fsync_parent(path, NULL);
    st_log_info("image_deleted", "id=%s", id);
    return 0;
}

/* ---- lookups and lists ------------------------------------------------ */

struct row {
    json_t *doc;
    int64_t create_rev;
};

struct collect {
    const char *project_id;
    bool is_admin;
    const struct st_image_filter *f;
    const char *name; /* find: exact name */
    struct row *rows;
    size_t n, cap;
};

static void rows_free(struct collect *c)
{
    for (size_t i = 0; i < c->n; i++)
        json_decref(c->rows[i].doc);
    free(c->rows);
}

static void push(struct collect *c, json_t *doc, int64_t rev)
{
    if (c->n == c->cap) {
        c->cap = c->cap ? 2 * c->cap : 64;
        c->rows = st_xrealloc(c->rows, c->cap * sizeof(*c->rows));
    }
    c->rows[c->n++] = (struct row){json_incref(doc), rev};
}

static int collect_named(json_t *doc, int64_t rev, void *userdata, struct st_err **err)
{
    (void)err;
    struct collect *c = userdata;
    if (strcmp(str_of(doc, "name"), c->name) == 0 &&
        st_image_visible(doc, c->project_id, c->is_admin))
        push(c, doc, rev);
    return 0;
}

int st_image_find_visible(struct st_kv *kv, const char *project_id, bool is_admin,
                          const char *name_or_id, json_t **ret, struct st_err **err)
{
    if (st_uuid_valid(name_or_id)) {
        int r = st_image_get_visible(kv, project_id, is_admin, name_or_id, ret, err);
        if (r != -ENOENT)
            return r;
        st_err_clear(err);
    }
    struct collect c = {.project_id = project_id, .is_admin = is_admin, .name = name_or_id};
    int r = scan(kv, collect_named, &c, err);
    if (r < 0) {
        rows_free(&c);
        return r;
    }
    /* Levels: the caller's own, then public/community, then the rest. */
    for (int level = 0; level < 3; level++) {
        json_t *found = NULL;
        size_t n = 0;
        for (size_t i = 0; i < c.n; i++) {
            json_t *doc = c.rows[i].doc;
            bool own = project_id && strcmp(str_of(doc, "project_id"), project_id) == 0;
            const char *vis = str_of(doc, "visibility");
            bool open = strcmp(vis, "public") == 0 || strcmp(vis, "community") == 0;
            int lvl = own ? 0 : open ? 1 : 2;
            if (lvl == level) {
                found = doc;
                n++;
            }
        }
        if (n > 1) {
            rows_free(&c);
            return st_err_set(err, -EEXIST, "More than one image exists with the name '%s'",
                              name_or_id);
        }
        if (n == 1) {
            *ret = json_incref(found);
            rows_free(&c);
            return 0;
        }
    }
    rows_free(&c);
    return st_err_set(err, -ENOENT, "No image with a name or ID of '%s' exists.", name_or_id);
}

void st_image_filter_init(struct st_image_filter *f)
{
    *f = (struct st_image_filter){.hidden = 0, .protected_ = -1, .size_min = -1, .size_max = -1};
}

static const char *const statuses[] = {"queued",      "saving",    "active",
                                       "killed",      "deleted",   "pending_delete",
                                       "deactivated", "uploading", "importing"};
static const char *const sort_keys[] = {"created_at", "updated_at", "name", "id", "size", "status"};

static bool one_of(const char *s, const char *const *list, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(s, list[i]) == 0)
            return true;
    return false;
}

static bool has_tag(json_t *doc, const char *tag)
{
    size_t i;
    json_t *t;
    json_array_foreach(json_object_get(doc, "tags"), i, t)
    {
        if (strcmp(json_string_value(t), tag) == 0)
            return true;
    }
    return false;
}

/* Is doc in the caller's list view, before the attribute filters? */
static bool listed(json_t *doc, const char *project_id, bool is_admin,
                   const struct st_image_filter *f)
{
    bool own = project_id && strcmp(str_of(doc, "project_id"), project_id) == 0;
    bool wide = is_admin && (f->all_projects || f->owner);
    const char *vis = str_of(doc, "visibility");
    bool pub = strcmp(vis, "public") == 0, community = strcmp(vis, "community") == 0;
    const char *want = f->visibility;
    if (!want)
        return own || pub || wide;
    if (strcmp(want, "all") == 0)
        return own || pub || community || wide;
    if (strcmp(vis, want) != 0)
        return false;
    return pub || community || own || wide;
}

static bool matches(json_t *doc, const struct st_image_filter *f)
{
    if (f->id && strcmp(str_of(doc, "id"), f->id) != 0)
        return false;
    if (f->name && strcmp(str_of(doc, "name"), f->name) != 0)
        return false;
    if (f->status && strcmp(str_of(doc, "status"), f->status) != 0)
        return false;
    if (f->owner && strcmp(str_of(doc, "project_id"), f->owner) != 0)
        return false;
    if (f->disk_format && strcmp(str_of(doc, "disk_format"), f->disk_format) != 0)
        return false;
    if (f->container_format && strcmp(str_of(doc, "container_format"), f->container_format) != 0)
        return false;
    bool hidden = json_is_true(json_object_get(doc, "os_hidden"));
    if (f->hidden >= 0 && hidden != (f->hidden == 1))
        return false;
    bool prot = json_is_true(json_object_get(doc, "protected"));
    if (f->protected_ >= 0 && prot != (f->protected_ == 1))
        return false;
    json_t *size = json_object_get(doc, "size");
    if (f->size_min >= 0 && (!json_is_integer(size) || json_integer_value(size) < f->size_min))
        return false;
    if (f->size_max >= 0 && (!json_is_integer(size) || json_integer_value(size) > f->size_max))
        return false;
    for (size_t i = 0; i < f->n_tags; i++)
        if (!has_tag(doc, f->tags[i]))
            return false;
    const char *key;
    json_t *want;
    json_t *props = json_object_get(doc, "properties");
    json_object_foreach(f->properties, key, want)
    {
        json_t *have = json_object_get(props, key);
        if (!have || !json_equal(have, want))
            return false;
    }
    return true;
}

static int collect_listed(json_t *doc, int64_t rev, void *userdata, struct st_err **err)
{
    (void)err;
    struct collect *c = userdata;
    if (listed(doc, c->project_id, c->is_admin, c->f) && matches(doc, c->f))
        push(c, doc, rev);
    return 0;
}

struct order {
    const char *key;
    bool asc;
};

/* Ascending comparison on the sort key; the create revision (unique) breaks
 * ties, so the order is total and a marker names one position in it. */
static int compare_asc(const struct row *a, const struct row *b, const char *key)
{
    int c = 0;
    if (strcmp(key, "size") == 0) {
        json_int_t sa = json_integer_value(json_object_get(a->doc, "size"));
        json_int_t sb = json_integer_value(json_object_get(b->doc, "size"));
        c = (sa > sb) - (sa < sb);
    } else if (strcmp(key, "created_at") != 0) {
        c = strcmp(str_of(a->doc, key), str_of(b->doc, key));
    }
    if (c == 0)
        c = (a->create_rev > b->create_rev) - (a->create_rev < b->create_rev);
    return c;
}

static int compare(const void *pa, const void *pb, void *arg)
{
    const struct order *o = arg;
    int c = compare_asc(pa, pb, o->key);
    return o->asc ? c : -c;
}

static int validate_filter(const struct st_image_filter *f, struct st_err **err)
{
    static const char *const vis[] = {"public", "private", "shared", "community", "all"};
    static const char *const member[] = {"accepted", "pending", "rejected", "all"};
    if (f->visibility && !one_of(f->visibility, vis, ST_ARRAY_SIZE(vis)))
        return st_err_set(err, -EINVAL, "Invalid visibility value: %s", f->visibility);
    if (f->member_status && !one_of(f->member_status, member, ST_ARRAY_SIZE(member)))
        return st_err_set(err, -EINVAL, "Invalid status value: %s", f->member_status);
    if (f->status && !one_of(f->status, statuses, ST_ARRAY_SIZE(statuses)))
        return st_err_set(err, -EINVAL, "Invalid status value: %s", f->status);
    if (f->sort_key && !one_of(f->sort_key, sort_keys, ST_ARRAY_SIZE(sort_keys)))
        return st_err_set(err, -EINVAL, "Invalid sort key: %s", f->sort_key);
    return 0;
}

int st_image_list(struct st_kv *kv, const char *project_id, bool is_admin,
                  const struct st_image_filter *f, json_t **ret, bool *ret_more,
                  struct st_err **err)
{
    int r = validate_filter(f, err);
    if (r < 0)
        return r;
    struct collect c = {.project_id = project_id, .is_admin = is_admin, .f = f};
    r = scan(kv, collect_listed, &c, err);
    if (r < 0) {
        rows_free(&c);
        return r;
    }
    struct order o = {f->sort_key ? f->sort_key : "created_at", f->sort_asc};
    if (c.n > 1)
        qsort_r(c.rows, c.n, sizeof(*c.rows), compare, &o);

    size_t start = 0;
    if (f->marker) {
        /* The marker need not pass the filters, only be visible: the page
         * starts after its place in the order. */
        st_autofree char *key = NULL;
        st_autoptr(json_t) mdoc = NULL;
        st_autoptr(st_kv_entry) e = NULL;
        r = image_key(f->marker, &key, err);
        if (r == 0)
            r = st_kv_get(kv, key, &e, err);
        if (r == 0)
            r = st_json_parse_object(e->value, e->value_len, &mdoc, err);
        if (r < 0 || !st_image_visible(mdoc, project_id, is_admin)) {
            rows_free(&c);
            st_err_clear(err);
            return st_err_set(err, -EINVAL, "marker %s could not be found.", f->marker);
        }
        struct row m = {mdoc, e->create_rev};
        while (start < c.n && compare(&c.rows[start], &m, &o) <= 0)
            start++;
    }
    size_t end = c.n;
    if (f->limit && end - start > f->limit)
        end = start + f->limit;
    json_t *out = json_array();
    for (size_t i = start; i < end; i++)
        json_array_append(out, c.rows[i].doc);
    if (ret_more)
        *ret_more = end < c.n;
    rows_free(&c);
    *ret = out;
    return 0;
}
