/* Unit tests of server groups (compute/server_group.h) and Nova's
 * os-server-groups API over real HTTP: Nova's validation messages, the
 * stored document, members filled by server creates with the group hint
 * and dropped when their servers go, the hint checked at server create
 * (400 for an unknown or foreign group), project scoping of list and show,
 * all_projects for admins, limit and offset, delete with members; and the
 * placement controller applying the soft policies (weighers, not filters)
 * to servers created with the hint. */
#include <curl/curl.h>
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <cmocka.h>

#include "api/app.h"
#include "api/router.h"
#include "api/server.h"
#include "api/system.h"
#include "compute/flavor.h"
#include "compute/model.h"
#include "compute/node.h"
#include "compute/quota.h"
#include "compute/server.h"
#include "compute/server_group.h"
#include "ctrl/placement.h"
#include "daemon/routes.h"
#include "identity/identity.h"
#include "image/image.h"
#include "lib/cleanup.h"
#include "lib/files.h"
#include "lib/json.h"
#include "lib/times.h"
#include "store/kv.h"

#define PROJECT_A "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
#define PROJECT_B "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"
#define USER_A    "11111111111111111111111111111111"

struct fixture {
    char dir[64];
    struct st_kv *kv;
    char *flavor_id, *image_id;
};

static struct fixture fx;

static const struct st_compute_caller who_a = {PROJECT_A, USER_A, false};
static const struct st_compute_caller who_b = {PROJECT_B, USER_A, false};
static const struct st_compute_caller admin_b = {PROJECT_B, USER_A, true};

static char *id_of(json_t *doc)
{
    return st_strdup(json_string_value(json_object_get(doc, "id")));
}

static const char *sget(json_t *o, const char *k)
{
    return json_string_value(json_object_get(o, k));
}

static int setup(void **state)
{
    (void)state;
    strcpy(fx.dir, "/tmp/st-test-sgroup-XXXXXX");
    assert_non_null(mkdtemp(fx.dir));
    st_autofree char *db = st_sprintf("%s/stratos.db", fx.dir);
    assert_int_equal(st_kv_open(db, NULL, &fx.kv, NULL), 0);
    st_autoptr(json_t) freq =
        json_pack("{s:s, s:i, s:i, s:i}", "name", "m1.small", "vcpus", 1, "ram", 512, "disk", 1);
    st_autoptr(json_t) flavor = NULL;
    assert_int_equal(st_flavor_create(fx.kv, freq, &flavor, NULL), 0);
    fx.flavor_id = id_of(flavor);
    st_autofree char *path = st_sprintf("%s/busybox.img", fx.dir);
    assert_int_equal(st_write_file_atomic(path, "rootfs-bytes", 12, 0600, NULL), 0);
    st_autoptr(json_t) attrs =
        json_pack("{s:s, s:s, s:s, s:s}", "name", "busybox", "container_format", "docker",
                  "disk_format", "raw", "visibility", "public");
    st_autoptr(json_t) img = NULL;
    st_autoptr(st_err) err = NULL;
    if (st_image_import(fx.kv, fx.dir, PROJECT_A, attrs, path, &img, &err) < 0)
        fail_msg("image import: %s", st_err_msg(err));
    fx.image_id = id_of(img);
    curl_global_init(CURL_GLOBAL_DEFAULT);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    st_kv_close(fx.kv);
    free(fx.flavor_id);
    free(fx.image_id);
    curl_global_cleanup();
    st_autofree char *cmd = st_sprintf("rm -rf %s", fx.dir);
    return system(cmd) == 0 ? 0 : -1;
}

/* Every test starts with no groups and no servers. */
static int clean(void **state)
{
    (void)state;
    const char *prefixes[] = {ST_COMPUTE_SERVER_GROUPS_PREFIX, ST_COMPUTE_SERVERS_PREFIX,
                              ST_COMPUTE_USAGE_PREFIX, ST_COMPUTE_CLAIMS_PREFIX,
                              ST_COMPUTE_QUOTAS_PREFIX};
    for (size_t p = 0; p < ST_ARRAY_SIZE(prefixes); p++) {
        st_autoptr(st_kv_list) l = NULL;
        assert_int_equal(st_kv_list(fx.kv, prefixes[p], NULL, 0, &l, NULL), 0);
        for (size_t i = 0; i < l->count; i++)
            assert_int_equal(st_kv_delete(fx.kv, l->entries[i].key, ST_KV_ANY, NULL, NULL), 0);
    }
    return 0;
}

static char *group_ok(const struct st_compute_caller *who, const char *name, const char *policy)
{
    st_autoptr(json_t) req = json_pack("{s:s, s:[s]}", "name", name, "policies", policy);
    st_autoptr(json_t) doc = NULL;
    st_autoptr(st_err) err = NULL;
    if (st_server_group_create(fx.kv, who, req, &doc, &err) < 0)
        fail_msg("group create %s: %s", name, st_err_msg(err));
    return id_of(doc);
}

