/* The attributes of an image as Glance's API shows them: which are core
 * (and which of those a user may set, and when), which are read-only, and
 * how a user property is checked. One place decides, for create and patch
 * alike, so that both refuse the same things with the same words. */
#include <errno.h>
#include <stdint.h>
#include <string.h>

#include "image/image-priv.h"
#include "image/image.h"
#include "lib/cleanup.h"

static const char *const disk_formats[] = {"ami", "ari",   "aki", "vhd",   "vhdx", "vmdk",
                                           "raw", "qcow2", "vdi", "ploop", "iso"};
static const char *const container_formats[] = {"ami", "ari", "aki",    "bare",
                                                "ovf", "ova", "docker", "compressed"};
static const char *const visibilities[] = {"public", "private", "shared", "community"};

/* Attributes the server owns: a client naming one is refused, as Glance
 * does ("Attribute 'status' is read-only."). */
static const char *const read_only[] = {
    "status",     "size",       "virtual_size", "checksum", "os_hash_algo", "os_hash_value",
    "created_at", "updated_at", "self",         "file",     "schema",       "locations",
    "direct_url", "stores",     "project_id",   "upload",   "properties",
};

static bool in_list(const char *s, const char *const *list, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(s, list[i]) == 0)
            return true;
    return false;
}

bool st_image_disk_format_valid(const char *fmt)
{
    return fmt && in_list(fmt, disk_formats, ST_ARRAY_SIZE(disk_formats));
}

bool st_image_container_format_valid(const char *fmt)
{
    return fmt && in_list(fmt, container_formats, ST_ARRAY_SIZE(container_formats));
}

static const char *const settable[] = {"id",        "name",        "visibility",      "protected",
                                       "os_hidden", "min_disk",    "min_ram",         "tags",
                                       "owner",     "disk_format", "container_format"};

bool image_attr_is_core(const char *key)
{
    return in_list(key, settable, ST_ARRAY_SIZE(settable)) ||
           in_list(key, read_only, ST_ARRAY_SIZE(read_only));
}

static bool text_ok(const char *s, size_t max)
{
    size_t n = strlen(s);
    if (n == 0 || n > max)
        return false;
    for (const unsigned char *c = (const unsigned char *)s; *c; c++)
        if (*c < 0x20 || *c == 0x7f)
            return false;
    return true;
}

int image_tag_check(const char *tag, struct st_err **err)
{
    if (!text_ok(tag, 255))
        return st_err_set(err, -EINVAL, "Invalid tag: tags are 1 to 255 printable characters");
    return 0;
}

static int set_tags(json_t *doc, json_t *value, struct st_err **err)
{
    if (!json_is_array(value))
        return st_err_set(err, -EINVAL, "Invalid value for 'tags': expected a list of strings");
    json_t *tags = json_array();
    size_t i;
    json_t *t;
    json_array_foreach(value, i, t)
    {
        int r = json_is_string(t) ? image_tag_check(json_string_value(t), err)
                                  : st_err_set(err, -EINVAL, "Invalid tag: tags are strings");
        if (r < 0) {
            json_decref(tags);
            return r;
        }
        bool dup = false;
        size_t j;
        json_t *u;
        json_array_foreach(tags, j, u)
        {
            if (strcmp(json_string_value(u), json_string_value(t)) == 0)
                dup = true;
        }
        if (!dup)
            json_array_append(tags, t);
    }
    if (json_array_size(tags) > ST_IMAGE_TAGS_MAX) {
        json_decref(tags);
        return st_err_set(err, -E2BIG, "Maximum number of tags (%d) exceeded", ST_IMAGE_TAGS_MAX);
    }
    json_object_set_new(doc, "tags", tags);
    return 0;
}

static int set_format(json_t *doc, const char *key, json_t *value, bool creating,
                      struct st_err **err)
{
    bool disk = strcmp(key, "disk_format") == 0;
    const char *status = json_string_value(json_object_get(doc, "status"));
    if (!creating && status && strcmp(status, "queued") != 0)
        return st_err_set(err, -EPERM, "Attribute %s can be only replaced for a queued image.",
                          key);
    if (json_is_null(value)) {
        json_object_set_new(doc, key, json_null());
        return 0;
    }
    const char *fmt = json_string_value(value);
    if (!fmt || !(disk ? st_image_disk_format_valid(fmt) : st_image_container_format_valid(fmt)))
        return st_err_set(err, -EINVAL,
                          disk ? "Invalid disk_format '%s': expected one of ami, ari, aki, vhd, "
                                 "vhdx, vmdk, raw, qcow2, vdi, ploop, iso"
                               : "Invalid container_format '%s': expected one of ami, ari, aki, "
                                 "bare, ovf, ova, docker, compressed",
                          fmt ? fmt : "(not a string)");
    json_object_set(doc, key, value);
    return 0;
}

