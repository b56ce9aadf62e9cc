/* SPDX-License-Identifier: Apache-2.0 */
/*
 * limits: bounds that several layers must agree on, defined once.
 */
#ifndef FLUSHLINE_LIMITS_H
#define FLUSHLINE_LIMITS_H

/* The most partitions a deployment's topics may have: the processor and the
 * gateway keep per-partition arrays of this size, the CLI reads at most this
 * many, and the `partitions` setting is bounded by it. */
#define FL_MAX_PARTITIONS 1024

#endif
