/* SPDX-License-Identifier: Apache-2.0 */
/*
 * pr_group: the processor's group consumer. See pr_group.h; why a consumer
 * is sometimes kept rather than destroyed is below.
 */
#include "pr_group.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>

#include "flushline/kafka.h"
#include "flushline/log.h"

/*
 * librdkafka 2.0.2 aborts the process (rdkafka_sticky_assignor.c:1896:
 * "Assertion `assignor_state' failed") when it destroys a cooperative-sticky
 * group consumer in one state. rd_kafka_cgrp_destroy_final() calls the
 * assignor's destroy_state_cb whenever rkcg_assignor is set, and
 * rd_kafka_sticky_assignor_state_destroy() asserts that the state is not
 * NULL. The two are set at different moments:
 * - rkcg_assignor when a JoinGroup response is handled (the group's protocol
 *   is chosen), before any assignment;
 * - the assignor state only by the assignor's on_assignment_cb, when a
 *   SyncGroup response is handled (any assignment, even an empty one). It is
 *   never cleared afterwards (only if the group's protocol changed, which one
 *   configured strategy rules out).
 * Once a close has begun (RD_KAFKA_CGRP_F_TERMINATE, set by
 * rd_kafka_consumer_close or by rd_kafka_destroy's own close), JoinGroup
 * responses are ignored and SyncGroup responses are discarded, so neither
 * changes any more. The destroy therefore aborts exactly when, in this
 * handle's life, a JoinGroup was answered and no SyncGroup was before the
 * close began:
 * - the member joined and waits for its first assignment: the leader has
 *   not synced yet (it is computing, slow or paused, or has just died and
 *   the group waits for its session to expire);
 * - its first SyncGroup failed (REBALANCE_IN_PROGRESS because another member
 *   joined or left meanwhile, ILLEGAL_GENERATION, UNKNOWN_MEMBER_ID after a
 *   session timeout) and it is rejoining, still without state;
 * whatever happens after the close began: the SyncGroup response that
 * arrives during the close is dropped. It never aborts when no JoinGroup
 * was answered before the close (rkcg_assignor stays NULL), nor in any state
 * after the first assignment was handled: a rebalance in progress, an
 * assignment not yet acknowledged by the application, partitions just
 * revoked, a lost assignment all keep the state. Acknowledging (or not) an
 * assignment changes nothing: the state is set before the rebalance
 * callback runs. librdkafka 2.3.0 fixes it (#4312, #4381: a NULL state is
 * not destroyed).
 *
 * What the application can see: the first ASSIGN_PARTITIONS callback (any
 * list, even empty) proves the state exists, and then the consumer is
 * destroyed. Without one, whether a JoinGroup was answered cannot be told
 * from the public API (rd_kafka_rebalance_protocol() answers it only
 * until the close, and a response may land in between). Then the consumer
 * is still closed, which leaves the group, but rd_kafka_destroy() is not
 * called: the handle is kept in the list below, where it stays reachable
 * (LeakSanitizer reports only unreachable memory, so this is not a leak
 * report and nothing else is suppressed), and its idle threads end with the
 * process, which exits right after the drain. Everything else (producer,
 * restore reader, documents) is destroyed as usual. It costs a few idle
 * threads and some memory once per process, only for a processor stopped
 * before its first assignment. */


typedef struct kept_s {
    rd_kafka_t *rk;
    struct kept_s *next;
} kept_t;

static kept_t *kept; /* consumers closed but deliberately not destroyed */
static pthread_mutex_t kept_lock = PTHREAD_MUTEX_INITIALIZER;

struct pr_group_s {
    rd_kafka_t *rk;
    const pr_config_t *cfg; /* what pr_group_renew builds from */
    pr_on_rebalance_fn on_rebalance;
    void *opaque;
    bool subscribed;    /* joined or may be joining the group */
    bool assigned_once; /* an ASSIGN_PARTITIONS callback came */
    bool closed;        /* rd_kafka_consumer_close was called */
};

