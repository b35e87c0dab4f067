/* What the two halves of the VPC document's apply share: the document read
 * into a struct st_cli_vpc (apply_vpc_doc.c), and what apply_vpc.c found
 * of it in the cloud. */
#pragma once

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "command.h"
#include "lib/err.h"

#define ST_CLI_VPC_SUBNETS_MAX 64

struct st_cli_vpc_subnet {
    const char *name, *cidr, *type, *zone;
    uint32_t addr;
    unsigned prefix;
    /* the Neutron subnet (borrowed from on_network, or from the subnets
     * apply_vpc.c created) */
    json_t *found;
    bool attached; /* has an interface on the router */
};

struct st_cli_vpc {
    const char *name, *cidr, *external_name;
    uint32_t addr;
    unsigned prefix;
    bool igw, nat;
    struct st_cli_vpc_subnet sub[ST_CLI_VPC_SUBNETS_MAX];
    size_t n_sub;
    /* what the cloud has (new references, or NULL) */
    json_t *network, *on_network, *external, *router;
    char *router_name; /* "<name>-router" */
};

/* The document ({"vpc": {...}}) into v (fields borrowed from doc; the
 * name: --name, else vpc.name, else metadata.name, else "vpc"); -EINVAL
 * naming the field at fault. v is cleared first, and is to be cleared
 * with st_cli_vpc_clear either way. */
int st_cli_vpc_parse(struct st_cli_ctx *ctx, const json_t *doc, struct st_cli_vpc *v,
                     struct st_err **err);
void st_cli_vpc_clear(struct st_cli_vpc *v);
