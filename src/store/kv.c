/* The store's front door: picks a backend from the URL's scheme in a small
 * static table, checks every argument once so that all backends enforce the
 * same limits with the same messages, and answers -EOPNOTSUPP for operations
 * a backend leaves NULL. Also owns the result types' destructors. */
#include "kv-priv.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "lib/cleanup.h"

struct st_kv {
    const struct st_kv_backend *backend;
    void *impl;
};

struct kv_scheme {
    const char *scheme;
    const struct st_kv_backend *backend; /* NULL: known but not built */
    const char *missing;                 /* why, when backend is NULL */
};

static const struct kv_scheme kv_schemes[] = {
    {"sqlite", &st_kv_sqlite_backend, NULL},
    {"etcd", &st_kv_etcd_backend, NULL},
};

/* A URL scheme is a letter then letters, digits, '+', '-' or '.', then ':'.
 * Anything else ("./a:b.db", "/var/lib/x.db") is a plain SQLite path. */
static size_t scheme_length(const char *url)
{
    const char *colon = strchr(url, ':');
    if (!colon || colon == url)
        return 0;
    if (!((url[0] >= 'a' && url[0] <= 'z') || (url[0] >= 'A' && url[0] <= 'Z')))
        return 0;
    for (const char *p = url; p < colon; p++) {
        char c = *p;
        bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                  c == '+' || c == '-' || c == '.';
        if (!ok)
            return 0;
    }
    return (size_t)(colon - url);
}

static int parse_url(const char *url, const struct st_kv_backend **ret_backend,
                     const char **ret_location, struct st_err **err)
{
    size_t n = scheme_length(url);
    if (n == 0) {
        *ret_backend = &st_kv_sqlite_backend;
        *ret_location = url;
        return 0;
    }
    for (size_t i = 0; i < ST_ARRAY_SIZE(kv_schemes); i++) {
        const struct kv_scheme *s = &kv_schemes[i];
        if (strlen(s->scheme) != n || strncasecmp(url, s->scheme, n) != 0)
            continue;
        if (!s->backend)
            return st_err_set(err, -EOPNOTSUPP, "store URL '%s': %s", url, s->missing);
        const char *location = url + n + 1;
        /* "sqlite:///var/x.db" (empty authority) is "sqlite:/var/x.db" */
        if (strncmp(location, "//", 2) == 0)
            location += 2;
        *ret_backend = s->backend;
        *ret_location = location;
        return 0;
    }
    return st_err_set(err, -EINVAL,
                      "store URL '%s': unknown scheme '%.*s' (known: sqlite, etcd; write "
                      "'./%s' for a file name with a colon)",
                      url, (int)n, url, url);
}

int st_kv_open(const char *url, const struct st_kv_options *opts, struct st_kv **ret,
               struct st_err **err)
{
    if (!url || !url[0])
        return st_err_set(err, -EINVAL, "store URL is empty");
    struct st_kv_options o = opts ? *opts : (struct st_kv_options){0};
    if (o.history < 0)
        return st_err_set(err, -EINVAL, "store history %lld is negative", (long long)o.history);
    if (o.history == 0)
        o.history = ST_KV_HISTORY_DEFAULT;

    const struct st_kv_backend *backend = NULL;
    const char *location = NULL;
    int r = parse_url(url, &backend, &location, err);
    if (r < 0)
        return r;
    if (!location[0])
        return st_err_set(err, -EINVAL, "store URL '%s' has no path", url);

    void *impl = NULL;
    r = backend->open(location, &o, &impl, err);
    if (r < 0)
        return st_err_prefix(err, r, "opening %s store '%s'", backend->name, location);
    struct st_kv *kv = st_new0(struct st_kv, 1);
    kv->backend = backend;
    kv->impl = impl;
    *ret = kv;
    return 0;
}

void st_kv_close(struct st_kv *kv)
{
    if (!kv)
        return;
    kv->backend->close(kv->impl);
    free(kv);
}

static int check_key(const char *key, struct st_err **err)
{
    if (!key || !key[0])
        return st_err_set(err, -EINVAL, "invalid key: empty");
    size_t len = strlen(key);
    if (len > ST_KV_KEY_MAX)
        return st_err_set(err, -EINVAL, "invalid key " ST_KV_KEY_FMT ": %zu bytes, more than %d",
                          ST_KV_KEY_ARG(key), len, ST_KV_KEY_MAX);
    return 0;
}

