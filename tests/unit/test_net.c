/* Unit tests of src/net's netlink primitives with real namespaces and real
 * packets: namespaces bound under a temporary directory, a bridge and veth
 * pairs, pings between namespaces, VXLAN between two "host" namespaces
 * over a veth underlay, FDB, address and route sync, sysctl isolation.
 *
 * Every device lives in a namespace the test creates (even the "host"
 * ones), so the machine's own network is never touched, and removing the
 * namespaces at the end removes everything, whether the tests passed or
 * not. Needs root; exits 77 (skipped) otherwise or when namespaces or
 * netlink are not permitted. `ping` and `ip`/`bridge` are used only to
 * observe, through `nsenter --net=<file>`.
 *
 * ST_NET_BENCH=1 adds a benchmark: one port (veth + address + default
 * route) made by st_net, against the same made by `ip` commands. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <cmocka.h>

#include "lib/cleanup.h"
#include "lib/json.h"
#include "net/net-priv.h"
#include "net/net.h"

static char tmpdir[64];

/* The path of namespace `name` under the temporary directory (static
 * buffers in rotation, enough for one call's arguments). */
static const char *ns(const char *name)
{
    static char bufs[8][128];
    static int next;
    char *b = bufs[next++ % 8];
    snprintf(b, 128, "%s/%s", tmpdir, name);
    return b;
}

__attribute__((format(printf, 1, 2))) static char *run_out(const char *fmt, ...)
{
    char *cmd;
    va_list ap;
    va_start(ap, fmt);
    if (vasprintf(&cmd, fmt, ap) < 0)
        abort();
    va_end(ap);
    FILE *f = popen(cmd, "r");
    free(cmd);
    assert_non_null(f);
    size_t cap = 4096, len = 0;
    char *out = st_xcalloc(1, cap);
    size_t n;
    while ((n = fread(out + len, 1, cap - len - 1, f)) > 0) {
        len += n;
        if (cap - len < 2) {
            cap *= 2;
            out = st_xrealloc(out, cap);
        }
    }
    out[len] = '\0';
    pclose(f);
    return out;
}

__attribute__((format(printf, 1, 2))) static int run(const char *fmt, ...)
{
    char *cmd;
    va_list ap;
    va_start(ap, fmt);
    if (vasprintf(&cmd, fmt, ap) < 0)
        abort();
    va_end(ap);
    int st = system(cmd);
    free(cmd);
    return st;
}

static bool ping(const char *from, const char *ip)
{
    for (int i = 0; i < 3; i++) {
        if (run("nsenter --net=%s ping -c1 -W1 -q %s >/dev/null 2>&1", from, ip) == 0)
            return true;
    }
    return false;
}

static void must(int r, struct st_err *err)
{
    if (r < 0)
        fail_msg("%s (%d)", st_err_msg(err), r);
}

static struct st_net *open_ns(const char *path)
{
    struct st_net *net = NULL;
    st_autoptr(st_err) err = NULL;
    must(st_net_open(path, &net, &err), err);
    return net;
}

/* IPv6 off: no duplicate address detection or router solicitation
 * changing addresses and bridge tables behind a snapshot's back. */
static void make_ns(const char *path)
{
    st_autoptr(st_err) err = NULL;
    must(st_net_netns_create(path, &err), err);
    const char *keys[] = {"net/ipv6/conf/default/disable_ipv6", "net/ipv6/conf/all/disable_ipv6"};
    for (size_t i = 0; i < ST_ARRAY_SIZE(keys); i++) {
        int r = st_net_sysctl_set(path, keys[i], "1", &err);
        if (r < 0 && r != -ENOENT)
            must(r, err);
        st_err_clear(&err);
    }
}

static void remove_all_namespaces(void)
{
    if (!tmpdir[0])
        return;
    DIR *d = opendir(tmpdir);
    if (d) {
        struct dirent *de;
        while ((de = readdir(d))) {
            if (de->d_name[0] == '.')
                continue;
            char path[512];
            snprintf(path, sizeof(path), "%s/%s", tmpdir, de->d_name);
            st_net_netns_delete(path, NULL);
        }
        closedir(d);
    }
    rmdir(tmpdir);
    tmpdir[0] = '\0';
}

