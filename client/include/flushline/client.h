/* SPDX-License-Identifier: Apache-2.0 */
/*
 * client: the C client library of Flushline (schemas/PROTOCOL.md), used by
 * tests, the CLI and the load generator. Event-driven on libwebsockets: one
 * fl_client_ctx_t owns one lws context and holds any number of fl_client_t
 * connections (hundreds in one process); the caller's thread runs the loop
 * with fl_client_service().
 *
 * A client connects to ws://host:port/v1/ws (or to one of a list of
 * gateway addresses, tried in turn: failover), says hello with its token and,
 * once welcomed, subscribes to the documents the application asked for and
 * sends flushes. It keeps:
 *   - a local copy (fl_doc_t) of each subscribed document, restored from
 *     snapshots and advanced by deltas with the chain hash checked; a chain
 *     mismatch or a version gap drops the copy and resubscribes from scratch;
 *   - per document a flush sequence counting from 1, and every flush not yet
 *     answered by its outcome (encoded once, resent with its original seq
 *     after a reconnect, after a nack with retry_after, or when no outcome
 *     came within ack_timeout_ms).
 * Flushes are paced by a token bucket a margin inside the one the welcome
 * announces (FL_CLIENT_PACE_RATE_PCT percent of its rate, a bucket of
 * burst - 1, at least 1), so the gateway's rate limit is met rather than hit
 * even when timers fire late or frames arrive bunched. A rate_limited or
 * unavailable nack resends the same seq after retry_after; while it waits,
 * the later flushes of the same document are held, and the nacked backlog
 * goes out one flush at a time in seq order (each once the previous one is
 * answered), so a refused burst costs about one more nack per flush instead
 * of a retry storm.
 * Reconnects follow the close code classes of PROTOCOL.md section 7: 4000-4099
 * stop, 4100-4199 exponential back-off with jitter, 4200-4299 and network
 * errors reconnect at once (then back off if attempts keep failing). With
 * several gateway addresses, every reconnect goes to the next address (round
 * robin); in the reconnect-now classes each address gets one immediate try
 * before the back-off starts. After a reconnect the client resubscribes with
 * have_version = its local version and resends its unacknowledged flushes in
 * order, with their original seqs, to whichever gateway answered.
 *
 * @locality every function and callback runs on the one thread that calls
 * fl_client_service() for the context (no locks inside). Callbacks run from
 * inside fl_client_service(); they may call any fl_client_* function except
 * fl_client_ctx_free(); fl_client_free() from a callback is deferred to the
 * end of the current fl_client_service().
 *
 * Errors: functions return 0 or a negative FL_CLIENT_E* (see
 * fl_client_strerror()); a call that fails synchronously fires no callback.
 */
#ifndef FLUSHLINE_CLIENT_H
#define FLUSHLINE_CLIENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "flushline/engine.h"
#include "flushline/flush.h"
#include "flushline/value.h"
#include "flushline/wire.h"

enum {
    FL_CLIENT_ENOMEM = -1,   /* out of memory */
    FL_CLIENT_EINVAL = -2,   /* bad argument (doc id, NULL, too many commands, ...) */
    FL_CLIENT_ENOTCONN = -3, /* needs a welcomed connection (signals are not queued) */
    FL_CLIENT_ECLOSED = -4,  /* the client was closed or stopped for good */
    FL_CLIENT_EENCODE = -5,  /* the message could not be encoded (value out of range) */
    FL_CLIENT_ENOSUB = -6,   /* not subscribed to that document */
};
const char *fl_client_strerror(int err);

/* Connection states reported by on_status. */
typedef enum fl_client_state_e {
    FL_CLIENT_CONNECTING = 1, /* TCP + WebSocket handshake under way */
    FL_CLIENT_HELLO = 2,      /* connected, hello sent, waiting for welcome */
    FL_CLIENT_READY = 3,      /* welcomed: subscriptions and flushes flow */
    FL_CLIENT_BACKOFF = 4,    /* disconnected, a reconnect is scheduled */
    FL_CLIENT_STOPPED = 5,    /* disconnected for good: close code 4000-4099 or fl_client_close */
} fl_client_state_t;
const char *fl_client_state_name(int state);

/* Most gateway addresses in fl_client_opts_t.gateways. */
#define FL_CLIENT_MAX_GATEWAYS 64

typedef struct fl_client_ctx_s fl_client_ctx_t;
typedef struct fl_client_s fl_client_t;

