/* Nova servers, creating and looking at them: the openstack CLI's
 * `server create`, `server list` and `server show` (openstackclient
 * compute/v2/server.py over novaclient at 2.1): the lookups it makes (the
 * image through Glance, the flavor, networks and security groups), the
 * request body of §4.4 built from the options given, and the server shown
 * as openstack prepares it (image and flavor names, addresses per network,
 * metadata as properties, the power state in words). `--wait` polls until
 * the server is ACTIVE or ERROR with a progress line on stderr, so that
 * `-f json` output stays clean. The other server verbs are in
 * cmd_server_action.c. */
#include "cmd_server.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "http.h"
#include "identity.h"
#include "lib/cleanup.h"
#include "lib/files.h"
#include "lib/json.h"
#include "neutron.h"
#include "output.h"
#include "services.h"

#define SHOW (ST_CLI_CMD_SHOW | ST_CLI_CMD_AUTH | ST_CLI_CMD_PY_STR)
#define LIST (ST_CLI_CMD_LIST | ST_CLI_CMD_AUTH | ST_CLI_CMD_PY_STR)

/* Nova takes at most 65535 base64 characters of user data; read a little
 * more than that so the server, not us, says what the limit is. */
#define USER_DATA_MAX (64 * 1024)

#define BFV_IMAGE "N/A (booted from volume)"

/* ---- showing a server ---- */

/* PowerStateColumn: Nova's power_state numbers in words. */
static json_t *power_state_column(json_t *value)
{
    static const char *const states[] = {"NOSTATE",  "Running", "",        "Paused",
                                         "Shutdown", "",        "Crashed", "Suspended"};
    const char *text = "N/A";
    if (json_is_integer(value) && json_integer_value(value) >= 0 &&
        json_integer_value(value) < (json_int_t)ST_ARRAY_SIZE(states))
        text = states[json_integer_value(value)];
    return st_cli_output_formatted(text, json_incref(value));
}

/* novaclient's Server.networks: {label: [addr, ...]} from "addresses". */
static json_t *server_networks(const json_t *server)
{
    json_t *nets = json_object();
    const char *label;
    json_t *list;
    json_object_foreach(json_object_get(server, "addresses"), label, list)
    {
        json_t *addrs = json_array();
        size_t i;
        json_t *a;
        json_array_foreach(list, i, a) json_array_append(addrs, json_object_get(a, "addr"));
        json_object_set_new(nets, label, addrs);
    }
    return nets;
}

/* "name (id)" of the server's image, or the bare ID when Glance does not
 * know it, or the boot-from-volume text when there is no image. */
static json_t *image_text(struct st_cli_ctx *ctx, const json_t *image)
{
    const char *id = json_string_value(json_object_get(image, "id"));
    if (!json_is_object(image) || json_object_size(image) == 0)
        return json_string(BFV_IMAGE);
    st_autofree char *esc = st_cli_http_escape(id ? id : "");
    st_autofree char *path = st_sprintf("/images/%s", esc);
    st_autoptr(json_t) found = NULL;
    if (st_cli_service_call(ctx, ST_CLI_GLANCE, "GET", path, NULL, &found, NULL) < 0)
        return json_string(id ? id : "");
    return json_sprintf("%s (%s)", st_cli_str(found, "name"), id ? id : "");
}

static json_t *flavor_text(struct st_cli_ctx *ctx, const json_t *flavor)
{
    json_t *idv = json_object_get(flavor, "id");
    if (!idv) /* 2.47+ embeds the flavor without its ID */
        return st_cli_dict_column((json_t *)flavor);
    const char *id = json_string_value(idv);
    st_autofree char *esc = st_cli_http_escape(id ? id : "");
    st_autofree char *path = st_sprintf("/flavors/%s", esc);
    st_autoptr(json_t) found = NULL;
    if (st_cli_service_call(ctx, ST_CLI_NOVA, "GET", path, NULL, &found, NULL) < 0)
        return json_string(id ? id : "");
    return json_sprintf("%s (%s)", st_cli_str(json_object_get(found, "flavor"), "name"),
                        id ? id : "");
}