static int setup(void **state)
{
    (void)state;
    if (geteuid() != 0) {
        printf("skipped: network namespaces need root\n");
        exit(77);
    }
    if (run("command -v nsenter >/dev/null && command -v ping >/dev/null && "
            "command -v ip >/dev/null && command -v bridge >/dev/null") != 0) {
        printf("skipped: nsenter, ping, ip or bridge is missing\n");
        exit(77);
    }
    snprintf(tmpdir, sizeof(tmpdir), "/tmp/st-net-XXXXXX");
    if (!mkdtemp(tmpdir)) {
        tmpdir[0] = '\0';
        return -1;
    }
    atexit(remove_all_namespaces);
    st_autoptr(st_err) err = NULL;
    int r = st_net_netns_create(ns("probe"), &err);
    if (r == -EPERM || r == -EACCES || r == -ENOSYS) {
        printf("skipped: network namespaces or netlink not permitted: %s\n", st_err_msg(err));
        exit(77);
    }
    if (r < 0) {
        printf("creating a namespace: %s\n", st_err_msg(err));
        return -1;
    }
    st_net_netns_delete(ns("probe"), NULL);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    remove_all_namespaces();
    return 0;
}

/* ---- names and parsers ---- */

static void test_names_and_parsers(void **state)
{
    (void)state;
    st_autoptr(st_err) err = NULL;
    assert_int_equal(st_net_check_ifname("stp-0123456789", NULL), 0);
    assert_int_equal(st_net_check_ifname("eth0.100", NULL), 0);
    assert_int_equal(st_net_check_ifname("stp-0123456789a", NULL), 0); /* 15 */
    assert_int_equal(st_net_check_ifname("stp-0123456789ab", &err), -EINVAL);
    assert_non_null(strstr(st_err_msg(err), "longer than 15"));
    const char *bad[] = {"", "a b", "a/b", "..", "eth0\n", "x:y"};
    for (size_t i = 0; i < ST_ARRAY_SIZE(bad); i++)
        assert_int_equal(st_net_check_ifname(bad[i], NULL), -EINVAL);

    struct in_addr in;
    unsigned plen;
    assert_int_equal(st_net_parse_cidr("10.0.2.5/24", &in, &plen), 0);
    assert_int_equal(plen, 24);
    assert_int_equal(ntohl(in.s_addr), 0x0a000205);
    const char *badcidr[] = {"10.0.2.5", "10.0.2.5/33", "10.0.2/24",    "10.0.2.5/",
                             "/24",      "10.0.2.5/2x", "10.0.2.5/0024"};
    for (size_t i = 0; i < ST_ARRAY_SIZE(badcidr); i++)
        assert_int_equal(st_net_parse_cidr(badcidr[i], &in, &plen), -EINVAL);
    uint8_t mac[6];
    assert_int_equal(st_net_parse_mac("fa:16:3E:00:0a:ff", mac), 0);
    assert_memory_equal(mac, ((uint8_t[]){0xfa, 0x16, 0x3e, 0x00, 0x0a, 0xff}), 6);
    assert_int_equal(st_net_parse_mac("fa:16:3e:00:0a", mac), -EINVAL);
    assert_int_equal(st_net_parse_mac("fa-16-3e-00-0a-ff", mac), -EINVAL);
    assert_int_equal(st_net_parse_mac("fa:16:3e:00:0a:fg", mac), -EINVAL);
}

/* ---- namespaces ---- */

static void test_netns_lifecycle(void **state)
{
    (void)state;
    st_autoptr(st_err) err = NULL;
    const char *p = ns("life");
    assert_false(st_net_netns_exists(p));
    make_ns(p);
    assert_true(st_net_netns_exists(p));
    struct stat a, b;
    assert_int_equal(stat(p, &a), 0);
    /* a second create keeps the namespace that is there */
    make_ns(p);
    assert_int_equal(stat(p, &b), 0);
    assert_int_equal(a.st_ino, b.st_ino);

    /* lo is up inside; the namespace has nothing else */
    st_autofree char *links = run_out("nsenter --net=%s ip -o link show", p);
    assert_non_null(strstr(links, "lo: <LOOPBACK,UP,LOWER_UP>"));
    assert_null(strstr(links, "2: "));
    assert_int_equal(run("nsenter --net=%s ping -c1 -W1 -q 127.0.0.1 >/dev/null", p), 0);

    assert_int_equal(st_net_netns_delete(p, &err), 0);
    assert_false(st_net_netns_exists(p));
    assert_int_equal(access(p, F_OK), -1);
    assert_int_equal(st_net_netns_delete(p, &err), 0);

    /* work in a namespace that is not there fails and says where */
    st_autoptr(st_net) net = NULL;
    assert_int_equal(st_net_open(p, &net, &err), -ENOENT);
    assert_non_null(strstr(st_err_msg(err), p));
    st_err_clear(&err);
    assert_int_equal(st_net_netns_create("relative/path", &err), -EINVAL);
}

static int read_ip_forward(void *userdata, struct st_err **err)
{
    (void)err;
    char *out = userdata;
    FILE *f = fopen("/proc/sys/net/ipv4/ip_forward", "r");
    if (!f)
        return -errno;
    int r = fgets(out, 8, f) ? 0 : -EIO;
    fclose(f);
    return r;
}

