/* The network commands of the stratos CLI (network, subnet, port) against a
 * fake Neutron: the requests openstack sends for the same command line
 * (lookups by ID, then by name; bodies), and what it prints (its columns
 * and formatters). The outputs were checked against python3-openstackclient
 * 6.0 talking to a fake Neutron answering the same objects; the L3 and
 * security commands are in test_cli_network_l3.c, apply's VPC in
 * test_cli_vpc.c. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "cli_harness.h"
#include "lib/cleanup.h"

/* ---- networks ---- */

static void test_network_commands(void **state)
{
    (void)state;
    const char *net = nt_json("{'network': " NET_PRIVATE "}");
    const struct fake_route routes[] = {
        {"POST " NET "/networks", "201 Created", "", net},
        {NET "/networks", "200 OK", "", nt_json("{'networks': [" NET_PRIVATE ", " NET_PUBLIC "]}")},
        {NET "/networks?router%3Aexternal=True&shared=False", "200 OK", "",
         nt_json("{'networks': [" NET_PUBLIC "]}")},
        {NET "/networks?name=private", "200 OK", "", nt_json("{'networks': [" NET_PRIVATE "]}")},
        {NET "/networks?name=nope", "200 OK", "", "{\"networks\": []}"},
        {"PUT " NET "/networks/n1", "200 OK", "", net},
        {"DELETE " NET "/networks/n1", "204 No Content", "", ""},
        {NET "/networks?name=busy", "200 OK", "",
         nt_json("{'networks': [{'id': 'n2', 'name': 'busy'}]}")},
        {"DELETE " NET "/networks/n2", "409 Conflict", "",
         nt_json("{'NeutronError': {'type': 'NetworkInUse', 'message': 'Unable to complete "
                 "operation on network n2. There are one or more ports still in use on the "
                 "network.', 'detail': ''}}")},
    };
    struct fake_server s;
    nt_cloud_start(&s, routes, ST_ARRAY_SIZE(routes), NULL, 0);

    struct nt_result r =
        nt_run("network", "create", "--mtu", "1400", "--description", "my net",
               "--provider-network-type", "vxlan", "--provider-segment", "1001", "private", NULL);
    assert_int_equal(r.rc, 0);
    assert_string_equal(r.err, "");
    /* the SDK's body: admin_state_up always (--enable is the default) */
    assert_string_equal(s.log, "POST " NET "/networks {\"network\":{\"name\":\"private\","
                               "\"admin_state_up\":true,\"description\":\"my net\",\"mtu\":1400,"
                               "\"provider:network_type\":\"vxlan\","
                               "\"provider:segmentation_id\":1001}}\n");
    /* every attribute of the SDK's Network, None when the server omits it */
    assert_string_equal(r.out, "+---------------------------+----------------------+\n"
                               "| Field                     | Value                |\n"
                               "+---------------------------+----------------------+\n"
                               "| admin_state_up            | UP                   |\n"
                               "| availability_zone_hints   |                      |\n"
                               "| availability_zones        | nova                 |\n"
                               "| created_at                | 2030-01-01T11:00:00Z |\n"
                               "| description               | my net               |\n"
                               "| dns_domain                | None                 |\n"
                               "| id                        | n1                   |\n"
                               "| ipv4_address_scope        | None                 |\n"
                               "| ipv6_address_scope        | None                 |\n"
                               "| is_default                | None                 |\n"
                               "| is_vlan_transparent       | None                 |\n"
                               "| mtu                       | 1400                 |\n"
                               "| name                      | private              |\n"
                               "| port_security_enabled     | True                 |\n"
                               "| project_id                | p1                   |\n"
                               "| provider:network_type     | vxlan                |\n"
                               "| provider:physical_network | None                 |\n"
                               "| provider:segmentation_id  | 1001                 |\n"
                               "| qos_policy_id             | None                 |\n"
                               "| revision_number           | 1                    |\n"
                               "| router:external           | Internal             |\n"
                               "| segments                  | None                 |\n"
                               "| shared                    | False                |\n"
                               "| status                    | ACTIVE               |\n"
                               "| subnets                   | s1, s2               |\n"
                               "| tags                      |                      |\n"
                               "| updated_at                | None                 |\n"
                               "+---------------------------+----------------------+\n");
    nt_free(&r);

    /* list: ID, Name and the subnets (sorted); filters as the SDK's query */
    nt_log_reset(&s);
    r = nt_run("network", "list", NULL);
    assert_int_equal(r.rc, 0);
    assert_string_equal(r.out, "+-----+---------+---------+\n"
                               "| ID  | Name    | Subnets |\n"
                               "+-----+---------+---------+\n"
                               "| n1  | private | s1, s2  |\n"
                               "| ext | public  |         |\n"
                               "+-----+---------+---------+\n");
    nt_free(&r);
    r = nt_run("network", "list", "--external", "--no-share", "-f", "value", NULL);
    assert_int_equal(r.rc, 0);
    assert_string_equal(r.out, "ext public []\n");
    nt_free(&r);

    /* show by name: GET by ID (404), then the list filtered by name; json
     * shows the server's values under the formatters */
    nt_log_reset(&s);
    r = nt_run("network", "show", "private", "-f", "json", "-c", "subnets", "-c", "router:external",
               "-c", "admin_state_up", NULL);
    assert_int_equal(r.rc, 0);
    assert_string_equal(s.log,
                        "GET " NET "/networks/private \nGET " NET "/networks?name=private \n");
    assert_string_equal(r.out, "{\n  \"admin_state_up\": true,\n  \"router:external\": false,\n"
                               "  \"subnets\": [\n    \"s2\",\n    \"s1\"\n  ]\n}\n");
    nt_free(&r);

    /* set: only what is given; nothing given, nothing sent */
    nt_log_reset(&s);
    r = nt_run("network", "set", "--disable", "--no-share", "--name", "priv", "private", NULL);
    assert_int_equal(r.rc, 0);
    assert_string_equal(r.out, "");
    assert_non_null(strstr(s.log, "PUT " NET "/networks/n1 {\"network\":{\"name\":\"priv\","
                                  "\"admin_state_up\":false,\"shared\":false}}\n"));
    nt_free(&r);
    nt_log_reset(&s);
    r = nt_run("network", "set", "private", NULL);
    assert_int_equal(r.rc, 0);
    assert_null(strstr(s.log, "PUT"));
    nt_free(&r);

    /* delete goes on after a miss, and counts */
    nt_log_reset(&s);
    r = nt_run("network", "delete", "nope", "private", NULL);
    assert_int_equal(r.rc, 1);
    assert_string_equal(r.err, "Failed to delete network with name or ID 'nope': No Network found "
                               "for nope\n1 of 2 networks failed to delete.\n");
    assert_non_null(strstr(s.log, "DELETE " NET "/networks/n1 \n"));
    nt_free(&r);

    /* an HTTP error reads as openstacksdk's exception */
    r = nt_run("network", "delete", "busy", NULL);
    assert_int_equal(r.rc, 1);
    st_autofree char *busy =
        st_sprintf("Failed to delete network with name or ID 'busy': ConflictException: 409: "
                   "Client Error for url: http://127.0.0.1:%u" NET "/networks/n2, Unable to "
                   "complete operation on network n2. There are one or more ports still in use on "
                   "the network.\n1 of 1 networks failed to delete.\n",
                   s.port);
    assert_string_equal(r.err, busy);
    nt_free(&r);

    /* show's errors carry openstack's prefix; a bad --mtu is a usage error */
    r = nt_run("network", "show", "nope", NULL);
    assert_int_equal(r.rc, 1);
    assert_string_equal(r.err, "Error while executing command: No Network found for nope\n");
    nt_free(&r);
    nt_log_reset(&s);
    r = nt_run("network", "create", "--mtu", "lots", "x", NULL);
    assert_int_equal(r.rc, 2);
    assert_non_null(strstr(r.err, "stratos network create: error: argument --mtu: invalid int "
                                  "value: 'lots'\n"));
    assert_string_equal(s.log, "");
    nt_free(&r);
    fake_stop(&s);
    nt_json_free_all();
}

