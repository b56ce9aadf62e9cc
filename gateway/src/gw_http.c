/* SPDX-License-Identifier: Apache-2.0 */
/*
 * gw_http: the HTTP side of the gateway's port.
 *   GET  /healthz              200 while the service loop runs
 *   GET  /readyz               200 while Kafka answers (gw_kafka_ok) and not draining
 *   GET  /metrics              Prometheus text
 *   GET  /v1/docs/{id}         Bearer; the current snapshot as JSON (via the live copy)
 *   GET  /v1/docs/{id}?version=V, GET /v1/docs/{id}/history?from_version=V&limit=N
 *                              Bearer, the read grant; served by gw_history.h
 *   POST /v1/docs/{id}/flush   Bearer; body: a flush message in JSON ("t"/"v" optional);
 *                              answers the outcome as JSON, 504 after http.flush.timeout.ms
 * Static files come from an lws mount when static.dir is set.
 *
 * A POST waits for its outcome as an origin (gw_origins.h: the registry
 * calls it back with the outcome or the failure); a GET of a document that
 * is not live yet waits on the document's list of waiters (gw_docs.h).
 * Either has a timer of its own for its deadline. The answer is written
 * from the writable callback: headers first, then the body. Raw request
 * lines come from gw_heads, ids in URLs are read by gw_url.
 *
 * @locality lws service thread.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <sys/socket.h>

#include <jansson.h>

#include "flushline/clock.h"
#include "flushline/log.h"
#include "gw_http.h"
#include "gw_svc.h"
#include "gw_url.h"

#define CT_JSON "application/json"
#define CT_TEXT "text/plain; charset=utf-8"

typedef struct gw_http_s {
    gw_origin_t o; /* first: the per-session data holds a connection or this */
    gw_svc_t *svc;
    struct lws *wsi;
    bool registered, post, wants_flush;
    char user[FL_JWT_MAX_STR + 1];
    char role[FL_JWT_MAX_ROLE + 1]; /* "" without the claim */
    char doc[FL_DOC_ID_MAX];
    size_t doclen;
    char *body;
    size_t blen, bcap;
    bool too_big;
    gw_waiter_t waiter;   /* GET /v1/docs: waits on the document until live */
    bool waiting_outcome; /* POST: registered as an origin */
    lws_sorted_usec_list_t sul; /* the deadline of either wait */
    gw_hist_req_t hist;   /* a history request (gw_history.h) */
    /* the answer */
    bool ready, headers_sent;
    int status;
    uint32_t retry_after_ms; /* 0: no Retry-After header */
    const char *ctype;
    char *resp;
    size_t rlen;
} gw_http_t;

static const gw_origin_ops_t http_ops;

size_t gw_http_session_size(void)
{
    return sizeof(gw_http_t);
}

static void unregister(gw_http_t *req)
{
    if (req->registered) {
        gw_origins_del(req->svc->origins, &req->o);
        req->registered = false;
    }
    if (req->waiter.doc)
        gw_docs_unwait(req->svc->docs, &req->waiter);
    if (req->hist.job)
        gw_history_cancel(req->svc->history, &req->hist);
    if (req->svc)
        lws_sul_cancel(&req->sul);
    req->waiting_outcome = false;
}

static void reset(gw_http_t *req)
{
    unregister(req);
    free(req->body);
    free(req->resp);
    memset(req, 0, sizeof *req);
}

/* Sets the answer (body copied) and asks for the writable callback. */
static int respond(gw_http_t *req, int status, const char *ctype, const char *body, size_t len)
{
    unregister(req);
    free(req->resp);
    if (!(req->resp = malloc(LWS_PRE + len + 1)))
        return -1;
    memcpy(req->resp + LWS_PRE, body, len);
    req->rlen = len;
    req->status = status;
    req->ctype = ctype;
    req->ready = true;
    lws_callback_on_writable(req->wsi);
    return 0;
}

static int respond_text(gw_http_t *req, int status, const char *text)
{
    return respond(req, status, CT_TEXT, text, strlen(text));
}

