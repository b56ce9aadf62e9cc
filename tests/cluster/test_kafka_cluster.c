/* SPDX-License-Identifier: Apache-2.0 */
/*
 * scripts/kafka as a cluster: `start --brokers 3` in a state folder of its
 * own (free ports; the jars from FLUSHLINE_KAFKA_CACHE or fetched), then the
 * fault commands the cluster tests use, each checked from outside:
 * - `env` names three distinct 127.0.0.1 brokers; kcat's metadata lists the
 *   three, at those addresses; `status` says each runs;
 * - `flushline topics create --replication-factor 3` makes topics whose
 *   partitions have three replicas, all in sync; an acks=all produce is
 *   acknowledged;
 * - `kill 2`: its JVM is gone at once (/proc), `status` fails naming it;
 *   the cluster fences it (metadata lists 2 brokers) and acks=all produces
 *   go on (min.insync.replicas 2 of RF 3);
 * - `restart 2`: it rejoins on the same ports: every node's metadata lists
 *   three brokers again and the topic's replicas are all back in sync;
 * - `pause 3`: the JVM is stopped (state T), `status` says paused; the
 *   cluster fences it and produces go on; `resume 3`: it rejoins;
 * - `restart 1` (a running node, SIGTERM): it rejoins;
 * - two nodes killed: an acks=all produce is not acknowledged; `restart`
 *   of one of them: produces are acknowledged again;
 * - `stop` with a node paused: every JVM of the folder is gone, `status`
 *   exits 3; `stop` again is harmless.
 * Each fault's time to the next acknowledged produce is printed.
 */
#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <librdkafka/rdkafka.h>

#include "fl_kbroker.h"
#include "fl_proc.h"
#include "fl_test.h"
#include "flushline/log.h"

static const char *dir; /* scripts/kafka's state folder (tests/util/fl_kbroker.h) */
static char bootstrap[512], prefix[64], topic[128];
static int ports[3];

#define kafka fl_kbroker
#define output fl_kbroker_output
#define show_output fl_kbroker_show_output

/* Runs a shell command, its stdout in a malloc'd string. */
static char *capture(const char *cmd)
{
    FILE *fp = popen(cmd, "r");
    char *buf = NULL;
    size_t len = 0, cap = 0, r;
    if (!fp)
        return NULL;
    do {
        if (len + 4097 > cap)
            buf = realloc(buf, cap = cap ? 2 * cap : 8192);
        r = fread(buf + len, 1, cap - len - 1, fp);
        len += r;
    } while (r > 0);
    buf[len] = '\0';
    pclose(fp);
    return buf;
}

/* kcat's metadata as node `node` (1..3) or the whole bootstrap (0) sees it. */
static char *metadata(int node, const char *what)
{
    char cmd[1200], bs[64];
    if (node)
        snprintf(bs, sizeof bs, "127.0.0.1:%d", ports[node - 1]);
    snprintf(cmd, sizeof cmd, "kcat -b '%s' -L -m 5 %s 2>/dev/null", node ? bs : bootstrap,
             what ? what : "");
    return capture(cmd);
}

/* The broker ids node `node`'s metadata lists, as a bit set (0: none). */
static unsigned brokers_seen(int node)
{
    char *md = metadata(node, NULL);
    unsigned set = 0;
    for (int id = 1; md && id <= 3; id++) {
        char want[64];
        snprintf(want, sizeof want, "broker %d at 127.0.0.1:%d", id, ports[id - 1]);
        if (strstr(md, want))
            set |= 1u << id;
    }
    free(md);
    return set;
}

typedef struct seen_s {
    int node;
    unsigned want;
} seen_t;

static bool sees(void *arg)
{
    const seen_t *s = arg;
    return brokers_seen(s->node) == s->want;
}

