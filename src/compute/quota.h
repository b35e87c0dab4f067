/* Per-project compute quotas, as Nova keeps them: limits on instances, cores
 * and ram (MiB), with Nova's defaults (10 / 20 / 51200; -1 = unlimited), a
 * few more limits that are stored and shown (key_pairs, metadata_items,
 * server groups, injected files), and the usage that create is checked
 * against.
 *
 * /compute/quotas/<project_id>       the limits an admin set (absent keys
 *                                    and an absent document mean defaults)
 * /compute/quota-usage/<project_id>  {"instances": n, "cores": n, "ram": n}
 * /compute/quota-claims/<project_id>/<server_id>  {"cores", "ram", "at"}
 *
 * Why counters and claims: "count the project's servers, then write a new
 * one" lets two concurrent creates both see 9 of 10 and both succeed. A
 * create instead claims its share in one store transaction (st_kv_txn) that
 * compares the usage document's revision and the claim's absence, and
 * writes both the counters + 1 and the claim: of two concurrent creates one
 * transaction fails, re-reads (now seeing the other's counters) and
 * re-checks, so the limit is never overshot. Release is the mirror
 * transaction (counters - 1, claim deleted, both revisions compared). Each
 * costs a constant number of bytes whatever the project's size; a single
 * document listing every server (the format before, converted in place the
 * first time it is touched) cost O(n) per create and O(n^2) in the store's
 * history. The counters are always the sum of the claims.
 *
 * The server document is written after its claim; a crash between the two
 * leaves a claim without a server, which is released when it matters: a
 * create that would exceed the limit (and a read of the usage) lists the
 * project's claims and releases those whose server is marked deleted or
 * absent for longer than a grace period (younger ones are creates in
 * flight), so a phantom never blocks anyone for long, and the common path
 * stays one read and one transaction. Deleting a server releases its claim. */
#pragma once

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "lib/err.h"

struct st_kv;

#define ST_COMPUTE_QUOTAS_PREFIX "/compute/quotas/"
#define ST_COMPUTE_USAGE_PREFIX  "/compute/quota-usage/"
#define ST_COMPUTE_CLAIMS_PREFIX "/compute/quota-claims/"

/* Nova's quota keys in the order Nova shows them, with defaults. */
enum st_compute_quota_key {
    ST_QUOTA_INSTANCES,
    ST_QUOTA_CORES,
    ST_QUOTA_RAM,
    ST_QUOTA_KEY_PAIRS,
    ST_QUOTA_METADATA_ITEMS,
    ST_QUOTA_SERVER_GROUPS,
    ST_QUOTA_SERVER_GROUP_MEMBERS,
    ST_QUOTA_INJECTED_FILES,
    ST_QUOTA_INJECTED_FILE_CONTENT_BYTES,
    ST_QUOTA_INJECTED_FILE_PATH_BYTES,
    ST_QUOTA_N_KEYS,
};

struct st_compute_quota {
    int64_t limit[ST_QUOTA_N_KEYS]; /* -1 = unlimited */
};

struct st_compute_quota_usage {
    int64_t instances, cores, ram;
};

const char *st_compute_quota_key_name(enum st_compute_quota_key k);
void st_compute_quota_defaults(struct st_compute_quota *ret);

/* The project's limits (defaults where nothing was set). */
int st_compute_quota_get(struct st_kv *kv, const char *project_id, struct st_compute_quota *ret,
                         struct st_err **err);

/* Applies {"instances": 20, "cores": "40", ...} (integers >= -1; unknown keys
 * -EINVAL) and returns the new limits. A limit below what the project uses
 * now is refused as Nova does (-EINVAL) unless force. */
int st_compute_quota_set(struct st_kv *kv, const char *project_id, json_t *changes, bool force,
                         struct st_compute_quota *ret, struct st_err **err);

/* Back to the defaults (removes what was set). */
int st_compute_quota_reset(struct st_kv *kv, const char *project_id, struct st_err **err);

/* What the project's non-deleted servers use: the counters, after releasing
 * the claims left by a crash (reads every claim when any is counted). */
int st_compute_quota_usage(struct st_kv *kv, const char *project_id,
                           struct st_compute_quota_usage *ret, struct st_err **err);

/* Claims server_id's share (one instance, cores, ram) of the project's
 * limits if they allow, else -EDQUOT with Nova's message ("Quota exceeded
 * for instances: Requested 1, but already used 10 of 10 instances").
 * Idempotent per server_id. */
int st_compute_quota_reserve(struct st_kv *kv, const char *project_id, const char *server_id,
                             int64_t cores, int64_t ram_mb, struct st_err **err);

/* Releases server_id's claim from the project's usage (absent is fine). */
int st_compute_quota_release(struct st_kv *kv, const char *project_id, const char *server_id,
                             struct st_err **err);
