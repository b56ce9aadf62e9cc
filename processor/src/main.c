/* SPDX-License-Identifier: Apache-2.0 */
/*
 * flushline-processor: loads its configuration, serves /healthz, /readyz
 * and /metrics, and runs the processor until SIGTERM/SIGINT (clean drain,
 * exit 0, in every state: a signal during start-up stops it as soon as the
 * Kafka handles are ready) or a fatal error such as being fenced (exit 1).
 * Bad configuration or topics exit 2. The shell around it (signals first,
 * config, log level, HTTP endpoint, exit codes) is common/daemon.h.
 */
#include <stddef.h>

#include "flushline/daemon.h"
#include "pr_processor.h"

FL_DAEMON_HOOKS(pr_processor_new, pr_processor_run, pr_processor_stop, pr_processor_free)

static int healthy(void *pr)
{
    return pr_processor_healthy(pr);
}

static char *metrics(void *pr, size_t *len)
{
    return pr_processor_metrics(pr, len);
}

static const fl_daemon_t processor = {
    .name = "processor",
    FL_DAEMON_CONFIG(pr_config_t, pr_config_table),
    .http_addr_offset = offsetof(pr_config_t, http_addr),
    .http_port_offset = offsetof(pr_config_t, http_port),
    FL_DAEMON_HOOK_FIELDS,
    .healthy = healthy,
    .metrics = metrics,
};

int main(int argc, char **argv)
{
    return fl_daemon_main(argc, argv, &processor);
}
