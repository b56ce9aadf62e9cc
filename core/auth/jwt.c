/* SPDX-License-Identifier: Apache-2.0 */
/*
 * jwt: key sets, token verification, claims and minting (see jwt.h and
 * docs/auth.md). Verification decodes into fixed stack buffers sized from
 * FL_JWT_MAX_TOKEN, so the only allocations are jansson's, bounded by the
 * token limit that is checked first. The signature is checked before the
 * payload is even decoded: claims JSON from an unauthenticated peer is never
 * parsed.
 */
#include "flushline/jwt.h"

#include <errno.h>
#include <jansson.h>
#include <math.h>
#include <sodium.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "flushline/errors.h"
#include "flushline/value.h"

/* Largest decoded segment of a token of FL_JWT_MAX_TOKEN bytes. */
#define MAX_SEGMENT (FL_JWT_MAX_TOKEN / 4 * 3 + 3)
/* NumericDate bounds: 0 .. 9999-12-31T23:59:59Z. */
#define MAX_TIME INT64_C(253402300799)
#define B64 sodium_base64_VARIANT_URLSAFE_NO_PADDING

struct slot {
    fl_jwt_alg_t alg;
    size_t kid_len; /* 0: no kid */
    char kid[FL_JWT_MAX_STR + 1];
    uint8_t pk[FL_JWT_ED25519_PK_BYTES]; /* EdDSA */
    uint8_t *secret;                     /* HS256: sodium_malloc, read-only after add */
    size_t secret_len;
};

struct fl_jwt_keys_s {
    struct slot *slots;
    size_t n, cap;
    int64_t leeway;
};

const char *fl_jwt_alg_name(fl_jwt_alg_t alg)
{
    static const char *const names[] = {[FL_JWT_EDDSA] = "EdDSA", [FL_JWT_HS256] = "HS256"};
    return FL_NAME_AT(names, (long)alg, "unknown");
}

bool fl_jwt_kid_valid(const char *kid, size_t len)
{
    if (len == 0 || len > FL_JWT_MAX_STR || !fl_utf8_valid(kid, len))
        return false;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)kid[i];
        if (c < 0x20 || c == 0x7f)
            return false;
    }
    return true;
}

int fl_jwt_check_kid(const char *kid, char *errstr, size_t errstr_size)
{
    if (sodium_init() < 0) {
        fl_errstr(errstr, errstr_size, "libsodium failed to initialise");
        return -EINVAL;
    }
    if (kid && !fl_jwt_kid_valid(kid, strlen(kid))) {
        fl_errstr(errstr, errstr_size, "kid must be 1-%d bytes of UTF-8 without control characters",
                  FL_JWT_MAX_STR);
        return -EINVAL;
    }
    return 0;
}

fl_jwt_keys_t *fl_jwt_keys_new(void)
{
    fl_jwt_keys_t *keys;
    if (sodium_init() < 0)
        return NULL;
    keys = calloc(1, sizeof *keys);
    if (!keys)
        return NULL;
    keys->leeway = FL_JWT_DEFAULT_LEEWAY;
    return keys;
}

void fl_jwt_keys_free(fl_jwt_keys_t *keys)
{
    if (!keys)
        return;
    for (size_t i = 0; i < keys->n; i++)
        sodium_free(keys->slots[i].secret); /* wipes; NULL is a no-op */
    free(keys->slots);
    free(keys);
}

/* Appends a slot with the kid checked; the caller fills the key material. */
static struct slot *add_slot(fl_jwt_keys_t *keys, fl_jwt_alg_t alg, const char *kid, int *err)
{
    size_t kid_len = kid ? strlen(kid) : 0;
    struct slot *slot;
    if (kid && !fl_jwt_kid_valid(kid, kid_len)) {
        *err = -EINVAL;
        return NULL;
    }
    for (size_t i = 0; kid && i < keys->n; i++) {
        if (keys->slots[i].kid_len == kid_len && memcmp(keys->slots[i].kid, kid, kid_len) == 0) {
            *err = -EEXIST;
            return NULL;
        }
    }
    if (keys->n == keys->cap) {
        size_t cap = keys->cap ? keys->cap * 2 : 4;
        struct slot *grown = realloc(keys->slots, cap * sizeof *grown);
        if (!grown) {
            *err = -ENOMEM;
            return NULL;
        }
        keys->slots = grown;
        keys->cap = cap;
    }
    slot = &keys->slots[keys->n];
    memset(slot, 0, sizeof *slot);
    slot->alg = alg;
    slot->kid_len = kid_len;
    if (kid_len)
        memcpy(slot->kid, kid, kid_len);
    return slot;
}

