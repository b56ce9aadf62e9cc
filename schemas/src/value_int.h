/* SPDX-License-Identifier: Apache-2.0 */
/*
 * value_int: internals shared by value.c, value_json.c and the wire codec
 * (wire_int.h): the private header in front of heap container buffers, key
 * comparison, allocation that serves both storage kinds, and the checks
 * every reader of foreign input makes.
 */
#ifndef FL_VALUE_INT_H
#define FL_VALUE_INT_H

#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "flushline/value.h"

/* Heap arrays and maps keep their capacity in this header, just before the
 * items/entries buffer; arena containers have no header. */
typedef struct fl_vhdr_s {
    size_t cap;
    size_t pad; /* keeps items 16-byte aligned */
} fl_vhdr_t;

/* Bytewise key order: memcmp on the common prefix, shorter first. */
static inline int fl_key_cmp(const char *a, size_t alen, const char *b, size_t blen)
{
    size_t n = alen < blen ? alen : blen;
    int c = n ? memcmp(a, b, n) : 0;
    if (c)
        return c;
    return alen < blen ? -1 : alen > blen ? 1 : 0;
}

/* Allocates from the arena, or malloc when arena is NULL. */
static inline void *fl_valloc(fl_arena_t *arena, size_t n)
{
    return arena ? fl_arena_alloc(arena, n) : malloc(n ? n : 1);
}

/* A container buffer of n elements of size esz: heap ones get the header. */
void *fl_vbuf_alloc(fl_arena_t *arena, size_t n, size_t esz);
/* Copies (p, n) into fresh storage; NULL p allowed when n == 0. */
char *fl_vstrdup(fl_arena_t *arena, const char *p, size_t n, int *err);
/* Sorts decoded map entries and rejects duplicates (FL_VERR_KEY). */
int fl_map_canonicalize(fl_value_t *map);

/*
 * The checks every reader of foreign input makes (the strict msgpack reader,
 * msgpack-c objects, jansson trees), in one order. avail is what the input
 * can still hold (the strict reader: bytes left, or half of them for map
 * entries; trees: SIZE_MAX); less than needed is FL_VERR_TRUNCATED. Each
 * returns 0 or FL_VERR_* and leaves *out as it was on error.
 */
/* A str (is_str: UTF-8 checked) or bin of n bytes at p: size, avail, copy. */
int fl_vraw(const fl_limits_t *lim, fl_arena_t *arena, const char *p, size_t n, size_t avail,
            bool is_str, fl_value_t *out);
/* A map key of n bytes at p into e->key, e->klen: as a str. */
int fl_vkey(const fl_limits_t *lim, fl_arena_t *arena, const char *p, size_t n, size_t avail,
            fl_entry_t *e);
/* An empty array or map (type) at depth, with room for n items: depth, count,
 * avail (in items), then the buffer. */
int fl_vcontainer(const fl_limits_t *lim, uint32_t depth, size_t n, size_t avail, uint8_t type,
                  fl_arena_t *arena, fl_value_t *out);
/* Releases a partly read value (heap only: arena ones stay), makes it nil, returns err. */
int fl_vfail(fl_arena_t *arena, fl_value_t *out, int err);
/* The end of reading a value: err, or for a map the key order check
 * (fl_map_canonicalize); on an error, fl_vfail. */
int fl_vdone(fl_arena_t *arena, fl_value_t *out, int err);

/* Scalars as every reader makes them (floats: NaN and infinities refused). */
static inline int fl_vbool(bool b, fl_value_t *out)
{
    out->type = FL_BOOL;
    out->u.b = b;
    return 0;
}

static inline int fl_vfloat(double d, fl_value_t *out)
{
    if (!isfinite(d))
        return FL_VERR_FLOAT;
    out->type = FL_FLOAT;
    out->u.f = d;
    return 0;
}

/* Entry i of a map being filled: cleared and counted in len, so that a
 * partly read heap map frees cleanly. */
static inline fl_entry_t *fl_vmap_entry(fl_value_t *map, uint32_t i)
{
    fl_entry_t *e = &map->u.ents[i];
    e->key = NULL;
    e->klen = 0;
    e->val.type = FL_NIL;
    map->len = i + 1;
    return e;
}

#endif
