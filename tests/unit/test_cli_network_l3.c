/* The L3 and security commands of the stratos CLI (router, floating ip,
 * security group [rule]) against a fake Neutron: the requests openstack
 * sends for the same command line and what it prints, checked against
 * python3-openstackclient 6.0 talking to a fake Neutron answering the same
 * objects. */
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

/* ---- routers and floating IPs ---- */

#define ROUTER_R1                                                                                  \
    "{'id': 'r1', 'name': 'r1', 'status': 'ACTIVE', 'admin_state_up': true, 'project_id': 'p1', "  \
    "'external_gateway_info': {'network_id': 'ext', 'enable_snat': false, "                        \
    "'external_fixed_ips': [{'subnet_id': 'es', 'ip_address': '203.0.113.5'}]}, "                  \
    "'routes': [{'destination': '10.9.0.0/16', 'nexthop': '10.0.3.5'}], 'distributed': false, "    \
    "'ha': false, 'tags': []}"
#define FIP_F1                                                                                     \
    "{'id': 'f1', 'floating_ip_address': '203.0.113.20', 'floating_network_id': 'ext', "           \
    "'port_id': null, 'fixed_ip_address': null, 'router_id': null, 'status': 'DOWN', "             \
    "'project_id': 'p1', 'port_details': null, 'tags': []}"

