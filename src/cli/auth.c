/* Keystone authentication and the service catalog; see auth.h. The login
 * body and the catalog rules copy keystoneauth's, because stratosd is
 * also judged by the real openstack CLI and both clients must be served by
 * the same Keystone the same way. */
#include "auth.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "http.h"
#include "lib/json.h"
#include "prompt.h"

/* Where each service lives on stratosd when no catalog says (a token given
 * as is): the URLs stratosd's own catalog publishes, versioned or not as
 * the real clients expect them (spec §3.3): compute and identity versioned,
 * image and network unversioned (the client appends /v2 and /v2.0). */
static const struct {
    const char *type;
    const char *path;
} stratosd_paths[] = {
    {"identity", "/identity/v3"}, {"compute", "/compute/v2.1"}, {"network", "/network"},
    {"image", "/image"},          {"volumev3", "/volume/v3"},   {"block-storage", "/volume/v3"},
};

/* The service types keystoneauth treats as one (service-types-authority). */
static const char *const block_storage_aliases[] = {"block-storage", "volumev3",    "volumev2",
                                                    "volume",        "block-store", NULL};

void st_cli_auth_free(struct st_cli_auth *a)
{
    if (!a)
        return;
    free(a->token);
    free(a->auth_url);
    free(a->endpoint);
    free(a->interface);
    free(a->region);
    json_decref(a->token_data);
    json_decref(a->catalog);
    free(a);
}

static char *strip_slashes(char *s)
{
    size_t n = strlen(s);
    while (n > 0 && s[n - 1] == '/')
        s[--n] = '\0';
    return s;
}

static bool ends_with(const char *s, const char *suffix)
{
    size_t n = strlen(s), m = strlen(suffix);
    return n >= m && strcmp(s + n - m, suffix) == 0;
}

/* The "self" link of one version entry when it is v3, or NULL. */
static const char *v3_link(json_t *version)
{
    const char *id = json_string_value(json_object_get(version, "id"));
    if (!id || strncmp(id, "v3", 2) != 0)
        return NULL;
    size_t i;
    json_t *link;
    json_array_foreach(json_object_get(version, "links"), i, link)
    {
        const char *rel = json_string_value(json_object_get(link, "rel"));
        const char *href = json_string_value(json_object_get(link, "href"));
        if (rel && href && strcmp(rel, "self") == 0)
            return href;
    }
    return NULL;
}

/* The v3 self link of a version document: {"version": {...}} or
 * {"versions": {"values": [...]}}; NULL when it has none. */
static const char *v3_self_link(json_t *doc)
{
    const char *href = v3_link(json_object_get(doc, "version"));
    size_t i;
    json_t *v;
    json_array_foreach(json_object_get(json_object_get(doc, "versions"), "values"), i, v)
    {
        if (!href)
            href = v3_link(v);
    }
    return href;
}

/* The versioned Keystone URL. An auth URL ending in /v3 is used as is (no
 * discovery request, as keystoneauth when the URL names the version); any
 * other is asked for its version document. */
static char *identity_url(struct st_cli_http *http, const char *auth_url)
{
    char *url = strip_slashes(st_strdup(auth_url));
    if (ends_with(url, "/v3"))
        return url;
    struct st_cli_http_response resp = {0};
    if (st_cli_http_request(http, "GET", url, NULL, NULL, 0, &resp, NULL) == 0) {
        st_autoptr(json_t) doc = NULL;
        if (resp.status < 400 && st_json_parse(resp.body, resp.body_len, &doc, NULL) == 0) {
            const char *href = v3_self_link(doc);
            if (href) {
                free(url);
                url = strip_slashes(st_strdup(href));
            }
        }
        st_cli_http_response_clear(&resp);
    }
    return url;
}

static struct st_cli_auth *auth_new(const struct st_cli_config *cfg, struct st_cli_http *http)
{
    struct st_cli_auth *a = st_new0(struct st_cli_auth, 1);
    a->endpoint = strip_slashes(st_strdup(st_cli_http_base_url(http)));
    if (cfg->auth_url && *cfg->auth_url)
        a->auth_url = identity_url(http, cfg->auth_url);
    else
        a->auth_url = st_sprintf("%s/identity/v3", a->endpoint);
    a->interface = st_strdup(cfg->interface && *cfg->interface ? cfg->interface : "public");
    a->region = cfg->region_name && *cfg->region_name ? st_strdup(cfg->region_name) : NULL;
    return a;
}