int fl_jwt_keys_add_ed25519_public(fl_jwt_keys_t *keys, const char *kid, const uint8_t pk[32])
{
    struct slot *slot;
    int err = 0;
    if (!keys || !pk)
        return -EINVAL;
    slot = add_slot(keys, FL_JWT_EDDSA, kid, &err);
    if (!slot)
        return err;
    memcpy(slot->pk, pk, sizeof slot->pk);
    keys->n++;
    return 0;
}

int fl_jwt_keys_add_hs256(fl_jwt_keys_t *keys, const char *kid, const uint8_t *secret, size_t len)
{
    struct slot *slot;
    int err = 0;
    if (!keys || !secret || len < FL_JWT_HS256_MIN_SECRET || len > FL_JWT_HS256_MAX_SECRET)
        return -EINVAL;
    slot = add_slot(keys, FL_JWT_HS256, kid, &err);
    if (!slot)
        return err;
    slot->secret = sodium_malloc(len);
    if (!slot->secret)
        return -ENOMEM;
    memcpy(slot->secret, secret, len);
    sodium_mprotect_readonly(slot->secret);
    slot->secret_len = len;
    keys->n++;
    return 0;
}

int fl_jwt_keys_set_leeway(fl_jwt_keys_t *keys, int64_t seconds)
{
    if (!keys || seconds < 0 || seconds > FL_JWT_MAX_LEEWAY)
        return -EINVAL;
    keys->leeway = seconds;
    return 0;
}

size_t fl_jwt_keys_count(const fl_jwt_keys_t *keys)
{
    return keys ? keys->n : 0;
}

/* ---- claims ---------------------------------------------------------------- */

/* A NumericDate claim into *out; absent leaves *out alone. */
static int get_time(json_t *root, const char *name, bool required, int64_t *out, char *errstr,
                    size_t size)
{
    json_t *v = json_object_get(root, name);
    int64_t t;
    if (!v) {
        if (required)
            fl_errstr(errstr, size, "claim %s is missing", name);
        return required ? -1 : 0;
    }
    if (json_is_integer(v)) {
        json_int_t i = json_integer_value(v);
        if (i < 0 || i > MAX_TIME)
            goto range;
        t = (int64_t)i;
    } else if (json_is_real(v)) {
        double d = json_real_value(v);
        if (!isfinite(d) || d < 0 || d > (double)MAX_TIME)
            goto range;
        t = (int64_t)floor(d);
    } else {
        fl_errstr(errstr, size, "claim %s is not a number", name);
        return -1;
    }
    *out = t;
    return 0;
range:
    fl_errstr(errstr, size, "claim %s is out of range", name);
    return -1;
}

/* A claim string of 1-255 bytes of UTF-8 copied into dst (256 bytes). */
static bool copy_str(json_t *v, char *dst)
{
    size_t len;
    const char *s;
    if (!json_is_string(v))
        return false;
    s = json_string_value(v);
    len = json_string_length(v);
    /* jansson rejects \u0000 without JSON_ALLOW_NUL; the strlen check is a
     * second guard so that a prefix never ends early. */
    if (len == 0 || len > FL_JWT_MAX_STR || strlen(s) != len || !fl_utf8_valid(s, len))
        return false;
    memcpy(dst, s, len);
    dst[len] = '\0';
    return true;
}

