/* SPDX-License-Identifier: Apache-2.0 */
/*
 * flushline-gateway: loads its configuration and runs the gateway until
 * SIGTERM/SIGINT (clients closed with 4201 going_away, producer flushed,
 * exit 0). Bad configuration, keys, topics or an unusable port exit 2.
 */
#include <signal.h>
#include <sys/resource.h>
#include <stdio.h>
#include <string.h>

#include "flushline/config.h"
#include "flushline/log.h"
#include "gw.h"

static gw_t *running;

static void on_signal(int sig)
{
    (void)sig;
    if (running)
        gw_stop(running);
}

int main(int argc, char **argv)
{
    gw_config_t cfg;
    fl_config_t *conf;
    gw_t *gw;
    char errstr[1024];
    int rc, level;
    struct sigaction sa;

    memset(&cfg, 0, sizeof cfg);
    if (!(conf = fl_config_new(&gw_config_table, &cfg, errstr, sizeof errstr))) {
        fprintf(stderr, "flushline-gateway: %s\n", errstr);
        return 2;
    }
    rc = fl_config_load(conf, argc, argv, errstr, sizeof errstr);
    if (rc == FL_CONFIG_HELP) {
        fl_config_free(conf);
        return 0;
    }
    if (rc != 0) {
        fprintf(stderr, "flushline-gateway: %s\n", errstr);
        fl_config_free(conf);
        return 2;
    }
    level = fl_log_level_from_name(cfg.log_level);
    fl_log_init("gateway", level < 0 ? FL_LOG_INFO : level);
    cfg.kafka = *fl_config_kafka(conf);
    signal(SIGPIPE, SIG_IGN);
    {
        /* one descriptor per connection: take every one allowed */
        struct rlimit rl;
        if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
            rl.rlim_cur = rl.rlim_max;
            setrlimit(RLIMIT_NOFILE, &rl);
        }
    }

    if (!(gw = gw_new(&cfg, errstr, sizeof errstr))) {
        fl_error("cannot start: %s", errstr);
        fl_config_free(conf);
        return 2;
    }
    running = gw;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);

    rc = gw_run(gw);
    running = NULL;
    gw_free(gw);
    fl_config_free(conf);
    return rc;
}
