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

#include "cli.h"
#include "flushline/client.h"
#include "flushline/clock.h"
#include "flushline/hmap.h"
#include "flushline/jwt.h"
#include "flushline/keyfile.h"

#define MAX_GATEWAYS 64
#define MAX_CLIENTS 100000
#define MAX_DOCS 1000000
#define MAX_COMMANDS 1000
#define NCOUNTERS 8
#define PER_DOC_REPORT 64 /* documents listed one by one in the results, at most */

/* ---- histogram -------------------------------------------------------------------
 * Log-linear buckets as in HdrHistogram: values below 2^SUB_BITS exactly,
 * above that 2^(SUB_BITS-1) buckets per power of two (relative error below
 * 1/64). Values are nanoseconds; the exact maximum is kept aside. */

#define SUB_BITS 7
#define SUB (1u << SUB_BITS)
#define HALF (SUB / 2)
#define NBUCKETS (SUB + (64 - SUB_BITS) * HALF)

typedef struct hist_s {
    uint64_t count, max, min;
    uint64_t b[NBUCKETS];
} hist_t;

static unsigned hist_index(uint64_t v)
{
    if (v < SUB)
        return (unsigned)v;
    unsigned m = 63u - (unsigned)__builtin_clzll(v);
    unsigned shift = m - (SUB_BITS - 1);
    return SUB + (m - SUB_BITS) * HALF + (unsigned)((v >> shift) - HALF);
}

/* The highest value that falls into bucket idx. */
static uint64_t hist_high(unsigned idx)
{
    if (idx < SUB)
        return idx;
    unsigned g = (idx - SUB) / HALF, sub = (idx - SUB) % HALF + HALF;
    unsigned shift = g + SUB_BITS - (SUB_BITS - 1);
    return ((uint64_t)sub << shift) + ((uint64_t)1 << shift) - 1;
}

static void hist_add(hist_t *h, int64_t v)
{
    uint64_t u = v > 0 ? (uint64_t)v : 0;
    if (h->count == 0 || u < h->min)
        h->min = u;
    if (u > h->max)
        h->max = u;
    h->count++;
    h->b[hist_index(u)]++;
}

/* The value at quantile q (0..1]: the highest value of the bucket holding
 * the ceil(q * count)-th smallest sample, never above the exact maximum. */
static uint64_t hist_quantile(const hist_t *h, double q)
{
    uint64_t rank, seen = 0;
    if (h->count == 0)
        return 0;
    rank = (uint64_t)ceil(q * (double)h->count);
    if (rank < 1)
        rank = 1;
    for (unsigned i = 0; i < NBUCKETS; i++) {
        seen += h->b[i];
        if (seen >= rank) {
            uint64_t v = hist_high(i);
            return v < h->max ? v : h->max;
        }
    }
    return h->max;
}

/* ---- flushes in flight -----------------------------------------------------------
 * (writer, doc, seq) -> the time it was scheduled, in the one hash map
 * (hmap.h), each entry keyed by its own key bytes. */

typedef struct flight_s {
    struct flight_key_s {
        uint64_t seq;
        uint32_t writer, doc;
    } key;
    int64_t t_sched; /* ns */
} flight_t;
_Static_assert(sizeof(struct flight_key_s) == 16, "no padding: the key is all its bytes");

typedef struct flights_s {
    fl_hmap_t *map; /* created by the first put */
    size_t count;
} flights_t;

static int flights_put(flights_t *f, uint32_t writer, uint32_t doc, uint64_t seq, int64_t t)
{
    flight_t *fl;
    if ((!f->map && !(f->map = fl_hmap_new())) || !(fl = malloc(sizeof *fl)))
        return -1;
    *fl = (flight_t){{seq, writer, doc}, t};
    free(fl_hmap_del(f->map, &fl->key, sizeof fl->key)); /* a repeated key: the newest wins */
    if (fl_hmap_put(f->map, &fl->key, sizeof fl->key, fl) != 0) {
        free(fl);
        return -1;
    }
    f->count = fl_hmap_count(f->map);
    return 0;
}

