/* Allocation helpers for strings that abort on out-of-memory, so callers
 * never carry an allocation-failure path (STYLE.md: allocation failure aborts). */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "err.h"
#include "cleanup.h"

char *st_strdup(const char *s)
{
    if (!s)
        return NULL;
    char *r = strdup(s);
    if (!r)
        abort();
    return r;
}

char *st_strndup(const char *s, size_t n)
{
    char *r = strndup(s, n);
    if (!r)
        abort();
    return r;
}

char *st_sprintf(const char *fmt, ...)
{
    char *r;
    va_list ap;
    va_start(ap, fmt);
    if (vasprintf(&r, fmt, ap) < 0)
        abort();
    va_end(ap);
    return r;
}
