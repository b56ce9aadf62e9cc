/* SPDX-License-Identifier: Apache-2.0 */
/*
 * config_table: lookups in a config table (entries by name, short flag,
 * environment name), and values parsed and formatted by type: durations
 * and sizes with units, numbers, bounds and choices, the text that
 * describes an entry's rule in errors and docs.
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

/* ---- small helpers ---- */

const char *cf_env_prefix(const fl_config_table_t *table)
{
    return table->env_prefix ? table->env_prefix : "FLUSHLINE_";
}

void cf_env_name(const fl_config_table_t *table, const char *name, char *out, size_t size)
{
    size_t n = (size_t)snprintf(out, size, "%s", cf_env_prefix(table));
    for (; *name && n + 1 < size; name++) {
        char c = *name;
        if (c == '.' || c == '-')
            c = '_';
        else if (c >= 'a' && c <= 'z')
            c = (char)(c - 'a' + 'A');
        out[n++] = c;
    }
    if (n < size)
        out[n] = '\0';
}

char *cf_str_dup(const char *s, bool secret)
{
    size_t len = strlen(s);
    char *p = secret ? sodium_malloc(len + 1) : malloc(len + 1);
    if (p)
        memcpy(p, s, len + 1);
    return p;
}

void cf_str_free(char *s, bool secret)
{
    if (s && secret)
        sodium_free(s);
    else
        free(s);
}

void *cf_field(const fl_config_t *cfg, const fl_config_entry_t *e)
{
    return (char *)cfg->target + e->offset;
}

bool cf_positional(const fl_config_entry_t *e)
{
    return (e->flags & FL_CONFIG_POSITIONAL) != 0;
}

/* The entry a key names (positional entries have no key). */
const fl_config_entry_t *cf_find_entry(const fl_config_table_t *table, const char *name,
                                       size_t len)
{
    for (size_t i = 0; i < table->count; i++)
        if (!cf_positional(&table->entries[i]) && strlen(table->entries[i].name) == len &&
            memcmp(table->entries[i].name, name, len) == 0)
            return &table->entries[i];
    return NULL;
}

const fl_config_entry_t *cf_find_short(const fl_config_table_t *table, char c)
{
    for (size_t i = 0; i < table->count; i++)
        if (table->entries[i].short_name == c && !cf_positional(&table->entries[i]))
            return &table->entries[i];
    return NULL;
}

/* Whether an entry reads the environment: in a cli table only those that
 * ask to. */
bool cf_reads_env(const fl_config_table_t *table, const fl_config_entry_t *e)
{
    return !cf_positional(e) && (!table->cli || (e->flags & FL_CONFIG_ENV));
}

/* An entry as a user types it: "name" in settings tables; "--name" or
 * "<name>" in a cli table. */
const char *cf_display(const fl_config_table_t *table, const fl_config_entry_t *e, char *buf,
                       size_t size)
{
    if (!table->cli)
        return e->name;
    snprintf(buf, size, cf_positional(e) ? "<%s>" : "--%s", e->name);
    return buf;
}

/* ---- number parsing ---- */

typedef struct unit_s {
    const char *suffix;
    int64_t mult;
} unit_t;

static const unit_t duration_units[] = {{"", 1},          {"ms", 1},       {"s", 1000},
                                        {"m", 60000},     {"h", 3600000},  {"d", 86400000},
                                        {NULL, 0}};
/* FL_CONFIG_DURATION_S: the same units, but a plain number is seconds. */
static const unit_t seconds_units[] = {{"", 1000},        {"ms", 1},       {"s", 1000},
                                       {"m", 60000},      {"h", 3600000},  {"d", 86400000},
                                       {NULL, 0}};
static const unit_t size_units[] = {
    {"", 1},          {"b", 1},          {"k", 1LL << 10},   {"kb", 1LL << 10}, {"kib", 1LL << 10},
    {"m", 1LL << 20}, {"mb", 1LL << 20}, {"mib", 1LL << 20}, {"g", 1LL << 30},  {"gb", 1LL << 30},
    {"gib", 1LL << 30}, {"t", 1LL << 40}, {"tb", 1LL << 40}, {"tib", 1LL << 40}, {NULL, 0}};

