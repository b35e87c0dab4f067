/* Unit tests of src/identity: the policy engine, password hashing, and the
 * identity service over a fresh SQLite store per test (bootstrap, records,
 * grants, authentication, rate limiting, tokens and their revocation), two
 * instances on one store as two controllers (a revocation or a role change
 * through one reaches the other), and, on a real etcd killed under it, what
 * a login and a validation answer while the store is down. Passwords use a
 * cheap argon2 cost except in the one test of the default cost; token
 * expiry moves the service's clock instead of sleeping. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>
#include <cmocka.h>

#include "identity/identity-priv.h"
#include "identity/identity.h"
#include "identity/ratelimit.h"
#include "lib/cleanup.h"
#include "lib/json.h"
#include "lib/times.h"
#include "store/kv.h"

#define CHEAP_COST  ((struct st_password_cost){1, 64, 1})
#define AUTH_FAILED "The request you have made requires authentication."

struct fixture {
    char dir[64];
    char *url;
    struct st_kv *kv;
    struct st_identity *id;
    char *admin_password;
    int64_t clock_offset_ms;
    pid_t etcd; /* > 0 while the etcd fixture's etcd runs */
    int client_port, peer_port;
};

static int64_t test_clock(void *data)
{
    struct fixture *f = data;
    return st_time_now_ms() + f->clock_offset_ms;
}

static struct st_identity *open_identity(struct fixture *f, const struct st_identity_config *cfg)
{
    struct st_identity_config c = cfg ? *cfg : (struct st_identity_config){.cost = CHEAP_COST};
    struct st_identity *id = NULL;
    st_autoptr(st_err) err = NULL;
    int r = st_identity_new(f->kv, &c, &id, &err);
    if (r < 0)
        fail_msg("st_identity_new: %s", st_err_msg(err));
    st_identity_set_clock(id, test_clock, f);
    return id;
}

static int setup(void **state)
{
    struct fixture *f = st_new0(struct fixture, 1);
    strcpy(f->dir, "/tmp/st-identity-XXXXXX");
    if (!mkdtemp(f->dir))
        return -1;
    f->url = st_sprintf("sqlite:%s/store.db", f->dir);
    st_autoptr(st_err) err = NULL;
    if (st_kv_open(f->url, NULL, &f->kv, &err) < 0) {
        fprintf(stderr, "st_kv_open: %s\n", st_err_msg(err));
        return -1;
    }
    f->id = open_identity(f, NULL);
    if (st_identity_bootstrap(f->id, &f->admin_password, &err) < 0) {
        fprintf(stderr, "bootstrap: %s\n", st_err_msg(err));
        return -1;
    }
    *state = f;
    return 0;
}

