/* SPDX-License-Identifier: Apache-2.0 */
/*
 * scripts/cluster as a user runs it, with a broker of its own (a fresh run
 * folder, free ports, this build's binaries):
 * - `up` brings up the five parts (broker, two processors, two gateways) and
 *   returns only when each answers /healthz and /readyz; it prints the
 *   gateway URLs and a development token that the gateways accept (an HTTP
 *   flush through each gateway is applied);
 * - `status` exits 0 and names all five healthy; `up` again is harmless
 *   (same pids);
 * - `kill` of one part makes `status` fail; `up` starts just that part;
 * - `down` SIGTERMs everything: the daemons exit cleanly (their logs end with
 *   the drain), no process of the run folder is left (checked in /proc),
 *   `status` says stopped, and `down` again is harmless.
 */
#include <dirent.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "fl_proc.h"
#include "fl_test.h"
#include "flushline/log.h"

static char dir[600], env[2000], outfile[700];
static int ports[4];
static bool up;

static int cluster(const char *args)
{
    char cmd[4000];
    snprintf(cmd, sizeof cmd, "export %s; '%s/scripts/cluster' %s >'%s' 2>&1", env,
             getenv("FL_SOURCE_DIR"), args, outfile);
    int st = system(cmd);
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128;
}

static char *output(void)
{
    size_t len;
    return fl_test_read_file(outfile, &len);
}

static void show_output(void)
{
    char *o = output();
    fprintf(stderr, "%s\n", o ? o : "(none)");
    free(o);
}

static void down_atexit(void)
{
    if (up)
        cluster("down");
}

/* Processes whose command line mentions the run folder (the daemons' flags
 * and the broker's config path do). */
static int processes_of_run(void)
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
        if (strstr(buf, dir) && !strstr(buf, "scripts/cluster")) {
            fprintf(stderr, "left behind: pid %s: %.200s\n", e->d_name, buf);
            n++;
        }
    }
    closedir(d);
    return n;
}

static int http_post(int port, const char *path, const char *token, const char *body, char **resp)
{
    /* curl is in scripts/deps; the answer body goes to *resp */
    char cmd[4000];
    snprintf(cmd, sizeof cmd,
             "curl -s -m 10 -o '%s.body' -w '%%{http_code}' -X POST -H 'Authorization: Bearer %s' "
             "-d '%s' http://127.0.0.1:%d%s",
             outfile, token, body, port, path);
    FILE *fp = popen(cmd, "r");
    char code[16] = "";
    if (!fp)
        return -1;
    if (!fgets(code, sizeof code, fp))
        code[0] = '\0';
    pclose(fp);
    char bpath[800];
    size_t len;
    snprintf(bpath, sizeof bpath, "%s.body", outfile);
    *resp = fl_test_read_file(bpath, &len);
    return atoi(code);
}

static int pid_of(const char *part)
{
    char path[800];
    size_t len;
    snprintf(path, sizeof path, "%s/pids/%s.pid", dir, part);
    char *t = fl_test_read_file(path, &len);
    int pid = t ? atoi(t) : -1;
    free(t);
    return pid;
}

