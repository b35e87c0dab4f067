/* Helpers shared by the L3 side of the network service (security groups and
 * their rules, routers, floating IPs, the node view); not part of its
 * interface. The core helpers (documents, visibility, filters, IPAM,
 * internal ports) are in network-priv.h. */
#pragma once

#include <errno.h>
#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include "lib/err.h"
#include "network/network.h"

struct st_kv;

/* How often a read-modify-write retries when another writer got in first. */
#define L3_CAS_ATTEMPTS 100

static inline const char *l3_str(json_t *o, const char *k)
{
    return json_string_value(json_object_get(o, k));
}

/* Whether s is the string v (NULL-tolerant). */
static inline bool l3_streq(const char *s, const char *v)
{
    return s && v && strcmp(s, v) == 0;
}

/* An id that can name a key under a prefix: anything else is simply "not
 * found" (never a path outside the prefix). */
static inline bool l3_id_ok(const char *id)
{
    size_t n = id ? strlen(id) : 0;
    if (n == 0 || n > 64)
        return false;
    for (size_t i = 0; i < n; i++)
        if (id[i] == '/' || (unsigned char)id[i] < 0x20 || id[i] == 0x7f)
            return false;
    return true;
}

/* The project a new resource belongs to: the caller's or, for an admin
 * only, the one the request names (project_id, else tenant_id). what: "a
 * router", for the refusal's wording. */
static inline int l3_owner(const struct st_network_caller *who, json_t *req, const char *what,
                           const char **ret_project, struct st_err **err)
{
    const char *project = who->project_id;
    const char *asked =
        l3_str(req, "project_id") ? l3_str(req, "project_id") : l3_str(req, "tenant_id");
    if (asked && !l3_streq(asked, project)) {
        if (!who->is_admin)
            return st_err_set(err, -EPERM, "Only admins may create %s for another project.", what);
        project = asked;
    }
    *ret_project = project;
    return 0;
}

/* Neutron makes a project's default group on its first call; a caller
 * without a project (system scope) has none to make. */
static inline int l3_ensure_default(struct st_kv *kv, const struct st_network_caller *who,
                                    struct st_err **err)
{
    if (!who->project_id || !*who->project_id)
        return 0;
    return st_security_group_ensure_default(kv, who->project_id, NULL, err);
}

/* Whether a port holds an address of subnet_id. */
static inline bool l3_port_has_subnet(json_t *port, const char *subnet_id)
{
    size_t i;
    json_t *ip;
    json_array_foreach(json_object_get(port, "fixed_ips"), i, ip)
    {
        if (l3_streq(l3_str(ip, "subnet_id"), subnet_id))
            return true;
    }
    return false;
}

/* Whether a port is router_id's, of the kind owner
 * ("network:router_interface", "network:router_gateway"). */
static inline bool l3_is_router_port(json_t *port, const char *router_id, const char *owner)
{
    return l3_streq(l3_str(port, "device_id"), router_id) &&
           l3_streq(l3_str(port, "device_owner"), owner);
}

#define L3_OWNER_INTERFACE  "network:router_interface"
#define L3_OWNER_GATEWAY    "network:router_gateway"
#define L3_OWNER_FLOATINGIP "network:floatingip"

/* "2030-01-01T11:00:00Z", now. */
void l3_now(char buf[32]);

/* A rule of security group sg_id with every match field null (all
 * protocols, any address): the shape of model.h. (security_group_rule.c) */
json_t *l3_sg_rule_new(const char *sg_id, const char *project_id, const char *direction,
                       const char *ethertype, const char *remote_group_id);
/* The rules of group sg (its stored document, as l3_sg_read returns it):
 * its keys in creation order, then those that a document from before
 * still carries, but none naming a remote group that is gone (model.h).
 * *ret: a new array. (security_group_rule.c) */
int l3_sg_rules_read(struct st_kv *kv, json_t *sg, json_t **ret, struct st_err **err);
/* The group as the API shows it: a copy of the stored document with
 * tenant_id, its rules embedded, and the rule changes counted in its
 * revision_number and updated_at. (security_group_rule.c) */
int l3_sg_present(struct st_kv *kv, json_t *sg, json_t **ret, struct st_err **err);
/* Writes a new group (no rules inside) and its first rules in one
 * transaction; -ECANCELED when the group's key exists. */
int l3_sg_write_new(struct st_kv *kv, json_t *sg, json_t *rules, struct st_err **err);
/* Deletes what a deleted group (its last document) leaves: its rules with
 * their keys and quota entries, and the rules of other groups that name it
 * as their remote group. Idempotent; best effort (logged). */
void l3_sg_rules_purge(struct st_kv *kv, json_t *sg);
/* The ids of the rules of the project's groups that exist: {"<id>": true}
 * (new reference), for the quota's recount. */
int l3_sg_rule_ids(struct st_kv *kv, const char *project_id, json_t **ret, struct st_err **err);

/* Reads a security group the caller may see ("Security group X does not
 * exist"). (security_group.c) */
int l3_sg_read(struct st_kv *kv, const struct st_network_caller *who, const char *id, json_t **ret,
               int64_t *ret_rev, struct st_err **err);

/* Reads a router the caller may see ("Router X could not be found."). */
int l3_router_read(struct st_kv *kv, const struct st_network_caller *who, const char *id,
                   json_t **ret, int64_t *ret_rev, struct st_err **err);
/* Bumps the router's document (and gives it a host if it has none), so that
 * a concurrent delete's compare-and-swap fails; -ENOENT when it is gone. */
int l3_router_touch(struct st_kv *kv, const char *id, struct st_err **err);
/* *ret_used: whether a floating IP is associated through router_id (with
 * subnet set: to an address of that subnet). */
int l3_router_fips_using(struct st_kv *kv, const char *router_id, json_t *subnet, bool *ret_used,
                         struct st_err **err);

/* The nodes that can run routers at now_ms, {"<node>": 0}: they reported l3
 * and their lease (compute's node document) holds. (router.c) */
int l3_router_hosts(struct st_kv *kv, int64_t now_ms, json_t **ret, struct st_err **err);
/* Adds to each host of hosts the number of routers (documents) on it. */
void l3_router_count(json_t *hosts, json_t *routers);
/* The host of hosts with the lowest count (ties: the first by name), or
 * NULL when hosts is empty; the string is hosts' key. */
const char *l3_router_least_loaded(json_t *hosts);
/* The usable l3 node hosting the fewest routers now, or NULL when no node
 * can run one. Caller frees. */
char *l3_router_pick_host(struct st_kv *kv);
/* Sets router id's host to `to` unless its host (read here) is one of
 * hosts, with compare-and-swap on the document read: returns 1 and the host
 * it had (*ret_from, NULL when none; caller frees) if this call moved it, 0
 * if it was left (its host is usable, or the router is gone). */
int l3_router_rebind(struct st_kv *kv, const char *id, json_t *hosts, const char *to,
                     char **ret_from, struct st_err **err);
