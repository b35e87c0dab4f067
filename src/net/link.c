/* Links over route netlink (libnl-route-3): the handle on one namespace,
 * and the devices of the data plane — bridges, VXLAN devices and their FDB,
 * veth pairs into other namespaces.
 *
 * Every "ensure" reads the link first (one RTM_GETLINK) and sends a change
 * only for what differs, so a reconcile of a node that is already right
 * costs lookups and no change events. A device whose identity is wrong (a
 * VXLAN device with another VNI, a veth whose peer is no longer in the
 * namespace it should be in) cannot be fixed in place and is recreated.
 *
 * A veth pair is created in one request with the peer already in its
 * namespace under its final name (IFLA_NET_NS_FD in the peer's
 * attributes), so no half-made pair with a temporary name can be left in
 * the host namespace by a crash; only "up" of the peer needs a handle in
 * the peer's namespace.
 *
 * In the ensure functions, a NULL master and a zero MTU mean "leave as
 * it is" (st_net_link_set_master(NULL) detaches).
 *
 * The FDB of a VXLAN device is read and written as AF_BRIDGE neighbours
 * with NTF_SELF (the device's own table, not the bridge's) and NDA_DST (the
 * remote VTEP). Flood entries share the all-zero MAC and differ only by
 * destination, so they are added with NLM_F_APPEND (`bridge fdb append`);
 * a plain create would replace the one before. For the same reason the
 * table is read with a dump parsed here rather than a libnl neighbour
 * cache, which keys bridge entries by MAC and would fold the flood entries
 * into one. */
#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/if.h>
#include <linux/neighbour.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <netlink/attr.h>
#include <netlink/handlers.h>
#include <netlink/route/link/veth.h>
#include <netlink/route/link/vxlan.h>
#include <netlink/route/neighbour.h>
#include <netlink/socket.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/json.h"
#include "lib/log.h"
#include "net/net-priv.h"

#ifndef NETLINK_GET_STRICT_CHK
#define NETLINK_GET_STRICT_CHK 12
#endif

int st_net_check_ifname(const char *name, struct st_err **err)
{
    if (!name || !name[0])
        return st_err_set(err, -EINVAL, "device name is empty");
    size_t len = strlen(name);
    if (len > ST_NET_IFNAME_MAX)
        return st_err_set(err, -EINVAL, "device name '%s' is longer than %d characters", name,
                          ST_NET_IFNAME_MAX);
    if (!strcmp(name, ".") || !strcmp(name, ".."))
        return st_err_set(err, -EINVAL, "invalid device name '%s'", name);
    for (const char *p = name; *p; p++) {
        if (!(('a' <= *p && *p <= 'z') || ('A' <= *p && *p <= 'Z') || ('0' <= *p && *p <= '9') ||
              *p == '_' || *p == '.' || *p == '-'))
            return st_err_set(err, -EINVAL, "invalid character in device name '%s'", name);
    }
    return 0;
}

/* ---- parsers ---- */

int st_net_parse_ipv4(const char *s, struct in_addr *ret)
{
    /* inet_pton takes only the full dotted quad, unlike inet_aton. */
    if (!s || inet_pton(AF_INET, s, ret) != 1)
        return -EINVAL;
    return 0;
}

int st_net_parse_cidr(const char *s, struct in_addr *ret_addr, unsigned *ret_prefixlen)
{
    if (!s)
        return -EINVAL;
    const char *slash = strchr(s, '/');
    if (!slash || slash == s || slash - s >= INET_ADDRSTRLEN || !slash[1] || strlen(slash) > 3)
        return -EINVAL;
    char ip[INET_ADDRSTRLEN];
    memcpy(ip, s, slash - s);
    ip[slash - s] = '\0';
    unsigned plen = 0;
    for (const char *p = slash + 1; *p; p++) {
        if (*p < '0' || *p > '9')
            return -EINVAL;
        plen = plen * 10 + (unsigned)(*p - '0');
    }
    if (plen > 32 || st_net_parse_ipv4(ip, ret_addr) < 0)
        return -EINVAL;
    *ret_prefixlen = plen;
    return 0;
}

int st_net_parse_mac(const char *s, uint8_t ret[6])
{
    if (!s || strlen(s) != 17)
        return -EINVAL;
    for (int i = 0; i < 6; i++) {
        char hex[3] = {s[i * 3], s[i * 3 + 1], '\0'};
        if (!isxdigit((unsigned char)hex[0]) || !isxdigit((unsigned char)hex[1]) ||
            (i < 5 && s[i * 3 + 2] != ':'))
            return -EINVAL;
        ret[i] = (uint8_t)strtoul(hex, NULL, 16);
    }
    return 0;
}

/* ---- errors ---- */

/* Reads the kernel's error and, with NETLINK_EXT_ACK, its explanation
 * (NLMSGERR_ATTR_MSG after the echoed request). libnl hands us the
 * payload of the NLMSG_ERROR message, so its header is just before. */
