/* SPDX-License-Identifier: Apache-2.0 */
/*
 * fl_kafka_new, the one builder of librdkafka handles (no broker needed:
 * a handle is created without connecting; the values are read back from
 * the live handle):
 * - Flushline's base settings and the component's defaults are applied,
 *   murmur2_random on producers;
 * - the user's kafka.* / -X settings win over both, on producers and on
 *   consumers; a default entry without a value is skipped;
 * - callbacks and the opaque reach the handle;
 * - a setting librdkafka refuses (a default or a user setting) and a
 *   handle librdkafka refuses to create (an unreadable TLS file) give NULL
 *   with an errstr naming the handle and the setting, and leave nothing
 *   allocated (ASan's leak check at exit) and nothing freed twice;
 * - the start-up line lists the effective values, secrets masked.
 */
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fl_test.h"
#include "flushline/kafka.h"
#include "flushline/log.h"

#define BOOTSTRAP "127.0.0.1:1" /* nothing listens: handles never connect */

static int delivered;

static void on_delivery(rd_kafka_t *rk, const rd_kafka_message_t *msg, void *opaque)
{
    (void)rk;
    (void)msg;
    (void)opaque;
    delivered++;
}

static void on_rebalance(rd_kafka_t *rk, rd_kafka_resp_err_t err,
                         rd_kafka_topic_partition_list_t *parts, void *opaque)
{
    (void)rk;
    (void)err;
    (void)parts;
    (void)opaque;
}

/* The value of name on rk, in a static buffer ("(unknown)" when none). */
static const char *get(rd_kafka_t *rk, const char *name)
{
    static char buf[512];
    if (fl_kafka_get(rk, name, buf, sizeof buf) != 0)
        snprintf(buf, sizeof buf, "(unknown)");
    return buf;
}

static void test_producer_defaults(void)
{
    static const fl_kafka_kv_t defaults[] = {
        {"linger.ms", "7"},
        {"message.timeout.ms", "9000"},
        {"enable.idempotence", "true"},
        {NULL, NULL},
    };
    char errstr[512] = "";
    int opaque;
    fl_kafka_spec_t ks = {.type = RD_KAFKA_PRODUCER,
                          .what = "unit producer",
                          .bootstrap = BOOTSTRAP,
                          .defaults = defaults,
                          .opaque = &opaque,
                          .on_delivery = on_delivery};
    rd_kafka_t *rk = fl_kafka_new(&ks, errstr, sizeof errstr);
    if (!rk)
        FL_FAIL_("fl_kafka_new: %s", errstr);
    ASSERT_STR_EQ(get(rk, "bootstrap.servers"), BOOTSTRAP);
    ASSERT_STR_EQ(get(rk, "reconnect.backoff.max.ms"), "1000");
    ASSERT_STR_EQ(get(rk, "partitioner"), "murmur2_random");
    ASSERT_STR_EQ(get(rk, "linger.ms"), "7");
    ASSERT_STR_EQ(get(rk, "message.timeout.ms"), "9000");
    ASSERT_STR_EQ(get(rk, "enable.idempotence"), "true");
    ASSERT_TRUE(rd_kafka_opaque(rk) == &opaque);
    rd_kafka_destroy(rk);
}

static void test_producer_user_props_win(void)
{
    static const fl_kafka_kv_t defaults[] = {{"linger.ms", "7"}, {NULL, NULL}};
    fl_kafka_props_t props = {0};
    char errstr[512] = "";
    ASSERT_EQ(fl_kafka_props_add(&props, "linger.ms", "3"), 0);
    ASSERT_EQ(fl_kafka_props_add(&props, "partitioner", "consistent"), 0);
    ASSERT_EQ(fl_kafka_props_add(&props, "reconnect.backoff.max.ms", "5000"), 0);
    ASSERT_EQ(fl_kafka_props_add(&props, "bootstrap.servers", "127.0.0.1:2"), 0);
    fl_kafka_spec_t ks = {.type = RD_KAFKA_PRODUCER,
                          .bootstrap = BOOTSTRAP,
                          .defaults = defaults,
                          .props = &props};
    rd_kafka_t *rk = fl_kafka_new(&ks, errstr, sizeof errstr);
    if (!rk)
        FL_FAIL_("fl_kafka_new: %s", errstr);
    ASSERT_STR_EQ(get(rk, "linger.ms"), "3");
    ASSERT_STR_EQ(get(rk, "partitioner"), "consistent");
    ASSERT_STR_EQ(get(rk, "reconnect.backoff.max.ms"), "5000");
    ASSERT_STR_EQ(get(rk, "bootstrap.servers"), "127.0.0.1:2");
    rd_kafka_destroy(rk);
}

