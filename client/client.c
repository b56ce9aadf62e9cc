/* SPDX-License-Identifier: Apache-2.0 */
/*
 * client: see client.h. The connection is a small state machine driven by
 * libwebsockets callbacks (one lws protocol, "flushline-client", bound with
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
#include "flushline/client.h"
#include "flushline/clock.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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
    struct pending_s *prev, *next;
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
    fl_client_t *prev, *next; /* ctx->clients, or ctx->dead once freed */
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
    pending_t *pend_head, *pend_tail;
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
    fl_client_t *clients;
    fl_client_t *dead;
    int depth; /* > 0 while inside fl_client_service */
    unsigned char *scratch; /* LWS_PRE + a pending flush being written */
    size_t scratch_cap;
    lws_sorted_usec_list_t sul_wake;
};

const char *fl_client_strerror(int err)
{
    switch (err) {
    case 0:
        return "success";
    case FL_CLIENT_ENOMEM:
        return "out of memory";
    case FL_CLIENT_EINVAL:
        return "invalid argument";
    case FL_CLIENT_ENOTCONN:
        return "not connected";
    case FL_CLIENT_ECLOSED:
        return "client closed";
    case FL_CLIENT_EENCODE:
        return "message cannot be encoded";
    case FL_CLIENT_ENOSUB:
        return "not subscribed";
    default:
        return "unknown error";
    }
}

const char *fl_client_state_name(int state)
{
    switch (state) {
    case FL_CLIENT_CONNECTING:
        return "connecting";
    case FL_CLIENT_HELLO:
        return "hello";
    case FL_CLIENT_READY:
        return "ready";
    case FL_CLIENT_BACKOFF:
        return "backoff";
    case FL_CLIENT_STOPPED:
        return "stopped";
    default:
        return "unknown";
    }
}

/* ---- frames ---------------------------------------------------------- */

static frame_t *frame_new(const char *data, size_t len, bool text)
{
    frame_t *frame = malloc(sizeof *frame + LWS_PRE + len);
    if (!frame)
        return NULL;
    frame->next = NULL;
    frame->len = len;
    frame->text = text;
    frame->secret = false;
    memcpy(frame->buf + LWS_PRE, data, len);
    return frame;
}

static void frame_free(frame_t *frame)
{
    if (!frame)
        return;
    if (frame->secret)
        sodium_memzero(frame->buf + LWS_PRE, frame->len);
    free(frame);
}

/* Encodes msg in the client's form into a new frame. */
static int encode(fl_client_t *client, const fl_wire_msg_t *msg, bool secret, frame_t **out)
{
    char errstr[128], *buf = NULL;
    size_t len = 0;
    int r = fl_wire_encode(msg, client->json ? FL_WIRE_JSON : FL_WIRE_MSGPACK, &buf, &len, errstr,
                           sizeof errstr);
    if (r < 0)
        return r == -FL_CODE_INTERNAL ? FL_CLIENT_ENOMEM : FL_CLIENT_EENCODE;
    *out = frame_new(buf, len, client->json);
    if (secret)
        sodium_memzero(buf, len);
    free(buf);
    if (!*out)
        return FL_CLIENT_ENOMEM;
    (*out)->secret = secret;
    return 0;
}

static bool established(const fl_client_t *client)
{
    return client->wsi && (client->state == FL_CLIENT_HELLO || client->state == FL_CLIENT_READY);
}

static void want_write(fl_client_t *client)
{
    if (established(client))
        lws_callback_on_writable(client->wsi);
}

static int queue_ctl(fl_client_t *client, const fl_wire_msg_t *msg, bool secret)
{
    frame_t *frame;
    int r = encode(client, msg, secret, &frame);
    if (r < 0)
        return r;
    if (client->ctl_tail)
        client->ctl_tail->next = frame;
    else
        client->ctl_head = frame;
    client->ctl_tail = frame;
    want_write(client);
    return 0;
}

static void ctl_clear(fl_client_t *client)
{
    frame_t *frame = client->ctl_head, *next;
    for (; frame; frame = next) {
        next = frame->next;
        frame_free(frame);
    }
    client->ctl_head = client->ctl_tail = NULL;
}

/* ---- documents --------------------------------------------------------- */

static bool doc_id_ok(fl_slice_t doc)
{
    return doc.ptr && doc.len >= 1 && doc.len <= FL_DOC_ID_MAX && fl_utf8_valid(doc.ptr, doc.len);
}

static docinfo_t *doc_find(const fl_client_t *client, fl_slice_t doc)
{
    docinfo_t *di;
    for (di = client->docs; di; di = di->next)
        if (di->idlen == doc.len && memcmp(di->id, doc.ptr, doc.len) == 0)
            return di;
    return NULL;
}

static docinfo_t *doc_get(fl_client_t *client, fl_slice_t doc)
{
    docinfo_t *di = doc_find(client, doc);
    if (di)
        return di;
    if (!(di = calloc(1, sizeof *di)))
        return NULL;
    if (!(di->id = malloc(doc.len))) {
        free(di);
        return NULL;
    }
    memcpy(di->id, doc.ptr, doc.len);
    di->idlen = doc.len;
    di->next = client->docs;
    client->docs = di;
    return di;
}

static fl_slice_t doc_slice(const docinfo_t *di)
{
    return (fl_slice_t){di->id, di->idlen};
}

static int send_subscribe(fl_client_t *client, docinfo_t *di)
{
    fl_wire_msg_t msg;
    memset(&msg, 0, sizeof msg);
    msg.type = FL_WT_SUBSCRIBE;
    msg.u.sub.doc = doc_slice(di);
    if (di->synced) {
        msg.u.sub.has_version = true;
        msg.u.sub.have_version = fl_doc_version(di->doc);
    }
    return queue_ctl(client, &msg, false);
}

static int send_unsubscribe(fl_client_t *client, docinfo_t *di)
{
    fl_wire_msg_t msg;
    memset(&msg, 0, sizeof msg);
    msg.type = FL_WT_UNSUBSCRIBE;
    msg.u.sub.doc = doc_slice(di);
    return queue_ctl(client, &msg, false);
}