/* openstackclient's _prep_server_detail, on the server's fields. */
static json_t *server_view(struct st_cli_ctx *ctx, const json_t *server)
{
    json_t *v = json_deep_copy(server);
    json_object_set_new(v, "image", image_text(ctx, json_object_get(server, "image")));
    json_t *flavor = json_object_get(server, "flavor");
    st_autoptr(json_t) no_flavor = json_object();
    json_object_set_new(v, "flavor",
                        json_is_object(flavor) ? flavor_text(ctx, flavor)
                                               : st_cli_dict_column(no_flavor));
    json_t *vols = json_object_get(server, "os-extended-volumes:volumes_attached");
    if (vols) {
        json_object_set_new(v, "volumes_attached", st_cli_list_dict_column(vols));
        json_object_del(v, "os-extended-volumes:volumes_attached");
    }
    json_t *sgs = json_object_get(server, "security_groups");
    if (sgs)
        json_object_set_new(v, "security_groups", st_cli_list_dict_column(sgs));
    json_t *tags = json_object_get(server, "tags");
    if (tags)
        json_object_set_new(v, "tags", st_cli_list_column(tags));
    st_autoptr(json_t) nets = server_networks(server);
    json_object_set_new(v, "addresses", st_cli_dict_list_column(nets));
    json_t *meta = json_object_get(server, "metadata");
    st_autoptr(json_t) none = json_object();
    json_object_set_new(v, "properties", st_cli_dict_column(meta ? meta : none));
    json_object_del(v, "metadata");
    json_t *tenant = json_object_get(server, "tenant_id");
    if (tenant) {
        json_object_set(v, "project_id", tenant);
        json_object_del(v, "tenant_id");
    }
    json_t *power = json_object_get(server, "OS-EXT-STS:power_state");
    if (power)
        json_object_set_new(v, "OS-EXT-STS:power_state", power_state_column(power));
    json_object_del(v, "links");
    return v;
}

int st_cli_server_get(struct st_cli_ctx *ctx, const char *id, json_t **ret, struct st_err **err)
{
    st_autofree char *esc = st_cli_http_escape(id);
    st_autofree char *path = st_sprintf("/servers/%s", esc);
    st_autoptr(json_t) doc = NULL;
    int r = st_cli_service_call(ctx, ST_CLI_NOVA, "GET", path, NULL, &doc, err);
    if (r < 0)
        return r;
    json_t *server = json_object_get(doc, "server");
    if (!json_is_object(server))
        return st_err_set(err, -EPROTO, "invalid response to GET %s: no server object", path);
    *ret = json_incref(server);
    return 0;
}

/* ---- waiting ---- */

static bool status_is(const json_t *server, const char *status)
{
    const char *s = json_string_value(json_object_get(server, "status"));
    return s && strcasecmp(s, status) == 0;
}

int st_cli_server_wait(struct st_cli_ctx *ctx, const char *id, const char *name, const char *verb,
                       bool until_gone, json_t **ret, struct st_err **err)
{
    bool tty = isatty(fileno(ctx->err)) == 1;
    st_autofree char *last = NULL;
    struct timespec t0;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    int r = 0;
    for (unsigned attempt = 0;; attempt++) {
        st_autoptr(json_t) server = NULL;
        st_autoptr(st_err) e = NULL;
        r = st_cli_server_get(ctx, id, &server, &e);
        if (r == -ENOENT && until_gone) {
            r = 0;
            break;
        }
        if (r < 0) {
            st_err_set(err, r, "%s", st_err_msg(e));
            break;
        }
        /* one line per change (a log stays short), rewritten in place on a
         * terminal with the time spent */
        const char *task = json_string_value(json_object_get(server, "OS-EXT-STS:task_state"));
        st_autofree char *line =
            st_sprintf("Server %s: %s%s%s%s", name, st_cli_str(server, "status"), task ? " (" : "",
                       task ? task : "", task ? ")" : "");
        struct timespec now;
        clock_gettime(CLOCK_MONOTONIC, &now);
        double secs = (double)(now.tv_sec - t0.tv_sec) + (double)(now.tv_nsec - t0.tv_nsec) / 1e9;
        if (tty) {
            fprintf(ctx->err, "\r%s, %.1f s\033[K", line, secs);
            fflush(ctx->err);
        } else if (!last || strcmp(last, line) != 0) {
            fprintf(ctx->err, "%s\n", line);
            fflush(ctx->err);
        }
        free(last);
        last = st_steal(&line);
        if (status_is(server, "error")) {
            const char *fault =
                json_string_value(json_object_get(json_object_get(server, "fault"), "message"));
            r = st_err_set(err, -EIO, "Error %s server: %s%s%s", verb, name, fault ? "\n" : "",
                           fault ? fault : "");
            break;
        }
        if (!until_gone && status_is(server, "active")) {
            if (ret)
                *ret = st_steal(&server);
            break;
        }
        st_cli_poll_sleep(attempt);
    }
    if (tty)
        fputc('\n', ctx->err);
    return r;
}

