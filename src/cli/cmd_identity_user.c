/* Keystone users: the openstack CLI's `user` commands with its options,
 * request bodies and output (openstackclient identity/v3/user.py over
 * python-keystoneclient). Passwords go to Keystone only in the request
 * body, which --debug hides. */
#include "cmd_identity_user.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "http.h"
#include "identity.h"
#include "lib/cleanup.h"
#include "lib/json.h"
#include "prompt.h"

enum { GROUP_ENABLE = 1, GROUP_PROJECT_OR_GROUP };

#define NO_PASSWORD_WARNING                                                                        \
    "No password was supplied, authentication will fail when a user does not have a password."

/* The user options of openstackclient's _get_options_for_user: flag,
 * option key, value. */
static const struct {
    const char *flag;
    const char *key;
    bool value;
} user_option_flags[] = {
    {"ignore-lockout-failure-attempts", "ignore_lockout_failure_attempts", true},
    {"no-ignore-lockout-failure-attempts", "ignore_lockout_failure_attempts", false},
    {"ignore-password-expiry", "ignore_password_expiry", true},
    {"no-ignore-password-expiry", "ignore_password_expiry", false},
    {"ignore-change-password-upon-first-use", "ignore_change_password_upon_first_use", true},
    {"no-ignore-change-password-upon-first-use", "ignore_change_password_upon_first_use", false},
    {"enable-lock-password", "lock_password", true},
    {"disable-lock-password", "lock_password", false},
    {"enable-multi-factor-auth", "multi_factor_auth_enabled", true},
    {"disable-multi-factor-auth", "multi_factor_auth_enabled", false},
};

static json_t *user_options(const struct st_cli_args *a)
{
    json_t *o = json_object();
    for (size_t i = 0; i < ST_ARRAY_SIZE(user_option_flags); i++)
        if (st_cli_args_flag(a, user_option_flags[i].flag))
            json_object_set_new(o, user_option_flags[i].key,
                                json_boolean(user_option_flags[i].value));
    char *const *rules;
    size_t n = st_cli_args_all(a, "multi-factor-auth-rule", &rules);
    if (n > 0) {
        /* "password,totp" → ["password", "totp"] */
        json_t *all = json_array();
        for (size_t i = 0; i < n; i++) {
            json_t *rule = json_array();
            st_autofree char *copy = st_strdup(rules[i]);
            char *p = copy;
            for (char *comma; (comma = strchr(p, ',')); p = comma + 1) {
                *comma = '\0';
                json_array_append_new(rule, json_string(p));
            }
            json_array_append_new(rule, json_string(p));
            json_array_append_new(all, rule);
        }
        json_object_set_new(o, "multi_factor_auth_rules", all);
    }
    return o;
}

/* --password, or --password-prompt's answer; NULL when neither. */
static int password_of(struct st_cli_ctx *ctx, char **ret, struct st_err **err)
{
    *ret = st_strdup(st_cli_args_get(&ctx->args, "password"));
    if (st_cli_args_flag(&ctx->args, "password-prompt")) {
        free(*ret);
        *ret = NULL;
        return st_cli_prompt_password("User Password:", true, ret, err);
    }
    return 0;
}

/* ---- create ---- */

