/* What netns.c, link.c and addr.c share, and what the unit tests may use:
 * the netlink handle, the translation of libnl's results into the kernel's
 * own errno (libnl folds many errnos into one of its codes; the operator
 * wants "File exists", not "Object exists"), the kernel's extended-ack text
 * when it sent one, and the cleanup attributes of libnl's objects. */
#pragma once

#include <netinet/in.h>
#include <netlink/addr.h>
#include <netlink/cache.h>
#include <netlink/msg.h>
#include <netlink/netlink.h>
#include <netlink/route/addr.h>
#include <netlink/route/link.h>
#include <netlink/route/route.h>

#include "lib/cleanup.h"
#include "net/net.h"

struct st_net {
    struct nl_sock *sk;
    char *netns; /* path of its namespace or NULL, for messages */
    /* Set by the error callback from the kernel's NLMSG_ERROR; consumed by
     * st_net_nlret. */
    int kernel_errno;
    char kernel_msg[200];
    /* The last failure seen by st_net_nlret, for st_net_fail. */
    int last_code;
    char last_text[256];
};

/* Turns the result of a libnl call into 0 (r >= 0) or a negative errno: the
 * kernel's own when it answered with an error, otherwise the nearest errno
 * of libnl's code. Remembers the explanation for st_net_fail. Every libnl
 * call that talks to the kernel goes through it. */
int st_net_nlret(struct st_net *net, int r);
/* Sets err to "<what>: <explanation of the last failure>" and returns its
 * code. */
__attribute__((format(printf, 3, 4))) int st_net_fail(struct st_net *net, struct st_err **err,
                                                      const char *fmt, ...);

/* The link named name: 0 and *ret (a reference), -ENODEV without setting
 * err when absent, another error with err set. */
int st_net_link_get(struct st_net *net, const char *name, struct rtnl_link **ret,
                    struct st_err **err);

/* Strict parsers (no libnl leniency: "10.1" is not an address). */
int st_net_parse_ipv4(const char *s, struct in_addr *ret);
/* "10.0.2.5/24"; a missing prefix length is an error. */
int st_net_parse_cidr(const char *s, struct in_addr *ret_addr, unsigned *ret_prefixlen);
/* "fa:16:3e:00:00:01" */
int st_net_parse_mac(const char *s, uint8_t ret[6]);

ST_DEFINE_AUTOPTR(rtnl_link, rtnl_link_put)
ST_DEFINE_AUTOPTR(rtnl_addr, rtnl_addr_put)
ST_DEFINE_AUTOPTR(rtnl_route, rtnl_route_put)
ST_DEFINE_AUTOPTR(nl_addr, nl_addr_put)
ST_DEFINE_AUTOPTR(nl_cache, nl_cache_free)
ST_DEFINE_AUTOPTR(nl_msg, nlmsg_free)