/* ---- create ---- */

/* --nic net-id=NET,v4-fixed-ip=IP | port-id=PORT (repeatable), as openstack:
 * Nova's {"uuid", "fixed_ip"} or {"port"}, after the --network ones. */
static int add_nics(struct st_cli_ctx *ctx, json_t *networks, struct st_err **err)
{
    static const char *const optional[] = {"net-id", "v4-fixed-ip", "v6-fixed-ip", "port-id", NULL};
    static const char *const none[] = {NULL};
    st_autoptr(json_t) nics = NULL;
    int r = st_cli_neutron_multi_kv(ctx, "nic", none, optional, &nics, err);
    if (r < 0)
        return r;
    size_t i;
    json_t *nic;
    json_array_foreach(nics, i, nic)
    {
        const char *net = json_string_value(json_object_get(nic, "net-id"));
        const char *port = json_string_value(json_object_get(nic, "port-id"));
        const char *ip = json_string_value(json_object_get(nic, "v4-fixed-ip"));
        if (!!net == !!port)
            return st_err_set(err, -EINVAL,
                              "Invalid --nic argument. Either network or port should be "
                              "specified but not both");
        st_autoptr(json_t) found = NULL;
        r = st_cli_find(ctx, net ? &st_cli_kind_network : &st_cli_kind_port, net ? net : port,
                        &found, err);
        if (r < 0)
            return r;
        json_t *entry = net ? json_pack("{s:s}", "uuid", st_cli_str(found, "id"))
                            : json_pack("{s:s}", "port", st_cli_str(found, "id"));
        if (ip)
            json_object_set_new(entry, "fixed_ip", json_string(ip));
        json_array_append_new(networks, entry);
    }
    return 0;
}