static void test_router_and_floating_ip_commands(void **state)
{
    (void)state;
    const struct fake_route routes[] = {
        {NET "/networks?name=public", "200 OK", "", nt_json("{'networks': [" NET_PUBLIC "]}")},
        {"POST " NET "/routers", "201 Created", "", nt_json("{'router': " ROUTER_R1 "}")},
        {NET "/routers", "200 OK", "", nt_json("{'routers': [" ROUTER_R1 "]}")},
        {NET "/routers/r1", "200 OK", "", nt_json("{'router': " ROUTER_R1 "}")},
        {"PUT " NET "/routers/r1", "200 OK", "", nt_json("{'router': " ROUTER_R1 "}")},
        {NET "/subnets/s2", "200 OK", "", nt_json("{'subnet': " SUBNET_S2 "}")},
        {"PUT " NET "/routers/r1/add_router_interface", "200 OK", "", nt_json("{'id': 'r1'}")},
        {NET "/ports?device_id=r1", "200 OK", "",
         nt_json("{'ports': [{'id': 'gw', 'device_owner': 'network:router_gateway', 'fixed_ips': "
                 "[{'subnet_id': 'es', 'ip_address': '203.0.113.5'}]}, {'id': 'if1', "
                 "'device_owner': 'network:router_interface', 'fixed_ips': [{'subnet_id': 's2', "
                 "'ip_address': '10.0.3.1'}]}]}")},
        {NET "/ports?name=p1", "200 OK", "", nt_json("{'ports': [" PORT_P1 "]}")},
        {"POST " NET "/floatingips", "201 Created", "", nt_json("{'floatingip': " FIP_F1 "}")},
        {NET "/floatingips", "200 OK", "", nt_json("{'floatingips': [" FIP_F1 "]}")},
        {"PUT " NET "/floatingips/f1", "200 OK", "", nt_json("{'floatingip': " FIP_F1 "}")},
        {"DELETE " NET "/floatingips/f1", "204 No Content", "", ""},
    };
    struct fake_server s;
    nt_cloud_start(&s, routes, ST_ARRAY_SIZE(routes), NULL, 0);

    /* the gateway's network by name; its info shown as JSON text */
    struct nt_result r =
        nt_run("router", "create", "--external-gateway", "public", "--disable-snat", "r1", NULL);
    assert_int_equal(r.rc, 0);
    assert_non_null(strstr(s.log, "POST " NET "/routers {\"router\":{\"name\":\"r1\","
                                  "\"admin_state_up\":true,\"external_gateway_info\":"
                                  "{\"network_id\":\"ext\",\"enable_snat\":false}}}\n"));
    assert_non_null(strstr(r.out,
                           "| external_gateway_info   | {\"network_id\": \"ext\", "
                           "\"enable_snat\": false, \"external_fixed_ips\": "
                           "[{\"subnet_id\": \"es\", \"ip_address\": \"203.0.113.5\"}]} |\n"));
    assert_non_null(strstr(r.out, "| routes                  | destination='10.9.0.0/16', "
                                  "gateway='10.0.3.5' "));
    assert_non_null(strstr(r.out, "| distributed             | False "));
    nt_free(&r);
    /* SNAT without a gateway is refused before anything is created */
    nt_log_reset(&s);
    r = nt_run("router", "create", "--enable-snat", "r2", NULL);
    assert_int_equal(r.rc, 1);
    assert_string_equal(r.err, "You must specify '--external-gateway' in order to specify SNAT or "
                               "fixed-ip values\n");
    assert_string_equal(s.log, "");
    nt_free(&r);

    /* list: "Distributed" and "HA" once a router says */
    r = nt_run("router", "list", "-f", "csv", NULL);
    assert_int_equal(r.rc, 0);
    assert_string_equal(r.out, "\"ID\",\"Name\",\"Status\",\"State\",\"Project\",\"Distributed\","
                               "\"HA\"\n\"r1\",\"r1\",\"ACTIVE\",True,\"p1\",False,False\n");
    nt_free(&r);

    /* interfaces: the subnet first, then the router, then the action */
    nt_log_reset(&s);
    r = nt_run("router", "add", "subnet", "r1", "s2", NULL);
    assert_int_equal(r.rc, 0);
    assert_string_equal(s.log, "GET " NET "/subnets/s2 \nGET " NET "/routers/r1 \n"
                               "PUT " NET "/routers/r1/add_router_interface "
                               "{\"subnet_id\":\"s2\"}\n");
    nt_free(&r);
    /* show adds the interfaces, leaving the gateway out */
    r = nt_run("router", "show", "r1", "-f", "value", "-c", "interfaces_info", NULL);
    assert_int_equal(r.rc, 0);
    assert_string_equal(r.out,
                        "[{'port_id': 'if1', 'ip_address': '10.0.3.1', 'subnet_id': 's2'}]\n");
    nt_free(&r);

    /* routes are added to the router's; unset removes exactly one, or fails */
    nt_log_reset(&s);
    r = nt_run("router", "set", "--route", "destination=10.8.0.0/16,gateway=10.0.3.6", "r1", NULL);
    assert_int_equal(r.rc, 0);
    assert_non_null(strstr(s.log,
                           "PUT " NET "/routers/r1 {\"router\":{\"routes\":["
                           "{\"destination\":\"10.8.0.0/16\",\"nexthop\":\"10.0.3.6\"},"
                           "{\"destination\":\"10.9.0.0/16\",\"nexthop\":\"10.0.3.5\"}]}}\n"));
    nt_free(&r);
    r = nt_run("router", "unset", "--route", "destination=1.0.0.0/8,gateway=10.0.0.1", "r1", NULL);
    assert_int_equal(r.rc, 1);
    assert_string_equal(r.err, "Router does not contain route {'destination': '1.0.0.0/8', "
                               "'nexthop': '10.0.0.1'}\n");
    nt_free(&r);
    nt_log_reset(&s);
    r = nt_run("router", "unset", "--external-gateway", "r1", NULL);
    assert_int_equal(r.rc, 0);
    assert_string_equal(s.log,
                        "GET " NET "/routers/r1 \n"
                        "PUT " NET "/routers/r1 {\"router\":{\"external_gateway_info\":{}}}\n");
    nt_free(&r);

    /* floating IPs: found by address in the whole list (no name filter) */
    nt_log_reset(&s);
    r = nt_run("floating", "ip", "create", "--port", "p1", "public", "-f", "value", "-c",
               "floating_ip_address", "-c", "port_details", NULL);
    assert_int_equal(r.rc, 0);
    assert_string_equal(r.out, "203.0.113.20\nNone\n");
    assert_non_null(strstr(s.log, "POST " NET "/floatingips {\"floatingip\":{"
                                  "\"floating_network_id\":\"ext\",\"port_id\":\"pt1\"}}\n"));
    nt_free(&r);
    nt_log_reset(&s);
    r = nt_run("floating", "ip", "set", "--port", "p1", "203.0.113.20", NULL);
    assert_int_equal(r.rc, 0);
    assert_string_equal(s.log,
                        "GET " NET "/floatingips/203.0.113.20 \nGET " NET "/floatingips \n"
                        "GET " NET "/ports/p1 \nGET " NET "/ports?name=p1 \n"
                        "PUT " NET "/floatingips/f1 {\"floatingip\":{\"port_id\":\"pt1\"}}\n");
    nt_free(&r);
    nt_log_reset(&s);
    r = nt_run("floating", "ip", "unset", "--port", "203.0.113.20", NULL);
    assert_int_equal(r.rc, 0);
    assert_non_null(
        strstr(s.log, "PUT " NET "/floatingips/f1 {\"floatingip\":{\"port_id\":null}}\n"));
    nt_free(&r);
    r = nt_run("floating", "ip", "list", NULL);
    assert_int_equal(r.rc, 0);
    assert_string_equal(r.out, "+----+---------------------+------------------+------+------------"
                               "------+---------+\n"
                               "| ID | Floating IP Address | Fixed IP Address | Port | Floating "
                               "Network | Project |\n"
                               "+----+---------------------+------------------+------+------------"
                               "------+---------+\n"
                               "| f1 | 203.0.113.20        | None             | None | ext       "
                               "       | p1      |\n"
                               "+----+---------------------+------------------+------+------------"
                               "------+---------+\n");
    nt_free(&r);
    nt_log_reset(&s);
    r = nt_run("floating", "ip", "delete", "203.0.113.20", "203.0.113.99", NULL);
    assert_int_equal(r.rc, 1);
    assert_string_equal(r.err, "Failed to delete floating_ip with name or ID '203.0.113.99': No "
                               "FloatingIP found for 203.0.113.99\n1 of 2 floating_ips failed to "
                               "delete.\n");
    assert_non_null(strstr(s.log, "DELETE " NET "/floatingips/f1 \n"));
    nt_free(&r);
    fake_stop(&s);
    nt_json_free_all();
}

