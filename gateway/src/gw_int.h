/* SPDX-License-Identifier: Apache-2.0 */
/*
 * gw_int: internals shared by the gateway's modules (gw_server, gw_conn,
 * gw_docs, gw_kafka, gw_http). Everything here except the Kafka queue
 * hand-off is owned by the lws service thread.
 *
 * @locality lws service thread, unless a declaration says otherwise.
 */
#ifndef GW_INT_H
#define GW_INT_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <libwebsockets.h>

#include "flushline/clock.h"
#include "flushline/engine.h"
#include "flushline/history.h"
#include "flushline/hmap.h"
#include "flushline/jwt.h"
#include "flushline/limits.h"
#include "flushline/metrics.h"
#include "flushline/topics.h"
#include "flushline/wire.h"
#include "gw.h"

#define GW_SERVER_NAME "flushline/0.1.0"
#define GW_RETRY_AFTER_MS 500 /* suggested retry delay when the broker is in trouble */
#define GW_MAX_BLOCKS 64      /* (doc, client_id) keys with a failed publish, per connection */
#define GW_AWAIT_MAX_US (15ll * 60 * 1000000) /* longest a partition is kept for outcomes */

typedef struct gw_conn_s gw_conn_t;
typedef struct gw_doc_s gw_doc_t;
typedef struct gw_http_s gw_http_t;
typedef struct gw_kafka_s gw_kafka_t;
typedef struct gw_grants_s gw_grants_t;
typedef struct gw_block_s gw_block_t;

/* ---- refcounted frames ---------------------------------------------------
 * One encoded message with LWS_PRE bytes of headroom, shared by every
 * connection it is queued on (fan-out encodes once). */
typedef struct gw_buf_s {
    uint32_t refs;
    bool text;    /* JSON text frame, else msgpack binary frame */
    uint8_t hlen; /* WebSocket frame header bytes, just before the payload */
    size_t len;
    unsigned char *data; /* LWS_PRE headroom (ending in the frame header), then len bytes */
} gw_buf_t;

/* The whole server-to-client frame (unmasked header + payload), built once:
 * sent raw, several queued frames of one connection go out in one write. */
#define GW_BUF_FRAME(buf) ((buf)->data + LWS_PRE - (buf)->hlen)
#define GW_BUF_FRAME_LEN(buf) ((buf)->hlen + (buf)->len)
#define GW_WBATCH 65536 /* bytes of queued frames coalesced into one write */

gw_buf_t *gw_buf_new(const char *p, size_t len, bool text); /* refs = 1; NULL on OOM */
void gw_buf_unref(gw_buf_t *buf);                           /* NULL is safe */
/* Encodes msg in form into a new buffer; NULL (logged) on failure. */
gw_buf_t *gw_buf_encode(const fl_wire_msg_t *msg, fl_wire_form_t form);

/* ---- grants: the compact, shared form of verified claims -----------------
 * What a connection may do, interned per distinct (sub, read prefixes,
 * write prefixes) and shared by reference count: every connection of one
 * user costs one pointer instead of a 16.7 KB fl_claims_t. Immutable once
 * built; exp stays per connection. */
struct gw_grants_s {
    uint32_t refs;
    uint16_t nread, nwrite;
    fl_slice_t sub;       /* NUL-terminated too */
    fl_slice_t *prefixes; /* nread read prefixes, then nwrite write prefixes */
    size_t keylen;
    char *key; /* the interning key; sub and prefixes point into it */
};

/* The interned grants of verified claims (a new reference); NULL on OOM. */
gw_grants_t *gw_grants_get(gw_t *gw, const fl_claims_t *claims);
/* Drops a reference; the last one removes it from the table. NULL is safe. */
void gw_grants_unref(gw_t *gw, gw_grants_t *grants);
/* fl_claims_can_read / fl_claims_can_write over grants: some prefix is "*"
 * or a bytewise prefix of doc; write implies read; a doc that is empty,
 * longer than 255 bytes or not UTF-8 is never granted. */
bool gw_grants_can_read(const gw_grants_t *grants, fl_slice_t doc);
bool gw_grants_can_write(const gw_grants_t *grants, fl_slice_t doc);

/* ---- origins: connections and HTTP requests that wait for outcomes -------
 * An origin id is even. The "origin" of a flush record is the id with bit 0
 * set when the flush came in a JSON frame: its outcome (an answer) then
 * takes the form of the frame it answers, however the connection said
 * hello, with nothing kept per flush. */