static int on_kernel_error(struct sockaddr_nl *who, struct nlmsgerr *e, void *arg)
{
    (void)who;
    struct st_net *net = arg;
    net->kernel_errno = e->error < 0 ? -e->error : e->error;
    net->kernel_msg[0] = '\0';
    const struct nlmsghdr *outer = (const struct nlmsghdr *)((const char *)e - NLMSG_HDRLEN);
    if (outer->nlmsg_flags & NLM_F_ACK_TLVS) {
        size_t echoed =
            (outer->nlmsg_flags & NLM_F_CAPPED) ? NLMSG_HDRLEN : NLMSG_ALIGN(e->msg.nlmsg_len);
        size_t off = NLMSG_HDRLEN + offsetof(struct nlmsgerr, msg) + echoed;
        if (off < outer->nlmsg_len) {
            struct nlattr *tb[NLMSGERR_ATTR_MAX + 1];
            struct nlattr *head = (struct nlattr *)((char *)outer + off);
            if (nla_parse(tb, NLMSGERR_ATTR_MAX, head, (int)(outer->nlmsg_len - off), NULL) == 0 &&
                tb[NLMSGERR_ATTR_MSG] && nla_len(tb[NLMSGERR_ATTR_MSG]) > 0) {
                snprintf(net->kernel_msg, sizeof(net->kernel_msg), "%.*s",
                         nla_len(tb[NLMSGERR_ATTR_MSG]),
                         (const char *)nla_data(tb[NLMSGERR_ATTR_MSG]));
                size_t n = strlen(net->kernel_msg);
                if (n && net->kernel_msg[n - 1] == '\n')
                    net->kernel_msg[n - 1] = '\0';
            }
        }
    }
    return NL_STOP;
}

static int nle_to_errno(int nle)
{
    switch (nle) {
    case NLE_INTR:
        return -EINTR;
    case NLE_AGAIN:
    case NLE_DUMP_INTR:
        return -EAGAIN;
    case NLE_NOMEM:
        return -ENOMEM;
    case NLE_EXIST:
        return -EEXIST;
    case NLE_INVAL:
    case NLE_MISSING_ATTR:
    case NLE_AF_MISMATCH:
    case NLE_IMMUTABLE:
        return -EINVAL;
    case NLE_RANGE:
        return -ERANGE;
    case NLE_MSGSIZE:
        return -EMSGSIZE;
    case NLE_OPNOTSUPP:
    case NLE_MSGTYPE_NOSUPPORT:
        return -EOPNOTSUPP;
    case NLE_AF_NOSUPPORT:
        return -EAFNOSUPPORT;
    case NLE_OBJ_NOTFOUND:
        return -ENOENT;
    case NLE_NOADDR:
        return -EADDRNOTAVAIL;
    case NLE_BUSY:
        return -EBUSY;
    case NLE_NOACCESS:
    case NLE_PERM:
        return -EPERM;
    case NLE_NODEV:
        return -ENODEV;
    case NLE_BAD_SOCK:
        return -EBADF;
    default:
        return -EIO;
    }
}

int st_net_nlret(struct st_net *net, int r)
{
    int kernel = net->kernel_errno;
    net->kernel_errno = 0;
    if (r >= 0)
        return 0;
    if (kernel) {
        net->last_code = -kernel;
        if (net->kernel_msg[0])
            snprintf(net->last_text, sizeof(net->last_text), "%s (%s)", strerror(kernel),
                     net->kernel_msg);
        else
            snprintf(net->last_text, sizeof(net->last_text), "%s", strerror(kernel));
    } else {
        net->last_code = nle_to_errno(-r);
        snprintf(net->last_text, sizeof(net->last_text), "%s", nl_geterror(r));
    }
    net->kernel_msg[0] = '\0';
    return net->last_code;
}

int st_net_fail(struct st_net *net, struct st_err **err, const char *fmt, ...)
{
    char *what;
    va_list ap;
    va_start(ap, fmt);
    if (vasprintf(&what, fmt, ap) < 0)
        abort();
    va_end(ap);
    int code = net->last_code ? net->last_code : -EIO;
    st_err_set(err, code, "%s: %s", what, net->last_text[0] ? net->last_text : strerror(-code));
    free(what);
    return code;
}

/* ---- the handle ---- */

struct net_open {
    struct st_net *net;
};