/* Expects a group create from the JSON text to fail with -EINVAL and msg. */
static void group_fails(const char *text, const char *msg)
{
    st_autoptr(json_t) req = json_loads(text, JSON_DECODE_ANY, NULL);
    assert_non_null(req);
    st_autoptr(json_t) doc = NULL;
    st_autoptr(st_err) err = NULL;
    int r = st_server_group_create(fx.kv, &who_a, req, &doc, &err);
    if (r != -EINVAL)
        fail_msg("%s: got %d (%s), want -EINVAL", text, r, err ? err->msg : "no error");
    if (strcmp(err->msg, msg) != 0)
        fail_msg("%s: message '%s', want '%s'", text, err->msg, msg);
    assert_null(doc);
}

/* A server create of project who with the group hint (NULL: none). */
static int server_create(const struct st_compute_caller *who, const char *name, const char *group,
                         char **ret_id, struct st_err **err)
{
    st_autoptr(json_t) req = json_pack("{s:s, s:s, s:s}", "name", name, "flavorRef", fx.flavor_id,
                                       "imageRef", fx.image_id);
    st_autoptr(json_t) hints = group ? json_pack("{s:s}", "group", group) : NULL;
    st_autoptr(json_t) doc = NULL;
    int r = st_compute_server_create(fx.kv, who, req, hints, &doc, err);
    if (r == 0 && ret_id)
        *ret_id = id_of(doc);
    return r;
}

static char *server_ok(const struct st_compute_caller *who, const char *name, const char *group)
{
    char *id = NULL;
    st_autoptr(st_err) err = NULL;
    if (server_create(who, name, group, &id, &err) < 0)
        fail_msg("server create %s: %s", name, st_err_msg(err));
    return id;
}

static json_t *group_get(const char *id)
{
    json_t *doc = NULL;
    st_autoptr(st_err) err = NULL;
    if (st_server_group_get(fx.kv, id, &doc, &err) < 0)
        fail_msg("group get %s: %s", id, st_err_msg(err));
    return doc;
}

/* The members of the group as "a,b,c". */
static char *members_of(const char *id)
{
    st_autoptr(json_t) doc = group_get(id);
    char buf[1024] = "";
    size_t i;
    json_t *m;
    json_array_foreach(json_object_get(doc, "members"), i, m)
    {
        if (i)
            strcat(buf, ",");
        strcat(buf, json_string_value(m));
    }
    return st_strdup(buf);
}

static void test_create_document(void **state)
{
    (void)state;
    st_autofree char *id = group_ok(&who_a, "web", "anti-affinity");
    st_autoptr(json_t) doc = group_get(id);
    assert_string_equal(sget(doc, "id"), id);
    assert_string_equal(sget(doc, "name"), "web");
    assert_string_equal(sget(doc, "project_id"), PROJECT_A);
    assert_string_equal(sget(doc, "user_id"), USER_A);
    assert_non_null(sget(doc, "created_at"));
    assert_int_equal(json_array_size(json_object_get(doc, "policies")), 1);
    assert_string_equal(json_string_value(json_array_get(json_object_get(doc, "policies"), 0)),
                        "anti-affinity");
    assert_int_equal(json_array_size(json_object_get(doc, "members")), 0);
    /* the document placement reads is where model.h says */
    st_autofree char *key = st_sprintf("%s%s", ST_COMPUTE_SERVER_GROUPS_PREFIX, id);
    st_autoptr(st_kv_entry) e = NULL;
    assert_int_equal(st_kv_get(fx.kv, key, &e, NULL), 0);
    /* every policy of the state model is accepted; names need not be unique */
    free(group_ok(&who_a, "web", "affinity"));
    free(group_ok(&who_a, "w3", "soft-affinity"));
    free(group_ok(&who_a, "w4", "soft-anti-affinity"));
}

