/* `stratosd init`; see init.h. */
#include "init.h"

#include <errno.h>
#include <string.h>
#include <stdio.h>
#include <sys/stat.h>
#include <unistd.h>

#include "lib/cleanup.h"
#include "lib/files.h"
#include "lib/json.h"
#include "lib/log.h"
#include "lib/times.h"
#include "lib/uuid.h"
#include "store/kv.h"
#include "version.h"

char *st_daemon_store_path(const struct st_daemon_config *cfg)
{
    return st_sprintf("%s/%s", cfg->data_dir, ST_DAEMON_STORE_FILE);
}

bool st_daemon_is_initialized(const struct st_daemon_config *cfg)
{
    st_autofree char *path = st_daemon_store_path(cfg);
    return access(path, F_OK) == 0;
}

/* The cluster record names this installation; written once, never changed. */
static int ensure_cluster_record(struct st_kv *kv, struct st_err **err)
{
    st_autoptr(st_kv_entry) existing = NULL;
    int r = st_kv_get(kv, ST_DAEMON_CLUSTER_KEY, &existing, err);
    if (r == 0)
        return 0;
    if (r != -ENOENT)
        return r;
    char id[ST_UUID_LEN], now[ST_TIME_RFC3339_LEN];
    st_uuid_new(id);
    st_time_rfc3339(st_time_now_ms() / 1000, now, sizeof(now));
    st_autoptr(json_t) doc = json_pack("{s:s, s:s, s:s}", "cluster_id", id, "created_at", now,
                                       "created_by_version", ST_VERSION);
    st_autofree char *value = st_json_dumps(doc);
    r = st_kv_put(kv, ST_DAEMON_CLUSTER_KEY, value, strlen(value), ST_KV_ABSENT, NULL, err);
    if (r == -ECANCELED) { /* another init won the race: same outcome */
        st_err_clear(err);
        return 0;
    }
    return r;
}

int st_daemon_init(const struct st_daemon_config *cfg, struct st_err **err)
{
    int r = st_mkdir_p(cfg->data_dir, 0700, err);
    if (r < 0)
        return st_err_prefix(err, r, "preparing data dir");
    if (chmod(cfg->data_dir, 0700) < 0)
        return st_err_errno(err, "chmod %s", cfg->data_dir);
    st_autofree char *path = st_daemon_store_path(cfg);
    st_autoptr(st_kv) kv = NULL;
    r = st_kv_open(path, NULL, &kv, err);
    if (r < 0)
        return st_err_prefix(err, r, "opening store");
    r = ensure_cluster_record(kv, err);
    if (r < 0)
        return st_err_prefix(err, r, "writing cluster record");
    return 0;
}
