/* Unit tests of the server service (compute/server.h), quotas, nodes and the
 * node token, then the internal API and the Nova servers API over real HTTP:
 * validation messages as Nova words them, the document a create writes,
 * list order and filters, quota enforcement under concurrent creates, the
 * delete paths, power actions and their 409s, agent reports (status merge,
 * the final removal), console tails, and the assignments long-poll. */
#include <curl/curl.h>
#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <cmocka.h>

#include "api/app.h"
#include "api/auth.h"
#include "api/internal.h"
#include "api/router.h"
#include "api/server.h"
#include "api/system.h"
#include "compute/flavor.h"
#include "compute/keypair.h"
#include "compute/model.h"
#include "compute/node.h"
#include "compute/node_token.h"
#include "compute/quota.h"
#include "compute/server.h"
#include "daemon/routes.h"
#include "identity/identity.h"
#include "image/image.h"
#include "lib/cleanup.h"
#include "lib/files.h"
#include "lib/json.h"
#include "lib/times.h"
#include "lib/uuid.h"
#include "network/network.h"
#include "store/kv.h"

#define PROJECT_A "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
#define PROJECT_B "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"
#define USER_A    "11111111111111111111111111111111"

struct fixture {
    char dir[64];
    struct st_kv *kv;
    char *flavor_id, *big_flavor_id, *image_id, *vm_image_id;
};

static struct fixture fx;

static const struct st_compute_caller who_a = {PROJECT_A, USER_A, false};
static const struct st_compute_caller who_b = {PROJECT_B, USER_A, false};

static char *id_of(json_t *doc)
{
    return st_strdup(json_string_value(json_object_get(doc, "id")));
}

static char *make_image(const char *name, const char *container_format)
{
    st_autofree char *path = st_sprintf("%s/%s.img", fx.dir, name);
    assert_int_equal(st_write_file_atomic(path, "rootfs-bytes", 12, 0600, NULL), 0);
    st_autoptr(json_t) attrs =
        json_pack("{s:s, s:s, s:s, s:s}", "name", name, "container_format", container_format,
                  "disk_format", "raw", "visibility", "public");
    st_autoptr(json_t) img = NULL;
    st_autoptr(st_err) err = NULL;
    if (st_image_import(fx.kv, fx.dir, PROJECT_A, attrs, path, &img, &err) < 0)
        fail_msg("image import: %s", st_err_msg(err));
    return id_of(img);
}

static char *make_flavor(const char *name, int vcpus, int ram)
{
    st_autoptr(json_t) req =
        json_pack("{s:s, s:i, s:i, s:i}", "name", name, "vcpus", vcpus, "ram", ram, "disk", 1);
    st_autoptr(json_t) f = NULL;
    st_autoptr(st_err) err = NULL;
    if (st_flavor_create(fx.kv, req, &f, &err) < 0)
        fail_msg("flavor create: %s", st_err_msg(err));
    return id_of(f);
}

static int setup(void **state)
{
    (void)state;
    strcpy(fx.dir, "/tmp/st-test-server-XXXXXX");
    assert_non_null(mkdtemp(fx.dir));
    st_autofree char *db = st_sprintf("%s/stratos.db", fx.dir);
    assert_int_equal(st_kv_open(db, NULL, &fx.kv, NULL), 0);
    fx.flavor_id = make_flavor("m1.small", 1, 512);
    fx.big_flavor_id = make_flavor("m1.big", 8, 16384);
    fx.image_id = make_image("busybox", "docker");
    fx.vm_image_id = make_image("disk", "bare");
    st_autoptr(json_t) kp = NULL;
    st_autofree char *priv = NULL;
    assert_int_equal(st_keypair_create(fx.kv, USER_A, "k1", NULL, &kp, &priv, NULL), 0);
    curl_global_init(CURL_GLOBAL_DEFAULT);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    st_kv_close(fx.kv);
    free(fx.flavor_id);
    free(fx.big_flavor_id);
    free(fx.image_id);
    free(fx.vm_image_id);
    curl_global_cleanup();
    st_autofree char *cmd = st_sprintf("rm -rf %s", fx.dir);
    return system(cmd) == 0 ? 0 : -1;
}

/* Every test starts from no servers, no usage, default quotas, no nodes. */
static int clean(void **state)
{
    (void)state;
    const char *prefixes[] = {ST_COMPUTE_SERVERS_PREFIX,     ST_COMPUTE_NODES_PREFIX,
                              ST_COMPUTE_ALLOCATIONS_PREFIX, ST_COMPUTE_CONSOLES_PREFIX,
                              ST_COMPUTE_QUOTAS_PREFIX,      ST_COMPUTE_USAGE_PREFIX,
                              ST_COMPUTE_CLAIMS_PREFIX};
    for (size_t p = 0; p < ST_ARRAY_SIZE(prefixes); p++) {
        st_autoptr(st_kv_list) l = NULL;
        assert_int_equal(st_kv_list(fx.kv, prefixes[p], NULL, 0, &l, NULL), 0);
        for (size_t i = 0; i < l->count; i++)
            assert_int_equal(st_kv_delete(fx.kv, l->entries[i].key, ST_KV_ANY, NULL, NULL), 0);
    }
    return 0;
}

static json_t *request(const char *name, const char *flavor, const char *image)
{
    return json_pack("{s:s, s:s, s:s}", "name", name, "flavorRef", flavor, "imageRef", image);
}

/* Creates a server as project A (or fails the test); returns its id. */
static char *create_ok(const char *name)
{
    st_autoptr(json_t) req = request(name, fx.flavor_id, fx.image_id);
    st_autoptr(json_t) doc = NULL;
    st_autoptr(st_err) err = NULL;
    if (st_compute_server_create(fx.kv, &who_a, req, NULL, &doc, &err) < 0)
        fail_msg("create %s: %s", name, st_err_msg(err));
    return id_of(doc);
}

/* Expects create(req) to fail with code and exactly msg. */
static void create_fails(json_t *req, const struct st_compute_caller *who, int code,
                         const char *msg)
{
    st_autoptr(json_t) doc = NULL;
    st_autoptr(st_err) err = NULL;
    int r = st_compute_server_create(fx.kv, who, req, NULL, &doc, &err);
    if (r != code)
        fail_msg("create gave %d (%s), want %d", r, err ? err->msg : "no error", code);
    if (msg && strcmp(err->msg, msg) != 0)
        fail_msg("message '%s', want '%s'", err->msg, msg);
}

static json_t *get(const char *id)
{
    json_t *doc = NULL;
    assert_int_equal(st_compute_server_get(fx.kv, id, &doc, NULL, NULL), 0);
    return doc;
}

static const char *sget(json_t *doc, const char *a, const char *b)
{
    json_t *o = json_object_get(doc, a);
    return json_string_value(b ? json_object_get(o, b) : o);
}

static void register_node(const char *name)
{
    st_autoptr(json_t) body =
        json_pack("{s:[s], s:{s:i, s:i, s:i, s:i}}", "drivers", "container", "capacity", "vcpus", 4,
                  "cpu_mhz", 2000, "memory_mb", 8192, "disk_gb", 100);
    st_autoptr(st_err) err = NULL;
    if (st_compute_node_put(fx.kv, name, body, NULL, &err) < 0)
        fail_msg("node put: %s", st_err_msg(err));
}

static int set_host_fn(json_t *doc, void *userdata, struct st_err **err)
{
    (void)err;
    json_object_set_new(json_object_get(doc, "spec"), "host", json_string(userdata));
    return 0;
}

/* What the scheduler does: an allocation entry, then spec.host. */
static void place(const char *id, const char *node)
{
    st_autofree char *key = st_sprintf("%s%s", ST_COMPUTE_ALLOCATIONS_PREFIX, node);
    st_autoptr(json_t) alloc = NULL;
    st_autoptr(st_kv_entry) e = NULL;
    int64_t rev = ST_KV_ABSENT;
    if (st_kv_get(fx.kv, key, &e, NULL) == 0) {
        alloc = json_loads(e->value, 0, NULL);
        rev = e->mod_rev;
    } else {
        alloc = json_pack("{s:{}}", "servers");
    }
    json_object_set_new(json_object_get(alloc, "servers"), id, json_pack("{s:i}", "vcpus", 1));
    st_autofree char *text = st_json_dumps(alloc);
    assert_int_equal(st_kv_put(fx.kv, key, text, strlen(text), rev, NULL, NULL), 0);
    assert_int_equal(st_compute_server_update(fx.kv, id, set_host_fn, (void *)node, NULL, NULL), 0);
}

static bool allocation_has(const char *node, const char *id)
{
    st_autofree char *key = st_sprintf("%s%s", ST_COMPUTE_ALLOCATIONS_PREFIX, node);
    st_autoptr(st_kv_entry) e = NULL;
    if (st_kv_get(fx.kv, key, &e, NULL) < 0)
        return false;
    st_autoptr(json_t) alloc = json_loads(e->value, 0, NULL);
    return json_object_get(json_object_get(alloc, "servers"), id) != NULL;
}

static void report(const char *id, const char *json)
{
    st_autoptr(json_t) body = json_loads(json, 0, NULL);
    assert_non_null(body);
    st_autoptr(st_err) err = NULL;
    if (st_compute_server_report(fx.kv, id, body, &err) < 0)
        fail_msg("report %s: %s", json, st_err_msg(err));
}

static int64_t usage_instances(const char *project)
{
    struct st_compute_quota_usage u;
    assert_int_equal(st_compute_quota_usage(fx.kv, project, &u, NULL), 0);
    return u.instances;
}

/* ---- create ---- */

