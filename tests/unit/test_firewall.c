/* Unit tests of src/net/firewall*.c: the security-group and router NAT
 * rulesets against golden files (tests/unit/golden/firewall-*.nft,
 * rewritten with ST_UPDATE_GOLDEN=1), their independence from the order of
 * the view, their refusal of text that could break out of nft syntax; and,
 * as root, real packets: a bridge in a "host" namespace with two
 * "containers" c1 and c2 on it, where the rules decide which TCP
 * connections and pings get through, a re-apply closes what a removed rule
 * opened, a spoofed source is dropped, and a re-apply with fewer ports
 * leaves nothing stale. Ends with the time to render and apply 1,000 rules
 * on 100 ports. Without root, the packet tests are skipped and the binary
 * exits 77 once the others pass. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <linux/sockios.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
#include <cmocka.h>

#include "lib/cleanup.h"
#include "lib/files.h"
#include "lib/json.h"
#include "net/firewall.h"
#include "net/net.h"

/* ---------------------------------------------------------------- helpers */

static char *source_dir(void)
{
    const char *env = getenv("ST_SOURCE_DIR");
    if (env && env[0])
        return st_strdup(env);
    char *s = st_strdup(__FILE__);
    char *p = strstr(s, "/tests/unit/");
    if (p)
        *p = '\0';
    return s;
}

static json_t *parse(const char *text)
{
    json_error_t e;
    json_t *v = json_loads(text, 0, &e);
    if (!v)
        fail_msg("fixture JSON: %s at line %d", e.text, e.line);
    return v;
}

/* Compares text with tests/unit/golden/<name>, or rewrites the file when
 * ST_UPDATE_GOLDEN=1. */
static void check_golden(const char *name, const char *text)
{
    st_autofree char *src = source_dir();
    st_autofree char *path = st_sprintf("%s/tests/unit/golden/%s", src, name);
    const char *update = getenv("ST_UPDATE_GOLDEN");
    if (update && strcmp(update, "1") == 0) {
        st_autofree char *dir = st_sprintf("%s/tests/unit/golden", src);
        assert_int_equal(st_mkdir_p(dir, 0755, NULL), 0);
        assert_int_equal(st_write_file_atomic(path, text, strlen(text), 0644, NULL), 0);
        printf("rewrote %s\n", path);
    }
    char *have = NULL;
    size_t len = 0;
    if (st_read_file(path, 1 << 20, &have, &len, NULL) < 0 || strcmp(have, text) != 0) {
        printf("%s differs from the rendered text (rerun with ST_UPDATE_GOLDEN=1 if the change "
               "is intended); rendered:\n%s\n",
               path, text);
        free(have);
        fail();
    }
    free(have);
}

/* The fixture: 4 ports with port security on two networks (two of them in
 * the same group, so they share chains), one without;
 * two groups, web and db, naming each other as remote groups; ICMP type
 * and type+code, overlapping port ranges, a prefix written with host bits,
 * a protocol number, an IPv6 rule and a rule with an unknown protocol
 * (both skipped). Lists are deliberately out of id order. */
static const char view_text[] =
    "{\"revision\": 42, \"vtep\": \"192.0.2.11\", \"mtu_overhead\": 50,"
    " \"networks\": ["
    "  {\"id\": \"nnnnnnnn-0000-4000-8000-000000000002\", \"vni\": 1002, \"type\": \"vxlan\","
    "   \"bridge\": \"stbr-1002\", \"vxlan\": \"stvx-1002\", \"mtu\": 1450},"
    "  {\"id\": \"nnnnnnnn-0000-4000-8000-000000000001\", \"vni\": 1001, \"type\": \"vxlan\","
    "   \"bridge\": \"stbr-1001\", \"vxlan\": \"stvx-1001\", \"mtu\": 1450},"
    "  {\"id\": \"nnnnnnnn-0000-4000-8000-00000000000e\", \"vni\": null, \"type\": \"flat\","
    "   \"bridge\": \"br-ex\", \"vxlan\": null, \"mtu\": 1500, \"external\": true}],"
    " \"ports\": ["
    "  {\"id\": \"33333333-0000-4000-8000-000000000003\","
    "   \"network_id\": \"nnnnnnnn-0000-4000-8000-000000000002\","
    "   \"mac\": \"FA:16:3E:00:00:03\", \"ip\": \"10.0.2.5\", \"prefixlen\": 24,"
    "   \"port_security\": true, \"security_groups\": [\"dddddddd-0000-4000-8000-00000000000b\","
    "   \"aaaaaaaa-0000-4000-8000-00000000000a\"]},"
    "  {\"id\": \"11111111-0000-4000-8000-000000000001\","
    "   \"network_id\": \"nnnnnnnn-0000-4000-8000-000000000001\","
    "   \"mac\": \"fa:16:3e:00:00:01\", \"ip\": \"10.0.1.5\", \"prefixlen\": 24,"
    "   \"port_security\": true, \"security_groups\": [\"aaaaaaaa-0000-4000-8000-00000000000a\"]},"
    "  {\"id\": \"44444444-0000-4000-8000-000000000004\","
    "   \"network_id\": \"nnnnnnnn-0000-4000-8000-000000000001\","
    "   \"mac\": \"fa:16:3e:00:00:04\", \"ip\": \"10.0.1.7\", \"prefixlen\": 24,"
    "   \"port_security\": false, \"security_groups\": []},"
    "  {\"id\": \"55555555-0000-4000-8000-000000000005\","
    "   \"network_id\": \"nnnnnnnn-0000-4000-8000-000000000002\","
    "   \"mac\": \"fa:16:3e:00:00:05\", \"ip\": \"10.0.2.6\", \"prefixlen\": 24,"
    "   \"port_security\": true, \"security_groups\": [\"aaaaaaaa-0000-4000-8000-00000000000a\"]},"
    "  {\"id\": \"22222222-0000-4000-8000-000000000002\","
    "   \"network_id\": \"nnnnnnnn-0000-4000-8000-000000000001\","
    "   \"mac\": \"fa:16:3e:00:00:02\", \"ip\": \"10.0.1.6\", \"prefixlen\": 24,"
    "   \"port_security\": true, \"security_groups\": [\"dddddddd-0000-4000-8000-00000000000b\"]}],"
    " \"security_groups\": {"
    "  \"dddddddd-0000-4000-8000-00000000000b\": {\"members\": [\"10.0.9.9\", \"10.0.1.6\","
    "   \"10.0.2.5\"], \"rules\": ["
    "   {\"id\": \"r-db-2\", \"direction\": \"ingress\", \"ethertype\": \"IPv4\","
    "    \"protocol\": null, \"remote_group_id\": \"dddddddd-0000-4000-8000-00000000000b\"},"
    "   {\"id\": \"r-db-1\", \"direction\": \"ingress\", \"ethertype\": \"IPv4\","
    "    \"protocol\": \"tcp\", \"port_range_min\": 5432, \"port_range_max\": 5432,"
    "    \"remote_group_id\": \"aaaaaaaa-0000-4000-8000-00000000000a\"},"
    "   {\"id\": \"r-db-3\", \"direction\": \"egress\", \"ethertype\": \"IPv4\","
    "    \"protocol\": \"udp\", \"port_range_min\": 53, \"port_range_max\": 53},"
    "   {\"id\": \"r-db-4\", \"direction\": \"egress\", \"ethertype\": \"IPv4\","
    "    \"protocol\": \"tcp\", \"port_range_min\": 53, \"port_range_max\": 53,"
    "    \"remote_ip_prefix\": \"0.0.0.0/0\"},"
    "   {\"id\": \"r-db-5\", \"direction\": \"egress\", \"ethertype\": \"IPv4\","
    "    \"protocol\": \"icmp\"}]},"
    "  \"aaaaaaaa-0000-4000-8000-00000000000a\": {\"members\": [\"10.0.2.5\", \"10.0.1.5\", "
    "\"10.0.2.6\"],"
    "   \"rules\": ["
    "   {\"id\": \"r-web-9\", \"direction\": \"ingress\", \"ethertype\": \"IPv4\","
    "    \"protocol\": \"tcp\", \"port_range_min\": 1500, \"port_range_max\": 2500},"
    "   {\"id\": \"r-web-1\", \"direction\": \"ingress\", \"ethertype\": \"IPv4\","
    "    \"protocol\": \"tcp\", \"port_range_min\": 80, \"port_range_max\": 80},"
    "   {\"id\": \"r-web-2\", \"direction\": \"ingress\", \"ethertype\": \"IPv4\","
    "    \"protocol\": \"tcp\", \"port_range_min\": 443, \"port_range_max\": 443},"
    "   {\"id\": \"r-web-3\", \"direction\": \"ingress\", \"ethertype\": \"IPv4\","
    "    \"protocol\": \"tcp\", \"port_range_min\": 1000, \"port_range_max\": 2000},"
    "   {\"id\": \"r-web-4\", \"direction\": \"ingress\", \"ethertype\": \"IPv4\","
    "    \"protocol\": \"icmp\", \"port_range_min\": 8, \"port_range_max\": null},"
    "   {\"id\": \"r-web-5\", \"direction\": \"ingress\", \"ethertype\": \"IPv4\","
    "    \"protocol\": \"icmp\", \"port_range_min\": 3, \"port_range_max\": 4},"
    "   {\"id\": \"r-web-6\", \"direction\": \"ingress\", \"ethertype\": \"IPv4\","
    "    \"protocol\": \"tcp\", \"port_range_min\": 22, \"port_range_max\": 22,"
    "    \"remote_ip_prefix\": \"192.0.2.77/24\"},"
    "   {\"id\": \"r-web-7\", \"direction\": \"ingress\", \"ethertype\": \"IPv4\","
    "    \"protocol\": \"47\", \"remote_ip_prefix\": \"198.51.100.0/24\"},"
    "   {\"id\": \"r-web-8\", \"direction\": \"ingress\", \"ethertype\": \"IPv4\","
    "    \"protocol\": \"udp\", \"port_range_min\": 53, \"port_range_max\": 53,"
    "    \"remote_group_id\": \"dddddddd-0000-4000-8000-00000000000b\"},"
    "   {\"id\": \"r-web-a\", \"direction\": \"egress\", \"ethertype\": \"IPv4\","
    "    \"protocol\": null, \"remote_ip_prefix\": null},"
    "   {\"id\": \"r-web-b\", \"direction\": \"egress\", \"ethertype\": \"IPv6\","
    "    \"protocol\": null},"
    "   {\"id\": \"r-web-c\", \"direction\": \"ingress\", \"ethertype\": \"IPv4\","
    "    \"protocol\": \"bogus\"}]}},"
    " \"routers\": [], \"external\": null}";

