/* SPDX-License-Identifier: Apache-2.0 */
/* Generated flushes; see fl_gen.h. */
#include "fl_gen.h"

#include <stdio.h>
#include <string.h>

void fl_gen_seed(fl_gen_t *g, uint64_t seed)
{
    g->state = seed ? seed : 0x9e3779b97f4a7c15ull;
}

uint64_t fl_gen_next(fl_gen_t *g)
{
    uint64_t x = g->state;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    return g->state = x;
}

void fl_gen_client_id(uint8_t client_id[FL_CLIENT_ID_LEN], uint32_t n)
{
    for (int i = 0; i < FL_CLIENT_ID_LEN; i++)
        client_id[i] = (uint8_t)(0xA0 + i + n * 7);
    memcpy(client_id, &n, sizeof n);
}

static fl_slice_t str(fl_arena_t *a, const char *fmt, unsigned n)
{
    char *p = fl_arena_alloc(a, 32);
    int len = snprintf(p, 32, fmt, n);
    return (fl_slice_t){p, (size_t)len};
}

static fl_value_t sval(fl_arena_t *a, unsigned n)
{
    fl_value_t v = {0};
    fl_slice_t s = str(a, "v%u", n);
    v.type = FL_STR;
    v.len = (uint32_t)s.len;
    v.u.str = (char *)s.ptr;
    return v;
}

void fl_gen_flush(fl_gen_t *g, fl_arena_t *arena, const char *doc, const uint8_t *client_id,
                  uint64_t seq, uint32_t max_cmds, fl_flush_t *out)
{
    memset(out, 0, sizeof *out);
    out->doc = (fl_slice_t){doc, strlen(doc)};
    memcpy(out->client_id, client_id, FL_CLIENT_ID_LEN);
    out->seq = seq;
    out->ncmds = 1 + (uint32_t)(fl_gen_next(g) % max_cmds);
    out->atomic = fl_gen_next(g) % 8 == 0;
    out->cmds = fl_arena_alloc(arena, out->ncmds * sizeof *out->cmds);
    memset(out->cmds, 0, out->ncmds * sizeof *out->cmds);
    for (uint32_t i = 0; i < out->ncmds; i++) {
        fl_cmd_t *c = &out->cmds[i];
        unsigned r = (unsigned)(fl_gen_next(g) % 100), k = (unsigned)(fl_gen_next(g) % 8);
        if (r < 30) { /* counters: always apply (missing = 0) */
            c->op = FL_OP_INCR;
            c->path = str(arena, "/n%u", k % 3);
            c->value = fl_value_int((int64_t)(fl_gen_next(g) % 10) + 1);
            c->has_value = true;
        } else if (r < 50) { /* set a key */
            c->op = FL_OP_ADD;
            c->path = str(arena, "/k%u", k);
            c->value = sval(arena, (unsigned)fl_gen_next(g) % 1000);
            c->has_value = true;
        } else if (r < 60) { /* replace: fails when the key is missing */
            c->op = FL_OP_REPLACE;
            c->path = str(arena, "/k%u", k);
            c->value = fl_value_int((int64_t)k);
            c->has_value = true;
        } else if (r < 68) { /* remove: fails when missing */
            c->op = FL_OP_REMOVE;
            c->path = str(arena, "/k%u", k);
        } else if (r < 76) { /* test: fails unless equal */
            c->op = FL_OP_TEST;
            c->path = str(arena, "/k%u", k);
            c->value = fl_value_int((int64_t)k);
            c->has_value = true;
        } else if (r < 84) { /* create under /objs: fails until /objs exists */
            c->op = FL_OP_CREATE;
            c->path = FL_SLICE("/objs");
            c->value = fl_value_int((int64_t)r);
            c->has_value = true;
        } else if (r < 88) { /* make /objs */
            c->op = FL_OP_ADD;
            c->path = FL_SLICE("/objs");
            c->value.type = FL_MAP;
            c->value.len = 0;
            c->value.u.ents = NULL;
            c->has_value = true;
        } else if (r < 94) { /* move a key: fails when missing */
            c->op = FL_OP_MOVE;
            c->from = str(arena, "/k%u", k);
            c->path = str(arena, "/k%u", (k + 1) % 8);
        } else { /* copy */
            c->op = FL_OP_COPY;
            c->from = str(arena, "/n%u", k % 3);
            c->path = str(arena, "/k%u", k);
        }
    }
}
