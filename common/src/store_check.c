/* SPDX-License-Identifier: Apache-2.0 */
/*
 * store_check: validating a store folder against what Kafka holds, in a
 * child process so that a corrupted file can only crash the child.
 */
#include "store_int.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <sodium.h>

/* ---- validation ---------------------------------------------------------- */

typedef struct verdict_msg_s {
    int verdict;
    bool have_meta;
    fl_store_meta_t meta;
    char reason[256];
} verdict_msg_t;

/* Opens the store in dir read-only, after checking the file is there and
 * no shorter than LMDB thinks, and finds its mapping. 0, or -1 with
 * out's verdict and reason set. */
static int open_readonly(const char *dir, verdict_msg_t *out, MDB_env **env, map_t *map)
{
    char path[4096];
    struct stat sb;
    int rc;

    if (snprintf(path, sizeof path, "%s/data.mdb", dir) >= (int)sizeof path) {
        snprintf(out->reason, sizeof out->reason, "path too long");
        return -1;
    }
    if (stat(path, &sb) != 0) {
        out->verdict = FL_STORE_MISSING;
        snprintf(out->reason, sizeof out->reason, "no store in %s", dir);
        return -1;
    }
    if ((rc = mdb_env_create(env)) != 0 || (rc = mdb_env_set_maxdbs(*env, 2)) != 0 ||
        (rc = mdb_env_open(*env, dir, MDB_RDONLY | MDB_NOTLS, 0644)) != 0) {
        snprintf(out->reason, sizeof out->reason, "LMDB cannot open it: %s", mdb_strerror(rc));
        return -1;
    }
    /* LMDB maps the file and trusts its last page number: past the end of
     * a truncated file a read would fault (SIGBUS). */
    MDB_envinfo info;
    MDB_stat est;
    if (mdb_env_info(*env, &info) != 0 || mdb_env_stat(*env, &est) != 0 ||
        (uint64_t)(info.me_last_pgno + 1) * est.ms_psize > (uint64_t)sb.st_size) {
        snprintf(out->reason, sizeof out->reason, "the file is shorter than its last page");
        return -1;
    }
    if (st_map_find(*env, map) != 0) {
        snprintf(out->reason, sizeof out->reason, "cannot find the store's mapping");
        return -1;
    }
    return 0;
}

/* The metadata against what Kafka holds: the topics, offsets not ahead of
 * Kafka, events still there. 0, or -1 with out's verdict and reason. */
static int check_offsets(const fl_store_expect_t *exp, verdict_msg_t *out)
{
    const fl_store_meta_t *m = &out->meta;
    const fl_store_offsets_t *o = &m->offsets;
    out->verdict = FL_STORE_TOPICS;
    if (!st_topics_equal(&m->topics, &exp->topics)) {
        snprintf(out->reason, sizeof out->reason, "the store is of %s/%s/%s [%d]",
                 m->topics.commands, m->topics.events, m->topics.snapshots,
                 (int)m->topics.partition);
        return -1;
    }
    out->verdict = FL_STORE_AHEAD;
    if (o->commands > (exp->committed < 0 ? 0 : exp->committed)) {
        snprintf(out->reason, sizeof out->reason,
                 "the store reflects commands up to offset %lld, Kafka committed %lld",
                 (long long)o->commands, (long long)exp->committed);
        return -1;
    }
    if (exp->events_end >= 0 && o->events > exp->events_end) {
        snprintf(out->reason, sizeof out->reason,
                 "the store reflects events up to offset %lld, the partition ends at %lld",
                 (long long)o->events, (long long)exp->events_end);
        return -1;
    }
    out->verdict = FL_STORE_GONE;
    if (exp->events_start >= 0 && o->events < exp->events_start) {
        snprintf(out->reason, sizeof out->reason,
                 "the events from offset %lld are needed, the partition starts at %lld",
                 (long long)o->events, (long long)exp->events_start);
        return -1;
    }
    return 0;
}

