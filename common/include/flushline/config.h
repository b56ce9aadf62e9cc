/* SPDX-License-Identifier: Apache-2.0 */
/*
 * config: each component describes its settings in one declarative table
 * (name, type, default, check, doc, where the value lives in the component's
 * own struct). The same table loads the settings, prints --help, prints the
 * Markdown reference for docs/ and dumps the effective configuration.
 *
 * Sources, later ones winning:
 *   1. the table's defaults;
 *   2. a config file, from --config FILE or <PREFIX>CONFIG: lines
 *      "name = value", blank lines and lines starting with '#' ignored, a
 *      value may be wrapped in double quotes to keep surrounding blanks;
 *   3. the environment: <PREFIX><NAME> with the name upper-cased and '.'/'-'
 *      turned into '_', e.g. FLUSHLINE_COMMIT_INTERVAL_MS (prefix "FLUSHLINE_"
 *      unless the table sets another);
 *   4. command-line flags: "--name value" or "--name=value"; a bool flag may
 *      stand alone ("--name" = true, "--no-name" = false); "--" ends flags.
 * Keys "kafka.<x>" (file and flags, plus "-X x=value") are not in the table:
 * they are checked against librdkafka's names and values and collected, in
 * order, into an fl_kafka_props_t with the "kafka." prefix removed.
 *
 * Unknown keys in the file or on the command line are errors naming the key,
 * where it came from and the nearest known name. The environment is shared
 * by every component of a deployment, so unknown <PREFIX>* variables are not
 * errors; those within a typo of a known one are logged at warn level.
 *
 * Value types and the C type of the field they fill (at entry.offset):
 *   FL_CONFIG_STRING       const char *   (owned by the fl_config_t; NULL = unset)
 *   FL_CONFIG_INT          int64_t        decimal, in [min, max]
 *   FL_CONFIG_BOOL         bool           true/false, yes/no, on/off, 1/0
 *   FL_CONFIG_DURATION_MS  int64_t (ms)   "250", "250ms", "1.5s", "2m", "1h", "1d"
 *   FL_CONFIG_SIZE         int64_t (bytes) "512", "64K", "1.5M", "1G", "2T"
 *                          (binary multiples; "KB", "KiB", "k" also accepted)
 *   FL_CONFIG_ENUM         int            index into entry.choices (-1 while an
 *                                         enum without a default is unset)
 *   FL_CONFIG_DURATION_S   int64_t (ms)   like DURATION_MS but a plain number is
 *                                         seconds: "90" = 90 s, "1.5", "250ms", "2h"
 *   FL_CONFIG_DOUBLE       double         a finite decimal number: "0.5", "1e6"
 * For INT, DURATION_MS, DURATION_S, SIZE and DOUBLE, min == max == 0 means no
 * bounds (values are still >= 0 for durations and sizes); bounds are whole
 * numbers (milliseconds for durations).
 *
 * Command-line tools (table.cli: the `flushline` subcommands) use the same
 * tables with these differences: no config file (--config and <PREFIX>CONFIG
 * are not read, so a deployment's file meant for the daemons never reaches
 * them); only entries flagged FL_CONFIG_ENV read the environment, and an empty
 * variable counts as unset; arguments that are not flags fill the
 * FL_CONFIG_POSITIONAL entries in order and any beyond them are errors; help
 * and Markdown name entries as they are typed ("--doc", "<action>") and
 * errors say "option".
 *
 * Any entry may also declare: a one-letter alias (short_name 'q' for -q); a
 * group (entries with the same non-zero group exclude each other; when one of
 * them is FL_CONFIG_REQUIRED, exactly one of them must be given); a
 * placeholder for help (metavar "P:O,..."); repeated flags collected into a
 * list (FL_CONFIG_LIST); a bool that never takes the next word as its value
 * (FL_CONFIG_SWITCH: "--json", "--no-pacing").
 *
 * @locality the thread that starts the process, before other threads read
 * the target struct.
 */
#ifndef FLUSHLINE_CONFIG_H
#define FLUSHLINE_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "flushline/kafka_props.h"
#include "flushline/limits.h"

typedef enum fl_config_type_e {
    FL_CONFIG_STRING,
    FL_CONFIG_INT,
    FL_CONFIG_BOOL,
    FL_CONFIG_DURATION_MS,
    FL_CONFIG_SIZE,
    FL_CONFIG_ENUM,
    FL_CONFIG_DURATION_S,
    FL_CONFIG_DOUBLE,
} fl_config_type_t;

/* Entry flags. */
#define FL_CONFIG_SECRET 0x1   /* kept in sodium_malloc memory, dumped as "(set)" */
#define FL_CONFIG_REQUIRED 0x2 /* must be set by some source (a string: to non-NULL; a list:
                                  to one value or more; in a group: one of the group) */
