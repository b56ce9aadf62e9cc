/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Unit tests for the C client library against a fake gateway that lives in
 * this file: a libwebsockets server on 127.0.0.1 (port 0) with one protocol
 * at /v1/ws that speaks just enough of schemas/PROTOCOL.md. It answers hello
 * with welcome, subscribe with a snapshot or the missing deltas, and flushes
 * with outcomes produced by the real engine (fl_doc_apply on its own
 * fl_doc_t, so chains and digests are genuine); it can be told to drop every
 * connection, close with a code, withhold outcomes, nack, enforce the
 * announced token bucket strictly (as the gateway does), corrupt a chain or
 * send garbage, and it logs what it received. Several fake gateways may run
 * at once and share one document store (the Kafka behind real gateways), for
 * failover. Client and server loops run on this one thread: every wait
 * drives all of them until a condition holds, with a deadline (no sleep
 * stands in for synchronisation).
 */
#include <math.h>
#include <stdlib.h>
#include <sys/socket.h>

#include <libwebsockets.h>

#include "fl_gen.h"
#include "fl_test.h"
#include "flushline/client.h"
#include "flushline/engine.h"
#include "flushline/wire.h"

/* ---- fake gateway ------------------------------------------------------ */

typedef struct sframe_s {
    struct sframe_s *next;
    size_t len;
    bool text;
    unsigned char buf[];
} sframe_t;

typedef struct srv_conn_s {
    struct srv_conn_s *next;
    struct lws *wsi;
    int no;
    fl_wire_form_t form;
    sframe_t *head, *tail;
    char *rx;
    size_t rxlen, rxcap;
    char subs[8][64];
    int nsubs;
    int close_code;
    bool drop;
    float tokens;      /* strict rate limit: the gateway's bucket (gw_conn.c) */
    int64_t tokens_us;
} srv_conn_t;

/* One applied outcome kept for catch-up, its memory in its own arena. */
typedef struct hist_s {
    fl_arena_t *arena;
    fl_wire_delta_t delta;
} hist_t;

typedef struct srv_doc_s {
    struct srv_doc_s *next;
    char id[64];
    fl_doc_t *doc;
    hist_t *hist;
    uint32_t nhist, caphist;
    uint64_t own_seq; /* server-side flushes */
} srv_doc_t;

typedef struct rec_s {
    int type;
    int conn;
    char doc[64];
    uint64_t seq;
    bool has_version;
    uint64_t have_version;
} rec_t;

typedef struct srv_s {
    struct lws_context *context;
    struct lws_vhost *vhost;
    struct lws_protocols protocols[2];
    int port;
    int nconns; /* connections ever established */
    srv_conn_t *conns;
    struct srv_s *store; /* whose docs: itself, or a gateway it shares them with */
    srv_doc_t *docs;
    rec_t log[8192];
    int nlog;
    int hellos;
    bool no_ack;          /* apply flushes but send no outcome */
    int nack_next;        /* nack this many flushes with unavailable */
    uint32_t nack_retry_ms;
    bool corrupt_next;    /* flip a chain byte in the next delta sent */
    uint32_t rate, burst; /* announced in welcome */
    bool strict_rate;     /* refuse flushes over the announced bucket: rate_limited */
    int rate_nacks;       /* rate_limited nacks sent */
    int rate_refused;     /* distinct seqs refused at least once */
    uint8_t refused[1024]; /* by seq (one document per test) */
    fl_gen_t gen;
} srv_t;

#define MAX_SRVS 4
static srv_t *g_srvs[MAX_SRVS]; /* running fake gateways, all driven by pump() */

static srv_doc_t *srv_doc(srv_t *srv, fl_slice_t id)
{
    srv_doc_t *sd;
    srv = srv->store;
    for (sd = srv->docs; sd; sd = sd->next)
        if (strlen(sd->id) == id.len && memcmp(sd->id, id.ptr, id.len) == 0)
            return sd;
    sd = calloc(1, sizeof *sd);
    memcpy(sd->id, id.ptr, id.len < 63 ? id.len : 63);
    sd->doc = fl_doc_new(id, NULL);
    sd->next = srv->docs;
    srv->docs = sd;
    return sd;
}

static int64_t srv_now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

/* The gateway's token bucket, same arithmetic (gw_conn.c bucket_take). */
static bool srv_bucket_take(srv_t *srv, srv_conn_t *conn, uint32_t *retry_ms)
{
    int64_t now = srv_now_us();
    double t = (double)conn->tokens + (double)(now - conn->tokens_us) / 1e6 * (double)srv->rate;
    if (t > (double)srv->burst)
        t = (double)srv->burst;
    conn->tokens_us = now;
    if (t >= 1.0) {
        conn->tokens = (float)(t - 1.0);
        return true;
    }
    conn->tokens = (float)t;
    *retry_ms = (uint32_t)ceil((1.0 - t) / (double)srv->rate * 1000.0);
    if (*retry_ms == 0)
        *retry_ms = 1;
    return false;
}

static void srv_queue_raw(srv_conn_t *conn, const char *buf, size_t len, bool text)
{
    sframe_t *frame = malloc(sizeof *frame + LWS_PRE + len);
    frame->next = NULL;
    frame->len = len;
    frame->text = text;
    memcpy(frame->buf + LWS_PRE, buf, len);
    if (conn->tail)
        conn->tail->next = frame;
    else
        conn->head = frame;
    conn->tail = frame;
    lws_callback_on_writable(conn->wsi);
}

static void srv_send(srv_conn_t *conn, const fl_wire_msg_t *msg)
{
    char errstr[128], *buf;
    size_t len;
    if (fl_wire_encode(msg, conn->form, &buf, &len, errstr, sizeof errstr) != 0) {
        fprintf(stderr, "fake gateway: encode: %s\n", errstr);
        return;
    }
    srv_queue_raw(conn, buf, len, conn->form == FL_WIRE_JSON);
    free(buf);
}

static bool conn_subscribed(const srv_conn_t *conn, fl_slice_t doc)
{
    for (int i = 0; i < conn->nsubs; i++)
        if (strlen(conn->subs[i]) == doc.len && memcmp(conn->subs[i], doc.ptr, doc.len) == 0)
            return true;
    return false;
}

static void send_deltas(srv_t *srv, srv_conn_t *conn, srv_doc_t *sd, uint32_t from_idx)
{
    fl_wire_msg_t msg;
    memset(&msg, 0, sizeof msg);
    msg.type = FL_WT_DELTAS;
    msg.u.deltas.doc = (fl_slice_t){sd->id, strlen(sd->id)};
    msg.u.deltas.from_version =
        sd->hist[from_idx].delta.version - sd->hist[from_idx].delta.ncmds;
    msg.u.deltas.nitems = sd->nhist - from_idx;
    msg.u.deltas.items = calloc(msg.u.deltas.nitems, sizeof *msg.u.deltas.items);
    for (uint32_t i = 0; i < msg.u.deltas.nitems; i++)
        msg.u.deltas.items[i] = sd->hist[from_idx + i].delta;
    if (srv->corrupt_next) {
        srv->corrupt_next = false;
        msg.u.deltas.items[0].chain[0] ^= 0x55;
    }
    srv_send(conn, &msg);
    free(msg.u.deltas.items);
}

static void send_snapshot(srv_conn_t *conn, srv_doc_t *sd)
{
    fl_wire_msg_t msg;
    memset(&msg, 0, sizeof msg);
    msg.type = FL_WT_SNAPSHOT;
    msg.u.snapshot.doc = (fl_slice_t){sd->id, strlen(sd->id)};
    msg.u.snapshot.version = fl_doc_version(sd->doc);
    memcpy(msg.u.snapshot.chain, fl_doc_chain(sd->doc), FL_HASH_LEN);
    msg.u.snapshot.state = *fl_doc_state(sd->doc);
    srv_send(conn, &msg);
}

/* Applies a flush (memory in arena, which this takes over) on the server's
 * document, broadcasts the delta and answers the origin connection. */
