/* The netplan thread and the instance hooks (netplan.h). The thread tells
 * the controller what the node offers, then long-polls the node view with
 * the digest of the one it holds (the poll parks until the view changes or
 * the wait ends) and applies it; an unchanged view at the end of a wait is
 * applied again, which repairs what drifted. */
#include "agent/netplan.h"

#include <arpa/inet.h>
#include <errno.h>
#include <ifaddrs.h>
#include <net/if.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "agent/client.h"
#include "agent/netplan-priv.h"
#include "lib/cleanup.h"
#include "lib/json.h"
#include "lib/log.h"
#include "lib/times.h"
#include "net/firewall.h"
#include "net/net.h"

#define NETPLAN_BACKOFF_MAX_MS 10000

static bool stopping(struct st_netplan *np)
{
    return np->stop && __atomic_load_n(np->stop, __ATOMIC_SEQ_CST);
}

static void sleep_ms(struct st_netplan *np, int64_t ms)
{
    while (ms > 0 && !stopping(np)) {
        int64_t step = ms > 100 ? 100 : ms;
        struct timespec ts = {0, step * 1000000L};
        nanosleep(&ts, NULL);
        ms -= step;
    }
}

/* The IPv4 address of the interface that holds the default route, read
 * from /proc/net/route; NULL when there is none. */
static char *default_route_address(void)
{
    FILE *f = fopen("/proc/net/route", "re");
    if (!f)
        return NULL;
    char line[256], ifname[IF_NAMESIZE + 1] = "";
    while (fgets(line, sizeof(line), f)) {
        char dev[64];
        unsigned long dst = 1;
        if (sscanf(line, "%63s %lx", dev, &dst) == 2 && dst == 0 && strlen(dev) <= IF_NAMESIZE) {
            snprintf(ifname, sizeof(ifname), "%.*s", IF_NAMESIZE, dev);
            break;
        }
    }
    fclose(f);
    if (!ifname[0])
        return NULL;
    struct ifaddrs *ifs = NULL;
    if (getifaddrs(&ifs) < 0)
        return NULL;
    char *found = NULL;
    for (struct ifaddrs *i = ifs; i && !found; i = i->ifa_next) {
        if (!i->ifa_addr || i->ifa_addr->sa_family != AF_INET || strcmp(i->ifa_name, ifname))
            continue;
        char buf[INET_ADDRSTRLEN];
        const struct sockaddr_in *sin = (const struct sockaddr_in *)i->ifa_addr;
        if (inet_ntop(AF_INET, &sin->sin_addr, buf, sizeof(buf)))
            found = st_strdup(buf);
    }
    freeifaddrs(ifs);
    return found;
}

static int register_node(struct st_netplan *np, struct st_err **err)
{
    st_autofree char *path = st_sprintf("/internal/v1/nodes/%s/network", np->node);
    st_autoptr(json_t) body = json_pack("{s:s, s:i, s:s, s:b}", "vtep", np->vtep, "uplink_mtu",
                                        1500, "external_bridge", np->ext_bridge, "l3", 1);
    return st_agent_client_request(np->client, "PUT", path, body, 0, NULL, NULL, err);
}

/* GET the view: wait_s 0 answers at once; otherwise parks while the view's
 * digest is still `digest`. */
static int fetch_view(struct st_netplan *np, struct st_agent_client *c, const char *digest,
                      unsigned wait_s, json_t **ret, struct st_err **err)
{
    st_autofree char *path = digest && digest[0]
                                 ? st_sprintf("/internal/v1/nodes/%s/network?wait=%u&digest=%s",
                                              np->node, wait_s, digest)
                                 : st_sprintf("/internal/v1/nodes/%s/network", np->node);
    return st_agent_client_request(c, "GET", path, NULL, (int)wait_s + 15, NULL, ret, err);
}

/* Takes a fetched {"digest", "view"} (lock held). */
static void take_view(struct st_netplan *np, json_t *answer)
{
    json_t *view = json_object_get(answer, "view");
    const char *digest = json_string_value(json_object_get(answer, "digest"));
    if (!json_is_object(view))
        return;
    json_decref(np->view);
    np->view = json_incref(view);
    snprintf(np->digest, sizeof(np->digest), "%s", digest ? digest : "");
}

static void report_ports(struct st_netplan *np)
{
    pthread_mutex_lock(&np->lock);
    st_autoptr(json_t) now = np->plugged ? json_deep_copy(np->plugged) : json_object();
    bool same = np->reported && json_equal(now, np->reported);
    pthread_mutex_unlock(&np->lock);
    if (same || json_object_size(now) == 0)
        return;
    st_autofree char *path = st_sprintf("/internal/v1/nodes/%s/port-status", np->node);
    st_autoptr(st_err) err = NULL;
    if (st_agent_client_request(np->client, "PUT", path, now, 0, NULL, NULL, &err) < 0) {
        st_log_warn("netplan_report_failed", "node=%s error=\"%s\"", np->node, st_err_msg(err));
        return;
    }
    pthread_mutex_lock(&np->lock);
    json_decref(np->reported);
    np->reported = json_incref(now);
    pthread_mutex_unlock(&np->lock);
}

