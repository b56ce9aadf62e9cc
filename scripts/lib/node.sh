# SPDX-License-Identifier: Apache-2.0
# scripts/lib/node.sh: the Node.js the JS tests run on. Sourced by
# scripts/deps (which installs it) and scripts/js-test (which uses it).
#
# client/js needs Node.js >= 20 (package.json "engines"; playwright-core
# refuses older ones). Debian 12's nodejs is 18, so when the node on PATH is
# older, Node.js 20 comes from the npm registry's node-linux-<arch> package
# (the official Linux build inside an npm tarball, checked by npm against the
# registry's integrity hash), fetched with Debian's npm and unpacked into
# <repo>/.cache/node-<version>/bin/node. No other download site is used.

fl_node_repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
FL_NODE_MIN_MAJOR=20
FL_NODE_VERSION=20.20.2
fl_node_local_dir=$fl_node_repo/.cache/node-$FL_NODE_VERSION

# The major version of a node binary (0 when it does not run).
fl_node_major() {
  local v
  v=$("$1" --version 2>/dev/null || true)
  v=${v#v}
  echo "${v%%.*}" | grep -E '^[0-9]+$' || echo 0
}

# 0 when the node on PATH is new enough.
fl_node_system_ok() {
  command -v node >/dev/null && (($(fl_node_major node) >= FL_NODE_MIN_MAJOR))
}

# 0 when the project's own Node.js is installed and runs.
fl_node_local_ok() {
  [[ -x "$fl_node_local_dir/bin/node" ]] &&
    (($(fl_node_major "$fl_node_local_dir/bin/node") >= FL_NODE_MIN_MAJOR))
}

# Installs the project's own Node.js from the npm registry (needs npm).
fl_node_install_local() {
  local arch tmp tgz
  case "$(uname -m)" in
    x86_64) arch=x64 ;;
    aarch64) arch=arm64 ;;
    *) echo "deps: no node-linux package for $(uname -m); install Node.js >= $FL_NODE_MIN_MAJOR" >&2
       return 1 ;;
  esac
  command -v npm >/dev/null || { echo "deps: npm missing" >&2; return 1; }
  echo "deps: Node.js $FL_NODE_VERSION from the npm registry (node-linux-$arch) into $fl_node_local_dir"
  mkdir -p "$fl_node_repo/.cache"
  tmp=$(mktemp -d "$fl_node_repo/.cache/node.XXXXXX")
  if ! (cd "$tmp" && npm pack --silent --no-fund --no-audit "node-linux-$arch@$FL_NODE_VERSION" \
    >pack.out 2>pack.err); then
    cat "$tmp/pack.err" >&2
    rm -rf "$tmp"
    echo "deps: npm pack node-linux-$arch@$FL_NODE_VERSION failed" >&2
    return 1
  fi
  tgz=$tmp/$(tail -n 1 "$tmp/pack.out")
  mkdir -p "$tmp/out"
  tar -xzf "$tgz" -C "$tmp/out" --strip-components=1 package/bin/node package/LICENSE
  rm -rf "$fl_node_local_dir"
  mv "$tmp/out" "$fl_node_local_dir"
  rm -rf "$tmp"
  fl_node_local_ok || { echo "deps: $fl_node_local_dir/bin/node does not run" >&2; return 1; }
}

# Puts a Node.js >= 20 first on PATH (the system's, or the project's own).
# Returns 1 when neither is there (run scripts/deps).
fl_node_use() {
  fl_node_system_ok && return 0
  fl_node_local_ok || return 1
  PATH=$fl_node_local_dir/bin:$PATH
  export PATH
}
