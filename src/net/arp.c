/* Gratuitous ARP: a port that comes up with an address another MAC held
 * before (addresses are reused once a server is gone) tells its network,
 * or its peers keep sending to the old MAC until their ARP entries age out
 * (tens of seconds). One broadcast ARP request for its own address, sent
 * from inside its namespace, as `arping -U` does. */
#include <arpa/inet.h>
#include <errno.h>
#include <linux/if_packet.h>
#include <net/ethernet.h>
#include <net/if.h>
#include <net/if_arp.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include "lib/cleanup.h"
#include "net/net.h"

struct announce {
    const char *ifname;
    struct in_addr ip;
};

struct arp_packet {
    struct arphdr h;
    unsigned char sha[ETH_ALEN];
    unsigned char spa[4];
    unsigned char tha[ETH_ALEN];
    unsigned char tpa[4];
} __attribute__((packed));

static void *closer(void *arg)
{
    close((int)(intptr_t)arg);
    return NULL;
}

/* Closing a packet socket waits for an RCU grace period (packet_release
 * calls synchronize_net: 10-30 ms here), which the port being plugged
 * need not wait for: a detached thread closes it. */
static void close_later(int fd)
{
    pthread_attr_t attr;
    pthread_t t;
    pthread_attr_init(&attr);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    if (pthread_create(&t, &attr, closer, (void *)(intptr_t)fd) != 0)
        close(fd);
    pthread_attr_destroy(&attr);
}

static int announce_inside(void *userdata, struct st_err **err)
{
    const struct announce *a = userdata;
    /* protocol 0: only sends, never receives */
    st_autoclose int fd = socket(AF_PACKET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return st_err_errno(err, "opening a packet socket");
    struct ifreq ifr = {0};
    snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "%s", a->ifname);
    if (ioctl(fd, SIOCGIFHWADDR, &ifr) < 0)
        return st_err_errno(err, "reading the MAC of %s", a->ifname);
    unsigned ifindex = if_nametoindex(a->ifname);
    if (!ifindex)
        return st_err_errno(err, "finding %s", a->ifname);
    struct arp_packet p = {
        .h = {.ar_hrd = htons(ARPHRD_ETHER),
              .ar_pro = htons(ETH_P_IP),
              .ar_hln = ETH_ALEN,
              .ar_pln = 4,
              .ar_op = htons(ARPOP_REQUEST)},
    };
    memcpy(p.sha, ifr.ifr_hwaddr.sa_data, ETH_ALEN);
    memcpy(p.spa, &a->ip, 4);
    memcpy(p.tpa, &a->ip, 4);
    struct sockaddr_ll to = {
        .sll_family = AF_PACKET,
        .sll_protocol = htons(ETH_P_ARP),
        .sll_ifindex = (int)ifindex,
        .sll_halen = ETH_ALEN,
        .sll_addr = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff},
    };
    if (sendto(fd, &p, sizeof(p), 0, (struct sockaddr *)&to, sizeof(to)) < 0)
        return st_err_errno(err, "sending a gratuitous ARP on %s", a->ifname);
    close_later(st_steal_fd(&fd));
    return 0;
}

int st_net_arp_announce(const char *netns, const char *ifname, const char *ip, struct st_err **err)
{
    int r = st_net_check_ifname(ifname, err);
    if (r < 0)
        return r;
    struct announce a = {.ifname = ifname};
    if (!ip || inet_pton(AF_INET, ip, &a.ip) != 1)
        return st_err_set(err, -EINVAL, "'%s' is not an IPv4 address", ip ? ip : "");
    return st_net_netns_run(netns, announce_inside, &a, err);
}
