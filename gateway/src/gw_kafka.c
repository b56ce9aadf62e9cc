/* SPDX-License-Identifier: Apache-2.0 */
/*
 * gw_kafka: the gateway's Kafka side (see gw_kafka.h). One idempotent
 * producer, served from the lws service thread; one assign-only consumer
 * run by its own thread, which decodes records and
 * hands them over through an fl_queue_t whose wake callback (the server's:
 * lws_cancel_service, the only lws call that is safe from another thread)
 * runs when a batch lands on an empty queue.
 *
 * The consumer reads the events read_uncommitted (delivery = speculative,
 * the default: outcomes are delivered as soon as the processor produced
 * them, before their transaction commits; gw_rerun.h) or read_committed
 * (delivery = committed).
 *
 * An events partition is assigned at its high watermark read just before,
 * and the service thread produces a sync only after it heard the
 * assignment: the sync reply is then always at or after the first offset
 * read. Signals partitions are read from the end (never replayed).
 *
 * Every failure ends in a definite state, never in a partition the service
 * thread waits for forever: asking for an (un)assignment allocates nothing
 * (the newest request per partition is kept); a request that fails (no
 * answer from the broker, no memory) stays pending and is tried again; the
 * answer to an assignment is allocated before the partition is assigned,
 * so an assigned partition is always announced; a record that finds no
 * memory to be decoded is decoded again (consumption waits), never dropped.
 *
 * @locality gw_kafka_new/free: main thread; gw_kafka_produce, poll, flush,
 * assign, take: lws service thread; consumer_main: the consumer thread.
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "flushline/clock.h"
#include "flushline/limits.h"
#include "flushline/kafka.h"
#include "flushline/log.h"
#include "flushline/probe.h"
#include "flushline/topics.h"
#include "gw_fault.h"
#include "gw_kafka.h"

/* The newest (un)assignment request of one partition. Requests are kept
 * per partition, not queued: asking never allocates (so it cannot fail),
 * and an older request not applied yet is superseded (its generation is
 * stale on the service thread anyway). */
typedef struct want_s {
    uint32_t gen;
    bool on;
    bool pending; /* not applied yet */
} want_t;

typedef struct req_s {
    int32_t partition;
    uint32_t gen;
    bool on;
} req_t;

struct gw_kafka_s {
    const gw_config_t *cfg;
    gw_kafka_cbs_t cbs;
    char id[256]; /* this gateway's id: sync replies for others are skipped */
    size_t idlen;
    fl_kprobe_t *probe; /* gw_kafka_ok */
    fl_queue_t *events; /* consumer thread -> service thread */
    rd_kafka_t *producer, *consumer;
    rd_kafka_topic_t *t_commands, *t_signals;
    char n_events[FL_TOPIC_NAME_MAX + 1], n_signals[FL_TOPIC_NAME_MAX + 1];
    pthread_t thread;
    bool thread_started;
    atomic_bool stop;
    pthread_mutex_t lock; /* guards want and nwant */
    want_t want[FL_MAX_PARTITIONS];
    uint32_t nwant; /* partitions with a pending request */
    /* consumer thread only */
    bool assigned[FL_MAX_PARTITIONS];
    int64_t retry_us;           /* failed requests wait until then; 0: none */
    rd_kafka_message_t *undone; /* consumed, not decoded for lack of memory yet */
};

#define RETRY_ASSIGN_US (200 * 1000) /* a failed (un)assignment is tried again after */
#define RETRY_DECODE_NS (50 * 1000 * 1000) /* a record that found no memory, again after */

#ifdef GW_FAULTS_ENABLED
_Atomic int gw_faults[GW_FAULT__COUNT];

bool gw_fault(gw_fault_site_t site)
{
    int n = atomic_load(&gw_faults[site]);
    while (n > 0)
        if (atomic_compare_exchange_weak(&gw_faults[site], &n, n - 1))
            return true;
    return false;
}
#endif

