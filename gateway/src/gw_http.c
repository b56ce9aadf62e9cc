/* SPDX-License-Identifier: Apache-2.0 */
/*
 * gw_http: the HTTP side of the gateway's port.
 *   GET  /healthz              200 while the service loop runs
 *   GET  /readyz               200 when Kafka answers (topics were checked at start)
 *   GET  /metrics              Prometheus text
 *   GET  /v1/docs/{id}         Bearer; the current snapshot as JSON (via the live copy)
 *   POST /v1/docs/{id}/flush   Bearer; body: a flush message in JSON ("t"/"v" optional);
 *                              answers the outcome as JSON, 504 after http.flush.timeout.ms
 * Static files come from an lws mount when static.dir is set.
 *
 * A request that waits (an outcome, a document becoming live) is registered
 * as an origin like a WebSocket connection; the answer is written from the
 * writable callback: headers first, then the body.
 *
 * @locality lws service thread.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "flushline/log.h"
#include "gw_int.h"

#define CT_JSON "application/json"
#define CT_TEXT "text/plain; charset=utf-8"

struct gw_http_s {
    gw_origin_t o; /* first: the origin map holds &req->o */
    gw_t *gw;
    struct lws *wsi;
    bool registered, post, wants_flush;
    char user[FL_JWT_MAX_STR + 1];
    char doc[FL_DOC_ID_MAX];
    size_t doclen;
    char *body;
    size_t blen, bcap;
    bool too_big;
    gw_doc_t *waiting_doc; /* GET /v1/docs: waits until live */
    bool waiting_outcome;
    int64_t deadline_us;
    /* the answer */
    bool ready, headers_sent;
    int status;
    const char *ctype;
    char *resp;
    size_t rlen;
};

size_t gw_http_session_size(void)
{
    return sizeof(gw_http_t);
}

