/* SPDX-License-Identifier: Apache-2.0 */
/*
 * `flushline token keygen|mint|verify`: make signing key files, mint JWTs
 * with the Flushline claims (sub, exp, nbf, iat, read, write, role) and check a
 * token the way a gateway does. The formats live in fl_core (jwt.h) and are
 * documented in docs/auth.md. Secrets stay in sodium_malloc memory and are
 * never printed; only the public key file and the token reach stdout/disk
 * outside the 0600 key file.
 */
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli.h"
#include "flushline/clock.h"
#include "flushline/errors.h"
#include "flushline/jwt.h"
#include "flushline/keyfile.h"
#include "flushline/value.h"

#define STR_(x) #x
#define STR(x) STR_(x)

static void help(FILE *out)
{
    fprintf(out, "usage: flushline token keygen|mint|verify [OPTIONS]\n\n"
                 "  keygen  write a signing key file (and its .pub for ed25519)\n"
                 "  mint    print a signed token for a user and document prefixes\n"
                 "  verify  check a token against key files and print its claims\n\n"
                 "`flushline token SUBCOMMAND --help` for its options; formats in docs/auth.md.\n");
}

/* Token times are whole seconds. */
static int check_seconds(const void *field, char *errstr, size_t errstr_size)
{
    if (*(const int64_t *)field % 1000 != 0) {
        snprintf(errstr, errstr_size, "must be whole seconds");
        return -1;
    }
    return 0;
}

/* A string claim: 1-max bytes of UTF-8. */
static int check_utf8_claim(const void *field, int max, char *errstr, size_t errstr_size)
{
    const char *s = *(const char *const *)field;
    size_t len = strlen(s);
    if (len == 0 || len > (size_t)max || !fl_utf8_valid(s, len)) {
        snprintf(errstr, errstr_size, "takes 1-%d bytes of UTF-8", max);
        return -1;
    }
    return 0;
}

/* sub, each --read/--write prefix: 1-255 bytes of UTF-8. */
static int check_claim_str(const void *field, char *errstr, size_t errstr_size)
{
    return check_utf8_claim(field, FL_JWT_MAX_STR, errstr, errstr_size);
}

/* role: 1-64 bytes of UTF-8. */
static int check_role(const void *field, char *errstr, size_t errstr_size)
{
    return check_utf8_claim(field, FL_JWT_MAX_ROLE, errstr, errstr_size);
}

/* ---- keygen ---- */

typedef struct keygen_opts_s {
    int type; /* index into key_types */
    const char *out, *kid;
    bool force;
} keygen_opts_t;

static const char *const key_types[] = {"ed25519", "hs256", NULL};

static const fl_config_entry_t keygen_entries[] = {
    {.name = "type", .type = FL_CONFIG_ENUM, .choices = key_types,
     .offset = offsetof(keygen_opts_t, type), .flags = FL_CONFIG_REQUIRED,
     .doc = "Key type: EdDSA with Ed25519, or HMAC-SHA-256."},
    {.name = "out", .type = FL_CONFIG_STRING, .offset = offsetof(keygen_opts_t, out),
     .flags = FL_CONFIG_REQUIRED, .metavar = "PATH", .check = fl_cli_check_nonempty,
     .doc = "Where to write the key file."},
    {.name = "kid", .type = FL_CONFIG_STRING, .offset = offsetof(keygen_opts_t, kid),
     .metavar = "KID", .doc = "Key id stamped into tokens (selects the key on rotation)."},
    {.name = "force", .type = FL_CONFIG_BOOL, .def = "false",
     .offset = offsetof(keygen_opts_t, force), .flags = FL_CONFIG_SWITCH,
     .doc = "Overwrite existing files."},
};

FL_CLI_TABLE(fl_cmd_token_keygen_options, "token keygen", "--type ed25519|hs256 --out PATH",
             keygen_entries, false,
             "Writes a signing key file PATH (mode 0600). For ed25519 also writes PATH.pub, "
             "the public key alone: give that one to gateways (--jwt.keys PATH.pub) and keep "
             "PATH where tokens are minted. An hs256 key is a shared secret: the gateway "
             "needs PATH itself.");

