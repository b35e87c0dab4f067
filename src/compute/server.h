/* The server service: Nova's servers as documents in the store (the shape
 * is in compute/model.h). Create validates the request (name, flavor, image,
 * key pair, metadata, user_data, resource policy), reserves quota and writes
 * the document in BUILD; the scheduler controller places it (spec.host) and
 * the node's agent makes it real and reports status through the internal
 * API, which lands here too (st_compute_server_report). Deleting a server
 * that was never placed removes it at once; a placed one is marked
 * spec.deleted and removed when its agent reports it destroyed.
 *
 * Every write is a read-modify-write with compare-and-swap on the
 * document's mod_rev (st_compute_server_update retries), so the API, the
 * scheduler and the agents never overwrite each other's fields. No HTTP
 * here: callers authorize first (the document's project_id) and render. */
#pragma once

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "lib/err.h"

struct st_kv;

/* Who asks (from the token); is_admin may act in every project. */
struct st_compute_caller {
    const char *project_id;
    const char *user_id;
    bool is_admin;
};

#define ST_COMPUTE_NAME_MAX         255
#define ST_COMPUTE_METADATA_KEY_MAX 255
#define ST_COMPUTE_METADATA_VAL_MAX 255
#define ST_COMPUTE_USER_DATA_MAX    65535 /* base64 characters, as Nova's schema */

/* Creates a server from Nova's request object (the value of "server":
 * name, imageRef, flavorRef, key_name, metadata, user_data,
 * availability_zone, networks, security_groups, min_count/max_count = 1) and
 * the optional scheduler hints ({"group": uuid}). *ret_doc is the stored
 * document (status BUILD). Errors carry Nova's messages: -EINVAL "Invalid
 * key_name provided.", "Flavor X could not be found.", "Image X could not be
 * found."; -EDQUOT for quota. */
int st_compute_server_create(struct st_kv *kv, const struct st_compute_caller *who, json_t *req,
                             json_t *hints, json_t **ret_doc, struct st_err **err);

/* -ENOENT "Instance X could not be found." */
int st_compute_server_get(struct st_kv *kv, const char *id, json_t **ret_doc, int64_t *ret_mod_rev,
                          struct st_err **err);

/* What a list keeps (NULL/0 fields do not filter). */
struct st_compute_server_filter {
    const char *project_id; /* NULL = every project (admins) */
    const char *name;       /* POSIX extended regex (substring), as Nova */
    const char *status;     /* "ACTIVE", case-insensitive */
    const char *host;
    const char *availability_zone;
    const char *key_name;
    const char *image;        /* image id */
    const char *flavor;       /* flavor id */
    int64_t changes_since_ms; /* updated_at >= this; 0 = no filter */
    const char *marker;       /* id: start after it (-EINVAL when unknown) */
    size_t limit;             /* 0 = no limit */
};

/* Documents newest first (by creation), filtered. */
int st_compute_server_list(struct st_kv *kv, const struct st_compute_server_filter *f,
                           json_t **ret_docs, struct st_err **err);

/* A mutation of a server document inside st_compute_server_update: return
 * 0 to write the document, ST_COMPUTE_UNCHANGED to write nothing, or a
 * negative errno to abort with that error. It may run several times (after a
 * conflict), each time on a fresh copy. */
#define ST_COMPUTE_UNCHANGED 1
typedef int (*st_compute_server_fn)(json_t *doc, void *userdata, struct st_err **err);

/* Read-modify-write with compare-and-swap and retries; updated_at is set on
 * each write. *ret_doc (optional) is the document as written (or as read
 * when unchanged). */
int st_compute_server_update(struct st_kv *kv, const char *id, st_compute_server_fn fn,
                             void *userdata, json_t **ret_doc, struct st_err **err);

/* DELETE: marks a placed server deleted (its agent destroys it and reports
 * DELETED; quota is released at once). A server that was never placed, or
 * whose node is unknown or down (lease expired), is removed at once with
 * its allocation, console and quota entry, as Nova's local delete; an agent
 * that comes back destroys what is no longer assigned to it. Idempotent
 * while the deletion is pending. */
int st_compute_server_delete(struct st_kv *kv, const char *id, struct st_err **err);

/* Power actions; -EBUSY with Nova's 409 message in a wrong state ("Cannot
 * 'stop' instance X while it is in vm_state stopped"). */
int st_compute_server_stop(struct st_kv *kv, const char *id, struct st_err **err);
int st_compute_server_start(struct st_kv *kv, const char *id, struct st_err **err);
int st_compute_server_reboot(struct st_kv *kv, const char *id, bool hard, struct st_err **err);

/* The last `lines` lines of the console log (-1 = all) as valid UTF-8 with
 * control characters other than \t \n \r removed. -EBUSY "Instance X is not
 * ready." before the server has a host. */
int st_compute_server_console(struct st_kv *kv, const char *id, int64_t lines, char **ret,
                              struct st_err **err);

/* Derived views of a document, for rendering and filters. */
const char *st_compute_server_status(json_t *doc);     /* "BUILD", "ACTIVE", "REBOOT", ... */
const char *st_compute_server_vm_state(json_t *doc);   /* "building", "active", "stopped", ... */
const char *st_compute_server_task_state(json_t *doc); /* NULL when none */

/* ---- the agents' side (through the internal API) ---- */

/* Merges a status report ({"state", "power_state", "task_state", "fault",
 * "instance", "observed_reboot"}) into the document. A report of state
 * "DELETED" for a server being deleted removes it for good: the document,
 * its allocation on its node, its console and its quota entry. The first
 * report of ACTIVE sets launched_at. -EBUSY for DELETED on a server nobody
 * deleted. */
int st_compute_server_report(struct st_kv *kv, const char *id, json_t *report, struct st_err **err);

/* Stores the tail of the server's console log (the last
 * ST_COMPUTE_CONSOLE_MAX bytes of data). -ENOENT for an unknown server. */
int st_compute_server_console_put(struct st_kv *kv, const char *id, const char *data, size_t len,
                                  struct st_err **err);

/* The servers assigned to host that changed after revision after_rev (all
 * of them when after_rev is 0), waiting up to wait_ms for one; *ret_rev is
 * the revision to pass next time. -ESTALE when after_rev was compacted
 * (list again with 0). */
int st_compute_server_watch_host(struct st_kv *kv, const char *host, int64_t after_rev, int wait_ms,
                                 json_t **ret_docs, int64_t *ret_rev, struct st_err **err);
