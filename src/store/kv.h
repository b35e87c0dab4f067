/* The store: an etcd-shaped key-value interface. Every write bumps one global
 * revision; a key remembers the revision that created it (create_rev), last
 * changed it (mod_rev) and how many times it changed (version). Writes can be
 * conditional on a key's mod_rev (compare-and-swap), several keys can change
 * together in one transaction, lists page by key, and a watch returns every
 * change under a prefix after a revision, in order.
 *
 * Nothing above this header knows the backend (SQLite by default, etcd v3 for
 * several controllers) or any resource kind; keys are opaque byte strings
 * ("/servers/<uuid>") and values opaque bytes (JSON documents in practice).
 * All functions are thread-safe. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "lib/cleanup.h"
#include "lib/err.h"

/* Conditions for st_kv_put/st_kv_delete's expect_mod_rev (and st_kv_txn's
 * compares). Any value > 0 is a
 * mod_rev the key must have now. A failed condition returns -ECANCELED. */
#define ST_KV_ANY    (-1) /* unconditional */
#define ST_KV_ABSENT 0    /* the key must not exist (create) */

/* Limits every backend enforces (-EINVAL / -EFBIG beyond them). A key is a
 * C string of 1..ST_KV_KEY_MAX bytes (any byte but NUL); a value is any
 * bytes, NUL included. */
#define ST_KV_KEY_MAX   1024
#define ST_KV_VALUE_MAX (8 * 1024 * 1024)
/* A transaction has at most this many compares and this many operations
 * (etcd's default --max-txn-ops), and its values add up to at most
 * ST_KV_VALUE_MAX bytes. */
#define ST_KV_TXN_OPS_MAX 128

struct st_kv;

struct st_kv_entry {
    char *key;
    char *value; /* NUL-terminated for convenience; value_len excludes the NUL */
    size_t value_len;
    int64_t create_rev;
    int64_t mod_rev;
    int64_t version;
};

struct st_kv_list {
    struct st_kv_entry *entries;
    size_t count;
    bool more;        /* more keys after the last one (page with start_after) */
    int64_t revision; /* the store revision the list was read at */
};

enum st_kv_event_type {
    ST_KV_EVENT_PUT,
    ST_KV_EVENT_DELETE,
};

struct st_kv_event {
    enum st_kv_event_type type;
    struct st_kv_entry kv; /* for DELETE: key and mod_rev (the delete's revision), no value */
};

struct st_kv_events {
    struct st_kv_event *events;
    size_t count;
    int64_t revision; /* pass as after_rev to the next watch call */
};

struct st_kv_options {
    /* Keep at least this many past revisions of events for watchers; older
     * ones are compacted automatically. 0 = the default (100000). */
    int64_t history;
};

/* Opens a store from a URL: "sqlite:/path/to/file.db" or a plain path
 * (SQLite; creates and migrates the schema as needed), or
 * "etcd://host:port[,host:port...]" (etcd v3 through its JSON gateway; the
 * next endpoint is tried when one cannot be reached). */
int st_kv_open(const char *url, const struct st_kv_options *opts, struct st_kv **ret,
               struct st_err **err);
void st_kv_close(struct st_kv *kv);

/* The current global revision (0 for an empty store). */
int64_t st_kv_revision(struct st_kv *kv);

/* -ENOENT when absent. */
int st_kv_get(struct st_kv *kv, const char *key, struct st_kv_entry **ret, struct st_err **err);

/* Writes key = value if the condition holds; *ret_rev (optional) receives
 * the new revision, which is the key's new mod_rev. Returns only once the
 * write is durable (survives kill -9 and power loss). -ECANCELED when
 * expect_mod_rev does not match. */
int st_kv_put(struct st_kv *kv, const char *key, const void *value, size_t value_len,
              int64_t expect_mod_rev, int64_t *ret_rev, struct st_err **err);

/* Deletes key if the condition holds. -ENOENT when absent, -ECANCELED when
 * expect_mod_rev does not match. */
int st_kv_delete(struct st_kv *kv, const char *key, int64_t expect_mod_rev, int64_t *ret_rev,
                 struct st_err **err);

