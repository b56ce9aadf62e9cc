# SPDX-License-Identifier: Apache-2.0
# bench/peers/common.sh: shell helpers of bench/latency.sh and
# bench/contention.sh (bash, sourced): the Release build, the broker, free
# loopback ports, Flushline daemons on a throwaway topic set, and one trap
# that stops everything they started and removes the scratch folder.
#
# The caller sets fl_name (for messages) and then calls fl_init.

fl_root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
fl_build=${FL_BENCH_BUILD:-$fl_root/build-bench}
fl_pids=()        # processes to stop at the end (SIGTERM, then SIGKILL)
fl_hooks=()       # commands run at the end, after the processes stopped
fl_broker_dir=""  # set when we started the broker ourselves
fl_tmp=""
fl_failed=1       # logs are kept when the run did not finish

fl_say() { echo "$fl_name: $*" >&2; }
fl_die() { fl_say "$*"; exit 1; }

# Stops one process: SIGTERM, up to 10 s, then SIGKILL; reaps it.
fl_stop_pid() {
  local pid=$1 i
  kill -TERM "$pid" 2>/dev/null || return 0
  for ((i = 0; i < 200; i++)); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.05
  done
  kill -KILL "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
}

fl_cleanup() {
  local pid hook
  for pid in "${fl_pids[@]}"; do fl_stop_pid "$pid"; done
  fl_pids=()
  for hook in "${fl_hooks[@]}"; do $hook || true; done
  fl_hooks=()
  if [[ -n "$fl_broker_dir" ]]; then
    FLUSHLINE_KAFKA_DIR=$fl_broker_dir "$fl_root/scripts/kafka" stop >/dev/null 2>&1 || true
    rm -rf "$fl_broker_dir"
  fi
  if [[ -n "$fl_tmp" ]]; then
    if ((fl_failed)); then
      fl_say "logs kept in $fl_tmp"
    else
      rm -rf "$fl_tmp"
    fi
  fi
}

# Forgets a pid stopped by hand.
fl_forget() {
  local keep=() pid
  for pid in "${fl_pids[@]}"; do [[ "$pid" == "$1" ]] || keep+=("$pid"); done
  fl_pids=("${keep[@]}")
}

fl_init() {
  fl_tmp=$(mktemp -d "${TMPDIR:-/tmp}/flbench-$fl_name.XXXXXX")
  chmod 755 "$fl_tmp"
  trap fl_cleanup EXIT
  trap 'exit 130' INT TERM
}

fl_free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

# Builds the Release targets given (configures build-bench on first use), so
# that a stale binary is never measured. Build output goes to stderr.
fl_build_targets() {
  if [[ ! -f "$fl_build/build.ninja" ]]; then
    CC=${CC:-clang} cmake -S "$fl_root" -B "$fl_build" -G Ninja -DCMAKE_BUILD_TYPE=Release \
      -DFL_FUZZ=OFF >&2
  fi
  cmake --build "$fl_build" --target "$@" >&2
}

# FLUSHLINE_BOOTSTRAP: as set, else the broker of scripts/kafka, else a
# throwaway broker started here (and stopped by the trap).
fl_broker() {
  local env
  if [[ -n "${FLUSHLINE_BOOTSTRAP:-}" ]]; then
    return 0
  fi
  if env=$("$fl_root/scripts/kafka" env 2>/dev/null); then
    export "${env?}"
    return 0
  fi
  fl_broker_dir=$(mktemp -d "${TMPDIR:-/tmp}/flbench-kafka.XXXXXX")
  fl_say "no broker running: starting a throwaway one in $fl_broker_dir"
  FLUSHLINE_KAFKA_DIR=$fl_broker_dir "$fl_root/scripts/kafka" start >&2 ||
    fl_die "the broker did not start"
  env=$(FLUSHLINE_KAFKA_DIR=$fl_broker_dir "$fl_root/scripts/kafka" env)
  export "${env?}"
}

