/* SPDX-License-Identifier: Apache-2.0 */
/*
 * config: see config.h. Every source funnels into set_entry(), which parses
 * the text by the entry's type, runs the entry's check and only then writes
 * the target struct, so a rejected value leaves the previous one in place.
 * Each entry remembers where its value came from, for fl_config_dump(), for
 * errors that name the source, and for the checks that run after every
 * source is in (required entries, groups).
 */
#include "flushline/config.h"

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

/* ---- small helpers ---- */

static const char *env_prefix(const fl_config_table_t *table)
{
    return table->env_prefix ? table->env_prefix : "FLUSHLINE_";
}

static void env_name(const fl_config_table_t *table, const char *name, char *out, size_t size)
{
    size_t n = (size_t)snprintf(out, size, "%s", env_prefix(table));
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

static char *str_dup(const char *s, bool secret)
{
    size_t len = strlen(s);
    char *p = secret ? sodium_malloc(len + 1) : malloc(len + 1);
    if (p)
        memcpy(p, s, len + 1);
    return p;
}

static void str_free(char *s, bool secret)
{
    if (s && secret)
        sodium_free(s);
    else
        free(s);
}

static void *field(const fl_config_t *cfg, const fl_config_entry_t *e)
{
    return (char *)cfg->target + e->offset;
}

static bool positional(const fl_config_entry_t *e)
{
    return (e->flags & FL_CONFIG_POSITIONAL) != 0;
}

/* The entry a key names (positional entries have no key). */
static const fl_config_entry_t *find_entry(const fl_config_table_t *table, const char *name,
                                           size_t len)
{
    for (size_t i = 0; i < table->count; i++)
        if (!positional(&table->entries[i]) && strlen(table->entries[i].name) == len &&
            memcmp(table->entries[i].name, name, len) == 0)
            return &table->entries[i];
    return NULL;
}

static const fl_config_entry_t *find_short(const fl_config_table_t *table, char c)
{
    for (size_t i = 0; i < table->count; i++)
        if (table->entries[i].short_name == c && !positional(&table->entries[i]))
            return &table->entries[i];
    return NULL;
}

/* Whether an entry reads the environment: in a cli table only those that
 * ask to. */
static bool reads_env(const fl_config_table_t *table, const fl_config_entry_t *e)
{
    return !positional(e) && (!table->cli || (e->flags & FL_CONFIG_ENV));
}

/* An entry as a user types it: "name" in settings tables; "--name" or
 * "<name>" in a cli table. */
static const char *display(const fl_config_table_t *table, const fl_config_entry_t *e, char *buf,
                           size_t size)
{
    if (!table->cli)
        return e->name;
    snprintf(buf, size, positional(e) ? "<%s>" : "--%s", e->name);
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

static int parse_double(const char *text, double *out)
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

static int parse_int(const char *text, int64_t *out)
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

static void format_number(const fl_config_entry_t *e, int64_t v, char *out, size_t size)
{
    if (e->type == FL_CONFIG_DURATION_MS || e->type == FL_CONFIG_DURATION_S)
        format_duration(out, size, v);
    else if (e->type == FL_CONFIG_SIZE)
        format_size(out, size, v);
    else
        snprintf(out, size, "%" PRId64, v);
}

static bool bounded(const fl_config_entry_t *e)
{
    return (e->type == FL_CONFIG_INT || e->type == FL_CONFIG_DURATION_MS ||
            e->type == FL_CONFIG_SIZE || e->type == FL_CONFIG_DURATION_S ||
            e->type == FL_CONFIG_DOUBLE) &&
           !(e->min == 0 && e->max == 0);
}

static void format_range(const fl_config_entry_t *e, char *out, size_t size)
{
    char lo[32], hi[32];
    format_number(e, e->min, lo, sizeof lo);
    if (e->max == INT64_MAX) { /* no bound but the type's */
        snprintf(out, size, ">= %s", lo);
        return;
    }
    format_number(e, e->max, hi, sizeof hi);
    snprintf(out, size, "%s..%s", lo, hi);
}

static void format_choices(const fl_config_entry_t *e, const char *sep, char *out, size_t size)
{
    size_t n = 0;
    out[0] = '\0';
    for (size_t i = 0; e->choices && e->choices[i] && n < size; i++)
        n += (size_t)snprintf(out + n, size - n, "%s%s", i ? sep : "", e->choices[i]);
}

/* The rule a value of this entry must follow, for error messages. */
static void describe_rule(const fl_config_entry_t *e, char *out, size_t size)
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
        format_choices(e, ", ", choices, sizeof choices);
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
    if (bounded(e)) {
        size_t n = strlen(out);
        format_range(e, range, sizeof range);
        snprintf(out + n, size - n, " in %s", range);
    }
}

/* ---- setting values ---- */

typedef union value_u {
    int64_t i;
    bool b;
    int idx;
    double d;
    const char *s;
} value_t;

static int value_error(const fl_config_t *cfg, const fl_config_entry_t *e, const char *text,
                       const char *where, const char *rule, char *errstr, size_t errstr_size)
{
    char buf[600], name[160];
    if (!rule) {
        describe_rule(e, buf, sizeof buf);
        rule = buf;
    }
    if (e->flags & FL_CONFIG_SECRET)
        text = "(secret)";
    if (cfg->table->cli && (strncmp(where, "flag ", 5) == 0 || strncmp(where, "argument ", 9) == 0))
        /* the option names itself; "(from flag --doc)" would say it twice */
        snprintf(errstr, errstr_size, "invalid value \"%s\" for %s: %s", text,
                 display(cfg->table, e, name, sizeof name), rule);
    else
        snprintf(errstr, errstr_size, "invalid value \"%s\" for %s (from %s): %s", text,
                 display(cfg->table, e, name, sizeof name), where, rule);
    return FL_CONFIG_EVALUE;
}

/* Parses text by the entry's type and bounds into v. 0 or FL_CONFIG_EVALUE. */
static int parse_value(const fl_config_t *cfg, const fl_config_entry_t *e, const char *text,
                       const char *where, value_t *v, char *errstr, size_t errstr_size)
{
    int bad = 0;
    switch (e->type) {
    case FL_CONFIG_STRING:
        v->s = text;
        break;
    case FL_CONFIG_INT:
        bad = parse_int(text, &v->i);
        break;
    case FL_CONFIG_BOOL:
        bad = fl_config_parse_bool(text, &v->b);
        break;
    case FL_CONFIG_DURATION_MS:
        bad = fl_config_parse_duration_ms(text, &v->i);
        break;
    case FL_CONFIG_DURATION_S:
        bad = parse_scaled(text, seconds_units, &v->i);
        break;
    case FL_CONFIG_SIZE:
        bad = fl_config_parse_size(text, &v->i);
        break;
    case FL_CONFIG_DOUBLE:
        bad = parse_double(text, &v->d);
        break;
    case FL_CONFIG_ENUM:
        v->idx = -1;
        for (int i = 0; e->choices && e->choices[i]; i++)
            if (strcasecmp(e->choices[i], text) == 0)
                v->idx = i;
        bad = v->idx < 0;
        break;
    }
    if (!bad && bounded(e))
        bad = e->type == FL_CONFIG_DOUBLE ? !(v->d >= (double)e->min && v->d <= (double)e->max)
                                          : v->i < e->min || v->i > e->max;
    return bad ? value_error(cfg, e, text, where, NULL, errstr, errstr_size) : 0;
}

static void list_clear(slot_t *slot)
{
    for (size_t i = 0; i < slot->nitems; i++)
        free(slot->items[i]);
    free(slot->items);
    slot->items = NULL;
    slot->nitems = 0;
}

/* Adds text to a list entry; a new source starts the list afresh. */
static int list_add(fl_config_t *cfg, const fl_config_entry_t *e, slot_t *slot, const char *text,
                    const char *where, source_t source, char *errstr, size_t errstr_size)
{
    fl_config_list_t *list = field(cfg, e);
    size_t n = slot->source == source ? slot->nitems : 0;
    char **items, *dup;
    char rule[80];

    if (e->max > 0 && n >= (size_t)e->max) {
        snprintf(rule, sizeof rule, "at most %" PRId64 " values", e->max);
        return value_error(cfg, e, text, where, rule, errstr, errstr_size);
    }
    if (slot->source != source) {
        list_clear(slot);
        list->items = NULL;
        list->count = 0;
    }
    if (!(dup = strdup(text)))
        return FL_CONFIG_ENOMEM;
    if (!(items = realloc(slot->items, (slot->nitems + 1) * sizeof *items))) {
        free(dup);
        return FL_CONFIG_ENOMEM;
    }
    items[slot->nitems++] = dup;
    slot->items = items;
    list->items = (const char *const *)items;
    list->count = slot->nitems;
    return 0;
}

static int set_entry(fl_config_t *cfg, const fl_config_entry_t *e, const char *text,
                     const char *where, source_t source, char *errstr, size_t errstr_size)
{
    slot_t *slot = &cfg->slots[e - cfg->table->entries];
    bool secret = (e->flags & FL_CONFIG_SECRET) != 0;
    value_t v = {0};
    char *owned = NULL, *where_dup;
    int r;

    if (text && (r = parse_value(cfg, e, text, where, &v, errstr, errstr_size)) != 0)
        return r;
    if (e->check && (text || e->type != FL_CONFIG_STRING)) {
        char rule[400] = "rejected by its check";
        if (e->check(&v, rule, sizeof rule) != 0)
            return value_error(cfg, e, text ? text : "", where, rule, errstr, errstr_size);
    }
    if (!(where_dup = strdup(where)))
        goto fail;
    if ((e->flags & FL_CONFIG_LIST) && !text) {
        /* a list's default is the empty list */
        list_clear(slot);
        *(fl_config_list_t *)field(cfg, e) = (fl_config_list_t){NULL, 0};
    } else if (e->flags & FL_CONFIG_LIST) {
        if ((r = list_add(cfg, e, slot, text, where, source, errstr, errstr_size)) != 0) {
            free(where_dup);
            if (r == FL_CONFIG_ENOMEM)
                goto fail;
            return r;
        }
    } else if (e->type == FL_CONFIG_STRING && text && !(owned = str_dup(text, secret))) {
        free(where_dup);
        goto fail;
    }

    switch (e->type) {
    case FL_CONFIG_STRING:
        if (e->flags & FL_CONFIG_LIST)
            break;
        *(const char **)field(cfg, e) = owned;
        str_free(slot->str, secret);
        slot->str = owned;
        break;
    case FL_CONFIG_BOOL:
        *(bool *)field(cfg, e) = v.b;
        break;
    case FL_CONFIG_ENUM:
        /* an enum without a default starts unset */
        *(int *)field(cfg, e) = text ? v.idx : -1;
        break;
    case FL_CONFIG_DOUBLE:
        *(double *)field(cfg, e) = v.d;
        break;
    default:
        *(int64_t *)field(cfg, e) = v.i;
        break;
    }
    free(slot->where);
    slot->where = where_dup;
    slot->source = source;
    return 0;
fail:
    snprintf(errstr, errstr_size, "out of memory setting %s", e->name);
    return FL_CONFIG_ENOMEM;
}

/* Edit distance, for "did you mean". Names longer than 127 are not compared. */
static size_t distance(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b), row[128];
    if (la >= 128 || lb >= 128)
        return SIZE_MAX;
    for (size_t j = 0; j <= lb; j++)
        row[j] = j;
    for (size_t i = 1; i <= la; i++) {
        size_t diag = row[0];
        row[0] = i;
        for (size_t j = 1; j <= lb; j++) {
            size_t up = row[j];
            size_t best = diag + (a[i - 1] != b[j - 1]);
            if (up + 1 < best)
                best = up + 1;
            if (row[j - 1] + 1 < best)
                best = row[j - 1] + 1;
            row[j] = best;
            diag = up;
        }
    }
    return row[lb];
}

