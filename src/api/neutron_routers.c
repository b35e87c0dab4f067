/* Neutron's layer 3: routers, their interface actions (PUT
 * /routers/{id}/add_router_interface and remove_router_interface, whose
 * bodies are bare {"subnet_id"} or {"port_id"} and whose answer is the
 * interface, not the router) and floating IPs, as resource tables for the
 * generic handlers plus the two action handlers. */
#include <errno.h>
#include <string.h>

#include "api/app.h"
#include "api/http.h"
#include "api/neutron-priv.h"
#include "lib/cleanup.h"
#include "lib/json.h"

/* ---- routers ---- */

static const char *const router_create_attrs[] = {
    "name", "admin_state_up", "external_gateway_info", "description", NULL,
};
static const char *const router_update_attrs[] = {
    "name", "admin_state_up", "external_gateway_info", "routes", "description", NULL,
};

/* `router unset --external-gateway` sends {} for "no gateway". */
static void router_prepare(json_t *body, bool create)
{
    (void)create;
    json_t *gw = json_object_get(body, "external_gateway_info");
    if (json_is_object(gw) && json_object_size(gw) == 0)
        json_object_set_new(body, "external_gateway_info", json_null());
}

static void router_decorate(json_t *doc)
{
    neutron_common_fields(doc);
    neutron_default(doc, "external_gateway_info", json_null());
    if (!json_is_array(json_object_get(doc, "routes")))
        json_object_set_new(doc, "routes", json_array());
    neutron_default(doc, "availability_zone_hints", json_array());
    neutron_default(doc, "availability_zones", json_pack("[s]", "nova"));
    neutron_default(doc, "flavor_id", json_null());
    /* which node runs the namespace is the agents' business, not a tenant's */
    json_object_del(doc, "host");
}

static const struct neutron_resource router_resource = {
    .singular = "router",
    .plural = "routers",
    .param = "router_id",
    .not_found_type = "RouterNotFound",
    .noun = "Router",
    .not_found_tail = "could not be found",
    .create_attrs = router_create_attrs,
    .update_attrs = router_update_attrs,
    .create = st_router_create,
    .get = st_router_get,
    .list = st_router_list,
    .update = st_router_update,
    .del = st_router_delete,
    .prepare = router_prepare,
    .decorate = router_decorate,
};

static int router_interface(struct st_http_request *req, struct st_http_response *resp,
                            struct st_err **err, bool add)
{
    struct st_api_app *app = req->app;
    const char *id = neutron_path_id(req, resp, &router_resource);
    if (!id)
        return 0;
    struct st_network_caller who;
    neutron_caller(req, &who);
    st_autoptr(json_t) body = NULL;
    int r = neutron_body(req, NULL, &body, NULL, err);
    st_autoptr(json_t) out = NULL;
    if (r == 0)
        r = add ? st_router_add_interface(app->kv, &who, id, body, &out, err)
                : st_router_remove_interface(app->kv, &who, id, body, &out, err);
    if (r < 0)
        return neutron_fail(req, resp, r, *err, &router_resource);
    json_t *project = json_object_get(out, "project_id");
    if (project)
        neutron_default(out, "tenant_id", json_incref(project));
    st_http_resp_json(resp, 200, json_incref(out));
    return 0;
}

static int add_interface(struct st_http_request *req, struct st_http_response *resp,
                         struct st_err **err)
{
    return router_interface(req, resp, err, true);
}

static int remove_interface(struct st_http_request *req, struct st_http_response *resp,
                            struct st_err **err)
{
    return router_interface(req, resp, err, false);
}

/* ---- floating IPs ---- */

static const char *const fip_create_attrs[] = {
    "floating_network_id", "port_id",     "fixed_ip_address",
    "floating_ip_address", "description", NULL,
};
static const char *const fip_update_attrs[] = {"port_id", "fixed_ip_address", "description", NULL};

static void fip_decorate(json_t *doc)
{
    neutron_common_fields(doc);
    neutron_default(doc, "port_id", json_null());
    neutron_default(doc, "fixed_ip_address", json_null());
    neutron_default(doc, "router_id", json_null());
    neutron_default(doc, "port_details", json_null());
    neutron_default(doc, "port_forwardings", json_array());
    neutron_default(doc, "qos_policy_id", json_null());
    neutron_default(doc, "dns_domain", json_string(""));
    neutron_default(doc, "dns_name", json_string(""));
}

static const struct neutron_resource fip_resource = {
    .singular = "floatingip",
    .plural = "floatingips",
    .param = "floatingip_id",
    .not_found_type = "FloatingIPNotFound",
    .noun = "Floating IP",
    .not_found_tail = "could not be found",
    .create_attrs = fip_create_attrs,
    .update_attrs = fip_update_attrs,
    .create = st_floatingip_create,
    .get = st_floatingip_get,
    .list = st_floatingip_list,
    .update = st_floatingip_update,
    .del = st_floatingip_delete,
    .decorate = fip_decorate,
};

static const struct st_route routes[] = {
    NEUTRON_CRUD_ROUTES("routers", "router_id", "network:router", &router_resource),
    NEUTRON_UPDATE_ROUTE("routers", "router_id", "network:router", &router_resource),
    NEUTRON_ROUTE("PUT", "/routers/{router_id}/add_router_interface",
                  "network:router:add_interface", add_interface, &router_resource),
    NEUTRON_ROUTE("PUT", "/routers/{router_id}/remove_router_interface",
                  "network:router:remove_interface", remove_interface, &router_resource),
    NEUTRON_CRUD_ROUTES("floatingips", "floatingip_id", "network:floatingip", &fip_resource),
    NEUTRON_UPDATE_ROUTE("floatingips", "floatingip_id", "network:floatingip", &fip_resource),
};

int neutron_routers_register(struct st_router *r, struct st_err **err)
{
    return st_router_add_all(r, routes, ST_ARRAY_SIZE(routes), err);
}