/* The role claim: 1-64 bytes of UTF-8 copied into dst (65 bytes). */
static bool copy_role(json_t *v, char *dst)
{
    char tmp[FL_JWT_MAX_STR + 1];
    size_t len;
    if (!copy_str(v, tmp) || (len = strlen(tmp)) > FL_JWT_MAX_ROLE)
        return false;
    memcpy(dst, tmp, len + 1);
    return true;
}

static int get_prefixes(json_t *root, const char *name, char (*list)[FL_JWT_MAX_STR + 1],
                        uint32_t *n, char *errstr, size_t size)
{
    json_t *v = json_object_get(root, name);
    size_t count;
    if (!v)
        return 0;
    if (!json_is_array(v)) {
        fl_errstr(errstr, size, "claim %s is not an array", name);
        return -1;
    }
    count = json_array_size(v);
    if (count > FL_JWT_MAX_PREFIXES) {
        fl_errstr(errstr, size, "claim %s has more than %d prefixes", name, FL_JWT_MAX_PREFIXES);
        return -1;
    }
    for (size_t i = 0; i < count; i++) {
        if (!copy_str(json_array_get(v, i), list[i])) {
            fl_errstr(errstr, size, "claim %s[%zu] is not a string of 1-%d bytes of UTF-8", name, i,
                   FL_JWT_MAX_STR);
            return -1;
        }
    }
    *n = (uint32_t)count;
    return 0;
}

int fl_jwt_claims_parse(const char *json, size_t len, fl_claims_t *out, char *errstr,
                        size_t errstr_size)
{
    json_error_t jerr;
    json_t *root = NULL;
    int rc = -FL_CODE_UNAUTHORIZED;

    if (!out)
        return -FL_CODE_UNAUTHORIZED;
    memset(out, 0, sizeof *out);
    if (!json || len > MAX_SEGMENT) {
        fl_errstr(errstr, errstr_size, "claims too large");
        goto fail;
    }
    root = json_loadb(json, len, JSON_REJECT_DUPLICATES, &jerr);
    if (!root || !json_is_object(root)) {
        fl_errstr(errstr, errstr_size, "claims are not a JSON object without duplicate keys");
        goto fail;
    }
    if (!json_object_get(root, "sub")) {
        fl_errstr(errstr, errstr_size, "claim sub is missing");
        goto fail;
    }
    if (!copy_str(json_object_get(root, "sub"), out->sub)) {
        fl_errstr(errstr, errstr_size, "claim sub is not a string of 1-%d bytes of UTF-8",
               FL_JWT_MAX_STR);
        goto fail;
    }
    if (json_object_get(root, "role") && !copy_role(json_object_get(root, "role"), out->role)) {
        fl_errstr(errstr, errstr_size, "claim role is not a string of 1-%d bytes of UTF-8",
                  FL_JWT_MAX_ROLE);
        goto fail;
    }
    if (get_time(root, "exp", true, &out->exp, errstr, errstr_size) != 0 ||
        get_time(root, "nbf", false, &out->nbf, errstr, errstr_size) != 0 ||
        get_time(root, "iat", false, &out->iat, errstr, errstr_size) != 0)
        goto fail;
    if (get_prefixes(root, "read", out->read, &out->nread, errstr, errstr_size) != 0 ||
        get_prefixes(root, "write", out->write, &out->nwrite, errstr, errstr_size) != 0)
        goto fail;
    rc = 0;
fail:
    json_decref(root);
    if (rc != 0)
        memset(out, 0, sizeof *out);
    return rc;
}

static bool doc_valid(const char *doc, size_t len)
{
    return doc && len >= 1 && len <= FL_JWT_MAX_STR && fl_utf8_valid(doc, len);
}

static bool prefix_match(const char (*list)[FL_JWT_MAX_STR + 1], uint32_t n, const char *doc,
                         size_t len)
{
    if (n > FL_JWT_MAX_PREFIXES)
        n = FL_JWT_MAX_PREFIXES;
    for (uint32_t i = 0; i < n; i++) {
        size_t plen = strnlen(list[i], FL_JWT_MAX_STR + 1);
        if (plen == 1 && list[i][0] == '*')
            return true;
        if (plen > 0 && plen <= FL_JWT_MAX_STR && plen <= len && memcmp(doc, list[i], plen) == 0)
            return true;
    }
    return false;
}

