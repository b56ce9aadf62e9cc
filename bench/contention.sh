#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# bench/contention.sh [OPTIONS]: `bench/run contention`. W writers on one
# document, closed loop (each waits for its write to be confirmed before the
# next), in Flushline and side by side in the same run in two peers:
#
# - Flushline: a Release processor and gateway on a throwaway topic set;
#   `flushline bench --contention one --rate 0` with --window 1 and
#   --window N (up to N flushes in flight per writer); op mixes `incr`
#   (add /t, incr /c0) and `replace-append` (replace /t, add /list/-); and
#   both again with every writer also subscribed to the document
#   (--writers-subscribe). The gateway's per-connection rate limit is
#   lifted (--rate/--burst 1000000): it protects a gateway, it is not what
#   is measured.
# - PostgreSQL: SPEC's compare-and-set recipe (bench/peers/pgcas.c: W libpq
#   connections, SELECT, apply in the client, UPDATE ... WHERE command_count
#   = n, retry) on a private cluster (initdb in the scratch folder, Debian's
#   server defaults, 127.0.0.1 on a free port, run as the postgres user when
#   this runs as root), synchronous_commit on and off.
# - ShareDB 7: in-memory backend, json0 ops over WebSocket
#   (bench/peers/sharedb-server.js), W clients in another Node process
#   (bench/peers/sharedb-clients.js), each subscribed and waiting for its
#   op's ack.
#
# Every run checks at the end that the counter (incr) or the list's length
# (replace-append) grew by exactly the confirmed writes: no lost update.
#
# Options:
#   --duration S      seconds of writing per run (default 10)
#   --writers N       writers (default 100)
#   --window N        Flushline's variant with N in flight per writer (default 8)
#   --rounds N        rounds, interleaved; medians reported (default 1)
#   --systems LIST    comma-separated: flushline,postgresql,sharedb (default all)
#   --gateway-args FLAGS   extra flags for the gateway
# Environment: FLUSHLINE_BOOTSTRAP (else scripts/kafka's broker, else a
# throwaway broker started and stopped here), FL_BENCH_BUILD,
# FL_BENCH_PROCESSOR_ARGS, FL_BENCH_RESULTS (a file that gets every run's
# JSON line). Runs bench/deps first. Progress and build output go to stderr;
# the last stdout line is the headline, naming each ratio.
[ -n "${BASH_VERSION:-}" ] || exec bash "$0" "$@"
set -euo pipefail
fl_name=contention
# shellcheck source=peers/common.sh
source "$(dirname "$0")/peers/common.sh"

duration=10 writers=100 window=8 rounds=1 systems=flushline,postgresql,sharedb gwargs=""
while (($#)); do
  [[ $# -ge 2 ]] || fl_die "$1 needs a value (see the head of bench/contention.sh)"
  case $1 in
    --duration) duration=$2 ;;
    --writers) writers=$2 ;;
    --window) window=$2 ;;
    --rounds) rounds=$2 ;;
    --systems) systems=$2 ;;
    --gateway-args) gwargs=$2 ;;
    *) fl_die "unknown option $1 (see the head of bench/contention.sh)" ;;
  esac
  shift 2
done
has() { [[ ",$systems," == *",$1,"* ]]; }

"$fl_root/bench/deps" --quiet >&2
# shellcheck source=../scripts/lib/node.sh
source "$fl_root/scripts/lib/node.sh"
fl_node_use
fl_build_targets bench_latency bench_pgcas flushline flushline-gateway flushline-processor
fl_init
results=$fl_tmp/results.jsonl
: >"$results"
lost=0 # runs whose final check failed

