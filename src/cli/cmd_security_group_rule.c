/* Neutron security group rules: the openstack CLI's `security group rule
 * create|list|show|delete` (openstackclient network/v2/
 * security_group_rule.py over openstacksdk), with its defaults (ingress;
 * any protocol; IPv4 unless the protocol is an IPv6 one; from anywhere
 * unless --remote-ip or --remote-group), its checks of --dst-port against
 * the ICMP options, and its "Port Range" and "IP Range" list columns. */
#include "cmd_security_group_rule.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "lib/cleanup.h"
#include "lib/json.h"
#include "neutron.h"

enum { GROUP_REMOTE = 1, GROUP_DIRECTION };

static const struct st_cli_nfield rule_fields[] = {
    {"created_at", "created_at", ST_CLI_NFMT_NONE},
    {"description", "description", ST_CLI_NFMT_NONE},
    {"direction", "direction", ST_CLI_NFMT_NONE},
    {"ether_type", "ethertype", ST_CLI_NFMT_NONE},
    {"id", "id", ST_CLI_NFMT_NONE},
    {"name", "name", ST_CLI_NFMT_NONE},
    {"port_range_max", "port_range_max", ST_CLI_NFMT_NONE},
    {"port_range_min", "port_range_min", ST_CLI_NFMT_NONE},
    {"project_id", "project_id", ST_CLI_NFMT_NONE},
    {"protocol", "protocol", ST_CLI_NFMT_NONE},
    {"remote_address_group_id", "remote_address_group_id", ST_CLI_NFMT_NONE},
    {"remote_group_id", "remote_group_id", ST_CLI_NFMT_NONE},
    {"remote_ip_prefix", "remote_ip_prefix", ST_CLI_NFMT_NONE},
    {"revision_number", "revision_number", ST_CLI_NFMT_NONE},
    {"security_group_id", "security_group_id", ST_CLI_NFMT_NONE},
    {"tags", "tags", ST_CLI_NFMT_NONE},
    {"updated_at", "updated_at", ST_CLI_NFMT_NONE},
    {NULL, NULL, 0},
};

/* The last column only when no group was named. */
static const struct st_cli_nfield list_fields[] = {
    {"ID", "id", ST_CLI_NFMT_NONE},
    {"IP Protocol", "protocol", ST_CLI_NFMT_NONE},
    {"Ethertype", "ethertype", ST_CLI_NFMT_NONE},
    {"IP Range", "remote_ip_prefix", ST_CLI_NFMT_NONE},
    {"Port Range", "port_range", ST_CLI_NFMT_NONE},
    {"Direction", "direction", ST_CLI_NFMT_NONE},
    {"Remote Security Group", "remote_group_id", ST_CLI_NFMT_NONE},
    {"Remote Address Group", "remote_address_group_id", ST_CLI_NFMT_NONE},
    {"Security Group", "security_group_id", ST_CLI_NFMT_NONE},
};

static bool is_icmp(const char *protocol)
{
    static const char *const icmp[] = {"icmp", "icmpv6", "ipv6-icmp", "1", "58"};
    for (size_t i = 0; protocol && i < ST_ARRAY_SIZE(icmp); i++)
        if (strcmp(protocol, icmp[i]) == 0)
            return true;
    return false;
}

static bool is_ipv6_protocol(const char *protocol)
{
    static const char *const v6[] = {"icmpv6", "41", "43", "44", "58", "59", "60"};
    if (!protocol)
        return false;
    if (strncmp(protocol, "ipv6-", 5) == 0)
        return true;
    for (size_t i = 0; i < ST_ARRAY_SIZE(v6); i++)
        if (strcmp(protocol, v6[i]) == 0)
            return true;
    return false;
}

/* A rule's remote_ip_prefix, "0.0.0.0/0" or "::/0" when it has none. */
static void default_remote(json_t *rule)
{
    if (st_cli_neutron_truthy(json_object_get(rule, "remote_ip_prefix")))
        return;
    const char *ethertype = st_cli_str(rule, "ethertype");
    if (strcmp(ethertype, "IPv4") == 0)
        json_object_set_new(rule, "remote_ip_prefix", json_string("0.0.0.0/0"));
    else if (strcmp(ethertype, "IPv6") == 0)
        json_object_set_new(rule, "remote_ip_prefix", json_string("::/0"));
    else
        json_object_set_new(rule, "remote_ip_prefix", json_null());
}

