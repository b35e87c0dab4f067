/* bench_token: what the identity service costs per request. Prints
 *   - tokens issued/s: password logins (argon2id at the DEFAULT cost, stated
 *     in the output) through st_identity_authenticate, store writes included;
 *   - cached validations/s from 1 and 2 threads (the path every API request
 *     takes);
 *   - uncached validations/s (SHA-256 + a store read + JSON parse), by
 *     emptying the cache before each round.
 * Usage: bench_token [seconds per measurement, default 2]. The store is a
 * SQLite file in a temporary directory, removed at the end. */
#include <errno.h>
#include <ftw.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "identity/identity-priv.h"
#include "identity/identity.h"
#include "lib/cleanup.h"
#include "lib/log.h"
#include "lib/times.h"
#include "store/kv.h"

#define TOKENS 256

static double seconds_since(int64_t start_ns)
{
    return (double)(st_time_mono_ns() - start_ns) / 1e9;
}

static void die(const char *what, struct st_err *err)
{
    fprintf(stderr, "bench_token: %s: %s\n", what, st_err_msg(err));
    exit(1);
}

struct worker {
    struct st_identity *id;
    char **secrets;
    double seconds;
    long start; /* where in secrets this thread begins, so threads meet rarely */
    long count;
    long failures;
};

static void *validate_loop(void *arg)
{
    struct worker *w = arg;
    int64_t start = st_time_mono_ns();
    long n = 0;
    while (n % 1024 != 0 || seconds_since(start) < w->seconds) {
        struct st_token *t = NULL;
        if (st_identity_validate(w->id, w->secrets[(w->start + n) % TOKENS], &t, NULL) < 0)
            w->failures++;
        st_token_free(t);
        n++;
    }
    w->count = n;
    w->seconds = seconds_since(start);
    return NULL;
}

static double cached_rate(struct st_identity *id, char **secrets, int threads, double seconds)
{
    pthread_t th[2];
    struct worker w[2];
    for (int i = 0; i < threads; i++) {
        w[i] = (struct worker){id, secrets, seconds, i * TOKENS / 2, 0, 0};
        pthread_create(&th[i], NULL, validate_loop, &w[i]);
    }
    double rate = 0;
    for (int i = 0; i < threads; i++) {
        pthread_join(th[i], NULL);
        if (w[i].failures)
            die("cached validation failed", NULL);
        rate += (double)w[i].count / w[i].seconds;
    }
    return rate;
}

static int rm_one(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb;
    (void)flag;
    (void)ftw;
    return remove(path);
}

int main(int argc, char **argv)
{
    double seconds = argc > 1 ? atof(argv[1]) : 2.0;
    if (seconds <= 0)
        seconds = 2.0;
    st_log_set_level(ST_LOG_WARN);
    char dir[] = "/tmp/bench-token-XXXXXX";
    if (!mkdtemp(dir)) {
        perror("mkdtemp");
        return 1;
    }
    st_autofree char *url = st_sprintf("sqlite:%s/store.db", dir);
    st_autoptr(st_err) err = NULL;
    struct st_kv *kv = NULL;
    if (st_kv_open(url, NULL, &kv, &err) < 0)
        die("opening the store", err);
    struct st_identity_config cfg = {0}; /* the default argon2id cost */
    struct st_identity *id = NULL;
    if (st_identity_new(kv, &cfg, &id, &err) < 0)
        die("opening identity", err);
    st_autofree char *password = NULL;
    if (st_identity_bootstrap(id, &password, &err) < 0)
        die("bootstrap", err);

    struct st_password_cost cost = ST_PASSWORD_COST_DEFAULT;
    printf("bench_token: argon2id cost t=%u m=%u KiB p=%u (ST_PASSWORD_COST_DEFAULT), "
           "SQLite store in %s\n",
           cost.t_cost, cost.m_cost_kib, cost.parallelism, dir);

    /* Issue: project-scoped password logins, as `openstack` does. */
    char *secrets[TOKENS] = {0};
    struct st_auth_request req = {.user_name = "admin",
                                  .user_domain_name = "Default",
                                  .password = password,
                                  .project_name = "admin",
                                  .project_domain_name = "Default",
                                  .peer = "127.0.0.1"};
    int64_t start = st_time_mono_ns();
    int issued = 0;
    while (issued < TOKENS && (issued < 8 || seconds_since(start) < seconds)) {
        struct st_token *t = NULL;
        if (st_identity_authenticate(id, &req, &secrets[issued], &t, &err) < 0)
            die("authenticate", err);
        st_token_free(t);
        issued++;
    }
    double issue_s = seconds_since(start);
    printf("tokens issued:           %8.1f /s  (%d logins in %.2f s, %.1f ms each)\n",
           issued / issue_s, issued, issue_s, 1000 * issue_s / issued);
    for (int i = issued; i < TOKENS; i++)
        secrets[i] = st_strdup(secrets[i % issued]);

    printf("cached validations:      %8.0f /s  (1 thread)\n", cached_rate(id, secrets, 1, seconds));
    printf("cached validations:      %8.0f /s  (2 threads)\n",
           cached_rate(id, secrets, 2, seconds));

    /* Uncached: empty the cache, then validate each distinct token once. */
    start = st_time_mono_ns();
    long misses = 0;
    while (misses < issued || seconds_since(start) < seconds) {
        st_token_cache_clear(id->cache);
        for (int i = 0; i < issued; i++) {
            struct st_token *t = NULL;
            if (st_identity_validate(id, secrets[i], &t, &err) < 0)
                die("uncached validation", err);
            st_token_free(t);
        }
        misses += issued;
    }
    double miss_s = seconds_since(start);
    printf("uncached validations:    %8.0f /s  (1 thread, store read + parse)\n", misses / miss_s);

    for (int i = 0; i < TOKENS; i++)
        free(secrets[i]);
    st_identity_free(id);
    st_kv_close(kv);
    nftw(dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
    return 0;
}
