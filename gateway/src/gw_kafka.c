/* SPDX-License-Identifier: Apache-2.0 */
/*
 * gw_kafka: the gateway's Kafka side. One idempotent producer for commands
 * (flushes, syncs) and signals, served from the lws service thread
 * (gw_kafka_poll runs its delivery reports there). One assign-only,
 * read_committed consumer on the events and signals partitions the
 * service thread asks for, run by its own thread: it decodes records and
 * queues them, then wakes the service thread with lws_cancel_service (the
 * only lws call that is safe from another thread).
 *
 * An events partition is assigned at its high watermark read just before,
 * and the service thread produces a sync only after it heard the
 * assignment: the sync reply is then always at or after the first offset
 * read. Signals partitions are read from the end (never replayed).
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

#include "flushline/kafka.h"
#include "flushline/log.h"
#include "flushline/topics.h"
#include "gw_int.h"

typedef struct req_s {
    int32_t partition;
    uint32_t gen;
    bool on;
} req_t;

struct gw_kafka_s {
    gw_t *gw;
    rd_kafka_t *producer, *consumer;
    rd_kafka_topic_t *t_commands, *t_signals;
    char n_events[FL_TOPIC_NAME_MAX + 1], n_signals[FL_TOPIC_NAME_MAX + 1];
    pthread_t thread;
    bool thread_started;
    atomic_bool stop;
    pthread_mutex_t lock; /* guards everything below */
    gw_event_t *head, *tail;
    req_t *reqs;
    size_t nreqs, capreqs;
    /* consumer thread only */
    bool assigned[GW_MAX_PARTITIONS];
};

static void on_delivery(rd_kafka_t *rk, const rd_kafka_message_t *msg, void *opaque)
{
    gw_kafka_t *kafka = opaque;
    (void)rk;
    gw_on_delivery(kafka->gw, msg->_private, msg->err);
}

