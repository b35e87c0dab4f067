/* Unit tests of security-group rules as the store keeps them (one key per
 * rule, network/model.h), over a temporary SQLite store: many clients adding
 * distinct rules to one group at once all succeed and never rewrite the
 * group; identical rules racing end in one rule and SecurityGroupRuleExists
 * naming it; a group deleted while rules are being added keeps none; a
 * group's revision_number counts its rule changes; groups written with their
 * rules inside (as before) are read, shown and served to nodes as they are
 * and moved to the new layout by their first rule change, also after a move
 * that stopped half-way; and what a group delete stopped by a crash leaves
 * is never seen nor counted, and is cleared by the next group create. */
#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "compute/model.h"
#include "lib/cleanup.h"
#include "lib/json.h"
#include "network/model.h"
#include "network/network.h"
#include "network/quota.h"
#include "store/kv.h"

static const struct st_network_caller alice = {"aaaa0000aaaa0000aaaa0000aaaa0000", "u-alice",
                                               false};

struct fixture {
    char dir[64];
    struct st_kv *kv;
};

static int setup(void **state)
{
    struct fixture *f = st_new0(struct fixture, 1);
    strcpy(f->dir, "/tmp/st-test-network-sg-XXXXXX");
    assert_non_null(mkdtemp(f->dir));
    st_autofree char *db = st_sprintf("%s/stratos.db", f->dir);
    assert_int_equal(st_kv_open(db, NULL, &f->kv, NULL), 0);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    st_kv_close(f->kv);
    st_autofree char *cmd = st_sprintf("rm -rf %s", f->dir);
    int r = system(cmd);
    free(f);
    return r == 0 ? 0 : -1;
}

static const char *str(json_t *o, const char *k)
{
    return json_string_value(json_object_get(o, k));
}

static json_t *J(const char *text)
{
    json_error_t e;
    json_t *v = json_loads(text, 0, &e);
    if (!v)
        fail_msg("bad test JSON %s: %s", text, e.text);
    return v;
}

#define assert_fails(code, needle, call)                                                           \
    do {                                                                                           \
        struct st_err *err_ = NULL;                                                                \
        int r_ = (call);                                                                           \
        if (r_ != (code) || !err_ || !strstr(err_->msg, (needle)))                                 \
            fail_msg("%s: got %d \"%s\", want %d \"%s\"", #call, r_, err_ ? err_->msg : "",        \
                     (code), (needle));                                                            \
        st_err_free(err_);                                                                         \
    } while (0)

