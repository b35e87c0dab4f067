/* stratosd: the one binary of the cloud. `stratosd init` prepares a data dir;
 * `stratosd [run]` serves the roles asked for (all-in-one by default). This
 * file is the edge where errors are printed and turned into exit codes. */
#include <stdio.h>
#include <malloc.h>
#include <stdlib.h>
#include <sys/stat.h>

#include "daemon/config.h"
#include "daemon/init.h"
#include "daemon/run.h"
#include "lib/cleanup.h"
#include "lib/log.h"
#include "version.h"

int main(int argc, char **argv)
{
    st_autoptr(st_err) err = NULL;
    /* The store, the audit log and admin-openrc hold secrets or their hashes. */
    umask(077);
    /* argon2id's 19 MiB blocks would raise glibc's dynamic mmap threshold, after
     * which freed memory stays in per-thread arenas (measured: 13 → 54 MiB after
     * two logins); a fixed threshold and few arenas keep the daemon small. */
    mallopt(M_MMAP_THRESHOLD, 128 * 1024);
    mallopt(M_ARENA_MAX, 2);
    struct st_daemon_config cfg;
    int r = st_daemon_config_load(argc, argv, &cfg, &err);
    if (r < 0) {
        fprintf(stderr, "stratosd: %s\n", st_err_msg(err));
        fprintf(stderr, "Try 'stratosd --help'.\n");
        st_daemon_config_clear(&cfg);
        return 2;
    }
    enum st_log_level level = ST_LOG_INFO;
    if (cfg.log_level && st_log_parse_level(cfg.log_level, &level) < 0) {
        fprintf(stderr, "stratosd: invalid log level '%s'\n", cfg.log_level);
        st_daemon_config_clear(&cfg);
        return 2;
    }
    st_log_set_level(level);

    switch (cfg.command) {
    case ST_DAEMON_HELP:
        st_daemon_usage(stdout);
        break;
    case ST_DAEMON_VERSION:
        printf("stratosd %s\n", ST_VERSION);
        break;
    case ST_DAEMON_INIT:
        r = st_daemon_init(&cfg, &err);
        if (r == 0) {
            st_autofree char *openrc = st_daemon_openrc_path(&cfg);
            printf("stratos data dir ready: %s\n", cfg.data_dir);
            printf("admin credentials: %s (source it to use stratos or openstack)\n", openrc);
        }
        break;
    case ST_DAEMON_RUN:
        r = st_daemon_run(&cfg, &err);
        break;
    }
    if (r < 0)
        fprintf(stderr, "stratosd: %s\n", st_err_msg(err));
    st_daemon_config_clear(&cfg);
    return r < 0 ? 1 : 0;
}
