/* SPDX-License-Identifier: Apache-2.0 */
/*
 * jwt: the gateway's token checks. Verifies JSON Web Tokens (RFC 7519, JWS
 * compact form) signed EdDSA/Ed25519 or HS256 against a set of keys, reads
 * the Flushline claims (sub, exp, nbf, iat, read and write document-id
 * prefixes) and answers "may this user read / write this document". Also
 * mints tokens and reads, writes (as text) and generates key files, for the
 * `flushline token` CLI and for tests. The claims and key file formats are
 * documented in docs/auth.md.
 *
 * Pure: no clock (callers pass `now` in Unix seconds), no logging, no I/O
 * (reading key files from disk is flushline/keyfile.h, in the process
 * shell). Secrets (HS256 secrets, Ed25519 secret keys, key
 * file text) live in sodium_malloc memory and never appear in an errstr;
 * an errstr from fl_jwt_verify never echoes any part of the token.
 *
 * @locality any thread. A key set is built once (add/load, not thread-safe)
 * and is then read-only: any number of threads may call fl_jwt_verify on it
 * at the same time.
 */
#ifndef FLUSHLINE_JWT_H
#define FLUSHLINE_JWT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define FL_JWT_MAX_TOKEN 8192       /* bytes of the compact token */
#define FL_JWT_MAX_PREFIXES 32      /* entries in each of read and write */
#define FL_JWT_MAX_ROLE 64          /* bytes of the role claim */
#define FL_JWT_MAX_STR 255          /* bytes of sub, of each prefix, of a kid */
#define FL_JWT_DEFAULT_LEEWAY 30    /* seconds of clock skew allowed on exp and nbf */
#define FL_JWT_MAX_LEEWAY 3600
#define FL_JWT_HS256_MIN_SECRET 32  /* bytes */
#define FL_JWT_HS256_MAX_SECRET 1024
#define FL_JWT_ED25519_PK_BYTES 32
#define FL_JWT_ED25519_SK_BYTES 64  /* libsodium form: 32-byte seed then the public key */
#define FL_JWT_KEYFILE_MAX (64 * 1024) /* bytes of a key file's text */

typedef enum fl_jwt_alg_e {
    FL_JWT_EDDSA = 1, /* "EdDSA" with an Ed25519 key (RFC 8037) */
    FL_JWT_HS256 = 2, /* "HS256": HMAC-SHA-256 with a shared secret */
} fl_jwt_alg_t;

/* "EdDSA", "HS256" or "unknown". */
const char *fl_jwt_alg_name(fl_jwt_alg_t alg);

/* ---- verification keys ---------------------------------------------------
 * Any number of Ed25519 public keys and HS256 secrets, each with an optional
 * kid (1-255 bytes of UTF-8, no control characters). A kid is unique within
 * a set. A key only ever verifies tokens of its own alg, so an HS256 token
 * can never be checked against an Ed25519 public key (no alg confusion).
 *
 * Functions returning int give 0 or a negative errno value: -EINVAL (bad
 * argument, bad key file), -EEXIST (kid already in the set), -ENOMEM, or the
 * open/read errno of a key file; those taking errstr fill it on failure. */
typedef struct fl_jwt_keys_s fl_jwt_keys_t;

/* A new empty set (leeway FL_JWT_DEFAULT_LEEWAY), or NULL (out of memory or
 * libsodium failed to initialise). */
fl_jwt_keys_t *fl_jwt_keys_new(void);
/* Frees the set and wipes its secrets. NULL is safe. */
void fl_jwt_keys_free(fl_jwt_keys_t *keys);
/* Adds an Ed25519 public key (verifies alg EdDSA). kid may be NULL. */
int fl_jwt_keys_add_ed25519_public(fl_jwt_keys_t *keys, const char *kid, const uint8_t pk[32]);
/* Adds an HS256 secret of FL_JWT_HS256_MIN_SECRET..FL_JWT_HS256_MAX_SECRET
 * bytes; the set keeps its own copy in sodium_malloc memory (the caller
 * still owns and should wipe `secret`). kid may be NULL. */
