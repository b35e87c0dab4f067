/* The dispatcher; see command.h. Help and usage texts follow argparse's
 * layout (usage line, positional arguments, options, output formatters) and
 * the unknown-command message follows cliff's, because the openstack CLI is
 * what users of this one already read. */
#include "command.h"

#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <stdint.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "auth.h"
#include "cmd_apply.h"
#include "cmd_flavor.h"
#include "cmd_floatingip.h"
#include "cmd_hypervisor.h"
#include "cmd_identity_project.h"
#include "cmd_identity_role.h"
#include "cmd_identity_token.h"
#include "cmd_identity_user.h"
#include "cmd_image.h"
#include "cmd_keypair.h"
#include "cmd_network.h"
#include "cmd_port.h"
#include "cmd_quota.h"
#include "cmd_router.h"
#include "cmd_security_group.h"
#include "cmd_security_group_rule.h"
#include "cmd_server.h"
#include "cmd_server_group.h"
#include "cmd_subnet.h"
#include "cmd_system.h"
#include "http.h"
#include "lib/cleanup.h"
#include "version.h"

static int run_help(struct st_cli_ctx *ctx, struct st_err **err);

static const struct st_cli_arg help_args[] = {
    {"<command>", "name of the command", ST_CLI_ARG_OPTIONAL | ST_CLI_ARG_MULTI},
    {NULL, NULL, 0},
};

static const struct st_cli_command builtin_commands[] = {
    {"help", "print detailed help for another command", NULL, NULL, help_args, 0, run_help},
    {NULL, NULL, NULL, NULL, NULL, 0, NULL},
};

/* Every command table; a new resource adds its table here. */
static const struct st_cli_command *const command_tables[] = {
    builtin_commands,
    st_cli_system_commands,
    st_cli_token_commands,
    st_cli_project_commands,
    st_cli_user_commands,
    st_cli_role_commands,
    st_cli_image_commands,
    st_cli_flavor_commands,
    st_cli_keypair_commands,
    st_cli_server_commands,
    st_cli_server_action_commands,
    st_cli_hypervisor_commands,
    st_cli_quota_commands,
    st_cli_apply_commands,
    st_cli_network_commands,
    st_cli_subnet_commands,
    st_cli_port_commands,
    st_cli_router_commands,
    st_cli_floatingip_commands,
    st_cli_security_group_commands,
    st_cli_security_group_rule_commands,
    st_cli_server_group_commands,
};

/* ---- output options (cliff's, for show and list commands) ---- */

static const char *const show_formats[] = {"json", "shell", "table", "value", "yaml", NULL};
static const char *const list_formats[] = {"csv", "json", "table", "value", "yaml", NULL};
static const char *const quote_modes[] = {"all", "minimal", "none", "nonnumeric", NULL};

#define OPT_COLUMN                                                                                 \
    {                                                                                              \
        "column", 'c', ST_CLI_OPT_APPEND, "COLUMN",                                                \
            "specify the column(s) to include, can be repeated to show multiple columns", NULL,    \
            false, 0                                                                               \
    }
#define OPT_NOINDENT                                                                               \
    {                                                                                              \
        "noindent", 0, ST_CLI_OPT_FLAG, NULL, "whether to disable indenting the JSON", NULL,       \
            false, 0                                                                               \
    }

static const struct st_cli_option show_output_options[] = {
    {"format", 'f', ST_CLI_OPT_VALUE, NULL, "the output format, defaults to table", show_formats,
     false, 0},
    OPT_COLUMN,
    OPT_NOINDENT,
    {"prefix", 0, ST_CLI_OPT_VALUE, "PREFIX", "add a prefix to all variable names", NULL, false, 0},
    {NULL, 0, 0, NULL, NULL, NULL, false, 0},
};

