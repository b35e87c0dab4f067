/* Security groups: the documents, each project's one "default" group, and
 * the name-or-id resolution that Nova's --security-group and the CLI need.
 * Rules are in security_group_rule.c.
 *
 * Neutron makes a project's "default" group on the project's first call;
 * here every call of this file (and of the rules') does the same through
 * st_security_group_ensure_default, whose compare-and-swap on
 * /network/default-sg/<project> makes concurrent first calls agree on a
 * single group. Lists are scoped to the caller's project even for admins,
 * so that `?name=default` always finds exactly one.
 *
 * A group's document holds no rules (model.h): a new group is written with
 * its first rules in one transaction, and shown with its rules read from
 * their keys. A delete removes the document and leaves a mark
 * (/network/sg-deleting/<id>) in one transaction, then clears what the
 * group leaves (its rules, the rules naming it as remote group, its quota
 * entries) and the mark last; the next group create or delete finishes
 * what a crash left half-way. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "lib/cleanup.h"
#include "lib/json.h"
#include "lib/log.h"
#include "lib/uuid.h"
#include "network/l3-priv.h"
#include "network/model.h"
#include "network/network-priv.h"
#include "network/quota.h"
#include "store/kv.h"

static int not_found(const char *id, struct st_err **err)
{
    st_err_clear(err);
    return st_err_set(err, -ENOENT, "Security group %s does not exist", id ? id : "");
}

int l3_sg_read(struct st_kv *kv, const struct st_network_caller *who, const char *id, json_t **ret,
               int64_t *ret_rev, struct st_err **err)
{
    int r = l3_id_ok(id)
                ? net_doc_get_visible(kv, who, ST_NETWORK_SGS_PREFIX, id, ret, ret_rev, err)
                : -ENOENT;
    return r == -ENOENT ? not_found(id, err) : r;
}

static const struct net_doc_kind sg_kind = {ST_NETWORK_SGS_PREFIX, l3_sg_read, L3_CAS_ATTEMPTS,
                                            -ECANCELED, "security group"};

/* A group document: Neutron's fields; *ret_rules: the egress rules every
 * group starts with, and for the default group those that let its own
 * members in. */
static json_t *group_new(const char *id, const char *project_id, const char *name,
                         const char *description, bool stateful, bool is_default,
                         json_t **ret_rules)
{
    json_t *doc = net_doc_new(project_id, name);
    if (id)
        json_object_set_new(doc, "id", json_string(id));
    const char *sg_id = l3_str(doc, "id");
    json_object_set_new(doc, "description", json_string(description));
    json_object_set_new(doc, "stateful", json_boolean(stateful));
    json_t *rules = json_array();
    json_array_append_new(rules, l3_sg_rule_new(sg_id, project_id, "egress", "IPv4", NULL));
    json_array_append_new(rules, l3_sg_rule_new(sg_id, project_id, "egress", "IPv6", NULL));
    if (is_default) {
        json_array_append_new(rules, l3_sg_rule_new(sg_id, project_id, "ingress", "IPv4", sg_id));
        json_array_append_new(rules, l3_sg_rule_new(sg_id, project_id, "ingress", "IPv6", sg_id));
    }
    *ret_rules = rules;
    return doc;
}

/* Counts (or releases) rules, an array of rule documents of a group of
 * project, in the project's rule quota: what Neutron makes with a group is
 * counted but never refused. */
static int rules_quota(struct st_kv *kv, const char *project, json_t *rules, bool count,
                       struct st_err **err)
{
    size_t n = json_array_size(rules);
    const char **ids = st_new0(const char *, n + 1);
    for (size_t i = 0; i < n; i++)
        ids[i] = l3_str(json_array_get(rules, i), "id");
    int r = count ? st_network_quota_charge(kv, project, ST_NETWORK_QUOTA_SECURITY_GROUP_RULE, ids,
                                            n, err)
                  : st_network_quota_release(kv, project, ST_NETWORK_QUOTA_SECURITY_GROUP_RULE, ids,
                                             n, err);
    free(ids);
    return r;
}

