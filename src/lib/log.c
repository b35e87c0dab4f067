/* key=value logging; see log.h. A line is formatted into one buffer and
 * written with one write(2) so lines from several threads never interleave. */
#include "log.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "times.h"

static enum st_log_level log_level = ST_LOG_INFO;
static __thread char log_request_id[64];

static const char *const level_names[] = {"error", "warn", "info", "debug"};

void st_log_set_level(enum st_log_level level)
{
    __atomic_store_n(&log_level, level, __ATOMIC_RELAXED);
}

enum st_log_level st_log_get_level(void)
{
    return __atomic_load_n(&log_level, __ATOMIC_RELAXED);
}

bool st_log_enabled(enum st_log_level level)
{
    return level <= st_log_get_level();
}

int st_log_parse_level(const char *s, enum st_log_level *ret_level)
{
    for (size_t i = 0; i < sizeof(level_names) / sizeof(level_names[0]); i++) {
        if (s && strcmp(s, level_names[i]) == 0) {
            *ret_level = (enum st_log_level)i;
            return 0;
        }
    }
    return -EINVAL;
}

void st_log_set_request_id(const char *id)
{
    if (!id) {
        log_request_id[0] = '\0';
        return;
    }
    snprintf(log_request_id, sizeof(log_request_id), "%s", id);
}

const char *st_log_request_id(void)
{
    return log_request_id[0] ? log_request_id : NULL;
}

void st_log(enum st_log_level level, const char *event, const char *fmt, ...)
{
    if (!st_log_enabled(level))
        return;
    int saved = errno;
    char line[4096];
    char ts[ST_TIME_RFC3339_LEN];
    st_time_rfc3339_ms(st_time_now_ms(), ts, sizeof(ts));
    int n = snprintf(line, sizeof(line), "ts=%s level=%s event=%s", ts, level_names[level], event);
    if (log_request_id[0] && n < (int)sizeof(line))
        n += snprintf(line + n, sizeof(line) - n, " request_id=%s", log_request_id);
    if (fmt && fmt[0] && n < (int)sizeof(line) - 1) {
        line[n++] = ' ';
        va_list ap;
        va_start(ap, fmt);
        n += vsnprintf(line + n, sizeof(line) - n, fmt, ap);
        va_end(ap);
    }
    if (n >= (int)sizeof(line) - 1)
        n = sizeof(line) - 2;
    line[n++] = '\n';
    ssize_t w = write(STDERR_FILENO, line, n);
    (void)w;
    errno = saved;
}
