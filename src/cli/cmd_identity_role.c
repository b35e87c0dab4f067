/* Keystone roles and their grants: the openstack CLI's `role` commands
 * and `role assignment list`, with its options, requests and output
 * (openstackclient identity/v3/role.py and role_assignment.py over
 * python-keystoneclient). A grant is a PUT of
 * /projects/<p>/users/<u>/roles/<r> (or domains, system, groups, and the
 * OS-INHERIT form); the names are resolved first, role, then user, then
 * project, in openstack's order. */
#include "cmd_identity_role.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "auth.h"
#include "http.h"
#include "identity.h"
#include "lib/cleanup.h"
#include "lib/json.h"

enum { GROUP_IMMUTABLE = 1, GROUP_SCOPE, GROUP_ACTOR };

/* The role named by the first positional, within --domain (show, set,
 * delete) or --role-domain (add, remove, assignment list) when given. */
static int find_role(struct st_cli_ctx *ctx, const char *value, const char *domain_option,
                     json_t **ret, struct st_err **err)
{
    st_autofree char *domain_id = NULL;
    int r =
        st_cli_identity_domain_id(ctx, st_cli_args_get(&ctx->args, domain_option), &domain_id, err);
    if (r < 0)
        return r;
    return st_cli_identity_find(ctx, &st_cli_identity_roles, value, domain_id, ret, err);
}

/* ---- create, show, set, delete, list ---- */

static int run_create(struct st_cli_ctx *ctx, struct st_err **err)
{
    const struct st_cli_args *a = &ctx->args;
    const char *name = a->pos[0];
    st_autofree char *domain_id = NULL;
    int r = st_cli_identity_domain_id(ctx, st_cli_args_get(a, "domain"), &domain_id, err);
    if (r < 0)
        return r;
    st_autoptr(json_t) role = json_pack("{s:s}", "name", name);
    if (domain_id)
        json_object_set_new(role, "domain_id", json_string(domain_id));
    if (st_cli_args_get(a, "description"))
        json_object_set_new(role, "description", json_string(st_cli_args_get(a, "description")));
    json_object_set_new(role, "options", st_cli_identity_immutable_options(ctx));

    st_autoptr(json_t) body = json_pack("{s:O}", "role", role);
    st_autoptr(json_t) resp = NULL;
    st_autoptr(st_err) e = NULL;
    r = st_cli_identity_call(ctx, "POST", "/roles", body, &resp, &e);
    if (r == -EEXIST && st_cli_args_flag(a, "or-show")) {
        st_autoptr(json_t) found = NULL;
        r = st_cli_identity_find(ctx, &st_cli_identity_roles, name, domain_id, &found, err);
        if (r < 0)
            return r;
        return st_cli_identity_show(ctx, found, err);
    }
    if (r < 0) {
        st_err_set(err, r, "%s", st_err_msg(e));
        return r;
    }
    return st_cli_identity_show(ctx, json_object_get(resp, "role"), err);
}

static int run_show(struct st_cli_ctx *ctx, struct st_err **err)
{
    st_autoptr(json_t) role = NULL;
    int r = find_role(ctx, ctx->args.pos[0], "domain", &role, err);
    if (r < 0)
        return r;
    return st_cli_identity_show(ctx, role, err);
}

static int run_set(struct st_cli_ctx *ctx, struct st_err **err)
{
    const struct st_cli_args *a = &ctx->args;
    st_autoptr(json_t) role = NULL;
    int r = find_role(ctx, a->pos[0], "domain", &role, err);
    if (r < 0)
        return r;
    st_autoptr(json_t) changes = json_object();
    if (st_cli_args_get(a, "name"))
        json_object_set_new(changes, "name", json_string(st_cli_args_get(a, "name")));
    if (st_cli_args_get(a, "description"))
        json_object_set_new(changes, "description", json_string(st_cli_args_get(a, "description")));
    json_object_set_new(changes, "options", st_cli_identity_immutable_options(ctx));
    st_autofree char *id = st_cli_http_escape(st_cli_identity_str(role, "id"));
    st_autofree char *path = st_sprintf("/roles/%s", id);
    st_autoptr(json_t) body = json_pack("{s:O}", "role", changes);
    return st_cli_identity_call(ctx, "PATCH", path, body, NULL, err);
}