static void on_delivery(rd_kafka_t *rk, const rd_kafka_message_t *msg, void *opaque)
{
    gw_kafka_t *kafka = opaque;
    (void)rk;
    kafka->cbs.on_delivery(kafka->cbs.ctx, msg->_private, msg->err);
}

static void on_error(rd_kafka_t *rk, int err, const char *reason, void *opaque)
{
    (void)rk;
    (void)opaque;
    fl_warn("kafka: %s: %s", rd_kafka_err2name(err), reason);
}

void gw_event_free(gw_event_t *ev)
{
    if (!ev)
        return;
    fl_arena_free(ev->arena);
    free(ev->raw);
    free(ev);
}

static gw_event_t *event_of(fl_queue_item_t *item)
{
    return item ? fl_queue_entry(item, gw_event_t, link) : NULL;
}

/* One wake-up per batch (the queue calls on_wake when it was empty); the
 * service thread takes a bounded share per turn. */
static void push(gw_kafka_t *kafka, gw_event_t *first, gw_event_t *last)
{
    int64_t now = fl_clock_mono_us();
    for (gw_event_t *ev = first; ev; ev = ev == last ? NULL : event_of(ev->link.next))
        ev->queued_us = now;
    fl_queue_push(kafka->events, &first->link, &last->link);
}

gw_event_t *gw_event_next(const gw_event_t *ev)
{
    return event_of(ev->link.next);
}

gw_event_t *gw_kafka_take(gw_kafka_t *kafka)
{
    return event_of(fl_queue_take(kafka->events));
}

gw_event_t *gw_kafka_take_some(gw_kafka_t *kafka, size_t max_bytes, bool *more)
{
    return event_of(fl_queue_take_some(kafka->events, max_bytes, more));
}

bool gw_kafka_ok(const gw_kafka_t *kafka)
{
    return fl_kprobe_ok(kafka->probe);
}

/* Records a request unless a newer one for the partition is pending. */
static void want(gw_kafka_t *kafka, int32_t partition, uint32_t gen, bool on, bool newer_wins)
{
    want_t *w = &kafka->want[partition];
    pthread_mutex_lock(&kafka->lock);
    if (!w->pending) {
        kafka->nwant++;
        *w = (want_t){gen, on, true};
    } else if (!newer_wins) {
        *w = (want_t){gen, on, true};
    }
    pthread_mutex_unlock(&kafka->lock);
}

void gw_kafka_assign(gw_kafka_t *kafka, int32_t partition, uint32_t gen, bool on)
{
    if (partition < 0 || partition >= FL_MAX_PARTITIONS) {
        fl_error("partition %d out of range: not followed", partition);
        return;
    }
    want(kafka, partition, gen, on, false);
}

/* Decodes one consumed record into *out, NULL when it is of no interest to
 * this gateway (other gateways' sync replies, bad records: skipped). 0, or
 * -ENOMEM: nothing was kept, the record must be decoded again later (it
 * may be an outcome somebody waits for). */
