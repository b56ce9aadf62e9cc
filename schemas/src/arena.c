/* SPDX-License-Identifier: Apache-2.0 */
/*
 * arena: the bump allocator decoded messages live in. Blocks are chained and
 * grow geometrically; a reset keeps the first block so that a decoder loop
 * (one record after another) allocates nothing in the steady state.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "flushline/value.h"

typedef struct block_s {
    struct block_s *next;
    size_t size; /* bytes of data[] */
    size_t used;
    /* 8-byte aligned payload follows */
} block_t;

struct fl_arena_s {
    block_t *head;  /* newest block, the one we bump in */
    block_t *first; /* kept across resets */
    size_t next_size;
};

#define BLOCK_HDR ((sizeof(block_t) + 15) & ~(size_t)15)

static block_t *block_new(size_t size)
{
    block_t *b;
    if (size > SIZE_MAX - BLOCK_HDR)
        return NULL;
    b = malloc(BLOCK_HDR + size);
    if (!b)
        return NULL;
    b->next = NULL;
    b->size = size;
    b->used = 0;
    return b;
}

fl_arena_t *fl_arena_new(size_t first_block)
{
    fl_arena_t *arena = malloc(sizeof *arena);
    if (!arena)
        return NULL;
    if (first_block < 256)
        first_block = 256;
    arena->first = arena->head = block_new(first_block);
    if (!arena->head) {
        free(arena);
        return NULL;
    }
    arena->next_size = first_block * 2;
    return arena;
}

void fl_arena_free(fl_arena_t *arena)
{
    block_t *b, *next;
    if (!arena)
        return;
    for (b = arena->head; b; b = next) {
        next = b->next;
        free(b);
    }
    free(arena);
}

void fl_arena_reset(fl_arena_t *arena)
{
    block_t *b, *next;
    if (!arena)
        return;
    for (b = arena->head; b && b != arena->first; b = next) {
        next = b->next;
        free(b);
    }
    arena->head = arena->first;
    arena->first->next = NULL;
    arena->first->used = 0;
    arena->next_size = arena->first->size * 2;
}

void *fl_arena_alloc(fl_arena_t *arena, size_t size)
{
    block_t *b = arena->head;
    size_t need;
    char *p;
    if (size > SIZE_MAX - 16)
        return NULL;
    need = (size + 7) & ~(size_t)7;
    if (b->size - b->used < need) {
        size_t bsize = arena->next_size;
        if (bsize < need)
            bsize = need;
        b = block_new(bsize);
        if (!b)
            return NULL;
        b->next = arena->head;
        arena->head = b;
        if (arena->next_size < ((size_t)1 << 30))
            arena->next_size *= 2;
    }
    p = (char *)b + BLOCK_HDR + b->used;
    b->used += need;
    return p;
}

int fl_grow(void *arrayp, uint32_t *cap, uint32_t n, size_t size, uint32_t first)
{
    void *p;
    if (n < *cap)
        return 0;
    if (*cap > UINT32_MAX / 2)
        return -1;
    uint32_t ncap = *cap ? *cap * 2 : first;
    memcpy(&p, arrayp, sizeof p);
    if (!(p = realloc(p, (size_t)ncap * size)))
        return -1;
    memcpy(arrayp, &p, sizeof p);
    *cap = ncap;
    return 0;
}
