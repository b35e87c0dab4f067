/* `stratosd init`; see init.h. */
#include "init.h"

#include <errno.h>
#include <string.h>
#include <stdio.h>
#include <sys/stat.h>
#include <unistd.h>

#include "lib/cleanup.h"
#include "lib/files.h"
#include "lib/json.h"
#include "lib/log.h"
#include "lib/times.h"
#include "lib/uuid.h"
#include "compute/node_token.h"
#include "identity/identity.h"
#include "image/image.h"
#include "store/kv.h"
#include "version.h"

char *st_daemon_store_path(const struct st_daemon_config *cfg)
{
    return st_sprintf("%s/%s", cfg->data_dir, ST_DAEMON_STORE_FILE);
}

/* With --store the state is elsewhere: init leaves the node token in the
 * data dir, and run checks the store's cluster record once it is open. */
bool st_daemon_is_initialized(const struct st_daemon_config *cfg)
{
    st_autofree char *path = cfg->store
                                 ? st_sprintf("%s/%s", cfg->data_dir, ST_COMPUTE_NODE_TOKEN_FILE)
                                 : st_daemon_store_path(cfg);
    return access(path, F_OK) == 0;
}

/* The cluster record names this installation; written once, never changed. */
static int ensure_cluster_record(struct st_kv *kv, struct st_err **err)
{
    st_autoptr(st_kv_entry) existing = NULL;
    int r = st_kv_get(kv, ST_DAEMON_CLUSTER_KEY, &existing, err);
    if (r == 0)
        return 0;
    if (r != -ENOENT)
        return r;
    char id[ST_UUID_LEN], now[ST_TIME_RFC3339_LEN];
    st_uuid_new(id);
    st_time_rfc3339(st_time_now_ms() / 1000, now, sizeof(now));
    st_autoptr(json_t) doc = json_pack("{s:s, s:s, s:s}", "cluster_id", id, "created_at", now,
                                       "created_by_version", ST_VERSION);
    st_autofree char *value = st_json_dumps(doc);
    r = st_kv_put(kv, ST_DAEMON_CLUSTER_KEY, value, strlen(value), ST_KV_ABSENT, NULL, err);
    if (r == -ECANCELED) { /* another init won the race: same outcome */
        st_err_clear(err);
        return 0;
    }
    return r;
}

char *st_daemon_openrc_path(const struct st_daemon_config *cfg)
{
    return st_sprintf("%s/%s", cfg->data_dir, ST_DAEMON_OPENRC_FILE);
}

static char *openrc_text(const char *auth_url, const char *password)
{
    return st_sprintf("# stratos admin credentials, written by `stratosd init`.\n"
                      "# Usable by both `stratos` and `openstack`: source this file.\n"
                      "export OS_AUTH_URL=%s/identity/v3\n"
                      "export OS_IDENTITY_API_VERSION=3\n"
                      "export OS_USERNAME=admin\n"
                      "export OS_PASSWORD='%s'\n"
                      "export OS_PROJECT_NAME=admin\n"
                      "export OS_USER_DOMAIN_NAME=Default\n"
                      "export OS_PROJECT_DOMAIN_NAME=Default\n"
                      "export OS_REGION_NAME=RegionOne\n"
                      "export OS_INTERFACE=public\n",
                      auth_url, password);
}

/* An existing openrc keeps its password (only init knew it) but follows a
 * new --listen/--public-url: its OS_AUTH_URL line is rewritten. */
static int refresh_openrc_url(const char *path, const char *auth_url, struct st_err **err)
{
    st_autofree char *old = NULL;
    int r = st_read_file(path, 64 * 1024, &old, NULL, err);
    if (r < 0)
        return r;
    st_autofree char *line = st_sprintf("export OS_AUTH_URL=%s/identity/v3\n", auth_url);
    char *start = strstr(old, "export OS_AUTH_URL=");
    if (!start)
        return 0;
    char *end = strchr(start, '\n');
    end = end ? end + 1 : start + strlen(start);
    if ((size_t)(end - start) == strlen(line) && strncmp(start, line, strlen(line)) == 0)
        return 0;
    *start = '\0';
    st_autofree char *text = st_sprintf("%s%s%s", old, line, end);
    return st_write_file_atomic(path, text, strlen(text), 0600, err);
}

/* One --import-image NAME=PATH[:container_format]: a public raw image owned
 * by the admin project, imported only if no image of that name is visible
 * to the admin project yet, so that running init again changes nothing. */