static void *netplan_main(void *arg)
{
    struct st_netplan *np = arg;
    int64_t backoff = 0;
    bool registered = false;
    while (!stopping(np)) {
        st_autoptr(st_err) err = NULL;
        if (!registered) {
            if (register_node(np, &err) < 0) {
                st_log_warn("netplan_register_failed", "node=%s error=\"%s\"", np->node,
                            st_err_msg(err));
                backoff = backoff ? backoff * 2 : 500;
                if (backoff > NETPLAN_BACKOFF_MAX_MS)
                    backoff = NETPLAN_BACKOFF_MAX_MS;
                sleep_ms(np, backoff);
                continue;
            }
            registered = true;
            st_log_info("netplan_registered", "node=%s vtep=%s external_bridge=%s", np->node,
                        np->vtep, np->ext_bridge);
        }
        char digest[17];
        pthread_mutex_lock(&np->lock);
        memcpy(digest, np->digest, sizeof(digest));
        pthread_mutex_unlock(&np->lock);
        st_autoptr(json_t) answer = NULL;
        int r = fetch_view(np, np->client, digest, np->wait_s, &answer, &err);
        if (r < 0) {
            if (r != -ECANCELED)
                st_log_warn("netplan_poll_failed", "node=%s error=\"%s\"", np->node,
                            st_err_msg(err));
            backoff = backoff ? backoff * 2 : 500;
            if (backoff > NETPLAN_BACKOFF_MAX_MS)
                backoff = NETPLAN_BACKOFF_MAX_MS;
            sleep_ms(np, backoff);
            registered = r != -ENOENT && registered;
            continue;
        }
        backoff = 0;
        pthread_mutex_lock(&np->lock);
        take_view(np, answer);
        st_autoptr(st_err) aerr = NULL;
        int64_t t0 = st_time_mono_ns();
        r = netplan_apply(np, &aerr);
        pthread_mutex_unlock(&np->lock);
        if (r < 0)
            st_log_warn("netplan_apply_failed", "node=%s error=\"%s\"", np->node, st_err_msg(aerr));
        else
            st_log_debug("netplan_applied", "node=%s ms=%.1f", np->node,
                         (st_time_mono_ns() - t0) / 1e6);
        report_ports(np);
    }
    return NULL;
}

static bool has_ports(json_t *view, json_t *ports)
{
    size_t i, j;
    json_t *want, *have;
    json_array_foreach(ports, i, want)
    {
        const char *id = json_string_value(json_object_get(want, "port_id"));
        bool found = false;
        json_array_foreach(json_object_get(view, "ports"), j, have)
        {
            const char *hid = json_string_value(json_object_get(have, "id"));
            if (id && hid && strcmp(id, hid) == 0) {
                found = true;
                break;
            }
        }
        if (!found)
            return false;
    }
    return true;
}

/* The DNS servers of a server's ports, first port first, no repeats. */
static json_t *dns_of(json_t *view, const char *server_id)
{
    json_t *out = json_array();
    size_t i, j;
    json_t *port, *a;
    json_array_foreach(json_object_get(view, "ports"), i, port)
    {
        const char *sid = json_string_value(json_object_get(port, "server_id"));
        if (!sid || strcmp(sid, server_id) != 0)
            continue;
        json_array_foreach(json_object_get(port, "dns_nameservers"), j, a)
        {
            bool seen = false;
            size_t k;
            json_t *b;
            json_array_foreach(out, k, b) seen = seen || json_equal(a, b);
            if (json_is_string(a) && !seen)
                json_array_append(out, a);
        }
    }
    return out;
}

