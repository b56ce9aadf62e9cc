/* SPDX-License-Identifier: Apache-2.0 */
/*
 * task: the processor's work on one record of the commands topic, as a pure
 * function of a partition's documents and the record (Kafka Streams calls
 * this a stream task). A flush is applied by the engine and answered with
 * an outcome record, under the rule set in force for its document
 * (fl_doc_apply_rules, with the role the record carries); a sync is
 * answered from the document's window (the deltas since the gateway's
 * version) or with the state; a rules record puts its rule set in force
 * from here on and is copied to events (where a restore finds it), or is
 * skipped with a reason when it is not a valid rule set (the sets in force
 * stay); anything else is a bad record, skipped with a reason. The records to emit come back as a
 * small list that the caller produces to the events partition of the same
 * number, in order. The window, the dirty flags and the snapshot-due
 * bookkeeping are updated here.
 *
 * The flushline-processor daemon and `flushline reprocess` both run every
 * commands record through fl_task_apply, so a reprocess reproduces the
 * processor's outcomes byte for byte.
 *
 * Pure: no Kafka, no clock (the record's timestamp is the server stamp), no
 * logging.
 *
 * @locality the thread that owns the partition.
 */
#ifndef FLUSHLINE_TASK_H
#define FLUSHLINE_TASK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "flushline/part.h"

/* One commands record, as read from Kafka (borrowed for the call). */
typedef struct fl_task_rec_s {
    fl_slice_t key;      /* the record key: the document id */
    const void *payload;
    size_t len;
    int64_t ts_ms;       /* the record's timestamp: the outcome's server stamp */
} fl_task_rec_t;

typedef enum fl_task_kind_e {
    FL_TASK_FLUSH = 1, /* a flush, answered with an outcome */
    FL_TASK_SYNC,      /* a sync, answered with a sync reply (unless no_sync_replies) */
    FL_TASK_BAD,       /* a bad record, skipped: see reason */
    FL_TASK_RULES,     /* a rules record: in force and emitted, or rules_bad */
} fl_task_kind_t;

/* At most this many records come out of one record. */
#define FL_TASK_MAX_EMIT 2

/* A record to produce to the events partition, keyed by key. */
typedef struct fl_task_emit_s {
    fl_slice_t key; /* valid until the next fl_task_apply or arena reset */
    char *rec;      /* the encoded events record */
    size_t len;
    /* true: the document's window holds rec (valid until the next
     * fl_task_apply on this partition; copy it); false: rec is malloc'd
     * and the caller owns it (free it or hand it to the producer). */
    bool held;
} fl_task_emit_t;

typedef struct fl_task_out_s {
    fl_task_kind_t kind;
    uint32_t nemit;
    fl_task_emit_t emit[FL_TASK_MAX_EMIT];
    /* FL_TASK_FLUSH */
    bool duplicate;           /* answered from the dedup table */
    uint32_t napplied, nrejected;
    bool created;             /* the document was new to the partition */
    /* FL_TASK_RULES: the record was undecodable (under the rules key) or
     * not a valid rule set: skipped, nothing emitted, see reason */
    bool rules_bad;
    /* FL_TASK_BAD, rules_bad */
    char reason[256];
} fl_task_out_t;

/* Frees the records out owns (those not held). */
void fl_task_out_release(fl_task_out_t *out);

/* Errors (negative) of fl_task_apply, with out->reason: the record could
 * not be answered and the caller's transaction must be aborted. */
enum {
    FL_TASK_ENOMEM = -201,
    FL_TASK_EENGINE = -202, /* the engine failed on a valid flush */
    FL_TASK_EENCODE = -203, /* an answer could not be encoded */
};

/* Flags of fl_task_apply. */
#define FL_TASK_NO_SYNC_REPLIES 0x1 /* syncs are counted, not answered (reprocess) */

/*
 * Applies one commands record to part. arena is scratch (reset here; an
 * emitted key may point into it). 0 with *out filled: kind, the
 * records to emit (out->nemit, in order; release them with
 * fl_task_out_release when not produced), the counts; FL_TASK_BAD with
 * out->reason for an undecodable record, a record type that does not
 * belong in commands, or a flush whose key is not its document (nothing
 * changed, nothing to emit); FL_TASK_RULES with rules_bad and out->reason
 * for a rules record that is skipped. A negative FL_TASK_E* error with out->reason:
 * nothing to emit; the document may have moved (the caller aborts and
 * restores).
 */
int fl_task_apply(fl_part_t *part, const fl_task_rec_t *rec, int flags, fl_arena_t *arena,
                  fl_task_out_t *out);

#endif
