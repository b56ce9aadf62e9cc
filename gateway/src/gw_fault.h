/* SPDX-License-Identifier: Apache-2.0 */
/*
 * gw_fault: allocation-failure injection for the tests of the gateway's
 * failure paths (a failed malloc cannot be provoked from outside).
 *
 * Compiled in only where NDEBUG is not defined, i.e. the test build
 * (scripts/build test, CMAKE_BUILD_TYPE=Debug); release and bench builds
 * define NDEBUG and GW_FAULT(site) is then the constant false. A test sets
 * gw_faults[site] to n: the next n allocations at that site behave as if
 * malloc had returned NULL.
 *
 * @locality any thread (atomic counters).
 */
#ifndef GW_FAULT_H
#define GW_FAULT_H

#include <stdatomic.h>
#include <stdbool.h>

typedef enum gw_fault_site_e {
    GW_FAULT_HELD,   /* gw_docs: holding a flush until its partition is followed */
    GW_FAULT_ASSIGN, /* gw_kafka: the answer to an assignment (consumer thread) */
    GW_FAULT_DECODE, /* gw_kafka: decoding a consumed record (consumer thread) */
    GW_FAULT__COUNT
} gw_fault_site_t;

#ifndef NDEBUG
#define GW_FAULTS_ENABLED 1
extern _Atomic int gw_faults[GW_FAULT__COUNT];
/* True (and one failure used up) when the site must fail now. */
bool gw_fault(gw_fault_site_t site);
#define GW_FAULT(site) gw_fault(site)
#else
#define GW_FAULT(site) false
#endif

#endif
