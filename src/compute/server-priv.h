/* Shared by the server service's files (server.c, server_create.c,
 * server_report.c) and server groups (server_group.c) only. */
#pragma once

#include <jansson.h>
#include <stdbool.h>

#include "lib/err.h"
#include "lib/times.h"

struct st_kv;

const char *server_str(json_t *o, const char *k);
json_t *server_spec(json_t *doc);
json_t *server_status_obj(json_t *doc);
/* "/compute/servers/<id>" */
char *server_key(const char *id);
/* -ENOENT "Instance X could not be found." */
int server_not_found(const char *id, struct st_err **err);
void server_now(char buf[ST_TIME_RFC3339_LEN]);
/* Nova's "name" format (1..255 characters, no control characters, no
 * leading or trailing whitespace); -EINVAL "Invalid input for
 * field/attribute <field>. ..." */
int server_check_name(json_t *v, const char *field, struct st_err **err);
bool server_reboot_pending(json_t *doc);

/* Removes the server from /compute/allocations/<node> (absent is fine). */
int server_allocation_remove(struct st_kv *kv, const char *node, const char *id,
                             struct st_err **err);
/* After a server's document is deleted: its allocation, console and quota
 * entry. */
int server_release(struct st_kv *kv, json_t *doc, struct st_err **err);