enum { GW_ORIGIN_WS = 1, GW_ORIGIN_HTTP = 2 };
typedef struct gw_origin_s {
    uint64_t id; /* even; the "origin" of flush records, plus the form bit */
    uint8_t kind;
} gw_origin_t;

#define GW_ORIGIN_FORM_JSON 1u
/* A fresh origin id (even). */
uint64_t gw_origin_next(gw_t *gw);
/* The record origin of a flush from origin id in form. */
static inline uint64_t gw_origin_tag(uint64_t id, fl_wire_form_t form)
{
    return id | (form == FL_WIRE_JSON ? GW_ORIGIN_FORM_JSON : 0);
}
/* The form of the flush a record origin (or an inflight's) stands for. */
static inline fl_wire_form_t gw_origin_form(uint64_t origin)
{
    return (origin & GW_ORIGIN_FORM_JSON) ? FL_WIRE_JSON : FL_WIRE_MSGPACK;
}

/* A produced flush waiting for its delivery report (the msg opaque). */
typedef struct gw_inflight_s {
    uint64_t origin; /* tagged with the flush's form (gw_origin_tag) */
    int32_t partition; /* of the doc; -1 until produced (outcome awaited) */
    uint8_t client_id[FL_CLIENT_ID_LEN];
    uint64_t seq;
    size_t doclen;
    char doc[FL_DOC_ID_MAX];
} gw_inflight_t;

/* ---- the gateway ---------------------------------------------------------- */
typedef struct gw_metrics_s {
    fl_metrics_t *reg;
    fl_gauge_t *connections, *subscriptions, *docs, *docs_live;
    fl_counter_t *frames_in, *bytes_in, *frames_out, *bytes_out;
    fl_metric_vec_t *nacks, *errors, *closes;
    fl_counter_t *slow_consumers, *origin_rejects, *auth_failures;
    fl_counter_t *deltas_out, *syncs, *resyncs, *produce_errors, *signals_in, *signals_out;
    fl_counter_t *http_requests;
    fl_histogram_t *fanout_ms;
} gw_metrics_t;

typedef enum gw_part_state_e {
    GW_PART_NONE = 0,
    GW_PART_ASSIGNING, /* requested, waiting for the consumer thread */
    GW_PART_ASSIGNED,
} gw_part_state_t;

struct gw_s {
    const gw_config_t *cfg;
    char id[256]; /* gateway.id, the "gw" of records */
    size_t idlen;
    fl_jwt_keys_t *keys;
    char **origins; /* allow-list, NULL-terminated; NULL = any */
    char **minimal; /* tenants in minimum-disclosure mode, NULL-terminated */
    struct lws_context *context;
    struct lws_vhost *vhost;
    struct lws_protocols protocols[3]; /* flushline, flushline-head, end */
    struct lws_http_mount mounts[6];
    int port;
    gw_kafka_t *kafka;
    fl_hmap_t *docs;        /* doc id -> gw_doc_t */
    fl_hmap_t *origins_map; /* origin id (8 bytes) -> gw_origin_t (conn or http) */
    fl_hmap_t *grants;      /* grants key -> gw_grants_t (interned) */
    /* raw request lines (gw_http.c): without TLS the gateway peeks at each
     * new connection's request head before lws reads it, and keeps the
     * request line by socket fd until the HTTP or upgrade callback takes it */
    bool raw_heads;
    fl_hmap_t *heads; /* socket fd -> gw_head_line_t */
    char *headbuf;   /* GW_HEAD_MAX bytes: the peek */
    struct gw_handoff_s *handoffs;
    lws_sorted_usec_list_t sul_handoff;
    fl_claims_t *claims;   /* scratch for token checks (16.7 KB, one per gateway) */
    uint64_t next_origin;
    uint64_t next_req;
    uint32_t nconns;
    /* events/signals partitions: state, generation of the last request,
     * documents that need each one */
    uint8_t part_state[FL_MAX_PARTITIONS];
    uint32_t part_gen[FL_MAX_PARTITIONS];
    uint32_t part_docs[FL_MAX_PARTITIONS];
    int64_t part_used_us[FL_MAX_PARTITIONS]; /* last flush routed through it */
    /* flushes published through it whose outcome has not come back: the
     * partition stays followed while any is awaited (GW_AWAIT_MAX_US) */
    uint32_t part_await[FL_MAX_PARTITIONS];
    struct gw_held_s *held[FL_MAX_PARTITIONS]; /* flushes waiting for the assignment */
    fl_arena_t *arena; /* scratch for the service thread, reset per use */
    unsigned char *wbatch; /* LWS_PRE + GW_WBATCH: frames coalesced for one write */
    lws_sorted_usec_list_t sul_tick;
    atomic_bool stop;
    bool draining;   /* SIGTERM seen: /readyz 503, new upgrades get 4201 */
    bool freeing; /* gw_free runs: delivery reports only release memory */
    bool service_ok; /* the service loop turned recently (healthz) */
    atomic_bool kafka_ok; /* readyz; set by the consumer thread */
    int64_t last_tick_us;
    gw_metrics_t m;
};

