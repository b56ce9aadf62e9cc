/* SPDX-License-Identifier: Apache-2.0 */
/*
 * `flushline bench` (the load generator) against the real broker, a real
 * processor and a real gateway, both as child processes (the gateway on
 * --port 0, its port taken from its "listening on" log line; the signing
 * key made with `flushline token keygen`):
 * - 20 writers, 5 documents (uniform), 2000 flushes, 2 subscribers per
 *   document, --json: every flush acknowledged, none pending, latencies
 *   present and ordered, and exactly one delta per flush per subscriber of
 *   its document (4000 in all, per document acked x 2); exit 0;
 * - contention "one" (every flush on one document, 3 subscribers) and
 *   "zipf" (document 0 the busiest): the same accounting;
 * - --ops replace-append with --writers-subscribe, closed loop with 2 in
 *   flight, on a document made to hold /t and /list (HTTP flush): every
 *   flush applies both commands, the list ends with one entry per flush
 *   (read back over HTTP), and every writer and subscriber gets every delta;
 * - a malformed --gateway exits 2 naming the flag, a gateway address
 *   where nothing listens exits 1 naming the address, a refused token
 *   exits 1 saying so.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <jansson.h>

#include "fl_ktest.h"
#include "fl_proc.h"
#include "fl_test.h"
#include "flushline/log.h"

static const char *bootstrap;
static char prefix[96], keypath[600], gw_addr[64];
static fl_proc_t processor, gateway;

/* ---- running the CLI ---------------------------------------------------- */

typedef struct run_s {
    int status;
    char *out; /* stdout, NUL-terminated */
    char *err; /* stderr */
} run_t;

static void run_free(run_t *r)
{
    free(r->out);
    free(r->err);
    memset(r, 0, sizeof *r);
}

/* Runs FL_BINARY_DIR/bin/flushline with args (NULL-terminated), stdout and
 * stderr into files read back afterwards. */
