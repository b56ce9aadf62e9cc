/* SPDX-License-Identifier: Apache-2.0 */
/*
 * flushline-gateway against the real broker and a real processor, both as
 * child processes, driven by a minimal WebSocket client written on raw
 * sockets below (RFC 6455 client framing, masking, close codes):
 * - hello with a valid token gets welcome; no hello, a forged token, an
 *   expired token each get their error and close code;
 * - another tenant's document and a write with read-only rights get
 *   doc_forbidden nacks;
 * - subscribe + flush: the outcome to the sender, the delta to a second
 *   subscriber (JSON and msgpack clients);
 * - subscribe with have_version gets exactly the missing deltas;
 * - the token's role claim is carried into the flush record (none without it);
 * - bad frames (garbage, unknown type, invalid UTF-8 doc, oversize) get
 *   their errors while a second client on the same gateway is undisturbed;
 * - /healthz, /readyz and /metrics answer; SIGTERM closes with 4201 and
 *   exits 0.
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
static fl_proc_t processor, gateway;
static int gw_port;
static fl_jwt_keyfile_t *key;

/* ---- the raw WebSocket client of tests/util/fl_ws.h ---------------------------- */

/* Connects to this test's gateway and upgrades; the HTTP status or -1. */
static int ws_connect(fl_ws_t *ws, const char *extra)
{
    return fl_ws_connect(ws, gw_port, extra, 0);
}

/* Waits for a message of one type, skipping others (returns 0 if none). */
static int ws_expect(fl_ws_t *ws, int type, fl_arena_t *arena, fl_wire_msg_t *msg)
{
    int64_t deadline = fl_test_now_ms() + 20000;
    for (;;) {
        int left = (int)(deadline - fl_test_now_ms());
        int t = left > 0 ? fl_ws_next(ws, left, arena, msg) : 0;
        if (t == type || t <= 0)
            return t;
    }
}

/* ---- tokens and processes ---------------------------------------------------------- */