static void srv_apply(srv_t *srv, srv_conn_t *origin, const fl_flush_t *flush, fl_arena_t *arena)
{
    srv_doc_t *sd = srv_doc(srv, flush->doc);
    fl_outcome_t out;
    fl_wire_msg_t msg;
    bool kept = false;

    if (fl_doc_apply(sd->doc, flush, arena, &out) != 0) {
        fprintf(stderr, "fake gateway: apply failed\n");
        fl_arena_free(arena);
        return;
    }
    if (!out.duplicate && out.napplied > 0) {
        hist_t *h;
        if (sd->nhist == sd->caphist) {
            sd->caphist = sd->caphist ? sd->caphist * 2 : 16;
            sd->hist = realloc(sd->hist, sd->caphist * sizeof *sd->hist);
        }
        h = &sd->hist[sd->nhist++];
        h->arena = arena;
        memset(&h->delta, 0, sizeof h->delta);
        h->delta.version = out.version_after;
        memcpy(h->delta.client_id, out.client_id, FL_CLIENT_ID_LEN);
        h->delta.seq = out.seq;
        h->delta.user = FL_SLICE("tester");
        h->delta.ts_ms = 1700000000000;
        h->delta.ncmds = out.napplied;
        h->delta.cmds = out.applied;
        memcpy(h->delta.chain, out.chain, FL_HASH_LEN);
        kept = true;
        for (int g = 0; g < MAX_SRVS; g++) /* every gateway of this store */
            if (g_srvs[g] && g_srvs[g]->store == srv->store)
                for (srv_conn_t *c = g_srvs[g]->conns; c; c = c->next)
                    if (conn_subscribed(c, flush->doc))
                        send_deltas(g_srvs[g], c, sd, sd->nhist - 1);
    }
    if (origin && !srv->no_ack) {
        memset(&msg, 0, sizeof msg);
        msg.type = FL_WT_OUTCOME;
        msg.u.outcome.outcome = out;
        srv_send(origin, &msg);
    }
    if (!kept)
        fl_arena_free(arena);
}

/* A server-side flush of generated commands (another writer). */
static void srv_write(srv_t *srv, const char *doc)
{
    static const uint8_t other[FL_CLIENT_ID_LEN] = {0xee, 0xee};
    srv_doc_t *sd = srv_doc(srv, (fl_slice_t){doc, strlen(doc)});
    fl_arena_t *arena = fl_arena_new(4096);
    fl_flush_t flush;
    fl_gen_flush(&srv->gen, arena, sd->id, other, ++sd->own_seq, 4, &flush);
    srv_apply(srv, NULL, &flush, arena);
}

static void srv_log(srv_t *srv, srv_conn_t *conn, int type, fl_slice_t doc, uint64_t seq,
                    bool has_version, uint64_t have_version)
{
    rec_t *r;
    if (srv->nlog >= (int)(sizeof srv->log / sizeof srv->log[0]))
        return;
    r = &srv->log[srv->nlog++];
    memset(r, 0, sizeof *r);
    r->type = type;
    r->conn = conn->no;
    memcpy(r->doc, doc.ptr, doc.len < 63 ? doc.len : 63);
    r->seq = seq;
    r->has_version = has_version;
    r->have_version = have_version;
}

static void srv_message(srv_t *srv, srv_conn_t *conn, const char *buf, size_t len, bool text)
{
    fl_arena_t *arena = fl_arena_new(4096);
    fl_wire_msg_t msg, out;
    char errstr[256];
    int r = fl_wire_decode(FL_WIRE_C2S, text ? FL_WIRE_JSON : FL_WIRE_MSGPACK, buf, len, NULL,
                           arena, &msg, errstr, sizeof errstr);
    if (r != 0) {
        fprintf(stderr, "fake gateway: bad frame: %s\n", errstr);
        fl_arena_free(arena);
        return;
    }
    memset(&out, 0, sizeof out);
    switch (msg.type) {
    case FL_WT_HELLO:
        conn->form = text ? FL_WIRE_JSON : FL_WIRE_MSGPACK;
        srv->hellos++;
        srv_log(srv, conn, msg.type, FL_SLICE(""), 0, false, 0);
        out.type = FL_WT_WELCOME;
        out.u.welcome.max_frame = 1 << 20;
        out.u.welcome.max_commands = 1000;
        out.u.welcome.max_subscriptions = 8;
        out.u.welcome.rate = srv->rate;
        out.u.welcome.burst = srv->burst;
        out.u.welcome.user = FL_SLICE("tester");
        out.u.welcome.server = FL_SLICE("fake/0");
        srv_send(conn, &out);
        break;
    case FL_WT_SUBSCRIBE: {
        srv_doc_t *sd = srv_doc(srv, msg.u.sub.doc);
        uint64_t cur = fl_doc_version(sd->doc);
        srv_log(srv, conn, msg.type, msg.u.sub.doc, 0, msg.u.sub.has_version,
                msg.u.sub.have_version);
        if (!conn_subscribed(conn, msg.u.sub.doc) && conn->nsubs < 8)
            memcpy(conn->subs[conn->nsubs++], sd->id, sizeof sd->id);
        if (msg.u.sub.has_version && msg.u.sub.have_version <= cur) {
            uint32_t i;
            if (msg.u.sub.have_version == cur)
                break; /* nothing missing */
            for (i = 0; i < sd->nhist; i++)
                if (sd->hist[i].delta.version - sd->hist[i].delta.ncmds ==
                    msg.u.sub.have_version)
                    break;
            if (i < sd->nhist) {
                send_deltas(srv, conn, sd, i);
                break;
            }
        }
        send_snapshot(conn, sd);
        break;
    }
    case FL_WT_UNSUBSCRIBE:
        srv_log(srv, conn, msg.type, msg.u.sub.doc, 0, false, 0);
        for (int i = 0; i < conn->nsubs; i++)
            if (strlen(conn->subs[i]) == msg.u.sub.doc.len &&
                memcmp(conn->subs[i], msg.u.sub.doc.ptr, msg.u.sub.doc.len) == 0) {
                memcpy(conn->subs[i], conn->subs[--conn->nsubs], sizeof conn->subs[i]);
                break;
            }
        break;
    case FL_WT_FLUSH: {
        uint32_t retry = 0;
        srv_log(srv, conn, msg.type, msg.u.flush.doc, msg.u.flush.seq, false, 0);
        if (srv->strict_rate && !srv_bucket_take(srv, conn, &retry)) {
            srv->rate_nacks++;
            if (msg.u.flush.seq < sizeof srv->refused && !srv->refused[msg.u.flush.seq]++)
                srv->rate_refused++;
            out.type = FL_WT_NACK;
            out.u.nack.doc = msg.u.flush.doc;
            out.u.nack.has_client_id = out.u.nack.has_seq = out.u.nack.has_retry = true;
            memcpy(out.u.nack.client_id, msg.u.flush.client_id, FL_CLIENT_ID_LEN);
            out.u.nack.seq = msg.u.flush.seq;
            out.u.nack.code = FL_CODE_RATE_LIMITED;
            out.u.nack.retry_after_ms = retry;
            out.u.nack.reason = FL_SLICE("rate limit");
            srv_send(conn, &out);
            break;
        }
        if (srv->nack_next > 0) {
            srv->nack_next--;
            out.type = FL_WT_NACK;
            out.u.nack.doc = msg.u.flush.doc;
            out.u.nack.has_client_id = out.u.nack.has_seq = out.u.nack.has_retry = true;
            memcpy(out.u.nack.client_id, msg.u.flush.client_id, FL_CLIENT_ID_LEN);
            out.u.nack.seq = msg.u.flush.seq;
            out.u.nack.code = FL_CODE_UNAVAILABLE;
            out.u.nack.retry_after_ms = srv->nack_retry_ms;
            out.u.nack.reason = FL_SLICE("broker away");
            srv_send(conn, &out);
            break;
        }
        srv_apply(srv, conn, &msg.u.flush, arena);
        return; /* arena taken over */
    }
    case FL_WT_SIGNAL:
        srv_log(srv, conn, msg.type, msg.u.signal.doc, 0, false, 0);
        out.type = FL_WT_SIGNAL_OUT;
        out.u.signal.doc = msg.u.signal.doc;
        out.u.signal.user = FL_SLICE("tester");
        out.u.signal.body = msg.u.signal.body;
        for (srv_conn_t *c = srv->conns; c; c = c->next)
            if (c != conn && conn_subscribed(c, msg.u.signal.doc))
                srv_send(c, &out);
        break;
    case FL_WT_AUTH:
    case FL_WT_PING:
    default:
        srv_log(srv, conn, msg.type, FL_SLICE(""), 0, false, 0);
        break;
    }
    fl_arena_free(arena);
}

