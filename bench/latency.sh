#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# bench/latency.sh [OPTIONS]: `bench/run latency`. End-to-end latency of
# Flushline (client flush -> Kafka -> processor -> Kafka -> gateway -> every
# subscriber) against a bare two-hop Kafka pipeline on the same broker
# (bench/latency.c), open loop, latency from the scheduled send time.
#
# Per round: the two-hop pipeline, then each Flushline variant: a fresh
# topic set, a Release processor and gateway (the variant's gateway flags
# last), `flushline bench --contention one --rate R --subscribers S --json`
# (one process: writers and subscribers on one client loop), then both
# stopped and the topics deleted. Variants: `default` (the gateway's own
# settings), plus `committed` (--delivery committed) when the gateway has a
# `delivery` setting; --variant replaces the list.
#
# Options:
#   --duration S      seconds of sending per run (default 30)
#   --rate R          flushes (records) per second (default 1000)
#   --subscribers N   subscribers of the one document (default 100)
#   --writers N       writer connections sharing the rate (default 20)
#   --rounds N        rounds, interleaved; medians reported (default 1)
#   --variant NAME=FLAGS   a Flushline run with these extra gateway flags
#                     (repeatable; the first is the headline)
#   --gateway-args FLAGS   extra flags for every gateway started
# Environment: FLUSHLINE_BOOTSTRAP (else scripts/kafka's broker, else a
# throwaway broker started and stopped here), FL_BENCH_BUILD,
# FL_BENCH_PROCESSOR_ARGS (extra processor flags), FL_BENCH_RESULTS (a file
# that gets every run's JSON line). Runs bench/deps first (jq, time).
# Progress and build output go to stderr; the last stdout line is the
# headline. Exit 1 when a run did not deliver every flush, delta or record.
[ -n "${BASH_VERSION:-}" ] || exec bash "$0" "$@"
set -euo pipefail
fl_name=latency
# shellcheck source=peers/common.sh
source "$(dirname "$0")/peers/common.sh"

duration=30 rate=1000 subs=100 writers=20 rounds=1 gwargs=""
variants=()
while (($#)); do
  [[ $# -ge 2 ]] || fl_die "$1 needs a value (see the head of bench/latency.sh)"
  case $1 in
    --duration) duration=$2 ;;
    --rate) rate=$2 ;;
    --subscribers) subs=$2 ;;
    --writers) writers=$2 ;;
    --rounds) rounds=$2 ;;
    --variant) variants+=("$2") ;;
    --gateway-args) gwargs=$2 ;;
    *) fl_die "unknown option $1 (see the head of bench/latency.sh)" ;;
  esac
  shift 2
done
"$fl_root/bench/deps" --quiet >&2

