/* `stratos apply -f vpc.json` with the seed's VPC document against a fake
 * Neutron: the plan for a fresh cloud, the requests that make it, a second
 * apply that finds everything and writes nothing, --dry-run that never
 * writes, a router brought back to the document, and documents refused
 * with the field at fault (exit 1, nothing sent). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "cli_harness.h"
#include "lib/cleanup.h"

/* The seed's document, verbatim. */
static const char *const seed_vpc =
    "{\"vpc\": {\"cidr\": \"10.0.0.0/16\",\n"
    "  \"subnets\": [{\"name\": \"public-subnet\", \"cidr\": \"10.0.1.0/24\", \"type\": "
    "\"public\", \"availability_zone\": \"us-west-2a\"},\n"
    "              {\"name\": \"private-subnet\", \"cidr\": \"10.0.2.0/24\", \"type\": "
    "\"private\", \"availability_zone\": \"us-west-2b\"}],\n"
    "  \"internet_gateway\": true, \"nat_gateway\": true}}\n";

#define EXTERNAL "{'id': 'ext', 'name': 'public', 'router:external': true}"
#define VPC_NET  "{'id': 'nv', 'name': 'vpc', 'router:external': false, 'subnets': ['sp', 'sq']}"
#define SUB_PUBLIC                                                                                 \
    "{'id': 'sp', 'name': 'public-subnet', 'network_id': 'nv', 'cidr': '10.0.1.0/24', "            \
    "'gateway_ip': '10.0.1.1'}"
#define SUB_PRIVATE                                                                                \
    "{'id': 'sq', 'name': 'private-subnet', 'network_id': 'nv', 'cidr': '10.0.2.0/24', "           \
    "'gateway_ip': '10.0.2.1'}"
#define ROUTER(snat)                                                                               \
    "{'id': 'rv', 'name': 'vpc-router', 'external_gateway_info': {'network_id': 'ext', "           \
    "'enable_snat': " snat "}}"
#define IF_PORT(id, subnet)                                                                        \
    "{'id': '" id "', 'device_id': 'rv', 'device_owner': 'network:router_interface', "             \
    "'fixed_ips': [{'subnet_id': '" subnet "', 'ip_address': 'x'}]}"
#define GW_PORT                                                                                    \
    "{'id': 'gw', 'device_id': 'rv', 'device_owner': 'network:router_gateway', 'fixed_ips': "      \
    "[{'subnet_id': 'es', 'ip_address': '203.0.113.5'}]}"

static char *write_temp(const char *text)
{
    char *path = st_strdup("/tmp/st-cli-vpc-XXXXXX");
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
    close(fd);
    return path;
}

static const char *const notes =
    "public-subnet (public): servers there are reached from outside through floating IPs on "
    "public: stratos floating ip create public, then stratos floating ip set --port <server's "
    "port> <address>.\n"
    "private-subnet (private): no address from outside; egress to the internet through the "
    "router's NAT (SNAT on public).\n"
    "Neutron's SNAT is per router: servers of a public subnet without a floating IP also go out "
    "through the NAT.\n"
    "Neutron subnets have no availability zone: each subnet's is kept in its description.\n";

/* The summary table with the given actions for the network, the subnets,
 * the router and the interfaces (the Action column as wide as they are). */
