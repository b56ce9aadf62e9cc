/* SPDX-License-Identifier: Apache-2.0 */
/*
 * log: one line per event on stderr, "<UTC time> <LEVEL> <component>: msg".
 * The level is checked before any formatting. librdkafka's and
 * libwebsockets' logs are bridged here so that all logs share one format.
 * @locality any thread (each line is written with a single write(2)).
 */
#ifndef FLUSHLINE_LOG_H
#define FLUSHLINE_LOG_H

#include <librdkafka/rdkafka.h>

typedef enum fl_log_level_e {
    FL_LOG_ERROR = 3,
    FL_LOG_WARN = 4,
    FL_LOG_INFO = 6,
    FL_LOG_DEBUG = 7,
} fl_log_level_t;

/* The process-wide threshold; events above it are dropped before formatting. */
extern int fl_log_threshold;

/* Sets the component name printed on each line (kept by reference). */
void fl_log_init(const char *component, int level);
/* "error", "warn", "info", "debug" -> level, or -1. */
int fl_log_level_from_name(const char *name);

void fl_log_write(int level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#define FL_LOG(level, ...)                                                                         \
    do {                                                                                           \
        if ((level) <= fl_log_threshold)                                                           \
            fl_log_write((level), __VA_ARGS__);                                                    \
    } while (0)
#define fl_error(...) FL_LOG(FL_LOG_ERROR, __VA_ARGS__)
#define fl_warn(...) FL_LOG(FL_LOG_WARN, __VA_ARGS__)
#define fl_info(...) FL_LOG(FL_LOG_INFO, __VA_ARGS__)
#define fl_debug(...) FL_LOG(FL_LOG_DEBUG, __VA_ARGS__)

/* librdkafka log_cb: set with rd_kafka_conf_set_log_cb(conf, fl_log_on_rdkafka). */
void fl_log_on_rdkafka(const rd_kafka_t *rk, int level, const char *fac, const char *buf);

/* Sends libwebsockets' errors and warnings (its log level is process-wide)
 * through fl_error / fl_warn as "lws: ..." lines; its other levels are off.
 * Call before creating an lws context; calling it again is harmless. */
void fl_log_lws_bridge(void);

#endif