static void test_create_validation(void **state)
{
    (void)state;
    group_fails("{\"name\": \"g\", \"policies\": [\"spread\"]}",
                "Invalid input for field/attribute policies. Value: [\"spread\"]. Must be a list "
                "of exactly one of 'anti-affinity', 'affinity', 'soft-anti-affinity', "
                "'soft-affinity'");
    group_fails("{\"name\": \"g\", \"policies\": [\"affinity\", \"anti-affinity\"]}",
                "Invalid input for field/attribute policies. Value: [\"affinity\",\"anti-"
                "affinity\"]. Must be a list of exactly one of 'anti-affinity', 'affinity', "
                "'soft-anti-affinity', 'soft-affinity'");
    group_fails("{\"name\": \"g\", \"policies\": []}",
                "Invalid input for field/attribute policies. Value: []. Must be a list of "
                "exactly one of 'anti-affinity', 'affinity', 'soft-anti-affinity', "
                "'soft-affinity'");
    group_fails("{\"name\": \"g\", \"policies\": \"affinity\"}",
                "Invalid input for field/attribute policies. Value: \"affinity\". Must be a list "
                "of exactly one of 'anti-affinity', 'affinity', 'soft-anti-affinity', "
                "'soft-affinity'");
    group_fails("{\"name\": \"g\"}",
                "Invalid input for field/attribute server_group. 'policies' is a required "
                "property");
    group_fails("{\"policies\": [\"affinity\"]}",
                "Invalid input for field/attribute server_group. 'name' is a required property");
    group_fails("{\"name\": \"\", \"policies\": [\"affinity\"]}",
                "Invalid input for field/attribute name. Value must not be empty.");
    group_fails("{\"name\": \" g\", \"policies\": [\"affinity\"]}",
                "Invalid input for field/attribute name. Value must not have leading or trailing "
                "whitespace.");
    group_fails("{\"name\": 7, \"policies\": [\"affinity\"]}",
                "Invalid input for field/attribute name. Value must be a string.");
    group_fails("{\"name\": \"g\", \"policies\": [\"affinity\"], \"policy\": \"affinity\"}",
                "Invalid input for field/attribute server_group. Additional properties are not "
                "allowed ('policy' was unexpected)");
    group_fails("[]", "Invalid input for field/attribute server_group. Value must be an object.");
    char name[300];
    memset(name, 'n', 256);
    name[256] = '\0';
    st_autofree char *long_name =
        st_sprintf("{\"name\": \"%s\", \"policies\": [\"affinity\"]}", name);
    group_fails(long_name, "Invalid input for field/attribute name. Value is longer than 255 "
                           "characters.");
    name[255] = '\0';
    st_autoptr(json_t) ok = json_pack("{s:s, s:[s]}", "name", name, "policies", "affinity");
    st_autoptr(json_t) doc = NULL;
    assert_int_equal(st_server_group_create(fx.kv, &who_a, ok, &doc, NULL), 0);
    /* nothing was written by the refusals */
    st_autoptr(json_t) all = NULL;
    assert_int_equal(st_server_group_list(fx.kv, NULL, &all, NULL), 0);
    assert_int_equal(json_array_size(all), 1);
}

static void test_not_found(void **state)
{
    (void)state;
    const char *ids[] = {"6a1b9d7e-0000-4000-8000-000000000000", "not-a-uuid", "../x", ""};
    for (size_t i = 0; i < ST_ARRAY_SIZE(ids); i++) {
        st_autoptr(json_t) doc = NULL;
        st_autoptr(st_err) err = NULL;
        assert_int_equal(st_server_group_get(fx.kv, ids[i], &doc, &err), -ENOENT);
        st_autofree char *want = st_sprintf("Server group %s could not be found.", ids[i]);
        assert_string_equal(err->msg, want);
        st_autoptr(st_err) derr = NULL;
        assert_int_equal(st_server_group_delete(fx.kv, ids[i], &derr), -ENOENT);
        assert_string_equal(derr->msg, want);
    }
}

/* Members are the servers created with the hint, while they exist. */
static void test_members(void **state)
{
    (void)state;
    st_autofree char *g = group_ok(&who_a, "spread", "anti-affinity");
    st_autofree char *other = group_ok(&who_a, "other", "affinity");
    st_autofree char *s1 = server_ok(&who_a, "s1", g);
    st_autofree char *s2 = server_ok(&who_a, "s2", g);
    st_autofree char *s3 = server_ok(&who_a, "s3", other);
    st_autofree char *loose = server_ok(&who_a, "loose", NULL);
    st_autofree char *want = st_sprintf("%s,%s", s1, s2);
    st_autofree char *got = members_of(g);
    assert_string_equal(got, want);
    st_autofree char *got_other = members_of(other);
    assert_string_equal(got_other, s3);
    /* the spec names the group: what placement reads */
    json_t *sdoc = NULL;
    assert_int_equal(st_compute_server_get(fx.kv, s1, &sdoc, NULL, NULL), 0);
    assert_string_equal(sget(json_object_get(sdoc, "spec"), "server_group"), g);
    json_decref(sdoc);

    /* a deleted server (never placed: removed at once) is no member */
    assert_int_equal(st_compute_server_delete(fx.kv, s1, NULL), 0);
    st_autofree char *after = members_of(g);
    assert_string_equal(after, s2);
    /* and the next addition drops it from the stored list too */
    st_autofree char *s4 = server_ok(&who_a, "s4", g);
    st_autofree char *key = st_sprintf("%s%s", ST_COMPUTE_SERVER_GROUPS_PREFIX, g);
    st_autoptr(st_kv_entry) e = NULL;
    assert_int_equal(st_kv_get(fx.kv, key, &e, NULL), 0);
    st_autoptr(json_t) stored = json_loads(e->value, 0, NULL);
    assert_int_equal(json_array_size(json_object_get(stored, "members")), 2);
    assert_null(strstr(e->value, s1));
    /* adding twice is one member */
    assert_int_equal(st_server_group_add_member(fx.kv, g, s4, NULL), 0);
    st_autofree char *want2 = st_sprintf("%s,%s", s2, s4);
    st_autofree char *got2 = members_of(g);
    assert_string_equal(got2, want2);

    /* a group with members can be deleted, as in Nova; its servers stay */
    assert_int_equal(st_server_group_delete(fx.kv, g, NULL), 0);
    json_t *s2doc = NULL;
    assert_int_equal(st_compute_server_get(fx.kv, s2, &s2doc, NULL, NULL), 0);
    json_decref(s2doc);
    st_autoptr(st_err) aerr = NULL;
    assert_int_equal(st_server_group_add_member(fx.kv, g, s2, &aerr), -ENOENT);
}