static int run_create(struct st_cli_ctx *ctx, struct st_err **err)
{
    const struct st_cli_args *a = &ctx->args;
    const char *name = a->pos[0];
    st_autoptr(json_t) project = NULL;
    int r;
    if (st_cli_args_get(a, "project")) {
        r = st_cli_identity_find_lenient(ctx, &st_cli_identity_projects,
                                         st_cli_args_get(a, "project"),
                                         st_cli_args_get(a, "project-domain"), &project, err);
        if (r < 0)
            return r;
    }
    st_autofree char *domain_id = NULL;
    r = st_cli_identity_domain_id(ctx, st_cli_args_get(a, "domain"), &domain_id, err);
    if (r < 0)
        return r;
    st_autofree char *password = NULL;
    r = password_of(ctx, &password, err);
    if (r < 0)
        return r;
    if (!password || !*password)
        fprintf(ctx->err, "%s\n", NO_PASSWORD_WARNING);

    st_autoptr(json_t) user = json_object();
    json_object_set_new(user, "name", json_string(name));
    if (domain_id)
        json_object_set_new(user, "domain_id", json_string(domain_id));
    if (project)
        json_object_set_new(user, "default_project_id",
                            json_string(st_cli_identity_str(project, "id")));
    if (password)
        json_object_set_new(user, "password", json_string(password));
    if (st_cli_args_get(a, "email"))
        json_object_set_new(user, "email", json_string(st_cli_args_get(a, "email")));
    if (st_cli_args_get(a, "description"))
        json_object_set_new(user, "description", json_string(st_cli_args_get(a, "description")));
    json_object_set_new(user, "enabled", json_boolean(!st_cli_args_flag(a, "disable")));
    json_object_set_new(user, "options", user_options(a));

    st_autoptr(json_t) body = json_pack("{s:O}", "user", user);
    st_autoptr(json_t) resp = NULL;
    st_autoptr(st_err) e = NULL;
    r = st_cli_identity_call(ctx, "POST", "/users", body, &resp, &e);
    if (r == -EEXIST && st_cli_args_flag(a, "or-show")) {
        st_autoptr(json_t) found = NULL;
        r = st_cli_identity_find(ctx, &st_cli_identity_users, name, domain_id, &found, err);
        if (r < 0)
            return r;
        return st_cli_identity_show(ctx, found, err);
    }
    if (r < 0) {
        st_err_set(err, r, "%s", st_err_msg(e));
        return r;
    }
    return st_cli_identity_show(ctx, json_object_get(resp, "user"), err);
}

/* ---- list ---- */

static const struct st_cli_column list_cols[] = {
    {"ID", "id"},
    {"Name", "name"},
    {"Project", "default_project_id"},
    {"Domain", "domain_id"},
    {"Description", "description"},
    {"Email", "email"},
    {"Enabled", "enabled"},
};

/* --project: the users with any role on it, each once, in the order of
 * their first assignment, fetched one by one as openstack does. */
static int users_of_project(struct st_cli_ctx *ctx, const char *project_id, json_t **ret,
                            struct st_err **err)
{
    st_autofree char *p = st_cli_http_escape(project_id);
    st_autofree char *path = st_sprintf("/role_assignments?scope.project.id=%s", p);
    st_autoptr(json_t) doc = NULL;
    int r = st_cli_identity_call(ctx, "GET", path, NULL, &doc, err);
    if (r < 0)
        return r;
    st_autoptr(json_t) ids = json_object(); /* a set, in insertion order */
    st_autoptr(json_t) users = json_array();
    size_t i;
    json_t *ra;
    json_array_foreach(json_object_get(doc, "role_assignments"), i, ra)
    {
        const char *id = json_string_value(json_object_get(json_object_get(ra, "user"), "id"));
        if (!id || json_object_get(ids, id))
            continue;
        json_object_set_new(ids, id, json_true());
        json_t *user = NULL;
        r = st_cli_identity_find(ctx, &st_cli_identity_users, id, NULL, &user, err);
        if (r < 0)
            return r;
        json_array_append_new(users, user);
    }
    *ret = st_steal(&users);
    return 0;
}

