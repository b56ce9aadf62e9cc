/* SPDX-License-Identifier: Apache-2.0 */
/*
 * keyfile: the text key files of `flushline token keygen` (format in
 * docs/auth.md): generate, parse, format, and hand a file's key to a key
 * set or to the minting functions. Pure: text in, records out; reading the
 * files from disk is the process shell's (common/src/keyfile.c). File text
 * and decoded secrets only ever sit in sodium_malloc memory; error messages
 * name lines and fields, never values.
 */
#include <errno.h>
#include <sodium.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "flushline/errors.h"
#include "flushline/jwt.h"
#include "flushline/value.h"

#define B64 sodium_base64_VARIANT_URLSAFE_NO_PADDING

void fl_jwt_keyfile_free(fl_jwt_keyfile_t *kf)
{
    if (!kf)
        return;
    sodium_free(kf->secret);
    sodium_memzero(kf, sizeof *kf);
    free(kf);
}

int fl_jwt_keyfile_generate(fl_jwt_alg_t alg, const char *kid, fl_jwt_keyfile_t **out,
                            char *errstr, size_t errstr_size)
{
    fl_jwt_keyfile_t *kf = NULL;
    int rc = -EINVAL;

    *out = NULL;
    if (alg != FL_JWT_EDDSA && alg != FL_JWT_HS256) {
        fl_errstr(errstr, errstr_size, "unknown key type");
        goto fail;
    }
    if (fl_jwt_check_kid(kid, errstr, errstr_size) != 0)
        goto fail;
    kf = calloc(1, sizeof *kf);
    if (kf)
        kf->secret = sodium_malloc(alg == FL_JWT_EDDSA ? FL_JWT_ED25519_SK_BYTES
                                                       : FL_JWT_HS256_MIN_SECRET);
    if (!kf || !kf->secret) {
        fl_errstr(errstr, errstr_size, "out of memory");
        rc = -ENOMEM;
        goto fail;
    }
    kf->alg = alg;
    if (kid)
        memcpy(kf->kid, kid, strlen(kid) + 1);
    kf->secret_len = alg == FL_JWT_EDDSA ? FL_JWT_ED25519_SK_BYTES : FL_JWT_HS256_MIN_SECRET;
    if (alg == FL_JWT_EDDSA) {
        crypto_sign_keypair(kf->public_key, kf->secret);
        kf->has_public = true;
    } else {
        randombytes_buf(kf->secret, kf->secret_len);
    }
    *out = kf;
    return 0;
fail:
    fl_jwt_keyfile_free(kf);
    return rc;
}

static bool is_space(char c)
{
    return c == ' ' || c == '\t' || c == '\r';
}

static bool name_is(const char *name, size_t len, const char *want)
{
    return len == strlen(want) && memcmp(name, want, len) == 0;
}

/* Checks an Ed25519 secret key: its seed must regenerate its public half. */
static bool ed25519_sk_consistent(const uint8_t *sk)
{
    uint8_t pk[crypto_sign_PUBLICKEYBYTES];
    uint8_t *scratch = sodium_malloc(crypto_sign_SECRETKEYBYTES);
    bool ok;
    if (!scratch)
        return false;
    crypto_sign_seed_keypair(pk, scratch, sk); /* the seed is sk's first 32 bytes */
    ok = sodium_memcmp(scratch, sk, crypto_sign_SECRETKEYBYTES) == 0;
    sodium_free(scratch);
    return ok;
}

enum { F_TYPE, F_KID, F_SECRET, F_PUBLIC, F_COUNT };
static const char *const fields[F_COUNT] = {"type", "kid", "secret", "public"};

/* One `name = value` line, trimmed; the name is one of fields[]. Returns the
 * field, F_COUNT for a blank or comment line, or -1 with errstr set. */
