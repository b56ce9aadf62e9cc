/* SPDX-License-Identifier: Apache-2.0 */
/*
 * `flushline token keygen|mint|verify`: make signing key files, mint JWTs
 * with the Flushline claims (sub, exp, nbf, iat, read, write) and check a
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
#include <time.h>
#include <unistd.h>

#include "cli.h"
#include "flushline/errors.h"
#include "flushline/jwt.h"
#include "flushline/keyfile.h"
#include "flushline/value.h"

#define MAX_DURATION (366 * 86400)

static const char help_keygen[] =
    "usage: flushline token keygen --type ed25519|hs256 --out PATH [--kid KID] [--force]\n\n"
    "Writes a signing key file PATH (mode 0600). For ed25519 also writes PATH.pub,\n"
    "the public key alone: give that one to gateways (--jwt.keys PATH.pub) and keep\n"
    "PATH where tokens are minted. An hs256 key is a shared secret: the gateway\n"
    "needs PATH itself.\n\n"
    "  --type ed25519|hs256  key type (EdDSA with Ed25519, or HMAC-SHA-256)\n"
    "  --out PATH            where to write the key file\n"
    "  --kid KID             key id stamped into tokens (selects the key on rotation)\n"
    "  --force               overwrite existing files\n";

static const char help_mint[] =
    "usage: flushline token mint --key PATH --sub USER [--read PREFIX]...\n"
    "                            [--write PREFIX]... [--ttl 1h] [--nbf-in 0] [--now UNIX]\n\n"
    "Prints a JWT signed with the key file PATH (from `token keygen`) on stdout.\n\n"
    "  --key PATH       signing key file (the secret one, not .pub)\n"
    "  --sub USER       user id, 1-255 bytes of UTF-8 (stamped into every record)\n"
    "  --read PREFIX    document-id prefix the user may read (repeatable, <= 32):\n"
    "                   \"acme/\" is tenant acme, \"acme/board-1\" one document (and\n"
    "                   any id it prefixes), \"*\" everything\n"
    "  --write PREFIX   document-id prefix the user may write, and so read (<= 32)\n"
    "  --ttl DURATION   lifetime from now: N, Ns, Nm, Nh or Nd (default 1h, max 366d)\n"
    "  --nbf-in DURATION  not valid before now + DURATION (default 0)\n"
    "  --now UNIX       mint as if the time were UNIX seconds (tests, pre-minting)\n";

static const char help_verify[] =
    "usage: flushline token verify --keys PATH[,PATH...] [--now UNIX] [--leeway S] [TOKEN|-]\n\n"
    "Checks a token as a gateway does (keys as for --jwt.keys) and prints its claims\n"
    "as JSON; the token is read from stdin when absent or \"-\". Exit 1 with the\n"
    "reason when it is refused.\n";

static void help(FILE *out)
{
    fprintf(out, "usage: flushline token keygen|mint|verify [OPTIONS]\n\n"
                 "  keygen  write a signing key file (and its .pub for ed25519)\n"
                 "  mint    print a signed token for a user and document prefixes\n"
                 "  verify  check a token against key files and print its claims\n\n"
                 "`flushline token SUBCOMMAND --help` for its options; formats in docs/auth.md.\n");
}

static bool is_help(const char *arg)
{
    return strcmp(arg, "--help") == 0 || strcmp(arg, "-h") == 0;
}

/* "90", "90s", "15m", "2h", "1d" -> seconds in 0..MAX_DURATION. */
static int parse_duration(const char *s, int64_t *out)
{
    char *end;
    long long v;
    int64_t unit = 1;
    errno = 0;
    v = strtoll(s, &end, 10);
    if (errno || end == s || v < 0 || s[0] == '-' || s[0] == '+')
        return -1;
    if (*end) {
        if (end[1])
            return -1;
        switch (*end) {
        case 's':
            unit = 1;
            break;
        case 'm':
            unit = 60;
            break;
        case 'h':
            unit = 3600;
            break;
        case 'd':
            unit = 86400;
            break;
        default:
            return -1;
        }
    }
    if (v > MAX_DURATION / unit)
        return -1;
    *out = (int64_t)v * unit;
    return 0;
}

