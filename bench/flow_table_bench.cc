// Per-worker flow table: the per-packet operations.
//   flow_table_bench --benchmark_repetitions=5 --benchmark_report_aggregates_only=true
// Tables are filled to capacity - 1 (index load factor ~1/2, the worst the table
// allows) with established flows; keys are visited in random order so the 1M case pays
// the cache misses real traffic does. Setup (filling the table, making keys) is outside
// the timed loop and shared between runs of the same size.

#include <benchmark/benchmark.h>

#include <time.h>

#include <algorithm>
#include <map>
#include <memory>
#include <random>
#include <vector>

#include "dataplane/lb/flow_table.h"

namespace {

using ng::lb::FlowKey;
using ng::lb::FlowState;
using ng::lb::FlowTable;

constexpr uint8_t kTcp = 6;

struct Fixture {
  std::unique_ptr<FlowTable> table;
  std::vector<FlowKey> hits;   // client and node keys of the flows in the table, shuffled
  std::vector<FlowKey> misses;
  std::vector<std::pair<FlowKey, FlowKey>> fresh;  // not in the table

  explicit Fixture(uint32_t capacity) : table(std::make_unique<FlowTable>(capacity)) {
    std::mt19937_64 rng(capacity);
    auto client = [&] {
      return FlowKey{.src_ip = static_cast<uint32_t>(rng()), .dst_ip = 0xcb007101,
                     .src_port = static_cast<uint16_t>(rng()), .dst_port = 443, .proto = kTcp};
    };
    auto node = [&] {
      // 100 nodes, 4 SNAT addresses: what a busy fullnat worker holds.
      return FlowKey{.src_ip = 0x0a000100 + static_cast<uint32_t>(rng() % 100),
                     .dst_ip = 0x0a0000f0 + static_cast<uint32_t>(rng() % 4), .src_port = 30443,
                     .dst_port = static_cast<uint16_t>(1024 + rng() % 64512), .proto = kTcp};
    };
    while (table->size() + 1 < capacity) {
      const FlowKey c = client();
      const FlowKey n = node();
      if (table->insert(c, n, FlowState::kTcpEstablished, 0) != nullptr) {
        hits.push_back(c);
        hits.push_back(n);
      }
    }
    std::shuffle(hits.begin(), hits.end(), rng);
    constexpr size_t kProbeKeys = 1 << 16;
    while (misses.size() < kProbeKeys) {
      FlowKey k = client();
      k.dst_port = 80;  // another service port: never in the table
      misses.push_back(k);
    }
    while (fresh.size() < kProbeKeys) {
      const FlowKey c = client();
      const FlowKey n = node();
      if (!table->contains(c) && !table->contains(n)) fresh.emplace_back(c, n);
    }
  }
};

Fixture& fixture(uint32_t capacity) {
  static std::map<uint32_t, std::unique_ptr<Fixture>> cache;
  auto& f = cache[capacity];
  if (!f) f = std::make_unique<Fixture>(capacity);
  return *f;
}

// CPU time of this thread in ns: the machine is shared, so wall time measures the
// neighbours too. A plain number (not a rate counter) so the console and JSON agree.
double threadCpuNs() {
  timespec ts{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) * 1e9 + static_cast<double>(ts.tv_nsec);
}

void report(benchmark::State& state, const Fixture& f, double start_ns) {
  state.counters["ns_per_op"] =
      (threadCpuNs() - start_ns) / static_cast<double>(state.iterations());
  state.counters["bytes_per_flow"] = static_cast<double>(f.table->bytesPerFlow());
  state.counters["flows"] = f.table->size();
}

void BM_LookupHitEstablished(benchmark::State& state) {
  Fixture& f = fixture(static_cast<uint32_t>(state.range(0)));
  const size_t n = f.hits.size();
  size_t i = 0;
  const double start = threadCpuNs();
  for (auto _ : state) {
    auto hit = f.table->lookup(f.hits[i]);
    if (++i == n) i = 0;
    benchmark::DoNotOptimize(hit);
  }
  report(state, f, start);
}

void BM_LookupMiss(benchmark::State& state) {
  Fixture& f = fixture(static_cast<uint32_t>(state.range(0)));
  const size_t mask = f.misses.size() - 1;
  size_t i = 0;
  const double start = threadCpuNs();
  for (auto _ : state) {
    auto hit = f.table->lookup(f.misses[i++ & mask]);
    benchmark::DoNotOptimize(hit);
  }
  report(state, f, start);
}

// One new flow and its removal (the SYN of a short connection and its expiry); the
// table returns to the same occupancy every iteration.
void BM_InsertErase(benchmark::State& state) {
  Fixture& f = fixture(static_cast<uint32_t>(state.range(0)));
  const size_t mask = f.fresh.size() - 1;
  size_t i = 0;
  const double start = threadCpuNs();
  for (auto _ : state) {
    const auto& [c, n] = f.fresh[i++ & mask];
    ng::lb::Flow* flow = f.table->insert(c, n, FlowState::kTcpSynSent, 0);
    benchmark::DoNotOptimize(flow);
    f.table->erase(flow);
  }
  report(state, f, start);
}

constexpr int64_t k4k = 4096;
constexpr int64_t k1M = 1 << 20;
BENCHMARK(BM_LookupHitEstablished)->Arg(k4k)->Arg(k1M);
BENCHMARK(BM_LookupMiss)->Arg(k4k)->Arg(k1M);
BENCHMARK(BM_InsertErase)->Arg(k4k)->Arg(k1M);

}  // namespace

BENCHMARK_MAIN();