static void emit_error(fl_client_t *client, int code, const char *reason)
{
    if (client->cb.on_error && !client->dead)
        client->cb.on_error(client, client->opaque, code, (fl_slice_t){reason, strlen(reason)});
}

/* The local copy no longer fits the server's history: start again from a
 * fresh copy and a subscribe without have_version. */
static void resync(fl_client_t *client, docinfo_t *di, const char *why)
{
    fl_doc_t *fresh = fl_doc_new(doc_slice(di), &client->engine);
    client->stats.resyncs++;
    if (fresh) {
        fl_doc_free(di->doc);
        di->doc = fresh;
    }
    di->synced = false;
    if (client->state == FL_CLIENT_READY) {
        send_unsubscribe(client, di);
        send_subscribe(client, di);
    }
    emit_error(client, FL_CODE_BAD_FRAME, why);
}

/* ---- pending flushes --------------------------------------------------- */

static void pending_unlink(fl_client_t *client, pending_t *pf)
{
    if (pf->prev)
        pf->prev->next = pf->next;
    else
        client->pend_head = pf->next;
    if (pf->next)
        pf->next->prev = pf->prev;
    else
        client->pend_tail = pf->prev;
    if (pf->st == PF_QUEUED)
        client->nqueued--;
    client->npending--;
    frame_free(pf->frame);
    free(pf);
}

static void pending_set(fl_client_t *client, pending_t *pf, int st)
{
    if (pf->st == PF_QUEUED)
        client->nqueued--;
    if (st == PF_QUEUED)
        client->nqueued++;
    pf->st = st;
}

static pending_t *pending_find(const fl_client_t *client, fl_slice_t doc, uint64_t seq)
{
    pending_t *pf;
    for (pf = client->pend_head; pf; pf = pf->next)
        if (pf->seq == seq && pf->di->idlen == doc.len &&
            memcmp(pf->di->id, doc.ptr, doc.len) == 0)
            return pf;
    return NULL;
}

/* The first QUEUED flush whose earlier siblings (same doc) are all in
 * flight, none of them a nacked flush still waiting for its answer. */
static pending_t *pending_next(fl_client_t *client)
{
    pending_t *pf;
    uint64_t epoch;
    if (client->nqueued == 0)
        return NULL;
    epoch = ++client->scan_epoch;
    for (pf = client->pend_head; pf; pf = pf->next) {
        if (pf->di->scan == epoch)
            continue;
        if (pf->st == PF_INFLIGHT) {
            if (pf->nacked)
                pf->di->scan = epoch; /* the refused backlog goes one at a time */
            continue;
        }
        if (pf->st == PF_QUEUED)
            return pf;
        pf->di->scan = epoch; /* a RETRY blocks the rest of its document */
    }
    return NULL;
}

/* An earlier flush of pf's document had a retryable nack and is not
 * answered yet: pf waits behind it instead of retrying on its own. */
static bool pending_nacked_earlier(const pending_t *pf)
{
    const pending_t *p;
    for (p = pf->prev; p; p = p->prev)
        if (p->di == pf->di && p->nacked)
            return true;
    return false;
}

static bool pending_has_earlier(const pending_t *pf)
{
    const pending_t *p;
    for (p = pf->prev; p; p = p->prev)
        if (p->di == pf->di)
            return true;
    return false;
}

static void on_retry_timer(lws_sorted_usec_list_t *sul);

/* One timer serves both RETRY deadlines (nack retry_after) and INFLIGHT
 * deadlines (no outcome within ack_timeout: resend, safe by dedup); it is
 * armed for the earliest deadline known, and rescans when it fires. */
static void arm_timer(fl_client_t *client, int64_t at)
{
    int64_t now;
    if (at >= client->timer_at)
        return;
    now = fl_clock_mono_ms();
    client->timer_at = at;
    lws_sul_schedule(client->ctx->context, 0, &client->sul_retry, on_retry_timer,
                     (lws_usec_t)(at > now ? at - now : 0) * LWS_US_PER_MS);
}

static void on_retry_timer(lws_sorted_usec_list_t *sul)
{
    fl_client_t *client = lws_container_of(sul, fl_client_t, sul_retry);
    int64_t now = fl_clock_mono_ms(), next = INT64_MAX;
    pending_t *pf;
    client->timer_at = INT64_MAX;
    for (pf = client->pend_head; pf; pf = pf->next) {
        if (pf->st == PF_QUEUED)
            continue;
        if (pf->deadline_ms <= now) {
            if (pf->st == PF_INFLIGHT)
                client->stats.timeouts++;
            pending_set(client, pf, PF_QUEUED);
        } else if (pf->deadline_ms < next) {
            next = pf->deadline_ms;
        }
    }
    if (next != INT64_MAX)
        arm_timer(client, next);
    want_write(client);
}

/* ---- connection life --------------------------------------------------- */

static void set_state(fl_client_t *client, fl_client_state_t state, int close_code)
{
    if (client->state == state)
        return;
    client->state = state;
    if (client->cb.on_status && !client->dead)
        client->cb.on_status(client, client->opaque, state, close_code);
}

static void on_connect_timer(lws_sorted_usec_list_t *sul);

/* Delay before attempt number `attempt` (1-based) of a back-off: the
 * exponential step with "equal jitter" (half fixed, half random), capped. */
static uint32_t backoff_ms(const fl_client_t *client, uint32_t attempt)
{
    uint64_t step = client->backoff_initial_ms;
    uint32_t i;
    for (i = 1; i < attempt && step < client->backoff_max_ms; i++)
        step *= 2;
    if (step > client->backoff_max_ms)
        step = client->backoff_max_ms;
    if (step < 2)
        return (uint32_t)step;
    return (uint32_t)(step / 2 + randombytes_uniform((uint32_t)(step - step / 2) + 1));
}

static void schedule_connect(fl_client_t *client, uint32_t delay_ms)
{
    lws_sul_schedule(client->ctx->context, 0, &client->sul_connect, on_connect_timer,
                     (lws_usec_t)delay_ms * LWS_US_PER_MS);
}

