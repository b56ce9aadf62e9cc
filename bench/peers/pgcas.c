/* SPDX-License-Identifier: Apache-2.0 */
/*
 * bench/peers/pgcas: the PostgreSQL peer of `bench/run contention`, SPEC's
 * compare-and-set recipe driven closed-loop by W writers, each on its own
 * connection:
 *
 *   table docs (id text primary key, snapshot jsonb, command_count bigint)
 *   1. SELECT snapshot, command_count FROM docs WHERE id = $1       (n)
 *   2. apply the command to the snapshot in the client (jansson)
 *   3. UPDATE docs SET snapshot = $2, command_count = n + 1
 *        WHERE id = $1 AND command_count = n                 (autocommit)
 *   4. one row updated: confirmed; none: another writer won, a failed CAS
 *      (a retry): back to 1.
 *
 * Workloads: `incr` (c0 + 1) and `replace-append` (t = a new value, the
 * writer's index appended to list). Latency of a command is from its
 * first SELECT to the UPDATE that confirmed it, retries included.
 *
 * Why C and libpq: one thread drives all connections with libpq's
 * asynchronous API (PQsendQueryPrepared, PQconsumeInput, poll), prepared
 * statements, no ORM or pool in between: the driver costs a few
 * microseconds per statement, so the figure is PostgreSQL's and the
 * recipe's, not the client's. `--sync off` runs `SET synchronous_commit =
 * off` on every connection (commits return before their WAL is flushed).
 *
 * After --duration seconds no new command starts; commands under way
 * finish (retrying until confirmed). Then the document is read once more:
 * the counter (incr) or the list's length (replace-append) must have grown
 * by exactly the confirmed commands. Prints one JSON line; exit 0 when
 * that check holds, 1 otherwise, 2 on bad arguments.
 *
 * usage: pgcas CONNINFO DOC incr|replace-append WRITERS SECONDS on|off
 *
 * @locality one thread.
 */
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <poll.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>
#include <libpq-fe.h>

#define SUB_BITS 7
#define SUB (1u << SUB_BITS)
#define HALF (SUB / 2)
#define NBUCKETS (SUB + (64 - SUB_BITS) * HALF)
#define MAX_WRITERS 1000

typedef struct hist_s {
    uint64_t count, max;
    uint64_t b[NBUCKETS];
} hist_t;

static unsigned hist_index(uint64_t v)
{
    if (v < SUB)
        return (unsigned)v;
    unsigned m = 63u - (unsigned)__builtin_clzll(v);
    unsigned shift = m - (SUB_BITS - 1);
    return SUB + (m - SUB_BITS) * HALF + (unsigned)((v >> shift) - HALF);
}

static uint64_t hist_high(unsigned idx)
{
    if (idx < SUB)
        return idx;
    unsigned g = (idx - SUB) / HALF, sub = (idx - SUB) % HALF + HALF;
    unsigned shift = g + 1;
    return ((uint64_t)sub << shift) + ((uint64_t)1 << shift) - 1;
}

static void hist_add(hist_t *h, int64_t v)
{
    uint64_t u = v > 0 ? (uint64_t)v : 0;
    if (u > h->max)
        h->max = u;
    h->count++;
    h->b[hist_index(u)]++;
}

static double hist_ms(const hist_t *h, double q)
{
    uint64_t rank, seen = 0;
    if (h->count == 0)
        return 0;
    rank = (uint64_t)ceil(q * (double)h->count);
    if (rank < 1)
        rank = 1;
    for (unsigned i = 0; i < NBUCKETS; i++) {
        seen += h->b[i];
        if (seen >= rank) {
            uint64_t v = hist_high(i);
            return (double)(v < h->max ? v : h->max) / 1e6;
        }
    }
    return (double)h->max / 1e6;
}

static int64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

enum { W_IDLE, W_SELECT, W_UPDATE, W_DONE };

