/* SPDX-License-Identifier: Apache-2.0 */
/*
 * config_help: --help, the markdown reference and the dump of the values
 * in force, all printed from the same table the values are set by.
 */
#include "config_int.h"

#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <math.h>
#include <sodium.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include <librdkafka/rdkafka.h>

#include "flushline/log.h"

/* ---- help, docs, dump ---- */

static const char *type_name(fl_config_type_t type)
{
    static const char *const names[] = {"string", "int",  "bool",     "duration",
                                        "size",   "enum", "duration", "number"};
    return names[type];
}

static const char *default_text(const fl_config_entry_t *e)
{
    if (!e->def)
        return "(none)";
    if (e->flags & FL_CONFIG_SECRET)
        return "(set)";
    return e->def[0] ? e->def : "\"\"";
}

/* A switch that is on by default is written "--no-<name>". */
static bool switch_on(const fl_config_entry_t *e)
{
    bool b = false;
    return e->def && fl_config_parse_bool(e->def, &b) == 0 && b;
}

/* The entry as typed: "--name <type>", "-q, --quiet", "<action>"; for
 * Markdown each form in backticks and without the value's type. */
static void flag_label(const fl_config_table_t *table, const fl_config_entry_t *e, bool md,
                       char *out, size_t size)
{
    const char *q = md ? "`" : "";
    char value[520] = "";
    size_t n = 0;

    if (cf_positional(e)) {
        snprintf(out, size, "%s<%s>%s", q, e->name, q);
        return;
    }
    if (e->short_name)
        n += (size_t)snprintf(out, size, "%s-%c%s, ", q, e->short_name, q);
    if (e->type == FL_CONFIG_BOOL && (e->flags & FL_CONFIG_SWITCH)) {
        snprintf(out + n, size - n, "%s--%s%s%s", q, switch_on(e) ? "no-" : "", e->name, q);
        return;
    }
    if (e->type == FL_CONFIG_BOOL) {
        snprintf(out + n, size - n, md ? "`--%s`, `--no-%s`" : "--%s[=<bool>], --no-%s", e->name,
                 e->name);
        return;
    }
    if (e->metavar)
        snprintf(value, sizeof value, " %s", e->metavar);
    else if (!md && e->type == FL_CONFIG_ENUM) {
        value[0] = ' ';
        value[1] = '<';
        cf_format_choices(e, "|", value + 2, sizeof value - 3);
        strcat(value, ">");
    } else if (!md)
        snprintf(value, sizeof value, " <%s>", type_name(e->type));
    snprintf(out + n, size - n, "%s--%s%s%s", q, e->name, value, q);
}

/* The notes in a help entry's brackets, "default 12; range 1..1024; env X". */
static void help_notes(const fl_config_table_t *table, const fl_config_entry_t *e, char *out,
                       size_t size)
{
    char buf[600];
    size_t n = 0;
#define NOTE(...)                                                                                  \
    do {                                                                                           \
        if (n < size)                                                                              \
            n += (size_t)snprintf(out + n, size - n, "%s", n ? "; " : "");                        \
        if (n < size)                                                                              \
            n += (size_t)snprintf(out + n, size - n, __VA_ARGS__);                                 \
    } while (0)
    out[0] = '\0';
    /* a cli table leaves out what goes without saying */
    if (!table->cli || (e->def && e->type != FL_CONFIG_BOOL))
        NOTE("default %s", default_text(e));
    if (cf_positional(e) && e->type == FL_CONFIG_ENUM) {
        cf_format_choices(e, ", ", buf, sizeof buf);
        NOTE("one of %s", buf);
    }
    if (cf_bounded(e)) {
        cf_format_range(e, buf, sizeof buf);
        NOTE("range %s", buf);
    }
    if (e->flags & FL_CONFIG_LIST) {
        if (e->max > 0)
            NOTE("repeatable, up to %" PRId64 " times", e->max);
        else
            NOTE("repeatable");
    }
    if (e->group) {
        cf_group_names(table, e->group, e, false, buf, sizeof buf);
        if (e->flags & FL_CONFIG_REQUIRED)
            NOTE("required unless %s", buf);
        else
            NOTE("not with %s", buf);
    } else if (e->flags & FL_CONFIG_REQUIRED) {
        NOTE("required");
    }
    if (cf_reads_env(table, e)) {
        cf_env_name(table, e->name, buf, sizeof buf);
        NOTE("env %s", buf);
    }
#undef NOTE
}

