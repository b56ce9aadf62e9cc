/* SPDX-License-Identifier: Apache-2.0 */
/* Shared helpers for the test programs; see fl_test.h. */
#include "fl_test.h"

#include <stdarg.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

int fl_test_failures;
const char *fl_test_current = "?";
static int cases, case_failed;

void fl_test_fail(const char *file, int line, const char *fmt, ...)
{
    va_list ap;
    fprintf(stderr, "%s:%d: [%s] ", file, line, fl_test_current);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    case_failed = 1;
}

size_t fl_test_memdiff(const void *a, size_t alen, const void *b, size_t blen)
{
    const unsigned char *x = a, *y = b;
    size_t n = alen < blen ? alen : blen, i;
    for (i = 0; i < n; i++)
        if (x[i] != y[i])
            return i;
    return n;
}

void fl_test_run(const char *name, fl_test_fn fn)
{
    fl_test_current = name;
    case_failed = 0;
    cases++;
    fn();
    if (case_failed)
        fl_test_failures++;
    printf("%s %s\n", case_failed ? "FAIL" : "ok", name);
    fflush(stdout);
}

int fl_test_done(void)
{
    printf("%d passed, %d failed\n", cases - fl_test_failures, fl_test_failures);
    return fl_test_failures ? 1 : 0;
}

const char *fl_test_source_path(const char *rel)
{
    static char buf[4096];
    const char *root = getenv("FL_SOURCE_DIR");
    snprintf(buf, sizeof buf, "%s/%s", root ? root : ".", rel);
    return buf;
}

char *fl_test_read_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    char *buf = NULL;
    long n;
    if (!f)
        return NULL;
    if (fseek(f, 0, SEEK_END) != 0 || (n = ftell(f)) < 0 || fseek(f, 0, SEEK_SET) != 0)
        goto fail;
    buf = malloc((size_t)n + 1);
    if (!buf || fread(buf, 1, (size_t)n, f) != (size_t)n)
        goto fail;
    buf[n] = '\0';
    if (len)
        *len = (size_t)n;
    fclose(f);
    return buf;
fail:
    free(buf);
    fclose(f);
    return NULL;
}

const char *fl_test_bootstrap(void)
{
    const char *b = getenv("FLUSHLINE_BOOTSTRAP");
    if (!b || !*b) {
        fprintf(stderr, "FLUSHLINE_BOOTSTRAP is not set: run this test through scripts/test "
                        "or after `export $(scripts/kafka env)`\n");
        return NULL;
    }
    return b;
}

int64_t fl_test_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

const char *fl_test_unique(const char *stem, char *buf, size_t size)
{
    static unsigned counter;
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    snprintf(buf, size, "%s-%ld-%ld-%u", stem, (long)getpid(), (long)(ts.tv_nsec / 1000),
             counter++);
    return buf;
}
