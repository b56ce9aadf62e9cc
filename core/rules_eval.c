/* SPDX-License-Identifier: Apache-2.0 */
/*
 * rules_eval: the steps the engine calls around each command (RULES.md,
 * Evaluation order): matching patterns against a command path, allow
 * rules and their conditions, stamp guards and stamps, and the constraints
 * on the state after the command or on a whole document. Matching walks
 * the path's bytes against pre-split segments without allocating.
 */
#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rules_int.h"

/* ------------------------------------------------------------ matching */

static bool seg_eq(fl_slice_t a, const char *p, size_t n)
{
    return a.len == n && memcmp(a.ptr, p, n) == 0;
}

/* The end of the segment of ptr that starts at st (after its '/'). */
static size_t seg_end(fl_slice_t ptr, size_t st)
{
    size_t e = st;
    while (e < ptr.len && ptr.ptr[e] != '/')
        e++;
    return e;
}

enum { WALK_MISMATCH, WALK_PTR_LEFT, WALK_PTR_DONE };

/* Walks the segments of the escaped pointer ptr against pat's ("*"
 * segments match any): WALK_MISMATCH; WALK_PTR_LEFT when every segment of
 * pat matched and ptr goes on at byte *i (a '/'); WALK_PTR_DONE when ptr
 * ended after *k matching segments. */
static int walk(const pat_t *pat, fl_slice_t ptr, size_t *i, uint32_t *k)
{
    *i = 0;
    *k = 0;
    while (*i < ptr.len) {
        if (*k == pat->nseg)
            return WALK_PTR_LEFT;
        size_t st = *i + 1, e = seg_end(ptr, st);
        fl_slice_t s = pat->seg[*k];
        if (s.ptr && !seg_eq(s, ptr.ptr + st, e - st))
            return WALK_MISMATCH;
        (*k)++;
        *i = e;
    }
    return WALK_PTR_DONE;
}

/*
 * Matches the escaped pointer ptr against pat. With extra, ptr is followed
 * by one more segment of unknown text (create's key before it is chosen;
 * it matches "*" and, conservatively, any literal). On a match *anchor is
 * the length of the prefix of ptr named by the pattern's segments (the
 * part before "**").
 */
static bool match(const pat_t *pat, fl_slice_t ptr, bool extra, size_t *anchor)
{
    size_t i;
    uint32_t k;
    switch (walk(pat, ptr, &i, &k)) {
    case WALK_MISMATCH:
        return false;
    case WALK_PTR_LEFT:
        if (!pat->tail)
            return false;
        if (anchor)
            *anchor = i;
        return true;
    }
    if (extra) {
        if (k == pat->nseg) {
            if (!pat->tail)
                return false;
        } else {
            k++;
        }
    }
    if (k != pat->nseg)
        return false;
    if (anchor)
        *anchor = ptr.len;
    return true;
}

/* Child of a container by escaped token, or NULL. */
static const fl_value_t *child(const fl_value_t *v, const char *t, size_t n, fl_arena_t *arena)
{
    if (v->type == FL_MAP) {
        if (!memchr(t, '~', n))
            return fl_map_get(v, t, n);
        char *b = fl_arena_alloc(arena, n ? n : 1);
        if (!b)
            return NULL;
        size_t o = 0;
        for (size_t i = 0; i < n; i++) {
            if (t[i] == '~' && i + 1 < n) {
                b[o++] = t[i + 1] == '0' ? '~' : '/';
                i++;
            } else {
                b[o++] = t[i];
            }
        }
        return fl_map_get(v, b, o);
    }
    if (v->type == FL_ARRAY) {
        if (n == 0 || n > 10 || (n > 1 && t[0] == '0'))
            return NULL;
        uint64_t idx = 0;
        for (size_t i = 0; i < n; i++) {
            if (t[i] < '0' || t[i] > '9')
                return NULL;
            idx = idx * 10 + (uint64_t)(t[i] - '0');
        }
        return idx < v->len ? &v->u.items[idx] : NULL;
    }
    return NULL;
}

