/* SPDX-License-Identifier: Apache-2.0 */
/*
 * `flushline bench`: the load generator. Runs many C clients (client.h) in
 * one fl_client_ctx_t on this thread, spread over one or more gateways:
 * writers send flushes of K commands to documents chosen by a contention
 * model (all on one document, uniform, zipf), open-loop at a fixed total
 * rate or closed-loop as fast as outcomes come back; subscribers (N per
 * document) only subscribe and count deltas.
 *
 * Latency is measured from the *scheduled* send time (open loop: flush i is
 * due at t0 + i / rate whether or not the previous ones were answered, so a
 * stall shows up in every flush it delays: no coordinated omission), to
 * the flush's outcome at its writer, and to each delta at each subscriber.
 * The scheduled time travels in the flush itself: its first command is
 * `add /t <CLOCK_MONOTONIC ns>` (the other K-1 are `incr /cN 1`), so a
 * subscriber reads it from the delta; outcomes are matched by (writer,
 * document, seq) in a table of flushes in flight. Both go into log-bucket
 * histograms (HDR style, ~1% precision).
 *
 * Op mixes (--ops): `incr` (above); `replace-append`: `replace /t <time>`
 * then `add /list/- <writer index>` (the document must hold /t and /list:
 * bench/contention.sh creates them). With --writers-subscribe every writer
 * also subscribes to every document and counts its deltas like a
 * subscriber (as in a shared board, where each editor sees every change).
 *
 * Client ids are random per run (first 8 bytes the run id, then a role and
 * an index), so a rerun on the same documents is never answered from the
 * dedup table and deltas of other writers are not counted.
 *
 * This file holds the options, the setup and the connection of the
 * clients; bench_run.c, bench_report.c and bench_stats.c the rest.
 */
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <math.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#include <jansson.h>
#include <libwebsockets.h>
#include <sodium.h>

#include "bench_int.h"
#include "cli.h"
#include "flushline/client.h"
#include "flushline/clock.h"
#include "flushline/hmap.h"
#include "flushline/jwt.h"
#include "flushline/keyfile.h"

static void on_sigint(int sig)
{
    (void)sig;
    bn_interrupted = bn_interrupted + 1; /* a second one ends the drain at once */
}

/* ---- setup ------------------------------------------------------------------------ */

/* The options as the table loads them; parse_args() turns them into the
 * bench_t. */
typedef struct bench_opts_s {
    const char *gateway, *token, *key, *doc_prefix, *contention;
    int64_t clients, docs, window, flushes, commands, subscribers, seed;
    int64_t duration_ms, connect_timeout_ms, drain_timeout_ms;
    double rate;
    int ops;
    bool pacing, json, quiet, writers_subscribe;
} bench_opts_t;

static const char *const ops_names[] = {"incr", "replace-append", NULL};

/* "one", "uniform", "zipf" or "zipf:S" (S in 0.01..10). 0 or -1. */
static int parse_contention(const char *v, int *mode, double *zipf_s)
{
    char *end;
    *zipf_s = 1.0;
    if (strcmp(v, "one") == 0) {
        *mode = CONT_ONE;
    } else if (strcmp(v, "uniform") == 0) {
        *mode = CONT_UNIFORM;
    } else if (strcmp(v, "zipf") == 0) {
        *mode = CONT_ZIPF;
    } else if (strncmp(v, "zipf:", 5) == 0) {
        *mode = CONT_ZIPF;
        errno = 0;
        *zipf_s = strtod(v + 5, &end);
        if (errno || end == v + 5 || *end || !(*zipf_s >= 0.01 && *zipf_s <= 10))
            return -1;
    } else {
        return -1;
    }
    return 0;
}

static int check_contention(const void *field, char *errstr, size_t errstr_size)
{
    int mode;
    double s;
    if (parse_contention(*(const char *const *)field, &mode, &s) != 0) {
        snprintf(errstr, errstr_size, "expected one, uniform or zipf[:S] with S in 0.01..10");
        return -1;
    }
    return 0;
}

#define F(field) offsetof(bench_opts_t, field)

