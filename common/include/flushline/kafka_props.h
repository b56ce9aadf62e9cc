/* SPDX-License-Identifier: Apache-2.0 */
/*
 * kafka_props: librdkafka settings as plain data, the user's "kafka.*" /
 * "-X name=value" pass-through. The config loader collects and checks them
 * (config.h); the handle builder of the Kafka layer applies them last
 * (flushline/kafka.h). No librdkafka handle here.
 *
 * @locality any thread (plain values).
 */
#ifndef FLUSHLINE_KAFKA_PROPS_H
#define FLUSHLINE_KAFKA_PROPS_H

#include <stdbool.h>
#include <stddef.h>

/* A list of librdkafka "name=value" settings (without the "kafka." prefix). */
typedef struct fl_kafka_props_s {
    size_t count;
    const char *names[64];
    const char *values[64];
} fl_kafka_props_t;

/* Adds one setting; -1 when the list is full. Strings are kept by reference. */
int fl_kafka_props_add(fl_kafka_props_t *props, const char *name, const char *value);

/* True when a setting's value must never be printed (passwords, secrets,
 * inline PEM keys, OAUTHBEARER configs). */
bool fl_kafka_is_secret(const char *name);

#endif