static int parse_unix(const char *s, int64_t *out)
{
    char *end;
    long long v;
    errno = 0;
    v = strtoll(s, &end, 10);
    if (errno || end == s || *end || v < 0 || v > INT64_C(253402300799))
        return -1;
    *out = v;
    return 0;
}

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
    const char *type = NULL, *out = NULL, *kid = NULL;
    bool force = false;
    fl_jwt_keyfile_t *kf = NULL;
    char *text = NULL, pub_path[4096], errstr[256];
    fl_jwt_alg_t alg;
    long n;
    int r, rc = FL_EXIT_USAGE;

    for (int i = 1; i < argc; i++) {
        if (is_help(argv[i])) {
            fputs(help_keygen, stdout);
            return FL_EXIT_OK;
        } else if (strcmp(argv[i], "--type") == 0 && i + 1 < argc) {
            type = argv[++i];
        } else if (strcmp(argv[i], "--out") == 0 && i + 1 < argc) {
            out = argv[++i];
        } else if (strcmp(argv[i], "--kid") == 0 && i + 1 < argc) {
            kid = argv[++i];
        } else if (strcmp(argv[i], "--force") == 0) {
            force = true;
        } else {
            fprintf(stderr, "flushline token keygen: unexpected argument \"%s\"\n", argv[i]);
            fputs(help_keygen, stderr);
            return FL_EXIT_USAGE;
        }
    }
    if (!type || !out || !*out) {
        fprintf(stderr, "flushline token keygen: --type and --out are required\n");
        fputs(help_keygen, stderr);
        return FL_EXIT_USAGE;
    }
    if (strcmp(type, "ed25519") == 0) {
        alg = FL_JWT_EDDSA;
    } else if (strcmp(type, "hs256") == 0) {
        alg = FL_JWT_HS256;
    } else {
        fprintf(stderr, "flushline token keygen: --type takes ed25519 or hs256\n");
        return FL_EXIT_USAGE;
    }
    if ((size_t)snprintf(pub_path, sizeof pub_path, "%s.pub", out) >= sizeof pub_path) {
        fprintf(stderr, "flushline token keygen: --out path too long\n");
        return FL_EXIT_USAGE;
    }
    if (fl_jwt_keyfile_generate(alg, kid, &kf, errstr, sizeof errstr) != 0) {
        fprintf(stderr, "flushline token keygen: %s\n", errstr);
        return FL_EXIT_USAGE; /* only a bad kid gets here in practice */
    }
    rc = FL_EXIT_FAIL;
    if (!force && alg == FL_JWT_EDDSA && access(pub_path, F_OK) == 0) {
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
    r = write_file(out, text, (size_t)n, 0600, force);
    if (r != 0) {
        fprintf(stderr, "flushline token keygen: %s: %s%s\n", out, strerror(-r),
                r == -EEXIST ? " (--force to overwrite)" : "");
        goto fail;
    }
    printf("wrote %s (%s signing key%s%s, mode 0600: keep it private)\n", out, type,
           kf->kid[0] ? ", kid " : "", kf->kid);
    if (alg == FL_JWT_EDDSA) {
        n = fl_jwt_keyfile_format(kf, false, text, 1024);
        r = n < 0 ? (int)n : write_file(pub_path, text, (size_t)n, 0644, force);
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
    return rc;
}

/* Appends a --read/--write prefix after checking it. */
static int add_prefix(json_t *arr, const char *opt, const char *prefix)
{
    size_t len = strlen(prefix);
    if (len == 0 || len > FL_JWT_MAX_STR || !fl_utf8_valid(prefix, len)) {
        fprintf(stderr, "flushline token mint: %s takes 1-%d bytes of UTF-8\n", opt,
                FL_JWT_MAX_STR);
        return -1;
    }
    if (json_array_size(arr) >= FL_JWT_MAX_PREFIXES) {
        fprintf(stderr, "flushline token mint: at most %d %s prefixes\n", FL_JWT_MAX_PREFIXES,
                opt);
        return -1;
    }
    if (strcmp(prefix, "*") != 0 && strchr(prefix, '*'))
        fprintf(stderr, "flushline token mint: note: only a whole \"*\" is a wildcard; \"%s\" "
                        "matches ids that begin with it literally\n",
                prefix);
    else if (strcmp(prefix, "*") != 0 && !strchr(prefix, '/'))
        fprintf(stderr, "flushline token mint: note: \"%s\" has no '/': it also grants \"%sX/...\" "
                        "tenants; use \"%s/\" for one tenant\n",
                prefix, prefix, prefix);
    return json_array_append_new(arr, json_string(prefix)) == 0 ? 0 : -1;
}

static int cmd_mint(int argc, char **argv)
{
    const char *key = NULL, *sub = NULL;
    int64_t ttl = 3600, nbf_in = 0, now = (int64_t)time(NULL);
    json_t *reads = json_array(), *writes = json_array(), *claims = NULL;
    fl_jwt_keyfile_t *kf = NULL;
    char *claims_s = NULL, *tok = NULL, errstr[512];
    int rc = FL_EXIT_USAGE;

    if (!reads || !writes)
        goto fail;
    for (int i = 1; i < argc; i++) {
        const char *arg = argv[i];
        if (is_help(arg)) {
            fputs(help_mint, stdout);
            rc = FL_EXIT_OK;
            goto fail;
        } else if (i + 1 >= argc) {
            fprintf(stderr, "flushline token mint: unexpected argument \"%s\"\n", arg);
            fputs(help_mint, stderr);
            goto fail;
        }
        const char *val = argv[++i];
        if (strcmp(arg, "--key") == 0) {
            key = val;
        } else if (strcmp(arg, "--sub") == 0) {
            sub = val;
        } else if (strcmp(arg, "--read") == 0) {
            if (add_prefix(reads, arg, val) != 0)
                goto fail;
        } else if (strcmp(arg, "--write") == 0) {
            if (add_prefix(writes, arg, val) != 0)
                goto fail;
        } else if (strcmp(arg, "--ttl") == 0) {
            if (parse_duration(val, &ttl) != 0 || ttl == 0) {
                fprintf(stderr, "flushline token mint: --ttl takes N[s|m|h|d], 1s to 366d\n");
                goto fail;
            }
        } else if (strcmp(arg, "--nbf-in") == 0) {
            if (parse_duration(val, &nbf_in) != 0) {
                fprintf(stderr, "flushline token mint: --nbf-in takes N[s|m|h|d], up to 366d\n");
                goto fail;
            }
        } else if (strcmp(arg, "--now") == 0) {
            if (parse_unix(val, &now) != 0) {
                fprintf(stderr, "flushline token mint: --now takes Unix seconds\n");
                goto fail;
            }
        } else {
            fprintf(stderr, "flushline token mint: unexpected argument \"%s\"\n", arg);
            fputs(help_mint, stderr);
            goto fail;
        }
    }
    if (!key || !sub) {
        fprintf(stderr, "flushline token mint: --key and --sub are required\n");
        fputs(help_mint, stderr);
        goto fail;
    }
    if (strlen(sub) == 0 || strlen(sub) > FL_JWT_MAX_STR || !fl_utf8_valid(sub, strlen(sub))) {
        fprintf(stderr, "flushline token mint: --sub takes 1-%d bytes of UTF-8\n", FL_JWT_MAX_STR);
        goto fail;
    }
    if (nbf_in >= ttl) {
        fprintf(stderr, "flushline token mint: --nbf-in must be shorter than --ttl (both count "
                        "from now)\n");
        goto fail;
    }
    if (json_array_size(reads) == 0 && json_array_size(writes) == 0)
        fprintf(stderr, "flushline token mint: note: no --read or --write: the token grants no "
                        "document\n");
    rc = FL_EXIT_FAIL;
    if (fl_jwt_keyfile_read(key, &kf, errstr, sizeof errstr) != 0) {
        fprintf(stderr, "flushline token mint: %s\n", errstr);
        goto fail;
    }
    claims = json_object();
    if (!claims || json_object_set_new(claims, "sub", json_string(sub)) != 0 ||
        json_object_set_new(claims, "iat", json_integer(now)) != 0 ||
        json_object_set_new(claims, "nbf", json_integer(now + nbf_in)) != 0 ||
        json_object_set_new(claims, "exp", json_integer(now + ttl)) != 0 ||
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
    const char *paths = NULL, *arg_tok = NULL;
    int64_t now = (int64_t)time(NULL), leeway = FL_JWT_DEFAULT_LEEWAY;
    fl_jwt_keys_t *keys = NULL;
    fl_claims_t *claims = NULL;
    json_t *j = NULL;
    char *buf = NULL, *dump = NULL, errstr[512];
    size_t len = 0;
    int r, rc = FL_EXIT_USAGE;

    for (int i = 1; i < argc; i++) {
        if (is_help(argv[i])) {
            fputs(help_verify, stdout);
            return FL_EXIT_OK;
        } else if (strcmp(argv[i], "--keys") == 0 && i + 1 < argc) {
            paths = argv[++i];
        } else if (strcmp(argv[i], "--now") == 0 && i + 1 < argc) {
            if (parse_unix(argv[++i], &now) != 0) {
                fprintf(stderr, "flushline token verify: --now takes Unix seconds\n");
                return FL_EXIT_USAGE;
            }
        } else if (strcmp(argv[i], "--leeway") == 0 && i + 1 < argc) {
            if (parse_duration(argv[++i], &leeway) != 0 || leeway > FL_JWT_MAX_LEEWAY) {
                fprintf(stderr, "flushline token verify: --leeway takes 0-%d seconds\n",
                        FL_JWT_MAX_LEEWAY);
                return FL_EXIT_USAGE;
            }
        } else if (!arg_tok && (argv[i][0] != '-' || strcmp(argv[i], "-") == 0)) {
            arg_tok = argv[i];
        } else {
            fprintf(stderr, "flushline token verify: unexpected argument \"%s\"\n", argv[i]);
            fputs(help_verify, stderr);
            return FL_EXIT_USAGE;
        }
    }
    if (!paths) {
        fprintf(stderr, "flushline token verify: --keys is required\n");
        return FL_EXIT_USAGE;
    }
    rc = FL_EXIT_FAIL;
    keys = fl_jwt_keys_new();
    claims = malloc(sizeof *claims);
    buf = malloc(FL_JWT_MAX_TOKEN + 2);
    if (!keys || !claims || !buf) {
        fprintf(stderr, "flushline token verify: out of memory\n");
        goto fail;
    }
    if (fl_jwt_keys_set_leeway(keys, leeway) != 0 ||
        fl_jwt_keys_load_list(keys, paths, errstr, sizeof errstr) != 0) {
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
    return rc;
}

int fl_cmd_token(int argc, char **argv)
{
    if (argc < 2) {
        help(stderr);
        return FL_EXIT_USAGE;
    }
    if (is_help(argv[1]) || strcmp(argv[1], "help") == 0) {
        help(stdout);
        return FL_EXIT_OK;
    }
    if (strcmp(argv[1], "keygen") == 0)
        return cmd_keygen(argc - 1, argv + 1);
    if (strcmp(argv[1], "mint") == 0)
        return cmd_mint(argc - 1, argv + 1);
    if (strcmp(argv[1], "verify") == 0)
        return cmd_verify(argc - 1, argv + 1);
    fprintf(stderr, "flushline token: unknown subcommand \"%s\"\n", argv[1]);
    help(stderr);
    return FL_EXIT_USAGE;
}
