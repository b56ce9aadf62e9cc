#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# bench/gateway-memory.sh [N]: builds bench/gateway-memory.c and the gateway
# it measures (Release, in build-bench unless FL_BENCH_BUILD says otherwise;
# configured on first use), finds the local broker and runs the benchmark.
# `bench/run gateway-memory` lands here. Build output goes to stderr; the
# last stdout line is the headline.
set -eu
root=$(cd "$(dirname "$0")/.." && pwd)
build=${FL_BENCH_BUILD:-$root/build-bench}
if [ ! -f "$build/build.ninja" ]; then
    CC=${CC:-clang} cmake -S "$root" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release \
        -DFL_FUZZ=OFF >&2
fi
# The daemon is built here too, so that a stale binary is never measured.
cmake --build "$build" --target bench_gateway-memory flushline-gateway flushline-processor >&2
if [ -z "${FLUSHLINE_BOOTSTRAP:-}" ]; then
    if env=$("$root/scripts/kafka" env 2>/dev/null); then
        export "$env"
    else
        echo "bench/gateway-memory: no broker; run scripts/kafka start (or set FLUSHLINE_BOOTSTRAP)" >&2
        exit 2
    fi
fi
FL_GATEWAY_BIN=$build/bin/flushline-gateway FL_PROCESSOR_BIN=$build/bin/flushline-processor exec "$build/bench/gateway-memory" "$@"