typedef struct writer_s {
    PGconn *conn;
    int state, idx;
    int64_t t_start; /* the command's first SELECT */
    long long n;     /* command_count read */
    bool updated;    /* the UPDATE's result said one row */
    bool failed;     /* an error result */
    char *snapshot;  /* the new snapshot (json_dumps) */
} writer_t;

static const char *doc_id;
static bool replace_append;

/* The new snapshot of old_text after this writer's command; NULL on error. */
static char *apply_command(const char *old_text, int idx, int64_t t)
{
    json_error_t jerr;
    json_t *snap = json_loads(old_text, 0, &jerr), *list;
    char *out = NULL;
    if (!snap || !json_is_object(snap))
        goto done;
    if (!replace_append) {
        json_int_t c0 = json_integer_value(json_object_get(snap, "c0"));
        json_object_set_new(snap, "c0", json_integer(c0 + 1));
    } else {
        if (!(list = json_object_get(snap, "list")) || !json_is_array(list))
            goto done;
        json_object_set_new(snap, "t", json_integer((json_int_t)t));
        json_array_append_new(list, json_integer(idx));
    }
    out = json_dumps(snap, JSON_COMPACT);
done:
    json_decref(snap);
    return out;
}

static int send_select(writer_t *w)
{
    const char *params[1] = {doc_id};
    w->state = W_SELECT;
    return PQsendQueryPrepared(w->conn, "sel", 1, params, NULL, NULL, 0) ? 0 : -1;
}

static int send_update(writer_t *w)
{
    char next[32], prev[32];
    const char *params[4] = {doc_id, w->snapshot, next, prev};
    snprintf(next, sizeof next, "%lld", w->n + 1);
    snprintf(prev, sizeof prev, "%lld", w->n);
    w->state = W_UPDATE;
    return PQsendQueryPrepared(w->conn, "upd", 4, params, NULL, NULL, 0) ? 0 : -1;
}

/* Notices ("relation already exists, skipping") are not results. */
static void on_notice(void *arg, const char *message)
{
    (void)arg, (void)message;
}

static PGconn *connect_db(const char *conninfo, const char *sync)
{
    PGconn *c = PQconnectdb(conninfo);
    PQsetNoticeProcessor(c, on_notice, NULL);
    PGresult *r;
    char sql[64];
    if (PQstatus(c) != CONNECTION_OK) {
        fprintf(stderr, "pgcas: connect: %s", PQerrorMessage(c));
        PQfinish(c);
        return NULL;
    }
    snprintf(sql, sizeof sql, "SET synchronous_commit = %s", sync);
    r = PQexec(c, sql);
    if (PQresultStatus(r) != PGRES_COMMAND_OK) {
        fprintf(stderr, "pgcas: %s", PQerrorMessage(c));
        PQclear(r);
        PQfinish(c);
        return NULL;
    }
    PQclear(r);
    return c;
}

static int exec_ok(PGconn *c, const char *sql)
{
    PGresult *r = PQexec(c, sql);
    int ok = PQresultStatus(r) == PGRES_COMMAND_OK || PQresultStatus(r) == PGRES_TUPLES_OK;
    if (!ok)
        fprintf(stderr, "pgcas: %s: %s", sql, PQerrorMessage(c));
    PQclear(r);
    return ok ? 0 : -1;
}

/* The document's counter and list length now. */
static int read_doc(PGconn *c, long long *c0, long long *len, long long *count)
{
    const char *params[1] = {doc_id};
    PGresult *r = PQexecParams(c,
                               "SELECT (snapshot->>'c0')::bigint, jsonb_array_length(snapshot->"
                               "'list'), command_count FROM docs WHERE id = $1",
                               1, NULL, params, NULL, NULL, 0);
    int rc = -1;
    if (PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) == 1) {
        *c0 = atoll(PQgetvalue(r, 0, 0));
        *len = atoll(PQgetvalue(r, 0, 1));
        *count = atoll(PQgetvalue(r, 0, 2));
        rc = 0;
    } else {
        fprintf(stderr, "pgcas: reading the document: %s", PQerrorMessage(c));
    }
    PQclear(r);
    return rc;
}

