/* SPDX-License-Identifier: Apache-2.0 */
/*
 * gw_metrics: the gateway's metric set (see gw_metrics.h; the names and
 * their meaning are listed in docs/gateway.md).
 */
#include <stddef.h>
#include <string.h>

#include "flushline/errors.h"
#include "gw_metrics.h"

enum { GAUGE, COUNTER, BY_CODE, BY_CLOSE, LATENCY };

/* The metrics in the order /metrics lists them: kind, name, help, and
 * where the handle goes in gw_metrics_t. */
static const struct {
    int kind;
    const char *name, *help;
    size_t off;
} metrics[] = {
#define M(kind, field, name, help) {kind, "flushline_gateway_" name, help, offsetof(gw_metrics_t, field)}
    M(GAUGE, connections, "connections", "Open WebSocket connections."),
    M(GAUGE, subscriptions, "subscriptions", "Subscriptions of all connections."),
    M(GAUGE, docs, "docs", "Documents held (live or syncing)."),
    M(GAUGE, docs_live, "docs_live", "Documents with a live copy."),
    M(COUNTER, frames_in, "frames_in_total", "WebSocket messages received."),
    M(COUNTER, bytes_in, "bytes_in_total", "Bytes of WebSocket messages received."),
    M(COUNTER, frames_out, "frames_out_total", "WebSocket messages sent."),
    M(COUNTER, bytes_out, "bytes_out_total", "Bytes of WebSocket messages sent."),
    M(BY_CODE, nacks, "nacks_total", "Nacks sent, by code."),
    M(BY_CODE, errors, "errors_total", "Error messages sent, by code."),
    M(BY_CLOSE, closes, "closes_total", "Connections closed by the gateway, by close code."),
    M(COUNTER, slow_consumers, "slow_consumer_closes_total", "Connections closed because their send queue was full."),
    M(COUNTER, origin_rejects, "origin_rejects_total", "WebSocket upgrades refused for their Origin."),
    M(COUNTER, auth_failures, "auth_failures_total", "Tokens refused."),
    M(COUNTER, deltas_out, "deltas_total", "Applied outcomes fanned out."),
    M(COUNTER, syncs, "syncs_total", "Sync requests produced."),
    M(COUNTER, resyncs, "resyncs_total", "Live copies dropped and synced again."),
    M(COUNTER, produce_errors, "produce_errors_total", "Records that could not be produced."),
    M(COUNTER, signals_in, "signals_in_total", "Signals published."),
    M(COUNTER, signals_out, "signals_out_total", "Signals fanned out."),
    M(COUNTER, http_requests, "http_requests_total", "HTTP requests."),
    M(COUNTER, divergences, "divergences_total", "Documents whose live copy diverged from a processor's re-run (same version, another chain hash): resynced with a snapshot to every subscriber."),
    M(LATENCY, fanout_ms, "fanout_latency_ms", "From the outcome's Kafka timestamp to its fan-out to the subscribers' send queues (wall clock), ms."),
    M(LATENCY, write_ms, "write_latency_ms", "From the outcome's Kafka timestamp to the write of its delta to a subscriber's socket (wall clock), ms; one observation per subscriber."),
    M(LATENCY, handoff_ms, "handoff_latency_ms", "From the Kafka consumer thread queuing a record to the service thread taking it, ms."),
#undef M
};

int gw_metrics_init(gw_metrics_t *m)
{
    static const double lat[] = {FL_METRICS_LATENCY_MS_BUCKETS};
    static const char *const codes[] = {"bad_frame",     "unknown_type",   "unsupported_version",
                                        "unauthorized",  "token_expired",  "doc_forbidden",
                                        "rate_limited",  "unavailable",    "limit",
                                        "not_subscribed", "bad_doc_id",    "internal"};
    static const char *const closes[] = {"4000", "4001", "4002", "4003", "4004",
                                         "4100", "4101", "4102", "4200", "4201"};
    fl_metrics_t *r;
    memset(m, 0, sizeof *m);
    if (!(m->reg = r = fl_metrics_new()))
        return -1;
    for (size_t i = 0; i < sizeof metrics / sizeof metrics[0]; i++) {
        void *h = NULL;
        const char *name = metrics[i].name, *help = metrics[i].help;
        switch (metrics[i].kind) {
        case GAUGE:
            h = fl_metrics_gauge(r, name, help);
            break;
        case COUNTER:
            h = fl_metrics_counter(r, name, help);
            break;
        case BY_CODE:
            h = fl_metrics_counter_vec(r, name, help, "code", codes, sizeof codes / sizeof *codes);
            break;
        case BY_CLOSE:
            h = fl_metrics_counter_vec(r, name, help, "code", closes,
                                       sizeof closes / sizeof *closes);
            break;
        default:
            h = fl_metrics_histogram(r, name, help, lat, sizeof lat / sizeof lat[0]);
            break;
        }
        if (!h)
            return -1;
        memcpy((char *)m + metrics[i].off, &h, sizeof h); /* a handle pointer */
    }
    return 0;
}

void gw_metrics_free(gw_metrics_t *m)
{
    fl_metrics_free(m->reg);
    memset(m, 0, sizeof *m);
}

void gw_metrics_count_code(fl_metric_vec_t *vec, uint16_t code)
{
    long i = fl_metric_vec_index(vec, fl_code_name(code));
    if (i >= 0)
        fl_counter_inc(fl_metric_vec_counter(vec, (size_t)i));
}