static void test_consumer_user_props_win(void)
{
    const fl_kafka_kv_t defaults[] = {
        {"group.id", "unit-group"},
        {"isolation.level", "read_committed"},
        {"fetch.wait.max.ms", "10"},
        {"auto.offset.reset", "latest"},
        {"group.instance.id", NULL}, /* skipped */
        {NULL, NULL},
    };
    fl_kafka_props_t props = {0};
    char errstr[512] = "";
    int opaque;
    ASSERT_EQ(fl_kafka_props_add(&props, "fetch.wait.max.ms", "77"), 0);
    ASSERT_EQ(fl_kafka_props_add(&props, "isolation.level", "read_uncommitted"), 0);
    fl_kafka_spec_t ks = {.type = RD_KAFKA_CONSUMER,
                          .what = "unit consumer",
                          .bootstrap = BOOTSTRAP,
                          .defaults = defaults,
                          .props = &props,
                          .opaque = &opaque,
                          .on_rebalance = on_rebalance};
    rd_kafka_t *rk = fl_kafka_new(&ks, errstr, sizeof errstr);
    if (!rk)
        FL_FAIL_("fl_kafka_new: %s", errstr);
    ASSERT_STR_EQ(get(rk, "group.id"), "unit-group");
    ASSERT_STR_EQ(get(rk, "fetch.wait.max.ms"), "77");
    ASSERT_STR_EQ(get(rk, "isolation.level"), "read_uncommitted");
    ASSERT_STR_EQ(get(rk, "auto.offset.reset"), "largest"); /* librdkafka's name of latest */
    ASSERT_STR_EQ(get(rk, "reconnect.backoff.max.ms"), "1000");
    { /* the entry without a value set nothing */
        char gi[64];
        ASSERT_TRUE(fl_kafka_get(rk, "group.instance.id", gi, sizeof gi) != 0 || gi[0] == '\0');
    }
    ASSERT_TRUE(rd_kafka_opaque(rk) == &opaque);
    rd_kafka_consumer_close(rk);
    rd_kafka_destroy(rk);
}

/* fl_kafka_new must fail with errstr containing each of want (NULL-ended)
 * and not containing avoid (when set). */
static int expect_refused(const fl_kafka_spec_t *ks, const char *const *want, const char *avoid)
{
    char errstr[512] = "";
    rd_kafka_t *rk = fl_kafka_new(ks, errstr, sizeof errstr);
    if (rk) {
        fprintf(stderr, "expected a refusal, got a handle\n");
        rd_kafka_destroy(rk);
        return -1;
    }
    for (; *want; want++)
        if (!strstr(errstr, *want)) {
            fprintf(stderr, "errstr \"%s\" lacks \"%s\"\n", errstr, *want);
            return -1;
        }
    if (avoid && strstr(errstr, avoid)) {
        fprintf(stderr, "errstr \"%s\" shows \"%s\"\n", errstr, avoid);
        return -1;
    }
    return 0;
}

static void test_refused_settings(void)
{
    static const fl_kafka_kv_t bad_default[] = {{"linger.ms", "soon"}, {NULL, NULL}};
    static const fl_kafka_kv_t unknown[] = {{"no.such.setting", "1"}, {NULL, NULL}};
    static const fl_kafka_kv_t good[] = {{"group.id", "g"}, {NULL, NULL}};
    fl_kafka_props_t props = {0};
    ASSERT_EQ(fl_kafka_props_add(&props, "fetch.wait.max.ms", "never"), 0);
    for (int t = 0; t < 2; t++) {
        rd_kafka_type_t type = t ? RD_KAFKA_CONSUMER : RD_KAFKA_PRODUCER;
        /* a refused default, named with the handle */
        const char *const w1[] = {"kafka unit client: setting linger.ms=soon", NULL};
        fl_kafka_spec_t a = {.type = type,
                             .what = "unit client",
                             .bootstrap = BOOTSTRAP,
                             .defaults = bad_default};
        ASSERT_EQ(expect_refused(&a, w1, "kafka.* or -X"), 0);
        /* an unknown name; without a name the handle is called by its type */
        const char *const w2[] = {t ? "kafka consumer: " : "kafka producer: ", "no.such.setting",
                                  NULL};
        fl_kafka_spec_t b = {.type = type, .bootstrap = BOOTSTRAP, .defaults = unknown};
        ASSERT_EQ(expect_refused(&b, w2, NULL), 0);
        /* a refused user setting, named as one */
        const char *const w3[] = {"kafka unit client: setting fetch.wait.max.ms=never",
                                  "(from kafka.* or -X)", NULL};
        fl_kafka_spec_t c = {.type = type,
                             .what = "unit client",
                             .bootstrap = BOOTSTRAP,
                             .defaults = good,
                             .props = &props};
        ASSERT_EQ(expect_refused(&c, w3, NULL), 0);
    }
}

/* librdkafka refuses to create the handle (after the settings were
 * accepted): the conf is released exactly once (the double free of issue
 * 11 was here). */
