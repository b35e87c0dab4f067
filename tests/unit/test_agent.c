/* Unit tests of src/agent: the reconcile decision table (every transition),
 * the sim driver, host capacity, the child subreaper, the HTTP client, the
 * image cache, and the whole agent against a tiny fake internal API (a
 * thread with a listening socket answering the JSON of api/internal.h):
 * assignment → ACTIVE, stop → SHUTOFF, reboot, delete → DELETED, restart
 * re-adopts without a second create, garbage collection, failures shown as
 * ERROR with a fault, a controller that is down, simulated nodes. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <cmocka.h>

#include "agent/agent.h"
#include "agent/client.h"
#include "agent/driver.h"
#include "agent/host.h"
#include "agent/image_cache.h"
#include "agent/reaper.h"
#include "agent/reconcile.h"
#include "lib/cleanup.h"
#include "lib/files.h"
#include "lib/json.h"
#include "lib/log.h"
#include "lib/times.h"
#include "lib/uuid.h"

#define TOKEN "test-node-token-0123456789"

/* ------------------------------------------------------------------ */
/* helpers                                                              */

static char *make_tmpdir(void)
{
    char tmpl[] = "/tmp/st-agent-test-XXXXXX";
    char *d = mkdtemp(tmpl);
    assert_non_null(d);
    return st_strdup(d);
}

static void rm_rf(const char *path)
{
    st_autofree char *cmd = st_sprintf("rm -rf '%s'", path);
    assert_int_equal(system(cmd), 0);
}

static void sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* ------------------------------------------------------------------ */
/* the reconcile decision table                                         */

static json_t *doc_new(const char *power, bool deleted, int reboot, int observed, const char *state,
                       const char *observed_power, const char *task)
{
    json_t *doc = json_pack("{s:s,s:{s:s,s:b,s:i,s:s,s:s},s:{s:s,s:i}}", "id",
                            "11111111-2222-4333-8444-555555555555", "spec", "power", power,
                            "deleted", deleted, "reboot", reboot, "driver", "container", "host",
                            "n1", "status", "state", state, "observed_reboot", observed);
    json_t *status = json_object_get(doc, "status");
    if (observed_power)
        json_object_set_new(status, "observed_power", json_string(observed_power));
    if (task)
        json_object_set_new(status, "task_state", json_string(task));
    return doc;
}

static struct st_instance_info info_of(enum st_instance_state s)
{
    return (struct st_instance_info){.state = s};
}

static void expect_decision(json_t *doc, struct st_instance_info *info, enum st_agent_action action,
                            const char *state, int power_state)
{
    struct st_agent_decision d;
    st_agent_decide(doc, info, &d);
    assert_string_equal(st_agent_action_name(d.action), st_agent_action_name(action));
    if (state) {
        assert_non_null(d.state);
        assert_string_equal(d.state, state);
        assert_int_equal(d.power_state, power_state);
    } else {
        assert_null(d.state);
    }
}

static void test_decide_deleted(void **state)
{
    (void)state;
    st_autoptr(json_t) doc = doc_new("on", true, 0, 0, "ACTIVE", "on", NULL);
    struct st_instance_info running = info_of(ST_INSTANCE_RUNNING);
    struct st_instance_info absent = info_of(ST_INSTANCE_ABSENT);
    struct st_instance_info stopped = info_of(ST_INSTANCE_STOPPED);
    expect_decision(doc, &running, ST_AGENT_DESTROY, "DELETED", 0);
    expect_decision(doc, &stopped, ST_AGENT_DESTROY, "DELETED", 0);
    expect_decision(doc, &absent, ST_AGENT_REPORT, "DELETED", 0);
    expect_decision(doc, NULL, ST_AGENT_REPORT, "DELETED", 0);
    /* deletion wins over an ERROR (which is otherwise sticky) */
    st_autoptr(json_t) err = doc_new("on", true, 0, 0, "ERROR", NULL, NULL);
    expect_decision(err, &running, ST_AGENT_DESTROY, "DELETED", 0);
    /* the DELETED report carries no instance facts */
    struct st_agent_decision d;
    st_agent_decide(doc, &absent, &d);
    st_autoptr(json_t) report = st_agent_status_report(doc, &d, &absent, NULL, 0);
    assert_string_equal(json_string_value(json_object_get(report, "state")), "DELETED");
    assert_null(json_object_get(report, "instance"));
}

static void test_decide_power_off(void **state)
{
    (void)state;
    st_autoptr(json_t) doc = doc_new("off", false, 0, 0, "ACTIVE", "on", "powering-off");
    struct st_instance_info running = info_of(ST_INSTANCE_RUNNING);
    struct st_instance_info stopped = info_of(ST_INSTANCE_STOPPED);
    struct st_instance_info absent = info_of(ST_INSTANCE_ABSENT);
    expect_decision(doc, &running, ST_AGENT_STOP, "SHUTOFF", 4);
    expect_decision(doc, &stopped, ST_AGENT_REPORT, "SHUTOFF", 4);
    expect_decision(doc, &absent, ST_AGENT_REPORT, "SHUTOFF", 4);
    struct st_agent_decision d;
    st_agent_decide(doc, &running, &d);
    assert_string_equal(d.power, "off");
    /* once reported, nothing changes any more */
    st_autoptr(json_t) report = st_agent_status_report(doc, &d, &stopped, NULL, 0);
    assert_true(st_agent_status_changed(doc, report));
    json_object_update(json_object_get(doc, "status"), report);
    st_agent_decide(doc, &stopped, &d);
    st_autoptr(json_t) again = st_agent_status_report(doc, &d, &stopped, NULL, 0);
    assert_false(st_agent_status_changed(doc, again));
}

static void test_decide_power_on(void **state)
{
    (void)state;
    st_autoptr(json_t) build = doc_new("on", false, 0, 0, "BUILD", NULL, "spawning");
    struct st_instance_info absent = info_of(ST_INSTANCE_ABSENT);
    struct st_instance_info created = info_of(ST_INSTANCE_CREATED);
    struct st_instance_info running = info_of(ST_INSTANCE_RUNNING);
    expect_decision(build, &absent, ST_AGENT_CREATE_START, "ACTIVE", 1);
    expect_decision(build, &created, ST_AGENT_START, "ACTIVE", 1);
    /* re-adoption: it runs already (agent restart) → report, never create */
    expect_decision(build, &running, ST_AGENT_REPORT, "ACTIVE", 1);

    /* ACTIVE and running: the report equals the status, nothing is sent */
    st_autoptr(json_t) active = doc_new("on", false, 0, 0, "ACTIVE", "on", NULL);
    json_object_set_new(json_object_get(active, "status"), "power_state", json_integer(1));
    json_object_set_new(json_object_get(active, "status"), "fault", json_null());
    json_object_set_new(json_object_get(active, "status"), "instance",
                        json_pack("{s:i}", "pid", 42));
    struct st_agent_decision d;
    running.pid = 42;
    st_agent_decide(active, &running, &d);
    st_autoptr(json_t) report = st_agent_status_report(active, &d, &running, NULL, 0);
    assert_false(st_agent_status_changed(active, report));
    /* a new pid is news */
    running.pid = 43;
    st_autoptr(json_t) report2 = st_agent_status_report(active, &d, &running, NULL, 0);
    assert_true(st_agent_status_changed(active, report2));
    /* an instance gone from an ACTIVE server is made again */
    expect_decision(active, &absent, ST_AGENT_CREATE_START, "ACTIVE", 1);
}

static void test_decide_reboot(void **state)
{
    (void)state;
    st_autoptr(json_t) doc = doc_new("on", false, 2, 1, "ACTIVE", "on", "rebooting");
    struct st_instance_info running = info_of(ST_INSTANCE_RUNNING);
    struct st_instance_info stopped = info_of(ST_INSTANCE_STOPPED);
    struct st_instance_info absent = info_of(ST_INSTANCE_ABSENT);
    expect_decision(doc, &running, ST_AGENT_REBOOT, "ACTIVE", 1);
    expect_decision(doc, &stopped, ST_AGENT_START, "ACTIVE", 1);
    expect_decision(doc, &absent, ST_AGENT_CREATE_START, "ACTIVE", 1);
    struct st_agent_decision d;
    st_agent_decide(doc, &running, &d);
    assert_true(d.ack_reboot);
    st_autoptr(json_t) report = st_agent_status_report(doc, &d, &running, NULL, 0);
    assert_int_equal(json_integer_value(json_object_get(report, "observed_reboot")), 2);
    /* a hard reboot of an ERROR server retries it (ERROR is otherwise sticky) */
    st_autoptr(json_t) err = doc_new("on", false, 1, 0, "ERROR", "on", "rebooting_hard");
    expect_decision(err, &absent, ST_AGENT_CREATE_START, "ACTIVE", 1);
    /* a reboot of a stopped server is acknowledged, not acted on */
    st_autoptr(json_t) off = doc_new("off", false, 3, 0, "SHUTOFF", "off", NULL);
    st_agent_decide(off, &stopped, &d);
    assert_int_equal(d.action, ST_AGENT_REPORT);
    st_autoptr(json_t) r2 = st_agent_status_report(off, &d, &stopped, NULL, 0);
    assert_int_equal(json_integer_value(json_object_get(r2, "observed_reboot")), 3);
}

