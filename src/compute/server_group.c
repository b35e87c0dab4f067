/* Server groups: the documents, Nova's request checks with Nova's
 * messages, the live member list, and the check of a server create's group
 * hint. See server_group.h. */
#include "server_group.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "compute/model.h"
#include "compute/quota.h"
#include "compute/server-priv.h"
#include "lib/cleanup.h"
#include "lib/json.h"
#include "lib/log.h"
#include "lib/uuid.h"
#include "store/kv.h"

#define CAS_ATTEMPTS 100
#define LIST_PAGE    500

/* The policies Nova accepts (2.15 added the soft ones; the state model and
 * the placement controller know all four). */
static const char *const policies[] = {"anti-affinity", "affinity", "soft-anti-affinity",
                                       "soft-affinity"};

static int not_found(const char *id, struct st_err **err)
{
    return st_err_set(err, -ENOENT, "Server group %s could not be found.", id ? id : "");
}

static int over_quota(struct st_err **err)
{
    return st_err_set(err, -EDQUOT, "Quota exceeded, too many server groups.");
}

static char *group_key(const char *id)
{
    return st_sprintf("%s%s", ST_COMPUTE_SERVER_GROUPS_PREFIX, id);
}

static int invalid_policies(json_t *v, struct st_err **err)
{
    st_autofree char *value = st_json_dumps(v);
    return st_err_set(err, -EINVAL,
                      "Invalid input for field/attribute policies. Value: %.200s. Must be a list "
                      "of exactly one of 'anti-affinity', 'affinity', 'soft-anti-affinity', "
                      "'soft-affinity'",
                      value);
}

static int check_policies(json_t *v, struct st_err **err)
{
    if (!json_is_array(v) || json_array_size(v) != 1)
        return invalid_policies(v, err);
    const char *p = json_string_value(json_array_get(v, 0));
    for (size_t i = 0; p && i < ST_ARRAY_SIZE(policies); i++)
        if (strcmp(p, policies[i]) == 0)
            return 0;
    return invalid_policies(v, err);
}

/* Nova's schema: name and policies, both required, nothing else. */
static int check_request(json_t *req, struct st_err **err)
{
    if (!json_is_object(req))
        return st_err_set(err, -EINVAL,
                          "Invalid input for field/attribute server_group. Value must be an "
                          "object.");
    const char *k;
    json_t *v;
    json_object_foreach(req, k, v)
    {
        if (strcmp(k, "name") != 0 && strcmp(k, "policies") != 0)
            return st_err_set(err, -EINVAL,
                              "Invalid input for field/attribute server_group. Additional "
                              "properties are not allowed ('%.64s' was unexpected)",
                              k);
    }
    static const char *const required[] = {"name", "policies"};
    for (size_t i = 0; i < ST_ARRAY_SIZE(required); i++)
        if (!json_object_get(req, required[i]))
            return st_err_set(err, -EINVAL,
                              "Invalid input for field/attribute server_group. '%s' is a "
                              "required property",
                              required[i]);
    int r = server_check_name(json_object_get(req, "name"), "name", err);
    if (r < 0)
        return r;
    return check_policies(json_object_get(req, "policies"), err);
}

int st_server_group_create(struct st_kv *kv, const struct st_compute_caller *who, json_t *req,
                           json_t **ret_doc, struct st_err **err)
{
    int r = check_request(req, err);
    if (r < 0)
        return r;
    if (!who->project_id)
        return st_err_set(err, -EPERM, "creating a server group needs a project-scoped token");
    struct st_compute_quota quota;
    if ((r = st_compute_quota_get(kv, who->project_id, &quota, err)) < 0)
        return r;
    int64_t limit = quota.limit[ST_QUOTA_SERVER_GROUPS];
    size_t count = 0;
    if (limit >= 0 && (r = st_server_group_count(kv, who->project_id, &count, err)) < 0)
        return r;
    if (limit >= 0 && (int64_t)count >= limit)
        return over_quota(err);
    char id[ST_UUID_LEN], now[ST_TIME_RFC3339_LEN];
    st_uuid_new(id);
    server_now(now);
    st_autoptr(json_t) doc = json_pack("{s:s, s:O, s:s, s:s?, s:s, s:O, s:[]}", "id", id, "name",
                                       json_object_get(req, "name"), "project_id", who->project_id,
                                       "user_id", who->user_id, "created_at", now, "policies",
                                       json_object_get(req, "policies"), "members");
    if (!doc)
        return st_err_set(err, -EINVAL, "server group document could not be built");
    st_autofree char *key = group_key(id);
    st_autofree char *text = st_json_dumps(doc);
    r = st_kv_put(kv, key, text, strlen(text), ST_KV_ABSENT, NULL, err);
    if (r < 0)
        return st_err_prefix(err, r, "writing server group %s", id);
    /* Nova's recheck: two creates that both counted below the limit may
     * both have written; whoever now sees the project over it withdraws.
     * (A recheck that cannot count keeps what was written.) */
    st_autoptr(st_err) cerr = NULL;
    if (limit >= 0 && st_server_group_count(kv, who->project_id, &count, &cerr) == 0 &&
        (int64_t)count > limit) {
        st_autoptr(st_err) derr = NULL;
        int d = st_kv_delete(kv, key, ST_KV_ANY, NULL, &derr);
        if (d < 0 && d != -ENOENT)
            st_log_warn("server_group_withdraw_failed", "group=%s err=\"%s\"", id,
                        st_err_msg(derr));
        return over_quota(err);
    }
    st_log_info("server_group_created", "group=%s project=%s policy=%s", id, who->project_id,
                json_string_value(json_array_get(json_object_get(doc, "policies"), 0)));
    *ret_doc = st_steal(&doc);
    return 0;
}

