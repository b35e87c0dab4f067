/* The agent's reconcile decision, as pure functions so every transition is
 * unit-tested without a node: from a server document (spec = desired, status
 * = what was last reported, compute/model.h) and what the driver says of the
 * instance (actual), which one action to take and which status to report
 * once it succeeded; and whether a status report changes anything.
 *
 * Status fields the agent writes (merged into the document's status by the
 * internal API, compute/server_report.c): state, power_state, fault,
 * observed_reboot, instance (driver facts) and observed_power: the power
 * the agent last acted on ("off" after a requested stop, "on" after a
 * start), which tells an instance the user stopped (start it again when
 * spec.power turns "on") from one that ended by itself while it should run
 * (reported as ERROR with a fault saying how: exit status, signal, out of
 * memory; as Nova, no automatic restart: `server reboot --hard` or
 * stop + start runs it again). task_state and launched_at are the
 * controller's: it derives them from spec and the reported state.
 *
 * ERROR is sticky as in Nova: a server whose create or start failed is not
 * retried by itself (that would loop on a broken image), only by a reboot
 * (spec.reboot bumped) or a delete. */
#pragma once

#include <jansson.h>
#include <stdbool.h>

#include "agent/driver.h"

enum st_agent_action {
    ST_AGENT_NONE,         /* nothing to do, nothing to report */
    ST_AGENT_REPORT,       /* no driver call; report the status below */
    ST_AGENT_CREATE_START, /* create, then start */
    ST_AGENT_START,
    ST_AGENT_STOP,
    ST_AGENT_REBOOT, /* stop, then start */
    ST_AGENT_DESTROY,
};

struct st_agent_decision {
    enum st_agent_action action;
    /* What to report once the action succeeded (NULL with ST_AGENT_NONE):
     * "ACTIVE", "SHUTOFF", "ERROR" or "DELETED". */
    const char *state;
    int power_state;   /* 0 NOSTATE, 1 RUNNING, 4 SHUTDOWN, 6 CRASHED */
    const char *power; /* observed_power to record: "on", "off" or NULL (keep) */
    bool ack_reboot;   /* observed_reboot := spec.reboot */
    char fault[256];   /* with "ERROR": why */
};

#define ST_AGENT_POWER_NOSTATE  0
#define ST_AGENT_POWER_RUNNING  1
#define ST_AGENT_POWER_SHUTDOWN 4
#define ST_AGENT_POWER_CRASHED  6

const char *st_agent_action_name(enum st_agent_action a);

/* The decision for one server. actual->state ABSENT when the driver has
 * nothing of it; actual->details may carry "reason" (e.g. "oom") for a
 * STOPPED instance, which goes into the fault message. */
void st_agent_decide(json_t *server, const struct st_instance_info *actual,
                     struct st_agent_decision *ret);

/* The status object to PUT for decision d. after is the instance as the
 * driver sees it after the action (for status.instance: pid and facts); may
 * be NULL. error, when non-NULL, means the action failed: the report is
 * ERROR with error as the fault (power_state from after). now_ms stamps
 * fault.created. */
json_t *st_agent_status_report(json_t *server, const struct st_agent_decision *d,
                               const struct st_instance_info *after, const char *error,
                               int64_t now_ms);

/* True when report would change the document's status (fault compared by
 * its message only, since its timestamp differs at every report). */
bool st_agent_status_changed(json_t *server, json_t *report);
