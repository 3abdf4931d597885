// Per-packet cost of the forwarding pipeline (parse -> classify -> flow lookup or
// Maglev + SNAT + insert -> rewrite), without DPDK, on the fixture topology
// (test/dataplane/fwd/fixtures.h). Reports ns and TSC cycles per packet.
//
// Each iteration restores the frame from a pristine copy (a 60-byte memcpy) because the
// pipeline rewrites it in place; BM_CopyOnly measures that copy so it can be subtracted.

#include <benchmark/benchmark.h>
#include <x86intrin.h>

#include <algorithm>
#include <array>
#include <cstring>
#include <memory>
#include <vector>

#include "dataplane/fwd/processor.h"
#include "dataplane/pkt/bytes.h"
#include "dataplane/pkt/headers.h"
#include "dataplane/pkt/ip6.h"
#include "dataplane/pkt/parse.h"
#include "test/dataplane/fwd/fixtures.h"

namespace {

using namespace ng;
using test::Bytes;

// Distinct client frames: source address and port vary so every frame is its own flow.
// `tunnel`: to the fixtures' tunnel-mode VIP, with DF set as Linux sends TCP. `first`:
// the number of the first flow, so two calls can make disjoint sets.
std::vector<Bytes> clientFrames(size_t n, uint8_t flags, bool tunnel = false, size_t first = 0) {
  std::vector<Bytes> frames;
  frames.reserve(n);
  // Parsed once: a million frames would otherwise parse these strings a million times.
  const uint32_t client = test::ip("10.100.0.2");
  const uint32_t vip = tunnel ? test::Topo::tunnelVip() : test::Topo::vip();
  const pkt::Mac client_mac = test::Topo::clientMac();
  const pkt::Mac ext_mac = test::Topo::extMac();
  for (size_t i = first; i < first + n; ++i) {
    const uint32_t src = client + static_cast<uint32_t>((i >> 14) << 8);  // other /24s via gateway-less on-link range
    frames.push_back(test::PacketBuilder()
                         .eth(client_mac, ext_mac)
                         .ipv4(src, vip)
                         .ipFrag(tunnel ? 0x4000 : 0)
                         .tcp(static_cast<uint16_t>(1024 + (i & 0x3fff)), 80, flags)
                         .build());
  }
  return frames;
}

// A frame behind mbuf-like headroom, for tunnel mode's outer header.
constexpr size_t kHeadroom = 128;

void reportCycles(benchmark::State& state, uint64_t cycles) {
  state.counters["cycles_per_pkt"] = benchmark::Counter(static_cast<double>(cycles), benchmark::Counter::kAvgIterations);
  state.SetItemsProcessed(state.iterations());
}

// IPv6 twin: distinct client addresses in the client's /64 (on-link), ports vary too.
std::vector<Bytes> clientFrames6(size_t n, uint8_t flags, bool tunnel = false, size_t first = 0) {
  std::vector<Bytes> frames;
  frames.reserve(n);
  const pkt::Ip6 client = test::Topo6::clientIp();
  const pkt::Ip6 vip = tunnel ? test::Topo6::tunnelVip() : test::Topo6::vip();
  const pkt::Mac client_mac = test::Topo::clientMac();
  const pkt::Mac ext_mac = test::Topo::extMac();
  for (size_t i = first; i < first + n; ++i) {
    pkt::Ip6 src = client;
    src.lo += (i >> 14) << 8;
    frames.push_back(test::PacketBuilder()
                         .eth(client_mac, ext_mac)
                         .ipv6(src, vip)
                         .tcp(static_cast<uint16_t>(1024 + (i & 0x3fff)), 80, flags)
                         .build());
  }
  return frames;
}

struct Pipeline {
  test::Env env = test::makeEnv();
  std::unique_ptr<fwd::WorkerContext> ctx;
  // `capacity6`: IPv6 flows (0 = the WorkerContext default share).
  explicit Pipeline(uint32_t capacity, uint32_t half_open_budget_percent = 25, uint32_t capacity6 = 0) {
    env.snapshot->half_open_budget_percent = half_open_budget_percent;
    env.ports[0].prefix_len = 8;  // every benchmark client is on-link: no gateway needed
    // One SNAT address holds ~64k ports per node; a million flows over 3 nodes need more.
    for (uint32_t a = 0; a < 16; ++a) env.snapshot->snat_addresses.push_back(test::ip("10.200.0.200") + a);
    for (uint32_t a = 0; a < 16; ++a) {
      pkt::Ip6 snat = test::ip6("2001:db8:200::200");
      snat.lo += a;
      env.snapshot->snat_addresses6.push_back(snat);
    }
    ctx = std::make_unique<fwd::WorkerContext>(0, env.ports, capacity, 0, fwd::kBackendStatsCapacity, capacity6);
    fwd::onSnapshot(*ctx, *env.snapshot, 0);
  }
};

// Creates one flow per SYN/ACK pair: the SYN, then its ACK, so each flow is established
// before the next SYN and set-up never meets the half-open budget. Each frame is copied
// behind kHeadroom bytes (tunnel mode writes its outer header there). `node_of`, when
// given, receives each flow's node address (IPv4: the ACK's rewritten destination).
// False, with the benchmark marked failed, when a frame is not forwarded.
bool establish(benchmark::State& state, Pipeline& p, const std::vector<Bytes>& syns, const std::vector<Bytes>& acks,
               uint32_t now_ms = 1, std::vector<uint32_t>* node_of = nullptr) {
  Bytes buffer(kHeadroom + std::max(syns[0].size(), acks[0].size()));
  for (size_t f = 0; f < syns.size(); ++f) {
    for (const Bytes* src : {&syns[f], &acks[f]}) {
      const std::span<std::byte> frame(buffer.data() + kHeadroom, src->size());
      std::memcpy(frame.data(), src->data(), src->size());
      if (fwd::processFrame(*p.ctx, *p.env.snapshot, test::kExt, frame, now_ms, kHeadroom).kind !=
          fwd::Action::Kind::kForward) {
        state.SkipWithError("SYN/ACK not forwarded during set-up");
        return false;
      }
    }
    if (node_of != nullptr) {
      (*node_of)[f] = pkt::load32(buffer.data() + kHeadroom + 14 + pkt::ipv4::kDst);
    }
  }
  // What the worker's slow ticks do between packets (expiry, which also finishes a growth
  // of the flow index that the last inserts started): nothing idles long enough to go.
  (void)p.ctx->flows.expire(now_ms, UINT32_MAX, p.env.snapshot->timeouts);
  (void)p.ctx->flows6.expire(now_ms, UINT32_MAX, p.env.snapshot->timeouts);
  return true;
}

// The timed loop of the established-flow benchmarks: per iteration one ACK of the flows
// `acks` belong to (established beforehand), round robin, copied behind kHeadroom; TSC
// cycles around the call. Fails the benchmark if an ACK created a flow, or, with
// `tunnel`, if a frame left without encapsulation.
void timeEstablished(benchmark::State& state, Pipeline& p, const std::vector<Bytes>& acks, bool tunnel) {
  const size_t flows = acks.size();
  Bytes buffer(kHeadroom + acks[0].size());
  const std::span<std::byte> frame(buffer.data() + kHeadroom, acks[0].size());
  size_t i = 0;
  uint64_t cycles = 0;
  for (auto _ : state) {
    const Bytes& src = acks[i];
    i = i + 1 == flows ? 0 : i + 1;
    std::memcpy(frame.data(), src.data(), src.size());
    const uint64_t t0 = __rdtsc();
    const fwd::Action a = fwd::processFrame(*p.ctx, *p.env.snapshot, test::kExt, frame, 2, kHeadroom);
    cycles += __rdtsc() - t0;
    benchmark::DoNotOptimize(a);
  }
  if (p.ctx->counters.new_flows.get() != flows) state.SkipWithError("ACKs created flows");
  if (tunnel && p.ctx->counters.tunneled.get() != p.ctx->counters.to_nodes.get()) {
    state.SkipWithError("not every frame tunnelled");
  }
  reportCycles(state, cycles);
  state.counters["flows"] = static_cast<double>(flows);
}

// Established flow: ACKs of `range(0)` flows that a SYN created beforehand.
void BM_EstablishedFlow(benchmark::State& state) {
  const auto flows = static_cast<size_t>(state.range(0));
  Pipeline p(static_cast<uint32_t>(flows * 2));
  const std::vector<Bytes> acks = clientFrames(flows, pkt::tcp::kAckFlag);
  if (!establish(state, p, clientFrames(flows, pkt::tcp::kSyn), acks)) return;
  timeEstablished(state, p, acks, /*tunnel=*/false);
}
BENCHMARK(BM_EstablishedFlow)->Arg(4096)->Arg(1 << 20);

// The worker's path: bursts of fwd::kMaxBurst ACKs of `range(0)` established flows
// through fwd::processBurst (parse and hash the burst, prefetch index slots, then
// decide), each burst first copied into fresh buffers the way a PMD writes
// received frames. Per packet, copy included (BM_CopyOnly is one 60-byte copy).
// range(1), when given, is the flow table's capacity (default: twice the flows).
void BM_EstablishedBurst(benchmark::State& state) {
  constexpr size_t kBurst = fwd::kMaxBurst;
  const auto flows = static_cast<size_t>(state.range(0));
  Pipeline p(static_cast<uint32_t>(state.range(1) != 0 ? state.range(1) : flows * 2));
  const std::vector<Bytes> acks = clientFrames(flows, pkt::tcp::kAckFlag);
  if (!establish(state, p, clientFrames(flows, pkt::tcp::kSyn), acks)) return;
  const size_t len = acks[0].size();
  std::vector<std::byte> buffers(kBurst * 128);
  std::array<std::span<std::byte>, kBurst> frames;
  for (size_t k = 0; k < kBurst; ++k) frames[k] = std::span(buffers.data() + k * 128, len);
  std::array<fwd::Action, kBurst> actions;
  size_t i = 0;
  uint64_t forwarded = 0;
  for (auto _ : state) {
    for (size_t k = 0; k < kBurst; ++k) {
      std::memcpy(frames[k].data(), acks[i].data(), len);
      i = i + 1 == flows ? 0 : i + 1;
    }
    fwd::processBurst(*p.ctx, *p.env.snapshot, test::kExt, frames, actions, 2);
    for (const fwd::Action& a : actions) forwarded += a.kind == fwd::Action::Kind::kForward;
  }
  if (forwarded != state.iterations() * kBurst) state.SkipWithError("an ACK was not forwarded");
  if (p.ctx->counters.new_flows.get() != flows) state.SkipWithError("ACKs created flows");
  state.SetItemsProcessed(state.iterations() * kBurst);
  state.counters["ns_per_pkt"] = benchmark::Counter(static_cast<double>(state.iterations() * kBurst),
                                                    benchmark::Counter::kIsRate | benchmark::Counter::kInvert);
  state.counters["flows"] = static_cast<double>(flows);
}
// {4096, 1M}: a few thousand flows in a table of the default capacity, as on the
// data-plane benchmark's worker (the index in use follows the flows, not the capacity).
BENCHMARK(BM_EstablishedBurst)->Args({4096, 0})->Args({1 << 20, 0})->Args({4096, 1 << 20});

// Tunnel mode, established flow: ACKs of `range(0)` flows, each encapsulated (outer
// header written into the headroom, checksum computed) toward the flow's node.
void BM_TunnelEstablishedFlow(benchmark::State& state) {
  const auto flows = static_cast<size_t>(state.range(0));
  Pipeline p(static_cast<uint32_t>(flows * 2));
  const std::vector<Bytes> acks = clientFrames(flows, pkt::tcp::kAckFlag, true);
  if (!establish(state, p, clientFrames(flows, pkt::tcp::kSyn, true), acks)) return;
  timeEstablished(state, p, acks, /*tunnel=*/true);
}
BENCHMARK(BM_TunnelEstablishedFlow)->Arg(4096)->Arg(1 << 20);

// Established flows during a SYN flood: per iteration one ACK of one of `range(0)`
// established flows (timed: cycles_per_pkt) and `kFloodPerEstablished` SYNs from spoofed
// sources (timed apart: flood_cycles_per_syn). The table (capacity 4 x established, half-
// open budget 25 %) is allocated once; the flood churns through the half-open budget by
// evicting the oldest half-open flow. Fails if any established packet is not forwarded
// or goes to another node, or if the table ever holds more than its capacity.
void BM_EstablishedDuringSynFlood(benchmark::State& state) {
  constexpr size_t kFloodPerEstablished = 4;
  const auto flows = static_cast<size_t>(state.range(0));
  const auto capacity = static_cast<uint32_t>(flows * 4);
  // Distinct flood tuples, reused cyclically: 4x the half-open budget, so a tuple's
  // entry is always gone (evicted) when it comes round again - every flood SYN is new.
  const size_t spoofed = capacity;
  Pipeline p(capacity);
  const std::vector<Bytes> acks = clientFrames(flows, pkt::tcp::kAckFlag);
  std::vector<uint32_t> node_of(flows);
  if (!establish(state, p, clientFrames(flows, pkt::tcp::kSyn), acks, 1, &node_of)) return;
  // One flat buffer (a million small vectors would cost more than the table).
  const size_t len = acks[0].size();
  std::vector<std::byte> flood(spoofed * len);
  for (size_t i = 0; i < spoofed; ++i) {
    const Bytes f = test::PacketBuilder()
                        .eth(test::Topo::clientMac(), test::Topo::extMac())
                        .ipv4(test::ip("198.18.0.0") + static_cast<uint32_t>(i >> 2), test::Topo::vip())
                        .tcp(static_cast<uint16_t>(1024 + (i & 3)), 80, pkt::tcp::kSyn)
                        .build();
    if (f.size() != len) {
      state.SkipWithError("flood frame length");
      return;
    }
    std::memcpy(flood.data() + i * len, f.data(), len);
  }
  const uint64_t evictions_before = p.ctx->counters.half_open_evictions.get();
  Bytes frame(acks[0].size());
  size_t i = 0, j = 0;
  uint64_t cycles = 0, flood_cycles = 0, lost = 0, flood_dropped = 0;
  uint32_t max_flows = 0;
  for (auto _ : state) {
    for (size_t k = 0; k < kFloodPerEstablished; ++k) {
      std::memcpy(frame.data(), flood.data() + j * len, len);
      j = j + 1 == spoofed ? 0 : j + 1;
      const uint64_t t0 = __rdtsc();
      const fwd::Action a = fwd::processFrame(*p.ctx, *p.env.snapshot, test::kExt, frame, 2);
      flood_cycles += __rdtsc() - t0;
      flood_dropped += a.kind != fwd::Action::Kind::kForward;
    }
    max_flows = std::max(max_flows, p.ctx->flows.size());
    const Bytes& src = acks[i];
    std::memcpy(frame.data(), src.data(), src.size());
    const uint64_t t0 = __rdtsc();
    const fwd::Action a = fwd::processFrame(*p.ctx, *p.env.snapshot, test::kExt, frame, 2);
    cycles += __rdtsc() - t0;
    benchmark::DoNotOptimize(a);
    // Outside the timing: the packet went out, to the flow's node.
    lost += a.kind != fwd::Action::Kind::kForward || pkt::load32(frame.data() + 14 + pkt::ipv4::kDst) != node_of[i];
    i = i + 1 == flows ? 0 : i + 1;
  }
  if (lost != 0) state.SkipWithError("established packets lost during the flood");
  if (max_flows > capacity) state.SkipWithError("table above capacity");
  reportCycles(state, cycles);
  state.counters["flood_cycles_per_syn"] =
      benchmark::Counter(static_cast<double>(flood_cycles) / kFloodPerEstablished, benchmark::Counter::kAvgIterations);
  state.counters["established_lost"] = static_cast<double>(lost);
  state.counters["flood_syns_dropped"] = static_cast<double>(flood_dropped);
  state.counters["half_open_evictions"] =
      static_cast<double>(p.ctx->counters.half_open_evictions.get() - evictions_before);
  state.counters["half_open"] = static_cast<double>(p.ctx->flows.halfOpen());
  state.counters["max_flows"] = static_cast<double>(max_flows);
  state.counters["capacity"] = static_cast<double>(capacity);
  state.counters["table_MiB"] =
      static_cast<double>(p.ctx->flows.bytesPerFlow()) * capacity / (1024.0 * 1024.0);
}
BENCHMARK(BM_EstablishedDuringSynFlood)->Arg(4096)->Arg(1 << 18);

// What a new-flow benchmark sends: IPv4 or IPv6 SYNs, to the full-NAT or the tunnel-mode
// VIP, with `established` flows of the family already in the table.
struct NewFlowCase {
  bool ipv6 = false;
  bool tunnel = false;
  size_t established = 0;
};

// New flow: a SYN per iteration (Maglev choice, SNAT port and two-key insert; tunnel mode:
// client-key-only insert and encapsulation) from a client the table does not know. The
// family's table holds the established flows and one batch (capacity twice the former
// plus the latter); the other family's stays at its minimum. Between batches of 65536
// SYNs, outside the timing, the clock steps past the half-open timeout and one expiry
// lap removes the batch (releasing its SNAT ports), so every batch meets the same table.
// Budget 100 %: a batch fills its share of the table with half-open flows, and this
// measures the new-flow path, not the flood policy's evictions.
void newFlows(benchmark::State& state, NewFlowCase c) {
  constexpr size_t kBatch = 65536;
  const auto capacity = static_cast<uint32_t>(c.established * 2 + kBatch);
  Pipeline p(c.ipv6 ? 1024 : capacity, 100, c.ipv6 ? capacity : 1024);
  p.env.snapshot->timeouts.tcp_half_open_ms = 1000;
  p.env.snapshot->timeouts.tcp_established_ms = UINT32_MAX / 2;  // never within the run
  const auto frames = [&](size_t n, uint8_t flags, size_t first) {
    return c.ipv6 ? clientFrames6(n, flags, c.tunnel, first) : clientFrames(n, flags, c.tunnel, first);
  };
  const auto table_size = [&] { return c.ipv6 ? p.ctx->flows6.size() : p.ctx->flows.size(); };
  uint32_t now_ms = 1;
  if (c.established != 0 &&
      !establish(state, p, frames(c.established, pkt::tcp::kSyn, 0), frames(c.established, pkt::tcp::kAckFlag, 0),
                 now_ms)) {
    return;
  }
  const std::vector<Bytes> syns = frames(kBatch, pkt::tcp::kSyn, c.established);
  std::array<fwd::ArpRequest, 16> requests;
  Bytes buffer(kHeadroom + syns[0].size());
  const std::span<std::byte> frame(buffer.data() + kHeadroom, syns[0].size());
  size_t i = 0;
  uint64_t cycles = 0;
  for (auto _ : state) {
    if (i == kBatch) {
      state.PauseTiming();
      now_ms += 2000;
      (void)fwd::slowTick(*p.ctx, *p.env.snapshot, now_ms, capacity, requests);
      if (table_size() != c.established) {
        state.SkipWithError("the expiry lap did not leave exactly the established flows");
        return;
      }
      i = 0;
      state.ResumeTiming();
    }
    std::memcpy(frame.data(), syns[i].data(), syns[i].size());
    ++i;
    const uint64_t t0 = __rdtsc();
    const fwd::Action a = fwd::processFrame(*p.ctx, *p.env.snapshot, test::kExt, frame, now_ms, kHeadroom);
    cycles += __rdtsc() - t0;
    benchmark::DoNotOptimize(a);
  }
  uint64_t drops = 0;
  for (const auto& d : p.ctx->counters.drops) drops += d.get();
  if (drops != 0) state.SkipWithError("SYNs were dropped");
  if (p.ctx->counters.half_open_evictions.get() != 0) state.SkipWithError("SYNs evicted half-open flows");
  if (p.ctx->counters.tunnel_stateless.get() != 0) state.SkipWithError("SYNs found the table full");
  reportCycles(state, cycles);
  state.counters["flows"] = static_cast<double>(c.established);
}

// An empty table (besides the batch's own half-open flows).
void BM_NewFlow(benchmark::State& state) { newFlows(state, {}); }
BENCHMARK(BM_NewFlow);
void BM_TunnelNewFlow(benchmark::State& state) { newFlows(state, {.tunnel = true}); }
BENCHMARK(BM_TunnelNewFlow);
void BM_NewFlow6(benchmark::State& state) { newFlows(state, {.ipv6 = true}); }
BENCHMARK(BM_NewFlow6);

// `range(0)` established flows in the table (4096 and 1M): at 1M the SNAT search's
// probes and the two-key insert meet an index far larger than the caches.
void BM_NewFlowInTable(benchmark::State& state) {
  newFlows(state, {.established = static_cast<size_t>(state.range(0))});
}
BENCHMARK(BM_NewFlowInTable)->Arg(4096)->Arg(1 << 20);

// The timed loop of the reply benchmarks: the node's `reply` on an established flow,
// received on the internal port every iteration; TSC cycles around the call.
void timeReply(benchmark::State& state, Pipeline& p, const Bytes& reply) {
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

// The node's reply on an established flow (reverse lookup + restore).
void BM_ReplyToClient(benchmark::State& state) {
  Pipeline p(8192);
  p.ctx->neighbors.learn(test::Topo::clientIp(), test::Topo::clientMac(), 0);
  Bytes syn = test::clientTcp(40000, pkt::tcp::kSyn);
  (void)fwd::processFrame(*p.ctx, *p.env.snapshot, test::kExt, syn, 1);
  const pkt::ParsedFrame out = pkt::parseFrame(syn).frame;
  const Bytes reply = test::nodeTcp(out.dst_ip, out.src_port, pkt::tcp::kAckFlag);
  timeReply(state, p, reply);
}
BENCHMARK(BM_ReplyToClient);

// --- IPv6 (processor6.cc): the same three paths over FlowTable6 -------------------------

void BM_EstablishedFlow6(benchmark::State& state) {
  const auto flows = static_cast<size_t>(state.range(0));
  // The IPv4 table stays small: only the IPv6 one is measured.
  Pipeline p(1024, 25, static_cast<uint32_t>(flows * 2));
  const std::vector<Bytes> acks = clientFrames6(flows, pkt::tcp::kAckFlag);
  if (!establish(state, p, clientFrames6(flows, pkt::tcp::kSyn), acks)) return;
  timeEstablished(state, p, acks, /*tunnel=*/false);
  state.counters["bytes_per_flow"] = static_cast<double>(p.ctx->flows6.bytesPerFlow());
  state.counters["bytes_per_flow_v4"] = static_cast<double>(p.ctx->flows.bytesPerFlow());
}
BENCHMARK(BM_EstablishedFlow6)->Arg(4096)->Arg(1 << 20);

// IPv6 tunnel mode, established flow: ACKs of `range(0)` flows, each wrapped in a
// 40-byte outer IPv6 header (no checksum to compute) toward the flow's node.
void BM_TunnelEstablishedFlow6(benchmark::State& state) {
  const auto flows = static_cast<size_t>(state.range(0));
  Pipeline p(1024, 25, static_cast<uint32_t>(flows * 2));
  const std::vector<Bytes> acks = clientFrames6(flows, pkt::tcp::kAckFlag, true);
  if (!establish(state, p, clientFrames6(flows, pkt::tcp::kSyn, true), acks)) return;
  timeEstablished(state, p, acks, /*tunnel=*/true);
}
BENCHMARK(BM_TunnelEstablishedFlow6)->Arg(4096)->Arg(1 << 20);

void BM_ReplyToClient6(benchmark::State& state) {
  Pipeline p(1024, 25, 8192);
  p.ctx->neighbors6.learn(test::Topo6::clientIp(), test::Topo::clientMac(), 0);
  Bytes syn = test::clientTcp6(40000, pkt::tcp::kSyn);
  (void)fwd::processFrame(*p.ctx, *p.env.snapshot, test::kExt, syn, 1);
  const pkt::ParsedFrame out = pkt::parseFrame(syn).frame;
  const Bytes reply = test::nodeTcp6(pkt::loadIp6(syn.data() + 14 + pkt::ipv6::kDst), out.src_port, pkt::tcp::kAckFlag);
  timeReply(state, p, reply);
}
BENCHMARK(BM_ReplyToClient6);

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
