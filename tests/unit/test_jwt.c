/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Unit tests for the token checks (core/auth): EdDSA and HS256 round trips, every
 * rejection fl_jwt_verify promises (alg none, alg confusion, flipped bits,
 * wrong kid, expiry and nbf with leeway, malformed segments, base64 and
 * JSON, size and count limits, claim types), document permissions, key sets,
 * key files, and tokens minted by the `flushline token` CLI binary.
 */
#include <errno.h>
#include <sodium.h>
#include <stdarg.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "fl_test.h"
#include "flushline/errors.h"
#include "flushline/jwt.h"
#include "flushline/keyfile.h"

#define NOW INT64_C(1700000000)
#define B64 sodium_base64_VARIANT_URLSAFE_NO_PADDING
#define UNAUTH (-FL_CODE_UNAUTHORIZED)
#define EXPIRED (-FL_CODE_TOKEN_EXPIRED)

static uint8_t ed_pk[32], ed_sk[64], ed2_pk[32], ed2_sk[64];
static uint8_t hs_secret[32], hs2_secret[40];
static char errstr[256];

enum { SIGN_ED, SIGN_HS, SIGN_JUNK, SIGN_EMPTY };

static void setup_keys(void)
{
    uint8_t seed[32];
    for (int i = 0; i < 32; i++)
        seed[i] = (uint8_t)(i + 1);
    crypto_sign_seed_keypair(ed_pk, ed_sk, seed);
    seed[0] ^= 0xff;
    crypto_sign_seed_keypair(ed2_pk, ed2_sk, seed);
    for (int i = 0; i < 32; i++)
        hs_secret[i] = (uint8_t)(0xa0 + i);
    for (int i = 0; i < 40; i++)
        hs2_secret[i] = (uint8_t)(0x10 + i);
}

/* Appends base64url(p, n) at out + strlen(out). */
static void cat_b64(char *out, size_t size, const void *p, size_t n)
{
    size_t off = strlen(out);
    sodium_bin2base64(out + off, size - off, p, n, B64);
}

/* Builds "b64(hdr).b64(pay).b64(sig)" signed as `how` with key. */
static const char *craft(const char *hdr, const char *pay, size_t pay_len, int how,
                         const uint8_t *key, size_t key_len)
{
    static char tok[16384];
    uint8_t sig[64];
    size_t sig_len = 0;
    tok[0] = '\0';
    cat_b64(tok, sizeof tok, hdr, strlen(hdr));
    strcat(tok, ".");
    cat_b64(tok, sizeof tok, pay, pay_len);
    if (how == SIGN_ED) {
        crypto_sign_detached(sig, NULL, (const uint8_t *)tok, strlen(tok), key);
        sig_len = 64;
    } else if (how == SIGN_HS) {
        crypto_auth_hmacsha256_state st;
        crypto_auth_hmacsha256_init(&st, key, key_len);
        crypto_auth_hmacsha256_update(&st, (const uint8_t *)tok, strlen(tok));
        crypto_auth_hmacsha256_final(&st, sig);
        sig_len = 32;
    } else if (how == SIGN_JUNK) {
        memset(sig, 0x5a, 32);
        sig_len = 32;
    }
    strcat(tok, ".");
    if (sig_len)
        cat_b64(tok, sizeof tok, sig, sig_len);
    return tok;
}

static const char *craft_ed(const char *hdr, const char *pay)
{
    return craft(hdr, pay, strlen(pay), SIGN_ED, ed_sk, 0);
}

/* Verifies a NUL-terminated token; checks that errstr never quotes it. */
static int vfy_len(const fl_jwt_keys_t *keys, const char *tok, size_t len, int64_t now,
                   fl_claims_t *c)
{
    int rc;
    errstr[0] = '\0';
    rc = fl_jwt_verify(keys, tok, len, now, c, errstr, sizeof errstr);
    if (rc != 0) {
        size_t seg = 0;
        while (seg < len && tok[seg] != '.')
            seg++;
        if (errstr[0] == '\0')
            return 1000; /* a failure must say why */
        if (seg >= 8) {
            char head[9];
            memcpy(head, tok, 8);
            head[8] = '\0';
            if (strstr(errstr, head))
                return 1001; /* errstr echoed the token */
        }
        for (size_t i = 0; i < sizeof *c; i++)
            if (((const char *)c)[i] != 0)
                return 1002; /* claims not zeroed on failure */
    }
    return rc;
}

static int vfy(const fl_jwt_keys_t *keys, const char *tok, int64_t now, fl_claims_t *c)
{
    return vfy_len(keys, tok, strlen(tok), now, c);
}

static fl_jwt_keys_t *keyset(void)
{
    fl_jwt_keys_t *keys = fl_jwt_keys_new();
    if (!keys)
        return NULL;
    if (fl_jwt_keys_add_ed25519_public(keys, "ed1", ed_pk) != 0 ||
        fl_jwt_keys_add_hs256(keys, "hs1", hs_secret, sizeof hs_secret) != 0) {
        fl_jwt_keys_free(keys);
        return NULL;
    }
    return keys;
}

static const char *claims_at(int64_t exp)
{
    static char buf[512];
    snprintf(buf, sizeof buf,
             "{\"sub\":\"alice\",\"exp\":%lld,\"iat\":%lld,\"read\":[\"acme/\"],"
             "\"write\":[\"acme/board-1\"]}",
             (long long)exp, (long long)(NOW - 5));
    return buf;
}

#define ED_HDR "{\"alg\":\"EdDSA\",\"typ\":\"JWT\",\"kid\":\"ed1\"}"
#define HS_HDR "{\"alg\":\"HS256\",\"typ\":\"JWT\",\"kid\":\"hs1\"}"

static void test_roundtrip_eddsa(void)
{
    fl_jwt_keys_t *keys = keyset();
    fl_claims_t c;
    char *tok = NULL;
    ASSERT_TRUE(keys);
    ASSERT_EQ(fl_jwt_mint_ed25519(ed_sk, "ed1",
                                  "{\"sub\":\"alice\",\"exp\":1700003600,\"nbf\":1699999990,"
                                  "\"iat\":1699999990,\"read\":[\"acme/\",\"*\"],"
                                  "\"write\":[\"acme/board-1\"],\"extra\":{\"x\":[1,2]}}",
                                  &tok, errstr, sizeof errstr),
              0);
    ASSERT_EQ(vfy(keys, tok, NOW, &c), 0);
    ASSERT_STR_EQ(c.sub, "alice");
    ASSERT_EQ(c.exp, 1700003600);
    ASSERT_EQ(c.nbf, 1699999990);
    ASSERT_EQ(c.iat, 1699999990);
    ASSERT_EQ(c.nread, 2);
    ASSERT_STR_EQ(c.read[0], "acme/");
    ASSERT_STR_EQ(c.read[1], "*");
    ASSERT_EQ(c.nwrite, 1);
    ASSERT_STR_EQ(c.write[0], "acme/board-1");
    free(tok);

    /* no kid: every EdDSA key is tried, including ones with a kid */
    ASSERT_EQ(fl_jwt_mint_ed25519(ed_sk, NULL, claims_at(NOW + 60), &tok, errstr, sizeof errstr),
              0);
    ASSERT_EQ(vfy(keys, tok, NOW, &c), 0);
    ASSERT_EQ(c.nbf, 0);
    free(tok);

    /* a second key without kid, tried too */
    ASSERT_EQ(fl_jwt_keys_add_ed25519_public(keys, NULL, ed2_pk), 0);
    ASSERT_EQ(fl_jwt_mint_ed25519(ed2_sk, NULL, claims_at(NOW + 60), &tok, errstr, sizeof errstr),
              0);
    ASSERT_EQ(vfy(keys, tok, NOW, &c), 0);
    free(tok);
    ASSERT_EQ(fl_jwt_keys_count(keys), 3);

    /* a token not NUL-terminated: only len bytes are read */
    ASSERT_EQ(fl_jwt_mint_ed25519(ed_sk, "ed1", claims_at(NOW + 60), &tok, errstr, sizeof errstr),
              0);
    {
        size_t n = strlen(tok);
        char *copy = malloc(n);
        ASSERT_TRUE(copy);
        memcpy(copy, tok, n);
        ASSERT_EQ(vfy_len(keys, copy, n, NOW, &c), 0);
        ASSERT_EQ(vfy_len(keys, copy, n - 1, NOW, &c), UNAUTH);
        free(copy);
    }
    free(tok);
    fl_jwt_keys_free(keys);
}

