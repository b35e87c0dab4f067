/* bench_store_put: how fast the store takes durable writes, measured against
 * the floor it is built on. In one run, on fresh database files in one
 * directory, with the same pragmas (WAL, synchronous=FULL), the same keys
 * ("/servers/<uuid>") and the same ~200-byte JSON values:
 *   - raw SQLite: one INSERT per transaction (autocommit) into a
 *     key/value table, from 1 thread and from T threads (each with its own
 *     connection, and sharing one connection behind a mutex);
 *   - st_kv_put of new keys, from 1 thread and from T threads;
 *   - with -u URL, st_kv_put on that store too (etcd://...: the same keys
 *     under a prefix per run, so that every run writes new keys).
 * Prints puts/s, per-put latency and the ratio store / raw.
 *
 *   bench_store_put [-n puts] [-t threads] [-r runs] [-d dir] [-u url]
 * Defaults: 2000 puts per case (or $ST_BENCH_PUTS), 4 threads, 3 runs per
 * case (the median run is shown), the current directory. */
#include <errno.h>
#include <getopt.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "lib/cleanup.h"
#include "lib/err.h"
#include "lib/times.h"
#include "lib/uuid.h"
#include "store/kv.h"

#define VALUE_SIZE 200

struct workload {
    int puts;
    char **keys;
    char **values;
    size_t *lens;
};

enum bench_kind {
    RAW_OWN,    /* raw INSERTs, a connection per thread */
    RAW_SHARED, /* raw INSERTs, one connection behind a mutex */
    STORE,      /* st_kv_put */
    STORE_URL,  /* st_kv_put on the -u store */
};

struct bench {
    enum bench_kind kind;
    const struct workload *w;
    int threads;
    /* per run */
    sqlite3 *shared;
    sqlite3_stmt *shared_insert;
    pthread_mutex_t mu;
    struct st_kv *kv;
    const char *path;
    int run;
    int64_t *lat_ns;
    int errors;
};

struct worker {
    struct bench *b;
    int first, count;
    sqlite3 *own; /* RAW_OWN: opened before the clock starts */
    sqlite3_stmt *own_insert;
};

struct result {
    double puts_per_s;
    double p50_us, p99_us;
};

static void die(const char *what, const char *detail)
{
    fprintf(stderr, "bench_store_put: %s: %s\n", what, detail);
    exit(1);
}

static void make_workload(struct workload *w, int puts)
{
    w->puts = puts;
    w->keys = st_new0(char *, puts);
    w->values = st_new0(char *, puts);
    w->lens = st_new0(size_t, puts);
    for (int i = 0; i < puts; i++) {
        char id[ST_UUID_LEN], project[ST_HEX32_LEN], ts[ST_TIME_RFC3339_LEN];
        st_uuid_new(id);
        st_uuid_hex32(project);
        st_time_rfc3339_ms(st_time_now_ms(), ts, sizeof(ts));
        w->keys[i] = st_sprintf("/servers/%s", id);
        char *v = st_sprintf("{\"id\":\"%s\",\"name\":\"server-%06d\",\"project_id\":\"%s\","
                             "\"created_at\":\"%s\",\"spec\":{\"flavor\":\"m1.small\"},"
                             "\"status\":{\"state\":\"ACTIVE\"},\"pad\":\"",
                             id, i, project, ts);
        size_t n = strlen(v);
        char *full = st_xcalloc(VALUE_SIZE + 1, 1);
        memcpy(full, v, n < VALUE_SIZE ? n : VALUE_SIZE);
        for (size_t j = n; j + 2 < VALUE_SIZE; j++)
            full[j] = 'x';
        strcpy(full + VALUE_SIZE - 2, "\"}");
        free(v);
        w->values[i] = full;
        w->lens[i] = VALUE_SIZE;
    }
}

static void free_workload(struct workload *w)
{
    for (int i = 0; i < w->puts; i++) {
        free(w->keys[i]);
        free(w->values[i]);
    }
    free(w->keys);
    free(w->values);
    free(w->lens);
}

/* The same pragmas the store sets (see src/store/kv_sqlite.c). */
static sqlite3 *raw_open(const char *path, bool create)
{
    sqlite3 *db = NULL;
    if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX,
                        NULL) != SQLITE_OK)
        die(path, sqlite3_errmsg(db));
    sqlite3_busy_timeout(db, 10000);
    const char *setup = "PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL;";
    if (sqlite3_exec(db, setup, NULL, NULL, NULL) != SQLITE_OK)
        die("pragmas", sqlite3_errmsg(db));
    if (create && sqlite3_exec(db,
                               "CREATE TABLE kv (key TEXT PRIMARY KEY NOT NULL, value BLOB NOT "
                               "NULL) WITHOUT ROWID",
                               NULL, NULL, NULL) != SQLITE_OK)
        die("create table", sqlite3_errmsg(db));
    return db;
}

