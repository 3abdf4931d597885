// IPv6 tunnel mode (IPv6-in-IPv6, DSR) beyond the fixture table: the stateless fallback
// when the table is full, the Packet Too Big budget and size, outer-source and flow-label
// spreading, the headroom contract per family, and the outer header's first word. The byte-exact frames are in fixtures6.cc.

#include <gtest/gtest.h>

#include <map>
#include <set>

#include "dataplane/fwd/processor.h"
#include "dataplane/lb/flow_table.h"
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

// The IPv4 table stays small; `flow6_capacity` sizes the IPv6 one.
struct Tunnel6 : HeadroomHarness {
  explicit Tunnel6(uint32_t flow6_capacity = 1024, uint16_t internal_mtu = 1500)
      : HeadroomHarness(4096, flow6_capacity, internal_mtu) {}
};

struct Outer6 {
  Ip6 src, dst;
  uint32_t label;
};
Outer6 outerOf6(const Bytes& frame) {
  EXPECT_GE(frame.size(), 54u);
  EXPECT_EQ(load16(frame.data() + 12), kEtherTypeIpv6);
  EXPECT_EQ(std::to_integer<uint8_t>(frame[14 + ipv6::kNextHeader]), 41);
  return {loadIp6(frame.data() + 14 + ipv6::kSrc), loadIp6(frame.data() + 14 + ipv6::kDst),
          load32(frame.data() + 14) & 0xfffff};
}

TEST(Tunnel6, AFullTableFallsBackToTheStatelessMaglevChoiceNeverADrop) {
  Tunnel6 full(4);
  Tunnel6 roomy(1024);
  // Fill the small table with established flows (SYNs alone churn in the half-open budget).
  for (uint16_t port = 100; port < 104; ++port) {
    ASSERT_EQ(full.run(clientTunnelTcp6(port, tcp::kSyn)).kind, Action::Kind::kForward);
    ASSERT_EQ(full.run(clientTunnelTcp6(port, tcp::kAckFlag)).kind, Action::Kind::kForward);
  }
  ASSERT_EQ(full.ctx.flows6.size(), 4u);
  for (uint16_t port = 200; port < 250; ++port) {
    Bytes a, b;
    ASSERT_EQ(full.run(clientTunnelTcp6(port, tcp::kSyn), &a).kind, Action::Kind::kForward) << port;
    ASSERT_EQ(roomy.run(clientTunnelTcp6(port, tcp::kSyn), &b).kind, Action::Kind::kForward) << port;
    EXPECT_EQ(a, b) << "the stateless choice is the one a worker with room makes, port " << port;
  }
  EXPECT_EQ(full.ctx.counters.tunnel_stateless.get(), 50u);
  EXPECT_EQ(full.drops(DropReason::kFlowTableFull), 0u);
  EXPECT_EQ(full.ctx.flows6.size(), 4u);
}

TEST(Tunnel6, OuterSourceAndFlowLabelSpreadAndStayPerFlow) {
  Tunnel6 t;
  std::set<Ip6> sources;
  std::set<uint32_t> labels;
  for (uint16_t port = 10000; port < 11000; ++port) {
    Bytes first, again;
    ASSERT_EQ(t.run(clientTunnelTcp6(port, tcp::kSyn), &first).kind, Action::Kind::kForward);
    ASSERT_EQ(t.run(clientTunnelTcp6(port, tcp::kAckFlag), &again).kind, Action::Kind::kForward);
    const Outer6 a = outerOf6(first), b = outerOf6(again);
    EXPECT_EQ(a.src, b.src);
    EXPECT_EQ(a.label, b.label);
    const lb::FlowKey6 key{.src_ip = Topo6::clientIp(), .dst_ip = Topo6::tunnelVip(), .src_port = port,
                           .dst_port = 80, .proto = kProtoTcp};
    EXPECT_EQ(a.label, fwd::TunnelSettings::flowLabelFor(lb::FlowTable6::hashOf(key)));
    EXPECT_NE(a.label, 0u);
    sources.insert(a.src);
    labels.insert(a.label);
  }
  EXPECT_EQ(sources.size(), Topo6::kTunnelSources) << "1000 flows use all 16 outer sources";
  EXPECT_GT(labels.size(), 990u) << "flow labels are (nearly) unique per flow";
}

TEST(Tunnel6, PacketTooBigIsRateLimitedWithTheIcmpBucket) {
  Tunnel6 t;
  const Bytes big = clientTunnelTcp6(40000, tcp::kPsh | tcp::kAckFlag, 1440);  // 1500 bytes of IPv6
  // icmp_burst 20 at time 1000 ms: 20 answers, then drops until the bucket refills.
  for (int i = 0; i < 20; ++i) {
    Bytes out;
    ASSERT_EQ(t.run(big, &out, 1000).kind, Action::Kind::kForward) << i;
    EXPECT_EQ(out.size(), 14u + 1280u) << "the answer fills the IPv6 minimum MTU exactly";
  }
  EXPECT_EQ(t.run(big, nullptr, 1000).kind, Action::Kind::kDrop);
  EXPECT_EQ(t.drops(DropReason::kFragNeededRateLimited), 1u);
  // 100 per second: 10 ms buys one answer.
  EXPECT_EQ(t.run(big, nullptr, 1010).kind, Action::Kind::kForward);
  EXPECT_EQ(t.ctx.counters.frag_needed_sent.get(), 21u);
  EXPECT_EQ(t.ctx.flows6.size(), 0u) << "answered packets leave no flow";
}