static void test_roundtrip_hs256(void)
{
    fl_jwt_keys_t *keys = keyset();
    fl_claims_t c;
    char *tok = NULL;
    ASSERT_TRUE(keys);
    ASSERT_EQ(fl_jwt_mint_hs256(hs_secret, sizeof hs_secret, "hs1", claims_at(NOW + 10), &tok,
                                errstr, sizeof errstr),
              0);
    ASSERT_EQ(vfy(keys, tok, NOW, &c), 0);
    ASSERT_STR_EQ(c.sub, "alice");
    ASSERT_EQ(c.exp, NOW + 10);
    free(tok);
    /* a long secret (hashed by HMAC) and no kid */
    ASSERT_EQ(fl_jwt_keys_add_hs256(keys, NULL, hs2_secret, sizeof hs2_secret), 0);
    ASSERT_EQ(fl_jwt_mint_hs256(hs2_secret, sizeof hs2_secret, NULL, claims_at(NOW + 10), &tok,
                                errstr, sizeof errstr),
              0);
    ASSERT_EQ(vfy(keys, tok, NOW, &c), 0);
    free(tok);
    /* the same HMAC by hand (any JWT library's output) */
    ASSERT_EQ(vfy(keys, craft(HS_HDR, claims_at(NOW + 10), strlen(claims_at(NOW + 10)), SIGN_HS,
                              hs_secret, sizeof hs_secret),
                  NOW, &c),
              0);
    /* real-valued NumericDate, floored */
    ASSERT_EQ(vfy(keys,
                  craft(HS_HDR, "{\"sub\":\"b\",\"exp\":1700000100.75}", 31, SIGN_HS, hs_secret,
                        sizeof hs_secret),
                  NOW, &c),
              0);
    ASSERT_EQ(c.exp, 1700000100);
    /* minting refuses short secrets */
    ASSERT_EQ(fl_jwt_mint_hs256(hs_secret, 31, NULL, claims_at(NOW), &tok, errstr, sizeof errstr),
              -EINVAL);
    ASSERT_TRUE(tok == NULL);
    fl_jwt_keys_free(keys);
}

static void test_alg_none(void)
{
    fl_jwt_keys_t *keys = keyset();
    fl_claims_t c;
    const char *pay = claims_at(NOW + 60);
    ASSERT_TRUE(keys);
    /* the classic unsigned form "h.p." */
    ASSERT_EQ(vfy(keys, craft("{\"alg\":\"none\",\"typ\":\"JWT\"}", pay, strlen(pay), SIGN_EMPTY,
                              NULL, 0),
                  NOW, &c),
              UNAUTH);
    /* with some signature bytes, in any case */
    ASSERT_EQ(vfy(keys, craft("{\"alg\":\"none\"}", pay, strlen(pay), SIGN_JUNK, NULL, 0), NOW, &c),
              UNAUTH);
    ASSERT_TRUE(strstr(errstr, "none") != NULL);
    ASSERT_EQ(vfy(keys, craft("{\"alg\":\"NoNe\"}", pay, strlen(pay), SIGN_JUNK, NULL, 0), NOW, &c),
              UNAUTH);
    /* other algs and a missing or non-string alg */
    ASSERT_EQ(vfy(keys, craft("{\"alg\":\"RS256\"}", pay, strlen(pay), SIGN_JUNK, NULL, 0), NOW, &c),
              UNAUTH);
    ASSERT_EQ(vfy(keys, craft("{\"alg\":\"hs256\"}", pay, strlen(pay), SIGN_HS, hs_secret, 32), NOW,
                  &c),
              UNAUTH);
    ASSERT_EQ(vfy(keys, craft("{\"typ\":\"JWT\"}", pay, strlen(pay), SIGN_HS, hs_secret, 32), NOW,
                  &c),
              UNAUTH);
    ASSERT_EQ(vfy(keys, craft("{\"alg\":null}", pay, strlen(pay), SIGN_HS, hs_secret, 32), NOW, &c),
              UNAUTH);
    fl_jwt_keys_free(keys);
}

static void test_alg_confusion(void)
{
    fl_jwt_keys_t *keys = fl_jwt_keys_new();
    fl_claims_t c;
    const char *pay = claims_at(NOW + 60);
    ASSERT_TRUE(keys);
    ASSERT_EQ(fl_jwt_keys_add_ed25519_public(keys, "ed1", ed_pk), 0);
    /* HS256 keyed with the public key bytes: the classic confusion attack */
    ASSERT_EQ(vfy(keys, craft(HS_HDR, pay, strlen(pay), SIGN_HS, ed_pk, 32), NOW, &c), UNAUTH);
    ASSERT_EQ(vfy(keys,
                  craft("{\"alg\":\"HS256\",\"kid\":\"ed1\"}", pay, strlen(pay), SIGN_HS, ed_pk, 32),
                  NOW, &c),
              UNAUTH);
    ASSERT_EQ(vfy(keys, craft("{\"alg\":\"HS256\"}", pay, strlen(pay), SIGN_HS, ed_pk, 32), NOW, &c),
              UNAUTH);
    /* the other way round: an EdDSA header over an HMAC */
    ASSERT_EQ(vfy(keys, craft(ED_HDR, pay, strlen(pay), SIGN_HS, ed_pk, 32), NOW, &c), UNAUTH);
    /* and the honest token still passes */
    ASSERT_EQ(vfy(keys, craft_ed(ED_HDR, pay), NOW, &c), 0);
    fl_jwt_keys_free(keys);

    /* an HS256 key does not verify an EdDSA token signed by its owner */
    keys = fl_jwt_keys_new();
    ASSERT_TRUE(keys);
    ASSERT_EQ(fl_jwt_keys_add_hs256(keys, NULL, hs_secret, sizeof hs_secret), 0);
    ASSERT_EQ(vfy(keys, craft_ed("{\"alg\":\"EdDSA\"}", pay), NOW, &c), UNAUTH);
    fl_jwt_keys_free(keys);
}

/* Decodes the token's signature, flips one bit, re-encodes. */
static const char *flip_sig_bit(const char *tok, int bit)
{
    static char out[16384];
    uint8_t sig[64];
    size_t sig_len;
    const char *dot = strrchr(tok, '.');
    if (sodium_base642bin(sig, sizeof sig, dot + 1, strlen(dot + 1), NULL, &sig_len, NULL, B64))
        return "x";
    sig[bit / 8] ^= (uint8_t)(1u << (bit % 8));
    memcpy(out, tok, (size_t)(dot + 1 - tok));
    out[dot + 1 - tok] = '\0';
    cat_b64(out, sizeof out, sig, sig_len);
    return out;
}

static void test_bad_signature(void)
{
    fl_jwt_keys_t *keys = keyset();
    fl_claims_t c;
    char *ed = NULL, *hs = NULL;
    ASSERT_TRUE(keys);
    ASSERT_EQ(fl_jwt_mint_ed25519(ed_sk, "ed1", claims_at(NOW + 60), &ed, errstr, sizeof errstr), 0);
    ASSERT_EQ(fl_jwt_mint_hs256(hs_secret, 32, "hs1", claims_at(NOW + 60), &hs, errstr,
                                sizeof errstr),
              0);
    for (int bit = 0; bit < 256; bit += 37) {
        ASSERT_EQ(vfy(keys, flip_sig_bit(ed, bit), NOW, &c), UNAUTH);
        ASSERT_STR_EQ(errstr, "bad signature");
        ASSERT_EQ(vfy(keys, flip_sig_bit(hs, bit), NOW, &c), UNAUTH);
        ASSERT_STR_EQ(errstr, "bad signature");
    }
    ASSERT_EQ(vfy(keys, flip_sig_bit(ed, 511), NOW, &c), UNAUTH);
    /* a payload signed by another Ed25519 key under kid ed1 */
    ASSERT_EQ(vfy(keys, craft(ED_HDR, claims_at(NOW + 60), strlen(claims_at(NOW + 60)), SIGN_ED,
                              ed2_sk, 0),
                  NOW, &c),
              UNAUTH);
    /* a changed payload under the original signature */
    {
        char forged[16384];
        const char *sig = strrchr(ed, '.');
        const char *pay = "{\"sub\":\"mallory\",\"exp\":1700000060,\"write\":[\"*\"]}";
        ASSERT_TRUE(sig);
        snprintf(forged, sizeof forged, "%.*s.", (int)(strchr(ed, '.') - ed), ed);
        cat_b64(forged, sizeof forged, pay, strlen(pay));
        strcat(forged, sig);
        ASSERT_EQ(vfy(keys, forged, NOW, &c), UNAUTH);
    }
    /* wrong signature lengths */
    ASSERT_EQ(vfy(keys, craft(ED_HDR, "{}", 2, SIGN_JUNK, NULL, 0), NOW, &c), UNAUTH);
    ASSERT_EQ(vfy(keys, craft(HS_HDR, "{}", 2, SIGN_ED, ed_sk, 0), NOW, &c), UNAUTH);
    free(ed);
    free(hs);
    fl_jwt_keys_free(keys);
}

