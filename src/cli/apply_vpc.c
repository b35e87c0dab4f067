/* `stratos apply` of a VPC document, the seed's:
 *
 *   {"vpc": {"cidr": "10.0.0.0/16",
 *     "subnets": [{"name": "public-subnet", "cidr": "10.0.1.0/24", "type": "public",
 *                  "availability_zone": "us-west-2a"}, ...],
 *     "internet_gateway": true, "nat_gateway": true}}
 *
 * AWS's words mapped onto Neutron's: the VPC is a network ("name", default
 * "vpc", with the range in its description), each subnet a Neutron subnet
 * on it, the internet gateway the router "<name>-router"'s gateway on the
 * one external network, the NAT gateway that router's SNAT, and a public
 * subnet one whose servers are reached through floating IPs. Neutron has
 * no subnet availability zones, so a subnet's zone is kept in its
 * description. Everything is looked up by name first, and only what is
 * missing is created: a second apply sends no write. All reads happen
 * before the first write, so a cloud without an external network is
 * refused before anything is made. */
#include "apply_vpc.h"

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "apply_vpc-priv.h"
#include "lib/cleanup.h"
#include "lib/json.h"
#include "neutron.h"
#include "output.h"

/* ---- what the cloud has ---- */

/* The one object of the list named name (NULL when none); -ENOTUNIQ when
 * several are. */
static int find_named(struct st_cli_ctx *ctx, const struct st_cli_kind *kind, const char *noun,
                      const char *name, json_t **ret, struct st_err **err)
{
    st_autoptr(json_t) list = NULL;
    int r = st_cli_neutron_list_where(ctx, kind, "name", name, &list, err);
    if (r < 0)
        return r;
    *ret = NULL;
    size_t i;
    json_t *obj;
    json_array_foreach(list, i, obj)
    {
        if (strcmp(st_cli_str(obj, "name"), name) != 0)
            continue;
        if (*ret) {
            json_decref(*ret);
            *ret = NULL;
            return st_err_set(err, -ENOTUNIQ,
                              "more than one %s is named '%s': rename or delete all but one", noun,
                              name);
        }
        *ret = json_incref(obj);
    }
    return 0;
}

static int find_external(struct st_cli_ctx *ctx, struct st_cli_vpc *v, struct st_err **err)
{
    if (v->external_name) {
        int r = st_cli_find(ctx, &st_cli_kind_network, v->external_name, &v->external, err);
        if (r < 0)
            return st_err_prefix(err, r, "vpc.external_network");
        if (!json_is_true(json_object_get(v->external, "router:external")))
            return st_err_set(err, -EINVAL,
                              "vpc.external_network: network '%s' is not external (an admin "
                              "makes it so: openstack network set --external %s)",
                              v->external_name, v->external_name);
        return 0;
    }
    st_autoptr(json_t) list = NULL;
    int r =
        st_cli_neutron_get_list(ctx, &st_cli_kind_network, "router%3Aexternal=True", &list, err);
    if (r < 0)
        return r;
    st_autoptr(json_t) names = json_array();
    size_t i;
    json_t *net;
    json_array_foreach(list, i, net) if (json_is_true(json_object_get(net, "router:external")))
    {
        json_array_append(names, json_object_get(net, "name"));
        if (!v->external)
            v->external = json_incref(net);
    }
    if (json_array_size(names) == 0)
        return st_err_set(
            err, -ENOENT,
            "internet_gateway: true needs an external network (router:external), and there is "
            "none. An admin creates one, e.g.:\n"
            "  openstack network create --external --provider-network-type flat "
            "--provider-physical-network external public\n"
            "  openstack subnet create --network public --subnet-range 203.0.113.0/24 "
            "--no-dhcp ext-subnet");
    if (json_array_size(names) > 1) {
        st_autofree char *text = st_cli_output_cell(names);
        return st_err_set(err, -ENOTUNIQ,
                          "there are several external networks (%s): name one in "
                          "vpc.external_network",
                          text);
    }
    return 0;
}

static int read_cloud(struct st_cli_ctx *ctx, struct st_cli_vpc *v, struct st_err **err)
{
    int r = find_named(ctx, &st_cli_kind_network, "network", v->name, &v->network, err);
    if (r < 0)
        return r;
    if (v->network &&
        (r = st_cli_neutron_list_where(ctx, &st_cli_kind_subnet, "network_id",
                                       st_cli_str(v->network, "id"), &v->on_network, err)) < 0)
        return r;
    for (size_t i = 0; i < v->n_sub; i++) {
        size_t j;
        json_t *s;
        struct st_cli_vpc_subnet *sub = &v->sub[i];
        json_array_foreach(v->on_network, j, s) if (strcmp(st_cli_str(s, "name"), sub->name) == 0)
            sub->found = s;
        if (sub->found && strcmp(st_cli_str(sub->found, "cidr"), sub->cidr) != 0)
            return st_err_set(err, -EEXIST,
                              "subnet '%s' of network '%s' is %s, the document says %s (apply "
                              "never changes a subnet's range: delete the subnet first)",
                              sub->name, v->name, st_cli_str(sub->found, "cidr"), sub->cidr);
    }
    if (v->igw && (r = find_external(ctx, v, err)) < 0)
        return r;
    r = find_named(ctx, &st_cli_kind_router, "router", v->router_name, &v->router, err);
    if (r < 0 || !v->router)
        return r;
    /* its interfaces: the subnets its ports (but the gateway) are on */
    st_autoptr(json_t) ports = NULL;
    r = st_cli_neutron_router_ports(ctx, v->router, &ports, err);
    if (r < 0)
        return r;
    size_t i, j;
    json_t *port, *ip;
    json_array_foreach(ports, i, port)
    {
        json_array_foreach(json_object_get(port, "fixed_ips"), j, ip) for (size_t k = 0;
                                                                           k < v->n_sub; k++)
        {
            json_t *found = v->sub[k].found;
            if (found && strcmp(st_cli_str(ip, "subnet_id"), st_cli_str(found, "id")) == 0)
                v->sub[k].attached = true;
        }
    }
    return 0;
}

