/* Identity records (domains, projects, users, roles) as JSON documents in
 * the store, with names unique within a domain. A record lives at
 * /identity/<kind>/<id>; its name is claimed at
 * /identity/names/<kind>/<domain_id>/<name> → <id> with a create-only
 * compare-and-swap, so two concurrent creates of one name cannot both win.
 *
 * The store has no multi-key transactions, so a crash can leave a claim
 * without its record; such a claim is stale and is taken over by the next
 * create of that name (the claim is checked against the record it names)
 * once it is older than ST_IDREC_CLAIM_GRACE_MS: until then it may belong to
 * a create that has claimed the name but not yet written its record. */
#pragma once

#include <jansson.h>
#include <stdint.h>

#include "lib/err.h"

struct st_kv;

#define ST_IDREC_NAME_MAX       255
#define ST_IDREC_CLAIM_GRACE_MS (30 * 1000)

/* kind: "domains", "projects", "users", "roles". doc must hold string
 * members "id", "name" and "domain_id" (roles: domain_id may be null, meaning
 * global). -EEXIST when the name is taken in that domain. */
int st_idrec_create(struct st_kv *kv, const char *kind, json_t *doc, struct st_err **err);

/* -ENOENT when absent. *ret is a new reference; *ret_rev (optional) the
 * record's mod_rev for a later conditional update. */
int st_idrec_get(struct st_kv *kv, const char *kind, const char *id, json_t **ret, int64_t *ret_rev,
                 struct st_err **err);

/* Looks a record up by name within a domain (NULL domain for global roles). */
int st_idrec_find(struct st_kv *kv, const char *kind, const char *domain_id, const char *name,
                  json_t **ret, struct st_err **err);

/* Every record of a kind, as a JSON array (new reference), in id order. */
int st_idrec_list(struct st_kv *kv, const char *kind, json_t **ret, struct st_err **err);

/* Replaces a record written at expect_rev (-ECANCELED when it changed since:
 * the caller re-reads and retries). A changed name is claimed first. */
int st_idrec_update(struct st_kv *kv, const char *kind, json_t *doc, int64_t expect_rev,
                    struct st_err **err);

/* Deletes the record and its name claim. -ENOENT when absent. */
int st_idrec_delete(struct st_kv *kv, const char *kind, const char *id, struct st_err **err);

/* Validates a name (1..255 bytes, no control characters). */
int st_idrec_check_name(const char *what, const char *name, struct st_err **err);
