/* stratosd configuration: flags, YAML file, defaults; see config.h. */
#include "config.h"

#include <errno.h>
#include <getopt.h>
#include <libfyaml.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "lib/cleanup.h"

/* One row per setting: the long flag and the YAML key are the same name. */
enum opt_id {
    OPT_CONFIG = 1000,
    OPT_DATA_DIR,
    OPT_STORE,
    OPT_LISTEN,
    OPT_ROLE,
    OPT_LOG_LEVEL,
    OPT_TLS_CERT,
    OPT_TLS_KEY,
    OPT_PUBLIC_URL,
    OPT_THREADS,
    OPT_BODY_LIMIT,
    OPT_ACCESS_LOG,
    OPT_NO_ACCESS_LOG,
    OPT_TOKEN_TTL,
    OPT_IMPORT_IMAGE,
    OPT_CONTROLLER,
    OPT_NODE_NAME,
    OPT_NODE_TOKEN_FILE,
    OPT_DRIVERS,
    OPT_SIM_NODES,
    OPT_CPU_ALLOCATION_RATIO,
    OPT_RAM_ALLOCATION_RATIO,
    OPT_DISK_ALLOCATION_RATIO,
    OPT_VTEP,
    OPT_EXTERNAL_BRIDGE,
    OPT_NO_NETWORK,
    OPT_CONSOLE_LOG_MAX,
    OPT_IMAGE_CACHE_MAX_AGE,
    OPT_HELP,
    OPT_VERSION,
};

static const struct option long_options[] = {
    {"config", required_argument, NULL, OPT_CONFIG},
    {"data-dir", required_argument, NULL, OPT_DATA_DIR},
    {"store", required_argument, NULL, OPT_STORE},
    {"listen", required_argument, NULL, OPT_LISTEN},
    {"role", required_argument, NULL, OPT_ROLE},
    {"log-level", required_argument, NULL, OPT_LOG_LEVEL},
    {"tls-cert", required_argument, NULL, OPT_TLS_CERT},
    {"tls-key", required_argument, NULL, OPT_TLS_KEY},
    {"public-url", required_argument, NULL, OPT_PUBLIC_URL},
    {"threads", required_argument, NULL, OPT_THREADS},
    {"body-limit", required_argument, NULL, OPT_BODY_LIMIT},
    {"access-log", no_argument, NULL, OPT_ACCESS_LOG},
    {"no-access-log", no_argument, NULL, OPT_NO_ACCESS_LOG},
    {"token-ttl", required_argument, NULL, OPT_TOKEN_TTL},
    {"import-image", required_argument, NULL, OPT_IMPORT_IMAGE},
    {"controller", required_argument, NULL, OPT_CONTROLLER},
    {"node-name", required_argument, NULL, OPT_NODE_NAME},
    {"node-token-file", required_argument, NULL, OPT_NODE_TOKEN_FILE},
    {"drivers", required_argument, NULL, OPT_DRIVERS},
    {"sim-nodes", required_argument, NULL, OPT_SIM_NODES},
    {"cpu-allocation-ratio", required_argument, NULL, OPT_CPU_ALLOCATION_RATIO},
    {"ram-allocation-ratio", required_argument, NULL, OPT_RAM_ALLOCATION_RATIO},
    {"disk-allocation-ratio", required_argument, NULL, OPT_DISK_ALLOCATION_RATIO},
    {"vtep", required_argument, NULL, OPT_VTEP},
    {"external-bridge", required_argument, NULL, OPT_EXTERNAL_BRIDGE},
    {"no-network", no_argument, NULL, OPT_NO_NETWORK},
    {"console-log-max", required_argument, NULL, OPT_CONSOLE_LOG_MAX},
    {"image-cache-max-age", required_argument, NULL, OPT_IMAGE_CACHE_MAX_AGE},
    {"help", no_argument, NULL, OPT_HELP},
    {"version", no_argument, NULL, OPT_VERSION},
    {NULL, 0, NULL, 0},
};