static const char router_text[] =
    "{\"id\": \"rrrrrrrr-0000-4000-8000-000000000001\", \"snat\": true,"
    " \"gateway\": {\"ip\": \"203.0.113.2\", \"prefixlen\": 24, \"gateway_ip\": \"203.0.113.1\","
    "  \"mac\": \"fa:16:3e:00:01:00\", \"network_id\": \"nnnnnnnn-0000-4000-8000-00000000000e\"},"
    " \"interfaces\": ["
    "  {\"port_id\": \"p2\", \"network_id\": \"n2\", \"vni\": 1002, \"mac\": \"fa:16:3e:00:01:02\","
    "   \"ip\": \"10.0.2.1\", \"prefixlen\": 24, \"cidr\": \"10.0.2.0/24\", \"mtu\": 1450},"
    "  {\"port_id\": \"p1\", \"network_id\": \"n1\", \"vni\": 1001, \"mac\": \"fa:16:3e:00:01:01\","
    "   \"ip\": \"10.0.1.1\", \"prefixlen\": 24, \"cidr\": \"10.0.1.0/24\", \"mtu\": 1450}],"
    " \"floating_ips\": [{\"ip\": \"203.0.113.20\", \"fixed_ip\": \"10.0.1.5\"},"
    "  {\"ip\": \"203.0.113.10\", \"fixed_ip\": \"10.0.2.5\"},"
    "  {\"ip\": \"203.0.113.30\", \"fixed_ip\": null}]}";

/* ------------------------------------------------------------ grants */

static json_t *revoked_ips(json_t *before_view, json_t *after_view)
{
    st_autoptr(json_t) before = NULL;
    st_autoptr(json_t) after = NULL;
    st_autoptr(st_err) err = NULL;
    assert_int_equal(st_fw_port_grants(before_view, &before, &err), 0);
    assert_int_equal(st_fw_port_grants(after_view, &after, &err), 0);
    st_autoptr(json_t) revoked = st_fw_revoked(before, after);
    json_t *ips = json_array();
    size_t i;
    json_t *t;
    json_array_foreach(revoked, i, t)
    {
        json_array_append_new(ips,
                              json_sprintf("%s@%d", json_string_value(json_object_get(t, "ip")),
                                           (int)json_integer_value(json_object_get(t, "zone"))));
    }
    return ips;
}

static void assert_revoked(json_t *before, json_t *after, const char *expect)
{
    st_autoptr(json_t) ips = revoked_ips(before, after);
    st_autoptr(json_t) want = parse(expect);
    st_autofree char *got = json_dumps(ips, JSON_COMPACT);
    size_t i;
    json_t *w;
    assert_int_equal(json_array_size(ips), json_array_size(want));
    json_array_foreach(want, i, w)
    {
        bool found = false;
        size_t j;
        json_t *g;
        json_array_foreach(ips, j, g) found = found || json_equal(g, w);
        if (!found)
            fail_msg("%s not revoked; revoked: %s", json_string_value(w), got);
    }
}

static json_t *group_of(json_t *view, const char *id)
{
    return json_object_get(json_object_get(view, "security_groups"), id);
}

#define GROUP_A "aaaaaaaa-0000-4000-8000-00000000000a"
#define GROUP_D "dddddddd-0000-4000-8000-00000000000b"

/* What a changed view takes away from which port: a removed rule from the
 * ports of its group; a remote group's lost member from the ports whose
 * rules name that group; port security turned on; a removed port. Added
 * rules take nothing away. */