static int srv_cb(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in,
                  size_t len)
{
    srv_t *srv = wsi ? lws_context_user(lws_get_context(wsi)) : NULL;
    srv_conn_t *conn = user;
    char uri[64];

    switch (reason) {
    case LWS_CALLBACK_FILTER_PROTOCOL_CONNECTION:
        if (lws_hdr_copy(wsi, uri, sizeof uri, WSI_TOKEN_GET_URI) < 0 || strcmp(uri, "/v1/ws"))
            return -1;
        return 0;
    case LWS_CALLBACK_ESTABLISHED:
        memset(conn, 0, sizeof *conn);
        conn->wsi = wsi;
        conn->no = ++srv->nconns;
        conn->tokens = (float)srv->burst; /* full on a new connection */
        conn->tokens_us = srv_now_us();
        conn->next = srv->conns;
        srv->conns = conn;
        return 0;
    case LWS_CALLBACK_RECEIVE:
        if (conn->rxlen + len > conn->rxcap) {
            conn->rxcap = (conn->rxlen + len) * 2;
            conn->rx = realloc(conn->rx, conn->rxcap);
        }
        memcpy(conn->rx + conn->rxlen, in, len);
        conn->rxlen += len;
        if (lws_is_final_fragment(wsi) && lws_remaining_packet_payload(wsi) == 0) {
            size_t n = conn->rxlen;
            conn->rxlen = 0;
            srv_message(srv, conn, conn->rx, n, !lws_frame_is_binary(wsi));
        }
        return 0;
    case LWS_CALLBACK_SERVER_WRITEABLE: {
        sframe_t *frame;
        if (conn->drop) {
            shutdown(lws_get_socket_fd(wsi), SHUT_RDWR); /* no close frame */
            return -1;
        }
        if (conn->close_code) {
            lws_close_reason(wsi, (enum lws_close_status)conn->close_code,
                             (unsigned char *)"bye", 3);
            return -1;
        }
        if (!(frame = conn->head))
            return 0;
        if (!(conn->head = frame->next))
            conn->tail = NULL;
        if (lws_write(wsi, frame->buf + LWS_PRE, frame->len,
                      frame->text ? LWS_WRITE_TEXT : LWS_WRITE_BINARY) < (int)frame->len) {
            free(frame);
            return -1;
        }
        free(frame);
        if (conn->head)
            lws_callback_on_writable(wsi);
        return 0;
    }
    case LWS_CALLBACK_CLOSED:
        for (srv_conn_t **p = &srv->conns; *p; p = &(*p)->next)
            if (*p == conn) {
                *p = conn->next;
                break;
            }
        while (conn->head) {
            sframe_t *next = conn->head->next;
            free(conn->head);
            conn->head = next;
        }
        free(conn->rx);
        conn->rx = NULL;
        return 0;
    default:
        return lws_callback_http_dummy(wsi, reason, user, in, len);
    }
}

static srv_t *srv_start(void)
{
    struct lws_context_creation_info info;
    srv_t *srv = calloc(1, sizeof *srv);
    for (int g = 0; g < MAX_SRVS; g++)
        if (!g_srvs[g]) {
            g_srvs[g] = srv;
            break;
        }
    srv->store = srv;
    fl_gen_seed(&srv->gen, 42);
    srv->rate = 1000;
    srv->burst = 100;
    srv->protocols[0].name = "fake-gateway";
    srv->protocols[0].callback = srv_cb;
    srv->protocols[0].per_session_data_size = sizeof(srv_conn_t);
    memset(&info, 0, sizeof info);
    info.options = LWS_SERVER_OPTION_EXPLICIT_VHOSTS | LWS_SERVER_OPTION_DISABLE_IPV6;
    info.gid = -1;
    info.uid = -1;
    info.fd_limit_per_thread = 1024;
    info.user = srv;
    srv->context = lws_create_context(&info);
    info.port = 0;
    info.iface = "127.0.0.1";
    info.protocols = srv->protocols;
    info.vhost_name = "fake";
    srv->vhost = lws_create_vhost(srv->context, &info);
    srv->port = lws_get_vhost_listen_port(srv->vhost);
    return srv;
}

static void srv_free(srv_t *srv)
{
    lws_context_destroy(srv->context);
    while (srv->docs) {
        srv_doc_t *sd = srv->docs;
        srv->docs = sd->next;
        for (uint32_t i = 0; i < sd->nhist; i++)
            fl_arena_free(sd->hist[i].arena);
        free(sd->hist);
        fl_doc_free(sd->doc);
        free(sd);
    }
    for (int g = 0; g < MAX_SRVS; g++)
        if (g_srvs[g] == srv)
            g_srvs[g] = NULL;
    free(srv);
}

/* A second fake gateway in front of the same documents as srv (another
 * gateway of the same cluster). Freed before srv. */
static srv_t *srv_start_peer(srv_t *srv)
{
    srv_t *peer = srv_start();
    peer->store = srv->store;
    peer->rate = srv->rate;
    peer->burst = srv->burst;
    return peer;
}

static void srv_close_all(srv_t *srv, int code, bool drop)
{
    for (srv_conn_t *c = srv->conns; c; c = c->next) {
        c->close_code = code;
        c->drop = drop;
        lws_callback_on_writable(c->wsi);
    }
}

static void srv_garbage(srv_t *srv)
{
    for (srv_conn_t *c = srv->conns; c; c = c->next)
        srv_queue_raw(c, "\xc1\xc1\xc1", 3, false);
}

/* ---- the application side --------------------------------------------- */

typedef struct app_s {
    int status[6];
    int last_close;
    fl_client_state_t last_state;
    int welcomes, snapshots, deltas, errors, nacks, nacks_retrying, signals;
    int noutcomes;
    struct {
        char doc[64];
        uint64_t seq;
        uint16_t code;
        bool dup;
    } outcomes[512];
    bool free_on_outcome;
} app_t;

static void on_status(fl_client_t *client, void *opaque, fl_client_state_t state, int close_code)
{
    app_t *app = opaque;
    app->status[state]++;
    app->last_state = state;
    if (state == FL_CLIENT_BACKOFF || state == FL_CLIENT_STOPPED)
        app->last_close = close_code;
}

static void on_welcome(fl_client_t *client, void *opaque, const fl_wire_welcome_t *welcome)
{
    app_t *app = opaque;
    if (welcome->user.len == 6 && memcmp(welcome->user.ptr, "tester", 6) == 0)
        app->welcomes++;
}

static void on_snapshot(fl_client_t *client, void *opaque, fl_slice_t doc, uint64_t version,
                        const fl_value_t *state)
{
    ((app_t *)opaque)->snapshots++;
}

static void on_delta(fl_client_t *client, void *opaque, fl_slice_t doc,
                     const fl_wire_delta_t *delta)
{
    ((app_t *)opaque)->deltas++;
}

static void on_outcome(fl_client_t *client, void *opaque, const fl_outcome_t *outcome)
{
    app_t *app = opaque;
    if (app->noutcomes < 512) {
        int i = app->noutcomes++;
        size_t n = outcome->doc.len < 63 ? outcome->doc.len : 63;
        memcpy(app->outcomes[i].doc, outcome->doc.ptr, n);
        app->outcomes[i].doc[n] = 0;
        app->outcomes[i].seq = outcome->seq;
        app->outcomes[i].code = outcome->code;
        app->outcomes[i].dup = outcome->duplicate;
    }
    if (app->free_on_outcome)
        fl_client_free(client);
}

static void on_nack(fl_client_t *client, void *opaque, const fl_client_nack_t *nack)
{
    app_t *app = opaque;
    app->nacks++;
    if (nack->retrying)
        app->nacks_retrying++;
}

static void on_signal(fl_client_t *client, void *opaque, fl_slice_t doc, fl_slice_t from,
                      const fl_value_t *body)
{
    if (body->type == FL_INT && body->u.i == 77)
        ((app_t *)opaque)->signals++;
}

static void on_error(fl_client_t *client, void *opaque, int code, fl_slice_t reason)
{
    ((app_t *)opaque)->errors++;
}

static fl_client_opts_t opts_for(srv_t *srv, app_t *app, bool json)
{
    fl_client_opts_t opts;
    memset(&opts, 0, sizeof opts);
    opts.host = "127.0.0.1";
    opts.port = srv->port;
    opts.token = "test-token";
    opts.json = json;
    opts.backoff_initial_ms = 400;
    opts.backoff_max_ms = 2000;
    opts.cb.on_status = on_status;
    opts.cb.on_welcome = on_welcome;
    opts.cb.on_snapshot = on_snapshot;
    opts.cb.on_delta = on_delta;
    opts.cb.on_outcome = on_outcome;
    opts.cb.on_nack = on_nack;
    opts.cb.on_signal = on_signal;
    opts.cb.on_error = on_error;
    opts.opaque = app;
    return opts;
}

/* One turn of the client loop, then of every fake gateway (srv among them). */
static void pump(srv_t *srv, fl_client_ctx_t *ctx)
{
    (void)srv;
    fl_client_service(ctx, 1);
    for (int g = 0; g < MAX_SRVS; g++)
        if (g_srvs[g])
            lws_service(g_srvs[g]->context, -1);
}

/* A deadline for something that must happen (not a pace): long enough to
 * hold beside CPU hogs under ASan, where a connect and a welcome can take
 * seconds; a passing run never waits for it. */
#define WAIT_MS 30000

/* Drives both loops until cond holds or ms pass, then asserts cond. */
#define WAIT_FOR(cond, ms)                                                                         \
    do {                                                                                           \
        int64_t fl_dl_ = fl_test_now_ms() + (ms);                                                  \
        while (!(cond) && fl_test_now_ms() < fl_dl_)                                               \
            pump(srv, ctx);                                                                        \
        ASSERT_TRUE(cond);                                                                         \
    } while (0)

/* Drives both loops for ms (to show that something does NOT happen). */
static void pump_for(srv_t *srv, fl_client_ctx_t *ctx, int ms)
{
    int64_t dl = fl_test_now_ms() + ms;
    while (fl_test_now_ms() < dl)
        pump(srv, ctx);
}

