/* SPDX-License-Identifier: Apache-2.0 */
/*
 * value_json: conversion between values and jansson trees, for JSON text
 * frames and the CLI's JSON output. JSON integers become FL_INT, reals
 * FL_FLOAT; bin travels as {"$bin": "<base64, standard alphabet, padded>"}.
 * The same limits as the msgpack decoder apply.
 */
#include <jansson.h>
#include <math.h>
#include <sodium.h>
#include <stdint.h>
#include <string.h>

#include "value_int.h"

static int from_json(const json_t *j, const fl_limits_t *lim, uint32_t depth, fl_arena_t *arena,
                     fl_value_t *out);

/* {"$bin": "..."} with exactly that one key. */
static int bin_from_json(const json_t *s, const fl_limits_t *lim, fl_arena_t *arena,
                         fl_value_t *out)
{
    const char *b64 = json_string_value(s);
    size_t b64len = json_string_length(s), max = b64len / 4 * 3 + 3, binlen = 0;
    unsigned char *bin;
    if (b64len / 4 * 3 > (size_t)lim->max_str + 3) /* checked before allocating */
        return FL_VERR_SIZE;
    bin = fl_valloc(arena, max);
    if (!bin)
        return FL_VERR_NOMEM;
    if (sodium_base642bin(bin, max, b64, b64len, NULL, &binlen, NULL,
                          sodium_base64_VARIANT_ORIGINAL) != 0) {
        if (!arena)
            free(bin);
        return FL_VERR_BASE64;
    }
    if (binlen > lim->max_str) {
        if (!arena)
            free(bin);
        return FL_VERR_SIZE;
    }
    out->type = FL_BIN;
    out->len = (uint32_t)binlen;
    out->u.str = (char *)bin;
    if (binlen == 0) {
        if (!arena)
            free(bin);
        out->u.str = NULL;
    }
    return 0;
}

/* One object member: key, then value. */
static int from_json_entry(const char *key, const json_t *val, const fl_limits_t *lim,
                           uint32_t depth, fl_arena_t *arena, fl_entry_t *e)
{
    size_t klen = json_object_iter_key_len(json_object_key_to_iter(key));
    int err = fl_vkey(lim, arena, key, klen, SIZE_MAX, e);
    return err ? err : from_json(val, lim, depth + 1, arena, &e->val);
}

static int from_json(const json_t *j, const fl_limits_t *lim, uint32_t depth, fl_arena_t *arena,
                     fl_value_t *out)
{
    int err = 0;
    size_t n, i;
    const char *key;
    json_t *val;
    out->type = FL_NIL;
    out->len = 0;
    switch (json_typeof(j)) {
    case JSON_NULL:
        return 0;
    case JSON_TRUE:
    case JSON_FALSE:
        return fl_vbool(json_is_true(j), out);
    case JSON_INTEGER:
        *out = fl_value_int((int64_t)json_integer_value(j));
        return 0;
    case JSON_REAL:
        return fl_vfloat(json_real_value(j), out);
    case JSON_STRING:
        return fl_vraw(lim, arena, json_string_value(j), json_string_length(j), SIZE_MAX, true,
                       out);
    case JSON_ARRAY:
        n = json_array_size(j);
        if ((err = fl_vcontainer(lim, depth, n, SIZE_MAX, FL_ARRAY, arena, out)))
            return err;
        for (i = 0; i < n && !err; i++) {
            out->len = (uint32_t)i + 1;
            err = from_json(json_array_get(j, i), lim, depth + 1, arena, &out->u.items[i]);
        }
        break;
    case JSON_OBJECT:
        n = json_object_size(j);
        if (n == 1 && (val = json_object_get(j, "$bin")) && json_is_string(val))
            return bin_from_json(val, lim, arena, out);
        if ((err = fl_vcontainer(lim, depth, n, SIZE_MAX, FL_MAP, arena, out)))
            return err;
        i = 0;
        json_object_foreach((json_t *)j, key, val) {
            if ((err = from_json_entry(key, val, lim, depth, arena,
                                       fl_vmap_entry(out, (uint32_t)i++))))
                break;
        }
        break;
    default:
        return FL_VERR_TYPE;
    }
    return fl_vdone(arena, out, err);
}

int fl_value_from_json(const json_t *json, const fl_limits_t *lim, fl_arena_t *arena,
                       fl_value_t *out)
{
    return from_json(json, lim ? lim : &fl_limits_default, 0, arena, out);
}

json_t *fl_value_to_json(const fl_value_t *v)
{
    json_t *j = NULL, *c;
    uint32_t i;
    switch (v->type) {
    case FL_NIL: return json_null();
    case FL_BOOL: return json_boolean(v->u.b);
    case FL_INT: return json_integer((json_int_t)v->u.i);
    case FL_FLOAT: return json_real(v->u.f);
    case FL_STR: return json_stringn(v->len ? v->u.str : "", v->len);
    case FL_BIN: {
        size_t b64len = sodium_base64_encoded_len(v->len, sodium_base64_VARIANT_ORIGINAL);
        char *b64 = malloc(b64len);
        if (!b64)
            return NULL;
        sodium_bin2base64(b64, b64len, (const unsigned char *)(v->len ? v->u.str : ""), v->len,
                          sodium_base64_VARIANT_ORIGINAL);
        j = json_object();
        if (j && json_object_set_new(j, "$bin", json_string(b64)) != 0) {
            json_decref(j);
            j = NULL;
        }
        free(b64);
        return j;
    }
    case FL_ARRAY:
        if (!(j = json_array()))
            return NULL;
        for (i = 0; i < v->len; i++)
            if (!(c = fl_value_to_json(&v->u.items[i])) || json_array_append_new(j, c) != 0)
                goto fail;
        return j;
    case FL_MAP:
        if (!(j = json_object()))
            return NULL;
        for (i = 0; i < v->len; i++) {
            const fl_entry_t *e = &v->u.ents[i];
            if (!(c = fl_value_to_json(&e->val)) ||
                json_object_setn_new(j, e->klen ? e->key : "", e->klen, c) != 0)
                goto fail;
        }
        return j;
    default:
        return NULL;
    }
fail:
    json_decref(j);
    return NULL;
}
