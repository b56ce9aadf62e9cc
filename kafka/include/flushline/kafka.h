/* SPDX-License-Identifier: Apache-2.0 */
/*
 * kafka: every librdkafka client handle of Flushline (daemons, CLI, tests,
 * benchmarks) is built by fl_kafka_new, in one place and in one order, so
 * that the user's settings win everywhere:
 *
 *   1. bootstrap.servers, the log bridge (log.h) and the settings every
 *      handle gets: reconnect.backoff.max.ms=1000 (a wrong bootstrap fails
 *      fast), and on producers partitioner=murmur2_random (Java-compatible
 *      keyed placement, the partition every component computes for a doc);
 *   2. the component's own defaults (spec->defaults), in table order;
 *   3. the user's "kafka.*" / "-X" settings (spec->props), in order, last:
 *      a user setting overrides any value of steps 1 and 2.
 *
 * A librdkafka conf never leaves this module: callers pass a spec (plain
 * values, borrowed for the call only) and get a handle or NULL with errstr,
 * so there is no conf ownership to get wrong on any path.
 */
#ifndef FLUSHLINE_KAFKA_H
#define FLUSHLINE_KAFKA_H

#include <stdbool.h>
#include <stddef.h>

#include <librdkafka/rdkafka.h>

#include "flushline/kafka_props.h"

/* One entry of a component's defaults table. A table ends with a NULL name;
 * an entry whose value is NULL is skipped (a setting only some
 * configurations have, e.g. group.instance.id). */
typedef struct fl_kafka_kv_s {
    const char *name;
    const char *value;
} fl_kafka_kv_t;

/* What a handle is built from. Every pointer is borrowed for the duration
 * of fl_kafka_new only (librdkafka copies the strings); zero-initialise and
 * fill what applies. */
typedef struct fl_kafka_spec_s {
    rd_kafka_type_t type;
    const char *what;               /* names the handle in logs and errors,
                                     * e.g. "gateway consumer"; NULL: "producer"/"consumer" */
    const char *bootstrap;          /* bootstrap.servers; NULL: leave to props */
    const fl_kafka_kv_t *defaults;  /* the component's settings (step 2); NULL: none */
    const fl_kafka_props_t *props;  /* the user's settings (step 3, last); NULL: none */
    void *opaque;                   /* passed to every callback below */
    /* Optional callbacks (NULL: not set). */
    void (*on_delivery)(rd_kafka_t *rk, const rd_kafka_message_t *msg, void *opaque);
    void (*on_error)(rd_kafka_t *rk, int err, const char *reason, void *opaque);
    void (*on_rebalance)(rd_kafka_t *rk, rd_kafka_resp_err_t err,
                         rd_kafka_topic_partition_list_t *parts, void *opaque);
    /* librdkafka's log lines (any thread); NULL: through log.h */
    void (*on_log)(const rd_kafka_t *rk, int level, const char *fac, const char *buf);
} fl_kafka_spec_t;

/*
 * A new client handle built from spec as described above. A consumer's
 * main queue is redirected to its consumer queue (rd_kafka_poll_set_consumer),
 * so rd_kafka_consumer_poll serves its callbacks. On success one info line
 * "kafka <what>: name=value ..." lists every setting of steps 1-3 with the
 * value read back from the new handle (secrets masked).
 *
 * NULL with errstr ("kafka <what>: ...") when librdkafka rejects a setting
 * (naming it; the value of a secret is masked) or refuses to create the
 * handle (e.g. a TLS file that cannot be read). Nothing is left allocated
 * on failure. The caller owns the handle (rd_kafka_destroy, after
 * rd_kafka_consumer_close for consumers).
 *
 * @locality any thread.
 */
rd_kafka_t *fl_kafka_new(const fl_kafka_spec_t *spec, char *errstr, size_t errstr_size);

/* The value of setting name in effect on a live handle, into buf
 * (NUL-terminated). 0, or -1 when unknown or buf is too small. */
int fl_kafka_get(rd_kafka_t *rk, const char *name, char *buf, size_t size);

/* Waits until the cluster answers a metadata request or the timeout ends.
 * 0, or -1 with errstr naming the bootstrap and librdkafka's error. */
int fl_kafka_wait_ready(rd_kafka_t *rk, int timeout_ms, char *errstr, size_t errstr_size);

/* Seeks consumer's partition p of topic to its group's committed offset
 * (the beginning when none), waiting up to timeout_ms for each step. 0, or
 * -1 with errstr. */
int fl_kafka_seek_committed(rd_kafka_t *consumer, const char *topic, int32_t p, int timeout_ms,
                            char *errstr, size_t errstr_size);

#endif