/* ---- subnets and ports ---- */

static void test_subnet_and_port_commands(void **state)
{
    (void)state;
    const struct fake_route routes[] = {
        {NET "/networks?name=private", "200 OK", "", nt_json("{'networks': [" NET_PRIVATE "]}")},
        {"POST " NET "/subnets", "201 Created", "", nt_json("{'subnet': " SUBNET_S2 "}")},
        {NET "/subnets/s2", "200 OK", "", nt_json("{'subnet': " SUBNET_S2 "}")},
        {"PUT " NET "/subnets/s2", "200 OK", "", nt_json("{'subnet': " SUBNET_S2 "}")},
        {NET "/security-groups?name=web", "200 OK", "",
         nt_json("{'security_groups': [{'id': 'sg1', 'name': 'web'}]}")},
        {"POST " NET "/ports", "201 Created", "", nt_json("{'port': " PORT_P1 "}")},
        {NET "/ports", "200 OK", "", nt_json("{'ports': [" PORT_P1 "]}")},
        {NET "/ports?device_owner=compute%3Anova&network_id=n1", "200 OK", "",
         nt_json("{'ports': []}")},
        {NET "/ports/p1", "404 Not Found", "", "{}"},
        {NET "/ports?name=p1", "200 OK", "", nt_json("{'ports': [" PORT_P1 "]}")},
        {"PUT " NET "/ports/pt1", "200 OK", "", nt_json("{'port': " PORT_P1 "}")},
    };
    struct fake_server s;
    nt_cloud_start(&s, routes, ST_ARRAY_SIZE(routes), NULL, 0);

    /* the network by name, the API's names (nexthop, gateway_ip null) */
    struct nt_result r =
        nt_run("subnet", "create", "--network", "private", "--subnet-range", "10.0.3.0/24",
               "--gateway", "none", "--no-dhcp", "--dns-nameserver", "8.8.8.8", "--allocation-pool",
               "start=10.0.3.10,end=10.0.3.20", "--host-route",
               "destination=10.10.0.0/16,gateway=10.0.3.1", "s2", NULL);
    assert_int_equal(r.rc, 0);
    assert_string_equal(s.log,
                        "GET " NET "/networks/private \nGET " NET "/networks?name=private \n"
                        "POST " NET "/subnets {\"subnet\":{\"name\":\"s2\",\"network_id\":\"n1\","
                        "\"cidr\":\"10.0.3.0/24\",\"ip_version\":4,\"gateway_ip\":null,"
                        "\"allocation_pools\":[{\"start\":\"10.0.3.10\",\"end\":\"10.0.3.20\"}],"
                        "\"enable_dhcp\":false,\"dns_nameservers\":[\"8.8.8.8\"],\"host_routes\":"
                        "[{\"destination\":\"10.10.0.0/16\",\"nexthop\":\"10.0.3.1\"}]}}\n");
    /* pools as start-end, routes with --host-route's "gateway" */
    assert_string_equal(
        r.out, "+----------------------+------------------------------------------------+\n"
               "| Field                | Value                                          |\n"
               "+----------------------+------------------------------------------------+\n"
               "| allocation_pools     | 10.0.3.10-10.0.3.20                            |\n"
               "| cidr                 | 10.0.3.0/24                                    |\n"
               "| created_at           | None                                           |\n"
               "| description          | None                                           |\n"
               "| dns_nameservers      | 8.8.8.8                                        |\n"
               "| dns_publish_fixed_ip | None                                           |\n"
               "| enable_dhcp          | False                                          |\n"
               "| gateway_ip           | None                                           |\n"
               "| host_routes          | destination='10.10.0.0/16', gateway='10.0.3.1' |\n"
               "| id                   | s2                                             |\n"
               "| ip_version           | 4                                              |\n"
               "| ipv6_address_mode    | None                                           |\n"
               "| ipv6_ra_mode         | None                                           |\n"
               "| name                 | s2                                             |\n"
               "| network_id           | n1                                             |\n"
               "| project_id           | None                                           |\n"
               "| revision_number      | None                                           |\n"
               "| segment_id           | None                                           |\n"
               "| service_types        |                                                |\n"
               "| subnetpool_id        | None                                           |\n"
               "| tags                 |                                                |\n"
               "| updated_at           | None                                           |\n"
               "+----------------------+------------------------------------------------+\n");
    nt_free(&r);

    /* -f json: the server's values */
    r = nt_run("subnet", "show", "s2", "-f", "json", "-c", "host_routes", "-c", "allocation_pools",
               NULL);
    assert_int_equal(r.rc, 0);
    assert_string_equal(r.out,
                        "{\n  \"allocation_pools\": [\n    {\n      \"start\": \"10.0.3.10\",\n"
                        "      \"end\": \"10.0.3.20\"\n    }\n  ],\n  \"host_routes\": [\n"
                        "    {\n      \"destination\": \"10.10.0.0/16\",\n      \"nexthop\": "
                        "\"10.0.3.1\"\n    }\n  ]\n}\n");
    nt_free(&r);

    /* set adds to the subnet's lists, --no-... clears them */
    nt_log_reset(&s);
    r = nt_run("subnet", "set", "--dns-nameserver", "9.9.9.9", "--no-host-route", "s2", NULL);
    assert_int_equal(r.rc, 0);
    assert_string_equal(s.log, "GET " NET "/subnets/s2 \n"
                               "PUT " NET "/subnets/s2 {\"subnet\":{\"dns_nameservers\":"
                               "[\"9.9.9.9\",\"8.8.8.8\"],\"host_routes\":[]}}\n");
    nt_free(&r);
    r = nt_run("subnet", "set", "--gateway", "auto", "s2", NULL);
    assert_int_equal(r.rc, 1);
    assert_string_equal(r.err, "Auto option is not available for Subnet Set. Valid options are "
                               "<ip-address> or none\n");
    nt_free(&r);
    /* osc-lib's key=value checks: the message alone, exit 1, nothing sent */
    nt_log_reset(&s);
    r = nt_run("subnet", "create", "--network", "private", "--allocation-pool", "start=10.0.3.5",
               "bad", NULL);
    assert_int_equal(r.rc, 1);
    assert_string_equal(r.err, "Missing required keys end.\nRequired keys are: start, end\n");
    assert_null(strstr(s.log, "POST"));
    nt_free(&r);

    /* a port: the subnet of --fixed-ip and the groups by name, as IDs */
    nt_log_reset(&s);
    r = nt_run("port", "create", "--network", "private", "--fixed-ip",
               "subnet=s2,ip-address=10.0.3.50", "--security-group", "web", "p1", NULL);
    assert_int_equal(r.rc, 0);
    assert_non_null(strstr(s.log, "POST " NET "/ports {\"port\":{\"admin_state_up\":true,"
                                  "\"name\":\"p1\",\"network_id\":\"n1\",\"fixed_ips\":"
                                  "[{\"subnet_id\":\"s2\",\"ip_address\":\"10.0.3.50\"}],"
                                  "\"security_groups\":[\"sg1\"]}}\n"));
    assert_non_null(strstr(r.out, "| fixed_ips               | ip_address='10.0.3.50', "
                                  "subnet_id='s2' |\n"));
    assert_non_null(strstr(r.out, "| security_group_ids      | sg1 "));
    assert_non_null(strstr(r.out, "| binding_profile         |  "));
    nt_free(&r);

    r = nt_run("port", "list", NULL);
    assert_int_equal(r.rc, 0);
    assert_string_equal(
        r.out, "+-----+------+-------------------+----------------------------------------+"
               "--------+\n"
               "| ID  | Name | MAC Address       | Fixed IP Addresses                     |"
               " Status |\n"
               "+-----+------+-------------------+----------------------------------------+"
               "--------+\n"
               "| pt1 | p1   | fa:16:3e:00:00:01 | ip_address='10.0.3.50', subnet_id='s2' |"
               " DOWN   |\n"
               "+-----+------+-------------------+----------------------------------------+"
               "--------+\n");
    nt_free(&r);
    /* filters in openstack's order; an empty list prints an empty line, as cliff does */
    nt_log_reset(&s);
    r = nt_run("port", "list", "--network", "private", "--device-owner", "compute:nova", NULL);
    assert_int_equal(r.rc, 0);
    assert_string_equal(r.out, "\n");
    assert_non_null(
        strstr(s.log, "GET " NET "/ports?device_owner=compute%3Anova&network_id=n1 \n"));
    nt_free(&r);

    /* set: new fixed IPs after the port's; --no-security-group empties */
    nt_log_reset(&s);
    r = nt_run("port", "set", "--fixed-ip", "ip-address=10.0.3.60", "--no-security-group", "p1",
               NULL);
    assert_int_equal(r.rc, 0);
    assert_non_null(strstr(s.log, "PUT " NET "/ports/pt1 {\"port\":{\"fixed_ips\":[{\"subnet_id\":"
                                  "\"s2\",\"ip_address\":\"10.0.3.50\"},{\"ip_address\":"
                                  "\"10.0.3.60\"}],\"security_groups\":[]}}\n"));
    nt_free(&r);
    fake_stop(&s);
    nt_json_free_all();
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_network_commands, nt_clean_env, nt_clean_env),
        cmocka_unit_test_setup_teardown(test_subnet_and_port_commands, nt_clean_env, nt_clean_env),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
