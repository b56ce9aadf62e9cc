/* SPDX-License-Identifier: Apache-2.0 */
/*
 * ops: the nine commands (ENGINE.md, Commands) and the step that applies
 * one of them with its own undo mark, the rules' checks and stamps around
 * it. Each op resolves its pointers, checks depth and size limits, and
 * changes the state only through the primitives of engine.c, so a
 * rejected command leaves the state as it was.
 */
#include <math.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "engine_int.h"
#include "flushline/rules.h"

/* The location of cmd's path when it exists, from the values the rules
 * resolved along it before the command (cx->rpath, on the same state):
 * under rules a path is then looked up once, not twice. Else (and for
 * PTR_ADD, which may insert into an array), fl_ptr_resolve in mode. */
static int resolve_path(ctx_t *cx, const fl_cmd_t *cmd, ptr_mode_t mode, loc_t *loc)
{
    const fl_rules_path_t *pc = &cx->rpath;
    if (!cx->rules || mode == PTR_ADD || !pc->valid || pc->ntok == 0 ||
        pc->nnodes != pc->ntok + 1)
        return fl_ptr_resolve(&cx->doc->root, cmd->path, mode, cx->arena, loc);
    fl_value_t *parent = (fl_value_t *)pc->nodes[pc->ntok - 1];
    fl_value_t *target = (fl_value_t *)pc->nodes[pc->ntok];
    const char *slash = pc->toks.t[pc->ntok - 1].ptr - 1; /* before the last token */
    memset(loc, 0, sizeof *loc);
    loc->parent = parent;
    loc->target = target;
    loc->level = pc->ntok;
    loc->parent_ptr = (fl_slice_t){cmd->path.ptr, (size_t)(slash - cmd->path.ptr)};
    if (parent->type == FL_MAP) {
        const fl_entry_t *e =
            (const fl_entry_t *)(const void *)((const char *)target - offsetof(fl_entry_t, val));
        loc->idx = (uint32_t)(e - parent->u.ents);
        loc->key = e->key;
        loc->klen = e->klen;
    } else {
        loc->idx = (uint32_t)(target - parent->u.items);
    }
    return FL_CODE_OK;
}

/* add (mode PTR_ADD: inserts into an array) and replace (PTR_EXISTING): a
 * clone of the command's value at its path. */
static int put_value(ctx_t *cx, const fl_cmd_t *cmd, ptr_mode_t mode)
{
    loc_t loc;
    int rc = resolve_path(cx, cmd, mode, &loc);
    if (rc != FL_CODE_OK)
        return rc;
    if ((rc = fl_state_check_depth(cx->doc, loc.level, &cmd->value)) != FL_CODE_OK)
        return rc;
    return fl_state_put_clone(cx->doc, &loc, &cmd->value,
                              mode == PTR_ADD && loc.parent->type == FL_ARRAY);
}

static int op_add(ctx_t *cx, const fl_cmd_t *cmd)
{
    return put_value(cx, cmd, PTR_ADD);
}

static int op_remove(ctx_t *cx, const fl_cmd_t *cmd)
{
    loc_t loc;
    int rc = fl_ptr_resolve(&cx->doc->root, cmd->path, PTR_EXISTING, cx->arena, &loc);
    if (rc != FL_CODE_OK)
        return rc;
    return fl_state_take(cx->doc, &loc, NULL);
}

static int op_replace(ctx_t *cx, const fl_cmd_t *cmd)
{
    return put_value(cx, cmd, PTR_EXISTING);
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
    uint32_t depth = fl_state_depth(from.target);
    if ((rc = fl_state_take(cx->doc, &from, &v)) != 0)
        return rc;
    /* the undo log owns the taken value; detach it so fl_state_put() moves a copy of
     * the tree's root struct while the log keeps nothing to free */
    cx->doc->undo[cx->doc->nundo - 1].old = fl_value_nil();
    rc = fl_ptr_resolve(&cx->doc->root, cmd->path, PTR_ADD, cx->arena, &to);
    if (rc == FL_CODE_OK && depth && to.level + depth > cx->doc->cfg.max_depth)
        rc = FL_CODE_TOO_LARGE;
    if (rc == FL_CODE_OK)
        rc = fl_state_put(cx->doc, &to, &v, to.parent->type == FL_ARRAY);
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
    if ((rc = fl_state_check_depth(cx->doc, to.level, from.target)) != FL_CODE_OK)
        return rc;
    return fl_state_put_clone(cx->doc, &to, from.target, to.parent->type == FL_ARRAY);
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
    int rc = resolve_path(cx, cmd, PTR_UPSERT, &loc);
    if (rc != FL_CODE_OK)
        return rc;
    fl_value_t zero = fl_value_int(0), sum;
    const fl_value_t *cur = loc.target ? loc.target : &zero;
    if (cur->type != FL_INT && cur->type != FL_FLOAT)
        return FL_CODE_TYPE_MISMATCH;
    if ((rc = num_add(cur, &cmd->value, &sum)) != FL_CODE_OK)
        return rc;
    return fl_state_put(cx->doc, &loc, &sum, false);
}