static void test_wrong_kid(void)
{
    fl_jwt_keys_t *keys = keyset();
    fl_claims_t c;
    const char *pay = claims_at(NOW + 60);
    char *tok = NULL;
    ASSERT_TRUE(keys);
    ASSERT_EQ(fl_jwt_mint_ed25519(ed_sk, "ed9", pay, &tok, errstr, sizeof errstr), 0);
    ASSERT_EQ(vfy(keys, tok, NOW, &c), UNAUTH);
    ASSERT_TRUE(strstr(errstr, "kid") != NULL);
    free(tok);
    /* the kid of a key of the other alg */
    ASSERT_EQ(fl_jwt_mint_ed25519(ed_sk, "hs1", pay, &tok, errstr, sizeof errstr), 0);
    ASSERT_EQ(vfy(keys, tok, NOW, &c), UNAUTH);
    free(tok);
    ASSERT_EQ(fl_jwt_mint_hs256(hs_secret, 32, "ed1", pay, &tok, errstr, sizeof errstr), 0);
    ASSERT_EQ(vfy(keys, tok, NOW, &c), UNAUTH);
    free(tok);
    /* kid must be a non-empty string */
    ASSERT_EQ(vfy(keys, craft_ed("{\"alg\":\"EdDSA\",\"kid\":7}", pay), NOW, &c), UNAUTH);
    ASSERT_EQ(vfy(keys, craft_ed("{\"alg\":\"EdDSA\",\"kid\":\"\"}", pay), NOW, &c), UNAUTH);
    /* exact bytes: "ED1" is not "ed1" */
    ASSERT_EQ(vfy(keys, craft_ed("{\"alg\":\"EdDSA\",\"kid\":\"ED1\"}", pay), NOW, &c), UNAUTH);
    ASSERT_EQ(vfy(keys, craft_ed("{\"alg\":\"EdDSA\",\"kid\":\"ed1\"}", pay), NOW, &c), 0);
    fl_jwt_keys_free(keys);
}

static void test_header_rules(void)
{
    fl_jwt_keys_t *keys = keyset();
    fl_claims_t c;
    const char *pay = claims_at(NOW + 60);
    ASSERT_TRUE(keys);
    ASSERT_EQ(vfy(keys, craft_ed("{\"alg\":\"EdDSA\"}", pay), NOW, &c), 0);
    ASSERT_EQ(vfy(keys, craft_ed("{\"alg\":\"EdDSA\",\"typ\":\"jwt\"}", pay), NOW, &c), 0);
    ASSERT_EQ(vfy(keys, craft_ed("{\"alg\":\"EdDSA\",\"typ\":\"JWS\"}", pay), NOW, &c), UNAUTH);
    ASSERT_EQ(vfy(keys, craft_ed("{\"alg\":\"EdDSA\",\"typ\":1}", pay), NOW, &c), UNAUTH);
    ASSERT_EQ(vfy(keys, craft_ed("{\"alg\":\"EdDSA\",\"crit\":[\"exp\"]}", pay), NOW, &c),
              UNAUTH);
    ASSERT_EQ(vfy(keys, craft_ed("{\"alg\":\"EdDSA\",\"alg\":\"EdDSA\"}", pay), NOW, &c), UNAUTH);
    ASSERT_EQ(vfy(keys, craft_ed("[\"EdDSA\"]", pay), NOW, &c), UNAUTH);
    ASSERT_EQ(vfy(keys, craft_ed("\"EdDSA\"", pay), NOW, &c), UNAUTH);
    ASSERT_EQ(vfy(keys, craft_ed("{\"alg\":\"EdDSA\"", pay), NOW, &c), UNAUTH);
    ASSERT_EQ(vfy(keys, craft_ed("{\"alg\":\"EdDSA\"} ", pay), NOW, &c), 0); /* JSON whitespace */
    fl_jwt_keys_free(keys);
}

static void test_expiry(void)
{
    fl_jwt_keys_t *keys = keyset();
    fl_claims_t c;
    ASSERT_TRUE(keys);
    /* default leeway 30 s: valid while exp > now - 30 */
    ASSERT_EQ(vfy(keys, craft_ed(ED_HDR, claims_at(NOW - 29)), NOW, &c), 0);
    ASSERT_EQ(vfy(keys, craft_ed(ED_HDR, claims_at(NOW - 30)), NOW, &c), EXPIRED);
    ASSERT_STR_EQ(errstr, "token expired");
    ASSERT_EQ(vfy(keys, craft_ed(ED_HDR, claims_at(NOW - 100000)), NOW, &c), EXPIRED);
    ASSERT_EQ(vfy(keys, craft_ed(ED_HDR, claims_at(0)), NOW, &c), EXPIRED);
    /* an expired token with a bad signature is unauthorized, not expired */
    ASSERT_EQ(vfy(keys, flip_sig_bit(craft_ed(ED_HDR, claims_at(NOW - 100)), 3), NOW, &c), UNAUTH);
    /* leeway 0 */
    ASSERT_EQ(fl_jwt_keys_set_leeway(keys, 0), 0);
    ASSERT_EQ(vfy(keys, craft_ed(ED_HDR, claims_at(NOW)), NOW, &c), EXPIRED);
    ASSERT_EQ(vfy(keys, craft_ed(ED_HDR, claims_at(NOW + 1)), NOW, &c), 0);
    ASSERT_EQ(fl_jwt_keys_set_leeway(keys, -1), -EINVAL);
    ASSERT_EQ(fl_jwt_keys_set_leeway(keys, FL_JWT_MAX_LEEWAY + 1), -EINVAL);
    ASSERT_EQ(fl_jwt_keys_set_leeway(keys, 30), 0);
    /* extreme now values do not overflow (nbf, absent, counts as 0) */
    ASSERT_EQ(vfy(keys, craft_ed(ED_HDR, claims_at(NOW)), INT64_MIN, &c), UNAUTH);
    ASSERT_EQ(vfy(keys, craft_ed(ED_HDR, claims_at(NOW)), INT64_MAX, &c), EXPIRED);
    fl_jwt_keys_free(keys);
}

static void test_not_before(void)
{
    fl_jwt_keys_t *keys = keyset();
    fl_claims_t c;
    char pay[256];
    ASSERT_TRUE(keys);
    snprintf(pay, sizeof pay, "{\"sub\":\"a\",\"exp\":%lld,\"nbf\":%lld}", (long long)NOW + 999,
             (long long)NOW + 30);
    ASSERT_EQ(vfy(keys, craft_ed(ED_HDR, pay), NOW, &c), 0);
    ASSERT_EQ(c.nbf, NOW + 30);
    snprintf(pay, sizeof pay, "{\"sub\":\"a\",\"exp\":%lld,\"nbf\":%lld}", (long long)NOW + 999,
             (long long)NOW + 31);
    ASSERT_EQ(vfy(keys, craft_ed(ED_HDR, pay), NOW, &c), UNAUTH);
    ASSERT_TRUE(strstr(errstr, "not yet valid") != NULL);
    ASSERT_EQ(vfy(keys, craft_ed(ED_HDR, pay), NOW + 1, &c), 0);
    fl_jwt_keys_free(keys);
}

/* Verifies claims JSON signed correctly with the EdDSA key at NOW. */
static int claims_rc(const fl_jwt_keys_t *keys, const char *pay)
{
    fl_claims_t c;
    return vfy(keys, craft(ED_HDR, pay, strlen(pay), SIGN_ED, ed_sk, 0), NOW, &c);
}