void st_daemon_usage(FILE *f)
{
    fputs("usage: stratosd [init|run] [options]\n"
          "\n"
          "  init                 prepare the data dir (idempotent), then exit\n"
          "  run                  serve (the default)\n"
          "\n"
          "  --config FILE        YAML file whose keys mirror these flags\n"
          "                       (default " ST_DAEMON_DEFAULT_CONFIG " when present)\n"
          "  --data-dir DIR       state directory (default " ST_DAEMON_ROOT_DATA_DIR " as root)\n"
          "  --store URL          the cloud's state: etcd://HOST:PORT[,HOST:PORT...] for\n"
          "                       controllers sharing one etcd (default: SQLite in\n"
          "                       <data-dir>/stratos.db)\n"
          "  --listen ADDR:PORT   API address (default " ST_DAEMON_DEFAULT_LISTEN ")\n"
          "  --role ROLE          all | controller | agent (default all)\n"
          "  --public-url URL     address advertised to clients (default from --listen)\n"
          "  --log-level LEVEL    error | warn | info | debug (default info)\n"
          "  --tls-cert FILE      serve HTTPS with this PEM certificate ...\n"
          "  --tls-key FILE       ... and this PEM private key\n"
          "  --threads N          HTTP worker threads (default: number of CPUs)\n"
          "  --body-limit SIZE    largest request body, e.g. 1MiB (default 1MiB)\n"
          "  --[no-]access-log    one log line per request (default on)\n"
          "  --token-ttl SECONDS  lifetime of issued tokens (default 43200, 12 h)\n"
          "  --import-image NAME=PATH[:CONTAINER_FORMAT]\n"
          "                       init: import a file as a public image of that name\n"
          "                       unless one exists (format default docker; repeatable)\n"
          "  --controller URL     agent: the controller's API (default: this daemon, role all)\n"
          "  --node-name NAME     agent: this node's name (default: the host name)\n"
          "  --node-token-file F  agent: the cluster's node token (default <data-dir>/node-token,\n"
          "                       copied from the controller's data dir)\n"
          "  --drivers LIST       agent: container,sim (default: every driver that works here;\n"
          "                       sim, the simulated test double, only when named)\n"
          "  --sim-nodes N        agent: also register N simulated nodes NAME-sim-0001...\n"
          "                       (scale tests; they run nothing)\n"
          "  --cpu-allocation-ratio R\n"
          "                       agent: vCPUs the scheduler admits per core (default 4.0)\n"
          "  --ram-allocation-ratio R\n"
          "                       agent: memory admitted per MiB (default 1.0; servers reserve\n"
          "                       their memory, and reservations never exceed 1.0)\n"
          "  --disk-allocation-ratio R\n"
          "                       agent: disk admitted per GiB (default 1.0); each ratio is\n"
          "                       above 0 and at most 1000, sent with every heartbeat\n"
          "  --vtep ADDR          agent: VXLAN source address (default: the address of the\n"
          "                       interface holding the default route)\n"
          "  --external-bridge BR agent: the bridge of the external network (floating IPs,\n"
          "                       router gateways; default br-ex, created if missing)\n"
          "  --no-network         agent: do not program networking\n"
          "  --console-log-max SIZE\n"
          "                       agent: bound of a server's console log on the node: past\n"
          "                       SIZE/2 it is cut to its newest SIZE/4 (default 1MiB, at\n"
          "                       least 16KiB)\n"
          "  --image-cache-max-age SECONDS\n"
          "                       agent: a cached image no server on the node uses is removed\n"
          "                       after SECONDS unused, or once Glance deleted it (default 86400)\n"
          "  (role agent has no cloud API: --listen serves /healthz, /version and / only)\n"
          "  --help, --version\n",
          f);
}

const char *st_daemon_role_name(enum st_daemon_role role)
{
    switch (role) {
    case ST_ROLE_CONTROLLER:
        return "controller";
    case ST_ROLE_AGENT:
        return "agent";
    default:
        return "all";
    }
}