static const fl_config_entry_t entries[] = {
    {.name = "gateway", .type = FL_CONFIG_STRING, .offset = F(gateway),
     .flags = FL_CONFIG_REQUIRED, .metavar = "HOST:PORT[,...]",
     .doc = "Gateways, host:port[,host:port...] (ws:// and /v1/ws allowed)."},
    {.name = "token", .type = FL_CONFIG_STRING, .offset = F(token), .group = 1,
     .flags = FL_CONFIG_REQUIRED, .metavar = "T", .doc = "One token for every client."},
    {.name = "key", .type = FL_CONFIG_STRING, .offset = F(key), .group = 1,
     .flags = FL_CONFIG_REQUIRED, .metavar = "FILE",
     .doc = "Mint a token per client with this key file (sub bench-N, write = the documents' "
            "tenant)."},
    {.name = "clients", .type = FL_CONFIG_INT, .def = "10", .offset = F(clients), .min = 1,
     .max = MAX_CLIENTS, .metavar = "N", .doc = "Writer connections."},
    {.name = "docs", .type = FL_CONFIG_INT, .def = "10", .offset = F(docs), .min = 1,
     .max = MAX_DOCS, .metavar = "N", .doc = "Documents."},
    {.name = "doc-prefix", .type = FL_CONFIG_STRING, .def = "acme/bench-",
     .offset = F(doc_prefix), .metavar = "P", .doc = "Document ids P0, P1, ..."},
    {.name = "contention", .type = FL_CONFIG_STRING, .def = "uniform", .offset = F(contention),
     .metavar = "MODE", .check = check_contention,
     .doc = "one (all on document 0), uniform, or zipf[:S] (document k with weight 1/(k+1)^S, "
            "S 1.0)."},
    {.name = "rate", .type = FL_CONFIG_DOUBLE, .def = "0", .offset = F(rate), .min = 0,
     .max = 10000000, .metavar = "R",
     .doc = "Flushes/s in all, open loop on a schedule; 0: closed loop, each writer keeps "
            "--window flushes out."},
    {.name = "window", .type = FL_CONFIG_INT, .def = "1", .offset = F(window), .min = 1,
     .max = 100000, .metavar = "W", .doc = "Closed loop: flushes in flight per writer."},
    {.name = "duration", .type = FL_CONFIG_DURATION_S, .def = "10", .offset = F(duration_ms),
     .min = 1, .max = 7 * 86400000LL, .group = 2, .metavar = "S",
     .doc = "Time spent sending."},
    {.name = "flushes", .type = FL_CONFIG_INT, .offset = F(flushes), .min = 1,
     .max = UINT32_MAX, .group = 2, .metavar = "N", .doc = "Send N flushes instead."},
    {.name = "commands", .type = FL_CONFIG_INT, .def = "1", .offset = F(commands), .min = 1,
     .max = MAX_COMMANDS, .metavar = "K", .doc = "Commands per flush: add /t, then incr."},
    {.name = "ops", .type = FL_CONFIG_ENUM, .def = "incr", .offset = F(ops),
     .choices = ops_names, .metavar = "MIX",
     .doc = "incr (add /t, then incr) or replace-append (replace /t, add /list/-: 2 commands; "
            "the documents must hold /t and /list)."},
    {.name = "subscribers", .type = FL_CONFIG_INT, .def = "0", .offset = F(subscribers),
     .min = 0, .max = MAX_CLIENTS, .metavar = "N",
     .doc = "Subscriber connections per document."},
    {.name = "writers-subscribe", .type = FL_CONFIG_BOOL, .def = "false",
     .offset = F(writers_subscribe), .flags = FL_CONFIG_SWITCH,
     .doc = "Every writer also subscribes to every document (at most 64) and counts its "
            "deltas."},
    {.name = "connect-timeout", .type = FL_CONFIG_DURATION_S, .def = "15",
     .offset = F(connect_timeout_ms), .min = 100, .max = 3600000, .metavar = "S",
     .doc = "Every connection welcomed by then."},
    {.name = "drain-timeout", .type = FL_CONFIG_DURATION_S, .def = "30",
     .offset = F(drain_timeout_ms), .min = 0, .max = 3600000, .metavar = "S",
     .doc = "Wait this long for the last outcomes and deltas."},
    {.name = "pacing", .type = FL_CONFIG_BOOL, .def = "true", .offset = F(pacing),
     .flags = FL_CONFIG_SWITCH, .doc = "Do not pace flushes by the gateway's rate limit."},
    {.name = "seed", .type = FL_CONFIG_INT, .def = "1", .offset = F(seed), .min = 0,
     .max = UINT32_MAX, .metavar = "N", .doc = "Seed of the document choice."},
    {.name = "json", .type = FL_CONFIG_BOOL, .def = "false", .offset = F(json),
     .flags = FL_CONFIG_SWITCH, .doc = "Results as one JSON object on stdout."},
    FL_CLI_QUIET_ENTRY(bench_opts_t),
};