static bool has_type(const fl_config_table_t *table, fl_config_type_t a, fl_config_type_t b)
{
    for (size_t i = 0; i < table->count; i++)
        if (table->entries[i].type == a || table->entries[i].type == b)
            return true;
    return false;
}

/* text in lines of at most HELP_WIDTH columns (a longer word gets a line of
 * its own), each indented by indent spaces. */
#define HELP_WIDTH 79
static void print_wrapped(FILE *fp, int indent, const char *text)
{
    const char *p = text ? text : "";
    do {
        size_t room = HELP_WIDTH - (size_t)indent, len = strlen(p), cut = len;
        if (len > room) {
            cut = room;
            while (cut > 0 && p[cut] != ' ')
                cut--;
            if (cut == 0)
                cut = strcspn(p, " ");
        }
        fprintf(fp, "%*s%.*s\n", indent, "", (int)cut, p);
        p += cut;
        while (*p == ' ')
            p++;
    } while (*p);
}

static void help_entry(const fl_config_table_t *table, const fl_config_entry_t *e, FILE *fp)
{
    char label[600], notes[1200];
    flag_label(table, e, false, label, sizeof label);
    help_notes(table, e, notes, sizeof notes);
    fprintf(fp, "  %s\n", label);
    print_wrapped(fp, 6, e->doc);
    if (notes[0])
        fprintf(fp, "      [%s]\n", notes);
}

void fl_config_print_help(const fl_config_table_t *table, FILE *fp)
{
    const char *program = table->program ? table->program : "flushline";
    bool any_positional = false;

    if (table->cli)
        fprintf(fp, "usage: %s%s%s [options]\n", program, table->usage ? " " : "",
                table->usage ? table->usage : "");
    else
        fprintf(fp, "Usage: %s [options]%s%s\n", program, table->usage ? " " : "",
                table->usage ? table->usage : "");
    if (table->summary) {
        fputc('\n', fp);
        print_wrapped(fp, 0, table->summary);
    }
    for (size_t i = 0; i < table->count; i++)
        if (cf_positional(&table->entries[i])) {
            if (!any_positional)
                fprintf(fp, "\nArguments:\n");
            any_positional = true;
            help_entry(table, &table->entries[i], fp);
        }
    if (table->cli) {
        fprintf(fp, "\nOptions:\n");
    } else {
        char head[300];
        snprintf(head, sizeof head,
                 "Options (flags override %s* environment variables, which override the "
                 "config file, which overrides the defaults):",
                 cf_env_prefix(table));
        fputc('\n', fp);
        print_wrapped(fp, 0, head);
    }
    for (size_t i = 0; i < table->count; i++)
        if (!cf_positional(&table->entries[i]))
            help_entry(table, &table->entries[i], fp);
    if (!table->cli) {
        fprintf(fp, "  --config <file>\n");
        print_wrapped(fp, 6, "Read settings from FILE, one \"name = value\" a line ('#' starts "
                             "a comment).");
        fprintf(fp, "      [env %sCONFIG]\n", cf_env_prefix(table));
    }
    if (table->kafka && table->cli) {
        fprintf(fp, "  -X <name>=<value>\n");
        print_wrapped(fp, 6, "Pass a setting through to librdkafka (repeatable; also "
                             "--kafka.<name> <value>).");
    } else if (table->kafka) {
        fprintf(fp, "  --kafka.<name> <value>, -X <name>=<value>\n");
        print_wrapped(fp, 6, "Pass a setting through to librdkafka (also \"kafka.<name> = "
                             "value\" in the config file).");
    }
    fprintf(fp, "  -h, --help\n      Print this help and exit (--help-markdown: the reference "
                "as Markdown).\n");
    if (has_type(table, FL_CONFIG_DURATION_MS, FL_CONFIG_SIZE))
        fprintf(fp, "\nDurations take ms, s, m, h or d (plain numbers are ms); sizes take K, M,\n"
                    "G or T (multiples of 1024).\n");
    if (has_type(table, FL_CONFIG_DURATION_S, FL_CONFIG_DURATION_S))
        fprintf(fp, "\nDurations take ms, s, m, h or d (plain numbers are seconds).\n");
}

