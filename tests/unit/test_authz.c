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
#include "compute/flavor.h"
#include "compute/keypair.h"
#include "compute/model.h"
#include "compute/resource_policy.h"
#include "compute/server_group.h"
#include "daemon/routes.h"
#include "identity/identity-priv.h"
#include "identity/identity.h"
#include "identity/policy.h"
#include "image/image.h"
#include "lib/cleanup.h"
#include "lib/json.h"
#include "network/network.h"
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
    char *image_a;   /* a private image of project A */
    char *flavor_id; /* a public flavor; member-a's keypair is "ka", project A's policy "gold" */
    char *server_a;  /* a server of project A (its document written directly) */
    char *group_a;   /* a server group of project A */
    /* project A's network, subnet, port, security group and rule, router
     * (with its gateway on an external network) and floating IP */
    char *net_a, *subnet_a, *port_a, *sg_a, *rule_a, *router_a, *fip_a;
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

/* Creates a network resource with the service (or fails the test). */
static char *make_net(int (*create)(struct st_kv *, const struct st_network_caller *, json_t *,
                                    json_t **, struct st_err **),
                      const struct st_network_caller *who, json_t *req)
{
    st_autoptr(json_t) doc = NULL;
    st_autoptr(st_err) err = NULL;
    if (create(fx.kv, who, req, &doc, &err) < 0)
        fail_msg("network fixture: %s", st_err_msg(err));
    json_decref(req);
    return json_id(doc);
}

static void make_network_fixtures(void)
{
    const struct st_network_caller a = {fx.project_a, fx.user_member_a, false};
    const struct st_network_caller admin = {fx.project_a, fx.user_admin, true};
    st_autofree char *ext = make_net(st_network_create, &admin,
                                     json_pack("{s:s, s:b, s:s, s:s}", "name", "ext",
                                               "router:external", 1, "provider:network_type",
                                               "flat", "provider:physical_network", "external"));
    free(make_net(st_subnet_create, &admin,
                  json_pack("{s:s, s:s, s:i, s:b}", "network_id", ext, "cidr", "172.24.4.0/24",
                            "ip_version", 4, "enable_dhcp", 0)));
    fx.net_a = make_net(st_network_create, &a, json_pack("{s:s}", "name", "net-a"));
    fx.subnet_a = make_net(st_subnet_create, &a,
                           json_pack("{s:s, s:s, s:i}", "network_id", fx.net_a, "cidr",
                                     "10.0.0.0/24", "ip_version", 4));
    fx.port_a = make_net(st_port_create, &a, json_pack("{s:s}", "network_id", fx.net_a));
    fx.sg_a = make_net(st_security_group_create, &a, json_pack("{s:s}", "name", "sg-a"));
    fx.rule_a = make_net(st_security_group_rule_create, &a,
                         json_pack("{s:s, s:s, s:s, s:i, s:i}", "security_group_id", fx.sg_a,
                                   "direction", "ingress", "protocol", "tcp", "port_range_min", 22,
                                   "port_range_max", 22));
    fx.router_a = make_net(st_router_create, &a,
                           json_pack("{s:s, s:{s:s}}", "name", "router-a", "external_gateway_info",
                                     "network_id", ext));
    fx.fip_a = make_net(st_floatingip_create, &a, json_pack("{s:s}", "floating_network_id", ext));
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

    st_autoptr(json_t) image_req =
        json_pack("{s:s, s:s, s:s, s:s}", "name", "img-a", "visibility", "private", "disk_format",
                  "raw", "container_format", "bare");
    st_autoptr(json_t) image = NULL;
    assert_int_equal(st_image_create(fx.kv, fx.project_a, image_req, &image, NULL), 0);
    fx.image_a = json_id(image);

    st_autoptr(json_t) flavor_req =
        json_pack("{s:s, s:i, s:i, s:i}", "name", "m1.authz", "vcpus", 1, "ram", 512, "disk", 1);
    st_autoptr(json_t) flavor = NULL;
    assert_int_equal(st_flavor_create(fx.kv, flavor_req, &flavor, NULL), 0);
    fx.flavor_id = json_id(flavor);
    st_autoptr(json_t) specs = json_pack("{s:s}", "quota:cpu_shares", "1024");
    assert_int_equal(st_flavor_set_extra_specs(fx.kv, fx.flavor_id, specs, NULL, NULL), 0);
    assert_int_equal(st_keypair_create(fx.kv, fx.user_member_a, "ka", NULL, NULL, NULL, NULL), 0);
    st_autoptr(json_t) policy = json_pack("{s:{s:{s:s}}}", "compute", "cpu", "shares", "high");
    assert_int_equal(st_resource_policy_put(fx.kv, fx.project_a, "gold", policy, NULL, NULL, NULL),
                     0);

    fx.server_a = st_strdup("5e7e7a11-0000-4000-8000-00000000000a");
    st_autoptr(json_t) server = json_pack(
        "{s:s, s:s, s:s, s:s, s:s, s:s, s:{s:{s:s}, s:{s:s}, s:s, s:{}, s:s, s:i, s:b, s:n}, "
        "s:{s:s}}",
        "id", fx.server_a, "name", "server-a", "project_id", fx.project_a, "user_id",
        fx.user_member_a, "created_at", "2026-01-01T00:00:00Z", "updated_at",
        "2026-01-01T00:00:00Z", "spec", "flavor", "id", fx.flavor_id, "image", "id", fx.image_a,
        "driver", "vm", "metadata", "power", "on", "reboot", 0, "deleted", 0, "host", "status",
        "state", "BUILD");
    st_autofree char *server_text = st_json_dumps(server);
    st_autofree char *server_key = st_sprintf("%s%s", ST_COMPUTE_SERVERS_PREFIX, fx.server_a);
    assert_int_equal(
        st_kv_put(fx.kv, server_key, server_text, strlen(server_text), ST_KV_ABSENT, NULL, NULL),
        0);

    const struct st_compute_caller cwho = {fx.project_a, fx.user_member_a, false};
    st_autoptr(json_t) group_req =
        json_pack("{s:s, s:[s]}", "name", "group-a", "policies", "anti-affinity");
    st_autoptr(json_t) group = NULL;
    assert_int_equal(st_server_group_create(fx.kv, &cwho, group_req, &group, NULL), 0);
    fx.group_a = json_id(group);

    make_network_fixtures();

    fx.app = (struct st_api_app){
        .kv = fx.kv, .identity = fx.identity, .data_dir = fx.dir, .public_url = "http://127.0.0.1"};
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
                    fx.tok_admin,  fx.tok_revoked,  fx.tok_expired,  fx.image_a,
                    fx.flavor_id,  fx.server_a,     fx.net_a,        fx.subnet_a,
                    fx.port_a,     fx.sg_a,         fx.rule_a,       fx.router_a,
                    fx.fip_a,      fx.group_a};
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

