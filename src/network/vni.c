/* Segments: each tenant network's VXLAN network identifier and the one flat
 * network on the physical network "external". A VNI is owned through the
 * key /network/vnis/<vni> (written only if absent), so two networks made at
 * the same moment on two controllers never share a segment; the flat
 * external network likewise through /network/flat/external. */
#include "network/core-priv.h"

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "lib/cleanup.h"
#include "network/model.h"
#include "store/kv.h"

#define FLAT_EXTERNAL_KEY "/network/flat/external"

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return x < y ? -1 : x > y;
}

static int vnis_in_use(struct st_kv *kv, int64_t **ret, size_t *ret_n, struct st_err **err)
{
    st_autofree int64_t *used = NULL;
    size_t n = 0, cap = 0;
    st_autofree char *after = NULL;
    for (;;) {
        st_autoptr(st_kv_list) l = NULL;
        int r = st_kv_list(kv, ST_NETWORK_VNIS_PREFIX, after, 4096, &l, err);
        if (r < 0)
            return r;
        for (size_t i = 0; i < l->count; i++) {
            char *end;
            long long v = strtoll(l->entries[i].key + strlen(ST_NETWORK_VNIS_PREFIX), &end, 10);
            if (*end)
                continue;
            if (n == cap) {
                cap = cap ? cap * 2 : 64;
                used = st_xrealloc(used, cap * sizeof(*used));
            }
            used[n++] = v;
        }
        if (!l->more || l->count == 0)
            break;
        free(after);
        after = st_strdup(l->entries[l->count - 1].key);
    }
    if (n)
        qsort(used, n, sizeof(*used), cmp_i64);
    *ret = st_steal(&used);
    *ret_n = n;
    return 0;
}

static int claim_vni(struct st_kv *kv, int64_t vni, const char *network_id, struct st_err **err)
{
    st_autofree char *key = st_sprintf("%s%" PRId64, ST_NETWORK_VNIS_PREFIX, vni);
    return net_claim(kv, key, network_id, err);
}

int net_vni_allocate(struct st_kv *kv, const char *network_id, int64_t want, int64_t *ret_vni,
                     struct st_err **err)
{
    if (want) {
        if (want < 1 || want > ST_NETWORK_VNI_MAX)
            return st_err_set(err, -EINVAL,
                              "Invalid input for operation: provider:segmentation_id %" PRId64
                              " is out of range (1 to %d).",
                              want, ST_NETWORK_VNI_MAX);
        int r = claim_vni(kv, want, network_id, err);
        if (r == -EEXIST)
            return st_err_set(err, -EEXIST,
                              "Unable to create the network. The tunnel ID %" PRId64 " is in use.",
                              want);
        if (r == 0)
            *ret_vni = want;
        return r;
    }
    st_autofree int64_t *used = NULL;
    size_t n = 0, next = 0;
    int r = vnis_in_use(kv, &used, &n, err);
    if (r < 0)
        return st_err_prefix(err, r, "allocating a VNI");
    /* Walk the pool and the sorted used list together: the first gap wins;
     * a lost race moves on to the next candidate. */
    for (int64_t vni = ST_NETWORK_VNI_MIN; vni <= ST_NETWORK_VNI_MAX; vni++) {
        while (next < n && used[next] < vni)
            next++;
        if (next < n && used[next] == vni)
            continue;
        r = claim_vni(kv, vni, network_id, err);
        if (r == -EEXIST)
            continue;
        if (r < 0)
            return st_err_prefix(err, r, "allocating a VNI");
        *ret_vni = vni;
        return 0;
    }
    return st_err_set(err, -ENOSPC,
                      "Unable to create the network. No tenant network is "
                      "available for allocation.");
}

int net_vni_release(struct st_kv *kv, int64_t vni, struct st_err **err)
{
    st_autofree char *key = st_sprintf("%s%" PRId64, ST_NETWORK_VNIS_PREFIX, vni);
    return net_unclaim(kv, key, err);
}

int net_flat_claim(struct st_kv *kv, const char *network_id, struct st_err **err)
{
    int r = net_claim(kv, FLAT_EXTERNAL_KEY, network_id, err);
    if (r == -EEXIST)
        return st_err_set(err, -EBUSY,
                          "Unable to create the flat network. Physical network "
                          "external is in use.");
    return r;
}

int net_flat_release(struct st_kv *kv, const char *network_id, struct st_err **err)
{
    /* Only the owner's release counts: a retried delete must not free a
     * later network's claim. */
    st_autoptr(st_kv_entry) e = NULL;
    if (st_kv_get(kv, FLAT_EXTERNAL_KEY, &e, NULL) < 0)
        return 0;
    st_autofree char *want = st_sprintf("\"%s\"", network_id);
    if (strcmp(e->value, want) != 0)
        return 0;
    int r = st_kv_delete(kv, FLAT_EXTERNAL_KEY, e->mod_rev, NULL, err);
    return r == -ENOENT || r == -ECANCELED ? 0 : r;
}
