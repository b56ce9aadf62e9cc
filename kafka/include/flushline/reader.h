/* SPDX-License-Identifier: Apache-2.0 */
/*
 * reader: the one way Flushline reads a partition to its end. A read of
 * topic[partition] from an offset up to min(to, the high watermark taken at
 * its start), exclusive, on an assign-only read_committed consumer (offset
 * gaps left by transaction markers and aborted records are normal: the
 * read ends when the consumer's position reaches the end, which moves past
 * markers no message reports). Optionally it follows the partition past
 * the watermark. It stops on the record callback's word, on a stop flag,
 * or at a deadline.
 *
 * A read is stepped (fl_reader_step, a bounded time at a time) so that a
 * caller with a loop of its own (the processor restoring partitions) stays
 * responsive; fl_reader_run steps to the end for callers that only read.
 *
 * Used by the processor's restore (partition/restore.c) and by the CLI's
 * history commands (replay, at, verify, tail, reprocess).
 *
 * @locality one thread per consumer handle; one read at a time per handle.
 */
#ifndef FLUSHLINE_READER_H
#define FLUSHLINE_READER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <librdkafka/rdkafka.h>

#include "flushline/kafka_props.h"

/* An offset bound meaning "up to the high watermark". */
#define FL_READER_END INT64_MAX

/* Errors (negative) and results, see fl_reader_strerror(). */
enum {
    FL_READER_MORE = 2,       /* fl_reader_step: not at the end yet */
    FL_READER_ENOMEM = -301,
    FL_READER_EKAFKA = -302,    /* the broker did not answer or refused a request */
    FL_READER_ESTOPPED = -303,  /* the stop flag was raised */
    FL_READER_ETIMEDOUT = -304, /* the deadline passed */
};
const char *fl_reader_strerror(int err);

/* Called for each record in offset order: 0 goes on, 1 ends the read
 * (fl_reader_step returns 1), a negative value ends it and is returned. */
typedef int (*fl_reader_record_fn)(void *opaque, const rd_kafka_message_t *msg);

typedef struct fl_read_spec_s {
    const char *topic;
    int32_t partition;
    int64_t from;        /* first offset (clamped to the log start) */
    int64_t to;          /* exclusive; FL_READER_END: the high watermark */
    bool follow;         /* read on past the high watermark (to is ignored) */
    int64_t deadline_ms; /* fl_clock_mono_ms() deadline; 0: none */
    /* Asked after each poll: true ends the read with FL_READER_ESTOPPED
     * (a signal, a drain). NULL: never. */
    bool (*should_stop)(void *opaque);
    fl_reader_record_fn on_record;
    void (*on_progress)(void *opaque); /* after each poll (NULL: none) */
    void *opaque;
    const char *what;    /* names the read in errstr, e.g. "restore" */
} fl_read_spec_t;

typedef struct fl_reader_s fl_reader_t;

/*
 * An assign-only read_committed consumer for reads (never joins a group:
 * group names the group.id librdkafka wants, and the one offsets may be
 * committed to by a caller that does, e.g. reprocess). The user's settings
 * (props) are applied last. NULL with errstr.
 */
rd_kafka_t *fl_reader_consumer_new(const char *what, const char *bootstrap, const char *group,
                                   const fl_kafka_props_t *props, char *errstr,
                                   size_t errstr_size);

/*
 * Begins a read on rk (spec is copied; its strings must outlive the read):
 * takes the watermarks (retried while the partition has no leader, until
 * the deadline or 30 s), assigns the partition at the start offset. NULL
 * with *rc set (FL_READER_EKAFKA, _ESTOPPED, _ETIMEDOUT, _ENOMEM) and
 * errstr. The read may be empty (fl_reader_step then returns 0 at once).
 */
fl_reader_t *fl_reader_open(rd_kafka_t *rk, const fl_read_spec_t *spec, int *rc, char *errstr,
                            size_t errstr_size);
/*
 * Reads for about max_ms (at least one poll): FL_READER_MORE, 0 (the end
 * was reached), 1 or a negative value from on_record, or a negative
 * FL_READER_E* error with errstr. Once it returned anything but MORE the
 * read is over (close it).
 */
int fl_reader_step(fl_reader_t *rd, int max_ms, char *errstr, size_t errstr_size);
/* Ends the read (unassigns) and frees it. NULL safe. */
void fl_reader_close(fl_reader_t *rd);

/* The high watermark taken at the start. */
int64_t fl_reader_high(const fl_reader_t *rd);
/* The consumer's position (the next offset to read; -1: none yet). */
int64_t fl_reader_position(const fl_reader_t *rd);

/* open, step to the end, close: 0, 1, on_record's negative value or an
 * FL_READER_E* error (errstr says why). *high (may be NULL) gets the high
 * watermark taken at the start (0 when the open failed). */
int fl_reader_run(rd_kafka_t *rk, const fl_read_spec_t *spec, int64_t *high, char *errstr,
                  size_t errstr_size);

/* Watermarks of spec's topic[partition], retried while the partition has
 * no leader until spec's deadline (0: 30 s from now) or should_stop. 0 or
 * an FL_READER_E* error with errstr. */
int fl_reader_watermarks(rd_kafka_t *rk, const fl_read_spec_t *spec, int64_t *lo, int64_t *hi,
                         char *errstr, size_t errstr_size);

#endif
