/* SPDX-License-Identifier: Apache-2.0 */
/*
 * bench_stats: the latency histograms (log-linear buckets as in
 * HdrHistogram) and the table of flushes in flight of `flushline bench`.
 */
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <math.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#include <jansson.h>
#include <libwebsockets.h>
#include <sodium.h>

#include "bench_int.h"
#include "cli.h"
#include "flushline/client.h"
#include "flushline/clock.h"
#include "flushline/hmap.h"
#include "flushline/jwt.h"
#include "flushline/keyfile.h"

static unsigned hist_index(uint64_t v)
{
    if (v < SUB)
        return (unsigned)v;
    unsigned m = 63u - (unsigned)__builtin_clzll(v);
    unsigned shift = m - (SUB_BITS - 1);
    return SUB + (m - SUB_BITS) * HALF + (unsigned)((v >> shift) - HALF);
}

/* The highest value that falls into bucket idx. */
static uint64_t hist_high(unsigned idx)
{
    if (idx < SUB)
        return idx;
    unsigned g = (idx - SUB) / HALF, sub = (idx - SUB) % HALF + HALF;
    unsigned shift = g + SUB_BITS - (SUB_BITS - 1);
    return ((uint64_t)sub << shift) + ((uint64_t)1 << shift) - 1;
}

void bn_hist_add(hist_t *h, int64_t v)
{
    uint64_t u = v > 0 ? (uint64_t)v : 0;
    if (h->count == 0 || u < h->min)
        h->min = u;
    if (u > h->max)
        h->max = u;
    h->count++;
    h->b[hist_index(u)]++;
}

/* The value at quantile q (0..1]: the highest value of the bucket holding
 * the ceil(q * count)-th smallest sample, never above the exact maximum. */
uint64_t bn_hist_quantile(const hist_t *h, double q)
{
    uint64_t rank, seen = 0;
    if (h->count == 0)
        return 0;
    rank = (uint64_t)ceil(q * (double)h->count);
    if (rank < 1)
        rank = 1;
    for (unsigned i = 0; i < NBUCKETS; i++) {
        seen += h->b[i];
        if (seen >= rank) {
            uint64_t v = hist_high(i);
            return v < h->max ? v : h->max;
        }
    }
    return h->max;
}


int bn_flights_put(flights_t *f, uint32_t writer, uint32_t doc, uint64_t seq, int64_t t)
{
    flight_t *fl;
    if ((!f->map && !(f->map = fl_hmap_new())) || !(fl = malloc(sizeof *fl)))
        return -1;
    *fl = (flight_t){{seq, writer, doc}, t};
    free(fl_hmap_del(f->map, &fl->key, sizeof fl->key)); /* a repeated key: the newest wins */
    if (fl_hmap_put(f->map, &fl->key, sizeof fl->key, fl) != 0) {
        free(fl);
        return -1;
    }
    f->count = fl_hmap_count(f->map);
    return 0;
}

/* Removes the entry; its scheduled time in *t. 0, or -1 when absent. */
int bn_flights_take(flights_t *f, uint32_t writer, uint32_t doc, uint64_t seq, int64_t *t)
{
    struct flight_key_s key = {seq, writer, doc};
    flight_t *fl = f->map ? fl_hmap_del(f->map, &key, sizeof key) : NULL;
    if (!fl)
        return -1;
    *t = fl->t_sched;
    free(fl);
    f->count = fl_hmap_count(f->map);
    return 0;
}

void bn_flights_free(flights_t *f)
{
    flight_t *fl;
    if (!f->map)
        return;
    FL_HMAP_FOREACH(f->map, it, fl)
        free(fl); /* the map is freed next, unread */
    fl_hmap_free(f->map);
}
