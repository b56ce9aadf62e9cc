/* SPDX-License-Identifier: Apache-2.0 */
/*
 * bench/latency: the baseline of `bench/run latency` (bench/latency.sh runs
 * the Flushline side with `flushline bench` and this program for the floor):
 * a bare two-hop Kafka pipeline on the same broker, with the Kafka client
 * settings of the daemons, open loop, latency from the scheduled send time.
 *
 *   producer --> <prefix>.hop1 --> forwarder --> <prefix>.hop2 --> consumer
 *
 * - producer: the gateway producer's settings (idempotent, linger.ms 1,
 *   message.timeout.ms 10000, murmur2_random), records keyed by one
 *   document id, record i due at t0 + i / rate (sent late when the loop
 *   was late: no coordinated omission); its payload carries the due time
 *   (CLOCK_MONOTONIC ns) and is padded to --bytes.
 * - forwarder (a child process, as the processor is): the processor's
 *   group consumer settings (cooperative-sticky, read_committed, no
 *   auto-commit) and its producer's settings without the transaction
 *   (idempotent, linger.ms 2, lz4); every record is produced unchanged to
 *   the same partition of hop2 as soon as it is polled. No transaction: this
 *   is the floor of any design that goes through Kafka twice, speculative
 *   delivery included.
 * - consumer (a thread of this process, so that both ends read the same
 *   clock): the gateway consumer's settings (assign-only, read_committed,
 *   fetch.wait.max.ms 10); each record's latency is now - due time.
 *
 * The consumer stands for the 100 subscribers of the Flushline run: one
 * consumer, each record counted once. Counting it S times would give the
 * same distribution; S consumers would add S fetch sessions on the broker,
 * a cost no Flushline design pays (a gateway consumes a partition once and
 * fans out from memory), and so would raise the floor.
 *
 *   latency twohop [--rate R] [--duration S] [--bytes N] [--partitions P]
 *   latency forward BOOTSTRAP IN OUT GROUP     (internal: the child)
 *   latency drop PREFIX                        (deletes a bench's topic set)
 *   latency subscribe PORT S DOC KEYFILE N SECONDS
 *                       (the Flushline side's subscribers, see below)
 *
 * The subscribers of the Flushline run (mode subscribe, its own process): S
 * raw WebSocket connections to the gateway (fanout.h's client: non-blocking
 * sockets, epoll), each `hello` with a token minted from KEYFILE, then
 * `subscribe DOC`. Prints "ready" once every connection holds the snapshot;
 * then decodes every frame with the wire decoder (fl_wire_decode, the whole
 * message, as any client must) and, for each delta, records now - the due
 * time its `add /t` carries (CLOCK_MONOTONIC ns of the writing process: one
 * clock per machine). Nothing is applied to a copy of the document: the
 * C client (client.h) would, and it would spend 42% of its time in
 * libwebsockets' client-side frame parser; with 100 of them the load
 * generator needed half a core and, on a busy machine, its own backlog
 * became what was measured. Ends when S x N deltas arrived or after
 * SECONDS; prints one JSON line.
 *
 * Needs FLUSHLINE_BOOTSTRAP. Prints one JSON line on stdout (bench/latency.sh
 * reads it): counts and p50/p90/p99/p99.9/max in ms. Histograms are
 * log-linear (HdrHistogram style): exact below 128 ns, then 64 buckets per
 * power of two, so a reported value is at most 1/64 (1.6%) above the true
 * one, never above the exact maximum.
 *
 * @locality main thread (producer), one consumer thread.
 */
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <pthread.h>
#include <signal.h>
#include <poll.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <librdkafka/rdkafka.h>

#include "fanout.h" /* the raw WebSocket client */
#include "flushline/kafka.h"
#include "flushline/wire.h"