int fl_jwt_keys_add_hs256(fl_jwt_keys_t *keys, const char *kid, const uint8_t *secret, size_t len);
/* Seconds of clock skew tolerated on exp and nbf, 0..FL_JWT_MAX_LEEWAY. */
int fl_jwt_keys_set_leeway(fl_jwt_keys_t *keys, int64_t seconds);
/* Number of keys in the set. */
size_t fl_jwt_keys_count(const fl_jwt_keys_t *keys);

/* ---- claims -------------------------------------------------------------- */
typedef struct fl_claims_s {
    char sub[FL_JWT_MAX_STR + 1]; /* the user id stamped into every record; NUL-terminated */
    /* The role for rule sets (docs/auth.md), 1-64 bytes of UTF-8, or ""
     * when the token has no role claim (the rule set's default role). */
    char role[FL_JWT_MAX_ROLE + 1];
    int64_t exp;                  /* Unix seconds; required */
    int64_t nbf, iat;             /* Unix seconds; 0 when absent */
    uint32_t nread, nwrite;
    /* Document-id prefixes, NUL-terminated, 1-255 bytes each; "*" = all. */
    char read[FL_JWT_MAX_PREFIXES][FL_JWT_MAX_STR + 1];  /* may read (subscribe, fetch) */
    char write[FL_JWT_MAX_PREFIXES][FL_JWT_MAX_STR + 1]; /* may write; write implies read */
} fl_claims_t;

/*
 * Verifies the compact token (token, len) (need not be NUL-terminated) with
 * `keys` at time `now` and fills *out with its claims.
 *
 * Checks, in order: size (<= FL_JWT_MAX_TOKEN) and shape (three base64url
 * segments without padding, canonical); the header (a JSON object, no
 * duplicate keys; alg "EdDSA" or "HS256", "none" and everything else
 * rejected; typ "JWT" or absent; kid, when present, selects the one key
 * with that kid, else every key of the alg is tried; "crit" rejected); the
 * signature (crypto_sign_verify_detached, or HMAC-SHA-256 compared in
 * constant time); then the claims (fl_jwt_claims_parse) and the times:
 * exp > now - leeway and, when present, nbf <= now + leeway.
 *
 * Returns 0, -FL_CODE_TOKEN_EXPIRED (authentic but expired), or
 * -FL_CODE_UNAUTHORIZED (anything else: malformed, bad signature, unknown alg
 * or kid, bad claims, not yet valid). On failure *out is zeroed and errstr
 * holds a short reason that never quotes the token.
 */
int fl_jwt_verify(const fl_jwt_keys_t *keys, const char *token, size_t len, int64_t now,
                  fl_claims_t *out, char *errstr, size_t errstr_size);

/*
 * Reads and checks a claims set (the decoded JSON payload, len bytes) into
 * *out, without any signature or time check: an object without duplicate
 * keys; sub a string of 1-255 bytes of UTF-8; exp required, nbf and iat
 * optional, each an integer (or a number, floored) in 0..253402300799; read
 * and write, when present, arrays of at most 32 strings of 1-255 bytes of
 * UTF-8; role, when present, a string of 1-64 bytes of UTF-8. Other claims
 * are ignored. Returns 0 or -FL_CODE_UNAUTHORIZED.
 */
int fl_jwt_claims_parse(const char *json, size_t len, fl_claims_t *out, char *errstr,
                        size_t errstr_size);

/* Whether the claims grant reading / writing the document id (doc, len):
 * some prefix is "*" or equals the first bytes of doc (bytewise, no
 * normalisation). Write prefixes also grant reading. A doc id that is empty,
 * longer than 255 bytes or not UTF-8 is never granted. */
