/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The contract as a client author reads it (issue 12), against the real
 * gateway, broker and processor, over raw sockets (tests/util/fl_ws.h):
 * - HTTP document ids: a URL addresses exactly the id it names or is
 *   refused with 400 {code, name, reason}: "//", ".", "..", "%2e%2e", a
 *   trailing "/", "%0A", "%00"; "%2F" and '+' are what
 *   they say; also when the head arrives in pieces; /v1/ws is matched raw;
 *   404 and 405 are JSON too; a never-written document is 200 at version 0;
 * - answers take the form of the frame they answer (outcomes included),
 *   pushes the form of the hello;
 * - every refusal of a flush names it (seq 0, too many commands, HTTP);
 * - U+0000 in JSON frames is data: written over msgpack, read and written
 *   back (test, path, create key) over JSON;
 * - an empty proposed create key is in the result;
 * - a hello with an over-long client name or token gets limit, saying which;
 *   a bad {"$bin"} says so;
 * - a flush's outcome never overtakes its changes on its own connection,
 *   even while the subscription's catch-up is pending;
 * - have_version ahead of the document gets a snapshot;
 * - the token leeway: an exp just past is welcomed (exp and leeway
 *   announced) and kept; the connection closes with 4004 at exp + leeway,
 *   not before; auth and HTTP apply the same leeway;
 * - SIGTERM: /readyz answers 503 on an open port during drain.grace.ms,
 *   clients are still served, new upgrades get 4201, then 4201 to all and
 *   exit 0.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "fl_ktest.h"
#include "fl_proc.h"
#include "fl_test.h"
#include "fl_ws.h"
#include "flushline/jwt.h"
#include "flushline/log.h"
#include "flushline/wire.h"

static const char *bootstrap;
static char prefix[96], keypath[600];
static fl_proc_t processor, gateway, gw_leeway, gw_drain;
static int gw_port, leeway_port, drain_port;
static fl_jwt_keyfile_t *key;
static fl_arena_t *arena;
static char *tok_rw, *tok_ro;

static const char *CID = "c1c2c3c4c5c6c7c8c9cacbcccdcecfd0";

/* ---- tokens and processes ---------------------------------------------------------- */

static char *mint_at(const char *sub, const char *read, const char *write, int64_t exp)
{
    char claims[1024], errstr[256], *tok = NULL;
    int64_t now = (int64_t)time(NULL);
    snprintf(claims, sizeof claims,
             "{\"sub\":\"%s\",\"exp\":%lld,\"iat\":%lld,\"read\":[%s],\"write\":[%s]}", sub,
             (long long)exp, (long long)now, read, write);
    if (fl_jwt_mint_keyfile(key, claims, &tok, errstr, sizeof errstr) != 0)
        fprintf(stderr, "mint: %s\n", errstr);
    return tok;
}

static int setup_keys(void)
{
    char errstr[256], text[2048];
    long n;
    FILE *fp;
    snprintf(keypath, sizeof keypath, "%s/tests/%s.key", getenv("FL_BINARY_DIR"), prefix);
    if (fl_jwt_keyfile_generate(FL_JWT_EDDSA, "k1", &key, errstr, sizeof errstr) != 0)
        return -1;
    if ((n = fl_jwt_keyfile_format(key, false, text, sizeof text)) < 0 ||
        !(fp = fopen(keypath, "w")))
        return -1;
    fwrite(text, 1, (size_t)n, fp);
    fclose(fp);
    return 0;
}

typedef struct healthy_s {
    fl_proc_t *proc;
    int port;
} healthy_t;

static bool gateway_healthy(void *arg)
{
    healthy_t *h = arg;
    char *body = NULL;
    int st = fl_http_get(h->port, "/healthz", &body);
    free(body);
    return st == 200 || !fl_proc_alive(h->proc);
}

/* A gateway on a free port with the common settings and extra ones. */
static int start_gateway(fl_proc_t *g, int *port, const char *name, const char *const *extra)
{
    char log[512], portstr[16], gwid[160];
    const char *args[40];
    int n = 0;
    healthy_t h = {g, 0};
    snprintf(log, sizeof log, "%s/tests/%s-%s.log", getenv("FL_BINARY_DIR"), prefix, name);
    snprintf(portstr, sizeof portstr, "%d", *port = fl_free_port());
    snprintf(gwid, sizeof gwid, "%s-%s", prefix, name);
    const char *base[] = {"--bootstrap", bootstrap, "--prefix", prefix, "--partitions", "4",
                          "--port", portstr, "--jwt.keys", keypath, "--gateway.id", gwid,
                          "--log.level", "debug"};
    for (size_t i = 0; i < sizeof base / sizeof base[0]; i++)
        args[n++] = base[i];
    for (; extra && *extra; extra++)
        args[n++] = *extra;
    args[n] = NULL;
    if (fl_proc_start(g, "flushline-gateway", args, log) != 0)
        return -1;
    h.port = *port;
    if (!fl_wait_until(gateway_healthy, &h, 60000) || !fl_proc_alive(g)) {
        fl_proc_dump_log(g, 30);
        return -1;
    }
    return 0;
}

static int start_all(void)
{
    char log[512], port[16], txid[160], group[160];
    snprintf(log, sizeof log, "%s/tests/%s-processor.log", getenv("FL_BINARY_DIR"), prefix);
    snprintf(port, sizeof port, "%d", fl_free_port());
    snprintf(txid, sizeof txid, "%s-tx", prefix);
    snprintf(group, sizeof group, "%s-processors", prefix);
    const char *pargs[] = {"--bootstrap", bootstrap, "--prefix", prefix, "--partitions", "4",
                           "--group.id", group, "--transactional.id", txid, "--http.port", port,
                           NULL};
    if (fl_proc_start(&processor, "flushline-processor", pargs, log) != 0)
        return -1;
    return start_gateway(&gateway, &gw_port, "gw", NULL);
}

/* ---- raw HTTP and WebSocket helpers ------------------------------------------------------ */

/* Sends req (len bytes) on a fresh connection, in pieces of `piece` bytes
 * (0: at once), and reads the answer until the server closes. Returns the
 * status (-1: no answer) with the body in *out (malloc'd, NUL-terminated). */
