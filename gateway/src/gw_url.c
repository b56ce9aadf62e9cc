/* SPDX-License-Identifier: Apache-2.0 */
/*
 * gw_url: document ids in /v1/docs URLs (see gw_url.h).
 *
 * @locality any thread (pure functions).
 */
#include <stdio.h>
#include <string.h>

#include "flushline/errors.h"
#include "flushline/flush.h"
#include "flushline/value.h"
#include "gw_url.h"

/* ---- document ids in URLs ---------------------------------------------------
 * The id is everything after "/v1/docs/" (for POST, before the one final
 * "/flush"), taken from the request line as it came. Bytes outside
 * RFC 3986 pchar (unreserved, sub-delims, ':' and '@') and '/' must be
 * percent-encoded; "%XX" (either case) is one byte; '/' and "%2F" are both
 * the byte '/'. The decoded id must be 1-255 bytes of UTF-8 without
 * control bytes (NUL included) and without an empty, "." or ".." segment
 * (so a trailing slash or "//" is refused): such a request is answered
 * 400 bad_doc_id, never served as another document. */

static bool pchar_literal(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           (c && strchr("-._~!$&'()*+,;=:@/", c) != NULL);
}

static int hexval(unsigned char c)
{
    return c >= '0' && c <= '9' ? c - '0'
         : c >= 'a' && c <= 'f' ? c - 'a' + 10
         : c >= 'A' && c <= 'F' ? c - 'A' + 10
         : -1;
}

int gw_url_doc_id(const char *path, size_t len, char *out, size_t *outlen, const char **why)
{
    size_t n = 0, seg = 0;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)path[i];
        if (c == '%') {
            int hi = i + 1 < len ? hexval((unsigned char)path[i + 1]) : -1;
            int lo = i + 2 < len ? hexval((unsigned char)path[i + 2]) : -1;
            if (hi < 0 || lo < 0) {
                *why = "a '%' must be followed by two hex digits";
                return -1;
            }
            c = (unsigned char)(hi << 4 | lo);
            i += 2;
        } else if (!pchar_literal(c)) {
            *why = "a byte outside A-Z a-z 0-9 -._~!$&'()*+,;=:@/ must be percent-encoded";
            return -1;
        }
        if (n == FL_DOC_ID_MAX) {
            *why = "a document id is at most 255 bytes (decoded)";
            return -1;
        }
        if (c < 0x20 || c == 0x7f) {
            *why = "a document id holds no control byte or NUL";
            return -1;
        }
        out[n++] = (char)c;
    }
    if (n == 0) {
        *why = "the document id is empty";
        return -1;
    }
    /* segments: none empty (no leading, trailing or double '/'), none "." or ".." */
    for (size_t i = 0; i <= n; i++) {
        if (i < n && out[i] != '/')
            continue;
        size_t sl = i - seg;
        if (sl == 0) {
            *why = "a document id has no empty segment (no leading, trailing or double '/')";
            return -1;
        }
        if ((sl == 1 && out[seg] == '.') || (sl == 2 && out[seg] == '.' && out[seg + 1] == '.')) {
            *why = "a document id has no \".\" or \"..\" segment";
            return -1;
        }
        seg = i + 1;
    }
    if (!fl_utf8_valid(out, n)) {
        *why = "a document id is UTF-8 (after percent-decoding)";
        return -1;
    }
    *outlen = n;
    return 0;
}

/* Checks a /v1/docs/... request (path/plen without the query): 0 with the
 * id in doc (FL_DOC_ID_MAX bytes), or the HTTP status of its refusal with
 * its code and reason. */
int gw_url_docs_target(const char *method, const char *path, size_t plen, bool has_query,
                       char *doc, size_t *doclen, uint16_t *code, char *reason, size_t rsize)
{
    const char *p = path + 9, *why = NULL;
    size_t n = plen - 9;
    bool post = strcmp(method, "POST") == 0;
    *code = FL_CODE_BAD_DOC_ID;
    if (!post && strcmp(method, "GET") != 0) {
        *code = FL_CODE_BAD_FRAME;
        snprintf(reason, rsize, "method not allowed: GET /v1/docs/{id}, POST /v1/docs/{id}/flush");
        return 405;
    }
    if (has_query && post) { /* a GET's are the history parameters (gw_history.h) */
        snprintf(reason, rsize, "no query string here: percent-encode '?' in a document id");
        return 400;
    }
    if (post) {
        if (n < 6 || memcmp(p + n - 6, "/flush", 6) != 0) {
            *code = FL_CODE_BAD_FRAME;
            snprintf(reason, rsize, "no such route: POST goes to /v1/docs/{id}/flush");
            return 404;
        }
        n -= 6;
    }
    if (gw_url_doc_id(p, n, doc, doclen, &why) != 0) {
        snprintf(reason, rsize, "bad document id in the URL: %s", why);
        return 400;
    }
    return 0;
}