#define SUB_BITS 7
#define SUB (1u << SUB_BITS)
#define HALF (SUB / 2)
#define NBUCKETS (SUB + (64 - SUB_BITS) * HALF)
#define PROBE_SEQ UINT64_MAX /* the readiness probes' seq */
#define DOC_KEY "bench/latency-twohop"

typedef struct hist_s {
    uint64_t count, max;
    uint64_t b[NBUCKETS];
} hist_t;

static unsigned hist_index(uint64_t v)
{
    if (v < SUB)
        return (unsigned)v;
    unsigned m = 63u - (unsigned)__builtin_clzll(v);
    unsigned shift = m - (SUB_BITS - 1);
    return SUB + (m - SUB_BITS) * HALF + (unsigned)((v >> shift) - HALF);
}

static uint64_t hist_high(unsigned idx)
{
    if (idx < SUB)
        return idx;
    unsigned g = (idx - SUB) / HALF, sub = (idx - SUB) % HALF + HALF;
    unsigned shift = g + 1;
    return ((uint64_t)sub << shift) + ((uint64_t)1 << shift) - 1;
}

static void hist_add(hist_t *h, int64_t v)
{
    uint64_t u = v > 0 ? (uint64_t)v : 0;
    if (u > h->max)
        h->max = u;
    h->count++;
    h->b[hist_index(u)]++;
}

static double hist_ms(const hist_t *h, double q)
{
    uint64_t rank, seen = 0;
    if (h->count == 0)
        return 0;
    rank = (uint64_t)ceil(q * (double)h->count);
    if (rank < 1)
        rank = 1;
    for (unsigned i = 0; i < NBUCKETS; i++) {
        seen += h->b[i];
        if (seen >= rank) {
            uint64_t v = hist_high(i);
            return (double)(v < h->max ? v : h->max) / 1e6;
        }
    }
    return (double)h->max / 1e6;
}

static int64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static void sleep_ns(int64_t ns)
{
    struct timespec ts = {(time_t)(ns / 1000000000), (long)(ns % 1000000000)};
    if (ns > 0)
        nanosleep(&ts, NULL);
}

static volatile sig_atomic_t stop_flag;

static void on_signal(int sig)
{
    (void)sig;
    stop_flag = 1;
}

/* ---- Kafka handles ---------------------------------------------------------------- */

static rd_kafka_t *new_handle(rd_kafka_type_t type, const char *what, const char *bootstrap,
                              const fl_kafka_kv_t *defaults)
{
    char errstr[512];
    fl_kafka_spec_t ks = {.type = type, .what = what, .bootstrap = bootstrap,
                          .defaults = defaults};
    rd_kafka_t *rk = fl_kafka_new(&ks, errstr, sizeof errstr);
    if (!rk)
        fprintf(stderr, "latency: %s\n", errstr);
    return rk;
}

static int create_topics(rd_kafka_t *rk, const char *const *names, int n, int partitions)
{
    rd_kafka_NewTopic_t *nt[4];
    rd_kafka_queue_t *q = rd_kafka_queue_new(rk);
    char errstr[256];
    int rc = -1;
    for (int i = 0; i < n; i++)
        nt[i] = rd_kafka_NewTopic_new(names[i], partitions, 1, errstr, sizeof errstr);
    rd_kafka_CreateTopics(rk, nt, (size_t)n, NULL, q);
    int64_t deadline = now_ns() + 30000000000LL;
    while (now_ns() < deadline) {
        rd_kafka_event_t *ev = rd_kafka_queue_poll(q, 200);
        if (!ev)
            continue;
        if (rd_kafka_event_type(ev) == RD_KAFKA_EVENT_CREATETOPICS_RESULT) {
            size_t cnt;
            const rd_kafka_topic_result_t **res =
                rd_kafka_CreateTopics_result_topics(rd_kafka_event_CreateTopics_result(ev), &cnt);
            rc = 0;
            for (size_t i = 0; i < cnt; i++)
                if (rd_kafka_topic_result_error(res[i]) &&
                    rd_kafka_topic_result_error(res[i]) != RD_KAFKA_RESP_ERR_TOPIC_ALREADY_EXISTS) {
                    fprintf(stderr, "latency: creating %s: %s\n",
                            rd_kafka_topic_result_name(res[i]),
                            rd_kafka_topic_result_error_string(res[i]));
                    rc = -1;
                }
            rd_kafka_event_destroy(ev);
            break;
        }
        rd_kafka_event_destroy(ev);
    }
    for (int i = 0; i < n; i++)
        rd_kafka_NewTopic_destroy(nt[i]);
    rd_kafka_queue_destroy(q);
    if (rc != 0 && now_ns() >= deadline)
        fprintf(stderr, "latency: creating the topics timed out\n");
    return rc;
}