int main(int argc, char **argv)
{
    static writer_t ws[MAX_WRITERS];
    static struct pollfd pfd[MAX_WRITERS];
    static hist_t hist;
    const char *conninfo, *sync;
    long nwriters;
    double seconds;
    PGconn *admin = NULL;
    long long c0_0, len_0, cnt_0, c0_1, len_1, cnt_1;
    uint64_t confirmed = 0, failed_cas = 0, errors = 0;
    int64_t t0, t_end, t_last = 0;
    int rc = 1, active;

    if (argc != 7 || (strcmp(argv[3], "incr") != 0 && strcmp(argv[3], "replace-append") != 0) ||
        (nwriters = atol(argv[4])) < 1 || nwriters > MAX_WRITERS ||
        !((seconds = atof(argv[5])) > 0) ||
        (strcmp(argv[6], "on") != 0 && strcmp(argv[6], "off") != 0)) {
        fprintf(stderr, "usage: pgcas CONNINFO DOC incr|replace-append WRITERS(1-%d) SECONDS "
                        "on|off\n",
                MAX_WRITERS);
        return 2;
    }
    conninfo = argv[1];
    doc_id = argv[2];
    replace_append = strcmp(argv[3], "replace-append") == 0;
    sync = argv[6];

    /* The table and the document (created once, reused by later runs). */
    if (!(admin = connect_db(conninfo, "on")) ||
        exec_ok(admin, "CREATE TABLE IF NOT EXISTS docs (id text PRIMARY KEY, snapshot jsonb NOT "
                       "NULL, command_count bigint NOT NULL)") != 0)
        goto done;
    {
        const char *params[1] = {doc_id};
        PGresult *r = PQexecParams(admin,
                                   "INSERT INTO docs VALUES ($1, '{\"c0\": 0, \"t\": 0, \"list\": "
                                   "[]}', 0) ON CONFLICT (id) DO NOTHING",
                                   1, NULL, params, NULL, NULL, 0);
        bool ok = PQresultStatus(r) == PGRES_COMMAND_OK;
        if (!ok)
            fprintf(stderr, "pgcas: creating the document: %s", PQerrorMessage(admin));
        PQclear(r);
        if (!ok)
            goto done;
    }
    if (read_doc(admin, &c0_0, &len_0, &cnt_0) != 0)
        goto done;

    for (long i = 0; i < nwriters; i++) {
        writer_t *w = &ws[i];
        PGresult *r1, *r2;
        w->idx = (int)i;
        if (!(w->conn = connect_db(conninfo, sync)))
            goto done;
        r1 = PQprepare(w->conn, "sel",
                       "SELECT snapshot::text, command_count FROM docs WHERE id = $1", 1, NULL);
        r2 = PQprepare(w->conn, "upd",
                       "UPDATE docs SET snapshot = $2::jsonb, command_count = $3 WHERE id = $1 "
                       "AND command_count = $4",
                       4, NULL);
        bool ok = PQresultStatus(r1) == PGRES_COMMAND_OK && PQresultStatus(r2) == PGRES_COMMAND_OK;
        PQclear(r1);
        PQclear(r2);
        if (!ok || PQsetnonblocking(w->conn, 1) != 0) {
            fprintf(stderr, "pgcas: preparing: %s", PQerrorMessage(w->conn));
            goto done;
        }
    }

    t0 = now_ns();
    t_end = t0 + (int64_t)(seconds * 1e9);
    for (long i = 0; i < nwriters; i++) {
        ws[i].t_start = t0;
        if (send_select(&ws[i]) != 0)
            goto conn_fail;
    }
    for (active = (int)nwriters; active > 0;) {
        for (long i = 0; i < nwriters; i++) {
            pfd[i].fd = ws[i].state == W_DONE ? -1 : PQsocket(ws[i].conn);
            pfd[i].events = POLLIN | (PQflush(ws[i].conn) == 1 ? POLLOUT : 0);
            pfd[i].revents = 0;
        }
        if (poll(pfd, (nfds_t)nwriters, 1000) < 0 && errno != EINTR)
            goto done;
        for (long i = 0; i < nwriters; i++) {
            writer_t *w = &ws[i];
            PGresult *r;
            if (w->state == W_DONE || !(pfd[i].revents & (POLLIN | POLLERR | POLLHUP)))
                continue;
            if (!PQconsumeInput(w->conn))
                goto conn_fail;
            if (PQisBusy(w->conn))
                continue;
            bool got = false;
            while ((r = PQgetResult(w->conn))) {
                got = true;
                ExecStatusType st = PQresultStatus(r);
                if (st == PGRES_TUPLES_OK && w->state == W_SELECT && PQntuples(r) == 1) {
                    free(w->snapshot);
                    w->n = atoll(PQgetvalue(r, 0, 1));
                    w->snapshot = apply_command(PQgetvalue(r, 0, 0), w->idx, now_ns() - t0);
                    if (!w->snapshot)
                        w->failed = true;
                } else if (st == PGRES_COMMAND_OK && w->state == W_UPDATE) {
                    w->updated = strcmp(PQcmdTuples(r), "1") == 0;
                } else {
                    fprintf(stderr, "pgcas: writer %d: %s", w->idx, PQresultErrorMessage(r));
                    w->failed = true;
                }
                PQclear(r);
            }
            if (!got)
                continue; /* readable, but no statement finished (a notice) */
            /* The statement is complete. */
            int64_t now = now_ns();
            if (w->failed) {
                /* An error (e.g. a serialization failure): counted, and
                 * the command starts over. */
                errors++;
                w->failed = false;
                if (send_select(w) != 0)
                    goto conn_fail;
            } else if (w->state == W_SELECT) {
                if (send_update(w) != 0)
                    goto conn_fail;
            } else if (w->updated) {
                confirmed++;
                t_last = now;
                hist_add(&hist, now - w->t_start);
                if (now >= t_end) {
                    w->state = W_DONE;
                    active--;
                } else {
                    w->t_start = now;
                    if (send_select(w) != 0)
                        goto conn_fail;
                }
            } else {
                failed_cas++;
                if (send_select(w) != 0)
                    goto conn_fail;
            }
        }
    }

    if (read_doc(admin, &c0_1, &len_1, &cnt_1) != 0)
        goto done;
    {
        long long counted = replace_append ? len_1 - len_0 : c0_1 - c0_0;
        double secs = (double)(t_last - t0) / 1e9;
        bool ok = counted == (long long)confirmed && cnt_1 - cnt_0 == (long long)confirmed;
        printf("{\"system\":\"postgresql\",\"workload\":\"%s\",\"synchronous_commit\":\"%s\","
               "\"writers\":%ld,\"elapsed_s\":%.3f,\"confirmed\":%" PRIu64
               ",\"ops_per_s\":%.1f,\"failed_cas\":%" PRIu64 ",\"errors\":%" PRIu64
               ",\"latency_ms\":{\"count\":%" PRIu64 ",\"p50\":%.3f,\"p99\":%.3f,\"p999\":%.3f,"
               "\"max\":%.3f},\"final\":{\"command_count\":%lld,\"counted\":%lld,\"ok\":%s}}\n",
               argv[3], sync, nwriters, secs, confirmed, secs > 0 ? (double)confirmed / secs : 0,
               failed_cas, errors, hist.count, hist_ms(&hist, 0.5), hist_ms(&hist, 0.99),
               hist_ms(&hist, 0.999), (double)hist.max / 1e6, cnt_1, counted,
               ok ? "true" : "false");
        rc = ok ? 0 : 1;
    }
    goto done;
conn_fail:
    fprintf(stderr, "pgcas: a connection failed\n");
done:
    for (long i = 0; i < MAX_WRITERS; i++) {
        if (ws[i].conn)
            PQfinish(ws[i].conn);
        free(ws[i].snapshot);
    }
    if (admin)
        PQfinish(admin);
    return rc;
}
