/* SPDX-License-Identifier: Apache-2.0 */
/*
 * gw_conn: one WebSocket client. The connection state lives in the lws
 * per-session data; it is registered as an origin (the "origin" of its
 * flush records) so outcomes find their way back through its origin
 * callbacks, and subscribes to documents as a gw_subscriber_t whose send
 * callback queues on it.
 *
 * Receiving: fragments are reassembled up to max.frame, then the frame is
 * decoded (binary = msgpack, text = JSON) and answered in the same form:
 * welcome, pong, error, nack, and a flush's outcome (its record's origin
 * carries the form, gw_origin_tag). Pushes (catch-ups, deltas, signals,
 * changed) use the form of the latest hello. Until `hello` (or a valid
 * Authorization header at the upgrade) anything else is refused with
 * unauthorized and close 4001. A flush frame that cannot be decoded is
 * refused with a nack naming whatever of doc, client_id and seq it holds.
 *
 * Tokens: hello, auth and the upgrade header are checked with the key
 * set's one leeway (jwt.leeway); the connection is closed with 4004 when
 * the gateway's clock reaches exp + leeway, the moment the same token would
 * stop passing the check. welcome announces exp and leeway.
 *
 * Memory: an idle authenticated connection owns no heap memory. Its
 * rights are a shared, interned gw_grants_t (one per distinct sub and
 * prefixes, not a 16.7 KB fl_claims_t each); a message that arrives in one
 * fragment is decoded in place from lws's buffer (the reassembly buffer
 * exists only while a message is split, and goes after it); the send ring
 * starts in GW_QINLINE slots inside the connection.
 *
 * Ordering: when a flush cannot be published, later seqs of its (doc,
 * client_id) are nacked unavailable until that seq itself comes again and
 * its delivery is confirmed (gw_block_t), so the processor never sees
 * seq + 1 before seq.
 *
 * Sending: a ring of shared, refcounted frames bounded in bytes; a client
 * whose queue would pass send.queue.bytes is closed with 4200 (never
 * silently skipped). Closing goes through the writable callback: the
 * queued frames first when asked (an error before its close), then
 * lws_close_reason and -1; a timeout backs it up for stuck sockets.
 *
 * @locality lws service thread.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <librdkafka/rdkafka.h>

#include "flushline/clock.h"
#include "flushline/frag.h"
#include "flushline/log.h"
#include "gw_conn.h"
#include "gw_heads.h"

#define MAX_BAD_FRAMES 16 /* undecodable frames before close 4000 */

static const gw_subscriber_ops_t sub_ops;

static void count_close(gw_svc_t *svc, uint16_t code)
{
    char name[8];
    long i;
    snprintf(name, sizeof name, "%u", code);
    if ((i = fl_metric_vec_index(svc->m->closes, name)) >= 0)
        fl_counter_inc(fl_metric_vec_counter(svc->m->closes, (size_t)i));
}

/* The peer address, for log lines only (not kept per connection). */
static const char *peer(gw_conn_t *conn, char *buf, size_t size)
{
    buf[0] = '\0';
    if (conn->wsi)
        lws_get_peer_simple(conn->wsi, buf, size);
    return buf;
}

/* ---- sending ----------------------------------------------------------------- */

/* Back to the inline slots once the heap ring is empty (idle costs nothing). */
static void queue_shrink(gw_conn_t *conn)
{
    if (conn->qcount == 0 && conn->q != conn->qinline) {
        free(conn->q);
        conn->q = conn->qinline;
        conn->qcap = GW_QINLINE;
        conn->qhead = 0;
    }
}

static void queue_clear(gw_conn_t *conn)
{
    while (conn->qcount) {
        gw_buf_unref(conn->q[conn->qhead]);
        conn->qhead = (conn->qhead + 1) % conn->qcap;
        conn->qcount--;
    }
    conn->qbytes = 0;
    queue_shrink(conn);
}

int gw_conn_send(gw_conn_t *conn, gw_buf_t *buf)
{
    gw_svc_t *svc = conn->svc;
    char pb[64];
    if (!buf || conn->closing)
        return -1;
    /* One frame always fits an empty queue (a snapshot may be big). */
    if (conn->qcount > 0 && conn->qbytes + buf->len > (size_t)svc->cfg->send_queue_bytes) {
        fl_counter_inc(svc->m->slow_consumers);
        fl_info("conn %llu (%s): send queue over %lld bytes, closing as slow consumer",
                (unsigned long long)conn->o.id, peer(conn, pb, sizeof pb),
                (long long)svc->cfg->send_queue_bytes);
        gw_conn_close(conn, FL_CLOSE_SLOW_CONSUMER, "send queue full: resync", false);
        return -1;
    }
    if (conn->qcount == conn->qcap) {
        uint32_t cap = conn->qcap * 2, i;
        gw_buf_t **q = malloc(cap * sizeof *q);
        if (!q) {
            gw_conn_close(conn, FL_CLOSE_INTERNAL, "out of memory", false);
            return -1;
        }
        for (i = 0; i < conn->qcount; i++)
            q[i] = conn->q[(conn->qhead + i) % conn->qcap];
        if (conn->q != conn->qinline)
            free(conn->q);
        conn->q = q;
        conn->qcap = cap;
        conn->qhead = 0;
    }
    buf->refs++;
    conn->q[(conn->qhead + conn->qcount) % conn->qcap] = buf;
    conn->qcount++;
    conn->qbytes += buf->len;
    lws_callback_on_writable(conn->wsi);
    return 0;
}