static void test_create_document(void **state)
{
    (void)state;
    st_autoptr(json_t) req = request("web-01", fx.flavor_id, fx.image_id);
    json_object_set_new(req, "key_name", json_string("k1"));
    json_object_set_new(req, "metadata", json_pack("{s:s}", "role", "web"));
    json_object_set_new(req, "user_data", json_string("IyEvYmluL3NoCmVjaG8gaGkK"));
    /* a real network and group of the project (network/network.h) */
    struct st_network_caller nwho = {PROJECT_A, USER_A, false};
    st_autoptr(json_t) net = NULL;
    st_autoptr(json_t) subnet = NULL;
    st_autoptr(json_t) sg = NULL;
    st_autoptr(json_t) nreq = json_pack("{s:s}", "name", "net-1");
    assert_int_equal(st_network_create(fx.kv, &nwho, nreq, &net, NULL), 0);
    st_autoptr(json_t) sreq =
        json_pack("{s:s, s:O, s:s, s:i}", "name", "sub-1", "network_id", json_object_get(net, "id"),
                  "cidr", "10.9.0.0/24", "ip_version", 4);
    assert_int_equal(st_subnet_create(fx.kv, &nwho, sreq, &subnet, NULL), 0);
    st_autoptr(json_t) greq = json_pack("{s:s}", "name", "web-sg");
    assert_int_equal(st_security_group_create(fx.kv, &nwho, greq, &sg, NULL), 0);
    json_object_set_new(req, "networks", json_pack("[{s:O}]", "uuid", json_object_get(net, "id")));
    /* Nova's CLI sends the group's id in "name"; bodies show the name */
    json_object_set_new(req, "security_groups",
                        json_pack("[{s:O}]", "name", json_object_get(sg, "id")));
    json_object_set_new(req, "availability_zone", json_string("zone-a"));
    st_autoptr(json_t) doc = NULL;
    assert_int_equal(st_compute_server_create(fx.kv, &who_a, req, NULL, &doc, NULL), 0);
    st_autofree char *id = id_of(doc);
    assert_true(st_uuid_valid(id));

    /* readable at once, in BUILD, as stored */
    st_autoptr(json_t) got = get(id);
    assert_string_equal(sget(got, "name", NULL), "web-01");
    assert_string_equal(sget(got, "project_id", NULL), PROJECT_A);
    assert_string_equal(sget(got, "user_id", NULL), USER_A);
    assert_string_equal(st_compute_server_status(got), "BUILD");
    assert_string_equal(st_compute_server_vm_state(got), "building");
    assert_string_equal(st_compute_server_task_state(got), "scheduling");
    json_t *spec = json_object_get(got, "spec");
    assert_string_equal(sget(spec, "driver", NULL), "container");
    assert_string_equal(sget(spec, "flavor", "name"), "m1.small");
    assert_int_equal(json_integer_value(json_object_get(json_object_get(spec, "flavor"), "ram")),
                     512);
    assert_string_equal(sget(spec, "image", "id"), fx.image_id);
    assert_string_equal(sget(spec, "image", "container_format"), "docker");
    assert_string_equal(sget(spec, "key_name", NULL), "k1");
    assert_non_null(strstr(sget(spec, "public_key", NULL), "ssh-ed25519 "));
    assert_string_equal(sget(spec, "user_data", NULL), "IyEvYmluL3NoCmVjaG8gaGkK");
    assert_string_equal(sget(spec, "metadata", "role"), "web");
    assert_string_equal(sget(spec, "availability_zone", NULL), "zone-a");
    assert_string_equal(
        sget(json_array_get(json_object_get(spec, "security_groups"), 0), "name", NULL), "web-sg");
    assert_int_equal(json_array_size(json_object_get(spec, "networks")), 1);
    /* one port on net-1 with the subnet's first free address */
    json_t *port = json_array_get(json_object_get(spec, "ports"), 0);
    assert_non_null(port);
    assert_string_equal(sget(port, "network_name", NULL), "net-1");
    assert_string_equal(sget(port, "ip", NULL), "10.9.0.2");
    assert_true(json_is_null(json_object_get(spec, "host")));
    assert_true(json_is_false(json_object_get(spec, "deleted")));
    assert_string_equal(sget(spec, "power", NULL), "on");
    json_t *res = json_object_get(spec, "resources");
    assert_int_equal(json_integer_value(json_object_get(res, "vcpus")), 1);
    assert_int_equal(json_integer_value(json_object_get(res, "memory_mb")), 512);
    assert_int_equal(usage_instances(PROJECT_A), 1);

    /* a bare image is for the VM driver */
    st_autoptr(json_t) vreq = request("vm-01", fx.flavor_id, fx.vm_image_id);
    st_autoptr(json_t) vdoc = NULL;
    assert_int_equal(st_compute_server_create(fx.kv, &who_a, vreq, NULL, &vdoc, NULL), 0);
    assert_string_equal(sget(vdoc, "spec", "driver"), "vm");

    /* references may be links, as Nova accepts */
    st_autofree char *href = st_sprintf("http://x/compute/v2.1/flavors/%s", fx.flavor_id);
    st_autoptr(json_t) lreq = request("linked", href, fx.image_id);
    st_autoptr(json_t) ldoc = NULL;
    assert_int_equal(st_compute_server_create(fx.kv, &who_a, lreq, NULL, &ldoc, NULL), 0);
}

static void test_create_validation(void **state)
{
    (void)state;
    st_autoptr(json_t) r1 =
        json_pack("{s:s, s:s}", "flavorRef", fx.flavor_id, "imageRef", fx.image_id);
    create_fails(r1, &who_a, -EINVAL,
                 "Invalid input for field/attribute server. 'name' is a required property");
    st_autoptr(json_t) r2 = request(" lead", fx.flavor_id, fx.image_id);
    create_fails(r2, &who_a, -EINVAL,
                 "Invalid input for field/attribute name. Value must not have leading or "
                 "trailing whitespace.");
    char longname[300];
    memset(longname, 'x', 256);
    longname[256] = '\0';
    st_autoptr(json_t) r3 = request(longname, fx.flavor_id, fx.image_id);
    create_fails(r3, &who_a, -EINVAL,
                 "Invalid input for field/attribute name. Value is longer than 255 characters.");
    st_autoptr(json_t) r4 = request("x", "no-such-flavor", fx.image_id);
    create_fails(r4, &who_a, -EINVAL, "Flavor no-such-flavor could not be found.");
    st_autoptr(json_t) r5 = request("x", fx.flavor_id, "6a1b9d7e-0000-4000-8000-000000000000");
    create_fails(r5, &who_a, -EINVAL,
                 "Image 6a1b9d7e-0000-4000-8000-000000000000 could not be found.");
    st_autoptr(json_t) r6 = request("x", fx.flavor_id, fx.image_id);
    json_object_set_new(r6, "key_name", json_string("nope"));
    create_fails(r6, &who_a, -EINVAL, "Invalid key_name provided.");
    st_autoptr(json_t) r7 = json_pack("{s:s, s:s}", "name", "x", "flavorRef", fx.flavor_id);
    create_fails(r7, &who_a, -EINVAL, "Missing imageRef attribute");

    /* metadata: at most 128 items (a quota, 403), keys and values <= 255 */
    st_autoptr(json_t) r8 = request("x", fx.flavor_id, fx.image_id);
    json_t *md = json_object();
    for (int i = 0; i < 129; i++) {
        char k[16];
        snprintf(k, sizeof(k), "k%d", i);
        json_object_set_new(md, k, json_string("v"));
    }
    json_object_set_new(r8, "metadata", md);
    create_fails(r8, &who_a, -EDQUOT, NULL);
    st_autoptr(json_t) r9 = request("x", fx.flavor_id, fx.image_id);
    json_object_set_new(r9, "metadata", json_pack("{s:s}", longname, "v"));
    create_fails(r9, &who_a, -EINVAL, NULL);
    st_autoptr(json_t) r10 = request("x", fx.flavor_id, fx.image_id);
    json_object_set_new(r10, "metadata", json_pack("{s:i}", "k", 1));
    create_fails(r10, &who_a, -EINVAL,
                 "Invalid input for field/attribute metadata. Value of 'k' must be a string.");

    /* user_data: base64, at most 65535 characters */
    st_autoptr(json_t) r11 = request("x", fx.flavor_id, fx.image_id);
    json_object_set_new(r11, "user_data", json_string("not base64!"));
    create_fails(r11, &who_a, -EINVAL, NULL);
    st_autoptr(json_t) r12 = request("x", fx.flavor_id, fx.image_id);
    char *big = st_new0(char, 65537);
    memset(big, 'A', 65536);
    json_object_set_new(r12, "user_data", json_string(big));
    free(big);
    create_fails(r12, &who_a, -EINVAL, NULL);
    /* 65532 characters of base64 is fine */
    st_autoptr(json_t) r13 = request("ud-max", fx.flavor_id, fx.image_id);
    char *ok = st_new0(char, 65533);
    memset(ok, 'A', 65532);
    json_object_set_new(r13, "user_data", json_string(ok));
    free(ok);
    st_autoptr(json_t) d13 = NULL;
    assert_int_equal(st_compute_server_create(fx.kv, &who_a, r13, NULL, &d13, NULL), 0);

    st_autoptr(json_t) r14 = request("x", fx.flavor_id, fx.image_id);
    json_object_set_new(r14, "max_count", json_integer(2));
    create_fails(r14, &who_a, -EINVAL, NULL);
    st_autoptr(json_t) r15 = request("x", fx.flavor_id, fx.image_id);
    json_object_set_new(r15, "metadata", json_pack("{s:s}", "resource_policy", "gold"));
    create_fails(r15, &who_a, -EINVAL, NULL);
    /* nothing failed was counted */
    assert_int_equal(usage_instances(PROJECT_A), 1);
}

static void test_get_not_found(void **state)
{
    (void)state;
    const char *bad[] = {"6a1b9d7e-0000-4000-8000-000000000000", "demo", "../../x", ""};
    for (size_t i = 0; i < ST_ARRAY_SIZE(bad); i++) {
        st_autoptr(json_t) doc = NULL;
        st_autoptr(st_err) err = NULL;
        assert_int_equal(st_compute_server_get(fx.kv, bad[i], &doc, NULL, &err), -ENOENT);
        st_autofree char *want = st_sprintf("Instance %s could not be found.", bad[i]);
        assert_string_equal(err->msg, want);
    }
}

/* ---- list ---- */

