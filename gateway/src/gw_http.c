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
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <sys/socket.h>

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

/* ---- raw request heads -------------------------------------------------------
 * libwebsockets 4.1.6 decodes and normalises the request path before any
 * callback sees it ("//" and "/./" collapse, ".." climbs, "+" becomes a
 * space, "%00" drops the connection, "%0A" ends the line), which would
 * make a URL address another document than it names. So, without TLS, the
 * gateway looks at each new connection's request head itself before lws
 * reads it: with MSG_PEEK, so the bytes stay in the socket for lws. When
 * the head is already there at accept (the common case) the request line
 * is kept by fd and lws goes on. Else a duplicate of the socket waits as a
 * raw file wsi (lws does not read those) that peeks again on each POLLIN
 * (pausing a few ms in between, the data being still unread), and is
 * adopted by lws (lws_adopt_socket_vhost) once the head is in; lws drops
 * its own copy. The HTTP and upgrade callbacks take the line back by fd.
 * One request per connection: every HTTP answer closes it (a later request
 * on the same connection has no line). Over the gateway's own TLS the
 * bytes are encrypted here: no line, and /v1/docs is refused
 * (docs/gateway.md). (Handing lws the bytes read instead,
 * lws_adopt_socket_vhost_readbuf, makes lws 4.1.6 spin on any request
 * with a body: it feeds its own buffered head back as the body.) */

#define GW_HEAD_REPEEK_US 5000 /* wait before peeking at a partial head again */

static bool head_refuse(gw_t *gw, int fd, const gw_head_line_t *hl, size_t peeked);

typedef struct gw_head_s {
    gw_t *gw;
    struct lws *wsi;
    lws_sorted_usec_list_t sul; /* lets POLLIN in again after a partial head */
} gw_head_t;

/* A socket whose head is in, waiting for the next loop turn to be adopted
 * by lws (not from inside the callback of the wsi that waited for it). */
struct gw_handoff_s {
    struct gw_handoff_s *next;
    int fd;
};

size_t gw_http_head_size(void)
{
    return sizeof(gw_head_t);
}

static void head_line_del(gw_t *gw, int fd)
{
    gw_head_line_t *hl = fl_hmap_get(gw->heads, &fd, sizeof fd);
    if (hl) {
        fl_hmap_del(gw->heads, &fd, sizeof fd);
        free(hl);
    }
}

/* Keeps "METHOD SP target SP HTTP-version" of buf for fd (replacing a
 * stale one): the target is all between the first and the last space, so
 * a space inside it (which must be percent-encoded) stays visible. A line
 * that does not look like a request keeps nothing (lws refuses it): false
 * then. */
static bool head_line_keep(gw_t *gw, int fd, const char *buf, size_t len)
{
    const char *eol = memchr(buf, '\n', len), *sp1, *sp2;
    gw_head_line_t *hl;
    size_t mlen, tlen;
    head_line_del(gw, fd);
    if (!eol)
        return false;
    if (!(sp1 = memchr(buf, ' ', (size_t)(eol - buf))))
        return false;
    for (sp2 = eol; sp2 > sp1 && *sp2 != ' '; sp2--)
        ;
    if (sp2 == sp1)
        return false;
    mlen = (size_t)(sp1 - buf);
    tlen = (size_t)(sp2 - sp1 - 1);
    if (mlen == 0 || mlen >= sizeof hl->method || tlen > GW_TARGET_MAX ||
        !(hl = malloc(sizeof *hl + tlen)))
        return false;
    hl->fd = fd;
    hl->at_us = fl_clock_mono_us();
    memcpy(hl->method, buf, mlen);
    hl->method[mlen] = '\0';
    hl->tlen = tlen;
    memcpy(hl->target, sp1 + 1, tlen);
    if (fl_hmap_put(gw->heads, &hl->fd, sizeof hl->fd, hl) != 0) {
        free(hl);
        return false;
    }
    return true;
}

