/* SPDX-License-Identifier: Apache-2.0 */
/*
 * pr_group: the processor's group consumer on <prefix>.commands
 * (cooperative-sticky, read_committed, no auto commit): building it,
 * subscribing, leaving the group once, and destroying it, or not: a group
 * consumer that never got an assignment is closed but kept, because
 * librdkafka 2.0.2 may abort the process destroying it (pr_group.c says
 * exactly when).
 *
 * @locality the processor's apply thread.
 */
#ifndef PR_GROUP_H
#define PR_GROUP_H

#include <stdbool.h>
#include <stddef.h>

#include <librdkafka/rdkafka.h>

#include "pr_processor.h"

typedef struct pr_group_s pr_group_t;

typedef void (*pr_on_rebalance_fn)(rd_kafka_t *rk, rd_kafka_resp_err_t err,
                                   rd_kafka_topic_partition_list_t *parts, void *opaque);

/* The consumer, from the processor's defaults with the user's kafka.*
 * settings last; on_rebalance gets opaque. NULL with errstr. */
pr_group_t *pr_group_new(const pr_config_t *cfg, pr_on_rebalance_fn on_rebalance, void *opaque,
                         char *errstr, size_t errstr_size);
rd_kafka_t *pr_group_rk(const pr_group_t *g);

/* Subscribes to topic. 0 or -1 (logged). */
int pr_group_subscribe(pr_group_t *g, const char *topic);
/* Called by the rebalance callback on every ASSIGN_PARTITIONS: from then on
 * the consumer can be destroyed safely. */
void pr_group_assigned(pr_group_t *g);
/* Leaves the group, once (its revoke runs the rebalance callback). */
void pr_group_close(pr_group_t *g);
/* Closes if not yet, then destroys the consumer, or keeps it (see above).
 * NULL safe. */
/* Closes the consumer after a fatal error and builds a new one with the
 * same settings, subscribed to topic: it joins the group afresh (the
 * loop's rebalance callback sees the new assignment). 0, or -1 with
 * errstr. */
int pr_group_renew(pr_group_t *g, const char *topic, char *errstr, size_t errstr_size);
void pr_group_free(pr_group_t *g);

#endif