static void test_grants_revoked(void **state)
{
    (void)state;
    st_autoptr(json_t) view = parse(view_text);
    assert_revoked(view, view, "[]");

    st_autoptr(json_t) no_http = json_deep_copy(view);
    json_t *rules = json_object_get(group_of(no_http, GROUP_A), "rules");
    assert_int_equal(json_array_remove(rules, 1), 0); /* r-web-1: tcp/80 */
    assert_revoked(view, no_http, "[\"10.0.2.5@1002\", \"10.0.1.5@1001\", \"10.0.2.6@1002\"]");
    assert_revoked(no_http, view, "[]");

    st_autoptr(json_t) left = json_deep_copy(view);
    json_t *members = json_object_get(group_of(left, GROUP_A), "members");
    assert_int_equal(json_array_remove(members, 1), 0); /* 10.0.1.5 left group a */
    assert_revoked(view, left, "[\"10.0.2.5@1002\", \"10.0.1.6@1001\"]");

    st_autoptr(json_t) secured = json_deep_copy(view);
    json_object_set_new(json_array_get(json_object_get(secured, "ports"), 2), "port_security",
                        json_true());
    assert_revoked(view, secured, "[\"10.0.1.7@1001\"]");
    assert_revoked(secured, view, "[]");

    st_autoptr(json_t) gone = json_deep_copy(view);
    assert_int_equal(json_array_remove(json_object_get(gone, "ports"), 4), 0);
    assert_revoked(view, gone, "[\"10.0.1.6@1001\"]");
}

/* ------------------------------------------------------------ renderings */

static void test_port_ifname(void **state)
{
    (void)state;
    char buf[16];
    st_fw_port_ifname("3F2A1B4C-9d8e-4f00-8000-000000000001", buf);
    assert_string_equal(buf, "stp-3f2a1b4c9d");
    st_fw_port_ifname("ab", buf);
    assert_string_equal(buf, "stp-ab");
}

static void test_render_ports_golden(void **state)
{
    (void)state;
    st_autoptr(json_t) view = parse(view_text);
    st_autofree char *text = NULL;
    st_autoptr(st_err) err = NULL;
    assert_int_equal(st_fw_render_ports(view, &text, &err), 0);
    check_golden("firewall-ports.nft", text);

    /* what the golden file must say, whatever it holds */
    assert_non_null(strstr(text, "tcp dport { 80, 443, 1000-2500 } accept"));   /* merged */
    assert_non_null(strstr(text, "ip saddr 192.0.2.0/24 tcp dport 22 accept")); /* normalised */
    assert_non_null(strstr(text, "icmp type 8 accept"));
    assert_non_null(strstr(text, "icmp type 3 icmp code 4 accept"));
    assert_non_null(strstr(text, "ip saddr 198.51.100.0/24 meta l4proto 47 accept"));
    assert_non_null(
        strstr(text, "ip saddr @sg-aaaaaaaa-0000-4000-8000-00000000000a-members tcp dport 5432"));
    /* ports 1 and 5 are both in web alone: one pair of chains */
    assert_non_null(strstr(text, "\"stbr-1001\" . 10.0.1.5 : jump ports-1-egress"));
    assert_non_null(strstr(text, "\"stbr-1002\" . 10.0.2.6 : jump ports-1-egress"));
    assert_non_null(strstr(text, "\"stbr-1002\" . 10.0.2.5 : jump ports-2-ingress"));
    assert_non_null(strstr(text, "\tchain ports-2-ingress {\n"
                                 "\t\tct state invalid drop\n"
                                 "\t\tudp sport 67 udp dport 68 accept\n"
                                 "\t\tjump sg-aaaaaaaa-0000-4000-8000-00000000000a-ingress\n"
                                 "\t\tjump sg-dddddddd-0000-4000-8000-00000000000b-ingress\n"
                                 "\t\tcounter drop\n"));
    assert_null(strstr(text, "ports-4-"));
    /* anti-spoofing: the port's veth, MAC (lower-cased) and address */
    assert_non_null(strstr(text, "\"stp-3333333300\" . fa:16:3e:00:00:03,"));
    assert_non_null(strstr(text, "\"stp-3333333300\" . 10.0.2.5,"));
    assert_non_null(strstr(text, "\"stp-3333333300\" . fa:16:3e:00:00:03 . 10.0.2.5,"));
    assert_non_null(strstr(text, "ct zone set iifname map { \"stbr-1001\" : 1001, "
                                 "\"stbr-1002\" : 1002 }"));
    /* no port security, IPv6 and unknown protocols: nothing rendered */
    assert_null(strstr(text, "44444444"));
    assert_null(strstr(text, "10.0.1.7"));
    assert_null(strstr(text, "bogus"));
    assert_null(strstr(text, "ip6 saddr"));
    assert_null(strstr(text, "ip6 daddr"));
    /* both tables are replaced in one go */
    assert_non_null(strstr(text, "table inet stratos {}\ndelete table inet stratos\n"));
    assert_non_null(strstr(text, "table bridge stratos {}\ndelete table bridge stratos\n"));
}

/* Shuffling every list of the view changes nothing in the text. */
static void test_render_ports_deterministic(void **state)
{
    (void)state;
    st_autoptr(json_t) view = parse(view_text);
    st_autofree char *a = NULL;
    assert_int_equal(st_fw_render_ports(view, &a, NULL), 0);

    st_autoptr(json_t) rev = json_deep_copy(view);
    const char *lists[] = {"networks", "ports"};
    for (size_t k = 0; k < ST_ARRAY_SIZE(lists); k++) {
        json_t *arr = json_object_get(rev, lists[k]);
        json_t *r = json_array();
        for (size_t i = json_array_size(arr); i-- > 0;)
            json_array_append(r, json_array_get(arr, i));
        json_object_set_new(rev, lists[k], r);
    }
    const char *key;
    json_t *sg;
    json_object_foreach(json_object_get(rev, "security_groups"), key, sg)
    {
        json_t *rules = json_object_get(sg, "rules");
        json_t *r = json_array();
        for (size_t i = json_array_size(rules); i-- > 0;)
            json_array_append(r, json_array_get(rules, i));
        json_object_set_new(sg, "rules", r);
    }
    st_autofree char *b = NULL;
    assert_int_equal(st_fw_render_ports(rev, &b, NULL), 0);
    assert_string_equal(a, b);
}