/* The hint names a group of the caller's project: anything else is 400. */
static void test_hint_checked(void **state)
{
    (void)state;
    st_autofree char *ga = group_ok(&who_a, "a", "anti-affinity");
    const char *missing = "6a1b9d7e-0000-4000-8000-000000000001";
    struct {
        const struct st_compute_caller *who;
        const char *group;
    } bad[] = {{&who_a, missing}, {&who_b, ga}};
    for (size_t i = 0; i < ST_ARRAY_SIZE(bad); i++) {
        st_autoptr(st_err) err = NULL;
        assert_int_equal(server_create(bad[i].who, "x", bad[i].group, NULL, &err), -EINVAL);
        st_autofree char *want = st_sprintf("Instance group %s could not be found.", bad[i].group);
        assert_string_equal(err->msg, want);
    }
    /* nothing was made: no server, no quota used */
    struct st_compute_server_filter f = {0};
    st_autoptr(json_t) servers = NULL;
    assert_int_equal(st_compute_server_list(fx.kv, &f, &servers, NULL), 0);
    assert_int_equal(json_array_size(servers), 0);
    struct st_compute_quota_usage usage;
    assert_int_equal(st_compute_quota_usage(fx.kv, PROJECT_B, &usage, NULL), 0);
    assert_int_equal(usage.instances, 0);
    assert_int_equal(st_compute_quota_usage(fx.kv, PROJECT_A, &usage, NULL), 0);
    assert_int_equal(usage.instances, 0);
    /* a hint that is not a UUID is refused before the lookup */
    st_autoptr(st_err) uerr = NULL;
    assert_int_equal(server_create(&who_a, "x", "spread", NULL, &uerr), -EINVAL);
    assert_string_equal(uerr->msg,
                        "Invalid input for field/attribute group. Value must be a server group "
                        "UUID.");
    /* an admin may place a server in another project's group */
    st_autofree char *s = server_ok(&admin_b, "adm", ga);
    st_autofree char *m = members_of(ga);
    assert_string_equal(m, s);
    /* a deleted group is no longer a valid hint */
    assert_int_equal(st_server_group_delete(fx.kv, ga, NULL), 0);
    st_autoptr(st_err) derr = NULL;
    assert_int_equal(server_create(&who_a, "late", ga, NULL, &derr), -EINVAL);
}

static void set_quota(const char *project, const char *key, int value)
{
    st_autoptr(json_t) changes = json_pack("{s:i}", key, value);
    struct st_compute_quota q;
    assert_int_equal(st_compute_quota_set(fx.kv, project, changes, true, &q, NULL), 0);
}

/* Nova's server_groups and server_group_members quotas (403 at the API). */
static void test_quotas(void **state)
{
    (void)state;
    set_quota(PROJECT_A, "server_groups", 2);
    st_autofree char *g1 = group_ok(&who_a, "g1", "anti-affinity");
    st_autofree char *g2 = group_ok(&who_a, "g2", "affinity");
    st_autoptr(json_t) req = json_pack("{s:s, s:[s]}", "name", "g3", "policies", "affinity");
    st_autoptr(json_t) doc = NULL;
    st_autoptr(st_err) err = NULL;
    assert_int_equal(st_server_group_create(fx.kv, &who_a, req, &doc, &err), -EDQUOT);
    assert_string_equal(err->msg, "Quota exceeded, too many server groups.");
    size_t n = 0;
    assert_int_equal(st_server_group_count(fx.kv, PROJECT_A, &n, NULL), 0);
    assert_int_equal(n, 2);
    free(group_ok(&who_b, "b", "affinity")); /* another project's count */
    assert_int_equal(st_server_group_delete(fx.kv, g2, NULL), 0);
    free(group_ok(&who_a, "g3", "affinity")); /* room again */

    set_quota(PROJECT_A, "server_group_members", 2);
    st_autofree char *s1 = server_ok(&who_a, "s1", g1);
    st_autofree char *s2 = server_ok(&who_a, "s2", g1);
    st_autoptr(st_err) merr = NULL;
    assert_int_equal(server_create(&who_a, "s3", g1, NULL, &merr), -EDQUOT);
    assert_string_equal(merr->msg, "Quota exceeded, too many servers in group");
    /* a member that goes makes room */
    assert_int_equal(st_compute_server_delete(fx.kv, s1, NULL), 0);
    st_autofree char *s3 = server_ok(&who_a, "s3", g1);
    st_autofree char *want = st_sprintf("%s,%s", s2, s3);
    st_autofree char *got = members_of(g1);
    assert_string_equal(got, want);
    set_quota(PROJECT_A, "server_group_members", -1); /* unlimited */
    st_autofree char *s4 = server_ok(&who_a, "s4", g1);
}

