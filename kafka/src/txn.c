/* SPDX-License-Identifier: Apache-2.0 */
/*
 * txn: begin / send offsets / commit / abort with one error
 * classification. See txn.h for the contract; comments here say why.
 */
#include "flushline/txn.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "flushline/clock.h"
#include "flushline/errors.h"
#include "flushline/kafka.h"
#include "flushline/log.h"

/* A retriable error is retried this many times before it counts as fatal:
 * with librdkafka's own timeout on each call, retriable errors are rare
 * and a long run of them means the cluster is gone. */
#define TXN_RETRIES 10

/* fl_txn_init's pause between attempts: doubles from the first to the
 * last. */
#define INIT_BACKOFF_MIN_MS 100
#define INIT_BACKOFF_MAX_MS 1000

struct fl_txn_s {
    rd_kafka_t *producer;
    int timeout_ms;
    bool open;
    bool ended;         /* the last transaction committed or aborted cleanly */
    int64_t started_ms; /* the last begin */
};

const char *fl_txn_strerror(int err)
{
    /* by -(err + 400); 0 is success */
    static const char *const text[] = {"success", "transaction aborted", "fenced",
                                       "fatal transaction error"};
    return FL_NAME_AT(text, err == 0 ? 0 : -(err + 400L), "unknown transaction error");
}

int fl_txn_classify(const rd_kafka_error_t *err)
{
    rd_kafka_resp_err_t code = rd_kafka_error_code(err);
    if (rd_kafka_error_is_fatal(err))
        return code == RD_KAFKA_RESP_ERR__FENCED || code == RD_KAFKA_RESP_ERR_PRODUCER_FENCED ||
                       code == RD_KAFKA_RESP_ERR_INVALID_PRODUCER_EPOCH
                   ? FL_TXN_EFENCED
                   : FL_TXN_EFATAL;
    if (rd_kafka_error_txn_requires_abort(err))
        return FL_TXN_EABORTED;
    if (rd_kafka_error_is_retriable(err))
        return 1;
    return FL_TXN_EFATAL;
}

rd_kafka_t *fl_txn_producer_new(const fl_txn_producer_spec_t *spec, char *errstr,
                                size_t errstr_size)
{
    char tmo[32], msgtmo[32], linger[32];
    /* A message not acknowledged within 10 s (or the transaction timeout,
     * when shorter) fails its transaction, which is aborted and re-run. Left
     * at librdkafka's default (the transaction timeout), a produce request
     * lost to a broker outage held the abort after it for up to that long:
     * 47 s after a 13 s pause with a 60 s transaction timeout. */
    int64_t msg_ms = spec->transaction_timeout_ms > 0 && spec->transaction_timeout_ms < 10000
                         ? spec->transaction_timeout_ms
                         : 10000;
    snprintf(tmo, sizeof tmo, "%lld", (long long)spec->transaction_timeout_ms);
    snprintf(msgtmo, sizeof msgtmo, "%lld", (long long)msg_ms);
    snprintf(linger, sizeof linger, "%d", spec->linger_ms);
    const fl_kafka_kv_t defaults[] = {
        {"transactional.id", spec->transactional_id},
        {"enable.idempotence", "true"},
        {"transaction.timeout.ms", spec->transaction_timeout_ms > 0 ? tmo : NULL},
        {"message.timeout.ms", msgtmo},
        {"linger.ms", linger},
        {"message.max.bytes", "8388608"},
        {"compression.codec", "lz4"},
        {NULL, NULL},
    };
    fl_kafka_spec_t ks = {.type = RD_KAFKA_PRODUCER,
                          .what = spec->what,
                          .bootstrap = spec->bootstrap,
                          .defaults = defaults,
                          .props = spec->props,
                          .opaque = spec->opaque,
                          .on_delivery = spec->on_delivery};
    return fl_kafka_new(&ks, errstr, errstr_size);
}

fl_txn_t *fl_txn_new(rd_kafka_t *producer, int timeout_ms)
{
    fl_txn_t *txn = calloc(1, sizeof *txn);
    if (!txn)
        return NULL;
    txn->producer = producer;
    txn->timeout_ms = timeout_ms;
    return txn;
}

void fl_txn_free(fl_txn_t *txn)
{
    free(txn);
}

/* Takes err (destroys it): its class, with what failed in errstr. */
static int take(const char *what, rd_kafka_error_t *err, char *errstr, size_t errstr_size)
{
    int rc = fl_txn_classify(err);
    snprintf(errstr, errstr_size, "%s: %s", what, rd_kafka_error_string(err));
    rd_kafka_error_destroy(err);
    return rc;
}

/* Whether init_transactions may be called again after err: a coordinator
 * that is not there yet (a broker just started, or moving) or a timeout.
 * librdkafka resumes the initialisation where it stopped. */
static bool init_retriable(const rd_kafka_error_t *err)
{
    switch (rd_kafka_error_code(err)) {
    case RD_KAFKA_RESP_ERR_NOT_COORDINATOR:
    case RD_KAFKA_RESP_ERR_COORDINATOR_NOT_AVAILABLE:
    case RD_KAFKA_RESP_ERR_COORDINATOR_LOAD_IN_PROGRESS:
    case RD_KAFKA_RESP_ERR_CONCURRENT_TRANSACTIONS:
    case RD_KAFKA_RESP_ERR__TIMED_OUT:
    case RD_KAFKA_RESP_ERR__TRANSPORT:
        return !rd_kafka_error_is_fatal(err);
    default:
        return rd_kafka_error_is_retriable(err) && !rd_kafka_error_is_fatal(err);
    }
}