static int net_open_here(void *userdata, struct st_err **err)
{
    struct net_open *o = userdata;
    struct st_net *net = st_new0(struct st_net, 1);
    net->sk = nl_socket_alloc();
    if (!net->sk)
        abort();
    nl_socket_modify_err_cb(net->sk, NL_CB_CUSTOM, on_kernel_error, net);
    int r = nl_connect(net->sk, NETLINK_ROUTE);
    if (r < 0) {
        nl_socket_free(net->sk);
        free(net);
        /* EPERM or EACCES here: netlink is not permitted (seccomp, LSM). */
        return st_err_set(err, r == -NLE_PERM || r == -NLE_NOACCESS ? -EPERM : nle_to_errno(-r),
                          "opening route netlink socket: %s", nl_geterror(r));
    }
    int one = 1;
    int fd = nl_socket_get_fd(net->sk);
    /* The kernel's explanation of a refusal, and no echo of our request. */
    (void)setsockopt(fd, SOL_NETLINK, NETLINK_EXT_ACK, &one, sizeof(one));
    (void)setsockopt(fd, SOL_NETLINK, NETLINK_CAP_ACK, &one, sizeof(one));
    o->net = net;
    return 0;
}

int st_net_open(const char *netns, struct st_net **ret, struct st_err **err)
{
    struct net_open o = {0};
    /* A socket belongs for life to the namespace of the thread that made it. */
    int r = st_net_netns_run(netns, net_open_here, &o, err);
    if (r < 0)
        return r;
    o.net->netns = st_strdup(netns);
    *ret = o.net;
    return 0;
}

void st_net_close(struct st_net *net)
{
    if (!net)
        return;
    nl_socket_free(net->sk);
    free(net->netns);
    free(net);
}

/* ---- links ---- */

int st_net_link_get(struct st_net *net, const char *name, struct rtnl_link **ret,
                    struct st_err **err)
{
    int r = st_net_check_ifname(name, err);
    if (r < 0)
        return r;
    struct rtnl_link *link = NULL;
    r = st_net_nlret(net, rtnl_link_get_kernel(net->sk, 0, name, &link));
    if (r == -ENODEV)
        return r;
    if (r < 0)
        return st_net_fail(net, err, "looking up %s", name);
    *ret = link;
    return 0;
}

bool st_net_link_exists(struct st_net *net, const char *name)
{
    return st_net_link_index(net, name) > 0;
}

int st_net_link_index(struct st_net *net, const char *name)
{
    st_autoptr(rtnl_link) link = NULL;
    int r = st_net_link_get(net, name, &link, NULL);
    if (r < 0)
        return r;
    return rtnl_link_get_ifindex(link);
}

int st_net_link_list(struct st_net *net, const char *prefix, json_t **ret, struct st_err **err)
{
    st_autoptr(nl_cache) cache = NULL;
    int r = st_net_nlret(net, rtnl_link_alloc_cache(net->sk, AF_UNSPEC, &cache));
    if (r < 0)
        return st_net_fail(net, err, "listing links");
    json_t *names = json_array();
    size_t plen = prefix ? strlen(prefix) : 0;
    for (struct nl_object *o = nl_cache_get_first(cache); o; o = nl_cache_get_next(o)) {
        const char *name = rtnl_link_get_name((struct rtnl_link *)o);
        if (name && (!plen || !strncmp(name, prefix, plen)))
            json_array_append_new(names, json_string(name));
    }
    *ret = names;
    return 0;
}

int st_net_link_delete(struct st_net *net, const char *name, struct st_err **err)
{
    int r = st_net_check_ifname(name, err);
    if (r < 0)
        return r;
    st_autoptr(rtnl_link) link = rtnl_link_alloc();
    rtnl_link_set_name(link, name);
    r = st_net_nlret(net, rtnl_link_delete(net->sk, link));
    if (r == -ENODEV)
        return 0;
    if (r < 0)
        return st_net_fail(net, err, "deleting %s", name);
    return 0;
}

/* Sends changes to link (as read) and names what was being done on failure. */
static int link_apply(struct st_net *net, struct rtnl_link *link, struct rtnl_link *changes,
                      const char *what, struct st_err **err)
{
    int r = st_net_nlret(net, rtnl_link_change(net->sk, link, changes, 0));
    if (r < 0)
        return st_net_fail(net, err, "%s %s", what, rtnl_link_get_name(link));
    return 0;
}

/* The ifindex of master, or 0 for NULL. */
static int master_index(struct st_net *net, const char *slave, const char *master,
                        struct st_err **err)
{
    if (!master)
        return 0;
    st_autoptr(rtnl_link) link = NULL;
    int r = st_net_link_get(net, master, &link, err);
    if (r == -ENODEV)
        return st_err_set(err, r, "attaching %s to bridge %s: no such bridge", slave, master);
    if (r < 0)
        return r;
    return rtnl_link_get_ifindex(link);
}

int st_net_link_set_up(struct st_net *net, const char *name, struct st_err **err)
{
    st_autoptr(rtnl_link) link = NULL;
    int r = st_net_link_get(net, name, &link, err);
    if (r == -ENODEV)
        return st_err_set(err, r, "setting %s up: no such device", name);
    if (r < 0)
        return r;
    if (rtnl_link_get_flags(link) & IFF_UP)
        return 0;
    st_autoptr(rtnl_link) changes = rtnl_link_alloc();
    rtnl_link_set_flags(changes, IFF_UP);
    return link_apply(net, link, changes, "setting up", err);
}

