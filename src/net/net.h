/* The node's data plane primitives (DESIGN.md "Networking"): network
 * namespaces, Linux bridges, VXLAN devices and their FDB, veth pairs,
 * addresses, routes and sysctls, all through netlink (libnl-route-3) —
 * never by running `ip`. The agent's network reconcile (agent/netplan.c)
 * composes them; every "ensure" is idempotent (it creates what is missing,
 * fixes what differs and leaves what is right alone), so a crash at any
 * point is repaired by running it again.
 *
 * Namespaces are named by a path: a file on which the namespace is
 * bind-mounted (as `ip netns` does under /run/netns), or NULL for the
 * namespace the calling process runs in (the "host": the root namespace, or
 * the namespace a test agent was started in). Work inside another
 * namespace happens on a short-lived thread that setns()es into it, so the
 * daemon's other threads never change namespace.
 *
 * Device names are checked (st_net_check_ifname): 1..15 characters from
 * [A-Za-z0-9_.-], as the kernel allows. */
#pragma once

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "lib/cleanup.h"
#include "lib/err.h"

#define ST_NET_IFNAME_MAX 15
#define ST_NET_VXLAN_PORT 4789

int st_net_check_ifname(const char *name, struct st_err **err);

/* ---- namespaces (netns.c) ---- */
/* Creates a network namespace bound at path (the file is created, mode
 * 0644; its directory must exist). 0 if one is already bound there. The
 * new namespace's "lo" is up. */
int st_net_netns_create(const char *path, struct st_err **err);
/* Unmounts and removes path; 0 if absent. Processes still inside keep the
 * namespace alive until they exit. */
int st_net_netns_delete(const char *path, struct st_err **err);
bool st_net_netns_exists(const char *path);
/* Runs fn(userdata) on a thread inside the namespace at path (NULL: the
 * caller's) and returns what fn returned. */
int st_net_netns_run(const char *path, int (*fn)(void *userdata, struct st_err **err),
                     void *userdata, struct st_err **err);
/* Writes a sysctl under /proc/sys ("net/ipv4/ip_forward", "1") in the
 * namespace at path (NULL: the caller's). */
int st_net_sysctl_set(const char *netns, const char *key, const char *value, struct st_err **err);

/* ---- a netlink handle on one namespace (link.c) ---- */
struct st_net;
/* Opens a route netlink socket inside the namespace at path (NULL: the
 * caller's). The socket stays bound to that namespace. */
int st_net_open(const char *netns, struct st_net **ret, struct st_err **err);
void st_net_close(struct st_net *net);
ST_DEFINE_AUTOPTR(st_net, st_net_close)

bool st_net_link_exists(struct st_net *net, const char *name);
/* ifindex, or -ENODEV. */
int st_net_link_index(struct st_net *net, const char *name);
/* Names of the links whose name starts with prefix (new JSON array). */
int st_net_link_list(struct st_net *net, const char *prefix, json_t **ret, struct st_err **err);
/* 0 if absent. */
int st_net_link_delete(struct st_net *net, const char *name, struct st_err **err);
int st_net_link_set_up(struct st_net *net, const char *name, struct st_err **err);
int st_net_link_set_mtu(struct st_net *net, const char *name, unsigned mtu, struct st_err **err);
/* master NULL: detach from any bridge. */
int st_net_link_set_master(struct st_net *net, const char *name, const char *master,
                           struct st_err **err);

/* A bridge, up, with the given MTU (0: leave as is). */
int st_net_bridge_ensure(struct st_net *net, const char *name, unsigned mtu, struct st_err **err);

struct st_net_vxlan {
    const char *name; /* "stvx-1001" */
    uint32_t vni;
    const char *local;  /* VTEP address, dotted IPv4 */
    const char *dev;    /* uplink device or NULL */
    uint16_t port;      /* 0: ST_NET_VXLAN_PORT */
    unsigned mtu;       /* 0: leave as is */
    const char *master; /* bridge to enslave it to, or NULL */
};
/* A VXLAN device with learning off (the FDB is programmed: head-end
 * replication as Neutron's l2population), up. A device of that name whose
 * VNI, local address or port differ is recreated. */
int st_net_vxlan_ensure(struct st_net *net, const struct st_net_vxlan *vx, struct st_err **err);
/* Makes the VXLAN device's FDB exactly `entries`: [{"mac":
 * "00:00:00:00:00:00" (flood to this peer) | "fa:16:3e:..", "dst":
 * "192.0.2.11"}]: adds what is missing, removes what is not listed. */
int st_net_fdb_sync(struct st_net *net, const char *vxlan, json_t *entries, struct st_err **err);
/* Pins mac ("fa:16:3e:..") to the bridge port port_ifname: a static,
 * sticky entry of its bridge's FDB, which frames arriving elsewhere with that
 * source address cannot move (a router's port after it moved here from a
 * node that still answers for it over VXLAN). Idempotent. */
int st_net_bridge_fdb_pin(struct st_net *net, const char *port_ifname, const char *mac,
                          struct st_err **err);

struct st_net_veth {
    const char *host_name;  /* the end that stays here: "stp-<10 hex>" */
    const char *peer_name;  /* its name inside peer_netns: "eth0" */
    const char *peer_netns; /* path of the namespace it is moved into */
    const char *peer_mac;   /* "fa:16:3e:.." or NULL */
    unsigned mtu;           /* both ends; 0: leave */
    const char *master;     /* bridge for the host end, or NULL */
};
/* A veth pair, both ends up, the peer moved into peer_netns and renamed.
 * If host_name exists but its peer is not in peer_netns (the namespace was
 * recreated), the pair is recreated. */
int st_net_veth_ensure(struct st_net *net, const struct st_net_veth *veth, struct st_err **err);

/* ---- addresses and routes (addr.c) ---- */
/* Makes the IPv4 addresses of `ifname` exactly `cidrs` (["10.0.2.5/24"]):
 * adds what is missing, removes other IPv4 addresses. */
int st_net_addr_sync(struct st_net *net, const char *ifname, json_t *cidrs, struct st_err **err);
/* Adds one address (0 if present). */
int st_net_addr_ensure(struct st_net *net, const char *ifname, const char *cidr,
                       struct st_err **err);
/* The default route via gateway on ifname (replaced if different). */
int st_net_route_default_ensure(struct st_net *net, const char *ifname, const char *gateway,
                                struct st_err **err);
/* A route to dst ("10.1.0.0/16") via gateway (NULL: on-link) on ifname. */
int st_net_route_ensure(struct st_net *net, const char *ifname, const char *dst,
                        const char *gateway, struct st_err **err);

/* ---- announcements (arp.c) ---- */
/* Sends one gratuitous ARP (a broadcast request for its own address) for ip
 * on ifname inside the namespace at netns (NULL: the caller's), so peers
 * that knew the address at another MAC update at once. */
int st_net_arp_announce(const char *netns, const char *ifname, const char *ip, struct st_err **err);