/* child() for a token of a command's effective path after the command:
 * its last token "-" on an array names the item the command appended. */
static const fl_value_t *child_after(const fl_value_t *v, const char *t, size_t n, bool last,
                                     fl_arena_t *arena)
{
    if (last && n == 1 && t[0] == '-' && v->type == FL_ARRAY)
        return v->len ? &v->u.items[v->len - 1] : NULL;
    return child(v, t, n, arena);
}

static const fl_value_t *resolve(const fl_value_t *root, fl_slice_t ptr, fl_arena_t *arena)
{
    const fl_value_t *v = root;
    size_t i = 0;
    while (v && i < ptr.len) {
        size_t st = i + 1, e = st;
        while (e < ptr.len && ptr.ptr[e] != '/')
            e++;
        v = child(v, ptr.ptr + st, e - st, arena);
        i = e;
    }
    return v;
}

/* ---------------------------------------------------------- evaluation */

static bool cond_holds(const cond_t *c, const fl_rules_ctx_t *ctx, fl_slice_t role,
                       const fl_flush_t *flush, const fl_value_t *anchor, const fl_cmd_t *cmd,
                       fl_arena_t *arena)
{
    (void)ctx;
    const fl_value_t *v;
    if (c->on_value)
        v = cmd->has_value ? resolve(&cmd->value, c->path, arena) : NULL;
    else
        v = anchor ? resolve(anchor, c->path, arena) : NULL;
    if (!v)
        return false; /* a missing target or value fails every condition */
    bool eq;
    if (c->var == V_LIT) {
        eq = fl_value_equal(v, &c->lit);
    } else {
        fl_slice_t s = c->var == V_USER ? flush->user : role;
        eq = v->type == FL_STR && v->len == s.len && (s.len == 0 || memcmp(v->u.str, s.ptr, s.len) == 0);
    }
    return c->ne ? !eq : eq;
}

/* Does allow rule a permit cmd? *near is set when op, path and role match
 * (a condition or the from path failed). */
static bool allow_permits(const allow_t *a, const fl_rules_ctx_t *ctx, fl_slice_t role,
                          const fl_flush_t *flush, const fl_value_t *root, const fl_cmd_t *cmd,
                          fl_arena_t *arena, const fl_rules_path_t *pc, bool *near)
{
    if (!(a->ops & (1u << cmd->op)))
        return false;
    if (a->nroles) {
        bool ok = false;
        for (uint32_t i = 0; i < a->nroles && !ok; i++)
            ok = a->roles[i].len == role.len && memcmp(a->roles[i].ptr, role.ptr, role.len) == 0;
        if (!ok)
            return false;
    }
    size_t pa = 0, fa = 0;
    bool pm = false, fm = false;
    bool has_from = cmd->op == FL_OP_MOVE || cmd->op == FL_OP_COPY;
    for (uint32_t i = 0; i < a->npaths && !pm; i++)
        pm = match(&a->paths[i], cmd->path, false, &pa);
    if (!pm)
        return false;
    *near = true;
    if (has_from) {
        for (uint32_t i = 0; i < a->npaths && !fm; i++)
            fm = match(&a->paths[i], cmd->from, false, &fa);
        if (!fm)
            return false;
    }
    if (!a->nconds)
        return true;
    const fl_value_t *anc;
    if (pc && pc->valid) {
        uint32_t k = 0; /* tokens in the anchor */
        for (size_t i = 0; i < pa; i++)
            k += cmd->path.ptr[i] == '/';
        anc = k < pc->nnodes ? pc->nodes[k] : NULL;
    } else {
        anc = resolve(root, (fl_slice_t){cmd->path.ptr, pa}, arena);
    }
    const fl_value_t *fanc = has_from ? resolve(root, (fl_slice_t){cmd->from.ptr, fa}, arena)
                                      : NULL;
    for (uint32_t i = 0; i < a->nconds; i++) {
        if (!cond_holds(&a->conds[i], ctx, role, flush, anc, cmd, arena))
            return false;
        if (has_from && !cond_holds(&a->conds[i], ctx, role, flush, fanc, cmd, arena))
            return false;
    }
    return true;
}