static int run_create(struct st_cli_ctx *ctx, struct st_err **err)
{
    const struct st_cli_args *a = &ctx->args;
    const char *name = a->pos[0];
    long min, max;
    int rc;
    if ((rc = st_cli_ctx_int_option(ctx, "min", 1, &min)) != 0 ||
        (rc = st_cli_ctx_int_option(ctx, "max", 1, &max)) != 0)
        return rc;
    if (min > max)
        return st_err_set(err, -EINVAL, "min instances should be <= max instances");
    if (min < 1)
        return st_err_set(err, -EINVAL, "min instances should be > 0");
    if (max < 1)
        return st_err_set(err, -EINVAL, "max instances should be > 0");
    if (st_cli_args_get(a, "description"))
        return st_err_set(err, -EOPNOTSUPP,
                          "Description is not supported for --os-compute-api-version less than "
                          "2.19");
    st_autoptr(json_t) meta = json_object();
    int r = st_cli_key_values(ctx, "property", meta, err);
    if (r < 0)
        return r;

    /* the lookups, in openstack's order: image, flavor, networks, groups */
    st_autoptr(json_t) image = NULL;
    st_autoptr(json_t) flavor = NULL;
    r = st_cli_find(ctx, &st_cli_kind_image, st_cli_args_get(a, "image"), &image, err);
    if (r == 0)
        r = st_cli_find(ctx, &st_cli_kind_flavor_nova, st_cli_args_get(a, "flavor"), &flavor, err);
    if (r < 0)
        return r;
    st_autoptr(json_t) networks = json_array();
    char *const *values;
    size_t n = st_cli_args_all(a, "network", &values);
    for (size_t i = 0; i < n; i++) {
        st_autoptr(json_t) net = NULL;
        r = st_cli_find(ctx, &st_cli_kind_network, values[i], &net, err);
        if (r < 0)
            return r;
        json_array_append_new(networks, json_pack("{s:s}", "uuid", st_cli_str(net, "id")));
    }
    if ((r = add_nics(ctx, networks, err)) < 0)
        return r;
    st_autoptr(json_t) groups = json_array();
    n = st_cli_args_all(a, "security-group", &values);
    for (size_t i = 0; i < n; i++) {
        st_autoptr(json_t) sg = NULL;
        r = st_cli_find(ctx, &st_cli_kind_security_group, values[i], &sg, err);
        if (r < 0)
            return r;
        /* the group's ID in "name": names need not be unique */
        json_array_append_new(groups, json_pack("{s:s}", "name", st_cli_str(sg, "id")));
    }
    st_autofree char *user_data = NULL;
    const char *ud_file = st_cli_args_get(a, "user-data");
    if (ud_file) {
        st_autofree char *text = NULL;
        size_t len;
        st_autoptr(st_err) e = NULL;
        if (st_read_file(ud_file, USER_DATA_MAX, &text, &len, &e) < 0)
            return st_err_set(err, -EINVAL, "Can't open '%s': %s", ud_file, st_err_msg(e));
        user_data = st_cli_base64(text, len);
    }

    /* novaclient's body, key for key (§4.4): optional keys only when given */
    st_autoptr(json_t) server = json_object();
    json_object_set_new(server, "name", json_string(name));
    json_object_set_new(server, "imageRef", json_string(st_cli_str(image, "id")));
    json_object_set_new(server, "flavorRef", json_string(st_cli_str(flavor, "id")));
    if (user_data)
        json_object_set_new(server, "user_data", json_string(user_data));
    if (json_object_size(meta) > 0)
        json_object_set(server, "metadata", meta);
    if (st_cli_args_get(a, "key-name"))
        json_object_set_new(server, "key_name", json_string(st_cli_args_get(a, "key-name")));
    json_object_set_new(server, "min_count", json_integer(min));
    json_object_set_new(server, "max_count", json_integer(max));
    if (json_array_size(groups) > 0)
        json_object_set(server, "security_groups", groups);
    if (st_cli_args_get(a, "availability-zone"))
        json_object_set_new(server, "availability_zone",
                            json_string(st_cli_args_get(a, "availability-zone")));
    if (json_array_size(networks) > 0)
        json_object_set(server, "networks", networks);
    st_autoptr(json_t) body = json_pack("{s:O}", "server", server);
    st_autoptr(json_t) hints = json_object();
    if ((r = st_cli_key_values(ctx, "hint", hints, err)) < 0)
        return r;
    if (json_object_size(hints) > 0)
        json_object_set(body, "os:scheduler_hints", hints);
    st_autoptr(json_t) doc = NULL;
    r = st_cli_service_call(ctx, ST_CLI_NOVA, "POST", "/servers", body, &doc, err);
    if (r < 0)
        return r;
    json_t *created = json_object_get(doc, "server");
    const char *id = json_string_value(json_object_get(created, "id"));
    if (!id)
        return st_err_set(err, -EPROTO, "invalid response to POST /servers: no server id");

    st_autoptr(json_t) now = NULL;
    if (st_cli_args_flag(a, "wait"))
        r = st_cli_server_wait(ctx, id, name, "creating", false, &now, err);
    else
        r = st_cli_server_get(ctx, id, &now, err);
    if (r < 0)
        return r;
    /* what the create answered (adminPass) with what the server is now */
    st_autoptr(json_t) merged = json_deep_copy(created);
    json_object_update(merged, now);
    st_autoptr(json_t) view = server_view(ctx, merged);
    return st_cli_ctx_show(ctx, view, err);
}

/* ---- show ---- */

static int run_show(struct st_cli_ctx *ctx, struct st_err **err)
{
    if (st_cli_args_flag(&ctx->args, "diagnostics") || st_cli_args_flag(&ctx->args, "topology"))
        return st_err_set(err, -EOPNOTSUPP,
                          "--os-compute-api-version 2.78 or greater is required to support the "
                          "--topology option");
    st_autoptr(json_t) server = NULL;
    int r = st_cli_find(ctx, &st_cli_kind_server, ctx->args.pos[0], &server, err);
    if (r < 0)
        return r;
    st_autoptr(json_t) view = server_view(ctx, server);
    return st_cli_ctx_show(ctx, view, err);
}

