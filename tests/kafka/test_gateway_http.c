/* SPDX-License-Identifier: Apache-2.0 */
/*
 * flushline-gateway, more of its surface against the real broker and
 * processor (over the raw WebSocket client of tests/util/fl_ws.h):
 * - HTTP: POST /v1/docs/{id}/flush answers the outcome, GET /v1/docs/{id}
 *   the snapshot, both with a Bearer token (401/403 without the right one);
 * - signals reach every subscriber with the sender's user id;
 * - the per-connection rate limit nacks with rate_limited and
 *   retry_after_ms; max.subscriptions nacks with limit;
 * - a subscriber that does not read is closed with 4200 slow_consumer
 *   while the writer goes on;
 * - a minimum-disclosure tenant gets `changed {doc, version}` only.
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

static int rcvbuf; /* when set: SO_RCVBUF of the next connection */

/* Connects to this test's gateway and upgrades; the HTTP status or -1. */
static int ws_connect(fl_ws_t *ws, const char *extra)
{
    return fl_ws_connect(ws, gw_port, extra, rcvbuf);
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
                           "--send.queue.bytes", "64K", "--minimal.tenants", "secret",
                           /* a slow refill, so that the 260-flush burst of the slow
                            * consumer case is limited however slowly it is sent
                            * (sanitizer builds on a loaded machine: at 10/s, none
                            * was limited beside a load average of 75, so the gateway
                            * took over 14 s to read the 16 MB burst) */
                           "--rate", "1", "--burst", "120", "--log.level", "debug", NULL};
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
    fl_ws_text(ws, "{\"t\":\"hello\",\"v\":1,\"token\":\"%s\"}", tok);
    return fl_ws_next(ws, 10000, arena, &msg) == FL_WT_WELCOME;
}

/* One HTTP/1.1 request on a fresh connection; returns the status, body in *out. */
static int http(const char *method, const char *path, const char *token, const char *body,
                char **out)
{
    fl_ws_t *c = malloc(sizeof *c);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)gw_port)};
    char req[12000], auth[9000] = "";
    char *end, *p;
    int status = -1;
    size_t clen = 0;
    memset(c, 0, sizeof *c);
    *out = NULL;
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if ((c->fd = socket(AF_INET, SOCK_STREAM, 0)) < 0 ||
        connect(c->fd, (struct sockaddr *)&sa, sizeof sa) != 0)
        goto done;
    if (token)
        snprintf(auth, sizeof auth, "Authorization: Bearer %s\r\n", token);
    snprintf(req, sizeof req, "%s %s HTTP/1.1\r\nHost: x\r\n%sContent-Length: %zu\r\n%s\r\n%s",
             method, path, auth, body ? strlen(body) : 0,
             body ? "Content-Type: application/json\r\n" : "", body ? body : "");
    if (write(c->fd, req, strlen(req)) != (ssize_t)strlen(req))
        goto done;
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

static void test_http_flush_and_read(void)
{
    char *body = NULL;
    int st;
    st = http("POST", "/v1/docs/acme/h1/flush", tok_rw,
              "{\"client_id\":\"b0b1b2b3b4b5b6b7b8b9babbbcbdbebf\",\"seq\":1,\"base_version\":0,"
              "\"commands\":[{\"op\":\"add\",\"path\":\"/title\",\"value\":\"hi\"}]}",
              &body);
    if (st != 200)
        fprintf(stderr, "body: %s\n", body ? body : "(none)");
    ASSERT_EQ(st, 200);
    ASSERT_TRUE(strstr(body, "\"t\":\"outcome\"") != NULL);
    ASSERT_TRUE(strstr(body, "\"version_after\":1") != NULL);
    free(body);
    st = http("GET", "/v1/docs/acme/h1", tok_ro, NULL, &body);
    ASSERT_EQ(st, 200);
    ASSERT_TRUE(strstr(body, "\"t\":\"snapshot\"") != NULL);
    ASSERT_TRUE(strstr(body, "\"title\":\"hi\"") != NULL);
    ASSERT_TRUE(strstr(body, "\"version\":1") != NULL);
    free(body);
    /* read-only token cannot flush; no token is 401 */
    ASSERT_EQ(http("POST", "/v1/docs/acme/h1/flush", tok_ro, "{}", &body), 403);
    free(body);
    ASSERT_EQ(http("GET", "/v1/docs/other/x", tok_ro, NULL, &body), 403);
    free(body);
    ASSERT_EQ(http("GET", "/v1/docs/acme/h1", NULL, NULL, &body), 401);
    free(body);
    /* a malformed flush body */
    ASSERT_EQ(http("POST", "/v1/docs/acme/h1/flush", tok_rw, "{\"seq\":\"x\"}", &body), 400);
    free(body);
}

