/* YAML documents into JSON; see document.h. libfyaml parses; this file
 * only decides what each plain scalar means, because the YAML 1.1 rules
 * libfyaml's own JSON output follows would read "~" as a string and
 * "yes" as a boolean, where YAML 1.2 and kubectl say otherwise. */
#include "document.h"

#include <errno.h>
#include <libfyaml.h>
#include <regex.h>
#include <stdlib.h>
#include <string.h>

#include "lib/cleanup.h"

#define MAX_DEPTH 64

/* YAML 1.2 core schema: null, booleans, integers (decimal, 0o, 0x) and
 * floats; anything else is a string. */
static json_t *plain_scalar(const char *s, size_t len)
{
    static const char *const nulls[] = {"", "~", "null", "Null", "NULL"};
    static const char *const trues[] = {"true", "True", "TRUE"};
    static const char *const falses[] = {"false", "False", "FALSE"};
    st_autofree char *t = st_strndup(s, len);
    for (size_t i = 0; i < ST_ARRAY_SIZE(nulls); i++)
        if (strcmp(t, nulls[i]) == 0)
            return json_null();
    for (size_t i = 0; i < ST_ARRAY_SIZE(trues); i++) {
        if (strcmp(t, trues[i]) == 0)
            return json_true();
        if (strcmp(t, falses[i]) == 0)
            return json_false();
    }
    static regex_t ints, octal, hex, floats;
    static bool ready;
    if (!ready) {
        if (regcomp(&ints, "^[-+]?[0-9]+$", REG_EXTENDED | REG_NOSUB) ||
            regcomp(&octal, "^0o[0-7]+$", REG_EXTENDED | REG_NOSUB) ||
            regcomp(&hex, "^0x[0-9a-fA-F]+$", REG_EXTENDED | REG_NOSUB) ||
            regcomp(&floats, "^[-+]?(\\.[0-9]+|[0-9]+(\\.[0-9]*)?)([eE][-+]?[0-9]+)?$",
                    REG_EXTENDED | REG_NOSUB))
            abort();
        ready = true;
    }
    char *end = NULL;
    errno = 0;
    if (regexec(&ints, t, 0, NULL, 0) == 0) {
        long long v = strtoll(t, &end, 10);
        if (errno == 0)
            return json_integer(v);
    } else if (regexec(&octal, t, 0, NULL, 0) == 0) {
        long long v = strtoll(t + 2, &end, 8);
        if (errno == 0)
            return json_integer(v);
    } else if (regexec(&hex, t, 0, NULL, 0) == 0) {
        long long v = strtoll(t + 2, &end, 16);
        if (errno == 0)
            return json_integer(v);
    } else if (regexec(&floats, t, 0, NULL, 0) == 0) {
        return json_real(strtod(t, NULL));
    }
    return json_stringn(s, len);
}

