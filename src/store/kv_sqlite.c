/* The SQLite store backend: one database file in WAL mode with
 * synchronous=FULL, so a write is durable (kill -9, power loss) once its
 * COMMIT returns. Keys live in `kv`; every write also appends to `events`
 * (what watchers read) one row per key written, tagged with its revision: a
 * transaction's rows share one; `meta` remembers up to which revision
 * history has been compacted. The current revision is max(last event,
 * compaction mark), so no counter row is rewritten per write.
 *
 * Writes: one connection, owned by whichever writer thread is the "leader".
 * Writers queue their operation; the leader takes everything queued and
 * applies it in one transaction (group commit), so concurrent writers share
 * one fsync while each still returns only after its own write is durable.
 * A lone writer pays BEGIN IMMEDIATE, one state read, two inserts, COMMIT.
 * A transaction (st_kv_txn) is one queued operation like a put: its
 * compares and writes run inside the same SQLite transaction, so it is
 * atomic, durable and all or nothing after a crash for free.
 *
 * Reads: a small pool of read-only connections; WAL lets them run alongside
 * the writer, and a read transaction gives list and watch one snapshot (the
 * revision and the rows agree). Watchers block on a condition variable that
 * the leader signals after each commit. One process should own a store file:
 * another process's writes are safe but wake this one's watchers only at
 * their next call. */
#include "kv-priv.h"

#include <errno.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "lib/cleanup.h"
#include "lib/files.h"
#include "lib/log.h"

#define BUSY_TIMEOUT_MS   10000
#define READERS_MAX       8
#define BATCH_MAX         128
#define COMPACT_EVERY_MAX 1000

/* Event types as stored (independent of the C enum's values). */
#define EV_PUT    0
#define EV_DELETE 1

/* Schema migrations: migrations[i] takes PRAGMA user_version from i to i + 1.
 * Append only; never edit an entry that has shipped. */
static const char *const migrations[] = {
    /* 1: keys, the event history and the compaction mark */
    "CREATE TABLE kv (\n"
    "    key TEXT PRIMARY KEY NOT NULL,\n"
    "    value BLOB NOT NULL,\n"
    "    create_rev INTEGER NOT NULL,\n"
    "    mod_rev INTEGER NOT NULL,\n"
    "    version INTEGER NOT NULL\n"
    ") WITHOUT ROWID;\n"
    "CREATE TABLE events (\n"
    "    rev INTEGER PRIMARY KEY,\n"
    "    type INTEGER NOT NULL,\n" /* EV_PUT or EV_DELETE */
    "    key TEXT NOT NULL,\n"
    "    value BLOB,\n"
    "    create_rev INTEGER NOT NULL,\n"
    "    version INTEGER NOT NULL\n"
    ");\n"
    "CREATE TABLE meta (\n"
    "    id INTEGER PRIMARY KEY CHECK (id = 1),\n"
    "    compacted_rev INTEGER NOT NULL\n"
    ");\n"
    "INSERT INTO meta (id, compacted_rev) VALUES (1, 0);\n",
    /* 2: several events per revision (transactions): the events' own order
     * (seq) becomes the rowid, the revision an indexed column */
    "CREATE TABLE events_v2 (\n"
    "    seq INTEGER PRIMARY KEY,\n"
    "    rev INTEGER NOT NULL,\n"
    "    type INTEGER NOT NULL,\n"
    "    key TEXT NOT NULL,\n"
    "    value BLOB,\n"
    "    create_rev INTEGER NOT NULL,\n"
    "    version INTEGER NOT NULL\n"
    ");\n"
    "INSERT INTO events_v2 (seq, rev, type, key, value, create_rev, version)\n"
    "    SELECT rev, rev, type, key, value, create_rev, version FROM events ORDER BY rev;\n"
    "DROP TABLE events;\n"
    "ALTER TABLE events_v2 RENAME TO events;\n"
    "CREATE INDEX events_rev ON events (rev);\n",
};

/* Keys are TEXT with the default BINARY collation: compared with memcmp, so
 * byte order, and bytes are stored as given (no UTF-8 check). A prefix range
 * is key >= prefix AND key < prefix_end; with no prefix_end the upper bound
 * is bound as an empty BLOB, which sorts after every TEXT value. */
enum {
    W_BEGIN,
    W_COMMIT,
    W_ROLLBACK,
    W_STATE,
    W_PUT,
    W_DELETE,
    W_EVENT,
    W_COMPACT_EVENTS,
    W_COMPACT_MARK,
    W_COUNT,
};

static const char *const write_sql[W_COUNT] = {
    [W_BEGIN] = "BEGIN IMMEDIATE",
    [W_COMMIT] = "COMMIT",
    [W_ROLLBACK] = "ROLLBACK",
    /* The revision, the compaction mark and the key's state in one step;
     * with ?1 NULL just the first two. */
    [W_STATE] = "SELECT (SELECT coalesce(max(rev), 0) FROM events), meta.compacted_rev,"
                " kv.mod_rev, kv.create_rev, kv.version"
                " FROM meta LEFT JOIN kv ON kv.key = ?1 WHERE meta.id = 1",
    [W_PUT] = "INSERT INTO kv (key, value, create_rev, mod_rev, version)"
              " VALUES (?1, ?2, ?3, ?4, ?5) ON CONFLICT (key) DO UPDATE"
              " SET value = excluded.value, mod_rev = excluded.mod_rev,"
              " version = excluded.version",
    [W_DELETE] = "DELETE FROM kv WHERE key = ?1",
    /* seq: one more than the last row's (SQLite's rowid), so a revision's
     * events keep the order of its operations */
    [W_EVENT] = "INSERT INTO events (rev, type, key, value, create_rev, version)"
                " VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
    [W_COMPACT_EVENTS] = "DELETE FROM events WHERE rev <= ?1",
    [W_COMPACT_MARK] = "UPDATE meta SET compacted_rev = ?1 WHERE id = 1 AND compacted_rev < ?1",
};

