/* SPDX-License-Identifier: Apache-2.0 */
/*
 * `flushline topics create|describe`: make the deployment's four topics with
 * the right settings, or check existing ones against what is expected.
 */
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "flushline/topics.h"

typedef struct topics_opts_s {
    fl_cli_common_t common;
    int action; /* ACTION_* */
    int64_t partitions, replication_factor, timeout_ms;
} topics_opts_t;

enum { ACTION_CREATE, ACTION_DESCRIBE };
static const char *const actions[] = {"create", "describe", NULL};

#define F(field) offsetof(topics_opts_t, field)

static const fl_config_entry_t entries[] = {
    {.name = "action", .type = FL_CONFIG_ENUM, .choices = actions, .offset = F(action),
     .flags = FL_CONFIG_POSITIONAL | FL_CONFIG_REQUIRED,
     .doc = "create: make the missing topics (commands, events, snapshots compacted, signals), "
            "then check all four; existing ones are left as they are. describe: show the four "
            "topics and check them (present, the expected partition count, snapshots "
            "compacted); exit 1 naming the first mismatch."},
    FL_CLI_COMMON_ENTRIES(topics_opts_t),
    {.name = "partitions", .type = FL_CONFIG_INT, .def = "12", .offset = F(partitions), .min = 1,
     .max = 10000, .metavar = "N", .doc = "Partition count of every topic."},
    {.name = "replication-factor", .type = FL_CONFIG_INT, .def = "1",
     .offset = F(replication_factor), .min = 1, .max = 100, .metavar = "N",
     .doc = "Replication factor for create."},
    {.name = "timeout-ms", .type = FL_CONFIG_DURATION_MS, .def = "15000", .offset = F(timeout_ms),
     .min = 100, .max = 600000, .metavar = "MS", .doc = "Admin API timeout."},
};

FL_CLI_TABLE(fl_cmd_topics_options, "topics", "create|describe", entries, true,
             "Creates the deployment's four topics with the right settings, or checks "
             "existing ones against what is expected.");

static void print_states(const fl_topic_state_t st[FL_TOPIC__COUNT])
{
    printf("%-40s %10s  %-16s %s\n", "TOPIC", "PARTITIONS", "CLEANUP", "STATUS");
    for (int k = 0; k < FL_TOPIC__COUNT; k++) {
        char parts[16];
        if (st[k].exists)
            snprintf(parts, sizeof parts, "%d", st[k].partitions);
        else
            snprintf(parts, sizeof parts, "-");
        printf("%-40s %10s  %-16s %s\n", st[k].name, parts,
               st[k].cleanup_policy[0] ? st[k].cleanup_policy : "-",
               st[k].problem[0] ? st[k].problem : "ok");
    }
}

int fl_cmd_topics(int argc, char **argv)
{
    topics_opts_t o = {0};
    fl_config_t *cfg;
    fl_topics_spec_t spec;
    fl_topic_state_t st[FL_TOPIC__COUNT];
    rd_kafka_t *rk = NULL;
    char errstr[512];
    const char *action;
    int rc = fl_cli_options(&fl_cmd_topics_options, &o, &o.common, argc, argv, &cfg);

    if (rc >= 0)
        return rc;
    action = actions[o.action];
    fl_topics_spec_default(&spec);
    spec.prefix = o.common.prefix;
    spec.partitions = (int)o.partitions;
    spec.replication_factor = (int)o.replication_factor;
    spec.timeout_ms = (int)o.timeout_ms;
    rc = FL_EXIT_USAGE;

    {
        fl_kafka_spec_t ks = {.type = RD_KAFKA_PRODUCER,
                              .what = "topics admin client",
                              .bootstrap = o.common.bootstrap,
                              .props = &o.common.props};
        /* a setting librdkafka refuses (name, value, unreadable file) is
         * a usage error */
        if (!(rk = fl_kafka_new(&ks, errstr, sizeof errstr))) {
            fprintf(stderr, "flushline topics: %s\n", errstr);
            goto fail;
        }
    }
    if (fl_kafka_wait_ready(rk, spec.timeout_ms, errstr, sizeof errstr) != 0) {
        fprintf(stderr, "flushline topics: %s\n", errstr);
        rc = FL_EXIT_UNREACHABLE;
        goto fail;
    }
    int r = o.action == ACTION_CREATE
                ? fl_topics_create(rk, &spec, st, errstr, sizeof errstr)
                : fl_topics_check(rk, &spec, st, errstr, sizeof errstr);
    if (r == -2) {
        fprintf(stderr, "flushline topics: %s\n", errstr);
        rc = FL_EXIT_UNREACHABLE;
        goto fail;
    }
    if (st[0].name[0])
        print_states(st);
    if (r != 0) {
        fprintf(stderr, "flushline topics %s: %s\n", action, errstr);
        rc = FL_EXIT_FAIL;
        goto fail;
    }
    rc = FL_EXIT_OK;
fail:
    if (rk)
        rd_kafka_destroy(rk);
    fl_config_free(cfg);
    return rc;
}
