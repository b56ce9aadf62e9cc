/* SPDX-License-Identifier: Apache-2.0 */
/* log: see log.h. */
#include "flushline/log.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include <libwebsockets.h>

#include "flushline/clock.h"

int fl_log_threshold = FL_LOG_INFO;
static const char *component = "flushline";

void fl_log_init(const char *name, int level)
{
    component = name;
    fl_log_threshold = level;
}

int fl_log_level_from_name(const char *name)
{
    static const struct {
        const char *name;
        int level;
    } names[] = {{"error", FL_LOG_ERROR}, {"warn", FL_LOG_WARN}, {"warning", FL_LOG_WARN},
                 {"info", FL_LOG_INFO},   {"debug", FL_LOG_DEBUG}};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        if (strcasecmp(name, names[i].name) == 0)
            return names[i].level;
    return -1;
}

static const char *level_name(int level)
{
    if (level <= FL_LOG_ERROR)
        return "ERROR";
    if (level <= FL_LOG_WARN)
        return "WARN";
    if (level <= FL_LOG_INFO)
        return "INFO";
    return "DEBUG";
}

static void vwrite_line(int level, const char *who, const char *fmt, va_list ap)
{
    char line[2048];
    int64_t ms = fl_clock_wall_ms();
    time_t secs = (time_t)(ms / 1000);
    struct tm tm;
    size_t n;
    int r;

    gmtime_r(&secs, &tm);
    n = strftime(line, sizeof line, "%Y-%m-%dT%H:%M:%S", &tm);
    r = snprintf(line + n, sizeof line - n, ".%03dZ %s %s: ", (int)(ms % 1000), level_name(level),
                 who);
    if (r > 0)
        n += (size_t)r;
    if (n < sizeof line) {
        r = vsnprintf(line + n, sizeof line - n, fmt, ap);
        if (r > 0)
            n += (size_t)r;
    }
    if (n > sizeof line - 2)
        n = sizeof line - 2;
    /* One event, one line: fold embedded newlines. */
    for (size_t i = 0; i < n; i++)
        if (line[i] == '\n' || line[i] == '\r')
            line[i] = ' ';
    line[n++] = '\n';
    if (write(STDERR_FILENO, line, n) < 0) {
        /* nowhere left to report it */
    }
}

void fl_log_write(int level, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vwrite_line(level, component, fmt, ap);
    va_end(ap);
}

static void write_fmt(int level, const char *who, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vwrite_line(level, who, fmt, ap);
    va_end(ap);
}

void fl_log_on_rdkafka(const rd_kafka_t *rk, int level, const char *fac, const char *buf)
{
    /* librdkafka uses syslog levels, as we do. It logs as errors what it
     * recovers from or what the daemon reports itself in its own words: a
     * broken broker connection (FAIL, with a guess about the security
     * protocol or an old broker when it broke during the version
     * handshake: wrong while a broker restarts or is paused), a failed
     * transaction (TXNERR) and error events (ERROR: "brokers are down",
     * request timeouts). Warnings here; the daemons log an error of their
     * own for whatever stops them. */
    if (level < 4 && fac &&
        (strcmp(fac, "FAIL") == 0 || strcmp(fac, "TXNERR") == 0 || strcmp(fac, "ERROR") == 0))
        level = 4;
    if (level > fl_log_threshold)
        return;
    write_fmt(level, component, "rdkafka %s %s: %s", rk ? rd_kafka_name(rk) : "-", fac, buf);
}

static void on_lws_log(int level, const char *line)
{
    size_t len = strlen(line);
    while (len > 0 && (line[len - 1] == '\n' || line[len - 1] == '\r'))
        len--;
    if (level & LLL_ERR)
        fl_error("lws: %.*s", (int)len, line);
    else
        fl_warn("lws: %.*s", (int)len, line);
}

void fl_log_lws_bridge(void)
{
    lws_set_log_level(LLL_ERR | LLL_WARN, on_lws_log);
}
