/* Server groups: Nova's os-server-groups as documents in the store
 * (/compute/server_groups/<uuid>, the shape is in compute/model.h). A group
 * names one placement policy (affinity, anti-affinity, or their soft forms)
 * for the servers created with the scheduler hint {"group": <id>}; the
 * placement controller reads the group and the servers' spec.server_group
 * and enforces the hard policies. This service owns the documents: create,
 * read, list and delete, the check a server create makes of its hint, and
 * the member list.
 *
 * Members: a server create with the hint adds the new server's id to the
 * group's "members" once the server's document is written (so every id in
 * the list had a document; an id whose document is gone is a deleted
 * server, dropped at the next addition). Reads report only the members
 * that still exist and are not being deleted, as Nova shows only servers
 * that are not deleted. No HTTP here: callers authorize (the document's
 * project_id) and render. */
#pragma once

#include <jansson.h>
#include <stddef.h>

#include "compute/server.h"
#include "lib/err.h"

struct st_kv;

#define ST_SERVER_GROUP_NAME_MAX 255

/* Creates a group in the caller's project from Nova's request object (the
 * value of "server_group"): "name" (1..255 characters, Nova's name format)
 * and "policies" (exactly one of "affinity", "anti-affinity",
 * "soft-affinity", "soft-anti-affinity"); nothing else. -EINVAL with Nova's
 * messages ("Invalid input for field/attribute policies. ..."); -EDQUOT
 * "Quota exceeded, too many server groups." past the project's
 * server_groups quota (compute/quota.h). *ret_doc is the stored document
 * (members empty). */
int st_server_group_create(struct st_kv *kv, const struct st_compute_caller *who, json_t *req,
                           json_t **ret_doc, struct st_err **err);

/* The document with its live members. -ENOENT "Server group X could not be
 * found." (also for an id that is not a UUID). */
int st_server_group_get(struct st_kv *kv, const char *id, json_t **ret_doc, struct st_err **err);

/* The groups of a project (NULL = every project, for admins) in creation
 * order, each with its live members (a new array). */
int st_server_group_list(struct st_kv *kv, const char *project_id, json_t **ret_docs,
                         struct st_err **err);

/* How many groups a project has (NULL = all). */
int st_server_group_count(struct st_kv *kv, const char *project_id, size_t *ret,
                          struct st_err **err);

/* Deletes a group, members or not (as Nova: its servers stay where they
 * are; later placements of them are unconstrained). -ENOENT as get. */
int st_server_group_delete(struct st_kv *kv, const char *id, struct st_err **err);

/* The check of a server create's hint: the group exists and belongs to the
 * caller's project (or the caller is an admin). -EINVAL "Instance group X
 * could not be found." otherwise, as Nova answers a bad hint with 400;
 * -EDQUOT "Quota exceeded, too many servers in group" when the group has
 * its project's server_group_members quota of members already. */
int st_server_group_check_hint(struct st_kv *kv, const struct st_compute_caller *who,
                               const char *id, struct st_err **err);

/* Adds server_id to the group's members (compare-and-swap, retried),
 * dropping the members whose server documents are gone. Idempotent.
 * -ENOENT when the group is gone. */
int st_server_group_add_member(struct st_kv *kv, const char *id, const char *server_id,
                               struct st_err **err);
