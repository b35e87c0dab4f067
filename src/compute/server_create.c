/* Creating a server: Nova's request checked field by field with Nova's
 * messages, the flavor, image, key pair and resource policy resolved into
 * the spec (so that the scheduler and the agent never look them up again,
 * and a later change to a flavor does not change a running server), quota
 * reserved, and the document written in BUILD. See server.h. */
#include <errno.h>
#include <openssl/evp.h>
#include <stdlib.h>
#include <string.h>

#include "compute/flavor.h"
#include "compute/keypair.h"
#include "compute/model.h"
#include "compute/quota.h"
#include "compute/resources.h"
#include "compute/server-priv.h"
#include "compute/server.h"
#include "compute/server_group.h"
#include "image/image.h"
#include "network/network.h"
#include "lib/cleanup.h"
#include "lib/json.h"
#include "lib/log.h"
#include "lib/uuid.h"
#include "store/kv.h"

#define MAX_NETWORKS        64
#define MAX_SECURITY_GROUPS 64

static int invalid(struct st_err **err, const char *field, const char *why)
{
    return st_err_set(err, -EINVAL, "Invalid input for field/attribute %s. %s", field, why);
}

/* Nova's "name" format: 1..255 characters, printable, no leading or
 * trailing whitespace. */
int server_check_name(json_t *v, const char *field, struct st_err **err)
{
    if (!json_is_string(v))
        return invalid(err, field, "Value must be a string.");
    const char *s = json_string_value(v);
    size_t bytes = json_string_length(v), chars = 0;
    if (bytes == 0)
        return invalid(err, field, "Value must not be empty.");
    for (size_t i = 0; i < bytes; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c < 0x20 || c == 0x7f)
            return invalid(err, field, "Value must not contain control characters.");
        if ((c & 0xc0) != 0x80)
            chars++;
    }
    if (chars > ST_COMPUTE_NAME_MAX)
        return invalid(err, field, "Value is longer than 255 characters.");
    if (s[0] == ' ' || s[bytes - 1] == ' ' || s[0] == '\t' || s[bytes - 1] == '\t')
        return invalid(err, field, "Value must not have leading or trailing whitespace.");
    return 0;
}

/* A reference may be an id or a link to one (".../flavors/<id>"), as Nova
 * accepts. */
static const char *ref_id(const char *ref)
{
    const char *slash = strrchr(ref, '/');
    return slash && slash[1] ? slash + 1 : ref;
}

static int get_ref(json_t *req, const char *field, const char **ret, struct st_err **err)
{
    json_t *v = json_object_get(req, field);
    if (!v)
        return -ENOENT;
    if (json_is_integer(v))
        return invalid(err, field, "Value must be a string.");
    if (!json_is_string(v))
        return invalid(err, field, "Value must be a string.");
    const char *s = json_string_value(v);
    if (!s[0] || strlen(s) > 1024)
        return invalid(err, field, "Value must be a non-empty reference.");
    *ret = ref_id(s);
    return 0;
}

static int get_count(json_t *req, const char *field, int64_t *ret, struct st_err **err)
{
    json_t *v = json_object_get(req, field);
    *ret = 1;
    if (!v)
        return 0;
    if (json_is_integer(v)) {
        *ret = json_integer_value(v);
    } else if (json_is_string(v)) {
        char *end = NULL;
        *ret = strtoll(json_string_value(v), &end, 10);
        if (!json_string_value(v)[0] || *end)
            return invalid(err, field, "Value must be an integer.");
    } else {
        return invalid(err, field, "Value must be an integer.");
    }
    if (*ret < 1)
        return invalid(err, field, "Value must be at least 1.");
    return 0;
}

static int check_metadata(json_t *md, int64_t max_items, struct st_err **err)
{
    if (!json_is_object(md))
        return invalid(err, "metadata", "Value must be an object.");
    if (max_items >= 0 && (int64_t)json_object_size(md) > max_items)
        return st_err_set(err, -EDQUOT,
                          "Quota exceeded for metadata_items: Requested %zu, but "
                          "already used 0 of %lld metadata_items",
                          json_object_size(md), (long long)max_items);
    const char *k;
    json_t *v;
    json_object_foreach(md, k, v)
    {
        size_t kl = strlen(k);
        if (kl == 0 || kl > ST_COMPUTE_METADATA_KEY_MAX)
            return invalid(err, "metadata", "Metadata keys must be 1 to 255 characters long.");
        if (!json_is_string(v))
            return st_err_set(err, -EINVAL,
                              "Invalid input for field/attribute metadata. Value of '%s' must "
                              "be a string.",
                              k);
        if (json_string_length(v) > ST_COMPUTE_METADATA_VAL_MAX)
            return st_err_set(err, -EINVAL,
                              "Invalid input for field/attribute metadata. Value of '%s' is "
                              "longer than 255 characters.",
                              k);
    }
    return 0;
}

