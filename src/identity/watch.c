/* The identity watch: one thread per identity instance that follows the
 * store's identity keys, so that several controllers serving one store
 * agree. Each instance caches validated tokens and holds the custom roles'
 * rules in memory; without this, a token revoked through controller A would
 * stay good at B until it expired (12 h), and a role's rules changed through
 * A would not be enforced by B. The thread long-polls the one prefix every
 * identity key shares (one watch, one revision to resume from):
 *   a token's key deleted (revoked, or expired and swept) → the cache
 *     forgets it;
 *   a role record written or deleted → every role's rules are reloaded.
 * Other identity records need nothing: they are read from the store.
 *
 * When the store has compacted the events the watch needs (-ESTALE), it can
 * no longer tell which tokens went: it empties the cache and reloads the
 * roles, then goes on from the revision it read them at. While the watch
 * fails (the store unreachable) the cache is not trusted, so validation
 * reads the store, whose failure the API answers with 503; when it resumes,
 * the events it missed are replayed before the cache is trusted again.
 *
 * Each poll is short (WATCH_POLL_MS) so that stopping is prompt: the store
 * has no per-watcher wake-up, and its wake_all is for the whole process. */
#include "identity-priv.h"

#include <errno.h>
#include <string.h>
#include <time.h>

#include "lib/log.h"
#include "lib/times.h"
#include "store/kv.h"

#define WATCH_POLL_MS    200 /* bounds how long stop waits */
#define ERROR_BACKOFF_MS 500
#define PAUSE_STEP_MS    50
#define TOKEN_HASH_CHARS 64 /* hex SHA-256 */

static bool stopping(struct st_identity *id)
{
    return __atomic_load_n(&id->watch_stop, __ATOMIC_ACQUIRE);
}

static int64_t mono_ms(void)
{
    return st_time_mono_ns() / 1000000;
}

/* Sleeps about ms, waking early when stop is asked. */
static void pause_ms(struct st_identity *id, int ms)
{
    for (int slept = 0; slept < ms && !stopping(id); slept += PAUSE_STEP_MS) {
        struct timespec ts = {.tv_sec = 0, .tv_nsec = PAUSE_STEP_MS * 1000000L};
        nanosleep(&ts, NULL);
    }
}

static bool is_token_hash(const char *s)
{
    size_t n = 0;
    for (; s[n]; n++)
        if (!((s[n] >= '0' && s[n] <= '9') || (s[n] >= 'a' && s[n] <= 'f')))
            return false;
    return n == TOKEN_HASH_CHARS;
}

/* Forgets the deleted tokens of one batch; true when a role changed. */
static bool apply_events(struct st_identity *id, const struct st_kv_events *ev)
{
    size_t tokens_len = strlen(ST_IDENTITY_TOKENS_PREFIX);
    size_t roles_len = strlen(ST_IDENTITY_ROLES_PREFIX);
    bool roles_changed = false;
    for (size_t i = 0; i < ev->count; i++) {
        const struct st_kv_event *e = &ev->events[i];
        const char *key = e->kv.key;
        if (strncmp(key, ST_IDENTITY_TOKENS_PREFIX, tokens_len) == 0) {
            if (e->type == ST_KV_EVENT_DELETE && is_token_hash(key + tokens_len))
                st_token_cache_forget(id->cache, key + tokens_len);
        } else if (strncmp(key, ST_IDENTITY_ROLES_PREFIX, roles_len) == 0) {
            roles_changed = true;
        }
    }
    return roles_changed;
}

/* Starts over after a compaction: the roles are read again, then the cache
 * is emptied (a validation that began before does not fill it, and one
 * that begins after reads the store after the roles were read), and the
 * watch goes on from the roles' revision. */
static int resync(struct st_identity *id, int64_t *rev, struct st_err **err)
{
    int64_t fresh = 0;
    int r = st_identity_roles_reload(id, &fresh, err);
    if (r < 0)
        return st_err_prefix(err, r, "reloading after a compaction");
    st_token_cache_clear(id->cache);
    st_log_info("identity_watch_resynced", "from=%lld to=%lld", (long long)*rev, (long long)fresh);
    *rev = fresh;
    return 0;
}

/* One poll: 0 when the instance is in step up to *rev (moved on). */
static int watch_once(struct st_identity *id, int64_t *rev, int timeout_ms, bool *ret_idle,
                      struct st_err **err)
{
    *ret_idle = false;
    st_autoptr(st_kv_events) ev = NULL;
    int r = st_kv_watch(id->kv, ST_IDENTITY_PREFIX, *rev, timeout_ms, &ev, err);
    if (r == -ESTALE) {
        st_err_clear(err);
        return resync(id, rev, err);
    }
    if (r < 0)
        return st_err_prefix(err, r, "watching %s", ST_IDENTITY_PREFIX);
    /* A failed reload keeps *rev: the batch comes again (forgetting a
     * token twice is harmless). */
    if (apply_events(id, ev)) {
        r = st_identity_roles_reload(id, NULL, err);
        if (r < 0)
            return r;
    }
    if (ev->revision > *rev)
        *rev = ev->revision;
    *ret_idle = ev->count == 0;
    return 0;
}

static void *watch_main(void *arg)
{
    struct st_identity *id = arg;
    int64_t rev = id->watch_rev;
    bool failing = false, first = true;
    while (!stopping(id)) {
        int64_t t0 = mono_ms();
        /* The first poll does not wait: it tells at once whether the cache
         * can be trusted. */
        int timeout = first ? 0 : WATCH_POLL_MS;
        bool idle;
        st_autoptr(st_err) err = NULL;
        int r = watch_once(id, &rev, timeout, &idle, &err);
        if (r < 0) {
            __atomic_store_n(&id->watch_in_sync, false, __ATOMIC_RELEASE);
            if (!failing)
                st_log_warn("identity_watch_failed", "revision=%lld error=\"%s\"", (long long)rev,
                            st_err_msg(err));
            failing = true;
            pause_ms(id, ERROR_BACKOFF_MS);
            continue;
        }
        if (failing)
            st_log_info("identity_watch_resumed", "revision=%lld", (long long)rev);
        failing = first = false;
        __atomic_store_n(&id->watch_in_sync, true, __ATOMIC_RELEASE);
        /* A store woken for shutdown answers every watch at once: do not
         * spin on it until stop arrives. */
        if (idle && mono_ms() - t0 < timeout / 2)
            pause_ms(id, WATCH_POLL_MS / 4);
    }
    id->watch_rev = rev; /* read after the join: a restart goes on from here */
    return NULL;
}

int st_identity_watch_start(struct st_identity *id, int64_t rev, struct st_err **err)
{
    /* Trusted once the first poll has caught up from rev (at once, when
     * nothing changed since): a restarted watch may have a backlog. */
    id->watch_rev = rev;
    __atomic_store_n(&id->watch_stop, false, __ATOMIC_RELEASE);
    __atomic_store_n(&id->watch_in_sync, false, __ATOMIC_RELEASE);
    int r = pthread_create(&id->watcher, NULL, watch_main, id);
    if (r != 0)
        return st_err_set(err, -r, "starting the identity watch: %s", strerror(r));
    id->watching = true;
    return 0;
}

void st_identity_watch_stop(struct st_identity *id)
{
    if (!id || !id->watching)
        return;
    __atomic_store_n(&id->watch_stop, true, __ATOMIC_RELEASE);
    pthread_join(id->watcher, NULL);
    id->watching = false;
    /* Nothing keeps the cache in step any more: the store answers. */
    __atomic_store_n(&id->watch_in_sync, false, __ATOMIC_RELEASE);
}