static void test_render_router_golden(void **state)
{
    (void)state;
    st_autoptr(json_t) router = parse(router_text);
    st_autofree char *text = NULL;
    st_autoptr(st_err) err = NULL;
    assert_int_equal(st_fw_render_router(router, "qg-rrrrrrrr-00", &text, &err), 0);
    check_golden("firewall-router.nft", text);
    assert_non_null(strstr(text, "dnat to ip daddr map { 203.0.113.10 : 10.0.2.5, "
                                 "203.0.113.20 : 10.0.1.5 }"));
    assert_non_null(strstr(text, "oifname \"qg-rrrrrrrr-00\" snat to ip saddr map { "
                                 "10.0.2.5 : 203.0.113.10, 10.0.1.5 : 203.0.113.20 }"));
    assert_non_null(strstr(text, "oifname \"qg-rrrrrrrr-00\" ip saddr { 10.0.1.0/24, "
                                 "10.0.2.0/24 } snat to 203.0.113.2"));
    assert_null(strstr(text, "203.0.113.30")); /* not associated */

    /* SNAT off: the floating IPs still work, the rest does not leave */
    json_object_set_new(router, "snat", json_false());
    st_autofree char *nosnat = NULL;
    assert_int_equal(st_fw_render_router(router, "qg-rrrrrrrr-00", &nosnat, NULL), 0);
    assert_null(strstr(nosnat, "snat to 203.0.113.2"));
    assert_non_null(strstr(nosnat, "snat to ip saddr map"));

    /* no gateway: no NAT at all, and no interface name needed */
    json_object_set_new(router, "gateway", json_null());
    st_autofree char *nogw = NULL;
    assert_int_equal(st_fw_render_router(router, NULL, &nogw, NULL), 0);
    assert_null(strstr(nogw, "snat"));
    assert_null(strstr(nogw, "dnat"));
    assert_non_null(strstr(nogw, "delete table ip stratos-nat\n"));
}

/* Values that would break out of nft syntax are refused, never printed. */
static void test_render_refuses_injection(void **state)
{
    (void)state;
    struct {
        const char *path, *value;
    } bad[] = {
        {"networks.0.bridge", "x\" } ; flush ruleset ; #"},
        {"ports.1.mac", "fa:16:3e:00:00:0\""},
        {"ports.1.ip", "10.0.1.5 accept"},
        {"ports.1.id", "11111111 } chain x {"},
        {"ports.1.network_id", "nnnnnnnn-missing"},
    };
    for (size_t i = 0; i < ST_ARRAY_SIZE(bad); i++) {
        st_autoptr(json_t) view = parse(view_text);
        char list[16];
        int idx;
        char field[32];
        assert_int_equal(sscanf(bad[i].path, "%15[^.].%d.%31s", list, &idx, field), 3);
        json_object_set_new(json_array_get(json_object_get(view, list), (size_t)idx), field,
                            json_string(bad[i].value));
        char *text = NULL;
        st_autoptr(st_err) err = NULL;
        assert_int_equal(st_fw_render_ports(view, &text, &err), -EINVAL);
        assert_null(text);
        assert_non_null(strstr(err->msg, "rendering security groups"));
    }

    /* a rule's bad prefix or remote group skips that rule only */
    st_autoptr(json_t) view = parse(view_text);
    json_t *rules = json_object_get(json_object_get(json_object_get(view, "security_groups"),
                                                    "aaaaaaaa-0000-4000-8000-00000000000a"),
                                    "rules");
    json_array_append_new(rules, parse("{\"id\": \"x1\", \"direction\": \"ingress\","
                                       " \"protocol\": \"tcp\", \"port_range_min\": 7,"
                                       " \"remote_ip_prefix\": \"1.2.3.0/24 accept\"}"));
    json_array_append_new(rules, parse("{\"id\": \"x2\", \"direction\": \"ingress\","
                                       " \"protocol\": \"tcp\", \"port_range_min\": 7,"
                                       " \"remote_group_id\": \"a } accept\"}"));
    json_array_append_new(rules, parse("{\"id\": \"x3\", \"direction\": \"ingress\","
                                       " \"protocol\": \"tcp\", \"port_range_min\": 9,"
                                       " \"port_range_max\": 8}"));
    st_autofree char *text = NULL;
    assert_int_equal(st_fw_render_ports(view, &text, NULL), 0);
    assert_null(strstr(text, "1.2.3.0"));
    assert_null(strstr(text, "a }"));
    assert_null(strstr(text, " 7 "));
    assert_null(strstr(text, "9-8"));

    st_autoptr(json_t) router = parse(router_text);
    char *r = NULL;
    assert_int_equal(st_fw_render_router(router, "qg\" accept", &r, NULL), -EINVAL);
    assert_int_equal(st_fw_render_router(router, NULL, &r, NULL), -EINVAL);
    json_object_set_new(json_array_get(json_object_get(router, "floating_ips"), 0), "fixed_ip",
                        json_string("10.0.0.1 }"));
    assert_int_equal(st_fw_render_router(router, "qg-x", &r, NULL), -EINVAL);
    assert_null(r);

    st_autoptr(st_err) err = NULL;
    assert_int_equal(st_fw_delete_table(NULL, "inet; flush ruleset", "x", &err), -EINVAL);
    assert_int_equal(st_fw_delete_table(NULL, "inet", "x y", NULL), -EINVAL);
}

/* ------------------------------------------------------ with real packets */

/* Namespaces made with `ip netns add` under unique names, removed by the
 * group teardown (and at exit if the run is cut short). */
static struct {
    bool ready;
    char host[32], c1[32], c2[32];
    char host_path[64], c1_path[64], c2_path[64];
    char made[10][32]; /* every namespace created, for the teardown */
    size_t n_made;
    int listeners[8];
    size_t n_listeners;
} env;

static int sh(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int sh(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char *cmd = NULL;
    if (vasprintf(&cmd, fmt, ap) < 0)
        abort();
    va_end(ap);
    int r = system(cmd);
    free(cmd);
    return r == -1 ? -1 : WIFEXITED(r) ? WEXITSTATUS(r) : 128;
}

static char *sh_output(const char *cmd)
{
    FILE *p = popen(cmd, "r");
    if (!p)
        return st_strdup("");
    char *buf = NULL;
    size_t len = 0;
    FILE *out = open_memstream(&buf, &len);
    char chunk[4096];
    size_t n;
    while ((n = fread(chunk, 1, sizeof(chunk), p)) > 0)
        fwrite(chunk, 1, n, out);
    pclose(p);
    fclose(out);
    return buf;
}

static void env_destroy(void)
{
    for (size_t i = 0; i < env.n_listeners; i++)
        close(env.listeners[i]);
    env.n_listeners = 0;
    while (env.n_made > 0)
        sh("ip netns del %s 2>/dev/null", env.made[--env.n_made]);
    env.ready = false;
}

/* A sanitizer's abort or a ^C must not leave namespaces behind either. */
static void on_fatal_signal(int sig)
{
    env_destroy();
    signal(sig, SIG_DFL);
    raise(sig);
}

/* Creates namespace stfw<pid>-<suffix>: its name into name, its path into
 * path. */
static int ns_add(const char *suffix, char name[32], char path[64])
{
    if (env.n_made == ST_ARRAY_SIZE(env.made))
        return -1;
    snprintf(name, 32, "stfw%d-%s", (int)getpid(), suffix);
    snprintf(path, 64, "/run/netns/%s", name);
    int r = sh("ip netns add %s", name);
    if (r == 0)
        snprintf(env.made[env.n_made++], 32, "%s", name);
    return r == 0 ? 0 : -1;
}

struct listen_args {
    int port;
    int fd;
};

static int listen_here(void *userdata, struct st_err **err)
{
    struct listen_args *a = userdata;
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return st_err_errno(err, "socket");
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    struct sockaddr_in sin = {.sin_family = AF_INET, .sin_port = htons((uint16_t)a->port)};
    /* the kernel completes handshakes into the backlog: no accept() */
    if (bind(fd, (struct sockaddr *)&sin, sizeof(sin)) < 0 || listen(fd, 64) < 0) {
        int r = st_err_errno(err, "listen on %d", a->port);
        close(fd);
        return r;
    }
    a->fd = fd;
    return 0;
}

static int listen_in(const char *ns_path, int port)
{
    struct listen_args a = {.port = port, .fd = -1};
    st_autoptr(st_err) err = NULL;
    if (st_net_netns_run(ns_path, listen_here, &a, &err) < 0)
        fail_msg("listening: %s", st_err_msg(err));
    assert_true(env.n_listeners < ST_ARRAY_SIZE(env.listeners));
    env.listeners[env.n_listeners++] = a.fd;
    return a.fd;
}

struct connect_args {
    const char *src, *dst;
    int port;
    bool keep; /* hand the connected socket back in fd instead of closing it */
    int fd;
};

/* 0 when the TCP handshake completes within 500 ms. */
static int connect_here(void *userdata, struct st_err **err)
{
    (void)err;
    struct connect_args *a = userdata;
    st_autoclose int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -errno;
    if (a->src) {
        struct sockaddr_in src = {.sin_family = AF_INET};
        inet_pton(AF_INET, a->src, &src.sin_addr);
        if (bind(fd, (struct sockaddr *)&src, sizeof(src)) < 0)
            return -errno;
    }
    struct sockaddr_in dst = {.sin_family = AF_INET, .sin_port = htons((uint16_t)a->port)};
    inet_pton(AF_INET, a->dst, &dst.sin_addr);
    if (connect(fd, (struct sockaddr *)&dst, sizeof(dst)) == 0)
        return 0;
    if (errno != EINPROGRESS)
        return -errno;
    struct pollfd pfd = {.fd = fd, .events = POLLOUT};
    if (poll(&pfd, 1, 500) <= 0)
        return -ETIMEDOUT;
    int soerr = 0;
    socklen_t len = sizeof(soerr);
    getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &len);
    if (soerr == 0 && a->keep)
        a->fd = st_steal_fd(&fd);
    return -soerr;
}

