/* SPDX-License-Identifier: Apache-2.0 */
/*
 * doc_at: one document's past, read from Kafka. The one path behind
 * `flushline at` and the gateway's history endpoints (GET
 * /v1/docs/{id}/history and GET /v1/docs/{id}?version=V when the gateway's
 * window does not hold what is asked):
 *
 * 1. seed: the document's newest snapshot in <snapshots>[p] that is at or
 *    below a version and reflects no event at or past an offset (none: the
 *    empty document, events read from the log start);
 * 2. replay: <events>[p] from that snapshot's events_offset on, every
 *    outcome of the document through the restore feed (flushline/part.h:
 *    contiguous versions, chain hashes checked), with the caller's hooks
 *    before and after each one.
 *
 * fl_at_doc adds the target of `at`: stop at a version (inside a
 * multi-command outcome, only its first commands are applied: the chain is
 * not defined there) or after the last outcome stamped at or before a time.
 * fl_at_json is the one JSON form of the result.
 *
 * Reads go through kafka/reader, bounded by a deadline, a count of records
 * and a count of bytes (both topics together), and a stop flag. Bad
 * records are passed over (on_skip says which), as the CLI always did.
 *
 * @locality the thread that owns the reader handle; one read at a time per
 * handle (the gateway runs these on its history job threads).
 */
#ifndef FLUSHLINE_DOC_AT_H
#define FLUSHLINE_DOC_AT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <librdkafka/rdkafka.h>

#include "flushline/part.h"

/* Over max_records or max_bytes (the other errors are FL_READER_E* and
 * FL_HISTORY_E*, see fl_at_strerror). */
#define FL_AT_ELIMIT (-401)
const char *fl_at_strerror(int err);

typedef struct fl_at_s fl_at_t;

/* Hooks: pre runs before an outcome of the document is replayed (ent->doc
 * at version_before; 1 stops without replaying it), post after (at
 * version_after; 1 stops). A negative return stops the read and is
 * returned; write why into at->what. */
typedef int (*fl_at_hook_fn)(fl_at_t *at, fl_part_doc_t *ent, const fl_outcome_t *o,
                             const rd_kafka_message_t *msg);

struct fl_at_s {
    /* in */
    rd_kafka_t *rk;                 /* a reader consumer (fl_reader_consumer_new), borrowed */
    const char *snapshots, *events; /* topic names, borrowed */
    int32_t partition;              /* the document's, in both topics */
    fl_slice_t doc;                 /* borrowed */
    uint64_t seed_version;          /* seed from a snapshot at or below (UINT64_MAX: any) */
    int64_t seed_offset;            /* ... whose events_offset is at or below (INT64_MAX: any) */
    int64_t deadline_ms;            /* fl_clock_mono_ms() deadline; 0: none */
    uint64_t max_records, max_bytes; /* 0: no bound */
    bool (*should_stop)(void *opaque);
    void (*on_progress)(void *opaque, uint64_t records); /* after each poll */
    void (*on_skip)(void *opaque, const char *topic, const rd_kafka_message_t *msg,
                    const char *why);
    fl_at_hook_fn pre, post;
    void *opaque;
    /* fl_at_doc's target */
    bool by_time;
    uint64_t version;
    int64_t time_ms;
    /* out */
    fl_part_t *docs;      /* owns the document (fl_at_done frees it) */
    fl_part_doc_t *ent;   /* the document, NULL when it has no history */
    bool partial;         /* stopped inside an outcome */
    bool any;             /* an outcome that applied commands was read */
    int64_t offset, ts;   /* of the last such outcome */
    uint64_t records, bytes; /* read, both topics */
    int64_t fail_offset;  /* the record a failure names (-1: none) */
    char what[512];       /* why it failed */
    /* scratch */
    fl_arena_t *arena;
};

/* Seeds and replays (steps 1 and 2 above) with at's hooks: 0 (the end of
 * the partition), 1 (a hook stopped it), a hook's negative value,
 * FL_AT_ELIMIT, an FL_READER_E* or FL_HISTORY_E* error (at->what says why
 * for the history errors). at->ent is the document after, when it has a
 * history. */
int fl_at_read(fl_at_t *at);

/* fl_at_read towards at's target (by_time, version, time_ms; pre and post
 * and, by version, seed_version are set here): 0 when the read is done,
 * else an error as fl_at_read. ent is NULL when the document has no
 * history; by version, its version is below `version` when the document
 * never reached it, else exactly `version`. */
int fl_at_doc(fl_at_t *at);

/* Frees what a read made (the documents, the scratch); at can be read
 * again. */
void fl_at_done(fl_at_t *at);

/* {doc, version, chain (null when partial), digest, partition, offset, ts
 * (of the last outcome applied, when any), partial (when true), state}: a
 * new reference, NULL on OOM. */
struct json_t *fl_at_json(const fl_at_t *at);
/* The same form for any document (a live copy: at NULL, then without
 * partition, offset, ts and partial). */
struct json_t *fl_at_doc_json(fl_slice_t id, const fl_doc_t *doc, const fl_at_t *at);

#endif
