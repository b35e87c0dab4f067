/* Unit tests of the Neutron v2.0 API (src/api/neutron*.c): requests over
 * real HTTP to the daemon's whole router on a temp store, as members of two
 * projects and an admin, checking what a client sees: the shapes the CLI
 * needs (tenant_id, a network's subnets, a subnet's allocation_pools and
 * host_routes lists, a new group's rules), 404s for names in the id position,
 * filters, Neutron's error types for 400/403/404/409, project isolation,
 * routers with their interfaces and floating IPs, extensions and quotas. */
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
#include "identity/identity.h"
#include "lib/cleanup.h"
#include "lib/json.h"
#include "store/kv.h"

#define NET "/network/v2.0"

struct fixture {
    char dir[64];
    struct st_kv *kv;
    struct st_identity *identity;
    struct st_api_app app;
    struct st_router *router;
    struct st_api_server *srv;
    char base[64];
    char *project_a, *project_b;
    char *tok_a, *tok_b, *tok_reader_a, *tok_admin;
};

static struct fixture fx;

static char *id_of(json_t *doc)
{
    return st_strdup(json_string_value(json_object_get(doc, "id")));
}

static char *make_project(const char *name)
{
    st_autoptr(json_t) req = json_pack("{s:s}", "name", name);
    st_autoptr(json_t) doc = NULL;
    assert_int_equal(st_identity_project_create(fx.identity, req, &doc, NULL), 0);
    return id_of(doc);
}

static void make_user(const char *name, const char *project_id, const char *role)
{
    st_autoptr(json_t) req = json_pack("{s:s, s:s}", "name", name, "password", "pw");
    st_autoptr(json_t) doc = NULL;
    assert_int_equal(st_identity_user_create(fx.identity, req, &doc, NULL), 0);
    st_autoptr(json_t) r = NULL;
    assert_int_equal(st_identity_role_find(fx.identity, role, &r, NULL), 0);
    assert_int_equal(st_identity_grant_add(fx.identity, project_id,
                                           json_string_value(json_object_get(doc, "id")),
                                           json_string_value(json_object_get(r, "id")), NULL),
                     0);
}

static char *login(const char *user, const char *password, const char *project_name)
{
    struct st_auth_request ar = {
        .user_name = user, .password = password, .project_name = project_name, .peer = "test"};
    char *secret = NULL;
    st_autoptr(st_token) t = NULL;
    st_autoptr(st_err) err = NULL;
    if (st_identity_authenticate(fx.identity, &ar, &secret, &t, &err) < 0)
        fail_msg("login %s: %s", user, st_err_msg(err));
    return secret;
}

static int setup(void **state)
{
    (void)state;
    strcpy(fx.dir, "/tmp/st-test-neutron-XXXXXX");
    assert_non_null(mkdtemp(fx.dir));
    st_autofree char *db = st_sprintf("%s/stratos.db", fx.dir);
    assert_int_equal(st_kv_open(db, NULL, &fx.kv, NULL), 0);
    struct st_identity_config icfg = {.cost = {1, 64, 1}};
    assert_int_equal(st_identity_new(fx.kv, &icfg, &fx.identity, NULL), 0);
    st_autofree char *admin_pw = NULL;
    assert_int_equal(st_identity_bootstrap(fx.identity, &admin_pw, NULL), 0);
    fx.project_a = make_project("proj-a");
    fx.project_b = make_project("proj-b");
    make_user("member-a", fx.project_a, "member");
    make_user("reader-a", fx.project_a, "reader");
    make_user("member-b", fx.project_b, "member");
    fx.tok_a = login("member-a", "pw", "proj-a");
    fx.tok_reader_a = login("reader-a", "pw", "proj-a");
    fx.tok_b = login("member-b", "pw", "proj-b");
    fx.tok_admin = login("admin", admin_pw, "admin");

    fx.app = (struct st_api_app){
        .kv = fx.kv, .identity = fx.identity, .data_dir = fx.dir, .public_url = "http://127.0.0.1"};
    fx.router = st_router_new(&fx.app);
    struct st_api_system sys = {.role = "all"};
    st_autoptr(st_err) err = NULL;
    if (st_daemon_routes_register(fx.router, &fx.app, &sys, &err) < 0)
        fail_msg("routes: %s", st_err_msg(err));
    struct st_api_server_config scfg = {
        .listen = "127.0.0.1:0", .threads = 2, .body_limit = 64 * 1024};
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
    char *strs[] = {fx.project_a, fx.project_b, fx.tok_a, fx.tok_b, fx.tok_reader_a, fx.tok_admin};
    for (size_t i = 0; i < ST_ARRAY_SIZE(strs); i++)
        free(strs[i]);
    curl_global_cleanup();
    st_autofree char *cmd = st_sprintf("rm -rf %s", fx.dir);
    return system(cmd) == 0 ? 0 : -1;
}

/* ---- a small client ---- */

struct buf {
    char *data;
    size_t len;
};

static size_t collect(char *p, size_t size, size_t n, void *userdata)
{
    struct buf *b = userdata;
    b->data = st_xrealloc(b->data, b->len + size * n + 1);
    memcpy(b->data + b->len, p, size * n);
    b->len += size * n;
    b->data[b->len] = '\0';
    return size * n;
}

/* One request; returns the status and the parsed body in *ret (NULL when
 * empty; a JSON string holding the text when it is not JSON). */
static long call(const char *token, const char *method, const char *path, const char *body,
                 json_t **ret)
{
    CURL *c = curl_easy_init();
    st_autofree char *url = st_sprintf("%s%s", fx.base, path);
    struct curl_slist *h = NULL;
    st_autofree char *th = token ? st_sprintf("X-Auth-Token: %s", token) : NULL;
    if (th)
        h = curl_slist_append(h, th);
    h = curl_slist_append(h, "Content-Type: application/json");
    struct buf b = {0};
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
    if (body)
        curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, collect);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &b);
    curl_easy_setopt(c, CURLOPT_TIMEOUT, 20L);
    long status = 0;
    if (curl_easy_perform(c) == CURLE_OK)
        curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
    curl_slist_free_all(h);
    curl_easy_cleanup(c);
    *ret = NULL;
    if (b.len) {
        *ret = json_loadb(b.data, b.len, 0, NULL);
        if (!*ret)
            *ret = json_string(b.data);
    }
    free(b.data);
    return status;
}

