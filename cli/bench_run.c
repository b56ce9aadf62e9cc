/* SPDX-License-Identifier: Apache-2.0 */
/*
 * bench_run: the run of `flushline bench`: choosing documents by the
 * contention model, sending flushes open- or closed-loop, the clients'
 * callbacks that match outcomes and deltas to their scheduled times, and
 * the loop until the duration or the limit and then the drain.
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

/* SIGINT count: the first stops sending, a second ends the drain at once. */
volatile sig_atomic_t bn_interrupted;


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
    if (bn_flights_put(&b->flights, w->idx, d, seq, t_sched) != 0) {
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
    if (b->sending_done || bn_interrupted)
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

void bn_on_status(fl_client_t *client, void *opaque, fl_client_state_t state, int close_code)
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

void bn_on_welcome(fl_client_t *client, void *opaque, const fl_wire_welcome_t *welcome)
{
    member_t *m = opaque;
    (void)client;
    m->b->gws[m->gw].rate = welcome->rate;
    m->b->gws[m->gw].burst = welcome->burst;
}

void bn_on_delta(fl_client_t *client, void *opaque, fl_slice_t doc,
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
            bn_hist_add(b->h_delta, now - c->value.u.i);
            break;
        }
    }
}

void bn_on_outcome(fl_client_t *client, void *opaque, const fl_outcome_t *o)
{
    member_t *m = opaque;
    bench_t *b = m->b;
    long d = doc_index(b, o->doc);
    int64_t t, now = fl_clock_mono_ns();
    (void)client;
    if (d < 0 || bn_flights_take(&b->flights, m->idx, (uint32_t)d, o->seq, &t) != 0) {
        b->unmatched++; /* a second answer to the same flush */
        return;
    }
    bn_hist_add(b->h_outcome, now - t);
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

void bn_on_nack(fl_client_t *client, void *opaque, const fl_client_nack_t *nack)
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
    if (bn_flights_take(&b->flights, m->idx, (uint32_t)d, nack->seq, &t) == 0) {
        b->failed++;
        if (m->inflight)
            m->inflight--;
        if (b->rate == 0)
            refill(b, m);
    }
}


double bn_ms(uint64_t ns)
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
            bn_ms(bn_hist_quantile(b->h_outcome, 0.99)), nacks, b->reconnects, b->flights.count,
            b->deltas);
    *last_acked = b->acked;
}

/* Expected deltas: every applied flush, once per subscriber of its document
 * (and once per writer when writers subscribe to every document). */
uint64_t bn_deltas_expected(const bench_t *b)
{
    return b->applied_flushes * (b->nsubs_per_doc + (b->writers_subscribe ? b->nwriters : 0));
}

void bn_run(bench_t *b)
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
                bn_hist_add(b->h_lag, now - due);
            }
        }
        if (!b->sending_done && (!may_send(b, now) || b->send_errors)) {
            b->sending_done = true;
            b->t_end_send = now;
            drain_deadline = now + (int64_t)(b->drain_timeout_s * 1e9);
        }
        if (b->sending_done && ((b->flights.count == 0 && b->deltas >= bn_deltas_expected(b)) ||
                                now >= drain_deadline || bn_interrupted > 1))
            break;
        if (!b->quiet && now >= next_log) {
            progress(b, now, &last_acked);
            next_log += 1000000000;
            if (next_log < now)
                next_log = now + 1000000000;
        }
        if (bn_interrupted == 1 && b->sending_done && drain_deadline > now + 2000000000)
            drain_deadline = now + 2000000000; /* Ctrl-C: a short drain */
        /* Rounded up: a 0 ms wait until a flush due in under a millisecond
         * would spin the loop, taking a core from the system measured (a
         * flush sent up to 1 ms late counts that in its latency). */
        int wait_ms = (int)((wait_ns + 999999) / 1000000);
        if (fl_client_service(b->ctx, wait_ms) < 0)
            break;
    }
}