static void test_sysctl_stays_in_namespace(void **state)
{
    (void)state;
    st_autoptr(st_err) err = NULL;
    const char *p = ns("sysctl");
    make_ns(p);
    char host[8] = "", inside[8] = "";
    assert_int_equal(read_ip_forward(host, NULL), 0);
    const char *other = host[0] == '1' ? "0" : "1";
    must(st_net_sysctl_set(p, "net/ipv4/ip_forward", other, &err), err);
    /* as a user sees it, and as a namespace thread reads it */
    st_autofree char *seen = run_out("nsenter --net=%s cat /proc/sys/net/ipv4/ip_forward", p);
    assert_int_equal(seen[0], other[0]);
    must(st_net_netns_run(p, read_ip_forward, inside, &err), err);
    assert_int_equal(inside[0], other[0]);
    char after[8] = "";
    assert_int_equal(read_ip_forward(after, NULL), 0);
    assert_string_equal(after, host);

    assert_int_equal(st_net_sysctl_set(p, "../../etc/passwd", "x", &err), -EINVAL);
    st_err_clear(&err);
    assert_int_equal(st_net_sysctl_set(p, "/net/ipv4/ip_forward", "1", NULL), -EINVAL);
    assert_int_equal(st_net_sysctl_set(p, "net/ipv4/no_such_knob", "1", &err), -ENOENT);
    assert_non_null(strstr(st_err_msg(err), "net/ipv4/no_such_knob"));
    st_net_netns_delete(p, NULL);
}

/* ---- a bridge, veth pairs, addresses and routes ---- */

static void port_ensure(struct st_net *host, const char *host_name, const char *netns,
                        const char *mac, const char *cidr)
{
    st_autoptr(st_err) err = NULL;
    struct st_net_veth veth = {
        .host_name = host_name,
        .peer_name = "eth0",
        .peer_netns = netns,
        .peer_mac = mac,
        .mtu = 1450,
        .master = "stbr-t",
    };
    must(st_net_veth_ensure(host, &veth, &err), err);
    st_autoptr(st_net) inside = open_ns(netns);
    st_autoptr(json_t) cidrs = json_pack("[s]", cidr);
    must(st_net_addr_sync(inside, "eth0", cidrs, &err), err);
}

static char *snapshot(const char *netns)
{
    return run_out("nsenter --net=%s sh -c 'ip -o link; ip -o addr; ip route; bridge fdb show'",
                   netns);
}