/* Removes the entry; its scheduled time in *t. 0, or -1 when absent. */
static int flights_take(flights_t *f, uint32_t writer, uint32_t doc, uint64_t seq, int64_t *t)
{
    struct flight_key_s key = {seq, writer, doc};
    flight_t *fl = f->map ? fl_hmap_del(f->map, &key, sizeof key) : NULL;
    if (!fl)
        return -1;
    *t = fl->t_sched;
    free(fl);
    f->count = fl_hmap_count(f->map);
    return 0;
}

static void flights_free(flights_t *f)
{
    flight_t *fl;
    if (!f->map)
        return;
    FL_HMAP_FOREACH(f->map, it, fl)
        free(fl); /* the map is freed next, unread */
    fl_hmap_free(f->map);
}

/* ---- the run ---------------------------------------------------------------------- */

enum { CONT_ONE, CONT_UNIFORM, CONT_ZIPF };
enum { OPS_INCR, OPS_REPLACE_APPEND };
enum { ROLE_WRITER = 1, ROLE_SUBSCRIBER = 2 };

typedef struct gateway_s {
    char host[256];
    int port;
    int last_close;  /* last close code seen by one of its clients */
    bool welcomed;   /* some client got a welcome */
    uint32_t rate, burst;
} gateway_t;

typedef struct bench_s bench_t;

typedef struct member_s {
    bench_t *b;
    fl_client_t *client;
    uint32_t idx;   /* writer index, or subscriber index */
    uint32_t doc;   /* subscribers: their document */
    int role;
    int gw;
    bool was_ready, stopped;
    int stop_code;
    uint32_t inflight; /* closed loop */
} member_t;

typedef struct docstat_s {
    uint64_t sent, acked, applied, deltas;
} docstat_t;

struct bench_s {
    /* options */
    gateway_t gws[MAX_GATEWAYS];
    int ngw;
    const char *token, *keypath, *doc_prefix;
    uint32_t nwriters, ndocs, nsubs_per_doc, ncmds, window;
    int contention, ops;
    bool writers_subscribe;
    double zipf_s, rate, duration_s;
    uint64_t limit;        /* flushes to send (0: by duration) */
    double connect_timeout_s, drain_timeout_s;
    bool json, quiet, no_pacing;
    uint64_t seed;

    /* state */
    uint8_t run_id[8];
    fl_client_ctx_t *ctx;
    member_t *writers, *subs;
    uint32_t nsubs;
    double *zipf_cdf;
    char (*docs)[FL_DOC_ID_MAX + 1];
    size_t *doclen;
    docstat_t *dstat;
    flights_t flights;
    hist_t *h_outcome, *h_delta, *h_lag; /* h_lag: open loop, send time - due time */
    uint64_t rnd;
    int64_t t0, t_end_send, t_last_ack;
    uint64_t sent, acked, applied_flushes, dups, failed, deltas, deltas_foreign;
    uint64_t commands_acked, reconnects, unmatched;
    uint64_t nacks[FL_CODE__COUNT + 1], rejected[FL_CODE__COUNT + 1];
    bool sending_done;
    int send_errors;
    char send_error[256];
};

static volatile sig_atomic_t interrupted;

static void on_sigint(int sig)
{
    (void)sig;
    interrupted = interrupted + 1; /* a second one ends the drain at once */
}

static uint64_t xorshift(uint64_t *s)
{
    uint64_t x = *s;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    return *s = x;
}

static double uniform01(uint64_t *s)
{
    return (double)(xorshift(s) >> 11) * (1.0 / 9007199254740992.0);
}

static uint32_t pick_doc(bench_t *b)
{
    if (b->contention == CONT_ONE || b->ndocs == 1)
        return 0;
    if (b->contention == CONT_UNIFORM)
        return (uint32_t)(xorshift(&b->rnd) % b->ndocs);
    double u = uniform01(&b->rnd);
    uint32_t lo = 0, hi = b->ndocs - 1;
    while (lo < hi) {
        uint32_t mid = lo + (hi - lo) / 2;
        if (b->zipf_cdf[mid] >= u)
            hi = mid;
        else
            lo = mid + 1;
    }
    return lo;
}

