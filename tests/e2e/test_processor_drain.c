/* SPDX-License-Identifier: Apache-2.0 */
/*
 * SIGTERM drains of flushline-processor against the real broker.
 * - sync_pending: the state in which librdkafka 2.0.2 aborts when a
 *   cooperative-sticky consumer is destroyed (its JoinGroup was answered,
 *   its SyncGroup was not). Made deterministic by holding the group's
 *   leader, a consumer of this test, inside its log callback right after
 *   it was elected: the leader sends no SyncGroup, so the processor waits
 *   for its assignment until the test releases the leader.
 */
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "fl_ktest.h"
#include "fl_proc.h"
#include "fl_test.h"
#include "flushline/kafka.h"
#include "flushline/log.h"

#define PARTITIONS 4

static const char *bootstrap;

/* ---- a group leader that can be held ------------------------------------ */

typedef struct leader_s {
    rd_kafka_t *rk;
    pthread_t th;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    bool armed, held, release;
    _Atomic int stop;
    _Atomic int assigned; /* partitions in its assignment */
} leader_t;

static leader_t leader = {.mu = PTHREAD_MUTEX_INITIALIZER, .cv = PTHREAD_COND_INITIALIZER};

/* librdkafka calls this from the thread that logs: the one that handles
 * the JoinGroup response and, right after the line below, runs the
 * assignor and sends SyncGroup. */
static void on_leader_log(const rd_kafka_t *rk, int level, const char *fac, const char *buf)
{
    (void)rk, (void)level, (void)fac;
    if (!strstr(buf, "I am elected leader"))
        return;
    pthread_mutex_lock(&leader.mu);
    if (leader.armed) {
        leader.armed = false;
        leader.held = true;
        pthread_cond_broadcast(&leader.cv);
        while (!leader.release)
            pthread_cond_wait(&leader.cv, &leader.mu);
        leader.held = false;
    }
    pthread_mutex_unlock(&leader.mu);
}

static void *leader_main(void *arg)
{
    (void)arg;
    while (!atomic_load(&leader.stop)) {
        rd_kafka_message_t *msg = rd_kafka_consumer_poll(leader.rk, 100);
        if (msg)
            rd_kafka_message_destroy(msg);
        rd_kafka_topic_partition_list_t *parts = NULL;
        if (rd_kafka_assignment(leader.rk, &parts) == 0) {
            atomic_store(&leader.assigned, parts->cnt);
            rd_kafka_topic_partition_list_destroy(parts);
        }
    }
    return NULL;
}

static int leader_start(const char *prefix, const char *group)
{
    char errstr[512], topic[FL_TOPIC_NAME_MAX + 1];
    rd_kafka_conf_t *conf = fl_kafka_conf_new(bootstrap, NULL, errstr, sizeof errstr);
    if (!conf)
        return -1;
    rd_kafka_conf_set_log_cb(conf, on_leader_log);
    if (fl_kafka_conf_set(conf, "group.id", group, errstr, sizeof errstr) ||
        fl_kafka_conf_set(conf, "partition.assignment.strategy", "cooperative-sticky", errstr,
                          sizeof errstr) ||
        fl_kafka_conf_set(conf, "debug", "cgrp", errstr, sizeof errstr) ||
        fl_kafka_conf_set(conf, "session.timeout.ms", "30000", errstr, sizeof errstr) ||
        fl_kafka_conf_set(conf, "heartbeat.interval.ms", "200", errstr, sizeof errstr) ||
        fl_kafka_conf_set(conf, "enable.auto.commit", "false", errstr, sizeof errstr) ||
        !(leader.rk = fl_kafka_new(RD_KAFKA_CONSUMER, conf, errstr, sizeof errstr))) {
        fprintf(stderr, "leader: %s\n", errstr);
        return -1;
    }
    rd_kafka_poll_set_consumer(leader.rk);
    rd_kafka_topic_partition_list_t *sub = rd_kafka_topic_partition_list_new(1);
    fl_topic_name(prefix, FL_TOPIC_COMMANDS, topic, sizeof topic);
    rd_kafka_topic_partition_list_add(sub, topic, RD_KAFKA_PARTITION_UA);
    rd_kafka_resp_err_t err = rd_kafka_subscribe(leader.rk, sub);
    rd_kafka_topic_partition_list_destroy(sub);
    if (err)
        return -1;
    return pthread_create(&leader.th, NULL, leader_main, NULL) == 0 ? 0 : -1;
}