static const struct st_cli_option list_output_options[] = {
    {"format", 'f', ST_CLI_OPT_VALUE, NULL, "the output format, defaults to table", list_formats,
     false, 0},
    OPT_COLUMN,
    {"quote", 0, ST_CLI_OPT_VALUE, NULL, "when to include quotes, defaults to nonnumeric",
     quote_modes, false, 0},
    OPT_NOINDENT,
    {"print-empty", 0, ST_CLI_OPT_FLAG, NULL, "Print empty table if there is no data to show.",
     NULL, false, 0},
    {"sort-column", 0, ST_CLI_OPT_APPEND, "SORT_COLUMN",
     "specify the column(s) to sort the data (columns specified first have a priority, "
     "non-existing columns are ignored), can be repeated",
     NULL, false, 0},
    {"sort-ascending", 0, ST_CLI_OPT_FLAG, NULL, "sort the column(s) in ascending order", NULL,
     false, 1},
    {"sort-descending", 0, ST_CLI_OPT_FLAG, NULL, "sort the column(s) in descending order", NULL,
     false, 1},
    {NULL, 0, 0, NULL, NULL, NULL, false, 0},
};

static const struct st_cli_option help_option[] = {
    {"help", 'h', ST_CLI_OPT_FLAG, NULL, "show this help message and exit", NULL, false, 0},
    {NULL, 0, 0, NULL, NULL, NULL, false, 0},
};

static const struct st_cli_option *output_options(const struct st_cli_command *cmd)
{
    if (cmd->flags & ST_CLI_CMD_SHOW)
        return show_output_options;
    if (cmd->flags & ST_CLI_CMD_LIST)
        return list_output_options;
    return NULL;
}

/* ---- lookup ---- */

static size_t name_words(const char *name, char ***ret)
{
    char **w = NULL;
    size_t n = 0;
    st_autofree char *copy = st_strdup(name);
    char *save = NULL;
    for (char *t = strtok_r(copy, " ", &save); t; t = strtok_r(NULL, " ", &save)) {
        w = st_xrealloc(w, (n + 1) * sizeof(*w));
        w[n++] = st_strdup(t);
    }
    *ret = w;
    return n;
}

static void free_words(char **w, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(w[i]);
    free(w);
}

const struct st_cli_command *st_cli_command_lookup(char *const *words, size_t n, size_t *ret_used)
{
    const struct st_cli_command *best = NULL;
    size_t best_n = 0;
    for (size_t t = 0; t < ST_ARRAY_SIZE(command_tables); t++)
        for (const struct st_cli_command *c = command_tables[t]; c->name; c++) {
            char **w;
            size_t nw = name_words(c->name, &w);
            bool match = nw <= n && nw > best_n;
            for (size_t i = 0; match && i < nw; i++)
                match = strcmp(w[i], words[i]) == 0;
            if (match) {
                best = c;
                best_n = nw;
            }
            free_words(w, nw);
        }
    if (ret_used)
        *ret_used = best_n;
    return best;
}

/* Damerau-free Levenshtein distance, for "did you mean" on typos. */
static size_t edit_distance(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b);
    st_autofree size_t *row = st_new0(size_t, lb + 1);
    for (size_t j = 0; j <= lb; j++)
        row[j] = j;
    for (size_t i = 1; i <= la; i++) {
        size_t diag = row[0];
        row[0] = i;
        for (size_t j = 1; j <= lb; j++) {
            size_t up = row[j];
            size_t best = diag + (a[i - 1] != b[j - 1]);
            if (row[j] + 1 < best)
                best = row[j] + 1;
            if (row[j - 1] + 1 < best)
                best = row[j - 1] + 1;
            row[j] = best;
            diag = up;
        }
    }
    return row[lb];
}

/* The commands a mistyped first word may have meant: same resource, a
 * prefix of it, or a small typo away. */
static size_t print_suggestions(FILE *f, const char *word)
{
    size_t n = 0;
    for (size_t t = 0; t < ST_ARRAY_SIZE(command_tables); t++)
        for (const struct st_cli_command *c = command_tables[t]; c->name; c++) {
            size_t first_len = strcspn(c->name, " ");
            st_autofree char *first = st_strndup(c->name, first_len);
            bool close = strcmp(first, word) == 0 || strncmp(first, word, strlen(word)) == 0 ||
                         (strlen(word) > 2 && edit_distance(first, word) <= 2);
            if (!close)
                continue;
            if (n++ == 0)
                fputs("Did you mean one of these?\n", f);
            fprintf(f, "  %s\n", c->name);
        }
    return n;
}

/* ---- help ---- */