static void unregister(gw_http_t *req)
{
    if (req->registered) {
        gw_map_del(req->gw->origins_map, &req->o.id, sizeof req->o.id);
        req->registered = false;
    }
    if (req->waiting_doc) {
        gw_doc_t *doc = req->waiting_doc;
        req->waiting_doc = NULL;
        if (--doc->http_waiters == 0 && doc->nsubs == 0)
            doc->idle_since_us = gw_now_us();
    }
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

static int respond_error(gw_http_t *req, int status, uint16_t code, const char *reason)
{
    json_t *j = json_pack("{s:i,s:s,s:s}", "code", (int)code, "name", fl_code_name(code),
                          "reason", reason);
    char *text = j ? json_dumps(j, JSON_COMPACT) : NULL;
    int rc = text ? respond(req, status, CT_JSON, text, strlen(text)) : -1;
    free(text);
    json_decref(j);
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

static bool registered_as_origin(gw_t *gw, gw_http_t *req)
{
    req->o.kind = GW_ORIGIN_HTTP;
    req->o.id = ++gw->next_origin;
    req->gw = gw;
    if (gw_map_put(gw->origins_map, &req->o.id, sizeof req->o.id, &req->o) != 0)
        return false;
    req->registered = true;
    req->deadline_us = gw_now_us() + gw->cfg->http_flush_timeout_ms * 1000;
    return true;
}

/* Bearer token -> claims; answers 401 on failure. */
static bool check_token(gw_t *gw, gw_http_t *req, fl_claims_t *claims)
{
    char auth[FL_JWT_MAX_TOKEN + 16], errstr[256];
    int n = lws_hdr_copy(req->wsi, auth, sizeof auth, WSI_TOKEN_HTTP_AUTHORIZATION);
    int rc;
    if (n <= 7 || strncasecmp(auth, "Bearer ", 7) != 0) {
        respond_error(req, 401, FL_CODE_UNAUTHORIZED, "an Authorization: Bearer token is needed");
        return false;
    }
    rc = fl_jwt_verify(gw->keys, auth + 7, (size_t)n - 7, gw_now_s(), claims, errstr,
                       sizeof errstr);
    if (rc != 0) {
        fl_counter_inc(gw->m.auth_failures);
        respond_error(req, 401, rc == -FL_CODE_TOKEN_EXPIRED ? FL_CODE_TOKEN_EXPIRED
                                                              : FL_CODE_UNAUTHORIZED, errstr);
        return false;
    }
    return true;
}

static void answer_doc(gw_t *gw, gw_http_t *req, gw_doc_t *doc)
{
    if (doc->minimal) {
        /* minimum disclosure does not restrict authorised reads */
    }
    respond_buf(req, 200, gw_docs_snapshot(gw, doc, FL_WIRE_JSON));
}

static int on_request(gw_t *gw, gw_http_t *req, const char *path)
{
    char *body = NULL;
    size_t len = 0;
    const char *p;

    fl_counter_inc(gw->m.http_requests);
    req->post = lws_hdr_total_length(req->wsi, WSI_TOKEN_POST_URI) > 0;
    if (!req->post && lws_hdr_total_length(req->wsi, WSI_TOKEN_GET_URI) <= 0)
        return respond_text(req, 405, "method not allowed\n");
    if (!req->post && strcmp(path, "/healthz") == 0)
        return respond_text(req, 200, "ok\n");
    if (!req->post && strcmp(path, "/readyz") == 0) {
        bool ok = atomic_load(&gw->kafka_ok) && !gw->draining;
        return respond_text(req, ok ? 200 : 503, ok ? "ready\n" : "not ready\n");
    }
    if (!req->post && strcmp(path, "/metrics") == 0) {
        int rc;
        if (fl_metrics_render(gw->m.reg, &body, &len) != 0)
            return respond_text(req, 500, "out of memory\n");
        rc = respond(req, 200, FL_METRICS_CONTENT_TYPE, body, len);
        free(body);
        return rc;
    }
    if (strncmp(path, "/v1/docs/", 9) == 0) {
        fl_claims_t *claims;
        size_t n;
        int rc = 0;
        p = path + 9;
        n = strlen(p);
        if (req->post) {
            if (n < 7 || strcmp(p + n - 6, "/flush") != 0)
                return respond_text(req, 404, "not found\n");
            n -= 6;
            req->wants_flush = true;
        }
        if (n == 0 || n > FL_DOC_ID_MAX || !fl_utf8_valid(p, n))
            return respond_error(req, 400, FL_CODE_BAD_DOC_ID, "bad document id");
        memcpy(req->doc, p, n);
        req->doclen = n;
        if (!(claims = malloc(sizeof *claims)))
            return -1;
        if (!check_token(gw, req, claims)) {
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
        free(claims);
        if (req->post)
            return 0; /* the body follows */
        gw_doc_t *doc = gw_docs_open(gw, (fl_slice_t){req->doc, n});
        if (!doc)
            return respond_error(req, 500, FL_CODE_INTERNAL, "out of memory");
        if (doc->state == GW_DOC_LIVE) {
            answer_doc(gw, req, doc);
            return 0;
        }
        if (!registered_as_origin(gw, req))
            return respond_error(req, 500, FL_CODE_INTERNAL, "out of memory");
        req->waiting_doc = doc;
        doc->http_waiters++;
        doc->idle_since_us = 0;
        return rc;
    }
    return respond_text(req, 404, "not found\n");
}

/* The whole body of POST /v1/docs/{id}/flush is here. */
static void on_flush_body(gw_t *gw, gw_http_t *req)
{
    json_t *j = NULL;
    json_error_t jerr;
    fl_wire_msg_t msg;
    fl_wire_limits_t lim = fl_wire_limits_frame;
    gw_inflight_t *inf = NULL;
    char *text = NULL, *buf = NULL, errstr[512];
    size_t len;
    int rc;

    if (req->too_big) {
        respond_error(req, 413, FL_CODE_LIMIT, "body over max.frame");
        return;
    }
    j = json_loadb(req->body ? req->body : "", req->blen, JSON_REJECT_DUPLICATES, &jerr);
    if (!j || !json_is_object(j)) {
        respond_error(req, 400, FL_CODE_BAD_FRAME, j ? "the body must be an object" : jerr.text);
        goto done;
    }
    if (!json_object_get(j, "t"))
        json_object_set_new(j, "t", json_string("flush"));
    if (!json_object_get(j, "v"))
        json_object_set_new(j, "v", json_integer(FL_WIRE_VERSION));
    if (!json_object_get(j, "doc"))
        json_object_set_new(j, "doc", json_stringn(req->doc, req->doclen));
    if (!(text = json_dumps(j, JSON_COMPACT))) {
        respond_error(req, 500, FL_CODE_INTERNAL, "out of memory");
        goto done;
    }
    lim.max_frame = (size_t)gw->cfg->max_frame;
    lim.max_commands = (uint32_t)gw->cfg->max_commands;
    fl_arena_reset(gw->arena);
    rc = fl_wire_decode(FL_WIRE_C2S, FL_WIRE_JSON, text, strlen(text), &lim, gw->arena, &msg,
                        errstr, sizeof errstr);
    if (rc == 0 && msg.type != FL_WT_FLUSH) {
        rc = -FL_CODE_BAD_FRAME;
        snprintf(errstr, sizeof errstr, "the body must be a flush");
    }
    if (rc == 0 && (msg.u.flush.doc.len != req->doclen ||
                    memcmp(msg.u.flush.doc.ptr, req->doc, req->doclen) != 0)) {
        rc = -FL_CODE_BAD_FRAME;
        snprintf(errstr, sizeof errstr, "the body names another document than the path");
    }
    if (rc != 0) {
        respond_error(req, 400, (uint16_t)-rc, errstr);
        goto done;
    }
    msg.u.flush.user = (fl_slice_t){req->user, strlen(req->user)};
    if (!registered_as_origin(gw, req)) {
        respond_error(req, 500, FL_CODE_INTERNAL, "out of memory");
        goto done;
    }
    if (fl_wire_encode_flush_record(&msg.u.flush, (fl_slice_t){gw->id, gw->idlen}, req->o.id,
                                    &buf, &len, errstr, sizeof errstr) != 0) {
        respond_error(req, 400, FL_CODE_BAD_FRAME, errstr);
        goto done;
    }
    if (!(inf = malloc(sizeof *inf))) {
        free(buf);
        respond_error(req, 500, FL_CODE_INTERNAL, "out of memory");
        goto done;
    }
    inf->origin = req->o.id;
    memcpy(inf->client_id, msg.u.flush.client_id, FL_CLIENT_ID_LEN);
    inf->seq = msg.u.flush.seq;
    inf->doclen = req->doclen;
    memcpy(inf->doc, req->doc, req->doclen);
    req->waiting_outcome = true;
    gw_docs_produce_flush(gw, msg.u.flush.doc, buf, len, inf);
done:
    free(text);
    json_decref(j);
}

void gw_http_on_outcome(gw_t *gw, gw_http_t *req, const fl_wire_outcome_t *out)
{
    fl_wire_msg_t msg;
    (void)gw;
    if (!req->waiting_outcome)
        return;
    memset(&msg, 0, sizeof msg);
    msg.type = FL_WT_OUTCOME;
    msg.u.outcome.outcome = out->outcome;
    respond_buf(req, 200, gw_buf_encode(&msg, FL_WIRE_JSON));
}

void gw_http_on_unavailable(gw_t *gw, gw_http_t *req, const char *reason)
{
    (void)gw;
    if (req->waiting_outcome)
        respond_error(req, 503, FL_CODE_UNAVAILABLE, reason);
}

void gw_http_on_failed(gw_t *gw, gw_http_t *req, uint16_t code, const char *reason)
{
    (void)gw;
    if (req->waiting_outcome)
        respond_error(req, code == FL_CODE_INTERNAL ? 500 : code == FL_CODE_LIMIT ? 413 : 503,
                      code, reason);
}

typedef struct doc_ctx_s {
    gw_t *gw;
    gw_doc_t *doc;
    int64_t now;
    gw_http_t **hits;
    size_t n, cap;
} doc_ctx_t;

static void collect(void *val, void *arg)
{
    gw_origin_t *o = val;
    doc_ctx_t *c = arg;
    gw_http_t *req = (gw_http_t *)o;
    if (o->kind != GW_ORIGIN_HTTP)
        return;
    if (c->doc ? req->waiting_doc != c->doc
               : !(req->waiting_doc || req->waiting_outcome) || c->now < req->deadline_us)
        return;
    if (c->n == c->cap) {
        size_t cap = c->cap ? c->cap * 2 : 8;
        gw_http_t **h = realloc(c->hits, cap * sizeof *h);
        if (!h)
            return;
        c->hits = h;
        c->cap = cap;
    }
    c->hits[c->n++] = req;
}

void gw_http_on_doc_live(gw_t *gw, gw_doc_t *doc)
{
    doc_ctx_t c = {gw, doc, 0, NULL, 0, 0};
    if (doc->http_waiters == 0)
        return;
    gw_map_each(gw->origins_map, collect, &c);
    for (size_t i = 0; i < c.n; i++)
        answer_doc(gw, c.hits[i], doc);
    free(c.hits);
}

void gw_http_tick(gw_t *gw, int64_t now_us)
{
    doc_ctx_t c = {gw, NULL, now_us, NULL, 0, 0};
    gw_map_each(gw->origins_map, collect, &c);
    for (size_t i = 0; i < c.n; i++)
        respond_error(c.hits[i], 504, FL_CODE_UNAVAILABLE, "no answer in time");
    free(c.hits);
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
    {
        struct lws *wsi = req->wsi;
        reset(req);
        return lws_http_transaction_completed(wsi) ? -1 : 0;
    }
}

int gw_http_callback(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in,
                     size_t len)
{
    gw_t *gw = lws_context_user(lws_get_context(wsi));
    gw_http_t *req = user;

    switch (reason) {
    case LWS_CALLBACK_HTTP:
        if (!req)
            return -1;
        reset(req);
        req->gw = gw;
        req->wsi = wsi;
        {
            /* the whole path (mounts hand over only what follows them) */
            char path[1024];
            if (lws_hdr_copy(wsi, path, sizeof path, WSI_TOKEN_GET_URI) <= 0 &&
                lws_hdr_copy(wsi, path, sizeof path, WSI_TOKEN_POST_URI) <= 0)
                snprintf(path, sizeof path, "%s", in ? (const char *)in : "/");
            return on_request(gw, req, path) ? -1 : 0;
        }
    case LWS_CALLBACK_HTTP_BODY:
        if (!req || !req->wants_flush || req->ready)
            return 0;
        if (req->blen + len > (size_t)gw->cfg->max_frame) {
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
    case LWS_CALLBACK_HTTP_BODY_COMPLETION:
        if (req && req->wants_flush && !req->ready)
            on_flush_body(gw, req);
        return 0;
    case LWS_CALLBACK_HTTP_WRITEABLE:
        return req ? on_writeable(req) : 0;
    case LWS_CALLBACK_CLOSED_HTTP:
        /* the session memory is shared with WebSocket connections: only
         * touch it when it holds an HTTP request of this wsi */
        if (req && req->o.kind != GW_ORIGIN_WS && req->wsi == wsi)
            reset(req);
        return 0;
    default:
        return lws_callback_http_dummy(wsi, reason, user, in, len);
    }
}
