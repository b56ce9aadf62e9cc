/* SPDX-License-Identifier: Apache-2.0 */
/*
 * engine: documents, the primitives that change their state, and the undo
 * log (the commands are in ops.c, flushes and deltas in apply.c). Every
 * command mutates the state
 * through a few primitives (map insert/replace/remove, array
 * insert/replace/remove) that keep the encoded size up to date and append
 * an inverse operation to the undo log. A failed command, an atomic flush
 * that fails, a failed delta or an OOM rolls back to a mark in that log;
 * success commits it (frees the values it kept). Undo entries name their
 * container by pointer, not by address, because container buffers move
 * when their parents grow; undo runs in reverse, so each pointer resolves
 * to the container it named when the primitive ran.
 *
 * The semantics (which code when) are specified in schemas/ENGINE.md; keep
 * both in step.
 */
#include <stdlib.h>
#include <string.h>

#include "engine_int.h"

const fl_engine_config_t fl_engine_config_default = {
    .max_state_bytes = 1u << 20,
    .max_depth = 64,
    .max_dedup = 4096,
};

const char *fl_engine_strerror(int err)
{
    switch (err) {
    case 0:
        return "success";
    case FL_EERR_NOMEM:
        return "out of memory";
    case FL_EERR_ARG:
        return "invalid argument";
    case FL_EERR_DELTA:
        return "delta does not apply to this document";
    case FL_EERR_CHAIN:
        return "chain hash mismatch after delta";
    case FL_EERR_RESTORE:
        return "malformed snapshot data";
    default:
        return "unknown engine error";
    }
}

/* ---------------------------------------------------------------- scratch */

fl_engine_scratch_t *fl_engine_scratch_new(void)
{
    fl_engine_scratch_t *scr = calloc(1, sizeof *scr);
    if (!scr)
        return NULL;
    msgpack_sbuffer_init(&scr->sbuf);
    if (!(scr->arena = fl_arena_new(4096))) {
        free(scr);
        return NULL;
    }
    return scr;
}

void fl_engine_scratch_free(fl_engine_scratch_t *scr)
{
    if (!scr)
        return;
    fl_arena_free(scr->arena);
    msgpack_sbuffer_destroy(&scr->sbuf);
    free(scr);
}

/* ---------------------------------------------------------------- doc */

fl_doc_t *fl_doc_new(fl_slice_t doc_id, const fl_engine_config_t *cfg)
{
    if (doc_id.len == 0 || doc_id.len > FL_DOC_ID_MAX || !doc_id.ptr)
        return NULL;
    fl_doc_t *doc = calloc(1, sizeof(*doc));
    if (!doc)
        return NULL;
    doc->cfg = cfg ? *cfg : fl_engine_config_default;
    doc->id = malloc(doc_id.len);
    doc->dedup = fl_dedup_new(doc->cfg.max_dedup);
    doc->own_scr = !doc->cfg.scratch;
    doc->scr = doc->own_scr ? fl_engine_scratch_new() : doc->cfg.scratch;
    if (!doc->id || !doc->dedup || !doc->scr || fl_value_new_map(&doc->root) < 0)
        goto fail;
    memcpy(doc->id, doc_id.ptr, doc_id.len);
    doc->idlen = doc_id.len;
    doc->size = fl_value_encoded_size(&doc->root);
    return doc;
fail:
    fl_doc_free(doc);
    return NULL;
}

void fl_doc_free(fl_doc_t *doc)
{
    if (!doc)
        return;
    fl_value_free(&doc->root);
    fl_dedup_free(doc->dedup);
    if (doc->own_scr)
        fl_engine_scratch_free(doc->scr);
    free(doc->undo);
    free(doc->id);
    free(doc);
}

uint32_t fl_state_depth(const fl_value_t *v)
{
    uint32_t d = 0;
    if (v->type == FL_ARRAY) {
        for (uint32_t i = 0; i < v->len; i++) {
            uint32_t c = fl_state_depth(&v->u.items[i]);
            if (c > d)
                d = c;
        }
        return d + 1;
    }
    if (v->type == FL_MAP) {
        for (uint32_t i = 0; i < v->len; i++) {
            uint32_t c = fl_state_depth(&v->u.ents[i].val);
            if (c > d)
                d = c;
        }
        return d + 1;
    }
    return 0;
}