static void test_decide_stopped_while_on(void **state)
{
    (void)state;
    struct st_instance_info stopped = info_of(ST_INSTANCE_STOPPED);
    /* stopped on request earlier, now asked to run: start */
    st_autoptr(json_t) restart = doc_new("on", false, 0, 0, "SHUTOFF", "off", "powering-on");
    expect_decision(restart, &stopped, ST_AGENT_START, "ACTIVE", 1);
    st_autoptr(json_t) restart2 = doc_new("on", false, 0, 0, "SHUTOFF", "off", NULL);
    expect_decision(restart2, &stopped, ST_AGENT_START, "ACTIVE", 1);
    st_autoptr(json_t) asked = doc_new("on", false, 0, 0, "ERROR", "on", "powering-on");
    expect_decision(asked, &stopped, ST_AGENT_START, "ACTIVE", 1);

    /* died by itself: ERROR with a fault saying how, no restart */
    st_autoptr(json_t) active = doc_new("on", false, 0, 0, "ACTIVE", "on", NULL);
    stopped.exit_status = 137;
    stopped.details = json_pack("{s:s}", "reason", "oom");
    struct st_agent_decision d;
    st_agent_decide(active, &stopped, &d);
    assert_int_equal(d.action, ST_AGENT_REPORT);
    assert_string_equal(d.state, "ERROR");
    assert_int_equal(d.power_state, 6);
    assert_non_null(strstr(d.fault, "out of memory"));
    assert_non_null(strstr(d.fault, "signal 9"));
    st_autoptr(json_t) report = st_agent_status_report(active, &d, &stopped, NULL, 1000);
    assert_non_null(
        strstr(json_string_value(json_object_get(json_object_get(report, "fault"), "message")),
               "out of memory"));
    st_instance_info_clear(&stopped);

    stopped = info_of(ST_INSTANCE_STOPPED);
    st_agent_decide(active, &stopped, &d);
    assert_string_equal(d.state, "ERROR");
    assert_int_equal(d.power_state, 4);
    assert_non_null(strstr(d.fault, "stopped by itself (exit status 0)"));

    /* once that is reported, it stays as it is */
    st_autoptr(json_t) reported = doc_new("on", false, 0, 0, "ERROR", "on", NULL);
    expect_decision(reported, &stopped, ST_AGENT_NONE, NULL, 0);
}

static void test_decide_error_sticky(void **state)
{
    (void)state;
    st_autoptr(json_t) doc = doc_new("on", false, 0, 0, "ERROR", "on", NULL);
    struct st_instance_info absent = info_of(ST_INSTANCE_ABSENT);
    struct st_instance_info created = info_of(ST_INSTANCE_CREATED);
    struct st_instance_info running = info_of(ST_INSTANCE_RUNNING);
    expect_decision(doc, &absent, ST_AGENT_NONE, NULL, 0);
    expect_decision(doc, &created, ST_AGENT_NONE, NULL, 0);
    /* what runs is what is: ACTIVE */
    expect_decision(doc, &running, ST_AGENT_REPORT, "ACTIVE", 1);
    /* stop of an ERROR server: SHUTOFF */
    st_autoptr(json_t) off = doc_new("off", false, 0, 0, "ERROR", "on", "powering-off");
    expect_decision(off, &absent, ST_AGENT_REPORT, "SHUTOFF", 4);
}

static void test_status_report_failure(void **state)
{
    (void)state;
    st_autoptr(json_t) doc = doc_new("on", false, 1, 0, "BUILD", NULL, NULL);
    struct st_instance_info absent = info_of(ST_INSTANCE_ABSENT);
    struct st_agent_decision d;
    st_agent_decide(doc, &absent, &d);
    assert_int_equal(d.action, ST_AGENT_CREATE_START);
    st_autoptr(json_t) r1 =
        st_agent_status_report(doc, &d, &absent, "creating the instance: no such image", 1000);
    assert_string_equal(json_string_value(json_object_get(r1, "state")), "ERROR");
    assert_int_equal(json_integer_value(json_object_get(r1, "power_state")), 0);
    json_t *fault = json_object_get(r1, "fault");
    assert_string_equal(json_string_value(json_object_get(fault, "message")),
                        "creating the instance: no such image");
    assert_int_equal(json_integer_value(json_object_get(fault, "code")), 500);
    /* the reboot is acknowledged even though it failed: no retry loop */
    assert_int_equal(json_integer_value(json_object_get(r1, "observed_reboot")), 1);
    /* the controller owns these */
    assert_null(json_object_get(r1, "launched_at"));
    assert_null(json_object_get(r1, "task_state"));
    /* same fault later (other timestamp): not a change */
    json_object_update(json_object_get(doc, "status"), r1);
    st_autoptr(json_t) r2 =
        st_agent_status_report(doc, &d, &absent, "creating the instance: no such image", 99000);
    assert_false(st_agent_status_changed(doc, r2));
    st_autoptr(json_t) r3 = st_agent_status_report(doc, &d, &absent, "another cause", 99000);
    assert_true(st_agent_status_changed(doc, r3));
}

/* ------------------------------------------------------------------ */
/* the sim driver                                                       */

static void test_sim_driver(void **state)
{
    (void)state;
    st_autofree char *dir = make_tmpdir();
    const struct st_driver *sim = st_driver_lookup("sim");
    assert_non_null(sim);
    assert_null(st_driver_lookup("nope"));
    struct st_driver_ctx ctx = {.data_dir = dir, .node_name = "n1"};
    st_autoptr(json_t) facts = json_object();
    assert_int_equal(sim->probe(&ctx, facts, NULL), 0);
    assert_string_equal(json_string_value(json_object_get(facts, "kind")), "container");
    assert_true(json_is_true(json_object_get(facts, "simulated")));

    const char *id = "aaaaaaaa-bbbb-4ccc-8ddd-eeeeeeeeeeee";
    st_autoptr(json_t) server = json_pack("{s:s,s:s,s:{s:{s:s},s:{}}}", "id", id, "name", "web",
                                          "spec", "image", "id", "img", "metadata");
    struct st_instance_info info = {0};
    assert_int_equal(sim->state(&ctx, id, &info, NULL), 0);
    assert_int_equal(info.state, ST_INSTANCE_ABSENT);
    assert_int_equal(sim->create(&ctx, server, NULL), 0);
    assert_int_equal(sim->create(&ctx, server, NULL), 0); /* idempotent */
    assert_int_equal(sim->state(&ctx, id, &info, NULL), 0);
    assert_int_equal(info.state, ST_INSTANCE_CREATED);
    st_instance_info_clear(&info);
    assert_int_equal(sim->start(&ctx, server, NULL), 0);
    assert_int_equal(sim->state(&ctx, id, &info, NULL), 0);
    assert_int_equal(info.state, ST_INSTANCE_RUNNING);
    assert_int_equal(json_integer_value(json_object_get(info.details, "creates")), 1);
    assert_int_equal(json_integer_value(json_object_get(info.details, "starts")), 1);
    assert_true(json_is_true(json_object_get(info.details, "simulated")));
    st_instance_info_clear(&info);

    st_autoptr(json_t) ids = NULL;
    assert_int_equal(sim->list(&ctx, &ids, NULL), 0);
    assert_int_equal(json_array_size(ids), 1);
    assert_string_equal(json_string_value(json_array_get(ids, 0)), id);

    assert_int_equal(sim->stop(&ctx, id, 1, NULL), 0);
    assert_int_equal(sim->state(&ctx, id, &info, NULL), 0);
    assert_int_equal(info.state, ST_INSTANCE_STOPPED);
    assert_int_equal(info.exit_status, 0);
    st_instance_info_clear(&info);

    st_autofree char *console = NULL;
    assert_int_equal(sim->console_path(&ctx, id, &console, NULL), 0);
    st_autofree char *text = NULL;
    assert_int_equal(st_read_file(console, 65536, &text, NULL, NULL), 0);
    assert_non_null(strstr(text, "nothing runs"));
    assert_non_null(strstr(text, "simulated instance stopped"));

    assert_int_equal(sim->destroy(&ctx, id, NULL), 0);
    assert_int_equal(sim->destroy(&ctx, id, NULL), 0); /* idempotent */
    assert_int_equal(sim->state(&ctx, id, &info, NULL), 0);
    assert_int_equal(info.state, ST_INSTANCE_ABSENT);
    st_autofree char *idir = st_sprintf("%s/instances/%s", dir, id);
    assert_int_equal(access(idir, F_OK), -1);

    /* an id that would escape the data dir is refused */
    st_autoptr(st_err) err = NULL;
    assert_int_equal(sim->state(&ctx, "../x", &info, &err), -EINVAL);

    /* failure injection */
    st_autoptr(json_t) bad =
        json_pack("{s:s,s:{s:{s:s}}}", "id", id, "spec", "metadata", "sim:fail", "create");
    st_autoptr(st_err) cerr = NULL;
    assert_int_equal(sim->create(&ctx, bad, &cerr), -EIO);
    assert_non_null(strstr(st_err_msg(cerr), "simulated failure of create"));
    rm_rf(dir);
}