static int run_cli(run_t *r, const char *const *args)
{
    const char *bindir = getenv("FL_BINARY_DIR");
    char path[1024], outpath[1024], errpath[1024];
    const char *argv[64];
    int n = 0, status;
    size_t len;
    pid_t pid;

    memset(r, 0, sizeof *r);
    snprintf(path, sizeof path, "%s/bin/flushline", bindir ? bindir : ".");
    snprintf(outpath, sizeof outpath, "%s/tests/%s-bench.out", bindir ? bindir : ".", prefix);
    snprintf(errpath, sizeof errpath, "%s/tests/%s-bench.err", bindir ? bindir : ".", prefix);
    argv[n++] = path;
    for (; *args && n < 63; args++)
        argv[n++] = *args;
    argv[n] = NULL;
    if ((pid = fork()) < 0)
        return -1;
    if (pid == 0) {
        int fo = open(outpath, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        int fe = open(errpath, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        if (fo >= 0)
            dup2(fo, 1);
        if (fe >= 0)
            dup2(fe, 2);
        execv(path, (char *const *)argv);
        fprintf(stderr, "exec %s: %s\n", path, strerror(errno));
        _exit(127);
    }
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
        ;
    r->status = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    r->out = fl_test_read_file(outpath, &len);
    r->err = fl_test_read_file(errpath, &len);
    if (!r->out)
        r->out = strdup("");
    if (!r->err)
        r->err = strdup("");
    unlink(outpath);
    unlink(errpath);
    return 0;
}

#define CLI(r, ...)                                                                                \
    do {                                                                                           \
        const char *cli_args_[] = {__VA_ARGS__, NULL};                                             \
        ASSERT_EQ(run_cli((r), cli_args_), 0);                                                     \
    } while (0)

/* ---- processes ------------------------------------------------------------ */

static bool gateway_listening(void *arg)
{
    (void)arg;
    return fl_proc_log_contains(&gateway, "listening on ") || !fl_proc_alive(&gateway);
}

/* The port of the gateway's "listening on 127.0.0.1:PORT" line, or -1. */
static int gateway_port(void)
{
    size_t len;
    char *log = fl_test_read_file(gateway.log, &len), *p;
    int port = -1;
    if (log && (p = strstr(log, "listening on 127.0.0.1:")))
        port = atoi(p + strlen("listening on 127.0.0.1:"));
    free(log);
    return port;
}

static int start_all(void)
{
    char log[512], port[16], txid[160], group[160], gwid[160];
    const char *bindir = getenv("FL_BINARY_DIR");
    run_t r;
    int gw_port;

    /* The signing key, as an operator makes it. */
    snprintf(keypath, sizeof keypath, "%s/tests/%s.key", bindir, prefix);
    const char *kargs[] = {"token", "keygen", "--type", "ed25519", "--out", keypath, "--force",
                           NULL};
    if (run_cli(&r, kargs) != 0 || r.status != 0) {
        fprintf(stderr, "token keygen failed: %s\n", r.err ? r.err : "");
        run_free(&r);
        return -1;
    }
    run_free(&r);

    snprintf(log, sizeof log, "%s/tests/%s-processor.log", bindir, prefix);
    snprintf(port, sizeof port, "%d", fl_free_port());
    snprintf(txid, sizeof txid, "%s-tx", prefix);
    snprintf(group, sizeof group, "%s-processors", prefix);
    const char *pargs[] = {"--bootstrap", bootstrap, "--prefix", prefix, "--partitions", "4",
                           "--group.id", group, "--transactional.id", txid, "--http.port", port,
                           NULL};
    if (fl_proc_start(&processor, "flushline-processor", pargs, log) != 0)
        return -1;

    char pubpath[640];
    snprintf(pubpath, sizeof pubpath, "%s.pub", keypath);
    snprintf(log, sizeof log, "%s/tests/%s-gateway.log", bindir, prefix);
    snprintf(gwid, sizeof gwid, "%s-gw1", prefix);
    const char *gargs[] = {"--bootstrap", bootstrap, "--prefix", prefix, "--partitions", "4",
                           "--port", "0", "--jwt.keys", pubpath, "--gateway.id", gwid,
                           /* 20 paced writers stay well under this */
                           "--rate", "1000", "--burst", "1000", NULL};
    if (fl_proc_start(&gateway, "flushline-gateway", gargs, log) != 0)
        return -1;
    if (!fl_wait_until(gateway_listening, NULL, 60000) || !fl_proc_alive(&gateway) ||
        (gw_port = gateway_port()) <= 0) {
        fl_proc_dump_log(&gateway, 30);
        return -1;
    }
    snprintf(gw_addr, sizeof gw_addr, "127.0.0.1:%d", gw_port);
    return 0;
}

/* ---- checks ------------------------------------------------------------------ */

static long long jint(json_t *obj, const char *path)
{
    /* "a.b.c" */
    char buf[128], *save = NULL;
    json_t *v = obj;
    snprintf(buf, sizeof buf, "%s", path);
    for (char *k = strtok_r(buf, ".", &save); k && v; k = strtok_r(NULL, ".", &save))
        v = json_object_get(v, k);
    if (!v)
        return -1000000;
    return json_is_integer(v) ? (long long)json_integer_value(v) : (long long)json_number_value(v);
}

static double jnum(json_t *obj, const char *path)
{
    char buf[128], *save = NULL;
    json_t *v = obj;
    snprintf(buf, sizeof buf, "%s", path);
    for (char *k = strtok_r(buf, ".", &save); k && v; k = strtok_r(NULL, ".", &save))
        v = json_object_get(v, k);
    return v && json_is_number(v) ? json_number_value(v) : -1;
}

/* The common accounting of a successful run of `flushes` flushes with
 * `subs` subscribers per document over `docs` documents. */
static void check_run(json_t *o, long flushes, long subs, long docs)
{
    json_t *per = json_object_get(o, "per_doc");
    long sum_acked = 0, sum_deltas = 0;

    ASSERT_EQ(jint(o, "sent"), flushes);
    ASSERT_EQ(jint(o, "acked"), flushes);
    ASSERT_EQ(jint(o, "applied"), flushes);
    ASSERT_EQ(jint(o, "pending"), 0);
    ASSERT_EQ(jint(o, "failed"), 0);
    ASSERT_EQ(jint(o, "docs"), docs);
    ASSERT_TRUE(json_is_true(json_object_get(o, "ok")));
    /* Latencies: every flush has one outcome sample; ordered percentiles. */
    ASSERT_EQ(jint(o, "latency_ms.outcome.count"), flushes);
    double p50 = jnum(o, "latency_ms.outcome.p50"), p90 = jnum(o, "latency_ms.outcome.p90");
    double p99 = jnum(o, "latency_ms.outcome.p99"), p999 = jnum(o, "latency_ms.outcome.p999");
    double max = jnum(o, "latency_ms.outcome.max"), min = jnum(o, "latency_ms.outcome.min");
    ASSERT_TRUE(min > 0 && min <= p50);
    ASSERT_TRUE(p50 <= p90 && p90 <= p99 && p99 <= p999 && p999 <= max);
    ASSERT_TRUE(max < 60000);
    /* Each applied flush reaches each subscriber of its document once. */
    ASSERT_EQ(jint(o, "deltas.expected"), flushes * subs);
    ASSERT_EQ(jint(o, "deltas.received"), flushes * subs);
    ASSERT_EQ(jint(o, "latency_ms.delta.count"), flushes * subs);
    double d50 = jnum(o, "latency_ms.delta.p50"), d99 = jnum(o, "latency_ms.delta.p99");
    double dmax = jnum(o, "latency_ms.delta.max");
    ASSERT_TRUE(d50 > 0 && d50 <= d99 && d99 <= dmax);
    ASSERT_TRUE(json_is_array(per));
    ASSERT_EQ(json_array_size(per), docs);
    for (size_t i = 0; i < json_array_size(per); i++) {
        json_t *e = json_array_get(per, i);
        ASSERT_EQ(jint(e, "acked"), jint(e, "sent"));
        ASSERT_EQ(jint(e, "deltas"), jint(e, "applied") * subs);
        sum_acked += jint(e, "acked");
        sum_deltas += jint(e, "deltas");
    }
    ASSERT_EQ(sum_acked, flushes);
    ASSERT_EQ(sum_deltas, flushes * subs);
}

static json_t *parse_out(const run_t *r)
{
    json_error_t jerr;
    json_t *o = json_loads(r->out, 0, &jerr);
    if (!o)
        fprintf(stderr, "bench output is not JSON (%s): %s\nstderr: %s\n", jerr.text, r->out,
                r->err);
    return o;
}

/* ---- cases --------------------------------------------------------------------- */

static void test_uniform_2000(void)
{
    run_t r;
    json_t *o;
    CLI(&r, "bench", "--gateway", gw_addr, "--key", keypath, "--clients", "20", "--docs", "5",
        "--flushes", "2000", "--subscribers", "2", "--json");
    if (r.status != 0)
        fprintf(stderr, "bench exited %d: %s\n%s\n", r.status, r.out, r.err);
    ASSERT_EQ(r.status, 0);
    ASSERT_TRUE((o = parse_out(&r)) != NULL);
    /* Progress lines went to stderr, not into the JSON. */
    ASSERT_TRUE(strstr(r.err, "acked") != NULL);
    check_run(o, 2000, 2, 5);
    if (fl_test_failures == 0) {
        ASSERT_EQ(jint(o, "clients"), 20);
        ASSERT_EQ(jint(o, "subscribers"), 10);
        ASSERT_TRUE(jnum(o, "throughput.flushes_per_s") > 0);
        ASSERT_TRUE(jnum(o, "throughput.commands_per_s") > 0);
        /* uniform: every document got some of 2000 */
        json_t *per = json_object_get(o, "per_doc");
        for (size_t i = 0; i < json_array_size(per); i++)
            ASSERT_GT(jint(json_array_get(per, i), "acked"), 100);
    }
    json_decref(o);
    run_free(&r);
}

static void test_contention_one(void)
{
    run_t r;
    json_t *o;
    /* --docs is ignored: every flush goes to document 0. Three commands
     * per flush (add /t, incr, incr), open loop at 500/s. */
    CLI(&r, "bench", "--gateway", gw_addr, "--key", keypath, "--clients", "5", "--docs", "5",
        "--contention", "one", "--flushes", "300", "--rate", "500", "--commands", "3",
        "--subscribers", "3", "--json", "--quiet", "--doc-prefix", "acme/one-");
    if (r.status != 0)
        fprintf(stderr, "bench exited %d: %s\n%s\n", r.status, r.out, r.err);
    ASSERT_EQ(r.status, 0);
    ASSERT_TRUE((o = parse_out(&r)) != NULL);
    check_run(o, 300, 3, 1);
    if (fl_test_failures == 0) {
        ASSERT_STR_EQ(json_string_value(json_object_get(o, "contention")), "one");
        ASSERT_EQ(jint(o, "commands_per_flush"), 3);
        ASSERT_EQ(jint(json_array_get(json_object_get(o, "per_doc"), 0), "acked"), 300);
    }
    json_decref(o);
    run_free(&r);
}

static void test_contention_zipf(void)
{
    run_t r;
    json_t *o;
    CLI(&r, "bench", "--gateway", gw_addr, "--key", keypath, "--clients", "10", "--docs", "8",
        "--contention", "zipf:1.5", "--flushes", "400", "--subscribers", "1", "--json",
        "--quiet", "--doc-prefix", "acme/zipf-");
    if (r.status != 0)
        fprintf(stderr, "bench exited %d: %s\n%s\n", r.status, r.out, r.err);
    ASSERT_EQ(r.status, 0);
    ASSERT_TRUE((o = parse_out(&r)) != NULL);
    check_run(o, 400, 1, 8);
    if (fl_test_failures == 0) {
        json_t *per = json_object_get(o, "per_doc");
        /* weight 1 against 1/8^1.5 = 0.044: document 0 is far ahead */
        ASSERT_GT(jint(json_array_get(per, 0), "acked"), 4 * jint(json_array_get(per, 7), "acked"));
    }
    json_decref(o);
    run_free(&r);
}

/* METHOD path with a bearer token and an optional JSON body on the
 * gateway; the status, the response body malloc'd into *resp; -1. */
static int http_bearer(const char *method, const char *path, const char *token,
                       const char *body, char **resp)
{
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)gateway_port()),
                             .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    struct timeval tv = {10, 0};
    int fd = socket(AF_INET, SOCK_STREAM, 0), status = -1, n;
    size_t blen = body ? strlen(body) : 0, len = 0, cap = 1 << 20;
    char *req = NULL, *buf = NULL, *sep;
    ssize_t r;
    *resp = NULL;
    if (fd < 0 || !(req = malloc(blen + 4096)) || !(buf = malloc(cap)))
        goto fail;
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    if (connect(fd, (struct sockaddr *)&sa, sizeof sa) != 0)
        goto fail;
    n = snprintf(req, blen + 4096,
                 "%s %s HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer %s\r\n"
                 "Content-Type: application/json\r\nContent-Length: %zu\r\n"
                 "Connection: close\r\n\r\n%s",
                 method, path, token, blen, body ? body : "");
    if (n < 0 || write(fd, req, (size_t)n) != n)
        goto fail;
    while (len < cap - 1 && (r = read(fd, buf + len, cap - 1 - len)) > 0)
        len += (size_t)r;
    buf[len] = '\0';
    if (sscanf(buf, "HTTP/1.%*d %d", &status) != 1)
        goto fail;
    sep = strstr(buf, "\r\n\r\n");
    *resp = strdup(sep ? sep + 4 : "");
fail:
    free(req);
    free(buf);
    if (fd >= 0)
        close(fd);
    return status;
}

