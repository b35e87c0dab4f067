/* Output formatters; see output.h. Every formatter works on one "grid":
 * column names plus rows of borrowed JSON values, built from a show object
 * or a list array, then narrowed by -c and ordered by --sort-column. The
 * table layout is prettytable's as cliff configures it (padding 1, numbers
 * right-aligned in lists when the first row holds a number, multi-line
 * cells, an empty list printing a blank line); yaml goes through libfyaml
 * with the scalar style chosen here, because only we know which strings
 * must be quoted to stay strings ("true", "123", "2026-01-01"). */
#include "output.h"

#include <errno.h>
#include <libfyaml.h>
#include <math.h>
#include <regex.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "lib/cleanup.h"
#include "lib/json.h"

struct grid {
    const char **names; /* n_cols, borrowed */
    size_t n_cols;
    const json_t **cells; /* n_rows x n_cols, row-major, borrowed */
    size_t n_rows;
    json_t *empty;   /* the "" shown for a key missing from a list row */
    bool python_str; /* containers as Python's str(), not format_dict/format_list */
};

static void grid_free(struct grid *g)
{
    free(g->names);
    free(g->cells);
    json_decref(g->empty);
}

/* A memory stream for building strings; allocation failure aborts. */
static FILE *mem_open(char **buf, size_t *len)
{
    FILE *f = open_memstream(buf, len);
    if (!f)
        abort();
    return f;
}

static char *mem_close(FILE *f, char **buf)
{
    if (fclose(f) != 0)
        abort();
    return *buf;
}

/* ---- values as text ---- */

/* Python's repr() of a float: the shortest digits that read back to the
 * same double, fixed notation for exponents in [-4, 16), ".0" on integers. */
static void real_repr(double d, char *out, size_t len)
{
    if (isnan(d)) {
        snprintf(out, len, "nan");
        return;
    }
    if (isinf(d)) {
        snprintf(out, len, d < 0 ? "-inf" : "inf");
        return;
    }
    char sci[40];
    for (int p = 1; p <= 17; p++) {
        snprintf(sci, sizeof(sci), "%.*e", p - 1, d);
        if (strtod(sci, NULL) == d)
            break;
    }
    /* sci is "[-]D[.DDD]e[+-]XX": collect the digits and the exponent. */
    char digits[24];
    size_t nd = 0;
    const char *p = sci;
    bool neg = *p == '-';
    if (neg)
        p++;
    for (; *p && *p != 'e'; p++)
        if (*p >= '0' && *p <= '9')
            digits[nd++] = *p;
    digits[nd] = '\0';
    int exp = atoi(p + 1);
    while (nd > 1 && digits[nd - 1] == '0')
        digits[--nd] = '\0';

    FILE *f;
    char *buf = NULL;
    size_t blen;
    f = mem_open(&buf, &blen);
    if (neg)
        fputc('-', f);
    if (exp >= -4 && exp < 16) {
        if (exp < 0) {
            fputs("0.", f);
            for (int i = 0; i < -exp - 1; i++)
                fputc('0', f);
            fputs(digits, f);
        } else {
            for (int i = 0; i <= exp; i++)
                fputc(i < (int)nd ? digits[i] : '0', f);
            fputc('.', f);
            fputs((int)nd > exp + 1 ? digits + exp + 1 : "0", f);
        }
    } else {
        fputc(digits[0], f);
        if (nd > 1)
            fprintf(f, ".%s", digits + 1);
        fprintf(f, "e%c%02d", exp < 0 ? '-' : '+', exp < 0 ? -exp : exp);
    }
    mem_close(f, &buf);
    snprintf(out, len, "%s", buf);
    free(buf);
}

