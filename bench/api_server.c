/* A minimal stratos HTTP server for bench/api-get.sh when stratosd is not
 * built: st_api_server with the system routes and the access log on, as in
 * stratosd. Usage: bench_api_server [LISTEN [THREADS]] (default
 * 127.0.0.1:8080); runs until SIGINT or SIGTERM, then stops gracefully. */
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>

#include "api/router.h"
#include "api/server.h"
#include "api/system.h"
#include "lib/log.h"

static int check_ok(void *userdata, struct st_err **err)
{
    (void)userdata;
    (void)err;
    return 0;
}

int main(int argc, char **argv)
{
    const char *listen = argc > 1 ? argv[1] : "127.0.0.1:8080";
    unsigned threads = argc > 2 ? (unsigned)atoi(argv[2]) : 0;
    const char *no_log = getenv("BENCH_NO_ACCESS_LOG");

    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGPIPE);
    pthread_sigmask(SIG_BLOCK, &set, NULL);

    st_autoptr(st_err) err = NULL;
    st_autoptr(st_router) router = st_router_new(NULL);
    struct st_api_system sys = {.store_check = check_ok, .role = "bench"};
    if (st_api_system_register(router, &sys, &err) < 0) {
        fprintf(stderr, "bench_api_server: %s\n", st_err_msg(err));
        return 1;
    }
    struct st_api_server_config cfg = {
        .listen = listen,
        .threads = threads,
        .access_log = !(no_log && no_log[0] == '1'),
    };
    struct st_api_server *srv = NULL;
    if (st_api_server_start(&cfg, router, &srv, &err) < 0) {
        fprintf(stderr, "bench_api_server: %s\n", st_err_msg(err));
        return 1;
    }
    st_log_info("bench_api_server_ready", "port=%u", st_api_server_port(srv));
    sigdelset(&set, SIGPIPE);
    int sig;
    sigwait(&set, &sig);
    st_api_server_stop(srv, 5000);
    return 0;
}