/* ---- the plan, carried out ---- */

struct run {
    struct st_cli_ctx *ctx;
    bool dry_run;
    json_t *rows;
};

static void row(struct run *run, const char *resource, const char *name, const char *action,
                const char *details)
{
    static const struct {
        const char *plan, *done;
    } words[] = {{"create", "created"}, {"exists", "unchanged"}, {"update", "updated"}};
    for (size_t i = 0; i < ST_ARRAY_SIZE(words); i++)
        if (strcmp(words[i].plan, action) == 0)
            action = run->dry_run ? words[i].plan : words[i].done;
    json_array_append_new(run->rows, json_pack("{s:s,s:s,s:s,s:s}", "Resource", resource, "Name",
                                               name, "Action", action, "Details", details));
}

/* The gateway the document asks for (NULL: none). */
static json_t *wanted_gateway(const struct st_cli_vpc *v)
{
    if (!v->igw)
        return NULL;
    return json_pack("{s:s,s:b}", "network_id", st_cli_str(v->external, "id"), "enable_snat",
                     v->nat);
}

static bool gateway_matches(const json_t *have, const json_t *want)
{
    const char *net = json_string_value(json_object_get(have, "network_id"));
    if (!want)
        return !net;
    /* Neutron's default SNAT is on */
    json_t *snat = json_object_get(have, "enable_snat");
    bool have_snat = !snat || json_is_true(snat);
    return net && strcmp(net, st_cli_str(want, "network_id")) == 0 &&
           have_snat == json_is_true(json_object_get(want, "enable_snat"));
}

static int apply_network(struct run *run, struct st_cli_vpc *v, struct st_err **err)
{
    st_autofree char *details = st_sprintf("VPC %s", v->cidr);
    row(run, "network", v->name, v->network ? "exists" : "create", details);
    if (v->network || run->dry_run)
        return 0;
    st_autofree char *description = st_sprintf("VPC %s (stratos apply)", v->cidr);
    st_autoptr(json_t) attrs = json_pack("{s:s,s:b,s:s}", "name", v->name, "admin_state_up", true,
                                         "description", description);
    return st_cli_neutron_create(run->ctx, &st_cli_kind_network, attrs, &v->network, err);
}

static int apply_subnets(struct run *run, struct st_cli_vpc *v, json_t *made, struct st_err **err)
{
    for (size_t i = 0; i < v->n_sub; i++) {
        struct st_cli_vpc_subnet *sub = &v->sub[i];
        st_autofree char *details =
            st_sprintf("%s %s%s%s", sub->cidr, sub->type, sub->zone ? ", zone " : "",
                       sub->zone ? sub->zone : "");
        row(run, "subnet", sub->name, sub->found ? "exists" : "create", details);
        if (sub->found || run->dry_run)
            continue;
        st_autofree char *description =
            sub->zone ? st_sprintf("%s subnet of VPC %s; availability zone %s", sub->type, v->name,
                                   sub->zone)
                      : st_sprintf("%s subnet of VPC %s", sub->type, v->name);
        st_autoptr(json_t) attrs = json_pack(
            "{s:s,s:s,s:s,s:i,s:s}", "name", sub->name, "network_id", st_cli_str(v->network, "id"),
            "cidr", sub->cidr, "ip_version", 4, "description", description);
        json_t *created = NULL;
        int r = st_cli_neutron_create(run->ctx, &st_cli_kind_subnet, attrs, &created, err);
        if (r < 0)
            return st_err_prefix(err, r, "creating subnet '%s'", sub->name);
        json_array_append_new(made, created);
        sub->found = created;
    }
    return 0;
}

