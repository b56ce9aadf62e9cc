/* SPDX-License-Identifier: Apache-2.0 */
/*
 * bench/replay: `flushline replay` over a whole events topic, against a
 * plain read of the same records in the same invocation.
 *
 * A fresh topic set (4 partitions) is preloaded with N flush records (as
 * bench/processor.c does: 256 documents, 4 clients each with contiguous
 * seqs, 1-4 commands, the first an incr so that every flush applies
 * something) and the Release processor turns them into N outcome records
 * in <prefix>.events; it is stopped with SIGTERM once its committed
 * offsets on commands reach N. Then, per round:
 *   - plain read: a read_committed consumer reads every events partition
 *     from its start to its end without decoding (the CLI reader's fetch
 *     settings, with queued.min.messages raised; see read_topic); timed
 *     from the creation of the client, as a CLI process is timed from its
 *     start;
 *   - `flushline replay --prefix P --quiet` (JSON lines), then the same
 *     with --format msgpack: wall time from fork to exit, stdout read
 *     through a pipe (JSON lines are counted: one per outcome).
 * Rates are events per second; the headline is the median of the rounds
 * for JSON and the plain read, and their ratio.
 *
 * Usage: replay [events (300000)] [rounds (3)]. Needs FLUSHLINE_BOOTSTRAP,
 * the processor (FL_PROCESSOR_BIN) and the CLI (FL_CLI_BIN), both by
 * default next to this program in ../bin; bench/replay.sh builds all three
 * and sets them. Children die with the bench, topics are deleted at the
 * end (kept with FL_BENCH_KEEP_TOPICS=1, for profiling the CLI on them),
 * each phase has a deadline. The last stdout line is the headline.
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
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <librdkafka/rdkafka.h>

#include "flushline/kafka.h"
#include "flushline/log.h"
#include "flushline/topics.h"
#include "flushline/wire.h"

#define NPARTITIONS 4
#define NDOCS 256
#define NCLIENTS 4
#define NKEYS 8
#define POLL_MS 50
#define MAX_ROUNDS 9
#define PRELOAD_S 180
#define RUN_S 300
#define READ_S 120
#define HARD_LIMIT_S 1800

static const char *bootstrap;
static char processor_bin[PATH_MAX], cli_bin[PATH_MAX];
static char prefix[128], logdir[64];
static bool topics_made, keep_logs;
static pid_t child;

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

static void on_fatal_signal(int sig)
{
    static const char msg[] = "bench/replay: interrupted or out of time; child killed\n";
    if (child > 0)
        kill(child, SIGKILL);
    if (write(2, msg, sizeof msg - 1) < 0)
        _exit(128 + sig);
    _exit(128 + sig);
}

/* Starts argv[0]: stdout to out_fd (or the log), stderr to logpath. The
 * child dies with us (PR_SET_PDEATHSIG). */
static pid_t spawn(char *const argv[], int out_fd, const char *logpath)
{
    pid_t parent = getpid(), pid;
    int fd = open(logpath, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) {
        fprintf(stderr, "open %s: %s\n", logpath, strerror(errno));
        return -1;
    }
    pid = fork();
    if (pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (getppid() != parent)
            _exit(127);
        dup2(out_fd >= 0 ? out_fd : fd, 1);
        dup2(fd, 2);
        execv(argv[0], argv);
        _exit(127);
    }
    close(fd);
    if (pid < 0)
        fprintf(stderr, "fork: %s\n", strerror(errno));
    else
        child = pid;
    return pid;
}

/* ---- Kafka -------------------------------------------------------------- */

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

static int create_topics(void)
{
    static const char *const kv[] = {NULL};
    fl_topics_spec_t spec;
    fl_topic_state_t st[FL_TOPIC__COUNT];
    char errstr[512];
    rd_kafka_t *rk = client(RD_KAFKA_PRODUCER, kv);
    int rc;
    if (!rk)
        return -1;
    fl_topics_spec_default(&spec);
    spec.prefix = prefix;
    spec.partitions = NPARTITIONS;
    spec.timeout_ms = 30000;
    topics_made = true;
    if ((rc = fl_topics_create(rk, &spec, st, errstr, sizeof errstr)) != 0)
        fprintf(stderr, "creating topics %s.*: %s\n", prefix, errstr);
    rd_kafka_destroy(rk);
    return rc;
}