#define FL_CONFIG_POSITIONAL 0x4 /* filled by the next argument that is not a flag, in table
                                    order; never a flag, never from the file or environment */
#define FL_CONFIG_LIST 0x8       /* a STRING entry whose field is an fl_config_list_t: every
                                    flag (or file line) adds one value; a later source
                                    replaces an earlier one's; max (if > 0) caps the count */
#define FL_CONFIG_ENV 0x10       /* in a cli table, read from <PREFIX><NAME> (other tables
                                    read every entry from the environment) */
#define FL_CONFIG_SWITCH 0x20    /* a BOOL that stands alone: "--x" true, "--no-x" false,
                                    "--x=<bool>"; the next word is never its value */

/* Return codes of fl_config_load() and fl_config_set(). */
#define FL_CONFIG_HELP 1        /* help was printed to stdout; exit 0 */
#define FL_CONFIG_EUNKNOWN (-2) /* unknown key or flag */
#define FL_CONFIG_EVALUE (-3)   /* a value broke its entry's rule */
#define FL_CONFIG_EFILE (-4)    /* the config file could not be read */
#define FL_CONFIG_ESYNTAX (-5)  /* a file line without '=', a flag without its value */
#define FL_CONFIG_EMISSING (-6) /* a required setting has no value */
#define FL_CONFIG_ECONFLICT (-7) /* two entries of one group were given */
#define FL_CONFIG_ENOMEM (-12)

/*
 * An extra check run on a parsed value (field points at the converted value,
 * of the entry's C type). Returns 0, or -1 after writing the rule that was
 * broken to errstr (e.g. "must be host:port").
 */
typedef int (*fl_config_check_fn)(const void *field, char *errstr, size_t errstr_size);

typedef struct fl_config_entry_s {
    const char *name; /* dotted, e.g. "commit.interval.ms" */
    fl_config_type_t type;
    const char *def; /* default as text, parsed like any value; NULL = unset / 0 */
    const char *doc; /* one sentence for --help and docs */
    size_t offset;   /* offsetof(component struct, field) */
    int64_t min, max;
    const char *const *choices; /* FL_CONFIG_ENUM: NULL-terminated allowed values */
    fl_config_check_fn check;   /* optional; for a list, run on each value */
    int flags;                  /* FL_CONFIG_SECRET | FL_CONFIG_REQUIRED | ... */
    char short_name;            /* optional one-letter alias: 'q' for -q */
    int group;                  /* non-zero: excludes the other entries of this group */
    const char *metavar;        /* optional placeholder in help: "ID", "P:O,..." */
} fl_config_entry_t;

/* The field of an FL_CONFIG_LIST entry: the values in the order given, owned
 * by the fl_config_t. */
typedef struct fl_config_list_s {
    const char *const *items;
    size_t count;
} fl_config_list_t;

typedef struct fl_config_table_s {
    const char *program; /* for "Usage: <program> [options]" */
    const char *usage;   /* optional text after the options, e.g. "<command> [args]"
                            (cli: the synopsis between the program and "[options]") */
    const char *summary; /* optional paragraph printed under the usage line */
    const char *env_prefix; /* NULL = "FLUSHLINE_" */
    const fl_config_entry_t *entries;
    size_t count;
    bool kafka; /* accept kafka.* keys and -X */
    bool cli;   /* a command-line tool's options (see above) */
} fl_config_table_t;

#define FL_CONFIG_COUNT(entries) (sizeof(entries) / sizeof((entries)[0]))

/* Where a deployment's Kafka is: bootstrap and prefix, filling the string
 * fields `bootstrap_field` and `prefix_field` of `cfgtype` (a member path such
 * as common.bootstrap is fine). Every daemon and every Kafka-facing CLI
 * command takes them in these words; flagged FL_CONFIG_ENV so that CLI tables
 * too read FLUSHLINE_BOOTSTRAP and FLUSHLINE_PREFIX. Needs flushline/topics.h
 * for the default prefix. */
#define FL_CONFIG_KAFKA_ENTRIES(cfgtype, bootstrap_field, prefix_field)                            \
    {.name = "bootstrap", .type = FL_CONFIG_STRING, .def = "127.0.0.1:9092",                      \
     .offset = offsetof(cfgtype, bootstrap_field), .flags = FL_CONFIG_ENV,                        \
     .doc = "Kafka bootstrap servers (host:port,...)."},                                           \
    {.name = "prefix", .type = FL_CONFIG_STRING, .def = FL_TOPICS_DEFAULT_PREFIX,                  \
     .offset = offsetof(cfgtype, prefix_field), .flags = FL_CONFIG_ENV,                           \
     .doc = "Topic name prefix."}