/* argparse's width: $COLUMNS, else the terminal's, else 80; minus 2. */
static size_t text_width(void)
{
    long cols = 0;
    const char *env = getenv("COLUMNS");
    if (env)
        cols = strtol(env, NULL, 10);
    struct winsize ws;
    if (cols <= 0 && ioctl(STDOUT_FILENO, TIOCGWINSZ, &ws) == 0 && ws.ws_col > 0)
        cols = ws.ws_col;
    if (cols <= 0)
        cols = 80;
    return cols > 13 ? (size_t)cols - 2 : 11;
}

/* Greedy word wrap of text into lines of at most width characters (a
 * longer word gets a line of its own), as textwrap.wrap for plain prose:
 * the first line printed as is, the others after indent spaces. */
static void wrap_text(FILE *f, const char *text, size_t width, size_t indent)
{
    size_t line = 0;
    bool first_word = true;
    for (const char *p = text; *p;) {
        while (*p == ' ' || *p == '\n')
            p++;
        if (!*p)
            break;
        size_t n = strcspn(p, " \n");
        if (!first_word && line + 1 + n > width) {
            fprintf(f, "\n%*s", (int)indent, "");
            line = 0;
            first_word = true;
        }
        if (!first_word) {
            fputc(' ', f);
            line++;
        }
        fwrite(p, 1, n, f);
        line += n;
        first_word = false;
        p += n;
    }
    fputc('\n', f);
}

static void help_line(FILE *f, const char *invocation, const char *help, size_t column)
{
    /* argparse: the help starts at `column`, or on the next line, and wraps
     * at the text width */
    size_t width = text_width();
    size_t help_width = width > column + 11 ? width - column : 11;
    if (strlen(invocation) + 4 <= column)
        fprintf(f, "  %-*s  ", (int)(column - 4), invocation);
    else
        fprintf(f, "  %s\n%*s", invocation, (int)column, "");
    wrap_text(f, help ? help : "", help_width, column);
}

static size_t help_column(const struct st_cli_option *const *tables, size_t n_tables,
                          const struct st_cli_arg *args)
{
    size_t max = 0;
    for (size_t t = 0; t < n_tables; t++)
        for (const struct st_cli_option *o = tables[t]; o && o->name; o++) {
            st_autofree char *s = st_cli_option_synopsis(o, false);
            if (strlen(s) > max)
                max = strlen(s);
        }
    for (const struct st_cli_arg *a = args; a && a->metavar; a++)
        if (strlen(a->metavar) > max)
            max = strlen(a->metavar);
    return max + 4 < 24 ? max + 4 : 24;
}

static void print_global_usage(FILE *f)
{
    fputs("usage: stratos [--version] [-h] [--debug] [--os-endpoint <url>] [--os-token "
          "<auth-token>] [...]\n               <command> [<args>]\n",
          f);
}

static void print_global_help(FILE *f)
{
    const struct st_cli_option *const tables[] = {st_cli_global_options};
    size_t col = help_column(tables, 1, NULL);
    print_global_usage(f);
    fputs("\nCommand-line interface to stratos, the cloud operating system.\n\noptions:\n", f);
    for (const struct st_cli_option *o = st_cli_global_options; o->name; o++) {
        st_autofree char *s = st_cli_option_synopsis(o, false);
        help_line(f, s, o->help, col);
    }
    fputs("\nCommands:\n", f);
    size_t width = 0;
    for (size_t t = 0; t < ST_ARRAY_SIZE(command_tables); t++)
        for (const struct st_cli_command *c = command_tables[t]; c->name; c++)
            if (strlen(c->name) > width)
                width = strlen(c->name);
    /* sorted by name, as cliff lists them */
    const struct st_cli_command **all = NULL;
    size_t n = 0;
    for (size_t t = 0; t < ST_ARRAY_SIZE(command_tables); t++)
        for (const struct st_cli_command *c = command_tables[t]; c->name; c++) {
            all = st_xrealloc(all, (n + 1) * sizeof(*all));
            all[n++] = c;
        }
    for (size_t i = 1; i < n; i++)
        for (size_t j = i; j > 0 && strcmp(all[j - 1]->name, all[j]->name) > 0; j--) {
            const struct st_cli_command *tmp = all[j];
            all[j] = all[j - 1];
            all[j - 1] = tmp;
        }
    for (size_t i = 0; i < n; i++)
        fprintf(f, "  %-*s  %s\n", (int)width, all[i]->name, all[i]->summary);
    free(all);
}