# Waits until http://127.0.0.1:PORT/readyz answers 200 (the process PID
# must stay alive), up to 60 s.
fl_wait_ready() {
  local pid=$1 port=$2 what=$3 i
  for ((i = 0; i < 600; i++)); do
    kill -0 "$pid" 2>/dev/null || fl_die "$what exited (log in $fl_tmp)"
    if curl -fs -o /dev/null "http://127.0.0.1:$port/readyz"; then return 0; fi
    sleep 0.1
  done
  fl_die "$what not ready after 60 s (log in $fl_tmp)"
}

# A signing key for the gateways of this run: $fl_tmp/key (.pub).
fl_make_key() {
  "$fl_build/bin/flushline" token keygen --type ed25519 --out "$fl_tmp/key" >/dev/null
}

# fl_start_flushline NAME [GATEWAY FLAGS...]: a fresh topic set (prefix
# bench<pid><NAME>, 4 partitions), a processor and a gateway (Release, on
# free loopback ports) with the given gateway flags last. Sets fl_gw_port,
# fl_gw_pid, fl_pr_pid, fl_pr_port, fl_prefix.
fl_start_flushline() {
  local name=$1
  shift
  fl_prefix="bench$$$name"
  "$fl_build/bin/flushline" topics create --prefix "$fl_prefix" --partitions 4 >&2 ||
    fl_die "could not create the topics $fl_prefix.*"
  fl_pr_port=$(fl_free_port)
  "$fl_build/bin/flushline-processor" --prefix "$fl_prefix" --partitions 4 \
    --group.id "$fl_prefix-processors" --transactional.id "$fl_prefix-proc-1" \
    --http.port "$fl_pr_port" --log.level warn \
    ${FL_BENCH_PROCESSOR_ARGS:-} >"$fl_tmp/$name-processor.log" 2>&1 &
  fl_pr_pid=$!
  fl_pids+=("$fl_pr_pid")
  fl_gw_port=$(fl_free_port)
  "$fl_build/bin/flushline-gateway" --prefix "$fl_prefix" --partitions 4 \
    --jwt.keys "$fl_tmp/key.pub" --port "$fl_gw_port" --log.level warn \
    "$@" >"$fl_tmp/$name-gateway.log" 2>&1 &
  fl_gw_pid=$!
  fl_pids+=("$fl_gw_pid")
  fl_wait_ready "$fl_pr_pid" "$fl_pr_port" "the processor"
  fl_wait_ready "$fl_gw_pid" "$fl_gw_port" "the gateway"
}

# Stops the gateway and the processor of fl_start_flushline.
fl_stop_flushline() {
  fl_stop_pid "$fl_gw_pid"
  fl_forget "$fl_gw_pid"
  fl_stop_pid "$fl_pr_pid"
  fl_forget "$fl_pr_pid"
}

# fl_token SUB: a token that may write every bench/ document, good 2 hours.
fl_token() {
  "$fl_build/bin/flushline" token mint --key "$fl_tmp/key" --sub "$1" --write bench/ --ttl 2h
}

# The median of the numbers on stdin (one a line).
fl_median() {
  sort -g | awk '{ v[NR] = $1 } END { if (NR == 0) print 0; else if (NR % 2) print v[(NR + 1) / 2];
    else print (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}

# Deletes the topic set of fl_start_flushline (needs bench/latency built).
fl_drop_topics() {
  "$fl_build/bench/latency" drop "$fl_prefix" 2>/dev/null || true
}

# The 1-minute load average and the CPU count, for the report (figures from
# a busy machine are not comparable with a quiet one's).
fl_load() { echo "load average $(cut -d' ' -f1 /proc/loadavg) on $(nproc) CPUs"; }

# CPU seconds (user + system, all threads) a live process has used so far.
fl_cpu() {
  awk -v tck="$(getconf CLK_TCK)" '{ sub(/^.*\) /, ""); printf "%.2f\n", ($12 + $13) / tck }' \
    "/proc/$1/stat" 2>/dev/null || echo 0
}
