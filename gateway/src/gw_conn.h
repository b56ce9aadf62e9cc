/* SPDX-License-Identifier: Apache-2.0 */
/*
 * gw_conn: one WebSocket client (see gw_conn.c for receiving, tokens,
 * memory, ordering and sending; gw_conn_limits.c for the token buckets and
 * the failed-publish bookkeeping). The connection state lives in the lws
 * per-session data. A connection is two things to the modules below it:
 * an origin (gw_origins.h: its flushes' outcomes, failures and delivery
 * reports come back through the origin callbacks) and a subscriber
 * (gw_docs.h: documents send it frames through its send callback).
 *
 * @locality lws service thread.
 */
#ifndef GW_CONN_H
#define GW_CONN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <libwebsockets.h>

#include "flushline/flush.h"
#include "gw_buf.h"
#include "gw_docs.h"
#include "gw_grants.h"
#include "gw_origins.h"
#include "gw_svc.h"

#define GW_MAX_BLOCKS 64 /* (doc, client_id) keys with a failed publish, per connection */
#define GW_QINLINE 4     /* send slots inside the connection */

/* A (doc, client_id) whose flush seq could not be published: later seqs of
 * that key are nacked unavailable until seq itself is published again, so
 * the processor never sees seq + 1 before seq. */
typedef struct gw_block_s {
    uint64_t seq;      /* the lowest seq that failed */
    bool republishing; /* seq was produced again; its delivery report decides */
    uint8_t client_id[FL_CLIENT_ID_LEN];
    uint8_t doclen;
    char doc[FL_DOC_ID_MAX];
} gw_block_t;

/* Per connection, in the lws per-session data. Kept small: an idle
 * authenticated connection holds no heap memory of its own (grants are
 * shared, the receive buffer exists only while a message is split across
 * fragments, the send ring only while more than GW_QINLINE frames wait). */
typedef struct gw_conn_s {
    gw_origin_t o;       /* first: the per-session data holds this or an HTTP request */
    gw_subscriber_t sub; /* what documents see; sub.form: that of the latest hello */
    gw_svc_t *svc;
    struct lws *wsi;
    bool authed, closing, drain_close, established;
    bool rx_text, rx_overflow;
    uint16_t close_code;
    uint16_t bad_frames;
    uint16_t nblocks;
    const char *close_reason; /* static text */
    gw_grants_t *grants;      /* shared; NULL until authenticated */
    int64_t exp;              /* the token's exp */
    /* receive: one message reassembled from fragments */
    char *rx;
    size_t rxlen, rxcap;
    /* send queue: ring of shared buffers, byte-bounded; q is qinline or heap */
    gw_buf_t **q;
    gw_buf_t *qinline[GW_QINLINE];
    uint32_t qhead, qcount, qcap;
    size_t qbytes;
    /* subscriptions */
    gw_doc_t **subs;
    uint32_t nsubs, capsubs;
    /* rate limits: token buckets for flushes and for signals */
    float tokens, sig_tokens;
    int64_t tokens_us, sig_tokens_us;
    gw_block_t *blocks;         /* nblocks, heap; NULL while no publish failed */
    lws_sorted_usec_list_t sul; /* hello timeout, then token expiry */
} gw_conn_t;

/* A connection's origin callbacks (registered at the upgrade). */
extern const gw_origin_ops_t gw_conn_origin_ops;

/* The lws callback of the "flushline" protocol for WebSocket reasons. */
int gw_conn_callback(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in,
                     size_t len);
/* Queues a shared buffer (takes a new reference). Over the byte bound the
 * connection is closed with 4200 slow_consumer. 0 or -1 (not queued). */
int gw_conn_send(gw_conn_t *conn, gw_buf_t *buf);
/* Closes with a close code: queued frames are sent first when drain is set. */
void gw_conn_close(gw_conn_t *conn, uint16_t code, const char *reason, bool drain);
/* ---- gw_conn_limits.c: what needs no socket --------------------------------- */
/* Token bucket (rate/s, burst): true when one more may go now, else false
 * with the wait in *retry_ms. Flushes and signals have a bucket each. */
bool gw_conn_bucket_take(float *tokens, int64_t *since_us, int64_t rate, int64_t burst,
                         uint32_t *retry_ms);
/* The failed-publish bookkeeping: true when a flush of (doc, client_id,
 * seq) must be nacked unavailable now (an earlier seq of the key failed and
 * is not published yet). */
bool gw_conn_blocked(gw_conn_t *conn, fl_slice_t doc, const uint8_t *client_id, uint64_t seq);
/* Delivery report of a flush of this connection (err 0: published; else a
 * failure that may be retried). 0, or -ENOSPC (GW_MAX_BLOCKS keys remembered
 * already) or -ENOMEM: the caller closes the connection (a reconnect
 * resends everything in order). */
int gw_conn_on_published(gw_conn_t *conn, const gw_inflight_t *inf, int err);

#endif