static int tcp_connect(const char *from_ns, const char *src, const char *dst, int port)
{
    struct connect_args a = {.src = src, .dst = dst, .port = port};
    return st_net_netns_run(from_ns, connect_here, &a, NULL);
}

static bool pings(const char *from, const char *dst)
{
    return sh("ip netns exec %s ping -c 1 -W 1 -q %s >/dev/null 2>&1", from, dst) == 0;
}

#define PORT_C1 "c1000000-0000-4000-8000-000000000001"
#define PORT_C2 "c2000000-0000-4000-8000-000000000002"
#define SG_A    "a0000000-0000-4000-8000-00000000000a"
#define SG_B    "b0000000-0000-4000-8000-00000000000b"
#define NET_ID  "90000000-0000-4000-8000-000000000097"

static int group_setup(void **state)
{
    (void)state;
    if (geteuid() != 0 || sh("ip -V >/dev/null 2>&1") != 0)
        return 0; /* the packet tests skip themselves */
    atexit(env_destroy);
    int fatal[] = {SIGABRT, SIGSEGV, SIGBUS, SIGINT, SIGTERM};
    for (size_t i = 0; i < ST_ARRAY_SIZE(fatal); i++)
        signal(fatal[i], on_fatal_signal);

    int r = ns_add("h", env.host, env.host_path);
    r = r ?: ns_add("c1", env.c1, env.c1_path);
    r = r ?: ns_add("c2", env.c2, env.c2_path);
    r = r
            ?: sh("ip -n %s link set lo up && ip -n %s link add stbr-97 type bridge && "
                  "ip -n %s link set stbr-97 up",
                  env.host, env.host, env.host);
    const char *ns[] = {env.c1, env.c2};
    const char *ids[] = {PORT_C1, PORT_C2};
    for (int i = 0; i < 2 && r == 0; i++) {
        char ifname[16];
        st_fw_port_ifname(ids[i], ifname);
        r = sh("ip -n %s link add %s type veth peer name eth0 netns %s && "
               "ip -n %s link set %s master stbr-97 up && "
               "ip -n %s link set eth0 address fa:16:3e:97:00:0%d && "
               "ip -n %s addr add 10.97.0.%d/24 dev eth0 && "
               "ip -n %s link set eth0 up && ip -n %s link set lo up",
               env.host, ifname, ns[i], env.host, ifname, ns[i], i + 1, ns[i], i + 1, ns[i], ns[i]);
    }
    if (r != 0) {
        env_destroy();
        fprintf(stderr, "could not set up namespaces\n");
        return -1;
    }
    listen_in(env.c2_path, 80);
    listen_in(env.c2_path, 22);
    listen_in(env.c1_path, 22);
    env.ready = true;
    return 0;
}

static int group_teardown(void **state)
{
    (void)state;
    env_destroy();
    return 0;
}

/* c1 in group A (egress anywhere, ingress ICMP only), c2 in group B
 * (egress anywhere; ingress TCP 80 from anywhere unless closed). */
static json_t *packet_view(bool open80)
{
    json_t *view = parse("{\"networks\": [{\"id\": \"" NET_ID "\", \"vni\": 1097,"
                         "  \"type\": \"vxlan\", \"bridge\": \"stbr-97\"}],"
                         " \"ports\": ["
                         "  {\"id\": \"" PORT_C1 "\", \"network_id\": \"" NET_ID "\","
                         "   \"mac\": \"fa:16:3e:97:00:01\", \"ip\": \"10.97.0.1\","
                         "   \"port_security\": true, \"security_groups\": [\"" SG_A "\"]},"
                         "  {\"id\": \"" PORT_C2 "\", \"network_id\": \"" NET_ID "\","
                         "   \"mac\": \"fa:16:3e:97:00:02\", \"ip\": \"10.97.0.2\","
                         "   \"port_security\": true, \"security_groups\": [\"" SG_B "\"]}],"
                         " \"security_groups\": {"
                         "  \"" SG_A "\": {\"members\": [\"10.97.0.1\"], \"rules\": ["
                         "   {\"id\": \"a1\", \"direction\": \"egress\", \"ethertype\": \"IPv4\"},"
                         "   {\"id\": \"a2\", \"direction\": \"ingress\", \"ethertype\": \"IPv4\","
                         "    \"protocol\": \"icmp\"}]},"
                         "  \"" SG_B "\": {\"members\": [\"10.97.0.2\"], \"rules\": ["
                         "   {\"id\": \"b1\", \"direction\": \"egress\", \"ethertype\": \"IPv4\"}"
                         "  ]}}}");
    if (open80) {
        json_t *rules = json_object_get(
            json_object_get(json_object_get(view, "security_groups"), SG_B), "rules");
        json_array_append_new(rules, parse("{\"id\": \"b2\", \"direction\": \"ingress\","
                                           " \"ethertype\": \"IPv4\", \"protocol\": \"tcp\","
                                           " \"port_range_min\": 80, \"port_range_max\": 80,"
                                           " \"remote_ip_prefix\": \"0.0.0.0/0\"}"));
    }
    return view;
}