static void test_list(void **state)
{
    (void)state;
    st_autofree char *a1 = create_ok("alpha-1");
    st_autofree char *a2 = create_ok("alpha-2");
    st_autofree char *b1 = create_ok("beta-1");
    st_autoptr(json_t) req = request("other", fx.flavor_id, fx.image_id);
    st_autoptr(json_t) other = NULL;
    assert_int_equal(st_compute_server_create(fx.kv, &who_b, req, NULL, &other, NULL), 0);

    struct st_compute_server_filter f = {.project_id = PROJECT_A};
    st_autoptr(json_t) all = NULL;
    assert_int_equal(st_compute_server_list(fx.kv, &f, &all, NULL), 0);
    assert_int_equal(json_array_size(all), 3);                         /* not project B's */
    assert_string_equal(sget(json_array_get(all, 0), "id", NULL), b1); /* newest first */
    assert_string_equal(sget(json_array_get(all, 2), "id", NULL), a1);

    f.name = "^alpha";
    st_autoptr(json_t) alpha = NULL;
    assert_int_equal(st_compute_server_list(fx.kv, &f, &alpha, NULL), 0);
    assert_int_equal(json_array_size(alpha), 2);
    f.name = "ha-2";
    st_autoptr(json_t) sub = NULL;
    assert_int_equal(st_compute_server_list(fx.kv, &f, &sub, NULL), 0);
    assert_int_equal(json_array_size(sub), 1);
    assert_string_equal(sget(json_array_get(sub, 0), "id", NULL), a2);
    f.name = "[bad(regex"; /* not a regex: a plain substring */
    st_autoptr(json_t) none = NULL;
    assert_int_equal(st_compute_server_list(fx.kv, &f, &none, NULL), 0);
    assert_int_equal(json_array_size(none), 0);

    f.name = NULL;
    f.limit = 1;
    f.marker = b1;
    st_autoptr(json_t) page = NULL;
    assert_int_equal(st_compute_server_list(fx.kv, &f, &page, NULL), 0);
    assert_int_equal(json_array_size(page), 1);
    assert_string_equal(sget(json_array_get(page, 0), "id", NULL), a2);
    f.marker = "6a1b9d7e-0000-4000-8000-000000000000";
    st_autoptr(json_t) bad = NULL;
    assert_int_equal(st_compute_server_list(fx.kv, &f, &bad, NULL), -EINVAL);

    struct st_compute_server_filter fs = {.project_id = PROJECT_A, .status = "active"};
    st_autoptr(json_t) active = NULL;
    assert_int_equal(st_compute_server_list(fx.kv, &fs, &active, NULL), 0);
    assert_int_equal(json_array_size(active), 0);
    fs.status = "build";
    st_autoptr(json_t) building = NULL;
    assert_int_equal(st_compute_server_list(fx.kv, &fs, &building, NULL), 0);
    assert_int_equal(json_array_size(building), 3);

    struct st_compute_server_filter everyone = {0};
    st_autoptr(json_t) every = NULL;
    assert_int_equal(st_compute_server_list(fx.kv, &everyone, &every, NULL), 0);
    assert_int_equal(json_array_size(every), 4);
}

/* ---- quotas ---- */

static void test_quota_limits(void **state)
{
    (void)state;
    struct st_compute_quota q;
    assert_int_equal(st_compute_quota_get(fx.kv, PROJECT_A, &q, NULL), 0);
    assert_int_equal(q.limit[ST_QUOTA_INSTANCES], 10);
    assert_int_equal(q.limit[ST_QUOTA_CORES], 20);
    assert_int_equal(q.limit[ST_QUOTA_RAM], 51200);

    st_autoptr(json_t) two = json_pack("{s:i}", "instances", 2);
    assert_int_equal(st_compute_quota_set(fx.kv, PROJECT_A, two, false, &q, NULL), 0);
    assert_int_equal(q.limit[ST_QUOTA_INSTANCES], 2);
    st_autofree char *s1 = create_ok("q1");
    st_autofree char *s2 = create_ok("q2");
    st_autoptr(json_t) req = request("q3", fx.flavor_id, fx.image_id);
    create_fails(req, &who_a, -EDQUOT,
                 "Quota exceeded for instances: Requested 1, but already used 2 of 2 instances");
    /* another project is not affected */
    st_autoptr(json_t) reqb = request("b", fx.flavor_id, fx.image_id);
    st_autoptr(json_t) docb = NULL;
    assert_int_equal(st_compute_server_create(fx.kv, &who_b, reqb, NULL, &docb, NULL), 0);

    /* a limit below what is used is refused unless forced */
    st_autoptr(json_t) one = json_pack("{s:s}", "instances", "1");
    st_autoptr(st_err) err = NULL;
    assert_int_equal(st_compute_quota_set(fx.kv, PROJECT_A, one, false, &q, &err), -EINVAL);
    assert_string_equal(err->msg, "Quota limit 1 for instances must be greater than or equal to "
                                  "already used and reserved 2.");
    assert_int_equal(st_compute_quota_set(fx.kv, PROJECT_A, one, true, &q, NULL), 0);
    st_autoptr(json_t) unknown = json_pack("{s:i}", "gpus", 1);
    assert_int_equal(st_compute_quota_set(fx.kv, PROJECT_A, unknown, false, &q, NULL), -EINVAL);
    st_autoptr(json_t) neg = json_pack("{s:i}", "cores", -2);
    assert_int_equal(st_compute_quota_set(fx.kv, PROJECT_A, neg, false, &q, NULL), -EINVAL);

    /* cores: the flavor's vcpus count */
    assert_int_equal(st_compute_quota_reset(fx.kv, PROJECT_A, NULL), 0);
    st_autoptr(json_t) big = request("big", fx.big_flavor_id, fx.image_id);
    st_autoptr(json_t) bigdoc = NULL;
    assert_int_equal(st_compute_server_create(fx.kv, &who_a, big, NULL, &bigdoc, NULL), 0);
    st_autoptr(json_t) big2 = request("big2", fx.big_flavor_id, fx.image_id);
    st_autoptr(json_t) bigdoc2 = NULL;
    assert_int_equal(st_compute_server_create(fx.kv, &who_a, big2, NULL, &bigdoc2, NULL), 0);
    st_autoptr(json_t) big3 = request("big3", fx.big_flavor_id, fx.image_id);
    create_fails(big3, &who_a, -EDQUOT,
                 "Quota exceeded for cores: Requested 8, but already used 18 of 20 cores");

    /* deleting gives the quota back at once */
    assert_int_equal(st_compute_server_delete(fx.kv, s1, NULL), 0);
    struct st_compute_quota_usage u;
    assert_int_equal(st_compute_quota_usage(fx.kv, PROJECT_A, &u, NULL), 0);
    assert_int_equal(u.instances, 3);
    assert_int_equal(u.cores, 17);
    assert_int_equal(u.ram, 512 + 2 * 16384);
}

struct racer {
    int index;
    int result;
};

static void *race_create(void *arg)
{
    struct racer *r = arg;
    char name[32];
    snprintf(name, sizeof(name), "race-%d", r->index);
    st_autoptr(json_t) req = request(name, fx.flavor_id, fx.image_id);
    st_autoptr(json_t) doc = NULL;
    r->result = st_compute_server_create(fx.kv, &who_a, req, NULL, &doc, NULL);
    return NULL;
}

static void test_quota_race(void **state)
{
    (void)state;
    st_autoptr(json_t) five = json_pack("{s:i}", "instances", 5);
    struct st_compute_quota q;
    assert_int_equal(st_compute_quota_set(fx.kv, PROJECT_A, five, false, &q, NULL), 0);
    for (int round = 0; round < 3; round++) {
        clean(NULL);
        assert_int_equal(st_compute_quota_set(fx.kv, PROJECT_A, five, false, &q, NULL), 0);
        pthread_t t[8];
        struct racer r[8];
        for (int i = 0; i < 8; i++) {
            r[i] = (struct racer){.index = i};
            assert_int_equal(pthread_create(&t[i], NULL, race_create, &r[i]), 0);
        }
        int ok = 0, over = 0;
        for (int i = 0; i < 8; i++) {
            pthread_join(t[i], NULL);
            ok += r[i].result == 0;
            over += r[i].result == -EDQUOT;
        }
        assert_int_equal(ok, 5);
        assert_int_equal(over, 3);
        struct st_compute_server_filter f = {.project_id = PROJECT_A};
        st_autoptr(json_t) docs = NULL;
        assert_int_equal(st_compute_server_list(fx.kv, &f, &docs, NULL), 0);
        assert_int_equal(json_array_size(docs), 5);
        assert_int_equal(usage_instances(PROJECT_A), 5);
    }
}

/* A usage entry whose server never got written (a crash between the two)
 * stops counting once it is older than the grace period. */
static void test_quota_phantom(void **state)
{
    (void)state;
    st_autoptr(json_t) one = json_pack("{s:i}", "instances", 1);
    struct st_compute_quota q;
    assert_int_equal(st_compute_quota_set(fx.kv, PROJECT_A, one, false, &q, NULL), 0);
    st_autoptr(json_t) usage =
        json_pack("{s:{s:{s:i, s:i, s:I}}}", "servers", "6a1b9d7e-0000-4000-8000-00000000dead",
                  "cores", 1, "ram", 512, "at", (json_int_t)(st_time_now_ms() - 120000));
    st_autofree char *text = st_json_dumps(usage);
    st_autofree char *key = st_sprintf("%s%s", ST_COMPUTE_USAGE_PREFIX, PROJECT_A);
    assert_int_equal(st_kv_put(fx.kv, key, text, strlen(text), ST_KV_ANY, NULL, NULL), 0);
    st_autofree char *id = create_ok("after-crash");
    assert_int_equal(usage_instances(PROJECT_A), 1);
    /* the real server's entry still counts */
    st_autoptr(json_t) req = request("second", fx.flavor_id, fx.image_id);
    create_fails(req, &who_a, -EDQUOT, NULL);
}

/* ---- quota usage: counters and claims ---- */

static json_t *read_json(const char *key, int64_t *ret_rev)
{
    st_autoptr(st_kv_entry) e = NULL;
    if (st_kv_get(fx.kv, key, &e, NULL) < 0)
        return NULL;
    if (ret_rev)
        *ret_rev = e->mod_rev;
    return json_loadb(e->value, e->value_len, 0, NULL);
}

