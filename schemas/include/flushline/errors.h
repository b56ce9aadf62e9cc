/* SPDX-License-Identifier: Apache-2.0 */
/*
 * errors: the one list of error codes that cross the wire (command results,
 * flush rejections, nacks, error messages) and the WebSocket close codes.
 * Numbers and names are part of the contract (schemas/PROTOCOL.md); never
 * renumber, only append.
 */
#ifndef FLUSHLINE_ERRORS_H
#define FLUSHLINE_ERRORS_H

#include <stddef.h>

typedef enum fl_code_e {
    FL_CODE_OK = 0,
    /* command results */
    FL_CODE_PATH_NOT_FOUND = 1,   /* a path (or from) names nothing */
    FL_CODE_TYPE_MISMATCH = 2,    /* the target has the wrong type for the op */
    FL_CODE_TEST_FAILED = 3,      /* "test" compared unequal */
    FL_CODE_TOO_LARGE = 4,        /* state would exceed its size cap, or int overflow */
    FL_CODE_INVALID = 5,          /* malformed command: bad pointer, missing value, ... */
    FL_CODE_FORBIDDEN = 6,        /* e.g. replacing or removing the root */
    FL_CODE_VERSION_MISMATCH = 7, /* if_version did not match (whole flush) */
    FL_CODE_GAP = 8,              /* seq > last + 1 (whole flush) */
    FL_CODE_ABORTED = 9,          /* not applied because another command of an atomic flush failed */
    FL_CODE_KEY_EXISTS = 10,      /* reserved: proposed create key taken and strict */
    FL_CODE_RULE_VIOLATION = 11,  /* a rule of the document's rule set refused it (RULES.md) */
    /* transport / gateway */
    FL_CODE_BAD_FRAME = 20,       /* undecodable frame or record */
    FL_CODE_UNKNOWN_TYPE = 21,    /* unknown message or record type */
    FL_CODE_UNSUPPORTED_VERSION = 22, /* schema version not understood */
    FL_CODE_UNAUTHORIZED = 23,    /* no token, bad signature, bad claims */
    FL_CODE_TOKEN_EXPIRED = 24,
    FL_CODE_DOC_FORBIDDEN = 25,   /* token does not grant this document */
    FL_CODE_RATE_LIMITED = 26,
    FL_CODE_UNAVAILABLE = 27,     /* broker trouble: retry the same seq after retry_after */
    FL_CODE_LIMIT = 28,           /* a per-connection limit (subscriptions, commands per flush) */
    FL_CODE_NOT_SUBSCRIBED = 29,
    FL_CODE_BAD_DOC_ID = 30,      /* doc id empty, > 255 bytes or not UTF-8 */
    FL_CODE_INTERNAL = 31,
    FL_CODE__COUNT
} fl_code_t;

/* Stable snake_case name ("path_not_found"), or "unknown". */
const char *fl_code_name(int code);
/* Code for a name, or -1. */
int fl_code_from_name(const char *name, size_t len);

/* The one writer of the (errstr, errstr_size) pairs every fallible
 * function of the project takes: formats into errstr when it is non-NULL
 * and non-empty, truncating, always NUL-terminated. */
void fl_errstr(char *errstr, size_t size, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* The one lookup behind the *_strerror and *_name functions: tab[i] of a
 * table of n names, or unknown when i is outside it or the entry is NULL.
 * FL_NAME_AT counts the entries of a static array itself. */
const char *fl_name_at(const char *const *tab, size_t n, long i, const char *unknown);
#define FL_NAME_AT(tab, i, unknown)                                                                \
    fl_name_at((tab), sizeof(tab) / sizeof((tab)[0]), (i), (unknown))

/* WebSocket close codes: 4000-4099 do not reconnect, 4100-4199 reconnect
 * with back-off, 4200-4299 reconnect now. */
enum {
    FL_CLOSE_BAD_FRAME = 4000,
    FL_CLOSE_UNAUTHORIZED = 4001,
    FL_CLOSE_FORBIDDEN_ORIGIN = 4002,
    FL_CLOSE_UNSUPPORTED_VERSION = 4003,
    FL_CLOSE_TOKEN_EXPIRED = 4004,  /* get a new token, then reconnect */
    FL_CLOSE_RATE_ABUSE = 4100,
    FL_CLOSE_OVERLOADED = 4101,
    FL_CLOSE_INTERNAL = 4102,
    FL_CLOSE_SLOW_CONSUMER = 4200,  /* resync: reconnect now with have_version */
    FL_CLOSE_GOING_AWAY = 4201,     /* gateway draining: reconnect now (elsewhere) */
};
const char *fl_close_name(int code);

#endif
