/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Generated flushes for processor and gateway tests: a deterministic
 * generator (xorshift) of command mixes over a small document shape, so
 * that some commands apply and some are rejected with each code.
 */
#ifndef FL_GEN_H
#define FL_GEN_H

#include <stdint.h>

#include "flushline/flush.h"
#include "flushline/value.h"

typedef struct fl_gen_s {
    uint64_t state;
} fl_gen_t;

void fl_gen_seed(fl_gen_t *g, uint64_t seed);
uint64_t fl_gen_next(fl_gen_t *g);
/* Fills client_id with 16 bytes derived from n. */
void fl_gen_client_id(uint8_t client_id[FL_CLIENT_ID_LEN], uint32_t n);
/* A flush of 1..max_cmds generated commands on doc, in arena. */
void fl_gen_flush(fl_gen_t *g, fl_arena_t *arena, const char *doc, const uint8_t *client_id,
                  uint64_t seq, uint32_t max_cmds, fl_flush_t *out);

#endif
