/* The server of bench/api-auth.sh: the real API stack (store, identity, the
 * auth hook, the policy engine) with GET /version twice: as stratosd serves
 * it (public) and at /bench/version behind authentication, with the same
 * handler, so that the difference between the two is the cost of checking
 * a token. Prints "token=<secret>" (an admin token) and "port=N" once ready.
 * Usage: bench_api_auth_server DATA_DIR [THREADS]. */
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/app.h"
#include "api/auth.h"
#include "api/router.h"
#include "api/server.h"
#include "api/system.h"
#include "identity/identity.h"
#include "lib/log.h"
#include "store/kv.h"

static struct st_route version_route;

static void find_version(const struct st_route *route, void *userdata)
{
    (void)userdata;
    if (strcmp(route->method, "GET") == 0 && strcmp(route->pattern, "/version") == 0)
        version_route = *route;
}

static int die(struct st_err *err)
{
    fprintf(stderr, "bench_api_auth_server: %s\n", st_err_msg(err));
    return 1;
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: bench_api_auth_server DATA_DIR [THREADS]\n");
        return 2;
    }
    unsigned threads = argc > 2 ? (unsigned)atoi(argv[2]) : 0;
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGPIPE);
    pthread_sigmask(SIG_BLOCK, &set, NULL);

    st_autoptr(st_err) err = NULL;
    st_autofree char *db = st_sprintf("%s/stratos.db", argv[1]);
    st_autoptr(st_kv) kv = NULL;
    st_autoptr(st_identity) identity = NULL;
    st_autofree char *password = NULL, *secret = NULL;
    st_autoptr(st_token) token = NULL;
    if (st_kv_open(db, NULL, &kv, &err) < 0 || st_identity_new(kv, NULL, &identity, &err) < 0 ||
        st_identity_bootstrap(identity, &password, &err) < 0)
        return die(err);
    struct st_auth_request ar = {
        .user_name = "admin", .password = password, .project_name = "admin", .peer = "bench"};
    if (st_identity_authenticate(identity, &ar, &secret, &token, &err) < 0)
        return die(err);

    struct st_api_app app = {.kv = kv, .identity = identity, .public_url = "http://127.0.0.1"};
    st_autoptr(st_router) router = st_router_new(&app);
    st_api_auth_install(router);
    struct st_api_system sys = {.role = "bench"};
    if (st_api_system_register(router, &sys, &err) < 0)
        return die(err);
    st_router_foreach(router, find_version, NULL);
    struct st_route authed = version_route;
    authed.pattern = "/bench/version";
    authed.action = "compute:bench:show";
    authed.flags &= ~(unsigned)ST_ROUTE_PUBLIC;
    if (st_router_add(router, &authed, &err) < 0)
        return die(err);

    struct st_api_server_config cfg = {
        .listen = "127.0.0.1:0", .threads = threads, .access_log = true};
    struct st_api_server *srv = NULL;
    if (st_api_server_start(&cfg, router, &srv, &err) < 0)
        return die(err);
    printf("token=%s\n", secret);
    fflush(stdout);
    st_log_info("bench_api_auth_server_ready", "port=%u", st_api_server_port(srv));
    sigdelset(&set, SIGPIPE);
    int sig;
    sigwait(&set, &sig);
    st_api_server_stop(srv, 5000);
    return 0;
}