/* ------------------------------------------------------------------ */
/* host capacity                                                        */

static void write_text(const char *path, const char *text)
{
    assert_int_equal(st_write_file_atomic(path, text, strlen(text), 0600, NULL), 0);
}

static void test_host_capacity(void **state)
{
    (void)state;
    st_autofree char *dir = make_tmpdir();
    st_autofree char *cpuinfo = st_sprintf("%s/cpuinfo", dir);
    st_autofree char *meminfo = st_sprintf("%s/meminfo", dir);
    st_autofree char *freq = st_sprintf("%s/freq", dir);
    write_text(cpuinfo, "processor\t: 0\nmodel name\t: X\ncpu MHz\t\t: 2596.142\n");
    write_text(meminfo, "MemTotal:       24684092 kB\nMemFree: 1 kB\n");
    write_text(freq, "3500000\n");
    struct st_host_sources src = {.cpuinfo = cpuinfo, .cpufreq_max = freq, .meminfo = meminfo};
    st_autoptr(json_t) cap = NULL;
    assert_int_equal(st_host_capacity(dir, &src, &cap, NULL), 0);
    assert_int_equal(json_integer_value(json_object_get(cap, "cpu_mhz")), 2596);
    assert_int_equal(json_integer_value(json_object_get(cap, "memory_mb")), 24105);
    assert_true(json_integer_value(json_object_get(cap, "vcpus")) >= 1);
    assert_true(json_integer_value(json_object_get(cap, "disk_gb")) >= 1);

    /* no "cpu MHz" (some virtual machines): cpufreq's maximum */
    write_text(cpuinfo, "processor\t: 0\n");
    json_decref(cap);
    cap = NULL;
    assert_int_equal(st_host_capacity(dir, &src, &cap, NULL), 0);
    assert_int_equal(json_integer_value(json_object_get(cap, "cpu_mhz")), 3500);

    /* the real machine */
    json_decref(cap);
    cap = NULL;
    assert_int_equal(st_host_capacity(dir, NULL, &cap, NULL), 0);
    assert_int_equal(json_integer_value(json_object_get(cap, "vcpus")),
                     sysconf(_SC_NPROCESSORS_ONLN));
    assert_true(json_integer_value(json_object_get(cap, "memory_mb")) > 0);

    write_text(meminfo, "nothing\n");
    st_autoptr(st_err) err = NULL;
    json_decref(cap);
    cap = NULL;
    assert_int_equal(st_host_capacity(dir, &src, &cap, &err), -EINVAL);
    assert_non_null(strstr(st_err_msg(err), "MemTotal"));
    rm_rf(dir);
}

/* ------------------------------------------------------------------ */
/* the child subreaper                                                  */

static void test_reaper(void **state)
{
    (void)state;
    struct st_reaper *r = NULL;
    assert_int_equal(st_reaper_start(50, &r, NULL), 0);

    /* a child its parent waits for: the status is the parent's, not stolen */
    pid_t child = fork();
    assert_true(child >= 0);
    if (child == 0) {
        usleep(150 * 1000);
        _exit(3);
    }
    int status = 0;
    assert_int_equal(waitpid(child, &status, 0), child);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 3);

    /* an orphaned grandchild is re-parented to us and reaped, promptly */
    int pfd[2];
    assert_int_equal(pipe(pfd), 0);
    child = fork();
    assert_true(child >= 0);
    if (child == 0) {
        pid_t g = fork();
        if (g == 0) {
            usleep(200 * 1000);
            _exit(7);
        }
        if (write(pfd[1], &g, sizeof(g)) != sizeof(g))
            _exit(1);
        _exit(0);
    }
    pid_t grandchild = 0;
    assert_int_equal(read(pfd[0], &grandchild, sizeof(grandchild)), sizeof(grandchild));
    close(pfd[0]);
    close(pfd[1]);
    assert_int_equal(waitpid(child, &status, 0), child);
    int gstatus = -1;
    for (int i = 0; i < 300 && st_reaper_exit_status(grandchild, &gstatus) < 0; i++)
        sleep_ms(10);
    assert_int_equal(st_reaper_exit_status(grandchild, &gstatus), 0);
    assert_true(WIFEXITED(gstatus));
    assert_int_equal(WEXITSTATUS(gstatus), 7);
    assert_int_equal(kill(grandchild, 0), -1); /* gone, not a zombie */
    assert_int_equal(errno, ESRCH);
    st_reaper_stop(r);
}

/* ------------------------------------------------------------------ */
/* a fake controller: the internal API of api/internal.h                */

struct fake {
    int listen_fd;
    uint16_t port;
    pthread_t thread;
    pthread_mutex_t lock;
    pthread_cond_t cond;
    bool stop;
    int64_t revision;
    json_t *servers;  /* id → document (with "_rev") */
    json_t *nodes;    /* name → last PUT body */
    json_t *consoles; /* id → text */
    json_t *images;   /* id → content */
    unsigned long status_puts, node_puts, lists, full_lists, image_heads;
    int gone_once; /* answer the next incremental list with 410 */
    bool gone_served, relisted_after_gone;
    int conns[64]; /* open connections (-1: free slot), shut down by fake_stop */
    int active;    /* connection threads still running */
};

struct conn_arg {
    struct fake *f;
    int fd;
};

static bool read_request(int fd, char **ret_head, char **ret_body, size_t *ret_len)
{
    size_t cap = 8192, len = 0;
    char *buf = malloc(cap);
    char *end = NULL;
    while (!end) {
        if (len + 1 >= cap) {
            cap *= 2;
            buf = realloc(buf, cap);
        }
        ssize_t n = read(fd, buf + len, cap - len - 1);
        if (n <= 0) {
            free(buf);
            return false;
        }
        len += (size_t)n;
        buf[len] = '\0';
        end = strstr(buf, "\r\n\r\n");
    }
    size_t head_len = (size_t)(end - buf) + 4;
    size_t clen = 0;
    const char *cl = strcasestr(buf, "\r\nContent-Length:");
    if (cl && cl < end)
        clen = strtoul(cl + 17, NULL, 10);
    char *body = malloc(clen + 1);
    size_t have = len - head_len < clen ? len - head_len : clen;
    memcpy(body, buf + head_len, have);
    while (have < clen) {
        ssize_t n = read(fd, body + have, clen - have);
        if (n <= 0) {
            free(buf);
            free(body);
            return false;
        }
        have += (size_t)n;
    }
    body[clen] = '\0';
    buf[head_len] = '\0';
    *ret_head = buf;
    *ret_body = body;
    *ret_len = clen;
    return true;
}

static void respond(int fd, int status, const char *ctype, const char *body, size_t len)
{
    char head[256];
    int n = snprintf(head, sizeof(head),
                     "HTTP/1.1 %d X\r\nContent-Type: %s\r\nContent-Length: %zu\r\n\r\n", status,
                     ctype, len);
    if (write(fd, head, (size_t)n) < 0 || (len && write(fd, body, len) < 0))
        return;
}

static void respond_json(int fd, int status, json_t *v)
{
    st_autofree char *s = v ? st_json_dumps(v) : st_strdup("");
    respond(fd, status, "application/json", s, strlen(s));
    json_decref(v);
}