static int run_list(struct st_cli_ctx *ctx, struct st_err **err)
{
    const struct st_cli_args *a = &ctx->args;
    const char *domain = st_cli_args_get(a, "domain");
    st_autofree char *domain_id = NULL;
    int r = st_cli_identity_domain_id(ctx, domain, &domain_id, err);
    if (r < 0)
        return r;
    st_autoptr(json_t) group = NULL;
    if (st_cli_args_get(a, "group")) {
        r = st_cli_identity_find_lenient(ctx, &st_cli_identity_groups, st_cli_args_get(a, "group"),
                                         domain, &group, err);
        if (r < 0)
            return r;
    }
    st_autoptr(json_t) rows = NULL;
    if (st_cli_args_get(a, "project")) {
        st_autoptr(json_t) project = NULL;
        r = st_cli_identity_find(ctx, &st_cli_identity_projects, st_cli_args_get(a, "project"),
                                 domain_id, &project, err);
        if (r < 0)
            return r;
        r = users_of_project(ctx, st_cli_identity_str(project, "id"), &rows, err);
        if (r < 0)
            return r;
    } else {
        st_autofree char *g = group ? st_cli_http_escape(st_cli_identity_str(group, "id")) : NULL;
        st_autofree char *d = domain_id ? st_cli_http_escape(domain_id) : NULL;
        st_autofree char *path = st_sprintf("%s%s/users%s%s", g ? "/groups/" : "", g ? g : "",
                                            d ? "?domain_id=" : "", d ? d : "");
        st_autoptr(json_t) doc = NULL;
        r = st_cli_identity_call(ctx, "GET", path, NULL, &doc, err);
        if (r < 0)
            return r;
        rows = json_incref(json_object_get(doc, "users"));
        if (!json_is_array(rows))
            return st_err_set(err, -EPROTO, "invalid response to GET %s: no \"users\" list", path);
    }
    return st_cli_ctx_list(ctx, list_cols, st_cli_args_flag(a, "long") ? 7 : 2, rows, err);
}

/* ---- show ---- */

/* openstack's lookup of the <user> of show and set: the token's own user
 * by name, within --domain when given. */
static int find_user(struct st_cli_ctx *ctx, bool peek, json_t **ret, struct st_err **err)
{
    const char *domain = st_cli_args_get(&ctx->args, "domain");
    const char *value = ctx->args.pos[0];
    if (peek || domain)
        value = st_cli_identity_token_resource(ctx, "user", value, domain);
    st_autofree char *domain_id = NULL;
    if (domain) {
        st_autoptr(json_t) d = NULL;
        int r = st_cli_identity_find_lenient(ctx, &st_cli_identity_domains, domain, NULL, &d, err);
        if (r < 0)
            return r;
        domain_id = st_strdup(st_cli_identity_str(d, "id"));
    }
    return st_cli_identity_find(ctx, &st_cli_identity_users, value, domain_id, ret, err);
}

static int run_show(struct st_cli_ctx *ctx, struct st_err **err)
{
    st_autoptr(json_t) user = NULL;
    int r = find_user(ctx, true, &user, err);
    if (r < 0)
        return r;
    return st_cli_identity_show(ctx, user, err);
}

/* ---- set ---- */

static int run_set(struct st_cli_ctx *ctx, struct st_err **err)
{
    const struct st_cli_args *a = &ctx->args;
    st_autofree char *password = NULL;
    int r = password_of(ctx, &password, err);
    if (r < 0)
        return r;
    if (password && !*password)
        fprintf(ctx->err, "%s\n", NO_PASSWORD_WARNING);
    st_autoptr(json_t) user = NULL;
    r = find_user(ctx, false, &user, err);
    if (r < 0)
        return r;

    st_autoptr(json_t) changes = json_object();
    static const char *const texts[] = {"name", "password", "email", "description"};
    st_autoptr(json_t) project = NULL;
    if (st_cli_args_get(a, "project")) {
        r = st_cli_identity_find_lenient(ctx, &st_cli_identity_projects,
                                         st_cli_args_get(a, "project"),
                                         st_cli_args_get(a, "project-domain"), &project, err);
        if (r < 0)
            return r;
    }
    /* keystoneclient's field order: name, default_project_id, password,
     * email, description, enabled, options; empty texts are not sent */
    for (size_t i = 0; i < ST_ARRAY_SIZE(texts); i++) {
        const char *v = strcmp(texts[i], "password") == 0 ? password : st_cli_args_get(a, texts[i]);
        if (i == 1 && project)
            json_object_set_new(changes, "default_project_id",
                                json_string(st_cli_identity_str(project, "id")));
        if (v && *v)
            json_object_set_new(changes, texts[i], json_string(v));
    }
    json_t *enabled = json_object_get(user, "enabled");
    if (st_cli_args_flag(a, "enable"))
        json_object_set_new(changes, "enabled", json_true());
    else if (st_cli_args_flag(a, "disable"))
        json_object_set_new(changes, "enabled", json_false());
    else if (json_is_boolean(enabled))
        json_object_set(changes, "enabled", enabled);
    json_t *options = user_options(a);
    if (json_object_size(options) > 0)
        json_object_set_new(changes, "options", options);
    else
        json_decref(options);

    st_autofree char *id = st_cli_http_escape(st_cli_identity_str(user, "id"));
    st_autofree char *path = st_sprintf("/users/%s", id);
    st_autoptr(json_t) body = json_pack("{s:O}", "user", changes);
    return st_cli_identity_call(ctx, "PATCH", path, body, NULL, err);
}

