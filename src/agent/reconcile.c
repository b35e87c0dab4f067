/* The reconcile decision table; see reconcile.h. No I/O and no clock: the
 * caller passes what the driver observed and the time. */
#include "agent/reconcile.h"

#include <stdio.h>
#include <string.h>

#include "lib/times.h"

static const char *str_field(json_t *obj, const char *key, const char *def)
{
    const char *s = json_string_value(json_object_get(obj, key));
    return s ? s : def;
}

static bool streq(const char *a, const char *b)
{
    return a && b && strcmp(a, b) == 0;
}

const char *st_agent_action_name(enum st_agent_action a)
{
    switch (a) {
    case ST_AGENT_NONE:
        return "none";
    case ST_AGENT_REPORT:
        return "report";
    case ST_AGENT_CREATE_START:
        return "create_start";
    case ST_AGENT_START:
        return "start";
    case ST_AGENT_STOP:
        return "stop";
    case ST_AGENT_REBOOT:
        return "reboot";
    case ST_AGENT_DESTROY:
        return "destroy";
    }
    return "?";
}

/* The instance ended while it should run. Reported as ERROR with a fault
 * saying how (power_state SHUTDOWN for exit 0, CRASHED otherwise), never as
 * SHUTOFF: with spec.power still "on", SHUTOFF means "being powered on" to
 * the controller (compute/server.c derives task_state "powering-on" from
 * it), which would restart it in a loop. Nova instead calls its stop API
 * for a guest that shut itself down; here the user stops or hard-reboots. */
static void decide_exited(json_t *spec, const struct st_instance_info *actual,
                          struct st_agent_decision *d)
{
    d->action = ST_AGENT_REPORT;
    d->power = "on";
    d->state = "ERROR";
    int status = actual->exit_status;
    const char *reason = json_string_value(json_object_get(actual->details, "reason"));
    d->power_state = status == 0 && !reason ? ST_AGENT_POWER_SHUTDOWN : ST_AGENT_POWER_CRASHED;
    char how[64];
    if (status > 128 && status < 128 + 65)
        snprintf(how, sizeof(how), "exit status %d, killed by signal %d", status, status - 128);
    else
        snprintf(how, sizeof(how), "exit status %d", status);
    /* The limit the user chose (flavor ram or policy), so the fault says
     * what to raise; the driver set memory.limit_in_bytes from it. */
    json_int_t limit_mb =
        json_integer_value(json_object_get(json_object_get(spec, "resources"), "memory_limit_mb"));
    if (streq(reason, "oom") && limit_mb > 0)
        snprintf(d->fault, sizeof(d->fault),
                 "the server exceeded its memory limit of %lld MiB and was killed: out of "
                 "memory (%s)",
                 (long long)limit_mb, how);
    else if (streq(reason, "oom"))
        snprintf(d->fault, sizeof(d->fault),
                 "instance was killed for using more memory than its limit (out of memory, %s)",
                 how);
    else if (reason)
        snprintf(d->fault, sizeof(d->fault), "instance stopped unexpectedly: %s (%s)", reason, how);
    else
        snprintf(d->fault, sizeof(d->fault), "instance stopped by itself (%s)", how);
}

void st_agent_decide(json_t *server, const struct st_instance_info *actual,
                     struct st_agent_decision *d)
{
    *d = (struct st_agent_decision){.action = ST_AGENT_NONE};
    static const struct st_instance_info absent = {.state = ST_INSTANCE_ABSENT};
    if (!actual)
        actual = &absent;
    json_t *spec = json_object_get(server, "spec");
    json_t *status = json_object_get(server, "status");
    enum st_instance_state a = actual->state;

    if (json_is_true(json_object_get(spec, "deleted"))) {
        d->state = "DELETED";
        d->power_state = ST_AGENT_POWER_NOSTATE;
        d->action = a == ST_INSTANCE_ABSENT ? ST_AGENT_REPORT : ST_AGENT_DESTROY;
        return;
    }

    if (streq(str_field(spec, "power", "on"), "off")) {
        d->state = "SHUTOFF";
        d->power_state = ST_AGENT_POWER_SHUTDOWN;
        d->power = "off";
        d->ack_reboot = true; /* a reboot of a stopped server has nothing to do */
        d->action = a == ST_INSTANCE_RUNNING ? ST_AGENT_STOP : ST_AGENT_REPORT;
        return;
    }

