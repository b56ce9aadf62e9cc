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