/* True when the doc's tenant is in minimum-disclosure mode. */
bool gw_tenant_minimal(const gw_t *gw, fl_slice_t doc);
/* The events partition of a doc (murmur2, like every producer). */
int32_t gw_partition(const gw_t *gw, fl_slice_t doc);
/* Looks an origin up by id or by a record's tagged origin. */
gw_origin_t *gw_origin_get(gw_t *gw, uint64_t id);

/* ---- connections (gw_conn.c) ----------------------------------------------- */
/* An outcome of the subscriber's own flush held until its catch-up has
 * gone out (so a flush's changes always reach its connection before its
 * outcome). */
typedef struct gw_hold_s {
    struct gw_hold_s *next;
    gw_buf_t *buf;
} gw_hold_t;
#define GW_HOLD_MAX 1024 /* held outcomes per subscription; beyond: 4200 */

typedef struct gw_sub_s {
    gw_conn_t *conn;
    uint64_t version; /* what this subscriber holds (after the catch-up) */
    bool pending;     /* waiting for the doc to be live */
    uint32_t nhold;
    gw_hold_t *hold, *hold_tail; /* outcomes waiting for the catch-up, oldest first */
} gw_sub_t;

/* A (doc, client_id) whose flush seq could not be published: later seqs of
 * that key are nacked unavailable until seq itself is published again, so
 * the processor never sees seq + 1 before seq. */
struct gw_block_s {
    uint64_t seq;      /* the lowest seq that failed */
    bool republishing; /* seq was produced again; its delivery report decides */
    uint8_t client_id[FL_CLIENT_ID_LEN];
    uint8_t doclen;
    char doc[FL_DOC_ID_MAX];
};

/* Per connection, in the lws per-session data. Kept small: an idle
 * authenticated connection holds no heap memory of its own (grants are
 * shared, the receive buffer exists only while a message is split across
 * fragments, the send ring only while more than GW_QINLINE frames wait). */
#define GW_QINLINE 4
struct gw_conn_s {
    gw_origin_t o; /* first: the origin map holds &conn->o */
    gw_t *gw;
    struct lws *wsi;
    bool authed, closing, drain_close, established;
    bool rx_text, rx_overflow;
    uint8_t form; /* fl_wire_form_t of the hello: pushes use it */
    uint16_t close_code;
    uint16_t bad_frames;
    uint16_t nblocks;
    const char *close_reason; /* static text */
    gw_grants_t *grants; /* shared; NULL until authenticated */
    int64_t exp;         /* the token's exp */
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
    gw_block_t *blocks; /* nblocks, heap; NULL while no publish failed */
    lws_sorted_usec_list_t sul; /* hello timeout, then token expiry */
};

/* The lws callback of the "flushline" protocol for WebSocket reasons. */
int gw_conn_callback(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in,
                     size_t len);
/* Queues a shared buffer (takes a new reference). Over the byte bound the
 * connection is closed with 4200 slow_consumer. 0 or -1 (not queued). */
int gw_conn_send(gw_conn_t *conn, gw_buf_t *buf);
/* Encodes msg in the connection's form and queues it. */
int gw_conn_send_msg(gw_conn_t *conn, const fl_wire_msg_t *msg, fl_wire_form_t form);
/* Closes with a close code: queued frames are sent first when drain is set. */
void gw_conn_close(gw_conn_t *conn, uint16_t code, const char *reason, bool drain);
/* Answers a flush by nack. */
void gw_conn_nack(gw_conn_t *conn, fl_wire_form_t form, const fl_flush_t *flush, fl_slice_t doc,
                  uint16_t code, uint32_t retry_after_ms, const char *reason);
/* Delivery report of a flush of this connection (err 0: published). */
void gw_conn_on_published(gw_conn_t *conn, const gw_inflight_t *inf, int err);
/* The failed-publish bookkeeping, exposed for tests: true when a flush of
 * (doc, client_id, seq) must be nacked unavailable now. */
bool gw_conn_blocked(gw_conn_t *conn, fl_slice_t doc, const uint8_t *client_id, uint64_t seq);
/* Removes a subscription entry from the connection's list (doc side is the caller's). */
void gw_conn_forget_doc(gw_conn_t *conn, gw_doc_t *doc);
/* Closes every connection (draining: 4201 going_away). */
void gw_conn_close_all(gw_t *gw, uint16_t code, const char *reason);

