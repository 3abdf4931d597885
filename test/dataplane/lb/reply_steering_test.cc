#include "dataplane/lb/reply_steering.h"

#include <gtest/gtest.h>

#include <array>
#include <random>
#include <set>
#include <string>
#include <vector>

#include "dataplane/lb/flow_table.h"
#include "dataplane/lb/snat.h"

namespace ng::lb {
namespace {

constexpr uint8_t kTcp = 6;

// A RETA like the one most PMDs program: queues round-robin.
std::vector<uint16_t> roundRobinReta(size_t size, uint16_t queues) {
  std::vector<uint16_t> reta(size);
  for (size_t i = 0; i < size; ++i) reta[i] = static_cast<uint16_t>(i % queues);
  return reta;
}

TEST(ReplySteeringTest, DefaultAndOneWorkerOwnEverything) {
  const ReplySteering single;
  EXPECT_EQ(single.mode(), ReplySteering::Mode::kSingle);
  EXPECT_EQ(ReplySteering::byPort(1).mode(), ReplySteering::Mode::kSingle);
  for (uint16_t p : {0, 1, 1024, 65535}) {
    EXPECT_EQ(single.owner(1, 2, 3, p), 0u);
    EXPECT_TRUE(single.owns(0, single.replyBase(1, 2, 3), p));
  }
  EXPECT_THROW((void)ReplySteering::byPort(0), std::invalid_argument);
  EXPECT_THROW((void)ReplySteering::byPort(ReplySteering::kMaxWorkers + 1), std::invalid_argument);
}

TEST(ReplySteeringTest, ByPortPartitionsPortsByModulo) {
  const ReplySteering s = ReplySteering::byPort(3);
  EXPECT_EQ(s.mode(), ReplySteering::Mode::kByPort);
  std::array<uint32_t, 3> owned{};
  for (uint32_t p = 1024; p <= 65535; ++p) {
    const auto port = static_cast<uint16_t>(p);
    const uint32_t owner = s.owner(0x0ac8000b, 0x0ac80001, 30080, port);
    ASSERT_EQ(owner, p % 3);
    ++owned[owner];
    for (uint32_t w = 0; w < 3; ++w) ASSERT_EQ(s.owns(w, 0, port), w == owner);
  }
  EXPECT_NEAR(owned[0], owned[1], 1);
  EXPECT_NEAR(owned[1], owned[2], 1);
}

TEST(ReplySteeringTest, RssRefusesLayoutsItCannotPredict) {
  const auto key = Toeplitz::kMicrosoftKey;
  EXPECT_TRUE(ReplySteering::byRss(2, key, roundRobinReta(128, 2)).has_value());
  std::string why;
  EXPECT_FALSE(ReplySteering::byRss(2, key, roundRobinReta(100, 2), &why).has_value()) << "not a power of two";
  EXPECT_NE(why.find("power of two"), std::string::npos) << why;
  EXPECT_FALSE(ReplySteering::byRss(2, key, {}).has_value());
  EXPECT_FALSE(ReplySteering::byRss(2, key, roundRobinReta(128, 3)).has_value()) << "queue 2 has no worker";
  EXPECT_FALSE(ReplySteering::byRss(2, key, std::vector<uint16_t>(128, 0)).has_value()) << "worker 1 never owns";
  EXPECT_FALSE(ReplySteering::byRss(2, std::span(key).first(8), roundRobinReta(128, 2)).has_value());
}

// The reply's queue, as the NIC computes it: reta[toeplitz(tuple) % size].
uint16_t nicQueue(const Toeplitz& t, const std::vector<uint16_t>& reta, uint32_t node, uint32_t snat,
                  uint16_t node_port, uint16_t snat_port) {
  return reta[t.hashIpv4(node, snat, node_port, snat_port) % reta.size()];
}

// For many random nodes, SNAT addresses and keys, every port a worker's allocator hands
// out makes the NIC put the reply on that worker's queue.
TEST(ReplySteeringTest, RssSnatPortsLandOnTheOwnersQueue) {
  std::mt19937 rng(42);
  for (uint32_t workers : {2u, 3u, 4u}) {
    std::array<uint8_t, 40> key;
    for (auto& k : key) k = static_cast<uint8_t>(rng());
    std::vector<uint16_t> reta = roundRobinReta(512, static_cast<uint16_t>(workers));
    std::shuffle(reta.begin(), reta.end(), rng);  // any layout, as long as every queue appears
    const auto steering = ReplySteering::byRss(workers, key, reta);
    ASSERT_TRUE(steering.has_value());
    const Toeplitz nic(key);
    for (uint32_t w = 0; w < workers; ++w) {
      FlowTable flows(4096);
      const uint32_t snat_addr = 0x0ac80001 + (rng() & 0xff);
      const uint32_t addrs[] = {snat_addr};
      SnatAllocator snat(addrs);
      snat.reseed(rng());
      snat.steer(&*steering, w);
      for (int i = 0; i < 500; ++i) {
        const uint32_t node = 0x0ac80000 | (rng() & 0xffff);
        const auto node_port = static_cast<uint16_t>(30000 + rng() % 2768);
        const auto e = snat.allocate(flows, node, node_port, kTcp);
        ASSERT_TRUE(e.has_value());
        ASSERT_EQ(nicQueue(nic, reta, node, e->address, node_port, e->port), w)
            << "worker " << w << " of " << workers << ", port " << e->port;
        ASSERT_EQ(steering->owner(node, e->address, node_port, e->port), w);
      }
    }
  }
}

// by-port: a worker's allocator hands out its own residue class only, still in rotation,
// and two workers never share a port.
TEST(ReplySteeringTest, ByPortAllocatorsNeverOverlap) {
  const ReplySteering steering = ReplySteering::byPort(2);
  const uint32_t addrs[] = {0x0ac80001};
  std::array<std::set<uint16_t>, 2> seen;
  for (uint32_t w = 0; w < 2; ++w) {
    FlowTable flows(4096);
    SnatAllocator snat(addrs, 2000, 2999);
    snat.steer(&steering, w);
    for (int i = 0; i < 500; ++i) {
      const auto e = snat.allocate(flows, 0x0ac8000b, 30080, kTcp);
      ASSERT_TRUE(e.has_value());
      ASSERT_EQ(e->port % 2, w);
      ASSERT_TRUE(seen[w].insert(e->port).second) << "rotation repeated " << e->port;
      const FlowKey client{.src_ip = 0xc0000200u + static_cast<uint32_t>(i), .dst_ip = 1, .src_port = 1,
                           .dst_port = 80, .proto = kTcp};
      const FlowKey reply{.src_ip = 0x0ac8000b, .dst_ip = e->address, .src_port = 30080, .dst_port = e->port,
                          .proto = kTcp};
      ASSERT_NE(flows.insert(client, reply, FlowState::kTcpSynSent, 0), nullptr);
    }
    // 500 ports: the whole class, then nothing (each allocation held by a flow).
    EXPECT_FALSE(snat.allocate(flows, 0x0ac8000b, 30080, kTcp).has_value());
  }
  for (uint16_t p : seen[0]) EXPECT_EQ(seen[1].count(p), 0u);
}

}  // namespace
}  // namespace ng::lb