static json_t *domain_ref(const char *id, const char *name, const char *default_id)
{
    if (id && *id)
        return json_pack("{s:s}", "id", id);
    if (name && *name)
        return json_pack("{s:s}", "name", name);
    return json_pack("{s:s}", "id", default_id);
}

json_t *st_cli_auth_password_body(const struct st_cli_config *cfg)
{
    const char *default_domain =
        cfg->default_domain && *cfg->default_domain ? cfg->default_domain : "default";
    json_t *user = json_pack("{s:s}", "password", cfg->password ? cfg->password : "");
    if (cfg->user_id && *cfg->user_id) {
        json_object_set_new(user, "id", json_string(cfg->user_id));
    } else {
        json_object_set_new(user, "name", json_string(cfg->username ? cfg->username : ""));
        json_object_set_new(user, "domain",
                            domain_ref(cfg->user_domain_id, cfg->user_domain_name, default_domain));
    }
    json_t *auth = json_pack("{s:{s:[s],s:{s:o}}}", "identity", "methods", "password", "password",
                             "user", user);
    if (cfg->project_id && *cfg->project_id) {
        json_object_set_new(auth, "scope",
                            json_pack("{s:{s:s}}", "project", "id", cfg->project_id));
    } else if (cfg->project_name && *cfg->project_name) {
        json_t *domain =
            domain_ref(cfg->project_domain_id, cfg->project_domain_name, default_domain);
        json_object_set_new(
            auth, "scope",
            json_pack("{s:{s:s,s:o}}", "project", "name", cfg->project_name, "domain", domain));
    }
    json_t *body = json_pack("{s:o}", "auth", auth);
    if (!body)
        abort();
    return body;
}

int st_cli_auth_login(const struct st_cli_config *cfg, struct st_cli_http *http,
                      struct st_cli_auth **ret, struct st_err **err)
{
    st_autoptr(st_cli_auth) a = auth_new(cfg, http);
    st_autofree char *password = NULL;
    if (!cfg->password) {
        /* osc-lib asks on a terminal; a script gets told what is missing */
        int r = st_cli_prompt_password("Password: ", false, &password, NULL);
        if (r < 0 || !*password)
            return st_err_set(err, -EACCES,
                              "No password entered, or found via --os-password or OS_PASSWORD");
    }
    struct st_cli_config with_password = *cfg;
    if (password)
        with_password.password = password;
    st_autoptr(json_t) body = st_cli_auth_password_body(&with_password);
    st_autofree char *text = st_json_dumps(body);
    st_autofree char *url = st_sprintf("%s/auth/tokens", a->auth_url);

    struct st_cli_http_response resp = {0};
    int r =
        st_cli_http_request(http, "POST", url, "application/json", text, strlen(text), &resp, err);
    if (r < 0)
        return r;
    if (resp.status < 200 || resp.status >= 300) {
        st_autofree char *msg =
            st_cli_http_error_message(resp.status, resp.reason, resp.body, resp.body_len,
                                      st_cli_http_response_request_id(&resp));
        r = st_err_set(err, st_cli_http_errno(resp.status), "%s", msg);
        st_cli_http_response_clear(&resp);
        return r;
    }
    const char *subject = st_cli_http_response_header(&resp, "X-Subject-Token");
    st_autoptr(json_t) doc = NULL;
    if (!subject || !*subject) {
        r = st_err_set(err, -EPROTO, "invalid response to POST %s: no X-Subject-Token header", url);
    } else if (st_json_parse(resp.body, resp.body_len, &doc, NULL) < 0 ||
               !json_is_object(json_object_get(doc, "token"))) {
        r = st_err_set(err, -EPROTO, "invalid response to POST %s: no token object in the body",
                       url);
    } else {
        a->token = st_strdup(subject);
        a->token_data = json_incref(json_object_get(doc, "token"));
        a->catalog = json_incref(json_object_get(a->token_data, "catalog"));
    }
    st_cli_http_response_clear(&resp);
    if (r < 0)
        return r;
    st_cli_http_set_token(http, a->token);
    *ret = st_steal(&a);
    return 0;
}