/* The connection (or the attempt) ended: decide between stop, reconnect now
 * and back-off. Acts once per connection. */
static void on_disconnect(fl_client_t *client, int close_code)
{
    pending_t *pf;
    uint32_t delay;

    if (!client->live)
        return;
    client->live = false;
    if (client->wsi)
        lws_set_opaque_user_data(client->wsi, NULL);
    client->wsi = NULL;
    client->rxlen = 0;
    client->rx_overflow = false;
    ctl_clear(client);
    for (pf = client->pend_head; pf; pf = pf->next) {
        pf->nacked = false; /* the next gateway's bucket is fresh */
        if (pf->st != PF_QUEUED)
            pending_set(client, pf, PF_QUEUED);
    }
    lws_sul_cancel(&client->sul_retry);
    client->timer_at = INT64_MAX;
    lws_sul_cancel(&client->sul_pace);
    if (client->dead)
        return;

    if (client->closing || (close_code >= 4000 && close_code <= 4099)) {
        client->app_closed = client->closing;
        client->closing = false;
        set_state(client, FL_CLIENT_STOPPED, close_code);
        return;
    }
    if ((close_code >= 4100 && close_code <= 4199) || client->proto_err)
        delay = backoff_ms(client, ++client->attempts);
    else if (++client->attempts <= client->ngws)
        delay = 0; /* 4200-4299, other codes, network errors: each address at once */
    else
        delay = backoff_ms(client, client->attempts - client->ngws);
    client->proto_err = false;
    if (client->ngws > 1) {
        /* failover: the next attempt goes to the next address */
        client->gw_cur = (client->gw_cur + 1) % client->ngws;
        client->stats.failovers++;
    }
    set_state(client, FL_CLIENT_BACKOFF, close_code);
    if (!client->dead && client->state == FL_CLIENT_BACKOFF)
        schedule_connect(client, delay);
}

static void on_connect_timer(lws_sorted_usec_list_t *sul)
{
    fl_client_t *client = lws_container_of(sul, fl_client_t, sul_connect);
    struct lws_client_connect_info info;

    if (client->dead || client->live || client->state == FL_CLIENT_STOPPED)
        return;
    memset(&info, 0, sizeof info);
    info.context = client->ctx->context;
    info.address = client->gws[client->gw_cur].host;
    info.port = client->gws[client->gw_cur].port;
    info.path = client->path;
    info.host = client->gws[client->gw_cur].host;
    info.local_protocol_name = PROTOCOL_NAME;
    info.opaque_user_data = client;
    info.pwsi = &client->wsi;
    client->close_code = 0;
    client->proto_err = false;
    client->live = true;
    client->stats.connects++;
    set_state(client, FL_CLIENT_CONNECTING, 0);
    if (client->dead || client->state != FL_CLIENT_CONNECTING)
        return;
    /* A synchronous failure may already have run on_disconnect through
     * CLIENT_CONNECTION_ERROR; otherwise it is handled here. */
    if (!lws_client_connect_via_info(&info)) {
        client->wsi = NULL;
        on_disconnect(client, 0);
    }
}

/* ---- incoming messages ------------------------------------------------- */

static void handle_snapshot(fl_client_t *client, const fl_wire_snapshot_t *snap)
{
    docinfo_t *di = doc_find(client, snap->doc);
    int r;
    if (!di || !di->subscribed || !di->doc)
        return;
    r = fl_doc_restore(di->doc, &snap->state, snap->version, snap->chain);
    if (r < 0) {
        di->synced = false;
        emit_error(client, FL_CODE_BAD_FRAME, "snapshot does not restore");
        return;
    }
    di->synced = true;
    if (client->cb.on_snapshot)
        client->cb.on_snapshot(client, client->opaque, snap->doc, snap->version,
                               fl_doc_state(di->doc));
}

static void handle_deltas(fl_client_t *client, const fl_wire_deltas_t *deltas)
{
    docinfo_t *di = doc_find(client, deltas->doc);
    uint32_t i;
    if (!di || !di->subscribed || !di->doc)
        return;
    for (i = 0; i < deltas->nitems && !client->dead; i++) {
        const fl_wire_delta_t *d = &deltas->items[i];
        uint64_t local = fl_doc_version(di->doc), before = d->version - d->ncmds;
        int r;
        if (di->synced && d->version <= local)
            continue; /* already have it */
        if (before != local) {
            if (di->synced)
                resync(client, di, "version gap in deltas");
            return; /* not synced: stale deltas from before a resubscribe */
        }
        r = fl_doc_apply_applied(di->doc, before, d->cmds, d->ncmds, d->chain, client->arena);
        if (r < 0) {
            if (di->synced)
                resync(client, di,
                       r == FL_EERR_CHAIN ? "chain mismatch in deltas" : "delta does not apply");
            return;
        }
        di->synced = true;
        if (client->cb.on_delta)
            client->cb.on_delta(client, client->opaque, deltas->doc, d);
    }
}

static void handle_outcome(fl_client_t *client, const fl_outcome_t *outcome)
{
    pending_t *pf;
    if (memcmp(outcome->client_id, client->client_id, FL_CLIENT_ID_LEN) != 0)
        return;
    if (!(pf = pending_find(client, outcome->doc, outcome->seq)))
        return; /* answered already (e.g. a resend's duplicate) */
    if (outcome->code == FL_CODE_GAP && pending_has_earlier(pf)) {
        /* an earlier seq did not reach the processor: send this one again
         * once the earlier ones are on their way */
        pending_set(client, pf, PF_QUEUED);
        want_write(client);
        return;
    }
    pending_unlink(client, pf);
    if (client->nqueued > 0)
        want_write(client); /* flushes held behind a nacked one may go now */
    if (client->cb.on_outcome)
        client->cb.on_outcome(client, client->opaque, outcome);
}