/*
 * "<digits>[.<digits>][blanks]<unit>" with an exact integer result: the
 * fraction is allowed only when it scales to a whole number ("1.5s" = 1500,
 * "1.0005s" is refused). No sign. 0 or -1 (syntax, unknown unit, overflow).
 */
static int parse_scaled(const char *text, const unit_t *units, int64_t *out)
{
    const char *p = text;
    unsigned __int128 ip = 0, frac = 0, denom = 1, total;
    size_t digits = 0;
    int64_t mult = -1;

    while (*p == ' ' || *p == '\t')
        p++;
    for (; *p >= '0' && *p <= '9'; p++, digits++) {
        ip = ip * 10 + (unsigned)(*p - '0');
        if (ip > INT64_MAX)
            return -1;
    }
    if (*p == '.') {
        p++;
        for (; *p >= '0' && *p <= '9'; p++, digits++) {
            if (denom >= 1000000000000000000ULL)
                return -1;
            frac = frac * 10 + (unsigned)(*p - '0');
            denom *= 10;
        }
    }
    if (digits == 0)
        return -1;
    while (*p == ' ' || *p == '\t')
        p++;
    {
        size_t len = strlen(p);
        while (len > 0 && (p[len - 1] == ' ' || p[len - 1] == '\t'))
            len--;
        for (const unit_t *u = units; u->suffix; u++)
            if (strlen(u->suffix) == len && strncasecmp(u->suffix, p, len) == 0) {
                mult = u->mult;
                break;
            }
    }
    if (mult < 0)
        return -1;
    if ((frac * (unsigned __int128)mult) % denom != 0)
        return -1;
    total = ip * (unsigned __int128)mult + frac * (unsigned __int128)mult / denom;
    if (total > INT64_MAX)
        return -1;
    *out = (int64_t)total;
    return 0;
}

int fl_config_parse_duration_ms(const char *text, int64_t *ms)
{
    return parse_scaled(text, duration_units, ms);
}

int fl_config_parse_size(const char *text, int64_t *bytes)
{
    return parse_scaled(text, size_units, bytes);
}

int cf_parse_seconds(const char *text, int64_t *ms)
{
    return parse_scaled(text, seconds_units, ms);
}

int fl_config_parse_bool(const char *text, bool *v)
{
    static const char *const yes[] = {"true", "yes", "on", "1"};
    static const char *const no[] = {"false", "no", "off", "0"};
    for (size_t i = 0; i < 4; i++) {
        if (strcasecmp(text, yes[i]) == 0) {
            *v = true;
            return 0;
        }
        if (strcasecmp(text, no[i]) == 0) {
            *v = false;
            return 0;
        }
    }
    return -1;
}

int cf_parse_double(const char *text, double *out)
{
    char *end;
    double v;
    errno = 0;
    v = strtod(text, &end);
    if (errno || end == text || *end != '\0' || text[0] == ' ' || text[0] == '\t' || !isfinite(v))
        return -1;
    *out = v;
    return 0;
}

int cf_parse_int(const char *text, int64_t *out)
{
    char *end;
    long long v;
    errno = 0;
    v = strtoll(text, &end, 10);
    if (errno || end == text || *end != '\0' || text[0] == ' ' || text[0] == '\t')
        return -1;
    *out = v;
    return 0;
}

/* The largest unit that divides v exactly, so that "60000" prints "1m". */
static void format_scaled(char *out, size_t size, int64_t v, const unit_t *units,
                          const char *const *names, size_t nnames)
{
    size_t best = 0;
    for (size_t i = 0; i < nnames; i++)
        if (v != 0 && units[i].mult <= v && v % units[i].mult == 0)
            best = i;
    snprintf(out, size, "%" PRId64 "%s", v / units[best].mult, names[best]);
}

static void format_duration(char *out, size_t size, int64_t ms)
{
    static const unit_t units[] = {{"ms", 1}, {"s", 1000}, {"m", 60000}, {"h", 3600000},
                                   {"d", 86400000}};
    static const char *const names[] = {"ms", "s", "m", "h", "d"};
    format_scaled(out, size, ms, units, names, 5);
}

static void format_size(char *out, size_t size, int64_t bytes)
{
    static const unit_t units[] = {{"", 1}, {"K", 1LL << 10}, {"M", 1LL << 20},
                                   {"G", 1LL << 30}, {"T", 1LL << 40}};
    static const char *const names[] = {"", "K", "M", "G", "T"};
    format_scaled(out, size, bytes, units, names, 5);
}