static int import_image(const struct st_daemon_config *cfg, struct st_kv *kv,
                        const char *project_id, const char *spec, struct st_err **err)
{
    st_autofree char *name = st_strdup(spec);
    char *path = strchr(name, '=');
    *path++ = '\0';
    const char *container = "docker";
    char *colon = strrchr(path, ':');
    if (colon && st_image_container_format_valid(colon + 1)) {
        *colon = '\0';
        container = colon + 1;
    }
    st_autoptr(json_t) existing = NULL;
    int r = st_image_find_visible(kv, project_id, false, name, &existing, err);
    if (r == 0 || r == -EEXIST) {
        st_err_clear(err);
        st_log_info("image_import_skipped", "name=\"%s\" reason=\"an image of that name exists\"",
                    name);
        return 0;
    }
    if (r != -ENOENT)
        return r;
    st_err_clear(err);
    st_autoptr(json_t) attrs = json_pack("{s:s, s:s, s:s, s:s}", "name", name, "disk_format", "raw",
                                         "container_format", container, "visibility", "public");
    st_autoptr(json_t) doc = NULL;
    r = st_image_import(kv, cfg->data_dir, project_id, attrs, path, &doc, err);
    if (r < 0)
        return st_err_prefix(err, r, "--import-image %s", spec);
    st_log_info("image_imported", "name=\"%s\" id=%s container_format=%s size=%lld", name,
                json_string_value(json_object_get(doc, "id")), container,
                (long long)json_integer_value(json_object_get(doc, "size")));
    return 0;
}

static int import_images(const struct st_daemon_config *cfg, struct st_kv *kv,
                         struct st_identity *identity, struct st_err **err)
{
    int r = st_image_gc(kv, cfg->data_dir, err);
    if (r < 0 || cfg->n_import_images == 0)
        return r;
    st_autoptr(json_t) project = NULL;
    r = st_identity_project_find(identity, ST_IDENTITY_DEFAULT_DOMAIN_ID, "admin", &project, err);
    if (r < 0)
        return st_err_prefix(err, r, "finding the admin project");
    const char *project_id = json_string_value(json_object_get(project, "id"));
    for (size_t i = 0; i < cfg->n_import_images; i++)
        if ((r = import_image(cfg, kv, project_id, cfg->import_images[i], err)) < 0)
            return r;
    return 0;
}

int st_daemon_init(const struct st_daemon_config *cfg, struct st_err **err)
{
    int r = st_mkdir_p(cfg->data_dir, 0700, err);
    if (r < 0)
        return st_err_prefix(err, r, "preparing data dir");
    if (chmod(cfg->data_dir, 0700) < 0)
        return st_err_errno(err, "chmod %s", cfg->data_dir);
    /* with --store, the first init bootstraps the shared store; the cluster
     * record and the identity bootstrap make every later one a no-op */
    st_autofree char *path = st_daemon_store_path(cfg);
    st_autoptr(st_kv) kv = NULL;
    r = st_kv_open(cfg->store ? cfg->store : path, NULL, &kv, err);
    if (r < 0)
        return st_err_prefix(err, r, "opening store");
    r = ensure_cluster_record(kv, err);
    if (r < 0)
        return st_err_prefix(err, r, "writing cluster record");
    r = st_compute_node_token_ensure(cfg->data_dir, err);
    if (r < 0)
        return st_err_prefix(err, r, "creating the node token");

    st_autoptr(st_identity) identity = NULL;
    r = st_identity_new(kv, NULL, &identity, err);
    if (r < 0)
        return st_err_prefix(err, r, "opening identity");
    st_autofree char *password = NULL;
    r = st_identity_bootstrap(identity, &password, err);
    if (r < 0)
        return st_err_prefix(err, r, "bootstrapping identity");
    st_autofree char *openrc = st_daemon_openrc_path(cfg);
    if (password) {
        st_autofree char *text = openrc_text(cfg->public_url, password);
        r = st_write_file_atomic(openrc, text, strlen(text), 0600, err);
        explicit_bzero(text, strlen(text));
        explicit_bzero(password, strlen(password));
        if (r < 0)
            return st_err_prefix(err, r, "writing admin credentials");
    } else if (access(openrc, F_OK) == 0) {
        r = refresh_openrc_url(openrc, cfg->public_url, err);
        if (r < 0)
            return st_err_prefix(err, r, "updating %s", openrc);
    } else {
        st_log_warn("openrc_missing",
                    "path=%s hint=\"the admin user exists but its credentials "
                    "file is gone; reset the password with stratos user set\"",
                    openrc);
    }
    r = import_images(cfg, kv, identity, err);
    if (r < 0)
        return st_err_prefix(err, r, "importing images");
    return 0;
}