static void md_escaped(FILE *fp, const char *s)
{
    for (; s && *s; s++) {
        if (*s == '|')
            fputs("\\|", fp);
        else if (*s == '\n')
            fputc(' ', fp);
        else
            fputc(*s, fp);
    }
}

static void md_type(const fl_config_table_t *table, const fl_config_entry_t *e, FILE *fp)
{
    char buf[600];
    if (e->type == FL_CONFIG_ENUM) {
        cf_format_choices(e, ", ", buf, sizeof buf);
        fprintf(fp, "one of ");
        md_escaped(fp, buf);
        return;
    }
    if (table->cli && (e->flags & FL_CONFIG_SWITCH)) {
        fprintf(fp, "flag");
        return;
    }
    fprintf(fp, "%s", type_name(e->type));
    if (e->type == FL_CONFIG_DURATION_MS)
        fprintf(fp, " (ms)");
    else if (e->type == FL_CONFIG_DURATION_S)
        fprintf(fp, " (s)");
    if (cf_bounded(e)) {
        cf_format_range(e, buf, sizeof buf);
        fprintf(fp, ", %s", buf);
    }
    if (e->flags & FL_CONFIG_LIST) {
        fprintf(fp, ", repeatable");
        if (e->max > 0)
            fprintf(fp, " (up to %" PRId64 ")", e->max);
    }
}

/* A cli table's reference: options as typed, the environment column only
 * when some option reads the environment. */
static void md_cli(const fl_config_table_t *table, FILE *fp)
{
    char env[256], buf[600];
    bool any_env = false;

    for (size_t i = 0; i < table->count; i++)
        any_env = any_env || cf_reads_env(table, &table->entries[i]);
    fprintf(fp, "| Option | Type | Default |%s Description |\n", any_env ? " Environment |" : "");
    fprintf(fp, "|---|---|---|%s---|\n", any_env ? "---|" : "");
    for (size_t i = 0; i < table->count; i++) {
        const fl_config_entry_t *e = &table->entries[i];
        flag_label(table, e, true, buf, sizeof buf);
        fprintf(fp, "| ");
        md_escaped(fp, buf);
        fprintf(fp, " | ");
        md_type(table, e, fp);
        fprintf(fp, " | ");
        if (e->group && (e->flags & FL_CONFIG_REQUIRED)) {
            cf_group_names(table, e->group, e, true, buf, sizeof buf);
            fprintf(fp, "required unless ");
            md_escaped(fp, buf);
        } else if (e->flags & FL_CONFIG_REQUIRED) {
            fprintf(fp, "required");
        } else if (e->def && !(e->flags & FL_CONFIG_SWITCH)) {
            fputc('`', fp);
            md_escaped(fp, default_text(e));
            fputc('`', fp);
        }
        fprintf(fp, " |");
        if (any_env && cf_reads_env(table, e)) {
            cf_env_name(table, e->name, env, sizeof env);
            fprintf(fp, " `%s` |", env);
        } else if (any_env) {
            fprintf(fp, " |");
        }
        fputc(' ', fp);
        md_escaped(fp, e->doc);
        if (e->group && !(e->flags & FL_CONFIG_REQUIRED)) {
            cf_group_names(table, e->group, e, true, buf, sizeof buf);
            fprintf(fp, " Not with ");
            md_escaped(fp, buf);
            fputc('.', fp);
        }
        fprintf(fp, " |\n");
    }
    if (table->kafka)
        fprintf(fp, "| `-X <name>=<value>` | string | |%s Passed through to librdkafka as "
                    "`<name>` (repeatable; also `--kafka.<name> <value>`). |\n",
                any_env ? " |" : "");
}