void cf_format_number(const fl_config_entry_t *e, int64_t v, char *out, size_t size)
{
    if (e->type == FL_CONFIG_DURATION_MS || e->type == FL_CONFIG_DURATION_S)
        format_duration(out, size, v);
    else if (e->type == FL_CONFIG_SIZE)
        format_size(out, size, v);
    else
        snprintf(out, size, "%" PRId64, v);
}

bool cf_bounded(const fl_config_entry_t *e)
{
    return (e->type == FL_CONFIG_INT || e->type == FL_CONFIG_DURATION_MS ||
            e->type == FL_CONFIG_SIZE || e->type == FL_CONFIG_DURATION_S ||
            e->type == FL_CONFIG_DOUBLE) &&
           !(e->min == 0 && e->max == 0);
}

void cf_format_range(const fl_config_entry_t *e, char *out, size_t size)
{
    char lo[32], hi[32];
    cf_format_number(e, e->min, lo, sizeof lo);
    if (e->max == INT64_MAX) { /* no bound but the type's */
        snprintf(out, size, ">= %s", lo);
        return;
    }
    cf_format_number(e, e->max, hi, sizeof hi);
    snprintf(out, size, "%s..%s", lo, hi);
}

void cf_format_choices(const fl_config_entry_t *e, const char *sep, char *out, size_t size)
{
    size_t n = 0;
    out[0] = '\0';
    for (size_t i = 0; e->choices && e->choices[i] && n < size; i++)
        n += (size_t)snprintf(out + n, size - n, "%s%s", i ? sep : "", e->choices[i]);
}

/* The rule a value of this entry must follow, for error messages. */
void cf_describe_rule(const fl_config_entry_t *e, char *out, size_t size)
{
    char range[80], choices[512];
    switch (e->type) {
    case FL_CONFIG_STRING:
        snprintf(out, size, "expected a string");
        break;
    case FL_CONFIG_INT:
        snprintf(out, size, "expected a decimal integer");
        break;
    case FL_CONFIG_BOOL:
        snprintf(out, size, "expected true or false (or yes/no, on/off, 1/0)");
        break;
    case FL_CONFIG_DURATION_MS:
        snprintf(out, size, "expected a duration such as 250ms, 1.5s, 2m or 1h "
                            "(a plain number is milliseconds)");
        break;
    case FL_CONFIG_SIZE:
        snprintf(out, size, "expected a size such as 512, 64K, 16M or 1G "
                            "(K/M/G/T are multiples of 1024)");
        break;
    case FL_CONFIG_ENUM:
        cf_format_choices(e, ", ", choices, sizeof choices);
        snprintf(out, size, "expected one of: %s", choices);
        break;
    case FL_CONFIG_DURATION_S:
        snprintf(out, size, "expected a duration such as 30, 1.5s, 2m or 1h "
                            "(a plain number is seconds)");
        break;
    case FL_CONFIG_DOUBLE:
        snprintf(out, size, "expected a number");
        break;
    }
    if (cf_bounded(e)) {
        size_t n = strlen(out);
        cf_format_range(e, range, sizeof range);
        snprintf(out + n, size - n, " in %s", range);
    }
}
/* The entries of group g but skip (NULL: all of them), "--a, --b or --c";
 * md: each in backticks. */
void cf_group_names(const fl_config_table_t *table, int g, const fl_config_entry_t *skip,
                    bool md, char *out, size_t size)
{
    size_t n = 0, count = 0, seen = 0;
    char name[160];
    const char *q = md ? "`" : "";
    for (size_t i = 0; i < table->count; i++)
        count += table->entries[i].group == g && &table->entries[i] != skip;
    out[0] = '\0';
    for (size_t i = 0; i < table->count && n < size; i++) {
        const fl_config_entry_t *e = &table->entries[i];
        if (e->group != g || e == skip)
            continue;
        seen++;
        n += (size_t)snprintf(out + n, size - n, "%s%s%s%s",
                              seen == 1 ? "" : seen == count ? " or " : ", ", q,
                              cf_display(table, e, name, sizeof name), q);
    }
}
