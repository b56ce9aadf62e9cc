/* SPDX-License-Identifier: Apache-2.0 */
/*
 * utf8: strict UTF-8 validation (RFC 3629): no overlong forms, no UTF-16
 * surrogates, nothing above U+10FFFF. ASCII runs are checked 8 bytes at a
 * time because nearly every key and path on the wire is ASCII.
 */
#include <stdint.h>
#include <string.h>

#include "flushline/value.h"

/* The length of the sequence lead byte c begins; 0 for a byte that begins
 * none (a continuation byte, C0/C1 (overlong), F5..FF). */
static size_t seq_len(unsigned c)
{
    if (c < 0xc2 || c > 0xf4)
        return 0;
    return c < 0xe0 ? 2 : c < 0xf0 ? 3 : 4;
}

/* Whether the len - 1 bytes after the lead byte p[0] are continuation bytes,
 * the second within the range the lead byte allows: E0 and F0 would be
 * overlong below A0 and 90, ED above 9F a UTF-16 surrogate, F4 above 8F
 * past U+10FFFF. */
static bool valid_tail(const unsigned char *p, size_t len)
{
    unsigned lo = p[0] == 0xe0 ? 0xa0 : p[0] == 0xf0 ? 0x90 : 0x80;
    unsigned hi = p[0] == 0xed ? 0x9f : p[0] == 0xf4 ? 0x8f : 0xbf;
    if (p[1] < lo || p[1] > hi)
        return false;
    for (size_t i = 2; i < len; i++)
        if ((p[i] & 0xc0) != 0x80)
            return false;
    return true;
}

bool fl_utf8_valid(const char *s, size_t n)
{
    if (n == 0)
        return true; /* s may be NULL for an empty slice */
    const unsigned char *p = (const unsigned char *)s, *end = p + n;
    while (p < end) {
        unsigned c;
        if ((size_t)(end - p) >= 8) {
            uint64_t w;
            memcpy(&w, p, 8);
            if (!(w & UINT64_C(0x8080808080808080))) {
                p += 8;
                continue;
            }
        }
        c = *p;
        if (c < 0x80) {
            p++;
            continue;
        }
        size_t len = seq_len(c);
        if (len == 0 || (size_t)(end - p) < len || !valid_tail(p, len))
            return false;
        p += len;
    }
    return true;
}