static void push_part(char ***parts, size_t *n, char *part)
{
    *parts = st_xrealloc(*parts, (*n + 1) * sizeof(**parts));
    (*parts)[(*n)++] = part;
}

/* argparse's get_lines: the parts joined by spaces into lines of at most
 * width, each line after indent spaces; with a prefix (of prefix_len
 * characters, already printed), the first line is not indented. The lines
 * are appended to *lines. */
static void get_lines(char *const *parts, size_t n, size_t indent, long prefix_len, size_t width,
                      char ***lines, size_t *n_lines)
{
    char *buf = NULL;
    size_t len;
    FILE *line = NULL;
    size_t first_line = *n_lines;
    long line_len = prefix_len >= 0 ? prefix_len - 1 : (long)indent - 1;
    bool empty = true;
    for (size_t i = 0; i < n; i++) {
        long k = (long)strlen(parts[i]);
        if (line_len + 1 + k > (long)width && !empty) {
            fclose(line);
            push_part(lines, n_lines, buf);
            line = NULL;
            empty = true;
            line_len = (long)indent - 1;
        }
        if (!line) {
            line = open_memstream(&buf, &len);
            if (!line)
                abort();
            fprintf(line, "%*s", (int)indent, "");
        }
        fprintf(line, "%s%s", empty ? "" : " ", parts[i]);
        empty = false;
        line_len += k + 1;
    }
    if (line) {
        fclose(line);
        push_part(lines, n_lines, buf);
    }
    if (prefix_len >= 0 && *n_lines > first_line) {
        char *l = (*lines)[first_line];
        memmove(l, l + indent, strlen(l + indent) + 1);
    }
}

static void print_usage(FILE *f, const struct st_cli_command *cmd)
{
    char **opt_parts = NULL, **pos_parts = NULL;
    size_t n_opt = 0, n_pos = 0;
    push_part(&opt_parts, &n_opt, st_strdup("[-h]"));
    const struct st_cli_option *const tables[] = {output_options(cmd), cmd->options};
    for (size_t t = 0; t < ST_ARRAY_SIZE(tables); t++)
        for (const struct st_cli_option *o = tables[t]; o && o->name; o++) {
            st_autofree char *s = st_cli_option_synopsis(o, true);
            if (!o->group) {
                push_part(&opt_parts, &n_opt, st_sprintf(o->required ? "%s" : "[%s]", s));
                continue;
            }
            /* an exclusive group, as argparse shows it: [--enable | --disable] */
            bool first = o == tables[t] || o[-1].group != o->group;
            bool last = !o[1].name || o[1].group != o->group;
            if (first) {
                push_part(&opt_parts, &n_opt, st_sprintf("[%s%s", s, last ? "]" : ""));
            } else {
                char *prev = opt_parts[n_opt - 1];
                opt_parts[n_opt - 1] = st_sprintf("%s | %s%s", prev, s, last ? "]" : "");
                free(prev);
            }
        }
    for (const struct st_cli_arg *a = cmd->args; a && a->metavar; a++) {
        if (a->flags & ST_CLI_ARG_MULTI) {
            if (!(a->flags & ST_CLI_ARG_OPTIONAL))
                push_part(&pos_parts, &n_pos, st_strdup(a->metavar));
            push_part(&pos_parts, &n_pos, st_sprintf("[%s ...]", a->metavar));
        } else {
            push_part(&pos_parts, &n_pos,
                      st_sprintf((a->flags & ST_CLI_ARG_OPTIONAL) ? "[%s]" : "%s", a->metavar));
        }
    }

    /* argparse's _format_usage: one line when it fits, else wrapped */
    const char *prefix = "usage: ";
    char *prog = st_sprintf("stratos %s", cmd->name);
    size_t width = text_width(), total = strlen(prefix) + strlen(prog);
    for (size_t i = 0; i < n_opt; i++)
        total += 1 + strlen(opt_parts[i]);
    for (size_t i = 0; i < n_pos; i++)
        total += 1 + strlen(pos_parts[i]);
    char **lines = NULL;
    size_t n_lines = 0;
    if (total <= width) {
        char **all = NULL;
        size_t n_all = 0;
        push_part(&all, &n_all, prog);
        for (size_t i = 0; i < n_opt; i++)
            push_part(&all, &n_all, opt_parts[i]);
        for (size_t i = 0; i < n_pos; i++)
            push_part(&all, &n_all, pos_parts[i]);
        get_lines(all, n_all, 0, -1, SIZE_MAX / 2, &lines, &n_lines);
        free(all);
    } else if (4 * (strlen(prefix) + strlen(prog)) <= 3 * width) {
        /* a short prog: the options after it, the positionals below */
        size_t indent = strlen(prefix) + strlen(prog) + 1;
        char **with_prog = NULL;
        size_t n_with = 0;
        push_part(&with_prog, &n_with, prog);
        for (size_t i = 0; i < n_opt; i++)
            push_part(&with_prog, &n_with, opt_parts[i]);
        get_lines(with_prog, n_with, indent, (long)strlen(prefix), width, &lines, &n_lines);
        get_lines(pos_parts, n_pos, indent, -1, width, &lines, &n_lines);
        free(with_prog);
    } else {
        /* a long prog on its own line, the parts below */
        size_t indent = strlen(prefix);
        push_part(&lines, &n_lines, st_strdup(prog));
        get_lines(opt_parts, n_opt, indent, -1, width, &lines, &n_lines);
        get_lines(pos_parts, n_pos, indent, -1, width, &lines, &n_lines);
    }
    fputs(prefix, f);
    for (size_t i = 0; i < n_lines; i++) {
        fprintf(f, "%s%s", i ? "\n" : "", lines[i]);
        free(lines[i]);
    }
    fputc('\n', f);
    free(lines);
    free(prog);
    for (size_t i = 0; i < n_opt; i++)
        free(opt_parts[i]);
    for (size_t i = 0; i < n_pos; i++)
        free(pos_parts[i]);
    free(opt_parts);
    free(pos_parts);
}

