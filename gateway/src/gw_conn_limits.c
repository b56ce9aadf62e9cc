/* SPDX-License-Identifier: Apache-2.0 */
/*
 * gw_conn_limits: a connection's limits that need no socket, so that they
 * can be tested alone: the token buckets (flushes, signals) and the
 * failed-publish bookkeeping that keeps seq n + 1 of a (doc, client_id)
 * from reaching the log before seq n (see gw_conn.h).
 *
 * @locality lws service thread.
 */
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "flushline/clock.h"
#include "gw_conn.h"

/* Token bucket (rate/s, burst): true when one more may go now, else the
 * wait in ms. Flushes and signals have a bucket each. */
bool gw_conn_bucket_take(float *tokens, int64_t *since_us, int64_t rate, int64_t burst,
                        uint32_t *retry_ms)
{
    int64_t now = fl_clock_mono_us();
    double t = (double)*tokens + (double)(now - *since_us) / 1e6 * (double)rate;
    if (t > (double)burst)
        t = (double)burst;
    *since_us = now;
    if (t >= 1.0) {
        *tokens = (float)(t - 1.0);
        return true;
    }
    *tokens = (float)t;
    *retry_ms = (uint32_t)ceil((1.0 - t) / (double)rate * 1000.0);
    if (*retry_ms == 0)
        *retry_ms = 1;
    return false;
}

/* ---- failed publishes: per (doc, client_id), the lowest seq to publish first */

static gw_block_t *block_find(gw_conn_t *conn, fl_slice_t doc, const uint8_t *client_id)
{
    for (uint16_t i = 0; i < conn->nblocks; i++) {
        gw_block_t *b = &conn->blocks[i];
        if (b->doclen == doc.len && memcmp(b->client_id, client_id, FL_CLIENT_ID_LEN) == 0 &&
            memcmp(b->doc, doc.ptr, doc.len) == 0)
            return b;
    }
    return NULL;
}

static void block_del(gw_conn_t *conn, gw_block_t *b)
{
    *b = conn->blocks[--conn->nblocks];
    if (conn->nblocks == 0) {
        free(conn->blocks);
        conn->blocks = NULL;
    }
}

bool gw_conn_blocked(gw_conn_t *conn, fl_slice_t doc, const uint8_t *client_id, uint64_t seq)
{
    gw_block_t *b = conn->nblocks ? block_find(conn, doc, client_id) : NULL;
    if (!b)
        return false;
    if (seq > b->seq)
        return true; /* seq b->seq must be published first */
    if (seq == b->seq)
        b->republishing = true;
    return false; /* seq itself, or an older retry (answered by dedup) */
}

int gw_conn_on_published(gw_conn_t *conn, const gw_inflight_t *inf, int err)
{
    fl_slice_t doc = {inf->doc, inf->doclen};
    gw_block_t *b = conn->nblocks ? block_find(conn, doc, inf->client_id) : NULL;
    if (!err) {
        if (b && b->seq == inf->seq)
            block_del(conn, b); /* seq is in the log: later seqs may follow */
        return 0;
    }
    if (b) {
        if (inf->seq <= b->seq) {
            b->seq = inf->seq;
            b->republishing = false;
        }
        return 0;
    }
    if (conn->nblocks >= GW_MAX_BLOCKS)
        return -ENOSPC; /* cannot remember more */
    if (!(b = realloc(conn->blocks, (conn->nblocks + 1u) * sizeof *b)))
        return -ENOMEM;
    conn->blocks = b;
    b = &conn->blocks[conn->nblocks++];
    memset(b, 0, sizeof *b);
    b->seq = inf->seq;
    memcpy(b->client_id, inf->client_id, FL_CLIENT_ID_LEN);
    b->doclen = (uint8_t)inf->doclen;
    memcpy(b->doc, inf->doc, inf->doclen);
    return 0;
}
