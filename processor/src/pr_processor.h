/* SPDX-License-Identifier: Apache-2.0 */
/*
 * pr_processor: the flushline-processor daemon's core. One consumer in the
 * processors' group on <prefix>.commands (cooperative-sticky,
 * read_committed, no auto commit) and one transactional producer per
 * instance. Records are applied in offset order by the one apply thread
 * (the caller of pr_processor_run), and every outcome, sync reply, snapshot
 * and the consumed offsets commit together in a Kafka transaction every
 * commit.interval.ms. A partition is restored from <prefix>.snapshots and
 * <prefix>.events before its commands are consumed.
 *
 * @locality everything runs on the thread that calls pr_processor_run,
 * except pr_processor_stop (any thread or a signal handler) and the
 * metrics, which are read by the HTTP thread.
 */
#ifndef PR_PROCESSOR_H
#define PR_PROCESSOR_H

#include <stddef.h>
#include <stdint.h>

#include "flushline/kafka.h"

typedef struct pr_config_s {
    const char *bootstrap;
    const char *prefix;
    int64_t partitions;
    const char *group_id;
    const char *group_instance_id; /* static membership; NULL or "": dynamic */
    int64_t session_timeout_ms;
    const char *transactional_id;
    int64_t commit_interval_ms;
    int64_t commit_max_records;
    int64_t snapshot_every_versions;
    int64_t snapshot_interval_ms;
    int64_t window_outcomes;
    int64_t window_bytes;
    int64_t max_state_bytes;
    int64_t transaction_timeout_ms;
    int64_t restore_timeout_ms;
    const char *http_addr;
    int64_t http_port; /* -1: no HTTP endpoint; 0: a free port */
    const char *log_level;
    fl_kafka_props_t kafka; /* kafka.* pass-through */
} pr_config_t;

/* The processor's settings: one table for loading, --help and the docs. */
extern const struct fl_config_table_s pr_config_table;


typedef struct pr_processor_s pr_processor_t;

/* Builds the Kafka handles and checks the topics (present, equal partition
 * counts, snapshots compacted). NULL with errstr on any problem. */
pr_processor_t *pr_processor_new(const pr_config_t *cfg, char *errstr, size_t errstr_size);

/* Runs until pr_processor_stop or a fatal error. Returns 0 after a drain,
 * whatever the rebalance state when it was asked for (open transaction
 * committed, dirty documents snapshotted, group left; a transaction Kafka
 * made us abort on the way is left to the partitions' next owner), also
 * when stopped before it began; 1 when fenced or fatal (nothing more is
 * written). */
int pr_processor_run(pr_processor_t *pr);

/* Asks run() to drain and return, or not to start. Callable from any thread
 * and from a signal handler (a lock-free atomic store). */
void pr_processor_stop(pr_processor_t *pr);

/* Prometheus text of the processor's metrics (malloc'd). */
char *pr_processor_metrics(pr_processor_t *pr, size_t *len);
/* 1 when the processor is running with its partitions restored. */
int pr_processor_healthy(pr_processor_t *pr);

/* Leaves the group if run() did not, and frees everything, except one
 * thing: a group consumer that never got an assignment is closed but not
 * destroyed, because librdkafka 2.0.2 may abort the process destroying it
 * (see pr_group.c); it stays referenced, idle, until the process exits.
 * NULL safe. */
void pr_processor_free(pr_processor_t *pr);

#endif
