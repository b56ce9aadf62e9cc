/* SPDX-License-Identifier: Apache-2.0 */
/*
 * rules: parse, validate and compile rule sets (schemas/RULES.md); the
 * evaluation is in rules_eval.c, schema checks in rules_schema.c, the
 * catalogue in rules_catalog.c. Everything a
 * compiled set holds lives in one arena; patterns are pre-split into
 * escaped segments, compared with a command path's tokens (split once per
 * command) with no allocation, and the rules are indexed by kind. Keep in
 * step with RULES.md and client/js/src/rules.js.
 */
#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "flushline/engine.h"
#include "rules_int.h"

const char *fl_rules_strerror(int err)
{
    /* by -err */
    static const char *const text[] = {"success", "out of memory", "invalid rule set",
                                       "rules document too large", "invalid argument"};
    return FL_NAME_AT(text, -(long)err, "unknown rules error");
}

/* --------------------------------------------------------------- parse */

typedef struct pctx_s {
    fl_arena_t *arena;
    char path[256]; /* JSON path of the current node, e.g. rules[3].allow */
    size_t plen;
    char *errstr;
    size_t errstr_size;
    int err;
} pctx_t;

static int fail(pctx_t *p, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int fail(pctx_t *p, const char *fmt, ...)
{
    if (p->err)
        return p->err;
    p->err = FL_RERR_INVALID;
    if (p->errstr && p->errstr_size) {
        int n = snprintf(p->errstr, p->errstr_size, "%s: ", p->plen ? p->path : "$");
        if (n >= 0 && (size_t)n < p->errstr_size) {
            va_list ap;
            va_start(ap, fmt);
            vsnprintf(p->errstr + n, p->errstr_size - (size_t)n, fmt, ap);
            va_end(ap);
        }
    }
    return p->err;
}

static int oom(pctx_t *p)
{
    if (!p->err) {
        p->err = FL_RERR_NOMEM;
        if (p->errstr && p->errstr_size)
            snprintf(p->errstr, p->errstr_size, "out of memory");
    }
    return p->err;
}

/* Pushes ".key" or "[i]" on the path; returns the old length to pop to. */
static size_t push_key(pctx_t *p, const char *key)
{
    size_t old = p->plen;
    int n = snprintf(p->path + p->plen, sizeof(p->path) - p->plen, "%s%s", p->plen ? "." : "",
                     key);
    if (n > 0)
        p->plen = p->plen + (size_t)n < sizeof(p->path) ? p->plen + (size_t)n : sizeof(p->path) - 1;
    return old;
}

static size_t push_idx(pctx_t *p, size_t i)
{
    size_t old = p->plen;
    int n = snprintf(p->path + p->plen, sizeof(p->path) - p->plen, "[%zu]", i);
    if (n > 0)
        p->plen = p->plen + (size_t)n < sizeof(p->path) ? p->plen + (size_t)n : sizeof(p->path) - 1;
    return old;
}

static void pop(pctx_t *p, size_t old)
{
    p->plen = old;
    p->path[old] = '\0';
}

static void *palloc(pctx_t *p, size_t n)
{
    void *m = fl_arena_alloc(p->arena, n ? n : 1);
    if (!m)
        oom(p);
    else
        memset(m, 0, n ? n : 1);
    return m;
}

static int copy_str(pctx_t *p, const char *s, size_t n, fl_slice_t *out)
{
    char *c = palloc(p, n + 1);
    if (!c)
        return p->err;
    memcpy(c, s, n);
    *out = (fl_slice_t){c, n};
    return 0;
}

static const char *jtype(const json_t *j)
{
    switch (json_typeof(j)) {
    case JSON_OBJECT:
        return "an object";
    case JSON_ARRAY:
        return "an array";
    case JSON_STRING:
        return "a string";
    case JSON_INTEGER:
        return "an integer";
    case JSON_REAL:
        return "a number";
    case JSON_TRUE:
    case JSON_FALSE:
        return "a boolean";
    default:
        return "null";
    }
}

/* The first key of obj that is not one of the NULL-terminated names, or NULL. */
static const char *unknown_key(const json_t *obj, const char *const *names)
{
    const char *k;
    json_t *v;
    json_object_foreach((json_t *)obj, k, v) {
        bool ok = false;
        for (const char *const *n = names; *n; n++)
            if (strcmp(*n, k) == 0)
                ok = true;
        if (!ok)
            return k;
    }
    return NULL;
}

/* Checks that obj is an object and every key of it one of the
 * NULL-terminated names; what names the object in the error. */
static int only_keys(pctx_t *p, const json_t *obj, const char *const *names, const char *what)
{
    if (!json_is_object(obj))
        return fail(p, "must be an object, not %s", jtype(obj));
    const char *k = unknown_key(obj, names);
    if (!k)
        return 0;
    size_t old = push_key(p, k);
    fail(p, "unknown %s key", what);
    pop(p, old);
    return p->err;
}

/* A non-empty string of at most max bytes (valid UTF-8: jansson checks). */
static int get_name(pctx_t *p, const json_t *j, size_t max, fl_slice_t *out)
{
    if (!json_is_string(j))
        return fail(p, "must be a string, not %s", jtype(j));
    size_t n = json_string_length(j);
    if (n == 0 || n > max)
        return fail(p, "must be 1-%zu bytes", max);
    return copy_str(p, json_string_value(j), n, out);
}

/* An array of 1..FL_RULES_MAX_LIST items. */
static int get_list(pctx_t *p, const json_t *j, size_t *n)
{
    if (!json_is_array(j))
        return fail(p, "must be an array, not %s", jtype(j));
    *n = json_array_size(j);
    if (*n == 0)
        return fail(p, "must not be empty");
    if (*n > FL_RULES_MAX_LIST)
        return fail(p, "more than %d items", FL_RULES_MAX_LIST);
    return 0;
}

/* Escape syntax of a pointer segment: only ~0 and ~1. */
static bool seg_ok(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (s[i] == '~' && (i + 1 >= n || (s[i + 1] != '0' && s[i + 1] != '1')))
            return false;
    return true;
}

static bool ptr_ok(const char *s, size_t n)
{
    return n == 0 || (s[0] == '/' && seg_ok(s, n));
}

/* A path pattern: "" or "/seg/..." with "*" segments and an optional
 * trailing "**" (when tail_ok). */
static int get_pattern(pctx_t *p, const json_t *j, bool tail_ok, pat_t *pat)
{
    if (!json_is_string(j))
        return fail(p, "must be a string, not %s", jtype(j));
    const char *s = json_string_value(j);
    size_t n = json_string_length(j);
    if (n > 1024)
        return fail(p, "bad pointer pattern: longer than 1024 bytes");
    if (!ptr_ok(s, n))
        return fail(p, "bad pointer pattern: must be \"\" or start with \"/\", escapes ~0 ~1 only");
    uint32_t nseg = 0;
    for (size_t i = 0; i < n; i++)
        nseg += s[i] == '/';
    if (nseg > FL_RULES_MAX_SEGMENTS)
        return fail(p, "bad pointer pattern: more than %d segments", FL_RULES_MAX_SEGMENTS);
    pat->seg = palloc(p, nseg * sizeof(fl_slice_t));
    if (!pat->seg)
        return p->err;
    char *copy = palloc(p, n + 1);
    if (!copy)
        return p->err;
    memcpy(copy, s, n);
    pat->nseg = 0;
    pat->tail = false;
    size_t i = 0;
    while (i < n) {
        size_t st = i + 1, e = st;
        while (e < n && copy[e] != '/')
            e++;
        fl_slice_t seg = {copy + st, e - st};
        if (pat->tail)
            return fail(p, "bad pointer pattern: \"**\" only as the last segment");
        if (seg.len == 2 && memcmp(seg.ptr, "**", 2) == 0) {
            if (!tail_ok)
                return fail(p, "bad pointer pattern: \"**\" is not allowed here");
            pat->tail = true;
        } else if (seg.len == 1 && seg.ptr[0] == '*') {
            pat->seg[pat->nseg++] = (fl_slice_t){NULL, 0};
        } else {
            if (memchr(seg.ptr, '*', seg.len))
                return fail(p, "bad pointer pattern: \"*\" must be a whole segment");
            pat->seg[pat->nseg++] = seg;
        }
        i = e;
    }
    return 0;
}

static int get_ops(pctx_t *p, const json_t *j, uint32_t *ops, uint32_t allowed)
{
    size_t n;
    if (get_list(p, j, &n))
        return p->err;
    *ops = 0;
    for (size_t i = 0; i < n; i++) {
        json_t *o = json_array_get(j, i);
        size_t old = push_idx(p, i);
        int op = json_is_string(o) ? fl_op_from_name(json_string_value(o), json_string_length(o))
                                   : 0;
        if (!json_is_string(o))
            fail(p, "must be a string, not %s", jtype(o));
        else if (!op)
            fail(p, "unknown op \"%s\"", json_string_value(o));
        else if (!(allowed & (1u << op)))
            fail(p, "op \"%s\" is not allowed here", json_string_value(o));
        pop(p, old);
        if (p->err)
            return p->err;
        *ops |= 1u << op;
    }
    return 0;
}

static int get_value(pctx_t *p, const json_t *j, fl_value_t *out)
{
    int rc = fl_value_from_json(j, &fl_limits_default, p->arena, out);
    if (rc == FL_VERR_NOMEM)
        return oom(p);
    if (rc < 0)
        return fail(p, "bad value: %s", fl_value_strerror(rc));
    return 0;
}

static int get_cond(pctx_t *p, const json_t *j, cond_t *c)
{
    static const char *const keys[] = {"target", "value", "eq", "ne", NULL};
    if (only_keys(p, j, keys, "condition"))
        return p->err;
    json_t *t = json_object_get(j, "target"), *v = json_object_get(j, "value");
    json_t *eq = json_object_get(j, "eq"), *ne = json_object_get(j, "ne");
    if (!t == !v)
        return fail(p, "needs exactly one of \"target\" and \"value\"");
    if (!eq == !ne)
        return fail(p, "needs exactly one of \"eq\" and \"ne\"");
    c->on_value = v != NULL;
    c->ne = ne != NULL;
    json_t *ptr = t ? t : v;
    size_t old = push_key(p, t ? "target" : "value");
    if (!json_is_string(ptr))
        fail(p, "must be a string, not %s", jtype(ptr));
    else if (!ptr_ok(json_string_value(ptr), json_string_length(ptr)))
        fail(p, "bad pointer: must be \"\" or start with \"/\", escapes ~0 ~1 only");
    else
        copy_str(p, json_string_value(ptr), json_string_length(ptr), &c->path);
    pop(p, old);
    if (p->err)
        return p->err;
    json_t *cmp = eq ? eq : ne;
    old = push_key(p, eq ? "eq" : "ne");
    c->var = V_LIT;
    if (json_is_string(cmp) && json_string_length(cmp) && json_string_value(cmp)[0] == '$') {
        const char *s = json_string_value(cmp);
        if (strcmp(s, "$user") == 0)
            c->var = V_USER;
        else if (strcmp(s, "$role") == 0)
            c->var = V_ROLE;
        else
            fail(p, "unknown variable \"%s\" (conditions know $user and $role)", s);
    } else {
        get_value(p, cmp, &c->lit);
    }
    pop(p, old);
    return p->err;
}

/* The element getters get_items takes: one array element into *out. */
static void item_pattern(pctx_t *p, const json_t *j, void *out)
{
    get_pattern(p, j, true, out);
}

static void item_role(pctx_t *p, const json_t *j, void *out)
{
    get_name(p, j, FL_RULES_MAX_NAME, out);
}

static void item_cond(pctx_t *p, const json_t *j, void *out)
{
    get_cond(p, j, out);
}

/* The list j at key (errors name key[i]): its n elements of size bytes in a
 * palloc'd array, each read by get; NULL with *n 0 when it is not a list or
 * out of memory (p->err says which). */
static void *get_items(pctx_t *p, const char *key, const json_t *j, size_t size,
                       void (*get)(pctx_t *, const json_t *, void *), uint32_t *count)
{
    size_t old = push_key(p, key), n;
    char *items = NULL;
    *count = 0;
    if (!get_list(p, j, &n) && (items = palloc(p, n * size))) {
        *count = (uint32_t)n;
        for (size_t i = 0; i < n && !p->err; i++) {
            size_t o2 = push_idx(p, i);
            get(p, json_array_get(j, i), items + i * size);
            pop(p, o2);
        }
    }
    pop(p, old);
    return items;
}

static int get_allow(pctx_t *p, const json_t *j, allow_t *a)
{
    static const char *const keys[] = {"ops", "paths", "roles", "where", NULL};
    if (only_keys(p, j, keys, "allow"))
        return p->err;
    json_t *ops = json_object_get(j, "ops"), *paths = json_object_get(j, "paths");
    json_t *roles = json_object_get(j, "roles"), *where = json_object_get(j, "where");
    if (!ops)
        return fail(p, "missing \"ops\"");
    if (!paths)
        return fail(p, "missing \"paths\"");
    size_t old = push_key(p, "ops");
    get_ops(p, ops, &a->ops, ALL_OPS);
    pop(p, old);
    if (p->err)
        return p->err;
    a->paths = get_items(p, "paths", paths, sizeof(pat_t), item_pattern, &a->npaths);
    if (p->err)
        return p->err;
    if (roles)
        a->roles = get_items(p, "roles", roles, sizeof(fl_slice_t), item_role, &a->nroles);
    if (where && !p->err)
        a->conds = get_items(p, "where", where, sizeof(cond_t), item_cond, &a->nconds);
    return p->err;
}

static int get_schema(pctx_t *p, const json_t *j, uint32_t depth, schema_t **out);

static int get_count(pctx_t *p, const json_t *obj, const char *key, int64_t *out)
{
    json_t *v = json_object_get(obj, key);
    *out = -1;
    if (!v)
        return 0;
    size_t old = push_key(p, key);
    if (!json_is_integer(v))
        fail(p, "must be a non-negative integer, not %s", jtype(v));
    else if (json_integer_value(v) < 0)
        fail(p, "must be a non-negative integer, not %lld", (long long)json_integer_value(v));
    else
        *out = json_integer_value(v);
    pop(p, old);
    return p->err;
}

static int get_types(pctx_t *p, const json_t *j, uint32_t *types)
{
    static const char *const names[] = {"null", "boolean", "integer", "number",
                                        "string", "array", "object"};
    size_t n = 1;
    if (json_is_array(j) && get_list(p, j, &n))
        return p->err;
    *types = 0;
    for (size_t i = 0; i < n; i++) {
        const json_t *t = json_is_array(j) ? json_array_get(j, i) : j;
        size_t old = json_is_array(j) ? push_idx(p, i) : p->plen;
        uint32_t bit = 0;
        if (json_is_string(t))
            for (int k = 0; k < 7; k++)
                if (strcmp(names[k], json_string_value(t)) == 0)
                    bit = 1u << k;
        if (!json_is_string(t))
            fail(p, "must be a type name or an array of them, not %s", jtype(t));
        else if (!bit)
            fail(p, "unknown type \"%s\"", json_string_value(t));
        pop(p, old);
        if (p->err)
            return p->err;
        *types |= bit;
    }
    return 0;
}

/* Fails on the first keyword outside the supported subset. */
static int schema_keywords(pctx_t *p, const json_t *j)
{
    static const char *const keys[] = {
        "type",      "properties", "required", "additionalProperties", "enum",
        "const",     "minimum",    "maximum",  "minLength",            "maxLength",
        "minItems",  "maxItems",   "minProperties", "maxProperties",   "items",
        "title",     "description", "$comment", NULL};
    const char *k = unknown_key(j, keys);
    if (!k)
        return 0;
    size_t old = push_key(p, k);
    fail(p, "schema keyword outside the supported subset (RULES.md)");
    pop(p, old);
    return p->err;
}

/* The steps below parse the value v of one keyword into s; errors are
 * left in p, under the keyword's path. */

static void schema_type(pctx_t *p, const json_t *v, uint32_t depth, schema_t *s)
{
    get_types(p, v, &s->types);
}

static void schema_properties(pctx_t *p, const json_t *v, uint32_t depth, schema_t *s)
{
    const char *k;
    json_t *pv;
    if (!json_is_object(v)) {
        fail(p, "must be an object, not %s", jtype(v));
    } else if (json_object_size(v) > FL_RULES_MAX_RULES) {
        fail(p, "more than %d properties", FL_RULES_MAX_RULES);
    } else if ((s->props = palloc(p, json_object_size(v) * sizeof(prop_t)))) {
        json_object_foreach((json_t *)v, k, pv) {
            size_t old = push_key(p, k);
            prop_t *pr = &s->props[s->nprops++];
            if (!copy_str(p, k, strlen(k), &pr->key))
                get_schema(p, pv, depth + 1, &pr->s);
            pop(p, old);
            if (p->err)
                break;
        }
    }
}

static void schema_required(pctx_t *p, const json_t *v, uint32_t depth, schema_t *s)
{
    size_t n;
    if (get_list(p, v, &n) || !(s->req = palloc(p, n * sizeof(fl_slice_t))))
        return;
    for (size_t i = 0; i < n && !p->err; i++) {
        json_t *r = json_array_get(v, i);
        size_t old = push_idx(p, i);
        if (!json_is_string(r))
            fail(p, "must be a string, not %s", jtype(r));
        else
            copy_str(p, json_string_value(r), json_string_length(r), &s->req[i]);
        pop(p, old);
    }
    s->nreq = (uint32_t)n;
}

static void schema_additional(pctx_t *p, const json_t *v, uint32_t depth, schema_t *s)
{
    if (json_is_boolean(v))
        s->addl = json_is_true(v) ? -1 : 0;
    else if (!get_schema(p, v, depth + 1, &s->addl_s))
        s->addl = 1;
}

static void schema_items(pctx_t *p, const json_t *v, uint32_t depth, schema_t *s)
{
    get_schema(p, v, depth + 1, &s->items);
}

static void schema_enum(pctx_t *p, const json_t *v, uint32_t depth, schema_t *s)
{
    size_t n;
    if (get_list(p, v, &n) || !(s->enums = palloc(p, n * sizeof(fl_value_t))))
        return;
    for (size_t i = 0; i < n && !p->err; i++) {
        size_t old = push_idx(p, i);
        get_value(p, json_array_get(v, i), &s->enums[i]);
        pop(p, old);
    }
    s->nenum = (uint32_t)n;
}

static void schema_const(pctx_t *p, const json_t *v, uint32_t depth, schema_t *s)
{
    if ((s->konst = palloc(p, sizeof(fl_value_t))))
        get_value(p, v, s->konst);
}

static fl_value_t *schema_number(pctx_t *p, const json_t *v)
{
    fl_value_t *nv = palloc(p, sizeof(*nv));
    if (nv && !json_is_number(v))
        fail(p, "must be a number, not %s", jtype(v));
    else if (nv)
        get_value(p, v, nv);
    return nv;
}

static void schema_minimum(pctx_t *p, const json_t *v, uint32_t depth, schema_t *s)
{
    s->min = schema_number(p, v);
}

static void schema_maximum(pctx_t *p, const json_t *v, uint32_t depth, schema_t *s)
{
    s->max = schema_number(p, v);
}

/* The keywords with a step, in the order their errors are reported. */
static const struct {
    const char *name;
    void (*get)(pctx_t *p, const json_t *v, uint32_t depth, schema_t *s);
} schema_steps[] = {
    {"type", schema_type},        {"properties", schema_properties},
    {"required", schema_required}, {"additionalProperties", schema_additional},
    {"items", schema_items},      {"enum", schema_enum},
    {"const", schema_const},      {"minimum", schema_minimum},
    {"maximum", schema_maximum},
};

static int get_schema(pctx_t *p, const json_t *j, uint32_t depth, schema_t **out)
{
    if (depth > FL_RULES_MAX_SCHEMA_DEPTH)
        return fail(p, "schema nested deeper than %d", FL_RULES_MAX_SCHEMA_DEPTH);
    if (!json_is_object(j))
        return fail(p, "a schema must be an object, not %s", jtype(j));
    if (schema_keywords(p, j))
        return p->err;
    schema_t *s = palloc(p, sizeof(*s));
    if (!s)
        return p->err;
    *out = s;
    s->addl = -1;
    for (size_t i = 0; i < sizeof(schema_steps) / sizeof(schema_steps[0]); i++) {
        const json_t *v = json_object_get(j, schema_steps[i].name);
        if (!v)
            continue;
        size_t old = push_key(p, schema_steps[i].name);
        schema_steps[i].get(p, v, depth, s);
        pop(p, old);
        if (p->err)
            return p->err;
    }
    if (get_count(p, j, "minLength", &s->min_len) || get_count(p, j, "maxLength", &s->max_len) ||
        get_count(p, j, "minItems", &s->min_items) || get_count(p, j, "maxItems", &s->max_items) ||
        get_count(p, j, "minProperties", &s->min_props) ||
        get_count(p, j, "maxProperties", &s->max_props))
        return p->err;
    return 0;
}

static int cmp_setf(const void *a, const void *b)
{
    return fl_rules_key_cmp(((const setf_t *)a)->field, ((const setf_t *)b)->field);
}

/* Escapes key (~ -> ~0, / -> ~1) into arena. */
static int escape(fl_arena_t *arena, fl_slice_t key, fl_slice_t *out)
{
    size_t n = fl_ptr_escaped_len(key);
    if (n == key.len) {
        *out = key;
        return 0;
    }
    char *b = fl_arena_alloc(arena, n);
    if (!b)
        return -1;
    fl_ptr_escape(b, key);
    *out = (fl_slice_t){b, n};
    return 0;
}

static int get_stamp(pctx_t *p, const json_t *j, stamp_t *st)
{
    static const char *const keys[] = {"path", "on", "set", NULL};
    if (only_keys(p, j, keys, "stamp"))
        return p->err;
    json_t *path = json_object_get(j, "path"), *on = json_object_get(j, "on");
    json_t *set = json_object_get(j, "set");
    if (!path)
        return fail(p, "missing \"path\"");
    if (!set)
        return fail(p, "missing \"set\"");
    size_t old = push_key(p, "path");
    get_pattern(p, path, false, &st->path);
    pop(p, old);
    if (p->err)
        return p->err;
    if (on) {
        old = push_key(p, "on");
        get_ops(p, on, &st->on, WRITE_OPS);
        pop(p, old);
        if (p->err)
            return p->err;
    } else {
        st->on = (1u << FL_OP_ADD) | (1u << FL_OP_CREATE);
    }
    old = push_key(p, "set");
    if (!json_is_object(set))
        fail(p, "must be an object, not %s", jtype(set));
    else if (json_object_size(set) == 0 || json_object_size(set) > FL_RULES_MAX_LIST)
        fail(p, "must have 1-%d fields", FL_RULES_MAX_LIST);
    else if ((st->set = palloc(p, json_object_size(set) * sizeof(setf_t)))) {
        const char *k;
        json_t *v;
        json_object_foreach(set, k, v) {
            size_t o2 = push_key(p, k);
            setf_t *f = &st->set[st->nset++];
            const char *s = json_is_string(v) ? json_string_value(v) : "";
            size_t klen = strlen(k);
            if (klen == 0 || klen > FL_RULES_MAX_NAME)
                fail(p, "field names must be 1-%d bytes", FL_RULES_MAX_NAME);
            else if (!json_is_string(v))
                fail(p, "must be one of \"$user\", \"$ts\", \"$version\", \"$key\", not %s",
                     jtype(v));
            else if (strcmp(s, "$user") == 0)
                f->var = S_USER;
            else if (strcmp(s, "$ts") == 0)
                f->var = S_TS;
            else if (strcmp(s, "$version") == 0)
                f->var = S_VERSION;
            else if (strcmp(s, "$key") == 0)
                f->var = S_KEY;
            else
                fail(p, "must be one of \"$user\", \"$ts\", \"$version\", \"$key\"");
            if (!p->err && !copy_str(p, k, klen, &f->field) &&
                escape(p->arena, f->field, &f->esc) < 0)
                oom(p);
            pop(p, o2);
            if (p->err)
                break;
        }
        if (!p->err)
            qsort(st->set, st->nset, sizeof(setf_t), cmp_setf);
    }
    pop(p, old);
    return p->err;
}

static int get_rule(pctx_t *p, const json_t *j, rule_t *r)
{
    static const char *const keys[] = {"name", "allow", "constraint", "stamp", "description",
                                       NULL};
    if (only_keys(p, j, keys, "rule"))
        return p->err;
    json_t *name = json_object_get(j, "name");
    if (!name)
        return fail(p, "missing \"name\"");
    size_t old = push_key(p, "name");
    if (!get_name(p, name, FL_RULES_MAX_NAME, &r->name) && r->name.len == 5 &&
        memcmp(r->name.ptr, "allow", 5) == 0)
        fail(p, "\"allow\" is reserved (it names a command no allow rule permits)");
    pop(p, old);
    if (p->err)
        return p->err;
    json_t *a = json_object_get(j, "allow"), *c = json_object_get(j, "constraint");
    json_t *s = json_object_get(j, "stamp");
    if ((a != NULL) + (c != NULL) + (s != NULL) != 1)
        return fail(p, "needs exactly one of \"allow\", \"constraint\" and \"stamp\"");
    if (json_object_get(j, "description") && !json_is_string(json_object_get(j, "description"))) {
        old = push_key(p, "description");
        fail(p, "must be a string");
        pop(p, old);
        return p->err;
    }
    if (a) {
        r->kind = R_ALLOW;
        old = push_key(p, "allow");
        get_allow(p, a, &r->allow);
    } else if (s) {
        r->kind = R_STAMP;
        old = push_key(p, "stamp");
        get_stamp(p, s, &r->stamp);
    } else {
        static const char *const ckeys[] = {"path", "schema", NULL};
        r->kind = R_CONSTRAINT;
        old = push_key(p, "constraint");
        if (!only_keys(p, c, ckeys, "constraint")) {
            json_t *path = json_object_get(c, "path"), *schema = json_object_get(c, "schema");
            if (!path)
                fail(p, "missing \"path\"");
            else if (!schema)
                fail(p, "missing \"schema\"");
            size_t o2 = push_key(p, "path");
            if (!p->err)
                get_pattern(p, path, false, &r->cpath);
            pop(p, o2);
            o2 = push_key(p, "schema");
            if (!p->err)
                get_schema(p, schema, 1, &r->schema);
            pop(p, o2);
        }
    }
    pop(p, old);
    return p->err;
}

/* Parses the "rules" array into rs, rule by rule, counting kinds; errors
 * are left in p. */
static void get_rules(pctx_t *p, const json_t *rules, fl_rules_t *rs)
{
    if (!json_is_array(rules)) {
        fail(p, "must be an array, not %s", jtype(rules));
        return;
    }
    if (json_array_size(rules) > FL_RULES_MAX_RULES) {
        fail(p, "more than %d rules", FL_RULES_MAX_RULES);
        return;
    }
    if (!(rs->rules = palloc(p, json_array_size(rules) * sizeof(rule_t))))
        return;
    for (size_t i = 0; i < json_array_size(rules) && !p->err; i++) {
        size_t old = push_idx(p, i);
        rule_t *r = &rs->rules[i];
        if (get_rule(p, json_array_get(rules, i), r) == 0) {
            for (uint32_t k = 0; k < i; k++)
                if (fl_rules_key_cmp(rs->rules[k].name, r->name) == 0) {
                    size_t o2 = push_key(p, "name");
                    fail(p, "duplicate rule name \"%.*s\"", (int)r->name.len, r->name.ptr);
                    pop(p, o2);
                    break;
                }
        }
        pop(p, old);
        rs->n = (uint32_t)i + 1;
        rs->nallow += r->kind == R_ALLOW;
        rs->nconstraint += r->kind == R_CONSTRAINT;
        rs->needs_path |= r->kind == R_CONSTRAINT;
        for (uint32_t k = 0; r->kind == R_ALLOW && k < r->allow.nconds; k++)
            rs->needs_path |= !r->allow.conds[k].on_value;
        if (r->kind == R_STAMP) {
            rs->nstamp++;
            rs->stamp_ops |= r->stamp.on;
        }
    }
}

/* The rules of each kind in their order, so that each evaluation step
 * looks only at its own (0 or an error left in p). */
static int index_kinds(pctx_t *p, fl_rules_t *rs)
{
    const rule_t **lists[3];
    uint32_t counts[3] = {rs->nallow, rs->nconstraint, rs->nstamp}, fill[3] = {0, 0, 0};
    for (int k = 0; k < 3; k++)
        if (!(lists[k] = palloc(p, (counts[k] ? counts[k] : 1) * sizeof(rule_t *))))
            return p->err;
    for (uint32_t i = 0; i < rs->n; i++) {
        uint8_t k = rs->rules[i].kind; /* R_ALLOW, R_CONSTRAINT, R_STAMP */
        lists[k][fill[k]++] = &rs->rules[i];
    }
    rs->allows = lists[R_ALLOW];
    rs->constraints = lists[R_CONSTRAINT];
    rs->stamps = lists[R_STAMP];
    return 0;
}

int fl_rules_parse(const char *json, size_t len, fl_rules_t **out, char *errstr,
                   size_t errstr_size)
{
    static const char *const keys[] = {"default_role", "rules", "description", NULL};
    pctx_t p = {.errstr = errstr, .errstr_size = errstr_size};
    fl_rules_t *rs = NULL;
    json_t *root = NULL;
    if (!out || (!json && len))
        return FL_RERR_ARG;
    *out = NULL;
    if (errstr && errstr_size)
        errstr[0] = '\0';
    if (len > FL_RULES_MAX_BYTES) {
        if (errstr && errstr_size)
            snprintf(errstr, errstr_size, "$: %zu bytes, above the limit of %u", len,
                     FL_RULES_MAX_BYTES);
        return FL_RERR_TOO_LARGE;
    }
    json_error_t jerr;
    root = json_loadb(json ? json : "", len, JSON_REJECT_DUPLICATES, &jerr);
    if (!root) {
        if (errstr && errstr_size)
            snprintf(errstr, errstr_size, "$: not JSON (line %d column %d): %s", jerr.line,
                     jerr.column, jerr.text);
        return FL_RERR_INVALID;
    }
    rs = calloc(1, sizeof(*rs));
    if (!rs || !(rs->arena = fl_arena_new(4096))) {
        oom(&p);
        goto fail;
    }
    p.arena = rs->arena;
    if (only_keys(&p, root, keys, "top-level"))
        goto fail;
    json_t *dr = json_object_get(root, "default_role"), *rules = json_object_get(root, "rules");
    if (dr) {
        size_t old = push_key(&p, "default_role");
        get_name(&p, dr, FL_RULES_MAX_NAME, &rs->default_role);
        pop(&p, old);
    } else {
        copy_str(&p, "member", 6, &rs->default_role);
    }
    if (p.err)
        goto fail;
    if (!rules) {
        fail(&p, "missing \"rules\"");
        goto fail;
    }
    size_t old = push_key(&p, "rules");
    get_rules(&p, rules, rs);
    pop(&p, old);
    if (p.err || index_kinds(&p, rs))
        goto fail;
    json_decref(root);
    *out = rs;
    return 0;
fail:
    json_decref(root);
    fl_rules_free(rs);
    return p.err ? p.err : FL_RERR_NOMEM;
}

void fl_rules_free(fl_rules_t *rules)
{
    if (!rules)
        return;
    fl_arena_free(rules->arena);
    free(rules);
}

uint32_t fl_rules_count(const fl_rules_t *rules)
{
    return rules ? rules->n : 0;
}

fl_slice_t fl_rules_default_role(const fl_rules_t *rules)
{
    return rules->default_role;
}