/* ---- delete ---- */

static int run_delete(struct st_cli_ctx *ctx, struct st_err **err)
{
    const char *domain = st_cli_args_get(&ctx->args, "domain");
    st_autofree char *domain_id = NULL;
    if (domain) {
        st_autoptr(json_t) d = NULL;
        int r = st_cli_identity_find_lenient(ctx, &st_cli_identity_domains, domain, NULL, &d, err);
        if (r < 0)
            return r;
        domain_id = st_strdup(st_cli_identity_str(d, "id"));
    }
    return st_cli_identity_delete_each(ctx, &st_cli_identity_users, domain_id, err);
}

/* ---- the table ---- */

#define PROJECT_DOMAIN_OPTION                                                                      \
    ST_CLI_VALUE("project-domain", "<project-domain>",                                             \
                 "Domain the project belongs to (name or ID). This can be used in case "           \
                 "collisions between project names exist.")

#define USER_OPTIONS                                                                               \
    ST_CLI_FLAG("ignore-lockout-failure-attempts",                                                 \
                "Opt into ignoring the number of times a user has authenticated and locking out "  \
                "the user as a result",                                                            \
                0),                                                                                \
        ST_CLI_FLAG("no-ignore-lockout-failure-attempts",                                          \
                    "Opt out of ignoring the number of times a user has authenticated and "        \
                    "locking out the user as a result",                                            \
                    0),                                                                            \
        ST_CLI_FLAG("ignore-password-expiry",                                                      \
                    "Opt into allowing user to continue using passwords that may be expired", 0),  \
        ST_CLI_FLAG("no-ignore-password-expiry",                                                   \
                    "Opt out of allowing user to continue using passwords that may be expired",    \
                    0),                                                                            \
        ST_CLI_FLAG("ignore-change-password-upon-first-use",                                       \
                    "Control if a user should be forced to change their password immediately "     \
                    "after they log into keystone for the first time. Opt into ignoring the user " \
                    "to change their password during first time login in keystone",                \
                    0),                                                                            \
        ST_CLI_FLAG("no-ignore-change-password-upon-first-use",                                    \
                    "Control if a user should be forced to change their password immediately "     \
                    "after they log into keystone for the first time. Opt out of ignoring the "    \
                    "user to change their password during first time login in keystone",           \
                    0),                                                                            \
        ST_CLI_FLAG("enable-lock-password",                                                        \
                    "Disables the ability for a user to change its password through self-service " \
                    "APIs",                                                                        \
                    0),                                                                            \
        ST_CLI_FLAG("disable-lock-password",                                                       \
                    "Enables the ability for a user to change its password through self-service "  \
                    "APIs",                                                                        \
                    0),                                                                            \
        ST_CLI_FLAG("enable-multi-factor-auth", "Enables the MFA (Multi Factor Auth)", 0),         \
        ST_CLI_FLAG("disable-multi-factor-auth", "Disables the MFA (Multi Factor Auth)", 0),       \
        ST_CLI_APPEND("multi-factor-auth-rule", "<rule>",                                          \
                      "Set multi-factor auth rules. For example, to set a rule requiring the "     \
                      "\"password\" and \"totp\" auth methods to be provided, use: "               \
                      "\"--multi-factor-auth-rule password,totp\". May be provided multiple "      \
                      "times to set different rule combinations.")