static void test_bridge_veth_ping(void **state)
{
    (void)state;
    st_autoptr(st_err) err = NULL;
    const char *h = ns("h"), *a = ns("a"), *b = ns("b");
    make_ns(h);
    make_ns(a);
    make_ns(b);
    st_autoptr(st_net) host = open_ns(h);
    must(st_net_bridge_ensure(host, "stbr-t", 1450, &err), err);
    port_ensure(host, "stp-a", a, "fa:16:3e:00:00:0a", "10.99.0.1/24");
    port_ensure(host, "stp-b", b, "fa:16:3e:00:00:0b", "10.99.0.2/24");
    assert_true(ping(a, "10.99.0.2"));
    assert_true(ping(b, "10.99.0.1"));

    /* what `ip` sees */
    st_autofree char *peer = run_out("nsenter --net=%s ip -o link show eth0", a);
    assert_non_null(strstr(peer, "link/ether fa:16:3e:00:00:0a"));
    assert_non_null(strstr(peer, "mtu 1450"));
    assert_non_null(strstr(peer, ",UP,"));
    st_autofree char *hostside = run_out("nsenter --net=%s ip -o link show stp-a", h);
    assert_non_null(strstr(hostside, "master stbr-t"));
    assert_non_null(strstr(hostside, "mtu 1450"));
    st_autoptr(json_t) list = NULL;
    must(st_net_link_list(host, "stp-", &list, &err), err);
    assert_int_equal(json_array_size(list), 2);
    st_autofree char *names = json_dumps(list, JSON_COMPACT);
    assert_true(strstr(names, "\"stp-a\"") && strstr(names, "\"stp-b\""));
    assert_true(st_net_link_exists(host, "stbr-t"));
    assert_false(st_net_link_exists(host, "stbr-none"));

    /* routes */
    st_autoptr(st_net) in_a = open_ns(a);
    must(st_net_route_default_ensure(in_a, "eth0", "10.99.0.254", &err), err);
    must(st_net_route_ensure(in_a, "eth0", "10.1.0.0/16", "10.99.0.253", &err), err);
    must(st_net_route_ensure(in_a, "eth0", "10.2.0.0/16", NULL, &err), err);
    st_autofree char *routes = run_out("nsenter --net=%s ip route", a);
    assert_non_null(strstr(routes, "default via 10.99.0.254 dev eth0"));
    assert_non_null(strstr(routes, "10.1.0.0/16 via 10.99.0.253 dev eth0"));
    assert_non_null(strstr(routes, "10.2.0.0/16 dev eth0 proto static scope link"));

    /* ensure twice changes nothing: same devices (ifindex), same state */
    int idx_host = st_net_link_index(host, "stp-a");
    int idx_peer = st_net_link_index(in_a, "eth0");
    int idx_br = st_net_link_index(host, "stbr-t");
    st_autofree char *before_h = snapshot(h);
    st_autofree char *before_a = snapshot(a);
    must(st_net_bridge_ensure(host, "stbr-t", 1450, &err), err);
    port_ensure(host, "stp-a", a, "fa:16:3e:00:00:0a", "10.99.0.1/24");
    must(st_net_route_default_ensure(in_a, "eth0", "10.99.0.254", &err), err);
    must(st_net_route_ensure(in_a, "eth0", "10.1.0.0/16", "10.99.0.253", &err), err);
    must(st_net_addr_ensure(in_a, "eth0", "10.99.0.1/24", &err), err);
    assert_int_equal(st_net_link_index(host, "stp-a"), idx_host);
    assert_int_equal(st_net_link_index(in_a, "eth0"), idx_peer);
    assert_int_equal(st_net_link_index(host, "stbr-t"), idx_br);
    st_autofree char *after_h = snapshot(h);
    st_autofree char *after_a = snapshot(a);
    assert_string_equal(before_h, after_h);
    assert_string_equal(before_a, after_a);

    /* what differs is fixed in place: MAC, MTU, down, detached */
    assert_int_equal(run("nsenter --net=%s ip link set eth0 down address fa:16:3e:00:00:99", a), 0);
    assert_int_equal(run("nsenter --net=%s ip link set stp-a nomaster mtu 1400", h), 0);
    port_ensure(host, "stp-a", a, "fa:16:3e:00:00:0a", "10.99.0.1/24");
    assert_int_equal(st_net_link_index(host, "stp-a"), idx_host);
    st_autofree char *fixed = run_out("nsenter --net=%s ip -o link show eth0", a);
    assert_non_null(strstr(fixed, "fa:16:3e:00:00:0a"));
    assert_non_null(strstr(fixed, ",UP,"));
    st_autofree char *fixed_h = run_out("nsenter --net=%s ip -o link show stp-a", h);
    assert_non_null(strstr(fixed_h, "master stbr-t"));
    assert_non_null(strstr(fixed_h, "mtu 1450"));
    /* the single-attribute setters */
    must(st_net_link_set_master(host, "stp-a", NULL, &err), err);
    st_autofree char *detached = run_out("nsenter --net=%s ip -o link show stp-a", h);
    assert_null(strstr(detached, "master"));
    must(st_net_link_set_master(host, "stp-a", "stbr-t", &err), err);
    must(st_net_link_set_mtu(host, "stp-a", 1400, &err), err);
    st_autofree char *attached = run_out("nsenter --net=%s ip -o link show stp-a", h);
    assert_non_null(strstr(attached, "master stbr-t"));
    assert_non_null(strstr(attached, "mtu 1400"));
    must(st_net_link_set_mtu(host, "stp-a", 1450, &err), err);
    assert_int_equal(st_net_link_set_master(host, "stp-a", "stbr-none", &err), -ENODEV);
    assert_non_null(strstr(st_err_msg(err), "stbr-none"));
    st_err_clear(&err);
    /* the route went with the link going down; it is put back */
    must(st_net_route_default_ensure(in_a, "eth0", "10.99.0.254", &err), err);
    assert_true(ping(a, "10.99.0.2"));

    /* a default route through another gateway replaces the old one */
    must(st_net_route_default_ensure(in_a, "eth0", "10.99.0.250", &err), err);
    st_autofree char *routes2 = run_out("nsenter --net=%s ip route show default", a);
    assert_non_null(strstr(routes2, "default via 10.99.0.250 dev eth0"));
    assert_null(strstr(routes2, "10.99.0.254"));

    /* addr_sync removes what is not listed, including a replaced primary */
    st_autoptr(json_t) two = json_pack("[s,s]", "10.99.0.1/24", "10.99.7.1/24");
    must(st_net_addr_sync(in_a, "eth0", two, &err), err);
    st_autofree char *addrs2 = run_out("nsenter --net=%s ip -4 -o addr show dev eth0", a);
    assert_non_null(strstr(addrs2, "inet 10.99.0.1/24 brd 10.99.0.255"));
    assert_non_null(strstr(addrs2, "inet 10.99.7.1/24"));
    st_autoptr(json_t) other = json_pack("[s]", "10.99.0.11/24");
    must(st_net_addr_sync(in_a, "eth0", other, &err), err);
    st_autofree char *addrs3 = run_out("nsenter --net=%s ip -4 -o addr show dev eth0", a);
    assert_non_null(strstr(addrs3, "inet 10.99.0.11/24"));
    assert_null(strstr(addrs3, "10.99.0.1/"));
    assert_null(strstr(addrs3, "10.99.7.1"));
    assert_true(ping(b, "10.99.0.11"));
    st_autoptr(json_t) none = json_array();
    must(st_net_addr_sync(in_a, "eth0", none, &err), err);
    st_autofree char *addrs4 = run_out("nsenter --net=%s ip -4 -o addr show dev eth0", a);
    assert_string_equal(addrs4, "");
    st_autoptr(json_t) bad = json_pack("[s]", "10.99.0.1");
    assert_int_equal(st_net_addr_sync(in_a, "eth0", bad, &err), -EINVAL);
    st_err_clear(&err);

    /* errors say what failed and on which device */
    assert_int_equal(st_net_bridge_ensure(host, "stp-a", 0, &err), -EEXIST);
    assert_non_null(strstr(st_err_msg(err), "creating bridge stp-a"));
    st_err_clear(&err);
    assert_int_equal(st_net_link_set_up(host, "nope0", &err), -ENODEV);
    assert_non_null(strstr(st_err_msg(err), "nope0"));
    st_err_clear(&err);
    assert_int_equal(st_net_link_set_mtu(host, "stbr-t", 20, &err), -EINVAL);
    /* with the kernel's own explanation (extended ack) */
    assert_string_equal(
        st_err_msg(err),
        "setting MTU 20 on stbr-t: Invalid argument (mtu less than device minimum)");
    st_err_clear(&err);
    assert_int_equal(st_net_addr_ensure(in_a, "nope0", "10.0.0.1/24", &err), -ENODEV);
    assert_non_null(strstr(st_err_msg(err), "nope0"));
    st_err_clear(&err);
    struct st_net_veth v = {.host_name = "stp-c", .peer_name = "eth0", .peer_netns = a};
    assert_int_equal(st_net_veth_ensure(host, &v, &err), -EEXIST);
    assert_non_null(strstr(st_err_msg(err), "eth0 already exists"));
    st_err_clear(&err);
    assert_false(st_net_link_exists(host, "stp-c"));

    /* delete, and delete again */
    must(st_net_link_delete(host, "stp-b", &err), err);
    assert_false(st_net_link_exists(host, "stp-b"));
    st_autofree char *b_links = run_out("nsenter --net=%s ip -o link", b);
    assert_null(strstr(b_links, "eth0"));
    must(st_net_link_delete(host, "stp-b", &err), err);

    st_net_netns_delete(a, NULL);
    st_net_netns_delete(b, NULL);
    st_net_netns_delete(h, NULL);
}