enum {
    R_BEGIN,
    R_COMMIT,
    R_REVISION,
    R_GET,
    R_LIST_FROM,
    R_LIST_AFTER,
    R_EVENTS,
    R_COUNT,
};

static const char *const read_sql[R_COUNT] = {
    [R_BEGIN] = "BEGIN",
    [R_COMMIT] = "COMMIT",
    [R_REVISION] = "SELECT (SELECT coalesce(max(rev), 0) FROM events), compacted_rev"
                   " FROM meta WHERE id = 1",
    [R_GET] = "SELECT value, create_rev, mod_rev, version FROM kv WHERE key = ?1",
    [R_LIST_FROM] = "SELECT key, value, create_rev, mod_rev, version FROM kv"
                    " WHERE key >= ?1 AND key < ?2 ORDER BY key LIMIT ?3",
    [R_LIST_AFTER] = "SELECT key, value, create_rev, mod_rev, version FROM kv"
                     " WHERE key > ?1 AND key < ?2 ORDER BY key LIMIT ?3",
    [R_EVENTS] = "SELECT rev, type, key, value, create_rev, version FROM events"
                 " WHERE rev > ?1 AND key >= ?2 AND key < ?3 ORDER BY rev, seq",
};

struct reader {
    sqlite3 *db;
    sqlite3_stmt *stmt[R_COUNT];
    struct reader *next;
};

enum op_kind {
    OP_PUT,
    OP_DELETE,
    OP_COMPACT,
    OP_TXN,
};

/* One queued write. Lives on the submitting thread's stack; the leader fills
 * in the result and sets done under queue_mu. */
struct write_op {
    enum op_kind kind;
    const char *key;
    size_t key_len;
    const void *value;
    size_t value_len;
    int64_t expect;               /* the condition; for OP_COMPACT the revision */
    const struct st_kv_cmp *cmps; /* OP_TXN */
    size_t n_cmps;
    const struct st_kv_op *ops;
    size_t n_ops;
    int r;
    int64_t rev;
    struct st_err *err;
    bool done;
    struct write_op *next;
};

struct st_kv_sqlite {
    char *path;
    int64_t history;
    int64_t compact_every;

    /* the write side: wdb and wstmt belong to the current leader */
    sqlite3 *wdb;
    sqlite3_stmt *wstmt[W_COUNT];
    pthread_mutex_t queue_mu;
    pthread_cond_t queue_cond;
    struct write_op *queue_head, *queue_tail;
    bool leader;

    pthread_mutex_t pool_mu;
    pthread_cond_t pool_cond;
    struct reader *idle;
    int readers;

    /* watchers: notify_rev is the last revision committed by this process */
    pthread_mutex_t notify_mu;
    pthread_cond_t notify_cond;
    int64_t notify_rev;
    bool woken;
};

/* ---- errors ---------------------------------------------------------- */

static int errno_from_sqlite(sqlite3 *db, int rc)
{
    switch (rc & 0xff) {
    case SQLITE_NOMEM:
        abort();
    case SQLITE_BUSY:
    case SQLITE_LOCKED:
        return -EBUSY;
    case SQLITE_FULL:
        return -ENOSPC;
    case SQLITE_READONLY:
        return -EROFS;
    case SQLITE_PERM:
    case SQLITE_AUTH:
        return -EACCES;
    case SQLITE_TOOBIG:
        return -EFBIG;
    case SQLITE_CORRUPT:
    case SQLITE_NOTADB:
        return -EBADMSG;
    case SQLITE_CANTOPEN: {
        int e = db ? sqlite3_system_errno(db) : 0;
        return e > 0 ? -e : -ENOENT;
    }
    default:
        return -EIO;
    }
}

static int sqlite_fail(struct st_err **err, sqlite3 *db, int rc, const char *what)
{
    return st_err_set(err, errno_from_sqlite(db, rc), "%s: %s", what,
                      db ? sqlite3_errmsg(db) : sqlite3_errstr(rc));
}

/* Runs a statement that returns no rows, then resets it. */
static int step_done(sqlite3 *db, sqlite3_stmt *st, const char *what, struct st_err **err)
{
    int rc = sqlite3_step(st);
    int r = rc == SQLITE_DONE ? 0 : sqlite_fail(err, db, rc, what);
    sqlite3_reset(st);
    return r;
}

static int exec(sqlite3 *db, const char *sql, struct st_err **err)
{
    int rc = sqlite3_exec(db, sql, NULL, NULL, NULL);
    if (rc != SQLITE_OK)
        return sqlite_fail(err, db, rc, sql);
    return 0;
}

/* ---- rows into entries --------------------------------------------- */

/* A NUL-terminated copy of a TEXT or BLOB column (never NULL). */
static char *column_dup(sqlite3_stmt *st, int col, size_t *ret_len)
{
    const void *p = sqlite3_column_blob(st, col);
    size_t n = (size_t)sqlite3_column_bytes(st, col);
    char *s = st_xcalloc(n + 1, 1);
    if (n)
        memcpy(s, p, n);
    if (ret_len)
        *ret_len = n;
    return s;
}

static void bind_key(sqlite3_stmt *st, int i, const char *key, size_t len)
{
    sqlite3_bind_text(st, i, key, (int)len, SQLITE_STATIC);
}

/* The upper bound of a prefix range (see the comment above the statements). */
static void bind_prefix_end(sqlite3_stmt *st, int i, const char *end, size_t len)
{
    if (end)
        sqlite3_bind_text(st, i, end, (int)len, SQLITE_STATIC);
    else
        sqlite3_bind_zeroblob(st, i, 0);
}