/* ---- security groups and rules ---- */

#define RULE_EGRESS_V6                                                                             \
    "{'id': 'ru2', 'security_group_id': 'sg1', 'direction': 'egress', 'ethertype': 'IPv6', "       \
    "'protocol': null, 'port_range_min': null, 'port_range_max': null, 'remote_ip_prefix': null, " \
    "'remote_group_id': null, 'remote_address_group_id': null, 'project_id': 'p1', "               \
    "'description': ''}"
#define RULE_HTTP                                                                                  \
    "{'id': 'ru1', 'security_group_id': 'sg1', 'direction': 'ingress', 'ethertype': 'IPv4', "      \
    "'protocol': 'tcp', 'port_range_min': 80, 'port_range_max': 80, "                              \
    "'remote_ip_prefix': '0.0.0.0/0', 'remote_group_id': null, 'remote_address_group_id': null, "  \
    "'project_id': 'p1', 'description': ''}"
#define RULE_PING                                                                                  \
    "{'id': 'ru3', 'security_group_id': 'sg1', 'direction': 'ingress', 'ethertype': 'IPv4', "      \
    "'protocol': 'icmp', 'port_range_min': 8, 'port_range_max': null, "                            \
    "'remote_ip_prefix': null, 'remote_group_id': 'sg1', 'remote_address_group_id': null, "        \
    "'project_id': 'p1', 'description': ''}"
#define SG_WEB                                                                                     \
    "{'id': 'sg1', 'name': 'web', 'description': 'web', 'project_id': 'p1', 'tenant_id': 'p1', "   \
    "'stateful': true, 'tags': [], 'security_group_rules': [" RULE_EGRESS_V6 ", " RULE_HTTP "]}"

