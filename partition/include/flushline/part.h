/* SPDX-License-Identifier: Apache-2.0 */
/*
 * part: the documents of one partition, as the processor holds them and as
 * the CLI rebuilds them. Each document's engine state (fl_doc_t), its
 * window of recent outcome records (core history, to answer syncs with
 * deltas) and its snapshot bookkeeping, in the one hash map (hmap.h) by id
 * plus a list in creation order (deterministic output for the CLI and for
 * snapshot rounds). And the pure restore feed: the records of the
 * snapshots and events topics fed one by one into a partition
 * (fl_part_load_snapshot_rec, fl_part_replay_event_rec), which restore
 * (the processor), seeding and rebuilding (the CLI) share.
 *
 * Pure apart from memory: no Kafka, no clock, no logging. Errors come back
 * as codes with a reason in errstr; the caller logs them.
 *
 * Where later work goes (so that it has one obvious place):
 * - a document not in memory (a memory budget evicting cold documents to a
 *   local store) is found or loaded in fl_part_get / fl_part_get_or_create,
 *   the only ways in to a document;
 *
 * The rule sets in force (schemas/RULES.md, section 3) belong to the
 * partition: the task puts a rules record in force (and emits it to
 * events), checkpoints carry them (fl_part_checkpoint_record), and the
 * restore feed puts them back from the newest checkpoint and the rules
 * records of events after it.
 *
 * @locality the thread that owns the partition (the processor's apply
 * thread, the CLI's main thread).
 */
#ifndef FLUSHLINE_PART_H
#define FLUSHLINE_PART_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "flushline/engine.h"
#include "flushline/flush.h"
#include "flushline/history.h"
#include "flushline/wire.h"

/* Errors are the history module's (negative, fl_history_strerror):
 * FL_HISTORY_ENOMEM, FL_HISTORY_ERECORD (undecodable, or a record that does
 * not belong there), FL_HISTORY_ESNAPSHOT (a snapshot that does not
 * restore), and the replay errors. */

/* fl_part_load_snapshot / _rec: the record was passed over (not selected,
 * older than what the document holds, a checkpoint or another record). */
#define FL_PART_SKIPPED 1
/* fl_part_event_decode_rules: the record is a rules record. */
#define FL_PART_RULES 2

typedef struct fl_part_doc_s {
    fl_doc_t *doc;
    bool dirty;                /* changed since its last snapshot */
    bool loaded;               /* restored from a snapshot record: */
    uint64_t snapshot_version; /* version of its last snapshot (0: none) */
    int64_t snapshot_offset;   /* events below this offset are in that snapshot (0: none) */
    bool replayed;             /* an outcome of it was replayed by the restore feed */
    fl_window_t window;        /* recent outcomes, for syncs */
    void *user;                /* the caller's per-document data (freed by free_user) */
    /* The processor's: the transaction (its own numbering, never 0) that
     * last touched the document and the document's version before it, i.e.
     * its committed version while that transaction is open (0 / 0 when
     * restored: the restore reads committed records only). */
    uint64_t txn_gen, txn_base;
} fl_part_doc_t;

typedef struct fl_part_config_s {
    uint32_t window_outcomes;         /* outcomes kept per document for syncs (0: none) */
    size_t window_bytes;              /* and at most these many bytes of them */
    uint64_t snapshot_every_versions; /* a document this far past its snapshot is due */
    fl_engine_config_t engine;        /* every document's engine settings (a NULL
                                       * scratch: the partition shares one) */
    void (*free_user)(void *user);    /* NULL: user pointers are not freed */
} fl_part_config_t;

/* The defaults: no window, snapshots never due by version, the engine's
 * default settings. */
void fl_part_config_default(fl_part_config_t *cfg);

typedef struct fl_part_s fl_part_t;

/* A new, empty partition (cfg is copied). NULL on OOM. */
fl_part_t *fl_part_new(int32_t id, const fl_part_config_t *cfg);
/* Frees every document; NULL safe. */
void fl_part_free(fl_part_t *part);
/* Frees every document; the partition is empty (events_next kept). */
void fl_part_clear(fl_part_t *part);

