/* SPDX-License-Identifier: Apache-2.0 */
/*
 * gw_rerun: what a speculative gateway remembers of one document to tell a
 * processor's re-run from new history (PROTOCOL.md, "Delivery modes").
 *
 * After an aborted transaction (a crash, fencing) the partition's next
 * owner restores the committed state and applies the same commands again:
 * the events log then holds a second copy of outcomes the gateway has
 * already applied and delivered. Applying is deterministic, so the copy has
 * the same version and chain hash, unless something that changes results
 * differs between the two runs (a setting such as max.state.bytes, the
 * engine): a divergence. A divergence shows as a version with another
 * chain hash, an outcome that ends at a version the first run never ended
 * at, or a flush refused by the re-run at the version from which the first
 * run applied it (a re-run that falls short of the first run produces no
 * version the first run had, so the refusals are what gives it away).
 *
 * A re-run never goes back to or below the document's committed version,
 * which every events record carries in its FL_EVENTS_HDR_COMMITTED header
 * (topics.h). So the memory holds the (version, chain hash) of each outcome
 * the live copy applied above the highest committed version heard, pruned
 * as that rises; it is bounded by what one transaction can hold (the
 * processor's commit interval, at most its transaction timeout) and capped
 * at max entries as the last resort: past the cap the oldest are
 * forgotten, and a re-run copy reaching back to them cannot be checked.
 *
 * @locality lws service thread.
 */
#ifndef GW_RERUN_H
#define GW_RERUN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "flushline/engine.h"
#include "flushline/flush.h"

/* One applied outcome: versions, chain hash, the flush (72 bytes). */
typedef struct gw_rerun_entry_s {
    uint64_t before, version;
    uint8_t chain[FL_HASH_LEN];
    uint8_t client_id[FL_CLIENT_ID_LEN];
    uint64_t seq;
} gw_rerun_entry_t;

typedef struct gw_rerun_s {
    uint64_t committed;  /* the highest committed version heard (0: none) */
    uint64_t known_from; /* every outcome boundary >= it (up to the live copy) is held */
    gw_rerun_entry_t *e; /* e[head .. head+n), ascending versions */
    uint32_t head, n, cap;
} gw_rerun_t;

/* What a record at or below the live copy's version is. */
typedef enum gw_rerun_verdict_e {
    GW_RERUN_COPY = 0, /* a re-run's copy of what was applied: drop it silently */
    GW_RERUN_DIVERGED, /* the same version with another chain hash, or another boundary */
    GW_RERUN_UNKNOWN,  /* above the committed version but older than the memory: resync */
} gw_rerun_verdict_t;

/* The live copy was (re)built at version with chain: the memory restarts
 * there (the committed version heard is kept). */
void gw_rerun_reset(gw_rerun_t *r, uint64_t version, const uint8_t chain[FL_HASH_LEN]);
/* A record said the document is committed at version: forget what is at
 * or below it. */
void gw_rerun_committed(gw_rerun_t *r, uint64_t version);
/* The live copy applied outcome o. Past max entries the oldest is
 * forgotten. An allocation failure forgets every entry (a later re-run then
 * resyncs instead of being checked). */
void gw_rerun_push(gw_rerun_t *r, const fl_outcome_t *o, uint32_t max);
/* An outcome that applied commands, ending at or below the live copy's
 * version. */
gw_rerun_verdict_t gw_rerun_check(const gw_rerun_t *r, const fl_outcome_t *o);
/* An outcome that applied nothing (refused, not a duplicate) at a version
 * below the live copy's: only a re-run writes one there. */
gw_rerun_verdict_t gw_rerun_check_refusal(const gw_rerun_t *r, const fl_outcome_t *o);
/* Entries held. */
uint32_t gw_rerun_count(const gw_rerun_t *r);
void gw_rerun_free(gw_rerun_t *r);

#endif