/* The document index of an id of this run, or -1. */
static long doc_index(const bench_t *b, fl_slice_t doc)
{
    size_t plen = strlen(b->doc_prefix);
    unsigned long v = 0;
    if (doc.len <= plen || doc.len - plen > 9 || memcmp(doc.ptr, b->doc_prefix, plen) != 0)
        return -1;
    for (size_t i = plen; i < doc.len; i++) {
        if (doc.ptr[i] < '0' || doc.ptr[i] > '9')
            return -1;
        v = v * 10 + (unsigned long)(doc.ptr[i] - '0');
    }
    return v < b->ndocs ? (long)v : -1;
}

/* Sends one flush from writer w; its schedule time is t_sched (ns). */
static int send_flush(bench_t *b, member_t *w, int64_t t_sched)
{
    fl_cmd_t cmds[MAX_COMMANDS];
    static const char *const counters[NCOUNTERS] = {"/c0", "/c1", "/c2", "/c3",
                                                    "/c4", "/c5", "/c6", "/c7"};
    uint32_t d = pick_doc(b);
    uint64_t seq = 0;
    int rc;

    memset(cmds, 0, b->ncmds * sizeof cmds[0]);
    cmds[0].op = b->ops == OPS_REPLACE_APPEND ? FL_OP_REPLACE : FL_OP_ADD;
    cmds[0].path = FL_SLICE("/t");
    cmds[0].has_value = true;
    cmds[0].value = fl_value_int(t_sched);
    if (b->ops == OPS_REPLACE_APPEND) {
        cmds[1].op = FL_OP_ADD;
        cmds[1].path = FL_SLICE("/list/-");
        cmds[1].has_value = true;
        cmds[1].value = fl_value_int(w->idx);
    }
    for (uint32_t j = b->ops == OPS_REPLACE_APPEND ? 2 : 1; j < b->ncmds; j++) {
        const char *c = counters[(j - 1) % NCOUNTERS];
        cmds[j].op = FL_OP_INCR;
        cmds[j].path = (fl_slice_t){c, strlen(c)};
        cmds[j].has_value = true;
        cmds[j].value = fl_value_int(1);
    }
    rc = fl_client_flush(w->client, (fl_slice_t){b->docs[d], b->doclen[d]}, cmds, b->ncmds, 0,
                         &seq);
    if (rc != 0) {
        if (b->send_errors++ == 0)
            snprintf(b->send_error, sizeof b->send_error, "writer %u: %s", w->idx,
                     fl_client_strerror(rc));
        return rc;
    }
    if (flights_put(&b->flights, w->idx, d, seq, t_sched) != 0) {
        snprintf(b->send_error, sizeof b->send_error, "out of memory");
        b->send_errors++;
        return FL_CLIENT_ENOMEM;
    }
    b->sent++;
    b->dstat[d].sent++;
    w->inflight++;
    return 0;
}

static bool may_send(const bench_t *b, int64_t now)
{
    if (b->sending_done || interrupted)
        return false;
    if (b->limit && b->sent >= b->limit)
        return false;
    if (!b->limit && now - b->t0 >= (int64_t)(b->duration_s * 1e9))
        return false;
    return true;
}

/* Closed loop: keep w's window full. */
static void refill(bench_t *b, member_t *w)
{
    int64_t now = fl_clock_mono_ns();
    while (w->inflight < b->window && may_send(b, now))
        if (send_flush(b, w, now) != 0)
            break;
}

/* ---- callbacks ------------------------------------------------------------------- */

static void on_status(fl_client_t *client, void *opaque, fl_client_state_t state, int close_code)
{
    member_t *m = opaque;
    (void)client;
    if (close_code)
        m->b->gws[m->gw].last_close = close_code;
    if (state == FL_CLIENT_READY) {
        m->b->gws[m->gw].welcomed = true;
        m->was_ready = true;
    } else if (state == FL_CLIENT_BACKOFF && m->was_ready) {
        m->b->reconnects++;
        m->was_ready = false;
    } else if (state == FL_CLIENT_STOPPED) {
        m->stopped = true;
        m->stop_code = close_code;
    }
}