bool fl_claims_can_write(const fl_claims_t *claims, const char *doc, size_t len)
{
    return claims && doc_valid(doc, len) && prefix_match(claims->write, claims->nwrite, doc, len);
}

bool fl_claims_can_read(const fl_claims_t *claims, const char *doc, size_t len)
{
    return claims && doc_valid(doc, len) &&
           (prefix_match(claims->read, claims->nread, doc, len) ||
            prefix_match(claims->write, claims->nwrite, doc, len));
}

/* ---- verification ------------------------------------------------------------ */

static int b64_decode(const char *s, size_t n, unsigned char *out, size_t max, size_t *outlen)
{
    /* A NULL b64_end makes libsodium fail unless every character is consumed;
     * it also rejects non-zero trailing bits, so each byte string has one
     * encoding (no malleable signatures). */
    return sodium_base642bin(out, max, s, n, NULL, outlen, NULL, B64);
}

static bool check_sig(const struct slot *slot, const unsigned char *sig, size_t sig_len,
                      const char *input, size_t input_len)
{
    if (slot->alg == FL_JWT_EDDSA) {
        return sig_len == crypto_sign_BYTES &&
               crypto_sign_verify_detached(sig, (const unsigned char *)input, input_len,
                                           slot->pk) == 0;
    } else {
        crypto_auth_hmacsha256_state st;
        unsigned char mac[crypto_auth_hmacsha256_BYTES];
        bool ok;
        if (sig_len != sizeof mac)
            return false;
        crypto_auth_hmacsha256_init(&st, slot->secret, slot->secret_len);
        crypto_auth_hmacsha256_update(&st, (const unsigned char *)input, input_len);
        crypto_auth_hmacsha256_final(&st, mac);
        ok = sodium_memcmp(mac, sig, sizeof mac) == 0;
        sodium_memzero(&st, sizeof st);
        sodium_memzero(mac, sizeof mac);
        return ok;
    }
}

static int64_t sat_add(int64_t a, int64_t b)
{
    int64_t r;
    if (__builtin_add_overflow(a, b, &r))
        return b > 0 ? INT64_MAX : INT64_MIN;
    return r;
}

/* The positions of the two dots of "header.payload.signature", each segment
 * non-empty. */
static int split_token(const char *token, size_t len, size_t dots[2], char *errstr,
                       size_t errstr_size)
{
    size_t ndots = 0;
    for (size_t i = 0; i < len; i++) {
        if (token[i] != '.')
            continue;
        if (ndots == 2) {
            ndots++;
            break;
        }
        dots[ndots++] = i;
    }
    if (ndots != 2) {
        fl_errstr(errstr, errstr_size, "token is not three dot-separated segments");
        return -1;
    }
    if (dots[0] == 0 || dots[1] == dots[0] + 1 || dots[1] + 1 == len) {
        fl_errstr(errstr, errstr_size, "token has an empty segment");
        return -1;
    }
    return 0;
}

/* What the header says: the algorithm (EdDSA or HS256; never none) and the
 * optional kid, copied into kid[FL_JWT_MAX_STR + 1]. */
struct header {
    fl_jwt_alg_t alg;
    char kid[FL_JWT_MAX_STR + 1];
    size_t kid_len; /* 0: no kid */
};

static int header_alg(json_t *hdr, fl_jwt_alg_t *alg, char *errstr, size_t errstr_size)
{
    json_t *v = json_object_get(hdr, "alg");
    const char *name;
    if (!json_is_string(v)) {
        fl_errstr(errstr, errstr_size, "header has no alg");
        return -1;
    }
    name = json_string_value(v);
    if (strcmp(name, "EdDSA") == 0) {
        *alg = FL_JWT_EDDSA;
    } else if (strcmp(name, "HS256") == 0) {
        *alg = FL_JWT_HS256;
    } else {
        fl_errstr(errstr, errstr_size, strcasecmp(name, "none") == 0
                                           ? "alg none is not accepted"
                                           : "unsupported alg (EdDSA and HS256 are accepted)");
        return -1;
    }
    return 0;
}

