/* SPDX-License-Identifier: Apache-2.0 */
/* pr_config: the processor's settings table (see config.h for sources). */
#include <stddef.h>

#include "flushline/config.h"
#include "flushline/topics.h"
#include "pr_processor.h"

#define F(field) offsetof(pr_config_t, field)


static const fl_config_entry_t entries[] = {
    FL_CONFIG_DEPLOYMENT_ENTRIES(pr_config_t, "the processor"),
    {.name = "group.id", .type = FL_CONFIG_STRING, .def = "flushline-processors", .offset = F(group_id),
     .doc = "Consumer group shared by all processors of a deployment."},
    {.name = "group.instance.id", .type = FL_CONFIG_STRING, .def = NULL, .offset = F(group_instance_id),
     .doc = "Static group membership (e.g. the same as transactional.id): a restarted instance takes its partitions back at once, without a rebalance; unset: dynamic membership."},
    {.name = "session.timeout.ms", .type = FL_CONFIG_DURATION_MS, .def = "10s", .offset = F(session_timeout_ms), .min = 6000, .max = 300000,
     .doc = "Consumer group session timeout: how long a crashed processor's partitions wait before they move."},
    {.name = "transactional.id", .type = FL_CONFIG_STRING, .def = "flushline-processor-1", .offset = F(transactional_id),
     .doc = "Stable, unique per processor instance: a restarted instance fences its predecessor."},
    {.name = "commit.interval.ms", .type = FL_CONFIG_DURATION_MS, .def = "20", .offset = F(commit_interval_ms), .min = 1, .max = 10000,
     .doc = "Commit the open transaction (outcomes, snapshots, offsets) this often."},
    {.name = "commit.max.records", .type = FL_CONFIG_INT, .def = "10000", .offset = F(commit_max_records), .min = 1, .max = 1000000,
     .doc = "Or after this many commands records, whichever comes first."},
    {.name = "snapshot.every.versions", .type = FL_CONFIG_INT, .def = "1000", .offset = F(snapshot_every_versions), .min = 1, .max = 100000000,
     .doc = "Snapshot a document when it has moved this many versions since its last snapshot."},
    {.name = "snapshot.interval.ms", .type = FL_CONFIG_DURATION_MS, .def = "10s", .offset = F(snapshot_interval_ms), .min = 100, .max = 86400000,
     .doc = "Snapshot every changed document (and checkpoint its partition) this often; bounds " "restore time."},
    {.name = "window.outcomes", .type = FL_CONFIG_INT, .def = "256", .offset = F(window_outcomes), .min = 0, .max = 1000000,
     .doc = "Recent outcomes kept per document to answer syncs with deltas."},
    {.name = "window.bytes", .type = FL_CONFIG_SIZE, .def = "1M", .offset = F(window_bytes), .min = 0, .max = 1 << 30,
     .doc = "Byte bound of that window per document."},
    {.name = "max.state.bytes", .type = FL_CONFIG_SIZE, .def = "1M", .offset = F(max_state_bytes), .min = 1024, .max = 64 << 20,
     .doc = "Cap on a document's encoded state; commands that would pass it are rejected too_large."},
    {.name = "transaction.timeout.ms", .type = FL_CONFIG_DURATION_MS, .def = "10s", .offset = F(transaction_timeout_ms), .min = 1000, .max = 900000,
     .doc = "Kafka transaction timeout; a crashed processor's open transaction is aborted after it."},
    {.name = "restore.timeout.ms", .type = FL_CONFIG_DURATION_MS, .def = "2m", .offset = F(restore_timeout_ms), .min = 1000, .max = 3600000,
     .doc = "Give up (and exit non-zero) when restoring a partition takes longer."},
    {.name = "http.addr", .type = FL_CONFIG_STRING, .def = "127.0.0.1", .offset = F(http_addr),
     .doc = "Address of the /healthz and /metrics endpoint."},
    {.name = "http.port", .type = FL_CONFIG_INT, .def = "8081", .offset = F(http_port), .min = -1, .max = 65535,
     .doc = "Its port; 0 picks a free one, -1 turns it off."},
    FL_CONFIG_LOG_LEVEL_ENTRY(pr_config_t),
};

const fl_config_table_t pr_config_table = {
    .program = "flushline-processor",
    .summary = "Applies flushes from <prefix>.commands to the documents of the partitions it "
               "owns and publishes outcomes to <prefix>.events exactly once.",
    FL_CONFIG_DAEMON_TABLE(entries),
};