# ---- Flushline --------------------------------------------------------------
flushline_cell() { # ROUND NAME OPS WINDOW SUBSCRIBED(0|1)
  local round=$1 name=$2 ops=$3 win=$4 sub=$5 prefix doc out rc=0 body state counted
  prefix="bench/cont-$name-$round-"
  doc="${prefix}0"
  # /c0, /t and /list exist before the writers start (replace needs /t).
  body=$(curl -fsS -X POST -H "Authorization: Bearer $fl_admin_token" \
    --data "{\"client_id\":\"$(od -An -tx1 -N16 /dev/urandom | tr -d ' \n')\",\"seq\":1,\"base_version\":0,\"commands\":[{\"op\":\"add\",\"path\":\"/c0\",\"value\":0},{\"op\":\"add\",\"path\":\"/t\",\"value\":0},{\"op\":\"add\",\"path\":\"/list\",\"value\":[]}]}" \
    "http://127.0.0.1:$fl_gw_port/v1/docs/$doc/flush") || fl_die "creating $doc failed"
  [[ $(jq -r .version_after <<<"$body") == 3 ]] || fl_die "creating $doc: $body"
  fl_say "round $round: Flushline $name: $writers writers, window $win, $ops$( ((sub)) && echo ", subscribed"), $duration s"
  local args=(--gateway "127.0.0.1:$fl_gw_port" --key "$fl_tmp/key" --doc-prefix "$prefix"
    --clients "$writers" --contention one --rate 0 --window "$win" --duration "$duration"
    --ops "$ops" --connect-timeout 120 --json --quiet)
  [[ $ops == incr ]] && args+=(--commands 2) # add /t, incr /c0
  ((sub)) && args+=(--writers-subscribe)
  out=$("$fl_build/bin/flushline" bench "${args[@]}" 2>>"$fl_tmp/flushline-bench.log") || rc=$?
  [[ -n "$out" ]] || fl_die "flushline bench printed nothing (log in $fl_tmp/flushline-bench.log)"
  ((rc == 0)) || fl_say "warning: flushline bench exited $rc (not every flush acknowledged)"
  state=$(curl -fsS -H "Authorization: Bearer $fl_admin_token" \
    "http://127.0.0.1:$fl_gw_port/v1/docs/$doc") || fl_die "reading $doc failed"
  if [[ $ops == incr ]]; then counted=$(jq .state.c0 <<<"$state"); else
    counted=$(jq '.state.list | length' <<<"$state"); fi
  jq -c --arg round "$round" --arg name "$name" --argjson counted "$counted" \
    --argjson version "$(jq .version <<<"$state")" --argjson win "$win" \
    '{run: ("flushline-" + $name), round: ($round | tonumber), window: $win,
      ops_per_s: .throughput.flushes_per_s, confirmed: .applied,
      p50: .latency_ms.outcome.p50, p99: .latency_ms.outcome.p99,
      retries: (.nacks_total + .resent), retries_what: "nacks + resent",
      final: {version: $version, counted: $counted,
              ok: ($counted == .applied and .acked == .sent)},
      bench: .}' <<<"$out" >>"$results"
}