static void leader_release(void)
{
    pthread_mutex_lock(&leader.mu);
    leader.armed = false;
    leader.release = true;
    pthread_cond_broadcast(&leader.cv);
    pthread_mutex_unlock(&leader.mu);
}

static void leader_stop(void)
{
    if (!leader.rk)
        return;
    leader_release();
    atomic_store(&leader.stop, 1);
    pthread_join(leader.th, NULL);
    rd_kafka_consumer_close(leader.rk);
    rd_kafka_destroy(leader.rk);
    leader.rk = NULL;
}

static bool leader_has_all(void *arg)
{
    (void)arg;
    return atomic_load(&leader.assigned) == PARTITIONS;
}

static bool leader_held(void *arg)
{
    (void)arg;
    pthread_mutex_lock(&leader.mu);
    bool held = leader.held;
    pthread_mutex_unlock(&leader.mu);
    return held;
}

static bool proc_log_has(void *arg)
{
    const void **a = arg;
    return fl_proc_log_contains(a[0], a[1]) || !fl_proc_alive((fl_proc_t *)a[0]);
}

static void test_sync_pending(void)
{
    char prefix[96], group[160], log[512];
    static fl_proc_t proc;

    fl_test_unique("fltest-drsync", prefix, sizeof prefix);
    snprintf(group, sizeof group, "%s-processors", prefix);
    snprintf(log, sizeof log, "%s/tests/%s-p.log", getenv("FL_BINARY_DIR"), prefix);
    ASSERT_EQ(fl_ktest_topics(bootstrap, prefix, PARTITIONS), 0);
    ASSERT_EQ(leader_start(prefix, group), 0);
    /* The leader alone owns everything: it is the group's leader. */
    ASSERT_TRUE(fl_wait_until(leader_has_all, NULL, 60000));
    pthread_mutex_lock(&leader.mu);
    leader.armed = true;
    pthread_mutex_unlock(&leader.mu);

    const char *args[] = {"--bootstrap", bootstrap, "--prefix", prefix, "--partitions", "4",
                          "--group.id", group, "--transactional.id", prefix, "--http.port", "-1",
                          "--session.timeout.ms", "30000", "--log.level", "debug",
                          "-X", "debug=cgrp", NULL};
    ASSERT_EQ(fl_proc_start(&proc, "flushline-processor", args, log), 0);
    /* The processor's join starts a rebalance; the leader rejoins, is
     * elected and held before it sends SyncGroup. */
    ASSERT_TRUE(fl_wait_until(leader_held, NULL, 60000));
    /* The processor got its JoinGroup response and waits in SyncGroup. */
    const void *want[] = {&proc, "-> wait-sync"};
    ASSERT_TRUE(fl_wait_until(proc_log_has, want, 30000));
    ASSERT_TRUE(fl_proc_alive(&proc));
    ASSERT_EQ(fl_proc_signal(&proc, SIGTERM), 0);
    int st = fl_proc_wait(&proc, 60000);
    leader_stop();
    if (st != 0)
        fl_proc_dump_log(&proc, 40);
    ASSERT_EQ(st, 0);
}

int main(void)
{
    fl_log_init("test", FL_LOG_WARN);
    if (!(bootstrap = fl_test_bootstrap()))
        return 1;
    RUN(test_sync_pending);
    return fl_test_done();
}