static int to_event(gw_kafka_t *kafka, const rd_kafka_message_t *m, gw_event_t **out)
{
    const char *tn = rd_kafka_topic_name(m->rkt);
    int topic = strcmp(tn, kafka->n_events) == 0 ? FL_TOPIC_EVENTS : FL_TOPIC_SIGNALS;
    gw_event_t *ev = NULL;
    char errstr[256];
    rd_kafka_timestamp_type_t tstype;
    int rc;

    *out = NULL;
    if (!m->payload || m->len == 0)
        return 0;
    if (GW_FAULT(GW_FAULT_DECODE) || !(ev = calloc(1, sizeof *ev)) ||
        !(ev->arena = fl_arena_new(m->len * 2 + 512)))
        goto oom;
    ev->kind = GW_EV_RECORD;
    ev->topic = topic;
    ev->partition = m->partition;
    ev->ts_ms = rd_kafka_message_timestamp(m, &tstype);
    if (topic == FL_TOPIC_EVENTS)
        (void)fl_events_committed_get(m, &ev->committed); /* absent: 0 */
    rc = fl_wire_decode_record(m->payload, m->len, ev->arena, &ev->msg, errstr, sizeof errstr);
    if (rc == -FL_CODE_INTERNAL)
        goto oom;
    if (rc != 0) {
        fl_warn("skipped undecodable record in %s [%d] @%lld: %s", tn, m->partition,
                (long long)m->offset, errstr);
        goto drop;
    }
    switch (ev->msg.type) {
    case FL_WT_REC_OUTCOME:
        if (topic != FL_TOPIC_EVENTS)
            goto drop;
        /* kept for the catch-up window */
        if (ev->msg.u.outcome.outcome.napplied > 0) {
            if (!(ev->raw = malloc(m->len)))
                goto oom;
            memcpy(ev->raw, m->payload, m->len);
            ev->rawlen = m->len;
            ev->link.weight = m->len;
        }
        break;
    case FL_WT_REC_SYNC_REPLY:
        if (topic != FL_TOPIC_EVENTS || ev->msg.u.reply.gw.len != kafka->idlen ||
            memcmp(ev->msg.u.reply.gw.ptr, kafka->id, kafka->idlen) != 0)
            goto drop;
        break;
    case FL_WT_REC_SIGNAL:
        if (topic != FL_TOPIC_SIGNALS)
            goto drop;
        break;
    default:
        goto drop;
    }
    *out = ev;
    return 0;
drop:
    gw_event_free(ev);
    return 0;
oom:
    gw_event_free(ev);
    return -ENOMEM;
}

/* Applies one request. 0 when done (or nothing to do), -1 when it must be
 * tried again (the broker did not answer, or no memory): the partition's
 * state then stays as it was and the service thread keeps waiting for the
 * answer, which a retry gives. */
static int apply_one(gw_kafka_t *kafka, const req_t *r)
{
    rd_kafka_topic_partition_list_t *l = NULL;
    rd_kafka_error_t *err;
    gw_event_t *ev = NULL;
    int64_t lo = 0, hi = 0, slo = 0, shi = 0;
    rd_kafka_resp_err_t e;

    if (!r->on) {
        if (!kafka->assigned[r->partition])
            return 0;
        l = rd_kafka_topic_partition_list_new(2);
        rd_kafka_topic_partition_list_add(l, kafka->n_events, r->partition);
        rd_kafka_topic_partition_list_add(l, kafka->n_signals, r->partition);
        if ((err = rd_kafka_incremental_unassign(kafka->consumer, l))) {
            fl_warn("unassigning %s [%d]: %s", kafka->n_events, r->partition,
                    rd_kafka_error_string(err));
            rd_kafka_error_destroy(err);
        }
        kafka->assigned[r->partition] = false;
        rd_kafka_topic_partition_list_destroy(l);
        return 0;
    }

    /* The answer is allocated first: once assigned, the service thread
     * must hear it, or the partition's held flushes would wait forever. */
    if (GW_FAULT(GW_FAULT_ASSIGN) || !(ev = calloc(1, sizeof *ev))) {
        fl_error("out of memory assigning %s [%d]; retrying", kafka->n_events, r->partition);
        return -1;
    }
    /* both ends read now: a logical END would be resolved later, after
     * records we must see */
    e = rd_kafka_query_watermark_offsets(kafka->consumer, kafka->n_events, r->partition, &lo, &hi,
                                         5000);
    if (!e)
        e = rd_kafka_query_watermark_offsets(kafka->consumer, kafka->n_signals, r->partition, &slo,
                                             &shi, 5000);
    if (e) {
        fl_warn("cannot read the end of %s [%d]: %s; retrying", kafka->n_events, r->partition,
                rd_kafka_err2str(e));
        free(ev);
        return -1;
    }
    l = rd_kafka_topic_partition_list_new(2);
    rd_kafka_topic_partition_list_add(l, kafka->n_events, r->partition)->offset = hi;
    rd_kafka_topic_partition_list_add(l, kafka->n_signals, r->partition)->offset = shi;
    if (kafka->assigned[r->partition]) {
        /* re-assign at the new end: drop the old position first */
        if ((err = rd_kafka_incremental_unassign(kafka->consumer, l)))
            rd_kafka_error_destroy(err);
        kafka->assigned[r->partition] = false;
    }
    if ((err = rd_kafka_incremental_assign(kafka->consumer, l))) {
        fl_error("assigning %s [%d]: %s; retrying", kafka->n_events, r->partition,
                 rd_kafka_error_string(err));
        rd_kafka_error_destroy(err);
        rd_kafka_topic_partition_list_destroy(l);
        free(ev);
        return -1;
    }
    rd_kafka_topic_partition_list_destroy(l);
    kafka->assigned[r->partition] = true;
    fl_debug("following %s [%d] from offset %lld", kafka->n_events, r->partition, (long long)hi);
    ev->kind = GW_EV_ASSIGNED;
    ev->partition = r->partition;
    ev->gen = r->gen;
    push(kafka, ev, ev);
    return 0;
}

