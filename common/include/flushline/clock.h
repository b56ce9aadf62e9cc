/* SPDX-License-Identifier: Apache-2.0 */
/*
 * clock: the one clock of the process shell. Monotonic time for deadlines,
 * timers, intervals and rates (never goes back, unrelated to the date);
 * wall time for what leaves the process or must survive a restart
 * (timestamps in records, token expiry, per-instance id bases).
 *
 * The pure core (core/, schemas/) never reads a clock: callers pass the
 * time in, which is what keeps replay exact.
 *
 * @locality any thread; every call is a clock_gettime(2) (a vDSO call on
 * Linux, no system call).
 */
#ifndef FLUSHLINE_CLOCK_H
#define FLUSHLINE_CLOCK_H

#include <stdint.h>

/* CLOCK_MONOTONIC in nanoseconds, microseconds and milliseconds. */
int64_t fl_clock_mono_ns(void);
int64_t fl_clock_mono_us(void);
int64_t fl_clock_mono_ms(void);

/* CLOCK_REALTIME (Unix time) in microseconds, milliseconds and seconds. */
int64_t fl_clock_wall_us(void);
int64_t fl_clock_wall_ms(void);
int64_t fl_clock_wall_s(void);

#endif