static int op_merge(ctx_t *cx, const fl_cmd_t *cmd)
{
    loc_t loc;
    int rc = fl_ptr_resolve(&cx->doc->root, cmd->path, PTR_UPSERT, cx->arena, &loc);
    if (rc != FL_CODE_OK)
        return rc;
    if (!loc.target) {
        if ((rc = fl_state_check_depth(cx->doc, loc.level, &cmd->value)) != FL_CODE_OK)
            return rc;
        return fl_state_put_clone(cx->doc, &loc, &cmd->value, false);
    }
    if (loc.target->type != FL_MAP)
        return FL_CODE_TYPE_MISMATCH;
    for (uint32_t i = 0; i < cmd->value.len; i++) {
        const fl_entry_t *e = &cmd->value.u.ents[i];
        if (e->val.type == FL_MAP || e->val.type == FL_ARRAY) {
            if (loc.level + 1 + fl_state_depth(&e->val) > cx->doc->cfg.max_depth)
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
        if ((rc = fl_state_put_clone(cx->doc, &kl, &e->val, false)) != 0)
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
    size_t n = path.len + 1 + fl_ptr_escaped_len(key);
    char *b = fl_arena_alloc(arena, n);
    if (!b)
        return -1;
    memcpy(b, path.ptr, path.len);
    b[path.len] = '/';
    fl_ptr_escape(b + path.len + 1, key);
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
    if ((rc = fl_state_check_depth(cx->doc, loc.level + 1, &cmd->value)) != FL_CODE_OK)
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
    if ((rc = fl_state_put_clone(cx->doc, &kl, val, false)) != 0)
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

/* The rules' checks on the state before the command (allow, conditions,
 * stamp guards), then its stamps (RULES.md, Evaluation order). *cmd is
 * pointed at *stamped when a stamp changed the value. A code (>= 0) or
 * FL_EERR_NOMEM. */
static int rules_before(ctx_t *cx, const fl_cmd_t **cmd, fl_cmd_t *stamped)
{
    fl_doc_t *doc = cx->doc;
    const fl_cmd_t *c = *cmd;
    cx->stamped = false;
    int rc = fl_rules_check_command(cx->rules, cx->rctx, cx->flush, &doc->root, c, cx->arena,
                                    &cx->rpath, &cx->rule);
    if (rc != FL_CODE_OK)
        return rc < 0 ? FL_EERR_NOMEM : rc;
    if (c->op != FL_OP_CREATE && fl_rules_stamps_op(cx->rules, c->op)) {
        fl_slice_t key;
        if (last_token(cx->arena, c->path, &key) < 0 ||
            fl_rules_stamp(cx->rules, cx->flush, c->op, c->path, key, doc->version + 1, &c->value,
                           cx->arena, &cx->sval, &cx->stamped) < 0)
            return FL_EERR_NOMEM;
        if (cx->stamped) {
            *stamped = *c;
            stamped->value = cx->sval;
            *cmd = stamped;
        }
    }
    return FL_CODE_OK;
}

/* Runs the op of a checked command: a code (>= 0) or -1 on OOM. */
static int run_op(ctx_t *cx, const fl_cmd_t *cmd)
{
    /* by fl_op_t: FL_OP_ADD (1) to FL_OP_CREATE (9), in flush.h's order */
    static int (*const ops[])(ctx_t *, const fl_cmd_t *) = {
        NULL,    op_add,  op_remove, op_replace, op_move,
        op_copy, op_test, op_incr,   op_merge,   op_create,
    };
    _Static_assert(sizeof ops / sizeof ops[0] == FL_OP_CREATE + 1, "one entry per op");
    if (cmd->op < FL_OP_ADD || cmd->op > FL_OP_CREATE)
        return FL_CODE_OK; /* check_cmd let no other op through */
    return ops[cmd->op](cx, cmd);
}

/* The rules' constraints on the state after the command (and its stamps). */
static int rules_after(ctx_t *cx, const fl_cmd_t *cmd)
{
    fl_slice_t eff = cmd->path;
    if (cmd->op == FL_OP_CREATE && key_loc(cx->arena, cmd->path, cx->key, &eff) < 0)
        return FL_EERR_NOMEM;
    return fl_rules_check_after(cx->rules, &cx->doc->root, cmd, eff, cx->arena, &cx->rpath,
                                &cx->rule);
}

int fl_apply_cmd(ctx_t *cx, const fl_cmd_t *cmd)
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
    if (cx->rules && (rc = rules_before(cx, &cmd, &stamped)) != FL_CODE_OK)
        return rc;
    rc = run_op(cx, cmd);
    if (rc == -1)
        rc = FL_EERR_NOMEM;
    if (rc == FL_CODE_OK && doc->size > doc->cfg.max_state_bytes)
        rc = FL_CODE_TOO_LARGE;
    if (rc == FL_CODE_OK && cx->rules)
        rc = rules_after(cx, cmd);
    if (rc != FL_CODE_OK) {
        fl_undo_rollback(doc, mark);
        doc->size = size0;
        cx->key = (fl_slice_t){NULL, 0};
        cx->has_key = false;
        return rc;
    }
    doc->version++;
    return FL_CODE_OK;
}
