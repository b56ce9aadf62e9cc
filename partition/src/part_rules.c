/* SPDX-License-Identifier: Apache-2.0 */
/*
 * part_rules: the rule sets in force of a partition (schemas/RULES.md,
 * section 3). The compiled catalogue answers "which set applies to this
 * document"; the sources (prefix and text, as published) are what a
 * checkpoint carries so that a restore puts the same sets in force. See
 * part_int.h.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "part_int.h"

static void src_free(part_rule_src_t *s)
{
    free(s->prefix);
    free(s->text);
}

void part_rules_clear(part_rules_t *r)
{
    for (uint32_t i = 0; i < r->n; i++)
        src_free(&r->src[i]);
    free(r->src);
    fl_rules_catalog_free(r->cat);
    memset(r, 0, sizeof *r);
}

static char *dup_slice(fl_slice_t s)
{
    char *p = malloc(s.len + 1);
    if (p) {
        if (s.len)
            memcpy(p, s.ptr, s.len);
        p[s.len] = '\0';
    }
    return p;
}

/* The index of prefix in the sorted sources, or where it would go (*found
 * false). */
static uint32_t src_find(const part_rules_t *r, fl_slice_t prefix, bool *found)
{
    uint32_t i;
    *found = false;
    for (i = 0; i < r->n; i++) {
        const part_rule_src_t *s = &r->src[i];
        size_t n = s->plen < prefix.len ? s->plen : prefix.len;
        int c = n ? memcmp(s->prefix, prefix.ptr, n) : 0;
        if (c == 0 && s->plen == prefix.len) {
            *found = true;
            return i;
        }
        if (c > 0 || (c == 0 && s->plen > prefix.len))
            break;
    }
    return i;
}

/* Makes room for one more source. 0 or -1. */
static int src_reserve(part_rules_t *r)
{
    if (r->n < r->cap)
        return 0;
    uint32_t cap = r->cap ? r->cap * 2 : 4;
    part_rule_src_t *src = realloc(r->src, cap * sizeof *src);
    if (!src)
        return -1;
    r->src = src;
    r->cap = cap;
    return 0;
}

static int removal(part_rules_t *r, fl_slice_t prefix)
{
    bool found;
    uint32_t i = src_find(r, prefix, &found);
    if (!found)
        return 0;
    if (fl_rules_catalog_put(r->cat, prefix, NULL) != 0)
        return FL_HISTORY_ENOMEM;
    src_free(&r->src[i]);
    memmove(&r->src[i], &r->src[i + 1], (r->n - i - 1) * sizeof r->src[0]);
    r->n--;
    return 0;
}

int part_rules_put(part_rules_t *r, fl_slice_t prefix, const fl_slice_t *text, char *errstr,
                   size_t errstr_size)
{
    fl_rules_t *rules = NULL;
    part_rule_src_t s = {0};
    bool found;
    int rc;

    if (prefix.len > FL_RULES_MAX_PREFIX) {
        snprintf(errstr, errstr_size, "prefix of %zu bytes, above %d", prefix.len,
                 FL_RULES_MAX_PREFIX);
        return FL_HISTORY_ERECORD;
    }
    if (!text)
        return removal(r, prefix);
    rc = fl_rules_parse(text->ptr, text->len, &rules, errstr, errstr_size);
    if (rc == FL_RERR_NOMEM)
        return FL_HISTORY_ENOMEM;
    if (rc != 0)
        return FL_HISTORY_ERECORD;
    if ((!r->cat && !(r->cat = fl_rules_catalog_new())) || src_reserve(r) != 0 ||
        !(s.prefix = dup_slice(prefix)) || !(s.text = dup_slice(*text))) {
        src_free(&s);
        fl_rules_free(rules);
        return FL_HISTORY_ENOMEM;
    }
    s.plen = prefix.len;
    s.tlen = text->len;
    if (fl_rules_catalog_put(r->cat, prefix, rules) != 0) { /* frees rules */
        src_free(&s);
        return FL_HISTORY_ENOMEM;
    }
    uint32_t i = src_find(r, prefix, &found);
    if (found) {
        src_free(&r->src[i]);
    } else {
        memmove(&r->src[i + 1], &r->src[i], (r->n - i) * sizeof r->src[0]);
        r->n++;
    }
    r->src[i] = s;
    return 0;
}

const fl_rules_t *part_rules_find(const part_rules_t *r, fl_slice_t doc)
{
    return r->n ? fl_rules_catalog_find(r->cat, doc) : NULL;
}

int part_rules_load(part_rules_t *r, const fl_wire_checkpoint_t *cp, char *errstr,
                    size_t errstr_size)
{
    char why[256];
    int first = 0;
    part_rules_clear(r);
    for (uint32_t i = 0; i < cp->nrules; i++) {
        const fl_wire_rules_t *w = &cp->rules[i];
        int rc = part_rules_put(r, w->prefix, &w->rules, why, sizeof why);
        if (rc != 0 && first == 0) {
            first = rc;
            snprintf(errstr, errstr_size, "the checkpoint's rule set for prefix \"%.*s\": %s",
                     (int)w->prefix.len, w->prefix.ptr, why);
        }
    }
    return first;
}

int part_rules_export(const part_rules_t *r, fl_arena_t *arena, fl_wire_rules_t **items,
                      uint32_t *n)
{
    *items = NULL;
    *n = 0;
    if (r->n == 0)
        return 0;
    if (!(*items = fl_arena_alloc(arena, r->n * sizeof **items)))
        return FL_HISTORY_ENOMEM;
    for (uint32_t i = 0; i < r->n; i++)
        (*items)[i] = (fl_wire_rules_t){{r->src[i].prefix, r->src[i].plen}, true,
                                        {r->src[i].text, r->src[i].tlen}, {"", 0}};
    *n = r->n;
    return 0;
}
