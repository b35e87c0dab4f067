/* Logging: one line per event, key=value, to stderr (journald and humans both
 * read it). Every line carries the time, level, event name and, when the
 * calling thread is serving a request, its request id. Never log secrets. */
#pragma once

#include <stdarg.h>
#include <stdbool.h>

enum st_log_level {
    ST_LOG_ERROR = 0,
    ST_LOG_WARN = 1,
    ST_LOG_INFO = 2,
    ST_LOG_DEBUG = 3,
};

void st_log_set_level(enum st_log_level level);
enum st_log_level st_log_get_level(void);
/* Parses "error|warn|info|debug"; returns -EINVAL on anything else. */
int st_log_parse_level(const char *s, enum st_log_level *ret_level);
bool st_log_enabled(enum st_log_level level);

/* The request id of the calling thread, copied; NULL clears it. */
void st_log_set_request_id(const char *id);
const char *st_log_request_id(void);

/* event is a short snake_case name; fmt adds key=value pairs, e.g.
 * st_log(ST_LOG_INFO, "http_request", "method=%s status=%d", m, s). */
__attribute__((format(printf, 3, 4))) void st_log(enum st_log_level level, const char *event,
                                                  const char *fmt, ...);

#define st_log_error(ev, ...) st_log(ST_LOG_ERROR, ev, __VA_ARGS__)
#define st_log_warn(ev, ...)  st_log(ST_LOG_WARN, ev, __VA_ARGS__)
#define st_log_info(ev, ...)  st_log(ST_LOG_INFO, ev, __VA_ARGS__)
#define st_log_debug(ev, ...)                                                                      \
    do {                                                                                           \
        if (st_log_enabled(ST_LOG_DEBUG))                                                          \
            st_log(ST_LOG_DEBUG, ev, __VA_ARGS__);                                                 \
    } while (0)