static int send_msg(gw_conn_t *conn, const fl_wire_msg_t *msg, fl_wire_form_t form)
{
    gw_buf_t *buf = gw_buf_encode(msg, form);
    int rc;
    if (!buf)
        return -1;
    rc = gw_conn_send(conn, buf);
    gw_buf_unref(buf);
    return rc;
}

static void send_error(gw_conn_t *conn, fl_wire_form_t form, uint16_t code, const char *reason)
{
    fl_wire_msg_t msg;
    memset(&msg, 0, sizeof msg);
    msg.type = FL_WT_ERROR;
    msg.u.error.code = code;
    msg.u.error.reason = (fl_slice_t){reason, strnlen(reason, 1024)};
    gw_metrics_count_code(conn->svc->m->errors, code);
    send_msg(conn, &msg, form);
}

/* Answers a flush (or a subscribe, signal: flush NULL) by nack. */
static void nack(gw_conn_t *conn, fl_wire_form_t form, const fl_flush_t *flush, fl_slice_t doc,
                 uint16_t code, uint32_t retry_after_ms, const char *reason)
{
    fl_wire_msg_t msg;
    memset(&msg, 0, sizeof msg);
    msg.type = FL_WT_NACK;
    msg.u.nack.doc = doc;
    if (flush) {
        msg.u.nack.has_client_id = msg.u.nack.has_seq = true;
        memcpy(msg.u.nack.client_id, flush->client_id, FL_CLIENT_ID_LEN);
        msg.u.nack.seq = flush->seq;
    }
    msg.u.nack.code = code;
    msg.u.nack.has_retry = retry_after_ms > 0;
    msg.u.nack.retry_after_ms = retry_after_ms;
    msg.u.nack.reason = (fl_slice_t){reason, strnlen(reason, 1024)};
    gw_metrics_count_code(conn->svc->m->nacks, code);
    send_msg(conn, &msg, form);
}

void gw_conn_close(gw_conn_t *conn, uint16_t code, const char *reason, bool drain)
{
    char pb[64];
    if (conn->closing)
        return;
    conn->closing = true;
    conn->drain_close = drain;
    conn->close_code = code;
    conn->close_reason = reason;
    if (!drain)
        queue_clear(conn);
    lws_sul_cancel(&conn->sul);
    count_close(conn->svc, code);
    fl_debug("conn %llu (%s): closing %u %s", (unsigned long long)conn->o.id,
             peer(conn, pb, sizeof pb), code, reason);
    lws_callback_on_writable(conn->wsi);
    /* a client that stops reading cannot hold the close up */
    lws_set_timeout(conn->wsi, PENDING_TIMEOUT_USER_OK, 5);
}

/* Pops the head frame of the queue (counted as sent). */
static void queue_pop(gw_conn_t *conn)
{
    gw_buf_t *buf = conn->q[conn->qhead];
    conn->qhead = (conn->qhead + 1) % conn->qcap;
    conn->qcount--;
    conn->qbytes -= buf->len;
    if (buf->src_ms > 0)
        fl_histogram_observe(conn->svc->m->write_ms, (double)(fl_clock_wall_ms() - buf->src_ms));
    fl_counter_inc(conn->svc->m->frames_out);
    fl_counter_add(conn->svc->m->bytes_out, buf->len);
    gw_buf_unref(buf);
}

/* Writes queued frames. Each buffer holds its whole frame (header built
 * once), so the frames are written raw, and several queued ones are copied
 * into one write: a delta fanned out to many connections costs one send
 * per connection per turn, not one per frame. lws keeps what the socket
 * does not take and reports the pipe choked until it is out. */