static int node_to_json(struct fy_node *n, int depth, json_t **ret, struct st_err **err)
{
    if (depth > MAX_DEPTH)
        return st_err_set(err, -EINVAL, "nested deeper than %d levels", MAX_DEPTH);
    if (!n) {
        *ret = json_null();
        return 0;
    }
    if (fy_node_is_alias(n) || fy_node_get_anchor(n))
        return st_err_set(err, -EINVAL, "anchors and aliases are not accepted");
    switch (fy_node_get_type(n)) {
    case FYNT_SCALAR: {
        size_t len = 0;
        const char *s = fy_node_get_scalar(n, &len);
        *ret = fy_node_get_style(n) == FYNS_PLAIN ? plain_scalar(s ? s : "", s ? len : 0)
                                                  : json_stringn(s ? s : "", s ? len : 0);
        if (!*ret)
            return st_err_set(err, -EINVAL, "a string that is not UTF-8");
        return 0;
    }
    case FYNT_SEQUENCE: {
        json_t *a = json_array();
        void *iter = NULL;
        struct fy_node *item;
        while ((item = fy_node_sequence_iterate(n, &iter))) {
            json_t *v = NULL;
            int r = node_to_json(item, depth + 1, &v, err);
            if (r < 0) {
                json_decref(a);
                return r;
            }
            json_array_append_new(a, v);
        }
        *ret = a;
        return 0;
    }
    case FYNT_MAPPING: {
        json_t *o = json_object();
        void *iter = NULL;
        struct fy_node_pair *pair;
        while ((pair = fy_node_mapping_iterate(n, &iter))) {
            struct fy_node *k = fy_node_pair_key(pair);
            size_t klen = 0;
            const char *key = k && fy_node_is_scalar(k) ? fy_node_get_scalar(k, &klen) : NULL;
            if (!key || fy_node_is_alias(k)) {
                json_decref(o);
                return st_err_set(err, -EINVAL, "a mapping key that is not a plain text");
            }
            st_autofree char *kcopy = st_strndup(key, klen);
            json_t *v = NULL;
            int r = node_to_json(fy_node_pair_value(pair), depth + 1, &v, err);
            if (r < 0) {
                json_decref(o);
                return st_err_prefix(err, r, "%s", kcopy);
            }
            json_object_set_new(o, kcopy, v);
        }
        *ret = o;
        return 0;
    }
    }
    return st_err_set(err, -EINVAL, "unknown node type");
}

/* The first line libfyaml reports, as the error's text: its
 * "<memory-@0x...>:2:1: error: what" as "line 2, column 1: what". */
static void capture_diag(struct fy_diag *diag, void *user, const char *buf, size_t len)
{
    (void)diag;
    char **msg = user;
    if (*msg)
        return;
    while (len && (buf[len - 1] == '\n' || buf[len - 1] == ' '))
        len--;
    st_autofree char *line = st_strndup(buf, len);
    const char *p = line[0] == '<' ? strchr(line, '>') : NULL;
    int row, col, used = 0;
    if (p && sscanf(p, ">:%d:%d: %*[a-z]: %n", &row, &col, &used) == 2 && used > 0)
        *msg = st_sprintf("line %d, column %d: %s", row, col, p + used);
    else
        *msg = st_steal(&line);
}

int st_cli_document_parse(const char *text, size_t len, json_t **ret, struct st_err **err)
{
    if (len > ST_CLI_DOCUMENT_MAX)
        return st_err_set(err, -EFBIG, "the document is larger than %d bytes", ST_CLI_DOCUMENT_MAX);
    st_autofree char *diag_msg = NULL;
    struct fy_diag_cfg dcfg;
    fy_diag_cfg_default(&dcfg);
    dcfg.fp = NULL;
    dcfg.output_fn = capture_diag;
    dcfg.user = &diag_msg;
    dcfg.colorize = false;
    struct fy_diag *diag = fy_diag_create(&dcfg);
    if (!diag)
        abort();
    struct fy_parse_cfg pcfg = {.flags = FYPCF_DEFAULT_DOC, .diag = diag};
    struct fy_parser *fyp = fy_parser_create(&pcfg);
    if (!fyp || fy_parser_set_string(fyp, text, len) != 0)
        abort();
    json_t *docs = json_array();
    int r = 0;
    struct fy_document *doc;
    while (r == 0 && (doc = fy_parse_load_document(fyp))) {
        struct fy_node *root = fy_document_root(doc);
        if (root) {
            json_t *v = NULL;
            r = node_to_json(root, 0, &v, err);
            if (r < 0)
                st_err_prefix(err, r, "invalid YAML");
            else
                json_array_append_new(docs, v);
        }
        fy_parse_document_destroy(fyp, doc);
    }
    if (r == 0 && fy_parser_get_stream_error(fyp))
        r = st_err_set(err, -EINVAL, "invalid YAML: %s", diag_msg ? diag_msg : "parse error");
    fy_parser_destroy(fyp);
    fy_diag_destroy(diag);
    if (r < 0) {
        json_decref(docs);
        return r;
    }
    *ret = docs;
    return 0;
}