/* The scan: every id in order and found again by a lookup from the
 * root (a damaged branch page can hide a key from lookups while the
 * scan, which walks siblings, still sees it), the totals (count,
 * bytes, XOR of the stored checksums) against the metadata, and with
 * verify_records every record's checksum. Sets out's verdict. */
static void scan_docs(MDB_txn *txn, MDB_dbi docs, const map_t *map, size_t used,
                      const fl_store_expect_t *exp, verdict_msg_t *out)
{
    const fl_store_meta_t *m = &out->meta;
    MDB_cursor *cur = NULL;
    uint64_t n = 0, bytes = 0, sum = 0, idsum = 0, h;
    MDB_val k, v, again;
    char last[FL_STORE_ID_MAX];
    size_t lastlen = 0;
    int rc;

    out->verdict = FL_STORE_CORRUPT;
    if ((rc = mdb_cursor_open(txn, docs, &cur)) != 0) {
        snprintf(out->reason, sizeof out->reason, "LMDB: %s", mdb_strerror(rc));
        return;
    }
    for (rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST); rc == 0;
         rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
        if (!st_value_ok(map, used, &k, true, &v, exp->verify_records, &h)) {
            snprintf(out->reason, sizeof out->reason, "document %llu fails its checksum",
                     (unsigned long long)n);
            goto done;
        }
        if (n > 0) {
            size_t c = lastlen < k.mv_size ? lastlen : k.mv_size;
            int d = memcmp(last, k.mv_data, c);
            if (d > 0 || (d == 0 && lastlen >= k.mv_size)) {
                snprintf(out->reason, sizeof out->reason, "document ids out of order");
                goto done;
            }
        }
        memcpy(last, k.mv_data, k.mv_size);
        lastlen = k.mv_size;
        if (mdb_get(txn, docs, &k, &again) != 0 || again.mv_data != v.mv_data) {
            snprintf(out->reason, sizeof out->reason, "document %llu cannot be looked up",
                     (unsigned long long)n);
            goto done;
        }
        if (++n > m->docs) {
            snprintf(out->reason, sizeof out->reason, "more documents than the metadata's %llu",
                     (unsigned long long)m->docs);
            goto done;
        }
        bytes += v.mv_size - SUM_LEN;
        sum ^= h;
        idsum ^= st_id_sum(k.mv_data, k.mv_size);
    }
    if (rc != MDB_NOTFOUND) {
        snprintf(out->reason, sizeof out->reason, "scanning: %s", mdb_strerror(rc));
        goto done;
    }
    if (n != m->docs || bytes != m->bytes || sum != m->sum || idsum != m->idsum) {
        snprintf(out->reason, sizeof out->reason,
                 "%llu documents of %llu bytes do not match the metadata (%llu, %llu%s%s)",
                 (unsigned long long)n, (unsigned long long)bytes, (unsigned long long)m->docs,
                 (unsigned long long)m->bytes, sum != m->sum ? ", checksum sum differs" : "",
                 idsum != m->idsum ? ", id sum differs" : "");
        goto done;
    }
    out->verdict = FL_STORE_VALID;
    snprintf(out->reason, sizeof out->reason, "%llu documents, commands %lld, events %lld",
             (unsigned long long)n, (long long)m->offsets.commands,
             (long long)m->offsets.events);
done:
    mdb_cursor_close(cur);
}

