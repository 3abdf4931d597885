#!/usr/bin/env bash
# Keeps DPDK at the edges (DESIGN.md sec. 2, STYLE.md principle 3): only dataplane/dpdk/
# and control/main.cc may include DPDK headers; packet, lb, forwarding, control, config,
# nodeport and health code must build and test without EAL.
set -euo pipefail
root=${1:-$(dirname "$0")/..}
cd "$root"
bad=$(grep -rlE '#include *[<"](rte_|dpdk/)' conf control nodeport health dataplane/pkt dataplane/lb dataplane/fwd \
        --include='*.h' --include='*.cc' | grep -v '^control/main.cc$' || true)
if [[ -n "$bad" ]]; then
  echo "DPDK included outside dataplane/dpdk and control/main.cc:" >&2
  echo "$bad" >&2
  exit 1
fi
# The libraries above must not link DPDK either.
if grep -nE 'PkgConfig::DPDK' conf/CMakeLists.txt control/CMakeLists.txt nodeport/CMakeLists.txt \
     health/CMakeLists.txt dataplane/pkt/CMakeLists.txt dataplane/lb/CMakeLists.txt dataplane/fwd/CMakeLists.txt; then
  echo "a DPDK-free library links DPDK" >&2
  exit 1
fi
echo "layering: ok"
