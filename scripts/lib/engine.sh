# SPDX-License-Identifier: Apache-2.0
# scripts/lib/engine.sh: a private Docker engine and a locally built Debian 12
# base image, for the checks that run Flushline in containers
# (scripts/fresh-check; a docker-compose deployment check can reuse it).
# Source it from bash (set -euo pipefail is assumed):
#
#   source "$repo/scripts/lib/engine.sh"
#   fl_engine_host_deps            # docker.io, debootstrap on the host (apt)
#   fl_engine_start                # containerd + dockerd of our own
#   trap fl_engine_stop EXIT       # stops them, and every container on them
#   image=$(fl_base_image)         # debootstrap once, then cached
#   fl_docker run --rm --network host "$image" true
#
# The engine is the project's, never the system's: a containerd and a dockerd
# with every path (data root, exec root, sockets, pid files, logs) under one
# folder, FL_ENGINE_DIR (default <repo>/.cache/docker). No iptables, no NAT,
# no bridge: containers run with `--network host`. A dockerd that runs
# system-wide is neither used nor touched. One user at a time: a lock in the
# folder; an engine that a killed earlier run left behind is found by its pid
# files and stopped before a new one starts. The Docker CLI is Debian's
# (/usr/bin/docker), whatever else PATH holds.
#
# Settings (environment):
#   FL_ENGINE_DIR      the engine's folder (default <repo>/.cache/docker)
#   FL_ENGINE_ARGS     more dockerd arguments, split on spaces (e.g. a
#                      compose check that needs another network setup)
#   FL_ENGINE_TIMEOUT  seconds to wait for a daemon to answer or to stop
#                      (default 180; the machine may be busy)
# After fl_engine_start: DOCKER_HOST is exported (for docker-compose), and
# fl_docker runs the CLI against the engine.
#
# Every function returns non-zero with a message on stderr when it fails.

fl_engine_repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
FL_ENGINE_DIR=${FL_ENGINE_DIR:-$fl_engine_repo/.cache/docker}
FL_ENGINE_TIMEOUT=${FL_ENGINE_TIMEOUT:-180}
FL_DOCKER_BIN=/usr/bin/docker
fl_engine_owned=0
fl_engine_lock_fd=

fl_engine_log() { echo "engine: $*" >&2; }