/* The known name nearest to name, or NULL when none is close. */
static const char *nearest(const fl_config_table_t *table, const char *name)
{
    const char *best = NULL;
    size_t best_d = SIZE_MAX, limit = strlen(name) / 3;
    if (limit < 2)
        limit = 2;
    for (size_t i = 0; i < table->count; i++) {
        const fl_config_entry_t *e = &table->entries[i];
        size_t d = positional(e) ? SIZE_MAX : distance(name, e->name);
        if (d < best_d) {
            best_d = d;
            best = table->entries[i].name;
        }
    }
    return best_d <= limit ? best : NULL;
}

static rd_kafka_conf_t *scratch_conf(fl_config_t *cfg)
{
    if (!cfg->scratch)
        cfg->scratch = rd_kafka_conf_new();
    return cfg->scratch;
}

static int unknown_key(fl_config_t *cfg, const char *name, const char *where, char *errstr,
                       size_t errstr_size)
{
    const char *near = nearest(cfg->table, name);
    char tmp[16];
    rd_kafka_conf_t *probe = NULL;
    bool is_kafka = false;
    /* librdkafka knows the name if setting it fails for any reason other
     * than "unknown" (aliases such as bootstrap.servers included). */
    if (!near && cfg->table->kafka && strncmp(name, KAFKA_PREFIX, strlen(KAFKA_PREFIX)) != 0 &&
        (probe = rd_kafka_conf_new())) {
        is_kafka = rd_kafka_conf_set(probe, name, "", tmp, sizeof tmp) != RD_KAFKA_CONF_UNKNOWN;
        rd_kafka_conf_destroy(probe);
    }
    if (cfg->table->cli) {
        /* a cli table has only flags: name the flag as typed */
        const char *typed = strncmp(where, "flag ", 5) == 0 ? where + 5 : name;
        if (near)
            snprintf(errstr, errstr_size, "unknown option %s; did you mean --%s?", typed, near);
        else if (is_kafka)
            snprintf(errstr, errstr_size,
                     "unknown option %s; did you mean -X %s=... (a librdkafka setting)?", typed,
                     name);
        else
            snprintf(errstr, errstr_size, "unknown option %s; see --help", typed);
    } else if (near) {
        snprintf(errstr, errstr_size, "unknown setting \"%s\" (from %s); did you mean \"%s\"?",
                 name, where, near);
    } else if (is_kafka) {
        snprintf(errstr, errstr_size,
                 "unknown setting \"%s\" (from %s); did you mean \"kafka.%s\" (a librdkafka "
                 "setting)?",
                 name, where, name);
    } else {
        snprintf(errstr, errstr_size, "unknown setting \"%s\" (from %s); see --help", name, where);
    }
    return FL_CONFIG_EUNKNOWN;
}