static bool doc_equal(const fl_client_t *client, srv_t *srv, const char *doc)
{
    fl_slice_t id = {doc, strlen(doc)};
    const fl_doc_t *local = fl_client_doc(client, id);
    srv_doc_t *sd = srv_doc(srv, id);
    uint8_t a[FL_HASH_LEN], b[FL_HASH_LEN];
    if (!local || fl_doc_version(local) != fl_doc_version(sd->doc) ||
        memcmp(fl_doc_chain(local), fl_doc_chain(sd->doc), FL_HASH_LEN) != 0)
        return false;
    fl_doc_digest(local, a);
    fl_doc_digest(sd->doc, b);
    return memcmp(a, b, FL_HASH_LEN) == 0;
}

/* Sends one generated flush from the client; returns its seq. */
static uint64_t client_flush(fl_client_t *client, srv_t *srv, const char *doc)
{
    fl_arena_t *arena = fl_arena_new(4096);
    fl_flush_t flush;
    uint64_t seq = 0;
    int r;
    fl_gen_flush(&srv->gen, arena, doc, fl_client_id(client), 0, 4, &flush);
    r = fl_client_flush(client, flush.doc, flush.cmds, flush.ncmds,
                        flush.atomic ? FL_CLIENT_FLUSH_ATOMIC : 0, &seq);
    fl_arena_free(arena);
    return r == 0 ? seq : 0;
}

static int count_log(srv_t *srv, int from, int type)
{
    int n = 0;
    for (int i = from; i < srv->nlog; i++)
        n += srv->log[i].type == type;
    return n;
}

/* ---- tests ------------------------------------------------------------- */

static void test_welcome(void)
{
    char errstr[128];
    srv_t *srv = srv_start();
    fl_client_ctx_t *ctx = fl_client_ctx_new(errstr, sizeof errstr);
    app_t app = {0};
    fl_client_opts_t opts = opts_for(srv, &app, false);
    fl_client_t *client;
    fl_client_stats_t st;

    ASSERT_TRUE(ctx);
    ASSERT_GT(srv->port, 0);
    client = fl_client_new(ctx, &opts);
    ASSERT_TRUE(client);
    WAIT_FOR(app.welcomes == 1, WAIT_MS);
    ASSERT_EQ(fl_client_state(client), FL_CLIENT_READY);
    ASSERT_EQ(app.status[FL_CLIENT_CONNECTING], 1);
    ASSERT_EQ(app.status[FL_CLIENT_HELLO], 1);
    ASSERT_EQ(app.status[FL_CLIENT_READY], 1);
    ASSERT_EQ(srv->hellos, 1);
    fl_client_get_stats(client, &st);
    ASSERT_EQ(st.connects, 1);
    ASSERT_EQ(st.welcomes, 1);
    /* bad arguments fail synchronously */
    ASSERT_EQ(fl_client_subscribe(client, FL_SLICE("")), FL_CLIENT_EINVAL);
    ASSERT_EQ(fl_client_unsubscribe(client, FL_SLICE("t/none")), FL_CLIENT_ENOSUB);
    ASSERT_TRUE(fl_client_doc(client, FL_SLICE("t/none")) == NULL);
    /* graceful close: stopped, no reconnect */
    ASSERT_EQ(fl_client_close(client), 0);
    WAIT_FOR(fl_client_state(client) == FL_CLIENT_STOPPED, WAIT_MS);
    pump_for(srv, ctx, 100);
    ASSERT_EQ(srv->hellos, 1);
    ASSERT_TRUE(srv->conns == NULL);
    fl_client_free(client);
    fl_client_ctx_free(ctx);
    srv_free(srv);
}

static void run_snapshot_deltas(bool json)
{
    char errstr[128];
    srv_t *srv = srv_start();
    fl_client_ctx_t *ctx = fl_client_ctx_new(errstr, sizeof errstr);
    app_t app = {0};
    fl_client_opts_t opts = opts_for(srv, &app, json);
    fl_client_t *client;
    fl_client_stats_t st;
    uint32_t hist0;

    for (int i = 0; i < 20; i++)
        srv_write(srv, "t/doc");
    ASSERT_GT(fl_doc_version(srv_doc(srv, FL_SLICE("t/doc"))->doc), 0);
    client = fl_client_new(ctx, &opts);
    ASSERT_EQ(fl_client_subscribe(client, FL_SLICE("t/doc")), 0);
    WAIT_FOR(app.snapshots == 1, WAIT_MS);
    ASSERT_TRUE(doc_equal(client, srv, "t/doc"));
    /* the subscribe went out without have_version */
    ASSERT_EQ(count_log(srv, 0, FL_WT_SUBSCRIBE), 1);
    ASSERT_TRUE(!srv->log[1].has_version);

    hist0 = srv_doc(srv, FL_SLICE("t/doc"))->nhist;
    for (int i = 0; i < 30; i++)
        srv_write(srv, "t/doc");
    WAIT_FOR(app.deltas == (int)(srv_doc(srv, FL_SLICE("t/doc"))->nhist - hist0), WAIT_MS);
    ASSERT_TRUE(doc_equal(client, srv, "t/doc"));
    fl_client_get_stats(client, &st);
    ASSERT_EQ(st.resyncs, 0);
    ASSERT_EQ(app.snapshots, 1);
    ASSERT_EQ(app.errors, 0);
    fl_client_free(client);
    fl_client_ctx_free(ctx);
    srv_free(srv);
}

static void test_snapshot_then_deltas(void) { run_snapshot_deltas(false); }
static void test_snapshot_then_deltas_json(void) { run_snapshot_deltas(true); }

static void run_flush_outcomes(bool json)
{
    char errstr[128];
    srv_t *srv = srv_start();
    fl_client_ctx_t *ctx = fl_client_ctx_new(errstr, sizeof errstr);
    app_t app = {0};
    fl_client_opts_t opts = opts_for(srv, &app, json);
    fl_client_t *client = fl_client_new(ctx, &opts);
    uint64_t seqs[5];

    ASSERT_EQ(fl_client_subscribe(client, FL_SLICE("t/a")), 0);
    /* queued before the connection is ready */
    seqs[0] = client_flush(client, srv, "t/a");
    seqs[1] = client_flush(client, srv, "t/b");
    seqs[2] = client_flush(client, srv, "t/a");
    seqs[3] = client_flush(client, srv, "t/a");
    seqs[4] = client_flush(client, srv, "t/b");
    ASSERT_EQ(seqs[0], 1);
    ASSERT_EQ(seqs[1], 1);
    ASSERT_EQ(seqs[2], 2);
    ASSERT_EQ(seqs[3], 3);
    ASSERT_EQ(seqs[4], 2);
    ASSERT_EQ(fl_client_pending(client), 5);
    WAIT_FOR(fl_client_pending(client) == 0, WAIT_MS);
    ASSERT_EQ(app.noutcomes, 5);
    /* outcomes matched by doc + seq, in order per document */
    {
        uint64_t next_a = 1, next_b = 1;
        for (int i = 0; i < app.noutcomes; i++) {
            ASSERT_EQ(app.outcomes[i].code, FL_CODE_OK);
            ASSERT_TRUE(!app.outcomes[i].dup);
            if (strcmp(app.outcomes[i].doc, "t/a") == 0)
                ASSERT_EQ(app.outcomes[i].seq, next_a++);
            else
                ASSERT_EQ(app.outcomes[i].seq, next_b++);
        }
        ASSERT_EQ(next_a, 4);
        ASSERT_EQ(next_b, 3);
    }
    /* the subscribe was sent before the flushes, and the local copy follows */
    ASSERT_EQ(srv->log[1].type, FL_WT_SUBSCRIBE);
    WAIT_FOR(doc_equal(client, srv, "t/a"), WAIT_MS);
    fl_client_free(client);
    fl_client_ctx_free(ctx);
    srv_free(srv);
}

static void test_flush_outcomes(void) { run_flush_outcomes(false); }
static void test_flush_outcomes_json(void) { run_flush_outcomes(true); }

