#!/usr/bin/env bash
# Configures and builds NodeGate.
# Usage: scripts/build.sh [build-dir] [targets...]
#   build-dir  default: build/ in the repository (a relative path is taken from $PWD)
#   targets    default: everything (libraries, nodegate, tests, benchmarks)
# Environment: BUILD_TYPE (default Release), JOBS (default: nproc), CMAKE_ARGS (extra,
# word-split).
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
build_dir="${1:-$repo/build}"
(($# > 0)) && shift
build_type="${BUILD_TYPE:-Release}"
jobs="${JOBS:-$(nproc)}"

target_args=()
for t in "$@"; do target_args+=(--target "$t"); done

echo "[build] configure $build_dir ($build_type)"
# shellcheck disable=SC2086  # CMAKE_ARGS is a list of words on purpose
cmake -S "$repo" -B "$build_dir" \
  -DCMAKE_BUILD_TYPE="$build_type" \
  -DNG_BUILD_TESTS=ON \
  -DNG_BUILD_BENCH=ON \
  ${CMAKE_ARGS:-}

echo "[build] build ${*:-all} with -j$jobs"
cmake --build "$build_dir" -j"$jobs" "${target_args[@]}"