static void test_list(void **state)
{
    (void)state;
    st_autofree char *a1 = group_ok(&who_a, "a1", "affinity");
    st_autofree char *b1 = group_ok(&who_b, "b1", "affinity");
    st_autofree char *a2 = group_ok(&who_a, "a2", "anti-affinity");
    st_autofree char *a3 = group_ok(&who_a, "a3", "soft-affinity");
    st_autoptr(json_t) la = NULL;
    assert_int_equal(st_server_group_list(fx.kv, PROJECT_A, &la, NULL), 0);
    assert_int_equal(json_array_size(la), 3);
    /* creation order, not key order */
    assert_string_equal(sget(json_array_get(la, 0), "id"), a1);
    assert_string_equal(sget(json_array_get(la, 1), "id"), a2);
    assert_string_equal(sget(json_array_get(la, 2), "id"), a3);
    st_autoptr(json_t) lb = NULL;
    assert_int_equal(st_server_group_list(fx.kv, PROJECT_B, &lb, NULL), 0);
    assert_int_equal(json_array_size(lb), 1);
    assert_string_equal(sget(json_array_get(lb, 0), "id"), b1);
    st_autoptr(json_t) all = NULL;
    assert_int_equal(st_server_group_list(fx.kv, NULL, &all, NULL), 0);
    assert_int_equal(json_array_size(all), 4);
    assert_string_equal(sget(json_array_get(all, 1), "id"), b1);
    st_autoptr(json_t) none = NULL;
    assert_int_equal(st_server_group_list(fx.kv, "cccccccccccccccccccccccccccccccc", &none, NULL),
                     0);
    assert_int_equal(json_array_size(none), 0);
}

/* ---- over HTTP ---- */

struct http_result {
    long status;
    char *body;
    size_t len;
};

static size_t collect(char *p, size_t size, size_t n, void *userdata)
{
    struct http_result *r = userdata;
    r->body = st_xrealloc(r->body, r->len + size * n + 1);
    memcpy(r->body + r->len, p, size * n);
    r->len += size * n;
    r->body[r->len] = '\0';
    return size * n;
}

static struct http_result http(const char *base, const char *method, const char *path,
                               const char *token, const char *body)
{
    struct http_result res = {0};
    CURL *c = curl_easy_init();
    st_autofree char *url = st_sprintf("%s%s", base, path);
    st_autofree char *auth = st_sprintf("X-Auth-Token: %s", token);
    struct curl_slist *h = curl_slist_append(NULL, auth);
    h = curl_slist_append(h, "Content-Type: application/json");
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
    if (body)
        curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, collect);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &res);
    curl_easy_setopt(c, CURLOPT_TIMEOUT, 20L);
    if (curl_easy_perform(c) == CURLE_OK)
        curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &res.status);
    curl_slist_free_all(h);
    curl_easy_cleanup(c);
    if (!res.body)
        res.body = st_strdup("");
    return res;
}

/* A request whose answer must have the given status; returns the body
 * parsed (NULL for an empty one). */
static json_t *call(const char *base, const char *method, const char *path, const char *token,
                    const char *body, long want)
{
    struct http_result r = http(base, method, path, token, body);
    if (r.status != want)
        fail_msg("%s %s: got %ld (%s), want %ld", method, path, r.status, r.body, want);
    json_t *j = r.len ? json_loads(r.body, 0, NULL) : NULL;
    free(r.body);
    return j;
}

static char *login(struct st_identity *identity, const char *user, const char *pw,
                   const char *project)
{
    struct st_auth_request ar = {
        .user_name = user, .password = pw, .project_name = project, .peer = "test"};
    char *secret = NULL;
    st_autoptr(st_token) t = NULL;
    st_autoptr(st_err) err = NULL;
    if (st_identity_authenticate(identity, &ar, &secret, &t, &err) < 0)
        fail_msg("login %s: %s", user, st_err_msg(err));
    return secret;
}