/* What a nack said about one of this client's flushes. */
typedef struct fl_client_nack_s {
    fl_slice_t doc;          /* len 0 when the nack named no document */
    bool has_seq;
    uint64_t seq;
    uint16_t code;           /* fl_code_t */
    uint32_t retry_after_ms; /* 0 when absent */
    bool retrying;           /* true: the flush stays pending and is resent after the delay */
    fl_slice_t reason;
} fl_client_nack_t;

/*
 * Callbacks; any may be NULL. Every pointer argument is borrowed for the
 * duration of the call only (it points into the decoded frame). opaque is
 * fl_client_opts_t.opaque.
 */
typedef struct fl_client_callbacks_s {
    /* State changed. close_code: the WebSocket close code that caused a
     * disconnect (0 for a network error or none). */
    void (*on_status)(fl_client_t *client, void *opaque, fl_client_state_t state, int close_code);
    /* Welcomed (after hello, and again after each refresh's auth). When
     * welcome->has_exp / has_leeway, the gateway closes with 4004 at
     * exp + leeway by its clock: refresh before exp (docs/auth.md). */
    void (*on_welcome)(fl_client_t *client, void *opaque, const fl_wire_welcome_t *welcome);
    /* The local copy was replaced by a snapshot (fl_client_doc() shows it). */
    void (*on_snapshot)(fl_client_t *client, void *opaque, fl_slice_t doc, uint64_t version,
                        const fl_value_t *state);
    /* One delta was applied to the local copy (version_before is
     * delta->version - delta->ncmds); delta->client_id tells whose flush. */
    void (*on_delta)(fl_client_t *client, void *opaque, fl_slice_t doc,
                     const fl_wire_delta_t *delta);
    /* The outcome of one of this client's flushes: it is no longer pending.
     * Duplicate answers (outcome->duplicate) count as acknowledged. */
    void (*on_outcome)(fl_client_t *client, void *opaque, const fl_outcome_t *outcome);
    void (*on_nack)(fl_client_t *client, void *opaque, const fl_client_nack_t *nack);
    void (*on_signal)(fl_client_t *client, void *opaque, fl_slice_t doc, fl_slice_t from,
                      const fl_value_t *body);
    /* A server "error" message, an undecodable frame (the client then
     * reconnects) or a local copy that had to be resynchronised. */
    void (*on_error)(fl_client_t *client, void *opaque, int code, fl_slice_t reason);
} fl_client_callbacks_t;

/* Pacing margin: flushes are paced at this percentage of the welcome's rate. */
#define FL_CLIENT_PACE_RATE_PCT 95

typedef struct fl_client_opts_s {
    const char *host;   /* required unless gateways is set; copied */
    int port;           /* required unless gateways is set */
    /* Optional failover list: a NULL-terminated array of "host:port" strings
     * ("[v6addr]:port" for IPv6), at most FL_CLIENT_MAX_GATEWAYS, copied.
     * When it holds at least one address it replaces host and port (which may
     * then be NULL and 0); fl_client_new() fails on an address that does not
     * parse. The first connection goes to the first address; each reconnect
     * after a connection failure or a close in the reconnect classes
     * (4100-4299, network errors) goes to the next one, round robin. */
    const char *const *gateways;
    const char *path;   /* NULL: "/v1/ws"; copied */
    const char *token;  /* JWT; copied into sodium_malloc memory; NULL: "" */
    const char *name;   /* hello "client", NULL: "flushline-c/0.1.0"; copied */
    bool json;          /* JSON text frames instead of msgpack binary frames */
    bool no_pacing;     /* send flushes as fast as possible instead of pacing them by
                           the welcome's rate and burst (load tests of the limit) */
    uint8_t client_id[FL_CLIENT_ID_LEN]; /* all zero: random (randombytes_buf) */
    uint32_t backoff_initial_ms; /* first back-off step, 0: 250 */
    uint32_t backoff_max_ms;     /* cap of the exponential back-off, 0: 30000 */
    uint32_t max_frame;          /* largest server message accepted, 0: 16 MiB */
    uint32_t ack_timeout_ms;     /* a flush sent without outcome after this long is sent
                                    again with its seq (dedup makes it safe), 0: 10000 */
    const fl_engine_config_t *engine; /* caps of the local copies; NULL: default */
    fl_client_callbacks_t cb;
    void *opaque;
} fl_client_opts_t;

/* Counters for tests and the load generator. */
typedef struct fl_client_stats_s {
    uint64_t connects;   /* connection attempts */
    uint64_t welcomes;   /* welcomes received */
    uint64_t resyncs;    /* local copies dropped (chain mismatch, gap) and resubscribed */
    uint64_t resent;     /* flush frames sent again (reconnect, nack retry, gap, timeout) */
    uint64_t timeouts;   /* flushes resent because no outcome came within ack_timeout_ms */
    uint64_t bad_frames; /* undecodable server frames */
    uint64_t sent, received; /* frames */
    uint64_t failovers;  /* reconnects that went to another gateway address */
} fl_client_stats_t;

