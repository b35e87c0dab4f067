/* One rescheduling pass over the routers (see router_ha.h): which routers
 * need a host, which node takes each (the usable one hosting the fewest,
 * counting the ones this pass has moved already, so the routers of a
 * stopped node spread over the rest), and the compare-and-swap that binds
 * them (router.c). */
#include "network/router_ha.h"

#include <errno.h>
#include <string.h>

#include "lib/cleanup.h"
#include "lib/json.h"
#include "lib/log.h"
#include "network/l3-priv.h"
#include "network/model.h"
#include "network/network-priv.h"

int st_router_ha_hosts(struct st_kv *kv, int64_t now_ms, json_t **ret, struct st_err **err)
{
    return l3_router_hosts(kv, now_ms, ret, err);
}

void st_router_ha_pass_clear(struct st_router_ha_pass *pass)
{
    if (!pass)
        return;
    json_decref(pass->stranded);
    *pass = (struct st_router_ha_pass){0};
}

/* Binds one router to the least-loaded usable host; 1 when moved. */
static int move_one(struct st_kv *kv, json_t *router, json_t *hosts, struct st_router_ha_pass *pass)
{
    const char *id = l3_str(router, "id");
    const char *to = l3_router_least_loaded(hosts);
    if (!to) {
        json_t *host = json_object_get(router, "host");
        json_object_set_new(pass->stranded, id,
                            json_is_string(host) ? json_copy(host) : json_null());
        return 0;
    }
    st_autofree char *from = NULL;
    st_autoptr(st_err) err = NULL;
    int r = l3_router_rebind(kv, id, hosts, to, &from, &err);
    if (r < 0) {
        pass->failed++;
        st_log_warn("router_reschedule_failed", "id=%s to=%s error=\"%s\"", id, to,
                    st_err_msg(err));
        return r;
    }
    if (r == 0) {
        pass->settled++;
        return 0;
    }
    pass->moved++;
    json_t *load = json_object_get(hosts, to);
    json_integer_set(load, json_integer_value(load) + 1);
    st_log_info("router_rescheduled", "id=%s from=%s to=%s", id, from ? from : "-", to);
    return 1;
}

int st_router_ha_reschedule(struct st_kv *kv, int64_t now_ms, struct st_router_ha_pass *ret,
                            struct st_err **err)
{
    *ret = (struct st_router_ha_pass){.stranded = json_object()};
    st_autoptr(json_t) hosts = NULL;
    st_autoptr(json_t) routers = NULL;
    int r = l3_router_hosts(kv, now_ms, &hosts, err);
    if (r < 0)
        return r;
    if ((r = net_doc_list(kv, ST_NETWORK_ROUTERS_PREFIX, &routers, err)) < 0)
        return st_err_prefix(err, r, "listing routers");
    l3_router_count(hosts, routers);
    size_t i;
    json_t *router;
    json_array_foreach(routers, i, router)
    {
        ret->routers++;
        const char *host = l3_str(router, "host");
        if (l3_str(router, "id") && !(host && json_object_get(hosts, host)))
            move_one(kv, router, hosts, ret);
    }
    return 0;
}