static void test_replace_append_subscribed(void)
{
    run_t r, t;
    json_t *o = NULL, *snap = NULL;
    char *resp = NULL, *token;
    json_error_t jerr;

    CLI(&t, "token", "mint", "--key", keypath, "--sub", "setup", "--write", "acme/");
    ASSERT_EQ(t.status, 0);
    token = t.out;
    token[strcspn(token, "\n")] = '\0';
    /* replace needs /t to exist, and add /list/- needs the list. */
    ASSERT_EQ(http_bearer("POST", "/v1/docs/acme/ra-0/flush", token,
                          "{\"client_id\":\"c0c1c2c3c4c5c6c7c8c9cacbcccdcecf\",\"seq\":1,"
                          "\"base_version\":0,\"commands\":[{\"op\":\"add\",\"path\":\"/t\","
                          "\"value\":0},{\"op\":\"add\",\"path\":\"/list\",\"value\":[]}]}",
                          &resp),
              200);
    free(resp);
    CLI(&r, "bench", "--gateway", gw_addr, "--key", keypath, "--clients", "4", "--contention",
        "one", "--flushes", "200", "--window", "2", "--ops", "replace-append",
        "--writers-subscribe", "--subscribers", "1", "--json", "--quiet", "--doc-prefix",
        "acme/ra-");
    if (r.status != 0)
        fprintf(stderr, "bench exited %d: %s\n%s\n", r.status, r.out, r.err);
    ASSERT_EQ(r.status, 0);
    ASSERT_TRUE((o = parse_out(&r)) != NULL);
    /* 1 subscriber + 4 subscribed writers receive every delta. */
    check_run(o, 200, 5, 1);
    if (fl_test_failures == 0) {
        ASSERT_STR_EQ(json_string_value(json_object_get(o, "ops")), "replace-append");
        ASSERT_TRUE(json_is_true(json_object_get(o, "writers_subscribe")));
        ASSERT_EQ(jint(o, "commands_per_flush"), 2);
        /* Both commands of every flush applied: the list holds 200 writer
         * indexes and the document 2 + 2 x 200 versions. */
        ASSERT_EQ(http_bearer("GET", "/v1/docs/acme/ra-0", token, NULL, &resp), 200);
        ASSERT_TRUE((snap = json_loads(resp ? resp : "", 0, &jerr)) != NULL);
        json_t *list = json_object_get(json_object_get(snap, "state"), "list");
        ASSERT_EQ(json_array_size(list), 200);
        ASSERT_EQ(jint(snap, "version"), 402);
        for (size_t i = 0; i < json_array_size(list); i++)
            ASSERT_TRUE(json_integer_value(json_array_get(list, i)) >= 0 &&
                        json_integer_value(json_array_get(list, i)) < 4);
        ASSERT_TRUE(json_is_integer(json_object_get(json_object_get(snap, "state"), "t")));
    }
    json_decref(snap);
    free(resp);
    json_decref(o);
    run_free(&r);
    run_free(&t);
}