static void keep_consumer(rd_kafka_t *rk)
{
    kept_t *k = malloc(sizeof *k);
    fl_info("group consumer closed but not destroyed: it never got an assignment, and "
            "librdkafka 2.0.2 may abort destroying it then");
    if (!k)
        return; /* out of memory: still not destroyed */
    k->rk = rk;
    pthread_mutex_lock(&kept_lock);
    k->next = kept;
    kept = k;
    pthread_mutex_unlock(&kept_lock);
}

pr_group_t *pr_group_new(const pr_config_t *cfg, pr_on_rebalance_fn on_rebalance, void *opaque,
                         char *errstr, size_t errstr_size)
{
    pr_group_t *g = calloc(1, sizeof *g);
    char stmo[32];
    if (!g) {
        snprintf(errstr, errstr_size, "out of memory");
        return NULL;
    }
    g->cfg = cfg;
    g->on_rebalance = on_rebalance;
    g->opaque = opaque;
    snprintf(stmo, sizeof stmo, "%lld", (long long)cfg->session_timeout_ms);
    const fl_kafka_kv_t defaults[] = {
        {"group.id", cfg->group_id},
        {"partition.assignment.strategy", "cooperative-sticky"},
        {"isolation.level", "read_committed"},
        {"enable.auto.commit", "false"},
        {"enable.auto.offset.store", "false"},
        {"auto.offset.reset", "earliest"},
        {"session.timeout.ms", stmo},
        {"group.instance.id",
         cfg->group_instance_id && *cfg->group_instance_id ? cfg->group_instance_id : NULL},
        {"heartbeat.interval.ms", "1000"},
        {NULL, NULL},
    };
    fl_kafka_spec_t ks = {.type = RD_KAFKA_CONSUMER,
                          .what = "processor consumer",
                          .bootstrap = cfg->bootstrap,
                          .defaults = defaults,
                          .props = &cfg->kafka,
                          .opaque = opaque,
                          .on_rebalance = on_rebalance};
    if (!(g->rk = fl_kafka_new(&ks, errstr, errstr_size))) {
        free(g);
        return NULL;
    }
    return g;
}

rd_kafka_t *pr_group_rk(const pr_group_t *g)
{
    return g->rk;
}

int pr_group_subscribe(pr_group_t *g, const char *topic)
{
    rd_kafka_topic_partition_list_t *sub = rd_kafka_topic_partition_list_new(1);
    rd_kafka_resp_err_t err;
    rd_kafka_topic_partition_list_add(sub, topic, RD_KAFKA_PARTITION_UA);
    err = rd_kafka_subscribe(g->rk, sub);
    rd_kafka_topic_partition_list_destroy(sub);
    if (err) {
        fl_error("subscribe to %s: %s", topic, rd_kafka_err2str(err));
        return -1;
    }
    g->subscribed = true;
    return 0;
}

void pr_group_assigned(pr_group_t *g)
{
    g->assigned_once = true;
}

void pr_group_close(pr_group_t *g)
{
    rd_kafka_resp_err_t err;
    if (!g || g->closed)
        return;
    g->closed = true;
    if ((err = rd_kafka_consumer_close(g->rk)))
        fl_warn("closing the group consumer: %s", rd_kafka_err2str(err));
}

int pr_group_renew(pr_group_t *g, const char *topic, char *errstr, size_t errstr_size)
{
    pr_group_t *n = pr_group_new(g->cfg, g->on_rebalance, g->opaque, errstr, errstr_size);
    if (!n)
        return -1;
    pr_group_close(g);
    if (g->assigned_once)
        rd_kafka_destroy(g->rk);
    else
        keep_consumer(g->rk);
    *g = *n;
    free(n);
    if (pr_group_subscribe(g, topic) != 0) {
        snprintf(errstr, errstr_size, "subscribe to %s failed", topic);
        return -1;
    }
    fl_info("group consumer rebuilt; rejoining the group");
    return 0;
}

void pr_group_free(pr_group_t *g)
{
    if (!g)
        return;
    pr_group_close(g);
    if (!g->subscribed || g->assigned_once)
        rd_kafka_destroy(g->rk);
    else
        keep_consumer(g->rk);
    free(g);
}