static int run_delete(struct st_cli_ctx *ctx, struct st_err **err)
{
    st_autofree char *domain_id = NULL;
    int r = st_cli_identity_domain_id(ctx, st_cli_args_get(&ctx->args, "domain"), &domain_id, err);
    if (r < 0)
        return r;
    return st_cli_identity_delete_each(ctx, &st_cli_identity_roles, domain_id, err);
}

static const struct st_cli_column list_cols[] = {
    {"ID", "id"},
    {"Name", "name"},
    {"Domain", "domain"},
};

static int run_list(struct st_cli_ctx *ctx, struct st_err **err)
{
    const char *domain = st_cli_args_get(&ctx->args, "domain");
    st_autoptr(json_t) d = NULL;
    st_autofree char *path = NULL;
    if (domain) {
        int r = st_cli_identity_find_lenient(ctx, &st_cli_identity_domains, domain, NULL, &d, err);
        if (r < 0)
            return r;
        st_autofree char *id = st_cli_http_escape(st_cli_identity_str(d, "id"));
        path = st_sprintf("/roles?domain_id=%s", id);
    } else {
        path = st_strdup("/roles");
    }
    st_autoptr(json_t) doc = NULL;
    int r = st_cli_identity_call(ctx, "GET", path, NULL, &doc, err);
    if (r < 0)
        return r;
    json_t *rows = json_object_get(doc, "roles");
    if (!json_is_array(rows))
        return st_err_set(err, -EPROTO, "invalid response to GET %s: no \"roles\" list", path);
    if (d) {
        /* the Domain column shows the domain's name on every row */
        size_t i;
        json_t *row;
        json_array_foreach(rows, i, row)
            json_object_set_new(row, "domain", json_string(st_cli_identity_str(d, "name")));
    }
    return st_cli_ctx_list(ctx, list_cols, d ? 3 : 2, rows, err);
}

/* ---- add, remove ---- */

/* The grant path of openstackclient's _process_identity_and_resource_options
 * and keystoneclient's _role_grants_base_url: actor and target resolved by
 * name or ID. For remove (strict = false), an actor that cannot be found is
 * taken as an ID, so that grants of deleted users can still go. */
static int grant_path(struct st_cli_ctx *ctx, const char *role_id, bool strict, char **ret,
                      struct st_err **err)
{
    const struct st_cli_args *a = &ctx->args;
    const char *user = st_cli_args_get(a, "user"), *group = st_cli_args_get(a, "group");
    const char *system = st_cli_args_get(a, "system"), *domain = st_cli_args_get(a, "domain");
    const char *project = st_cli_args_get(a, "project");
    bool inherited = st_cli_args_flag(a, "inherited");

    st_autofree char *actor_id = NULL, *target = NULL;
    if ((user || group) && (system || domain || project)) {
        const struct st_cli_identity_kind *kind =
            user ? &st_cli_identity_users : &st_cli_identity_groups;
        const char *value = user ? user : group;
        st_autoptr(json_t) actor = NULL;
        st_autoptr(st_err) e = NULL;
        int r = st_cli_identity_find_lenient(
            ctx, kind, value, st_cli_args_get(a, user ? "user-domain" : "group-domain"), &actor,
            &e);
        if (r == -ENOENT || r == -ENOTUNIQ) {
            if (strict) {
                st_err_set(err, r, "%s", st_err_msg(e));
                return r;
            }
            actor = json_pack("{s:s}", "id", value);
        } else if (r < 0) {
            st_err_set(err, r, "%s", st_err_msg(e));
            return r;
        }
        actor_id = st_cli_http_escape(st_cli_identity_str(actor, "id"));

        if (system) {
            if (strcmp(system, "all") != 0)
                return st_err_set(err, -EINVAL,
                                  "Only a system scope of 'all' is currently supported");
            target = st_strdup("/system");
        } else {
            bool is_project = project != NULL;
            st_autoptr(json_t) t = NULL;
            r = st_cli_identity_find_lenient(
                ctx, is_project ? &st_cli_identity_projects : &st_cli_identity_domains,
                is_project ? project : domain,
                is_project ? st_cli_args_get(a, "project-domain") : NULL, &t, err);
            if (r < 0)
                return r;
            st_autofree char *id = st_cli_http_escape(st_cli_identity_str(t, "id"));
            target = st_sprintf("/%s/%s", is_project ? "projects" : "domains", id);
        }
    } else {
        /* openstackclient passes neither actor nor target then, and
         * keystoneclient checks the target first */
        return st_err_set(err, -EINVAL, "Must specify either system, domain, or project");
    }
    st_autofree char *role = st_cli_http_escape(role_id);
    *ret = st_sprintf("%s%s/%s/%s/roles/%s%s", inherited ? "/OS-INHERIT" : "", target,
                      user ? "users" : "groups", actor_id, role,
                      inherited ? "/inherited_to_projects" : "");
    return 0;
}