static int check_condition(const char *key, int64_t expect_mod_rev, struct st_err **err)
{
    if (expect_mod_rev < ST_KV_ANY)
        return st_err_set(err, -EINVAL,
                          "key " ST_KV_KEY_FMT ": condition mod_rev %lld is not a revision "
                          "(ST_KV_ANY, ST_KV_ABSENT or a mod_rev > 0)",
                          ST_KV_KEY_ARG(key), (long long)expect_mod_rev);
    return 0;
}

static int check_prefix(const char *what, const char *prefix, struct st_err **err)
{
    if (prefix && strlen(prefix) > ST_KV_KEY_MAX)
        return st_err_set(err, -EINVAL, "invalid %s " ST_KV_KEY_FMT ": more than %d bytes", what,
                          ST_KV_KEY_ARG(prefix), ST_KV_KEY_MAX);
    return 0;
}

#define NOT_SUPPORTED(kv, op)                                                                      \
    st_err_set(err, -EOPNOTSUPP, "the %s store does not support %s", (kv)->backend->name, op)

int64_t st_kv_revision(struct st_kv *kv)
{
    return kv->backend->revision(kv->impl);
}

int st_kv_get(struct st_kv *kv, const char *key, struct st_kv_entry **ret, struct st_err **err)
{
    int r = check_key(key, err);
    if (r < 0)
        return r;
    return kv->backend->get(kv->impl, key, ret, err);
}

int st_kv_put(struct st_kv *kv, const char *key, const void *value, size_t value_len,
              int64_t expect_mod_rev, int64_t *ret_rev, struct st_err **err)
{
    int r = check_key(key, err);
    if (r < 0)
        return r;
    if (!value && value_len > 0)
        return st_err_set(err, -EINVAL, "key " ST_KV_KEY_FMT ": value is missing",
                          ST_KV_KEY_ARG(key));
    if (value_len > ST_KV_VALUE_MAX)
        return st_err_set(err, -EFBIG, "key " ST_KV_KEY_FMT ": value of %zu bytes, more than %d",
                          ST_KV_KEY_ARG(key), value_len, ST_KV_VALUE_MAX);
    r = check_condition(key, expect_mod_rev, err);
    if (r < 0)
        return r;
    return kv->backend->put(kv->impl, key, value ? value : "", value_len, expect_mod_rev, ret_rev,
                            err);
}

int st_kv_delete(struct st_kv *kv, const char *key, int64_t expect_mod_rev, int64_t *ret_rev,
                 struct st_err **err)
{
    int r = check_key(key, err);
    if (r < 0)
        return r;
    r = check_condition(key, expect_mod_rev, err);
    if (r < 0)
        return r;
    if (!kv->backend->delete)
        return NOT_SUPPORTED(kv, "delete");
    return kv->backend->delete (kv->impl, key, expect_mod_rev, ret_rev, err);
}

/* Every argument of a transaction, before anything reaches the backend. */
static int check_txn(const struct st_kv_cmp *cmps, size_t n_cmps, const struct st_kv_op *ops,
                     size_t n_ops, struct st_err **err)
{
    if (n_cmps > ST_KV_TXN_OPS_MAX || n_ops > ST_KV_TXN_OPS_MAX)
        return st_err_set(err, -EINVAL,
                          "transaction of %zu compares and %zu operations: more than %d of one",
                          n_cmps, n_ops, ST_KV_TXN_OPS_MAX);
    if ((n_cmps && !cmps) || (n_ops && !ops))
        return st_err_set(err, -EINVAL, "transaction: compares or operations are missing");
    int r;
    for (size_t i = 0; i < n_cmps; i++) {
        if ((r = check_key(cmps[i].key, err)) < 0 ||
            (r = check_condition(cmps[i].key, cmps[i].expect_mod_rev, err)) < 0)
            return st_err_prefix(err, r, "transaction compare %zu", i);
    }
    size_t total = 0;
    for (size_t i = 0; i < n_ops; i++) {
        const struct st_kv_op *op = &ops[i];
        if ((r = check_key(op->key, err)) < 0)
            return st_err_prefix(err, r, "transaction operation %zu", i);
        if (op->type == ST_KV_OP_PUT) {
            if (!op->value && op->value_len > 0)
                return st_err_set(err, -EINVAL,
                                  "transaction operation %zu: key " ST_KV_KEY_FMT
                                  ": value is missing",
                                  i, ST_KV_KEY_ARG(op->key));
            if (op->value_len > ST_KV_VALUE_MAX - total)
                return st_err_set(err, -EFBIG,
                                  "transaction operation %zu: key " ST_KV_KEY_FMT
                                  ": values of more than %d bytes in one transaction",
                                  i, ST_KV_KEY_ARG(op->key), ST_KV_VALUE_MAX);
            total += op->value_len;
        } else if (op->type != ST_KV_OP_DELETE) {
            return st_err_set(err, -EINVAL, "transaction operation %zu: unknown type %d", i,
                              (int)op->type);
        }
        /* as etcd: one key, one write per revision (at most 128^2/2 compares) */
        for (size_t j = 0; j < i; j++)
            if (strcmp(ops[j].key, op->key) == 0)
                return st_err_set(err, -EINVAL,
                                  "transaction operations %zu and %zu: key " ST_KV_KEY_FMT
                                  " written twice",
                                  j, i, ST_KV_KEY_ARG(op->key));
    }
    return 0;
}