/* Every partition of the topic has 3 replicas and `isr` of them in sync. */
static bool topic_in_sync(void *arg)
{
    int want = *(int *)arg, parts = 0;
    char *md, args[200];
    snprintf(args, sizeof args, "-t '%s'", topic);
    md = metadata(0, args);
    if (!md)
        return false;
    bool ok = true;
    for (char *p = md; (p = strstr(p, "partition ")); p++) {
        int r1, r2, r3, i1 = 0, i2 = 0, i3 = 0, n;
        char *rep = strstr(p, "replicas: "), *isrs = strstr(p, "isrs: ");
        if (!rep || !isrs)
            break;
        if (sscanf(rep, "replicas: %d,%d,%d", &r1, &r2, &r3) != 3)
            ok = false;
        n = sscanf(isrs, "isrs: %d,%d,%d", &i1, &i2, &i3);
        if (n != want)
            ok = false;
        parts++;
    }
    free(md);
    return ok && parts == 3;
}

static void on_delivery(rd_kafka_t *rk, const rd_kafka_message_t *msg, void *opaque)
{
    (void)rk;
    (void)opaque;
    *(rd_kafka_resp_err_t *)msg->_private = msg->err; /* the message's opaque */
}

/* One acks=all idempotent produce to partition part of the topic, waited
 * for: the delivery report's error (NO_ERROR when acknowledged). */
static rd_kafka_resp_err_t produce_one(int part, int timeout_ms)
{
    char err[256], tmo[32];
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    rd_kafka_resp_err_t result = RD_KAFKA_RESP_ERR__IN_PROGRESS;
    rd_kafka_t *rk;
    snprintf(tmo, sizeof tmo, "%d", timeout_ms);
    if (rd_kafka_conf_set(conf, "bootstrap.servers", bootstrap, err, sizeof err) ||
        rd_kafka_conf_set(conf, "acks", "all", err, sizeof err) ||
        rd_kafka_conf_set(conf, "enable.idempotence", "true", err, sizeof err) ||
        rd_kafka_conf_set(conf, "message.timeout.ms", tmo, err, sizeof err) ||
        rd_kafka_conf_set(conf, "log_level", "2", err, sizeof err)) {
        rd_kafka_conf_destroy(conf);
        return RD_KAFKA_RESP_ERR__INVALID_ARG;
    }
    rd_kafka_conf_set_dr_msg_cb(conf, on_delivery);
    if (!(rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, err, sizeof err)))
        return RD_KAFKA_RESP_ERR__FAIL;
    if (rd_kafka_producev(rk, RD_KAFKA_V_TOPIC(topic), RD_KAFKA_V_PARTITION(part),
                          RD_KAFKA_V_VALUE("x", 1), RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
                          RD_KAFKA_V_OPAQUE(&result), RD_KAFKA_V_END) != 0)
        result = RD_KAFKA_RESP_ERR__FAIL;
    else
        rd_kafka_flush(rk, timeout_ms + 5000); /* serves the delivery report */
    rd_kafka_destroy(rk);
    return result;
}

/* An acks=all produce to every partition is acknowledged. */
static bool all_acknowledged(void *arg)
{
    (void)arg;
    for (int p = 0; p < 3; p++)
        if (produce_one(p, 5000) != RD_KAFKA_RESP_ERR_NO_ERROR)
            return false;
    return true;
}

/* Processes whose command line names our folder (the JVMs' config paths). */
static int processes_of(const char *needle)
{
    DIR *d = opendir("/proc");
    struct dirent *e;
    int n = 0;
    if (!d)
        return -1;
    while ((e = readdir(d))) {
        char path[300], buf[8192];
        if (e->d_name[0] < '0' || e->d_name[0] > '9')
            continue;
        snprintf(path, sizeof path, "/proc/%s/stat", e->d_name);
        FILE *fp = fopen(path, "r");
        if (!fp)
            continue;
        size_t r = fread(buf, 1, sizeof buf - 1, fp);
        fclose(fp);
        buf[r] = '\0';
        const char *rp = strrchr(buf, ')');
        if (rp && rp[1] == ' ' && rp[2] == 'Z')
            continue; /* a zombie is gone */
        snprintf(path, sizeof path, "/proc/%s/cmdline", e->d_name);
        if (!(fp = fopen(path, "r")))
            continue;
        r = fread(buf, 1, sizeof buf - 1, fp);
        fclose(fp);
        for (size_t i = 0; i < r; i++)
            if (!buf[i])
                buf[i] = ' ';
        buf[r] = '\0';
        if (strstr(buf, needle) && strstr(buf, "kafka.Kafka")) {
            n++;
        }
    }
    closedir(d);
    return n;
}

