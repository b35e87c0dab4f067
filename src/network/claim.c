/* Claims and delete marks: the two store patterns that keep the network
 * service consistent without locks. A claim is a key written only if absent
 * (an address, a MAC, a VNI): whoever writes it first owns the thing. A
 * delete mark settles the race between deleting a network or subnet and
 * making a port on it: the deleter marks the parent, then looks for users;
 * a maker claims first and then looks at the parent. Whatever the
 * interleaving, either the deleter sees the maker's claim (and answers
 * "in use") or the maker sees the mark (and waits to learn the outcome). */
#include "network/core-priv.h"

#include <errno.h>
#include <string.h>
#include <time.h>

#include "lib/cleanup.h"
#include "lib/json.h"
#include "network/network-priv.h"
#include "store/kv.h"

int net_claim(struct st_kv *kv, const char *key, const char *owner, struct st_err **err)
{
    st_autoptr(json_t) v = json_string(owner ? owner : "");
    st_autofree char *text = json_dumps(v, JSON_ENCODE_ANY);
    struct st_err *kerr = NULL;
    int r = st_kv_put(kv, key, text, strlen(text), ST_KV_ABSENT, NULL, &kerr);
    if (r == -ECANCELED) {
        st_err_free(kerr);
        return -EEXIST;
    }
    if (r < 0) {
        if (err && !*err)
            *err = kerr;
        else
            st_err_free(kerr);
        return st_err_prefix(err, r, "claiming %s", key);
    }
    return 0;
}

int net_unclaim(struct st_kv *kv, const char *key, struct st_err **err)
{
    struct st_err *kerr = NULL;
    int r = st_kv_delete(kv, key, ST_KV_ANY, NULL, &kerr);
    if (r == -ENOENT || r == 0) {
        st_err_free(kerr);
        return 0;
    }
    if (err && !*err)
        *err = kerr;
    else
        st_err_free(kerr);
    return st_err_prefix(err, r, "releasing %s", key);
}

void net_unclaim_all(struct st_kv *kv, const char *prefix)
{
    st_autoptr(st_kv_list) l = NULL;
    if (st_kv_list(kv, prefix, NULL, 0, &l, NULL) < 0)
        return;
    for (size_t i = 0; i < l->count; i++)
        st_kv_delete(kv, l->entries[i].key, ST_KV_ANY, NULL, NULL);
}

/* A mark older than this was left by a delete that died half-way: void. */
#define MARK_TTL_S 30

bool net_doc_marked(json_t *doc)
{
    json_int_t at = json_integer_value(json_object_get(doc, "_deleting"));
    return at > 0 && time(NULL) - at < MARK_TTL_S;
}

int net_parent_mark(struct st_kv *kv, const char *prefix, const char *id, bool deleting,
                    json_t **ret_doc, struct st_err **err)
{
    for (int attempt = 0; attempt < 100; attempt++) {
        st_autoptr(json_t) doc = NULL;
        int64_t rev;
        int r = net_doc_get(kv, prefix, id, &doc, &rev, err);
        if (r < 0)
            return r;
        if (deleting)
            json_object_set_new(doc, "_deleting", json_integer(time(NULL)));
        else
            json_object_del(doc, "_deleting");
        /* A mark is bookkeeping, not a change the user made: written
         * without net_doc_put's revision bump. */
        st_autofree char *key = st_sprintf("%s%s", prefix, id);
        st_autofree char *text = st_json_dumps(doc);
        struct st_err *kerr = NULL;
        r = st_kv_put(kv, key, text, strlen(text), rev, NULL, &kerr);
        if (r == -ECANCELED) {
            st_err_free(kerr);
            continue;
        }
        if (r < 0) {
            if (err && !*err)
                *err = kerr;
            else
                st_err_free(kerr);
            return st_err_prefix(err, r, "writing %s", key);
        }
        if (ret_doc)
            *ret_doc = st_steal(&doc);
        return 0;
    }
    return st_err_set(err, -EBUSY, "%s%s kept changing; try again", prefix, id);
}

int net_parent_check(struct st_kv *kv, const char *prefix, const char *id, struct st_err **err)
{
    /* A delete decides within a few store round trips; 5 s is generous. */
    for (int i = 0; i < 500; i++) {
        st_autoptr(json_t) doc = NULL;
        int r = net_doc_get(kv, prefix, id, &doc, NULL, err);
        if (r < 0)
            return r;
        if (!net_doc_marked(doc))
            return 0;
        struct timespec ts = {0, 10 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    return st_err_set(err, -EBUSY, "%s is being deleted; try again", id);
}