/* {"code", "name", "reason"} and, for a refused flush, whatever of doc,
 * client_id and seq it named (ident: FL_WIRE_IDENT_* bits). */
static int respond_error_ident(gw_http_t *req, int status, uint16_t code, const char *reason,
                               unsigned ident, fl_slice_t doc, const uint8_t *client_id,
                               uint64_t seq)
{
    json_t *j = json_pack("{s:i,s:s,s:s}", "code", (int)code, "name", fl_code_name(code),
                          "reason", reason);
    char *text = NULL, hex[2 * FL_CLIENT_ID_LEN + 1];
    int rc = -1;
    if (j && (ident & FL_WIRE_IDENT_DOC))
        json_object_set_new(j, "doc", json_stringn(doc.ptr, doc.len));
    if (j && (ident & FL_WIRE_IDENT_CLIENT_ID)) {
        fl_wire_hex(client_id, FL_CLIENT_ID_LEN, hex);
        json_object_set_new(j, "client_id", json_string(hex));
    }
    if (j && (ident & FL_WIRE_IDENT_SEQ))
        json_object_set_new(j, "seq", json_integer((json_int_t)seq));
    if (j && (text = json_dumps(j, JSON_COMPACT | JSON_SORT_KEYS)))
        rc = respond(req, status, CT_JSON, text, strlen(text));
    free(text);
    json_decref(j);
    return rc;
}

static int respond_error(gw_http_t *req, int status, uint16_t code, const char *reason)
{
    return respond_error_ident(req, status, code, reason, 0, (fl_slice_t){"", 0}, NULL, 0);
}

/* A flush that may be sent again (the same seq): 503 or 504 with a
 * Retry-After header (whole seconds, rounded up) and retry_after_ms in the
 * JSON body, as a WebSocket nack has. */
