/* SPDX-License-Identifier: Apache-2.0 */
/*
 * bench_int: internals shared by `flushline bench`'s files: cmd_bench.c
 * parses the options, sets the clients up and connects them,
 * bench_run.c sends flushes and takes outcomes and deltas in,
 * bench_report.c prints the results, bench_stats.c holds the latency
 * histograms and the table of flushes in flight.
 */
#ifndef FL_BENCH_INT_H
#define FL_BENCH_INT_H

#include <signal.h>
#include <stdbool.h>
#include <stdint.h>

#include "flushline/client.h"
#include "flushline/hmap.h"

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

/* ---- bench_stats.c ---- */

/* Adds one sample (ns; negative ones count as 0). */
void bn_hist_add(hist_t *h, int64_t v);
/* The value at quantile q (0..1]: the highest value of the bucket holding
 * the ceil(q * count)-th smallest sample, never above the exact maximum. */
uint64_t bn_hist_quantile(const hist_t *h, double q);
/* Records flush (writer, doc, seq) scheduled at t. 0, or -1 on OOM. */
int bn_flights_put(flights_t *f, uint32_t writer, uint32_t doc, uint64_t seq, int64_t t);
/* Removes the entry; its scheduled time in *t. 0, or -1 when absent. */
int bn_flights_take(flights_t *f, uint32_t writer, uint32_t doc, uint64_t seq, int64_t *t);
void bn_flights_free(flights_t *f);

/* ---- bench_run.c ---- */

extern volatile sig_atomic_t bn_interrupted;
/* The clients' callbacks. */
void bn_on_status(fl_client_t *client, void *opaque, fl_client_state_t state, int close_code);
void bn_on_welcome(fl_client_t *client, void *opaque, const fl_wire_welcome_t *welcome);
void bn_on_delta(fl_client_t *client, void *opaque, fl_slice_t doc,
                 const fl_wire_delta_t *delta);
void bn_on_outcome(fl_client_t *client, void *opaque, const fl_outcome_t *o);
void bn_on_nack(fl_client_t *client, void *opaque, const fl_client_nack_t *nack);
/* Nanoseconds as milliseconds. */
double bn_ms(uint64_t ns);
/* Expected deltas: every applied flush, once per subscriber of its document
 * (and once per writer when writers subscribe to every document). */
uint64_t bn_deltas_expected(const bench_t *b);
/* Sends until the duration or the limit, then drains the answers. */
void bn_run(bench_t *b);

/* ---- bench_report.c ---- */

/* Prints the results (text, or JSON with --json); ok: the run passed. */
void bn_report(const bench_t *b, bool ok);

#endif