static size_t count_claims(const char *project)
{
    st_autofree char *prefix = st_sprintf("%s%s/", ST_COMPUTE_CLAIMS_PREFIX, project);
    st_autoptr(st_kv_list) l = NULL;
    assert_int_equal(st_kv_list(fx.kv, prefix, NULL, 0, &l, NULL), 0);
    return l->count;
}

static void assert_counters(const char *project, int64_t instances, int64_t cores, int64_t ram)
{
    struct st_compute_quota_usage u;
    st_autoptr(st_err) err = NULL;
    if (st_compute_quota_usage(fx.kv, project, &u, &err) < 0)
        fail_msg("usage: %s", st_err_msg(err));
    assert_int_equal(u.instances, instances);
    assert_int_equal(u.cores, cores);
    assert_int_equal(u.ram, ram);
}

/* What the store holds: counters in the usage document, one claim per
 * server written in the same revision, both gone back on delete. */
static void test_quota_claims(void **state)
{
    (void)state;
    st_autofree char *s1 = create_ok("c1");
    st_autoptr(json_t) big = request("c2", fx.big_flavor_id, fx.image_id);
    st_autoptr(json_t) bigdoc = NULL;
    assert_int_equal(st_compute_server_create(fx.kv, &who_a, big, NULL, &bigdoc, NULL), 0);
    st_autofree char *s2 = id_of(bigdoc);

    st_autofree char *ukey = st_sprintf("%s%s", ST_COMPUTE_USAGE_PREFIX, PROJECT_A);
    int64_t urev = 0;
    st_autoptr(json_t) usage = read_json(ukey, &urev);
    st_autofree char *text = st_json_dumps(usage);
    assert_string_equal(text, "{\"instances\":2,\"cores\":9,\"ram\":16896}");
    st_autofree char *ckey = st_sprintf("%s%s/%s", ST_COMPUTE_CLAIMS_PREFIX, PROJECT_A, s2);
    int64_t crev = 0;
    st_autoptr(json_t) claim = read_json(ckey, &crev);
    assert_non_null(claim);
    assert_int_equal(json_integer_value(json_object_get(claim, "cores")), 8);
    assert_int_equal(json_integer_value(json_object_get(claim, "ram")), 16384);
    assert_true(st_time_now_ms() - json_integer_value(json_object_get(claim, "at")) < 60000);
    assert_int_equal(crev, urev); /* one transaction */
    assert_int_equal(count_claims(PROJECT_A), 2);
    assert_int_equal(count_claims(PROJECT_B), 0);

    /* a reservation is idempotent per server, and so is a release */
    assert_int_equal(st_compute_quota_reserve(fx.kv, PROJECT_A, s1, 1, 512, NULL), 0);
    assert_counters(PROJECT_A, 2, 9, 16896);
    assert_int_equal(st_compute_server_delete(fx.kv, s2, NULL), 0);
    assert_counters(PROJECT_A, 1, 1, 512);
    st_autoptr(json_t) gone = read_json(ckey, NULL);
    assert_null(gone);
    assert_int_equal(st_compute_quota_release(fx.kv, PROJECT_A, s2, NULL), 0);
    assert_int_equal(st_compute_quota_release(fx.kv, PROJECT_A, "never-claimed", NULL), 0);
    assert_counters(PROJECT_A, 1, 1, 512);
    assert_int_equal(count_claims(PROJECT_A), 1);
    st_autoptr(st_err) err = NULL;
    assert_int_equal(st_compute_quota_reserve(fx.kv, PROJECT_A, "a/b", 1, 1, &err), -EINVAL);
}

/* A claim left by a crash between a claim and its server's write: a young
 * one is a create in flight and counts; an old one is released when a create
 * would be refused, or when usage is read; a claim whose server is marked
 * deleted is released at once. */
static void test_quota_phantom_claim(void **state)
{
    (void)state;
    st_autoptr(json_t) one = json_pack("{s:i}", "instances", 1);
    struct st_compute_quota q;
    assert_int_equal(st_compute_quota_set(fx.kv, PROJECT_A, one, false, &q, NULL), 0);
    const char *young = "6a1b9d7e-0000-4000-8000-00000000beef";
    assert_int_equal(st_compute_quota_reserve(fx.kv, PROJECT_A, young, 1, 512, NULL), 0);
    st_autoptr(json_t) req = request("blocked", fx.flavor_id, fx.image_id);
    create_fails(req, &who_a, -EDQUOT,
                 "Quota exceeded for instances: Requested 1, but already used 1 of 1 instances");
    assert_counters(PROJECT_A, 1, 1, 512);

    /* the same claim, older than the grace period */
    st_autofree char *ckey = st_sprintf("%s%s/%s", ST_COMPUTE_CLAIMS_PREFIX, PROJECT_A, young);
    st_autofree char *old =
        st_sprintf("{\"cores\":1,\"ram\":512,\"at\":%lld}", (long long)(st_time_now_ms() - 120000));
    assert_int_equal(st_kv_put(fx.kv, ckey, old, strlen(old), ST_KV_ANY, NULL, NULL), 0);
    st_autofree char *id = create_ok("after-crash");
    assert_counters(PROJECT_A, 1, 1, 512);
    assert_int_equal(count_claims(PROJECT_A), 1);

    /* shown usage drops it too, with no create involved */
    st_autoptr(json_t) two = json_pack("{s:i}", "instances", 2);
    assert_int_equal(st_compute_quota_set(fx.kv, PROJECT_A, two, false, &q, NULL), 0);
    assert_int_equal(st_compute_quota_reserve(fx.kv, PROJECT_A, young, 1, 512, NULL), 0);
    assert_int_equal(count_claims(PROJECT_A), 2);
    assert_int_equal(st_kv_put(fx.kv, ckey, old, strlen(old), ST_KV_ANY, NULL, NULL), 0);
    assert_counters(PROJECT_A, 1, 1, 512);

    /* a server marked deleted whose release was lost */
    st_autofree char *skey = st_sprintf("%s%s", ST_COMPUTE_SERVERS_PREFIX, id);
    int64_t srev = 0;
    st_autoptr(json_t) doc = read_json(skey, &srev);
    json_object_set_new(json_object_get(doc, "spec"), "deleted", json_true());
    st_autofree char *text = st_json_dumps(doc);
    assert_int_equal(st_kv_put(fx.kv, skey, text, strlen(text), srev, NULL, NULL), 0);
    assert_counters(PROJECT_A, 0, 0, 0);
    assert_int_equal(count_claims(PROJECT_A), 0);
}

/* A store written before counters: the document listing every server turns
 * into counters and claims the first time it is touched, in one transaction
 * (several for more entries than one holds), and works as before after. */
static void test_quota_legacy_usage(void **state)
{
    (void)state;
    st_autofree char *id = create_ok("live");
    st_autofree char *ukey = st_sprintf("%s%s", ST_COMPUTE_USAGE_PREFIX, PROJECT_A);
    st_autofree char *ckey = st_sprintf("%s%s/%s", ST_COMPUTE_CLAIMS_PREFIX, PROJECT_A, id);
    assert_int_equal(st_kv_delete(fx.kv, ckey, ST_KV_ANY, NULL, NULL), 0);
    int64_t now = st_time_now_ms();
    st_autoptr(json_t) legacy =
        json_pack("{s:{s:{s:i, s:i, s:I}, s:{s:i, s:i, s:I}}}", "servers", id, "cores", 1, "ram",
                  512, "at", (json_int_t)now, "6a1b9d7e-0000-4000-8000-0000000000f1", "cores", 2,
                  "ram", 100, "at", (json_int_t)now);
    st_autofree char *text = st_json_dumps(legacy);
    assert_int_equal(st_kv_put(fx.kv, ukey, text, strlen(text), ST_KV_ANY, NULL, NULL), 0);

    assert_counters(PROJECT_A, 2, 3, 612);
    int64_t urev = 0, crev = 0;
    st_autoptr(json_t) usage = read_json(ukey, &urev);
    assert_null(json_object_get(usage, "servers"));
    st_autoptr(json_t) claim = read_json(ckey, &crev);
    assert_int_equal(json_integer_value(json_object_get(claim, "at")), now);
    assert_int_equal(crev, urev);
    assert_int_equal(count_claims(PROJECT_A), 2);
    assert_int_equal(st_compute_server_delete(fx.kv, id, NULL), 0);
    assert_counters(PROJECT_A, 1, 2, 100);

    /* 300 entries: three transactions, the same usage at the end */
    json_t *servers = json_object();
    for (int i = 0; i < 300; i++) {
        char sid[ST_UUID_LEN];
        st_uuid_new(sid);
        json_object_set_new(
            servers, sid,
            json_pack("{s:i, s:i, s:I}", "cores", 1, "ram", 10, "at", (json_int_t)now));
    }
    st_autoptr(json_t) many = json_pack("{s:o}", "servers", servers);
    st_autofree char *mtext = st_json_dumps(many);
    assert_int_equal(st_kv_put(fx.kv, ukey, mtext, strlen(mtext), ST_KV_ANY, NULL, NULL), 0);
    st_autofree char *bkey = st_sprintf("%s%s", ST_COMPUTE_USAGE_PREFIX, PROJECT_B);
    assert_int_equal(st_kv_put(fx.kv, bkey, mtext, strlen(mtext), ST_KV_ANY, NULL, NULL), 0);
    int64_t before = st_kv_revision(fx.kv);
    assert_counters(PROJECT_B, 300, 300, 3000);
    assert_int_equal(st_kv_revision(fx.kv), before + 3);
    assert_int_equal(count_claims(PROJECT_B), 300);
    /* a create converts too, then claims */
    st_autoptr(json_t) unlimited =
        json_pack("{s:i, s:i, s:i}", "instances", -1, "cores", -1, "ram", -1);
    struct st_compute_quota q;
    assert_int_equal(st_compute_quota_set(fx.kv, PROJECT_A, unlimited, false, &q, NULL), 0);
    st_autofree char *id2 = create_ok("after-convert");
    assert_counters(PROJECT_A, 301, 301, 3512);
}

