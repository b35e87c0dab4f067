/* The "vpc" document of `stratos apply`: an AWS-style VPC (an address
 * range, public and private subnets, an internet gateway, a NAT gateway)
 * made of Neutron resources through the network API, idempotently. */
#pragma once

#include <jansson.h>
#include <stdbool.h>

#include "command.h"
#include "lib/err.h"

/* Checks the document ({"vpc": {...}}) without a request: -EINVAL with
 * the field at fault ("vpc.subnets[0].cidr: 10.1.1.0/24 is not inside the
 * VPC's 10.0.0.0/16"). */
int st_cli_vpc_check(struct st_cli_ctx *ctx, const json_t *doc, struct st_err **err);

/* Makes the cloud match the document: looks up what exists (by name),
 * creates only what is missing, fixes the router's gateway, and prints a
 * table of what it did (or, with dry_run, of what it would do, sending no
 * write) followed by what the user should know (floating IPs for public
 * subnets, NAT for private ones, where the availability zones went). */
int st_cli_vpc_apply(struct st_cli_ctx *ctx, const json_t *doc, bool dry_run, struct st_err **err);
