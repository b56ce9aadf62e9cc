/* SPDX-License-Identifier: Apache-2.0 */
/*
 * `flushline topics create|describe`: make the deployment's four topics with
 * the right settings, or check existing ones against what is expected.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "flushline/topics.h"

static void help(FILE *out)
{
    fprintf(out,
            "usage: flushline topics create|describe [OPTIONS]\n\n"
            "  create    create the missing topics (commands, events, snapshots compacted,\n"
            "            signals), then check all four; existing ones are left as they are\n"
            "  describe  show the four topics and check them: present, the expected\n"
            "            partition count, snapshots compacted; exit 1 naming the first\n"
            "            mismatch\n\n"
            "options:\n%s"
            "  --partitions N         partition count of every topic (default 12)\n"
            "  --replication-factor N replication factor for create (default 1)\n"
            "  --timeout-ms N         Admin API timeout (default 15000)\n",
            fl_cli_common_help);
}

static int parse_int(const char *s, int min, int max, int *out)
{
    char *end;
    long v;
    errno = 0;
    v = strtol(s, &end, 10);
    if (errno || end == s || *end || v < min || v > max)
        return -1;
    *out = (int)v;
    return 0;
}

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
    fl_cli_common_t common;
    fl_topics_spec_t spec;
    fl_topic_state_t st[FL_TOPIC__COUNT];
    rd_kafka_t *rk = NULL;
    char errstr[512];
    const char *action = NULL;
    int rc = FL_EXIT_USAGE;

    fl_cli_common_init(&common);
    fl_topics_spec_default(&spec);
    for (int i = 1; i < argc; i++) {
        int r = fl_cli_common_parse(&common, argc, argv, &i);
        if (r < 0)
            return FL_EXIT_USAGE;
        if (r > 0)
            continue;
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            help(stdout);
            return FL_EXIT_OK;
        } else if (strcmp(argv[i], "--partitions") == 0 && i + 1 < argc) {
            if (parse_int(argv[++i], 1, 10000, &spec.partitions) != 0) {
                fprintf(stderr, "flushline topics: --partitions takes 1-10000\n");
                return FL_EXIT_USAGE;
            }
        } else if (strcmp(argv[i], "--replication-factor") == 0 && i + 1 < argc) {
            if (parse_int(argv[++i], 1, 100, &spec.replication_factor) != 0) {
                fprintf(stderr, "flushline topics: --replication-factor takes 1-100\n");
                return FL_EXIT_USAGE;
            }
        } else if (strcmp(argv[i], "--timeout-ms") == 0 && i + 1 < argc) {
            if (parse_int(argv[++i], 100, 600000, &spec.timeout_ms) != 0) {
                fprintf(stderr, "flushline topics: --timeout-ms takes 100-600000\n");
                return FL_EXIT_USAGE;
            }
        } else if (!action && (strcmp(argv[i], "create") == 0 || strcmp(argv[i], "describe") == 0)) {
            action = argv[i];
        } else {
            fprintf(stderr, "flushline topics: unexpected argument \"%s\"\n", argv[i]);
            help(stderr);
            return FL_EXIT_USAGE;
        }
    }
    if (!action) {
        help(stderr);
        return FL_EXIT_USAGE;
    }
    spec.prefix = common.prefix;

    {
        fl_kafka_spec_t ks = {.type = RD_KAFKA_PRODUCER,
                              .what = "topics admin client",
                              .bootstrap = common.bootstrap,
                              .props = &common.props};
        /* a setting librdkafka refuses (name, value, unreadable file) is
         * a usage error */
        if (!(rk = fl_kafka_new(&ks, errstr, sizeof errstr))) {
            fprintf(stderr, "flushline topics: %s\n", errstr);
            return FL_EXIT_USAGE;
        }
    }
    if (fl_kafka_wait_ready(rk, spec.timeout_ms, errstr, sizeof errstr) != 0) {
        fprintf(stderr, "flushline topics: %s\n", errstr);
        rc = FL_EXIT_UNREACHABLE;
        goto fail;
    }
    int r = strcmp(action, "create") == 0
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
    rd_kafka_destroy(rk);
    return rc;
}