static void test_claim_types(void)
{
    fl_jwt_keys_t *keys = keyset();
    ASSERT_TRUE(keys);
    ASSERT_EQ(claims_rc(keys, "{\"sub\":\"a\",\"exp\":1700000100}"), 0);
    /* exp */
    ASSERT_EQ(claims_rc(keys, "{\"sub\":\"a\"}"), UNAUTH);
    ASSERT_TRUE(strstr(errstr, "exp") != NULL);
    ASSERT_EQ(claims_rc(keys, "{\"sub\":\"a\",\"exp\":\"1700000100\"}"), UNAUTH);
    ASSERT_EQ(claims_rc(keys, "{\"sub\":\"a\",\"exp\":null}"), UNAUTH);
    ASSERT_EQ(claims_rc(keys, "{\"sub\":\"a\",\"exp\":true}"), UNAUTH);
    ASSERT_EQ(claims_rc(keys, "{\"sub\":\"a\",\"exp\":-1}"), UNAUTH);
    ASSERT_EQ(claims_rc(keys, "{\"sub\":\"a\",\"exp\":253402300800}"), UNAUTH);
    ASSERT_EQ(claims_rc(keys, "{\"sub\":\"a\",\"exp\":1e300}"), UNAUTH);
    ASSERT_EQ(claims_rc(keys, "{\"sub\":\"a\",\"exp\":99999999999999999999999}"), UNAUTH);
    ASSERT_EQ(claims_rc(keys, "{\"sub\":\"a\",\"exp\":1700000100,\"nbf\":\"x\"}"), UNAUTH);
    ASSERT_EQ(claims_rc(keys, "{\"sub\":\"a\",\"exp\":1700000100,\"iat\":[]}"), UNAUTH);
    ASSERT_EQ(claims_rc(keys, "{\"sub\":\"a\",\"exp\":1700000100,\"exp\":1700000100}"), UNAUTH);
    /* sub */
    ASSERT_EQ(claims_rc(keys, "{\"exp\":1700000100}"), UNAUTH);
    ASSERT_EQ(claims_rc(keys, "{\"sub\":42,\"exp\":1700000100}"), UNAUTH);
    ASSERT_TRUE(strstr(errstr, "sub") != NULL);
    ASSERT_EQ(claims_rc(keys, "{\"sub\":null,\"exp\":1700000100}"), UNAUTH);
    ASSERT_EQ(claims_rc(keys, "{\"sub\":[\"a\"],\"exp\":1700000100}"), UNAUTH);
    ASSERT_EQ(claims_rc(keys, "{\"sub\":{},\"exp\":1700000100}"), UNAUTH);
    ASSERT_EQ(claims_rc(keys, "{\"sub\":\"\",\"exp\":1700000100}"), UNAUTH);
    ASSERT_EQ(claims_rc(keys, "{\"sub\":\"a\\u0000b\",\"exp\":1700000100}"), UNAUTH);
    ASSERT_EQ(claims_rc(keys, "{\"sub\":\"\\ud800\",\"exp\":1700000100}"), UNAUTH);
    ASSERT_EQ(claims_rc(keys, "{\"sub\":\"\xff\",\"exp\":1700000100}"), UNAUTH);
    ASSERT_EQ(claims_rc(keys, "{\"sub\":\"\xc3\xa9l\xc3\xa8ve\",\"exp\":1700000100}"), 0);
    {
        char pay[1024], sub[300];
        memset(sub, 'u', 255);
        sub[255] = '\0';
        snprintf(pay, sizeof pay, "{\"sub\":\"%s\",\"exp\":1700000100}", sub);
        ASSERT_EQ(claims_rc(keys, pay), 0);
        memset(sub, 'u', 256);
        sub[256] = '\0';
        snprintf(pay, sizeof pay, "{\"sub\":\"%s\",\"exp\":1700000100}", sub);
        ASSERT_EQ(claims_rc(keys, pay), UNAUTH);
    }
    /* role: optional, 1-64 bytes of UTF-8 */
    {
        fl_claims_t c;
        const char *ok = "{\"sub\":\"a\",\"exp\":1700000100,\"role\":\"admin\"}";
        ASSERT_EQ(fl_jwt_claims_parse(ok, strlen(ok), &c, errstr, sizeof errstr), 0);
        ASSERT_STR_EQ(c.role, "admin");
        ok = "{\"sub\":\"a\",\"exp\":1700000100}";
        ASSERT_EQ(fl_jwt_claims_parse(ok, strlen(ok), &c, errstr, sizeof errstr), 0);
        ASSERT_STR_EQ(c.role, "");
        char pay[256], role[80];
        memset(role, 'r', 64);
        role[64] = '\0';
        snprintf(pay, sizeof pay, "{\"sub\":\"a\",\"exp\":1700000100,\"role\":\"%s\"}", role);
        ASSERT_EQ(claims_rc(keys, pay), 0);
        memset(role, 'r', 65);
        role[65] = '\0';
        snprintf(pay, sizeof pay, "{\"sub\":\"a\",\"exp\":1700000100,\"role\":\"%s\"}", role);
        ASSERT_EQ(claims_rc(keys, pay), UNAUTH);
        ASSERT_TRUE(strstr(errstr, "role") != NULL);
    }
    ASSERT_EQ(claims_rc(keys, "{\"sub\":\"a\",\"exp\":1700000100,\"role\":\"\"}"), UNAUTH);
    ASSERT_EQ(claims_rc(keys, "{\"sub\":\"a\",\"exp\":1700000100,\"role\":7}"), UNAUTH);
    /* payload not an object */
    ASSERT_EQ(claims_rc(keys, "[]"), UNAUTH);
    ASSERT_EQ(claims_rc(keys, "null"), UNAUTH);
    ASSERT_EQ(claims_rc(keys, "{\"sub\":\"a\",\"exp\":1700000100"), UNAUTH);
    ASSERT_EQ(claims_rc(keys, "{\"sub\":\"a\",\"exp\":1700000100}x"), UNAUTH);
    fl_jwt_keys_free(keys);
}

static void test_prefix_limits(void)
{
    fl_jwt_keys_t *keys = keyset();
    char pay[16384], item[300];
    size_t off;
    ASSERT_TRUE(keys);
    for (int n = 32; n <= 33; n++) {
        off = (size_t)snprintf(pay, sizeof pay, "{\"sub\":\"a\",\"exp\":1700000100,\"read\":[");
        for (int i = 0; i < n; i++)
            off += (size_t)snprintf(pay + off, sizeof pay - off, "%s\"t%d/\"", i ? "," : "", i);
        snprintf(pay + off, sizeof pay - off, "]}");
        ASSERT_EQ(claims_rc(keys, pay), n == 32 ? 0 : UNAUTH);
        /* same in write */
        {
            char *r = strstr(pay, "\"read\"");
            memcpy(r, "\"writ\"", 6);
            ASSERT_EQ(claims_rc(keys, pay), 0); /* "writ" is an unknown claim: ignored */
            memcpy(r, "\"read\"", 6);
        }
    }
    off = (size_t)snprintf(pay, sizeof pay, "{\"sub\":\"a\",\"exp\":1700000100,\"write\":[");
    for (int i = 0; i < 33; i++)
        off += (size_t)snprintf(pay + off, sizeof pay - off, "%s\"t%d/\"", i ? "," : "", i);
    snprintf(pay + off, sizeof pay - off, "]}");
    ASSERT_EQ(claims_rc(keys, pay), UNAUTH);
    ASSERT_TRUE(strstr(errstr, "write") != NULL);
    /* element length and type */
    memset(item, 'p', 255);
    item[255] = '\0';
    snprintf(pay, sizeof pay, "{\"sub\":\"a\",\"exp\":1700000100,\"read\":[\"%s\"]}", item);
    ASSERT_EQ(claims_rc(keys, pay), 0);
    memset(item, 'p', 256);
    item[256] = '\0';
    snprintf(pay, sizeof pay, "{\"sub\":\"a\",\"exp\":1700000100,\"read\":[\"%s\"]}", item);
    ASSERT_EQ(claims_rc(keys, pay), UNAUTH);
    ASSERT_EQ(claims_rc(keys, "{\"sub\":\"a\",\"exp\":1700000100,\"read\":[\"\"]}"), UNAUTH);
    ASSERT_EQ(claims_rc(keys, "{\"sub\":\"a\",\"exp\":1700000100,\"read\":[1]}"), UNAUTH);
    ASSERT_EQ(claims_rc(keys, "{\"sub\":\"a\",\"exp\":1700000100,\"read\":[[\"a/\"]]}"), UNAUTH);
    ASSERT_EQ(claims_rc(keys, "{\"sub\":\"a\",\"exp\":1700000100,\"read\":\"acme/\"}"), UNAUTH);
    ASSERT_EQ(claims_rc(keys, "{\"sub\":\"a\",\"exp\":1700000100,\"write\":{}}"), UNAUTH);
    ASSERT_EQ(claims_rc(keys, "{\"sub\":\"a\",\"exp\":1700000100,\"read\":[],\"write\":[]}"), 0);
    fl_jwt_keys_free(keys);
}