/* Nova's schema: a base64 string of at most 65535 characters. Newlines
 * (MIME-style line breaks) are allowed, as Python's decoder allows them. */
static int check_user_data(json_t *v, struct st_err **err)
{
    if (!json_is_string(v))
        return invalid(err, "user_data", "Value must be a base64 string.");
    size_t n = json_string_length(v);
    if (n > ST_COMPUTE_USER_DATA_MAX)
        return st_err_set(err, -EINVAL,
                          "Invalid input for field/attribute user_data. Value is %zu characters "
                          "long; the limit is %d characters of base64.",
                          n, ST_COMPUTE_USER_DATA_MAX);
    const unsigned char *s = (const unsigned char *)json_string_value(v);
    size_t sig = 0; /* base64 characters, without whitespace */
    for (size_t i = 0; i < n; i++)
        if (s[i] != '\n' && s[i] != '\r')
            sig++;
    if (sig % 4 != 0)
        return invalid(err, "user_data", "Value is not valid base64 (incorrect padding).");
    EVP_ENCODE_CTX *ctx = EVP_ENCODE_CTX_new();
    if (!ctx)
        abort();
    unsigned char *out = st_new0(unsigned char, n + 4);
    int outl = 0, finl = 0;
    EVP_DecodeInit(ctx);
    int r = EVP_DecodeUpdate(ctx, out, &outl, s, (int)n);
    int f = r >= 0 ? EVP_DecodeFinal(ctx, out + outl, &finl) : -1;
    EVP_ENCODE_CTX_free(ctx);
    free(out);
    if (r < 0 || f < 0)
        return invalid(err, "user_data", "Value is not valid base64.");
    return 0;
}

static int check_networks(json_t *v, struct st_err **err)
{
    if (json_is_string(v)) { /* "auto" / "none" exist from 2.37 only */
        return st_err_set(err, -EINVAL,
                          "Invalid input for field/attribute networks. Value: %s. %s is not of "
                          "type 'array'",
                          json_string_value(v), json_string_value(v));
    }
    if (!json_is_array(v))
        return invalid(err, "networks", "Value must be a list.");
    if (json_array_size(v) > MAX_NETWORKS)
        return invalid(err, "networks", "Too many networks.");
    size_t i;
    json_t *n;
    json_array_foreach(v, i, n)
    {
        if (!json_is_object(n))
            return invalid(err, "networks", "Each network must be an object.");
    }
    return 0;
}

/* [{"name": "default"}]: names or ids, as the CLI sends security group ids
 * in "name". Stored as given (a later issue wires them to Neutron). */
static int get_security_groups(json_t *v, json_t **ret, struct st_err **err)
{
    if (!v) {
        *ret = json_pack("[{s:s}]", "name", "default");
        return 0;
    }
    if (!json_is_array(v) || json_array_size(v) > MAX_SECURITY_GROUPS)
        return invalid(err, "security_groups", "Value must be a list of {\"name\": ...}.");
    json_t *out = json_array();
    size_t i;
    json_t *g;
    json_array_foreach(v, i, g)
    {
        const char *name = server_str(g, "name");
        if (!name || !name[0] || strlen(name) > 255) {
            json_decref(out);
            return invalid(err, "security_groups",
                           "Each entry needs a name of 1 to 255 "
                           "characters.");
        }
        json_array_append_new(out, json_pack("{s:s}", "name", name));
    }
    *ret = out;
    return 0;
}

static void release_quota(struct st_kv *kv, const char *project_id, const char *id)
{
    st_autoptr(st_err) rerr = NULL;
    if (st_compute_quota_release(kv, project_id, id, &rerr) < 0)
        st_log_warn("quota_release_failed", "server=%s err=\"%s\"", id, st_err_msg(rerr));
}

/* Creates the server's ports (network/network.h) and records them in the
 * spec: "ports" (what the agent plugs and Nova shows as addresses) and the
 * security groups by name, as Nova's server bodies show them. */