/* A project with one member user; returns the member's token. */
static char *member_of(struct st_identity *identity, const char *project, const char *user)
{
    st_autoptr(json_t) preq = json_pack("{s:s}", "name", project);
    st_autoptr(json_t) proj = NULL;
    assert_int_equal(st_identity_project_create(identity, preq, &proj, NULL), 0);
    st_autoptr(json_t) ureq = json_pack("{s:s, s:s}", "name", user, "password", "pw");
    st_autoptr(json_t) u = NULL;
    assert_int_equal(st_identity_user_create(identity, ureq, &u, NULL), 0);
    st_autoptr(json_t) role = NULL;
    assert_int_equal(st_identity_role_find(identity, "member", &role, NULL), 0);
    assert_int_equal(
        st_identity_grant_add(identity, sget(proj, "id"), sget(u, "id"), sget(role, "id"), NULL),
        0);
    return login(identity, user, "pw", project);
}

#define SG "/compute/v2.1/os-server-groups"

/* What openstacksdk and the openstack CLI see. */
static void test_nova_api(void **state)
{
    (void)state;
    struct st_identity_config icfg = {.cost = {1, 64, 1}};
    struct st_identity *identity = NULL;
    assert_int_equal(st_identity_new(fx.kv, &icfg, &identity, NULL), 0);
    struct st_api_app app = {
        .kv = fx.kv, .identity = identity, .data_dir = fx.dir, .public_url = "http://127.0.0.1"};
    struct st_router *router = st_router_new(&app);
    struct st_api_system sys = {.role = "all"};
    assert_int_equal(st_daemon_routes_register(router, &app, &sys, NULL), 0);
    struct st_api_server_config scfg = {.listen = "127.0.0.1:0", .threads = 2};
    struct st_api_server *srv = NULL;
    assert_int_equal(st_api_server_start(&scfg, router, &srv, NULL), 0);
    char base[64];
    snprintf(base, sizeof(base), "http://127.0.0.1:%u", st_api_server_port(srv));
    st_autofree char *admin_pw = NULL;
    assert_int_equal(st_identity_bootstrap(identity, &admin_pw, NULL), 0);
    st_autofree char *tok_m = member_of(identity, "proj-m", "mem");
    st_autofree char *tok_o = member_of(identity, "proj-o", "other");
    st_autofree char *tok_a = login(identity, "admin", admin_pw, "admin");

    st_autoptr(json_t) cr =
        call(base, "POST", SG, tok_m,
             "{\"server_group\": {\"name\": \"g1\", \"policies\": [\"anti-affinity\"]}}", 200);
    json_t *g = json_object_get(cr, "server_group");
    const char *gid = sget(g, "id");
    assert_non_null(gid);
    assert_string_equal(sget(g, "name"), "g1");
    assert_string_equal(json_string_value(json_array_get(json_object_get(g, "policies"), 0)),
                        "anti-affinity");
    assert_true(json_is_array(json_object_get(g, "members")));
    assert_int_equal(json_array_size(json_object_get(g, "members")), 0);
    assert_true(json_is_object(json_object_get(g, "metadata")));
    assert_int_equal(json_object_size(json_object_get(g, "metadata")), 0);
    assert_int_equal(strlen(sget(g, "project_id")), 32);
    assert_int_equal(strlen(sget(g, "user_id")), 32);
    assert_null(json_object_get(g, "created_at")); /* not Nova's */

    /* Nova's 400 body */
    struct http_result bad =
        http(base, "POST", SG, tok_m,
             "{\"server_group\": {\"name\": \"g\", \"policies\": [\"spread\"]}}");
    assert_int_equal(bad.status, 400);
    assert_string_equal(bad.body,
                        "{\"badRequest\":{\"code\":400,\"message\":\"Invalid input for "
                        "field/attribute policies. Value: [\\\"spread\\\"]. Must be a list of "
                        "exactly one of 'anti-affinity', 'affinity', 'soft-anti-affinity', "
                        "'soft-affinity'\"}}");
    free(bad.body);
    json_decref(call(base, "POST", SG, tok_m, "{\"group\": {}}", 400));
    json_decref(call(base, "POST", SG, tok_m, "not json", 400));

    /* servers created with the hint are members */
    st_autofree char *sbody =
        st_sprintf("{\"server\": {\"name\": \"web\", \"flavorRef\": \"%s\", \"imageRef\": \"%s\"}, "
                   "\"os:scheduler_hints\": {\"group\": \"%s\"}}",
                   fx.flavor_id, fx.image_id, gid);
    st_autoptr(json_t) s1 = call(base, "POST", "/compute/v2.1/servers", tok_m, sbody, 202);
    st_autoptr(json_t) s2 = call(base, "POST", "/compute/v2.1/servers", tok_m, sbody, 202);
    const char *s1id = sget(json_object_get(s1, "server"), "id");
    const char *s2id = sget(json_object_get(s2, "server"), "id");
    st_autofree char *gpath = st_sprintf(SG "/%s", gid);
    st_autoptr(json_t) shown = call(base, "GET", gpath, tok_m, NULL, 200);
    json_t *members = json_object_get(json_object_get(shown, "server_group"), "members");
    assert_int_equal(json_array_size(members), 2);
    assert_string_equal(json_string_value(json_array_get(members, 0)), s1id);
    assert_string_equal(json_string_value(json_array_get(members, 1)), s2id);
    /* another project's member may not use the group: 400, as Nova */
    struct http_result foreign = http(base, "POST", "/compute/v2.1/servers", tok_o, sbody);
    assert_int_equal(foreign.status, 400);
    st_autofree char *want_foreign = st_sprintf(
        "{\"badRequest\":{\"code\":400,\"message\":\"Instance group %s could not be found.\"}}",
        gid);
    assert_string_equal(foreign.body, want_foreign);
    free(foreign.body);

    /* project scoping: another project neither lists nor finds it */
    st_autoptr(json_t) mine = call(base, "GET", SG, tok_m, NULL, 200);
    assert_int_equal(json_array_size(json_object_get(mine, "server_groups")), 1);
    st_autoptr(json_t) theirs = call(base, "GET", SG, tok_o, NULL, 200);
    assert_int_equal(json_array_size(json_object_get(theirs, "server_groups")), 0);
    /* all_projects is for admins; others get their own */
    st_autoptr(json_t) theirs_all = call(base, "GET", SG "?all_projects=True", tok_o, NULL, 200);
    assert_int_equal(json_array_size(json_object_get(theirs_all, "server_groups")), 0);
    struct http_result other_show = http(base, "GET", gpath, tok_o, NULL);
    assert_int_equal(other_show.status, 404);
    st_autofree char *want_404 = st_sprintf(
        "{\"itemNotFound\":{\"code\":404,\"message\":\"Server group %s could not be found.\"}}",
        gid);
    assert_string_equal(other_show.body, want_404);
    free(other_show.body);
    json_decref(call(base, "DELETE", gpath, tok_o, NULL, 404));
    st_autoptr(json_t) admin_own = call(base, "GET", SG, tok_a, NULL, 200);
    assert_int_equal(json_array_size(json_object_get(admin_own, "server_groups")), 0);
    st_autoptr(json_t) admin_all = call(base, "GET", SG "?all_projects=True", tok_a, NULL, 200);
    assert_int_equal(json_array_size(json_object_get(admin_all, "server_groups")), 1);
    json_decref(call(base, "GET", gpath, tok_a, NULL, 200)); /* admins reach every project */

    /* limit and offset, as Nova's common.limited */
    json_decref(call(base, "POST", SG, tok_m,
                     "{\"server_group\": {\"name\": \"g2\", \"policies\": [\"affinity\"]}}", 200));
    json_decref(call(base, "POST", SG, tok_m,
                     "{\"server_group\": {\"name\": \"g3\", \"policies\": [\"affinity\"]}}", 200));
    st_autoptr(json_t) page = call(base, "GET", SG "?limit=1&offset=1", tok_m, NULL, 200);
    json_t *rows = json_object_get(page, "server_groups");
    assert_int_equal(json_array_size(rows), 1);
    assert_string_equal(sget(json_array_get(rows, 0), "name"), "g2");
    st_autoptr(json_t) rest = call(base, "GET", SG "?offset=1", tok_m, NULL, 200);
    assert_int_equal(json_array_size(json_object_get(rest, "server_groups")), 2);
    json_decref(call(base, "GET", SG "?limit=-1", tok_m, NULL, 400));
    json_decref(call(base, "GET", SG "?offset=x", tok_m, NULL, 400));

    /* delete with members: 204, then gone */
    st_autoptr(json_t) del = call(base, "DELETE", gpath, tok_m, NULL, 204);
    assert_null(del);
    json_decref(call(base, "GET", gpath, tok_m, NULL, 404));
    json_decref(call(base, "DELETE", gpath, tok_m, NULL, 404));

    st_api_server_stop(srv, 1000);
    st_router_free(router);
    st_identity_free(identity);
}

