/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Fuzzes the token checks (core/auth) against a fixed key set (Ed25519 kid "ed1" from seed
 * 01..20, Ed25519 without kid from seed 21..40, HS256 kid "hs1" = bytes
 * a0..bf). The first input byte picks what the rest is:
 *   0  a compact token for fl_jwt_verify (the gateway's view);
 *   1  a claims payload: fl_jwt_claims_parse, and when it is accepted it is
 *      minted with both algs and must verify to the same claims (or expire);
 *   2  a token header: signed over fixed claims with the right key, so odd
 *      headers reach the signature and claims stages;
 *   3  a key file: parse, and a parsed file must format and parse back equal.
 * Every accepted claims set is checked for its invariants, and for each of
 * a few document ids write permission must imply read permission.
 */
#include <sodium.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "flushline/errors.h"
#include "flushline/jwt.h"

#define NOW INT64_C(1700000000)
#define B64 sodium_base64_VARIANT_URLSAFE_NO_PADDING

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static fl_jwt_keys_t *keys;
static uint8_t ed_sk[64], ed2_sk[64], hs_secret[32];

static void init(void)
{
    uint8_t seed[32], pk[32];
    if (sodium_init() < 0)
        abort();
    for (int i = 0; i < 32; i++)
        seed[i] = (uint8_t)(i + 1);
    keys = fl_jwt_keys_new();
    if (!keys)
        abort();
    crypto_sign_seed_keypair(pk, ed_sk, seed);
    if (fl_jwt_keys_add_ed25519_public(keys, "ed1", pk) != 0)
        abort();
    for (int i = 0; i < 32; i++)
        seed[i] = (uint8_t)(i + 0x21);
    crypto_sign_seed_keypair(pk, ed2_sk, seed);
    if (fl_jwt_keys_add_ed25519_public(keys, NULL, pk) != 0)
        abort();
    for (int i = 0; i < 32; i++)
        hs_secret[i] = (uint8_t)(0xa0 + i);
    if (fl_jwt_keys_add_hs256(keys, "hs1", hs_secret, sizeof hs_secret) != 0)
        abort();
}

static void check_claims(const fl_claims_t *c)
{
    static const char *const docs[] = {"acme/board-1", "acme/", "beta/x", "*", "a", "acme"};
    size_t sub_len = strnlen(c->sub, sizeof c->sub);
    if (sub_len == 0 || sub_len > FL_JWT_MAX_STR || c->nread > FL_JWT_MAX_PREFIXES ||
        c->nwrite > FL_JWT_MAX_PREFIXES || c->exp < 0 || c->nbf < 0 || c->iat < 0)
        abort();
    for (uint32_t i = 0; i < c->nread; i++)
        if (strnlen(c->read[i], FL_JWT_MAX_STR + 1) - 1 >= FL_JWT_MAX_STR)
            abort();
    for (uint32_t i = 0; i < c->nwrite; i++) {
        size_t n = strnlen(c->write[i], FL_JWT_MAX_STR + 1);
        if (n - 1 >= FL_JWT_MAX_STR)
            abort();
        /* every write prefix grants writing (and reading) the prefix itself */
        if (!fl_claims_can_write(c, c->write[i], n) || !fl_claims_can_read(c, c->write[i], n))
            abort();
    }
    for (size_t i = 0; i < sizeof docs / sizeof docs[0]; i++)
        if (fl_claims_can_write(c, docs[i], strlen(docs[i])) &&
            !fl_claims_can_read(c, docs[i], strlen(docs[i])))
            abort();
}

static void verify_token(const char *tok, size_t len)
{
    fl_claims_t c;
    char errstr[256];
    int rc = fl_jwt_verify(keys, tok, len, NOW, &c, errstr, sizeof errstr);
    if (rc != 0 && rc != -FL_CODE_UNAUTHORIZED && rc != -FL_CODE_TOKEN_EXPIRED)
        abort();
    if (rc == 0)
        check_claims(&c);
}

static void claims_roundtrip(const uint8_t *data, size_t size)
{
    fl_claims_t parsed, verified;
    char errstr[256], *json, *tok = NULL;
    if (fl_jwt_claims_parse((const char *)data, size, &parsed, errstr, sizeof errstr) != 0)
        return;
    check_claims(&parsed);
    if (memchr(data, '\0', size))
        return;
    json = malloc(size + 1);
    if (!json)
        abort();
    memcpy(json, data, size);
    json[size] = '\0';
    for (int alg = 0; alg < 2; alg++) {
        int r = alg == 0 ? fl_jwt_mint_ed25519(ed_sk, "ed1", json, &tok, errstr, sizeof errstr)
                         : fl_jwt_mint_hs256(hs_secret, 32, NULL, json, &tok, errstr,
                                             sizeof errstr);
        if (r != 0)
            continue; /* e.g. too long once re-serialised */
        /* valid at max(nbf, NOW) unless already expired there */
        int64_t at = parsed.nbf > NOW ? parsed.nbf : NOW;
        r = fl_jwt_verify(keys, tok, strlen(tok), at, &verified, errstr, sizeof errstr);
        if (r == 0) {
            if (memcmp(&parsed, &verified, sizeof parsed) != 0)
                abort();
        } else if (r != -FL_CODE_TOKEN_EXPIRED || parsed.exp > at - FL_JWT_DEFAULT_LEEWAY) {
            abort();
        }
        free(tok);
        tok = NULL;
    }
    free(json);
}

static void signed_header(const uint8_t *data, size_t size)
{
    static const char pay[] = "{\"sub\":\"f\",\"exp\":1700000100,\"write\":[\"acme/\"]}";
    char tok[FL_JWT_MAX_TOKEN + 256];
    uint8_t sig[64];
    size_t off;
    if (sodium_base64_ENCODED_LEN(size, B64) + 200 > sizeof tok)
        return;
    sodium_bin2base64(tok, sizeof tok, data, size, B64);
    off = strlen(tok);
    tok[off++] = '.';
    sodium_bin2base64(tok + off, sizeof tok - off, (const uint8_t *)pay, sizeof pay - 1, B64);
    off += strlen(tok + off);
    /* an EdDSA signature with the kid'd key; also try the HMAC of it */
    crypto_sign_detached(sig, NULL, (const uint8_t *)tok, off, ed_sk);
    tok[off] = '.';
    sodium_bin2base64(tok + off + 1, sizeof tok - off - 1, sig, 64, B64);
    verify_token(tok, strlen(tok));
    crypto_auth_hmacsha256_state st;
    crypto_auth_hmacsha256_init(&st, hs_secret, sizeof hs_secret);
    crypto_auth_hmacsha256_update(&st, (const uint8_t *)tok, off);
    crypto_auth_hmacsha256_final(&st, sig);
    sodium_bin2base64(tok + off + 1, sizeof tok - off - 1, sig, 32, B64);
    verify_token(tok, strlen(tok));
}

static void keyfile_roundtrip(const uint8_t *data, size_t size)
{
    fl_jwt_keyfile_t *kf = NULL, *back = NULL;
    char errstr[256], text[2048];
    long n;
    if (fl_jwt_keyfile_parse((const char *)data, size, &kf, errstr, sizeof errstr) != 0)
        return;
    n = fl_jwt_keyfile_format(kf, kf->secret != NULL, text, sizeof text);
    if (n < 0)
        abort();
    if (fl_jwt_keyfile_parse(text, (size_t)n, &back, errstr, sizeof errstr) != 0)
        abort();
    if (back->alg != kf->alg || strcmp(back->kid, kf->kid) != 0 ||
        back->secret_len != kf->secret_len || back->has_public != kf->has_public ||
        (kf->secret && memcmp(back->secret, kf->secret, kf->secret_len) != 0) ||
        memcmp(back->public_key, kf->public_key, sizeof kf->public_key) != 0)
        abort();
    fl_jwt_keyfile_free(back);
    fl_jwt_keyfile_free(kf);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!keys)
        init();
    if (size == 0)
        return 0;
    switch (data[0] & 3) {
    case 0:
        verify_token((const char *)data + 1, size - 1);
        break;
    case 1:
        claims_roundtrip(data + 1, size - 1);
        break;
    case 2:
        signed_header(data + 1, size - 1);
        break;
    case 3:
        keyfile_roundtrip(data + 1, size - 1);
        break;
    }
    return 0;
}