fl_build_targets bench_latency flushline flushline-gateway flushline-processor
if ((${#variants[@]} == 0)); then
  variants=("default=")
  if "$fl_build/bin/flushline-gateway" --help 2>&1 | grep -q -- '--delivery '; then
    variants+=("committed=--delivery committed")
  fi
fi
fl_init
fl_broker
fl_make_key

# results: one JSON line per run in $fl_tmp/results.jsonl, tagged
results=$fl_tmp/results.jsonl
: >"$results"

# (GNU time -o writes "Command exited with non-zero status N" before the
# figures when the command failed: the figures are the last line.)
run_twohop() {
  local out
  fl_say "round $1: two-hop Kafka pipeline, $rate records/s for $duration s"
  if ! out=$(/usr/bin/time -f '%U %S' -o "$fl_tmp/time" "$fl_build/bench/latency" twohop \
    --rate "$rate" --duration "$duration" --partitions 4 2>>"$fl_tmp/twohop.log"); then
    fl_die "the two-hop pipeline failed (log in $fl_tmp/twohop.log): $out"
  fi
  jq -c --arg round "$1" --argjson cpu "$(tail -n 1 "$fl_tmp/time" | awk '{ print $1 + $2 }')" \
    '{run: "twohop", round: ($round | tonumber), cpu_s: {pipeline: $cpu}} + .' <<<"$out" >>"$results"
}

run_flushline() {
  local round=$1 name=${2%%=*} flags=${2#*=} out rc=0
  # Word splitting of the flag lists is intended: "--delivery committed".
  # shellcheck disable=SC2086
  fl_start_flushline "$name$round" $gwargs $flags
  fl_say "round $round: Flushline '$name' (gateway flags: ${gwargs:+$gwargs }${flags:-none}), $rate flushes/s for $duration s, $subs subscribers"
  local pr0 gw0 pr1 gw1 sub_pid sub_out=$fl_tmp/$name$round-subscribers.out i n
  # The subscribers: their own process (bench/latency.c, mode subscribe),
  # connected and holding the document before the first flush.
  n=$(awk -v r="$rate" -v d="$duration" 'BEGIN { printf "%.0f", r * d }')
  "$fl_build/bench/latency" subscribe \
    "$fl_gw_port" "$subs" "bench/lat-$name-$round-0" "$fl_tmp/key" "$n" "$((duration * 3 + 120))" \
    >"$sub_out" 2>>"$fl_tmp/$name$round-subscribers.log" &
  sub_pid=$!
  fl_pids+=("$sub_pid")
  for ((i = 0; i < 1200; i++)); do
    grep -q '^ready' "$sub_out" && break
    kill -0 "$sub_pid" 2>/dev/null || fl_die "the subscribers exited (log in $fl_tmp)"
    sleep 0.1
  done
  grep -q '^ready' "$sub_out" || fl_die "the $subs subscribers did not get the document in 120 s"
  pr0=$(fl_cpu "$fl_pr_pid") gw0=$(fl_cpu "$fl_gw_pid")
  out=$(/usr/bin/time -f '%U %S' -o "$fl_tmp/time" \
    "$fl_build/bin/flushline" bench --gateway "127.0.0.1:$fl_gw_port" --key "$fl_tmp/key" \
    --doc-prefix "bench/lat-$name-$round-" --clients "$writers" --contention one \
    --rate "$rate" --duration "$duration" --json --quiet \
    2>>"$fl_tmp/$name$round-bench.log") || rc=$?
  # The subscribers end once every delta arrived (or at their deadline).
  wait "$sub_pid" || fl_say "warning: not every subscriber got every delta (log in $fl_tmp)"
  fl_forget "$sub_pid"
  pr1=$(fl_cpu "$fl_pr_pid") gw1=$(fl_cpu "$fl_gw_pid")
  fl_stop_flushline
  fl_drop_topics
  [[ -n "$out" ]] || fl_die "flushline bench printed nothing (log in $fl_tmp/$name$round-bench.log)"
  ((rc == 0)) || fl_say "warning: flushline bench exited $rc (not every flush acknowledged)"
  local subs_json
  subs_json=$(tail -n 1 "$sub_out")
  jq -e . >/dev/null 2>&1 <<<"$subs_json" || fl_die "the subscribers printed no result (log in $fl_tmp)"
  jq -c --arg round "$round" --arg name "$name" --arg flags "$flags" \
    --argjson pr "$(awk -v a="$pr0" -v b="$pr1" 'BEGIN { print b - a }')" \
    --argjson gw "$(awk -v a="$gw0" -v b="$gw1" 'BEGIN { print b - a }')" \
    --argjson bench "$(tail -n 1 "$fl_tmp/time" | awk '{ print $1 + $2 }')" \
    --argjson subs "$subs_json" \
    '{run: $name, round: ($round | tonumber), gateway_flags: $flags,
      cpu_s: {processor: $pr, gateway: $gw, writers: $bench, subscribers: $subs.cpu_s},
      subscribers: $subs} + . | .latency_ms.delta = $subs.latency_ms
      | .deltas = {expected: $subs.expected, received: $subs.received}' <<<"$out" >>"$results"
}

load_before=$(fl_load)
for ((r = 1; r <= rounds; r++)); do
  run_twohop "$r"
  for v in "${variants[@]}"; do run_flushline "$r" "$v"; done
done

# ---- report ----------------------------------------------------------------
# median of a jq path over the runs of one name
med() { jq -r --arg run "$1" "select(.run == \$run) | $2" "$results" | fl_median; }
fmt() { printf '%.2f' "$1"; }

echo "latency: $rate flushes/s for $duration s, $subs subscribers of one document, $writers writers; $rounds round(s), medians; ms from the scheduled send time"
echo "machine: $load_before before, $(fl_load) after"
printf '%-34s %9s %9s %9s %9s %9s %s\n' run p50 p90 p99 p99.9 max samples
tp50=$(med twohop .latency_ms.p50) tp99=$(med twohop .latency_ms.p99)
printf '%-34s %9.2f %9.2f %9.2f %9.2f %9.2f %s\n' "two-hop Kafka (1 consumer)" \
  "$tp50" "$(med twohop .latency_ms.p90)" "$tp99" "$(med twohop .latency_ms.p999)" \
  "$(med twohop .latency_ms.max)" "$(med twohop .latency_ms.count) records, $(med twohop .received) of $(med twohop .sent) arrived, $(med twohop .cpu_s.pipeline) CPU s"
echo "  two-hop producer late to send (included above): p50 $(fmt "$(med twohop .send_lag_ms.p50)") ms, p99 $(fmt "$(med twohop .send_lag_ms.p99)") ms, max $(fmt "$(med twohop .send_lag_ms.max)") ms"
for v in "${variants[@]}"; do
  n=${v%%=*}
  for what in delta outcome; do
    printf '%-34s %9.2f %9.2f %9.2f %9.2f %9.2f %s\n' "Flushline $n flush->$what" \
      "$(med "$n" ".latency_ms.$what.p50")" "$(med "$n" ".latency_ms.$what.p90")" \
      "$(med "$n" ".latency_ms.$what.p99")" "$(med "$n" ".latency_ms.$what.p999")" \
      "$(med "$n" ".latency_ms.$what.max")" "$(med "$n" ".latency_ms.$what.count")"
  done
  echo "  Flushline $n writers late to send (included above): p50 $(fmt "$(med "$n" .latency_ms.send_lag.p50)") ms, p99 $(fmt "$(med "$n" .latency_ms.send_lag.p99)") ms, max $(fmt "$(med "$n" .latency_ms.send_lag.max)") ms"
  echo "  Flushline $n CPU s during the run: processor $(med "$n" .cpu_s.processor), gateway $(med "$n" .cpu_s.gateway), writers $(med "$n" .cpu_s.writers), $subs subscribers $(med "$n" .cpu_s.subscribers)"
  echo "  Flushline $n: $(med "$n" .acked) of $(med "$n" .sent) flushes acknowledged, $(med "$n" .deltas.received) of $(med "$n" .deltas.expected) deltas, $(med "$n" .nacks_total) nacks, $(med "$n" .reconnects) reconnects, $(med "$n" .throughput.flushes_per_s | xargs printf '%.0f') flushes/s"
done
if [[ -n "${FL_BENCH_RESULTS:-}" ]]; then cp "$results" "$FL_BENCH_RESULTS"; fi
fl_failed=0

head=${variants[0]%%=*}
fp99=$(med "$head" .latency_ms.delta.p99)
line="latency: Flushline p99 $(fmt "$fp99") ms flush->delta at $rate flushes/s to $subs subscribers (two-hop Kafka p99 $(fmt "$tp99") ms, ratio $(awk -v a="$fp99" -v b="$tp99" 'BEGIN { printf "%.2f", (b > 0 ? a / b : 0) }'))"
for v in "${variants[@]:1}"; do
  n=${v%%=*}
  p=$(med "$n" .latency_ms.delta.p99)
  line+="; $n p99 $(fmt "$p") ms (ratio $(awk -v a="$p" -v b="$tp99" 'BEGIN { printf "%.2f", (b > 0 ? a / b : 0) }'))"
done
echo "$line"
# Exit 1 when a run lost anything (a flush not acknowledged, a delta or a
# record that did not arrive): its latencies would not cover every sample.
jq -e -s 'all(.[]; if .run == "twohop" then .received == .sent
  else .acked == .sent and .deltas.received == .deltas.expected end)' "$results" >/dev/null ||
  { fl_say "some run did not deliver everything (see above)"; exit 1; }
