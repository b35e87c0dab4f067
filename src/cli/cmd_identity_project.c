/* Keystone projects: the openstack CLI's `project` commands with its
 * options, request bodies and output (openstackclient identity/v3/
 * project.py over python-keystoneclient), so that a script written for
 * one client runs with the other and stratosd's Keystone sees the same
 * requests from both. */
#include "cmd_identity_project.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "auth.h"
#include "http.h"
#include "identity.h"
#include "lib/cleanup.h"
#include "lib/json.h"

enum { GROUP_ENABLE = 1, GROUP_IMMUTABLE };

/* Tags without repeats, in the order given (openstack: list(set(tags))). */
static json_t *unique_tags(char *const *tags, size_t n, json_t *start)
{
    json_t *out = start ? json_deep_copy(start) : json_array();
    for (size_t i = 0; i < n; i++) {
        bool seen = false;
        size_t j;
        json_t *t;
        json_array_foreach(out, j, t) seen = seen || strcmp(json_string_value(t), tags[i]) == 0;
        if (!seen)
            json_array_append_new(out, json_string(tags[i]));
    }
    return out;
}

/* ---- create ---- */

static int run_create(struct st_cli_ctx *ctx, struct st_err **err)
{
    const struct st_cli_args *a = &ctx->args;
    const char *name = a->pos[0];
    st_autofree char *domain_id = NULL;
    int r = st_cli_identity_domain_id(ctx, st_cli_args_get(a, "domain"), &domain_id, err);
    if (r < 0)
        return r;
    st_autoptr(json_t) parent = NULL;
    if (st_cli_args_get(a, "parent")) {
        r = st_cli_identity_find(ctx, &st_cli_identity_projects, st_cli_args_get(a, "parent"), NULL,
                                 &parent, err);
        if (r < 0)
            return r;
    }

    /* keystoneclient's field order; absent values are not sent */
    st_autoptr(json_t) project = json_object();
    if (domain_id)
        json_object_set_new(project, "domain_id", json_string(domain_id));
    json_object_set_new(project, "name", json_string(name));
    if (st_cli_args_get(a, "description"))
        json_object_set_new(project, "description", json_string(st_cli_args_get(a, "description")));
    json_object_set_new(project, "enabled", json_boolean(!st_cli_args_flag(a, "disable")));
    json_object_set_new(project, "options", st_cli_identity_immutable_options(ctx));
    r = st_cli_identity_properties(ctx, project, err);
    if (r < 0)
        return r;
    json_t *is_domain = json_object_get(project, "is_domain");
    if (json_is_string(is_domain)) {
        const char *v = json_string_value(is_domain);
        if (strcasecmp(v, "true") == 0)
            json_object_set_new(project, "is_domain", json_true());
        else if (strcasecmp(v, "false") == 0)
            json_object_set_new(project, "is_domain", json_false());
        else if (strcasecmp(v, "none") == 0)
            json_object_set_new(project, "is_domain", json_null());
    }
    char *const *tags;
    size_t n_tags = st_cli_args_all(a, "tag", &tags);
    json_object_set_new(project, "tags", unique_tags(tags, n_tags, NULL));
    if (parent)
        json_object_set_new(project, "parent_id", json_string(st_cli_identity_str(parent, "id")));

    st_autoptr(json_t) body = json_pack("{s:O}", "project", project);
    st_autoptr(json_t) resp = NULL;
    st_autoptr(st_err) e = NULL;
    r = st_cli_identity_call(ctx, "POST", "/projects", body, &resp, &e);
    st_autoptr(json_t) found = NULL;
    if (r == -EEXIST && st_cli_args_flag(a, "or-show")) {
        r = st_cli_identity_find(ctx, &st_cli_identity_projects, name, domain_id, &found, err);
        if (r < 0)
            return r;
        return st_cli_identity_show(ctx, found, err);
    }
    if (r < 0) {
        st_err_set(err, r, "%s", st_err_msg(e));
        return r;
    }
    return st_cli_identity_show(ctx, json_object_get(resp, "project"), err);
}

