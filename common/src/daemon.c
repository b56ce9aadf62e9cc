/* SPDX-License-Identifier: Apache-2.0 */
/* daemon: see daemon.h. */
#include "flushline/daemon.h"

#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#include "flushline/httpd.h"
#include "flushline/kafka_props.h"
#include "flushline/log.h"

_Static_assert(ATOMIC_POINTER_LOCK_FREE == 2 && ATOMIC_BOOL_LOCK_FREE == 2,
               "the signal handler's atomics must be lock-free (async-signal-safe)");

/* Written by the main thread, read by the signal handler, which may run on
 * any thread that does not block the signal (the HTTP thread, say):
 * lock-free atomics, so async-signal-safe. A signal that comes before the
 * daemon exists is remembered in stop_asked and applied once it does. The
 * table is set before the handlers are installed. */
static const fl_daemon_t *table;
static _Atomic(void *) running;
static atomic_bool stop_asked;

static void on_signal(int sig)
{
    void *d;
    (void)sig;
    atomic_store(&stop_asked, true);
    if ((d = atomic_load(&running)))
        table->stop(d);
}

static void on_http(void *opaque, const char *path, fl_httpd_response_t *resp)
{
    if (strcmp(path, "/healthz") == 0 || strcmp(path, "/readyz") == 0) {
        int ok = strcmp(path, "/healthz") == 0 || !table->healthy || table->healthy(opaque);
        resp->status = ok ? 200 : 503;
        resp->body = strdup(ok ? "ok\n" : "not ready\n");
        resp->body_len = resp->body ? strlen(resp->body) : 0;
    } else if (strcmp(path, "/metrics") == 0 && table->metrics) {
        resp->status = 200;
        resp->content_type = "text/plain; version=0.0.4";
        resp->body = table->metrics(opaque, &resp->body_len);
    }
}

static void raise_nofile(void)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
}

/* SIGTERM and SIGINT ask the daemon to stop; SIGPIPE is ignored. (The
 * resets matter only to a test that runs several daemons in turn in one
 * process.) */
static void catch_signals(const fl_daemon_t *daemon)
{
    struct sigaction sa;
    table = daemon;
    atomic_store(&running, NULL);
    atomic_store(&stop_asked, false);
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);
}

/* Starts the health and metrics server on the configured address unless
 * its port is negative. 0, or -1 (logged). */
static int serve_http(const fl_daemon_t *daemon, const char *cfg, void *d, fl_httpd_t **httpd)
{
    const char *addr;
    int64_t port;
    char errstr[1024];
    memcpy(&addr, cfg + daemon->http_addr_offset, sizeof addr);
    memcpy(&port, cfg + daemon->http_port_offset, sizeof port);
    if (port < 0)
        return 0;
    if (!(*httpd = fl_httpd_start(addr, (int)port, on_http, d, errstr, sizeof errstr))) {
        fl_error("cannot serve http on %s:%lld: %s", addr, (long long)port, errstr);
        return -1;
    }
    fl_info("http on %s:%d (/healthz, /readyz%s)", addr, fl_httpd_port(*httpd),
            daemon->metrics ? ", /metrics" : "");
    return 0;
}

int fl_daemon_main(int argc, char **argv, const fl_daemon_t *daemon)
{
    const char *program = daemon->config->program;
    fl_config_t *conf = NULL;
    fl_httpd_t *httpd = NULL;
    char *cfg, errstr[1024];
    const char *level_name;
    void *d = NULL;
    int rc, level;

    /* First of all: from here on SIGTERM means stop cleanly, never the
     * default death by signal. */
    catch_signals(daemon);

    if (!(cfg = calloc(1, daemon->config_size))) {
        fprintf(stderr, "%s: out of memory\n", program);
        return 2;
    }
    if (!(conf = fl_config_new(daemon->config, cfg, errstr, sizeof errstr))) {
        fprintf(stderr, "%s: %s\n", program, errstr);
        rc = 2;
        goto done;
    }
    rc = fl_config_load(conf, argc, argv, errstr, sizeof errstr);
    if (rc == FL_CONFIG_HELP) {
        rc = 0;
        goto done;
    }
    if (rc != 0) {
        fprintf(stderr, "%s: %s\n", program, errstr);
        rc = 2;
        goto done;
    }
    memcpy(&level_name, cfg + daemon->log_level_offset, sizeof level_name);
    level = level_name ? fl_log_level_from_name(level_name) : -1;
    fl_log_init(daemon->name, level < 0 ? FL_LOG_INFO : level);
    memcpy(cfg + daemon->kafka_offset, fl_config_kafka(conf), sizeof(fl_kafka_props_t));
    if (daemon->raise_nofile)
        raise_nofile();

    if (!(d = daemon->new(cfg, errstr, sizeof errstr))) {
        fl_error("cannot start: %s", errstr);
        rc = 2;
        goto done;
    }
    if (daemon->http_port_offset && serve_http(daemon, cfg, d, &httpd) != 0) {
        rc = 2;
        goto done;
    }

    /* Published before stop_asked is read: a signal in between is seen by
     * one side or the other (sequentially consistent atomics). */
    atomic_store(&running, d);
    if (atomic_load(&stop_asked))
        daemon->stop(d);

    rc = daemon->run(d);
    fl_httpd_stop(httpd);
    httpd = NULL;
    atomic_store(&running, NULL);
done:
    fl_httpd_stop(httpd);
    if (d)
        daemon->free(d);
    fl_config_free(conf);
    free(cfg);
    return rc;
}