static sqlite3_stmt *raw_prepare(sqlite3 *db)
{
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(db, "INSERT INTO kv (key, value) VALUES (?1, ?2)", -1, &st, NULL) !=
        SQLITE_OK)
        die("prepare", sqlite3_errmsg(db));
    return st;
}

static int raw_insert(sqlite3_stmt *st, const struct workload *w, int i)
{
    sqlite3_bind_text(st, 1, w->keys[i], -1, SQLITE_STATIC);
    sqlite3_bind_blob(st, 2, w->values[i], (int)w->lens[i], SQLITE_STATIC);
    int rc = sqlite3_step(st);
    sqlite3_reset(st);
    return rc == SQLITE_DONE ? 0 : -1;
}

static void *worker_main(void *arg)
{
    struct worker *wk = arg;
    struct bench *b = wk->b;
    const struct workload *w = b->w;
    for (int i = wk->first; i < wk->first + wk->count; i++) {
        int64_t t0 = st_time_mono_ns();
        int r;
        if (b->kind == RAW_OWN) {
            r = raw_insert(wk->own_insert, w, i);
        } else if (b->kind == RAW_SHARED) {
            pthread_mutex_lock(&b->mu);
            r = raw_insert(b->shared_insert, w, i);
            pthread_mutex_unlock(&b->mu);
        } else {
            st_autoptr(st_err) err = NULL;
            char key[128];
            snprintf(key, sizeof(key), "/bench/%d-%d%s", b->threads, b->run, w->keys[i]);
            r = st_kv_put(b->kv, b->kind == STORE_URL ? key : w->keys[i], w->values[i], w->lens[i],
                          ST_KV_ABSENT, NULL, &err);
            if (r < 0)
                fprintf(stderr, "bench_store_put: %s\n", st_err_msg(err));
        }
        if (r < 0)
            __atomic_add_fetch(&b->errors, 1, __ATOMIC_RELAXED);
        b->lat_ns[i] = st_time_mono_ns() - t0;
    }
    return NULL;
}

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

static void remove_db(const char *path)
{
    const char *suffixes[] = {"", "-wal", "-shm"};
    for (size_t i = 0; i < ST_ARRAY_SIZE(suffixes); i++) {
        st_autofree char *p = st_sprintf("%s%s", path, suffixes[i]);
        unlink(p);
    }
}

static struct result run_once(enum bench_kind kind, const struct workload *w, int threads,
                              const char *dir, const char *url, int run)
{
    static const char *const names[] = {"raw-own", "raw-shared", "store", "store-url"};
    st_autofree char *path = st_sprintf("%s/bench-%s-%d-%d.db", dir, names[kind], threads, run);
    remove_db(path);
    struct bench b = {.kind = kind, .w = w, .threads = threads, .path = path, .run = run};
    b.lat_ns = st_new0(int64_t, w->puts);
    pthread_mutex_init(&b.mu, NULL);
    if (kind == STORE || kind == STORE_URL) {
        st_autoptr(st_err) err = NULL;
        if (st_kv_open(kind == STORE_URL ? url : path, NULL, &b.kv, &err) < 0)
            die("st_kv_open", st_err_msg(err));
    } else {
        /* create the table first, so that the timed part is inserts only */
        b.shared = raw_open(path, true);
        b.shared_insert = raw_prepare(b.shared);
    }

    struct worker *wk = st_new0(struct worker, threads);
    pthread_t *t = st_new0(pthread_t, threads);
    int per = w->puts / threads;
    for (int i = 0; i < threads; i++) {
        wk[i] = (struct worker){.b = &b, .first = i * per, .count = per};
        if (i == threads - 1)
            wk[i].count = w->puts - i * per;
        if (kind == RAW_OWN) {
            wk[i].own = raw_open(path, false);
            wk[i].own_insert = raw_prepare(wk[i].own);
        }
    }
    int64_t t0 = st_time_mono_ns();
    for (int i = 0; i < threads; i++) {
        if (pthread_create(&t[i], NULL, worker_main, &wk[i]) != 0)
            die("pthread_create", strerror(errno));
    }
    for (int i = 0; i < threads; i++)
        pthread_join(t[i], NULL);
    double secs = (double)(st_time_mono_ns() - t0) / 1e9;
    if (b.errors)
        die(names[kind], "some writes failed");

    qsort(b.lat_ns, (size_t)w->puts, sizeof(int64_t), cmp_i64);
    struct result res = {
        .puts_per_s = w->puts / secs,
        .p50_us = (double)b.lat_ns[w->puts / 2] / 1e3,
        .p99_us = (double)b.lat_ns[(size_t)((double)w->puts * 0.99)] / 1e3,
    };
    for (int i = 0; i < threads; i++) {
        sqlite3_finalize(wk[i].own_insert);
        sqlite3_close(wk[i].own);
    }
    st_kv_close(b.kv);
    sqlite3_finalize(b.shared_insert);
    sqlite3_close(b.shared);
    pthread_mutex_destroy(&b.mu);
    remove_db(path);
    free(b.lat_ns);
    free(wk);
    free(t);
    return res;
}