/* The store history a project's quota usage costs: constant per claim and
 * release, whatever the number of servers (the former document listing
 * every server cost O(n) per create: 75 MiB for 1,000 creates and deletes,
 * bench/quota-usage.sh). */
#define CLAIMS 1000

static void test_quota_history_bytes(void **state)
{
    (void)state;
    st_autoptr(json_t) unlimited =
        json_pack("{s:i, s:i, s:i}", "instances", -1, "cores", -1, "ram", -1);
    struct st_compute_quota q;
    assert_int_equal(st_compute_quota_set(fx.kv, PROJECT_A, unlimited, false, &q, NULL), 0);
    struct {
        char id[ST_UUID_LEN];
    } *ids = st_xcalloc(CLAIMS, sizeof(*ids));
    int64_t start = st_kv_revision(fx.kv);
    int64_t t0 = st_time_mono_ns();
    for (int i = 0; i < CLAIMS; i++) {
        st_uuid_new(ids[i].id);
        assert_int_equal(st_compute_quota_reserve(fx.kv, PROJECT_A, ids[i].id, 1, 64, NULL), 0);
    }
    int64_t mid = st_kv_revision(fx.kv);
    assert_counters(PROJECT_A, CLAIMS, CLAIMS, 64 * CLAIMS);
    for (int i = 0; i < CLAIMS; i++)
        assert_int_equal(st_compute_quota_release(fx.kv, PROJECT_A, ids[i].id, NULL), 0);
    int64_t ms = (st_time_mono_ns() - t0) / 1000000;
    free(ids);
    assert_counters(PROJECT_A, 0, 0, 0);
    assert_int_equal(count_claims(PROJECT_A), 0);
    /* one revision per claim and per release */
    assert_int_equal(mid - start, CLAIMS);
    assert_int_equal(st_kv_revision(fx.kv) - mid, CLAIMS);

    st_autoptr(st_kv_events) ev = NULL;
    assert_int_equal(st_kv_watch(fx.kv, "/compute/quota-", start, 0, &ev, NULL), 0);
    size_t bytes = 0, first = 0, last = 0;
    for (size_t i = 0; i < ev->count; i++) {
        size_t b = strlen(ev->events[i].kv.key) + ev->events[i].kv.value_len;
        bytes += b;
        if (ev->events[i].kv.mod_rev == start + 1)
            first += b;
        if (ev->events[i].kv.mod_rev == mid)
            last += b;
    }
    assert_int_equal(ev->count, 4 * CLAIMS); /* usage + claim, each way */
    /* the 1,000th claim costs what the first did, give or take the digits
     * of the counters ({"instances":1,"cores":1,"ram":64} has 9 fewer) */
    if (last > first + 9)
        fail_msg("the first claim wrote %zu bytes, the last %zu", first, last);
    assert_true(bytes < 512 * 1024);
    print_message("    %d claims + %d releases: %zu events, %zu bytes of history (%zu per claim) "
                  "in %lld ms\n",
                  CLAIMS, CLAIMS, ev->count, bytes, first, (long long)ms);
}

/* ---- delete, actions, reports ---- */

static void test_delete_unplaced(void **state)
{
    (void)state;
    st_autofree char *id = create_ok("never-placed");
    /* an allocation left by a scheduler that crashed before writing spec.host */
    st_autofree char *key = st_sprintf("%snode-x", ST_COMPUTE_ALLOCATIONS_PREFIX);
    st_autoptr(json_t) alloc = json_pack("{s:{s:{s:i}}}", "servers", id, "vcpus", 1);
    st_autofree char *text = st_json_dumps(alloc);
    assert_int_equal(st_kv_put(fx.kv, key, text, strlen(text), ST_KV_ANY, NULL, NULL), 0);
    assert_int_equal(st_compute_server_delete(fx.kv, id, NULL), 0);
    st_autoptr(json_t) doc = NULL;
    assert_int_equal(st_compute_server_get(fx.kv, id, &doc, NULL, NULL), -ENOENT);
    assert_false(allocation_has("node-x", id));
    assert_int_equal(usage_instances(PROJECT_A), 0);
    st_autoptr(st_err) err = NULL;
    assert_int_equal(st_compute_server_delete(fx.kv, id, &err), -ENOENT);
}

static void test_delete_placed_and_destroyed(void **state)
{
    (void)state;
    register_node("node-1");
    st_autofree char *id = create_ok("placed");
    st_autofree char *other = create_ok("neighbour");
    place(id, "node-1");
    place(other, "node-1");
    assert_int_equal(st_compute_server_console_put(fx.kv, id, "boot\n", 5, NULL), 0);
    report(id, "{\"state\": \"ACTIVE\", \"power_state\": 1}");

    assert_int_equal(st_compute_server_delete(fx.kv, id, NULL), 0);
    st_autoptr(json_t) doc = get(id);
    assert_true(json_is_true(json_object_get(json_object_get(doc, "spec"), "deleted")));
    assert_string_equal(st_compute_server_task_state(doc), "deleting");
    assert_string_equal(sget(doc, "status", "task_state"), "deleting");
    assert_int_equal(usage_instances(PROJECT_A), 1);                /* released at once */
    assert_int_equal(st_compute_server_delete(fx.kv, id, NULL), 0); /* idempotent */
    st_autoptr(st_err) serr = NULL;
    assert_int_equal(st_compute_server_stop(fx.kv, id, &serr), -EBUSY);
    assert_non_null(strstr(serr->msg, "task_state deleting"));

    /* the agent destroys it and reports DELETED: gone for good */
    report(id, "{\"state\": \"DELETED\"}");
    st_autoptr(json_t) gone = NULL;
    assert_int_equal(st_compute_server_get(fx.kv, id, &gone, NULL, NULL), -ENOENT);
    assert_false(allocation_has("node-1", id));
    assert_true(allocation_has("node-1", other));
    st_autofree char *ckey = st_sprintf("%s%s", ST_COMPUTE_CONSOLES_PREFIX, id);
    st_autoptr(st_kv_entry) ce = NULL;
    assert_int_equal(st_kv_get(fx.kv, ckey, &ce, NULL), -ENOENT);

    /* DELETED for a server nobody deleted is refused */
    st_autoptr(json_t) body = json_pack("{s:s}", "state", "DELETED");
    st_autoptr(st_err) err = NULL;
    assert_int_equal(st_compute_server_report(fx.kv, other, body, &err), -EBUSY);
    st_autoptr(json_t) still = get(other);

    /* a server whose node is unknown is removed at once */
    st_autofree char *orphan = create_ok("orphan");
    place(orphan, "node-gone");
    assert_int_equal(st_compute_server_delete(fx.kv, orphan, NULL), 0);
    st_autoptr(json_t) od = NULL;
    assert_int_equal(st_compute_server_get(fx.kv, orphan, &od, NULL, NULL), -ENOENT);
    assert_false(allocation_has("node-gone", orphan));

    /* so is one whose node's lease ran out (its agent is gone) */
    st_autofree char *nkey = st_sprintf("%snode-down", ST_COMPUTE_NODES_PREFIX);
    const char *down = "{\"name\": \"node-down\", \"heartbeat_at\": \"2020-01-01T00:00:00Z\", "
                       "\"lease_seconds\": 30}";
    assert_int_equal(st_kv_put(fx.kv, nkey, down, strlen(down), ST_KV_ANY, NULL, NULL), 0);
    st_autofree char *stranded = create_ok("stranded");
    place(stranded, "node-down");
    assert_int_equal(st_compute_server_delete(fx.kv, stranded, NULL), 0);
    st_autoptr(json_t) sd = NULL;
    assert_int_equal(st_compute_server_get(fx.kv, stranded, &sd, NULL, NULL), -ENOENT);
    assert_false(allocation_has("node-down", stranded));
    assert_int_equal(usage_instances(PROJECT_A), 1); /* "other" only */
}

static void expect_busy(int r, struct st_err *err, const char *msg)
{
    assert_int_equal(r, -EBUSY);
    if (strcmp(err->msg, msg) != 0)
        fail_msg("message '%s', want '%s'", err->msg, msg);
}

/* The call first, then its error (arguments have no evaluation order). */
#define EXPECT_BUSY(call, err, msg)                                                                \
    do {                                                                                           \
        int r_ = (call);                                                                           \
        expect_busy(r_, err, msg);                                                                 \
    } while (0)