static void delete_topics(void)
{
    static const char *const kv[] = {NULL};
    rd_kafka_DeleteTopic_t *dt[FL_TOPIC__COUNT];
    char names[FL_TOPIC__COUNT][FL_TOPIC_NAME_MAX + 1];
    rd_kafka_t *rk;
    if (topics_made && getenv("FL_BENCH_KEEP_TOPICS")) {
        fprintf(stderr, "topics kept: --prefix %s\n", prefix);
        return;
    }
    if (!topics_made || !(rk = client(RD_KAFKA_PRODUCER, kv)))
        return;
    rd_kafka_queue_t *q = rd_kafka_queue_new(rk);
    for (int k = 0; k < FL_TOPIC__COUNT; k++) {
        fl_topic_name(prefix, (fl_topic_kind_t)k, names[k], sizeof names[k]);
        dt[k] = rd_kafka_DeleteTopic_new(names[k]);
    }
    rd_kafka_DeleteTopics(rk, dt, FL_TOPIC__COUNT, NULL, q);
    rd_kafka_event_t *ev = rd_kafka_queue_poll(q, 15000);
    if (!ev || rd_kafka_event_error(ev))
        fprintf(stderr, "deleting the bench topics: %s\n",
                ev ? rd_kafka_event_error_string(ev) : "timed out");
    if (ev)
        rd_kafka_event_destroy(ev);
    for (int k = 0; k < FL_TOPIC__COUNT; k++)
        rd_kafka_DeleteTopic_destroy(dt[k]);
    rd_kafka_queue_destroy(q);
    rd_kafka_destroy(rk);
    topics_made = false;
}

static void on_delivery(rd_kafka_t *rk, const rd_kafka_message_t *msg, void *opaque)
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

/* N flush records the way a gateway writes them (see bench/processor.c);
 * the first command of each is an incr, which always applies. Returns the
 * commands in all, or -1. */
static long preload(long nflush)
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
                          .on_delivery = on_delivery};
    rd_kafka_t *rk;
    double deadline = now_s() + PRELOAD_S;

    if (!(rk = fl_kafka_new(&ks, errstr, sizeof errstr))) {
        fprintf(stderr, "preload: %s\n", errstr);
        return -1;
    }
    fl_topic_name(prefix, FL_TOPIC_COMMANDS, topic, sizeof topic);
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
            cmds[j].op = j == 0 || xorshift(&rnd) % 2 ? FL_OP_INCR : FL_OP_REPLACE;
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
    if (!failed && rd_kafka_flush(rk, PRELOAD_S * 1000) != RD_KAFKA_RESP_ERR_NO_ERROR) {
        fprintf(stderr, "preload: not delivered within %d s\n", PRELOAD_S);
        failed++;
    }
    rd_kafka_destroy(rk);
    return failed ? -1 : ncmds;
}

/* Sum of group's committed offsets on topic, or -1 (see bench/processor.c:
 * read_uncommitted, so a transaction's offsets show once it committed). */
static int64_t committed_sum(rd_kafka_t *watch, const char *topic)
{
    rd_kafka_topic_partition_list_t *parts = rd_kafka_topic_partition_list_new(NPARTITIONS);
    int64_t sum = 0;
    for (int p = 0; p < NPARTITIONS; p++)
        rd_kafka_topic_partition_list_add(parts, topic, p);
    if (rd_kafka_committed(watch, parts, 5000) != RD_KAFKA_RESP_ERR_NO_ERROR) {
        sum = -1;
    } else {
        for (int p = 0; p < NPARTITIONS; p++)
            if (parts->elems[p].offset > 0)
                sum += parts->elems[p].offset;
    }
    rd_kafka_topic_partition_list_destroy(parts);
    return sum;
}

/*
 * Reads every partition of topic from its start to its end, read_committed,
 * without decoding, with the CLI reader's fetch settings (cli/history.c)
 * and queued.min.messages 1,000,000 (librdkafka 2.0.2 stops fetching for
 * up to a second when more records than that wait in its queue). Timed
 * from the creation of the client. Returns the records read, or -1.
 */