enum member_state { MEMBER_GONE, MEMBER_UNKNOWN, MEMBER_DELETING, MEMBER_LIVE };

/* What became of a member's server: gone (no document), being deleted,
 * live, or unknown (the store could not say). */
static enum member_state member_state(struct st_kv *kv, const char *server_id)
{
    if (!server_id || !st_uuid_valid(server_id))
        return MEMBER_GONE;
    st_autofree char *key = server_key(server_id);
    st_autoptr(st_kv_entry) e = NULL;
    int r = st_kv_get(kv, key, &e, NULL);
    if (r == -ENOENT)
        return MEMBER_GONE;
    st_autoptr(json_t) doc = NULL;
    if (r < 0 || st_json_parse_object(e->value, e->value_len, &doc, NULL) < 0)
        return MEMBER_UNKNOWN;
    return json_is_true(json_object_get(server_spec(doc), "deleted")) ? MEMBER_DELETING
                                                                      : MEMBER_LIVE;
}

/* The members to show (for_write false): those whose servers exist and are
 * not being deleted, as Nova shows only servers that are not deleted. The
 * members to keep (for_write true): all but those known to be gone. */
static json_t *live_members(struct st_kv *kv, json_t *members, bool for_write)
{
    json_t *out = json_array();
    size_t i;
    json_t *m;
    json_array_foreach(members, i, m)
    {
        enum member_state st = member_state(kv, json_string_value(m));
        if (st == MEMBER_LIVE || (for_write && st != MEMBER_GONE))
            json_array_append(out, m);
    }
    return out;
}

static int parse_group(const char *id, struct st_kv_entry *e, json_t **ret, struct st_err **err)
{
    int r = st_json_parse_object(e->value, e->value_len, ret, err);
    if (r < 0)
        return st_err_prefix(err, r, "reading server group %s", id);
    return 0;
}

int st_server_group_get(struct st_kv *kv, const char *id, json_t **ret_doc, struct st_err **err)
{
    if (!id || !st_uuid_valid(id))
        return not_found(id, err);
    st_autofree char *key = group_key(id);
    st_autoptr(st_kv_entry) e = NULL;
    st_autoptr(st_err) gerr = NULL;
    int r = st_kv_get(kv, key, &e, &gerr);
    if (r == -ENOENT)
        return not_found(id, err);
    if (r < 0)
        return st_err_set(err, r, "reading server group %s: %s", id, st_err_msg(gerr));
    st_autoptr(json_t) doc = NULL;
    if ((r = parse_group(id, e, &doc, err)) < 0)
        return r;
    json_object_set_new(doc, "members", live_members(kv, json_object_get(doc, "members"), false));
    *ret_doc = st_steal(&doc);
    return 0;
}

struct listed {
    int64_t create_rev;
    json_t *doc;
};

static int by_creation(const void *a, const void *b)
{
    const struct listed *x = a, *y = b;
    return (x->create_rev > y->create_rev) - (x->create_rev < y->create_rev);
}

static void listed_free(struct listed *items, size_t n)
{
    for (size_t i = 0; i < n; i++)
        json_decref(items[i].doc);
    free(items);
}

/* The documents of a project (NULL = all) in creation order, as stored. */
static int collect(struct st_kv *kv, const char *project_id, struct listed **ret, size_t *ret_n,
                   struct st_err **err)
{
    struct listed *items = NULL;
    size_t n = 0, cap = 0;
    st_autofree char *after = NULL;
    for (bool more = true; more;) {
        st_autoptr(st_kv_list) l = NULL;
        int r = st_kv_list(kv, ST_COMPUTE_SERVER_GROUPS_PREFIX, after, LIST_PAGE, &l, err);
        if (r < 0) {
            listed_free(items, n);
            return st_err_prefix(err, r, "listing server groups");
        }
        for (size_t i = 0; i < l->count; i++) {
            json_t *doc = NULL;
            if (st_json_parse_object(l->entries[i].value, l->entries[i].value_len, &doc, NULL) <
                0) {
                st_log_warn("server_group_bad_document", "key=%s", l->entries[i].key);
                continue;
            }
            const char *owner = server_str(doc, "project_id");
            if (project_id && (!owner || strcmp(owner, project_id) != 0)) {
                json_decref(doc);
                continue;
            }
            if (n == cap) {
                cap = cap ? 2 * cap : 16;
                items = st_xrealloc(items, cap * sizeof(*items));
            }
            items[n++] = (struct listed){l->entries[i].create_rev, doc};
        }
        more = l->more && l->count > 0;
        if (more) {
            free(after);
            after = st_strdup(l->entries[l->count - 1].key);
        }
    }
    if (n > 0)
        qsort(items, n, sizeof(*items), by_creation);
    *ret = items;
    *ret_n = n;
    return 0;
}