/* shown: the source as an error about the value names it (-X shows the
 * setting as typed, name=value, unless it is a secret). */
static int set_kafka(fl_config_t *cfg, const char *name, const char *value, const char *where,
                     const char *shown, char *errstr, size_t errstr_size)
{
    char err[512];
    bool secret = fl_kafka_is_secret(name);
    size_t i;
    char *name_dup = NULL, *value_dup = NULL, *where_dup = NULL;

    if (!*name) {
        snprintf(errstr, errstr_size, "empty librdkafka setting name (from %s)", where);
        return FL_CONFIG_ESYNTAX;
    }
    if (!scratch_conf(cfg))
        goto fail;
    switch (rd_kafka_conf_set(cfg->scratch, name, value, err, sizeof err)) {
    case RD_KAFKA_CONF_OK:
        break;
    case RD_KAFKA_CONF_UNKNOWN:
        snprintf(errstr, errstr_size,
                 "unknown setting \"kafka.%s\" (from %s): librdkafka has no setting \"%s\"", name,
                 where, name);
        return FL_CONFIG_EUNKNOWN;
    default:
        snprintf(errstr, errstr_size, "invalid value \"%s\" for kafka.%s (from %s): %s",
                 secret ? "(secret)" : value, name, shown, err);
        return FL_CONFIG_EVALUE;
    }
    for (i = 0; i < cfg->kafka.count; i++)
        if (strcmp(cfg->kafka.names[i], name) == 0)
            break;
    if (i == KAFKA_MAX) {
        snprintf(errstr, errstr_size, "too many kafka.* settings (at most %zu; from %s)",
                 (size_t)KAFKA_MAX, where);
        return FL_CONFIG_EVALUE;
    }
    if (!(value_dup = str_dup(value, secret)) || !(where_dup = strdup(where)))
        goto fail;
    if (i == cfg->kafka.count) {
        if (!(name_dup = strdup(name)))
            goto fail;
        cfg->kafka.names[i] = name_dup;
        cfg->kafka.count++;
    } else {
        str_free((char *)cfg->kafka.values[i], secret);
        free(cfg->kafka_where[i]);
    }
    cfg->kafka.values[i] = value_dup;
    cfg->kafka_where[i] = where_dup;
    return 0;
fail:
    str_free(value_dup, secret);
    free(where_dup);
    snprintf(errstr, errstr_size, "out of memory setting kafka.%s", name);
    return FL_CONFIG_ENOMEM;
}