static int on_writeable(gw_conn_t *conn)
{
    gw_svc_t *svc = conn->svc;
    while (conn->qcount > 0 && !lws_send_pipe_choked(conn->wsi)) {
        gw_buf_t *buf = conn->q[conn->qhead];
        size_t flen = GW_BUF_FRAME_LEN(buf);
        if (conn->qcount == 1 || flen >= GW_WBATCH / 2) {
            if (lws_write(conn->wsi, GW_BUF_FRAME(buf), flen, LWS_WRITE_RAW) < (int)flen)
                return -1;
            queue_pop(conn);
        } else {
            unsigned char *out = svc->wbatch + LWS_PRE;
            size_t used = 0;
            while (conn->qcount > 0) {
                buf = conn->q[conn->qhead];
                flen = GW_BUF_FRAME_LEN(buf);
                if (used + flen > GW_WBATCH)
                    break;
                memcpy(out + used, GW_BUF_FRAME(buf), flen);
                used += flen;
                queue_pop(conn);
            }
            if (lws_write(conn->wsi, out, used, LWS_WRITE_RAW) < (int)used)
                return -1;
        }
    }
    queue_shrink(conn);
    if (conn->closing && conn->qcount == 0) {
        lws_close_reason(conn->wsi, (enum lws_close_status)conn->close_code,
                         (unsigned char *)conn->close_reason, strlen(conn->close_reason));
        return -1;
    }
    if (conn->qcount > 0 || conn->closing)
        lws_callback_on_writable(conn->wsi);
    return 0;
}

/* ---- auth ------------------------------------------------------------------------ */

static void on_timer(lws_sorted_usec_list_t *sul)
{
    gw_conn_t *conn = lws_container_of(sul, gw_conn_t, sul);
    if (!conn->authed) {
        send_error(conn, conn->sub.form, FL_CODE_UNAUTHORIZED, "no hello in time");
        gw_conn_close(conn, FL_CLOSE_UNAUTHORIZED, "no token in time", true);
    } else {
        send_error(conn, conn->sub.form, FL_CODE_TOKEN_EXPIRED, "token expired");
        gw_conn_close(conn, FL_CLOSE_TOKEN_EXPIRED, "token expired", true);
    }
}

static void send_welcome(gw_conn_t *conn, fl_wire_form_t form)
{
    const gw_config_t *cfg = conn->svc->cfg;
    fl_wire_msg_t msg;
    memset(&msg, 0, sizeof msg);
    msg.type = FL_WT_WELCOME;
    msg.u.welcome.max_frame = (uint32_t)cfg->max_frame;
    msg.u.welcome.max_commands = (uint32_t)cfg->max_commands;
    msg.u.welcome.max_subscriptions = (uint32_t)cfg->max_subscriptions;
    msg.u.welcome.rate = (uint32_t)cfg->rate;
    msg.u.welcome.burst = (uint32_t)cfg->burst;
    msg.u.welcome.user = conn->grants->sub;
    msg.u.welcome.server = FL_SLICE(GW_SERVER_NAME);
    msg.u.welcome.has_exp = msg.u.welcome.has_leeway = true;
    msg.u.welcome.exp = conn->exp;
    msg.u.welcome.leeway = (uint32_t)cfg->jwt_leeway;
    send_msg(conn, &msg, form);
}

/* Verifies a token for hello, auth or the upgrade header. The claims are
 * read into the gateway's one scratch fl_claims_t and kept as shared grants.
 * 0, or a negative fl_code_t after answering and closing. */
static int authenticate(gw_conn_t *conn, fl_slice_t token, fl_wire_form_t form)
{
    gw_svc_t *svc = conn->svc;
    fl_claims_t *claims = svc->claims;
    gw_grants_t *grants = NULL;
    char errstr[256], pb[64];
    int64_t now = fl_clock_wall_s();
    int rc;

    rc = fl_jwt_verify(svc->keys, token.ptr, token.len, now, claims, errstr, sizeof errstr);
    if (rc == 0 && conn->grants && strcmp(conn->grants->sub.ptr, claims->sub) != 0) {
        rc = -FL_CODE_UNAUTHORIZED;
        snprintf(errstr, sizeof errstr, "a refreshed token must keep the same sub");
    }
    if (rc != 0) {
        uint16_t code = rc == -FL_CODE_TOKEN_EXPIRED ? FL_CODE_TOKEN_EXPIRED : FL_CODE_UNAUTHORIZED;
        fl_counter_inc(svc->m->auth_failures);
        fl_info("conn %llu (%s): token refused: %s", (unsigned long long)conn->o.id,
                peer(conn, pb, sizeof pb), errstr);
        send_error(conn, form, code, errstr);
        gw_conn_close(conn,
                      code == FL_CODE_TOKEN_EXPIRED ? FL_CLOSE_TOKEN_EXPIRED
                                                    : FL_CLOSE_UNAUTHORIZED,
                      fl_code_name(code), true);
        return -code;
    }
    if (!(grants = gw_grants_get(svc->grants, claims))) {
        gw_conn_close(conn, FL_CLOSE_INTERNAL, "out of memory", false);
        return -FL_CODE_INTERNAL;
    }
    gw_grants_unref(svc->grants, conn->grants);
    conn->grants = grants;
    conn->exp = claims->exp;
    if (!conn->authed)
        fl_debug("conn %llu (%s): user %s", (unsigned long long)conn->o.id,
                 peer(conn, pb, sizeof pb), grants->sub.ptr);
    conn->authed = true;
    /* expiry closes with 4004 at exp + leeway (wall clock): the instant at
     * which fl_jwt_verify would refuse this token, no earlier */
    {
        int64_t wait = (conn->exp + svc->cfg->jwt_leeway) * 1000000 - fl_clock_wall_us();
        lws_sul_schedule(lws_get_context(conn->wsi), 0, &conn->sul, on_timer,
                         (lws_usec_t)(wait > 0 ? wait : 0));
    }
    return 0;
}