static void run_reconnect_resend(bool json)
{
    char errstr[128];
    srv_t *srv = srv_start();
    fl_client_ctx_t *ctx = fl_client_ctx_new(errstr, sizeof errstr);
    app_t app = {0};
    fl_client_opts_t opts = opts_for(srv, &app, json);
    fl_client_t *client = fl_client_new(ctx, &opts);
    fl_client_stats_t st;
    uint64_t local_version;
    int mark, nflush = 0;
    struct {
        const char *doc;
        uint64_t seq;
    } expect[] = {{"t/a", 3}, {"t/a", 4}, {"t/b", 1}};

    ASSERT_EQ(fl_client_subscribe(client, FL_SLICE("t/a")), 0);
    for (int i = 0; i < 5; i++)
        srv_write(srv, "t/a");
    client_flush(client, srv, "t/a");
    client_flush(client, srv, "t/a");
    WAIT_FOR(fl_client_pending(client) == 0 && doc_equal(client, srv, "t/a"), WAIT_MS);

    /* the next flushes are applied but their outcomes never arrive */
    srv->no_ack = true;
    mark = srv->nlog;
    ASSERT_EQ(client_flush(client, srv, "t/a"), 3);
    ASSERT_EQ(client_flush(client, srv, "t/a"), 4);
    ASSERT_EQ(client_flush(client, srv, "t/b"), 1);
    WAIT_FOR(count_log(srv, mark, FL_WT_FLUSH) == 3 && doc_equal(client, srv, "t/a"), WAIT_MS);
    ASSERT_EQ(fl_client_pending(client), 3);

    /* drop the connection; others write while the client is away */
    srv_close_all(srv, 0, true);
    WAIT_FOR(fl_client_state(client) != FL_CLIENT_READY, WAIT_MS);
    local_version = fl_doc_version(fl_client_doc(client, FL_SLICE("t/a")));
    for (int i = 0; i < 5; i++)
        srv_write(srv, "t/a");
    srv->no_ack = false;
    mark = srv->nlog;
    WAIT_FOR(fl_client_pending(client) == 0 && doc_equal(client, srv, "t/a"), WAIT_MS);
    ASSERT_EQ(app.status[FL_CLIENT_READY], 2);
    ASSERT_EQ(app.last_close, 0); /* a network error */

    /* hello, the resubscribe with have_version, then exactly the pending
     * flushes with their original seqs, in order */
    ASSERT_EQ(srv->log[mark].type, FL_WT_HELLO);
    ASSERT_EQ(srv->log[mark + 1].type, FL_WT_SUBSCRIBE);
    ASSERT_TRUE(srv->log[mark + 1].has_version);
    ASSERT_EQ(srv->log[mark + 1].have_version, local_version);
    for (int i = mark + 2; i < srv->nlog; i++) {
        if (srv->log[i].type != FL_WT_FLUSH)
            continue;
        ASSERT_LT(nflush, 3);
        ASSERT_STR_EQ(srv->log[i].doc, expect[nflush].doc);
        ASSERT_EQ(srv->log[i].seq, expect[nflush].seq);
        nflush++;
    }
    ASSERT_EQ(nflush, 3);
    /* the processor had them: answered as duplicates, counted as acknowledged */
    ASSERT_EQ(app.noutcomes, 5);
    for (int i = 2; i < 5; i++)
        ASSERT_TRUE(app.outcomes[i].dup);
    fl_client_get_stats(client, &st);
    ASSERT_EQ(st.resent, 3);
    ASSERT_EQ(st.resyncs, 0);
    /* seqs continue after the reconnect */
    ASSERT_EQ(client_flush(client, srv, "t/a"), 5);
    WAIT_FOR(fl_client_pending(client) == 0, WAIT_MS);
    fl_client_free(client);
    fl_client_ctx_free(ctx);
    srv_free(srv);
}

static void test_reconnect_resend(void) { run_reconnect_resend(false); }
static void test_reconnect_resend_json(void) { run_reconnect_resend(true); }

static void test_close_codes(void)
{
    char errstr[128];
    srv_t *srv = srv_start();
    fl_client_ctx_t *ctx = fl_client_ctx_new(errstr, sizeof errstr);
    app_t app = {0};
    fl_client_opts_t opts = opts_for(srv, &app, false);
    fl_client_t *client;
    int64_t t0;

    /* jittered to 4..8 s: "at once" and "backed off" stay apart however
     * late this thread runs beside CPU hogs */
    opts.backoff_initial_ms = 8000;
    opts.backoff_max_ms = 16000;
    client = fl_client_new(ctx, &opts);
    WAIT_FOR(app.welcomes == 1, WAIT_MS);

    /* 4200 slow_consumer: reconnect at once */
    srv_close_all(srv, FL_CLOSE_SLOW_CONSUMER, false);
    WAIT_FOR(app.status[FL_CLIENT_BACKOFF] == 1, WAIT_MS);
    ASSERT_EQ(app.last_close, FL_CLOSE_SLOW_CONSUMER);
    t0 = fl_test_now_ms();
    WAIT_FOR(app.welcomes == 2, WAIT_MS);
    ASSERT_LT(fl_test_now_ms() - t0, 4000);

    /* 4101 overloaded: back off (>= 4 s), then reconnect */
    srv_close_all(srv, FL_CLOSE_OVERLOADED, false);
    WAIT_FOR(app.status[FL_CLIENT_BACKOFF] == 2, WAIT_MS);
    ASSERT_EQ(app.last_close, FL_CLOSE_OVERLOADED);
    t0 = fl_test_now_ms();
    pump_for(srv, ctx, 200);
    ASSERT_EQ(srv->hellos, 2);
    WAIT_FOR(app.welcomes == 3, WAIT_MS);
    ASSERT_GE(fl_test_now_ms() - t0, 3990);

    /* 4001 unauthorized: stop */
    srv_close_all(srv, FL_CLOSE_UNAUTHORIZED, false);
    WAIT_FOR(fl_client_state(client) == FL_CLIENT_STOPPED, WAIT_MS);
    ASSERT_EQ(app.last_close, FL_CLOSE_UNAUTHORIZED);
    pump_for(srv, ctx, 300);
    ASSERT_EQ(srv->hellos, 3);
    ASSERT_EQ(fl_client_state(client), FL_CLIENT_STOPPED);
    /* a new token starts it again */
    ASSERT_EQ(fl_client_refresh_token(client, "fresh-token"), 0);
    WAIT_FOR(app.welcomes == 4, WAIT_MS);
    /* auth on an open connection */
    ASSERT_EQ(fl_client_refresh_token(client, "fresher-token"), 0);
    WAIT_FOR(count_log(srv, 0, FL_WT_AUTH) == 1, WAIT_MS);
    fl_client_free(client);
    fl_client_ctx_free(ctx);
    srv_free(srv);
}

static void test_nack_retry(void)
{
    char errstr[128];
    srv_t *srv = srv_start();
    fl_client_ctx_t *ctx = fl_client_ctx_new(errstr, sizeof errstr);
    app_t app = {0};
    fl_client_opts_t opts = opts_for(srv, &app, false);
    fl_client_t *client = fl_client_new(ctx, &opts);
    fl_client_stats_t st;

    WAIT_FOR(app.welcomes == 1, WAIT_MS);
    /* seq 1 makes the client known to the document's dedup table */
    ASSERT_EQ(client_flush(client, srv, "t/n"), 1);
    WAIT_FOR(fl_client_pending(client) == 0, WAIT_MS);
    /* seq 2 is nacked (retry after 50 ms); seq 3, already in flight, is
     * refused with gap and must wait for 2: both end ok, in order */
    srv->nack_next = 1;
    srv->nack_retry_ms = 50;
    ASSERT_EQ(client_flush(client, srv, "t/n"), 2);
    ASSERT_EQ(client_flush(client, srv, "t/n"), 3);
    WAIT_FOR(fl_client_pending(client) == 0, WAIT_MS);
    ASSERT_EQ(app.nacks, 1);
    ASSERT_EQ(app.nacks_retrying, 1);
    ASSERT_EQ(app.noutcomes, 3);
    for (int i = 0; i < 3; i++) {
        ASSERT_EQ(app.outcomes[i].seq, (uint64_t)i + 1);
        ASSERT_EQ(app.outcomes[i].code, FL_CODE_OK);
        ASSERT_TRUE(!app.outcomes[i].dup);
    }
    /* the server saw 1, 2 (nacked), 3 (gap), 2, 3 */
    {
        uint64_t want[] = {1, 2, 3, 2, 3};
        int k = 0;
        for (int i = 0; i < srv->nlog; i++)
            if (srv->log[i].type == FL_WT_FLUSH) {
                ASSERT_LT(k, 5);
                ASSERT_EQ(srv->log[i].seq, want[k]);
                k++;
            }
        ASSERT_EQ(k, 5);
    }
    fl_client_get_stats(client, &st);
    ASSERT_EQ(st.resent, 2);
    fl_client_free(client);
    fl_client_ctx_free(ctx);
    srv_free(srv);
}

