/* Time: RFC 3339 formatting and parsing (what every API shows), wall-clock
 * milliseconds, and a monotonic clock for latencies and timeouts. */
#pragma once

#include <stddef.h>
#include <stdint.h>

#define ST_TIME_RFC3339_LEN 32

int64_t st_time_now_ms(void);  /* wall clock, ms since the epoch */
int64_t st_time_mono_ns(void); /* monotonic, for durations */

/* "2026-11-26T20:57:13Z" (seconds) and "2026-11-26T20:57:13.123Z" (ms), UTC. */
void st_time_rfc3339(int64_t epoch_s, char *buf, size_t len);
void st_time_rfc3339_ms(int64_t epoch_ms, char *buf, size_t len);
/* "2026-11-26T20:57:13.000000Z", the microsecond form Keystone uses. */
void st_time_rfc3339_us(int64_t epoch_ms, char *buf, size_t len);

/* Parses RFC 3339 with optional fraction and "Z" or "+hh:mm" offset. */
int st_time_parse_rfc3339(const char *s, int64_t *ret_epoch_ms);