/* One key from any source. */
static int set_key(fl_config_t *cfg, const char *name, const char *value, const char *where,
                   source_t source, char *errstr, size_t errstr_size)
{
    const fl_config_entry_t *e = find_entry(cfg->table, name, strlen(name));
    if (e)
        return set_entry(cfg, e, value, where, source, errstr, errstr_size);
    if (cfg->table->kafka && strncmp(name, KAFKA_PREFIX, strlen(KAFKA_PREFIX)) == 0)
        return set_kafka(cfg, name + strlen(KAFKA_PREFIX), value, where, where, errstr,
                         errstr_size);
    return unknown_key(cfg, name, where, errstr, errstr_size);
}

/* ---- sources ---- */

static char *trim(char *s)
{
    size_t len;
    while (*s == ' ' || *s == '\t')
        s++;
    len = strlen(s);
    while (len > 0 && (s[len - 1] == ' ' || s[len - 1] == '\t' || s[len - 1] == '\r' ||
                       s[len - 1] == '\n'))
        s[--len] = '\0';
    return s;
}

static int load_file(fl_config_t *cfg, const char *path, char *errstr, size_t errstr_size)
{
    FILE *fp = fopen(path, "r");
    char *line = NULL, where[600];
    size_t cap = 0;
    unsigned lineno = 0;
    int r = 0;

    if (!fp) {
        snprintf(errstr, errstr_size, "cannot read config file %s: %s", path, strerror(errno));
        return FL_CONFIG_EFILE;
    }
    while (getline(&line, &cap, fp) >= 0) {
        char *s = trim(line), *eq, *name, *value;
        size_t vlen;
        lineno++;
        if (*s == '\0' || *s == '#')
            continue;
        snprintf(where, sizeof where, "file %s:%u", path, lineno);
        eq = strchr(s, '=');
        if (!eq || eq == s) {
            snprintf(errstr, errstr_size, "%s: expected \"name = value\", got \"%s\"", where, s);
            r = FL_CONFIG_ESYNTAX;
            goto fail;
        }
        *eq = '\0';
        name = trim(s);
        value = trim(eq + 1);
        vlen = strlen(value);
        if (vlen >= 2 && value[0] == '"' && value[vlen - 1] == '"') {
            value[vlen - 1] = '\0';
            value++;
        }
        if ((r = set_key(cfg, name, value, where, SRC_FILE, errstr, errstr_size)) != 0)
            goto fail;
    }
    if (ferror(fp)) {
        snprintf(errstr, errstr_size, "error reading config file %s: %s", path, strerror(errno));
        r = FL_CONFIG_EFILE;
    }
fail:
    free(line);
    fclose(fp);
    return r;
}

