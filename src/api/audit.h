/* The audit log: one JSON line per mutating request (who, which project,
 * what action on which target, the result, the request id, when), appended
 * to <data-dir>/audit.log. Lines are buffered and written plus fsynced in
 * batches by a background thread (every 200 ms, or sooner when the buffer
 * fills), so auditing costs a request one memcpy, not one fsync. */
#pragma once

#include <stdint.h>

#include "lib/cleanup.h"
#include "lib/err.h"

struct st_audit;

struct st_audit_event {
    const char *request_id;
    const char *user_id;
    const char *user_name;
    const char *project_id;
    const char *action;
    const char *method;
    const char *path;
    const char *target; /* the resource id the path names, if any */
    int status;
    const char *peer;
};

int st_audit_open(const char *path, struct st_audit **ret, struct st_err **err);
/* Flushes, fsyncs and closes. NULL-tolerant. */
void st_audit_close(struct st_audit *a);
ST_DEFINE_AUTOPTR(st_audit, st_audit_close)

void st_audit_record(struct st_audit *a, const struct st_audit_event *ev);
/* Writes and fsyncs what is buffered now (tests, shutdown). */
int st_audit_flush(struct st_audit *a, struct st_err **err);

struct st_router;
/* Makes the router write one audit line per mutating request (anything but
 * GET, HEAD and OPTIONS) to a. */
void st_api_audit_install(struct st_router *r, struct st_audit *a);
