/* SPDX-License-Identifier: Apache-2.0 */
/*
 * engine: the apply engine. A document (fl_doc_t) holds the state (a heap
 * msgpack map), its version, its chain hash, its encoded size (tracked
 * incrementally against a cap) and the per-client dedup table. fl_doc_apply
 * applies one flush and fills its outcome; fl_doc_apply_applied replays the
 * applied commands of an outcome (deltas) on a live copy.
 *
 * Pure: no I/O, no clock, no randomness, no logging; every byte of the
 * result is a function of the document and the record (schemas/ENGINE.md
 * defines the semantics). @locality the partition thread that owns the
 * document (or the gateway thread owning a live copy); one thread at a time.
 */
#ifndef FLUSHLINE_ENGINE_H
#define FLUSHLINE_ENGINE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "flushline/errors.h"
#include "flushline/flush.h"
#include "flushline/value.h"

/* Errors returned by engine functions (negative), see fl_engine_strerror().
 * They are about the call, never about a command: rejected commands are
 * reported in the outcome with an fl_code_t. */
enum {
    FL_EERR_NOMEM = -1,
    FL_EERR_ARG = -2,     /* NULL or inconsistent argument (e.g. flush for another doc) */
    FL_EERR_DELTA = -3,   /* a delta did not apply cleanly: the live copy is diverged */
    FL_EERR_CHAIN = -4,   /* a delta applied but the chain hash differs */
    FL_EERR_RESTORE = -5, /* snapshot data malformed (root not a map, too large, bad blob) */
};
const char *fl_engine_strerror(int err);

/*
 * The temporaries of an apply, a restore or a rollback (an arena and an
 * encoding buffer, about 12 KiB once used). Every document owns one unless
 * its config names a shared one: a program that holds many documents and
 * touches them from one thread (the gateway's live copies, the processor's
 * partitions) shares one, so an idle document costs only its state. A
 * shared scratch is used by one call at a time: give each thread its own.
 */
typedef struct fl_engine_scratch_s fl_engine_scratch_t;
fl_engine_scratch_t *fl_engine_scratch_new(void); /* NULL on OOM */
void fl_engine_scratch_free(fl_engine_scratch_t *scratch); /* NULL is safe */

typedef struct fl_engine_config_s {
    size_t max_state_bytes; /* cap on the canonical encoded size of the state (1 MiB) */
    uint32_t max_depth;     /* cap on container nesting of the state, root = 1 (64) */
    uint32_t max_dedup;     /* clients remembered per document (4096) */
    fl_engine_scratch_t *scratch; /* shared temporaries (NULL: the document's own) */
} fl_engine_config_t;

extern const fl_engine_config_t fl_engine_config_default;

typedef struct fl_doc_s fl_doc_t;

/*
 * A new empty document (state {}, version 0, chain all zero). doc_id is
 * copied. cfg NULL means fl_engine_config_default; it is copied. NULL on
 * OOM or a doc_id that is not 1-255 bytes.
 */
fl_doc_t *fl_doc_new(fl_slice_t doc_id, const fl_engine_config_t *cfg);
void fl_doc_free(fl_doc_t *doc); /* NULL is safe */

/*
 * Replaces state, version and chain from a snapshot. state (either storage
 * kind) is cloned; it must be a map within the caps. The dedup table is
 * left alone (see fl_doc_dedup_restore). 0, FL_EERR_NOMEM or FL_EERR_RESTORE.
 */
int fl_doc_restore(fl_doc_t *doc, const fl_value_t *state, uint64_t version,
                   const uint8_t chain[FL_HASH_LEN]);

/* Read-only accessors; pointers are valid until the next mutating call. */
fl_slice_t fl_doc_id(const fl_doc_t *doc);
const fl_value_t *fl_doc_state(const fl_doc_t *doc);
uint64_t fl_doc_version(const fl_doc_t *doc);
const uint8_t *fl_doc_chain(const fl_doc_t *doc); /* FL_HASH_LEN bytes */
size_t fl_doc_size(const fl_doc_t *doc);          /* canonical encoded size of the state */
void fl_doc_digest(const fl_doc_t *doc, uint8_t out[FL_HASH_LEN]); /* fl_value_digest(state) */

/*
 * An estimate of the heap memory the document holds, for memory budgets:
 * the state tree (every string, key and container buffer), the dedup table
 * (entries, index, outcome blobs) and the document's own buffers, each
 * allocation rounded as glibc's malloc rounds it (16-byte chunks with an
 * 8-byte header, 32 bytes at least). It walks the state: O(values), about
 * the cost of encoding it, so call it when a document changed (once per
 * commit, say), not per command. Containers grown by commands may hold up
 * to half again their length in spare capacity, which is not seen here
 * (a decoded or restored state has none). A sync window is counted
 * separately: history.h fl_window_mem.
 */
size_t fl_doc_mem(const fl_doc_t *doc);

/*
 * One dedup entry: a client's last seq and the outcome of that seq in the
 * compact form of schemas/ENGINE.md ("dedup blob"). Exported entries borrow
 * the document's memory until its next mutating call.
 */
typedef struct fl_dedup_entry_s {
    uint8_t client_id[FL_CLIENT_ID_LEN];
    uint64_t seq;
    fl_slice_t outcome; /* canonical msgpack blob */
} fl_dedup_entry_t;