/* A container's namespace deleted and recreated under the same path (a
 * restart) while the old one is still held: the host end still exists,
 * its peer is in the old namespace. */
static void test_stale_veth_repaired(void **state)
{
    (void)state;
    st_autoptr(st_err) err = NULL;
    const char *h = ns("sh"), *a = ns("sa"), *b = ns("sb");
    make_ns(h);
    make_ns(a);
    make_ns(b);
    st_autoptr(st_net) host = open_ns(h);
    must(st_net_bridge_ensure(host, "stbr-t", 0, &err), err);
    port_ensure(host, "stp-a", a, "fa:16:3e:00:00:0a", "10.99.0.1/24");
    port_ensure(host, "stp-b", b, "fa:16:3e:00:00:0b", "10.99.0.2/24");
    assert_true(ping(a, "10.99.0.2"));
    int old_idx = st_net_link_index(host, "stp-a");

    int held = open(a, O_RDONLY | O_CLOEXEC); /* keeps the old namespace alive */
    assert_true(held >= 0);
    must(st_net_netns_delete(a, &err), err);
    make_ns(a);
    assert_true(st_net_link_exists(host, "stp-a")); /* stale: its peer is elsewhere */
    assert_false(ping(a, "10.99.0.2"));

    port_ensure(host, "stp-a", a, "fa:16:3e:00:00:0a", "10.99.0.1/24");
    assert_int_not_equal(st_net_link_index(host, "stp-a"), old_idx);
    assert_true(ping(a, "10.99.0.2"));
    assert_true(ping(b, "10.99.0.1"));
    close(held);

    /* a peer namespace that does not exist is an error naming it */
    st_net_netns_delete(b, NULL);
    struct st_net_veth v = {.host_name = "stp-b", .peer_name = "eth0", .peer_netns = b};
    assert_int_equal(st_net_veth_ensure(host, &v, &err), -ENOENT);
    assert_non_null(strstr(st_err_msg(err), b));

    st_net_netns_delete(a, NULL);
    st_net_netns_delete(h, NULL);
}

