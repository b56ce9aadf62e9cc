/* SPDX-License-Identifier: Apache-2.0 */
/*
 * gw_grants: the compact form of a verified token's rights. A connection
 * needs only its user id and its read and write prefixes after the token
 * check, and the connections of one user (or of one role) carry the same
 * ones, so they are interned: one refcounted, immutable gw_grants_t per
 * distinct (sub, role, read prefixes, write prefixes), found by a byte key in a
 * gateway-wide map (the table). An fl_claims_t is 16.7 KB; a grants object is its
 * strings' size plus a few dozen bytes, shared by every connection that
 * holds it. The expiry stays per connection.
 *
 * The checks are those of fl_claims_can_read / fl_claims_can_write (auth),
 * over slices.
 *
 * @locality lws service thread.
 */
#include <stdlib.h>
#include <string.h>

#include "flushline/flush.h"
#include "flushline/value.h"
#include "gw_grants.h"

/* key: sub, role, nread, read prefixes, nwrite, write prefixes; each
 * string as one length byte (<= 255) and its bytes. */
static size_t key_size(const fl_claims_t *claims)
{
    size_t n = 1 + strlen(claims->sub) + 1 + strlen(claims->role) + 2;
    for (uint32_t i = 0; i < claims->nread; i++)
        n += 1 + strlen(claims->read[i]);
    for (uint32_t i = 0; i < claims->nwrite; i++)
        n += 1 + strlen(claims->write[i]);
    return n;
}

static char *put_str(char *p, const char *str)
{
    size_t len = strlen(str);
    *p++ = (char)(unsigned char)len;
    memcpy(p, str, len);
    return p + len;
}

gw_grants_t *gw_grants_get(fl_hmap_t *table, const fl_claims_t *claims)
{
    uint32_t nread = claims->nread, nwrite = claims->nwrite;
    size_t klen, n;
    gw_grants_t *grants = NULL;
    char *key = NULL, *p;

    if (nread > FL_JWT_MAX_PREFIXES || nwrite > FL_JWT_MAX_PREFIXES)
        return NULL;
    klen = key_size(claims);
    if (!(key = malloc(klen)))
        return NULL;
    p = put_str(key, claims->sub);
    p = put_str(p, claims->role);
    *p++ = (char)nread;
    for (uint32_t i = 0; i < nread; i++)
        p = put_str(p, claims->read[i]);
    *p++ = (char)nwrite;
    for (uint32_t i = 0; i < nwrite; i++)
        p = put_str(p, claims->write[i]);
    if ((grants = fl_hmap_get(table, key, klen))) {
        free(key);
        grants->refs++;
        return grants;
    }
    /* one block: the struct, the slices, the key, then sub again as a C
     * string (it is handed out NUL-terminated too) */
    n = sizeof *grants + (nread + nwrite) * sizeof(fl_slice_t) + klen + strlen(claims->sub) + 1;
    if (!(grants = calloc(1, n))) {
        free(key);
        return NULL;
    }
    grants->refs = 1;
    grants->nread = (uint16_t)nread;
    grants->nwrite = (uint16_t)nwrite;
    grants->prefixes = (fl_slice_t *)(grants + 1);
    grants->key = (char *)(grants->prefixes + nread + nwrite);
    grants->keylen = klen;
    memcpy(grants->key, key, klen);
    free(key);
    /* slices into the key; sub's C string after it */
    p = grants->key + klen;
    {
        const char *k = grants->key;
        size_t len = (unsigned char)*k++;
        memcpy(p, k, len);
        p[len] = '\0';
        grants->sub = (fl_slice_t){p, len};
        p += len + 1;
        k += len;
        len = (unsigned char)*k++;
        grants->role = (fl_slice_t){len ? k : "", len};
        k += len;
        for (int side = 0; side < 2; side++) {
            uint32_t cnt = (unsigned char)*k++, base = side ? nread : 0;
            for (uint32_t i = 0; i < cnt; i++) {
                len = (unsigned char)*k++;
                grants->prefixes[base + i] = (fl_slice_t){k, len};
                k += len;
            }
        }
    }
    if (fl_hmap_put(table, grants->key, grants->keylen, grants) != 0) {
        free(grants);
        return NULL;
    }
    return grants;
}

void gw_grants_unref(fl_hmap_t *table, gw_grants_t *grants)
{
    if (!grants || --grants->refs > 0)
        return;
    fl_hmap_del(table, grants->key, grants->keylen);
    free(grants);
}

static bool any_prefix(const fl_slice_t *prefixes, uint32_t n, fl_slice_t doc)
{
    for (uint32_t i = 0; i < n; i++) {
        const fl_slice_t *p = &prefixes[i];
        if ((p->len == 1 && p->ptr[0] == '*') ||
            (p->len > 0 && p->len <= doc.len && memcmp(p->ptr, doc.ptr, p->len) == 0))
            return true;
    }
    return false;
}

static bool doc_ok(fl_slice_t doc)
{
    return doc.len > 0 && doc.len <= FL_DOC_ID_MAX && fl_utf8_valid(doc.ptr, doc.len);
}

bool gw_grants_can_write(const gw_grants_t *grants, fl_slice_t doc)
{
    return grants && doc_ok(doc) && any_prefix(grants->prefixes + grants->nread, grants->nwrite, doc);
}

bool gw_grants_can_read(const gw_grants_t *grants, fl_slice_t doc)
{
    return grants && doc_ok(doc) &&
           (any_prefix(grants->prefixes, grants->nread, doc) ||
            any_prefix(grants->prefixes + grants->nread, grants->nwrite, doc));
}