int st_cli_auth_from_token(const struct st_cli_config *cfg, struct st_cli_http *http,
                           struct st_cli_auth **ret, struct st_err **err)
{
    (void)err;
    struct st_cli_auth *a = auth_new(cfg, http);
    a->token = st_strdup(cfg->token);
    st_cli_http_set_token(http, a->token);
    *ret = a;
    return 0;
}

int st_cli_auth_token_data(struct st_cli_auth *a, struct st_cli_http *http, json_t **ret,
                           struct st_err **err)
{
    if (!a->token_data) {
        st_autofree char *url = NULL;
        int r = st_cli_auth_service_url(a, "identity", &url, err);
        if (r < 0)
            return r;
        st_autofree char *path = st_sprintf("%s/auth/tokens", url);
        st_autofree char *subject = st_sprintf("X-Subject-Token: %s", a->token);
        const char *headers[] = {subject, NULL};
        st_autoptr(json_t) doc = NULL;
        r = st_cli_http_json_with(http, "GET", path, headers, NULL, &doc, err);
        if (r < 0)
            return r;
        json_t *t = json_object_get(doc, "token");
        if (!json_is_object(t))
            return st_err_set(err, -EPROTO, "invalid response to GET %s: no token object", path);
        a->token_data = json_incref(t);
    }
    *ret = a->token_data;
    return 0;
}

static bool type_matches(const char *wanted, const char *type)
{
    if (strcmp(wanted, type) == 0)
        return true;
    bool w = false, t = false;
    for (const char *const *p = block_storage_aliases; *p; p++) {
        w = w || strcmp(*p, wanted) == 0;
        t = t || strcmp(*p, type) == 0;
    }
    return w && t;
}

static bool region_matches(const char *wanted, json_t *endpoint)
{
    if (!wanted)
        return true;
    const char *id = json_string_value(json_object_get(endpoint, "region_id"));
    const char *name = json_string_value(json_object_get(endpoint, "region"));
    return (id && strcmp(id, wanted) == 0) || (name && strcmp(name, wanted) == 0);
}

/* The endpoint URL of the first entry of the given type (exact type first,
 * then an alias), or NULL. */
static const char *catalog_url(json_t *catalog, const char *type, const char *interface,
                               const char *region)
{
    for (int pass = 0; pass < 2; pass++) {
        size_t i, j;
        json_t *svc, *ep;
        json_array_foreach(catalog, i, svc)
        {
            const char *t = json_string_value(json_object_get(svc, "type"));
            if (!t || (pass == 0 ? strcmp(t, type) != 0 : !type_matches(type, t)))
                continue;
            json_array_foreach(json_object_get(svc, "endpoints"), j, ep)
            {
                const char *itf = json_string_value(json_object_get(ep, "interface"));
                const char *url = json_string_value(json_object_get(ep, "url"));
                if (itf && url && strcmp(itf, interface) == 0 && region_matches(region, ep))
                    return url;
            }
        }
    }
    return NULL;
}

int st_cli_auth_service_url(const struct st_cli_auth *a, const char *type, char **ret,
                            struct st_err **err)
{
    json_t *catalog = a->catalog;
    if (catalog) {
        if (!json_is_array(catalog) || json_array_size(catalog) == 0)
            return st_err_set(err, -ENOENT, "The service catalog is empty.");
        const char *url = catalog_url(catalog, type, a->interface, a->region);
        if (!url) {
            if (a->region)
                return st_err_set(err, -ENOENT, "%s endpoint for %s service in %s region not found",
                                  a->interface, type, a->region);
            return st_err_set(err, -ENOENT, "%s endpoint for %s service not found", a->interface,
                              type);
        }
        *ret = strip_slashes(st_strdup(url));
        return 0;
    }
    if (strcmp(type, "identity") == 0) {
        *ret = st_strdup(a->auth_url);
        return 0;
    }
    for (size_t i = 0; i < ST_ARRAY_SIZE(stratosd_paths); i++)
        if (type_matches(type, stratosd_paths[i].type)) {
            *ret = st_sprintf("%s%s", a->endpoint, stratosd_paths[i].path);
            return 0;
        }
    return st_err_set(err, -ENOENT, "%s endpoint for %s service not found", a->interface, type);
}