gw_head_line_t *gw_http_take_head(gw_t *gw, struct lws *wsi)
{
    int fd = (int)lws_get_socket_fd(wsi);
    gw_head_line_t *hl = gw->heads ? fl_hmap_get(gw->heads, &fd, sizeof fd) : NULL;
    if (hl)
        fl_hmap_del(gw->heads, &fd, sizeof fd);
    return hl;
}

/* Peeks at fd's head: 1 when it is complete (or as long as we read), 0 when
 * more is to come, -1 when the peer is gone. *n: bytes seen. */
static int head_peek(gw_t *gw, int fd, size_t *n)
{
    ssize_t r = recv(fd, gw->headbuf, GW_HEAD_MAX, MSG_PEEK | MSG_DONTWAIT);
    *n = 0;
    if (r == 0)
        return -1;
    if (r < 0)
        return errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR ? 0 : -1;
    *n = (size_t)r;
    if (*n >= GW_HEAD_MAX || memmem(gw->headbuf, *n, "\r\n\r\n", 4) ||
        memmem(gw->headbuf, *n, "\n\n", 2))
        return 1;
    return 0;
}

int gw_http_on_accept(gw_t *gw, int fd)
{
    lws_sock_file_fd_type desc;
    size_t n;
    int dup_fd, rc;

    if (!gw->raw_heads || !gw->heads)
        return 0;
    head_line_del(gw, fd); /* a closed predecessor's */
    if ((rc = head_peek(gw, fd, &n)) != 0) {
        if (rc > 0 && head_line_keep(gw, fd, gw->headbuf, n) &&
            head_refuse(gw, fd, fl_hmap_get(gw->heads, &fd, sizeof fd), n)) {
            head_line_del(gw, fd);
            return 1; /* answered: lws closes it */
        }
        return 0; /* (a peer already gone: lws sees it too) */
    }
    /* not all there yet: wait for it on a duplicate */
    if ((dup_fd = fcntl(fd, F_DUPFD_CLOEXEC, 0)) < 0)
        return 0; /* served without a line: /v1/docs is refused */
    desc.filefd = dup_fd;
    if (!lws_adopt_descriptor_vhost(gw->vhost, LWS_ADOPT_RAW_FILE_DESC, desc, "flushline-head",
                                    NULL))
        return 0; /* (lws closed the duplicate) */
    return 1; /* lws closes its copy; the duplicate carries on */
}

static void on_handoff(lws_sorted_usec_list_t *sul)
{
    gw_t *gw = lws_container_of(sul, gw_t, sul_handoff);
    struct gw_handoff_s *h = gw->handoffs, *rev = NULL;
    gw->handoffs = NULL;
    while (h) { /* oldest first */
        struct gw_handoff_s *next = h->next;
        h->next = rev;
        rev = h;
        h = next;
    }
    while (rev) {
        struct gw_handoff_s *next = rev->next;
        /* lws reads the head from the socket as if it had just accepted
         * it; on failure it has closed the socket */
        if (!lws_adopt_socket_vhost(gw->vhost, rev->fd))
            head_line_del(gw, rev->fd);
        free(rev);
        rev = next;
    }
}

static void on_repeek(lws_sorted_usec_list_t *sul)
{
    gw_head_t *head = lws_container_of(sul, gw_head_t, sul);
    lws_rx_flow_control(head->wsi, 1);
}

