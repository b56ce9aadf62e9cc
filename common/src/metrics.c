/* SPDX-License-Identifier: Apache-2.0 */
/*
 * metrics: see metrics.h. Every metric is a family: a plain metric is a
 * family with no label and one child. Children are arrays of atomics laid out
 * at registration; doubles are kept as their bit patterns in atomic uint64s
 * and updated with compare-and-swap loops.
 */
#include "flushline/metrics.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_BUCKETS 32

struct fl_counter_s {
    _Atomic uint64_t value;
};

struct fl_gauge_s {
    _Atomic uint64_t bits; /* a double */
};

struct fl_histogram_s {
    const struct fl_metric_vec_s *fam;
    _Atomic uint64_t sum_bits;                /* a double */
    _Atomic uint64_t counts[MAX_BUCKETS + 1]; /* per bucket, not cumulative; last is +Inf */
};

typedef enum kind_e { KIND_COUNTER, KIND_GAUGE, KIND_HISTOGRAM } kind_t;

struct fl_metric_vec_s {
    struct fl_metric_vec_s *next;
    kind_t kind;
    char *name;
    char *help;
    char *label; /* NULL for a plain metric */
    char **values;
    size_t n;
    double bounds[MAX_BUCKETS];
    size_t nbounds;
    void *children; /* n counters, gauges or histograms */
};

struct fl_metrics_s {
    struct fl_metric_vec_s *head, **tail;
};

static uint64_t dbits(double d)
{
    uint64_t u;
    memcpy(&u, &d, sizeof u);
    return u;
}

static double bitsd(uint64_t u)
{
    double d;
    memcpy(&d, &u, sizeof d);
    return d;
}

static void atomic_add_double(_Atomic uint64_t *bits, double delta)
{
    uint64_t old = atomic_load_explicit(bits, memory_order_relaxed);
    while (!atomic_compare_exchange_weak_explicit(bits, &old, dbits(bitsd(old) + delta),
                                                  memory_order_relaxed, memory_order_relaxed)) {
    }
}

fl_metrics_t *fl_metrics_new(void)
{
    fl_metrics_t *reg = calloc(1, sizeof *reg);
    if (reg)
        reg->tail = &reg->head;
    return reg;
}

static void family_free(struct fl_metric_vec_s *fam)
{
    if (!fam)
        return;
    for (size_t i = 0; fam->values && i < fam->n; i++)
        free(fam->values[i]);
    free(fam->values);
    free(fam->children);
    free(fam->name);
    free(fam->help);
    free(fam->label);
    free(fam);
}

void fl_metrics_free(fl_metrics_t *reg)
{
    if (!reg)
        return;
    for (struct fl_metric_vec_s *fam = reg->head, *next; fam; fam = next) {
        next = fam->next;
        family_free(fam);
    }
    free(reg);
}

static bool valid_name(const char *s)
{
    if (!s || !*s)
        return false;
    for (size_t i = 0; s[i]; i++) {
        char c = s[i];
        bool alpha = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || c == ':';
        if (!alpha && !(i > 0 && c >= '0' && c <= '9'))
            return false;
    }
    return true;
}

static struct fl_metric_vec_s *family_new(fl_metrics_t *reg, kind_t kind, const char *name,
                                          const char *help, const double *bounds,
                                          size_t nbounds, const char *label,
                                          const char *const *values, size_t n)
{
    struct fl_metric_vec_s *fam = NULL;
    size_t child_size;

    if (!reg || !valid_name(name) || n == 0)
        return NULL;
    if (label && (!valid_name(label) || strchr(label, ':') || strcmp(label, "le") == 0 ||
                  strncmp(label, "__", 2) == 0))
        return NULL;
    for (struct fl_metric_vec_s *f = reg->head; f; f = f->next)
        if (strcmp(f->name, name) == 0)
            return NULL;
    if (kind == KIND_HISTOGRAM) {
        if (nbounds > MAX_BUCKETS)
            return NULL;
        for (size_t i = 0; i < nbounds; i++)
            if (!isfinite(bounds[i]) || (i > 0 && !(bounds[i] > bounds[i - 1])))
                return NULL;
    }
    fam = calloc(1, sizeof *fam);
    if (!fam)
        return NULL;
    fam->kind = kind;
    fam->n = n;
    fam->name = strdup(name);
    fam->help = strdup(help ? help : "");
    if (!fam->name || !fam->help)
        goto fail;
    if (label) {
        fam->label = strdup(label);
        fam->values = calloc(n, sizeof *fam->values);
        if (!fam->label || !fam->values)
            goto fail;
        for (size_t i = 0; i < n; i++)
            if (!values[i] || !(fam->values[i] = strdup(values[i])))
                goto fail;
    }
    if (kind == KIND_HISTOGRAM) {
        memcpy(fam->bounds, bounds, nbounds * sizeof *bounds);
        fam->nbounds = nbounds;
        child_size = sizeof(struct fl_histogram_s);
    } else {
        child_size = kind == KIND_COUNTER ? sizeof(struct fl_counter_s) : sizeof(struct fl_gauge_s);
    }
    /* calloc's zero bits are 0 for the counters and 0.0 for the doubles. */
    fam->children = calloc(n, child_size);
    if (!fam->children)
        goto fail;
    if (kind == KIND_HISTOGRAM)
        for (size_t i = 0; i < n; i++)
            ((struct fl_histogram_s *)fam->children)[i].fam = fam;
    *reg->tail = fam;
    reg->tail = &fam->next;
    return fam;
fail:
    family_free(fam);
    return NULL;
}

