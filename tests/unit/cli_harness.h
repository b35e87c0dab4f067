/* What the network CLI tests (test_cli_network.c, test_cli_vpc.c) share:
 * running `stratos ...` in-process with its output captured, a logged-in
 * cloud on the fake HTTP server (a token as is, the services at
 * stratosd's own paths), JSON written with single quotes ('{"a": 1}' is
 * hard to read in C) turned into real JSON for the fake's bodies, and a
 * few Neutron objects the fake answers with. */
#pragma once

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/command.h"
#include "fake_http.h"
#include "lib/cleanup.h"

struct nt_result {
    int rc;
    char *out;
    char *err;
};

/* `stratos <first> ...` (words up to NULL), run as the CLI. */
static inline struct nt_result nt_run(const char *first, ...)
{
    char *argv[64] = {"stratos", (char *)first};
    int argc = 2;
    va_list ap;
    va_start(ap, first);
    for (const char *w; argc < 63 && (w = va_arg(ap, const char *));)
        argv[argc++] = (char *)w;
    va_end(ap);
    char *out = NULL, *err = NULL;
    size_t out_len, err_len;
    FILE *fo = open_memstream(&out, &out_len), *fe = open_memstream(&err, &err_len);
    assert_non_null(fo);
    assert_non_null(fe);
    int rc = st_cli_run(argc, argv, fo, fe);
    fclose(fo);
    fclose(fe);
    return (struct nt_result){rc, out, err};
}

static inline void nt_free(struct nt_result *r)
{
    free(r->out);
    free(r->err);
}

/* No login settings from the environment the tests run in. */
static inline int nt_clean_env(void **state)
{
    (void)state;
    static const char *const names[] = {
        "OS_AUTH_URL",
        "OS_USERNAME",
        "OS_PASSWORD",
        "OS_PROJECT_NAME",
        "OS_PROJECT_ID",
        "OS_USER_DOMAIN_NAME",
        "OS_PROJECT_DOMAIN_NAME",
        "OS_REGION_NAME",
        "OS_TOKEN",
        "OS_CACERT",
        "OS_INSECURE",
        "STRATOS_URL",
        "OS_USER_ID",
        "OS_USER_DOMAIN_ID",
        "OS_PROJECT_DOMAIN_ID",
        "OS_DEFAULT_DOMAIN",
        "OS_INTERFACE",
    };
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
        unsetenv(names[i]);
    setenv("COLUMNS", "80", 1);
    return 0;
}

/* The fake server as a cloud logged in with a token as is: the network
 * API at /network/v2.0 on it. */
static inline void nt_cloud_start(struct fake_server *s, const struct fake_route *routes, size_t n,
                                  const struct fake_later *later, size_t n_later)
{
    fake_start_later(s, routes, n, later, n_later);
    char *auth_url = st_sprintf("http://127.0.0.1:%u/identity/v3", s->port);
    setenv("OS_AUTH_URL", auth_url, 1);
    setenv("OS_TOKEN", "tok-as-is", 1);
    free(auth_url);
}

static inline void nt_log_reset(struct fake_server *s)
{
    s->log_len = 0;
    s->log[0] = '\0';
}

/* The requests of the log that are not GETs ("" when none). */
static inline char *nt_writes(const struct fake_server *s)
{
    char *buf = NULL;
    size_t len;
    FILE *f = open_memstream(&buf, &len);
    assert_non_null(f);
    for (const char *line = s->log; *line;) {
        size_t n = strcspn(line, "\n");
        if (strncmp(line, "GET ", 4) != 0)
            fprintf(f, "%.*s\n", (int)n, line);
        line += n + (line[n] == '\n');
    }
    fclose(f);
    return buf;
}

/* JSON from text written with ' for " (the tests' fixtures never need a
 * quote inside a string). Kept until nt_json_free_all. */
#define NT_JSON_MAX 64
static char *nt_json_texts[NT_JSON_MAX];
static size_t nt_json_count;

static inline const char *nt_json(const char *single_quoted)
{
    char *s = st_strdup(single_quoted);
    for (char *p = s; *p; p++)
        if (*p == '\'')
            *p = '"';
    assert_true(nt_json_count < NT_JSON_MAX);
    nt_json_texts[nt_json_count++] = s;
    return s;
}

static inline void nt_json_free_all(void)
{
    for (size_t i = 0; i < nt_json_count; i++)
        free(nt_json_texts[i]);
    nt_json_count = 0;
}

/* ---- Neutron objects the network tests answer with ---- */

/* where the fake serves Neutron (stratosd's own path) */
#define NET "/network/v2.0"

#define NET_PRIVATE                                                                                \
    "{'id': 'n1', 'name': 'private', 'project_id': 'p1', 'tenant_id': 'p1', 'admin_state_up': "    \
    "true, 'status': 'ACTIVE', 'subnets': ['s2', 's1'], 'shared': false, 'mtu': 1400, "            \
    "'router:external': false, 'port_security_enabled': true, 'availability_zone_hints': [], "     \
    "'availability_zones': ['nova'], 'description': 'my net', 'tags': [], 'revision_number': 1, "  \
    "'provider:network_type': 'vxlan', 'provider:physical_network': null, "                        \
    "'provider:segmentation_id': 1001, 'created_at': '2030-01-01T11:00:00Z'}"
#define NET_PUBLIC                                                                                 \
    "{'id': 'ext', 'name': 'public', 'subnets': [], 'router:external': true, 'status': 'ACTIVE'}"

#define SUBNET_S2                                                                                  \
    "{'id': 's2', 'name': 's2', 'network_id': 'n1', 'ip_version': 4, 'cidr': '10.0.3.0/24', "      \
    "'gateway_ip': null, 'allocation_pools': [{'start': '10.0.3.10', 'end': '10.0.3.20'}], "       \
    "'host_routes': [{'destination': '10.10.0.0/16', 'nexthop': '10.0.3.1'}], "                    \
    "'dns_nameservers': ['8.8.8.8'], 'enable_dhcp': false, 'service_types': [], 'tags': []}"
#define PORT_P1                                                                                    \
    "{'id': 'pt1', 'name': 'p1', 'network_id': 'n1', 'mac_address': 'fa:16:3e:00:00:01', "         \
    "'fixed_ips': [{'subnet_id': 's2', 'ip_address': '10.0.3.50'}], 'status': 'DOWN', "            \
    "'security_groups': ['sg1'], 'admin_state_up': true, 'device_owner': 'compute:nova', "         \
    "'binding:profile': {}, 'tags': []}"
