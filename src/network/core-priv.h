/* Helpers shared by the core files of the network service (networks,
 * subnets, ports, VNIs, servers' ports), beyond network-priv.h's contract
 * with the rest of src/network. Not part of any interface. */
#pragma once

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "lib/err.h"

struct st_kv;
struct st_network_caller;

/* The mask of an IPv4 prefix length, host order (0 for /0). */
static inline uint32_t net_prefix_mask(int prefixlen)
{
    return prefixlen <= 0 ? 0 : 0xffffffffu << (32 - prefixlen);
}

/* A small value kept as a JSON string ("<uuid>") under key, CAS-absent:
 * 0, -EEXIST when the key is taken (err unset: the caller words it). */
int net_claim(struct st_kv *kv, const char *key, const char *owner, struct st_err **err);
/* Deletes key; absent is fine (idempotent). */
int net_unclaim(struct st_kv *kv, const char *key, struct st_err **err);
/* Deletes every key under prefix (the claims of a network or subnet that
 * is going, leftovers of ports that died half-way included); best effort. */
void net_unclaim_all(struct st_kv *kv, const char *prefix);

/* VNIs (vni.c): the lowest free VNI of [ST_NETWORK_VNI_MIN,
 * ST_NETWORK_VNI_MAX], or `want` when non-zero (-EEXIST "Unable to create
 * the network. The tunnel ID X is in use."). */
int net_vni_allocate(struct st_kv *kv, const char *network_id, int64_t want, int64_t *ret_vni,
                     struct st_err **err);
int net_vni_release(struct st_kv *kv, int64_t vni, struct st_err **err);
/* The one flat network on physical network "external" (-EBUSY when there
 * is one already: "Unable to create the flat network. Physical network
 * external is in use."). */
int net_flat_claim(struct st_kv *kv, const char *network_id, struct st_err **err);
int net_flat_release(struct st_kv *kv, const char *network_id, struct st_err **err);

/* Deleting a network or subnet while ports are being made on it is a race:
 * the delete marks the document "_deleting" (CAS), then looks for users,
 * then deletes or unmarks; a maker writes its claim first and then calls
 * net_parent_check, which waits out a mark. 0: the parent stands; -ENOENT:
 * gone (err unset); -EBUSY: still being deleted after a while. */
int net_parent_mark(struct st_kv *kv, const char *prefix, const char *id, bool deleting,
                    json_t **ret_doc, struct st_err **err);
int net_parent_check(struct st_kv *kv, const char *prefix, const char *id, struct st_err **err);
/* Whether doc carries a live delete mark. */
bool net_doc_marked(json_t *doc);

/* Ports (port.c) */
/* Fills what a port shows but does not store: status from
 * /network/port-status/<id>, binding:host_id and binding:vif_type from the
 * server document of a compute port. */
void net_port_decorate(struct st_kv *kv, json_t *port);
/* A compute port whose server document is gone: its owner will never
 * release it. */
bool net_port_is_orphan(struct st_kv *kv, json_t *port);
/* Gives a port the user brought to a server back (device_id, device_owner
 * and binding cleared) instead of deleting it. */
int net_port_unbind(struct st_kv *kv, const char *port_id, struct st_err **err);
/* The ports under ST_NETWORK_PORTS_PREFIX whose `key` is `value`. */
int net_ports_where(struct st_kv *kv, const char *key, const char *value, json_t **ret,
                    struct st_err **err);

/* "Invalid input for <field>. Reason: '<value>' exceeds maximum length of
 * <max>." for name and description, when present in req. */
int net_check_text(json_t *req, const char *field, size_t max, struct st_err **err);
/* An update's text field: req's value (null: "") into doc, when present. */
void net_set_text(json_t *doc, json_t *req, const char *field);
/* Neutron refuses a project_id/tenant_id other than the caller's unless
 * the caller is an admin; *ret_project: the project that will own it. */
int net_owner(const struct st_network_caller *who, json_t *req, const char **ret_project,
              struct st_err **err);
/* Reads an optional boolean of req into *ret (left as is when absent):
 * "Invalid input for <field>. Reason: '<v>' is not a valid boolean value." */
int net_get_bool(json_t *req, const char *field, bool *ret, struct st_err **err);

/* What a new port is made of (port_alloc.c); the caller has validated it. */
struct net_port_spec {
    const char *project_id;
    json_t *network;         /* the stored network document */
    json_t *fixed_ips;       /* [{"subnet_id"?, "ip_address"?}]; NULL: one address from
                                the network's first subnet (if it has any) */
    const char *mac;         /* NULL: a random fa:16:3e:xx:xx:xx */
    const char *name;        /* NULL: "" */
    const char *description; /* NULL: "" */
    const char *device_id;   /* NULL: "" */
    const char *device_owner;
    json_t *security_groups; /* array of ids (borrowed); NULL: [] */
    bool port_security;
    bool admin_state_up;
    /* Counted in the project's port quota but never refused by it: the
     * service's own ports (router interfaces), as Neutron's plugin makes
     * them past the API's quota check. */
    bool over_quota_ok;
};
/* Claims the port in the project's quota (quota.h), the MAC and the
 * addresses, writes the port, then makes sure its network and subnets
 * still stand (undoing everything when not). *ret: the stored document. */
int net_port_make(struct st_kv *kv, const struct net_port_spec *spec, json_t **ret,
                  struct st_err **err);
/* Releases what the stored port doc holds: its addresses and its MAC. */
void net_port_release_claims(struct st_kv *kv, json_t *port);

/* Subnets (subnet_check.c): checks req's addressing fields and writes the
 * complete set (cidr, gateway_ip, allocation_pools, dns_nameservers,
 * host_routes, enable_dhcp) into out; base: the stored subnet on update
 * (what req leaves out is kept), NULL on create (defaults of
 * openstack-api-subset.md 5.2). */
int net_subnet_check(json_t *req, json_t *base, json_t *out, struct st_err **err);
bool net_cidrs_overlap(const char *a, const char *b);

/* The security groups of a new or updated port of `project`: req_sgs (ids;
 * each must be the project's, or any project's for an admin) or, when NULL
 * and port security is on and the owner is not "network:*", the project's
 * default group (made if missing). Off with groups: -EINVAL. *ret: ids. */
int net_port_security_groups(struct st_kv *kv, const struct st_network_caller *who,
                             const char *project, json_t *req_sgs, bool port_security,
                             const char *device_owner, json_t **ret, struct st_err **err);
