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

#include "flushline/engine.h"

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

#endif