/* ---- list ---- */

static const struct st_cli_column short_cols[] = {
    {"ID", "id"},
    {"Name", "name"},
    {"Status", "status"},
    {"Networks", "networks"},
    {"Image", "image_name"},
    {"Flavor", "flavor_name"},
};
static const struct st_cli_column ids_cols[] = {
    {"ID", "id"},          {"Name", "name"},        {"Status", "status"}, {"Networks", "networks"},
    {"Image", "image_id"}, {"Flavor", "flavor_id"},
};
static const struct st_cli_column long_cols[] = {
    {"ID", "id"},
    {"Name", "name"},
    {"Status", "status"},
    {"Task State", "task_state"},
    {"Power State", "power_state"},
    {"Networks", "networks"},
    {"Image Name", "image_name"},
    {"Image ID", "image_id"},
    {"Flavor Name", "flavor_name"},
    {"Flavor ID", "flavor_id"},
    {"Availability Zone", "availability_zone"},
    {"Host", "host"},
    {"Properties", "properties"},
};

struct query {
    char *keys[16];
    char *values[16];
    size_t n;
};

static void query_add(struct query *q, const char *key, const char *value)
{
    if (!value || q->n == ST_ARRAY_SIZE(q->keys))
        return;
    q->keys[q->n] = st_strdup(key);
    q->values[q->n++] = st_cli_http_escape(value);
}

/* novaclient's query string: the parameters sorted by name. */
static char *query_string(struct query *q, const char *path)
{
    for (size_t i = 1; i < q->n; i++)
        for (size_t j = i; j > 0 && strcmp(q->keys[j - 1], q->keys[j]) > 0; j--) {
            char *k = q->keys[j], *v = q->values[j];
            q->keys[j] = q->keys[j - 1];
            q->values[j] = q->values[j - 1];
            q->keys[j - 1] = k;
            q->values[j - 1] = v;
        }
    char *buf = NULL;
    size_t len;
    FILE *f = open_memstream(&buf, &len);
    if (!f)
        abort();
    fputs(path, f);
    for (size_t i = 0; i < q->n; i++) {
        fprintf(f, "%c%s=%s", i ? '&' : '?', q->keys[i], q->values[i]);
        free(q->keys[i]);
        free(q->values[i]);
    }
    q->n = 0;
    fclose(f);
    return buf;
}

/* {id: name} of every image (GET /images, all pages) or flavor (GET
 * /flavors/detail?is_public=None); a failure leaves the names blank, as
 * openstack swallows it. */
static json_t *all_names(struct st_cli_ctx *ctx, bool images)
{
    json_t *names = json_object();
    st_autofree char *next = st_strdup(images ? "/images" : "/flavors/detail?is_public=None");
    for (unsigned page = 0; next && page < 10000; page++) {
        st_autoptr(json_t) doc = NULL;
        if (st_cli_service_call(ctx, images ? ST_CLI_GLANCE : ST_CLI_NOVA, "GET", next, NULL, &doc,
                                NULL) < 0)
            break;
        json_t *rows = json_object_get(doc, images ? "images" : "flavors");
        size_t i;
        json_t *row;
        json_array_foreach(rows, i, row)
            json_object_set(names, st_cli_str(row, "id"), json_object_get(row, "name"));
        free(next);
        next = NULL;
        const char *link = images ? json_string_value(json_object_get(doc, "next")) : NULL;
        if (link && json_array_size(rows) > 0)
            next = st_strdup(strncmp(link, "/v2/", 4) == 0 ? link + 3 : link);
    }
    return names;
}

/* The name of one image or flavor by ID (--name-lookup-one-by-one). */
static void one_name(struct st_cli_ctx *ctx, json_t *names, bool images, const char *id)
{
    if (!*id || json_object_get(names, id))
        return;
    st_autofree char *esc = st_cli_http_escape(id);
    st_autofree char *path = st_sprintf(images ? "/images/%s" : "/flavors/%s", esc);
    st_autoptr(json_t) doc = NULL;
    if (st_cli_service_call(ctx, images ? ST_CLI_GLANCE : ST_CLI_NOVA, "GET", path, NULL, &doc,
                            NULL) < 0)
        return;
    json_t *obj = images ? doc : json_object_get(doc, "flavor");
    json_object_set(names, id, json_object_get(obj, "name"));
}