static void on_welcome(fl_client_t *client, void *opaque, const fl_wire_welcome_t *welcome)
{
    member_t *m = opaque;
    (void)client;
    m->b->gws[m->gw].rate = welcome->rate;
    m->b->gws[m->gw].burst = welcome->burst;
}

static void on_delta(fl_client_t *client, void *opaque, fl_slice_t doc,
                     const fl_wire_delta_t *delta)
{
    member_t *m = opaque;
    bench_t *b = m->b;
    int64_t now = fl_clock_mono_ns();
    long d = m->role == ROLE_WRITER ? doc_index(b, doc) : (long)m->doc;
    (void)client;
    if (d < 0 || memcmp(delta->client_id, b->run_id, sizeof b->run_id) != 0) {
        b->deltas_foreign++;
        return;
    }
    b->deltas++;
    b->dstat[d].deltas++;
    for (uint32_t i = 0; i < delta->ncmds; i++) {
        const fl_cmd_t *c = &delta->cmds[i];
        if (c->path.len == 2 && memcmp(c->path.ptr, "/t", 2) == 0 && c->value.type == FL_INT) {
            hist_add(b->h_delta, now - c->value.u.i);
            break;
        }
    }
}

static void on_outcome(fl_client_t *client, void *opaque, const fl_outcome_t *o)
{
    member_t *m = opaque;
    bench_t *b = m->b;
    long d = doc_index(b, o->doc);
    int64_t t, now = fl_clock_mono_ns();
    (void)client;
    if (d < 0 || flights_take(&b->flights, m->idx, (uint32_t)d, o->seq, &t) != 0) {
        b->unmatched++; /* a second answer to the same flush */
        return;
    }
    hist_add(b->h_outcome, now - t);
    b->acked++;
    b->dstat[d].acked++;
    b->commands_acked += b->ncmds;
    b->t_last_ack = now;
    if (o->duplicate)
        b->dups++;
    if (o->code != FL_CODE_OK)
        b->rejected[o->code < FL_CODE__COUNT ? o->code : FL_CODE__COUNT]++;
    /* A duplicate answer carries the original outcome: what it applied was
     * fanned out once, when it was applied. */
    if (o->version_after > o->version_before) {
        b->applied_flushes++;
        b->dstat[d].applied++;
    }
    if (m->inflight)
        m->inflight--;
    if (b->rate == 0)
        refill(b, m);
}

