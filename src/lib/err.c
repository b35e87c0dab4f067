/* Error objects: see err.h. Allocation failure aborts, as everywhere. */
#include "err.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cleanup.h"

int st_err_setv(struct st_err **err, int code, const char *fmt, va_list ap)
{
    if (!err || *err)
        return code;
    struct st_err *e = st_new0(struct st_err, 1);
    e->code = code;
    if (vasprintf(&e->msg, fmt, ap) < 0)
        abort();
    *err = e;
    return code;
}

int st_err_set(struct st_err **err, int code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    st_err_setv(err, code, fmt, ap);
    va_end(ap);
    return code;
}

int st_err_prefix(struct st_err **err, int code, const char *fmt, ...)
{
    if (!err)
        return code;
    char *ctx;
    va_list ap;
    va_start(ap, fmt);
    if (vasprintf(&ctx, fmt, ap) < 0)
        abort();
    va_end(ap);
    if (!*err) {
        st_err_set(err, code, "%s: %s", ctx, strerror(code < 0 ? -code : code));
    } else {
        char *msg;
        if (asprintf(&msg, "%s: %s", ctx, (*err)->msg) < 0)
            abort();
        free((*err)->msg);
        (*err)->msg = msg;
    }
    free(ctx);
    return code;
}

int st_err_errno(struct st_err **err, const char *fmt, ...)
{
    int code = errno ? -errno : -EIO;
    char *ctx;
    va_list ap;
    va_start(ap, fmt);
    if (vasprintf(&ctx, fmt, ap) < 0)
        abort();
    va_end(ap);
    st_err_set(err, code, "%s: %s", ctx, strerror(-code));
    free(ctx);
    return code;
}

const char *st_err_msg(const struct st_err *err)
{
    return err && err->msg ? err->msg : "unknown error";
}

void st_err_free(struct st_err *err)
{
    if (!err)
        return;
    free(err->msg);
    free(err);
}

void st_err_clear(struct st_err **err)
{
    if (!err)
        return;
    st_err_free(*err);
    *err = NULL;
}
