/* What the etcd backend's two files share: kv_etcd.c (the requests: open,
 * get, put, delete, txn, list, compact) and kv_etcd_watch.c (the watch
 * stream and st_kv_watch). Not for use outside src/store. */
#pragma once

#include <curl/curl.h>
#include <jansson.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "kv-priv.h"

/* etcd's default --max-request-bytes: a write larger than this is refused
 * by etcd, so it is refused here first (-EFBIG). */
#define ETCD_REQUEST_MAX (3 * 512 * 1024)

/* Idle curl handles (each with its kept-alive connection) kept for reuse. */
#define ETCD_POOL_MAX 16

struct st_etcd_watch;

struct st_kv_etcd {
    char **endpoints; /* "http://host:port" */
    size_t n_endpoints;
    unsigned preferred; /* index of the endpoint to try first (atomic) */
    struct curl_slist *headers;
    int64_t history;
    int64_t compact_every;

    pthread_mutex_t pool_mu;
    CURL *idle[ETCD_POOL_MAX];
    size_t n_idle;

    int64_t last_rev;  /* the latest revision any answer carried (atomic) */
    int64_t compacted; /* history dropped up to here by this process (atomic) */
    bool compacting;   /* an automatic compaction is under way (atomic) */

    struct st_etcd_watch *watch;
};

/* Revisions: etcd's minus one (see kv_etcd.c). */
static inline int64_t st_etcd_rev_to_st(int64_t etcd_rev)
{
    return etcd_rev - 1;
}

static inline int64_t st_etcd_rev_from_st(int64_t rev)
{
    return rev + 1;
}

/* base64 (OpenSSL EVP); unb64 returns a NUL-terminated copy, -EBADMSG when
 * s is not base64. */
char *st_etcd_b64(const void *data, size_t len);
int st_etcd_unb64(const char *s, char **ret, size_t *ret_len);
void st_etcd_set_b64(json_t *obj, const char *field, const void *data, size_t len);
void st_etcd_set_int(json_t *obj, const char *field, int64_t v);
int64_t st_etcd_int(const json_t *obj, const char *field);
int64_t st_etcd_header_rev(const json_t *resp);
/* A mvccpb.KeyValue as an entry (revisions converted); the value only when
 * with_value. */
int st_etcd_entry_from_json(const json_t *kv, bool with_value, struct st_kv_entry *e,
                            struct st_err **err);

/* HTTP: one request and its answer, with failover across endpoints. */
int st_etcd_call(struct st_kv_etcd *e, const char *path, const json_t *req, json_t **ret,
                 struct st_err **err);
const char *st_etcd_endpoint(struct st_kv_etcd *e, unsigned *ret_index);
void st_etcd_endpoint_failed(struct st_kv_etcd *e, unsigned index);
void st_etcd_curl_setup(struct st_kv_etcd *e, CURL *c, const char *url, char *errbuf);
/* write: the request changes the store, so a lost answer leaves its
 * outcome unknown (the message says so). */
int st_etcd_curl_fail(struct st_err **err, const char *endpoint, CURLcode cc, const char *errbuf,
                      bool write);
int st_etcd_status_fail(struct st_err **err, const char *endpoint, long status, const char *body,
                        size_t len);

int st_etcd_revision_read(struct st_kv_etcd *e, int64_t *ret, struct st_err **err);
void st_etcd_compact_auto(struct st_kv_etcd *e, int64_t rev);

/* kv_etcd_watch.c: the process's watch stream, from revision rev on. */
int st_etcd_watch_start(struct st_kv_etcd *e, int64_t rev, struct st_err **err);
void st_etcd_watch_stop(struct st_kv_etcd *e);
int st_etcd_watch(void *impl, const char *prefix, int64_t after_rev, int timeout_ms,
                  struct st_kv_events **ret, struct st_err **err);
void st_etcd_wake_all(void *impl);