/* ---- messages ---------------------------------------------------------------------- */

static bool is_subscribed(gw_conn_t *conn, gw_doc_t *doc)
{
    for (uint32_t i = 0; i < conn->nsubs; i++)
        if (conn->subs[i] == doc)
            return true;
    return false;
}

/* Removes a subscription entry from the connection's list (the document's
 * side is the caller's). */
static void forget_doc(gw_conn_t *conn, gw_doc_t *doc)
{
    for (uint32_t i = 0; i < conn->nsubs; i++)
        if (conn->subs[i] == doc) {
            conn->subs[i] = conn->subs[--conn->nsubs];
            return;
        }
}

static void on_subscribe(gw_conn_t *conn, fl_wire_form_t form, const fl_wire_subscribe_t *s)
{
    gw_svc_t *svc = conn->svc;
    gw_doc_t *doc;

    if (!gw_grants_can_read(conn->grants, s->doc)) {
        nack(conn, form, NULL, s->doc, FL_CODE_DOC_FORBIDDEN, 0,
                     "the token does not grant reading this document");
        return;
    }
    doc = gw_docs_get(svc->docs, s->doc);
    if (!(doc && is_subscribed(conn, doc)) && conn->nsubs >= (uint32_t)svc->cfg->max_subscriptions) {
        nack(conn, form, NULL, s->doc, FL_CODE_LIMIT, 0, "too many subscriptions");
        return;
    }
    if (!doc && !(doc = gw_docs_open(svc->docs, s->doc))) {
        nack(conn, form, NULL, s->doc, FL_CODE_INTERNAL, 0, "out of memory");
        return;
    }
    if (!is_subscribed(conn, doc)) {
        if (conn->nsubs == conn->capsubs) {
            uint32_t cap = conn->capsubs ? conn->capsubs * 2 : 4;
            gw_doc_t **subs = realloc(conn->subs, cap * sizeof *subs);
            if (!subs) {
                nack(conn, form, NULL, s->doc, FL_CODE_INTERNAL, 0, "out of memory");
                return;
            }
            conn->subs = subs;
            conn->capsubs = cap;
        }
        conn->subs[conn->nsubs++] = doc;
    }
    if (gw_docs_subscribe(svc->docs, doc, &conn->sub, s->has_version, s->have_version) != 0) {
        forget_doc(conn, doc);
        gw_docs_unsubscribe(svc->docs, doc, &conn->sub);
        nack(conn, form, NULL, s->doc, FL_CODE_INTERNAL, 0, "out of memory");
    }
}

static void on_unsubscribe(gw_conn_t *conn, fl_wire_form_t form, const fl_wire_subscribe_t *s)
{
    gw_doc_t *doc = gw_docs_get(conn->svc->docs, s->doc);
    if (!doc || !is_subscribed(conn, doc)) {
        nack(conn, form, NULL, s->doc, FL_CODE_NOT_SUBSCRIBED, 0, "not subscribed");
        return;
    }
    forget_doc(conn, doc);
    gw_docs_unsubscribe(conn->svc->docs, doc, &conn->sub);
}

/* After a failed publish could not be remembered (gw_conn_on_published):
 * a reconnect resends everything in order. */
static void published(gw_conn_t *conn, const gw_inflight_t *inf, int err)
{
    int rc = gw_conn_on_published(conn, inf, err);
    if (rc == -ENOMEM)
        gw_conn_close(conn, FL_CLOSE_INTERNAL, "out of memory", false);
    else if (rc != 0)
        gw_conn_close(conn, FL_CLOSE_INTERNAL, "too many failed publishes", true);
}