static char *mint(const char *sub, const char *read, const char *write, int64_t exp_in)
{
    char claims[1024], errstr[256], *tok = NULL;
    int64_t now = (int64_t)time(NULL);
    snprintf(claims, sizeof claims, "{\"sub\":\"%s\",\"exp\":%lld,\"iat\":%lld,\"read\":[%s],\"write\":[%s]}",
             sub, (long long)(now + exp_in), (long long)now, read, write);
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

static bool gateway_healthy(void *arg)
{
    (void)arg;
    char *body = NULL;
    int st = fl_http_get(gw_port, "/healthz", &body);
    free(body);
    return st == 200 || !fl_proc_alive(&gateway);
}

static int start_all(void)
{
    char log[512], port[16], txid[160], group[160], gwid[160];
    snprintf(log, sizeof log, "%s/tests/%s-processor.log", getenv("FL_BINARY_DIR"), prefix);
    snprintf(port, sizeof port, "%d", fl_free_port());
    snprintf(txid, sizeof txid, "%s-tx", prefix);
    snprintf(group, sizeof group, "%s-processors", prefix);
    const char *pargs[] = {"--bootstrap", bootstrap, "--prefix", prefix, "--partitions", "4",
                           "--group.id", group, "--transactional.id", txid, "--http.port", port,
                           NULL};
    if (fl_proc_start(&processor, "flushline-processor", pargs, log) != 0)
        return -1;
    snprintf(log, sizeof log, "%s/tests/%s-gateway.log", getenv("FL_BINARY_DIR"), prefix);
    snprintf(port, sizeof port, "%d", gw_port = fl_free_port());
    snprintf(gwid, sizeof gwid, "%s-gw1", prefix);
    const char *gargs[] = {"--bootstrap", bootstrap, "--prefix", prefix, "--partitions", "4",
                           "--port", port, "--jwt.keys", keypath, "--gateway.id", gwid,
                           "--max.frame", "64K", "--log.level", "debug", NULL};
    if (fl_proc_start(&gateway, "flushline-gateway", gargs, log) != 0)
        return -1;
    if (!fl_wait_until(gateway_healthy, NULL, 60000) || !fl_proc_alive(&gateway)) {
        fl_proc_dump_log(&gateway, 30);
        return -1;
    }
    return 0;
}

/* ---- cases ------------------------------------------------------------------------------ */

static fl_arena_t *arena;
static char *tok_rw, *tok_ro;

static bool hello(fl_ws_t *ws, const char *tok)
{
    fl_wire_msg_t msg;
    if (ws_connect(ws, NULL) != 101)
        return false;
    fl_ws_text(ws, "{\"t\":\"hello\",\"v\":1,\"token\":\"%s\",\"client\":\"test/1\"}", tok);
    return fl_ws_next(ws, 10000, arena, &msg) == FL_WT_WELCOME;
}

static void test_hello_welcome(void)
{
    fl_ws_t *ws = malloc(sizeof *ws);
    fl_wire_msg_t msg;
    ASSERT_EQ(ws_connect(ws, NULL), 101);
    fl_ws_text(ws, "{\"t\":\"hello\",\"v\":1,\"token\":\"%s\"}", tok_rw);
    ASSERT_EQ(fl_ws_next(ws, 10000, arena, &msg), FL_WT_WELCOME);
    ASSERT_MEM_EQ(msg.u.welcome.user.ptr, msg.u.welcome.user.len, "alice", 5);
    ASSERT_EQ(msg.u.welcome.max_frame, 65536);
    ASSERT_EQ(msg.u.welcome.max_commands, 1000);
    ASSERT_EQ(msg.u.welcome.rate, 100);
    /* ping -> pong */
    fl_ws_text(ws, "{\"t\":\"ping\",\"v\":1,\"id\":7}");
    ASSERT_EQ(fl_ws_next(ws, 10000, arena, &msg), FL_WT_PONG);
    ASSERT_EQ(msg.u.ping.id, 7);
    fl_ws_close(ws);
    free(ws);
}

/* Sends first (a frame), expects an error with code, then a close code. */
static void expect_refusal(const char *first, const char *extra, int code, int close_code)
{
    fl_ws_t *ws = malloc(sizeof *ws);
    fl_wire_msg_t msg;
    int t;
    ASSERT_EQ(ws_connect(ws, extra), 101);
    if (first)
        fl_ws_text(ws, "%s", first);
    t = fl_ws_next(ws, 10000, arena, &msg);
    if (t != FL_WT_ERROR)
        FL_FAIL_("expected an error, got %d", t);
    ASSERT_EQ(msg.u.error.code, code);
    ASSERT_EQ(fl_ws_next(ws, 10000, arena, &msg), -close_code);
    fl_ws_close(ws);
    free(ws);
}

static void test_auth_refusals(void)
{
    char frame[9000], *expired = mint("alice", "\"acme/\"", "", -3600), *forged;
    ASSERT_TRUE(expired != NULL);
    /* no hello: anything else first */
    expect_refusal("{\"t\":\"subscribe\",\"v\":1,\"doc\":\"acme/x\"}", NULL, FL_CODE_UNAUTHORIZED,
                   FL_CLOSE_UNAUTHORIZED);
    /* forged: one signature character changed */
    forged = strdup(tok_rw);
    forged[strlen(forged) - 2] = forged[strlen(forged) - 2] == 'A' ? 'B' : 'A';
    snprintf(frame, sizeof frame, "{\"t\":\"hello\",\"v\":1,\"token\":\"%s\"}", forged);
    expect_refusal(frame, NULL, FL_CODE_UNAUTHORIZED, FL_CLOSE_UNAUTHORIZED);
    /* garbage token */
    expect_refusal("{\"t\":\"hello\",\"v\":1,\"token\":\"not.a.jwt\"}", NULL,
                   FL_CODE_UNAUTHORIZED, FL_CLOSE_UNAUTHORIZED);
    /* expired */
    snprintf(frame, sizeof frame, "{\"t\":\"hello\",\"v\":1,\"token\":\"%s\"}", expired);
    expect_refusal(frame, NULL, FL_CODE_TOKEN_EXPIRED, FL_CLOSE_TOKEN_EXPIRED);
    /* unsupported schema version */
    expect_refusal("{\"t\":\"hello\",\"v\":9,\"token\":\"x\"}", NULL,
                   FL_CODE_UNSUPPORTED_VERSION, FL_CLOSE_UNSUPPORTED_VERSION);
    /* a forged Authorization header at the upgrade */
    snprintf(frame, sizeof frame, "Authorization: Bearer %s\r\n", forged);
    expect_refusal(NULL, frame, FL_CODE_UNAUTHORIZED, FL_CLOSE_UNAUTHORIZED);
    free(forged);
    free(expired);
}

static void test_bearer_header(void)
{
    fl_ws_t *ws = malloc(sizeof *ws);
    fl_wire_msg_t msg;
    char hdr[9000];
    snprintf(hdr, sizeof hdr, "Authorization: Bearer %s\r\n", tok_ro);
    ASSERT_EQ(ws_connect(ws, hdr), 101);
    ASSERT_EQ(fl_ws_next(ws, 10000, arena, &msg), FL_WT_WELCOME);
    ASSERT_MEM_EQ(msg.u.welcome.user.ptr, msg.u.welcome.user.len, "bob", 3);
    fl_ws_close(ws);
    free(ws);
}

static void test_forbidden(void)
{
    fl_ws_t *ws = malloc(sizeof *ws);
    fl_wire_msg_t msg;
    ASSERT_TRUE(hello(ws, tok_ro));
    /* another tenant's document */
    fl_ws_text(ws, "{\"t\":\"subscribe\",\"v\":1,\"doc\":\"other/doc\"}");
    ASSERT_EQ(fl_ws_next(ws, 10000, arena, &msg), FL_WT_NACK);
    ASSERT_EQ(msg.u.nack.code, FL_CODE_DOC_FORBIDDEN);
    /* a write with read-only rights */
    fl_ws_text(ws, "{\"t\":\"flush\",\"v\":1,\"doc\":\"acme/ro\",\"client_id\":"
                "\"000102030405060708090a0b0c0d0e0f\",\"seq\":1,\"base_version\":0,"
                "\"commands\":[{\"op\":\"incr\",\"path\":\"/n\",\"value\":1}]}");
    ASSERT_EQ(fl_ws_next(ws, 10000, arena, &msg), FL_WT_NACK);
    ASSERT_EQ(msg.u.nack.code, FL_CODE_DOC_FORBIDDEN);
    ASSERT_TRUE(msg.u.nack.has_seq);
    ASSERT_EQ(msg.u.nack.seq, 1);
    /* unsubscribe without a subscription */
    fl_ws_text(ws, "{\"t\":\"unsubscribe\",\"v\":1,\"doc\":\"acme/ro\"}");
    ASSERT_EQ(fl_ws_next(ws, 10000, arena, &msg), FL_WT_NACK);
    ASSERT_EQ(msg.u.nack.code, FL_CODE_NOT_SUBSCRIBED);
    fl_ws_close(ws);
    free(ws);
}

static const char *CID = "a0a1a2a3a4a5a6a7a8a9aaabacadaeaf";

static void flush_incr(fl_ws_t *ws, const char *doc, uint64_t seq, int by)
{
    fl_ws_text(ws,
            "{\"t\":\"flush\",\"v\":1,\"doc\":\"%s\",\"client_id\":\"%s\",\"seq\":%llu,"
            "\"base_version\":0,\"commands\":[{\"op\":\"incr\",\"path\":\"/n\",\"value\":%d}]}",
            doc, CID, (unsigned long long)seq, by);
}

/* A msgpack subscribe frame (binary), built with the codec. */
static void subscribe_bin(fl_ws_t *ws, const char *doc, bool has, uint64_t have)
{
    fl_wire_msg_t m;
    char *buf = NULL, errstr[128];
    size_t len;
    memset(&m, 0, sizeof m);
    m.type = FL_WT_SUBSCRIBE;
    m.u.sub.doc = (fl_slice_t){doc, strlen(doc)};
    m.u.sub.has_version = has;
    m.u.sub.have_version = have;
    if (fl_wire_encode(&m, FL_WIRE_MSGPACK, &buf, &len, errstr, sizeof errstr) == 0)
        fl_ws_send(ws, 2, buf, len);
    free(buf);
}

static void test_flush_outcome_and_delta(void)
{
    fl_ws_t *a = malloc(sizeof *a), *b = malloc(sizeof *b);
    fl_wire_msg_t msg;
    const char *doc = "acme/board-1";
    ASSERT_TRUE(hello(a, tok_rw));
    ASSERT_TRUE(hello(b, tok_ro));
    /* b speaks msgpack from here on (pushes use the hello's form: JSON) */
    fl_ws_text(a, "{\"t\":\"subscribe\",\"v\":1,\"doc\":\"%s\"}", doc);
    ASSERT_EQ(fl_ws_next(a, 20000, arena, &msg), FL_WT_SNAPSHOT);
    ASSERT_EQ(msg.u.snapshot.version, 0);
    subscribe_bin(b, doc, false, 0);
    ASSERT_EQ(fl_ws_next(b, 20000, arena, &msg), FL_WT_SNAPSHOT);
    ASSERT_EQ(msg.u.snapshot.version, 0);

    flush_incr(a, doc, 1, 5);
    /* the sender: its delta and its outcome */
    ASSERT_EQ(ws_expect(a, FL_WT_OUTCOME, arena, &msg), FL_WT_OUTCOME);
    ASSERT_EQ(msg.u.outcome.outcome.code, FL_CODE_OK);
    ASSERT_EQ(msg.u.outcome.outcome.seq, 1);
    ASSERT_EQ(msg.u.outcome.outcome.version_after, 1);
    /* the other subscriber: the delta */
    ASSERT_EQ(fl_ws_next(b, 20000, arena, &msg), FL_WT_DELTAS);
    ASSERT_EQ(msg.u.deltas.from_version, 0);
    ASSERT_EQ(msg.u.deltas.nitems, 1);
    ASSERT_EQ(msg.u.deltas.items[0].version, 1);
    ASSERT_EQ(msg.u.deltas.items[0].seq, 1);
    ASSERT_MEM_EQ(msg.u.deltas.items[0].user.ptr, msg.u.deltas.items[0].user.len, "alice", 5);

    /* two more; then a late subscriber with have_version 1 gets exactly 2..3 */
    flush_incr(a, doc, 2, 1);
    flush_incr(a, doc, 3, 1);
    ASSERT_EQ(fl_ws_next(b, 20000, arena, &msg), FL_WT_DELTAS);
    ASSERT_EQ(msg.u.deltas.items[0].version, 2);
    ASSERT_EQ(fl_ws_next(b, 20000, arena, &msg), FL_WT_DELTAS);
    ASSERT_EQ(msg.u.deltas.items[0].version, 3);

    fl_ws_t *c = malloc(sizeof *c);
    ASSERT_TRUE(hello(c, tok_ro));
    fl_ws_text(c, "{\"t\":\"subscribe\",\"v\":1,\"doc\":\"%s\",\"have_version\":1}", doc);
    ASSERT_EQ(fl_ws_next(c, 20000, arena, &msg), FL_WT_DELTAS);
    ASSERT_EQ(msg.u.deltas.from_version, 1);
    ASSERT_EQ(msg.u.deltas.nitems, 2);
    ASSERT_EQ(msg.u.deltas.items[0].version, 2);
    ASSERT_EQ(msg.u.deltas.items[1].version, 3);
    /* up to date: nothing now, then the next delta */
    fl_ws_t *d = malloc(sizeof *d);
    ASSERT_TRUE(hello(d, tok_ro));
    subscribe_bin(d, doc, true, 3);
    ASSERT_EQ(fl_ws_next(d, 500, arena, &msg), 0);
    /* have_version 0 with a short history: the deltas 0..3 from the window */
    fl_ws_text(c, "{\"t\":\"unsubscribe\",\"v\":1,\"doc\":\"%s\"}", doc);
    flush_incr(a, doc, 4, 1);
    ASSERT_EQ(fl_ws_next(d, 20000, arena, &msg), FL_WT_DELTAS);
    ASSERT_EQ(msg.u.deltas.from_version, 3);
    ASSERT_EQ(msg.u.deltas.items[0].version, 4);
    /* c unsubscribed: nothing more for it */
    ASSERT_EQ(fl_ws_next(c, 500, arena, &msg), 0);
    /* a resent seq is answered from the dedup table, nothing applied */
    flush_incr(a, doc, 4, 1);
    /* (the outcomes of seq 2..4 come first, in order) */
    for (uint64_t want = 2; want <= 5; want++) {
        ASSERT_EQ(ws_expect(a, FL_WT_OUTCOME, arena, &msg), FL_WT_OUTCOME);
        ASSERT_EQ(msg.u.outcome.outcome.seq, want < 5 ? want : 4);
        ASSERT_EQ(msg.u.outcome.outcome.duplicate, want == 5);
    }
    ASSERT_EQ(msg.u.outcome.outcome.version_after, 4);
    fl_ws_close(a);
    fl_ws_close(b);
    fl_ws_close(c);
    fl_ws_close(d);
    free(a);
    free(b);
    free(c);
    free(d);
}

/* The role of the flush records of doc in commands ("" without one), of
 * the last record seen; n counts them. */
typedef struct role_seen_s {
    const char *doc;
    char role[80];
    int n;
} role_seen_t;

static int on_command(void *opaque, int32_t p, int64_t off, const rd_kafka_message_t *msg)
{
    role_seen_t *rs = opaque;
    fl_wire_msg_t m;
    char err[128];
    (void)p;
    (void)off;
    fl_arena_t *a = fl_arena_new(4096);
    if (fl_wire_decode_record(msg->payload, msg->len, a, &m, err, sizeof err) == 0 &&
        m.type == FL_WT_REC_FLUSH && m.u.rflush.flush.doc.len == strlen(rs->doc) &&
        memcmp(m.u.rflush.flush.doc.ptr, rs->doc, strlen(rs->doc)) == 0) {
        snprintf(rs->role, sizeof rs->role, "%.*s", (int)m.u.rflush.role.len,
                 m.u.rflush.role.len ? m.u.rflush.role.ptr : "");
        rs->n++;
    }
    fl_arena_free(a);
    return 0;
}

/* The token's role claim travels in the flush record (docs/auth.md);
 * without the claim the record has none. */
static void test_role_in_record(void)
{
    fl_ws_t *ws = malloc(sizeof *ws);
    fl_wire_msg_t msg;
    char claims[512], errstr[256], *tok = NULL;
    int64_t now = (int64_t)time(NULL);
    snprintf(claims, sizeof claims,
             "{\"sub\":\"carol\",\"exp\":%lld,\"write\":[\"acme/\"],\"role\":\"admin\"}",
             (long long)(now + 3600));
    ASSERT_EQ(fl_jwt_mint_keyfile(key, claims, &tok, errstr, sizeof errstr), 0);
    ASSERT_TRUE(hello(ws, tok));
    flush_incr(ws, "acme/role-doc", 1, 1);
    ASSERT_EQ(ws_expect(ws, FL_WT_OUTCOME, arena, &msg), FL_WT_OUTCOME);
    fl_ws_close(ws);
    ASSERT_TRUE(hello(ws, tok_rw));
    flush_incr(ws, "acme/norole-doc", 1, 1);
    ASSERT_EQ(ws_expect(ws, FL_WT_OUTCOME, arena, &msg), FL_WT_OUTCOME);
    fl_ws_close(ws);
    free(ws);
    free(tok);
    role_seen_t with = {.doc = "acme/role-doc"}, without = {.doc = "acme/norole-doc"};
    ASSERT_TRUE(fl_ktest_read_all(bootstrap, prefix, FL_TOPIC_COMMANDS, on_command, &with) > 0);
    ASSERT_TRUE(fl_ktest_read_all(bootstrap, prefix, FL_TOPIC_COMMANDS, on_command, &without) >
                0);
    ASSERT_EQ(with.n, 1);
    ASSERT_STR_EQ(with.role, "admin");
    ASSERT_EQ(without.n, 1);
    ASSERT_STR_EQ(without.role, "");
}

static void test_bad_frames_isolated(void)
{
    fl_ws_t *x = malloc(sizeof *x), *y = malloc(sizeof *y);
    fl_wire_msg_t msg;
    const char *doc = "acme/iso";
    static char big[70000];
    ASSERT_TRUE(hello(x, tok_rw));
    ASSERT_TRUE(hello(y, tok_rw));
    fl_ws_text(y, "{\"t\":\"subscribe\",\"v\":1,\"doc\":\"%s\"}", doc);
    ASSERT_EQ(fl_ws_next(y, 20000, arena, &msg), FL_WT_SNAPSHOT);

    /* garbage bytes */
    fl_ws_send(x, 2, "\xc1\xff\x00garbage", 10);
    ASSERT_EQ(fl_ws_next(x, 10000, arena, &msg), FL_WT_ERROR);
    ASSERT_EQ(msg.u.error.code, FL_CODE_BAD_FRAME);
    /* unknown type: an error, the connection stays */
    fl_ws_text(x, "{\"t\":\"launch\",\"v\":1}");
    ASSERT_EQ(fl_ws_next(x, 10000, arena, &msg), FL_WT_ERROR);
    ASSERT_EQ(msg.u.error.code, FL_CODE_UNKNOWN_TYPE);
    /* invalid UTF-8 in a doc id (msgpack subscribe) */
    fl_ws_send(x, 2, "\x83\xa3" "doc\xa2\xc3\x28\xa1t\xa9subscribe\xa1v\x01", 22);
    ASSERT_EQ(fl_ws_next(x, 10000, arena, &msg), FL_WT_ERROR);
    ASSERT_EQ(msg.u.error.code, FL_CODE_BAD_FRAME);
    /* an empty doc id */
    fl_ws_text(x, "{\"t\":\"subscribe\",\"v\":1,\"doc\":\"\"}");
    ASSERT_EQ(fl_ws_next(x, 10000, arena, &msg), FL_WT_ERROR);
    ASSERT_EQ(msg.u.error.code, FL_CODE_BAD_DOC_ID);
    /* still alive */
    fl_ws_text(x, "{\"t\":\"ping\",\"v\":1}");
    ASSERT_EQ(fl_ws_next(x, 10000, arena, &msg), FL_WT_PONG);

    /* y is undisturbed: its flush goes through */
    flush_incr(y, doc, 1, 2);
    ASSERT_EQ(ws_expect(y, FL_WT_OUTCOME, arena, &msg), FL_WT_OUTCOME);
    ASSERT_EQ(msg.u.outcome.outcome.code, FL_CODE_OK);

    /* a frame over max.frame (64 KiB here) closes x with 4000 */
    memset(big, 'a', sizeof big);
    fl_ws_send(x, 1, big, sizeof big);
    ASSERT_EQ(ws_expect(x, FL_WT_ERROR, arena, &msg), FL_WT_ERROR);
    ASSERT_EQ(msg.u.error.code, FL_CODE_LIMIT);
    ASSERT_EQ(fl_ws_next(x, 10000, arena, &msg), -FL_CLOSE_BAD_FRAME);

    /* and y still is */
    flush_incr(y, doc, 2, 2);
    ASSERT_EQ(ws_expect(y, FL_WT_OUTCOME, arena, &msg), FL_WT_OUTCOME);
    ASSERT_EQ(msg.u.outcome.outcome.version_after, 2);
    fl_ws_close(x);
    fl_ws_close(y);
    free(x);
    free(y);
}

static void test_http_endpoints(void)
{
    char *body = NULL;
    ASSERT_EQ(fl_http_get(gw_port, "/healthz", &body), 200);
    free(body);
    ASSERT_EQ(fl_http_get(gw_port, "/readyz", &body), 200);
    free(body);
    ASSERT_EQ(fl_http_get(gw_port, "/metrics", &body), 200);
    ASSERT_TRUE(strstr(body, "flushline_gateway_connections ") != NULL);
    ASSERT_TRUE(strstr(body, "flushline_gateway_nacks_total{code=\"doc_forbidden\"} ") != NULL);
    ASSERT_TRUE(strstr(body, "flushline_gateway_fanout_latency_ms_bucket") != NULL);
    ASSERT_TRUE(strstr(body, "flushline_gateway_closes_total{code=\"4001\"} 0\n") == NULL);
    free(body);
    ASSERT_EQ(fl_http_get(gw_port, "/nope", &body), 404);
    free(body);
    /* no token for the document API */
    ASSERT_EQ(fl_http_get(gw_port, "/v1/docs/acme/board-1", &body), 401);
    free(body);
}

static void test_sigterm_going_away(void)
{
    fl_ws_t *ws = malloc(sizeof *ws);
    fl_wire_msg_t msg;
    ASSERT_TRUE(hello(ws, tok_rw));
    ASSERT_EQ(fl_proc_signal(&gateway, SIGTERM), 0);
    ASSERT_EQ(ws_expect(ws, -FL_CLOSE_GOING_AWAY, arena, &msg), -FL_CLOSE_GOING_AWAY);
    ASSERT_EQ(fl_proc_wait(&gateway, 20000), 0);
    fl_ws_close(ws);
    free(ws);
}

int main(void)
{
    fl_log_init("test", FL_LOG_WARN);
    signal(SIGPIPE, SIG_IGN);
    if (!(bootstrap = fl_test_bootstrap()))
        return 1;
    fl_test_unique("fltest-gw", prefix, sizeof prefix);
    arena = fl_arena_new(1 << 16);
    if (fl_ktest_topics(bootstrap, prefix, 4) != 0 || setup_keys() != 0 || start_all() != 0) {
        fprintf(stderr, "setup failed\n");
        fl_proc_kill(&processor);
        fl_proc_kill(&gateway);
        return 1;
    }
    tok_rw = mint("alice", "", "\"acme/\"", 3600);
    tok_ro = mint("bob", "\"acme/\"", "", 3600);
    RUN(test_hello_welcome);
    RUN(test_auth_refusals);
    RUN(test_bearer_header);
    RUN(test_forbidden);
    RUN(test_flush_outcome_and_delta);
    RUN(test_role_in_record);
    RUN(test_bad_frames_isolated);
    RUN(test_http_endpoints);
    if (fl_test_failures)
        fl_proc_dump_log(&gateway, 40);
    RUN(test_sigterm_going_away);
    fl_proc_kill(&gateway);
    fl_proc_kill(&processor);
    free(tok_rw);
    free(tok_ro);
    fl_jwt_keyfile_free(key);
    fl_arena_free(arena);
    return fl_test_done();
}