static int load_env(fl_config_t *cfg, char *errstr, size_t errstr_size)
{
    const fl_config_table_t *table = cfg->table;
    const char *prefix = env_prefix(table);
    size_t plen = strlen(prefix);
    char name[256], where[300];

    for (size_t i = 0; i < table->count; i++) {
        const char *value;
        int r;
        if (!reads_env(table, &table->entries[i]))
            continue;
        env_name(table, table->entries[i].name, name, sizeof name);
        /* a tool run from a shell treats an exported but empty variable as unset */
        if (!(value = getenv(name)) || (table->cli && !*value))
            continue;
        snprintf(where, sizeof where, "env %s", name);
        if ((r = set_entry(cfg, &table->entries[i], value, where, SRC_ENV, errstr, errstr_size)) !=
            0)
            return r;
    }
    /* Unknown variables are not errors (one environment often serves several
     * components), but a near miss of a known name is worth a warning. */
    for (char **env = environ; env && *env; env++) {
        const char *eq = strchr(*env, '=');
        size_t len = eq ? (size_t)(eq - *env) : strlen(*env);
        bool known = false;
        const char *best = NULL;
        size_t best_d = 3;
        char var[256];
        if (len <= plen || len >= sizeof var || strncmp(*env, prefix, plen) != 0)
            continue;
        memcpy(var, *env, len);
        var[len] = '\0';
        if (strcmp(var + plen, "CONFIG") == 0)
            continue;
        for (size_t i = 0; i < table->count && !known; i++) {
            size_t d;
            if (!reads_env(table, &table->entries[i]))
                continue;
            env_name(table, table->entries[i].name, name, sizeof name);
            d = distance(var, name);
            known = d == 0;
            if (d < best_d) {
                best_d = d;
                best = table->entries[i].name;
            }
        }
        if (!known && best) {
            env_name(table, best, name, sizeof name);
            fl_warn("ignoring environment variable %s: no such setting (did you mean %s?)", var,
                    name);
        }
    }
    return 0;
}

static int flag_needs_value(const char *flag, char *errstr, size_t errstr_size)
{
    snprintf(errstr, errstr_size, "flag %s needs a value", flag);
    return FL_CONFIG_ESYNTAX;
}

static void add_arg(fl_config_t *cfg, char *arg)
{
    cfg->args[cfg->nargs++] = arg;
}

/* An argument that is not a flag: the next positional entry's value (*next
 * is where the search for it resumes), else kept for fl_config_args() or, in
 * a cli table, refused. */
static int take_arg(fl_config_t *cfg, char *arg, size_t *next, char *errstr, size_t errstr_size)
{
    const fl_config_table_t *table = cfg->table;
    char where[300];

    while (*next < table->count && !positional(&table->entries[*next]))
        (*next)++;
    if (*next < table->count) {
        const fl_config_entry_t *e = &table->entries[(*next)++];
        snprintf(where, sizeof where, "argument <%s>", e->name);
        return set_entry(cfg, e, arg, where, SRC_FLAG, errstr, errstr_size);
    }
    if (table->cli) {
        snprintf(errstr, errstr_size, "unexpected argument \"%s\"; see --help", arg);
        return FL_CONFIG_EUNKNOWN;
    }
    add_arg(cfg, arg);
    return 0;
}

/* "-X name=value" (or "-Xname=value") at argv[*i]. */
static int kafka_flag(fl_config_t *cfg, int argc, char **argv, int *i, char *errstr,
                      size_t errstr_size)
{
    char *arg = argv[*i], where[300], shown[600], name[256];
    const char *kv = arg[2] ? arg + 2 : (*i + 1 < argc ? argv[++*i] : NULL), *eq;
    if (!kv)
        return flag_needs_value("-X", errstr, errstr_size);
    if (!(eq = strchr(kv, '=')) || eq == kv) {
        snprintf(errstr, errstr_size, "flag -X expects name=value, got \"%s\"", kv);
        return FL_CONFIG_ESYNTAX;
    }
    snprintf(name, sizeof name, "%.*s", (int)(eq - kv), kv);
    snprintf(where, sizeof where, "flag -X %s", name);
    snprintf(shown, sizeof shown, "flag -X %s", fl_kafka_is_secret(name) ? name : kv);
    return set_kafka(cfg, name, eq + 1, where, shown, errstr, errstr_size);
}

