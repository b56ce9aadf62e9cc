/* SPDX-License-Identifier: Apache-2.0 */
/* kafka: see kafka.h. */
#include "flushline/kafka.h"

#include <stdio.h>
#include <string.h>

#include "flushline/log.h"

int fl_kafka_props_add(fl_kafka_props_t *props, const char *name, const char *value)
{
    if (props->count >= sizeof props->names / sizeof props->names[0])
        return -1;
    props->names[props->count] = name;
    props->values[props->count] = value;
    props->count++;
    return 0;
}

int fl_kafka_conf_set(rd_kafka_conf_t *conf, const char *name, const char *value, char *errstr,
                      size_t errstr_size)
{
    char err[256];
    if (rd_kafka_conf_set(conf, name, value, err, sizeof err) != RD_KAFKA_CONF_OK) {
        snprintf(errstr, errstr_size, "kafka setting %s=%s: %s", name, value, err);
        return -1;
    }
    return 0;
}

rd_kafka_conf_t *fl_kafka_conf_new(const char *bootstrap, const fl_kafka_props_t *props,
                                   char *errstr, size_t errstr_size)
{
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    if (fl_kafka_conf_set(conf, "bootstrap.servers", bootstrap, errstr, errstr_size) != 0)
        goto fail;
    rd_kafka_conf_set_log_cb(conf, fl_log_on_rdkafka);
    /* Fail fast on a wrong bootstrap instead of retrying silently forever. */
    if (fl_kafka_conf_set(conf, "reconnect.backoff.max.ms", "1000", errstr, errstr_size) != 0)
        goto fail;
    for (size_t i = 0; props && i < props->count; i++)
        if (fl_kafka_conf_set(conf, props->names[i], props->values[i], errstr, errstr_size) != 0)
            goto fail;
    return conf;
fail:
    rd_kafka_conf_destroy(conf);
    return NULL;
}

rd_kafka_t *fl_kafka_new(rd_kafka_type_t type, rd_kafka_conf_t *conf, char *errstr,
                         size_t errstr_size)
{
    char buf[64];
    size_t len = sizeof buf;
    rd_kafka_t *rk;
    if (type == RD_KAFKA_PRODUCER &&
        (rd_kafka_conf_get(conf, "partitioner", buf, &len) != RD_KAFKA_CONF_OK ||
         strcmp(buf, "consistent_random") == 0)) {
        /* consistent_random is librdkafka's default: replace it with the
         * Java-compatible murmur2_random unless the user chose another. */
        if (fl_kafka_conf_set(conf, "partitioner", "murmur2_random", errstr, errstr_size) != 0) {
            rd_kafka_conf_destroy(conf);
            return NULL;
        }
    }
    rk = rd_kafka_new(type, conf, errstr, errstr_size);
    if (!rk)
        rd_kafka_conf_destroy(conf);
    return rk;
}

int fl_kafka_wait_ready(rd_kafka_t *rk, int timeout_ms, char *errstr, size_t errstr_size)
{
    const struct rd_kafka_metadata *md = NULL;
    rd_kafka_resp_err_t err = rd_kafka_metadata(rk, 0, NULL, &md, timeout_ms);
    if (err) {
        char bs[512];
        size_t len = sizeof bs;
        rd_kafka_conf_res_t r = rd_kafka_conf_get(rd_kafka_conf(rk), "bootstrap.servers", bs, &len);
        snprintf(errstr, errstr_size, "Kafka at %s did not answer within %d ms: %s",
                 r == RD_KAFKA_CONF_OK ? bs : "?", timeout_ms, rd_kafka_err2str(err));
        return -1;
    }
    rd_kafka_metadata_destroy(md);
    return 0;
}
