/* Deleting tracked connections (firewall.h: "revoking what is already
 * established") through libnetfilter_conntrack: one dump of the
 * namespace's IPv4 table, the entries of the target (zone, address) pairs
 * kept aside, then each destroyed on a second handle (a handle in the middle
 * of a dump cannot be used for another request). The kernel has no filter
 * by zone for dumps in the versions Debian ships, so the match is ours. */
#include <arpa/inet.h>
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/socket.h>

#include <libnetfilter_conntrack/libnetfilter_conntrack.h>

#include "firewall.h"
#include "lib/cleanup.h"
#include "net.h"

struct target {
    uint16_t zone;
    uint32_t ip; /* network order */
};

struct dump {
    const struct target *targets;
    size_t n_targets;
    struct nf_conntrack **found;
    size_t n_found, cap;
};

static bool matches(const struct dump *d, struct nf_conntrack *ct)
{
    uint16_t zone = nfct_attr_is_set(ct, ATTR_ZONE) > 0 ? nfct_get_attr_u16(ct, ATTR_ZONE) : 0;
    uint32_t src = nfct_get_attr_u32(ct, ATTR_ORIG_IPV4_SRC);
    uint32_t dst = nfct_get_attr_u32(ct, ATTR_ORIG_IPV4_DST);
    for (size_t i = 0; i < d->n_targets; i++)
        if (d->targets[i].zone == zone && (d->targets[i].ip == src || d->targets[i].ip == dst))
            return true;
    return false;
}

static int on_entry(enum nf_conntrack_msg_type type, struct nf_conntrack *ct, void *data)
{
    (void)type;
    struct dump *d = data;
    if (!matches(d, ct))
        return NFCT_CB_CONTINUE;
    if (d->n_found == d->cap) {
        d->cap = d->cap ? 2 * d->cap : 16;
        d->found = realloc(d->found, d->cap * sizeof(*d->found));
        if (!d->found)
            abort();
    }
    d->found[d->n_found++] = ct;
    return NFCT_CB_STOLEN; /* ours now; freed after the destroy */
}

static void nfct_closep(struct nfct_handle **h)
{
    if (*h)
        nfct_close(*h);
}

static int load_targets(json_t *targets, struct target **ret, size_t *ret_n, struct st_err **err)
{
    size_t n = json_array_size(targets);
    st_autofree struct target *v = st_new0(struct target, n ? n : 1);
    for (size_t i = 0; i < n; i++) {
        json_t *t = json_array_get(targets, i);
        json_int_t zone = json_integer_value(json_object_get(t, "zone"));
        const char *ip = json_string_value(json_object_get(t, "ip"));
        struct in_addr a;
        if (zone < 0 || zone > 65535 || !ip || inet_pton(AF_INET, ip, &a) != 1)
            return st_err_set(err, -EINVAL, "conntrack target %zu: bad zone or address", i);
        v[i].zone = (uint16_t)zone;
        v[i].ip = a.s_addr;
    }
    *ret = st_steal(&v);
    *ret_n = n;
    return 0;
}

struct flush {
    json_t *targets;
    unsigned deleted;
};

static int flush_here(void *userdata, struct st_err **err)
{
    struct flush *f = userdata;
    struct dump d = {0};
    st_autofree struct target *v = NULL;
    int r = load_targets(f->targets, &v, &d.n_targets, err);
    if (r < 0)
        return r;
    d.targets = v;
    __attribute__((cleanup(nfct_closep))) struct nfct_handle *dumper = nfct_open(CONNTRACK, 0);
    __attribute__((cleanup(nfct_closep))) struct nfct_handle *killer = nfct_open(CONNTRACK, 0);
    if (!dumper || !killer)
        return st_err_errno(err, "opening a conntrack netlink socket");
    nfct_callback_register(dumper, NFCT_T_ALL, on_entry, &d);
    uint32_t family = AF_INET;
    if (nfct_query(dumper, NFCT_Q_DUMP, &family) < 0)
        r = st_err_errno(err, "dumping the conntrack table");
    for (size_t i = 0; i < d.n_found; i++) {
        /* ENOENT: it ended meanwhile, which is what was wanted */
        if (r == 0 && nfct_query(killer, NFCT_Q_DESTROY, d.found[i]) == 0)
            f->deleted++;
        else if (r == 0 && errno != ENOENT)
            r = st_err_errno(err, "deleting a tracked connection");
        nfct_destroy(d.found[i]);
    }
    free(d.found);
    return r;
}

int st_fw_conntrack_flush(const char *netns, json_t *targets, unsigned *ret_deleted,
                          struct st_err **err)
{
    struct flush f = {.targets = targets};
    int r = 0;
    if (json_array_size(targets) > 0)
        r = st_net_netns_run(netns, flush_here, &f, err);
    if (ret_deleted)
        *ret_deleted = f.deleted;
    return r;
}
