/* Errors as objects: a negative errno plus a message that callers extend with
 * context on the way up ("creating server 'web-01': flavor 'm9' not found").
 * Only the edges (HTTP handler, CLI main, agent loop) print or translate them. */
#pragma once

#include <stdarg.h>

struct st_err {
    int code;  /* negative errno */
    char *msg; /* full message, context first */
};

/* Sets *err (if err is non-NULL and *err is NULL) and returns code. A second
 * set on an already-set error keeps the first cause. */
__attribute__((format(printf, 3, 4))) int st_err_set(struct st_err **err, int code, const char *fmt,
                                                     ...);
int st_err_setv(struct st_err **err, int code, const char *fmt, va_list ap);

/* Adds context in front of an existing message and returns code. When no
 * error was set yet, sets one from the context and strerror(-code). */
__attribute__((format(printf, 3, 4))) int st_err_prefix(struct st_err **err, int code,
                                                        const char *fmt, ...);

/* Sets an error from errno of a failed system call: "open /x: No such file". */
__attribute__((format(printf, 2, 3))) int st_err_errno(struct st_err **err, const char *fmt, ...);

const char *st_err_msg(const struct st_err *err);
void st_err_free(struct st_err *err);
/* Frees *err and sets it to NULL: for retrying after a handled failure. */
void st_err_clear(struct st_err **err);
