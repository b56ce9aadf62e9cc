/* SPDX-License-Identifier: Apache-2.0 */
/*
 * config: see config.h. Every source funnels into set_entry(), which parses
 * the text by the entry's type, runs the entry's check and only then writes
 * the target struct, so a rejected value leaves the previous one in place.
 * Each entry remembers where its value came from, for fl_config_dump(), for
 * errors that name the source, and for the checks that run after every
 * source is in (required entries, groups). Lookups and value formats are
 * in config_table.c, --help and the docs in config_help.c.
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

#include "flushline/errors.h"
#include "flushline/log.h"

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
        cf_describe_rule(e, buf, sizeof buf);
        rule = buf;
    }
    if (e->flags & FL_CONFIG_SECRET)
        text = "(secret)";
    if (cfg->table->cli && (strncmp(where, "flag ", 5) == 0 || strncmp(where, "argument ", 9) == 0))
        /* the option names itself; "(from flag --doc)" would say it twice */
        snprintf(errstr, errstr_size, "invalid value \"%s\" for %s: %s", text,
                 cf_display(cfg->table, e, name, sizeof name), rule);
    else
        snprintf(errstr, errstr_size, "invalid value \"%s\" for %s (from %s): %s", text,
                 cf_display(cfg->table, e, name, sizeof name), where, rule);
    return FL_CONFIG_EVALUE;
}

/* Parses text by the entry's type and bounds into v. 0 or FL_CONFIG_EVALUE. */
static int parse_value(const fl_config_t *cfg, const fl_config_entry_t *e, const char *text,
                       const char *where, value_t *v, char *errstr, size_t errstr_size)
{
    /* the types whose value is an int64_t, by type */
    static int (*const int_parsers[])(const char *, int64_t *) = {
        [FL_CONFIG_INT] = cf_parse_int,
        [FL_CONFIG_DURATION_MS] = fl_config_parse_duration_ms,
        [FL_CONFIG_DURATION_S] = cf_parse_seconds,
        [FL_CONFIG_SIZE] = fl_config_parse_size,
    };
    int bad = 0;
    switch (e->type) {
    case FL_CONFIG_STRING:
        v->s = text;
        break;
    case FL_CONFIG_INT:
    case FL_CONFIG_DURATION_MS:
    case FL_CONFIG_DURATION_S:
    case FL_CONFIG_SIZE:
        bad = int_parsers[e->type](text, &v->i);
        break;
    case FL_CONFIG_BOOL:
        bad = fl_config_parse_bool(text, &v->b);
        break;
    case FL_CONFIG_DOUBLE:
        bad = cf_parse_double(text, &v->d);
        break;
    case FL_CONFIG_ENUM:
        v->idx = -1;
        for (int i = 0; e->choices && e->choices[i]; i++)
            if (strcasecmp(e->choices[i], text) == 0)
                v->idx = i;
        bad = v->idx < 0;
        break;
    }
    if (!bad && cf_bounded(e))
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
    fl_config_list_t *list = cf_field(cfg, e);
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
        *(fl_config_list_t *)cf_field(cfg, e) = (fl_config_list_t){NULL, 0};
    } else if (e->flags & FL_CONFIG_LIST) {
        if ((r = list_add(cfg, e, slot, text, where, source, errstr, errstr_size)) != 0) {
            free(where_dup);
            if (r == FL_CONFIG_ENOMEM)
                goto fail;
            return r;
        }
    } else if (e->type == FL_CONFIG_STRING && text && !(owned = cf_str_dup(text, secret))) {
        free(where_dup);
        goto fail;
    }

    switch (e->type) {
    case FL_CONFIG_STRING:
        if (e->flags & FL_CONFIG_LIST)
            break;
        *(const char **)cf_field(cfg, e) = owned;
        cf_str_free(slot->str, secret);
        slot->str = owned;
        break;
    case FL_CONFIG_BOOL:
        *(bool *)cf_field(cfg, e) = v.b;
        break;
    case FL_CONFIG_ENUM:
        /* an enum without a default starts unset */
        *(int *)cf_field(cfg, e) = text ? v.idx : -1;
        break;
    case FL_CONFIG_DOUBLE:
        *(double *)cf_field(cfg, e) = v.d;
        break;
    default:
        *(int64_t *)cf_field(cfg, e) = v.i;
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
        size_t d = cf_positional(e) ? SIZE_MAX : distance(name, e->name);
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
    if (!(value_dup = cf_str_dup(value, secret)) || !(where_dup = strdup(where)))
        goto fail;
    if (i == cfg->kafka.count) {
        if (!(name_dup = strdup(name)))
            goto fail;
        cfg->kafka.names[i] = name_dup;
        cfg->kafka.count++;
    } else {
        cf_str_free((char *)cfg->kafka.values[i], secret);
        free(cfg->kafka_where[i]);
    }
    cfg->kafka.values[i] = value_dup;
    cfg->kafka_where[i] = where_dup;
    return 0;
fail:
    cf_str_free(value_dup, secret);
    free(where_dup);
    snprintf(errstr, errstr_size, "out of memory setting kafka.%s", name);
    return FL_CONFIG_ENOMEM;
}

