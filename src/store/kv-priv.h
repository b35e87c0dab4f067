/* What a store backend implements, and the few helpers every backend shares.
 * kv.c owns the public API: it picks a backend by URL scheme, validates every
 * argument once (keys, values, conditions, revisions) and answers -EOPNOTSUPP
 * for a missing operation, so a backend only ever sees well-formed requests.
 * Not for use outside src/store (and its tests). */
#pragma once

#include <string.h>

#include "store/kv.h"

/* open, close, revision, get and put are required; the others may be NULL
 * (the dispatcher then answers -EOPNOTSUPP). */
struct st_kv_backend {
    const char *name;
    /* location is the URL with the scheme removed (a path for SQLite). */
    int (*open)(const char *location, const struct st_kv_options *opts, void **ret_impl,
                struct st_err **err);
    void (*close)(void *impl);
    /* Never fails: a backend that cannot ask falls back to the last revision
     * it saw (st_kv_revision has no error channel). */
    int64_t (*revision)(void *impl);
    int (*get)(void *impl, const char *key, struct st_kv_entry **ret, struct st_err **err);
    int (*put)(void *impl, const char *key, const void *value, size_t value_len,
               int64_t expect_mod_rev, int64_t *ret_rev, struct st_err **err);
    int (*delete)(void *impl, const char *key, int64_t expect_mod_rev, int64_t *ret_rev,
                  struct st_err **err);
    /* Arguments checked as kv.h says: counts within ST_KV_TXN_OPS_MAX, keys
     * valid and distinct among ops, a put's value may be NULL when empty. */
    int (*txn)(void *impl, const struct st_kv_cmp *cmps, size_t n_cmps, const struct st_kv_op *ops,
               size_t n_ops, int64_t *ret_rev, struct st_err **err);
    /* prefix is never NULL ("" = every key); limit 0 = no limit. */
    int (*list)(void *impl, const char *prefix, const char *start_after, size_t limit,
                struct st_kv_list **ret, struct st_err **err);
    int (*watch)(void *impl, const char *prefix, int64_t after_rev, int timeout_ms,
                 struct st_kv_events **ret, struct st_err **err);
    int (*compact)(void *impl, int64_t rev, struct st_err **err);
    void (*wake_all)(void *impl);
};

extern const struct st_kv_backend st_kv_sqlite_backend;
/* "etcd://host:port[,host:port...]": etcd v3 through its JSON gateway
 * (kv_etcd.c). */
extern const struct st_kv_backend st_kv_etcd_backend;

/* The default number of past revisions kept for watchers. */
#define ST_KV_HISTORY_DEFAULT 100000

/* The smallest string greater than every string starting with prefix (etcd's
 * range_end): the prefix with its last byte below 0xff incremented and what
 * follows dropped. NULL when there is none (empty prefix or all 0xff): the
 * range is then unbounded above. *ret_len receives the length. */
char *st_kv_prefix_end(const char *prefix, size_t *ret_len);

/* Frees the members of an entry, not the entry (list and event arrays). */
void st_kv_entry_clear(struct st_kv_entry *e);

/* Keys in error messages: quoted, and cut after ST_KV_KEY_QUOTE bytes so a
 * 1 KiB key does not drown the message: "key " ST_KV_KEY_FMT, ST_KV_KEY_ARG(k). */
#define ST_KV_KEY_QUOTE  200
#define ST_KV_KEY_FMT    "'%.*s%s'"
#define ST_KV_KEY_ARG(k) ST_KV_KEY_QUOTE, (k), (strlen(k) > ST_KV_KEY_QUOTE ? "..." : "")