static void test_ack_timeout_resend(void)
{
    char errstr[128];
    srv_t *srv = srv_start();
    fl_client_ctx_t *ctx = fl_client_ctx_new(errstr, sizeof errstr);
    app_t app = {0};
    fl_client_opts_t opts = opts_for(srv, &app, true);
    fl_client_t *client;
    fl_client_stats_t st;

    opts.ack_timeout_ms = 150;
    client = fl_client_new(ctx, &opts);
    WAIT_FOR(app.welcomes == 1, WAIT_MS);
    /* the outcome of seq 1 is lost (applied, never answered) */
    srv->no_ack = true;
    ASSERT_EQ(client_flush(client, srv, "t/t"), 1);
    WAIT_FOR(count_log(srv, 0, FL_WT_FLUSH) == 1, WAIT_MS);
    srv->no_ack = false;
    pump_for(srv, ctx, 50);
    ASSERT_EQ(count_log(srv, 0, FL_WT_FLUSH), 1); /* not before the timeout */
    /* resent on the same connection with the same seq: a duplicate answer */
    WAIT_FOR(fl_client_pending(client) == 0, WAIT_MS);
    ASSERT_EQ(count_log(srv, 0, FL_WT_FLUSH), 2);
    ASSERT_EQ(srv->log[srv->nlog - 1].seq, 1);
    ASSERT_EQ(app.noutcomes, 1);
    ASSERT_TRUE(app.outcomes[0].dup);
    fl_client_get_stats(client, &st);
    ASSERT_EQ(st.timeouts, 1);
    ASSERT_EQ(st.resent, 1);
    ASSERT_EQ(st.connects, 1);
    fl_client_free(client);
    fl_client_ctx_free(ctx);
    srv_free(srv);
}

static void test_pacing(void)
{
    char errstr[128];
    srv_t *srv = srv_start();
    fl_client_ctx_t *ctx = fl_client_ctx_new(errstr, sizeof errstr);
    app_t app = {0};
    fl_client_opts_t opts = opts_for(srv, &app, false);
    fl_client_t *client;
    int64_t t0, first = -1, last = -1;

    /* 500 ms a token, a burst of 5: the client keeps a margin (burst - 1
     * at once, 95% of the rate), so 4 go at once and 4 more take over 2 s.
     * Slow enough that "at once" and "paced" stay apart however late this
     * thread runs beside CPU hogs (at 50/s, "at once" meant < 100 ms). */
    srv->rate = 2;
    srv->burst = 5;
    client = fl_client_new(ctx, &opts);
    WAIT_FOR(app.welcomes == 1, WAIT_MS);
    t0 = fl_test_now_ms();
    for (int i = 0; i < 8; i++)
        client_flush(client, srv, "t/p");
    /* the burst goes at once (paced, the 4th would leave 1.5 s after the
     * 1st), the rest at the announced rate */
    WAIT_FOR(count_log(srv, 0, FL_WT_FLUSH) >= 4, WAIT_MS);
    first = fl_test_now_ms() - t0;
    ASSERT_LT(first, 1500);
    ASSERT_LT(count_log(srv, 0, FL_WT_FLUSH), 8);
    WAIT_FOR(fl_client_pending(client) == 0, WAIT_MS);
    last = fl_test_now_ms() - t0;
    ASSERT_GE(last, 1500); /* 4 flushes at under 2/s */
    ASSERT_EQ(app.nacks, 0);
    ASSERT_EQ(count_log(srv, 0, FL_WT_FLUSH), 8);
    fl_client_free(client);
    fl_client_ctx_free(ctx);
    srv_free(srv);
}

static void test_chain_mismatch_resync(void)
{
    char errstr[128];
    srv_t *srv = srv_start();
    fl_client_ctx_t *ctx = fl_client_ctx_new(errstr, sizeof errstr);
    app_t app = {0};
    fl_client_opts_t opts = opts_for(srv, &app, false);
    fl_client_t *client = fl_client_new(ctx, &opts);
    fl_client_stats_t st;
    int mark;

    for (int i = 0; i < 3; i++)
        srv_write(srv, "t/c");
    fl_client_subscribe(client, FL_SLICE("t/c"));
    WAIT_FOR(doc_equal(client, srv, "t/c"), WAIT_MS);
    mark = srv->nlog;
    srv->corrupt_next = true;
    do
        srv_write(srv, "t/c");
    while (srv->corrupt_next);
    WAIT_FOR(app.snapshots == 2 && doc_equal(client, srv, "t/c"), WAIT_MS);
    fl_client_get_stats(client, &st);
    ASSERT_EQ(st.resyncs, 1);
    ASSERT_EQ(app.errors, 1);
    ASSERT_EQ(srv->log[mark].type, FL_WT_UNSUBSCRIBE);
    ASSERT_EQ(srv->log[mark + 1].type, FL_WT_SUBSCRIBE);
    ASSERT_TRUE(!srv->log[mark + 1].has_version);
    /* and it keeps following */
    srv_write(srv, "t/c");
    srv_write(srv, "t/c");
    WAIT_FOR(doc_equal(client, srv, "t/c"), WAIT_MS);
    fl_client_free(client);
    fl_client_ctx_free(ctx);
    srv_free(srv);
}

static void test_bad_frame_reconnects(void)
{
    char errstr[128];
    srv_t *srv = srv_start();
    fl_client_ctx_t *ctx = fl_client_ctx_new(errstr, sizeof errstr);
    app_t app = {0};
    fl_client_opts_t opts = opts_for(srv, &app, false);
    fl_client_t *client;
    fl_client_stats_t st;

    opts.backoff_initial_ms = 20;
    client = fl_client_new(ctx, &opts);
    WAIT_FOR(app.welcomes == 1, WAIT_MS);
    srv_garbage(srv);
    WAIT_FOR(app.welcomes == 2, WAIT_MS);
    fl_client_get_stats(client, &st);
    ASSERT_EQ(st.bad_frames, 1);
    ASSERT_EQ(app.errors, 1);
    fl_client_free(client);
    fl_client_ctx_free(ctx);
    srv_free(srv);
}

static void test_signal(void)
{
    char errstr[128];
    srv_t *srv = srv_start();
    fl_client_ctx_t *ctx = fl_client_ctx_new(errstr, sizeof errstr);
    app_t app1 = {0}, app2 = {0};
    fl_client_opts_t o1 = opts_for(srv, &app1, false), o2 = opts_for(srv, &app2, true);
    fl_client_t *c1 = fl_client_new(ctx, &o1), *c2 = fl_client_new(ctx, &o2);
    fl_value_t body = fl_value_int(77);

    ASSERT_EQ(fl_client_signal(c1, FL_SLICE("t/s"), &body), FL_CLIENT_ENOTCONN);
    fl_client_subscribe(c1, FL_SLICE("t/s"));
    fl_client_subscribe(c2, FL_SLICE("t/s"));
    WAIT_FOR(app1.snapshots == 1 && app2.snapshots == 1, WAIT_MS);
    ASSERT_EQ(fl_client_signal(c1, FL_SLICE("t/s"), &body), 0);
    WAIT_FOR(app2.signals == 1, WAIT_MS);
    ASSERT_EQ(app1.signals, 0);
    fl_client_free(c1);
    fl_client_free(c2);
    fl_client_ctx_free(ctx);
    srv_free(srv);
}

static void test_many_clients(void)
{
    enum { N = 200 };
    char errstr[128];
    srv_t *srv = srv_start();
    fl_client_ctx_t *ctx = fl_client_ctx_new(errstr, sizeof errstr);
    static app_t apps[N];
    fl_client_t *clients[N];
    bool done = false;

    memset(apps, 0, sizeof apps);
    for (int i = 0; i < N; i++) {
        fl_client_opts_t opts = opts_for(srv, &apps[i], i % 2 == 1);
        ASSERT_TRUE(clients[i] = fl_client_new(ctx, &opts));
        fl_client_subscribe(clients[i], FL_SLICE("t/shared"));
        ASSERT_EQ(client_flush(clients[i], srv, "t/shared"), 1);
    }
    {
        /* 200 connections, hellos, snapshots and 200 deltas to each in one
         * thread under ASan: seconds on a quiet machine, far more beside
         * CPU hogs. */
        int64_t t0 = fl_test_now_ms(), dl = t0 + 240000;
        int left = N;
        uint64_t v = 0;
        while (!done && fl_test_now_ms() < dl) {
            pump(srv, ctx);
            /* digests only once every copy is at the fake gateway's version
             * (computed on every turn they starved the loop they wait for) */
            v = fl_doc_version(srv_doc(srv, FL_SLICE("t/shared"))->doc);
            done = true;
            for (int i = 0; i < N && done; i++) {
                const fl_doc_t *d = fl_client_doc(clients[i], FL_SLICE("t/shared"));
                done = fl_client_pending(clients[i]) == 0 && d && fl_doc_version(d) == v;
            }
            for (int i = 0; i < N && done; i++)
                done = doc_equal(clients[i], srv, "t/shared");
        }
        for (int i = 0; i < N; i++)
            left -= fl_client_pending(clients[i]) == 0 && doc_equal(clients[i], srv, "t/shared");
        printf("  %d clients converged in %lld ms (%d not)\n", N - left,
               (long long)(fl_test_now_ms() - t0), left);
        for (int i = 0, shown = 0; i < N && shown < 5; i++)
            if (fl_client_pending(clients[i]) != 0 || !doc_equal(clients[i], srv, "t/shared")) {
                const fl_doc_t *d = fl_client_doc(clients[i], FL_SLICE("t/shared"));
                printf("  client %d: %s, %u pending, version %llu (fake gateway's %llu), "
                       "outcomes %d, welcomes %d, snapshots %d, deltas %d\n",
                       i, fl_client_state_name(fl_client_state(clients[i])),
                       fl_client_pending(clients[i]),
                       d ? (unsigned long long)fl_doc_version(d) : 0ULL,
                       (unsigned long long)fl_doc_version(
                           srv_doc(srv, FL_SLICE("t/shared"))->doc),
                       apps[i].noutcomes, apps[i].welcomes, apps[i].snapshots, apps[i].deltas);
                shown++;
            }
    }
    ASSERT_TRUE(done);
    for (int i = 0; i < N; i++)
        ASSERT_EQ(apps[i].noutcomes, 1);
    /* freed in any order, some while connected */
    for (int i = 0; i < N; i += 2)
        fl_client_free(clients[i]);
    pump_for(srv, ctx, 50);
    fl_client_ctx_free(ctx); /* frees the rest */
    srv_free(srv);
}

