/* SPDX-License-Identifier: Apache-2.0 */
/*
 * rules_catalog: the rule sets in force, by document id prefix; a
 * document takes the set of its longest matching prefix.
 */
#include <stdlib.h>
#include <string.h>

#include "rules_int.h"

typedef struct cat_ent_s {
    char *prefix;
    size_t plen;
    fl_rules_t *rules;
} cat_ent_t;

struct fl_rules_catalog_s {
    cat_ent_t *ents;
    uint32_t n, cap;
};

fl_rules_catalog_t *fl_rules_catalog_new(void)
{
    return calloc(1, sizeof(fl_rules_catalog_t));
}

void fl_rules_catalog_free(fl_rules_catalog_t *cat)
{
    if (!cat)
        return;
    for (uint32_t i = 0; i < cat->n; i++) {
        free(cat->ents[i].prefix);
        fl_rules_free(cat->ents[i].rules);
    }
    free(cat->ents);
    free(cat);
}

int fl_rules_catalog_put(fl_rules_catalog_t *cat, fl_slice_t prefix, fl_rules_t *rules)
{
    if (!cat || prefix.len > FL_RULES_MAX_PREFIX || (prefix.len && !prefix.ptr)) {
        fl_rules_free(rules);
        return FL_RERR_ARG;
    }
    for (uint32_t i = 0; i < cat->n; i++) {
        cat_ent_t *e = &cat->ents[i];
        if (e->plen != prefix.len || memcmp(e->prefix, prefix.ptr, prefix.len) != 0)
            continue;
        fl_rules_free(e->rules);
        if (rules) {
            e->rules = rules;
        } else {
            free(e->prefix);
            cat->ents[i] = cat->ents[--cat->n];
        }
        return 0;
    }
    if (!rules)
        return 0;
    if (fl_grow(&cat->ents, &cat->cap, cat->n, sizeof *cat->ents, 8) != 0) {
        fl_rules_free(rules);
        return FL_RERR_NOMEM;
    }
    char *p = malloc(prefix.len ? prefix.len : 1);
    if (!p) {
        fl_rules_free(rules);
        return FL_RERR_NOMEM;
    }
    if (prefix.len)
        memcpy(p, prefix.ptr, prefix.len);
    cat->ents[cat->n++] = (cat_ent_t){p, prefix.len, rules};
    return 0;
}

const fl_rules_t *fl_rules_catalog_find(const fl_rules_catalog_t *cat, fl_slice_t doc_id)
{
    const cat_ent_t *best = NULL;
    for (uint32_t i = 0; cat && i < cat->n; i++) {
        const cat_ent_t *e = &cat->ents[i];
        if (e->plen <= doc_id.len && (e->plen == 0 || memcmp(e->prefix, doc_id.ptr, e->plen) == 0) &&
            (!best || e->plen > best->plen))
            best = e;
    }
    return best ? best->rules : NULL;
}

uint32_t fl_rules_catalog_count(const fl_rules_catalog_t *cat)
{
    return cat ? cat->n : 0;
}