static int rm_one(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb;
    (void)flag;
    (void)ftw;
    return remove(path);
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    st_identity_free(f->id);
    st_kv_close(f->kv);
    nftw(f->dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
    free(f->url);
    free(f->admin_password);
    free(f);
    return 0;
}

/* ---- helpers ---- */

/* Asserts that call returns code, showing the error message otherwise. */
#define assert_code(call, code)                                                                    \
    do {                                                                                           \
        int r_ = (call);                                                                           \
        if (r_ != (code))                                                                          \
            fail_msg("%s = %d, expected %d: %s", #call, r_, (code), err ? err->msg : "-");         \
    } while (0)
#define assert_ok(call) assert_code(call, 0)

static void must(int r, struct st_err *err)
{
    if (r < 0)
        fail_msg("unexpected error %d: %s", r, st_err_msg(err));
}

static json_t *create_project(struct st_identity *id, const char *name)
{
    st_autoptr(json_t) req = json_pack("{s:s}", "name", name);
    json_t *p = NULL;
    st_autoptr(st_err) err = NULL;
    must(st_identity_project_create(id, req, &p, &err), err);
    return p;
}

static json_t *create_user(struct st_identity *id, const char *name, const char *password)
{
    st_autoptr(json_t) req = json_pack("{s:s, s:s}", "name", name, "password", password);
    json_t *u = NULL;
    st_autoptr(st_err) err = NULL;
    must(st_identity_user_create(id, req, &u, &err), err);
    return u;
}

static json_t *find_role(struct st_identity *id, const char *name)
{
    json_t *r = NULL;
    st_autoptr(st_err) err = NULL;
    must(st_identity_role_find(id, name, &r, &err), err);
    return r;
}

static const char *sid(json_t *rec)
{
    return json_string_value(json_object_get(rec, "id"));
}

static void grant(struct st_identity *id, json_t *project, json_t *user, const char *role)
{
    st_autoptr(json_t) r = find_role(id, role);
    st_autoptr(st_err) err = NULL;
    must(st_identity_grant_add(id, sid(project), sid(user), sid(r), &err), err);
}

/* Logs in by user name in the Default domain, scoped to project_name
 * (NULL: unscoped). */
static int login(struct st_identity *id, const char *user, const char *password,
                 const char *project_name, const char *peer, char **ret_secret,
                 struct st_token **ret_token, struct st_err **err)
{
    struct st_auth_request req = {
        .user_name = user,
        .user_domain_name = "Default",
        .password = password,
        .project_name = project_name,
        .project_domain_name = project_name ? "Default" : NULL,
        .peer = peer,
    };
    char *secret = NULL;
    struct st_token *t = NULL;
    int r = st_identity_authenticate(id, &req, &secret, &t, err);
    if (ret_secret)
        *ret_secret = secret;
    else
        free(secret);
    if (ret_token)
        *ret_token = t;
    else
        st_token_free(t);
    return r;
}

static void assert_login_fails(struct st_identity *id, const char *user, const char *password,
                               const char *project)
{
    st_autoptr(st_err) err = NULL;
    assert_code(login(id, user, password, project, NULL, NULL, NULL, &err), -EACCES);
    assert_string_equal(err->msg, AUTH_FAILED);
}

static int validate(struct st_identity *id, const char *secret)
{
    st_autoptr(st_token) t = NULL;
    st_autoptr(st_err) err = NULL;
    int r = st_identity_validate(id, secret, &t, &err);
    if (r == -EACCES)
        assert_string_equal(err->msg, AUTH_FAILED);
    return r;
}

/* ---- policy ---- */

static int check(struct st_policy *p, const char *role, const char *project, const char *action,
                 const char *target)
{
    const char *roles[] = {role};
    struct st_policy_subject who = {"u1", project, roles, role ? 1 : 0};
    st_autoptr(st_err) err = NULL;
    int r = st_policy_check(p, &who, action, target, &err);
    assert_true(r == 0 || err != NULL);
    return r;
}

static void test_policy_builtin_roles(void **state)
{
    (void)state;
    st_autoptr(st_policy) p = st_policy_new();
    /* reader: reads in its project, no writes */
    assert_int_equal(check(p, "reader", "p1", "compute:server:list", NULL), 0);
    assert_int_equal(check(p, "reader", "p1", "compute:server:show", "p1"), 0);
    assert_int_equal(check(p, "reader", "p1", "compute:server:create", NULL), -EPERM);
    assert_int_equal(check(p, "reader", "p1", "volume:volume:delete", "p1"), -EPERM);
    assert_int_equal(check(p, "reader", "p1", "compute:server:show", "p2"), -ENOENT);
    /* member: writes in its project, nothing in others, no admin-only */
    assert_int_equal(check(p, "member", "p1", "compute:server:create", NULL), 0);
    assert_int_equal(check(p, "member", "p1", "network:port:delete", "p1"), 0);
    assert_int_equal(check(p, "member", "p1", "compute:server:delete", "p2"), -ENOENT);
    assert_int_equal(check(p, "member", "p1", "compute:server:show", "p2"), -ENOENT);
    assert_int_equal(check(p, "member", "p1", "compute:flavor:create", NULL), -EPERM);
    assert_int_equal(check(p, "member", "p1", "identity:project:create", NULL), -EPERM);
    /* its own project's record, as Keystone's identity:get_project, and no other */
    assert_int_equal(check(p, "member", "p1", "identity:project:show", "p1"), 0);
    assert_int_equal(check(p, "reader", "p1", "identity:project:show", "p1"), 0);
    assert_int_equal(check(p, "member", "p1", "identity:project:show", "p2"), -ENOENT);
    assert_int_equal(check(p, "member", "p1", "identity:project:list", NULL), -EPERM);
    assert_int_equal(check(p, "member", "p1", "identity:project:update", "p1"), -EPERM);
    /* admin: everything everywhere */
    assert_int_equal(check(p, "admin", "p1", "compute:server:delete", "p2"), 0);
    assert_int_equal(check(p, "admin", "p1", "compute:flavor:create", NULL), 0);
    assert_int_equal(check(p, "admin", "p1", "identity:user:create", NULL), 0);
    /* no role at all */
    assert_int_equal(check(p, NULL, "p1", "compute:server:list", NULL), -EPERM);
    /* unscoped token: only identity:token:* */
    assert_int_equal(check(p, "admin", NULL, "identity:token:validate", NULL), 0);
    assert_int_equal(check(p, "admin", NULL, "compute:server:list", NULL), -EPERM);
    /* malformed actions are refused, whatever the role */
    assert_int_equal(check(p, "admin", "p1", "Compute:server:list", NULL), -EPERM);
    assert_int_equal(check(p, "admin", "p1", "compute:server", NULL), -EPERM);
    assert_int_equal(check(p, "admin", "p1", "compute::list", NULL), -EPERM);
    assert_int_equal(check(p, "admin", "p1", NULL, NULL), -EPERM);
    assert_true(st_policy_action_is_read("image:image:get"));
    assert_false(st_policy_action_is_read("image:image:create"));

    const char *admin[] = {"admin"}, *member[] = {"member"};
    struct st_policy_subject a = {"u", "p1", admin, 1}, m = {"u", "p1", member, 1};
    struct st_policy_subject unscoped = {"u", NULL, admin, 1};
    assert_true(st_policy_is_cloud_admin(p, &a));
    assert_false(st_policy_is_cloud_admin(p, &m));
    assert_false(st_policy_is_cloud_admin(p, &unscoped));
}

static void test_policy_custom_roles(void **state)
{
    (void)state;
    st_autoptr(st_policy) p = st_policy_new();
    st_autoptr(st_err) err = NULL;
    const char *allow[] = {"compute:*:list", "network:*"}, *deny[] = {"network:*:delete"};
    assert_ok(st_policy_set_role(p, "netops", allow, 2, deny, 1, false, &err));
    assert_int_equal(check(p, "netops", "p1", "compute:server:list", NULL), 0);
    assert_int_equal(check(p, "netops", "p1", "network:network:create", NULL), 0);
    assert_int_equal(check(p, "netops", "p1", "network:port:delete", NULL), -EPERM); /* deny wins */
    assert_int_equal(check(p, "netops", "p1", "compute:server:create", NULL), -EPERM);
    assert_int_equal(check(p, "netops", "p1", "network:network:create", "p2"), -ENOENT);

    const char *all[] = {"*:*:list"};
    assert_ok(st_policy_set_role(p, "auditor", all, 1, NULL, 0, true, &err));
    assert_int_equal(check(p, "auditor", "p1", "volume:volume:list", "p2"), 0);
    assert_int_equal(check(p, "auditor", "p1", "volume:volume:delete", "p1"), -EPERM);

    /* built-ins cannot be redefined; patterns are checked */
    assert_code(st_policy_set_role(p, "admin", all, 1, NULL, 0, false, &err), -EINVAL);
    st_err_clear(&err);
    const char *bad[] = {"Compute:*"};
    assert_code(st_policy_set_role(p, "x", bad, 1, NULL, 0, false, &err), -EINVAL);
    assert_non_null(strstr(err->msg, "Compute:*"));

    st_policy_remove_role(p, "netops");
    assert_int_equal(check(p, "netops", "p1", "compute:server:list", NULL), -EPERM);
    st_policy_remove_role(p, "admin"); /* ignored */
    assert_int_equal(check(p, "admin", "p1", "compute:server:list", "p2"), 0);
}

/* ---- passwords ---- */

static void test_password_cheap(void **state)
{
    (void)state;
    st_autoptr(st_err) err = NULL;
    st_autofree char *h = NULL;
    assert_ok(st_password_hash("s3cret", &CHEAP_COST, &h, &err));
    assert_non_null(strstr(h, "$argon2id$"));
    assert_null(strstr(h, "s3cret"));
    assert_ok(st_password_verify(h, "s3cret", &err));
    assert_code(st_password_verify(h, "s3creT", &err), -EACCES);
    st_err_clear(&err);
    assert_code(st_password_verify(h, "", &err), -EACCES);
    st_err_clear(&err);
    assert_code(st_password_verify("plain", "plain", &err), -EINVAL);
    st_err_clear(&err);
    st_autofree char *h2 = NULL;
    assert_code(st_password_hash("", &CHEAP_COST, &h2, &err), -EINVAL);
}

static void test_password_default_cost(void **state)
{
    (void)state;
    st_autoptr(st_err) err = NULL;
    st_autofree char *h = NULL;
    assert_ok(st_password_hash("correct horse", &ST_PASSWORD_COST_DEFAULT, &h, &err));
    assert_non_null(strstr(h, "m=19456,t=2,p=1"));
    assert_ok(st_password_verify(h, "correct horse", &err));
    assert_code(st_password_verify(h, "correct horse!", &err), -EACCES);
}

static void test_new_rejects_bad_config(void **state)
{
    (void)state;
    st_autoptr(st_err) err = NULL;
    struct st_identity *id = NULL;
    struct st_identity_config bad_cost = {.cost = {1, 4, 1}};
    assert_code(st_identity_new(NULL, &bad_cost, &id, &err), -EINVAL);
    assert_non_null(strstr(err->msg, "invalid argon2id cost"));
    st_err_clear(&err);
    struct st_identity_config bad_ttl = {.token_ttl_s = -1};
    assert_code(st_identity_new(NULL, &bad_ttl, &id, &err), -EINVAL);
    assert_null(id);
}

/* ---- bootstrap ---- */

static void test_bootstrap(void **state)
{
    struct fixture *f = *state;
    st_autoptr(st_err) err = NULL;
    assert_non_null(f->admin_password);
    assert_int_equal(strlen(f->admin_password), 24);

    /* Again: nothing new, no password. */
    char *again = (char *)"x";
    assert_ok(st_identity_bootstrap(f->id, &again, &err));
    assert_null(again);

    st_autoptr(json_t) roles = NULL;
    assert_ok(st_identity_role_list(f->id, NULL, &roles, &err));
    assert_int_equal(json_array_size(roles), 3);
    st_autoptr(json_t) projects = NULL;
    assert_ok(st_identity_project_list(f->id, "admin", NULL, &projects, &err));
    assert_int_equal(json_array_size(projects), 1);
    assert_string_equal(
        json_string_value(json_object_get(json_array_get(projects, 0), "description")),
        "Bootstrap project for initializing the cloud.");
    st_autoptr(json_t) users = NULL;
    assert_ok(st_identity_user_list(f->id, "admin", NULL, &users, &err));
    assert_int_equal(json_array_size(users), 1);
    st_autoptr(json_t) domain = NULL;
    assert_ok(st_identity_domain_get(f->id, "default", &domain, &err));
    assert_string_equal(json_string_value(json_object_get(domain, "name")), "Default");

    /* The admin logs in with the password returned, as the CLI does. */
    st_autofree char *secret = NULL;
    st_autoptr(st_token) t = NULL;
    assert_ok(login(f->id, "admin", f->admin_password, "admin", NULL, &secret, &t, &err));
    assert_int_equal(strlen(secret), 43);
    assert_string_equal(t->user_name, "admin");
    assert_string_equal(t->project_name, "admin");
    assert_int_equal(t->n_roles, 1);
    assert_string_equal(t->role_names[0], "admin");
    struct st_policy_subject who;
    st_token_subject(t, &who);
    assert_true(st_policy_is_cloud_admin(st_identity_policy(f->id), &who));
    assert_ok(
        st_policy_check(st_identity_policy(f->id), &who, "compute:flavor:create", NULL, &err));
}

/* ---- records ---- */

static void test_project_crud(void **state)
{
    struct fixture *f = *state;
    st_autoptr(st_err) err = NULL;
    st_autoptr(json_t) req =
        json_pack("{s:s, s:s, s:b, s:[s], s:{}}", "name", "proj-a", "description", "first",
                  "enabled", 1, "tags", "blue", "options");
    st_autoptr(json_t) p = NULL;
    assert_ok(st_identity_project_create(f->id, req, &p, &err));
    const char *pid = sid(p);
    assert_int_equal(strlen(pid), 32);
    assert_int_equal(strspn(pid, "0123456789abcdef"), 32);
    assert_string_equal(json_string_value(json_object_get(p, "domain_id")), "default");
    assert_string_equal(json_string_value(json_object_get(p, "description")), "first");
    assert_true(json_is_true(json_object_get(p, "enabled")));
    assert_string_equal(json_string_value(json_array_get(json_object_get(p, "tags"), 0)), "blue");
    int64_t ms;
    assert_int_equal(
        st_time_parse_rfc3339(json_string_value(json_object_get(p, "created_at")), &ms), 0);

    /* duplicate */
    st_autoptr(json_t) dup = NULL;
    assert_code(st_identity_project_create(f->id, req, &dup, &err), -EEXIST);
    assert_string_equal(err->msg, "Conflict occurred attempting to store project - Duplicate "
                                  "entry found with name proj-a at domain ID default.");
    st_err_clear(&err);

    /* get, find, list */
    st_autoptr(json_t) got = NULL;
    assert_ok(st_identity_project_get(f->id, pid, &got, &err));
    assert_true(json_equal(got, p));
    st_autoptr(json_t) found = NULL;
    assert_ok(st_identity_project_find(f->id, NULL, "proj-a", &found, &err));
    assert_string_equal(sid(found), pid);
    st_autoptr(json_t) missing = NULL;
    assert_code(st_identity_project_get(f->id, "nope", &missing, &err), -ENOENT);
    assert_string_equal(err->msg, "Could not find project: nope.");
    st_err_clear(&err);
    assert_code(st_identity_project_get(f->id, "../x/y", &missing, &err), -ENOENT);
    st_err_clear(&err);
    json_decref(create_project(f->id, "proj-b"));
    st_autoptr(json_t) list = NULL;
    assert_ok(st_identity_project_list(f->id, "proj-a", NULL, &list, &err));
    assert_int_equal(json_array_size(list), 1);
    json_decref(list);
    assert_ok(st_identity_project_list(f->id, NULL, "default", &list, &err));
    assert_int_equal(json_array_size(list), 3); /* admin, proj-a, proj-b */
    json_decref(list);
    assert_ok(st_identity_project_list(f->id, NULL, "other", &list, &err));
    assert_int_equal(json_array_size(list), 0);

    /* update: rename, then a rename onto a taken name */
    st_autoptr(json_t) patch = json_pack("{s:s, s:s}", "name", "proj-c", "description", "d2");
    st_autoptr(json_t) upd = NULL;
    assert_ok(st_identity_project_update(f->id, pid, patch, &upd, &err));
    assert_string_equal(json_string_value(json_object_get(upd, "name")), "proj-c");
    assert_string_equal(json_string_value(json_object_get(upd, "description")), "d2");
    st_autoptr(json_t) again = NULL;
    assert_code(st_identity_project_find(f->id, NULL, "proj-a", &again, &err), -ENOENT);
    st_err_clear(&err);
    json_decref(create_project(f->id, "proj-a")); /* the old name is free again */
    st_autoptr(json_t) clash = json_pack("{s:s}", "name", "proj-b");
    st_autoptr(json_t) upd2 = NULL;
    assert_code(st_identity_project_update(f->id, pid, clash, &upd2, &err), -EEXIST);
    st_err_clear(&err);

    /* bad input */
    st_autoptr(json_t) bad = NULL;
    st_autoptr(json_t) out = NULL;
    bad = json_pack("{s:s}", "description", "no name");
    assert_code(st_identity_project_create(f->id, bad, &out, &err), -EINVAL);
    assert_string_equal(err->msg, "missing required field 'name'");
    st_err_clear(&err);
    json_decref(bad);
    bad = json_pack("{s:i}", "name", 7);
    assert_code(st_identity_project_create(f->id, bad, &out, &err), -EINVAL);
    assert_string_equal(err->msg, "field 'name' must be a string");
    st_err_clear(&err);
    json_decref(bad);
    char longname[300];
    memset(longname, 'n', sizeof(longname) - 1);
    longname[sizeof(longname) - 1] = '\0';
    bad = json_pack("{s:s}", "name", longname);
    assert_code(st_identity_project_create(f->id, bad, &out, &err), -EINVAL);
    st_err_clear(&err);
    json_decref(bad);
    bad = json_pack("{s:s, s:s}", "name", "x", "domain_id", "nowhere");
    assert_code(st_identity_project_create(f->id, bad, &out, &err), -EINVAL);
    assert_string_equal(err->msg, "domain 'nowhere' does not exist");
    st_err_clear(&err);
    json_decref(bad);
    bad = json_pack("{s:s, s:s}", "name", "x", "enabled", "yes");
    assert_code(st_identity_project_create(f->id, bad, &out, &err), -EINVAL);
    st_err_clear(&err);

    /* delete */
    assert_ok(st_identity_project_delete(f->id, pid, &err));
    assert_code(st_identity_project_get(f->id, pid, &missing, &err), -ENOENT);
    st_err_clear(&err);
    assert_code(st_identity_project_delete(f->id, pid, &err), -ENOENT);
    char msg[128];
    snprintf(msg, sizeof(msg), "Could not find project: %s.", pid);
    assert_string_equal(err->msg, msg);
}

static void test_user_crud(void **state)
{
    struct fixture *f = *state;
    st_autoptr(st_err) err = NULL;
    st_autoptr(json_t) proj = create_project(f->id, "proj-a");
    st_autoptr(json_t) req =
        json_pack("{s:s, s:s, s:s, s:b, s:s}", "name", "user-a", "password", "pw-a",
                  "default_project_id", sid(proj), "enabled", 1, "email", "a@example.org");
    st_autoptr(json_t) u = NULL;
    assert_ok(st_identity_user_create(f->id, req, &u, &err));
    assert_null(json_object_get(u, "password_hash"));
    assert_null(json_object_get(u, "password"));
    assert_string_equal(json_string_value(json_object_get(u, "default_project_id")), sid(proj));
    assert_string_equal(json_string_value(json_object_get(u, "domain_id")), "default");
    assert_string_equal(json_string_value(json_object_get(u, "email")), "a@example.org");

    st_autoptr(json_t) dup = NULL;
    assert_code(st_identity_user_create(f->id, req, &dup, &err), -EEXIST);
    assert_string_equal(err->msg, "Conflict occurred attempting to store user - Duplicate entry "
                                  "found with name user-a at domain ID default.");
    st_err_clear(&err);

    st_autoptr(json_t) got = NULL;
    assert_ok(st_identity_user_get(f->id, sid(u), &got, &err));
    assert_null(json_object_get(got, "password_hash"));
    st_autoptr(json_t) found = NULL;
    assert_ok(st_identity_user_find(f->id, "default", "user-a", &found, &err));
    assert_null(json_object_get(found, "password_hash"));
    st_autoptr(json_t) list = NULL;
    assert_ok(st_identity_user_list(f->id, NULL, NULL, &list, &err));
    assert_int_equal(json_array_size(list), 2);
    size_t i;
    json_t *row;
    json_array_foreach(list, i, row) assert_null(json_object_get(row, "password_hash"));
    st_autoptr(json_t) missing = NULL;
    assert_code(st_identity_user_get(f->id, "ghost", &missing, &err), -ENOENT);
    assert_string_equal(err->msg, "Could not find user: ghost.");
    st_err_clear(&err);

    /* a user created without a password cannot log in */
    st_autoptr(json_t) nopw = json_pack("{s:s}", "name", "nopw");
    st_autoptr(json_t) u2 = NULL;
    assert_ok(st_identity_user_create(f->id, nopw, &u2, &err));
    assert_login_fails(f->id, "nopw", "", NULL);
    assert_login_fails(f->id, "nopw", "anything", NULL);

    /* password update: the new one works, the old one no longer */
    st_autoptr(json_t) patch = json_pack("{s:s}", "password", "pw-b");
    st_autoptr(json_t) upd = NULL;
    assert_ok(st_identity_user_update(f->id, sid(u), patch, &upd, &err));
    assert_null(json_object_get(upd, "password_hash"));
    assert_login_fails(f->id, "user-a", "pw-a", NULL);
    assert_ok(login(f->id, "user-a", "pw-b", NULL, NULL, NULL, NULL, &err));

    st_autoptr(json_t) bad = json_pack("{s:i}", "password", 5);
    st_autoptr(json_t) out = NULL;
    assert_code(st_identity_user_update(f->id, sid(u), bad, &out, &err), -EINVAL);
    st_err_clear(&err);

    assert_ok(st_identity_user_delete(f->id, sid(u), &err));
    assert_code(st_identity_user_get(f->id, sid(u), &missing, &err), -ENOENT);
    st_err_clear(&err);
    assert_login_fails(f->id, "user-a", "pw-b", NULL);
}

static void test_role_crud(void **state)
{
    struct fixture *f = *state;
    st_autoptr(st_err) err = NULL;
    st_autoptr(json_t) req =
        json_pack("{s:s, s:s, s:{s:[s], s:[s], s:b}}", "name", "netops", "description", "net",
                  "rules", "allow", "network:*", "deny", "network:*:delete", "all_projects", 0);
    st_autoptr(json_t) role = NULL;
    assert_ok(st_identity_role_create(f->id, req, &role, &err));
    assert_true(json_is_null(json_object_get(role, "domain_id")));
    st_autoptr(json_t) dup = NULL;
    assert_code(st_identity_role_create(f->id, req, &dup, &err), -EEXIST);
    assert_string_equal(err->msg, "Conflict occurred attempting to store role - Duplicate entry "
                                  "found with name netops.");
    st_err_clear(&err);

    /* the rules reached the policy engine */
    struct st_policy *p = st_identity_policy(f->id);
    assert_int_equal(check(p, "netops", "p1", "network:network:create", NULL), 0);
    assert_int_equal(check(p, "netops", "p1", "network:network:delete", NULL), -EPERM);

    /* bad rules are refused and do not reach the policy */
    st_autoptr(json_t) bad =
        json_pack("{s:s, s:{s:[s]}}", "name", "bad", "rules", "allow", "Network:*");
    st_autoptr(json_t) out = NULL;
    assert_code(st_identity_role_create(f->id, bad, &out, &err), -EINVAL);
    assert_non_null(strstr(err->msg, "Network:*"));
    st_err_clear(&err);
    json_decref(bad);
    bad = json_pack("{s:s, s:{s:[s]}}", "name", "bad", "rules", "permit", "network:*");
    assert_code(st_identity_role_create(f->id, bad, &out, &err), -EINVAL);
    st_err_clear(&err);
    json_decref(bad);
    bad = json_pack("{s:s, s:{s:s}}", "name", "bad", "rules", "allow", "network:*");
    assert_code(st_identity_role_create(f->id, bad, &out, &err), -EINVAL);
    st_err_clear(&err);
    st_autoptr(json_t) none = NULL;
    assert_code(st_identity_role_find(f->id, "bad", &none, &err), -ENOENT);
    st_err_clear(&err);

    /* update the rules, then rename */
    st_autoptr(json_t) patch = json_pack("{s:{s:[s]}}", "rules", "allow", "network:*:list");
    st_autoptr(json_t) upd = NULL;
    assert_ok(st_identity_role_update(f->id, sid(role), patch, &upd, &err));
    assert_int_equal(check(p, "netops", "p1", "network:network:create", NULL), -EPERM);
    assert_int_equal(check(p, "netops", "p1", "network:network:list", NULL), 0);
    st_autoptr(json_t) rename = json_pack("{s:s}", "name", "netview");
    st_autoptr(json_t) upd2 = NULL;
    assert_ok(st_identity_role_update(f->id, sid(role), rename, &upd2, &err));
    assert_int_equal(check(p, "netops", "p1", "network:network:list", NULL), -EPERM);
    assert_int_equal(check(p, "netview", "p1", "network:network:list", NULL), 0);

    /* built-ins stay */
    st_autoptr(json_t) admin = find_role(f->id, "admin");
    assert_code(st_identity_role_delete(f->id, sid(admin), &err), -EPERM);
    assert_string_equal(err->msg, "role 'admin' is built in");
    st_err_clear(&err);
    st_autoptr(json_t) upd3 = NULL;
    assert_code(st_identity_role_update(f->id, sid(admin), rename, &upd3, &err), -EPERM);
    st_err_clear(&err);

    assert_ok(st_identity_role_delete(f->id, sid(role), &err));
    assert_int_equal(check(p, "netview", "p1", "network:network:list", NULL), -EPERM);
    st_autoptr(json_t) gone = NULL;
    assert_code(st_identity_role_get(f->id, sid(role), &gone, &err), -ENOENT);
    char msg[128];
    snprintf(msg, sizeof(msg), "Could not find role: %s.", sid(role));
    assert_string_equal(err->msg, msg);
}

struct race {
    struct st_identity *id;
    pthread_barrier_t *barrier;
    int result;
};

static void *race_create(void *arg)
{
    struct race *r = arg;
    st_autoptr(json_t) req = json_pack("{s:s}", "name", "contested");
    st_autoptr(json_t) out = NULL;
    pthread_barrier_wait(r->barrier);
    r->result = st_identity_project_create(r->id, req, &out, NULL);
    return NULL;
}

static void test_concurrent_create(void **state)
{
    struct fixture *f = *state;
    enum { N = 8 };
    pthread_t threads[N];
    struct race races[N];
    pthread_barrier_t barrier;
    pthread_barrier_init(&barrier, NULL, N);
    for (int i = 0; i < N; i++) {
        races[i] = (struct race){f->id, &barrier, 1};
        pthread_create(&threads[i], NULL, race_create, &races[i]);
    }
    int ok = 0, exists = 0;
    for (int i = 0; i < N; i++) {
        pthread_join(threads[i], NULL);
        ok += races[i].result == 0;
        exists += races[i].result == -EEXIST;
    }
    pthread_barrier_destroy(&barrier);
    assert_int_equal(ok, 1);
    assert_int_equal(exists, N - 1);
    st_autoptr(json_t) list = NULL;
    st_autoptr(st_err) err = NULL;
    assert_ok(st_identity_project_list(f->id, "contested", NULL, &list, &err));
    assert_int_equal(json_array_size(list), 1);
}

/* ---- grants ---- */

static void test_grants(void **state)
{
    struct fixture *f = *state;
    st_autoptr(st_err) err = NULL;
    st_autoptr(json_t) pa = create_project(f->id, "proj-a");
    st_autoptr(json_t) pb = create_project(f->id, "proj-b");
    st_autoptr(json_t) ua = create_user(f->id, "user-a", "pw");
    st_autoptr(json_t) ub = create_user(f->id, "user-b", "pw");
    st_autoptr(json_t) member = find_role(f->id, "member");
    st_autoptr(json_t) reader = find_role(f->id, "reader");
    grant(f->id, pa, ua, "member");
    grant(f->id, pa, ua, "reader");
    grant(f->id, pa, ua, "member"); /* again: no duplicate */
    grant(f->id, pb, ua, "reader");
    grant(f->id, pa, ub, "reader");

    assert_ok(st_identity_grant_check(f->id, sid(pa), sid(ua), sid(member), &err));
    assert_code(st_identity_grant_check(f->id, sid(pb), sid(ua), sid(member), &err), -ENOENT);
    st_err_clear(&err);
    assert_code(st_identity_grant_add(f->id, sid(pa), sid(ua), "norole", &err), -ENOENT);
    assert_string_equal(err->msg, "Could not find role: norole.");
    st_err_clear(&err);
    assert_code(st_identity_grant_add(f->id, "noproj", sid(ua), sid(member), &err), -ENOENT);
    assert_string_equal(err->msg, "Could not find project: noproj.");
    st_err_clear(&err);
    assert_code(st_identity_grant_add(f->id, sid(pa), "nouser", sid(member), &err), -ENOENT);
    st_err_clear(&err);

    struct {
        const char *p, *u, *r;
        size_t n;
    } cases[] = {
        {NULL, NULL, NULL, 5}, /* with the bootstrap's admin grant */
        {sid(pa), NULL, NULL, 3},     {NULL, sid(ua), NULL, 3},        {sid(pa), sid(ua), NULL, 2},
        {NULL, NULL, sid(reader), 3}, {NULL, sid(ua), sid(reader), 2}, {sid(pb), sid(ub), NULL, 0},
        {"a/b", NULL, NULL, 0},
    };
    for (size_t i = 0; i < ST_ARRAY_SIZE(cases); i++) {
        st_autoptr(json_t) list = NULL;
        assert_ok(st_identity_grant_list(f->id, cases[i].p, cases[i].u, cases[i].r, &list, &err));
        if (json_array_size(list) != cases[i].n)
            fail_msg("case %zu: %zu grants, expected %zu", i, json_array_size(list), cases[i].n);
        size_t j;
        json_t *g;
        json_array_foreach(list, j, g)
        {
            if (cases[i].u)
                assert_string_equal(json_string_value(json_object_get(g, "user_id")), cases[i].u);
            if (cases[i].r)
                assert_string_equal(json_string_value(json_object_get(g, "role_id")), cases[i].r);
        }
    }

    assert_ok(st_identity_grant_remove(f->id, sid(pa), sid(ua), sid(member), &err));
    assert_code(st_identity_grant_check(f->id, sid(pa), sid(ua), sid(member), &err), -ENOENT);
    st_err_clear(&err);
    assert_code(st_identity_grant_remove(f->id, sid(pa), sid(ua), sid(member), &err), -ENOENT);
    st_err_clear(&err);

    /* deleting a user or a project removes its grants */
    assert_ok(st_identity_user_delete(f->id, sid(ub), &err));
    st_autoptr(json_t) l1 = NULL;
    assert_ok(st_identity_grant_list(f->id, NULL, sid(ub), NULL, &l1, &err));
    assert_int_equal(json_array_size(l1), 0);
    assert_ok(st_identity_project_delete(f->id, sid(pb), &err));
    st_autoptr(json_t) l2 = NULL;
    assert_ok(st_identity_grant_list(f->id, NULL, sid(ua), NULL, &l2, &err));
    assert_int_equal(json_array_size(l2), 1); /* reader on proj-a */
}

/* ---- authentication ---- */

static void test_auth_variants(void **state)
{
    struct fixture *f = *state;
    st_autoptr(st_err) err = NULL;
    st_autoptr(json_t) pa = create_project(f->id, "proj-a");
    st_autoptr(json_t) pb = create_project(f->id, "proj-b");
    st_autoptr(json_t) ua = create_user(f->id, "user-a", "pw-a");
    grant(f->id, pa, ua, "member");

    /* name + domain name, project name + domain name */
    st_autoptr(st_token) t = NULL;
    assert_ok(login(f->id, "user-a", "pw-a", "proj-a", "10.0.0.1", NULL, &t, &err));
    assert_string_equal(t->user_id, sid(ua));
    assert_string_equal(t->user_domain_id, "default");
    assert_string_equal(t->project_id, sid(pa));
    assert_string_equal(t->project_name, "proj-a");
    assert_int_equal(t->n_roles, 1);
    assert_string_equal(t->role_names[0], "member");
    assert_int_equal(strlen(t->hash), 64);
    assert_int_equal(t->expires_at_ms - t->issued_at_ms, ST_IDENTITY_TOKEN_TTL_DEFAULT * 1000LL);
    assert_true(strlen(t->audit_id) == 22);

    /* ids only */
    struct st_auth_request by_id = {.user_id = sid(ua), .password = "pw-a", .project_id = sid(pa)};
    st_autofree char *secret = NULL;
    st_autoptr(st_token) t2 = NULL;
    assert_ok(st_identity_authenticate(f->id, &by_id, &secret, &t2, &err));
    assert_string_equal(t2->project_id, sid(pa));

    /* user domain by id, no domain for the project name (the default) */
    struct st_auth_request mixed = {.user_name = "user-a",
                                    .user_domain_id = "default",
                                    .password = "pw-a",
                                    .project_name = "proj-a"};
    st_autofree char *secret3 = NULL;
    st_autoptr(st_token) t3 = NULL;
    assert_ok(st_identity_authenticate(f->id, &mixed, &secret3, &t3, &err));

    /* unscoped */
    st_autoptr(st_token) t4 = NULL;
    assert_ok(login(f->id, "user-a", "pw-a", NULL, NULL, NULL, &t4, &err));
    assert_null(t4->project_id);
    assert_int_equal(t4->n_roles, 0);

    /* failures all look the same */
    assert_login_fails(f->id, "user-a", "wrong", "proj-a");
    assert_login_fails(f->id, "nobody", "pw-a", "proj-a");
    assert_login_fails(f->id, "user-a", "pw-a", "proj-b"); /* no role there */
    assert_login_fails(f->id, "user-a", "pw-a", "no-such-project");
    struct st_auth_request other_domain = {
        .user_name = "user-a", .user_domain_name = "Elsewhere", .password = "pw-a"};
    st_autofree char *s = NULL;
    st_autoptr(st_token) tt = NULL;
    assert_code(st_identity_authenticate(f->id, &other_domain, &s, &tt, &err), -EACCES);
    assert_string_equal(err->msg, AUTH_FAILED);
    st_err_clear(&err);

    /* a disabled project, then a disabled user */
    st_autoptr(json_t) off = json_pack("{s:b}", "enabled", 0);
    st_autoptr(json_t) upd = NULL;
    grant(f->id, pb, ua, "member");
    assert_ok(login(f->id, "user-a", "pw-a", "proj-b", NULL, NULL, NULL, &err));
    assert_ok(st_identity_project_update(f->id, sid(pb), off, &upd, &err));
    assert_login_fails(f->id, "user-a", "pw-a", "proj-b");
    st_autoptr(json_t) upd2 = NULL;
    assert_ok(st_identity_user_update(f->id, sid(ua), off, &upd2, &err));
    assert_login_fails(f->id, "user-a", "pw-a", "proj-a");
    assert_login_fails(f->id, "user-a", "pw-a", NULL);
    /* and disabling revoked what was issued before */
    assert_int_equal(validate(f->id, secret), -EACCES);
}

static void test_rate_limit(void **state)
{
    struct fixture *f = *state;
    st_autoptr(st_err) err = NULL;
    st_autoptr(json_t) ua = create_user(f->id, "user-a", "pw-a");
    st_autoptr(json_t) ub = create_user(f->id, "user-b", "pw-b");

    /* a success resets the count */
    for (int i = 0; i < 4; i++)
        assert_login_fails(f->id, "user-a", "wrong", NULL);
    assert_ok(login(f->id, "user-a", "pw-a", NULL, NULL, NULL, NULL, &err));
    for (int i = 0; i < 5; i++)
        assert_login_fails(f->id, "user-a", "wrong", NULL);
    /* now refused, even with the right password, without checking it */
    assert_code(login(f->id, "user-a", "pw-a", NULL, NULL, NULL, NULL, &err), -EBUSY);
    assert_non_null(strstr(err->msg, "too many failed logins, try again in 300 seconds"));
    st_err_clear(&err);
    /* by id too: the same user */
    struct st_auth_request by_id = {.user_id = sid(ua), .password = "pw-a"};
    st_autofree char *s = NULL;
    st_autoptr(st_token) t = NULL;
    assert_code(st_identity_authenticate(f->id, &by_id, &s, &t, &err), -EBUSY);
    st_err_clear(&err);
    /* others are not affected */
    assert_ok(login(f->id, "user-b", "pw-b", NULL, NULL, NULL, NULL, &err));
    /* unknown users are limited as well */
    for (int i = 0; i < 5; i++)
        assert_login_fails(f->id, "ghost", "x", NULL);
    assert_code(login(f->id, "ghost", "x", NULL, NULL, NULL, NULL, &err), -EBUSY);
    st_err_clear(&err);
    /* after the window, the user may try again */
    f->clock_offset_ms += 301 * 1000;
    assert_ok(login(f->id, "user-a", "pw-a", NULL, NULL, NULL, NULL, &err));

    /* per source: failures on many users from one address */
    for (int i = 0; i < 20; i++) {
        char name[32];
        snprintf(name, sizeof(name), "spray-%d", i);
        assert_code(login(f->id, name, "x", NULL, "192.0.2.7", NULL, NULL, &err), -EACCES);
        st_err_clear(&err);
    }
    assert_code(login(f->id, "user-b", "pw-b", NULL, "192.0.2.7", NULL, NULL, &err), -EBUSY);
    st_err_clear(&err);
    assert_ok(login(f->id, "user-b", "pw-b", NULL, "192.0.2.8", NULL, NULL, &err));
}

static void test_ratelimit_table(void **state)
{
    (void)state;
    st_autoptr(st_ratelimit) rl = st_ratelimit_new(16, 2, 1000);
    int64_t retry = 0;
    st_ratelimit_fail(rl, "a", 0);
    assert_int_equal(st_ratelimit_check(rl, "a", 10, &retry), 0);
    st_ratelimit_fail(rl, "a", 100);
    assert_int_equal(st_ratelimit_check(rl, "a", 200, &retry), -EBUSY);
    assert_int_equal(retry, 1);
    assert_int_equal(st_ratelimit_check(rl, "b", 200, &retry), 0);
    assert_int_equal(st_ratelimit_check(rl, "a", 1000, &retry), 0); /* window over */
    st_ratelimit_fail(rl, "a", 1000);
    assert_int_equal(st_ratelimit_check(rl, "a", 1001, &retry), 0); /* a new window */
    /* many keys: bounded table, no failure, recent keys still counted */
    char key[32];
    for (int i = 0; i < 10000; i++) {
        snprintf(key, sizeof(key), "k%d", i);
        st_ratelimit_fail(rl, key, 2000);
        st_ratelimit_fail(rl, key, 2000);
    }
    assert_int_equal(st_ratelimit_check(rl, key, 2001, &retry), -EBUSY);
    st_ratelimit_reset(rl, key);
    assert_int_equal(st_ratelimit_check(rl, key, 2001, &retry), 0);
}

/* ---- tokens ---- */

static void test_token_validate_revoke(void **state)
{
    struct fixture *f = *state;
    st_autoptr(st_err) err = NULL;
    st_autofree char *secret = NULL;
    st_autoptr(st_token) issued = NULL;
    assert_ok(login(f->id, "admin", f->admin_password, "admin", NULL, &secret, &issued, &err));
    st_autoptr(st_token) t = NULL;
    assert_ok(st_identity_validate(f->id, secret, &t, &err));
    assert_string_equal(t->hash, issued->hash);
    assert_string_equal(t->user_name, "admin");
    assert_string_equal(t->project_name, "admin");
    assert_string_equal(t->audit_id, issued->audit_id);
    assert_int_equal(t->expires_at_ms, issued->expires_at_ms);

    /* only the hash is stored */
    st_autofree char *key = st_sprintf("/identity/tokens/%s", issued->hash);
    st_autoptr(st_kv_entry) e = NULL;
    assert_ok(st_kv_get(f->kv, key, &e, &err));
    assert_null(strstr(e->value, secret));

    assert_int_equal(validate(f->id, "not-a-token"), -EACCES);
    assert_int_equal(validate(f->id, ""), -EACCES);
    assert_int_equal(validate(f->id, NULL), -EACCES);

    assert_ok(st_identity_revoke(f->id, secret, &err));
    assert_int_equal(validate(f->id, secret), -EACCES);
    assert_code(st_identity_revoke(f->id, secret, &err), -ENOENT);
    st_err_clear(&err);
    st_autoptr(st_kv_entry) e2 = NULL;
    assert_code(st_kv_get(f->kv, key, &e2, &err), -ENOENT);
}

static void test_token_expiry(void **state)
{
    struct fixture *f = *state;
    st_identity_free(f->id);
    struct st_identity_config cfg = {.token_ttl_s = 60, .cost = CHEAP_COST};
    f->id = open_identity(f, &cfg);
    st_autoptr(st_err) err = NULL;
    st_autofree char *secret = NULL;
    st_autoptr(st_token) t = NULL;
    assert_ok(login(f->id, "admin", f->admin_password, "admin", NULL, &secret, &t, &err));
    assert_int_equal(t->expires_at_ms - t->issued_at_ms, 60 * 1000);
    f->clock_offset_ms = 59 * 1000;
    assert_int_equal(validate(f->id, secret), 0);
    f->clock_offset_ms = 61 * 1000;
    assert_int_equal(validate(f->id, secret), -EACCES); /* expired in the cache */
    assert_int_equal(validate(f->id, secret), -EACCES); /* and not in the store either */

    /* uncached: a new context sees the stored token expired and deletes it */
    st_autofree char *secret2 = NULL;
    st_autoptr(st_token) t2 = NULL;
    assert_ok(login(f->id, "admin", f->admin_password, "admin", NULL, &secret2, &t2, &err));
    st_identity_free(f->id);
    f->id = open_identity(f, &cfg);
    f->clock_offset_ms += 61 * 1000;
    assert_int_equal(validate(f->id, secret2), -EACCES);
    st_autofree char *key = st_sprintf("/identity/tokens/%s", t2->hash);
    st_autoptr(st_kv_entry) e = NULL;
    assert_code(st_kv_get(f->kv, key, &e, &err), -ENOENT);
}

static void test_revoke_user(void **state)
{
    struct fixture *f = *state;
    st_autoptr(st_err) err = NULL;
    st_autoptr(json_t) pa = create_project(f->id, "proj-a");
    st_autoptr(json_t) ua = create_user(f->id, "user-a", "pw-a");
    st_autoptr(json_t) ub = create_user(f->id, "user-b", "pw-b");
    grant(f->id, pa, ua, "member");
    grant(f->id, pa, ub, "member");
    st_autofree char *s1 = NULL;
    st_autofree char *s2 = NULL;
    st_autofree char *s3 = NULL;
    st_autofree char *sb = NULL;
    assert_ok(login(f->id, "user-a", "pw-a", "proj-a", NULL, &s1, NULL, &err));
    assert_ok(login(f->id, "user-a", "pw-a", "proj-a", NULL, &s2, NULL, &err));
    assert_ok(login(f->id, "user-a", "pw-a", NULL, NULL, &s3, NULL, &err));
    assert_ok(login(f->id, "user-b", "pw-b", "proj-a", NULL, &sb, NULL, &err));
    assert_int_equal(validate(f->id, s1), 0); /* cached */
    assert_int_equal(validate(f->id, s2), 0);
    assert_ok(st_identity_revoke_user(f->id, sid(ua), &err));
    assert_int_equal(validate(f->id, s1), -EACCES);
    assert_int_equal(validate(f->id, s2), -EACCES);
    assert_int_equal(validate(f->id, s3), -EACCES);
    assert_int_equal(validate(f->id, sb), 0);

    /* a password change revokes too */
    st_autoptr(json_t) patch = json_pack("{s:s}", "password", "pw-b2");
    st_autoptr(json_t) upd = NULL;
    assert_ok(st_identity_user_update(f->id, sid(ub), patch, &upd, &err));
    assert_int_equal(validate(f->id, sb), -EACCES);

    /* removing a grant revokes that user's tokens */
    st_autofree char *s4 = NULL;
    assert_ok(login(f->id, "user-a", "pw-a", "proj-a", NULL, &s4, NULL, &err));
    st_autoptr(json_t) member = find_role(f->id, "member");
    assert_ok(st_identity_grant_remove(f->id, sid(pa), sid(ua), sid(member), &err));
    assert_int_equal(validate(f->id, s4), -EACCES);

    /* deleting the project revokes its members' tokens */
    st_autofree char *s5 = NULL;
    assert_ok(login(f->id, "user-b", "pw-b2", "proj-a", NULL, &s5, NULL, &err));
    assert_ok(st_identity_project_delete(f->id, sid(pa), &err));
    assert_int_equal(validate(f->id, s5), -EACCES);

    /* deleting the user */
    st_autofree char *s6 = NULL;
    assert_ok(login(f->id, "user-b", "pw-b2", NULL, NULL, &s6, NULL, &err));
    assert_ok(st_identity_user_delete(f->id, sid(ub), &err));
    assert_int_equal(validate(f->id, s6), -EACCES);
    st_autoptr(st_kv_list) left = NULL;
    assert_ok(st_kv_list(f->kv, "/identity/user-tokens/", NULL, 0, &left, &err));
    assert_int_equal(left->count, 0);
}

static void test_token_survives_reopen(void **state)
{
    struct fixture *f = *state;
    st_autoptr(st_err) err = NULL;
    st_autoptr(json_t) pa = create_project(f->id, "proj-a");
    st_autoptr(json_t) ua = create_user(f->id, "user-a", "pw-a");
    st_autoptr(json_t) req =
        json_pack("{s:s, s:{s:[s]}}", "name", "lister", "rules", "allow", "compute:*:list");
    st_autoptr(json_t) role = NULL;
    assert_ok(st_identity_role_create(f->id, req, &role, &err));
    grant(f->id, pa, ua, "lister");
    st_autofree char *secret = NULL;
    assert_ok(login(f->id, "user-a", "pw-a", "proj-a", NULL, &secret, NULL, &err));

    /* as a restarted daemon: a new context on the same store */
    st_identity_free(f->id);
    st_kv_close(f->kv);
    f->kv = NULL;
    assert_ok(st_kv_open(f->url, NULL, &f->kv, &err));
    f->id = open_identity(f, NULL);
    st_autoptr(st_token) t = NULL;
    assert_ok(st_identity_validate(f->id, secret, &t, &err));
    assert_string_equal(t->user_name, "user-a");
    assert_string_equal(t->role_names[0], "lister");
    /* the custom role's rules were loaded from the store */
    struct st_policy_subject who;
    st_token_subject(t, &who);
    assert_ok(st_policy_check(st_identity_policy(f->id), &who, "compute:server:list", NULL, &err));
    assert_code(
        st_policy_check(st_identity_policy(f->id), &who, "compute:server:create", NULL, &err),
        -EPERM);
    st_err_clear(&err);

    /* deleting the role removes its grants and revokes the tokens naming it */
    assert_ok(st_identity_role_delete(f->id, sid(role), &err));
    assert_int_equal(validate(f->id, secret), -EACCES);
    st_autoptr(json_t) grants = NULL;
    assert_ok(st_identity_grant_list(f->id, NULL, NULL, sid(role), &grants, &err));
    assert_int_equal(json_array_size(grants), 0);
    assert_login_fails(f->id, "user-a", "pw-a", "proj-a");
}

struct validator {
    struct st_identity *id;
    const char *secret;
    int failures;
};

static void *validate_many(void *arg)
{
    struct validator *v = arg;
    for (int i = 0; i < 2000; i++) {
        struct st_token *t = NULL;
        if (st_identity_validate(v->id, v->secret, &t, NULL) < 0)
            v->failures++;
        st_token_free(t);
    }
    return NULL;
}

static void test_validate_concurrent(void **state)
{
    struct fixture *f = *state;
    st_autoptr(st_err) err = NULL;
    st_autofree char *secret = NULL;
    assert_ok(login(f->id, "admin", f->admin_password, "admin", NULL, &secret, NULL, &err));
    enum { N = 4 };
    pthread_t th[N];
    struct validator v[N];
    for (int i = 0; i < N; i++) {
        v[i] = (struct validator){f->id, secret, 0};
        pthread_create(&th[i], NULL, validate_many, &v[i]);
    }
    for (int i = 0; i < N; i++) {
        pthread_join(th[i], NULL);
        assert_int_equal(v[i].failures, 0);
    }
}

/* ---- two instances on one store: two controllers ---- */

/* Milliseconds until secret stops validating at id (the answer must be the
 * authentication failure), or -1 if it still validates after limit_ms. */
static int64_t ms_until_refused(struct st_identity *id, const char *secret, int64_t limit_ms)
{
    int64_t t0 = st_time_mono_ns();
    for (;;) {
        int64_t ms = (st_time_mono_ns() - t0) / 1000000;
        int r = validate(id, secret);
        if (r == -EACCES)
            return ms;
        assert_int_equal(r, 0);
        if (ms > limit_ms)
            return -1;
        usleep(5 * 1000);
    }
}

/* Milliseconds until the policy answers want for role/action in project
 * p1, or -1 after limit_ms. */
static int64_t ms_until_policy(struct st_policy *p, const char *role, const char *action, int want,
                               int64_t limit_ms)
{
    int64_t t0 = st_time_mono_ns();
    for (;;) {
        int64_t ms = (st_time_mono_ns() - t0) / 1000000;
        if (check(p, role, "p1", action, NULL) == want)
            return ms;
        if (ms > limit_ms)
            return -1;
        usleep(5 * 1000);
    }
}

/* Waits until id's watch has caught up (its cache is trusted). */
static void wait_in_sync(struct st_identity *id)
{
    for (int i = 0; i < 400 && !__atomic_load_n(&id->watch_in_sync, __ATOMIC_ACQUIRE); i++)
        usleep(5 * 1000);
    assert_true(__atomic_load_n(&id->watch_in_sync, __ATOMIC_ACQUIRE));
}

static void test_revocation_reaches_other_instance(void **state)
{
    struct fixture *f = *state;
    st_autoptr(st_err) err = NULL;
    st_autoptr(st_identity) b = open_identity(f, NULL);
    wait_in_sync(b);
    st_autoptr(json_t) p = create_project(f->id, "p1");
    st_autoptr(json_t) u = create_user(f->id, "alice", "pw-alice");
    grant(f->id, p, u, "member");
    st_autofree char *s1 = NULL, *s2 = NULL;
    assert_ok(login(f->id, "alice", "pw-alice", "p1", NULL, &s1, NULL, &err));
    assert_ok(login(f->id, "alice", "pw-alice", "p1", NULL, &s2, NULL, &err));
    /* B has validated both (so holds them in its cache) */
    assert_ok(validate(b, s1));
    assert_ok(validate(b, s2));

    /* one token revoked through A: B refuses it within a second, the
     * other stays good */
    assert_ok(st_identity_revoke(f->id, s1, &err));
    int64_t ms = ms_until_refused(b, s1, 1000);
    if (ms < 0)
        fail_msg("B still accepts a token revoked through A after 1 s");
    print_message("B refused the token revoked through A after %lld ms\n", (long long)ms);
    assert_ok(validate(b, s2));

    /* all of the user's tokens, by a password change through A */
    st_autoptr(json_t) patch = json_pack("{s:s}", "password", "pw-alice-2");
    st_autoptr(json_t) upd = NULL;
    assert_ok(st_identity_user_update(f->id, sid(u), patch, &upd, &err));
    if (ms_until_refused(b, s2, 1000) < 0)
        fail_msg("B still accepts a token of a user whose password changed through A");

    /* and the other way round: issued and revoked through B, refused by A */
    st_autofree char *s3 = NULL;
    assert_ok(login(b, "alice", "pw-alice-2", "p1", NULL, &s3, NULL, &err));
    assert_ok(validate(f->id, s3));
    assert_ok(st_identity_revoke(b, s3, &err));
    if (ms_until_refused(f->id, s3, 1000) < 0)
        fail_msg("A still accepts a token revoked through B after 1 s");
}

static void test_role_rules_reach_other_instance(void **state)
{
    struct fixture *f = *state;
    st_autoptr(st_err) err = NULL;
    st_autoptr(st_identity) b = open_identity(f, NULL);
    struct st_policy *pb = st_identity_policy(b);

    /* a custom role created through A is enforced by B */
    st_autoptr(json_t) req =
        json_pack("{s:s, s:{s:[s]}}", "name", "netops", "rules", "allow", "network:*");
    st_autoptr(json_t) role = NULL;
    assert_ok(st_identity_role_create(f->id, req, &role, &err));
    int64_t ms = ms_until_policy(pb, "netops", "network:network:create", 0, 1000);
    if (ms < 0)
        fail_msg("B does not know a role created through A after 1 s");
    print_message("B enforced the role created through A after %lld ms\n", (long long)ms);

    /* its rules narrowed through A: B follows */
    st_autoptr(json_t) patch =
        json_pack("{s:{s:[s], s:[s]}}", "rules", "allow", "network:*", "deny", "network:*:create");
    st_autoptr(json_t) upd = NULL;
    assert_ok(st_identity_role_update(f->id, sid(role), patch, &upd, &err));
    if (ms_until_policy(pb, "netops", "network:network:create", -EPERM, 1000) < 0)
        fail_msg("B still allows what the role's new rules deny");
    assert_int_equal(check(pb, "netops", "p1", "network:network:list", NULL), 0);

    /* renamed through A: the old name grants nothing at B, the new one does */
    st_autoptr(json_t) rename = json_pack("{s:s}", "name", "netview");
    st_autoptr(json_t) upd2 = NULL;
    assert_ok(st_identity_role_update(f->id, sid(role), rename, &upd2, &err));
    if (ms_until_policy(pb, "netview", "network:network:list", 0, 1000) < 0)
        fail_msg("B does not know the renamed role");
    assert_int_equal(check(pb, "netops", "p1", "network:network:list", NULL), -EPERM);

    /* deleted through A: B forgets it */
    assert_ok(st_identity_role_delete(f->id, sid(role), &err));
    if (ms_until_policy(pb, "netview", "network:network:list", -EPERM, 1000) < 0)
        fail_msg("B still enforces a role deleted through A");
    /* the built-in roles are untouched by the reloads */
    assert_int_equal(check(pb, "member", "p1", "network:network:create", NULL), 0);
}

/* The events B needed were compacted while its watch was stopped: it
 * starts over (empties its cache, reloads the roles) rather than go on
 * with what it may have missed. */
static void test_watch_resync_after_compaction(void **state)
{
    struct fixture *f = *state;
    st_autoptr(st_err) err = NULL;
    st_autoptr(st_identity) b = open_identity(f, NULL);
    struct st_policy *pb = st_identity_policy(b);
    st_autofree char *secret = NULL;
    assert_ok(login(f->id, "admin", f->admin_password, "admin", NULL, &secret, NULL, &err));
    st_autoptr(json_t) req =
        json_pack("{s:s, s:{s:[s]}}", "name", "ops", "rules", "allow", "compute:*");
    st_autoptr(json_t) role = NULL;
    assert_ok(st_identity_role_create(f->id, req, &role, &err));
    assert_true(ms_until_policy(pb, "ops", "compute:server:create", 0, 1000) >= 0);
    wait_in_sync(b);
    assert_ok(validate(b, secret));

    st_identity_watch_stop(b);
    int64_t from = b->watch_rev;
    assert_ok(st_identity_revoke(f->id, secret, &err));
    st_autoptr(json_t) patch = json_pack("{s:{s:[s]}}", "rules", "allow", "compute:*:list");
    st_autoptr(json_t) upd = NULL;
    assert_ok(st_identity_role_update(f->id, sid(role), patch, &upd, &err));
    assert_ok(st_kv_compact(f->kv, st_kv_revision(f->kv), &err));

    assert_ok(st_identity_watch_start(b, from, &err));
    wait_in_sync(b);
    assert_int_equal(validate(b, secret), -EACCES);
    assert_int_equal(check(pb, "ops", "p1", "compute:server:create", NULL), -EPERM);
    assert_int_equal(check(pb, "ops", "p1", "compute:server:list", NULL), 0);
}

/* ---- the store down (a real etcd, killed) ---- */

static const char *etcd_binary(void)
{
    static const char *const paths[] = {"/usr/bin/etcd", "/usr/local/bin/etcd"};
    for (size_t i = 0; i < ST_ARRAY_SIZE(paths); i++)
        if (access(paths[i], X_OK) == 0)
            return paths[i];
    return NULL;
}

static int free_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof(a);
    if (fd < 0 || bind(fd, (struct sockaddr *)&a, sizeof(a)) < 0 ||
        getsockname(fd, (struct sockaddr *)&a, &len) < 0) {
        if (fd >= 0)
            close(fd);
        return -1;
    }
    close(fd);
    return ntohs(a.sin_port);
}

/* Starts etcd on the fixture's data dir and ports (a restart keeps both)
 * and waits until it answers. */
static int etcd_start(struct fixture *f)
{
    char data[128], log[128], client[64], peer[64], cluster[80];
    snprintf(data, sizeof(data), "%s/etcd", f->dir);
    snprintf(log, sizeof(log), "%s/etcd.log", f->dir);
    snprintf(client, sizeof(client), "http://127.0.0.1:%d", f->client_port);
    snprintf(peer, sizeof(peer), "http://127.0.0.1:%d", f->peer_port);
    snprintf(cluster, sizeof(cluster), "st=%s", peer);
    pid_t pid = fork();
    if (pid < 0)
        return -1;
    if (pid == 0) {
        int fd = open(log, O_WRONLY | O_CREAT | O_APPEND, 0600);
        if (fd >= 0) {
            dup2(fd, 1);
            dup2(fd, 2);
        }
        execl(etcd_binary(), "etcd", "--name", "st", "--data-dir", data, "--listen-client-urls",
              client, "--advertise-client-urls", client, "--listen-peer-urls", peer,
              "--initial-advertise-peer-urls", peer, "--initial-cluster", cluster,
              "--heartbeat-interval", "10", "--election-timeout", "100", "--logger", "zap",
              "--log-level", "warn", (char *)NULL);
        _exit(127);
    }
    f->etcd = pid;
    int64_t deadline = st_time_mono_ns() + 10 * 1000000000LL;
    while (st_time_mono_ns() < deadline) {
        struct st_kv *kv = NULL;
        if (st_kv_open(f->url, NULL, &kv, NULL) == 0) {
            st_kv_close(kv);
            return 0;
        }
        if (waitpid(pid, NULL, WNOHANG) == pid) {
            f->etcd = 0;
            return -1;
        }
        usleep(20 * 1000);
    }
    return -1;
}

static void etcd_kill(struct fixture *f)
{
    if (f->etcd <= 0)
        return;
    kill(f->etcd, SIGKILL);
    waitpid(f->etcd, NULL, 0);
    f->etcd = 0;
}

static int setup_etcd(void **state)
{
    if (!etcd_binary()) {
        *state = NULL;
        return 0; /* the test skips */
    }
    struct fixture *f = st_new0(struct fixture, 1);
    *state = f;
    strcpy(f->dir, "/tmp/st-identity-XXXXXX");
    if (!mkdtemp(f->dir))
        return -1;
    for (int attempt = 0; attempt < 3 && !f->etcd; attempt++) {
        f->client_port = free_port();
        f->peer_port = free_port();
        free(f->url);
        f->url = st_sprintf("etcd://127.0.0.1:%d", f->client_port);
        if (f->client_port <= 0 || f->peer_port <= 0 || f->client_port == f->peer_port ||
            etcd_start(f) < 0)
            etcd_kill(f);
    }
    if (!f->etcd) {
        fprintf(stderr, "etcd did not start; its log is in %s/etcd.log\n", f->dir);
        return -1;
    }
    st_autoptr(st_err) err = NULL;
    if (st_kv_open(f->url, NULL, &f->kv, &err) < 0) {
        fprintf(stderr, "st_kv_open: %s\n", st_err_msg(err));
        return -1;
    }
    f->id = open_identity(f, NULL);
    if (st_identity_bootstrap(f->id, &f->admin_password, &err) < 0) {
        fprintf(stderr, "bootstrap: %s\n", st_err_msg(err));
        return -1;
    }
    return 0;
}

static int teardown_etcd(void **state)
{
    struct fixture *f = *state;
    if (!f)
        return 0;
    st_identity_free(f->id);
    st_kv_close(f->kv);
    etcd_kill(f);
    nftw(f->dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
    free(f->url);
    free(f->admin_password);
    free(f);
    return 0;
}

/* While the store is down a login is not "wrong credentials" (401) but the
 * store's error (503 at the API), and counts as no failed attempt; a token
 * is not taken from the cache, which may miss revocations meanwhile. */
static void test_store_down(void **state)
{
    struct fixture *f = *state;
    if (!f)
        skip();
    st_autoptr(st_err) err = NULL;
    st_autofree char *secret = NULL;
    assert_ok(login(f->id, "admin", f->admin_password, "admin", NULL, &secret, NULL, &err));
    wait_in_sync(f->id);
    assert_ok(validate(f->id, secret));

    etcd_kill(f);
    for (int i = 0; i < 8; i++) { /* more than the 5 failures a user may have */
        st_err_clear(&err);
        int r = login(f->id, "admin", f->admin_password, "admin", "10.0.0.1", NULL, NULL, &err);
        if (r == 0 || r == -EACCES || r == -EBUSY)
            fail_msg("login with etcd down: %d %s", r, st_err_msg(err));
        if (!strstr(st_err_msg(err), "etcd at "))
            fail_msg("login with etcd down: '%s' does not name etcd", st_err_msg(err));
    }
    print_message("login with etcd down: %s\n", st_err_msg(err));
    /* the watch notices, and the token is no longer taken from the cache */
    int r = 0;
    for (int i = 0; i < 300 && r == 0; i++) {
        r = validate(f->id, secret);
        if (r == 0)
            usleep(10 * 1000);
    }
    assert_true(r < 0 && r != -EACCES);

    /* etcd back: the same logins work at once (none was counted) */
    assert_int_equal(etcd_start(f), 0);
    r = -1;
    for (int i = 0; i < 100 && r != 0; i++) {
        st_err_clear(&err);
        r = login(f->id, "admin", f->admin_password, "admin", "10.0.0.1", NULL, NULL, &err);
        if (r == -EACCES || r == -EBUSY)
            fail_msg("login after etcd came back: %s", st_err_msg(err));
        if (r != 0)
            usleep(50 * 1000);
    }
    assert_ok(r);
    wait_in_sync(f->id);
    assert_ok(validate(f->id, secret));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_policy_builtin_roles),
        cmocka_unit_test(test_policy_custom_roles),
        cmocka_unit_test(test_password_cheap),
        cmocka_unit_test(test_password_default_cost),
        cmocka_unit_test(test_ratelimit_table),
        cmocka_unit_test(test_new_rejects_bad_config),
        cmocka_unit_test_setup_teardown(test_bootstrap, setup, teardown),
        cmocka_unit_test_setup_teardown(test_project_crud, setup, teardown),
        cmocka_unit_test_setup_teardown(test_user_crud, setup, teardown),
        cmocka_unit_test_setup_teardown(test_role_crud, setup, teardown),
        cmocka_unit_test_setup_teardown(test_concurrent_create, setup, teardown),
        cmocka_unit_test_setup_teardown(test_grants, setup, teardown),
        cmocka_unit_test_setup_teardown(test_auth_variants, setup, teardown),
        cmocka_unit_test_setup_teardown(test_rate_limit, setup, teardown),
        cmocka_unit_test_setup_teardown(test_token_validate_revoke, setup, teardown),
        cmocka_unit_test_setup_teardown(test_token_expiry, setup, teardown),
        cmocka_unit_test_setup_teardown(test_revoke_user, setup, teardown),
        cmocka_unit_test_setup_teardown(test_token_survives_reopen, setup, teardown),
        cmocka_unit_test_setup_teardown(test_validate_concurrent, setup, teardown),
        cmocka_unit_test_setup_teardown(test_revocation_reaches_other_instance, setup, teardown),
        cmocka_unit_test_setup_teardown(test_role_rules_reach_other_instance, setup, teardown),
        cmocka_unit_test_setup_teardown(test_watch_resync_after_compaction, setup, teardown),
        cmocka_unit_test_setup_teardown(test_store_down, setup_etcd, teardown_etcd),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