static char *summary(const char *net, const char *subnets, const char *router,
                     const char *interfaces, const char *if_details_public,
                     const char *if_details_private)
{
    int w = 6; /* "Action" */
    const char *actions[] = {net, subnets, router, interfaces};
    for (size_t i = 0; i < ST_ARRAY_SIZE(actions); i++)
        if ((int)strlen(actions[i]) > w)
            w = (int)strlen(actions[i]);
    char dashes[16];
    memset(dashes, '-', (size_t)w + 2);
    dashes[w + 2] = '\0';
    st_autofree char *rule = st_sprintf(
        "+-----------+---------------------------+%s+--------------------------------------+\n",
        dashes);
    return st_sprintf(
        "%s| Resource  | Name                      | %-*s | Details                        "
        "      |\n%s"
        "| network   | vpc                       | %-*s | VPC 10.0.0.0/16                "
        "      |\n"
        "| subnet    | public-subnet             | %-*s | 10.0.1.0/24 public, zone "
        "us-west-2a  |\n"
        "| subnet    | private-subnet            | %-*s | 10.0.2.0/24 private, zone "
        "us-west-2b |\n"
        "| router    | vpc-router                | %-*s | gateway on public, SNAT on     "
        "      |\n"
        "| interface | vpc-router:public-subnet  | %-*s | %-36s |\n"
        "| interface | vpc-router:private-subnet | %-*s | %-36s |\n%s%s",
        rule, w, "Action", rule, w, net, w, subnets, w, subnets, w, router, w, interfaces,
        if_details_public, w, interfaces, if_details_private, rule, notes);
}

static void test_vpc_fresh_cloud(void **state)
{
    (void)state;
    const char *public = nt_json("{'subnet': " SUB_PUBLIC "}");
    const struct fake_route routes[] = {
        {NET "/networks?name=vpc", "200 OK", "", "{\"networks\": []}"},
        {NET "/networks?router%3Aexternal=True", "200 OK", "",
         nt_json("{'networks': [" EXTERNAL "]}")},
        {NET "/routers?name=vpc-router", "200 OK", "", "{\"routers\": []}"},
        {"POST " NET "/networks", "201 Created", "", nt_json("{'network': " VPC_NET "}")},
        {"POST " NET "/subnets", "201 Created", "", public},
        {"POST " NET "/routers", "201 Created", "", nt_json("{'router': " ROUTER("true") "}")},
        {"PUT " NET "/routers/rv/add_router_interface", "200 OK", "", "{}"},
        {NET "/networks?name=prod", "200 OK", "", "{\"networks\": []}"},
        {NET "/routers?name=prod-router", "200 OK", "", "{\"routers\": []}"},
    };
    /* the second subnet created answers as the private one */
    const struct fake_later later[] = {
        {"POST " NET "/subnets", 1, "201 Created", nt_json("{'subnet': " SUB_PRIVATE "}")},
    };
    struct fake_server s;
    nt_cloud_start(&s, routes, ST_ARRAY_SIZE(routes), later, ST_ARRAY_SIZE(later));
    st_autofree char *file = write_temp(seed_vpc);

    /* --dry-run: the plan, read from the cloud, and no write */
    struct nt_result r = nt_run("apply", "-f", file, "--dry-run", NULL);
    assert_int_equal(r.rc, 0);
    assert_string_equal(r.err, "");
    assert_string_equal(s.log, "GET " NET "/networks?name=vpc \n"
                               "GET " NET "/networks?router%3Aexternal=True \n"
                               "GET " NET "/routers?name=vpc-router \n");
    st_autofree char *plan = summary("create", "create", "create", "create",
                                     "gateway of 10.0.1.0/24", "gateway of 10.0.2.0/24");
    st_autofree char *want_plan =
        st_sprintf("VPC vpc (10.0.0.0/16): the plan; --dry-run changed nothing.\n%s", plan);
    assert_string_equal(r.out, want_plan);
    nt_free(&r);

    /* the apply: every read first, then the network, its subnets (the zone
     * in the description), the router with its gateway and SNAT, and one
     * interface per subnet */
    nt_log_reset(&s);
    r = nt_run("apply", "-f", file, NULL);
    assert_int_equal(r.rc, 0);
    assert_string_equal(r.err, "");
    assert_string_equal(
        s.log,
        "GET " NET "/networks?name=vpc \n"
        "GET " NET "/networks?router%3Aexternal=True \n"
        "GET " NET "/routers?name=vpc-router \n"
        "POST " NET "/networks {\"network\":{\"name\":\"vpc\",\"admin_state_up\":true,"
        "\"description\":\"VPC 10.0.0.0/16 (stratos apply)\"}}\n"
        "POST " NET "/subnets {\"subnet\":{\"name\":\"public-subnet\",\"network_id\":\"nv\","
        "\"cidr\":\"10.0.1.0/24\",\"ip_version\":4,\"description\":\"public subnet of VPC vpc; "
        "availability zone us-west-2a\"}}\n"
        "POST " NET "/subnets {\"subnet\":{\"name\":\"private-subnet\",\"network_id\":\"nv\","
        "\"cidr\":\"10.0.2.0/24\",\"ip_version\":4,\"description\":\"private subnet of VPC vpc; "
        "availability zone us-west-2b\"}}\n"
        "POST " NET "/routers {\"router\":{\"name\":\"vpc-router\",\"admin_state_up\":true,"
        "\"description\":\"router of VPC vpc (stratos apply)\",\"external_gateway_info\":"
        "{\"network_id\":\"ext\",\"enable_snat\":true}}}\n"
        "PUT " NET "/routers/rv/add_router_interface {\"subnet_id\":\"sp\"}\n"
        "PUT " NET "/routers/rv/add_router_interface {\"subnet_id\":\"sq\"}\n");
    st_autofree char *done = summary("created", "created", "created", "created",
                                     "10.0.1.1 on 10.0.1.0/24", "10.0.2.1 on 10.0.2.0/24");
    assert_string_equal(r.out, done);
    nt_free(&r);

    /* YAML, another name (--name), no gateway: no external network needed */
    st_autofree char *yaml = write_temp("vpc:\n  cidr: 10.1.0.0/16\n  subnets:\n"
                                        "  - {name: a, cidr: 10.1.0.0/24, type: private}\n");
    nt_log_reset(&s);
    r = nt_run("apply", "-f", yaml, "--name", "prod", "--dry-run", NULL);
    unlink(yaml);
    assert_int_equal(r.rc, 0);
    assert_string_equal(s.log,
                        "GET " NET "/networks?name=prod \nGET " NET "/routers?name=prod-router \n");
    assert_non_null(
        strstr(r.out, "| router    | prod-router   | create | no gateway             |\n"));
    assert_non_null(strstr(r.out, "\na (private): no traffic to or from outside the VPC "
                                  "(nat_gateway is false).\n"));
    nt_free(&r);
    fake_stop(&s);
    unlink(file);
    nt_json_free_all();
}