/* Is ptr at or under pattern + "/" + field? */
static bool under_field(const pat_t *pat, fl_slice_t field, fl_slice_t ptr)
{
    size_t i;
    uint32_t k;
    if (walk(pat, ptr, &i, &k) != WALK_PTR_LEFT)
        return false;
    return seg_eq(field, ptr.ptr + i + 1, seg_end(ptr, i + 1) - (i + 1));
}

static int stamp_guard(const stamp_t *st, const fl_cmd_t *cmd)
{
    bool has_from = cmd->op == FL_OP_MOVE || cmd->op == FL_OP_COPY;
    for (uint32_t f = 0; f < st->nset; f++) {
        if (under_field(&st->path, st->set[f].esc, cmd->path))
            return 1;
        if (cmd->op == FL_OP_MOVE && under_field(&st->path, st->set[f].esc, cmd->from))
            return 1;
    }
    if (has_from)
        return match(&st->path, cmd->path, false, NULL);
    if (!(WRITE_OPS & (1u << cmd->op)) || (st->on & (1u << cmd->op)))
        return 0;
    if (!match(&st->path, cmd->path, cmd->op == FL_OP_CREATE, NULL))
        return 0;
    if (!cmd->has_value || cmd->value.type != FL_MAP)
        return 0;
    for (uint32_t f = 0; f < st->nset; f++)
        if (fl_map_get(&cmd->value, st->set[f].field.ptr, st->set[f].field.len))
            return 1;
    return 0;
}

/* Resolves the values along path on root into pc (valid only when the
 * path has at most FL_RULES_MAX_SEGMENTS tokens). */
static void path_resolve(const fl_value_t *root, fl_slice_t path, fl_arena_t *arena,
                         fl_rules_path_t *pc)
{
    size_t i = 0;
    pc->valid = false;
    pc->ntok = 0;
    pc->nnodes = 1;
    pc->nodes[0] = root;
    while (i < path.len) {
        size_t st = i + 1, e = st;
        while (e < path.len && path.ptr[e] != '/')
            e++;
        if (pc->ntok == FL_RULES_MAX_SEGMENTS)
            return;
        if (pc->nnodes == pc->ntok + 1) {
            const fl_value_t *c = child(pc->nodes[pc->ntok], path.ptr + st, e - st, arena);
            if (c)
                pc->nodes[pc->nnodes++] = c;
        }
        pc->ntok++;
        i = e;
    }
    if (pc->ntok && pc->nnodes >= pc->ntok) {
        const fl_value_t *parent = pc->nodes[pc->ntok - 1];
        pc->parent_len = parent->len;
        pc->parent_buf = parent->type == FL_MAP ? (const void *)parent->u.ents
                                                : (const void *)parent->u.items;
    }
    pc->valid = true;
}

int fl_rules_check_command(const fl_rules_t *rules, const fl_rules_ctx_t *ctx,
                           const fl_flush_t *flush, const fl_value_t *root,
                           const fl_cmd_t *cmd, fl_arena_t *arena, fl_rules_path_t *pc,
                           fl_slice_t *rule)
{
    fl_slice_t role = ctx && ctx->role.len ? ctx->role : rules->default_role;
    if (pc) {
        pc->valid = false;
        if (rules->needs_path)
            path_resolve(root, cmd->path, arena, pc);
    }
    if (rules->nallow) {
        const rule_t *near = NULL;
        bool ok = false;
        for (uint32_t i = 0; i < rules->n && !ok; i++) {
            const rule_t *r = &rules->rules[i];
            bool nr = false;
            if (r->kind != R_ALLOW)
                continue;
            ok = allow_permits(&r->allow, ctx, role, flush, root, cmd, arena, pc, &nr);
            if (!ok && nr && !near)
                near = r;
        }
        if (!ok) {
            *rule = near ? near->name : FL_SLICE("allow");
            return FL_CODE_RULE_VIOLATION;
        }
    }
    if (rules->nstamp) {
        for (uint32_t i = 0; i < rules->n; i++) {
            const rule_t *r = &rules->rules[i];
            if (r->kind == R_STAMP && stamp_guard(&r->stamp, cmd)) {
                *rule = r->name;
                return FL_CODE_RULE_VIOLATION;
            }
        }
    }
    return FL_CODE_OK;
}