static void delete_topics(rd_kafka_t *rk, const char *const *names, int n)
{
    rd_kafka_DeleteTopic_t *dt[4];
    rd_kafka_queue_t *q = rd_kafka_queue_new(rk);
    for (int i = 0; i < n; i++)
        dt[i] = rd_kafka_DeleteTopic_new(names[i]);
    rd_kafka_DeleteTopics(rk, dt, (size_t)n, NULL, q);
    int64_t deadline = now_ns() + 15000000000LL;
    while (now_ns() < deadline) {
        rd_kafka_event_t *ev = rd_kafka_queue_poll(q, 200);
        if (!ev)
            continue;
        int type = rd_kafka_event_type(ev);
        rd_kafka_event_destroy(ev);
        if (type == RD_KAFKA_EVENT_DELETETOPICS_RESULT)
            break;
    }
    for (int i = 0; i < n; i++)
        rd_kafka_DeleteTopic_destroy(dt[i]);
    rd_kafka_queue_destroy(q);
}

/* ---- the forwarder (child) -------------------------------------------------------- */

static int forward_main(const char *bootstrap, const char *in, const char *out, const char *group)
{
    static const fl_kafka_kv_t pdefaults[] = {
        {"enable.idempotence", "true"},
        {"linger.ms", "2"},
        {"message.max.bytes", "8388608"},
        {"compression.codec", "lz4"},
        {NULL, NULL},
    };
    const fl_kafka_kv_t cdefaults[] = {
        {"group.id", group},
        {"partition.assignment.strategy", "cooperative-sticky"},
        {"isolation.level", "read_committed"},
        {"enable.auto.commit", "false"},
        {"enable.auto.offset.store", "false"},
        {"auto.offset.reset", "earliest"},
        {"heartbeat.interval.ms", "1000"},
        {NULL, NULL},
    };
    rd_kafka_t *prod = new_handle(RD_KAFKA_PRODUCER, "forwarder producer", bootstrap, pdefaults);
    rd_kafka_t *cons = new_handle(RD_KAFKA_CONSUMER, "forwarder consumer", bootstrap, cdefaults);
    rd_kafka_topic_partition_list_t *sub = rd_kafka_topic_partition_list_new(1);
    uint64_t forwarded = 0;
    int rc = 1;

    if (!prod || !cons)
        goto done;
    rd_kafka_topic_partition_list_add(sub, in, RD_KAFKA_PARTITION_UA);
    if (rd_kafka_subscribe(cons, sub) != RD_KAFKA_RESP_ERR_NO_ERROR) {
        fprintf(stderr, "forwarder: subscribe failed\n");
        goto done;
    }
    /* The processor's loop: poll the consumer, produce, serve the
     * producer's callbacks without waiting. */
    while (!stop_flag) {
        rd_kafka_message_t *msg = rd_kafka_consumer_poll(cons, 100);
        if (msg) {
            if (!msg->err) {
                rd_kafka_resp_err_t err;
                while ((err = rd_kafka_producev(
                            prod, RD_KAFKA_V_TOPIC(out), RD_KAFKA_V_PARTITION(msg->partition),
                            RD_KAFKA_V_KEY(msg->key, msg->key_len),
                            RD_KAFKA_V_VALUE(msg->payload, msg->len),
                            RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_END)) ==
                           RD_KAFKA_RESP_ERR__QUEUE_FULL &&
                       !stop_flag)
                    rd_kafka_poll(prod, 10);
                if (err)
                    fprintf(stderr, "forwarder: produce: %s\n", rd_kafka_err2str(err));
                else
                    forwarded++;
            }
            rd_kafka_message_destroy(msg);
        }
        rd_kafka_poll(prod, 0);
    }
    rd_kafka_flush(prod, 5000);
    fprintf(stderr, "forwarder: %" PRIu64 " records forwarded\n", forwarded);
    rc = 0;
done:
    rd_kafka_topic_partition_list_destroy(sub);
    if (cons) {
        rd_kafka_consumer_close(cons);
        rd_kafka_destroy(cons);
    }
    if (prod)
        rd_kafka_destroy(prod);
    return rc;
}

