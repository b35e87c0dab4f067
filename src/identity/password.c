/* argon2id password hashes; see password.h. */
#include "password.h"

#include <argon2.h>
#include <errno.h>
#include <string.h>

#include "lib/cleanup.h"
#include "lib/uuid.h"

#define SALT_LEN 16
#define HASH_LEN 32

int st_password_hash(const char *password, const struct st_password_cost *cost, char **ret,
                     struct st_err **err)
{
    size_t len = password ? strlen(password) : 0;
    if (len == 0)
        return st_err_set(err, -EINVAL, "password must not be empty");
    if (len > ST_PASSWORD_MAX)
        return st_err_set(err, -EINVAL, "password is longer than %d bytes", ST_PASSWORD_MAX);
    uint8_t salt[SALT_LEN];
    st_random_bytes(salt, sizeof(salt));
    size_t enc_len = argon2_encodedlen(cost->t_cost, cost->m_cost_kib, cost->parallelism, SALT_LEN,
                                       HASH_LEN, Argon2_id);
    st_autofree char *enc = st_xcalloc(1, enc_len);
    int r = argon2id_hash_encoded(cost->t_cost, cost->m_cost_kib, cost->parallelism, password, len,
                                  salt, SALT_LEN, HASH_LEN, enc, enc_len);
    if (r != ARGON2_OK)
        return st_err_set(err, -EIO, "argon2id: %s", argon2_error_message(r));
    *ret = st_steal(&enc);
    return 0;
}

int st_password_verify(const char *encoded, const char *password, struct st_err **err)
{
    if (!encoded || strncmp(encoded, "$argon2id$", 10) != 0)
        return st_err_set(err, -EINVAL, "stored password hash is not argon2id");
    size_t len = password ? strlen(password) : 0;
    if (len > ST_PASSWORD_MAX)
        return st_err_set(err, -EACCES, "invalid password");
    int r = argon2id_verify(encoded, password ? password : "", len);
    if (r == ARGON2_OK)
        return 0;
    if (r == ARGON2_VERIFY_MISMATCH)
        return st_err_set(err, -EACCES, "invalid password");
    return st_err_set(err, -EINVAL, "argon2id: %s", argon2_error_message(r));
}
