/* SPDX-License-Identifier: Apache-2.0 */
/*
 * value_int: internals shared by value.c, value_json.c and wire.c: the
 * private header in front of heap container buffers, key comparison and
 * allocation that serves both storage kinds.
 */
#ifndef FL_VALUE_INT_H
#define FL_VALUE_INT_H

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

#endif