static int run_grant(struct st_cli_ctx *ctx, bool add, struct st_err **err)
{
    const struct st_cli_args *a = &ctx->args;
    if (!st_cli_args_get(a, "user") && !st_cli_args_get(a, "domain") &&
        !st_cli_args_get(a, "group") && !st_cli_args_get(a, "project"))
        return st_err_set(err, -EINVAL,
                          add ? "Role not added, incorrect set of arguments provided. See "
                                "stratos --help for more details"
                              : "Incorrect set of arguments provided. See stratos --help for "
                                "more details");
    st_autoptr(json_t) role = NULL;
    int r = find_role(ctx, a->pos[0], "role-domain", &role, err);
    if (r < 0)
        return r;
    st_autofree char *path = NULL;
    r = grant_path(ctx, st_cli_identity_str(role, "id"), add, &path, err);
    if (r < 0)
        return r;
    return st_cli_identity_call(ctx, add ? "PUT" : "DELETE", path, NULL, NULL, err);
}

static int run_add(struct st_cli_ctx *ctx, struct st_err **err)
{
    return run_grant(ctx, true, err);
}

static int run_remove(struct st_cli_ctx *ctx, struct st_err **err)
{
    return run_grant(ctx, false, err);
}

/* ---- assignment list ---- */

static const struct st_cli_column assignment_cols[] = {
    {"Role", "role"},     {"User", "user"},     {"Group", "group"},         {"Project", "project"},
    {"Domain", "domain"}, {"System", "system"}, {"Inherited", "inherited"},
};

/* "name@domain" with --names, else the id, of an actor or project. */
static json_t *named(json_t *obj, bool names)
{
    if (!names)
        return json_string(st_cli_identity_str(obj, "id"));
    st_autofree char *s = st_sprintf("%s@%s", st_cli_identity_str(obj, "name"),
                                     st_cli_identity_str(json_object_get(obj, "domain"), "name"));
    return json_string(s);
}

/* One row of openstackclient's table from one Keystone assignment. */
static json_t *assignment_row(json_t *ra, bool names)
{
    json_t *row = json_object();
    json_t *scope = json_object_get(ra, "scope");
    json_t *role = json_object_get(ra, "role");
    json_t *user = json_object_get(ra, "user"), *group = json_object_get(ra, "group");
    json_object_set_new(row, "role",
                        role ? json_string(st_cli_identity_str(role, names ? "name" : "id"))
                             : json_string(""));
    json_object_set_new(row, "user", user ? named(user, names) : json_string(""));
    json_object_set_new(row, "group", !user && group ? named(group, names) : json_string(""));
    json_t *project = json_object_get(scope, "project"), *domain = json_object_get(scope, "domain");
    json_object_set_new(row, "project", project ? named(project, names) : json_string(""));
    json_object_set_new(row, "domain",
                        !project && domain
                            ? json_string(st_cli_identity_str(domain, names ? "name" : "id"))
                            : json_string(""));
    json_object_set_new(
        row, "system",
        json_string(!project && !domain && json_object_get(scope, "system") ? "all" : ""));
    const char *to = json_string_value(json_object_get(scope, "OS-INHERIT:inherited_to"));
    json_object_set_new(row, "inherited", json_boolean(to && strcmp(to, "projects") == 0));
    return row;
}