static void test_vpc_second_apply(void **state)
{
    (void)state;
    const char *ports =
        nt_json("{'ports': [" GW_PORT ", " IF_PORT("i1", "sp") ", " IF_PORT("i2", "sq") "]}");
    const struct fake_route routes[] = {
        {NET "/networks?name=vpc", "200 OK", "", nt_json("{'networks': [" VPC_NET "]}")},
        {NET "/subnets?network_id=nv", "200 OK", "",
         nt_json("{'subnets': [" SUB_PRIVATE ", " SUB_PUBLIC "]}")},
        {NET "/networks?router%3Aexternal=True", "200 OK", "",
         nt_json("{'networks': [" EXTERNAL "]}")},
        {NET "/routers?name=vpc-router", "200 OK", "",
         nt_json("{'routers': [" ROUTER("true") "]}")},
        {NET "/ports?device_id=rv", "200 OK", "", ports},
    };
    struct fake_server s;
    nt_cloud_start(&s, routes, ST_ARRAY_SIZE(routes), NULL, 0);
    st_autofree char *file = write_temp(seed_vpc);

    /* everything is there: "unchanged", and not one write */
    struct nt_result r = nt_run("apply", "-f", file, NULL);
    assert_int_equal(r.rc, 0);
    assert_string_equal(r.err, "");
    st_autofree char *writes = nt_writes(&s);
    assert_string_equal(writes, "");
    assert_string_equal(s.log, "GET " NET "/networks?name=vpc \n"
                               "GET " NET "/subnets?network_id=nv \n"
                               "GET " NET "/networks?router%3Aexternal=True \n"
                               "GET " NET "/routers?name=vpc-router \n"
                               "GET " NET "/ports?device_id=rv \n");
    st_autofree char *want = summary("unchanged", "unchanged", "unchanged", "unchanged",
                                     "10.0.1.1 on 10.0.1.0/24", "10.0.2.1 on 10.0.2.0/24");
    assert_string_equal(r.out, want);
    nt_free(&r);

    /* the dry run says "exists" */
    nt_log_reset(&s);
    r = nt_run("apply", "-f", file, "--dry-run", NULL);
    assert_int_equal(r.rc, 0);
    assert_non_null(strstr(r.out, "| router    | vpc-router                | exists |"));
    st_autofree char *none = nt_writes(&s);
    assert_string_equal(none, "");
    nt_free(&r);
    fake_stop(&s);
    unlink(file);
    nt_json_free_all();
}

