#!/usr/bin/env bash
# Fuzzes the packet path (test/fuzz/packet_fuzz.cc) for a bounded time.
#
# Configures a separate build tree with clang, ASan + UBSan and libFuzzer coverage on the
# whole tree (the main build stays GCC), builds only packet_fuzz and make_corpus,
# regenerates the seeds from the packet fixtures into BUILD/fuzz-seeds, and runs
# libFuzzer over BUILD/fuzz-corpus (kept and grown across runs) plus the seeds.
#
# Usage: scripts/fuzz.sh [--seconds N] [--build DIR] [--jobs J]
#   --seconds N  fuzzing time (default 60)
#   --build DIR  build tree (default build-fuzz/ in the repository)
#   --jobs J     parallel build jobs (default: nproc); the fuzzer itself is one process
# Exit code: 0 when the run ends clean; libFuzzer's (non-zero) on a crash, sanitizer
# report, invariant violation, timeout or OOM. The log is BUILD/fuzz.log; findings go to
# BUILD/fuzz-artifacts/ (reproduce with: BUILD/test/fuzz/packet_fuzz FILE).
# Environment, passed to the fuzzer: NG_FUZZ_RESET_EVERY (test/fuzz/README.md).
set -euo pipefail

# Everything in a function, read whole before it runs: bash reads a script as it goes,
# and an edit to this file during a long run would otherwise run whatever lands at the
# old offset.
main() {
  repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
  seconds=60
  build_dir="$repo/build-fuzz"
  jobs="$(nproc)"

  usage() { sed -n 's/^# \{0,1\}//; 9,12p' "${BASH_SOURCE[0]}"; }
  while (($# > 0)); do
    case "$1" in
      --seconds) seconds="${2:?--seconds needs a value}"; shift 2 ;;
      --build) build_dir="${2:?--build needs a value}"; shift 2 ;;
      --jobs) jobs="${2:?--jobs needs a value}"; shift 2 ;;
      -h | --help) usage; exit 0 ;;
      *) echo "fuzz.sh: unknown argument '$1'" >&2; usage >&2; exit 2 ;;
    esac
  done
  [[ "$seconds" =~ ^[0-9]+$ && "$jobs" =~ ^[0-9]+$ ]] || { echo "fuzz.sh: --seconds and --jobs take numbers" >&2; exit 2; }
  mkdir -p "$build_dir"
  build_dir="$(cd "$build_dir" && pwd)"

  log() { printf '[fuzz] %s\n' "$*"; }
  start=$SECONDS

  "$repo/scripts/install-deps.sh"

  # Sanitizers and coverage on everything the fuzzer links (ASan, UBSan fatal on the first
  # report, libstdc++ bounds assertions, assert() kept); -fsanitize=fuzzer (libFuzzer's
  # main) is added to packet_fuzz alone by test/fuzz/CMakeLists.txt.
  flags="-fsanitize=address,undefined -fno-sanitize-recover=undefined -fsanitize=fuzzer-no-link"
  flags+=" -fno-omit-frame-pointer -D_GLIBCXX_ASSERTIONS"
  log "configure $build_dir (clang, ASan + UBSan, libFuzzer)"
  CC=clang CXX=clang++ cmake -S "$repo" -B "$build_dir" \
    -DCMAKE_BUILD_TYPE=RelWithDebInfo \
    -DCMAKE_CXX_FLAGS_RELWITHDEBINFO="-O1 -g" \
    -DCMAKE_CXX_FLAGS="$flags" \
    -DNG_BUILD_TESTS=ON -DNG_BUILD_BENCH=OFF -DNG_FUZZ=ON >"$build_dir/configure.log" 2>&1 || {
    cat "$build_dir/configure.log" >&2
    exit 1
  }

  log "build packet_fuzz make_corpus with -j$jobs"
  cmake --build "$build_dir" -j"$jobs" --target packet_fuzz make_corpus

  seeds="$build_dir/fuzz-seeds"
  corpus="$build_dir/fuzz-corpus"
  artifacts="$build_dir/fuzz-artifacts"
  rm -rf "$seeds"
  mkdir -p "$corpus" "$artifacts"
  "$build_dir/test/fuzz/make_corpus" "$seeds"
  log "built and seeded in $((SECONDS - start)) s; corpus has $(find "$corpus" -type f | wc -l) inputs"

  fuzz_log="$build_dir/fuzz.log"
  log "run packet_fuzz for $seconds s (log: $fuzz_log)"
  # -max_total_time bounds the run; the outer timeout (SIGINT: libFuzzer still prints its
  # stats) only guards against a hang outside libFuzzer's own per-input -timeout.
  set +e
  timeout --signal=INT --kill-after=30 $((seconds + 300)) \
    "$build_dir/test/fuzz/packet_fuzz" \
    -max_total_time="$seconds" -max_len=4096 -timeout=10 -rss_limit_mb=4096 \
    -print_final_stats=1 -artifact_prefix="$artifacts/" \
    "$corpus" "$seeds" >"$fuzz_log" 2>&1
  rc=$?
  set -e

  final="$(grep -E '^#[0-9]+' "$fuzz_log" | tail -n 1 || true)"
  execs="$(sed -n 's/^stat::number_of_executed_units: *//p' "$fuzz_log" | tail -n 1)"
  if ((rc != 0)); then
    log "FAILED: packet_fuzz exited with $rc; last lines of $fuzz_log:"
    # The report starts at the sanitizer's or the harness's banner; show from there.
    first="$(grep -n -m1 -E '^==[0-9]+==|INVARIANT VIOLATED|runtime error:|deadly signal|ALARM|out-of-memory' "$fuzz_log" | cut -d: -f1 || true)"
    if [[ -n "$first" ]]; then
      tail -n +"$((first > 5 ? first - 5 : 1))" "$fuzz_log" | head -n 200
    else
      tail -n 60 "$fuzz_log"
    fi
    grep -E 'Test unit written to|replay with:' "$fuzz_log" | sed 's/^/[fuzz] artifact: /' || true
    log "reproduce with: $build_dir/test/fuzz/packet_fuzz <artifact>"
  fi
  log "final: ${final:-none}"
  log "executions: ${execs:-unknown}"
  log "corpus: $(find "$corpus" -type f | wc -l) inputs; total time $((SECONDS - start)) s"
  exit "$rc"
}

main "$@"
