/* SPDX-License-Identifier: Apache-2.0 */
/*
 * pr_out: what the processor writes, through its one transactional
 * producer: events (outcomes, sync replies), snapshots and checkpoints.
 * Delivery reports of outcomes move the partition's events_next (where the
 * next event lands), which snapshots and checkpoints record; a watermark
 * query cannot replace it (read_committed answers the last stable offset,
 * before the open transaction).
 *
 * Snapshots and checkpoints. A document is snapshotted when it has moved
 * snapshot.every.versions past its last snapshot, and in a "round" every
 * dirty document of a partition is, followed by the partition's
 * checkpoint record. They are produced at commit time after the producer
 * was flushed, so events_next is exact: a snapshot records it
 * (events_offset: every event below it is reflected), and a checkpoint
 * says every document with an event below it has a snapshot that reflects
 * it. Restore therefore reads the snapshots partition, then the events
 * partition from the checkpoint only.
 *
 * @locality the processor's apply thread (delivery reports are served by
 * its rd_kafka_poll / flush calls).
 */
#ifndef PR_OUT_H
#define PR_OUT_H

#include <stdbool.h>
#include <stddef.h>

#include <librdkafka/rdkafka.h>

#include "flushline/limits.h"
#include "flushline/part.h"
#include "flushline/topics.h"
#include "pr_metrics.h"
#include "pr_processor.h"

typedef struct pr_out_s pr_out_t;

/*
 * The transactional producer (the processor's defaults, the user's kafka.*
 * settings last). parts is the caller's table of the partitions it runs
 * (parts[p] NULL: not running); delivery reports of outcomes raise
 * parts[p]'s events_next. NULL with errstr.
 */
pr_out_t *pr_out_new(const pr_config_t *cfg, fl_part_t *const *parts, pr_metrics_t *m,
                     char *errstr, size_t errstr_size);
void pr_out_free(pr_out_t *out); /* NULL safe */
rd_kafka_t *pr_out_producer(const pr_out_t *out);
/* Replaces the producer by a new one with the same settings (the same
 * transactional.id; not initialised yet); what the old one still held is
 * dropped. Handles from pr_out_producer are stale after it. 0, or -1 with
 * errstr (the old producer is kept). */
int pr_out_renew(pr_out_t *out, char *errstr, size_t errstr_size);

/*
 * Produces an events record to partition p. With copy librdkafka copies
 * rec (the caller keeps it), else it takes the malloc'd rec (also on
 * failure). outcome: its delivery moves events_next. committed: the
 * document's committed version, sent as the FL_EVENTS_HDR_COMMITTED header
 * (topics.h). 0, or -1 (logged)
 * when the transaction must abort.
 */
int pr_out_event(pr_out_t *out, int32_t p, fl_slice_t key, char *rec, size_t len, bool copy,
                 bool outcome, uint64_t committed);

/* Snapshots what is due in part: with round, every dirty document and the
 * checkpoint; else the documents past snapshot.every.versions. Call with
 * the producer flushed. 0 or -1 (logged: abort). */
int pr_out_snapshots(pr_out_t *out, fl_part_t *part, bool round);

#endif
