/* SPDX-License-Identifier: Apache-2.0 */
/*
 * latency-probe: the broker's produce -> consume round trip under a steady
 * load, for tuning the broker (scripts/lib/kafka-latency builds and runs it;
 * docs/operations.md, "Broker tuning", has the figures). Not part of the
 * product.
 *
 *   latency-probe BOOTSTRAP SECONDS [PROBE_RATE [LOAD_RATE [LOAD_BYTES]]]
 *
 * Makes two topics if missing (probe.rtt, 1 partition; probe.load, 6
 * partitions; replication min(3, brokers)). A load thread produces LOAD_RATE
 * records/s (default 20000) of LOAD_BYTES (default 200) to probe.load with
 * acks=all, and another consumes them; the main thread produces PROBE_RATE
 * records/s (default 200) to probe.rtt with acks=all, linger 0, idempotent,
 * each carrying its send time, and consumes them back. The round trip is
 * receipt time - send time (one monotonic clock, one process). The first 5 s
 * are a warm-up. Prints the percentiles, then each round trip over 50 ms with
 * its wall-clock time (to match against the broker's GC log), and ends with
 *   rtt n=N p50=X p99=X p99.9=X max=X ms
 */
#include <librdkafka/rdkafka.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define WARMUP_NS (5LL * 1000000000LL)
#define SLOW_MS 50.0

static atomic_bool stop;
static const char *bootstrap;

static int64_t mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static void wall(char *buf, size_t size)
{
    struct timespec ts;
    struct tm tm;
    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    snprintf(buf, size, "%02d:%02d:%02d.%03ld", tm.tm_hour, tm.tm_min, tm.tm_sec,
             ts.tv_nsec / 1000000);
}

static rd_kafka_t *client(rd_kafka_type_t type, const char *const *kv)
{
    char err[512];
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    rd_kafka_t *rk;
    if (rd_kafka_conf_set(conf, "bootstrap.servers", bootstrap, err, sizeof err) != 0)
        goto fail;
    for (; kv && kv[0]; kv += 2)
        if (rd_kafka_conf_set(conf, kv[0], kv[1], err, sizeof err) != 0)
            goto fail;
    if (!(rk = rd_kafka_new(type, conf, err, sizeof err))) {
        fprintf(stderr, "latency-probe: %s\n", err);
        exit(1);
    }
    return rk;
fail:
    fprintf(stderr, "latency-probe: %s\n", err);
    exit(1);
}

/* Creates the topics that are missing, replication min(3, brokers). */
static void make_topics(void)
{
    rd_kafka_t *rk = client(RD_KAFKA_PRODUCER, NULL);
    const struct rd_kafka_metadata *md;
    if (rd_kafka_metadata(rk, 1, NULL, &md, 30000) != RD_KAFKA_RESP_ERR_NO_ERROR) {
        fprintf(stderr, "latency-probe: no metadata from %s\n", bootstrap);
        exit(1);
    }
    int rf = md->broker_cnt < 3 ? md->broker_cnt : 3;
    rd_kafka_metadata_destroy(md);
    rd_kafka_NewTopic_t *nt[2];
    char err[256];
    nt[0] = rd_kafka_NewTopic_new("probe.rtt", 1, rf, err, sizeof err);
    nt[1] = rd_kafka_NewTopic_new("probe.load", 6, rf, err, sizeof err);
    rd_kafka_queue_t *q = rd_kafka_queue_new(rk);
    rd_kafka_CreateTopics(rk, nt, 2, NULL, q);
    rd_kafka_event_t *ev = rd_kafka_queue_poll(q, 60000);
    const rd_kafka_CreateTopics_result_t *res = ev ? rd_kafka_event_CreateTopics_result(ev) : NULL;
    size_t n = 0;
    const rd_kafka_topic_result_t **tr = res ? rd_kafka_CreateTopics_result_topics(res, &n) : NULL;
    for (size_t i = 0; i < n; i++) {
        rd_kafka_resp_err_t e = rd_kafka_topic_result_error(tr[i]);
        if (e && e != RD_KAFKA_RESP_ERR_TOPIC_ALREADY_EXISTS) {
            fprintf(stderr, "latency-probe: create %s: %s\n", rd_kafka_topic_result_name(tr[i]),
                    rd_kafka_err2str(e));
            exit(1);
        }
    }
    if (!ev) {
        fprintf(stderr, "latency-probe: CreateTopics timed out\n");
        exit(1);
    }
    rd_kafka_event_destroy(ev);
    rd_kafka_queue_destroy(q);
    rd_kafka_NewTopic_destroy_array(nt, 2);
    rd_kafka_destroy(rk);
    printf("topics probe.rtt, probe.load: replication %d\n", rf);
}