static int split_line(const char *line, size_t n, size_t lineno, const char **val,
                      size_t *val_len, char *errstr, size_t errstr_size)
{
    const char *eq;
    size_t name_len;

    while (n > 0 && is_space(line[n - 1]))
        n--;
    while (n > 0 && is_space(line[0]))
        line++, n--;
    if (n == 0 || line[0] == '#')
        return F_COUNT;
    eq = memchr(line, '=', n);
    if (!eq) {
        fl_errstr(errstr, errstr_size, "line %zu: expected name=value", lineno);
        return -1;
    }
    name_len = (size_t)(eq - line);
    while (name_len > 0 && is_space(line[name_len - 1]))
        name_len--;
    *val = eq + 1;
    *val_len = (size_t)(line + n - *val);
    while (*val_len > 0 && is_space((*val)[0]))
        (*val)++, (*val_len)--;
    if (memchr(*val, '\0', *val_len)) {
        fl_errstr(errstr, errstr_size, "line %zu: NUL byte", lineno);
        return -1;
    }
    for (int k = 0; k < F_COUNT; k++)
        if (name_is(line, name_len, fields[k]))
            return k;
    fl_errstr(errstr, errstr_size, "line %zu: unknown name (type, kid, secret, public)", lineno);
    return -1;
}

/* Stores one field's value in kf (public goes to pub until the end, where it
 * is checked against the secret). 0, or -EINVAL / -ENOMEM with errstr set. */
static int set_field(fl_jwt_keyfile_t *kf, int field, const char *val, size_t val_len,
                     uint8_t pub[FL_JWT_ED25519_PK_BYTES], size_t lineno, char *errstr,
                     size_t errstr_size)
{
    size_t pub_len;
    switch (field) {
    case F_TYPE:
        if (name_is(val, val_len, "ed25519"))
            kf->alg = FL_JWT_EDDSA;
        else if (name_is(val, val_len, "hs256"))
            kf->alg = FL_JWT_HS256;
        else
            break;
        return 0;
    case F_KID:
        if (!fl_jwt_kid_valid(val, val_len))
            break;
        memcpy(kf->kid, val, val_len);
        kf->kid[val_len] = '\0';
        return 0;
    case F_SECRET:
        kf->secret = sodium_malloc(FL_JWT_HS256_MAX_SECRET);
        if (!kf->secret) {
            fl_errstr(errstr, errstr_size, "out of memory");
            return -ENOMEM;
        }
        if (sodium_base642bin(kf->secret, FL_JWT_HS256_MAX_SECRET, val, val_len, NULL,
                              &kf->secret_len, NULL, B64) != 0)
            break;
        return 0;
    default:
        if (sodium_base642bin(pub, FL_JWT_ED25519_PK_BYTES, val, val_len, NULL, &pub_len, NULL,
                              B64) != 0 ||
            pub_len != FL_JWT_ED25519_PK_BYTES)
            break;
        return 0;
    }
    if (field == F_TYPE)
        fl_errstr(errstr, errstr_size, "line %zu: type must be ed25519 or hs256", lineno);
    else if (field == F_KID)
        fl_errstr(errstr, errstr_size,
                  "line %zu: kid must be 1-%d bytes of UTF-8 without control characters", lineno,
                  FL_JWT_MAX_STR);
    else if (field == F_SECRET)
        fl_errstr(errstr, errstr_size,
                  "line %zu: secret is not base64url without padding, or too long", lineno);
    else
        fl_errstr(errstr, errstr_size,
                  "line %zu: public is not 32 bytes in base64url without padding", lineno);
    return -EINVAL;
}

