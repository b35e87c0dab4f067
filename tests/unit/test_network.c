/* Unit tests of the network service's core (src/network: networks, subnets,
 * ports, IPAM, VNIs, servers' ports) over a temporary SQLite store: what a
 * Neutron user would see in the responses and errors, that concurrent port
 * creates never share an address and run out cleanly, that released
 * addresses come back, project scoping, and that deleting a network while
 * ports are being made on it leaves nothing half-made. */
#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <cmocka.h>

#include "lib/cleanup.h"
#include "lib/json.h"
#include "lib/times.h"
#include "lib/uuid.h"
#include "network/model.h"
#include "network/network-priv.h"
#include "network/network.h"
#include "network/quota.h"
#include "store/kv.h"

#define PROJECT_A     "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
#define PROJECT_B     "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"
#define PROJECT_ADMIN "cccccccccccccccccccccccccccccccc"

static const struct st_network_caller alice = {PROJECT_A, "u-alice", false};
static const struct st_network_caller bob = {PROJECT_B, "u-bob", false};
static const struct st_network_caller admin = {PROJECT_ADMIN, "u-admin", true};

struct fixture {
    char dir[64];
    struct st_kv *kv;
};

static int setup(void **state)
{
    struct fixture *f = st_new0(struct fixture, 1);
    strcpy(f->dir, "/tmp/st-test-network-XXXXXX");
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

static const char *s(json_t *o, const char *k)
{
    return json_string_value(json_object_get(o, k));
}

/* Runs fn and checks the errno and that the message contains `want`. */
#define assert_fails(call, code, want)                                                             \
    do {                                                                                           \
        struct st_err *err_ = NULL;                                                                \
        int r_ = (call);                                                                           \
        if (r_ != (code) || !err_ || !strstr(st_err_msg(err_), (want)))                            \
            fail_msg("%s: got %d \"%s\", want %d \"%s\"", #call, r_,                               \
                     err_ ? st_err_msg(err_) : "(no message)", (code), (want));                    \
        st_err_free(err_);                                                                         \
    } while (0)

/* The value of ret after call succeeded (call names its error err_). */
#define OK(call, ret)                                                                              \
    ({                                                                                             \
        struct st_err *err_ = NULL;                                                                \
        int r_ = (call);                                                                           \
        if (r_ != 0)                                                                               \
            fail_msg("%s failed: %d %s", #call, r_, err_ ? st_err_msg(err_) : "?");                \
        st_err_free(err_);                                                                         \
        (ret);                                                                                     \
    })

static json_t *mk_network(struct st_kv *kv, const struct st_network_caller *who, const char *req)
{
    json_t *ret = NULL;
    st_autoptr(json_t) body = json_loads(req, 0, NULL);
    assert_non_null(body);
    return OK(st_network_create(kv, who, body, &ret, &err_), ret);
}

static json_t *mk_subnet(struct st_kv *kv, const struct st_network_caller *who,
                         const char *network_id, const char *cidr)
{
    json_t *ret = NULL;
    st_autoptr(json_t) body = json_pack("{s:s, s:s, s:i, s:s}", "name", "sub", "network_id",
                                        network_id, "ip_version", 4, "cidr", cidr);
    return OK(st_subnet_create(kv, who, body, &ret, &err_), ret);
}

static json_t *mk_port(struct st_kv *kv, const struct st_network_caller *who,
                       const char *network_id)
{
    json_t *ret = NULL;
    st_autoptr(json_t) body = json_pack("{s:s}", "network_id", network_id);
    return OK(st_port_create(kv, who, body, &ret, &err_), ret);
}

static const char *port_ip(json_t *port)
{
    return s(json_array_get(json_object_get(port, "fixed_ips"), 0), "ip_address");
}

static size_t count_keys(struct st_kv *kv, const char *prefix)
{
    st_autoptr(st_kv_list) l = NULL;
    assert_int_equal(st_kv_list(kv, prefix, NULL, 0, &l, NULL), 0);
    return l->count;
}

static json_t *json_req(const char *text)
{
    json_t *v = json_loads(text, 0, NULL);
    assert_non_null(v);
    return v;
}

/* ---- networks ---- */

static void test_network_create_defaults(void **state)
{
    struct fixture *f = *state;
    st_autoptr(json_t) n1 = mk_network(f->kv, &alice, "{\"name\": \"private\"}");
    st_autoptr(json_t) n2 = mk_network(f->kv, &alice, "{\"name\": \"other\"}");
    assert_string_equal(s(n1, "name"), "private");
    assert_string_equal(s(n1, "status"), "ACTIVE");
    assert_string_equal(s(n1, "tenant_id"), PROJECT_A);
    assert_string_equal(s(n1, "project_id"), PROJECT_A);
    assert_string_equal(s(n1, "provider:network_type"), "vxlan");
    assert_int_equal(json_integer_value(json_object_get(n1, "mtu")), 1450);
    assert_true(json_is_array(json_object_get(n1, "subnets")));
    assert_true(json_is_false(json_object_get(n1, "shared")));
    assert_true(json_is_false(json_object_get(n1, "router:external")));
    assert_null(json_object_get(n1, "_deleting"));
    json_int_t v1 = json_integer_value(json_object_get(n1, "provider:segmentation_id"));
    json_int_t v2 = json_integer_value(json_object_get(n2, "provider:segmentation_id"));
    assert_int_equal(v1, ST_NETWORK_VNI_MIN);
    assert_int_equal(v2, ST_NETWORK_VNI_MIN + 1);
    assert_int_equal(count_keys(f->kv, ST_NETWORK_VNIS_PREFIX), 2);

    /* Deleting frees the VNI, and the next network takes the lowest free. */
    assert_int_equal(st_network_delete(f->kv, &alice, s(n1, "id"), NULL), 0);
    assert_int_equal(count_keys(f->kv, ST_NETWORK_VNIS_PREFIX), 1);
    st_autoptr(json_t) n3 = mk_network(f->kv, &alice, "{\"name\": \"third\"}");
    assert_int_equal(json_integer_value(json_object_get(n3, "provider:segmentation_id")), v1);
    assert_fails(st_network_get(f->kv, &alice, s(n1, "id"), &(json_t *){NULL}, &err_), -ENOENT,
                 "could not be found.");

    /* An admin may name the segment; a taken one is refused. */
    st_autoptr(json_t) body = json_pack("{s:s, s:s, s:I}", "name", "seg", "provider:network_type",
                                        "vxlan", "provider:segmentation_id", (json_int_t)5000);
    st_autoptr(json_t) n4 = NULL;
    assert_int_equal(st_network_create(f->kv, &admin, body, &n4, NULL), 0);
    assert_int_equal(json_integer_value(json_object_get(n4, "provider:segmentation_id")), 5000);
    json_t *dup = NULL;
    assert_fails(st_network_create(f->kv, &admin, body, &dup, &err_), -EEXIST,
                 "The tunnel ID 5000 is in use.");
}

static void test_network_validation(void **state)
{
    struct fixture *f = *state;
    json_t *ret = NULL;
    st_autoptr(json_t) big = json_req("{\"name\": \"n\", \"mtu\": 1500}");
    assert_fails(st_network_create(f->kv, &alice, big, &ret, &err_), -EINVAL,
                 "Requested MTU is too big, maximum is 1450.");
    st_autoptr(json_t) tiny = json_req("{\"name\": \"n\", \"mtu\": 10}");
    assert_fails(st_network_create(f->kv, &alice, tiny, &ret, &err_), -EINVAL,
                 "Invalid input for mtu. Reason: '10' is too small - must be at least '68'.");
    char name[300];
    memset(name, 'x', 256);
    name[256] = '\0';
    st_autoptr(json_t) longname = json_pack("{s:s}", "name", name);
    assert_fails(st_network_create(f->kv, &alice, longname, &ret, &err_), -EINVAL,
                 "exceeds maximum length of 255.");
    st_autoptr(json_t) shared = json_req("{\"name\": \"n\", \"shared\": true}");
    assert_fails(st_network_create(f->kv, &alice, shared, &ret, &err_), -EPERM,
                 "disallowed by policy");
    st_autoptr(json_t) ext = json_req("{\"name\": \"n\", \"router:external\": true}");
    assert_fails(st_network_create(f->kv, &alice, ext, &ret, &err_), -EPERM,
                 "disallowed by policy");
    st_autoptr(json_t) prov = json_req("{\"name\": \"n\", \"provider:network_type\": \"vxlan\"}");
    assert_fails(st_network_create(f->kv, &alice, prov, &ret, &err_), -EPERM,
                 "disallowed by policy");
    st_autoptr(json_t) vlan = json_req("{\"name\": \"n\", \"provider:network_type\": \"vlan\"}");
    assert_fails(st_network_create(f->kv, &admin, vlan, &ret, &err_), -EINVAL,
                 "network_type value 'vlan' not supported.");
    st_autoptr(json_t) notbool = json_req("{\"name\": \"n\", \"admin_state_up\": 3}");
    assert_fails(st_network_create(f->kv, &alice, notbool, &ret, &err_), -EINVAL,
                 "Invalid input for admin_state_up. Reason: '3' is not a valid boolean value.");
    st_autoptr(json_t) other = json_pack("{s:s, s:s}", "name", "n", "project_id", PROJECT_B);
    assert_fails(st_network_create(f->kv, &alice, other, &ret, &err_), -EINVAL,
                 "requires admin privileges");
    /* Nothing was left behind by the refusals. */
    assert_int_equal(count_keys(f->kv, ST_NETWORK_NETWORKS_PREFIX), 0);
    assert_int_equal(count_keys(f->kv, ST_NETWORK_VNIS_PREFIX), 0);
}

static void test_network_external_and_scoping(void **state)
{
    struct fixture *f = *state;
    st_autoptr(json_t) ext =
        mk_network(f->kv, &admin, "{\"name\": \"public\", \"router:external\": true}");
    assert_string_equal(s(ext, "provider:network_type"), "flat");
    assert_string_equal(s(ext, "provider:physical_network"), "external");
    assert_true(json_is_null(json_object_get(ext, "provider:segmentation_id")));
    assert_int_equal(json_integer_value(json_object_get(ext, "mtu")), 1500);
    json_t *ret = NULL;
    st_autoptr(json_t) ext2 = json_req("{\"name\": \"public2\", \"router:external\": true}");
    assert_fails(st_network_create(f->kv, &admin, ext2, &ret, &err_), -EBUSY,
                 "Physical network external is in use.");

    st_autoptr(json_t) shared = mk_network(f->kv, &admin, "{\"name\": \"s\", \"shared\": true}");
    st_autoptr(json_t) mine = mk_network(f->kv, &alice, "{\"name\": \"private\"}");
    st_autoptr(json_t) theirs = mk_network(f->kv, &bob, "{\"name\": \"private\"}");
    st_autoptr(json_t) admins = mk_network(f->kv, &admin, "{\"name\": \"private\"}");

    /* Alice: her own, the shared and the external one, never Bob's. */
    st_autoptr(json_t) list = NULL;
    assert_int_equal(st_network_list(f->kv, &alice, NULL, &list, NULL), 0);
    assert_int_equal(json_array_size(list), 3);
    size_t i;
    json_t *n;
    json_array_foreach(list, i, n) assert_string_not_equal(s(n, "id"), s(theirs, "id"));
    /* The CLI's name lookup finds exactly one "private", also for admin. */
    st_autoptr(json_t) byname = json_pack("{s:s}", "name", "private");
    st_autoptr(json_t) found = NULL;
    assert_int_equal(st_network_list(f->kv, &alice, byname, &found, NULL), 0);
    assert_int_equal(json_array_size(found), 1);
    assert_string_equal(s(json_array_get(found, 0), "id"), s(mine, "id"));
    st_autoptr(json_t) found_admin = NULL;
    assert_int_equal(st_network_list(f->kv, &admin, byname, &found_admin, NULL), 0);
    assert_int_equal(json_array_size(found_admin), 1);
    assert_string_equal(s(json_array_get(found_admin, 0), "id"), s(admins, "id"));
    /* Filters: booleans as text, and lists as "any of". */
    st_autoptr(json_t) ext_filter = json_req("{\"router:external\": \"True\"}");
    st_autoptr(json_t) only_ext = NULL;
    assert_int_equal(st_network_list(f->kv, &alice, ext_filter, &only_ext, NULL), 0);
    assert_int_equal(json_array_size(only_ext), 1);
    st_autoptr(json_t) any = json_pack("{s:[s,s], s:s}", "name", "s", "public", "fields", "id");
    st_autoptr(json_t) two = NULL;
    assert_int_equal(st_network_list(f->kv, &alice, any, &two, NULL), 0);
    assert_int_equal(json_array_size(two), 2);

    /* Bob's network is not found for Alice (404, not 403); admin sees it. */
    assert_fails(st_network_get(f->kv, &alice, s(theirs, "id"), &ret, &err_), -ENOENT,
                 "could not be found.");
    st_autofree char *want = st_sprintf("Network %s could not be found.", s(theirs, "id"));
    assert_fails(st_network_delete(f->kv, &alice, s(theirs, "id"), &err_), -ENOENT, want);
    st_autoptr(json_t) seen = NULL;
    assert_int_equal(st_network_get(f->kv, &admin, s(theirs, "id"), &seen, NULL), 0);
    /* The shared network is visible but not Alice's to change. */
    st_autoptr(json_t) rename = json_req("{\"name\": \"mine-now\"}");
    assert_fails(st_network_update(f->kv, &alice, s(shared, "id"), rename, &ret, &err_), -EPERM,
                 "disallowed by policy");
    assert_fails(st_network_delete(f->kv, &alice, s(ext, "id"), &err_), -EPERM,
                 "disallowed by policy");
    st_autoptr(json_t) renamed = NULL;
    assert_int_equal(st_network_update(f->kv, &alice, s(mine, "id"), rename, &renamed, NULL), 0);
    assert_string_equal(s(renamed, "name"), "mine-now");
    assert_int_equal(json_integer_value(json_object_get(renamed, "revision_number")), 1);
    st_autoptr(json_t) mtu = json_req("{\"mtu\": 9000}");
    assert_fails(st_network_update(f->kv, &alice, s(mine, "id"), mtu, &ret, &err_), -EINVAL,
                 "Requested MTU is too big, maximum is 1450.");
}

/* ---- subnets ---- */

static void test_subnet_defaults(void **state)
{
    struct fixture *f = *state;
    st_autoptr(json_t) net = mk_network(f->kv, &alice, "{\"name\": \"private\"}");
    st_autoptr(json_t) sub = mk_subnet(f->kv, &alice, s(net, "id"), "10.0.2.0/24");
    assert_string_equal(s(sub, "cidr"), "10.0.2.0/24");
    assert_string_equal(s(sub, "gateway_ip"), "10.0.2.1");
    assert_string_equal(s(sub, "network_id"), s(net, "id"));
    assert_string_equal(s(sub, "tenant_id"), PROJECT_A);
    assert_int_equal(json_integer_value(json_object_get(sub, "ip_version")), 4);
    assert_true(json_is_true(json_object_get(sub, "enable_dhcp")));
    assert_true(json_is_array(json_object_get(sub, "host_routes")));
    assert_true(json_is_array(json_object_get(sub, "dns_nameservers")));
    assert_true(json_is_array(json_object_get(sub, "service_types")));
    json_t *pools = json_object_get(sub, "allocation_pools");
    assert_int_equal(json_array_size(pools), 1);
    assert_string_equal(s(json_array_get(pools, 0), "start"), "10.0.2.2");
    assert_string_equal(s(json_array_get(pools, 0), "end"), "10.0.2.254");

    st_autoptr(json_t) again = NULL;
    assert_int_equal(st_network_get(f->kv, &alice, s(net, "id"), &again, NULL), 0);
    assert_int_equal(json_array_size(json_object_get(again, "subnets")), 1);
    assert_string_equal(json_string_value(json_array_get(json_object_get(again, "subnets"), 0)),
                        s(sub, "id"));
    assert_int_equal(json_integer_value(json_object_get(again, "revision_number")), 1);

    /* A gateway in the middle splits the default pool around it; null = none. */
    st_autoptr(json_t) net2 = mk_network(f->kv, &alice, "{\"name\": \"two\"}");
    json_t *ret = NULL;
    st_autoptr(json_t) mid = json_pack("{s:s, s:s, s:s}", "network_id", s(net2, "id"), "cidr",
                                       "192.168.0.0/28", "gateway_ip", "192.168.0.5");
    st_autoptr(json_t) sub2 = OK(st_subnet_create(f->kv, &alice, mid, &ret, &err_), ret);
    st_autofree char *pools2 = st_json_dumps(json_object_get(sub2, "allocation_pools"));
    assert_string_equal(pools2, "[{\"start\":\"192.168.0.1\",\"end\":\"192.168.0.4\"},"
                                "{\"start\":\"192.168.0.6\",\"end\":\"192.168.0.14\"}]");
    st_autoptr(json_t) nogw = json_pack("{s:s, s:s, s:n}", "network_id", s(net2, "id"), "cidr",
                                        "192.168.1.0/29", "gateway_ip");
    st_autoptr(json_t) sub3 = OK(st_subnet_create(f->kv, &alice, nogw, &ret, &err_), ret);
    assert_true(json_is_null(json_object_get(sub3, "gateway_ip")));
    st_autofree char *pools3 = st_json_dumps(json_object_get(sub3, "allocation_pools"));
    assert_string_equal(pools3, "[{\"start\":\"192.168.1.1\",\"end\":\"192.168.1.6\"}]");

    /* Update: DNS servers change, the CIDR does not, the gateway stays out
     * of the pools. */
    st_autoptr(json_t) dns = json_req("{\"dns_nameservers\": [\"1.1.1.1\", \"8.8.8.8\"]}");
    st_autoptr(json_t) upd = NULL;
    assert_int_equal(st_subnet_update(f->kv, &alice, s(sub, "id"), dns, &upd, NULL), 0);
    assert_int_equal(json_array_size(json_object_get(upd, "dns_nameservers")), 2);
    st_autoptr(json_t) cidr = json_req("{\"cidr\": \"10.9.0.0/24\"}");
    assert_fails(st_subnet_update(f->kv, &alice, s(sub, "id"), cidr, &ret, &err_), -EINVAL,
                 "Cannot update read-only attribute cidr");
    st_autoptr(json_t) gw = json_req("{\"gateway_ip\": \"10.0.2.50\"}");
    assert_fails(st_subnet_update(f->kv, &alice, s(sub, "id"), gw, &ret, &err_), -EBUSY,
                 "Gateway ip 10.0.2.50 conflicts with allocation pool 10.0.2.2-10.0.2.254");
}

static void expect_subnet_error(struct st_kv *kv, const char *network_id, const char *extra,
                                int code, const char *want)
{
    st_autofree char *text =
        st_sprintf("{\"network_id\": \"%s\", \"ip_version\": 4%s}", network_id, extra);
    st_autoptr(json_t) req = json_req(text);
    json_t *ret = NULL;
    assert_fails(st_subnet_create(kv, &alice, req, &ret, &err_), code, want);
}

static void test_subnet_validation(void **state)
{
    struct fixture *f = *state;
    st_autoptr(json_t) net = mk_network(f->kv, &alice, "{\"name\": \"private\"}");
    const char *id = s(net, "id");
    expect_subnet_error(f->kv, id, ", \"cidr\": \"10.0.0.0/33\"", -EINVAL,
                        "Invalid input for cidr. Reason: '10.0.0.0/33' is not a valid IP subnet.");
    expect_subnet_error(f->kv, id, ", \"cidr\": \"banana\"", -EINVAL,
                        "'banana' is not a valid IP subnet.");
    expect_subnet_error(f->kv, id, ", \"cidr\": \"10.0.2.5/24\"", -EINVAL,
                        "'10.0.2.5/24' isn't a recognized IP subnet cidr, '10.0.2.0/24' is "
                        "recommended.");
    expect_subnet_error(f->kv, id, "", -EINVAL, "a subnetpool must be specified");
    expect_subnet_error(f->kv, id, ", \"cidr\": \"10.0.0.0/24\", \"gateway_ip\": \"10.0.1.1\"",
                        -EINVAL, "Gateway is not valid on subnet.");
    expect_subnet_error(f->kv, id, ", \"cidr\": \"10.0.0.0/24\", \"gateway_ip\": \"10.0.0.255\"",
                        -EINVAL, "Gateway is not valid on subnet.");
    expect_subnet_error(f->kv, id,
                        ", \"cidr\": \"10.0.0.0/24\", \"allocation_pools\": "
                        "[{\"start\": \"10.0.0.10\", \"end\": \"10.0.1.5\"}]",
                        -EINVAL,
                        "The allocation pool 10.0.0.10-10.0.1.5 spans beyond the subnet cidr "
                        "10.0.0.0/24.");
    expect_subnet_error(f->kv, id,
                        ", \"cidr\": \"10.0.0.0/24\", \"allocation_pools\": "
                        "[{\"start\": \"10.0.0.1\", \"end\": \"10.0.0.20\"}]",
                        -EBUSY, "Gateway ip 10.0.0.1 conflicts with allocation pool");
    expect_subnet_error(f->kv, id,
                        ", \"cidr\": \"10.0.0.0/24\", \"allocation_pools\": "
                        "[{\"start\": \"10.0.0.10\", \"end\": \"10.0.0.20\"}, "
                        "{\"start\": \"10.0.0.15\", \"end\": \"10.0.0.30\"}]",
                        -EINVAL, "Found overlapping allocation pools");
    expect_subnet_error(f->kv, id,
                        ", \"cidr\": \"10.0.0.0/24\", \"allocation_pools\": "
                        "[{\"start\": \"10.0.0.30\", \"end\": \"10.0.0.20\"}]",
                        -EINVAL, "The allocation pool 10.0.0.30-10.0.0.20 is not valid.");
    expect_subnet_error(f->kv, id, ", \"cidr\": \"10.0.0.0/24\", \"dns_nameservers\": [\"x\"]",
                        -EINVAL, "'x' is not a valid nameserver.");
    expect_subnet_error(f->kv, id, ", \"cidr\": \"10.0.0.0/31\"", -EINVAL,
                        "incompatible with DHCP service enabled.");
    expect_subnet_error(f->kv, "no-such-network", ", \"cidr\": \"10.0.0.0/24\"", -ENOENT,
                        "Network no-such-network could not be found.");
    /* Nothing was written by the refusals. */
    assert_int_equal(count_keys(f->kv, ST_NETWORK_SUBNETS_PREFIX), 0);

    /* Two subnets of one network may not overlap. */
    st_autoptr(json_t) sub = mk_subnet(f->kv, &alice, id, "10.0.0.0/24");
    expect_subnet_error(f->kv, id, ", \"cidr\": \"10.0.0.128/25\"", -EINVAL,
                        "overlaps with another subnet.");
    st_autoptr(json_t) sub2 = mk_subnet(f->kv, &alice, id, "10.0.1.0/24");
    assert_int_equal(count_keys(f->kv, ST_NETWORK_SUBNETS_PREFIX), 2);

    /* Another project's network is not found. */
    st_autoptr(json_t) theirs = mk_network(f->kv, &bob, "{\"name\": \"b\"}");
    st_autofree char *want = st_sprintf("Network %s could not be found.", s(theirs, "id"));
    expect_subnet_error(f->kv, s(theirs, "id"), ", \"cidr\": \"10.0.0.0/24\"", -ENOENT, want);
    json_t *ret = NULL;
    assert_fails(st_subnet_get(f->kv, &bob, s(sub, "id"), &ret, &err_), -ENOENT,
                 "could not be found.");
}

/* Each project may use 10.0.0.0/24 on its own network. */
static void test_overlapping_cidrs_across_projects(void **state)
{
    struct fixture *f = *state;
    st_autoptr(json_t) na = mk_network(f->kv, &alice, "{\"name\": \"private\"}");
    st_autoptr(json_t) nb = mk_network(f->kv, &bob, "{\"name\": \"private\"}");
    st_autoptr(json_t) sa = mk_subnet(f->kv, &alice, s(na, "id"), "10.0.0.0/24");
    st_autoptr(json_t) sb = mk_subnet(f->kv, &bob, s(nb, "id"), "10.0.0.0/24");
    st_autoptr(json_t) pa = mk_port(f->kv, &alice, s(na, "id"));
    st_autoptr(json_t) pb = mk_port(f->kv, &bob, s(nb, "id"));
    assert_string_equal(port_ip(pa), "10.0.0.2");
    assert_string_equal(port_ip(pb), "10.0.0.2");
    st_autoptr(json_t) subs = NULL;
    assert_int_equal(st_subnet_list(f->kv, &alice, NULL, &subs, NULL), 0);
    assert_int_equal(json_array_size(subs), 1);
    assert_string_equal(s(json_array_get(subs, 0), "id"), s(sa, "id"));
    st_autoptr(json_t) ports = NULL;
    assert_int_equal(st_port_list(f->kv, &bob, NULL, &ports, NULL), 0);
    assert_int_equal(json_array_size(ports), 1);
    assert_string_equal(s(json_array_get(ports, 0), "id"), s(pb, "id"));
    json_t *ret = NULL;
    assert_fails(st_port_get(f->kv, &alice, s(pb, "id"), &ret, &err_), -ENOENT,
                 "could not be found.");
}

/* ---- ports ---- */

struct race {
    struct st_kv *kv;
    const char *network_id;
    int per_thread;
    json_t *ips; /* guarded by lock */
    int nospc;
    int other;
    pthread_mutex_t lock;
};

static void *create_ports(void *arg)
{
    struct race *r = arg;
    for (int i = 0; i < r->per_thread; i++) {
        st_autoptr(json_t) req =
            json_pack("{s:s, s:[]}", "network_id", r->network_id, "security_groups");
        json_t *port = NULL;
        struct st_err *err = NULL;
        int rc = st_port_create(r->kv, &alice, req, &port, &err);
        pthread_mutex_lock(&r->lock);
        if (rc == 0)
            json_array_append_new(r->ips, json_string(port_ip(port)));
        else if (rc == -ENOSPC && strstr(st_err_msg(err), "No more IP addresses available"))
            r->nospc++;
        else
            r->other++;
        pthread_mutex_unlock(&r->lock);
        json_decref(port);
        st_err_free(err);
    }
    return NULL;
}

static void run_race(struct st_kv *kv, const char *network_id, struct race *r)
{
    enum { THREADS = 5 };
    *r = (struct race){.kv = kv, .network_id = network_id, .per_thread = 10, .ips = json_array()};
    pthread_mutex_init(&r->lock, NULL);
    pthread_t t[THREADS];
    for (int i = 0; i < THREADS; i++)
        assert_int_equal(pthread_create(&t[i], NULL, create_ports, r), 0);
    for (int i = 0; i < THREADS; i++)
        pthread_join(t[i], NULL);
    pthread_mutex_destroy(&r->lock);
}

static void assert_distinct(json_t *ips)
{
    st_autoptr(json_t) seen = json_object();
    size_t i;
    json_t *ip;
    json_array_foreach(ips, i, ip)
    {
        if (json_object_get(seen, json_string_value(ip)))
            fail_msg("address %s handed out twice", json_string_value(ip));
        json_object_set_new(seen, json_string_value(ip), json_true());
    }
}

static void test_port_concurrent_allocation(void **state)
{
    struct fixture *f = *state;
    /* 50 creates from 5 threads on a /24: 50 distinct addresses. */
    st_autoptr(json_t) big = mk_network(f->kv, &alice, "{\"name\": \"big\"}");
    st_autoptr(json_t) bigsub = mk_subnet(f->kv, &alice, s(big, "id"), "10.1.0.0/24");
    struct race r;
    run_race(f->kv, s(big, "id"), &r);
    assert_int_equal(r.other, 0);
    assert_int_equal(r.nospc, 0);
    assert_int_equal(json_array_size(r.ips), 50);
    assert_distinct(r.ips);
    st_autofree char *ipam = st_sprintf("%s%s/", ST_NETWORK_IPAM_PREFIX, s(bigsub, "id"));
    assert_int_equal(count_keys(f->kv, ipam), 50);
    json_decref(r.ips);

    /* 50 creates on a /27 (29 addresses besides the gateway): 29 get one,
     * 21 are told the pool is empty; no duplicate, nothing leaked. */
    st_autoptr(json_t) small = mk_network(f->kv, &alice, "{\"name\": \"small\"}");
    st_autoptr(json_t) smallsub = mk_subnet(f->kv, &alice, s(small, "id"), "10.2.0.0/27");
    run_race(f->kv, s(small, "id"), &r);
    assert_int_equal(r.other, 0);
    assert_int_equal(json_array_size(r.ips), 29);
    assert_int_equal(r.nospc, 21);
    assert_distinct(r.ips);
    size_t i;
    json_t *ip;
    json_array_foreach(r.ips, i, ip)
    {
        uint32_t a;
        assert_int_equal(net_ip_parse(json_string_value(ip), &a), 0);
        assert_true(a >= 0x0a020002 && a <= 0x0a02001e);
    }
    json_decref(r.ips);
    st_autofree char *ipam2 = st_sprintf("%s%s/", ST_NETWORK_IPAM_PREFIX, s(smallsub, "id"));
    assert_int_equal(count_keys(f->kv, ipam2), 29);
    st_autofree char *macs = st_sprintf("%s%s/", ST_NETWORK_MACS_PREFIX, s(small, "id"));
    assert_int_equal(count_keys(f->kv, macs), 29);
    st_autoptr(json_t) filter = json_pack("{s:s}", "network_id", s(small, "id"));
    st_autoptr(json_t) ports = NULL;
    assert_int_equal(st_port_list(f->kv, &alice, filter, &ports, NULL), 0);
    assert_int_equal(json_array_size(ports), 29);

    /* Full means full, and a freed address is the next one handed out. */
    json_t *ret = NULL;
    st_autofree char *want =
        st_sprintf("No more IP addresses available on network %s.", s(small, "id"));
    st_autoptr(json_t) req = json_pack("{s:s}", "network_id", s(small, "id"));
    assert_fails(st_port_create(f->kv, &alice, req, &ret, &err_), -ENOSPC, want);
    json_t *victim = json_array_get(ports, 7);
    st_autofree char *freed = st_strdup(port_ip(victim));
    assert_int_equal(st_port_delete(f->kv, &alice, s(victim, "id"), NULL), 0);
    assert_int_equal(count_keys(f->kv, ipam2), 28);
    assert_int_equal(count_keys(f->kv, macs), 28);
    st_autoptr(json_t) again = mk_port(f->kv, &alice, s(small, "id"));
    assert_string_equal(port_ip(again), freed);
}

static void test_port_fixed_ips_and_mac(void **state)
{
    struct fixture *f = *state;
    st_autoptr(json_t) net = mk_network(f->kv, &alice, "{\"name\": \"n\"}");
    st_autoptr(json_t) sub = mk_subnet(f->kv, &alice, s(net, "id"), "10.0.0.0/24");
    st_autoptr(json_t) net2 = mk_network(f->kv, &alice, "{\"name\": \"n2\"}");
    st_autoptr(json_t) sub2 = mk_subnet(f->kv, &alice, s(net2, "id"), "10.5.0.0/24");
    const char *nid = s(net, "id");
    json_t *ret = NULL;
    st_autofree char *t1 = st_sprintf("{\"network_id\": \"%s\", \"fixed_ips\": [{\"ip_address\": "
                                      "\"10.0.0.5\"}], \"mac_address\": \"FA:16:3E:00:00:01\"}",
                                      nid);
    st_autoptr(json_t) r1 = json_req(t1);
    st_autoptr(json_t) p1 = OK(st_port_create(f->kv, &alice, r1, &ret, &err_), ret);
    assert_string_equal(port_ip(p1), "10.0.0.5");
    assert_string_equal(s(json_array_get(json_object_get(p1, "fixed_ips"), 0), "subnet_id"),
                        s(sub, "id"));
    assert_string_equal(s(p1, "mac_address"), "fa:16:3e:00:00:01");
    st_autofree char *dup_ip =
        st_sprintf("IP address 10.0.0.5 already allocated in subnet %s", s(sub, "id"));
    st_autofree char *t2 = st_sprintf(
        "{\"network_id\": \"%s\", \"fixed_ips\": [{\"ip_address\": \"10.0.0.5\"}]}", nid);
    st_autoptr(json_t) r2 = json_req(t2);
    assert_fails(st_port_create(f->kv, &alice, r2, &ret, &err_), -EEXIST, dup_ip);
    st_autofree char *t3 =
        st_sprintf("{\"network_id\": \"%s\", \"mac_address\": \"fa:16:3e:00:00:01\"}", nid);
    st_autoptr(json_t) r3 = json_req(t3);
    assert_fails(st_port_create(f->kv, &alice, r3, &ret, &err_), -EEXIST,
                 "The mac address fa:16:3e:00:00:01 is in use.");
    st_autofree char *t4 = st_sprintf(
        "{\"network_id\": \"%s\", \"fixed_ips\": [{\"ip_address\": \"10.0.0.1\"}]}", nid);
    st_autoptr(json_t) r4 = json_req(t4);
    assert_fails(st_port_create(f->kv, &alice, r4, &ret, &err_), -EEXIST, "already allocated");
    st_autofree char *t5 = st_sprintf(
        "{\"network_id\": \"%s\", \"fixed_ips\": [{\"ip_address\": \"10.9.0.1\"}]}", nid);
    st_autoptr(json_t) r5 = json_req(t5);
    assert_fails(st_port_create(f->kv, &alice, r5, &ret, &err_), -EINVAL,
                 "IP address 10.9.0.1 is not a valid IP for any of the subnets");
    st_autofree char *t6 = st_sprintf("{\"network_id\": \"%s\", \"fixed_ips\": [{\"subnet_id\": "
                                      "\"%s\", \"ip_address\": \"10.0.0.255\"}]}",
                                      nid, s(sub, "id"));
    st_autoptr(json_t) r6 = json_req(t6);
    assert_fails(st_port_create(f->kv, &alice, r6, &ret, &err_), -EINVAL,
                 "IP address 10.0.0.255 is not a valid IP for the specified subnet.");
    st_autofree char *t7 = st_sprintf(
        "{\"network_id\": \"%s\", \"fixed_ips\": [{\"subnet_id\": \"%s\"}]}", nid, s(sub2, "id"));
    st_autoptr(json_t) r7 = json_req(t7);
    assert_fails(st_port_create(f->kv, &alice, r7, &ret, &err_), -EINVAL,
                 "because fixed_ips included invalid subnet");
    st_autofree char *t8 = st_sprintf("{\"network_id\": \"%s\", \"mac_address\": \"zz\"}", nid);
    st_autoptr(json_t) r8 = json_req(t8);
    assert_fails(st_port_create(f->kv, &alice, r8, &ret, &err_), -EINVAL,
                 "'zz' is not a valid MAC address.");
    st_autoptr(json_t) r9 = json_req("{\"network_id\": \"nope\"}");
    assert_fails(st_port_create(f->kv, &alice, r9, &ret, &err_), -ENOENT,
                 "Network nope could not be found.");
    /* Only the refused requests' claims are gone: one address, one MAC. */
    st_autofree char *ipam = st_sprintf("%s%s/", ST_NETWORK_IPAM_PREFIX, s(sub, "id"));
    assert_int_equal(count_keys(f->kv, ipam), 1);
    st_autofree char *macs = st_sprintf("%s%s/", ST_NETWORK_MACS_PREFIX, nid);
    assert_int_equal(count_keys(f->kv, macs), 1);

    /* A random MAC is Neutron's fa:16:3e prefix; filters reach fixed_ips. */
    st_autoptr(json_t) p2 = mk_port(f->kv, &alice, nid);
    unsigned a, b, c;
    assert_int_equal(sscanf(s(p2, "mac_address"), "fa:16:3e:%2x:%2x:%2x", &a, &b, &c), 3);
    st_autoptr(json_t) filter = json_req("{\"fixed_ips\": \"ip_address=10.0.0.5\"}");
    st_autoptr(json_t) found = NULL;
    assert_int_equal(st_port_list(f->kv, &alice, filter, &found, NULL), 0);
    assert_int_equal(json_array_size(found), 1);
    assert_string_equal(s(json_array_get(found, 0), "id"), s(p1, "id"));
}

static void test_port_security_and_binding(void **state)
{
    struct fixture *f = *state;
    st_autoptr(json_t) net = mk_network(f->kv, &alice, "{\"name\": \"n\"}");
    st_autoptr(json_t) sub = mk_subnet(f->kv, &alice, s(net, "id"), "10.0.0.0/24");
    const char *nid = s(net, "id");
    /* No groups asked: the project's default group. */
    st_autoptr(json_t) p = mk_port(f->kv, &alice, nid);
    st_autofree char *def = NULL;
    assert_int_equal(st_security_group_ensure_default(f->kv, PROJECT_A, &def, NULL), 0);
    assert_int_equal(json_array_size(json_object_get(p, "security_groups")), 1);
    assert_string_equal(json_string_value(json_array_get(json_object_get(p, "security_groups"), 0)),
                        def);
    assert_true(json_is_true(json_object_get(p, "port_security_enabled")));
    assert_string_equal(s(p, "status"), "DOWN");
    assert_string_equal(s(p, "binding:vif_type"), "unbound");
    json_t *ret = NULL;
    /* Port security off with a group is refused; turning it off while the
     * port has a group is a conflict. */
    st_autofree char *t1 = st_sprintf("{\"network_id\": \"%s\", \"port_security_enabled\": false, "
                                      "\"security_groups\": [\"%s\"]}",
                                      nid, def);
    st_autoptr(json_t) r1 = json_req(t1);
    assert_fails(st_port_create(f->kv, &alice, r1, &ret, &err_), -EINVAL,
                 "Port security must be enabled");
    st_autoptr(json_t) off = json_req("{\"port_security_enabled\": false}");
    assert_fails(st_port_update(f->kv, &alice, s(p, "id"), off, &ret, &err_), -EBUSY,
                 "Port has security group associated.");
    st_autoptr(json_t) off2 =
        json_req("{\"port_security_enabled\": false, \"security_groups\": []}");
    st_autoptr(json_t) p_off = NULL;
    assert_int_equal(st_port_update(f->kv, &alice, s(p, "id"), off2, &p_off, NULL), 0);
    assert_int_equal(json_array_size(json_object_get(p_off, "security_groups")), 0);
    st_autoptr(json_t) bad_sg = json_pack("{s:s, s:[s]}", "network_id", nid, "security_groups",
                                          "00000000-0000-4000-8000-000000000000");
    assert_fails(st_port_create(f->kv, &alice, bad_sg, &ret, &err_), -ENOENT,
                 "Security group 00000000-0000-4000-8000-000000000000 does not exist");
    st_autoptr(json_t) ro = json_req("{\"mac_address\": \"fa:16:3e:11:22:33\"}");
    assert_fails(st_port_update(f->kv, &alice, s(p, "id"), ro, &ret, &err_), -EINVAL,
                 "Cannot update read-only attribute mac_address");

    /* A compute port shows its server's host and its agent's status. */
    const char *server = "11111111-2222-4333-8444-555555555555";
    st_autoptr(json_t) cp_req = json_pack("{s:s, s:s, s:s}", "network_id", nid, "device_id", server,
                                          "device_owner", "compute:nova");
    st_autoptr(json_t) cp = OK(st_port_create(f->kv, &alice, cp_req, &ret, &err_), ret);
    assert_string_equal(s(cp, "binding:host_id"), "");
    const char *srv_doc = "{\"id\": \"11111111-2222-4333-8444-555555555555\", "
                          "\"spec\": {\"host\": \"node-7\"}}";
    st_autofree char *srv_key = st_sprintf("/compute/servers/%s", server);
    assert_int_equal(st_kv_put(f->kv, srv_key, srv_doc, strlen(srv_doc), ST_KV_ANY, NULL, NULL), 0);
    st_autofree char *status_key = st_sprintf("%s%s", ST_NETWORK_PORT_STATUS_PREFIX, s(cp, "id"));
    const char *status = "{\"status\": \"ACTIVE\", \"host\": \"node-7\"}";
    assert_int_equal(st_kv_put(f->kv, status_key, status, strlen(status), ST_KV_ANY, NULL, NULL),
                     0);
    st_autoptr(json_t) shown = NULL;
    assert_int_equal(st_port_get(f->kv, &alice, s(cp, "id"), &shown, NULL), 0);
    assert_string_equal(s(shown, "binding:host_id"), "node-7");
    assert_string_equal(s(shown, "binding:vif_type"), "ovs");
    assert_string_equal(s(shown, "status"), "ACTIVE");
    st_autoptr(json_t) active = json_req("{\"status\": \"ACTIVE\"}");
    st_autoptr(json_t) list = NULL;
    assert_int_equal(st_port_list(f->kv, &alice, active, &list, NULL), 0);
    assert_int_equal(json_array_size(list), 1);
    st_autoptr(json_t) on_host = json_req("{\"binding:host_id\": \"node-7\"}");
    st_autoptr(json_t) list2 = NULL;
    assert_int_equal(st_port_list(f->kv, &alice, on_host, &list2, NULL), 0);
    assert_int_equal(json_array_size(list2), 1);

    /* A router's port: no group, and not deletable through the port API. */
    json_t *rp = NULL;
    assert_int_equal(net_port_create_internal(f->kv, PROJECT_A, nid, s(sub, "id"), "10.0.0.1",
                                              "router-1", "network:router_interface", &rp, NULL),
                     0);
    assert_int_equal(json_array_size(json_object_get(rp, "security_groups")), 0);
    assert_string_equal(port_ip(rp), "10.0.0.1");
    assert_fails(st_port_delete(f->kv, &alice, s(rp, "id"), &err_), -EBUSY,
                 "cannot be deleted directly via the port API");
    assert_int_equal(net_port_delete_internal(f->kv, s(rp, "id"), NULL), 0);
    assert_int_equal(net_port_delete_internal(f->kv, s(rp, "id"), NULL), 0);
    json_decref(rp);
}

/* ---- deletes ---- */

static void test_deletes_in_use(void **state)
{
    struct fixture *f = *state;
    st_autoptr(json_t) net = mk_network(f->kv, &alice, "{\"name\": \"n\"}");
    st_autoptr(json_t) sub = mk_subnet(f->kv, &alice, s(net, "id"), "10.0.0.0/24");
    const char *nid = s(net, "id"), *sid = s(sub, "id");
    st_autoptr(json_t) p = mk_port(f->kv, &alice, nid);
    st_autofree char *net_busy = st_sprintf("Unable to complete operation on network %s. There "
                                            "are one or more ports still in use on the network.",
                                            nid);
    assert_fails(st_network_delete(f->kv, &alice, nid, &err_), -EBUSY, net_busy);
    assert_fails(st_subnet_delete(f->kv, &alice, sid, &err_), -EBUSY,
                 "One or more ports have an IP allocation from this subnet.");
    assert_int_equal(st_port_delete(f->kv, &alice, s(p, "id"), NULL), 0);

    /* A router interface holds the subnet and the network too. */
    json_t *rp = NULL;
    assert_int_equal(net_port_create_internal(f->kv, PROJECT_A, nid, sid, "10.0.0.1", "router-1",
                                              "network:router_interface", &rp, NULL),
                     0);
    assert_fails(st_subnet_delete(f->kv, &alice, sid, &err_), -EBUSY, "IP allocation");
    assert_fails(st_network_delete(f->kv, &alice, nid, &err_), -EBUSY, net_busy);
    assert_int_equal(net_port_delete_internal(f->kv, s(rp, "id"), NULL), 0);
    json_decref(rp);

    /* The port of a server that no longer exists does not hold it: it is
     * released on the way, and everything of the network goes. A young one
     * may belong to a server being written (Nova makes ports first). */
    st_autoptr(json_t) cp_req =
        json_pack("{s:s, s:s, s:s}", "network_id", nid, "device_id",
                  "99999999-2222-4333-8444-555555555555", "device_owner", "compute:nova");
    json_t *ret = NULL;
    st_autoptr(json_t) cp = OK(st_port_create(f->kv, &alice, cp_req, &ret, &err_), ret);
    assert_fails(st_network_delete(f->kv, &alice, nid, &err_), -EBUSY, net_busy);
    assert_fails(st_subnet_delete(f->kv, &alice, sid, &err_), -EBUSY, "IP allocation");
    st_autofree char *cp_key = st_sprintf("%s%s", ST_NETWORK_PORTS_PREFIX, s(cp, "id"));
    st_autoptr(st_kv_entry) e = NULL;
    assert_int_equal(st_kv_get(f->kv, cp_key, &e, NULL), 0);
    st_autoptr(json_t) old = json_loads(e->value, 0, NULL);
    json_object_set_new(old, "created_at", json_string("2020-01-01T00:00:00Z"));
    st_autofree char *old_text = st_json_dumps(old);
    assert_int_equal(st_kv_put(f->kv, cp_key, old_text, strlen(old_text), ST_KV_ANY, NULL, NULL),
                     0);
    assert_int_equal(st_network_delete(f->kv, &alice, nid, NULL), 0);
    assert_int_equal(count_keys(f->kv, ST_NETWORK_PORTS_PREFIX), 0);
    assert_int_equal(count_keys(f->kv, ST_NETWORK_SUBNETS_PREFIX), 0);
    assert_int_equal(count_keys(f->kv, ST_NETWORK_IPAM_PREFIX), 0);
    assert_int_equal(count_keys(f->kv, ST_NETWORK_MACS_PREFIX), 0);
    assert_int_equal(count_keys(f->kv, ST_NETWORK_VNIS_PREFIX), 0);
    assert_fails(st_subnet_get(f->kv, &alice, sid, &ret, &err_), -ENOENT, "could not be found.");

    /* A subnet alone goes once unused, and leaves its network's list. */
    st_autoptr(json_t) net2 = mk_network(f->kv, &alice, "{\"name\": \"n2\"}");
    st_autoptr(json_t) sub2 = mk_subnet(f->kv, &alice, s(net2, "id"), "10.0.0.0/24");
    /* A claim whose port never got written (a crash half-way) goes too. */
    st_autofree char *stray = st_sprintf("%s%s/10.0.0.9", ST_NETWORK_IPAM_PREFIX, s(sub2, "id"));
    assert_int_equal(st_kv_put(f->kv, stray, "\"gone\"", 6, ST_KV_ABSENT, NULL, NULL), 0);
    assert_int_equal(st_subnet_delete(f->kv, &alice, s(sub2, "id"), NULL), 0);
    assert_int_equal(count_keys(f->kv, ST_NETWORK_IPAM_PREFIX), 0);
    st_autoptr(json_t) n2 = NULL;
    assert_int_equal(st_network_get(f->kv, &alice, s(net2, "id"), &n2, NULL), 0);
    assert_int_equal(json_array_size(json_object_get(n2, "subnets")), 0);
    /* No subnet: a port without an address. */
    st_autoptr(json_t) bare = mk_port(f->kv, &alice, s(net2, "id"));
    assert_int_equal(json_array_size(json_object_get(bare, "fixed_ips")), 0);
}

struct delete_race {
    struct st_kv *kv;
    const char *network_id;
    int rc;
    json_t *port;
};

static void *race_port(void *arg)
{
    struct delete_race *d = arg;
    st_autoptr(json_t) req =
        json_pack("{s:s, s:[]}", "network_id", d->network_id, "security_groups");
    struct st_err *err = NULL;
    d->rc = st_port_create(d->kv, &alice, req, &d->port, &err);
    st_err_free(err);
    return NULL;
}

/* Whoever wins, nothing is half-made: a port that exists has its network,
 * subnet and address; a deleted network leaves no port and no claim. */
static bool stored_mark(struct st_kv *kv, const char *prefix, const char *id)
{
    st_autofree char *key = st_sprintf("%s%s", prefix, id);
    st_autoptr(st_kv_entry) e = NULL;
    if (st_kv_get(kv, key, &e, NULL) < 0)
        return false;
    return strstr(e->value, "_deleting") != NULL;
}

static void test_delete_races_port_create(void **state)
{
    struct fixture *f = *state;
    int deleted = 0, kept = 0;
    for (int i = 0; i < 24; i++) {
        /* Even rounds delete the network, odd ones the subnet. */
        bool whole = i % 2 == 0;
        st_autoptr(json_t) net = mk_network(f->kv, &alice, "{\"name\": \"race\"}");
        st_autoptr(json_t) sub = mk_subnet(f->kv, &alice, s(net, "id"), "10.0.0.0/24");
        struct delete_race d = {.kv = f->kv, .network_id = s(net, "id")};
        pthread_t t;
        assert_int_equal(pthread_create(&t, NULL, race_port, &d), 0);
        /* Stagger the delete across the create's steps. */
        struct timespec ts = {0, (long)(i / 2 % 6) * 400 * 1000};
        nanosleep(&ts, NULL);
        struct st_err *err = NULL;
        int rc = whole ? st_network_delete(f->kv, &alice, s(net, "id"), &err)
                       : st_subnet_delete(f->kv, &alice, s(sub, "id"), &err);
        st_err_free(err);
        pthread_join(t, NULL);
        st_autofree char *ipam = st_sprintf("%s%s/", ST_NETWORK_IPAM_PREFIX, s(sub, "id"));
        st_autofree char *macs = st_sprintf("%s%s/", ST_NETWORK_MACS_PREFIX, s(net, "id"));
        st_autoptr(json_t) filter = json_pack("{s:s}", "network_id", s(net, "id"));
        st_autoptr(json_t) ports = NULL;
        assert_int_equal(st_port_list(f->kv, &alice, filter, &ports, NULL), 0);
        if (rc == 0 && d.rc == 0) {
            /* The port read the network after the subnet left it: a port
             * without an address, on a network that stands. */
            deleted++;
            assert_false(whole);
            assert_int_equal(json_array_size(ports), 1);
            assert_int_equal(json_array_size(json_object_get(d.port, "fixed_ips")), 0);
            assert_int_equal(count_keys(f->kv, ipam), 0);
            assert_int_equal(st_port_delete(f->kv, &alice, s(d.port, "id"), NULL), 0);
        } else if (rc == 0) {
            deleted++;
            assert_int_equal(json_array_size(ports), 0);
            assert_int_equal(count_keys(f->kv, ipam), 0);
            assert_int_equal(count_keys(f->kv, macs), 0);
        } else {
            kept++;
            assert_int_equal(rc, -EBUSY);
            assert_int_equal(d.rc, 0);
            assert_int_equal(json_array_size(ports), 1);
            assert_string_equal(port_ip(d.port), "10.0.0.2");
            assert_int_equal(count_keys(f->kv, ipam), 1);
            assert_false(stored_mark(f->kv, ST_NETWORK_NETWORKS_PREFIX, s(net, "id")));
            assert_false(stored_mark(f->kv, ST_NETWORK_SUBNETS_PREFIX, s(sub, "id")));
            assert_int_equal(st_port_delete(f->kv, &alice, s(d.port, "id"), NULL), 0);
        }
        struct st_err *cerr = NULL;
        rc = st_network_delete(f->kv, &alice, s(net, "id"), &cerr);
        assert_true(rc == 0 || (whole && rc == -ENOENT));
        st_err_free(cerr);
        json_decref(d.port);
    }
    assert_int_equal(count_keys(f->kv, ST_NETWORK_IPAM_PREFIX), 0);
    assert_int_equal(count_keys(f->kv, ST_NETWORK_MACS_PREFIX), 0);
    assert_int_equal(count_keys(f->kv, ST_NETWORK_SUBNETS_PREFIX), 0);
    assert_int_equal(count_keys(f->kv, ST_NETWORK_VNIS_PREFIX), 0);
    print_message("delete/create race: %d deletes won, %d ports won\n", deleted, kept);
}

/* ---- servers' ports ---- */

static void test_server_ports(void **state)
{
    struct fixture *f = *state;
    const char *server = "22222222-2222-4333-8444-555555555555";
    json_t *ports = NULL, *names = NULL;
    /* No network at all: no port. */
    assert_int_equal(
        st_network_server_ports_create(f->kv, &alice, server, NULL, NULL, &ports, &names, NULL), 0);
    assert_int_equal(json_array_size(ports), 0);
    json_decref(ports);
    json_decref(names);

    st_autoptr(json_t) net = mk_network(f->kv, &alice, "{\"name\": \"private\"}");
    st_autoptr(json_t) sub = mk_subnet(f->kv, &alice, s(net, "id"), "10.0.2.0/24");
    st_autoptr(json_t) ext =
        mk_network(f->kv, &admin, "{\"name\": \"public\", \"router:external\": true}");
    /* The project's only network (the external one does not count). */
    assert_int_equal(
        st_network_server_ports_create(f->kv, &alice, server, NULL, NULL, &ports, &names, NULL), 0);
    assert_int_equal(json_array_size(ports), 1);
    json_t *row = json_array_get(ports, 0);
    assert_string_equal(s(row, "network_id"), s(net, "id"));
    assert_string_equal(s(row, "network_name"), "private");
    assert_string_equal(s(row, "ip"), "10.0.2.2");
    assert_string_equal(s(row, "subnet_id"), s(sub, "id"));
    assert_non_null(s(row, "mac"));
    st_autofree char *names_text = st_json_dumps(names);
    assert_string_equal(names_text, "[{\"name\":\"default\"}]");
    st_autoptr(json_t) port = NULL;
    assert_int_equal(st_port_get(f->kv, &alice, s(row, "port_id"), &port, NULL), 0);
    assert_string_equal(s(port, "device_id"), server);
    assert_string_equal(s(port, "device_owner"), "compute:nova");
    json_decref(ports);
    json_decref(names);

    /* A user's port is bound, then given back when the server goes. */
    st_autoptr(json_t) mine = mk_port(f->kv, &alice, s(net, "id"));
    st_autoptr(json_t) nets = json_pack("[{s:s}, {s:s, s:s}]", "port", s(mine, "id"), "uuid",
                                        s(net, "id"), "fixed_ip", "10.0.2.77");
    const char *server2 = "33333333-2222-4333-8444-555555555555";
    assert_int_equal(
        st_network_server_ports_create(f->kv, &alice, server2, nets, NULL, &ports, &names, NULL),
        0);
    assert_int_equal(json_array_size(ports), 2);
    assert_string_equal(s(json_array_get(ports, 0), "port_id"), s(mine, "id"));
    assert_string_equal(s(json_array_get(ports, 1), "ip"), "10.0.2.77");
    st_autoptr(json_t) bound = NULL;
    assert_int_equal(st_port_get(f->kv, &alice, s(mine, "id"), &bound, NULL), 0);
    assert_string_equal(s(bound, "device_id"), server2);
    assert_null(json_object_get(bound, "_user_port"));
    json_decref(ports);
    json_decref(names);
    /* The same port again is in use. */
    st_autofree char *in_use = st_sprintf("Port %s is still in use.", s(mine, "id"));
    st_autoptr(json_t) again = json_pack("[{s:s}]", "port", s(mine, "id"));
    assert_fails(
        st_network_server_ports_create(f->kv, &alice, server, again, NULL, &ports, &names, &err_),
        -EBUSY, in_use);
    assert_int_equal(st_network_device_ports_release(f->kv, server2, NULL), 0);
    assert_int_equal(st_network_device_ports_release(f->kv, server2, NULL), 0);
    st_autoptr(json_t) back = NULL;
    assert_int_equal(st_port_get(f->kv, &alice, s(mine, "id"), &back, NULL), 0);
    assert_string_equal(s(back, "device_id"), "");
    st_autoptr(json_t) filter = json_pack("{s:s}", "device_id", server2);
    st_autoptr(json_t) left = NULL;
    assert_int_equal(st_port_list(f->kv, &alice, filter, &left, NULL), 0);
    assert_int_equal(json_array_size(left), 0);

    /* Errors in Nova's words; a failure half-way leaves no port behind. */
    size_t before = count_keys(f->kv, ST_NETWORK_PORTS_PREFIX);
    st_autoptr(json_t) bogus = json_pack("[{s:s}, {s:s}]", "uuid", s(net, "id"), "uuid",
                                         "44444444-2222-4333-8444-555555555555");
    assert_fails(
        st_network_server_ports_create(f->kv, &alice, server, bogus, NULL, &ports, &names, &err_),
        -EINVAL, "Network 44444444-2222-4333-8444-555555555555 could not be found.");
    assert_int_equal(count_keys(f->kv, ST_NETWORK_PORTS_PREFIX), before);
    st_autoptr(json_t) sgs = json_pack("[{s:s}]", "name", "web");
    st_autofree char *no_sg = st_sprintf("Security group web not found for project %s.", PROJECT_A);
    assert_fails(
        st_network_server_ports_create(f->kv, &alice, server, NULL, sgs, &ports, &names, &err_),
        -EINVAL, no_sg);
    st_autoptr(json_t) net2 = mk_network(f->kv, &alice, "{\"name\": \"second\"}");
    assert_fails(
        st_network_server_ports_create(f->kv, &alice, server, NULL, NULL, &ports, &names, &err_),
        -EBUSY, "Multiple possible networks found, use a Network ID to be more specific.");
    assert_int_equal(count_keys(f->kv, ST_NETWORK_PORTS_PREFIX), before);
    (void)ext;
}

/* ---- quotas ---- */

static void set_quota(struct st_kv *kv, const char *project, const char *changes)
{
    st_autoptr(json_t) req = json_req(changes);
    struct st_network_quota q;
    struct st_err *err = NULL;
    if (st_network_quota_set(kv, project, req, &q, &err) < 0)
        fail_msg("quota set %s: %s", changes, st_err_msg(err));
}

static int64_t used(struct st_kv *kv, const char *project, enum st_network_quota_resource res)
{
    struct st_network_quota_usage u;
    assert_int_equal(st_network_quota_usage(kv, project, &u, NULL), 0);
    return u.used[res] + u.reserved[res];
}

static int try_network(struct st_kv *kv, const struct st_network_caller *who, const char *name,
                       json_t **ret, struct st_err **err)
{
    st_autoptr(json_t) req = json_pack("{s:s}", "name", name);
    return st_network_create(kv, who, req, ret, err);
}

static void test_quota_limits(void **state)
{
    struct fixture *f = *state;
    struct st_network_quota q;
    assert_int_equal(st_network_quota_get(f->kv, PROJECT_A, &q, NULL), 0);
    assert_int_equal(q.limit[ST_NETWORK_QUOTA_NETWORK], 100);
    assert_int_equal(q.limit[ST_NETWORK_QUOTA_PORT], 500);
    assert_int_equal(q.limit[ST_NETWORK_QUOTA_SECURITY_GROUP_RULE], 100);
    assert_int_equal(q.limit[ST_NETWORK_QUOTA_SUBNETPOOL], -1);

    /* Up to the limit, then Neutron's OverQuota; another project is not
     * limited by it; a delete makes room again. */
    set_quota(f->kv, PROJECT_A, "{\"network\": 2, \"subnet\": \"1\"}");
    assert_int_equal(st_network_quota_get(f->kv, PROJECT_A, &q, NULL), 0);
    assert_int_equal(q.limit[ST_NETWORK_QUOTA_NETWORK], 2);
    assert_int_equal(q.limit[ST_NETWORK_QUOTA_SUBNET], 1);
    st_autoptr(json_t) n1 = mk_network(f->kv, &alice, "{\"name\": \"n1\"}");
    st_autoptr(json_t) n2 = mk_network(f->kv, &alice, "{\"name\": \"n2\"}");
    json_t *ret = NULL;
    assert_fails(try_network(f->kv, &alice, "n3", &ret, &err_), -EDQUOT,
                 "Quota exceeded for resources: ['network'].");
    assert_int_equal(count_keys(f->kv, ST_NETWORK_NETWORKS_PREFIX), 2);
    assert_int_equal(used(f->kv, PROJECT_A, ST_NETWORK_QUOTA_NETWORK), 2);
    st_autoptr(json_t) nb = mk_network(f->kv, &bob, "{\"name\": \"n1\"}");
    /* an admin making one for the project is held to the project's quota */
    st_autoptr(json_t) for_a = json_pack("{s:s, s:s}", "name", "n3", "project_id", PROJECT_A);
    assert_fails(st_network_create(f->kv, &admin, for_a, &ret, &err_), -EDQUOT,
                 "Quota exceeded for resources: ['network'].");

    st_autoptr(json_t) s1 = mk_subnet(f->kv, &alice, s(n1, "id"), "10.0.1.0/24");
    st_autoptr(json_t) sreq = json_pack("{s:s, s:s, s:i}", "network_id", s(n2, "id"), "cidr",
                                        "10.0.2.0/24", "ip_version", 4);
    assert_fails(st_subnet_create(f->kv, &alice, sreq, &ret, &err_), -EDQUOT,
                 "Quota exceeded for resources: ['subnet'].");
    /* deleting a network takes its subnet and both quota entries with it */
    assert_int_equal(st_network_delete(f->kv, &alice, s(n1, "id"), NULL), 0);
    assert_int_equal(used(f->kv, PROJECT_A, ST_NETWORK_QUOTA_NETWORK), 1);
    assert_int_equal(used(f->kv, PROJECT_A, ST_NETWORK_QUOTA_SUBNET), 0);
    st_autoptr(json_t) n3 = mk_network(f->kv, &alice, "{\"name\": \"n3\"}");
    st_autoptr(json_t) s2 = mk_subnet(f->kv, &alice, s(n2, "id"), "10.0.2.0/24");

    /* -1 is unlimited; a reset is the defaults again */
    set_quota(f->kv, PROJECT_A, "{\"network\": -1}");
    st_autoptr(json_t) n4 = mk_network(f->kv, &alice, "{\"name\": \"n4\"}");
    assert_int_equal(used(f->kv, PROJECT_A, ST_NETWORK_QUOTA_NETWORK), 3);
    st_autoptr(json_t) rows = NULL;
    assert_int_equal(st_network_quota_list(f->kv, &rows, NULL), 0);
    assert_int_equal(json_array_size(rows), 1);
    assert_string_equal(s(json_array_get(rows, 0), "project_id"), PROJECT_A);
    assert_int_equal(json_integer_value(json_object_get(json_array_get(rows, 0), "network")), -1);
    assert_int_equal(json_integer_value(json_object_get(json_array_get(rows, 0), "subnet")), 1);
    assert_int_equal(st_network_quota_reset(f->kv, PROJECT_A, NULL), 0);
    assert_int_equal(st_network_quota_reset(f->kv, PROJECT_A, NULL), 0);
    assert_int_equal(st_network_quota_get(f->kv, PROJECT_A, &q, NULL), 0);
    assert_int_equal(q.limit[ST_NETWORK_QUOTA_SUBNET], 100);
    json_decref(rows);
    assert_int_equal(st_network_quota_list(f->kv, &rows, NULL), 0);
    assert_int_equal(json_array_size(rows), 0);
    json_decref(st_steal(&rows));
}

static void test_quota_set_checks(void **state)
{
    struct fixture *f = *state;
    struct st_network_quota q;
    const struct {
        const char *body, *want;
    } bad[] = {
        {"{\"bogus\": 1, \"network\": 2}", "Unrecognized attribute(s) 'bogus'"},
        {"{\"network\": -2}", "Invalid input for network. Reason: '-2' is not in range -1 through "
                              "2147483647."},
        {"{\"port\": 2147483648}", "is not in range -1 through 2147483647."},
        {"{\"router\": \"ten\"}", "Invalid input for operation: 'ten' is not an integer."},
        {"{\"router\": 1.5}", "is not an integer."},
        {"{\"check_limit\": \"maybe\"}", "Invalid input for check_limit."},
    };
    for (size_t i = 0; i < ST_ARRAY_SIZE(bad); i++) {
        st_autoptr(json_t) req = json_req(bad[i].body);
        assert_fails(st_network_quota_set(f->kv, PROJECT_A, req, &q, &err_), -EINVAL, bad[i].want);
    }
    /* nothing of a refused request was kept */
    assert_int_equal(st_network_quota_get(f->kv, PROJECT_A, &q, NULL), 0);
    assert_int_equal(q.limit[ST_NETWORK_QUOTA_NETWORK], 100);
    st_autoptr(json_t) odd = json_req("{\"network\": 1}");
    assert_fails(st_network_quota_set(f->kv, "../x", odd, &q, &err_), -EINVAL,
                 "Invalid project id");

    /* check_limit refuses a limit below the usage, unless forced */
    st_autoptr(json_t) n1 = mk_network(f->kv, &alice, "{\"name\": \"n1\"}");
    st_autoptr(json_t) n2 = mk_network(f->kv, &alice, "{\"name\": \"n2\"}");
    st_autoptr(json_t) checked = json_req("{\"network\": 1, \"check_limit\": true}");
    assert_fails(st_network_quota_set(f->kv, PROJECT_A, checked, &q, &err_), -EINVAL,
                 "Quota limit 1 for network must be greater than or equal to already used 2");
    set_quota(f->kv, PROJECT_A, "{\"network\": 2, \"check_limit\": true}");
    set_quota(f->kv, PROJECT_A, "{\"network\": 1, \"check_limit\": true, \"force\": true}");
    /* without check_limit a limit below usage is taken, and enforced */
    set_quota(f->kv, PROJECT_A, "{\"network\": 0, \"subnetpool\": 5, \"rbac_policy\": 0}");
    assert_int_equal(st_network_quota_get(f->kv, PROJECT_A, &q, NULL), 0);
    assert_int_equal(q.limit[ST_NETWORK_QUOTA_NETWORK], 0);
    assert_int_equal(q.limit[ST_NETWORK_QUOTA_SUBNETPOOL], 5);
    json_t *ret = NULL;
    assert_fails(try_network(f->kv, &alice, "n3", &ret, &err_), -EDQUOT,
                 "Quota exceeded for resources: ['network'].");
    assert_int_equal(used(f->kv, PROJECT_A, ST_NETWORK_QUOTA_NETWORK), 2);
}

/* Writes the project's usage document of res as a crash would leave it. */
static void put_usage(struct st_kv *kv, const char *project, const char *res, json_t *doc)
{
    st_autofree char *key = st_sprintf("%s%s/%s", ST_NETWORK_QUOTA_USAGE_PREFIX, project, res);
    st_autofree char *text = st_json_dumps(doc);
    assert_int_equal(st_kv_put(kv, key, text, strlen(text), ST_KV_ANY, NULL, NULL), 0);
}

static void test_quota_recount(void **state)
{
    struct fixture *f = *state;
    set_quota(f->kv, PROJECT_A, "{\"network\": 2}");
    st_autoptr(json_t) n1 = mk_network(f->kv, &alice, "{\"name\": \"n1\"}");
    const char *ghost = "99999999-2222-4333-8444-555555555555";

    /* A claim a crash left a minute ago, with no network: dropped by the
     * recount that a refusal would have made, so the create succeeds. */
    int64_t long_ago = st_time_now_ms() - 60000;
    st_autoptr(json_t) crashed =
        json_pack("{s:I, s:I}", s(n1, "id"), (json_int_t)long_ago, ghost, (json_int_t)long_ago);
    put_usage(f->kv, PROJECT_A, "network", crashed);
    st_autoptr(json_t) n2 = mk_network(f->kv, &alice, "{\"name\": \"n2\"}");
    assert_int_equal(used(f->kv, PROJECT_A, ST_NETWORK_QUOTA_NETWORK), 2);

    /* A young claim is a create in flight: it holds its place. */
    assert_int_equal(st_network_delete(f->kv, &alice, s(n2, "id"), NULL), 0);
    st_autoptr(json_t) in_flight = json_pack("{s:I, s:I}", s(n1, "id"), (json_int_t)long_ago, ghost,
                                             (json_int_t)st_time_now_ms());
    put_usage(f->kv, PROJECT_A, "network", in_flight);
    json_t *ret = NULL;
    assert_fails(try_network(f->kv, &alice, "n3", &ret, &err_), -EDQUOT,
                 "Quota exceeded for resources: ['network'].");
    struct st_network_quota_usage u;
    assert_int_equal(st_network_quota_usage(f->kv, PROJECT_A, &u, NULL), 0);
    assert_int_equal(u.used[ST_NETWORK_QUOTA_NETWORK], 1);
    assert_int_equal(u.reserved[ST_NETWORK_QUOTA_NETWORK], 1);
    /* releasing it (the create failed after all) makes room, once */
    st_network_quota_release_one(f->kv, PROJECT_A, ST_NETWORK_QUOTA_NETWORK, ghost);
    st_network_quota_release_one(f->kv, PROJECT_A, ST_NETWORK_QUOTA_NETWORK, ghost);
    st_autoptr(json_t) n3 = mk_network(f->kv, &alice, "{\"name\": \"n3\"}");

    /* Networks nobody counted (made before quotas were kept): the
     * project's first claim counts them. */
    st_autofree char *key = st_sprintf("%s%s/network", ST_NETWORK_QUOTA_USAGE_PREFIX, PROJECT_A);
    assert_int_equal(st_kv_delete(f->kv, key, ST_KV_ANY, NULL, NULL), 0);
    assert_fails(try_network(f->kv, &alice, "n4", &ret, &err_), -EDQUOT,
                 "Quota exceeded for resources: ['network'].");
    assert_int_equal(used(f->kv, PROJECT_A, ST_NETWORK_QUOTA_NETWORK), 2);
    /* and a delete after a recount releases exactly one */
    assert_int_equal(st_network_delete(f->kv, &alice, s(n1, "id"), NULL), 0);
    assert_int_equal(used(f->kv, PROJECT_A, ST_NETWORK_QUOTA_NETWORK), 1);
    st_autoptr(json_t) n5 = mk_network(f->kv, &alice, "{\"name\": \"n5\"}");
    assert_fails(try_network(f->kv, &alice, "n6", &ret, &err_), -EDQUOT,
                 "Quota exceeded for resources: ['network'].");
}

struct quota_race {
    struct st_kv *kv;
    const char *network_id; /* NULL: networks, else ports on it */
    pthread_barrier_t start;
    pthread_mutex_t lock;
    int made, over, other;
};

static void *quota_racer(void *arg)
{
    struct quota_race *r = arg;
    pthread_barrier_wait(&r->start);
    for (int i = 0; i < 3; i++) {
        json_t *doc = NULL;
        struct st_err *err = NULL;
        int rc;
        if (r->network_id) {
            st_autoptr(json_t) req = json_pack("{s:s}", "network_id", r->network_id);
            rc = st_port_create(r->kv, &alice, req, &doc, &err);
        } else {
            rc = try_network(r->kv, &alice, "racer", &doc, &err);
        }
        pthread_mutex_lock(&r->lock);
        if (rc == 0)
            r->made++;
        else if (rc == -EDQUOT && strstr(st_err_msg(err), "Quota exceeded for resources"))
            r->over++;
        else
            r->other++;
        pthread_mutex_unlock(&r->lock);
        json_decref(doc);
        st_err_free(err);
    }
    return NULL;
}

static void run_quota_race(struct st_kv *kv, const char *network_id, struct quota_race *r)
{
    enum { THREADS = 8 };
    *r = (struct quota_race){.kv = kv, .network_id = network_id};
    pthread_mutex_init(&r->lock, NULL);
    pthread_barrier_init(&r->start, NULL, THREADS);
    pthread_t t[THREADS];
    for (int i = 0; i < THREADS; i++)
        assert_int_equal(pthread_create(&t[i], NULL, quota_racer, r), 0);
    for (int i = 0; i < THREADS; i++)
        pthread_join(t[i], NULL);
    pthread_barrier_destroy(&r->start);
    pthread_mutex_destroy(&r->lock);
}

static void test_quota_concurrent_creates(void **state)
{
    struct fixture *f = *state;
    /* 24 creates from 8 threads against a limit of 5: exactly 5 made */
    set_quota(f->kv, PROJECT_A, "{\"network\": 5, \"port\": 4}");
    struct quota_race r;
    run_quota_race(f->kv, NULL, &r);
    assert_int_equal(r.other, 0);
    assert_int_equal(r.made, 5);
    assert_int_equal(r.over, 19);
    assert_int_equal(count_keys(f->kv, ST_NETWORK_NETWORKS_PREFIX), 5);
    assert_int_equal(used(f->kv, PROJECT_A, ST_NETWORK_QUOTA_NETWORK), 5);

    /* ports too (the limit checked at the last step of many claims) */
    st_autoptr(json_t) big = mk_network(f->kv, &bob, "{\"name\": \"big\", \"shared\": false}");
    json_t *ret = NULL;
    st_autoptr(json_t) nets = NULL;
    assert_int_equal(st_network_list(f->kv, &alice, NULL, &nets, NULL), 0);
    const char *net = s(json_array_get(nets, 0), "id");
    st_autoptr(json_t) sub = mk_subnet(f->kv, &alice, net, "10.3.0.0/24");
    run_quota_race(f->kv, net, &r);
    assert_int_equal(r.other, 0);
    assert_int_equal(r.made, 4);
    assert_int_equal(r.over, 20);
    st_autoptr(json_t) ports = NULL;
    assert_int_equal(st_port_list(f->kv, &alice, NULL, &ports, NULL), 0);
    assert_int_equal(json_array_size(ports), 4);
    /* the refused ones left no address or MAC behind */
    st_autofree char *ipam = st_sprintf("%s%s/", ST_NETWORK_IPAM_PREFIX, s(sub, "id"));
    assert_int_equal(count_keys(f->kv, ipam), 4);
    (void)ret;
    (void)big;
}

static void test_quota_neutron_made(void **state)
{
    struct fixture *f = *state;
    /* At a group quota of 0 the project still gets its default group, with
     * its four rules, and both are counted, as in Neutron. */
    set_quota(f->kv, PROJECT_A, "{\"security_group\": 0, \"security_group_rule\": 0}");
    st_autoptr(json_t) groups = NULL;
    assert_int_equal(st_security_group_list(f->kv, &alice, NULL, &groups, NULL), 0);
    assert_int_equal(json_array_size(groups), 1);
    assert_string_equal(s(json_array_get(groups, 0), "name"), "default");
    assert_int_equal(used(f->kv, PROJECT_A, ST_NETWORK_QUOTA_SECURITY_GROUP), 1);
    assert_int_equal(used(f->kv, PROJECT_A, ST_NETWORK_QUOTA_SECURITY_GROUP_RULE), 4);
    json_t *ret = NULL;
    st_autoptr(json_t) web = json_req("{\"name\": \"web\"}");
    assert_fails(st_security_group_create(f->kv, &alice, web, &ret, &err_), -EDQUOT,
                 "Quota exceeded for resources: ['security_group'].");
    st_autoptr(json_t) rule = json_pack(
        "{s:s, s:s, s:s, s:i, s:i}", "security_group_id", s(json_array_get(groups, 0), "id"),
        "direction", "ingress", "protocol", "tcp", "port_range_min", 22, "port_range_max", 22);
    assert_fails(st_security_group_rule_create(f->kv, &alice, rule, &ret, &err_), -EDQUOT,
                 "Quota exceeded for resources: ['security_group_rule'].");
    /* a new group's own egress rules are counted, not refused */
    set_quota(f->kv, PROJECT_A, "{\"security_group\": 2, \"security_group_rule\": 7}");
    st_autoptr(json_t) g = NULL;
    assert_int_equal(st_security_group_create(f->kv, &alice, web, &g, NULL), 0);
    assert_int_equal(used(f->kv, PROJECT_A, ST_NETWORK_QUOTA_SECURITY_GROUP), 2);
    assert_int_equal(used(f->kv, PROJECT_A, ST_NETWORK_QUOTA_SECURITY_GROUP_RULE), 6);
    st_autoptr(json_t) r1 = NULL;
    assert_int_equal(st_security_group_rule_create(f->kv, &alice, rule, &r1, NULL), 0);
    st_autoptr(json_t) rule2 = json_pack("{s:s, s:s, s:s}", "security_group_id", s(g, "id"),
                                         "direction", "ingress", "protocol", "icmp");
    assert_fails(st_security_group_rule_create(f->kv, &alice, rule2, &ret, &err_), -EDQUOT,
                 "Quota exceeded for resources: ['security_group_rule'].");
    /* a duplicate is told so; deleting a rule or a group gives back */
    assert_fails(st_security_group_rule_create(f->kv, &alice, rule, &ret, &err_), -EEXIST,
                 "Security group rule already exists.");
    assert_int_equal(st_security_group_rule_delete(f->kv, &alice, s(r1, "id"), NULL), 0);
    assert_int_equal(used(f->kv, PROJECT_A, ST_NETWORK_QUOTA_SECURITY_GROUP_RULE), 6);
    assert_int_equal(st_security_group_delete(f->kv, &alice, s(g, "id"), NULL), 0);
    assert_int_equal(used(f->kv, PROJECT_A, ST_NETWORK_QUOTA_SECURITY_GROUP), 1);
    assert_int_equal(used(f->kv, PROJECT_A, ST_NETWORK_QUOTA_SECURITY_GROUP_RULE), 4);

    /* Servers' ports count, in Nova's words when over; a router's interface
     * port is counted but never refused; gateway ports count for nobody. */
    set_quota(f->kv, PROJECT_A, "{\"port\": 1}");
    st_autoptr(json_t) net = mk_network(f->kv, &alice, "{\"name\": \"private\"}");
    st_autoptr(json_t) sub = mk_subnet(f->kv, &alice, s(net, "id"), "10.0.2.0/24");
    json_t *ports = NULL, *names = NULL;
    const char *server1 = "22222222-2222-4333-8444-555555555555";
    const char *server2 = "33333333-2222-4333-8444-555555555555";
    assert_int_equal(
        st_network_server_ports_create(f->kv, &alice, server1, NULL, NULL, &ports, &names, NULL),
        0);
    json_decref(ports);
    json_decref(names);
    size_t before = count_keys(f->kv, ST_NETWORK_PORTS_PREFIX);
    assert_fails(
        st_network_server_ports_create(f->kv, &alice, server2, NULL, NULL, &ports, &names, &err_),
        -EDQUOT, "Maximum number of ports exceeded");
    assert_int_equal(count_keys(f->kv, ST_NETWORK_PORTS_PREFIX), before);
    st_autoptr(json_t) router = NULL;
    st_autoptr(json_t) rreq = json_req("{\"name\": \"r1\"}");
    assert_int_equal(st_router_create(f->kv, &alice, rreq, &router, NULL), 0);
    st_autoptr(json_t) body = json_pack("{s:s}", "subnet_id", s(sub, "id"));
    st_autoptr(json_t) itf = NULL;
    assert_int_equal(st_router_add_interface(f->kv, &alice, s(router, "id"), body, &itf, NULL), 0);
    assert_int_equal(used(f->kv, PROJECT_A, ST_NETWORK_QUOTA_PORT), 2);
    st_autoptr(json_t) gone = NULL;
    assert_int_equal(st_router_remove_interface(f->kv, &alice, s(router, "id"), body, &gone, NULL),
                     0);
    assert_int_equal(st_network_device_ports_release(f->kv, server1, NULL), 0);
    assert_int_equal(used(f->kv, PROJECT_A, ST_NETWORK_QUOTA_PORT), 0);
    assert_int_equal(used(f->kv, PROJECT_A, ST_NETWORK_QUOTA_ROUTER), 1);
    assert_int_equal(st_router_delete(f->kv, &alice, s(router, "id"), NULL), 0);
    assert_int_equal(used(f->kv, PROJECT_A, ST_NETWORK_QUOTA_ROUTER), 0);
}

/* The JSON document at key (*ret_rev: its mod_rev), or NULL when absent. */
static json_t *read_json(struct st_kv *kv, const char *key, int64_t *ret_rev)
{
    st_autoptr(st_kv_entry) e = NULL;
    if (st_kv_get(kv, key, &e, NULL) < 0)
        return NULL;
    if (ret_rev)
        *ret_rev = e->mod_rev;
    return json_loadb(e->value, e->value_len, 0, NULL);
}

/* Removes every key under prefix. */
static void delete_all(struct st_kv *kv, const char *prefix)
{
    st_autoptr(st_kv_list) l = NULL;
    assert_int_equal(st_kv_list(kv, prefix, NULL, 0, &l, NULL), 0);
    for (size_t i = 0; i < l->count; i++)
        assert_int_equal(st_kv_delete(kv, l->entries[i].key, ST_KV_ANY, NULL, NULL), 0);
}

static char *claims_of(const char *project, const char *res)
{
    return st_sprintf("%s%s/%s/", ST_NETWORK_QUOTA_CLAIMS_PREFIX, project, res);
}

static int64_t counter_of(struct st_kv *kv, const char *project, const char *res)
{
    st_autofree char *key = st_sprintf("%s%s/%s", ST_NETWORK_QUOTA_USAGE_PREFIX, project, res);
    st_autoptr(json_t) doc = read_json(kv, key, NULL);
    assert_non_null(doc);
    assert_int_equal(json_object_size(doc), 1);
    return json_integer_value(json_object_get(doc, "used"));
}

/* Bytes (key + value) the store wrote under prefix after revision from. */
static size_t history_bytes(struct st_kv *kv, const char *prefix, int64_t from)
{
    st_autoptr(st_kv_events) ev = NULL;
    assert_int_equal(st_kv_watch(kv, prefix, from, 0, &ev, NULL), 0);
    size_t bytes = 0;
    for (size_t i = 0; i < ev->count; i++)
        bytes += strlen(ev->events[i].kv.key) + ev->events[i].kv.value_len;
    return bytes;
}

/* Usage is a counter plus one claim key per resource: a create writes both
 * in one transaction of a constant size however many the project has, also
 * when the limit is -1 (counted, shown, cheap), and a delete takes both
 * back in one. */
#define MANY_CLAIMS 400

static void test_quota_counter_and_claims(void **state)
{
    struct fixture *f = *state;
    st_autoptr(json_t) n1 = mk_network(f->kv, &alice, "{\"name\": \"n1\"}");
    st_autofree char *nclaims = claims_of(PROJECT_A, "network");
    st_autofree char *n1_claim = st_sprintf("%s%s", nclaims, s(n1, "id"));
    int64_t crev = 0;
    st_autoptr(json_t) claim = read_json(f->kv, n1_claim, &crev);
    assert_non_null(claim);
    assert_true(llabs(json_integer_value(json_object_get(claim, "at")) - st_time_now_ms()) < 60000);
    assert_int_equal(counter_of(f->kv, PROJECT_A, "network"), 1);
    assert_int_equal(st_network_delete(f->kv, &alice, s(n1, "id"), NULL), 0);
    assert_int_equal(count_keys(f->kv, nclaims), 0);
    assert_int_equal(counter_of(f->kv, PROJECT_A, "network"), 0);

    set_quota(f->kv, PROJECT_A, "{\"security_group_rule\": -1}");
    st_autoptr(json_t) groups = NULL; /* the default group and its 4 rules */
    assert_int_equal(st_security_group_list(f->kv, &alice, NULL, &groups, NULL), 0);
    st_autofree char *rclaims = claims_of(PROJECT_A, "security_group_rule");
    static char ids[MANY_CLAIMS][ST_UUID_LEN];
    int64_t start = st_kv_revision(f->kv);
    size_t first = 0, last = 0;
    for (int i = 0; i < MANY_CLAIMS; i++) {
        st_uuid_new(ids[i]);
        int64_t before = st_kv_revision(f->kv);
        assert_int_equal(st_network_quota_claim(f->kv, PROJECT_A,
                                                ST_NETWORK_QUOTA_SECURITY_GROUP_RULE, ids[i], NULL),
                         0);
        /* one transaction: two small keys, whatever came before */
        assert_int_equal(st_kv_revision(f->kv), before + 1);
        size_t bytes = history_bytes(f->kv, "/network/quota-", before);
        assert_true(bytes < 300);
        if (i == 0)
            first = bytes;
        last = bytes;
    }
    assert_true(last <= first + 4); /* the counter's digits */
    /* a claim again is no change; the usage shows them all (creates in flight) */
    int64_t now_rev = st_kv_revision(f->kv);
    assert_int_equal(st_network_quota_claim(f->kv, PROJECT_A, ST_NETWORK_QUOTA_SECURITY_GROUP_RULE,
                                            ids[7], NULL),
                     0);
    assert_int_equal(st_kv_revision(f->kv), now_rev);
    assert_int_equal(count_keys(f->kv, rclaims), MANY_CLAIMS + 4);
    assert_int_equal(counter_of(f->kv, PROJECT_A, "security_group_rule"), MANY_CLAIMS + 4);
    struct st_network_quota_usage u;
    assert_int_equal(st_network_quota_usage(f->kv, PROJECT_A, &u, NULL), 0);
    assert_int_equal(u.used[ST_NETWORK_QUOTA_SECURITY_GROUP_RULE], 4); /* the default group's */
    assert_int_equal(u.reserved[ST_NETWORK_QUOTA_SECURITY_GROUP_RULE], MANY_CLAIMS);

    /* releases: one transaction each, many at once in as few as they fit */
    const char *some[200];
    for (int i = 0; i < 200; i++)
        some[i] = ids[i];
    int64_t before = st_kv_revision(f->kv);
    assert_int_equal(st_network_quota_release(
                         f->kv, PROJECT_A, ST_NETWORK_QUOTA_SECURITY_GROUP_RULE, some, 200, NULL),
                     0);
    assert_int_equal(st_kv_revision(f->kv), before + 2);
    for (int i = 200; i < MANY_CLAIMS; i++)
        st_network_quota_release_one(f->kv, PROJECT_A, ST_NETWORK_QUOTA_SECURITY_GROUP_RULE,
                                     ids[i]);
    assert_int_equal(st_kv_revision(f->kv), before + 2 + MANY_CLAIMS - 200);
    /* releasing again changes nothing */
    st_network_quota_release_one(f->kv, PROJECT_A, ST_NETWORK_QUOTA_SECURITY_GROUP_RULE, ids[0]);
    assert_int_equal(st_kv_revision(f->kv), before + 2 + MANY_CLAIMS - 200);
    assert_int_equal(count_keys(f->kv, rclaims), 4);
    assert_int_equal(counter_of(f->kv, PROJECT_A, "security_group_rule"), 4);
    /* 400 creates and deletes: some 100 KB of history, where the document
     * listing every id cost O(n) each (40.8 MB for 1,000 rule creates) */
    size_t total = history_bytes(f->kv, "/network/quota-", start);
    print_message("quota history of %d claims and releases: %zu bytes\n", MANY_CLAIMS, total);
    assert_true(total < (size_t)MANY_CLAIMS * 2 * 300);
}

/* A store written before counters ({"<id>": <claimed at>, ...} per project
 * and kind) is converted the first time it is touched: entries become
 * claims with their times, the counter their number, in one transaction
 * (several for more than one holds), and works as before after. */
static void test_quota_legacy_usage(void **state)
{
    struct fixture *f = *state;
    set_quota(f->kv, PROJECT_A, "{\"network\": 3}");
    st_autoptr(json_t) n1 = mk_network(f->kv, &alice, "{\"name\": \"n1\"}");
    st_autoptr(json_t) n2 = mk_network(f->kv, &alice, "{\"name\": \"n2\"}");
    /* as the version before left it: no claims, one document */
    st_autofree char *nclaims = claims_of(PROJECT_A, "network");
    delete_all(f->kv, nclaims);
    assert_int_equal(count_keys(f->kv, nclaims), 0);
    const char *in_flight = "99999999-2222-4333-8444-555555555555";
    int64_t then = st_time_now_ms() - 5000;
    st_autoptr(json_t) legacy =
        json_pack("{s:I, s:I, s:I}", s(n1, "id"), (json_int_t)then, s(n2, "id"), (json_int_t)then,
                  in_flight, (json_int_t)st_time_now_ms());
    put_usage(f->kv, PROJECT_A, "network", legacy);

    struct st_network_quota_usage u;
    assert_int_equal(st_network_quota_usage(f->kv, PROJECT_A, &u, NULL), 0);
    assert_int_equal(u.used[ST_NETWORK_QUOTA_NETWORK], 2);
    assert_int_equal(u.reserved[ST_NETWORK_QUOTA_NETWORK], 1);
    assert_int_equal(counter_of(f->kv, PROJECT_A, "network"), 3);
    assert_int_equal(count_keys(f->kv, nclaims), 3);
    st_autofree char *key = st_sprintf("%s%s/network", ST_NETWORK_QUOTA_USAGE_PREFIX, PROJECT_A);
    st_autofree char *n1_claim = st_sprintf("%s%s", nclaims, s(n1, "id"));
    int64_t urev = 0, crev = 0;
    st_autoptr(json_t) counter = read_json(f->kv, key, &urev);
    st_autoptr(json_t) claim = read_json(f->kv, n1_claim, &crev);
    assert_int_equal(json_integer_value(json_object_get(claim, "at")), then);
    assert_int_equal(crev, urev); /* written together */
    /* the limit holds the in-flight create's place; its release frees it */
    json_t *ret = NULL;
    assert_fails(try_network(f->kv, &alice, "n3", &ret, &err_), -EDQUOT,
                 "Quota exceeded for resources: ['network'].");
    st_network_quota_release_one(f->kv, PROJECT_A, ST_NETWORK_QUOTA_NETWORK, in_flight);
    st_autoptr(json_t) n3 = mk_network(f->kv, &alice, "{\"name\": \"n3\"}");
    assert_int_equal(st_network_delete(f->kv, &alice, s(n1, "id"), NULL), 0);
    assert_int_equal(used(f->kv, PROJECT_A, ST_NETWORK_QUOTA_NETWORK), 2);

    /* 300 entries: three transactions, all counted; touched by a release
     * of something else */
    st_autoptr(json_t) many = json_object();
    char id[ST_UUID_LEN];
    for (int i = 0; i < 300; i++) {
        st_uuid_new(id);
        json_object_set_new(many, id, json_integer(st_time_now_ms()));
    }
    put_usage(f->kv, PROJECT_B, "port", many);
    int64_t before = st_kv_revision(f->kv);
    st_network_quota_release_one(f->kv, PROJECT_B, ST_NETWORK_QUOTA_PORT, in_flight);
    assert_int_equal(st_kv_revision(f->kv), before + 3);
    assert_int_equal(counter_of(f->kv, PROJECT_B, "port"), 300);
    st_autofree char *pclaims = claims_of(PROJECT_B, "port");
    assert_int_equal(count_keys(f->kv, pclaims), 300);
    /* and a claim converts too, then counts: 300 of a limit of 300 */
    set_quota(f->kv, PROJECT_B, "{\"port\": 301}");
    put_usage(f->kv, PROJECT_B, "port", many);
    delete_all(f->kv, pclaims);
    assert_int_equal(
        st_network_quota_claim(f->kv, PROJECT_B, ST_NETWORK_QUOTA_PORT, in_flight, NULL), 0);
    assert_int_equal(counter_of(f->kv, PROJECT_B, "port"), 301);
    st_uuid_new(id);
    assert_fails(st_network_quota_claim(f->kv, PROJECT_B, ST_NETWORK_QUOTA_PORT, id, &err_),
                 -EDQUOT, "Quota exceeded for resources: ['port'].");
    (void)n2;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_network_create_defaults, setup, teardown),
        cmocka_unit_test_setup_teardown(test_network_validation, setup, teardown),
        cmocka_unit_test_setup_teardown(test_network_external_and_scoping, setup, teardown),
        cmocka_unit_test_setup_teardown(test_subnet_defaults, setup, teardown),
        cmocka_unit_test_setup_teardown(test_subnet_validation, setup, teardown),
        cmocka_unit_test_setup_teardown(test_overlapping_cidrs_across_projects, setup, teardown),
        cmocka_unit_test_setup_teardown(test_port_concurrent_allocation, setup, teardown),
        cmocka_unit_test_setup_teardown(test_port_fixed_ips_and_mac, setup, teardown),
        cmocka_unit_test_setup_teardown(test_port_security_and_binding, setup, teardown),
        cmocka_unit_test_setup_teardown(test_deletes_in_use, setup, teardown),
        cmocka_unit_test_setup_teardown(test_delete_races_port_create, setup, teardown),
        cmocka_unit_test_setup_teardown(test_server_ports, setup, teardown),
        cmocka_unit_test_setup_teardown(test_quota_limits, setup, teardown),
        cmocka_unit_test_setup_teardown(test_quota_set_checks, setup, teardown),
        cmocka_unit_test_setup_teardown(test_quota_recount, setup, teardown),
        cmocka_unit_test_setup_teardown(test_quota_concurrent_creates, setup, teardown),
        cmocka_unit_test_setup_teardown(test_quota_neutron_made, setup, teardown),
        cmocka_unit_test_setup_teardown(test_quota_counter_and_claims, setup, teardown),
        cmocka_unit_test_setup_teardown(test_quota_legacy_usage, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
