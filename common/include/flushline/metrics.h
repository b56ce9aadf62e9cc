/* SPDX-License-Identifier: Apache-2.0 */
/*
 * metrics: a tiny Prometheus registry. Counters (uint64), gauges (double,
 * with integer helpers) and histograms with fixed buckets, each either plain
 * or as a "vec": one label with a fixed set of values chosen at registration
 * (partitions "0".."N-1", error codes, ...). Everything is registered at
 * start-up; afterwards updates are lock-free C11 atomics from any thread and
 * fl_metrics_render() writes the text exposition format (version 0.0.4).
 *
 * Update functions accept a NULL handle and do nothing, so a component can run
 * with metrics switched off by simply not registering them.
 *
 * @locality registration and free: one thread, before/after any update or
 * render; updates and render: any thread, concurrently.
 */
#ifndef FLUSHLINE_METRICS_H
#define FLUSHLINE_METRICS_H

#include <stddef.h>
#include <stdint.h>

typedef struct fl_metrics_s fl_metrics_t;
typedef struct fl_counter_s fl_counter_t;
typedef struct fl_gauge_s fl_gauge_t;
typedef struct fl_histogram_s fl_histogram_t;
typedef struct fl_metric_vec_s fl_metric_vec_t;

/* Latency buckets in milliseconds suitable for most of Flushline's timings. */
#define FL_METRICS_LATENCY_MS_BUCKETS 0.5, 1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 5000

/* A new, empty registry; NULL when out of memory. */
fl_metrics_t *fl_metrics_new(void);
/* Frees the registry and every metric handle it returned. NULL is fine. */
void fl_metrics_free(fl_metrics_t *reg);

/*
 * Registration. name must match [a-zA-Z_:][a-zA-Z0-9_:]* and be new in the
 * registry; help is any text (escaped on output). Both are copied. Histogram
 * bounds are the bucket upper limits, strictly increasing and finite (the
 * +Inf bucket is implicit); at most 32. Each returns NULL on an invalid or
 * duplicate name, bad bounds, or out of memory. The handles are owned by the
 * registry and live until fl_metrics_free().
 */
fl_counter_t *fl_metrics_counter(fl_metrics_t *reg, const char *name, const char *help);
fl_gauge_t *fl_metrics_gauge(fl_metrics_t *reg, const char *name, const char *help);
fl_histogram_t *fl_metrics_histogram(fl_metrics_t *reg, const char *name, const char *help,
                                     const double *bounds, size_t nbounds);

/*
 * Labelled families: one label (name valid like a metric name, not "le" and
 * not starting with "__") with the values given (copied; at least one). A vec
 * has one child per value, in the order given; pick one with the accessors
 * below. The _n variants use the values "0".."n-1" (partitions).
 */
fl_metric_vec_t *fl_metrics_counter_vec(fl_metrics_t *reg, const char *name, const char *help,
                                        const char *label, const char *const *values, size_t n);
fl_metric_vec_t *fl_metrics_gauge_vec(fl_metrics_t *reg, const char *name, const char *help,
                                      const char *label, const char *const *values, size_t n);
fl_metric_vec_t *fl_metrics_histogram_vec(fl_metrics_t *reg, const char *name, const char *help,
                                          const double *bounds, size_t nbounds, const char *label,
                                          const char *const *values, size_t n);
fl_metric_vec_t *fl_metrics_counter_vec_n(fl_metrics_t *reg, const char *name, const char *help,
                                          const char *label, size_t n);
fl_metric_vec_t *fl_metrics_gauge_vec_n(fl_metrics_t *reg, const char *name, const char *help,
                                        const char *label, size_t n);

/* The child for value index i, or NULL when i is out of range, vec is NULL,
 * or the vec is of another type. */
fl_counter_t *fl_metric_vec_counter(fl_metric_vec_t *vec, size_t i);
fl_gauge_t *fl_metric_vec_gauge(fl_metric_vec_t *vec, size_t i);
fl_histogram_t *fl_metric_vec_histogram(fl_metric_vec_t *vec, size_t i);
/* The index of a label value (exact match), or -1. Linear: cache it. */
long fl_metric_vec_index(const fl_metric_vec_t *vec, const char *value);

/* Updates: lock-free, any thread; NULL handles are ignored. */
void fl_counter_add(fl_counter_t *c, uint64_t n);
void fl_counter_inc(fl_counter_t *c);
uint64_t fl_counter_value(const fl_counter_t *c);

void fl_gauge_set(fl_gauge_t *g, double v);
void fl_gauge_add(fl_gauge_t *g, double delta);
void fl_gauge_set_int(fl_gauge_t *g, int64_t v);
void fl_gauge_add_int(fl_gauge_t *g, int64_t delta);
double fl_gauge_value(const fl_gauge_t *g);
/* Takes the gauge's series out of the exposition until its next
 * fl_gauge_set (a labelled child that means nothing now, e.g. the lag of a
 * partition not owned). Its value reads as NaN meanwhile. */
void fl_gauge_clear(fl_gauge_t *g);

/* Counts v in the first bucket whose bound is >= v (Prometheus "le"). */
void fl_histogram_observe(fl_histogram_t *h, double v);
uint64_t fl_histogram_count(const fl_histogram_t *h);
double fl_histogram_sum(const fl_histogram_t *h);

/*
 * Renders every metric in registration order into *out (malloc'd, NUL
 * terminated, caller frees) with its length in *len. Values read while
 * other threads update are each atomic but not a joint snapshot (as in every
 * Prometheus client). 0, or -ENOMEM.
 */
int fl_metrics_render(const fl_metrics_t *reg, char **out, size_t *len);

/* Content-Type of the rendered text. */
#define FL_METRICS_CONTENT_TYPE "text/plain; version=0.0.4; charset=utf-8"

#endif