# ---- PostgreSQL ---------------------------------------------------------------
pg_as=()
pg_start() {
  pg_bin=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)
  [[ -x "$pg_bin/initdb" ]] || fl_die "no PostgreSQL server: run bench/deps"
  pg_dir=$fl_tmp/pg
  mkdir -p "$pg_dir"
  if [[ $(id -u) -eq 0 ]]; then
    chown postgres: "$pg_dir"
    pg_as=(runuser -u postgres --)
  fi
  "${pg_as[@]}" "$pg_bin/initdb" -D "$pg_dir/data" -U bench --auth=trust -E UTF8 --no-locale \
    >"$fl_tmp/pg-initdb.log" 2>&1 || fl_die "initdb failed (log in $fl_tmp/pg-initdb.log)"
  pg_port=$(fl_free_port)
  fl_hooks+=(pg_stop)
  "${pg_as[@]}" "$pg_bin/pg_ctl" -D "$pg_dir/data" -l "$pg_dir/server.log" -w -t 60 \
    -o "-p $pg_port -k $pg_dir -c listen_addresses=127.0.0.1 -c max_connections=$((writers + 20))" \
    start >&2 || fl_die "PostgreSQL did not start (log in $pg_dir/server.log)"
  fl_say "PostgreSQL $("$pg_bin/postgres" --version | awk '{print $3}') on 127.0.0.1:$pg_port"
}
pg_stop() {
  "${pg_as[@]}" "$pg_bin/pg_ctl" -D "$pg_dir/data" -m fast -w stop >/dev/null 2>&1 || true
}
pg_cell() { # ROUND WORKLOAD SYNC
  local round=$1 wl=$2 sync=$3 out rc=0
  fl_say "round $round: PostgreSQL CAS $wl, synchronous_commit=$sync, $writers writers, $duration s"
  out=$("$fl_build/bench/pgcas" "host=127.0.0.1 port=$pg_port dbname=postgres user=bench" \
    "cont-$wl-$sync-$round" "$wl" "$writers" "$duration" "$sync" 2>>"$fl_tmp/pgcas.log") || rc=$?
  [[ -n "$out" ]] || fl_die "pgcas printed nothing (log in $fl_tmp/pgcas.log)"
  jq -c --arg round "$round" --arg name "pg-$sync-$wl" \
    '{run: $name, round: ($round | tonumber), window: 1, ops_per_s: .ops_per_s,
      confirmed: .confirmed, p50: .latency_ms.p50, p99: .latency_ms.p99,
      retries: (.failed_cas + .errors), retries_what: "failed CAS + errors",
      final: .final, bench: .}' <<<"$out" >>"$results"
}

# ---- ShareDB ----------------------------------------------------------------------
sdb_start() {
  local i
  sdb_port=$(fl_free_port)
  node "$fl_root/bench/peers/sharedb-server.js" "$sdb_port" >"$fl_tmp/sharedb-server.log" 2>&1 &
  sdb_pid=$!
  fl_pids+=("$sdb_pid")
  for ((i = 0; i < 300; i++)); do
    grep -q listening "$fl_tmp/sharedb-server.log" && break
    kill -0 "$sdb_pid" 2>/dev/null || fl_die "the ShareDB server exited (log in $fl_tmp)"
    sleep 0.1
  done
  fl_say "ShareDB $(node -p "require('$fl_root/bench/peers/node_modules/sharedb/package.json').version") on 127.0.0.1:$sdb_port"
}
sdb_cell() { # ROUND WORKLOAD
  local round=$1 wl=$2 out before after rc=0
  fl_say "round $round: ShareDB $wl, $writers subscribed writers, $duration s"
  before=$(curl -fsS "http://127.0.0.1:$sdb_port/stats")
  out=$(node "$fl_root/bench/peers/sharedb-clients.js" "$sdb_port" "cont-$wl-$round" "$wl" \
    "$writers" "$duration" 2>>"$fl_tmp/sharedb-clients.log") || rc=$?
  [[ -n "$out" ]] || fl_die "the ShareDB clients printed nothing (log in $fl_tmp/sharedb-clients.log)"
  after=$(curl -fsS "http://127.0.0.1:$sdb_port/stats")
  jq -c --arg round "$round" --arg name "sharedb-$wl" --argjson b "$before" --argjson a "$after" \
    '{run: $name, round: ($round | tonumber), window: 1, ops_per_s: .ops_per_s,
      confirmed: .acked, p50: .latency_ms.p50, p99: .latency_ms.p99,
      retries: (($a.transformed - $b.transformed) + ($a.commit_retries - $b.commit_retries) + .rejected),
      retries_what: "transformed + commit retries + rejected",
      transformed_over: ($a.transformed_over - $b.transformed_over),
      final: .final, bench: .}' <<<"$out" >>"$results"
}

# ---- the runs --------------------------------------------------------------------------
if has flushline; then
  fl_broker
  fl_make_key
  # Word splitting of the flag list is intended.
  # shellcheck disable=SC2086
  fl_start_flushline cont --rate 1000000 --burst 1000000 $gwargs
  fl_admin_token=$(fl_token bench-admin)
  fl_hooks+=(fl_drop_topics)
fi
has postgresql && pg_start
has sharedb && sdb_start