static void on_flush(gw_conn_t *conn, fl_wire_form_t form, fl_flush_t *flush)
{
    gw_svc_t *svc = conn->svc;
    gw_inflight_t *inf = NULL;
    char *buf = NULL, errstr[256];
    size_t len;
    uint32_t retry = 0;

    if (!gw_grants_can_write(conn->grants, flush->doc)) {
        nack(conn, form, flush, flush->doc, FL_CODE_DOC_FORBIDDEN, 0,
                     "the token does not grant writing this document");
        return;
    }
    if (flush->ncmds > (uint32_t)svc->cfg->max_commands) {
        nack(conn, form, flush, flush->doc, FL_CODE_LIMIT, 0, "too many commands");
        return;
    }
    if (!gw_conn_bucket_take(&conn->tokens, &conn->tokens_us, svc->cfg->rate, svc->cfg->burst, &retry)) {
        nack(conn, form, flush, flush->doc, FL_CODE_RATE_LIMITED, retry,
                     "rate limit: retry the same seq later");
        return;
    }
    if (gw_conn_blocked(conn, flush->doc, flush->client_id, flush->seq)) {
        fl_counter_inc(svc->m->produce_errors);
        nack(conn, form, flush, flush->doc, FL_CODE_UNAVAILABLE, GW_RETRY_AFTER_MS,
                     "an earlier seq of this client and document is not published yet: "
                     "resend it first");
        return;
    }
    /* the user and the role come from the token, never from the client;
     * the origin carries the frame's form, which the outcome will take */
    flush->user = conn->grants->sub;
    fl_wire_rec_flush_t rec = {*flush, svc->id, gw_origin_tag(conn->o.id, form),
                               conn->grants->role};
    if (fl_wire_encode_rec_flush(&rec, &buf, &len, errstr, sizeof errstr) != 0) {
        nack(conn, form, flush, flush->doc, FL_CODE_BAD_FRAME, 0, errstr);
        return;
    }
    if (!(inf = malloc(sizeof *inf))) {
        free(buf);
        nack(conn, form, flush, flush->doc, FL_CODE_INTERNAL, 0, "out of memory");
        return;
    }
    inf->origin = gw_origin_tag(conn->o.id, form);
    inf->partition = -1;
    memcpy(inf->client_id, flush->client_id, FL_CLIENT_ID_LEN);
    inf->seq = flush->seq;
    inf->doclen = flush->doc.len;
    memcpy(inf->doc, flush->doc.ptr, flush->doc.len);
    /* held until the doc's events partition is followed; failures nack */
    gw_parts_publish(svc->parts, flush->doc, buf, len, inf);
}

static void on_signal(gw_conn_t *conn, fl_wire_form_t form, const fl_wire_signal_t *s)
{
    gw_svc_t *svc = conn->svc;
    fl_wire_msg_t msg;
    char *buf = NULL, errstr[256];
    size_t len;
    uint32_t retry = 0;
    int rc;

    if (!gw_grants_can_read(conn->grants, s->doc)) {
        nack(conn, form, NULL, s->doc, FL_CODE_DOC_FORBIDDEN, 0,
                     "the token does not grant this document");
        return;
    }
    if (!gw_conn_bucket_take(&conn->sig_tokens, &conn->sig_tokens_us, svc->cfg->signal_rate,
                     svc->cfg->signal_burst, &retry)) {
        nack(conn, form, NULL, s->doc, FL_CODE_RATE_LIMITED, retry,
                     "signal rate limit");
        return;
    }
    memset(&msg, 0, sizeof msg);
    msg.type = FL_WT_REC_SIGNAL;
    msg.u.signal.doc = s->doc;
    msg.u.signal.gw = svc->id;
    msg.u.signal.user = conn->grants->sub;
    msg.u.signal.body = s->body;
    if (fl_wire_encode(&msg, FL_WIRE_MSGPACK, &buf, &len, errstr, sizeof errstr) != 0) {
        nack(conn, form, NULL, s->doc, FL_CODE_BAD_FRAME, 0, errstr);
        return;
    }
    if ((rc = gw_kafka_produce(svc->kafka, FL_TOPIC_SIGNALS, s->doc, buf, len, NULL)) != 0) {
        free(buf);
        fl_counter_inc(svc->m->produce_errors);
        nack(conn, form, NULL, s->doc, FL_CODE_UNAVAILABLE, GW_RETRY_AFTER_MS,
                     "broker unavailable");
        return;
    }
    fl_counter_inc(svc->m->signals_in);
}

/* A flush frame that did not decode: a nack naming what it holds of doc,
 * client_id and seq (seq 0 included), so that a client can match the
 * refusal to its flush. */
static void refuse_flush_frame(gw_conn_t *conn, fl_wire_form_t form, const char *data,
                               size_t len, const fl_wire_limits_t *lim, uint16_t code,
                               const char *reason)
{
    fl_flush_t f;
    fl_slice_t doc;
    fl_wire_msg_t msg;
    unsigned got;

    memset(&f, 0, sizeof f);
    got = fl_wire_flush_ident(form, data, len, lim, conn->svc->arena, &doc, f.client_id, &f.seq);
    memset(&msg, 0, sizeof msg);
    msg.type = FL_WT_NACK;
    if (got & FL_WIRE_IDENT_DOC)
        msg.u.nack.doc = doc;
    if (got & FL_WIRE_IDENT_CLIENT_ID) {
        msg.u.nack.has_client_id = true;
        memcpy(msg.u.nack.client_id, f.client_id, FL_CLIENT_ID_LEN);
    }
    msg.u.nack.has_seq = (got & FL_WIRE_IDENT_SEQ) != 0;
    msg.u.nack.seq = f.seq;
    msg.u.nack.code = code;
    msg.u.nack.reason = (fl_slice_t){reason, strnlen(reason, 1024)};
    gw_metrics_count_code(conn->svc->m->nacks, code);
    send_msg(conn, &msg, form);
}