FL_CLI_TABLE(fl_cmd_bench_options, "bench",
             "--gateway HOST:PORT[,HOST:PORT...] (--token T | --key FILE)", entries, false,
             "Load generator: writers send flushes through the gateways (clients spread over "
             "them round-robin), subscribers count deltas. Prints a progress line on stderr "
             "every second and the results at the end: throughput, latency percentiles "
             "flush->outcome and flush->delta (from the scheduled send time), nacks by code, "
             "reconnects, flushes pending. Exit 0 when every flush was acknowledged, 1 "
             "otherwise, 2 on bad flags.");

static int parse_gateways(bench_t *b, const char *list)
{
    const char *s = list;
    while (*s) {
        const char *end = strchr(s, ',');
        size_t n = end ? (size_t)(end - s) : strlen(s);
        char item[300], *colon, *host, *endp;
        long port;
        if (n == 0 || n >= sizeof item || b->ngw == MAX_GATEWAYS)
            goto bad;
        memcpy(item, s, n);
        item[n] = '\0';
        host = item;
        if (strncmp(host, "ws://", 5) == 0)
            host += 5;
        if (*host == '[') { /* [v6]:port */
            char *close = strchr(host, ']');
            if (!close || close[1] != ':')
                goto bad;
            *close = '\0';
            host++;
            colon = close + 1;
        } else {
            colon = strrchr(host, ':');
        }
        if (!colon || colon == host)
            goto bad;
        *colon = '\0';
        errno = 0;
        port = strtol(colon + 1, &endp, 10);
        if (errno || endp == colon + 1 || (*endp && strcmp(endp, "/v1/ws") != 0) || port < 1 ||
            port > 65535 || strlen(host) >= sizeof b->gws[0].host)
            goto bad;
        snprintf(b->gws[b->ngw].host, sizeof b->gws[0].host, "%s", host);
        b->gws[b->ngw].port = (int)port;
        b->ngw++;
        s = end ? end + 1 : s + n;
    }
    if (b->ngw > 0)
        return 0;
bad:
    fprintf(stderr,
            "flushline bench: bad --gateway \"%s\": expected HOST:PORT[,HOST:PORT...] "
            "(port 1-65535)\n",
            list);
    return -1;
}

