/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Unit tests for log.h's line format and its libwebsockets bridge: lws
 * errors and warnings come out as fl_log lines ("lws: ..." without the
 * trailing newline), lws notices do not, and the level threshold applies
 * to bridged lines as to our own.
 */
#include <libwebsockets.h>
#include <stdlib.h>
#include <unistd.h>

#include "fl_test.h"
#include "flushline/log.h"

/* Runs fn with stderr going to a temporary file; returns what was written
 * (malloc'd, NUL-terminated) or NULL. */
static char *capture_stderr(void (*fn)(void))
{
    char path[] = "/tmp/fl-test-log-XXXXXX";
    int fd = mkstemp(path), saved = dup(STDERR_FILENO);
    char *text = NULL;
    size_t len = 0;
    if (fd < 0 || saved < 0)
        return NULL;
    unlink(path);
    fflush(stderr);
    dup2(fd, STDERR_FILENO);
    fn();
    fflush(stderr);
    dup2(saved, STDERR_FILENO);
    close(saved);
    off_t end = lseek(fd, 0, SEEK_END);
    if (end >= 0 && (text = malloc((size_t)end + 1))) {
        len = (size_t)pread(fd, text, (size_t)end, 0) == (size_t)end ? (size_t)end : 0;
        text[len] = '\0';
    }
    close(fd);
    return text;
}

static void emit_info_level(void)
{
    fl_log_init("unit", FL_LOG_INFO);
    fl_log_lws_bridge();
    lwsl_err("socket %d went away\n", 7);
    lwsl_warn("slow peer\r\n");
    lwsl_notice("a notice nobody asked for\n");
    fl_info("ours: %s", "x");
}

static void emit_error_level(void)
{
    fl_log_init("unit", FL_LOG_ERROR);
    fl_log_lws_bridge();
    lwsl_err("still shown\n");
    lwsl_warn("dropped by the threshold\n");
}

static void test_bridge(void)
{
    char *out = capture_stderr(emit_info_level);
    ASSERT_TRUE(out != NULL);
    ASSERT_TRUE(strstr(out, " ERROR unit: lws: socket 7 went away\n") != NULL);
    ASSERT_TRUE(strstr(out, " WARN unit: lws: slow peer\n") != NULL);
    ASSERT_TRUE(strstr(out, "notice") == NULL);
    ASSERT_TRUE(strstr(out, " INFO unit: ours: x\n") != NULL);
    /* one line per event, each starting with the UTC time */
    ASSERT_EQ(out[4], '-');
    ASSERT_TRUE(strstr(out, "Z ERROR") != NULL);
    free(out);
}

static void test_threshold(void)
{
    char *out = capture_stderr(emit_error_level);
    ASSERT_TRUE(out != NULL);
    ASSERT_TRUE(strstr(out, " ERROR unit: lws: still shown\n") != NULL);
    ASSERT_TRUE(strstr(out, "dropped") == NULL);
    free(out);
}

int main(void)
{
    RUN(test_bridge);
    RUN(test_threshold);
    return fl_test_done();
}
