/* Helpers shared by the files of the network service (common.c, ipam.c,
 * port.c); not part of its interface. */
#pragma once

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "lib/err.h"
#include "network/network.h"

struct st_kv;

/* A new document with Neutron's common fields: a fresh "id", "name",
 * "project_id", "description": "", "tags": [], "created_at" = "updated_at"
 * = now, "revision_number": 0. */
json_t *net_doc_new(const char *project_id, const char *name);

/* Reads prefix+id: -ENOENT (err left for the caller to word) when absent.
 * *ret_rev: the key's mod_rev, for net_doc_put. */
int net_doc_get(struct st_kv *kv, const char *prefix, const char *id, json_t **ret,
                int64_t *ret_rev, struct st_err **err);
/* Writes prefix+doc.id with compare-and-swap on expected_rev (ST_KV_ABSENT
 * to create; -ECANCELED when someone else wrote first). On an update
 * (expected_rev != ST_KV_ABSENT) bumps revision_number and updated_at. */
int net_doc_put(struct st_kv *kv, const char *prefix, json_t *doc, int64_t expected_rev,
                struct st_err **err);
/* Every document under prefix (new array), in key order. */
int net_doc_list(struct st_kv *kv, const char *prefix, json_t **ret, struct st_err **err);

/* net_doc_get of a document the caller may see (net_visible): one it may
 * not see is -ENOENT too, err unset either way for the caller to word. */
int net_doc_get_visible(struct st_kv *kv, const struct st_network_caller *who, const char *prefix,
                        const char *id, json_t **ret, int64_t *ret_rev, struct st_err **err);
/* The API's list: the documents under prefix that the caller sees
 * (net_list_visible) and that match filters, in API shape (new array). */
int net_doc_list_visible(struct st_kv *kv, const struct st_network_caller *who, const char *prefix,
                         json_t *filters, json_t **ret, struct st_err **err);

/* Reads id as the caller may see it, with its revision; not found is
 * worded by the reader, in its resource's words. */
typedef int net_doc_read_fn(struct st_kv *kv, const struct st_network_caller *who, const char *id,
                            json_t **ret, int64_t *ret_rev, struct st_err **err);
/* Applies req to doc (just read); 0 to write it, a negative errno to stop. */
typedef int net_doc_edit_fn(struct st_kv *kv, const struct st_network_caller *who, json_t *doc,
                            json_t *req, struct st_err **err);
/* A kind of document, as net_doc_show and net_doc_update handle it. */
struct net_doc_kind {
    const char *prefix;
    net_doc_read_fn *read;
    int attempts;     /* reads before giving up on a document others keep writing */
    int busy;         /* then: this errno, and "<noun> <id> kept changing; try again" */
    const char *noun; /* "Network", "floating IP" */
};
/* The API's get: kind->read, in API shape. */
int net_doc_show(struct st_kv *kv, const struct st_network_caller *who,
                 const struct net_doc_kind *kind, const char *id, json_t **ret,
                 struct st_err **err);
/* The API's update, a read-modify-write: reads with kind->read, applies
 * edit, writes with compare-and-swap, and starts again when another writer
 * got in first. *ret (NULL: not wanted): the document as written. */
int net_doc_update(struct st_kv *kv, const struct st_network_caller *who,
                   const struct net_doc_kind *kind, const char *id, json_t *req,
                   net_doc_edit_fn *edit, json_t **ret, struct st_err **err);

/* Whether the caller sees doc: same project, or admin asking for one item,
 * or a shared / external network. Lists use net_list_visible. */
bool net_visible(const struct st_network_caller *who, json_t *doc);
/* List scoping (openstack-api-subset.md 5.5): the caller's project only,
 * also for admins, plus docs with "shared" or "router:external" true. */
bool net_list_visible(const struct st_network_caller *who, json_t *doc);
/* Neutron's equality filters (network.h). */
bool net_filter_match(json_t *doc, json_t *filters);
/* The API shape of a stored document: a copy with "tenant_id". */
json_t *net_public(json_t *doc);

/* IPv4 helpers: parse "10.0.2.0/24" (host order); format. */
int net_cidr_parse(const char *cidr, uint32_t *ret_addr, int *ret_prefixlen);
int net_ip_parse(const char *ip, uint32_t *ret_addr);
void net_ip_format(uint32_t addr, char buf[16]);

/* Allocates an address in subnet (a stored subnet document): `want` (NULL:
 * the lowest free address of its allocation pools) for port_id, writing
 * /network/ipam/<subnet>/<ip> CAS-absent. -EEXIST "IP address X already
 * allocated in subnet Y", -ENOSPC "No more IP addresses available on
 * network Z." */
int net_ipam_allocate(struct st_kv *kv, json_t *subnet, const char *want, const char *port_id,
                      char ret_ip[16], struct st_err **err);
int net_ipam_release(struct st_kv *kv, const char *subnet_id, const char *ip, struct st_err **err);

/* Makes a port without the API's checks, for the service's own ports
 * (router interfaces and gateways, floating IPs): on network_id, an address
 * from subnet_id (`ip`, or the next free one when NULL), no security
 * groups, port security off. *ret: the stored document. */
int net_port_create_internal(struct st_kv *kv, const char *project_id, const char *network_id,
                             const char *subnet_id, const char *ip, const char *device_id,
                             const char *device_owner, json_t **ret, struct st_err **err);
/* Deletes a port and releases its addresses and MAC, without checks. */
int net_port_delete_internal(struct st_kv *kv, const char *port_id, struct st_err **err);