/* ---- the consumer thread ---------------------------------------------------------- */

typedef struct recv_s {
    rd_kafka_t *rk;
    hist_t hist;
    atomic_bool stop, probe_seen;
    atomic_uint_fast64_t received, dups;
    uint64_t expected;
    uint8_t *seen; /* one byte per seq */
} recv_t;

static void *consumer_main(void *arg)
{
    recv_t *r = arg;
    while (!atomic_load(&r->stop)) {
        rd_kafka_message_t *msg = rd_kafka_consumer_poll(r->rk, 50);
        int64_t now = now_ns();
        if (!msg)
            continue;
        if (!msg->err && msg->len >= 16) {
            uint64_t seq;
            int64_t due;
            memcpy(&due, msg->payload, 8);
            memcpy(&seq, (const char *)msg->payload + 8, 8);
            if (seq == PROBE_SEQ) {
                atomic_store(&r->probe_seen, true);
            } else if (seq < r->expected) {
                if (r->seen[seq]) {
                    atomic_fetch_add(&r->dups, 1);
                } else {
                    r->seen[seq] = 1;
                    hist_add(&r->hist, now - due);
                    atomic_fetch_add(&r->received, 1);
                }
            }
        }
        rd_kafka_message_destroy(msg);
    }
    return NULL;
}

/* ---- the run ---------------------------------------------------------------------- */

static int produce(rd_kafka_t *prod, const char *topic, char *buf, size_t len, int64_t due,
                   uint64_t seq)
{
    rd_kafka_resp_err_t err;
    memcpy(buf, &due, 8);
    memcpy(buf + 8, &seq, 8);
    while ((err = rd_kafka_producev(prod, RD_KAFKA_V_TOPIC(topic),
                                    RD_KAFKA_V_KEY(DOC_KEY, sizeof DOC_KEY - 1),
                                    RD_KAFKA_V_VALUE(buf, len),
                                    RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_END)) ==
               RD_KAFKA_RESP_ERR__QUEUE_FULL &&
           !stop_flag)
        rd_kafka_poll(prod, 1);
    if (err) {
        fprintf(stderr, "latency: produce: %s\n", rd_kafka_err2str(err));
        return -1;
    }
    rd_kafka_poll(prod, 0);
    return 0;
}

/* Assigns every partition of topic at its end. */
static int assign_end(rd_kafka_t *rk, const char *topic, int partitions)
{
    rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(partitions);
    rd_kafka_resp_err_t err;
    for (int p = 0; p < partitions; p++)
        rd_kafka_topic_partition_list_add(l, topic, p)->offset = RD_KAFKA_OFFSET_END;
    err = rd_kafka_assign(rk, l);
    rd_kafka_topic_partition_list_destroy(l);
    return err ? -1 : 0;
}