static int http_raw(int port, const char *req, size_t len, size_t piece, char **out)
{
    fl_ws_t *c = calloc(1, sizeof *c);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    char *end, *p;
    int status = -1;
    size_t clen = 0;
    *out = NULL;
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if ((c->fd = socket(AF_INET, SOCK_STREAM, 0)) < 0 ||
        connect(c->fd, (struct sockaddr *)&sa, sizeof sa) != 0)
        goto done;
    for (size_t off = 0; off < len;) {
        size_t n = piece && len - off > piece ? piece : len - off;
        if (write(c->fd, req + off, n) != (ssize_t)n)
            goto done;
        off += n;
        if (piece) {
            struct timespec ts = {0, 2 * 1000000}; /* spread the head over several reads */
            nanosleep(&ts, NULL);
        }
    }
    while (!(end = memmem(c->buf, c->len, "\r\n\r\n", 4)))
        if (fl_ws_read_more(c, 15000) != 0)
            goto done;
    sscanf(c->buf, "HTTP/1.1 %d", &status);
    *end = '\0';
    if ((p = strcasestr(c->buf, "content-length:")))
        clen = (size_t)strtoul(p + 15, NULL, 10);
    end += 4;
    while ((size_t)(c->buf + c->len - end) < clen)
        if (fl_ws_read_more(c, 15000) != 0)
            break;
    *out = strndup(end, clen);
done:
    fl_ws_close(c);
    free(c);
    return status;
}

static int http(int port, const char *method, const char *path, const char *token,
                const char *body, size_t piece, char **out)
{
    char req[16384], auth[9000] = "";
    if (token)
        snprintf(auth, sizeof auth, "Authorization: Bearer %s\r\n", token);
    snprintf(req, sizeof req, "%s %s HTTP/1.1\r\nHost: x\r\n%sContent-Length: %zu\r\n\r\n%s",
             method, path, auth, body ? strlen(body) : 0, body ? body : "");
    return http_raw(port, req, strlen(req), piece, out);
}

/* The version of a document as GET /v1/docs says, or -1. */
static long doc_version(const char *doc_url)
{
    char *body = NULL, path[600];
    long v = -1;
    const char *p;
    snprintf(path, sizeof path, "/v1/docs/%s", doc_url);
    if (http(gw_port, "GET", path, tok_ro, NULL, 0, &body) == 200 && body &&
        (p = strstr(body, "\"version\":")))
        v = strtol(p + 10, NULL, 10);
    free(body);
    return v;
}

static bool hello_on(fl_ws_t *ws, int port, const char *tok, fl_wire_msg_t *welcome)
{
    fl_wire_msg_t msg;
    if (fl_ws_connect(ws, port, NULL, 0) != 101)
        return false;
    fl_ws_text(ws, "{\"t\":\"hello\",\"v\":1,\"token\":\"%s\"}", tok);
    if (fl_ws_next(ws, 10000, arena, welcome ? welcome : &msg) != FL_WT_WELCOME)
        return false;
    return true;
}

static bool hello(fl_ws_t *ws, const char *tok)
{
    return hello_on(ws, gw_port, tok, NULL);
}

/* A message encoded with the codec, sent as a binary frame. */
static void send_bin(fl_ws_t *ws, const fl_wire_msg_t *m)
{
    char *buf = NULL, errstr[128];
    size_t len;
    if (fl_wire_encode(m, FL_WIRE_MSGPACK, &buf, &len, errstr, sizeof errstr) == 0)
        fl_ws_send(ws, 2, buf, len);
    else
        fprintf(stderr, "encode: %s\n", errstr);
    free(buf);
}

/* The next frame: its opcode and its decoded message (type returned in
 * *type), skipping nothing. */
static int next_frame(fl_ws_t *ws, int *type, fl_wire_msg_t *msg, char **text)
{
    char *p = NULL, errstr[256];
    size_t n;
    int op = fl_ws_recv(ws, 20000, &p, &n);
    *type = 0;
    if (op == 1 || op == 2) {
        if (fl_wire_decode(FL_WIRE_S2C, op == 1 ? FL_WIRE_JSON : FL_WIRE_MSGPACK, p, n, NULL,
                           arena, msg, errstr, sizeof errstr) == 0)
            *type = msg->type;
        else
            fprintf(stderr, "undecodable: %s\n", errstr);
    } else if (op == 8) {
        *type = -(n >= 2 ? ((uint8_t)p[0] << 8 | (uint8_t)p[1]) : 1005);
    }
    if (text)
        *text = p;
    else
        free(p);
    return op;
}

/* Waits for a message of one type, skipping others (0 if none came). */
static int expect(fl_ws_t *ws, int type, fl_wire_msg_t *msg)
{
    int64_t deadline = fl_test_now_ms() + 20000;
    for (;;) {
        int left = (int)(deadline - fl_test_now_ms());
        int t = left > 0 ? fl_ws_next(ws, left, arena, msg) : 0;
        if (t == type || t <= 0)
            return t;
    }
}

/* ---- 1: document ids in URLs ---------------------------------------------------------------- */