/* ---- mint ---- */

typedef struct mint_opts_s {
    const char *key, *sub, *role;
    fl_config_list_t read, write;
    int64_t ttl_ms, nbf_in_ms, now;
} mint_opts_t;

#define M(field) offsetof(mint_opts_t, field)

static const fl_config_entry_t mint_entries[] = {
    {.name = "key", .type = FL_CONFIG_STRING, .offset = M(key), .flags = FL_CONFIG_REQUIRED,
     .metavar = "PATH", .doc = "Signing key file (the secret one from `token keygen`, not .pub)."},
    {.name = "sub", .type = FL_CONFIG_STRING, .offset = M(sub), .flags = FL_CONFIG_REQUIRED,
     .metavar = "USER", .check = check_claim_str,
     .doc = "User id, 1-255 bytes of UTF-8 (stamped into every record)."},
    {.name = "role", .type = FL_CONFIG_STRING, .offset = M(role), .metavar = "ROLE",
     .check = check_role,
     .doc = "The user's role for rule sets, 1-64 bytes of UTF-8 (default: none, the rule "
            "set's default role)."},
    {.name = "read", .type = FL_CONFIG_STRING, .offset = M(read), .flags = FL_CONFIG_LIST,
     .max = FL_JWT_MAX_PREFIXES, .metavar = "PREFIX", .check = check_claim_str,
     .doc = "Document-id prefix the user may read: \"acme/\" is tenant acme, \"acme/board-1\" "
            "one document (and any id it prefixes), \"*\" everything."},
    {.name = "write", .type = FL_CONFIG_STRING, .offset = M(write), .flags = FL_CONFIG_LIST,
     .max = FL_JWT_MAX_PREFIXES, .metavar = "PREFIX", .check = check_claim_str,
     .doc = "Document-id prefix the user may write, and so read."},
    {.name = "ttl", .type = FL_CONFIG_DURATION_S, .def = "1h", .offset = M(ttl_ms), .min = 1000,
     .max = 366 * 86400000LL, .check = check_seconds, .doc = "Lifetime from now."},
    {.name = "nbf-in", .type = FL_CONFIG_DURATION_S, .def = "0", .offset = M(nbf_in_ms),
     .min = 0, .max = 366 * 86400000LL, .check = check_seconds,
     .doc = "Not valid before now + this."},
    {.name = "now", .type = FL_CONFIG_INT, .offset = M(now), .min = 0,
     .max = INT64_C(253402300799), .metavar = "UNIX",
     .doc = "Mint as if the time were UNIX seconds (tests, pre-minting); default: the clock."},
};

FL_CLI_TABLE(fl_cmd_token_mint_options, "token mint",
             "--key PATH --sub USER [--role ROLE] [--read PREFIX]... [--write PREFIX]...",
             mint_entries, false,
             "Prints a JWT signed with the key file PATH (from `token keygen`) on stdout.");

/* ---- verify ---- */

typedef struct verify_opts_s {
    const char *keys, *token;
    int64_t now, leeway_ms;
} verify_opts_t;

static const fl_config_entry_t verify_entries[] = {
    {.name = "token", .type = FL_CONFIG_STRING, .offset = offsetof(verify_opts_t, token),
     .flags = FL_CONFIG_POSITIONAL,
     .doc = "The token; read from stdin when absent or \"-\"."},
    {.name = "keys", .type = FL_CONFIG_STRING, .offset = offsetof(verify_opts_t, keys),
     .flags = FL_CONFIG_REQUIRED, .metavar = "PATH[,PATH...]",
     .doc = "Key files, as for the gateway's --jwt.keys."},
    {.name = "now", .type = FL_CONFIG_INT, .offset = offsetof(verify_opts_t, now), .min = 0,
     .max = INT64_C(253402300799), .metavar = "UNIX",
     .doc = "Check as if the time were UNIX seconds; default: the clock."},
    {.name = "leeway", .type = FL_CONFIG_DURATION_S, .def = STR(FL_JWT_DEFAULT_LEEWAY),
     .offset = offsetof(verify_opts_t, leeway_ms), .min = 0, .max = FL_JWT_MAX_LEEWAY * 1000LL,
     .check = check_seconds, .doc = "Clock skew allowed on exp and nbf."},
};