static int run_list(struct st_cli_ctx *ctx, struct st_err **err)
{
    const struct st_cli_args *a = &ctx->args;
    long limit;
    int rc = st_cli_ctx_int_option(ctx, "limit", 0, &limit);
    if (rc)
        return rc;
    bool all_projects = st_cli_args_flag(a, "all-projects") || st_cli_env_true("ALL_PROJECTS");
    st_autofree char *project_id = NULL, *flavor_id = NULL, *image_id = NULL, *marker = NULL;
    int r;
    if (st_cli_args_get(a, "project")) {
        st_autoptr(json_t) p = NULL;
        r = st_cli_identity_find_lenient(ctx, &st_cli_identity_projects,
                                         st_cli_args_get(a, "project"),
                                         st_cli_args_get(a, "project-domain"), &p, err);
        if (r < 0)
            return r;
        project_id = st_strdup(st_cli_identity_str(p, "id"));
        all_projects = true;
    }
    if (st_cli_args_get(a, "flavor")) {
        st_autoptr(json_t) f = NULL;
        r = st_cli_find(ctx, &st_cli_kind_flavor_nova, st_cli_args_get(a, "flavor"), &f, err);
        if (r < 0)
            return r;
        flavor_id = st_strdup(st_cli_str(f, "id"));
    }
    if (st_cli_args_get(a, "image")) {
        st_autoptr(json_t) i = NULL;
        r = st_cli_find(ctx, &st_cli_kind_image, st_cli_args_get(a, "image"), &i, err);
        if (r < 0)
            return r;
        image_id = st_strdup(st_cli_str(i, "id"));
    }
    if (st_cli_args_get(a, "marker")) {
        st_autoptr(json_t) m = NULL;
        r = st_cli_find(ctx, &st_cli_kind_server, st_cli_args_get(a, "marker"), &m, err);
        if (r < 0)
            return r;
        marker = st_strdup(st_cli_str(m, "id"));
    }
    struct query q = {0};
    st_autofree char *limit_text = limit ? st_sprintf("%ld", limit) : NULL;
    query_add(&q, "all_tenants", all_projects ? "True" : NULL);
    query_add(&q, "flavor", flavor_id);
    query_add(&q, "host", st_cli_args_get(a, "host"));
    query_add(&q, "image", image_id);
    query_add(&q, "limit", limit_text);
    query_add(&q, "marker", marker);
    query_add(&q, "name", st_cli_args_get(a, "name"));
    query_add(&q, "status", st_cli_args_get(a, "status"));
    query_add(&q, "tenant_id", project_id);
    st_autofree char *path = query_string(&q, "/servers/detail");
    st_autoptr(json_t) doc = NULL;
    r = st_cli_service_call(ctx, ST_CLI_NOVA, "GET", path, NULL, &doc, err);
    if (r < 0)
        return r;
    json_t *servers = json_object_get(doc, "servers");
    if (!json_is_array(servers))
        return st_err_set(err, -EPROTO, "invalid response to GET %s: no \"servers\" list", path);

    /* image and flavor names: all at once, or one by one when a filter
     * already names the one in question */
    bool lookup = !st_cli_args_flag(a, "no-name-lookup") && json_array_size(servers) > 0;
    bool one_by_one = st_cli_args_flag(a, "name-lookup-one-by-one");
    st_autoptr(json_t) image_names = NULL;
    st_autoptr(json_t) flavor_names = NULL;
    if (lookup) {
        image_names = one_by_one || image_id ? json_object() : all_names(ctx, true);
        flavor_names = one_by_one || flavor_id ? json_object() : all_names(ctx, false);
    }
    st_autoptr(json_t) rows = json_array();
    size_t i;
    json_t *s;
    json_array_foreach(servers, i, s)
    {
        json_t *row = json_object();
        json_array_append_new(rows, row);
        json_object_set(row, "id", json_object_get(s, "id"));
        json_object_set(row, "name", json_object_get(s, "name"));
        json_object_set(row, "status", json_object_get(s, "status"));
        json_t *ts = json_object_get(s, "OS-EXT-STS:task_state");
        json_object_set_new(row, "task_state", ts ? json_incref(ts) : json_string(""));
        json_t *ps = json_object_get(s, "OS-EXT-STS:power_state");
        json_object_set_new(row, "power_state", ps ? power_state_column(ps) : json_string(""));
        st_autoptr(json_t) nets = server_networks(s);
        json_object_set_new(row, "networks", st_cli_dict_list_column(nets));
        json_t *image = json_object_get(s, "image");
        const char *iid = json_string_value(json_object_get(image, "id"));
        if (iid) {
            if (lookup && (one_by_one || image_id))
                one_name(ctx, image_names, true, iid);
            json_t *iname = image_names ? json_object_get(image_names, iid) : NULL;
            json_object_set_new(row, "image_name", iname ? json_incref(iname) : json_string(""));
            json_object_set_new(row, "image_id", json_string(iid));
        } else {
            json_object_set_new(row, "image_name", json_string(BFV_IMAGE));
            json_object_set_new(row, "image_id", json_string(BFV_IMAGE));
        }
        const char *fid = json_string_value(json_object_get(json_object_get(s, "flavor"), "id"));
        if (lookup && fid && (one_by_one || flavor_id))
            one_name(ctx, flavor_names, false, fid);
        json_t *fname = fid && flavor_names ? json_object_get(flavor_names, fid) : NULL;
        json_object_set_new(row, "flavor_name", fname ? json_incref(fname) : json_string(""));
        json_object_set_new(row, "flavor_id", json_string(fid ? fid : ""));
        json_t *az = json_object_get(s, "OS-EXT-AZ:availability_zone");
        json_object_set_new(row, "availability_zone", az ? json_incref(az) : json_string(""));
        json_t *host = json_object_get(s, "OS-EXT-SRV-ATTR:host");
        json_object_set_new(row, "host", host ? json_incref(host) : json_string(""));
        json_t *meta = json_object_get(s, "metadata");
        json_object_set_new(row, "properties", meta ? st_cli_dict_column(meta) : json_string(""));
    }
    if (st_cli_args_flag(a, "long"))
        return st_cli_ctx_list(ctx, long_cols, ST_ARRAY_SIZE(long_cols), rows, err);
    return st_cli_ctx_list(ctx, st_cli_args_flag(a, "no-name-lookup") ? ids_cols : short_cols,
                           ST_ARRAY_SIZE(short_cols), rows, err);
}

