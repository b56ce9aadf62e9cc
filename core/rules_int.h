/* SPDX-License-Identifier: Apache-2.0 */
/*
 * rules_int: a compiled rule set, shared by the rules' files: rules.c
 * parses and compiles it, rules_eval.c evaluates it around each command,
 * rules_schema.c checks a value against its JSON Schema subset and
 * rules_catalog.c keeps sets by document prefix. Everything a compiled set
 * holds lives in its arena.
 */
#ifndef FL_RULES_INT_H
#define FL_RULES_INT_H

#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include "flushline/rules.h"

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
    const rule_t **allows, **constraints, **stamps; /* the rules of each kind, in order */
    uint32_t stamp_ops; /* union of stamps' on */
    bool needs_path;    /* constraints or target conditions: resolve the command's path */
};

/* Ops an allow rule may name; ops a stamp may be on. */
#define ALL_OPS 0x3FEu
#define WRITE_OPS ((1u << FL_OP_ADD) | (1u << FL_OP_REPLACE) | (1u << FL_OP_MERGE) | \
                   (1u << FL_OP_CREATE))

/* Byte order of two keys, shorter first on a common prefix. */
static inline int fl_rules_key_cmp(fl_slice_t a, fl_slice_t b)
{
    size_t n = a.len < b.len ? a.len : b.len;
    int c = memcmp(a.ptr, b.ptr, n);
    return c ? c : (a.len < b.len ? -1 : a.len > b.len);
}

/* True when v is valid against s (RULES.md, Schemas). */
bool fl_rules_schema_valid(const schema_t *s, const fl_value_t *v);

#endif
