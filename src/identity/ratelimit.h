/* Failed-login limiter: counts failures per key (a user, a peer address) in
 * a fixed window and refuses further attempts once a key has reached its
 * maximum, until the window that began with its first failure ends. The
 * table has a fixed number of slots, so an attacker spraying keys costs
 * bounded memory: when a key's neighbourhood is full, the entry touched
 * longest ago is evicted. Thread-safe. */
#pragma once

#include <stddef.h>
#include <stdint.h>

#include "lib/cleanup.h"

struct st_ratelimit;

#define ST_RATELIMIT_KEY_MAX 320

/* slots: table size (rounded up to a power of two); max: failures allowed
 * in window_ms before a key is refused. */
struct st_ratelimit *st_ratelimit_new(size_t slots, unsigned max, int64_t window_ms);
void st_ratelimit_free(struct st_ratelimit *rl);
ST_DEFINE_AUTOPTR(st_ratelimit, st_ratelimit_free)

/* 0 when key may try now; -EBUSY when it has used up its failures, with
 * *ret_retry_s (optional) the whole seconds until it may try again. */
int st_ratelimit_check(struct st_ratelimit *rl, const char *key, int64_t now_ms,
                       int64_t *ret_retry_s);

/* Counts one failure of key. */
void st_ratelimit_fail(struct st_ratelimit *rl, const char *key, int64_t now_ms);

/* Forgets key's failures (after a success). */
void st_ratelimit_reset(struct st_ratelimit *rl, const char *key);