static void test_signals(void)
{
    fl_ws_t *a = malloc(sizeof *a), *b = malloc(sizeof *b);
    fl_wire_msg_t msg;
    ASSERT_TRUE(hello(a, tok_rw));
    ASSERT_TRUE(hello(b, tok_ro));
    fl_ws_text(a, "{\"t\":\"subscribe\",\"v\":1,\"doc\":\"acme/sig\"}");
    ASSERT_EQ(fl_ws_next(a, 20000, arena, &msg), FL_WT_SNAPSHOT);
    fl_ws_text(b, "{\"t\":\"subscribe\",\"v\":1,\"doc\":\"acme/sig\"}");
    ASSERT_EQ(fl_ws_next(b, 20000, arena, &msg), FL_WT_SNAPSHOT);
    fl_ws_text(a, "{\"t\":\"signal\",\"v\":1,\"doc\":\"acme/sig\",\"body\":{\"cursor\":3}}");
    ASSERT_EQ(fl_ws_next(b, 20000, arena, &msg), FL_WT_SIGNAL_OUT);
    ASSERT_MEM_EQ(msg.u.signal.user.ptr, msg.u.signal.user.len, "alice", 5);
    ASSERT_EQ(msg.u.signal.body.type, FL_MAP);
    ASSERT_EQ(fl_ws_next(a, 20000, arena, &msg), FL_WT_SIGNAL_OUT);
    /* a signal needs read rights */
    fl_ws_text(b, "{\"t\":\"signal\",\"v\":1,\"doc\":\"other/sig\",\"body\":1}");
    ASSERT_EQ(fl_ws_next(b, 20000, arena, &msg), FL_WT_NACK);
    ASSERT_EQ(msg.u.nack.code, FL_CODE_DOC_FORBIDDEN);
    fl_ws_close(a);
    fl_ws_close(b);
    free(a);
    free(b);
}

static void test_subscription_limit(void)
{
    fl_ws_t *a = malloc(sizeof *a);
    fl_wire_msg_t msg;
    int nacks = 0;
    ASSERT_TRUE(hello(a, tok_ro));
    for (int i = 0; i < 101; i++)
        fl_ws_text(a, "{\"t\":\"subscribe\",\"v\":1,\"doc\":\"acme/many-%d\"}", i);
    /* 100 snapshots and one limit nack, in any order */
    for (int i = 0; i < 101; i++) {
        int t = fl_ws_next(a, 30000, arena, &msg);
        ASSERT_TRUE(t == FL_WT_SNAPSHOT || t == FL_WT_NACK);
        if (t == FL_WT_NACK) {
            ASSERT_EQ(msg.u.nack.code, FL_CODE_LIMIT);
            nacks++;
        }
    }
    ASSERT_EQ(nacks, 1);
    fl_ws_close(a);
    free(a);
}

/* A subscriber that never reads is closed with 4200; the writer gets
 * rate_limited nacks beyond its burst and carries on. */
/* How often needle occurs in the gateway's log. */
static int gateway_log_count(const char *needle)
{
    size_t len;
    char *text = fl_test_read_file(gateway.log, &len);
    int count = 0;
    for (const char *at = text; at && (at = strstr(at, needle)); at += strlen(needle))
        count++;
    free(text);
    return count;
}

/* The silent subscriber reads again: whatever was buffered, then close
 * 4200. 1 when that close came, 0 when the connection ended without it. */
