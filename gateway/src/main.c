/* SPDX-License-Identifier: Apache-2.0 */
/*
 * flushline-gateway: loads its configuration and runs the gateway until
 * SIGTERM/SIGINT (clients closed with 4201 going_away, producer flushed,
 * exit 0; a signal during start-up drains as soon as the gateway exists).
 * Bad configuration, keys, topics or an unusable port exit 2. The gateway
 * serves its own HTTP (/healthz, /readyz, /metrics) on its port; the shell
 * around it (signals first, config, log level, exit codes) is
 * common/daemon.h.
 */
#include <stddef.h>

#include "flushline/daemon.h"
#include "gw.h"

static void *new_gateway(const void *cfg, char *errstr, size_t errstr_size)
{
    return gw_new(cfg, errstr, errstr_size);
}

static int run(void *gw)
{
    return gw_run(gw);
}

static void stop(void *gw)
{
    gw_stop(gw);
}

static void free_gateway(void *gw)
{
    gw_free(gw);
}

static const fl_daemon_t gateway = {
    .name = "gateway",
    .config = &gw_config_table,
    .config_size = sizeof(gw_config_t),
    .log_level_offset = offsetof(gw_config_t, log_level),
    .kafka_offset = offsetof(gw_config_t, kafka),
    .raise_nofile = true,
    .new = new_gateway,
    .run = run,
    .stop = stop,
    .free = free_gateway,
};

int main(int argc, char **argv)
{
    return fl_daemon_main(argc, argv, &gateway);
}
