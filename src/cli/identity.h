/* What the identity commands (token, project, user, role) share: calls to
 * Keystone at the catalog's identity URL, and the name-or-ID lookup that
 * python-keystoneclient performs through osc-lib (spec §2.5): GET
 * /<collection>/<value>, and when that is not an object, GET
 * /<collection>?name=<value> taken as the server returns it, with
 * osc-lib's messages for no match and for several. stratosd's Keystone is
 * judged by the same protocol, so both clients must behave alike. */
#pragma once

#include <jansson.h>

#include "command.h"
#include "lib/err.h"

/* --immutable / --no-immutable, common.add_resource_option_to_parser. */
#define ST_CLI_IDENTITY_IMMUTABLE_OPTIONS(group)                                                   \
    ST_CLI_FLAG("immutable",                                                                       \
                "Make resource immutable. An immutable project may not be deleted or modified "    \
                "except to remove the immutable flag",                                             \
                group),                                                                            \
        ST_CLI_FLAG("no-immutable", "Make resource mutable (default)", group)

/* A Keystone collection: the URL segment and the JSON wrapper key, which
 * is also the name used in messages ("No project with a name or ID..."). */
struct st_cli_identity_kind {
    const char *collection; /* "projects" */
    const char *key;        /* "project" */
};

extern const struct st_cli_identity_kind st_cli_identity_projects;
extern const struct st_cli_identity_kind st_cli_identity_users;
extern const struct st_cli_identity_kind st_cli_identity_roles;
extern const struct st_cli_identity_kind st_cli_identity_domains;
extern const struct st_cli_identity_kind st_cli_identity_groups;

/* One JSON call to Keystone: path ("/projects?name=x") is appended to the
 * identity URL; an HTTP error fails with the server's message. */
int st_cli_identity_call(struct st_cli_ctx *ctx, const char *method, const char *path,
                         const json_t *body, json_t **ret, struct st_err **err);

/* osc-lib's find_resource: the object (a new reference) whose ID or name
 * is value, by ID first, then by the name filter (with domain_id= when
 * given). -ENOENT "No project with a name or ID of 'x' exists.",
 * -ENOTUNIQ "More than one project exists with the name 'x'.", or the
 * error of the list call. */
int st_cli_identity_find(struct st_cli_ctx *ctx, const struct st_cli_identity_kind *kind,
                         const char *value, const char *domain_id, json_t **ret,
                         struct st_err **err);

/* openstackclient's find_project/find_user/find_domain/find_group: as
 * st_cli_identity_find within the domain named or identified by domain
 * (may be NULL), except that a 403 on the lookup yields {"id": value,
 * "name": value}, so that a user without list rights can still act on
 * IDs. */
int st_cli_identity_find_lenient(struct st_cli_ctx *ctx, const struct st_cli_identity_kind *kind,
                                 const char *value, const char *domain, json_t **ret,
                                 struct st_err **err);

/* The ID of the token's own "project" or "user" when value is its name
 * (and domain, when given, is its domain's id or name); else value. This is
 * openstackclient's peek into the token, which lets a user without list
 * rights name its own project. Never fails. */
const char *st_cli_identity_token_resource(struct st_cli_ctx *ctx, const char *resource,
                                           const char *value, const char *domain);

/* Shows a Keystone object as openstack does: every field but "links",
 * sorted by name. */
int st_cli_identity_show(struct st_cli_ctx *ctx, const json_t *obj, struct st_err **err);

/* The string field key of obj, or "" (for building URLs from found objects). */
const char *st_cli_identity_str(const json_t *obj, const char *key);

/* The ID of the domain named or identified by value (find_domain), in a
 * new string; NULL (and 0) when value is NULL. */
int st_cli_identity_domain_id(struct st_cli_ctx *ctx, const char *value, char **ret,
                              struct st_err **err);

/* --property key=value options into obj's fields (osc-lib's
 * KeyValueAction): -EINVAL "Expected 'key=value' type, but got: x". */
int st_cli_identity_properties(struct st_cli_ctx *ctx, json_t *obj, struct st_err **err);

/* {"immutable": true|false} from --immutable / --no-immutable, else {}. */
json_t *st_cli_identity_immutable_options(struct st_cli_ctx *ctx);

/* Deletes every positional of the command (name or ID, within domain_id
 * when given), going on after a failure as openstack does: each failure
 * is one line on stderr ("Failed to delete project with name or ID 'x':
 * ...") and the command fails with "1 of 2 projects failed to delete.". */
int st_cli_identity_delete_each(struct st_cli_ctx *ctx, const struct st_cli_identity_kind *kind,
                                const char *domain_id, struct st_err **err);

/* osc-lib's sort_items for --sort "key[:asc|desc][,key...]" on rows
 * (objects), stable; -EINVAL for a bad direction or a missing field. */
int st_cli_identity_sort(json_t *rows, const char *sort, struct st_err **err);
