/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Tiny test harness: typed asserts that print both sides, a test runner,
 * and helpers shared by unit, kafka and e2e tests. A failed assert ends the
 * current test case (longjmp-free: each case is a function that returns).
 */
#ifndef FL_TEST_H
#define FL_TEST_H

#include <inttypes.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

extern int fl_test_failures;
extern const char *fl_test_current;

void fl_test_fail(const char *file, int line, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#define FL_FAIL_(...)                                                                              \
    do {                                                                                           \
        fl_test_fail(__FILE__, __LINE__, __VA_ARGS__);                                             \
        return;                                                                                    \
    } while (0)

#define ASSERT_TRUE(c)                                                                             \
    do {                                                                                           \
        if (!(c))                                                                                  \
            FL_FAIL_("expected true: %s", #c);                                                     \
    } while (0)

#define ASSERT_INT_OP_(a, op, b)                                                                   \
    do {                                                                                           \
        long long fl_a_ = (long long)(a), fl_b_ = (long long)(b);                                  \
        if (!(fl_a_ op fl_b_))                                                                     \
            FL_FAIL_("%s %s %s: %lld vs %lld", #a, #op, #b, fl_a_, fl_b_);                         \
    } while (0)
#define ASSERT_EQ(a, b) ASSERT_INT_OP_(a, ==, b)
#define ASSERT_NE(a, b) ASSERT_INT_OP_(a, !=, b)
#define ASSERT_LT(a, b) ASSERT_INT_OP_(a, <, b)
#define ASSERT_LE(a, b) ASSERT_INT_OP_(a, <=, b)
#define ASSERT_GT(a, b) ASSERT_INT_OP_(a, >, b)
#define ASSERT_GE(a, b) ASSERT_INT_OP_(a, >=, b)

#define ASSERT_STR_EQ(a, b)                                                                        \
    do {                                                                                           \
        const char *fl_a_ = (a), *fl_b_ = (b);                                                     \
        if (!fl_a_ || !fl_b_ || strcmp(fl_a_, fl_b_) != 0)                                         \
            FL_FAIL_("%s == %s: \"%s\" vs \"%s\"", #a, #b, fl_a_ ? fl_a_ : "(null)",               \
                     fl_b_ ? fl_b_ : "(null)");                                                    \
    } while (0)

#define ASSERT_MEM_EQ(a, alen, b, blen)                                                            \
    do {                                                                                           \
        size_t fl_al_ = (alen), fl_bl_ = (blen);                                                   \
        if (fl_al_ != fl_bl_ || memcmp((a), (b), fl_al_) != 0)                                     \
            FL_FAIL_("%s == %s: %zu bytes vs %zu bytes, first difference at %zu", #a, #b,          \
                     fl_al_, fl_bl_, fl_test_memdiff((a), fl_al_, (b), fl_bl_));                   \
    } while (0)

size_t fl_test_memdiff(const void *a, size_t alen, const void *b, size_t blen);

typedef void (*fl_test_fn)(void);
/* Runs one case; prints "ok NAME" or "FAIL NAME". */
void fl_test_run(const char *name, fl_test_fn fn);
#define RUN(fn) fl_test_run(#fn, fn)
/* Prints the summary and returns the process exit code. */
int fl_test_done(void);

/* FL_SOURCE_DIR (set by ctest) joined with rel, in a static buffer. */
const char *fl_test_source_path(const char *rel);
/* Reads a whole file; caller frees. NULL on error. */
char *fl_test_read_file(const char *path, size_t *len);
/* FLUSHLINE_BOOTSTRAP or NULL; kafka tests fail (never skip) without it. */
const char *fl_test_bootstrap(void);
/* Monotonic milliseconds. */
int64_t fl_test_now_ms(void);
/* A name unique to this process and call, e.g. for topic prefixes. */
const char *fl_test_unique(const char *stem, char *buf, size_t size);

#endif