/* keystoneclient's query: dotted keys, values escaped (':' too) */
static void add_query(FILE *f, bool *first, const char *key, const char *value)
{
    if (!value)
        return;
    st_autofree char *k = st_cli_http_escape(key);
    st_autofree char *v = st_cli_http_escape(value);
    fprintf(f, "%c%s=%s", *first ? '?' : '&', k, v);
    *first = false;
}

static int run_assignment_list(struct st_cli_ctx *ctx, struct st_err **err)
{
    const struct st_cli_args *a = &ctx->args;
    int r = 0;
    st_autoptr(json_t) role = NULL;
    st_autoptr(json_t) user = NULL;
    st_autoptr(json_t) domain = NULL;
    st_autoptr(json_t) project = NULL;
    st_autoptr(json_t) group = NULL;
    if (st_cli_args_get(a, "role")) {
        r = find_role(ctx, st_cli_args_get(a, "role"), "role-domain", &role, err);
        if (r < 0)
            return r;
    }
    struct st_cli_auth *auth = NULL;
    struct st_cli_http *h;
    json_t *token = NULL;
    if (st_cli_args_flag(a, "auth-user") || st_cli_args_flag(a, "auth-project")) {
        r = st_cli_ctx_auth(ctx, &auth, err);
        if (r == 0)
            r = st_cli_ctx_http(ctx, &h, err);
        if (r == 0)
            r = st_cli_auth_token_data(auth, h, &token, err);
        if (r < 0)
            return r;
    }
    if (st_cli_args_get(a, "user")) {
        r = st_cli_identity_find_lenient(ctx, &st_cli_identity_users, st_cli_args_get(a, "user"),
                                         st_cli_args_get(a, "user-domain"), &user, err);
    } else if (token) {
        const char *id = st_cli_identity_str(json_object_get(token, "user"), "id");
        r = st_cli_args_flag(a, "auth-user")
                ? st_cli_identity_find_lenient(ctx, &st_cli_identity_users, id, NULL, &user, err)
                : 0;
    }
    if (r < 0)
        return r;
    if (st_cli_args_get(a, "domain")) {
        r = st_cli_identity_find_lenient(ctx, &st_cli_identity_domains,
                                         st_cli_args_get(a, "domain"), NULL, &domain, err);
        if (r < 0)
            return r;
    }
    if (st_cli_args_get(a, "project")) {
        const char *value =
            st_cli_identity_token_resource(ctx, "project", st_cli_args_get(a, "project"), NULL);
        r = st_cli_identity_find_lenient(ctx, &st_cli_identity_projects, value,
                                         st_cli_args_get(a, "project-domain"), &project, err);
    } else if (token && st_cli_args_flag(a, "auth-project")) {
        const char *id = st_cli_identity_str(json_object_get(token, "project"), "id");
        r = st_cli_identity_find_lenient(ctx, &st_cli_identity_projects, id, NULL, &project, err);
    }
    if (r < 0)
        return r;
    if (st_cli_args_get(a, "group")) {
        r = st_cli_identity_find_lenient(ctx, &st_cli_identity_groups, st_cli_args_get(a, "group"),
                                         st_cli_args_get(a, "group-domain"), &group, err);
        if (r < 0)
            return r;
    }
    bool names = st_cli_args_flag(a, "names");

    char *buf = NULL;
    size_t len;
    FILE *f = open_memstream(&buf, &len);
    if (!f)
        abort();
    fputs("/role_assignments", f);
    bool first = true;
    add_query(f, &first, "user.id", user ? st_cli_identity_str(user, "id") : NULL);
    add_query(f, &first, "group.id", group ? st_cli_identity_str(group, "id") : NULL);
    add_query(f, &first, "scope.project.id", project ? st_cli_identity_str(project, "id") : NULL);
    add_query(f, &first, "scope.domain.id", domain ? st_cli_identity_str(domain, "id") : NULL);
    add_query(f, &first, "scope.system", st_cli_args_get(a, "system"));
    add_query(f, &first, "role.id", role ? st_cli_identity_str(role, "id") : NULL);
    add_query(f, &first, "effective", st_cli_args_flag(a, "effective") ? "True" : NULL);
    add_query(f, &first, "include_names", names ? "True" : NULL);
    add_query(f, &first, "scope.OS-INHERIT:inherited_to",
              st_cli_args_flag(a, "inherited") ? "projects" : NULL);
    fclose(f);
    st_autofree char *path = buf;

    st_autoptr(json_t) doc = NULL;
    r = st_cli_identity_call(ctx, "GET", path, NULL, &doc, err);
    if (r < 0)
        return r;
    json_t *list = json_object_get(doc, "role_assignments");
    if (!json_is_array(list))
        return st_err_set(err, -EPROTO, "invalid response to GET %s: no \"role_assignments\" list",
                          path);
    st_autoptr(json_t) rows = json_array();
    size_t i;
    json_t *ra;
    json_array_foreach(list, i, ra) json_array_append_new(rows, assignment_row(ra, names));
    return st_cli_ctx_list(ctx, assignment_cols, ST_ARRAY_SIZE(assignment_cols), rows, err);
}

