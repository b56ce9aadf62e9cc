/* SPDX-License-Identifier: Apache-2.0 */
/*
 * config: see config.h. Every source funnels into set_key(), which parses the
 * text by the entry's type, runs the entry's check and only then writes the
 * target struct, so a rejected value leaves the previous one in place. Each
 * entry remembers where its value came from, for fl_config_dump() and so that
 * errors can name the source.
 */
#include "flushline/config.h"

#include <errno.h>
#include <inttypes.h>
#include <limits.h>
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

typedef struct slot_s {
    char *str;   /* FL_CONFIG_STRING: the owned value the target points to */
    char *where; /* "default", "flag --x", "file f:3", "env X" */
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

static const fl_config_entry_t *find_entry(const fl_config_table_t *table, const char *name,
                                           size_t len)
{
    for (size_t i = 0; i < table->count; i++)
        if (strlen(table->entries[i].name) == len &&
            memcmp(table->entries[i].name, name, len) == 0)
            return &table->entries[i];
    return NULL;
}

/* ---- number parsing ---- */

typedef struct unit_s {
    const char *suffix;
    int64_t mult;
} unit_t;

static const unit_t duration_units[] = {{"", 1},          {"ms", 1},       {"s", 1000},
                                        {"m", 60000},     {"h", 3600000},  {"d", 86400000},
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
    if (e->type == FL_CONFIG_DURATION_MS)
        format_duration(out, size, v);
    else if (e->type == FL_CONFIG_SIZE)
        format_size(out, size, v);
    else
        snprintf(out, size, "%" PRId64, v);
}

static bool bounded(const fl_config_entry_t *e)
{
    return (e->type == FL_CONFIG_INT || e->type == FL_CONFIG_DURATION_MS ||
            e->type == FL_CONFIG_SIZE) &&
           !(e->min == 0 && e->max == 0);
}

static void format_range(const fl_config_entry_t *e, char *out, size_t size)
{
    char lo[32], hi[32];
    format_number(e, e->min, lo, sizeof lo);
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
    const char *s;
} value_t;

static int value_error(const fl_config_entry_t *e, const char *text, const char *where,
                       const char *rule, char *errstr, size_t errstr_size)
{
    char buf[600];
    if (!rule) {
        describe_rule(e, buf, sizeof buf);
        rule = buf;
    }
    if (e->flags & FL_CONFIG_SECRET)
        text = "(secret)";
    snprintf(errstr, errstr_size, "invalid value \"%s\" for %s (from %s): %s", text, e->name,
             where, rule);
    return FL_CONFIG_EVALUE;
}

static int set_entry(fl_config_t *cfg, const fl_config_entry_t *e, const char *text,
                     const char *where, char *errstr, size_t errstr_size)
{
    slot_t *slot = &cfg->slots[e - cfg->table->entries];
    bool secret = (e->flags & FL_CONFIG_SECRET) != 0;
    value_t v = {0};
    char *owned = NULL, *where_dup;

    if (text) {
        switch (e->type) {
        case FL_CONFIG_STRING:
            v.s = text;
            break;
        case FL_CONFIG_INT:
            if (parse_int(text, &v.i) != 0)
                return value_error(e, text, where, NULL, errstr, errstr_size);
            break;
        case FL_CONFIG_BOOL:
            if (fl_config_parse_bool(text, &v.b) != 0)
                return value_error(e, text, where, NULL, errstr, errstr_size);
            break;
        case FL_CONFIG_DURATION_MS:
            if (fl_config_parse_duration_ms(text, &v.i) != 0)
                return value_error(e, text, where, NULL, errstr, errstr_size);
            break;
        case FL_CONFIG_SIZE:
            if (fl_config_parse_size(text, &v.i) != 0)
                return value_error(e, text, where, NULL, errstr, errstr_size);
            break;
        case FL_CONFIG_ENUM:
            v.idx = -1;
            for (int i = 0; e->choices && e->choices[i]; i++)
                if (strcasecmp(e->choices[i], text) == 0)
                    v.idx = i;
            if (v.idx < 0)
                return value_error(e, text, where, NULL, errstr, errstr_size);
            break;
        }
        if (bounded(e) && (v.i < e->min || v.i > e->max))
            return value_error(e, text, where, NULL, errstr, errstr_size);
    }
    if (e->check && (text || e->type != FL_CONFIG_STRING)) {
        char rule[400] = "rejected by its check";
        if (e->check(&v, rule, sizeof rule) != 0)
            return value_error(e, text ? text : "", where, rule, errstr, errstr_size);
    }
    if (e->type == FL_CONFIG_STRING && text && !(owned = str_dup(text, secret)))
        goto fail;
    if (!(where_dup = strdup(where)))
        goto fail;

    switch (e->type) {
    case FL_CONFIG_STRING:
        *(const char **)field(cfg, e) = owned;
        str_free(slot->str, secret);
        slot->str = owned;
        break;
    case FL_CONFIG_BOOL:
        *(bool *)field(cfg, e) = v.b;
        break;
    case FL_CONFIG_ENUM:
        *(int *)field(cfg, e) = v.idx;
        break;
    default:
        *(int64_t *)field(cfg, e) = v.i;
        break;
    }
    free(slot->where);
    slot->where = where_dup;
    return 0;
fail:
    str_free(owned, secret);
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
        size_t d = distance(name, table->entries[i].name);
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
    if (near) {
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

static int set_kafka(fl_config_t *cfg, const char *name, const char *value, const char *where,
                     char *errstr, size_t errstr_size)
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
                 secret ? "(secret)" : value, name, where, err);
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
                   char *errstr, size_t errstr_size)
{
    const fl_config_entry_t *e = find_entry(cfg->table, name, strlen(name));
    if (e)
        return set_entry(cfg, e, value, where, errstr, errstr_size);
    if (cfg->table->kafka && strncmp(name, KAFKA_PREFIX, strlen(KAFKA_PREFIX)) == 0)
        return set_kafka(cfg, name + strlen(KAFKA_PREFIX), value, where, errstr, errstr_size);
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
        if ((r = set_key(cfg, name, value, where, errstr, errstr_size)) != 0)
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
        env_name(table, table->entries[i].name, name, sizeof name);
        if (!(value = getenv(name)))
            continue;
        snprintf(where, sizeof where, "env %s", name);
        if ((r = set_entry(cfg, &table->entries[i], value, where, errstr, errstr_size)) != 0)
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

static int load_flags(fl_config_t *cfg, int argc, char **argv, char *errstr, size_t errstr_size)
{
    char where[300], namebuf[256];
    int r = 0;

    for (int i = 1; i < argc; i++) {
        char *arg = argv[i];
        const char *name, *value = NULL, *eq;
        const fl_config_entry_t *e;
        size_t nlen;

        if (strcmp(arg, "--") == 0) {
            while (++i < argc)
                add_arg(cfg, argv[i]);
            break;
        }
        if (arg[0] != '-' || arg[1] == '\0') {
            add_arg(cfg, arg);
            continue;
        }
        if (strncmp(arg, "-X", 2) == 0 && cfg->table->kafka) {
            const char *kv = arg[2] ? arg + 2 : (i + 1 < argc ? argv[++i] : NULL);
            if (!kv)
                return flag_needs_value("-X", errstr, errstr_size);
            if (!(eq = strchr(kv, '=')) || eq == kv) {
                snprintf(errstr, errstr_size, "flag -X expects name=value, got \"%s\"", kv);
                return FL_CONFIG_ESYNTAX;
            }
            snprintf(namebuf, sizeof namebuf, "%.*s", (int)(eq - kv), kv);
            snprintf(where, sizeof where, "flag -X %s", namebuf);
            if ((r = set_kafka(cfg, namebuf, eq + 1, where, errstr, errstr_size)) != 0)
                return r;
            continue;
        }
        if (arg[1] != '-') {
            snprintf(where, sizeof where, "flag %s", arg);
            return unknown_key(cfg, arg + 1, where, errstr, errstr_size);
        }
        name = arg + 2;
        eq = strchr(name, '=');
        nlen = eq ? (size_t)(eq - name) : strlen(name);
        if (eq)
            value = eq + 1;
        snprintf(where, sizeof where, "flag --%.*s", (int)nlen, name);
        if (nlen == 6 && strncmp(name, "config", 6) == 0) {
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
        e = find_entry(cfg->table, namebuf, nlen);
        if (!e && !eq && strncmp(namebuf, "no-", 3) == 0) {
            e = find_entry(cfg->table, namebuf + 3, nlen - 3);
            if (e && e->type == FL_CONFIG_BOOL) {
                if ((r = set_entry(cfg, e, "false", where, errstr, errstr_size)) != 0)
                    return r;
                continue;
            }
            e = NULL;
        }
        if (e && e->type == FL_CONFIG_BOOL && !eq) {
            bool b;
            /* "--flag" alone means true; take the next word only if it is a bool. */
            value = "true";
            if (i + 1 < argc && fl_config_parse_bool(argv[i + 1], &b) == 0)
                value = argv[++i];
        }
        if (!value) {
            if (i + 1 >= argc)
                return flag_needs_value(arg, errstr, errstr_size);
            if (!e && !(cfg->table->kafka && strncmp(namebuf, KAFKA_PREFIX, 6) == 0))
                return unknown_key(cfg, namebuf, where, errstr, errstr_size);
            value = argv[++i];
        }
        if ((r = set_key(cfg, namebuf, value, where, errstr, errstr_size)) != 0)
            return r;
    }
    return 0;
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
        if (e->type == FL_CONFIG_ENUM && !e->def) {
            snprintf(errstr, errstr_size, "config table: enum %s needs a default", e->name);
            goto fail;
        }
        if (set_entry(cfg, e, e->def, "default", errstr, errstr_size) != 0)
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
     * before the environment and flags are applied over it. */
    for (int i = 1; i < argc && strcmp(argv[i], "--") != 0; i++) {
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            fl_config_print_help(table, stdout);
            return FL_CONFIG_HELP;
        }
        if (strcmp(argv[i], "--help-markdown") == 0) {
            fl_config_print_markdown(table, stdout);
            return FL_CONFIG_HELP;
        }
        if (strcmp(argv[i], "--config") == 0) {
            if (i + 1 >= argc)
                return flag_needs_value("--config", errstr, errstr_size);
            file = argv[++i];
        } else if (strncmp(argv[i], "--config=", 9) == 0) {
            file = argv[i] + 9;
        }
    }
    if (!file) {
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
    for (size_t i = 0; i < table->count; i++) {
        const fl_config_entry_t *e = &table->entries[i];
        if ((e->flags & FL_CONFIG_REQUIRED) && e->type == FL_CONFIG_STRING &&
            !*(const char **)field(cfg, e)) {
            env_name(table, e->name, name, sizeof name);
            snprintf(errstr, errstr_size,
                     "missing required setting %s (set --%s, %s or \"%s = ...\" in the config "
                     "file)",
                     e->name, e->name, name, e->name);
            r = FL_CONFIG_EMISSING;
            goto fail;
        }
    }
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
    int r = set_key(cfg, name, value, "fl_config_set", errstr, errstr_size);
    if (cfg->scratch) {
        rd_kafka_conf_destroy(cfg->scratch);
        cfg->scratch = NULL;
    }
    return r;
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
        if (e->type == FL_CONFIG_STRING) {
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
    case FL_CONFIG_ENOMEM:
        return "out of memory";
    default:
        return "unknown error";
    }
}

/* ---- help, docs, dump ---- */

static const char *type_name(fl_config_type_t type)
{
    static const char *const names[] = {"string", "int",  "bool",
                                        "duration", "size", "enum"};
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

void fl_config_print_help(const fl_config_table_t *table, FILE *fp)
{
    char env[256], extra[600];

    fprintf(fp, "Usage: %s [options]%s%s\n", table->program ? table->program : "flushline",
            table->usage ? " " : "", table->usage ? table->usage : "");
    if (table->summary)
        fprintf(fp, "\n%s\n", table->summary);
    fprintf(fp, "\nOptions (flags override %s* environment variables, which override the "
                "config file, which overrides the defaults):\n",
            env_prefix(table));
    for (size_t i = 0; i < table->count; i++) {
        const fl_config_entry_t *e = &table->entries[i];
        size_t n = 0;
        env_name(table, e->name, env, sizeof env);
        if (e->type == FL_CONFIG_BOOL) {
            fprintf(fp, "  --%s[=<bool>], --no-%s\n", e->name, e->name);
        } else if (e->type == FL_CONFIG_ENUM) {
            format_choices(e, "|", extra, sizeof extra);
            fprintf(fp, "  --%s <%s>\n", e->name, extra);
        } else {
            fprintf(fp, "  --%s <%s>\n", e->name, type_name(e->type));
        }
        fprintf(fp, "      %s\n", e->doc ? e->doc : "");
        n += (size_t)snprintf(extra + n, sizeof extra - n, "default %s", default_text(e));
        if (bounded(e) && n < sizeof extra) {
            char range[80];
            format_range(e, range, sizeof range);
            n += (size_t)snprintf(extra + n, sizeof extra - n, "; range %s", range);
        }
        if ((e->flags & FL_CONFIG_REQUIRED) && n < sizeof extra)
            n += (size_t)snprintf(extra + n, sizeof extra - n, "; required");
        fprintf(fp, "      [%s; env %s]\n", extra, env);
    }
    fprintf(fp, "  --config <file>\n      Read settings from FILE, one \"name = value\" a line "
                "('#' starts a comment).\n      [env %sCONFIG]\n",
            env_prefix(table));
    if (table->kafka)
        fprintf(fp, "  --kafka.<name> <value>, -X <name>=<value>\n      Pass a setting through "
                    "to librdkafka (also \"kafka.<name> = value\" in the config file).\n");
    fprintf(fp, "  -h, --help\n      Print this help and exit (--help-markdown: the reference "
                "as Markdown).\n");
    fprintf(fp, "\nDurations take ms, s, m, h or d (plain numbers are ms); sizes take K, M, G "
                "or T (multiples of 1024).\n");
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

void fl_config_print_markdown(const fl_config_table_t *table, FILE *fp)
{
    char env[256], buf[600];

    fprintf(fp, "| Setting | Type | Default | Environment | Description |\n");
    fprintf(fp, "|---|---|---|---|---|\n");
    for (size_t i = 0; i < table->count; i++) {
        const fl_config_entry_t *e = &table->entries[i];
        env_name(table, e->name, env, sizeof env);
        fprintf(fp, "| `%s` | ", e->name);
        if (e->type == FL_CONFIG_ENUM) {
            format_choices(e, ", ", buf, sizeof buf);
            fprintf(fp, "one of ");
            md_escaped(fp, buf);
        } else {
            fprintf(fp, "%s", type_name(e->type));
            if (e->type == FL_CONFIG_DURATION_MS)
                fprintf(fp, " (ms)");
            if (bounded(e)) {
                format_range(e, buf, sizeof buf);
                fprintf(fp, ", %s", buf);
            }
        }
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
        fprintf(fp, "%s = ", e->name);
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
            fputs(e->choices[*(const int *)f], fp);
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