/* The document id, or NULL. */
fl_part_doc_t *fl_part_get(fl_part_t *part, fl_slice_t id);
/* The document id, created empty (version 0) when absent; NULL on OOM or
 * an id the engine refuses (not 1-255 bytes). */
fl_part_doc_t *fl_part_get_or_create(fl_part_t *part, fl_slice_t id);

/* For a caller that numbers its transactions (txn_gen, never 0): the
 * version document id had when transaction txn_gen first touched it, i.e.
 * its committed version while that transaction is open (the documents hold
 * what was committed plus what the open transaction applied). 0 for a
 * document the partition does not hold. */
uint64_t fl_part_txn_base(fl_part_t *part, fl_slice_t id, uint64_t txn_gen);
/* Document id was created by transaction txn_gen: committed at version 0
 * until that transaction ends. */
void fl_part_txn_created(fl_part_t *part, fl_slice_t id, uint64_t txn_gen);
uint32_t fl_part_count(const fl_part_t *part);
/* The i-th document in creation order, or NULL. */
fl_part_doc_t *fl_part_at(const fl_part_t *part, uint32_t i);
/* Whether any document is dirty. */
bool fl_part_dirty(const fl_part_t *part);

int32_t fl_part_id(const fl_part_t *part);
/* The offset of the next event of this events partition: where the events
 * the processor produces land (snapshots and checkpoints record it). */
int64_t fl_part_events_next(const fl_part_t *part);
/* Raises it to offset (never lowers it). */
void fl_part_events_reach(fl_part_t *part, int64_t offset);
/* Some document crossed snapshot_every_versions since the last
 * fl_part_snapshot_done. */
bool fl_part_snapshot_due(const fl_part_t *part);
void fl_part_snapshot_done(fl_part_t *part);
/* Marks ent snapshotted at its current version (clean). */
void fl_part_doc_snapshotted(fl_part_doc_t *ent);

/* ---- the rule sets in force ---------------------------------------------- */

/* How many prefixes have a rule set in force. */
uint32_t fl_part_rules_count(const fl_part_t *part);
/*
 * Puts a rules record in force (its set for its prefix, or removes the
 * prefix's set when it has none). 0, FL_HISTORY_ERECORD (not a valid rule
 * set: errstr says where; the sets in force are unchanged) or
 * FL_HISTORY_ENOMEM (unchanged).
 */
int fl_part_rules_apply(fl_part_t *part, const fl_wire_rules_t *r, char *errstr,
                        size_t errstr_size);
/*
 * The checkpoint record of this partition at events_offset, carrying the
 * rule sets in force (encoded msgpack, *buf malloc'd; items in arena, which
 * the caller resets). 0, FL_HISTORY_ENOMEM or FL_HISTORY_ERECORD (errstr).
 */
int fl_part_checkpoint_record(fl_part_t *part, int64_t events_offset, fl_arena_t *arena,
                              char **buf, size_t *len, char *errstr, size_t errstr_size);

/* ---- the restore feed ------------------------------------------------------ */

/* Which snapshots to load: the newest (highest version; a later one of the
 * same version wins) with events_offset <= max_offset and version <=
 * max_version, of one document (only.len > 0) or all. NULL: every
 * snapshot. */
typedef struct fl_part_select_s {
    int64_t max_offset;
    uint64_t max_version;
    fl_slice_t only;
} fl_part_select_t;

/*
 * Loads a decoded snapshot into its document (state, version, chain, dedup
 * table; created when absent), unless sel passes it over. All or nothing.
 * 0 (loaded: the document is clean, loaded, at the snapshot's version and
 * offset), FL_PART_SKIPPED, FL_HISTORY_ENOMEM or FL_HISTORY_ESNAPSHOT (it does
 * not restore: the document is unchanged).
 */
int fl_part_load_snapshot(fl_part_t *part, const fl_wire_snapshot_t *snap,
                          const fl_part_select_t *sel);

