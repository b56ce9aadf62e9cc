/* SPDX-License-Identifier: Apache-2.0 */
/*
 * rules_eval: the steps the engine calls around each command (RULES.md,
 * Evaluation order): matching patterns against a command path, allow
 * rules and their conditions, stamp guards and stamps, and the constraints
 * on the state after the command or on a whole document. A command's path
 * is split into tokens once (fl_rules_toks_t, kept in fl_rules_path_t) and
 * every pattern, pre-split into segments, compares those: counts first,
 * then bytes, with no allocation; each step looks only at the rules of its
 * kind (fl_rules_t's allows, constraints, stamps).
 */
#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rules_int.h"

/* ------------------------------------------------------------ matching */

/* Splits the escaped pointer ptr into tk (fl_rules_toks_t). Counts and
 * flags stay in locals: the bytes read through ptr could alias tk. */
static void tokenize(fl_slice_t ptr, fl_rules_toks_t *tk)
{
    const char *p = ptr.ptr;
    size_t i = 0, len = ptr.len;
    uint32_t n = 0;
    bool esc = false;
    while (i < len) {
        size_t st = i + 1, e = st;
        for (char c; e < len && (c = p[e]) != '/'; e++)
            esc |= c == '~';
        if (n <= FL_RULES_MAX_SEGMENTS)
            tk->t[n] = (fl_slice_t){p + st, e - st};
        n++;
        i = e;
    }
    tk->n = n;
    tk->esc = esc;
}

/* Bytes of ptr (split into tk) that its first k tokens take. */
static size_t toks_prefix(fl_slice_t ptr, const fl_rules_toks_t *tk, uint32_t k)
{
    return k < tk->n ? (size_t)(tk->t[k].ptr - 1 - ptr.ptr) : ptr.len;
}

/* Byte equality of two short strings (segments, tokens, roles): most
 * differ in length or first byte, and one-byte ones need no memcmp call. */
static bool seg_eq(fl_slice_t a, fl_slice_t t)
{
    if (a.len != t.len)
        return false;
    if (a.len == 0)
        return true;
    return a.ptr[0] == t.ptr[0] && (a.len == 1 || memcmp(a.ptr + 1, t.ptr + 1, a.len - 1) == 0);
}

/* Do the first m tokens match the first m segments of pat ("*" any)? */
static bool prefix_ok(const pat_t *pat, const fl_rules_toks_t *tk, uint32_t m)
{
    for (uint32_t k = 0; k < m; k++)
        if (pat->seg[k].ptr && !seg_eq(pat->seg[k], tk->t[k]))
            return false;
    return true;
}

/*
 * Matches a pointer split into tk against pat. With extra, the pointer is
 * followed by one more token of unknown text (create's key before it is
 * chosen; it matches "*" and, conservatively, any literal). On a match
 * *anchor is the number of the pointer's tokens the pattern's segments
 * name (the part before "**"). The counts decide before any byte is
 * compared.
 */