static void test_actions(void **state)
{
    (void)state;
    register_node("node-1");
    st_autofree char *id = create_ok("powered");
    {
        st_autoptr(st_err) err = NULL;
        st_autofree char *msg =
            st_sprintf("Cannot 'stop' instance %s while it is in vm_state building", id);
        EXPECT_BUSY(st_compute_server_stop(fx.kv, id, &err), err, msg);
    }
    place(id, "node-1");
    st_autoptr(json_t) spawning = get(id);
    assert_string_equal(st_compute_server_task_state(spawning), "spawning");
    report(id, "{\"state\": \"ACTIVE\", \"power_state\": 1, \"instance\": {\"pid\": 42}}");
    st_autoptr(json_t) active = get(id);
    assert_string_equal(st_compute_server_status(active), "ACTIVE");
    assert_null(st_compute_server_task_state(active));
    assert_true(json_is_null(json_object_get(json_object_get(active, "status"), "task_state")));
    const char *launched = sget(active, "status", "launched_at");
    assert_non_null(launched);
    st_autofree char *launched_copy = st_strdup(launched);
    assert_int_equal(json_integer_value(json_object_get(
                         json_object_get(json_object_get(active, "status"), "instance"), "pid")),
                     42);

    assert_int_equal(st_compute_server_stop(fx.kv, id, NULL), 0);
    st_autoptr(json_t) stopping = get(id);
    assert_string_equal(sget(stopping, "spec", "power"), "off");
    assert_string_equal(st_compute_server_task_state(stopping), "powering-off");
    {
        st_autoptr(st_err) err = NULL;
        st_autofree char *msg =
            st_sprintf("Cannot 'stop' instance %s while it is in task_state powering-off", id);
        EXPECT_BUSY(st_compute_server_stop(fx.kv, id, &err), err, msg);
    }
    report(id, "{\"state\": \"SHUTOFF\", \"power_state\": 4}");
    st_autoptr(json_t) stopped = get(id);
    assert_string_equal(st_compute_server_status(stopped), "SHUTOFF");
    assert_string_equal(st_compute_server_vm_state(stopped), "stopped");
    assert_null(st_compute_server_task_state(stopped));
    {
        st_autoptr(st_err) err = NULL;
        st_autofree char *msg =
            st_sprintf("Cannot 'stop' instance %s while it is in vm_state stopped", id);
        EXPECT_BUSY(st_compute_server_stop(fx.kv, id, &err), err, msg);
        st_autoptr(st_err) err2 = NULL;
        st_autofree char *msg2 =
            st_sprintf("Cannot 'reboot' instance %s while it is in vm_state stopped", id);
        EXPECT_BUSY(st_compute_server_reboot(fx.kv, id, false, &err2), err2, msg2);
    }
    assert_int_equal(st_compute_server_start(fx.kv, id, NULL), 0);
    st_autoptr(json_t) starting = get(id);
    assert_string_equal(st_compute_server_task_state(starting), "powering-on");
    report(id, "{\"state\": \"ACTIVE\", \"power_state\": 1}");
    st_autoptr(json_t) again = get(id);
    assert_string_equal(sget(again, "status", "launched_at"), launched_copy); /* first only */
    {
        st_autoptr(st_err) err = NULL;
        st_autofree char *msg =
            st_sprintf("Cannot 'start' instance %s while it is in vm_state active", id);
        EXPECT_BUSY(st_compute_server_start(fx.kv, id, &err), err, msg);
    }

    assert_int_equal(st_compute_server_reboot(fx.kv, id, false, NULL), 0);
    st_autoptr(json_t) rebooting = get(id);
    assert_string_equal(st_compute_server_status(rebooting), "REBOOT");
    assert_string_equal(st_compute_server_task_state(rebooting), "rebooting");
    assert_int_equal(
        json_integer_value(json_object_get(json_object_get(rebooting, "spec"), "reboot")), 1);
    report(id, "{\"state\": \"ACTIVE\", \"observed_reboot\": 1}");
    st_autoptr(json_t) rebooted = get(id);
    assert_string_equal(st_compute_server_status(rebooted), "ACTIVE");
    assert_null(st_compute_server_task_state(rebooted));

    /* ERROR with a fault: shown as given, code and time filled in */
    report(id, "{\"state\": \"ERROR\", \"power_state\": 6, \"fault\": {\"message\": "
               "\"OOM killed: memory limit 512 MiB\"}}");
    st_autoptr(json_t) failed = get(id);
    json_t *fault = json_object_get(json_object_get(failed, "status"), "fault");
    assert_string_equal(sget(fault, "message", NULL), "OOM killed: memory limit 512 MiB");
    assert_int_equal(json_integer_value(json_object_get(fault, "code")), 500);
    assert_non_null(sget(fault, "created", NULL));
    assert_int_equal(st_compute_server_reboot(fx.kv, id, true, NULL), 0); /* hard from error */

    /* bad reports are refused */
    const char *bad[] = {"{\"state\": \"RUNNING\"}", "{\"power_state\": \"on\"}",
                         "{\"fault\": {\"code\": 1}}", "{\"launched_at\": \"x\"}"};
    for (size_t i = 0; i < ST_ARRAY_SIZE(bad); i++) {
        st_autoptr(json_t) body = json_loads(bad[i], 0, NULL);
        assert_int_equal(st_compute_server_report(fx.kv, id, body, NULL), -EINVAL);
    }
}

/* A repeated identical report writes nothing (no watcher wakes). */
static void test_report_unchanged(void **state)
{
    (void)state;
    register_node("node-1");
    st_autofree char *id = create_ok("quiet");
    place(id, "node-1");
    report(id, "{\"state\": \"ACTIVE\", \"power_state\": 1}");
    int64_t rev = st_kv_revision(fx.kv);
    report(id, "{\"state\": \"ACTIVE\", \"power_state\": 1}");
    assert_int_equal(st_kv_revision(fx.kv), rev);
}

static void test_console(void **state)
{
    (void)state;
    register_node("node-1");
    st_autofree char *id = create_ok("console");
    st_autofree char *out0 = NULL;
    st_autoptr(st_err) err = NULL;
    assert_int_equal(st_compute_server_console(fx.kv, id, -1, &out0, &err), -EBUSY);
    st_autofree char *msg = st_sprintf("Instance %s is not ready.", id);
    assert_string_equal(err->msg, msg);
    place(id, "node-1");
    st_autofree char *empty = NULL;
    assert_int_equal(st_compute_server_console(fx.kv, id, -1, &empty, NULL), 0);
    assert_string_equal(empty, "");

    const char log[] = "one\ntwo\x01\x1b[0m\nthr\xff"
                       "ee\n\xc3\xa9t\xc3\xa9\n";
    assert_int_equal(st_compute_server_console_put(fx.kv, id, log, sizeof(log) - 1, NULL), 0);
    st_autofree char *all = NULL;
    assert_int_equal(st_compute_server_console(fx.kv, id, -1, &all, NULL), 0);
    assert_string_equal(all, "one\ntwo[0m\nthr\xef\xbf\xbd"
                             "ee\n\xc3\xa9t\xc3\xa9\n");
    st_autofree char *two = NULL;
    assert_int_equal(st_compute_server_console(fx.kv, id, 2, &two, NULL), 0);
    assert_string_equal(two, "thr\xef\xbf\xbd"
                             "ee\n\xc3\xa9t\xc3\xa9\n");
    st_autofree char *many = NULL;
    assert_int_equal(st_compute_server_console(fx.kv, id, 100, &many, NULL), 0);
    assert_string_equal(many, all);
    st_autofree char *none = NULL;
    assert_int_equal(st_compute_server_console(fx.kv, id, 0, &none, NULL), 0);
    assert_string_equal(none, "");

    /* only the last 64 KiB are kept */
    size_t n = 100 * 1024;
    char *big = st_new0(char, n);
    memset(big, 'a', n);
    memcpy(big + n - 4, "END\n", 4);
    assert_int_equal(st_compute_server_console_put(fx.kv, id, big, n, NULL), 0);
    free(big);
    st_autofree char *tail = NULL;
    assert_int_equal(st_compute_server_console(fx.kv, id, -1, &tail, NULL), 0);
    assert_int_equal(strlen(tail), ST_COMPUTE_CONSOLE_MAX);
    assert_string_equal(tail + ST_COMPUTE_CONSOLE_MAX - 4, "END\n");
    assert_int_equal(st_compute_server_console_put(fx.kv, "nope", "x", 1, NULL), -ENOENT);
}

struct delayed_place {
    const char *id;
    int delay_ms;
};

static void *place_later(void *arg)
{
    struct delayed_place *d = arg;
    struct timespec ts = {0, (long)d->delay_ms * 1000000};
    nanosleep(&ts, NULL);
    place(d->id, "node-w");
    return NULL;
}

static void test_watch_host(void **state)
{
    (void)state;
    register_node("node-w");
    st_autofree char *mine = create_ok("mine");
    st_autofree char *theirs = create_ok("theirs");
    place(mine, "node-w");
    st_autoptr(json_t) docs = NULL;
    int64_t rev = 0;
    assert_int_equal(st_compute_server_watch_host(fx.kv, "node-w", 0, 5000, &docs, &rev, NULL), 0);
    assert_int_equal(json_array_size(docs), 1);
    assert_string_equal(sget(json_array_get(docs, 0), "id", NULL), mine);
    assert_true(rev > 0);

    /* nothing changes: an empty answer after the wait */
    int64_t t0 = st_time_mono_ns();
    st_autoptr(json_t) quiet = NULL;
    int64_t rev2 = 0;
    assert_int_equal(st_compute_server_watch_host(fx.kv, "node-w", rev, 300, &quiet, &rev2, NULL),
                     0);
    int64_t waited_ms = (st_time_mono_ns() - t0) / 1000000;
    assert_int_equal(json_array_size(quiet), 0);
    assert_true(waited_ms >= 250 && waited_ms < 2000);

    /* an assignment made during the wait is returned as soon as it happens */
    struct delayed_place d = {theirs, 200};
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, place_later, &d), 0);
    t0 = st_time_mono_ns();
    st_autoptr(json_t) woke = NULL;
    int64_t rev3 = 0;
    assert_int_equal(st_compute_server_watch_host(fx.kv, "node-w", rev2, 5000, &woke, &rev3, NULL),
                     0);
    waited_ms = (st_time_mono_ns() - t0) / 1000000;
    pthread_join(t, NULL);
    assert_int_equal(json_array_size(woke), 1);
    assert_string_equal(sget(json_array_get(woke, 0), "id", NULL), theirs);
    assert_true(waited_ms < 2000);
    assert_true(rev3 > rev2);

    /* compacted history: -ESTALE, list again */
    assert_int_equal(st_kv_compact(fx.kv, st_kv_revision(fx.kv), NULL), 0);
    st_autoptr(json_t) stale = NULL;
    int64_t rev4 = 0;
    assert_int_equal(st_compute_server_watch_host(fx.kv, "node-w", 1, 100, &stale, &rev4, NULL),
                     -ESTALE);
}

/* ---- nodes and the node token ---- */