static int load_flags(fl_config_t *cfg, int argc, char **argv, char *errstr, size_t errstr_size)
{
    const fl_config_table_t *table = cfg->table;
    char where[300], namebuf[256];
    size_t next = 0;
    int r = 0;

    for (int i = 1; i < argc; i++) {
        char *arg = argv[i];
        const char *name, *value = NULL, *eq = NULL;
        const fl_config_entry_t *e;
        size_t nlen;

        if (strcmp(arg, "--") == 0) {
            while (++i < argc)
                if ((r = take_arg(cfg, argv[i], &next, errstr, errstr_size)) != 0)
                    return r;
            break;
        }
        if (arg[0] != '-' || arg[1] == '\0') {
            if ((r = take_arg(cfg, arg, &next, errstr, errstr_size)) != 0)
                return r;
            continue;
        }
        if (strncmp(arg, "-X", 2) == 0 && table->kafka) {
            if ((r = kafka_flag(cfg, argc, argv, &i, errstr, errstr_size)) != 0)
                return r;
            continue;
        }
        if (arg[1] != '-') {
            snprintf(where, sizeof where, "flag %s", arg);
            if (arg[2] != '\0' || !(e = find_short(table, arg[1])))
                return unknown_key(cfg, arg + 1, where, errstr, errstr_size);
            snprintf(namebuf, sizeof namebuf, "%s", e->name);
        } else {
            name = arg + 2;
            eq = strchr(name, '=');
            nlen = eq ? (size_t)(eq - name) : strlen(name);
            if (eq)
                value = eq + 1;
            snprintf(where, sizeof where, "flag --%.*s", (int)nlen, name);
            if (!table->cli && nlen == 6 && strncmp(name, "config", 6) == 0) {
                /* read before the environment; only skip it here */
                if (!eq)
                    i++;
                continue;
            }
            if (nlen >= sizeof namebuf) {
                snprintf(errstr, errstr_size, "flag %.60s...: name too long", arg);
                return FL_CONFIG_EUNKNOWN;
            }
            memcpy(namebuf, name, nlen);
            namebuf[nlen] = '\0';
            e = find_entry(table, namebuf, nlen);
            if (!e && !eq && strncmp(namebuf, "no-", 3) == 0) {
                e = find_entry(table, namebuf + 3, nlen - 3);
                if (e && e->type == FL_CONFIG_BOOL) {
                    if ((r = set_entry(cfg, e, "false", where, SRC_FLAG, errstr, errstr_size)) != 0)
                        return r;
                    continue;
                }
                e = NULL;
            }
        }
        if (e && e->type == FL_CONFIG_BOOL && !eq) {
            bool b;
            /* "--flag" alone means true; take the next word only if it is a
             * bool and the flag is not a switch. */
            value = "true";
            if (!(e->flags & FL_CONFIG_SWITCH) && i + 1 < argc &&
                fl_config_parse_bool(argv[i + 1], &b) == 0)
                value = argv[++i];
        }
        if (!value) {
            if (i + 1 >= argc)
                return flag_needs_value(arg, errstr, errstr_size);
            if (!e && !(table->kafka && strncmp(namebuf, KAFKA_PREFIX, 6) == 0))
                return unknown_key(cfg, namebuf, where, errstr, errstr_size);
            value = argv[++i];
        }
        if ((r = set_key(cfg, namebuf, value, where, SRC_FLAG, errstr, errstr_size)) != 0)
            return r;
    }
    return 0;
}

/* ---- checks once every source is in ---- */

static bool given(const fl_config_t *cfg, size_t i)
{
    return cfg->slots[i].source != SRC_DEFAULT;
}

/* A required entry outside a group has a value: a string that is not NULL,
 * a list with a value, anything else given by some source. */
static bool has_value(const fl_config_t *cfg, size_t i)
{
    const fl_config_entry_t *e = &cfg->table->entries[i];
    if (e->flags & FL_CONFIG_LIST)
        return cfg->slots[i].nitems > 0;
    if (e->type == FL_CONFIG_STRING)
        return *(const char **)field(cfg, e) != NULL;
    return given(cfg, i);
}

/* The entries of group g but skip (NULL: all of them), "--a, --b or --c";
 * md: each in backticks. */
static void group_names(const fl_config_table_t *table, int g, const fl_config_entry_t *skip,
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
                              display(table, e, name, sizeof name), q);
    }
}

static int check_groups(fl_config_t *cfg, char *errstr, size_t errstr_size)
{
    const fl_config_table_t *table = cfg->table;
    char a[160], b[160], names[600];

    for (size_t i = 0; i < table->count; i++) {
        const fl_config_entry_t *e = &table->entries[i];
        bool first = true, required = false, any = false;
        if (!e->group)
            continue;
        for (size_t j = 0; j < table->count; j++) {
            const fl_config_entry_t *o = &table->entries[j];
            if (o->group != e->group)
                continue;
            first = first && j >= i;
            required = required || (o->flags & FL_CONFIG_REQUIRED);
            any = any || given(cfg, j);
            if (j > i && given(cfg, i) && given(cfg, j)) {
                snprintf(errstr, errstr_size, "%s and %s exclude each other",
                         display(table, e, a, sizeof a), display(table, o, b, sizeof b));
                return FL_CONFIG_ECONFLICT;
            }
        }
        if (first && required && !any) {
            group_names(table, e->group, NULL, false, names, sizeof names);
            snprintf(errstr, errstr_size, "%sgive one of %s",
                     table->cli ? "" : "missing required setting: ", names);
            return FL_CONFIG_EMISSING;
        }
    }
    return 0;
}

static int check_required(fl_config_t *cfg, char *errstr, size_t errstr_size)
{
    const fl_config_table_t *table = cfg->table;
    char name[256], shown[160];

    for (size_t i = 0; i < table->count; i++) {
        const fl_config_entry_t *e = &table->entries[i];
        if (!(e->flags & FL_CONFIG_REQUIRED) || e->group || has_value(cfg, i))
            continue;
        env_name(table, e->name, name, sizeof name);
        if (positional(e))
            snprintf(errstr, errstr_size, "missing argument <%s>", e->name);
        else if (table->cli && reads_env(table, e))
            snprintf(errstr, errstr_size, "missing required option --%s (or %s)", e->name, name);
        else if (table->cli)
            snprintf(errstr, errstr_size, "missing required option %s",
                     display(table, e, shown, sizeof shown));
        else
            snprintf(errstr, errstr_size,
                     "missing required setting %s (set --%s, %s or \"%s = ...\" in the config "
                     "file)",
                     e->name, e->name, name, e->name);
        return FL_CONFIG_EMISSING;
    }
    return check_groups(cfg, errstr, errstr_size);
}