/* ---- connections ---------------------------------------------------- */

static int db_connect(const char *path, int flags, sqlite3 **ret, struct st_err **err)
{
    sqlite3 *db = NULL;
    int rc = sqlite3_open_v2(path, &db, flags | SQLITE_OPEN_NOMUTEX, NULL);
    if (rc != SQLITE_OK) {
        int r = errno_from_sqlite(db, rc);
        if ((rc & 0xff) == SQLITE_CANTOPEN)
            st_err_set(err, r, "cannot open the database file: %s", strerror(-r));
        else
            sqlite_fail(err, db, rc, "open");
        sqlite3_close(db);
        return r;
    }
    sqlite3_extended_result_codes(db, 1);
    sqlite3_busy_timeout(db, BUSY_TIMEOUT_MS);
    *ret = db;
    return 0;
}

static int prepare_all(sqlite3 *db, const char *const *sql, sqlite3_stmt **stmt, size_t n,
                       struct st_err **err)
{
    for (size_t i = 0; i < n; i++) {
        int rc = sqlite3_prepare_v3(db, sql[i], -1, SQLITE_PREPARE_PERSISTENT, &stmt[i], NULL);
        if (rc != SQLITE_OK)
            return sqlite_fail(err, db, rc, sql[i]);
    }
    return 0;
}

static void finalize_all(sqlite3_stmt **stmt, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        sqlite3_finalize(stmt[i]);
        stmt[i] = NULL;
    }
}

static void reader_free(struct reader *rd)
{
    if (!rd)
        return;
    finalize_all(rd->stmt, R_COUNT);
    sqlite3_close(rd->db);
    free(rd);
}

static int reader_open(struct st_kv_sqlite *s, struct reader **ret, struct st_err **err)
{
    struct reader *rd = st_new0(struct reader, 1);
    int r = db_connect(s->path, SQLITE_OPEN_READWRITE, &rd->db, err);
    if (r >= 0)
        r = exec(rd->db, "PRAGMA query_only = 1", err);
    if (r >= 0)
        r = prepare_all(rd->db, read_sql, rd->stmt, R_COUNT, err);
    if (r < 0) {
        reader_free(rd);
        return st_err_prefix(err, r, "opening a read connection");
    }
    *ret = rd;
    return 0;
}

/* Takes an idle read connection, opens one while under READERS_MAX, or
 * waits for one to come back. */
static int reader_acquire(struct st_kv_sqlite *s, struct reader **ret, struct st_err **err)
{
    pthread_mutex_lock(&s->pool_mu);
    while (!s->idle && s->readers >= READERS_MAX)
        pthread_cond_wait(&s->pool_cond, &s->pool_mu);
    if (s->idle) {
        *ret = s->idle;
        s->idle = s->idle->next;
        pthread_mutex_unlock(&s->pool_mu);
        return 0;
    }
    s->readers++;
    pthread_mutex_unlock(&s->pool_mu);

    int r = reader_open(s, ret, err);
    if (r < 0) {
        pthread_mutex_lock(&s->pool_mu);
        s->readers--;
        pthread_cond_signal(&s->pool_cond);
        pthread_mutex_unlock(&s->pool_mu);
    }
    return r;
}

static void reader_release(struct st_kv_sqlite *s, struct reader *rd)
{
    /* an error path may have left a read transaction open */
    if (!sqlite3_get_autocommit(rd->db))
        sqlite3_exec(rd->db, "ROLLBACK", NULL, NULL, NULL);
    pthread_mutex_lock(&s->pool_mu);
    rd->next = s->idle;
    s->idle = rd;
    pthread_cond_signal(&s->pool_cond);
    pthread_mutex_unlock(&s->pool_mu);
}

/* Reads the current revision and compaction mark inside rd's transaction
 * (or as its own statement outside one). */
static int read_revision(struct reader *rd, int64_t *ret_rev, int64_t *ret_compacted,
                         struct st_err **err)
{
    sqlite3_stmt *st = rd->stmt[R_REVISION];
    int rc = sqlite3_step(st);
    int r = 0;
    if (rc == SQLITE_ROW) {
        int64_t last = sqlite3_column_int64(st, 0);
        int64_t compacted = sqlite3_column_int64(st, 1);
        *ret_rev = last > compacted ? last : compacted;
        if (ret_compacted)
            *ret_compacted = compacted;
    } else if (rc == SQLITE_DONE) {
        r = st_err_set(err, -EBADMSG, "reading the revision: the meta row is missing");
    } else {
        r = sqlite_fail(err, rd->db, rc, "reading the revision");
    }
    sqlite3_reset(st);
    return r;
}

/* ---- open, migrate, close ------------------------------------------ */

static int migrate(sqlite3 *db, struct st_err **err)
{
    int r = exec(db, "BEGIN IMMEDIATE", err);
    if (r < 0)
        return r;
    sqlite3_stmt *st = NULL;
    int rc = sqlite3_prepare_v2(db, "PRAGMA user_version", -1, &st, NULL);
    if (rc != SQLITE_OK || sqlite3_step(st) != SQLITE_ROW) {
        r = sqlite_fail(err, db, rc != SQLITE_OK ? rc : sqlite3_errcode(db),
                        "reading the schema version");
        sqlite3_finalize(st);
        goto fail;
    }
    int version = sqlite3_column_int(st, 0);
    sqlite3_finalize(st);

    int latest = (int)ST_ARRAY_SIZE(migrations);
    if (version > latest) {
        r = st_err_set(err, -EPROTO,
                       "schema version %d is newer than this build understands (%d); "
                       "upgrade stratos",
                       version, latest);
        goto fail;
    }
    if (version == latest) {
        exec(db, "ROLLBACK", NULL);
        return 0;
    }
    for (int v = version; v < latest; v++) {
        r = exec(db, migrations[v], err);
        if (r < 0) {
            st_err_prefix(err, r, "migrating the schema to version %d", v + 1);
            goto fail;
        }
    }
    char set_version[64];
    snprintf(set_version, sizeof(set_version), "PRAGMA user_version = %d", latest);
    r = exec(db, set_version, err);
    if (r >= 0)
        r = exec(db, "COMMIT", err);
    if (r < 0)
        goto fail;
    if (version == 0)
        st_log_debug("store_created", "schema=%d", latest);
    else
        st_log_info("store_migrated", "from=%d to=%d", version, latest);
    return 0;
fail:
    if (!sqlite3_get_autocommit(db))
        exec(db, "ROLLBACK", NULL);
    return r;
}

