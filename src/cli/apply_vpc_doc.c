/* The VPC document of `stratos apply` read and checked (apply_vpc.c makes
 * it): known fields only, an IPv4 CIDR without host bits for the VPC and
 * each subnet, every subnet inside the VPC and overlapping no other, a
 * type of public or private, and the gateways that types need (a public
 * subnet is reached through floating IPs on the router's gateway; NAT goes
 * out through that gateway). Errors name the field, as "vpc.subnets[1].cidr",
 * so that a user finds the line to fix. */
#include <arpa/inet.h>
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "apply_vpc-priv.h"
#include "apply_vpc.h"
#include "lib/cleanup.h"
#include "lib/json.h"

void st_cli_vpc_clear(struct st_cli_vpc *v)
{
    json_decref(v->network);
    json_decref(v->on_network);
    json_decref(v->external);
    json_decref(v->router);
    free(v->router_name);
}
/* "a.b.c.d/n" with no host bits set; -EINVAL naming where. */
static int parse_cidr(const char *where, const char *s, uint32_t *addr, unsigned *prefix,
                      struct st_err **err)
{
    const char *slash = strchr(s, '/');
    st_autofree char *ip = slash ? st_strndup(s, (size_t)(slash - s)) : NULL;
    struct in_addr in;
    char *end = NULL;
    unsigned long n =
        slash && slash[1] >= '0' && slash[1] <= '9' ? strtoul(slash + 1, &end, 10) : 99;
    if (!ip || inet_pton(AF_INET, ip, &in) != 1 || n > 32 || *end)
        return st_err_set(err, -EINVAL, "%s: '%s' is not an IPv4 CIDR (a.b.c.d/n)", where, s);
    uint32_t a = ntohl(in.s_addr), mask = n ? ~0u << (32 - n) : 0;
    if (a & ~mask) {
        struct in_addr net = {htonl(a & mask)};
        char text[INET_ADDRSTRLEN];
        inet_ntop(AF_INET, &net, text, sizeof(text));
        return st_err_set(err, -EINVAL, "%s: %s has host bits set; the network is %s/%lu", where, s,
                          text, n);
    }
    *addr = a;
    *prefix = (unsigned)n;
    return 0;
}

static bool contains(uint32_t addr, unsigned prefix, uint32_t inner, unsigned inner_prefix)
{
    uint32_t mask = prefix ? ~0u << (32 - prefix) : 0;
    return inner_prefix >= prefix && (inner & mask) == addr;
}

static int check_fields(const json_t *obj, const char *where, const char *const *known,
                        const char *known_text, struct st_err **err)
{
    const char *key;
    json_t *v;
    json_object_foreach((json_t *)obj, key, v)
    {
        bool ok = false;
        for (const char *const *k = known; *k && !ok; k++)
            ok = strcmp(*k, key) == 0;
        if (!ok)
            return st_err_set(err, -EINVAL, "%s: unknown field '%s' (known: %s)", where, key,
                              known_text);
    }
    return 0;
}

/* A text field (NULL when absent and optional). */
static int text_field(const json_t *obj, const char *where, const char *key, bool required,
                      const char **ret, struct st_err **err)
{
    json_t *v = json_object_get(obj, key);
    *ret = json_string_value(v);
    if (!v && required)
        return st_err_set(err, -EINVAL, "%s.%s is missing", where, key);
    if (v && (!json_is_string(v) || !**ret))
        return st_err_set(err, -EINVAL, "%s.%s must be a non-empty text", where, key);
    return 0;
}

static int bool_field(const json_t *obj, const char *key, bool *ret, struct st_err **err)
{
    json_t *v = json_object_get(obj, key);
    if (v && !json_is_boolean(v))
        return st_err_set(err, -EINVAL, "vpc.%s must be true or false", key);
    *ret = json_is_true(v);
    return 0;
}

