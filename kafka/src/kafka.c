/* SPDX-License-Identifier: Apache-2.0 */
/* kafka: see kafka.h. */
#include "flushline/kafka.h"

#include <stdio.h>
#include <string.h>

#include "flushline/log.h"

#define MAX_LOGGED 128 /* settings named in the start-up line of one handle */

/* The settings applied to one conf, in order, for the start-up log line. */
typedef struct applied_s {
    const char *what;
    const char *names[MAX_LOGGED];
    size_t count;
} applied_t;

/* Sets one value on conf and remembers its name (once) for the log line. */
static int apply(rd_kafka_conf_t *conf, applied_t *ap, const char *name, const char *value,
                 bool user, char *errstr, size_t errstr_size)
{
    char err[256];
    size_t i;
    if (rd_kafka_conf_set(conf, name, value, err, sizeof err) != RD_KAFKA_CONF_OK) {
        snprintf(errstr, errstr_size, "kafka %s: setting %s=%s%s: %s", ap->what, name,
                 fl_kafka_is_secret(name) ? "(secret)" : value,
                 user ? " (from kafka.* or -X)" : "", err);
        return -1;
    }
    for (i = 0; i < ap->count; i++)
        if (strcmp(ap->names[i], name) == 0)
            return 0;
    if (ap->count < MAX_LOGGED)
        ap->names[ap->count++] = name;
    return 0;
}

int fl_kafka_get(rd_kafka_t *rk, const char *name, char *buf, size_t size)
{
    size_t len = size;
    if (size == 0 || rd_kafka_conf_get(rd_kafka_conf(rk), name, buf, &len) != RD_KAFKA_CONF_OK ||
        len > size)
        return -1;
    buf[size - 1] = '\0';
    return 0;
}

/* "kafka <what>: name=value ..." with the values in effect on rk. */
static void log_settings(rd_kafka_t *rk, const applied_t *ap)
{
    char line[4096], val[512];
    size_t len = 0;
    if (FL_LOG_INFO > fl_log_threshold)
        return;
    line[0] = '\0';
    for (size_t i = 0; i < ap->count && len < sizeof line; i++) {
        const char *shown = val;
        if (fl_kafka_is_secret(ap->names[i]))
            shown = "(secret)";
        else if (fl_kafka_get(rk, ap->names[i], val, sizeof val) != 0)
            shown = "?";
        int n = snprintf(line + len, sizeof line - len, " %s=%s", ap->names[i], shown);
        if (n < 0)
            break;
        len += (size_t)n;
    }
    fl_info("kafka %s:%s", ap->what, line);
}