static const struct st_cli_option create_opts[] = {
    ST_CLI_VALUE("domain", "<domain>", "Default domain (name or ID)"),
    ST_CLI_VALUE("project", "<project>", "Default project (name or ID)"),
    PROJECT_DOMAIN_OPTION,
    ST_CLI_VALUE("password", "<password>", "Set user password"),
    ST_CLI_FLAG("password-prompt", "Prompt interactively for password", 0),
    ST_CLI_VALUE("email", "<email-address>", "Set user email address"),
    ST_CLI_VALUE("description", "<description>", "User description"),
    USER_OPTIONS,
    ST_CLI_FLAG("enable", "Enable user (default)", GROUP_ENABLE),
    ST_CLI_FLAG("disable", "Disable user", GROUP_ENABLE),
    ST_CLI_FLAG("or-show", "Return existing user", 0),
    ST_CLI_OPTIONS_END,
};
static const struct st_cli_arg create_args[] = {
    {"<name>", "New user name", 0},
    {NULL, NULL, 0},
};

static const struct st_cli_option list_opts[] = {
    ST_CLI_VALUE("domain", "<domain>", "Filter users by <domain> (name or ID)"),
    {"group", 0, ST_CLI_OPT_VALUE, "<group>", "Filter users by <group> membership (name or ID)",
     NULL, false, GROUP_PROJECT_OR_GROUP},
    {"project", 0, ST_CLI_OPT_VALUE, "<project>", "Filter users by <project> (name or ID)", NULL,
     false, GROUP_PROJECT_OR_GROUP},
    ST_CLI_FLAG("long", "List additional fields in output", 0),
    ST_CLI_OPTIONS_END,
};

static const struct st_cli_option show_opts[] = {
    ST_CLI_VALUE("domain", "<domain>", "Domain owning <user> (name or ID)"),
    ST_CLI_OPTIONS_END,
};
static const struct st_cli_arg show_args[] = {
    {"<user>", "User to display (name or ID)", 0},
    {NULL, NULL, 0},
};

static const struct st_cli_option set_opts[] = {
    ST_CLI_VALUE("name", "<name>", "Set user name"),
    ST_CLI_VALUE("domain", "<domain>",
                 "Domain the user belongs to (name or ID). This can be used in case collisions "
                 "between user names exist."),
    ST_CLI_VALUE("project", "<project>", "Set default project (name or ID)"),
    PROJECT_DOMAIN_OPTION,
    ST_CLI_VALUE("password", "<password>", "Set user password"),
    ST_CLI_FLAG("password-prompt", "Prompt interactively for password", 0),
    ST_CLI_VALUE("email", "<email-address>", "Set user email address"),
    ST_CLI_VALUE("description", "<description>", "Set user description"),
    USER_OPTIONS,
    ST_CLI_FLAG("enable", "Enable user (default)", GROUP_ENABLE),
    ST_CLI_FLAG("disable", "Disable user", GROUP_ENABLE),
    ST_CLI_OPTIONS_END,
};
static const struct st_cli_arg set_args[] = {
    {"<user>", "User to modify (name or ID)", 0},
    {NULL, NULL, 0},
};

static const struct st_cli_option delete_opts[] = {
    ST_CLI_VALUE("domain", "<domain>", "Domain owning <user> (name or ID)"),
    ST_CLI_OPTIONS_END,
};
static const struct st_cli_arg delete_args[] = {
    {"<user>", "User(s) to delete (name or ID)", ST_CLI_ARG_MULTI},
    {NULL, NULL, 0},
};

#define SHOW (ST_CLI_CMD_SHOW | ST_CLI_CMD_AUTH | ST_CLI_CMD_PY_STR)
#define LIST (ST_CLI_CMD_LIST | ST_CLI_CMD_AUTH | ST_CLI_CMD_PY_STR)

const struct st_cli_command st_cli_user_commands[] = {
    {"user create", "Create new user", NULL, create_opts, create_args, SHOW, run_create},
    {"user delete", "Delete user(s)", NULL, delete_opts, delete_args, ST_CLI_CMD_AUTH, run_delete},
    {"user list", "List users", NULL, list_opts, NULL, LIST, run_list},
    {"user set", "Set user properties", NULL, set_opts, set_args, ST_CLI_CMD_AUTH, run_set},
    {"user show", "Display user details", NULL, show_opts, show_args, SHOW, run_show},
    {NULL, NULL, NULL, NULL, NULL, 0, NULL},
};
