/* SPDX-License-Identifier: Apache-2.0 */
/*
 * probe: is Kafka answering? See probe.h; comments here say why.
 */
#include "flushline/probe.h"

#include <errno.h>
#include <stdio.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "flushline/clock.h"
#include "flushline/log.h"

/* Failed probes in a row before Kafka counts as down. */
#define PROBE_FAILURES 2

struct fl_kprobe_s {
    rd_kafka_t *rk;
    rd_kafka_topic_t *topic;
    char what[64];
    int interval_ms, timeout_ms;
    atomic_bool ok;
    pthread_t thread;
    pthread_mutex_t lock; /* with wake: the stop request */
    pthread_cond_t wake;
    bool stop;
    /* the thread's own */
    int failures;
    int64_t down_since_ms;
};

/* One metadata request for the topic: 0 when every partition has a
 * leader, else the error (or -1: a partition without one). */
static int probe_once(fl_kprobe_t *p)
{
    const struct rd_kafka_metadata *md = NULL;
    rd_kafka_resp_err_t err = rd_kafka_metadata(p->rk, 0, p->topic, &md, p->timeout_ms);
    int rc = err;
    if (err)
        return rc;
    if (md->topic_cnt != 1 || md->topics[0].err || md->topics[0].partition_cnt == 0)
        rc = md->topic_cnt == 1 && md->topics[0].err ? md->topics[0].err : -1;
    for (int i = 0; rc == 0 && i < md->topics[0].partition_cnt; i++)
        if (md->topics[0].partitions[i].leader < 0)
            rc = -1;
    rd_kafka_metadata_destroy(md);
    return rc;
}

static const char *why(int rc)
{
    return rc == -1 ? "a partition has no leader" : rd_kafka_err2str((rd_kafka_resp_err_t)rc);
}

static void record(fl_kprobe_t *p, int rc)
{
    bool was = atomic_load(&p->ok);
    if (rc == 0) {
        p->failures = 0;
        if (!was)
            fl_info("kafka: back for %s after %lld ms", p->what,
                    (long long)(fl_clock_mono_ms() - p->down_since_ms));
        atomic_store(&p->ok, true);
        return;
    }
    if (++p->failures < PROBE_FAILURES || !was)
        return;
    p->down_since_ms = fl_clock_mono_ms();
    atomic_store(&p->ok, false);
    fl_warn("kafka: unreachable for %s (%s); /readyz answers 503 until it is back", p->what,
            why(rc));
}

/* Sleeps interval_ms unless stopped; true when stopped. */
static bool wait_stop(fl_kprobe_t *p)
{
    struct timespec ts;
    bool stop;
    clock_gettime(CLOCK_REALTIME, &ts);
    ts.tv_sec += p->interval_ms / 1000;
    ts.tv_nsec += (long)(p->interval_ms % 1000) * 1000000L;
    if (ts.tv_nsec >= 1000000000L) {
        ts.tv_sec++;
        ts.tv_nsec -= 1000000000L;
    }
    pthread_mutex_lock(&p->lock);
    while (!p->stop && pthread_cond_timedwait(&p->wake, &p->lock, &ts) != ETIMEDOUT)
        ;
    stop = p->stop;
    pthread_mutex_unlock(&p->lock);
    return stop;
}

static void *run(void *arg)
{
    fl_kprobe_t *p = arg;
    do
        record(p, probe_once(p));
    while (!wait_stop(p));
    return NULL;
}

fl_kprobe_t *fl_kprobe_start(rd_kafka_t *rk, const char *topic, const char *what,
                             int interval_ms, int timeout_ms)
{
    fl_kprobe_t *p = calloc(1, sizeof *p);
    if (!p)
        return NULL;
    p->rk = rk;
    p->interval_ms = interval_ms;
    p->timeout_ms = timeout_ms;
    snprintf(p->what, sizeof p->what, "%s", what);
    atomic_init(&p->ok, true);
    pthread_mutex_init(&p->lock, NULL);
    pthread_cond_init(&p->wake, NULL);
    if (!(p->topic = rd_kafka_topic_new(rk, topic, NULL)) ||
        pthread_create(&p->thread, NULL, run, p) != 0) {
        if (p->topic)
            rd_kafka_topic_destroy(p->topic);
        pthread_cond_destroy(&p->wake);
        pthread_mutex_destroy(&p->lock);
        free(p);
        return NULL;
    }
    return p;
}

bool fl_kprobe_ok(const fl_kprobe_t *p)
{
    return p && atomic_load(&p->ok);
}

void fl_kprobe_stop(fl_kprobe_t *p)
{
    if (!p)
        return;
    pthread_mutex_lock(&p->lock);
    p->stop = true;
    pthread_cond_signal(&p->wake);
    pthread_mutex_unlock(&p->lock);
    pthread_join(p->thread, NULL);
    rd_kafka_topic_destroy(p->topic);
    pthread_cond_destroy(&p->wake);
    pthread_mutex_destroy(&p->lock);
    free(p);
}
