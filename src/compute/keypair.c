/* Keypairs: OpenSSH public key parsing and fingerprints, Ed25519 generation
 * with OpenSSL and the openssh-key-v1 private key encoder, and the users'
 * keypairs in the store; see keypair.h. The wire formats are RFC 4253 §6.6
 * (ssh-rsa), RFC 5656 §3.1 (ecdsa-sha2-*), RFC 8709 (ssh-ed25519) and
 * OpenSSH's PROTOCOL.key (the private key container). */
#include "keypair.h"

#include <errno.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <stdbool.h>
#include <string.h>

#include "lib/cleanup.h"
#include "lib/json.h"
#include "lib/times.h"
#include "lib/uuid.h"
#include "store/kv.h"

/* ---- SSH wire buffers ---- */

struct sshbuf {
    unsigned char *data;
    size_t len, cap;
};

static void buf_put(struct sshbuf *b, const void *p, size_t n)
{
    if (b->len + n > b->cap) {
        size_t cap = b->cap ? b->cap * 2 : 256;
        while (cap < b->len + n)
            cap *= 2;
        unsigned char *d = st_xcalloc(1, cap);
        if (b->data) {
            memcpy(d, b->data, b->len);
            OPENSSL_cleanse(b->data, b->cap); /* it may hold a private key */
            free(b->data);
        }
        b->data = d;
        b->cap = cap;
    }
    memcpy(b->data + b->len, p, n);
    b->len += n;
}

static void buf_u32(struct sshbuf *b, uint32_t v)
{
    unsigned char be[4] = {v >> 24, (v >> 16) & 0xff, (v >> 8) & 0xff, v & 0xff};
    buf_put(b, be, 4);
}

static void buf_string(struct sshbuf *b, const void *p, size_t n)
{
    buf_u32(b, (uint32_t)n);
    buf_put(b, p, n);
}

static void buf_cstring(struct sshbuf *b, const char *s)
{
    buf_string(b, s, strlen(s));
}

static void buf_free(struct sshbuf *b)
{
    if (b->data) {
        OPENSSL_cleanse(b->data, b->cap);
        free(b->data);
    }
    *b = (struct sshbuf){0};
}

/* Reads one length-prefixed string at *off. */
static bool read_string(const unsigned char *p, size_t len, size_t *off, const unsigned char **ret,
                        size_t *ret_len)
{
    if (len - *off < 4)
        return false;
    uint32_t n = (uint32_t)p[*off] << 24 | (uint32_t)p[*off + 1] << 16 |
                 (uint32_t)p[*off + 2] << 8 | p[*off + 3];
    *off += 4;
    if (len - *off < n)
        return false;
    *ret = p + *off;
    *ret_len = n;
    *off += n;
    return true;
}

/* ---- base64 ---- */

static bool b64_char(char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '+' ||
           c == '/';
}

/* Strict: the alphabet, padded to a multiple of 4, '=' only at the end. */
static int b64_decode(const char *s, size_t len, unsigned char **ret, size_t *ret_len)
{
    if (len == 0 || len % 4 != 0)
        return -EINVAL;
    size_t pad = 0;
    for (size_t i = 0; i < len; i++) {
        if (s[i] == '=') {
            if (i < len - 2)
                return -EINVAL;
            pad++;
        } else if (!b64_char(s[i]) || pad) {
            return -EINVAL;
        }
    }
    unsigned char *out = st_xcalloc(1, len / 4 * 3 + 1);
    int n = EVP_DecodeBlock(out, (const unsigned char *)s, (int)len);
    if (n < 0 || (size_t)n < pad) {
        free(out);
        return -EINVAL;
    }
    *ret = out;
    *ret_len = (size_t)n - pad;
    return 0;
}

static char *b64_encode(const unsigned char *p, size_t len)
{
    char *out = st_xcalloc(1, (len + 2) / 3 * 4 + 1);
    EVP_EncodeBlock((unsigned char *)out, p, (int)len);
    return out;
}

