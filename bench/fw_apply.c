/* bench_fw_apply: what a security-group change costs a node's firewall, and
 * what the nft CLI takes to load the very same ruleset, in one run.
 *
 * The node view (network/model.h) has 100 ports with port security on four
 * networks and 50 groups of 20 rules each: 1,000 rules. Every port is in two
 * groups (p % 50 and (p + 7) % 50), so two ports share each pair of group
 * chains, as ports of one tier do. Each group holds what real groups hold:
 * the default group's two rules (ingress from the group itself, egress
 * anywhere), TCP from the next group, ICMP echo, and 16 TCP/UDP rules with
 * a port range and a remote prefix of their own (distinct prefixes, so the
 * renderer merges none of them away).
 *
 * The ruleset is rendered with st_fw_render_ports and applied with
 * st_fw_apply (libnftables) into a fresh network namespace made with
 * st_net_netns_create. Then, -n times, one rule changes (its port) and the
 * change is rendered and applied again, timed. The peer, in the same
 * iteration and in alternating order: `nft -f FILE` of the identical text,
 * forked into the same namespace, timed from fork to exit (what an agent
 * that runs the CLI would pay). Every ruleset replaces the tables whole, so
 * both start from a table of the same size. For scale, each change is also
 * applied as a diff would apply it (the one changed chain flushed and
 * refilled). At the end the last change is checked to be in the kernel
 * (`nft list`).
 *
 *   bench_fw_apply [-n changes] [-d dir] [-o saved.nft]
 * (default 20 changes, a temporary dir). dir holds the namespace file and
 * the ruleset text, both removed at exit (and dir too when the bench made
 * it). -o keeps the first ruleset's text, to
 * look at or to load by hand. Needs root and nft (exits 77 otherwise). */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "lib/cleanup.h"
#include "lib/err.h"
#include "lib/files.h"
#include "lib/json.h"
#include "lib/times.h"
#include "net/firewall.h"
#include "net/net.h"

#define PORTS            100
#define NETWORKS         4
#define GROUPS           50
#define RULES            20 /* per group: GROUPS * RULES = 1,000 */
#define FREE_RULES_FIRST 4

static char *ns_path;
static char *work_dir;
static bool made_dir;