/* A pinned MAC stays on its port: frames from another port with that
 * source address (a router that moved, still answering from its old node)
 * do not move the bridge's entry, as they would a learned one. */
static void test_fdb_pin(void **state)
{
    (void)state;
    st_autoptr(st_err) err = NULL;
    const char *h = ns("ph"), *a = ns("pa"), *b = ns("pb");
    make_ns(h);
    make_ns(a);
    make_ns(b);
    st_autoptr(st_net) host = open_ns(h);
    must(st_net_bridge_ensure(host, "stbr-t", 0, &err), err);
    port_ensure(host, "stp-a", a, "fa:16:3e:00:00:0a", "10.98.0.1/24");
    port_ensure(host, "stp-b", b, "fa:16:3e:00:00:0b", "10.98.0.2/24");
    const char *mac = "fa:16:3e:00:00:0a";
    must(st_net_bridge_fdb_pin(host, "stp-a", mac, &err), err);
    must(st_net_bridge_fdb_pin(host, "stp-a", mac, &err), err); /* idempotent */
    /* b sends with a's address as its source */
    assert_int_equal(run("nsenter --net=%s ip link set eth0 address %s", b, mac), 0);
    run("nsenter --net=%s ping -c2 -i0.2 -W1 -q -b 10.98.0.255 >/dev/null 2>&1", b);
    st_autofree char *fdb =
        run_out("nsenter --net=%s bridge fdb show br stbr-t | grep '^%s '", h, mac);
    assert_non_null(strstr(fdb, "dev stp-a"));
    assert_null(strstr(fdb, "dev stp-b"));
    assert_non_null(strstr(fdb, "sticky"));
    assert_int_equal(st_net_bridge_fdb_pin(host, "stp-nope", mac, &err), -ENODEV);
    st_err_clear(&err);
    assert_int_equal(st_net_bridge_fdb_pin(host, "stp-a", "nonsense", &err), -EINVAL);
    st_net_netns_delete(a, NULL);
    st_net_netns_delete(b, NULL);
    st_net_netns_delete(h, NULL);
}

/* ---- VXLAN between two hosts ---- */

static void vxlan_host(const char *hostns, const char *local, const char *peer_vtep,
                       const char *container, const char *port, const char *cidr)
{
    st_autoptr(st_err) err = NULL;
    st_autoptr(st_net) net = open_ns(hostns);
    must(st_net_bridge_ensure(net, "stbr-1001", 1450, &err), err);
    struct st_net_vxlan vx = {
        .name = "stvx-1001",
        .vni = 1001,
        .local = local,
        .dev = "und0",
        .mtu = 1450,
        .master = "stbr-1001",
    };
    must(st_net_vxlan_ensure(net, &vx, &err), err);
    st_autoptr(json_t) fdb = json_pack("[{s:s,s:s}]", "mac", "00:00:00:00:00:00", "dst", peer_vtep);
    must(st_net_fdb_sync(net, "stvx-1001", fdb, &err), err);
    struct st_net_veth veth = {
        .host_name = port,
        .peer_name = "eth0",
        .peer_netns = container,
        .mtu = 1450,
        .master = "stbr-1001",
    };
    must(st_net_veth_ensure(net, &veth, &err), err);
    st_autoptr(st_net) inside = open_ns(container);
    st_autoptr(json_t) cidrs = json_pack("[s]", cidr);
    must(st_net_addr_sync(inside, "eth0", cidrs, &err), err);
}

static int count_lines_with(const char *text, const char *needle)
{
    int n = 0;
    for (const char *p = text; (p = strstr(p, needle)); p += strlen(needle))
        n++;
    return n;
}

#define FDB_SHOW "nsenter --net=%s bridge fdb show dev stvx-1001 | grep ' dst '"