static int64_t query_num(const char *query, const char *key)
{
    st_autofree char *k = st_sprintf("%s=", key);
    const char *p = query ? strstr(query, k) : NULL;
    return p ? strtoll(p + strlen(k), NULL, 10) : 0;
}

static json_t *host_docs(struct fake *f, const char *node, int64_t after)
{
    json_t *out = json_array();
    const char *id;
    json_t *doc;
    json_object_foreach(f->servers, id, doc)
    {
        const char *host = json_string_value(json_object_get(json_object_get(doc, "spec"), "host"));
        if (host && strcmp(host, node) == 0 &&
            json_integer_value(json_object_get(doc, "_rev")) > after)
            json_array_append_new(out, json_deep_copy(doc));
    }
    return out;
}

/* path == prefix + name + suffix, name one segment: copied to name. */
static bool match(const char *path, const char *prefix, const char *suffix, char name[256])
{
    size_t pl = strlen(prefix), sl = strlen(suffix), len = strlen(path);
    if (len <= pl + sl || strncmp(path, prefix, pl) != 0 || strcmp(path + len - sl, suffix) != 0)
        return false;
    size_t nl = len - pl - sl;
    if (nl >= 256 || memchr(path + pl, '/', nl))
        return false;
    memcpy(name, path + pl, nl);
    name[nl] = '\0';
    return true;
}

static void handle(struct fake *f, int fd, const char *method, const char *path, const char *query,
                   const char *body, size_t len)
{
    char name[256];
    pthread_mutex_lock(&f->lock);
    if (match(path, "/internal/v1/nodes/", "/servers", name) && strcmp(method, "GET") == 0) {
        int64_t after = query_num(query, "after"), wait = query_num(query, "wait");
        f->lists++;
        if (after > 0 && f->gone_once) {
            f->gone_once = 0;
            f->gone_served = true;
            pthread_mutex_unlock(&f->lock);
            respond_json(fd, 410, json_pack("{s:s}", "message", "compacted"));
            return;
        }
        if (after == 0) {
            f->full_lists++;
            f->relisted_after_gone = f->gone_served;
        }
        int64_t deadline = st_time_mono_ns() / 1000000 + wait * 1000;
        json_t *docs = host_docs(f, name, after);
        while (after > 0 && json_array_size(docs) == 0 && !f->stop &&
               st_time_mono_ns() / 1000000 < deadline) {
            struct timespec ts = {deadline / 1000, (deadline % 1000) * 1000000};
            pthread_cond_timedwait(&f->cond, &f->lock, &ts);
            json_decref(docs);
            docs = host_docs(f, name, after);
        }
        json_t *resp = json_pack("{s:I,s:o}", "revision", (json_int_t)f->revision, "servers", docs);
        pthread_mutex_unlock(&f->lock);
        respond_json(fd, 200, resp);
        return;
    }
    if (match(path, "/internal/v1/nodes/", "", name) && strcmp(method, "PUT") == 0) {
        json_t *v = json_loadb(body, len, 0, NULL);
        f->node_puts++;
        json_object_set_new(f->nodes, name, v ? v : json_null());
        pthread_mutex_unlock(&f->lock);
        respond_json(fd, 200, json_pack("{s:{s:s}}", "node", "name", name));
        return;
    }
    if (match(path, "/internal/v1/servers/", "/status", name) && strcmp(method, "PUT") == 0) {
        json_t *doc = json_object_get(f->servers, name);
        json_t *report = json_loadb(body, len, 0, NULL);
        f->status_puts++;
        if (!doc || !json_is_object(report)) {
            pthread_mutex_unlock(&f->lock);
            json_decref(report);
            respond_json(fd, 404, json_pack("{s:s}", "message", "no such server"));
            return;
        }
        if (json_object_get(report, "launched_at") || json_object_get(report, "task_state")) {
            pthread_mutex_unlock(&f->lock); /* as compute/server_report.c: the controller's */
            json_decref(report);
            respond_json(fd, 400, json_pack("{s:s}", "message", "controller's field"));
            return;
        }
        const char *st = json_string_value(json_object_get(report, "state"));
        if (st && strcmp(st, "DELETED") == 0 &&
            json_is_true(json_object_get(json_object_get(doc, "spec"), "deleted"))) {
            json_object_del(f->servers, name);
        } else {
            json_object_update(json_object_get(doc, "status"), report);
            json_object_set_new(doc, "_rev", json_integer(++f->revision));
        }
        json_decref(report);
        pthread_cond_broadcast(&f->cond);
        pthread_mutex_unlock(&f->lock);
        respond(fd, 204, "application/json", "", 0);
        return;
    }
    if (match(path, "/internal/v1/servers/", "/console", name) && strcmp(method, "PUT") == 0) {
        json_object_set_new(f->consoles, name, json_stringn(body, len));
        pthread_mutex_unlock(&f->lock);
        respond(fd, 204, "application/json", "", 0);
        return;
    }
    if (match(path, "/internal/v1/images/", "/file", name) && strcmp(method, "HEAD") == 0) {
        bool have = json_object_get(f->images, name) != NULL;
        f->image_heads++;
        pthread_mutex_unlock(&f->lock);
        char head[128]; /* no body: a HEAD answer */
        int n = snprintf(head, sizeof(head), "HTTP/1.1 %d X\r\nContent-Length: 0\r\n\r\n",
                         have ? 200 : 404);
        if (write(fd, head, (size_t)n) < 0)
            return;
        return;
    }
    if (match(path, "/internal/v1/images/", "/file", name) && strcmp(method, "GET") == 0) {
        json_t *img = json_object_get(f->images, name);
        st_autofree char *data = img ? st_strdup(json_string_value(img)) : NULL;
        pthread_mutex_unlock(&f->lock);
        if (!data)
            respond_json(fd, 404, json_pack("{s:{s:s}}", "error", "message", "image not found"));
        else
            respond(fd, 200, "application/octet-stream", data, strlen(data));
        return;
    }
    pthread_mutex_unlock(&f->lock);
    respond_json(fd, 404, json_pack("{s:s}", "message", "no route"));
}

static void *conn_main(void *arg)
{
    struct conn_arg ca = *(struct conn_arg *)arg;
    free(arg);
    char *head, *body;
    size_t len;
    while (read_request(ca.fd, &head, &body, &len)) {
        char method[16] = "", target[1024] = "";
        sscanf(head, "%15s %1023s", method, target);
        const char *token = strcasestr(head, "\r\nX-Node-Token: ");
        bool authorized = token && strncmp(token + 16, TOKEN "\r\n", strlen(TOKEN) + 2) == 0;
        char *query = strchr(target, '?');
        if (query)
            *query++ = '\0';
        if (!authorized)
            respond_json(ca.fd, 401, json_pack("{s:s}", "message", "bad node token"));
        else
            handle(ca.f, ca.fd, method, target, query, body, len);
        free(head);
        free(body);
    }
    pthread_mutex_lock(&ca.f->lock);
    for (size_t i = 0; i < ST_ARRAY_SIZE(ca.f->conns); i++)
        if (ca.f->conns[i] == ca.fd)
            ca.f->conns[i] = -1;
    close(ca.fd);
    ca.f->active--;
    pthread_cond_broadcast(&ca.f->cond);
    pthread_mutex_unlock(&ca.f->lock);
    return NULL;
}

static void *accept_main(void *arg)
{
    struct fake *f = arg;
    for (;;) {
        int fd = accept(f->listen_fd, NULL, NULL);
        if (fd < 0)
            break;
        pthread_mutex_lock(&f->lock);
        if (f->stop) {
            pthread_mutex_unlock(&f->lock);
            close(fd);
            break;
        }
        for (size_t i = 0; i < ST_ARRAY_SIZE(f->conns); i++) {
            if (f->conns[i] < 0) {
                f->conns[i] = fd;
                break;
            }
        }
        f->active++;
        pthread_mutex_unlock(&f->lock);
        struct conn_arg *ca = malloc(sizeof(*ca));
        *ca = (struct conn_arg){f, fd};
        pthread_t t;
        pthread_create(&t, NULL, conn_main, ca);
        pthread_detach(t);
    }
    return NULL;
}

