#!/usr/bin/env bash
# Builds NodeGate (Release) and runs its benchmarks; see bench/README.md and docs/BENCHMARKS.md.
#
#   scripts/bench.sh [--quick] [--build DIR] [--filter REGEX] [--seconds N] [--no-pin]
#
#   (default)  Google Benchmark binaries (build/bench/maglev_bench, flow_table_bench,
#              pkt_bench, health_bench) with 5 repetitions, aggregates only
#              (mean/median/stddev/cv), then scripts/bench-dataplane.sh (nodegate vs
#              dpdk-testpmd, needs root + hugepages) with 1 and with 2 workers a side. health_bench is never pinned (its
#              engine and responder processes need a core each) and takes ~6 minutes.
#   --quick    CI smoke run: each benchmark once with --benchmark_min_time=0.01 (health_bench:
#              NG_HEALTH_BENCH_QUICK=1, 200 targets for 1 s), no data-plane run. Proves the
#              binaries build and run; the numbers mean nothing.
#   --filter   passed as --benchmark_filter to every binary.
#   --seconds  per side of the data-plane run (default 10).
#   --no-pin   do not pin the micro-benchmarks to CPU 1 with taskset (health_bench never is).
#
# A benchmark binary whose CMake target does not exist yet is skipped with a note. JSON
# results go to BUILD/bench-results/NAME.json. Exits non-zero if a build or a run fails.
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BUILD_DIR="$REPO/build"
QUICK=0
FILTER=""
DP_SECONDS=10
PIN=1
BENCHES=(maglev_bench flow_table_bench pkt_bench health_bench)

usage() { sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed '$d; s/^# \{0,1\}//'; }
die() { echo "bench: $*" >&2; exit 1; }

while (($#)); do
  case "$1" in
    --quick) QUICK=1; shift ;;
    --build) BUILD_DIR=${2:?}; shift 2 ;;
    --filter) FILTER=${2:?}; shift 2 ;;
    --seconds) DP_SECONDS=${2:?}; shift 2 ;;
    --no-pin) PIN=0; shift ;;
    -h|--help) usage; exit 0 ;;
    *) usage >&2; die "unknown argument: $1" ;;
  esac
done
BUILD_DIR=$(realpath -m "$BUILD_DIR")

echo "== configure + build (Release) in $BUILD_DIR"
cmake -S "$REPO" -B "$BUILD_DIR" -DCMAKE_BUILD_TYPE=Release -DNG_BUILD_BENCH=ON >/dev/null ||
  die "cmake configure failed"

# Which of the wanted targets does the project define today? (`help` lists them for both
# the Makefile and the Ninja generators.)
TARGETS_KNOWN=$(cmake --build "$BUILD_DIR" --target help 2>/dev/null || true)
has_target() { grep -Eq "(^|[ .:/])$1(:|$| )" <<<"$TARGETS_KNOWN"; }

TO_BUILD=()
SKIPPED=()
for b in "${BENCHES[@]}"; do
  if has_target "$b"; then TO_BUILD+=("$b"); else SKIPPED+=("$b"); fi
done
if ((!QUICK)); then
  if has_target nodegate; then TO_BUILD+=(nodegate); fi
fi
if ((${#TO_BUILD[@]})); then
  cmake --build "$BUILD_DIR" -j"$(nproc)" --target "${TO_BUILD[@]}" || die "build failed"
fi
for b in "${SKIPPED[@]}"; do
  echo "note: $b skipped: no such CMake target yet (bench/CMakeLists.txt)"
done

GB_ARGS=()
if ((QUICK)); then
  GB_ARGS+=(--benchmark_min_time=0.01 --benchmark_repetitions=1)
else
  GB_ARGS+=(--benchmark_repetitions=5 --benchmark_report_aggregates_only=true)
fi
if [[ -n $FILTER ]]; then GB_ARGS+=("--benchmark_filter=$FILTER"); fi

PIN_CMD=()
if ((PIN)) && command -v taskset >/dev/null && (($(nproc) >= 2)); then
  PIN_CMD=(taskset -c 1)
fi

RESULTS="$BUILD_DIR/bench-results"
mkdir -p "$RESULTS"
FAILED=()
for b in "${BENCHES[@]}"; do
  bin="$BUILD_DIR/bench/$b"
  [[ " ${SKIPPED[*]} " == *" $b "* ]] && continue
  if [[ ! -x $bin ]]; then
    echo "note: $b skipped: target exists but $bin was not built"
    continue
  fi
  run=("${PIN_CMD[@]}" "$bin")
  if [[ $b == health_bench ]]; then
    # Engine and responder processes that each need a core: not pinned. Its
    # smoke size is chosen by the environment (one iteration is one measured window).
    run=(env "NG_HEALTH_BENCH_QUICK=$QUICK" "$bin")
  fi
  echo
  echo "== $b ${GB_ARGS[*]}"
  if ! "${run[@]}" "${GB_ARGS[@]}" \
      --benchmark_out="$RESULTS/$b.json" --benchmark_out_format=json; then
    FAILED+=("$b")
  fi
done

if ((QUICK)); then
  echo
  echo "note: data-plane benchmark (scripts/bench-dataplane.sh) skipped in --quick mode"
else
  echo
  echo "== scripts/bench-dataplane.sh --seconds $DP_SECONDS --build $BUILD_DIR"
  "$REPO/scripts/bench-dataplane.sh" --seconds "$DP_SECONDS" --build "$BUILD_DIR" ||
    FAILED+=(bench-dataplane)
  echo
  echo "== scripts/bench-dataplane.sh --seconds $DP_SECONDS --workers 2 --build $BUILD_DIR"
  "$REPO/scripts/bench-dataplane.sh" --seconds "$DP_SECONDS" --workers 2 --build "$BUILD_DIR" ||
    FAILED+=(bench-dataplane-2-workers)
fi

echo
if ((${#FAILED[@]})); then
  die "failed: ${FAILED[*]}"
fi
echo "bench: done (JSON in $RESULTS)"