/*
 * One record of the snapshots topic at offset: decodes it into arena
 * (reset here) and loads a snapshot (as above) or takes a checkpoint into
 * *checkpoint (the highest events_offset <= sel->max_offset seen; leave it
 * -1 before the first record) and puts its rule sets in force (replacing
 * those in force). 0 (a snapshot was loaded), FL_PART_SKIPPED
 * (a checkpoint, another record, or a snapshot passed over),
 * FL_HISTORY_ERECORD (undecodable), FL_HISTORY_ESNAPSHOT or FL_HISTORY_ENOMEM;
 * errstr says why on an error.
 */
int fl_part_load_snapshot_rec(fl_part_t *part, const void *payload, size_t len,
                              const fl_part_select_t *sel, fl_arena_t *arena, int64_t *checkpoint,
                              char *errstr, size_t errstr_size);

/*
 * What to do with an outcome read from the events topic at offset, for its
 * document (created when absent; *ent gets it): FL_HISTORY_REFLECTED (the
 * snapshot the document was loaded from reflects it: leave it), 0 (replay
 * it with fl_part_replay_apply), FL_HISTORY_EVERSION (it does not continue
 * the document) or FL_HISTORY_ENOMEM.
 */
int fl_part_replay_check(fl_part_t *part, const fl_outcome_t *o, int64_t offset,
                         fl_part_doc_t **ent);
/*
 * Replays o on ent->doc (fl_history_replay): the document becomes dirty
 * when the outcome is recorded (fl_history_outcome_recorded), and
 * `replayed`. The window is not filled (syncs it cannot answer with deltas
 * get the state; copying every replayed record into it would cost a fifth
 * of a restore). 0, FL_HISTORY_ENOMEM or a history error (FL_HISTORY_EDELTA,
 * _ECHAIN: the document is unchanged).
 */
int fl_part_replay_apply(fl_part_doc_t *ent, const fl_outcome_t *o, fl_arena_t *arena);
/* Both: 0, FL_HISTORY_REFLECTED, or an error of either. *ent may be NULL. */
int fl_part_replay_outcome(fl_part_t *part, const fl_outcome_t *o, int64_t offset,
                           fl_arena_t *arena, fl_part_doc_t **ent);

/*
 * One record of the events topic: decodes it into arena (reset here). 0
 * with *o (in arena) for an outcome, FL_PART_SKIPPED for a sync reply or a
 * rules record (no state change), FL_HISTORY_ERECORD ("undecodable record: ...", or not an
 * events record: errstr says why) or FL_HISTORY_ENOMEM. Every reader of events takes
 * records through it.
 */
int fl_part_event_decode(const void *payload, size_t len, fl_arena_t *arena,
                         const fl_outcome_t **o, char *errstr, size_t errstr_size);
/* As fl_part_event_decode, where a rules record (the processor's copy of
 * one it put in force) gives FL_PART_RULES with *rules (in arena) when rules
 * is not NULL; fl_part_event_decode passes over it (FL_PART_SKIPPED). */
int fl_part_event_decode_rules(const void *payload, size_t len, fl_arena_t *arena,
                               const fl_outcome_t **o, const fl_wire_rules_t **rules,
                               char *errstr, size_t errstr_size);
/* Why outcome o did not replay (err: FL_HISTORY_ECHAIN, _EDELTA, other). */
void fl_part_replay_why(const fl_outcome_t *o, int err, char *why, size_t why_size);

/*
 * One record of the events topic at offset: decodes it into arena (reset
 * here) and replays an outcome (as above); a sync reply changes nothing
 * (FL_PART_SKIPPED); a rules record is put in force (fl_part_rules_apply:
 * FL_PART_SKIPPED, or its error). FL_HISTORY_ERECORD (undecodable or not an events
 * record), else as fl_part_replay_outcome; errstr says why on an error.
 * *o (may be NULL) gets the decoded outcome (in arena).
 */
int fl_part_replay_event_rec(fl_part_t *part, const void *payload, size_t len, int64_t offset,
                             fl_arena_t *arena, const fl_outcome_t **o, char *errstr,
                             size_t errstr_size);

#endif