fl_counter_t *fl_metrics_counter(fl_metrics_t *reg, const char *name, const char *help)
{
    struct fl_metric_vec_s *fam =
        family_new(reg, KIND_COUNTER, name, help, NULL, 0, NULL, NULL, 1);
    return fam ? fam->children : NULL;
}

fl_gauge_t *fl_metrics_gauge(fl_metrics_t *reg, const char *name, const char *help)
{
    struct fl_metric_vec_s *fam = family_new(reg, KIND_GAUGE, name, help, NULL, 0, NULL, NULL, 1);
    return fam ? fam->children : NULL;
}

fl_histogram_t *fl_metrics_histogram(fl_metrics_t *reg, const char *name, const char *help,
                                     const double *bounds, size_t nbounds)
{
    struct fl_metric_vec_s *fam =
        family_new(reg, KIND_HISTOGRAM, name, help, bounds, nbounds, NULL, NULL, 1);
    return fam ? fam->children : NULL;
}

fl_metric_vec_t *fl_metrics_counter_vec(fl_metrics_t *reg, const char *name, const char *help,
                                        const char *label, const char *const *values, size_t n)
{
    if (!label || !values)
        return NULL;
    return family_new(reg, KIND_COUNTER, name, help, NULL, 0, label, values, n);
}

fl_metric_vec_t *fl_metrics_gauge_vec(fl_metrics_t *reg, const char *name, const char *help,
                                      const char *label, const char *const *values, size_t n)
{
    if (!label || !values)
        return NULL;
    return family_new(reg, KIND_GAUGE, name, help, NULL, 0, label, values, n);
}

fl_metric_vec_t *fl_metrics_histogram_vec(fl_metrics_t *reg, const char *name, const char *help,
                                          const double *bounds, size_t nbounds, const char *label,
                                          const char *const *values, size_t n)
{
    if (!label || !values)
        return NULL;
    return family_new(reg, KIND_HISTOGRAM, name, help, bounds, nbounds, label, values, n);
}

static fl_metric_vec_t *vec_n(fl_metrics_t *reg, kind_t kind, const char *name, const char *help,
                              const char *label, size_t n)
{
    fl_metric_vec_t *vec = NULL;
    char **values, *digits;
    size_t i;

    if (n == 0 || n > 1000000)
        return NULL;
    values = calloc(n, sizeof *values);
    digits = malloc(n * 8);
    if (values && digits) {
        for (i = 0; i < n; i++) {
            values[i] = digits + i * 8;
            snprintf(values[i], 8, "%zu", i);
        }
        vec = family_new(reg, kind, name, help, NULL, 0, label, (const char *const *)values, n);
    }
    free(values);
    free(digits);
    return vec;
}

fl_metric_vec_t *fl_metrics_counter_vec_n(fl_metrics_t *reg, const char *name, const char *help,
                                          const char *label, size_t n)
{
    return label ? vec_n(reg, KIND_COUNTER, name, help, label, n) : NULL;
}

fl_metric_vec_t *fl_metrics_gauge_vec_n(fl_metrics_t *reg, const char *name, const char *help,
                                        const char *label, size_t n)
{
    return label ? vec_n(reg, KIND_GAUGE, name, help, label, n) : NULL;
}

fl_counter_t *fl_metric_vec_counter(fl_metric_vec_t *vec, size_t i)
{
    if (!vec || vec->kind != KIND_COUNTER || i >= vec->n)
        return NULL;
    return (struct fl_counter_s *)vec->children + i;
}

fl_gauge_t *fl_metric_vec_gauge(fl_metric_vec_t *vec, size_t i)
{
    if (!vec || vec->kind != KIND_GAUGE || i >= vec->n)
        return NULL;
    return (struct fl_gauge_s *)vec->children + i;
}