/* The loaded options into b; FL_EXIT_OK or FL_EXIT_USAGE after a message. */
static int parse_args(bench_t *b, const bench_opts_t *o, const fl_config_t *cfg)
{
    if (parse_gateways(b, o->gateway) != 0)
        return FL_EXIT_USAGE;
    b->token = o->token;
    b->keypath = o->key;
    b->doc_prefix = o->doc_prefix;
    b->nwriters = (uint32_t)o->clients;
    b->ndocs = (uint32_t)o->docs;
    b->ncmds = (uint32_t)o->commands;
    b->window = (uint32_t)o->window;
    b->nsubs_per_doc = (uint32_t)o->subscribers;
    parse_contention(o->contention, &b->contention, &b->zipf_s); /* checked by the table */
    b->rate = o->rate;
    b->duration_s = (double)o->duration_ms / 1000.0;
    b->limit = fl_config_is_set(cfg, "flushes") ? (uint64_t)o->flushes : 0;
    b->connect_timeout_s = (double)o->connect_timeout_ms / 1000.0;
    b->drain_timeout_s = (double)o->drain_timeout_ms / 1000.0;
    b->no_pacing = !o->pacing;
    b->seed = (uint64_t)o->seed;
    b->json = o->json;
    b->quiet = o->quiet;
    b->ops = o->ops == 1 ? OPS_REPLACE_APPEND : OPS_INCR;
    b->writers_subscribe = o->writers_subscribe;
    size_t plen = strlen(b->doc_prefix);
    if (plen == 0 || plen + 7 > FL_DOC_ID_MAX) {
        fprintf(stderr, "flushline bench: --doc-prefix takes 1-%d bytes\n", FL_DOC_ID_MAX - 7);
        return FL_EXIT_USAGE;
    }
    if (b->contention == CONT_ONE)
        b->ndocs = 1;
    if (b->ops == OPS_REPLACE_APPEND && b->ncmds < 2)
        b->ncmds = 2;
    if (b->writers_subscribe && b->ndocs > PER_DOC_REPORT) {
        fprintf(stderr, "flushline bench: --writers-subscribe takes at most %d documents\n",
                PER_DOC_REPORT);
        return FL_EXIT_USAGE;
    }
    if ((uint64_t)b->ndocs * b->nsubs_per_doc > MAX_CLIENTS) {
        fprintf(stderr, "flushline bench: --docs x --subscribers is more than %d connections\n",
                MAX_CLIENTS);
        return FL_EXIT_USAGE;
    }
    if (b->rate > 0 && !b->limit && b->rate * b->duration_s > (double)UINT32_MAX) {
        fprintf(stderr, "flushline bench: --rate x --duration is too many flushes\n");
        return FL_EXIT_USAGE;
    }
    if (b->rate > 0 && !b->limit)
        b->limit = (uint64_t)llround(b->rate * b->duration_s);
    return 0;
}

/* The token of client n: the shared one, or minted (free with free()). */
static char *client_token(bench_t *b, fl_jwt_keyfile_t *kf, const char *tenant, uint32_t n,
                          bool writer)
{
    char claims[FL_JWT_MAX_STR * 2 + 256], errstr[256], *tok = NULL;
    int64_t now = fl_clock_wall_s();
    int64_t ttl = 3600 + (int64_t)(b->limit && b->rate > 0 ? (double)b->limit / b->rate
                                                           : b->duration_s);
    if (!kf)
        return strdup(b->token);
    snprintf(claims, sizeof claims,
             "{\"sub\":\"bench-%u\",\"iat\":%lld,\"exp\":%lld,\"%s\":[\"%s\"]}", n,
             (long long)now, (long long)(now + ttl), writer ? "write" : "read", tenant);
    if (fl_jwt_mint_keyfile(kf, claims, &tok, errstr, sizeof errstr) != 0) {
        fprintf(stderr, "flushline bench: minting a token: %s\n", errstr);
        return NULL;
    }
    return tok;
}

static fl_client_t *new_member(bench_t *b, member_t *m, int role, uint32_t idx, const char *tok)
{
    fl_client_opts_t o;
    memset(&o, 0, sizeof o);
    m->b = b;
    m->role = role;
    m->idx = idx;
    m->gw = (int)((role == ROLE_WRITER ? idx : idx + b->nwriters) % (uint32_t)b->ngw);
    o.host = b->gws[m->gw].host;
    o.port = b->gws[m->gw].port;
    o.token = tok;
    o.name = "flushline-bench";
    o.no_pacing = b->no_pacing;
    memcpy(o.client_id, b->run_id, sizeof b->run_id);
    o.client_id[8] = (uint8_t)role;
    o.client_id[12] = (uint8_t)(idx >> 24);
    o.client_id[13] = (uint8_t)(idx >> 16);
    o.client_id[14] = (uint8_t)(idx >> 8);
    o.client_id[15] = (uint8_t)idx;
    o.backoff_initial_ms = 100;
    o.backoff_max_ms = 2000;
    o.cb.on_status = bn_on_status;
    o.cb.on_welcome = bn_on_welcome;
    if (role == ROLE_WRITER) {
        o.cb.on_outcome = bn_on_outcome;
        o.cb.on_nack = bn_on_nack;
        if (b->writers_subscribe)
            o.cb.on_delta = bn_on_delta;
    } else {
        o.cb.on_delta = bn_on_delta;
        o.cb.on_nack = bn_on_nack;
    }
    o.opaque = m;
    return m->client = fl_client_new(b->ctx, &o);
}