static void on_nack(fl_client_t *client, void *opaque, const fl_client_nack_t *nack)
{
    member_t *m = opaque;
    bench_t *b = m->b;
    int64_t t;
    long d;
    (void)client;
    b->nacks[nack->code < FL_CODE__COUNT ? nack->code : FL_CODE__COUNT]++;
    if (nack->retrying || !nack->has_seq || (d = doc_index(b, nack->doc)) < 0)
        return;
    /* A final nack: the flush is given up (counted as not acknowledged). */
    if (flights_take(&b->flights, m->idx, (uint32_t)d, nack->seq, &t) == 0) {
        b->failed++;
        if (m->inflight)
            m->inflight--;
        if (b->rate == 0)
            refill(b, m);
    }
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

const fl_config_table_t fl_cmd_bench_options = {
    .program = "flushline bench",
    .usage = "--gateway HOST:PORT[,HOST:PORT...] (--token T | --key FILE)",
    .summary = "Load generator: writers send flushes through the gateways (clients spread over "
               "them round-robin), subscribers count deltas. Prints a progress line on stderr "
               "every second and the results at the end: throughput, latency percentiles "
               "flush->outcome and flush->delta (from the scheduled send time), nacks by code, "
               "reconnects, flushes pending. Exit 0 when every flush was acknowledged, 1 "
               "otherwise, 2 on bad flags.",
    FL_CLI_OPTIONS(entries, false),
};

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
    o.cb.on_status = on_status;
    o.cb.on_welcome = on_welcome;
    if (role == ROLE_WRITER) {
        o.cb.on_outcome = on_outcome;
        o.cb.on_nack = on_nack;
        if (b->writers_subscribe)
            o.cb.on_delta = on_delta;
    } else {
        o.cb.on_delta = on_delta;
        o.cb.on_nack = on_nack;
    }
    o.opaque = m;
    return m->client = fl_client_new(b->ctx, &o);
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
        goto fail;
    }
    for (uint32_t d = 0; d < b->ndocs; d++)
        b->doclen[d] = (size_t)snprintf(b->docs[d], sizeof b->docs[d], "%s%u", b->doc_prefix, d);
    if (b->contention == CONT_ZIPF) {
        double sum = 0;
        if (!(b->zipf_cdf = malloc(b->ndocs * sizeof *b->zipf_cdf))) {
            fprintf(stderr, "flushline bench: out of memory\n");
            goto fail;
        }
        for (uint32_t d = 0; d < b->ndocs; d++)
            b->zipf_cdf[d] = sum += 1.0 / pow((double)d + 1, b->zipf_s);
        for (uint32_t d = 0; d < b->ndocs; d++)
            b->zipf_cdf[d] /= sum;
    }
    /* lws's own notices (and one line per refused connection) would bury
     * the progress lines; failures are reported by the bench itself. */
    lws_set_log_level(getenv("FLUSHLINE_LWS_LOG") ? LLL_ERR | LLL_WARN | LLL_NOTICE : 0, NULL);
    if (!(b->ctx = fl_client_ctx_new(errstr, sizeof errstr))) {
        fprintf(stderr, "flushline bench: %s\n", errstr);
        goto fail;
    }
    randombytes_buf(b->run_id, sizeof b->run_id);
    for (uint32_t i = 0; i < b->nsubs; i++) {
        char *tok = client_token(b, kf, tenant, b->nwriters + i, false);
        member_t *m = &b->subs[i];
        m->doc = i % b->ndocs;
        if (!tok || !new_member(b, m, ROLE_SUBSCRIBER, i, tok) ||
            fl_client_subscribe(m->client, (fl_slice_t){b->docs[m->doc], b->doclen[m->doc]})) {
            free(tok);
            fprintf(stderr, "flushline bench: could not start subscriber %u\n", i);
            goto fail;
        }
        free(tok);
    }
    for (uint32_t i = 0; i < b->nwriters; i++) {
        char *tok = client_token(b, kf, tenant, i, true);
        if (!tok || !new_member(b, &b->writers[i], ROLE_WRITER, i, tok)) {
            free(tok);
            fprintf(stderr, "flushline bench: could not start writer %u\n", i);
            goto fail;
        }
        free(tok);
        for (uint32_t d = 0; b->writers_subscribe && d < b->ndocs; d++)
            if (fl_client_subscribe(b->writers[i].client,
                                    (fl_slice_t){b->docs[d], b->doclen[d]}) != 0) {
                fprintf(stderr, "flushline bench: could not subscribe writer %u\n", i);
                goto fail;
            }
    }
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
        if (now >= deadline || interrupted)
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

static double ms(uint64_t ns)
{
    return (double)ns / 1e6;
}

static void progress(bench_t *b, int64_t now, uint64_t *last_acked)
{
    uint64_t nacks = 0;
    for (int c = 0; c <= FL_CODE__COUNT; c++)
        nacks += b->nacks[c];
    fprintf(stderr,
            "bench: %.0f s sent %" PRIu64 " acked %" PRIu64 " (%" PRIu64 "/s) p99 %.2f ms nacks "
            "%" PRIu64 " reconnects %" PRIu64 " pending %zu deltas %" PRIu64 "\n",
            (double)(now - b->t0) / 1e9, b->sent, b->acked, b->acked - *last_acked,
            ms(hist_quantile(b->h_outcome, 0.99)), nacks, b->reconnects, b->flights.count,
            b->deltas);
    *last_acked = b->acked;
}

/* Expected deltas: every applied flush, once per subscriber of its document
 * (and once per writer when writers subscribe to every document). */
static uint64_t deltas_expected(const bench_t *b)
{
    return b->applied_flushes * (b->nsubs_per_doc + (b->writers_subscribe ? b->nwriters : 0));
}

