/* Resource policies: the seed's `resourcePolicy` document, validated,
 * normalized to plain units and kept by name per project, so that a flavor
 * (extra spec "stratos:resource_policy=<name>") or a server (metadata
 * "resource_policy=<name>") can name one instead of repeating numbers.
 *
 *   resourcePolicy:
 *     compute:
 *       cpu: {reservation: 2GHz, limit: 4GHz, shares: normal}
 *       memory: {reservation: 4GB, limit: 8GB}
 *     storage: {type: SSD, size: 100GB, iops: 3000}
 *     network: {bandwidth: 1Gbps, latency: <10ms}
 *
 * Units: cpu in MHz or GHz; memory and storage size in MB/MiB, GB/GiB,
 * TB/TiB, where GB means GiB as VMware (whose reservation/limit/shares model
 * this is) uses it, so 4GB is 4096 MiB; bandwidth in Kbps/Mbps/Gbps (decimal,
 * as networks count); latency in us/ms/s with an optional "<" or "<=".
 * A number without a unit is refused rather than guessed. Shares are a level
 * (low, normal, high: 512, 1024, 2048 per vCPU, as vSphere's levels) or a
 * custom number for the whole instance.
 *
 * Storage and network cannot be enforced yet: they are validated, stored and
 * shown with "not_enforced": ["storage", "network"], never dropped.
 *
 * Stored at /compute/resource_policies/<project_id>/<name>:
 * {"name", "project_id", "created_at", "updated_at",
 *  "resourcePolicy": {...as given...},
 *  "resources": {...normalized, see st_resource_policy_normalize...},
 *  "not_enforced": ["storage", "network"]} */
#pragma once

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

#include "lib/err.h"

struct st_kv;

#define ST_RESOURCE_POLICIES_PREFIX    "/compute/resource_policies/"
#define ST_RESOURCE_POLICY_NAME_MAX    255
#define ST_RESOURCE_POLICY_TEXT_MAX    (64 * 1024)
#define ST_RESOURCE_POLICY_PER_PROJECT 1000

/* Shares per vCPU of the named levels. */
#define ST_SHARES_LOW    512
#define ST_SHARES_NORMAL 1024
#define ST_SHARES_HIGH   2048

/* Names: 1..255 letters, digits, '.', '_' or '-'. */
int st_resource_policy_check_name(const char *name, struct st_err **err);

/* Validates a resourcePolicy object (the value under "resourcePolicy") and
 * returns its normalized form (new reference):
 * {"compute": {"cpu": {"reservation_mhz": 2000, "limit_mhz": 4000, "shares": "normal"},
 *              "memory": {"reservation_mb": 4096, "limit_mb": 8192}},
 *  "storage": {"type": "SSD", "size_gb": 100, "iops": 3000},
 *  "network": {"bandwidth_kbps": 1000000, "latency_us": 10000}}
 * with only the fields given ("shares" is a level name or a custom integer),
 * and (optional) the list of sections present that are not enforced yet.
 * -EINVAL with the offending field named ("resourcePolicy.compute.cpu.limit:
 * unknown unit 'GB' (use MHz or GHz)"); unknown fields are refused. */
int st_resource_policy_normalize(json_t *policy, json_t **ret_resources, json_t **ret_not_enforced,
                                 struct st_err **err);

/* Parses a policy document given as YAML or JSON text (JSON is YAML) into a
 * JSON value (new reference): plain scalars become null, booleans and
 * numbers as in YAML 1.2's core schema, quoted scalars stay strings.
 * Anchors and aliases are refused (no alias bombs); at most
 * ST_RESOURCE_POLICY_TEXT_MAX bytes. */
int st_resource_policy_parse_text(const char *text, size_t len, json_t **ret, struct st_err **err);

/* Creates or replaces the named policy of a project (an idempotent apply:
 * an unchanged policy is not rewritten). *ret_doc (optional) is the stored
 * document, *ret_created (optional) true when it did not exist. */
int st_resource_policy_put(struct st_kv *kv, const char *project_id, const char *name,
                           json_t *resource_policy, json_t **ret_doc, bool *ret_created,
                           struct st_err **err);

/* -ENOENT "resource policy 'x' not found" when absent. */
int st_resource_policy_get(struct st_kv *kv, const char *project_id, const char *name, json_t **ret,
                           struct st_err **err);

/* A project's policies (NULL project: every project's), as an array in name order. */
int st_resource_policy_list(struct st_kv *kv, const char *project_id, json_t **ret,
                            struct st_err **err);

int st_resource_policy_delete(struct st_kv *kv, const char *project_id, const char *name,
                              struct st_err **err);
