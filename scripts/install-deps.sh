#!/usr/bin/env bash
# Installs everything NodeGate needs to build, test and demo on Debian 12 (bookworm).
# Idempotent: when every package is already installed it only says so (no apt-get
# update, no root needed). Otherwise, as root, runs apt-get update once and installs
# the missing ones. Usage: scripts/install-deps.sh
set -euo pipefail

# Build toolchain and libraries, test/bench frameworks, DPDK (with the virtual-device
# PMDs the tests and the demo load at run time: af_packet, ring, pcap, tap, and the
# ring mempool driver), the tools the namespace tests use, promtool (prometheus) for
# the /metrics format check, chromium for the headless status-page test, yaml-cpp for
# kubeconfig files, python3-kubernetes (a real client pointed at the fake API server), and
# nftables (the tunnel-mode e2e tests' nodes DNAT the VIP to their NodePort the way
# kube-proxy would). Each name was checked with `apt-cache policy` on Debian 12.
readonly PACKAGES=(
  build-essential cmake pkg-config g++ clang clang-14 libclang-rt-14-dev
  dpdk dpdk-dev libdpdk-dev
  librte-net-af-packet23 librte-net-ring23 librte-net-pcap23 librte-net-tap23 librte-mempool-ring23
  libconfig++-dev libspdlog-dev libcpp-httplib-dev nlohmann-json3-dev libcli11-dev libasio-dev libssl-dev
  libgtest-dev libgmock-dev googletest libbenchmark-dev libpcap-dev
  iproute2 ethtool iputils-ping curl python3 procps psmisc nftables
  prometheus chromium openssl libyaml-cpp-dev python3-kubernetes jq
)

export DEBIAN_FRONTEND=noninteractive
log() { printf '[install-deps] %s\n' "$*"; }

installed() {
  [[ "$(dpkg-query -W -f='${db:Status-Status}' "$1" 2>/dev/null)" == installed ]]
}

missing=()
for p in "${PACKAGES[@]}"; do
  installed "$p" || missing+=("$p")
done

if ((${#missing[@]} == 0)); then
  log "all ${#PACKAGES[@]} packages already installed"
  exit 0
fi

log "missing: ${missing[*]}"
if ((EUID != 0)); then
  log "error: installing needs root (run: sudo $0)" >&2
  exit 1
fi

apt_log="$(mktemp -t nodegate-apt.XXXXXX.log)"
run() {  # run "what" cmd...: one line per step, full output only on failure
  local what="$1"; shift
  log "$what"
  if ! "$@" >>"$apt_log" 2>&1; then
    log "error: '$*' failed; last lines of $apt_log:" >&2
    tail -n 30 "$apt_log" >&2
    exit 1
  fi
}

run "apt-get update" apt-get update -q

# Drop names this archive does not have (e.g. a renamed package on a derivative).
to_install=()
for p in "${missing[@]}"; do
  # Capture first: `grep -q` exits at the first match, and under pipefail the SIGPIPE
  # it gives apt-cache would read as "no candidate".
  policy="$(apt-cache policy "$p" 2>/dev/null || true)"
  if grep -q 'Candidate: [^(]' <<<"$policy"; then
    to_install+=("$p")
  else
    log "warning: no package '$p' in the configured archives; skipping"
  fi
done

if ((${#to_install[@]} > 0)); then
  run "apt-get install ${to_install[*]}" \
    apt-get install -y -q -o Dpkg::Options::=--force-confold "${to_install[@]}"
fi
rm -f "$apt_log"
log "done"