/* ---- the table ---- */

static const struct st_cli_option create_opts[] = {
    {"flavor", 0, ST_CLI_OPT_VALUE, "<flavor>", "Create server with this flavor (name or ID)", NULL,
     true, 0},
    {"image", 0, ST_CLI_OPT_VALUE, "<image>",
     "Create server boot disk from this image (name or ID)", NULL, true, 0},
    ST_CLI_APPEND("security-group", "<security-group>",
                  "Security group to assign to this server (name or ID) (repeat option to set "
                  "multiple groups)"),
    ST_CLI_VALUE("key-name", "<key-name>", "Keypair to inject into this server"),
    ST_CLI_APPEND("property", "<key=value>",
                  "Set a property on this server (repeat option to set multiple values)"),
    ST_CLI_VALUE("user-data", "<user-data>", "User data file to serve from the metadata server"),
    ST_CLI_VALUE("description", "<description>",
                 "Set description for the server (supported by --os-compute-api-version 2.19 or "
                 "above)"),
    ST_CLI_VALUE("availability-zone", "<zone-name>",
                 "Select an availability zone for the server. Host and node are optional "
                 "parameters. Availability zone in the format <zone-name>:<host-name>:<node-name>, "
                 "<zone-name>::<node-name>, <zone-name>:<host-name> or <zone-name>"),
    ST_CLI_APPEND("network", "<network>",
                  "Create a NIC on the server and connect it to network. Specify option multiple "
                  "times to create multiple NICs."),
    ST_CLI_APPEND("nic",
                  "<net-id=net-uuid,v4-fixed-ip=ip-addr,v6-fixed-ip=ip-addr,port-id=port-uuid>",
                  "Create a NIC on the server. NIC in the format: net-id=<net-uuid>: attach NIC "
                  "to network with this UUID, port-id: attach NIC to port with this UUID, "
                  "v4-fixed-ip: IPv4 fixed address for NIC (optional) (repeat option to create "
                  "multiple NICs)"),
    ST_CLI_APPEND("hint", "<key=value>", "Hints for the scheduler (group=<server group id>, ...)"),
    ST_CLI_VALUE("min", "<count>", "Minimum number of servers to launch (default=1)"),
    ST_CLI_VALUE("max", "<count>", "Maximum number of servers to launch (default=1)"),
    ST_CLI_FLAG("wait", "Wait for build to complete", 0),
    ST_CLI_OPTIONS_END,
};
static const struct st_cli_arg create_args[] = {
    {"<server-name>", "New server name", 0},
    {NULL, NULL, 0},
};

