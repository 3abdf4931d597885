// Per-packet cost of the forwarding pipeline (parse -> classify -> flow lookup or
// Maglev + SNAT + insert -> rewrite), without DPDK, on the fixture topology
// (test/dataplane/fwd/fixtures.h). Reports ns and TSC cycles per packet.
//
// Each iteration restores the frame from a pristine copy (a 60-byte memcpy) because the
// pipeline rewrites it in place; BM_CopyOnly measures that copy so it can be subtracted.

#include <benchmark/benchmark.h>
#include <x86intrin.h>

#include <cstring>
#include <memory>
#include <vector>

#include "dataplane/fwd/processor.h"
#include "dataplane/pkt/headers.h"
#include "dataplane/pkt/parse.h"
#include "test/dataplane/fwd/fixtures.h"

namespace {

using namespace ng;
using test::Bytes;

// Distinct client frames: source address and port vary so every frame is its own flow.
std::vector<Bytes> clientFrames(size_t n, uint8_t flags) {
  std::vector<Bytes> frames;
  frames.reserve(n);
  for (size_t i = 0; i < n; ++i) {
    const uint32_t src = test::ip("10.100.0.2") + static_cast<uint32_t>((i >> 14) << 8);  // other /24s via gateway-less on-link range
    frames.push_back(test::PacketBuilder()
                         .eth(test::Topo::clientMac(), test::Topo::extMac())
                         .ipv4(src, test::Topo::vip())
                         .tcp(static_cast<uint16_t>(1024 + (i & 0x3fff)), 80, flags)
                         .build());
  }
  return frames;
}

void reportCycles(benchmark::State& state, uint64_t cycles) {
  state.counters["cycles_per_pkt"] = benchmark::Counter(static_cast<double>(cycles), benchmark::Counter::kAvgIterations);
  state.SetItemsProcessed(state.iterations());
}

struct Pipeline {
  test::Env env = test::makeEnv();
  std::unique_ptr<fwd::WorkerContext> ctx;
  explicit Pipeline(uint32_t capacity) {
    env.ports[0].prefix_len = 8;  // every benchmark client is on-link: no gateway needed
    // One SNAT address holds ~64k ports per node; a million flows over 3 nodes need more.
    for (uint32_t a = 0; a < 16; ++a) env.snapshot->snat_addresses.push_back(test::ip("10.200.0.200") + a);
    ctx = std::make_unique<fwd::WorkerContext>(0, env.ports, capacity);
    fwd::onSnapshot(*ctx, *env.snapshot, 0);
  }
};

// Established flow: ACKs of `range(0)` flows that a SYN created beforehand.
void BM_EstablishedFlow(benchmark::State& state) {
  const auto flows = static_cast<size_t>(state.range(0));
  Pipeline p(static_cast<uint32_t>(flows * 2));
  for (Bytes& syn : clientFrames(flows, pkt::tcp::kSyn)) {
    if (fwd::processFrame(*p.ctx, *p.env.snapshot, test::kExt, syn, 1).kind != fwd::Action::Kind::kForward) {
      state.SkipWithError("SYN not forwarded during set-up");
      return;
    }
  }
  const std::vector<Bytes> acks = clientFrames(flows, pkt::tcp::kAckFlag);
  Bytes frame(acks[0].size());
  size_t i = 0;
  uint64_t cycles = 0;
  for (auto _ : state) {
    const Bytes& src = acks[i];
    i = i + 1 == flows ? 0 : i + 1;
    std::memcpy(frame.data(), src.data(), src.size());
    const uint64_t t0 = __rdtsc();
    const fwd::Action a = fwd::processFrame(*p.ctx, *p.env.snapshot, test::kExt, frame, 2);
    cycles += __rdtsc() - t0;
    benchmark::DoNotOptimize(a);
  }
  if (p.ctx->counters.new_flows.get() != flows) state.SkipWithError("ACKs created flows");
  reportCycles(state, cycles);
  state.counters["flows"] = static_cast<double>(flows);
}
BENCHMARK(BM_EstablishedFlow)->Arg(4096)->Arg(1 << 20);

// New flow: a SYN per iteration (Maglev choice, SNAT port, two-key insert). The table is
// recreated, outside the timing, each time a batch of distinct flows is used up.
void BM_NewFlow(benchmark::State& state) {
  constexpr size_t kBatch = 65536;
  const std::vector<Bytes> syns = clientFrames(kBatch, pkt::tcp::kSyn);
  auto p = std::make_unique<Pipeline>(static_cast<uint32_t>(kBatch));
  Bytes frame(syns[0].size());
  size_t i = 0;
  uint64_t cycles = 0;
  for (auto _ : state) {
    if (i == kBatch) {
      state.PauseTiming();
      p = std::make_unique<Pipeline>(static_cast<uint32_t>(kBatch));
      i = 0;
      state.ResumeTiming();
    }
    std::memcpy(frame.data(), syns[i].data(), syns[i].size());
    ++i;
    const uint64_t t0 = __rdtsc();
    const fwd::Action a = fwd::processFrame(*p->ctx, *p->env.snapshot, test::kExt, frame, 1);
    cycles += __rdtsc() - t0;
    benchmark::DoNotOptimize(a);
  }
  uint64_t drops = 0;
  for (const auto& d : p->ctx->counters.drops) drops += d.get();
  if (drops != 0) state.SkipWithError("SYNs were dropped");
  reportCycles(state, cycles);
}
BENCHMARK(BM_NewFlow);

// The node's reply on an established flow (reverse lookup + restore).
void BM_ReplyToClient(benchmark::State& state) {
  Pipeline p(8192);
  p.ctx->neighbors.learn(test::Topo::clientIp(), test::Topo::clientMac(), 0);
  Bytes syn = test::clientTcp(40000, pkt::tcp::kSyn);
  (void)fwd::processFrame(*p.ctx, *p.env.snapshot, test::kExt, syn, 1);
  const pkt::ParsedFrame out = pkt::parseFrame(syn).frame;
  const Bytes reply = test::nodeTcp(out.dst_ip, out.src_port, pkt::tcp::kAckFlag);
  Bytes frame(reply.size());
  uint64_t cycles = 0;
  for (auto _ : state) {
    std::memcpy(frame.data(), reply.data(), reply.size());
    const uint64_t t0 = __rdtsc();
    const fwd::Action a = fwd::processFrame(*p.ctx, *p.env.snapshot, test::kInt, frame, 2);
    cycles += __rdtsc() - t0;
    benchmark::DoNotOptimize(a);
  }
  if (p.ctx->counters.to_clients.get() == 0) state.SkipWithError("reply not forwarded");
  reportCycles(state, cycles);
}
BENCHMARK(BM_ReplyToClient);

void BM_CopyOnly(benchmark::State& state) {
  const Bytes src = test::clientTcp(40000, pkt::tcp::kAckFlag);
  Bytes frame(src.size());
  for (auto _ : state) {
    std::memcpy(frame.data(), src.data(), src.size());
    benchmark::DoNotOptimize(frame.data());
    benchmark::ClobberMemory();
  }
}
BENCHMARK(BM_CopyOnly);

}  // namespace

BENCHMARK_MAIN();