/* Counts a new group and its rules before it is written (the group
 * checked against the limit unless Neutron makes it on its own). */
static int group_quota(struct st_kv *kv, json_t *doc, json_t *rules, bool checked,
                       struct st_err **err)
{
    const char *project = l3_str(doc, "project_id"), *id = l3_str(doc, "id");
    int r = checked ? st_network_quota_claim(kv, project, ST_NETWORK_QUOTA_SECURITY_GROUP, id, err)
                    : st_network_quota_charge(kv, project, ST_NETWORK_QUOTA_SECURITY_GROUP, &id, 1,
                                              err);
    if (r == 0 && (r = rules_quota(kv, project, rules, true, err)) < 0)
        st_network_quota_release_one(kv, project, ST_NETWORK_QUOTA_SECURITY_GROUP, id);
    return r;
}

static void group_unquota(struct st_kv *kv, json_t *doc, json_t *rules, bool with_group)
{
    const char *project = l3_str(doc, "project_id");
    if (with_group)
        st_network_quota_release_one(kv, project, ST_NETWORK_QUOTA_SECURITY_GROUP,
                                     l3_str(doc, "id"));
    rules_quota(kv, project, rules, false, NULL);
}

static char *deleting_key(const char *id)
{
    return st_sprintf("%s%s", ST_NETWORK_SG_DELETING_PREFIX, id);
}

/* What a deleted group (doc: its last document) leaves behind, cleared in
 * an order that a crash may stop anywhere: its rules and those that name
 * it, its quota entry, and the mark last, so that finish_deletes does the
 * rest. Idempotent. */
static void finish_delete(struct st_kv *kv, json_t *doc)
{
    const char *id = l3_str(doc, "id"), *project = l3_str(doc, "project_id");
    l3_sg_rules_purge(kv, doc);
    st_network_quota_release_one(kv, project, ST_NETWORK_QUOTA_SECURITY_GROUP, id);
    st_autofree char *mark = deleting_key(id);
    st_kv_delete(kv, mark, ST_KV_ANY, NULL, NULL);
}

/* Finishes the deletes that a crash stopped half-way (their marks are
 * left); usually there are none, and this is one empty prefix read. */
static void finish_deletes(struct st_kv *kv)
{
    st_autoptr(json_t) left = NULL;
    if (net_doc_list(kv, ST_NETWORK_SG_DELETING_PREFIX, &left, NULL) < 0)
        return;
    size_t i;
    json_t *doc;
    json_array_foreach(left, i, doc)
    {
        st_log_info("sg_delete_resumed", "id=%s", l3_str(doc, "id") ?: "?");
        finish_delete(kv, doc);
    }
}

int st_security_group_ensure_default(struct st_kv *kv, const char *project_id, char **ret_id,
                                     struct st_err **err)
{
    if (!project_id || !*project_id || strchr(project_id, '/'))
        return st_err_set(err, -EINVAL, "a security group needs a project");
    st_autofree char *key = st_sprintf("%s%s", ST_NETWORK_DEFAULT_SG_PREFIX, project_id);
    st_autofree char *id = NULL;
    st_autoptr(st_kv_entry) e = NULL;
    int r = st_kv_get(kv, key, &e, NULL);
    if (r == -ENOENT) {
        /* Claim the name first: the one claim that lands decides the id,
         * and every racer then writes (or finds) the group under it. */
        char fresh[ST_UUID_LEN];
        st_uuid_new(fresh);
        r = st_kv_put(kv, key, fresh, strlen(fresh), ST_KV_ABSENT, NULL, NULL);
        if (r == 0)
            id = st_strdup(fresh);
        else if (r != -ECANCELED)
            return st_err_set(err, r, "claiming the default security group of project %s",
                              project_id);
        else
            r = st_kv_get(kv, key, &e, err);
    }
    if (r < 0)
        return st_err_prefix(err, r, "reading %s", key);
    if (!id)
        id = st_strndup(e->value, e->value_len);