# Installs what the engine and the base image need on the host, only what is
# missing (Debian packages; these are the check's needs, not the product's).
fl_engine_host_deps() {
  local pkg missing=()
  for pkg in docker.io containerd runc tini debootstrap git ca-certificates curl; do
    [[ "$(dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null || true)" == "install ok installed" ]] ||
      missing+=("$pkg")
  done
  [[ ${#missing[@]} -eq 0 ]] && return 0
  [[ $(id -u) -eq 0 ]] || { fl_engine_log "needs root to install ${missing[*]}"; return 1; }
  fl_engine_log "installing on the host: ${missing[*]}"
  DEBIAN_FRONTEND=noninteractive apt-get update -qq &&
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" \
      >/dev/null
}

fl_engine_paths() {
  fl_engine_run=$FL_ENGINE_DIR/run
  fl_engine_sock=$fl_engine_run/docker.sock
  fl_engine_csock=$fl_engine_run/containerd.sock
  fl_engine_dpid=$fl_engine_run/dockerd.pid
  fl_engine_cpid=$fl_engine_run/containerd.pid
}

# Runs a command without the lock's descriptor: a child that outlives a
# killed check (a `docker exec` still streaming) must not keep the lock.
fl_engine_nolock() {
  if [[ -n "$fl_engine_lock_fd" ]]; then
    "$@" {fl_engine_lock_fd}>&-
  else
    "$@"
  fi
}

fl_docker() { fl_engine_nolock "$FL_DOCKER_BIN" -H "unix://$fl_engine_sock" "$@"; }

# The pids of the processes whose command line matches a regular expression
# (this engine's daemons are found by their paths, pid files or not).
fl_engine_pids() {
  local p
  for p in /proc/[0-9]*; do
    [[ -r $p/cmdline && "${p#/proc/}" != "$BASHPID" ]] || continue
    if tr '\0' ' ' 2>/dev/null <"$p/cmdline" | grep -q -- "$1"; then
      echo "${p#/proc/}"
    fi
  done
}

# Sends TERM, waits up to FL_ENGINE_TIMEOUT seconds, then KILL.
fl_engine_kill_wait() {
  local pid=$1 what=$2 deadline
  kill -TERM "$pid" 2>/dev/null || return 0
  deadline=$((SECONDS + FL_ENGINE_TIMEOUT))
  while kill -0 "$pid" 2>/dev/null && [[ "$(awk '{print $3}' "/proc/$pid/stat" 2>/dev/null)" != Z ]]; do
    if ((SECONDS >= deadline)); then
      fl_engine_log "$what (pid $pid) did not stop within ${FL_ENGINE_TIMEOUT}s: killing it"
      kill -KILL "$pid" 2>/dev/null || true
      deadline=$((SECONDS + 30))
    fi
    sleep 0.2
  done
}

# Stops whatever of this engine runs: its containers, dockerd, containerd,
# then any shim left. The daemons are found by their command lines (their
# paths), so this also cleans up after a killed earlier run.
fl_engine_halt() {
  local pid
  # Containers first, explicitly: a dockerd that is stopped with running
  # containers stops them too, but within its own shutdown timeout.
  if [[ -S "$fl_engine_sock" ]] && fl_docker info >/dev/null 2>&1; then
    local ids
    ids=$(fl_docker ps -aq 2>/dev/null || true)
    # shellcheck disable=SC2086
    [[ -z "$ids" ]] || fl_docker rm -f $ids >/dev/null 2>&1 || true
  fi
  for pid in $(fl_engine_pids "^dockerd .*unix://$fl_engine_sock "); do
    fl_engine_kill_wait "$pid" dockerd
  done
  for pid in $(fl_engine_pids "^containerd --config $FL_ENGINE_DIR/containerd.toml"); do
    fl_engine_kill_wait "$pid" containerd
  done
  # The shims of its containers outlive containerd by design.
  for pid in $(fl_engine_pids "^/usr/bin/containerd-shim.* -address $fl_engine_csock"); do
    kill -KILL "$pid" 2>/dev/null || true
  done
  # What the daemons leave mounted (dockerd's netns/default; a killed run's
  # container layers), deepest first, so that the folder can be removed.
  local m
  for m in $(awk -v r="$FL_ENGINE_DIR/" 'index($2, r) == 1 { print $2 }' /proc/mounts | sort -r); do
    umount "$m" 2>/dev/null || umount -l "$m" 2>/dev/null || true
  done
  rm -f "$fl_engine_dpid" "$fl_engine_cpid" "$fl_engine_sock" "$fl_engine_csock" \
    "$fl_engine_csock.ttrpc"
}

# Starts containerd and dockerd under FL_ENGINE_DIR and waits until dockerd
# answers. Takes the folder's lock first (another check using the same
# engine makes this fail at once); stops an engine a killed run left behind.
fl_engine_start() {
  fl_engine_paths
  mkdir -p "$fl_engine_run" "$FL_ENGINE_DIR/log"
  if ((${#fl_engine_sock} > 100)); then
    fl_engine_log "socket path too long for a unix socket ($fl_engine_sock): set FL_ENGINE_DIR"
    return 1
  fi
  for tool in "$FL_DOCKER_BIN" dockerd containerd runc; do
    command -v "$tool" >/dev/null || { fl_engine_log "$tool missing (Debian docker.io)"; return 1; }
  done
  exec {fl_engine_lock_fd}>"$FL_ENGINE_DIR/lock"
  if ! flock -n "$fl_engine_lock_fd"; then
    fl_engine_log "another check is using the engine in $FL_ENGINE_DIR (lock held); try later"
    exec {fl_engine_lock_fd}>&-
    fl_engine_lock_fd=
    return 1
  fi
  local left
  left=$(fl_engine_pids "^\(dockerd\|containerd\|/usr/bin/containerd-shim\).*$FL_ENGINE_DIR/" | tr '\n' ' ')
  if [[ -n "$left" ]]; then
    fl_engine_log "an engine left by an earlier run is still running (pids $left): stopping it"
  fi
  fl_engine_halt
  fl_engine_owned=1

  cat >"$FL_ENGINE_DIR/containerd.toml" <<EOF
version = 2
root = "$FL_ENGINE_DIR/containerd"
state = "$fl_engine_run/containerd"
disabled_plugins = ["io.containerd.grpc.v1.cri"]
[grpc]
  address = "$fl_engine_csock"
[ttrpc]
  address = "$fl_engine_csock.ttrpc"
[debug]
  address = ""
[metrics]
  address = ""
EOF
  echo '{}' >"$FL_ENGINE_DIR/daemon.json"
  local log=$FL_ENGINE_DIR/log deadline
  echo "---- $(date -u +%FT%TZ) start" >>"$log/containerd.log"
  # setsid: Ctrl-C in the terminal reaches the check, whose trap stops the
  # daemons in order; the lock's descriptor is not inherited.
  setsid containerd --config "$FL_ENGINE_DIR/containerd.toml" \
    >>"$log/containerd.log" 2>&1 </dev/null {fl_engine_lock_fd}>&- &
  echo $! >"$fl_engine_cpid"
  deadline=$((SECONDS + FL_ENGINE_TIMEOUT))
  until [[ -S "$fl_engine_csock" ]]; do
    # (kill -0, not the command line: until the exec it is still this shell)
    if ! kill -0 "$(cat "$fl_engine_cpid")" 2>/dev/null; then
      tail -n 20 "$log/containerd.log" >&2
      fl_engine_log "containerd exited during start-up (log: $log/containerd.log)"
      return 1
    fi
    ((SECONDS < deadline)) || { fl_engine_log "containerd: no socket within ${FL_ENGINE_TIMEOUT}s"; return 1; }
    sleep 0.2
  done
  fl_engine_pids "^containerd --config $FL_ENGINE_DIR/containerd.toml" | head -n 1 >"$fl_engine_cpid"

  local extra=()
  read -r -a extra <<<"${FL_ENGINE_ARGS:-}"
  echo "---- $(date -u +%FT%TZ) start" >>"$log/dockerd.log"
  setsid dockerd --config-file "$FL_ENGINE_DIR/daemon.json" \
    --data-root "$FL_ENGINE_DIR/data" --exec-root "$fl_engine_run/exec" \
    --pidfile "$fl_engine_dpid" -H "unix://$fl_engine_sock" --containerd "$fl_engine_csock" \
    --containerd-namespace flushline --containerd-plugins-namespace flushline-plugins \
    --iptables=false --ip-masq=false --ip-forward=false --bridge=none --userland-proxy=false \
    "${extra[@]}" >>"$log/dockerd.log" 2>&1 </dev/null {fl_engine_lock_fd}>&- &
  local dpid=$!
  deadline=$((SECONDS + FL_ENGINE_TIMEOUT))
  until fl_docker version >/dev/null 2>&1; do
    if ! kill -0 "$dpid" 2>/dev/null; then
      tail -n 20 "$log/dockerd.log" >&2
      fl_engine_log "dockerd exited during start-up (log: $log/dockerd.log)"
      return 1
    fi
    if ((SECONDS >= deadline)); then
      tail -n 20 "$log/dockerd.log" >&2
      fl_engine_log "dockerd did not answer within ${FL_ENGINE_TIMEOUT}s"
      return 1
    fi
    sleep 0.3
  done
  # dockerd writes its pid file itself; keep ours in case it has not yet.
  [[ -s "$fl_engine_dpid" ]] || echo "$dpid" >"$fl_engine_dpid"
  export DOCKER_HOST=unix://$fl_engine_sock
  fl_engine_log "running: dockerd $(fl_docker version -f '{{.Server.Version}}'), $DOCKER_HOST"
}

# Stops the engine if this shell started it, and releases the lock. Safe to
# call twice and from a trap.
fl_engine_stop() {
  fl_engine_paths
  if ((fl_engine_owned)); then
    fl_engine_halt
    fl_engine_owned=0
    fl_engine_log "stopped"
  fi
  if [[ -n "$fl_engine_lock_fd" ]]; then
    exec {fl_engine_lock_fd}>&-
    fl_engine_lock_fd=
  fi
}

# The URI of the host apt's Debian mirror for a suite (from the one-line
# sources.list files and the deb822 .sources files), or nothing.
fl_apt_mirror() {
  local suite=$1 f
  for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
    [[ -f "$f" ]] || continue
    awk -v s="$suite" '$1 == "deb" {
        i = 2; if ($i ~ /^\[/) { while ($i !~ /\]$/) i++; i++ }
        if ($(i + 1) == s) { print $i; exit } }' "$f"
  done
  for f in /etc/apt/sources.list.d/*.sources; do
    [[ -f "$f" ]] || continue
    awk -v s="$suite" '
      function flush() {
        if (types ~ /(^| )deb( |$)/ && enabled != "no" && (" " suites " ") ~ (" " s " ")) {
          split(uris, u, " "); print u[1]; found = 1; exit
        }
        types = ""; uris = ""; suites = ""; enabled = ""
      }
      /^[ \t]*$/ { flush(); next }
      /^#/ { next }
      { key = tolower($1); sub(/:$/, "", key); $1 = ""; sub(/^ +/, "")
        if (key == "types") types = $0; else if (key == "uris") uris = $0
        else if (key == "suites") suites = $0; else if (key == "enabled") enabled = $0 }
      END { if (!found) flush() }' "$f"
  done | head -n 1
}

# Removes a debootstrap target, unmounting first whatever a failed
# debootstrap left mounted in it (/proc, /sys), deepest first.
fl_rootfs_remove() {
  local root=$1 m
  for m in $(awk -v r="$root/" 'index($2, r) == 1 { print $2 }' /proc/mounts | sort -r); do
    umount -l "$m" 2>/dev/null || true
  done
  if awk -v r="$root/" 'index($2, r) == 1 { found = 1 } END { exit !found }' /proc/mounts; then
    fl_engine_log "$root still has mounts; not removing it"
    return 1
  fi
  rm -rf "$root"
}

# The name of a Debian 12 (bookworm) minbase image on the engine, made once:
# debootstrap --variant=minbase from the host apt's mirror, the root file
# system kept as a tarball in FL_ENGINE_DIR/images/ and `docker import`ed.
# Later calls reuse the image (or re-import the tarball); FL_BASE_REBUILD=1
# makes them debootstrap again. Progress on stderr, the name on stdout.
fl_base_image() {
  local name=flushline-check/debian:bookworm-minbase
  local tarball=$FL_ENGINE_DIR/images/debian-bookworm-minbase.tar
  if [[ "${FL_BASE_REBUILD:-0}" == 1 ]]; then
    fl_docker rmi -f "$name" >/dev/null 2>&1 || true
    rm -f "$tarball"
  fi
  if fl_docker image inspect "$name" >/dev/null 2>&1; then
    fl_engine_log "base image $name cached ($(fl_docker image inspect -f '{{.Created}}' "$name" | cut -c1-19)); no debootstrap"
    echo "$name"
    return 0
  fi
  if [[ ! -s "$tarball" ]]; then
    local mirror security root
    mirror=$(fl_apt_mirror bookworm)
    security=$(fl_apt_mirror bookworm-security)
    if [[ -z "$mirror" ]]; then
      mirror=http://deb.debian.org/debian
      fl_engine_log "no bookworm mirror in the host's apt sources; using $mirror"
    fi
    command -v debootstrap >/dev/null || { fl_engine_log "debootstrap missing"; return 1; }
    mkdir -p "$FL_ENGINE_DIR/images"
    root=$(mktemp -d "$FL_ENGINE_DIR/images/rootfs.XXXXXX")
    fl_engine_log "debootstrap --variant=minbase bookworm from $mirror (a few minutes)"
    if ! debootstrap --variant=minbase bookworm "$root" "$mirror" \
      >"$FL_ENGINE_DIR/log/debootstrap.log" 2>&1; then
      tail -n 20 "$FL_ENGINE_DIR/log/debootstrap.log" >&2
      fl_rootfs_remove "$root"
      fl_engine_log "debootstrap failed (log: $FL_ENGINE_DIR/log/debootstrap.log)"
      return 1
    fi
    # What a Debian 12 installation's apt reads: the release, its updates and
    # the security archive, from the mirrors the host uses.
    {
      echo "deb $mirror bookworm main"
      echo "deb $mirror bookworm-updates main"
      [[ -z "$security" ]] || echo "deb $security bookworm-security main"
    } >"$root/etc/apt/sources.list"
    rm -rf "$root"/var/cache/apt/archives/*.deb "$root"/var/lib/apt/lists/* "$root/debootstrap"
    tar -C "$root" --numeric-owner -cf "$tarball.tmp" . && mv "$tarball.tmp" "$tarball"
    fl_rootfs_remove "$root"
  else
    fl_engine_log "root file system cached in $tarball; importing it"
  fi
  fl_docker import -c 'CMD ["/bin/bash"]' -m "debootstrap --variant=minbase bookworm" \
    "$tarball" "$name" >/dev/null || { fl_engine_log "docker import failed"; return 1; }
  fl_engine_log "base image $name built"
  echo "$name"
}
