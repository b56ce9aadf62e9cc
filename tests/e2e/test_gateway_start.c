/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Starting the daemons with librdkafka settings of the user's (-X):
 * - a TLS setting librdkafka refuses when it builds the handle (an
 *   unreadable CA file): the gateway and the processor exit 2 with a
 *   message that names the handle and the setting, and with no sanitizer
 *   report (the gateway freed the librdkafka conf twice here);
 * - consumer and producer settings that Flushline also sets itself: the
 *   user's value is the one in effect on every handle of the gateway
 *   (producer and consumer) and of the processor (producer, group
 *   consumer, restore reader), as the start-up line read back from each
 *   live handle shows; Flushline's other defaults stay; SIGTERM exits 0.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fl_ktest.h"
#include "fl_proc.h"
#include "fl_test.h"
#include "flushline/jwt.h"
#include "flushline/log.h"

static const char *bootstrap;
static char prefix[96], keypath[600];

static int write_key(void)
{
    char errstr[256], text[2048];
    fl_jwt_keyfile_t *key = NULL;
    long n;
    FILE *fp;
    snprintf(keypath, sizeof keypath, "%s/tests/%s.key", getenv("FL_BINARY_DIR"), prefix);
    if (fl_jwt_keyfile_generate(FL_JWT_EDDSA, "k1", &key, errstr, sizeof errstr) != 0)
        return -1;
    n = fl_jwt_keyfile_format(key, false, text, sizeof text);
    fl_jwt_keyfile_free(key);
    if (n < 0 || !(fp = fopen(keypath, "w")))
        return -1;
    fwrite(text, 1, (size_t)n, fp);
    fclose(fp);
    return 0;
}

static void log_path(char *buf, size_t size, const char *name)
{
    snprintf(buf, size, "%s/tests/%s-%s.log", getenv("FL_BINARY_DIR"), prefix, name);
    remove(buf);
}

/* The text of a log, or "" (never NULL; free it). */
static char *log_text(const fl_proc_t *proc)
{
    size_t len;
    char *text = fl_test_read_file(proc->log, &len);
    return text ? text : strdup("");
}

/* True when the log holds no sanitizer report. */
static bool clean(const char *text)
{
    return !strstr(text, "AddressSanitizer") && !strstr(text, "LeakSanitizer") &&
           !strstr(text, "runtime error") && !strstr(text, "double-free");
}

/* The line of text that contains "kafka <what>:" (a copy), or NULL. */
static char *settings_line(const char *text, const char *what)
{
    char needle[128];
    const char *p, *nl;
    snprintf(needle, sizeof needle, "kafka %s:", what);
    if (!(p = strstr(text, needle)))
        return NULL;
    nl = strchr(p, '\n');
    return strndup(p, nl ? (size_t)(nl - p) : strlen(p));
}

/* 0 when the start-up line of what holds every " name=value" of want. */
static int line_has(const char *text, const char *what, const char *const *want)
{
    char *line = settings_line(text, what);
    int rc = 0;
    if (!line) {
        fprintf(stderr, "no start-up line of the %s\n", what);
        return -1;
    }
    for (; *want; want++) {
        char item[160];
        snprintf(item, sizeof item, " %s", *want);
        /* the item ends at a space or the line's end */
        const char *at = strstr(line, item);
        size_t n = strlen(item);
        if (!at || (at[n] != ' ' && at[n] != '\0')) {
            fprintf(stderr, "the %s line lacks \"%s\": %s\n", what, *want, line);
            rc = -1;
        }
    }
    free(line);
    return rc;
}

static void test_gateway_refused_tls(void)
{
    char log[600], port[16];
    fl_proc_t gw;
    char *text;
    log_path(log, sizeof log, "gw-tls");
    snprintf(port, sizeof port, "%d", fl_free_port());
    const char *args[] = {"--bootstrap", bootstrap, "--prefix", prefix, "--port", port,
                          "--jwt.keys", keypath, "-X", "security.protocol=ssl", "-X",
                          "ssl.ca.location=/nonexistent/ca.pem", NULL};
    ASSERT_EQ(fl_proc_start(&gw, "flushline-gateway", args, log), 0);
    int st = fl_proc_wait(&gw, 60000);
    text = log_text(&gw);
    if (st != 2 || !clean(text) ||
        !strstr(text, "cannot start: kafka gateway producer: ssl.ca.location")) {
        fprintf(stderr, "exit %d, log:\n%s\n", st, text);
        free(text);
        fl_proc_kill(&gw);
        FL_FAIL_("the gateway did not refuse the TLS settings cleanly");
    }
    free(text);
}

static void test_processor_refused_tls(void)
{
    char log[600], txid[160];
    fl_proc_t pr;
    char *text;
    log_path(log, sizeof log, "pr-tls");
    snprintf(txid, sizeof txid, "%s-tls", prefix);
    const char *args[] = {"--bootstrap", bootstrap, "--prefix", prefix,
                          "--transactional.id", txid, "--http.port", "-1",
                          "-X", "security.protocol=ssl", "-X",
                          "ssl.ca.location=/nonexistent/ca.pem", NULL};
    ASSERT_EQ(fl_proc_start(&pr, "flushline-processor", args, log), 0);
    int st = fl_proc_wait(&pr, 60000);
    text = log_text(&pr);
    if (st != 2 || !clean(text) ||
        !strstr(text, "cannot start: kafka processor producer: ssl.ca.location")) {
        fprintf(stderr, "exit %d, log:\n%s\n", st, text);
        free(text);
        fl_proc_kill(&pr);
        FL_FAIL_("the processor did not refuse the TLS settings cleanly");
    }
    free(text);
}