/* _format_network_port_range: "type=8:code=0" for ICMP, "80:80", or "". */
static char *port_range(const json_t *rule)
{
    json_t *min = json_object_get(rule, "port_range_min");
    json_t *max = json_object_get(rule, "port_range_max");
    st_autofree char *lo = json_is_integer(min) ? st_cli_output_cell(min) : st_strdup("None");
    st_autofree char *hi = json_is_integer(max) ? st_cli_output_cell(max) : st_strdup("None");
    if (is_icmp(json_string_value(json_object_get(rule, "protocol"))))
        return st_sprintf("%s%s%s%s", st_cli_neutron_truthy(min) ? "type=" : "",
                          st_cli_neutron_truthy(min) ? lo : "",
                          st_cli_neutron_truthy(max) ? ":code=" : "",
                          st_cli_neutron_truthy(max) ? hi : "");
    if (!st_cli_neutron_truthy(min) && !st_cli_neutron_truthy(max))
        return st_strdup("");
    return st_sprintf("%s:%s", json_is_null(min) || !min ? hi : lo,
                      json_is_null(max) || !max ? lo : hi);
}

/* argparse's type=int for the ICMP options: *present tells if given. */
static int icmp_option(struct st_cli_ctx *ctx, const char *name, long *ret, bool *present)
{
    *present = st_cli_args_get(&ctx->args, name) != NULL;
    return st_cli_ctx_int_option(ctx, name, -1, ret);
}

/* osc-lib's RangeAction: "N" or "N:M" with N <= M. */
static int dst_port(struct st_cli_ctx *ctx, long *lo, long *hi)
{
    const char *v = st_cli_args_get(&ctx->args, "dst-port");
    char *end = NULL;
    *lo = strtol(v, &end, 10);
    *hi = *lo;
    if (end != v && *end == ':') {
        const char *second = end + 1;
        *hi = strtol(second, &end, 10);
        if (end == second)
            end = (char *)v;
    }
    if (end == v || *end)
        return st_cli_ctx_usage_error(ctx, "argument --dst-port: invalid port range: '%s'", v);
    if (*lo > *hi)
        return st_cli_ctx_usage_error(
            ctx, "argument --dst-port: Invalid range, %ld is not less than %ld", *lo, *hi);
    return 0;
}

static int run_create(struct st_cli_ctx *ctx, struct st_err **err)
{
    const struct st_cli_args *a = &ctx->args;
    long type = -1, code = -1, lo = 0, hi = 0;
    bool has_type, has_code, has_ports = st_cli_args_get(a, "dst-port") != NULL;
    int rc;
    if ((rc = icmp_option(ctx, "icmp-type", &type, &has_type)) != 0 ||
        (rc = icmp_option(ctx, "icmp-code", &code, &has_code)) != 0 ||
        (has_ports && (rc = dst_port(ctx, &lo, &hi)) != 0))
        return rc;
    const char *ethertype_opt = st_cli_args_get(a, "ethertype");
    const char *ethertype = NULL;
    if (ethertype_opt) {
        ethertype = strcasecmp(ethertype_opt, "ipv4") == 0   ? "IPv4"
                    : strcasecmp(ethertype_opt, "ipv6") == 0 ? "IPv6"
                                                             : NULL;
        if (!ethertype)
            return st_cli_ctx_usage_error(ctx,
                                          "argument --ethertype: invalid choice: '%s' (choose "
                                          "from 'IPv4', 'IPv6')",
                                          ethertype_opt);
    }
    st_autofree char *group_id = NULL;
    int r = st_cli_neutron_find_id(ctx, &st_cli_kind_security_group, a->pos[0], &group_id, err);
    if (r < 0)
        return st_cli_neutron_sdk_error(err, r);

    /* the protocol in lower case; "any" (the default) is null */
    st_autofree char *protocol = st_cli_neutron_lower(st_cli_args_get(a, "protocol"));
    if (protocol && strcmp(protocol, "any") == 0) {
        free(protocol);
        protocol = NULL;
    }
    st_autoptr(json_t) attrs =
        json_pack("{s:o}", "protocol", protocol ? json_string(protocol) : json_null());
    st_cli_neutron_string_option(ctx, attrs, "description", "description");
    bool egress = st_cli_args_flag(a, "egress");
    json_object_set_new(attrs, "direction", json_string(egress ? "egress" : "ingress"));
    if (!ethertype)
        ethertype = is_ipv6_protocol(protocol) ? "IPv6" : "IPv4";
    json_object_set_new(attrs, "ethertype", json_string(ethertype));

    bool icmp = is_icmp(protocol);
    /* Python's truth: an ICMP type or code of 0 counts as not given here */
    bool type_or_code = (has_type && type != 0) || (has_code && code != 0);
    if (has_ports && type_or_code)
        return st_err_set(err, -EINVAL,
                          "Argument --dst-port not allowed with arguments --icmp-type and "
                          "--icmp-code");
    if (!has_type && has_code)
        return st_err_set(err, -EINVAL, "Argument --icmp-type required with argument --icmp-code");
    if (!icmp && type_or_code)
        return st_err_set(err, -EINVAL,
                          "ICMP IP protocol required with arguments --icmp-type and --icmp-code");
    /* a port range with an ICMP protocol is ignored, as openstack does */
    if (has_ports && !icmp) {
        json_object_set_new(attrs, "port_range_min", json_integer(lo));
        json_object_set_new(attrs, "port_range_max", json_integer(hi));
    }
    if (has_type && type >= 0)
        json_object_set_new(attrs, "port_range_min", json_integer(type));
    if (has_code && code >= 0)
        json_object_set_new(attrs, "port_range_max", json_integer(code));

    if (st_cli_args_get(a, "remote-group")) {
        st_autofree char *remote = NULL;
        r = st_cli_neutron_find_id(ctx, &st_cli_kind_security_group,
                                   st_cli_args_get(a, "remote-group"), &remote, err);
        if (r < 0)
            return st_cli_neutron_sdk_error(err, r);
        json_object_set_new(attrs, "remote_group_id", json_string(remote));
    } else if (st_cli_args_get(a, "remote-ip")) {
        st_cli_neutron_string_option(ctx, attrs, "remote_ip_prefix", "remote-ip");
    } else {
        json_object_set_new(attrs, "remote_ip_prefix",
                            json_string(strcmp(ethertype, "IPv4") == 0 ? "0.0.0.0/0" : "::/0"));
    }
    json_object_set_new(attrs, "security_group_id", json_string(group_id));
    if ((r = st_cli_neutron_project_attr(ctx, attrs, err)) < 0)
        return r;
    return st_cli_neutron_create_show(ctx, &st_cli_kind_security_group_rule, attrs, rule_fields,
                                      ST_CLI_NEUTRON_SDK_ERRORS, err);
}