static int parse_role(const char *s, enum st_daemon_role *ret, struct st_err **err)
{
    static const enum st_daemon_role roles[] = {ST_ROLE_ALL, ST_ROLE_CONTROLLER, ST_ROLE_AGENT};
    for (size_t i = 0; i < ST_ARRAY_SIZE(roles); i++) {
        if (strcmp(s, st_daemon_role_name(roles[i])) == 0) {
            *ret = roles[i];
            return 0;
        }
    }
    return st_err_set(err, -EINVAL, "invalid role '%s': expected all, controller or agent", s);
}

int st_daemon_parse_size(const char *s, size_t *ret, struct st_err **err)
{
    static const struct {
        const char *suffix;
        unsigned long long mult;
    } units[] = {
        {"", 1},           {"B", 1},
        {"K", 1ULL << 10}, {"KiB", 1ULL << 10},
        {"M", 1ULL << 20}, {"MiB", 1ULL << 20},
        {"G", 1ULL << 30}, {"GiB", 1ULL << 30},
    };
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (end == s || errno || s[0] == '-')
        return st_err_set(err, -EINVAL, "invalid size '%s'", s);
    for (size_t i = 0; i < ST_ARRAY_SIZE(units); i++) {
        if (strcmp(end, units[i].suffix) == 0) {
            if (v > SIZE_MAX / units[i].mult)
                return st_err_set(err, -EINVAL, "size '%s' is too large", s);
            *ret = (size_t)(v * units[i].mult);
            return 0;
        }
    }
    return st_err_set(err, -EINVAL, "invalid size '%s': use a number with B, KiB, MiB or GiB", s);
}

static int parse_uint(const char *name, const char *s, unsigned max, unsigned *ret,
                      struct st_err **err)
{
    char *end;
    errno = 0;
    unsigned long v = strtoul(s, &end, 10);
    if (end == s || *end || errno || v > max || s[0] == '-')
        return st_err_set(err, -EINVAL, "invalid %s '%s': expected 0-%u", name, s, max);
    *ret = (unsigned)v;
    return 0;
}

/* An allocation ratio: a finite number above 0, at most what the
 * controller accepts from a node (compute/node.c). */
static int parse_ratio(const char *name, const char *s, double *ret, struct st_err **err)
{
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (end == s || *end || errno || !isfinite(v) || v <= 0 || v > ST_DAEMON_ALLOCATION_RATIO_MAX)
        return st_err_set(err, -EINVAL, "invalid %s '%s': expected a number above 0, at most %d",
                          name, s, ST_DAEMON_ALLOCATION_RATIO_MAX);
    *ret = v;
    return 0;
}

static void set_str(char **field, const char *value)
{
    free(*field);
    *field = st_strdup(value);
}

