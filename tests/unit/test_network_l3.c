/* Unit tests of the L3 side of the network service over a temporary SQLite
 * store: each project's one "default" security group under concurrent first
 * calls, rule validation and duplicates as Neutron words them, lists scoped
 * to the caller's project even for admins, routers with a gateway and
 * interfaces, floating IP association and the InUse conflicts, and the node
 * view of a two-node setup (peers, remote ports, groups and members, the
 * router on the l3 node). */
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
#include "lib/times.h"
#include "network/model.h"
#include "network/network.h"
#include "store/kv.h"

static const struct st_network_caller alice = {"aaaa0000aaaa0000aaaa0000aaaa0000", "u-alice",
                                               false};
static const struct st_network_caller bob = {"bbbb0000bbbb0000bbbb0000bbbb0000", "u-bob", false};
static const struct st_network_caller admin = {"cccc0000cccc0000cccc0000cccc0000", "u-admin", true};

struct fixture {
    char dir[64];
    struct st_kv *kv;
};

static int setup(void **state)
{
    struct fixture *f = st_new0(struct fixture, 1);
    strcpy(f->dir, "/tmp/st-test-network-l3-XXXXXX");
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

/* Runs a call that must fail with code, and checks its message. */
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

/* ---- builders ---- */

static char *make_network(struct st_kv *kv, const struct st_network_caller *who, const char *name,
                          const char *cidr, char **ret_subnet)
{
    st_autoptr(json_t) net = NULL;
    st_autoptr(json_t) subnet = NULL;
    st_autoptr(json_t) req = json_pack("{s:s}", "name", name);
    assert_ok(st_network_create(kv, who, req, &net, &err_));
    st_autoptr(json_t) sreq = json_pack("{s:s, s:s, s:s, s:i}", "name", name, "network_id",
                                        str(net, "id"), "cidr", cidr, "ip_version", 4);
    assert_ok(st_subnet_create(kv, who, sreq, &subnet, &err_));
    if (ret_subnet)
        *ret_subnet = st_strdup(str(subnet, "id"));
    return st_strdup(str(net, "id"));
}

static char *make_external(struct st_kv *kv, char **ret_subnet)
{
    st_autoptr(json_t) net = NULL;
    st_autoptr(json_t) subnet = NULL;
    st_autoptr(json_t) req = J("{\"name\": \"public\", \"router:external\": true}");
    assert_ok(st_network_create(kv, &admin, req, &net, &err_));
    st_autoptr(json_t) sreq = json_pack("{s:s, s:s, s:s, s:i}", "name", "public", "network_id",
                                        str(net, "id"), "cidr", "203.0.113.0/24", "ip_version", 4);
    assert_ok(st_subnet_create(kv, &admin, sreq, &subnet, &err_));
    if (ret_subnet)
        *ret_subnet = st_strdup(str(subnet, "id"));
    return st_strdup(str(net, "id"));
}

/* A server document as Nova keeps it, placed on host. */
static void put_server(struct st_kv *kv, const char *id, const char *host)
{
    st_autoptr(json_t) doc =
        json_pack("{s:s, s:{s:s, s:b}}", "id", id, "spec", "host", host, "deleted", false);
    st_autofree char *text = st_json_dumps(doc);
    st_autofree char *key = st_sprintf("%s%s", ST_COMPUTE_SERVERS_PREFIX, id);
    assert_int_equal(st_kv_put(kv, key, text, strlen(text), ST_KV_ANY, NULL, NULL), 0);
}

static json_t *make_port(struct st_kv *kv, const struct st_network_caller *who, const char *net,
                         const char *server, const char *sg)
{
    json_t *port = NULL;
    st_autoptr(json_t) req = json_pack("{s:s}", "network_id", net);
    if (server) {
        json_object_set_new(req, "device_id", json_string(server));
        json_object_set_new(req, "device_owner", json_string("compute:nova"));
    }
    if (sg)
        json_object_set_new(req, "security_groups", json_pack("[s]", sg));
    assert_ok(st_port_create(kv, who, req, &port, &err_));
    return port;
}

static const char *port_ip(json_t *port)
{
    return str(json_array_get(json_object_get(port, "fixed_ips"), 0), "ip_address");
}

static char *default_group(struct st_kv *kv, const struct st_network_caller *who)
{
    char *id = NULL;
    json_t *doc = NULL;
    assert_ok(st_security_group_resolve(kv, who, "default", &id, &doc, &err_));
    json_decref(doc);
    return id;
}

static char *make_group(struct st_kv *kv, const struct st_network_caller *who, const char *name)
{
    st_autoptr(json_t) sg = NULL;
    st_autoptr(json_t) req = json_pack("{s:s}", "name", name);
    assert_ok(st_security_group_create(kv, who, req, &sg, &err_));
    return st_strdup(str(sg, "id"));
}

static size_t count_prefix(struct st_kv *kv, const char *prefix)
{
    st_autoptr(st_kv_list) l = NULL;
    assert_int_equal(st_kv_list(kv, prefix, NULL, 0, &l, NULL), 0);
    return l->count;
}

/* ---- security groups ---- */

struct race {
    struct st_kv *kv;
    pthread_barrier_t *start;
    json_t *list;
    int rc;
};

static void *first_call(void *arg)
{
    struct race *r = arg;
    st_autoptr(json_t) filters = json_pack("{s:s}", "name", "default");
    pthread_barrier_wait(r->start);
    r->rc = st_security_group_list(r->kv, &alice, filters, &r->list, NULL);
    return NULL;
}

static void test_default_group_once(void **state)
{
    struct fixture *f = *state;
    enum { N = 8 };
    pthread_barrier_t start;
    pthread_barrier_init(&start, NULL, N);
    struct race races[N];
    pthread_t threads[N];
    for (int i = 0; i < N; i++) {
        races[i] = (struct race){.kv = f->kv, .start = &start};
        assert_int_equal(pthread_create(&threads[i], NULL, first_call, &races[i]), 0);
    }
    for (int i = 0; i < N; i++)
        pthread_join(threads[i], NULL);
    pthread_barrier_destroy(&start);
    const char *id = NULL;
    for (int i = 0; i < N; i++) {
        assert_int_equal(races[i].rc, 0);
        assert_int_equal(json_array_size(races[i].list), 1);
        const char *got = str(json_array_get(races[i].list, 0), "id");
        if (id)
            assert_string_equal(got, id);
        id = got;
    }
    assert_int_equal(count_prefix(f->kv, ST_NETWORK_SGS_PREFIX), 1);

    /* Neutron's four rules: egress anywhere, ingress from the group itself */
    json_t *sg = json_array_get(races[0].list, 0);
    assert_string_equal(str(sg, "name"), "default");
    assert_string_equal(str(sg, "tenant_id"), alice.project_id);
    json_t *rules = json_object_get(sg, "security_group_rules");
    assert_int_equal(json_array_size(rules), 4);
    int egress = 0, ingress_self = 0;
    size_t i;
    json_t *rule;
    json_array_foreach(rules, i, rule)
    {
        assert_true(json_is_null(json_object_get(rule, "protocol")));
        assert_true(json_is_null(json_object_get(rule, "remote_ip_prefix")));
        if (strcmp(str(rule, "direction"), "egress") == 0 &&
            json_is_null(json_object_get(rule, "remote_group_id")))
            egress++;
        if (strcmp(str(rule, "direction"), "ingress") == 0 &&
            strcmp(str(rule, "remote_group_id") ?: "", id) == 0)
            ingress_self++;
    }
    assert_int_equal(egress, 2);
    assert_int_equal(ingress_self, 2);
    for (int k = 0; k < N; k++)
        json_decref(races[k].list);
}

static void test_lists_scoped_per_project(void **state)
{
    struct fixture *f = *state;
    st_autofree char *a_default = default_group(f->kv, &alice);
    st_autofree char *b_default = default_group(f->kv, &bob);
    assert_string_not_equal(a_default, b_default);

    /* even an admin sees only its own project's "default" in a list */
    st_autoptr(json_t) filters = json_pack("{s:s}", "name", "default");
    st_autoptr(json_t) list = NULL;
    assert_ok(st_security_group_list(f->kv, &admin, filters, &list, &err_));
    assert_int_equal(json_array_size(list), 1);
    assert_string_equal(str(json_array_get(list, 0), "project_id"), admin.project_id);
    /* ... but may read another project's group by id */
    st_autoptr(json_t) doc = NULL;
    assert_ok(st_security_group_get(f->kv, &admin, a_default, &doc, &err_));
    json_t *none = NULL;
    assert_fails(-ENOENT, "does not exist",
                 st_security_group_get(f->kv, &bob, a_default, &none, &err_));

    st_autofree char *web1 = make_group(f->kv, &alice, "web");
    st_autofree char *web2 = make_group(f->kv, &alice, "web");
    char *id = NULL;
    assert_fails(-EBUSY, "Multiple security_group matches found for name 'web'",
                 st_security_group_resolve(f->kv, &alice, "web", &id, NULL, &err_));
    assert_ok(st_security_group_resolve(f->kv, &alice, web1, &id, NULL, &err_));
    assert_string_equal(id, web1);
    free(id);
    assert_fails(-ENOENT, "does not exist",
                 st_security_group_resolve(f->kv, &bob, "web", &id, NULL, &err_));
    st_autoptr(json_t) dreq = J("{\"name\": \"default\"}");
    assert_fails(-EEXIST, "Default security group already exists",
                 st_security_group_create(f->kv, &alice, dreq, &none, &err_));
    /* the description defaults to the name; new groups allow egress only */
    st_autoptr(json_t) web = NULL;
    assert_ok(st_security_group_get(f->kv, &alice, web2, &web, &err_));
    assert_string_equal(str(web, "description"), "web");
    assert_int_equal(json_array_size(json_object_get(web, "security_group_rules")), 2);
    st_autoptr(json_t) rename = J("{\"name\": \"www\"}");
    st_autoptr(json_t) renamed = NULL;
    assert_ok(st_security_group_update(f->kv, &alice, web2, rename, &renamed, &err_));
    assert_string_equal(str(renamed, "name"), "www");
    assert_fails(-EBUSY, "Updating default security group not allowed",
                 st_security_group_update(f->kv, &alice, a_default, rename, &none, &err_));
}

static int try_rule(struct st_kv *kv, const char *sg, const char *fields, json_t **ret,
                    char **ret_msg)
{
    st_autoptr(json_t) req = J(fields);
    json_object_set_new(req, "security_group_id", json_string(sg));
    st_autoptr(st_err) err = NULL;
    int r = st_security_group_rule_create(kv, &alice, req, ret, &err);
    *ret_msg = st_strdup(err ? err->msg : "");
    return r;
}

static void test_rule_validation(void **state)
{
    struct fixture *f = *state;
    st_autofree char *sg = make_group(f->kv, &alice, "web");
    static const struct {
        const char *fields;
        int code;
        const char *msg;
    } cases[] = {
        {"{\"direction\": \"sideways\"}", -EINVAL, "is not in ['ingress', 'egress']"},
        {"{\"direction\": \"ingress\", \"ethertype\": \"IPv5\"}", -EINVAL, "ethertype"},
        {"{\"direction\": \"ingress\", \"protocol\": \"foo\"}", -EINVAL,
         "protocol foo not supported"},
        {"{\"direction\": \"ingress\", \"protocol\": \"256\"}", -EINVAL, "not supported"},
        {"{\"direction\": \"ingress\", \"protocol\": \"tcp\", \"port_range_min\": 90, "
         "\"port_range_max\": 80}",
         -EINVAL, "port_range_min must be <= port_range_max"},
        {"{\"direction\": \"ingress\", \"protocol\": \"tcp\", \"port_range_min\": 0, "
         "\"port_range_max\": 80}",
         -EINVAL, "Invalid value for port 0"},
        {"{\"direction\": \"ingress\", \"protocol\": \"udp\", \"port_range_min\": 1, "
         "\"port_range_max\": 70000}",
         -EINVAL, "Invalid value for port 70000"},
        {"{\"direction\": \"ingress\", \"port_range_min\": 22, \"port_range_max\": 22}", -EINVAL,
         "Must also specify protocol"},
        {"{\"direction\": \"ingress\", \"protocol\": \"gre\", \"port_range_min\": 1, "
         "\"port_range_max\": 2}",
         -EINVAL, "Invalid protocol gre for port range"},
        {"{\"direction\": \"ingress\", \"protocol\": \"icmp\", \"port_range_min\": 256}", -EINVAL,
         "ICMP type (port_range_min) 256"},
        {"{\"direction\": \"ingress\", \"protocol\": \"icmp\", \"port_range_max\": 0}", -EINVAL,
         "ICMP type (port-range-min) is missing"},
        {"{\"direction\": \"ingress\", \"protocol\": \"icmpv6\"}", -EINVAL,
         "Invalid ethertype IPv4 for protocol icmpv6"},
        {"{\"direction\": \"ingress\", \"ethertype\": \"IPv6\", \"remote_ip_prefix\": "
         "\"10.0.0.0/8\"}",
         -EINVAL, "Conflicting value ethertype IPv6 for CIDR 10.0.0.0/8"},
        {"{\"direction\": \"ingress\", \"remote_ip_prefix\": \"10.0.0.300/8\"}", -EINVAL,
         "is not a valid IP subnet"},
        {"{\"direction\": \"ingress\", \"remote_ip_prefix\": \"10.0.0.0/33\"}", -EINVAL,
         "is not a valid IP subnet"},
        {"{\"direction\": \"ingress\", \"remote_ip_prefix\": \"10.0.0.0/8\", "
         "\"remote_group_id\": \"5a1e0f4c-0000-4000-8000-000000000000\"}",
         -EINVAL, "Only remote_ip_prefix or remote_group_id may be provided"},
        {"{\"direction\": \"ingress\", \"remote_group_id\": "
         "\"5a1e0f4c-0000-4000-8000-000000000000\"}",
         -ENOENT, "Security group 5a1e0f4c-0000-4000-8000-000000000000 does not exist"},
    };
    for (size_t i = 0; i < ST_ARRAY_SIZE(cases); i++) {
        json_t *rule = NULL;
        st_autofree char *msg = NULL;
        int r = try_rule(f->kv, sg, cases[i].fields, &rule, &msg);
        if (r != cases[i].code || !strstr(msg, cases[i].msg))
            fail_msg("%s: got %d \"%s\", want %d \"%s\"", cases[i].fields, r, msg, cases[i].code,
                     cases[i].msg);
        assert_null(rule);
    }

    /* what the CLI's `rule create --protocol tcp --dst-port 80 web` sends */
    st_autoptr(json_t) http = NULL;
    st_autofree char *msg = NULL;
    assert_int_equal(try_rule(f->kv, sg,
                              "{\"direction\": \"ingress\", \"ethertype\": \"IPv4\", \"protocol\": "
                              "\"tcp\", \"port_range_min\": 80, \"port_range_max\": 80, "
                              "\"remote_ip_prefix\": \"0.0.0.0/0\"}",
                              &http, &msg),
                     0);
    assert_string_equal(str(http, "protocol"), "tcp");
    assert_int_equal(json_integer_value(json_object_get(http, "port_range_min")), 80);
    assert_string_equal(str(http, "security_group_id"), sg);
    assert_string_equal(str(http, "normalized_cidr"), "0.0.0.0/0");
    assert_string_equal(str(http, "tenant_id"), alice.project_id);
    /* the same rule again, with the protocol as its number */
    json_t *dup = NULL;
    st_autofree char *dmsg = NULL;
    assert_int_equal(try_rule(f->kv, sg,
                              "{\"direction\": \"ingress\", \"protocol\": \"6\", "
                              "\"port_range_min\": 80, \"port_range_max\": 80, "
                              "\"remote_ip_prefix\": \"0.0.0.0/0\"}",
                              &dup, &dmsg),
                     -EEXIST);
    st_autofree char *want =
        st_sprintf("Security group rule already exists. Rule id is %s.", str(http, "id"));
    assert_string_equal(dmsg, want);

    /* prefixes are normalized, as Neutron's normalized_cidr */
    st_autoptr(json_t) v4 = NULL;
    st_autoptr(json_t) v6 = NULL;
    st_autoptr(json_t) icmp = NULL;
    st_autofree char *m1 = NULL, *m2 = NULL, *m3 = NULL;
    assert_int_equal(try_rule(f->kv, sg,
                              "{\"direction\": \"ingress\", \"protocol\": \"any\", "
                              "\"remote_ip_prefix\": \"10.1.2.3/16\"}",
                              &v4, &m1),
                     0);
    assert_string_equal(str(v4, "remote_ip_prefix"), "10.1.0.0/16");
    assert_true(json_is_null(json_object_get(v4, "protocol")));
    assert_int_equal(try_rule(f->kv, sg,
                              "{\"direction\": \"ingress\", \"ethertype\": \"ipv6\", "
                              "\"remote_ip_prefix\": \"2001:db8::1/32\"}",
                              &v6, &m2),
                     0);
    assert_string_equal(str(v6, "ethertype"), "IPv6");
    assert_string_equal(str(v6, "normalized_cidr"), "2001:db8::/32");
    assert_int_equal(try_rule(f->kv, sg,
                              "{\"direction\": \"ingress\", \"protocol\": \"icmp\", "
                              "\"port_range_min\": 8, \"port_range_max\": 0}",
                              &icmp, &m3),
                     0);

    /* list with filters, get, delete */
    st_autoptr(json_t) filters =
        json_pack("{s:s, s:s}", "security_group_id", sg, "direction", "ingress");
    st_autoptr(json_t) list = NULL;
    assert_ok(st_security_group_rule_list(f->kv, &alice, filters, &list, &err_));
    assert_int_equal(json_array_size(list), 4);
    json_t *none = NULL;
    assert_fails(-ENOENT, "does not exist",
                 st_security_group_rule_get(f->kv, &bob, str(http, "id"), &none, &err_));
    assert_ok(st_security_group_rule_delete(f->kv, &alice, str(http, "id"), &err_));
    assert_fails(-ENOENT, "does not exist",
                 st_security_group_rule_get(f->kv, &alice, str(http, "id"), &none, &err_));
    assert_fails(-ENOENT, "does not exist",
                 st_security_group_rule_delete(f->kv, &alice, str(http, "id"), &err_));
    st_autoptr(json_t) got = NULL;
    assert_ok(st_security_group_rule_get(f->kv, &alice, str(icmp, "id"), &got, &err_));
    assert_int_equal(json_integer_value(json_object_get(got, "port_range_min")), 8);
}

static void test_group_in_use(void **state)
{
    struct fixture *f = *state;
    st_autofree char *net = make_network(f->kv, &alice, "private", "10.0.2.0/24", NULL);
    st_autofree char *web = make_group(f->kv, &alice, "web");
    st_autofree char *db = make_group(f->kv, &alice, "db");
    st_autofree char *a_default = default_group(f->kv, &alice);
    st_autoptr(json_t) port = make_port(f->kv, &alice, net, NULL, web);
    assert_fails(-EBUSY, "in use", st_security_group_delete(f->kv, &alice, web, &err_));
    assert_fails(-EBUSY, "Insufficient rights for removing default security group",
                 st_security_group_delete(f->kv, &alice, a_default, &err_));
    assert_fails(-ENOENT, "does not exist", st_security_group_delete(f->kv, &bob, db, &err_));

    /* deleting a group drops the rules that name it as their remote group */
    st_autoptr(json_t) rule = NULL;
    st_autofree char *msg = NULL;
    st_autofree char *fields =
        st_sprintf("{\"direction\": \"ingress\", \"remote_group_id\": \"%s\"}", db);
    assert_int_equal(try_rule(f->kv, web, fields, &rule, &msg), 0);
    assert_ok(st_security_group_delete(f->kv, &alice, db, &err_));
    json_t *none = NULL;
    assert_fails(-ENOENT, "does not exist",
                 st_security_group_rule_get(f->kv, &alice, str(rule, "id"), &none, &err_));

    assert_ok(st_port_delete(f->kv, &alice, str(port, "id"), &err_));
    assert_ok(st_security_group_delete(f->kv, &alice, web, &err_));
    /* an admin may delete a project's default group; the next call makes a new one */
    assert_ok(st_security_group_delete(f->kv, &admin, a_default, &err_));
    st_autofree char *again = default_group(f->kv, &alice);
    assert_string_not_equal(again, a_default);
}

/* ---- routers and floating IPs ---- */

/* The router's gateway port, read from the store (it belongs to no project,
 * as in Neutron, so no project's list shows it). */
static json_t *gateway_port(struct st_kv *kv, const char *router_id)
{
    st_autoptr(st_kv_list) l = NULL;
    assert_int_equal(st_kv_list(kv, ST_NETWORK_PORTS_PREFIX, NULL, 0, &l, NULL), 0);
    for (size_t i = 0; i < l->count; i++) {
        json_t *port = J(l->entries[i].value);
        if (strcmp(str(port, "device_id"), router_id) == 0 &&
            strcmp(str(port, "device_owner"), "network:router_gateway") == 0)
            return port;
        json_decref(port);
    }
    return NULL;
}

/* A node's compute document, heartbeating now: its lease holds, so an l3
 * node can take routers. */
static void put_running_node(struct st_kv *kv, const char *name)
{
    char now[ST_TIME_RFC3339_LEN];
    st_time_rfc3339(st_time_now_ms() / 1000, now, sizeof(now));
    st_autoptr(json_t) doc =
        json_pack("{s:s, s:s, s:i}", "name", name, "heartbeat_at", now, "lease_seconds", 30);
    st_autofree char *text = st_json_dumps(doc);
    st_autofree char *key = st_sprintf("%s%s", ST_COMPUTE_NODES_PREFIX, name);
    assert_int_equal(st_kv_put(kv, key, text, strlen(text), ST_KV_ANY, NULL, NULL), 0);
}

static void register_nodes(struct st_kv *kv)
{
    st_autoptr(json_t) n1 =
        J("{\"vtep\": \"192.0.2.1\", \"uplink_mtu\": 1500, \"external_bridge\": \"br-ex\"}");
    st_autoptr(json_t) n2 = J("{\"vtep\": \"192.0.2.2\", \"uplink_mtu\": 1500, \"l3\": false}");
    assert_ok(st_network_node_register(kv, "n1", n1, &err_));
    assert_ok(st_network_node_register(kv, "n2", n2, &err_));
}

static void test_router_and_floating_ip(void **state)
{
    struct fixture *f = *state;
    register_nodes(f->kv);
    put_running_node(f->kv, "n1");
    put_running_node(f->kv, "n2");
    st_autofree char *ext_subnet = NULL, *subnet = NULL, *subnet2 = NULL;
    st_autofree char *ext = make_external(f->kv, &ext_subnet);
    st_autofree char *net = make_network(f->kv, &alice, "private", "10.0.2.0/24", &subnet);
    st_autofree char *net2 = make_network(f->kv, &alice, "other", "10.0.3.0/24", &subnet2);

    json_t *none = NULL;
    st_autoptr(json_t) bad =
        json_pack("{s:s, s:{s:s}}", "name", "r", "external_gateway_info", "network_id", net);
    assert_fails(-EINVAL, "is not an external network",
                 st_router_create(f->kv, &alice, bad, &none, &err_));
    st_autoptr(json_t) req =
        json_pack("{s:s, s:{s:s}}", "name", "r1", "external_gateway_info", "network_id", ext);
    st_autoptr(json_t) router = NULL;
    assert_ok(st_router_create(f->kv, &alice, req, &router, &err_));
    const char *rid = str(router, "id");
    json_t *egi = json_object_get(router, "external_gateway_info");
    assert_true(json_is_true(json_object_get(egi, "enable_snat")));
    json_t *gw_ip = json_array_get(json_object_get(egi, "external_fixed_ips"), 0);
    assert_string_equal(str(gw_ip, "subnet_id"), ext_subnet);
    assert_true(strncmp(str(gw_ip, "ip_address"), "203.0.113.", 10) == 0);
    assert_string_equal(str(router, "host"), "n1"); /* the only l3 node */
    st_autoptr(json_t) gw = gateway_port(f->kv, rid);
    assert_non_null(gw);
    assert_string_equal(port_ip(gw), str(gw_ip, "ip_address"));

    /* interfaces: one per subnet, holding its gateway address */
    st_autoptr(json_t) body = json_pack("{s:s}", "subnet_id", subnet);
    st_autoptr(json_t) itf = NULL;
    assert_ok(st_router_add_interface(f->kv, &alice, rid, body, &itf, &err_));
    assert_string_equal(str(itf, "subnet_id"), subnet);
    assert_string_equal(str(itf, "network_id"), net);
    st_autoptr(json_t) itf_port = NULL;
    assert_ok(st_port_get(f->kv, &alice, str(itf, "port_id"), &itf_port, &err_));
    assert_string_equal(port_ip(itf_port), "10.0.2.1");
    assert_string_equal(str(itf_port, "device_owner"), "network:router_interface");
    assert_string_equal(str(itf_port, "device_id"), rid);
    assert_fails(-EBUSY, "already has an interface",
                 st_router_add_interface(f->kv, &alice, rid, body, &none, &err_));
    st_autoptr(json_t) r2req = J("{\"name\": \"r2\"}");
    st_autoptr(json_t) r2 = NULL;
    assert_ok(st_router_create(f->kv, &alice, r2req, &r2, &err_));
    assert_fails(-EBUSY, "already has an interface",
                 st_router_add_interface(f->kv, &alice, str(r2, "id"), body, &none, &err_));
    assert_fails(-ENOENT, "could not be found",
                 st_router_add_interface(f->kv, &bob, rid, body, &none, &err_));

    /* a floating IP for a server's port behind the router */
    put_server(f->kv, "11111111-0000-4000-8000-000000000001", "n2");
    st_autoptr(json_t) port =
        make_port(f->kv, &alice, net, "11111111-0000-4000-8000-000000000001", NULL);
    st_autoptr(json_t) freq =
        json_pack("{s:s, s:s}", "floating_network_id", ext, "port_id", str(port, "id"));
    st_autoptr(json_t) fip = NULL;
    assert_ok(st_floatingip_create(f->kv, &alice, freq, &fip, &err_));
    assert_string_equal(str(fip, "status"), "ACTIVE");
    assert_string_equal(str(fip, "router_id"), rid);
    assert_string_equal(str(fip, "fixed_ip_address"), port_ip(port));
    assert_true(strncmp(str(fip, "floating_ip_address"), "203.0.113.", 10) == 0);
    assert_string_not_equal(str(fip, "floating_ip_address"), str(gw_ip, "ip_address"));
    assert_null(json_object_get(fip, "_port"));
    assert_fails(-EBUSY, "already has a floating IP",
                 st_floatingip_create(f->kv, &alice, freq, &none, &err_));
    /* a port on a subnet without a router interface is unreachable */
    st_autoptr(json_t) lonely = make_port(f->kv, &alice, net2, NULL, NULL);
    st_autoptr(json_t) lreq =
        json_pack("{s:s, s:s}", "floating_network_id", ext, "port_id", str(lonely, "id"));
    st_autofree char *unreachable = st_sprintf(
        "External network %s is not reachable from subnet %s.  Therefore, cannot associate Port "
        "%s with a Floating IP.",
        ext, subnet2, str(lonely, "id"));
    assert_fails(-ENOENT, unreachable, st_floatingip_create(f->kv, &alice, lreq, &none, &err_));
    st_autoptr(json_t) nreq = json_pack("{s:s}", "floating_network_id", net);
    assert_fails(-EINVAL, "is not a valid external network",
                 st_floatingip_create(f->kv, &alice, nreq, &none, &err_));

    /* InUse conflicts while the floating IP and the interface are there */
    st_autoptr(json_t) clear = J("{\"external_gateway_info\": null}");
    assert_fails(-EBUSY, "required by one or more floating IPs",
                 st_router_update(f->kv, &alice, rid, clear, &none, &err_));
    assert_fails(-EBUSY, "required by one or more floating IPs",
                 st_router_remove_interface(f->kv, &alice, rid, body, &none, &err_));
    assert_fails(-EBUSY, "still has ports", st_router_delete(f->kv, &alice, rid, &err_));

    /* disassociate, associate again, disassociate */
    st_autoptr(json_t) off = J("{\"port_id\": null}");
    st_autoptr(json_t) fip_off = NULL;
    assert_ok(st_floatingip_update(f->kv, &alice, str(fip, "id"), off, &fip_off, &err_));
    assert_string_equal(str(fip_off, "status"), "DOWN");
    assert_true(json_is_null(json_object_get(fip_off, "router_id")));
    st_autoptr(json_t) on = json_pack("{s:s}", "port_id", str(port, "id"));
    st_autoptr(json_t) fip_on = NULL;
    assert_ok(st_floatingip_update(f->kv, &alice, str(fip, "id"), on, &fip_on, &err_));
    assert_string_equal(str(fip_on, "status"), "ACTIVE");
    st_autoptr(json_t) fips = NULL;
    assert_ok(st_floatingip_list(f->kv, &bob, NULL, &fips, &err_));
    assert_int_equal(json_array_size(fips), 0);
    st_autoptr(json_t) fip_off2 = NULL;
    assert_ok(st_floatingip_update(f->kv, &alice, str(fip, "id"), off, &fip_off2, &err_));

    /* now the interface, the router (and its gateway port), the floating IP go */
    st_autoptr(json_t) removed = NULL;
    assert_ok(st_router_remove_interface(f->kv, &alice, rid, body, &removed, &err_));
    assert_string_equal(str(removed, "port_id"), str(itf, "port_id"));
    assert_fails(-ENOENT, "could not be found",
                 st_port_get(f->kv, &alice, str(itf, "port_id"), &none, &err_));
    assert_ok(st_router_delete(f->kv, &alice, rid, &err_));
    st_autoptr(json_t) gone = gateway_port(f->kv, rid);
    assert_null(gone);
    assert_ok(st_floatingip_delete(f->kv, &alice, str(fip, "id"), &err_));
    assert_fails(-ENOENT, "could not be found",
                 st_floatingip_get(f->kv, &alice, str(fip, "id"), &none, &err_));
    /* the external subnet holds no address now: only the deleted ports had any */
    st_autofree char *ipam = st_sprintf("%s%s/", ST_NETWORK_IPAM_PREFIX, ext_subnet);
    assert_int_equal(count_prefix(f->kv, ipam), 0);

    /* an interface by port, removed by port */
    st_autoptr(json_t) pbody = json_pack("{s:s}", "port_id", str(lonely, "id"));
    st_autoptr(json_t) pitf = NULL;
    assert_ok(st_router_add_interface(f->kv, &alice, str(r2, "id"), pbody, &pitf, &err_));
    assert_string_equal(str(pitf, "port_id"), str(lonely, "id"));
    assert_string_equal(str(pitf, "subnet_id"), subnet2);
    assert_ok(st_router_remove_interface(f->kv, &alice, str(r2, "id"), pbody, &none, &err_));
    json_decref(none);

    /* a gateway set later, SNAT turned off in place, then the gateway cleared */
    st_autoptr(json_t) setgw = json_pack("{s:{s:s}}", "external_gateway_info", "network_id", ext);
    st_autoptr(json_t) r2gw = NULL;
    assert_ok(st_router_update(f->kv, &alice, str(r2, "id"), setgw, &r2gw, &err_));
    json_t *egi2 = json_object_get(r2gw, "external_gateway_info");
    const char *ip2 =
        str(json_array_get(json_object_get(egi2, "external_fixed_ips"), 0), "ip_address");
    assert_non_null(ip2);
    st_autoptr(json_t) nosnat = json_pack("{s:{s:s, s:b}}", "external_gateway_info", "network_id",
                                          ext, "enable_snat", false);
    st_autoptr(json_t) r2b = NULL;
    assert_ok(st_router_update(f->kv, &alice, str(r2, "id"), nosnat, &r2b, &err_));
    json_t *egi3 = json_object_get(r2b, "external_gateway_info");
    assert_true(json_is_false(json_object_get(egi3, "enable_snat")));
    assert_string_equal(
        str(json_array_get(json_object_get(egi3, "external_fixed_ips"), 0), "ip_address"), ip2);
    st_autoptr(json_t) r2c = NULL;
    assert_ok(st_router_update(f->kv, &alice, str(r2, "id"), clear, &r2c, &err_));
    assert_true(json_is_null(json_object_get(r2c, "external_gateway_info")));
    st_autoptr(json_t) gone2 = gateway_port(f->kv, str(r2, "id"));
    assert_null(gone2);
    assert_ok(st_router_delete(f->kv, &alice, str(r2, "id"), &err_));
}

/* ---- the node view ---- */

static json_t *find_by(json_t *arr, const char *key, const char *value)
{
    size_t i;
    json_t *el;
    json_array_foreach(arr, i, el)
    {
        if (str(el, key) && strcmp(str(el, key), value) == 0)
            return el;
    }
    return NULL;
}

static bool has_string(json_t *arr, const char *s)
{
    size_t i;
    json_t *el;
    json_array_foreach(arr, i, el)
    {
        if (strcmp(json_string_value(el) ?: "", s) == 0)
            return true;
    }
    return false;
}

static void test_node_view_two_nodes(void **state)
{
    struct fixture *f = *state;
    /* made before any node reported l3: no host, in nobody's view */
    st_autoptr(json_t) lost = NULL;
    st_autoptr(json_t) lreq = J("{\"name\": \"early\"}");
    assert_ok(st_router_create(f->kv, &alice, lreq, &lost, &err_));
    assert_true(json_is_null(json_object_get(lost, "host")));
    register_nodes(f->kv);
    put_running_node(f->kv, "n1");
    put_running_node(f->kv, "n2");
    st_autofree char *ext_subnet = NULL, *subnet = NULL;
    st_autofree char *ext = make_external(f->kv, &ext_subnet);
    st_autofree char *net = make_network(f->kv, &alice, "private", "10.0.2.0/24", &subnet);
    st_autofree char *a_default = default_group(f->kv, &alice);
    st_autofree char *web = make_group(f->kv, &alice, "web");
    st_autoptr(json_t) rule = NULL;
    st_autofree char *msg = NULL;
    st_autofree char *fields = st_sprintf("{\"direction\": \"ingress\", \"protocol\": \"tcp\", "
                                          "\"port_range_min\": 22, \"port_range_max\": 22, "
                                          "\"remote_group_id\": \"%s\"}",
                                          a_default);
    assert_int_equal(try_rule(f->kv, web, fields, &rule, &msg), 0);

    const char *s1 = "11111111-0000-4000-8000-000000000001";
    const char *s2 = "22222222-0000-4000-8000-000000000002";
    put_server(f->kv, s1, "n1");
    put_server(f->kv, s2, "n2");
    st_autoptr(json_t) p1 = make_port(f->kv, &alice, net, s1, a_default);
    st_autoptr(json_t) p2 = make_port(f->kv, &alice, net, s2, web);
    st_autoptr(json_t) rreq =
        json_pack("{s:s, s:{s:s}}", "name", "r1", "external_gateway_info", "network_id", ext);
    st_autoptr(json_t) router = NULL;
    assert_ok(st_router_create(f->kv, &alice, rreq, &router, &err_));
    st_autoptr(json_t) body = json_pack("{s:s}", "subnet_id", subnet);
    st_autoptr(json_t) itf = NULL;
    assert_ok(st_router_add_interface(f->kv, &alice, str(router, "id"), body, &itf, &err_));
    st_autoptr(json_t) freq =
        json_pack("{s:s, s:s}", "floating_network_id", ext, "port_id", str(p2, "id"));
    st_autoptr(json_t) fip = NULL;
    assert_ok(st_floatingip_create(f->kv, &alice, freq, &fip, &err_));
    st_autoptr(json_t) network = NULL;
    assert_ok(st_network_get(f->kv, &alice, net, &network, &err_));
    json_int_t vni = json_integer_value(json_object_get(network, "provider:segmentation_id"));
    assert_true(vni >= ST_NETWORK_VNI_MIN);

    st_autoptr(json_t) v1 = NULL;
    st_autoptr(json_t) v2 = NULL;
    assert_ok(st_network_node_view(f->kv, "n1", &v1, &err_));
    assert_ok(st_network_node_view(f->kv, "n2", &v2, &err_));
    assert_true(json_integer_value(json_object_get(v1, "revision")) > 0);
    assert_string_equal(str(v1, "vtep"), "192.0.2.1");
    assert_int_equal(json_integer_value(json_object_get(v1, "mtu_overhead")), 50);

    /* n1: its server's port, the tenant network with n2 as peer, the external one */
    json_t *ports1 = json_object_get(v1, "ports");
    assert_int_equal(json_array_size(ports1), 1);
    json_t *lp = json_array_get(ports1, 0);
    assert_string_equal(str(lp, "id"), str(p1, "id"));
    assert_string_equal(str(lp, "server_id"), s1);
    assert_string_equal(str(lp, "ip"), port_ip(p1));
    assert_string_equal(str(lp, "gateway"), "10.0.2.1");
    assert_int_equal(json_integer_value(json_object_get(lp, "prefixlen")), 24);
    assert_int_equal(json_integer_value(json_object_get(lp, "mtu")), 1450);
    assert_true(has_string(json_object_get(lp, "security_groups"), a_default));
    json_t *nets1 = json_object_get(v1, "networks");
    assert_int_equal(json_array_size(nets1), 2);
    json_t *private1 = find_by(nets1, "id", net);
    assert_non_null(private1);
    st_autofree char *bridge = st_sprintf("stbr-%lld", (long long)vni);
    st_autofree char *vxlan = st_sprintf("stvx-%lld", (long long)vni);
    assert_string_equal(str(private1, "bridge"), bridge);
    assert_string_equal(str(private1, "vxlan"), vxlan);
    assert_string_equal(str(private1, "type"), "vxlan");
    json_t *peers1 = json_object_get(private1, "peers");
    assert_int_equal(json_array_size(peers1), 1);
    assert_string_equal(json_string_value(json_array_get(peers1, 0)), "192.0.2.2");
    json_t *remote1 = json_object_get(private1, "remote_ports");
    assert_int_equal(json_array_size(remote1), 1);
    assert_string_equal(str(json_array_get(remote1, 0), "mac"), str(p2, "mac_address"));
    assert_string_equal(str(json_array_get(remote1, 0), "ip"), port_ip(p2));
    assert_string_equal(str(json_array_get(remote1, 0), "vtep"), "192.0.2.2");
    json_t *public1 = find_by(nets1, "id", ext);
    assert_non_null(public1);
    assert_string_equal(str(public1, "type"), "flat");
    assert_string_equal(str(public1, "bridge"), "br-ex");
    assert_true(json_is_true(json_object_get(public1, "external")));
    assert_int_equal(json_array_size(json_object_get(public1, "peers")), 0);

    /* n1 hosts the router: gateway, interface, floating IP, SNAT */
    json_t *routers1 = json_object_get(v1, "routers");
    assert_int_equal(json_array_size(routers1), 1);
    json_t *r = json_array_get(routers1, 0);
    assert_string_equal(str(r, "id"), str(router, "id"));
    assert_true(json_is_true(json_object_get(r, "snat")));
    json_t *gw = json_object_get(r, "gateway");
    assert_string_equal(
        str(gw, "ip"),
        str(json_array_get(json_object_get(json_object_get(router, "external_gateway_info"),
                                           "external_fixed_ips"),
                           0),
            "ip_address"));
    assert_string_equal(str(gw, "gateway_ip"), "203.0.113.1");
    assert_int_equal(json_integer_value(json_object_get(gw, "prefixlen")), 24);
    json_t *ifs = json_object_get(r, "interfaces");
    assert_int_equal(json_array_size(ifs), 1);
    assert_string_equal(str(json_array_get(ifs, 0), "ip"), "10.0.2.1");
    assert_string_equal(str(json_array_get(ifs, 0), "cidr"), "10.0.2.0/24");
    assert_int_equal(json_integer_value(json_object_get(json_array_get(ifs, 0), "vni")), vni);
    json_t *fips = json_object_get(r, "floating_ips");
    assert_int_equal(json_array_size(fips), 1);
    assert_string_equal(str(json_array_get(fips, 0), "ip"), str(fip, "floating_ip_address"));
    assert_string_equal(str(json_array_get(fips, 0), "fixed_ip"), port_ip(p2));
    json_t *external = json_object_get(v1, "external");
    assert_string_equal(str(external, "cidr"), "203.0.113.0/24");
    assert_string_equal(str(external, "gateway_ip"), "203.0.113.1");

    /* n1's groups: default (members: p1) */
    json_t *sgs1 = json_object_get(v1, "security_groups");
    assert_int_equal(json_object_size(sgs1), 1);
    json_t *members = json_object_get(json_object_get(sgs1, a_default), "members");
    assert_int_equal(json_array_size(members), 1);
    assert_string_equal(json_string_value(json_array_get(members, 0)), port_ip(p1));
    assert_int_equal(json_array_size(json_object_get(json_object_get(sgs1, a_default), "rules")),
                     4);

    /* n2: its port; n1 as its only peer (port and router interface behind one VTEP) */
    json_t *ports2 = json_object_get(v2, "ports");
    assert_int_equal(json_array_size(ports2), 1);
    assert_string_equal(str(json_array_get(ports2, 0), "id"), str(p2, "id"));
    json_t *nets2 = json_object_get(v2, "networks");
    assert_int_equal(json_array_size(nets2), 1);
    json_t *private2 = json_array_get(nets2, 0);
    assert_string_equal(str(private2, "id"), net);
    json_t *peers2 = json_object_get(private2, "peers");
    assert_int_equal(json_array_size(peers2), 1);
    assert_string_equal(json_string_value(json_array_get(peers2, 0)), "192.0.2.1");
    json_t *remote2 = json_object_get(private2, "remote_ports");
    assert_int_equal(json_array_size(remote2), 2);
    assert_non_null(find_by(remote2, "mac", str(p1, "mac_address")));
    json_t *router_mac = find_by(remote2, "ip", "10.0.2.1");
    assert_non_null(router_mac);
    assert_string_equal(str(router_mac, "vtep"), "192.0.2.1");
    assert_int_equal(json_array_size(json_object_get(v2, "routers")), 0);
    assert_true(json_is_null(json_object_get(v2, "external")));
    /* web (p2's) and default, which web's ssh rule names as its remote group */
    json_t *sgs2 = json_object_get(v2, "security_groups");
    assert_int_equal(json_object_size(sgs2), 2);
    json_t *web_members = json_object_get(json_object_get(sgs2, web), "members");
    assert_int_equal(json_array_size(web_members), 1);
    assert_string_equal(json_string_value(json_array_get(web_members, 0)), port_ip(p2));
    json_t *def_members = json_object_get(json_object_get(sgs2, a_default), "members");
    assert_int_equal(json_array_size(def_members), 1);
    assert_string_equal(json_string_value(json_array_get(def_members, 0)), port_ip(p1));

    /* a node with nothing on it */
    st_autoptr(json_t) v3 = NULL;
    assert_ok(st_network_node_view(f->kv, "n3", &v3, &err_));
    assert_true(json_is_null(json_object_get(v3, "vtep")));
    assert_int_equal(json_array_size(json_object_get(v3, "networks")), 0);
    assert_int_equal(json_array_size(json_object_get(v3, "ports")), 0);
    assert_int_equal(json_array_size(json_object_get(v3, "routers")), 0);
}

static void test_node_facts_and_port_status(void **state)
{
    struct fixture *f = *state;
    st_autoptr(json_t) bad = J("{\"vtep\": \"192.0.2.300\"}");
    assert_fails(-EINVAL, "vtep", st_network_node_register(f->kv, "n1", bad, &err_));
    assert_fails(-EINVAL, "node name", st_network_node_register(f->kv, "a/b", bad, &err_));
    register_nodes(f->kv);
    /* registering the same facts again writes nothing */
    int64_t rev = st_kv_revision(f->kv);
    register_nodes(f->kv);
    assert_int_equal(st_kv_revision(f->kv), rev);
    st_autoptr(st_kv_entry) e = NULL;
    assert_int_equal(st_kv_get(f->kv, ST_NETWORK_NODES_PREFIX "n1", &e, NULL), 0);
    st_autoptr(json_t) facts = J(e->value);
    assert_true(json_is_true(json_object_get(facts, "l3"))); /* it has the external bridge */

    st_autofree char *net = make_network(f->kv, &alice, "private", "10.0.2.0/24", NULL);
    put_server(f->kv, "11111111-0000-4000-8000-000000000001", "n1");
    st_autoptr(json_t) port =
        make_port(f->kv, &alice, net, "11111111-0000-4000-8000-000000000001", NULL);
    st_autoptr(json_t) report = json_pack("{s:s}", str(port, "id"), "ACTIVE");
    assert_ok(st_network_port_status_report(f->kv, "n1", report, &err_));
    st_autoptr(st_kv_entry) s = NULL;
    st_autofree char *key = st_sprintf("%s%s", ST_NETWORK_PORT_STATUS_PREFIX, str(port, "id"));
    assert_int_equal(st_kv_get(f->kv, key, &s, NULL), 0);
    st_autoptr(json_t) status = J(s->value);
    assert_string_equal(str(status, "status"), "ACTIVE");
    assert_string_equal(str(status, "host"), "n1");
    rev = st_kv_revision(f->kv);
    assert_ok(st_network_port_status_report(f->kv, "n1", report, &err_));
    assert_int_equal(st_kv_revision(f->kv), rev);
    st_autoptr(json_t) shown = NULL;
    assert_ok(st_port_get(f->kv, &alice, str(port, "id"), &shown, &err_));
    assert_string_equal(str(shown, "status"), "ACTIVE");
    st_autoptr(json_t) wrong = json_pack("{s:s}", str(port, "id"), "UP");
    assert_fails(-EINVAL, "ACTIVE, DOWN or ERROR",
                 st_network_port_status_report(f->kv, "n1", wrong, &err_));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_default_group_once, setup, teardown),
        cmocka_unit_test_setup_teardown(test_lists_scoped_per_project, setup, teardown),
        cmocka_unit_test_setup_teardown(test_rule_validation, setup, teardown),
        cmocka_unit_test_setup_teardown(test_group_in_use, setup, teardown),
        cmocka_unit_test_setup_teardown(test_router_and_floating_ip, setup, teardown),
        cmocka_unit_test_setup_teardown(test_node_view_two_nodes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_node_facts_and_port_status, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