static int run_list(struct st_cli_ctx *ctx, struct st_err **err)
{
    const struct st_cli_args *a = &ctx->args;
    if (st_cli_args_flag(a, "long"))
        fputs("The --long option has been deprecated and is no longer needed\n", ctx->err);
    struct st_cli_neutron_query q = {0};
    int r = 0;
    if (a->n_pos > 0) {
        st_autofree char *group_id = NULL;
        r = st_cli_neutron_find_id(ctx, &st_cli_kind_security_group, a->pos[0], &group_id, err);
        if (r < 0)
            return r;
        st_cli_neutron_query_add(&q, "security_group_id", group_id);
    }
    if (st_cli_args_flag(a, "ingress"))
        st_cli_neutron_query_add(&q, "direction", "ingress");
    if (st_cli_args_flag(a, "egress"))
        st_cli_neutron_query_add(&q, "direction", "egress");
    st_autofree char *protocol = st_cli_neutron_lower(st_cli_args_get(a, "protocol"));
    if (protocol)
        st_cli_neutron_query_add(&q, "protocol", protocol);
    st_autoptr(json_t) rules = NULL;
    r = st_cli_neutron_get_list(ctx, &st_cli_kind_security_group_rule, q.text, &rules, err);
    st_cli_neutron_query_clear(&q);
    if (r < 0)
        return r;
    st_autoptr(json_t) shown = json_array();
    size_t i;
    json_t *rule;
    json_array_foreach(rules, i, rule)
    {
        json_t *copy = json_copy(rule);
        st_autofree char *range = port_range(rule);
        json_object_set_new(copy, "port_range", json_string(range));
        default_remote(copy);
        json_array_append_new(shown, copy);
    }
    size_t n = ST_ARRAY_SIZE(list_fields) - (a->n_pos > 0 ? 1 : 0);
    return st_cli_neutron_list(ctx, list_fields, n, shown, err);
}

static int run_show(struct st_cli_ctx *ctx, struct st_err **err)
{
    st_autoptr(json_t) rule = NULL;
    int r = st_cli_find(ctx, &st_cli_kind_security_group_rule, ctx->args.pos[0], &rule, err);
    if (r < 0)
        return st_cli_neutron_sdk_error(err, r);
    /* old rules have no prefix: openstack shows the ethertype's "anywhere" */
    st_autoptr(json_t) copy = json_copy(rule);
    default_remote(copy);
    return st_cli_neutron_show(ctx, rule_fields, copy, err);
}

