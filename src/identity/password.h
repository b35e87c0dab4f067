/* Password hashing with argon2id (libargon2): what is stored for a user is
 * the encoded hash ("$argon2id$v=19$m=...,t=...,p=...$salt$hash"), never the
 * password. The cost is a parameter so tests and benchmarks can state it. */
#pragma once

#include <stdint.h>

#include "lib/err.h"

struct st_password_cost {
    uint32_t t_cost;      /* iterations */
    uint32_t m_cost_kib;  /* memory */
    uint32_t parallelism; /* lanes */
};

/* OWASP's argon2id recommendation (19 MiB, t=2, p=1). */
#define ST_PASSWORD_COST_DEFAULT ((struct st_password_cost){2, 19 * 1024, 1})

#define ST_PASSWORD_MAX 4096

/* *ret = encoded hash (caller frees). -EINVAL for an empty or huge password. */
int st_password_hash(const char *password, const struct st_password_cost *cost, char **ret,
                     struct st_err **err);

/* 0 when password matches encoded, -EACCES when it does not, -EINVAL when
 * encoded is not an argon2id hash. Constant-time in the password. */
int st_password_verify(const char *encoded, const char *password, struct st_err **err);