static void test_malformed(void)
{
    fl_jwt_keys_t *keys = keyset();
    fl_claims_t c;
    char *good = NULL, buf[16384];
    const char *dot1, *dot2;
    ASSERT_TRUE(keys);
    ASSERT_EQ(fl_jwt_mint_ed25519(ed_sk, "ed1", claims_at(NOW + 60), &good, errstr, sizeof errstr),
              0);
    dot1 = strchr(good, '.');
    dot2 = strrchr(good, '.');
    /* segment counts: 0, 1 (2 segments), 3 dots (4 segments) */
    ASSERT_EQ(vfy(keys, "", NOW, &c), UNAUTH);
    ASSERT_EQ(vfy(keys, "eyJhbGciOiJFZERTQSJ9", NOW, &c), UNAUTH);
    snprintf(buf, sizeof buf, "%.*s", (int)(dot2 - good), good);
    ASSERT_EQ(vfy(keys, buf, NOW, &c), UNAUTH);
    snprintf(buf, sizeof buf, "%s.", good);
    ASSERT_EQ(vfy(keys, buf, NOW, &c), UNAUTH);
    snprintf(buf, sizeof buf, "%s.%s", good, dot2 + 1);
    ASSERT_EQ(vfy(keys, buf, NOW, &c), UNAUTH);
    ASSERT_EQ(vfy(keys, "..", NOW, &c), UNAUTH);
    ASSERT_EQ(vfy(keys, "...", NOW, &c), UNAUTH);
    /* empty header / payload / signature */
    snprintf(buf, sizeof buf, "%s", dot1);
    ASSERT_EQ(vfy(keys, buf, NOW, &c), UNAUTH);
    snprintf(buf, sizeof buf, "%.*s.%s", (int)(dot1 - good), good, dot2);
    ASSERT_EQ(vfy(keys, buf, NOW, &c), UNAUTH);
    snprintf(buf, sizeof buf, "%.*s.", (int)(dot2 - good), good);
    ASSERT_EQ(vfy(keys, buf, NOW, &c), UNAUTH);
    /* base64: padding, standard alphabet, spaces, a stray byte, a NUL */
    snprintf(buf, sizeof buf, "%.*s=%s", (int)(dot1 - good), good, dot1);
    ASSERT_EQ(vfy(keys, buf, NOW, &c), UNAUTH);
    snprintf(buf, sizeof buf, "%s=", good);
    ASSERT_EQ(vfy(keys, buf, NOW, &c), UNAUTH);
    snprintf(buf, sizeof buf, "%s", good);
    buf[dot2 - good + 3] = '+';
    ASSERT_EQ(vfy(keys, buf, NOW, &c), UNAUTH);
    snprintf(buf, sizeof buf, "%s", good);
    buf[2] = '/';
    ASSERT_EQ(vfy(keys, buf, NOW, &c), UNAUTH);
    snprintf(buf, sizeof buf, "%s", good);
    buf[dot1 - good + 2] = ' ';
    ASSERT_EQ(vfy(keys, buf, NOW, &c), UNAUTH);
    snprintf(buf, sizeof buf, "%s", good);
    buf[dot1 - good + 2] = '\0';
    ASSERT_EQ(vfy_len(keys, buf, strlen(good), NOW, &c), UNAUTH);
    /* one base64 character too many (length 1 mod 4) */
    snprintf(buf, sizeof buf, "%.*sA%s", (int)(dot1 - good), good, dot1);
    ASSERT_EQ(vfy(keys, buf, NOW, &c), UNAUTH);
    /* non-canonical trailing bits in the signature (the same bytes otherwise) */
    {
        size_t n = strlen(good);
        char last = good[n - 1];
        snprintf(buf, sizeof buf, "%s", good);
        /* 64 bytes -> 86 chars, the last carrying 2 bits and 4 zero bits */
        buf[n - 1] = (char)(last == 'A' ? 'B' : last + 1);
        ASSERT_EQ(vfy(keys, buf, NOW, &c), UNAUTH);
    }
    /* header and payload that are not JSON */
    ASSERT_EQ(vfy(keys, craft_ed("not json", claims_at(NOW + 60)), NOW, &c), UNAUTH);
    ASSERT_EQ(vfy(keys, craft_ed(ED_HDR, "not json"), NOW, &c), UNAUTH);
    ASSERT_EQ(vfy(keys, craft_ed("", claims_at(NOW + 60)), NOW, &c), UNAUTH);
    /* a JSON nesting bomb in the header */
    {
        char bomb[6000];
        memset(bomb, '[', sizeof bomb - 1);
        bomb[sizeof bomb - 1] = '\0';
        ASSERT_EQ(vfy(keys, craft_ed(bomb, claims_at(NOW + 60)), NOW, &c), UNAUTH);
    }
    /* garbage */
    ASSERT_EQ(vfy(keys, "a.b.c", NOW, &c), UNAUTH);
    ASSERT_EQ(vfy(keys, "\xff\xfe.\x01.\x80", NOW, &c), UNAUTH);
    ASSERT_EQ(vfy(keys, "Bearer x.y.z", NOW, &c), UNAUTH);
    /* no keys at all */
    {
        fl_jwt_keys_t *empty = fl_jwt_keys_new();
        ASSERT_TRUE(empty);
        ASSERT_EQ(vfy(empty, good, NOW, &c), UNAUTH);
        fl_jwt_keys_free(empty);
    }
    /* NULL arguments */
    ASSERT_EQ(fl_jwt_verify(NULL, good, strlen(good), NOW, &c, NULL, 0), UNAUTH);
    ASSERT_EQ(fl_jwt_verify(keys, NULL, 5, NOW, &c, NULL, 0), UNAUTH);
    free(good);
    fl_jwt_keys_free(keys);
}

static void test_size_limit(void)
{
    fl_jwt_keys_t *keys = keyset();
    fl_claims_t c;
    char *pay, *tok = NULL, *big;
    size_t pad;
    ASSERT_TRUE(keys);
    pay = malloc(16384);
    big = malloc(FL_JWT_MAX_TOKEN + 2);
    ASSERT_TRUE(pay && big);
    /* find the largest padding whose token fits, then one more byte */
    for (pad = 5900; pad < 6200; pad++) {
        snprintf(pay, 16384, "{\"sub\":\"a\",\"exp\":1700000100,\"pad\":\"%0*d\"}", (int)pad, 0);
        if (fl_jwt_mint_ed25519(ed_sk, "ed1", pay, &tok, errstr, sizeof errstr) != 0)
            break;
        if (strlen(tok) > FL_JWT_MAX_TOKEN - 3) {
            ASSERT_EQ(vfy(keys, tok, NOW, &c), 0); /* a token of ~8 KiB is fine */
        }
        free(tok);
        tok = NULL;
    }
    ASSERT_TRUE(pad < 6200);
    ASSERT_TRUE(strstr(errstr, "longer") != NULL);
    /* the same oversize token crafted by hand is refused before any decoding */
    {
        const char *t = craft_ed(ED_HDR, pay);
        ASSERT_GT(strlen(t), FL_JWT_MAX_TOKEN);
        ASSERT_EQ(vfy(keys, t, NOW, &c), UNAUTH);
        ASSERT_TRUE(strstr(errstr, "longer") != NULL);
    }
    memset(big, 'A', FL_JWT_MAX_TOKEN + 1);
    big[FL_JWT_MAX_TOKEN + 1] = '\0';
    big[10] = big[20] = '.';
    ASSERT_EQ(vfy(keys, big, NOW, &c), UNAUTH);
    free(pay);
    free(big);
    fl_jwt_keys_free(keys);
}