FL_CLI_TABLE(fl_cmd_token_verify_options, "token verify", "--keys PATH[,PATH...] [TOKEN|-]",
             verify_entries, false,
             "Checks a token as a gateway does and prints its claims as JSON. Exit 1 with "
             "the reason when it is refused.");

/* Writes len bytes to path, creating it with mode (exclusive unless force). */
static int write_file(const char *path, const char *data, size_t len, mode_t mode, bool force)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_CLOEXEC | (force ? O_TRUNC : O_EXCL), mode);
    size_t off = 0;
    if (fd < 0)
        return -errno;
    /* an existing file keeps its mode under O_CREAT: set it explicitly */
    if (fchmod(fd, mode) != 0) {
        int err = -errno;
        close(fd);
        return err;
    }
    while (off < len) {
        ssize_t w = write(fd, data + off, len - off);
        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0) {
            int err = -errno;
            close(fd);
            return err;
        }
        off += (size_t)w;
    }
    if (fsync(fd) != 0 || close(fd) != 0)
        return -errno;
    return 0;
}

static int cmd_keygen(int argc, char **argv)
{
    keygen_opts_t o = {0};
    fl_config_t *cfg;
    fl_jwt_keyfile_t *kf = NULL;
    char *text = NULL, pub_path[4096], errstr[256];
    fl_jwt_alg_t alg;
    const char *type, *out;
    long n;
    int r, rc = fl_cli_options(&fl_cmd_token_keygen_options, &o, NULL, argc, argv, &cfg);

    if (rc >= 0)
        return rc;
    rc = FL_EXIT_USAGE;
    type = key_types[o.type];
    out = o.out;
    alg = o.type == 0 ? FL_JWT_EDDSA : FL_JWT_HS256;
    if ((size_t)snprintf(pub_path, sizeof pub_path, "%s.pub", out) >= sizeof pub_path) {
        fprintf(stderr, "flushline token keygen: --out path too long\n");
        goto fail;
    }
    if (fl_jwt_keyfile_generate(alg, o.kid, &kf, errstr, sizeof errstr) != 0) {
        fprintf(stderr, "flushline token keygen: %s\n", errstr);
        goto fail; /* only a bad kid gets here in practice */
    }
    rc = FL_EXIT_FAIL;
    if (!o.force && alg == FL_JWT_EDDSA && access(pub_path, F_OK) == 0) {
        fprintf(stderr, "flushline token keygen: %s exists (--force to overwrite)\n", pub_path);
        goto fail;
    }
    text = sodium_malloc(1024);
    if (!text) {
        fprintf(stderr, "flushline token keygen: out of memory\n");
        goto fail;
    }
    n = fl_jwt_keyfile_format(kf, true, text, 1024);
    if (n < 0) {
        fprintf(stderr, "flushline token keygen: cannot format the key: %s\n", strerror((int)-n));
        goto fail;
    }
    r = write_file(out, text, (size_t)n, 0600, o.force);
    if (r != 0) {
        fprintf(stderr, "flushline token keygen: %s: %s%s\n", out, strerror(-r),
                r == -EEXIST ? " (--force to overwrite)" : "");
        goto fail;
    }
    printf("wrote %s (%s signing key%s%s, mode 0600: keep it private)\n", out, type,
           kf->kid[0] ? ", kid " : "", kf->kid);
    if (alg == FL_JWT_EDDSA) {
        n = fl_jwt_keyfile_format(kf, false, text, 1024);
        r = n < 0 ? (int)n : write_file(pub_path, text, (size_t)n, 0644, o.force);
        if (r != 0) {
            fprintf(stderr, "flushline token keygen: %s: %s\n", pub_path, strerror(-r));
            unlink(out); /* nothing half-done */
            goto fail;
        }
        printf("wrote %s (public key for gateways: --jwt.keys %s)\n", pub_path, pub_path);
    } else {
        printf("an hs256 key is a shared secret: gateways need --jwt.keys %s\n", out);
    }
    rc = FL_EXIT_OK;
fail:
    sodium_free(text);
    fl_jwt_keyfile_free(kf);
    fl_config_free(cfg);
    return rc;
}