static int attach_ports(struct st_kv *kv, const struct st_compute_caller *who, const char *id,
                        json_t *req, json_t *spec, struct st_err **err)
{
    struct st_network_caller nwho = {
        .project_id = who->project_id, .user_id = who->user_id, .is_admin = who->is_admin};
    st_autoptr(json_t) ports = NULL;
    st_autoptr(json_t) sg_names = NULL;
    int r = st_network_server_ports_create(kv, &nwho, id, json_object_get(req, "networks"),
                                           json_object_get(req, "security_groups"), &ports,
                                           &sg_names, err);
    if (r < 0)
        return r;
    json_object_set(spec, "ports", ports ? ports : json_array());
    if (json_is_array(sg_names) && json_array_size(sg_names) > 0)
        json_object_set(spec, "security_groups", sg_names);
    return 0;
}

/* The image as the spec keeps it. */
static json_t *image_spec(json_t *image)
{
    json_t *props = json_object_get(image, "properties");
    return json_pack("{s:O?, s:O?, s:O?, s:O?, s:O?, s:O?, s:o}", "id",
                     json_object_get(image, "id"), "name", json_object_get(image, "name"),
                     "container_format", json_object_get(image, "container_format"), "disk_format",
                     json_object_get(image, "disk_format"), "checksum",
                     json_object_get(image, "checksum"), "size", json_object_get(image, "size"),
                     "properties", json_is_object(props) ? json_deep_copy(props) : json_object());
}

static json_t *flavor_spec(json_t *flavor)
{
    json_t *specs = json_object_get(flavor, "extra_specs");
    return json_pack("{s:O?, s:O?, s:O?, s:O?, s:O?, s:o}", "id", json_object_get(flavor, "id"),
                     "name", json_object_get(flavor, "name"), "vcpus",
                     json_object_get(flavor, "vcpus"), "ram", json_object_get(flavor, "ram"),
                     "disk", json_object_get(flavor, "disk"), "extra_specs",
                     json_is_object(specs) ? json_deep_copy(specs) : json_object());
}

static int resolve_flavor(struct st_kv *kv, const struct st_compute_caller *who, const char *id,
                          json_t **ret, struct st_err **err)
{
    st_autoptr(st_err) ferr = NULL;
    int r = st_flavor_get(kv, id, ret, &ferr);
    if (r == -ENOENT || (r == 0 && !who->is_admin && !st_flavor_visible(*ret, who->project_id))) {
        if (r == 0) {
            json_decref(*ret);
            *ret = NULL;
        }
        return st_err_set(err, -EINVAL, "Flavor %s could not be found.", id);
    }
    if (r < 0)
        return st_err_set(err, r, "reading flavor %s: %s", id, st_err_msg(ferr));
    if (json_is_true(json_object_get(*ret, "disabled"))) {
        json_decref(*ret);
        *ret = NULL;
        return st_err_set(err, -EINVAL, "Flavor is disabled.");
    }
    return 0;
}

static int resolve_image(struct st_kv *kv, const struct st_compute_caller *who, const char *id,
                         json_t **ret, const char **ret_driver, struct st_err **err)
{
    st_autoptr(st_err) ierr = NULL;
    int r = st_image_get_visible(kv, who->project_id, who->is_admin, id, ret, &ierr);
    if (r == -ENOENT || r == -EINVAL)
        return st_err_set(err, -EINVAL, "Image %s could not be found.", id);
    if (r < 0)
        return st_err_set(err, r, "reading image %s: %s", id, st_err_msg(ierr));
    const char *status = server_str(*ret, "status");
    if (!status || strcmp(status, "active") != 0)
        return st_err_set(err, -EINVAL, "Image %s is not active.", id);
    const char *cf = server_str(*ret, "container_format");
    /* docker images are root filesystem tarballs run as containers; every
     * other container format holds a disk for the VM driver */
    *ret_driver = cf && strcmp(cf, "docker") == 0 ? "container" : "vm";
    return 0;
}

static int get_optional_string(json_t *req, const char *field, size_t max, const char **ret,
                               struct st_err **err)
{
    json_t *v = json_object_get(req, field);
    *ret = NULL;
    if (!v || json_is_null(v))
        return 0;
    if (!json_is_string(v) || json_string_length(v) == 0 || json_string_length(v) > max)
        return st_err_set(err, -EINVAL,
                          "Invalid input for field/attribute %s. Value must be a string of 1 to "
                          "%zu characters.",
                          field, max);
    *ret = json_string_value(v);
    return 0;
}