static bool is_scalar(const json_t *v)
{
    return !json_is_object(v) && !json_is_array(v);
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

static void write_cell(FILE *f, const json_t *v);

/* osc_lib.utils.format_dict: "a='1', b.c='2', d=" with keys sorted. */
static void write_dict(FILE *f, const json_t *obj, const char *prefix, bool *first)
{
    size_t n = json_object_size(obj);
    st_autofree const char **keys = st_new0(const char *, n);
    size_t i = 0;
    const char *key;
    json_t *val;
    json_object_foreach((json_t *)obj, key, val) keys[i++] = key;
    qsort(keys, n, sizeof(*keys), cmp_str);
    for (i = 0; i < n; i++) {
        val = json_object_get(obj, keys[i]);
        st_autofree char *path = prefix ? st_sprintf("%s.%s", prefix, keys[i]) : st_strdup(keys[i]);
        if (json_is_object(val)) {
            write_dict(f, val, path, first);
            continue;
        }
        fprintf(f, "%s%s=", *first ? "" : ", ", path);
        *first = false;
        if (!json_is_null(val)) {
            fputc('\'', f);
            write_cell(f, val);
            fputc('\'', f);
        }
    }
}

static void write_cell(FILE *f, const json_t *v)
{
    char num[64];
    switch (json_typeof(v)) {
    case JSON_STRING: {
        /* cliff turns "\r\n" into "\n" and a lone "\r" into a space */
        const char *s = json_string_value(v);
        size_t n = json_string_length(v);
        for (size_t i = 0; i < n; i++) {
            if (s[i] == '\r' && i + 1 < n && s[i + 1] == '\n')
                continue;
            fputc(s[i] == '\r' ? ' ' : s[i], f);
        }
        break;
    }
    case JSON_INTEGER:
        fprintf(f, "%" JSON_INTEGER_FORMAT, json_integer_value(v));
        break;
    case JSON_REAL:
        real_repr(json_real_value(v), num, sizeof(num));
        fputs(num, f);
        break;
    case JSON_TRUE:
        fputs("True", f);
        break;
    case JSON_FALSE:
        fputs("False", f);
        break;
    case JSON_NULL:
        fputs("None", f);
        break;
    case JSON_OBJECT: {
        bool first = true;
        write_dict(f, v, NULL, &first);
        break;
    }
    case JSON_ARRAY: {
        size_t n = json_array_size(v), i;
        json_t *item;
        bool scalars = true, objects = true;
        json_array_foreach((json_t *)v, i, item)
        {
            scalars = scalars && is_scalar(item);
            objects = objects && json_is_object(item);
        }
        if (n > 0 && objects) {
            /* format_list_of_dicts: one object per line */
            json_array_foreach((json_t *)v, i, item)
            {
                bool first = true;
                if (i > 0)
                    fputc('\n', f);
                write_dict(f, item, NULL, &first);
            }
        } else if (scalars) {
            /* format_list: sorted, comma separated */
            char **texts = st_new0(char *, n);
            json_array_foreach((json_t *)v, i, item) texts[i] = st_cli_output_cell(item);
            qsort(texts, n, sizeof(*texts), cmp_str);
            for (i = 0; i < n; i++) {
                fprintf(f, "%s%s", i ? ", " : "", texts[i]);
                free(texts[i]);
            }
            free(texts);
        } else {
            st_autofree char *s = st_json_dumps(v);
            fputs(s, f);
        }
        break;
    }
    }
}

char *st_cli_output_cell(const json_t *v)
{
    char *buf = NULL;
    size_t len;
    FILE *f = mem_open(&buf, &len);
    write_cell(f, v);
    return mem_close(f, &buf);
}

/* Python's repr() of a str: single quotes unless the text holds a single
 * quote and no double one; backslash escapes for the quote, the backslash
 * and control characters; other characters as they are. */
static void write_repr_string(FILE *f, const char *s, size_t n)
{
    bool has_single = memchr(s, '\'', n) != NULL, has_double = memchr(s, '"', n) != NULL;
    char quote = has_single && !has_double ? '"' : '\'';
    fputc(quote, f);
    for (size_t i = 0; i < n; i++) {
        unsigned char ch = (unsigned char)s[i];
        if (ch == (unsigned char)quote || ch == '\\')
            fprintf(f, "\\%c", ch);
        else if (ch == '\n')
            fputs("\\n", f);
        else if (ch == '\r')
            fputs("\\r", f);
        else if (ch == '\t')
            fputs("\\t", f);
        else if (ch < 0x20 || ch == 0x7f)
            fprintf(f, "\\x%02x", ch);
        else
            fputc(ch, f);
    }
    fputc(quote, f);
}

static void write_repr(FILE *f, const json_t *v)
{
    const char *key;
    json_t *val;
    size_t i;
    switch (json_typeof(v)) {
    case JSON_STRING:
        write_repr_string(f, json_string_value(v), json_string_length(v));
        break;
    case JSON_OBJECT: {
        /* a dict keeps the order the server sent */
        bool first = true;
        fputc('{', f);
        json_object_foreach((json_t *)v, key, val)
        {
            fputs(first ? "" : ", ", f);
            first = false;
            write_repr_string(f, key, strlen(key));
            fputs(": ", f);
            write_repr(f, val);
        }
        fputc('}', f);
        break;
    }
    case JSON_ARRAY:
        fputc('[', f);
        json_array_foreach((json_t *)v, i, val)
        {
            fputs(i ? ", " : "", f);
            write_repr(f, val);
        }
        fputc(']', f);
        break;
    default:
        write_cell(f, v);
        break;
    }
}

char *st_cli_output_repr(const json_t *v)
{
    char *buf = NULL;
    size_t len;
    FILE *f = mem_open(&buf, &len);
    write_repr(f, v);
    return mem_close(f, &buf);
}

/* A formatted cell is an object holding this key (a control character no
 * server field name has) with the human text, and "machine" with the value;
 * see st_cli_output_formatted. */
#define FORMATTED_KEY "\001st-formatted"

json_t *st_cli_output_formatted(const char *human, json_t *machine)
{
    json_t *o = json_object();
    json_object_set_new(o, FORMATTED_KEY, json_string(human ? human : ""));
    json_object_set_new(o, "machine", machine ? machine : json_null());
    return o;
}

/* The human text of a formatted cell, or NULL for a plain value. */
static const char *formatted_human(const json_t *v)
{
    return json_is_object(v) && json_object_size(v) == 2
               ? json_string_value(json_object_get(v, FORMATTED_KEY))
               : NULL;
}

/* The value a machine format prints: a formatted cell's "machine". */
static const json_t *machine_value(const json_t *v)
{
    return formatted_human(v) ? json_object_get(v, "machine") : v;
}

/* The text of one cell of g: Python's str() of containers for commands that
 * print the server's values untouched, as cliff does without formatters. A
 * formatted cell shows its human text in tables and, as cliff's value,
 * shell and csv formatters print str(machine_readable()), Python's str() of
 * its value elsewhere. */
static char *grid_cell_text(const struct grid *g, const json_t *v, bool table)
{
    const char *human = formatted_human(v);
    if (human && table)
        return st_strdup(human);
    if (human) {
        v = machine_value(v);
        if (json_is_object(v) || json_is_array(v))
            return st_cli_output_repr(v);
        return st_cli_output_cell(v);
    }
    if (g->python_str && (json_is_object(v) || json_is_array(v)))
        return st_cli_output_repr(v);
    return st_cli_output_cell(v);
}

/* ---- the grid: building, selecting, sorting ---- */

static int select_columns(struct grid *g, const struct st_cli_output_opts *opts,
                          struct st_err **err)
{
    if (opts->n_columns == 0)
        return 0;
    bool *keep = st_new0(bool, g->n_cols);
    size_t n_keep = 0;
    for (size_t c = 0; c < g->n_cols; c++)
        for (size_t i = 0; i < opts->n_columns && !keep[c]; i++)
            if (strcmp(g->names[c], opts->columns[i]) == 0) {
                keep[c] = true;
                n_keep++;
            }
    if (n_keep == 0) {
        /* cliff's message, with Python's list repr */
        char *buf = NULL;
        size_t len;
        FILE *f = mem_open(&buf, &len);
        fputs("No recognized column names in [", f);
        for (size_t i = 0; i < opts->n_columns; i++)
            fprintf(f, "%s'%s'", i ? ", " : "", opts->columns[i]);
        fputs("]. Recognized columns are [", f);
        for (size_t c = 0; c < g->n_cols; c++)
            fprintf(f, "%s'%s'", c ? ", " : "", g->names[c]);
        fputs("].", f);
        mem_close(f, &buf);
        free(keep);
        int r = st_err_set(err, -EINVAL, "%s", buf);
        free(buf);
        return r;
    }
    const char **names = st_new0(const char *, n_keep);
    const json_t **cells = st_new0(const json_t *, g->n_rows *n_keep + 1);
    for (size_t c = 0, k = 0; c < g->n_cols; c++) {
        if (!keep[c])
            continue;
        names[k] = g->names[c];
        for (size_t r = 0; r < g->n_rows; r++)
            cells[r * n_keep + k] = g->cells[r * g->n_cols + c];
        k++;
    }
    free(keep);
    free(g->names);
    free(g->cells);
    g->names = names;
    g->cells = cells;
    g->n_cols = n_keep;
    return 0;
}

/* Sort order of cliff: unset (null) values last, numbers by value, strings
 * by code point; other kinds by their JSON text so the order is total. */
static int value_cmp(const json_t *a, const json_t *b)
{
    a = machine_value(a);
    b = machine_value(b);
    bool an = json_is_null(a), bn = json_is_null(b);
    if (an || bn)
        return an - bn;
    bool anum = json_is_number(a) || json_is_boolean(a);
    bool bnum = json_is_number(b) || json_is_boolean(b);
    if (anum && bnum) {
        double x = json_is_boolean(a) ? json_is_true(a) : json_number_value(a);
        double y = json_is_boolean(b) ? json_is_true(b) : json_number_value(b);
        return (x > y) - (x < y);
    }
    if (anum != bnum)
        return anum ? -1 : 1;
    if (json_is_string(a) && json_is_string(b))
        return strcmp(json_string_value(a), json_string_value(b));
    if (json_is_string(a) != json_is_string(b))
        return json_is_string(a) ? -1 : 1;
    st_autofree char *x = st_json_dumps(a);
    st_autofree char *y = st_json_dumps(b);
    return strcmp(x, y);
}

struct sort_ctx {
    const struct grid *g;
    const size_t *keys;
    size_t n_keys;
    bool descending;
};

static int row_cmp(const void *pa, const void *pb, void *data)
{
    const struct sort_ctx *s = data;
    size_t a = *(const size_t *)pa, b = *(const size_t *)pb;
    for (size_t k = 0; k < s->n_keys; k++) {
        size_t c = s->keys[k];
        int r = value_cmp(s->g->cells[a * s->g->n_cols + c], s->g->cells[b * s->g->n_cols + c]);
        if (r)
            return s->descending ? -r : r;
    }
    /* stable, as Python's sorted(), also when reversed */
    return (a > b) - (a < b);
}

static void sort_rows(struct grid *g, const struct st_cli_output_opts *opts)
{
    if (opts->n_sort_columns == 0 || g->n_rows < 2)
        return;
    st_autofree size_t *keys = st_new0(size_t, opts->n_sort_columns);
    size_t n_keys = 0;
    for (size_t i = 0; i < opts->n_sort_columns; i++)
        for (size_t c = 0; c < g->n_cols; c++)
            if (strcmp(g->names[c], opts->sort_columns[i]) == 0) {
                keys[n_keys++] = c;
                break;
            }
    if (n_keys == 0)
        return;
    st_autofree size_t *order = st_new0(size_t, g->n_rows);
    for (size_t r = 0; r < g->n_rows; r++)
        order[r] = r;
    struct sort_ctx s = {g, keys, n_keys, opts->sort_descending};
    qsort_r(order, g->n_rows, sizeof(*order), row_cmp, &s);
    const json_t **cells = st_new0(const json_t *, g->n_rows * g->n_cols);
    for (size_t r = 0; r < g->n_rows; r++)
        memcpy(&cells[r * g->n_cols], &g->cells[order[r] * g->n_cols], g->n_cols * sizeof(*cells));
    free(g->cells);
    g->cells = cells;
}

/* ---- table (prettytable) ---- */

/* Display width: code points (continuation bytes do not count). */
static size_t text_width(const char *s, size_t n)
{
    size_t w = 0;
    for (size_t i = 0; i < n; i++)
        if (((unsigned char)s[i] & 0xC0) != 0x80)
            w++;
    return w;
}

/* Line i (0-based) of a multi-line text, or NULL past the end. */
static const char *text_line(const char *s, size_t i, size_t *ret_len)
{
    for (; i > 0; i--) {
        s = strchr(s, '\n');
        if (!s)
            return NULL;
        s++;
    }
    const char *nl = strchr(s, '\n');
    *ret_len = nl ? (size_t)(nl - s) : strlen(s);
    return s;
}

static size_t text_lines(const char *s)
{
    size_t n = 1;
    for (; *s; s++)
        n += *s == '\n';
    return n;
}

static void table_rule(FILE *out, const size_t *widths, size_t n_cols)
{
    fputc('+', out);
    for (size_t c = 0; c < n_cols; c++) {
        for (size_t i = 0; i < widths[c] + 2; i++)
            fputc('-', out);
        fputc('+', out);
    }
    fputc('\n', out);
}

/* One table row of cells (texts may span lines), padded to widths. */
static void table_row(FILE *out, char *const *texts, const size_t *widths, const char *align,
                      size_t n_cols)
{
    size_t height = 1;
    for (size_t c = 0; c < n_cols; c++) {
        size_t h = text_lines(texts[c]);
        if (h > height)
            height = h;
    }
    for (size_t line = 0; line < height; line++) {
        fputc('|', out);
        for (size_t c = 0; c < n_cols; c++) {
            size_t len = 0;
            const char *s = text_line(texts[c], line, &len);
            if (!s)
                s = "", len = 0;
            size_t pad = widths[c] - text_width(s, len);
            fputc(' ', out);
            if (align[c] == 'r')
                fprintf(out, "%*s", (int)pad, "");
            fwrite(s, 1, len, out);
            if (align[c] != 'r')
                fprintf(out, "%*s", (int)pad, "");
            fputs(" |", out);
        }
        fputc('\n', out);
    }
}

static void emit_table(FILE *out, const char *const *headings, const struct grid *g,
                       const char *align, bool print_empty)
{
    if (g->n_rows == 0 && !print_empty) {
        fputc('\n', out);
        return;
    }
    size_t n = g->n_cols;
    st_autofree size_t *widths = st_new0(size_t, n);
    char **texts = st_new0(char *, g->n_rows *n + 1);
    for (size_t c = 0; c < n; c++)
        widths[c] = text_width(headings[c], strlen(headings[c]));
    for (size_t r = 0; r < g->n_rows; r++)
        for (size_t c = 0; c < n; c++) {
            char *t = texts[r * n + c] = grid_cell_text(g, g->cells[r * n + c], true);
            size_t len;
            for (size_t i = 0; text_line(t, i, &len); i++) {
                size_t w = text_width(text_line(t, i, &len), len);
                if (w > widths[c])
                    widths[c] = w;
            }
        }
    table_rule(out, widths, n);
    table_row(out, (char *const *)headings, widths, align, n);
    table_rule(out, widths, n);
    for (size_t r = 0; r < g->n_rows; r++)
        table_row(out, &texts[r * n], widths, align, n);
    table_rule(out, widths, n);
    for (size_t i = 0; i < g->n_rows * n; i++)
        free(texts[i]);
    free(texts);
}

static void emit_table_list(FILE *out, const struct grid *g, bool print_empty)
{
    /* cliff aligns by the type of the first row's values: numbers right */
    st_autofree char *align = st_new0(char, g->n_cols + 1);
    for (size_t c = 0; c < g->n_cols; c++)
        align[c] = g->n_rows > 0 && json_is_number(g->cells[c]) ? 'r' : 'l';
    emit_table(out, g->names, g, align, print_empty);
}

static void emit_table_show(FILE *out, const struct grid *g)
{
    /* a Field/Value table: one row per column of the single data row */
    struct grid t = {.python_str = g->python_str};
    const char *headings[] = {"Field", "Value"};
    t.n_cols = 2;
    t.n_rows = g->n_cols;
    t.cells = st_new0(const json_t *, 2 * g->n_cols + 1);
    json_t **names = st_new0(json_t *, g->n_cols + 1);
    for (size_t c = 0; c < g->n_cols; c++) {
        names[c] = json_string(g->names[c]);
        t.cells[2 * c] = names[c];
        t.cells[2 * c + 1] = g->cells[c];
    }
    emit_table(out, headings, &t, "ll", false);
    for (size_t c = 0; c < g->n_cols; c++)
        json_decref(names[c]);
    free(names);
    free(t.cells);
}

/* ---- value, shell, csv ---- */

static void emit_value(FILE *out, const struct grid *g, bool show)
{
    for (size_t r = 0; r < g->n_rows; r++) {
        for (size_t c = 0; c < g->n_cols; c++) {
            st_autofree char *t = grid_cell_text(g, g->cells[r * g->n_cols + c], false);
            /* show prints one value per line, list one row per line */
            fprintf(out, "%s%s", t, show || c + 1 == g->n_cols ? "\n" : " ");
        }
    }
}

static void emit_shell(FILE *out, const struct grid *g, const char *prefix)
{
    for (size_t c = 0; c < g->n_cols; c++) {
        st_autofree char *name = st_strdup(g->names[c]);
        for (char *p = name; *p; p++) {
            if (*p >= 'A' && *p <= 'Z')
                *p = (char)(*p - 'A' + 'a');
            else if (*p == ' ' || *p == ':' || *p == '-')
                *p = '_';
        }
        st_autofree char *t = grid_cell_text(g, g->cells[c], false);
        fprintf(out, "%s%s=\"", prefix ? prefix : "", name);
        for (const char *p = t; *p; p++) {
            if (*p == '"')
                fputc('\\', out);
            fputc(*p, out);
        }
        fputs("\"\n", out);
    }
}

/* One csv field, as Python's csv.writer with escapechar '\\' (cliff). */
static void csv_field(FILE *out, const char *s, bool numeric, bool is_null,
                      enum st_cli_csv_quote mode)
{
    bool quoted;
    switch (mode) {
    case ST_CLI_CSV_QUOTE_NONNUMERIC:
        quoted = !numeric || is_null;
        break;
    case ST_CLI_CSV_QUOTE_ALL:
        quoted = true;
        break;
    default:
        quoted = false;
        break;
    }
    if (mode == ST_CLI_CSV_QUOTE_MINIMAL && strpbrk(s, ",\"\r\n"))
        quoted = true;
    if (quoted)
        fputc('"', out);
    for (const char *p = s; *p; p++) {
        if (mode == ST_CLI_CSV_QUOTE_NONE && strchr(",\"\r\n\\", *p))
            fputc('\\', out);
        else if (*p == '"')
            fputc('"', out);
        else if (*p == '\\')
            fputc('\\', out);
        fputc(*p, out);
    }
    if (quoted)
        fputc('"', out);
}

static void emit_csv(FILE *out, const struct grid *g, enum st_cli_csv_quote mode)
{
    for (size_t c = 0; c < g->n_cols; c++) {
        if (c)
            fputc(',', out);
        csv_field(out, g->names[c], false, false, mode);
    }
    fputc('\n', out);
    for (size_t r = 0; r < g->n_rows; r++) {
        for (size_t c = 0; c < g->n_cols; c++) {
            const json_t *cell = g->cells[r * g->n_cols + c], *v = machine_value(cell);
            if (c)
                fputc(',', out);
            st_autofree char *t = json_is_null(v) ? st_strdup("") : grid_cell_text(g, cell, false);
            csv_field(out, t, json_is_number(v) || json_is_boolean(v), json_is_null(v), mode);
        }
        fputc('\n', out);
    }
}

/* ---- json ---- */

static json_t *grid_row_object(const struct grid *g, size_t r)
{
    json_t *o = json_object();
    for (size_t c = 0; c < g->n_cols; c++)
        json_object_set(o, g->names[c], (json_t *)machine_value(g->cells[r * g->n_cols + c]));
    return o;
}

static void emit_json(FILE *out, const struct grid *g, bool show, bool noindent)
{
    st_autoptr(json_t) doc = NULL;
    if (show) {
        doc = grid_row_object(g, 0);
    } else {
        doc = json_array();
        for (size_t r = 0; r < g->n_rows; r++)
            json_array_append_new(doc, grid_row_object(g, r));
    }
    /* Python's json.dump: ", " and ": " separators, ASCII only */
    size_t flags = JSON_ENCODE_ANY | JSON_ENSURE_ASCII | (noindent ? 0 : JSON_INDENT(2));
    st_autofree char *s = json_dumps(doc, flags);
    if (!s)
        abort();
    fprintf(out, "%s\n", s);
}

/* ---- yaml ---- */

/* The words PyYAML's resolvers read as booleans or null, each only in
 * lower case, Capitalised or UPPER case ("yEs", "y" and "n" stay strings),
 * and its infinities, NaN, "~", "=" and "<<". */
static bool yaml_is_word(const char *s)
{
    static const char *const words[] = {"yes", "no", "true", "false", "on", "off", "null"};
    static const char *const exact[] = {
        "~",     "=",     "<<",    ".inf",  ".Inf", ".INF", "+.inf", "+.Inf",
        "+.INF", "-.inf", "-.Inf", "-.INF", ".nan", ".NaN", ".NAN",
    };
    for (size_t i = 0; i < ST_ARRAY_SIZE(exact); i++)
        if (strcmp(s, exact[i]) == 0)
            return true;
    for (size_t i = 0; i < ST_ARRAY_SIZE(words); i++) {
        if (strcasecmp(s, words[i]) != 0)
            continue;
        bool upper = true, capital = s[0] >= 'A' && s[0] <= 'Z';
        for (size_t j = 0; s[j]; j++) {
            upper = upper && !(s[j] >= 'a' && s[j] <= 'z');
            capital = capital && (j == 0 || !(s[j] >= 'A' && s[j] <= 'Z'));
        }
        if (strcmp(s, words[i]) == 0 || upper || capital)
            return true;
    }
    return false;
}

/* True when a plain scalar would read back as something other than a string:
 * a number or a date under the YAML 1.1 resolvers that PyYAML applies, or
 * a number under YAML 1.2's core schema; erring towards quoting. */
static bool yaml_looks_typed(const char *s)
{
    static const char *const patterns[] = {
        "^[-+]?0b[0-1_]+$",
        "^[-+]?0[0-7_]+$",
        "^[-+]?(0|[1-9][0-9_]*)$",
        "^[-+]?0x[0-9a-fA-F_]+$",
        "^0o[0-7]+$",
        "^[-+]?[1-9][0-9_]*(:[0-5]?[0-9])+$",
        "^[-+]?([0-9][0-9_]*)?\\.[0-9_]*([eE][-+]?[0-9]+)?$",
        "^[-+]?[0-9]+[eE][-+]?[0-9]+$",
        "^[-+]?[0-9][0-9_]*(:[0-5]?[0-9])+\\.[0-9_]*$",
        "^[0-9]{4}-[0-9]{1,2}-[0-9]{1,2}",
    };
    static regex_t compiled[ST_ARRAY_SIZE(patterns)];
    static bool ready;
    if (!ready) {
        for (size_t i = 0; i < ST_ARRAY_SIZE(patterns); i++)
            if (regcomp(&compiled[i], patterns[i], REG_EXTENDED | REG_NOSUB) != 0)
                abort();
        ready = true;
    }
    for (size_t i = 0; i < ST_ARRAY_SIZE(patterns); i++)
        if (regexec(&compiled[i], s, 0, NULL, 0) == 0)
            return true;
    return false;
}

enum yaml_style { YAML_PLAIN, YAML_SINGLE, YAML_DOUBLE };

static enum yaml_style yaml_style_for(const char *s, size_t len)
{
    for (size_t i = 0; i < len; i++) {
        unsigned char ch = (unsigned char)s[i];
        if (ch < 0x20 || ch == 0x7f)
            return YAML_DOUBLE;
    }
    if (len == 0 || strlen(s) != len)
        return len == 0 ? YAML_SINGLE : YAML_DOUBLE;
    if (strchr("-?:,[]{}#&*!|>'\"%@` ", s[0]) || s[len - 1] == ' ' || s[len - 1] == ':')
        return YAML_SINGLE;
    if (strstr(s, ": ") || strstr(s, " #"))
        return YAML_SINGLE;
    if (yaml_is_word(s) || yaml_looks_typed(s))
        return YAML_SINGLE;
    return YAML_PLAIN;
}

static struct fy_node *yaml_string(struct fy_document *d, const char *s, size_t len)
{
    enum yaml_style style = yaml_style_for(s, len);
    if (style == YAML_PLAIN)
        return fy_node_create_scalar_copy(d, s, len);
    /* Quoted scalars are parsed from their quoted text so that libfyaml
     * keeps the style; a JSON string is a valid YAML double-quoted one. */
    st_autofree char *text = NULL;
    if (style == YAML_SINGLE) {
        char *buf = NULL;
        size_t blen;
        FILE *f = mem_open(&buf, &blen);
        fputc('\'', f);
        for (size_t i = 0; i < len; i++) {
            if (s[i] == '\'')
                fputc('\'', f);
            fputc(s[i], f);
        }
        fputc('\'', f);
        text = mem_close(f, &buf);
    } else {
        st_autoptr(json_t) js = json_stringn(s, len);
        text = json_dumps(js, JSON_ENCODE_ANY);
        if (!text)
            abort();
    }
    /* the document keeps pointing into its source: hand the text over */
    struct fy_node *n = fy_node_build_from_malloc_string(d, text, FY_NT);
    if (!n)
        abort();
    text = NULL;
    return n;
}

static struct fy_node *yaml_node(struct fy_document *d, const json_t *v)
{
    char num[64];
    switch (json_typeof(v)) {
    case JSON_OBJECT: {
        /* PyYAML's safe_dump sorts mapping keys */
        struct fy_node *m = fy_node_create_mapping(d);
        size_t n = json_object_size(v), i = 0;
        st_autofree const char **keys = st_new0(const char *, n);
        const char *key;
        json_t *val;
        json_object_foreach((json_t *)v, key, val) keys[i++] = key;
        qsort(keys, n, sizeof(*keys), cmp_str);
        for (i = 0; i < n; i++)
            fy_node_mapping_append(m, yaml_string(d, keys[i], strlen(keys[i])),
                                   yaml_node(d, json_object_get(v, keys[i])));
        return m;
    }
    case JSON_ARRAY: {
        struct fy_node *s = fy_node_create_sequence(d);
        size_t i;
        json_t *item;
        json_array_foreach((json_t *)v, i, item) fy_node_sequence_append(s, yaml_node(d, item));
        return s;
    }
    case JSON_STRING:
        return yaml_string(d, json_string_value(v), json_string_length(v));
    case JSON_INTEGER:
        snprintf(num, sizeof(num), "%" JSON_INTEGER_FORMAT, json_integer_value(v));
        break;
    case JSON_REAL:
        real_repr(json_real_value(v), num, sizeof(num));
        if (strcmp(num, "nan") == 0 || strstr(num, "inf"))
            snprintf(num, sizeof(num), "%s",
                     isnan(json_real_value(v)) ? ".nan"
                     : json_real_value(v) < 0  ? "-.inf"
                                               : ".inf");
        break;
    case JSON_TRUE:
        return fy_node_create_scalar_copy(d, "true", FY_NT);
    case JSON_FALSE:
        return fy_node_create_scalar_copy(d, "false", FY_NT);
    case JSON_NULL:
        return fy_node_create_scalar_copy(d, "null", FY_NT);
    }
    return fy_node_create_scalar_copy(d, num, FY_NT);
}

static void emit_yaml(FILE *out, const struct grid *g, bool show)
{
    if (show && g->n_cols == 0)
        return;
    struct fy_document *d = fy_document_create(NULL);
    if (!d)
        abort();
    struct fy_node *root;
    if (show) {
        /* cliff dumps each field on its own, in column order */
        root = fy_node_create_mapping(d);
        for (size_t c = 0; c < g->n_cols; c++)
            fy_node_mapping_append(root, yaml_string(d, g->names[c], strlen(g->names[c])),
                                   yaml_node(d, machine_value(g->cells[c])));
    } else {
        root = fy_node_create_sequence(d);
        for (size_t r = 0; r < g->n_rows; r++) {
            st_autoptr(json_t) row = grid_row_object(g, r);
            fy_node_sequence_append(root, yaml_node(d, row));
        }
    }
    fy_document_set_root(d, root);
    char *s = fy_emit_document_to_string(d, FYECF_MODE_BLOCK | FYECF_INDENT_2 | FYECF_WIDTH_INF |
                                                FYECF_DOC_START_MARK_OFF | FYECF_DOC_END_MARK_OFF);
    fy_document_destroy(d);
    if (!s)
        abort();
    fputs(s, out);
    if (*s && s[strlen(s) - 1] != '\n')
        fputc('\n', out);
    free(s);
}

/* ---- entry points ---- */

static int emit(FILE *out, const struct st_cli_output_opts *opts, struct grid *g, bool show,
                struct st_err **err)
{
    int r = select_columns(g, opts, err);
    if (r < 0)
        return r;
    if (!show)
        sort_rows(g, opts);
    switch (opts->format) {
    case ST_CLI_FORMAT_TABLE:
        if (show)
            emit_table_show(out, g);
        else
            emit_table_list(out, g, opts->print_empty);
        break;
    case ST_CLI_FORMAT_JSON:
        emit_json(out, g, show, opts->noindent);
        break;
    case ST_CLI_FORMAT_VALUE:
        emit_value(out, g, show);
        break;
    case ST_CLI_FORMAT_YAML:
        emit_yaml(out, g, show);
        break;
    case ST_CLI_FORMAT_SHELL:
        if (!show)
            return st_err_set(err, -EINVAL, "the shell format prints one object, not a list");
        emit_shell(out, g, opts->prefix);
        break;
    case ST_CLI_FORMAT_CSV:
        if (show)
            return st_err_set(err, -EINVAL, "the csv format prints lists, not one object");
        emit_csv(out, g, opts->quote);
        break;
    }
    if (fflush(out) != 0 || ferror(out))
        return st_err_errno(err, "writing output");
    return 0;
}

int st_cli_output_show(FILE *out, const struct st_cli_output_opts *opts, const json_t *obj,
                       struct st_err **err)
{
    if (!json_is_object(obj))
        return st_err_set(err, -EINVAL, "cannot show a JSON %s as fields",
                          json_is_array(obj) ? "array" : "scalar");
    struct grid g = {.python_str = opts->python_str};
    g.n_cols = json_object_size(obj);
    g.n_rows = 1;
    g.names = st_new0(const char *, g.n_cols + 1);
    g.cells = st_new0(const json_t *, g.n_cols + 1);
    size_t i = 0;
    const char *key;
    json_t *val;
    json_object_foreach((json_t *)obj, key, val) g.names[i++] = key;
    qsort(g.names, g.n_cols, sizeof(*g.names), cmp_str);
    for (i = 0; i < g.n_cols; i++)
        g.cells[i] = json_object_get(obj, g.names[i]);
    int r = emit(out, opts, &g, true, err);
    grid_free(&g);
    return r;
}

int st_cli_output_list(FILE *out, const struct st_cli_output_opts *opts,
                       const struct st_cli_column *cols, size_t n_cols, const json_t *rows,
                       struct st_err **err)
{
    if (!json_is_array(rows))
        return st_err_set(err, -EINVAL, "cannot list a JSON %s as rows",
                          json_is_object(rows) ? "object" : "scalar");
    struct grid g = {.python_str = opts->python_str};
    g.n_cols = n_cols;
    g.n_rows = json_array_size(rows);
    g.names = st_new0(const char *, n_cols + 1);
    g.cells = st_new0(const json_t *, g.n_rows *n_cols + 1);
    g.empty = json_string("");
    for (size_t c = 0; c < n_cols; c++)
        g.names[c] = cols[c].heading;
    for (size_t r = 0; r < g.n_rows; r++) {
        json_t *row = json_array_get(rows, r);
        if (!json_is_object(row)) {
            grid_free(&g);
            return st_err_set(err, -EINVAL, "list row %zu is not an object", r);
        }
        for (size_t c = 0; c < n_cols; c++) {
            json_t *v = json_object_get(row, cols[c].key ? cols[c].key : cols[c].heading);
            g.cells[r * n_cols + c] = v ? v : g.empty;
        }
    }
    int r = emit(out, opts, &g, false, err);
    grid_free(&g);
    return r;
}

int st_cli_output_format_parse(const char *s, enum st_cli_format *ret)
{
    static const struct {
        const char *name;
        enum st_cli_format format;
    } formats[] = {
        {"table", ST_CLI_FORMAT_TABLE}, {"json", ST_CLI_FORMAT_JSON},
        {"value", ST_CLI_FORMAT_VALUE}, {"yaml", ST_CLI_FORMAT_YAML},
        {"shell", ST_CLI_FORMAT_SHELL}, {"csv", ST_CLI_FORMAT_CSV},
    };
    for (size_t i = 0; i < ST_ARRAY_SIZE(formats); i++)
        if (strcmp(s, formats[i].name) == 0) {
            *ret = formats[i].format;
            return 0;
        }
    return -EINVAL;
}

int st_cli_output_quote_parse(const char *s, enum st_cli_csv_quote *ret)
{
    static const char *const modes[] = {"nonnumeric", "all", "minimal", "none"};
    for (size_t i = 0; i < ST_ARRAY_SIZE(modes); i++)
        if (strcmp(s, modes[i]) == 0) {
            *ret = (enum st_cli_csv_quote)i;
            return 0;
        }
    return -EINVAL;
}
