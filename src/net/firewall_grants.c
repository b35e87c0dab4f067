/* What each port of a node view is allowed, and what a new view takes
 * away (see firewall.h, "revoking what is already established").
 *
 * A grant is one rule of one of the port's groups in a canonical form: the
 * fields that decide what it lets through (direction, ethertype, protocol,
 * port range, remote prefix), with a remote group replaced by one grant per
 * member address, so a server leaving a remote group is a revoked grant too.
 * Grants are compared as strings; rule ids do not matter (a rule deleted and
 * created again the same allows the same). */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "firewall-priv.h"
#include "firewall.h"
#include "lib/cleanup.h"
#include "lib/json.h"

static const char *const rule_fields[] = {"direction",      "ethertype",      "protocol",
                                          "port_range_min", "port_range_max", "remote_ip_prefix"};

static void grant_add(json_t *grants, json_t *rule, const char *member)
{
    st_autoptr(json_t) g = json_object();
    for (size_t i = 0; i < ST_ARRAY_SIZE(rule_fields); i++) {
        json_t *v = json_object_get(rule, rule_fields[i]);
        if (v && !json_is_null(v))
            json_object_set(g, rule_fields[i], v);
    }
    if (member)
        json_object_set_new(g, "remote_ip_prefix", json_string(member));
    st_autofree char *key = json_dumps(g, JSON_SORT_KEYS | JSON_COMPACT);
    if (!key)
        abort();
    json_object_set_new(grants, key, json_true());
}

static json_t *grants_of(json_t *port, json_t *groups)
{
    json_t *grants = json_object();
    json_t *ps = json_object_get(port, "port_security");
    if (ps && !json_is_true(ps)) {
        json_object_set_new(grants, "*", json_true());
        return grants;
    }
    size_t i, j, k;
    json_t *gid, *rule, *m;
    json_array_foreach(json_object_get(port, "security_groups"), i, gid)
    {
        json_t *group =
            json_object_get(groups, json_string_value(gid) ? json_string_value(gid) : "");
        json_array_foreach(json_object_get(group, "rules"), j, rule)
        {
            const char *remote = json_string_value(json_object_get(rule, "remote_group_id"));
            if (!remote) {
                grant_add(grants, rule, NULL);
                continue;
            }
            json_t *rg = json_object_get(groups, remote);
            json_array_foreach(json_object_get(rg, "members"), k, m)
            {
                if (json_string_value(m))
                    grant_add(grants, rule, json_string_value(m));
            }
        }
    }
    return grants;
}

int st_fw_port_grants(json_t *view, json_t **ret, struct st_err **err)
{
    st_autoptr(json_t) out = json_object();
    json_t *groups = json_object_get(view, "security_groups");
    size_t i, k;
    json_t *port, *nw;
    json_array_foreach(json_object_get(view, "ports"), i, port)
    {
        const char *id = json_string_value(json_object_get(port, "id"));
        const char *ip = json_string_value(json_object_get(port, "ip"));
        const char *net = json_string_value(json_object_get(port, "network_id"));
        if (!id || !net)
            return st_err_set(err, -EINVAL, "port %zu of the view has no id or network", i);
        if (!ip || !st_fw_ipv4_valid(ip))
            continue; /* nothing tracked by address */
        json_t *vni = NULL;
        json_array_foreach(json_object_get(view, "networks"), k, nw)
        {
            const char *nid = json_string_value(json_object_get(nw, "id"));
            if (nid && strcmp(nid, net) == 0)
                vni = json_object_get(nw, "vni");
        }
        json_object_set_new(out, id,
                            json_pack("{s:i, s:s, s:o}", "zone", st_fw_vni_zone(vni), "ip", ip,
                                      "grants", grants_of(port, groups)));
    }
    *ret = st_steal(&out);
    return 0;
}

static bool grants_cover(json_t *old, json_t *new_)
{
    if (json_object_get(new_, "*"))
        return true;
    const char *key;
    json_t *v;
    json_object_foreach(old, key, v)
    {
        if (!json_object_get(new_, key))
            return false;
    }
    return true;
}

json_t *st_fw_revoked(json_t *old_grants, json_t *new_grants)
{
    json_t *out = json_array();
    const char *id;
    json_t *was;
    json_object_foreach(old_grants, id, was)
    {
        json_t *now = json_object_get(new_grants, id);
        if (now && json_equal(json_object_get(now, "ip"), json_object_get(was, "ip")) &&
            json_equal(json_object_get(now, "zone"), json_object_get(was, "zone")) &&
            grants_cover(json_object_get(was, "grants"), json_object_get(now, "grants")))
            continue;
        json_array_append_new(out, json_pack("{s:O, s:O}", "zone", json_object_get(was, "zone"),
                                             "ip", json_object_get(was, "ip")));
    }
    return out;
}