static void test_permissions(void)
{
    fl_jwt_keys_t *keys = keyset();
    fl_claims_t c;
    char doc[300];
    ASSERT_TRUE(keys);
    ASSERT_EQ(claims_rc(keys, "{\"sub\":\"a\",\"exp\":1700000100,\"read\":[\"acme/\"],"
                              "\"write\":[\"acme/board-1\",\"beta/\"]}"),
              0);
    ASSERT_EQ(vfy(keys,
                  craft_ed(ED_HDR, "{\"sub\":\"a\",\"exp\":1700000100,\"read\":[\"acme/\"],"
                                   "\"write\":[\"acme/board-1\",\"beta/\"]}"),
                  NOW, &c),
              0);
#define R(d) fl_claims_can_read(&c, d, strlen(d))
#define W(d) fl_claims_can_write(&c, d, strlen(d))
    ASSERT_TRUE(R("acme/x"));
    ASSERT_TRUE(!W("acme/x"));
    ASSERT_TRUE(W("acme/board-1"));
    ASSERT_TRUE(W("acme/board-10")); /* a prefix, not a name */
    ASSERT_TRUE(W("acme/board-1/sub"));
    ASSERT_TRUE(R("acme/board-1"));
    ASSERT_TRUE(R("beta/doc")); /* write implies read */
    ASSERT_TRUE(W("beta/doc"));
    ASSERT_TRUE(!R("acmecorp/x"));
    ASSERT_TRUE(!R("acme"));  /* shorter than the prefix */
    ASSERT_TRUE(!R("xacme/y")); /* a prefix matches from the start */
    ASSERT_TRUE(!R("ACME/x"));  /* exact bytes */
    ASSERT_TRUE(!R("acme\\/x"));
    ASSERT_TRUE(!W("acme/board-"));
    ASSERT_TRUE(!R("gamma/doc"));
    ASSERT_TRUE(!R(""));
    ASSERT_TRUE(!fl_claims_can_read(&c, "acme/\xff", 6)); /* not UTF-8 */
    ASSERT_TRUE(fl_claims_can_read(&c, "acme/\0x", 7));   /* ids are slices */
    memset(doc, 'z', sizeof doc);
    memcpy(doc, "acme/", 5);
    ASSERT_TRUE(fl_claims_can_read(&c, doc, 255));
    ASSERT_TRUE(!fl_claims_can_read(&c, doc, 256));
    ASSERT_TRUE(!fl_claims_can_read(NULL, "acme/x", 6));
    ASSERT_TRUE(!fl_claims_can_read(&c, NULL, 6));

    /* "*" in read grants reading everything and writing nothing */
    ASSERT_EQ(vfy(keys, craft_ed(ED_HDR, "{\"sub\":\"a\",\"exp\":1700000100,\"read\":[\"*\"]}"), NOW,
                  &c),
              0);
    ASSERT_TRUE(R("acme/x"));
    ASSERT_TRUE(R("zzz"));
    ASSERT_TRUE(!W("acme/x"));
    /* "*" in write grants both */
    ASSERT_EQ(vfy(keys, craft_ed(ED_HDR, "{\"sub\":\"a\",\"exp\":1700000100,\"write\":[\"*\"]}"),
                  NOW, &c),
              0);
    ASSERT_TRUE(R("any/doc"));
    ASSERT_TRUE(W("any/doc"));
    /* "*" only as the whole prefix: "acme/" followed by a star is literal */
    ASSERT_EQ(vfy(keys,
                  craft_ed(ED_HDR, "{\"sub\":\"a\",\"exp\":1700000100,\"write\":[\"acme/*\"]}"),
                  NOW, &c),
              0);
    ASSERT_TRUE(!R("acme/x"));
    ASSERT_TRUE(W("acme/*x"));
    /* no prefixes: nothing */
    ASSERT_EQ(vfy(keys, craft_ed(ED_HDR, "{\"sub\":\"a\",\"exp\":1700000100}"), NOW, &c), 0);
    ASSERT_TRUE(!R("acme/x"));
    ASSERT_TRUE(!W("acme/x"));
    /* non-ASCII prefixes compare bytewise */
    ASSERT_EQ(vfy(keys,
                  craft_ed(ED_HDR, "{\"sub\":\"a\",\"exp\":1700000100,\"read\":[\"caf\xc3\xa9/\"]}"),
                  NOW, &c),
              0);
    ASSERT_TRUE(R("caf\xc3\xa9/menu"));
    ASSERT_TRUE(!R("cafe\xcc\x81/menu")); /* no Unicode normalisation */
#undef R
#undef W
    fl_jwt_keys_free(keys);
}

static void test_keyset_api(void)
{
    fl_jwt_keys_t *keys = fl_jwt_keys_new();
    uint8_t secret[FL_JWT_HS256_MAX_SECRET + 1] = {0};
    ASSERT_TRUE(keys);
    ASSERT_EQ(fl_jwt_keys_add_hs256(keys, NULL, secret, 31), -EINVAL);
    ASSERT_EQ(fl_jwt_keys_add_hs256(keys, NULL, secret, FL_JWT_HS256_MAX_SECRET + 1), -EINVAL);
    ASSERT_EQ(fl_jwt_keys_add_hs256(keys, NULL, secret, FL_JWT_HS256_MAX_SECRET), 0);
    ASSERT_EQ(fl_jwt_keys_add_hs256(keys, "k", secret, 32), 0);
    ASSERT_EQ(fl_jwt_keys_add_hs256(keys, "k", secret, 32), -EEXIST);
    ASSERT_EQ(fl_jwt_keys_add_ed25519_public(keys, "k", ed_pk), -EEXIST);
    ASSERT_EQ(fl_jwt_keys_add_ed25519_public(keys, "", ed_pk), -EINVAL);
    ASSERT_EQ(fl_jwt_keys_add_ed25519_public(keys, "a\nb", ed_pk), -EINVAL);
    ASSERT_EQ(fl_jwt_keys_add_ed25519_public(keys, "\xff", ed_pk), -EINVAL);
    ASSERT_EQ(fl_jwt_keys_add_ed25519_public(NULL, "x", ed_pk), -EINVAL);
    for (int i = 0; i < 20; i++) {
        char kid[16];
        snprintf(kid, sizeof kid, "e%d", i);
        ASSERT_EQ(fl_jwt_keys_add_ed25519_public(keys, kid, i == 13 ? ed_pk : ed2_pk), 0);
    }
    ASSERT_EQ(fl_jwt_keys_count(keys), 22);
    {
        fl_claims_t c;
        char *tok = NULL;
        ASSERT_EQ(fl_jwt_mint_ed25519(ed_sk, "e13", claims_at(NOW + 9), &tok, errstr,
                                      sizeof errstr),
                  0);
        ASSERT_EQ(vfy(keys, tok, NOW, &c), 0);
        free(tok);
        ASSERT_EQ(fl_jwt_mint_ed25519(ed_sk, "e12", claims_at(NOW + 9), &tok, errstr,
                                      sizeof errstr),
                  0);
        ASSERT_EQ(vfy(keys, tok, NOW, &c), UNAUTH);
        free(tok);
        /* without kid all 20 EdDSA keys are tried */
        ASSERT_EQ(fl_jwt_mint_ed25519(ed_sk, NULL, claims_at(NOW + 9), &tok, errstr,
                                      sizeof errstr),
                  0);
        ASSERT_EQ(vfy(keys, tok, NOW, &c), 0);
        free(tok);
    }
    /* minting input checks */
    {
        char *tok = (char *)1;
        ASSERT_EQ(fl_jwt_mint_ed25519(ed_sk, NULL, "[1]", &tok, errstr, sizeof errstr), -EINVAL);
        ASSERT_TRUE(tok == NULL);
        ASSERT_EQ(fl_jwt_mint_ed25519(ed_sk, NULL, "{\"a\":1,\"a\":2}", &tok, errstr,
                                      sizeof errstr),
                  -EINVAL);
        ASSERT_EQ(fl_jwt_mint_ed25519(ed_sk, "bad\tkid", "{}", &tok, errstr, sizeof errstr),
                  -EINVAL);
    }
    fl_jwt_keys_free(keys);
    fl_jwt_keys_free(NULL);
}