static void handle_nack(fl_client_t *client, const fl_wire_nack_t *nack)
{
    fl_client_nack_t info;
    pending_t *pf = NULL;

    memset(&info, 0, sizeof info);
    info.doc = nack->doc;
    info.has_seq = nack->has_seq;
    info.seq = nack->seq;
    info.code = nack->code;
    info.retry_after_ms = nack->has_retry ? nack->retry_after_ms : 0;
    info.reason = nack->reason;
    if (nack->has_seq && nack->doc.len > 0 &&
        (!nack->has_client_id ||
         memcmp(nack->client_id, client->client_id, FL_CLIENT_ID_LEN) == 0))
        pf = pending_find(client, nack->doc, nack->seq);
    if (pf) {
        if (nack->code == FL_CODE_UNAVAILABLE || nack->code == FL_CODE_RATE_LIMITED) {
            info.retrying = true;
            if (pending_nacked_earlier(pf)) {
                /* held: resent in seq order once the earlier one is answered
                 * (a timer of its own would resend the whole backlog at once) */
                pf->nacked = true;
                pending_set(client, pf, PF_QUEUED);
            } else {
                pf->nacked = true;
                pending_set(client, pf, PF_RETRY);
                pf->deadline_ms = fl_clock_mono_ms() +
                                  (nack->has_retry ? nack->retry_after_ms : DEFAULT_RETRY_MS);
                arm_timer(client, pf->deadline_ms);
            }
        } else {
            pending_unlink(client, pf);
            if (client->nqueued > 0)
                want_write(client);
        }
    }
    if (client->cb.on_nack)
        client->cb.on_nack(client, client->opaque, &info);
}

static void handle_welcome(fl_client_t *client, const fl_wire_welcome_t *welcome)
{
    docinfo_t *di;
    client->stats.welcomes++;
    client->attempts = 0;
    client->pace_rate = 0;
    if (!client->no_pacing && welcome->rate > 0) {
        /* The gateway's bucket starts full on a new connection. Pacing at
         * exactly its rate and burst lost about one flush in a thousand to
         * rate_limited: a timer that fires early by a rounding, or frames
         * that leave spaced and arrive bunched, spend a token the gateway
         * has not refilled yet. A bucket one token smaller refilled 5%
         * slower absorbs both. */
        client->pace_rate = (double)welcome->rate * (FL_CLIENT_PACE_RATE_PCT / 100.0) / 1e6;
        client->pace_burst = welcome->burst > 1 ? (double)welcome->burst - 1 : 1;
        client->pace_tokens = client->pace_burst;
        client->pace_last_us = fl_clock_mono_us();
    }
    set_state(client, FL_CLIENT_READY, 0);
    if (client->dead || client->state != FL_CLIENT_READY)
        return;
    for (di = client->docs; di; di = di->next)
        if (di->subscribed)
            send_subscribe(client, di);
    want_write(client);
    if (client->cb.on_welcome)
        client->cb.on_welcome(client, client->opaque, welcome);
}

/* One whole server message. Non-zero: close the connection (bad frame). */
static int handle_message(fl_client_t *client, const char *buf, size_t len, bool text)
{
    fl_wire_limits_t lim = fl_wire_limits_frame;
    fl_wire_msg_t msg;
    char errstr[256];
    int r;

    lim.max_frame = client->max_frame;
    fl_arena_reset(client->arena);
    client->stats.received++;
    r = fl_wire_decode(FL_WIRE_S2C, text ? FL_WIRE_JSON : FL_WIRE_MSGPACK, buf, len, &lim,
                       client->arena, &msg, errstr, sizeof errstr);
    if (r == -FL_CODE_UNKNOWN_TYPE)
        return 0; /* a newer server's message: ignored (PROTOCOL.md section 2) */
    if (r < 0) {
        client->stats.bad_frames++;
        emit_error(client, -r, errstr);
        return -1;
    }
    if (client->state != FL_CLIENT_READY && msg.type != FL_WT_WELCOME &&
        msg.type != FL_WT_ERROR && msg.type != FL_WT_PONG) {
        client->stats.bad_frames++;
        emit_error(client, FL_CODE_BAD_FRAME, "message before welcome");
        return -1;
    }
    switch (msg.type) {
    case FL_WT_WELCOME:
        handle_welcome(client, &msg.u.welcome);
        break;
    case FL_WT_SNAPSHOT:
        handle_snapshot(client, &msg.u.snapshot);
        break;
    case FL_WT_DELTAS:
        handle_deltas(client, &msg.u.deltas);
        break;
    case FL_WT_OUTCOME:
        handle_outcome(client, &msg.u.outcome.outcome);
        break;
    case FL_WT_NACK:
        handle_nack(client, &msg.u.nack);
        break;
    case FL_WT_SIGNAL_OUT:
        if (client->cb.on_signal)
            client->cb.on_signal(client, client->opaque, msg.u.signal.doc, msg.u.signal.user,
                                 &msg.u.signal.body);
        break;
    case FL_WT_ERROR:
        if (client->cb.on_error)
            client->cb.on_error(client, client->opaque, msg.u.error.code, msg.u.error.reason);
        break;
    default: /* pong */
        break;
    }
    return 0;
}

static int on_receive(fl_client_t *client, struct lws *wsi, const char *in, size_t len)
{
    if (client->rxlen == 0 && !client->rx_overflow)
        client->rx_text = !lws_frame_is_binary(wsi);
    if (!client->rx_overflow) {
        if (client->rxlen + len > client->max_frame) {
            client->rx_overflow = true;
        } else {
            if (client->rxlen + len > client->rxcap) {
                size_t cap = client->rxcap ? client->rxcap : 4096;
                char *p;
                while (cap < client->rxlen + len)
                    cap *= 2;
                if (!(p = realloc(client->rx, cap)))
                    return -1;
                client->rx = p;
                client->rxcap = cap;
            }
            memcpy(client->rx + client->rxlen, in, len);
            client->rxlen += len;
        }
    }
    if (!lws_is_final_fragment(wsi) || lws_remaining_packet_payload(wsi) > 0)
        return 0;
    if (client->rx_overflow) {
        client->rx_overflow = false;
        client->rxlen = 0;
        client->stats.bad_frames++;
        emit_error(client, FL_CODE_LIMIT, "server message above max_frame");
        client->proto_err = true;
        return -1;
    }
    len = client->rxlen;
    client->rxlen = 0;
    if (handle_message(client, client->rx, len, client->rx_text) < 0) {
        client->proto_err = true;
        return -1;
    }
    return 0;
}

