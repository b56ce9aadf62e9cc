/* SPDX-License-Identifier: Apache-2.0 */
/*
 * flushline-processor: loads its configuration, serves /healthz and
 * /metrics, and runs the processor until SIGTERM/SIGINT (clean drain, exit
 * 0, in every state: a signal during start-up stops it as soon as the
 * Kafka handles are ready) or a fatal error such as being fenced (exit 1).
 * Bad configuration or topics exit 2.
 */
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "flushline/config.h"
#include "flushline/httpd.h"
#include "flushline/log.h"
#include "pr_processor.h"

/* Written by main, read by the signal handler, which may run on any
 * thread that does not block the signal (the HTTP thread, say): atomics,
 * lock-free so async-signal-safe. A signal that comes before the processor
 * exists is remembered in stop_asked and applied once it does. */
static _Atomic(pr_processor_t *) running;
static atomic_bool stop_asked;

static void on_signal(int sig)
{
    pr_processor_t *pr;
    (void)sig;
    atomic_store(&stop_asked, true);
    if ((pr = atomic_load(&running)))
        pr_processor_stop(pr);
}

static void on_http(void *opaque, const char *path, fl_httpd_response_t *resp)
{
    pr_processor_t *pr = opaque;
    if (strcmp(path, "/healthz") == 0 || strcmp(path, "/readyz") == 0) {
        int ok = strcmp(path, "/healthz") == 0 || pr_processor_healthy(pr);
        resp->status = ok ? 200 : 503;
        resp->body = strdup(ok ? "ok\n" : "not ready\n");
        resp->body_len = resp->body ? strlen(resp->body) : 0;
    } else if (strcmp(path, "/metrics") == 0) {
        resp->status = 200;
        resp->content_type = "text/plain; version=0.0.4";
        resp->body = pr_processor_metrics(pr, &resp->body_len);
    }
}

int main(int argc, char **argv)
{
    pr_config_t cfg;
    fl_config_t *conf;
    pr_processor_t *pr;
    fl_httpd_t *httpd = NULL;
    char errstr[1024];
    int rc, level;
    struct sigaction sa;

    /* First of all: from here on SIGTERM means drain, never the default
     * death by signal. */
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);

    memset(&cfg, 0, sizeof cfg);
    if (!(conf = fl_config_new(&pr_config_table, &cfg, errstr, sizeof errstr))) {
        fprintf(stderr, "flushline-processor: %s\n", errstr);
        return 2;
    }
    rc = fl_config_load(conf, argc, argv, errstr, sizeof errstr);
    if (rc == FL_CONFIG_HELP) {
        fl_config_free(conf);
        return 0;
    }
    if (rc != 0) {
        fprintf(stderr, "flushline-processor: %s\n", errstr);
        fl_config_free(conf);
        return 2;
    }
    level = fl_log_level_from_name(cfg.log_level);
    fl_log_init("processor", level < 0 ? FL_LOG_INFO : level);
    cfg.kafka = *fl_config_kafka(conf);

    if (!(pr = pr_processor_new(&cfg, errstr, sizeof errstr))) {
        fl_error("cannot start: %s", errstr);
        fl_config_free(conf);
        return 2;
    }
    if (cfg.http_port >= 0) {
        httpd = fl_httpd_start(cfg.http_addr, (int)cfg.http_port, on_http, pr, errstr,
                               sizeof errstr);
        if (!httpd) {
            fl_error("cannot serve http on %s:%lld: %s", cfg.http_addr, (long long)cfg.http_port,
                     errstr);
            pr_processor_free(pr);
            fl_config_free(conf);
            return 2;
        }
        fl_info("http on %s:%d (/healthz, /readyz, /metrics)", cfg.http_addr,
                fl_httpd_port(httpd));
    }

    /* Published before stop_asked is read: a signal in between is seen by
     * one side or the other (sequentially consistent atomics). */
    atomic_store(&running, pr);
    if (atomic_load(&stop_asked))
        pr_processor_stop(pr);

    rc = pr_processor_run(pr);
    fl_httpd_stop(httpd);
    atomic_store(&running, NULL);
    pr_processor_free(pr);
    fl_config_free(conf);
    return rc;
}
