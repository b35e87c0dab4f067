/* The CLI's output formatters, modelled on the openstack CLI (cliff): a
 * "show" result is one JSON object printed as a Field/Value table with the
 * fields sorted by name, a "list" result is a JSON array of objects printed
 * as a table with a header row, and both can be printed as json, value, yaml
 * (and shell for show, csv for list) for scripts. Column selection (-c) and
 * row sorting (--sort-column) happen here so that every command gets them
 * for free. The texts match cliff + prettytable byte for byte where that is
 * practical, because users diff and grep this output. */
#pragma once

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#include "lib/err.h"

enum st_cli_format {
    ST_CLI_FORMAT_TABLE,
    ST_CLI_FORMAT_JSON,
    ST_CLI_FORMAT_VALUE,
    ST_CLI_FORMAT_YAML,
    ST_CLI_FORMAT_SHELL, /* show only */
    ST_CLI_FORMAT_CSV,   /* list only */
};

/* csv --quote modes, as Python's csv module. */
enum st_cli_csv_quote {
    ST_CLI_CSV_QUOTE_NONNUMERIC, /* default */
    ST_CLI_CSV_QUOTE_ALL,
    ST_CLI_CSV_QUOTE_MINIMAL,
    ST_CLI_CSV_QUOTE_NONE,
};

struct st_cli_output_opts {
    enum st_cli_format format;
    const char *const *columns; /* -c: selects columns (kept in the command's order) */
    size_t n_columns;
    const char *const *sort_columns; /* --sort-column, list only; unknown ones ignored */
    size_t n_sort_columns;
    bool sort_descending; /* --sort-descending */
    bool noindent;        /* --noindent (json) */
    bool print_empty;     /* --print-empty (table, list) */
    const char *prefix;   /* --prefix (shell) */
    enum st_cli_csv_quote quote;
    /* Objects and arrays in text formats as Python's str() ("{}", "['a']",
     * "{'k': True}") instead of key='value' lists: what cliff prints for
     * commands that show the server's values without formatters (identity). */
    bool python_str;
};

/* A list column: the heading the user sees (and names in -c / --sort-column)
 * and the key of the row objects it shows (the heading when NULL). */
struct st_cli_column {
    const char *heading;
    const char *key;
};

/* Prints one object: fields sorted by name (byte order, as Python's sorted).
 * -EINVAL when obj is not an object or -c names no field of it. */
int st_cli_output_show(FILE *out, const struct st_cli_output_opts *opts, const json_t *obj,
                       struct st_err **err);

/* Prints rows (an array of objects) under the given columns; a key missing
 * from a row shows as an empty string. -EINVAL on a bad -c or a bad rows. */
int st_cli_output_list(FILE *out, const struct st_cli_output_opts *opts,
                       const struct st_cli_column *cols, size_t n_cols, const json_t *rows,
                       struct st_err **err);

/* The text of one value in a table cell or in -f value: strings as they
 * are, null as None, booleans as True/False, reals as Python prints them,
 * objects as key='value' pairs sorted by key (nested keys dotted), arrays of
 * scalars as a sorted ", " list and arrays of objects one object per line,
 * as openstack's format_dict / format_list / format_list_of_dicts. */
char *st_cli_output_cell(const json_t *v);

/* A cell with a formatter, as cliff's FormattableColumn: tables show the
 * human text ("private=10.0.2.11", "Running", "m1.small (f1)"), json and
 * yaml the machine value ({"private": ["10.0.2.11"]}, 1), and value, shell
 * and csv Python's str() of the machine value. Steals machine (NULL: null).
 * Use it as a field of a show object or of a list row. */
json_t *st_cli_output_formatted(const char *human, json_t *machine);

/* Python's repr() of a value: strings quoted, dicts in the server's key
 * order, True/False/None: "{'immutable': True}", "['a', 'b']". */
char *st_cli_output_repr(const json_t *v);

/* "table" | "json" | "value" | "yaml" | "shell" | "csv" → -EINVAL otherwise. */
int st_cli_output_format_parse(const char *s, enum st_cli_format *ret);
int st_cli_output_quote_parse(const char *s, enum st_cli_csv_quote *ret);