/* The documents' names, their counters, the members and the histograms;
 * the zipf distribution. 0, or -1 (reported). */
static int alloc_state(bench_t *b)
{
    b->nsubs = b->ndocs * b->nsubs_per_doc;
    b->docs = calloc(b->ndocs, sizeof *b->docs);
    b->doclen = calloc(b->ndocs, sizeof *b->doclen);
    b->dstat = calloc(b->ndocs, sizeof *b->dstat);
    b->writers = calloc(b->nwriters, sizeof *b->writers);
    b->subs = calloc(b->nsubs ? b->nsubs : 1, sizeof *b->subs);
    b->h_outcome = calloc(1, sizeof *b->h_outcome);
    b->h_delta = calloc(1, sizeof *b->h_delta);
    b->h_lag = calloc(1, sizeof *b->h_lag);
    if (!b->docs || !b->doclen || !b->dstat || !b->writers || !b->subs || !b->h_outcome ||
        !b->h_delta || !b->h_lag) {
        fprintf(stderr, "flushline bench: out of memory\n");
        return -1;
    }
    for (uint32_t d = 0; d < b->ndocs; d++)
        b->doclen[d] = (size_t)snprintf(b->docs[d], sizeof b->docs[d], "%s%u", b->doc_prefix, d);
    if (b->contention == CONT_ZIPF) {
        double sum = 0;
        if (!(b->zipf_cdf = malloc(b->ndocs * sizeof *b->zipf_cdf))) {
            fprintf(stderr, "flushline bench: out of memory\n");
            return -1;
        }
        for (uint32_t d = 0; d < b->ndocs; d++)
            b->zipf_cdf[d] = sum += 1.0 / pow((double)d + 1, b->zipf_s);
        for (uint32_t d = 0; d < b->ndocs; d++)
            b->zipf_cdf[d] /= sum;
    }
    return 0;
}

/* Subscribers (each on its document), then writers (each subscribed to
 * every document with --writers-subscribe). 0, or -1 (reported). */
static int start_clients(bench_t *b, fl_jwt_keyfile_t *kf, const char *tenant)
{
    for (uint32_t i = 0; i < b->nsubs; i++) {
        char *tok = client_token(b, kf, tenant, b->nwriters + i, false);
        member_t *m = &b->subs[i];
        m->doc = i % b->ndocs;
        if (!tok || !new_member(b, m, ROLE_SUBSCRIBER, i, tok) ||
            fl_client_subscribe(m->client, (fl_slice_t){b->docs[m->doc], b->doclen[m->doc]})) {
            free(tok);
            fprintf(stderr, "flushline bench: could not start subscriber %u\n", i);
            return -1;
        }
        free(tok);
    }
    for (uint32_t i = 0; i < b->nwriters; i++) {
        char *tok = client_token(b, kf, tenant, i, true);
        if (!tok || !new_member(b, &b->writers[i], ROLE_WRITER, i, tok)) {
            free(tok);
            fprintf(stderr, "flushline bench: could not start writer %u\n", i);
            return -1;
        }
        free(tok);
        for (uint32_t d = 0; b->writers_subscribe && d < b->ndocs; d++)
            if (fl_client_subscribe(b->writers[i].client,
                                    (fl_slice_t){b->docs[d], b->doclen[d]}) != 0) {
                fprintf(stderr, "flushline bench: could not subscribe writer %u\n", i);
                return -1;
            }
    }
    return 0;
}

