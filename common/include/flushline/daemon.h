/* SPDX-License-Identifier: Apache-2.0 */
/*
 * daemon: the one main of Flushline's daemons. A daemon describes itself in
 * a small table (its settings table, where the common settings sit in its
 * config struct, and hooks: new, run, stop, free, optionally healthy and
 * metrics for an HTTP endpoint) and its main.c is one call:
 *
 *   int main(int argc, char **argv) { return fl_daemon_main(argc, argv, &table); }
 *
 * fl_daemon_main, in order:
 *   1. installs the SIGTERM/SIGINT handlers first of all (SIGPIPE ignored):
 *      from then on a signal means "stop cleanly", never death by signal.
 *      A signal that arrives before the daemon exists is remembered and
 *      applied (stop) as soon as new returns, so run drains at once;
 *   2. loads the configuration (flags, environment, file, defaults:
 *      config.h) into a zeroed struct of config_size bytes; --help exits 0;
 *   3. sets the log component and level (the log_level setting);
 *   4. copies the kafka.* pass-through settings into the struct;
 *   5. raises the open-files soft limit to the hard limit (raise_nofile);
 *   6. new(cfg); then, when http_port_offset is set and the port is not -1,
 *      serves GET /healthz (200), /readyz (healthy: 200, else 503) and
 *      /metrics (Prometheus text) on its own thread (httpd.h);
 *   7. run (on the calling thread) until stop; then stops the HTTP
 *      endpoint, frees the daemon and the configuration.
 *
 * Exit codes (the return value): 0 after --help or a clean stop; 2 for bad
 * settings, a failed new or an HTTP endpoint that cannot be served; else
 * what run returned (1 for a fatal error by convention).
 *
 * One daemon per process: the signal handlers act on the process-wide
 * running daemon.
 */
#ifndef FLUSHLINE_DAEMON_H
#define FLUSHLINE_DAEMON_H

#include <stdbool.h>
#include <stddef.h>

#include "flushline/config.h"

typedef struct fl_daemon_s {
    const char *name;                 /* log component, e.g. "processor" */
    const fl_config_table_t *config;  /* its settings; config->program names it on stderr */
    size_t config_size;               /* sizeof its config struct */
    size_t log_level_offset;          /* offsetof(cfg, log_level): const char * */
    size_t kafka_offset;              /* offsetof(cfg, kafka): fl_kafka_props_t */
    /* Optional HTTP endpoint: offsetof(cfg, http_addr) (const char *) and
     * offsetof(cfg, http_port) (int64_t; -1: off, 0: a free port). Both 0:
     * no endpoint. */
    size_t http_addr_offset, http_port_offset;
    bool raise_nofile;                /* one descriptor per client: take every one allowed */

    /* Builds the daemon from its loaded settings (cfg stays valid until
     * free). NULL with errstr on failure. Main thread. */
    void *(*new)(const void *cfg, char *errstr, size_t errstr_size);
    /* Runs until stop; returns the exit code. Main thread. */
    int (*run)(void *d);
    /* Asks run to return, or not to start. Async-signal-safe; any thread. */
    void (*stop)(void *d);
    void (*free)(void *d);
    /* Optional (NULL: ready / no /metrics), called on the HTTP thread. */
    int (*healthy)(void *d);                    /* 1 when ready */
    char *(*metrics)(void *d, size_t *len);     /* malloc'd Prometheus text */
} fl_daemon_t;

int fl_daemon_main(int argc, char **argv, const fl_daemon_t *daemon);

/* What every daemon's table says the same way, for a config struct cfgtype
 * with the fields log_level and kafka, whose settings table is table_. */
#define FL_DAEMON_CONFIG(cfgtype, table_)                                                          \
    .config = &(table_), .config_size = sizeof(cfgtype),                                           \
    .log_level_offset = offsetof(cfgtype, log_level), .kafka_offset = offsetof(cfgtype, kafka)

/* The four hooks for a daemon whose functions take its own types (T *new_fn(const C *cfg,
 * char *errstr, size_t errstr_size), int run_fn(T *), void stop_fn(T *), void free_fn(T *)):
 * FL_DAEMON_HOOKS defines the adapters at file scope, FL_DAEMON_HOOK_FIELDS names
 * them in the fl_daemon_t. */
#define FL_DAEMON_HOOKS(new_fn, run_fn, stop_fn, free_fn)                                          \
    static void *fl_daemon_new_(const void *cfg, char *errstr, size_t errstr_size)                 \
    {                                                                                              \
        return new_fn(cfg, errstr, errstr_size);                                                   \
    }                                                                                              \
    static int fl_daemon_run_(void *d)                                                             \
    {                                                                                              \
        return run_fn(d);                                                                          \
    }                                                                                              \
    static void fl_daemon_stop_(void *d)                                                           \
    {                                                                                              \
        stop_fn(d);                                                                                \
    }                                                                                              \
    static void fl_daemon_free_(void *d)                                                           \
    {                                                                                              \
        free_fn(d);                                                                                \
    }
#define FL_DAEMON_HOOK_FIELDS                                                                      \
    .new = fl_daemon_new_, .run = fl_daemon_run_, .stop = fl_daemon_stop_, .free = fl_daemon_free_

#endif