static void test_keyfiles(void)
{
    fl_jwt_keyfile_t *kf = NULL, *back = NULL, *pub = NULL;
    char *text = sodium_malloc(1024);
    fl_jwt_keys_t *keys = fl_jwt_keys_new();
    fl_claims_t c;
    char *tok = NULL;
    long n;
    ASSERT_TRUE(text && keys);

    /* ed25519: secret form round trip, public form, verify with either */
    ASSERT_EQ(fl_jwt_keyfile_generate(FL_JWT_EDDSA, "k1", &kf, errstr, sizeof errstr), 0);
    n = fl_jwt_keyfile_format(kf, true, text, 1024);
    ASSERT_GT(n, 0);
    ASSERT_TRUE(strstr(text, "type=ed25519\n") && strstr(text, "kid=k1\n") &&
                strstr(text, "secret=") && strstr(text, "public="));
    ASSERT_EQ(fl_jwt_keyfile_parse(text, (size_t)n, &back, errstr, sizeof errstr), 0);
    ASSERT_EQ(back->alg, FL_JWT_EDDSA);
    ASSERT_STR_EQ(back->kid, "k1");
    ASSERT_MEM_EQ(back->secret, back->secret_len, kf->secret, kf->secret_len);
    ASSERT_MEM_EQ(back->public_key, 32, kf->public_key, 32);
    n = fl_jwt_keyfile_format(kf, false, text, 1024);
    ASSERT_GT(n, 0);
    ASSERT_TRUE(strstr(text, "secret=") == NULL);
    ASSERT_EQ(fl_jwt_keyfile_parse(text, (size_t)n, &pub, errstr, sizeof errstr), 0);
    ASSERT_TRUE(pub->secret == NULL && pub->has_public);
    ASSERT_EQ(fl_jwt_keys_add_keyfile(keys, pub, errstr, sizeof errstr), 0);
    ASSERT_EQ(fl_jwt_mint_keyfile(pub, claims_at(NOW + 5), &tok, errstr, sizeof errstr), -EINVAL);
    ASSERT_EQ(fl_jwt_mint_keyfile(back, claims_at(NOW + 5), &tok, errstr, sizeof errstr), 0);
    ASSERT_EQ(vfy(keys, tok, NOW, &c), 0);
    free(tok);
    ASSERT_EQ(fl_jwt_keys_add_keyfile(keys, back, errstr, sizeof errstr), -EEXIST);
    ASSERT_EQ(fl_jwt_keyfile_format(kf, true, text, 100), -ENOSPC);
    fl_jwt_keyfile_free(back);
    fl_jwt_keyfile_free(pub);
    back = pub = NULL;

    /* hs256: no public form */
    fl_jwt_keyfile_free(kf);
    ASSERT_EQ(fl_jwt_keyfile_generate(FL_JWT_HS256, NULL, &kf, errstr, sizeof errstr), 0);
    ASSERT_EQ(kf->secret_len, 32);
    ASSERT_EQ(fl_jwt_keyfile_format(kf, false, text, 1024), -EINVAL);
    n = fl_jwt_keyfile_format(kf, true, text, 1024);
    ASSERT_GT(n, 0);
    ASSERT_TRUE(strstr(text, "kid=") == NULL);
    ASSERT_EQ(fl_jwt_keyfile_parse(text, (size_t)n, &back, errstr, sizeof errstr), 0);
    ASSERT_EQ(fl_jwt_keys_add_keyfile(keys, back, errstr, sizeof errstr), 0);
    ASSERT_EQ(fl_jwt_mint_keyfile(kf, claims_at(NOW + 5), &tok, errstr, sizeof errstr), 0);
    ASSERT_EQ(vfy(keys, tok, NOW, &c), 0);
    free(tok);
    fl_jwt_keyfile_free(back);
    back = NULL;

    /* tolerated: comments, blank lines, CRLF, spaces around = */
    {
        const char *t = "# c\r\n\r\n  type = hs256\r\nsecret = "
                        "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8\r\n";
        ASSERT_EQ(fl_jwt_keyfile_parse(t, strlen(t), &back, errstr, sizeof errstr), 0);
        ASSERT_EQ(back->secret_len, 32);
        ASSERT_EQ(back->secret[31], 31);
        fl_jwt_keyfile_free(back);
        back = NULL;
    }
    /* rejected, with a reason that never quotes the secret */
    {
        static const char *const bad[] = {
            "",
            "secret=AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8\n",
            "type=rsa\n",
            "type=hs256\n",
            "type=hs256\nsecret=AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHg\n", /* 31 bytes */
            "type=hs256\nsecret=AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=\n",
            "type=hs256\nsecret=AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8\ntype=hs256\n",
            "type=hs256\nsecret=AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8\nsecrett=x\n",
            ("type=hs256\nsecret=AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8\npublic="
             "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8\n"),
            "type=hs256\nsecret=AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8\nkid=\n",
            "type=hs256\nsecret AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8\n",
            "type=ed25519\n",
            "type=ed25519\npublic=AAEC\n",
            "type=ed25519\nsecret=AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8\n",
        };
        for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
            errstr[0] = '\0';
            back = (fl_jwt_keyfile_t *)1;
            ASSERT_EQ(fl_jwt_keyfile_parse(bad[i], strlen(bad[i]), &back, errstr, sizeof errstr),
                      -EINVAL);
            ASSERT_TRUE(back == NULL);
            ASSERT_TRUE(errstr[0] != '\0');
            ASSERT_TRUE(strstr(errstr, "AAEC") == NULL);
        }
    }
    /* an ed25519 file whose public line belongs to another key */
    fl_jwt_keyfile_free(kf);
    ASSERT_EQ(fl_jwt_keyfile_generate(FL_JWT_EDDSA, NULL, &kf, errstr, sizeof errstr), 0);
    n = fl_jwt_keyfile_format(kf, true, text, 1024);
    ASSERT_GT(n, 0);
    {
        char *p = strstr(text, "public=") + 7;
        *p = *p == 'A' ? 'B' : 'A';
        ASSERT_EQ(fl_jwt_keyfile_parse(text, (size_t)n, &back, errstr, sizeof errstr), -EINVAL);
        ASSERT_TRUE(strstr(errstr, "match") != NULL);
    }
    /* a corrupted secret (seed and public half disagree) */
    fl_jwt_keyfile_format(kf, true, text, 1024);
    {
        char *p = strstr(text, "secret=") + 7;
        *p = *p == 'A' ? 'B' : 'A';
        ASSERT_EQ(fl_jwt_keyfile_parse(text, (size_t)n, &back, errstr, sizeof errstr), -EINVAL);
    }
    ASSERT_EQ(fl_jwt_keyfile_generate(FL_JWT_EDDSA, "bad\nkid", &back, errstr, sizeof errstr),
              -EINVAL);
    ASSERT_EQ(fl_jwt_keyfile_generate((fl_jwt_alg_t)7, NULL, &back, errstr, sizeof errstr),
              -EINVAL);
    ASSERT_EQ(fl_jwt_keyfile_read("/nonexistent/key", &back, errstr, sizeof errstr), -ENOENT);
    ASSERT_EQ(fl_jwt_keyfile_read("/", &back, errstr, sizeof errstr), -EINVAL);
    ASSERT_EQ(fl_jwt_keys_load_list(keys, "", errstr, sizeof errstr), -EINVAL);
    ASSERT_EQ(fl_jwt_keys_load_list(keys, " , ", errstr, sizeof errstr), -EINVAL);
    fl_jwt_keyfile_free(kf);
    fl_jwt_keyfile_free(NULL);
    sodium_free(text);
    fl_jwt_keys_free(keys);
}

/* ---- the CLI ---------------------------------------------------------------- */

static char tmpdir[256];