bool fl_rules_stamps_op(const fl_rules_t *rules, uint8_t op)
{
    return (rules->stamp_ops & (1u << op)) != 0;
}

/* A copy of map m (arena) with the stamp's fields set. */
static int stamp_map(const stamp_t *st, const fl_flush_t *flush, fl_slice_t key, uint64_t version,
                     const fl_value_t *m, fl_arena_t *arena, fl_value_t *out)
{
    uint32_t cap = m->len + st->nset, n = 0, i = 0, f = 0;
    fl_entry_t *ents = fl_arena_alloc(arena, cap * sizeof(fl_entry_t));
    if (!ents)
        return -1;
    while (i < m->len || f < st->nset) {
        int c;
        if (i == m->len)
            c = 1;
        else if (f == st->nset)
            c = -1;
        else
            c = fl_rules_key_cmp((fl_slice_t){m->u.ents[i].key, m->u.ents[i].klen},
                                 st->set[f].field);
        if (c < 0) {
            ents[n++] = m->u.ents[i++];
            continue;
        }
        fl_entry_t *e = &ents[n++];
        const setf_t *sf = &st->set[f++];
        if (c == 0)
            i++; /* the stamp wins over what the client wrote */
        e->key = (char *)sf->field.ptr;
        e->klen = (uint32_t)sf->field.len;
        e->val = fl_value_nil();
        switch (sf->var) {
        case S_USER:
        case S_KEY: {
            fl_slice_t s = sf->var == S_USER ? flush->user : key;
            e->val.type = FL_STR;
            e->val.len = (uint32_t)s.len;
            e->val.u.str = (char *)(s.len ? s.ptr : "");
            break;
        }
        case S_TS:
            e->val = fl_value_int(flush->ts_ms);
            break;
        case S_VERSION:
            e->val = fl_value_int((int64_t)version);
            break;
        }
    }
    *out = fl_value_nil();
    out->type = FL_MAP;
    out->len = n;
    out->u.ents = ents;
    return 0;
}

int fl_rules_stamp(const fl_rules_t *rules, const fl_flush_t *flush, uint8_t op, fl_slice_t loc,
                   fl_slice_t key, uint64_t version, const fl_value_t *value, fl_arena_t *arena,
                   fl_value_t *out, bool *stamped)
{
    *out = *value;
    *stamped = false;
    for (uint32_t i = 0; i < rules->n; i++) {
        const rule_t *r = &rules->rules[i];
        if (r->kind != R_STAMP || !(r->stamp.on & (1u << op)) || out->type != FL_MAP ||
            !match(&r->stamp.path, loc, false, NULL))
            continue;
        fl_value_t m = *out;
        if (stamp_map(&r->stamp, flush, key, version, &m, arena, out) < 0)
            return -1;
        *stamped = true;
    }
    return 0;
}

/* ----------------------------------------------------------- constraints */

typedef struct walk_s {
    const pat_t *pat;
    const schema_t *schema;
    fl_slice_t toks[FL_RULES_MAX_SEGMENTS];
    uint32_t ntok;
    fl_arena_t *arena;
    /* reporting (fl_rules_check_doc) */
    fl_rules_on_violation_t on_violation;
    void *opaque;
    fl_slice_t rule;
    uint32_t found, max;
    char where[4096];
    size_t wlen;
} walk_t;