static int twohop_main(int argc, char **argv)
{
    const char *bootstrap = getenv("FLUSHLINE_BOOTSTRAP");
    double rate = 1000, duration = 30;
    long bytes = 128, partitions = 4;
    char self[4096], hop1[128], hop2[128], group[128];
    const char *topics[2] = {hop1, hop2};
    rd_kafka_t *admin = NULL, *prod = NULL;
    recv_t *r = NULL;
    pthread_t thr;
    bool thr_started = false;
    pid_t fwd = -1;
    char *buf = NULL;
    int rc = 1;
    uint64_t n;
    static hist_t lag; /* how late the producer was: now - due at each send */

    for (int i = 2; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!v) {
            fprintf(stderr, "latency: %s needs a value\n", a);
            return 2;
        }
        i++;
        if (strcmp(a, "--rate") == 0)
            rate = atof(v);
        else if (strcmp(a, "--duration") == 0)
            duration = atof(v);
        else if (strcmp(a, "--bytes") == 0)
            bytes = atol(v);
        else if (strcmp(a, "--partitions") == 0)
            partitions = atol(v);
        else {
            fprintf(stderr, "latency: unknown option %s\n", a);
            return 2;
        }
    }
    if (!bootstrap || !*bootstrap || !(rate > 0 && rate <= 1e6) ||
        !(duration > 0 && duration <= 86400) || bytes < 16 || bytes > 1000000 ||
        partitions < 1 || partitions > 1000) {
        fprintf(stderr, "usage: FLUSHLINE_BOOTSTRAP=HOST:PORT latency twohop [--rate R] "
                        "[--duration S] [--bytes 16..] [--partitions P]\n");
        return 2;
    }
    n = (uint64_t)llround(rate * duration);
    ssize_t sl = readlink("/proc/self/exe", self, sizeof self - 1);
    if (sl <= 0)
        return 1;
    self[sl] = '\0';
    snprintf(hop1, sizeof hop1, "twohop%ld.hop1", (long)getpid());
    snprintf(hop2, sizeof hop2, "twohop%ld.hop2", (long)getpid());
    snprintf(group, sizeof group, "twohop%ld-forwarder", (long)getpid());

    static const fl_kafka_kv_t pdefaults[] = {
        {"enable.idempotence", "true"},
        {"linger.ms", "1"},
        {"message.timeout.ms", "10000"},
        {NULL, NULL},
    };
    const fl_kafka_kv_t cdefaults[] = {
        {"group.id", group}, /* never joined nor committed */
        {"isolation.level", "read_committed"},
        {"enable.auto.commit", "false"},
        {"enable.auto.offset.store", "false"},
        {"auto.offset.reset", "latest"},
        {"fetch.wait.max.ms", "10"},
        {"fetch.error.backoff.ms", "20"},
        {NULL, NULL},
    };
    if (!(admin = new_handle(RD_KAFKA_PRODUCER, "twohop admin", bootstrap, NULL)) ||
        create_topics(admin, topics, 2, (int)partitions) != 0)
        goto done;
    if (!(r = calloc(1, sizeof *r)) || !(r->seen = calloc(n ? n : 1, 1)) ||
        !(buf = calloc(1, (size_t)bytes)))
        goto done;
    memset(buf + 16, 'x', (size_t)bytes - 16);
    r->expected = n;
    if (!(prod = new_handle(RD_KAFKA_PRODUCER, "twohop producer", bootstrap, pdefaults)) ||
        !(r->rk = new_handle(RD_KAFKA_CONSUMER, "twohop consumer", bootstrap, cdefaults)) ||
        assign_end(r->rk, hop2, (int)partitions) != 0)
        goto done;

    fwd = fork();
    if (fwd == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        execl(self, self, "forward", bootstrap, hop1, hop2, group, (char *)NULL);
        _exit(127);
    }
    if (fwd < 0)
        goto done;
    if (pthread_create(&thr, NULL, consumer_main, r) != 0)
        goto done;
    thr_started = true;

    /* Ready when a probe makes the whole trip (the forwarder has joined its
     * group and the consumer fetches hop2). */
    int64_t deadline = now_ns() + 60000000000LL;
    while (!atomic_load(&r->probe_seen) && !stop_flag) {
        if (now_ns() > deadline) {
            fprintf(stderr, "latency: the pipeline did not pass a record within 60 s\n");
            goto done;
        }
        if (produce(prod, hop1, buf, (size_t)bytes, now_ns(), PROBE_SEQ) != 0)
            goto done;
        sleep_ns(50000000);
    }
    sleep_ns(500000000); /* let the probes drain before the clock starts */

    int64_t t0 = now_ns();
    for (uint64_t i = 0; i < n && !stop_flag; i++) {
        int64_t due = t0 + (int64_t)((double)i * 1e9 / rate);
        int64_t now = now_ns();
        while (now < due) {
            rd_kafka_poll(prod, 0);
            sleep_ns(due - now > 1000000 ? 1000000 : due - now);
            now = now_ns();
        }
        hist_add(&lag, now - due);
        if (produce(prod, hop1, buf, (size_t)bytes, due, i) != 0)
            goto done;
    }
    rd_kafka_flush(prod, 10000);
    deadline = now_ns() + 30000000000LL;
    while (atomic_load(&r->received) < n && now_ns() < deadline && !stop_flag)
        sleep_ns(10000000);
    atomic_store(&r->stop, true);
    pthread_join(thr, NULL);
    thr_started = false;

    const hist_t *h = &r->hist;
    printf("{\"system\":\"twohop\",\"rate\":%g,\"duration_s\":%g,\"bytes\":%ld,\"sent\":%" PRIu64
           ",\"received\":%" PRIu64 ",\"duplicates\":%" PRIu64
           ",\"latency_ms\":{\"count\":%" PRIu64 ",\"p50\":%.3f,\"p90\":%.3f,\"p99\":%.3f,"
           "\"p999\":%.3f,\"max\":%.3f},\"send_lag_ms\":{\"p50\":%.3f,\"p99\":%.3f,"
           "\"max\":%.3f}}\n",
           rate, duration, bytes, n, (uint64_t)atomic_load(&r->received),
           (uint64_t)atomic_load(&r->dups), h->count, hist_ms(h, 0.5), hist_ms(h, 0.9),
           hist_ms(h, 0.99), hist_ms(h, 0.999), (double)h->max / 1e6, hist_ms(&lag, 0.5),
           hist_ms(&lag, 0.99), (double)lag.max / 1e6);
    fflush(stdout);
    rc = atomic_load(&r->received) == n ? 0 : 1;
    if (rc)
        fprintf(stderr, "latency: %" PRIu64 " of %" PRIu64 " records arrived\n",
                (uint64_t)atomic_load(&r->received), n);