static void sqlite_close(void *impl);

static int sqlite_open(const char *location, const struct st_kv_options *opts, void **ret_impl,
                       struct st_err **err)
{
    struct st_kv_sqlite *s = st_new0(struct st_kv_sqlite, 1);
    s->history = opts->history;
    s->compact_every = s->history / 10;
    if (s->compact_every < 1)
        s->compact_every = 1;
    if (s->compact_every > COMPACT_EVERY_MAX)
        s->compact_every = COMPACT_EVERY_MAX;
    pthread_mutex_init(&s->queue_mu, NULL);
    pthread_cond_init(&s->queue_cond, NULL);
    pthread_mutex_init(&s->pool_mu, NULL);
    pthread_cond_init(&s->pool_cond, NULL);
    pthread_mutex_init(&s->notify_mu, NULL);
    pthread_condattr_t attr;
    pthread_condattr_init(&attr);
    pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
    pthread_cond_init(&s->notify_cond, &attr);
    pthread_condattr_destroy(&attr);

    struct stat sb;
    bool created = stat(location, &sb) < 0 && errno == ENOENT;

    int r = db_connect(location, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, &s->wdb, err);
    if (r < 0)
        goto fail;
    /* Readers reopen by absolute path: the process may chdir later. */
    s->path = st_strdup(sqlite3_db_filename(s->wdb, "main"));

    sqlite3_stmt *st = NULL;
    int rc = sqlite3_prepare_v2(s->wdb, "PRAGMA journal_mode = WAL", -1, &st, NULL);
    if (rc == SQLITE_OK)
        rc = sqlite3_step(st);
    if (rc != SQLITE_ROW) {
        r = sqlite_fail(err, s->wdb, rc, "enabling WAL mode");
        sqlite3_finalize(st);
        goto fail;
    }
    const char *mode = (const char *)sqlite3_column_text(st, 0);
    if (!mode || strcasecmp(mode, "wal") != 0) {
        r = st_err_set(err, -EIO, "enabling WAL mode: the journal mode stays '%s'",
                       mode ? mode : "?");
        sqlite3_finalize(st);
        goto fail;
    }
    sqlite3_finalize(st);
    r = exec(s->wdb, "PRAGMA synchronous = FULL", err);
    if (r < 0)
        goto fail;
    r = migrate(s->wdb, err);
    if (r < 0)
        goto fail;
    r = prepare_all(s->wdb, write_sql, s->wstmt, W_COUNT, err);
    if (r < 0)
        goto fail;
    /* A new file's directory entry must be durable too. */
    if (created) {
        r = st_fsync_parent(s->path, err);
        if (r < 0)
            goto fail;
    }

    struct reader *rd;
    r = reader_acquire(s, &rd, err);
    if (r < 0)
        goto fail;
    r = read_revision(rd, &s->notify_rev, NULL, err);
    reader_release(s, rd);
    if (r < 0)
        goto fail;
    *ret_impl = s;
    return 0;
fail:
    sqlite_close(s);
    return r;
}

static void sqlite_close(void *impl)
{
    struct st_kv_sqlite *s = impl;
    if (!s)
        return;
    while (s->idle) {
        struct reader *rd = s->idle;
        s->idle = rd->next;
        reader_free(rd);
    }
    finalize_all(s->wstmt, W_COUNT);
    /* the last connection to close checkpoints and removes the WAL */
    sqlite3_close(s->wdb);
    pthread_mutex_destroy(&s->queue_mu);
    pthread_cond_destroy(&s->queue_cond);
    pthread_mutex_destroy(&s->pool_mu);
    pthread_cond_destroy(&s->pool_cond);
    pthread_mutex_destroy(&s->notify_mu);
    pthread_cond_destroy(&s->notify_cond);
    free(s->path);
    free(s);
}

/* ---- the write path ------------------------------------------------- */

struct key_state {
    int64_t rev; /* the store's current revision */
    int64_t compacted;
    bool exists;
    int64_t create_rev, mod_rev, version;
};

/* The store's revision and, with a key, that key's state. */
static int read_state(struct st_kv_sqlite *s, const char *key, size_t key_len, struct key_state *ks,
                      struct st_err **err)
{
    sqlite3_stmt *st = s->wstmt[W_STATE];
    if (key)
        bind_key(st, 1, key, key_len);
    else
        sqlite3_bind_null(st, 1);
    int rc = sqlite3_step(st);
    int r = 0;
    if (rc == SQLITE_ROW) {
        int64_t last = sqlite3_column_int64(st, 0);
        ks->compacted = sqlite3_column_int64(st, 1);
        ks->rev = last > ks->compacted ? last : ks->compacted;
        ks->exists = sqlite3_column_type(st, 2) != SQLITE_NULL;
        ks->mod_rev = sqlite3_column_int64(st, 2);
        ks->create_rev = sqlite3_column_int64(st, 3);
        ks->version = sqlite3_column_int64(st, 4);
    } else if (rc == SQLITE_DONE) {
        r = st_err_set(err, -EBADMSG, "reading the revision: the meta row is missing");
    } else {
        r = sqlite_fail(err, s->wdb, rc, "reading the key's state");
    }
    sqlite3_reset(st);
    return r;
}

