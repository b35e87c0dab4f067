/* Updates in Glance's JSON-patch dialect (media type
 * application/openstack-images-v2.1-json-patch): a list of add / replace /
 * remove operations on the flat attribute view, applied all or nothing in
 * one compare-and-swap write. Paths are JSON pointers of one segment
 * ("/name", "/os_command_line", with ~1 for '/' and ~0 for '~'), or two for
 * the tag list ("/tags/0", "/tags/-"), which is what openstacksdk generates. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "image/image-priv.h"
#include "image/image.h"
#include "lib/cleanup.h"
#include "lib/json.h"

#define PATCH_OPS_MAX 256

/* Decodes one JSON-pointer segment in place (~1 → '/', ~0 → '~'). */
static int unescape(char *seg, struct st_err **err)
{
    char *out = seg;
    for (char *c = seg; *c; c++) {
        if (*c == '~') {
            if (c[1] == '1')
                *out++ = '/';
            else if (c[1] == '0')
                *out++ = '~';
            else
                return st_err_set(err, -EINVAL, "Invalid JSON pointer escape in '%s'", seg);
            c++;
        } else {
            *out++ = *c;
        }
    }
    *out = '\0';
    return 0;
}

static int tag_index(const char *s, size_t n, bool allow_end, size_t *ret, struct st_err **err)
{
    if (allow_end && strcmp(s, "-") == 0) {
        *ret = n;
        return 0;
    }
    char *end;
    unsigned long v = strtoul(s, &end, 10);
    if (!s[0] || *end || s[0] == '-' || s[0] == '+' || v > (allow_end ? n : n - 1) ||
        (!allow_end && n == 0))
        return st_err_set(err, -EINVAL, "Invalid tag position '%s'", s);
    *ret = v;
    return 0;
}

static int patch_tags(json_t *doc, const char *op, const char *pos, json_t *value,
                      struct st_err **err)
{
    st_autoptr(json_t) tags = json_deep_copy(json_object_get(doc, "tags"));
    size_t n = json_array_size(tags), i;
    int r;
    if (strcmp(op, "remove") == 0) {
        if ((r = tag_index(pos, n, false, &i, err)) < 0)
            return r;
        json_array_remove(tags, i);
    } else {
        if (!json_is_string(value))
            return st_err_set(err, -EINVAL, "Invalid tag: tags are strings");
        bool add = strcmp(op, "add") == 0;
        if ((r = tag_index(pos, n, add, &i, err)) < 0)
            return r;
        if (add)
            json_array_insert(tags, i, value);
        else
            json_array_set(tags, i, value);
    }
    return image_attr_set(doc, "tags", tags, false, err);
}

static int apply_one(json_t *doc, json_t *patch, struct st_err **err)
{
    const char *op = NULL, *path = NULL;
    if (!json_is_object(patch))
        return st_err_set(err, -EINVAL, "each patch operation must be an object");
    int r = st_json_get_str(patch, "op", true, &op, err);
    if (r < 0)
        return r;
    if ((r = st_json_get_str(patch, "path", true, &path, err)) < 0)
        return r;
    bool remove = strcmp(op, "remove") == 0;
    if (!remove && strcmp(op, "add") != 0 && strcmp(op, "replace") != 0)
        return st_err_set(err, -EINVAL,
                          "Unsupported patch operation '%s': use add, replace or remove", op);
    json_t *value = json_object_get(patch, "value");
    if (!remove && !value)
        return st_err_set(err, -EINVAL, "Operation '%s' on '%s' needs a value", op, path);
    if (path[0] != '/' || !path[1])
        return st_err_set(err, -EINVAL, "Invalid JSON pointer '%s': expected '/<attribute>'", path);

    st_autofree char *key = st_strdup(path + 1);
    char *second = strchr(key, '/');
    if (second)
        *second++ = '\0';
    if ((r = unescape(key, err)) < 0)
        return r;
    if (second) {
        if (strcmp(key, "tags") != 0 || strchr(second, '/'))
            return st_err_set(err, -EINVAL,
                              "Invalid JSON pointer '%s': nested paths are only "
                              "allowed within /tags",
                              path);
        if ((r = unescape(second, err)) < 0)
            return r;
        return patch_tags(doc, op, second, value, err);
    }
    if (!image_attr_is_core(key)) {
        bool exists = json_object_get(json_object_get(doc, "properties"), key) != NULL;
        if (!exists && (remove || strcmp(op, "replace") == 0))
            return st_err_set(err, -EEXIST, "Property %s does not exist.", key);
    }
    return image_attr_set(doc, key, remove ? NULL : value, false, err);
}

static int apply_ops(json_t *doc, void *userdata, struct st_err **err)
{
    json_t *ops = userdata;
    size_t i;
    json_t *patch;
    json_array_foreach(ops, i, patch)
    {
        int r = apply_one(doc, patch, err);
        if (r < 0)
            return r;
    }
    return 0;
}

int st_image_update(struct st_kv *kv, const char *id, json_t *ops, json_t **ret,
                    struct st_err **err)
{
    if (!json_is_array(ops))
        return st_err_set(err, -EINVAL, "the patch must be a JSON list of operations");
    if (json_array_size(ops) > PATCH_OPS_MAX)
        return st_err_set(err, -E2BIG, "a patch holds at most %d operations", PATCH_OPS_MAX);
    return image_edit(kv, id, apply_ops, ops, ret, err);
}
