/* Identity records and their name claims; see records.h. */
#include "records.h"

#include <errno.h>
#include <stdbool.h>
#include <string.h>

#include "lib/cleanup.h"
#include "lib/json.h"
#include "lib/times.h"
#include "store/kv.h"

static char *record_key(const char *kind, const char *id)
{
    return st_sprintf("/identity/%s/%s", kind, id);
}

static char *name_key(const char *kind, const char *domain_id, const char *name)
{
    return st_sprintf("/identity/names/%s/%s/%s", kind, domain_id ? domain_id : "-", name);
}

int st_idrec_check_name(const char *what, const char *name, struct st_err **err)
{
    size_t len = name ? strlen(name) : 0;
    if (len == 0)
        return st_err_set(err, -EINVAL, "%s name must not be empty", what);
    if (len > ST_IDREC_NAME_MAX)
        return st_err_set(err, -EINVAL, "%s name is longer than %d characters", what,
                          ST_IDREC_NAME_MAX);
    for (const unsigned char *c = (const unsigned char *)name; *c; c++)
        if (*c < 0x20 || *c == 0x7f)
            return st_err_set(err, -EINVAL, "%s name contains a control character", what);
    return 0;
}

static const char *str_member(json_t *doc, const char *key)
{
    return json_string_value(json_object_get(doc, key));
}

int st_idrec_get(struct st_kv *kv, const char *kind, const char *id, json_t **ret, int64_t *ret_rev,
                 struct st_err **err)
{
    if (!id || !id[0] || strchr(id, '/'))
        return -ENOENT;
    st_autofree char *key = record_key(kind, id);
    st_autoptr(st_kv_entry) e = NULL;
    int r = st_kv_get(kv, key, &e, err);
    if (r < 0)
        return r;
    r = st_json_parse_object(e->value, e->value_len, ret, err);
    if (r < 0)
        return st_err_prefix(err, r, "reading %s", key);
    if (ret_rev)
        *ret_rev = e->mod_rev;
    return 0;
}

/* A claim's value: {"id": <record id>, "at": <ms when claimed>}. */
static char *claim_value(const char *id)
{
    st_autoptr(json_t) v = json_pack("{s:s, s:I}", "id", id, "at", (json_int_t)st_time_now_ms());
    return st_json_dumps(v);
}

/* The record id a claim names (copied into buf), and when it was made. */
static bool claim_parse(const struct st_kv_entry *claim, char *buf, size_t len, int64_t *ret_at)
{
    st_autoptr(json_t) v = NULL;
    if (st_json_parse_object(claim->value, claim->value_len, &v, NULL) < 0)
        return false;
    const char *id = str_member(v, "id");
    if (!id || strlen(id) >= len)
        return false;
    strcpy(buf, id);
    if (ret_at)
        *ret_at = json_integer_value(json_object_get(v, "at"));
    return true;
}

/* Claims name for id. A claim naming a record that does not exist (or no
 * longer has that name) is stale and is taken over, but only once it is
 * older than ST_IDREC_CLAIM_GRACE_MS: a younger one belongs to a create or a
 * rename still between its claim and its record write, which must win. */
static int claim_name(struct st_kv *kv, const char *kind, const char *domain_id, const char *name,
                      const char *id, struct st_err **err)
{
    st_autofree char *key = name_key(kind, domain_id, name);
    st_autofree char *value = claim_value(id);
    for (int attempt = 0; attempt < 5; attempt++) {
        int r = st_kv_put(kv, key, value, strlen(value), ST_KV_ABSENT, NULL, err);
        if (r != -ECANCELED)
            return r;
        st_err_clear(err);
        st_autoptr(st_kv_entry) claim = NULL;
        r = st_kv_get(kv, key, &claim, err);
        if (r == -ENOENT) {
            st_err_clear(err);
            continue;
        }
        if (r < 0)
            return r;
        char owner_id[ST_IDREC_NAME_MAX + 1];
        int64_t at = 0;
        bool parsed = claim_parse(claim, owner_id, sizeof(owner_id), &at);
        if (parsed && strcmp(owner_id, id) == 0)
            return 0; /* ours already (a retried rename) */
        st_autoptr(json_t) owner = NULL;
        r = parsed ? st_idrec_get(kv, kind, owner_id, &owner, NULL, err) : -ENOENT;
        if (r == 0 && strcmp(str_member(owner, "name") ?: "", name) == 0)
            return st_err_set(err, -EEXIST, "name '%s' is already in use", name);
        if (r < 0 && r != -ENOENT)
            return r;
        st_err_clear(err);
        if (parsed && st_time_now_ms() - at < ST_IDREC_CLAIM_GRACE_MS)
            return st_err_set(err, -EEXIST, "name '%s' is already in use", name);
        r = st_kv_put(kv, key, value, strlen(value), claim->mod_rev, NULL, err);
        if (r != -ECANCELED)
            return r;
        st_err_clear(err);
    }
    return st_err_set(err, -EEXIST, "name '%s' is contended", name);
}

