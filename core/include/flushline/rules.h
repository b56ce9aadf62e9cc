/* SPDX-License-Identifier: Apache-2.0 */
/*
 * rules: declarative rule sets (schemas/RULES.md). A rules document (JSON)
 * is parsed and validated strictly into a compiled, immutable fl_rules_t:
 * allow rules (ops x path patterns x roles, with conditions on the target
 * or the command's value), constraints (a JSON Schema subset checked at a
 * path after each command) and stamps (fields the engine writes from the
 * record: $user, $ts, $version, $key). The engine evaluates a rule set
 * inside fl_doc_apply_rules; a catalogue maps document-id prefixes to rule
 * sets (longest prefix wins).
 *
 * Pure: no I/O, no clock, no logging. A compiled rule set is read-only
 * after fl_rules_parse and may be shared by threads. @locality a catalogue
 * belongs to the thread that owns it (the partition thread).
 */
#ifndef FLUSHLINE_RULES_H
#define FLUSHLINE_RULES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "flushline/flush.h"
#include "flushline/value.h"

/* Limits checked before anything is allocated or compiled (RULES.md). */
#define FL_RULES_MAX_BYTES (256u * 1024u) /* a rules document */
#define FL_RULES_MAX_RULES 256            /* rules in a set */
#define FL_RULES_MAX_LIST 64              /* ops, paths, roles, conditions, set fields, enum */
#define FL_RULES_MAX_NAME 64              /* bytes of a rule name, a role, a field */
#define FL_RULES_MAX_SEGMENTS 32          /* segments of a path pattern */
#define FL_RULES_MAX_SCHEMA_DEPTH 16      /* nesting of schemas */
#define FL_RULES_MAX_PREFIX 255           /* bytes of a document-id prefix */

/* Errors (negative), see fl_rules_strerror(). */
enum {
    FL_RERR_NOMEM = -1,
    FL_RERR_INVALID = -2, /* the document is not a valid rule set (errstr says where) */
    FL_RERR_TOO_LARGE = -3, /* above FL_RULES_MAX_BYTES */
    FL_RERR_ARG = -4,
};
const char *fl_rules_strerror(int err);

typedef struct fl_rules_s fl_rules_t;

/*
 * Parses and compiles a rules document (JSON text, len bytes, not
 * NUL-terminated). On success *out is a new rule set the caller frees with
 * fl_rules_free. On FL_RERR_INVALID / FL_RERR_TOO_LARGE errstr holds one
 * line naming the JSON path of the problem, e.g.
 * "rules[3].allow.paths[0]: bad pointer pattern".
 */
int fl_rules_parse(const char *json, size_t len, fl_rules_t **out, char *errstr,
                   size_t errstr_size);
void fl_rules_free(fl_rules_t *rules); /* NULL is safe */

uint32_t fl_rules_count(const fl_rules_t *rules);
fl_slice_t fl_rules_default_role(const fl_rules_t *rules);

/* The record context a rule set is evaluated with. user and ts come from
 * the flush (fl_flush_t.user, ts_ms); role is the role the gateway put in
 * the record (from the token's `role` claim), empty for "none": the rule
 * set's default role is used then. */
typedef struct fl_rules_ctx_s {
    fl_slice_t role;
} fl_rules_ctx_t;

/*
 * Checks a whole document state against every constraint of the rule set
 * (what `flushline rules check` reports). Calls on_violation(opaque, rule
 * name, location pointer) for each violating location, at most max times;
 * returns how many were found (capped at max), or FL_RERR_NOMEM.
 */
typedef void (*fl_rules_on_violation_t)(void *opaque, fl_slice_t rule, fl_slice_t where);
int fl_rules_check_doc(const fl_rules_t *rules, const fl_value_t *state, uint32_t max,
                       fl_rules_on_violation_t on_violation, void *opaque);

/* ---- used by the engine (core/engine) ---- */

/* Outcome of one rules step: FL_CODE_OK, FL_CODE_RULE_VIOLATION (with the
 * rule's name in *rule, borrowed from the rule set), or -1 on OOM. */