int st_net_link_set_mtu(struct st_net *net, const char *name, unsigned mtu, struct st_err **err)
{
    st_autoptr(rtnl_link) link = NULL;
    int r = st_net_link_get(net, name, &link, err);
    if (r == -ENODEV)
        return st_err_set(err, r, "setting the MTU of %s: no such device", name);
    if (r < 0)
        return r;
    if (rtnl_link_get_mtu(link) == mtu)
        return 0;
    st_autoptr(rtnl_link) changes = rtnl_link_alloc();
    rtnl_link_set_mtu(changes, mtu);
    char what[64];
    snprintf(what, sizeof(what), "setting MTU %u on", mtu);
    return link_apply(net, link, changes, what, err);
}

int st_net_link_set_master(struct st_net *net, const char *name, const char *master,
                           struct st_err **err)
{
    st_autoptr(rtnl_link) link = NULL;
    int r = st_net_link_get(net, name, &link, err);
    if (r == -ENODEV)
        return st_err_set(err, r, "attaching %s to %s: no such device", name,
                          master ? master : "no bridge");
    if (r < 0)
        return r;
    int idx = master_index(net, name, master, err);
    if (idx < 0)
        return idx;
    if (rtnl_link_get_master(link) == idx)
        return 0;
    st_autoptr(rtnl_link) changes = rtnl_link_alloc();
    rtnl_link_set_master(changes, idx);
    return link_apply(net, link, changes, master ? "attaching to a bridge" : "detaching", err);
}

/* Brings an existing link to mtu (0: leave), master (-1: leave) and up in
 * at most one change. */
static int link_converge(struct st_net *net, struct rtnl_link *link, unsigned mtu, int master,
                         struct st_err **err)
{
    st_autoptr(rtnl_link) changes = rtnl_link_alloc();
    bool change = false;
    if (mtu && rtnl_link_get_mtu(link) != mtu) {
        rtnl_link_set_mtu(changes, mtu);
        change = true;
    }
    if (master >= 0 && rtnl_link_get_master(link) != master) {
        rtnl_link_set_master(changes, master);
        change = true;
    }
    if (!(rtnl_link_get_flags(link) & IFF_UP)) {
        rtnl_link_set_flags(changes, IFF_UP);
        change = true;
    }
    if (!change)
        return 0;
    return link_apply(net, link, changes, "updating", err);
}

static bool link_is(struct rtnl_link *link, const char *kind)
{
    const char *type = rtnl_link_get_type(link);
    return type && !strcmp(type, kind);
}

/* ---- bridges ---- */

int st_net_bridge_ensure(struct st_net *net, const char *name, unsigned mtu, struct st_err **err)
{
    st_autoptr(rtnl_link) link = NULL;
    int r = st_net_link_get(net, name, &link, err);
    if (r == 0) {
        if (!link_is(link, "bridge"))
            return st_err_set(err, -EEXIST, "creating bridge %s: a %s device has that name", name,
                              rtnl_link_get_type(link) ? rtnl_link_get_type(link) : "non-bridge");
        return link_converge(net, link, mtu, -1, err);
    }
    if (r != -ENODEV)
        return r;
    st_autoptr(rtnl_link) br = rtnl_link_alloc();
    r = rtnl_link_set_type(br, "bridge");
    if (r < 0)
        return st_err_set(err, -EOPNOTSUPP, "creating bridge %s: %s", name, nl_geterror(r));
    rtnl_link_set_name(br, name);
    if (mtu)
        rtnl_link_set_mtu(br, mtu);
    rtnl_link_set_flags(br, IFF_UP);
    r = st_net_nlret(net, rtnl_link_add(net->sk, br, NLM_F_CREATE | NLM_F_EXCL));
    if (r < 0)
        return st_net_fail(net, err, "creating bridge %s", name);
    return 0;
}

/* ---- VXLAN ---- */

static bool vxlan_matches(struct rtnl_link *link, const struct st_net_vxlan *vx,
                          const struct in_addr *local, uint16_t port, int dev_index)
{
    uint32_t id = 0, p = 0, dev = 0;
    if (!link_is(link, "vxlan") || rtnl_link_vxlan_get_id(link, &id) < 0 || id != vx->vni)
        return false;
    if (rtnl_link_vxlan_get_port(link, &p) < 0 || p != port)
        return false;
    if (rtnl_link_vxlan_get_learning(link) != 0)
        return false;
    if (rtnl_link_vxlan_get_link(link, &dev) < 0)
        dev = 0;
    if ((int)dev != dev_index)
        return false;
    struct nl_addr *addr = NULL;
    if (rtnl_link_vxlan_get_local(link, &addr) < 0 || !addr)
        return false;
    bool same = nl_addr_get_family(addr) == AF_INET && nl_addr_get_len(addr) == 4 &&
                !memcmp(nl_addr_get_binary_addr(addr), local, 4);
    nl_addr_put(addr);
    return same;
}