int st_kv_txn(struct st_kv *kv, const struct st_kv_cmp *cmps, size_t n_cmps,
              const struct st_kv_op *ops, size_t n_ops, int64_t *ret_rev, struct st_err **err)
{
    int r = check_txn(cmps, n_cmps, ops, n_ops, err);
    if (r < 0)
        return r;
    if (!kv->backend->txn)
        return NOT_SUPPORTED(kv, "transactions");
    return kv->backend->txn(kv->impl, cmps, n_cmps, ops, n_ops, ret_rev, err);
}

int st_kv_list(struct st_kv *kv, const char *prefix, const char *start_after, size_t limit,
               struct st_kv_list **ret, struct st_err **err)
{
    int r = check_prefix("prefix", prefix, err);
    if (r < 0)
        return r;
    if (start_after && !start_after[0])
        start_after = NULL;
    if (!kv->backend->list)
        return NOT_SUPPORTED(kv, "list");
    return kv->backend->list(kv->impl, prefix ? prefix : "", start_after, limit, ret, err);
}

int st_kv_watch(struct st_kv *kv, const char *prefix, int64_t after_rev, int timeout_ms,
                struct st_kv_events **ret, struct st_err **err)
{
    int r = check_prefix("watch prefix", prefix, err);
    if (r < 0)
        return r;
    if (after_rev < 0)
        return st_err_set(err, -EINVAL, "watch from revision %lld: not a revision",
                          (long long)after_rev);
    if (timeout_ms < 0)
        return st_err_set(err, -EINVAL, "watch timeout %d ms is negative", timeout_ms);
    if (!kv->backend->watch)
        return NOT_SUPPORTED(kv, "watch");
    return kv->backend->watch(kv->impl, prefix ? prefix : "", after_rev, timeout_ms, ret, err);
}

int st_kv_compact(struct st_kv *kv, int64_t rev, struct st_err **err)
{
    if (rev < 0)
        return st_err_set(err, -EINVAL, "compact to revision %lld: not a revision", (long long)rev);
    if (!kv->backend->compact)
        return NOT_SUPPORTED(kv, "compact");
    return kv->backend->compact(kv->impl, rev, err);
}

void st_kv_wake_all(struct st_kv *kv)
{
    if (kv && kv->backend->wake_all)
        kv->backend->wake_all(kv->impl);
}

char *st_kv_prefix_end(const char *prefix, size_t *ret_len)
{
    size_t n = strlen(prefix);
    while (n > 0 && (unsigned char)prefix[n - 1] == 0xff)
        n--;
    if (n == 0) {
        *ret_len = 0;
        return NULL;
    }
    char *end = st_strndup(prefix, n);
    end[n - 1] = (char)((unsigned char)end[n - 1] + 1);
    *ret_len = n;
    return end;
}

void st_kv_entry_clear(struct st_kv_entry *e)
{
    if (!e)
        return;
    free(e->key);
    free(e->value);
    *e = (struct st_kv_entry){0};
}

void st_kv_entry_free(struct st_kv_entry *e)
{
    st_kv_entry_clear(e);
    free(e);
}

void st_kv_list_free(struct st_kv_list *l)
{
    if (!l)
        return;
    for (size_t i = 0; i < l->count; i++)
        st_kv_entry_clear(&l->entries[i]);
    free(l->entries);
    free(l);
}

void st_kv_events_free(struct st_kv_events *ev)
{
    if (!ev)
        return;
    for (size_t i = 0; i < ev->count; i++)
        st_kv_entry_clear(&ev->events[i].kv);
    free(ev->events);
    free(ev);
}