/* ---- public ---- */

fl_config_t *fl_config_new(const fl_config_table_t *table, void *target, char *errstr,
                           size_t errstr_size)
{
    fl_config_t *cfg = NULL;

    if (sodium_init() < 0) {
        snprintf(errstr, errstr_size, "libsodium failed to initialise");
        return NULL;
    }
    if (!(cfg = calloc(1, sizeof *cfg)) ||
        !(cfg->slots = calloc(table->count ? table->count : 1, sizeof *cfg->slots))) {
        snprintf(errstr, errstr_size, "out of memory");
        goto fail;
    }
    cfg->table = table;
    cfg->target = target;
    for (size_t i = 0; i < table->count; i++) {
        const fl_config_entry_t *e = &table->entries[i];
        if (e->type == FL_CONFIG_ENUM && (!e->choices || !e->choices[0])) {
            snprintf(errstr, errstr_size, "config table: %s is an enum without choices", e->name);
            goto fail;
        }
        if (e->type == FL_CONFIG_ENUM && !e->def &&
            !(e->flags & (FL_CONFIG_REQUIRED | FL_CONFIG_POSITIONAL)) && !e->group) {
            snprintf(errstr, errstr_size, "config table: enum %s needs a default", e->name);
            goto fail;
        }
        if ((e->flags & FL_CONFIG_LIST) &&
            (e->type != FL_CONFIG_STRING || e->def || (e->flags & FL_CONFIG_SECRET))) {
            snprintf(errstr, errstr_size,
                     "config table: list %s must be a string without default or secret", e->name);
            goto fail;
        }
        if ((e->flags & FL_CONFIG_SWITCH) && e->type != FL_CONFIG_BOOL) {
            snprintf(errstr, errstr_size, "config table: switch %s must be a bool", e->name);
            goto fail;
        }
        if (positional(e) &&
            (e->type == FL_CONFIG_BOOL || (e->flags & (FL_CONFIG_LIST | FL_CONFIG_SECRET)))) {
            snprintf(errstr, errstr_size,
                     "config table: positional %s cannot be a bool, a list or a secret", e->name);
            goto fail;
        }
        if (set_entry(cfg, e, e->def, "default", SRC_DEFAULT, errstr, errstr_size) != 0)
            goto fail;
    }
    return cfg;
fail:
    fl_config_free(cfg);
    return NULL;
}

int fl_config_load(fl_config_t *cfg, int argc, char **argv, char *errstr, size_t errstr_size)
{
    const fl_config_table_t *table = cfg->table;
    const char *file = NULL;
    char name[256];
    int r = 0;

    /* First pass: help wins over everything, and the file must be known
     * before the environment and flags are applied over it. A cli table
     * reads no file: its --config is an unknown option. */
    for (int i = 1; i < argc && strcmp(argv[i], "--") != 0; i++) {
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            fl_config_print_help(table, stdout);
            return FL_CONFIG_HELP;
        }
        if (strcmp(argv[i], "--help-markdown") == 0) {
            fl_config_print_markdown(table, stdout);
            return FL_CONFIG_HELP;
        }
        if (table->cli)
            continue;
        if (strcmp(argv[i], "--config") == 0) {
            if (i + 1 >= argc)
                return flag_needs_value("--config", errstr, errstr_size);
            file = argv[++i];
        } else if (strncmp(argv[i], "--config=", 9) == 0) {
            file = argv[i] + 9;
        }
    }
    if (!file && !table->cli) {
        snprintf(name, sizeof name, "%sCONFIG", env_prefix(table));
        file = getenv(name);
    }
    free(cfg->args);
    cfg->nargs = 0;
    if (!(cfg->args = calloc((size_t)(argc > 0 ? argc : 1), sizeof *cfg->args))) {
        snprintf(errstr, errstr_size, "out of memory");
        return FL_CONFIG_ENOMEM;
    }
    if (file && *file) {
        free(cfg->file);
        if (!(cfg->file = strdup(file))) {
            snprintf(errstr, errstr_size, "out of memory");
            r = FL_CONFIG_ENOMEM;
            goto fail;
        }
        if ((r = load_file(cfg, file, errstr, errstr_size)) != 0)
            goto fail;
    }
    if ((r = load_env(cfg, errstr, errstr_size)) != 0)
        goto fail;
    if ((r = load_flags(cfg, argc, argv, errstr, errstr_size)) != 0)
        goto fail;
    r = check_required(cfg, errstr, errstr_size);
fail:
    if (cfg->scratch) {
        rd_kafka_conf_destroy(cfg->scratch);
        cfg->scratch = NULL;
    }
    return r;
}

int fl_config_set(fl_config_t *cfg, const char *name, const char *value, char *errstr,
                  size_t errstr_size)
{
    int r = set_key(cfg, name, value, "fl_config_set", SRC_FLAG, errstr, errstr_size);
    if (cfg->scratch) {
        rd_kafka_conf_destroy(cfg->scratch);
        cfg->scratch = NULL;
    }
    return r;
}