static void test_vpc_repair_and_refusals(void **state)
{
    (void)state;
    /* the router lost its SNAT and the private interface: both come back */
    const struct fake_route routes[] = {
        {NET "/networks?name=vpc", "200 OK", "", nt_json("{'networks': [" VPC_NET "]}")},
        {NET "/subnets?network_id=nv", "200 OK", "",
         nt_json("{'subnets': [" SUB_PUBLIC ", " SUB_PRIVATE "]}")},
        {NET "/networks?router%3Aexternal=True", "200 OK", "",
         nt_json("{'networks': [" EXTERNAL "]}")},
        {NET "/routers?name=vpc-router", "200 OK", "",
         nt_json("{'routers': [" ROUTER("false") "]}")},
        {NET "/ports?device_id=rv", "200 OK", "", nt_json("{'ports': [" IF_PORT("i1", "sp") "]}")},
        {"PUT " NET "/routers/rv", "200 OK", "", nt_json("{'router': " ROUTER("true") "}")},
        {"PUT " NET "/routers/rv/add_router_interface", "200 OK", "", "{}"},
    };
    struct fake_server s;
    nt_cloud_start(&s, routes, ST_ARRAY_SIZE(routes), NULL, 0);
    st_autofree char *file = write_temp(seed_vpc);
    struct nt_result r = nt_run("apply", "-f", file, NULL);
    assert_int_equal(r.rc, 0);
    st_autofree char *writes = nt_writes(&s);
    assert_string_equal(writes, "PUT " NET "/routers/rv {\"router\":{\"external_gateway_info\":"
                                "{\"network_id\":\"ext\",\"enable_snat\":true}}}\n"
                                "PUT " NET "/routers/rv/add_router_interface "
                                "{\"subnet_id\":\"sq\"}\n");
    assert_non_null(strstr(r.out, "| router    | vpc-router                | updated   |"));
    assert_non_null(strstr(r.out, "| interface | vpc-router:public-subnet  | unchanged |"));
    assert_non_null(strstr(r.out, "| interface | vpc-router:private-subnet | created   |"));
    nt_free(&r);

    /* documents refused before any request: the field at fault, exit 1 */
    static const struct {
        const char *doc, *msg;
    } bad[] = {
        {"{\"vpc\": {\"cidr\": \"10.0.0.0/16\", \"subnets\": [{\"name\": \"a\", \"cidr\": "
         "\"10.1.1.0/24\", \"type\": \"private\"}]}}",
         "vpc.subnets[0].cidr: 10.1.1.0/24 is not inside the VPC's 10.0.0.0/16"},
        {"{\"vpc\": {\"subnets\": []}}",
         "vpc.cidr is missing (the VPC's address range, e.g. \"10.0.0.0/16\")"},
        {"{\"vpc\": {\"cidr\": \"10.0.0.0/16\", \"subnets\": [{\"name\": \"a\", \"cidr\": "
         "\"10.0.1.0/24\", \"type\": \"dmz\"}]}}",
         "vpc.subnets[0].type: 'dmz' is not a subnet type (public or private)"},
        {"{\"vpc\": {\"cidr\": \"10.0.0.1/16\"}}",
         "vpc.cidr: 10.0.0.1/16 has host bits set; the network is 10.0.0.0/16"},
        {"{\"vpc\": {\"cidr\": \"10.0.0.0/16\", \"subnets\": [{\"name\": \"a\", \"cidr\": "
         "\"10.0.1.0/24\", \"type\": \"private\"}, {\"name\": \"b\", \"cidr\": \"10.0.1.128/25\", "
         "\"type\": \"private\"}]}}",
         "vpc.subnets[1].cidr: 10.0.1.128/25 overlaps vpc.subnets[0] (a, 10.0.1.0/24)"},
        {"{\"vpc\": {\"cidr\": \"10.0.0.0/16\", \"subnets\": [{\"name\": \"a\", \"cidr\": "
         "\"10.0.1.0/24\", \"type\": \"public\"}]}}",
         "vpc.subnets[0] (a) is public, which needs internet_gateway: true (public servers are "
         "reached through floating IPs on the router's gateway)"},
        {"{\"vpc\": {\"cidr\": \"10.0.0.0/16\", \"nat_gateway\": true}}",
         "vpc.nat_gateway needs internet_gateway: true (NAT sends the private subnets' traffic "
         "out through the router's gateway)"},
        {"{\"vpc\": {\"cidr\": \"10.0.0.0/16\", \"gateway\": true}}",
         "vpc: unknown field 'gateway' (known: name, cidr, subnets, internet_gateway, "
         "nat_gateway, external_network)"},
    };
    for (size_t i = 0; i < ST_ARRAY_SIZE(bad); i++) {
        st_autofree char *f = write_temp(bad[i].doc);
        nt_log_reset(&s);
        r = nt_run("apply", "-f", f, NULL);
        unlink(f);
        assert_int_equal(r.rc, 1);
        assert_string_equal(s.log, "");
        assert_string_equal(r.out, "");
        st_autofree char *want = st_sprintf("stratos apply: error: %s: %s\n", f, bad[i].msg);
        assert_string_equal(r.err, want);
        nt_free(&r);
    }
    fake_stop(&s);

    /* no external network: refused with the admin's commands, nothing made */
    const struct fake_route bare[] = {
        {NET "/networks?name=vpc", "200 OK", "", "{\"networks\": []}"},
        {NET "/networks?router%3Aexternal=True", "200 OK", "", "{\"networks\": []}"},
    };
    nt_cloud_start(&s, bare, ST_ARRAY_SIZE(bare), NULL, 0);
    r = nt_run("apply", "-f", file, "--dry-run", NULL);
    assert_int_equal(r.rc, 1);
    assert_string_equal(r.err,
                        "applying VPC 'vpc': internet_gateway: true needs an external network "
                        "(router:external), and there is none. An admin creates one, e.g.:\n"
                        "  openstack network create --external --provider-network-type flat "
                        "--provider-physical-network external public\n"
                        "  openstack subnet create --network public --subnet-range 203.0.113.0/24 "
                        "--no-dhcp ext-subnet\n");
    assert_string_equal(r.out, "");
    nt_free(&r);
    r = nt_run("apply", "-f", file, NULL);
    assert_int_equal(r.rc, 1);
    st_autofree char *none = nt_writes(&s);
    assert_string_equal(none, "");
    nt_free(&r);
    fake_stop(&s);
    unlink(file);
    nt_json_free_all();
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_vpc_fresh_cloud, nt_clean_env, nt_clean_env),
        cmocka_unit_test_setup_teardown(test_vpc_second_apply, nt_clean_env, nt_clean_env),
        cmocka_unit_test_setup_teardown(test_vpc_repair_and_refusals, nt_clean_env, nt_clean_env),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
