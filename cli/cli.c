/* SPDX-License-Identifier: Apache-2.0 */
/* cli: subcommand dispatch, option loading and the checks the tables share. */
#include "cli.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "flushline/log.h"
#include "flushline/flush.h"
#include "history.h"

int fl_cli_check_doc(const void *field, char *errstr, size_t errstr_size)
{
    size_t len = strlen(*(const char *const *)field);
    if (len == 0 || len > FL_DOC_ID_MAX) {
        snprintf(errstr, errstr_size, "a document id takes 1-%d bytes", FL_DOC_ID_MAX);
        return -1;
    }
    return 0;
}

int fl_cli_check_time(const void *field, char *errstr, size_t errstr_size)
{
    int64_t ms;
    if (fl_hist_parse_time(*(const char *const *)field, &ms) != 0) {
        snprintf(errstr, errstr_size, "expected ISO-8601 (2024-05-01T12:00:00Z) or epoch ms");
        return -1;
    }
    return 0;
}

int fl_cli_check_nonempty(const void *field, char *errstr, size_t errstr_size)
{
    if (!**(const char *const *)field) {
        snprintf(errstr, errstr_size, "must not be empty");
        return -1;
    }
    return 0;
}

bool fl_cli_is_help(const char *arg)
{
    return strcmp(arg, "--help") == 0 || strcmp(arg, "-h") == 0 || strcmp(arg, "help") == 0;
}

int fl_cli_options(const fl_config_table_t *table, void *opts, fl_cli_common_t *common,
                   int argc, char **argv, fl_config_t **cfgp)
{
    char errstr[1024];
    int r;

    *cfgp = NULL;
    fl_config_t *cfg = fl_config_new(table, opts, errstr, sizeof errstr);
    if (!cfg) {
        fprintf(stderr, "%s: %s\n", table->program, errstr);
        return FL_EXIT_FAIL;
    }
    r = fl_config_load(cfg, argc, argv, errstr, sizeof errstr);
    if (r != 0) {
        fl_config_free(cfg);
        if (r == FL_CONFIG_HELP)
            return FL_EXIT_OK;
        fprintf(stderr, "%s: %s\n", table->program, errstr);
        return r == FL_CONFIG_ENOMEM ? FL_EXIT_FAIL : FL_EXIT_USAGE;
    }
    if (common)
        common->props = *fl_config_kafka(cfg);
    *cfgp = cfg;
    return -1;
}

int fl_cli_usage_error(const fl_config_table_t *table, const char *fmt, ...)
{
    va_list ap;
    fprintf(stderr, "%s: ", table->program);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    return FL_EXIT_USAGE;
}

const fl_config_table_t *const fl_cli_tables[] = {
    &fl_cmd_topics_options,    &fl_cmd_token_keygen_options, &fl_cmd_token_mint_options,
    &fl_cmd_token_verify_options, &fl_cmd_replay_options,    &fl_cmd_at_options,
    &fl_cmd_verify_options,    &fl_cmd_reprocess_options,    &fl_cmd_tail_options,
    &fl_cmd_bench_options,     &fl_cmd_rules_put_options,    &fl_cmd_rules_get_options,
    &fl_cmd_rules_list_options, &fl_cmd_rules_check_options, NULL,
};

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
    if (argc < 2) {
        usage(stderr);
        return FL_EXIT_USAGE;
    }
    if (fl_cli_is_help(argv[1])) {
        usage(stdout);
        return FL_EXIT_OK;
    }
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        if (strcmp(argv[1], commands[i].name) == 0)
            return commands[i].run(argc - 1, argv + 1);
    fprintf(stderr, "flushline: unknown command \"%s\"\n", argv[1]);
    usage(stderr);
    return FL_EXIT_USAGE;
}