/* The --read/--write prefixes as a JSON array, with notes on the ones that
 * may not mean what was meant. NULL when out of memory. */
static json_t *prefixes(const fl_config_list_t *list)
{
    json_t *arr = json_array();
    for (size_t i = 0; arr && i < list->count; i++) {
        const char *prefix = list->items[i];
        if (strcmp(prefix, "*") != 0 && strchr(prefix, '*'))
            fprintf(stderr, "flushline token mint: note: only a whole \"*\" is a wildcard; \"%s\" "
                            "matches ids that begin with it literally\n",
                    prefix);
        else if (strcmp(prefix, "*") != 0 && !strchr(prefix, '/'))
            fprintf(stderr, "flushline token mint: note: \"%s\" has no '/': it also grants "
                            "\"%sX/...\" tenants; use \"%s/\" for one tenant\n",
                    prefix, prefix, prefix);
        if (json_array_append_new(arr, json_string(prefix)) != 0) {
            json_decref(arr);
            return NULL;
        }
    }
    return arr;
}

static int cmd_mint(int argc, char **argv)
{
    mint_opts_t o = {0};
    fl_config_t *cfg;
    int64_t ttl, nbf_in, now;
    json_t *reads = NULL, *writes = NULL, *claims = NULL;
    fl_jwt_keyfile_t *kf = NULL;
    char *claims_s = NULL, *tok = NULL, errstr[512];
    int rc = fl_cli_options(&fl_cmd_token_mint_options, &o, NULL, argc, argv, &cfg);

    if (rc >= 0)
        return rc;
    rc = FL_EXIT_USAGE;
    ttl = o.ttl_ms / 1000;
    nbf_in = o.nbf_in_ms / 1000;
    now = fl_config_is_set(cfg, "now") ? o.now : fl_clock_wall_s();
    if (nbf_in >= ttl) {
        fprintf(stderr, "flushline token mint: --nbf-in must be shorter than --ttl (both count "
                        "from now)\n");
        goto fail;
    }
    if (o.read.count == 0 && o.write.count == 0)
        fprintf(stderr, "flushline token mint: note: no --read or --write: the token grants no "
                        "document\n");
    if (!(reads = prefixes(&o.read)) || !(writes = prefixes(&o.write))) {
        fprintf(stderr, "flushline token mint: out of memory\n");
        rc = FL_EXIT_FAIL;
        goto fail;
    }
    rc = FL_EXIT_FAIL;
    if (fl_jwt_keyfile_read(o.key, &kf, errstr, sizeof errstr) != 0) {
        fprintf(stderr, "flushline token mint: %s\n", errstr);
        goto fail;
    }
    claims = json_object();
    if (!claims || json_object_set_new(claims, "sub", json_string(o.sub)) != 0 ||
        json_object_set_new(claims, "iat", json_integer(now)) != 0 ||
        json_object_set_new(claims, "nbf", json_integer(now + nbf_in)) != 0 ||
        json_object_set_new(claims, "exp", json_integer(now + ttl)) != 0 ||
        (o.role && json_object_set_new(claims, "role", json_string(o.role)) != 0) ||
        (json_array_size(reads) && json_object_set(claims, "read", reads) != 0) ||
        (json_array_size(writes) && json_object_set(claims, "write", writes) != 0) ||
        !(claims_s = json_dumps(claims, JSON_COMPACT))) {
        fprintf(stderr, "flushline token mint: out of memory\n");
        goto fail;
    }
    if (fl_jwt_mint_keyfile(kf, claims_s, &tok, errstr, sizeof errstr) != 0) {
        fprintf(stderr, "flushline token mint: %s\n", errstr);
        goto fail;
    }
    printf("%s\n", tok);
    rc = fflush(stdout) == 0 ? FL_EXIT_OK : FL_EXIT_FAIL;
fail:
    free(tok);
    free(claims_s);
    json_decref(claims);
    json_decref(reads);
    json_decref(writes);
    fl_jwt_keyfile_free(kf);
    fl_config_free(cfg);
    return rc;
}