static void test_http_doc_ids(void)
{
    static const char *const refused[] = {
        "acme//x",        "acme/./x",     "acme/../acme/y", "acme/%2e%2e/acme/y",
        "acme/%2E/x",     "acme/x/",      "/acme/x",        "acme/n%0Arest",
        "acme/z%00z",     "acme/%1b",     "acme/%FF",       "acme/%zz",
        "acme/%4",        "acme/a%2F%2Fb",  "acme/sp ace",
    };
    char *body = NULL, path[512];
    static const char *const pieces_of[] = {"acme//x", "acme/z%00z"};

    for (size_t i = 0; i < sizeof refused / sizeof refused[0]; i++) {
        fl_test_current = refused[i];
        snprintf(path, sizeof path, "/v1/docs/%s", refused[i]);
        ASSERT_EQ(http(gw_port, "GET", path, tok_ro, NULL, 0, &body), 400);
        ASSERT_TRUE(body && strstr(body, "\"name\":\"bad_doc_id\"") && strstr(body, "\"reason\":"));
        free(body);
    }
    fl_test_current = "test_http_doc_ids";
    /* a GET's query holds the history parameters (docs/gateway.md): an
     * unknown one is refused as such, never read as part of the id */
    ASSERT_EQ(http(gw_port, "GET", "/v1/docs/acme/x?y=1", tok_ro, NULL, 0, &body), 400);
    ASSERT_TRUE(body && strstr(body, "\"name\":\"bad_frame\"") &&
                strstr(body, "unknown parameter"));
    free(body);
    /* the same when the head comes in pieces (the gateway waits for all of it) */
    for (size_t i = 0; i < sizeof pieces_of / sizeof pieces_of[0]; i++) {
        snprintf(path, sizeof path, "/v1/docs/%s", pieces_of[i]);
        ASSERT_EQ(http(gw_port, "GET", path, tok_ro, NULL, 5, &body), 400);
        ASSERT_TRUE(body && strstr(body, "bad_doc_id"));
        free(body);
    }
    /* a flush to acme//wX is refused and writes nothing, to acme/wX either */
    snprintf(path, sizeof path, "{\"client_id\":\"%s\",\"seq\":1,\"base_version\":0,"
             "\"commands\":[{\"op\":\"incr\",\"path\":\"/n\",\"value\":1}]}", CID);
    ASSERT_EQ(http(gw_port, "POST", "/v1/docs/acme//wX/flush", tok_rw, path, 0, &body), 400);
    free(body);
    ASSERT_EQ(doc_version("acme/wX"), 0);
    /* '+' is a plus (lws would read a space), "%2F" is a slash */
    ASSERT_EQ(http(gw_port, "POST", "/v1/docs/acme/a+b/flush", tok_rw, path, 0, &body), 200);
    ASSERT_TRUE(body && strstr(body, "\"doc\":\"acme/a+b\"") && strstr(body, "\"code\":0"));
    free(body);
    ASSERT_EQ(doc_version("acme/a+b"), 1);
    ASSERT_EQ(doc_version("acme/a%2Bb"), 1);
    ASSERT_EQ(doc_version("acme/a%20b"), 0);
    ASSERT_EQ(doc_version("acme%2Fa+b"), 1);
    /* a percent-encoded UTF-8 id */
    ASSERT_EQ(http(gw_port, "GET", "/v1/docs/acme/d%C3%A9j%C3%A0", tok_ro, NULL, 0, &body), 200);
    ASSERT_TRUE(body && strstr(body, "\"doc\":\"acme/d\xc3\xa9j\xc3\xa0\""));
    free(body);
    /* never written: 200 at version 0 */
    ASSERT_EQ(doc_version("acme/never-written"), 0);
}

static void test_http_errors_are_json(void)
{
    char *body = NULL;
    ASSERT_EQ(http(gw_port, "GET", "/nope", NULL, NULL, 0, &body), 404);
    ASSERT_TRUE(body && strstr(body, "\"code\":20") && strstr(body, "\"name\":\"bad_frame\""));
    free(body);
    ASSERT_EQ(http(gw_port, "DELETE", "/healthz", NULL, NULL, 0, &body), 405);
    ASSERT_TRUE(body && strstr(body, "\"name\":\"bad_frame\"") && strstr(body, "\"reason\""));
    free(body);
    ASSERT_EQ(http(gw_port, "POST", "/v1/docs/acme/x", tok_rw, "{}", 0, &body), 404);
    ASSERT_TRUE(body && strstr(body, "/flush"));
    free(body);
    /* a body that names another document than the path: 400 */
    ASSERT_EQ(http(gw_port, "POST", "/v1/docs/acme/x/flush", tok_rw,
                   "{\"doc\":\"acme/y\",\"client_id\":\"c1c2c3c4c5c6c7c8c9cacbcccdcecfd0\","
                   "\"seq\":1,\"base_version\":0,\"commands\":[]}", 0, &body), 400);
    ASSERT_TRUE(body && strstr(body, "another document") && strstr(body, "\"name\":\"bad_frame\""));
    free(body);
    /* a body over max.frame (1 MiB here): 413 limit */
    {
        size_t blen = (1u << 20) + 4096, n;
        char *req = malloc(blen + 1024);
        n = (size_t)snprintf(req, 1024,
                             "POST /v1/docs/acme/x/flush HTTP/1.1\r\nHost: x\r\n"
                             "Authorization: Bearer %s\r\nContent-Length: %zu\r\n\r\n",
                             tok_rw, blen);
        memset(req + n, ' ', blen);
        ASSERT_EQ(http_raw(gw_port, req, n + blen, 0, &body), 413);
        free(req);
        ASSERT_TRUE(body && strstr(body, "\"name\":\"limit\""));
        free(body);
    }
}

/* The WebSocket path is matched raw too: "//v1//ws" is not "/v1/ws". */
static void test_ws_path_is_raw(void)
{
    fl_ws_t *ws = malloc(sizeof *ws);
    char req[1024];
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)gw_port)};
    int status = -1;
    memset(ws, 0, sizeof *ws);
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ws->fd = socket(AF_INET, SOCK_STREAM, 0);
    ASSERT_EQ(connect(ws->fd, (struct sockaddr *)&sa, sizeof sa), 0);
    snprintf(req, sizeof req,
             "GET //v1//ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
             "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n");
    ASSERT_EQ(write(ws->fd, req, strlen(req)), (ssize_t)strlen(req));
    if (fl_ws_read_more(ws, 5000) == 0)
        sscanf(ws->buf, "HTTP/1.1 %d", &status);
    ASSERT_NE(status, 101);
    fl_ws_close(ws);
    free(ws);
}

/* ---- 4: the form of answers ------------------------------------------------------------------- */

static void flush_json(fl_ws_t *ws, const char *doc, uint64_t seq)
{
    fl_ws_text(ws,
               "{\"t\":\"flush\",\"v\":1,\"doc\":\"%s\",\"client_id\":\"%s\",\"seq\":%llu,"
               "\"base_version\":0,\"commands\":[{\"op\":\"incr\",\"path\":\"/n\",\"value\":1}]}",
               doc, CID, (unsigned long long)seq);
}