#define assert_ok(call)                                                                            \
    do {                                                                                           \
        struct st_err *err_ = NULL;                                                                \
        int r_ = (call);                                                                           \
        if (r_ != 0)                                                                               \
            fail_msg("%s: %d %s", #call, r_, err_ ? err_->msg : "");                               \
        st_err_free(err_);                                                                         \
    } while (0)

static char *make_group(struct st_kv *kv, const char *name)
{
    st_autoptr(json_t) sg = NULL;
    st_autoptr(json_t) req = json_pack("{s:s}", "name", name);
    assert_ok(st_security_group_create(kv, &alice, req, &sg, &err_));
    return st_strdup(str(sg, "id"));
}

/* A TCP rule to one port of group sg (more fields: extra, a JSON object's
 * inside or ""). */
static int add_tcp_rule(struct st_kv *kv, const char *sg, int port, const char *extra, json_t **ret,
                        struct st_err **err)
{
    st_autofree char *text = st_sprintf("{\"security_group_id\": \"%s\", \"direction\": "
                                        "\"ingress\", \"protocol\": \"tcp\", \"port_range_min\": "
                                        "%d, \"port_range_max\": %d%s%s}",
                                        sg, port, port, *extra ? ", " : "", extra);
    st_autoptr(json_t) req = J(text);
    return st_security_group_rule_create(kv, &alice, req, ret, err);
}

static size_t count_prefix(struct st_kv *kv, const char *prefix)
{
    st_autoptr(st_kv_list) l = NULL;
    assert_int_equal(st_kv_list(kv, prefix, NULL, 0, &l, NULL), 0);
    return l->count;
}

static size_t count_under(struct st_kv *kv, const char *prefix, const char *sg)
{
    st_autofree char *p = st_sprintf("%s%s/", prefix, sg);
    return count_prefix(kv, p);
}

static json_t *group(struct st_kv *kv, const char *sg)
{
    json_t *doc = NULL;
    assert_ok(st_security_group_get(kv, &alice, sg, &doc, &err_));
    return doc;
}

static size_t rules_in(struct st_kv *kv, const char *sg)
{
    st_autoptr(json_t) doc = group(kv, sg);
    return json_array_size(json_object_get(doc, "security_group_rules"));
}

static json_int_t revision_of(json_t *doc)
{
    return json_integer_value(json_object_get(doc, "revision_number"));
}

/* The group's document as stored, and its mod_rev. */
static json_t *stored(struct st_kv *kv, const char *sg, int64_t *ret_rev)
{
    st_autofree char *key = st_sprintf("%s%s", ST_NETWORK_SGS_PREFIX, sg);
    st_autoptr(st_kv_entry) e = NULL;
    if (st_kv_get(kv, key, &e, NULL) < 0)
        return NULL;
    if (ret_rev)
        *ret_rev = e->mod_rev;
    return J(e->value);
}

static int64_t rules_used(struct st_kv *kv, int64_t *ret_reserved)
{
    struct st_network_quota_usage u;
    assert_ok(st_network_quota_usage(kv, alice.project_id, &u, &err_));
    if (ret_reserved)
        *ret_reserved = u.reserved[ST_NETWORK_QUOTA_SECURITY_GROUP_RULE];
    return u.used[ST_NETWORK_QUOTA_SECURITY_GROUP_RULE];
}

static void lift_rule_quota(struct st_kv *kv)
{
    st_autoptr(json_t) changes = J("{\"security_group_rule\": -1}");
    struct st_network_quota q;
    assert_ok(st_network_quota_set(kv, alice.project_id, changes, &q, &err_));
}

/* ---- concurrency ---- */

enum { THREADS = 8, PER_THREAD = 25 };

struct adder {
    struct st_kv *kv;
    const char *sg;
    pthread_barrier_t *start;
    int first_port; /* 0: every adder adds the same rule (port 443) */
    int ok, exists, gone, other;
    char rule_id[64];
    char msg[256];
};

static void *adder_main(void *arg)
{
    struct adder *a = arg;
    pthread_barrier_wait(a->start);
    int n = a->first_port ? PER_THREAD : 1;
    for (int i = 0; i < n; i++) {
        st_autoptr(json_t) rule = NULL;
        st_autoptr(st_err) err = NULL;
        int r =
            add_tcp_rule(a->kv, a->sg, a->first_port ? a->first_port + i : 443, "", &rule, &err);
        if (r == 0) {
            a->ok++;
            snprintf(a->rule_id, sizeof(a->rule_id), "%s", str(rule, "id"));
        } else if (r == -EEXIST) {
            a->exists++;
        } else if (r == -ENOENT) {
            a->gone++;
        } else {
            a->other++;
        }
        if (r < 0)
            snprintf(a->msg, sizeof(a->msg), "%s", err ? err->msg : "");
    }
    return NULL;
}

static void run_adders(struct st_kv *kv, const char *sg, bool distinct, struct adder *adders,
                       void (*meanwhile)(struct st_kv *, const char *))
{
    pthread_barrier_t start;
    pthread_barrier_init(&start, NULL, THREADS + 1);
    pthread_t threads[THREADS];
    for (int i = 0; i < THREADS; i++) {
        adders[i] = (struct adder){.kv = kv, .sg = sg, .start = &start};
        adders[i].first_port = distinct ? 1000 + i * PER_THREAD : 0;
        assert_int_equal(pthread_create(&threads[i], NULL, adder_main, &adders[i]), 0);
    }
    pthread_barrier_wait(&start);
    if (meanwhile)
        meanwhile(kv, sg);
    for (int i = 0; i < THREADS; i++)
        pthread_join(threads[i], NULL);
    pthread_barrier_destroy(&start);
}

static void test_distinct_rules_at_once(void **state)
{
    struct fixture *f = *state;
    lift_rule_quota(f->kv);
    st_autofree char *web = make_group(f->kv, "web");
    int64_t group_rev = 0;
    st_autoptr(json_t) before = stored(f->kv, web, &group_rev);
    struct adder adders[THREADS];
    run_adders(f->kv, web, true, adders, NULL);
    for (int i = 0; i < THREADS; i++) {
        if (adders[i].ok != PER_THREAD)
            fail_msg("adder %d: %d of %d added; last refusal \"%s\"", i, adders[i].ok, PER_THREAD,
                     adders[i].msg);
    }
    /* every rule shown once, in the group and in the rule list */
    st_autoptr(json_t) shown = group(f->kv, web);
    assert_int_equal(json_array_size(json_object_get(shown, "security_group_rules")),
                     2 + THREADS * PER_THREAD);
    st_autoptr(json_t) filters =
        json_pack("{s:s, s:s}", "security_group_id", web, "protocol", "tcp");
    st_autoptr(json_t) list = NULL;
    assert_ok(st_security_group_rule_list(f->kv, &alice, filters, &list, &err_));
    assert_int_equal(json_array_size(list), THREADS * PER_THREAD);
    /* Neutron's revision counts each rule added ... */
    assert_int_equal(revision_of(shown), THREADS * PER_THREAD);
    /* ... while the group's own document was never written */
    int64_t group_rev_after = 0;
    st_autoptr(json_t) after = stored(f->kv, web, &group_rev_after);
    assert_int_equal(group_rev_after, group_rev);
    assert_null(json_object_get(after, "security_group_rules"));
    assert_int_equal(count_under(f->kv, ST_NETWORK_SG_RULES_PREFIX, web), 2 + THREADS * PER_THREAD);
    /* the default group's 4, web's 2 egress rules and those added */
    int64_t reserved = -1;
    assert_int_equal(rules_used(f->kv, &reserved), 4 + 2 + THREADS * PER_THREAD);
    assert_int_equal(reserved, 0);
}

static void test_identical_rules_at_once(void **state)
{
    struct fixture *f = *state;
    st_autofree char *web = make_group(f->kv, "web");
    struct adder adders[THREADS];
    run_adders(f->kv, web, false, adders, NULL);
    int ok = 0, exists = 0;
    const char *winner = NULL;
    for (int i = 0; i < THREADS; i++) {
        assert_int_equal(adders[i].other + adders[i].gone, 0);
        ok += adders[i].ok;
        exists += adders[i].exists;
        if (adders[i].ok)
            winner = adders[i].rule_id;
    }
    assert_int_equal(ok, 1);
    assert_int_equal(exists, THREADS - 1);
    st_autofree char *want =
        st_sprintf("Security group rule already exists. Rule id is %s.", winner);
    for (int i = 0; i < THREADS; i++)
        if (adders[i].exists)
            assert_string_equal(adders[i].msg, want);
    assert_int_equal(rules_in(f->kv, web), 3);
    /* the losers' quota claims were given back */
    int64_t reserved = -1;
    assert_int_equal(rules_used(f->kv, &reserved), 4 + 3);
    assert_int_equal(reserved, 0);
    /* "6" is "tcp", and a remote prefix of everything is none */
    st_autoptr(json_t) again = J("{\"direction\": \"ingress\", \"protocol\": \"6\", "
                                 "\"port_range_min\": 443, \"port_range_max\": 443, "
                                 "\"remote_ip_prefix\": \"0.0.0.0/0\"}");
    json_object_set_new(again, "security_group_id", json_string(web));
    json_t *none = NULL;
    assert_fails(-EEXIST, winner,
                 st_security_group_rule_create(f->kv, &alice, again, &none, &err_));
    /* deleting it frees its place */
    assert_ok(st_security_group_rule_delete(f->kv, &alice, winner, &err_));
    st_autoptr(json_t) back = NULL;
    assert_ok(st_security_group_rule_create(f->kv, &alice, again, &back, &err_));
    assert_string_equal(str(back, "protocol"), "6");
}

static void delete_group(struct st_kv *kv, const char *sg)
{
    assert_ok(st_security_group_delete(kv, &alice, sg, &err_));
}

static void test_delete_while_adding(void **state)
{
    struct fixture *f = *state;
    lift_rule_quota(f->kv);
    st_autofree char *web = make_group(f->kv, "web");
    struct adder adders[THREADS];
    run_adders(f->kv, web, true, adders, delete_group);
    for (int i = 0; i < THREADS; i++) {
        assert_int_equal(adders[i].other, 0);
        assert_int_equal(adders[i].ok + adders[i].gone, PER_THREAD);
    }
    /* whatever was added before the delete went with the group */
    assert_int_equal(count_under(f->kv, ST_NETWORK_SG_RULES_PREFIX, web), 0);
    assert_int_equal(count_under(f->kv, ST_NETWORK_SG_RULE_FPS_PREFIX, web), 0);
    assert_int_equal(count_prefix(f->kv, ST_NETWORK_SG_DELETING_PREFIX), 0);
    st_autoptr(json_t) list = NULL;
    assert_ok(st_security_group_rule_list(f->kv, &alice, NULL, &list, &err_));
    assert_int_equal(json_array_size(list), 4); /* the default group's */
    assert_int_equal(count_prefix(f->kv, ST_NETWORK_SG_RULE_IDS_PREFIX), 4);
    int64_t reserved = -1;
    assert_int_equal(rules_used(f->kv, &reserved), 4);
    assert_int_equal(reserved, 0);
}

static void test_revision_counts_rule_changes(void **state)
{
    struct fixture *f = *state;
    st_autofree char *web = make_group(f->kv, "web");
    st_autoptr(json_t) fresh = group(f->kv, web);
    assert_int_equal(revision_of(fresh), 0);
    st_autoptr(json_t) rule = NULL;
    assert_ok(add_tcp_rule(f->kv, web, 80, "", &rule, &err_));
    st_autoptr(json_t) added = group(f->kv, web);
    assert_int_equal(revision_of(added), 1);
    assert_true(strcmp(str(added, "updated_at"), str(fresh, "updated_at")) >= 0);
    assert_ok(st_security_group_rule_delete(f->kv, &alice, str(rule, "id"), &err_));
    st_autoptr(json_t) removed = group(f->kv, web);
    assert_int_equal(revision_of(removed), 2);
    st_autoptr(json_t) rename = J("{\"name\": \"www\"}");
    st_autoptr(json_t) renamed = NULL;
    assert_ok(st_security_group_update(f->kv, &alice, web, rename, &renamed, &err_));
    assert_int_equal(revision_of(renamed), 3);
    assert_int_equal(json_array_size(json_object_get(renamed, "security_group_rules")), 2);
    st_autoptr(json_t) filters = json_pack("{s:s}", "name", "www");
    st_autoptr(json_t) list = NULL;
    assert_ok(st_security_group_list(f->kv, &alice, filters, &list, &err_));
    assert_int_equal(json_array_size(list), 1);
    assert_int_equal(revision_of(json_array_get(list, 0)), 3);
}

/* ---- groups written before (rules inside the document) ---- */

#define OLD_SG "0dd00000-0000-4000-8000-000000000001"
#define OLD_R1 "0dd00000-0000-4000-8000-0000000000a1"
#define OLD_R2 "0dd00000-0000-4000-8000-0000000000a2"
#define OLD_R3 "0dd00000-0000-4000-8000-0000000000a3"

static json_t *old_rule(const char *id, const char *direction, const char *ethertype,
                        const char *protocol, int port, const char *prefix)
{
    json_t *r = json_pack(
        "{s:s, s:s, s:s, s:s, s:n, s:n, s:n, s:n, s:n, s:n, s:n, s:s, s:s, s:s, s:[], s:i, s:s, "
        "s:s}",
        "id", id, "security_group_id", OLD_SG, "direction", direction, "ethertype", ethertype,
        "protocol", "port_range_min", "port_range_max", "remote_ip_prefix", "remote_group_id",
        "remote_address_group_id", "normalized_cidr", "description", "", "project_id",
        alice.project_id, "tenant_id", alice.project_id, "tags", "revision_number", 0, "created_at",
        "2030-01-01T00:00:00Z", "updated_at", "2030-01-01T00:00:00Z");
    if (protocol) {
        json_object_set_new(r, "protocol", json_string(protocol));
        json_object_set_new(r, "port_range_min", json_integer(port));
        json_object_set_new(r, "port_range_max", json_integer(port));
    }
    if (prefix) {
        json_object_set_new(r, "remote_ip_prefix", json_string(prefix));
        json_object_set_new(r, "normalized_cidr", json_string(prefix));
    }
    return r;
}

static void put_text(struct st_kv *kv, const char *key, const char *text)
{
    assert_int_equal(st_kv_put(kv, key, text, strlen(text), ST_KV_ANY, NULL, NULL), 0);
}

static void put_json(struct st_kv *kv, const char *key, json_t *doc)
{
    st_autofree char *text = st_json_dumps(doc);
    put_text(kv, key, text);
}

/* A group as the previous layout wrote it: rules inside, and the key
 * /network/sg-rules/<rule id> → group id for each. */
static void put_old_group(struct st_kv *kv)
{
    st_autoptr(json_t) rules = json_array();
    json_array_append_new(rules, old_rule(OLD_R1, "egress", "IPv4", NULL, 0, NULL));
    json_array_append_new(rules, old_rule(OLD_R2, "egress", "IPv6", NULL, 0, NULL));
    json_array_append_new(rules, old_rule(OLD_R3, "ingress", "IPv4", "tcp", 22, "10.0.0.0/8"));
    st_autoptr(json_t) sg =
        json_pack("{s:s, s:s, s:s, s:s, s:[], s:s, s:s, s:i, s:b, s:O}", "id", OLD_SG, "name",
                  "old", "project_id", alice.project_id, "description", "old", "tags", "created_at",
                  "2030-01-01T00:00:00Z", "updated_at", "2030-01-01T00:00:00Z", "revision_number",
                  3, "stateful", true, "security_group_rules", rules);
    put_json(kv, ST_NETWORK_SGS_PREFIX OLD_SG, sg);
    const char *ids[] = {OLD_R1, OLD_R2, OLD_R3};
    for (size_t i = 0; i < 3; i++) {
        st_autofree char *key = st_sprintf("%s%s", ST_NETWORK_SG_RULE_IDS_PREFIX, ids[i]);
        put_text(kv, key, OLD_SG);
    }
}

static void assert_rule_ids(json_t *sg, const char *const *want, size_t n)
{
    json_t *rules = json_object_get(sg, "security_group_rules");
    assert_int_equal(json_array_size(rules), n);
    for (size_t i = 0; i < n; i++)
        assert_string_equal(str(json_array_get(rules, i), "id"), want[i]);
}

/* The rules the node view gives node n1 for group sg. */
static size_t view_rules(struct st_kv *kv, const char *sg)
{
    st_autoptr(json_t) view = NULL;
    assert_ok(st_network_node_view(kv, "n1", &view, &err_));
    json_t *entry = json_object_get(json_object_get(view, "security_groups"), sg);
    assert_non_null(entry);
    return json_array_size(json_object_get(entry, "rules"));
}

static void test_old_layout_group(void **state)
{
    struct fixture *f = *state;
    put_old_group(f->kv);
    const char *order[] = {OLD_R1, OLD_R2, OLD_R3};

    /* read as it is: the group, a rule by id, the rule list, the quota */
    st_autoptr(json_t) shown = group(f->kv, OLD_SG);
    assert_rule_ids(shown, order, 3);
    assert_int_equal(revision_of(shown), 3);
    st_autoptr(json_t) r3 = NULL;
    assert_ok(st_security_group_rule_get(f->kv, &alice, OLD_R3, &r3, &err_));
    assert_string_equal(str(r3, "remote_ip_prefix"), "10.0.0.0/8");
    st_autoptr(json_t) filters = json_pack("{s:s}", "security_group_id", OLD_SG);
    st_autoptr(json_t) list = NULL;
    assert_ok(st_security_group_rule_list(f->kv, &alice, filters, &list, &err_));
    assert_int_equal(json_array_size(list), 3);
    assert_int_equal(rules_used(f->kv, NULL), 4 + 3);

    /* and served to the node that hosts a port in it */
    st_autoptr(json_t) facts = J("{\"vtep\": \"192.0.2.1\"}");
    assert_ok(st_network_node_register(f->kv, "n1", facts, &err_));
    st_autoptr(json_t) net = NULL;
    st_autoptr(json_t) nreq = J("{\"name\": \"private\"}");
    assert_ok(st_network_create(f->kv, &alice, nreq, &net, &err_));
    st_autoptr(json_t) sreq = json_pack("{s:s, s:s, s:i}", "network_id", str(net, "id"), "cidr",
                                        "10.0.2.0/24", "ip_version", 4);
    st_autoptr(json_t) subnet = NULL;
    assert_ok(st_subnet_create(f->kv, &alice, sreq, &subnet, &err_));
    const char *server = "11111111-0000-4000-8000-000000000001";
    st_autoptr(json_t) server_doc = json_pack("{s:s, s:{s:s}}", "id", server, "spec", "host", "n1");
    st_autofree char *server_key = st_sprintf("%s%s", ST_COMPUTE_SERVERS_PREFIX, server);
    put_json(f->kv, server_key, server_doc);
    st_autoptr(json_t) preq =
        json_pack("{s:s, s:s, s:s, s:[s]}", "network_id", str(net, "id"), "device_id", server,
                  "device_owner", "compute:nova", "security_groups", OLD_SG);
    st_autoptr(json_t) port = NULL;
    assert_ok(st_port_create(f->kv, &alice, preq, &port, &err_));
    assert_int_equal(view_rules(f->kv, OLD_SG), 3);

    /* A move that stopped half-way (the first rule has its keys, the
     * document still carries all three): each rule still shows once, in
     * its place. */
    st_autoptr(json_t) first = old_rule(OLD_R1, "egress", "IPv4", NULL, 0, NULL);
    st_autofree char *r1_key = st_sprintf("%s%s/%s", ST_NETWORK_SG_RULES_PREFIX, OLD_SG, OLD_R1);
    put_json(f->kv, r1_key, first);
    st_autoptr(json_t) half = group(f->kv, OLD_SG);
    assert_rule_ids(half, order, 3);
    assert_int_equal(view_rules(f->kv, OLD_SG), 3);

    /* The first rule change moves them (here, a duplicate of the third,
     * told so by its id), without a change a user would see. */
    json_t *none = NULL;
    assert_fails(
        -EEXIST, "Rule id is " OLD_R3,
        add_tcp_rule(f->kv, OLD_SG, 22, "\"remote_ip_prefix\": \"10.1.2.3/8\"", &none, &err_));
    st_autoptr(json_t) moved = stored(f->kv, OLD_SG, NULL);
    assert_null(json_object_get(moved, "security_group_rules"));
    assert_int_equal(count_under(f->kv, ST_NETWORK_SG_RULES_PREFIX, OLD_SG), 3);
    st_autoptr(json_t) after_move = group(f->kv, OLD_SG);
    assert_rule_ids(after_move, order, 3);
    assert_int_equal(revision_of(after_move), 3);
    assert_string_equal(str(after_move, "name"), "old");

    /* then it is a group like any other */
    st_autoptr(json_t) added = NULL;
    assert_ok(add_tcp_rule(f->kv, OLD_SG, 443, "", &added, &err_));
    const char *order4[] = {OLD_R1, OLD_R2, OLD_R3, str(added, "id")};
    st_autoptr(json_t) four = group(f->kv, OLD_SG);
    assert_rule_ids(four, order4, 4);
    assert_int_equal(revision_of(four), 4);
    assert_ok(st_security_group_rule_delete(f->kv, &alice, OLD_R2, &err_));
    assert_fails(-ENOENT, "does not exist",
                 st_security_group_rule_get(f->kv, &alice, OLD_R2, &none, &err_));
    assert_int_equal(rules_in(f->kv, OLD_SG), 3);
    assert_int_equal(view_rules(f->kv, OLD_SG), 3);
    assert_int_equal(rules_used(f->kv, NULL), 4 + 3);
}

static void test_old_layout_rule_delete(void **state)
{
    struct fixture *f = *state;
    put_old_group(f->kv);
    /* the first change may be a delete */
    assert_ok(st_security_group_rule_delete(f->kv, &alice, OLD_R3, &err_));
    const char *left[] = {OLD_R1, OLD_R2};
    st_autoptr(json_t) shown = group(f->kv, OLD_SG);
    assert_rule_ids(shown, left, 2);
    assert_int_equal(revision_of(shown), 4);
    st_autoptr(json_t) r3_again = NULL;
    assert_ok(
        add_tcp_rule(f->kv, OLD_SG, 22, "\"remote_ip_prefix\": \"10.0.0.0/8\"", &r3_again, &err_));
    /* and deleting the group takes every key along */
    assert_ok(st_security_group_delete(f->kv, &alice, OLD_SG, &err_));
    assert_int_equal(count_under(f->kv, ST_NETWORK_SG_RULES_PREFIX, OLD_SG), 0);
    assert_int_equal(count_under(f->kv, ST_NETWORK_SG_RULE_FPS_PREFIX, OLD_SG), 0);
    assert_int_equal(count_prefix(f->kv, ST_NETWORK_SG_RULE_IDS_PREFIX), 4);
}

/* ---- a group delete stopped by a crash ---- */

static void test_delete_left_half_way(void **state)
{
    struct fixture *f = *state;
    st_autofree char *web = make_group(f->kv, "web");
    st_autofree char *db = make_group(f->kv, "db");
    st_autoptr(json_t) db_rule = NULL;
    assert_ok(add_tcp_rule(f->kv, db, 5432, "", &db_rule, &err_));
    st_autofree char *from_db = st_sprintf("\"remote_group_id\": \"%s\"", db);
    st_autoptr(json_t) web_rule = NULL;
    assert_ok(add_tcp_rule(f->kv, web, 80, from_db, &web_rule, &err_));
    assert_int_equal(rules_used(f->kv, NULL), 4 + 3 + 3);

    /* The delete's first step, then nothing (as a crash would leave it):
     * the document gone, the mark written. */
    st_autofree char *key = st_sprintf("%s%s", ST_NETWORK_SGS_PREFIX, db);
    st_autofree char *mark = st_sprintf("%s%s", ST_NETWORK_SG_DELETING_PREFIX, db);
    st_autoptr(st_kv_entry) e = NULL;
    assert_int_equal(st_kv_get(f->kv, key, &e, NULL), 0);
    const struct st_kv_op ops[] = {
        {ST_KV_OP_DELETE, key, NULL, 0},
        {ST_KV_OP_PUT, mark, e->value, e->value_len},
    };
    assert_int_equal(st_kv_txn(f->kv, NULL, 0, ops, 2, NULL, NULL), 0);

    /* Nothing of it is seen: not its rules, not web's rule from it ... */
    json_t *none = NULL;
    assert_fails(-ENOENT, "does not exist", st_security_group_get(f->kv, &alice, db, &none, &err_));
    assert_fails(-ENOENT, "does not exist",
                 st_security_group_rule_get(f->kv, &alice, str(db_rule, "id"), &none, &err_));
    assert_fails(-ENOENT, "does not exist",
                 st_security_group_rule_get(f->kv, &alice, str(web_rule, "id"), &none, &err_));
    st_autoptr(json_t) list = NULL;
    assert_ok(st_security_group_rule_list(f->kv, &alice, NULL, &list, &err_));
    assert_int_equal(json_array_size(list), 4 + 2);
    assert_int_equal(rules_in(f->kv, web), 2);
    /* ... nor counted */
    assert_int_equal(rules_used(f->kv, NULL), 4 + 2);

    /* the next group create finishes the delete */
    st_autofree char *other = make_group(f->kv, "other");
    assert_int_equal(count_prefix(f->kv, ST_NETWORK_SG_DELETING_PREFIX), 0);
    assert_int_equal(count_under(f->kv, ST_NETWORK_SG_RULES_PREFIX, db), 0);
    assert_int_equal(count_under(f->kv, ST_NETWORK_SG_RULE_FPS_PREFIX, db), 0);
    assert_int_equal(count_under(f->kv, ST_NETWORK_SG_RULES_PREFIX, web), 2);
    st_autofree char *db_rule_id =
        st_sprintf("%s%s", ST_NETWORK_SG_RULE_IDS_PREFIX, str(db_rule, "id"));
    st_autoptr(st_kv_entry) gone = NULL;
    assert_int_equal(st_kv_get(f->kv, db_rule_id, &gone, NULL), -ENOENT);
    /* default 4, web's 2, other's 2 */
    assert_int_equal(rules_used(f->kv, NULL), 4 + 2 + 2);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_distinct_rules_at_once, setup, teardown),
        cmocka_unit_test_setup_teardown(test_identical_rules_at_once, setup, teardown),
        cmocka_unit_test_setup_teardown(test_delete_while_adding, setup, teardown),
        cmocka_unit_test_setup_teardown(test_revision_counts_rule_changes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_old_layout_group, setup, teardown),
        cmocka_unit_test_setup_teardown(test_old_layout_rule_delete, setup, teardown),
        cmocka_unit_test_setup_teardown(test_delete_left_half_way, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