/* ---- documents (gw_docs.c) --------------------------------------------------- */
typedef enum gw_doc_state_e {
    GW_DOC_WAIT_PART = 0, /* its events partition is being assigned */
    GW_DOC_SYNCING,       /* sync produced, waiting for the reply */
    GW_DOC_LIVE,
} gw_doc_state_t;

struct gw_doc_s {
    char id[FL_DOC_ID_MAX];
    size_t idlen;
    int32_t partition;
    uint8_t state;
    bool minimal;
    uint64_t req;
    int64_t sync_deadline_us;
    fl_doc_t *live;
    gw_sub_t *subs;
    uint32_t nsubs, capsubs;
    fl_window_t window; /* the last window.deltas outcome records (history.h) */
    uint32_t http_waiters;
    int64_t idle_since_us; /* 0 while it has subscribers or waiters */
};

/* The doc, created (and its sync started) when missing. NULL on OOM. */
gw_doc_t *gw_docs_open(gw_t *gw, fl_slice_t id);
gw_doc_t *gw_docs_get(gw_t *gw, fl_slice_t id);
/* Adds conn as a subscriber holding have_version (has false: nothing). The
 * catch-up is queued now when the doc is live, else when it becomes live.
 * 0, or -FL_CODE_INTERNAL. */
int gw_docs_subscribe(gw_t *gw, gw_doc_t *doc, gw_conn_t *conn, bool has, uint64_t have);
void gw_docs_unsubscribe(gw_t *gw, gw_doc_t *doc, gw_conn_t *conn);
/* A decoded events or signals record from the consumer thread. */
void gw_docs_on_record(gw_t *gw, int topic, int32_t partition, int64_t ts_ms,
                       const fl_wire_msg_t *msg, char *raw, size_t rawlen);
/* The consumer assigned a partition (generation gen). */
void gw_docs_on_assigned(gw_t *gw, int32_t partition, uint32_t gen);
/* Produces a flush record (buf, len; ownership passes in every case)
 * keyed by key once the doc's events partition is followed, so that its
 * outcome cannot be missed; until then it is held. inf is the delivery
 * opaque (a failure, now or later, nacks through gw_on_delivery). */
void gw_docs_produce_flush(gw_t *gw, fl_slice_t key, char *buf, size_t len, gw_inflight_t *inf);
/* Timers: sync retries, idle docs. */
void gw_docs_tick(gw_t *gw, int64_t now_us);
void gw_docs_free_all(gw_t *gw);
/* Encodes a snapshot of a live doc. */
gw_buf_t *gw_docs_snapshot(gw_t *gw, gw_doc_t *doc, fl_wire_form_t form);

/* ---- HTTP (gw_http.c) -----------------------------------------------------------
 * Document ids in URLs (docs/gateway.md): the path is taken from the raw
 * request line, never from lws's normalised copy. */
#define GW_HEAD_MAX 16384   /* request head bytes read before lws takes over */
#define GW_TARGET_MAX 4096  /* longest request-target kept */
#define GW_HEAD_TIMEOUT_S 10

/* The request line of a connection, as it came. */
typedef struct gw_head_line_s {
    int fd;            /* the key */
    int64_t at_us;     /* when it was read (stale ones are swept) */
    char method[16];
    size_t tlen;
    char target[];     /* tlen bytes (not NUL-terminated) */
} gw_head_line_t;

/* A connection was accepted (LWS_CALLBACK_FILTER_NETWORK_CONNECTION):
 * keeps its request line when the head is already there; else waits for
 * it on a duplicate of the socket (a raw file wsi of "flushline-head")
 * and returns 1 so that lws drops its own copy; the duplicate is adopted
 * by lws once the head is in. */
int gw_http_on_accept(gw_t *gw, int fd);
/* The protocol of those waiting sockets. */
int gw_http_head_callback(struct lws *wsi, enum lws_callback_reasons reason, void *user,
                          void *in, size_t len);
size_t gw_http_head_size(void);
/* Takes (and forgets) the request line read for wsi's socket; NULL when
 * none was read (TLS, or a later request on a kept-alive connection). The
 * caller frees it. */
gw_head_line_t *gw_http_take_head(gw_t *gw, struct lws *wsi);
/* Frees every kept line and pending handoff (gw_free). */
void gw_http_heads_free(gw_t *gw);

