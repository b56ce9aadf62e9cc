/* SPDX-License-Identifier: Apache-2.0 */
/*
 * rules: parse, validate and compile rule sets (schemas/RULES.md), and the
 * evaluation steps the engine calls around each command. Everything a
 * compiled set holds lives in one arena; patterns are pre-split into
 * escaped segments so matching a command path is a walk over its bytes
 * with no allocation. Keep in step with RULES.md and client/js/src/rules.js.
 */
#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "flushline/rules.h"

/* ------------------------------------------------------------ compiled */

typedef struct pat_s {
    fl_slice_t *seg; /* escaped segments; ptr NULL means "*" */
    uint32_t nseg;
    bool tail;       /* trailing "**": zero or more further segments */
} pat_t;

enum { V_LIT, V_USER, V_ROLE };

typedef struct cond_s {
    bool on_value;   /* the command's value, else the target in the state */
    bool ne;
    uint8_t var;     /* V_* */
    fl_slice_t path; /* relative pointer, escaped */
    fl_value_t lit;
} cond_t;

enum { T_NULL = 1, T_BOOL = 2, T_INT = 4, T_NUM = 8, T_STR = 16, T_ARR = 32, T_OBJ = 64 };

typedef struct schema_s schema_t;
typedef struct prop_s {
    fl_slice_t key; /* unescaped */
    schema_t *s;
} prop_t;

struct schema_s {
    uint32_t types; /* 0: any */
    prop_t *props;
    uint32_t nprops;
    fl_slice_t *req;
    uint32_t nreq;
    int addl;       /* -1 absent, 0 false, 1 a schema (addl_s) */
    schema_t *addl_s;
    fl_value_t *enums;
    uint32_t nenum;
    fl_value_t *konst;
    fl_value_t *min, *max;
    int64_t min_len, max_len, min_items, max_items, min_props, max_props; /* -1 absent */
    schema_t *items;
};

typedef struct allow_s {
    uint32_t ops; /* bit per fl_op_t */
    pat_t *paths;
    uint32_t npaths;
    fl_slice_t *roles;
    uint32_t nroles; /* 0: any role */
    cond_t *conds;
    uint32_t nconds;
} allow_t;

typedef struct setf_s {
    fl_slice_t field; /* unescaped key */
    fl_slice_t esc;   /* escaped, for protection matching */
    uint8_t var;      /* S_* */
} setf_t;

enum { S_USER, S_TS, S_VERSION, S_KEY };

typedef struct stamp_s {
    pat_t path;
    uint32_t on;
    setf_t *set; /* sorted by field */
    uint32_t nset;
} stamp_t;

enum { R_ALLOW, R_CONSTRAINT, R_STAMP };

typedef struct rule_s {
    fl_slice_t name;
    uint8_t kind;
    allow_t allow;
    pat_t cpath;
    schema_t *schema;
    stamp_t stamp;
} rule_t;

struct fl_rules_s {
    fl_arena_t *arena;
    fl_slice_t default_role;
    rule_t *rules;
    uint32_t n;
    uint32_t nallow, nconstraint, nstamp;
    uint32_t stamp_ops; /* union of stamps' on */
    bool needs_path;    /* constraints or target conditions: resolve the command's path */
};