/* The whole file read: the fields agree with the type. */
static int check_complete(fl_jwt_keyfile_t *kf, unsigned seen,
                          const uint8_t pub[FL_JWT_ED25519_PK_BYTES], char *errstr,
                          size_t errstr_size)
{
    bool has_pub = seen & (1u << F_PUBLIC);
    if (!(seen & (1u << F_TYPE))) {
        fl_errstr(errstr, errstr_size, "no type line");
        return -EINVAL;
    }
    if (kf->alg == FL_JWT_HS256) {
        if (has_pub) {
            fl_errstr(errstr, errstr_size, "an hs256 key file has no public key");
            return -EINVAL;
        }
        if (!kf->secret || kf->secret_len < FL_JWT_HS256_MIN_SECRET) {
            fl_errstr(errstr, errstr_size, "an hs256 key file needs a secret of %d-%d bytes",
                      FL_JWT_HS256_MIN_SECRET, FL_JWT_HS256_MAX_SECRET);
            return -EINVAL;
        }
        return 0;
    }
    if (kf->secret) {
        if (kf->secret_len != FL_JWT_ED25519_SK_BYTES || !ed25519_sk_consistent(kf->secret)) {
            fl_errstr(errstr, errstr_size, "secret is not a 64-byte Ed25519 secret key");
            return -EINVAL;
        }
        crypto_sign_ed25519_sk_to_pk(kf->public_key, kf->secret);
        if (has_pub && sodium_memcmp(pub, kf->public_key, FL_JWT_ED25519_PK_BYTES) != 0) {
            fl_errstr(errstr, errstr_size, "public does not match secret");
            return -EINVAL;
        }
    } else if (has_pub) {
        memcpy(kf->public_key, pub, FL_JWT_ED25519_PK_BYTES);
    } else {
        fl_errstr(errstr, errstr_size, "an ed25519 key file needs secret or public");
        return -EINVAL;
    }
    kf->has_public = true;
    return 0;
}

int fl_jwt_keyfile_parse(const char *text, size_t len, fl_jwt_keyfile_t **out, char *errstr,
                         size_t errstr_size)
{
    fl_jwt_keyfile_t *kf = NULL;
    unsigned seen = 0;
    uint8_t pub[FL_JWT_ED25519_PK_BYTES];
    size_t pos = 0, lineno = 0;
    int rc = -EINVAL;

    *out = NULL;
    if (sodium_init() < 0) {
        fl_errstr(errstr, errstr_size, "libsodium failed to initialise");
        goto fail;
    }
    if (!text || len > FL_JWT_KEYFILE_MAX) {
        fl_errstr(errstr, errstr_size, "key file larger than %d bytes", FL_JWT_KEYFILE_MAX);
        goto fail;
    }
    kf = calloc(1, sizeof *kf);
    if (!kf) {
        fl_errstr(errstr, errstr_size, "out of memory");
        rc = -ENOMEM;
        goto fail;
    }
    while (pos < len) {
        const char *line = text + pos, *nl = memchr(line, '\n', len - pos), *val = NULL;
        size_t n = nl ? (size_t)(nl - line) : len - pos, val_len = 0;
        int field;
        pos += n + (nl ? 1 : 0);
        lineno++;
        field = split_line(line, n, lineno, &val, &val_len, errstr, errstr_size);
        if (field < 0)
            goto fail;
        if (field == F_COUNT)
            continue;
        if (seen & (1u << field)) {
            fl_errstr(errstr, errstr_size, "line %zu: repeated %s", lineno, fields[field]);
            goto fail;
        }
        seen |= 1u << field;
        rc = set_field(kf, field, val, val_len, pub, lineno, errstr, errstr_size);
        if (rc != 0)
            goto fail;
        rc = -EINVAL;
    }
    rc = check_complete(kf, seen, pub, errstr, errstr_size);
    if (rc != 0)
        goto fail;
    *out = kf;
    return 0;
fail:
    fl_jwt_keyfile_free(kf);
    return rc;
}

