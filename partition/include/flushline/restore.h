/* SPDX-License-Identifier: Apache-2.0 */
/*
 * restore: the Kafka side of the partition module. fl_task_rec_of turns a
 * commands record as librdkafka delivers it into the task's input. And the
 * restore driver, which rebuilds the documents of one partition from Kafka, as the
 * processor does on assignment: the snapshots partition from its start
 * (the newest snapshot of each document, and the partition's checkpoint),
 * then the events partition from the checkpoint to its end, each record
 * fed to the pure restore feed (part.h). Read through kafka/reader, one
 * bounded step at a time, so that the caller's loop stays responsive
 * (signals, rebalances) during a long restore.
 *
 * A snapshot that does not restore, or an event that does not replay, ends
 * the restore with an error (the partition's history does not fit: stop
 * rather than run on a wrong document); undecodable records are skipped
 * with a warning.
 *
 * @locality the thread that owns the partition and the reader handle.
 */
#ifndef FLUSHLINE_RESTORE_H
#define FLUSHLINE_RESTORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <librdkafka/rdkafka.h>

#include "flushline/part.h"
#include "flushline/reader.h"
#include "flushline/task.h"

/* The task's input for a commands record (borrows msg): key, payload and
 * the record's timestamp (the outcome's server stamp). */
void fl_task_rec_of(const rd_kafka_message_t *msg, fl_task_rec_t *rec);

typedef struct fl_restore_spec_s {
    rd_kafka_t *rk;             /* a reader consumer (fl_reader_consumer_new), borrowed */
    const char *snapshots;      /* topic names, borrowed */
    const char *events;
    int64_t deadline_ms;        /* fl_clock_mono_ms() deadline for the whole restore */
    bool (*should_stop)(void *opaque); /* a drain: the restore ends FL_READER_ESTOPPED */
    void *opaque;
} fl_restore_spec_t;

typedef struct fl_restore_s fl_restore_t;

/* A restore of part (borrowed: restored in place, from empty) per spec
 * (copied). Nothing is read until the first step. NULL on OOM. */
fl_restore_t *fl_restore_new(fl_part_t *part, const fl_restore_spec_t *spec);
/* Ends the read where it is and frees the restore (not the part). NULL safe. */
void fl_restore_free(fl_restore_t *rs);

/*
 * Reads for about max_ms: FL_READER_MORE, 0 (restored: the partition's
 * events_next is the events high watermark), or a negative error with
 * errstr (FL_READER_E*, FL_HISTORY_E*, a history error).
 */
int fl_restore_step(fl_restore_t *rs, int max_ms, char *errstr, size_t errstr_size);

/* The checkpoint the events were read from, and the events replayed. */
int64_t fl_restore_checkpoint(const fl_restore_t *rs);
uint64_t fl_restore_events(const fl_restore_t *rs);

#endif