static int apply_router(struct run *run, struct st_cli_vpc *v, struct st_err **err)
{
    st_autoptr(json_t) want = wanted_gateway(v);
    st_autofree char *details =
        want ? st_sprintf("gateway on %s, SNAT %s", st_cli_str(v->external, "name"),
                          v->nat ? "on" : "off")
             : st_strdup("no gateway");
    if (!v->router) {
        row(run, "router", v->router_name, "create", details);
        if (run->dry_run)
            return 0;
        st_autofree char *description = st_sprintf("router of VPC %s (stratos apply)", v->name);
        st_autoptr(json_t) attrs = json_pack("{s:s,s:b,s:s}", "name", v->router_name,
                                             "admin_state_up", true, "description", description);
        if (want)
            json_object_set(attrs, "external_gateway_info", want);
        return st_cli_neutron_create(run->ctx, &st_cli_kind_router, attrs, &v->router, err);
    }
    bool same = gateway_matches(json_object_get(v->router, "external_gateway_info"), want);
    row(run, "router", v->router_name, same ? "exists" : "update", details);
    if (same || run->dry_run)
        return 0;
    st_autoptr(json_t) attrs =
        json_pack("{s:o}", "external_gateway_info", want ? json_incref(want) : json_object());
    return st_cli_neutron_update(run->ctx, &st_cli_kind_router, v->router, attrs, NULL, err);
}

static int apply_interfaces(struct run *run, struct st_cli_vpc *v, struct st_err **err)
{
    for (size_t i = 0; i < v->n_sub; i++) {
        struct st_cli_vpc_subnet *sub = &v->sub[i];
        st_autofree char *name = st_sprintf("%s:%s", v->router_name, sub->name);
        json_t *gw = json_object_get(sub->found, "gateway_ip");
        st_autofree char *details = json_is_string(gw)
                                        ? st_sprintf("%s on %s", json_string_value(gw), sub->cidr)
                                        : st_sprintf("gateway of %s", sub->cidr);
        row(run, "interface", name, sub->attached ? "exists" : "create", details);
        if (sub->attached || run->dry_run)
            continue;
        int r = st_cli_neutron_router_interface(run->ctx, v->router, "add_router_interface",
                                                "subnet_id", st_cli_str(sub->found, "id"), err);
        if (r < 0)
            return st_err_prefix(err, r, "attaching subnet '%s' to router '%s'", sub->name,
                                 v->router_name);
    }
    return 0;
}

/* What the table cannot say: how the subnets reach and are reached. */
static void print_notes(struct st_cli_ctx *ctx, const struct st_cli_vpc *v)
{
    FILE *f = ctx->out;
    const char *ext = v->external ? st_cli_str(v->external, "name") : "";
    bool public_nat = false;
    for (size_t i = 0; i < v->n_sub; i++) {
        const struct st_cli_vpc_subnet *s = &v->sub[i];
        if (strcmp(s->type, "public") == 0) {
            fprintf(f,
                    "%s (public): servers there are reached from outside through floating IPs "
                    "on %s: stratos floating ip create %s, then stratos floating ip set --port "
                    "<server's port> <address>.\n",
                    s->name, ext, ext);
            public_nat = public_nat || v->nat;
        } else if (v->nat) {
            fprintf(f,
                    "%s (private): no address from outside; egress to the internet through the "
                    "router's NAT (SNAT on %s).\n",
                    s->name, ext);
        } else {
            fprintf(f,
                    "%s (private): no traffic to or from outside the VPC (nat_gateway is "
                    "false).\n",
                    s->name);
        }
    }
    if (public_nat)
        fputs("Neutron's SNAT is per router: servers of a public subnet without a floating IP "
              "also go out through the NAT.\n",
              f);
    bool zones = false;
    for (size_t i = 0; i < v->n_sub; i++)
        zones = zones || v->sub[i].zone;
    if (zones)
        fputs("Neutron subnets have no availability zone: each subnet's is kept in its "
              "description.\n",
              f);
}

int st_cli_vpc_apply(struct st_cli_ctx *ctx, const json_t *doc, bool dry_run, struct st_err **err)
{
    struct st_cli_vpc v;
    st_autoptr(json_t) rows = json_array();
    st_autoptr(json_t) made = json_array(); /* owns the subnets created here */
    struct run run = {ctx, dry_run, rows};
    int r = st_cli_vpc_parse(ctx, doc, &v, err);
    if (r == 0)
        r = read_cloud(ctx, &v, err);
    if (r == 0)
        r = apply_network(&run, &v, err);
    if (r == 0)
        r = apply_subnets(&run, &v, made, err);
    if (r == 0)
        r = apply_router(&run, &v, err);
    if (r == 0)
        r = apply_interfaces(&run, &v, err);
    if (r < 0) {
        st_cli_vpc_clear(&v);
        return st_err_prefix(err, r, "applying VPC '%s'", v.name ? v.name : "vpc");
    }
    if (dry_run)
        fprintf(ctx->out, "VPC %s (%s): the plan; --dry-run changed nothing.\n", v.name, v.cidr);
    static const struct st_cli_column cols[] = {
        {"Resource", NULL}, {"Name", NULL}, {"Action", NULL}, {"Details", NULL}};
    r = st_cli_ctx_list(ctx, cols, ST_ARRAY_SIZE(cols), rows, err);
    if (r == 0)
        print_notes(ctx, &v);
    st_cli_vpc_clear(&v);
    return r;
}