static void test_up_status_down(void)
{
    static const char *const parts[] = {"processor-1", "processor-2", "gateway-1", "gateway-2"};
    int64_t t0 = fl_test_now_ms();
    int pids[4];
    up = true;
    if (cluster("up") != 0) {
        show_output();
        FL_FAIL_("scripts/cluster up failed");
    }
    printf("  up: %lld ms (a fresh broker included)\n", (long long)(fl_test_now_ms() - t0));
    char *o = output(), *tokline, token[2048] = "";
    ASSERT_TRUE(o != NULL);
    for (int i = 0; i < 2; i++) {
        char url[64];
        snprintf(url, sizeof url, "ws://127.0.0.1:%d/v1/ws", ports[i]);
        if (!strstr(o, url)) {
            free(o);
            FL_FAIL_("up does not print %s", url);
        }
    }
    if ((tokline = strstr(o, "TOKEN=")))
        sscanf(tokline + 6, "%2047s", token);
    free(o);
    ASSERT_GT(strlen(token), 40);
    /* every part answers, and the printed token works on both gateways */
    for (int i = 0; i < 4; i++) {
        char *body = NULL;
        ASSERT_EQ(fl_http_get(ports[i], "/healthz", &body), 200);
        free(body);
        ASSERT_EQ(fl_http_get(ports[i], "/readyz", &body), 200);
        free(body);
        pids[i] = pid_of(parts[i]);
        ASSERT_GT(pids[i], 0);
    }
    for (int i = 0; i < 2; i++) {
        char body[512], *resp = NULL;
        snprintf(body, sizeof body,
                 "{\"client_id\":\"00112233445566778899aabbccddee0%d\",\"seq\":1,"
                 "\"base_version\":0,\"commands\":[{\"op\":\"incr\",\"path\":\"/n\",\"value\":1}]}",
                 i);
        int st = http_post(ports[i], "/v1/docs/ops/hello/flush", token, body, &resp);
        bool applied = resp && strstr(resp, "\"t\":\"outcome\"") && strstr(resp, "\"code\":0");
        if (st != 200 || !applied) {
            fprintf(stderr, "gateway %d: HTTP %d %s\n", i + 1, st, resp ? resp : "");
            free(resp);
            FL_FAIL_("flush through gateway-%d not applied", i + 1);
        }
        free(resp);
    }
    ASSERT_EQ(cluster("status"), 0);
    o = output();
    int healthy = 0;
    for (char *p = o; p && (p = strstr(p, " healthy (")); p++)
        healthy++;
    bool broker = o && strstr(o, "kafka       running at");
    free(o);
    ASSERT_EQ(healthy, 4);
    ASSERT_TRUE(broker);
    /* up again: nothing restarted */
    ASSERT_EQ(cluster("up"), 0);
    for (int i = 0; i < 4; i++)
        ASSERT_EQ(pid_of(parts[i]), pids[i]);
    /* one part gone: status fails, up starts only it */
    ASSERT_EQ(cluster("kill gateway-2"), 0);
    ASSERT_EQ(cluster("status"), 1);
    ASSERT_EQ(cluster("up"), 0);
    ASSERT_EQ(cluster("status"), 0);
    ASSERT_EQ(pid_of("processor-1"), pids[0]);
    ASSERT_NE(pid_of("gateway-2"), pids[3]);
    /* down: clean drains, nothing left */
    t0 = fl_test_now_ms();
    ASSERT_EQ(cluster("down"), 0);
    up = false;
    printf("  down: %lld ms\n", (long long)(fl_test_now_ms() - t0));
    ASSERT_EQ(processes_of_run(), 0);
    for (int i = 0; i < 4; i++) {
        char path[800], *log;
        size_t len;
        snprintf(path, sizeof path, "%s/logs/%s.log", dir, parts[i]);
        ASSERT_TRUE((log = fl_test_read_file(path, &len)) != NULL);
        const char *last = strstr(log, "SIGTERM");
        bool clean = last && (i < 2 ? strstr(last, "stopped cleanly") != NULL
                                    : strstr(last, "draining") != NULL ||
                                          strstr(last, "stopped") != NULL);
        if (!clean)
            fprintf(stderr, "%s log tail:\n%s\n", parts[i], len > 1500 ? log + len - 1500 : log);
        free(log);
        ASSERT_TRUE(clean);
    }
    ASSERT_NE(cluster("status"), 0);
    ASSERT_EQ(cluster("down"), 0);
    ASSERT_EQ(processes_of_run(), 0);
}

int main(void)
{
    char name[96];
    fl_log_init("test", FL_LOG_WARN);
    snprintf(dir, sizeof dir, "%s/tests/%s", getenv("FL_BINARY_DIR"),
             fl_test_unique("cluster-script", name, sizeof name));
    snprintf(outfile, sizeof outfile, "%s.out", dir);
    for (int i = 0; i < 4; i++) {
        ports[i] = fl_free_port();
        for (int j = 0; j < i; j++)
            if (ports[j] == ports[i])
                i--;
    }
    /* no FLUSHLINE_CLUSTER_BOOTSTRAP: the script starts its own broker */
    snprintf(env, sizeof env,
             "FLUSHLINE_CLUSTER_DIR='%s' FLUSHLINE_CLUSTER_BIN='%s/bin' "
             "FLUSHLINE_CLUSTER_PORTS='%d %d %d %d' FLUSHLINE_PARTITIONS=4; "
             "unset FLUSHLINE_CLUSTER_BOOTSTRAP FLUSHLINE_PREFIX",
             dir, getenv("FL_BINARY_DIR"), ports[0], ports[1], ports[2], ports[3]);
    atexit(down_atexit);
    RUN(test_up_status_down);
    return fl_test_done();
}
