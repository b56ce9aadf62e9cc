/* SPDX-License-Identifier: Apache-2.0 */
/*
 * history: the one implementation of what the processor, the gateway and
 * the CLI do with a document's history. Each of these exists here once and
 * nowhere else:
 *
 * - the outcome window: fl_window_t (fl_window_push, fl_window_find,
 *   fl_window_clear...), a ring of encoded outcome records bounded by a count
 *   and a byte budget; the processor answers syncs from it, the gateway
 *   catches subscribers up from it;
 * - window -> deltas: fl_window_deltas, the items of a `deltas` message or a
 *   sync reply from a version on;
 * - outcome -> delta: fl_history_outcome_to_delta;
 * - document -> snapshot record: fl_history_snapshot_record (and
 *   fl_history_encode_snapshot), dedup table included;
 * - snapshot record -> document: fl_history_doc_from_snapshot (state,
 *   version, chain, dedup table in eviction order, evictions count);
 * - event replay: fl_history_replay_check decides what to do with one
 *   outcome read back from the events topic (reflected by the snapshot the
 *   document was loaded from, or does it continue the document), and
 *   fl_history_replay applies it (fl_doc_replay: state, chain and dedup);
 *   fl_history_outcome_recorded says whether an outcome changed what a
 *   snapshot of its document holds.
 *
 * Pure, like the rest of fl_core: no Kafka, no libwebsockets, no clock, no
 * logging; memory only. Decoded and converted values live in the caller's
 * arena. @locality the thread that owns the document (a processor's apply
 * thread, the gateway's service thread, the CLI's main thread); a window is
 * used by one thread at a time.
 */
#ifndef FLUSHLINE_HISTORY_H
#define FLUSHLINE_HISTORY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "flushline/engine.h"
#include "flushline/flush.h"
#include "flushline/wire.h"

/* Errors (negative), see fl_history_strerror(). */
enum {
    FL_HISTORY_ENOMEM = -1,
    FL_HISTORY_ERECORD = -2,   /* a record is undecodable or not of the kind expected there */
    FL_HISTORY_EGONE = -3,     /* the window does not hold the outcomes from that version */
    FL_HISTORY_ESNAPSHOT = -4, /* a snapshot does not restore (state not a map within the
                                  engine's caps, or a malformed dedup entry) */
    FL_HISTORY_EVERSION = -5,  /* an outcome does not start at its document's version */
    FL_HISTORY_EDELTA = -6,    /* an outcome's commands do not apply to its document */
    FL_HISTORY_ECHAIN = -7,    /* an outcome's chain hash differs from the replayed one */
};
const char *fl_history_strerror(int err);

/* ---- the outcome window --------------------------------------------------- */

/* One kept outcome: its encoded events record (fl_wire_encode_outcome_record
 * or the record as read from Kafka), owned by the window. */
typedef struct fl_window_item_s {
    uint64_t version_before;
    uint64_t version_after;
    char *rec;
    size_t len;
} fl_window_item_t;

/*
 * A document's recent outcomes, oldest first, contiguous: each item starts
 * at the version the one before it ended (fl_window_push keeps it so), so
 * the items from any held version_before reach the newest outcome without a
 * hole. At most max_items items and max_bytes record bytes. A value type to
 * embed in a document entry: the fields are private (read them through the
 * functions); the ring is allocated on the first push.
 */
typedef struct fl_window_s {
    fl_window_item_t *ring;
    uint32_t max_items, head, count;
    size_t bytes, max_bytes;
} fl_window_t;

/* An empty window with these bounds (max_items 0: nothing is ever kept;
 * max_bytes SIZE_MAX: no byte bound). Allocates nothing. */
void fl_window_init(fl_window_t *w, uint32_t max_items, size_t max_bytes);
/* Frees every record and the ring; the window is empty and may be pushed
 * to again. */
void fl_window_free(fl_window_t *w);
/* Frees every record (keeps the ring): the window is empty. */
void fl_window_clear(fl_window_t *w);

/*
 * Appends an outcome record, taking ownership of the malloc'd rec in every
 * case (freed here when it is not kept). The oldest items are dropped until
 * it fits both bounds. Keeping the window contiguous comes first: an item
 * that does not start where the newest ended empties the window before it
 * goes in, and a record that cannot be kept (larger than max_bytes) empties
 * it, as later items would follow a hole. 0, or FL_HISTORY_ENOMEM (the ring
 * could not be allocated; the window is empty).
 */
int fl_window_push(fl_window_t *w, uint64_t version_before, uint64_t version_after, char *rec,
                   size_t len);

uint32_t fl_window_count(const fl_window_t *w);
/* The item at position i (0 = oldest), or NULL. Valid until the next push
 * or clear. */
const fl_window_item_t *fl_window_at(const fl_window_t *w, uint32_t i);
/* The position of the item whose version_before is version, or -1 when the
 * window does not hold that version as the start of an outcome. */