static int sh(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int sh(const char *fmt, ...)
{
    char cmd[4096];
    va_list ap;
    int st;
    va_start(ap, fmt);
    vsnprintf(cmd, sizeof cmd, fmt, ap);
    va_end(ap);
    st = system(cmd);
    return st == -1 ? -1 : WIFEXITED(st) ? WEXITSTATUS(st) : 128;
}

static const char *cli(void)
{
    static char path[1024];
    const char *bin = getenv("FL_BINARY_DIR");
    snprintf(path, sizeof path, "%s/bin/flushline", bin ? bin : ".");
    return path;
}

static char *read_token(const char *path)
{
    size_t len;
    char *t = fl_test_read_file(path, &len);
    while (t && len > 0 && (t[len - 1] == '\n' || t[len - 1] == '\r'))
        t[--len] = '\0';
    return t;
}

static void test_cli_mint(void)
{
    const char *bin = cli();
    fl_jwt_keys_t *keys = fl_jwt_keys_new();
    fl_claims_t c;
    struct stat st;
    char path[512], list[1200];
    char *tok;
    int64_t now = (int64_t)time(NULL);
    ASSERT_TRUE(keys);
    ASSERT_TRUE(access(bin, X_OK) == 0);
    snprintf(tmpdir, sizeof tmpdir, "/tmp/fl_test_jwt.XXXXXX");
    ASSERT_TRUE(mkdtemp(tmpdir) != NULL);

    ASSERT_EQ(sh("%s token --help >/dev/null", bin), 0);
    ASSERT_EQ(sh("%s token keygen --help >/dev/null", bin), 0);
    ASSERT_EQ(sh("%s token mint --help >/dev/null", bin), 0);
    ASSERT_EQ(sh("%s token >/dev/null 2>&1", bin), 2);
    ASSERT_EQ(sh("%s token keygen --type rsa --out %s/x 2>/dev/null", bin, tmpdir), 2);
    ASSERT_EQ(sh("%s token keygen --type ed25519 2>/dev/null", bin), 2);

    /* ed25519 */
    ASSERT_EQ(sh("%s token keygen --type ed25519 --kid cli1 --out %s/ed.key >/dev/null", bin,
                 tmpdir),
              0);
    snprintf(path, sizeof path, "%s/ed.key", tmpdir);
    ASSERT_EQ(stat(path, &st), 0);
    ASSERT_EQ(st.st_mode & 0777, 0600);
    /* refuses to overwrite */
    ASSERT_EQ(sh("%s token keygen --type ed25519 --out %s/ed.key 2>/dev/null", bin, tmpdir), 1);
    snprintf(path, sizeof path, "%s/ed.key.pub", tmpdir);
    ASSERT_EQ(stat(path, &st), 0);
    ASSERT_EQ(fl_jwt_keys_load_file(keys, path, errstr, sizeof errstr), 0);
    ASSERT_EQ(sh("%s token mint --key %s/ed.key --sub alice --read acme/ --read beta/ "
                 "--write acme/board-1 --ttl 2h > %s/ed.tok",
                 bin, tmpdir, tmpdir),
              0);
    snprintf(path, sizeof path, "%s/ed.tok", tmpdir);
    tok = read_token(path);
    ASSERT_TRUE(tok);
    ASSERT_EQ(vfy(keys, tok, now, &c), 0);
    ASSERT_STR_EQ(c.sub, "alice");
    ASSERT_TRUE(c.exp >= now + 7200 - 5 && c.exp <= now + 7200 + 5);
    ASSERT_TRUE(c.iat >= now - 5 && c.iat <= now + 5);
    ASSERT_EQ(c.nread, 2);
    ASSERT_STR_EQ(c.read[1], "beta/");
    ASSERT_EQ(c.nwrite, 1);
    ASSERT_TRUE(fl_claims_can_write(&c, "acme/board-1", 12));
    ASSERT_TRUE(!fl_claims_can_write(&c, "acme/board-2", 12));
    ASSERT_TRUE(fl_claims_can_read(&c, "beta/x", 6));
    /* two hours and a bit later it is expired */
    ASSERT_EQ(vfy(keys, tok, now + 7200 + 60, &c), EXPIRED);
    free(tok);

    /* nbf in the future, explicit --now */
    ASSERT_EQ(sh("%s token mint --key %s/ed.key --sub bob --write '*' --ttl 90m --nbf-in 10m "
                 "--now 1700000000 > %s/ed2.tok",
                 bin, tmpdir, tmpdir),
              0);
    snprintf(path, sizeof path, "%s/ed2.tok", tmpdir);
    tok = read_token(path);
    ASSERT_TRUE(tok);
    ASSERT_EQ(vfy(keys, tok, NOW, &c), UNAUTH);
    ASSERT_EQ(vfy(keys, tok, NOW + 600, &c), 0);
    ASSERT_EQ(c.nbf, NOW + 600);
    ASSERT_EQ(c.exp, NOW + 5400);
    ASSERT_EQ(c.iat, NOW);
    ASSERT_TRUE(fl_claims_can_write(&c, "x/y", 3));
    free(tok);

    /* hs256, loaded together with the ed25519 .pub through a list */
    ASSERT_EQ(sh("%s token keygen --type hs256 --out %s/hs.key >/dev/null", bin, tmpdir), 0);
    snprintf(path, sizeof path, "%s/hs.key", tmpdir);
    ASSERT_EQ(stat(path, &st), 0);
    ASSERT_EQ(st.st_mode & 0777, 0600);
    snprintf(path, sizeof path, "%s/hs.key.pub", tmpdir);
    ASSERT_TRUE(stat(path, &st) != 0); /* no public form for a shared secret */
    ASSERT_EQ(sh("%s token mint --key %s/hs.key --sub carol --read acme/ > %s/hs.tok", bin,
                 tmpdir, tmpdir),
              0);
    snprintf(path, sizeof path, "%s/hs.tok", tmpdir);
    tok = read_token(path);
    ASSERT_TRUE(tok);
    fl_jwt_keys_free(keys);
    keys = fl_jwt_keys_new();
    ASSERT_TRUE(keys);
    snprintf(list, sizeof list, "%s/ed.key.pub, %s/hs.key", tmpdir, tmpdir);
    ASSERT_EQ(fl_jwt_keys_load_list(keys, list, errstr, sizeof errstr), 0);
    ASSERT_EQ(fl_jwt_keys_count(keys), 2);
    ASSERT_EQ(vfy(keys, tok, now, &c), 0);
    ASSERT_STR_EQ(c.sub, "carol");
    ASSERT_TRUE(c.exp >= now + 3600 - 5 && c.exp <= now + 3600 + 5); /* default ttl 1h */
    free(tok);

    /* token verify prints the claims and agrees with the library */
    ASSERT_EQ(sh("%s token verify --keys %s/ed.key.pub,%s/hs.key \"$(cat %s/hs.tok)\" "
                 ">/dev/null",
                 bin, tmpdir, tmpdir, tmpdir),
              0);
    ASSERT_EQ(sh("%s token verify --keys %s/ed.key.pub \"$(cat %s/hs.tok)\" 2>/dev/null", bin,
                 tmpdir, tmpdir),
              1);

    /* mint errors */
    ASSERT_EQ(sh("%s token mint --key %s/ed.key.pub --sub a 2>/dev/null", bin, tmpdir), 1);
    ASSERT_EQ(sh("%s token mint --key %s/ed.key 2>/dev/null", bin, tmpdir), 2);
    ASSERT_EQ(sh("%s token mint --key %s/ed.key --sub a --ttl 1y 2>/dev/null", bin, tmpdir), 2);
    ASSERT_EQ(sh("%s token mint --key %s/nope --sub a 2>/dev/null", bin, tmpdir), 1);
    ASSERT_EQ(sh("%s token mint --key %s/ed.key --sub '' 2>/dev/null", bin, tmpdir), 2);

    ASSERT_EQ(sh("rm -rf %s", tmpdir), 0);
    fl_jwt_keys_free(keys);
}

int main(void)
{
    if (sodium_init() < 0)
        return 1;
    setup_keys();
    RUN(test_roundtrip_eddsa);
    RUN(test_roundtrip_hs256);
    RUN(test_alg_none);
    RUN(test_alg_confusion);
    RUN(test_bad_signature);
    RUN(test_wrong_kid);
    RUN(test_header_rules);
    RUN(test_expiry);
    RUN(test_not_before);
    RUN(test_claim_types);
    RUN(test_prefix_limits);
    RUN(test_malformed);
    RUN(test_size_limit);
    RUN(test_permissions);
    RUN(test_keyset_api);
    RUN(test_keyfiles);
    RUN(test_cli_mint);
    return fl_test_done();
}