static void apply_view(json_t *view)
{
    st_autofree char *text = NULL;
    st_autoptr(st_err) err = NULL;
    assert_int_equal(st_fw_render_ports(view, &text, &err), 0);
    if (st_fw_apply(env.host_path, text, &err) < 0)
        fail_msg("%s", st_err_msg(err));
}

static void test_apply_packets(void **state)
{
    (void)state;
    if (!env.ready)
        skip();

    /* without a ruleset everything goes through: the checks below can fail */
    assert_int_equal(tcp_connect(env.c1_path, NULL, "10.97.0.2", 80), 0);
    assert_int_equal(tcp_connect(env.c1_path, NULL, "10.97.0.2", 22), 0);
    assert_true(pings(env.c1, "10.97.0.2"));
    assert_int_equal(sh("ip -n %s addr add 10.97.0.9/24 dev eth0", env.c1), 0);
    assert_int_equal(tcp_connect(env.c1_path, "10.97.0.9", "10.97.0.2", 80), 0);

    st_autoptr(json_t) open = packet_view(true);
    apply_view(open);
    /* c1 → c2: only TCP 80; the answers reach c1 although its group lets
     * in nothing but ICMP (stateful) */
    assert_int_equal(tcp_connect(env.c1_path, NULL, "10.97.0.2", 80), 0);
    assert_int_equal(tcp_connect(env.c1_path, NULL, "10.97.0.2", 22), -ETIMEDOUT);
    assert_false(pings(env.c1, "10.97.0.2"));
    /* c2 → c1: c2's egress allows all, c1's ingress only ICMP */
    assert_true(pings(env.c2, "10.97.0.1"));
    assert_int_equal(tcp_connect(env.c2_path, NULL, "10.97.0.1", 22), -ETIMEDOUT);
    /* c1 may not send from an address that is not its port's */
    assert_int_equal(tcp_connect(env.c1_path, "10.97.0.9", "10.97.0.2", 80), -ETIMEDOUT);
    assert_int_equal(sh("ip -n %s addr del 10.97.0.9/24 dev eth0", env.c1), 0);

    /* the rule removed and the ruleset re-applied: 80 is closed */
    st_autoptr(json_t) closed = packet_view(false);
    apply_view(closed);
    assert_int_equal(tcp_connect(env.c1_path, NULL, "10.97.0.2", 80), -ETIMEDOUT);
    assert_true(pings(env.c2, "10.97.0.1"));

    /* the tables deleted: open again; deleting twice is fine */
    st_autoptr(st_err) err = NULL;
    assert_int_equal(st_fw_delete_table(env.host_path, "inet", "stratos", &err), 0);
    assert_int_equal(st_fw_delete_table(env.host_path, "bridge", "stratos", &err), 0);
    assert_int_equal(st_fw_delete_table(env.host_path, "bridge", "stratos", &err), 0);
    assert_int_equal(tcp_connect(env.c1_path, NULL, "10.97.0.2", 80), 0);
    assert_true(pings(env.c1, "10.97.0.2"));
}

/* Bytes of fd's stream the peer has not acknowledged after 300 ms. */
static int unacked_after_send(int fd)
{
    assert_int_equal(write(fd, "x", 1), 1);
    usleep(300 * 1000);
    int n = -1;
    assert_int_equal(ioctl(fd, SIOCOUTQ, &n), 0);
    return n;
}

/* A connection that a rule let in outlives the rule (the ruleset is
 * stateful) until the agent deletes the tracked connections of the port
 * that lost it; then its next segment is new, and refused. */
static void test_conntrack_flush(void **state)
{
    (void)state;
    if (!env.ready)
        skip();
    st_autoptr(json_t) open = packet_view(true);
    st_autoptr(json_t) closed = packet_view(false);
    apply_view(open);
    struct connect_args a = {.dst = "10.97.0.2", .port = 80, .keep = true, .fd = -1};
    assert_int_equal(st_net_netns_run(env.c1_path, connect_here, &a, NULL), 0);
    st_autoclose int fd = a.fd;
    assert_int_equal(unacked_after_send(fd), 0);

    apply_view(closed);
    assert_int_equal(unacked_after_send(fd), 0); /* established: still through */
    st_autoptr(json_t) before = NULL;
    st_autoptr(json_t) after = NULL;
    st_autoptr(st_err) err = NULL;
    assert_int_equal(st_fw_port_grants(open, &before, &err), 0);
    assert_int_equal(st_fw_port_grants(closed, &after, &err), 0);
    st_autoptr(json_t) revoked = st_fw_revoked(before, after);
    assert_int_equal(json_array_size(revoked), 1); /* c2 lost tcp/80; c1 lost nothing */
    assert_string_equal(json_string_value(json_object_get(json_array_get(revoked, 0), "ip")),
                        "10.97.0.2");
    unsigned deleted = 0;
    if (st_fw_conntrack_flush(env.host_path, revoked, &deleted, &err) < 0)
        fail_msg("%s", st_err_msg(err));
    assert_true(deleted >= 1);
    assert_int_equal(unacked_after_send(fd), 1); /* unanswered now */
    /* the refused segment left no entry behind */
    assert_int_equal(st_fw_conntrack_flush(env.host_path, revoked, &deleted, &err), 0);
    assert_int_equal(deleted, 0);
    /* grants only added: nothing revoked */
    st_autoptr(json_t) none = st_fw_revoked(after, before);
    assert_int_equal(json_array_size(none), 0);
}

/* The golden rulesets load into a kernel as they are; re-applying a
 * smaller view leaves no chain, set or map element of the bigger one; a
 * bad ruleset reports nft's message and changes nothing. */