static int read_until_slow_close(fl_ws_t *s)
{
    fl_wire_msg_t msg;
    for (int i = 0; i < 1000; i++) {
        int t = fl_ws_next(s, 20000, arena, &msg);
        if (t == -FL_CLOSE_SLOW_CONSUMER)
            return 1;
        if (t <= 0) {
            fprintf(stderr, "silent subscriber: %s after %d messages\n",
                    t < 0 ? "another close" : "no close frame (timeout or end)", i);
            return 0;
        }
    }
    return 0;
}

static void test_slow_consumer_and_rate(void)
{
    fl_ws_t *w = malloc(sizeof *w), *s = malloc(sizeof *s);
    fl_wire_msg_t msg;
    static char flush[70000], pad[60001];
    int rate_limited = 0, outcomes = 0, closed = -1, answers = 0;
    int slow_before = gateway_log_count("closing as slow consumer");
    int64_t last = fl_test_now_ms();
    ASSERT_TRUE(hello(w, tok_rw));
    rcvbuf = 4096;
    ASSERT_TRUE(hello(s, tok_ro));
    rcvbuf = 0;
    fl_ws_text(s, "{\"t\":\"subscribe\",\"v\":1,\"doc\":\"acme/slow\"}");
    ASSERT_EQ(fl_ws_next(s, 20000, arena, &msg), FL_WT_SNAPSHOT);
    memset(pad, 'x', sizeof pad - 1);
    pad[sizeof pad - 1] = '\0';
    for (int i = 1; i <= 260; i++) {
        snprintf(flush, sizeof flush,
                 "{\"t\":\"flush\",\"v\":1,\"doc\":\"acme/slow\",\"client_id\":"
                 "\"c0c1c2c3c4c5c6c7c8c9cacbcccdcecf\",\"seq\":%d,\"base_version\":0,"
                 "\"commands\":[{\"op\":\"add\",\"path\":\"/pad\",\"value\":\"%s\"}]}",
                 i, pad);
        fl_ws_send(w, 1, flush, strlen(flush));
    }
    /* The writer: outcomes for the first ones, rate_limited beyond the
     * burst. Meanwhile the gateway closes the silent subscriber once its
     * queue is over the bound, and from then on waits 5 s for that close
     * to be taken (a client that stops reading cannot hold it up): so the
     * subscriber reads again as soon as the gateway has said so, not when
     * the writer is done (on a busy machine that is later than 5 s, and
     * the close frame was lost with the connection). */
    while (answers < 260) {
        if (closed < 0 && gateway_log_count("closing as slow consumer") > slow_before) {
            closed = read_until_slow_close(s);
            last = fl_test_now_ms(); /* the writer's answers wait meanwhile */
        }
        int t = fl_ws_next(w, 200, arena, &msg);
        if (t == 0) {
            if (fl_test_now_ms() - last > 30000) {
                fprintf(stderr, "writer: nothing for 30 s after %d answers\n", answers);
                break;
            }
            continue;
        }
        last = fl_test_now_ms();
        answers++;
        if (t == FL_WT_NACK && msg.u.nack.code == FL_CODE_RATE_LIMITED) {
            ASSERT_TRUE(msg.u.nack.has_retry && msg.u.nack.retry_after_ms > 0);
            rate_limited++;
        } else if (t == FL_WT_OUTCOME) {
            outcomes++;
        }
    }
    ASSERT_GT(rate_limited, 0);
    ASSERT_GT(outcomes, 100);
    /* the silent subscriber: whatever was buffered, then close 4200 (the
     * gateway closed it while the writer's flushes were applied) */
    ASSERT_EQ(closed, 1);
    fl_ws_close(w);
    fl_ws_close(s);
    free(w);
    free(s);
}

