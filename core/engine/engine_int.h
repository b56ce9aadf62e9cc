/* SPDX-License-Identifier: Apache-2.0 */
/*
 * engine_int: internals shared by the engine's files: RFC 6901 pointer
 * resolution (pointer.c), the per-document dedup table (dedup.c) and the
 * msgpack size arithmetic used to track the state's encoded size without
 * re-encoding it.
 */
#ifndef FL_ENGINE_INT_H
#define FL_ENGINE_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <msgpack.h>

#include "flushline/engine.h"
#include "flushline/rules.h"

#define FL_NONE UINT32_MAX

/* ---- pointers ---- */

typedef enum {
    PTR_EXISTING, /* the target must exist */
    PTR_ADD,      /* the last token may name a new map key, idx == len or "-" */
    PTR_UPSERT,   /* the last token may name a new map key (incr, merge) */
} ptr_mode_t;

/* Where a pointer leads. parent is NULL for the root ("" pointer). */
typedef struct loc_s {
    fl_value_t *parent; /* map or array holding the target */
    fl_value_t *target; /* the value, or NULL when it does not exist yet */
    const char *key;    /* last token, unescaped (maps) */
    size_t klen;
    uint32_t idx;       /* map entry index (found or insertion point), or array index */
    uint32_t level;     /* number of tokens: containers enclosing the target */
    fl_slice_t parent_ptr; /* raw prefix of the pointer naming parent */
} loc_t;

/* 0 when p is "" or "/..." with only ~0 / ~1 escapes, else FL_CODE_INVALID. */
int fl_ptr_check(fl_slice_t p);
/* Resolves p (already checked) on root. Returns FL_CODE_OK or a command
 * code (path_not_found, type_mismatch, invalid); -1 on OOM. Unescaped
 * tokens are copied into arena when they contain escapes. */
int fl_ptr_resolve(fl_value_t *root, fl_slice_t p, ptr_mode_t mode, fl_arena_t *arena, loc_t *loc);
/* True when a is a proper prefix of b on a token boundary ("/a" of "/a/b"). */
bool fl_ptr_is_proper_prefix(fl_slice_t a, fl_slice_t b);

/* ---- sizes of the canonical encoding ---- */

static inline size_t fl_hdr_size(uint32_t n)
{
    return n < 16 ? 1 : n < 65536 ? 3 : 5;
}
static inline size_t fl_str_size(size_t n)
{
    return n + (n < 32 ? 1 : n < 256 ? 2 : n < 65536 ? 3 : 5);
}

/* ---- dedup table ---- */

typedef struct fl_dedup_s fl_dedup_t;

typedef struct dd_ent_s {
    uint8_t cid[FL_CLIENT_ID_LEN];
    uint64_t seq;
    char *blob;
    size_t blen, bcap;
    uint32_t hnext, prev, next;
} dd_ent_t;

fl_dedup_t *fl_dedup_new(uint32_t max);
void fl_dedup_free(fl_dedup_t *dd);
void fl_dedup_clear(fl_dedup_t *dd);
dd_ent_t *fl_dedup_find(fl_dedup_t *dd, const uint8_t cid[FL_CLIENT_ID_LEN]);
/* Upserts cid with (seq, blob copy) and makes it the newest entry, evicting
 * the oldest when full. 0 or FL_EERR_NOMEM (table unchanged). */
int fl_dedup_record(fl_dedup_t *dd, const uint8_t cid[FL_CLIENT_ID_LEN], uint64_t seq,
                    const char *blob, size_t blen);
uint32_t fl_dedup_count(const fl_dedup_t *dd);
/* Entries evicted by fl_dedup_record so far (fl_dedup_clear keeps it). */
uint64_t fl_dedup_evictions(const fl_dedup_t *dd);
void fl_dedup_set_evictions(fl_dedup_t *dd, uint64_t n);
/* Heap bytes of the table (fl_doc_mem), with alloc_size rounding each
 * allocation as the allocator does. */
size_t fl_dedup_mem(const fl_dedup_t *dd, size_t (*alloc_size)(size_t));
/* Entries oldest first. */
uint32_t fl_dedup_export(const fl_dedup_t *dd, fl_dedup_entry_t *out, uint32_t cap);