static bool walk_at(walk_t *w, const fl_value_t *node, uint32_t i);

static bool walk_child(walk_t *w, const fl_value_t *c, uint32_t i, const char *key, size_t klen,
                       bool escape_it, uint32_t idx)
{
    size_t old = w->wlen;
    if (w->on_violation) {
        char buf[16];
        if (!key) {
            klen = (size_t)snprintf(buf, sizeof(buf), "%u", idx);
            key = buf;
            escape_it = false;
        }
        if (w->wlen + 1 + 2 * klen < sizeof(w->where)) {
            w->where[w->wlen++] = '/';
            for (size_t k = 0; k < klen; k++) {
                if (escape_it && (key[k] == '~' || key[k] == '/')) {
                    w->where[w->wlen++] = '~';
                    w->where[w->wlen++] = key[k] == '~' ? '0' : '1';
                } else {
                    w->where[w->wlen++] = key[k];
                }
            }
        }
    }
    bool ok = walk_at(w, c, i + 1);
    w->wlen = old;
    return ok;
}

/* False when a violation was found (and, reporting, max reached). */
static bool walk_at(walk_t *w, const fl_value_t *node, uint32_t i)
{
    if (i == w->pat->nseg) {
        if (fl_rules_schema_valid(w->schema, node))
            return true;
        if (!w->on_violation)
            return false;
        w->on_violation(w->opaque, w->rule, (fl_slice_t){w->where, w->wlen});
        return ++w->found < w->max;
    }
    if (node->type != FL_MAP && node->type != FL_ARRAY)
        return true;
    fl_slice_t seg = w->pat->seg[i];
    if (i < w->ntok) {
        fl_slice_t t = w->toks[i];
        if (seg.ptr && !seg_eq(seg, t.ptr, t.len))
            return true; /* the command did not touch this location */
        const fl_value_t *c = child_after(node, t.ptr, t.len, i + 1 == w->ntok, w->arena);
        return c ? walk_child(w, c, i, t.ptr, t.len, false, 0) : true;
    }
    if (seg.ptr) {
        const fl_value_t *c = child(node, seg.ptr, seg.len, w->arena);
        return c ? walk_child(w, c, i, seg.ptr, seg.len, false, 0) : true;
    }
    if (node->type == FL_MAP) {
        for (uint32_t k = 0; k < node->len; k++)
            if (!walk_child(w, &node->u.ents[k].val, i, node->u.ents[k].key, node->u.ents[k].klen,
                            true, 0))
                return false;
    } else {
        for (uint32_t k = 0; k < node->len; k++)
            if (!walk_child(w, &node->u.items[k], i, NULL, 0, false, k))
                return false;
    }
    return true;
}

static void split(walk_t *w, fl_slice_t ptr)
{
    size_t i = 0;
    w->ntok = 0;
    while (i < ptr.len && w->ntok < FL_RULES_MAX_SEGMENTS) {
        size_t st = i + 1, e = st;
        while (e < ptr.len && ptr.ptr[e] != '/')
            e++;
        w->toks[w->ntok++] = (fl_slice_t){ptr.ptr + st, e - st};
        i = e;
    }
}

/* Checks every constraint at the locations a command with path tokens
 * w->toks may have changed. The containers along the path are resolved once
 * (nodes[i] is the value named by the first i tokens) and shared by all
 * constraints; only a pattern longer than the path walks below it. */