/* A frame that did not decode (rc, errstr): answered as the rules say,
 * closing when the same frame could never pass. */
static void on_bad_frame(gw_conn_t *conn, fl_wire_form_t form, const char *data, size_t len,
                         const fl_wire_limits_t *lim, int rc, const char *errstr)
{
    uint16_t code = (uint16_t)-rc;
    int type = FL_WT_NONE;
    uint32_t version = 0;
    char pb[64];

    fl_wire_peek(data, len, form, FL_WIRE_C2S, &type, &version, NULL, 0);
    fl_debug("conn %llu (%s): bad frame: %s", (unsigned long long)conn->o.id,
             peer(conn, pb, sizeof pb), errstr);
    if (code == FL_CODE_UNSUPPORTED_VERSION) {
        send_error(conn, form, code, errstr);
        gw_conn_close(conn, FL_CLOSE_UNSUPPORTED_VERSION, "unsupported schema version", true);
        return;
    }
    if (!conn->authed && type == FL_WT_HELLO) {
        /* a hello that cannot be read says why (a token or client name
         * over its bound is limit, naming the field); a token problem
         * closes 4001 (get a good token), anything else 4000 (fix the
         * client): the same hello would fail again either way. The
         * decoder checks "token" first and names it in its reason. */
        bool token = strstr(errstr, "\"token\"") != NULL;
        send_error(conn, form, code, errstr);
        gw_conn_close(conn, token ? FL_CLOSE_UNAUTHORIZED : FL_CLOSE_BAD_FRAME,
                      token ? "hello: bad token" : "hello: bad frame", true);
        return;
    }
    if (!conn->authed) {
        send_error(conn, form, FL_CODE_UNAUTHORIZED, "the first message must be hello");
        gw_conn_close(conn, FL_CLOSE_UNAUTHORIZED, "unauthorized", true);
        return;
    }
    if (type == FL_WT_FLUSH)
        refuse_flush_frame(conn, form, data, len, lim, code, errstr);
    else
        send_error(conn, form, code, errstr);
    if (code != FL_CODE_UNKNOWN_TYPE && ++conn->bad_frames > MAX_BAD_FRAMES)
        gw_conn_close(conn, FL_CLOSE_BAD_FRAME, "too many bad frames", true);
}

/* A decoded client message. */
static void dispatch(gw_conn_t *conn, fl_wire_form_t form, fl_wire_msg_t *msg)
{
    switch (msg->type) {
    case FL_WT_HELLO:
    case FL_WT_AUTH:
        /* a hello on an authenticated connection refreshes like auth */
        if (msg->type == FL_WT_HELLO)
            conn->sub.form = form;
        if (authenticate(conn, msg->u.hello.token, form) == 0)
            send_welcome(conn, form);
        break;
    case FL_WT_SUBSCRIBE:
        on_subscribe(conn, form, &msg->u.sub);
        break;
    case FL_WT_UNSUBSCRIBE:
        on_unsubscribe(conn, form, &msg->u.sub);
        break;
    case FL_WT_FLUSH:
        on_flush(conn, form, &msg->u.flush);
        break;
    case FL_WT_SIGNAL:
        on_signal(conn, form, &msg->u.signal);
        break;
    case FL_WT_PING: {
        fl_wire_msg_t pong;
        memset(&pong, 0, sizeof pong);
        pong.type = FL_WT_PONG;
        pong.u.ping = msg->u.ping;
        send_msg(conn, &pong, form);
        break;
    }
    default:
        send_error(conn, form, FL_CODE_UNKNOWN_TYPE, "not a client message");
        break;
    }
}

static void on_message(gw_conn_t *conn, const char *data, size_t len, bool text)
{
    gw_svc_t *svc = conn->svc;
    fl_wire_form_t form = text ? FL_WIRE_JSON : FL_WIRE_MSGPACK;
    fl_wire_limits_t lim = fl_wire_limits_frame;
    fl_wire_msg_t msg;
    char errstr[512];
    int rc;

    fl_counter_inc(svc->m->frames_in);
    fl_counter_add(svc->m->bytes_in, len);
    if (conn->closing)
        return;
    if (!conn->authed)
        conn->sub.form = form; /* until the hello, answer in the form the client uses */
    lim.max_frame = (size_t)svc->cfg->max_frame;
    lim.max_commands = (uint32_t)svc->cfg->max_commands;
    fl_arena_reset(svc->arena);
    rc = fl_wire_decode(FL_WIRE_C2S, form, data, len, &lim, svc->arena, &msg, errstr,
                        sizeof errstr);
    if (rc != 0) {
        on_bad_frame(conn, form, data, len, &lim, rc, errstr);
        return;
    }
    if (!conn->authed && msg.type != FL_WT_HELLO) {
        send_error(conn, form, FL_CODE_UNAUTHORIZED, "the first message must be hello");
        gw_conn_close(conn, FL_CLOSE_UNAUTHORIZED, "unauthorized", true);
        return;
    }
    dispatch(conn, form, &msg);
}