uint32_t fl_doc_dedup_count(const fl_doc_t *doc);
/* Fills up to cap entries, oldest first (eviction order); returns how many.
 * Restoring them in this order reproduces the table and its eviction order. */
uint32_t fl_doc_dedup_export(const fl_doc_t *doc, fl_dedup_entry_t *out, uint32_t cap);
/* Clears the table and loads entries (oldest first; copied). Entries beyond
 * max_dedup evict the oldest as usual. 0, FL_EERR_NOMEM or FL_EERR_RESTORE.
 * The eviction count is left at 0 whatever loading dropped: set it from the
 * snapshot afterwards with fl_doc_dedup_set_evictions. (Loading drops
 * entries only when max_dedup was lowered since the export; to keep their
 * clients out of `gap`, add n - fl_doc_dedup_count(doc) to the count.) */
int fl_doc_dedup_restore(fl_doc_t *doc, const fl_dedup_entry_t *ents, uint32_t n);

/*
 * How many entries the dedup table has evicted (dropped because it was
 * full) over the document's life: fl_doc_apply and fl_doc_replay count
 * them. While it is 0 the table knows every client that ever wrote, so an
 * unknown client's seq > 1 is a `gap` (ENGINE.md, Dedup). Snapshots carry
 * it (wire.h fl_wire_snapshot_t.dedup_evicted); a restore sets it after
 * fl_doc_dedup_restore.
 */
uint64_t fl_doc_dedup_evictions(const fl_doc_t *doc);
void fl_doc_dedup_set_evictions(fl_doc_t *doc, uint64_t n);

/*
 * Conversions between a dedup blob and the outcome it stands for (code,
 * versions, chain, results with versions and keys; duplicate false, no
 * applied commands), e.g. for snapshot records that carry outcomes
 * (wire.h fl_wire_dedup_t). to_outcome allocates results in arena and
 * returns 0, FL_EERR_RESTORE (malformed) or FL_EERR_NOMEM; from_outcome
 * returns a malloc'd blob the caller frees, 0 or FL_EERR_NOMEM.
 */
int fl_engine_dedup_to_outcome(fl_slice_t blob, fl_arena_t *arena, fl_outcome_t *out);
int fl_engine_dedup_from_outcome(const fl_outcome_t *outcome, char **out, size_t *outlen);

/*
 * Applies a flush (schemas/ENGINE.md) and fills *out. Results, applied
 * commands and created keys are allocated in arena; applied commands'
 * values point into the flush (which must outlive the outcome's use).
 * out->doc, user and ts_ms are copied from the flush. Rejections are
 * reported in the outcome and return 0. Returns FL_EERR_ARG when the flush
 * names another document, FL_EERR_NOMEM on OOM (the document is then
 * unchanged: the whole flush is rolled back, and the caller must treat the
 * record as not processed, e.g. stop the partition and retry).
 */
int fl_doc_apply(fl_doc_t *doc, const fl_flush_t *flush, fl_arena_t *arena, fl_outcome_t *out);

/*
 * fl_doc_apply under a rule set (schemas/RULES.md): rules NULL is exactly
 * fl_doc_apply. A command a rule refuses gets FL_CODE_RULE_VIOLATION and
 * the rule's name in its result (copied into arena); stamped values are
 * allocated in arena and are what out->applied carries. rctx carries the
 * record's role (NULL: none, the rule set's default role). The rule set
 * is only read.
 */
struct fl_rules_s;
struct fl_rules_ctx_s;
int fl_doc_apply_rules(fl_doc_t *doc, const fl_flush_t *flush, const struct fl_rules_s *rules,
                       const struct fl_rules_ctx_s *rctx, fl_arena_t *arena, fl_outcome_t *out);

/*
 * Replays a delta: the applied commands of one outcome that moved the
 * document from version_before to version_before + n. The document must be
 * at version_before (FL_EERR_DELTA otherwise). Every command must apply
 * (create uses its key as given); on failure the document is rolled back
 * and FL_EERR_DELTA is returned. With expected_chain != NULL the resulting
 * chain must equal it, else the document is rolled back and FL_EERR_CHAIN
 * returned. The dedup table is not touched. arena is scratch space.
 */
int fl_doc_apply_applied(fl_doc_t *doc, uint64_t version_before, const fl_cmd_t *cmds,
                         uint32_t n, const uint8_t *expected_chain, fl_arena_t *arena);

/*
 * Replays an outcome read back from the events topic (restore, replay,
 * verify): applies its applied commands as fl_doc_apply_applied does (the
 * chain must match) and records it in the dedup table exactly as
 * fl_doc_apply recorded it (evicting and counting evictions alike), so a
 * restored document answers repeats and gaps like the original. Duplicate, gap and seq-0 answers change nothing.
 * An outcome that applied nothing must find the document at its version.
 * 0, FL_EERR_ARG (another document), FL_EERR_DELTA / FL_EERR_CHAIN (the
 * history does not fit this document; it is left unchanged) or
 * FL_EERR_NOMEM.
 */
int fl_doc_replay(fl_doc_t *doc, const fl_outcome_t *outcome, fl_arena_t *arena);

/* The key create derives for (doc id, version, counter): 16 base32 chars
 * into out (not NUL-terminated). Exposed for tests and other engines. */
void fl_engine_create_key(fl_slice_t doc_id, uint64_t version, uint32_t counter, char out[16]);

#endif
