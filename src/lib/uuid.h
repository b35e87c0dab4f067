/* Identifiers and randomness from the kernel (getrandom): UUIDv4 strings for
 * resources, 32-hex ids as Keystone uses, and raw random bytes for secrets. */
#pragma once

#include <stdbool.h>
#include <stddef.h>

#define ST_UUID_LEN  37 /* "xxxxxxxx-xxxx-4xxx-yxxx-xxxxxxxxxxxx" + NUL */
#define ST_HEX32_LEN 33 /* 32 hex digits + NUL */

/* Fills buf with n cryptographically random bytes; never fails (aborts if
 * the kernel cannot supply randomness, which leaves nothing safe to do). */
void st_random_bytes(void *buf, size_t n);

void st_uuid_new(char out[ST_UUID_LEN]);
void st_uuid_hex32(char out[ST_HEX32_LEN]);
/* True for the dashed 8-4-4-4-12 hex form, any version. */
bool st_uuid_valid(const char *s);
/* True for an id that may become part of a store key or a path: 1 to 64
 * of [A-Za-z0-9_-] (UUIDs, Keystone's hex ids, names), so nothing in it can
 * reach another key. */
bool st_id_valid(const char *s);

/* Lower-case hex of n bytes into out (2n + 1 bytes). */
void st_hex_encode(const void *buf, size_t n, char *out);