int fl_doc_restore(fl_doc_t *doc, const fl_value_t *state, uint64_t version,
                   const uint8_t chain[FL_HASH_LEN])
{
    if (!doc || !state || !chain)
        return FL_EERR_ARG;
    if (state->type != FL_MAP || fl_state_depth(state) > doc->cfg.max_depth)
        return FL_EERR_RESTORE;
    size_t size = fl_value_encoded_size(state);
    if (size > doc->cfg.max_state_bytes)
        return FL_EERR_RESTORE;
    fl_value_t copy;
    if (fl_value_clone(&copy, state) < 0)
        return FL_EERR_NOMEM;
    fl_value_free(&doc->root);
    doc->root = copy;
    doc->size = size;
    doc->version = version;
    memcpy(doc->chain, chain, FL_HASH_LEN);
    return 0;
}

fl_slice_t fl_doc_id(const fl_doc_t *doc)
{
    return (fl_slice_t){doc->id, doc->idlen};
}
const fl_value_t *fl_doc_state(const fl_doc_t *doc)
{
    return &doc->root;
}
uint64_t fl_doc_version(const fl_doc_t *doc)
{
    return doc->version;
}
const uint8_t *fl_doc_chain(const fl_doc_t *doc)
{
    return doc->chain;
}
/* ---- memory footprint ------------------------------------------------- */

/* What malloc(n) takes from glibc's heap: n plus its 8-byte header,
 * rounded to 16, at least 32. */
static size_t alloc_size(size_t n)
{
    size_t c = (n + 8 + 15) & ~(size_t)15;
    return c < 32 ? 32 : c;
}

static size_t value_mem(const fl_value_t *v)
{
    size_t n = 0;
    switch (v->type) {
    case FL_STR:
    case FL_BIN:
        return v->u.str ? alloc_size(v->len) : 0;
    case FL_ARRAY:
        /* heap containers keep a 16-byte capacity header before the items */
        if (v->u.items)
            n += alloc_size(16 + (size_t)v->len * sizeof(fl_value_t));
        for (uint32_t i = 0; i < v->len; i++)
            n += value_mem(&v->u.items[i]);
        return n;
    case FL_MAP:
        if (v->u.ents)
            n += alloc_size(16 + (size_t)v->len * sizeof(fl_entry_t));
        for (uint32_t i = 0; i < v->len; i++)
            n += alloc_size(v->u.ents[i].klen) + value_mem(&v->u.ents[i].val);
        return n;
    default:
        return 0;
    }
}

size_t fl_doc_mem(const fl_doc_t *doc)
{
    size_t n = alloc_size(sizeof *doc) + alloc_size(doc->idlen);
    n += value_mem(&doc->root);
    n += fl_dedup_mem(doc->dedup, alloc_size);
    if (doc->undocap)
        n += alloc_size((size_t)doc->undocap * sizeof *doc->undo);
    if (!doc->own_scr)
        return n; /* shared: counted once by its owner */
    n += alloc_size(sizeof *doc->scr);
    if (doc->scr->sbuf.alloc)
        n += alloc_size(doc->scr->sbuf.alloc);
    /* the scratch arena: its struct and first 4 KiB block (kept across
     * resets); larger blocks are freed by the reset that follows a use */
    n += alloc_size(32) + alloc_size(4096 + 32);
    return n;
}

size_t fl_doc_size(const fl_doc_t *doc)
{
    return doc->size;
}
void fl_doc_digest(const fl_doc_t *doc, uint8_t out[FL_HASH_LEN])
{
    fl_value_digest(&doc->root, out);
}

uint32_t fl_doc_dedup_count(const fl_doc_t *doc)
{
    return fl_dedup_count(doc->dedup);
}

uint32_t fl_doc_dedup_export(const fl_doc_t *doc, fl_dedup_entry_t *out, uint32_t cap)
{
    return fl_dedup_export(doc->dedup, out, cap);
}

/* Decodes a dedup blob: [code, vbefore, vafter, chain bin, results]. */
int fl_blob_decode(const char *blob, size_t len, fl_arena_t *arena, fl_value_t *v,
                   const uint8_t **chain)
{
    long n = fl_value_decode(blob, len, &fl_limits_default, arena, v);
    if (n < 0 || (size_t)n != len || v->type != FL_ARRAY || v->len != 5)
        return -1;
    fl_value_t *it = v->u.items;
    if (it[0].type != FL_INT || it[1].type != FL_INT || it[2].type != FL_INT ||
        it[3].type != FL_BIN || it[3].len != FL_HASH_LEN || it[4].type != FL_ARRAY ||
        it[1].u.i < 0 || it[2].u.i < it[1].u.i)
        return -1;
    for (uint32_t i = 0; i < it[4].len; i++) {
        const fl_value_t *r = &it[4].u.items[i];
        if (r->type == FL_INT)
            continue;
        /* [code, key] or, for a rule violation, [code, nil, rule] */
        if (r->type != FL_ARRAY || (r->len != 2 && r->len != 3) ||
            r->u.items[0].type != FL_INT ||
            r->u.items[1].type != (r->len == 2 ? FL_STR : FL_NIL) ||
            (r->len == 3 && r->u.items[2].type != FL_STR))
            return -1;
    }
    *chain = (const uint8_t *)it[3].u.str;
    return 0;
}