int st_server_group_list(struct st_kv *kv, const char *project_id, json_t **ret_docs,
                         struct st_err **err)
{
    struct listed *items = NULL;
    size_t n = 0;
    int r = collect(kv, project_id, &items, &n, err);
    if (r < 0)
        return r;
    json_t *out = json_array();
    for (size_t i = 0; i < n; i++) {
        json_t *doc = items[i].doc;
        json_object_set_new(doc, "members",
                            live_members(kv, json_object_get(doc, "members"), false));
        json_array_append_new(out, doc);
    }
    free(items);
    *ret_docs = out;
    return 0;
}

int st_server_group_count(struct st_kv *kv, const char *project_id, size_t *ret,
                          struct st_err **err)
{
    struct listed *items = NULL;
    size_t n = 0;
    int r = collect(kv, project_id, &items, &n, err);
    if (r < 0)
        return r;
    listed_free(items, n);
    *ret = n;
    return 0;
}

int st_server_group_delete(struct st_kv *kv, const char *id, struct st_err **err)
{
    if (!id || !st_uuid_valid(id))
        return not_found(id, err);
    st_autofree char *key = group_key(id);
    st_autoptr(st_err) derr = NULL;
    int r = st_kv_delete(kv, key, ST_KV_ANY, NULL, &derr);
    if (r == -ENOENT)
        return not_found(id, err);
    if (r < 0)
        return st_err_set(err, r, "deleting server group %s: %s", id, st_err_msg(derr));
    st_log_info("server_group_deleted", "group=%s", id);
    return 0;
}

int st_server_group_check_hint(struct st_kv *kv, const struct st_compute_caller *who,
                               const char *id, struct st_err **err)
{
    st_autofree char *key = group_key(id);
    st_autoptr(st_kv_entry) e = NULL;
    st_autoptr(st_err) gerr = NULL;
    int r = st_uuid_valid(id) ? st_kv_get(kv, key, &e, &gerr) : -ENOENT;
    if (r < 0 && r != -ENOENT)
        return st_err_set(err, r, "reading server group %s: %s", id, st_err_msg(gerr));
    st_autoptr(json_t) doc = NULL;
    if (r == 0 && (r = parse_group(id, e, &doc, err)) < 0)
        return r;
    const char *owner = doc ? server_str(doc, "project_id") : NULL;
    bool visible =
        doc && (who->is_admin || (owner && who->project_id && strcmp(owner, who->project_id) == 0));
    if (!visible)
        return st_err_set(err, -EINVAL, "Instance group %s could not be found.", id);
    /* the group's project pays for its members, as in Nova */
    struct st_compute_quota quota;
    if ((r = st_compute_quota_get(kv, owner, &quota, err)) < 0)
        return r;
    int64_t limit = quota.limit[ST_QUOTA_SERVER_GROUP_MEMBERS];
    if (limit < 0)
        return 0;
    st_autoptr(json_t) live = live_members(kv, json_object_get(doc, "members"), false);
    if ((int64_t)json_array_size(live) >= limit)
        return st_err_set(err, -EDQUOT, "Quota exceeded, too many servers in group");
    return 0;
}

int st_server_group_add_member(struct st_kv *kv, const char *id, const char *server_id,
                               struct st_err **err)
{
    st_autofree char *key = group_key(id);
    for (int attempt = 0; attempt < CAS_ATTEMPTS; attempt++) {
        st_autoptr(st_kv_entry) e = NULL;
        st_autoptr(st_err) gerr = NULL;
        int r = st_kv_get(kv, key, &e, &gerr);
        if (r == -ENOENT)
            return not_found(id, err);
        if (r < 0)
            return st_err_set(err, r, "reading server group %s: %s", id, st_err_msg(gerr));
        st_autoptr(json_t) doc = NULL;
        if ((r = parse_group(id, e, &doc, err)) < 0)
            return r;
        json_t *members = json_object_get(doc, "members");
        size_t i;
        json_t *m;
        json_array_foreach(members, i, m)
        {
            if (json_is_string(m) && strcmp(json_string_value(m), server_id) == 0)
                return 0;
        }
        /* every id here had a document when it was added (after the
         * server's write), so one without a document is a deleted server */
        json_t *kept = live_members(kv, members, true);
        json_array_append_new(kept, json_string(server_id));
        json_object_set_new(doc, "members", kept);
        st_autofree char *text = st_json_dumps(doc);
        st_autoptr(st_err) perr = NULL;
        r = st_kv_put(kv, key, text, strlen(text), e->mod_rev, NULL, &perr);
        if (r == -ECANCELED)
            continue;
        if (r < 0)
            return st_err_set(err, r, "writing server group %s: %s", id, st_err_msg(perr));
        return 0;
    }
    return st_err_set(err, -EAGAIN, "server group %s: too many concurrent updates", id);
}