int st_net_vxlan_ensure(struct st_net *net, const struct st_net_vxlan *vx, struct st_err **err)
{
    int r = st_net_check_ifname(vx->name, err);
    if (r < 0)
        return r;
    struct in_addr local;
    if (st_net_parse_ipv4(vx->local, &local) < 0)
        return st_err_set(err, -EINVAL, "creating vxlan %s: invalid local address '%s'", vx->name,
                          vx->local ? vx->local : "(null)");
    if (vx->vni == 0 || vx->vni > 0xffffff)
        return st_err_set(err, -EINVAL, "creating vxlan %s: VNI %u is out of range", vx->name,
                          vx->vni);
    uint16_t port = vx->port ? vx->port : ST_NET_VXLAN_PORT;
    int dev_index = 0;
    if (vx->dev) {
        dev_index = st_net_link_index(net, vx->dev);
        if (dev_index < 0)
            return st_err_set(err, dev_index, "creating vxlan %s: uplink %s: %s", vx->name, vx->dev,
                              strerror(-dev_index));
    }
    int master = master_index(net, vx->name, vx->master, err);
    if (master < 0)
        return master;

    st_autoptr(rtnl_link) link = NULL;
    r = st_net_link_get(net, vx->name, &link, err);
    if (r < 0 && r != -ENODEV)
        return r;
    if (r == 0) {
        if (vxlan_matches(link, vx, &local, port, dev_index))
            return link_converge(net, link, vx->mtu, vx->master ? master : -1, err);
        r = st_net_link_delete(net, vx->name, err);
        if (r < 0)
            return st_err_prefix(err, r, "recreating vxlan %s", vx->name);
    }

    struct rtnl_link *vxl = rtnl_link_vxlan_alloc();
    if (!vxl)
        abort();
    st_autoptr(rtnl_link) owned = vxl;
    st_autoptr(nl_addr) addr = nl_addr_build(AF_INET, &local, sizeof(local));
    if (!addr)
        abort();
    rtnl_link_set_name(vxl, vx->name);
    rtnl_link_vxlan_set_id(vxl, vx->vni);
    rtnl_link_vxlan_set_local(vxl, addr);
    rtnl_link_vxlan_set_port(vxl, port);
    rtnl_link_vxlan_set_learning(vxl, 0);
    if (dev_index)
        rtnl_link_vxlan_set_link(vxl, (uint32_t)dev_index);
    if (vx->mtu)
        rtnl_link_set_mtu(vxl, vx->mtu);
    if (master)
        rtnl_link_set_master(vxl, master);
    rtnl_link_set_flags(vxl, IFF_UP);
    r = st_net_nlret(net, rtnl_link_add(net->sk, vxl, NLM_F_CREATE | NLM_F_EXCL));
    if (r < 0)
        return st_net_fail(net, err, "creating vxlan %s", vx->name);
    return 0;
}

/* ---- the VXLAN FDB ---- */

struct fdb_entry {
    uint8_t mac[6];
    struct in_addr dst;
    bool keep; /* existing: listed; wanted: already present */
};

struct fdb_dump {
    int ifindex;
    struct fdb_entry *entries;
    size_t n, cap;
};

static int fdb_dump_entry(struct nl_msg *msg, void *arg)
{
    struct fdb_dump *d = arg;
    struct nlmsghdr *nlh = nlmsg_hdr(msg);
    if (nlh->nlmsg_type != RTM_NEWNEIGH || nlmsg_datalen(nlh) < (int)sizeof(struct ndmsg))
        return NL_SKIP;
    struct ndmsg *ndm = nlmsg_data(nlh);
    if (ndm->ndm_family != AF_BRIDGE || ndm->ndm_ifindex != d->ifindex ||
        !(ndm->ndm_flags & NTF_SELF))
        return NL_SKIP;
    struct nlattr *tb[NDA_MAX + 1];
    if (nlmsg_parse(nlh, sizeof(*ndm), tb, NDA_MAX, NULL) < 0)
        return NL_SKIP;
    if (!tb[NDA_LLADDR] || nla_len(tb[NDA_LLADDR]) != 6 || !tb[NDA_DST] ||
        nla_len(tb[NDA_DST]) != 4)
        return NL_SKIP;
    if (d->n == d->cap) {
        d->cap = d->cap ? d->cap * 2 : 16;
        d->entries = st_xrealloc(d->entries, d->cap * sizeof(*d->entries));
    }
    struct fdb_entry *e = &d->entries[d->n++];
    memset(e, 0, sizeof(*e));
    memcpy(e->mac, nla_data(tb[NDA_LLADDR]), 6);
    memcpy(&e->dst, nla_data(tb[NDA_DST]), 4);
    return NL_OK;
}

