#!/usr/bin/env bash
# Builds everything (libraries, nodegate, tests, benchmarks) and runs the whole test
# suite with ctest, serially: unit and fixture tests, EAL tests on virtual devices, and
# the end-to-end tests in network namespaces (these need root; skipped otherwise).
# Usage: scripts/test.sh [build-dir] [extra ctest arguments...]
# Exit code: ctest's.
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
build_dir="${1:-$repo/build}"
(($# > 0)) && shift

"$repo/scripts/install-deps.sh"
"$repo/scripts/build.sh" "$build_dir"

# --timeout is the default per-test limit (a hung test must not eat CI's time); tests
# that set their own TIMEOUT property (e2e: 600 s) keep it.
timeout="${NG_CTEST_TIMEOUT:-300}"
echo "[test] ctest --test-dir $build_dir --output-on-failure --timeout $timeout $*"
set +e
ctest --test-dir "$build_dir" --output-on-failure --timeout "$timeout" "$@"
rc=$?
set -e
echo "[test] ctest exit code $rc"
exit "$rc"