static void fill_flush(fl_wire_msg_t *m, fl_cmd_t *cmd, const char *doc, const char *cid_hex,
                       uint64_t seq)
{
    memset(m, 0, sizeof *m);
    memset(cmd, 0, sizeof *cmd);
    m->type = FL_WT_FLUSH;
    m->u.flush.doc = (fl_slice_t){doc, strlen(doc)};
    for (int i = 0; i < FL_CLIENT_ID_LEN; i++)
        sscanf(cid_hex + 2 * i, "%2hhx", &m->u.flush.client_id[i]);
    m->u.flush.seq = seq;
    cmd->op = FL_OP_INCR;
    cmd->path = FL_SLICE("/n");
    cmd->has_value = true;
    cmd->value = fl_value_int(1);
    m->u.flush.ncmds = 1;
    m->u.flush.cmds = cmd;
}

static void test_answer_forms(void)
{
    fl_ws_t *a = malloc(sizeof *a), *b = malloc(sizeof *b);
    fl_wire_msg_t msg, m;
    fl_cmd_t cmd;
    int type, op;
    const char *doc = "acme/forms";
    static const char *const cid2 = "d1d2d3d4d5d6d7d8d9dadbdcdddedfe0";

    /* a: msgpack hello, then a JSON flush: the outcome is JSON, the delta msgpack */
    memset(&m, 0, sizeof m);
    ASSERT_EQ(fl_ws_connect(a, gw_port, NULL, 0), 101);
    m.type = FL_WT_HELLO;
    m.u.hello.token = (fl_slice_t){tok_rw, strlen(tok_rw)};
    send_bin(a, &m);
    ASSERT_EQ(next_frame(a, &type, &msg, NULL), 2);
    ASSERT_EQ(type, FL_WT_WELCOME);
    memset(&m, 0, sizeof m);
    m.type = FL_WT_SUBSCRIBE;
    m.u.sub.doc = (fl_slice_t){doc, strlen(doc)};
    send_bin(a, &m);
    ASSERT_EQ(next_frame(a, &type, &msg, NULL), 2);
    ASSERT_EQ(type, FL_WT_SNAPSHOT);
    flush_json(a, doc, 1);
    ASSERT_EQ(next_frame(a, &type, &msg, NULL), 2); /* the push: the hello's form */
    ASSERT_EQ(type, FL_WT_DELTAS);
    op = next_frame(a, &type, &msg, NULL);
    ASSERT_EQ(type, FL_WT_OUTCOME);
    ASSERT_EQ(op, 1); /* the answer: the flush's form */
    ASSERT_EQ(msg.u.outcome.outcome.seq, 1);

    /* b: JSON hello, then a msgpack flush: the outcome is msgpack */
    ASSERT_TRUE(hello(b, tok_rw));
    fill_flush(&m, &cmd, doc, cid2, 1);
    send_bin(b, &m);
    op = next_frame(b, &type, &msg, NULL);
    ASSERT_EQ(type, FL_WT_OUTCOME);
    ASSERT_EQ(op, 2);
    /* and a's push for b's flush stays msgpack */
    ASSERT_EQ(next_frame(a, &type, &msg, NULL), 2);
    ASSERT_EQ(type, FL_WT_DELTAS);
    fl_ws_close(a);
    fl_ws_close(b);
    free(a);
    free(b);
}

/* ---- 5, 8: refusals name the flush ----------------------------------------------------------- */

static void test_refusals_name_the_flush(void)
{
    fl_ws_t *ws = malloc(sizeof *ws);
    fl_wire_msg_t msg, m;
    fl_cmd_t cmd;
    char *big, *body = NULL, text[600];
    size_t n = 0, cap = 1001 * 48 + 512;

    ASSERT_TRUE(hello(ws, tok_rw));
    /* seq 0, JSON */
    fl_ws_text(ws, "{\"t\":\"flush\",\"v\":1,\"doc\":\"acme/r\",\"client_id\":\"%s\",\"seq\":0,"
                   "\"base_version\":0,\"commands\":[]}", CID);
    ASSERT_EQ(fl_ws_next(ws, 10000, arena, &msg), FL_WT_NACK);
    ASSERT_EQ(msg.u.nack.code, FL_CODE_BAD_FRAME);
    ASSERT_MEM_EQ(msg.u.nack.doc.ptr, msg.u.nack.doc.len, "acme/r", 6);
    ASSERT_TRUE(msg.u.nack.has_client_id && msg.u.nack.has_seq);
    ASSERT_EQ(msg.u.nack.seq, 0);
    ASSERT_EQ(msg.u.nack.client_id[0], 0xc1);
    ASSERT_TRUE(strstr(msg.u.nack.reason.ptr, "seq") != NULL);
    /* seq 0, msgpack (the codec refuses to encode it: built by hand) */
    {
        static const unsigned char f[] = {
            0x87, 0xac, 'b', 'a', 's', 'e', '_', 'v', 'e', 'r', 's', 'i', 'o', 'n', 0x00,
            0xa9, 'c', 'l', 'i', 'e', 'n', 't', '_', 'i', 'd', 0xc4, 0x10, 1, 2, 3, 4, 5, 6, 7,
            8, 9, 10, 11, 12, 13, 14, 15, 16, 0xa8, 'c', 'o', 'm', 'm', 'a', 'n', 'd', 's', 0x90,
            0xa3, 'd', 'o', 'c', 0xa6, 'a', 'c', 'm', 'e', '/', 'r', 0xa3, 's', 'e', 'q', 0x00,
            0xa1, 't', 0xa5, 'f', 'l', 'u', 's', 'h', 0xa1, 'v', 0x01};
        fl_ws_send(ws, 2, f, sizeof f);
        ASSERT_EQ(fl_ws_next(ws, 10000, arena, &msg), FL_WT_NACK);
        ASSERT_EQ(msg.u.nack.code, FL_CODE_BAD_FRAME);
        ASSERT_TRUE(msg.u.nack.has_seq && msg.u.nack.seq == 0 && msg.u.nack.has_client_id);
        ASSERT_EQ(msg.u.nack.client_id[15], 16);
        ASSERT_EQ(msg.u.nack.doc.len, 6);
    }
    /* 1001 commands: limit, naming the flush */
    big = malloc(cap);
    n += (size_t)snprintf(big + n, cap - n,
                          "{\"t\":\"flush\",\"v\":1,\"doc\":\"acme/r\",\"client_id\":\"%s\","
                          "\"seq\":7,\"base_version\":0,\"commands\":[", CID);
    for (int i = 0; i < 1001; i++)
        n += (size_t)snprintf(big + n, cap - n, "%s{\"op\":\"incr\",\"path\":\"/n\",\"value\":1}",
                              i ? "," : "");
    n += (size_t)snprintf(big + n, cap - n, "]}");
    fl_ws_send(ws, 1, big, n);
    free(big);
    ASSERT_EQ(fl_ws_next(ws, 10000, arena, &msg), FL_WT_NACK);
    ASSERT_EQ(msg.u.nack.code, FL_CODE_LIMIT);
    ASSERT_TRUE(msg.u.nack.has_seq && msg.u.nack.seq == 7 && msg.u.nack.has_client_id);
    ASSERT_MEM_EQ(msg.u.nack.doc.ptr, msg.u.nack.doc.len, "acme/r", 6);
    /* a well-formed flush still goes through on the same connection */
    fill_flush(&m, &cmd, "acme/r", CID, 1);
    send_bin(ws, &m);
    ASSERT_EQ(expect(ws, FL_WT_OUTCOME, &msg), FL_WT_OUTCOME);
    ASSERT_EQ(msg.u.outcome.outcome.code, FL_CODE_OK);
    /* HTTP: seq 0 is 400 naming the flush */
    snprintf(text, sizeof text, "{\"client_id\":\"%s\",\"seq\":0,\"base_version\":0,"
             "\"commands\":[]}", CID);
    ASSERT_EQ(http(gw_port, "POST", "/v1/docs/acme/r/flush", tok_rw, text, 0, &body), 400);
    ASSERT_TRUE(body && strstr(body, "\"doc\":\"acme/r\"") && strstr(body, "\"seq\":0") &&
                strstr(body, CID) && strstr(body, "\"name\":\"bad_frame\""));
    free(body);
    fl_ws_close(ws);
    free(ws);
}