/* ---- list ---- */

static const struct st_cli_column list_cols[] = {
    {"ID", "id"},
    {"Name", "name"},
    {"Domain ID", "domain_id"},
    {"Description", "description"},
    {"Enabled", "enabled"},
};

static void add_query(FILE *f, bool *first, const char *key, const char *value)
{
    if (!value)
        return;
    st_autofree char *v = st_cli_http_escape(value);
    fprintf(f, "%c%s=%s", *first ? '?' : '&', key, v);
    *first = false;
}

static int run_list(struct st_cli_ctx *ctx, struct st_err **err)
{
    const struct st_cli_args *a = &ctx->args;
    st_autofree char *domain_id = NULL;
    int r = st_cli_identity_domain_id(ctx, st_cli_args_get(a, "domain"), &domain_id, err);
    if (r < 0)
        return r;
    st_autoptr(json_t) parent = NULL;
    st_autoptr(json_t) user = NULL;
    if (st_cli_args_get(a, "parent")) {
        r = st_cli_identity_find_lenient(ctx, &st_cli_identity_projects,
                                         st_cli_args_get(a, "parent"), NULL, &parent, err);
        if (r < 0)
            return r;
    }
    if (st_cli_args_get(a, "user")) {
        r = st_cli_identity_find(ctx, &st_cli_identity_users, st_cli_args_get(a, "user"), domain_id,
                                 &user, err);
        if (r < 0)
            return r;
    }
    const char *user_id = user ? st_cli_identity_str(user, "id") : NULL;
    struct st_cli_auth *auth;
    struct st_cli_http *h;
    json_t *token;
    if (st_cli_args_flag(a, "my-projects")) {
        /* supersedes every other filter */
        r = st_cli_ctx_auth(ctx, &auth, err);
        if (r == 0)
            r = st_cli_ctx_http(ctx, &h, err);
        if (r == 0)
            r = st_cli_auth_token_data(auth, h, &token, err);
        if (r < 0)
            return r;
        user_id = json_string_value(json_object_get(json_object_get(token, "user"), "id"));
        free(domain_id);
        domain_id = NULL;
        json_decref(parent);
        parent = NULL;
    }

    char *buf = NULL;
    size_t len;
    FILE *f = open_memstream(&buf, &len);
    if (!f)
        abort();
    if (user_id) {
        st_autofree char *u = st_cli_http_escape(user_id);
        fprintf(f, "/users/%s/projects", u);
    } else {
        fputs("/projects", f);
    }
    bool first = true;
    bool filtered = user_id != NULL;
    if (!st_cli_args_flag(a, "my-projects")) {
        add_query(f, &first, "domain_id", domain_id);
        add_query(f, &first, "parent_id", parent ? st_cli_identity_str(parent, "id") : NULL);
        static const char *const tag_opts[][2] = {{"tags", "tags"},
                                                  {"tags-any", "tags-any"},
                                                  {"not-tags", "not-tags"},
                                                  {"not-tags-any", "not-tags-any"}};
        for (size_t i = 0; i < ST_ARRAY_SIZE(tag_opts); i++)
            add_query(f, &first, tag_opts[i][1], st_cli_args_get(a, tag_opts[i][0]));
        filtered = filtered || !first;
    }
    fclose(f);
    st_autofree char *path = buf;

    st_autoptr(json_t) doc = NULL;
    st_autoptr(st_err) e = NULL;
    r = st_cli_identity_call(ctx, "GET", path, NULL, &doc, &e);
    if (r == -EPERM && !filtered) {
        /* a forbidden unfiltered list: a member wanting its own projects */
        r = st_cli_ctx_auth(ctx, &auth, err);
        if (r == 0)
            r = st_cli_ctx_http(ctx, &h, err);
        if (r == 0)
            r = st_cli_auth_token_data(auth, h, &token, err);
        if (r < 0)
            return r;
        st_autofree char *u =
            st_cli_http_escape(st_cli_identity_str(json_object_get(token, "user"), "id"));
        st_autofree char *mine = st_sprintf("/users/%s/projects", u);
        json_decref(doc);
        doc = NULL;
        st_err_clear(&e);
        r = st_cli_identity_call(ctx, "GET", mine, NULL, &doc, &e);
    }
    if (r < 0) {
        st_err_set(err, r, "%s", st_err_msg(e));
        return r;
    }
    json_t *rows = json_object_get(doc, "projects");
    if (!json_is_array(rows))
        return st_err_set(err, -EPROTO, "invalid response to GET %s: no \"projects\" list", path);
    r = st_cli_identity_sort(rows, st_cli_args_get(a, "sort"), err);
    if (r < 0)
        return r;
    return st_cli_ctx_list(ctx, list_cols, st_cli_args_flag(a, "long") ? 5 : 2, rows, err);
}