/* Expects want; returns the body (new reference). */
static json_t *ok(const char *token, const char *method, const char *path, long want,
                  const char *body)
{
    json_t *out = NULL;
    long got = call(token, method, path, body, &out);
    if (got != want) {
        st_autofree char *text = out ? st_json_dumps(out) : st_strdup("");
        fail_msg("%s %s: got %ld, want %ld: %s", method, path, got, want, text);
    }
    return out;
}

/* Expects a Neutron error of status want and type; returns its message (copy). */
static char *fails(const char *token, const char *method, const char *path, const char *body,
                   long want, const char *type)
{
    st_autoptr(json_t) out = NULL;
    long got = call(token, method, path, body, &out);
    st_autofree char *text = out ? st_json_dumps(out) : st_strdup("");
    if (got != want)
        fail_msg("%s %s: got %ld, want %ld: %s", method, path, got, want, text);
    json_t *e = json_object_get(out, "NeutronError");
    if (!json_is_object(e) || !json_is_string(json_object_get(e, "detail")))
        fail_msg("%s %s: not a NeutronError: %s", method, path, text);
    const char *t = json_string_value(json_object_get(e, "type"));
    if (!t || strcmp(t, type) != 0)
        fail_msg("%s %s: type %s, want %s: %s", method, path, t ? t : "(none)", type, text);
    return st_strdup(json_string_value(json_object_get(e, "message")));
}

/* As fails(), when the message does not matter. */
static void expect(const char *token, const char *method, const char *path, const char *body,
                   long want, const char *type)
{
    free(fails(token, method, path, body, want, type));
}

static const char *str(json_t *doc, const char *key)
{
    return json_string_value(json_object_get(doc, key));
}

/* Creates a resource as token; returns the inner object (new reference). */
static json_t *create(const char *token, const char *collection, const char *key, const char *body)
{
    st_autofree char *path = st_sprintf(NET "/%s", collection);
    st_autoptr(json_t) out = ok(token, "POST", path, 201, body);
    json_t *inner = json_object_get(out, key);
    assert_true(json_is_object(inner));
    return json_incref(inner);
}

static void del(const char *token, const char *collection, const char *id)
{
    st_autofree char *path = st_sprintf(NET "/%s/%s", collection, id);
    st_autoptr(json_t) out = ok(token, "DELETE", path, 204, NULL);
    assert_null(out);
}

/* The rows of a list (new reference). */
static json_t *list(const char *token, const char *collection, const char *query)
{
    st_autofree char *path =
        st_sprintf(NET "/%s%s%s", collection, query ? "?" : "", query ? query : "");
    st_autoptr(json_t) out = ok(token, "GET", path, 200, NULL);
    st_autofree char *key = st_strdup(collection);
    for (char *p = key; *p; p++)
        if (*p == '-')
            *p = '_';
    json_t *rows = json_object_get(out, key);
    assert_true(json_is_array(rows));
    return json_incref(rows);
}

static bool has_row(json_t *rows, const char *key, const char *value)
{
    size_t i;
    json_t *row;
    json_array_foreach(rows, i,
                       row) if (str(row, key) && strcmp(str(row, key), value) == 0) return true;
    return false;
}

static json_t *make_network(const char *token, const char *name)
{
    st_autofree char *body = st_sprintf("{\"network\": {\"name\": \"%s\", \"admin_state_up\": "
                                        "true}}",
                                        name);
    return create(token, "networks", "network", body);
}

static json_t *make_subnet(const char *token, const char *net_id, const char *name,
                           const char *cidr)
{
    st_autofree char *body = st_sprintf("{\"subnet\": {\"name\": \"%s\", \"network_id\": \"%s\", "
                                        "\"cidr\": \"%s\", \"ip_version\": 4}}",
                                        name, net_id, cidr);
    return create(token, "subnets", "subnet", body);
}

static json_t *make_port(const char *token, const char *net_id, const char *name)
{
    st_autofree char *body =
        st_sprintf("{\"port\": {\"name\": \"%s\", \"network_id\": \"%s\"}}", name, net_id);
    return create(token, "ports", "port", body);
}

/* ---- tests ---- */

static void test_versions_catalog_extensions(void **state)
{
    (void)state;
    st_autoptr(json_t) versions = ok(NULL, "GET", "/network", 200, NULL);
    json_t *v = json_array_get(json_object_get(versions, "versions"), 0);
    assert_string_equal(str(v, "id"), "v2.0");
    assert_string_equal(str(v, "status"), "CURRENT");
    st_autoptr(json_t) slash = ok(NULL, "GET", "/network/", 200, NULL);
    assert_true(json_equal(slash, versions));
    st_autoptr(json_t) resources = ok(NULL, "GET", NET, 200, NULL);
    assert_true(json_array_size(json_object_get(resources, "resources")) >= 7);

    /* the catalog sends clients to <public>/network (they add /v2.0) */
    st_autoptr(json_t) auth = NULL;
    const char *login_body =
        "{\"auth\": {\"identity\": {\"methods\": [\"password\"], \"password\": {\"user\": "
        "{\"name\": \"member-a\", \"domain\": {\"id\": \"default\"}, \"password\": \"pw\"}}}, "
        "\"scope\": {\"project\": {\"name\": \"proj-a\", \"domain\": {\"id\": \"default\"}}}}}";
    assert_int_equal(call(NULL, "POST", "/identity/v3/auth/tokens", login_body, &auth), 201);
    bool found = false;
    size_t i;
    json_t *entry;
    json_array_foreach(json_object_get(json_object_get(auth, "token"), "catalog"), i, entry)
    {
        if (strcmp(str(entry, "type"), "network") != 0)
            continue;
        found = true;
        json_t *ep = json_array_get(json_object_get(entry, "endpoints"), 0);
        assert_string_equal(str(ep, "url"), "http://127.0.0.1/network");
        assert_string_equal(str(ep, "interface"), "public");
    }
    assert_true(found);

    /* extensions need a token; the ones the CLI asks about are there */
    expect(NULL, "GET", NET "/extensions", NULL, 401, "HTTPUnauthorized");
    st_autoptr(json_t) exts = list(fx.tok_reader_a, "extensions", NULL);
    const char *want[] = {"router",        "external-net", "security-group",
                          "port-security", "extraroute",   "standard-attr-description",
                          "ext-gw-mode",   "quotas"};
    for (size_t k = 0; k < ST_ARRAY_SIZE(want); k++)
        if (!has_row(exts, "alias", want[k]))
            fail_msg("extension %s not listed", want[k]);
    st_autoptr(json_t) one = ok(fx.tok_a, "GET", NET "/extensions/router", 200, NULL);
    assert_string_equal(str(json_object_get(one, "extension"), "name"), "Neutron L3 Router");
    /* not served, so not listed: the SDK then sets tags after a create */
    st_autofree char *m2 = fails(fx.tok_a, "GET", NET "/extensions/tag-ports-during-bulk-creation",
                                 NULL, 404, "HTTPNotFound");
    assert_string_equal(m2, "Extension with alias tag-ports-during-bulk-creation does not exist");
    /* a path no route claims answers in Neutron's shape too */
    expect(fx.tok_a, "GET", NET "/nonsense", NULL, 404, "HTTPNotFound");
    ;
}