    st_autoptr(json_t) doc = NULL;
    r = net_doc_get(kv, ST_NETWORK_SGS_PREFIX, id, &doc, NULL, err);
    if (r == -ENOENT) {
        /* Absent also after a crash between the claim and this write: the
         * next call finishes the job. */
        st_autoptr(json_t) rules = NULL;
        doc = group_new(id, project_id, "default", "Default security group", true, true, &rules);
        /* Neutron makes it even at a quota of 0, and counts it. */
        if ((r = group_quota(kv, doc, rules, false, err)) == 0) {
            r = l3_sg_write_new(kv, doc, rules, err);
            if (r == -ECANCELED) {
                /* another first call wrote it: the group's id is the same,
                 * its rules' ids are not */
                st_err_clear(err);
                group_unquota(kv, doc, rules, false);
                r = 0;
            } else if (r < 0) {
                group_unquota(kv, doc, rules, true);
            } else {
                st_log_info("sg_default_create", "project=%s id=%s", project_id, id);
            }
        }
    }
    if (r < 0)
        return st_err_prefix(err, r, "making the default security group of project %s", project_id);
    if (ret_id)
        *ret_id = st_steal(&id);
    return 0;
}

static int check_text(json_t *req, const char *field, struct st_err **err)
{
    json_t *v = json_object_get(req, field);
    if (!v || json_is_null(v))
        return 0;
    if (!json_is_string(v))
        return st_err_set(err, -EINVAL, "Invalid input for %s. Reason: not a string.", field);
    if (json_string_length(v) > ST_NETWORK_NAME_MAX)
        return st_err_set(err, -EINVAL,
                          "Invalid input for %s. Reason: '%s' exceeds maximum length of %d.", field,
                          json_string_value(v), ST_NETWORK_NAME_MAX);
    return 0;
}

static int check_request(json_t *req, struct st_err **err)
{
    int r;
    if (!json_is_object(req))
        return st_err_set(err, -EINVAL, "Invalid input: security_group must be an object.");
    if ((r = check_text(req, "name", err)) < 0 || (r = check_text(req, "description", err)) < 0)
        return r;
    json_t *stateful = json_object_get(req, "stateful");
    if (stateful && !json_is_boolean(stateful))
        return st_err_set(err, -EINVAL,
                          "Invalid input for stateful. Reason: not a valid boolean value.");
    if (l3_streq(l3_str(req, "name"), "default"))
        return st_err_set(err, -EEXIST, "Default security group already exists.");
    return 0;
}

int st_security_group_create(struct st_kv *kv, const struct st_network_caller *who, json_t *req,
                             json_t **ret, struct st_err **err)
{
    int r = check_request(req, err);
    if (r < 0)
        return r;
    const char *project = NULL;
    if ((r = l3_owner(who, req, "a security group", &project, err)) < 0)
        return r;
    if ((r = st_security_group_ensure_default(kv, project, NULL, err)) < 0)
        return r;
    const char *name = l3_str(req, "name") ? l3_str(req, "name") : "";
    const char *desc = l3_str(req, "description") ? l3_str(req, "description") : name;
    json_t *stateful = json_object_get(req, "stateful");
    st_autoptr(json_t) rules = NULL;
    st_autoptr(json_t) doc =
        group_new(NULL, project, name, desc, !stateful || json_is_true(stateful), false, &rules);
    finish_deletes(kv);
    if ((r = group_quota(kv, doc, rules, true, err)) < 0)
        return r;
    if ((r = l3_sg_write_new(kv, doc, rules, err)) < 0) {
        group_unquota(kv, doc, rules, true);
        return st_err_prefix(err, r, "creating security group '%s'", name);
    }
    st_log_info("sg_create", "id=%s project=%s", l3_str(doc, "id"), project);
    if (ret) {
        *ret = net_public(doc);
        json_object_set(*ret, "security_group_rules", rules);
    }
    return 0;
}

