/* SPDX-License-Identifier: Apache-2.0 */
/* pr_metrics: registration in the order /metrics has always listed them. */
#include "pr_metrics.h"

#include <stdlib.h>

#define NAME(n) "flushline_processor_" n

pr_metrics_t *pr_metrics_new(int partitions)
{
    pr_metrics_t *m = calloc(1, sizeof *m);
    fl_metrics_t *r;
    if (!m || !(m->reg = r = fl_metrics_new())) {
        free(m);
        return NULL;
    }
    m->records_in = fl_metrics_counter(r, NAME("records_in_total"), "Records consumed from commands.");
    m->bad_records = fl_metrics_counter(r, NAME("bad_records_total"),
                                        "Records skipped as undecodable or misplaced.");
    m->flushes = fl_metrics_counter(r, NAME("flushes_total"), "Flushes answered with an outcome.");
    m->duplicates = fl_metrics_counter(r, NAME("duplicates_total"),
                                       "Flushes answered from the dedup table.");
    m->syncs = fl_metrics_counter(r, NAME("syncs_total"), "Sync requests answered.");
    m->cmds_applied = fl_metrics_counter(r, NAME("commands_applied_total"), "Commands applied.");
    m->cmds_rejected = fl_metrics_counter(r, NAME("commands_rejected_total"), "Commands rejected.");
    m->commits = fl_metrics_counter(r, NAME("commits_total"), "Transactions committed.");
    m->aborts = fl_metrics_counter(r, NAME("aborts_total"), "Transactions aborted.");
    m->snapshots = fl_metrics_counter(r, NAME("snapshots_total"), "Snapshots written.");
    m->checkpoints = fl_metrics_counter(r, NAME("checkpoints_total"),
                                        "Partition checkpoints written.");
    m->restores = fl_metrics_counter(r, NAME("restores_total"), "Partitions restored.");
    m->events_restored = fl_metrics_counter(r, NAME("restored_events_total"),
                                            "Events replayed by restores.");
    m->commit_us = fl_metrics_counter(r, NAME("commit_microseconds_total"),
                                      "Time spent committing transactions.");
    m->restore_ms = fl_metrics_counter(r, NAME("restore_milliseconds_total"),
                                       "Time spent restoring partitions.");
    m->lag = fl_metrics_gauge_vec_n(r, NAME("lag"), "Commands records behind the high watermark.",
                                    "partition", (size_t)partitions);
    m->docs = fl_metrics_gauge(r, NAME("documents"), "Documents in memory.");
    if (!m->records_in || !m->bad_records || !m->flushes || !m->duplicates || !m->syncs ||
        !m->cmds_applied || !m->cmds_rejected || !m->commits || !m->aborts || !m->snapshots ||
        !m->checkpoints || !m->restores || !m->events_restored || !m->commit_us ||
        !m->restore_ms || !m->lag || !m->docs) {
        pr_metrics_free(m);
        return NULL;
    }
    for (int p = 0; p < partitions; p++)
        fl_gauge_clear(pr_metrics_lag(m, p));
    return m;
}

void pr_metrics_free(pr_metrics_t *m)
{
    if (!m)
        return;
    fl_metrics_free(m->reg);
    free(m);
}

fl_gauge_t *pr_metrics_lag(pr_metrics_t *m, int p)
{
    return p >= 0 ? fl_metric_vec_gauge(m->lag, (size_t)p) : NULL;
}

char *pr_metrics_render(const pr_metrics_t *m, size_t *len)
{
    char *out;
    return fl_metrics_render(m->reg, &out, len) == 0 ? out : NULL;
}