static int respond_retry(gw_http_t *req, int status, uint16_t code, const char *reason,
                         uint32_t retry_after_ms)
{
    json_t *j = json_pack("{s:i,s:s,s:s,s:i}", "code", (int)code, "name", fl_code_name(code),
                          "reason", reason, "retry_after_ms", (int)retry_after_ms);
    char *text = j ? json_dumps(j, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
    int rc = text ? respond(req, status, CT_JSON, text, strlen(text)) : -1;
    free(text);
    json_decref(j);
    req->retry_after_ms = rc == 0 ? retry_after_ms : 0;
    return rc;
}

static int respond_buf(gw_http_t *req, int status, gw_buf_t *buf)
{
    int rc;
    if (!buf)
        return respond_error(req, 500, FL_CODE_INTERNAL, "encoding failed");
    rc = respond(req, status, CT_JSON, (const char *)buf->data + LWS_PRE, buf->len);
    gw_buf_unref(buf);
    return rc;
}

static void on_deadline(lws_sorted_usec_list_t *sul)
{
    gw_http_t *req = lws_container_of(sul, gw_http_t, sul);
    if (req->waiter.doc || req->waiting_outcome)
        respond_retry(req, 504, FL_CODE_UNAVAILABLE,
                      "no answer in time: send the same seq again", GW_RETRY_AFTER_MS);
}

/* Starts the deadline of a wait (http.flush.timeout.ms). lws would close a
 * request left unanswered for its default 5 s before that: it keeps the
 * connection a little longer than the deadline, so the 504 is sent. */
static void wait_deadline(gw_svc_t *svc, gw_http_t *req)
{
    lws_set_timeout(req->wsi, PENDING_TIMEOUT_USER_OK,
                    (int)(svc->cfg->http_flush_timeout_ms / 1000) + 5);
    lws_sul_schedule(svc->context, 0, &req->sul, on_deadline,
                     (lws_usec_t)svc->cfg->http_flush_timeout_ms * LWS_US_PER_MS);
}

static bool registered_as_origin(gw_svc_t *svc, gw_http_t *req)
{
    if (gw_origins_add(svc->origins, &req->o, &http_ops) != 0)
        return false;
    req->registered = true;
    wait_deadline(svc, req);
    return true;
}

/* Bearer token -> claims; answers 401 on failure. */
static bool check_token(gw_svc_t *svc, gw_http_t *req, fl_claims_t *claims)
{
    char auth[FL_JWT_MAX_TOKEN + 16], errstr[256];
    int n = lws_hdr_copy(req->wsi, auth, sizeof auth, WSI_TOKEN_HTTP_AUTHORIZATION);
    int rc;
    if (n <= 7 || strncasecmp(auth, "Bearer ", 7) != 0) {
        respond_error(req, 401, FL_CODE_UNAUTHORIZED, "an Authorization: Bearer token is needed");
        return false;
    }
    rc = fl_jwt_verify(svc->keys, auth + 7, (size_t)n - 7, fl_clock_wall_s(), claims, errstr,
                       sizeof errstr);
    if (rc != 0) {
        fl_counter_inc(svc->m->auth_failures);
        respond_error(req, 401, rc == -FL_CODE_TOKEN_EXPIRED ? FL_CODE_TOKEN_EXPIRED
                                                              : FL_CODE_UNAUTHORIZED, errstr);
        return false;
    }
    return true;
}

/* A live document's snapshot (minimum disclosure does not restrict
 * authorised reads). */
static void answer_doc(gw_svc_t *svc, gw_http_t *req, gw_doc_t *doc)
{
    respond_buf(req, 200, gw_docs_snapshot(svc->docs, doc, FL_WIRE_JSON));
}

static void on_doc_live(gw_waiter_t *w, gw_doc_t *doc)
{
    gw_http_t *req = lws_container_of(w, gw_http_t, waiter);
    answer_doc(req->svc, req, doc);
}

static void on_hist_answer(gw_hist_req_t *r, const char *json, size_t len)
{
    respond(lws_container_of(r, gw_http_t, hist), 200, CT_JSON, json, len);
}

static void on_hist_fail(gw_hist_req_t *r, int status, uint16_t code, const char *reason,
                         uint32_t retry_after_s)
{
    gw_http_t *req = lws_container_of(r, gw_http_t, hist);
    respond_error(req, status, code, reason);
    req->retry_after_ms = retry_after_s * 1000;
}

static int serve_history(gw_svc_t *svc, gw_http_t *req)
{
    /* lws would close a request left unanswered for its default 5 s: a job
     * answers by history.timeout.ms */
    lws_set_timeout(req->wsi, PENDING_TIMEOUT_USER_OK,
                    (int)(svc->cfg->history_timeout_ms / 1000) + 5);
    req->hist.answer = on_hist_answer;
    req->hist.fail = on_hist_fail;
    gw_history_serve(svc->history, &req->hist, (fl_slice_t){req->doc, req->doclen});
    return 0;
}

/* The document of a /v1/docs request into req->doc, and whether it is a
 * history request (*hist 1, req->hist.q filled). A refusal is answered
 * (*answered: the answer's return value is returned). */
static int docs_route(gw_svc_t *svc, gw_http_t *req, const char *method, const char *path,
                      size_t plen, const char *query, size_t qlen, int *hist, bool *answered)
{
    char reason[256];
    uint16_t code;
    int status = 0;
    if (strcmp(method, "GET") == 0)
        *hist = gw_history_target(svc->history, path, plen, query, qlen, req->doc, &req->doclen,
                                  &req->hist.q, &code, reason, sizeof reason);
    if (*hist > 1)
        status = *hist;
    else if (!*hist)
        status = gw_url_docs_target(method, path, plen, query != NULL, req->doc, &req->doclen,
                                    &code, reason, sizeof reason);
    if (!status)
        return 0;
    *answered = true;
    return respond_error(req, status, code, reason);
}

/* The route of a request. path/plen is the raw path (no query), or lws's
 * normalised one when the request line was not seen (then ids are not
 * served). */
static int on_request(gw_svc_t *svc, gw_http_t *req, const char *method, const char *path,
                      size_t plen, const char *query, size_t qlen, bool raw)
{
    char *body = NULL;
    size_t len = 0;
    bool get = strcmp(method, "GET") == 0;

    fl_counter_inc(svc->m->http_requests);
    req->post = strcmp(method, "POST") == 0;
#define IS(lit) (plen == sizeof(lit) - 1 && memcmp(path, lit, plen) == 0)
    if (IS("/healthz") || IS("/readyz") || IS("/metrics")) {
        if (!get)
            return respond_error(req, 405, FL_CODE_BAD_FRAME, "method not allowed: use GET");
        if (IS("/healthz"))
            return respond_text(req, 200, "ok\n");
        if (IS("/readyz")) {
            bool ok = gw_kafka_ok(svc->kafka) && !svc->draining;
            return respond_text(req, ok ? 200 : 503,
                                ok ? "ready\n" : svc->draining ? "draining\n" : "not ready\n");
        }
        int rc;
        if (fl_metrics_render(svc->m->reg, &body, &len) != 0)
            return respond_error(req, 500, FL_CODE_INTERNAL, "out of memory");
        rc = respond(req, 200, FL_METRICS_CONTENT_TYPE, body, len);
        free(body);
        return rc;
    }
#undef IS
    if (plen >= 9 && memcmp(path, "/v1/docs/", 9) == 0) {
        fl_claims_t *claims;
        size_t n;
        int hist = 0;
        bool answered = false;
        if (!raw)
            return respond_error(req, 400, FL_CODE_BAD_DOC_ID,
                                 gw_heads_raw(svc->heads) ? "send each /v1/docs request on a connection of "
                                                 "its own (Connection: close)"
                                               : "document ids cannot be read exactly over the "
                                                 "gateway's own TLS: terminate TLS in front of it");
        int rc = docs_route(svc, req, method, path, plen, query, qlen, &hist, &answered);
        if (answered)
            return rc;
        req->wants_flush = req->post;
        n = req->doclen;
        if (!(claims = malloc(sizeof *claims)))
            return -1;
        if (!check_token(svc, req, claims)) {
            free(claims);
            return 0;
        }
        if (req->post ? !fl_claims_can_write(claims, req->doc, n)
                      : !fl_claims_can_read(claims, req->doc, n)) {
            free(claims);
            return respond_error(req, 403, FL_CODE_DOC_FORBIDDEN,
                                 "the token does not grant this document");
        }
        snprintf(req->user, sizeof req->user, "%s", claims->sub);
        snprintf(req->role, sizeof req->role, "%s", claims->role);
        free(claims);
        if (req->post)
            return 0; /* the body follows */
        if (hist)
            return serve_history(svc, req);
        gw_doc_t *doc = gw_docs_open(svc->docs, (fl_slice_t){req->doc, n});
        if (!doc)
            return respond_error(req, 500, FL_CODE_INTERNAL, "out of memory");
        if (gw_docs_live(doc)) {
            answer_doc(svc, req, doc);
            return 0;
        }
        req->waiter.on_live = on_doc_live;
        gw_docs_wait(svc->docs, doc, &req->waiter);
        wait_deadline(svc, req);
        return 0;
    }
    return respond_error(req, 404, FL_CODE_BAD_FRAME,
                         "no such route (the API: /healthz, /readyz, /metrics, /v1/ws, "
                         "/v1/docs/{id}, /v1/docs/{id}/history, /v1/docs/{id}/flush)");
}

/* The body as a JSON flush frame ("t", "v" and "doc" filled in when
 * absent), or NULL after answering 400/500. The caller frees it. */
static char *body_frame(gw_http_t *req)
{
    json_error_t jerr;
    char *text = NULL;
    /* U+0000 is data here as in text frames */
    json_t *j = json_loadb(req->body ? req->body : "", req->blen,
                           JSON_REJECT_DUPLICATES | JSON_ALLOW_NUL, &jerr);
    if (!j || !json_is_object(j)) {
        respond_error(req, 400, FL_CODE_BAD_FRAME, j ? "the body must be an object" : jerr.text);
        json_decref(j);
        return NULL;
    }
    if (!json_object_get(j, "t"))
        json_object_set_new(j, "t", json_string("flush"));
    if (!json_object_get(j, "v"))
        json_object_set_new(j, "v", json_integer(FL_WIRE_VERSION));
    if (!json_object_get(j, "doc"))
        json_object_set_new(j, "doc", json_stringn(req->doc, req->doclen));
    if (!(text = json_dumps(j, JSON_COMPACT)))
        respond_error(req, 500, FL_CODE_INTERNAL, "out of memory");
    json_decref(j);
    return text;
}

/* Decodes the frame into msg: 0, or -1 after answering 400 with whatever
 * of doc, client_id and seq the body names. */
static int decode_body(gw_svc_t *svc, gw_http_t *req, const char *text, fl_wire_msg_t *msg)
{
    fl_wire_limits_t lim = fl_wire_limits_frame;
    char errstr[512];
    int rc;

    lim.max_frame = (size_t)svc->cfg->max_frame;
    lim.max_commands = (uint32_t)svc->cfg->max_commands;
    fl_arena_reset(svc->arena);
    rc = fl_wire_decode(FL_WIRE_C2S, FL_WIRE_JSON, text, strlen(text), &lim, svc->arena, msg,
                        errstr, sizeof errstr);
    if (rc == 0 && msg->type != FL_WT_FLUSH) {
        rc = -FL_CODE_BAD_FRAME;
        snprintf(errstr, sizeof errstr, "the body must be a flush");
    }
    if (rc == 0 && (msg->u.flush.doc.len != req->doclen ||
                    memcmp(msg->u.flush.doc.ptr, req->doc, req->doclen) != 0)) {
        rc = -FL_CODE_BAD_FRAME;
        snprintf(errstr, sizeof errstr, "the body names another document than the path");
    }
    if (rc != 0) {
        /* name the refused flush as far as the body says */
        fl_slice_t doc;
        uint8_t cid[FL_CLIENT_ID_LEN];
        uint64_t seq;
        unsigned ident = fl_wire_flush_ident(FL_WIRE_JSON, text, strlen(text), &lim, svc->arena,
                                             &doc, cid, &seq);
        respond_error_ident(req, 400, (uint16_t)-rc, errstr, ident, doc, cid, seq);
        return -1;
    }
    return 0;
}

/* The whole body of POST /v1/docs/{id}/flush is here: decoded, then
 * published as this request's flush (the outcome comes back through the
 * origin callbacks). */
static void on_flush_body(gw_svc_t *svc, gw_http_t *req)
{
    fl_wire_msg_t msg;
    gw_inflight_t *inf = NULL;
    char *text, *buf = NULL, errstr[256];
    size_t len;

    if (req->too_big) {
        respond_error(req, 413, FL_CODE_LIMIT, "body over max.frame");
        return;
    }
    if (!(text = body_frame(req)) || decode_body(svc, req, text, &msg) != 0)
        goto done;
    msg.u.flush.user = (fl_slice_t){req->user, strlen(req->user)};
    if (!registered_as_origin(svc, req)) {
        respond_error(req, 500, FL_CODE_INTERNAL, "out of memory");
        goto done;
    }
    fl_wire_rec_flush_t rec = {msg.u.flush, svc->id, req->o.id,
                               {req->role, strlen(req->role)}};
    if (fl_wire_encode_rec_flush(&rec, &buf, &len, errstr, sizeof errstr) != 0) {
        respond_error(req, 400, FL_CODE_BAD_FRAME, errstr);
        goto done;
    }
    if (!(inf = malloc(sizeof *inf))) {
        free(buf);
        respond_error(req, 500, FL_CODE_INTERNAL, "out of memory");
        goto done;
    }
    inf->origin = req->o.id;
    inf->partition = -1;
    memcpy(inf->client_id, msg.u.flush.client_id, FL_CLIENT_ID_LEN);
    inf->seq = msg.u.flush.seq;
    inf->doclen = req->doclen;
    memcpy(inf->doc, req->doc, req->doclen);
    req->waiting_outcome = true;
    gw_parts_publish(svc->parts, msg.u.flush.doc, buf, len, inf);
done:
    free(text);
}

/* ---- the origin callbacks of a POST ------------------------------------------ */

static void on_outcome(gw_origin_t *o, const fl_outcome_t *out, fl_wire_form_t form)
{
    gw_http_t *req = (gw_http_t *)o;
    fl_wire_msg_t msg;
    (void)form; /* HTTP answers are JSON */
    if (!req->waiting_outcome)
        return;
    memset(&msg, 0, sizeof msg);
    msg.type = FL_WT_OUTCOME;
    msg.u.outcome.outcome = *out;
    respond_buf(req, 200, gw_buf_encode(&msg, FL_WIRE_JSON));
}

/* internal 500, limit 413, anything else (unavailable) 503 */
static void on_failed(gw_origin_t *o, const gw_inflight_t *inf, uint16_t code,
                      uint32_t retry_after_ms, const char *reason)
{
    gw_http_t *req = (gw_http_t *)o;
    (void)inf;
    if (!req->waiting_outcome)
        return;
    if (code == FL_CODE_LIMIT)
        respond_error(req, 413, code, reason);
    else
        respond_retry(req, code == FL_CODE_INTERNAL ? 500 : 503, code, reason,
                      retry_after_ms ? retry_after_ms : GW_RETRY_AFTER_MS);
}

static const gw_origin_ops_t http_ops = {
    .on_outcome = on_outcome,
    .on_failed = on_failed,
};

/* Retry-After (whole seconds, rounded up) on an answer that has one: 0, or
 * -1 when it does not fit. */
static int add_retry_after(gw_http_t *req, unsigned char **p, unsigned char *end)
{
    char v[16];
    int n;
    if (!req->retry_after_ms)
        return 0;
    n = snprintf(v, sizeof v, "%u", (req->retry_after_ms + 999) / 1000);
    return lws_add_http_header_by_token(req->wsi, WSI_TOKEN_HTTP_RETRY_AFTER,
                                        (const unsigned char *)v, n, p, end);
}

static int on_writeable(gw_http_t *req)
{
    unsigned char hdr[LWS_PRE + 1024], *start = hdr + LWS_PRE, *p = start;
    unsigned char *end = hdr + sizeof hdr - 1;
    int n;

    if (!req->ready)
        return 0;
    if (!req->headers_sent) {
        if (lws_add_http_common_headers(req->wsi, (unsigned int)req->status, req->ctype,
                                        (lws_filepos_t)req->rlen, &p, end) ||
            lws_add_http_header_by_name(req->wsi, (const unsigned char *)"cache-control:",
                                        (const unsigned char *)"no-store", 8, &p, end) ||
            /* one request per connection: the next one's line is not read */
            lws_add_http_header_by_token(req->wsi, WSI_TOKEN_CONNECTION,
                                         (const unsigned char *)"close", 5, &p, end) ||
            add_retry_after(req, &p, end) ||
            lws_finalize_write_http_header(req->wsi, start, &p, end))
            return -1;
        req->headers_sent = true;
        if (req->rlen > 0) {
            lws_callback_on_writable(req->wsi);
            return 0;
        }
    } else if (req->rlen > 0) {
        n = lws_write(req->wsi, (unsigned char *)req->resp + LWS_PRE, req->rlen,
                      LWS_WRITE_HTTP_FINAL);
        if (n < 0 || (size_t)n != req->rlen)
            return -1;
    }
    reset(req);
    return -1; /* "connection: close": lws flushes what is buffered, then closes */
}

/* A new request: routed from the request line as it came (its route and
 * id are read from it, never from lws's normalised copy); without one (TLS,
 * a kept-alive connection), from lws's whole path (mounts hand over only
 * what follows them) and ids are not served. -1 closes. */
static int on_http(gw_svc_t *svc, gw_http_t *req, struct lws *wsi, const char *in)
{
    gw_head_line_t *hl;
    const char *q;
    size_t plen;
    int rc;

    reset(req);
    req->svc = svc;
    req->wsi = wsi;
    if ((hl = gw_heads_take(svc->heads, wsi))) {
        q = memchr(hl->target, '?', hl->tlen);
        plen = q ? (size_t)(q - hl->target) : hl->tlen;
        rc = on_request(svc, req, hl->method, hl->target, plen, q ? q + 1 : NULL,
                        q ? hl->tlen - plen - 1 : 0, true);
        free(hl);
    } else {
        char lpath[1024];
        const char *method = lws_hdr_total_length(wsi, WSI_TOKEN_POST_URI) > 0  ? "POST"
                             : lws_hdr_total_length(wsi, WSI_TOKEN_GET_URI) > 0 ? "GET"
                                                                                 : "?";
        if (lws_hdr_copy(wsi, lpath, sizeof lpath, WSI_TOKEN_GET_URI) <= 0 &&
            lws_hdr_copy(wsi, lpath, sizeof lpath, WSI_TOKEN_POST_URI) <= 0)
            snprintf(lpath, sizeof lpath, "%s", in ? in : "/");
        rc = on_request(svc, req, method, lpath, strlen(lpath), NULL, 0, false);
    }
    return rc ? -1 : 0;
}

/* A piece of a POST body, kept up to max.frame (beyond: 413 at the end). */
static int on_body(gw_svc_t *svc, gw_http_t *req, const char *in, size_t len)
{
    if (!req->wants_flush || req->ready)
        return 0;
    if (req->blen + len > (size_t)svc->cfg->max_frame) {
        req->too_big = true;
        return 0;
    }
    if (req->blen + len > req->bcap) {
        size_t cap = req->bcap ? req->bcap * 2 : 4096;
        char *b;
        while (cap < req->blen + len)
            cap *= 2;
        if (!(b = realloc(req->body, cap)))
            return -1;
        req->body = b;
        req->bcap = cap;
    }
    memcpy(req->body + req->blen, in, len);
    req->blen += len;
    return 0;
}

int gw_http_callback(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in,
                     size_t len)
{
    gw_svc_t *svc = lws_context_user(lws_get_context(wsi));
    gw_http_t *req = user;

    switch (reason) {
    case LWS_CALLBACK_HTTP:
        return req ? on_http(svc, req, wsi, in) : -1;
    case LWS_CALLBACK_ADD_HEADERS: {
        /* static files (the mount names this protocol): one request per
         * connection here too, and the line read for it is done with */
        struct lws_process_html_args *args = in;
        unsigned char *p = (unsigned char *)args->p, *end = p + args->max_len;
        free(gw_heads_take(svc->heads, wsi));
        if (lws_add_http_header_by_token(wsi, WSI_TOKEN_CONNECTION, (unsigned char *)"close", 5,
                                         &p, end))
            return -1;
        args->p = (char *)p;
        args->max_len = (int)(end - p);
        return 0;
    }
    case LWS_CALLBACK_HTTP_FILE_COMPLETION:
        return -1; /* "connection: close" was announced */
    case LWS_CALLBACK_HTTP_BODY:
        return req ? on_body(svc, req, in, len) : 0;
    case LWS_CALLBACK_HTTP_BODY_COMPLETION:
        if (req && req->wants_flush && !req->ready)
            on_flush_body(svc, req);
        return 0;
    case LWS_CALLBACK_HTTP_WRITEABLE:
        return req ? on_writeable(req) : 0;
    case LWS_CALLBACK_CLOSED_HTTP:
        /* the session memory is shared with WebSocket connections: only
         * touch it when it holds an HTTP request of this wsi */
        if (req && req->wsi == wsi && (!req->o.ops || req->o.ops == &http_ops))
            reset(req);
        return 0;
    default:
        return lws_callback_http_dummy(wsi, reason, user, in, len);
    }
}