static int node_processes(int node)
{
    char needle[320];
    snprintf(needle, sizeof needle, "%s/node-%d/server.properties", dir, node);
    return processes_of(needle);
}

/* The state letter of node's JVM in /proc/<pid>/stat ('-': no pid file). */
static char node_state(int node)
{
    char path[320], buf[1024], *t, state = '?';
    size_t len;
    snprintf(path, sizeof path, "%s/node-%d/kafka.pid", dir, node);
    if (!(t = fl_test_read_file(path, &len)))
        return '-';
    snprintf(path, sizeof path, "/proc/%d/stat", atoi(t));
    free(t);
    FILE *fp = fopen(path, "r"); /* /proc files have no size: read, not stat */
    if (fp) {
        size_t r = fread(buf, 1, sizeof buf - 1, fp);
        buf[r] = '\0';
        fclose(fp);
        const char *rp = strrchr(buf, ')');
        if (rp && rp[1] == ' ')
            state = rp[2];
    }
    return state;
}

static bool output_has(const char *needle)
{
    char *o = output();
    bool has = strstr(o, needle) != NULL;
    free(o);
    return has;
}

#define WAIT_MS 120000 /* a busy 2-core machine: generous, never a fixed sleep */

static void test_start_three(void)
{
    int64_t t0 = fl_test_now_ms();
    if (kafka("start --brokers 3") != 0) {
        show_output();
        FL_FAIL_("scripts/kafka start --brokers 3 failed");
    }
    printf("  start --brokers 3: %lld ms (fresh folder, three nodes formatted)\n",
           (long long)(fl_test_now_ms() - t0));
    ASSERT_EQ(kafka("env"), 0);
    char *o = output();
    int n = sscanf(o, "FLUSHLINE_BOOTSTRAP=127.0.0.1:%d,127.0.0.1:%d,127.0.0.1:%d", &ports[0],
                   &ports[1], &ports[2]);
    snprintf(bootstrap, sizeof bootstrap, "%.*s", (int)strcspn(o + 20, "\n"), o + 20);
    free(o);
    ASSERT_EQ(n, 3);
    ASSERT_TRUE(ports[0] != ports[1] && ports[1] != ports[2] && ports[0] != ports[2]);
    printf("  bootstrap %s\n", bootstrap);
    /* each node's own view and the bootstrap's: three brokers at those ports */
    for (int node = 0; node <= 3; node++)
        ASSERT_EQ(brokers_seen(node), 0xeu);
    char *md = metadata(0, NULL);
    bool three = md && strstr(md, " 3 brokers:");
    free(md);
    ASSERT_TRUE(three);
    ASSERT_EQ(kafka("status"), 0);
    for (int node = 1; node <= 3; node++) {
        char want[64];
        snprintf(want, sizeof want, "node %d: running at 127.0.0.1:%d", node, ports[node - 1]);
        ASSERT_TRUE(output_has(want));
        ASSERT_EQ(node_processes(node), 1);
    }
    /* starting again is harmless: same processes, same ports */
    ASSERT_EQ(kafka("start"), 0);
    ASSERT_TRUE(output_has("already running"));
}

static void test_replicated_topic(void)
{
    char cmd[1200];
    int three = 3;
    fl_test_unique("ctest", prefix, sizeof prefix);
    snprintf(topic, sizeof topic, "%s.commands", prefix);
    snprintf(cmd, sizeof cmd,
             "'%s/bin/flushline' topics create --bootstrap '%s' --prefix '%s' --partitions 3 "
             "--replication-factor 3 >'%s' 2>&1",
             getenv("FL_BINARY_DIR"), bootstrap, prefix, fl_kbroker_outfile());
    if (system(cmd) != 0) {
        show_output();
        FL_FAIL_("flushline topics create --replication-factor 3 failed");
    }
    ASSERT_TRUE(fl_wait_until(topic_in_sync, &three, WAIT_MS));
    ASSERT_EQ(produce_one(0, 10000), RD_KAFKA_RESP_ERR_NO_ERROR);
    ASSERT_TRUE(all_acknowledged(NULL));
}