/* One condition of a transaction: key's mod_rev is expect_mod_rev now
 * (ST_KV_ABSENT: the key does not exist; ST_KV_ANY: always true). */
struct st_kv_cmp {
    const char *key;
    int64_t expect_mod_rev;
};

enum st_kv_op_type {
    ST_KV_OP_PUT,
    ST_KV_OP_DELETE,
};

/* One write of a transaction: put key = value (value_len bytes), or delete
 * key (value unused). */
struct st_kv_op {
    enum st_kv_op_type type;
    const char *key;
    const void *value;
    size_t value_len;
};

/* A multi-key compare-and-swap, as etcd's Txn: if every compare holds, all
 * ops are applied atomically as ONE new revision, which every key they write
 * gets as its mod_rev (and *ret_rev, optional, receives); else -ECANCELED
 * (the message names the first compare that failed) and nothing is written.
 * Durable on return, as st_kv_put, and all or nothing after a crash.
 * Watchers see the revision's events together (one watch call returns all of
 * them), in the order of ops.
 *
 * As etcd: deleting an absent key is a no-op (no event, no error); a
 * transaction that ends up writing nothing (no ops, or only such deletes)
 * takes no revision and *ret_rev is the current one; a key may appear in at
 * most one op (-EINVAL otherwise), while compares may name any keys, those
 * written or others. Up to ST_KV_TXN_OPS_MAX compares and ops (-EINVAL
 * beyond), the key and value limits of put, and ST_KV_VALUE_MAX bytes of
 * values in all (-EFBIG).
 *
 * On etcd v3 this is one Txn request: a compare is Compare(MOD, key) ==
 * expect_mod_rev, or Compare(CREATE, key) == 0 for ST_KV_ABSENT (ST_KV_ANY
 * adds none); ops are the success branch (RequestPut / RequestDeleteRange
 * of the one key); the failure branch is empty and succeeded == false is
 * -ECANCELED; the response header's revision is *ret_rev. */
int st_kv_txn(struct st_kv *kv, const struct st_kv_cmp *cmps, size_t n_cmps,
              const struct st_kv_op *ops, size_t n_ops, int64_t *ret_rev, struct st_err **err);

/* Keys with the given prefix in byte order, after start_after (exclusive,
 * NULL = from the beginning), at most limit (0 = no limit). */
int st_kv_list(struct st_kv *kv, const char *prefix, const char *start_after, size_t limit,
               struct st_kv_list **ret, struct st_err **err);

/* Waits up to timeout_ms for changes under prefix with revision > after_rev
 * and returns them all, in revision order (an empty list after the timeout).
 * Returns -ESTALE ("compacted, relist") when events after after_rev have been
 * compacted away: the caller must list again and watch from the list's
 * revision. Never misses an event otherwise, and never splits a revision:
 * the events of one transaction come in the same call. */
int st_kv_watch(struct st_kv *kv, const char *prefix, int64_t after_rev, int timeout_ms,
                struct st_kv_events **ret, struct st_err **err);

/* Drops event history up to and including rev (watchers from before it get
 * -ESTALE). Keys themselves are never affected. */
int st_kv_compact(struct st_kv *kv, int64_t rev, struct st_err **err);

/* Wakes every watcher (they return what they have, possibly nothing): used
 * at shutdown so long-polls end promptly. It sticks: a watch that starts
 * afterwards returns at once too, so no long-poll that races with shutdown
 * can hold it up. */
void st_kv_wake_all(struct st_kv *kv);

void st_kv_entry_free(struct st_kv_entry *e);
void st_kv_list_free(struct st_kv_list *l);
void st_kv_events_free(struct st_kv_events *ev);

ST_DEFINE_AUTOPTR(st_kv, st_kv_close)
ST_DEFINE_AUTOPTR(st_kv_entry, st_kv_entry_free)
ST_DEFINE_AUTOPTR(st_kv_list, st_kv_list_free)
ST_DEFINE_AUTOPTR(st_kv_events, st_kv_events_free)