/* ---- the table ---- */

static const struct st_cli_arg role_name_args[] = {
    {"<role-name>", "New role name", 0},
    {NULL, NULL, 0},
};

static const struct st_cli_option create_opts[] = {
    ST_CLI_VALUE("description", "<description>", "Add description about the role"),
    ST_CLI_VALUE("domain", "<domain>", "Domain the role belongs to (name or ID)"),
    ST_CLI_FLAG("or-show", "Return existing role", 0),
    ST_CLI_IDENTITY_IMMUTABLE_OPTIONS(GROUP_IMMUTABLE),
    ST_CLI_OPTIONS_END,
};

static const struct st_cli_option domain_opts[] = {
    ST_CLI_VALUE("domain", "<domain>", "Domain the role belongs to (name or ID)"),
    ST_CLI_OPTIONS_END,
};
static const struct st_cli_arg show_args[] = {
    {"<role>", "Role to display (name or ID)", 0},
    {NULL, NULL, 0},
};
static const struct st_cli_arg delete_args[] = {
    {"<role>", "Role(s) to delete (name or ID)", ST_CLI_ARG_MULTI},
    {NULL, NULL, 0},
};

static const struct st_cli_option list_opts[] = {
    ST_CLI_VALUE("domain", "<domain>", "Include <domain> (name or ID)"),
    ST_CLI_OPTIONS_END,
};

static const struct st_cli_option set_opts[] = {
    ST_CLI_VALUE("description", "<description>", "Add description about the role"),
    ST_CLI_VALUE("domain", "<domain>", "Domain the role belongs to (name or ID)"),
    ST_CLI_VALUE("name", "<name>", "Set role name"),
    ST_CLI_IDENTITY_IMMUTABLE_OPTIONS(GROUP_IMMUTABLE),
    ST_CLI_OPTIONS_END,
};
static const struct st_cli_arg set_args[] = {
    {"<role>", "Role to modify (name or ID)", 0},
    {NULL, NULL, 0},
};

#define GROUPED(name, metavar, help, group)                                                        \
    {                                                                                              \
        name, 0, ST_CLI_OPT_VALUE, metavar, help, NULL, false, group                               \
    }
#define USER_DOMAIN_OPTION                                                                         \
    ST_CLI_VALUE("user-domain", "<user-domain>",                                                   \
                 "Domain the user belongs to (name or ID). This can be used in case collisions "   \
                 "between user names exist.")
#define GROUP_DOMAIN_OPTION                                                                        \
    ST_CLI_VALUE("group-domain", "<group-domain>",                                                 \
                 "Domain the group belongs to (name or ID). This can be used in case collisions "  \
                 "between group names exist.")
#define PROJECT_DOMAIN_OPTION                                                                      \
    ST_CLI_VALUE("project-domain", "<project-domain>",                                             \
                 "Domain the project belongs to (name or ID). This can be used in case "           \
                 "collisions between project names exist.")
#define ROLE_DOMAIN_OPTION                                                                         \
    ST_CLI_VALUE("role-domain", "<role-domain>",                                                   \
                 "Domain the role belongs to (name or ID). This must be specified when the name "  \
                 "of a domain specific role is used.")