/* port 0 = any */
static struct fake *fake_start(uint16_t port)
{
    struct fake *f = st_new0(struct fake, 1);
    pthread_mutex_init(&f->lock, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&f->cond, &ca);
    f->servers = json_object();
    f->nodes = json_object();
    f->consoles = json_object();
    f->images = json_object();
    f->revision = 1;
    for (size_t i = 0; i < ST_ARRAY_SIZE(f->conns); i++)
        f->conns[i] = -1;
    f->listen_fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    int one = 1;
    setsockopt(f->listen_fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(port)};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(bind(f->listen_fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
    assert_int_equal(listen(f->listen_fd, 128), 0);
    socklen_t sl = sizeof(sa);
    getsockname(f->listen_fd, (struct sockaddr *)&sa, &sl);
    f->port = ntohs(sa.sin_port);
    pthread_create(&f->thread, NULL, accept_main, f);
    return f;
}

static void fake_stop(struct fake *f)
{
    shutdown(f->listen_fd, SHUT_RDWR);
    pthread_join(f->thread, NULL);
    close(f->listen_fd);
    pthread_mutex_lock(&f->lock);
    f->stop = true;
    while (f->active > 0) {
        for (size_t i = 0; i < ST_ARRAY_SIZE(f->conns); i++)
            if (f->conns[i] >= 0)
                shutdown(f->conns[i], SHUT_RDWR); /* the threads close them */
        pthread_cond_broadcast(&f->cond);
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        ts.tv_nsec += 20 * 1000000L;
        if (ts.tv_nsec >= 1000000000L) {
            ts.tv_sec++;
            ts.tv_nsec -= 1000000000L;
        }
        pthread_cond_timedwait(&f->cond, &f->lock, &ts);
    }
    pthread_mutex_unlock(&f->lock);
    pthread_mutex_destroy(&f->lock);
    pthread_cond_destroy(&f->cond);
    json_decref(f->servers);
    json_decref(f->nodes);
    json_decref(f->consoles);
    json_decref(f->images);
    free(f);
}

static char *fake_url(struct fake *f)
{
    return st_sprintf("http://127.0.0.1:%u", f->port);
}

static void fake_add_server(struct fake *f, const char *id, const char *host, json_t *metadata,
                            const char *driver)
{
    json_t *doc =
        json_pack("{s:s,s:s,s:{s:s,s:s,s:b,s:i,s:s,s:{s:s,s:s},s:o},s:{s:s}}", "id", id, "name",
                  "srv", "spec", "host", host, "power", "on", "deleted", 0, "reboot", 0, "driver",
                  driver, "image", "id", "img-1", "checksum", "", "metadata",
                  metadata ? metadata : json_object(), "status", "state", "BUILD");
    pthread_mutex_lock(&f->lock);
    json_object_set_new(doc, "_rev", json_integer(++f->revision));
    json_object_set_new(f->servers, id, doc);
    pthread_cond_broadcast(&f->cond);
    pthread_mutex_unlock(&f->lock);
}

static void fake_set_spec(struct fake *f, const char *id, const char *key, json_t *value)
{
    pthread_mutex_lock(&f->lock);
    json_t *doc = json_object_get(f->servers, id);
    assert_non_null(doc);
    json_object_set_new(json_object_get(doc, "spec"), key, value);
    json_object_set_new(doc, "_rev", json_integer(++f->revision));
    pthread_cond_broadcast(&f->cond);
    pthread_mutex_unlock(&f->lock);
}

static void fake_set_status(struct fake *f, const char *id, const char *key, json_t *value)
{
    pthread_mutex_lock(&f->lock);
    json_t *doc = json_object_get(f->servers, id);
    assert_non_null(doc);
    json_object_set_new(json_object_get(doc, "status"), key, value);
    pthread_mutex_unlock(&f->lock);
}

/* A copy of status.<key> of a server (NULL if absent or no server). */
static json_t *fake_status(struct fake *f, const char *id, const char *key)
{
    pthread_mutex_lock(&f->lock);
    json_t *doc = json_object_get(f->servers, id);
    json_t *v = json_object_get(json_object_get(doc, "status"), key);
    v = v ? json_deep_copy(v) : NULL;
    pthread_mutex_unlock(&f->lock);
    return v;
}

static bool fake_has_server(struct fake *f, const char *id)
{
    pthread_mutex_lock(&f->lock);
    bool has = json_object_get(f->servers, id) != NULL;
    pthread_mutex_unlock(&f->lock);
    return has;
}

static bool wait_state(struct fake *f, const char *id, const char *state, int timeout_ms)
{
    for (int t = 0; t < timeout_ms; t += 20) {
        st_autoptr(json_t) s = fake_status(f, id, "state");
        if (s && strcmp(json_string_value(s), state) == 0)
            return true;
        sleep_ms(20);
    }
    st_autoptr(json_t) s = fake_status(f, id, "state");
    fprintf(stderr, "server %s: state %s, expected %s\n", id, s ? json_string_value(s) : "(none)",
            state);
    return false;
}

static json_int_t instance_counter(struct fake *f, const char *id, const char *counter)
{
    st_autoptr(json_t) inst = fake_status(f, id, "instance");
    return json_integer_value(json_object_get(inst, counter));
}

struct agent_env {
    char *dir;
    char *token_file;
    char *data_dir;
    struct fake *f;
    char *url;
};

static void env_init(struct agent_env *e)
{
    e->dir = make_tmpdir();
    e->token_file = st_sprintf("%s/node-token", e->dir);
    write_text(e->token_file, TOKEN "\n");
    e->data_dir = st_sprintf("%s/agent", e->dir);
    e->f = fake_start(0);
    e->url = fake_url(e->f);
}

static void env_clear(struct agent_env *e)
{
    if (e->f)
        fake_stop(e->f);
    rm_rf(e->dir);
    free(e->dir);
    free(e->token_file);
    free(e->data_dir);
    free(e->url);
}

/* Settings beyond the defaults agent_start gives (0: the agent's). */
struct agent_extra {
    size_t console_log_max;
    unsigned image_cache_max_age_s;
};

static struct st_agent *agent_start_extra(struct agent_env *e, const char *node, unsigned sim_nodes,
                                          const struct agent_extra *x)
{
    struct st_agent_config cfg = {
        .controller_url = e->url,
        .node_name = node,
        .node_token_file = e->token_file,
        .data_dir = e->data_dir,
        .drivers = "sim",
        .sim_nodes = sim_nodes,
        .lease_s = 3,
        .poll_wait_s = 1,
        .check_interval_ms = 100,
        .resync_s = 60, /* full lists only at start and after a 410 */
        .sim_poll_ms = 200,
        .workers = 2,
        .stop_grace_s = 1,
        .console_log_max = x ? x->console_log_max : 0,
        .image_cache_max_age_s = x ? x->image_cache_max_age_s : 0,
    };
    struct st_agent *a = NULL;
    st_autoptr(st_err) err = NULL;
    int r = st_agent_start(&cfg, &a, &err);
    if (r < 0)
        fprintf(stderr, "st_agent_start: %s\n", st_err_msg(err));
    assert_int_equal(r, 0);
    return a;
}

static struct st_agent *agent_start(struct agent_env *e, const char *node, unsigned sim_nodes)
{
    return agent_start_extra(e, node, sim_nodes, NULL);
}

static bool wait_registered(struct st_agent *a, unsigned n, int timeout_ms)
{
    struct st_agent_stats s;
    for (int t = 0; t < timeout_ms; t += 20) {
        st_agent_get_stats(a, &s);
        if (s.nodes_registered >= n)
            return true;
        sleep_ms(20);
    }
    return false;
}

#define S1     "10000000-0000-4000-8000-000000000001"
#define S2     "10000000-0000-4000-8000-000000000002"
#define S3     "10000000-0000-4000-8000-000000000003"
#define S4     "10000000-0000-4000-8000-000000000004"
#define ORPHAN "10000000-0000-4000-8000-0000000000ff"

static void test_agent_lifecycle(void **state)
{
    (void)state;
    struct agent_env e = {0};
    env_init(&e);
    fake_add_server(e.f, S1, "node-a", NULL, "container");
    fake_add_server(e.f, S2, "node-b", NULL, "container"); /* another node's */

    struct st_agent *a = agent_start(&e, "node-a", 0);
    assert_true(wait_registered(a, 1, 3000));
    pthread_mutex_lock(&e.f->lock);
    json_t *node = json_object_get(e.f->nodes, "node-a");
    assert_non_null(node);
    assert_string_equal(json_string_value(json_array_get(json_object_get(node, "drivers"), 0)),
                        "container");
    assert_true(json_is_true(json_object_get(node, "simulated")));
    assert_int_equal(json_integer_value(json_object_get(node, "lease_seconds")), 3);
    assert_int_equal(
        json_integer_value(json_object_get(json_object_get(node, "capacity"), "vcpus")), 32);
    assert_string_equal(json_string_value(json_object_get(node, "availability_zone")), "nova");
    pthread_mutex_unlock(&e.f->lock);

    /* assignment → ACTIVE */
    assert_true(wait_state(e.f, S1, "ACTIVE", 3000));
    st_autoptr(json_t) ps = fake_status(e.f, S1, "power_state");
    assert_int_equal(json_integer_value(ps), 1);
    assert_int_equal(instance_counter(e.f, S1, "creates"), 1);
    st_autoptr(json_t) inst = fake_status(e.f, S1, "instance");
    assert_true(json_is_true(json_object_get(inst, "simulated")));
    st_autoptr(json_t) opower = fake_status(e.f, S1, "observed_power");
    assert_string_equal(json_string_value(opower), "on");
    st_autoptr(json_t) s2 = fake_status(e.f, S2, "state");
    assert_string_equal(json_string_value(s2), "BUILD"); /* not ours: untouched */

    /* the console tail arrives */
    bool console = false;
    for (int i = 0; i < 100 && !console; i++) {
        pthread_mutex_lock(&e.f->lock);
        const char *text = json_string_value(json_object_get(e.f->consoles, S1));
        console = text && strstr(text, "simulated instance started");
        pthread_mutex_unlock(&e.f->lock);
        if (!console)
            sleep_ms(20);
    }
    assert_true(console);

    /* status is reported only when it changes (many checks pass meanwhile) */
    sleep_ms(300);
    pthread_mutex_lock(&e.f->lock);
    unsigned long puts = e.f->status_puts;
    pthread_mutex_unlock(&e.f->lock);
    sleep_ms(600);
    pthread_mutex_lock(&e.f->lock);
    assert_int_equal(e.f->status_puts, puts);
    pthread_mutex_unlock(&e.f->lock);

    /* stop → SHUTOFF */
    fake_set_spec(e.f, S1, "power", json_string("off"));
    assert_true(wait_state(e.f, S1, "SHUTOFF", 3000));
    st_autoptr(json_t) ps2 = fake_status(e.f, S1, "power_state");
    assert_int_equal(json_integer_value(ps2), 4);
    assert_int_equal(instance_counter(e.f, S1, "stops"), 1);

    /* start → ACTIVE (the same instance started again) */
    fake_set_status(e.f, S1, "task_state", json_string("powering-on"));
    fake_set_spec(e.f, S1, "power", json_string("on"));
    assert_true(wait_state(e.f, S1, "ACTIVE", 3000));
    assert_int_equal(instance_counter(e.f, S1, "starts"), 2);
    assert_int_equal(instance_counter(e.f, S1, "creates"), 1);

    /* reboot → stop + start, acknowledged */
    fake_set_spec(e.f, S1, "reboot", json_integer(1));
    for (int i = 0; i < 150; i++) {
        st_autoptr(json_t) obs = fake_status(e.f, S1, "observed_reboot");
        if (json_integer_value(obs) == 1)
            break;
        sleep_ms(20);
    }
    st_autoptr(json_t) obs = fake_status(e.f, S1, "observed_reboot");
    assert_int_equal(json_integer_value(obs), 1);
    assert_int_equal(instance_counter(e.f, S1, "starts"), 3);

    /* agent restart: the instance keeps running and is re-adopted */
    st_agent_stop(a);
    const struct st_driver *sim = st_driver_lookup("sim");
    struct st_driver_ctx ctx = {.data_dir = e.data_dir, .node_name = "node-a"};
    struct st_instance_info info = {0};
    assert_int_equal(sim->state(&ctx, S1, &info, NULL), 0);
    assert_int_equal(info.state, ST_INSTANCE_RUNNING);
    st_instance_info_clear(&info);
    /* an instance nobody assigns, left from before: garbage */
    st_autoptr(json_t) orphan = json_pack("{s:s,s:{}}", "id", ORPHAN, "spec");
    assert_int_equal(sim->create(&ctx, orphan, NULL), 0);

    a = agent_start(&e, "node-a", 0);
    assert_true(wait_registered(a, 1, 3000));
    sleep_ms(800);
    assert_true(wait_state(e.f, S1, "ACTIVE", 100));
    assert_int_equal(instance_counter(e.f, S1, "creates"), 1); /* no second create */
    assert_int_equal(instance_counter(e.f, S1, "starts"), 3);  /* nor a start */
    for (int i = 0; i < 150; i++) {
        assert_int_equal(sim->state(&ctx, ORPHAN, &info, NULL), 0);
        if (info.state == ST_INSTANCE_ABSENT)
            break;
        st_instance_info_clear(&info);
        sleep_ms(20);
    }
    assert_int_equal(info.state, ST_INSTANCE_ABSENT);

    /* delete → destroyed, DELETED reported, the controller drops it */
    fake_set_spec(e.f, S1, "deleted", json_true());
    for (int i = 0; i < 150 && fake_has_server(e.f, S1); i++)
        sleep_ms(20);
    assert_false(fake_has_server(e.f, S1));
    assert_int_equal(sim->state(&ctx, S1, &info, NULL), 0);
    assert_int_equal(info.state, ST_INSTANCE_ABSENT);
    st_autofree char *idir = st_sprintf("%s/instances/%s", e.data_dir, S1);
    assert_int_equal(access(idir, F_OK), -1);

    struct st_agent_stats stats;
    st_agent_get_stats(a, &stats);
    assert_true(stats.heartbeats >= 1);
    assert_true(stats.polls >= 1);
    st_agent_stop(a);
    env_clear(&e);
}

static void test_agent_failures(void **state)
{
    (void)state;
    struct agent_env e = {0};
    env_init(&e);
    fake_add_server(e.f, S1, "node-a", json_pack("{s:s}", "sim:fail", "create"), "container");
    fake_add_server(e.f, S2, "node-a",
                    json_pack("{s:s,s:s}", "sim:exit", "137", "sim:reason", "oom"), "container");
    fake_add_server(e.f, S3, "node-a", NULL, "vm");
    struct st_agent *a = agent_start(&e, "node-a", 0);

    /* a failed create: ERROR with the driver's message, not retried */
    assert_true(wait_state(e.f, S1, "ERROR", 3000));
    st_autoptr(json_t) f1 = fake_status(e.f, S1, "fault");
    assert_non_null(strstr(json_string_value(json_object_get(f1, "message")),
                           "creating the instance: simulated failure of create"));
    /* killed for memory: ERROR, CRASHED, and the fault says so */
    assert_true(wait_state(e.f, S2, "ERROR", 3000));
    st_autoptr(json_t) f2 = fake_status(e.f, S2, "fault");
    assert_non_null(strstr(json_string_value(json_object_get(f2, "message")), "out of memory"));
    st_autoptr(json_t) p2 = fake_status(e.f, S2, "power_state");
    assert_int_equal(json_integer_value(p2), 6);
    /* a driver this node does not have */
    assert_true(wait_state(e.f, S3, "ERROR", 3000));
    st_autoptr(json_t) f3 = fake_status(e.f, S3, "fault");
    assert_non_null(strstr(json_string_value(json_object_get(f3, "message")), "no 'vm' driver"));

    sleep_ms(300);
    pthread_mutex_lock(&e.f->lock);
    unsigned long puts = e.f->status_puts;
    pthread_mutex_unlock(&e.f->lock);
    sleep_ms(500); /* ERROR is sticky: no retry, no new report */
    pthread_mutex_lock(&e.f->lock);
    assert_int_equal(e.f->status_puts, puts);
    pthread_mutex_unlock(&e.f->lock);

    /* a 410 on the incremental list: the agent lists again and goes on */
    pthread_mutex_lock(&e.f->lock);
    e.f->gone_once = 1;
    pthread_mutex_unlock(&e.f->lock);
    bool relisted = false;
    for (int i = 0; i < 150 && !relisted; i++) {
        pthread_mutex_lock(&e.f->lock);
        relisted = e.f->relisted_after_gone;
        pthread_mutex_unlock(&e.f->lock);
        if (!relisted)
            sleep_ms(20);
    }
    assert_true(relisted);
    fake_add_server(e.f, S4, "node-a", NULL, "container");
    assert_true(wait_state(e.f, S4, "ACTIVE", 3000));
    st_agent_stop(a);
    env_clear(&e);
}

static void test_agent_controller_down(void **state)
{
    (void)state;
    struct agent_env e = {0};
    env_init(&e);
    fake_add_server(e.f, S1, "node-a", NULL, "container");
    struct st_agent *a = agent_start(&e, "node-a", 0);
    assert_true(wait_state(e.f, S1, "ACTIVE", 3000));

    /* the controller goes away: the instance keeps running */
    uint16_t port = e.f->port;
    struct fake *old = e.f;
    json_t *servers = json_deep_copy(old->servers);
    e.f = NULL;
    fake_stop(old);
    sleep_ms(1500);
    const struct st_driver *sim = st_driver_lookup("sim");
    struct st_driver_ctx ctx = {.data_dir = e.data_dir, .node_name = "node-a"};
    struct st_instance_info info = {0};
    assert_int_equal(sim->state(&ctx, S1, &info, NULL), 0);
    assert_int_equal(info.state, ST_INSTANCE_RUNNING);
    st_instance_info_clear(&info);
    struct st_agent_stats stats;
    st_agent_get_stats(a, &stats);
    unsigned long hb = stats.heartbeats;

    /* it comes back on the same address: heartbeats resume, nothing is lost */
    e.f = fake_start(port);
    json_object_update(e.f->servers, servers);
    json_decref(servers);
    pthread_mutex_lock(&e.f->lock);
    e.f->revision = 100;
    pthread_mutex_unlock(&e.f->lock);
    bool back = false;
    for (int i = 0; i < 400 && !back; i++) {
        st_agent_get_stats(a, &stats);
        back = stats.heartbeats > hb;
        if (!back)
            sleep_ms(20);
    }
    assert_true(back);
    assert_true(stats.heartbeat_errors >= 1);
    fake_set_spec(e.f, S1, "power", json_string("off"));
    assert_true(wait_state(e.f, S1, "SHUTOFF", 5000));
    st_agent_stop(a);
    env_clear(&e);
}

/* The console log is trimmed to the cap on the agent's checks; the newest
 * lines reach the controller, from a line start, and a trim alone sends
 * nothing again. */
static void test_agent_console_trim(void **state)
{
    (void)state;
    struct agent_env e = {0};
    env_init(&e);
    fake_add_server(e.f, S1, "node-a", NULL, "container");
    const struct agent_extra x = {.console_log_max = 16 * 1024};
    struct st_agent *a = agent_start_extra(&e, "node-a", 0, &x);
    assert_true(wait_state(e.f, S1, "ACTIVE", 3000));
    st_autofree char *log = st_sprintf("%s/instances/%s/console.log", e.data_dir, S1);

    /* 40 KiB at once, then more while the agent trims */
    for (int round = 0; round < 4; round++) {
        FILE *f = fopen(log, "ae");
        assert_non_null(f);
        for (int i = 0; i < 640; i++)
            fprintf(f, "line %06d %051d\n", round * 640 + i, 0);
        fclose(f);
        sleep_ms(150);
    }
    const char *last = "line 002559 ";
    bool arrived = false;
    for (int i = 0; i < 150 && !arrived; i++) {
        pthread_mutex_lock(&e.f->lock);
        const char *text = json_string_value(json_object_get(e.f->consoles, S1));
        arrived = text && strstr(text, last);
        pthread_mutex_unlock(&e.f->lock);
        if (!arrived)
            sleep_ms(20);
    }
    assert_true(arrived);
    struct stat st;
    assert_int_equal(stat(log, &st), 0);
    assert_true(st.st_size <= 16 * 1024);
    pthread_mutex_lock(&e.f->lock);
    st_autofree char *pushed = st_strdup(json_string_value(json_object_get(e.f->consoles, S1)));
    pthread_mutex_unlock(&e.f->lock);
    /* what arrived is the file's content from a line start: whole lines,
     * consecutive, ending with the newest */
    assert_memory_equal(pushed, "line ", 5);
    assert_int_equal(strlen(pushed) % 64, 0);
    int prev = -1;
    for (const char *p = pushed; *p; p += 64) {
        int v = atoi(p + 5);
        if (prev >= 0)
            assert_int_equal(v, prev + 1);
        prev = v;
    }
    assert_int_equal(prev, 2559);

    /* quiet: checks come and go, nothing is pushed again */
    struct st_agent_stats s0, s1;
    st_agent_get_stats(a, &s0);
    sleep_ms(600);
    st_agent_get_stats(a, &s1);
    assert_int_equal(s1.console_pushes, s0.console_pushes);

    /* one more line: pushed, though the file is smaller than it once was */
    FILE *f = fopen(log, "ae");
    assert_non_null(f);
    fprintf(f, "line %06d %051d\n", 2560, 0);
    fclose(f);
    arrived = false;
    for (int i = 0; i < 150 && !arrived; i++) {
        pthread_mutex_lock(&e.f->lock);
        const char *text = json_string_value(json_object_get(e.f->consoles, S1));
        arrived = text && strstr(text, "line 002560 ");
        pthread_mutex_unlock(&e.f->lock);
        if (!arrived)
            sleep_ms(20);
    }
    assert_true(arrived);
    st_agent_stop(a);
    env_clear(&e);
}

static void make_image(const char *images, const char *id, int64_t mtime)
{
    st_autofree char *root = st_sprintf("%s/%s/rootfs/etc", images, id);
    assert_int_equal(st_mkdir_p(root, 0700, NULL), 0);
    st_autofree char *dir = st_sprintf("%s/%s", images, id);
    st_autofree char *blob = st_sprintf("%s/%s.blob", images, id);
    write_text(blob, "tarball");
    struct timespec ts[2] = {{.tv_sec = mtime}, {.tv_sec = mtime}};
    assert_int_equal(utimensat(AT_FDCWD, dir, ts, 0), 0);
    assert_int_equal(utimensat(AT_FDCWD, blob, ts, 0), 0);
}

static bool image_there(const char *images, const char *id)
{
    st_autofree char *dir = st_sprintf("%s/%s", images, id);
    st_autofree char *blob = st_sprintf("%s/%s.blob", images, id);
    return access(dir, F_OK) == 0 || access(blob, F_OK) == 0;
}

/* The agent's image cache manager: on its periodic pass, an image unused
 * for longer than the max age goes, one deleted from Glance goes at once,
 * one an instance records stays however old. */
static void test_agent_image_prune(void **state)
{
    (void)state;
    struct agent_env e = {0};
    env_init(&e);
    st_autofree char *images = st_sprintf("%s/images", e.data_dir);
    int64_t now = time(NULL);
    make_image(images, "img-old", now - 7200);
    make_image(images, "img-deleted", now);
    make_image(images, "img-kept", now);
    make_image(images, "img-used", now - 7200);
    st_autofree char *inst = st_sprintf("%s/instances/i-1", e.data_dir);
    assert_int_equal(st_mkdir_p(inst, 0700, NULL), 0);
    st_autofree char *record = st_sprintf("%s/image", inst);
    write_text(record, "img-used\n");
    json_object_set_new(e.f->images, "img-kept", json_string("x"));
    json_object_set_new(e.f->images, "img-used", json_string("x"));

    setenv(ST_AGENT_IMAGE_PRUNE_INTERVAL_ENV, "1", 1);
    const struct agent_extra x = {.image_cache_max_age_s = 3600};
    struct st_agent *a = agent_start_extra(&e, "node-a", 0, &x);
    unsetenv(ST_AGENT_IMAGE_PRUNE_INTERVAL_ENV);
    for (int i = 0;
         i < 150 && (image_there(images, "img-old") || image_there(images, "img-deleted")); i++)
        sleep_ms(20);
    assert_false(image_there(images, "img-old"));
    assert_false(image_there(images, "img-deleted"));
    assert_true(image_there(images, "img-kept"));
    assert_true(image_there(images, "img-used"));
    pthread_mutex_lock(&e.f->lock);
    assert_true(e.f->image_heads > 0);
    pthread_mutex_unlock(&e.f->lock);

    /* The instance goes: its image ages from the last pass that saw it in
     * use, so it stays (3600 s max age); deleted from Glance, it goes. */
    rm_rf(inst);
    pthread_mutex_lock(&e.f->lock);
    json_object_del(e.f->images, "img-used");
    pthread_mutex_unlock(&e.f->lock);
    for (int i = 0; i < 150 && image_there(images, "img-used"); i++)
        sleep_ms(20);
    assert_false(image_there(images, "img-used"));
    assert_true(image_there(images, "img-kept"));
    st_agent_stop(a);
    env_clear(&e);
}

static void test_agent_sim_nodes(void **state)
{
    (void)state;
    struct agent_env e = {0};
    env_init(&e);
    struct st_agent *a = agent_start(&e, "node-a", 20);
    assert_true(wait_registered(a, 21, 5000));
    struct st_agent_stats stats;
    st_agent_get_stats(a, &stats);
    assert_int_equal(stats.nodes, 21);
    assert_true(stats.register_all_ms > 0);
    pthread_mutex_lock(&e.f->lock);
    assert_int_equal(json_object_size(e.f->nodes), 21);
    json_t *n7 = json_object_get(e.f->nodes, "node-a-sim-0007");
    assert_non_null(n7);
    assert_true(json_is_true(json_object_get(n7, "simulated")));
    pthread_mutex_unlock(&e.f->lock);

    fake_add_server(e.f, S1, "node-a-sim-0007", NULL, "container");
    assert_true(wait_state(e.f, S1, "ACTIVE", 3000));
    fake_set_spec(e.f, S1, "deleted", json_true());
    for (int i = 0; i < 150 && fake_has_server(e.f, S1); i++)
        sleep_ms(20);
    assert_false(fake_has_server(e.f, S1));
    st_agent_stop(a);
    env_clear(&e);
}

static void test_agent_start_errors(void **state)
{
    (void)state;
    st_autofree char *dir = make_tmpdir();
    st_autofree char *token = st_sprintf("%s/token", dir);
    struct st_agent_config cfg = {.controller_url = "http://127.0.0.1:1",
                                  .node_name = "n1",
                                  .node_token_file = token,
                                  .data_dir = dir,
                                  .drivers = "sim"};
    struct st_agent *a = NULL;
    st_autoptr(st_err) e1 = NULL;
    assert_int_equal(st_agent_start(&cfg, &a, &e1), -ENOENT);
    assert_non_null(strstr(st_err_msg(e1), "node-token"));
    write_text(token, TOKEN);
    cfg.drivers = "sim,warp";
    st_autoptr(st_err) e2 = NULL;
    assert_int_equal(st_agent_start(&cfg, &a, &e2), -EINVAL);
    assert_non_null(strstr(st_err_msg(e2), "unknown driver 'warp'"));
    cfg.drivers = "sim";
    cfg.node_name = "bad/name";
    st_autoptr(st_err) e3 = NULL;
    assert_int_equal(st_agent_start(&cfg, &a, &e3), -EINVAL);
    assert_non_null(strstr(st_err_msg(e3), "invalid node name"));
    rm_rf(dir);
}

/* ------------------------------------------------------------------ */
/* the client and the image cache                                       */

static void test_client(void **state)
{
    (void)state;
    struct fake *f = fake_start(0);
    st_autofree char *url = fake_url(f);
    st_autoptr(st_agent_client) c = st_agent_client_new(url, TOKEN, NULL);
    long status = 0;
    st_autoptr(json_t) resp = NULL;
    st_autoptr(json_t) body = json_pack("{s:[]}", "drivers");
    assert_int_equal(
        st_agent_client_request(c, "PUT", "/internal/v1/nodes/x", body, 0, &status, &resp, NULL),
        0);
    assert_int_equal(status, 200);
    assert_string_equal(json_string_value(json_object_get(json_object_get(resp, "node"), "name")),
                        "x");
    st_autoptr(st_err) e1 = NULL;
    assert_int_equal(st_agent_client_request(c, "GET", "/nope", NULL, 0, &status, NULL, &e1),
                     -ENOENT);
    assert_int_equal(status, 404);
    assert_string_equal(st_err_msg(e1), "GET /nope: 404 no route");

    st_autoptr(st_agent_client) bad = st_agent_client_new(url, "wrong", NULL);
    st_autoptr(st_err) e2 = NULL;
    assert_int_equal(st_agent_client_request(bad, "GET", "/x", NULL, 0, NULL, NULL, &e2), -EACCES);
    assert_non_null(strstr(st_err_msg(e2), "bad node token"));
    fake_stop(f);

    /* nobody listens */
    st_autoptr(st_err) e3 = NULL;
    assert_int_equal(st_agent_client_request(c, "GET", "/x", NULL, 0, NULL, NULL, &e3),
                     -ECONNREFUSED);
    assert_non_null(strstr(st_err_msg(e3), "unreachable"));

    /* a stop request cuts a request short */
    int stop = 1;
    st_autoptr(st_agent_client) s = st_agent_client_new(url, TOKEN, &stop);
    st_autoptr(st_err) e4 = NULL;
    assert_int_equal(st_agent_client_request(s, "GET", "/x", NULL, 0, NULL, NULL, &e4), -ECANCELED);
}

static void test_image_cache(void **state)
{
    (void)state;
    struct fake *f = fake_start(0);
    json_object_set_new(f->images, "img-ok", json_string("hello"));
    json_object_set_new(f->images, "img-bad", json_string("tampered"));
    st_autofree char *url = fake_url(f);
    st_autofree char *dir = make_tmpdir();
    st_autofree char *cache_dir = st_sprintf("%s/images", dir);
    st_autoptr(st_agent_client) c = st_agent_client_new(url, TOKEN, NULL);
    st_autoptr(st_image_cache) cache = NULL;
    assert_int_equal(st_image_cache_new(cache_dir, c, &cache, NULL), 0);

    st_image_cache_expect(cache, "img-ok", "5d41402abc4b2a76b9719d911017c592"); /* md5("hello") */
    const char *path = NULL;
    assert_int_equal(st_image_cache_path(cache, "img-ok", &path, NULL), 0);
    st_autofree char *expect_path = st_sprintf("%s/img-ok.blob", cache_dir);
    assert_string_equal(path, expect_path);
    st_autofree char *text = NULL;
    assert_int_equal(st_read_file(path, 1024, &text, NULL, NULL), 0);
    assert_string_equal(text, "hello");
    /* cached: no second download (the image may go from the controller) */
    json_object_del(f->images, "img-ok");
    const char *again = NULL;
    assert_int_equal(st_image_cache_path(cache, "img-ok", &again, NULL), 0);
    assert_ptr_equal(again, path);
    /* removed by the image cache's prune (drivers/rootfs.h): fetched again,
     * under the same name (the borrowed path stays valid) */
    json_object_set_new(f->images, "img-ok", json_string("hello"));
    assert_int_equal(unlink(path), 0);
    assert_int_equal(st_image_cache_path(cache, "img-ok", &again, NULL), 0);
    assert_ptr_equal(again, path);
    assert_int_equal(access(path, F_OK), 0);

    st_image_cache_expect(cache, "img-bad", "5d41402abc4b2a76b9719d911017c592");
    st_autoptr(st_err) e1 = NULL;
    assert_int_equal(st_image_cache_path(cache, "img-bad", &path, &e1), -EBADMSG);
    assert_non_null(strstr(st_err_msg(e1), "checksum mismatch"));
    st_autofree char *bad_path = st_sprintf("%s/img-bad.blob", cache_dir);
    assert_int_equal(access(bad_path, F_OK), -1);
    /* and no temporary file is left behind */
    st_autofree char *count = st_sprintf("test $(ls -A '%s' | wc -l) -eq 1", cache_dir);
    assert_int_equal(system(count), 0);

    st_autoptr(st_err) e2 = NULL;
    assert_int_equal(st_image_cache_path(cache, "img-none", &path, &e2), -ENOENT);
    assert_non_null(strstr(st_err_msg(e2), "image not found"));
    st_autoptr(st_err) e3 = NULL;
    assert_int_equal(st_image_cache_path(cache, "../etc", &path, &e3), -EINVAL);
    fake_stop(f);
    rm_rf(dir);
}

int main(void)
{
    st_log_set_level(ST_LOG_ERROR);
    signal(SIGPIPE, SIG_IGN);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_decide_deleted),
        cmocka_unit_test(test_decide_power_off),
        cmocka_unit_test(test_decide_power_on),
        cmocka_unit_test(test_decide_reboot),
        cmocka_unit_test(test_decide_stopped_while_on),
        cmocka_unit_test(test_decide_error_sticky),
        cmocka_unit_test(test_status_report_failure),
        cmocka_unit_test(test_sim_driver),
        cmocka_unit_test(test_host_capacity),
        cmocka_unit_test(test_reaper),
        cmocka_unit_test(test_client),
        cmocka_unit_test(test_image_cache),
        cmocka_unit_test(test_agent_start_errors),
        cmocka_unit_test(test_agent_lifecycle),
        cmocka_unit_test(test_agent_failures),
        cmocka_unit_test(test_agent_controller_down),
        cmocka_unit_test(test_agent_sim_nodes),
        cmocka_unit_test(test_agent_console_trim),
        cmocka_unit_test(test_agent_image_prune),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
