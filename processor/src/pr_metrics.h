/* SPDX-License-Identifier: Apache-2.0 */
/*
 * pr_metrics: the processor's metrics in the shared registry (metrics.h).
 * Every name and meaning is listed in docs/operations.md. The handles are
 * updated by the apply thread; /metrics renders them on the HTTP thread
 * (lock-free atomics).
 */
#ifndef PR_METRICS_H
#define PR_METRICS_H

#include <stddef.h>

#include "flushline/metrics.h"
#include "flushline/task.h"

typedef struct pr_metrics_s {
    fl_metrics_t *reg;
    fl_counter_t *records_in, *bad_records, *flushes, *duplicates, *syncs;
    fl_counter_t *cmds_applied, *cmds_rejected, *commits, *aborts;
    fl_counter_t *snapshots, *checkpoints, *restores, *events_restored;
    fl_counter_t *commit_us, *restore_ms;
    fl_counter_t *rules_records, *rules_bad;
    fl_metric_vec_t *lag; /* per partition; cleared: not owned */
    fl_gauge_t *docs;
    /* From a commands record's timestamp to its outcome's produce call, ms */
    fl_histogram_t *record_to_outcome_ms;
} pr_metrics_t;

/* Registers every metric, lag for partitions 0..partitions-1 (cleared).
 * NULL on OOM. */
pr_metrics_t *pr_metrics_new(int partitions);
void pr_metrics_free(pr_metrics_t *m); /* NULL safe */

/* The lag gauge of partition p (NULL when out of range). */
fl_gauge_t *pr_metrics_lag(pr_metrics_t *m, int p);

/* Counts what one applied commands record did (a flush or a sync). */
void pr_metrics_count_task(pr_metrics_t *m, const fl_task_out_t *out);

/* Prometheus text (malloc'd), or NULL. */
char *pr_metrics_render(const pr_metrics_t *m, size_t *len);

#endif