static void test_bad_gateway(void)
{
    run_t r;
    char addr[64];
    CLI(&r, "bench", "--gateway", "nonsense", "--key", keypath, "--flushes", "10");
    ASSERT_EQ(r.status, 2);
    ASSERT_TRUE(strstr(r.err, "bad --gateway \"nonsense\"") != NULL);
    run_free(&r);

    CLI(&r, "bench", "--gateway", "127.0.0.1:70000", "--key", keypath, "--flushes", "10");
    ASSERT_EQ(r.status, 2);
    run_free(&r);

    /* Nothing listens there. */
    snprintf(addr, sizeof addr, "127.0.0.1:%d", fl_free_port());
    CLI(&r, "bench", "--gateway", addr, "--key", keypath, "--flushes", "10", "--connect-timeout",
        "2");
    ASSERT_EQ(r.status, 1);
    ASSERT_TRUE(strstr(r.err, addr) != NULL);
    ASSERT_TRUE(strstr(r.err, "no connection welcomed") != NULL);
    run_free(&r);

    /* A token the gateway refuses. */
    CLI(&r, "bench", "--gateway", gw_addr, "--token", "not.a.token", "--flushes", "10");
    ASSERT_EQ(r.status, 1);
    ASSERT_TRUE(strstr(r.err, "unauthorized") != NULL);
    run_free(&r);

    /* Neither --token nor --key. */
    CLI(&r, "bench", "--gateway", gw_addr, "--flushes", "10");
    ASSERT_EQ(r.status, 2);
    run_free(&r);
}

int main(void)
{
    fl_log_init("test", FL_LOG_WARN);
    signal(SIGPIPE, SIG_IGN);
    if (!(bootstrap = fl_test_bootstrap()))
        return 1;
    fl_test_unique("fltest-bench", prefix, sizeof prefix);
    if (fl_ktest_topics(bootstrap, prefix, 4) != 0 || start_all() != 0) {
        fprintf(stderr, "setup failed\n");
        fl_proc_kill(&processor);
        fl_proc_kill(&gateway);
        return 1;
    }
    RUN(test_uniform_2000);
    RUN(test_contention_one);
    RUN(test_contention_zipf);
    RUN(test_replace_append_subscribed);
    RUN(test_bad_gateway);
    if (fl_test_failures) {
        fl_proc_dump_log(&gateway, 30);
        fl_proc_dump_log(&processor, 30);
    }
    fl_proc_signal(&gateway, SIGTERM);
    fl_proc_signal(&processor, SIGTERM);
    if (fl_proc_wait(&gateway, 20000) < 0)
        fl_proc_kill(&gateway);
    if (fl_proc_wait(&processor, 30000) < 0)
        fl_proc_kill(&processor);
    return fl_test_done();
}
