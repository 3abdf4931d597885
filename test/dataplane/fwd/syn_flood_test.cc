// SYN-flood behaviour of the per-worker pipeline (DESIGN.md sec. 2, flow table): a flood
// of spoofed SYNs must never evict or starve established flows; half-open flows have
// their own budget (oldest evicted first) and short timeout; a table full of flows a
// flood may not touch drops new flows with a counter; memory stays flat.

#include <gtest/gtest.h>

#include <map>

#include "dataplane/fwd/processor.h"
#include "dataplane/pkt/headers.h"
#include "dataplane/pkt/parse.h"
#include "test/dataplane/fwd/fixtures.h"

namespace ng::test {
namespace {

using fwd::Action;
using fwd::DropReason;
using namespace ng::pkt;

uint64_t dropsOf(const fwd::WorkerContext& ctx, DropReason reason) {
  return ctx.counters.drops[static_cast<size_t>(reason)].get();
}
uint64_t totalDrops(const fwd::WorkerContext& ctx) {
  uint64_t n = 0;
  for (const auto& d : ctx.counters.drops) n += d.get();
  return n;
}

Bytes tcpFrom(uint32_t src, uint16_t src_port, uint8_t flags) {
  return PacketBuilder().eth(Topo::clientMac(), Topo::extMac()).ipv4(src, Topo::vip()).tcp(src_port, 80, flags).build();
}
// Spoofed flood source i: addresses from 198.18.0.0/15 (benchmark range), never martians.
uint32_t spoofed(uint32_t i) { return ip("198.18.0.0") + (i & 0x1ffff); }

struct Pipeline {
  Env env = makeEnv();
  fwd::WorkerContext ctx;
  explicit Pipeline(uint32_t capacity, uint32_t budget_percent = 25) : ctx(0, env.ports, capacity) {
    env.snapshot->half_open_budget_percent = budget_percent;
    fwd::onSnapshot(ctx, *env.snapshot, 0);
  }
  Action run(uint8_t port, Bytes& frame, uint32_t now) { return fwd::processFrame(ctx, *env.snapshot, port, frame, now); }
  // Opens an established connection from the fixture client's `port`; returns its node.
  uint32_t establish(uint16_t client_port, uint32_t now) {
    Bytes syn = tcpFrom(Topo::clientIp(), client_port, tcp::kSyn);
    if (run(kExt, syn, now).kind != Action::Kind::kForward) return 0;
    Bytes ack = tcpFrom(Topo::clientIp(), client_port, tcp::kAckFlag);
    if (run(kExt, ack, now).kind != Action::Kind::kForward) return 0;
    return parseFrame(ack).frame.dst_ip;
  }
  std::array<fwd::ArpRequest, 8> reqs{};
  void tick(uint32_t now) { (void)fwd::slowTick(ctx, *env.snapshot, now, ctx.flows.capacity(), reqs); }
};

TEST(SynFlood, TheBudgetFollowsTheSnapshot) {
  Pipeline p(64, 50);
  EXPECT_EQ(p.ctx.flows.halfOpenLimit(), 32u);
  auto next = std::make_unique<fwd::ForwardingSnapshot>(*p.env.snapshot);
  next->generation = 2;
  next->half_open_budget_percent = 1;
  fwd::onSnapshot(p.ctx, *next, 0);
  EXPECT_EQ(p.ctx.flows.halfOpenLimit(), 1u) << "1 % of 64 rounds down to 0, clamped to 1";
}

// The flood of the issue: many spoofed SYNs into a small table that holds established
// flows. Every established flow keeps forwarding to its node; counters are exact.
TEST(SynFlood, SpoofedSynsNeverEvictOrStarveEstablishedFlows) {
  constexpr uint32_t kCapacity = 64;
  constexpr uint32_t kEstablished = 40;
  constexpr uint32_t kFlood = 10'000;
  Pipeline p(kCapacity);  // budget 25 %: 16 half-open flows
  std::map<uint16_t, uint32_t> node_of;
  for (uint16_t port = 1; port <= kEstablished; ++port) {
    node_of[port] = p.establish(port, 1);
    ASSERT_NE(node_of[port], 0u);
  }
  ASSERT_EQ(p.ctx.flows.halfOpen(), 0u);

  for (uint32_t i = 0; i < kFlood; ++i) {
    Bytes syn = tcpFrom(spoofed(i), static_cast<uint16_t>(1024 + i), tcp::kSyn);
    ASSERT_EQ(p.run(kExt, syn, 2).kind, Action::Kind::kForward) << "flood SYN " << i;
    ASSERT_LE(p.ctx.flows.halfOpen(), 16u);
    ASSERT_LE(p.ctx.flows.size(), kCapacity);
    // Interleaved: established flows forward during the flood, to the same node.
    if (i % 100 == 0) {
      const uint16_t port = static_cast<uint16_t>(1 + (i / 100) % kEstablished);
      Bytes data = tcpFrom(Topo::clientIp(), port, tcp::kAckFlag | tcp::kPsh);
      ASSERT_EQ(p.run(kExt, data, 2).kind, Action::Kind::kForward);
      EXPECT_EQ(parseFrame(data).frame.dst_ip, node_of[port]);
    }
  }
  EXPECT_EQ(p.ctx.flows.halfOpen(), 16u);
  EXPECT_EQ(p.ctx.flows.size(), kEstablished + 16);
  EXPECT_EQ(p.ctx.counters.half_open_evictions.get(), kFlood - 16);
  EXPECT_EQ(p.ctx.counters.new_flows.get(), kEstablished + kFlood);
  EXPECT_EQ(totalDrops(p.ctx), 0u);
  for (const auto& [port, node] : node_of) {
    Bytes data = tcpFrom(Topo::clientIp(), port, tcp::kAckFlag);
    ASSERT_EQ(p.run(kExt, data, 3).kind, Action::Kind::kForward) << "established flow " << port;
    EXPECT_EQ(parseFrame(data).frame.dst_ip, node);
  }
  EXPECT_EQ(p.ctx.counters.new_flows.get(), kEstablished + kFlood) << "no established flow was recreated";
  p.tick(4);
  EXPECT_EQ(p.ctx.counters.half_open_flows.get(), 16u);
  EXPECT_EQ(p.ctx.counters.active_flows.get(), kEstablished + 16);
}

// A real client connecting during the flood: its SYN gets a half-open entry, the node's
// SYN-ACK (within the entry's lifetime) promotes it, and from then on the flood cannot
// touch it.
TEST(SynFlood, ARealHandshakeDuringTheFloodCompletesAndThenSurvivesIt) {
  Pipeline p(64);
  p.ctx.neighbors.learn(Topo::clientIp(), Topo::clientMac(), 0);
  for (uint32_t i = 0; i < 100; ++i) {
    Bytes syn = tcpFrom(spoofed(i), static_cast<uint16_t>(1024 + i), tcp::kSyn);
    ASSERT_EQ(p.run(kExt, syn, 1).kind, Action::Kind::kForward);
  }
  Bytes syn = tcpFrom(Topo::clientIp(), 40000, tcp::kSyn);
  ASSERT_EQ(p.run(kExt, syn, 1).kind, Action::Kind::kForward);
  const ParsedFrame out = parseFrame(syn).frame;
  for (uint32_t i = 100; i < 110; ++i) {  // fewer than the budget: the entry survives
    Bytes s = tcpFrom(spoofed(i), static_cast<uint16_t>(1024 + i), tcp::kSyn);
    ASSERT_EQ(p.run(kExt, s, 1).kind, Action::Kind::kForward);
  }
  Bytes syn_ack = nodeTcp(out.dst_ip, out.src_port, tcp::kSyn | tcp::kAckFlag);
  ASSERT_EQ(p.run(kInt, syn_ack, 1).kind, Action::Kind::kForward) << "the SYN-ACK finds its flow";
  for (uint32_t i = 110; i < 5000; ++i) {
    Bytes s = tcpFrom(spoofed(i), static_cast<uint16_t>(1024 + i), tcp::kSyn);
    ASSERT_EQ(p.run(kExt, s, 1).kind, Action::Kind::kForward);
  }
  Bytes ack = tcpFrom(Topo::clientIp(), 40000, tcp::kAckFlag);
  ASSERT_EQ(p.run(kExt, ack, 1).kind, Action::Kind::kForward);
  EXPECT_EQ(parseFrame(ack).frame.dst_ip, out.dst_ip);
  EXPECT_EQ(parseFrame(ack).frame.src_port, out.src_port) << "same flow, same SNAT port";
}

// Flows the flood may not touch fill the table: new flows are dropped and counted; when
// a half-open flow exists below the budget, a new SYN still takes its record.
TEST(SynFlood, AFullTableDropsNewFlowsWithACounter) {
  Pipeline p(8);  // budget 2
  for (uint16_t port = 1; port <= 6; ++port) ASSERT_NE(p.establish(port, 1), 0u);
  Bytes half = tcpFrom(spoofed(1), 1, tcp::kSyn);
  ASSERT_EQ(p.run(kExt, half, 1).kind, Action::Kind::kForward);
  Bytes udp = PacketBuilder().eth(Topo::clientMac(), Topo::extMac()).ipv4(Topo::clientIp(), Topo::vip()).udp(5000, 53).payload(8).build();
  ASSERT_EQ(p.run(kExt, udp, 1).kind, Action::Kind::kForward);
  ASSERT_EQ(p.ctx.flows.size(), 8u);
  ASSERT_EQ(p.ctx.flows.halfOpen(), 1u);

  // Full, half-open below the budget: the SYN takes the half-open flow's record.
  Bytes syn = tcpFrom(spoofed(2), 2, tcp::kSyn);
  EXPECT_EQ(p.run(kExt, syn, 1).kind, Action::Kind::kForward);
  EXPECT_EQ(p.ctx.counters.half_open_evictions.get(), 1u);
  // Its handshake completes: nothing evictable is left.
  Bytes ack = tcpFrom(spoofed(2), 2, tcp::kAckFlag);
  ASSERT_EQ(p.run(kExt, ack, 1).kind, Action::Kind::kForward);
  EXPECT_EQ(p.ctx.flows.halfOpen(), 0u);

  Bytes syn2 = tcpFrom(spoofed(3), 3, tcp::kSyn);
  EXPECT_EQ(p.run(kExt, syn2, 1).kind, Action::Kind::kDrop);
  Bytes udp2 = PacketBuilder().eth(Topo::clientMac(), Topo::extMac()).ipv4(Topo::clientIp(), Topo::vip()).udp(5001, 53).payload(8).build();
  EXPECT_EQ(p.run(kExt, udp2, 1).kind, Action::Kind::kDrop);
  EXPECT_EQ(dropsOf(p.ctx, DropReason::kFlowTableFull), 2u);
  EXPECT_EQ(totalDrops(p.ctx), 2u);
  EXPECT_EQ(p.ctx.counters.half_open_evictions.get(), 1u);
  EXPECT_EQ(p.ctx.flows.size(), 8u);
  for (uint16_t port = 1; port <= 6; ++port) {
    Bytes data = tcpFrom(Topo::clientIp(), port, tcp::kAckFlag);
    EXPECT_EQ(p.run(kExt, data, 1).kind, Action::Kind::kForward);
  }
}

// Half-open flows leave after their own short timeout, established ones stay.
TEST(SynFlood, HalfOpenFlowsExpireAfterTheHalfOpenTimeout) {
  Pipeline p(64);
  p.env.snapshot->timeouts.tcp_half_open_ms = 5'000;
  ASSERT_NE(p.establish(1, 0), 0u);
  for (uint32_t i = 0; i < 10; ++i) {
    Bytes s = tcpFrom(spoofed(i), static_cast<uint16_t>(1024 + i), tcp::kSyn);
    ASSERT_EQ(p.run(kExt, s, 0).kind, Action::Kind::kForward);
  }
  p.tick(5'000);
  EXPECT_EQ(p.ctx.flows.halfOpen(), 10u);
  EXPECT_EQ(p.ctx.counters.half_open_flows.get(), 10u);
  p.tick(5'001);
  EXPECT_EQ(p.ctx.flows.halfOpen(), 0u);
  EXPECT_EQ(p.ctx.counters.half_open_flows.get(), 0u);
  EXPECT_EQ(p.ctx.counters.expired_flows.get(), 10u);
  EXPECT_EQ(p.ctx.flows.size(), 1u);
  Bytes data = tcpFrom(Topo::clientIp(), 1, tcp::kAckFlag);
  EXPECT_EQ(p.run(kExt, data, 5'002).kind, Action::Kind::kForward);
}

}  // namespace
}  // namespace ng::test
