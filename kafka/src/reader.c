/* SPDX-License-Identifier: Apache-2.0 */
/*
 * reader: reading one partition to its end. See reader.h for the contract;
 * comments here say why.
 */
#include "flushline/reader.h"

#include <stdio.h>
#include <stdlib.h>

#include "flushline/clock.h"
#include "flushline/errors.h"
#include "flushline/kafka.h"
#include "flushline/log.h"

/* Without a deadline, how long the watermarks may be retried. */
#define WATERMARK_RETRY_MS 30000

struct fl_reader_s {
    rd_kafka_t *rk;
    fl_read_spec_t spec;
    rd_kafka_topic_partition_list_t *parts;
    int64_t from, hi, end;
    bool assigned;
};

const char *fl_reader_strerror(int err)
{
    /* by -(err + 300); 0 is success */
    static const char *const text[] = {"success", "out of memory", "Kafka did not answer",
                                       "interrupted", "timed out"};
    return FL_NAME_AT(text, err == 0 ? 0 : -(err + 300L), "unknown reader error");
}

rd_kafka_t *fl_reader_consumer_new(const char *what, const char *bootstrap, const char *group,
                                   const fl_kafka_props_t *props, char *errstr,
                                   size_t errstr_size)
{
    const fl_kafka_kv_t defaults[] = {
        {"group.id", group},
        {"isolation.level", "read_committed"},
        {"enable.auto.commit", "false"},
        {"enable.auto.offset.store", "false"},
        {"enable.partition.eof", "true"},
        /* Reading to the end of a log that ends in aborted records or
         * markers needs fetches that return at once. */
        {"fetch.wait.max.ms", "10"},
        /* Reads take whole partitions: librdkafka's default pre-fetch
         * queue (100,000 messages) pauses fetching mid-read. */
        {"queued.min.messages", "1000000"},
        {"queued.max.messages.kbytes", "1048576"},
        {"fetch.max.bytes", "67108864"},
        {"max.partition.fetch.bytes", "16777216"},
        {NULL, NULL},
    };
    fl_kafka_spec_t ks = {.type = RD_KAFKA_CONSUMER,
                          .what = what,
                          .bootstrap = bootstrap,
                          .defaults = defaults,
                          .props = props};
    return fl_kafka_new(&ks, errstr, errstr_size);
}

static bool stopped(const fl_read_spec_t *spec)
{
    return spec->should_stop && spec->should_stop(spec->opaque);
}

static bool past(int64_t deadline_ms)
{
    return deadline_ms > 0 && fl_clock_mono_ms() > deadline_ms;
}

int fl_reader_watermarks(rd_kafka_t *rk, const fl_read_spec_t *spec, int64_t *lo, int64_t *hi,
                         char *errstr, size_t errstr_size)
{
    int64_t deadline =
        spec->deadline_ms > 0 ? spec->deadline_ms : fl_clock_mono_ms() + WATERMARK_RETRY_MS;
    rd_kafka_resp_err_t err;
    /* Right after topic creation or a leader change the partition may have
     * no leader for a moment: retry until the deadline. */
    while ((err = rd_kafka_query_watermark_offsets(rk, spec->topic, spec->partition, lo, hi,
                                                   5000))) {
        if (stopped(spec))
            return FL_READER_ESTOPPED;
        if (past(deadline)) {
            snprintf(errstr, errstr_size, "watermarks of %s [%d]: %s", spec->topic,
                     spec->partition, rd_kafka_err2str(err));
            return spec->deadline_ms > 0 ? FL_READER_ETIMEDOUT : FL_READER_EKAFKA;
        }
        rd_kafka_poll(rk, 200);
    }
    return 0;
}