static int fdb_read(struct st_net *net, struct fdb_dump *d)
{
    int fd = nl_socket_get_fd(net->sk);
    int on = 1, off = 0;
    /* With strict checking the kernel dumps only this device's entries
     * (ndm_ifindex); without it (old kernels) everything comes and the
     * callback filters. */
    bool strict = setsockopt(fd, SOL_NETLINK, NETLINK_GET_STRICT_CHK, &on, sizeof(on)) == 0;
    int r = 0;
    for (int attempt = 0; attempt < 3; attempt++) {
        d->n = 0;
        struct ndmsg ndm = {.ndm_family = AF_BRIDGE, .ndm_ifindex = d->ifindex};
        r = st_net_nlret(net, nl_send_simple(net->sk, RTM_GETNEIGH, NLM_F_DUMP, &ndm, sizeof(ndm)));
        if (r < 0)
            break;
        /* A copy of the socket's callbacks keeps the error callback. */
        struct nl_cb *sock_cb = nl_socket_get_cb(net->sk);
        struct nl_cb *cb = nl_cb_clone(sock_cb);
        nl_cb_put(sock_cb);
        if (!cb)
            abort();
        nl_cb_set(cb, NL_CB_VALID, NL_CB_CUSTOM, fdb_dump_entry, d);
        r = st_net_nlret(net, nl_recvmsgs(net->sk, cb));
        nl_cb_put(cb);
        if (r != -EAGAIN)
            break;
    }
    if (strict)
        (void)setsockopt(fd, SOL_NETLINK, NETLINK_GET_STRICT_CHK, &off, sizeof(off));
    return r;
}

static int fdb_change(struct st_net *net, int cmd, int ifindex, const struct fdb_entry *e,
                      int flags)
{
    struct rtnl_neigh *neigh = rtnl_neigh_alloc();
    struct nl_addr *lladdr = nl_addr_build(AF_LLC, e->mac, 6);
    struct nl_addr *dst = nl_addr_build(AF_INET, &e->dst, 4);
    if (!neigh || !lladdr || !dst)
        abort();
    /* The destination first: setting it checks it against the family. */
    rtnl_neigh_set_dst(neigh, dst);
    rtnl_neigh_set_family(neigh, AF_BRIDGE);
    rtnl_neigh_set_lladdr(neigh, lladdr);
    rtnl_neigh_set_ifindex(neigh, ifindex);
    rtnl_neigh_set_flags(neigh, NTF_SELF);
    rtnl_neigh_set_state(neigh, NUD_PERMANENT | NUD_NOARP);
    int r = cmd == RTM_NEWNEIGH ? rtnl_neigh_add(net->sk, neigh, flags)
                                : rtnl_neigh_delete(net->sk, neigh, flags);
    nl_addr_put(dst);
    nl_addr_put(lladdr);
    rtnl_neigh_put(neigh);
    return st_net_nlret(net, r);
}

int st_net_bridge_fdb_pin(struct st_net *net, const char *port_ifname, const char *mac,
                          struct st_err **err)
{
    unsigned m[6];
    uint8_t bytes[6];
    char tail;
    if (!mac || sscanf(mac, "%2x:%2x:%2x:%2x:%2x:%2x%c", &m[0], &m[1], &m[2], &m[3], &m[4], &m[5],
                       &tail) != 6)
        return st_err_set(err, -EINVAL, "pinning '%s' on %s: not a MAC address", mac ? mac : "",
                          port_ifname);
    for (size_t i = 0; i < 6; i++)
        bytes[i] = (uint8_t)m[i];
    int ifindex = st_net_link_index(net, port_ifname);
    if (ifindex < 0)
        return st_err_set(err, ifindex, "pinning %s on %s: %s", mac, port_ifname,
                          strerror(-ifindex));
    struct rtnl_neigh *neigh = rtnl_neigh_alloc();
    struct nl_addr *lladdr = nl_addr_build(AF_LLC, bytes, 6);
    if (!neigh || !lladdr)
        abort();
    rtnl_neigh_set_family(neigh, AF_BRIDGE);
    rtnl_neigh_set_lladdr(neigh, lladdr);
    rtnl_neigh_set_ifindex(neigh, ifindex);
    rtnl_neigh_set_flags(neigh, NTF_MASTER | NTF_STICKY);
    rtnl_neigh_set_state(neigh, NUD_NOARP); /* "static" */
    int r = st_net_nlret(net, rtnl_neigh_add(net->sk, neigh, NLM_F_CREATE | NLM_F_REPLACE));
    nl_addr_put(lladdr);
    rtnl_neigh_put(neigh);
    return r < 0 ? st_net_fail(net, err, "pinning %s on %s", mac, port_ifname) : 0;
}

static bool mac_is_zero(const uint8_t mac[6])
{
    static const uint8_t zero[6];
    return !memcmp(mac, zero, 6);
}