static void test_apply_replaces(void **state)
{
    (void)state;
    if (!env.ready)
        skip();
    st_autoptr(json_t) view = parse(view_text);
    st_autofree char *text = NULL;
    st_autoptr(st_err) err = NULL;
    assert_int_equal(st_fw_render_ports(view, &text, &err), 0);
    if (st_fw_apply(env.host_path, text, &err) < 0)
        fail_msg("%s", st_err_msg(err));
    st_autofree char *cmd = st_sprintf("ip netns exec %s nft list ruleset", env.host);
    st_autofree char *big = sh_output(cmd);
    assert_non_null(strstr(big, "\"stbr-1001\" . 10.0.1.6 : jump ports-"));
    assert_non_null(strstr(big, "chain ports-3-ingress"));
    assert_non_null(strstr(big, "\"stp-3333333300\""));
    assert_non_null(strstr(big, "chain sg-dddddddd-0000-4000-8000-00000000000b-ingress"));
    assert_non_null(strstr(big, "set sg-dddddddd-0000-4000-8000-00000000000b-members"));

    /* keep only port 1 (group web) and its network */
    json_t *nets = json_object_get(view, "networks");
    json_array_remove(nets, 0); /* stbr-1002 */
    json_t *ports = json_object_get(view, "ports");
    for (size_t i = json_array_size(ports); i-- > 0;) {
        const char *id = json_string_value(json_object_get(json_array_get(ports, i), "id"));
        if (strncmp(id, "11111111", 8) != 0)
            json_array_remove(ports, i);
    }
    st_autofree char *small_text = NULL;
    assert_int_equal(st_fw_render_ports(view, &small_text, NULL), 0);
    assert_int_equal(st_fw_apply(env.host_path, small_text, &err), 0);
    st_autofree char *small = sh_output(cmd);
    assert_non_null(strstr(small, "\"stbr-1001\" . 10.0.1.5 : jump ports-1-ingress"));
    assert_non_null(strstr(small, "\"stp-1111111100\" . fa:16:3e:00:00:01"));
    assert_null(strstr(small, ". 10.0.1.6 :"));
    assert_null(strstr(small, "chain ports-2-"));
    assert_null(strstr(small, "stp-3333333300"));
    assert_null(strstr(small, "stp-2222222200"));
    assert_null(strstr(small, "stbr-1002"));
    assert_null(strstr(small, "chain sg-dddddddd-0000-4000-8000-00000000000b-ingress"));
    /* web's rules still name db as a remote group: its set stays */
    assert_non_null(strstr(small, "set sg-dddddddd-0000-4000-8000-00000000000b-members"));

    /* a failing transaction keeps the previous state */
    st_autoptr(st_err) bad_err = NULL;
    /* (a jump loop: nft parses it, the kernel refuses it) */
    assert_int_not_equal(st_fw_apply(env.host_path,
                                     "delete table inet stratos\ntable inet stratos {\n"
                                     "\tchain a {\n\t\tjump b\n\t}\n"
                                     "\tchain b {\n\t\tjump a\n\t}\n"
                                     "\tchain base {\n\t\ttype filter hook forward priority 0;"
                                     "\n\t\tjump a\n\t}\n}\n",
                                     &bad_err),
                         0);
    printf("a refused ruleset reads: %s\n", bad_err->msg);
    assert_non_null(strstr(bad_err->msg, "line 11:3-8: Error: Could not process rule"));
    assert_non_null(strstr(bad_err->msg, "(at: jump a)"));
    assert_null(strchr(bad_err->msg, '\n'));
    st_autofree char *after = sh_output(cmd);
    assert_string_equal(after, small);

    /* the router ruleset loads too, and is deleted */
    st_autoptr(json_t) router = parse(router_text);
    st_autofree char *nat = NULL;
    assert_int_equal(st_fw_render_router(router, "qg-rrrrrrrr-00", &nat, NULL), 0);
    if (st_fw_apply(env.host_path, nat, &err) < 0)
        fail_msg("%s", st_err_msg(err));
    st_autofree char *with_nat = sh_output(cmd);
    assert_non_null(strstr(with_nat, "table ip stratos-nat"));
    assert_int_equal(st_fw_delete_table(env.host_path, "ip", "stratos-nat", NULL), 0);
    assert_int_equal(st_fw_delete_table(env.host_path, "inet", "stratos", NULL), 0);
    assert_int_equal(st_fw_delete_table(env.host_path, "bridge", "stratos", NULL), 0);
    st_autofree char *none = sh_output(cmd);
    assert_null(strstr(none, "stratos"));
}

/* The peer address of the next connection on a listening socket, waiting
 * up to 500 ms; "" if none came. */
static const char *accept_peer(int fd, char buf[INET_ADDRSTRLEN])
{
    buf[0] = '\0';
    struct pollfd pfd = {.fd = fd, .events = POLLIN};
    if (poll(&pfd, 1, 500) <= 0)
        return buf;
    struct sockaddr_in peer;
    socklen_t len = sizeof(peer);
    int c = accept4(fd, (struct sockaddr *)&peer, &len, SOCK_CLOEXEC);
    if (c >= 0) {
        inet_ntop(AF_INET, &peer.sin_addr, buf, INET_ADDRSTRLEN);
        close(c);
    }
    return buf;
}

/* A router namespace between an "outside" namespace (203.0.113.0/24) and a
 * network (10.0.1.0/24, its bridge in a namespace of its own, as on a
 * node) with two servers: vm1 has floating IP 203.0.113.10, vm2 none. */
static void test_apply_router_nat(void **state)
{
    (void)state;
    if (!env.ready)
        skip();
    char ext[32], rtr[32], net[32], vm1[32], vm2[32];
    char ext_path[64], rtr_path[64], net_path[64], vm1_path[64], vm2_path[64];
    assert_int_equal(ns_add("ext", ext, ext_path), 0);
    assert_int_equal(ns_add("rtr", rtr, rtr_path), 0);
    assert_int_equal(ns_add("net", net, net_path), 0);
    assert_int_equal(ns_add("vm1", vm1, vm1_path), 0);
    assert_int_equal(ns_add("vm2", vm2, vm2_path), 0);
    assert_int_equal(
        sh("ip -n %s link add e0 type veth peer name qg-test netns %s && "
           "ip -n %s addr add 203.0.113.1/24 dev e0 && ip -n %s link set e0 up && "
           "ip -n %s addr add 203.0.113.2/24 dev qg-test && "
           "ip -n %s addr add 203.0.113.10/32 dev qg-test && ip -n %s link set qg-test up && "
           "ip -n %s link add br1 type bridge && ip -n %s link set br1 up && "
           "ip -n %s link add qr-net type veth peer name qr-test netns %s && "
           "ip -n %s link set qr-net master br1 up && "
           "ip -n %s addr add 10.0.1.1/24 dev qr-test && ip -n %s link set qr-test up && "
           "ip netns exec %s sysctl -qw net.ipv4.ip_forward=1",
           ext, rtr, ext, ext, rtr, rtr, rtr, net, net, net, rtr, net, rtr, rtr, rtr),
        0);
    const char *vms[] = {vm1, vm2};
    for (int i = 0; i < 2; i++)
        assert_int_equal(sh("ip -n %s link add v%d type veth peer name eth0 netns %s && "
                            "ip -n %s link set v%d master br1 up && "
                            "ip -n %s addr add 10.0.1.%d/24 dev eth0 && "
                            "ip -n %s link set eth0 up && "
                            "ip -n %s route add default via 10.0.1.1",
                            net, i, vms[i], net, i, vms[i], i + 5, vms[i], vms[i]),
                         0);
    int outside = listen_in(ext_path, 8080);
    int inside = listen_in(vm1_path, 22);
    char peer[INET_ADDRSTRLEN];

    /* without NAT the outside cannot answer 10.0.1.0/24 */
    assert_int_equal(tcp_connect(vm2_path, NULL, "203.0.113.1", 8080), -ETIMEDOUT);
    accept_peer(outside, peer);

    st_autoptr(json_t) router =
        parse("{\"id\": \"rrrrrrrr-0000-4000-8000-000000000097\", \"snat\": true,"
              " \"gateway\": {\"ip\": \"203.0.113.2\", \"prefixlen\": 24},"
              " \"interfaces\": [{\"cidr\": \"10.0.1.0/24\", \"ip\": \"10.0.1.1\"}],"
              " \"floating_ips\": [{\"ip\": \"203.0.113.10\", \"fixed_ip\": \"10.0.1.5\"}]}");
    st_autofree char *text = NULL;
    st_autoptr(st_err) err = NULL;
    assert_int_equal(st_fw_render_router(router, "qg-test", &text, &err), 0);
    if (st_fw_apply(rtr_path, text, &err) < 0)
        fail_msg("%s", st_err_msg(err));

    /* out: vm1 as its floating IP, vm2 as the gateway address */
    assert_int_equal(tcp_connect(vm1_path, NULL, "203.0.113.1", 8080), 0);
    assert_string_equal(accept_peer(outside, peer), "203.0.113.10");
    assert_int_equal(tcp_connect(vm2_path, NULL, "203.0.113.1", 8080), 0);
    assert_string_equal(accept_peer(outside, peer), "203.0.113.2");
    /* in: the floating IP reaches vm1, which sees the real client */
    assert_int_equal(tcp_connect(ext_path, NULL, "203.0.113.10", 22), 0);
    assert_string_equal(accept_peer(inside, peer), "203.0.113.1");
    /* hairpin: vm2 through vm1's floating IP; vm1 answers the router */
    assert_int_equal(tcp_connect(vm2_path, NULL, "203.0.113.10", 22), 0);
    assert_string_equal(accept_peer(inside, peer), "10.0.1.1");

    /* SNAT off: only the server with a floating IP gets out */
    json_object_set_new(router, "snat", json_false());
    st_autofree char *nosnat = NULL;
    assert_int_equal(st_fw_render_router(router, "qg-test", &nosnat, NULL), 0);
    assert_int_equal(st_fw_apply(rtr_path, nosnat, &err), 0);
    assert_int_equal(tcp_connect(vm2_path, NULL, "203.0.113.1", 8080), -ETIMEDOUT);
    accept_peer(outside, peer);
    assert_int_equal(tcp_connect(vm1_path, NULL, "203.0.113.1", 8080), 0);
    assert_string_equal(accept_peer(outside, peer), "203.0.113.10");
    assert_int_equal(st_fw_delete_table(rtr_path, "ip", "stratos-nat", &err), 0);
}