static bool match(const pat_t *pat, const fl_rules_toks_t *tk, bool extra, uint32_t *anchor)
{
    uint32_t n = tk->n;
    bool fits;
    if (n > pat->nseg)
        fits = pat->tail;
    else if (extra)
        fits = n == pat->nseg ? pat->tail : n + 1 == pat->nseg;
    else
        fits = n == pat->nseg;
    uint32_t m = n < pat->nseg ? n : pat->nseg;
    if (!fits || !prefix_ok(pat, tk, m))
        return false;
    if (anchor)
        *anchor = m;
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

/* child() for a token of a pointer split by tokenize(): with no '~' in
 * the pointer a map's key is the token itself. */
static const fl_value_t *child_tok(const fl_value_t *v, fl_slice_t t, bool esc, fl_arena_t *arena)
{
    if (!esc && v->type == FL_MAP)
        return fl_map_get(v, t.ptr, t.len);
    return child(v, t.ptr, t.len, arena);
}

/* child() for a token of a command's effective path after the command:
 * its last token "-" on an array names the item the command appended. */
static const fl_value_t *child_after(const fl_value_t *v, fl_slice_t t, bool esc, bool last,
                                     fl_arena_t *arena)
{
    if (last && t.len == 1 && t.ptr[0] == '-' && v->type == FL_ARRAY)
        return v->len ? &v->u.items[v->len - 1] : NULL;
    return child_tok(v, t, esc, arena);
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

static bool cond_holds(const cond_t *c, fl_slice_t role, const fl_flush_t *flush,
                       const fl_value_t *anchor, const fl_cmd_t *cmd, fl_arena_t *arena)
{
    const fl_value_t *v;
    if (c->on_value)
        v = cmd->has_value ? resolve(&cmd->value, c->path, arena) : NULL;
    else
        v = anchor ? resolve(anchor, c->path, arena) : NULL;
    if (!v)
        return false; /* a missing target or value fails every condition */
    bool eq;
    if (c->var == V_LIT) {
        /* different types are never equal; ints (the common literal) inline */
        eq = v->type == c->lit.type &&
             (v->type == FL_INT ? v->u.i == c->lit.u.i : fl_value_equal(v, &c->lit));
    } else {
        fl_slice_t s = c->var == V_USER ? flush->user : role;
        eq = v->type == FL_STR && v->len == s.len && (s.len == 0 || memcmp(v->u.str, s.ptr, s.len) == 0);
    }
    return c->ne ? !eq : eq;
}

/* The value the first k tokens of the command's path name on the state
 * before it (a condition's target), or NULL. */
static const fl_value_t *anchor_at(const fl_value_t *root, const fl_cmd_t *cmd,
                                   const fl_rules_path_t *pc, uint32_t k, fl_arena_t *arena)
{
    if (pc->valid)
        return k < pc->nnodes ? pc->nodes[k] : NULL;
    return resolve(root, (fl_slice_t){cmd->path.ptr, toks_prefix(cmd->path, &pc->toks, k)},
                   arena);
}

/* Does allow rule a permit cmd (path split in pc, from in ftk)? *near is
 * set when op, path and role match (a condition or the from path failed). */
static bool allow_permits(const allow_t *a, fl_slice_t role, const fl_flush_t *flush,
                          const fl_value_t *root, const fl_cmd_t *cmd, fl_arena_t *arena,
                          const fl_rules_path_t *pc, const fl_rules_toks_t *ftk, bool *near)
{
    if (!(a->ops & (1u << cmd->op)))
        return false;
    if (a->nroles) {
        bool ok = false;
        for (uint32_t i = 0; i < a->nroles && !ok; i++)
            ok = seg_eq(a->roles[i], role);
        if (!ok)
            return false;
    }
    uint32_t pa = 0, fa = 0;
    bool pm = false, fm = false;
    for (uint32_t i = 0; i < a->npaths && !pm; i++)
        pm = match(&a->paths[i], &pc->toks, false, &pa);
    if (!pm)
        return false;
    *near = true;
    if (ftk) {
        for (uint32_t i = 0; i < a->npaths && !fm; i++)
            fm = match(&a->paths[i], ftk, false, &fa);
        if (!fm)
            return false;
    }
    const fl_value_t *anc = NULL, *fanc = NULL;
    bool resolved = false;
    for (uint32_t i = 0; i < a->nconds; i++) {
        const cond_t *c = &a->conds[i];
        if (!c->on_value && !resolved) {
            resolved = true;
            anc = anchor_at(root, cmd, pc, pa, arena);
            if (ftk)
                fanc = resolve(root, (fl_slice_t){cmd->from.ptr, toks_prefix(cmd->from, ftk, fa)},
                               arena);
        }
        if (!cond_holds(c, role, flush, anc, cmd, arena))
            return false;
        if (ftk && !cond_holds(c, role, flush, fanc, cmd, arena))
            return false;
    }
    return true;
}

/* Is a pointer split into tk at or under stamp path + "/" + one of its
 * fields (whatever the pattern's tail)? */
static bool protected_by(const stamp_t *st, const fl_rules_toks_t *tk)
{
    uint32_t n = st->path.nseg;
    if (tk->n <= n || !prefix_ok(&st->path, tk, n))
        return false;
    for (uint32_t f = 0; f < st->nset; f++)
        if (seg_eq(st->set[f].esc, tk->t[n]))
            return true;
    return false;
}

static int stamp_guard(const stamp_t *st, const fl_cmd_t *cmd, const fl_rules_toks_t *tk,
                       const fl_rules_toks_t *ftk)
{
    if (protected_by(st, tk) || (cmd->op == FL_OP_MOVE && protected_by(st, ftk)))
        return 1;
    if (ftk)
        return match(&st->path, tk, false, NULL);
    if (!(WRITE_OPS & (1u << cmd->op)) || (st->on & (1u << cmd->op)))
        return 0;
    if (!cmd->has_value || cmd->value.type != FL_MAP)
        return 0;
    if (!match(&st->path, tk, cmd->op == FL_OP_CREATE, NULL))
        return 0;
    for (uint32_t f = 0; f < st->nset; f++)
        if (fl_map_get(&cmd->value, st->set[f].field.ptr, st->set[f].field.len))
            return 1;
    return 0;
}

/* Resolves the values along the path split in pc->toks on root (valid only
 * when the path has at most FL_RULES_MAX_SEGMENTS tokens). */
static void path_resolve(const fl_value_t *root, fl_arena_t *arena, fl_rules_path_t *pc)
{
    const fl_rules_toks_t *tk = &pc->toks;
    pc->valid = false;
    pc->nnodes = 1;
    pc->nodes[0] = root;
    if (tk->n > FL_RULES_MAX_SEGMENTS)
        return;
    pc->ntok = tk->n;
    for (uint32_t k = 0; k < tk->n; k++) {
        const fl_value_t *c = child_tok(pc->nodes[k], tk->t[k], tk->esc, arena);
        if (!c)
            break;
        pc->nodes[pc->nnodes++] = c;
    }
    if (pc->ntok && pc->nnodes >= pc->ntok) {
        const fl_value_t *parent = pc->nodes[pc->ntok - 1];
        pc->parent_len = parent->len;
        pc->parent_buf = parent->type == FL_MAP ? (const void *)parent->u.ents
                                                : (const void *)parent->u.items;
    }
    pc->valid = true;
}

/* The first allow rule that permits cmd, in order: FL_CODE_OK, or the
 * violation with the first rule that matched all but a condition (or
 * "allow"). */
static int check_allow(const fl_rules_t *rules, fl_slice_t role, const fl_flush_t *flush,
                       const fl_value_t *root, const fl_cmd_t *cmd, fl_arena_t *arena,
                       const fl_rules_path_t *pc, const fl_rules_toks_t *ftk, fl_slice_t *rule)
{
    const rule_t *near = NULL;
    for (uint32_t i = 0; i < rules->nallow; i++) {
        const rule_t *r = rules->allows[i];
        bool nr = false;
        if (allow_permits(&r->allow, role, flush, root, cmd, arena, pc, ftk, &nr))
            return FL_CODE_OK;
        if (nr && !near)
            near = r;
    }
    *rule = near ? near->name : FL_SLICE("allow");
    return FL_CODE_RULE_VIOLATION;
}

int fl_rules_check_command(const fl_rules_t *rules, const fl_rules_ctx_t *ctx,
                           const fl_flush_t *flush, const fl_value_t *root,
                           const fl_cmd_t *cmd, fl_arena_t *arena, fl_rules_path_t *pc,
                           fl_slice_t *rule)
{
    fl_slice_t role = ctx && ctx->role.len ? ctx->role : rules->default_role;
    fl_rules_path_t local;
    fl_rules_toks_t from, *ftk = NULL;
    if (!pc)
        pc = &local;
    tokenize(cmd->path, &pc->toks);
    pc->valid = false;
    if (cmd->op == FL_OP_MOVE || cmd->op == FL_OP_COPY) {
        tokenize(cmd->from, &from);
        ftk = &from;
    }
    if (rules->needs_path)
        path_resolve(root, arena, pc);
    if (rules->nallow && check_allow(rules, role, flush, root, cmd, arena, pc, ftk, rule))
        return FL_CODE_RULE_VIOLATION;
    for (uint32_t i = 0; i < rules->nstamp; i++) {
        const rule_t *r = rules->stamps[i];
        if (stamp_guard(&r->stamp, cmd, &pc->toks, ftk)) {
            *rule = r->name;
            return FL_CODE_RULE_VIOLATION;
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
    fl_rules_toks_t tk;
    *out = *value;
    *stamped = false;
    tokenize(loc, &tk);
    for (uint32_t i = 0; i < rules->nstamp; i++) {
        const rule_t *r = rules->stamps[i];
        if (!(r->stamp.on & (1u << op)) || out->type != FL_MAP ||
            !match(&r->stamp.path, &tk, false, NULL))
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
    const fl_slice_t *toks; /* the path's tokens (the first ntok) */
    uint32_t ntok;
    bool esc;
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
        if (seg.ptr && !seg_eq(seg, t))
            return true; /* the command did not touch this location */
        const fl_value_t *c = child_after(node, t, w->esc, i + 1 == w->ntok, w->arena);
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

/* Walks below the first FL_RULES_MAX_SEGMENTS tokens of tk. */
static void use_toks(walk_t *w, const fl_rules_toks_t *tk)
{
    w->toks = tk->t;
    w->ntok = tk->n < FL_RULES_MAX_SEGMENTS ? tk->n : FL_RULES_MAX_SEGMENTS;
    w->esc = tk->esc;
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
        const fl_value_t *c = child_after(nodes[nnodes - 1], w->toks[nnodes - 1], w->esc,
                                          nnodes == w->ntok, w->arena);
        if (!c)
            break;
        nodes[nnodes++] = c;
    }
    for (uint32_t i = 0; i < rules->nconstraint; i++) {
        const rule_t *r = rules->constraints[i];
        const pat_t *pat = &r->cpath;
        uint32_t common = pat->nseg < w->ntok ? pat->nseg : w->ntok, k;
        for (k = 0; k < common; k++)
            if (pat->seg[k].ptr && !seg_eq(pat->seg[k], w->toks[k]))
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
    fl_rules_toks_t tk;
    w.arena = arena;
    w.on_violation = NULL;
    if (pc && eff.ptr == cmd->path.ptr && eff.len == cmd->path.len) {
        use_toks(&w, &pc->toks); /* split by fl_rules_check_command */
    } else {
        tokenize(eff, &tk);
        use_toks(&w, &tk);
    }
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
        tokenize(cmd->from, &tk);
        use_toks(&w, &tk);
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
    for (uint32_t i = 0; i < rules->nconstraint && w->found < max; i++) {
        const rule_t *r = rules->constraints[i];
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