static int run_delete(struct st_cli_ctx *ctx, struct st_err **err)
{
    return st_cli_neutron_delete_each(ctx, &st_cli_kind_security_group_rule, "rule", err);
}

/* ---- the table ---- */

static const struct st_cli_option create_opts[] = {
    {"remote-ip", 0, ST_CLI_OPT_VALUE, "<ip-address>",
     "Remote IP address block (may use CIDR notation; default for IPv4 rule: 0.0.0.0/0, default "
     "for IPv6 rule: ::/0)",
     NULL, false, GROUP_REMOTE},
    {"remote-group", 0, ST_CLI_OPT_VALUE, "<group>", "Remote security group (name or ID)", NULL,
     false, GROUP_REMOTE},
    ST_CLI_VALUE("dst-port", "<port-range>",
                 "Destination port, may be a single port or a starting and ending port range: "
                 "137:139. Required for IP protocols TCP and UDP. Ignored for ICMP IP protocols."),
    ST_CLI_VALUE("protocol", "<protocol>",
                 "IP protocol (ah, dccp, egp, esp, gre, icmp, igmp, ipv6-encap, ipv6-frag, "
                 "ipv6-icmp, ipv6-nonxt, ipv6-opts, ipv6-route, ospf, pgm, rsvp, sctp, tcp, udp, "
                 "udplite, vrrp and integer representations [0-255] or any; default: any (all "
                 "protocols))"),
    ST_CLI_VALUE("description", "<description>", "Set security group rule description"),
    ST_CLI_VALUE("icmp-type", "<icmp-type>", "ICMP type for ICMP IP protocols"),
    ST_CLI_VALUE("icmp-code", "<icmp-code>", "ICMP code for ICMP IP protocols"),
    ST_CLI_FLAG("ingress", "Rule applies to incoming network traffic (default)", GROUP_DIRECTION),
    ST_CLI_FLAG("egress", "Rule applies to outgoing network traffic", GROUP_DIRECTION),
    ST_CLI_VALUE("ethertype", "<ethertype>",
                 "Ethertype of network traffic (IPv4, IPv6; default: based on IP protocol)"),
    ST_CLI_NEUTRON_PROJECT_OPTIONS("Owner's project (name or ID)"),
    ST_CLI_OPTIONS_END,
};

static const struct st_cli_option list_opts[] = {
    ST_CLI_VALUE("protocol", "<protocol>",
                 "List rules by the IP protocol (ah, dhcp, egp, esp, gre, icmp, igmp, ipv6-encap, "
                 "ipv6-frag, ipv6-icmp, ipv6-nonxt, ipv6-opts, ipv6-route, ospf, pgm, rsvp, sctp, "
                 "tcp, udp, udplite, vrrp and integer representations [0-255] or any; default: "
                 "any (all protocols))"),
    ST_CLI_VALUE("ethertype", "<ethertype>", "List rules by the Ethertype (IPv4 or IPv6)"),
    ST_CLI_FLAG("ingress", "List rules applied to incoming network traffic", GROUP_DIRECTION),
    ST_CLI_FLAG("egress", "List rules applied to outgoing network traffic", GROUP_DIRECTION),
    ST_CLI_FLAG("long", "**Deprecated** This argument is no longer needed", 0),
    ST_CLI_FLAG("all-projects", "Accepted for compatibility: Neutron lists what the login may see",
                0),
    ST_CLI_OPTIONS_END,
};

const struct st_cli_command st_cli_security_group_rule_commands[] = {
    {"security group rule create", "Create a new security group rule", NULL, create_opts,
     ST_CLI_NEUTRON_ARG("<group>", "Create rule in this security group (name or ID)", 0),
     ST_CLI_NEUTRON_SHOW, run_create},
    {"security group rule delete", "Delete security group rule(s)", NULL, NULL,
     ST_CLI_NEUTRON_ARG("<rule>", "Security group rule(s) to delete (ID only)", ST_CLI_ARG_MULTI),
     ST_CLI_NEUTRON_CMD, run_delete},
    {"security group rule list", "List security group rules", NULL, list_opts,
     ST_CLI_NEUTRON_ARG("<group>", "List all rules in this security group (name or ID)",
                        ST_CLI_ARG_OPTIONAL),
     ST_CLI_NEUTRON_LIST, run_list},
    {"security group rule show", "Display security group rule details", NULL, NULL,
     ST_CLI_NEUTRON_ARG("<rule>", "Security group rule to display (ID only)", 0),
     ST_CLI_NEUTRON_SHOW, run_show},
    {NULL, NULL, NULL, NULL, NULL, 0, NULL},
};
