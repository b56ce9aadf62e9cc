/* SPDX-License-Identifier: Apache-2.0 */
/* part_int: what part.c shares with task.c and part_rules.c only. */
#ifndef FL_PART_INT_H
#define FL_PART_INT_H

#include "flushline/part.h"
#include "flushline/rules.h"

/* After an outcome moved ent: marks the partition snapshot-due when ent is
 * snapshot_every_versions past its last snapshot. */
void fl_part_note_applied(fl_part_t *part, const fl_part_doc_t *ent);

/* Whether documents keep a window of outcomes (window_outcomes > 0). */
bool fl_part_windowed(const fl_part_t *part);

/* ---- the rule sets in force (part_rules.c) ---- */

/* One rule set in force as published: its prefix and JSON text (what
 * checkpoints carry). */
typedef struct part_rule_src_s {
    char *prefix, *text;
    size_t plen, tlen;
} part_rule_src_t;

/* The rule sets in force of a partition: the compiled catalogue (what
 * flushes are applied with) and the sources, sorted by prefix. */
typedef struct part_rules_s {
    fl_rules_catalog_t *cat; /* NULL until the first rule set */
    part_rule_src_t *src;
    uint32_t n, cap;
} part_rules_t;

/* The partition's rule sets (part.c). */
part_rules_t *fl_part_rules_of(fl_part_t *part);

/* Frees every rule set: none is in force. */
void part_rules_clear(part_rules_t *r);
/*
 * Puts the rule set text (JSON) in force for prefix, or removes the
 * prefix's set when text is NULL. 0, FL_HISTORY_ERECORD (the text is not a
 * valid rule set, or the prefix is too long: errstr says why; nothing
 * changed) or FL_HISTORY_ENOMEM (nothing changed).
 */
int part_rules_put(part_rules_t *r, fl_slice_t prefix, const fl_slice_t *text, char *errstr,
                   size_t errstr_size);
/* The rule set of doc (longest prefix), or NULL. */
const fl_rules_t *part_rules_find(const part_rules_t *r, fl_slice_t doc);
/* Replaces every rule set with those of a checkpoint. 0, or the first
 * error of part_rules_put (the valid sets are in force). */
int part_rules_load(part_rules_t *r, const fl_wire_checkpoint_t *cp, char *errstr,
                    size_t errstr_size);
/* The sources as checkpoint items (borrowing r's strings) in arena. 0 or
 * FL_HISTORY_ENOMEM. */
int part_rules_export(const part_rules_t *r, fl_arena_t *arena, fl_wire_rules_t **items,
                      uint32_t *n);

#endif
