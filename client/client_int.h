/* SPDX-License-Identifier: Apache-2.0 */
/*
 * client_int: internals shared by the client's files (see client.h for
 * the API): client.c the public calls, client_conn.c the connection and
 * the lws context, client_docs.c the documents and incoming messages,
 * client_queue.c the outgoing frames and pending flushes.
 *
 * The connection is a small state machine driven by libwebsockets
 * callbacks (one lws protocol, "flushline-client", bound with
 * local_protocol_name so that no WebSocket subprotocol is requested) and by
 * two lws timers per client (reconnect, flush retry). Outgoing frames are
 * encoded once, with LWS_PRE headroom, and written one per WRITEABLE
 * callback: first the control queue (hello, auth, subscribe, signal ...),
 * then, once welcomed, the pending flushes in the order they were made.
 *
 * A pending flush is QUEUED (to be written), INFLIGHT (written on this
 * connection; resent if its outcome does not come within ack_timeout_ms)
 * or RETRY (nacked, waiting for retry_after). A flush is only
 * written when every earlier pending flush of the same document is in
 * flight, so that seqs reach the processor in order even after a nack or a
 * gap answer; a reconnect turns every pending flush back into QUEUED.
 *
 * Retryable nacks (rate_limited, unavailable) mark a flush "nacked" until it
 * is answered. Only the first nacked flush of a document waits for its own
 * retry_after (RETRY); later ones nacked meanwhile go back to QUEUED without
 * a timer of their own, held behind it. A nacked flush, once written again,
 * blocks the rest of its document until it is answered, so the refused
 * backlog goes out one at a time in seq order instead of all at once after
 * each retry_after (which, against a rate limit, refused it again and again:
 * a storm of nacks quadratic in the backlog). A new connection clears the
 * marks: its gateway has a fresh bucket, and pacing meets it.
 *
 * Gateways: the client holds one or more addresses and a cursor; every
 * reconnect moves the cursor to the next address (round robin).
 */
#ifndef FL_CLIENT_INT_H
#define FL_CLIENT_INT_H

#include "flushline/client.h"
#include "flushline/clock.h"
#include "flushline/frag.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>

#include <libwebsockets.h>
#include <sodium.h>

#define DEFAULT_PATH "/v1/ws"
#define DEFAULT_NAME "flushline-c/0.1.0"
#define DEFAULT_BACKOFF_INITIAL_MS 250
#define DEFAULT_BACKOFF_MAX_MS 30000
#define DEFAULT_MAX_FRAME (16u << 20)
#define DEFAULT_ACK_TIMEOUT_MS 10000
#define DEFAULT_RETRY_MS 500 /* a retryable nack without retry_after */
#define PROTOCOL_NAME "flushline-client"

/* One encoded message with LWS_PRE bytes of headroom before it. */
typedef struct frame_s {
    struct frame_s *next;
    size_t len;
    bool text;
    bool secret; /* holds the token: wiped before it is freed */
    unsigned char buf[];
} frame_t;

/* Per document: the seq counter (kept for the client's lifetime, so that a
 * resubscribe never reuses a seq) and the subscription with its local copy. */
typedef struct docinfo_s {
    struct docinfo_s *next;
    char *id;
    size_t idlen;
    uint64_t last_seq;
    bool subscribed;
    bool synced;  /* the local copy reflects a snapshot or deltas since the subscribe */
    fl_doc_t *doc; /* when subscribed */
    uint64_t scan; /* scan epoch in which a flush of this doc blocked later ones */
} docinfo_t;

enum { PF_QUEUED = 0, PF_INFLIGHT = 1, PF_RETRY = 2 };

typedef struct pending_s {
    TAILQ_ENTRY(pending_s) link; /* client->pend, in seq order per document */
    docinfo_t *di;
    uint64_t seq;
    int st;
    bool sent_once;
    bool nacked; /* had a retryable nack and no answer since (this connection) */
    int64_t deadline_ms; /* RETRY: resend at; INFLIGHT: resend if no outcome by then */
    frame_t *frame;
} pending_t;

/* One gateway address. */
typedef struct gwaddr_s {
    char *host;
    int port;
} gwaddr_t;

struct fl_client_s {
    fl_client_ctx_t *ctx;
    LIST_ENTRY(fl_client_s) link; /* in ctx->clients, or ctx->dead once freed */
    struct lws *wsi;

    gwaddr_t *gws; /* ngws >= 1 addresses; gw_cur is the current or next attempt's */
    uint32_t ngws, gw_cur;
    char *path, *name;
    char *token;
    bool token_sodium; /* token is sodium_malloc memory (else malloc) */
    bool json;
    uint8_t client_id[FL_CLIENT_ID_LEN];
    uint32_t backoff_initial_ms, backoff_max_ms, max_frame, ack_timeout_ms;
    int64_t timer_at; /* when sul_retry fires, INT64_MAX when not armed */
    fl_engine_config_t engine;
    fl_client_callbacks_t cb;
    void *opaque;

