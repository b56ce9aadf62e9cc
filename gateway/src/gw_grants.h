/* SPDX-License-Identifier: Apache-2.0 */
/*
 * gw_grants: the compact, shared form of verified claims. What a
 * connection may do, interned per distinct (sub, role, read prefixes, write
 * prefixes) in a table (an fl_hmap_t the caller owns) and shared by
 * reference count: every connection of one user costs one pointer instead
 * of a 16.7 KB fl_claims_t. Immutable once built; exp stays per
 * connection.
 *
 * @locality lws service thread.
 */
#ifndef GW_GRANTS_H
#define GW_GRANTS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "flushline/hmap.h"
#include "flushline/jwt.h"
#include "flushline/value.h"

typedef struct gw_grants_s {
    uint32_t refs;
    uint16_t nread, nwrite;
    fl_slice_t sub;       /* NUL-terminated too */
    fl_slice_t role;      /* the token's role claim, empty when none (not NUL-terminated) */
    fl_slice_t *prefixes; /* nread read prefixes, then nwrite write prefixes */
    size_t keylen;
    char *key; /* the interning key; sub and prefixes point into it */
} gw_grants_t;

/* The interned grants of verified claims in table (a new reference); NULL
 * on OOM. */
gw_grants_t *gw_grants_get(fl_hmap_t *table, const fl_claims_t *claims);
/* Drops a reference; the last one removes it from table. NULL is safe. */
void gw_grants_unref(fl_hmap_t *table, gw_grants_t *grants);
/* fl_claims_can_read / fl_claims_can_write over grants: some prefix is "*"
 * or a bytewise prefix of doc; write implies read; a doc that is empty,
 * longer than 255 bytes or not UTF-8 is never granted. */
bool gw_grants_can_read(const gw_grants_t *grants, fl_slice_t doc);
bool gw_grants_can_write(const gw_grants_t *grants, fl_slice_t doc);

#endif
