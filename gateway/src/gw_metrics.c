/* SPDX-License-Identifier: Apache-2.0 */
/*
 * gw_metrics: the gateway's metric set (see gw_metrics.h; the names and
 * their meaning are listed in docs/gateway.md).
 */
#include <string.h>

#include "flushline/errors.h"
#include "gw_metrics.h"

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
#define NC sizeof codes / sizeof codes[0]
    if (!(m->reg = r = fl_metrics_new()))
        return -1;
    m->connections = fl_metrics_gauge(r, "flushline_gateway_connections", "Open WebSocket connections.");
    m->subscriptions = fl_metrics_gauge(r, "flushline_gateway_subscriptions", "Subscriptions of all connections.");
    m->docs = fl_metrics_gauge(r, "flushline_gateway_docs", "Documents held (live or syncing).");
    m->docs_live = fl_metrics_gauge(r, "flushline_gateway_docs_live", "Documents with a live copy.");
    m->frames_in = fl_metrics_counter(r, "flushline_gateway_frames_in_total", "WebSocket messages received.");
    m->bytes_in = fl_metrics_counter(r, "flushline_gateway_bytes_in_total", "Bytes of WebSocket messages received.");
    m->frames_out = fl_metrics_counter(r, "flushline_gateway_frames_out_total", "WebSocket messages sent.");
    m->bytes_out = fl_metrics_counter(r, "flushline_gateway_bytes_out_total", "Bytes of WebSocket messages sent.");
    m->nacks = fl_metrics_counter_vec(r, "flushline_gateway_nacks_total", "Nacks sent, by code.", "code", codes, NC);
    m->errors = fl_metrics_counter_vec(r, "flushline_gateway_errors_total", "Error messages sent, by code.", "code", codes, NC);
    m->closes = fl_metrics_counter_vec(r, "flushline_gateway_closes_total", "Connections closed by the gateway, by close code.", "code", closes, sizeof closes / sizeof closes[0]);
    m->slow_consumers = fl_metrics_counter(r, "flushline_gateway_slow_consumer_closes_total", "Connections closed because their send queue was full.");
    m->origin_rejects = fl_metrics_counter(r, "flushline_gateway_origin_rejects_total", "WebSocket upgrades refused for their Origin.");
    m->auth_failures = fl_metrics_counter(r, "flushline_gateway_auth_failures_total", "Tokens refused.");
    m->deltas_out = fl_metrics_counter(r, "flushline_gateway_deltas_total", "Applied outcomes fanned out.");
    m->syncs = fl_metrics_counter(r, "flushline_gateway_syncs_total", "Sync requests produced.");
    m->resyncs = fl_metrics_counter(r, "flushline_gateway_resyncs_total", "Live copies dropped and synced again.");
    m->produce_errors = fl_metrics_counter(r, "flushline_gateway_produce_errors_total", "Records that could not be produced.");
    m->signals_in = fl_metrics_counter(r, "flushline_gateway_signals_in_total", "Signals published.");
    m->signals_out = fl_metrics_counter(r, "flushline_gateway_signals_out_total", "Signals fanned out.");
    m->http_requests = fl_metrics_counter(r, "flushline_gateway_http_requests_total", "HTTP requests.");
    m->fanout_ms = fl_metrics_histogram(r, "flushline_gateway_fanout_latency_ms", "From the outcome's Kafka timestamp to its fan-out, ms.", lat, sizeof lat / sizeof lat[0]);
#undef NC
    return m->connections && m->fanout_ms && m->nacks && m->closes ? 0 : -1;
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