static int parse_header(const char *b64, size_t n, struct header *h, char *errstr,
                        size_t errstr_size)
{
    unsigned char seg[MAX_SEGMENT + 1];
    size_t seg_len;
    json_error_t jerr;
    json_t *hdr, *v;
    int rc = -1;

    if (b64_decode(b64, n, seg, MAX_SEGMENT, &seg_len) != 0) {
        fl_errstr(errstr, errstr_size, "header is not base64url without padding");
        return -1;
    }
    hdr = json_loadb((const char *)seg, seg_len, JSON_REJECT_DUPLICATES, &jerr);
    if (!hdr || !json_is_object(hdr)) {
        fl_errstr(errstr, errstr_size, "header is not a JSON object without duplicate keys");
        goto out;
    }
    if (header_alg(hdr, &h->alg, errstr, errstr_size) != 0)
        goto out;
    v = json_object_get(hdr, "typ");
    if (v && (!json_is_string(v) || strcasecmp(json_string_value(v), "JWT") != 0)) {
        fl_errstr(errstr, errstr_size, "header typ is not JWT");
        goto out;
    }
    if (json_object_get(hdr, "crit")) {
        fl_errstr(errstr, errstr_size, "header crit is not supported");
        goto out;
    }
    h->kid_len = 0;
    v = json_object_get(hdr, "kid");
    if (v) {
        if (!json_is_string(v) || json_string_length(v) == 0 ||
            json_string_length(v) > FL_JWT_MAX_STR) {
            fl_errstr(errstr, errstr_size, "header kid is not a string of 1-%d bytes",
                      FL_JWT_MAX_STR);
            goto out;
        }
        h->kid_len = json_string_length(v);
        memcpy(h->kid, json_string_value(v), h->kid_len);
    }
    rc = 0;
out:
    json_decref(hdr);
    return rc;
}

/* The signature over "header.payload" (input), checked against every key of
 * the header's algorithm (and kid, when it names one), before the payload is
 * looked at. */
static int verify_signature(const fl_jwt_keys_t *keys, const struct header *h, const char *input,
                            size_t input_len, const char *b64sig, size_t b64sig_len, char *errstr,
                            size_t errstr_size)
{
    unsigned char sig[crypto_sign_BYTES];
    size_t sig_len;
    bool have_key = false, verified = false;

    if (b64_decode(b64sig, b64sig_len, sig, sizeof sig, &sig_len) != 0) {
        fl_errstr(errstr, errstr_size, "signature is not base64url without padding, or too long");
        return -1;
    }
    for (size_t i = 0; i < keys->n && !verified; i++) {
        const struct slot *slot = &keys->slots[i];
        if (slot->alg != h->alg)
            continue;
        if (h->kid_len &&
            (slot->kid_len != h->kid_len || memcmp(slot->kid, h->kid, h->kid_len) != 0))
            continue;
        have_key = true;
        verified = check_sig(slot, sig, sig_len, input, input_len);
    }
    if (!have_key) {
        fl_errstr(errstr, errstr_size,
                  h->kid_len ? "no %s key has the token's kid" : "no %s key configured",
                  fl_jwt_alg_name(h->alg));
        return -1;
    }
    if (!verified) {
        fl_errstr(errstr, errstr_size, "bad signature");
        return -1;
    }
    return 0;
}

