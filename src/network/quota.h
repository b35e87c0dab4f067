/* Neutron's per-project quotas: the limits (Neutron's defaults, -1 =
 * unlimited, an admin may set others per project) and the usage that every
 * create is checked against, with Neutron's answer when it is over:
 * -EDQUOT "Quota exceeded for resources: ['network']." (409 OverQuota at the
 * API).
 *
 * /network/quotas/<project>                  {"network": 5, ...}: what an admin
 *                                            set (absent keys: the default)
 * /network/quota-usage/<project>/<resource>  {"used": n}: the counter
 * /network/quota-claims/<project>/<resource>/<id>  {"at": ms}: one per
 *                                            resource counted
 *
 * Why a counter and one claim key per resource: "count, then create" lets
 * two racing creates both see 9 of 10. A create instead claims its
 * resource's id before it writes the resource, in one store transaction
 * (st_kv_txn) that compares the counter's revision and the claim's absence
 * and writes the counter + 1 and the claim: of two racers one transaction
 * fails, re-reads (now seeing the other's count) and re-checks, so a limit
 * is never overshot. A delete releases the id afterwards, the mirror
 * transaction (counter - 1, claim deleted, both compared). Every write of a
 * claim writes the counter too, so the counter is always the number of
 * claims, and each create or delete costs the store a few hundred bytes
 * whatever the project's size (a document listing every id, the format
 * before, cost O(n) per create; such a document is converted to claims, in
 * transactions that keep the count, the first time it is touched).
 *
 * A crash between a claim and the write (or between a delete and its
 * release) leaves a claim with no resource; it is corrected when it
 * matters, level-triggered: a create that would be refused (and a read of
 * the usage) recounts the project's real resources, drops the claims that
 * have none (older than a grace period: younger ones are creates in
 * flight) and adopts resources that have no claim (made before quotas were
 * kept, or by a path that died half-way), then decides. The ids are what
 * make this safe: a release of a claim that a recount already dropped is a
 * no-op, where a bare counter would be decremented twice. One counter per
 * resource kind keeps port creates from contending with network creates.
 * The first claim of a project and kind (no counter yet) recounts too, so
 * projects that existed before are counted from the start. An unlimited
 * (-1) resource is counted all the same, by the same one transaction.
 *
 * What Neutron makes on its own (a project's default security group and its
 * rules, the egress rules of a new group, router interface ports) is
 * counted but never refused, as in Neutron: st_network_quota_charge. Ports
 * without a project (router gateways, floating IPs' addresses) count for
 * nobody. */
#pragma once

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "lib/err.h"

struct st_kv;

#define ST_NETWORK_QUOTAS_PREFIX       "/network/quotas/"
#define ST_NETWORK_QUOTA_USAGE_PREFIX  "/network/quota-usage/"
#define ST_NETWORK_QUOTA_CLAIMS_PREFIX "/network/quota-claims/"

/* Neutron's quota resources, in the order `quota show` lists them. */
enum st_network_quota_resource {
    ST_NETWORK_QUOTA_NETWORK,
    ST_NETWORK_QUOTA_SUBNET,
    ST_NETWORK_QUOTA_PORT,
    ST_NETWORK_QUOTA_ROUTER,
    ST_NETWORK_QUOTA_FLOATINGIP,
    ST_NETWORK_QUOTA_SECURITY_GROUP,
    ST_NETWORK_QUOTA_SECURITY_GROUP_RULE,
    /* stored and shown, never counted: stratos has no such resources */
    ST_NETWORK_QUOTA_SUBNETPOOL,
    ST_NETWORK_QUOTA_RBAC_POLICY,
    ST_NETWORK_QUOTA_N,
};
/* The resources before this one are counted and enforced. */
#define ST_NETWORK_QUOTA_N_COUNTED ST_NETWORK_QUOTA_SUBNETPOOL

struct st_network_quota {
    int64_t limit[ST_NETWORK_QUOTA_N]; /* -1 = unlimited */
};

struct st_network_quota_usage {
    int64_t used[ST_NETWORK_QUOTA_N];     /* resources that exist */
    int64_t reserved[ST_NETWORK_QUOTA_N]; /* claims of creates in flight */
};

/* "network", "security_group_rule", ...: Neutron's keys. */
const char *st_network_quota_name(enum st_network_quota_resource res);
/* Neutron's defaults: network 100, subnet 100, port 500, router 10,
 * floatingip 50, security_group 10, security_group_rule 100, subnetpool -1,
 * rbac_policy 10. */
void st_network_quota_defaults(struct st_network_quota *ret);

/* The project's limits (the defaults where nothing was set). */
int st_network_quota_get(struct st_kv *kv, const char *project_id, struct st_network_quota *ret,
                         struct st_err **err);
/* Applies the body of PUT /v2.0/quotas/<project>, {"network": 5, "port":
 * "20", "check_limit": true}: integers (or their text) in -1..2^31-1 for
 * Neutron's keys; anything else -EINVAL in Neutron's words. With
 * check_limit true (and force not true), a limit below what the project
 * uses now is refused (-EINVAL). *ret: the limits now. */
int st_network_quota_set(struct st_kv *kv, const char *project_id, json_t *changes,
                         struct st_network_quota *ret, struct st_err **err);
/* Back to the defaults (removes what was set); absent is fine. */
int st_network_quota_reset(struct st_kv *kv, const char *project_id, struct st_err **err);
/* Every project with limits set: [{"project_id", "tenant_id", "network",
 * ...}] (new reference), as GET /v2.0/quotas lists them. */
int st_network_quota_list(struct st_kv *kv, json_t **ret, struct st_err **err);

/* What the project uses, corrected as a refused create would correct it
 * (the correction is kept). */
int st_network_quota_usage(struct st_kv *kv, const char *project_id,
                           struct st_network_quota_usage *ret, struct st_err **err);

/* Claims id (a resource about to be written) in the project's usage, or
 * -EDQUOT "Quota exceeded for resources: ['<resource>']." when the limit is
 * reached even after a recount. Idempotent per id; a project NULL or ""
 * counts nothing. */
int st_network_quota_claim(struct st_kv *kv, const char *project_id,
                           enum st_network_quota_resource res, const char *id, struct st_err **err);
/* Counts ids without checking the limit: what Neutron makes on its own. */
int st_network_quota_charge(struct st_kv *kv, const char *project_id,
                            enum st_network_quota_resource res, const char *const *ids, size_t n,
                            struct st_err **err);
/* Releases ids (deleted resources, failed creates); absent ones are fine.
 * Failures are logged as well as returned: callers whose resource is gone
 * already may ignore them (a recount drops the entry later). */
int st_network_quota_release(struct st_kv *kv, const char *project_id,
                             enum st_network_quota_resource res, const char *const *ids, size_t n,
                             struct st_err **err);
/* st_network_quota_release of one id, for the delete paths. */
void st_network_quota_release_one(struct st_kv *kv, const char *project_id,
                                  enum st_network_quota_resource res, const char *id);