bool fl_claims_can_read(const fl_claims_t *claims, const char *doc, size_t len);
bool fl_claims_can_write(const fl_claims_t *claims, const char *doc, size_t len);

/* ---- minting ---------------------------------------------------------------
 * Signs the claims (a NUL-terminated JSON object, no duplicate keys; it is
 * re-serialised compactly but its claims are not checked, so tests can mint
 * bad ones) with header {"alg":...,"typ":"JWT"[,"kid":kid]}. kid may be NULL.
 * *out is a NUL-terminated token the caller frees with free(). Returns 0 or
 * -EINVAL / -ENOMEM with errstr filled. */
int fl_jwt_mint_ed25519(const uint8_t sk[64], const char *kid, const char *claims_json,
                        char **out, char *errstr, size_t errstr_size);
int fl_jwt_mint_hs256(const uint8_t *secret, size_t len, const char *kid,
                      const char *claims_json, char **out, char *errstr, size_t errstr_size);

/* A kid this library accepts: 1-255 bytes of UTF-8 without control
 * characters (it is written on one line of a key file). */
bool fl_jwt_kid_valid(const char *kid, size_t len);
/* What minting and key generation check first: libsodium initialises and
 * kid (NULL: none) is valid. 0, or -EINVAL with errstr filled. */
int fl_jwt_check_kid(const char *kid, char *errstr, size_t errstr_size);

/* ---- key files -------------------------------------------------------------
 * The text format written by `flushline token keygen` (docs/auth.md): lines
 * "name=value" (type, kid, secret, public), values base64url without padding,
 * '#' comments. A parsed key file is a plain record; its secret is in
 * sodium_malloc memory. */
typedef struct fl_jwt_keyfile_s {
    fl_jwt_alg_t alg;
    char kid[FL_JWT_MAX_STR + 1]; /* "" when the file has none */
    bool has_public;              /* EdDSA: public_key is set (always, once parsed) */
    uint8_t public_key[FL_JWT_ED25519_PK_BYTES];
    uint8_t *secret;   /* sodium_malloc; NULL for a public-only (.pub) file */
    size_t secret_len; /* FL_JWT_ED25519_SK_BYTES, or the HS256 secret's length */
} fl_jwt_keyfile_t;

/* A fresh random key: Ed25519 key pair, or a 32-byte HS256 secret. kid may
 * be NULL. *out is freed with fl_jwt_keyfile_free. */
int fl_jwt_keyfile_generate(fl_jwt_alg_t alg, const char *kid, fl_jwt_keyfile_t **out,
                            char *errstr, size_t errstr_size);
/* Parses key file text (len bytes). An Ed25519 file with both secret and
 * public must have them agree. */
int fl_jwt_keyfile_parse(const char *text, size_t len, fl_jwt_keyfile_t **out, char *errstr,
                         size_t errstr_size);
/* Writes the file text into buf (size bytes, NUL-terminated): the secret
 * form, or with with_secret false the public form (EdDSA only). Put buf in
 * sodium_malloc memory when it gets the secret. Returns the text length, or
 * -EINVAL / -ENOSPC (1024 bytes always suffice for keygen's keys). */
long fl_jwt_keyfile_format(const fl_jwt_keyfile_t *kf, bool with_secret, char *buf, size_t size);
/* Adds the file's verification key to a set: an Ed25519 secret file adds
 * its public key, a .pub file its key, an HS256 file its secret. */
int fl_jwt_keys_add_keyfile(fl_jwt_keys_t *keys, const fl_jwt_keyfile_t *kf, char *errstr,
                            size_t errstr_size);
/* Mints with the file's secret and kid; -EINVAL for a public-only file. */
int fl_jwt_mint_keyfile(const fl_jwt_keyfile_t *kf, const char *claims_json, char **out,
                        char *errstr, size_t errstr_size);
/* Wipes and frees. NULL is safe. */
void fl_jwt_keyfile_free(fl_jwt_keyfile_t *kf);

#endif