static void on_pace_timer(lws_sorted_usec_list_t *sul)
{
    want_write(lws_container_of(sul, fl_client_t, sul_pace));
}

/* One token of the pacing bucket, or false with a wake-up scheduled for
 * when the next one is due. */
static bool pace_take(fl_client_t *client)
{
    int64_t now;
    double wait_us;
    if (client->pace_rate <= 0)
        return true;
    now = fl_clock_mono_us();
    client->pace_tokens += (double)(now - client->pace_last_us) * client->pace_rate;
    if (client->pace_tokens > client->pace_burst)
        client->pace_tokens = client->pace_burst;
    client->pace_last_us = now;
    if (client->pace_tokens >= 1.0) {
        client->pace_tokens -= 1.0;
        return true;
    }
    wait_us = (1.0 - client->pace_tokens) / client->pace_rate;
    lws_sul_schedule(client->ctx->context, 0, &client->sul_pace, on_pace_timer,
                     (lws_usec_t)wait_us + 1);
    return false;
}

static int on_writeable(fl_client_t *client, struct lws *wsi)
{
    frame_t *frame = NULL;
    pending_t *pf = NULL;
    size_t len;
    int n;

    if (client->closing) {
        lws_close_reason(wsi, LWS_CLOSE_STATUS_NORMAL, NULL, 0);
        return -1;
    }
    if (client->ctl_head) {
        frame = client->ctl_head;
        if (!(client->ctl_head = frame->next))
            client->ctl_tail = NULL;
    } else if (client->state == FL_CLIENT_READY && (pf = pending_next(client))) {
        if (!pace_take(client))
            return 0; /* on_pace_timer asks for WRITEABLE again */
        frame = pf->frame;
    } else {
        return 0;
    }
    len = frame->len;
    if (pf) {
        /* lws masks client frames in place: a pending flush is kept intact
         * for resends, so it is written from a scratch copy */
        fl_client_ctx_t *ctx = client->ctx;
        if (ctx->scratch_cap < LWS_PRE + len) {
            unsigned char *p = realloc(ctx->scratch, LWS_PRE + len);
            if (!p)
                return -1;
            ctx->scratch = p;
            ctx->scratch_cap = LWS_PRE + len;
        }
        memcpy(ctx->scratch + LWS_PRE, frame->buf + LWS_PRE, len);
        n = lws_write(wsi, ctx->scratch + LWS_PRE, len,
                      frame->text ? LWS_WRITE_TEXT : LWS_WRITE_BINARY);
    } else {
        n = lws_write(wsi, frame->buf + LWS_PRE, len,
                      frame->text ? LWS_WRITE_TEXT : LWS_WRITE_BINARY);
    }
    if (pf) {
        pending_set(client, pf, PF_INFLIGHT);
        pf->deadline_ms = fl_clock_mono_ms() + client->ack_timeout_ms;
        arm_timer(client, pf->deadline_ms);
        if (pf->sent_once)
            client->stats.resent++;
        pf->sent_once = true;
    } else {
        frame_free(frame);
    }
    if (n < 0 || (size_t)n < len)
        return -1;
    client->stats.sent++;
    if (client->ctl_head || (client->state == FL_CLIENT_READY && client->nqueued > 0))
        lws_callback_on_writable(wsi);
    return 0;
}

static int on_lws(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in,
                  size_t len)
{
    fl_client_t *client = wsi ? lws_get_opaque_user_data(wsi) : NULL;
    fl_wire_msg_t msg;

    if (!client)
        return 0;
    if (client->dead) {
        /* freed from a callback, reaped at the end of this turn: let the
         * connection go, and forget it once lws does */
        if (reason == LWS_CALLBACK_CLIENT_CLOSED ||
            reason == LWS_CALLBACK_CLIENT_CONNECTION_ERROR) {
            lws_set_opaque_user_data(wsi, NULL);
            if (client->wsi == wsi)
                client->wsi = NULL;
            client->live = false;
            return 0;
        }
        return reason == LWS_CALLBACK_CLIENT_RECEIVE || reason == LWS_CALLBACK_CLIENT_WRITEABLE
                   ? -1
                   : 0;
    }
    switch (reason) {
    case LWS_CALLBACK_CLIENT_ESTABLISHED:
        client->wsi = wsi;
        set_state(client, FL_CLIENT_HELLO, 0);
        if (client->dead || client->state != FL_CLIENT_HELLO)
            return client->dead ? -1 : 0;
        memset(&msg, 0, sizeof msg);
        msg.type = FL_WT_HELLO;
        msg.u.hello.token = (fl_slice_t){client->token, strlen(client->token)};
        msg.u.hello.client = (fl_slice_t){client->name, strlen(client->name)};
        /* the hello goes first, before anything queued while connecting */
        {
            frame_t *frame;
            if (encode(client, &msg, true, &frame) < 0)
                return -1;
            ctl_clear(client);
            client->ctl_head = client->ctl_tail = frame;
        }
        lws_callback_on_writable(wsi);
        return 0;

    case LWS_CALLBACK_CLIENT_RECEIVE:
        return on_receive(client, wsi, in, len);

    case LWS_CALLBACK_CLIENT_WRITEABLE:
        return on_writeable(client, wsi);

    case LWS_CALLBACK_WS_PEER_INITIATED_CLOSE:
        if (in && len >= 2)
            client->close_code = ((const unsigned char *)in)[0] << 8 |
                                 ((const unsigned char *)in)[1];
        return 0;

    case LWS_CALLBACK_CLIENT_CONNECTION_ERROR:
        if (in && len > 0)
            emit_error(client, FL_CODE_UNAVAILABLE, "connection failed");
        on_disconnect(client, 0);
        return 0;

    case LWS_CALLBACK_CLIENT_CLOSED:
        on_disconnect(client, client->close_code);
        return 0;

    default:
        return 0;
    }
}

