// Tunnel mode (DSR, IPIP) beyond the fixture table: table-full fallback, the frag-needed
// rate limit and MTU arithmetic, outer-source spreading, client-only TCP tracking, the
// headroom contract, and the burst path. The byte-exact frames are in fixtures.cc.

#include <gtest/gtest.h>

#include <algorithm>
#include <cstring>
#include <map>
#include <set>

#include "dataplane/fwd/processor.h"
#include "dataplane/pkt/encap.h"
#include "dataplane/pkt/headers.h"
#include "dataplane/pkt/parse.h"
#include "test/dataplane/fwd/fixtures.h"
#include "test/dataplane/fwd/headroom_harness.h"

namespace ng::test {
namespace {

using fwd::Action;
using fwd::DropReason;
using namespace ng::pkt;

// One worker over the fixture topology, frames run behind real headroom; the client's
// MAC is known (frag-needed answers go back to it).
struct Tunnel : HeadroomHarness {
  explicit Tunnel(uint32_t capacity = 1024, uint16_t internal_mtu = 1500)
      : HeadroomHarness(capacity, 0, internal_mtu) {
    ctx.neighbors.learn(Topo::clientIp(), Topo::clientMac(), 0);
  }
};

// (node, outer source) of an encapsulated frame.
std::pair<uint32_t, uint32_t> outerOf(const Bytes& frame) {
  const ParseResult r = parseFrame(frame);
  EXPECT_EQ(r.status, ParseStatus::kOk);
  EXPECT_EQ(r.frame.proto, kProtoIpip);
  return {r.frame.dst_ip, r.frame.src_ip};
}

TEST(Tunnel, AFullTableFallsBackToTheStatelessMaglevChoiceNeverADrop) {
  Tunnel small(4);
  Tunnel roomy(1024);
  for (uint16_t port = 20000; port < 20200; ++port) {
    Bytes a_out, b_out;
    const Bytes syn = clientTunnelTcp(port, tcp::kSyn);
    ASSERT_EQ(small.run(syn, &a_out).kind, Action::Kind::kForward) << port;
    ASSERT_EQ(roomy.run(syn, &b_out).kind, Action::Kind::kForward) << port;
    // Same node and outer source as a worker that had room: the choice is Maglev's.
    EXPECT_EQ(a_out, b_out) << port;
  }
  EXPECT_EQ(small.ctx.flows.size(), 1u);  // SYNs churn in the half-open budget (1 of 4)
  // SYNs evict the oldest half-open flows (SYN-flood policy), so fill the table with
  // established flows first to see the fallback.
  Tunnel full(4);
  for (uint16_t port = 100; port < 104; ++port) {
    ASSERT_EQ(full.run(clientTunnelTcp(port, tcp::kSyn)).kind, Action::Kind::kForward);
    ASSERT_EQ(full.run(clientTunnelTcp(port, tcp::kAckFlag)).kind, Action::Kind::kForward);
  }
  ASSERT_EQ(full.ctx.flows.size(), 4u);
  ASSERT_EQ(full.ctx.flows.halfOpen(), 0u);
  for (uint16_t port = 200; port < 250; ++port) {
    Bytes out;
    ASSERT_EQ(full.run(clientTunnelTcp(port, tcp::kSyn), &out).kind, Action::Kind::kForward);
  }
  EXPECT_EQ(full.ctx.counters.tunnel_stateless.get(), 50u);
  EXPECT_EQ(full.drops(DropReason::kFlowTableFull), 0u);
  EXPECT_EQ(full.ctx.flows.size(), 4u);
  // Full-NAT on the same full table still drops (nothing to translate replies with).
  Bytes frame = clientTcp(300, tcp::kSyn);
  EXPECT_EQ(fwd::processFrame(full.ctx, *full.env.snapshot, kExt, frame, 1000).kind, Action::Kind::kDrop);
  EXPECT_EQ(full.drops(DropReason::kFlowTableFull), 1u);
}

TEST(Tunnel, EstablishedFlowsKeepTheirNodeWhenTheTableChanges) {
  Tunnel t;
  std::map<uint16_t, uint32_t> node_of;
  for (uint16_t port = 30000; port < 30060; ++port) {
    Bytes out;
    ASSERT_EQ(t.run(clientTunnelTcp(port, tcp::kSyn), &out).kind, Action::Kind::kForward);
    node_of[port] = outerOf(out).first;
  }
  // The node most flows went to leaves every tunnel port's table.
  std::map<uint32_t, int> count;
  for (const auto& [port, node] : node_of) ++count[node];
  const uint32_t gone = std::ranges::max_element(count, {}, [](const auto& e) { return e.second; })->first;
  auto next = std::make_unique<fwd::ForwardingSnapshot>(*t.env.snapshot);
  next->generation = 2;
  for (fwd::ServicePort& sp : next->service_ports) {
    if (sp.mode != fwd::ForwardingMode::kTunnel) continue;
    std::erase_if(sp.backends, [&](const fwd::Backend& b) { return b.node_ip == gone; });
    std::vector<lb::MaglevBackend> ids;
    for (const fwd::Backend& b : sp.backends) ids.push_back(lb::MaglevBackend{.id = b.node_ip, .weight = 1});
    sp.maglev = std::make_shared<const lb::MaglevTable>(lb::MaglevTable::build(ids, 251));
  }
  next->finalize();
  t.env.snapshot = std::move(next);
  fwd::onSnapshot(t.ctx, *t.env.snapshot, 1000);
  for (const auto& [port, node] : node_of) {
    Bytes out;
    ASSERT_EQ(t.run(clientTunnelTcp(port, tcp::kAckFlag), &out).kind, Action::Kind::kForward);
    EXPECT_EQ(outerOf(out).first, node) << "flow from port " << port << " moved";
  }
  // New flows avoid the node that left.
  for (uint16_t port = 40000; port < 40060; ++port) {
    Bytes out;
    ASSERT_EQ(t.run(clientTunnelTcp(port, tcp::kSyn), &out).kind, Action::Kind::kForward);
    EXPECT_NE(outerOf(out).first, gone);
  }
}

TEST(Tunnel, AModeChangeAppliesToNewFlowsOnly) {
  Tunnel t;
  Bytes out;
  ASSERT_EQ(t.run(clientTunnelTcp(52000, tcp::kSyn), &out).kind, Action::Kind::kForward);
  const uint32_t node = outerOf(out).first;
  // The tunnel VIP's port 80 turns full-NAT.
  auto next = std::make_unique<fwd::ForwardingSnapshot>(*t.env.snapshot);
  next->generation = 2;
  for (fwd::ServicePort& sp : next->service_ports) {
    if (sp.vip == Topo::tunnelVip() && sp.port == 80) sp.mode = fwd::ForwardingMode::kFullNat;
  }
  next->finalize();
  t.env.snapshot = std::move(next);
  fwd::onSnapshot(t.ctx, *t.env.snapshot, 1000);
  // The established flow keeps its mode (and node): still IPIP.
  ASSERT_EQ(t.run(clientTunnelTcp(52000, tcp::kAckFlag), &out).kind, Action::Kind::kForward);
  EXPECT_EQ(outerOf(out).first, node);
  // A new one is full-NATed: to node:nodePort from the SNAT address, no outer header.
  ASSERT_EQ(t.run(clientTunnelTcp(52001, tcp::kSyn), &out).kind, Action::Kind::kForward);
  const ParseResult r = parseFrame(out);
  ASSERT_EQ(r.status, ParseStatus::kOk);
  EXPECT_EQ(r.frame.proto, kProtoTcp);
  EXPECT_EQ(r.frame.src_ip, Topo::intIp());
  EXPECT_EQ(r.frame.dst_port, 30080);
}

TEST(Tunnel, TcpStateFollowsTheClientAlone) {
  Tunnel t;
  ASSERT_EQ(t.run(clientTunnelTcp(50000, tcp::kSyn)).kind, Action::Kind::kForward);
  EXPECT_EQ(t.ctx.flows.halfOpen(), 1u);
  // The client's ACK of the SYN-ACK it got from the node (which the box never sees).
  ASSERT_EQ(t.run(clientTunnelTcp(50000, tcp::kAckFlag)).kind, Action::Kind::kForward);
  EXPECT_EQ(t.ctx.flows.halfOpen(), 0u);
  EXPECT_EQ(t.ctx.flows.size(), 1u);
  // Established: survives the half-open timeout, not the established one.
  const lb::FlowTimeouts& to = t.env.snapshot->timeouts;
  EXPECT_EQ(t.ctx.flows.expire(1000 + to.tcp_half_open_ms + 1, 1024, to), 0u);
  ASSERT_EQ(t.run(clientTunnelTcp(50000, tcp::kFin | tcp::kAckFlag), nullptr, 2000).kind, Action::Kind::kForward);
  // Closing: gone after the transitory timeout.
  EXPECT_EQ(t.ctx.flows.expire(2000 + to.tcp_transitory_ms + 1, 1024, to), 1u);
  EXPECT_EQ(t.ctx.flows.size(), 0u);
  // A tunnel flow has no reply key: a packet from the node side to the VIP is not ours.
  EXPECT_EQ(t.ctx.counters.to_clients.get(), 0u);
}

TEST(Tunnel, MidStreamSegmentsOfUnknownFlowsCountAgainstTheHalfOpenBudget) {
  Tunnel t(64);  // half-open budget: 16
  for (uint16_t port = 1; port <= 200; ++port) {
    ASSERT_EQ(t.run(clientTunnelTcp(port, tcp::kAckFlag)).kind, Action::Kind::kForward);
  }
  // An ACK flood churns in the half-open budget and never fills the table.
  EXPECT_EQ(t.ctx.flows.halfOpen(), 16u);
  EXPECT_EQ(t.ctx.flows.size(), 16u);
  EXPECT_EQ(t.ctx.counters.half_open_evictions.get(), 200u - 16u);
  // A real flow's second segment confirms it.
  ASSERT_EQ(t.run(clientTunnelTcp(200, tcp::kAckFlag)).kind, Action::Kind::kForward);
  EXPECT_EQ(t.ctx.flows.halfOpen(), 15u);
}

TEST(Tunnel, OuterSourcesSpreadOverTheRangeAndStayPerFlow) {
  Tunnel t;
  std::set<uint32_t> sources;
  for (uint16_t port = 10000; port < 12000; ++port) {
    Bytes first, again;
    ASSERT_EQ(t.run(clientTunnelTcp(port, tcp::kSyn), &first).kind, Action::Kind::kForward);
    ASSERT_EQ(t.run(clientTunnelTcp(port, tcp::kAckFlag), &again).kind, Action::Kind::kForward);
    const uint32_t src = outerOf(first).second;
    EXPECT_EQ(outerOf(again).second, src);
    EXPECT_LT(src - Topo::tunnelSourceFirst(), Topo::kTunnelSources);
    sources.insert(src);
  }
  // 2000 flows over 62 addresses: every address is used.
  EXPECT_EQ(sources.size(), Topo::kTunnelSources);
}

TEST(Tunnel, FragNeededIsRateLimitedPerWorker) {
  Tunnel t;
  auto& snap = *t.env.snapshot;
  snap.tunnel.icmp_rate = 10;  // per second
  snap.tunnel.icmp_burst = 3;
  const Bytes big = clientTunnelTcp(50001, tcp::kPsh | tcp::kAckFlag, 1460);
  Bytes out;
  for (int i = 0; i < 3; ++i) {
    ASSERT_EQ(t.run(big, &out, 5000).kind, Action::Kind::kForward) << i;
    EXPECT_EQ(out, fragNeededFrame(big, Topo::tunnelVip(), 1480));
  }
  EXPECT_EQ(t.run(big, &out, 5000).kind, Action::Kind::kDrop);
  EXPECT_EQ(t.drops(DropReason::kFragNeededRateLimited), 1u);
  // 10 per second: one more after 100 ms, not before.
  EXPECT_EQ(t.run(big, &out, 5099).kind, Action::Kind::kDrop);
  EXPECT_EQ(t.run(big, &out, 5100).kind, Action::Kind::kForward);
  EXPECT_EQ(t.run(big, &out, 5100).kind, Action::Kind::kDrop);
  EXPECT_EQ(t.ctx.counters.frag_needed_sent.get(), 4u);
  EXPECT_EQ(t.drops(DropReason::kFragNeededRateLimited), 3u);
  // A flood over 10 s gets at most burst + rate x 10 s answers.
  for (uint32_t ms = 6000; ms < 16000; ms += 1) (void)t.run(big, nullptr, ms);
  EXPECT_LE(t.ctx.counters.frag_needed_sent.get(), 4u + 3u + 100u + 1u);
  // Rate 0: never an answer.
  snap.tunnel.icmp_rate = 0;
  Tunnel quiet;
  quiet.env.snapshot->tunnel.icmp_rate = 0;
  EXPECT_EQ(quiet.run(big, &out, 5000).kind, Action::Kind::kDrop);
  EXPECT_EQ(quiet.drops(DropReason::kFragNeededRateLimited), 1u);
}

TEST(Tunnel, FragNeededCarriesTheInternalMtuMinusTheOuterHeader) {
  for (const uint16_t mtu : {uint16_t{1400}, uint16_t{1500}, uint16_t{1520}, uint16_t{9000}}) {
    SCOPED_TRACE("internal MTU " + std::to_string(mtu));
    Tunnel t(1024, mtu);
    // Largest packet that fits: total + 20 == mtu; one byte more does not.
    const size_t fits = std::min<size_t>(mtu - 20, 1500) - 40;  // TCP payload; the client side is 1500
    Bytes out;
    ASSERT_EQ(t.run(clientTunnelTcp(50002, (tcp::kPsh | tcp::kAckFlag), fits), &out).kind, Action::Kind::kForward);
    EXPECT_EQ(out.size(), 14u + 20u + fits + 40u);
    if (mtu - 20 >= 1500) continue;  // nothing from a 1500-byte client side is too big
    const Bytes big = clientTunnelTcp(50002, (tcp::kPsh | tcp::kAckFlag), fits + 1);
    const Action a = t.run(big, &out);
    ASSERT_EQ(a.kind, Action::Kind::kForward);
    EXPECT_EQ(a.out_port, kExt);
    EXPECT_EQ(out, fragNeededFrame(big, Topo::tunnelVip(), static_cast<uint16_t>(mtu - 20)));
    const ParseResult r = parseFrame(out);
    ASSERT_EQ(r.status, ParseStatus::kOk);
    EXPECT_EQ(r.frame.icmp_type, 3);
    EXPECT_EQ(r.frame.icmp_code, 4);
    EXPECT_EQ(r.frame.dst_ip, Topo::clientIp());
  }
}

TEST(Tunnel, WithoutHeadroomTunnelFramesAreDroppedAndCounted) {
  Tunnel t;
  EXPECT_EQ(t.run(clientTunnelTcp(50003, tcp::kSyn), nullptr, 1000, /*headroom=*/19).kind, Action::Kind::kDrop);
  EXPECT_EQ(t.drops(DropReason::kNoHeadroom), 1u);
  EXPECT_EQ(t.ctx.flows.size(), 0u) << "no state for a frame that was not sent";
  // Full-NAT needs none.
  Bytes nat;
  EXPECT_EQ(t.run(clientTcp(50003, tcp::kSyn), &nat, 1000, 0).kind, Action::Kind::kForward);
}

TEST(Tunnel, BurstDecidesLikeFrameByFrame) {
  std::vector<Bytes> inputs;
  for (uint16_t port = 1000; port < 1100; ++port) {
    inputs.push_back(clientTunnelTcp(port, tcp::kSyn));
    inputs.push_back(clientTunnelTcp(port, tcp::kAckFlag, 100));
    inputs.push_back(clientTcp(port, tcp::kSyn));
    if (port % 10 == 0) inputs.push_back(clientTunnelTcp(port, (tcp::kPsh | tcp::kAckFlag), 1460));  // frag-needed
  }
  Tunnel one;
  Tunnel burst;
  for (size_t begin = 0; begin < inputs.size(); begin += fwd::kMaxBurst) {
    const size_t n = std::min(fwd::kMaxBurst, inputs.size() - begin);
    std::vector<Bytes> buffers;
    std::vector<std::span<std::byte>> spans;
    buffers.reserve(n);
    for (size_t i = 0; i < n; ++i) {
      const Bytes& f = inputs[begin + i];
      Bytes b(kHeadroom + f.size());
      std::copy(f.begin(), f.end(), b.begin() + kHeadroom);
      buffers.push_back(std::move(b));
      spans.emplace_back(buffers.back().data() + kHeadroom, f.size());
    }
    std::vector<Action> actions(n);
    fwd::processBurst(burst.ctx, *burst.env.snapshot, kExt, spans, actions, 1000, kHeadroom);
    for (size_t i = 0; i < n; ++i) {
      Bytes want;
      const Action a = one.run(inputs[begin + i], &want);
      ASSERT_EQ(static_cast<int>(actions[i].kind), static_cast<int>(a.kind)) << begin + i;
      ASSERT_EQ(actions[i].length, a.length);
      ASSERT_EQ(actions[i].prepended, a.prepended);
      if (a.kind != Action::Kind::kForward) continue;
      const size_t start = kHeadroom - a.prepended;
      const size_t length = a.length != 0 ? a.length : inputs[begin + i].size();
      EXPECT_EQ(Bytes(buffers[i].begin() + static_cast<ptrdiff_t>(start),
                      buffers[i].begin() + static_cast<ptrdiff_t>(start + length)),
                want)
          << begin + i;
    }
  }
  EXPECT_EQ(one.ctx.counters.tunneled.get(), burst.ctx.counters.tunneled.get());
  EXPECT_EQ(one.ctx.counters.frag_needed_sent.get(), burst.ctx.counters.frag_needed_sent.get());
  EXPECT_GT(burst.ctx.counters.frag_needed_sent.get(), 0u);
}

TEST(Tunnel, ArpForOuterSourcesIsAnsweredOnTheInternalPortAndTheyAreMartians) {
  Tunnel t;
  const uint32_t src = Topo::tunnelSourceFirst() + 5;
  Bytes arp = PacketBuilder()
                  .eth(Topo::nodeMac(ip("10.200.0.11")), mac("ff:ff:ff:ff:ff:ff"))
                  .arp(arp::kRequest, Topo::nodeMac(ip("10.200.0.11")), ip("10.200.0.11"), Mac{}, src)
                  .build();
  const Action a = fwd::processFrame(t.ctx, *t.env.snapshot, kInt, arp, 1000);
  EXPECT_EQ(a.kind, Action::Kind::kForward);
  EXPECT_EQ(a.out_port, kInt);
  // A client packet claiming to come from one of them is spoofed.
  Bytes spoofed = PacketBuilder()
                      .eth(Topo::clientMac(), Topo::extMac())
                      .ipv4(src, Topo::tunnelVip())
                      .tcp(1234, 80, tcp::kSyn)
                      .build();
  EXPECT_EQ(t.run(spoofed).kind, Action::Kind::kDrop);
  EXPECT_EQ(t.drops(DropReason::kMartian), 1u);
}

}  // namespace
}  // namespace ng::test