/*
 * A context: one lws context without a listening port. NULL on failure with
 * errstr filled. Calls sodium_init().
 */
fl_client_ctx_t *fl_client_ctx_new(char *errstr, size_t errstr_size);
/* Frees every client still open (without callbacks), then the context.
 * NULL is safe. Never from inside a callback. */
void fl_client_ctx_free(fl_client_ctx_t *ctx);
/*
 * Runs the loop once: services ready sockets and due timers, waiting at most
 * timeout_ms for something to happen (0: do not wait), then reaps clients
 * freed during the turn. Returns 0, or a negative value if lws failed.
 */
int fl_client_service(fl_client_ctx_t *ctx, int timeout_ms);

/*
 * A new client; it starts connecting on the next fl_client_service(). opts
 * is copied (strings included). NULL on a bad option or OOM. The client
 * belongs to ctx and must be freed before it (or by fl_client_ctx_free).
 */
fl_client_t *fl_client_new(fl_client_ctx_t *ctx, const fl_client_opts_t *opts);
/* Closes the connection without a close handshake wait and frees the client,
 * its local copies and pending flushes. Inside a callback the free is
 * deferred to the end of the current service turn; no callback fires for
 * this client after the call. NULL is safe. */
void fl_client_free(fl_client_t *client);
/* Graceful close (status 1000); no reconnect. Pending flushes stay pending. */
int fl_client_close(fl_client_t *client);

/*
 * Subscribes to doc (1-255 bytes): a local copy is created and kept in step.
 * Subscribing again is a no-op. Sent now if the client is ready, else after
 * the next welcome.
 */
int fl_client_subscribe(fl_client_t *client, fl_slice_t doc);
/* Drops the subscription and its local copy. FL_CLIENT_ENOSUB if none. */
int fl_client_unsubscribe(fl_client_t *client, fl_slice_t doc);
/*
 * The local copy of a subscribed document, or NULL (not subscribed, or not
 * caught up yet: no snapshot or delta since the (re)subscribe). Valid until
 * the next service turn or any call on this client.
 */
const fl_doc_t *fl_client_doc(const fl_client_t *client, fl_slice_t doc);

#define FL_CLIENT_FLUSH_ATOMIC 0x1u

/*
 * Sends a flush of n commands to doc. Assigns the next seq of (client, doc),
 * counting from 1, returned in *seq_out (may be NULL). base_version is the
 * local copy's version (0 when not subscribed). The commands are encoded
 * right away (the caller keeps ownership of cmds); the frame stays pending
 * until its outcome arrives, and is resent with the same seq after a
 * reconnect. Queued while disconnected. 0 or FL_CLIENT_EINVAL / ENOMEM /
 * EENCODE / ECLOSED.
 */
int fl_client_flush(fl_client_t *client, fl_slice_t doc, const fl_cmd_t *cmds, uint32_t n,
                    unsigned flags, uint64_t *seq_out);
/* Same with if_version (the whole flush is refused unless doc is at it). */
int fl_client_flush_if(fl_client_t *client, fl_slice_t doc, const fl_cmd_t *cmds, uint32_t n,
                       unsigned flags, uint64_t if_version, uint64_t *seq_out);
/* Flushes sent but not yet answered by an outcome (or a final nack). */
uint32_t fl_client_pending(const fl_client_t *client);

/* An ephemeral signal to doc's subscribers; only when ready
 * (FL_CLIENT_ENOTCONN otherwise: signals are never queued). */
int fl_client_signal(fl_client_t *client, fl_slice_t doc, const fl_value_t *body);
/*
 * Replaces the token (sent with "auth" when ready; used by later hellos).
 * A client stopped by 4001 unauthorized or 4004 token_expired starts
 * reconnecting. The client fetches no tokens itself: call this before the
 * token's exp (on_welcome passes exp and the gateway's leeway).
 */
int fl_client_refresh_token(fl_client_t *client, const char *token);

fl_client_state_t fl_client_state(const fl_client_t *client);
const uint8_t *fl_client_id(const fl_client_t *client); /* FL_CLIENT_ID_LEN bytes */
void fl_client_get_stats(const fl_client_t *client, fl_client_stats_t *out);
void *fl_client_opaque(const fl_client_t *client);
/* The gateway address of the current (or next) connection attempt: its host
 * (valid while the client lives) and, if port_out is not NULL, its port. */
const char *fl_client_gateway(const fl_client_t *client, int *port_out);

#endif
