/* SPDX-License-Identifier: Apache-2.0 */
/*
 * errors: names of the wire error codes, the close codes and the command
 * ops. The names are the contract (schemas/PROTOCOL.md), like the numbers.
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "flushline/errors.h"
#include "flushline/flush.h"

static const char *const code_names[FL_CODE__COUNT] = {
    [FL_CODE_OK] = "ok",
    [FL_CODE_PATH_NOT_FOUND] = "path_not_found",
    [FL_CODE_TYPE_MISMATCH] = "type_mismatch",
    [FL_CODE_TEST_FAILED] = "test_failed",
    [FL_CODE_TOO_LARGE] = "too_large",
    [FL_CODE_INVALID] = "invalid",
    [FL_CODE_FORBIDDEN] = "forbidden",
    [FL_CODE_VERSION_MISMATCH] = "version_mismatch",
    [FL_CODE_GAP] = "gap",
    [FL_CODE_ABORTED] = "aborted",
    [FL_CODE_KEY_EXISTS] = "key_exists",
    [FL_CODE_RULE_VIOLATION] = "rule_violation",
    [FL_CODE_BAD_FRAME] = "bad_frame",
    [FL_CODE_UNKNOWN_TYPE] = "unknown_type",
    [FL_CODE_UNSUPPORTED_VERSION] = "unsupported_version",
    [FL_CODE_UNAUTHORIZED] = "unauthorized",
    [FL_CODE_TOKEN_EXPIRED] = "token_expired",
    [FL_CODE_DOC_FORBIDDEN] = "doc_forbidden",
    [FL_CODE_RATE_LIMITED] = "rate_limited",
    [FL_CODE_UNAVAILABLE] = "unavailable",
    [FL_CODE_LIMIT] = "limit",
    [FL_CODE_NOT_SUBSCRIBED] = "not_subscribed",
    [FL_CODE_BAD_DOC_ID] = "bad_doc_id",
    [FL_CODE_INTERNAL] = "internal",
};

const char *fl_code_name(int code)
{
    if (code < 0 || code >= FL_CODE__COUNT || !code_names[code])
        return "unknown";
    return code_names[code];
}

int fl_code_from_name(const char *name, size_t len)
{
    int i;
    for (i = 0; i < FL_CODE__COUNT; i++)
        if (code_names[i] && strlen(code_names[i]) == len && memcmp(code_names[i], name, len) == 0)
            return i;
    return -1;
}

const char *fl_close_name(int code)
{
    switch (code) {
    case FL_CLOSE_BAD_FRAME: return "bad_frame";
    case FL_CLOSE_UNAUTHORIZED: return "unauthorized";
    case FL_CLOSE_FORBIDDEN_ORIGIN: return "forbidden_origin";
    case FL_CLOSE_UNSUPPORTED_VERSION: return "unsupported_version";
    case FL_CLOSE_TOKEN_EXPIRED: return "token_expired";
    case FL_CLOSE_RATE_ABUSE: return "rate_abuse";
    case FL_CLOSE_OVERLOADED: return "overloaded";
    case FL_CLOSE_INTERNAL: return "internal";
    case FL_CLOSE_SLOW_CONSUMER: return "slow_consumer";
    case FL_CLOSE_GOING_AWAY: return "going_away";
    default: return "unknown";
    }
}

static const char *const op_names[] = {
    NULL, "add", "remove", "replace", "move", "copy", "test", "incr", "merge", "create",
};

const char *fl_op_name(int op)
{
    if (op < FL_OP_ADD || op > FL_OP_CREATE)
        return NULL;
    return op_names[op];
}

int fl_op_from_name(const char *name, size_t len)
{
    int i;
    for (i = FL_OP_ADD; i <= FL_OP_CREATE; i++)
        if (strlen(op_names[i]) == len && memcmp(op_names[i], name, len) == 0)
            return i;
    return 0;
}

const char *fl_name_at(const char *const *tab, size_t n, long i, const char *unknown)
{
    if (i < 0 || (size_t)i >= n || !tab[i])
        return unknown;
    return tab[i];
}

void fl_errstr(char *errstr, size_t size, const char *fmt, ...)
{
    va_list ap;
    if (!errstr || size == 0)
        return;
    va_start(ap, fmt);
    vsnprintf(errstr, size, fmt, ap);
    va_end(ap);
}