static void test_networks_and_subnets(void **state)
{
    (void)state;
    st_autoptr(json_t) net = make_network(fx.tok_a, "private");
    const char *net_id = str(net, "id");
    assert_string_equal(str(net, "name"), "private");
    assert_string_equal(str(net, "tenant_id"), fx.project_a);
    assert_string_equal(str(net, "project_id"), fx.project_a);
    assert_string_equal(str(net, "status"), "ACTIVE");
    assert_true(json_is_array(json_object_get(net, "subnets")));
    assert_int_equal(json_array_size(json_object_get(net, "subnets")), 0);
    assert_true(json_is_true(json_object_get(net, "admin_state_up")));
    assert_true(json_is_false(json_object_get(net, "shared")));
    assert_true(json_is_false(json_object_get(net, "router:external")));
    assert_int_equal(json_integer_value(json_object_get(net, "mtu")), 1450);
    assert_string_equal(str(net, "provider:network_type"), "vxlan");
    assert_true(json_is_array(json_object_get(net, "availability_zone_hints")));

    /* the CLI's lookup: the name where an id goes is a 404, then ?name= */
    st_autofree char *m =
        fails(fx.tok_a, "GET", NET "/networks/private", NULL, 404, "NetworkNotFound");
    assert_string_equal(m, "Network private could not be found.");
    st_autoptr(json_t) byname = list(fx.tok_a, "networks", "name=private");
    assert_int_equal(json_array_size(byname), 1);
    assert_string_equal(str(json_array_get(byname, 0), "id"), net_id);

    st_autoptr(json_t) sn = make_subnet(fx.tok_a, net_id, "private-subnet", "10.0.2.0/24");
    const char *sn_id = str(sn, "id");
    assert_string_equal(str(sn, "cidr"), "10.0.2.0/24");
    assert_string_equal(str(sn, "gateway_ip"), "10.0.2.1");
    assert_string_equal(str(sn, "network_id"), net_id);
    assert_string_equal(str(sn, "tenant_id"), fx.project_a);
    assert_int_equal(json_integer_value(json_object_get(sn, "ip_version")), 4);
    assert_true(json_is_true(json_object_get(sn, "enable_dhcp")));
    json_t *pools = json_object_get(sn, "allocation_pools");
    assert_true(json_is_array(pools));
    assert_int_equal(json_array_size(pools), 1);
    assert_string_equal(str(json_array_get(pools, 0), "start"), "10.0.2.2");
    assert_string_equal(str(json_array_get(pools, 0), "end"), "10.0.2.254");
    assert_true(json_is_array(json_object_get(sn, "host_routes")));
    assert_true(json_is_array(json_object_get(sn, "dns_nameservers")));

    /* the network lists its subnet (network list's Subnets column) */
    st_autofree char *npath = st_sprintf(NET "/networks/%s", net_id);
    st_autoptr(json_t) shown = ok(fx.tok_a, "GET", npath, 200, NULL);
    json_t *subnets = json_object_get(json_object_get(shown, "network"), "subnets");
    assert_int_equal(json_array_size(subnets), 1);
    assert_string_equal(json_string_value(json_array_get(subnets, 0)), sn_id);
    expect(fx.tok_a, "GET", NET "/subnets/private-subnet", NULL, 404, "SubnetNotFound");
    st_autoptr(json_t) snl = list(fx.tok_a, "subnets", "name=private-subnet");
    assert_int_equal(json_array_size(snl), 1);
    /* a reader reads */
    st_autoptr(json_t) rl = list(fx.tok_reader_a, "networks", "name=private");
    assert_int_equal(json_array_size(rl), 1);

    /* a subnet on a network that does not exist */
    expect(fx.tok_a, "POST", NET "/subnets",
           "{\"subnet\": {\"network_id\": "
           "\"00000000-0000-4000-8000-000000000000\", \"cidr\": "
           "\"10.1.0.0/24\", \"ip_version\": 4}}",
           404, "NetworkNotFound");

    /* update */
    st_autoptr(json_t) upd =
        ok(fx.tok_a, "PUT", npath, 200, "{\"network\": {\"description\": \"mine\"}}");
    assert_string_equal(str(json_object_get(upd, "network"), "description"), "mine");
    assert_string_equal(str(json_object_get(upd, "network"), "name"), "private");

    del(fx.tok_a, "subnets", sn_id);
    del(fx.tok_a, "networks", net_id);
    st_autofree char *m4 = fails(fx.tok_a, "GET", npath, NULL, 404, "NetworkNotFound");
    assert_int_equal(strncmp(m4, "Network ", 8), 0);
    ;
}