/* Applies the pending (un)assignment requests. One that fails is pending
 * again (unless a newer request came meanwhile) and tried after
 * RETRY_ASSIGN_US, while records keep flowing. */
static void apply_requests(gw_kafka_t *kafka)
{
    req_t reqs[FL_MAX_PARTITIONS];
    size_t n = 0;
    bool failed = false;

    if (kafka->retry_us && fl_clock_mono_us() < kafka->retry_us)
        return;
    kafka->retry_us = 0;
    pthread_mutex_lock(&kafka->lock);
    for (int32_t p = 0; kafka->nwant > 0 && p < FL_MAX_PARTITIONS; p++)
        if (kafka->want[p].pending) {
            reqs[n++] = (req_t){p, kafka->want[p].gen, kafka->want[p].on};
            kafka->want[p].pending = false;
            kafka->nwant--;
        }
    pthread_mutex_unlock(&kafka->lock);
    for (size_t i = 0; i < n; i++)
        if (apply_one(kafka, &reqs[i]) != 0) {
            want(kafka, reqs[i].partition, reqs[i].gen, reqs[i].on, true);
            failed = true;
        }
    if (failed)
        kafka->retry_us = fl_clock_mono_us() + RETRY_ASSIGN_US;
}

static void *consumer_main(void *arg)
{
    gw_kafka_t *kafka = arg;
    while (!atomic_load(&kafka->stop)) {
        gw_event_t *first = NULL, *last = NULL;
        rd_kafka_message_t *m;
        bool again = kafka->undone != NULL;
        int n = 0;

        apply_requests(kafka);
        /* a record that found no memory comes first: order is kept */
        if (kafka->undone) {
            m = kafka->undone;
            kafka->undone = NULL;
        } else {
            m = rd_kafka_consumer_poll(kafka->consumer, 20);
        }
        while (m) {
            if (m->err) {
                if (m->err != RD_KAFKA_RESP_ERR__PARTITION_EOF)
                    fl_warn("kafka consumer: %s", rd_kafka_message_errstr(m));
            } else {
                gw_event_t *ev;
                if (to_event(kafka, m, &ev) != 0) {
                    if (!again)
                        fl_error("out of memory decoding %s [%d] @%lld; retrying",
                                 rd_kafka_topic_name(m->rkt), m->partition,
                                 (long long)m->offset);
                    kafka->undone = m;
                    break;
                }
                if (ev) {
                    if (last)
                        last->link.next = &ev->link;
                    else
                        first = ev;
                    last = ev;
                }
            }
            again = false;
            rd_kafka_message_destroy(m);
            if (++n >= 512)
                break;
            m = rd_kafka_consumer_poll(kafka->consumer, 0);
        }
        if (first)
            push(kafka, first, last);
        if (kafka->undone) {
            struct timespec ts = {0, RETRY_DECODE_NS};
            nanosleep(&ts, NULL);
        }
    }
    if (kafka->undone) {
        rd_kafka_message_destroy(kafka->undone);
        kafka->undone = NULL;
    }
    return NULL;
}