/* ---- public keys ---- */

static void fingerprint(const unsigned char *blob, size_t len, char out[48])
{
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int n = 0;
    if (EVP_Digest(blob, len, md, &n, EVP_md5(), NULL) != 1 || n != 16)
        abort(); /* MD5 is in OpenSSL's default provider; without it nothing is safe to show */
    for (unsigned i = 0; i < 16; i++)
        snprintf(out + 3 * i, 4, i == 15 ? "%02x" : "%02x:", md[i]);
}

static int check_blob(const char *type, const unsigned char *blob, size_t len, struct st_err **err)
{
    size_t off = 0, n;
    const unsigned char *p;
    if (!read_string(blob, len, &off, &p, &n) || n != strlen(type) || memcmp(p, type, n) != 0)
        return st_err_set(err, -EINVAL, "Keypair data is invalid: the key blob is not of type %s",
                          type);
    if (strcmp(type, "ssh-ed25519") == 0) {
        if (!read_string(blob, len, &off, &p, &n) || n != 32)
            return st_err_set(err, -EINVAL, "Keypair data is invalid: an ed25519 key has 32 bytes");
    } else if (strcmp(type, "ssh-rsa") == 0) {
        const unsigned char *e, *mod;
        size_t elen, mlen;
        if (!read_string(blob, len, &off, &e, &elen) || elen == 0 ||
            !read_string(blob, len, &off, &mod, &mlen) || mlen == 0)
            return st_err_set(err, -EINVAL, "Keypair data is invalid: malformed ssh-rsa key");
        size_t lead = 0;
        while (lead < mlen && mod[lead] == 0)
            lead++;
        if ((mlen - lead) * 8 < 1024)
            return st_err_set(err, -EINVAL,
                              "Keypair data is invalid: RSA keys need at least 1024 bits");
    } else {
        /* ecdsa-sha2-<curve>: the curve name again, then an uncompressed point */
        const char *curve = type + strlen("ecdsa-sha2-");
        static const struct {
            const char *name;
            size_t point;
        } curves[] = {{"nistp256", 65}, {"nistp384", 97}, {"nistp521", 133}};
        size_t want = 0;
        for (size_t i = 0; i < ST_ARRAY_SIZE(curves); i++)
            if (strcmp(curve, curves[i].name) == 0)
                want = curves[i].point;
        if (!read_string(blob, len, &off, &p, &n) || n != strlen(curve) ||
            memcmp(p, curve, n) != 0 || !read_string(blob, len, &off, &p, &n) || n != want ||
            p[0] != 0x04)
            return st_err_set(err, -EINVAL, "Keypair data is invalid: malformed %s key", type);
    }
    if (off != len)
        return st_err_set(err, -EINVAL, "Keypair data is invalid: trailing bytes in the %s key",
                          type);
    return 0;
}

