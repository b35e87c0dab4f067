/* Per-project compute quotas, as Nova keeps them: limits on instances, cores
 * and ram (MiB), with Nova's defaults (10 / 20 / 51200; -1 = unlimited), a
 * few more limits that are stored and shown (key_pairs, metadata_items,
 * server groups, injected files), and the usage that create is checked
 * against.
 *
 * /compute/quotas/<project_id>       the limits an admin set (absent keys
 *                                    and an absent document mean defaults)
 * /compute/quota-usage/<project_id>  {"servers": {"<uuid>": {"cores", "ram", "at"}}}
 *
 * Why a usage document: the store has compare-and-swap on one key but no
 * multi-key transaction, so "count the project's servers, then write a new
 * one" lets two concurrent creates both see 9 of 10 and both succeed. Every
 * create instead adds its server to the project's usage document with a
 * compare-and-swap on that document's revision: of two concurrent creates
 * one CAS fails, re-reads (now seeing the other's entry) and re-checks, so
 * the limit is never overshot. The server document is written after its
 * usage entry; a crash between the two leaves an entry without a server,
 * which is dropped when it matters (a create that would exceed the limit
 * checks entries older than a grace period against the servers, so a
 * phantom never blocks anyone for long, and the common path stays one read
 * and one write). Deleting a server releases its entry. */
#pragma once

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "lib/err.h"

struct st_kv;

#define ST_COMPUTE_QUOTAS_PREFIX "/compute/quotas/"
#define ST_COMPUTE_USAGE_PREFIX  "/compute/quota-usage/"

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

/* What the project's non-deleted servers use. */
int st_compute_quota_usage(struct st_kv *kv, const char *project_id,
                           struct st_compute_quota_usage *ret, struct st_err **err);

/* Adds server_id (cores, ram) to the project's usage if the limits allow,
 * else -EDQUOT with Nova's message ("Quota exceeded for instances: Requested
 * 1, but already used 10 of 10 instances"). Idempotent per server_id. */
int st_compute_quota_reserve(struct st_kv *kv, const char *project_id, const char *server_id,
                             int64_t cores, int64_t ram_mb, struct st_err **err);

/* Removes server_id from the project's usage (absent is fine). */
int st_compute_quota_release(struct st_kv *kv, const char *project_id, const char *server_id,
                             struct st_err **err);
