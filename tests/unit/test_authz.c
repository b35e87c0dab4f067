/* The authorization matrix, generated from the route table: every route
 * stratosd serves is requested over real HTTP with no token, a garbage, a
 * revoked and an expired token (all 401), and with reader, member and admin
 * tokens of one project and a member token of another, each answer checked
 * against the rule for the route's action. A route whose action has no rule
 * here fails the test: a new endpoint cannot slip in unchecked. */
#include <curl/curl.h>
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include "api/app.h"
#include "api/router.h"
#include "api/server.h"
#include "api/system.h"
#include "daemon/routes.h"
#include "identity/identity-priv.h"
#include "identity/identity.h"
#include "lib/cleanup.h"
#include "lib/json.h"
#include "store/kv.h"

struct fixture {
    char dir[64];
    struct st_kv *kv;
    struct st_identity *identity;
    struct st_api_app app;
    struct st_router *router;
    struct st_api_server *srv;
    char base[64];
    char *project_a, *project_b, *member_role, *user_member_a, *user_admin;
    char *tok_reader_a, *tok_member_a, *tok_member_b, *tok_admin, *tok_revoked, *tok_expired;
};

static struct fixture fx;

static char *json_id(json_t *doc)
{
    return st_strdup(json_string_value(json_object_get(doc, "id")));
}

static char *make_project(const char *name)
{
    st_autoptr(json_t) req = json_pack("{s:s}", "name", name);
    st_autoptr(json_t) doc = NULL;
    assert_int_equal(st_identity_project_create(fx.identity, req, &doc, NULL), 0);
    return json_id(doc);
}

static char *make_user(const char *name, const char *project_id, const char *role)
{
    st_autoptr(json_t) req = json_pack("{s:s, s:s}", "name", name, "password", "pw");
    st_autoptr(json_t) doc = NULL;
    assert_int_equal(st_identity_user_create(fx.identity, req, &doc, NULL), 0);
    st_autoptr(json_t) r = NULL;
    assert_int_equal(st_identity_role_find(fx.identity, role, &r, NULL), 0);
    char *uid = json_id(doc);
    assert_int_equal(st_identity_grant_add(fx.identity, project_id, uid,
                                           json_string_value(json_object_get(r, "id")), NULL),
                     0);
    return uid;
}

static char *login(const char *user, const char *password, const char *project_name)
{
    struct st_auth_request ar = {
        .user_name = user, .password = password, .project_name = project_name, .peer = "test"};
    char *secret = NULL;
    st_autoptr(st_token) t = NULL;
    st_autoptr(st_err) err = NULL;
    int r = st_identity_authenticate(fx.identity, &ar, &secret, &t, &err);
    if (r < 0)
        fail_msg("login %s: %s", user, st_err_msg(err));
    return secret;
}

static int64_t clock_13h_ago(void *data)
{
    (void)data;
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return ((int64_t)ts.tv_sec - 13 * 3600) * 1000;
}