/* A document id from the raw path after "/v1/docs/" (len bytes, no query):
 * percent-decoded into out (FL_DOC_ID_MAX bytes). 0 with *outlen, or -1
 * with *why: a byte that must be percent-encoded, a bad escape, an empty,
 * "." or ".." segment, a control byte or NUL, invalid UTF-8, 0 or more
 * than 255 bytes. */
int gw_http_doc_id(const char *path, size_t len, char *out, size_t *outlen, const char **why);

/* ---- HTTP (gw_http.c) ----------------------------------------------------------- */
int gw_http_callback(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in,
                     size_t len);
/* An outcome for an HTTP flush request. */
void gw_http_on_outcome(gw_t *gw, gw_http_t *req, const fl_wire_outcome_t *out);
/* An HTTP flush that will not be published: answered with code (500
 * internal, 413 limit, else 503). */
void gw_http_on_failed(gw_t *gw, gw_http_t *req, uint16_t code, const char *reason);
/* A doc became live (or was dropped): answer GET /v1/docs waiters. */
void gw_http_on_doc_live(gw_t *gw, gw_doc_t *doc);
void gw_http_tick(gw_t *gw, int64_t now_us);
/* Size of the HTTP per-session state (the protocol's pss is the larger one). */
size_t gw_http_session_size(void);

/* ---- Kafka (gw_kafka.c) ---------------------------------------------------------- */
enum { GW_EV_RECORD = 1, GW_EV_ASSIGNED = 2 };
typedef struct gw_event_s {
    struct gw_event_s *next;
    int kind;
    int topic; /* fl_topic_kind_t */
    int32_t partition;
    uint32_t gen;
    int64_t ts_ms;
    fl_arena_t *arena;
    fl_wire_msg_t msg;
    char *raw; /* the record value (outcomes: kept in the window) */
    size_t rawlen;
} gw_event_t;

/* @locality main thread. Starts the producer, checks the topics, starts
 * the consumer and its thread, which wakes the service thread with
 * lws_cancel_service(gw->context) after queueing events (so the context
 * must exist first). Delivery reports call gw_on_delivery(gw, ...). */
gw_kafka_t *gw_kafka_new(gw_t *gw, char *errstr, size_t errstr_size);
void gw_kafka_free(gw_kafka_t *kafka);
/* Produces buf (ownership passes to librdkafka on success; on failure the
 * caller still owns it) keyed by key. opaque comes back in
 * gw_on_delivery. 0 or the librdkafka error. */
int gw_kafka_produce(gw_kafka_t *kafka, fl_topic_kind_t topic, fl_slice_t key, char *buf,
                     size_t len, void *opaque);
/* Serves delivery reports (calls gw_on_delivery). */
void gw_kafka_poll(gw_kafka_t *kafka);
/* Waits up to timeout_ms for every produced message. */
int gw_kafka_flush(gw_kafka_t *kafka, int timeout_ms);
/* Asks the consumer thread to assign (on) or unassign a partition of
 * events and signals; on assignment it answers GW_EV_ASSIGNED with gen.
 * Never fails and allocates nothing: the newest request per partition is
 * kept (an older one not applied yet is dropped), and one that fails in the
 * consumer thread (broker, memory) is retried until it is done. */
void gw_kafka_assign(gw_kafka_t *kafka, int32_t partition, uint32_t gen, bool on);
/* Takes every queued event (a list, oldest first). */
gw_event_t *gw_kafka_take(gw_kafka_t *kafka);
/* Takes the oldest queued events, in order, while their records add up to
 * at most max_bytes (always one at least); *more tells whether some are
 * left. */
gw_event_t *gw_kafka_take_some(gw_kafka_t *kafka, size_t max_bytes, bool *more);
void gw_event_free(gw_event_t *ev);

/* Delivery report of a produced message (service thread); also called
 * with the error of a produce call that failed. A flush's failure goes to
 * gw_flush_failed: rd_kafka MSG_SIZE_TOO_LARGE as `limit` (final), any
 * other error as `unavailable` with retry_after_ms. */
void gw_on_delivery(gw_t *gw, void *opaque, int err);
/* A flush that will not be published (inf: its delivery opaque, freed
 * here). Its origin gets a nack of code with reason (a WebSocket nack; an
 * HTTP request 500 for internal, 503 for unavailable, 413 for limit). With
 * retry_after_ms > 0 the same seq may be resent, and later seqs of its
 * (doc, client_id) wait for it (gw_conn_on_published); 0 is final. */
void gw_flush_failed(gw_t *gw, gw_inflight_t *inf, uint16_t code, uint32_t retry_after_ms,
                     const char *reason);

#endif
