/* Command-line parsing in the manner of Python's argparse, which the openstack
 * CLI uses: options described by tables, `--opt value` and `--opt=value`,
 * short options `-f json` and `-fjson`, repeatable options, choices, `--`,
 * options and positionals in any order, and argparse's error texts
 * ("unrecognized arguments: --bogus") so that usage errors read the same.
 * The CLI parses twice: first the global options anywhere on the line
 * (known-only mode), then the command's own options (strict mode). */
#pragma once

#include <stdbool.h>
#include <stddef.h>

#include "lib/err.h"

enum st_cli_opt_kind {
    ST_CLI_OPT_FLAG,   /* --wait */
    ST_CLI_OPT_VALUE,  /* --flavor m1.small; the last one given wins */
    ST_CLI_OPT_APPEND, /* --property k=v, repeatable, all kept in order */
};

struct st_cli_option {
    const char *name; /* long name without the dashes: "flavor"; NULL ends a table */
    char short_name;  /* 'f' for -f, or 0 */
    enum st_cli_opt_kind kind;
    const char *metavar; /* "<flavor>"; NULL for flags */
    const char *help;
    const char *const *choices; /* NULL-terminated allowed values, or NULL */
    bool required;
    /* Options of one table sharing a nonzero group exclude each other, as
     * argparse's add_mutually_exclusive_group: "[--enable | --disable]". */
    unsigned group;
};

/* Table rows for the common cases: a valued option, a flag (in an
 * exclusive group, or 0), a repeatable option, and the end of a table. */
#define ST_CLI_VALUE(name, metavar, help)                                                          \
    {                                                                                              \
        name, 0, ST_CLI_OPT_VALUE, metavar, help, NULL, false, 0                                   \
    }
#define ST_CLI_FLAG(name, help, group)                                                             \
    {                                                                                              \
        name, 0, ST_CLI_OPT_FLAG, NULL, help, NULL, false, group                                   \
    }
#define ST_CLI_APPEND(name, metavar, help)                                                         \
    {                                                                                              \
        name, 0, ST_CLI_OPT_APPEND, metavar, help, NULL, false, 0                                  \
    }
#define ST_CLI_OPTIONS_END                                                                         \
    {                                                                                              \
        NULL, 0, 0, NULL, NULL, NULL, false, 0                                                     \
    }

enum st_cli_arg_flags {
    ST_CLI_ARG_OPTIONAL = 1 << 0, /* may be absent */
    ST_CLI_ARG_MULTI = 1 << 1,    /* takes all remaining positionals (last only) */
};

/* A positional argument of a command. */
struct st_cli_arg {
    const char *metavar; /* "<server>"; NULL ends a table */
    const char *help;
    unsigned flags;
};

struct st_cli_optval {
    const struct st_cli_option *opt;
    char **values; /* copies; one NULL-free entry per occurrence ("" for a flag) */
    size_t n;
};

struct st_cli_args {
    struct st_cli_optval *opts; /* one per distinct option given */
    size_t n_opts;
    char **pos; /* positionals, in order (strict mode) */
    size_t n_pos;
    char **rest; /* known-only mode: every token not consumed, in order */
    size_t n_rest;
};

/* Parses argv[0..argc) (no program name) against n_tables option tables.
 * known_only: unknown options and positionals go to ret->rest untouched;
 * otherwise an unknown option is an error. Errors are -EINVAL with
 * argparse's message ("argument --flavor: expected one argument"). */
int st_cli_args_parse(const struct st_cli_option *const *tables, size_t n_tables, int argc,
                      char *const *argv, bool known_only, struct st_cli_args *ret,
                      struct st_err **err);

/* -EINVAL "argument --disable: not allowed with argument --enable" when two
 * options of one exclusive group are given; "the following arguments are
 * required: --flavor, <name>" when a
 * required option or positional is missing; "unrecognized arguments: x"
 * when there are more positionals than args takes. */
int st_cli_args_check(const struct st_cli_args *a, const struct st_cli_option *const *tables,
                      size_t n_tables, const struct st_cli_arg *args, struct st_err **err);

void st_cli_args_clear(struct st_cli_args *a);

/* The last value of an option, NULL when not given. */
const char *st_cli_args_get(const struct st_cli_args *a, const char *name);
/* Whether the option was given at all. */
bool st_cli_args_flag(const struct st_cli_args *a, const char *name);
/* All values of a repeatable option; returns their number. */
size_t st_cli_args_all(const struct st_cli_args *a, const char *name, char *const **ret);

/* argparse's rendering of an option in usage and help: "--flavor <flavor>",
 * "-f {json,table}, --format {json,table}" (long form when !usage). */
char *st_cli_option_synopsis(const struct st_cli_option *opt, bool usage);