/* Applies one setting by option id, from a flag or a YAML key. */
static int apply(struct st_daemon_config *cfg, int id, const char *value, struct st_err **err)
{
    int r;
    switch (id) {
    case OPT_DATA_DIR:
        if (!value[0])
            return st_err_set(err, -EINVAL, "data-dir must not be empty");
        set_str(&cfg->data_dir, value);
        return 0;
    case OPT_STORE:
        if (!value[0])
            return st_err_set(err, -EINVAL, "store must not be empty");
        set_str(&cfg->store, value);
        return 0;
    case OPT_LISTEN:
        set_str(&cfg->listen, value);
        return 0;
    case OPT_ROLE:
        return parse_role(value, &cfg->role, err);
    case OPT_LOG_LEVEL:
        set_str(&cfg->log_level, value);
        return 0;
    case OPT_TLS_CERT:
        set_str(&cfg->tls_cert, value);
        return 0;
    case OPT_TLS_KEY:
        set_str(&cfg->tls_key, value);
        return 0;
    case OPT_PUBLIC_URL:
        set_str(&cfg->public_url, value);
        return 0;
    case OPT_THREADS:
        return parse_uint("threads", value, 256, &cfg->threads, err);
    case OPT_BODY_LIMIT:
        return st_daemon_parse_size(value, &cfg->body_limit, err);
    case OPT_ACCESS_LOG:
        if (strcmp(value, "true") == 0 || strcmp(value, "yes") == 0 || strcmp(value, "on") == 0)
            cfg->access_log = true;
        else if (strcmp(value, "false") == 0 || strcmp(value, "no") == 0 ||
                 strcmp(value, "off") == 0)
            cfg->access_log = false;
        else
            return st_err_set(err, -EINVAL, "access-log must be true or false, not '%s'", value);
        return 0;
    case OPT_NO_ACCESS_LOG:
        cfg->access_log = false;
        return 0;
    case OPT_IMPORT_IMAGE:
        if (!strchr(value, '=') || value[0] == '=' || !strchr(value, '=')[1])
            return st_err_set(err, -EINVAL, "'%s' is not NAME=PATH[:CONTAINER_FORMAT]", value);
        cfg->import_images =
            st_xrealloc(cfg->import_images, (cfg->n_import_images + 1) * sizeof(char *));
        cfg->import_images[cfg->n_import_images++] = st_strdup(value);
        return 0;
    case OPT_CONTROLLER:
        if (strncmp(value, "http://", 7) != 0 && strncmp(value, "https://", 8) != 0)
            return st_err_set(err, -EINVAL, "controller '%s' must be an http:// or https:// URL",
                              value);
        set_str(&cfg->controller_url, value);
        return 0;
    case OPT_NODE_NAME:
        if (!value[0])
            return st_err_set(err, -EINVAL, "node-name must not be empty");
        set_str(&cfg->node_name, value);
        return 0;
    case OPT_NODE_TOKEN_FILE:
        set_str(&cfg->node_token_file, value);
        return 0;
    case OPT_DRIVERS:
        set_str(&cfg->drivers, value);
        return 0;
    case OPT_SIM_NODES:
        return parse_uint("sim-nodes", value, 100000, &cfg->sim_nodes, err);
    case OPT_CPU_ALLOCATION_RATIO:
        return parse_ratio("cpu-allocation-ratio", value, &cfg->cpu_allocation_ratio, err);
    case OPT_RAM_ALLOCATION_RATIO:
        return parse_ratio("ram-allocation-ratio", value, &cfg->ram_allocation_ratio, err);
    case OPT_DISK_ALLOCATION_RATIO:
        return parse_ratio("disk-allocation-ratio", value, &cfg->disk_allocation_ratio, err);
    case OPT_VTEP:
        set_str(&cfg->vtep, value);
        return 0;
    case OPT_EXTERNAL_BRIDGE:
        set_str(&cfg->external_bridge, value);
        return 0;
    case OPT_NO_NETWORK:
        cfg->no_network =
            !value || !value[0] || strcmp(value, "true") == 0 || strcmp(value, "yes") == 0;
        return 0;
    case OPT_CONSOLE_LOG_MAX:
        if ((r = st_daemon_parse_size(value, &cfg->console_log_max, err)) < 0)
            return r;
        if (cfg->console_log_max < ST_DAEMON_CONSOLE_LOG_MIN)
            return st_err_set(err, -EINVAL, "console-log-max must be at least 16KiB, not '%s'",
                              value);
        return 0;
    case OPT_IMAGE_CACHE_MAX_AGE:
        r = parse_uint("image-cache-max-age", value, 10 * 366 * 24 * 3600,
                       &cfg->image_cache_max_age_s, err);
        if (r == 0 && cfg->image_cache_max_age_s == 0)
            return st_err_set(err, -EINVAL, "image-cache-max-age must be at least 1 second");
        return r;
    case OPT_TOKEN_TTL:
        r = parse_uint("token-ttl", value, 366 * 24 * 3600, &cfg->token_ttl_s, err);
        if (r == 0 && cfg->token_ttl_s == 0)
            return st_err_set(err, -EINVAL, "token-ttl must be at least 1 second");
        return r;
    default:
        return st_err_set(err, -EINVAL, "unknown setting");
    }
}

static void capture_diag(struct fy_diag *diag, void *user, const char *buf, size_t len)
{
    (void)diag;
    char **msg = user;
    if (!*msg)
        *msg = st_strndup(buf, len);
}

