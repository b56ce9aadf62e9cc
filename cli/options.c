/* SPDX-License-Identifier: Apache-2.0 */
/* options: what every subcommand shares: loading its option table, --help,
 * usage errors, the checks the tables name, and the dispatch of a command
 * with subcommands (fl_cli_dispatch, which reaches them only through the
 * table it is given). Called by the cmd_*.c files and cli.c. */
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

static bool is_help(const char *arg)
{
    return strcmp(arg, "--help") == 0 || strcmp(arg, "-h") == 0 || strcmp(arg, "help") == 0;
}

int fl_cli_dispatch(const fl_cli_group_t *group, int argc, char **argv)
{
    if (argc < 2) {
        group->help(stderr);
        return FL_EXIT_USAGE;
    }
    if (is_help(argv[1])) {
        group->help(stdout);
        return FL_EXIT_OK;
    }
    for (size_t i = 0; i < group->count; i++)
        if (strcmp(argv[1], group->subs[i].name) == 0)
            return group->subs[i].run(argc - 1, argv + 1);
    fprintf(stderr, "%s: unknown %s \"%s\"\n", group->program, group->what, argv[1]);
    group->help(stderr);
    return FL_EXIT_USAGE;
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