static void test_security_group_commands(void **state)
{
    (void)state;
    const struct fake_route routes[] = {
        {"POST " NET "/security-groups", "201 Created", "",
         nt_json("{'security_group': " SG_WEB "}")},
        {NET "/security-groups?fields=id&fields=name&fields=description&fields=project_id&"
             "fields=tags",
         "200 OK", "", nt_json("{'security_groups': [" SG_WEB "]}")},
        {NET "/security-groups?name=web", "200 OK", "",
         nt_json("{'security_groups': [" SG_WEB "]}")},
        {NET "/security-groups?name=nope", "200 OK", "", "{\"security_groups\": []}"},
        {"POST " NET "/security-group-rules", "201 Created", "",
         nt_json("{'security_group_rule': " RULE_HTTP "}")},
        {NET "/security-group-rules?security_group_id=sg1", "200 OK", "",
         nt_json("{'security_group_rules': [" RULE_EGRESS_V6 ", " RULE_HTTP ", " RULE_PING "]}")},
    };
    /* the fourth rule created is a duplicate */
    const struct fake_later later[] = {
        {"POST " NET "/security-group-rules", 3, "409 Conflict",
         nt_json("{'NeutronError': {'type': 'SecurityGroupRuleExists', 'message': 'Security "
                 "group rule already exists. Rule id is ru1.', 'detail': ''}}")},
    };
    struct fake_server s;
    nt_cloud_start(&s, routes, ST_ARRAY_SIZE(routes), later, ST_ARRAY_SIZE(later));

    /* the description defaults to the name; rules shown without what the
     * group says already and without empty fields */
    struct nt_result r = nt_run("security", "group", "create", "web", "-c", "rules", NULL);
    assert_int_equal(r.rc, 0);
    assert_string_equal(s.log, "POST " NET "/security-groups {\"security_group\":{\"name\":\"web\","
                               "\"description\":\"web\"}}\n");
    const char *rule1 = "direction='egress', ethertype='IPv6', id='ru2'";
    const char *rule2 = "direction='ingress', ethertype='IPv4', id='ru1', port_range_max='80', "
                        "port_range_min='80', protocol='tcp', remote_ip_prefix='0.0.0.0/0'";
    char dashes[160];
    memset(dashes, '-', strlen(rule2) + 2);
    dashes[strlen(rule2) + 2] = '\0';
    int w = (int)strlen(rule2);
    st_autofree char *want = st_sprintf("+-------+%s+\n| Field | %-*s |\n+-------+%s+\n"
                                        "| rules | %-*s |\n|       | %s |\n+-------+%s+\n",
                                        dashes, w, "Value", dashes, w, rule1, rule2, dashes);
    assert_string_equal(r.out, want);
    nt_free(&r);
    r = nt_run("security", "group", "list", "-f", "value", NULL);
    assert_int_equal(r.rc, 0);
    assert_string_equal(r.out, "sg1 web web p1 []\n");
    nt_free(&r);

    /* a rule: ingress, IPv4, from anywhere unless told; the group by name */
    nt_log_reset(&s);
    r = nt_run("security", "group", "rule", "create", "--protocol", "TCP", "--dst-port", "80",
               "web", NULL);
    assert_int_equal(r.rc, 0);
    assert_non_null(strstr(s.log, "POST " NET "/security-group-rules {\"security_group_rule\":{"
                                  "\"protocol\":\"tcp\",\"direction\":\"ingress\",\"ethertype\":"
                                  "\"IPv4\",\"port_range_min\":80,\"port_range_max\":80,"
                                  "\"remote_ip_prefix\":\"0.0.0.0/0\",\"security_group_id\":"
                                  "\"sg1\"}}\n"));
    assert_non_null(strstr(r.out, "| ether_type              | IPv4 "));
    nt_free(&r);
    /* any protocol is null; ICMP type and code travel as the port range */
    nt_log_reset(&s);
    r = nt_run("security", "group", "rule", "create", "--egress", "--ethertype", "ipv6", "web",
               NULL);
    assert_int_equal(r.rc, 0);
    assert_non_null(strstr(s.log, "{\"security_group_rule\":{\"protocol\":null,\"direction\":"
                                  "\"egress\",\"ethertype\":\"IPv6\",\"remote_ip_prefix\":\"::/0\","
                                  "\"security_group_id\":\"sg1\"}}\n"));
    nt_free(&r);
    nt_log_reset(&s);
    r = nt_run("security", "group", "rule", "create", "--protocol", "icmp", "--icmp-type", "8",
               "--remote-group", "web", "web", NULL);
    assert_int_equal(r.rc, 0);
    assert_non_null(strstr(s.log, "{\"security_group_rule\":{\"protocol\":\"icmp\",\"direction\":"
                                  "\"ingress\",\"ethertype\":\"IPv4\",\"port_range_min\":8,"
                                  "\"remote_group_id\":\"sg1\",\"security_group_id\":\"sg1\"}}\n"));
    nt_free(&r);
    static const struct {
        const char *a, *b, *c, *want;
    } refused[] = {
        {"--icmp-code", "3", "--protocol=icmp",
         "Argument --icmp-type required with argument --icmp-code\n"},
        {"--icmp-type", "3", "--protocol=udp",
         "ICMP IP protocol required with arguments --icmp-type and --icmp-code\n"},
        {"--icmp-type", "3", "--dst-port=22",
         "Argument --dst-port not allowed with arguments --icmp-type and --icmp-code\n"},
    };
    for (size_t i = 0; i < ST_ARRAY_SIZE(refused); i++) {
        nt_log_reset(&s);
        r = nt_run("security", "group", "rule", "create", refused[i].a, refused[i].b, refused[i].c,
                   "web", NULL);
        assert_int_equal(r.rc, 1);
        assert_string_equal(r.err, refused[i].want);
        assert_null(strstr(s.log, "POST"));
        nt_free(&r);
    }
    r = nt_run("security", "group", "rule", "create", "--dst-port", "9:1", "web", NULL);
    assert_int_equal(r.rc, 2);
    assert_non_null(strstr(r.err, "error: argument --dst-port: Invalid range, 9 is not less than "
                                  "1\n"));
    nt_free(&r);

    /* list: "Port Range" from min:max (type=N for ICMP), "IP Range" the
     * ethertype's anywhere when the rule has none; None is "" in csv */
    r = nt_run("security", "group", "rule", "list", "web", "-f", "csv", NULL);
    assert_int_equal(r.rc, 0);
    assert_string_equal(r.out, "\"ID\",\"IP Protocol\",\"Ethertype\",\"IP Range\",\"Port Range\","
                               "\"Direction\",\"Remote Security Group\",\"Remote Address Group\"\n"
                               "\"ru2\",\"\",\"IPv6\",\"::/0\",\"\",\"egress\",\"\",\"\"\n"
                               "\"ru1\",\"tcp\",\"IPv4\",\"0.0.0.0/0\",\"80:80\",\"ingress\","
                               "\"\",\"\"\n"
                               "\"ru3\",\"icmp\",\"IPv4\",\"0.0.0.0/0\",\"type=8\",\"ingress\","
                               "\"sg1\",\"\"\n");
    nt_free(&r);

    /* create's HTTP errors: the SDK exception's short text, as openstack shows it */
    r = nt_run("security", "group", "rule", "create", "--protocol", "tcp", "--dst-port", "80",
               "web", NULL);
    assert_int_equal(r.rc, 1);
    assert_string_equal(r.err, "Error while executing command: ConflictException: 409, Security "
                               "group rule already exists. Rule id is ru1.\n");
    nt_free(&r);

    r = nt_run("security", "group", "delete", "nope", NULL);
    assert_int_equal(r.rc, 1);
    assert_string_equal(r.err, "Failed to delete group with name or ID 'nope': No SecurityGroup "
                               "found for nope\n1 of 1 groups failed to delete.\n");
    nt_free(&r);
    r = nt_run("security", "group", "rule", "create", "nope", NULL);
    assert_int_equal(r.rc, 1);
    assert_string_equal(r.err, "Error while executing command: No SecurityGroup found for nope\n");
    nt_free(&r);
    fake_stop(&s);
    nt_json_free_all();
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_router_and_floating_ip_commands, nt_clean_env,
                                        nt_clean_env),
        cmocka_unit_test_setup_teardown(test_security_group_commands, nt_clean_env, nt_clean_env),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