static void run(bench_t *b)
{
    int64_t next_log, drain_deadline = 0;
    uint64_t last_acked = 0;

    b->t0 = fl_clock_mono_ns();
    next_log = b->t0 + 1000000000;
    if (b->rate == 0)
        for (uint32_t i = 0; i < b->nwriters; i++)
            refill(b, &b->writers[i]);
    for (;;) {
        int64_t now = fl_clock_mono_ns(), wait_ns = 50000000;
        if (b->rate > 0) {
            /* Open loop: flush i is due at t0 + i / rate, sent late if
             * the loop was busy, its latency counted from when it was due. */
            while (may_send(b, now)) {
                int64_t due = b->t0 + (int64_t)((double)b->sent * 1e9 / b->rate);
                if (due > now) {
                    wait_ns = due - now;
                    break;
                }
                if (send_flush(b, &b->writers[b->sent % b->nwriters], due) != 0)
                    break;
                /* How late the generator itself was: a busy machine shows here. */
                hist_add(b->h_lag, now - due);
            }
        }
        if (!b->sending_done && (!may_send(b, now) || b->send_errors)) {
            b->sending_done = true;
            b->t_end_send = now;
            drain_deadline = now + (int64_t)(b->drain_timeout_s * 1e9);
        }
        if (b->sending_done && ((b->flights.count == 0 && b->deltas >= deltas_expected(b)) ||
                                now >= drain_deadline || interrupted > 1))
            break;
        if (!b->quiet && now >= next_log) {
            progress(b, now, &last_acked);
            next_log += 1000000000;
            if (next_log < now)
                next_log = now + 1000000000;
        }
        if (interrupted == 1 && b->sending_done && drain_deadline > now + 2000000000)
            drain_deadline = now + 2000000000; /* Ctrl-C: a short drain */
        /* Rounded up: a 0 ms wait until a flush due in under a millisecond
         * would spin the loop, taking a core from the system measured (a
         * flush sent up to 1 ms late counts that in its latency). */
        int wait_ms = (int)((wait_ns + 999999) / 1000000);
        if (fl_client_service(b->ctx, wait_ms) < 0)
            break;
    }
}

/* ---- results ---------------------------------------------------------------------- */

static json_t *lat_json(const hist_t *h)
{
    json_t *o = json_object();
    json_object_set_new(o, "count", json_integer((json_int_t)h->count));
    if (h->count) {
        json_object_set_new(o, "p50", json_real(ms(hist_quantile(h, 0.50))));
        json_object_set_new(o, "p90", json_real(ms(hist_quantile(h, 0.90))));
        json_object_set_new(o, "p99", json_real(ms(hist_quantile(h, 0.99))));
        json_object_set_new(o, "p999", json_real(ms(hist_quantile(h, 0.999))));
        json_object_set_new(o, "max", json_real(ms(h->max)));
        json_object_set_new(o, "min", json_real(ms(h->min)));
    }
    return o;
}

static json_t *codes_json(const uint64_t *counts)
{
    json_t *o = json_object();
    for (int c = 0; c <= FL_CODE__COUNT; c++)
        if (counts[c])
            json_object_set_new(o, c < FL_CODE__COUNT ? fl_code_name(c) : "other",
                                json_integer((json_int_t)counts[c]));
    return o;
}

static void client_totals(const bench_t *b, fl_client_stats_t *tot)
{
    memset(tot, 0, sizeof *tot);
    for (uint32_t i = 0; i < b->nwriters + b->nsubs; i++) {
        const member_t *m = i < b->nwriters ? &b->writers[i] : &b->subs[i - b->nwriters];
        fl_client_stats_t st;
        fl_client_get_stats(m->client, &st);
        tot->resent += st.resent;
        tot->timeouts += st.timeouts;
        tot->resyncs += st.resyncs;
        tot->bad_frames += st.bad_frames;
    }
}