int st_netplan_instance_prepare(struct st_netplan *np, struct st_agent_client *c, json_t *server,
                                char **ret_netns, json_t **ret_dns, struct st_err **err)
{
    *ret_netns = NULL;
    *ret_dns = NULL;
    const char *id = json_string_value(json_object_get(server, "id"));
    json_t *ports = json_object_get(json_object_get(server, "spec"), "ports");
    if (!np || !id || json_array_size(ports) == 0)
        return 0;
    st_autofree char *ns = st_sprintf("%s/%s", np->netns_dir, id);
    pthread_mutex_lock(&np->lock);
    int r = 0;
    if (!np->view || !has_ports(np->view, ports)) {
        st_autoptr(json_t) answer = NULL;
        r = fetch_view(np, c, NULL, 0, &answer, err);
        if (r == 0)
            take_view(np, answer);
    }
    if (r == 0 && !has_ports(np->view, ports))
        r = st_err_set(err, -EAGAIN, "the ports of server %s are not in node %s's view yet", id,
                       np->node);
    if (r == 0)
        r = st_net_netns_create(ns, err);
    if (r == 0) {
        /* the whole view: the port's network may be new on this node, and
         * the firewall must know the port before the instance sends */
        r = netplan_apply(np, err);
        json_t *port;
        size_t i;
        json_array_foreach(ports, i, port)
        {
            const char *pid = json_string_value(json_object_get(port, "port_id"));
            const char *st = json_string_value(json_object_get(np->plugged, pid ? pid : ""));
            if (r == 0 && (!st || strcmp(st, "ACTIVE") != 0))
                r = st_err_set(err, -EIO, "port %s of server %s could not be plugged", pid, id);
        }
        if (r == 0)
            netplan_announce(np, id);
    }
    if (r == 0)
        *ret_dns = dns_of(np->view, id);
    pthread_mutex_unlock(&np->lock);
    if (r < 0)
        return r;
    *ret_netns = st_steal(&ns);
    return 0;
}

int st_netplan_instance_release(struct st_netplan *np, const char *server_id, struct st_err **err)
{
    if (!np || !server_id)
        return 0;
    st_autofree char *ns = st_sprintf("%s/%s", np->netns_dir, server_id);
    pthread_mutex_lock(&np->lock);
    /* the veth pair goes with the namespace; remove_stale catches a host
     * end that outlives it */
    int r = st_net_netns_delete(ns, err);
    pthread_mutex_unlock(&np->lock);
    return r;
}

void st_netplan_wake(struct st_netplan *np)
{
    if (np && np->client)
        st_agent_client_wake(np->client);
}

static void netplan_free(struct st_netplan *np)
{
    st_agent_client_free(np->client);
    json_decref(np->view);
    json_decref(np->reported);
    json_decref(np->plugged);
    json_decref(np->router_rules);
    free(np->fw_applied);
    json_decref(np->fw_grants);
    free(np->node);
    free(np->data_dir);
    free(np->netns_dir);
    free(np->vtep);
    free(np->ext_bridge);
    free(np->controller_url);
    free(np->token);
    pthread_mutex_destroy(&np->lock);
    free(np);
}

int st_netplan_start(const struct st_netplan_config *cfg, struct st_netplan **ret,
                     struct st_err **err)
{
    const char *ext =
        cfg->external_bridge && cfg->external_bridge[0] ? cfg->external_bridge : "br-ex";
    int r = st_net_check_ifname(ext, err);
    if (r < 0)
        return st_err_prefix(err, r, "external bridge");
    struct st_netplan *np = st_new0(struct st_netplan, 1);
    pthread_mutex_init(&np->lock, NULL);
    np->router_rules = json_object();
    np->node = st_strdup(cfg->node_name);
    np->data_dir = st_strdup(cfg->data_dir);
    np->netns_dir = st_sprintf("%s/netns", cfg->data_dir);
    np->ext_bridge = st_strdup(ext);
    np->controller_url = st_strdup(cfg->controller_url);
    np->token = st_strdup(cfg->token);
    np->wait_s = cfg->poll_wait_s ? cfg->poll_wait_s : 20;
    np->stop = cfg->stop;
    if (cfg->vtep && cfg->vtep[0]) {
        struct in_addr a;
        if (inet_pton(AF_INET, cfg->vtep, &a) != 1) {
            netplan_free(np);
            return st_err_set(err, -EINVAL, "VTEP address '%s' is not an IPv4 address", cfg->vtep);
        }
        np->vtep = st_strdup(cfg->vtep);
    } else {
        np->vtep = default_route_address();
        if (!np->vtep)
            np->vtep = st_strdup("127.0.0.1");
    }
    if (mkdir(np->netns_dir, 0755) < 0 && errno != EEXIST) {
        r = st_err_errno(err, "creating %s", np->netns_dir);
        netplan_free(np);
        return r;
    }
    /* netlink must work here: a node without it cannot plug ports */
    st_autoptr(st_net) probe = NULL;
    if ((r = st_net_open(NULL, &probe, err)) < 0) {
        netplan_free(np);
        return st_err_prefix(err, -EOPNOTSUPP, "networking is not available on this node");
    }
    np->client = st_agent_client_new(np->controller_url, np->token, np->stop);
    r = pthread_create(&np->thread, NULL, netplan_main, np);
    if (r != 0) {
        netplan_free(np);
        return st_err_set(err, -r, "starting the netplan thread: %s", strerror(r));
    }
    np->started = true;
    *ret = np;
    return 0;
}

void st_netplan_stop(struct st_netplan *np)
{
    if (!np)
        return;
    if (np->started) {
        st_agent_client_wake(np->client);
        pthread_join(np->thread, NULL);
    }
    netplan_free(np);
}