bool fl_config_is_set(const fl_config_t *cfg, const char *name)
{
    for (size_t i = 0; i < cfg->table->count; i++)
        if (strcmp(cfg->table->entries[i].name, name) == 0)
            return given(cfg, i);
    return false;
}

const fl_kafka_props_t *fl_config_kafka(const fl_config_t *cfg)
{
    return &cfg->kafka;
}

char **fl_config_args(const fl_config_t *cfg, int *argc)
{
    *argc = cfg->nargs;
    return cfg->args;
}

const char *fl_config_file(const fl_config_t *cfg)
{
    return cfg->file;
}

void fl_config_free(fl_config_t *cfg)
{
    if (!cfg)
        return;
    for (size_t i = 0; cfg->slots && i < cfg->table->count; i++) {
        const fl_config_entry_t *e = &cfg->table->entries[i];
        if (e->flags & FL_CONFIG_LIST) {
            *(fl_config_list_t *)field(cfg, e) = (fl_config_list_t){NULL, 0};
            list_clear(&cfg->slots[i]);
        } else if (e->type == FL_CONFIG_STRING) {
            *(const char **)field(cfg, e) = NULL;
            str_free(cfg->slots[i].str, (e->flags & FL_CONFIG_SECRET) != 0);
        }
        free(cfg->slots[i].where);
    }
    for (size_t i = 0; i < cfg->kafka.count; i++) {
        str_free((char *)cfg->kafka.values[i], fl_kafka_is_secret(cfg->kafka.names[i]));
        free((char *)cfg->kafka.names[i]);
        free(cfg->kafka_where[i]);
    }
    if (cfg->scratch)
        rd_kafka_conf_destroy(cfg->scratch);
    free(cfg->slots);
    free(cfg->args);
    free(cfg->file);
    free(cfg);
}

const char *fl_config_strerror(int err)
{
    switch (err) {
    case 0:
        return "success";
    case FL_CONFIG_HELP:
        return "help printed";
    case FL_CONFIG_EUNKNOWN:
        return "unknown setting";
    case FL_CONFIG_EVALUE:
        return "invalid value";
    case FL_CONFIG_EFILE:
        return "cannot read config file";
    case FL_CONFIG_ESYNTAX:
        return "syntax error";
    case FL_CONFIG_EMISSING:
        return "missing required setting";
    case FL_CONFIG_ECONFLICT:
        return "settings exclude each other";
    case FL_CONFIG_ENOMEM:
        return "out of memory";
    default:
        return "unknown error";
    }
}

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

    if (positional(e)) {
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
        format_choices(e, "|", value + 2, sizeof value - 3);
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
    if (positional(e) && e->type == FL_CONFIG_ENUM) {
        format_choices(e, ", ", buf, sizeof buf);
        NOTE("one of %s", buf);
    }
    if (bounded(e)) {
        format_range(e, buf, sizeof buf);
        NOTE("range %s", buf);
    }
    if (e->flags & FL_CONFIG_LIST) {
        if (e->max > 0)
            NOTE("repeatable, up to %" PRId64 " times", e->max);
        else
            NOTE("repeatable");
    }
    if (e->group) {
        group_names(table, e->group, e, false, buf, sizeof buf);
        if (e->flags & FL_CONFIG_REQUIRED)
            NOTE("required unless %s", buf);
        else
            NOTE("not with %s", buf);
    } else if (e->flags & FL_CONFIG_REQUIRED) {
        NOTE("required");
    }
    if (reads_env(table, e)) {
        env_name(table, e->name, buf, sizeof buf);
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
        if (positional(&table->entries[i])) {
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
                 env_prefix(table));
        fputc('\n', fp);
        print_wrapped(fp, 0, head);
    }
    for (size_t i = 0; i < table->count; i++)
        if (!positional(&table->entries[i]))
            help_entry(table, &table->entries[i], fp);
    if (!table->cli) {
        fprintf(fp, "  --config <file>\n");
        print_wrapped(fp, 6, "Read settings from FILE, one \"name = value\" a line ('#' starts "
                             "a comment).");
        fprintf(fp, "      [env %sCONFIG]\n", env_prefix(table));
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
        format_choices(e, ", ", buf, sizeof buf);
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
    if (bounded(e)) {
        format_range(e, buf, sizeof buf);
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
        any_env = any_env || reads_env(table, &table->entries[i]);
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
            group_names(table, e->group, e, true, buf, sizeof buf);
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
        if (any_env && reads_env(table, e)) {
            env_name(table, e->name, env, sizeof env);
            fprintf(fp, " `%s` |", env);
        } else if (any_env) {
            fprintf(fp, " |");
        }
        fputc(' ', fp);
        md_escaped(fp, e->doc);
        if (e->group && !(e->flags & FL_CONFIG_REQUIRED)) {
            group_names(table, e->group, e, true, buf, sizeof buf);
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
        env_name(table, e->name, env, sizeof env);
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
        const void *f = field(cfg, e);
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
            format_number(e, *(const int64_t *)f, buf, sizeof buf);
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
