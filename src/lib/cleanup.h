/* Scope-bound cleanup (GCC/Clang cleanup attribute), in the manner of systemd
 * and crun: st_autofree, st_autoclose, st_autoptr(tag) and st_steal() to hand
 * ownership on. st_new0() allocates zeroed memory and aborts on failure. */
#pragma once

#include <stdlib.h>
#include <unistd.h>
#include <errno.h>

#include "err.h"

static inline void *st_xcalloc(size_t n, size_t size)
{
    void *p = calloc(n ? n : 1, size ? size : 1);
    if (!p)
        abort();
    return p;
}

static inline void *st_xrealloc(void *p, size_t size)
{
    p = realloc(p, size ? size : 1);
    if (!p)
        abort();
    return p;
}

char *st_strdup(const char *s);            /* NULL-tolerant; aborts on OOM */
char *st_strndup(const char *s, size_t n); /* aborts on OOM */
__attribute__((format(printf, 1, 2))) char *st_sprintf(const char *fmt, ...); /* aborts on OOM */

#define st_new0(type, n) ((type *)st_xcalloc((n), sizeof(type)))

static inline void st_freep(void *p)
{
    free(*(void **)p);
}

static inline void st_closep(int *fd)
{
    if (*fd >= 0) {
        int saved = errno;
        close(*fd);
        errno = saved;
    }
}

#define st_autofree  __attribute__((cleanup(st_freep)))
#define st_autoclose __attribute__((cleanup(st_closep)))

/* ST_DEFINE_AUTOPTR(tag, destroy) lets `st_autoptr(tag) p = ...;` call
 * destroy(p) at scope exit; tag names `struct tag`, e.g. json_t, st_kv. */
#define ST_DEFINE_AUTOPTR(tag, destroy)                                                            \
    static inline void st_autoptr_cleanup_##tag(struct tag **p)                                    \
    {                                                                                              \
        if (*p)                                                                                    \
            destroy(*p);                                                                           \
    }
#define st_autoptr(tag) __attribute__((cleanup(st_autoptr_cleanup_##tag))) struct tag *

/* Returns *p and sets it to NULL (ownership moves to the caller). */
#define st_steal(p)                                                                                \
    ({                                                                                             \
        __typeof__(*(p)) st_steal_tmp_ = *(p);                                                     \
        *(p) = NULL;                                                                               \
        st_steal_tmp_;                                                                             \
    })

#define st_steal_fd(p)                                                                             \
    ({                                                                                             \
        int st_steal_fd_tmp_ = *(p);                                                               \
        *(p) = -1;                                                                                 \
        st_steal_fd_tmp_;                                                                          \
    })

#define ST_ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

ST_DEFINE_AUTOPTR(st_err, st_err_free)