static int fdb_parse_entries(const char *vxlan, json_t *entries, struct fdb_entry **ret, size_t *n,
                             struct st_err **err)
{
    if (!json_is_array(entries))
        return st_err_set(err, -EINVAL, "syncing the FDB of %s: entries are not a list", vxlan);
    size_t count = json_array_size(entries);
    struct fdb_entry *list = st_new0(struct fdb_entry, count);
    size_t i;
    json_t *v;
    json_array_foreach(entries, i, v)
    {
        const char *mac = json_string_value(json_object_get(v, "mac"));
        const char *dst = json_string_value(json_object_get(v, "dst"));
        if (st_net_parse_mac(mac, list[i].mac) < 0 || st_net_parse_ipv4(dst, &list[i].dst) < 0) {
            free(list);
            return st_err_set(err, -EINVAL,
                              "syncing the FDB of %s: invalid entry %zu (mac %s, dst %s)", vxlan, i,
                              mac ? mac : "missing", dst ? dst : "missing");
        }
    }
    *ret = list;
    *n = count;
    return 0;
}

static const char *fdb_describe(const struct fdb_entry *e, char buf[64])
{
    char ip[INET_ADDRSTRLEN];
    inet_ntop(AF_INET, &e->dst, ip, sizeof(ip));
    snprintf(buf, 64, "%02x:%02x:%02x:%02x:%02x:%02x dst %s", e->mac[0], e->mac[1], e->mac[2],
             e->mac[3], e->mac[4], e->mac[5], ip);
    return buf;
}

int st_net_fdb_sync(struct st_net *net, const char *vxlan, json_t *entries, struct st_err **err)
{
    st_autofree struct fdb_entry *want = NULL;
    size_t nwant = 0;
    int r = fdb_parse_entries(vxlan, entries, &want, &nwant, err);
    if (r < 0)
        return r;
    int ifindex = st_net_link_index(net, vxlan);
    if (ifindex < 0)
        return st_err_set(err, ifindex, "syncing the FDB of %s: %s", vxlan, strerror(-ifindex));

    struct fdb_dump have = {.ifindex = ifindex};
    r = fdb_read(net, &have);
    st_autofree struct fdb_entry *have_entries = have.entries;
    if (r < 0)
        return st_net_fail(net, err, "reading the FDB of %s", vxlan);

    for (size_t i = 0; i < have.n; i++) {
        for (size_t j = 0; j < nwant; j++) {
            if (!memcmp(have.entries[i].mac, want[j].mac, 6) &&
                have.entries[i].dst.s_addr == want[j].dst.s_addr) {
                have.entries[i].keep = true;
                want[j].keep = true;
            }
        }
    }
    char desc[64];
    /* Removals first: a MAC that moved to another VTEP must lose its old
     * destination before it gets the new one. */
    for (size_t i = 0; i < have.n; i++) {
        if (have.entries[i].keep)
            continue;
        r = fdb_change(net, RTM_DELNEIGH, ifindex, &have.entries[i], 0);
        if (r < 0 && r != -ENOENT)
            return st_net_fail(net, err, "removing FDB entry %s from %s",
                               fdb_describe(&have.entries[i], desc), vxlan);
    }
    for (size_t j = 0; j < nwant; j++) {
        if (want[j].keep)
            continue;
        int flags = NLM_F_CREATE | (mac_is_zero(want[j].mac) ? NLM_F_APPEND : NLM_F_REPLACE);
        r = fdb_change(net, RTM_NEWNEIGH, ifindex, &want[j], flags);
        if (r < 0)
            return st_net_fail(net, err, "adding FDB entry %s to %s", fdb_describe(&want[j], desc),
                               vxlan);
    }
    return 0;
}

/* ---- veth pairs ---- */

/* Whether host (a veth here) and the link named peer_name in the peer's
 * namespace are the two ends of one pair. A veth reports its peer's
 * ifindex as IFLA_LINK; both directions must agree, since ifindexes are
 * per namespace and another pair's could coincide. */
static bool veth_paired(struct rtnl_link *host, struct rtnl_link *peer)
{
    return peer && link_is(host, "veth") && link_is(peer, "veth") &&
           rtnl_link_get_link(host) == rtnl_link_get_ifindex(peer) &&
           rtnl_link_get_link(peer) == rtnl_link_get_ifindex(host);
}