/* ---- 6: U+0000 in JSON ------------------------------------------------------------------------- */

static void test_nul_in_json(void)
{
    fl_ws_t *w = malloc(sizeof *w), *j = malloc(sizeof *j);
    fl_wire_msg_t msg, m;
    fl_cmd_t cmd;
    char *text = NULL;
    size_t n;
    const char *doc = "acme/nul";

    /* a msgpack client writes "a\0b" under the key "k\0" */
    ASSERT_TRUE(hello(w, tok_rw));
    fill_flush(&m, &cmd, doc, CID, 1);
    cmd.op = FL_OP_ADD;
    cmd.path = (fl_slice_t){"/k\0", 3};
    cmd.value.type = FL_STR;
    cmd.value.len = 3;
    cmd.value.u.str = (char *)"a\0b";
    send_bin(w, &m);
    ASSERT_EQ(expect(w, FL_WT_OUTCOME, &msg), FL_WT_OUTCOME);
    ASSERT_EQ(msg.u.outcome.outcome.results[0].code, FL_CODE_OK);
    /* a JSON client reads it ... */
    ASSERT_TRUE(hello(j, tok_rw));
    fl_ws_text(j, "{\"t\":\"subscribe\",\"v\":1,\"doc\":\"%s\"}", doc);
    /* (read as text: jansson, and so the C codec, holds no U+0000 in
     * object keys; a JSON client in another language reads it) */
    ASSERT_EQ(fl_ws_recv(j, 20000, &text, &n), 1);
    ASSERT_TRUE(strstr(text, "\"t\":\"snapshot\"") != NULL);
    ASSERT_TRUE(strstr(text, "\"k\\u0000\":\"a\\u0000b\"") != NULL);
    free(text);
    /* ... and writes it back: test it by a path holding NUL, create under a
     * key holding NUL */
    fl_ws_text(j, "{\"t\":\"flush\",\"v\":1,\"doc\":\"%s\",\"client_id\":\"%s\",\"seq\":1,"
                  "\"base_version\":1,\"commands\":[{\"op\":\"test\",\"path\":\"/k\\u0000\","
                  "\"value\":\"a\\u0000b\"},{\"op\":\"add\",\"path\":\"/m\",\"value\":{}},"
                  "{\"op\":\"create\",\"path\":\"/m\",\"key\":\"x\\u0000y\",\"value\":\"\\u0000\"}]}",
               doc, "e1e2e3e4e5e6e7e8e9eaebecedeeeff0");
    ASSERT_EQ(expect(j, FL_WT_OUTCOME, &msg), FL_WT_OUTCOME);
    ASSERT_EQ(msg.u.outcome.outcome.code, FL_CODE_OK);
    ASSERT_EQ(msg.u.outcome.outcome.nresults, 3);
    ASSERT_EQ(msg.u.outcome.outcome.results[0].code, FL_CODE_OK); /* test passed */
    ASSERT_EQ(msg.u.outcome.outcome.results[2].code, FL_CODE_OK);
    ASSERT_MEM_EQ(msg.u.outcome.outcome.results[2].key.ptr, msg.u.outcome.outcome.results[2].key.len,
                  "x\0y", 3);
    fl_ws_close(w);
    fl_ws_close(j);
    free(w);
    free(j);
}

/* ---- 7: an empty proposed create key ----------------------------------------------------------- */

static void test_empty_create_key(void)
{
    fl_ws_t *ws = malloc(sizeof *ws);
    fl_wire_msg_t msg;
    char *text = NULL;
    int type;
    const char *doc = "acme/ekey";
    ASSERT_TRUE(hello(ws, tok_rw));
    fl_ws_text(ws, "{\"t\":\"subscribe\",\"v\":1,\"doc\":\"%s\"}", doc);
    ASSERT_EQ(expect(ws, FL_WT_SNAPSHOT, &msg), FL_WT_SNAPSHOT);
    fl_ws_text(ws, "{\"t\":\"flush\",\"v\":1,\"doc\":\"%s\",\"client_id\":\"%s\",\"seq\":1,"
                   "\"base_version\":0,\"commands\":[{\"op\":\"create\",\"path\":\"\","
                   "\"key\":\"\",\"value\":7}]}", doc, CID);
    ASSERT_EQ(next_frame(ws, &type, &msg, &text), 1);
    ASSERT_EQ(type, FL_WT_DELTAS);
    ASSERT_TRUE(strstr(text, "\"key\":\"\"") != NULL); /* the delta used "" */
    free(text);
    ASSERT_EQ(next_frame(ws, &type, &msg, &text), 1);
    ASSERT_EQ(type, FL_WT_OUTCOME);
    ASSERT_TRUE(strstr(text, "\"results\":[{\"code\":0,\"key\":\"\",\"version\":1}]") != NULL);
    free(text);
    ASSERT_TRUE(msg.u.outcome.outcome.results[0].key.ptr != NULL);
    ASSERT_EQ(msg.u.outcome.outcome.results[0].key.len, 0);
    fl_ws_close(ws);
    free(ws);
}