static void test_bad_requests(void **state)
{
    (void)state;
    const char *p = NET "/networks";
    st_autofree char *m1 = fails(fx.tok_a, "POST", p, "{\"network\": {", 400, "HTTPBadRequest");
    assert_non_null(strstr(m1, "Malformed request body"));
    expect(fx.tok_a, "POST", p, "[1]", 400, "HTTPBadRequest");
    st_autofree char *m3 =
        fails(fx.tok_a, "POST", p, "{\"net\": {\"name\": \"x\"}}", 400, "HTTPBadRequest");
    assert_string_equal(m3, "Unable to find 'network' in request body");
    expect(fx.tok_a, "POST", p, "{\"network\": \"x\"}", 400, "HTTPBadRequest");
    st_autofree char *m5 =
        fails(fx.tok_a, "POST", p, "{\"network\": {\"name\": \"x\", \"bogus\": 1}}", 400,
              "HTTPBadRequest");
    assert_string_equal(m5, "Unrecognized attribute(s) 'bogus'");
    expect(fx.tok_a, "POST", p, NULL, 400, "HTTPBadRequest");
    /* a service's validation comes through as Neutron's InvalidInput */
    st_autofree char *m7 =
        fails(fx.tok_a, "POST", p, "{\"network\": {\"name\": 5}}", 400, "InvalidInput");
    assert_non_null(strstr(m7, "Invalid input for name"));

    /* over the body limit: 413 in Neutron's shape, before the handler */
    size_t n = 100 * 1024;
    st_autofree char *big = st_xcalloc(1, n + 64);
    strcpy(big, "{\"network\": {\"name\": \"");
    memset(big + strlen(big), 'x', n);
    strcat(big, "\"}}");
    expect(fx.tok_a, "POST", p, big, 413, "HTTPRequestEntityTooLarge");

    /* only an admin makes external, shared or provider networks */
    st_autofree char *m9 =
        fails(fx.tok_a, "POST", p, "{\"network\": {\"name\": \"ext\", \"router:external\": true}}",
              403, "PolicyNotAuthorized");
    assert_string_equal(
        m9,
        "(rule:create_network and rule:create_network:router:external) is disallowed by policy");
    expect(fx.tok_a, "POST", p,
           "{\"network\": {\"name\": \"flat\", \"provider:network_type\": \"flat\"}}", 403,
           "PolicyNotAuthorized");
    /* ... but anyone may say "not external" */
    st_autoptr(json_t) internal =
        create(fx.tok_a, "networks", "network",
               "{\"network\": {\"name\": \"internal\", \"router:external\": false}}");
    st_autofree char *ipath = st_sprintf(NET "/networks/%s", str(internal, "id"));
    /* a member cannot create in another project, nor move a network */
    st_autofree char *other =
        st_sprintf("{\"network\": {\"name\": \"x\", \"project_id\": \"%s\"}}", fx.project_b);
    expect(fx.tok_a, "POST", p, other, 403, "PolicyNotAuthorized");
    st_autofree char *move = st_sprintf("{\"network\": {\"tenant_id\": \"%s\"}}", fx.project_b);
    st_autofree char *m12 = fails(fx.tok_a, "PUT", ipath, move, 400, "HTTPBadRequest");
    assert_string_equal(m12, "Cannot update read-only attribute tenant_id");
    /* a reader does not write */
    expect(fx.tok_reader_a, "POST", p, "{\"network\": {\"name\": \"r\"}}", 403, "HTTPForbidden");
    del(fx.tok_a, "networks", str(internal, "id"));
}

static void test_ports_and_conflicts(void **state)
{
    (void)state;
    st_autoptr(json_t) net = make_network(fx.tok_a, "pnet");
    const char *net_id = str(net, "id");
    st_autoptr(json_t) sn = make_subnet(fx.tok_a, net_id, "psub", "10.0.3.0/24");
    const char *sn_id = str(sn, "id");

    st_autoptr(json_t) port = make_port(fx.tok_a, net_id, "p1");
    const char *port_id = str(port, "id");
    assert_string_equal(str(port, "tenant_id"), fx.project_a);
    assert_string_equal(str(port, "network_id"), net_id);
    json_t *fip = json_array_get(json_object_get(port, "fixed_ips"), 0);
    assert_string_equal(str(fip, "subnet_id"), sn_id);
    assert_int_equal(strncmp(str(fip, "ip_address"), "10.0.3.", 7), 0);
    assert_int_equal(strncmp(str(port, "mac_address"), "fa:16:3e:", 9), 0);
    assert_true(json_is_array(json_object_get(port, "security_groups")));
    st_autofree char *m1 = fails(fx.tok_a, "GET", NET "/ports/p1", NULL, 404, "PortNotFound");
    assert_string_equal(m1, "Port p1 could not be found.");
    st_autoptr(json_t) byname = list(fx.tok_a, "ports", "name=p1");
    assert_int_equal(json_array_size(byname), 1);
    st_autoptr(json_t) bynet = list(fx.tok_a, "ports", NULL);
    assert_true(has_row(bynet, "id", port_id));

    /* the same address twice */
    st_autofree char *dup = st_sprintf(
        "{\"port\": {\"network_id\": \"%s\", \"fixed_ips\": [{\"ip_address\": \"%s\"}]}}", net_id,
        str(fip, "ip_address"));
    st_autofree char *m2 =
        fails(fx.tok_a, "POST", NET "/ports", dup, 409, "IpAddressAlreadyAllocated");
    assert_non_null(strstr(m2, str(fip, "ip_address")));

    /* in use: the network and the subnet keep their port */
    st_autofree char *npath = st_sprintf(NET "/networks/%s", net_id);
    expect(fx.tok_a, "DELETE", npath, NULL, 409, "NetworkInUse");
    st_autofree char *spath = st_sprintf(NET "/subnets/%s", sn_id);
    expect(fx.tok_a, "DELETE", spath, NULL, 409, "SubnetInUse");

    /* a pool with one address: the second port finds none (409, not 507) */
    st_autoptr(json_t) tiny = make_network(fx.tok_a, "tiny");
    st_autoptr(json_t) tsn = make_subnet(fx.tok_a, str(tiny, "id"), "tsub", "10.9.9.0/30");
    st_autoptr(json_t) t1 = make_port(fx.tok_a, str(tiny, "id"), "t1");
    st_autofree char *t2 = st_sprintf("{\"port\": {\"network_id\": \"%s\"}}", str(tiny, "id"));
    expect(fx.tok_a, "POST", NET "/ports", t2, 409, "IpAddressGenerationFailure");
    del(fx.tok_a, "ports", str(t1, "id"));
    del(fx.tok_a, "subnets", str(tsn, "id"));
    del(fx.tok_a, "networks", str(tiny, "id"));

    /* update, then delete in order */
    st_autofree char *ppath = st_sprintf(NET "/ports/%s", port_id);
    st_autoptr(json_t) upd = ok(fx.tok_a, "PUT", ppath, 200, "{\"port\": {\"name\": \"p1b\"}}");
    assert_string_equal(str(json_object_get(upd, "port"), "name"), "p1b");
    del(fx.tok_a, "ports", port_id);
    expect(fx.tok_a, "GET", ppath, NULL, 404, "PortNotFound");
    del(fx.tok_a, "subnets", sn_id);
    del(fx.tok_a, "networks", net_id);
}