/* A producer or consumer with the gateway's defaults (user kafka.*
 * settings applied last, by fl_kafka_new). NULL with errstr. */
static rd_kafka_t *handle(gw_kafka_t *kafka, rd_kafka_type_t type, const fl_kafka_kv_t *defaults,
                          char *errstr, size_t errstr_size)
{
    fl_kafka_spec_t ks = {.type = type,
                          .what = type == RD_KAFKA_PRODUCER ? "gateway producer"
                                                            : "gateway consumer",
                          .bootstrap = kafka->cfg->bootstrap,
                          .defaults = defaults,
                          .props = &kafka->cfg->kafka,
                          .opaque = kafka,
                          .on_delivery = type == RD_KAFKA_PRODUCER ? on_delivery : NULL,
                          .on_error = on_error};
    return fl_kafka_new(&ks, errstr, errstr_size);
}

/* The producer (idempotent, keyed by doc: murmur2_random, fl_kafka_new),
 * once the broker answers; the topics checked; their handles and names. */
static int open_producer(gw_kafka_t *kafka, char *errstr, size_t errstr_size)
{
    static const fl_kafka_kv_t defaults[] = {
        {"enable.idempotence", "true"},
        {"linger.ms", "1"},
        {"message.timeout.ms", "10000"},
        {NULL, NULL},
    };
    const gw_config_t *cfg = kafka->cfg;
    fl_topics_spec_t spec;
    fl_topic_state_t st[FL_TOPIC__COUNT];
    char name[FL_TOPIC_NAME_MAX + 1];

    if (!(kafka->producer = handle(kafka, RD_KAFKA_PRODUCER, defaults, errstr, errstr_size)) ||
        fl_kafka_wait_ready(kafka->producer, 30000, errstr, errstr_size) != 0)
        return -1;
    fl_topics_spec_default(&spec);
    spec.prefix = cfg->prefix;
    spec.partitions = (int)cfg->partitions;
    if (fl_topics_check(kafka->producer, &spec, st, errstr, errstr_size) != 0)
        return -1;
    if (fl_topic_name(cfg->prefix, FL_TOPIC_COMMANDS, name, sizeof name) ||
        !(kafka->t_commands = rd_kafka_topic_new(kafka->producer, name, NULL)) ||
        fl_topic_name(cfg->prefix, FL_TOPIC_SIGNALS, name, sizeof name) ||
        !(kafka->t_signals = rd_kafka_topic_new(kafka->producer, name, NULL)) ||
        fl_topic_name(cfg->prefix, FL_TOPIC_EVENTS, kafka->n_events, sizeof kafka->n_events) ||
        fl_topic_name(cfg->prefix, FL_TOPIC_SIGNALS, kafka->n_signals,
                      sizeof kafka->n_signals)) {
        snprintf(errstr, errstr_size, "cannot open the topics of prefix %s", cfg->prefix);
        return -1;
    }
    return 0;
}

/* The consumer: assign-only (the group id is never joined nor committed). */
static int open_consumer(gw_kafka_t *kafka, char *errstr, size_t errstr_size)
{
    char group[300];
    snprintf(group, sizeof group, "flushline-gateway-%s", kafka->id);
    const fl_kafka_kv_t defaults[] = {
        {"group.id", group},
        {"isolation.level", kafka->cfg->delivery == GW_DELIVERY_COMMITTED ? "read_committed"
                                                                          : "read_uncommitted"},
        {"enable.auto.commit", "false"},
        {"enable.auto.offset.store", "false"},
        {"auto.offset.reset", "latest"},
        {"fetch.wait.max.ms", "10"},
        {"fetch.error.backoff.ms", "20"},
        {NULL, NULL},
    };
    kafka->consumer = handle(kafka, RD_KAFKA_CONSUMER, defaults, errstr, errstr_size);
    return kafka->consumer ? 0 : -1;
}