static const rule_t *check_path(const fl_rules_t *rules, walk_t *w, const fl_value_t *root,
                                const fl_value_t *const *known, uint32_t nknown)
{
    const fl_value_t *nodes[FL_RULES_MAX_SEGMENTS + 1];
    uint32_t nnodes = 1;
    nodes[0] = root;
    for (; nnodes < nknown && nnodes <= w->ntok; nnodes++)
        nodes[nnodes] = known[nnodes];
    while (nnodes <= w->ntok) {
        const fl_value_t *c = child_after(nodes[nnodes - 1], w->toks[nnodes - 1].ptr,
                                          w->toks[nnodes - 1].len, nnodes == w->ntok, w->arena);
        if (!c)
            break;
        nodes[nnodes++] = c;
    }
    for (uint32_t i = 0; i < rules->n; i++) {
        const rule_t *r = &rules->rules[i];
        if (r->kind != R_CONSTRAINT)
            continue;
        const pat_t *pat = &r->cpath;
        uint32_t common = pat->nseg < w->ntok ? pat->nseg : w->ntok, k;
        for (k = 0; k < common; k++)
            if (pat->seg[k].ptr && !seg_eq(pat->seg[k], w->toks[k].ptr, w->toks[k].len))
                break;
        if (k < common || common >= nnodes)
            continue; /* not touched, or the location does not exist */
        bool ok;
        if (pat->nseg <= w->ntok) {
            ok = fl_rules_schema_valid(r->schema, nodes[pat->nseg]);
        } else {
            w->pat = pat;
            w->schema = r->schema;
            ok = walk_at(w, nodes[common], common);
        }
        if (!ok)
            return r;
    }
    return NULL;
}

int fl_rules_check_after(const fl_rules_t *rules, const fl_value_t *root, const fl_cmd_t *cmd,
                         fl_slice_t eff, fl_arena_t *arena, const fl_rules_path_t *pc,
                         fl_slice_t *rule)
{
    if (!rules->nconstraint || cmd->op == FL_OP_TEST)
        return FL_CODE_OK;
    walk_t w;
    w.arena = arena;
    w.on_violation = NULL;
    split(&w, eff);
    /* What the command cannot have moved: it changed one container (the
     * parent of its path, or for merge and create the map at its path), so
     * the values above it are where they were; the value at the path is too
     * when its parent kept its length and buffer (a replacement in place).
     * A move changes two places: everything is resolved again. */
    uint32_t nknown = 0;
    if (pc && pc->valid && cmd->op != FL_OP_MOVE && pc->nnodes >= pc->ntok) {
        nknown = pc->ntok ? pc->ntok : 1;
        if (pc->ntok && pc->nnodes == pc->ntok + 1) {
            const fl_value_t *parent = pc->nodes[pc->ntok - 1];
            const void *buf = parent->type == FL_MAP ? (const void *)parent->u.ents
                                                     : (const void *)parent->u.items;
            if (parent->len == pc->parent_len && buf == pc->parent_buf)
                nknown = pc->ntok + 1;
        }
    }
    const rule_t *r = check_path(rules, &w, root, pc ? pc->nodes : NULL, nknown);
    if (!r && cmd->op == FL_OP_MOVE) {
        split(&w, cmd->from);
        r = check_path(rules, &w, root, NULL, 0);
    }
    if (r) {
        *rule = r->name;
        return FL_CODE_RULE_VIOLATION;
    }
    return FL_CODE_OK;
}

int fl_rules_check_doc(const fl_rules_t *rules, const fl_value_t *state, uint32_t max,
                       fl_rules_on_violation_t on_violation, void *opaque)
{
    if (!rules || !state || !on_violation || max == 0)
        return FL_RERR_ARG;
    fl_arena_t *arena = fl_arena_new(1024);
    walk_t *w = calloc(1, sizeof(*w));
    if (!arena || !w) {
        fl_arena_free(arena);
        free(w);
        return FL_RERR_NOMEM;
    }
    w->arena = arena;
    w->on_violation = on_violation;
    w->opaque = opaque;
    w->max = max;
    for (uint32_t i = 0; i < rules->n && w->found < max; i++) {
        const rule_t *r = &rules->rules[i];
        if (r->kind != R_CONSTRAINT)
            continue;
        w->pat = &r->cpath;
        w->schema = r->schema;
        w->rule = r->name;
        w->ntok = 0;
        w->wlen = 0;
        walk_at(w, state, 0);
    }
    int n = (int)w->found;
    fl_arena_free(arena);
    free(w);
    return n;
}