static void test_kill_restart(void)
{
    int64_t t0 = fl_test_now_ms();
    ASSERT_EQ(kafka("kill 2"), 0);
    ASSERT_EQ(node_processes(2), 0); /* gone when the command returns */
    ASSERT_NE(kafka("status"), 0);
    ASSERT_TRUE(output_has("node 2: not running"));
    ASSERT_TRUE(output_has("node 1: running"));
    /* fenced by the others; produces go on with two of three in sync */
    seen_t fenced = {.node = 1, .want = (1u << 1) | (1u << 3)};
    ASSERT_TRUE(fl_wait_until(sees, &fenced, WAIT_MS));
    printf("  kill 2: fenced after %lld ms\n", (long long)(fl_test_now_ms() - t0));
    ASSERT_TRUE(fl_wait_until(all_acknowledged, NULL, WAIT_MS));
    printf("  kill 2: acks=all acknowledged on every partition %lld ms after the kill\n",
           (long long)(fl_test_now_ms() - t0));

    t0 = fl_test_now_ms();
    if (kafka("restart 2") != 0) {
        show_output();
        FL_FAIL_("scripts/kafka restart 2 failed");
    }
    printf("  restart 2: %lld ms until it answered and was listed\n",
           (long long)(fl_test_now_ms() - t0));
    ASSERT_EQ(node_processes(2), 1);
    /* it rejoined: every node lists all three, on the same ports */
    for (int node = 1; node <= 3; node++) {
        seen_t all = {.node = node, .want = 0xeu};
        ASSERT_TRUE(fl_wait_until(sees, &all, WAIT_MS));
    }
    int three = 3;
    ASSERT_TRUE(fl_wait_until(topic_in_sync, &three, WAIT_MS));
    printf("  restart 2: all replicas in sync again after %lld ms\n",
           (long long)(fl_test_now_ms() - t0));
    ASSERT_EQ(kafka("status"), 0);
}

static void test_pause_resume(void)
{
    int64_t t0 = fl_test_now_ms();
    ASSERT_EQ(kafka("pause 3"), 0);
    ASSERT_EQ(node_state(3), 'T');
    ASSERT_NE(kafka("status"), 0);
    ASSERT_TRUE(output_has("node 3: paused"));
    seen_t fenced = {.node = 1, .want = (1u << 1) | (1u << 2)};
    ASSERT_TRUE(fl_wait_until(sees, &fenced, WAIT_MS));
    printf("  pause 3: fenced after %lld ms\n", (long long)(fl_test_now_ms() - t0));
    ASSERT_TRUE(fl_wait_until(all_acknowledged, NULL, WAIT_MS));
    printf("  pause 3: acks=all acknowledged on every partition %lld ms after the pause\n",
           (long long)(fl_test_now_ms() - t0));

    t0 = fl_test_now_ms();
    ASSERT_EQ(kafka("resume 3"), 0);
    ASSERT_TRUE(node_state(3) == 'S' || node_state(3) == 'R');
    for (int node = 1; node <= 3; node++) {
        seen_t all = {.node = node, .want = 0xeu};
        ASSERT_TRUE(fl_wait_until(sees, &all, WAIT_MS));
    }
    int three = 3;
    ASSERT_TRUE(fl_wait_until(topic_in_sync, &three, WAIT_MS));
    printf("  resume 3: listed and in sync again after %lld ms\n",
           (long long)(fl_test_now_ms() - t0));
    ASSERT_EQ(kafka("status"), 0);
}