static void report(const bench_t *b, bool ok)
{
    int64_t t_end = b->t_last_ack > b->t0 ? b->t_last_ack : fl_clock_mono_ns();
    double secs = (double)(t_end - b->t0) / 1e9;
    double fps = secs > 0 ? (double)b->acked / secs : 0;
    uint64_t nacks = 0;
    fl_client_stats_t tot;
    client_totals(b, &tot);
    for (int c = 0; c <= FL_CODE__COUNT; c++)
        nacks += b->nacks[c];
    if (b->json) {
        json_t *o = json_object(), *gw = json_array(), *tp = json_object(), *lat = json_object();
        json_t *dl = json_object();
        static const char *const cont[] = {"one", "uniform", "zipf"};
        for (int g = 0; g < b->ngw; g++) {
            char s[300];
            snprintf(s, sizeof s, "%s:%d", b->gws[g].host, b->gws[g].port);
            json_array_append_new(gw, json_string(s));
        }
        json_object_set_new(o, "gateways", gw);
        json_object_set_new(o, "clients", json_integer(b->nwriters));
        json_object_set_new(o, "docs", json_integer(b->ndocs));
        json_object_set_new(o, "contention", json_string(cont[b->contention]));
        if (b->contention == CONT_ZIPF)
            json_object_set_new(o, "zipf_s", json_real(b->zipf_s));
        json_object_set_new(o, "subscribers_per_doc", json_integer(b->nsubs_per_doc));
        json_object_set_new(o, "subscribers", json_integer(b->nsubs));
        json_object_set_new(o, "rate", json_real(b->rate));
        json_object_set_new(o, "commands_per_flush", json_integer(b->ncmds));
        json_object_set_new(o, "ops", json_string(b->ops == OPS_REPLACE_APPEND ? "replace-append"
                                                                               : "incr"));
        json_object_set_new(o, "writers_subscribe", json_boolean(b->writers_subscribe));
        json_object_set_new(o, "elapsed_s", json_real(secs));
        json_object_set_new(o, "sent", json_integer((json_int_t)b->sent));
        json_object_set_new(o, "acked", json_integer((json_int_t)b->acked));
        json_object_set_new(o, "applied", json_integer((json_int_t)b->applied_flushes));
        json_object_set_new(o, "duplicates", json_integer((json_int_t)b->dups));
        json_object_set_new(o, "rejected", codes_json(b->rejected));
        json_object_set_new(o, "failed", json_integer((json_int_t)b->failed));
        json_object_set_new(o, "pending", json_integer((json_int_t)b->flights.count));
        json_object_set_new(o, "nacks", codes_json(b->nacks));
        json_object_set_new(o, "nacks_total", json_integer((json_int_t)nacks));
        json_object_set_new(o, "reconnects", json_integer((json_int_t)b->reconnects));
        json_object_set_new(o, "resent", json_integer((json_int_t)tot.resent));
        json_object_set_new(o, "resyncs", json_integer((json_int_t)tot.resyncs));
        json_object_set_new(tp, "flushes_per_s", json_real(fps));
        json_object_set_new(tp, "commands_per_s", json_real(fps * b->ncmds));
        json_object_set_new(o, "throughput", tp);
        json_object_set_new(lat, "outcome", lat_json(b->h_outcome));
        json_object_set_new(lat, "delta", lat_json(b->h_delta));
        if (b->rate > 0)
            json_object_set_new(lat, "send_lag", lat_json(b->h_lag));
        json_object_set_new(o, "latency_ms", lat);
        json_object_set_new(dl, "expected", json_integer((json_int_t)deltas_expected(b)));
        json_object_set_new(dl, "received", json_integer((json_int_t)b->deltas));
        json_object_set_new(o, "deltas", dl);
        if (b->ndocs <= PER_DOC_REPORT) {
            json_t *per = json_array();
            for (uint32_t d = 0; d < b->ndocs; d++) {
                json_t *e = json_object();
                json_object_set_new(e, "doc", json_string(b->docs[d]));
                json_object_set_new(e, "sent", json_integer((json_int_t)b->dstat[d].sent));
                json_object_set_new(e, "acked", json_integer((json_int_t)b->dstat[d].acked));
                json_object_set_new(e, "applied", json_integer((json_int_t)b->dstat[d].applied));
                json_object_set_new(e, "deltas", json_integer((json_int_t)b->dstat[d].deltas));
                json_array_append_new(per, e);
            }
            json_object_set_new(o, "per_doc", per);
        }
        json_object_set_new(o, "ok", json_boolean(ok));
        json_dumpf(o, stdout, JSON_COMPACT | JSON_PRESERVE_ORDER);
        putchar('\n');
        json_decref(o);
        return;
    }
    printf("bench: %u writers%s, %u subscribers (%u per document), %u documents, %u commands "
           "per flush (%s), %s\n",
           b->nwriters, b->writers_subscribe ? " (also subscribed)" : "", b->nsubs,
           b->nsubs_per_doc, b->ndocs, b->ncmds,
           b->ops == OPS_REPLACE_APPEND ? "replace-append" : "incr",
           b->rate > 0 ? "open loop" : "closed loop");
    printf("sent %" PRIu64 ", acked %" PRIu64 " (%" PRIu64 " applied, %" PRIu64
           " duplicates), failed %" PRIu64 ", pending %zu, in %.2f s\n",
           b->sent, b->acked, b->applied_flushes, b->dups, b->failed, b->flights.count, secs);
    printf("throughput: %.0f flushes/s, %.0f commands/s acked\n", fps, fps * b->ncmds);
    const hist_t *hs[3] = {b->h_outcome, b->h_delta, b->h_lag};
    const char *names[3] = {"flush->outcome", "flush->delta", "send lag"};
    for (int i = 0; i < (b->rate > 0 ? 3 : 2); i++) {
        if (!hs[i]->count) {
            printf("%-15s no samples\n", names[i]);
            continue;
        }
        printf("%-15s p50 %.2f ms, p90 %.2f ms, p99 %.2f ms, p99.9 %.2f ms, max %.2f ms (%" PRIu64
               " samples)\n",
               names[i], ms(hist_quantile(hs[i], 0.5)), ms(hist_quantile(hs[i], 0.9)),
               ms(hist_quantile(hs[i], 0.99)), ms(hist_quantile(hs[i], 0.999)), ms(hs[i]->max),
               hs[i]->count);
    }
    printf("deltas: %" PRIu64 " received, %" PRIu64 " expected\n", b->deltas, deltas_expected(b));
    printf("nacks: %" PRIu64, nacks);
    for (int c = 0; c <= FL_CODE__COUNT; c++)
        if (b->nacks[c])
            printf(" %s=%" PRIu64, c < FL_CODE__COUNT ? fl_code_name(c) : "other", b->nacks[c]);
    printf("; rejected:");
    bool any = false;
    for (int c = 0; c <= FL_CODE__COUNT; c++)
        if (b->rejected[c]) {
            printf(" %s=%" PRIu64, c < FL_CODE__COUNT ? fl_code_name(c) : "other",
                   b->rejected[c]);
            any = true;
        }
    printf("%s; reconnects %" PRIu64 ", resent %" PRIu64 ", resyncs %" PRIu64 "\n",
           any ? "" : " none", b->reconnects, tot.resent, tot.resyncs);
    printf("%s\n", ok ? "ok: every flush acknowledged" : "FAILED: not every flush acknowledged");
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
    flights_free(&b->flights);
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
    run(b);
    if (b->send_errors)
        fprintf(stderr, "flushline bench: %d flushes could not be sent (%s)\n", b->send_errors,
                b->send_error);
    bool ok = b->sent > 0 && b->acked == b->sent && b->flights.count == 0 && !b->send_errors;
    if (b->deltas < deltas_expected(b))
        fprintf(stderr, "flushline bench: warning: %" PRIu64 " of %" PRIu64
                        " deltas received (resyncs drop deltas)\n",
                b->deltas, deltas_expected(b));
    report(b, ok);
    rc = ok ? FL_EXIT_OK : FL_EXIT_FAIL;
fail:
    sigaction(SIGINT, &old_int, NULL);
    sigaction(SIGTERM, &old_term, NULL);
    teardown(b);
    free(b);
    fl_config_free(cfg);
    return rc;
}
