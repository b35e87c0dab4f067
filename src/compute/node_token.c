/* The node token file; see node_token.h. */
#include "node_token.h"

#include <errno.h>
#include <fcntl.h>
#include <openssl/crypto.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "lib/cleanup.h"
#include "lib/files.h"
#include "lib/uuid.h"

static bool is_hex_token(const char *s, size_t len)
{
    if (len != ST_COMPUTE_NODE_TOKEN_LEN)
        return false;
    for (size_t i = 0; i < len; i++)
        if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
            return false;
    return true;
}

int st_compute_node_token_ensure(const char *data_dir, struct st_err **err)
{
    st_autofree char *path = NULL;
    int r = st_path_join(data_dir, ST_COMPUTE_NODE_TOKEN_FILE, &path, err);
    if (r < 0)
        return r;
    if (access(path, F_OK) == 0)
        return 0;
    if (errno != ENOENT)
        return st_err_errno(err, "access %s", path);
    unsigned char raw[ST_COMPUTE_NODE_TOKEN_BYTES];
    char text[ST_COMPUTE_NODE_TOKEN_LEN + 2];
    st_random_bytes(raw, sizeof(raw));
    st_hex_encode(raw, sizeof(raw), text);
    explicit_bzero(raw, sizeof(raw));
    text[ST_COMPUTE_NODE_TOKEN_LEN] = '\n';
    text[ST_COMPUTE_NODE_TOKEN_LEN + 1] = '\0';
    r = st_write_file_atomic(path, text, ST_COMPUTE_NODE_TOKEN_LEN + 1, 0600, err);
    explicit_bzero(text, sizeof(text));
    return r < 0 ? st_err_prefix(err, r, "writing node token") : 0;
}

int st_compute_node_token_load(const char *data_dir, char **ret, struct st_err **err)
{
    st_autofree char *path = NULL;
    int r = st_path_join(data_dir, ST_COMPUTE_NODE_TOKEN_FILE, &path, err);
    if (r < 0)
        return r;
    struct stat st;
    if (stat(path, &st) < 0)
        return st_err_errno(err, "node token %s", path);
    if (st.st_mode & 0077)
        return st_err_set(err, -EPERM,
                          "node token %s is readable by others (mode %04o): chmod 600 it", path,
                          (unsigned)(st.st_mode & 07777));
    st_autofree char *text = NULL;
    size_t len = 0;
    r = st_read_file(path, 256, &text, &len, err);
    if (r < 0)
        return st_err_prefix(err, r, "reading node token");
    while (len > 0 && (text[len - 1] == '\n' || text[len - 1] == '\r' || text[len - 1] == ' '))
        text[--len] = '\0';
    if (!is_hex_token(text, len)) {
        explicit_bzero(text, len);
        return st_err_set(err, -EINVAL, "node token %s is malformed: expected %d hex characters",
                          path, ST_COMPUTE_NODE_TOKEN_LEN);
    }
    *ret = st_steal(&text);
    return 0;
}

bool st_compute_node_token_equal(const char *expected, const char *presented)
{
    if (!expected || !presented || !expected[0] || !presented[0])
        return false;
    size_t n = strlen(expected);
    if (strlen(presented) != n)
        return false;
    return CRYPTO_memcmp(expected, presented, n) == 0;
}