/* One key from any source. */
static int set_key(fl_config_t *cfg, const char *name, const char *value, const char *where,
                   source_t source, char *errstr, size_t errstr_size)
{
    const fl_config_entry_t *e = cf_find_entry(cfg->table, name, strlen(name));
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
    const char *prefix = cf_env_prefix(table);
    size_t plen = strlen(prefix);
    char name[256], where[300];

    for (size_t i = 0; i < table->count; i++) {
        const char *value;
        int r;
        if (!cf_reads_env(table, &table->entries[i]))
            continue;
        cf_env_name(table, table->entries[i].name, name, sizeof name);
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
            if (!cf_reads_env(table, &table->entries[i]))
                continue;
            cf_env_name(table, table->entries[i].name, name, sizeof name);
            d = distance(var, name);
            known = d == 0;
            if (d < best_d) {
                best_d = d;
                best = table->entries[i].name;
            }
        }
        if (!known && best) {
            cf_env_name(table, best, name, sizeof name);
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

    while (*next < table->count && !cf_positional(&table->entries[*next]))
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

/* The value of flag arg (entry e, NULL for a kafka.* name or an unknown
 * one) when it had no "=value" (*value NULL): a bool flag alone is true,
 * or takes the next word if that is a bool and the flag is no switch;
 * any other flag takes the next word, which *i then moves past. */
static int flag_value(fl_config_t *cfg, const fl_config_entry_t *e, const char *arg,
                      const char *namebuf, const char *where, int argc, char **argv, int *i,
                      const char **value, char *errstr, size_t errstr_size)
{
    if (*value)
        return 0;
    if (e && e->type == FL_CONFIG_BOOL) {
        bool b;
        *value = "true";
        if (!(e->flags & FL_CONFIG_SWITCH) && *i + 1 < argc &&
            fl_config_parse_bool(argv[*i + 1], &b) == 0)
            *value = argv[++*i];
        return 0;
    }
    if (*i + 1 >= argc)
        return flag_needs_value(arg, errstr, errstr_size);
    if (!e && !(cfg->table->kafka && strncmp(namebuf, KAFKA_PREFIX, 6) == 0))
        return unknown_key(cfg, namebuf, where, errstr, errstr_size);
    *value = argv[++*i];
    return 0;
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
            if (arg[2] != '\0' || !(e = cf_find_short(table, arg[1])))
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
            e = cf_find_entry(table, namebuf, nlen);
            if (!e && !eq && strncmp(namebuf, "no-", 3) == 0) {
                e = cf_find_entry(table, namebuf + 3, nlen - 3);
                if (e && e->type == FL_CONFIG_BOOL) {
                    if ((r = set_entry(cfg, e, "false", where, SRC_FLAG, errstr, errstr_size)) != 0)
                        return r;
                    continue;
                }
                e = NULL;
            }
        }
        if ((r = flag_value(cfg, e, arg, namebuf, where, argc, argv, &i, &value, errstr,
                            errstr_size)) != 0)
            return r;
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
        return *(const char **)cf_field(cfg, e) != NULL;
    return given(cfg, i);
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
                         cf_display(table, e, a, sizeof a), cf_display(table, o, b, sizeof b));
                return FL_CONFIG_ECONFLICT;
            }
        }
        if (first && required && !any) {
            cf_group_names(table, e->group, NULL, false, names, sizeof names);
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
        cf_env_name(table, e->name, name, sizeof name);
        if (cf_positional(e))
            snprintf(errstr, errstr_size, "missing argument <%s>", e->name);
        else if (table->cli && cf_reads_env(table, e))
            snprintf(errstr, errstr_size, "missing required option --%s (or %s)", e->name, name);
        else if (table->cli)
            snprintf(errstr, errstr_size, "missing required option %s",
                     cf_display(table, e, shown, sizeof shown));
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
        if (cf_positional(e) &&
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
        snprintf(name, sizeof name, "%sCONFIG", cf_env_prefix(table));
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
            *(fl_config_list_t *)cf_field(cfg, e) = (fl_config_list_t){NULL, 0};
            list_clear(&cfg->slots[i]);
        } else if (e->type == FL_CONFIG_STRING) {
            *(const char **)cf_field(cfg, e) = NULL;
            cf_str_free(cfg->slots[i].str, (e->flags & FL_CONFIG_SECRET) != 0);
        }
        free(cfg->slots[i].where);
    }
    for (size_t i = 0; i < cfg->kafka.count; i++) {
        cf_str_free((char *)cfg->kafka.values[i], fl_kafka_is_secret(cfg->kafka.names[i]));
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
    /* by 1 - err: FL_CONFIG_HELP (1) comes first */
    static const char *const text[] = {
        [1 - FL_CONFIG_HELP] = "help printed",
        [1] = "success",
        [1 - FL_CONFIG_EUNKNOWN] = "unknown setting",
        [1 - FL_CONFIG_EVALUE] = "invalid value",
        [1 - FL_CONFIG_EFILE] = "cannot read config file",
        [1 - FL_CONFIG_ESYNTAX] = "syntax error",
        [1 - FL_CONFIG_EMISSING] = "missing required setting",
        [1 - FL_CONFIG_ECONFLICT] = "settings exclude each other",
        [1 - FL_CONFIG_ENOMEM] = "out of memory",
    };
    return FL_NAME_AT(text, 1 - (long)err, "unknown error");
}