/* ---- soft policies, applied by the placement controller ---- */

/* Registers a node as an agent would: 4 vCPUs, 2 GiB (four m1.small), the
 * container driver (what the busybox image needs); nothing runs on it. */
static void node_ok(const char *name)
{
    st_autoptr(json_t) body =
        json_pack("{s:[s], s:{s:i, s:i, s:i, s:i}, s:b}", "drivers", "container", "capacity",
                  "vcpus", 4, "cpu_mhz", 2500, "memory_mb", 2048, "disk_gb", 100, "simulated", 1);
    st_autoptr(st_err) err = NULL;
    if (st_compute_node_put(fx.kv, name, body, NULL, &err) < 0)
        fail_msg("node %s: %s", name, st_err_msg(err));
}

/* The server's host once placed (NULL: still none after 10 s); fails on
 * any state but BUILD, so a soft policy that faulted a server shows. */
static char *host_of(const char *id)
{
    for (int i = 0; i < 1000; i++) {
        json_t *doc = NULL;
        assert_int_equal(st_compute_server_get(fx.kv, id, &doc, NULL, NULL), 0);
        json_t *status = json_object_get(doc, "status");
        const char *state = sget(status, "state");
        const char *host = sget(json_object_get(doc, "spec"), "host");
        char *out = host ? st_strdup(host) : NULL;
        if (state && strcmp(state, "BUILD") != 0) {
            st_autofree char *text = st_json_dumps(doc);
            json_decref(doc);
            fail_msg("server %s left BUILD without a host: %s", id, text);
        }
        json_decref(doc);
        if (out)
            return out;
        struct timespec ts = {0, 10 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    fail_msg("server %s has no host after 10 s", id);
    return NULL;
}

/* Creates n members of a new group with the policy, one at a time (each
 * placed before the next is created), and writes their hosts. */
static void place_members(const char *policy, size_t n, char **hosts)
{
    st_autofree char *g = group_ok(&who_a, policy, policy);
    for (size_t i = 0; i < n; i++) {
        char name[32];
        snprintf(name, sizeof(name), "%s-%zu", policy, i);
        st_autofree char *id = server_ok(&who_a, name, g);
        hosts[i] = host_of(id);
    }
}

static void drop_prefix(const char *prefix)
{
    st_autoptr(st_kv_list) l = NULL;
    assert_int_equal(st_kv_list(fx.kv, prefix, NULL, 0, &l, NULL), 0);
    for (size_t i = 0; i < l->count; i++)
        assert_int_equal(st_kv_delete(fx.kv, l->entries[i].key, ST_KV_ANY, NULL, NULL), 0);
}

static void test_soft_policies_placed(void **state)
{
    (void)state;
    node_ok("node-a");
    node_ok("node-b");
    node_ok("node-c");
    struct st_ctrl_placement *p = NULL;
    st_autoptr(st_err) err = NULL;
    /* pack: soft-anti-affinity must part what the weigher would stack */
    struct st_ctrl_placement_config cfg = {.weigher = ST_SCHED_PACK};
    if (st_ctrl_placement_start(fx.kv, &cfg, &p, &err) < 0)
        fail_msg("placement: %s", st_err_msg(err));

    char *anti[3];
    place_members("soft-anti-affinity", 3, anti);
    assert_string_not_equal(anti[0], anti[1]);
    assert_string_not_equal(anti[0], anti[2]);
    assert_string_not_equal(anti[1], anti[2]);
    for (size_t i = 0; i < 3; i++)
        free(anti[i]);
    st_ctrl_placement_stop(p);
    drop_prefix(ST_COMPUTE_SERVERS_PREFIX); /* empty nodes again */
    drop_prefix(ST_COMPUTE_ALLOCATIONS_PREFIX);

    /* spread: soft-affinity must gather what the weigher would part; the
     * fifth member finds the members' node full (4 × 512 MiB) and lands
     * on another, without a fault */
    cfg.weigher = ST_SCHED_SPREAD;
    if (st_ctrl_placement_start(fx.kv, &cfg, &p, &err) < 0)
        fail_msg("placement: %s", st_err_msg(err));
    char *aff[5];
    place_members("soft-affinity", 5, aff);
    for (size_t i = 1; i < 4; i++)
        assert_string_equal(aff[i], aff[0]);
    assert_string_not_equal(aff[4], aff[0]);
    for (size_t i = 0; i < 5; i++)
        free(aff[i]);
    st_ctrl_placement_stop(p);

    drop_prefix(ST_COMPUTE_NODES_PREFIX);
    drop_prefix(ST_COMPUTE_ALLOCATIONS_PREFIX);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(test_create_document, clean),
        cmocka_unit_test_setup(test_create_validation, clean),
        cmocka_unit_test_setup(test_not_found, clean),
        cmocka_unit_test_setup(test_members, clean),
        cmocka_unit_test_setup(test_hint_checked, clean),
        cmocka_unit_test_setup(test_quotas, clean),
        cmocka_unit_test_setup(test_list, clean),
        cmocka_unit_test_setup(test_nova_api, clean),
        cmocka_unit_test_setup(test_soft_policies_placed, clean),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