/* The payload's claims, then exp and nbf against now with the leeway. */
static int check_claims(const fl_jwt_keys_t *keys, const char *b64, size_t n, int64_t now,
                        fl_claims_t *out, char *errstr, size_t errstr_size)
{
    unsigned char seg[MAX_SEGMENT + 1];
    size_t seg_len;

    if (b64_decode(b64, n, seg, MAX_SEGMENT, &seg_len) != 0) {
        fl_errstr(errstr, errstr_size, "payload is not base64url without padding");
        return -FL_CODE_UNAUTHORIZED;
    }
    if (fl_jwt_claims_parse((const char *)seg, seg_len, out, errstr, errstr_size) != 0)
        return -FL_CODE_UNAUTHORIZED;
    if (out->exp <= sat_add(now, -keys->leeway)) {
        fl_errstr(errstr, errstr_size, "token expired");
        return -FL_CODE_TOKEN_EXPIRED;
    }
    if (out->nbf > sat_add(now, keys->leeway)) {
        fl_errstr(errstr, errstr_size, "token not yet valid (nbf)");
        return -FL_CODE_UNAUTHORIZED;
    }
    return 0;
}

int fl_jwt_verify(const fl_jwt_keys_t *keys, const char *token, size_t len, int64_t now,
                  fl_claims_t *out, char *errstr, size_t errstr_size)
{
    struct header h;
    size_t dots[2];
    int rc = -FL_CODE_UNAUTHORIZED;

    if (!out) {
        fl_errstr(errstr, errstr_size, "no claims buffer");
        return -FL_CODE_UNAUTHORIZED;
    }
    memset(out, 0, sizeof *out);
    if (!keys || !token || len == 0) {
        fl_errstr(errstr, errstr_size, "no token");
        return rc;
    }
    if (len > FL_JWT_MAX_TOKEN) {
        fl_errstr(errstr, errstr_size, "token longer than %d bytes", FL_JWT_MAX_TOKEN);
        return rc;
    }
    if (split_token(token, len, dots, errstr, errstr_size) != 0 ||
        parse_header(token, dots[0], &h, errstr, errstr_size) != 0 ||
        verify_signature(keys, &h, token, dots[1], token + dots[1] + 1, len - dots[1] - 1,
                         errstr, errstr_size) != 0)
        return rc;
    rc = check_claims(keys, token + dots[0] + 1, dots[1] - dots[0] - 1, now, out, errstr,
                      errstr_size);
    if (rc != 0)
        memset(out, 0, sizeof *out);
    return rc;
}

/* ---- minting ----------------------------------------------------------------- */

/* Appends the base64url form of (bin, n) at tok + *off (room checked by the
 * caller's length computation). */
static void put_b64(char *tok, size_t cap, size_t *off, const void *bin, size_t n)
{
    sodium_bin2base64(tok + *off, cap - *off, bin, n, B64);
    *off += strlen(tok + *off);
}

/* The compact JSON texts of the header and the claims (checked: an object
 * without duplicate keys), each at most MAX_SEGMENT bytes. */
static int mint_texts(fl_jwt_alg_t alg, const char *kid, const char *claims_json, char **hdr_s,
                      char **claims_s, char *errstr, size_t errstr_size)
{
    json_error_t jerr;
    json_t *claims, *hdr = NULL;
    int rc = -EINVAL;

    claims = json_loads(claims_json, JSON_REJECT_DUPLICATES, &jerr);
    if (!claims || !json_is_object(claims)) {
        fl_errstr(errstr, errstr_size, "claims are not a JSON object without duplicate keys");
        goto out;
    }
    hdr = json_object();
    if (!hdr || json_object_set_new(hdr, "alg", json_string(fl_jwt_alg_name(alg))) != 0 ||
        json_object_set_new(hdr, "typ", json_string("JWT")) != 0 ||
        (kid && json_object_set_new(hdr, "kid", json_string(kid)) != 0) ||
        !(*hdr_s = json_dumps(hdr, JSON_COMPACT)) || !(*claims_s = json_dumps(claims, JSON_COMPACT))) {
        fl_errstr(errstr, errstr_size, "out of memory");
        rc = -ENOMEM;
        goto out;
    }
    if (strlen(*hdr_s) > MAX_SEGMENT || strlen(*claims_s) > MAX_SEGMENT) {
        fl_errstr(errstr, errstr_size, "token would be longer than %d bytes", FL_JWT_MAX_TOKEN);
        goto out;
    }
    rc = 0;
out:
    json_decref(hdr);
    json_decref(claims);
    return rc;
}