#define INHERITED_OPTION                                                                           \
    ST_CLI_FLAG("inherited", "Specifies if the role grant is inheritable to the sub projects", 0)

static const struct st_cli_option grant_opts[] = {
    GROUPED("system", "<system>", "Include <system> (all)", GROUP_SCOPE),
    GROUPED("domain", "<domain>", "Include <domain> (name or ID)", GROUP_SCOPE),
    GROUPED("project", "<project>", "Include <project> (name or ID)", GROUP_SCOPE),
    GROUPED("user", "<user>", "Include <user> (name or ID)", GROUP_ACTOR),
    GROUPED("group", "<group>", "Include <group> (name or ID)", GROUP_ACTOR),
    GROUP_DOMAIN_OPTION,
    PROJECT_DOMAIN_OPTION,
    USER_DOMAIN_OPTION,
    INHERITED_OPTION,
    ROLE_DOMAIN_OPTION,
    ST_CLI_OPTIONS_END,
};
static const struct st_cli_arg add_args[] = {
    {"<role>", "Role to add to <user> (name or ID)", 0},
    {NULL, NULL, 0},
};
static const struct st_cli_arg remove_args[] = {
    {"<role>", "Role to remove (name or ID)", 0},
    {NULL, NULL, 0},
};

/* openstack's order: the domain options sit between the members of the
 * exclusive groups, so usage shows each member alone, as argparse does. */
static const struct st_cli_option assignment_opts[] = {
    ST_CLI_FLAG("effective", "Returns only effective role assignments", 0),
    ST_CLI_VALUE("role", "<role>", "Role to filter (name or ID)"),
    ROLE_DOMAIN_OPTION,
    ST_CLI_FLAG("names", "Display names instead of IDs", 0),
    GROUPED("user", "<user>", "User to filter (name or ID)", GROUP_ACTOR),
    USER_DOMAIN_OPTION,
    GROUPED("group", "<group>", "Group to filter (name or ID)", GROUP_ACTOR),
    GROUP_DOMAIN_OPTION,
    GROUPED("domain", "<domain>", "Domain to filter (name or ID)", GROUP_SCOPE),
    GROUPED("project", "<project>", "Project to filter (name or ID)", GROUP_SCOPE),
    GROUPED("system", "<system>", "Filter based on system role assignments", GROUP_SCOPE),
    PROJECT_DOMAIN_OPTION,
    INHERITED_OPTION,
    ST_CLI_FLAG("auth-user", "Only list assignments for the authenticated user", 0),
    ST_CLI_FLAG("auth-project",
                "Only list assignments for the project to which the authenticated user's token "
                "is scoped",
                0),
    ST_CLI_OPTIONS_END,
};

#define SHOW (ST_CLI_CMD_SHOW | ST_CLI_CMD_AUTH | ST_CLI_CMD_PY_STR)
#define LIST (ST_CLI_CMD_LIST | ST_CLI_CMD_AUTH | ST_CLI_CMD_PY_STR)

const struct st_cli_command st_cli_role_commands[] = {
    {"role add", "Adds a role assignment to a user or group on the system, a domain, or a project",
     NULL, grant_opts, add_args, ST_CLI_CMD_AUTH, run_add},
    {"role assignment list", "List role assignments", NULL, assignment_opts, NULL, LIST,
     run_assignment_list},
    {"role create", "Create new role", NULL, create_opts, role_name_args, SHOW, run_create},
    {"role delete", "Delete role(s)", NULL, domain_opts, delete_args, ST_CLI_CMD_AUTH, run_delete},
    {"role list", "List roles", NULL, list_opts, NULL, LIST, run_list},
    {"role remove", "Removes a role assignment from system/domain/project : user/group", NULL,
     grant_opts, remove_args, ST_CLI_CMD_AUTH, run_remove},
    {"role set", "Set role properties", NULL, set_opts, set_args, ST_CLI_CMD_AUTH, run_set},
    {"role show", "Display role details", NULL, domain_opts, show_args, SHOW, run_show},
    {NULL, NULL, NULL, NULL, NULL, 0, NULL},
};