fl_histogram_t *fl_metric_vec_histogram(fl_metric_vec_t *vec, size_t i)
{
    if (!vec || vec->kind != KIND_HISTOGRAM || i >= vec->n)
        return NULL;
    return (struct fl_histogram_s *)vec->children + i;
}

long fl_metric_vec_index(const fl_metric_vec_t *vec, const char *value)
{
    if (!vec || !vec->values || !value)
        return -1;
    for (size_t i = 0; i < vec->n; i++)
        if (strcmp(vec->values[i], value) == 0)
            return (long)i;
    return -1;
}

void fl_counter_add(fl_counter_t *c, uint64_t n)
{
    if (c)
        atomic_fetch_add_explicit(&c->value, n, memory_order_relaxed);
}

void fl_counter_inc(fl_counter_t *c)
{
    fl_counter_add(c, 1);
}

uint64_t fl_counter_value(const fl_counter_t *c)
{
    return c ? atomic_load_explicit(&((fl_counter_t *)c)->value, memory_order_relaxed) : 0;
}

/* fl_gauge_clear's value: a NaN with a payload of its own, so that a gauge
 * set to NaN is still rendered ("NaN"). */
#define GAUGE_CLEARED 0x7ff8c1ea2ed00000ull

void fl_gauge_clear(fl_gauge_t *g)
{
    if (g)
        atomic_store_explicit(&g->bits, GAUGE_CLEARED, memory_order_relaxed);
}

void fl_gauge_set(fl_gauge_t *g, double v)
{
    if (g)
        atomic_store_explicit(&g->bits, dbits(v), memory_order_relaxed);
}

void fl_gauge_add(fl_gauge_t *g, double delta)
{
    if (g)
        atomic_add_double(&g->bits, delta);
}

void fl_gauge_set_int(fl_gauge_t *g, int64_t v)
{
    fl_gauge_set(g, (double)v);
}

void fl_gauge_add_int(fl_gauge_t *g, int64_t delta)
{
    fl_gauge_add(g, (double)delta);
}

double fl_gauge_value(const fl_gauge_t *g)
{
    return g ? bitsd(atomic_load_explicit(&((fl_gauge_t *)g)->bits, memory_order_relaxed)) : 0;
}

void fl_histogram_observe(fl_histogram_t *h, double v)
{
    size_t i = 0;
    if (!h)
        return;
    /* Few buckets: a linear scan beats a binary search's branches. NaN
     * compares false everywhere and lands in +Inf, as in the Go client. */
    while (i < h->fam->nbounds && !(v <= h->fam->bounds[i]))
        i++;
    atomic_fetch_add_explicit(&h->counts[i], 1, memory_order_relaxed);
    atomic_add_double(&h->sum_bits, v);
}

uint64_t fl_histogram_count(const fl_histogram_t *h)
{
    uint64_t total = 0;
    if (!h)
        return 0;
    for (size_t i = 0; i <= h->fam->nbounds; i++)
        total += atomic_load_explicit(&((fl_histogram_t *)h)->counts[i], memory_order_relaxed);
    return total;
}

double fl_histogram_sum(const fl_histogram_t *h)
{
    return h ? bitsd(atomic_load_explicit(&((fl_histogram_t *)h)->sum_bits, memory_order_relaxed))
             : 0;
}

/* ---- rendering ---- */

typedef struct buf_s {
    char *p;
    size_t len, cap;
    bool oom;
} buf_t;

static void buf_grow(buf_t *b, size_t need)
{
    size_t cap;
    char *p;
    if (b->oom || b->len + need + 1 <= b->cap)
        return;
    cap = b->cap ? b->cap : 1024;
    while (cap < b->len + need + 1)
        cap *= 2;
    p = realloc(b->p, cap);
    if (!p) {
        b->oom = true;
        return;
    }
    b->p = p;
    b->cap = cap;
}

static void buf_put(buf_t *b, const char *s, size_t n)
{
    buf_grow(b, n);
    if (b->oom)
        return;
    memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = '\0';
}

static void buf_str(buf_t *b, const char *s)
{
    buf_put(b, s, strlen(s));
}

/* HELP text escapes backslash and newline; label values also the quote. */
static void buf_escaped(buf_t *b, const char *s, bool quote)
{
    for (; *s; s++) {
        if (*s == '\\')
            buf_put(b, "\\\\", 2);
        else if (*s == '\n')
            buf_put(b, "\\n", 2);
        else if (quote && *s == '"')
            buf_put(b, "\\\"", 2);
        else
            buf_put(b, s, 1);
    }
}

