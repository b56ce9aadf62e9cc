/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Unit tests for the metrics registry: the exact exposition text of a small
 * registry (HELP/TYPE lines, label and help escaping, histogram buckets),
 * registration errors, and lock-free updates from four threads summing up.
 */
#include <math.h>
#include <pthread.h>
#include <stdlib.h>

#include "fl_test.h"
#include "flushline/metrics.h"

static void test_render_exact(void)
{
    static const double bounds[] = {1, 2.5, 10};
    static const char *const codes[] = {"ok", "gap", "we\"ird\\\n"};
    fl_metrics_t *reg = fl_metrics_new();
    fl_counter_t *c = fl_metrics_counter(reg, "fl_flushes_total", "Flushes applied.");
    fl_gauge_t *g = fl_metrics_gauge(reg, "fl_lag", "Lag with a \\ and\na newline.");
    fl_histogram_t *h = fl_metrics_histogram(reg, "fl_apply_ms", "Apply time.", bounds, 3);
    fl_metric_vec_t *v =
        fl_metrics_counter_vec(reg, "fl_rejects_total", "Rejects by code.", "code", codes, 3);
    fl_metric_vec_t *p = fl_metrics_gauge_vec_n(reg, "fl_partition_lag", "Per partition.",
                                                "partition", 2);
    char *out = NULL;
    size_t len = 0;

    ASSERT_TRUE(reg && c && g && h && v && p);
    fl_counter_add(c, 41);
    fl_counter_inc(c);
    fl_gauge_set(g, 2.5);
    fl_gauge_add_int(g, -5);
    fl_histogram_observe(h, 0.5);
    fl_histogram_observe(h, 1);   /* le is inclusive */
    fl_histogram_observe(h, 2.6);
    fl_histogram_observe(h, 100); /* +Inf */
    fl_counter_add(fl_metric_vec_counter(v, 1), 3);
    fl_counter_inc(fl_metric_vec_counter(v, 2));
    fl_gauge_set_int(fl_metric_vec_gauge(p, 1), 7);
    ASSERT_EQ(fl_metric_vec_index(v, "gap"), 1);
    ASSERT_EQ(fl_metric_vec_index(v, "nope"), -1);
    ASSERT_EQ(fl_metric_vec_index(p, "1"), 1);

    ASSERT_EQ(fl_metrics_render(reg, &out, &len), 0);
    ASSERT_STR_EQ(out, "# HELP fl_flushes_total Flushes applied.\n"
                       "# TYPE fl_flushes_total counter\n"
                       "fl_flushes_total 42\n"
                       "# HELP fl_lag Lag with a \\\\ and\\na newline.\n"
                       "# TYPE fl_lag gauge\n"
                       "fl_lag -2.5\n"
                       "# HELP fl_apply_ms Apply time.\n"
                       "# TYPE fl_apply_ms histogram\n"
                       "fl_apply_ms_bucket{le=\"1\"} 2\n"
                       "fl_apply_ms_bucket{le=\"2.5\"} 2\n"
                       "fl_apply_ms_bucket{le=\"10\"} 3\n"
                       "fl_apply_ms_bucket{le=\"+Inf\"} 4\n"
                       "fl_apply_ms_sum 104.1\n"
                       "fl_apply_ms_count 4\n"
                       "# HELP fl_rejects_total Rejects by code.\n"
                       "# TYPE fl_rejects_total counter\n"
                       "fl_rejects_total{code=\"ok\"} 0\n"
                       "fl_rejects_total{code=\"gap\"} 3\n"
                       "fl_rejects_total{code=\"we\\\"ird\\\\\\n\"} 1\n"
                       "# HELP fl_partition_lag Per partition.\n"
                       "# TYPE fl_partition_lag gauge\n"
                       "fl_partition_lag{partition=\"0\"} 0\n"
                       "fl_partition_lag{partition=\"1\"} 7\n");
    ASSERT_EQ(len, strlen(out));
    free(out);
    fl_metrics_free(reg);
}

static void test_histogram_vec_and_specials(void)
{
    static const double bounds[] = {0.5};
    static const char *const parts[] = {"a"};
    fl_metrics_t *reg = fl_metrics_new();
    fl_metric_vec_t *hv =
        fl_metrics_histogram_vec(reg, "lat_ms", "L.", bounds, 1, "partition", parts, 1);
    fl_gauge_t *g = fl_metrics_gauge(reg, "inf", "");
    char *out = NULL;
    size_t len;

    ASSERT_TRUE(hv && g);
    fl_histogram_observe(fl_metric_vec_histogram(hv, 0), 0.25);
    fl_gauge_set(g, INFINITY);
    ASSERT_TRUE(fl_metric_vec_histogram(hv, 1) == NULL);
    ASSERT_TRUE(fl_metric_vec_counter(hv, 0) == NULL);
    ASSERT_EQ(fl_metrics_render(reg, &out, &len), 0);
    ASSERT_STR_EQ(out, "# HELP lat_ms L.\n"
                       "# TYPE lat_ms histogram\n"
                       "lat_ms_bucket{partition=\"a\",le=\"0.5\"} 1\n"
                       "lat_ms_bucket{partition=\"a\",le=\"+Inf\"} 1\n"
                       "lat_ms_sum{partition=\"a\"} 0.25\n"
                       "lat_ms_count{partition=\"a\"} 1\n"
                       "# HELP inf \n"
                       "# TYPE inf gauge\n"
                       "inf +Inf\n");
    free(out);
    fl_metrics_free(reg);
}

