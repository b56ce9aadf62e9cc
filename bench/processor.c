/* SPDX-License-Identifier: Apache-2.0 */
/*
 * bench/processor: the processor daemon against the real broker, each
 * figure next to a baseline run in the same invocation on the same broker.
 *
 *   throughput  flushline-processor (exactly-once) over N preloaded flush
 *               records, against a C pass-through that consumes the same
 *               commands and produces them unchanged to another topic in
 *               transactions with send_offsets_to_transaction, with the
 *               processor's settings (read_committed, cooperative-sticky,
 *               linger.ms 2, lz4, commit every 20 ms or 10,000 records).
 *   restore     a processor killed with SIGKILL after writing E events to
 *               one events partition (snapshots off, so nothing shortens
 *               the replay); a fresh instance in the same group restores
 *               the partition, and its "partition 0 restored: ... in T ms"
 *               log line is compared with a plain read_committed read of
 *               the same partition (no decoding; the restore reader's
 *               settings, with queued.min.messages raised: see read_topic).
 *   passthrough the baseline itself; run by throughput as a child process.
 *
 * Rates are taken from the outside, the same way for both sides: a watcher
 * polls the committed offsets of the consumer group on commands every
 * POLL_MS. Offsets commit in the same transaction as the output, so when
 * they reach the end of commands every output record is committed. The
 * clock starts at the first commit seen and the count is the records
 * committed after it, so group join, restore and init_transactions are
 * not part of the rate. Counts are then verified by reading the output
 * (read_committed): exactly one record per flush.
 *
 * Usage: processor [throughput] [flushes (200000)] [rounds (3)]
 *        processor restore [events (300000)] [rounds (3)]
 *        processor passthrough BOOTSTRAP IN OUT GROUP TXID
 * Needs FLUSHLINE_BOOTSTRAP and the daemon (FL_PROCESSOR_BIN, default
 * <this program's directory>/../bin/flushline-processor); bench/processor.sh
 * and bench/restore.sh build both and set them. FL_BENCH_PROCESSOR_ARGS adds
 * flags to every processor started (tuning runs, e.g. "-X
 * queued.min.messages=1000000" or "--http.port 18081"). Every child is killed and
 * every topic deleted on the way out; each phase has a deadline. The last
 * stdout line is the headline.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <libgen.h>
#include <limits.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <librdkafka/rdkafka.h>

#include "flushline/kafka.h"
#include "flushline/log.h"
#include "flushline/topics.h"
#include "flushline/wire.h"

#define NPARTITIONS 4     /* throughput: partitions of every topic */
#define NDOCS 256         /* documents the flushes go to */
#define NCLIENTS 4        /* clients per document, each with its own seq */
#define NKEYS 8           /* counters per document */
#define COMMIT_MS 20      /* the processor's commit.interval.ms default */
#define COMMIT_RECORDS 10000 /* and its commit.max.records */
#define POLL_MS 20        /* watcher period */
#define MAX_CHILDREN 4
#define MAX_TOPICS 8
#define MAX_ROUNDS 9
#define PRELOAD_S 180     /* deadlines, seconds */
#define RUN_S 300
#define READ_S 120
#define STOP_S 30
#define RESTORE_WAIT_S 120
#define HARD_LIMIT_S 1800 /* SIGALRM backstop for the whole invocation */

static const char *bootstrap;
static char self_exe[PATH_MAX];
static char processor_bin[PATH_MAX];
static char logdir[64]; /* child logs; removed on success, kept on failure */
static bool keep_logs;

static pid_t children[MAX_CHILDREN];
static char topics[MAX_TOPICS][FL_TOPIC_NAME_MAX + 1];
static int ntopics;

static volatile sig_atomic_t stopping; /* passthrough: SIGTERM */

/* ---- small things ----------------------------------------------------- */

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static double median(const double *v, int n)
{
    double s[MAX_ROUNDS];
    memcpy(s, v, (size_t)n * sizeof *s);
    qsort(s, (size_t)n, sizeof *s, cmp_double);
    return n % 2 ? s[n / 2] : (s[n / 2 - 1] + s[n / 2]) / 2;
}

/* Busy and total jiffies of the whole machine, from /proc/stat. */
static void cpu_jiffies(unsigned long long *busy, unsigned long long *total)
{
    unsigned long long v[8] = {0};
    FILE *f = fopen("/proc/stat", "r");
    *busy = *total = 0;
    if (!f)
        return;
    if (fscanf(f, "cpu %llu %llu %llu %llu %llu %llu %llu %llu", &v[0], &v[1], &v[2], &v[3],
               &v[4], &v[5], &v[6], &v[7]) == 8) {
        for (int i = 0; i < 8; i++)
            *total += v[i];
        *busy = *total - v[3] - v[4]; /* minus idle and iowait */
    }
    fclose(f);
}

/* ---- children --------------------------------------------------------- */

static void kill_children(void)
{
    for (int i = 0; i < MAX_CHILDREN; i++)
        if (children[i] > 0) {
            kill(children[i], SIGKILL);
            waitpid(children[i], NULL, 0);
            children[i] = 0;
        }
}

static void on_fatal_signal(int sig)
{
    static const char msg[] = "bench/processor: interrupted or out of time; children killed\n";
    for (int i = 0; i < MAX_CHILDREN; i++)
        if (children[i] > 0)
            kill(children[i], SIGKILL);
    if (write(2, msg, sizeof msg - 1) < 0)
        _exit(128 + sig);
    _exit(128 + sig);
}

/* Starts argv[0] with stdout and stderr to logpath. The child dies with us
 * (PR_SET_PDEATHSIG), so even a SIGKILL of the bench leaves nothing. */
static pid_t spawn(char *const argv[], const char *logpath)
{
    pid_t parent = getpid(), pid;
    int slot = -1, fd;
    for (int i = 0; i < MAX_CHILDREN && slot < 0; i++)
        if (children[i] == 0)
            slot = i;
    if (slot < 0)
        return -1;
    if ((fd = open(logpath, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644)) < 0) {
        fprintf(stderr, "open %s: %s\n", logpath, strerror(errno));
        return -1;
    }
    pid = fork();
    if (pid == 0) {
        /* Only async-signal-safe calls until exec. */
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (getppid() != parent)
            _exit(127);
        dup2(fd, 1);
        dup2(fd, 2);
        execv(argv[0], argv);
        _exit(127);
    }
    close(fd);
    if (pid < 0) {
        fprintf(stderr, "fork: %s\n", strerror(errno));
        return -1;
    }
    children[slot] = pid;
    return pid;
}