int fl_window_find(const fl_window_t *w, uint64_t version);
/* Record bytes held (what max_bytes bounds). */
size_t fl_window_bytes(const fl_window_t *w);
/* Heap bytes held: the records and the ring. For memory budgets. */
size_t fl_window_mem(const fl_window_t *w);

/*
 * The items of a `deltas` message or of a sync reply (from_version = from):
 * every held outcome from the one starting at version `from` to the newest,
 * each decoded and converted (fl_history_outcome_to_delta). *items is an
 * array in arena; the deltas point into arena and into the window's records
 * (valid until the next push or clear, and the arena's next reset). 0 with
 * *items, *n set; FL_HISTORY_EGONE (the window does not hold `from`: answer
 * with the state), FL_HISTORY_ERECORD (errstr says why) or FL_HISTORY_ENOMEM.
 */
int fl_window_deltas(const fl_window_t *w, uint64_t from, fl_arena_t *arena,
                     fl_wire_delta_t **items, uint32_t *n, char *errstr, size_t errstr_size);

/* ---- outcomes ----------------------------------------------------------- */

/* The delta subscribers see for an outcome: version_after, client_id, seq,
 * user, ts, the applied commands and the chain. d borrows o's memory. */
void fl_history_outcome_to_delta(const fl_outcome_t *o, fl_wire_delta_t *d);

/* Whether an outcome changed what a snapshot of its document holds: its
 * state or its dedup table. The rule of fl_doc_apply and fl_doc_replay
 * (ENGINE.md): everything but duplicates, gaps and seq 0 is recorded in the
 * dedup table (and only those can apply commands). */
bool fl_history_outcome_recorded(const fl_outcome_t *o);

/* ---- snapshots ------------------------------------------------------------ */

/*
 * The snapshot record of doc (type FL_WT_REC_SNAPSHOT): id, version, chain,
 * state, digest, the dedup table oldest first (fl_engine_dedup_to_outcome),
 * dedup_evicted, and events_offset (every event of the document's events
 * partition below it is reflected). The message borrows doc (valid until its
 * next mutating call); the dedup entries live in arena. 0,
 * FL_HISTORY_ENOMEM or FL_HISTORY_ESNAPSHOT (a dedup entry of the document
 * does not convert).
 */
int fl_history_snapshot_record(const fl_doc_t *doc, int64_t events_offset, fl_arena_t *arena,
                               fl_wire_msg_t *msg);
/*
 * The same, encoded (msgpack, the snapshots topic's form): *out is malloc'd
 * (the caller frees it or hands it to the producer), keyed by fl_doc_id(doc).
 * 0, or a negative FL_HISTORY_ error with errstr saying why.
 */
int fl_history_encode_snapshot(const fl_doc_t *doc, int64_t events_offset, fl_arena_t *arena,
                               char **out, size_t *outlen, char *errstr, size_t errstr_size);

/*
 * A new document from a decoded snapshot record: state, version and chain,
 * the dedup table in its eviction order and the evictions count, so it
 * answers repeats (duplicate) and gaps as the document that was
 * snapshotted. cfg as for fl_doc_new (NULL: the defaults). All or nothing:
 * on error *out is untouched, which lets a caller keep the document it
 * had. 0 with *out set (the caller frees it with fl_doc_free),
 * FL_HISTORY_ENOMEM or FL_HISTORY_ESNAPSHOT.
 */
int fl_history_doc_from_snapshot(const fl_wire_snapshot_t *snap, const fl_engine_config_t *cfg,
                                 fl_doc_t **out);

/* ---- event replay --------------------------------------------------------- */

/* fl_history_replay_check: the outcome is already reflected by the snapshot
 * the document was loaded from. */
#define FL_HISTORY_REFLECTED 1

/*
 * What to do with outcome o, read from the events topic at `offset`, for
 * doc, which was loaded from a snapshot reflecting every event below
 * reflected_below (0 when it was not): FL_HISTORY_REFLECTED (leave it),
 * 0 (replay it with fl_history_replay), or FL_HISTORY_EVERSION (it is not a
 * duplicate and does not start at the document's version: the history does
 * not fit the document).
 */
int fl_history_replay_check(const fl_doc_t *doc, int64_t reflected_below, int64_t offset,
                            const fl_outcome_t *o);
/*
 * Replays o on doc (fl_doc_replay: the applied commands with the chain
 * checked, and the dedup table as fl_doc_apply recorded it); arena is
 * scratch. On error the document is unchanged. 0, FL_HISTORY_EDELTA (the
 * commands do not apply, or o names another document), FL_HISTORY_ECHAIN
 * or FL_HISTORY_ENOMEM.
 */
int fl_history_replay(fl_doc_t *doc, const fl_outcome_t *o, fl_arena_t *arena);

#endif