/* The tokens of a pointer (escaped, as in the pointer), split once per
 * command so that every pattern compares them without parsing the pointer
 * again: n counts them all, t holds the first FL_RULES_MAX_SEGMENTS + 1
 * (all a pattern can look at); esc is set when some token holds '~'. */
typedef struct fl_rules_toks_s {
    fl_slice_t t[FL_RULES_MAX_SEGMENTS + 1];
    uint32_t n;
    bool esc;
} fl_rules_toks_t;

/* The values along a command's path, resolved once by
 * fl_rules_check_command (on the state before the command) and reused by
 * fl_rules_check_after, which refreshes only what the command can have
 * moved. Filled by the rules (rules_eval.c); the engine reads it only to
 * find the location of a replace or incr whose whole path exists
 * (nodes[ntok] is the target, nodes[ntok - 1] its container, toks the
 * path's tokens), so that under rules a path is looked up once. */
typedef struct fl_rules_path_s {
    fl_rules_toks_t toks;
    const fl_value_t *nodes[FL_RULES_MAX_SEGMENTS + 1];
    uint32_t ntok, nnodes;
    bool valid;
    uint32_t parent_len;
    const void *parent_buf;
} fl_rules_path_t;

/* Before a command, on the state before it: allow rules, their
 * conditions, and stamp protection (RULES.md, Evaluation order 2-3). */
int fl_rules_check_command(const fl_rules_t *rules, const fl_rules_ctx_t *ctx,
                           const fl_flush_t *flush, const fl_value_t *root,
                           const fl_cmd_t *cmd, fl_arena_t *arena, fl_rules_path_t *pc,
                           fl_slice_t *rule);

/* True when some stamp may apply to op (a cheap filter). */
bool fl_rules_stamps_op(const fl_rules_t *rules, uint8_t op);

/*
 * Stamps the value a command writes at location loc (an escaped pointer:
 * the command's path, or for create its path + "/" + key). key is the
 * unescaped last token ($key). When a stamp applies, *out is a copy of
 * value (in arena) with the stamp's fields set and *stamped is true; else
 * *out = *value. 0 or -1 on OOM.
 */
int fl_rules_stamp(const fl_rules_t *rules, const fl_flush_t *flush, uint8_t op, fl_slice_t loc,
                   fl_slice_t key, uint64_t version, const fl_value_t *value, fl_arena_t *arena,
                   fl_value_t *out, bool *stamped);

/* After a command, on the state after it: the constraints at every location
 * the command may have changed (RULES.md, Evaluation order 5). eff is the
 * command's effective path (create: path + "/" + escaped key); when it is
 * the command's path, the tokens pc holds from fl_rules_check_command are
 * used. */
int fl_rules_check_after(const fl_rules_t *rules, const fl_value_t *root, const fl_cmd_t *cmd,
                         fl_slice_t eff, fl_arena_t *arena, const fl_rules_path_t *pc,
                         fl_slice_t *rule);

/* ---- catalogue: prefix -> rule set ---- */

typedef struct fl_rules_catalog_s fl_rules_catalog_t;

fl_rules_catalog_t *fl_rules_catalog_new(void);
void fl_rules_catalog_free(fl_rules_catalog_t *cat); /* frees the rule sets it holds */
/* Installs rules for prefix (copied), taking ownership of rules and freeing
 * the set it replaces; rules NULL removes the prefix's set. 0 or
 * FL_RERR_NOMEM (rules is then freed, the catalogue unchanged) or
 * FL_RERR_ARG (prefix above FL_RULES_MAX_PREFIX). */
int fl_rules_catalog_put(fl_rules_catalog_t *cat, fl_slice_t prefix, fl_rules_t *rules);
/* The set whose prefix is the longest prefix of doc_id, or NULL. */
const fl_rules_t *fl_rules_catalog_find(const fl_rules_catalog_t *cat, fl_slice_t doc_id);
uint32_t fl_rules_catalog_count(const fl_rules_catalog_t *cat);

#endif