static int check_hints(json_t *hints, const char **ret_group, struct st_err **err)
{
    *ret_group = NULL;
    if (!hints || json_is_null(hints))
        return 0;
    if (!json_is_object(hints))
        return invalid(err, "os:scheduler_hints", "Value must be an object.");
    json_t *g = json_object_get(hints, "group");
    if (!g)
        return 0;
    if (!json_is_string(g) || !st_uuid_valid(json_string_value(g)))
        return invalid(err, "group", "Value must be a server group UUID.");
    *ret_group = json_string_value(g);
    return 0;
}

int st_compute_server_create(struct st_kv *kv, const struct st_compute_caller *who, json_t *req,
                             json_t *hints, json_t **ret_doc, struct st_err **err)
{
    if (!json_is_object(req))
        return st_err_set(err, -EINVAL,
                          "Invalid input for field/attribute server. Value must "
                          "be an object.");
    if (!who->project_id || !who->user_id)
        return st_err_set(err, -EPERM, "creating a server needs a project-scoped token");
    json_t *name = json_object_get(req, "name");
    if (!name)
        return st_err_set(err, -EINVAL,
                          "Invalid input for field/attribute server. 'name' is a "
                          "required property");
    int r = server_check_name(name, "name", err);
    if (r < 0)
        return r;
    int64_t min_count, max_count;
    if ((r = get_count(req, "min_count", &min_count, err)) < 0 ||
        (r = get_count(req, "max_count", &max_count, err)) < 0)
        return r;
    if (min_count > max_count)
        return invalid(err, "min_count", "min_count must be <= max_count.");
    if (max_count > 1)
        return st_err_set(err, -EINVAL,
                          "Creating more than one server per request "
                          "(min_count/max_count > 1) is not supported.");

    const char *flavor_id = NULL, *image_id = NULL;
    r = get_ref(req, "flavorRef", &flavor_id, err);
    if (r == -ENOENT)
        return st_err_set(err, -EINVAL,
                          "Invalid input for field/attribute server. 'flavorRef' "
                          "is a required property");
    if (r < 0)
        return r;
    json_t *image_ref = json_object_get(req, "imageRef");
    if (!image_ref || (json_is_string(image_ref) && json_string_length(image_ref) == 0)) {
        if (json_object_get(req, "block_device_mapping_v2"))
            return st_err_set(err, -EINVAL,
                              "Booting from a volume is not supported yet: give "
                              "an imageRef.");
        return st_err_set(err, -EINVAL, "Missing imageRef attribute");
    }
    if ((r = get_ref(req, "imageRef", &image_id, err)) < 0)
        return r;

    const char *key_name = NULL, *az = NULL, *group = NULL;
    if ((r = get_optional_string(req, "key_name", ST_KEYPAIR_NAME_MAX, &key_name, err)) < 0 ||
        (r = get_optional_string(req, "availability_zone", 255, &az, err)) < 0 ||
        (r = check_hints(hints, &group, err)) < 0)
        return r;
    struct st_compute_quota quota;
    if ((r = st_compute_quota_get(kv, who->project_id, &quota, err)) < 0)
        return r;
    json_t *metadata = json_object_get(req, "metadata");
    if (metadata && (r = check_metadata(metadata, quota.limit[ST_QUOTA_METADATA_ITEMS], err)) < 0)
        return r;
    json_t *user_data = json_object_get(req, "user_data");
    if (json_is_null(user_data))
        user_data = NULL;
    if (user_data && (r = check_user_data(user_data, err)) < 0)
        return r;
    json_t *networks = json_object_get(req, "networks");
    if (networks && (r = check_networks(networks, err)) < 0)
        return r;
    st_autoptr(json_t) security_groups = NULL;
    if ((r = get_security_groups(json_object_get(req, "security_groups"), &security_groups, err)) <
        0)
        return r;

    /* the hinted group before anything is reserved: a bad hint is 400 */
    if (group && (r = st_server_group_check_hint(kv, who, group, err)) < 0)
        return r;
    st_autoptr(json_t) flavor = NULL;
    if ((r = resolve_flavor(kv, who, flavor_id, &flavor, err)) < 0)
        return r;
    st_autoptr(json_t) image = NULL;
    const char *driver = NULL;
    if ((r = resolve_image(kv, who, image_id, &image, &driver, err)) < 0)
        return r;
    st_autoptr(json_t) keypair = NULL;
    if (key_name) {
        st_autoptr(st_err) kerr = NULL;
        r = st_keypair_get(kv, who->user_id, key_name, &keypair, &kerr);
        if (r == -ENOENT || r == -EINVAL)
            return st_err_set(err, -EINVAL, "Invalid key_name provided.");
        if (r < 0)
            return st_err_set(err, r, "reading key pair %s: %s", key_name, st_err_msg(kerr));
    }
    st_autoptr(json_t) policy = NULL;
    if ((r = st_compute_policy_for(kv, who->project_id, flavor, metadata, &policy, err)) < 0)
        return r;
    st_autoptr(json_t) resources = NULL;
    if ((r = st_compute_resources(flavor, policy, &resources, err)) < 0)
        return st_err_prefix(err, r, "Invalid resources for flavor %s", flavor_id);

    char id[ST_UUID_LEN], now[ST_TIME_RFC3339_LEN];
    st_uuid_new(id);
    server_now(now);
    json_t *spec = json_pack(
        "{s:o, s:o, s:s, s:s?, s:O?, s:O?, s:o, s:s?, s:s?, s:o, s:O, s:O, s:O?, s:s, s:i, "
        "s:b, s:n}",
        "flavor", flavor_spec(flavor), "image", image_spec(image), "driver", driver, "key_name",
        key_name, "public_key", keypair ? json_object_get(keypair, "public_key") : NULL,
        "user_data", user_data, "metadata", metadata ? json_deep_copy(metadata) : json_object(),
        "availability_zone", az, "server_group", group, "networks",
        networks ? json_deep_copy(networks) : json_array(), "security_groups", security_groups,
        "resources", resources, "resource_policy", policy, "power", "on", "reboot", 0, "deleted", 0,
        "host");
    if (!spec)
        return st_err_set(err, -EINVAL, "server document could not be built");
    json_t *status = json_pack("{s:s, s:s, s:i, s:n, s:n, s:i, s:n}", "state", "BUILD",
                               "task_state", "scheduling", "power_state", 0, "fault", "launched_at",
                               "observed_reboot", 0, "instance");
    st_autoptr(json_t) doc =
        json_pack("{s:s, s:O, s:s, s:s, s:s, s:s, s:o, s:o}", "id", id, "name", name, "project_id",
                  who->project_id, "user_id", who->user_id, "created_at", now, "updated_at", now,
                  "spec", spec, "status", status);
    if (!doc)
        return st_err_set(err, -EINVAL, "server document could not be built");

    int64_t vcpus = json_integer_value(json_object_get(flavor, "vcpus"));
    int64_t ram = json_integer_value(json_object_get(flavor, "ram"));
    r = st_compute_quota_reserve(kv, who->project_id, id, vcpus, ram, err);
    if (r < 0)
        return r;
    /* Ports before the document, as Nova asks Neutron before it builds: a
     * crash in between leaves ports whose device no longer exists, which
     * the network service treats as free (network.h). */
    if ((r = attach_ports(kv, who, id, req, spec, err)) < 0) {
        release_quota(kv, who->project_id, id);
        return r;
    }
    st_autofree char *key = server_key(id);
    st_autofree char *text = st_json_dumps(doc);
    r = st_kv_put(kv, key, text, strlen(text), ST_KV_ABSENT, NULL, err);
    if (r < 0) {
        release_quota(kv, who->project_id, id);
        st_autoptr(st_err) perr = NULL;
        if (st_network_device_ports_release(kv, id, &perr) < 0)
            st_log_warn("ports_release_failed", "server=%s err=\"%s\"", id, st_err_msg(perr));
        return st_err_prefix(err, r, "writing server %s", id);
    }
    /* After the document, so that every member id once had one (see
     * server_group.h); placement reads spec.server_group, so a failure here
     * only leaves the server out of the group's member list. */
    if (group) {
        st_autoptr(st_err) gerr = NULL;
        if (st_server_group_add_member(kv, group, id, &gerr) < 0)
            st_log_warn("server_group_member_not_added", "server=%s group=%s err=\"%s\"", id, group,
                        st_err_msg(gerr));
    }
    st_log_info("server_created", "server=%s project=%s flavor=%s image=%s driver=%s", id,
                who->project_id, flavor_id, image_id, driver);
    *ret_doc = st_steal(&doc);
    return 0;
}