int st_keypair_parse_public(const char *line, char ret_fingerprint[48], char **ret_normalized,
                            struct st_err **err)
{
    static const char *const types[] = {"ssh-ed25519", "ssh-rsa", "ecdsa-sha2-nistp256",
                                        "ecdsa-sha2-nistp384", "ecdsa-sha2-nistp521"};
    if (!line)
        return st_err_set(err, -EINVAL, "Keypair data is invalid: no public key");
    size_t total = strlen(line);
    if (total > ST_KEYPAIR_PUBLIC_MAX)
        return st_err_set(err, -EINVAL, "Keypair data is invalid: the public key is too long");
    const char *s = line;
    while (*s == ' ' || *s == '\t' || *s == '\n' || *s == '\r')
        s++;
    size_t len = strlen(s);
    while (len &&
           (s[len - 1] == ' ' || s[len - 1] == '\t' || s[len - 1] == '\n' || s[len - 1] == '\r'))
        len--;
    for (size_t i = 0; i < len; i++)
        if ((unsigned char)s[i] < 0x20 && s[i] != '\t')
            return st_err_set(err, -EINVAL,
                              "Keypair data is invalid: a public key is one line of text");
    const char *sp = memchr(s, ' ', len);
    if (!sp)
        return st_err_set(err, -EINVAL,
                          "Keypair data is invalid: failed to decode the public key "
                          "(expected 'ssh-ed25519 AAAA... comment')");
    size_t tlen = (size_t)(sp - s);
    const char *type = NULL;
    for (size_t i = 0; i < ST_ARRAY_SIZE(types); i++)
        if (tlen == strlen(types[i]) && memcmp(s, types[i], tlen) == 0)
            type = types[i];
    if (!type)
        return st_err_set(err, -EINVAL,
                          "Keypair data is invalid: unsupported key type '%.*s' (use "
                          "ssh-ed25519, ssh-rsa or ecdsa-sha2-nistp256/384/521)",
                          (int)(tlen > 64 ? 64 : tlen), s);
    const char *b64 = sp + 1;
    while (b64 < s + len && *b64 == ' ')
        b64++;
    const char *b64_end = b64;
    while (b64_end < s + len && *b64_end != ' ' && *b64_end != '\t')
        b64_end++;
    st_autofree unsigned char *blob = NULL;
    size_t blob_len = 0;
    if (b64_decode(b64, (size_t)(b64_end - b64), &blob, &blob_len) < 0)
        return st_err_set(err, -EINVAL,
                          "Keypair data is invalid: failed to decode the public key's base64");
    int r = check_blob(type, blob, blob_len, err);
    if (r < 0)
        return r;
    const char *comment = b64_end;
    while (comment < s + len && (*comment == ' ' || *comment == '\t'))
        comment++;
    size_t clen = (size_t)(s + len - comment);
    fingerprint(blob, blob_len, ret_fingerprint);
    if (ret_normalized)
        *ret_normalized =
            clen ? st_sprintf("%s %.*s %.*s", type, (int)(b64_end - b64), b64, (int)clen, comment)
                 : st_sprintf("%s %.*s", type, (int)(b64_end - b64), b64);
    return 0;
}

/* ---- generation ---- */

/* OpenSSH's private key container, unencrypted (PROTOCOL.key). */
static char *openssh_private_pem(const unsigned char pub[32], const unsigned char seed[32],
                                 const char *comment)
{
    struct sshbuf pubblob = {0}, priv = {0}, file = {0};
    buf_cstring(&pubblob, "ssh-ed25519");
    buf_string(&pubblob, pub, 32);

    uint32_t check;
    st_random_bytes(&check, sizeof(check));
    buf_u32(&priv, check);
    buf_u32(&priv, check);
    buf_cstring(&priv, "ssh-ed25519");
    buf_string(&priv, pub, 32);
    unsigned char sk[64];
    memcpy(sk, seed, 32);
    memcpy(sk + 32, pub, 32);
    buf_string(&priv, sk, 64);
    OPENSSL_cleanse(sk, sizeof(sk));
    buf_cstring(&priv, comment);
    for (unsigned char pad = 1; priv.len % 8 != 0; pad++) /* the "none" cipher's block size */
        buf_put(&priv, &pad, 1);

    buf_put(&file, "openssh-key-v1", sizeof("openssh-key-v1")); /* with its NUL */
    buf_cstring(&file, "none");                                 /* cipher */
    buf_cstring(&file, "none");                                 /* kdf */
    buf_cstring(&file, "");                                     /* kdf options */
    buf_u32(&file, 1);                                          /* number of keys */
    buf_string(&file, pubblob.data, pubblob.len);
    buf_string(&file, priv.data, priv.len);

    char *b64 = b64_encode(file.data, file.len);
    size_t blen = strlen(b64);
    static const char head[] = "-----BEGIN OPENSSH PRIVATE KEY-----\n";
    static const char tail[] = "-----END OPENSSH PRIVATE KEY-----\n";
    size_t cap = sizeof(head) + blen + blen / 70 + 2 + sizeof(tail);
    char *pem = st_xcalloc(1, cap);
    size_t off = 0;
    memcpy(pem, head, sizeof(head) - 1);
    off = sizeof(head) - 1;
    for (size_t i = 0; i < blen; i += 70) { /* ssh-keygen wraps at 70 */
        size_t n = blen - i < 70 ? blen - i : 70;
        memcpy(pem + off, b64 + i, n);
        off += n;
        pem[off++] = '\n';
    }
    memcpy(pem + off, tail, sizeof(tail));
    OPENSSL_cleanse(b64, blen);
    free(b64);
    buf_free(&pubblob);
    buf_free(&priv);
    buf_free(&file);
    return pem;
}