static int set_int(json_t *doc, const char *key, json_t *value, struct st_err **err)
{
    if (!json_is_integer(value) || json_integer_value(value) < 0 ||
        json_integer_value(value) > INT32_MAX)
        return st_err_set(err, -EINVAL, "Invalid value for '%s': expected an integer from 0 to %d",
                          key, INT32_MAX);
    json_object_set(doc, key, value);
    return 0;
}

static int set_bool(json_t *doc, const char *key, json_t *value, struct st_err **err)
{
    if (!json_is_boolean(value))
        return st_err_set(err, -EINVAL, "Invalid value for '%s': expected true or false", key);
    json_object_set(doc, key, value);
    return 0;
}

static int set_property(json_t *doc, const char *key, json_t *value, struct st_err **err)
{
    json_t *props = json_object_get(doc, "properties");
    if (!value) {
        json_object_del(props, key);
        return 0;
    }
    if (!text_ok(key, 255))
        return st_err_set(err, -EINVAL,
                          "Invalid property name: names are 1 to 255 printable characters");
    if (strncmp(key, "os_glance", 9) == 0)
        return st_err_set(err, -EPERM, "Attribute '%s' is reserved.", key);
    if (!json_is_string(value))
        return st_err_set(err, -EINVAL, "Invalid value for property '%s': expected a string", key);
    if (json_string_length(value) > ST_IMAGE_PROPERTY_VALUE_MAX)
        return st_err_set(err, -EINVAL, "Property '%s' is longer than %d bytes", key,
                          ST_IMAGE_PROPERTY_VALUE_MAX);
    if (!json_object_get(props, key) && json_object_size(props) >= ST_IMAGE_PROPERTIES_MAX)
        return st_err_set(err, -E2BIG, "Maximum number of properties (%d) exceeded",
                          ST_IMAGE_PROPERTIES_MAX);
    json_object_set(props, key, value);
    return 0;
}

int image_attr_set(json_t *doc, const char *key, json_t *value, bool creating, struct st_err **err)
{
    if (in_list(key, read_only, ST_ARRAY_SIZE(read_only)))
        return st_err_set(err, -EPERM, "Attribute '%s' is read-only.", key);
    if (!in_list(key, settable, ST_ARRAY_SIZE(settable)))
        return set_property(doc, key, value, err);
    if (!value)
        return st_err_set(err, -EPERM, "Cannot remove core attribute '%s'.", key);

    if (strcmp(key, "id") == 0) {
        if (!creating)
            return st_err_set(err, -EPERM, "Attribute 'id' is read-only.");
        /* record.c reads it before creating; here it is only validated */
        return 0;
    }
    if (strcmp(key, "name") == 0) {
        if (json_is_null(value)) {
            json_object_set_new(doc, "name", json_null());
            return 0;
        }
        if (!json_is_string(value) || !text_ok(json_string_value(value), ST_IMAGE_NAME_MAX))
            return st_err_set(err, -EINVAL,
                              "Invalid value for 'name': expected 1 to %d printable characters",
                              ST_IMAGE_NAME_MAX);
        json_object_set(doc, "name", value);
        return 0;
    }
    if (strcmp(key, "owner") == 0) {
        if (!json_is_string(value) || !text_ok(json_string_value(value), 64))
            return st_err_set(err, -EINVAL, "Invalid value for 'owner': expected a project id");
        json_object_set(doc, "project_id", value);
        return 0;
    }
    if (strcmp(key, "visibility") == 0) {
        const char *v = json_string_value(value);
        if (!v || !in_list(v, visibilities, ST_ARRAY_SIZE(visibilities)))
            return st_err_set(err, -EINVAL,
                              "Invalid visibility value: %s (expected public, private, shared "
                              "or community)",
                              v ? v : "(not a string)");
        json_object_set(doc, "visibility", value);
        return 0;
    }
    if (strcmp(key, "protected") == 0 || strcmp(key, "os_hidden") == 0)
        return set_bool(doc, key, value, err);
    if (strcmp(key, "min_disk") == 0 || strcmp(key, "min_ram") == 0)
        return set_int(doc, key, value, err);
    if (strcmp(key, "tags") == 0)
        return set_tags(doc, value, err);
    return set_format(doc, key, value, creating, err);
}