static void forget_child(pid_t pid)
{
    for (int i = 0; i < MAX_CHILDREN; i++)
        if (children[i] == pid)
            children[i] = 0;
}

/* Stops a child: sig, then SIGKILL after STOP_S. Returns its CPU seconds
 * (user + system) or -1 when they are unknown. */
static double stop_child(pid_t pid, int sig)
{
    struct rusage ru;
    int status;
    double cpu = -1, deadline = now_s() + STOP_S;
    kill(pid, sig);
    for (;;) {
        pid_t r = wait4(pid, &status, WNOHANG, &ru);
        if (r == pid) {
            cpu = (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
                  (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
            break;
        }
        if (r < 0)
            break;
        if (now_s() > deadline) {
            fprintf(stderr, "child %d ignored signal %d for %d s: killing it\n", (int)pid, sig,
                    STOP_S);
            kill(pid, SIGKILL);
            waitpid(pid, NULL, 0);
            break;
        }
        sleep_ms(20);
    }
    forget_child(pid);
    return cpu;
}

/* ---- Kafka ------------------------------------------------------------ */

/* A client with the given "name", "value", ..., NULL settings. */
static rd_kafka_t *client(rd_kafka_type_t type, const char *const *kv)
{
    char errstr[512];
    fl_kafka_kv_t defaults[32];
    size_t n = 0;
    rd_kafka_t *rk;
    for (; kv && kv[0]; kv += 2) {
        if (n + 1 >= sizeof defaults / sizeof defaults[0]) {
            fprintf(stderr, "kafka client: too many settings\n");
            return NULL;
        }
        defaults[n++] = (fl_kafka_kv_t){kv[0], kv[1]};
    }
    defaults[n] = (fl_kafka_kv_t){NULL, NULL};
    fl_kafka_spec_t ks = {.type = type, .what = "bench client", .bootstrap = bootstrap,
                          .defaults = defaults};
    if (!(rk = fl_kafka_new(&ks, errstr, sizeof errstr)))
        fprintf(stderr, "kafka client: %s\n", errstr);
    return rk;
}

static rd_kafka_event_t *admin_wait(rd_kafka_queue_t *q, int timeout_ms)
{
    double deadline = now_s() + timeout_ms / 1000.0;
    while (now_s() < deadline) {
        rd_kafka_event_t *ev = rd_kafka_queue_poll(q, 100);
        if (!ev)
            continue;
        if (rd_kafka_event_type(ev) == RD_KAFKA_EVENT_CREATETOPICS_RESULT ||
            rd_kafka_event_type(ev) == RD_KAFKA_EVENT_DELETETOPICS_RESULT)
            return ev;
        rd_kafka_event_destroy(ev);
    }
    return NULL;
}

/* Creates the four topics of prefix and, when extra is set, one more
 * topic "<prefix>.<extra>" alike; all are remembered for deletion. */
static int create_topics(const char *prefix, int partitions, const char *extra)
{
    static const char *const kv[] = {NULL};
    fl_topics_spec_t spec;
    fl_topic_state_t st[FL_TOPIC__COUNT];
    char errstr[512];
    rd_kafka_t *rk = client(RD_KAFKA_PRODUCER, kv);
    int rc = -1;

    if (!rk)
        return -1;
    fl_topics_spec_default(&spec);
    spec.prefix = prefix;
    spec.partitions = partitions;
    spec.timeout_ms = 30000;
    for (int k = 0; k < FL_TOPIC__COUNT && ntopics < MAX_TOPICS; k++)
        fl_topic_name(prefix, (fl_topic_kind_t)k, topics[ntopics++], sizeof topics[0]);
    if (fl_topics_create(rk, &spec, st, errstr, sizeof errstr) != 0) {
        fprintf(stderr, "creating topics %s.*: %s\n", prefix, errstr);
        goto fail;
    }
    if (extra && ntopics < MAX_TOPICS) {
        rd_kafka_queue_t *q = rd_kafka_queue_new(rk);
        rd_kafka_NewTopic_t *nt;
        rd_kafka_event_t *ev;
        char *name = topics[ntopics++];
        snprintf(name, sizeof topics[0], "%s.%s", prefix, extra);
        nt = rd_kafka_NewTopic_new(name, partitions, 1, errstr, sizeof errstr);
        if (!nt) {
            rd_kafka_queue_destroy(q);
            fprintf(stderr, "topic %s: %s\n", name, errstr);
            goto fail;
        }
        /* Like events: the pass-through's records are of the same size. */
        rd_kafka_NewTopic_set_config(nt, "max.message.bytes", "8388608");
        rd_kafka_CreateTopics(rk, &nt, 1, NULL, q);
        ev = admin_wait(q, 30000);
        const rd_kafka_topic_result_t **tr = NULL;
        size_t cnt = 0;
        if (ev && !rd_kafka_event_error(ev))
            tr = rd_kafka_CreateTopics_result_topics(rd_kafka_event_CreateTopics_result(ev), &cnt);
        if (!ev || rd_kafka_event_error(ev) || cnt != 1 || rd_kafka_topic_result_error(tr[0])) {
            fprintf(stderr, "creating %s: %s\n", name,
                    !ev                        ? "timed out"
                    : rd_kafka_event_error(ev) ? rd_kafka_event_error_string(ev)
                    : cnt == 1                 ? rd_kafka_topic_result_error_string(tr[0])
                                               : "no result");
            if (ev)
                rd_kafka_event_destroy(ev);
            rd_kafka_NewTopic_destroy(nt);
            rd_kafka_queue_destroy(q);
            goto fail;
        }
        rd_kafka_event_destroy(ev);
        rd_kafka_NewTopic_destroy(nt);
        rd_kafka_queue_destroy(q);
    }
    rc = 0;
fail:
    rd_kafka_destroy(rk);
    return rc;
}

/* Deletes every topic created so far (best effort). */
static void delete_topics(void)
{
    static const char *const kv[] = {NULL};
    rd_kafka_DeleteTopic_t *dt[MAX_TOPICS];
    rd_kafka_t *rk;
    if (ntopics == 0 || !(rk = client(RD_KAFKA_PRODUCER, kv)))
        return;
    rd_kafka_queue_t *q = rd_kafka_queue_new(rk);
    for (int i = 0; i < ntopics; i++)
        dt[i] = rd_kafka_DeleteTopic_new(topics[i]);
    rd_kafka_DeleteTopics(rk, dt, (size_t)ntopics, NULL, q);
    rd_kafka_event_t *ev = admin_wait(q, 15000);
    if (!ev || rd_kafka_event_error(ev))
        fprintf(stderr, "deleting the bench topics: %s\n",
                ev ? rd_kafka_event_error_string(ev) : "timed out");
    if (ev)
        rd_kafka_event_destroy(ev);
    for (int i = 0; i < ntopics; i++)
        rd_kafka_DeleteTopic_destroy(dt[i]);
    rd_kafka_queue_destroy(q);
    rd_kafka_destroy(rk);
    ntopics = 0;
}

/* ---- preloading commands ---------------------------------------------- */

static void on_preload_delivery(rd_kafka_t *rk, const rd_kafka_message_t *msg, void *opaque)
{
    (void)rk;
    if (msg->err) {
        long *failed = opaque;
        if ((*failed)++ == 0)
            fprintf(stderr, "preload delivery: %s\n", rd_kafka_err2str(msg->err));
    }
}

static uint64_t xorshift(uint64_t *s)
{
    uint64_t x = *s;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    return *s = x;
}

/*
 * Produces nflush flush records to <prefix>.commands the way a gateway
 * does (idempotent producer, keyed by document, murmur2_random), with
 * linger for throughput. Each flush has 1-4 commands, incr or replace of
 * one of NKEYS counters on one of NDOCS documents, from one of NCLIENTS
 * clients per document with contiguous seqs. Returns the commands in all.
 */
static long preload(const char *prefix, long nflush)
{
    static uint64_t seqs[NDOCS][NCLIENTS];
    static char paths[NKEYS][8];
    char topic[FL_TOPIC_NAME_MAX + 1], doc[32], errstr[256];
    long failed = 0, ncmds = 0;
    uint64_t rnd = 0x9e3779b97f4a7c15ull;
    fl_cmd_t cmds[4];
    static const fl_kafka_kv_t defaults[] = {
        {"enable.idempotence", "true"},
        {"linger.ms", "20"},
        {"batch.size", "1000000"},
        {"compression.codec", "lz4"},
        {"queue.buffering.max.messages", "1000000"},
        {NULL, NULL},
    };
    fl_kafka_spec_t ks = {.type = RD_KAFKA_PRODUCER,
                          .what = "preload producer",
                          .bootstrap = bootstrap,
                          .defaults = defaults,
                          .opaque = &failed,
                          .on_delivery = on_preload_delivery};
    rd_kafka_t *rk = NULL;
    double deadline = now_s() + PRELOAD_S;

    if (!(rk = fl_kafka_new(&ks, errstr, sizeof errstr))) {
        fprintf(stderr, "preload: %s\n", errstr);
        return -1;
    }
    fl_topic_name(prefix, FL_TOPIC_COMMANDS, topic, sizeof topic);
    memset(seqs, 0, sizeof seqs);
    for (int k = 0; k < NKEYS; k++)
        snprintf(paths[k], sizeof paths[k], "/c%d", k);
    for (long i = 0; i < nflush && !failed; i++) {
        unsigned d = (unsigned)(xorshift(&rnd) % NDOCS), c = (unsigned)(xorshift(&rnd) % NCLIENTS);
        fl_flush_t fl;
        char *buf;
        size_t len;
        memset(&fl, 0, sizeof fl);
        snprintf(doc, sizeof doc, "bench/d%03u", d);
        fl.doc = (fl_slice_t){doc, strlen(doc)};
        memset(fl.client_id, 0xC0, FL_CLIENT_ID_LEN);
        fl.client_id[0] = (uint8_t)c;
        fl.seq = ++seqs[d][c];
        fl.ncmds = 1 + (uint32_t)(xorshift(&rnd) % 4);
        fl.cmds = cmds;
        for (uint32_t j = 0; j < fl.ncmds; j++) {
            unsigned k = (unsigned)(xorshift(&rnd) % NKEYS);
            memset(&cmds[j], 0, sizeof cmds[j]);
            /* incr makes the counter (missing = 0); replace needs it there. */
            cmds[j].op = xorshift(&rnd) % 2 ? FL_OP_INCR : FL_OP_REPLACE;
            cmds[j].path = (fl_slice_t){paths[k], strlen(paths[k])};
            cmds[j].value = fl_value_int((int64_t)(xorshift(&rnd) % 100));
            cmds[j].has_value = true;
        }
        fl.user = FL_SLICE("bench-user");
        ncmds += fl.ncmds;
        if (fl_wire_encode_flush_record(&fl, FL_SLICE("bench-gw"), (uint64_t)i, &buf, &len,
                                        errstr, sizeof errstr) != 0) {
            fprintf(stderr, "encoding a flush: %s\n", errstr);
            failed++;
            break;
        }
        for (;;) {
            rd_kafka_resp_err_t err = rd_kafka_producev(
                rk, RD_KAFKA_V_TOPIC(topic), RD_KAFKA_V_KEY(doc, fl.doc.len),
                RD_KAFKA_V_VALUE(buf, len), RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_FREE),
                RD_KAFKA_V_END);
            if (err == RD_KAFKA_RESP_ERR__QUEUE_FULL && now_s() < deadline) {
                rd_kafka_poll(rk, 10);
                continue;
            }
            if (err) {
                fprintf(stderr, "preload produce: %s\n", rd_kafka_err2str(err));
                free(buf);
                failed++;
            }
            break;
        }
        rd_kafka_poll(rk, 0);
    }
    if (!failed) {
        int left = (int)((deadline - now_s()) * 1000);
        if (rd_kafka_flush(rk, left > 0 ? left : 1) != RD_KAFKA_RESP_ERR_NO_ERROR) {
            fprintf(stderr, "preload: not delivered within %d s\n", PRELOAD_S);
            failed++;
        }
    }
    rd_kafka_destroy(rk);
    return failed ? -1 : ncmds;
}

/* ---- watching and reading --------------------------------------------- */

/* A consumer that never joins: it reads group's committed offsets. It is
 * read_uncommitted so that the OffsetFetch does not ask for stable offsets
 * (which would wait out every open transaction): a transaction's offsets
 * show once it committed. */
static rd_kafka_t *group_watcher(const char *group)
{
    const char *const kv[] = {"group.id", group, "isolation.level", "read_uncommitted",
                              "enable.auto.commit", "false", NULL};
    return client(RD_KAFKA_CONSUMER, kv);
}

/* Sum of group's committed offsets on topic, or -1. */
static int64_t committed_sum(rd_kafka_t *watch, const char *topic, int nparts)
{
    rd_kafka_topic_partition_list_t *parts = rd_kafka_topic_partition_list_new(nparts);
    int64_t sum = 0;
    for (int p = 0; p < nparts; p++)
        rd_kafka_topic_partition_list_add(parts, topic, p);
    if (rd_kafka_committed(watch, parts, 5000) != RD_KAFKA_RESP_ERR_NO_ERROR) {
        sum = -1;
    } else {
        for (int p = 0; p < nparts; p++)
            if (parts->elems[p].offset > 0)
                sum += parts->elems[p].offset;
    }
    rd_kafka_topic_partition_list_destroy(parts);
    return sum;
}

/*
 * Reads every partition of topic from the beginning to its end with a
 * read_committed consumer (the end is the last stable offset: a
 * read_committed ListOffsets answers it), decoding nothing, with the
 * processor's restore reader settings and a larger queued.min.messages.
 * Returns the records read and the seconds it took (watermark queries
 * included, as in a restore), or -1.
 */
static long read_topic(const char *topic, int nparts, double *secs)
{
    char group[96];
    snprintf(group, sizeof group, "bench-reader-%d", (int)getpid());
    const char *const kv[] = {"group.id", group, "isolation.level", "read_committed",
                              "enable.auto.commit", "false", "enable.partition.eof", "true",
                              "fetch.wait.max.ms", "10", "fetch.max.bytes", "67108864",
                              "max.partition.fetch.bytes", "16777216",
                              /* librdkafka 2.0.2 stops fetching for ~1 s once more
                               * than this many records wait in its queue: with
                               * the default (100,000) a 16 MiB fetch of small
                               * records trips it on every long read. */
                              "queued.min.messages", "1000000", NULL};
    rd_kafka_t *rk = client(RD_KAFKA_CONSUMER, kv);
    rd_kafka_topic_partition_list_t *parts = rd_kafka_topic_partition_list_new(nparts);
    int64_t hi[64], lo[64];
    long count = 0;
    int left = 0;
    double t0, deadline;

    if (!rk || nparts > 64)
        goto fail;
    /* Connected first, as the restore reader is when it gets to events (it
     * has just read snapshots): the clock starts at the watermark query. */
    rd_kafka_query_watermark_offsets(rk, topic, 0, &lo[0], &hi[0], 10000);
    t0 = now_s();
    deadline = t0 + READ_S;
    for (int p = 0; p < nparts; p++) {
        if (rd_kafka_query_watermark_offsets(rk, topic, p, &lo[p], &hi[p], 10000) != 0) {
            fprintf(stderr, "watermarks of %s [%d] unavailable\n", topic, p);
            goto fail;
        }
        /* From the low watermark, not OFFSET_BEGINNING: as the restore does
         * (it starts at an offset it knows), and a logical offset costs an
         * offset query that librdkafka may defer by 500 ms on a new topic. */
        if (hi[p] > lo[p]) {
            rd_kafka_topic_partition_list_add(parts, topic, p)->offset = lo[p];
            left++;
        }
    }
    if (left > 0 && rd_kafka_assign(rk, parts) != 0)
        goto fail;
    while (left > 0) {
        rd_kafka_message_t *msg = rd_kafka_consumer_poll(rk, 100);
        if (msg) {
            if (!msg->err)
                count++;
            else if (msg->err != RD_KAFKA_RESP_ERR__PARTITION_EOF)
                fprintf(stderr, "reading %s: %s\n", topic, rd_kafka_message_errstr(msg));
            rd_kafka_message_destroy(msg);
        }
        /* Done with a partition when its position passed its end (the
         * position moves past the trailing transaction markers too). */
        rd_kafka_position(rk, parts);
        left = 0;
        for (int i = 0; i < parts->cnt; i++)
            if (parts->elems[i].offset < hi[parts->elems[i].partition])
                left++;
        if (left > 0 && now_s() > deadline) {
            fprintf(stderr, "reading %s: not at its end after %d s\n", topic, READ_S);
            goto fail;
        }
    }
    *secs = now_s() - t0;
    rd_kafka_topic_partition_list_destroy(parts);
    rd_kafka_consumer_close(rk);
    rd_kafka_destroy(rk);
    return count;
fail:
    rd_kafka_topic_partition_list_destroy(parts);
    if (rk) {
        rd_kafka_consumer_close(rk);
        rd_kafka_destroy(rk);
    }
    return -1;
}

/* ---- one measured run ------------------------------------------------- */

typedef struct run_s {
    double rate;      /* input records per second, first to last commit */
    double secs;      /* that interval */
    double startup;   /* start of the child to its first commit */
    double cpu_child; /* the child's CPU seconds (whole life) */
    double cpu_busy;  /* machine busy fraction over the interval (of all CPUs) */
} run_t;

/*
 * Starts argv (output to logpath), then watches group's committed offsets
 * on in_topic until they reach total, then stops the child with stop_sig. 0, or -1
 * with the reason on stderr (the child's log is kept).
 */
static int measured_run(const char *name, char *const argv[], const char *logpath,
                        const char *group, const char *in_topic, int nparts, int64_t total,
                        int stop_sig, run_t *out)
{
    rd_kafka_t *watch = group_watcher(group);
    double t_start, t_first = 0, deadline;
    int64_t c_first = 0, c = 0;
    unsigned long long b0 = 0, j0 = 0, b1, j1;
    pid_t pid;
    int rc = -1;

    memset(out, 0, sizeof *out);
    if (!watch)
        return -1;
    if (committed_sum(watch, in_topic, nparts) != 0) {
        fprintf(stderr, "%s: group %s has committed offsets already\n", name, group);
        rd_kafka_destroy(watch);
        return -1;
    }
    t_start = now_s();
    deadline = t_start + RUN_S;
    if ((pid = spawn(argv, logpath)) < 0) {
        rd_kafka_destroy(watch);
        return -1;
    }
    for (;;) {
        int status;
        if (waitpid(pid, &status, WNOHANG) == pid) {
            forget_child(pid);
            fprintf(stderr, "%s exited early (status %d); see %s\n", name, status, logpath);
            keep_logs = true;
            pid = 0;
            goto fail;
        }
        if (now_s() > deadline) {
            fprintf(stderr, "%s: gave up after %d s at %" PRId64 " of %" PRId64
                            " records committed; see %s\n",
                    name, RUN_S, c, total, logpath);
            keep_logs = true;
            goto fail;
        }
        c = committed_sum(watch, in_topic, nparts);
        if (c > 0 && t_first == 0) {
            t_first = now_s();
            c_first = c;
            cpu_jiffies(&b0, &j0);
        }
        if (c >= total)
            break;
        sleep_ms(POLL_MS);
    }
    cpu_jiffies(&b1, &j1);
    out->secs = now_s() - t_first;
    out->startup = t_first - t_start;
    out->rate = out->secs > 0 ? (double)(total - c_first) / out->secs : 0;
    out->cpu_busy = j1 > j0 ? (double)(b1 - b0) / (double)(j1 - j0) : -1;
    if (c_first * 10 > total)
        fprintf(stderr, "%s: warning: %" PRId64 " of %" PRId64
                        " records were committed before the first look\n",
                name, c_first, total);
    rc = 0;
fail:
    if (pid > 0)
        out->cpu_child = stop_child(pid, stop_sig);
    rd_kafka_destroy(watch);
    return rc;
}

/* ---- the pass-through (child) ----------------------------------------- */

typedef struct pt_s {
    rd_kafka_t *consumer, *producer;
    bool txn_open;
    double txn_start;
    long txn_records;
} pt_t;

static void pt_die(const char *what, rd_kafka_error_t *err)
{
    fprintf(stderr, "passthrough: %s: %s\n", what, rd_kafka_error_string(err));
    exit(1); /* the bench counts on a clean run: any error voids it */
}

/* Commits the open transaction with the consumer's positions, as the
 * processor does. */
static void pt_commit(pt_t *pt)
{
    rd_kafka_topic_partition_list_t *offsets = NULL, *valid;
    rd_kafka_error_t *err;
    if (!pt->txn_open)
        return;
    if (rd_kafka_assignment(pt->consumer, &offsets) == 0) {
        rd_kafka_position(pt->consumer, offsets);
        valid = rd_kafka_topic_partition_list_new(offsets->cnt);
        for (int i = 0; i < offsets->cnt; i++)
            if (offsets->elems[i].offset >= 0)
                rd_kafka_topic_partition_list_add(valid, offsets->elems[i].topic,
                                                  offsets->elems[i].partition)
                    ->offset = offsets->elems[i].offset;
        rd_kafka_topic_partition_list_destroy(offsets);
        if (valid->cnt > 0) {
            rd_kafka_consumer_group_metadata_t *cgmd =
                rd_kafka_consumer_group_metadata(pt->consumer);
            err = rd_kafka_send_offsets_to_transaction(pt->producer, valid, cgmd, -1);
            rd_kafka_consumer_group_metadata_destroy(cgmd);
            if (err)
                pt_die("send_offsets_to_transaction", err);
        }
        rd_kafka_topic_partition_list_destroy(valid);
    }
    if ((err = rd_kafka_commit_transaction(pt->producer, -1)))
        pt_die("commit_transaction", err);
    pt->txn_open = false;
}

static void on_pt_rebalance(rd_kafka_t *rk, rd_kafka_resp_err_t err,
                            rd_kafka_topic_partition_list_t *parts, void *opaque)
{
    pt_t *pt = opaque;
    rd_kafka_error_t *rerr = NULL;
    /* Whatever is open belongs to the old assignment: commit it first. */
    pt_commit(pt);
    if (err == RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS)
        rerr = rd_kafka_incremental_assign(rk, parts);
    else if (err == RD_KAFKA_RESP_ERR__REVOKE_PARTITIONS)
        rerr = rd_kafka_incremental_unassign(rk, parts);
    if (rerr)
        pt_die("rebalance", rerr);
}

static void on_pt_signal(int sig)
{
    (void)sig;
    stopping = 1;
}

static int passthrough_main(int argc, char **argv)
{
    pt_t pt = {0};
    rd_kafka_topic_partition_list_t *sub;
    rd_kafka_error_t *err;
    char errstr[512];
    const char *in, *out, *group, *txid;
    long total = 0;

    if (argc != 7) {
        fprintf(stderr, "usage: processor passthrough BOOTSTRAP IN OUT GROUP TXID\n");
        return 2;
    }
    bootstrap = argv[2];
    in = argv[3];
    out = argv[4];
    group = argv[5];
    txid = argv[6];
    signal(SIGTERM, on_pt_signal);
    signal(SIGINT, on_pt_signal);

    /* The processor's producer settings (pr_processor.c make_handles). */
    const char *const pkv[] = {"transactional.id", txid, "enable.idempotence", "true",
                               "transaction.timeout.ms", "10000", "linger.ms", "2",
                               "message.max.bytes", "8388608", "compression.codec", "lz4",
                               NULL};
    if (!(pt.producer = client(RD_KAFKA_PRODUCER, pkv)))
        return 1;
    if ((err = rd_kafka_init_transactions(pt.producer, 60000)))
        pt_die("init_transactions", err);

    /* And its consumer settings. */
    const fl_kafka_kv_t ckv[] = {{"group.id", group},
                                 {"partition.assignment.strategy", "cooperative-sticky"},
                                 {"isolation.level", "read_committed"},
                                 {"enable.auto.commit", "false"},
                                 {"enable.auto.offset.store", "false"},
                                 {"auto.offset.reset", "earliest"},
                                 {"session.timeout.ms", "10000"},
                                 {"heartbeat.interval.ms", "1000"},
                                 {NULL, NULL}};
    fl_kafka_spec_t ks = {.type = RD_KAFKA_CONSUMER,
                          .what = "passthrough consumer",
                          .bootstrap = bootstrap,
                          .defaults = ckv,
                          .opaque = &pt,
                          .on_rebalance = on_pt_rebalance};
    if (!(pt.consumer = fl_kafka_new(&ks, errstr, sizeof errstr)))
        goto fail_conf;
    sub = rd_kafka_topic_partition_list_new(1);
    rd_kafka_topic_partition_list_add(sub, in, RD_KAFKA_PARTITION_UA);
    if (rd_kafka_subscribe(pt.consumer, sub) != 0) {
        fprintf(stderr, "passthrough: cannot subscribe to %s\n", in);
        return 1;
    }
    rd_kafka_topic_partition_list_destroy(sub);

    while (!stopping) {
        int wait = 100;
        if (pt.txn_open) {
            double left = pt.txn_start + COMMIT_MS / 1000.0 - now_s();
            wait = left < 0 ? 0 : (int)(left * 1000);
        }
        rd_kafka_message_t *msg = rd_kafka_consumer_poll(pt.consumer, wait);
        if (msg && !msg->err) {
            if (!pt.txn_open) {
                if ((err = rd_kafka_begin_transaction(pt.producer)))
                    pt_die("begin_transaction", err);
                pt.txn_open = true;
                pt.txn_start = now_s();
                pt.txn_records = 0;
            }
            for (;;) {
                rd_kafka_resp_err_t perr = rd_kafka_producev(
                    pt.producer, RD_KAFKA_V_TOPIC(out), RD_KAFKA_V_PARTITION(msg->partition),
                    RD_KAFKA_V_KEY(msg->key, msg->key_len),
                    RD_KAFKA_V_VALUE(msg->payload, msg->len),
                    RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_END);
                if (perr == RD_KAFKA_RESP_ERR__QUEUE_FULL) {
                    rd_kafka_poll(pt.producer, 10);
                    continue;
                }
                if (perr) {
                    fprintf(stderr, "passthrough: produce: %s\n", rd_kafka_err2str(perr));
                    return 1;
                }
                break;
            }
            pt.txn_records++;
            total++;
        } else if (msg && msg->err != RD_KAFKA_RESP_ERR__PARTITION_EOF) {
            fprintf(stderr, "passthrough: consumer: %s\n", rd_kafka_message_errstr(msg));
        }
        if (msg)
            rd_kafka_message_destroy(msg);
        rd_kafka_poll(pt.producer, 0);
        if (pt.txn_open && (now_s() - pt.txn_start >= COMMIT_MS / 1000.0 ||
                            pt.txn_records >= COMMIT_RECORDS))
            pt_commit(&pt);
    }
    pt_commit(&pt);
    rd_kafka_consumer_close(pt.consumer);
    rd_kafka_destroy(pt.consumer);
    rd_kafka_destroy(pt.producer);
    fprintf(stderr, "passthrough: %ld records, stopped cleanly\n", total);
    return 0;
fail_conf:
    fprintf(stderr, "passthrough: %s\n", errstr);
    return 1;
}

/* ---- throughput ------------------------------------------------------- */

static void unique_prefix(const char *what, int round, char *buf, size_t size)
{
    snprintf(buf, size, "bench-%s-%d-%ld-%d", what, (int)getpid(), (long)time(NULL), round);
}

static int check_count(const char *topic, int nparts, long want)
{
    double secs;
    long n = read_topic(topic, nparts, &secs);
    if (n != want) {
        fprintf(stderr, "%s holds %ld committed records, expected %ld\n", topic, n, want);
        return -1;
    }
    return 0;
}

/* Appends the words of $FL_BENCH_PROCESSOR_ARGS to the processor's argv
 * (for tuning runs: "--commit.interval.ms 50", "--http.port 18081"; later
 * flags win). The words live in a static copy. */
static void add_extra_args(char **argv, int size)
{
    static char words[1024];
    const char *env = getenv("FL_BENCH_PROCESSOR_ARGS");
    int n = 0;
    if (!env)
        return;
    snprintf(words, sizeof words, "%s", env);
    while (argv[n])
        n++;
    for (char *save = NULL, *w = strtok_r(words, " ", &save); w && n < size - 1;
         w = strtok_r(NULL, " ", &save))
        argv[n++] = w;
    argv[n] = NULL;
}

static int throughput(long nflush, int rounds)
{
    double pt_rate[MAX_ROUNDS], pr_rate[MAX_ROUNDS], cmds_per_flush = 0;

    printf("processor: %ld flushes (1-4 incr/replace commands, %d documents), %d partitions, "
           "%d rounds\n",
           nflush, NDOCS, NPARTITIONS, rounds);
    for (int r = 0; r < rounds; r++) {
        char prefix[128], group_pt[160], group_pr[160], tx_pt[160], tx_pr[160], nparts_s[16];
        char in[FL_TOPIC_NAME_MAX + 1], out[FL_TOPIC_NAME_MAX + 1], ev[FL_TOPIC_NAME_MAX + 1];
        char log_pt[128], log_pr[128];
        run_t rp, rr;
        long ncmds;
        double t0;

        unique_prefix("proc", r, prefix, sizeof prefix);
        snprintf(group_pt, sizeof group_pt, "%s-pt", prefix);
        snprintf(group_pr, sizeof group_pr, "%s-proc", prefix);
        snprintf(tx_pt, sizeof tx_pt, "%s-pt-tx", prefix);
        snprintf(tx_pr, sizeof tx_pr, "%s-proc-tx", prefix);
        snprintf(log_pt, sizeof log_pt, "%s/passthrough-%d.log", logdir, r);
        snprintf(log_pr, sizeof log_pr, "%s/processor-%d.log", logdir, r);
        snprintf(nparts_s, sizeof nparts_s, "%d", NPARTITIONS);
        fl_topic_name(prefix, FL_TOPIC_COMMANDS, in, sizeof in);
        fl_topic_name(prefix, FL_TOPIC_EVENTS, ev, sizeof ev);
        snprintf(out, sizeof out, "%s.passthrough", prefix);

        if (create_topics(prefix, NPARTITIONS, "passthrough") != 0)
            return -1;
        t0 = now_s();
        if ((ncmds = preload(prefix, nflush)) < 0)
            return -1;
        cmds_per_flush = (double)ncmds / (double)nflush;
        fprintf(stderr, "round %d: preloaded %ld flushes (%ld commands) into %s in %.1f s\n",
                r + 1, nflush, ncmds, in, now_s() - t0);

        char *const argv_pt[] = {self_exe, "passthrough", (char *)bootstrap, in, out, group_pt,
                                 tx_pt, NULL};
        char *argv_pr[32] = {processor_bin, "--bootstrap", (char *)bootstrap, "--prefix",
                             prefix, "--partitions", nparts_s, "--group.id", group_pr,
                             "--transactional.id", tx_pr, "--http.port", "-1", NULL};
        add_extra_args(argv_pr, 32);
        /* Alternate the order so that neither side always runs second. */
        for (int side = 0; side < 2; side++) {
            bool do_pt = (side == 0) == (r % 2 == 0);
            if (do_pt) {
                if (measured_run("pass-through", argv_pt, log_pt, group_pt, in, NPARTITIONS,
                                 nflush, SIGTERM, &rp) != 0 ||
                    check_count(out, NPARTITIONS, nflush) != 0)
                    return -1;
            } else {
                if (measured_run("processor", argv_pr, log_pr, group_pr, in, NPARTITIONS,
                                 nflush, SIGTERM, &rr) != 0 ||
                    check_count(ev, NPARTITIONS, nflush) != 0)
                    return -1;
            }
        }
        pt_rate[r] = rp.rate;
        pr_rate[r] = rr.rate;
        printf("round %d: pass-through %.0f records/s (%.2f s, first commit %.1f s after start, "
               "child %.1f CPU s, machine %.0f%% busy); processor %.0f flushes/s (%.2f s, first "
               "commit %.1f s after start, child %.1f CPU s, machine %.0f%% busy); ratio %.2f\n",
               r + 1, rp.rate, rp.secs, rp.startup, rp.cpu_child, rp.cpu_busy * 100, rr.rate,
               rr.secs, rr.startup, rr.cpu_child, rr.cpu_busy * 100, rr.rate / rp.rate);
        fflush(stdout);
        delete_topics();
    }
    double m_pt = median(pt_rate, rounds), m_pr = median(pr_rate, rounds);
    printf("median of %d rounds: pass-through %.0f records/s = %.0f commands/s; processor %.0f "
           "flushes/s = %.0f commands/s (%.2f commands per flush); bar >= 0.7: %s\n",
           rounds, m_pt, m_pt * cmds_per_flush, m_pr, m_pr * cmds_per_flush, cmds_per_flush,
           m_pr / m_pt >= 0.7 ? "met" : "NOT met");
    printf("processor: %.0f flushes/s exactly-once (pass-through %.0f/s, ratio %.2f)\n", m_pr,
           m_pt, m_pr / m_pt);
    return 0;
}

/* ---- restore ---------------------------------------------------------- */

/* Waits for "partition 0 restored: D documents, E events from offset O in
 * T ms" in logpath. 0 with the figures, or -1 at the deadline or when the
 * child exits. */
static int wait_restored(pid_t pid, const char *logpath, unsigned *docs, unsigned long long *events,
                         long long *ms)
{
    double deadline = now_s() + RESTORE_WAIT_S;
    char line[1024];
    while (now_s() < deadline) {
        FILE *f = fopen(logpath, "r");
        int status;
        while (f && fgets(line, sizeof line, f)) {
            const char *p = strstr(line, "partition 0 restored: ");
            long long from;
            if (p && sscanf(p, "partition 0 restored: %u documents, %llu events from offset %lld "
                               "in %lld ms",
                            docs, events, &from, ms) == 4) {
                fclose(f);
                return 0;
            }
        }
        if (f)
            fclose(f);
        if (waitpid(pid, &status, WNOHANG) == pid) {
            forget_child(pid);
            fprintf(stderr, "the restoring processor exited (status %d); see %s\n", status,
                    logpath);
            return -1;
        }
        sleep_ms(50);
    }
    fprintf(stderr, "no restore line within %d s; see %s\n", RESTORE_WAIT_S, logpath);
    return -1;
}

static int restore(long nflush, int rounds)
{
    char prefix[128], group[160], tx[160], logpath[128], in[FL_TOPIC_NAME_MAX + 1];
    char ev[FL_TOPIC_NAME_MAX + 1];
    double rs_rate[MAX_ROUNDS], rd_rate[MAX_ROUNDS], secs, t0;
    long ncmds, nread;
    run_t rr;

    unique_prefix("restore", 0, prefix, sizeof prefix);
    snprintf(group, sizeof group, "%s-proc", prefix);
    fl_topic_name(prefix, FL_TOPIC_COMMANDS, in, sizeof in);
    fl_topic_name(prefix, FL_TOPIC_EVENTS, ev, sizeof ev);
    printf("restore: %ld events of %d documents in one events partition, %d rounds\n", nflush,
           NDOCS, rounds);
    if (create_topics(prefix, 1, NULL) != 0)
        return -1;
    t0 = now_s();
    if ((ncmds = preload(prefix, nflush)) < 0)
        return -1;
    fprintf(stderr, "preloaded %ld flushes (%ld commands) into %s in %.1f s\n", nflush, ncmds, in,
            now_s() - t0);

    /* Snapshots off: no document reaches the version threshold and no
     * round (hence no checkpoint) happens, so a restore replays every
     * event. A short session lets the next instance take over soon. */
    const char *common[] = {"--bootstrap", bootstrap, "--prefix", prefix, "--partitions", "1",
                            "--group.id", group, "--http.port", "-1",
                            "--snapshot.every.versions", "100000000", "--snapshot.interval.ms",
                            "1d", "--session.timeout.ms", "6s"};
    enum { NCOMMON = sizeof common / sizeof common[0] };
    char *argv[NCOMMON + 24];
    argv[0] = processor_bin;
    memcpy(argv + 1, common, sizeof common);
    argv[NCOMMON + 1] = "--transactional.id";
    argv[NCOMMON + 2] = tx;
    argv[NCOMMON + 3] = NULL;
    add_extra_args(argv, NCOMMON + 24);

    snprintf(tx, sizeof tx, "%s-writer", prefix);
    snprintf(logpath, sizeof logpath, "%s/restore-writer.log", logdir);
    /* SIGKILL, not SIGTERM: a drain would write a snapshot round and a
     * checkpoint, and the restore would read almost nothing. */
    if (measured_run("processor (writing the history)", argv, logpath, group, in, 1, nflush,
                     SIGKILL, &rr) != 0)
        return -1;
    fprintf(stderr, "history written at %.0f flushes/s, writer killed\n", rr.rate);

    for (int r = 0; r < rounds; r++) {
        unsigned docs;
        unsigned long long events;
        long long ms;
        pid_t pid;

        if ((nread = read_topic(ev, 1, &secs)) != nflush) {
            fprintf(stderr, "%s holds %ld committed records, expected %ld\n", ev, nread, nflush);
            return -1;
        }
        rd_rate[r] = (double)nread / secs;

        /* A fresh instance in the same group: it gets partition 0 once the
         * killed one's session expired, and restores it before consuming. */
        snprintf(tx, sizeof tx, "%s-restorer-%d", prefix, r);
        snprintf(logpath, sizeof logpath, "%s/restore-%d.log", logdir, r);
        if ((pid = spawn(argv, logpath)) < 0)
            return -1;
        if (wait_restored(pid, logpath, &docs, &events, &ms) != 0) {
            keep_logs = true;
            stop_child(pid, SIGKILL);
            return -1;
        }
        stop_child(pid, SIGKILL);
        if (events != (unsigned long long)nflush)
            fprintf(stderr, "warning: restored %llu events, the partition holds %ld\n", events,
                    nflush);
        rs_rate[r] = ms > 0 ? (double)events * 1000.0 / (double)ms : 0;
        printf("round %d: restore %llu events, %u documents in %lld ms = %.0f events/s; plain "
               "read %ld records in %.3f s = %.0f records/s; ratio %.2f\n",
               r + 1, events, docs, ms, rs_rate[r], nread, secs, rd_rate[r],
               rs_rate[r] / rd_rate[r]);
        fflush(stdout);
    }
    double m_rs = median(rs_rate, rounds), m_rd = median(rd_rate, rounds);
    printf("median of %d rounds: restore %.0f events/s, plain read %.0f records/s; bar >= "
           "200000 events/s: %s\n",
           rounds, m_rs, m_rd, m_rs >= 200000 ? "met" : "NOT met");
    printf("restore: %.0f events/s (plain read %.0f/s, ratio %.2f)\n", m_rs, m_rd, m_rs / m_rd);
    return 0;
}

/* ---- main ------------------------------------------------------------- */

static void cleanup(void)
{
    kill_children();
    delete_topics();
    if (logdir[0] && !keep_logs) {
        char cmd[128];
        snprintf(cmd, sizeof cmd, "rm -rf '%s'", logdir);
        if (system(cmd) != 0)
            fprintf(stderr, "could not remove %s\n", logdir);
    } else if (logdir[0]) {
        fprintf(stderr, "logs kept in %s\n", logdir);
    }
}

static long arg_long(int argc, char **argv, int i, long def, long min, long max)
{
    if (i >= argc)
        return def;
    char *end;
    long v = strtol(argv[i], &end, 10);
    if (*end || v < min || v > max) {
        fprintf(stderr, "bad argument \"%s\" (%ld..%ld)\n", argv[i], min, max);
        exit(2);
    }
    return v;
}

int main(int argc, char **argv)
{
    const char *mode = argc > 1 && !strchr("0123456789", argv[1][0]) ? argv[1] : "throughput";
    int first = mode == argv[1] ? 2 : 1, rc;
    ssize_t n;

    fl_log_init("bench", FL_LOG_WARN);
    if (strcmp(mode, "passthrough") == 0)
        return passthrough_main(argc, argv);
    if (strcmp(mode, "throughput") != 0 && strcmp(mode, "restore") != 0) {
        fprintf(stderr, "usage: processor [throughput [flushes [rounds]] | restore [events "
                        "[rounds]]]\n");
        return 2;
    }
    if (!(bootstrap = getenv("FLUSHLINE_BOOTSTRAP")) || !*bootstrap) {
        fprintf(stderr, "FLUSHLINE_BOOTSTRAP is not set: scripts/kafka start; "
                        "export $(scripts/kafka env)\n");
        return 2;
    }
    if ((n = readlink("/proc/self/exe", self_exe, sizeof self_exe - 1)) < 0)
        return 2;
    self_exe[n] = '\0';
    if (getenv("FL_PROCESSOR_BIN")) {
        snprintf(processor_bin, sizeof processor_bin, "%s", getenv("FL_PROCESSOR_BIN"));
    } else {
        char dir[PATH_MAX];
        snprintf(dir, sizeof dir, "%s", self_exe);
        snprintf(processor_bin, sizeof processor_bin, "%s/../bin/flushline-processor",
                 dirname(dir));
    }
    if (access(processor_bin, X_OK) != 0) {
        fprintf(stderr, "no processor at %s (cmake --build build-bench --target "
                        "flushline-processor, or set FL_PROCESSOR_BIN)\n",
                processor_bin);
        return 2;
    }
    snprintf(logdir, sizeof logdir, "/tmp/flbench.XXXXXX");
    if (!mkdtemp(logdir)) {
        logdir[0] = '\0';
        return 2;
    }
    signal(SIGINT, on_fatal_signal);
    signal(SIGTERM, on_fatal_signal);
    signal(SIGALRM, on_fatal_signal);
    alarm(HARD_LIMIT_S);
    atexit(cleanup);

    if (strcmp(mode, "throughput") == 0)
        rc = throughput(arg_long(argc, argv, first, 200000, 1000, 10000000),
                        (int)arg_long(argc, argv, first + 1, 3, 1, MAX_ROUNDS));
    else
        rc = restore(arg_long(argc, argv, first, 300000, 1000, 10000000),
                     (int)arg_long(argc, argv, first + 1, 3, 1, MAX_ROUNDS));
    if (rc != 0) {
        keep_logs = true;
        fprintf(stderr, "bench/processor %s: failed\n", mode);
    }
    return rc == 0 ? 0 : 1;
}