uint64_t fl_doc_dedup_evictions(const fl_doc_t *doc)
{
    return fl_dedup_evictions(doc->dedup);
}

void fl_doc_dedup_set_evictions(fl_doc_t *doc, uint64_t n)
{
    fl_dedup_set_evictions(doc->dedup, n);
}

int fl_doc_dedup_restore(fl_doc_t *doc, const fl_dedup_entry_t *ents, uint32_t n)
{
    if (!doc || (n && !ents))
        return FL_EERR_ARG;
    fl_dedup_clear(doc->dedup);
    for (uint32_t i = 0; i < n; i++) {
        fl_value_t v;
        const uint8_t *chain;
        fl_arena_reset(doc->scr->arena);
        if (fl_blob_decode(ents[i].outcome.ptr, ents[i].outcome.len, doc->scr->arena, &v,
                           &chain) < 0 ||
            ents[i].seq == 0)
            return FL_EERR_RESTORE;
        if (fl_dedup_record(doc->dedup, ents[i].client_id, ents[i].seq, ents[i].outcome.ptr,
                            ents[i].outcome.len) < 0)
            return FL_EERR_NOMEM;
    }
    /* The count comes from the snapshot (fl_doc_dedup_set_evictions), not
     * from loading: entries dropped here (n > max_dedup) are not counted. */
    fl_dedup_set_evictions(doc->dedup, 0);
    return 0;
}

/* ------------------------------------------------------ primitives + undo */

static int undo_push(fl_doc_t *doc, undo_kind_t kind, const loc_t *loc, fl_slice_t parent,
                     const char *key, size_t klen, fl_value_t *old)
{
    if (doc->nundo == doc->undocap) {
        uint32_t ncap = doc->undocap ? doc->undocap * 2 : 64;
        undo_t *u = realloc(doc->undo, (size_t)ncap * sizeof(*u));
        if (!u)
            return FL_EERR_NOMEM;
        doc->undo = u;
        doc->undocap = ncap;
    }
    undo_t *u = &doc->undo[doc->nundo++];
    u->kind = (uint8_t)kind;
    u->handback = false;
    u->idx = loc ? loc->idx : 0;
    u->parent = parent;
    u->key = key;
    u->klen = klen;
    if (old) {
        u->old = *old;
        *old = fl_value_nil();
    } else {
        u->old = fl_value_nil();
    }
    return 0;
}

/* Frees what undo entries since mark kept and drops them. */
void fl_undo_commit(fl_doc_t *doc, uint32_t mark)
{
    for (uint32_t i = mark; i < doc->nundo; i++)
        fl_value_free(&doc->undo[i].old);
    doc->nundo = mark;
}

/* Reverts every primitive since mark, newest first. The caller restores
 * size and version. Cannot fail except on OOM of the library's map/array
 * operations when re-inserting, which reuse capacity they had. */
void fl_undo_rollback(fl_doc_t *doc, uint32_t mark)
{
    while (doc->nundo > mark) {
        undo_t *u = &doc->undo[--doc->nundo];
        loc_t loc;
        fl_arena_reset(doc->scr->arena);
        int rc = fl_ptr_resolve(&doc->root, u->parent, PTR_EXISTING, doc->scr->arena, &loc);
        fl_value_t *c = loc.target;
        if (rc != FL_CODE_OK || !c) {
            /* cannot happen: the log is exact; keep memory safe anyway */
            fl_value_free(&u->old);
            continue;
        }
        fl_value_t cur = fl_value_nil(), *slot;
        switch (u->kind) {
        case U_MAP_DEL:
            fl_map_remove(c, u->key, u->klen, u->handback ? &cur : NULL);
            break;
        case U_MAP_PUT:
            slot = fl_map_get(c, u->key, u->klen);
            if (slot) {
                cur = *slot;
                *slot = u->old;
                u->old = fl_value_nil();
                if (!u->handback)
                    fl_value_free(&cur);
            } else if (fl_map_set(c, u->key, u->klen, &u->old) < 0) {
                fl_value_free(&u->old);
            }
            break;
        case U_ARR_DEL:
            fl_array_remove(c, u->idx, u->handback ? &cur : NULL);
            break;
        case U_ARR_INS:
            if (fl_array_insert(c, u->idx, &u->old) < 0)
                fl_value_free(&u->old);
            break;
        case U_ARR_SET:
            fl_value_free(&c->u.items[u->idx]);
            c->u.items[u->idx] = u->old;
            u->old = fl_value_nil();
            break;
        }
        /* a moved value returns to the fl_state_take() entry, undone next */
        if (u->handback && doc->nundo > mark)
            doc->undo[doc->nundo - 1].old = cur;
        else
            fl_value_free(&cur);
    }
}