static json_t *rules_of(const char *token, const char *sg_id, const char *extra)
{
    st_autofree char *q =
        st_sprintf("security_group_id=%s%s%s", sg_id, extra ? "&" : "", extra ? extra : "");
    return list(token, "security-group-rules", q);
}

static void test_security_groups(void **state)
{
    (void)state;
    /* exactly one default group, however often one asks */
    for (int i = 0; i < 2; i++) {
        st_autoptr(json_t) def = list(fx.tok_a, "security-groups", "name=default");
        assert_int_equal(json_array_size(def), 1);
    }
    st_autoptr(json_t) all = list(fx.tok_a, "security-groups",
                                  "fields=id&fields=name&fields=description&fields=project_id");
    assert_int_equal(json_array_size(all), 1);
    assert_string_equal(str(json_array_get(all, 0), "name"), "default");
    assert_string_equal(str(json_array_get(all, 0), "tenant_id"), fx.project_a);
    st_autofree char *m1 =
        fails(fx.tok_a, "GET", NET "/security-groups/default", NULL, 404, "SecurityGroupNotFound");
    assert_string_equal(m1, "Security group default does not exist");

    /* the default group is Neutron's: not twice, not deleted by a member */
    expect(fx.tok_a, "POST", NET "/security-groups",
           "{\"security_group\": {\"name\": \"default\"}}", 409,
           "SecurityGroupDefaultAlreadyExists");
    st_autofree char *dpath =
        st_sprintf(NET "/security-groups/%s", str(json_array_get(all, 0), "id"));
    expect(fx.tok_a, "DELETE", dpath, NULL, 409, "SecurityGroupCannotRemoveDefault");

    st_autoptr(json_t) web = create(fx.tok_a, "security-groups", "security_group",
                                    "{\"security_group\": {\"name\": \"web\", \"description\": "
                                    "\"web\"}}");
    const char *web_id = str(web, "id");
    assert_string_equal(str(web, "tenant_id"), fx.project_a);
    json_t *rules = json_object_get(web, "security_group_rules");
    assert_true(json_is_array(rules));
    assert_int_equal(json_array_size(rules), 2);
    size_t i;
    json_t *rule;
    json_array_foreach(rules, i, rule)
    {
        assert_string_equal(str(rule, "direction"), "egress");
        assert_true(json_is_null(json_object_get(rule, "remote_ip_prefix")));
        assert_string_equal(str(rule, "tenant_id"), fx.project_a);
    }

    st_autofree char *body = st_sprintf(
        "{\"security_group_rule\": {\"security_group_id\": \"%s\", \"direction\": \"ingress\", "
        "\"ethertype\": \"IPv4\", \"protocol\": \"tcp\", \"port_range_min\": 80, "
        "\"port_range_max\": 80, \"remote_ip_prefix\": \"0.0.0.0/0\"}}",
        web_id);
    st_autoptr(json_t) r80 = create(fx.tok_a, "security-group-rules", "security_group_rule", body);
    assert_string_equal(str(r80, "security_group_id"), web_id);
    assert_string_equal(str(r80, "direction"), "ingress");
    assert_string_equal(str(r80, "protocol"), "tcp");
    assert_int_equal(json_integer_value(json_object_get(r80, "port_range_min")), 80);
    assert_int_equal(json_integer_value(json_object_get(r80, "port_range_max")), 80);
    assert_string_equal(str(r80, "tenant_id"), fx.project_a);
    st_autofree char *m2 =
        fails(fx.tok_a, "POST", NET "/security-group-rules", body, 409, "SecurityGroupRuleExists");
    assert_non_null(strstr(m2, str(r80, "id")));

    st_autoptr(json_t) wr = rules_of(fx.tok_a, web_id, NULL);
    assert_int_equal(json_array_size(wr), 3);
    st_autoptr(json_t) ingress = rules_of(fx.tok_a, web_id, "direction=ingress");
    assert_int_equal(json_array_size(ingress), 1);
    assert_string_equal(str(json_array_get(ingress, 0), "id"), str(r80, "id"));
    /* repeated keys mean "any of" */
    st_autoptr(json_t) both = rules_of(fx.tok_a, web_id, "direction=ingress&direction=egress");
    assert_int_equal(json_array_size(both), 3);

    st_autofree char *bad = st_sprintf(
        "{\"security_group_rule\": {\"security_group_id\": \"%s\", \"direction\": \"ingress\", "
        "\"protocol\": \"tcp\", \"port_range_min\": 90, \"port_range_max\": 80}}",
        web_id);
    expect(fx.tok_a, "POST", NET "/security-group-rules", bad, 400,
           "SecurityGroupInvalidPortRange");
    st_autofree char *m4 = fails(fx.tok_a, "GET", NET "/security-group-rules/r80", NULL, 404,
                                 "SecurityGroupRuleNotFound");
    assert_string_equal(m4, "Security group rule r80 does not exist");

    /* another project sees only its own default */
    st_autoptr(json_t) theirs = list(fx.tok_b, "security-groups", NULL);
    assert_int_equal(json_array_size(theirs), 1);
    assert_string_equal(str(json_array_get(theirs, 0), "name"), "default");
    assert_string_equal(str(json_array_get(theirs, 0), "tenant_id"), fx.project_b);
    st_autofree char *wpath = st_sprintf(NET "/security-groups/%s", web_id);
    expect(fx.tok_b, "GET", wpath, NULL, 404, "SecurityGroupNotFound");

    /* in use by a port */
    st_autoptr(json_t) net = make_network(fx.tok_a, "sgnet");
    st_autoptr(json_t) sn = make_subnet(fx.tok_a, str(net, "id"), "sgsub", "10.0.4.0/24");
    st_autofree char *pbody =
        st_sprintf("{\"port\": {\"network_id\": \"%s\", \"security_groups\": [\"%s\"]}}",
                   str(net, "id"), web_id);
    st_autoptr(json_t) port = create(fx.tok_a, "ports", "port", pbody);
    assert_string_equal(
        json_string_value(json_array_get(json_object_get(port, "security_groups"), 0)), web_id);
    expect(fx.tok_a, "DELETE", wpath, NULL, 409, "SecurityGroupInUse");
    del(fx.tok_a, "ports", str(port, "id"));
    del(fx.tok_a, "subnets", str(sn, "id"));
    del(fx.tok_a, "networks", str(net, "id"));

    st_autoptr(json_t) upd =
        ok(fx.tok_a, "PUT", wpath, 200, "{\"security_group\": {\"description\": \"http\"}}");
    assert_string_equal(str(json_object_get(upd, "security_group"), "description"), "http");
    del(fx.tok_a, "security-group-rules", str(r80, "id"));
    st_autoptr(json_t) left = rules_of(fx.tok_a, web_id, NULL);
    assert_int_equal(json_array_size(left), 2);
    del(fx.tok_a, "security-groups", web_id);
    expect(fx.tok_a, "GET", wpath, NULL, 404, "SecurityGroupNotFound");
}

