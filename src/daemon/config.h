/* stratosd's configuration: defaults, then a YAML file (--config, or
 * /etc/stratos/stratosd.yaml when present) whose keys mirror the long flags,
 * then the flags themselves, each later source winning. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#include "lib/cleanup.h"
#include "lib/err.h"

enum st_daemon_command {
    ST_DAEMON_RUN,
    ST_DAEMON_INIT,
    ST_DAEMON_HELP,
    ST_DAEMON_VERSION,
};

enum st_daemon_role {
    ST_ROLE_ALL,
    ST_ROLE_CONTROLLER,
    ST_ROLE_AGENT,
};

struct st_daemon_config {
    enum st_daemon_command command;
    char *config_file; /* the file that was read, if any */
    char *data_dir;
    char *store; /* --store URL (etcd://host:port,...); NULL = SQLite <data-dir>/stratos.db */
    char *listen;
    enum st_daemon_role role;
    char *log_level;
    char *tls_cert;
    char *tls_key;
    char *public_url; /* the address clients are told to use; default from listen */
    unsigned threads; /* 0 = number of CPUs */
    size_t body_limit;
    bool access_log;
    unsigned token_ttl_s; /* 0 = the identity service's default (12 h) */
    /* the node agent (roles agent and all) */
    char *controller_url;  /* --controller; NULL = this daemon's own URL (role all) */
    char *node_name;       /* --node-name; default: the host name */
    char *node_token_file; /* --node-token-file; default <data-dir>/node-token */
    char *drivers;         /* --drivers "container,sim"; NULL = probe */
    unsigned sim_nodes;    /* --sim-nodes N: simulated nodes for scale tests */
    /* --cpu-allocation-ratio, --ram-allocation-ratio, --disk-allocation-ratio:
     * what the agent registers its node(s) with; 0 = Nova's defaults */
    double cpu_allocation_ratio, ram_allocation_ratio, disk_allocation_ratio;
    char *vtep;            /* --vtep: VXLAN source address; NULL = the default route's */
    char *external_bridge; /* --external-bridge; NULL = br-ex */
    bool no_network;       /* --no-network */
    char **import_images;  /* init: "NAME=PATH[:container_format]", --import-image (repeatable) */
    size_t n_import_images;
    /* --console-log-max: an instance's console log is trimmed past it; 0 =
     * the agent's default (1 MiB) */
    size_t console_log_max;
    /* --image-cache-max-age: an unused cached image goes after it; 0 = the
     * agent's default (86400) */
    unsigned image_cache_max_age_s;
};

#define ST_DAEMON_DEFAULT_LISTEN "127.0.0.1:8080"
#define ST_DAEMON_DEFAULT_CONFIG "/etc/stratos/stratosd.yaml"
#define ST_DAEMON_ROOT_DATA_DIR  "/var/lib/stratos"
/* The largest allocation ratio, as the controller accepts from a node. */
#define ST_DAEMON_ALLOCATION_RATIO_MAX 1000

/* Below this a console log would hold less than the API shows. */
#define ST_DAEMON_CONSOLE_LOG_MIN (16 * 1024)

/* Parses argv (command word first: "init", "run" or none) and the config
 * file into *cfg. -EINVAL with a message naming the flag or key on error. */
int st_daemon_config_load(int argc, char **argv, struct st_daemon_config *cfg, struct st_err **err);

/* Loads a YAML config file over cfg (used by st_daemon_config_load; exposed
 * for tests). Unknown keys are errors: a typo must not be silently ignored. */
int st_daemon_config_load_file(const char *path, struct st_daemon_config *cfg, struct st_err **err);

/* "1048576", "512KiB", "1MiB", "1M", "2G" → bytes. */
int st_daemon_parse_size(const char *s, size_t *ret, struct st_err **err);

const char *st_daemon_role_name(enum st_daemon_role role);
void st_daemon_config_clear(struct st_daemon_config *cfg);
void st_daemon_usage(FILE *f);