static void test_vxlan_between_hosts(void **state)
{
    (void)state;
    st_autoptr(st_err) err = NULL;
    const char *h1 = ns("h1"), *h2 = ns("h2"), *c1 = ns("c1"), *c2 = ns("c2");
    make_ns(h1);
    make_ns(h2);
    make_ns(c1);
    make_ns(c2);

    /* the underlay: one veth between the two hosts */
    st_autoptr(st_net) n1 = open_ns(h1);
    st_autoptr(st_net) n2 = open_ns(h2);
    struct st_net_veth und = {.host_name = "und0", .peer_name = "und0", .peer_netns = h2};
    must(st_net_veth_ensure(n1, &und, &err), err);
    must(st_net_addr_ensure(n1, "und0", "10.98.0.1/24", &err), err);
    must(st_net_addr_ensure(n2, "und0", "10.98.0.2/24", &err), err);
    assert_true(ping(h1, "10.98.0.2"));

    vxlan_host(h1, "10.98.0.1", "10.98.0.2", c1, "stp-c1", "10.99.1.1/24");
    vxlan_host(h2, "10.98.0.2", "10.98.0.1", c2, "stp-c2", "10.99.1.2/24");
    assert_true(ping(c1, "10.99.1.2"));
    assert_true(ping(c2, "10.99.1.1"));

    st_autofree char *details = run_out("nsenter --net=%s ip -d -o link show stvx-1001", h1);
    assert_non_null(strstr(details, "vxlan id 1001 local 10.98.0.1 dev und0"));
    assert_non_null(strstr(details, "dstport 4789"));
    assert_non_null(strstr(details, "nolearning"));
    assert_non_null(strstr(details, "master stbr-1001"));
    assert_non_null(strstr(details, "mtu 1450"));

    /* several flood entries (same zero MAC) and a unicast one coexist */
    st_autoptr(json_t) three = json_pack(
        "[{s:s,s:s},{s:s,s:s},{s:s,s:s}]", "mac", "00:00:00:00:00:00", "dst", "10.98.0.2", "mac",
        "00:00:00:00:00:00", "dst", "10.98.0.3", "mac", "fa:16:3e:00:00:99", "dst", "10.98.0.3");
    must(st_net_fdb_sync(n1, "stvx-1001", three, &err), err);
    st_autofree char *fdb3 = run_out(FDB_SHOW, h1);
    assert_non_null(strstr(fdb3, "00:00:00:00:00:00 dst 10.98.0.2 self permanent"));
    assert_non_null(strstr(fdb3, "00:00:00:00:00:00 dst 10.98.0.3 self permanent"));
    assert_non_null(strstr(fdb3, "fa:16:3e:00:00:99 dst 10.98.0.3 self permanent"));
    assert_int_equal(count_lines_with(fdb3, " dst "), 3);
    must(st_net_fdb_sync(n1, "stvx-1001", three, &err), err);
    st_autofree char *fdb3b = run_out(FDB_SHOW, h1);
    assert_string_equal(fdb3, fdb3b);
    /* a MAC that moved to another VTEP */
    st_autoptr(json_t) moved =
        json_pack("[{s:s,s:s},{s:s,s:s}]", "mac", "00:00:00:00:00:00", "dst", "10.98.0.2", "mac",
                  "fa:16:3e:00:00:99", "dst", "10.98.0.4");
    must(st_net_fdb_sync(n1, "stvx-1001", moved, &err), err);
    st_autofree char *fdb2 = run_out(FDB_SHOW, h1);
    assert_non_null(strstr(fdb2, "fa:16:3e:00:00:99 dst 10.98.0.4"));
    assert_null(strstr(fdb2, "10.98.0.3"));
    assert_int_equal(count_lines_with(fdb2, " dst "), 2);
    /* back to one flood entry: the others are removed */
    st_autoptr(json_t) one =
        json_pack("[{s:s,s:s}]", "mac", "00:00:00:00:00:00", "dst", "10.98.0.2");
    must(st_net_fdb_sync(n1, "stvx-1001", one, &err), err);
    st_autofree char *fdb1 = run_out(FDB_SHOW, h1);
    assert_int_equal(count_lines_with(fdb1, " dst "), 1);
    assert_non_null(strstr(fdb1, "00:00:00:00:00:00 dst 10.98.0.2"));
    assert_true(ping(c1, "10.99.1.2"));
    /* without the flood entry nothing crosses */
    st_autoptr(json_t) empty = json_array();
    must(st_net_fdb_sync(n1, "stvx-1001", empty, &err), err);
    must(st_net_fdb_sync(n2, "stvx-1001", empty, &err), err);
    assert_int_equal(run("nsenter --net=%s ip neigh flush all", c1), 0);
    assert_int_equal(run("nsenter --net=%s ip neigh flush all", c2), 0);
    assert_int_equal(run("nsenter --net=%s ping -c1 -W1 -q 10.99.1.2 >/dev/null 2>&1", c1), 256);
    st_autoptr(json_t) bad = json_pack("[{s:s}]", "mac", "00:00:00:00:00:00");
    assert_int_equal(st_net_fdb_sync(n1, "stvx-1001", bad, &err), -EINVAL);
    st_err_clear(&err);

    /* a VNI that differs means a new device; idempotent otherwise */
    int idx = st_net_link_index(n1, "stvx-1001");
    vxlan_host(h1, "10.98.0.1", "10.98.0.2", c1, "stp-c1", "10.99.1.1/24");
    vxlan_host(h2, "10.98.0.2", "10.98.0.1", c2, "stp-c2", "10.99.1.2/24");
    assert_int_equal(st_net_link_index(n1, "stvx-1001"), idx);
    assert_true(ping(c1, "10.99.1.2"));
    struct st_net_vxlan vx = {.name = "stvx-1001",
                              .vni = 1002,
                              .local = "10.98.0.1",
                              .dev = "und0",
                              .master = "stbr-1001"};
    must(st_net_vxlan_ensure(n1, &vx, &err), err);
    assert_int_not_equal(st_net_link_index(n1, "stvx-1001"), idx);
    st_autofree char *d2 = run_out("nsenter --net=%s ip -d -o link show stvx-1001", h1);
    assert_non_null(strstr(d2, "vxlan id 1002"));
    assert_non_null(strstr(d2, "master stbr-1001"));

    /* the kernel's refusal, with the device's name */
    struct st_net_vxlan dup = {
        .name = "stvx-dup", .vni = 1002, .local = "10.98.0.1", .dev = "und0"};
    assert_int_equal(st_net_vxlan_ensure(n1, &dup, &err), -EEXIST);
    assert_non_null(strstr(st_err_msg(err), "creating vxlan stvx-dup: File exists"));
    st_err_clear(&err);

    st_net_netns_delete(c1, NULL);
    st_net_netns_delete(c2, NULL);
    st_net_netns_delete(h1, NULL);
    st_net_netns_delete(h2, NULL);
}

