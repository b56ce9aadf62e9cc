/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Unit tests for the one clock (common/clock.h): the units agree with each
 * other, monotonic time never goes back and measures a known sleep, wall
 * time is the Unix time libc reports.
 */
#include <time.h>

#include "fl_test.h"
#include "flushline/clock.h"

static void test_units_agree(void)
{
    /* Read coarse to fine and back: each finer reading, scaled down, lies
     * between the coarser readings around it. */
    int64_t ms0 = fl_clock_mono_ms(), us = fl_clock_mono_us(), ns = fl_clock_mono_ns();
    int64_t ms1 = fl_clock_mono_ms();
    ASSERT_LE(ms0, us / 1000);
    ASSERT_LE(us / 1000, ns / 1000000);
    ASSERT_LE(ns / 1000000, ms1);

    int64_t s0 = fl_clock_wall_s(), wms = fl_clock_wall_ms(), wus = fl_clock_wall_us();
    int64_t s1 = fl_clock_wall_s();
    ASSERT_LE(s0, wms / 1000);
    ASSERT_LE(wms / 1000, wus / 1000000);
    ASSERT_LE(wus / 1000000, s1);
}

static void test_monotonic(void)
{
    int64_t prev = fl_clock_mono_ns();
    for (int i = 0; i < 100000; i++) {
        int64_t now = fl_clock_mono_ns();
        ASSERT_GE(now, prev);
        prev = now;
    }
}

static void test_measures_a_sleep(void)
{
    /* The sleep is what is measured, not a wait for something else. */
    struct timespec req = {0, 30 * 1000000};
    int64_t t0 = fl_clock_mono_us();
    while (nanosleep(&req, &req) != 0)
        ;
    ASSERT_GE(fl_clock_mono_us() - t0, 30000);
}

static void test_wall_is_unix_time(void)
{
    struct timespec ts;
    int64_t before, after;
    clock_gettime(CLOCK_REALTIME, &ts);
    before = (int64_t)ts.tv_sec;
    int64_t s = fl_clock_wall_s();
    clock_gettime(CLOCK_REALTIME, &ts);
    after = (int64_t)ts.tv_sec;
    ASSERT_LE(before, s);
    ASSERT_LE(s, after);
    ASSERT_GT(s, 1700000000); /* after November 2023: not some other epoch */
}

int main(void)
{
    RUN(test_units_agree);
    RUN(test_monotonic);
    RUN(test_measures_a_sleep);
    RUN(test_wall_is_unix_time);
    return fl_test_done();
}
