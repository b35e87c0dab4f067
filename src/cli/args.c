/* Argument parsing; see args.h. The error texts are argparse's, word for
 * word, because openstack users know them and scripts match them. */
#include "args.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/cleanup.h"

static void push(char ***arr, size_t *n, const char *s)
{
    *arr = st_xrealloc(*arr, (*n + 1) * sizeof(**arr));
    (*arr)[(*n)++] = st_strdup(s);
}

static const struct st_cli_option *find_long(const struct st_cli_option *const *tables,
                                             size_t n_tables, const char *name, size_t len)
{
    for (size_t t = 0; t < n_tables; t++)
        for (const struct st_cli_option *o = tables[t]; o && o->name; o++)
            if (strlen(o->name) == len && strncmp(o->name, name, len) == 0)
                return o;
    return NULL;
}

static const struct st_cli_option *find_short(const struct st_cli_option *const *tables,
                                              size_t n_tables, char c)
{
    for (size_t t = 0; t < n_tables; t++)
        for (const struct st_cli_option *o = tables[t]; o && o->name; o++)
            if (o->short_name && o->short_name == c)
                return o;
    return NULL;
}

/* "-1", "-2.5": argparse reads these as positionals, not options. */
static bool is_negative_number(const char *s)
{
    if (s[0] != '-' || !s[1])
        return false;
    char *end;
    strtod(s, &end);
    return *end == '\0';
}

static bool looks_like_option(const char *s)
{
    return s[0] == '-' && s[1] != '\0' && !is_negative_number(s);
}

/* "-f/--format" or "--flavor", as argparse names an option in errors. */
static char *display_name(const struct st_cli_option *o)
{
    if (o->short_name)
        return st_sprintf("-%c/--%s", o->short_name, o->name);
    return st_sprintf("--%s", o->name);
}

static struct st_cli_optval *optval_for(struct st_cli_args *a, const struct st_cli_option *o)
{
    for (size_t i = 0; i < a->n_opts; i++)
        if (a->opts[i].opt == o)
            return &a->opts[i];
    a->opts = st_xrealloc(a->opts, (a->n_opts + 1) * sizeof(*a->opts));
    struct st_cli_optval *v = &a->opts[a->n_opts++];
    *v = (struct st_cli_optval){.opt = o};
    return v;
}

static int store(struct st_cli_args *a, const struct st_cli_option *o, const char *value,
                 struct st_err **err)
{
    if (o->choices) {
        bool ok = false;
        for (const char *const *c = o->choices; *c && !ok; c++)
            ok = strcmp(*c, value) == 0;
        if (!ok) {
            char *buf = NULL;
            size_t len;
            FILE *f = open_memstream(&buf, &len);
            if (!f)
                abort();
            for (const char *const *c = o->choices; *c; c++)
                fprintf(f, "%s'%s'", c == o->choices ? "" : ", ", *c);
            fclose(f);
            st_autofree char *name = display_name(o);
            st_err_set(err, -EINVAL, "argument %s: invalid choice: '%s' (choose from %s)", name,
                       value, buf);
            free(buf);
            return -EINVAL;
        }
    }
    struct st_cli_optval *v = optval_for(a, o);
    push(&v->values, &v->n, value);
    return 0;
}

int st_cli_args_parse(const struct st_cli_option *const *tables, size_t n_tables, int argc,
                      char *const *argv, bool known_only, struct st_cli_args *ret,
                      struct st_err **err)
{
    struct st_cli_args a = {0};
    char **unknown = NULL;
    size_t n_unknown = 0;
    int r = 0;