int gw_http_head_callback(struct lws *wsi, enum lws_callback_reasons reason, void *user,
                          void *in, size_t len)
{
    gw_t *gw = lws_context_user(lws_get_context(wsi));
    gw_head_t *head = user;
    struct gw_handoff_s *h;
    size_t n;
    int fd, rc;

    (void)in;
    (void)len;
    switch (reason) {
    case LWS_CALLBACK_RAW_ADOPT_FILE:
        if (!head)
            return -1;
        memset(head, 0, sizeof *head);
        head->gw = gw;
        head->wsi = wsi;
        /* a client that never finishes its head cannot hold a socket */
        lws_set_timeout(wsi, PENDING_TIMEOUT_USER_OK, GW_HEAD_TIMEOUT_S);
        return 0;
    case LWS_CALLBACK_RAW_RX_FILE:
        if (!head)
            return -1;
        fd = (int)lws_get_socket_fd(wsi);
        if ((rc = head_peek(gw, fd, &n)) < 0)
            return -1; /* gone */
        if (rc == 0) {
            /* the bytes stay unread, so POLLIN would fire at once again:
             * pause, then look again */
            lws_rx_flow_control(wsi, 0);
            lws_sul_schedule(gw->context, 0, &head->sul, on_repeek, GW_HEAD_REPEEK_US);
            return 0;
        }
        /* the head is in: lws takes a duplicate, this wsi closes its fd
         * (unless the gateway answers a bad /v1/docs line itself) */
        if (head_line_keep(gw, fd, gw->headbuf, n) &&
            head_refuse(gw, fd, fl_hmap_get(gw->heads, &fd, sizeof fd), n)) {
            head_line_del(gw, fd);
            return -1;
        }
        head_line_del(gw, fd);
        if (!(h = malloc(sizeof *h)))
            return -1;
        if ((h->fd = fcntl(fd, F_DUPFD_CLOEXEC, 0)) < 0) {
            free(h);
            return -1;
        }
        head_line_keep(gw, h->fd, gw->headbuf, n);
        h->next = gw->handoffs;
        gw->handoffs = h;
        lws_sul_schedule(gw->context, 0, &gw->sul_handoff, on_handoff, 1);
        return -1;
    case LWS_CALLBACK_RAW_CLOSE_FILE:
        if (head)
            lws_sul_cancel(&head->sul);
        return 0;
    default:
        return 0;
    }
}

/* Lines nobody took (lws refused the request, the client went away before
 * its headers were served) go after a while. */
static void heads_sweep(gw_t *gw, int64_t now_us)
{
    gw_head_line_t *hl;
    if (!gw->heads)
        return;
    FL_HMAP_FOREACH(gw->heads, it, hl)
        if (hl->at_us < now_us - 30 * 1000000ll)
            head_line_del(gw, hl->fd); /* the current entry: the iteration goes on */
}

void gw_http_heads_free(gw_t *gw)
{
    while (gw->handoffs) {
        struct gw_handoff_s *h = gw->handoffs;
        gw->handoffs = h->next;
        close(h->fd);
        free(h);
    }
    if (gw->heads) {
        gw_head_line_t *hl;
        FL_HMAP_FOREACH(gw->heads, it, hl)
            free(hl);
        fl_hmap_free(gw->heads);
        gw->heads = NULL;
    }
}

