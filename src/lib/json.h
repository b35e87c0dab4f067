/* JSON helpers over jansson: parsing with messages a user can act on
 * ("body is not valid JSON: ... at line 1 column 7"), typed field access
 * that names the field and the expected type, and compact dumping. */
#pragma once

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "cleanup.h"
#include "err.h"

ST_DEFINE_AUTOPTR(json_t, json_decref)

/* Parses buf (not NUL-terminated) into any JSON value; -EINVAL on error. */
int st_json_parse(const char *buf, size_t len, json_t **ret, struct st_err **err);
/* As st_json_parse, but the top level must be an object. */
int st_json_parse_object(const char *buf, size_t len, json_t **ret, struct st_err **err);

/* Typed getters. A missing key gives -ENOENT when !required (ret untouched),
 * -EINVAL "missing required field 'key'" when required; a wrong type gives
 * -EINVAL "field 'key' must be a string". Returned values are borrowed. */
int st_json_get_str(json_t *obj, const char *key, bool required, const char **ret,
                    struct st_err **err);
int st_json_get_int(json_t *obj, const char *key, bool required, int64_t *ret, struct st_err **err);
int st_json_get_bool(json_t *obj, const char *key, bool required, bool *ret, struct st_err **err);
int st_json_get_obj(json_t *obj, const char *key, bool required, json_t **ret, struct st_err **err);
int st_json_get_array(json_t *obj, const char *key, bool required, json_t **ret,
                      struct st_err **err);

/* Compact serialisation (no spaces), keys in insertion order; aborts on OOM.
 * Caller frees. */
char *st_json_dumps(const json_t *v);
/* Pretty form for humans (CLI -f json): two-space indent. */
char *st_json_dumps_pretty(const json_t *v);