static void test_free_in_callback(void)
{
    char errstr[128];
    srv_t *srv = srv_start();
    fl_client_ctx_t *ctx = fl_client_ctx_new(errstr, sizeof errstr);
    app_t app = {0};
    fl_client_opts_t opts = opts_for(srv, &app, false);
    fl_client_t *client = fl_client_new(ctx, &opts);

    app.free_on_outcome = true;
    fl_client_subscribe(client, FL_SLICE("t/f"));
    client_flush(client, srv, "t/f");
    client_flush(client, srv, "t/f");
    WAIT_FOR(app.noutcomes == 1 && srv->conns == NULL, WAIT_MS);
    pump_for(srv, ctx, 50);
    ASSERT_EQ(app.noutcomes, 1); /* no callback after the free */
    /* a client that never connected, and NULLs */
    opts.port = 1; /* nothing listens there */
    client = fl_client_new(ctx, &opts);
    ASSERT_TRUE(client);
    pump_for(srv, ctx, 20);
    fl_client_free(client);
    fl_client_free(NULL);
    fl_client_ctx_free(NULL);
    fl_client_ctx_free(ctx);
    srv_free(srv);
}

/* Checks srv's log from `from`: a hello, a subscribe of doc with
 * have_version, then exactly the flushes want[0..n) (doc, seq) in order. */
static void check_resume(srv_t *srv, int from, const char *doc, uint64_t have_version,
                         const char *const *docs, const uint64_t *seqs, int n)
{
    int k = 0;
    ASSERT_EQ(srv->log[from].type, FL_WT_HELLO);
    ASSERT_EQ(srv->log[from + 1].type, FL_WT_SUBSCRIBE);
    ASSERT_STR_EQ(srv->log[from + 1].doc, doc);
    ASSERT_TRUE(srv->log[from + 1].has_version);
    ASSERT_EQ(srv->log[from + 1].have_version, have_version);
    for (int i = from + 2; i < srv->nlog; i++) {
        if (srv->log[i].type != FL_WT_FLUSH)
            continue;
        ASSERT_LT(k, n);
        ASSERT_STR_EQ(srv->log[i].doc, docs[k]);
        ASSERT_EQ(srv->log[i].seq, seqs[k]);
        k++;
    }
    ASSERT_EQ(k, n);
}

/* Two gateways over the same documents. A drains (4201 going_away) while
 * three flushes are applied but unacknowledged: the client goes to B at
 * once (not back to A, which still listens), resubscribes with have_version
 * and resends exactly those three with their original seqs (answered as
 * duplicates). Then B dies without a close frame (a network error) with two
 * more unacknowledged: round robin brings the client back to A, same
 * resume. */
static void test_failover(void)
{
    char errstr[128], a_addr[32], b_addr[32];
    srv_t *srv = srv_start();
    srv_t *peer = srv_start_peer(srv);
    fl_client_ctx_t *ctx = fl_client_ctx_new(errstr, sizeof errstr);
    app_t app = {0};
    fl_client_opts_t opts = opts_for(srv, &app, false);
    const char *gws[] = {a_addr, b_addr, NULL};
    fl_client_t *client;
    fl_client_stats_t st;
    uint64_t local_version;
    int mark, port = 0;
    int64_t t0;

    snprintf(a_addr, sizeof a_addr, "127.0.0.1:%d", srv->port);
    snprintf(b_addr, sizeof b_addr, "127.0.0.1:%d", peer->port);
    opts.host = NULL;
    opts.port = 0;
    opts.gateways = gws;
    /* a back-off of 30..60 s: "at once" is then far from it even on a busy
     * machine, and any back-off fails the WAIT_FORs below */
    opts.backoff_initial_ms = opts.backoff_max_ms = 60000;
    ASSERT_TRUE(client = fl_client_new(ctx, &opts));
    ASSERT_STR_EQ(fl_client_gateway(client, &port), "127.0.0.1");
    ASSERT_EQ(port, srv->port);
    ASSERT_EQ(fl_client_subscribe(client, FL_SLICE("t/a")), 0);
    for (int i = 0; i < 3; i++)
        srv_write(srv, "t/a");
    ASSERT_EQ(client_flush(client, srv, "t/a"), 1);
    ASSERT_EQ(client_flush(client, srv, "t/a"), 2);
    WAIT_FOR(fl_client_pending(client) == 0 && doc_equal(client, srv, "t/a"), WAIT_MS);
    ASSERT_EQ(srv->hellos, 1);
    ASSERT_EQ(peer->hellos, 0);

    /* A applies three flushes and answers none, then drains */
    srv->no_ack = true;
    mark = srv->nlog;
    ASSERT_EQ(client_flush(client, srv, "t/a"), 3);
    ASSERT_EQ(client_flush(client, srv, "t/a"), 4);
    ASSERT_EQ(client_flush(client, srv, "t/b"), 1);
    WAIT_FOR(count_log(srv, mark, FL_WT_FLUSH) == 3 && doc_equal(client, srv, "t/a"), WAIT_MS);
    ASSERT_EQ(fl_client_pending(client), 3);
    srv_close_all(srv, FL_CLOSE_GOING_AWAY, false);
    WAIT_FOR(app.status[FL_CLIENT_BACKOFF] == 1, WAIT_MS);
    t0 = fl_test_now_ms();
    ASSERT_EQ(app.last_close, FL_CLOSE_GOING_AWAY);
    local_version = fl_doc_version(fl_client_doc(client, FL_SLICE("t/a")));
    WAIT_FOR(fl_client_pending(client) == 0 && doc_equal(client, peer, "t/a"), WAIT_MS);
    ASSERT_LT(fl_test_now_ms() - t0, 30000); /* at once: a back-off would be 30..60 s */
    ASSERT_EQ(srv->hellos, 1); /* A was not tried again */
    ASSERT_EQ(peer->hellos, 1);
    {
        const char *docs[] = {"t/a", "t/a", "t/b"};
        const uint64_t seqs[] = {3, 4, 1};
        check_resume(peer, 0, "t/a", local_version, docs, seqs, 3);
    }
    ASSERT_EQ(app.noutcomes, 5);
    for (int i = 2; i < 5; i++)
        ASSERT_TRUE(app.outcomes[i].dup);
    ASSERT_STR_EQ(fl_client_gateway(client, &port), "127.0.0.1");
    ASSERT_EQ(port, peer->port);
    fl_client_get_stats(client, &st);
    ASSERT_EQ(st.failovers, 1);
    ASSERT_EQ(st.resent, 3);

    /* others write through A; B applies two more unanswered, then dies */
    for (int i = 0; i < 3; i++)
        srv_write(srv, "t/a");
    srv->no_ack = false;
    peer->no_ack = true;
    mark = peer->nlog;
    ASSERT_EQ(client_flush(client, srv, "t/a"), 5);
    ASSERT_EQ(client_flush(client, srv, "t/b"), 2);
    WAIT_FOR(count_log(peer, mark, FL_WT_FLUSH) == 2 && doc_equal(client, peer, "t/a"), WAIT_MS);
    local_version = fl_doc_version(fl_client_doc(client, FL_SLICE("t/a")));
    mark = srv->nlog;
    srv_close_all(peer, 0, true);
    WAIT_FOR(fl_client_pending(client) == 0 && doc_equal(client, srv, "t/a"), WAIT_MS);
    ASSERT_EQ(app.last_close, 0); /* a network error */
    ASSERT_EQ(srv->hellos, 2);
    ASSERT_EQ(peer->hellos, 1);
    {
        const char *docs[] = {"t/a", "t/b"};
        const uint64_t seqs[] = {5, 2};
        check_resume(srv, mark, "t/a", local_version, docs, seqs, 2);
    }
    ASSERT_EQ(app.noutcomes, 7);
    ASSERT_TRUE(app.outcomes[5].dup && app.outcomes[6].dup);
    fl_client_get_stats(client, &st);
    ASSERT_EQ(st.failovers, 2);
    ASSERT_EQ(st.resent, 5);
    ASSERT_EQ(st.resyncs, 0);
    ASSERT_EQ(app.status[FL_CLIENT_READY], 3);
    /* seqs continue */
    ASSERT_EQ(client_flush(client, srv, "t/a"), 6);
    WAIT_FOR(fl_client_pending(client) == 0, WAIT_MS);
    fl_client_free(client);
    fl_client_ctx_free(ctx);
    srv_free(peer);
    srv_free(srv);
}