static int setup(void **state)
{
    (void)state;
    strcpy(fx.dir, "/tmp/st-test-authz-XXXXXX");
    assert_non_null(mkdtemp(fx.dir));
    st_autofree char *db = st_sprintf("%s/stratos.db", fx.dir);
    assert_int_equal(st_kv_open(db, NULL, &fx.kv, NULL), 0);
    struct st_identity_config icfg = {.cost = {1, 64, 1}};
    assert_int_equal(st_identity_new(fx.kv, &icfg, &fx.identity, NULL), 0);
    st_autofree char *admin_pw = NULL;
    assert_int_equal(st_identity_bootstrap(fx.identity, &admin_pw, NULL), 0);

    fx.project_a = make_project("proj-a");
    fx.project_b = make_project("proj-b");
    st_autoptr(json_t) member = NULL;
    assert_int_equal(st_identity_role_find(fx.identity, "member", &member, NULL), 0);
    fx.member_role = json_id(member);
    free(make_user("reader-a", fx.project_a, "reader"));
    fx.user_member_a = make_user("member-a", fx.project_a, "member");
    free(make_user("member-b", fx.project_b, "member"));
    st_autoptr(json_t) admin = NULL;
    assert_int_equal(st_identity_user_find(fx.identity, "default", "admin", &admin, NULL), 0);
    fx.user_admin = json_id(admin);

    fx.tok_reader_a = login("reader-a", "pw", "proj-a");
    fx.tok_member_a = login("member-a", "pw", "proj-a");
    fx.tok_member_b = login("member-b", "pw", "proj-b");
    fx.tok_admin = login("admin", admin_pw, "admin");
    fx.tok_revoked = login("member-a", "pw", "proj-a");
    assert_int_equal(st_identity_revoke(fx.identity, fx.tok_revoked, NULL), 0);
    st_identity_set_clock(fx.identity, clock_13h_ago, NULL);
    fx.tok_expired = login("member-a", "pw", "proj-a");
    st_identity_set_clock(fx.identity, NULL, NULL);

    fx.app =
        (struct st_api_app){.kv = fx.kv, .identity = fx.identity, .public_url = "http://127.0.0.1"};
    fx.router = st_router_new(&fx.app);
    struct st_api_system sys = {.role = "all"};
    assert_int_equal(st_daemon_routes_register(fx.router, &fx.app, &sys, NULL), 0);
    struct st_api_server_config scfg = {.listen = "127.0.0.1:0", .threads = 2};
    assert_int_equal(st_api_server_start(&scfg, fx.router, &fx.srv, NULL), 0);
    snprintf(fx.base, sizeof(fx.base), "http://127.0.0.1:%u", st_api_server_port(fx.srv));
    curl_global_init(CURL_GLOBAL_DEFAULT);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    st_api_server_stop(fx.srv, 1000);
    st_router_free(fx.router);
    st_identity_free(fx.identity);
    st_kv_close(fx.kv);
    char *strs[] = {fx.project_a,  fx.project_b,    fx.member_role,  fx.user_member_a,
                    fx.user_admin, fx.tok_reader_a, fx.tok_member_a, fx.tok_member_b,
                    fx.tok_admin,  fx.tok_revoked,  fx.tok_expired};
    for (size_t i = 0; i < ST_ARRAY_SIZE(strs); i++)
        free(strs[i]);
    curl_global_cleanup();
    st_autofree char *cmd = st_sprintf("rm -rf %s", fx.dir);
    return system(cmd) == 0 ? 0 : -1;
}

static size_t discard(char *p, size_t size, size_t n, void *userdata)
{
    (void)p;
    (void)userdata;
    return size * n;
}

/* One request; returns the HTTP status. */
static long request(const char *method, const char *path, const char *token, const char *subject)
{
    CURL *c = curl_easy_init();
    st_autofree char *url = st_sprintf("%s%s", fx.base, path);
    struct curl_slist *h = NULL;
    st_autofree char *th = token ? st_sprintf("X-Auth-Token: %s", token) : NULL;
    st_autofree char *sh = subject ? st_sprintf("X-Subject-Token: %s", subject) : NULL;
    if (th)
        h = curl_slist_append(h, th);
    if (sh)
        h = curl_slist_append(h, sh);
    h = curl_slist_append(h, "Content-Type: application/json");
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
    if (strcmp(method, "HEAD") == 0)
        curl_easy_setopt(c, CURLOPT_NOBODY, 1L);
    if (strcmp(method, "POST") == 0 || strcmp(method, "PATCH") == 0 || strcmp(method, "PUT") == 0)
        curl_easy_setopt(c, CURLOPT_POSTFIELDS, "{}");
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, discard);
    curl_easy_setopt(c, CURLOPT_TIMEOUT, 10L);
    CURLcode rc = curl_easy_perform(c);
    long status = 0;
    if (rc == CURLE_OK)
        curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
    curl_slist_free_all(h);
    curl_easy_cleanup(c);
    return status;
}

/* The pattern with its parameters filled in: the target is project A's
 * (or member-a's, or the member role's), so "another project" is B. */
static char *fill(const char *pattern, const char *user_id)
{
    char out[512] = "";
    const char *p = pattern;
    while (*p) {
        const char *open = strchr(p, '{');
        if (!open) {
            strcat(out, p);
            break;
        }
        strncat(out, p, (size_t)(open - p));
        const char *close = strchr(open, '}');
        assert_non_null(close);
        size_t n = (size_t)(close - open - 1);
        const char *value = "unknown";
        if (strncmp(open + 1, "project_id", n) == 0)
            value = fx.project_a;
        else if (strncmp(open + 1, "user_id", n) == 0)
            value = user_id;
        else if (strncmp(open + 1, "role_id", n) == 0)
            value = fx.member_role;
        else if (strncmp(open + 1, "domain_id", n) == 0)
            value = "default";
        else
            fail_msg("no fixture for parameter in '%s'", pattern);
        strcat(out, value);
        p = close + 1;
    }
    return st_strdup(out);
}