/* The compare-and-swap of key against expect: 0, or -ECANCELED with the
 * reason in *err. */
static int compare(const char *key, int64_t expect, const struct key_state *ks, struct st_err **err)
{
    if (expect == ST_KV_ANY)
        return 0;
    if (expect == ST_KV_ABSENT) {
        if (!ks->exists)
            return 0;
        return st_err_set(err, -ECANCELED, "key " ST_KV_KEY_FMT " already exists (mod_rev %lld)",
                          ST_KV_KEY_ARG(key), (long long)ks->mod_rev);
    }
    if (!ks->exists)
        return st_err_set(err, -ECANCELED,
                          "key " ST_KV_KEY_FMT " no longer exists (expected mod_rev %lld)",
                          ST_KV_KEY_ARG(key), (long long)expect);
    if (ks->mod_rev != expect)
        return st_err_set(err, -ECANCELED,
                          "key " ST_KV_KEY_FMT " was modified: mod_rev is %lld, expected %lld",
                          ST_KV_KEY_ARG(key), (long long)ks->mod_rev, (long long)expect);
    return 0;
}

/* A put or delete's condition. Fills op->r/err and returns false when it
 * fails (nothing is written). */
static bool condition_holds(struct write_op *op, const struct key_state *ks)
{
    if (op->kind == OP_DELETE && !ks->exists) {
        op->r = st_err_set(&op->err, -ENOENT, "key " ST_KV_KEY_FMT " not found",
                           ST_KV_KEY_ARG(op->key));
        return false;
    }
    op->r = compare(op->key, op->expect, ks, &op->err);
    return op->r == 0;
}

static int compact_to(struct st_kv_sqlite *s, int64_t rev, struct st_err **err)
{
    sqlite3_stmt *st = s->wstmt[W_COMPACT_EVENTS];
    sqlite3_bind_int64(st, 1, rev);
    int r = step_done(s->wdb, st, "compacting events", err);
    if (r < 0)
        return r;
    st = s->wstmt[W_COMPACT_MARK];
    sqlite3_bind_int64(st, 1, rev);
    return step_done(s->wdb, st, "recording the compaction", err);
}

/* Writes (put: value != NULL) or deletes one key at revision rev, and its
 * event; ks is the key's state before. */
static int write_key(struct st_kv_sqlite *s, const char *key, size_t key_len, const void *value,
                     size_t value_len, const struct key_state *ks, int64_t rev, struct st_err **err)
{
    int64_t create_rev = ks->exists ? ks->create_rev : rev;
    int64_t version = ks->exists ? ks->version + 1 : 1;
    sqlite3_stmt *st;
    int r;
    if (value) {
        st = s->wstmt[W_PUT];
        bind_key(st, 1, key, key_len);
        sqlite3_bind_blob64(st, 2, value, value_len, SQLITE_STATIC);
        sqlite3_bind_int64(st, 3, create_rev);
        sqlite3_bind_int64(st, 4, rev);
        sqlite3_bind_int64(st, 5, version);
        r = step_done(s->wdb, st, "writing the key", err);
    } else {
        st = s->wstmt[W_DELETE];
        bind_key(st, 1, key, key_len);
        r = step_done(s->wdb, st, "deleting the key", err);
    }
    if (r < 0)
        return r;

    st = s->wstmt[W_EVENT];
    sqlite3_bind_int64(st, 1, rev);
    bind_key(st, 3, key, key_len);
    if (value) {
        sqlite3_bind_int(st, 2, EV_PUT);
        sqlite3_bind_blob64(st, 4, value, value_len, SQLITE_STATIC);
        sqlite3_bind_int64(st, 5, create_rev);
        sqlite3_bind_int64(st, 6, version);
    } else {
        sqlite3_bind_int(st, 2, EV_DELETE);
        sqlite3_bind_null(st, 4);
        sqlite3_bind_int64(st, 5, 0);
        sqlite3_bind_int64(st, 6, 0);
    }
    return step_done(s->wdb, st, "recording the event", err);
}

/* Automatic compaction, in the same transaction (no extra fsync), once
 * every compact_every revisions beyond the history to keep. */
static int compact_auto(struct st_kv_sqlite *s, int64_t rev, int64_t compacted, struct st_err **err)
{
    if (rev - compacted > s->history + s->compact_every)
        return compact_to(s, rev - s->history, err);
    return 0;
}

/* A transaction: every compare first, then the writes at one revision (a
 * delete of an absent key writes nothing). Refused as a whole (op->r) when
 * a compare fails. */
static int apply_txn(struct st_kv_sqlite *s, struct write_op *op, const struct key_state *store,
                     struct st_err **err)
{
    struct key_state ks;
    int r;
    for (size_t i = 0; i < op->n_cmps; i++) {
        const char *key = op->cmps[i].key;
        if ((r = read_state(s, key, strlen(key), &ks, err)) < 0)
            return r;
        op->r = compare(key, op->cmps[i].expect_mod_rev, &ks, &op->err);
        if (op->r < 0) {
            op->r = st_err_prefix(&op->err, op->r, "transaction compare %zu failed", i);
            return 0;
        }
    }
    int64_t rev = store->rev + 1;
    bool wrote = false;
    for (size_t i = 0; i < op->n_ops; i++) {
        const struct st_kv_op *o = &op->ops[i];
        size_t key_len = strlen(o->key);
        if ((r = read_state(s, o->key, key_len, &ks, err)) < 0)
            return r;
        if (o->type == ST_KV_OP_DELETE && !ks.exists)
            continue;
        const void *value = o->type == ST_KV_OP_PUT ? (o->value ? o->value : "") : NULL;
        if ((r = write_key(s, o->key, key_len, value, o->value_len, &ks, rev, err)) < 0)
            return r;
        wrote = true;
    }
    if (!wrote) {
        op->rev = store->rev;
        return 0;
    }
    if ((r = compact_auto(s, rev, store->compacted, err)) < 0)
        return r;
    op->rev = rev;
    return 0;
}