static json_t *prefixes_json(const char (*list)[FL_JWT_MAX_STR + 1], uint32_t n)
{
    json_t *arr = json_array();
    for (uint32_t i = 0; arr && i < n; i++)
        json_array_append_new(arr, json_string(list[i]));
    return arr;
}

static int cmd_verify(int argc, char **argv)
{
    verify_opts_t o = {0};
    fl_config_t *cfg;
    const char *arg_tok;
    int64_t now, leeway;
    fl_jwt_keys_t *keys = NULL;
    fl_claims_t *claims = NULL;
    json_t *j = NULL;
    char *buf = NULL, *dump = NULL, errstr[512];
    size_t len = 0;
    int r, rc = fl_cli_options(&fl_cmd_token_verify_options, &o, NULL, argc, argv, &cfg);

    if (rc >= 0)
        return rc;
    arg_tok = o.token;
    now = fl_config_is_set(cfg, "now") ? o.now : fl_clock_wall_s();
    leeway = o.leeway_ms / 1000;
    rc = FL_EXIT_FAIL;
    keys = fl_jwt_keys_new();
    claims = malloc(sizeof *claims);
    buf = malloc(FL_JWT_MAX_TOKEN + 2);
    if (!keys || !claims || !buf) {
        fprintf(stderr, "flushline token verify: out of memory\n");
        goto fail;
    }
    if (fl_jwt_keys_set_leeway(keys, leeway) != 0 ||
        fl_jwt_keys_load_list(keys, o.keys, errstr, sizeof errstr) != 0) {
        fprintf(stderr, "flushline token verify: %s\n", errstr);
        goto fail;
    }
    if (arg_tok && strcmp(arg_tok, "-") != 0) {
        len = strlen(arg_tok);
        if (len > FL_JWT_MAX_TOKEN)
            len = FL_JWT_MAX_TOKEN + 1; /* verify refuses it by length */
        memcpy(buf, arg_tok, len);
    } else {
        size_t got;
        while (len < FL_JWT_MAX_TOKEN + 2 &&
               (got = fread(buf + len, 1, FL_JWT_MAX_TOKEN + 2 - len, stdin)) > 0)
            len += got;
    }
    while (len > 0 && (buf[len - 1] == '\n' || buf[len - 1] == '\r' || buf[len - 1] == ' '))
        len--;
    r = fl_jwt_verify(keys, buf, len, now, claims, errstr, sizeof errstr);
    if (r != 0) {
        fprintf(stderr, "flushline token verify: %s: %s\n", fl_code_name(-r), errstr);
        goto fail;
    }
    j = json_object();
    if (j) {
        json_object_set_new(j, "sub", json_string(claims->sub));
        json_object_set_new(j, "exp", json_integer(claims->exp));
        if (claims->role[0])
            json_object_set_new(j, "role", json_string(claims->role));
        if (claims->nbf)
            json_object_set_new(j, "nbf", json_integer(claims->nbf));
        if (claims->iat)
            json_object_set_new(j, "iat", json_integer(claims->iat));
        json_object_set_new(j, "read", prefixes_json(claims->read, claims->nread));
        json_object_set_new(j, "write", prefixes_json(claims->write, claims->nwrite));
        dump = json_dumps(j, JSON_INDENT(2));
    }
    if (!dump) {
        fprintf(stderr, "flushline token verify: out of memory\n");
        goto fail;
    }
    printf("%s\n", dump);
    rc = FL_EXIT_OK;
fail:
    free(dump);
    json_decref(j);
    free(buf);
    free(claims);
    fl_jwt_keys_free(keys);
    fl_config_free(cfg);
    return rc;
}

int fl_cmd_token(int argc, char **argv)
{
    static const fl_cli_sub_t subs[] = {
        {"keygen", cmd_keygen, NULL}, {"mint", cmd_mint, NULL}, {"verify", cmd_verify, NULL}};
    static const fl_cli_group_t group = {"flushline token", "subcommand", help, subs,
                                         sizeof subs / sizeof subs[0]};
    return fl_cli_dispatch(&group, argc, argv);
}