static void test_refused_handle(void)
{
    static const fl_kafka_kv_t good[] = {{"group.id", "g"}, {NULL, NULL}};
    static const char *const want[] = {"kafka unit tls", "ssl.ca.location", NULL};
    fl_kafka_props_t props = {0};
    ASSERT_EQ(fl_kafka_props_add(&props, "security.protocol", "ssl"), 0);
    ASSERT_EQ(fl_kafka_props_add(&props, "ssl.ca.location", "/nonexistent/ca.pem"), 0);
    for (int t = 0; t < 2; t++) {
        fl_kafka_spec_t ks = {.type = t ? RD_KAFKA_CONSUMER : RD_KAFKA_PRODUCER,
                              .what = "unit tls",
                              .bootstrap = BOOTSTRAP,
                              .defaults = good,
                              .props = &props,
                              .on_delivery = t ? NULL : on_delivery,
                              .on_rebalance = t ? on_rebalance : NULL};
        ASSERT_EQ(expect_refused(&ks, want, NULL), 0);
    }
    /* a consumer without a group.id cannot be polled as the callers do */
    {
        static const char *const w[] = {"group.id", NULL};
        fl_kafka_spec_t ks = {.type = RD_KAFKA_CONSUMER, .bootstrap = BOOTSTRAP};
        ASSERT_EQ(expect_refused(&ks, w, NULL), 0);
    }
}

/* The start-up line of a handle, captured from stderr. */
static char *startup_line(const fl_kafka_spec_t *ks)
{
    char path[] = "/tmp/fl-kafka-conf-XXXXXX", errstr[512];
    int fd = mkstemp(path), saved = dup(2);
    size_t len;
    char *text, *line = NULL;
    rd_kafka_t *rk;
    if (fd < 0 || saved < 0)
        return NULL;
    fflush(stderr);
    dup2(fd, 2);
    rk = fl_kafka_new(ks, errstr, sizeof errstr);
    fflush(stderr);
    dup2(saved, 2);
    close(saved);
    close(fd);
    if (rk) {
        if (ks->type == RD_KAFKA_CONSUMER)
            rd_kafka_consumer_close(rk);
        rd_kafka_destroy(rk);
    } else {
        fprintf(stderr, "fl_kafka_new: %s\n", errstr);
    }
    text = fl_test_read_file(path, &len);
    unlink(path);
    if (text) {
        char *p = strstr(text, "kafka unit log:");
        if (p) {
            char *nl = strchr(p, '\n');
            line = strndup(p, nl ? (size_t)(nl - p) : strlen(p));
        }
        free(text);
    }
    return line;
}

static void test_startup_line(void)
{
    static const fl_kafka_kv_t defaults[] = {
        {"group.id", "unit-log"}, {"fetch.wait.max.ms", "10"}, {NULL, NULL}};
    fl_kafka_props_t props = {0};
    int saved = fl_log_threshold;
    ASSERT_EQ(fl_kafka_props_add(&props, "fetch.wait.max.ms", "77"), 0);
    ASSERT_EQ(fl_kafka_props_add(&props, "sasl.password", "hunter2"), 0);
    fl_kafka_spec_t ks = {.type = RD_KAFKA_CONSUMER,
                          .what = "unit log",
                          .bootstrap = BOOTSTRAP,
                          .defaults = defaults,
                          .props = &props};
    fl_log_threshold = FL_LOG_INFO;
    char *line = startup_line(&ks);
    fl_log_threshold = saved;
    ASSERT_TRUE(line != NULL);
    if (!strstr(line, " bootstrap.servers=" BOOTSTRAP) || !strstr(line, " group.id=unit-log") ||
        !strstr(line, " fetch.wait.max.ms=77") || strstr(line, "fetch.wait.max.ms=10") ||
        !strstr(line, " sasl.password=(secret)") || strstr(line, "hunter2")) {
        fprintf(stderr, "line: %s\n", line);
        free(line);
        FL_FAIL_("the start-up line does not show the effective settings");
    }
    free(line);
    ASSERT_TRUE(fl_kafka_is_secret("ssl.key.password"));
    ASSERT_TRUE(fl_kafka_is_secret("sasl.oauthbearer.client.secret"));
    ASSERT_TRUE(fl_kafka_is_secret("ssl.key.pem"));
    ASSERT_TRUE(!fl_kafka_is_secret("linger.ms"));
}

static void test_get(void)
{
    fl_kafka_spec_t ks = {.type = RD_KAFKA_PRODUCER, .bootstrap = BOOTSTRAP};
    char errstr[512], small[4];
    rd_kafka_t *rk = fl_kafka_new(&ks, errstr, sizeof errstr);
    ASSERT_TRUE(rk != NULL);
    ASSERT_EQ(fl_kafka_get(rk, "no.such.setting", small, sizeof small), -1);
    ASSERT_EQ(fl_kafka_get(rk, "bootstrap.servers", small, sizeof small), -1); /* too small */
    ASSERT_EQ(fl_kafka_get(rk, "linger.ms", small, sizeof small), 0);
    ASSERT_EQ(delivered, 0);
    rd_kafka_destroy(rk);
}

int main(void)
{
    fl_log_init("test", FL_LOG_ERROR - 1); /* quiet: nothing listens at BOOTSTRAP */
    RUN(test_producer_defaults);
    RUN(test_producer_user_props_win);
    RUN(test_consumer_user_props_win);
    RUN(test_refused_settings);
    RUN(test_refused_handle);
    RUN(test_startup_line);
    RUN(test_get);
    return fl_test_done();
}