/* The shortest text that reads back as the same double; Prometheus's
 * spelling of the infinities and NaN. */
static void format_double(char *out, size_t size, double v)
{
    if (isnan(v)) {
        snprintf(out, size, "NaN");
    } else if (isinf(v)) {
        snprintf(out, size, v > 0 ? "+Inf" : "-Inf");
    } else if (v > -1e15 && v < 1e15 && v == (double)(int64_t)v) {
        /* whole numbers as integers: "10", not "1e+01" */
        snprintf(out, size, "%.0f", v);
    } else {
        for (int prec = 1; prec <= 17; prec++) {
            snprintf(out, size, "%.*g", prec, v);
            if (strtod(out, NULL) == v)
                return;
        }
    }
}

static void buf_double(buf_t *b, double v)
{
    char tmp[40];
    format_double(tmp, sizeof tmp, v);
    buf_str(b, tmp);
}

static void buf_u64(buf_t *b, uint64_t v)
{
    char tmp[24];
    snprintf(tmp, sizeof tmp, "%llu", (unsigned long long)v);
    buf_str(b, tmp);
}

/* "name[suffix]{label="value",le="x"} " */
static void buf_series(buf_t *b, const struct fl_metric_vec_s *fam, size_t i, const char *suffix,
                       const char *le)
{
    buf_str(b, fam->name);
    buf_str(b, suffix);
    if (fam->label || le) {
        buf_put(b, "{", 1);
        if (fam->label) {
            buf_str(b, fam->label);
            buf_put(b, "=\"", 2);
            buf_escaped(b, fam->values[i], true);
            buf_put(b, "\"", 1);
        }
        if (le) {
            if (fam->label)
                buf_put(b, ",", 1);
            buf_put(b, "le=\"", 4);
            buf_str(b, le);
            buf_put(b, "\"", 1);
        }
        buf_put(b, "}", 1);
    }
    buf_put(b, " ", 1);
}

static void render_histogram(buf_t *b, const struct fl_metric_vec_s *fam, size_t i)
{
    struct fl_histogram_s *h = (struct fl_histogram_s *)fam->children + i;
    uint64_t cumulative = 0;
    char le[40];

    for (size_t k = 0; k <= fam->nbounds; k++) {
        cumulative += atomic_load_explicit(&h->counts[k], memory_order_relaxed);
        if (k < fam->nbounds)
            format_double(le, sizeof le, fam->bounds[k]);
        else
            snprintf(le, sizeof le, "+Inf");
        buf_series(b, fam, i, "_bucket", le);
        buf_u64(b, cumulative);
        buf_put(b, "\n", 1);
    }
    buf_series(b, fam, i, "_sum", NULL);
    buf_double(b, fl_histogram_sum(h));
    buf_put(b, "\n", 1);
    /* _count equals the +Inf bucket by definition, so reuse that read. */
    buf_series(b, fam, i, "_count", NULL);
    buf_u64(b, cumulative);
    buf_put(b, "\n", 1);
}

int fl_metrics_render(const fl_metrics_t *reg, char **out, size_t *len)
{
    static const char *const type_names[] = {"counter", "gauge", "histogram"};
    buf_t b = {0};

    buf_grow(&b, 0);
    for (const struct fl_metric_vec_s *fam = reg ? reg->head : NULL; fam; fam = fam->next) {
        buf_str(&b, "# HELP ");
        buf_str(&b, fam->name);
        buf_put(&b, " ", 1);
        buf_escaped(&b, fam->help, false);
        buf_str(&b, "\n# TYPE ");
        buf_str(&b, fam->name);
        buf_put(&b, " ", 1);
        buf_str(&b, type_names[fam->kind]);
        buf_put(&b, "\n", 1);
        for (size_t i = 0; i < fam->n; i++) {
            if (fam->kind == KIND_HISTOGRAM) {
                render_histogram(&b, fam, i);
                continue;
            }
            if (fam->kind == KIND_GAUGE &&
                atomic_load_explicit(&((struct fl_gauge_s *)fam->children + i)->bits,
                                     memory_order_relaxed) == GAUGE_CLEARED)
                continue;
            buf_series(&b, fam, i, "", NULL);
            if (fam->kind == KIND_COUNTER)
                buf_u64(&b, fl_counter_value((struct fl_counter_s *)fam->children + i));
            else
                buf_double(&b, fl_gauge_value((struct fl_gauge_s *)fam->children + i));
            buf_put(&b, "\n", 1);
        }
    }
    if (b.oom) {
        free(b.p);
        *out = NULL;
        *len = 0;
        return -ENOMEM;
    }
    *out = b.p;
    *len = b.len;
    return 0;
}