TEST(Tunnel6, ThePacketTooBigMtuFollowsTheInternalMtu) {
  Tunnel6 t(1024, 9000);
  EXPECT_EQ(t.run(clientTunnelTcp6(40000, tcp::kPsh | tcp::kAckFlag, 1440)).kind, Action::Kind::kForward)
      << "fits a jumbo internal link";
  Tunnel6 small(1024, 1320);
  Bytes out;
  ASSERT_EQ(small.run(clientTunnelTcp6(40000, tcp::kPsh | tcp::kAckFlag, 1300), &out).kind, Action::Kind::kForward);
  ASSERT_EQ(std::to_integer<uint8_t>(out[14 + 40]), icmp6::kPacketTooBig);
  EXPECT_EQ(load32(out.data() + 14 + 44), 1280u);
  EXPECT_EQ(out, packetTooBig6Frame(clientTunnelTcp6(40000, tcp::kPsh | tcp::kAckFlag, 1300), Topo6::tunnelVip(), 1280));
}

TEST(Tunnel6, EachFamilyNeedsItsOwnHeadroom) {
  Tunnel6 t;
  // 20..39 bytes: enough for IPIP, not for IPv6-in-IPv6.
  EXPECT_EQ(t.run(clientTunnelTcp6(40000, tcp::kSyn), nullptr, 1000, 39).kind, Action::Kind::kDrop);
  EXPECT_EQ(t.drops(DropReason::kNoHeadroom), 1u);
  EXPECT_EQ(t.ctx.flows6.size(), 0u);
  EXPECT_EQ(t.run(clientTunnelTcp(40000, tcp::kSyn), nullptr, 1000, 20).kind, Action::Kind::kForward);
  Bytes out;
  const Action a = t.run(clientTunnelTcp6(40000, tcp::kSyn), &out, 1000, 40);
  ASSERT_EQ(a.kind, Action::Kind::kForward);
  EXPECT_EQ(a.prepended, 40);
  EXPECT_EQ(a.length, 54u + 60u);
  EXPECT_EQ(fwd::kTunnelHeadroom, 40u);
}

TEST(Tunnel6, EncapsulationCopiesTheTrafficClassNotTheFlowLabel) {
  // The outer header takes the inner traffic class and its own flow label; the inner
  // header's first word (with the client's label) travels untouched.
  const Bytes inner = PacketBuilder()
                          .eth(Topo::clientMac(), Topo::extMac())
                          .ipv6(Topo6::clientIp(), Topo6::tunnelVip())
                          .tcp(40000, 80, tcp::kSyn)
                          .build();
  Bytes buffer(kHeadroom);
  buffer.insert(buffer.end(), inner.begin(), inner.end());
  store32(buffer.data() + kHeadroom + 14, 0x6a512345);  // traffic class 0xa5, label 0x12345
  const ParseResult r = parseFrame(std::span<const std::byte>(buffer.data() + kHeadroom, inner.size()));
  ASSERT_EQ(r.status, ParseStatus::kOk);
  const Ip6 src = ip6("2001:db8:200::100"), dst = ip6("2001:db8:200::11");
  const size_t len = encapsulateIp6ip6(std::span<std::byte>(buffer.data() + kHeadroom, inner.size()), r.frame,
                                       Topo6::nodeMac(dst), Topo::intMac(),
                                       OuterIpv6{.src = src, .dst = dst, .flow_label = 0xfffff});
  ASSERT_EQ(len, 14u + 40u + 60u);
  const std::byte* o = buffer.data() + kHeadroom - 40;
  EXPECT_EQ(load32(o + 14), 0x6a5fffffu) << "version 6, inner traffic class, the given label";
  EXPECT_EQ(load16(o + 14 + 4), 60u);
  EXPECT_EQ(std::to_integer<uint8_t>(o[14 + 6]), 41);
  EXPECT_EQ(std::to_integer<uint8_t>(o[14 + 7]), 64);
  EXPECT_EQ(loadIp6(o + 14 + 8), src);
  EXPECT_EQ(loadIp6(o + 14 + 24), dst);
  EXPECT_EQ(load32(o + 54), 0x6a512345u) << "the inner header's first word is as received";
}

TEST(Tunnel6, DualStackTunnelServicesTunnelEachFamilyInItsOwn) {
  Tunnel6 t;
  Bytes v4, v6;
  ASSERT_EQ(t.run(clientTunnelTcp(40000, tcp::kSyn), &v4).kind, Action::Kind::kForward);
  ASSERT_EQ(t.run(clientTunnelTcp6(40000, tcp::kSyn), &v6).kind, Action::Kind::kForward);
  EXPECT_EQ(load16(v4.data() + 12), kEtherTypeIpv4);
  EXPECT_EQ(std::to_integer<uint8_t>(v4[14 + 9]), kProtoIpip);
  EXPECT_EQ(outerOf6(v6).dst.hi, Topo6::nodes()[0].hi);
  EXPECT_EQ(t.ctx.flows.size(), 1u);
  EXPECT_EQ(t.ctx.flows6.size(), 1u);
  EXPECT_EQ(t.ctx.counters.tunneled.get(), 2u);
}

}  // namespace
}  // namespace ng::test
