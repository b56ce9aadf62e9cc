/* SPDX-License-Identifier: Apache-2.0 */
/*
 * txn: Kafka transactions on a transactional producer, with one
 * classification of their errors for every caller (the processor,
 * `flushline reprocess`):
 *
 *   retriable  the call is retried here (a bounded number of times);
 *   abortable  the transaction is aborted here and FL_TXN_EABORTED comes
 *              back: the caller drops what it built on the transaction
 *              (the processor restores its partitions and rewinds);
 *   fenced     another instance with the same transactional.id took over,
 *              or the broker says so (FL_TXN_EFENCED): stop writing;
 *   fatal      anything else (FL_TXN_EFATAL): stop writing.
 *
 * FL_TXN_EFENCED and FL_TXN_EFATAL are separate so that a caller may
 * recover from a fenced-looking error without another instance (a
 * transaction that timed out during an outage: fl_txn_expired) by making a
 * new producer and initialising it again (the processor does).
 *
 * @locality the thread that owns the producer.
 */
#ifndef FLUSHLINE_TXN_H
#define FLUSHLINE_TXN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <librdkafka/rdkafka.h>

#include "flushline/kafka_props.h"

enum {
    FL_TXN_EABORTED = -401, /* the transaction was aborted: redo its work */
    FL_TXN_EFENCED = -402,  /* fenced: write nothing more with this producer */
    FL_TXN_EFATAL = -403,   /* fatal: write nothing more with this producer */
};
const char *fl_txn_strerror(int err);

/* What an error from a transactional call means (one of the codes above,
 * or 1: retry the call). */
int fl_txn_classify(const rd_kafka_error_t *err);

/* What a transactional producer is built from (fl_txn_producer_new);
 * borrowed for the call. */
typedef struct fl_txn_producer_spec_s {
    const char *what;              /* names the handle in logs, e.g. "processor producer" */
    const char *bootstrap;
    const char *transactional_id;
    int64_t transaction_timeout_ms; /* 0: librdkafka's default */
    int linger_ms;
    const fl_kafka_props_t *props;  /* the user's settings, applied last */
    void *opaque;
    void (*on_delivery)(rd_kafka_t *rk, const rd_kafka_message_t *msg, void *opaque);
} fl_txn_producer_spec_t;

/* A transactional producer with Flushline's settings (idempotent, lz4,
 * records up to 8 MiB) and the user's last (fl_kafka_new). NULL with
 * errstr. */
rd_kafka_t *fl_txn_producer_new(const fl_txn_producer_spec_t *spec, char *errstr,
                                size_t errstr_size);

typedef struct fl_txn_s fl_txn_t;

/* Transactions on producer (borrowed; it outlives the fl_txn_t).
 * timeout_ms bounds each call (-1: librdkafka's own, the transaction
 * timeout). NULL on OOM. */
fl_txn_t *fl_txn_new(rd_kafka_t *producer, int timeout_ms);
void fl_txn_free(fl_txn_t *txn); /* NULL safe */

/* init_transactions: fences earlier instances with the same
 * transactional.id and aborts what they left open. A coordinator that is
 * not there yet (NOT_COORDINATOR, COORDINATOR_NOT_AVAILABLE or _LOAD_IN_
 * PROGRESS from a broker that has just started, a timeout) is asked again
 * with a backoff (100 ms doubling to 1 s) until timeout_ms in all, with
 * one warning when it starts and one info line when it ends. 0 or an error
 * with errstr (the last attempt's). */
int fl_txn_init(fl_txn_t *txn, int timeout_ms, char *errstr, size_t errstr_size);

/* Whether the last transaction began transaction_timeout_ms ago or more and
 * neither committed nor aborted cleanly: the broker has aborted it on its
 * own (and bumped the producer's epoch, which the producer then reports as
 * being fenced). See pr_loop.c for how the processor uses it to tell such
 * a timeout from a real fence. */
bool fl_txn_expired(const fl_txn_t *txn, int64_t transaction_timeout_ms);

/* Whether a transaction is open, and since when (fl_clock_mono_ms). */
bool fl_txn_is_open(const fl_txn_t *txn);
int64_t fl_txn_started_ms(const fl_txn_t *txn);

/* Begins a transaction unless one is open. 0 or FL_TXN_EFATAL/_EFENCED
 * (errstr says why). */
int fl_txn_begin(fl_txn_t *txn, char *errstr, size_t errstr_size);
/* Sends consumed offsets (positions to resume from) for the group cgmd
 * into the open transaction. 0, FL_TXN_EABORTED, _EFENCED or _EFATAL. */
int fl_txn_send_offsets(fl_txn_t *txn, const rd_kafka_topic_partition_list_t *offsets,
                        const rd_kafka_consumer_group_metadata_t *cgmd, char *errstr,
                        size_t errstr_size);
/* Commits the open transaction (0 at once when none is open). 0,
 * FL_TXN_EABORTED, _EFENCED or _EFATAL. */
int fl_txn_commit(fl_txn_t *txn, char *errstr, size_t errstr_size);
/* Aborts the open transaction (0 at once when none is open); the
 * transaction is closed whatever the result. 0, _EFENCED or _EFATAL. */
int fl_txn_abort(fl_txn_t *txn, char *errstr, size_t errstr_size);

#endif
