/* The stratos-native API for resource policies (compute/resource_policy.h):
 * /stratos/v1/resource-policies, project-scoped, JSON or YAML bodies. */
#pragma once

#include "lib/err.h"

struct st_router;

int stratos_policies_register(struct st_router *r, struct st_err **err);