fl_reader_t *fl_reader_open(rd_kafka_t *rk, const fl_read_spec_t *spec, int *rc, char *errstr,
                            size_t errstr_size)
{
    fl_reader_t *rd = calloc(1, sizeof *rd);
    int64_t lo, hi;
    rd_kafka_resp_err_t err;

    if (!rd || !(rd->parts = rd_kafka_topic_partition_list_new(1))) {
        *rc = FL_READER_ENOMEM;
        snprintf(errstr, errstr_size, "out of memory");
        free(rd);
        return NULL;
    }
    rd->rk = rk;
    rd->spec = *spec;
    if ((*rc = fl_reader_watermarks(rk, spec, &lo, &hi, errstr, errstr_size)) != 0)
        goto fail;
    rd->from = spec->from < lo ? lo : spec->from > hi ? hi : spec->from;
    rd->hi = hi;
    rd->end = spec->follow ? FL_READER_END : spec->to < hi ? spec->to : hi;
    rd_kafka_topic_partition_list_add(rd->parts, spec->topic, spec->partition)->offset = rd->from;
    if (rd->from >= rd->end)
        return rd; /* nothing to read */
    if ((err = rd_kafka_assign(rk, rd->parts))) {
        snprintf(errstr, errstr_size, "assign %s [%d]: %s", spec->topic, spec->partition,
                 rd_kafka_err2str(err));
        *rc = FL_READER_EKAFKA;
        goto fail;
    }
    rd->assigned = true;
    return rd;
fail:
    fl_reader_close(rd);
    return NULL;
}

/* poll_once: the end was reached (any other value is the callback's). */
#define AT_END 3

/* One poll: 0 goes on, AT_END, or what the callback ended the read with. */
static int poll_once(fl_reader_t *rd, int wait_ms)
{
    rd_kafka_message_t *msg = rd_kafka_consumer_poll(rd->rk, wait_ms);
    int rc = 0;

    if (msg) {
        if (!msg->err && msg->offset >= rd->end) {
            rd_kafka_message_destroy(msg);
            return AT_END;
        }
        if (!msg->err) {
            rc = rd->spec.on_record(rd->spec.opaque, msg);
        } else if (msg->err != RD_KAFKA_RESP_ERR__PARTITION_EOF) {
            /* Transient fetch errors: librdkafka retries them itself. */
            fl_warn("reading %s [%d]: %s", rd->spec.topic, rd->spec.partition,
                    rd_kafka_message_errstr(msg));
        }
        rd_kafka_message_destroy(msg);
    }
    return rc;
}

int fl_reader_step(fl_reader_t *rd, int max_ms, char *errstr, size_t errstr_size)
{
    int64_t until = fl_clock_mono_ms() + (max_ms > 0 ? max_ms : 0);

    if (!rd->assigned)
        return 0;
    do {
        int rc = poll_once(rd, max_ms < 100 ? max_ms : 100);
        if (rc == AT_END)
            return 0;
        if (rc != 0)
            return rc;
        if (rd->spec.on_progress)
            rd->spec.on_progress(rd->spec.opaque);
        if (stopped(&rd->spec))
            return FL_READER_ESTOPPED;
        if (!rd->spec.follow) {
            /* The position moves past transaction markers too, which no
             * message reports. */
            rd_kafka_position(rd->rk, rd->parts);
            if (rd->parts->elems[0].offset >= rd->end)
                return 0;
        }
        if (past(rd->spec.deadline_ms)) {
            snprintf(errstr, errstr_size,
                     "%s of %s [%d] did not reach offset %lld in time (at %lld)",
                     rd->spec.what ? rd->spec.what : "read", rd->spec.topic, rd->spec.partition,
                     (long long)rd->end, (long long)fl_reader_position(rd));
            return FL_READER_ETIMEDOUT;
        }
    } while (fl_clock_mono_ms() < until);
    return FL_READER_MORE;
}

void fl_reader_close(fl_reader_t *rd)
{
    if (!rd)
        return;
    if (rd->assigned)
        rd_kafka_assign(rd->rk, NULL);
    if (rd->parts)
        rd_kafka_topic_partition_list_destroy(rd->parts);
    free(rd);
}

int64_t fl_reader_high(const fl_reader_t *rd)
{
    return rd->hi;
}

int64_t fl_reader_position(const fl_reader_t *rd)
{
    int64_t at = rd->parts->elems[0].offset;
    return at < 0 ? rd->from : at; /* none yet: where it started */
}

int fl_reader_run(rd_kafka_t *rk, const fl_read_spec_t *spec, int64_t *high, char *errstr,
                  size_t errstr_size)
{
    int rc;
    fl_reader_t *rd = fl_reader_open(rk, spec, &rc, errstr, errstr_size);
    if (high)
        *high = rd ? rd->hi : 0;
    if (!rd)
        return rc;
    while ((rc = fl_reader_step(rd, 1000, errstr, errstr_size)) == FL_READER_MORE)
        ;
    fl_reader_close(rd);
    return rc;
}