static int cmp_result(const void *a, const void *b)
{
    double x = ((const struct result *)a)->puts_per_s, y = ((const struct result *)b)->puts_per_s;
    return (x > y) - (x < y);
}

/* Runs a case `runs` times and keeps the median run. The cases take turns
 * run by run (not all runs of one case, then the next), so that a slow
 * patch of the disk does not land on one case only. */
struct bench_case {
    const char *label;
    enum bench_kind kind;
    int threads;
    struct result runs[16];
    struct result median;
};

static void print_row(const struct bench_case *c, double raw)
{
    printf("%-40s %7d %10.0f %9.0f %9.0f", c->label, c->threads, c->median.puts_per_s,
           c->median.p50_us, c->median.p99_us);
    if (raw > 0)
        printf(" %9.2f\n", c->median.puts_per_s / raw);
    else
        printf(" %9s\n", "-");
}

int main(int argc, char **argv)
{
    int puts = 2000, threads = 4, runs = 3;
    const char *dir = ".";
    const char *url = NULL;
    const char *env = getenv("ST_BENCH_PUTS");
    if (env && atoi(env) > 0)
        puts = atoi(env);
    int opt;
    while ((opt = getopt(argc, argv, "n:t:r:d:u:h")) != -1) {
        switch (opt) {
        case 'n':
            puts = atoi(optarg);
            break;
        case 't':
            threads = atoi(optarg);
            break;
        case 'r':
            runs = atoi(optarg);
            break;
        case 'd':
            dir = optarg;
            break;
        case 'u':
            url = optarg;
            break;
        default:
            fprintf(stderr, "usage: %s [-n puts] [-t threads] [-r runs] [-d dir] [-u url]\n",
                    argv[0]);
            return opt == 'h' ? 0 : 2;
        }
    }
    if (puts < 10 || threads < 1 || threads > 64 || runs < 1 || runs > 16) {
        fprintf(stderr, "bench_store_put: need -n >= 10, 1 <= -t <= 64, 1 <= -r <= 16\n");
        return 2;
    }

    struct workload w;
    make_workload(&w, puts);
    struct bench_case cases[] = {
        {.label = "raw INSERT (autocommit)", .kind = RAW_OWN, .threads = 1},
        {.label = "st_kv_put", .kind = STORE, .threads = 1},
        {.label = "raw INSERT, a connection per thread", .kind = RAW_OWN, .threads = threads},
        {.label = "raw INSERT, one connection + mutex", .kind = RAW_SHARED, .threads = threads},
        {.label = "st_kv_put", .kind = STORE, .threads = threads},
        {.label = "st_kv_put, the -u store", .kind = STORE_URL, .threads = 1},
        {.label = "st_kv_put, the -u store", .kind = STORE_URL, .threads = threads},
    };
    size_t n_cases = url ? ST_ARRAY_SIZE(cases) : ST_ARRAY_SIZE(cases) - 2;
    for (int r = 0; r < runs; r++)
        for (size_t i = 0; i < n_cases; i++)
            cases[i].runs[r] = run_once(cases[i].kind, &w, cases[i].threads, dir, url, r);
    for (size_t i = 0; i < n_cases; i++) {
        qsort(cases[i].runs, (size_t)runs, sizeof(struct result), cmp_result);
        cases[i].median = cases[i].runs[runs / 2];
    }

    printf("bench_store_put: %d puts per case, %d-byte values, median of %d runs\n", puts,
           VALUE_SIZE, runs);
    printf("sqlite %s, journal_mode=WAL, synchronous=FULL, dir %s\n\n", sqlite3_libversion(), dir);
    printf("%-40s %7s %10s %9s %9s %9s\n", "case", "threads", "puts/s", "p50 us", "p99 us",
           "store/raw");
    double raw1 = cases[0].median.puts_per_s;
    double rawn = cases[2].median.puts_per_s > cases[3].median.puts_per_s
                      ? cases[2].median.puts_per_s
                      : cases[3].median.puts_per_s;
    print_row(&cases[0], 0);
    print_row(&cases[1], raw1);
    print_row(&cases[2], 0);
    print_row(&cases[3], 0);
    print_row(&cases[4], rawn);
    if (url) {
        printf("\n-u %s (store/raw: against st_kv_put on SQLite)\n", url);
        print_row(&cases[5], cases[1].median.puts_per_s);
        print_row(&cases[6], cases[4].median.puts_per_s);
    }
    printf("\n(store/raw with %d threads is against the faster raw variant)\n", threads);
    free_workload(&w);
    return 0;
}