static void test_node_put(void **state)
{
    (void)state;
    st_autoptr(json_t) partial = json_pack("{s:{}}", "usage");
    st_autoptr(st_err) err = NULL;
    assert_int_equal(st_compute_node_put(fx.kv, "n1", partial, NULL, &err), -EINVAL);
    register_node("n1");
    st_autoptr(json_t) first = NULL;
    assert_int_equal(st_compute_node_get(fx.kv, "n1", &first, NULL), 0);
    st_autofree char *created = st_strdup(sget(first, "created_at", NULL));
    assert_string_equal(sget(first, "availability_zone", NULL), "nova");
    assert_int_equal(json_integer_value(json_object_get(first, "lease_seconds")), 30);
    assert_true(st_compute_node_alive(first, st_time_now_ms()));
    assert_false(st_compute_node_alive(first, st_time_now_ms() + 31000));

    struct timespec ts = {0, 20 * 1000000};
    nanosleep(&ts, NULL);
    st_autoptr(json_t) beat = json_pack("{s:{s:i}}", "usage", "servers", 3);
    st_autoptr(json_t) second = NULL;
    assert_int_equal(st_compute_node_put(fx.kv, "n1", beat, &second, NULL), 0);
    assert_string_equal(sget(second, "created_at", NULL), created);
    assert_string_not_equal(sget(second, "heartbeat_at", NULL), sget(first, "heartbeat_at", NULL));
    assert_int_equal(
        json_integer_value(json_object_get(json_object_get(second, "capacity"), "memory_mb")),
        8192);

    const char *bad_bodies[] = {"{\"color\": 1}", "{\"capacity\": {\"vcpus\": -1}}",
                                "{\"drivers\": [1]}", "{\"lease_seconds\": 0}",
                                "{\"allocation_ratio\": {\"cpu\": 0}}"};
    for (size_t i = 0; i < ST_ARRAY_SIZE(bad_bodies); i++) {
        st_autoptr(json_t) b = json_loads(bad_bodies[i], 0, NULL);
        assert_int_equal(st_compute_node_put(fx.kv, "n1", b, NULL, NULL), -EINVAL);
    }
    const char *bad_names[] = {"", "-x", "a/b", "..", "x y"};
    for (size_t i = 0; i < ST_ARRAY_SIZE(bad_names); i++)
        assert_int_equal(st_compute_node_check_name(bad_names[i], NULL), -EINVAL);
}

static void test_node_token(void **state)
{
    (void)state;
    st_autofree char *dir = st_sprintf("%s/tok", fx.dir);
    assert_int_equal(st_mkdir_p(dir, 0700, NULL), 0);
    st_autofree char *tok = NULL;
    assert_int_equal(st_compute_node_token_load(dir, &tok, NULL), -ENOENT);
    assert_int_equal(st_compute_node_token_ensure(dir, NULL), 0);
    st_autofree char *path = st_sprintf("%s/node-token", dir);
    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);
    assert_int_equal(st_compute_node_token_load(dir, &tok, NULL), 0);
    assert_int_equal(strlen(tok), 64);
    assert_int_equal(st_compute_node_token_ensure(dir, NULL), 0); /* kept */
    st_autofree char *again = NULL;
    assert_int_equal(st_compute_node_token_load(dir, &again, NULL), 0);
    assert_string_equal(tok, again);
    assert_true(st_compute_node_token_equal(tok, again));
    assert_false(st_compute_node_token_equal(tok, "x"));
    assert_false(st_compute_node_token_equal(tok, ""));
    assert_false(st_compute_node_token_equal(NULL, tok));
    chmod(path, 0644);
    st_autofree char *loose = NULL;
    assert_int_equal(st_compute_node_token_load(dir, &loose, NULL), -EPERM);
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
                               const char *header, const char *body)
{
    struct http_result res = {0};
    CURL *c = curl_easy_init();
    st_autofree char *url = st_sprintf("%s%s", base, path);
    struct curl_slist *h = NULL;
    if (header)
        h = curl_slist_append(h, header);
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

struct api_env {
    struct st_identity *identity;
    struct st_api_app app;
    struct st_router *router;
    struct st_api_server *srv;
    char base[64];
    char *node_token;
};

static void api_start(struct api_env *env, bool full)
{
    memset(env, 0, sizeof(*env));
    struct st_identity_config icfg = {.cost = {1, 64, 1}};
    assert_int_equal(st_identity_new(fx.kv, &icfg, &env->identity, NULL), 0);
    env->app = (struct st_api_app){.kv = fx.kv,
                                   .identity = env->identity,
                                   .data_dir = fx.dir,
                                   .public_url = "http://127.0.0.1"};
    env->router = st_router_new(&env->app);
    st_autoptr(st_err) err = NULL;
    if (full) {
        struct st_api_system sys = {.role = "all"};
        if (st_daemon_routes_register(env->router, &env->app, &sys, &err) < 0)
            fail_msg("routes: %s", st_err_msg(err));
    } else {
        st_api_auth_install(env->router);
        assert_int_equal(st_api_internal_register(env->router, &env->app, NULL), 0);
    }
    struct st_api_server_config scfg = {.listen = "127.0.0.1:0", .threads = 4, .access_log = false};
    assert_int_equal(st_api_server_start(&scfg, env->router, &env->srv, NULL), 0);
    snprintf(env->base, sizeof(env->base), "http://127.0.0.1:%u", st_api_server_port(env->srv));
    assert_int_equal(st_compute_node_token_load(fx.dir, &env->node_token, NULL), 0);
}

static void api_stop(struct api_env *env)
{
    st_api_server_stop(env->srv, 1000);
    st_router_free(env->router);
    st_identity_free(env->identity);
    free(env->node_token);
}

static void test_internal_api(void **state)
{
    (void)state;
    struct api_env env;
    api_start(&env, false);
    st_autofree char *hdr = st_sprintf("X-Node-Token: %s", env.node_token);
    const char *node_body = "{\"drivers\": [\"container\"], \"capacity\": {\"vcpus\": 2, "
                            "\"cpu_mhz\": 2400, \"memory_mb\": 4096, \"disk_gb\": 50}}";

    /* no token, a wrong one, a Keystone-looking one: 401 */
    const char *bad[] = {NULL, "X-Node-Token: nope", "X-Auth-Token: whatever"};
    for (size_t i = 0; i < ST_ARRAY_SIZE(bad); i++) {
        struct http_result r = http(env.base, "PUT", "/internal/v1/nodes/n1", bad[i], node_body);
        assert_int_equal(r.status, 401);
        assert_non_null(strstr(r.body, "\"code\":401"));
        free(r.body);
    }

    struct http_result reg = http(env.base, "PUT", "/internal/v1/nodes/n1", hdr, node_body);
    assert_int_equal(reg.status, 200);
    st_autoptr(json_t) regj = json_loads(reg.body, 0, NULL);
    assert_string_equal(sget(json_object_get(regj, "node"), "name", NULL), "n1");
    free(reg.body);
    struct http_result badnode = http(env.base, "PUT", "/internal/v1/nodes/n1", hdr, "{\"x\":1}");
    assert_int_equal(badnode.status, 400);
    free(badnode.body);

    struct http_result list0 =
        http(env.base, "GET", "/internal/v1/nodes/n1/servers?after=0", hdr, NULL);
    assert_int_equal(list0.status, 200);
    st_autoptr(json_t) l0 = json_loads(list0.body, 0, NULL);
    assert_int_equal(json_array_size(json_object_get(l0, "servers")), 0);
    int64_t rev = json_integer_value(json_object_get(l0, "revision"));
    free(list0.body);

    /* the long-poll returns an assignment made while it waits */
    st_autofree char *id = create_ok("assigned");
    register_node("node-w");
    struct delayed_place d = {id, 300};
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, place_later, &d), 0);
    st_autofree char *path =
        st_sprintf("/internal/v1/nodes/node-w/servers?after=%lld&wait=10", (long long)rev);
    int64_t t0 = st_time_mono_ns();
    struct http_result poll = http(env.base, "GET", path, hdr, NULL);
    int64_t waited_ms = (st_time_mono_ns() - t0) / 1000000;
    pthread_join(t, NULL);
    assert_int_equal(poll.status, 200);
    st_autoptr(json_t) pj = json_loads(poll.body, 0, NULL);
    free(poll.body);
    assert_int_equal(json_array_size(json_object_get(pj, "servers")), 1);
    json_t *srv = json_array_get(json_object_get(pj, "servers"), 0);
    assert_string_equal(sget(srv, "id", NULL), id);
    assert_string_equal(sget(srv, "spec", "host"), "node-w");
    assert_true(json_integer_value(json_object_get(pj, "revision")) > rev);
    assert_true(waited_ms >= 250 && waited_ms < 5000);

    struct http_result badq =
        http(env.base, "GET", "/internal/v1/nodes/node-w/servers?wait=61", hdr, NULL);
    assert_int_equal(badq.status, 400);
    free(badq.body);
    assert_int_equal(st_kv_compact(fx.kv, st_kv_revision(fx.kv), NULL), 0);
    struct http_result gone =
        http(env.base, "GET", "/internal/v1/nodes/node-w/servers?after=1&wait=1", hdr, NULL);
    assert_int_equal(gone.status, 410);
    free(gone.body);

    /* status merge */
    st_autofree char *spath = st_sprintf("/internal/v1/servers/%s/status", id);
    struct http_result st1 = http(env.base, "PUT", spath, hdr,
                                  "{\"state\": \"ACTIVE\", \"power_state\": 1, "
                                  "\"instance\": {\"pid\": 7}}");
    assert_int_equal(st1.status, 204);
    free(st1.body);
    st_autoptr(json_t) doc = get(id);
    assert_string_equal(st_compute_server_status(doc), "ACTIVE");
    assert_non_null(sget(doc, "status", "launched_at"));
    struct http_result st2 = http(env.base, "PUT", spath, hdr, "{\"state\": \"FLYING\"}");
    assert_int_equal(st2.status, 400);
    free(st2.body);
    struct http_result st3 = http(env.base, "PUT", spath, hdr, "{\"state\": \"DELETED\"}");
    assert_int_equal(st3.status, 409);
    free(st3.body);
    struct http_result st4 =
        http(env.base, "PUT", "/internal/v1/servers/6a1b9d7e-0000-4000-8000-000000000000/status",
             hdr, "{\"state\": \"ACTIVE\"}");
    assert_int_equal(st4.status, 404);
    free(st4.body);

    /* console */
    st_autofree char *cpath = st_sprintf("/internal/v1/servers/%s/console", id);
    struct http_result c1 = http(env.base, "PUT", cpath, hdr, "hello\nworld\n");
    assert_int_equal(c1.status, 204);
    free(c1.body);
    st_autofree char *out = NULL;
    assert_int_equal(st_compute_server_console(fx.kv, id, 1, &out, NULL), 0);
    assert_string_equal(out, "world\n");

    /* the image's bytes */
    st_autofree char *ipath = st_sprintf("/internal/v1/images/%s/file", fx.image_id);
    struct http_result img = http(env.base, "GET", ipath, hdr, NULL);
    assert_int_equal(img.status, 200);
    assert_int_equal(img.len, 12);
    assert_memory_equal(img.body, "rootfs-bytes", 12);
    free(img.body);
    struct http_result noimg =
        http(env.base, "GET", "/internal/v1/images/6a1b9d7e-0000-4000-8000-000000000000/file", hdr,
             NULL);
    assert_int_equal(noimg.status, 404);
    free(noimg.body);

    /* deletion: marked, then removed when the agent reports DELETED */
    assert_int_equal(st_compute_server_delete(fx.kv, id, NULL), 0);
    struct http_result del = http(env.base, "PUT", spath, hdr, "{\"state\": \"DELETED\"}");
    assert_int_equal(del.status, 204);
    free(del.body);
    st_autoptr(json_t) none = NULL;
    assert_int_equal(st_compute_server_get(fx.kv, id, &none, NULL, NULL), -ENOENT);
    assert_false(allocation_has("node-w", id));
    struct http_result del2 = http(env.base, "PUT", spath, hdr, "{\"state\": \"DELETED\"}");
    assert_int_equal(del2.status, 204); /* repeated: already done */
    free(del2.body);
    api_stop(&env);
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