    for (int i = 0; i < argc && r == 0; i++) {
        const char *tok = argv[i];
        if (strcmp(tok, "--") == 0) {
            /* everything after "--" is positional */
            if (known_only)
                for (; i < argc; i++)
                    push(&a.rest, &a.n_rest, argv[i]);
            else
                for (i++; i < argc; i++)
                    push(&a.pos, &a.n_pos, argv[i]);
            break;
        }
        if (!looks_like_option(tok)) {
            if (known_only)
                push(&a.rest, &a.n_rest, tok);
            else
                push(&a.pos, &a.n_pos, tok);
            continue;
        }

        const struct st_cli_option *o;
        const char *explicit_value = NULL;
        if (tok[1] == '-') {
            const char *name = tok + 2;
            const char *eq = strchr(name, '=');
            o = find_long(tables, n_tables, name, eq ? (size_t)(eq - name) : strlen(name));
            if (eq)
                explicit_value = eq + 1;
        } else {
            o = find_short(tables, n_tables, tok[1]);
            if (tok[2])
                explicit_value = tok[2] == '=' ? tok + 3 : tok + 2;
            if (o && o->kind == ST_CLI_OPT_FLAG && tok[2])
                o = NULL; /* no clusters of short flags */
        }
        if (!o) {
            if (known_only)
                push(&a.rest, &a.n_rest, tok);
            else
                push(&unknown, &n_unknown, tok);
            continue;
        }

        st_autofree char *name = display_name(o);
        if (o->kind == ST_CLI_OPT_FLAG) {
            if (explicit_value) {
                r = st_err_set(err, -EINVAL, "argument %s: ignored explicit argument '%s'", name,
                               explicit_value);
                break;
            }
            r = store(&a, o, "", err);
            continue;
        }
        if (!explicit_value) {
            if (i + 1 >= argc || looks_like_option(argv[i + 1])) {
                r = st_err_set(err, -EINVAL, "argument %s: expected one argument", name);
                break;
            }
            explicit_value = argv[++i];
        }
        r = store(&a, o, explicit_value, err);
    }

    if (r == 0 && n_unknown > 0) {
        char *buf = NULL;
        size_t len;
        FILE *f = open_memstream(&buf, &len);
        if (!f)
            abort();
        for (size_t i = 0; i < n_unknown; i++)
            fprintf(f, "%s%s", i ? " " : "", unknown[i]);
        fclose(f);
        r = st_err_set(err, -EINVAL, "unrecognized arguments: %s", buf);
        free(buf);
    }
    for (size_t i = 0; i < n_unknown; i++)
        free(unknown[i]);
    free(unknown);
    if (r < 0) {
        st_cli_args_clear(&a);
        return r;
    }
    *ret = a;
    return 0;
}

/* The table holding o, so that group numbers compare within one table. */
static size_t table_of(const struct st_cli_option *const *tables, size_t n_tables,
                       const struct st_cli_option *o)
{
    for (size_t t = 0; t < n_tables; t++)
        for (const struct st_cli_option *p = tables[t]; p && p->name; p++)
            if (p == o)
                return t;
    return n_tables;
}

int st_cli_args_check(const struct st_cli_args *a, const struct st_cli_option *const *tables,
                      size_t n_tables, const struct st_cli_arg *args, struct st_err **err)
{
    /* argparse names the later option first: the one that broke the rule */
    for (size_t i = 0; i < a->n_opts; i++) {
        const struct st_cli_option *o = a->opts[i].opt;
        if (!o->group)
            continue;
        for (size_t j = 0; j < i; j++) {
            const struct st_cli_option *p = a->opts[j].opt;
            if (p->group == o->group &&
                table_of(tables, n_tables, p) == table_of(tables, n_tables, o)) {
                st_autofree char *on = display_name(o);
                st_autofree char *pn = display_name(p);
                return st_err_set(err, -EINVAL, "argument %s: not allowed with argument %s", on,
                                  pn);
            }
        }
    }
    char *buf = NULL;
    size_t len;
    FILE *f = open_memstream(&buf, &len);
    if (!f)
        abort();
    bool missing = false;
    for (size_t t = 0; t < n_tables; t++)
        for (const struct st_cli_option *o = tables[t]; o && o->name; o++)
            if (o->required && !st_cli_args_flag(a, o->name)) {
                fprintf(f, "%s--%s", missing ? ", " : "", o->name);
                missing = true;
            }
    size_t n_args = 0;
    bool multi = false;
    for (const struct st_cli_arg *p = args; p && p->metavar; p++, n_args++) {
        multi = multi || (p->flags & ST_CLI_ARG_MULTI);
        if (!(p->flags & ST_CLI_ARG_OPTIONAL) && n_args >= a->n_pos) {
            fprintf(f, "%s%s", missing ? ", " : "", p->metavar);
            missing = true;
        }
    }
    fclose(f);
    int r = 0;
    if (missing) {
        r = st_err_set(err, -EINVAL, "the following arguments are required: %s", buf);
    } else if (!multi && a->n_pos > n_args) {
        free(buf);
        buf = NULL;
        f = open_memstream(&buf, &len);
        if (!f)
            abort();
        for (size_t i = n_args; i < a->n_pos; i++)
            fprintf(f, "%s%s", i > n_args ? " " : "", a->pos[i]);
        fclose(f);
        r = st_err_set(err, -EINVAL, "unrecognized arguments: %s", buf);
    }
    free(buf);
    return r;
}

