/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Fuzzes client frame decoding (both directions, msgpack and JSON): peek and
 * decode must agree on the outcome class; an accepted message must encode,
 * and the encoding must decode to the same bytes again. The direct paths
 * (fl_wire_decode / fl_wire_encode on flushes, outcomes, deltas) must agree
 * with the reference tree codec: the same error code, the same decoded
 * message (compared by its reference encodings) and the same bytes.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "flushline/wire.h"
#include "fuzz_wire_common.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    one(FL_WIRE_C2S, FL_WIRE_MSGPACK, (const char *)data, size);
    one(FL_WIRE_S2C, FL_WIRE_MSGPACK, (const char *)data, size);
    one(FL_WIRE_C2S, FL_WIRE_JSON, (const char *)data, size);
    return 0;
}
