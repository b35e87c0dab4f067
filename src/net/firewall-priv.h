/* Internals shared by the firewall's files: firewall.c (security groups,
 * applying and deleting tables) and firewall_nat.c (router NAT). Every
 * string that reaches a ruleset comes from the network (ids, names,
 * addresses typed by tenants), so each one is validated here before it is
 * printed into nft syntax: nothing a tenant writes can close a quote or a
 * brace. */
#pragma once

#include <jansson.h>
#include <stdbool.h>
#include <stdio.h>

/* An id usable inside chain and set names: 1..64 of [A-Za-z0-9-]. */
bool st_fw_id_valid(const char *s);
/* A dotted IPv4 address. */
bool st_fw_ipv4_valid(const char *s);
/* "aa:bb:cc:dd:ee:ff" (case-insensitive), written lower-case into buf. */
bool st_fw_mac_parse(const char *s, char buf[18]);
/* An IPv4 prefix "10.0.2.7/24" (or a bare address = /32) written in its
 * network form "10.0.2.0/24" into buf; "" for 0.0.0.0/0. */
bool st_fw_cidr_normalize(const char *s, char buf[32]);

/* A text being rendered: an open_memstream that aborts on failure. */
FILE *st_fw_text_open(char **buf, size_t *len);
static inline void st_fw_fclosep(FILE **f)
{
    if (*f)
        fclose(*f);
}
#define st_fw_autoclose_file __attribute__((cleanup(st_fw_fclosep)))

/* qsort comparator over an array of `const char *`. */
int st_fw_strcmp_ptr(const void *a, const void *b);

/* A network's conntrack zone from its VNI (16 bits; VNIs above 65535 wrap
 * and may share a zone, which only loses the separation of overlapping
 * addresses between those two networks). Flat networks (no VNI) stay in
 * zone 0. */
int st_fw_vni_zone(json_t *vni);