static void test_registration_errors(void)
{
    static const double bad[] = {2, 1};
    static const double ok[] = {1, 2};
    static const char *const vals[] = {"x"};
    fl_metrics_t *reg = fl_metrics_new();

    ASSERT_TRUE(fl_metrics_counter(reg, "a_total", "") != NULL);
    ASSERT_TRUE(fl_metrics_counter(reg, "a_total", "") == NULL);     /* duplicate */
    ASSERT_TRUE(fl_metrics_gauge(reg, "a_total", "") == NULL);       /* duplicate, other type */
    ASSERT_TRUE(fl_metrics_counter(reg, "9lives", "") == NULL);      /* bad first char */
    ASSERT_TRUE(fl_metrics_counter(reg, "has-dash", "") == NULL);
    ASSERT_TRUE(fl_metrics_counter(reg, "", "") == NULL);
    ASSERT_TRUE(fl_metrics_histogram(reg, "h1", "", bad, 2) == NULL); /* not increasing */
    ASSERT_TRUE(fl_metrics_histogram(reg, "h2", "", ok, 2) != NULL);
    ASSERT_TRUE(fl_metrics_counter_vec(reg, "v1", "", "le", vals, 1) == NULL);
    ASSERT_TRUE(fl_metrics_counter_vec(reg, "v2", "", "__x", vals, 1) == NULL);
    ASSERT_TRUE(fl_metrics_counter_vec(reg, "v3", "", "code", vals, 0) == NULL);
    ASSERT_TRUE(fl_metrics_counter_vec(reg, "v4", "", "code", vals, 1) != NULL);
    /* NULL handles are no-ops */
    fl_counter_inc(NULL);
    fl_gauge_set(NULL, 1);
    fl_histogram_observe(NULL, 1);
    ASSERT_EQ(fl_counter_value(NULL), 0);
    fl_metrics_free(reg);
    fl_metrics_free(NULL);
}

#define THREADS 4
#define ROUNDS 100000

typedef struct shared_s {
    fl_counter_t *c;
    fl_gauge_t *g;
    fl_histogram_t *h;
    fl_counter_t *part[2];
} shared_t;

static void *hammer(void *arg)
{
    shared_t *s = arg;
    for (int i = 0; i < ROUNDS; i++) {
        fl_counter_inc(s->c);
        fl_gauge_add(s->g, 0.5);
        fl_histogram_observe(s->h, (double)(i % 4));
        fl_counter_add(s->part[i & 1], 2);
    }
    return NULL;
}

static void test_concurrent_updates(void)
{
    static const double bounds[] = {1, 2};
    fl_metrics_t *reg = fl_metrics_new();
    fl_metric_vec_t *pv = fl_metrics_counter_vec_n(reg, "p_total", "", "partition", 2);
    shared_t s = {
        .c = fl_metrics_counter(reg, "c_total", ""),
        .g = fl_metrics_gauge(reg, "g", ""),
        .h = fl_metrics_histogram(reg, "h", "", bounds, 2),
        .part = {fl_metric_vec_counter(pv, 0), fl_metric_vec_counter(pv, 1)},
    };
    pthread_t th[THREADS];
    char *out = NULL;
    size_t len;

    for (int i = 0; i < THREADS; i++)
        ASSERT_EQ(pthread_create(&th[i], NULL, hammer, &s), 0);
    /* rendering while others write must be safe */
    ASSERT_EQ(fl_metrics_render(reg, &out, &len), 0);
    free(out);
    for (int i = 0; i < THREADS; i++)
        pthread_join(th[i], NULL);

    ASSERT_EQ(fl_counter_value(s.c), THREADS * ROUNDS);
    ASSERT_TRUE(fl_gauge_value(s.g) == THREADS * ROUNDS * 0.5);
    ASSERT_EQ(fl_histogram_count(s.h), THREADS * ROUNDS);
    /* values 0,1,2,3 in turn: sum is 1.5 per observation, exact in binary */
    ASSERT_TRUE(fl_histogram_sum(s.h) == THREADS * ROUNDS * 1.5);
    ASSERT_EQ(fl_counter_value(s.part[0]), THREADS * ROUNDS);
    ASSERT_EQ(fl_counter_value(s.part[1]), THREADS * ROUNDS);
    ASSERT_EQ(fl_metrics_render(reg, &out, &len), 0);
    ASSERT_TRUE(strstr(out, "c_total 400000\n") != NULL);
    ASSERT_TRUE(strstr(out, "h_bucket{le=\"1\"} 200000\n") != NULL);
    ASSERT_TRUE(strstr(out, "h_bucket{le=\"2\"} 300000\n") != NULL);
    ASSERT_TRUE(strstr(out, "h_bucket{le=\"+Inf\"} 400000\n") != NULL);
    ASSERT_TRUE(strstr(out, "h_count 400000\n") != NULL);
    free(out);
    fl_metrics_free(reg);
}

int main(void)
{
    RUN(test_render_exact);
    RUN(test_histogram_vec_and_specials);
    RUN(test_registration_errors);
    RUN(test_concurrent_updates);
    return fl_test_done();
}