/* Puts heap value *v (moved) at loc: a new map key, a replaced map value, an
 * array insertion (insert = true) or an array replacement. */
int fl_state_put(fl_doc_t *doc, const loc_t *loc, fl_value_t *v, bool insert)
{
    fl_value_t *c = loc->parent;
    size_t vs = fl_value_encoded_size(v);
    if (c->type == FL_MAP) {
        if (loc->target) {
            fl_value_t *slot = loc->target;
            size_t os = fl_value_encoded_size(slot);
            if (undo_push(doc, U_MAP_PUT, loc, loc->parent_ptr, loc->key, loc->klen, slot) < 0)
                return FL_EERR_NOMEM;
            *slot = *v;
            *v = fl_value_nil();
            doc->size = doc->size + vs - os;
            return 0;
        }
        if (!fl_utf8_valid(loc->key, loc->klen))
            return FL_CODE_INVALID;
        uint32_t n = c->len;
        if (undo_push(doc, U_MAP_DEL, loc, loc->parent_ptr, loc->key, loc->klen, NULL) < 0)
            return FL_EERR_NOMEM;
        if (fl_map_set(c, loc->key, loc->klen, v) < 0) {
            doc->nundo--;
            return FL_EERR_NOMEM;
        }
        doc->size = doc->size + vs + fl_str_size(loc->klen) + fl_hdr_size(n + 1) - fl_hdr_size(n);
        return 0;
    }
    if (insert) {
        uint32_t n = c->len;
        if (undo_push(doc, U_ARR_DEL, loc, loc->parent_ptr, NULL, 0, NULL) < 0)
            return FL_EERR_NOMEM;
        if (fl_array_insert(c, loc->idx, v) < 0) {
            doc->nundo--;
            return FL_EERR_NOMEM;
        }
        doc->size = doc->size + vs + fl_hdr_size(n + 1) - fl_hdr_size(n);
        return 0;
    }
    fl_value_t *slot = &c->u.items[loc->idx];
    size_t os = fl_value_encoded_size(slot);
    if (undo_push(doc, U_ARR_SET, loc, loc->parent_ptr, NULL, 0, slot) < 0)
        return FL_EERR_NOMEM;
    *slot = *v;
    *v = fl_value_nil();
    doc->size = doc->size + vs - os;
    return 0;
}

/* Removes the existing target at loc; the value is kept by the undo log and
 * a shallow copy is returned in *taken when wanted (valid until commit). */
int fl_state_take(fl_doc_t *doc, const loc_t *loc, fl_value_t *taken)
{
    fl_value_t *c = loc->parent;
    uint32_t n = c->len;
    size_t os = fl_value_encoded_size(loc->target);
    fl_value_t old;
    if (c->type == FL_MAP) {
        if (undo_push(doc, U_MAP_PUT, loc, loc->parent_ptr, loc->key, loc->klen, NULL) < 0)
            return FL_EERR_NOMEM;
        fl_map_remove(c, loc->key, loc->klen, &old);
        doc->size = doc->size - os - fl_str_size(loc->klen) + fl_hdr_size(n - 1) - fl_hdr_size(n);
    } else {
        if (undo_push(doc, U_ARR_INS, loc, loc->parent_ptr, NULL, 0, NULL) < 0)
            return FL_EERR_NOMEM;
        fl_array_remove(c, loc->idx, &old);
        doc->size = doc->size - os + fl_hdr_size(n - 1) - fl_hdr_size(n);
    }
    doc->undo[doc->nundo - 1].old = old;
    if (taken)
        *taken = old;
    return 0;
}


int fl_state_check_depth(const fl_doc_t *doc, uint32_t level, const fl_value_t *v)
{
    if (v->type != FL_MAP && v->type != FL_ARRAY)
        return FL_CODE_OK;
    return level + fl_state_depth(v) > doc->cfg.max_depth ? FL_CODE_TOO_LARGE : FL_CODE_OK;
}

/* Clones v into the heap and puts it at loc. */
int fl_state_put_clone(fl_doc_t *doc, const loc_t *loc, const fl_value_t *v, bool insert)
{
    fl_value_t copy;
    if (fl_value_clone(&copy, v) < 0)
        return FL_EERR_NOMEM;
    int rc = fl_state_put(doc, loc, &copy, insert);
    fl_value_free(&copy);
    return rc;
}
