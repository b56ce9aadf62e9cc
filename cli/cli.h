/* SPDX-License-Identifier: Apache-2.0 */
/*
 * cli: the `flushline` admin tool. Each subcommand is a function taking its
 * own argv and declares its options as a config table (config.h, with
 * .cli set): one table per subcommand (three for token), loaded by
 * fl_cli_options(), which also prints --help and the --help-markdown
 * reference docs/cli.md carries. This header lists the subcommands, their
 * tables, the options they share and the exit codes.
 */
#ifndef FLUSHLINE_CLI_H
#define FLUSHLINE_CLI_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#include "flushline/config.h"
#include "flushline/kafka.h"
#include "flushline/topics.h"

/* Exit codes of every subcommand. */
enum {
    FL_EXIT_OK = 0,
    FL_EXIT_FAIL = 1,        /* the check failed / the work failed */
    FL_EXIT_USAGE = 2,       /* bad flags or arguments */
    FL_EXIT_UNREACHABLE = 3, /* Kafka did not answer */
};

/* Options every Kafka-facing subcommand accepts; a member `common` of its
 * options struct. */
typedef struct fl_cli_common_s {
    const char *bootstrap;  /* --bootstrap, $FLUSHLINE_BOOTSTRAP, "127.0.0.1:9092" */
    const char *prefix;     /* --prefix, $FLUSHLINE_PREFIX, "flushline" */
    fl_kafka_props_t props; /* -X name=value (librdkafka settings), strings owned by the
                               fl_config_t the options were loaded into */
} fl_cli_common_t;

/* The table entries of --bootstrap and --prefix (the daemons' own words);
 * -X comes with the table's .kafka = true. */
#define FL_CLI_COMMON_ENTRIES(cfgtype)                                                            \
    FL_CONFIG_KAFKA_ENTRIES(cfgtype, common.bootstrap, common.prefix)

/* --doc ID: a document id, 1-255 bytes; flags_ e.g. FL_CONFIG_REQUIRED. */
#define FL_CLI_DOC_ENTRY(cfgtype, flags_, doc_)                                                   \
    {.name = "doc", .type = FL_CONFIG_STRING, .offset = offsetof(cfgtype, doc), .flags = (flags_), \
     .metavar = "ID", .check = fl_cli_check_doc, .doc = (doc_)}

/* --from-time / --to-time / --time T: ISO-8601 or epoch milliseconds. */
#define FL_CLI_TIME_ENTRY(cfgtype, name_, member, group_, flags_, doc_)                           \
    {.name = (name_), .type = FL_CONFIG_STRING, .offset = offsetof(cfgtype, member),              \
     .group = (group_), .flags = (flags_), .metavar = "T", .check = fl_cli_check_time,            \
     .doc = (doc_)}

/* -q, --quiet: no progress lines on stderr. */
#define FL_CLI_QUIET_ENTRY(cfgtype)                                                               \
    {.name = "quiet", .short_name = 'q', .type = FL_CONFIG_BOOL, .def = "false",                  \
     .offset = offsetof(cfgtype, quiet), .flags = FL_CONFIG_SWITCH,                               \
     .doc = "No progress lines on stderr."}

/* Defines a subcommand's option table `const fl_config_table_t name_` in cli
 * mode: the program "flushline " words_ (e.g. "rules put"), the synopsis
 * usage_ after it (NULL: none), entries_ (an array), whether it takes -X, and
 * the summary --help prints under the usage line. */
#define FL_CLI_TABLE(name_, words_, usage_, entries_, kafka_, summary_)                           \
    const fl_config_table_t name_ = {.program = "flushline " words_,                              \
                                     .usage = (usage_),                                           \
                                     .summary = (summary_),                                       \
                                     .entries = (entries_),                                       \
                                     .count = FL_CONFIG_COUNT(entries_),                          \
                                     .kafka = (kafka_),                                           \
                                     .cli = true}

/* A command with subcommands of its own (and flushline itself): names,
 * their entry points (argv[0] the subcommand's name) and a summary line
 * (NULL where help() says it). */
typedef struct fl_cli_sub_s {
    const char *name;
    int (*run)(int argc, char **argv);
    const char *summary;
} fl_cli_sub_t;

typedef struct fl_cli_group_s {
    const char *program; /* "flushline rules": stderr messages begin with it */
    const char *what;    /* "subcommand": the word of the unknown-name error */
    void (*help)(FILE *out);
    const fl_cli_sub_t *subs;
    size_t count;
} fl_cli_group_t;

/* Runs the subcommand named by argv[1]: "--help", "-h" or "help" print
 * help on stdout (FL_EXIT_OK); none or an unknown name print help on stderr
 * (FL_EXIT_USAGE). */
int fl_cli_dispatch(const fl_cli_group_t *group, int argc, char **argv);

/* Checks for table entries (fl_config_check_fn). */
int fl_cli_check_doc(const void *field, char *errstr, size_t errstr_size);
int fl_cli_check_time(const void *field, char *errstr, size_t errstr_size);
int fl_cli_check_nonempty(const void *field, char *errstr, size_t errstr_size);

/*
 * Loads argv (argv[0] the subcommand's name) into opts by table and, when
 * common is given, points common->props at the -X settings. Returns -1 to go
 * on, with *cfgp the loaded configuration (it owns every string opts points
 * to: fl_config_free() it after the run); else the exit code to return at
 * once, *cfgp NULL: FL_EXIT_OK after --help or --help-markdown,
 * FL_EXIT_USAGE after printing the error, FL_EXIT_FAIL when out of memory.
 */
int fl_cli_options(const fl_config_table_t *table, void *opts, fl_cli_common_t *common,
                   int argc, char **argv, fl_config_t **cfgp);

/* Prints "flushline <cmd>: <message>" on stderr for a usage error found
 * after loading and returns FL_EXIT_USAGE. */
int fl_cli_usage_error(const fl_config_table_t *table, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

int fl_cli_main(int argc, char **argv);

/* The subcommands, one cmd_<name>.c each; argv[0] is the subcommand's name. */
int fl_cmd_topics(int argc, char **argv);
int fl_cmd_token(int argc, char **argv);
int fl_cmd_replay(int argc, char **argv);
int fl_cmd_at(int argc, char **argv);
int fl_cmd_verify(int argc, char **argv);
int fl_cmd_reprocess(int argc, char **argv);
int fl_cmd_tail(int argc, char **argv);
int fl_cmd_bench(int argc, char **argv);
int fl_cmd_rules(int argc, char **argv);

/* Their option tables, defined next to them. */
extern const fl_config_table_t fl_cmd_topics_options;
extern const fl_config_table_t fl_cmd_token_keygen_options;
extern const fl_config_table_t fl_cmd_token_mint_options;
extern const fl_config_table_t fl_cmd_token_verify_options;
extern const fl_config_table_t fl_cmd_replay_options;
extern const fl_config_table_t fl_cmd_at_options;
extern const fl_config_table_t fl_cmd_verify_options;
extern const fl_config_table_t fl_cmd_reprocess_options;
extern const fl_config_table_t fl_cmd_tail_options;
extern const fl_config_table_t fl_cmd_bench_options;
extern const fl_config_table_t fl_cmd_rules_put_options;
extern const fl_config_table_t fl_cmd_rules_get_options;
extern const fl_config_table_t fl_cmd_rules_list_options;
extern const fl_config_table_t fl_cmd_rules_check_options;

/* Every table above, in the order docs/cli.md lists them; NULL-terminated. */
extern const fl_config_table_t *const fl_cli_tables[];

#endif