static void print_command_help(FILE *f, const struct st_cli_command *cmd)
{
    const struct st_cli_option *out_opts = output_options(cmd);
    const struct st_cli_option *const tables[] = {help_option, cmd->options, out_opts};
    size_t col = help_column(tables, ST_ARRAY_SIZE(tables), cmd->args);
    print_usage(f, cmd);
    fprintf(f, "\n%s\n", cmd->description ? cmd->description : cmd->summary);
    if (cmd->args && cmd->args->metavar) {
        fputs("\npositional arguments:\n", f);
        for (const struct st_cli_arg *a = cmd->args; a->metavar; a++)
            help_line(f, a->metavar, a->help, col);
    }
    fputs("\noptions:\n", f);
    for (size_t t = 0; t < 2; t++)
        for (const struct st_cli_option *o = tables[t]; o && o->name; o++) {
            st_autofree char *s = st_cli_option_synopsis(o, false);
            help_line(f, s, o->help, col);
        }
    if (out_opts) {
        fputs("\noutput formatters:\n  output formatter options\n\n", f);
        for (const struct st_cli_option *o = out_opts; o->name; o++) {
            st_autofree char *s = st_cli_option_synopsis(o, false);
            help_line(f, s, o->help, col);
        }
    }
}

static void print_unknown(FILE *f, char *const *words, size_t n)
{
    fputs("stratos: '", f);
    for (size_t i = 0; i < n; i++)
        fprintf(f, "%s%s", i ? " " : "", words[i]);
    fputs("' is not a stratos command. See 'stratos --help'.\n", f);
    if (n > 0)
        print_suggestions(f, words[0]);
}

static int run_help(struct st_cli_ctx *ctx, struct st_err **err)
{
    (void)err;
    char **words = ctx->args.pos;
    size_t n = ctx->args.n_pos, used = 0;
    if (n == 0) {
        print_global_help(ctx->out);
        return 0;
    }
    const struct st_cli_command *cmd = st_cli_command_lookup(words, n, &used);
    if (cmd && used == n) {
        print_command_help(ctx->out, cmd);
        return 0;
    }
    /* "stratos help server": the commands of that resource */
    st_autofree char *prefix = NULL;
    {
        char *buf = NULL;
        size_t len;
        FILE *f = open_memstream(&buf, &len);
        if (!f)
            abort();
        for (size_t i = 0; i < n; i++)
            fprintf(f, "%s%s", i ? " " : "", words[i]);
        fclose(f);
        prefix = buf;
    }
    size_t plen = strlen(prefix), matches = 0;
    for (size_t t = 0; t < ST_ARRAY_SIZE(command_tables); t++)
        for (const struct st_cli_command *c = command_tables[t]; c->name; c++)
            if (strncmp(c->name, prefix, plen) == 0 && c->name[plen] == ' ') {
                if (matches++ == 0)
                    fprintf(ctx->out, "Command \"%s\" matches:\n", prefix);
                fprintf(ctx->out, "  %s\n", c->name);
            }
    if (matches > 0)
        return 0;
    print_unknown(ctx->err, words, n);
    return 2;
}