    fl_client_state_t state;
    bool live;      /* a connection attempt is under way or open */
    bool closing;   /* fl_client_close: close on the next WRITEABLE */
    bool app_closed; /* stopped by fl_client_close (not by a close code) */
    bool dead;      /* fl_client_free called */
    bool proto_err; /* we closed the connection over a bad frame */
    int close_code; /* from the peer's close frame */
    uint32_t attempts; /* failed attempts since the last welcome */

    lws_sorted_usec_list_t sul_connect;
    lws_sorted_usec_list_t sul_retry;
    lws_sorted_usec_list_t sul_pace;

    /* Flush pacing by a token bucket a margin inside the welcome's (rate per
     * second, burst), so that the gateway's rate limit is met instead of hit. */
    bool no_pacing;
    double pace_rate; /* tokens per microsecond; 0: not paced */
    double pace_burst, pace_tokens;
    int64_t pace_last_us;

    frame_t *ctl_head, *ctl_tail;
    TAILQ_HEAD(pending_list, pending_s) pend;
    uint32_t npending, nqueued;
    uint64_t scan_epoch;
    docinfo_t *docs;

    char *rx;
    size_t rxlen, rxcap;
    bool rx_text, rx_overflow;
    fl_arena_t *arena;

    fl_client_stats_t stats;
};

struct fl_client_ctx_s {
    struct lws_context *context;
    struct lws_protocols protocols[2];
    LIST_HEAD(client_list, fl_client_s) clients, dead;
    int depth; /* > 0 while inside fl_client_service */
    unsigned char *scratch; /* LWS_PRE + a pending flush being written */
    size_t scratch_cap;
    lws_sorted_usec_list_t sul_wake;
};

/* ---- client_queue.c: the connection state, outgoing frames, pending flushes ---- */

bool cl_established(const fl_client_t *client);
void cl_want_write(fl_client_t *client);
void cl_set_state(fl_client_t *client, fl_client_state_t state, int close_code);
void cl_frame_free(frame_t *frame);
/* Encodes msg in the client's form into a new frame. */
int cl_encode(fl_client_t *client, const fl_wire_msg_t *msg, bool secret, frame_t **out);
int cl_queue_ctl(fl_client_t *client, const fl_wire_msg_t *msg, bool secret);
void cl_ctl_clear(fl_client_t *client);
void cl_pending_unlink(fl_client_t *client, pending_t *pf);
void cl_pending_set(fl_client_t *client, pending_t *pf, int st);
pending_t *cl_pending_find(const fl_client_t *client, fl_slice_t doc, uint64_t seq);
/* The first QUEUED flush whose earlier siblings (same doc) are all in
 * flight, none of them a nacked flush still waiting for its answer. */
pending_t *cl_pending_next(fl_client_t *client);
/* An earlier flush of pf's document had a retryable nack and is not
 * answered yet: pf waits behind it instead of retrying on its own. */
bool cl_pending_nacked_earlier(const pending_t *pf);
bool cl_pending_has_earlier(const pending_t *pf);
/* One timer serves both RETRY deadlines (nack retry_after) and INFLIGHT
 * deadlines (no outcome within ack_timeout: resend, safe by dedup); it is
 * armed for the earliest deadline known, and rescans when it fires. */
void cl_arm_timer(fl_client_t *client, int64_t at);

/* ---- client_docs.c: documents, incoming messages ---- */

bool cl_doc_id_ok(fl_slice_t doc);
docinfo_t *cl_doc_find(const fl_client_t *client, fl_slice_t doc);
docinfo_t *cl_doc_get(fl_client_t *client, fl_slice_t doc);
fl_slice_t cl_doc_slice(const docinfo_t *di);
int cl_send_subscribe(fl_client_t *client, docinfo_t *di);
int cl_send_unsubscribe(fl_client_t *client, docinfo_t *di);
void cl_emit_error(fl_client_t *client, int code, const char *reason);
int cl_on_receive(fl_client_t *client, struct lws *wsi, const char *in, size_t len);

/* ---- client_conn.c: connection life, the lws context ---- */

void cl_schedule_connect(fl_client_t *client, uint32_t delay_ms);
/* context_going: the whole lws context is about to be destroyed, which
 * closes every connection itself; asking lws to kill one asynchronously then
 * is not only useless but crashes lws 4.1.6 for a connection still being
 * set up (its timeout list is not there yet). */
void cl_client_destroy_ex(fl_client_t *client, bool context_going);
void cl_client_destroy(fl_client_t *client);

#endif
