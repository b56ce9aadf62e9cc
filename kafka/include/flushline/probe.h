/* SPDX-License-Identifier: Apache-2.0 */
/*
 * probe: whether Kafka answers, for /readyz. A thread of its own asks the
 * cluster for the metadata of one topic every interval (a real request, so
 * a paused broker whose connections stay open is seen as well as a dead
 * one) and calls Kafka up when every partition of the topic has a leader.
 * Down after two failed probes in a row (one slow answer on a busy machine
 * is no outage), up again at the first good one. Each change is logged
 * once: "kafka: unreachable for <what> (...)" and "kafka: back for <what>
 * after N ms".
 *
 * @locality fl_kprobe_ok from any thread; start and stop from one.
 */
#ifndef FLUSHLINE_PROBE_H
#define FLUSHLINE_PROBE_H

#include <stdbool.h>

#include <librdkafka/rdkafka.h>

typedef struct fl_kprobe_s fl_kprobe_t;

/* Probes topic through rk (borrowed: it must outlive the probe) every
 * interval_ms, each probe bounded by timeout_ms. what names the daemon in
 * the log lines. Starts up (the caller has just checked Kafka). NULL on
 * OOM or when the thread cannot start. */
fl_kprobe_t *fl_kprobe_start(rd_kafka_t *rk, const char *topic, const char *what,
                             int interval_ms, int timeout_ms);
/* Whether the last probes found Kafka answering. */
bool fl_kprobe_ok(const fl_kprobe_t *p);
/* Stops the thread (at most one probe's timeout) and frees. NULL safe. */
void fl_kprobe_stop(fl_kprobe_t *p);

#endif
