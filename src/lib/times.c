/* RFC 3339 time and clocks; see time.h. */
#include "times.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

int64_t st_time_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t st_time_mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static void format_utc(int64_t epoch_s, char *buf, size_t len)
{
    time_t t = (time_t)epoch_s;
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(buf, len, "%Y-%m-%dT%H:%M:%S", &tm);
}

void st_time_rfc3339(int64_t epoch_s, char *buf, size_t len)
{
    char base[24];
    format_utc(epoch_s, base, sizeof(base));
    snprintf(buf, len, "%sZ", base);
}

static int64_t floor_div(int64_t a, int64_t b)
{
    return a / b - (a % b != 0 && (a < 0) != (b < 0));
}

void st_time_rfc3339_ms(int64_t epoch_ms, char *buf, size_t len)
{
    char base[24];
    int64_t s = floor_div(epoch_ms, 1000);
    format_utc(s, base, sizeof(base));
    snprintf(buf, len, "%s.%03dZ", base, (int)(epoch_ms - s * 1000));
}

void st_time_rfc3339_us(int64_t epoch_ms, char *buf, size_t len)
{
    char base[24];
    int64_t s = floor_div(epoch_ms, 1000);
    format_utc(s, base, sizeof(base));
    snprintf(buf, len, "%s.%06dZ", base, (int)(epoch_ms - s * 1000) * 1000);
}

static int parse_digits(const char **p, int n, int *ret)
{
    int v = 0;
    for (int i = 0; i < n; i++) {
        if (!isdigit((unsigned char)(*p)[i]))
            return -EINVAL;
        v = v * 10 + ((*p)[i] - '0');
    }
    *p += n;
    *ret = v;
    return 0;
}

static int expect_char(const char **p, const char *set)
{
    if (!**p || !strchr(set, **p))
        return -EINVAL;
    (*p)++;
    return 0;
}

int st_time_parse_rfc3339(const char *s, int64_t *ret_epoch_ms)
{
    if (!s)
        return -EINVAL;
    const char *p = s;
    struct tm tm = {0};
    int year, mon, day, hour, min, sec;
    if (parse_digits(&p, 4, &year) < 0 || expect_char(&p, "-") < 0 ||
        parse_digits(&p, 2, &mon) < 0 || expect_char(&p, "-") < 0 ||
        parse_digits(&p, 2, &day) < 0 || expect_char(&p, "Tt ") < 0 ||
        parse_digits(&p, 2, &hour) < 0 || expect_char(&p, ":") < 0 ||
        parse_digits(&p, 2, &min) < 0 || expect_char(&p, ":") < 0 || parse_digits(&p, 2, &sec) < 0)
        return -EINVAL;
    if (mon < 1 || mon > 12 || day < 1 || day > 31 || hour > 23 || min > 59 || sec > 60)
        return -EINVAL;
    int ms = 0;
    if (*p == '.') {
        p++;
        int digits = 0;
        while (isdigit((unsigned char)*p)) {
            if (digits < 3)
                ms = ms * 10 + (*p - '0');
            digits++;
            p++;
        }
        if (digits == 0)
            return -EINVAL;
        for (; digits < 3; digits++)
            ms *= 10;
    }
    int offset_s = 0;
    if (*p == 'Z' || *p == 'z') {
        p++;
    } else if (*p == '+' || *p == '-') {
        int sign = *p == '-' ? -1 : 1, oh, om;
        p++;
        if (parse_digits(&p, 2, &oh) < 0 || expect_char(&p, ":") < 0 ||
            parse_digits(&p, 2, &om) < 0)
            return -EINVAL;
        offset_s = sign * (oh * 3600 + om * 60);
    } else {
        return -EINVAL;
    }
    if (*p)
        return -EINVAL;
    tm.tm_year = year - 1900;
    tm.tm_mon = mon - 1;
    tm.tm_mday = day;
    tm.tm_hour = hour;
    tm.tm_min = min;
    tm.tm_sec = sec;
    time_t t = timegm(&tm);
    *ret_epoch_ms = ((int64_t)t - offset_s) * 1000 + ms;
    return 0;
}