static int setup(bench_t *b)
{
    fl_jwt_keyfile_t *kf = NULL;
    char errstr[256], tenant[FL_DOC_ID_MAX + 2];
    const char *slash = strchr(b->doc_prefix, '/');
    int rc = FL_EXIT_FAIL;
    struct rlimit rl;

    /* One descriptor per connection. */
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
    snprintf(tenant, sizeof tenant, "%.*s",
             (int)(slash ? (size_t)(slash - b->doc_prefix) + 1 : strlen(b->doc_prefix)),
             b->doc_prefix);
    if (b->keypath && fl_jwt_keyfile_read(b->keypath, &kf, errstr, sizeof errstr) != 0) {
        fprintf(stderr, "flushline bench: key file %s: %s\n", b->keypath, errstr);
        return FL_EXIT_USAGE;
    }
    if (kf && !kf->secret) {
        fprintf(stderr, "flushline bench: key file %s holds no secret (a .pub file?)\n",
                b->keypath);
        rc = FL_EXIT_USAGE;
        goto fail;
    }
    if (alloc_state(b) != 0)
        goto fail;
    /* lws's own notices (and one line per refused connection) would bury
     * the progress lines; failures are reported by the bench itself. */
    lws_set_log_level(getenv("FLUSHLINE_LWS_LOG") ? LLL_ERR | LLL_WARN | LLL_NOTICE : 0, NULL);
    if (!(b->ctx = fl_client_ctx_new(errstr, sizeof errstr))) {
        fprintf(stderr, "flushline bench: %s\n", errstr);
        goto fail;
    }
    randombytes_buf(b->run_id, sizeof b->run_id);
    if (start_clients(b, kf, tenant) != 0)
        goto fail;
    rc = FL_EXIT_OK;
fail:
    fl_jwt_keyfile_free(kf);
    return rc;
}

static const char *close_name(int code)
{
    switch (code) {
    case 0:
        return "connection failed or refused";
    case FL_CLOSE_UNAUTHORIZED:
        return "unauthorized: token refused";
    case FL_CLOSE_TOKEN_EXPIRED:
        return "token expired";
    case FL_CLOSE_FORBIDDEN_ORIGIN:
        return "origin refused";
    case FL_CLOSE_GOING_AWAY:
        return "gateway going away";
    case FL_CLOSE_OVERLOADED:
        return "gateway overloaded";
    default:
        return "closed";
    }
}

/* Runs the loop until every writer is welcomed and every subscriber holds
 * its document. FL_EXIT_OK, or FL_EXIT_FAIL after saying why. */
static int connect_all(bench_t *b)
{
    int64_t start = fl_clock_mono_ns(), deadline = start + (int64_t)(b->connect_timeout_s * 1e9);
    int64_t next_log = start + 1000000000;
    uint32_t ready = 0, synced = 0;
    for (;;) {
        ready = synced = 0;
        for (uint32_t i = 0; i < b->nwriters; i++) {
            member_t *m = &b->writers[i];
            if (m->stopped) {
                fprintf(stderr, "flushline bench: gateway %s:%d closed writer %u with %d (%s)\n",
                        b->gws[m->gw].host, b->gws[m->gw].port, i, m->stop_code,
                        close_name(m->stop_code));
                return FL_EXIT_FAIL;
            }
            bool up = fl_client_state(m->client) == FL_CLIENT_READY;
            /* A subscribing writer is ready once it holds every document. */
            for (uint32_t d = 0; up && b->writers_subscribe && d < b->ndocs; d++)
                up = fl_client_doc(m->client, (fl_slice_t){b->docs[d], b->doclen[d]}) != NULL;
            ready += up;
        }
        for (uint32_t i = 0; i < b->nsubs; i++) {
            member_t *m = &b->subs[i];
            if (m->stopped) {
                fprintf(stderr,
                        "flushline bench: gateway %s:%d closed subscriber %u with %d (%s)\n",
                        b->gws[m->gw].host, b->gws[m->gw].port, i, m->stop_code,
                        close_name(m->stop_code));
                return FL_EXIT_FAIL;
            }
            synced += fl_client_doc(m->client, (fl_slice_t){b->docs[m->doc], b->doclen[m->doc]}) !=
                      NULL;
        }
        if (ready == b->nwriters && synced == b->nsubs)
            return FL_EXIT_OK;
        int64_t now = fl_clock_mono_ns();
        if (now >= deadline || bn_interrupted)
            break;
        if (!b->quiet && now >= next_log) {
            fprintf(stderr, "bench: connecting: %u/%u writers welcomed, %u/%u subscribers synced\n",
                    ready, b->nwriters, synced, b->nsubs);
            next_log += 1000000000;
        }
        if (fl_client_service(b->ctx, 20) < 0) {
            fprintf(stderr, "flushline bench: the client loop failed\n");
            return FL_EXIT_FAIL;
        }
    }
    fprintf(stderr,
            "flushline bench: after %.1f s only %u/%u writers welcomed and %u/%u subscribers "
            "synced\n",
            (double)(fl_clock_mono_ns() - start) / 1e9, ready, b->nwriters, synced, b->nsubs);
    for (int g = 0; g < b->ngw; g++)
        if (!b->gws[g].welcomed)
            fprintf(stderr, "flushline bench: gateway %s:%d: no connection welcomed (%s)\n",
                    b->gws[g].host, b->gws[g].port, close_name(b->gws[g].last_close));
    return FL_EXIT_FAIL;
}

