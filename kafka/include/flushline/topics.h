/* SPDX-License-Identifier: Apache-2.0 */
/*
 * topics: the four Kafka topics of a Flushline deployment, how they are
 * created and how a running component checks them.
 *
 *   <prefix>.commands   keyed by document; flushes and syncs from gateways
 *   <prefix>.events     keyed by document; outcomes and sync replies (history)
 *   <prefix>.snapshots  keyed by document; compacted
 *   <prefix>.signals    keyed by document; ephemeral, short retention
 *
 * All four share one partition count, fixed at creation. @locality caller's
 * thread; the calls block on the Admin API up to the given timeout.
 */
#ifndef FLUSHLINE_TOPICS_H
#define FLUSHLINE_TOPICS_H

#include <stddef.h>
#include <stdint.h>

#include <librdkafka/rdkafka.h>

#define FL_TOPICS_DEFAULT_PREFIX "flushline"
#define FL_TOPICS_DEFAULT_PARTITIONS 12
#define FL_TOPIC_NAME_MAX 249

typedef enum fl_topic_kind_e {
    FL_TOPIC_COMMANDS = 0,
    FL_TOPIC_EVENTS,
    FL_TOPIC_SNAPSHOTS,
    FL_TOPIC_SIGNALS,
    FL_TOPIC__COUNT
} fl_topic_kind_t;

typedef struct fl_topics_spec_s {
    const char *prefix;     /* default "flushline" */
    int partitions;         /* default 12 */
    int replication_factor; /* default 1 */
    int timeout_ms;         /* Admin API timeout, default 15000 */
} fl_topics_spec_t;

void fl_topics_spec_default(fl_topics_spec_t *spec);

/*
 * The header the processor puts on every events record it produces (not part
 * of the record's bytes, nor of any chain hash): the record's document's
 * version as of the processor's last committed transaction, in decimal. A
 * re-run after an abort starts from the committed state, so it never
 * reproduces a version at or below this one: readers of uncommitted events
 * (speculative gateways) need to remember what they delivered only above it.
 */
#define FL_EVENTS_HDR_COMMITTED "fl-committed"

/* The FL_EVENTS_HDR_COMMITTED value of version into buf (>= 24 bytes); its
 * length. */
size_t fl_events_committed_format(uint64_t version, char *buf, size_t size);
/* The FL_EVENTS_HDR_COMMITTED header of msg into *version: 0, or -1 when it
 * is absent or malformed (*version untouched). */
int fl_events_committed_get(const rd_kafka_message_t *msg, uint64_t *version);

/* "commands", "events", ... */
const char *fl_topic_kind_name(fl_topic_kind_t kind);
/* Writes "<prefix>.<kind>" into buf; 0, or -1 when it does not fit or the
 * prefix holds characters Kafka refuses in topic names. */
int fl_topic_name(const char *prefix, fl_topic_kind_t kind, char *buf, size_t size);

/* What was found for one topic. */
typedef struct fl_topic_state_s {
    char name[FL_TOPIC_NAME_MAX + 1];
    int exists;
    int partitions;          /* -1 when it does not exist */
    char cleanup_policy[32]; /* "" when unknown */
    char problem[256];       /* "" when it matches the spec */
} fl_topic_state_t;

/*
 * Creates the topics that are missing, with their settings, and leaves
 * existing ones alone (then checks them like fl_topics_check). rk is any
 * client handle (producer is fine). Returns 0 when all four exist and
 * match, -1 with errstr otherwise.
 */
int fl_topics_create(rd_kafka_t *rk, const fl_topics_spec_t *spec, fl_topic_state_t out[FL_TOPIC__COUNT],
                     char *errstr, size_t errstr_size);

/*
 * Describes the four topics and compares them with the spec: present, the
 * spec's partition count (all equal), snapshots compacted. Returns 0 when all
 * match; -1 when any does not (errstr names the first topic and why; out[]
 * has every topic's state); -2 when the cluster could not be asked.
 */
int fl_topics_check(rd_kafka_t *rk, const fl_topics_spec_t *spec, fl_topic_state_t out[FL_TOPIC__COUNT],
                    char *errstr, size_t errstr_size);

#endif
