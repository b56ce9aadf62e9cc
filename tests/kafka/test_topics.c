/* SPDX-License-Identifier: Apache-2.0 */
/*
 * `flushline topics`: create makes the four topics with the right partition
 * counts and a compacted snapshots topic; check names a topic whose
 * partition count differs; the CLI's exit codes follow.
 */
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#include "fl_test.h"
#include "flushline/kafka.h"
#include "flushline/log.h"
#include "flushline/topics.h"

static const char *bootstrap;

static rd_kafka_t *admin(void)
{
    char errstr[512];
    fl_kafka_spec_t ks = {.type = RD_KAFKA_PRODUCER, .what = "test admin", .bootstrap = bootstrap};
    rd_kafka_t *rk = fl_kafka_new(&ks, errstr, sizeof errstr);
    if (!rk)
        fprintf(stderr, "%s\n", errstr);
    return rk;
}

static void test_create_then_check(void)
{
    char prefix[96], errstr[512];
    fl_topics_spec_t spec;
    fl_topic_state_t st[FL_TOPIC__COUNT];
    rd_kafka_t *rk = admin();
    ASSERT_TRUE(rk != NULL);
    fl_topics_spec_default(&spec);
    spec.prefix = fl_test_unique("fltest", prefix, sizeof prefix);
    spec.partitions = 3;

    ASSERT_EQ(fl_topics_check(rk, &spec, st, errstr, sizeof errstr), -1);
    ASSERT_EQ(st[FL_TOPIC_COMMANDS].exists, 0);

    ASSERT_EQ(fl_topics_create(rk, &spec, st, errstr, sizeof errstr), 0);
    for (int k = 0; k < FL_TOPIC__COUNT; k++) {
        ASSERT_EQ(st[k].exists, 1);
        ASSERT_EQ(st[k].partitions, 3);
        ASSERT_STR_EQ(st[k].problem, "");
    }
    ASSERT_STR_EQ(st[FL_TOPIC_SNAPSHOTS].cleanup_policy, "compact");
    ASSERT_STR_EQ(st[FL_TOPIC_EVENTS].cleanup_policy, "delete");
    /* Idempotent. */
    ASSERT_EQ(fl_topics_create(rk, &spec, st, errstr, sizeof errstr), 0);

    spec.partitions = 4;
    ASSERT_EQ(fl_topics_check(rk, &spec, st, errstr, sizeof errstr), -1);
    ASSERT_TRUE(strstr(errstr, ".commands has 3 partitions, expected 4") != NULL);
    rd_kafka_destroy(rk);
}

/* One topic made by hand with another partition count is named. */
static void test_one_topic_mismatch(void)
{
    char prefix[96], name[160], errstr[512];
    fl_topics_spec_t spec;
    fl_topic_state_t st[FL_TOPIC__COUNT];
    rd_kafka_t *rk = admin();
    ASSERT_TRUE(rk != NULL);
    fl_topics_spec_default(&spec);
    spec.prefix = fl_test_unique("fltest", prefix, sizeof prefix);
    spec.partitions = 2;
    ASSERT_EQ(fl_topic_name(spec.prefix, FL_TOPIC_EVENTS, name, sizeof name), 0);

    rd_kafka_NewTopic_t *nt = rd_kafka_NewTopic_new(name, 5, 1, NULL, 0);
    rd_kafka_queue_t *q = rd_kafka_queue_new(rk);
    rd_kafka_CreateTopics(rk, &nt, 1, NULL, q);
    rd_kafka_event_t *ev = rd_kafka_queue_poll(q, 30000);
    ASSERT_TRUE(ev != NULL);
    rd_kafka_event_destroy(ev);
    rd_kafka_NewTopic_destroy(nt);
    rd_kafka_queue_destroy(q);

    ASSERT_EQ(fl_topics_create(rk, &spec, st, errstr, sizeof errstr), -1);
    ASSERT_TRUE(strstr(errstr, name) != NULL);
    ASSERT_TRUE(strstr(errstr, "has 5 partitions, expected 2") != NULL);
    ASSERT_STR_EQ(st[FL_TOPIC_COMMANDS].problem, "");
    rd_kafka_destroy(rk);
}

static int run_cli(const char *args)
{
    char cmd[1024];
    snprintf(cmd, sizeof cmd, "%s/bin/flushline %s --bootstrap %s >/dev/null 2>&1",
             getenv("FL_BINARY_DIR"), args, bootstrap);
    int st = system(cmd);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static void test_cli_exit_codes(void)
{
    char prefix[96], args[256];
    fl_test_unique("fltest", prefix, sizeof prefix);
    snprintf(args, sizeof args, "topics describe --prefix %s", prefix);
    ASSERT_EQ(run_cli(args), 1);
    snprintf(args, sizeof args, "topics create --prefix %s --partitions 2", prefix);
    ASSERT_EQ(run_cli(args), 0);
    snprintf(args, sizeof args, "topics describe --prefix %s --partitions 2", prefix);
    ASSERT_EQ(run_cli(args), 0);
    snprintf(args, sizeof args, "topics describe --prefix %s --partitions 3", prefix);
    ASSERT_EQ(run_cli(args), 1);
    ASSERT_EQ(run_cli("topics frobnicate"), 2);
    /* settings librdkafka refuses, at once or when the handle is built */
    ASSERT_EQ(run_cli("topics describe -X linger.ms=soon"), 2);
    ASSERT_EQ(run_cli("topics describe -X security.protocol=ssl "
                      "-X ssl.ca.location=/nonexistent/ca.pem"),
              2);
}

int main(void)
{
    fl_log_init("test", FL_LOG_WARN);
    if (!(bootstrap = fl_test_bootstrap()))
        return 1;
    RUN(test_create_then_check);
    RUN(test_one_topic_mismatch);
    RUN(test_cli_exit_codes);
    return fl_test_done();
}
