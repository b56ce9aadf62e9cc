/* SPDX-License-Identifier: Apache-2.0 */
/* cli: subcommand dispatch and the options they share. */
#include "cli.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "flushline/log.h"

const char fl_cli_common_help[] =
    "  --bootstrap HOST:PORT  Kafka bootstrap servers (env FLUSHLINE_BOOTSTRAP,\n"
    "                         default 127.0.0.1:9092)\n"
    "  --prefix NAME          topic prefix (env FLUSHLINE_PREFIX, default flushline)\n"
    "  -X NAME=VALUE          pass a setting to librdkafka (repeatable)\n";

void fl_cli_common_init(fl_cli_common_t *common)
{
    const char *env;
    memset(common, 0, sizeof *common);
    env = getenv("FLUSHLINE_BOOTSTRAP");
    common->bootstrap = env && *env ? env : "127.0.0.1:9092";
    env = getenv("FLUSHLINE_PREFIX");
    common->prefix = env && *env ? env : "flushline";
}

int fl_cli_common_parse(fl_cli_common_t *common, int argc, char **argv, int *i)
{
    const char *arg = argv[*i];
    if (strcmp(arg, "--bootstrap") != 0 && strcmp(arg, "--prefix") != 0 && strcmp(arg, "-X") != 0)
        return 0;
    if (*i + 1 >= argc) {
        fprintf(stderr, "flushline: %s needs a value\n", arg);
        return -1;
    }
    const char *val = argv[++*i];
    if (strcmp(arg, "--bootstrap") == 0) {
        common->bootstrap = val;
    } else if (strcmp(arg, "--prefix") == 0) {
        common->prefix = val;
    } else {
        char *eq = strchr(val, '=');
        if (!eq || eq == val) {
            fprintf(stderr, "flushline: -X takes NAME=VALUE, got \"%s\"\n", val);
            return -1;
        }
        *eq = '\0';
        if (fl_kafka_props_add(&common->props, val, eq + 1) != 0) {
            fprintf(stderr, "flushline: too many -X settings\n");
            return -1;
        }
    }
    return 1;
}

/* Subcommands live in cmd_<name>.c files (globbed by CMakeLists.txt). A
 * subcommand not built into this binary has a NULL entry point (weak
 * declaration) and is listed as unavailable. */
#pragma weak fl_cmd_topics
#pragma weak fl_cmd_token
#pragma weak fl_cmd_replay
#pragma weak fl_cmd_at
#pragma weak fl_cmd_verify
#pragma weak fl_cmd_reprocess
#pragma weak fl_cmd_tail
#pragma weak fl_cmd_bench

static const struct {
    const char *name;
    int (*run)(int argc, char **argv);
    const char *summary;
} commands[] = {
    {"topics", fl_cmd_topics, "create or check the Kafka topics (topics create|describe)"},
    {"token", fl_cmd_token, "signing keys and tokens (token keygen|mint|verify)"},
    {"replay", fl_cmd_replay, "replay documents' history from events offsets or times"},
    {"at", fl_cmd_at, "a document as it was at a version or a time"},
    {"verify", fl_cmd_verify, "rebuild from events; check chain hashes and snapshots"},
    {"reprocess", fl_cmd_reprocess, "re-run commands through this engine into a new topic set"},
    {"tail", fl_cmd_tail, "follow a document's outcomes live"},
    {"bench", fl_cmd_bench, "load generator: clients, documents, contention, rate"},
};

static void usage(FILE *out)
{
    fprintf(out, "usage: flushline COMMAND [OPTIONS]\n\ncommands:\n");
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        if (commands[i].run)
            fprintf(out, "  %-10s %s\n", commands[i].name, commands[i].summary);
    fprintf(out, "\n`flushline COMMAND --help` for a command's options.\n"
                 "exit codes: 0 ok, 1 failed or mismatch, 2 usage, 3 Kafka unreachable\n");
}

int fl_cli_main(int argc, char **argv)
{
    const char *level = getenv("FLUSHLINE_LOG_LEVEL");
    int lvl = level ? fl_log_level_from_name(level) : -1;
    /* librdkafka reports every refused connection; the CLI prints its own
     * one-line error instead unless FLUSHLINE_LOG_LEVEL asks for more. */
    fl_log_init("flushline", lvl < 0 ? FL_LOG_ERROR - 1 : lvl);
    if (argc < 2) {
        usage(stderr);
        return FL_EXIT_USAGE;
    }
    if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0 ||
        strcmp(argv[1], "help") == 0) {
        usage(stdout);
        return FL_EXIT_OK;
    }
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        if (strcmp(argv[1], commands[i].name) == 0 && commands[i].run)
            return commands[i].run(argc - 1, argv + 1);
    fprintf(stderr, "flushline: unknown command \"%s\"\n", argv[1]);
    usage(stderr);
    return FL_EXIT_USAGE;
}
