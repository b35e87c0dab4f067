/* Failed-login limiter; see ratelimit.h. An open-addressed table probed over
 * a small neighbourhood: lookups stay O(1) and the table never grows. One
 * mutex suffices: it is taken once per login attempt, which also runs an
 * argon2 verification thousands of times longer. */
#include "ratelimit.h"

#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <string.h>

#define PROBE 8

struct slot {
    bool used;
    uint64_t hash;
    char key[ST_RATELIMIT_KEY_MAX];
    int64_t window_start_ms;
    int64_t last_ms;
    unsigned count;
};

struct st_ratelimit {
    pthread_mutex_t lock;
    struct slot *slots;
    size_t mask;
    unsigned max;
    int64_t window_ms;
};

static uint64_t fnv1a(const char *s)
{
    uint64_t h = 0xcbf29ce484222325ULL;
    for (; *s; s++) {
        h ^= (unsigned char)*s;
        h *= 0x100000001b3ULL;
    }
    return h;
}

struct st_ratelimit *st_ratelimit_new(size_t slots, unsigned max, int64_t window_ms)
{
    size_t n = PROBE;
    while (n < slots)
        n <<= 1;
    struct st_ratelimit *rl = st_new0(struct st_ratelimit, 1);
    pthread_mutex_init(&rl->lock, NULL);
    rl->slots = st_new0(struct slot, n);
    rl->mask = n - 1;
    rl->max = max;
    rl->window_ms = window_ms;
    return rl;
}

void st_ratelimit_free(struct st_ratelimit *rl)
{
    if (!rl)
        return;
    pthread_mutex_destroy(&rl->lock);
    free(rl->slots);
    free(rl);
}

static bool slot_matches(const struct slot *s, uint64_t hash, const char *key)
{
    return s->used && s->hash == hash && strncmp(s->key, key, sizeof(s->key) - 1) == 0;
}

static bool slot_expired(const struct st_ratelimit *rl, const struct slot *s, int64_t now_ms)
{
    return now_ms - s->window_start_ms >= rl->window_ms;
}

/* The slot holding key, or NULL. Called with the lock held. */
static struct slot *lookup(struct st_ratelimit *rl, uint64_t hash, const char *key)
{
    for (size_t i = 0; i < PROBE; i++) {
        struct slot *s = &rl->slots[(hash + i) & rl->mask];
        if (slot_matches(s, hash, key))
            return s;
    }
    return NULL;
}

int st_ratelimit_check(struct st_ratelimit *rl, const char *key, int64_t now_ms,
                       int64_t *ret_retry_s)
{
    uint64_t hash = fnv1a(key);
    int r = 0;
    pthread_mutex_lock(&rl->lock);
    struct slot *s = lookup(rl, hash, key);
    if (s && !slot_expired(rl, s, now_ms) && s->count >= rl->max) {
        int64_t left_ms = s->window_start_ms + rl->window_ms - now_ms;
        if (ret_retry_s)
            *ret_retry_s = (left_ms + 999) / 1000;
        r = -EBUSY;
    }
    pthread_mutex_unlock(&rl->lock);
    return r;
}

void st_ratelimit_fail(struct st_ratelimit *rl, const char *key, int64_t now_ms)
{
    uint64_t hash = fnv1a(key);
    pthread_mutex_lock(&rl->lock);
    struct slot *s = lookup(rl, hash, key);
    if (!s) {
        /* A free or expired slot in the neighbourhood, else the one touched
         * longest ago. */
        for (size_t i = 0; i < PROBE; i++) {
            struct slot *c = &rl->slots[(hash + i) & rl->mask];
            if (!c->used || slot_expired(rl, c, now_ms)) {
                s = c;
                break;
            }
            if (!s || c->last_ms < s->last_ms)
                s = c;
        }
        *s = (struct slot){.used = true, .hash = hash, .window_start_ms = now_ms};
        strncpy(s->key, key, sizeof(s->key) - 1);
    } else if (slot_expired(rl, s, now_ms)) {
        s->window_start_ms = now_ms;
        s->count = 0;
    }
    s->count++;
    s->last_ms = now_ms;
    pthread_mutex_unlock(&rl->lock);
}

void st_ratelimit_reset(struct st_ratelimit *rl, const char *key)
{
    uint64_t hash = fnv1a(key);
    pthread_mutex_lock(&rl->lock);
    struct slot *s = lookup(rl, hash, key);
    if (s)
        *s = (struct slot){0};
    pthread_mutex_unlock(&rl->lock);
}
