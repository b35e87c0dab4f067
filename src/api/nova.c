/* Nova's front door: the version documents the SDK reads before its first
 * compute call, microversion negotiation (stratos serves 2.1 only, the
 * formats the spec's §4 describes; the SDK then sends 2.1 for everything),
 * the links every Nova body carries, and the registration of the Nova route
 * families. */
#include "nova.h"

#include <ctype.h>
#include <errno.h>
#include <string.h>
#include <strings.h>

#include "api/app.h"
#include "api/nova-priv.h"
#include "api/router.h"
#include "api/stratos_policies.h"
#include "lib/cleanup.h"

#define NOVA_VERSION_ID      "v2.1"
#define NOVA_MICROVERSION    "2.1"
#define NOVA_VERSION_UPDATED "2013-07-23T11:33:21Z"

json_t *nova_links(const struct st_api_app *app, const char *collection, const char *id)
{
    st_autofree char *self = st_sprintf("%s%s/%s/%s", app->public_url, NOVA_PREFIX, collection, id);
    st_autofree char *bookmark = st_sprintf("%s/compute/%s/%s", app->public_url, collection, id);
    return json_pack("[{s:s, s:s}, {s:s, s:s}]", "rel", "self", "href", self, "rel", "bookmark",
                     "href", bookmark);
}

static json_t *version_doc(const struct st_api_app *app)
{
    st_autofree char *self = st_sprintf("%s%s/", app->public_url, NOVA_PREFIX);
    return json_pack("{s:s, s:s, s:s, s:s, s:s, s:[{s:s, s:s}], s:[{s:s, s:s}]}", "id",
                     NOVA_VERSION_ID, "status", "CURRENT", "version", NOVA_MICROVERSION,
                     "min_version", NOVA_MICROVERSION, "updated", NOVA_VERSION_UPDATED, "links",
                     "rel", "self", "href", self, "media-types", "base", "application/json", "type",
                     "application/vnd.openstack.compute+json;version=2.1");
}

static void echo_headers(struct st_http_response *resp)
{
    st_http_resp_header(resp, "OpenStack-API-Version", "compute " NOVA_MICROVERSION);
    st_http_resp_header(resp, "X-OpenStack-Nova-API-Version", NOVA_MICROVERSION);
    st_http_resp_header(resp, "Vary", "OpenStack-API-Version, X-OpenStack-Nova-API-Version");
}

/* The compute entry of "OpenStack-API-Version: compute 2.1[, volume 3.0]",
 * copied into buf; false when there is none. */
static bool compute_entry(const char *header, char *buf, size_t len)
{
    const char *p = header;
    while (*p) {
        while (*p == ' ' || *p == ',')
            p++;
        const char *end = strchr(p, ',');
        size_t n = end ? (size_t)(end - p) : strlen(p);
        if (n > 8 && strncasecmp(p, "compute", 7) == 0 && p[7] == ' ') {
            const char *v = p + 8;
            size_t vn = n - 8;
            while (vn && *v == ' ')
                v++, vn--;
            while (vn && v[vn - 1] == ' ')
                vn--;
            if (vn >= len)
                vn = len - 1;
            memcpy(buf, v, vn);
            buf[vn] = '\0';
            return true;
        }
        p += n;
    }
    return false;
}

/* "X.Y" with X and Y decimal, no sign, no leading junk. */
static bool parse_version(const char *v, unsigned *ret_major, unsigned *ret_minor)
{
    unsigned major = 0, minor = 0;
    const char *p = v;
    if (!isdigit((unsigned char)*p))
        return false;
    for (; isdigit((unsigned char)*p); p++)
        if ((major = major * 10 + (unsigned)(*p - '0')) > 1000)
            return false;
    if (*p++ != '.' || !isdigit((unsigned char)*p))
        return false;
    for (; isdigit((unsigned char)*p); p++)
        if ((minor = minor * 10 + (unsigned)(*p - '0')) > 1000)
            return false;
    if (*p)
        return false;
    *ret_major = major;
    *ret_minor = minor;
    return true;
}

int nova_microversion(struct st_http_request *req, struct st_http_response *resp,
                      struct st_err **err)
{
    echo_headers(resp);
    char buf[64] = "";
    const char *v = NULL;
    const char *h = st_http_header(req, "OpenStack-API-Version");
    if (h && compute_entry(h, buf, sizeof(buf)))
        v = buf; /* the newer header wins, as in Nova */
    else
        v = st_http_header(req, "X-OpenStack-Nova-API-Version");
    if (!v || !v[0] || strcasecmp(v, "latest") == 0)
        return 0;
    unsigned major, minor;
    if (!parse_version(v, &major, &minor))
        return st_err_set(err, -EINVAL,
                          "Version %.32s is not a valid API version request: it "
                          "must be of the form X.Y or 'latest'.",
                          v);
    if (major == 2 && minor == 1)
        return 0;
    st_http_resp_error(req, resp, 406, "computeFault",
                       "Version %u.%u is not supported by the API. Minimum is %s and maximum "
                       "is %s.",
                       major, minor, NOVA_MICROVERSION, NOVA_MICROVERSION);
    return 1;
}

static int get_version(struct st_http_request *req, struct st_http_response *resp,
                       struct st_err **err)
{
    (void)err;
    echo_headers(resp);
    st_http_resp_json(resp, 200, json_pack("{s:o}", "version", version_doc(req->app)));
    return 0;
}

static int get_versions(struct st_http_request *req, struct st_http_response *resp,
                        struct st_err **err)
{
    (void)err;
    st_http_resp_json(resp, 200, json_pack("{s:[o]}", "versions", version_doc(req->app)));
    return 0;
}

static const struct st_route version_routes[] = {
    {.method = "GET",
     .pattern = "/compute",
     .action = "compute:version:list",
     .family = ST_API_NOVA,
     .flags = ST_ROUTE_PUBLIC,
     .handler = get_versions},
    NOVA_ROUTE("GET", "", "compute:version:show", ST_ROUTE_PUBLIC, get_version),
};

int st_api_nova_register(struct st_router *r, struct st_api_app *app, struct st_err **err)
{
    st_api_app_add_service(app, "compute", "nova", NOVA_PREFIX);
    int ret = st_router_add_all(r, version_routes, ST_ARRAY_SIZE(version_routes), err);
    if (ret < 0 || (ret = nova_flavors_register(r, err)) < 0 ||
        (ret = nova_keypairs_register(r, err)) < 0 || (ret = nova_hosts_register(r, err)) < 0 ||
        (ret = nova_server_groups_register(r, err)) < 0)
        return ret;
    /* Resource policies are compute's, though not Nova's: they ride along. */
    if ((ret = stratos_policies_register(r, err)) < 0)
        return ret;
    return nova_servers_register(r, err);
}
