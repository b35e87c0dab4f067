/* The column formatters of openstackclient's network commands (its
 * network/v2 modules) and osc-lib's, read from their sources: what a table
 * shows is their human_readable(), what -f json shows their
 * machine_readable(), which is the server's value; see neutron_view.h. */
#include "neutron_view.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/cleanup.h"
#include "lib/json.h"
#include "output.h"
#include "services.h"

bool st_cli_neutron_truthy(const json_t *v)
{
    switch (v ? json_typeof(v) : JSON_NULL) {
    case JSON_NULL:
    case JSON_FALSE:
        return false;
    case JSON_INTEGER:
        return json_integer_value(v) != 0;
    case JSON_REAL:
        return json_real_value(v) != 0.0;
    case JSON_STRING:
        return json_string_length(v) > 0;
    case JSON_ARRAY:
        return json_array_size(v) > 0;
    case JSON_OBJECT:
        return json_object_size(v) > 0;
    default:
        return true;
    }
}

/* osc-lib's format_list_of_dicts: each object as format_dict, one a line. */
static char *dict_lines(const json_t *list)
{
    char *buf = NULL;
    size_t len;
    FILE *f = open_memstream(&buf, &len);
    if (!f)
        abort();
    size_t i;
    json_t *item;
    json_array_foreach(list, i, item)
    {
        st_autofree char *t = st_cli_output_cell(item);
        fprintf(f, "%s%s", i ? "\n" : "", t);
    }
    fclose(f);
    return buf;
}

/* Routes as --host-route / --route name them: "nexthop" shown as "gateway". */
static char *routes_text(const json_t *routes)
{
    st_autoptr(json_t) shown = json_array();
    size_t i;
    json_t *r;
    json_array_foreach(routes, i, r)
    {
        json_t *copy = json_is_object(r) ? json_copy(r) : json_incref(r);
        json_t *hop = json_object_get(copy, "nexthop");
        if (hop) {
            json_object_set(copy, "gateway", hop);
            json_object_del(copy, "nexthop");
        }
        json_array_append_new(shown, copy);
    }
    return dict_lines(shown);
}

/* _format_network_security_group_rules: each rule without its empty
 * fields and without what the group already says (its ID, its project). */
static char *sg_rules_text(const json_t *rules)
{
    st_autoptr(json_t) shown = json_array();
    size_t i;
    json_t *r;
    json_array_foreach(rules, i, r)
    {
        json_t *copy = json_object();
        const char *key;
        json_t *v;
        json_object_foreach((json_t *)r, key, v)
        {
            if (!st_cli_neutron_truthy(v) || strcmp(key, "security_group_id") == 0 ||
                strcmp(key, "tenant_id") == 0 || strcmp(key, "project_id") == 0)
                continue;
            json_object_set(copy, key, v);
        }
        json_array_append_new(shown, copy);
    }
    return dict_lines(shown);
}

static char *pools_text(const json_t *pools)
{
    char *buf = NULL;
    size_t len;
    FILE *f = open_memstream(&buf, &len);
    if (!f)
        abort();
    size_t i;
    json_t *p;
    json_array_foreach(pools, i, p)
        fprintf(f, "%s%s-%s", i ? "," : "", st_cli_str(p, "start"), st_cli_str(p, "end"));
    fclose(f);
    return buf;
}

json_t *st_cli_neutron_cell(enum st_cli_nfmt fmt, const json_t *value)
{
    json_t *v = value ? (json_t *)value : json_null();
    st_autofree char *human = NULL;
    switch (fmt) {
    case ST_CLI_NFMT_NONE:
        return json_incref(v);
    case ST_CLI_NFMT_LIST:
        return st_cli_list_column(v);
    case ST_CLI_NFMT_LIST_DICT:
        return st_cli_list_dict_column(v);
    case ST_CLI_NFMT_DICT:
        return st_cli_dict_column(v);
    case ST_CLI_NFMT_ADMIN_STATE:
        return st_cli_output_formatted(st_cli_neutron_truthy(v) ? "UP" : "DOWN", json_incref(v));
    case ST_CLI_NFMT_ROUTER_EXTERNAL:
        return st_cli_output_formatted(st_cli_neutron_truthy(v) ? "External" : "Internal",
                                       json_incref(v));
    case ST_CLI_NFMT_POOLS:
        if (!json_is_array(v))
            return json_incref(v);
        human = pools_text(v);
        break;
    case ST_CLI_NFMT_ROUTES:
        human = json_is_array(v) ? routes_text(v) : st_strdup("");
        break;
    case ST_CLI_NFMT_JSON:
        human = json_dumps(v, JSON_ENCODE_ANY | JSON_ENSURE_ASCII);
        break;
    case ST_CLI_NFMT_SG_RULES:
        if (!json_is_array(v))
            return json_incref(v);
        human = sg_rules_text(v);
        break;
    case ST_CLI_NFMT_DICT_TEXT:
        if (!json_is_object(v))
            return json_incref(v);
        human = st_cli_output_cell(v);
        return json_string(human);
    }
    return st_cli_output_formatted(human, json_incref(v));
}

json_t *st_cli_neutron_view(const struct st_cli_nfield *fields, const json_t *obj)
{
    json_t *view = json_object();
    for (const struct st_cli_nfield *f = fields; f->column; f++)
        json_object_set_new(view, f->column,
                            st_cli_neutron_cell(f->fmt, json_object_get(obj, f->key)));
    return view;
}

int st_cli_neutron_show(struct st_cli_ctx *ctx, const struct st_cli_nfield *fields,
                        const json_t *obj, struct st_err **err)
{
    st_autoptr(json_t) view = st_cli_neutron_view(fields, obj);
    return st_cli_ctx_show(ctx, view, err);
}

int st_cli_neutron_list(struct st_cli_ctx *ctx, const struct st_cli_nfield *fields, size_t n,
                        const json_t *objects, struct st_err **err)
{
    st_autofree struct st_cli_column *cols = st_new0(struct st_cli_column, n);
    for (size_t c = 0; c < n; c++)
        cols[c] = (struct st_cli_column){fields[c].column, fields[c].column};
    st_autoptr(json_t) rows = json_array();
    size_t i;
    json_t *obj;
    json_array_foreach(objects, i, obj)
    {
        json_t *row = json_object();
        for (size_t c = 0; c < n; c++)
            json_object_set_new(
                row, fields[c].column,
                st_cli_neutron_cell(fields[c].fmt, json_object_get(obj, fields[c].key)));
        json_array_append_new(rows, row);
    }
    return st_cli_ctx_list(ctx, cols, n, rows, err);
}
