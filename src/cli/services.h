/* What the compute, image and network commands share: calls to Nova,
 * Glance and Neutron at their catalog URLs with the headers the real
 * clients send, and the name-or-ID lookups of the two libraries the
 * openstack CLI uses for them (spec §2.5): novaclient's (GET by ID, then
 * the list filtered by name, matched exactly, then GET by ID again, "No
 * server with a name or ID of 'x' exists.") and openstacksdk's (GET by ID,
 * then the list matched on ID or name, "No Flavor found for x"). stratosd
 * is judged by the same clients, so both must see the same requests. */
#pragma once

#include <jansson.h>
#include <stdbool.h>

#include "command.h"
#include "lib/err.h"

/* A service and the library whose manners a call follows. */
enum st_cli_service {
    ST_CLI_NOVA,     /* novaclient: X-OpenStack-Nova-API-Version: 2.1 */
    ST_CLI_NOVA_SDK, /* openstacksdk: that and OpenStack-API-Version: compute 2.1 */
    ST_CLI_GLANCE,   /* the image URL + "/v2" */
    ST_CLI_NEUTRON,  /* the network URL + "/v2.0" (unless it ends so already) */
};

/* The base URL of a service's API (versioned as above), from the catalog
 * or stratosd's own paths; the caller frees it. */
int st_cli_service_url(struct st_cli_ctx *ctx, enum st_cli_service svc, char **ret,
                       struct st_err **err);

/* One JSON call: path ("/servers/x/action") is appended to the service URL.
 * An HTTP error fails with the server's message (st_cli_http_json). */
int st_cli_service_call(struct st_cli_ctx *ctx, enum st_cli_service svc, const char *method,
                        const char *path, const json_t *body, json_t **ret, struct st_err **err);

/* As st_cli_service_call with another content type for the body (Glance's
 * "application/openstack-images-v2.1-json-patch"). */
int st_cli_service_call_as(struct st_cli_ctx *ctx, enum st_cli_service svc, const char *method,
                           const char *path, const char *content_type, const json_t *body,
                           json_t **ret, struct st_err **err);

/* A kind of resource and how the openstack CLI looks one up by name or ID. */
struct st_cli_kind {
    enum st_cli_service svc;
    const char *collection; /* "/flavors": GET <collection>/<value> */
    const char *key;        /* "flavor": its wrapper, NULL for bare objects (Glance) */
    const char *list;       /* "/flavors/detail?is_public=None": where names are matched */
    const char *list_key;   /* "flavors" */
    const char *name_field; /* "name" ("hypervisor_hostname") */
    bool name_query;        /* add name=<value> to the list call */
    bool sdk;               /* openstacksdk's manners, else novaclient's */
    bool refetch;           /* GET by ID again after a name match (novaclient) */
    const char *noun;       /* "Flavor" (SDK class name) or "server" (osc-lib) */
};

extern const struct st_cli_kind st_cli_kind_flavor;         /* SDK: flavor commands */
extern const struct st_cli_kind st_cli_kind_flavor_nova;    /* novaclient: server create */
extern const struct st_cli_kind st_cli_kind_server;         /* novaclient */
extern const struct st_cli_kind st_cli_kind_server_sdk;     /* SDK: console log */
extern const struct st_cli_kind st_cli_kind_image;          /* SDK */
extern const struct st_cli_kind st_cli_kind_keypair;        /* SDK */
extern const struct st_cli_kind st_cli_kind_hypervisor;     /* novaclient */
extern const struct st_cli_kind st_cli_kind_network;        /* SDK */
extern const struct st_cli_kind st_cli_kind_security_group; /* SDK */

/* The object (a new reference) whose ID or name is value. -ENOENT with the
 * library's message when none is, -ENOTUNIQ when several are, or the error
 * of a failed call. */
int st_cli_find(struct st_cli_ctx *ctx, const struct st_cli_kind *kind, const char *value,
                json_t **ret, struct st_err **err);
/* The same with more query parameters for the list call ("all_tenants=True"),
 * placed before the name as novaclient sorts them. */
int st_cli_find_in(struct st_cli_ctx *ctx, const struct st_cli_kind *kind, const char *value,
                   const char *query, json_t **ret, struct st_err **err);

/* The string field key of obj, or "". */
const char *st_cli_str(const json_t *obj, const char *key);

/* "<collection>/<escaped id of obj>" and a suffix, for calls on a found
 * object; the caller frees it. */
char *st_cli_object_path(const struct st_cli_kind *kind, const json_t *obj, const char *suffix);

/* --<option> key=value options into obj's fields (osc-lib's
 * KeyValueAction): -EINVAL "Expected 'key=value' type, but got: x". */
int st_cli_key_values(struct st_cli_ctx *ctx, const char *option, json_t *obj, struct st_err **err);

/* Runs fn on every positional of the command, going on after a failure
 * as openstack does: each failure is one line on stderr, "<fail_prefix>
 * '<value>': <error>" ("Failed to delete flavor with name or ID 'x': ...").
 * Returns the number of failures, for the command's summary error. */
size_t st_cli_each(struct st_cli_ctx *ctx,
                   int (*fn)(struct st_cli_ctx *, const char *, void *, struct st_err **),
                   void *data, const char *fail_prefix);

/* osc-lib's column formatters as output cells (st_cli_output_formatted): DictColumn ("a='b',
 * c='d'"), ListColumn
 * ("a, b"), ListDictColumn (one "k='v'" line per object) and
 * DictListColumn ("net=10.0.0.2, 10.0.0.3; other=..."). They take a new
 * reference to value. */
json_t *st_cli_dict_column(json_t *value);
json_t *st_cli_list_column(json_t *value);
json_t *st_cli_list_dict_column(json_t *value);
json_t *st_cli_dict_list_column(json_t *value);

/* Waits with a growing pause (100 ms doubling up to 1 s): attempt n from 0. */
void st_cli_poll_sleep(unsigned attempt);

/* The base64 of n bytes (user_data); the caller frees it. */
char *st_cli_base64(const void *data, size_t n);

/* osc-lib's boolenv: whether the environment variable holds a true word
 * ("1", "true", "yes", "on", "y", "t", any case). */
bool st_cli_env_true(const char *name);