/* ---- context ----------------------------------------------------------- */

fl_client_ctx_t *fl_client_ctx_new(char *errstr, size_t errstr_size)
{
    struct lws_context_creation_info info;
    fl_client_ctx_t *ctx;

    if (sodium_init() < 0) {
        snprintf(errstr, errstr_size, "client: libsodium does not initialise");
        return NULL;
    }
    if (!(ctx = calloc(1, sizeof *ctx))) {
        snprintf(errstr, errstr_size, "client: out of memory");
        return NULL;
    }
    ctx->protocols[0].name = PROTOCOL_NAME;
    ctx->protocols[0].callback = on_lws;
    ctx->protocols[0].rx_buffer_size = 65536;
    memset(&info, 0, sizeof info);
    info.port = CONTEXT_PORT_NO_LISTEN;
    info.protocols = ctx->protocols;
    info.gid = -1;
    info.uid = -1;
    info.user = ctx;
    info.timeout_secs = 10; /* connect and handshake */
    ctx->context = lws_create_context(&info);
    if (!ctx->context) {
        snprintf(errstr, errstr_size, "client: cannot create the libwebsockets context");
        free(ctx);
        return NULL;
    }
    return ctx;
}

static void on_wake(lws_sorted_usec_list_t *sul)
{
    (void)sul; /* only ends the poll wait */
}

/* context_going: the whole lws context is about to be destroyed, which
 * closes every connection itself; asking lws to kill one asynchronously then
 * is not only useless but crashes lws 4.1.6 for a connection still being
 * set up (its timeout list is not there yet). */
static void client_destroy_ex(fl_client_t *client, bool context_going)
{
    docinfo_t *di, *dnext;
    lws_sul_cancel(&client->sul_connect);
    lws_sul_cancel(&client->sul_retry);
    lws_sul_cancel(&client->sul_pace);
    if (client->wsi) {
        lws_set_opaque_user_data(client->wsi, NULL);
        if (!context_going)
            lws_set_timeout(client->wsi, PENDING_TIMEOUT_CLOSE_SEND, LWS_TO_KILL_ASYNC);
        client->wsi = NULL;
    }
    ctl_clear(client);
    while (client->pend_head)
        pending_unlink(client, client->pend_head);
    for (di = client->docs; di; di = dnext) {
        dnext = di->next;
        fl_doc_free(di->doc);
        free(di->id);
        free(di);
    }
    if (client->token) {
        size_t n = strlen(client->token);
        if (client->token_sodium) {
            sodium_free(client->token);
        } else {
            sodium_memzero(client->token, n);
            free(client->token);
        }
    }
    if (client->gws)
        for (uint32_t i = 0; i < client->ngws; i++)
            free(client->gws[i].host);
    free(client->gws);
    free(client->path);
    free(client->name);
    free(client->rx);
    fl_arena_free(client->arena);
    free(client);
}

static void client_destroy(fl_client_t *client)
{
    client_destroy_ex(client, false);
}

static void reap_ex(fl_client_ctx_t *ctx, bool context_going)
{
    while (ctx->dead) {
        fl_client_t *client = ctx->dead;
        ctx->dead = client->next;
        client_destroy_ex(client, context_going);
    }
}

static void reap(fl_client_ctx_t *ctx)
{
    reap_ex(ctx, false);
}

int fl_client_service(fl_client_ctx_t *ctx, int timeout_ms)
{
    int r;
    ctx->depth++;
    if (timeout_ms > 0) {
        lws_sul_schedule(ctx->context, 0, &ctx->sul_wake, on_wake,
                         (lws_usec_t)timeout_ms * LWS_US_PER_MS);
        r = lws_service(ctx->context, 0);
        lws_sul_cancel(&ctx->sul_wake);
    } else {
        r = lws_service(ctx->context, -1);
    }
    ctx->depth--;
    if (ctx->depth == 0)
        reap(ctx);
    return r < 0 ? -1 : 0;
}

void fl_client_ctx_free(fl_client_ctx_t *ctx)
{
    if (!ctx)
        return;
    while (ctx->clients) {
        fl_client_t *client = ctx->clients;
        ctx->clients = client->next;
        client->dead = true;
        client_destroy_ex(client, true);
    }
    reap_ex(ctx, true);
    lws_sul_cancel(&ctx->sul_wake);
    lws_context_destroy(ctx->context);
    free(ctx->scratch);
    free(ctx);
}

/* ---- clients ----------------------------------------------------------- */

static char *dup_str(const char *s)
{
    size_t n = strlen(s);
    char *p = malloc(n + 1);
    if (p)
        memcpy(p, s, n + 1);
    return p;
}

static int set_token(fl_client_t *client, const char *token)
{
    size_t n = strlen(token);
    bool sodium = true;
    char *p = sodium_malloc(n + 1);
    if (!p) {
        /* guarded pages can run out with many clients (map count): plain
         * memory, still wiped on release */
        sodium = false;
        if (!(p = malloc(n + 1)))
            return FL_CLIENT_ENOMEM;
    }
    memcpy(p, token, n + 1);
    if (client->token) {
        if (client->token_sodium) {
            sodium_free(client->token);
        } else {
            sodium_memzero(client->token, strlen(client->token));
            free(client->token);
        }
    }
    client->token = p;
    client->token_sodium = sodium;
    return 0;
}

/* Parses "host:port" or "[v6addr]:port" into a new gwaddr_t. 0, or
 * FL_CLIENT_EINVAL / ENOMEM. */