/* ---- the context ---- */

int st_cli_ctx_endpoint(struct st_cli_ctx *ctx, const char **ret, struct st_err **err)
{
    if (!ctx->endpoint) {
        int r = st_cli_config_endpoint(ctx->cfg, &ctx->endpoint, err);
        if (r < 0)
            return r;
    }
    *ret = ctx->endpoint;
    return 0;
}

int st_cli_ctx_http(struct st_cli_ctx *ctx, struct st_cli_http **ret, struct st_err **err)
{
    if (!ctx->http) {
        const char *endpoint;
        int r = st_cli_ctx_endpoint(ctx, &endpoint, err);
        if (r < 0)
            return r;
        struct st_cli_http_opts opts = {
            .base_url = endpoint,
            .cacert = ctx->cfg->cacert,
            .insecure = ctx->cfg->insecure,
            .timeout_s = ctx->cfg->timeout_s,
            .debug = ctx->cfg->debug ? ctx->err : NULL,
        };
        struct st_cli_http *h;
        r = st_cli_http_new(&opts, &h, err);
        if (r < 0)
            return r;
        if (ctx->cmd->flags & ST_CLI_CMD_AUTH) {
            r = st_cli_config_authenticate(ctx->cfg, h, &ctx->auth, err);
            if (r < 0) {
                st_cli_http_free(h);
                return r;
            }
        }
        ctx->http = h;
    }
    *ret = ctx->http;
    return 0;
}

int st_cli_ctx_auth(struct st_cli_ctx *ctx, struct st_cli_auth **ret, struct st_err **err)
{
    struct st_cli_http *h;
    int r = st_cli_ctx_http(ctx, &h, err);
    if (r < 0)
        return r;
    if (!ctx->auth)
        return st_err_set(err, -EINVAL, "command '%s' is not one that logs in", ctx->cmd->name);
    *ret = ctx->auth;
    return 0;
}

int st_cli_ctx_service_url(struct st_cli_ctx *ctx, const char *type, char **ret,
                           struct st_err **err)
{
    struct st_cli_auth *a = NULL;
    int r = st_cli_ctx_auth(ctx, &a, err);
    if (r < 0)
        return r;
    return st_cli_auth_service_url(a, type, ret, err);
}

int st_cli_ctx_show(struct st_cli_ctx *ctx, const json_t *obj, struct st_err **err)
{
    return st_cli_output_show(ctx->out, &ctx->output, obj, err);
}

int st_cli_ctx_list(struct st_cli_ctx *ctx, const struct st_cli_column *cols, size_t n_cols,
                    const json_t *rows, struct st_err **err)
{
    return st_cli_output_list(ctx->out, &ctx->output, cols, n_cols, rows, err);
}

int st_cli_ctx_usage_error(struct st_cli_ctx *ctx, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char *msg = NULL;
    if (vasprintf(&msg, fmt, ap) < 0)
        abort();
    va_end(ap);
    print_usage(ctx->err, ctx->cmd);
    fprintf(ctx->err, "stratos %s: error: %s\n", ctx->cmd->name, msg);
    free(msg);
    return 2;
}

int st_cli_ctx_int_option(struct st_cli_ctx *ctx, const char *name, long def, long *ret)
{
    const char *v = st_cli_args_get(&ctx->args, name);
    *ret = def;
    if (!v)
        return 0;
    char *end = NULL;
    errno = 0;
    long n = strtol(v, &end, 10);
    if (errno || end == v || *end != '\0')
        return st_cli_ctx_usage_error(ctx, "argument --%s: invalid int value: '%s'", name, v);
    *ret = n;
    return 0;
}

