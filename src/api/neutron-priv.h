/* Shared by the Neutron files: neutron.c (version document, extensions,
 * quotas, registration), neutron_resource.c (the five generic handlers and
 * the edge's helpers: caller, body, filters, errors), and the resource
 * tables of neutron_networks.c, neutron_security.c and neutron_routers.c.
 *
 * Every Neutron resource has the same five calls with the same shapes
 * ({"network": N} in and out, {"networks": [N...]} for lists), so a resource
 * is a table (struct neutron_resource) that its routes carry as userdata, and
 * one set of handlers serves them all. */
#pragma once

#include <jansson.h>
#include <stdbool.h>

#include "api/errors.h"
#include "api/router.h"
#include "network/network.h"

#define NEUTRON_PREFIX "/network/v2.0"

/* A Neutron route (Neutron's error shape); res: the resource table. */
#define NEUTRON_ROUTE(m, p, a, fn, res)                                                            \
    {                                                                                              \
        .method = (m), .pattern = NEUTRON_PREFIX p, .action = (a), .family = ST_API_NEUTRON,       \
        .handler = (fn), .userdata = (void *)(res)                                                 \
    }

/* The five routes of a resource: list and create on the collection, show,
 * update and delete on "/<collection>/{<param>}". Actions are
 * "<act>:list|create|show|update|delete". No update route when the resource
 * has no update function. */
#define NEUTRON_CRUD_ROUTES(coll, param, act, res)                                                 \
    NEUTRON_ROUTE("GET", "/" coll, act ":list", neutron_list, res),                                \
        NEUTRON_ROUTE("POST", "/" coll, act ":create", neutron_create, res),                       \
        NEUTRON_ROUTE("GET", "/" coll "/{" param "}", act ":show", neutron_show, res),             \
        NEUTRON_ROUTE("DELETE", "/" coll "/{" param "}", act ":delete", neutron_delete, res)
#define NEUTRON_UPDATE_ROUTE(coll, param, act, res)                                                \
    NEUTRON_ROUTE("PUT", "/" coll "/{" param "}", act ":update", neutron_update, res)

typedef int (*neutron_create_fn)(struct st_kv *kv, const struct st_network_caller *who, json_t *req,
                                 json_t **ret, struct st_err **err);
typedef int (*neutron_get_fn)(struct st_kv *kv, const struct st_network_caller *who, const char *id,
                              json_t **ret, struct st_err **err);
typedef int (*neutron_list_fn)(struct st_kv *kv, const struct st_network_caller *who,
                               json_t *filters, json_t **ret, struct st_err **err);
typedef int (*neutron_update_fn)(struct st_kv *kv, const struct st_network_caller *who,
                                 const char *id, json_t *req, json_t **ret, struct st_err **err);
typedef int (*neutron_delete_fn)(struct st_kv *kv, const struct st_network_caller *who,
                                 const char *id, struct st_err **err);

/* An attribute only an admin may set to anything but its default (Neutron's
 * "rule:create_network:router:external"); checked with the policy action
 * "network:network:external". */
struct neutron_admin_attr {
    const char *name;
    bool default_false; /* default false (else: default null) */
};

struct neutron_resource {
    const char *singular;       /* the body key and the policy noun: "network" */
    const char *plural;         /* the list key: "networks" */
    const char *param;          /* its path parameter: "network_id" */
    const char *not_found_type; /* "NetworkNotFound" */
    /* Neutron's 404 message is "<noun> <id> <not_found_tail>":
     * "Network private could not be found." */
    const char *noun;
    const char *not_found_tail;
    /* The attributes a create / an update may carry (NULL-terminated);
     * anything else is 400 "Unrecognized attribute(s) 'x'", as Neutron's
     * attribute map answers. project_id / tenant_id are handled here. */
    const char *const *create_attrs;
    const char *const *update_attrs;
    const struct neutron_admin_attr *admin_attrs; /* ends with a NULL name; may be NULL */
    neutron_create_fn create;
    neutron_get_fn get;
    neutron_list_fn list;
    neutron_update_fn update; /* NULL: no PUT */
    neutron_delete_fn del;
    /* Rewrites a request body the way Neutron reads it before the service
     * sees it (a router's "external_gateway_info": {} means none). May be NULL. */
    void (*prepare)(json_t *body, bool create);
    /* Adds the fields Neutron always shows that the service leaves out. */
    void (*decorate)(json_t *doc);
};

/* The generic handlers (neutron_resource.c); the route's userdata is the
 * struct neutron_resource. */
int neutron_list(struct st_http_request *req, struct st_http_response *resp, struct st_err **err);
int neutron_create(struct st_http_request *req, struct st_http_response *resp, struct st_err **err);
int neutron_show(struct st_http_request *req, struct st_http_response *resp, struct st_err **err);
int neutron_update(struct st_http_request *req, struct st_http_response *resp, struct st_err **err);
int neutron_delete(struct st_http_request *req, struct st_http_response *resp, struct st_err **err);

/* The caller from the token: its project, user and whether it is a cloud
 * admin. Borrowed from the request. */
void neutron_caller(const struct st_http_request *req, struct st_network_caller *ret);

/* Parses the body as a JSON object; with key, also its object member
 * (*ret_inner borrowed from *ret_body). 400 in Neutron's words otherwise. */
int neutron_body(const struct st_http_request *req, const char *key, json_t **ret_body,
                 json_t **ret_inner, struct st_err **err);

/* The query string as the service's filters: {"key": "value"} and, for a
 * repeated key, {"key": ["a", "b"]}; "fields", the paging and sorting keys
 * are left out; boolean attributes "True"/"False" become "true"/"false". */
json_t *neutron_filters(const struct st_http_request *req);

/* Answers a failed service call with Neutron's error body: the exception
 * type (and, where Neutron's status differs from the errno table's, the
 * status) recognized from the message, else the family's default for the
 * status, with res's NotFound type for a 404. A 5xx that is not recognized
 * is returned as code, for the server to log and hide. Returns 0 when it
 * has answered. */
int neutron_fail(const struct st_http_request *req, struct st_http_response *resp, int code,
                 const struct st_err *err, const struct neutron_resource *res);

/* The path's id when it can name a resource; otherwise answers the 404 the
 * clients' name lookups expect ("Network private could not be found.") and
 * returns NULL. */
const char *neutron_path_id(const struct st_http_request *req, struct st_http_response *resp,
                            const struct neutron_resource *res);

/* For decorators: sets key to value (stolen) when doc has no such key; and
 * the fields every Neutron resource shows (tenant_id, description, tags). */
void neutron_default(json_t *doc, const char *key, json_t *value);
void neutron_common_fields(json_t *doc);

/* Each file registers its routes. */
int neutron_networks_register(struct st_router *r, struct st_err **err);
int neutron_security_register(struct st_router *r, struct st_err **err);
int neutron_routers_register(struct st_router *r, struct st_err **err);
