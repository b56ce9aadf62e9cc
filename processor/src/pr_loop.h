/* SPDX-License-Identifier: Apache-2.0 */
/*
 * pr_loop: the processor's run loop, a state machine along Kafka Streams
 * lines. The processor as a whole is RUNNING (consume, apply, produce,
 * commit) until asked to stop, then DRAINING (commit with a full snapshot
 * round, leave the group, flush); each partition it is assigned moves
 * ASSIGNED -> RESTORING -> RUNNING (pr_loop.c says why each state
 * exists). Restores happen in the loop, a bounded step at a time, never in
 * the rebalance callback, which only records assignments and revocations
 * and does the revoke-time commit.
 *
 * Recoveries. A lost assignment costs nothing more than a revoke (nothing
 * is sought on an empty list: a partition is sought only as it resumes).
 * A transaction that stays open through a broker outage longer than
 * transaction.timeout.ms is aborted by the broker, which bumps the
 * producer's epoch: when the broker is back the producer reports that as
 * being fenced (FL_TXN_EFENCED, a fatal error of the handle) although no
 * other instance exists. Such a timeout is told from a real fence (another
 * live instance with our transactional.id called init_transactions) by two
 * facts, both required (recoverable in pr_loop.c):
 *   - the failed transaction began transaction.timeout.ms ago or more and
 *     never ended cleanly (fl_txn_expired): only then can the broker have
 *     aborted it on its own; a fence that hits a younger transaction is a
 *     real one;
 *   - the group consumer has no fatal error of another instance: with
 *     static membership an instance started with our group.instance.id
 *     fences our consumer (FENCED_INSTANCE_ID), which makes a duplicate
 *     visible there too (our own rejoin, below, is not one).
 * Then the producer is rebuilt (pr_out_renew, the same transactional.id;
 * init_transactions again, retried while no coordinator answers) and every
 * running partition goes back to ASSIGNED, as after an abort: restored from
 * what Kafka committed, resumed from its committed offset. Should a real
 * fence ever meet an expired transaction, the rebuild fences the other
 * instance in turn, whose younger transaction then tells it that it is a
 * real fence: one of the two stops, never both writing. A fatal error of
 * the producer that is no fence (seen: "out of order sequence number"
 * right after an outage's abort) is rebuilt the same way. At most
 * REBUILDS_MAX rebuilds a minute (a permanent error would loop); beyond,
 * and for anything else fenced or fatal, the processor stops as before.
 *
 * Readiness (/readyz): 200 only when the group gave us an assignment and
 * every partition of it is RUNNING, no rebuild is in progress and Kafka
 * answers (kafka/probe.h: a metadata request every second on the restore
 * reader's handle, so a paused broker counts as well as a dead one).
 *
 * A static member that lost its assignment to a session timeout (the
 * broker was away longer than session.timeout.ms) rejoins with a new
 * member id under the same group.instance.id, and librdkafka 2.0.2 then
 * reports its own old member being replaced as a fatal FENCED_INSTANCE_ID
 * of the consumer. That is told from a real duplicate instance by the lost
 * assignment just before it (within session.timeout.ms): a duplicate
 * replaces a member that still holds its assignment. Then the group
 * consumer is rebuilt (pr_group_new, subscribe again) and the group
 * assigns the partitions again, which restore as usual.
 *
 * @locality everything runs on the thread that calls pr_loop_run, except
 * pr_loop_stop (any thread or a signal handler) and pr_loop_healthy (the
 * HTTP thread).
 */
#ifndef PR_LOOP_H
#define PR_LOOP_H

#include <stddef.h>

#include "pr_metrics.h"
#include "pr_processor.h"

typedef struct pr_loop_s pr_loop_t;

/* Builds the Kafka handles (the group consumer, the transactional
 * producer, the restore reader), checks the topics and initialises
 * transactions (fencing any earlier instance with the same
 * transactional.id). cfg and m are borrowed for the loop's life. NULL with
 * errstr. */
pr_loop_t *pr_loop_new(const pr_config_t *cfg, pr_metrics_t *m, char *errstr,
                       size_t errstr_size);
/* As pr_processor_run. */
int pr_loop_run(pr_loop_t *loop);
/* As pr_processor_stop: async-signal-safe. */
void pr_loop_stop(pr_loop_t *loop);
int pr_loop_healthy(pr_loop_t *loop);
/* As pr_processor_free. NULL safe. */
void pr_loop_free(pr_loop_t *loop);

#endif