/* The Nova shapes a client sees: 202 + Location, BUILD at once, the fault
 * of an ERROR server, the host for admins only, the 409 and 404 bodies,
 * console output, quota sets. */
static void test_nova_api(void **state)
{
    (void)state;
    struct api_env env;
    api_start(&env, true);
    st_autofree char *admin_pw = NULL;
    assert_int_equal(st_identity_bootstrap(env.identity, &admin_pw, NULL), 0);
    st_autoptr(json_t) preq = json_pack("{s:s}", "name", "proj-m");
    st_autoptr(json_t) proj = NULL;
    assert_int_equal(st_identity_project_create(env.identity, preq, &proj, NULL), 0);
    st_autoptr(json_t) ureq = json_pack("{s:s, s:s}", "name", "mem", "password", "pw");
    st_autoptr(json_t) user = NULL;
    assert_int_equal(st_identity_user_create(env.identity, ureq, &user, NULL), 0);
    st_autoptr(json_t) role = NULL;
    assert_int_equal(st_identity_role_find(env.identity, "member", &role, NULL), 0);
    assert_int_equal(st_identity_grant_add(env.identity, sget(proj, "id", NULL),
                                           sget(user, "id", NULL), sget(role, "id", NULL), NULL),
                     0);
    st_autofree char *tok_m = login(env.identity, "mem", "pw", "proj-m");
    st_autofree char *tok_a = login(env.identity, "admin", admin_pw, "admin");
    st_autofree char *hm = st_sprintf("X-Auth-Token: %s", tok_m);
    st_autofree char *ha = st_sprintf("X-Auth-Token: %s", tok_a);

    st_autofree char *body = st_sprintf("{\"server\": {\"name\": \"web\", \"flavorRef\": \"%s\", "
                                        "\"imageRef\": \"%s\", \"min_count\": 1, \"max_count\": "
                                        "1, \"metadata\": {\"a\": \"b\"}}}",
                                        fx.flavor_id, fx.image_id);
    struct http_result cr = http(env.base, "POST", "/compute/v2.1/servers", hm, body);
    assert_int_equal(cr.status, 202);
    st_autoptr(json_t) crj = json_loads(cr.body, 0, NULL);
    free(cr.body);
    const char *id = sget(json_object_get(crj, "server"), "id", NULL);
    assert_non_null(id);
    st_autofree char *spath = st_sprintf("/compute/v2.1/servers/%s", id);

    struct http_result show = http(env.base, "GET", spath, hm, NULL);
    assert_int_equal(show.status, 200);
    st_autoptr(json_t) sj = json_loads(show.body, 0, NULL);
    free(show.body);
    json_t *s = json_object_get(sj, "server");
    assert_string_equal(sget(s, "status", NULL), "BUILD");
    assert_string_equal(sget(s, "metadata", "a"), "b");
    assert_string_equal(sget(s, "flavor", "id"), fx.flavor_id);
    assert_string_equal(sget(s, "image", "id"), fx.image_id);
    assert_int_equal(json_integer_value(json_object_get(s, "progress")), 0);
    assert_string_equal(sget(s, "OS-EXT-STS:task_state", NULL), "scheduling");
    assert_null(json_object_get(s, "OS-EXT-SRV-ATTR:host")); /* not for members */
    assert_null(json_object_get(s, "fault"));

    /* the scheduler's failure, as the API shows it */
    report(id, "{\"state\": \"ERROR\", \"fault\": {\"code\": 500, \"message\": \"No valid host "
               "was found: 0 nodes\"}}");
    struct http_result err_show = http(env.base, "GET", spath, ha, NULL);
    st_autoptr(json_t) ej = json_loads(err_show.body, 0, NULL);
    free(err_show.body);
    json_t *es = json_object_get(ej, "server");
    assert_string_equal(sget(es, "status", NULL), "ERROR");
    assert_string_equal(sget(es, "fault", "message"), "No valid host was found: 0 nodes");
    assert_int_equal(json_integer_value(json_object_get(json_object_get(es, "fault"), "code")),
                     500);
    assert_true(json_is_null(json_object_get(es, "OS-EXT-SRV-ATTR:host"))); /* admin sees it */

    st_autofree char *apath = st_sprintf("%s/action", spath);
    struct http_result stop = http(env.base, "POST", apath, hm, "{\"os-stop\": null}");
    assert_int_equal(stop.status, 409);
    assert_non_null(strstr(stop.body, "conflictingRequest"));
    assert_non_null(strstr(stop.body, "while it is in vm_state error"));
    free(stop.body);

    struct http_result list = http(env.base, "GET", "/compute/v2.1/servers?name=web", hm, NULL);
    assert_int_equal(list.status, 200);
    st_autoptr(json_t) lj = json_loads(list.body, 0, NULL);
    free(list.body);
    assert_int_equal(json_array_size(json_object_get(lj, "servers")), 1);
    /* the admin's own project has none; all_tenants shows every project's */
    struct http_result alist = http(env.base, "GET", "/compute/v2.1/servers/detail", ha, NULL);
    st_autoptr(json_t) alj = json_loads(alist.body, 0, NULL);
    free(alist.body);
    assert_int_equal(json_array_size(json_object_get(alj, "servers")), 0);
    struct http_result all =
        http(env.base, "GET", "/compute/v2.1/servers/detail?all_tenants=1", ha, NULL);
    st_autoptr(json_t) allj = json_loads(all.body, 0, NULL);
    free(all.body);
    assert_int_equal(json_array_size(json_object_get(allj, "servers")), 1);

    st_autofree char *qpath = st_sprintf("/compute/v2.1/os-quota-sets/%s", sget(proj, "id", NULL));
    struct http_result q = http(env.base, "GET", qpath, hm, NULL);
    assert_int_equal(q.status, 200);
    st_autoptr(json_t) qj = json_loads(q.body, 0, NULL);
    free(q.body);
    assert_int_equal(
        json_integer_value(json_object_get(json_object_get(qj, "quota_set"), "instances")), 10);
    struct http_result qs =
        http(env.base, "PUT", qpath, hm, "{\"quota_set\": {\"instances\": 50}}");
    assert_int_equal(qs.status, 403); /* admins only */
    free(qs.body);

    /* the node token opens nothing but the internal API */
    st_autofree char *hn = st_sprintf("X-Node-Token: %s", env.node_token);
    st_autofree char *hnk = st_sprintf("X-Auth-Token: %s", env.node_token);
    struct http_result n1 = http(env.base, "GET", spath, hn, NULL);
    struct http_result n2 = http(env.base, "GET", spath, hnk, NULL);
    assert_int_equal(n1.status, 401);
    assert_int_equal(n2.status, 401);
    free(n1.body);
    free(n2.body);

    struct http_result del = http(env.base, "DELETE", spath, hm, NULL);
    assert_int_equal(del.status, 204);
    free(del.body);
    struct http_result after = http(env.base, "GET", spath, hm, NULL);
    assert_int_equal(after.status, 404);
    st_autofree char *want = st_sprintf("{\"itemNotFound\":{\"code\":404,\"message\":\"Instance %s "
                                        "could not be found.\"}}",
                                        id);
    assert_string_equal(after.body, want);
    free(after.body);
    api_stop(&env);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(test_create_document, clean),
        cmocka_unit_test_setup(test_create_validation, clean),
        cmocka_unit_test_setup(test_get_not_found, clean),
        cmocka_unit_test_setup(test_list, clean),
        cmocka_unit_test_setup(test_quota_limits, clean),
        cmocka_unit_test_setup(test_quota_race, clean),
        cmocka_unit_test_setup(test_quota_phantom, clean),
        cmocka_unit_test_setup(test_quota_claims, clean),
        cmocka_unit_test_setup(test_quota_phantom_claim, clean),
        cmocka_unit_test_setup(test_quota_legacy_usage, clean),
        cmocka_unit_test_setup(test_quota_history_bytes, clean),
        cmocka_unit_test_setup(test_delete_unplaced, clean),
        cmocka_unit_test_setup(test_delete_placed_and_destroyed, clean),
        cmocka_unit_test_setup(test_actions, clean),
        cmocka_unit_test_setup(test_report_unchanged, clean),
        cmocka_unit_test_setup(test_console, clean),
        cmocka_unit_test_setup(test_watch_host, clean),
        cmocka_unit_test_setup(test_node_put, clean),
        cmocka_unit_test_setup(test_node_token, clean),
        cmocka_unit_test_setup(test_internal_api, clean),
        cmocka_unit_test_setup(test_nova_api, clean),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