done:
    if (thr_started) {
        atomic_store(&r->stop, true);
        pthread_join(thr, NULL);
    }
    if (fwd > 0) {
        kill(fwd, SIGTERM);
        int64_t until = now_ns() + 10000000000LL;
        while (waitpid(fwd, NULL, WNOHANG) == 0) {
            if (now_ns() > until) {
                kill(fwd, SIGKILL);
                waitpid(fwd, NULL, 0);
                break;
            }
            sleep_ns(20000000);
        }
    }
    if (r && r->rk) {
        rd_kafka_consumer_close(r->rk);
        rd_kafka_destroy(r->rk);
    }
    if (prod)
        rd_kafka_destroy(prod);
    if (admin) {
        delete_topics(admin, topics, 2);
        rd_kafka_destroy(admin);
    }
    if (r)
        free(r->seen);
    free(r);
    free(buf);
    return rc;
}

/* ---- the subscribers (mode subscribe) ------------------------------------------------ */

static const char *sub_doc;
static uint32_t sub_ready;
static uint64_t sub_deltas, sub_bad;
static hist_t sub_hist;
static fl_arena_t *sub_arena;
static int64_t sub_now; /* the time of the read that brought the frames */

static void on_sub_frame(b_ws_t *ws, const unsigned char *p, size_t n)
{
    fl_wire_msg_t msg;
    char errstr[128];
    fl_arena_reset(sub_arena);
    if (fl_wire_decode(FL_WIRE_S2C, FL_WIRE_MSGPACK, (const char *)p, n, &fl_wire_limits_record,
                       sub_arena, &msg, errstr, sizeof errstr) != 0) {
        if (sub_bad++ == 0)
            fprintf(stderr, "subscribe: a frame does not decode: %s\n", errstr);
        return;
    }
    if (msg.type == FL_WT_WELCOME) {
        fl_wire_msg_t sub;
        char *out = NULL;
        size_t len;
        memset(&sub, 0, sizeof sub);
        sub.type = FL_WT_SUBSCRIBE;
        sub.u.sub.doc = (fl_slice_t){sub_doc, strlen(sub_doc)};
        if (fl_wire_encode(&sub, FL_WIRE_MSGPACK, &out, &len, errstr, sizeof errstr) != 0 ||
            b_ws_send(ws, out, len) != 0)
            ws->state = WS_DEAD;
        free(out);
    } else if (msg.type == FL_WT_SNAPSHOT) {
        sub_ready++;
    } else if (msg.type == FL_WT_DELTAS) {
        for (uint32_t i = 0; i < msg.u.deltas.nitems; i++) {
            const fl_wire_delta_t *d = &msg.u.deltas.items[i];
            sub_deltas++;
            for (uint32_t c = 0; c < d->ncmds; c++)
                if (d->cmds[c].path.len == 2 && memcmp(d->cmds[c].path.ptr, "/t", 2) == 0 &&
                    d->cmds[c].value.type == FL_INT) {
                    hist_add(&sub_hist, sub_now - d->cmds[c].value.u.i);
                    break;
                }
        }
    } else if (msg.type == FL_WT_ERROR) {
        fprintf(stderr, "subscribe: the gateway sent an error frame\n");
    }
}