/* 100 ports, each in its own group of 10 rules (two of them naming the
 * next group as remote, the others each with their own prefix so nothing
 * merges): 1,000 rules. */
static json_t *bench_view(void)
{
    json_t *view = parse("{\"networks\": [{\"id\": \"n\", \"vni\": 1098, \"type\": \"vxlan\","
                         " \"bridge\": \"stbr-98\"}], \"ports\": [], \"security_groups\": {}}");
    json_t *ports = json_object_get(view, "ports");
    json_t *sgs = json_object_get(view, "security_groups");
    for (int i = 0; i < 100; i++) {
        char id[40], sg[40], next[40], mac[18], ip[16];
        snprintf(id, sizeof(id), "%08x-0000-4000-8000-000000000000", 0x10000000 + i);
        snprintf(sg, sizeof(sg), "%08x-0000-4000-8000-000000000000", 0x50000000 + i);
        snprintf(next, sizeof(next), "%08x-0000-4000-8000-000000000000",
                 0x50000000 + (i + 1) % 100);
        snprintf(mac, sizeof(mac), "fa:16:3e:00:%02x:%02x", i / 256, i % 256);
        snprintf(ip, sizeof(ip), "10.98.%d.%d", i / 250, i % 250 + 2);
        json_array_append_new(ports, json_pack("{s:s, s:s, s:s, s:s, s:b, s:[s]}", "id", id,
                                               "network_id", "n", "mac", mac, "ip", ip,
                                               "port_security", 1, "security_groups", sg));
        json_t *rules = json_array();
        for (int j = 0; j < 10; j++) {
            char rule_id[48];
            snprintf(rule_id, sizeof(rule_id), "%s-%d", sg, j);
            json_t *r = json_pack("{s:s, s:s, s:s, s:s, s:i, s:i}", "id", rule_id, "direction",
                                  j < 8 ? "ingress" : "egress", "ethertype", "IPv4", "protocol",
                                  j % 2 ? "udp" : "tcp", "port_range_min", 1000 + j * 10,
                                  "port_range_max", 1000 + j * 10 + i % 5);
            if (j < 2) {
                json_object_set_new(r, "remote_group_id", json_string(next));
            } else {
                char prefix[32];
                snprintf(prefix, sizeof(prefix), "172.%d.%d.0/24", 16 + i % 16, j * 10 + i / 16);
                json_object_set_new(r, "remote_ip_prefix", json_string(prefix));
            }
            json_array_append_new(rules, r);
        }
        json_object_set_new(sgs, sg, json_pack("{s:o, s:[s]}", "rules", rules, "members", ip));
    }
    return view;
}

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static int double_cmp(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static void test_bench_apply(void **state)
{
    (void)state;
    if (!env.ready)
        skip();
    st_autoptr(json_t) view = bench_view();
    enum { RUNS = 7 };
    double render[RUNS], apply[RUNS];
    size_t rules = 0;
    for (int run = 0; run < RUNS; run++) {
        st_autofree char *text = NULL;
        st_autoptr(st_err) err = NULL;
        double t0 = now_ms();
        assert_int_equal(st_fw_render_ports(view, &text, &err), 0);
        double t1 = now_ms();
        if (st_fw_apply(env.host_path, text, &err) < 0)
            fail_msg("%s", st_err_msg(err));
        double t2 = now_ms();
        render[run] = t1 - t0;
        apply[run] = t2 - t1;
        if (run == 0)
            for (const char *p = text; (p = strstr(p, " accept\n")); p++)
                rules++;
    }
    double first_apply = apply[0];
    qsort(render, RUNS, sizeof(double), double_cmp);
    qsort(apply, RUNS, sizeof(double), double_cmp);
    printf("firewall: 100 ports, 1000 security-group rules (%zu accept rules rendered): "
           "render p50 %.2f ms, apply p50 %.2f ms (first apply %.2f ms, max %.2f ms), "
           "%d runs\n",
           rules, render[RUNS / 2], apply[RUNS / 2], first_apply, apply[RUNS - 1], RUNS);
    assert_int_equal(st_fw_delete_table(env.host_path, "inet", "stratos", NULL), 0);
    assert_int_equal(st_fw_delete_table(env.host_path, "bridge", "stratos", NULL), 0);
}

int main(void)
{
    const struct CMUnitTest renders[] = {
        cmocka_unit_test(test_port_ifname),
        cmocka_unit_test(test_grants_revoked),
        cmocka_unit_test(test_render_ports_golden),
        cmocka_unit_test(test_render_ports_deterministic),
        cmocka_unit_test(test_render_router_golden),
        cmocka_unit_test(test_render_refuses_injection),
    };
    const struct CMUnitTest packets[] = {
        cmocka_unit_test(test_apply_packets),   cmocka_unit_test(test_apply_replaces),
        cmocka_unit_test(test_conntrack_flush), cmocka_unit_test(test_apply_router_nat),
        cmocka_unit_test(test_bench_apply),
    };
    int failed = cmocka_run_group_tests_name("firewall renders", renders, NULL, NULL);
    if (geteuid() != 0) {
        printf("skipping the packet tests: they need root (namespaces, nftables)\n");
        return failed ? failed : 77;
    }
    failed += cmocka_run_group_tests_name("firewall packets", packets, group_setup, group_teardown);
    return failed;
}
