#include "dataplane/lb/snat.h"

#include <gtest/gtest.h>

#include <random>
#include <set>
#include <stdexcept>
#include <vector>

namespace ng::lb {
namespace {

constexpr uint32_t kNode = 0x0a000005;      // 10.0.0.5
constexpr uint16_t kNodePort = 30080;
constexpr uint8_t kTcp = 6;
constexpr uint32_t kSnatA = 0x0a0000f0;     // 10.0.0.240
constexpr uint32_t kSnatB = 0x0a0000f1;
constexpr uint32_t kSnatC = 0x0a0000f2;

FlowKey replyKey(uint32_t node, uint16_t node_port, SnatEndpoint e, uint8_t proto = kTcp) {
  return {.src_ip = node, .dst_ip = e.address, .src_port = node_port, .dst_port = e.port,
          .proto = proto};
}

// Records a flow that holds `e` toward node:node_port (client keys just need to differ).
void occupy(FlowTable& flows, uint32_t node, uint16_t node_port, SnatEndpoint e,
            uint8_t proto = kTcp) {
  static uint32_t next_client = 1;
  const FlowKey client{.src_ip = 0xc0000200 + next_client, .dst_ip = 0xcb007101,
                       .src_port = static_cast<uint16_t>(next_client), .dst_port = 80,
                       .proto = proto};
  ++next_client;
  ASSERT_NE(flows.insert(client, replyKey(node, node_port, e, proto), FlowState::kTcpSynSent, 0),
            nullptr);
}

TEST(SnatTest, NoAddressesNoPort) {
  FlowTable flows(16);
  SnatAllocator empty;
  EXPECT_FALSE(empty.allocate(flows, kNode, kNodePort, kTcp).has_value());
  EXPECT_THROW(SnatAllocator({}, 2000, 1999), std::invalid_argument);
}

TEST(SnatTest, HandsOutDistinctPortsInRotation) {
  FlowTable flows(16);
  const uint32_t addrs[] = {kSnatA};
  SnatAllocator snat(addrs, 2000, 2099);
  std::vector<uint16_t> ports;
  for (int i = 0; i < 100; ++i) {
    const auto e = snat.allocate(flows, kNode, kNodePort, kTcp);
    ASSERT_TRUE(e.has_value());
    EXPECT_EQ(e->address, kSnatA);
    ASSERT_GE(e->port, 2000);
    ASSERT_LE(e->port, 2099);
    ports.push_back(e->port);
  }
  // Consecutive, wrapping inside the range, every port once before any repeats.
  for (size_t i = 1; i < ports.size(); ++i) {
    EXPECT_EQ(ports[i], ports[i - 1] == 2099 ? 2000 : ports[i - 1] + 1);
  }
  EXPECT_EQ(std::set<uint16_t>(ports.begin(), ports.end()).size(), 100u);
  EXPECT_EQ(snat.allocate(flows, kNode, kNodePort, kTcp)->port, ports[0]);
}

TEST(SnatTest, StartIsDerivedFromTheAddressAndDeterministic) {
  FlowTable flows(16);
  const uint32_t a[] = {kSnatA};
  const uint32_t b[] = {kSnatB};
  SnatAllocator sa1(a);
  SnatAllocator sa2(a);
  SnatAllocator sb(b);
  const uint16_t pa = sa1.allocate(flows, kNode, kNodePort, kTcp)->port;
  EXPECT_EQ(sa2.allocate(flows, kNode, kNodePort, kTcp)->port, pa);
  EXPECT_NE(sb.allocate(flows, kNode, kNodePort, kTcp)->port, pa);
}

TEST(SnatTest, NeverAPortInUse) {
  FlowTable flows(4096);
  const uint32_t addrs[] = {kSnatA};
  SnatAllocator snat(addrs, 3000, 3999);
  // Half the range is already held by flows (live or closing, it does not matter).
  std::mt19937 rng(3);
  std::set<uint16_t> used;
  for (uint16_t p = 3000; p <= 3999; ++p) {
    if (rng() % 2) {
      occupy(flows, kNode, kNodePort, {kSnatA, p});
      used.insert(p);
    }
  }
  // Allocate (and take) until the range is exhausted: never a port in use.
  int taken = 0;
  while (auto e = snat.allocate(flows, kNode, kNodePort, kTcp)) {
    ASSERT_FALSE(used.contains(e->port)) << e->port;
    ASSERT_FALSE(flows.contains(replyKey(kNode, kNodePort, *e)));
    occupy(flows, kNode, kNodePort, *e);
    used.insert(e->port);
    ++taken;
  }
  EXPECT_EQ(used.size(), 1000u);
  EXPECT_GT(taken, 400);
}

TEST(SnatTest, ExhaustedSmallRange) {
  FlowTable flows(64);
  const uint32_t addrs[] = {kSnatA};
  SnatAllocator snat(addrs, 5000, 5009);
  for (int i = 0; i < 10; ++i) {
    const auto e = snat.allocate(flows, kNode, kNodePort, kTcp);
    ASSERT_TRUE(e.has_value());
    occupy(flows, kNode, kNodePort, *e);
  }
  EXPECT_FALSE(snat.allocate(flows, kNode, kNodePort, kTcp).has_value());
  // Freeing one port makes it available again.
  flows.erase(flows.lookup(replyKey(kNode, kNodePort, {kSnatA, 5004})).flow);
  const auto e = snat.allocate(flows, kNode, kNodePort, kTcp);
  ASSERT_TRUE(e.has_value());
  EXPECT_EQ(e->port, 5004);
}

TEST(SnatTest, ProbesAreBounded) {
  FlowTable flows(256);
  const uint32_t addrs[] = {kSnatA};
  SnatAllocator probe(addrs, 6000, 6199);
  const uint16_t start = probe.allocate(flows, kNode, kNodePort, kTcp)->port;
  // The next kMaxProbes ports from the start are in use, the rest of the range is free.
  for (uint32_t i = 0; i < SnatAllocator::kMaxProbes; ++i) {
    occupy(flows, kNode, kNodePort,
           {kSnatA, static_cast<uint16_t>(6000 + (start - 6000 + i) % 200)});
  }
  SnatAllocator snat(addrs, 6000, 6199);
  EXPECT_FALSE(snat.allocate(flows, kNode, kNodePort, kTcp).has_value());
  // The cursor moved past the busy run, so the next call finds a free port at once.
  const auto e = snat.allocate(flows, kNode, kNodePort, kTcp);
  ASSERT_TRUE(e.has_value());
  EXPECT_EQ(e->port, 6000 + (start - 6000 + SnatAllocator::kMaxProbes) % 200);
}

TEST(SnatTest, SeveralAddressesShareTheLoad) {
  FlowTable flows(1024);
  const uint32_t addrs[] = {kSnatA, kSnatB, kSnatC};
  SnatAllocator snat(addrs, 7000, 7099);
  std::vector<uint32_t> per_address(3, 0);
  std::set<std::pair<uint32_t, uint16_t>> seen;
  for (int i = 0; i < 300; ++i) {
    const auto e = snat.allocate(flows, kNode, kNodePort, kTcp);
    ASSERT_TRUE(e.has_value());
    ASSERT_TRUE(seen.insert({e->address, e->port}).second);
    occupy(flows, kNode, kNodePort, *e);
    ++per_address[e->address - kSnatA];
  }
  EXPECT_EQ(per_address, (std::vector<uint32_t>{100, 100, 100}));
  EXPECT_FALSE(snat.allocate(flows, kNode, kNodePort, kTcp).has_value());
}

TEST(SnatTest, FullAddressFallsOverToTheNext) {
  FlowTable flows(64);
  const uint32_t addrs[] = {kSnatA, kSnatB};
  SnatAllocator snat(addrs, 8000, 8003);
  for (uint16_t p = 8000; p <= 8003; ++p) occupy(flows, kNode, kNodePort, {kSnatA, p});
  for (int i = 0; i < 4; ++i) {
    const auto e = snat.allocate(flows, kNode, kNodePort, kTcp);
    ASSERT_TRUE(e.has_value());
    EXPECT_EQ(e->address, kSnatB);
    occupy(flows, kNode, kNodePort, *e);
  }
  EXPECT_FALSE(snat.allocate(flows, kNode, kNodePort, kTcp).has_value());
}

TEST(SnatTest, DifferentNodesOrProtocolsReuseAPort) {
  FlowTable flows(16);
  const uint32_t addrs[] = {kSnatA};
  SnatAllocator snat(addrs, 9000, 9000);  // a single port
  const auto a = snat.allocate(flows, kNode, kNodePort, kTcp);
  ASSERT_TRUE(a.has_value());
  occupy(flows, kNode, kNodePort, *a);
  EXPECT_FALSE(snat.allocate(flows, kNode, kNodePort, kTcp).has_value());
  // Another node, another nodePort or another protocol: the reply key differs.
  const auto other_node = snat.allocate(flows, kNode + 1, kNodePort, kTcp);
  ASSERT_TRUE(other_node.has_value());
  EXPECT_EQ(other_node->port, 9000);
  EXPECT_TRUE(snat.allocate(flows, kNode, kNodePort + 1, kTcp).has_value());
  EXPECT_TRUE(snat.allocate(flows, kNode, kNodePort, 17).has_value());
}

TEST(SnatTest, SetAddressesKeepsCursorsOfKeptAddresses) {
  FlowTable flows(16);
  const uint32_t a[] = {kSnatA};
  SnatAllocator snat(a, 10000, 10999);
  uint16_t last = 0;
  for (int i = 0; i < 5; ++i) last = snat.allocate(flows, kNode, kNodePort, kTcp)->port;

  const uint32_t ba[] = {kSnatB, kSnatA, kSnatA};  // duplicates collapse
  snat.setAddresses(ba);
  std::vector<SnatEndpoint> got;
  for (int i = 0; i < 4; ++i) got.push_back(*snat.allocate(flows, kNode, kNodePort, kTcp));
  std::vector<uint16_t> from_a;
  int from_b = 0;
  for (const auto& e : got) {
    if (e.address == kSnatA) from_a.push_back(e.port);
    if (e.address == kSnatB) ++from_b;
  }
  EXPECT_EQ(from_b, 2);
  ASSERT_EQ(from_a.size(), 2u);
  EXPECT_EQ(from_a[0], last == 10999 ? 10000 : last + 1);  // A continues its rotation

  // A dropped and re-added address starts over from its derived start.
  const uint32_t b[] = {kSnatB};
  snat.setAddresses(b);
  snat.setAddresses(a);
  SnatAllocator fresh(a, 10000, 10999);
  EXPECT_EQ(snat.allocate(flows, kNode, kNodePort, kTcp)->port,
            fresh.allocate(flows, kNode, kNodePort, kTcp)->port);
}

}  // namespace
}  // namespace ng::lb

namespace ng::lb {
namespace {

TEST(SnatReseed, ANewSeedStartsTheRotationElsewhereAndTheSameSeedRepeats) {
  const std::array<uint32_t, 1> addresses{0x0ac80001};
  FlowTable flows(64);
  SnatAllocator a(addresses);
  SnatAllocator b(addresses);
  SnatAllocator c(addresses);
  b.reseed(0x1234);
  c.reseed(0x1234);
  const auto pa = a.allocate(flows, 0x0ac8000b, 30080, 6);
  const auto pb = b.allocate(flows, 0x0ac8000b, 30080, 6);
  const auto pc = c.allocate(flows, 0x0ac8000b, 30080, 6);
  ASSERT_TRUE(pa && pb && pc);
  EXPECT_NE(pa->port, pb->port) << "a restarted box (new seed) must not replay the old run's ports";
  EXPECT_EQ(pb->port, pc->port) << "deterministic for a given seed";
}

}  // namespace
}  // namespace ng::lb