/* Applies one operation inside the leader's transaction. Returns < 0 only
 * for a database failure (the transaction must be abandoned); an operation
 * that is refused (condition, bad revision) gets its op->r and writes
 * nothing. */
static int apply(struct st_kv_sqlite *s, struct write_op *op, struct st_err **err)
{
    struct key_state ks = {0};
    op->r = 0;
    int r = read_state(s, op->key, op->key_len, &ks, err);
    if (r < 0)
        return r;

    if (op->kind == OP_COMPACT) {
        op->rev = ks.rev;
        if (op->expect > ks.rev) {
            op->r = st_err_set(&op->err, -EINVAL,
                               "compact to revision %lld: the store is at revision %lld",
                               (long long)op->expect, (long long)ks.rev);
            return 0;
        }
        if (op->expect <= ks.compacted)
            return 0;
        return compact_to(s, op->expect, err);
    }
    if (op->kind == OP_TXN)
        return apply_txn(s, op, &ks, err);

    if (!condition_holds(op, &ks))
        return 0;
    int64_t rev = ks.rev + 1;
    r = write_key(s, op->key, op->key_len, op->kind == OP_PUT ? op->value : NULL, op->value_len,
                  &ks, rev, err);
    if (r < 0)
        return r;
    if ((r = compact_auto(s, rev, ks.compacted, err)) < 0)
        return r;
    op->rev = rev;
    return 0;
}

static void rollback(struct st_kv_sqlite *s)
{
    if (!sqlite3_get_autocommit(s->wdb))
        step_done(s->wdb, s->wstmt[W_ROLLBACK], "rollback", NULL);
}

static void fail_ops(struct write_op **ops, size_t n, const struct st_err *cause)
{
    for (size_t i = 0; i < n; i++) {
        if (ops[i]->r < 0)
            continue;
        ops[i]->r = st_err_set(&ops[i]->err, cause->code, "%s", cause->msg);
    }
}

static void publish(struct st_kv_sqlite *s, int64_t rev)
{
    pthread_mutex_lock(&s->notify_mu);
    if (rev > s->notify_rev) {
        s->notify_rev = rev;
        pthread_cond_broadcast(&s->notify_cond);
    }
    pthread_mutex_unlock(&s->notify_mu);
}

/* Runs a batch in one transaction. When the database fails part-way through
 * a batch of several, each operation is retried alone so that the failure is
 * reported to the operation that caused it, not to its neighbours. */
static void run_batch(struct st_kv_sqlite *s, struct write_op **ops, size_t n)
{
    st_autoptr(st_err) err = NULL;
    for (size_t i = 0; i < n; i++)
        ops[i]->r = 1; /* not run */

    int r = step_done(s->wdb, s->wstmt[W_BEGIN], "starting a write", &err);
    if (r < 0) {
        fail_ops(ops, n, err);
        return;
    }
    for (size_t i = 0; i < n; i++) {
        r = apply(s, ops[i], &err);
        if (r < 0)
            break;
    }
    if (r < 0) {
        rollback(s);
        if (n == 1) {
            fail_ops(ops, n, err);
            return;
        }
        for (size_t i = 0; i < n; i++) {
            st_err_clear(&ops[i]->err);
            run_batch(s, &ops[i], 1);
        }
        return;
    }
    r = step_done(s->wdb, s->wstmt[W_COMMIT], "committing", &err);
    if (r < 0) {
        rollback(s);
        for (size_t i = 0; i < n; i++)
            if (ops[i]->r == 0)
                ops[i]->r = 1; /* its write is gone with the transaction */
        fail_ops(ops, n, err);
        return;
    }
    int64_t last = 0;
    for (size_t i = 0; i < n; i++)
        if (ops[i]->r == 0 && ops[i]->rev > last)
            last = ops[i]->rev;
    publish(s, last);
}

/* Queues op and waits until it is durable or refused. The first waiting
 * thread that finds no leader becomes it and runs everything queued. */
static int submit(struct st_kv_sqlite *s, struct write_op *op, struct st_err **err)
{
    struct write_op *batch[BATCH_MAX];
    pthread_mutex_lock(&s->queue_mu);
    if (s->queue_tail)
        s->queue_tail->next = op;
    else
        s->queue_head = op;
    s->queue_tail = op;
    while (!op->done) {
        if (s->leader) {
            pthread_cond_wait(&s->queue_cond, &s->queue_mu);
            continue;
        }
        size_t n = 0;
        while (s->queue_head && n < BATCH_MAX) {
            batch[n++] = s->queue_head;
            s->queue_head = s->queue_head->next;
        }
        if (!s->queue_head)
            s->queue_tail = NULL;
        s->leader = true;
        pthread_mutex_unlock(&s->queue_mu);

        run_batch(s, batch, n);

        pthread_mutex_lock(&s->queue_mu);
        for (size_t i = 0; i < n; i++)
            batch[i]->done = true;
        s->leader = false;
        pthread_cond_broadcast(&s->queue_cond);
    }
    pthread_mutex_unlock(&s->queue_mu);

    if (op->err) {
        if (err && !*err)
            *err = st_steal(&op->err);
        else
            st_err_clear(&op->err);
    }
    return op->r;
}

