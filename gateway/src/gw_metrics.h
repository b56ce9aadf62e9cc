/* SPDX-License-Identifier: Apache-2.0 */
/*
 * gw_metrics: the gateway's metrics, registered once in one registry
 * (common/metrics.h) and shared by pointer with every module that counts.
 * Counters and gauges are atomic; the struct itself never changes after
 * gw_metrics_init.
 *
 * @locality gw_metrics_init/free: main thread; updates: any thread.
 */
#ifndef GW_METRICS_H
#define GW_METRICS_H

#include "flushline/metrics.h"

typedef struct gw_metrics_s {
    fl_metrics_t *reg;
    fl_gauge_t *connections, *subscriptions, *docs, *docs_live;
    fl_counter_t *frames_in, *bytes_in, *frames_out, *bytes_out;
    fl_metric_vec_t *nacks, *errors, *closes;
    fl_counter_t *slow_consumers, *origin_rejects, *auth_failures;
    fl_counter_t *deltas_out, *syncs, *resyncs, *produce_errors, *signals_in, *signals_out;
    fl_counter_t *http_requests;
    fl_histogram_t *fanout_ms;
    fl_histogram_t *handoff_ms;
    fl_histogram_t *write_ms;
    fl_counter_t *divergences;
} gw_metrics_t;

/* Registers every metric in a new registry. 0, or -1 on OOM (what was
 * made is freed by gw_metrics_free). */
int gw_metrics_init(gw_metrics_t *m);
void gw_metrics_free(gw_metrics_t *m);
/* Counts one more of code (an fl_code_t) in vec (nacks, errors). */
void gw_metrics_count_code(fl_metric_vec_t *vec, uint16_t code);

#endif