static void unregister(gw_http_t *req)
{
    if (req->registered) {
        fl_hmap_del(req->gw->origins_map, &req->o.id, sizeof req->o.id);
        req->registered = false;
    }
    if (req->waiting_doc) {
        gw_doc_t *doc = req->waiting_doc;
        req->waiting_doc = NULL;
        if (--doc->http_waiters == 0 && doc->nsubs == 0)
            doc->idle_since_us = fl_clock_mono_us();
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
    req->o.id = gw_origin_next(gw);
    req->gw = gw;
    if (fl_hmap_put(gw->origins_map, &req->o.id, sizeof req->o.id, &req->o) != 0)
        return false;
    req->registered = true;
    req->deadline_us = fl_clock_mono_us() + gw->cfg->http_flush_timeout_ms * 1000;
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
    rc = fl_jwt_verify(gw->keys, auth + 7, (size_t)n - 7, fl_clock_wall_s(), claims, errstr,
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

/* ---- document ids in URLs ---------------------------------------------------
 * The id is everything after "/v1/docs/" (for POST, before the one final
 * "/flush"), taken from the request line as it came. Bytes outside
 * RFC 3986 pchar (unreserved, sub-delims, ':' and '@') and '/' must be
 * percent-encoded; "%XX" (either case) is one byte; '/' and "%2F" are both
 * the byte '/'. The decoded id must be 1-255 bytes of UTF-8 without
 * control bytes (NUL included) and without an empty, "." or ".." segment
 * (so a trailing slash or "//" is refused): such a request is answered
 * 400 bad_doc_id, never served as another document. */

static bool pchar_literal(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           (c && strchr("-._~!$&'()*+,;=:@/", c) != NULL);
}

static int hexval(unsigned char c)
{
    return c >= '0' && c <= '9' ? c - '0'
         : c >= 'a' && c <= 'f' ? c - 'a' + 10
         : c >= 'A' && c <= 'F' ? c - 'A' + 10
         : -1;
}

int gw_http_doc_id(const char *path, size_t len, char *out, size_t *outlen, const char **why)
{
    size_t n = 0, seg = 0;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)path[i];
        if (c == '%') {
            int hi = i + 1 < len ? hexval((unsigned char)path[i + 1]) : -1;
            int lo = i + 2 < len ? hexval((unsigned char)path[i + 2]) : -1;
            if (hi < 0 || lo < 0) {
                *why = "a '%' must be followed by two hex digits";
                return -1;
            }
            c = (unsigned char)(hi << 4 | lo);
            i += 2;
        } else if (!pchar_literal(c)) {
            *why = "a byte outside A-Z a-z 0-9 -._~!$&'()*+,;=:@/ must be percent-encoded";
            return -1;
        }
        if (n == FL_DOC_ID_MAX) {
            *why = "a document id is at most 255 bytes (decoded)";
            return -1;
        }
        if (c < 0x20 || c == 0x7f) {
            *why = "a document id holds no control byte or NUL";
            return -1;
        }
        out[n++] = (char)c;
    }
    if (n == 0) {
        *why = "the document id is empty";
        return -1;
    }
    /* segments: none empty (no leading, trailing or double '/'), none "." or ".." */
    for (size_t i = 0; i <= n; i++) {
        if (i < n && out[i] != '/')
            continue;
        size_t sl = i - seg;
        if (sl == 0) {
            *why = "a document id has no empty segment (no leading, trailing or double '/')";
            return -1;
        }
        if ((sl == 1 && out[seg] == '.') || (sl == 2 && out[seg] == '.' && out[seg + 1] == '.')) {
            *why = "a document id has no \".\" or \"..\" segment";
            return -1;
        }
        seg = i + 1;
    }
    if (!fl_utf8_valid(out, n)) {
        *why = "a document id is UTF-8 (after percent-decoding)";
        return -1;
    }
    *outlen = n;
    return 0;
}

/* Checks a /v1/docs/... request (path/plen without the query): 0 with the
 * id in doc (FL_DOC_ID_MAX bytes), or the HTTP status of its refusal with
 * its code and reason. */
static int docs_target(const char *method, const char *path, size_t plen, bool has_query,
                       char *doc, size_t *doclen, uint16_t *code, char *reason, size_t rsize)
{
    const char *p = path + 9, *why = NULL;
    size_t n = plen - 9;
    bool post = strcmp(method, "POST") == 0;
    *code = FL_CODE_BAD_DOC_ID;
    if (!post && strcmp(method, "GET") != 0) {
        *code = FL_CODE_BAD_FRAME;
        snprintf(reason, rsize, "method not allowed: GET /v1/docs/{id}, POST /v1/docs/{id}/flush");
        return 405;
    }
    if (has_query) {
        snprintf(reason, rsize, "no query string here: percent-encode '?' in a document id");
        return 400;
    }
    if (post) {
        if (n < 6 || memcmp(p + n - 6, "/flush", 6) != 0) {
            *code = FL_CODE_BAD_FRAME;
            snprintf(reason, rsize, "no such route: POST goes to /v1/docs/{id}/flush");
            return 404;
        }
        n -= 6;
    }
    if (gw_http_doc_id(p, n, doc, doclen, &why) != 0) {
        snprintf(reason, rsize, "bad document id in the URL: %s", why);
        return 400;
    }
    return 0;
}

/* An error answer written straight to a socket lws has not read from yet:
 * for a /v1/docs request line that lws would mangle or drop (a "%00"
 * makes it close the connection without a word). The peeked head is read
 * first, so that the close sends FIN, not RST. True when it answered. */
static bool head_refuse(gw_t *gw, int fd, const gw_head_line_t *hl, size_t peeked)
{
    char doc[FL_DOC_ID_MAX], reason[256], *text = NULL, hdr[256];
    const char *q;
    size_t doclen, plen;
    uint16_t code;
    int status, hn;
    json_t *j;

    if (!hl || hl->tlen < 9 || memcmp(hl->target, "/v1/docs/", 9) != 0)
        return false;
    q = memchr(hl->target, '?', hl->tlen);
    plen = q ? (size_t)(q - hl->target) : hl->tlen;
    if ((status = docs_target(hl->method, hl->target, plen, q != NULL, doc, &doclen, &code,
                              reason, sizeof reason)) == 0)
        return false;
    fl_counter_inc(gw->m.http_requests);
    j = json_pack("{s:i,s:s,s:s}", "code", (int)code, "name", fl_code_name(code), "reason",
                  reason);
    text = j ? json_dumps(j, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
    json_decref(j);
    if (text) {
        hn = snprintf(hdr, sizeof hdr,
                      "HTTP/1.1 %d %s\r\ncontent-type: " CT_JSON "\r\ncontent-length: %zu\r\n"
                      "cache-control: no-store\r\nconnection: close\r\nserver: " GW_SERVER_NAME
                      "\r\n\r\n",
                      status, status == 404 ? "Not Found" : status == 405 ? "Method Not Allowed"
                                                                          : "Bad Request",
                      strlen(text));
        ssize_t got = recv(fd, gw->headbuf, peeked, MSG_DONTWAIT); /* consumed */
        (void)got;
        /* a few hundred bytes into an idle socket's buffer: they fit */
        if (send(fd, hdr, (size_t)hn, MSG_DONTWAIT | MSG_NOSIGNAL) == hn)
            send(fd, text, strlen(text), MSG_DONTWAIT | MSG_NOSIGNAL);
        free(text);
    }
    return true;
}

/* The route of a request. path/plen is the raw path (no query), or lws's
 * normalised one when the request line was not seen (then ids are not
 * served). */
static int on_request(gw_t *gw, gw_http_t *req, const char *method, const char *path,
                      size_t plen, bool has_query, bool raw)
{
    char *body = NULL;
    size_t len = 0;
    bool get = strcmp(method, "GET") == 0;

    fl_counter_inc(gw->m.http_requests);
    req->post = strcmp(method, "POST") == 0;
#define IS(lit) (plen == sizeof(lit) - 1 && memcmp(path, lit, plen) == 0)
    if (IS("/healthz") || IS("/readyz") || IS("/metrics")) {
        if (!get)
            return respond_error(req, 405, FL_CODE_BAD_FRAME, "method not allowed: use GET");
        if (IS("/healthz"))
            return respond_text(req, 200, "ok\n");
        if (IS("/readyz")) {
            bool ok = atomic_load(&gw->kafka_ok) && !gw->draining;
            return respond_text(req, ok ? 200 : 503,
                                ok ? "ready\n" : gw->draining ? "draining\n" : "not ready\n");
        }
        int rc;
        if (fl_metrics_render(gw->m.reg, &body, &len) != 0)
            return respond_error(req, 500, FL_CODE_INTERNAL, "out of memory");
        rc = respond(req, 200, FL_METRICS_CONTENT_TYPE, body, len);
        free(body);
        return rc;
    }
#undef IS
    if (plen >= 9 && memcmp(path, "/v1/docs/", 9) == 0) {
        fl_claims_t *claims;
        char reason[256];
        uint16_t code;
        size_t n;
        int status;
        if (!raw)
            return respond_error(req, 400, FL_CODE_BAD_DOC_ID,
                                 gw->raw_heads ? "send each /v1/docs request on a connection of "
                                                 "its own (Connection: close)"
                                               : "document ids cannot be read exactly over the "
                                                 "gateway's own TLS: terminate TLS in front of it");
        if ((status = docs_target(method, path, plen, has_query, req->doc, &req->doclen, &code,
                                  reason, sizeof reason)) != 0)
            return respond_error(req, status, code, reason);
        req->wants_flush = req->post;
        n = req->doclen;
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
        return 0;
    }
    return respond_error(req, 404, FL_CODE_BAD_FRAME,
                         "no such route (the API: /healthz, /readyz, /metrics, /v1/ws, "
                         "/v1/docs/{id}, /v1/docs/{id}/flush)");
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
    /* U+0000 is data here as in text frames */
    j = json_loadb(req->body ? req->body : "", req->blen, JSON_REJECT_DUPLICATES | JSON_ALLOW_NUL,
                   &jerr);
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
        /* name the refused flush as far as the body says */
        fl_slice_t doc;
        uint8_t cid[FL_CLIENT_ID_LEN];
        uint64_t seq;
        unsigned ident = fl_wire_flush_ident(FL_WIRE_JSON, text, strlen(text), &lim, gw->arena,
                                             &doc, cid, &seq);
        respond_error_ident(req, 400, (uint16_t)-rc, errstr, ident, doc, cid, seq);
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

void gw_http_on_failed(gw_t *gw, gw_http_t *req, uint16_t code, const char *reason)
{
    (void)gw;
    if (req->waiting_outcome)
        respond_error(req, code == FL_CODE_INTERNAL ? 500 : code == FL_CODE_LIMIT ? 413 : 503,
                      code, reason);
}

/* Answering a request unregisters it, which deletes the current entry of
 * the origins map: the iteration allows that and goes on. */
void gw_http_on_doc_live(gw_t *gw, gw_doc_t *doc)
{
    gw_origin_t *o;
    if (doc->http_waiters == 0)
        return;
    FL_HMAP_FOREACH(gw->origins_map, it, o)
        if (o->kind == GW_ORIGIN_HTTP && ((gw_http_t *)o)->waiting_doc == doc)
            answer_doc(gw, (gw_http_t *)o, doc);
}

void gw_http_tick(gw_t *gw, int64_t now_us)
{
    gw_origin_t *o;
    heads_sweep(gw, now_us);
    FL_HMAP_FOREACH(gw->origins_map, it, o) {
        gw_http_t *req = (gw_http_t *)o;
        if (o->kind == GW_ORIGIN_HTTP && (req->waiting_doc || req->waiting_outcome) &&
            now_us >= req->deadline_us)
            respond_error(req, 504, FL_CODE_UNAVAILABLE, "no answer in time");
    }
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
            gw_head_line_t *hl = gw_http_take_head(gw, wsi);
            const char *path, *q;
            size_t plen;
            int rc;
            if (hl) {
                /* the request line as it came: the route and the id are
                 * read from it, never from lws's normalised copy */
                q = memchr(hl->target, '?', hl->tlen);
                plen = q ? (size_t)(q - hl->target) : hl->tlen;
                rc = on_request(gw, req, hl->method, hl->target, plen, q != NULL, true);
                free(hl);
            } else {
                /* the whole path (mounts hand over only what follows them) */
                char lpath[1024];
                const char *method = lws_hdr_total_length(wsi, WSI_TOKEN_POST_URI) > 0 ? "POST"
                                   : lws_hdr_total_length(wsi, WSI_TOKEN_GET_URI) > 0  ? "GET"
                                                                                         : "?";
                if (lws_hdr_copy(wsi, lpath, sizeof lpath, WSI_TOKEN_GET_URI) <= 0 &&
                    lws_hdr_copy(wsi, lpath, sizeof lpath, WSI_TOKEN_POST_URI) <= 0)
                    snprintf(lpath, sizeof lpath, "%s", in ? (const char *)in : "/");
                path = lpath;
                rc = on_request(gw, req, method, path, strlen(path), false, false);
            }
            return rc ? -1 : 0;
        }
    case LWS_CALLBACK_ADD_HEADERS: {
        /* static files (the mount names this protocol): one request per
         * connection here too, and the line read for it is done with */
        struct lws_process_html_args *args = in;
        unsigned char *p = (unsigned char *)args->p, *end = p + args->max_len;
        free(gw_http_take_head(gw, wsi));
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