static void teardown(bench_t *b)
{
    /* fl_client_ctx_free frees every client still open. */
    fl_client_ctx_free(b->ctx);
    free(b->writers);
    free(b->subs);
    free(b->docs);
    free(b->doclen);
    free(b->dstat);
    free(b->zipf_cdf);
    bn_flights_free(&b->flights);
    free(b->h_outcome);
    free(b->h_delta);
    free(b->h_lag);
}

int fl_cmd_bench(int argc, char **argv)
{
    bench_opts_t o = {0};
    fl_config_t *cfg;
    bench_t *b;
    struct sigaction sa, old_int, old_term;
    int rc = fl_cli_options(&fl_cmd_bench_options, &o, NULL, argc, argv, &cfg);

    if (rc >= 0)
        return rc;
    if (!(b = calloc(1, sizeof *b))) {
        fprintf(stderr, "flushline bench: out of memory\n");
        fl_config_free(cfg);
        return FL_EXIT_FAIL;
    }
    if ((rc = parse_args(b, &o, cfg)) != FL_EXIT_OK) {
        free(b);
        fl_config_free(cfg);
        return rc;
    }
    b->rnd = b->seed * 0x9e3779b97f4a7c15ull + 0x2545f4914f6cdd1dull;

    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_sigint;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, &old_int);
    sigaction(SIGTERM, &sa, &old_term);
    signal(SIGPIPE, SIG_IGN);

    if ((rc = setup(b)) != FL_EXIT_OK || (rc = connect_all(b)) != FL_EXIT_OK)
        goto fail;
    if (!b->quiet) {
        for (int g = 0; g < b->ngw; g++)
            fprintf(stderr, "bench: gateway %s:%d rate limit %u/s burst %u per connection\n",
                    b->gws[g].host, b->gws[g].port, b->gws[g].rate, b->gws[g].burst);
    }
    bn_run(b);
    if (b->send_errors)
        fprintf(stderr, "flushline bench: %d flushes could not be sent (%s)\n", b->send_errors,
                b->send_error);
    bool ok = b->sent > 0 && b->acked == b->sent && b->flights.count == 0 && !b->send_errors;
    if (b->deltas < bn_deltas_expected(b))
        fprintf(stderr, "flushline bench: warning: %" PRIu64 " of %" PRIu64
                        " deltas received (resyncs drop deltas)\n",
                b->deltas, bn_deltas_expected(b));
    bn_report(b, ok);
    rc = ok ? FL_EXIT_OK : FL_EXIT_FAIL;
fail:
    sigaction(SIGINT, &old_int, NULL);
    sigaction(SIGTERM, &old_term, NULL);
    teardown(b);
    free(b);
    fl_config_free(cfg);
    return rc;
}