static int parse_gateway(const char *s, gwaddr_t *out)
{
    const char *h = s, *colon;
    size_t hlen;
    char *p, *end;
    long port;

    if (*s == '[') {
        const char *close = strchr(s, ']');
        if (!close || close[1] != ':')
            return FL_CLIENT_EINVAL;
        h = s + 1;
        hlen = (size_t)(close - h);
        colon = close + 1;
    } else {
        if (!(colon = strrchr(s, ':')) || memchr(s, ':', (size_t)(colon - s)))
            return FL_CLIENT_EINVAL; /* none, or a bare IPv6 address */
        hlen = (size_t)(colon - s);
    }
    if (hlen == 0 || colon[1] < '0' || colon[1] > '9')
        return FL_CLIENT_EINVAL;
    errno = 0;
    port = strtol(colon + 1, &end, 10);
    if (errno || *end || port <= 0 || port > 65535)
        return FL_CLIENT_EINVAL;
    if (!(p = malloc(hlen + 1)))
        return FL_CLIENT_ENOMEM;
    memcpy(p, h, hlen);
    p[hlen] = '\0';
    out->host = p;
    out->port = (int)port;
    return 0;
}

/* Fills client->gws from opts: the gateways list, or host and port. */
static int set_gateways(fl_client_t *client, const fl_client_opts_t *opts)
{
    uint32_t n = 0;
    int r;

    if (opts->gateways)
        while (opts->gateways[n] && n <= FL_CLIENT_MAX_GATEWAYS)
            n++;
    if (n > FL_CLIENT_MAX_GATEWAYS)
        return FL_CLIENT_EINVAL;
    if (n == 0) {
        if (!opts->host || !*opts->host || opts->port <= 0 || opts->port > 65535)
            return FL_CLIENT_EINVAL;
        if (!(client->gws = calloc(1, sizeof *client->gws)))
            return FL_CLIENT_ENOMEM;
        client->ngws = 1;
        if (!(client->gws[0].host = dup_str(opts->host)))
            return FL_CLIENT_ENOMEM;
        client->gws[0].port = opts->port;
        return 0;
    }
    if (!(client->gws = calloc(n, sizeof *client->gws)))
        return FL_CLIENT_ENOMEM;
    client->ngws = n;
    for (uint32_t i = 0; i < n; i++)
        if ((r = parse_gateway(opts->gateways[i], &client->gws[i])) < 0)
            return r;
    return 0;
}

fl_client_t *fl_client_new(fl_client_ctx_t *ctx, const fl_client_opts_t *opts)
{
    static const uint8_t zero[FL_CLIENT_ID_LEN];
    fl_client_t *client;

    if (!ctx || !opts)
        return NULL;
    if (!(client = calloc(1, sizeof *client)))
        return NULL;
    client->ctx = ctx;
    if (set_gateways(client, opts) < 0)
        goto fail;
    client->path = dup_str(opts->path ? opts->path : DEFAULT_PATH);
    client->name = dup_str(opts->name ? opts->name : DEFAULT_NAME);
    client->arena = fl_arena_new(16384);
    if (!client->path || !client->name || !client->arena ||
        set_token(client, opts->token ? opts->token : "") < 0)
        goto fail;
    client->json = opts->json;
    client->no_pacing = opts->no_pacing;
    if (memcmp(opts->client_id, zero, FL_CLIENT_ID_LEN) == 0)
        randombytes_buf(client->client_id, FL_CLIENT_ID_LEN);
    else
        memcpy(client->client_id, opts->client_id, FL_CLIENT_ID_LEN);
    client->backoff_initial_ms =
        opts->backoff_initial_ms ? opts->backoff_initial_ms : DEFAULT_BACKOFF_INITIAL_MS;
    client->backoff_max_ms = opts->backoff_max_ms ? opts->backoff_max_ms : DEFAULT_BACKOFF_MAX_MS;
    if (client->backoff_max_ms < client->backoff_initial_ms)
        client->backoff_max_ms = client->backoff_initial_ms;
    client->max_frame = opts->max_frame ? opts->max_frame : DEFAULT_MAX_FRAME;
    client->ack_timeout_ms = opts->ack_timeout_ms ? opts->ack_timeout_ms : DEFAULT_ACK_TIMEOUT_MS;
    client->timer_at = INT64_MAX;
    client->engine = opts->engine ? *opts->engine : fl_engine_config_default;
    client->cb = opts->cb;
    client->opaque = opts->opaque;
    client->state = FL_CLIENT_BACKOFF;

    client->next = ctx->clients;
    if (ctx->clients)
        ctx->clients->prev = client;
    ctx->clients = client;
    schedule_connect(client, 0);
    return client;
fail:
    client_destroy(client);
    return NULL;
}

void fl_client_free(fl_client_t *client)
{
    fl_client_ctx_t *ctx;
    if (!client || client->dead)
        return;
    ctx = client->ctx;
    client->dead = true;
    if (client->prev)
        client->prev->next = client->next;
    else
        ctx->clients = client->next;
    if (client->next)
        client->next->prev = client->prev;
    client->prev = NULL;
    lws_sul_cancel(&client->sul_connect);
    lws_sul_cancel(&client->sul_retry);
    lws_sul_cancel(&client->sul_pace);
    if (ctx->depth > 0) {
        client->next = ctx->dead;
        ctx->dead = client;
    } else {
        client->next = NULL;
        client_destroy(client);
    }
}

int fl_client_close(fl_client_t *client)
{
    if (!client || client->dead)
        return FL_CLIENT_EINVAL;
    lws_sul_cancel(&client->sul_connect);
    if (client->live) {
        client->closing = true;
        if (client->wsi && established(client))
            lws_callback_on_writable(client->wsi);
        else if (client->wsi)
            lws_set_timeout(client->wsi, PENDING_TIMEOUT_CLOSE_SEND, LWS_TO_KILL_ASYNC);
        return 0;
    }
    client->app_closed = true;
    set_state(client, FL_CLIENT_STOPPED, 0);
    return 0;
}