static int parse_subnet(const json_t *s, size_t i, struct st_cli_vpc *v, struct st_err **err)
{
    static const char *const known[] = {"name", "cidr", "type", "availability_zone", NULL};
    st_autofree char *where = st_sprintf("vpc.subnets[%zu]", i);
    if (!json_is_object(s))
        return st_err_set(err, -EINVAL, "%s must be a mapping", where);
    struct st_cli_vpc_subnet *sub = &v->sub[i];
    int r = check_fields(s, where, known, "name, cidr, type, availability_zone", err);
    if (r == 0)
        r = text_field(s, where, "name", true, &sub->name, err);
    if (r == 0)
        r = text_field(s, where, "cidr", true, &sub->cidr, err);
    if (r == 0)
        r = text_field(s, where, "type", true, &sub->type, err);
    if (r == 0)
        r = text_field(s, where, "availability_zone", false, &sub->zone, err);
    if (r < 0)
        return r;
    if (strcmp(sub->type, "public") != 0 && strcmp(sub->type, "private") != 0)
        return st_err_set(err, -EINVAL, "%s.type: '%s' is not a subnet type (public or private)",
                          where, sub->type);
    st_autofree char *cidr_where = st_sprintf("%s.cidr", where);
    r = parse_cidr(cidr_where, sub->cidr, &sub->addr, &sub->prefix, err);
    if (r < 0)
        return r;
    if (!contains(v->addr, v->prefix, sub->addr, sub->prefix))
        return st_err_set(err, -EINVAL, "%s: %s is not inside the VPC's %s", cidr_where, sub->cidr,
                          v->cidr);
    if (sub->prefix > 29)
        return st_err_set(err, -EINVAL,
                          "%s: %s is too small (a subnet needs a gateway and room for servers: "
                          "/29 at most)",
                          cidr_where, sub->cidr);
    for (size_t j = 0; j < i; j++) {
        if (strcmp(v->sub[j].name, sub->name) == 0)
            return st_err_set(err, -EINVAL, "%s.name: '%s' is also vpc.subnets[%zu]'s", where,
                              sub->name, j);
        if (contains(v->sub[j].addr, v->sub[j].prefix, sub->addr, sub->prefix) ||
            contains(sub->addr, sub->prefix, v->sub[j].addr, v->sub[j].prefix))
            return st_err_set(err, -EINVAL, "%s: %s overlaps vpc.subnets[%zu] (%s, %s)", cidr_where,
                              sub->cidr, j, v->sub[j].name, v->sub[j].cidr);
    }
    if (strcmp(sub->type, "public") == 0 && !v->igw)
        return st_err_set(err, -EINVAL,
                          "%s (%s) is public, which needs internet_gateway: true (public servers "
                          "are reached through floating IPs on the router's gateway)",
                          where, sub->name);
    return 0;
}

int st_cli_vpc_parse(struct st_cli_ctx *ctx, const json_t *doc, struct st_cli_vpc *v,
                     struct st_err **err)
{
    static const char *const known[] = {
        "name", "cidr", "subnets", "internet_gateway", "nat_gateway", "external_network", NULL};
    memset(v, 0, sizeof(*v));
    const json_t *spec = json_object_get(doc, "vpc");
    if (!json_is_object(spec))
        return st_err_set(err, -EINVAL, "vpc must be a mapping");
    int r =
        check_fields(spec, "vpc", known,
                     "name, cidr, subnets, internet_gateway, nat_gateway, external_network", err);
    if (r == 0)
        r = text_field(spec, "vpc", "name", false, &v->name, err);
    if (r == 0)
        r = text_field(spec, "vpc", "external_network", false, &v->external_name, err);
    if (r == 0 && !json_object_get(spec, "cidr"))
        return st_err_set(err, -EINVAL,
                          "vpc.cidr is missing (the VPC's address range, e.g. \"10.0.0.0/16\")");
    if (r == 0)
        r = text_field(spec, "vpc", "cidr", true, &v->cidr, err);
    if (r == 0)
        r = parse_cidr("vpc.cidr", v->cidr, &v->addr, &v->prefix, err);
    if (r == 0)
        r = bool_field(spec, "internet_gateway", &v->igw, err);
    if (r == 0)
        r = bool_field(spec, "nat_gateway", &v->nat, err);
    if (r < 0)
        return r;
    if (v->nat && !v->igw)
        return st_err_set(err, -EINVAL,
                          "vpc.nat_gateway needs internet_gateway: true (NAT sends the private "
                          "subnets' traffic out through the router's gateway)");
    const char *option = st_cli_args_get(&ctx->args, "name");
    if (option)
        v->name = option;
    else if (!v->name)
        v->name = json_string_value(json_object_get(json_object_get(doc, "metadata"), "name"));
    if (!v->name)
        v->name = "vpc";
    json_t *subnets = json_object_get(spec, "subnets");
    if (subnets && !json_is_array(subnets))
        return st_err_set(err, -EINVAL, "vpc.subnets must be a list");
    if (json_array_size(subnets) > ST_CLI_VPC_SUBNETS_MAX)
        return st_err_set(err, -EINVAL, "vpc.subnets: more than %d subnets",
                          ST_CLI_VPC_SUBNETS_MAX);
    size_t i;
    json_t *s;
    json_array_foreach(subnets, i, s)
    {
        r = parse_subnet(s, i, v, err);
        if (r < 0)
            return r;
        v->n_sub = i + 1;
    }
    v->router_name = st_sprintf("%s-router", v->name);
    return 0;
}

int st_cli_vpc_check(struct st_cli_ctx *ctx, const json_t *doc, struct st_err **err)
{
    struct st_cli_vpc v;
    int r = st_cli_vpc_parse(ctx, doc, &v, err);
    st_cli_vpc_clear(&v);
    return r;
}