int st_daemon_config_load_file(const char *path, struct st_daemon_config *cfg, struct st_err **err)
{
    st_autofree char *diag_msg = NULL;
    struct fy_diag_cfg dcfg;
    fy_diag_cfg_default(&dcfg);
    dcfg.fp = NULL;
    dcfg.output_fn = capture_diag;
    dcfg.user = &diag_msg;
    dcfg.colorize = false;
    struct fy_diag *diag = fy_diag_create(&dcfg);
    struct fy_parse_cfg pcfg = {.flags = FYPCF_DEFAULT_DOC, .diag = diag};
    struct fy_document *doc = fy_document_build_from_file(&pcfg, path);
    int r = 0;
    if (!doc) {
        if (access(path, R_OK) < 0)
            r = st_err_errno(err, "config file %s", path);
        else
            r = st_err_set(err, -EINVAL, "config file %s: invalid YAML: %s", path,
                           diag_msg ? diag_msg : "parse error");
        goto out;
    }
    struct fy_node *root = fy_document_root(doc);
    if (!root)
        goto out; /* an empty file is an empty configuration */
    if (!fy_node_is_mapping(root)) {
        r = st_err_set(err, -EINVAL, "config file %s: expected a mapping of settings", path);
        goto out;
    }
    void *iter = NULL;
    struct fy_node_pair *pair;
    while ((pair = fy_node_mapping_iterate(root, &iter))) {
        struct fy_node *k = fy_node_pair_key(pair), *v = fy_node_pair_value(pair);
        const char *key = k && fy_node_is_scalar(k) ? fy_node_get_scalar0(k) : NULL;
        if (!key) {
            r = st_err_set(err, -EINVAL, "config file %s: keys must be plain names", path);
            goto out;
        }
        const struct option *opt = NULL;
        for (const struct option *o = long_options; o->name; o++) {
            if (strcmp(o->name, key) == 0 && o->val != OPT_CONFIG && o->val != OPT_HELP &&
                o->val != OPT_VERSION && o->val != OPT_NO_ACCESS_LOG)
                opt = o;
        }
        if (!opt) {
            r = st_err_set(err, -EINVAL, "config file %s: unknown key '%s'", path, key);
            goto out;
        }
        const char *value = v && fy_node_is_scalar(v) ? fy_node_get_scalar0(v) : NULL;
        if (!value) {
            r = st_err_set(err, -EINVAL, "config file %s: '%s' must be a single value", path, key);
            goto out;
        }
        r = apply(cfg, opt->val, value, err);
        if (r < 0) {
            st_err_prefix(err, r, "config file %s", path);
            goto out;
        }
    }
    set_str(&cfg->config_file, path);
out:
    fy_document_destroy(doc);
    fy_diag_destroy(diag);
    return r;
}

static char *default_data_dir(void)
{
    if (geteuid() == 0)
        return st_strdup(ST_DAEMON_ROOT_DATA_DIR);
    const char *xdg = getenv("XDG_DATA_HOME");
    if (xdg && xdg[0] == '/')
        return st_sprintf("%s/stratos", xdg);
    const char *home = getenv("HOME");
    return st_sprintf("%s/.local/share/stratos", home && home[0] ? home : "/tmp");
}

struct flag_value {
    int id;
    const char *value;
};

