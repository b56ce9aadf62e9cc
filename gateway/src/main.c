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

FL_DAEMON_HOOKS(gw_new, gw_run, gw_stop, gw_free)

static const fl_daemon_t gateway = {
    .name = "gateway",
    FL_DAEMON_CONFIG(gw_config_t, gw_config_table),
    .raise_nofile = true,
    FL_DAEMON_HOOK_FIELDS,
};

int main(int argc, char **argv)
{
    return fl_daemon_main(argc, argv, &gateway);
}