void fl_config_print_markdown(const fl_config_table_t *table, FILE *fp)
{
    char env[256];

    if (table->cli) {
        md_cli(table, fp);
        return;
    }
    fprintf(fp, "| Setting | Type | Default | Environment | Description |\n");
    fprintf(fp, "|---|---|---|---|---|\n");
    for (size_t i = 0; i < table->count; i++) {
        const fl_config_entry_t *e = &table->entries[i];
        cf_env_name(table, e->name, env, sizeof env);
        fprintf(fp, "| `%s` | ", e->name);
        md_type(table, e, fp);
        fprintf(fp, " | ");
        if (e->def) {
            fputc('`', fp);
            md_escaped(fp, default_text(e));
            fputc('`', fp);
        } else {
            fprintf(fp, "%s", (e->flags & FL_CONFIG_REQUIRED) ? "required" : "(none)");
        }
        fprintf(fp, " | `%s` | ", env);
        md_escaped(fp, e->doc);
        fprintf(fp, " |\n");
    }
    if (table->kafka)
        fprintf(fp, "| `kafka.<name>` | string | | | Passed through to librdkafka as "
                    "`<name>` (flags and config file only; also `-X <name>=<value>`). |\n");
}

void fl_config_dump(const fl_config_t *cfg, FILE *fp)
{
    const fl_config_table_t *table = cfg->table;
    char buf[64];

    for (size_t i = 0; i < table->count; i++) {
        const fl_config_entry_t *e = &table->entries[i];
        const void *f = cf_field(cfg, e);
        const char *where = cfg->slots[i].where ? cfg->slots[i].where : "default";
        const char *s;
        int idx;
        fprintf(fp, "%s = ", e->name);
        if (e->flags & FL_CONFIG_LIST) {
            const fl_config_list_t *list = f;
            for (size_t k = 0; k < list->count; k++)
                fprintf(fp, "%s%s", k ? ", " : "", list->items[k]);
            fprintf(fp, "  # %s\n", where);
            continue;
        }
        switch (e->type) {
        case FL_CONFIG_STRING:
            s = *(const char *const *)f;
            if (e->flags & FL_CONFIG_SECRET)
                fputs(s ? "(set)" : "(unset)", fp);
            else
                fputs(s ? s : "(unset)", fp);
            break;
        case FL_CONFIG_BOOL:
            fputs(*(const bool *)f ? "true" : "false", fp);
            break;
        case FL_CONFIG_ENUM:
            idx = *(const int *)f;
            fputs(idx >= 0 ? e->choices[idx] : "(unset)", fp);
            break;
        case FL_CONFIG_DOUBLE:
            fprintf(fp, "%g", *(const double *)f);
            break;
        default:
            cf_format_number(e, *(const int64_t *)f, buf, sizeof buf);
            fputs(buf, fp);
            break;
        }
        fprintf(fp, "  # %s\n", where);
    }
    for (size_t i = 0; i < cfg->kafka.count; i++)
        fprintf(fp, "kafka.%s = %s  # %s\n", cfg->kafka.names[i],
                fl_kafka_is_secret(cfg->kafka.names[i]) ? "(set)" : cfg->kafka.values[i],
                cfg->kafka_where[i]);
}
