/* SPDX-License-Identifier: Apache-2.0 */
/*
 * kafka: building librdkafka client handles the same way everywhere:
 * bootstrap servers, the murmur2_random partitioner on every producer (Java
 * compatible keyed placement), logs through log.h, and "kafka.*" settings
 * passed through unchanged to librdkafka.
 */
#ifndef FLUSHLINE_KAFKA_H
#define FLUSHLINE_KAFKA_H

#include <stddef.h>

#include <librdkafka/rdkafka.h>

/* A list of librdkafka "name=value" settings (without the "kafka." prefix). */
typedef struct fl_kafka_props_s {
    size_t count;
    const char *names[64];
    const char *values[64];
} fl_kafka_props_t;

/* Adds one setting; -1 when the list is full. Strings are kept by reference. */
int fl_kafka_props_add(fl_kafka_props_t *props, const char *name, const char *value);

/*
 * A new librdkafka conf with bootstrap.servers, the log bridge and the
 * passed-through props applied (props win over the defaults set here).
 * NULL with errstr on a rejected setting.
 */
rd_kafka_conf_t *fl_kafka_conf_new(const char *bootstrap, const fl_kafka_props_t *props,
                                   char *errstr, size_t errstr_size);
/* Sets one conf value; -1 with errstr when librdkafka refuses it. */
int fl_kafka_conf_set(rd_kafka_conf_t *conf, const char *name, const char *value, char *errstr,
                      size_t errstr_size);

/* A client handle of the given type from conf (consumed on success). For
 * producers partitioner=murmur2_random is set unless props chose one. */
rd_kafka_t *fl_kafka_new(rd_kafka_type_t type, rd_kafka_conf_t *conf, char *errstr,
                         size_t errstr_size);

/* Waits until the cluster answers a metadata request or the timeout ends.
 * 0, or -1 with errstr naming the bootstrap and librdkafka's error. */
int fl_kafka_wait_ready(rd_kafka_t *rk, int timeout_ms, char *errstr, size_t errstr_size);

#endif
