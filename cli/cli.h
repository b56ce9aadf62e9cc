/* SPDX-License-Identifier: Apache-2.0 */
/*
 * cli: the `flushline` admin tool. Each subcommand is a function taking its
 * own argv; this header lists them and the exit codes they share.
 */
#ifndef FLUSHLINE_CLI_H
#define FLUSHLINE_CLI_H

#include "flushline/kafka.h"

/* Exit codes of every subcommand. */
enum {
    FL_EXIT_OK = 0,
    FL_EXIT_FAIL = 1,        /* the check failed / the work failed */
    FL_EXIT_USAGE = 2,       /* bad flags or arguments */
    FL_EXIT_UNREACHABLE = 3, /* Kafka did not answer */
};

/* Options every Kafka-facing subcommand accepts. */
typedef struct fl_cli_common_s {
    const char *bootstrap; /* --bootstrap, $FLUSHLINE_BOOTSTRAP, "127.0.0.1:9092" */
    const char *prefix;    /* --prefix, $FLUSHLINE_PREFIX, "flushline" */
    fl_kafka_props_t props; /* -X name=value (librdkafka settings) */
} fl_cli_common_t;

void fl_cli_common_init(fl_cli_common_t *common);
/* Handles --bootstrap/--prefix/-X at argv[*i]; 1 when consumed (advancing
 * *i past the value), 0 when not a common option, -1 on a bad value. */
int fl_cli_common_parse(fl_cli_common_t *common, int argc, char **argv, int *i);
extern const char fl_cli_common_help[];

int fl_cli_main(int argc, char **argv);
/* The subcommands, one cmd_<name>.c each; argv[0] is the subcommand's name.
 * cli.c references them weakly: one not built into this binary is absent. */
int fl_cmd_topics(int argc, char **argv);
int fl_cmd_token(int argc, char **argv);
int fl_cmd_replay(int argc, char **argv);
int fl_cmd_at(int argc, char **argv);
int fl_cmd_verify(int argc, char **argv);
int fl_cmd_reprocess(int argc, char **argv);
int fl_cmd_tail(int argc, char **argv);
int fl_cmd_bench(int argc, char **argv);

#endif