int st_security_group_get(struct st_kv *kv, const struct st_network_caller *who, const char *id,
                          json_t **ret, struct st_err **err)
{
    int r = l3_ensure_default(kv, who, err);
    if (r < 0)
        return r;
    st_autoptr(json_t) doc = NULL;
    if ((r = l3_sg_read(kv, who, id, &doc, NULL, err)) < 0)
        return r;
    return l3_sg_present(kv, doc, ret, err);
}

int st_security_group_list(struct st_kv *kv, const struct st_network_caller *who, json_t *filters,
                           json_t **ret, struct st_err **err)
{
    int r = l3_ensure_default(kv, who, err);
    if (r < 0)
        return r;
    st_autoptr(json_t) all = NULL;
    if ((r = net_doc_list(kv, ST_NETWORK_SGS_PREFIX, &all, err)) < 0)
        return r;
    st_autoptr(json_t) out = json_array();
    size_t i;
    json_t *doc;
    json_array_foreach(all, i, doc)
    {
        if (!net_list_visible(who, doc))
            continue;
        /* filtered as shown: revision_number counts rule changes */
        json_t *shown = NULL;
        if ((r = l3_sg_present(kv, doc, &shown, err)) < 0)
            return r;
        if (net_filter_match(shown, filters))
            json_array_append_new(out, shown);
        else
            json_decref(shown);
    }
    *ret = st_steal(&out);
    return 0;
}

static int apply_update(struct st_kv *kv, const struct st_network_caller *who, json_t *doc,
                        json_t *req, struct st_err **err)
{
    (void)kv;
    (void)who;
    const char *name = l3_str(req, "name");
    if (name && l3_streq(l3_str(doc, "name"), "default"))
        return st_err_set(err, -EBUSY, "Updating default security group not allowed.");
    if (name)
        json_object_set_new(doc, "name", json_string(name));
    if (l3_str(req, "description"))
        json_object_set_new(doc, "description", json_string(l3_str(req, "description")));
    json_t *stateful = json_object_get(req, "stateful");
    if (stateful)
        json_object_set(doc, "stateful", stateful);
    return 0;
}

int st_security_group_update(struct st_kv *kv, const struct st_network_caller *who, const char *id,
                             json_t *req, json_t **ret, struct st_err **err)
{
    int r = check_request(req, err);
    if (r < 0)
        return r;
    if ((r = l3_ensure_default(kv, who, err)) < 0)
        return r;
    st_autoptr(json_t) doc = NULL;
    if ((r = net_doc_update(kv, who, &sg_kind, id, req, apply_update, &doc, err)) < 0)
        return r;
    return ret ? l3_sg_present(kv, doc, ret, err) : 0;
}

static bool array_has(json_t *arr, const char *s)
{
    size_t i;
    json_t *v;
    json_array_foreach(arr, i, v)
    {
        if (l3_streq(json_string_value(v), s))
            return true;
    }
    return false;
}