static int gw_port;
static fl_proc_t gateway;

static bool gateway_healthy(void *arg)
{
    char *body = NULL;
    (void)arg;
    int st = fl_http_get(gw_port, "/healthz", &body);
    free(body);
    return st == 200 || !fl_proc_alive(&gateway);
}

static void test_gateway_user_settings_win(void)
{
    char log[600], port[16], gwid[160];
    char *text;
    /* Flushline sets fetch.wait.max.ms=10 and fetch.error.backoff.ms=20 on
     * its consumer (and read_uncommitted: delivery = speculative, the
     * default), linger.ms=1 on its producer */
    static const char *const consumer[] = {"fetch.wait.max.ms=77", "fetch.error.backoff.ms=33",
                                           "isolation.level=read_uncommitted",
                                           "enable.auto.commit=false", NULL};
    static const char *const producer[] = {"linger.ms=4", "enable.idempotence=true",
                                           "partitioner=murmur2_random", NULL};
    log_path(log, sizeof log, "gw-settings");
    snprintf(port, sizeof port, "%d", gw_port = fl_free_port());
    snprintf(gwid, sizeof gwid, "%s-gw", prefix);
    const char *args[] = {"--bootstrap", bootstrap, "--prefix", prefix, "--partitions", "2",
                          "--port", port, "--jwt.keys", keypath, "--gateway.id", gwid,
                          "-X", "fetch.wait.max.ms=77", "-X", "fetch.error.backoff.ms=33",
                          "-X", "linger.ms=4", NULL};
    ASSERT_EQ(fl_proc_start(&gateway, "flushline-gateway", args, log), 0);
    if (!fl_wait_until(gateway_healthy, NULL, 60000) || !fl_proc_alive(&gateway)) {
        fl_proc_dump_log(&gateway, 30);
        fl_proc_kill(&gateway);
        FL_FAIL_("the gateway did not start");
    }
    text = log_text(&gateway);
    int bad = line_has(text, "gateway consumer", consumer) |
              line_has(text, "gateway producer", producer);
    free(text);
    ASSERT_EQ(fl_proc_signal(&gateway, SIGTERM), 0);
    int st = fl_proc_wait(&gateway, 30000);
    text = log_text(&gateway);
    bool ok = clean(text);
    free(text);
    if (st != 0)
        fl_proc_kill(&gateway);
    ASSERT_EQ(bad, 0);
    ASSERT_EQ(st, 0);
    ASSERT_TRUE(ok);
}

static bool processor_ready(void *arg)
{
    fl_proc_t *pr = arg;
    /* logged by the run loop, once SIGTERM drains */
    return fl_proc_log_contains(pr, "INFO processor: processing ") || !fl_proc_alive(pr);
}

static void test_processor_user_settings_win(void)
{
    char log[600], txid[160], group[160];
    fl_proc_t pr;
    char *text;
    /* the restore reader's own value is 10, and the consumer's default
     * librdkafka's 500 */
    static const char *const want[] = {"fetch.wait.max.ms=77", "isolation.level=read_committed",
                                       NULL};
    static const char *const producer[] = {"linger.ms=4", "compression.codec=lz4", NULL};
    log_path(log, sizeof log, "pr-settings");
    snprintf(txid, sizeof txid, "%s-tx", prefix);
    snprintf(group, sizeof group, "%s-group", prefix);
    const char *args[] = {"--bootstrap", bootstrap, "--prefix", prefix, "--partitions", "2",
                          "--transactional.id", txid, "--group.id", group, "--http.port", "-1",
                          "-X", "fetch.wait.max.ms=77", "-X", "linger.ms=4", NULL};
    ASSERT_EQ(fl_proc_start(&pr, "flushline-processor", args, log), 0);
    if (!fl_wait_until(processor_ready, &pr, 60000) || !fl_proc_alive(&pr)) {
        fl_proc_dump_log(&pr, 30);
        fl_proc_kill(&pr);
        FL_FAIL_("the processor did not start");
    }
    text = log_text(&pr);
    int bad = line_has(text, "processor consumer", want) |
              line_has(text, "processor restore reader", want) |
              line_has(text, "processor producer", producer);
    free(text);
    ASSERT_EQ(fl_proc_signal(&pr, SIGTERM), 0);
    int st = fl_proc_wait(&pr, 60000);
    text = log_text(&pr);
    bool ok = clean(text);
    free(text);
    if (st != 0)
        fl_proc_kill(&pr);
    ASSERT_EQ(bad, 0);
    ASSERT_EQ(st, 0);
    ASSERT_TRUE(ok);
}

int main(void)
{
    fl_log_init("test", FL_LOG_WARN);
    if (!(bootstrap = fl_test_bootstrap()))
        return 1;
    fl_test_unique("gwstart", prefix, sizeof prefix);
    if (fl_ktest_topics(bootstrap, prefix, 2) != 0 || write_key() != 0) {
        fprintf(stderr, "cannot create the topics or the key\n");
        return 1;
    }
    RUN(test_gateway_refused_tls);
    RUN(test_processor_refused_tls);
    RUN(test_gateway_user_settings_win);
    RUN(test_processor_user_settings_win);
    remove(keypath);
    return fl_test_done();
}