static long load_rate = 20000, load_bytes = 200;

static void *load_producer(void *arg)
{
    static const char *const kv[] = {"acks", "all", "linger.ms", "5", "enable.idempotence",
                                     "true", NULL};
    rd_kafka_t *rk = client(RD_KAFKA_PRODUCER, kv);
    char *payload = malloc((size_t)load_bytes);
    int64_t start = mono_ns(), sent = 0;
    (void)arg;
    memset(payload, 'x', (size_t)load_bytes);
    while (!atomic_load(&stop)) {
        int64_t due = (mono_ns() - start) * load_rate / 1000000000LL;
        for (; sent < due; sent++) {
            char key[16];
            snprintf(key, sizeof key, "%lld", (long long)(sent % 1000));
            if (rd_kafka_producev(rk, RD_KAFKA_V_TOPIC("probe.load"),
                                  RD_KAFKA_V_KEY(key, strlen(key)),
                                  RD_KAFKA_V_VALUE(payload, (size_t)load_bytes),
                                  RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_END))
                rd_kafka_poll(rk, 10);
        }
        rd_kafka_poll(rk, 1);
    }
    rd_kafka_flush(rk, 10000);
    rd_kafka_destroy(rk);
    free(payload);
    return NULL;
}

static void *load_consumer(void *arg)
{
    static const char *const kv[] = {"group.id", "latency-probe-load", "auto.offset.reset",
                                     "latest", "enable.auto.commit", "true", NULL};
    rd_kafka_t *rk = client(RD_KAFKA_CONSUMER, kv);
    rd_kafka_topic_partition_list_t *tl = rd_kafka_topic_partition_list_new(1);
    (void)arg;
    rd_kafka_poll_set_consumer(rk);
    rd_kafka_topic_partition_list_add(tl, "probe.load", RD_KAFKA_PARTITION_UA);
    rd_kafka_subscribe(rk, tl);
    rd_kafka_topic_partition_list_destroy(tl);
    while (!atomic_load(&stop)) {
        rd_kafka_message_t *m = rd_kafka_consumer_poll(rk, 100);
        if (m)
            rd_kafka_message_destroy(m);
    }
    rd_kafka_consumer_close(rk);
    rd_kafka_destroy(rk);
    return NULL;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

int main(int argc, char **argv)
{
    if (argc < 3) {
        fprintf(stderr, "usage: latency-probe BOOTSTRAP SECONDS [PROBE_RATE [LOAD_RATE "
                        "[LOAD_BYTES]]]\n");
        return 2;
    }
    bootstrap = argv[1];
    long seconds = atol(argv[2]), rate = argc > 3 ? atol(argv[3]) : 200;
    if (argc > 4)
        load_rate = atol(argv[4]);
    if (argc > 5)
        load_bytes = atol(argv[5]);
    if (seconds < 6 || rate < 1 || load_rate < 0 || load_bytes < 1) {
        fprintf(stderr, "latency-probe: SECONDS >= 6, rates >= 1 (load >= 0), bytes >= 1\n");
        return 2;
    }
    make_topics();

    static const char *const pkv[] = {"acks", "all", "linger.ms", "0", "enable.idempotence",
                                      "true", NULL};
    static const char *const ckv[] = {"group.id", "latency-probe", "fetch.wait.max.ms", "100",
                                      "fetch.min.bytes", "1", "enable.partition.eof", "false",
                                      NULL};
    rd_kafka_t *prod = client(RD_KAFKA_PRODUCER, pkv), *cons = client(RD_KAFKA_CONSUMER, ckv);
    rd_kafka_topic_partition_list_t *tl = rd_kafka_topic_partition_list_new(1);
    rd_kafka_topic_partition_list_add(tl, "probe.rtt", 0)->offset = RD_KAFKA_OFFSET_END;
    rd_kafka_poll_set_consumer(cons);
    rd_kafka_assign(cons, tl);
    rd_kafka_topic_partition_list_destroy(tl);

    pthread_t lp, lc;
    if (load_rate > 0) {
        pthread_create(&lp, NULL, load_producer, NULL);
        pthread_create(&lc, NULL, load_consumer, NULL);
    }

    size_t cap = (size_t)(seconds * rate + 16), n = 0, slow = 0;
    double *rtt = calloc(cap, sizeof *rtt);
    int64_t start = mono_ns(), end = start + seconds * 1000000000LL, period = 1000000000LL / rate;
    int64_t next = start, sent = 0, lost_sends = 0;
    printf("probe: %ld s, %ld/s round trips; load %ld/s x %ld B\n", seconds, rate, load_rate,
           load_bytes);
    /* Consume a little past the end so the last round trips come back. */
    while (mono_ns() < end + 2000000000LL) {
        int64_t now = mono_ns();
        if (now >= next && now < end) {
            int64_t t = now;
            if (rd_kafka_producev(prod, RD_KAFKA_V_TOPIC("probe.rtt"), RD_KAFKA_V_PARTITION(0),
                                  RD_KAFKA_V_VALUE(&t, sizeof t),
                                  RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_END))
                lost_sends++;
            sent++;
            next += period;
        }
        rd_kafka_poll(prod, 0);
        int wait_ms = (int)((next - mono_ns()) / 1000000);
        rd_kafka_message_t *m = rd_kafka_consumer_poll(cons, wait_ms < 0 ? 0 : wait_ms > 5 ? 5 : wait_ms);
        if (!m)
            continue;
        if (!m->err && m->len == sizeof(int64_t)) {
            int64_t t0, t1 = mono_ns();
            memcpy(&t0, m->payload, sizeof t0);
            double ms = (double)(t1 - t0) / 1e6;
            if (t0 - start >= WARMUP_NS && n < cap) {
                rtt[n++] = ms;
                if (ms > SLOW_MS) {
                    char w[32];
                    wall(w, sizeof w);
                    if (slow++ < 40)
                        printf("slow %s %.1f ms\n", w, ms);
                }
            }
        }
        rd_kafka_message_destroy(m);
    }
    atomic_store(&stop, true);
    if (load_rate > 0) {
        pthread_join(lp, NULL);
        pthread_join(lc, NULL);
    }
    rd_kafka_flush(prod, 5000);
    rd_kafka_consumer_close(cons);
    rd_kafka_destroy(cons);
    rd_kafka_destroy(prod);
    if (n == 0) {
        fprintf(stderr, "latency-probe: no round trip measured\n");
        return 1;
    }
    qsort(rtt, n, sizeof *rtt, cmp_double);
#define PCT(p) rtt[(size_t)((double)(n - 1) * (p))]
    printf("slow (> %.0f ms): %zu of %zu; sent %lld, refused %lld\n", SLOW_MS, slow, n,
           (long long)sent, (long long)lost_sends);
    printf("rtt n=%zu p50=%.2f p99=%.2f p99.9=%.2f max=%.2f ms\n", n, PCT(0.50), PCT(0.99),
           PCT(0.999), rtt[n - 1]);
    free(rtt);
    return 0;
}