/* Reassembles one message from its fragments, bounded by max.frame. A
 * message in one piece is decoded straight from lws's buffer; the
 * reassembly buffer lives only while a message is split. */
static void on_receive(gw_conn_t *conn, const char *in, size_t len)
{
    gw_svc_t *svc = conn->svc;
    size_t max = (size_t)svc->cfg->max_frame;
    bool first = lws_is_first_fragment(conn->wsi) && conn->rxlen == 0 && !conn->rx_overflow;
    bool final = lws_is_final_fragment(conn->wsi);

    if (first)
        conn->rx_text = !lws_frame_is_binary(conn->wsi);
    if (first && final) {
        if (len > max) {
            send_error(conn, conn->rx_text ? FL_WIRE_JSON : FL_WIRE_MSGPACK, FL_CODE_LIMIT,
                       "frame over max.frame");
            gw_conn_close(conn, FL_CLOSE_BAD_FRAME, "frame over max.frame", true);
        } else {
            on_message(conn, in ? in : "", len, conn->rx_text);
        }
        return;
    }
    if (!conn->rx_overflow) {
        int r = fl_frag_append(&conn->rx, &conn->rxlen, &conn->rxcap, in, len, max);
        if (r < 0) {
            gw_conn_close(conn, FL_CLOSE_INTERNAL, "out of memory", false);
            return;
        }
        conn->rx_overflow = r > 0;
    }
    if (!final)
        return;
    if (conn->rx_overflow) {
        send_error(conn, conn->rx_text ? FL_WIRE_JSON : FL_WIRE_MSGPACK, FL_CODE_LIMIT,
                   "frame over max.frame");
        gw_conn_close(conn, FL_CLOSE_BAD_FRAME, "frame over max.frame", true);
    } else {
        on_message(conn, conn->rx ? conn->rx : "", conn->rxlen, conn->rx_text);
    }
    conn->rxlen = 0;
    conn->rx_overflow = false;
    free(conn->rx);
    conn->rx = NULL;
    conn->rxcap = 0;
}

/* ---- lifecycle ------------------------------------------------------------------------ */

static bool origin_allowed(gw_svc_t *svc, struct lws *wsi)
{
    char origin[512];
    int n;
    if (!svc->allow)
        return true;
    n = lws_hdr_copy(wsi, origin, sizeof origin, WSI_TOKEN_ORIGIN);
    if (n <= 0)
        return true; /* not a browser: the allow-list protects browsers' users */
    for (char **o = svc->allow; *o; o++)
        if (strcmp(*o, origin) == 0)
            return true;
    return false;
}

static void on_established(gw_svc_t *svc, gw_conn_t *conn, struct lws *wsi)
{
    char auth[FL_JWT_MAX_TOKEN + 16];
    int n;

    memset(conn, 0, sizeof *conn);
    conn->svc = svc;
    conn->wsi = wsi;
    conn->established = true;
    conn->sub.ops = &sub_ops;
    conn->sub.form = FL_WIRE_MSGPACK;
    conn->q = conn->qinline;
    conn->qcap = GW_QINLINE;
    conn->tokens = (float)svc->cfg->burst;
    conn->sig_tokens = (float)svc->cfg->signal_burst;
    conn->tokens_us = conn->sig_tokens_us = fl_clock_mono_us();
    if (gw_origins_add(svc->origins, &conn->o, &gw_conn_origin_ops) != 0) {
        conn->established = false;
        gw_conn_close(conn, FL_CLOSE_INTERNAL, "out of memory", false);
        return;
    }
    conn->sub.origin = conn->o.id;
    svc->nconns++;
    fl_gauge_add_int(svc->m->connections, 1);
    if (svc->draining) {
        gw_conn_close(conn, FL_CLOSE_GOING_AWAY, "draining", false);
        return;
    }
    n = lws_hdr_copy(wsi, auth, sizeof auth, WSI_TOKEN_HTTP_AUTHORIZATION);
    if (n > 7 && strncasecmp(auth, "Bearer ", 7) == 0) {
        if (authenticate(conn, (fl_slice_t){auth + 7, (size_t)n - 7}, FL_WIRE_MSGPACK) == 0)
            send_welcome(conn, FL_WIRE_MSGPACK);
        return;
    }
    lws_sul_schedule(lws_get_context(wsi), 0, &conn->sul, on_timer,
                     (lws_usec_t)svc->cfg->hello_timeout_ms * LWS_US_PER_MS);
}