/* ---- 10: hello limits, $bin ------------------------------------------------------------------------ */

static void test_hello_limits(void)
{
    fl_ws_t *ws = malloc(sizeof *ws);
    fl_wire_msg_t msg;
    char *frame = malloc(12000), name[200];
    int n;

    /* a client name over 128 bytes: limit, naming "client", close 4000 */
    memset(name, 'c', 150);
    name[150] = '\0';
    ASSERT_EQ(fl_ws_connect(ws, gw_port, NULL, 0), 101);
    fl_ws_text(ws, "{\"t\":\"hello\",\"v\":1,\"token\":\"%s\",\"client\":\"%s\"}", tok_rw, name);
    ASSERT_EQ(fl_ws_next(ws, 10000, arena, &msg), FL_WT_ERROR);
    ASSERT_EQ(msg.u.error.code, FL_CODE_LIMIT);
    ASSERT_TRUE(memmem(msg.u.error.reason.ptr, msg.u.error.reason.len, "\"client\"", 8) != NULL);
    ASSERT_EQ(fl_ws_next(ws, 10000, arena, &msg), -FL_CLOSE_BAD_FRAME);
    fl_ws_close(ws);
    /* a 9000-byte token: limit, naming "token", close 4001 */
    ASSERT_EQ(fl_ws_connect(ws, gw_port, NULL, 0), 101);
    n = snprintf(frame, 12000, "{\"t\":\"hello\",\"v\":1,\"token\":\"");
    memset(frame + n, 'a', 9000);
    n += 9000;
    n += snprintf(frame + n, 12000 - (size_t)n, "\"}");
    fl_ws_send(ws, 1, frame, (size_t)n);
    ASSERT_EQ(fl_ws_next(ws, 10000, arena, &msg), FL_WT_ERROR);
    ASSERT_EQ(msg.u.error.code, FL_CODE_LIMIT);
    ASSERT_TRUE(memmem(msg.u.error.reason.ptr, msg.u.error.reason.len, "\"token\"", 7) != NULL);
    ASSERT_EQ(fl_ws_next(ws, 10000, arena, &msg), -FL_CLOSE_UNAUTHORIZED);
    fl_ws_close(ws);
    free(frame);
    /* a bad {"$bin"} says so */
    ASSERT_TRUE(hello(ws, tok_rw));
    fl_ws_text(ws, "{\"t\":\"signal\",\"v\":1,\"doc\":\"acme/s\",\"body\":{\"$bin\":\"AAE\"}}");
    ASSERT_EQ(fl_ws_next(ws, 10000, arena, &msg), FL_WT_ERROR);
    ASSERT_EQ(msg.u.error.code, FL_CODE_BAD_FRAME);
    ASSERT_TRUE(memmem(msg.u.error.reason.ptr, msg.u.error.reason.len, "base64", 6) != NULL);
    fl_ws_close(ws);
    free(ws);
}

/* ---- the order of a flush's changes and its outcome ------------------------------------------- */

/* Two masked text frames (each < 126 bytes of header length form) in one write. */
static int send_two_text(fl_ws_t *ws, const char *a, size_t alen, const char *b, size_t blen)
{
    static const uint8_t mask[4] = {0x21, 0x43, 0x65, 0x87};
    uint8_t out[4096];
    size_t n = 0;
    const char *p[2] = {a, b};
    size_t len[2] = {alen, blen};
    for (int f = 0; f < 2; f++) {
        if (len[f] >= 65536 || n + len[f] + 8 > sizeof out)
            return -1;
        out[n++] = 0x81;
        if (len[f] < 126) {
            out[n++] = (uint8_t)(0x80 | len[f]);
        } else {
            out[n++] = 0x80 | 126;
            out[n++] = (uint8_t)(len[f] >> 8);
            out[n++] = (uint8_t)len[f];
        }
        memcpy(out + n, mask, 4);
        n += 4;
        for (size_t i = 0; i < len[f]; i++)
            out[n + i] = (uint8_t)p[f][i] ^ mask[i % 4];
        n += len[f];
    }
    return write(ws->fd, out, n) == (ssize_t)n ? 0 : -1;
}

/* The outcome never overtakes the changes it answers, even when the
 * subscription that brings them is still waiting for its catch-up: flush
 * to a document on a followed partition, then subscribe at once; the
 * outcome record comes back before the sync reply (the flush was
 * published first), and is held until the snapshot is out. */
