// Maglev table compilation (control path): build time and churn.
//   maglev_bench --benchmark_repetitions=5 --benchmark_report_aggregates_only=true
// Build time is the number DESIGN.md budgets (a config update recompiles every
// Service's table); slots moved is the churn a node removal causes (STYLE.md example 8).

#include <benchmark/benchmark.h>

#include <time.h>

#include <cstdint>
#include <vector>

#include "dataplane/lb/maglev.h"

namespace {

using ng::lb::kDefaultMaglevSize;
using ng::lb::MaglevBackend;
using ng::lb::MaglevTable;

// CPU time of this thread: the machine is shared, so wall time measures the neighbours
// too. A plain number (not a rate counter) so the console and the JSON agree on units.
double threadCpuSeconds() {
  timespec ts{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) * 1e-9;
}

std::vector<MaglevBackend> nodes(int64_t n) {
  std::vector<MaglevBackend> b;
  // Ids shaped like node IPv4 addresses (10.0.x.y), as the compiler passes them.
  for (int64_t i = 0; i < n; ++i) b.push_back({.id = 0x0a000001u + static_cast<uint64_t>(i)});
  return b;
}

void BM_MaglevBuild(benchmark::State& state) {
  const auto backends = nodes(state.range(0));
  const double start = threadCpuSeconds();
  for (auto _ : state) {
    auto table = MaglevTable::build(backends, kDefaultMaglevSize);
    benchmark::DoNotOptimize(table.slots().data());
  }
  state.counters["ms_per_build"] =
      (threadCpuSeconds() - start) * 1e3 / static_cast<double>(state.iterations());
  state.counters["backends"] = static_cast<double>(state.range(0));
  state.counters["table_size"] = kDefaultMaglevSize;
}
BENCHMARK(BM_MaglevBuild)->Arg(10)->Arg(100)->Arg(1000)->Unit(benchmark::kMillisecond);

// Removing one node of N: the timed part is recompiling the table and measuring the
// churn, as the compiler does on a node deletion; the counters are the argued-about
// numbers (ideal = M/N slots, i.e. 100/N percent).
void BM_MaglevRemoveOne(benchmark::State& state) {
  const int64_t n = state.range(0);
  const auto before = nodes(n);
  auto after = before;
  after.erase(after.begin() + n / 2);
  const auto old_table = MaglevTable::build(before, kDefaultMaglevSize);
  uint32_t moved = 0;
  for (auto _ : state) {
    const auto new_table = MaglevTable::build(after, kDefaultMaglevSize);
    moved = MaglevTable::slotsMoved(old_table, before, new_table, after);
    benchmark::DoNotOptimize(moved);
  }
  const double ideal = static_cast<double>(kDefaultMaglevSize) / static_cast<double>(n);
  state.counters["slots_moved"] = moved;
  state.counters["percent_moved"] = 100.0 * moved / kDefaultMaglevSize;
  state.counters["ratio_to_ideal"] = moved / ideal;
}
BENCHMARK(BM_MaglevRemoveOne)->Arg(10)->Arg(100)->Arg(1000)->Unit(benchmark::kMillisecond);

}  // namespace

BENCHMARK_MAIN();