static void output_from_args(struct st_cli_output_opts *o, const struct st_cli_command *cmd,
                             const struct st_cli_args *a)
{
    *o = (struct st_cli_output_opts){.python_str = cmd->flags & ST_CLI_CMD_PY_STR};
    const char *fmt = st_cli_args_get(a, "format");
    if (fmt)
        st_cli_output_format_parse(fmt, &o->format); /* choices were checked */
    const char *quote = st_cli_args_get(a, "quote");
    if (quote)
        st_cli_output_quote_parse(quote, &o->quote);
    char *const *v;
    o->n_columns = st_cli_args_all(a, "column", &v);
    o->columns = (const char *const *)v;
    o->n_sort_columns = st_cli_args_all(a, "sort-column", &v);
    o->sort_columns = (const char *const *)v;
    o->sort_descending = st_cli_args_flag(a, "sort-descending");
    o->noindent = st_cli_args_flag(a, "noindent");
    o->print_empty = st_cli_args_flag(a, "print-empty");
    o->prefix = st_cli_args_get(a, "prefix");
}

/* ---- main ---- */

static bool is_option_token(const char *s)
{
    return s[0] == '-' && s[1] != '\0';
}

static int usage_error(FILE *f, const struct st_cli_command *cmd, const struct st_err *e)
{
    if (cmd) {
        print_usage(f, cmd);
        fprintf(f, "stratos %s: error: %s\n", cmd->name, st_err_msg(e));
    } else {
        print_global_usage(f);
        fprintf(f, "stratos: error: %s\n", st_err_msg(e));
    }
    return 2;
}

int st_cli_run(int argc, char **argv, FILE *out, FILE *errf)
{
    struct st_cli_config cfg;
    struct st_cli_args global = {0};
    st_autoptr(st_err) err = NULL;
    int rc;

    int r = st_cli_config_load(&cfg, argc > 0 ? argc - 1 : 0, argv + (argc > 0), &global, &err);
    if (r < 0) {
        rc = usage_error(errf, NULL, err);
        goto out_cfg;
    }
    if (cfg.version) {
        fprintf(out, "stratos %s\n", ST_VERSION);
        rc = 0;
        goto out_cfg;
    }
    if (global.n_rest == 0) {
        print_global_help(out);
        rc = 0;
        goto out_cfg;
    }
    size_t n_words = 0;
    while (n_words < global.n_rest && !is_option_token(global.rest[n_words]))
        n_words++;
    if (n_words == 0) {
        st_err_set(&err, -EINVAL, "unrecognized arguments: %s", global.rest[0]);
        rc = usage_error(errf, NULL, err);
        goto out_cfg;
    }
    size_t used;
    const struct st_cli_command *cmd = st_cli_command_lookup(global.rest, n_words, &used);
    if (!cmd) {
        print_unknown(errf, global.rest, n_words);
        rc = 2;
        goto out_cfg;
    }

    struct st_cli_ctx ctx = {.cmd = cmd, .cfg = &cfg, .out = out, .err = errf};
    const struct st_cli_option *const tables[] = {cmd->options, output_options(cmd)};
    r = st_cli_args_parse(tables, ST_ARRAY_SIZE(tables), (int)(global.n_rest - used),
                          global.rest + used, false, &ctx.args, &err);
    if (r < 0) {
        rc = cfg.help ? (print_command_help(out, cmd), 0) : usage_error(errf, cmd, err);
        goto out_cfg;
    }
    if (cfg.help) {
        print_command_help(out, cmd);
        rc = 0;
        goto out_ctx;
    }
    r = st_cli_args_check(&ctx.args, tables, ST_ARRAY_SIZE(tables), cmd->args, &err);
    if (r < 0) {
        rc = usage_error(errf, cmd, err);
        goto out_ctx;
    }
    output_from_args(&ctx.output, cmd, &ctx.args);

    rc = cmd->run(&ctx, &err);
    if (rc < 0) {
        /* the bare message, as the openstack CLI prints it: scripts and the
         * side-by-side tests compare the two clients' stderr */
        fprintf(errf, "%s\n", st_err_msg(err));
        rc = 1;
    }

out_ctx:
    st_cli_http_free(ctx.http);
    st_cli_auth_free(ctx.auth);
    free(ctx.endpoint);
    st_cli_args_clear(&ctx.args);
out_cfg:
    st_cli_args_clear(&global);
    st_cli_config_clear(&cfg);
    fflush(out);
    fflush(errf);
    return rc;
}