rd_kafka_t *fl_kafka_new(const fl_kafka_spec_t *spec, char *errstr, size_t errstr_size)
{
    applied_t ap;
    rd_kafka_conf_t *conf;
    rd_kafka_t *rk;
    rd_kafka_resp_err_t err;
    char buf[512];

    ap.what = spec->what ? spec->what
              : spec->type == RD_KAFKA_PRODUCER ? "producer"
                                                : "consumer";
    ap.count = 0;
    if (!(conf = rd_kafka_conf_new())) {
        snprintf(errstr, errstr_size, "kafka %s: out of memory", ap.what);
        return NULL;
    }
    /* 1. what every handle gets */
    if (spec->bootstrap &&
        apply(conf, &ap, "bootstrap.servers", spec->bootstrap, false, errstr, errstr_size) != 0)
        goto fail;
    if (apply(conf, &ap, "reconnect.backoff.max.ms", "1000", false, errstr, errstr_size) != 0)
        goto fail;
    if (spec->type == RD_KAFKA_PRODUCER &&
        apply(conf, &ap, "partitioner", "murmur2_random", false, errstr, errstr_size) != 0)
        goto fail;
    /* 2. the component's defaults */
    for (const fl_kafka_kv_t *kv = spec->defaults; kv && kv->name; kv++)
        if (kv->value && apply(conf, &ap, kv->name, kv->value, false, errstr, errstr_size) != 0)
            goto fail;
    /* 3. the user's settings, last: they win */
    for (size_t i = 0; spec->props && i < spec->props->count; i++)
        if (apply(conf, &ap, spec->props->names[i], spec->props->values[i], true, errstr,
                  errstr_size) != 0)
            goto fail;
    rd_kafka_conf_set_log_cb(conf, spec->on_log ? spec->on_log : fl_log_on_rdkafka);
    if (spec->opaque)
        rd_kafka_conf_set_opaque(conf, spec->opaque);
    if (spec->on_delivery)
        rd_kafka_conf_set_dr_msg_cb(conf, spec->on_delivery);
    if (spec->on_error)
        rd_kafka_conf_set_error_cb(conf, spec->on_error);
    if (spec->on_rebalance)
        rd_kafka_conf_set_rebalance_cb(conf, spec->on_rebalance);

    /* rd_kafka_new takes conf on success only */
    if (!(rk = rd_kafka_new(spec->type, conf, buf, sizeof buf))) {
        snprintf(errstr, errstr_size, "kafka %s: %s", ap.what, buf);
        goto fail;
    }
    if (spec->type == RD_KAFKA_CONSUMER && (err = rd_kafka_poll_set_consumer(rk)) != 0) {
        snprintf(errstr, errstr_size, "kafka %s: %s (a consumer needs a group.id)", ap.what,
                 rd_kafka_err2str(err));
        rd_kafka_destroy(rk);
        return NULL;
    }
    log_settings(rk, &ap);
    return rk;
fail:
    rd_kafka_conf_destroy(conf);
    return NULL;
}

int fl_kafka_wait_ready(rd_kafka_t *rk, int timeout_ms, char *errstr, size_t errstr_size)
{
    const struct rd_kafka_metadata *md = NULL;
    rd_kafka_resp_err_t err = rd_kafka_metadata(rk, 0, NULL, &md, timeout_ms);
    if (err) {
        char bs[512];
        snprintf(errstr, errstr_size, "Kafka at %s did not answer within %d ms: %s",
                 fl_kafka_get(rk, "bootstrap.servers", bs, sizeof bs) == 0 ? bs : "?",
                 timeout_ms, rd_kafka_err2str(err));
        return -1;
    }
    rd_kafka_metadata_destroy(md);
    return 0;
}

/* The timeout_ms to give rd_kafka_seek_partitions for ms: librdkafka
 * before 2.1.0 (Debian 12 has 2.0.2) waits for the seeks' replies that
 * many *microseconds* (its issue #4230): 30 s became 30 ms, which a busy
 * machine's broker thread overran, and the seek as a partition resumes
 * failed ("Timed out waiting for 1 remaining partition seek(s)"). */
static int seek_timeout_ms(int ms)
{
    return rd_kafka_version() < 0x02010000 ? ms * 1000 : ms;
}

int fl_kafka_seek_committed(rd_kafka_t *consumer, const char *topic, int32_t p, int timeout_ms,
                            char *errstr, size_t errstr_size)
{
    rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(1);
    rd_kafka_resp_err_t err;
    rd_kafka_error_t *serr = NULL;
    int rc = -1;
    rd_kafka_topic_partition_list_add(l, topic, p);
    if ((err = rd_kafka_committed(consumer, l, timeout_ms)) || l->elems[0].err) {
        snprintf(errstr, errstr_size, "committed offset of %s [%d]: %s", topic, p,
                 rd_kafka_err2str(err ? err : l->elems[0].err));
        goto done;
    }
    if (l->elems[0].offset < 0)
        l->elems[0].offset = RD_KAFKA_OFFSET_BEGINNING;
    if ((serr = rd_kafka_seek_partitions(consumer, l, seek_timeout_ms(timeout_ms)))) {
        snprintf(errstr, errstr_size, "seek %s [%d]: %s", topic, p, rd_kafka_error_string(serr));
        rd_kafka_error_destroy(serr);
        goto done;
    }
    rc = 0;
done:
    rd_kafka_topic_partition_list_destroy(l);
    return rc;
}