static void test_routers_and_floating_ips(void **state)
{
    (void)state;
    /* the admin's external network */
    st_autoptr(json_t) pub = create(fx.tok_admin, "networks", "network",
                                    "{\"network\": {\"name\": \"public\", \"router:external\": "
                                    "true, \"provider:network_type\": \"flat\", "
                                    "\"provider:physical_network\": \"external\"}}");
    const char *pub_id = str(pub, "id");
    assert_true(json_is_true(json_object_get(pub, "router:external")));
    assert_string_equal(str(pub, "provider:network_type"), "flat");
    st_autofree char *psb =
        st_sprintf("{\"subnet\": {\"name\": \"public-subnet\", \"network_id\": \"%s\", \"cidr\": "
                   "\"172.24.4.0/24\", \"ip_version\": 4, \"enable_dhcp\": false}}",
                   pub_id);
    st_autoptr(json_t) psn = create(fx.tok_admin, "subnets", "subnet", psb);
    assert_true(json_is_false(json_object_get(psn, "enable_dhcp")));

    /* members see it, and filter on it the way the CLI spells booleans */
    st_autoptr(json_t) ext = list(fx.tok_a, "networks", "router:external=True");
    assert_int_equal(json_array_size(ext), 1);
    assert_string_equal(str(json_array_get(ext, 0), "id"), pub_id);
    st_autoptr(json_t) pubname = list(fx.tok_a, "networks", "name=public");
    assert_int_equal(json_array_size(pubname), 1);

    st_autoptr(json_t) net = make_network(fx.tok_a, "rnet");
    st_autoptr(json_t) sn = make_subnet(fx.tok_a, str(net, "id"), "rsub", "10.0.5.0/24");
    st_autoptr(json_t) port = make_port(fx.tok_a, str(net, "id"), "rp1");

    st_autoptr(json_t) r1 = create(fx.tok_a, "routers", "router",
                                   "{\"router\": {\"name\": \"r1\", \"admin_state_up\": true}}");
    const char *r1_id = str(r1, "id");
    assert_string_equal(str(r1, "tenant_id"), fx.project_a);
    assert_true(json_is_null(json_object_get(r1, "external_gateway_info")));
    assert_true(json_is_array(json_object_get(r1, "routes")));
    assert_null(json_object_get(r1, "host"));
    expect(fx.tok_a, "GET", NET "/routers/r1", NULL, 404, "RouterNotFound");

    st_autofree char *rpath = st_sprintf(NET "/routers/%s", r1_id);
    st_autofree char *gw =
        st_sprintf("{\"router\": {\"external_gateway_info\": {\"network_id\": \"%s\"}}}", pub_id);
    st_autoptr(json_t) withgw = ok(fx.tok_a, "PUT", rpath, 200, gw);
    json_t *info = json_object_get(json_object_get(withgw, "router"), "external_gateway_info");
    assert_string_equal(str(info, "network_id"), pub_id);
    json_t *gwip = json_array_get(json_object_get(info, "external_fixed_ips"), 0);
    assert_int_equal(strncmp(str(gwip, "ip_address"), "172.24.4.", 9), 0);

    st_autofree char *addpath = st_sprintf("%s/add_router_interface", rpath);
    st_autofree char *ifbody = st_sprintf("{\"subnet_id\": \"%s\"}", str(sn, "id"));
    st_autoptr(json_t) iface = ok(fx.tok_a, "PUT", addpath, 200, ifbody);
    assert_string_equal(str(iface, "id"), r1_id);
    assert_string_equal(str(iface, "subnet_id"), str(sn, "id"));
    assert_string_equal(str(iface, "tenant_id"), fx.project_a);
    assert_non_null(str(iface, "port_id"));
    expect(fx.tok_a, "PUT", addpath, "{\"subnet_id\": ", 400, "HTTPBadRequest");
    expect(fx.tok_a, "PUT", NET "/routers/r1/add_router_interface", ifbody, 404, "RouterNotFound");

    st_autofree char *fbody =
        st_sprintf("{\"floatingip\": {\"floating_network_id\": \"%s\"}}", pub_id);
    st_autoptr(json_t) fip = create(fx.tok_a, "floatingips", "floatingip", fbody);
    const char *fip_id = str(fip, "id");
    assert_int_equal(strncmp(str(fip, "floating_ip_address"), "172.24.4.", 9), 0);
    assert_true(json_is_null(json_object_get(fip, "port_id")));
    assert_string_equal(str(fip, "tenant_id"), fx.project_a);
    st_autofree char *fpath = st_sprintf(NET "/floatingips/%s", fip_id);
    st_autofree char *assoc =
        st_sprintf("{\"floatingip\": {\"port_id\": \"%s\"}}", str(port, "id"));
    st_autoptr(json_t) fa = ok(fx.tok_a, "PUT", fpath, 200, assoc);
    json_t *fad = json_object_get(fa, "floatingip");
    assert_string_equal(str(fad, "port_id"), str(port, "id"));
    assert_int_equal(strncmp(str(fad, "fixed_ip_address"), "10.0.5.", 7), 0);
    assert_string_equal(str(fad, "router_id"), r1_id);
    st_autoptr(json_t) fips = list(fx.tok_a, "floatingips", NULL);
    assert_int_equal(json_array_size(fips), 1);
    st_autofree char *byip = st_sprintf(NET "/floatingips/%s", str(fip, "floating_ip_address"));
    expect(fx.tok_a, "GET", byip, NULL, 404, "FloatingIPNotFound");
    st_autoptr(json_t) none = list(fx.tok_b, "floatingips", NULL);
    assert_int_equal(json_array_size(none), 0);

    /* in use, then taken apart in reverse */
    expect(fx.tok_a, "DELETE", rpath, NULL, 409, "RouterInUse");
    st_autoptr(json_t) fu =
        ok(fx.tok_a, "PUT", fpath, 200, "{\"floatingip\": {\"port_id\": null}}");
    assert_true(json_is_null(json_object_get(json_object_get(fu, "floatingip"), "port_id")));
    del(fx.tok_a, "floatingips", fip_id);
    st_autofree char *rmpath = st_sprintf("%s/remove_router_interface", rpath);
    st_autoptr(json_t) rm = ok(fx.tok_a, "PUT", rmpath, 200, ifbody);
    assert_string_equal(str(rm, "subnet_id"), str(sn, "id"));
    /* `router unset --external-gateway` sends {} */
    st_autoptr(json_t) nogw =
        ok(fx.tok_a, "PUT", rpath, 200, "{\"router\": {\"external_gateway_info\": {}}}");
    assert_true(
        json_is_null(json_object_get(json_object_get(nogw, "router"), "external_gateway_info")));
    del(fx.tok_a, "routers", r1_id);
    del(fx.tok_a, "ports", str(port, "id"));
    del(fx.tok_a, "subnets", str(sn, "id"));
    del(fx.tok_a, "networks", str(net, "id"));
    del(fx.tok_admin, "subnets", str(psn, "id"));
    del(fx.tok_admin, "networks", pub_id);
}