int st_security_group_delete(struct st_kv *kv, const struct st_network_caller *who, const char *id,
                             struct st_err **err)
{
    int r = l3_ensure_default(kv, who, err);
    if (r < 0)
        return r;
    for (int attempt = 0; attempt < L3_CAS_ATTEMPTS; attempt++) {
        st_autoptr(json_t) doc = NULL;
        int64_t rev = 0;
        if ((r = l3_sg_read(kv, who, id, &doc, &rev, err)) < 0)
            return r;
        bool is_default = l3_streq(l3_str(doc, "name"), "default");
        if (is_default && !who->is_admin)
            return st_err_set(err, -EBUSY,
                              "Insufficient rights for removing default security group.");
        st_autoptr(json_t) ports = NULL;
        if ((r = net_doc_list(kv, ST_NETWORK_PORTS_PREFIX, &ports, err)) < 0)
            return r;
        size_t i;
        json_t *port;
        json_array_foreach(ports, i, port)
        {
            if (array_has(json_object_get(port, "security_groups"), id))
                return st_err_set(err, -EBUSY, "Security Group %s in use.", id);
        }
        /* The document goes and the mark comes in one step: from here on
         * no rule can be added to the group (a rule create holds only
         * while the document is the one it read). A default group's claim
         * goes in the same step, so that the project's next call makes a
         * group with a new id, never one that the mark would clear. */
        st_autofree char *key = st_sprintf("%s%s", ST_NETWORK_SGS_PREFIX, id);
        st_autofree char *mark = deleting_key(id);
        st_autofree char *text = st_json_dumps(doc);
        st_autofree char *dkey =
            st_sprintf("%s%s", ST_NETWORK_DEFAULT_SG_PREFIX, l3_str(doc, "project_id") ?: "");
        st_autoptr(st_kv_entry) claim = NULL;
        if (!is_default || st_kv_get(kv, dkey, &claim, NULL) < 0 ||
            strlen(id) != claim->value_len || memcmp(claim->value, id, claim->value_len) != 0)
            st_kv_entry_free(st_steal(&claim));
        struct st_kv_cmp cmps[] = {{key, rev}, {dkey, claim ? claim->mod_rev : ST_KV_ANY}};
        struct st_kv_op ops[] = {
            {ST_KV_OP_DELETE, key, NULL, 0},
            {ST_KV_OP_PUT, mark, text, strlen(text)},
            {ST_KV_OP_DELETE, dkey, NULL, 0},
        };
        r = st_kv_txn(kv, cmps, claim ? 2 : 1, ops, claim ? 3 : 2, NULL, err);
        if (r == -ECANCELED) {
            st_err_clear(err);
            continue;
        }
        if (r < 0)
            return st_err_prefix(err, r, "deleting security group %s", id);
        finish_delete(kv, doc);
        finish_deletes(kv);
        st_log_info("sg_delete", "id=%s", id);
        return 0;
    }
    return st_err_set(err, -ECANCELED, "security group %s kept changing; try again", id);
}

int st_security_group_resolve(struct st_kv *kv, const struct st_network_caller *who,
                              const char *name_or_id, char **ret_id, json_t **ret_doc,
                              struct st_err **err)
{
    int r = l3_ensure_default(kv, who, err);
    if (r < 0)
        return r;
    if (!name_or_id || !*name_or_id)
        return not_found("", err);
    st_autoptr(json_t) found = NULL;
    if (l3_id_ok(name_or_id)) {
        r = net_doc_get(kv, ST_NETWORK_SGS_PREFIX, name_or_id, &found, NULL, err);
        if (r < 0 && r != -ENOENT)
            return r;
        if (found && !net_visible(who, found))
            json_decref(st_steal(&found));
    }
    if (!found) {
        st_autoptr(json_t) all = NULL;
        if ((r = net_doc_list(kv, ST_NETWORK_SGS_PREFIX, &all, err)) < 0)
            return r;
        size_t i;
        json_t *doc;
        json_array_foreach(all, i, doc)
        {
            if (!net_list_visible(who, doc) || !l3_streq(l3_str(doc, "name"), name_or_id))
                continue;
            if (found)
                return st_err_set(err, -EBUSY,
                                  "Multiple security_group matches found for name '%s', use an "
                                  "ID to be more specific.",
                                  name_or_id);
            found = json_incref(doc);
        }
    }
    if (!found)
        return not_found(name_or_id, err);
    if (ret_doc && (r = l3_sg_present(kv, found, ret_doc, err)) < 0)
        return r;
    if (ret_id)
        *ret_id = st_strdup(l3_str(found, "id"));
    return 0;
}