static long read_topic(const char *topic, double *secs)
{
    char group[96];
    snprintf(group, sizeof group, "bench-replay-reader-%d", (int)getpid());
    const char *const kv[] = {"group.id", group, "isolation.level", "read_committed",
                              "enable.auto.commit", "false", "enable.partition.eof", "true",
                              "fetch.wait.max.ms", "10", "fetch.max.bytes", "67108864",
                              "max.partition.fetch.bytes", "16777216",
                              "queued.max.messages.kbytes", "262144",
                              "queued.min.messages", "1000000", NULL};
    double t0 = now_s(), deadline = t0 + READ_S;
    rd_kafka_t *rk = client(RD_KAFKA_CONSUMER, kv);
    rd_kafka_topic_partition_list_t *parts = rd_kafka_topic_partition_list_new(NPARTITIONS);
    int64_t hi[NPARTITIONS], lo[NPARTITIONS];
    long count = 0;
    int left = 0;

    if (!rk)
        goto fail;
    for (int p = 0; p < NPARTITIONS; p++) {
        if (rd_kafka_query_watermark_offsets(rk, topic, p, &lo[p], &hi[p], 10000) != 0) {
            fprintf(stderr, "watermarks of %s [%d] unavailable\n", topic, p);
            goto fail;
        }
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
        /* Done with a partition once its position passed its end (past
         * the trailing transaction markers too). */
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

/* ---- the history -------------------------------------------------------- */

/* The processor turns the preloaded commands into outcomes; SIGTERM once
 * its committed offsets on commands reach nflush. 0 or -1. */
static int write_history(long nflush)
{
    char group[160], tx[160], logpath[128], in[FL_TOPIC_NAME_MAX + 1], nparts[16];
    const char *const wkv[] = {"group.id", group, "isolation.level", "read_uncommitted",
                               "enable.auto.commit", "false", NULL};
    rd_kafka_t *watch;
    double t0 = now_s(), deadline = t0 + RUN_S;
    int64_t c = 0;
    int status, rc = -1;
    pid_t pid;

    snprintf(group, sizeof group, "%s-proc", prefix);
    snprintf(tx, sizeof tx, "%s-tx", prefix);
    snprintf(logpath, sizeof logpath, "%s/processor.log", logdir);
    snprintf(nparts, sizeof nparts, "%d", NPARTITIONS);
    fl_topic_name(prefix, FL_TOPIC_COMMANDS, in, sizeof in);
    char *const argv[] = {processor_bin, "--bootstrap", (char *)bootstrap, "--prefix", prefix,
                          "--partitions", nparts, "--group.id", group, "--transactional.id", tx,
                          "--http.port", "-1", NULL};
    if (!(watch = client(RD_KAFKA_CONSUMER, wkv)))
        return -1;
    if ((pid = spawn(argv, -1, logpath)) < 0)
        goto fail;
    while ((c = committed_sum(watch, in)) < nflush) {
        if (waitpid(pid, &status, WNOHANG) == pid) {
            child = 0;
            fprintf(stderr, "the processor exited early (status %d); see %s\n", status, logpath);
            keep_logs = true;
            goto fail;
        }
        if (now_s() > deadline) {
            fprintf(stderr, "the processor committed %" PRId64 " of %ld after %d s; see %s\n", c,
                    nflush, RUN_S, logpath);
            keep_logs = true;
            goto fail;
        }
        sleep_ms(POLL_MS);
    }
    fprintf(stderr, "history written: %ld outcomes in %.1f s\n", nflush, now_s() - t0);
    rc = 0;
fail:
    if (child > 0) {
        kill(child, SIGTERM);
        for (int i = 0; i < 600 && waitpid(child, &status, WNOHANG) == 0; i++)
            sleep_ms(50);
        kill(child, SIGKILL);
        waitpid(child, NULL, 0);
        child = 0;
    }
    rd_kafka_destroy(watch);
    return rc;
}

/* Runs `flushline replay --prefix P --quiet [--format msgpack]`, reading
 * its stdout; wall seconds from fork to exit, JSON lines counted. 0 or -1. */
static int run_replay(bool msgpack, double *secs, long *lines)
{
    char logpath[128];
    char *argv[] = {cli_bin, "replay", "--bootstrap", (char *)bootstrap, "--prefix", prefix,
                    "--quiet", msgpack ? "--format" : NULL, "msgpack", NULL};
    static char buf[1 << 20];
    int fds[2], status;
    double t0;
    pid_t pid;

    snprintf(logpath, sizeof logpath, "%s/replay-%s.log", logdir, msgpack ? "msgpack" : "json");
    *lines = 0;
    if (pipe(fds) != 0)
        return -1;
    t0 = now_s();
    if ((pid = spawn(argv, fds[1], logpath)) < 0) {
        close(fds[0]);
        close(fds[1]);
        return -1;
    }
    close(fds[1]);
    for (;;) {
        ssize_t n = read(fds[0], buf, sizeof buf);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        for (const char *p = buf; (p = memchr(p, '\n', (size_t)(buf + n - p))); p++)
            (*lines)++;
    }
    close(fds[0]);
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
        ;
    *secs = now_s() - t0;
    child = 0;
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
        fprintf(stderr, "flushline replay exited with status %d; see %s\n", status, logpath);
        keep_logs = true;
        return -1;
    }
    return 0;
}

static int bench(long nflush, int rounds)
{
    char ev[FL_TOPIC_NAME_MAX + 1];
    double rd[MAX_ROUNDS], rj[MAX_ROUNDS], rm[MAX_ROUNDS], t0;
    long ncmds;

    snprintf(prefix, sizeof prefix, "bench-replay-%d-%ld", (int)getpid(), (long)time(NULL));
    fl_topic_name(prefix, FL_TOPIC_EVENTS, ev, sizeof ev);
    printf("replay: %ld events of %d documents in %d events partitions, %d rounds\n", nflush,
           NDOCS, NPARTITIONS, rounds);
    if (create_topics() != 0)
        return -1;
    t0 = now_s();
    if ((ncmds = preload(nflush)) < 0)
        return -1;
    fprintf(stderr, "preloaded %ld flushes (%ld commands) in %.1f s\n", nflush, ncmds,
            now_s() - t0);
    if (write_history(nflush) != 0)
        return -1;
    for (int r = 0; r < rounds; r++) {
        double s_rd, s_js, s_mp;
        long n_rd, l_js, l_mp;
        if ((n_rd = read_topic(ev, &s_rd)) != nflush) {
            fprintf(stderr, "%s holds %ld committed records, expected %ld\n", ev, n_rd, nflush);
            return -1;
        }
        if (run_replay(false, &s_js, &l_js) != 0 || run_replay(true, &s_mp, &l_mp) != 0)
            return -1;
        if (l_js != nflush) {
            fprintf(stderr, "replay printed %ld lines, expected %ld\n", l_js, nflush);
            return -1;
        }
        rd[r] = (double)n_rd / s_rd;
        rj[r] = (double)nflush / s_js;
        rm[r] = (double)nflush / s_mp;
        printf("round %d: plain read %.3f s = %.0f records/s; replay json %.3f s = %.0f "
               "events/s (ratio %.2f); replay msgpack %.3f s = %.0f events/s (ratio %.2f)\n",
               r + 1, s_rd, rd[r], s_js, rj[r], rj[r] / rd[r], s_mp, rm[r], rm[r] / rd[r]);
        fflush(stdout);
    }
    double m_rd = median(rd, rounds), m_js = median(rj, rounds), m_mp = median(rm, rounds);
    printf("median of %d rounds: plain read %.0f records/s; replay json %.0f events/s, msgpack "
           "%.0f events/s; bar >= 200000 events/s: %s\n",
           rounds, m_rd, m_js, m_mp, m_js >= 200000 ? "met" : "NOT met");
    printf("replay: %.0f events/s (plain read %.0f/s, ratio %.2f)\n", m_js, m_rd, m_js / m_rd);
    return 0;
}

static void cleanup(void)
{
    if (child > 0) {
        kill(child, SIGKILL);
        waitpid(child, NULL, 0);
        child = 0;
    }
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
    char *end;
    long v;
    if (i >= argc)
        return def;
    v = strtol(argv[i], &end, 10);
    if (*end || v < min || v > max) {
        fprintf(stderr, "bad argument \"%s\" (%ld..%ld)\n", argv[i], min, max);
        exit(2);
    }
    return v;
}

/* FL_<env> or <this program's dir>/../bin/<name>, which must be executable. */
static int find_bin(const char *env, const char *name, char *out, size_t size)
{
    char self[PATH_MAX];
    ssize_t n;
    if (getenv(env)) {
        snprintf(out, size, "%s", getenv(env));
    } else {
        if ((n = readlink("/proc/self/exe", self, sizeof self - 1)) < 0)
            return -1;
        self[n] = '\0';
        snprintf(out, size, "%s/../bin/%s", dirname(self), name);
    }
    if (access(out, X_OK) != 0) {
        fprintf(stderr, "no %s at %s (build it, or set %s)\n", name, out, env);
        return -1;
    }
    return 0;
}

int main(int argc, char **argv)
{
    int rc;
    fl_log_init("bench", FL_LOG_WARN);
    if (!(bootstrap = getenv("FLUSHLINE_BOOTSTRAP")) || !*bootstrap) {
        fprintf(stderr, "FLUSHLINE_BOOTSTRAP is not set: scripts/kafka start; "
                        "export $(scripts/kafka env)\n");
        return 2;
    }
    if (find_bin("FL_PROCESSOR_BIN", "flushline-processor", processor_bin, sizeof processor_bin) ||
        find_bin("FL_CLI_BIN", "flushline", cli_bin, sizeof cli_bin))
        return 2;
    snprintf(logdir, sizeof logdir, "/tmp/flbench.XXXXXX");
    if (!mkdtemp(logdir)) {
        logdir[0] = '\0';
        return 2;
    }
    signal(SIGINT, on_fatal_signal);
    signal(SIGTERM, on_fatal_signal);
    signal(SIGALRM, on_fatal_signal);
    signal(SIGPIPE, SIG_IGN);
    alarm(HARD_LIMIT_S);
    atexit(cleanup);
    rc = bench(arg_long(argc, argv, 1, 300000, 1000, 10000000),
               (int)arg_long(argc, argv, 2, 3, 1, MAX_ROUNDS));
    if (rc != 0) {
        keep_logs = true;
        fprintf(stderr, "bench/replay: failed\n");
    }
    return rc == 0 ? 0 : 1;
}