load_before=$(fl_load)
for ((r = 1; r <= rounds; r++)); do
  if has flushline; then
    flushline_cell "$r" incr incr 1 0
    flushline_cell "$r" incr-w"$window" incr "$window" 0
    flushline_cell "$r" replace-append replace-append 1 0
    flushline_cell "$r" replace-append-w"$window" replace-append "$window" 0
    flushline_cell "$r" subscribed-incr incr 1 1
    flushline_cell "$r" subscribed-replace-append replace-append 1 1
    flushline_cell "$r" subscribed-incr-w"$window" incr "$window" 1
    flushline_cell "$r" subscribed-replace-append-w"$window" replace-append "$window" 1
  fi
  if has postgresql; then
    for sync in on off; do
      pg_cell "$r" incr "$sync"
      pg_cell "$r" replace-append "$sync"
    done
  fi
  if has sharedb; then
    sdb_cell "$r" incr
    sdb_cell "$r" replace-append
  fi
done

# ---- report -------------------------------------------------------------------------------
med() { jq -r --arg run "$1" "select(.run == \$run) | $2" "$results" | fl_median; }
runs=$(jq -r .run "$results" | awk '!seen[$0]++')
echo "contention: $writers writers on one document, closed loop, $duration s per run, $rounds round(s), medians"
echo "machine: $load_before before, $(fl_load) after"
printf '%-40s %6s %10s %9s %9s %9s %10s %s\n' run window writes/s p50_ms p99_ms retries confirmed "final check"
for run in $runs; do
  printf '%-40s %6s %10.0f %9.2f %9.2f %9.0f %10.0f %s\n' "$run" "$(med "$run" .window)" \
    "$(med "$run" .ops_per_s)" "$(med "$run" .p50)" "$(med "$run" .p99)" \
    "$(med "$run" .retries)" "$(med "$run" .confirmed)" \
    "$(jq -r --arg run "$run" 'select(.run == $run) | "\(.final.counted)=\(.confirmed) \(if .final.ok then "ok" else "LOST" end)"' "$results" | paste -sd' ')"
done
echo "retries: Flushline nacks + resent flushes; PostgreSQL failed CAS (+ errors); ShareDB ops transformed over concurrent ones + commit retries + rejected"
lost=$(jq -s '[.[] | select(.final.ok | not)] | length' "$results")
if [[ -n "${FL_BENCH_RESULTS:-}" ]]; then cp "$results" "$FL_BENCH_RESULTS"; fi
fl_failed=0

# The headline: closed-loop incr, window 1.
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", (b > 0 ? a / b : 0) }'; }
rate() { printf '%.0f' "$(med "$1" .ops_per_s)"; }
line="contention:"
if has flushline; then
  f=$(rate flushline-incr) fs=$(rate flushline-subscribed-incr)
  line+=" Flushline incr $f/s"
  if has postgresql; then
    line+=", Flushline/PG-sync-on $(ratio "$f" "$(rate pg-on-incr)") ($(rate pg-on-incr)/s)"
    line+=", Flushline/PG-sync-off $(ratio "$f" "$(rate pg-off-incr)") ($(rate pg-off-incr)/s)"
  fi
  if has sharedb; then
    line+=", Flushline/ShareDB $(ratio "$f" "$(rate sharedb-incr)") ($(rate sharedb-incr)/s)"
    line+=", subscribed Flushline/ShareDB $(ratio "$fs" "$(rate sharedb-incr)") ($fs/s)"
  fi
fi
if ! has flushline; then
  peers=()
  has postgresql && peers+=("PG-sync-on $(rate pg-on-incr)/s" "PG-sync-off $(rate pg-off-incr)/s")
  has sharedb && peers+=("ShareDB $(rate sharedb-incr)/s")
  line+=" $(IFS=,; echo "${peers[*]}" | sed 's/,/, /g')"
fi
if ((lost == 0)); then line+="; no lost update"; else line+="; LOST UPDATES in $lost run(s)"; fi
echo "$line"
((lost == 0))