/* Appends formatted text; false when it did not fit. */
static bool put(char *buf, size_t size, size_t *off, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static bool put(char *buf, size_t size, size_t *off, const char *fmt, ...)
{
    va_list ap;
    int n;
    if (*off >= size)
        return false;
    va_start(ap, fmt);
    n = vsnprintf(buf + *off, size - *off, fmt, ap);
    va_end(ap);
    if (n < 0 || (size_t)n >= size - *off)
        return false;
    *off += (size_t)n;
    return true;
}

/* Appends "name=<base64url>\n" encoding straight into buf. */
static bool put_b64(char *buf, size_t size, size_t *off, const char *name, const uint8_t *bin,
                    size_t n)
{
    size_t need = sodium_base64_ENCODED_LEN(n, B64); /* includes the NUL */
    if (!put(buf, size, off, "%s=", name) || size - *off < need + 1)
        return false;
    sodium_bin2base64(buf + *off, size - *off, bin, n, B64);
    *off += need - 1;
    buf[(*off)++] = '\n';
    buf[*off] = '\0';
    return true;
}

long fl_jwt_keyfile_format(const fl_jwt_keyfile_t *kf, bool with_secret, char *buf, size_t size)
{
    size_t off = 0;
    bool ok;
    if (!kf || !buf || (kf->alg != FL_JWT_EDDSA && kf->alg != FL_JWT_HS256))
        return -EINVAL;
    if (with_secret ? !kf->secret : kf->alg != FL_JWT_EDDSA || !kf->has_public)
        return -EINVAL;
    if (size == 0)
        return -ENOSPC;
    buf[0] = '\0';
    ok = put(buf, size, &off, "%s",
             with_secret ? "# flushline JWT signing key: SECRET, keep it private (mode 0600)\n"
                         : "# flushline JWT public key: verification only\n") &&
         put(buf, size, &off, "type=%s\n", kf->alg == FL_JWT_EDDSA ? "ed25519" : "hs256") &&
         (!kf->kid[0] || put(buf, size, &off, "kid=%s\n", kf->kid)) &&
         (!with_secret || put_b64(buf, size, &off, "secret", kf->secret, kf->secret_len)) &&
         (kf->alg != FL_JWT_EDDSA ||
          put_b64(buf, size, &off, "public", kf->public_key, sizeof kf->public_key));
    if (!ok) {
        sodium_memzero(buf, size);
        return -ENOSPC;
    }
    return (long)off;
}

int fl_jwt_keys_add_keyfile(fl_jwt_keys_t *keys, const fl_jwt_keyfile_t *kf, char *errstr,
                            size_t errstr_size)
{
    const char *kid = kf && kf->kid[0] ? kf->kid : NULL;
    int rc;
    if (!keys || !kf) {
        fl_errstr(errstr, errstr_size, "missing argument");
        return -EINVAL;
    }
    if (kf->alg == FL_JWT_EDDSA && kf->has_public)
        rc = fl_jwt_keys_add_ed25519_public(keys, kid, kf->public_key);
    else if (kf->alg == FL_JWT_HS256 && kf->secret)
        rc = fl_jwt_keys_add_hs256(keys, kid, kf->secret, kf->secret_len);
    else
        rc = -EINVAL;
    if (rc == -EEXIST)
        fl_errstr(errstr, errstr_size, "kid %s is already in the key set", kid);
    else if (rc != 0)
        fl_errstr(errstr, errstr_size, "cannot add the key: %s", strerror(-rc));
    return rc;
}

int fl_jwt_mint_keyfile(const fl_jwt_keyfile_t *kf, const char *claims_json, char **out,
                        char *errstr, size_t errstr_size)
{
    const char *kid = kf && kf->kid[0] ? kf->kid : NULL;
    if (out)
        *out = NULL;
    if (!kf || !kf->secret) {
        fl_errstr(errstr, errstr_size, "minting needs a secret key file, not a public one");
        return -EINVAL;
    }
    if (kf->alg == FL_JWT_EDDSA)
        return fl_jwt_mint_ed25519(kf->secret, kid, claims_json, out, errstr, errstr_size);
    return fl_jwt_mint_hs256(kf->secret, kf->secret_len, kid, claims_json, out, errstr,
                             errstr_size);
}