static void on_error(rd_kafka_t *rk, int err, const char *reason, void *opaque)
{
    gw_kafka_t *kafka = opaque;
    (void)rk;
    if (err == RD_KAFKA_RESP_ERR__ALL_BROKERS_DOWN)
        atomic_store(&kafka->gw->kafka_ok, false);
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

static void push(gw_kafka_t *kafka, gw_event_t *first, gw_event_t *last)
{
    bool was_empty;
    pthread_mutex_lock(&kafka->lock);
    was_empty = kafka->head == NULL;
    if (kafka->tail)
        kafka->tail->next = first;
    else
        kafka->head = first;
    kafka->tail = last;
    pthread_mutex_unlock(&kafka->lock);
    /* One wake-up per batch; the service thread takes the whole list. */
    if (was_empty && kafka->gw->context)
        lws_cancel_service(kafka->gw->context);
}

gw_event_t *gw_kafka_take(gw_kafka_t *kafka)
{
    gw_event_t *list;
    pthread_mutex_lock(&kafka->lock);
    list = kafka->head;
    kafka->head = kafka->tail = NULL;
    pthread_mutex_unlock(&kafka->lock);
    return list;
}

void gw_kafka_assign(gw_kafka_t *kafka, int32_t partition, uint32_t gen, bool on)
{
    pthread_mutex_lock(&kafka->lock);
    if (kafka->nreqs == kafka->capreqs) {
        size_t cap = kafka->capreqs ? kafka->capreqs * 2 : 16;
        req_t *r = realloc(kafka->reqs, cap * sizeof *r);
        if (!r) {
            pthread_mutex_unlock(&kafka->lock);
            fl_error("out of memory queueing a partition assignment");
            return;
        }
        kafka->reqs = r;
        kafka->capreqs = cap;
    }
    kafka->reqs[kafka->nreqs++] = (req_t){partition, gen, on};
    pthread_mutex_unlock(&kafka->lock);
}

/* Decodes one consumed record into an event, or NULL when it is of no
 * interest to this gateway (other gateways' sync replies, bad records). */
static gw_event_t *to_event(gw_kafka_t *kafka, const rd_kafka_message_t *m, int topic)
{
    gw_event_t *ev;
    char errstr[256];
    rd_kafka_timestamp_type_t tstype;
    int rc;

    if (!m->payload || m->len == 0)
        return NULL;
    if (!(ev = calloc(1, sizeof *ev)) || !(ev->arena = fl_arena_new(m->len * 2 + 512))) {
        gw_event_free(ev);
        fl_error("out of memory decoding a record");
        return NULL;
    }
    ev->kind = GW_EV_RECORD;
    ev->topic = topic;
    ev->partition = m->partition;
    ev->ts_ms = rd_kafka_message_timestamp(m, &tstype);
    rc = fl_wire_decode_record(m->payload, m->len, ev->arena, &ev->msg, errstr, sizeof errstr);
    if (rc != 0) {
        fl_warn("skipped undecodable record in %s [%d] @%lld: %s",
                rd_kafka_topic_name(m->rkt), m->partition, (long long)m->offset, errstr);
        goto drop;
    }
    switch (ev->msg.type) {
    case FL_WT_REC_OUTCOME:
        if (topic != FL_TOPIC_EVENTS)
            goto drop;
        /* kept for the catch-up window */
        if (ev->msg.u.outcome.outcome.napplied > 0) {
            if (!(ev->raw = malloc(m->len)))
                goto drop;
            memcpy(ev->raw, m->payload, m->len);
            ev->rawlen = m->len;
        }
        break;
    case FL_WT_REC_SYNC_REPLY:
        if (topic != FL_TOPIC_EVENTS || ev->msg.u.reply.gw.len != kafka->gw->idlen ||
            memcmp(ev->msg.u.reply.gw.ptr, kafka->gw->id, kafka->gw->idlen) != 0)
            goto drop;
        break;
    case FL_WT_REC_SIGNAL:
        if (topic != FL_TOPIC_SIGNALS)
            goto drop;
        break;
    default:
        goto drop;
    }
    return ev;
drop:
    gw_event_free(ev);
    return NULL;
}

/* Applies queued (un)assignment requests. An assignment reads the events
 * high watermark first and assigns there; a failure leaves the request
 * queued for the next turn. */
static void apply_requests(gw_kafka_t *kafka)
{
    req_t *reqs;
    size_t n, i, keep = 0;

    pthread_mutex_lock(&kafka->lock);
    reqs = kafka->reqs;
    n = kafka->nreqs;
    kafka->reqs = NULL;
    kafka->nreqs = kafka->capreqs = 0;
    pthread_mutex_unlock(&kafka->lock);
    if (n == 0) {
        free(reqs);
        return;
    }
    for (i = 0; i < n; i++) {
        req_t *r = &reqs[i];
        rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(2);
        rd_kafka_error_t *err = NULL;
        int64_t lo = 0, hi = 0;
        if (r->partition < 0 || r->partition >= GW_MAX_PARTITIONS || !l) {
            rd_kafka_topic_partition_list_destroy(l);
            continue;
        }
        if (r->on) {
            int64_t slo = 0, shi = 0;
            /* both ends read now: a logical END would be resolved later,
             * after records we must see */
            rd_kafka_resp_err_t e = rd_kafka_query_watermark_offsets(
                kafka->consumer, kafka->n_events, r->partition, &lo, &hi, 5000);
            if (!e)
                e = rd_kafka_query_watermark_offsets(kafka->consumer, kafka->n_signals,
                                                     r->partition, &slo, &shi, 5000);
            if (e) {
                fl_warn("cannot read the end of %s [%d]: %s; retrying", kafka->n_events,
                        r->partition, rd_kafka_err2str(e));
                atomic_store(&kafka->gw->kafka_ok, false);
                reqs[keep++] = *r;
                rd_kafka_topic_partition_list_destroy(l);
                continue;
            }
            atomic_store(&kafka->gw->kafka_ok, true);
            rd_kafka_topic_partition_list_add(l, kafka->n_events, r->partition)->offset = hi;
            rd_kafka_topic_partition_list_add(l, kafka->n_signals, r->partition)->offset = shi;
            if (kafka->assigned[r->partition]) {
                /* re-assign at the new end: drop the old position first */
                rd_kafka_error_t *e2 = rd_kafka_incremental_unassign(kafka->consumer, l);
                if (e2)
                    rd_kafka_error_destroy(e2);
            }
            err = rd_kafka_incremental_assign(kafka->consumer, l);
            if (err) {
                fl_error("assigning %s [%d]: %s", kafka->n_events, r->partition,
                         rd_kafka_error_string(err));
                rd_kafka_error_destroy(err);
                reqs[keep++] = *r;
            } else {
                gw_event_t *ev = calloc(1, sizeof *ev);
                kafka->assigned[r->partition] = true;
                fl_debug("following %s [%d] from offset %lld", kafka->n_events, r->partition,
                         (long long)hi);
                if (ev) {
                    ev->kind = GW_EV_ASSIGNED;
                    ev->partition = r->partition;
                    ev->gen = r->gen;
                    push(kafka, ev, ev);
                }
            }
        } else if (kafka->assigned[r->partition]) {
            rd_kafka_topic_partition_list_add(l, kafka->n_events, r->partition);
            rd_kafka_topic_partition_list_add(l, kafka->n_signals, r->partition);
            err = rd_kafka_incremental_unassign(kafka->consumer, l);
            if (err) {
                fl_warn("unassigning %s [%d]: %s", kafka->n_events, r->partition,
                        rd_kafka_error_string(err));
                rd_kafka_error_destroy(err);
            }
            kafka->assigned[r->partition] = false;
        }
        rd_kafka_topic_partition_list_destroy(l);
    }
    if (keep > 0) {
        /* put the failed ones back in front of anything queued since */
        pthread_mutex_lock(&kafka->lock);
        req_t *merged = malloc((keep + kafka->nreqs) * sizeof *merged);
        if (merged) {
            memcpy(merged, reqs, keep * sizeof *merged);
            if (kafka->nreqs)
                memcpy(merged + keep, kafka->reqs, kafka->nreqs * sizeof *merged);
            free(kafka->reqs);
            kafka->reqs = merged;
            kafka->nreqs += keep;
            kafka->capreqs = kafka->nreqs;
        }
        pthread_mutex_unlock(&kafka->lock);
        struct timespec ts = {0, 200 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    free(reqs);
}

static void *consumer_main(void *arg)
{
    gw_kafka_t *kafka = arg;
    while (!atomic_load(&kafka->stop)) {
        gw_event_t *first = NULL, *last = NULL;
        rd_kafka_message_t *m;
        int n = 0;

        apply_requests(kafka);
        m = rd_kafka_consumer_poll(kafka->consumer, 20);
        while (m) {
            if (m->err) {
                if (m->err != RD_KAFKA_RESP_ERR__PARTITION_EOF)
                    fl_warn("kafka consumer: %s", rd_kafka_message_errstr(m));
            } else {
                const char *tn = rd_kafka_topic_name(m->rkt);
                int topic = strcmp(tn, kafka->n_events) == 0 ? FL_TOPIC_EVENTS : FL_TOPIC_SIGNALS;
                gw_event_t *ev = to_event(kafka, m, topic);
                if (ev) {
                    if (last)
                        last->next = ev;
                    else
                        first = ev;
                    last = ev;
                }
            }
            rd_kafka_message_destroy(m);
            if (++n >= 512)
                break;
            m = rd_kafka_consumer_poll(kafka->consumer, 0);
        }
        if (first)
            push(kafka, first, last);
    }
    return NULL;
}

gw_kafka_t *gw_kafka_new(gw_t *gw, char *errstr, size_t errstr_size)
{
    const gw_config_t *cfg = gw->cfg;
    gw_kafka_t *kafka = NULL;
    rd_kafka_conf_t *conf = NULL;
    fl_topics_spec_t spec;
    fl_topic_state_t st[FL_TOPIC__COUNT];
    char name[FL_TOPIC_NAME_MAX + 1], group[300];
    int r;

    if (!(kafka = calloc(1, sizeof *kafka))) {
        snprintf(errstr, errstr_size, "out of memory");
        return NULL;
    }
    kafka->gw = gw;
    atomic_init(&kafka->stop, false);
    pthread_mutex_init(&kafka->lock, NULL);

    /* producer: idempotent, keyed by doc with murmur2_random (fl_kafka_new) */
    if (!(conf = fl_kafka_conf_new(cfg->bootstrap, &cfg->kafka, errstr, errstr_size)))
        goto fail;
    rd_kafka_conf_set_opaque(conf, kafka);
    rd_kafka_conf_set_dr_msg_cb(conf, on_delivery);
    rd_kafka_conf_set_error_cb(conf, on_error);
    if (fl_kafka_conf_set(conf, "enable.idempotence", "true", errstr, errstr_size) ||
        fl_kafka_conf_set(conf, "linger.ms", "1", errstr, errstr_size) ||
        fl_kafka_conf_set(conf, "message.timeout.ms", "10000", errstr, errstr_size))
        goto fail;
    for (size_t i = 0; i < cfg->kafka.count; i++)
        if (fl_kafka_conf_set(conf, cfg->kafka.names[i], cfg->kafka.values[i], errstr,
                              errstr_size))
            goto fail;
    if (!(kafka->producer = fl_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, errstr_size)))
        goto fail;
    conf = NULL;
    if (fl_kafka_wait_ready(kafka->producer, 30000, errstr, errstr_size) != 0)
        goto fail;
    fl_topics_spec_default(&spec);
    spec.prefix = cfg->prefix;
    spec.partitions = (int)cfg->partitions;
    if ((r = fl_topics_check(kafka->producer, &spec, st, errstr, errstr_size)) != 0)
        goto fail;
    if (fl_topic_name(cfg->prefix, FL_TOPIC_COMMANDS, name, sizeof name) ||
        !(kafka->t_commands = rd_kafka_topic_new(kafka->producer, name, NULL)) ||
        fl_topic_name(cfg->prefix, FL_TOPIC_SIGNALS, name, sizeof name) ||
        !(kafka->t_signals = rd_kafka_topic_new(kafka->producer, name, NULL)) ||
        fl_topic_name(cfg->prefix, FL_TOPIC_EVENTS, kafka->n_events, sizeof kafka->n_events) ||
        fl_topic_name(cfg->prefix, FL_TOPIC_SIGNALS, kafka->n_signals,
                      sizeof kafka->n_signals)) {
        snprintf(errstr, errstr_size, "cannot open the topics of prefix %s", cfg->prefix);
        goto fail;
    }

    /* consumer: assign-only (the group id is never joined nor committed) */
    if (!(conf = fl_kafka_conf_new(cfg->bootstrap, &cfg->kafka, errstr, errstr_size)))
        goto fail;
    snprintf(group, sizeof group, "flushline-gateway-%s", gw->id);
    rd_kafka_conf_set_opaque(conf, kafka);
    rd_kafka_conf_set_error_cb(conf, on_error);
    if (fl_kafka_conf_set(conf, "group.id", group, errstr, errstr_size) ||
        fl_kafka_conf_set(conf, "isolation.level", "read_committed", errstr, errstr_size) ||
        fl_kafka_conf_set(conf, "enable.auto.commit", "false", errstr, errstr_size) ||
        fl_kafka_conf_set(conf, "enable.auto.offset.store", "false", errstr, errstr_size) ||
        fl_kafka_conf_set(conf, "auto.offset.reset", "latest", errstr, errstr_size) ||
        fl_kafka_conf_set(conf, "fetch.wait.max.ms", "10", errstr, errstr_size) ||
        fl_kafka_conf_set(conf, "fetch.error.backoff.ms", "20", errstr, errstr_size))
        goto fail;
    if (!(kafka->consumer = fl_kafka_new(RD_KAFKA_CONSUMER, conf, errstr, errstr_size)))
        goto fail;
    conf = NULL;
    rd_kafka_poll_set_consumer(kafka->consumer);
    atomic_store(&gw->kafka_ok, true);
    if ((r = pthread_create(&kafka->thread, NULL, consumer_main, kafka)) != 0) {
        snprintf(errstr, errstr_size, "cannot start the consumer thread: %s", strerror(r));
        goto fail;
    }
    kafka->thread_started = true;
    return kafka;
fail:
    if (conf)
        rd_kafka_conf_destroy(conf);
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
    while ((ev = gw_kafka_take(kafka))) {
        while (ev) {
            gw_event_t *next = ev->next;
            gw_event_free(ev);
            ev = next;
        }
    }
    free(kafka->reqs);
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