static int subscribe_main(char **argv)
{
    int port = atoi(argv[2]), ep = epoll_create1(EPOLL_CLOEXEC);
    long s = atol(argv[3]);
    uint64_t n = strtoull(argv[6], NULL, 10), expected;
    double seconds = atof(argv[7]);
    fl_jwt_keyfile_t *kf = NULL;
    unsigned char *scratch = malloc(1 << 18);
    struct epoll_event evs[256];
    b_ws_t *ws = NULL;
    char errstr[256], *tok = NULL, *hello = NULL;
    size_t hello_len = 0;
    bool said_ready = false;
    int rc = 1;

    sub_doc = argv[4];
    if (port < 1 || port > 65535 || s < 1 || s > 100000 || !(seconds > 0) || ep < 0 ||
        !scratch || !(sub_arena = fl_arena_new(1 << 16)) || !(ws = calloc((size_t)s, sizeof *ws))) {
        fprintf(stderr, "usage: latency subscribe PORT S DOC KEYFILE N SECONDS\n");
        goto done;
    }
    expected = n * (uint64_t)s;
    b_raise_nofile();
    if (fl_jwt_keyfile_read(argv[5], &kf, errstr, sizeof errstr) != 0 ||
        !(tok = b_token(kf, "bench-subscriber"))) {
        fprintf(stderr, "subscribe: key file %s: %s\n", argv[5], errstr);
        goto done;
    }
    {
        fl_wire_msg_t msg;
        memset(&msg, 0, sizeof msg);
        msg.type = FL_WT_HELLO;
        msg.u.hello.token = (fl_slice_t){tok, strlen(tok)};
        if (fl_wire_encode(&msg, FL_WIRE_MSGPACK, &hello, &hello_len, errstr, sizeof errstr))
            goto done;
    }
    for (long i = 0; i < s; i++) {
        b_ws_t *w = &ws[i];
        struct epoll_event ev = {.events = EPOLLIN, .data.ptr = w};
        w->greeting = hello;
        w->greetlen = hello_len;
        if ((w->fd = b_tcp_connect(port, false)) < 0 || b_ws_upgrade(w) != 0) {
            fprintf(stderr, "subscribe: connection %ld: %s\n", i, strerror(errno));
            goto done;
        }
        fcntl(w->fd, F_SETFL, O_NONBLOCK);
        epoll_ctl(ep, EPOLL_CTL_ADD, w->fd, &ev);
    }
    int64_t deadline = now_ns() + (int64_t)(seconds * 1e9);
    while (!stop_flag && sub_deltas < expected && now_ns() < deadline) {
        int k = epoll_wait(ep, evs, 256, 100);
        sub_now = now_ns();
        for (int j = 0; j < k; j++) {
            b_ws_t *w = evs[j].data.ptr;
            if (b_ws_read(w, scratch, 1 << 18, on_sub_frame) != 0 || w->state == WS_DEAD) {
                fprintf(stderr, "subscribe: the gateway closed a connection\n");
                goto done;
            }
        }
        if (!said_ready && sub_ready == (uint32_t)s) {
            printf("ready\n");
            fflush(stdout);
            said_ready = true;
        }
    }
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    printf("{\"system\":\"flushline-subscribers\",\"subscribers\":%ld,\"expected\":%" PRIu64
           ",\"received\":%" PRIu64 ",\"undecodable\":%" PRIu64 ",\"cpu_s\":%.2f"
           ",\"latency_ms\":{\"count\":%" PRIu64 ",\"p50\":%.3f,\"p90\":%.3f,\"p99\":%.3f,"
           "\"p999\":%.3f,\"max\":%.3f}}\n",
           s, expected, sub_deltas, sub_bad,
           (double)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
               (double)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6,
           sub_hist.count, hist_ms(&sub_hist, 0.5), hist_ms(&sub_hist, 0.9),
           hist_ms(&sub_hist, 0.99), hist_ms(&sub_hist, 0.999), (double)sub_hist.max / 1e6);
    rc = sub_deltas == expected && sub_bad == 0 ? 0 : 1;
done:
    if (ws)
        for (long i = 0; i < s; i++) {
            if (ws[i].fd > 0)
                close(ws[i].fd);
            free(ws[i].in);
        }
    free(ws);
    free(hello);
    free(tok);
    free(scratch);
    fl_jwt_keyfile_free(kf);
    fl_arena_free(sub_arena);
    if (ep >= 0)
        close(ep);
    return rc;
}