static double ms_since(int64_t t0)
{
    return (double)(st_time_mono_ns() - t0) / 1e6;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* Nearest-rank percentile of a sorted array. */
static double pct(const double *v, int n, int p)
{
    return n > 0 ? v[(p * (n - 1) + 50) / 100] : 0;
}

static void group_id(int g, char buf[40])
{
    snprintf(buf, 40, "%08x-0000-4000-8000-00000000%04x", 0x5a000000 + g, g);
}

static json_t *make_rule(int g, int j)
{
    char gid[40], rid[48];
    group_id(g, gid);
    snprintf(rid, sizeof(rid), "r-%03d-%02d", g, j);
    json_t *r =
        json_pack("{s:s, s:s, s:s}", "id", rid, "security_group_id", gid, "ethertype", "IPv4");
    char other[40];
    switch (j) {
    case 0: /* the default group's: ingress from its own members */
        json_object_set_new(r, "direction", json_string("ingress"));
        json_object_set_new(r, "remote_group_id", json_string(gid));
        break;
    case 1: /* ... and egress anywhere */
        json_object_set_new(r, "direction", json_string("egress"));
        break;
    case 2:
        group_id((g + 1) % GROUPS, other);
        json_object_set_new(r, "direction", json_string("ingress"));
        json_object_set_new(r, "protocol", json_string("tcp"));
        json_object_set_new(r, "port_range_min", json_integer(8080));
        json_object_set_new(r, "port_range_max", json_integer(8080));
        json_object_set_new(r, "remote_group_id", json_string(other));
        break;
    case 3:
        json_object_set_new(r, "direction", json_string("ingress"));
        json_object_set_new(r, "protocol", json_string("icmp"));
        json_object_set_new(r, "port_range_min", json_integer(8));
        break;
    default: {
        int k = g * RULES + j; /* < 1,000: a prefix of its own */
        char prefix[32];
        snprintf(prefix, sizeof(prefix), "10.%d.%d.0/24", 100 + k / 256, k % 256);
        json_object_set_new(r, "direction", json_string(j % 4 == 3 ? "egress" : "ingress"));
        json_object_set_new(r, "protocol", json_string(j % 2 ? "udp" : "tcp"));
        json_object_set_new(r, "port_range_min", json_integer(1000 + k));
        json_object_set_new(r, "port_range_max", json_integer(1000 + k + j % 3));
        json_object_set_new(r, "remote_ip_prefix", json_string(prefix));
        break;
    }
    }
    return r;
}

static json_t *make_view(void)
{
    json_t *networks = json_array();
    for (int n = 0; n < NETWORKS; n++) {
        char id[40], bridge[16], vxlan[16];
        snprintf(id, sizeof(id), "9e000000-0000-4000-8000-0000000020%02d", n);
        snprintf(bridge, sizeof(bridge), "stbr-%d", 2001 + n);
        snprintf(vxlan, sizeof(vxlan), "stvx-%d", 2001 + n);
        json_array_append_new(networks, json_pack("{s:s, s:i, s:s, s:s, s:s, s:i}", "id", id, "vni",
                                                  2001 + n, "type", "vxlan", "bridge", bridge,
                                                  "vxlan", vxlan, "mtu", 1450));
    }
    json_t *groups = json_object();
    for (int g = 0; g < GROUPS; g++) {
        char gid[40];
        group_id(g, gid);
        json_t *rules = json_array();
        for (int j = 0; j < RULES; j++)
            json_array_append_new(rules, make_rule(g, j));
        json_object_set_new(groups, gid, json_pack("{s:o, s:[]}", "rules", rules, "members"));
    }
    json_t *ports = json_array();
    for (int p = 0; p < PORTS; p++) {
        int n = p % NETWORKS;
        char id[40], net[40], mac[18], ip[16], gw[16], g1[40], g2[40];
        snprintf(id, sizeof(id), "%08x-0000-4000-8000-000000000000", 0x7b000000 + p);
        snprintf(net, sizeof(net), "9e000000-0000-4000-8000-0000000020%02d", n);
        snprintf(mac, sizeof(mac), "fa:16:3e:7b:%02x:%02x", p / 256, p % 256);
        snprintf(ip, sizeof(ip), "10.%d.0.%d", 200 + n, 10 + p / NETWORKS);
        snprintf(gw, sizeof(gw), "10.%d.0.1", 200 + n);
        group_id(p % GROUPS, g1);
        group_id((p + 7) % GROUPS, g2);
        json_array_append_new(ports, json_pack("{s:s, s:s, s:s, s:s, s:i, s:s, s:b, s:[s,s]}", "id",
                                               id, "network_id", net, "mac", mac, "ip", ip,
                                               "prefixlen", 24, "gateway", gw, "port_security", 1,
                                               "security_groups", g1, g2));
        json_array_append_new(json_object_get(json_object_get(groups, g1), "members"),
                              json_string(ip));
        json_array_append_new(json_object_get(json_object_get(groups, g2), "members"),
                              json_string(ip));
    }
    return json_pack("{s:i, s:s, s:i, s:o, s:o, s:o, s:[], s:n}", "revision", 1, "vtep",
                     "192.0.2.10", "mtu_overhead", 50, "networks", networks, "ports", ports,
                     "security_groups", groups, "routers", "external");
}

/* Change number c: one free rule of one group gets port 40000 + c. */
static void change_rule(json_t *view, int c)
{
    char gid[40];
    group_id((c * 7) % GROUPS, gid);
    json_t *rules =
        json_object_get(json_object_get(json_object_get(view, "security_groups"), gid), "rules");
    json_t *rule =
        json_array_get(rules, (size_t)(FREE_RULES_FIRST + c % (RULES - FREE_RULES_FIRST)));
    json_object_set_new(rule, "port_range_min", json_integer(40000 + c));
    json_object_set_new(rule, "port_range_max", json_integer(40000 + c));
}

/* The change as a diff would apply it: only the changed group chain, flushed
 * and refilled from the full rendering (the same rules, the same syntax). */
static char *chain_update(const char *text, int c)
{
    char gid[40];
    group_id((c * 7) % GROUPS, gid);
    int j = FREE_RULES_FIRST + c % (RULES - FREE_RULES_FIRST);
    st_autofree char *chain = st_sprintf("sg-%s-%s", gid, j % 4 == 3 ? "egress" : "ingress");
    st_autofree char *head = st_sprintf("\tchain %s {\n", chain);
    const char *start = strstr(text, head);
    const char *end = start ? strstr(start, "\n\t}\n") : NULL;
    if (!end)
        return NULL;
    return st_sprintf("flush chain inet stratos %s\ntable inet stratos {\n%.*s\n\t}\n}\n", chain,
                      (int)(end - start), start);
}

/* `nft ARGS...` forked into the bench namespace (once it exists): its exit status (or -errno),
 * its wall time in *ret_ms, and its stdout into *ret_out when asked. */
static int run_nft(const char *const *args, double *ret_ms, char **ret_out)
{
    int pipefd[2] = {-1, -1};
    if (ret_out && pipe2(pipefd, O_CLOEXEC) < 0)
        return -errno;
    int64_t t0 = st_time_mono_ns();
    pid_t pid = fork();
    if (pid < 0)
        return -errno;
    if (pid == 0) {
        int fd = ns_path ? open(ns_path, O_RDONLY | O_CLOEXEC) : -2;
        if (fd == -1 || (fd >= 0 && setns(fd, CLONE_NEWNET) < 0))
            _exit(126);
        if (ret_out)
            dup2(pipefd[1], STDOUT_FILENO);
        execvp("nft", (char *const *)args);
        _exit(127);
    }
    st_autofree char *out = NULL;
    if (ret_out) {
        close(pipefd[1]);
        size_t len = 0, cap = 0;
        for (;;) {
            if (len + 4096 + 1 > cap) {
                cap = cap ? cap * 2 : 65536;
                out = st_xrealloc(out, cap);
            }
            ssize_t n = read(pipefd[0], out + len, cap - len - 1);
            if (n < 0 && errno == EINTR)
                continue;
            if (n <= 0)
                break;
            len += (size_t)n;
        }
        out[len] = '\0';
        close(pipefd[0]);
    }
    int status = 0;
    while (waitpid(pid, &status, 0) < 0)
        if (errno != EINTR)
            return -errno;
    if (ret_ms)
        *ret_ms = ms_since(t0);
    if (ret_out)
        *ret_out = st_steal(&out);
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

static void cleanup(void)
{
    if (ns_path)
        st_net_netns_delete(ns_path, NULL);
    if (work_dir) {
        st_autofree char *rules = st_sprintf("%s/ruleset.nft", work_dir);
        unlink(rules);
        if (made_dir)
            rmdir(work_dir);
    }
}

static _Noreturn void die(const char *what, struct st_err *err)
{
    fprintf(stderr, "bench_fw_apply: %s: %s\n", what, err ? st_err_msg(err) : strerror(errno));
    exit(1);
}

int main(int argc, char **argv)
{
    int changes = 20;
    int opt;
    const char *save = NULL;
    while ((opt = getopt(argc, argv, "n:d:o:")) != -1) {
        switch (opt) {
        case 'n':
            changes = atoi(optarg);
            break;
        case 'd':
            work_dir = st_strdup(optarg);
            break;
        case 'o':
            save = optarg;
            break;
        default:
            fprintf(stderr, "usage: %s [-n changes] [-d dir] [-o saved.nft]\n", argv[0]);
            return 2;
        }
    }
    if (changes < 1 || changes > 100000) {
        fprintf(stderr, "bench_fw_apply: -n must be 1..100000\n");
        return 2;
    }
    if (geteuid() != 0) {
        printf("SKIP fw-apply: needs root (network namespaces, nftables)\n");
        return 77;
    }
    const char *const version[] = {"nft", "--version", NULL};
    st_autofree char *nft_version = NULL;
    if (run_nft(version, NULL, &nft_version) != 0) {
        printf("SKIP fw-apply: nft is not installed (scripts/install-deps.sh)\n");
        return 77;
    }
    if (!work_dir) {
        char tmpl[] = "/tmp/stratos-bench-fw.XXXXXX";
        if (!mkdtemp(tmpl))
            die("mkdtemp", NULL);
        work_dir = st_strdup(tmpl);
        made_dir = true;
    }
    ns_path = st_sprintf("%s/fw-bench-ns", work_dir);
    st_autofree char *rules_path = st_sprintf("%s/ruleset.nft", work_dir);
    atexit(cleanup);

    st_autoptr(st_err) err = NULL;
    if (st_net_netns_create(ns_path, &err) < 0)
        die("creating the namespace", err);

    st_autoptr(json_t) view = make_view();
    st_autofree char *text = NULL;
    int64_t t0 = st_time_mono_ns();
    if (st_fw_render_ports(view, &text, &err) < 0)
        die("rendering", err);
    double first_render = ms_since(t0);
    t0 = st_time_mono_ns();
    if (st_fw_apply(ns_path, text, &err) < 0)
        die("applying the first ruleset", err);
    double first_apply = ms_since(t0);
    size_t accepts = 0, lines = 0;
    for (const char *p = text; (p = strstr(p, " accept\n")); p++)
        accepts++;
    for (const char *p = text; (p = strchr(p, '\n')); p++)
        lines++;
    size_t bytes = strlen(text);
    if (save && st_write_file_atomic(save, text, bytes, 0644, &err) < 0)
        die("saving the ruleset", err);

    double *render = st_new0(double, (size_t)changes);
    double *apply = st_new0(double, (size_t)changes);
    double *total = st_new0(double, (size_t)changes);
    double *cli = st_new0(double, (size_t)changes);
    double *diff = st_new0(double, (size_t)changes);
    for (int c = 0; c < changes; c++) {
        change_rule(view, c);
        free(text);
        text = NULL;
        t0 = st_time_mono_ns();
        if (st_fw_render_ports(view, &text, &err) < 0)
            die("rendering", err);
        render[c] = ms_since(t0);
        if (st_write_file_atomic(rules_path, text, strlen(text), 0644, &err) < 0)
            die("writing the ruleset", err);
        const char *const load[] = {"nft", "-f", rules_path, NULL};
        for (int k = 0; k < 2; k++) {
            if ((k == 0) == (c % 2 == 0)) {
                t0 = st_time_mono_ns();
                if (st_fw_apply(ns_path, text, &err) < 0)
                    die("applying a change", err);
                apply[c] = ms_since(t0);
            } else {
                int rc = run_nft(load, &cli[c], NULL);
                if (rc != 0) {
                    fprintf(stderr, "bench_fw_apply: nft -f %s exited with %d\n", rules_path, rc);
                    return 1;
                }
            }
        }
        total[c] = render[c] + apply[c];
        st_autofree char *update = chain_update(text, c);
        if (!update) {
            fprintf(stderr, "bench_fw_apply: the changed rule's chain is not in the ruleset\n");
            return 1;
        }
        t0 = st_time_mono_ns();
        if (st_fw_apply(ns_path, update, &err) < 0)
            die("applying one chain", err);
        diff[c] = ms_since(t0);
    }

    /* the last change is what the kernel holds */
    const char *const list[] = {"nft", "list", "table", "inet", "stratos", NULL};
    st_autofree char *listing = NULL;
    st_autofree char *want = st_sprintf("dport %d ", 40000 + changes - 1);
    if (run_nft(list, NULL, &listing) != 0 || !strstr(listing, want)) {
        fprintf(stderr, "bench_fw_apply: the last change (%s) is not in the kernel's table\n",
                want);
        return 1;
    }

    qsort(render, (size_t)changes, sizeof(double), cmp_double);
    qsort(apply, (size_t)changes, sizeof(double), cmp_double);
    qsort(total, (size_t)changes, sizeof(double), cmp_double);
    qsort(cli, (size_t)changes, sizeof(double), cmp_double);
    qsort(diff, (size_t)changes, sizeof(double), cmp_double);
    char *nl = strchr(nft_version, '\n');
    if (nl)
        *nl = '\0';
    printf("fw-apply: %d ports on %d networks, %d groups x %d rules = %d rules; ruleset %zu lines,"
           " %zu bytes, %zu accept rules (%s)\n",
           PORTS, NETWORKS, GROUPS, RULES, GROUPS * RULES, lines, bytes, accepts, nft_version);
    printf("  first ruleset into an empty namespace: render %.2f ms, apply %.2f ms\n", first_render,
           first_apply);
    printf("  one rule changed, %d changes:\n", changes);
    printf("    stratos render                  p50 %7.2f ms  p95 %7.2f ms\n",
           pct(render, changes, 50), pct(render, changes, 95));
    printf("    stratos apply (libnftables)     p50 %7.2f ms  p95 %7.2f ms\n",
           pct(apply, changes, 50), pct(apply, changes, 95));
    printf("    stratos render + apply          p50 %7.2f ms  p95 %7.2f ms  max %.2f ms\n",
           pct(total, changes, 50), pct(total, changes, 95), total[changes - 1]);
    printf("    nft -f of the same text (CLI)   p50 %7.2f ms  p95 %7.2f ms  max %.2f ms\n",
           pct(cli, changes, 50), pct(cli, changes, 95), cli[changes - 1]);
    printf("    ratio stratos render+apply / nft -f, p50: %.2f\n",
           pct(total, changes, 50) / pct(cli, changes, 50));
    printf("    for scale, only the changed chain (flush + refill, libnftables): p50 %.2f ms  p95 "
           "%.2f ms\n",
           pct(diff, changes, 50), pct(diff, changes, 95));
    free(render);
    free(apply);
    free(total);
    free(cli);
    free(diff);
    return 0;
}
