/* The command table and the dispatcher. A command is one table entry
 * (`stratos <resource> [<verb>]`, its options, positionals and help text)
 * plus one function; the dispatcher finds the longest entry matching the
 * words of the command line, parses its options (and the output options of
 * show and list commands), checks them, and runs it with a context that
 * hands out the configured HTTP client. Usage errors exit 2 as argparse's
 * do; runtime errors print the bare message on stderr and exit 1, as the
 * openstack CLI does ("No project with a name or ID of 'x' exists."). */
#pragma once

#include <jansson.h>
#include <stdio.h>

#include "args.h"
#include "config.h"
#include "lib/err.h"
#include "output.h"

struct st_cli_auth;
struct st_cli_ctx;
struct st_cli_http;

enum st_cli_command_flags {
    ST_CLI_CMD_SHOW = 1 << 0, /* prints one object: -f table|json|shell|value|yaml, -c */
    ST_CLI_CMD_LIST = 1 << 1, /* prints rows: -f csv|json|table|value|yaml, -c, --sort-column */
    ST_CLI_CMD_AUTH = 1 << 2, /* needs a token: the HTTP client is authenticated first */
    /* objects and arrays print as Python's str() ("{}", "['a']"): cliff's
     * rendering of the server's values when the command has no formatters */
    ST_CLI_CMD_PY_STR = 1 << 3,
};

struct st_cli_command {
    const char *name;                    /* "version", "server create"; NULL ends a table */
    const char *summary;                 /* one line, for `stratos --help` */
    const char *description;             /* for `stratos help <command>`; the summary when NULL */
    const struct st_cli_option *options; /* the command's own, NULL-name terminated */
    const struct st_cli_arg *args;       /* positionals, NULL-metavar terminated */
    unsigned flags;                      /* enum st_cli_command_flags */
    /* Returns the exit status (0, or e.g. 1 for "unhealthy" without an
     * error message), or a negative errno with err set (exit 1). */
    int (*run)(struct st_cli_ctx *ctx, struct st_err **err);
};

struct st_cli_ctx {
    const struct st_cli_command *cmd;
    const struct st_cli_config *cfg;
    struct st_cli_args args; /* the command's options and positionals */
    struct st_cli_output_opts output;
    FILE *out;
    FILE *err;
    struct st_cli_http *http; /* made on first use; see st_cli_ctx_http */
    struct st_cli_auth *auth; /* who is logged in, the catalog (ST_CLI_CMD_AUTH) */
    char *endpoint;
};

/* The HTTP client for stratosd, created on first use from the config
 * (endpoint, TLS, timeout, --debug to ctx->err) and authenticated when the
 * command has ST_CLI_CMD_AUTH. Borrowed: the context frees it. */
int st_cli_ctx_http(struct st_cli_ctx *ctx, struct st_cli_http **ret, struct st_err **err);
/* The stratosd base URL the command talks to. */
int st_cli_ctx_endpoint(struct st_cli_ctx *ctx, const char **ret, struct st_err **err);
/* The login of an ST_CLI_CMD_AUTH command (authenticating on first use).
 * Borrowed. */
int st_cli_ctx_auth(struct st_cli_ctx *ctx, struct st_cli_auth **ret, struct st_err **err);
/* The URL of a service ("identity", "compute", ...) from the catalog, as
 * st_cli_auth_service_url; the caller frees it. */
int st_cli_ctx_service_url(struct st_cli_ctx *ctx, const char *type, char **ret,
                           struct st_err **err);

/* A usage error found by the command itself, printed as argparse prints
 * one (usage, then "stratos <cmd>: error: <msg>"); returns 2, the exit
 * status to return from run. */
__attribute__((format(printf, 2, 3))) int st_cli_ctx_usage_error(struct st_cli_ctx *ctx,
                                                                 const char *fmt, ...);
/* An integer option (argparse's type=int): *ret is its value, or def when
 * it is absent. Returns 0, or 2 after printing "argument --ram: invalid int
 * value: 'x'" (return that from run). */
int st_cli_ctx_int_option(struct st_cli_ctx *ctx, const char *name, long def, long *ret);

/* Print results with the user's output options. */
int st_cli_ctx_show(struct st_cli_ctx *ctx, const json_t *obj, struct st_err **err);
int st_cli_ctx_list(struct st_cli_ctx *ctx, const struct st_cli_column *cols, size_t n_cols,
                    const json_t *rows, struct st_err **err);

/* The command whose words are the longest prefix of words[0..n); the number
 * of words it used in *ret_used. NULL when none matches. */
const struct st_cli_command *st_cli_command_lookup(char *const *words, size_t n, size_t *ret_used);

/* The whole CLI: argv as main() gets it; results to out, messages to err.
 * Returns the process exit status. */
int st_cli_run(int argc, char **argv, FILE *out, FILE *err);