int st_daemon_config_load(int argc, char **argv, struct st_daemon_config *cfg, struct st_err **err)
{
    *cfg = (struct st_daemon_config){.command = ST_DAEMON_RUN, .access_log = true};
    int first = 1;
    if (argc > 1 && argv[1][0] != '-') {
        if (strcmp(argv[1], "init") == 0)
            cfg->command = ST_DAEMON_INIT;
        else if (strcmp(argv[1], "run") == 0)
            cfg->command = ST_DAEMON_RUN;
        else if (strcmp(argv[1], "help") == 0)
            cfg->command = ST_DAEMON_HELP;
        else
            return st_err_set(err, -EINVAL, "unknown command '%s' (expected init or run)", argv[1]);
        first = 2;
    }

    /* Flags are collected first and applied after the file, so they win. */
    st_autofree struct flag_value *flags = st_new0(struct flag_value, argc);
    size_t n_flags = 0;
    const char *config_path = NULL;
    optind = first;
    opterr = 0;
    int c;
    while ((c = getopt_long(argc, argv, ":h", long_options, NULL)) != -1) {
        switch (c) {
        case 'h':
        case OPT_HELP:
            cfg->command = ST_DAEMON_HELP;
            return 0;
        case OPT_VERSION:
            cfg->command = ST_DAEMON_VERSION;
            return 0;
        case OPT_CONFIG:
            config_path = optarg;
            break;
        case ':':
            return st_err_set(err, -EINVAL, "option '%s' needs a value", argv[optind - 1]);
        case '?':
            return st_err_set(err, -EINVAL, "unknown option '%s'", argv[optind - 1]);
        default:
            flags[n_flags++] = (struct flag_value){c, optarg ? optarg : ""};
        }
    }
    if (optind < argc)
        return st_err_set(err, -EINVAL, "unexpected argument '%s'", argv[optind]);

    int r;
    if (config_path) {
        r = st_daemon_config_load_file(config_path, cfg, err);
        if (r < 0)
            return r;
    } else if (access(ST_DAEMON_DEFAULT_CONFIG, F_OK) == 0) {
        r = st_daemon_config_load_file(ST_DAEMON_DEFAULT_CONFIG, cfg, err);
        if (r < 0)
            return r;
    }
    for (size_t i = 0; i < n_flags; i++) {
        r = apply(cfg, flags[i].id, flags[i].value, err);
        if (r < 0) {
            const char *name = "?";
            for (const struct option *o = long_options; o->name; o++)
                if (o->val == flags[i].id)
                    name = o->name;
            return st_err_prefix(err, r, "--%s", name);
        }
    }

    if (!cfg->data_dir)
        cfg->data_dir = default_data_dir();
    if (!cfg->listen)
        cfg->listen = st_strdup(ST_DAEMON_DEFAULT_LISTEN);
    if (!cfg->log_level)
        cfg->log_level = st_strdup("info");
    if (!cfg->node_name) {
        char host[256] = "";
        if (gethostname(host, sizeof(host) - 1) < 0 || !host[0])
            snprintf(host, sizeof(host), "localhost");
        cfg->node_name = st_strdup(host);
    }
    if (!cfg->node_token_file)
        cfg->node_token_file = st_sprintf("%s/node-token", cfg->data_dir);
    if (cfg->role == ST_ROLE_AGENT && !cfg->controller_url)
        return st_err_set(err, -EINVAL, "role agent needs --controller URL");
    if (!!cfg->tls_cert != !!cfg->tls_key)
        return st_err_set(err, -EINVAL, "tls-cert and tls-key must be given together");
    if (!cfg->public_url) {
        const char *host = cfg->listen;
        /* ":8080" and "0.0.0.0:8080" listen everywhere; advertise loopback. */
        bool any =
            host[0] == ':' || strncmp(host, "0.0.0.0:", 8) == 0 || strncmp(host, "[::]:", 5) == 0;
        const char *port = strrchr(host, ':');
        cfg->public_url = any ? st_sprintf("%s://127.0.0.1%s", cfg->tls_cert ? "https" : "http",
                                           port ? port : ":8080")
                              : st_sprintf("%s://%s", cfg->tls_cert ? "https" : "http", host);
    }
    return 0;
}

void st_daemon_config_clear(struct st_daemon_config *cfg)
{
    free(cfg->config_file);
    free(cfg->data_dir);
    free(cfg->store);
    free(cfg->listen);
    free(cfg->log_level);
    free(cfg->tls_cert);
    free(cfg->tls_key);
    free(cfg->public_url);
    free(cfg->controller_url);
    free(cfg->node_name);
    free(cfg->node_token_file);
    free(cfg->drivers);
    free(cfg->vtep);
    free(cfg->external_bridge);
    for (size_t i = 0; i < cfg->n_import_images; i++)
        free(cfg->import_images[i]);
    free(cfg->import_images);
    *cfg = (struct st_daemon_config){0};
}