int fl_client_subscribe(fl_client_t *client, fl_slice_t doc)
{
    docinfo_t *di;
    if (!client || client->dead || !doc_id_ok(doc))
        return FL_CLIENT_EINVAL;
    if (!(di = doc_get(client, doc)))
        return FL_CLIENT_ENOMEM;
    if (di->subscribed)
        return 0;
    if (!(di->doc = fl_doc_new(doc, &client->engine)))
        return FL_CLIENT_ENOMEM;
    di->subscribed = true;
    di->synced = false;
    if (client->state == FL_CLIENT_READY)
        return send_subscribe(client, di);
    return 0;
}

int fl_client_unsubscribe(fl_client_t *client, fl_slice_t doc)
{
    docinfo_t *di;
    if (!client || client->dead || !doc_id_ok(doc))
        return FL_CLIENT_EINVAL;
    if (!(di = doc_find(client, doc)) || !di->subscribed)
        return FL_CLIENT_ENOSUB;
    di->subscribed = false;
    di->synced = false;
    fl_doc_free(di->doc);
    di->doc = NULL;
    if (client->state == FL_CLIENT_READY)
        return send_unsubscribe(client, di);
    return 0;
}

const fl_doc_t *fl_client_doc(const fl_client_t *client, fl_slice_t doc)
{
    const docinfo_t *di = client ? doc_find(client, doc) : NULL;
    return di && di->subscribed && di->synced ? di->doc : NULL;
}

static int flush_common(fl_client_t *client, fl_slice_t doc, const fl_cmd_t *cmds, uint32_t n,
                        unsigned flags, bool has_if, uint64_t if_version, uint64_t *seq_out)
{
    fl_wire_msg_t msg;
    docinfo_t *di;
    pending_t *pf;
    int r;

    if (!client || client->dead || !doc_id_ok(doc) || (n > 0 && !cmds) ||
        n > fl_wire_limits_frame.max_commands)
        return FL_CLIENT_EINVAL;
    if (client->state == FL_CLIENT_STOPPED && !client->live)
        return FL_CLIENT_ECLOSED;
    if (!(di = doc_get(client, doc)))
        return FL_CLIENT_ENOMEM;
    if (!(pf = calloc(1, sizeof *pf)))
        return FL_CLIENT_ENOMEM;
    memset(&msg, 0, sizeof msg);
    msg.type = FL_WT_FLUSH;
    msg.u.flush.doc = doc_slice(di);
    memcpy(msg.u.flush.client_id, client->client_id, FL_CLIENT_ID_LEN);
    msg.u.flush.seq = di->last_seq + 1;
    msg.u.flush.base_version = di->subscribed && di->doc ? fl_doc_version(di->doc) : 0;
    msg.u.flush.has_if_version = has_if;
    msg.u.flush.if_version = if_version;
    msg.u.flush.atomic = (flags & FL_CLIENT_FLUSH_ATOMIC) != 0;
    msg.u.flush.ncmds = n;
    msg.u.flush.cmds = (fl_cmd_t *)cmds;
    if ((r = encode(client, &msg, false, &pf->frame)) < 0) {
        free(pf);
        return r;
    }
    di->last_seq++;
    pf->di = di;
    pf->seq = di->last_seq;
    pf->st = PF_QUEUED;
    pf->prev = client->pend_tail;
    if (client->pend_tail)
        client->pend_tail->next = pf;
    else
        client->pend_head = pf;
    client->pend_tail = pf;
    client->npending++;
    client->nqueued++;
    if (client->state == FL_CLIENT_READY)
        want_write(client);
    if (seq_out)
        *seq_out = pf->seq;
    return 0;
}

int fl_client_flush(fl_client_t *client, fl_slice_t doc, const fl_cmd_t *cmds, uint32_t n,
                    unsigned flags, uint64_t *seq_out)
{
    return flush_common(client, doc, cmds, n, flags, false, 0, seq_out);
}

int fl_client_flush_if(fl_client_t *client, fl_slice_t doc, const fl_cmd_t *cmds, uint32_t n,
                       unsigned flags, uint64_t if_version, uint64_t *seq_out)
{
    return flush_common(client, doc, cmds, n, flags, true, if_version, seq_out);
}

uint32_t fl_client_pending(const fl_client_t *client)
{
    return client ? client->npending : 0;
}

int fl_client_signal(fl_client_t *client, fl_slice_t doc, const fl_value_t *body)
{
    fl_wire_msg_t msg;
    if (!client || client->dead || !doc_id_ok(doc) || !body)
        return FL_CLIENT_EINVAL;
    if (client->state != FL_CLIENT_READY)
        return FL_CLIENT_ENOTCONN;
    memset(&msg, 0, sizeof msg);
    msg.type = FL_WT_SIGNAL;
    msg.u.signal.doc = doc;
    msg.u.signal.body = *body;
    return queue_ctl(client, &msg, false);
}

int fl_client_refresh_token(fl_client_t *client, const char *token)
{
    fl_wire_msg_t msg;
    int r;
    if (!client || client->dead || !token)
        return FL_CLIENT_EINVAL;
    if ((r = set_token(client, token)) < 0)
        return r;
    if (established(client)) {
        memset(&msg, 0, sizeof msg);
        msg.type = FL_WT_AUTH;
        msg.u.hello.token = (fl_slice_t){client->token, strlen(client->token)};
        return queue_ctl(client, &msg, true);
    }
    if (client->state == FL_CLIENT_STOPPED && !client->live && !client->app_closed) {
        /* stopped by 4001/4004 (or closed): a new token is a reason to try again */
        client->attempts = 0;
        client->state = FL_CLIENT_BACKOFF;
        schedule_connect(client, 0);
    }
    return 0;
}

fl_client_state_t fl_client_state(const fl_client_t *client)
{
    return client->state;
}

const uint8_t *fl_client_id(const fl_client_t *client)
{
    return client->client_id;
}

void fl_client_get_stats(const fl_client_t *client, fl_client_stats_t *out)
{
    *out = client->stats;
}

void *fl_client_opaque(const fl_client_t *client)
{
    return client->opaque;
}

const char *fl_client_gateway(const fl_client_t *client, int *port_out)
{
    if (port_out)
        *port_out = client->gws[client->gw_cur].port;
    return client->gws[client->gw_cur].host;
}