static int sqlite_put(void *impl, const char *key, const void *value, size_t value_len,
                      int64_t expect_mod_rev, int64_t *ret_rev, struct st_err **err)
{
    struct write_op op = {
        .kind = OP_PUT,
        .key = key,
        .key_len = strlen(key),
        .value = value,
        .value_len = value_len,
        .expect = expect_mod_rev,
    };
    int r = submit(impl, &op, err);
    if (r < 0)
        return r;
    if (ret_rev)
        *ret_rev = op.rev;
    return 0;
}

static int sqlite_delete(void *impl, const char *key, int64_t expect_mod_rev, int64_t *ret_rev,
                         struct st_err **err)
{
    struct write_op op = {
        .kind = OP_DELETE,
        .key = key,
        .key_len = strlen(key),
        .expect = expect_mod_rev,
    };
    int r = submit(impl, &op, err);
    if (r < 0)
        return r;
    if (ret_rev)
        *ret_rev = op.rev;
    return 0;
}

static int sqlite_txn(void *impl, const struct st_kv_cmp *cmps, size_t n_cmps,
                      const struct st_kv_op *ops, size_t n_ops, int64_t *ret_rev,
                      struct st_err **err)
{
    struct write_op op = {
        .kind = OP_TXN,
        .cmps = cmps,
        .n_cmps = n_cmps,
        .ops = ops,
        .n_ops = n_ops,
    };
    int r = submit(impl, &op, err);
    if (r < 0)
        return r;
    if (ret_rev)
        *ret_rev = op.rev;
    return 0;
}

static int sqlite_compact(void *impl, int64_t rev, struct st_err **err)
{
    struct write_op op = {.kind = OP_COMPACT, .expect = rev};
    return submit(impl, &op, err);
}

/* ---- the read path -------------------------------------------------- */

static int64_t sqlite_revision(void *impl)
{
    struct st_kv_sqlite *s = impl;
    st_autoptr(st_err) err = NULL;
    struct reader *rd;
    int64_t rev = -1;
    int r = reader_acquire(s, &rd, &err);
    if (r >= 0) {
        r = read_revision(rd, &rev, NULL, &err);
        reader_release(s, rd);
    }
    if (r < 0) {
        pthread_mutex_lock(&s->notify_mu);
        rev = s->notify_rev;
        pthread_mutex_unlock(&s->notify_mu);
        st_log_warn("store_revision_failed", "error=\"%s\" fallback=%lld", st_err_msg(err),
                    (long long)rev);
    }
    return rev;
}

static int sqlite_get(void *impl, const char *key, struct st_kv_entry **ret, struct st_err **err)
{
    struct st_kv_sqlite *s = impl;
    struct reader *rd;
    int r = reader_acquire(s, &rd, err);
    if (r < 0)
        return r;
    sqlite3_stmt *st = rd->stmt[R_GET];
    bind_key(st, 1, key, strlen(key));
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        struct st_kv_entry *e = st_new0(struct st_kv_entry, 1);
        e->key = st_strdup(key);
        e->value = column_dup(st, 0, &e->value_len);
        e->create_rev = sqlite3_column_int64(st, 1);
        e->mod_rev = sqlite3_column_int64(st, 2);
        e->version = sqlite3_column_int64(st, 3);
        *ret = e;
        r = 0;
    } else if (rc == SQLITE_DONE) {
        r = st_err_set(err, -ENOENT, "key " ST_KV_KEY_FMT " not found", ST_KV_KEY_ARG(key));
    } else {
        r = sqlite_fail(err, rd->db, rc, "reading the key");
    }
    sqlite3_reset(st);
    reader_release(s, rd);
    return r;
}

static int list_rows(struct reader *rd, const char *prefix, const char *start_after, size_t limit,
                     struct st_kv_list *l, struct st_err **err)
{
    size_t end_len;
    st_autofree char *end = st_kv_prefix_end(prefix, &end_len);
    /* Start from whichever is later: the prefix itself (inclusive) or the
     * last key of the previous page (exclusive); one bound keeps the scan a
     * plain index range. strcmp compares as unsigned bytes, as SQLite does. */
    bool after = start_after && strcmp(start_after, prefix) >= 0;
    sqlite3_stmt *st = rd->stmt[after ? R_LIST_AFTER : R_LIST_FROM];
    const char *from = after ? start_after : prefix;
    bind_key(st, 1, from, strlen(from));
    bind_prefix_end(st, 2, end, end_len);
    /* one more row than asked tells whether there are more */
    sqlite3_bind_int64(st, 3, limit ? (int64_t)limit + 1 : -1);

    size_t cap = 0;
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        if (limit && l->count == limit) {
            l->more = true;
            break;
        }
        if (l->count == cap) {
            cap = cap ? cap * 2 : 16;
            l->entries = st_xrealloc(l->entries, cap * sizeof(*l->entries));
        }
        struct st_kv_entry *e = &l->entries[l->count++];
        *e = (struct st_kv_entry){0};
        e->key = column_dup(st, 0, NULL);
        e->value = column_dup(st, 1, &e->value_len);
        e->create_rev = sqlite3_column_int64(st, 2);
        e->mod_rev = sqlite3_column_int64(st, 3);
        e->version = sqlite3_column_int64(st, 4);
    }
    int r = 0;
    if (rc != SQLITE_ROW && rc != SQLITE_DONE)
        r = sqlite_fail(err, rd->db, rc, "listing keys");
    sqlite3_reset(st);
    return r;
}