static void test_minimal_tenant(void)
{
    char *tok = mint("carol", "", "\"secret/\"", 3600), *p = NULL;
    fl_ws_t *a = malloc(sizeof *a);
    size_t n;
    ASSERT_TRUE(tok != NULL);
    ASSERT_TRUE(hello(a, tok));
    fl_ws_text(a, "{\"t\":\"subscribe\",\"v\":1,\"doc\":\"secret/d\",\"have_version\":0}");
    fl_ws_text(a,
            "{\"t\":\"flush\",\"v\":1,\"doc\":\"secret/d\",\"client_id\":"
            "\"d0d1d2d3d4d5d6d7d8d9dadbdcdddedf\",\"seq\":1,\"base_version\":0,"
            "\"commands\":[{\"op\":\"add\",\"path\":\"/k\",\"value\":\"private\"}]}");
    /* a `changed` at version 1, never the content (the outcome goes to the sender) */
    for (int i = 0; i < 5; i++) {
        int op = fl_ws_recv(a, 20000, &p, &n);
        ASSERT_EQ(op, 1);
        if (strstr(p, "\"t\":\"changed\"")) {
            ASSERT_TRUE(strstr(p, "\"version\":1") != NULL);
            ASSERT_TRUE(strstr(p, "private") == NULL);
            free(p);
            p = NULL;
            break;
        }
        ASSERT_TRUE(strstr(p, "\"t\":\"outcome\"") != NULL);
        free(p);
        p = NULL;
    }
    free(p);
    fl_ws_close(a);
    free(a);
    free(tok);
}

/* With no processor, a flush gets no outcome and a read of a document the
 * gateway does not hold gets no sync reply: each is answered 504 at
 * http.flush.timeout.ms (10 s), past lws's own 5 s limit for a request
 * left unanswered (which used to close a read's connection without an
 * answer). Last case: it stops the processor. */
static void test_no_answer_is_504(void)
{
    char *body = NULL;
    fl_proc_signal(&processor, SIGTERM);
    ASSERT_EQ(fl_proc_wait(&processor, 60000), 0);
    int64_t t0 = fl_test_now_ms();
    int st = http("POST", "/v1/docs/acme/h504/flush", tok_rw,
                  "{\"client_id\":\"c0c1c2c3c4c5c6c7c8c9cacbcccdcecf\",\"seq\":1,"
                  "\"base_version\":0,\"commands\":[{\"op\":\"add\",\"path\":\"/a\",\"value\":1}]}",
                  &body);
    int64_t took = fl_test_now_ms() - t0;
    printf("  no processor: flush %d after %lld ms\n", st, (long long)took);
    ASSERT_EQ(st, 504);
    ASSERT_TRUE(body && strstr(body, "\"code\"") != NULL);
    ASSERT_GE(took, 9000);
    free(body);
    body = NULL;
    t0 = fl_test_now_ms();
    st = http("GET", "/v1/docs/acme/never-held", tok_ro, NULL, &body);
    took = fl_test_now_ms() - t0;
    printf("  no processor: read %d after %lld ms\n", st, (long long)took);
    ASSERT_EQ(st, 504);
    ASSERT_TRUE(body && strstr(body, "\"code\"") != NULL);
    ASSERT_GE(took, 9000);
    free(body);
}

int main(void)
{
    fl_log_init("test", FL_LOG_WARN);
    signal(SIGPIPE, SIG_IGN);
    if (!(bootstrap = fl_test_bootstrap()))
        return 1;
    fl_test_unique("fltest-gwh", prefix, sizeof prefix);
    arena = fl_arena_new(1 << 16);
    if (fl_ktest_topics(bootstrap, prefix, 4) != 0 || setup_keys() != 0 || start_all() != 0) {
        fprintf(stderr, "setup failed\n");
        fl_proc_kill(&processor);
        fl_proc_kill(&gateway);
        return 1;
    }
    tok_rw = mint("alice", "", "\"acme/\"", 3600);
    tok_ro = mint("bob", "\"acme/\"", "", 3600);
    RUN(test_http_flush_and_read);
    RUN(test_signals);
    RUN(test_subscription_limit);
    RUN(test_slow_consumer_and_rate);
    RUN(test_minimal_tenant);
    RUN(test_no_answer_is_504);
    if (fl_test_failures)
        fl_proc_dump_log(&gateway, 40);
    fl_proc_signal(&gateway, SIGTERM);
    int st = fl_proc_wait(&gateway, 20000);
    if (st != 0) {
        fprintf(stderr, "gateway exit status %d\n", st);
        fl_proc_dump_log(&gateway, 40);
        fl_test_failures++;
    }
    fl_proc_kill(&gateway);
    fl_proc_kill(&processor);
    free(tok_rw);
    free(tok_ro);
    fl_jwt_keyfile_free(key);
    fl_arena_free(arena);
    return fl_test_done();
}
