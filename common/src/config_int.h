/* SPDX-License-Identifier: Apache-2.0 */
/*
 * config_int: internals shared by the config files: config.c sets values
 * from every source and runs the checks, config_table.c looks entries up
 * and parses and formats values by type, config_help.c prints --help, the
 * markdown docs and the dump from the same table.
 */
#ifndef FL_CONFIG_INT_H
#define FL_CONFIG_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <librdkafka/rdkafka.h>

#include "flushline/config.h"

#define KAFKA_PREFIX "kafka."
#define KAFKA_MAX (sizeof(((fl_kafka_props_t *)0)->names) / sizeof(char *))

/* Where a value came from, in the order sources are applied. */
typedef enum source_e { SRC_DEFAULT, SRC_FILE, SRC_ENV, SRC_FLAG } source_t;

typedef struct slot_s {
    char *str;      /* FL_CONFIG_STRING: the owned value the target points to */
    char *where;    /* "default", "flag --x", "file f:3", "env X", "argument <x>" */
    char **items;   /* FL_CONFIG_LIST: the owned values the target's list points to */
    size_t nitems;
    source_t source;
} slot_t;

struct fl_config_s {
    const fl_config_table_t *table;
    void *target;
    slot_t *slots;
    fl_kafka_props_t kafka; /* names and values owned here */
    char *kafka_where[KAFKA_MAX];
    rd_kafka_conf_t *scratch; /* validates kafka.* names and values */
    char **args;
    int nargs;
    char *file;
};

/* ---- config_table.c ---- */

const char *cf_env_prefix(const fl_config_table_t *table);
void cf_env_name(const fl_config_table_t *table, const char *name, char *out, size_t size);
char *cf_str_dup(const char *s, bool secret);
void cf_str_free(char *s, bool secret);
void *cf_field(const fl_config_t *cfg, const fl_config_entry_t *e);
bool cf_positional(const fl_config_entry_t *e);
/* The entry a key names (positional entries have no key). */
const fl_config_entry_t *cf_find_entry(const fl_config_table_t *table, const char *name,
                                       size_t len);
const fl_config_entry_t *cf_find_short(const fl_config_table_t *table, char c);
/* Whether an entry reads the environment: in a cli table only those that
 * ask to. */
bool cf_reads_env(const fl_config_table_t *table, const fl_config_entry_t *e);
/* An entry as a user types it: "name" in settings tables; "--name" or
 * "<name>" in a cli table. */
const char *cf_display(const fl_config_table_t *table, const fl_config_entry_t *e, char *buf,
                       size_t size);
/* FL_CONFIG_DURATION_S: a duration in milliseconds where a plain number is
 * seconds. 0 or -1. */
int cf_parse_seconds(const char *text, int64_t *ms);
int cf_parse_double(const char *text, double *out);
int cf_parse_int(const char *text, int64_t *out);
void cf_format_number(const fl_config_entry_t *e, int64_t v, char *out, size_t size);
bool cf_bounded(const fl_config_entry_t *e);
void cf_format_range(const fl_config_entry_t *e, char *out, size_t size);
void cf_format_choices(const fl_config_entry_t *e, const char *sep, char *out, size_t size);
/* The rule a value of this entry must follow, for error messages. */
void cf_describe_rule(const fl_config_entry_t *e, char *out, size_t size);
/* The entries of group g but skip (NULL: all of them), "--a, --b or --c";
 * md: each in backticks. */
void cf_group_names(const fl_config_table_t *table, int g, const fl_config_entry_t *skip,
                    bool md, char *out, size_t size);

#endif