static void release_name(struct st_kv *kv, const char *kind, const char *domain_id,
                         const char *name, const char *id)
{
    st_autofree char *key = name_key(kind, domain_id, name);
    st_autoptr(st_kv_entry) claim = NULL;
    char owner_id[ST_IDREC_NAME_MAX + 1];
    if (st_kv_get(kv, key, &claim, NULL) == 0 &&
        claim_parse(claim, owner_id, sizeof(owner_id), NULL) && strcmp(owner_id, id) == 0)
        st_kv_delete(kv, key, claim->mod_rev, NULL, NULL);
}

static int write_doc(struct st_kv *kv, const char *kind, json_t *doc, int64_t expect_rev,
                     struct st_err **err)
{
    st_autofree char *key = record_key(kind, str_member(doc, "id"));
    st_autofree char *value = st_json_dumps(doc);
    return st_kv_put(kv, key, value, strlen(value), expect_rev, NULL, err);
}

int st_idrec_create(struct st_kv *kv, const char *kind, json_t *doc, struct st_err **err)
{
    const char *id = str_member(doc, "id"), *name = str_member(doc, "name");
    const char *domain_id = str_member(doc, "domain_id");
    if (!id || !name)
        return st_err_set(err, -EINVAL, "record without id or name");
    int r = claim_name(kv, kind, domain_id, name, id, err);
    if (r < 0)
        return r;
    r = write_doc(kv, kind, doc, ST_KV_ABSENT, err);
    if (r < 0)
        release_name(kv, kind, domain_id, name, id);
    return r;
}

int st_idrec_find(struct st_kv *kv, const char *kind, const char *domain_id, const char *name,
                  json_t **ret, struct st_err **err)
{
    if (!name || !name[0])
        return -ENOENT;
    st_autofree char *key = name_key(kind, domain_id, name);
    st_autoptr(st_kv_entry) claim = NULL;
    int r = st_kv_get(kv, key, &claim, err);
    if (r < 0)
        return r;
    char owner_id[ST_IDREC_NAME_MAX + 1];
    if (!claim_parse(claim, owner_id, sizeof(owner_id), NULL))
        return -ENOENT; /* not a claim this code wrote */
    st_autoptr(json_t) doc = NULL;
    r = st_idrec_get(kv, kind, owner_id, &doc, NULL, err);
    if (r < 0)
        return r;
    if (strcmp(str_member(doc, "name") ?: "", name) != 0)
        return -ENOENT; /* a stale claim */
    *ret = st_steal(&doc);
    return 0;
}

int st_idrec_list(struct st_kv *kv, const char *kind, json_t **ret, struct st_err **err)
{
    st_autofree char *prefix = st_sprintf("/identity/%s/", kind);
    st_autoptr(json_t) arr = json_array();
    const char *after = NULL;
    st_autofree char *last = NULL;
    for (;;) {
        st_autoptr(st_kv_list) page = NULL;
        int r = st_kv_list(kv, prefix, after, 500, &page, err);
        if (r < 0)
            return r;
        for (size_t i = 0; i < page->count; i++) {
            json_t *doc;
            r = st_json_parse_object(page->entries[i].value, page->entries[i].value_len, &doc, err);
            if (r < 0)
                return st_err_prefix(err, r, "reading %s", page->entries[i].key);
            json_array_append_new(arr, doc);
        }
        if (!page->more || page->count == 0)
            break;
        free(last);
        last = st_strdup(page->entries[page->count - 1].key);
        after = last;
    }
    *ret = st_steal(&arr);
    return 0;
}

int st_idrec_update(struct st_kv *kv, const char *kind, json_t *doc, int64_t expect_rev,
                    struct st_err **err)
{
    const char *id = str_member(doc, "id"), *name = str_member(doc, "name");
    const char *domain_id = str_member(doc, "domain_id");
    st_autoptr(json_t) old = NULL;
    int64_t rev;
    int r = st_idrec_get(kv, kind, id, &old, &rev, err);
    if (r < 0)
        return r;
    if (rev != expect_rev)
        return st_err_set(err, -ECANCELED, "record changed concurrently");
    const char *old_name = str_member(old, "name");
    bool renamed = strcmp(old_name ?: "", name ?: "") != 0;
    if (renamed) {
        r = claim_name(kv, kind, domain_id, name, id, err);
        if (r < 0)
            return r;
    }
    r = write_doc(kv, kind, doc, expect_rev, err);
    if (r < 0) {
        if (renamed)
            release_name(kv, kind, domain_id, name, id);
        return r;
    }
    if (renamed)
        release_name(kv, kind, str_member(old, "domain_id"), old_name, id);
    return 0;
}

int st_idrec_delete(struct st_kv *kv, const char *kind, const char *id, struct st_err **err)
{
    st_autoptr(json_t) doc = NULL;
    int64_t rev;
    int r = st_idrec_get(kv, kind, id, &doc, &rev, err);
    if (r < 0)
        return r;
    st_autofree char *key = record_key(kind, id);
    r = st_kv_delete(kv, key, rev, NULL, err);
    if (r < 0)
        return r;
    release_name(kv, kind, str_member(doc, "domain_id"), str_member(doc, "name"), id);
    return 0;
}
