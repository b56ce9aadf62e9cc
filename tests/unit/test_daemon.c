/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Unit tests for the one daemon main (common/daemon.h) with a fake daemon:
 * --help and bad settings never build it; exit codes (2 for bad settings, a
 * failed new or an unusable HTTP address; run's own code otherwise); the
 * log level and kafka.* settings reach it; a SIGTERM that arrives before
 * the daemon exists is remembered and stops it before run starts; one
 * during run stops it; the HTTP endpoint answers /healthz, /readyz (from
 * the healthy hook) and /metrics, is off with http.port -1, and a port
 * that cannot be served exits 2.
 */
#include <signal.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <unistd.h>

#include "fl_proc.h"
#include "fl_test.h"
#include "flushline/daemon.h"
#include "flushline/httpd.h"
#include "flushline/log.h"

typedef struct fake_cfg_s {
    const char *log_level;
    const char *mode; /* "run", "signal-in-new", "signal-in-run", "http" */
    bool fail;
    int64_t exit_code;
    const char *http_addr;
    int64_t http_port;
    fl_kafka_props_t kafka;
} fake_cfg_t;

#define F(field) offsetof(fake_cfg_t, field)
static const fl_config_entry_t entries[] = {
    {.name = "log.level", .type = FL_CONFIG_STRING, .def = "info", .offset = F(log_level),
     .doc = "Log level."},
    {.name = "mode", .type = FL_CONFIG_STRING, .def = "run", .offset = F(mode), .doc = "What to do."},
    {.name = "fail", .type = FL_CONFIG_BOOL, .def = "false", .offset = F(fail),
     .doc = "new fails."},
    {.name = "exit.code", .type = FL_CONFIG_INT, .def = "0", .offset = F(exit_code), .min = 0,
     .max = 100, .doc = "run returns it."},
    {.name = "http.addr", .type = FL_CONFIG_STRING, .def = "127.0.0.1", .offset = F(http_addr),
     .doc = "HTTP address."},
    {.name = "http.port", .type = FL_CONFIG_INT, .def = "-1", .offset = F(http_port), .min = -1,
     .max = 65535, .doc = "HTTP port."},
};
static const fl_config_table_t fake_table = {
    .program = "fake-daemon",
    .env_prefix = "FL_TEST_FAKE_DAEMON_",
    .entries = entries,
    .count = FL_CONFIG_COUNT(entries),
    .kafka = true,
};

/* What the hooks saw. */
static struct {
    int news, runs, frees;
    atomic_int stops;
    atomic_bool stopped, healthy;
    bool stopped_at_start; /* run found stop already asked */
    int log_threshold;
    size_t kafka_count;
    char kafka_first[64];
    const char *stderr_path;
    int http_status[4];
    char *http_body[4];
} seen;

static void *fake_new(const void *cfgp, char *errstr, size_t errstr_size)
{
    const fake_cfg_t *cfg = cfgp;
    seen.news++;
    seen.log_threshold = fl_log_threshold;
    seen.kafka_count = cfg->kafka.count;
    if (cfg->kafka.count)
        snprintf(seen.kafka_first, sizeof seen.kafka_first, "%s=%s", cfg->kafka.names[0],
                 cfg->kafka.values[0]);
    if (cfg->fail) {
        snprintf(errstr, errstr_size, "told to fail");
        return NULL;
    }
    if (strcmp(cfg->mode, "signal-in-new") == 0)
        raise(SIGTERM); /* before the daemon exists: remembered */
    return (void *)cfg;
}

/* The port the daemon logged ("http on 127.0.0.1:PORT"), or -1. */
static int logged_port(void)
{
    size_t len;
    char *text = fl_test_read_file(seen.stderr_path, &len), *at;
    int port = -1;
    if (text && (at = strstr(text, "http on 127.0.0.1:")))
        port = atoi(at + strlen("http on 127.0.0.1:"));
    free(text);
    return port;
}

static int fake_run(void *d)
{
    const fake_cfg_t *cfg = d;
    seen.runs++;
    seen.stopped_at_start = atomic_load(&seen.stopped);
    if (strcmp(cfg->mode, "signal-in-run") == 0) {
        raise(SIGTERM); /* the handler stops the running daemon */
        return atomic_load(&seen.stopped) ? 0 : 99;
    }
    if (strcmp(cfg->mode, "http") == 0) {
        int port = logged_port();
        if (port <= 0)
            return 98;
        atomic_store(&seen.healthy, false);
        seen.http_status[0] = fl_http_get(port, "/healthz", &seen.http_body[0]);
        seen.http_status[1] = fl_http_get(port, "/readyz", &seen.http_body[1]);
        atomic_store(&seen.healthy, true);
        seen.http_status[2] = fl_http_get(port, "/readyz", &seen.http_body[2]);
        seen.http_status[3] = fl_http_get(port, "/metrics", &seen.http_body[3]);
    }
    return atomic_load(&seen.stopped) ? 0 : (int)cfg->exit_code;
}

static void fake_stop(void *d)
{
    (void)d;
    atomic_fetch_add(&seen.stops, 1);
    atomic_store(&seen.stopped, true);
}

static void fake_free(void *d)
{
    (void)d;
    seen.frees++;
}

static int fake_healthy(void *d)
{
    (void)d;
    return atomic_load(&seen.healthy);
}

static char *fake_metrics(void *d, size_t *len)
{
    char *text = strdup("fake_up 1\n");
    (void)d;
    *len = text ? strlen(text) : 0;
    return text;
}

static const fl_daemon_t fake = {
    .name = "fake",
    .config = &fake_table,
    .config_size = sizeof(fake_cfg_t),
    .log_level_offset = offsetof(fake_cfg_t, log_level),
    .kafka_offset = offsetof(fake_cfg_t, kafka),
    .http_addr_offset = offsetof(fake_cfg_t, http_addr),
    .http_port_offset = offsetof(fake_cfg_t, http_port),
    .new = fake_new,
    .run = fake_run,
    .stop = fake_stop,
    .free = fake_free,
    .healthy = fake_healthy,
    .metrics = fake_metrics,
};

/* Runs fl_daemon_main on argv (NULL-terminated) with stderr in a file (the
 * run hook reads the logged port from it). */
static int run_main(char **argv)
{
    static char path[] = "/tmp/fl-test-daemon-XXXXXX";
    int argc = 0, saved, fd, rc;
    for (size_t i = 0; i < 4; i++)
        free(seen.http_body[i]);
    memset(&seen, 0, sizeof seen);
    while (argv[argc])
        argc++;
    memcpy(path + sizeof path - 7, "XXXXXX", 6);
    if ((fd = mkstemp(path)) < 0)
        return -1;
    seen.stderr_path = path;
    fflush(stderr);
    saved = dup(STDERR_FILENO);
    dup2(fd, STDERR_FILENO);
    rc = fl_daemon_main(argc, argv, &fake);
    fflush(stderr);
    dup2(saved, STDERR_FILENO);
    close(saved);
    close(fd);
    return rc;
}

static bool stderr_has(const char *needle)
{
    size_t len;
    char *text = fl_test_read_file(seen.stderr_path, &len);
    bool found = text && strstr(text, needle);
    free(text);
    return found;
}

static void test_help_and_bad_settings(void)
{
    ASSERT_EQ(run_main((char *[]){"fake-daemon", "--help", NULL}), 0);
    ASSERT_EQ(seen.news, 0);
    ASSERT_EQ(run_main((char *[]){"fake-daemon", "--no-such-setting", "1", NULL}), 2);
    ASSERT_EQ(seen.news, 0);
    ASSERT_TRUE(stderr_has("fake-daemon: "));
    ASSERT_EQ(run_main((char *[]){"fake-daemon", "--exit.code", "1000", NULL}), 2);
    ASSERT_EQ(seen.news, 0);
}

static void test_new_fails(void)
{
    ASSERT_EQ(run_main((char *[]){"fake-daemon", "--fail", NULL}), 2);
    ASSERT_EQ(seen.news, 1);
    ASSERT_EQ(seen.runs, 0);
    ASSERT_EQ(seen.frees, 0);
    ASSERT_TRUE(stderr_has("cannot start: told to fail"));
}

static void test_run_code_and_settings(void)
{
    ASSERT_EQ(run_main((char *[]){"fake-daemon", "--exit.code", "7", "--log.level", "error", "-X",
                                  "client.id=abc", NULL}),
              7);
    ASSERT_EQ(seen.news, 1);
    ASSERT_EQ(seen.runs, 1);
    ASSERT_EQ(seen.frees, 1);
    ASSERT_EQ(atomic_load(&seen.stops), 0);
    ASSERT_EQ(seen.log_threshold, FL_LOG_ERROR);
    ASSERT_EQ(seen.kafka_count, 1);
    ASSERT_STR_EQ(seen.kafka_first, "client.id=abc");
    ASSERT_TRUE(!stderr_has("http on"));
}

static void test_signal_before_the_daemon_exists(void)
{
    ASSERT_EQ(run_main((char *[]){"fake-daemon", "--mode", "signal-in-new", "--exit.code", "5",
                                  NULL}),
              0);
    ASSERT_EQ(atomic_load(&seen.stops), 1);
    ASSERT_TRUE(seen.stopped_at_start);
    ASSERT_EQ(seen.frees, 1);
}

static void test_signal_during_run(void)
{
    ASSERT_EQ(run_main((char *[]){"fake-daemon", "--mode", "signal-in-run", NULL}), 0);
    ASSERT_TRUE(!seen.stopped_at_start);
    ASSERT_EQ(atomic_load(&seen.stops), 1);
    ASSERT_EQ(seen.frees, 1);
}

static void test_http(void)
{
    ASSERT_EQ(run_main((char *[]){"fake-daemon", "--mode", "http", "--http.port", "0", NULL}), 0);
    ASSERT_EQ(seen.http_status[0], 200);
    ASSERT_STR_EQ(seen.http_body[0], "ok\n");
    ASSERT_EQ(seen.http_status[1], 503);
    ASSERT_STR_EQ(seen.http_body[1], "not ready\n");
    ASSERT_EQ(seen.http_status[2], 200);
    ASSERT_EQ(seen.http_status[3], 200);
    ASSERT_STR_EQ(seen.http_body[3], "fake_up 1\n");
    ASSERT_TRUE(stderr_has("(/healthz, /readyz, /metrics)"));
}

static void on_other(void *opaque, const char *path, fl_httpd_response_t *resp)
{
    (void)opaque, (void)path, (void)resp;
}

static void test_http_unusable(void)
{
    /* a port another server holds */
    char errstr[256], port[16], want[64];
    fl_httpd_t *other = fl_httpd_start("127.0.0.1", 0, on_other, NULL, errstr, sizeof errstr);
    ASSERT_TRUE(other != NULL);
    snprintf(port, sizeof port, "%d", fl_httpd_port(other));
    snprintf(want, sizeof want, "cannot serve http on 127.0.0.1:%s", port);
    int rc = run_main((char *[]){"fake-daemon", "--http.port", port, NULL});
    fl_httpd_stop(other);
    ASSERT_EQ(rc, 2);
    ASSERT_EQ(seen.news, 1);
    ASSERT_EQ(seen.runs, 0);
    ASSERT_EQ(seen.frees, 1);
    ASSERT_TRUE(stderr_has(want));
}

int main(void)
{
    RUN(test_help_and_bad_settings);
    RUN(test_new_fails);
    RUN(test_run_code_and_settings);
    RUN(test_signal_before_the_daemon_exists);
    RUN(test_signal_during_run);
    RUN(test_http);
    RUN(test_http_unusable);
    for (size_t i = 0; i < 4; i++)
        free(seen.http_body[i]);
    unlink(seen.stderr_path);
    return fl_test_done();
}