/* ---- benchmark (ST_NET_BENCH=1) ---- */

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

#define BENCH_N 50

static double p50(double *v)
{
    qsort(v, BENCH_N, sizeof(double), cmp_double);
    return v[BENCH_N / 2];
}

static void bench_port(struct st_net *host, const char *netns)
{
    st_autoptr(st_err) err = NULL;
    struct st_net_veth veth = {.host_name = "stp-bench",
                               .peer_name = "eth0",
                               .peer_netns = netns,
                               .peer_mac = "fa:16:3e:00:00:01",
                               .mtu = 1450,
                               .master = "stbr-t"};
    must(st_net_veth_ensure(host, &veth, &err), err);
    st_autoptr(st_net) inside = open_ns(netns);
    st_autoptr(json_t) cidrs = json_pack("[s]", "10.99.0.5/24");
    must(st_net_addr_sync(inside, "eth0", cidrs, &err), err);
    must(st_net_route_default_ensure(inside, "eth0", "10.99.0.1", &err), err);
}

static void test_bench(void **state)
{
    (void)state;
    if (!getenv("ST_NET_BENCH"))
        skip();
    st_autoptr(st_err) err = NULL;
    const char *h = ns("bh"), *p = ns("bp");
    make_ns(h);
    make_ns(p);
    st_autoptr(st_net) host = open_ns(h);
    must(st_net_bridge_ensure(host, "stbr-t", 0, &err), err);
    double create[BENCH_N], steady[BENCH_N], ipcmd[BENCH_N];
    for (int i = 0; i < BENCH_N; i++) {
        double t0 = now_ms();
        bench_port(host, p);
        create[i] = now_ms() - t0;
        t0 = now_ms();
        bench_port(host, p);
        steady[i] = now_ms() - t0;
        must(st_net_link_delete(host, "stp-bench", &err), err);
    }
    for (int i = 0; i < BENCH_N; i++) {
        double t0 = now_ms();
        int st = run("nsenter --net=%s sh -c 'ip link add stp-bench mtu 1450 master stbr-t up type "
                     "veth peer name eth0 mtu 1450 address fa:16:3e:00:00:01 netns %s' && "
                     "nsenter --net=%s sh -c 'ip link set eth0 up && ip addr add 10.99.0.5/24 brd "
                     "+ dev eth0 && ip route replace default via 10.99.0.1 dev eth0'",
                     h, p, p);
        ipcmd[i] = now_ms() - t0;
        assert_int_equal(st, 0);
        must(st_net_link_delete(host, "stp-bench", &err), err);
    }
    printf("bench: one port (veth + address + default route), p50 of %d:\n", BENCH_N);
    printf("bench:   st_net, created:        %.3f ms\n", p50(create));
    printf("bench:   st_net, already right:  %.3f ms\n", p50(steady));
    printf("bench:   ip commands, created:   %.3f ms\n", p50(ipcmd));
    st_net_netns_delete(p, NULL);
    st_net_netns_delete(h, NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_names_and_parsers),         cmocka_unit_test(test_netns_lifecycle),
        cmocka_unit_test(test_sysctl_stays_in_namespace), cmocka_unit_test(test_bridge_veth_ping),
        cmocka_unit_test(test_stale_veth_repaired),       cmocka_unit_test(test_fdb_pin),
        cmocka_unit_test(test_vxlan_between_hosts),       cmocka_unit_test(test_bench),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