const char *fl_rules_strerror(int err)
{
    switch (err) {
    case 0:
        return "success";
    case FL_RERR_NOMEM:
        return "out of memory";
    case FL_RERR_INVALID:
        return "invalid rule set";
    case FL_RERR_TOO_LARGE:
        return "rules document too large";
    case FL_RERR_ARG:
        return "invalid argument";
    default:
        return "unknown rules error";
    }
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

/* Checks that every key of obj is one of the NULL-terminated names. */
static int only_keys(pctx_t *p, const json_t *obj, const char *const *names, const char *what)
{
    const char *k;
    json_t *v;
    json_object_foreach((json_t *)obj, k, v) {
        bool ok = false;
        for (const char *const *n = names; *n; n++)
            if (strcmp(*n, k) == 0)
                ok = true;
        if (!ok) {
            size_t old = push_key(p, k);
            fail(p, "unknown %s key", what);
            pop(p, old);
            return p->err;
        }
    }
    return 0;
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
    if (!json_is_object(j))
        return fail(p, "must be an object, not %s", jtype(j));
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

#define ALL_OPS 0x3FEu
#define WRITE_OPS ((1u << FL_OP_ADD) | (1u << FL_OP_REPLACE) | (1u << FL_OP_MERGE) | \
                   (1u << FL_OP_CREATE))

static int get_allow(pctx_t *p, const json_t *j, allow_t *a)
{
    static const char *const keys[] = {"ops", "paths", "roles", "where", NULL};
    if (!json_is_object(j))
        return fail(p, "must be an object, not %s", jtype(j));
    if (only_keys(p, j, keys, "allow"))
        return p->err;
    json_t *ops = json_object_get(j, "ops"), *paths = json_object_get(j, "paths");
    json_t *roles = json_object_get(j, "roles"), *where = json_object_get(j, "where");
    if (!ops)
        return fail(p, "missing \"ops\"");
    if (!paths)
        return fail(p, "missing \"paths\"");
    size_t old = push_key(p, "ops"), n;
    get_ops(p, ops, &a->ops, ALL_OPS);
    pop(p, old);
    if (p->err)
        return p->err;
    old = push_key(p, "paths");
    if (!get_list(p, paths, &n) && (a->paths = palloc(p, n * sizeof(pat_t)))) {
        a->npaths = (uint32_t)n;
        for (size_t i = 0; i < n && !p->err; i++) {
            size_t o2 = push_idx(p, i);
            get_pattern(p, json_array_get(paths, i), true, &a->paths[i]);
            pop(p, o2);
        }
    }
    pop(p, old);
    if (p->err)
        return p->err;
    if (roles) {
        old = push_key(p, "roles");
        if (!get_list(p, roles, &n) && (a->roles = palloc(p, n * sizeof(fl_slice_t)))) {
            a->nroles = (uint32_t)n;
            for (size_t i = 0; i < n && !p->err; i++) {
                size_t o2 = push_idx(p, i);
                get_name(p, json_array_get(roles, i), FL_RULES_MAX_NAME, &a->roles[i]);
                pop(p, o2);
            }
        }
        pop(p, old);
    }
    if (where && !p->err) {
        old = push_key(p, "where");
        if (!get_list(p, where, &n) && (a->conds = palloc(p, n * sizeof(cond_t)))) {
            a->nconds = (uint32_t)n;
            for (size_t i = 0; i < n && !p->err; i++) {
                size_t o2 = push_idx(p, i);
                get_cond(p, json_array_get(where, i), &a->conds[i]);
                pop(p, o2);
            }
        }
        pop(p, old);
    }
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

static int get_schema(pctx_t *p, const json_t *j, uint32_t depth, schema_t **out)
{
    static const char *const keys[] = {
        "type",      "properties", "required", "additionalProperties", "enum",
        "const",     "minimum",    "maximum",  "minLength",            "maxLength",
        "minItems",  "maxItems",   "minProperties", "maxProperties",   "items",
        "title",     "description", "$comment", NULL};
    if (depth > FL_RULES_MAX_SCHEMA_DEPTH)
        return fail(p, "schema nested deeper than %d", FL_RULES_MAX_SCHEMA_DEPTH);
    if (!json_is_object(j))
        return fail(p, "a schema must be an object, not %s", jtype(j));
    const char *k;
    json_t *v;
    json_object_foreach((json_t *)j, k, v) {
        bool ok = false;
        for (const char *const *n = keys; *n; n++)
            if (strcmp(*n, k) == 0)
                ok = true;
        if (!ok) {
            size_t old = push_key(p, k);
            fail(p, "schema keyword outside the supported subset (RULES.md)");
            pop(p, old);
            return p->err;
        }
    }
    schema_t *s = palloc(p, sizeof(*s));
    if (!s)
        return p->err;
    *out = s;
    s->addl = -1;
    if ((v = json_object_get(j, "type"))) {
        size_t old = push_key(p, "type");
        get_types(p, v, &s->types);
        pop(p, old);
        if (p->err)
            return p->err;
    }
    if ((v = json_object_get(j, "properties"))) {
        size_t old = push_key(p, "properties");
        if (!json_is_object(v)) {
            fail(p, "must be an object, not %s", jtype(v));
        } else if (json_object_size(v) > FL_RULES_MAX_RULES) {
            fail(p, "more than %d properties", FL_RULES_MAX_RULES);
        } else if ((s->props = palloc(p, json_object_size(v) * sizeof(prop_t)))) {
            json_t *pv;
            json_object_foreach(v, k, pv) {
                size_t o2 = push_key(p, k);
                prop_t *pr = &s->props[s->nprops++];
                if (!copy_str(p, k, strlen(k), &pr->key))
                    get_schema(p, pv, depth + 1, &pr->s);
                pop(p, o2);
                if (p->err)
                    break;
            }
        }
        pop(p, old);
        if (p->err)
            return p->err;
    }
    if ((v = json_object_get(j, "required"))) {
        size_t old = push_key(p, "required"), n;
        if (!get_list(p, v, &n) && (s->req = palloc(p, n * sizeof(fl_slice_t)))) {
            for (size_t i = 0; i < n && !p->err; i++) {
                json_t *r = json_array_get(v, i);
                size_t o2 = push_idx(p, i);
                if (!json_is_string(r))
                    fail(p, "must be a string, not %s", jtype(r));
                else
                    copy_str(p, json_string_value(r), json_string_length(r), &s->req[i]);
                pop(p, o2);
            }
            s->nreq = (uint32_t)n;
        }
        pop(p, old);
        if (p->err)
            return p->err;
    }
    if ((v = json_object_get(j, "additionalProperties"))) {
        size_t old = push_key(p, "additionalProperties");
        if (json_is_boolean(v))
            s->addl = json_is_true(v) ? -1 : 0;
        else if (!get_schema(p, v, depth + 1, &s->addl_s))
            s->addl = 1;
        pop(p, old);
        if (p->err)
            return p->err;
    }
    if ((v = json_object_get(j, "items"))) {
        size_t old = push_key(p, "items");
        get_schema(p, v, depth + 1, &s->items);
        pop(p, old);
        if (p->err)
            return p->err;
    }
    if ((v = json_object_get(j, "enum"))) {
        size_t old = push_key(p, "enum"), n;
        if (!get_list(p, v, &n) && (s->enums = palloc(p, n * sizeof(fl_value_t)))) {
            for (size_t i = 0; i < n && !p->err; i++) {
                size_t o2 = push_idx(p, i);
                get_value(p, json_array_get(v, i), &s->enums[i]);
                pop(p, o2);
            }
            s->nenum = (uint32_t)n;
        }
        pop(p, old);
        if (p->err)
            return p->err;
    }
    if ((v = json_object_get(j, "const"))) {
        size_t old = push_key(p, "const");
        if ((s->konst = palloc(p, sizeof(fl_value_t))))
            get_value(p, v, s->konst);
        pop(p, old);
        if (p->err)
            return p->err;
    }
    const char *nums[2] = {"minimum", "maximum"};
    for (int i = 0; i < 2; i++) {
        if (!(v = json_object_get(j, nums[i])))
            continue;
        size_t old = push_key(p, nums[i]);
        fl_value_t *nv = palloc(p, sizeof(*nv));
        if (nv && !json_is_number(v))
            fail(p, "must be a number, not %s", jtype(v));
        else if (nv)
            get_value(p, v, nv);
        pop(p, old);
        if (p->err)
            return p->err;
        if (i == 0)
            s->min = nv;
        else
            s->max = nv;
    }
    if (get_count(p, j, "minLength", &s->min_len) || get_count(p, j, "maxLength", &s->max_len) ||
        get_count(p, j, "minItems", &s->min_items) || get_count(p, j, "maxItems", &s->max_items) ||
        get_count(p, j, "minProperties", &s->min_props) ||
        get_count(p, j, "maxProperties", &s->max_props))
        return p->err;
    return 0;
}

static int cmp_key(fl_slice_t a, fl_slice_t b)
{
    size_t n = a.len < b.len ? a.len : b.len;
    int c = memcmp(a.ptr, b.ptr, n);
    return c ? c : (a.len < b.len ? -1 : a.len > b.len);
}

static int cmp_setf(const void *a, const void *b)
{
    return cmp_key(((const setf_t *)a)->field, ((const setf_t *)b)->field);
}

/* Escapes key (~ -> ~0, / -> ~1) into arena. */
static int escape(fl_arena_t *arena, fl_slice_t key, fl_slice_t *out)
{
    size_t n = key.len;
    for (size_t i = 0; i < key.len; i++)
        n += key.ptr[i] == '~' || key.ptr[i] == '/';
    if (n == key.len) {
        *out = key;
        return 0;
    }
    char *b = fl_arena_alloc(arena, n);
    if (!b)
        return -1;
    size_t o = 0;
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

static int get_stamp(pctx_t *p, const json_t *j, stamp_t *st)
{
    static const char *const keys[] = {"path", "on", "set", NULL};
    if (!json_is_object(j))
        return fail(p, "must be an object, not %s", jtype(j));
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
    if (!json_is_object(j))
        return fail(p, "must be an object, not %s", jtype(j));
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
        if (!json_is_object(c)) {
            fail(p, "must be an object, not %s", jtype(c));
        } else if (!only_keys(p, c, ckeys, "constraint")) {
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
    if (!json_is_object(root)) {
        fail(&p, "must be an object, not %s", jtype(root));
        goto fail;
    }
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
    if (!json_is_array(rules))
        fail(&p, "must be an array, not %s", jtype(rules));
    else if (json_array_size(rules) > FL_RULES_MAX_RULES)
        fail(&p, "more than %d rules", FL_RULES_MAX_RULES);
    else if ((rs->rules = palloc(&p, json_array_size(rules) * sizeof(rule_t)))) {
        for (size_t i = 0; i < json_array_size(rules) && !p.err; i++) {
            size_t o2 = push_idx(&p, i);
            rule_t *r = &rs->rules[i];
            if (get_rule(&p, json_array_get(rules, i), r) == 0) {
                for (uint32_t k = 0; k < i; k++)
                    if (cmp_key(rs->rules[k].name, r->name) == 0) {
                        size_t o3 = push_key(&p, "name");
                        fail(&p, "duplicate rule name \"%.*s\"", (int)r->name.len, r->name.ptr);
                        pop(&p, o3);
                        break;
                    }
            }
            pop(&p, o2);
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
    pop(&p, old);
    if (p.err)
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

/* ------------------------------------------------------------ matching */

static bool seg_eq(fl_slice_t a, const char *p, size_t n)
{
    return a.len == n && memcmp(a.ptr, p, n) == 0;
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
    size_t i = 0;
    uint32_t k = 0;
    while (i < ptr.len) {
        size_t st = i + 1, e = st;
        while (e < ptr.len && ptr.ptr[e] != '/')
            e++;
        if (k == pat->nseg) {
            if (!pat->tail)
                return false;
            if (anchor)
                *anchor = i;
            return true;
        }
        fl_slice_t s = pat->seg[k];
        if (s.ptr && !seg_eq(s, ptr.ptr + st, e - st))
            return false;
        k++;
        i = e;
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
    size_t i = 0;
    uint32_t k = 0;
    while (i < ptr.len) {
        size_t st = i + 1, e = st;
        while (e < ptr.len && ptr.ptr[e] != '/')
            e++;
        if (k == pat->nseg)
            return seg_eq(field, ptr.ptr + st, e - st);
        fl_slice_t s = pat->seg[k];
        if (s.ptr && !seg_eq(s, ptr.ptr + st, e - st))
            return false;
        k++;
        i = e;
    }
    return false;
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
            c = cmp_key((fl_slice_t){m->u.ents[i].key, m->u.ents[i].klen}, st->set[f].field);
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

/* ------------------------------------------------------------- schemas */

static int num_cmp(const fl_value_t *a, const fl_value_t *b)
{
    if (a->type == FL_INT && b->type == FL_INT)
        return a->u.i < b->u.i ? -1 : a->u.i > b->u.i;
    long double x = a->type == FL_INT ? (long double)a->u.i : (long double)a->u.f;
    long double y = b->type == FL_INT ? (long double)b->u.i : (long double)b->u.f;
    return x < y ? -1 : x > y;
}

static uint64_t utf8_chars(const char *s, size_t n)
{
    uint64_t c = 0;
    for (size_t i = 0; i < n; i++)
        c += ((unsigned char)s[i] & 0xC0) != 0x80;
    return c;
}

static bool validate(const schema_t *s, const fl_value_t *v)
{
    if (s->types) {
        uint32_t t = 0;
        switch (v->type) {
        case FL_NIL:
            t = T_NULL;
            break;
        case FL_BOOL:
            t = T_BOOL;
            break;
        case FL_INT:
            t = T_INT | T_NUM;
            break;
        case FL_FLOAT:
            t = T_NUM;
            break;
        case FL_STR:
            t = T_STR;
            break;
        case FL_ARRAY:
            t = T_ARR;
            break;
        case FL_MAP:
            t = T_OBJ;
            break;
        default:
            t = 0; /* bin matches no type */
        }
        if (!(s->types & t))
            return false;
    }
    if (s->konst && !fl_value_equal(v, s->konst))
        return false;
    if (s->nenum) {
        bool ok = false;
        for (uint32_t i = 0; i < s->nenum && !ok; i++)
            ok = fl_value_equal(v, &s->enums[i]);
        if (!ok)
            return false;
    }
    if (v->type == FL_INT || v->type == FL_FLOAT) {
        if (s->min && num_cmp(v, s->min) < 0)
            return false;
        if (s->max && num_cmp(v, s->max) > 0)
            return false;
    }
    if (v->type == FL_STR && (s->min_len >= 0 || s->max_len >= 0)) {
        uint64_t n = utf8_chars(v->u.str, v->len);
        if ((s->min_len >= 0 && n < (uint64_t)s->min_len) ||
            (s->max_len >= 0 && n > (uint64_t)s->max_len))
            return false;
    }
    if (v->type == FL_ARRAY) {
        if ((s->min_items >= 0 && v->len < (uint64_t)s->min_items) ||
            (s->max_items >= 0 && v->len > (uint64_t)s->max_items))
            return false;
        if (s->items)
            for (uint32_t i = 0; i < v->len; i++)
                if (!validate(s->items, &v->u.items[i]))
                    return false;
    }
    if (v->type == FL_MAP) {
        if ((s->min_props >= 0 && v->len < (uint64_t)s->min_props) ||
            (s->max_props >= 0 && v->len > (uint64_t)s->max_props))
            return false;
        for (uint32_t i = 0; i < s->nreq; i++)
            if (!fl_map_get(v, s->req[i].ptr, s->req[i].len))
                return false;
        for (uint32_t i = 0; i < s->nprops; i++) {
            const fl_value_t *c = fl_map_get(v, s->props[i].key.ptr, s->props[i].key.len);
            if (c && !validate(s->props[i].s, c))
                return false;
        }
        if (s->addl >= 0) {
            for (uint32_t i = 0; i < v->len; i++) {
                const fl_entry_t *e = &v->u.ents[i];
                bool declared = false;
                for (uint32_t k = 0; k < s->nprops && !declared; k++)
                    declared = cmp_key(s->props[k].key, (fl_slice_t){e->key, e->klen}) == 0;
                if (declared)
                    continue;
                if (s->addl == 0 || !validate(s->addl_s, &e->val))
                    return false;
            }
        }
    }
    return true;
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
        if (validate(w->schema, node))
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
            ok = validate(r->schema, nodes[pat->nseg]);
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

/* ------------------------------------------------------------ catalogue */

typedef struct cat_ent_s {
    char *prefix;
    size_t plen;
    fl_rules_t *rules;
} cat_ent_t;

struct fl_rules_catalog_s {
    cat_ent_t *ents;
    uint32_t n, cap;
};

fl_rules_catalog_t *fl_rules_catalog_new(void)
{
    return calloc(1, sizeof(fl_rules_catalog_t));
}

void fl_rules_catalog_free(fl_rules_catalog_t *cat)
{
    if (!cat)
        return;
    for (uint32_t i = 0; i < cat->n; i++) {
        free(cat->ents[i].prefix);
        fl_rules_free(cat->ents[i].rules);
    }
    free(cat->ents);
    free(cat);
}

int fl_rules_catalog_put(fl_rules_catalog_t *cat, fl_slice_t prefix, fl_rules_t *rules)
{
    if (!cat || prefix.len > FL_RULES_MAX_PREFIX || (prefix.len && !prefix.ptr)) {
        fl_rules_free(rules);
        return FL_RERR_ARG;
    }
    for (uint32_t i = 0; i < cat->n; i++) {
        cat_ent_t *e = &cat->ents[i];
        if (e->plen != prefix.len || memcmp(e->prefix, prefix.ptr, prefix.len) != 0)
            continue;
        fl_rules_free(e->rules);
        if (rules) {
            e->rules = rules;
        } else {
            free(e->prefix);
            cat->ents[i] = cat->ents[--cat->n];
        }
        return 0;
    }
    if (!rules)
        return 0;
    if (cat->n == cat->cap) {
        uint32_t ncap = cat->cap ? cat->cap * 2 : 8;
        cat_ent_t *ne = realloc(cat->ents, ncap * sizeof(*ne));
        if (!ne) {
            fl_rules_free(rules);
            return FL_RERR_NOMEM;
        }
        cat->ents = ne;
        cat->cap = ncap;
    }
    char *p = malloc(prefix.len ? prefix.len : 1);
    if (!p) {
        fl_rules_free(rules);
        return FL_RERR_NOMEM;
    }
    if (prefix.len)
        memcpy(p, prefix.ptr, prefix.len);
    cat->ents[cat->n++] = (cat_ent_t){p, prefix.len, rules};
    return 0;
}

const fl_rules_t *fl_rules_catalog_find(const fl_rules_catalog_t *cat, fl_slice_t doc_id)
{
    const cat_ent_t *best = NULL;
    for (uint32_t i = 0; cat && i < cat->n; i++) {
        const cat_ent_t *e = &cat->ents[i];
        if (e->plen <= doc_id.len && (e->plen == 0 || memcmp(e->prefix, doc_id.ptr, e->plen) == 0) &&
            (!best || e->plen > best->plen))
            best = e;
    }
    return best ? best->rules : NULL;
}

uint32_t fl_rules_catalog_count(const fl_rules_catalog_t *cat)
{
    return cat ? cat->n : 0;
}
