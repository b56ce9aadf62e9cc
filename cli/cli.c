/* SPDX-License-Identifier: Apache-2.0 */
/* cli: the subcommand dispatch and the list of option tables (for --help
 * and docs/cli.md). Nothing below calls back into it: the shared option
 * handling is options.c. */
#include "cli.h"

#include <stdio.h>
#include <stdlib.h>

#include "flushline/log.h"

const fl_config_table_t *const fl_cli_tables[] = {
    &fl_cmd_topics_options,    &fl_cmd_token_keygen_options, &fl_cmd_token_mint_options,
    &fl_cmd_token_verify_options, &fl_cmd_replay_options,    &fl_cmd_at_options,
    &fl_cmd_verify_options,    &fl_cmd_reprocess_options,    &fl_cmd_tail_options,
    &fl_cmd_bench_options,     &fl_cmd_rules_put_options,    &fl_cmd_rules_get_options,
    &fl_cmd_rules_list_options, &fl_cmd_rules_check_options, NULL,
};

static const fl_cli_sub_t commands[] = {
    {"topics", fl_cmd_topics, "create or check the Kafka topics (topics create|describe)"},
    {"token", fl_cmd_token, "signing keys and tokens (token keygen|mint|verify)"},
    {"replay", fl_cmd_replay, "replay documents' history from events offsets or times"},
    {"at", fl_cmd_at, "a document as it was at a version or a time"},
    {"verify", fl_cmd_verify, "rebuild from events; check chain hashes and snapshots"},
    {"reprocess", fl_cmd_reprocess, "re-run commands through this engine into a new topic set"},
    {"tail", fl_cmd_tail, "follow a document's outcomes live"},
    {"bench", fl_cmd_bench, "load generator: clients, documents, contention, rate"},
    {"rules", fl_cmd_rules, "rule sets per document prefix (rules put|get|list|check)"},
};

static void usage(FILE *out)
{
    fprintf(out, "usage: flushline COMMAND [OPTIONS]\n\ncommands:\n");
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
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
    static const fl_cli_group_t group = {"flushline", "command", usage, commands,
                                         sizeof commands / sizeof commands[0]};
    return fl_cli_dispatch(&group, argc, argv);
}