static void test_graceful_restart(void)
{
    int64_t t0 = fl_test_now_ms();
    char path[320], *before, *after;
    size_t len;
    snprintf(path, sizeof path, "%s/node-1/kafka.pid", dir);
    before = fl_test_read_file(path, &len);
    if (kafka("restart 1") != 0) {
        show_output();
        free(before);
        FL_FAIL_("scripts/kafka restart 1 failed");
    }
    after = fl_test_read_file(path, &len);
    bool new_pid = before && after && strcmp(before, after) != 0;
    free(before);
    free(after);
    ASSERT_TRUE(new_pid);
    ASSERT_EQ(node_processes(1), 1);
    for (int node = 1; node <= 3; node++) {
        seen_t all = {.node = node, .want = 0xeu};
        ASSERT_TRUE(fl_wait_until(sees, &all, WAIT_MS));
    }
    ASSERT_TRUE(fl_wait_until(all_acknowledged, NULL, WAIT_MS));
    printf("  restart 1 (SIGTERM, running node): back and acknowledging in %lld ms\n",
           (long long)(fl_test_now_ms() - t0));
}

static void test_two_down(void)
{
    ASSERT_EQ(kafka("kill 1"), 0);
    ASSERT_EQ(kafka("kill 2"), 0);
    ASSERT_EQ(node_processes(1) + node_processes(2), 0);
    /* one of three: nothing can be acknowledged with acks=all */
    rd_kafka_resp_err_t err = produce_one(0, 8000);
    printf("  two of three down: produce -> %s\n", rd_kafka_err2name(err));
    ASSERT_NE(err, RD_KAFKA_RESP_ERR_NO_ERROR);
    int64_t t0 = fl_test_now_ms();
    if (kafka("restart 1") != 0) {
        show_output();
        FL_FAIL_("scripts/kafka restart 1 failed");
    }
    ASSERT_TRUE(fl_wait_until(all_acknowledged, NULL, WAIT_MS));
    printf("  restart 1 with two down: acknowledging again %lld ms after the restart began\n",
           (long long)(fl_test_now_ms() - t0));
    if (kafka("restart 2") != 0) {
        show_output();
        FL_FAIL_("scripts/kafka restart 2 failed");
    }
    seen_t all = {.node = 0, .want = 0xeu};
    ASSERT_TRUE(fl_wait_until(sees, &all, WAIT_MS));
}

static void test_stop(void)
{
    /* a paused node must not hold stop up (when the cases got this far) */
    if (fl_test_failures == 0)
        ASSERT_EQ(kafka("pause 2"), 0);
    int64_t t0 = fl_test_now_ms();
    ASSERT_EQ(kafka("stop"), 0);
    printf("  stop: %lld ms\n", (long long)(fl_test_now_ms() - t0));
    ASSERT_EQ(processes_of(dir), 0);
    ASSERT_EQ(kafka("status"), 3);
    for (int node = 1; node <= 3; node++) {
        char want[32];
        snprintf(want, sizeof want, "node %d: not running", node);
        ASSERT_TRUE(output_has(want));
    }
    ASSERT_EQ(kafka("stop"), 0);
    ASSERT_NE(kafka("env"), 0);
}

int main(void)
{
    fl_log_init("test", FL_LOG_WARN);
    if (fl_kbroker_init("flushline-cluster") != 0)
        return 1;
    dir = fl_kbroker_dir();
    /* scripts/kafka's own wait for the nodes (90 s by default) is short for
     * three JVMs on a busy 2-core machine; a value set by the caller wins */
    setenv("FLUSHLINE_KAFKA_TIMEOUT", "400", 0);
    /* each case starts from the cluster the one before left: after a
     * failure only stop runs */
    static const struct {
        const char *name;
        fl_test_fn fn;
    } cases[] = {{"test_start_three", test_start_three},
                 {"test_replicated_topic", test_replicated_topic},
                 {"test_kill_restart", test_kill_restart},
                 {"test_pause_resume", test_pause_resume},
                 {"test_graceful_restart", test_graceful_restart},
                 {"test_two_down", test_two_down}};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0] && fl_test_failures == 0; i++)
        fl_test_run(cases[i].name, cases[i].fn);
    RUN(test_stop);
    int rc = fl_test_done();
    if (rc == 0) {
        if (fl_kbroker_remove() != 0)
            fprintf(stderr, "could not remove %s\n", dir);
    } else {
        fprintf(stderr, "state kept in %s\n", dir);
    }
    return rc;
}