int main(int argc, char **argv)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    if (argc == 6 && strcmp(argv[1], "forward") == 0)
        return forward_main(argv[2], argv[3], argv[4], argv[5]);
    if (argc >= 2 && strcmp(argv[1], "twohop") == 0)
        return twohop_main(argc, argv);
    if (argc == 8 && strcmp(argv[1], "subscribe") == 0)
        return subscribe_main(argv);
    if (argc == 3 && strcmp(argv[1], "drop") == 0 && getenv("FLUSHLINE_BOOTSTRAP")) {
        static const char *const kinds[4] = {"commands", "events", "snapshots", "signals"};
        char names[4][256];
        const char *topics[4];
        rd_kafka_t *admin =
            new_handle(RD_KAFKA_PRODUCER, "admin", getenv("FLUSHLINE_BOOTSTRAP"), NULL);
        if (!admin)
            return 1;
        for (int i = 0; i < 4; i++) {
            snprintf(names[i], sizeof names[i], "%s.%s", argv[2], kinds[i]);
            topics[i] = names[i];
        }
        delete_topics(admin, topics, 4);
        rd_kafka_destroy(admin);
        return 0;
    }
    fprintf(stderr, "usage: latency twohop [--rate R] [--duration S] [--bytes N] "
                    "[--partitions P]\n       latency drop PREFIX\n"
                    "       (bench/run latency runs the whole benchmark)\n");
    return 2;
}