int st_keypair_generate(const char *comment, char **ret_public, char **ret_private,
                        struct st_err **err)
{
    EVP_PKEY *pkey = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
    if (!pkey)
        return st_err_set(err, -EIO, "generating an ed25519 key failed in OpenSSL");
    unsigned char pub[32], seed[32];
    size_t pub_len = sizeof(pub), seed_len = sizeof(seed);
    int ok = EVP_PKEY_get_raw_public_key(pkey, pub, &pub_len) == 1 &&
             EVP_PKEY_get_raw_private_key(pkey, seed, &seed_len) == 1 && pub_len == 32 &&
             seed_len == 32;
    EVP_PKEY_free(pkey);
    if (!ok) {
        OPENSSL_cleanse(seed, sizeof(seed));
        return st_err_set(err, -EIO, "reading the generated ed25519 key failed in OpenSSL");
    }
    struct sshbuf blob = {0};
    buf_cstring(&blob, "ssh-ed25519");
    buf_string(&blob, pub, 32);
    st_autofree char *b64 = b64_encode(blob.data, blob.len);
    buf_free(&blob);
    *ret_public = st_sprintf("ssh-ed25519 %s %s", b64, comment);
    *ret_private = openssh_private_pem(pub, seed, comment);
    OPENSSL_cleanse(seed, sizeof(seed));
    return 0;
}

/* ---- the store ---- */