static bool is_denied(long s)
{
    return s == 401 || s == 403;
}

static void check(const struct st_route *route, const char *who, long got, long want)
{
    if (got != want)
        fail_msg("%s %s (%s) as %s: got %ld, want %ld", route->method, route->pattern,
                 route->action, who, got, want);
}

static void check_allowed(const struct st_route *route, const char *who, long got)
{
    if (is_denied(got) || got == 0)
        fail_msg("%s %s (%s) as %s: got %ld, want it allowed", route->method, route->pattern,
                 route->action, who, got);
}

static size_t n_checked;

static void check_route(const struct st_route *route, void *userdata)
{
    (void)userdata;
    if (route->flags & ST_ROUTE_PUBLIC)
        return;
    const char *a = route->action;
    st_autofree char *path = fill(route->pattern, fx.user_member_a);
    const char *m = route->method;
    bool token_route = strncmp(a, "identity:token:", 15) == 0;
    /* Token routes act on X-Subject-Token: each caller names its own. */
    check(route, "nobody", request(m, path, NULL, NULL), 401);
    check(route, "garbage token", request(m, path, "not-a-token", "not-a-token"), 401);
    check(route, "revoked token", request(m, path, fx.tok_revoked, fx.tok_revoked), 401);
    check(route, "expired token", request(m, path, fx.tok_expired, fx.tok_expired), 401);

    if (token_route) {
        if (strcmp(m, "DELETE") == 0)
            return; /* revoking is exercised by the identity tests */
        if (strstr(route->pattern, "{user_id}")) {
            /* self service: one's own user, not another's (404, not 403) */
            check_allowed(route, "member-a on self",
                          request(m, path, fx.tok_member_a, fx.tok_member_a));
            check(route, "member-b on member-a", request(m, path, fx.tok_member_b, fx.tok_member_b),
                  404);
            check_allowed(route, "admin", request(m, path, fx.tok_admin, fx.tok_admin));
        } else {
            check_allowed(route, "reader-a", request(m, path, fx.tok_reader_a, fx.tok_reader_a));
            check_allowed(route, "member-b", request(m, path, fx.tok_member_b, fx.tok_member_b));
            /* another user's token is not found unless one is admin */
            check(route, "member-b on member-a's token",
                  request(m, path, fx.tok_member_b, fx.tok_member_a), 404);
            check_allowed(route, "admin on member-a's token",
                          request(m, path, fx.tok_admin, fx.tok_member_a));
        }
    } else if (strncmp(a, "identity:", 9) == 0) {
        /* identity administration: admins only, whatever the project */
        check(route, "reader-a", request(m, path, fx.tok_reader_a, NULL), 403);
        check(route, "member-a", request(m, path, fx.tok_member_a, NULL), 403);
        check(route, "member-b", request(m, path, fx.tok_member_b, NULL), 403);
        /* the admin may do it (success, or 400/404/409 for the test's data) */
        if (strcmp(m, "DELETE") != 0)
            check_allowed(route, "admin", request(m, path, fx.tok_admin, NULL));
    } else {
        fail_msg("route %s %s has action '%s' with no rule in the authorization matrix: "
                 "add one to tests/unit/test_authz.c",
                 route->method, route->pattern, a);
    }
    n_checked++;
}

static void test_matrix(void **state)
{
    (void)state;
    st_router_foreach(fx.router, check_route, NULL);
    assert_true(n_checked >= 20);
    printf("authorization matrix: %zu routes checked\n", n_checked);
}

/* The objects of one project are invisible to another project's members:
 * users of another project are answered 404, never 403. */
static void test_public_routes_need_no_token(void **state)
{
    (void)state;
    assert_int_equal(request("GET", "/identity/v3", NULL, NULL), 200);
    assert_int_equal(request("GET", "/version", NULL, NULL), 200);
    assert_int_equal(request("GET", "/healthz", NULL, NULL), 200);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_public_routes_need_no_token),
        cmocka_unit_test(test_matrix),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