static void test_outcome_after_changes(void)
{
    fl_ws_t *ws = malloc(sizeof *ws);
    fl_wire_msg_t msg;
    int type;
    static const char *const docs[] = {"acme/order-a", "acme/order-b", "acme/order-c"};
    ASSERT_TRUE(hello(ws, tok_rw));
    for (size_t i = 0; i < sizeof docs / sizeof docs[0]; i++) {
        char frame[1024], frame2[256];
        int n, n2;
        /* seq 1: the document's partition gets followed (no subscription,
         * so no live copy yet) */
        flush_json(ws, docs[i], 1);
        ASSERT_EQ(expect(ws, FL_WT_OUTCOME, &msg), FL_WT_OUTCOME);
        ASSERT_EQ(msg.u.outcome.outcome.version_after, 1);
        /* seq 2 and a subscribe in one write: the flush is published before
         * the sync, so its outcome comes back while the copy is syncing */
        n = snprintf(frame, sizeof frame,
                     "{\"t\":\"flush\",\"v\":1,\"doc\":\"%s\",\"client_id\":\"%s\",\"seq\":2,"
                     "\"base_version\":1,\"commands\":[{\"op\":\"incr\",\"path\":\"/n\","
                     "\"value\":1}]}",
                     docs[i], CID);
        n2 = snprintf(frame2, sizeof frame2, "{\"t\":\"subscribe\",\"v\":1,\"doc\":\"%s\"}",
                      docs[i]);
        /* one write: the gateway reads both frames at once, so the outcome
         * cannot come back before the subscription exists */
        ASSERT_EQ(send_two_text(ws, frame, (size_t)n, frame2, (size_t)n2), 0);
        /* the catch-up carries seq 2's change, then comes the outcome */
        ASSERT_EQ(next_frame(ws, &type, &msg, NULL), 1);
        ASSERT_EQ(type, FL_WT_SNAPSHOT);
        ASSERT_EQ(msg.u.snapshot.version, 2);
        ASSERT_EQ(next_frame(ws, &type, &msg, NULL), 1);
        ASSERT_EQ(type, FL_WT_OUTCOME);
        ASSERT_EQ(msg.u.outcome.outcome.seq, 2);
        ASSERT_EQ(msg.u.outcome.outcome.version_after, 2);
    }
    /* subscribed and live: the delta, then the outcome, every time */
    fl_ws_text(ws, "{\"t\":\"subscribe\",\"v\":1,\"doc\":\"acme/order-live\"}");
    ASSERT_EQ(expect(ws, FL_WT_SNAPSHOT, &msg), FL_WT_SNAPSHOT);
    for (uint64_t seq = 1; seq <= 20; seq++) {
        fl_ws_text(ws,
                   "{\"t\":\"flush\",\"v\":1,\"doc\":\"acme/order-live\",\"client_id\":"
                   "\"f0f1f2f3f4f5f6f7f8f9fafbfcfdfeff\",\"seq\":%llu,\"base_version\":0,"
                   "\"commands\":[{\"op\":\"incr\",\"path\":\"/n\",\"value\":1}]}",
                   (unsigned long long)seq);
        ASSERT_EQ(next_frame(ws, &type, &msg, NULL), 1);
        ASSERT_EQ(type, FL_WT_DELTAS);
        ASSERT_EQ(msg.u.deltas.items[0].seq, seq);
        ASSERT_EQ(next_frame(ws, &type, &msg, NULL), 1);
        ASSERT_EQ(type, FL_WT_OUTCOME);
        ASSERT_EQ(msg.u.outcome.outcome.seq, seq);
    }
    fl_ws_close(ws);
    free(ws);
}

/* have_version ahead of the document gets a snapshot (and so does one that
 * falls inside a multi-command outcome: only outcome boundaries are
 * versions a client can hold). */
static void test_have_version_ahead(void)
{
    fl_ws_t *ws = malloc(sizeof *ws);
    fl_wire_msg_t msg;
    ASSERT_TRUE(hello(ws, tok_rw));
    fl_ws_text(ws, "{\"t\":\"subscribe\",\"v\":1,\"doc\":\"acme/ahead\",\"have_version\":0}");
    fl_ws_text(ws, "{\"t\":\"flush\",\"v\":1,\"doc\":\"acme/ahead\",\"client_id\":\"%s\","
                   "\"seq\":1,\"base_version\":0,\"commands\":[{\"op\":\"incr\",\"path\":\"/a\","
                   "\"value\":1},{\"op\":\"incr\",\"path\":\"/b\",\"value\":1}]}", CID);
    ASSERT_EQ(expect(ws, FL_WT_OUTCOME, &msg), FL_WT_OUTCOME);
    ASSERT_EQ(msg.u.outcome.outcome.version_after, 2);
    fl_ws_text(ws, "{\"t\":\"subscribe\",\"v\":1,\"doc\":\"acme/ahead\",\"have_version\":9}");
    ASSERT_EQ(fl_ws_next(ws, 10000, arena, &msg), FL_WT_SNAPSHOT);
    ASSERT_EQ(msg.u.snapshot.version, 2);
    fl_ws_text(ws, "{\"t\":\"subscribe\",\"v\":1,\"doc\":\"acme/ahead\",\"have_version\":1}");
    ASSERT_EQ(fl_ws_next(ws, 10000, arena, &msg), FL_WT_SNAPSHOT);
    ASSERT_EQ(msg.u.snapshot.version, 2);
    fl_ws_close(ws);
    free(ws);
}

/* ---- 3: the token leeway ---------------------------------------------------------------------- */

static int64_t wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void test_leeway(void)
{
    fl_ws_t *ws = malloc(sizeof *ws);
    fl_wire_msg_t msg;
    char *tok, *body = NULL, frame[2048];
    int64_t now = (int64_t)time(NULL), exp, t;
    static const char *const extra[] = {"--jwt.leeway", "3", NULL};

    /* default leeway (30 s): exp 10 s ago is welcomed, announced, and kept */
    tok = mint_at("alice", "", "\"acme/\"", now - 10);
    ASSERT_TRUE(hello_on(ws, gw_port, tok, &msg));
    {
        fl_wire_welcome_t w = msg.u.welcome;
        fl_ws_text(ws, "{\"t\":\"ping\",\"v\":1,\"id\":1}");
        ASSERT_EQ(fl_ws_next(ws, 10000, arena, &msg), FL_WT_PONG);
        ASSERT_EQ(fl_ws_next(ws, 1500, arena, &msg), 0); /* no error, no close */
        fl_ws_text(ws, "{\"t\":\"ping\",\"v\":1,\"id\":2}");
        ASSERT_EQ(fl_ws_next(ws, 10000, arena, &msg), FL_WT_PONG);
        ASSERT_TRUE(w.has_exp && w.has_leeway);
        ASSERT_EQ(w.exp, now - 10);
        ASSERT_EQ(w.leeway, 30);
    }
    fl_ws_close(ws);
    free(tok);

    /* leeway 3 s: the close comes at exp + 3 by the gateway's clock, not at exp */
    ASSERT_EQ(start_gateway(&gw_leeway, &leeway_port, "gw-leeway", extra), 0);
    exp = (int64_t)time(NULL) + 1;
    tok = mint_at("alice", "", "\"acme/\"", exp);
    ASSERT_TRUE(hello_on(ws, leeway_port, tok, &msg));
    ASSERT_EQ(msg.u.welcome.leeway, 3);
    ASSERT_EQ(expect(ws, FL_WT_ERROR, &msg), FL_WT_ERROR);
    t = wall_ms();
    ASSERT_EQ(msg.u.error.code, FL_CODE_TOKEN_EXPIRED);
    ASSERT_GE(t, (exp + 3) * 1000);
    ASSERT_LT(t, (exp + 3) * 1000 + 5000);
    ASSERT_EQ(fl_ws_next(ws, 10000, arena, &msg), -FL_CLOSE_TOKEN_EXPIRED);
    fl_ws_close(ws);
    free(tok);
    /* auth and HTTP take the same leeway: exp 1 s ago passes both */
    exp = (int64_t)time(NULL) - 1;
    tok = mint_at("alice", "\"acme/\"", "\"acme/\"", exp);
    ASSERT_TRUE(hello_on(ws, leeway_port, tok_rw, NULL));
    snprintf(frame, sizeof frame, "{\"t\":\"auth\",\"v\":1,\"token\":\"%s\"}", tok);
    fl_ws_send(ws, 1, frame, strlen(frame));
    ASSERT_EQ(fl_ws_next(ws, 10000, arena, &msg), FL_WT_WELCOME);
    ASSERT_EQ(msg.u.welcome.exp, exp);
    ASSERT_EQ(http(leeway_port, "GET", "/v1/docs/acme/leeway", tok, NULL, 0, &body), 200);
    free(body);
    /* and 4 s ago passes neither */
    free(tok);
    tok = mint_at("alice", "\"acme/\"", "\"acme/\"", (int64_t)time(NULL) - 4);
    ASSERT_EQ(http(leeway_port, "GET", "/v1/docs/acme/leeway", tok, NULL, 0, &body), 401);
    ASSERT_TRUE(body && strstr(body, "token_expired"));
    free(body);
    fl_ws_close(ws);
    free(tok);
    free(ws);
}