    d->state = "ACTIVE";
    d->power_state = ST_AGENT_POWER_RUNNING;
    d->power = "on";
    json_int_t reboot = json_integer_value(json_object_get(spec, "reboot"));
    json_int_t observed = json_integer_value(json_object_get(status, "observed_reboot"));
    if (reboot > observed) {
        d->ack_reboot = true;
        d->action = a == ST_INSTANCE_RUNNING  ? ST_AGENT_REBOOT
                    : a == ST_INSTANCE_ABSENT ? ST_AGENT_CREATE_START
                                              : ST_AGENT_START;
        return;
    }

    const char *state = str_field(status, "state", "BUILD");
    switch (a) {
    case ST_INSTANCE_RUNNING:
        d->action = ST_AGENT_REPORT; /* also re-adoption after an agent restart */
        return;
    case ST_INSTANCE_ABSENT:
    case ST_INSTANCE_CREATED:
        if (streq(state, "ERROR")) {
            *d = (struct st_agent_decision){.action = ST_AGENT_NONE};
            return;
        }
        d->action = a == ST_INSTANCE_ABSENT ? ST_AGENT_CREATE_START : ST_AGENT_START;
        return;
    case ST_INSTANCE_STOPPED:
        /* Stopped on request earlier, or the user asks to start it again. */
        if (streq(str_field(status, "observed_power", NULL), "off") ||
            streq(str_field(status, "task_state", NULL), "powering-on")) {
            d->action = ST_AGENT_START;
            return;
        }
        if (streq(state, "ACTIVE") || streq(state, "BUILD") || streq(state, "REBOOT")) {
            decide_exited(spec, actual, d);
            return;
        }
        /* Its end was reported already (SHUTOFF or ERROR): leave it be. */
        *d = (struct st_agent_decision){.action = ST_AGENT_NONE};
        return;
    }
}

json_t *st_agent_status_report(json_t *server, const struct st_agent_decision *d,
                               const struct st_instance_info *after, const char *error,
                               int64_t now_ms)
{
    json_t *spec = json_object_get(server, "spec");
    json_t *status = json_object_get(server, "status");
    json_t *report = json_object();
    const char *state = error ? "ERROR" : d->state;
    json_object_set_new(report, "state", json_string(state ? state : "ERROR"));
    int power_state = d->power_state;
    if (error) {
        enum st_instance_state a = after ? after->state : ST_INSTANCE_ABSENT;
        power_state = a == ST_INSTANCE_RUNNING   ? ST_AGENT_POWER_RUNNING
                      : a == ST_INSTANCE_STOPPED ? ST_AGENT_POWER_SHUTDOWN
                                                 : ST_AGENT_POWER_NOSTATE;
    }
    json_object_set_new(report, "power_state", json_integer(power_state));

    const char *fault = error ? error : (streq(state, "ERROR") ? d->fault : NULL);
    if (fault) {
        char created[ST_TIME_RFC3339_LEN];
        st_time_rfc3339(now_ms / 1000, created, sizeof(created));
        json_object_set_new(report, "fault",
                            json_pack("{s:i,s:s,s:s}", "code", 500, "message",
                                      fault[0] ? fault : "unknown error", "created", created));
    } else {
        json_object_set_new(report, "fault", json_null());
    }
    if (streq(state, "DELETED"))
        return report;

    json_int_t observed = json_integer_value(json_object_get(status, "observed_reboot"));
    if (d->ack_reboot)
        observed = json_integer_value(json_object_get(spec, "reboot"));
    json_object_set_new(report, "observed_reboot", json_integer(observed));
    if (d->power)
        json_object_set_new(report, "observed_power", json_string(d->power));
    else if (json_is_string(json_object_get(status, "observed_power")))
        json_object_set(report, "observed_power", json_object_get(status, "observed_power"));

    json_t *instance =
        after && json_is_object(after->details) ? json_deep_copy(after->details) : json_object();
    if (after && after->pid > 0)
        json_object_set_new(instance, "pid", json_integer(after->pid));
    else
        json_object_del(instance, "pid");
    json_object_set_new(report, "instance", instance);
    return report;
}

bool st_agent_status_changed(json_t *server, json_t *report)
{
    json_t *status = json_object_get(server, "status");
    const char *key;
    json_t *value;
    json_object_foreach(report, key, value)
    {
        json_t *cur = json_object_get(status, key);
        if (strcmp(key, "fault") == 0) {
            const char *a = json_string_value(json_object_get(cur, "message"));
            const char *b = json_string_value(json_object_get(value, "message"));
            if (!a != !b || (a && strcmp(a, b) != 0))
                return true;
            continue;
        }
        if (!cur)
            cur = json_null();
        if (!json_equal(cur, value))
            return true;
    }
    return false;
}
