// Control-plane reconciliation: how long the control thread takes to turn the whole
// model (Services x nodes, health verdicts) into a new generation.
//   control_bench --benchmark_repetitions=5 --benchmark_report_aggregates_only=true
// BM_Reconcile/S/N: S Services (one TCP port each) over N nodes, every node serving, from
// a compiler that has seen the same model before (Maglev tables reused, stats ids kept):
// the cost of a reload or a health change that does not move any node.
// BM_ReconcileOneServiceChanged: the same, after one Service's node set changed (one
// Maglev table built). BM_StatusView: the /v1/vips document for that model.
// Reported: ms per reconcile (CPU time of this thread; the machine is shared).

#include <benchmark/benchmark.h>

#include <time.h>

#include <string>

#include "conf/config.h"
#include "control/compiler.h"

namespace {

double threadCpuSeconds() {
  timespec ts{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) * 1e-9;
}

// S Services on VIPs 10.128.x.y:80 -> nodePort 30000 + s % 2000, over N nodes 10.200.x.y.
ng::conf::Config model(int64_t services, int64_t nodes) {
  ng::conf::Config cfg;
  cfg.dataplane.snat.addresses = {0x0ac80001u};
  cfg.health.cluster_probe = ng::conf::ClusterProbe::kKubeProxy;
  for (int64_t n = 0; n < nodes; ++n) {
    cfg.nodes.push_back({.name = "node-" + std::to_string(n), .addresses = {0x0ac80100u + static_cast<uint32_t>(n)}});
  }
  for (int64_t s = 0; s < services; ++s) {
    cfg.services.push_back({.namespace_name = "bench",
                            .name = "svc-" + std::to_string(s),
                            .vips = {0x0a800000u + static_cast<uint32_t>(s)},
                            .ports = {{.name = "http", .protocol = ng::conf::Protocol::kTcp, .port = 80,
                                       .node_port = static_cast<uint16_t>(30000 + s % 2000)}}});
  }
  return cfg;
}

void BM_Reconcile(benchmark::State& state) {
  const auto cfg = model(state.range(0), state.range(1));
  ng::control::SnapshotCompiler compiler;
  uint64_t generation = 1;
  (void)compiler.compile(cfg, generation++);  // warm: tables and ids exist
  const double start = threadCpuSeconds();
  for (auto _ : state) {
    auto snapshot = compiler.compile(cfg, generation++);
    benchmark::DoNotOptimize(snapshot.get());
  }
  state.counters["ms_per_reconcile"] = (threadCpuSeconds() - start) * 1e3 / static_cast<double>(state.iterations());
  state.counters["service_ports"] = static_cast<double>(compiler.lastStats().service_ports);
}
BENCHMARK(BM_Reconcile)->Args({2000, 300})->Args({10000, 30})->Args({10000, 300})->Unit(benchmark::kMillisecond);

void BM_ReconcileOneServiceChanged(benchmark::State& state) {
  auto cfg = model(state.range(0), state.range(1));
  ng::control::SnapshotCompiler compiler;
  uint64_t generation = 1;
  (void)compiler.compile(cfg, generation++);
  // Service 0 alternates between all nodes and all but the last: a new node set each
  // time, so exactly one Maglev table is built per reconcile.
  std::vector<std::string> subset;
  for (int64_t n = 0; n + 1 < state.range(1); ++n) subset.push_back("node-" + std::to_string(n));
  bool narrow = false;
  const double start = threadCpuSeconds();
  for (auto _ : state) {
    narrow = !narrow;
    cfg.services[0].node_names = narrow ? subset : std::vector<std::string>{};
    auto snapshot = compiler.compile(cfg, generation++);
    benchmark::DoNotOptimize(snapshot.get());
  }
  state.counters["ms_per_reconcile"] = (threadCpuSeconds() - start) * 1e3 / static_cast<double>(state.iterations());
  state.counters["tables_built"] = compiler.lastStats().maglev_built;
}
BENCHMARK(BM_ReconcileOneServiceChanged)->Args({10000, 30})->Args({10000, 300})->Unit(benchmark::kMillisecond);

}  // namespace

BENCHMARK_MAIN();