/* A first address where nothing listens: the connection failure moves to
 * the next address at once. Bad address lists are refused by
 * fl_client_new. */
static void test_failover_refused_and_bad_lists(void)
{
    char errstr[128], b_addr[32];
    srv_t *srv = srv_start();
    fl_client_ctx_t *ctx = fl_client_ctx_new(errstr, sizeof errstr);
    app_t app = {0};
    fl_client_opts_t opts = opts_for(srv, &app, true);
    const char *gws[] = {"127.0.0.1:1", b_addr, NULL};
    static const char *const bad[][2] = {{"127.0.0.1", NULL}, {"127.0.0.1:0", NULL},
                                         {":80", NULL},       {"h:80x", NULL},
                                         {"h:", NULL},        {"[::1:80", NULL},
                                         {"::1:80", NULL},    {"h:70000", NULL}};
    fl_client_t *client;
    fl_client_stats_t st;
    int port = 0;
    int64_t t0;

    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        fl_client_opts_t o = opts;
        o.gateways = bad[i];
        ASSERT_TRUE(fl_client_new(ctx, &o) == NULL);
    }
    {
        static const char *const v6[] = {"[::1]:9", NULL};
        fl_client_opts_t o = opts;
        o.gateways = v6;
        o.host = NULL;
        ASSERT_TRUE(client = fl_client_new(ctx, &o));
        ASSERT_STR_EQ(fl_client_gateway(client, &port), "::1");
        ASSERT_EQ(port, 9);
        fl_client_free(client);
        o.gateways = NULL; /* neither a list nor host and port */
        ASSERT_TRUE(fl_client_new(ctx, &o) == NULL);
    }

    snprintf(b_addr, sizeof b_addr, "127.0.0.1:%d", srv->port);
    opts.gateways = gws; /* host and port are ignored */
    opts.port = 1;
    opts.backoff_initial_ms = opts.backoff_max_ms = 60000; /* a back-off: 30..60 s */
    t0 = fl_test_now_ms();
    ASSERT_TRUE(client = fl_client_new(ctx, &opts));
    ASSERT_EQ(client_flush(client, srv, "t/r"), 1);
    WAIT_FOR(app.welcomes == 1 && fl_client_pending(client) == 0, WAIT_MS);
    ASSERT_LT(fl_test_now_ms() - t0, 30000); /* no back-off before the second address */
    fl_client_get_stats(client, &st);
    ASSERT_EQ(st.connects, 2);
    ASSERT_EQ(st.failovers, 1);
    ASSERT_EQ(app.status[FL_CLIENT_BACKOFF], 1);
    fl_client_free(client);
    fl_client_ctx_free(ctx);
    srv_free(srv);
}

/* A paced client sends three bursts' worth of flushes to a gateway that
 * enforces the announced bucket exactly as the real one does: none is
 * refused (pacing at exactly rate and burst was, now and then). */
static void run_pacing_margin(uint32_t rate, uint32_t burst)
{
    char errstr[128];
    srv_t *srv = srv_start();
    fl_client_ctx_t *ctx = fl_client_ctx_new(errstr, sizeof errstr);
    app_t app = {0};
    fl_client_opts_t opts = opts_for(srv, &app, false);
    fl_client_t *client;
    int n = (int)burst * 3;

    srv->rate = rate;
    srv->burst = burst;
    srv->strict_rate = true;
    client = fl_client_new(ctx, &opts);
    fl_client_subscribe(client, FL_SLICE("t/m"));
    WAIT_FOR(app.welcomes == 1 && app.snapshots == 1, WAIT_MS);
    for (int i = 0; i < n; i++)
        ASSERT_EQ(client_flush(client, srv, "t/m"), (uint64_t)i + 1);
    WAIT_FOR(fl_client_pending(client) == 0, 4 * WAIT_MS);
    ASSERT_EQ(srv->rate_nacks, 0);
    ASSERT_EQ(app.nacks, 0);
    ASSERT_EQ(count_log(srv, 0, FL_WT_FLUSH), n);
    ASSERT_EQ(app.noutcomes, n);
    for (int i = 0; i < n; i++) {
        ASSERT_EQ(app.outcomes[i].seq, (uint64_t)i + 1);
        ASSERT_NE(app.outcomes[i].code, FL_CODE_GAP);
    }
    WAIT_FOR(doc_equal(client, srv, "t/m"), WAIT_MS);
    fl_client_free(client);
    fl_client_ctx_free(ctx);
    srv_free(srv);
}

static void test_pacing_margin(void)
{
    run_pacing_margin(100, 10);
    run_pacing_margin(1000, 20);
    run_pacing_margin(200, 1); /* burst 1: the margin is the rate's alone */
}

/* 100 unpaced flushes of one document against the strict bucket (20/s,
 * burst 10): most are refused in the first wave (the bucket counts
 * arrivals as this thread's loop reads them: a slow rate keeps the refill
 * small while a busy machine spreads the wave over a second or more). The refused backlog is
 * then resent one at a time in seq order, each once the previous one is
 * answered, so each refused flush meets at most one more refusal (its
 * resend may arrive before the bucket's next token; the retry_after it
 * then gets is the bucket's own time to that token): in all, at most
 * twice the flushes refused, plus a few for float rounding in the
 * bucket. Before, every refused flush was due again after ~1/rate and all
 * went at once: thousands of nacks. */
static void test_nack_no_storm(void)
{
    enum { N = 100 };
    char errstr[128];
    srv_t *srv = srv_start();
    fl_client_ctx_t *ctx = fl_client_ctx_new(errstr, sizeof errstr);
    app_t app = {0};
    fl_client_opts_t opts = opts_for(srv, &app, false);
    fl_client_t *client;
    fl_client_stats_t st;

    srv->rate = 20;
    srv->burst = 10;
    srv->strict_rate = true;
    opts.no_pacing = true;
    client = fl_client_new(ctx, &opts);
    fl_client_subscribe(client, FL_SLICE("t/r"));
    WAIT_FOR(app.welcomes == 1 && app.snapshots == 1, WAIT_MS);
    for (int i = 0; i < N; i++)
        ASSERT_EQ(client_flush(client, srv, "t/r"), (uint64_t)i + 1);
    WAIT_FOR(fl_client_pending(client) == 0, 4 * WAIT_MS); /* ~5 s at 20/s */
    fl_client_get_stats(client, &st);
    printf("  %d flushes: %d refused once, %d nacks in all, %d flush frames, %llu resent\n", N,
           srv->rate_refused, srv->rate_nacks, count_log(srv, 0, FL_WT_FLUSH),
           (unsigned long long)st.resent);
    /* all applied once, in seq order (a generated atomic flush may end
     * aborted: applied as a whole refusal, still in order) */
    ASSERT_EQ(app.noutcomes, N);
    for (int i = 0; i < N; i++) {
        ASSERT_EQ(app.outcomes[i].seq, (uint64_t)i + 1);
        ASSERT_NE(app.outcomes[i].code, FL_CODE_GAP);
        ASSERT_TRUE(!app.outcomes[i].dup);
    }
    WAIT_FOR(doc_equal(client, srv, "t/r"), WAIT_MS);
    /* the first wave refused most of the flood (the bucket held 10) */
    ASSERT_GE(srv->rate_refused, N / 2);
    ASSERT_EQ(app.nacks, srv->rate_nacks);
    ASSERT_EQ(app.nacks_retrying, app.nacks);
    /* no storm: at most two refusals per refused flush, plus rounding */
    ASSERT_LE(srv->rate_nacks, 2 * srv->rate_refused + 5);
    fl_client_free(client);
    fl_client_ctx_free(ctx);
    srv_free(srv);
}

int main(void)
{
    lws_set_log_level(0, NULL);
    RUN(test_welcome);
    RUN(test_snapshot_then_deltas);
    RUN(test_snapshot_then_deltas_json);
    RUN(test_flush_outcomes);
    RUN(test_flush_outcomes_json);
    RUN(test_reconnect_resend);
    RUN(test_reconnect_resend_json);
    RUN(test_close_codes);
    RUN(test_nack_retry);
    RUN(test_ack_timeout_resend);
    RUN(test_pacing);
    RUN(test_chain_mismatch_resync);
    RUN(test_bad_frame_reconnects);
    RUN(test_signal);
    RUN(test_many_clients);
    RUN(test_free_in_callback);
    RUN(test_failover);
    RUN(test_failover_refused_and_bad_lists);
    RUN(test_pacing_margin);
    RUN(test_nack_no_storm);
    return fl_test_done();
}
