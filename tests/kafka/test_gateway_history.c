/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The gateway's history endpoints against the real broker and processor:
 * GET /v1/docs/{id}/history?from_version=V&limit=N and GET
 * /v1/docs/{id}?version=V (docs/gateway.md).
 * - from the live copy and its window (window.deltas 4) and from Kafka (a
 *   version older than the window, a document this gateway never held),
 *   told apart by the gateway's metrics;
 * - ?version=V is byte for byte what `flushline at --version V` prints, for
 *   three versions (one inside a multi-command outcome);
 * - the same auth as reading the document (401, 403), 400 for bad
 *   parameters, 404 for a version that does not exist yet;
 * - the bounds, on a restarted gateway: history.max.records (413, or a
 *   shorter page with `next`), history.jobs + history.queue (503 with
 *   Retry-After), history.timeout.ms (504).
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "fl_ktest.h"
#include "fl_proc.h"
#include "fl_test.h"
#include "fl_ws.h"
#include "flushline/jwt.h"
#include "flushline/log.h"

static const char *bootstrap;
static char prefix[96], keypath[600];
static fl_proc_t processor, gateway;
static int gw_port;
static fl_jwt_keyfile_t *key;
static char *tok_rw, *tok_ro, *tok_other;

/* ---- tokens, processes, requests ------------------------------------------------------ */