/* The whole check, in the child. */
static void check_store(const char *dir, const fl_store_expect_t *exp, verdict_msg_t *out)
{
    MDB_env *env = NULL;
    MDB_txn *txn = NULL;
    MDB_dbi docs, meta;
    map_t map;
    int rc;

    out->verdict = FL_STORE_CORRUPT;
    if (open_readonly(dir, out, &env, &map) != 0)
        goto done;
    if ((rc = mdb_txn_begin(env, NULL, MDB_RDONLY, &txn)) != 0) {
        snprintf(out->reason, sizeof out->reason, "LMDB: %s", mdb_strerror(rc));
        goto done;
    }
    rc = mdb_dbi_open(txn, "meta", 0, &meta);
    if (rc == 0)
        rc = mdb_dbi_open(txn, "docs", 0, &docs);
    MDB_val mk = {sizeof META_KEY - 1, (void *)META_KEY}, mv;
    if (rc == 0)
        rc = mdb_get(txn, meta, &mk, &mv);
    if (rc == MDB_NOTFOUND) {
        out->verdict = FL_STORE_MISSING;
        snprintf(out->reason, sizeof out->reason, "the store never committed a batch");
        goto done;
    }
    if (rc != 0) {
        snprintf(out->reason, sizeof out->reason, "reading the metadata: %s", mdb_strerror(rc));
        goto done;
    }
    size_t used = st_map_used(env, &map);
    if (!st_value_in_map(&map, used, &mv)) {
        snprintf(out->reason, sizeof out->reason, "the metadata lies outside the file");
        goto done;
    }
    out->verdict = st_meta_decode(mv.mv_data, mv.mv_size, &out->meta, out->reason,
                                  sizeof out->reason);
    if (out->verdict != FL_STORE_VALID)
        goto done;
    out->have_meta = true;
    if (check_offsets(exp, out) == 0)
        scan_docs(txn, docs, &map, used, exp, out);
done:
    if (txn)
        mdb_txn_abort(txn);
    if (env)
        mdb_env_close(env);
}

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int fl_store_validate(const char *dir, const fl_store_expect_t *exp, int timeout_ms,
                      fl_store_meta_t *meta, char *reason, size_t reason_size)
{
    verdict_msg_t msg;
    int fds[2], status;
    pid_t pid;
    size_t got = 0;

    if (sodium_init() < 0 || pipe2(fds, O_CLOEXEC) != 0) {
        snprintf(reason, reason_size, "cannot check: %s", strerror(errno));
        return FL_STORE_EIO;
    }
    pid = fork();
    if (pid < 0) {
        snprintf(reason, reason_size, "cannot check: fork: %s", strerror(errno));
        close(fds[0]);
        close(fds[1]);
        return FL_STORE_EIO;
    }
    if (pid == 0) {
        /* The child: check, report in one write (below PIPE_BUF, so
         * atomic), and leave without atexit handlers (the parent's). */
        static verdict_msg_t out;
        close(fds[0]);
        memset(&out, 0, sizeof out);
        check_store(dir, exp, &out);
        ssize_t w = write(fds[1], &out, sizeof out);
        _exit(w == (ssize_t)sizeof out ? 0 : 1);
    }
    _Static_assert(sizeof(verdict_msg_t) <= PIPE_BUF, "one atomic write");
    close(fds[1]);
    int64_t deadline = timeout_ms > 0 ? now_ms() + timeout_ms : INT64_MAX;
    while (got < sizeof msg) {
        int64_t left = deadline - now_ms();
        struct pollfd pfd = {fds[0], POLLIN, 0};
        if (left <= 0)
            break;
        int pr = poll(&pfd, 1, left > 60000 ? 60000 : (int)left);
        if (pr < 0 && errno == EINTR)
            continue;
        if (pr <= 0)
            continue;
        ssize_t r = read(fds[0], (char *)&msg + got, sizeof msg - got);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            break;
        got += (size_t)r;
    }
    close(fds[0]);
    if (got < sizeof msg)
        kill(pid, SIGKILL); /* timed out, or it died; either way it is reaped */
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
        ;
    if (got < sizeof msg) {
        if (WIFSIGNALED(status) && WTERMSIG(status) != SIGKILL)
            snprintf(reason, reason_size, "checking the store crashed (signal %d)",
                     WTERMSIG(status));
        else if (now_ms() >= deadline)
            snprintf(reason, reason_size, "checking the store took over %d ms", timeout_ms);
        else
            snprintf(reason, reason_size, "checking the store failed (status %d)", status);
        return FL_STORE_CORRUPT;
    }
    if (meta && msg.have_meta)
        *meta = msg.meta;
    else if (meta)
        memset(meta, 0, sizeof *meta);
    msg.reason[sizeof msg.reason - 1] = '\0';
    snprintf(reason, reason_size, "%s", msg.reason);
    return msg.verdict;
}