/* ---- show ---- */

static int run_show(struct st_cli_ctx *ctx, struct st_err **err)
{
    const struct st_cli_args *a = &ctx->args;
    const char *domain = st_cli_args_get(a, "domain");
    const char *value = st_cli_identity_token_resource(ctx, "project", a->pos[0], domain);
    st_autofree char *domain_id = NULL;
    if (domain) {
        st_autoptr(json_t) d = NULL;
        int r = st_cli_identity_find_lenient(ctx, &st_cli_identity_domains, domain, NULL, &d, err);
        if (r < 0)
            return r;
        domain_id = st_strdup(st_cli_identity_str(d, "id"));
    }
    st_autoptr(json_t) project = NULL;
    int r = st_cli_identity_find(ctx, &st_cli_identity_projects, value, domain_id, &project, err);
    if (r < 0)
        return r;
    bool parents = st_cli_args_flag(a, "parents"), children = st_cli_args_flag(a, "children");
    if (parents || children) {
        st_autofree char *id = st_cli_http_escape(st_cli_identity_str(project, "id"));
        st_autofree char *path =
            st_sprintf("/projects/%s?%s%s%s", id, children ? "subtree_as_ids" : "",
                       parents && children ? "&" : "", parents ? "parents_as_ids" : "");
        st_autoptr(json_t) doc = NULL;
        r = st_cli_identity_call(ctx, "GET", path, NULL, &doc, err);
        if (r < 0)
            return r;
        return st_cli_identity_show(ctx, json_object_get(doc, "project"), err);
    }
    return st_cli_identity_show(ctx, project, err);
}

/* ---- set ---- */