static char *mint(const char *sub, const char *read, const char *write)
{
    char claims[1024], errstr[256], *tok = NULL;
    int64_t now = (int64_t)time(NULL);
    snprintf(claims, sizeof claims,
             "{\"sub\":\"%s\",\"exp\":%lld,\"iat\":%lld,\"read\":[%s],\"write\":[%s]}", sub,
             (long long)(now + 3600), (long long)now, read, write);
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

static int start_processor(void)
{
    char log[512], port[16], txid[160], group[160];
    snprintf(log, sizeof log, "%s/tests/%s-processor.log", getenv("FL_BINARY_DIR"), prefix);
    snprintf(port, sizeof port, "%d", fl_free_port());
    snprintf(txid, sizeof txid, "%s-tx", prefix);
    snprintf(group, sizeof group, "%s-processors", prefix);
    const char *pargs[] = {"--bootstrap", bootstrap, "--prefix", prefix, "--partitions", "4",
                           "--group.id", group, "--transactional.id", txid, "--http.port", port,
                           NULL};
    return fl_proc_start(&processor, "flushline-processor", pargs, log);
}

/* The gateway with the history settings of a case (extra: name, value, ...,
 * NULL). */
static int start_gateway(const char *const *extra)
{
    char log[512], port[16], gwid[160];
    const char *args[48];
    int n = 0;
    snprintf(log, sizeof log, "%s/tests/%s-gateway.log", getenv("FL_BINARY_DIR"), prefix);
    snprintf(port, sizeof port, "%d", gw_port = fl_free_port());
    snprintf(gwid, sizeof gwid, "%s-gw1", prefix);
    const char *base[] = {"--bootstrap", bootstrap, "--prefix", prefix, "--partitions", "4",
                          "--port", port, "--jwt.keys", keypath, "--gateway.id", gwid,
                          "--window.deltas", "4", "--doc.idle.ms", "10m",
                          "--drain.grace.ms", "0", "--history.max.limit", "50", NULL};
    for (int i = 0; base[i]; i++)
        args[n++] = base[i];
    for (int i = 0; extra && extra[i] && n < 46; i++)
        args[n++] = extra[i];
    args[n] = NULL;
    if (fl_proc_start(&gateway, "flushline-gateway", args, log) != 0)
        return -1;
    if (!fl_wait_until(gateway_healthy, NULL, 60000) || !fl_proc_alive(&gateway)) {
        fl_proc_dump_log(&gateway, 30);
        return -1;
    }
    return 0;
}

static int stop_gateway(void)
{
    fl_proc_signal(&gateway, SIGTERM);
    int st = fl_proc_wait(&gateway, 30000);
    fl_proc_kill(&gateway);
    return st;
}

/* One request; the status, the body in *out (malloc'd), the headers in
 * *head when asked. */
static int http(const char *method, const char *path, const char *token, const char *body,
                char **out, char **head)
{
    fl_ws_t *c = malloc(sizeof *c);
    int st = -1;
    *out = NULL;
    if (c && fl_http_send(c, gw_port, method, path, token, body) == 0)
        st = fl_http_recv(c, 30000, out, head);
    if (c)
        fl_ws_close(c);
    free(c);
    return st;
}

static int get(const char *path, const char *token, char **out)
{
    return http("GET", path, token, NULL, out, NULL);
}

/* A flush of doc by this test's writer; asserts its outcome. */
static void flush(const char *doc, int seq, const char *commands)
{
    char path[300], body[2048], *out = NULL;
    snprintf(path, sizeof path, "/v1/docs/%s/flush", doc);
    snprintf(body, sizeof body,
             "{\"client_id\":\"a0a1a2a3a4a5a6a7a8a9aaabacadaeaf\",\"seq\":%d,\"base_version\":0,"
             "\"commands\":%s}",
             seq, commands);
    int st = http("POST", path, tok_rw, body, &out, NULL);
    if (st != 200 || !strstr(out, "\"code\":0,"))
        fprintf(stderr, "flush %s %d: %d %s\n", doc, seq, st, out ? out : "");
    ASSERT_EQ(st, 200);
    free(out);
}

/* The six flushes of a document: versions 1, 2, 3-4 (two commands), 5, 6, 7. */
static void write_history(const char *doc)
{
    flush(doc, 1, "[{\"op\":\"add\",\"path\":\"/title\",\"value\":\"board\"}]");
    flush(doc, 2, "[{\"op\":\"add\",\"path\":\"/cards\",\"value\":{}}]");
    flush(doc, 3,
          "[{\"op\":\"add\",\"path\":\"/cards/a\",\"value\":{\"votes\":0}},"
          "{\"op\":\"add\",\"path\":\"/cards/b\",\"value\":{\"votes\":0.5}}]");
    flush(doc, 4, "[{\"op\":\"incr\",\"path\":\"/cards/a/votes\",\"value\":1}]");
    flush(doc, 5, "[{\"op\":\"replace\",\"path\":\"/title\",\"value\":\"board 2\"}]");
    flush(doc, 6, "[{\"op\":\"remove\",\"path\":\"/cards/b\"}]");
}

/* A counter of the gateway's /metrics. */
static long metric(const char *name)
{
    char *body = NULL, *p;
    long v = -1;
    size_t n = strlen(name);
    if (fl_http_get(gw_port, "/metrics", &body) == 200)
        for (p = body; (p = strstr(p, name)); p += n)
            if ((p == body || p[-1] == '\n') && p[n] == ' ') {
                v = strtol(p + n + 1, NULL, 10);
                break;
            }
    free(body);
    return v;
}

#define MEMORY "flushline_gateway_history_memory_total"
#define JOBS "flushline_gateway_history_jobs_total"

/* The versions of a history answer's items, "4,5,6" (and ";next=N"). */
static void item_versions(const char *body, char *out, size_t size)
{
    json_error_t jerr;
    json_t *j = json_loads(body, 0, &jerr), *items = json_object_get(j, "items"), *it;
    size_t i, n = 0;
    out[0] = '\0';
    json_array_foreach(items, i, it)
        n += (size_t)snprintf(out + n, size - n, "%s%lld", i ? "," : "",
                              (long long)json_integer_value(json_object_get(it, "version")));
    if (json_object_get(j, "next"))
        snprintf(out + n, size - n, ";next=%lld",
                 (long long)json_integer_value(json_object_get(j, "next")));
    json_decref(j);
}

/* GET of a history page: asserts the status and the item versions. */
static void expect_page(const char *doc, const char *params, const char *want)
{
    char path[400], got[512], *body = NULL;
    snprintf(path, sizeof path, "/v1/docs/%s/history?%s", doc, params);
    int st = get(path, tok_ro, &body);
    if (st != 200)
        fprintf(stderr, "%s: %d %s\n", path, st, body ? body : "");
    ASSERT_EQ(st, 200);
    item_versions(body ? body : "{}", got, sizeof got);
    ASSERT_STR_EQ(got, want);
    free(body);
}

/* `flushline at --version v` (stdout without its newline), or NULL. */
static char *cli_at(const char *doc, int v)
{
    char cmd[1500], buf[1 << 16];
    size_t n;
    snprintf(cmd, sizeof cmd, "'%s/bin/flushline' at --bootstrap %s --prefix %s --doc %s "
                              "--version %d --quiet 2>/dev/null",
             getenv("FL_BINARY_DIR"), bootstrap, prefix, doc, v);
    FILE *fp = popen(cmd, "r");
    if (!fp)
        return NULL;
    n = fread(buf, 1, sizeof buf - 1, fp);
    if (pclose(fp) != 0 || n == 0)
        return NULL;
    buf[n] = '\0';
    if (buf[n - 1] == '\n')
        buf[n - 1] = '\0';
    return strdup(buf);
}

typedef struct at_wait_s {
    const char *doc;
    int version;
} at_wait_t;

static bool committed(void *arg)
{
    at_wait_t *w = arg;
    char *out = cli_at(w->doc, w->version);
    free(out);
    return out != NULL;
}

/* Waits until version v of doc is committed, what the Kafka path reads
 * (`flushline at` reaches it): with delivery = speculative, a flush is
 * answered before the processor's transaction commits. */
static void wait_committed(const char *doc, int v)
{
    at_wait_t w = {doc, v};
    ASSERT_TRUE(fl_wait_until(committed, &w, 60000));
}

/* An error answer: status and the {code, name, reason} form. */
static void expect_error(const char *path, const char *token, int status, const char *name)
{
    char *body = NULL, want[64];
    int st = get(path, token, &body);
    if (st != status)
        fprintf(stderr, "%s: %d %s\n", path, st, body ? body : "");
    ASSERT_EQ(st, status);
    snprintf(want, sizeof want, "\"name\":\"%s\"", name);
    ASSERT_TRUE(body && strstr(body, want) && strstr(body, "\"reason\":"));
    free(body);
}

/* ---- cases ---------------------------------------------------------------------------- */

/* hist/k: written first (its partition starts with its own outcomes) and
 * never opened by this gateway: every answer comes from Kafka. */
static void test_from_log(void)
{
    char path[200], *body = NULL, *cli;
    long m0, j0;
    write_history("hist/k");
    wait_committed("hist/k", 7);
    m0 = metric(MEMORY);
    j0 = metric(JOBS);
    ASSERT_GE(m0, 0);
    expect_page("hist/k", "from_version=5&limit=10", "5,6,7");
    expect_page("hist/k", "from_version=1&limit=2", "1,2;next=3");
    expect_page("hist/k", "from_version=3&limit=2", "4,5;next=6");
    expect_page("hist/k", "from_version=8", "");
    ASSERT_EQ(metric(JOBS), j0 + 4);
    ASSERT_EQ(metric(MEMORY), m0);
    /* ?version=V is what `flushline at --version V` prints, byte for byte:
     * 3 lies inside the two-command outcome 2..4 */
    static const int versions[] = {1, 3, 6};
    for (int i = 0; i < 3; i++) {
        snprintf(path, sizeof path, "/v1/docs/hist/k?version=%d", versions[i]);
        ASSERT_EQ(get(path, tok_ro, &body), 200);
        ASSERT_TRUE((cli = cli_at("hist/k", versions[i])) != NULL);
        ASSERT_STR_EQ(body, cli);
        free(body);
        free(cli);
    }
    expect_error("/v1/docs/hist/k?version=8", tok_ro, 404, "version_mismatch");
    expect_error("/v1/docs/hist/k/history?from_version=9", tok_ro, 404, "version_mismatch");
    expect_error("/v1/docs/hist/none?version=1", tok_ro, 404, "version_mismatch");
    expect_page("hist/none", "from_version=1", "");
}

/* hist/w: opened first, so the gateway holds its live copy and a window of
 * its last 4 outcomes (2..4, 4..5, 5..6, 6..7). */
static void test_from_window(void)
{
    char *body = NULL, *cli;
    long m0, j0;
    json_t *a, *b;
    ASSERT_EQ(get("/v1/docs/hist/w", tok_ro, &body), 200);
    free(body);
    write_history("hist/w");
    wait_committed("hist/w", 7);
    m0 = metric(MEMORY);
    j0 = metric(JOBS);
    expect_page("hist/w", "from_version=3&limit=10", "4,5,6,7");
    expect_page("hist/w", "from_version=3&limit=2", "4,5;next=6");
    expect_page("hist/w", "from_version=7", "7");
    expect_page("hist/w", "from_version=8", "");
    ASSERT_EQ(get("/v1/docs/hist/w?version=7", tok_ro, &body), 200);
    ASSERT_EQ(metric(MEMORY), m0 + 5);
    ASSERT_EQ(metric(JOBS), j0);
    /* the live copy's state is the one `flushline at` rebuilds */
    ASSERT_TRUE((cli = cli_at("hist/w", 7)) != NULL);
    a = json_loads(body, 0, NULL);
    b = json_loads(cli, 0, NULL);
    ASSERT_TRUE(json_equal(json_object_get(a, "state"), json_object_get(b, "state")));
    ASSERT_TRUE(json_equal(json_object_get(a, "chain"), json_object_get(b, "chain")));
    json_decref(a);
    json_decref(b);
    free(body);
    free(cli);
    /* one item in full: the change, its user, its commands */
    ASSERT_EQ(get("/v1/docs/hist/w/history?from_version=4&limit=1", tok_ro, &body), 200);
    ASSERT_TRUE(strstr(body, "\"t\":\"deltas\"") && strstr(body, "\"from_version\":2"));
    ASSERT_TRUE(strstr(body, "\"user\":\"alice\"") && strstr(body, "\"path\":\"/cards/b\""));
    ASSERT_TRUE(strstr(body, "\"next\":5") != NULL);
    free(body);
    /* older than the window, or a past version: Kafka */
    expect_page("hist/w", "from_version=1&limit=3", "1,2,4;next=5");
    expect_page("hist/w", "", "1,2,4,5,6,7");
    ASSERT_EQ(metric(JOBS), j0 + 2);
    expect_error("/v1/docs/hist/w?version=8", tok_ro, 404, "version_mismatch");
    expect_error("/v1/docs/hist/w/history?from_version=9", tok_ro, 404, "version_mismatch");
}

static void test_auth_and_parameters(void)
{
    static const char *const bad[] = {
        "/v1/docs/hist/w/history?from_version=x",  "/v1/docs/hist/w/history?from_version=-1",
        "/v1/docs/hist/w/history?limit=0",         "/v1/docs/hist/w/history?limit=51",
        "/v1/docs/hist/w/history?version=1",       "/v1/docs/hist/w/history?limit=2&limit=3",
        "/v1/docs/hist/w?from_version=1",          "/v1/docs/hist/w?",
        "/v1/docs/hist/w?version=",                "/v1/docs/hist/w?version=99999999999999999999",
        NULL};
    char *body = NULL;
    for (int i = 0; bad[i]; i++) {
        expect_error(bad[i], tok_ro, 400, "bad_frame");
        /* the JS client takes a 400 that speaks of a "query" for a gateway
         * without history: these must not */
        get(bad[i], tok_ro, &body);
        ASSERT_TRUE(body && !strstr(body, "query"));
        free(body);
    }
    expect_error("/v1/docs/hist/w/history", NULL, 401, "unauthorized");
    expect_error("/v1/docs/hist/w?version=1", NULL, 401, "unauthorized");
    expect_error("/v1/docs/hist/w/history", tok_other, 403, "doc_forbidden");
    expect_error("/v1/docs/hist/w?version=1", tok_other, 403, "doc_forbidden");
    expect_error("/v1/docs/hist//w/history", tok_ro, 400, "bad_doc_id");
    /* a flush still takes no parameters */
    ASSERT_EQ(http("POST", "/v1/docs/hist/w/flush?version=1", tok_rw, "{}", &body, NULL), 400);
    free(body);
}

/* n requests at once (all sent before any answer is read): counts by
 * status into st[0..5] (200, 413, 503, 504, other), and whether every 503
 * had Retry-After: 1. */
static bool burst(int n, const char *path, int st[5])
{
    fl_ws_t *c = calloc((size_t)n, sizeof *c);
    bool retry_ok = true;
    memset(st, 0, 5 * sizeof *st);
    for (int i = 0; c && i < n; i++)
        if (fl_http_send(&c[i], gw_port, "GET", path, tok_ro, NULL) != 0)
            fl_test_fail(__FILE__, __LINE__, "request %d of the burst not sent", i);
    for (int i = 0; c && i < n; i++) {
        char *body = NULL, *head = NULL;
        int s = fl_http_recv(&c[i], 30000, &body, &head);
        st[s == 200 ? 0 : s == 413 ? 1 : s == 503 ? 2 : s == 504 ? 3 : 4]++;
        if (s != 200 && s != 503 && s != 504 && s != 413)
            fprintf(stderr, "burst: %d %s\n", s, body ? body : "");
        const char *ra = head ? strcasestr(head, "\nretry-after:") : NULL;
        if (s == 503 && (!ra || strtol(ra + 13, NULL, 10) != 1))
            retry_ok = false;
        free(body);
        free(head);
        fl_ws_close(&c[i]);
    }
    free(c);
    return retry_ok;
}

static void test_bounds(void)
{
    const char *const small[] = {"--history.max.records", "3", "--history.jobs", "1",
                                 "--history.queue", "0", NULL};
    const char *const slow[] = {"--history.timeout.ms", "100", "--history.jobs", "1",
                                "--history.queue", "1000", NULL};
    char got[256], *body = NULL;
    int st[5];

    ASSERT_EQ(stop_gateway(), 0);
    ASSERT_EQ(start_gateway(small), 0);
    /* hist/k's first records are its outcomes 1, 2, 2..4: a page of three,
     * then the bound */
    expect_page("hist/k", "from_version=1&limit=10", "1,2,4;next=5");
    expect_error("/v1/docs/hist/k?version=6", tok_ro, 413, "limit");
    /* one job, no queue: a burst gets 503 with Retry-After beside answers */
    ASSERT_TRUE(burst(12, "/v1/docs/hist/w/history?from_version=1", st));
    ASSERT_GT(st[2], 0);
    ASSERT_GT(st[0] + st[1], 0);
    ASSERT_EQ(st[3] + st[4], 0);
    ASSERT_GT(metric("flushline_gateway_history_busy_total"), 0);

    ASSERT_EQ(stop_gateway(), 0);
    ASSERT_EQ(start_gateway(slow), 0);
    /* one job, 100 ms each from its arrival: a burst runs out of time */
    burst(40, "/v1/docs/hist/w/history?from_version=1", st);
    fprintf(stderr, "burst of 40, 100 ms each: %d answered, %d over the time\n", st[0], st[3]);
    ASSERT_GT(st[3], 0);
    ASSERT_EQ(st[1] + st[2] + st[4], 0);
    ASSERT_GT(metric("flushline_gateway_history_timeouts_total"), 0);
    /* and the gateway answers as before */
    ASSERT_EQ(get("/v1/docs/hist/w/history?from_version=6", tok_ro, &body), 200);
    item_versions(body, got, sizeof got);
    ASSERT_STR_EQ(got, "6,7");
    free(body);
}

int main(void)
{
    fl_log_init("test", FL_LOG_WARN);
    signal(SIGPIPE, SIG_IGN);
    if (!(bootstrap = fl_test_bootstrap()))
        return 1;
    fl_test_unique("fltest-gwhist", prefix, sizeof prefix);
    if (fl_ktest_topics(bootstrap, prefix, 4) != 0 || setup_keys() != 0 ||
        start_processor() != 0 || start_gateway(NULL) != 0) {
        fprintf(stderr, "setup failed\n");
        fl_proc_kill(&processor);
        fl_proc_kill(&gateway);
        return 1;
    }
    tok_rw = mint("alice", "", "\"hist/\"");
    tok_ro = mint("bob", "\"hist/\"", "");
    tok_other = mint("carol", "\"other/\"", "");
    RUN(test_from_log);
    RUN(test_from_window);
    RUN(test_auth_and_parameters);
    RUN(test_bounds);
    if (fl_test_failures)
        fl_proc_dump_log(&gateway, 40);
    if (stop_gateway() != 0) {
        fprintf(stderr, "the gateway did not stop cleanly\n");
        fl_proc_dump_log(&gateway, 40);
        fl_test_failures++;
    }
    fl_proc_kill(&processor);
    free(tok_rw);
    free(tok_ro);
    free(tok_other);
    fl_jwt_keyfile_free(key);
    return fl_test_done();
}