/* ---- 2: draining ----------------------------------------------------------------------------- */

typedef struct readyz_s {
    int port, status;
} readyz_t;

static bool readyz_not_200(void *arg)
{
    readyz_t *r = arg;
    char *body = NULL;
    r->status = fl_http_get(r->port, "/readyz", &body);
    free(body);
    return r->status != 200;
}

static void test_drain(void)
{
    fl_ws_t *a = malloc(sizeof *a), *b = malloc(sizeof *b);
    fl_wire_msg_t msg;
    static const char *const extra[] = {"--drain.grace.ms", "4000", NULL};
    readyz_t r;
    int64_t t0;
    char *body = NULL;

    ASSERT_EQ(start_gateway(&gw_drain, &drain_port, "gw-drain", extra), 0);
    ASSERT_TRUE(hello_on(a, drain_port, tok_rw, NULL));
    r.port = drain_port;
    ASSERT_TRUE(!readyz_not_200(&r));
    t0 = fl_test_now_ms();
    ASSERT_EQ(fl_proc_signal(&gw_drain, SIGTERM), 0);
    /* from SIGTERM on: 503 on an open port, never a refused connection */
    ASSERT_TRUE(fl_wait_until(readyz_not_200, &r, 10000));
    ASSERT_EQ(r.status, 503);
    /* the existing client is still served */
    fl_ws_text(a, "{\"t\":\"ping\",\"v\":1,\"id\":5}");
    ASSERT_EQ(fl_ws_next(a, 10000, arena, &msg), FL_WT_PONG);
    /* a new upgrade gets 4201 at once */
    ASSERT_EQ(fl_ws_connect(b, drain_port, NULL, 0), 101);
    ASSERT_EQ(fl_ws_next(b, 10000, arena, &msg), -FL_CLOSE_GOING_AWAY);
    fl_ws_close(b);
    /* still 503, still the health of a live process */
    ASSERT_EQ(fl_http_get(drain_port, "/readyz", &body), 503);
    free(body);
    ASSERT_EQ(fl_http_get(drain_port, "/healthz", &body), 200);
    free(body);
    /* then the client gets 4201 (not before the grace), and the exit is 0 */
    ASSERT_EQ(expect(a, -FL_CLOSE_GOING_AWAY, &msg), -FL_CLOSE_GOING_AWAY);
    ASSERT_GE(fl_test_now_ms() - t0, 3500);
    ASSERT_EQ(fl_proc_wait(&gw_drain, 20000), 0);
    fl_ws_close(a);
    free(a);
    free(b);
}

int main(void)
{
    fl_log_init("test", FL_LOG_WARN);
    signal(SIGPIPE, SIG_IGN);
    if (!(bootstrap = fl_test_bootstrap()))
        return 1;
    fl_test_unique("fltest-gwc", prefix, sizeof prefix);
    arena = fl_arena_new(1 << 16);
    if (fl_ktest_topics(bootstrap, prefix, 4) != 0 || setup_keys() != 0 || start_all() != 0) {
        fprintf(stderr, "setup failed\n");
        fl_proc_kill(&processor);
        fl_proc_kill(&gateway);
        return 1;
    }
    tok_rw = mint_at("alice", "", "\"acme/\"", (int64_t)time(NULL) + 3600);
    tok_ro = mint_at("bob", "\"acme/\"", "", (int64_t)time(NULL) + 3600);
    RUN(test_http_doc_ids);
    RUN(test_http_errors_are_json);
    RUN(test_ws_path_is_raw);
    RUN(test_answer_forms);
    RUN(test_refusals_name_the_flush);
    RUN(test_nul_in_json);
    RUN(test_empty_create_key);
    RUN(test_hello_limits);
    RUN(test_outcome_after_changes);
    RUN(test_have_version_ahead);
    RUN(test_leeway);
    RUN(test_drain);
    if (fl_test_failures) {
        fl_proc_dump_log(&gateway, 40);
        fl_proc_dump_log(&gw_drain, 20);
    }
    fl_proc_signal(&gateway, SIGTERM);
    fl_proc_signal(&gw_leeway, SIGTERM);
    if (fl_proc_wait(&gateway, 20000) != 0 ||
        (gw_leeway.pid > 0 && fl_proc_wait(&gw_leeway, 20000) != 0)) {
        fprintf(stderr, "a gateway did not exit 0 after SIGTERM\n");
        fl_test_failures++;
    }
    fl_proc_kill(&gateway);
    fl_proc_kill(&gw_leeway);
    fl_proc_kill(&gw_drain);
    fl_proc_kill(&processor);
    free(tok_rw);
    free(tok_ro);
    fl_jwt_keyfile_free(key);
    fl_arena_free(arena);
    return fl_test_done();
}