static int run_set(struct st_cli_ctx *ctx, struct st_err **err)
{
    const struct st_cli_args *a = &ctx->args;
    st_autoptr(json_t) project = NULL;
    int r = st_cli_identity_find_lenient(ctx, &st_cli_identity_projects, a->pos[0],
                                         st_cli_args_get(a, "domain"), &project, err);
    if (r < 0)
        return r;
    st_autoptr(json_t) changes = json_object();
    const char *name = st_cli_args_get(a, "name");
    const char *description = st_cli_args_get(a, "description");
    if (name && *name)
        json_object_set_new(changes, "name", json_string(name));
    if (description && *description)
        json_object_set_new(changes, "description", json_string(description));
    if (st_cli_args_flag(a, "enable"))
        json_object_set_new(changes, "enabled", json_true());
    if (st_cli_args_flag(a, "disable"))
        json_object_set_new(changes, "enabled", json_false());
    json_t *options = st_cli_identity_immutable_options(ctx);
    if (json_object_size(options) > 0)
        json_object_set_new(changes, "options", options);
    else
        json_decref(options);
    r = st_cli_identity_properties(ctx, changes, err);
    if (r < 0)
        return r;
    /* tags: --clear-tags empties, --remove-tag drops one (and wins over
     * --tag, as in openstackclient), --tag adds */
    json_t *current = json_object_get(project, "tags");
    st_autoptr(json_t) tags = json_is_array(current) ? json_deep_copy(current) : json_array();
    bool clear = st_cli_args_flag(a, "clear-tags");
    const char *remove = st_cli_args_get(a, "remove-tag");
    char *const *add;
    size_t n_add = st_cli_args_all(a, "tag", &add);
    if (clear) {
        json_array_clear(tags);
        json_object_set(changes, "tags", tags);
    }
    if (remove) {
        size_t i;
        json_t *t;
        json_array_foreach(tags, i, t) if (strcmp(json_string_value(t), remove) == 0)
        {
            json_array_remove(tags, i);
            break;
        }
        json_object_set_new(changes, "tags", unique_tags(NULL, 0, tags));
    } else if (n_add > 0) {
        json_object_set_new(changes, "tags", unique_tags(add, n_add, tags));
    }
    st_autofree char *id = st_cli_http_escape(st_cli_identity_str(project, "id"));
    st_autofree char *path = st_sprintf("/projects/%s", id);
    st_autoptr(json_t) body = json_pack("{s:O}", "project", changes);
    return st_cli_identity_call(ctx, "PATCH", path, body, NULL, err);
}

/* ---- delete ---- */

static int run_delete(struct st_cli_ctx *ctx, struct st_err **err)
{
    const char *domain = st_cli_args_get(&ctx->args, "domain");
    st_autofree char *domain_id = NULL;
    if (domain) {
        /* an unknown domain fails the command before any delete */
        st_autoptr(json_t) d = NULL;
        int r = st_cli_identity_find_lenient(ctx, &st_cli_identity_domains, domain, NULL, &d, err);
        if (r < 0)
            return r;
        domain_id = st_strdup(st_cli_identity_str(d, "id"));
    }
    return st_cli_identity_delete_each(ctx, &st_cli_identity_projects, domain_id, err);
}

/* ---- the table ---- */

static const struct st_cli_option create_opts[] = {
    ST_CLI_VALUE("domain", "<domain>", "Domain owning the project (name or ID)"),
    ST_CLI_VALUE("parent", "<project>", "Parent of the project (name or ID)"),
    ST_CLI_VALUE("description", "<description>", "Project description"),
    ST_CLI_FLAG("enable", "Enable project", GROUP_ENABLE),
    ST_CLI_FLAG("disable", "Disable project", GROUP_ENABLE),
    ST_CLI_APPEND("property", "<key=value>",
                  "Add a property to <name> (repeat option to set multiple properties)"),
    ST_CLI_FLAG("or-show", "Return existing project", 0),
    ST_CLI_IDENTITY_IMMUTABLE_OPTIONS(GROUP_IMMUTABLE),
    ST_CLI_APPEND("tag", "<tag>",
                  "Tag to be added to the project (repeat option to set multiple tags)"),
    ST_CLI_OPTIONS_END,
};
static const struct st_cli_arg create_args[] = {
    {"<project-name>", "New project name", 0},
    {NULL, NULL, 0},
};

static const struct st_cli_option list_opts[] = {
    ST_CLI_VALUE("domain", "<domain>", "Filter projects by <domain> (name or ID)"),
    ST_CLI_VALUE("parent", "<parent>", "Filter projects whose parent is <parent> (name or ID)"),
    ST_CLI_VALUE("user", "<user>", "Filter projects by <user> (name or ID)"),
    ST_CLI_FLAG("my-projects",
                "List projects for the authenticated user. Supersedes other filters.", 0),
    ST_CLI_FLAG("long", "List additional fields in output", 0),
    ST_CLI_VALUE(
        "sort", "<key>[:<direction>]",
        "Sort output by selected keys and directions (asc or desc) (default: asc), repeat this "
        "option to specify multiple keys and directions."),
    ST_CLI_VALUE("tags", "<tag>[,<tag>,...]",
                 "List projects which have all given tag(s) (Comma-separated list of tags)"),
    ST_CLI_VALUE("tags-any", "<tag>[,<tag>,...]",
                 "List projects which have any given tag(s) (Comma-separated list of tags)"),
    ST_CLI_VALUE("not-tags", "<tag>[,<tag>,...]",
                 "Exclude projects which have all given tag(s) (Comma-separated list of tags)"),
    ST_CLI_VALUE("not-tags-any", "<tag>[,<tag>,...]",
                 "Exclude projects which have any given tag(s) (Comma-separated list of tags)"),
    ST_CLI_OPTIONS_END,
};