/* ---- documents: the state, its undo log (engine.c) ---- */

typedef enum {
    U_MAP_DEL, /* a key was inserted: remove it */
    U_MAP_PUT, /* a key was removed or replaced: put old back */
    U_ARR_DEL, /* an item was inserted at idx: remove it */
    U_ARR_INS, /* an item was removed from idx: insert old */
    U_ARR_SET, /* an item was replaced at idx: put old back */
} undo_kind_t;

typedef struct undo_s {
    uint8_t kind;
    bool handback;     /* move: the value undone here goes back to the entry before */
    uint32_t idx;
    fl_slice_t parent; /* pointer naming the container (raw, escaped) */
    const char *key;   /* unescaped, lives in the flush or the arena */
    size_t klen;
    fl_value_t old;    /* heap value kept for U_MAP_PUT, U_ARR_INS, U_ARR_SET */
} undo_t;

struct fl_engine_scratch_s {
    msgpack_sbuffer sbuf; /* chain input and dedup blobs */
    fl_arena_t *arena;    /* restore and undo resolution */
};

struct fl_doc_s {
    char *id;
    size_t idlen;
    fl_engine_config_t cfg;
    fl_value_t root;
    uint64_t version;
    uint8_t chain[FL_HASH_LEN];
    size_t size;
    fl_dedup_t *dedup;
    undo_t *undo;
    uint32_t nundo, undocap;
    fl_engine_scratch_t *scr; /* cfg.scratch, or the document's own (own_scr) */
    bool own_scr;
    bool strict;          /* replaying a delta: create keys as given */
};

/* Containers enclosing the deepest value in v (0 for a scalar). */
uint32_t fl_state_depth(const fl_value_t *v);
/* FL_CODE_TOO_LARGE when v put at level would pass max_depth. */
int fl_state_check_depth(const fl_doc_t *doc, uint32_t level, const fl_value_t *v);
/* The primitives: each logs its inverse and keeps doc->size exact. put
 * moves heap value *v to loc (insert: array insertion); put_clone puts a
 * heap copy of v; take removes the value at loc, handing it to *taken when
 * given (the undo log keeps it). 0 or FL_EERR_NOMEM. */
int fl_state_put(fl_doc_t *doc, const loc_t *loc, fl_value_t *v, bool insert);
int fl_state_put_clone(fl_doc_t *doc, const loc_t *loc, const fl_value_t *v, bool insert);
int fl_state_take(fl_doc_t *doc, const loc_t *loc, fl_value_t *taken);
/* Frees what undo entries since mark kept and drops them. */
void fl_undo_commit(fl_doc_t *doc, uint32_t mark);
/* Reverts every primitive since mark, newest first; the caller restores
 * size and version. */
void fl_undo_rollback(fl_doc_t *doc, uint32_t mark);
/* Decodes a dedup blob: [code, vbefore, vafter, chain bin, results].
 * 0 or -1 when it is not one. */
int fl_blob_decode(const char *blob, size_t len, fl_arena_t *arena, fl_value_t *v,
                   const uint8_t **chain);

/* ---- one command (ops.c) ---- */

typedef struct ctx_s {
    fl_doc_t *doc;
    fl_arena_t *arena;
    fl_slice_t key; /* create: the key used */
    bool has_key;   /* key is set (it may be "") */
    /* rules (NULL: none; RULES.md) */
    const fl_rules_t *rules;
    const fl_rules_ctx_t *rctx;
    const fl_flush_t *flush;
    fl_slice_t rule;   /* the rule a rule_violation names */
    fl_value_t sval;   /* the stamped value, when stamped */
    bool stamped;
    fl_rules_path_t rpath; /* the command's path, resolved once for the rules */
} ctx_t;

/* Applies one command with its own undo mark: on a rejection the state is
 * as before. Returns a code (>= 0) or FL_EERR_NOMEM (also rolled back). */
int fl_apply_cmd(ctx_t *cx, const fl_cmd_t *cmd);

#endif