/* The signature of tok[0, off) with the key. */
static size_t mint_sign(fl_jwt_alg_t alg, const uint8_t *key, size_t key_len, const char *tok,
                        size_t off, unsigned char sig[crypto_sign_BYTES])
{
    if (alg == FL_JWT_EDDSA) {
        crypto_sign_detached(sig, NULL, (const unsigned char *)tok, off, key);
        return crypto_sign_BYTES;
    } else {
        crypto_auth_hmacsha256_state st;
        crypto_auth_hmacsha256_init(&st, key, key_len);
        crypto_auth_hmacsha256_update(&st, (const unsigned char *)tok, off);
        crypto_auth_hmacsha256_final(&st, sig);
        sodium_memzero(&st, sizeof st);
        return crypto_auth_hmacsha256_BYTES;
    }
}

static int mint(fl_jwt_alg_t alg, const uint8_t *key, size_t key_len, const char *kid,
                const char *claims_json, char **out, char *errstr, size_t errstr_size)
{
    char *hdr_s = NULL, *claims_s = NULL, *tok = NULL;
    unsigned char sig[crypto_sign_BYTES];
    size_t hdr_len, claims_len, sig_len, cap, off = 0;
    int rc = -EINVAL;

    if (out)
        *out = NULL;
    if (!out || !key || !claims_json) {
        fl_errstr(errstr, errstr_size, "missing argument");
        goto fail;
    }
    if (fl_jwt_check_kid(kid, errstr, errstr_size) != 0)
        goto fail;
    rc = mint_texts(alg, kid, claims_json, &hdr_s, &claims_s, errstr, errstr_size);
    if (rc != 0)
        goto fail;
    rc = -EINVAL;
    hdr_len = strlen(hdr_s);
    claims_len = strlen(claims_s);
    sig_len = alg == FL_JWT_EDDSA ? crypto_sign_BYTES : crypto_auth_hmacsha256_BYTES;
    /* each ENCODED_LEN counts its own NUL: room for the two dots and one NUL */
    cap = sodium_base64_ENCODED_LEN(hdr_len, B64) + sodium_base64_ENCODED_LEN(claims_len, B64) +
          sodium_base64_ENCODED_LEN(sig_len, B64);
    tok = malloc(cap);
    if (!tok) {
        fl_errstr(errstr, errstr_size, "out of memory");
        rc = -ENOMEM;
        goto fail;
    }
    put_b64(tok, cap, &off, hdr_s, hdr_len);
    tok[off++] = '.';
    put_b64(tok, cap, &off, claims_s, claims_len);
    sig_len = mint_sign(alg, key, key_len, tok, off, sig);
    tok[off++] = '.';
    put_b64(tok, cap, &off, sig, sig_len);
    if (off > FL_JWT_MAX_TOKEN) {
        fl_errstr(errstr, errstr_size, "token would be longer than %d bytes", FL_JWT_MAX_TOKEN);
        goto fail;
    }
    *out = tok;
    tok = NULL;
    rc = 0;
fail:
    free(tok);
    free(hdr_s);
    free(claims_s);
    return rc;
}

int fl_jwt_mint_ed25519(const uint8_t sk[64], const char *kid, const char *claims_json,
                        char **out, char *errstr, size_t errstr_size)
{
    return mint(FL_JWT_EDDSA, sk, FL_JWT_ED25519_SK_BYTES, kid, claims_json, out, errstr,
                errstr_size);
}

int fl_jwt_mint_hs256(const uint8_t *secret, size_t len, const char *kid,
                      const char *claims_json, char **out, char *errstr, size_t errstr_size)
{
    if (len < FL_JWT_HS256_MIN_SECRET || len > FL_JWT_HS256_MAX_SECRET) {
        if (out)
            *out = NULL;
        fl_errstr(errstr, errstr_size, "HS256 secret must be %d-%d bytes", FL_JWT_HS256_MIN_SECRET,
               FL_JWT_HS256_MAX_SECRET);
        return -EINVAL;
    }
    return mint(FL_JWT_HS256, secret, len, kid, claims_json, out, errstr, errstr_size);
}