static const struct st_cli_option show_opts[] = {
    ST_CLI_VALUE("domain", "<domain>", "Domain owning <project> (name or ID)"),
    ST_CLI_FLAG("parents", "Show the project's parents as a list", 0),
    ST_CLI_FLAG("children", "Show project's subtree (children) as a list", 0),
    ST_CLI_OPTIONS_END,
};
static const struct st_cli_arg show_args[] = {
    {"<project>", "Project to display (name or ID)", 0},
    {NULL, NULL, 0},
};

static const struct st_cli_option set_opts[] = {
    ST_CLI_VALUE("name", "<name>", "Set project name"),
    ST_CLI_VALUE("domain", "<domain>", "Domain owning <project> (name or ID)"),
    ST_CLI_VALUE("description", "<description>", "Set project description"),
    ST_CLI_FLAG("enable", "Enable project", GROUP_ENABLE),
    ST_CLI_FLAG("disable", "Disable project", GROUP_ENABLE),
    ST_CLI_APPEND("property", "<key=value>",
                  "Set a property on <project> (repeat option to set multiple properties)"),
    ST_CLI_IDENTITY_IMMUTABLE_OPTIONS(GROUP_IMMUTABLE),
    ST_CLI_APPEND("tag", "<tag>",
                  "Tag to be added to the project (repeat option to set multiple tags)"),
    ST_CLI_FLAG("clear-tags",
                "Clear tags associated with the project. Specify both --tag and --clear-tags to "
                "overwrite current tags",
                0),
    ST_CLI_VALUE("remove-tag", "<tag>",
                 "Tag to be deleted from the project (repeat option to delete multiple tags)"),
    ST_CLI_OPTIONS_END,
};
static const struct st_cli_arg set_args[] = {
    {"<project>", "Project to modify (name or ID)", 0},
    {NULL, NULL, 0},
};

static const struct st_cli_option delete_opts[] = {
    ST_CLI_VALUE("domain", "<domain>", "Domain owning <project> (name or ID)"),
    ST_CLI_OPTIONS_END,
};
static const struct st_cli_arg delete_args[] = {
    {"<project>", "Project(s) to delete (name or ID)", ST_CLI_ARG_MULTI},
    {NULL, NULL, 0},
};

#define SHOW (ST_CLI_CMD_SHOW | ST_CLI_CMD_AUTH | ST_CLI_CMD_PY_STR)
#define LIST (ST_CLI_CMD_LIST | ST_CLI_CMD_AUTH | ST_CLI_CMD_PY_STR)

const struct st_cli_command st_cli_project_commands[] = {
    {"project create", "Create new project", NULL, create_opts, create_args, SHOW, run_create},
    {"project delete", "Delete project(s)", NULL, delete_opts, delete_args, ST_CLI_CMD_AUTH,
     run_delete},
    {"project list", "List projects", NULL, list_opts, NULL, LIST, run_list},
    {"project set", "Set project properties", NULL, set_opts, set_args, ST_CLI_CMD_AUTH, run_set},
    {"project show", "Display project details", NULL, show_opts, show_args, SHOW, run_show},
    {NULL, NULL, NULL, NULL, NULL, 0, NULL},
};
