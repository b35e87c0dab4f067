/* Keypairs: SSH public keys that belong to a user (not a project, as in
 * Nova), imported or generated, with the MD5 fingerprint Nova and the
 * openstack CLI show ("5a:64:f7:..", the MD5 of the base64-decoded key blob,
 * as `ssh-keygen -l -E md5` prints it after "MD5:").
 *
 * Import checks that the line is a well-formed OpenSSH public key
 * (ssh-ed25519, ssh-rsa or ecdsa-sha2-nistp256/384/521: the blob decodes
 * and its structure matches its type). Generation makes an Ed25519 pair with
 * OpenSSL and returns the private key once, in OpenSSH's own format
 * ("-----BEGIN OPENSSH PRIVATE KEY-----", openssh-key-v1, unencrypted), which
 * ssh and ssh-keygen read; it is never stored.
 *
 * /compute/keypairs/<user_id>/<name>:
 * {"name", "user_id", "public_key", "fingerprint", "type": "ssh", "created_at"}
 * Reads add "id", an integer unique per keypair (the key's create revision). */
#pragma once

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "lib/err.h"

struct st_kv;

#define ST_KEYPAIRS_PREFIX    "/compute/keypairs/"
#define ST_KEYPAIR_NAME_MAX   255
#define ST_KEYPAIR_PER_USER   100 /* Nova's default key_pairs quota */
#define ST_KEYPAIR_PUBLIC_MAX 16384

/* Nova's names: 1..255 letters, digits, spaces, '-' and '_'. */
int st_keypair_check_name(const char *name, struct st_err **err);

/* Validates an OpenSSH public key line and returns its fingerprint
 * ("aa:bb:..", 47 characters + NUL) and the line normalized (type, base64,
 * comment; trailing whitespace removed; caller frees). */
int st_keypair_parse_public(const char *line, char ret_fingerprint[48], char **ret_normalized,
                            struct st_err **err);

/* A new Ed25519 pair: "ssh-ed25519 AAAA... comment" and the OpenSSH
 * private key text. Both returned strings are the caller's. */
int st_keypair_generate(const char *comment, char **ret_public, char **ret_private,
                        struct st_err **err);

/* Imports public_key (non-NULL) or generates a pair (NULL: *ret_private_key
 * receives the private key, which is not kept). -EEXIST "Key pair 'x'
 * already exists.", -EDQUOT past ST_KEYPAIR_PER_USER. *ret is the stored
 * document with "id". */
int st_keypair_create(struct st_kv *kv, const char *user_id, const char *name,
                      const char *public_key, json_t **ret, char **ret_private_key,
                      struct st_err **err);

/* -ENOENT "Keypair x not found for user y" (what the servers API turns into
 * "Invalid key_name provided."). */
int st_keypair_get(struct st_kv *kv, const char *user_id, const char *name, json_t **ret,
                   struct st_err **err);

/* A user's keypairs in name order (new reference). */
int st_keypair_list(struct st_kv *kv, const char *user_id, json_t **ret, struct st_err **err);

int st_keypair_delete(struct st_kv *kv, const char *user_id, const char *name, struct st_err **err);
