/* The one policy engine: every request is decided here from who asks (the
 * token's user, project and roles), what they ask (an action name such as
 * "compute:server:create") and whose resource it is (the target's project).
 *
 * Rules are data, in the spirit of Kubernetes Role/RoleBinding: a role holds
 * allow and deny patterns over action names (fnmatch globs; a deny wins) and
 * says whether it reaches across projects. The built-in roles:
 *   reader  read actions (list, show, get) of the services, in its project,
 *           and its project's own record (Keystone's identity:get_project)
 *   member  reader + writes in its project, except admin-only actions
 *   admin   every action in every project
 * A role assignment (a grant) binds a user to a role in one project; a
 * custom role adds its own patterns.
 *
 * Answers: 0 allowed; -EPERM (403) when the caller may see the target but
 * not do this; -ENOENT (404) when the target is in another project the caller
 * cannot reach, so that its existence is not leaked. */
#pragma once

#include <stdbool.h>
#include <stddef.h>

#include "lib/cleanup.h"
#include "lib/err.h"

struct st_policy;

struct st_policy_subject {
    const char *user_id;
    const char *project_id;   /* NULL for an unscoped token */
    const char *const *roles; /* role names */
    size_t n_roles;
};

/* A policy holding the built-in roles. */
struct st_policy *st_policy_new(void);
void st_policy_free(struct st_policy *p);
ST_DEFINE_AUTOPTR(st_policy, st_policy_free)

/* Defines (or replaces) a role's rules. -EINVAL for a malformed pattern or
 * an attempt to redefine a built-in role. */
int st_policy_set_role(struct st_policy *p, const char *role, const char *const *allow,
                       size_t n_allow, const char *const *deny, size_t n_deny, bool all_projects,
                       struct st_err **err);
void st_policy_remove_role(struct st_policy *p, const char *role);

/* A custom role's rules (the strings are borrowed). */
struct st_policy_rules {
    const char *name;
    const char *const *allow;
    size_t n_allow;
    const char *const *deny;
    size_t n_deny;
    bool all_projects;
};

/* Replaces every custom role with these in one step: a check sees the old
 * set or the new one, never a mix, so that the custom roles reloaded from
 * the store (after a change through another controller) never flicker.
 * -EINVAL, and nothing changes, for a malformed pattern or a built-in name. */
int st_policy_replace_custom(struct st_policy *p, const struct st_policy_rules *roles, size_t n,
                             struct st_err **err);

/* target_project_id NULL: the action is not bound to another project's
 * resource (a list of one's own project, a create in one's own project, a
 * global resource such as a flavor). */
int st_policy_check(const struct st_policy *p, const struct st_policy_subject *who,
                    const char *action, const char *target_project_id, struct st_err **err);

/* True when the subject may act in every project (lists with all_projects). */
bool st_policy_is_cloud_admin(const struct st_policy *p, const struct st_policy_subject *who);

/* True for actions whose verb only reads (list, show, get, head). */
bool st_policy_action_is_read(const char *action);

/* An action name is "service:resource:verb", lower case, [a-z0-9_] parts. */
bool st_policy_action_valid(const char *action);
