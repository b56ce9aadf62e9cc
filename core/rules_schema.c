/* SPDX-License-Identifier: Apache-2.0 */
/*
 * rules_schema: checks a value against the JSON Schema subset a
 * constraint rule carries (RULES.md, Schemas): type, const, enum, numeric
 * bounds, string length in characters, array and object sizes, items,
 * properties, required and additionalProperties.
 */
#include <stdbool.h>
#include <stdint.h>

#include "rules_int.h"

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

/* The T_* bit of v's JSON type (T_INT | T_NUM for integers); 0 for bin,
 * which matches no type. */
static uint32_t type_bits(const fl_value_t *v)
{
    switch (v->type) {
    case FL_NIL:
        return T_NULL;
    case FL_BOOL:
        return T_BOOL;
    case FL_INT:
        return T_INT | T_NUM;
    case FL_FLOAT:
        return T_NUM;
    case FL_STR:
        return T_STR;
    case FL_ARRAY:
        return T_ARR;
    case FL_MAP:
        return T_OBJ;
    default:
        return 0;
    }
}

static bool valid_array(const schema_t *s, const fl_value_t *v)
{
    if ((s->min_items >= 0 && v->len < (uint64_t)s->min_items) ||
        (s->max_items >= 0 && v->len > (uint64_t)s->max_items))
        return false;
    if (s->items)
        for (uint32_t i = 0; i < v->len; i++)
            if (!fl_rules_schema_valid(s->items, &v->u.items[i]))
                return false;
    return true;
}

static bool valid_map(const schema_t *s, const fl_value_t *v)
{
    if ((s->min_props >= 0 && v->len < (uint64_t)s->min_props) ||
        (s->max_props >= 0 && v->len > (uint64_t)s->max_props))
        return false;
    for (uint32_t i = 0; i < s->nreq; i++)
        if (!fl_map_get(v, s->req[i].ptr, s->req[i].len))
            return false;
    for (uint32_t i = 0; i < s->nprops; i++) {
        const fl_value_t *c = fl_map_get(v, s->props[i].key.ptr, s->props[i].key.len);
        if (c && !fl_rules_schema_valid(s->props[i].s, c))
            return false;
    }
    if (s->addl < 0)
        return true;
    for (uint32_t i = 0; i < v->len; i++) {
        const fl_entry_t *e = &v->u.ents[i];
        bool declared = false;
        for (uint32_t k = 0; k < s->nprops && !declared; k++)
            declared = fl_rules_key_cmp(s->props[k].key, (fl_slice_t){e->key, e->klen}) == 0;
        if (declared)
            continue;
        if (s->addl == 0 || !fl_rules_schema_valid(s->addl_s, &e->val))
            return false;
    }
    return true;
}

bool fl_rules_schema_valid(const schema_t *s, const fl_value_t *v)
{
    if (s->types && !(s->types & type_bits(v)))
        return false;
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
    if (v->type == FL_ARRAY)
        return valid_array(s, v);
    if (v->type == FL_MAP)
        return valid_map(s, v);
    return true;
}