/* The entries every component of a deployment has, in the same words:
 * bootstrap, prefix and partitions, as fields of the struct `cfgtype` with those
 * names; `who` names the component in the partitions doc ("the gateway").
 * Needs flushline/topics.h for the default prefix. */
#define FL_CONFIG_DEPLOYMENT_ENTRIES(cfgtype, who)                                                    \
    FL_CONFIG_KAFKA_ENTRIES(cfgtype, bootstrap, prefix),                                          \
    {.name = "partitions", .type = FL_CONFIG_INT, .def = "12", .offset = offsetof(cfgtype, partitions), \
     .min = 1, .max = FL_MAX_PARTITIONS,                                                           \
     .doc = "Partition count every topic must have; " who " refuses to start otherwise."}

/* log.level, the same in every daemon: cfgtype's const char *log_level. */
#define FL_CONFIG_LOG_LEVEL_ENTRY(cfgtype)                                                         \
    {.name = "log.level", .type = FL_CONFIG_STRING, .def = "info",                                \
     .offset = offsetof(cfgtype, log_level), .doc = "error, warn, info or debug."}

/* The end of a daemon's settings table, after program and summary: its
 * entries (an array) and the kafka.* pass-through settings. */
#define FL_CONFIG_DAEMON_TABLE(entries_)                                                           \
    .entries = (entries_), .count = FL_CONFIG_COUNT(entries_), .kafka = true

/* The loaded configuration: owns every string the target struct points to
 * and the kafka.* pass-through settings. */
typedef struct fl_config_s fl_config_t;

/*
 * A holder for table and target (both kept by reference and must outlive
 * it) with every entry set to its default in target. NULL with errstr when a
 * default is invalid (a bug in the table) or out of memory.
 */
fl_config_t *fl_config_new(const fl_config_table_t *table, void *target, char *errstr,
                           size_t errstr_size);

/*
 * Applies the config file, the environment and argv (argv[0] is the program
 * name), in that order, then checks required settings. Call once. Arguments
 * that are not flags are kept, in order, for fl_config_args().
 * Returns 0; FL_CONFIG_HELP after printing help (or, for --help-markdown, the
 * Markdown reference) to stdout; or a negative FL_CONFIG_E* with errstr
 * naming the key, its source and the rule. On error target holds a mix of
 * sources and should not be used.
 */
int fl_config_load(fl_config_t *cfg, int argc, char **argv, char *errstr, size_t errstr_size);

/* Sets one key (a table name or kafka.<x>) as if from a flag; for tests and
 * tools. 0 or a negative FL_CONFIG_E*, with errstr. */
int fl_config_set(fl_config_t *cfg, const char *name, const char *value, char *errstr,
                  size_t errstr_size);

/* True when name (a table entry) was given by some source, not left at its
 * default. */
bool fl_config_is_set(const fl_config_t *cfg, const char *name);

/* The kafka.* settings collected (names without "kafka."); owned by cfg. */
const fl_kafka_props_t *fl_config_kafka(const fl_config_t *cfg);

/* The non-flag arguments left after the positional entries (pointers into
 * the argv given to load; always none in a cli table); count in *argc. The
 * array is owned by cfg. */
char **fl_config_args(const fl_config_t *cfg, int *argc);

/* The config file read, or NULL. */
const char *fl_config_file(const fl_config_t *cfg);

/* Clears the target's string fields, frees (and for secrets wipes) every
 * string. NULL is fine. */
void fl_config_free(fl_config_t *cfg);

/* --help text: every flag with its type, default, env variable, bounds and
 * doc; then --config, -X (when kafka is on) and --help. */
void fl_config_print_help(const fl_config_table_t *table, FILE *fp);

/* A Markdown reference table (name, type, default, environment, doc). */
void fl_config_print_markdown(const fl_config_table_t *table, FILE *fp);

/*
 * The effective configuration, one "name = value  # source" line per entry
 * (then one per kafka.* setting); secrets (entries flagged FL_CONFIG_SECRET
 * and librdkafka names containing "password", "secret" or ".pem") print as
 * "(set)" or "(unset)".
 */
void fl_config_dump(const fl_config_t *cfg, FILE *fp);

/* Parsers used by the loader, exposed for tests and tools. 0 or -1. */
int fl_config_parse_duration_ms(const char *text, int64_t *ms);
int fl_config_parse_size(const char *text, int64_t *bytes);
int fl_config_parse_bool(const char *text, bool *v);

const char *fl_config_strerror(int err);

#endif
