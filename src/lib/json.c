/* JSON helpers; see json.h. */
#include "json.h"

#include <errno.h>
#include <stdlib.h>

int st_json_parse(const char *buf, size_t len, json_t **ret, struct st_err **err)
{
    json_error_t jerr;
    json_t *v =
        json_loadb(buf ? buf : "", buf ? len : 0, JSON_DECODE_ANY | JSON_REJECT_DUPLICATES, &jerr);
    if (!v)
        return st_err_set(err, -EINVAL, "invalid JSON: %s at line %d column %d", jerr.text,
                          jerr.line, jerr.column);
    *ret = v;
    return 0;
}

int st_json_parse_object(const char *buf, size_t len, json_t **ret, struct st_err **err)
{
    json_t *v = NULL;
    int r = st_json_parse(buf, len, &v, err);
    if (r < 0)
        return r;
    if (!json_is_object(v)) {
        json_decref(v);
        return st_err_set(err, -EINVAL, "invalid JSON: expected an object at the top level");
    }
    *ret = v;
    return 0;
}

static int get_field(json_t *obj, const char *key, bool required, json_type type,
                     const char *type_name, json_t **ret, struct st_err **err)
{
    json_t *v = json_is_object(obj) ? json_object_get(obj, key) : NULL;
    if (!v || (json_is_null(v) && !required && type != JSON_NULL)) {
        if (required)
            return st_err_set(err, -EINVAL, "missing required field '%s'", key);
        return -ENOENT;
    }
    bool ok = json_typeof(v) == type || (type == JSON_TRUE && json_is_boolean(v));
    if (!ok)
        return st_err_set(err, -EINVAL, "field '%s' must be %s", key, type_name);
    *ret = v;
    return 0;
}

int st_json_get_str(json_t *obj, const char *key, bool required, const char **ret,
                    struct st_err **err)
{
    json_t *v = NULL;
    int r = get_field(obj, key, required, JSON_STRING, "a string", &v, err);
    if (r == 0)
        *ret = json_string_value(v);
    return r;
}

int st_json_get_int(json_t *obj, const char *key, bool required, int64_t *ret, struct st_err **err)
{
    json_t *v = NULL;
    int r = get_field(obj, key, required, JSON_INTEGER, "an integer", &v, err);
    if (r == 0)
        *ret = json_integer_value(v);
    return r;
}

int st_json_get_bool(json_t *obj, const char *key, bool required, bool *ret, struct st_err **err)
{
    json_t *v = NULL;
    int r = get_field(obj, key, required, JSON_TRUE, "a boolean", &v, err);
    if (r == 0)
        *ret = json_is_true(v);
    return r;
}

int st_json_get_obj(json_t *obj, const char *key, bool required, json_t **ret, struct st_err **err)
{
    return get_field(obj, key, required, JSON_OBJECT, "an object", ret, err);
}

int st_json_get_array(json_t *obj, const char *key, bool required, json_t **ret,
                      struct st_err **err)
{
    return get_field(obj, key, required, JSON_ARRAY, "an array", ret, err);
}

char *st_json_dumps(const json_t *v)
{
    char *s = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
    if (!s)
        abort();
    return s;
}

char *st_json_dumps_pretty(const json_t *v)
{
    char *s = json_dumps(v, JSON_INDENT(2) | JSON_ENCODE_ANY);
    if (!s)
        abort();
    return s;
}