/* One request with a body for POST, PATCH and PUT; returns the HTTP status. */
static long request_body(const char *method, const char *path, const char *token,
                         const char *subject, const char *body)
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
        curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
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

/* One request (a body of "{}"); returns the HTTP status. */
static long request(const char *method, const char *path, const char *token, const char *subject)
{
    return request_body(method, path, token, subject, "{}");
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
        else if (strncmp(open + 1, "flavor_id", n) == 0)
            value = fx.flavor_id;
        else if (strncmp(open + 1, "spec_key", n) == 0)
            value = "quota:cpu_shares";
        else if (strncmp(open + 1, "keypair_name", n) == 0)
            value = "ka";
        else if (strncmp(open + 1, "policy_name", n) == 0)
            value = "gold";
        else if (strncmp(open + 1, "hypervisor_id", n) == 0)
            value = "1";
        else if (strncmp(open + 1, "image_id", n) == 0)
            value = fx.image_a;
        else if (strncmp(open + 1, "tag", n) == 0)
            value = "some-tag";
        else if (strncmp(open + 1, "server_id", n) == 0)
            value = fx.server_a;
        else if (strncmp(open + 1, "server_group_id", n) == 0)
            value = fx.group_a;
        else if (strncmp(open + 1, "node", n) == 0)
            value = "node-a";
        else if (strncmp(open + 1, "network_id", n) == 0)
            value = fx.net_a;
        else if (strncmp(open + 1, "subnet_id", n) == 0)
            value = fx.subnet_a;
        else if (strncmp(open + 1, "port_id", n) == 0)
            value = fx.port_a;
        else if (strncmp(open + 1, "security_group_id", n) == 0)
            value = fx.sg_a;
        else if (strncmp(open + 1, "rule_id", n) == 0)
            value = fx.rule_a;
        else if (strncmp(open + 1, "router_id", n) == 0)
            value = fx.router_a;
        else if (strncmp(open + 1, "floatingip_id", n) == 0)
            value = fx.fip_a;
        else if (strncmp(open + 1, "alias", n) == 0)
            value = "router";
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

/* Flavors (global: every project reads them, admins write them), keypairs
 * (member-a's), resource policies (project A's), hypervisors and services
 * (admins only). Returns false for the actions of other routes. */
static bool check_compute_catalog(const struct st_route *route, const char *path)
{
    static const char *const admin_only[] = {"compute:flavor:create",   "compute:flavor:delete",
                                             "compute:flavor:update",   "compute:flavor:access",
                                             "compute:hypervisor:list", "compute:hypervisor:show",
                                             "compute:service:list",    "compute:aggregate:list"};
    const char *a = route->action, *m = route->method;
    bool admin = false;
    for (size_t i = 0; i < ST_ARRAY_SIZE(admin_only); i++)
        admin = admin || strcmp(a, admin_only[i]) == 0;
    bool flavor = strncmp(a, "compute:flavor:", 15) == 0;
    if (!admin && !flavor && strncmp(a, "compute:keypair:", 16) != 0 &&
        strncmp(a, "compute:resource_policy:", 24) != 0)
        return false;
    bool del = strcmp(m, "DELETE") == 0;
    if (admin) {
        check(route, "reader-a", request(m, path, fx.tok_reader_a, NULL), 403);
        check(route, "member-a", request(m, path, fx.tok_member_a, NULL), 403);
        check(route, "member-b", request(m, path, fx.tok_member_b, NULL), 403);
        if (!del)
            check_allowed(route, "admin", request(m, path, fx.tok_admin, NULL));
        return true;
    }
    if (st_policy_action_is_read(a))
        check_allowed(route, "reader-a", request(m, path, fx.tok_reader_a, NULL));
    else
        check(route, "reader-a", request(m, path, fx.tok_reader_a, NULL), 403);
    /* a PUT of a policy creates it in one's own project when it is not there */
    bool foreign = strchr(route->pattern, '{') && !flavor && strcmp(m, "PUT") != 0;
    if (foreign)
        check(route, "member-b on A's", request(m, path, fx.tok_member_b, NULL), 404);
    else
        check_allowed(route, "member-b", request(m, path, fx.tok_member_b, NULL));
    /* deleting the fixture would leave the routes after it nothing to check */
    if (!del) {
        check_allowed(route, "member-a", request(m, path, fx.tok_member_a, NULL));
        check_allowed(route, "admin", request(m, path, fx.tok_admin, NULL));
    }
    return true;
}

/* Servers (server A is project A's), server groups (group A is project
 * A's), quotas (project A's; changing them is admin only) and limits (one's
 * own). Returns false for other actions. */
static bool check_compute_servers(const struct st_route *route, const char *path)
{
    const char *a = route->action, *m = route->method;
    if (strncmp(a, "compute:server:", 15) != 0 && strncmp(a, "compute:server_group:", 21) != 0 &&
        strncmp(a, "compute:quota:", 14) != 0 && strncmp(a, "compute:limit:", 14) != 0)
        return false;
    if (strcmp(a, "compute:quota:update") == 0) {
        check(route, "reader-a", request(m, path, fx.tok_reader_a, NULL), 403);
        check(route, "member-a", request(m, path, fx.tok_member_a, NULL), 403);
        check(route, "member-b", request(m, path, fx.tok_member_b, NULL), 403);
        check_allowed(route, "admin", request(m, path, fx.tok_admin, NULL));
        return true;
    }
    if (st_policy_action_is_read(a))
        check_allowed(route, "reader-a", request(m, path, fx.tok_reader_a, NULL));
    else
        check(route, "reader-a", request(m, path, fx.tok_reader_a, NULL), 403);
    if (strchr(route->pattern, '{'))
        check(route, "member-b on A's", request(m, path, fx.tok_member_b, NULL), 404);
    else
        check_allowed(route, "member-b", request(m, path, fx.tok_member_b, NULL));
    /* deleting the fixture would leave the routes after it nothing to check */
    if (strcmp(m, "DELETE") != 0) {
        check_allowed(route, "member-a", request(m, path, fx.tok_member_a, NULL));
        check_allowed(route, "admin", request(m, path, fx.tok_admin, NULL));
    }
    return true;
}

/* Neutron (project A's resources): readers read, members write, another
 * project's member does not find A's resources (404) but lists and creates
 * its own; quotas are per project; extensions are everyone's. An update
 * carries a real change (a description; an interface on A's subnet, then
 * off it again), so that what is checked is the policy, not the body. */
static bool check_network(const struct st_route *route, const char *path)
{
    const char *a = route->action, *m = route->method;
    if (strncmp(a, "network:", 8) != 0)
        return false;
    if (strcmp(a, "network:quota:update") == 0) {
        /* setting and resetting a project's quotas is admin only */
        check(route, "reader-a", request(m, path, fx.tok_reader_a, NULL), 403);
        check(route, "member-a", request(m, path, fx.tok_member_a, NULL), 403);
        check(route, "member-b", request(m, path, fx.tok_member_b, NULL), 403);
        check_allowed(route, "admin", request(m, path, fx.tok_admin, NULL));
        return true;
    }
    char body[256] = "{}";
    const char *coll = route->pattern + strlen("/network/v2.0/");
    static const char *const keys[][2] = {
        {"networks/", "network"}, {"subnets/", "subnet"},
        {"ports/", "port"},       {"security-groups/", "security_group"},
        {"routers/", "router"},   {"floatingips/", "floatingip"},
    };
    if (strstr(route->pattern, "_router_interface"))
        snprintf(body, sizeof(body), "{\"subnet_id\": \"%s\"}", fx.subnet_a);
    else if (strcmp(m, "PUT") == 0)
        for (size_t i = 0; i < ST_ARRAY_SIZE(keys); i++)
            if (strncmp(coll, keys[i][0], strlen(keys[i][0])) == 0)
                snprintf(body, sizeof(body), "{\"%s\": {\"description\": \"authz\"}}", keys[i][1]);
    if (st_policy_action_is_read(a))
        check_allowed(route, "reader-a", request_body(m, path, fx.tok_reader_a, NULL, body));
    else
        check(route, "reader-a", request_body(m, path, fx.tok_reader_a, NULL, body), 403);
    bool foreign = strchr(route->pattern, '{') && !strstr(route->pattern, "{alias}");
    long other = request_body(m, path, fx.tok_member_b, NULL, body);
    if (foreign)
        check(route, "member-b on A's", other, 404);
    else
        check_allowed(route, "member-b", other);
    /* deleting the fixture would leave the routes after it nothing to check */
    if (strcmp(m, "DELETE") != 0) {
        long mine = request_body(m, path, fx.tok_member_a, NULL, body);
        check_allowed(route, "member-a", mine);
        if (foreign && mine >= 400)
            fail_msg("%s %s as member-a: got %ld, want success", m, path, mine);
        check_allowed(route, "admin", request_body(m, path, fx.tok_admin, NULL, body));
    }
    return true;
}

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
    } else if (strcmp(a, "identity:project:show") == 0) {
        /* a project's own users read its record (Keystone's get_project:
         * project_id:%(target.project.id)s); another's is not found */
        check_allowed(route, "reader-a", request(m, path, fx.tok_reader_a, NULL));
        check_allowed(route, "member-a", request(m, path, fx.tok_member_a, NULL));
        check(route, "member-b on A's", request(m, path, fx.tok_member_b, NULL), 404);
        check_allowed(route, "admin", request(m, path, fx.tok_admin, NULL));
    } else if (strncmp(a, "identity:", 9) == 0) {
        /* identity administration: admins only, whatever the project */
        check(route, "reader-a", request(m, path, fx.tok_reader_a, NULL), 403);
        check(route, "member-a", request(m, path, fx.tok_member_a, NULL), 403);
        check(route, "member-b", request(m, path, fx.tok_member_b, NULL), 403);
        /* the admin may do it (success, or 400/404/409 for the test's data) */
        if (strcmp(m, "DELETE") != 0)
            check_allowed(route, "admin", request(m, path, fx.tok_admin, NULL));
    } else if (strncmp(a, "image:", 6) == 0) {
        /* project resources (image A is project A's, private): readers read,
         * members write, another project's member does not find it */
        bool on_image = strstr(route->pattern, "{image_id}") != NULL;
        long reader = request(m, path, fx.tok_reader_a, NULL);
        if (st_policy_action_is_read(a))
            check_allowed(route, "reader-a", reader);
        else
            check(route, "reader-a", reader, 403);
        long other = request(m, path, fx.tok_member_b, NULL);
        if (on_image)
            check(route, "member-b", other, 404);
        else
            check_allowed(route, "member-b", other);
        /* deleting the fixture would leave the routes after it nothing to check */
        bool deletes_fixture = strcmp(m, "DELETE") == 0 && on_image && !strstr(path, "/tags/");
        if (!deletes_fixture) {
            check_allowed(route, "member-a", request(m, path, fx.tok_member_a, NULL));
            check_allowed(route, "admin", request(m, path, fx.tok_admin, NULL));
        }
    } else if (check_compute_catalog(route, path) || check_compute_servers(route, path) ||
               check_network(route, path)) {
        /* checked there */
    } else if (strncmp(a, "internal:", 9) == 0) {
        /* the agents' API takes the node token only: no Keystone token opens it */
        check(route, "reader-a", request(m, path, fx.tok_reader_a, NULL), 401);
        check(route, "member-a", request(m, path, fx.tok_member_a, NULL), 401);
        check(route, "admin", request(m, path, fx.tok_admin, NULL), 401);
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
    assert_int_equal(request("GET", "/compute/v2.1", NULL, NULL), 200);
    assert_int_equal(request("GET", "/compute", NULL, NULL), 200);
    assert_int_equal(request("GET", "/network", NULL, NULL), 200);
    assert_int_equal(request("GET", "/network/v2.0", NULL, NULL), 200);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_public_routes_need_no_token),
        cmocka_unit_test(test_matrix),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
