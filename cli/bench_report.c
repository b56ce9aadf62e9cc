/* SPDX-License-Identifier: Apache-2.0 */
/*
 * bench_report: the results of `flushline bench`, as text or as JSON
 * (throughput, latency quantiles, codes, per-document counts).
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

/* ---- results ---------------------------------------------------------------------- */

static json_t *lat_json(const hist_t *h)
{
    json_t *o = json_object();
    json_object_set_new(o, "count", json_integer((json_int_t)h->count));
    if (h->count) {
        json_object_set_new(o, "p50", json_real(bn_ms(bn_hist_quantile(h, 0.50))));
        json_object_set_new(o, "p90", json_real(bn_ms(bn_hist_quantile(h, 0.90))));
        json_object_set_new(o, "p99", json_real(bn_ms(bn_hist_quantile(h, 0.99))));
        json_object_set_new(o, "p999", json_real(bn_ms(bn_hist_quantile(h, 0.999))));
        json_object_set_new(o, "max", json_real(bn_ms(h->max)));
        json_object_set_new(o, "min", json_real(bn_ms(h->min)));
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

/* Per document counts, when there are few documents. */
static void per_doc_json(const bench_t *b, json_t *o)
{
    if (b->ndocs > PER_DOC_REPORT)
        return;
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

/* The results as one JSON line. */
static void report_json(const bench_t *b, bool ok, double secs, double fps, uint64_t nacks,
                        const fl_client_stats_t *tot)
{
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
    json_object_set_new(o, "resent", json_integer((json_int_t)tot->resent));
    json_object_set_new(o, "resyncs", json_integer((json_int_t)tot->resyncs));
    json_object_set_new(tp, "flushes_per_s", json_real(fps));
    json_object_set_new(tp, "commands_per_s", json_real(fps * b->ncmds));
    json_object_set_new(o, "throughput", tp);
    json_object_set_new(lat, "outcome", lat_json(b->h_outcome));
    json_object_set_new(lat, "delta", lat_json(b->h_delta));
    if (b->rate > 0)
        json_object_set_new(lat, "send_lag", lat_json(b->h_lag));
    json_object_set_new(o, "latency_ms", lat);
    json_object_set_new(dl, "expected", json_integer((json_int_t)bn_deltas_expected(b)));
    json_object_set_new(dl, "received", json_integer((json_int_t)b->deltas));
    json_object_set_new(o, "deltas", dl);
    per_doc_json(b, o);
    json_object_set_new(o, "ok", json_boolean(ok));
    json_dumpf(o, stdout, JSON_COMPACT | JSON_PRESERVE_ORDER);
    putchar('\n');
    json_decref(o);
}

/* The results as text. */
static void report_text(const bench_t *b, bool ok, double secs, double fps, uint64_t nacks,
                        const fl_client_stats_t *tot)
{
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
               names[i], bn_ms(bn_hist_quantile(hs[i], 0.5)), bn_ms(bn_hist_quantile(hs[i], 0.9)),
               bn_ms(bn_hist_quantile(hs[i], 0.99)), bn_ms(bn_hist_quantile(hs[i], 0.999)),
               bn_ms(hs[i]->max), hs[i]->count);
    }
    printf("deltas: %" PRIu64 " received, %" PRIu64 " expected\n", b->deltas,
           bn_deltas_expected(b));
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
           any ? "" : " none", b->reconnects, tot->resent, tot->resyncs);
    printf("%s\n", ok ? "ok: every flush acknowledged" : "FAILED: not every flush acknowledged");
}

void bn_report(const bench_t *b, bool ok)
{
    int64_t t_end = b->t_last_ack > b->t0 ? b->t_last_ack : fl_clock_mono_ns();
    double secs = (double)(t_end - b->t0) / 1e9;
    double fps = secs > 0 ? (double)b->acked / secs : 0;
    uint64_t nacks = 0;
    fl_client_stats_t tot;
    client_totals(b, &tot);
    for (int c = 0; c <= FL_CODE__COUNT; c++)
        nacks += b->nacks[c];
    if (b->json)
        report_json(b, ok, secs, fps, nacks, &tot);
    else
        report_text(b, ok, secs, fps, nacks, &tot);
}