static void test_projects_filters_quotas(void **state)
{
    (void)state;
    st_autoptr(json_t) n1 = make_network(fx.tok_a, "n1");
    st_autoptr(json_t) n2 = make_network(fx.tok_a, "n2");
    st_autoptr(json_t) n3 = make_network(fx.tok_a, "n3");
    st_autoptr(json_t) s1 = make_subnet(fx.tok_a, str(n1, "id"), "s1", "10.0.2.0/24");

    st_autoptr(json_t) two = list(fx.tok_a, "networks", "name=n1&name=n2");
    assert_int_equal(json_array_size(two), 2);
    assert_true(has_row(two, "name", "n1") && has_row(two, "name", "n2"));
    /* unknown filter keys are ignored, as Neutron does; fields= trims nothing */
    st_autoptr(json_t) every = list(fx.tok_a, "networks", "fields=id&bogus=1");
    assert_int_equal(json_array_size(every), 3);
    assert_non_null(str(json_array_get(every, 0), "name"));
    st_autoptr(json_t) bynet = list(fx.tok_a, "subnets", NULL);
    assert_int_equal(json_array_size(bynet), 1);
    st_autofree char *q = st_sprintf("network_id=%s", str(n2, "id"));
    st_autoptr(json_t) nosub = list(fx.tok_a, "subnets", q);
    assert_int_equal(json_array_size(nosub), 0);

    /* another project sees none of it, and may use the same names and CIDR */
    st_autoptr(json_t) theirs = list(fx.tok_b, "networks", NULL);
    assert_int_equal(json_array_size(theirs), 0);
    st_autofree char *apath = st_sprintf(NET "/networks/%s", str(n1, "id"));
    expect(fx.tok_b, "GET", apath, NULL, 404, "NetworkNotFound");
    expect(fx.tok_b, "DELETE", apath, NULL, 404, "NetworkNotFound");
    st_autofree char *bsub = st_sprintf(NET "/subnets/%s", str(s1, "id"));
    expect(fx.tok_b, "GET", bsub, NULL, 404, "SubnetNotFound");
    st_autoptr(json_t) bn = make_network(fx.tok_b, "n1");
    st_autoptr(json_t) bs = make_subnet(fx.tok_b, str(bn, "id"), "s1", "10.0.2.0/24");
    st_autoptr(json_t) bp = make_port(fx.tok_b, str(bn, "id"), "bp");
    st_autoptr(json_t) mine = list(fx.tok_a, "networks", "name=n1");
    assert_int_equal(json_array_size(mine), 1);
    assert_string_equal(str(json_array_get(mine, 0), "id"), str(n1, "id"));
    /* the admin's own project is scoped too, unless it names one */
    st_autoptr(json_t) adm = list(fx.tok_admin, "networks", NULL);
    assert_int_equal(json_array_size(adm), 0);
    st_autofree char *aq = st_sprintf("project_id=%s", fx.project_a);
    st_autoptr(json_t) adma = list(fx.tok_admin, "networks", aq);
    assert_int_equal(json_array_size(adma), 3);

    /* quotas: one's own, not another project's; usage counts one's own */
    st_autofree char *qa = st_sprintf(NET "/quotas/%s", fx.project_a);
    st_autoptr(json_t) quota = ok(fx.tok_reader_a, "GET", qa, 200, NULL);
    assert_int_equal(
        json_integer_value(json_object_get(json_object_get(quota, "quota"), "network")), 100);
    assert_int_equal(
        json_integer_value(json_object_get(json_object_get(quota, "quota"), "security_group_rule")),
        100);
    expect(fx.tok_b, "GET", qa, NULL, 404, "HTTPNotFound");
    st_autofree char *qd = st_sprintf("%s/details", qa);
    st_autoptr(json_t) details = ok(fx.tok_a, "GET", qd, 200, NULL);
    json_t *dn = json_object_get(json_object_get(details, "quota"), "network");
    assert_int_equal(json_integer_value(json_object_get(dn, "used")), 3);
    assert_int_equal(json_integer_value(json_object_get(dn, "limit")), 100);
    st_autofree char *qdef = st_sprintf("%s/default", qa);
    st_autoptr(json_t) defaults = ok(fx.tok_admin, "GET", qdef, 200, NULL);
    assert_true(json_equal(defaults, quota));

    del(fx.tok_b, "ports", str(bp, "id"));
    del(fx.tok_b, "subnets", str(bs, "id"));
    del(fx.tok_b, "networks", str(bn, "id"));
    del(fx.tok_a, "subnets", str(s1, "id"));
    del(fx.tok_a, "networks", str(n1, "id"));
    del(fx.tok_a, "networks", str(n2, "id"));
    del(fx.tok_a, "networks", str(n3, "id"));
}