gw_kafka_t *gw_kafka_new(const gw_config_t *cfg, fl_slice_t id, const gw_kafka_cbs_t *cbs,
                         char *errstr, size_t errstr_size)
{
    gw_kafka_t *kafka = NULL;
    int r;

    if (!(kafka = calloc(1, sizeof *kafka))) {
        snprintf(errstr, errstr_size, "out of memory");
        return NULL;
    }
    kafka->cfg = cfg;
    kafka->cbs = *cbs;
    kafka->idlen = id.len < sizeof kafka->id ? id.len : sizeof kafka->id - 1;
    memcpy(kafka->id, id.ptr, kafka->idlen);
    atomic_init(&kafka->stop, false);
    pthread_mutex_init(&kafka->lock, NULL);
    if (!(kafka->events = fl_queue_new(cbs->on_wake, cbs->ctx))) {
        snprintf(errstr, errstr_size, "out of memory");
        goto fail;
    }
    if (open_producer(kafka, errstr, errstr_size) != 0 ||
        open_consumer(kafka, errstr, errstr_size) != 0)
        goto fail;
    /* /readyz: Kafka answers (and says so in the log when it is back). */
    if (!(kafka->probe = fl_kprobe_start(kafka->producer, rd_kafka_topic_name(kafka->t_commands),
                                         "the gateway", 1000, 1500))) {
        snprintf(errstr, errstr_size, "out of memory");
        goto fail;
    }
    if ((r = pthread_create(&kafka->thread, NULL, consumer_main, kafka)) != 0) {
        snprintf(errstr, errstr_size, "cannot start the consumer thread: %s", strerror(r));
        goto fail;
    }
    kafka->thread_started = true;
    return kafka;
fail:
    gw_kafka_free(kafka);
    return NULL;
}

void gw_kafka_free(gw_kafka_t *kafka)
{
    gw_event_t *ev;
    if (!kafka)
        return;
    atomic_store(&kafka->stop, true);
    if (kafka->thread_started)
        pthread_join(kafka->thread, NULL);
    fl_kprobe_stop(kafka->probe);
    if (kafka->consumer) {
        rd_kafka_consumer_close(kafka->consumer);
        rd_kafka_destroy(kafka->consumer);
    }
    if (kafka->t_commands)
        rd_kafka_topic_destroy(kafka->t_commands);
    if (kafka->t_signals)
        rd_kafka_topic_destroy(kafka->t_signals);
    if (kafka->producer) {
        rd_kafka_purge(kafka->producer, RD_KAFKA_PURGE_F_QUEUE | RD_KAFKA_PURGE_F_INFLIGHT);
        rd_kafka_poll(kafka->producer, 0); /* last delivery reports free their opaques */
        rd_kafka_destroy(kafka->producer);
    }
    if (kafka->events) {
        ev = gw_kafka_take(kafka);
        while (ev) {
            gw_event_t *next = gw_event_next(ev);
            gw_event_free(ev);
            ev = next;
        }
        fl_queue_free(kafka->events);
    }
    pthread_mutex_destroy(&kafka->lock);
    free(kafka);
}

int gw_kafka_produce(gw_kafka_t *kafka, fl_topic_kind_t topic, fl_slice_t key, char *buf,
                     size_t len, void *opaque)
{
    rd_kafka_topic_t *rkt = topic == FL_TOPIC_SIGNALS ? kafka->t_signals : kafka->t_commands;
    if (rd_kafka_produce(rkt, RD_KAFKA_PARTITION_UA, RD_KAFKA_MSG_F_FREE, buf, len, key.ptr,
                         key.len, opaque) != 0)
        return (int)rd_kafka_last_error();
    return 0;
}

void gw_kafka_poll(gw_kafka_t *kafka)
{
    rd_kafka_poll(kafka->producer, 0);
}

int gw_kafka_flush(gw_kafka_t *kafka, int timeout_ms)
{
    return rd_kafka_flush(kafka->producer, timeout_ms) == 0 ? 0 : -1;
}