static void on_closed(gw_svc_t *svc, gw_conn_t *conn)
{
    if (!conn->established)
        return;
    conn->closing = true; /* nothing more is queued (held outcomes are dropped) */
    lws_sul_cancel(&conn->sul);
    for (uint32_t i = 0; i < conn->nsubs; i++)
        gw_docs_unsubscribe(svc->docs, conn->subs[i], &conn->sub);
    free(conn->subs);
    queue_clear(conn);
    free(conn->rx);
    free(conn->blocks);
    gw_grants_unref(svc->grants, conn->grants);
    conn->grants = NULL;
    gw_origins_del(svc->origins, &conn->o);
    svc->nconns--;
    fl_gauge_add_int(svc->m->connections, -1);
    conn->established = false;
}

int gw_conn_callback(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in,
                     size_t len)
{
    gw_svc_t *svc = lws_context_user(lws_get_context(wsi));
    gw_conn_t *conn = user;
    char uri[64];

    switch (reason) {
    case LWS_CALLBACK_FILTER_PROTOCOL_CONNECTION: {
        /* the path as it came when the gateway read the request line (a
         * query string is ignored), else lws's copy (TLS) */
        gw_head_line_t *hl = gw_heads_take(svc->heads, wsi);
        if (hl) {
            const char *q = memchr(hl->target, '?', hl->tlen);
            size_t plen = q ? (size_t)(q - hl->target) : hl->tlen;
            bool ok = plen == 6 && memcmp(hl->target, "/v1/ws", 6) == 0;
            free(hl);
            if (!ok)
                return 1;
        } else if (lws_hdr_copy(wsi, uri, sizeof uri, WSI_TOKEN_GET_URI) <= 0 ||
                   strcmp(uri, "/v1/ws") != 0) {
            return 1;
        }
        /* while draining the upgrade completes and is closed at once with
         * 4201 (on_established): the client reconnects elsewhere */
        if (!origin_allowed(svc, wsi)) {
            fl_counter_inc(svc->m->origin_rejects);
            fl_info("refused a WebSocket upgrade from a foreign Origin");
            return 1;
        }
        return 0;
    }
    case LWS_CALLBACK_ESTABLISHED:
        on_established(svc, conn, wsi);
        return 0;
    case LWS_CALLBACK_RECEIVE:
        if (conn && conn->established && !conn->closing)
            on_receive(conn, in, len);
        return 0;
    case LWS_CALLBACK_SERVER_WRITEABLE:
        if (!conn || !conn->established)
            return 0;
        return on_writeable(conn);
    case LWS_CALLBACK_CLOSED:
        if (conn)
            on_closed(svc, conn);
        return 0;
    default:
        return 0;
    }
}

/* ---- what the modules below call back ------------------------------------------- */

/* The outcome of this connection's flush, in the form of the flush's frame. */
static void on_outcome(gw_origin_t *o, const fl_outcome_t *out, fl_wire_form_t form)
{
    gw_conn_t *conn = (gw_conn_t *)o;
    fl_wire_msg_t msg;
    memset(&msg, 0, sizeof msg);
    msg.type = FL_WT_OUTCOME;
    msg.u.outcome.outcome = *out;
    send_msg(conn, &msg, form);
}

/* A flush of this connection will not be published: a nack in the form of
 * its frame. A retryable failure holds later seqs back until this one is
 * published; a final one (the client drops the flush) does not. */
static void on_failed(gw_origin_t *o, const gw_inflight_t *inf, uint16_t code,
                      uint32_t retry_after_ms, const char *reason)
{
    gw_conn_t *conn = (gw_conn_t *)o;
    fl_flush_t f;
    if (retry_after_ms > 0)
        published(conn, inf, RD_KAFKA_RESP_ERR__FAIL);
    memset(&f, 0, sizeof f);
    memcpy(f.client_id, inf->client_id, FL_CLIENT_ID_LEN);
    f.seq = inf->seq;
    nack(conn, gw_origin_form(inf->origin), &f, (fl_slice_t){inf->doc, inf->doclen}, code,
         retry_after_ms, reason);
}

static void on_published(gw_origin_t *o, const gw_inflight_t *inf)
{
    published((gw_conn_t *)o, inf, 0);
}

static void on_drain(gw_origin_t *o, uint16_t code, const char *reason)
{
    gw_conn_close((gw_conn_t *)o, code, reason, true);
}

const gw_origin_ops_t gw_conn_origin_ops = {
    .on_outcome = on_outcome,
    .on_failed = on_failed,
    .on_published = on_published,
    .on_drain = on_drain,
};

static int sub_send(gw_subscriber_t *s, gw_buf_t *buf)
{
    return gw_conn_send(lws_container_of(s, gw_conn_t, sub), buf);
}

static void sub_close(gw_subscriber_t *s, uint16_t code, const char *reason)
{
    gw_conn_close(lws_container_of(s, gw_conn_t, sub), code, reason, false);
}

static const gw_subscriber_ops_t sub_ops = {
    .send = sub_send,
    .close = sub_close,
};