/* Neutron's quota API: admins set and reset, everyone reads their own; a
 * create over the limit is Neutron's 409 OverQuota, and the usage shows. */
static void test_quota_api(void **state)
{
    (void)state;
    st_autofree char *qa = st_sprintf(NET "/quotas/%s", fx.project_a);
    const char *two = "{\"quota\": {\"network\": 2, \"port\": \"5\"}}";
    st_autofree char *m = fails(fx.tok_a, "PUT", qa, two, 403, "HTTPForbidden");
    assert_non_null(strstr(m, "network:quota:update"));
    expect(fx.tok_reader_a, "PUT", qa, two, 403, "HTTPForbidden");
    expect(fx.tok_a, "DELETE", qa, NULL, 403, "HTTPForbidden");
    st_autoptr(json_t) set = ok(fx.tok_admin, "PUT", qa, 200, two);
    json_t *q = json_object_get(set, "quota");
    assert_int_equal(json_integer_value(json_object_get(q, "network")), 2);
    assert_int_equal(json_integer_value(json_object_get(q, "port")), 5);
    assert_int_equal(json_integer_value(json_object_get(q, "subnet")), 100);
    assert_int_equal(json_integer_value(json_object_get(q, "subnetpool")), -1);
    st_autoptr(json_t) shown = ok(fx.tok_reader_a, "GET", qa, 200, NULL);
    assert_true(json_equal(shown, set));
    st_autofree char *qdef = st_sprintf("%s/default", qa);
    st_autoptr(json_t) defaults = ok(fx.tok_a, "GET", qdef, 200, NULL);
    assert_int_equal(
        json_integer_value(json_object_get(json_object_get(defaults, "quota"), "network")), 100);

    /* Neutron's words for a bad body */
    expect(fx.tok_admin, "PUT", qa, "{\"quota\": {\"bogus\": 1}}", 400, "HTTPBadRequest");
    st_autofree char *range =
        fails(fx.tok_admin, "PUT", qa, "{\"quota\": {\"network\": -5}}", 400, "InvalidInput");
    assert_string_equal(range, "Invalid input for network. Reason: '-5' is not in range -1 through "
                               "2147483647.");
    expect(fx.tok_admin, "PUT", qa, "{\"network\": 5}", 400, "HTTPBadRequest");

    /* the list: every project with quotas set for an admin, one's own for
     * anyone else */
    st_autoptr(json_t) all = ok(fx.tok_admin, "GET", NET "/quotas", 200, NULL);
    json_t *rows = json_object_get(all, "quotas");
    assert_int_equal(json_array_size(rows), 1);
    assert_string_equal(str(json_array_get(rows, 0), "project_id"), fx.project_a);
    assert_string_equal(str(json_array_get(rows, 0), "tenant_id"), fx.project_a);
    st_autoptr(json_t) theirs = ok(fx.tok_b, "GET", NET "/quotas", 200, NULL);
    assert_int_equal(json_array_size(json_object_get(theirs, "quotas")), 0);
    st_autoptr(json_t) mine = ok(fx.tok_a, "GET", NET "/quotas", 200, NULL);
    assert_int_equal(json_array_size(json_object_get(mine, "quotas")), 1);

    /* enforced: the third network is refused as Neutron refuses it */
    st_autoptr(json_t) n1 = make_network(fx.tok_a, "q1");
    st_autoptr(json_t) n2 = make_network(fx.tok_a, "q2");
    st_autofree char *over = fails(fx.tok_a, "POST", NET "/networks",
                                   "{\"network\": {\"name\": \"q3\"}}", 409, "OverQuota");
    assert_string_equal(over, "Quota exceeded for resources: ['network'].");
    st_autoptr(json_t) nb = make_network(fx.tok_b, "q3");
    st_autofree char *qd = st_sprintf("%s/details", qa);
    st_autoptr(json_t) details = ok(fx.tok_a, "GET", qd, 200, NULL);
    json_t *dn = json_object_get(json_object_get(details, "quota"), "network");
    assert_int_equal(json_integer_value(json_object_get(dn, "limit")), 2);
    assert_int_equal(json_integer_value(json_object_get(dn, "used")), 2);
    assert_int_equal(json_integer_value(json_object_get(dn, "reserved")), 0);
    del(fx.tok_a, "networks", str(n1, "id"));
    st_autoptr(json_t) n3 = make_network(fx.tok_a, "q3");

    /* reset: the defaults again, and gone from the list */
    st_autoptr(json_t) gone = ok(fx.tok_admin, "DELETE", qa, 204, NULL);
    assert_null(gone);
    st_autoptr(json_t) reset = ok(fx.tok_a, "GET", qa, 200, NULL);
    assert_true(json_equal(reset, defaults));
    st_autoptr(json_t) none = ok(fx.tok_admin, "GET", NET "/quotas", 200, NULL);
    assert_int_equal(json_array_size(json_object_get(none, "quotas")), 0);
    del(fx.tok_a, "networks", str(n2, "id"));
    del(fx.tok_a, "networks", str(n3, "id"));
    del(fx.tok_b, "networks", str(nb, "id"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_versions_catalog_extensions),
        cmocka_unit_test(test_networks_and_subnets),
        cmocka_unit_test(test_bad_requests),
        cmocka_unit_test(test_ports_and_conflicts),
        cmocka_unit_test(test_security_groups),
        cmocka_unit_test(test_routers_and_floating_ips),
        cmocka_unit_test(test_projects_filters_quotas),
        cmocka_unit_test(test_quota_api),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
