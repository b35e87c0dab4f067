/* Neutron v2.0 at /network/v2.0: networks, subnets, ports, security groups
 * and their rules, routers (with their interface actions) and floating IPs
 * over the network service (network/network.h), plus the version document,
 * the extension list and the quota set the clients ask for, in the shapes of
 * ../shared/specs/openstack-api-subset.md §5 and §8. */
#pragma once

#include "lib/err.h"

struct st_router;
struct st_api_app;

/* Registers the routes and the catalog entry ("network", "neutron", "/network":
 * the SDK appends /v2.0 itself). */
int st_api_neutron_register(struct st_router *r, struct st_api_app *app, struct st_err **err);
