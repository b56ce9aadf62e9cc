#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# bench/restore.sh [EVENTS [ROUNDS]]: restore speed of the processor against
# a plain read of the same events partition (`bench/run restore`). The
# program is bench/processor.c in its restore mode; see there.
set -eu
exec sh "$(dirname "$0")/processor.sh" restore "$@"
