/* SPDX-License-Identifier: Apache-2.0 */
/*
 * engine: documents and the apply loop. Every command mutates the state
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
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "engine_int.h"
#include "flushline/rules.h"

const fl_engine_config_t fl_engine_config_default = {
    .max_state_bytes = 1u << 20,
    .max_depth = 64,
    .max_dedup = 4096,
};

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
    msgpack_sbuffer sbuf; /* scratch for chain input and dedup blobs */
    fl_arena_t *scratch;  /* for restore and undo resolution */
    bool strict;          /* replaying a delta: create keys as given */
};

static const char *const op_names[] = {
    NULL, "add", "remove", "replace", "move", "copy", "test", "incr", "merge", "create",
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
    doc->scratch = fl_arena_new(4096);
    msgpack_sbuffer_init(&doc->sbuf);
    if (!doc->id || !doc->dedup || !doc->scratch || fl_value_new_map(&doc->root) < 0)
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
    fl_arena_free(doc->scratch);
    msgpack_sbuffer_destroy(&doc->sbuf);
    free(doc->undo);
    free(doc->id);
    free(doc);
}

static uint32_t value_depth(const fl_value_t *v)
{
    uint32_t d = 0;
    if (v->type == FL_ARRAY) {
        for (uint32_t i = 0; i < v->len; i++) {
            uint32_t c = value_depth(&v->u.items[i]);
            if (c > d)
                d = c;
        }
        return d + 1;
    }
    if (v->type == FL_MAP) {
        for (uint32_t i = 0; i < v->len; i++) {
            uint32_t c = value_depth(&v->u.ents[i].val);
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
    if (state->type != FL_MAP || value_depth(state) > doc->cfg.max_depth)
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
    if (doc->sbuf.alloc)
        n += alloc_size(doc->sbuf.alloc);
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
static int blob_decode(const char *blob, size_t len, fl_arena_t *arena, fl_value_t *v,
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
        fl_arena_reset(doc->scratch);
        if (blob_decode(ents[i].outcome.ptr, ents[i].outcome.len, doc->scratch, &v, &chain) < 0 ||
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
static void undo_commit(fl_doc_t *doc, uint32_t mark)
{
    for (uint32_t i = mark; i < doc->nundo; i++)
        fl_value_free(&doc->undo[i].old);
    doc->nundo = mark;
}

/* Reverts every primitive since mark, newest first. The caller restores
 * size and version. Cannot fail except on OOM of the library's map/array
 * operations when re-inserting, which reuse capacity they had. */
static void undo_rollback(fl_doc_t *doc, uint32_t mark)
{
    while (doc->nundo > mark) {
        undo_t *u = &doc->undo[--doc->nundo];
        loc_t loc;
        fl_arena_reset(doc->scratch);
        int rc = fl_ptr_resolve(&doc->root, u->parent, PTR_EXISTING, doc->scratch, &loc);
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
        /* a moved value returns to the take() entry, undone next */
        if (u->handback && doc->nundo > mark)
            doc->undo[doc->nundo - 1].old = cur;
        else
            fl_value_free(&cur);
    }
}

/* Puts heap value *v (moved) at loc: a new map key, a replaced map value, an
 * array insertion (insert = true) or an array replacement. */
static int put(fl_doc_t *doc, const loc_t *loc, fl_value_t *v, bool insert)
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
static int take(fl_doc_t *doc, const loc_t *loc, fl_value_t *taken)
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

/* ------------------------------------------------------------- commands */

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

static int check_depth(const fl_doc_t *doc, uint32_t level, const fl_value_t *v)
{
    if (v->type != FL_MAP && v->type != FL_ARRAY)
        return FL_CODE_OK;
    return level + value_depth(v) > doc->cfg.max_depth ? FL_CODE_TOO_LARGE : FL_CODE_OK;
}

/* Clones v into the heap and puts it at loc. */
static int put_clone(fl_doc_t *doc, const loc_t *loc, const fl_value_t *v, bool insert)
{
    fl_value_t copy;
    if (fl_value_clone(&copy, v) < 0)
        return FL_EERR_NOMEM;
    int rc = put(doc, loc, &copy, insert);
    fl_value_free(&copy);
    return rc;
}

static int op_add(ctx_t *cx, const fl_cmd_t *cmd)
{
    loc_t loc;
    int rc = fl_ptr_resolve(&cx->doc->root, cmd->path, PTR_ADD, cx->arena, &loc);
    if (rc != FL_CODE_OK)
        return rc;
    if ((rc = check_depth(cx->doc, loc.level, &cmd->value)) != FL_CODE_OK)
        return rc;
    return put_clone(cx->doc, &loc, &cmd->value, loc.parent->type == FL_ARRAY);
}

static int op_remove(ctx_t *cx, const fl_cmd_t *cmd)
{
    loc_t loc;
    int rc = fl_ptr_resolve(&cx->doc->root, cmd->path, PTR_EXISTING, cx->arena, &loc);
    if (rc != FL_CODE_OK)
        return rc;
    return take(cx->doc, &loc, NULL);
}

static int op_replace(ctx_t *cx, const fl_cmd_t *cmd)
{
    loc_t loc;
    int rc = fl_ptr_resolve(&cx->doc->root, cmd->path, PTR_EXISTING, cx->arena, &loc);
    if (rc != FL_CODE_OK)
        return rc;
    if ((rc = check_depth(cx->doc, loc.level, &cmd->value)) != FL_CODE_OK)
        return rc;
    return put_clone(cx->doc, &loc, &cmd->value, false);
}

static int op_move(ctx_t *cx, const fl_cmd_t *cmd)
{
    loc_t from, to;
    fl_value_t v;
    int rc = fl_ptr_resolve(&cx->doc->root, cmd->from, PTR_EXISTING, cx->arena, &from);
    if (rc != FL_CODE_OK)
        return rc;
    if (cmd->from.len == cmd->path.len && memcmp(cmd->from.ptr, cmd->path.ptr, cmd->from.len) == 0)
        return FL_CODE_OK; /* moving onto itself changes nothing */
    uint32_t depth = value_depth(from.target);
    if ((rc = take(cx->doc, &from, &v)) != 0)
        return rc;
    /* the undo log owns the taken value; detach it so put() moves a copy of
     * the tree's root struct while the log keeps nothing to free */
    cx->doc->undo[cx->doc->nundo - 1].old = fl_value_nil();
    rc = fl_ptr_resolve(&cx->doc->root, cmd->path, PTR_ADD, cx->arena, &to);
    if (rc == FL_CODE_OK && depth && to.level + depth > cx->doc->cfg.max_depth)
        rc = FL_CODE_TOO_LARGE;
    if (rc == FL_CODE_OK)
        rc = put(cx->doc, &to, &v, to.parent->type == FL_ARRAY);
    if (rc != FL_CODE_OK) {
        /* give the value back to the log so the rollback re-inserts it */
        cx->doc->undo[cx->doc->nundo - 1].old = v;
        return rc;
    }
    /* if the flush is rolled back later, the value must travel back */
    cx->doc->undo[cx->doc->nundo - 1].handback = true;
    return FL_CODE_OK;
}

static int op_copy(ctx_t *cx, const fl_cmd_t *cmd)
{
    loc_t from, to;
    int rc = fl_ptr_resolve(&cx->doc->root, cmd->from, PTR_EXISTING, cx->arena, &from);
    if (rc != FL_CODE_OK)
        return rc;
    rc = fl_ptr_resolve(&cx->doc->root, cmd->path, PTR_ADD, cx->arena, &to);
    if (rc != FL_CODE_OK)
        return rc;
    if ((rc = check_depth(cx->doc, to.level, from.target)) != FL_CODE_OK)
        return rc;
    return put_clone(cx->doc, &to, from.target, to.parent->type == FL_ARRAY);
}

static int op_test(ctx_t *cx, const fl_cmd_t *cmd)
{
    loc_t loc;
    int rc = fl_ptr_resolve(&cx->doc->root, cmd->path, PTR_EXISTING, cx->arena, &loc);
    if (rc != FL_CODE_OK)
        return rc;
    return fl_value_equal(loc.target, &cmd->value) ? FL_CODE_OK : FL_CODE_TEST_FAILED;
}

/* a + b with the incr rules: int + int stays int (overflow: too_large), any
 * float makes a float (non-finite: too_large). */
static int num_add(const fl_value_t *a, const fl_value_t *b, fl_value_t *out)
{
    if (a->type == FL_INT && b->type == FL_INT) {
        int64_t r;
        if (__builtin_add_overflow(a->u.i, b->u.i, &r))
            return FL_CODE_TOO_LARGE;
        *out = fl_value_int(r);
        return FL_CODE_OK;
    }
    double x = a->type == FL_INT ? (double)a->u.i : a->u.f;
    double y = b->type == FL_INT ? (double)b->u.i : b->u.f;
    double r = x + y;
    if (!isfinite(r))
        return FL_CODE_TOO_LARGE;
    *out = fl_value_nil();
    out->type = FL_FLOAT;
    out->u.f = r;
    return FL_CODE_OK;
}

static int op_incr(ctx_t *cx, const fl_cmd_t *cmd)
{
    loc_t loc;
    int rc = fl_ptr_resolve(&cx->doc->root, cmd->path, PTR_UPSERT, cx->arena, &loc);
    if (rc != FL_CODE_OK)
        return rc;
    fl_value_t zero = fl_value_int(0), sum;
    const fl_value_t *cur = loc.target ? loc.target : &zero;
    if (cur->type != FL_INT && cur->type != FL_FLOAT)
        return FL_CODE_TYPE_MISMATCH;
    if ((rc = num_add(cur, &cmd->value, &sum)) != FL_CODE_OK)
        return rc;
    return put(cx->doc, &loc, &sum, false);
}

static int op_merge(ctx_t *cx, const fl_cmd_t *cmd)
{
    loc_t loc;
    int rc = fl_ptr_resolve(&cx->doc->root, cmd->path, PTR_UPSERT, cx->arena, &loc);
    if (rc != FL_CODE_OK)
        return rc;
    if (!loc.target) {
        if ((rc = check_depth(cx->doc, loc.level, &cmd->value)) != FL_CODE_OK)
            return rc;
        return put_clone(cx->doc, &loc, &cmd->value, false);
    }
    if (loc.target->type != FL_MAP)
        return FL_CODE_TYPE_MISMATCH;
    for (uint32_t i = 0; i < cmd->value.len; i++) {
        const fl_entry_t *e = &cmd->value.u.ents[i];
        if (e->val.type == FL_MAP || e->val.type == FL_ARRAY) {
            if (loc.level + 1 + value_depth(&e->val) > cx->doc->cfg.max_depth)
                return FL_CODE_TOO_LARGE;
        }
    }
    /* the target map does not move while its own entries change */
    fl_value_t *map = loc.target;
    for (uint32_t i = 0; i < cmd->value.len; i++) {
        const fl_entry_t *e = &cmd->value.u.ents[i];
        loc_t kl = {0};
        bool found;
        kl.parent = map;
        kl.key = e->key;
        kl.klen = e->klen;
        kl.idx = fl_map_find(map, e->key, e->klen, &found);
        kl.target = found ? &map->u.ents[kl.idx].val : NULL;
        kl.level = loc.level + 1;
        kl.parent_ptr = cmd->path;
        if ((rc = put_clone(cx->doc, &kl, &e->val, false)) != 0)
            return rc;
    }
    return FL_CODE_OK;
}

static const char b32[] = "abcdefghijklmnopqrstuvwxyz234567";

void fl_engine_create_key(fl_slice_t doc_id, uint64_t version, uint32_t counter, char out[16])
{
    uint8_t tail[13], h[FL_HASH_LEN];
    tail[0] = 0;
    for (int i = 0; i < 8; i++)
        tail[1 + i] = (uint8_t)(version >> (56 - 8 * i));
    for (int i = 0; i < 4; i++)
        tail[9 + i] = (uint8_t)(counter >> (24 - 8 * i));
    crypto_generichash_state st;
    crypto_generichash_init(&st, NULL, 0, FL_HASH_LEN);
    crypto_generichash_update(&st, (const unsigned char *)doc_id.ptr, doc_id.len);
    crypto_generichash_update(&st, tail, sizeof(tail));
    crypto_generichash_final(&st, h, FL_HASH_LEN);
    /* 80 bits = 16 base32 digits, most significant bit first */
    for (int i = 0; i < 16; i++) {
        int bit = i * 5, v = 0;
        for (int k = 0; k < 5; k++, bit++)
            v = (v << 1) | ((h[bit / 8] >> (7 - bit % 8)) & 1);
        out[i] = b32[v];
    }
}

/* path + "/" + key escaped (RFC 6901), in arena: where create puts its value. */
static int key_loc(fl_arena_t *arena, fl_slice_t path, fl_slice_t key, fl_slice_t *out)
{
    size_t n = path.len + 1 + key.len;
    for (size_t i = 0; i < key.len; i++)
        n += key.ptr[i] == '~' || key.ptr[i] == '/';
    char *b = fl_arena_alloc(arena, n);
    if (!b)
        return -1;
    memcpy(b, path.ptr, path.len);
    size_t o = path.len;
    b[o++] = '/';
    for (size_t i = 0; i < key.len; i++) {
        if (key.ptr[i] == '~' || key.ptr[i] == '/') {
            b[o++] = '~';
            b[o++] = key.ptr[i] == '~' ? '0' : '1';
        } else {
            b[o++] = key.ptr[i];
        }
    }
    *out = (fl_slice_t){b, n};
    return 0;
}

/* The last token of a checked pointer, unescaped into arena ($key). */
static int last_token(fl_arena_t *arena, fl_slice_t path, fl_slice_t *out)
{
    size_t st = path.len;
    while (st > 0 && path.ptr[st - 1] != '/')
        st--;
    size_t n = path.len - st;
    char *b = fl_arena_alloc(arena, n ? n : 1);
    if (!b)
        return -1;
    size_t o = 0;
    for (size_t i = st; i < path.len; i++) {
        if (path.ptr[i] == '~') {
            b[o++] = path.ptr[i + 1] == '0' ? '~' : '/';
            i++;
        } else {
            b[o++] = path.ptr[i];
        }
    }
    *out = (fl_slice_t){b, o};
    return 0;
}

static int op_create(ctx_t *cx, const fl_cmd_t *cmd)
{
    loc_t loc;
    int rc = fl_ptr_resolve(&cx->doc->root, cmd->path, PTR_EXISTING, cx->arena, &loc);
    if (rc != FL_CODE_OK)
        return rc;
    fl_value_t *map = loc.target;
    if (map->type != FL_MAP)
        return FL_CODE_TYPE_MISMATCH;
    if ((rc = check_depth(cx->doc, loc.level + 1, &cmd->value)) != FL_CODE_OK)
        return rc;
    bool found = true;
    loc_t kl = {0};
    kl.parent = map;
    kl.level = loc.level + 1;
    kl.parent_ptr = cmd->path;
    if (cmd->has_key) {
        kl.idx = fl_map_find(map, cmd->key.ptr, cmd->key.len, &found);
        kl.key = cmd->key.len ? cmd->key.ptr : "";
        kl.klen = cmd->key.len;
    }
    if (found && cx->doc->strict)
        return FL_CODE_KEY_EXISTS;
    for (uint32_t counter = 0; found; counter++) {
        char *k = fl_arena_alloc(cx->arena, 16);
        if (!k)
            return FL_EERR_NOMEM;
        fl_engine_create_key(fl_doc_id(cx->doc), cx->doc->version + 1, counter, k);
        kl.idx = fl_map_find(map, k, 16, &found);
        kl.key = k;
        kl.klen = 16;
    }
    const fl_value_t *val = &cmd->value;
    if (cx->rules && fl_rules_stamps_op(cx->rules, FL_OP_CREATE)) {
        fl_slice_t where;
        if (key_loc(cx->arena, cmd->path, (fl_slice_t){kl.key, kl.klen}, &where) < 0 ||
            fl_rules_stamp(cx->rules, cx->flush, FL_OP_CREATE, where, (fl_slice_t){kl.key, kl.klen},
                           cx->doc->version + 1, &cmd->value, cx->arena, &cx->sval,
                           &cx->stamped) < 0)
            return FL_EERR_NOMEM;
        val = &cx->sval;
    }
    if ((rc = put_clone(cx->doc, &kl, val, false)) != 0)
        return rc;
    cx->key = (fl_slice_t){kl.key, kl.klen};
    cx->has_key = true;
    return FL_CODE_OK;
}

/* Shape checks that need no state: op, value, pointer syntax, root rules,
 * move into own child. */
static int check_cmd(const fl_cmd_t *cmd)
{
    bool from = cmd->op == FL_OP_MOVE || cmd->op == FL_OP_COPY;
    switch (cmd->op) {
    case FL_OP_ADD:
    case FL_OP_REPLACE:
    case FL_OP_TEST:
    case FL_OP_CREATE:
        if (!cmd->has_value)
            return FL_CODE_INVALID;
        break;
    case FL_OP_INCR:
        if (!cmd->has_value || (cmd->value.type != FL_INT && cmd->value.type != FL_FLOAT))
            return FL_CODE_INVALID;
        break;
    case FL_OP_MERGE:
        if (!cmd->has_value || cmd->value.type != FL_MAP)
            return FL_CODE_INVALID;
        break;
    case FL_OP_REMOVE:
    case FL_OP_MOVE:
    case FL_OP_COPY:
        break;
    default:
        return FL_CODE_INVALID;
    }
    if (cmd->op == FL_OP_CREATE && cmd->has_key && !fl_utf8_valid(cmd->key.ptr, cmd->key.len))
        return FL_CODE_INVALID;
    if (fl_ptr_check(cmd->path) != FL_CODE_OK || (from && fl_ptr_check(cmd->from) != FL_CODE_OK))
        return FL_CODE_INVALID;
    if (cmd->path.len == 0 && cmd->op != FL_OP_TEST && cmd->op != FL_OP_MERGE &&
        cmd->op != FL_OP_CREATE && cmd->op != FL_OP_INCR)
        return FL_CODE_FORBIDDEN;
    if (cmd->op == FL_OP_MOVE && cmd->from.len == 0)
        return FL_CODE_FORBIDDEN;
    if (cmd->op == FL_OP_MOVE && fl_ptr_is_proper_prefix(cmd->from, cmd->path))
        return FL_CODE_INVALID;
    return FL_CODE_OK;
}

/* Applies one command with its own undo mark: on a rejection the state is
 * as before. Returns a code (>= 0) or FL_EERR_NOMEM (also rolled back). */
static int apply_cmd(ctx_t *cx, const fl_cmd_t *cmd)
{
    fl_doc_t *doc = cx->doc;
    uint32_t mark = doc->nundo;
    size_t size0 = doc->size;
    int rc = check_cmd(cmd);
    fl_cmd_t stamped;
    cx->key = (fl_slice_t){NULL, 0};
    cx->has_key = false;
    if (rc != FL_CODE_OK)
        return rc;
    if (cx->rules) {
        /* RULES.md, Evaluation order: allow, conditions and stamp guards on
         * the state before the command, then stamps, then the command */
        cx->stamped = false;
        rc = fl_rules_check_command(cx->rules, cx->rctx, cx->flush, &doc->root, cmd, cx->arena,
                                    &cx->rpath, &cx->rule);
        if (rc != FL_CODE_OK)
            return rc < 0 ? FL_EERR_NOMEM : rc;
        if (cmd->op != FL_OP_CREATE && fl_rules_stamps_op(cx->rules, cmd->op)) {
            fl_slice_t key;
            if (last_token(cx->arena, cmd->path, &key) < 0 ||
                fl_rules_stamp(cx->rules, cx->flush, cmd->op, cmd->path, key, doc->version + 1,
                               &cmd->value, cx->arena, &cx->sval, &cx->stamped) < 0)
                return FL_EERR_NOMEM;
            if (cx->stamped) {
                stamped = *cmd;
                stamped.value = cx->sval;
                cmd = &stamped;
            }
        }
    }
    switch (cmd->op) {
    case FL_OP_ADD:
        rc = op_add(cx, cmd);
        break;
    case FL_OP_REMOVE:
        rc = op_remove(cx, cmd);
        break;
    case FL_OP_REPLACE:
        rc = op_replace(cx, cmd);
        break;
    case FL_OP_MOVE:
        rc = op_move(cx, cmd);
        break;
    case FL_OP_COPY:
        rc = op_copy(cx, cmd);
        break;
    case FL_OP_TEST:
        rc = op_test(cx, cmd);
        break;
    case FL_OP_INCR:
        rc = op_incr(cx, cmd);
        break;
    case FL_OP_MERGE:
        rc = op_merge(cx, cmd);
        break;
    case FL_OP_CREATE:
        rc = op_create(cx, cmd);
        break;
    }
    if (rc == -1)
        rc = FL_EERR_NOMEM;
    if (rc == FL_CODE_OK && doc->size > doc->cfg.max_state_bytes)
        rc = FL_CODE_TOO_LARGE;
    if (rc == FL_CODE_OK && cx->rules) {
        /* constraints on the state after the command (and its stamps) */
        fl_slice_t eff = cmd->path;
        if (cmd->op == FL_OP_CREATE && key_loc(cx->arena, cmd->path, cx->key, &eff) < 0)
            rc = FL_EERR_NOMEM;
        else
            rc = fl_rules_check_after(cx->rules, &doc->root, cmd, eff, cx->arena, &cx->rpath,
                                      &cx->rule);
    }
    if (rc != FL_CODE_OK) {
        undo_rollback(doc, mark);
        doc->size = size0;
        cx->key = (fl_slice_t){NULL, 0};
        cx->has_key = false;
        return rc;
    }
    doc->version++;
    return FL_CODE_OK;
}

/* ---------------------------------------------------------- chain, blobs */

static int pack_int(msgpack_packer *pk, uint64_t i)
{
    fl_value_t v = fl_value_int((int64_t)i);
    return fl_value_pack(pk, &v);
}

static int pack_str(msgpack_packer *pk, const char *p, size_t n)
{
    fl_value_t v = fl_value_nil();
    v.type = FL_STR;
    v.len = (uint32_t)n;
    v.u.str = (char *)p;
    return fl_value_pack(pk, &v);
}

/* Canonical encoding of one applied command: a map with keys in byte
 * order from, key, op, path, value (see ENGINE.md). */
static int pack_cmd(msgpack_packer *pk, const fl_cmd_t *cmd)
{
    bool from = cmd->op == FL_OP_MOVE || cmd->op == FL_OP_COPY;
    bool key = cmd->op == FL_OP_CREATE;
    bool value = !(cmd->op == FL_OP_REMOVE || from);
    int rc = msgpack_pack_map(pk, 2 + from + key + value);
    if (from) {
        rc |= pack_str(pk, "from", 4);
        rc |= pack_str(pk, cmd->from.ptr, cmd->from.len);
    }
    if (key) {
        rc |= pack_str(pk, "key", 3);
        rc |= pack_str(pk, cmd->key.ptr, cmd->key.len);
    }
    rc |= pack_str(pk, "op", 2);
    rc |= pack_str(pk, op_names[cmd->op], strlen(op_names[cmd->op]));
    rc |= pack_str(pk, "path", 4);
    rc |= pack_str(pk, cmd->path.ptr, cmd->path.len);
    if (value) {
        rc |= pack_str(pk, "value", 5);
        rc |= fl_value_pack(pk, &cmd->value);
    }
    return rc;
}

/* chain = BLAKE2b-256(chain || [vbefore, vafter, [cmd...]]). */
static int chain_next(fl_doc_t *doc, const uint8_t prev[FL_HASH_LEN], uint64_t vb, uint64_t va,
                      const fl_cmd_t *cmds, uint32_t n, uint8_t out[FL_HASH_LEN])
{
    msgpack_packer pk;
    doc->sbuf.size = 0;
    msgpack_packer_init(&pk, &doc->sbuf, msgpack_sbuffer_write);
    int rc = msgpack_pack_array(&pk, 3);
    rc |= pack_int(&pk, vb);
    rc |= pack_int(&pk, va);
    rc |= msgpack_pack_array(&pk, n);
    for (uint32_t i = 0; i < n; i++)
        rc |= pack_cmd(&pk, &cmds[i]);
    if (rc)
        return FL_EERR_NOMEM;
    crypto_generichash_state st;
    crypto_generichash_init(&st, NULL, 0, FL_HASH_LEN);
    crypto_generichash_update(&st, prev, FL_HASH_LEN);
    crypto_generichash_update(&st, (const unsigned char *)doc->sbuf.data, doc->sbuf.size);
    crypto_generichash_final(&st, out, FL_HASH_LEN);
    return 0;
}

/* Appends the dedup blob of out to sbuf (emptied first). */
static int blob_encode(msgpack_sbuffer *sbuf, const fl_outcome_t *out)
{
    msgpack_packer pk;
    sbuf->size = 0;
    msgpack_packer_init(&pk, sbuf, msgpack_sbuffer_write);
    int rc = msgpack_pack_array(&pk, 5);
    rc |= pack_int(&pk, out->code);
    rc |= pack_int(&pk, out->version_before);
    rc |= pack_int(&pk, out->version_after);
    rc |= msgpack_pack_bin(&pk, FL_HASH_LEN);
    rc |= msgpack_pack_bin_body(&pk, out->chain, FL_HASH_LEN);
    rc |= msgpack_pack_array(&pk, out->nresults);
    for (uint32_t i = 0; i < out->nresults; i++) {
        const fl_cmd_result_t *r = &out->results[i];
        /* an empty create key is a key; outcomes from decoders that predate
         * has_key still carry their non-empty keys */
        if (r->rule.len) {
            rc |= msgpack_pack_array(&pk, 3);
            rc |= pack_int(&pk, r->code);
            rc |= msgpack_pack_nil(&pk);
            rc |= pack_str(&pk, r->rule.ptr, r->rule.len);
        } else if (r->has_key || r->key.len) {
            rc |= msgpack_pack_array(&pk, 2);
            rc |= pack_int(&pk, r->code);
            rc |= pack_str(&pk, r->key.ptr, r->key.len);
        } else {
            rc |= pack_int(&pk, r->code);
        }
    }
    return rc ? FL_EERR_NOMEM : 0;
}

/* Fills the stored fields of out from a blob (results in arena). */
static int blob_to_outcome(const char *blob, size_t len, fl_arena_t *arena, fl_outcome_t *out)
{
    fl_value_t v;
    const uint8_t *chain;
    if (blob_decode(blob, len, arena, &v, &chain) < 0)
        return FL_EERR_RESTORE;
    const fl_value_t *it = v.u.items;
    out->code = (uint16_t)it[0].u.i;
    out->version_before = (uint64_t)it[1].u.i;
    out->version_after = (uint64_t)it[2].u.i;
    memcpy(out->chain, chain, FL_HASH_LEN);
    out->nresults = it[4].len;
    out->results = out->nresults ? fl_arena_alloc(arena, out->nresults * sizeof(fl_cmd_result_t))
                                 : NULL;
    if (out->nresults && !out->results)
        return FL_EERR_NOMEM;
    uint64_t ver = out->version_before;
    for (uint32_t i = 0; i < out->nresults; i++) {
        const fl_value_t *r = &it[4].u.items[i];
        fl_cmd_result_t *res = &out->results[i];
        memset(res, 0, sizeof(*res));
        if (r->type == FL_ARRAY && r->len == 3) {
            res->code = (uint16_t)r->u.items[0].u.i;
            res->rule = (fl_slice_t){r->u.items[2].len ? r->u.items[2].u.str : "",
                                     r->u.items[2].len};
        } else if (r->type == FL_ARRAY) {
            res->code = (uint16_t)r->u.items[0].u.i;
            res->key = (fl_slice_t){r->u.items[1].len ? r->u.items[1].u.str : "",
                                    r->u.items[1].len};
            res->has_key = true;
        } else {
            res->code = (uint16_t)r->u.i;
        }
        res->version = res->code == FL_CODE_OK ? ++ver : 0;
    }
    return 0;
}

int fl_engine_dedup_to_outcome(fl_slice_t blob, fl_arena_t *arena, fl_outcome_t *out)
{
    if (!arena || !out || !blob.ptr)
        return FL_EERR_ARG;
    memset(out, 0, sizeof(*out));
    return blob_to_outcome(blob.ptr, blob.len, arena, out);
}

int fl_engine_dedup_from_outcome(const fl_outcome_t *outcome, char **out, size_t *outlen)
{
    msgpack_sbuffer sbuf;
    if (!outcome || !out || !outlen || (outcome->nresults && !outcome->results))
        return FL_EERR_ARG;
    msgpack_sbuffer_init(&sbuf);
    if (blob_encode(&sbuf, outcome) < 0) {
        msgpack_sbuffer_destroy(&sbuf);
        return FL_EERR_NOMEM;
    }
    *outlen = sbuf.size;
    *out = msgpack_sbuffer_release(&sbuf);
    return 0;
}

/* ---------------------------------------------------------------- apply */

int fl_doc_apply(fl_doc_t *doc, const fl_flush_t *flush, fl_arena_t *arena, fl_outcome_t *out)
{
    return fl_doc_apply_rules(doc, flush, NULL, NULL, arena, out);
}

int fl_doc_apply_rules(fl_doc_t *doc, const fl_flush_t *flush, const fl_rules_t *rules,
                       const fl_rules_ctx_t *rctx, fl_arena_t *arena, fl_outcome_t *out)
{
    if (!doc || !flush || !arena || !out || (flush->ncmds && !flush->cmds))
        return FL_EERR_ARG;
    if (flush->doc.len != doc->idlen || memcmp(flush->doc.ptr, doc->id, doc->idlen) != 0)
        return FL_EERR_ARG;
    memset(out, 0, sizeof(*out));
    out->doc = flush->doc;
    memcpy(out->client_id, flush->client_id, FL_CLIENT_ID_LEN);
    out->seq = flush->seq;
    out->user = flush->user;
    out->ts_ms = flush->ts_ms;
    out->version_before = out->version_after = doc->version;
    memcpy(out->chain, doc->chain, FL_HASH_LEN);

    if (flush->seq == 0) {
        out->code = FL_CODE_INVALID;
        return 0;
    }
    dd_ent_t *e = fl_dedup_find(doc->dedup, flush->client_id);
    if (e && flush->seq == e->seq) {
        /* stored blobs were validated; only the arena can fail here */
        out->duplicate = true;
        return blob_to_outcome(e->blob, e->blen, arena, out) ? FL_EERR_NOMEM : 0;
    }
    if (e && flush->seq < e->seq) {
        out->duplicate = true; /* stale: processed before, outcome no longer kept */
        return 0;
    }
    if (e && flush->seq > e->seq + 1) {
        out->code = FL_CODE_GAP;
        return 0;
    }
    /* An unknown client starts at seq 1. Accepting a later seq would let a
     * seq 2 published before a lost seq 1 become the client's first flush,
     * and the resent seq 1 would then be answered as stale: acknowledged,
     * never applied. Only once the table has evicted may an unknown client
     * be one whose entry went (ENGINE.md, Dedup). */
    if (!e && flush->seq > 1 && fl_dedup_evictions(doc->dedup) == 0) {
        out->code = FL_CODE_GAP;
        return 0;
    }

    int rc = 0;
    uint64_t v0 = doc->version;
    size_t size0 = doc->size;
    uint8_t chain0[FL_HASH_LEN];
    memcpy(chain0, doc->chain, FL_HASH_LEN);
    if (flush->has_if_version && flush->if_version != doc->version) {
        out->code = FL_CODE_VERSION_MISMATCH;
        goto record;
    }
    if (flush->ncmds) {
        out->results = fl_arena_alloc(arena, flush->ncmds * sizeof(fl_cmd_result_t));
        out->applied = fl_arena_alloc(arena, flush->ncmds * sizeof(fl_cmd_t));
        if (!out->results || !out->applied)
            return FL_EERR_NOMEM;
    }
    out->nresults = flush->ncmds;
    ctx_t cx = {.doc = doc, .arena = arena, .rules = rules, .rctx = rctx, .flush = flush};
    uint32_t failed = FL_NONE;
    for (uint32_t i = 0; i < flush->ncmds; i++) {
        const fl_cmd_t *cmd = &flush->cmds[i];
        fl_cmd_result_t *res = &out->results[i];
        rc = apply_cmd(&cx, cmd);
        if (rc < 0)
            goto fail;
        res->code = (uint16_t)rc;
        res->version = rc == FL_CODE_OK ? doc->version : 0;
        res->key = cx.key;
        res->has_key = cx.has_key;
        res->rule = (fl_slice_t){NULL, 0};
        if (rc == FL_CODE_RULE_VIOLATION) {
            /* the name outlives the rule set: copy it into the outcome */
            char *name = fl_arena_alloc(arena, cx.rule.len ? cx.rule.len : 1);
            if (!name) {
                rc = FL_EERR_NOMEM;
                goto fail;
            }
            memcpy(name, cx.rule.ptr, cx.rule.len);
            res->rule = (fl_slice_t){name, cx.rule.len};
        }
        if (rc != FL_CODE_OK) {
            if (flush->atomic) {
                failed = i;
                break;
            }
            continue;
        }
        fl_cmd_t *ap = &out->applied[out->napplied++];
        *ap = *cmd;
        if (cx.rules && cx.stamped)
            ap->value = cx.sval; /* deltas and the chain carry the stamped value */
        if (cmd->op == FL_OP_CREATE) {
            ap->has_key = true;
            ap->key = cx.key;
        }
    }
    rc = 0;
    if (failed != FL_NONE) {
        undo_rollback(doc, 0);
        doc->size = size0;
        doc->version = v0;
        for (uint32_t i = 0; i < flush->ncmds; i++) {
            if (i == failed)
                continue;
            out->results[i].code = FL_CODE_ABORTED;
            out->results[i].version = 0;
            out->results[i].key = (fl_slice_t){NULL, 0};
            out->results[i].has_key = false;
            out->results[i].rule = (fl_slice_t){NULL, 0};
        }
        out->napplied = 0;
        out->code = FL_CODE_ABORTED;
    }
    if (out->napplied) {
        if ((rc = chain_next(doc, chain0, v0, doc->version, out->applied, out->napplied,
                             doc->chain)) < 0)
            goto fail;
    }
    out->version_after = doc->version;
    memcpy(out->chain, doc->chain, FL_HASH_LEN);
record:
    if ((rc = blob_encode(&doc->sbuf, out)) < 0 ||
        (rc = fl_dedup_record(doc->dedup, flush->client_id, flush->seq, doc->sbuf.data,
                              doc->sbuf.size)) < 0)
        goto fail;
    undo_commit(doc, 0);
    return 0;
fail:
    undo_rollback(doc, 0);
    doc->size = size0;
    doc->version = v0;
    memcpy(doc->chain, chain0, FL_HASH_LEN);
    return FL_EERR_NOMEM;
}

int fl_doc_apply_applied(fl_doc_t *doc, uint64_t version_before, const fl_cmd_t *cmds,
                         uint32_t n, const uint8_t *expected_chain, fl_arena_t *arena)
{
    if (!doc || !arena || (n && !cmds))
        return FL_EERR_ARG;
    if (doc->version != version_before)
        return FL_EERR_DELTA;
    if (n == 0)
        return 0;
    size_t size0 = doc->size;
    uint8_t chain[FL_HASH_LEN];
    ctx_t cx = {.doc = doc, .arena = arena};
    int rc = 0;
    doc->strict = true;
    for (uint32_t i = 0; i < n; i++) {
        if (cmds[i].op == FL_OP_CREATE && !cmds[i].has_key) {
            rc = FL_EERR_DELTA;
            goto fail;
        }
        rc = apply_cmd(&cx, &cmds[i]);
        if (rc != FL_CODE_OK) {
            rc = rc < 0 ? rc : FL_EERR_DELTA;
            goto fail;
        }
    }
    if ((rc = chain_next(doc, doc->chain, version_before, doc->version, cmds, n, chain)) < 0)
        goto fail;
    if (expected_chain && memcmp(expected_chain, chain, FL_HASH_LEN) != 0) {
        rc = FL_EERR_CHAIN;
        goto fail;
    }
    memcpy(doc->chain, chain, FL_HASH_LEN);
    doc->strict = false;
    undo_commit(doc, 0);
    return 0;
fail:
    doc->strict = false;
    undo_rollback(doc, 0);
    doc->size = size0;
    doc->version = version_before;
    return rc;
}

/* ---------------------------------------------------------------- replay */

int fl_doc_replay(fl_doc_t *doc, const fl_outcome_t *outcome, fl_arena_t *arena)
{
    int rc;
    if (!doc || !outcome || !arena || (outcome->napplied && !outcome->applied))
        return FL_EERR_ARG;
    if (outcome->doc.len != doc->idlen || memcmp(outcome->doc.ptr, doc->id, doc->idlen) != 0)
        return FL_EERR_ARG;
    /* Answers that changed nothing and were not recorded when applied:
     * duplicates (stale ones included), gaps and seq 0. */
    if (outcome->duplicate || outcome->code == FL_CODE_GAP || outcome->seq == 0)
        return 0;
    if (outcome->napplied > 0) {
        rc = fl_doc_apply_applied(doc, outcome->version_before, outcome->applied,
                                  outcome->napplied, outcome->chain, arena);
        if (rc < 0)
            return rc;
    } else if (outcome->version_before != doc->version ||
               outcome->version_after != doc->version) {
        return FL_EERR_DELTA;
    }
    if ((rc = blob_encode(&doc->sbuf, outcome)) < 0 ||
        (rc = fl_dedup_record(doc->dedup, outcome->client_id, outcome->seq, doc->sbuf.data,
                              doc->sbuf.size)) < 0)
        return FL_EERR_NOMEM;
    return 0;
}