int st_keypair_check_name(const char *name, struct st_err **err)
{
    size_t len = name ? strlen(name) : 0;
    if (len == 0 || len > ST_KEYPAIR_NAME_MAX)
        return st_err_set(err, -EINVAL,
                          "Keypair data is invalid: Keypair name must be string and between 1 "
                          "and %d characters long",
                          ST_KEYPAIR_NAME_MAX);
    for (const char *c = name; *c; c++)
        if (!((*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') || (*c >= '0' && *c <= '9') ||
              *c == ' ' || *c == '-' || *c == '_'))
            return st_err_set(err, -EINVAL,
                              "Keypair data is invalid: Keypair name contains unsafe characters");
    return 0;
}

static bool user_valid(const char *user_id)
{
    return user_id && user_id[0] && strlen(user_id) <= 64 && !strchr(user_id, '/');
}

static char *keypair_key(const char *user_id, const char *name)
{
    return st_sprintf("%s%s/%s", ST_KEYPAIRS_PREFIX, user_id, name);
}

static int not_found(const char *user_id, const char *name, struct st_err **err)
{
    return st_err_set(err, -ENOENT, "Keypair %s not found for user %s", name ? name : "",
                      user_id ? user_id : "");
}

int st_keypair_create(struct st_kv *kv, const char *user_id, const char *name,
                      const char *public_key, json_t **ret, char **ret_private_key,
                      struct st_err **err)
{
    if (!user_valid(user_id))
        return st_err_set(err, -EINVAL, "a keypair needs a user");
    int r = st_keypair_check_name(name, err);
    if (r < 0)
        return r;
    char fp[48];
    st_autofree char *pub = NULL, *priv = NULL;
    if (public_key) {
        if ((r = st_keypair_parse_public(public_key, fp, &pub, err)) < 0)
            return r;
    } else {
        if ((r = st_keypair_generate("Generated-by-Stratos", &pub, &priv, err)) < 0)
            return r;
        if ((r = st_keypair_parse_public(pub, fp, NULL, err)) < 0)
            return r;
    }
    st_autofree char *prefix = st_sprintf("%s%s/", ST_KEYPAIRS_PREFIX, user_id);
    st_autoptr(st_kv_list) mine = NULL;
    if ((r = st_kv_list(kv, prefix, NULL, ST_KEYPAIR_PER_USER, &mine, err)) < 0)
        return r;
    if (mine->count >= ST_KEYPAIR_PER_USER)
        return st_err_set(err, -EDQUOT, "Quota exceeded, too many key pairs.");
    char now[ST_TIME_RFC3339_LEN];
    st_time_rfc3339(st_time_now_ms() / 1000, now, sizeof(now));
    st_autoptr(json_t) doc =
        json_pack("{s:s, s:s, s:s, s:s, s:s, s:s}", "name", name, "user_id", user_id, "public_key",
                  pub, "fingerprint", fp, "type", "ssh", "created_at", now);
    st_autofree char *key = keypair_key(user_id, name);
    st_autofree char *value = st_json_dumps(doc);
    int64_t rev = 0;
    r = st_kv_put(kv, key, value, strlen(value), ST_KV_ABSENT, &rev, err);
    if (r == -ECANCELED) {
        st_err_clear(err);
        return st_err_set(err, -EEXIST, "Key pair '%s' already exists.", name);
    }
    if (r < 0)
        return st_err_prefix(err, r, "storing keypair %s", name);
    json_object_set_new(doc, "id", json_integer(rev));
    if (ret)
        *ret = st_steal(&doc);
    if (ret_private_key)
        *ret_private_key = st_steal(&priv);
    if (priv)
        OPENSSL_cleanse(priv, strlen(priv));
    return 0;
}

static json_t *parse_entry(const struct st_kv_entry *e)
{
    json_t *doc = NULL;
    if (st_json_parse_object(e->value, e->value_len, &doc, NULL) < 0)
        return NULL;
    json_object_set_new(doc, "id", json_integer(e->create_rev));
    return doc;
}

int st_keypair_get(struct st_kv *kv, const char *user_id, const char *name, json_t **ret,
                   struct st_err **err)
{
    if (!user_valid(user_id) || st_keypair_check_name(name, NULL) < 0)
        return not_found(user_id, name, err);
    st_autofree char *key = keypair_key(user_id, name);
    st_autoptr(st_kv_entry) e = NULL;
    int r = st_kv_get(kv, key, &e, err);
    if (r == -ENOENT) {
        st_err_clear(err);
        return not_found(user_id, name, err);
    }
    if (r < 0)
        return r;
    *ret = parse_entry(e);
    return *ret ? 0 : st_err_set(err, -EIO, "keypair %s is unreadable in the store", name);
}

int st_keypair_list(struct st_kv *kv, const char *user_id, json_t **ret, struct st_err **err)
{
    if (!user_valid(user_id)) {
        *ret = json_array();
        return 0;
    }
    st_autofree char *prefix = st_sprintf("%s%s/", ST_KEYPAIRS_PREFIX, user_id);
    st_autoptr(st_kv_list) l = NULL;
    int r = st_kv_list(kv, prefix, NULL, 0, &l, err);
    if (r < 0)
        return r;
    json_t *out = json_array();
    for (size_t i = 0; i < l->count; i++) {
        json_t *doc = parse_entry(&l->entries[i]);
        if (doc)
            json_array_append_new(out, doc);
    }
    *ret = out;
    return 0;
}

int st_keypair_delete(struct st_kv *kv, const char *user_id, const char *name, struct st_err **err)
{
    if (!user_valid(user_id) || st_keypair_check_name(name, NULL) < 0)
        return not_found(user_id, name, err);
    st_autofree char *key = keypair_key(user_id, name);
    int r = st_kv_delete(kv, key, ST_KV_ANY, NULL, err);
    if (r == -ENOENT) {
        st_err_clear(err);
        return not_found(user_id, name, err);
    }
    return r;
}