void st_cli_args_clear(struct st_cli_args *a)
{
    if (!a)
        return;
    for (size_t i = 0; i < a->n_opts; i++) {
        for (size_t j = 0; j < a->opts[i].n; j++)
            free(a->opts[i].values[j]);
        free(a->opts[i].values);
    }
    free(a->opts);
    for (size_t i = 0; i < a->n_pos; i++)
        free(a->pos[i]);
    free(a->pos);
    for (size_t i = 0; i < a->n_rest; i++)
        free(a->rest[i]);
    free(a->rest);
    *a = (struct st_cli_args){0};
}

static const struct st_cli_optval *lookup(const struct st_cli_args *a, const char *name)
{
    for (size_t i = 0; i < a->n_opts; i++)
        if (strcmp(a->opts[i].opt->name, name) == 0)
            return &a->opts[i];
    return NULL;
}

const char *st_cli_args_get(const struct st_cli_args *a, const char *name)
{
    const struct st_cli_optval *v = lookup(a, name);
    return v && v->n ? v->values[v->n - 1] : NULL;
}

bool st_cli_args_flag(const struct st_cli_args *a, const char *name)
{
    return lookup(a, name) != NULL;
}

size_t st_cli_args_all(const struct st_cli_args *a, const char *name, char *const **ret)
{
    const struct st_cli_optval *v = lookup(a, name);
    *ret = v ? v->values : NULL;
    return v ? v->n : 0;
}

static char *metavar_of(const struct st_cli_option *o)
{
    if (o->choices) {
        char *buf = NULL;
        size_t len;
        FILE *f = open_memstream(&buf, &len);
        if (!f)
            abort();
        fputc('{', f);
        for (const char *const *c = o->choices; *c; c++)
            fprintf(f, "%s%s", c == o->choices ? "" : ",", *c);
        fputc('}', f);
        fclose(f);
        return buf;
    }
    if (o->metavar)
        return st_strdup(o->metavar);
    /* argparse's default: the name in upper case, '-' as '_' */
    char *m = st_strdup(o->name);
    for (char *p = m; *p; p++)
        *p = *p == '-' ? '_' : (*p >= 'a' && *p <= 'z') ? (char)(*p - 'a' + 'A') : *p;
    return m;
}

char *st_cli_option_synopsis(const struct st_cli_option *o, bool usage)
{
    st_autofree char *mv = o->kind == ST_CLI_OPT_FLAG ? NULL : metavar_of(o);
    st_autofree char *lng = mv ? st_sprintf("--%s %s", o->name, mv) : st_sprintf("--%s", o->name);
    if (!o->short_name)
        return st_steal(&lng);
    st_autofree char *shrt =
        mv ? st_sprintf("-%c %s", o->short_name, mv) : st_sprintf("-%c", o->short_name);
    if (usage)
        return st_steal(&shrt);
    return st_sprintf("%s, %s", shrt, lng);
}