static int sqlite_list(void *impl, const char *prefix, const char *start_after, size_t limit,
                       struct st_kv_list **ret, struct st_err **err)
{
    struct st_kv_sqlite *s = impl;
    struct reader *rd;
    int r = reader_acquire(s, &rd, err);
    if (r < 0)
        return r;
    st_autoptr(st_kv_list) l = st_new0(struct st_kv_list, 1);
    r = step_done(rd->db, rd->stmt[R_BEGIN], "starting a read", err);
    if (r >= 0)
        r = read_revision(rd, &l->revision, NULL, err);
    if (r >= 0)
        r = list_rows(rd, prefix, start_after, limit, l, err);
    if (r >= 0)
        r = step_done(rd->db, rd->stmt[R_COMMIT], "ending a read", err);
    reader_release(s, rd);
    if (r < 0)
        return r;
    *ret = st_steal(&l);
    return 0;
}

/* One snapshot: the revision, the staleness check and the events after
 * after_rev under the prefix. */
static int read_events(struct st_kv_sqlite *s, const char *prefix, const char *end, size_t end_len,
                       int64_t after_rev, struct st_kv_events **ret, struct st_err **err)
{
    struct reader *rd;
    int r = reader_acquire(s, &rd, err);
    if (r < 0)
        return r;
    st_autoptr(st_kv_events) ev = st_new0(struct st_kv_events, 1);
    int64_t rev = 0, compacted = 0;
    r = step_done(rd->db, rd->stmt[R_BEGIN], "starting a read", err);
    if (r >= 0)
        r = read_revision(rd, &rev, &compacted, err);
    if (r >= 0 && after_rev < compacted)
        r = st_err_set(err, -ESTALE,
                       "watch from revision %lld: history up to revision %lld was compacted, "
                       "relist",
                       (long long)after_rev, (long long)compacted);
    if (r >= 0) {
        sqlite3_stmt *st = rd->stmt[R_EVENTS];
        sqlite3_bind_int64(st, 1, after_rev);
        bind_key(st, 2, prefix, strlen(prefix));
        bind_prefix_end(st, 3, end, end_len);
        size_t cap = 0;
        int rc;
        while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
            if (ev->count == cap) {
                cap = cap ? cap * 2 : 16;
                ev->events = st_xrealloc(ev->events, cap * sizeof(*ev->events));
            }
            struct st_kv_event *e = &ev->events[ev->count++];
            *e = (struct st_kv_event){0};
            e->kv.mod_rev = sqlite3_column_int64(st, 0);
            e->type = sqlite3_column_int(st, 1) == EV_DELETE ? ST_KV_EVENT_DELETE : ST_KV_EVENT_PUT;
            e->kv.key = column_dup(st, 2, NULL);
            if (e->type == ST_KV_EVENT_PUT) {
                e->kv.value = column_dup(st, 3, &e->kv.value_len);
                e->kv.create_rev = sqlite3_column_int64(st, 4);
                e->kv.version = sqlite3_column_int64(st, 5);
            }
        }
        if (rc != SQLITE_DONE)
            r = sqlite_fail(err, rd->db, rc, "reading events");
        sqlite3_reset(st);
    }
    if (r >= 0)
        r = step_done(rd->db, rd->stmt[R_COMMIT], "ending a read", err);
    reader_release(s, rd);
    if (r < 0)
        return r;
    ev->revision = rev > after_rev ? rev : after_rev;
    *ret = st_steal(&ev);
    return 0;
}

static int sqlite_watch(void *impl, const char *prefix, int64_t after_rev, int timeout_ms,
                        struct st_kv_events **ret, struct st_err **err)
{
    struct st_kv_sqlite *s = impl;
    size_t end_len;
    st_autofree char *end = st_kv_prefix_end(prefix, &end_len);
    struct timespec deadline;
    clock_gettime(CLOCK_MONOTONIC, &deadline);
    deadline.tv_sec += timeout_ms / 1000;
    deadline.tv_nsec += (long)(timeout_ms % 1000) * 1000000L;
    if (deadline.tv_nsec >= 1000000000L) {
        deadline.tv_sec++;
        deadline.tv_nsec -= 1000000000L;
    }

    /* Each empty read moves `from` to its snapshot: those events are known
     * not to match, so a watcher of a quiet prefix under a busy store does
     * not rescan them at every wake-up (nor turn stale because of them). */
    int64_t from = after_rev;
    for (;;) {
        st_autoptr(st_kv_events) ev = NULL;
        int r = read_events(s, prefix, end, end_len, from, &ev, err);
        if (r < 0)
            return r;
        if (ev->count > 0 || timeout_ms == 0) {
            *ret = st_steal(&ev);
            return 0;
        }
        /* Nothing yet: sleep until a commit after the snapshot we just read
         * (notify_rev moves past it), a wake_all, or the deadline. A commit
         * between our read and this lock is seen through notify_rev. */
        int64_t seen = ev->revision;
        from = seen;
        bool again = false;
        pthread_mutex_lock(&s->notify_mu);
        for (;;) {
            if (s->woken)
                break;
            if (s->notify_rev > seen) {
                again = true;
                break;
            }
            if (pthread_cond_timedwait(&s->notify_cond, &s->notify_mu, &deadline) == ETIMEDOUT)
                break;
        }
        pthread_mutex_unlock(&s->notify_mu);
        if (!again) {
            *ret = st_steal(&ev);
            return 0;
        }
    }
}

static void sqlite_wake_all(void *impl)
{
    struct st_kv_sqlite *s = impl;
    pthread_mutex_lock(&s->notify_mu);
    s->woken = true;
    pthread_cond_broadcast(&s->notify_cond);
    pthread_mutex_unlock(&s->notify_mu);
}

const struct st_kv_backend st_kv_sqlite_backend = {
    .name = "sqlite",
    .open = sqlite_open,
    .close = sqlite_close,
    .revision = sqlite_revision,
    .get = sqlite_get,
    .put = sqlite_put,
    .delete = sqlite_delete,
    .txn = sqlite_txn,
    .list = sqlite_list,
    .watch = sqlite_watch,
    .compact = sqlite_compact,
    .wake_all = sqlite_wake_all,
};
