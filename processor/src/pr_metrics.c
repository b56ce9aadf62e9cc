/* SPDX-License-Identifier: Apache-2.0 */
/* pr_metrics: registration in the order /metrics has always listed them. */
#include "pr_metrics.h"

#include <stddef.h>
#include <stdlib.h>

#define NAME(n) "flushline_processor_" n

/* The counters, in the order /metrics has always listed them. */
#define COUNTER(field, name, help) {offsetof(pr_metrics_t, field), NAME(name), help}
static const struct {
    size_t offset;
    const char *name, *help;
} counters[] = {
    COUNTER(records_in, "records_in_total", "Records consumed from commands."),
    COUNTER(bad_records, "bad_records_total", "Records skipped as undecodable or misplaced."),
    COUNTER(flushes, "flushes_total", "Flushes answered with an outcome."),
    COUNTER(duplicates, "duplicates_total", "Flushes answered from the dedup table."),
    COUNTER(syncs, "syncs_total", "Sync requests answered."),
    COUNTER(cmds_applied, "commands_applied_total", "Commands applied."),
    COUNTER(cmds_rejected, "commands_rejected_total", "Commands rejected."),
    COUNTER(commits, "commits_total", "Transactions committed."),
    COUNTER(aborts, "aborts_total", "Transactions aborted."),
    COUNTER(snapshots, "snapshots_total", "Snapshots written."),
    COUNTER(checkpoints, "checkpoints_total", "Partition checkpoints written."),
    COUNTER(restores, "restores_total", "Partitions restored."),
    COUNTER(events_restored, "restored_events_total", "Events replayed by restores."),
    COUNTER(commit_us, "commit_microseconds_total", "Time spent committing transactions."),
    COUNTER(restore_ms, "restore_milliseconds_total", "Time spent restoring partitions."),
    COUNTER(rules_records, "rules_records_total", "Rules records put in force."),
    COUNTER(rules_bad, "rules_records_bad_total",
            "Rules records skipped as undecodable or not a valid rule set."),
};
#undef COUNTER

void pr_metrics_free(pr_metrics_t *m)
{
    if (m)
        fl_metrics_free(m->reg);
    free(m);
}

pr_metrics_t *pr_metrics_new(int partitions)
{
    static const double lat[] = {FL_METRICS_LATENCY_MS_BUCKETS};
    pr_metrics_t *m = calloc(1, sizeof *m);
    if (!m || !(m->reg = fl_metrics_new())) {
        free(m);
        return NULL;
    }
    for (size_t i = 0; i < sizeof counters / sizeof counters[0]; i++) {
        fl_counter_t **c = (fl_counter_t **)((char *)m + counters[i].offset);
        if (!(*c = fl_metrics_counter(m->reg, counters[i].name, counters[i].help)))
            goto fail;
    }
    m->lag = fl_metrics_gauge_vec_n(m->reg, NAME("lag"),
                                    "Commands records behind the high watermark.", "partition",
                                    (size_t)partitions);
    m->docs = fl_metrics_gauge(m->reg, NAME("documents"), "Documents in memory.");
    m->record_to_outcome_ms = fl_metrics_histogram(
        m->reg, NAME("record_to_outcome_ms"),
        "From a flush record's Kafka timestamp to its outcome's produce call (wall clock), ms.",
        lat, sizeof lat / sizeof lat[0]);
    if (!m->lag || !m->docs || !m->record_to_outcome_ms)
        goto fail;
    for (int p = 0; p < partitions; p++)
        fl_gauge_clear(pr_metrics_lag(m, p));
    return m;
fail:
    pr_metrics_free(m);
    return NULL;
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

void pr_metrics_count_task(pr_metrics_t *m, const fl_task_out_t *out)
{
    if (out->kind == FL_TASK_SYNC) {
        fl_counter_inc(m->syncs);
        return;
    }
    fl_counter_inc(m->flushes);
    if (out->duplicate)
        fl_counter_inc(m->duplicates);
    fl_counter_add(m->cmds_applied, out->napplied);
    fl_counter_add(m->cmds_rejected, out->nrejected);
}