static const char *const statuses[] = {
    "ACTIVE",    "BUILD",        "DELETED",       "ERROR",         "HARD_REBOOT",
    "MIGRATING", "PASSWORD",     "PAUSED",        "REBOOT",        "REBUILD",
    "RESCUE",    "RESIZE",       "REVERT_RESIZE", "SHELVED",       "SHELVED_OFFLOADED",
    "SHUTOFF",   "SOFT_DELETED", "SUSPENDED",     "VERIFY_RESIZE", NULL,
};

enum { GROUP_LOOKUP = 1 };

static const struct st_cli_option list_opts[] = {
    ST_CLI_VALUE("name", "<name-regex>", "Regular expression to match names"),
    {"status", 0, ST_CLI_OPT_VALUE, "<status>", "Search by server status", statuses, false, 0},
    ST_CLI_VALUE("flavor", "<flavor>", "Search by flavor (name or ID)"),
    ST_CLI_VALUE("image", "<image>", "Search by image (name or ID)"),
    ST_CLI_VALUE("host", "<hostname>", "Search by hostname"),
    ST_CLI_FLAG("all-projects",
                "Include all projects (admin only) (can be specified using the ALL_PROJECTS "
                "envvar)",
                0),
    ST_CLI_VALUE("project", "<project>", "Search by project (admin only) (name or ID)"),
    ST_CLI_VALUE("project-domain", "<project-domain>",
                 "Domain the project belongs to (name or ID). This can be used in case "
                 "collisions between project names exist."),
    ST_CLI_FLAG("long", "List additional fields in output", 0),
    {"no-name-lookup", 'n', ST_CLI_OPT_FLAG, NULL,
     "Skip flavor and image name lookup. Mutually exclusive with \"--name-lookup-one-by-one\" "
     "option.",
     NULL, false, GROUP_LOOKUP},
    ST_CLI_FLAG("name-lookup-one-by-one",
                "When looking up flavor and image names, look them up one by one as needed "
                "instead of all together (default). Mutually exclusive with "
                "\"--no-name-lookup|-n\" option.",
                GROUP_LOOKUP),
    ST_CLI_VALUE("marker", "<server>",
                 "The last server of the previous page. Display list of servers after marker. "
                 "Display all servers if not specified. When used with ``--deleted``, the marker "
                 "must be an ID, otherwise a name or ID can be used."),
    ST_CLI_VALUE("limit", "<num-servers>",
                 "Maximum number of servers to display. If limit equals -1, all servers will be "
                 "displayed. If limit is greater than 'osapi_max_limit' option of Nova API, "
                 "'osapi_max_limit' will be used instead."),
    ST_CLI_OPTIONS_END,
};

static const struct st_cli_option show_opts[] = {
    ST_CLI_FLAG("diagnostics", "Display server diagnostics information", 0),
    ST_CLI_FLAG("topology",
                "Include topology information in the output (supported by "
                "--os-compute-api-version 2.78 or above)",
                0),
    ST_CLI_OPTIONS_END,
};
static const struct st_cli_arg show_args[] = {
    {"<server>", "Server (name or ID)", 0},
    {NULL, NULL, 0},
};

const struct st_cli_command st_cli_server_commands[] = {
    {"server create", "Create a new server", NULL, create_opts, create_args, SHOW, run_create},
    {"server list", "List servers", NULL, list_opts, NULL, LIST, run_list},
    {"server show", "Show server details", NULL, show_opts, show_args, SHOW, run_show},
    {NULL, NULL, NULL, NULL, NULL, 0, NULL},
};