static int veth_create(struct st_net *net, struct st_net *peer_net, const struct st_net_veth *veth,
                       int master, const uint8_t *mac, struct st_err **err)
{
    st_autoclose int nsfd = open(veth->peer_netns, O_RDONLY | O_CLOEXEC);
    if (nsfd < 0)
        return st_err_errno(err, "creating veth %s: opening %s", veth->host_name, veth->peer_netns);
    struct rtnl_link *link = rtnl_link_veth_alloc();
    if (!link)
        abort();
    struct rtnl_link *peer = rtnl_link_veth_get_peer(link);
    rtnl_link_set_name(link, veth->host_name);
    rtnl_link_set_name(peer, veth->peer_name);
    rtnl_link_set_ns_fd(peer, nsfd);
    if (veth->mtu) {
        rtnl_link_set_mtu(link, veth->mtu);
        rtnl_link_set_mtu(peer, veth->mtu);
    }
    if (mac) {
        struct nl_addr *addr = nl_addr_build(AF_LLC, mac, 6);
        if (!addr)
            abort();
        rtnl_link_set_addr(peer, addr);
        nl_addr_put(addr);
    }
    if (master)
        rtnl_link_set_master(link, master);
    rtnl_link_set_flags(link, IFF_UP);
    int r = st_net_nlret(net, rtnl_link_add(net->sk, link, NLM_F_CREATE | NLM_F_EXCL));
    rtnl_link_put(peer);
    rtnl_link_veth_release(link);
    if (r < 0)
        return st_net_fail(net, err, "creating veth %s (peer %s in %s)", veth->host_name,
                           veth->peer_name, veth->peer_netns);
    /* The peer's own header (and so its IFF_UP) is not part of the
     * request libnl builds; it comes up from inside its namespace. */
    r = st_net_link_set_up(peer_net, veth->peer_name, err);
    if (r < 0)
        return st_err_prefix(err, r, "in %s", veth->peer_netns);
    return 0;
}

int st_net_veth_ensure(struct st_net *net, const struct st_net_veth *veth, struct st_err **err)
{
    int r = st_net_check_ifname(veth->host_name, err);
    if (r < 0)
        return r;
    r = st_net_check_ifname(veth->peer_name, err);
    if (r < 0)
        return r;
    if (!veth->peer_netns)
        return st_err_set(err, -EINVAL, "creating veth %s: no namespace for its peer",
                          veth->host_name);
    uint8_t mac[6];
    if (veth->peer_mac && st_net_parse_mac(veth->peer_mac, mac) < 0)
        return st_err_set(err, -EINVAL, "creating veth %s: invalid MAC address '%s'",
                          veth->host_name, veth->peer_mac);
    int master = master_index(net, veth->host_name, veth->master, err);
    if (master < 0)
        return master;
    st_autoptr(st_net) peer_net = NULL;
    r = st_net_open(veth->peer_netns, &peer_net, err);
    if (r < 0)
        return st_err_prefix(err, r, "creating veth %s", veth->host_name);

    st_autoptr(rtnl_link) host = NULL;
    r = st_net_link_get(net, veth->host_name, &host, err);
    if (r < 0 && r != -ENODEV)
        return r;
    st_autoptr(rtnl_link) peer = NULL;
    int pr = st_net_link_get(peer_net, veth->peer_name, &peer, err);
    if (pr < 0 && pr != -ENODEV)
        return st_err_prefix(err, pr, "in %s", veth->peer_netns);

    if (host && !link_is(host, "veth"))
        return st_err_set(err, -EEXIST, "creating veth %s: a %s device has that name",
                          veth->host_name,
                          rtnl_link_get_type(host) ? rtnl_link_get_type(host) : "non-veth");
    if (host && !veth_paired(host, peer)) {
        /* Its peer went with a namespace that was deleted (or was never
         * moved): the pair cannot be repaired, only replaced. Deleting
         * one end deletes both. */
        st_log_info("veth_recreate", "host=%s peer=%s netns=%s", veth->host_name, veth->peer_name,
                    veth->peer_netns);
        r = st_net_link_delete(net, veth->host_name, err);
        if (r < 0)
            return st_err_prefix(err, r, "replacing stale veth %s", veth->host_name);
        rtnl_link_put(st_steal(&host));
    }
    if (!host) {
        if (peer)
            return st_err_set(err, -EEXIST,
                              "creating veth %s: %s already exists in %s and is not its peer",
                              veth->host_name, veth->peer_name, veth->peer_netns);
        return veth_create(net, peer_net, veth, master, veth->peer_mac ? mac : NULL, err);
    }

    r = link_converge(net, host, veth->mtu, veth->master ? master : -1, err);
    if (r < 0)
        return r;
    st_autoptr(rtnl_link) changes = rtnl_link_alloc();
    bool change = false;
    if (veth->mtu && rtnl_link_get_mtu(peer) != veth->mtu) {
        rtnl_link_set_mtu(changes, veth->mtu);
        change = true;
    }
    struct nl_addr *cur = rtnl_link_get_addr(peer);
    if (veth->peer_mac &&
        (!cur || nl_addr_get_len(cur) != 6 || memcmp(nl_addr_get_binary_addr(cur), mac, 6))) {
        st_autoptr(nl_addr) addr = nl_addr_build(AF_LLC, mac, 6);
        if (!addr)
            abort();
        rtnl_link_set_addr(changes, addr);
        change = true;
    }
    if (!(rtnl_link_get_flags(peer) & IFF_UP)) {
        rtnl_link_set_flags(changes, IFF_UP);
        change = true;
    }
    if (!change)
        return 0;
    r = link_apply(peer_net, peer, changes, "updating", err);
    if (r < 0)
        return st_err_prefix(err, r, "in %s", veth->peer_netns);
    return 0;
}