int fl_txn_init(fl_txn_t *txn, int timeout_ms, char *errstr, size_t errstr_size)
{
    int64_t deadline = fl_clock_mono_ms() + timeout_ms;
    int backoff = INIT_BACKOFF_MIN_MS;
    for (int tries = 0;; tries++) {
        int64_t left = deadline - fl_clock_mono_ms();
        rd_kafka_error_t *err =
            rd_kafka_init_transactions(txn->producer, left > 0 ? (int)left : 1);
        if (!err) {
            if (tries > 0)
                fl_info("transaction coordinator found: producer initialised");
            return 0;
        }
        bool again = init_retriable(err);
        int rc = take("init_transactions", err, errstr, errstr_size);
        left = deadline - fl_clock_mono_ms();
        if (!again || left <= backoff)
            return rc == FL_TXN_EFENCED ? rc : FL_TXN_EFATAL;
        if (tries == 0)
            fl_warn("%s: no transaction coordinator yet; retrying for %lld ms", errstr,
                    (long long)left);
        nanosleep(&(struct timespec){backoff / 1000, (long)(backoff % 1000) * 1000000L}, NULL);
        backoff = backoff * 2 > INIT_BACKOFF_MAX_MS ? INIT_BACKOFF_MAX_MS : backoff * 2;
    }
}

bool fl_txn_expired(const fl_txn_t *txn, int64_t transaction_timeout_ms)
{
    return txn->started_ms > 0 && !txn->ended &&
           fl_clock_mono_ms() - txn->started_ms >= transaction_timeout_ms;
}

bool fl_txn_is_open(const fl_txn_t *txn)
{
    return txn->open;
}

int64_t fl_txn_started_ms(const fl_txn_t *txn)
{
    return txn->started_ms;
}

int fl_txn_begin(fl_txn_t *txn, char *errstr, size_t errstr_size)
{
    rd_kafka_error_t *err;
    if (txn->open)
        return 0;
    if ((err = rd_kafka_begin_transaction(txn->producer))) {
        int rc = take("begin_transaction", err, errstr, errstr_size);
        return rc == FL_TXN_EFENCED ? rc : FL_TXN_EFATAL;
    }
    txn->open = true;
    txn->ended = false;
    txn->started_ms = fl_clock_mono_ms();
    return 0;
}

int fl_txn_abort(fl_txn_t *txn, char *errstr, size_t errstr_size)
{
    rd_kafka_error_t *err;
    if (!txn->open)
        return 0;
    txn->open = false;
    if (!(err = rd_kafka_abort_transaction(txn->producer, txn->timeout_ms))) {
        txn->ended = true;
        return 0;
    }
    int rc = take("abort_transaction", err, errstr, errstr_size);
    /* An abort that is not fatal leaves the producer usable: the next
     * begin tells. */
    return rc == FL_TXN_EFENCED || rc == FL_TXN_EFATAL ? rc : 0;
}

/* A failed call of the open transaction, classified: 1 retry, else the
 * result (an abortable error is aborted here). */
static int failed(fl_txn_t *txn, const char *what, rd_kafka_error_t *err, int tries,
                  char *errstr, size_t errstr_size)
{
    int rc = take(what, err, errstr, errstr_size);
    if (rc == 1 && tries + 1 < TXN_RETRIES) {
        fl_warn("%s; retrying", errstr);
        return 1;
    }
    if (rc == 1)
        rc = FL_TXN_EFATAL;
    if (rc == FL_TXN_EABORTED) {
        char aerr[256];
        int arc = fl_txn_abort(txn, aerr, sizeof aerr);
        if (arc != 0) {
            /* the caller logs one line for both, with what it does next */
            size_t n = strlen(errstr);
            snprintf(errstr + n, errstr_size - n, "; then %s", aerr);
            rc = arc;
        }
    }
    return rc;
}

int fl_txn_send_offsets(fl_txn_t *txn, const rd_kafka_topic_partition_list_t *offsets,
                        const rd_kafka_consumer_group_metadata_t *cgmd, char *errstr,
                        size_t errstr_size)
{
    for (int tries = 0;; tries++) {
        rd_kafka_error_t *err =
            rd_kafka_send_offsets_to_transaction(txn->producer, offsets, cgmd, txn->timeout_ms);
        if (!err)
            return 0;
        int rc = failed(txn, "send_offsets_to_transaction", err, tries, errstr, errstr_size);
        if (rc != 1)
            return rc;
    }
}

int fl_txn_commit(fl_txn_t *txn, char *errstr, size_t errstr_size)
{
    if (!txn->open)
        return 0;
    for (int tries = 0;; tries++) {
        rd_kafka_error_t *err = rd_kafka_commit_transaction(txn->producer, txn->timeout_ms);
        if (!err) {
            txn->open = false;
            txn->ended = true;
            return 0;
        }
        int rc = failed(txn, "commit_transaction", err, tries, errstr, errstr_size);
        if (rc != 1)
            return rc;
    }
}
