// AffinityTable on its own: remember/find, the idle timeout (held while flows live, from
// the newest last packet after), a full bucket refusing without evicting, reuse of
// expired ways, the sweep, and the 32-bit clock wrap.

#include "dataplane/lb/affinity_table.h"

#include <gtest/gtest.h>

#include <vector>

namespace ng::lb {
namespace {

AffinityKey key(uint32_t client, uint16_t port = 80, uint8_t proto = 6) {
  return {.client_ip = client, .vip = 0x0a640064, .port = port, .proto = proto};
}

constexpr uint32_t kTimeout = 10'000;

TEST(AffinityTable, CapacityIsRoundedUpToWholeBucketsOfAPowerOfTwo) {
  EXPECT_EQ(AffinityTable(0).capacity(), AffinityTable::kWays);
  EXPECT_EQ(AffinityTable(1).capacity(), 4u);
  EXPECT_EQ(AffinityTable(4).capacity(), 4u);
  EXPECT_EQ(AffinityTable(5).capacity(), 8u);
  EXPECT_EQ(AffinityTable(1000).capacity(), 1024u);
  EXPECT_EQ(AffinityTable(1024).capacity(), 1024u);
}

TEST(AffinityTable, RemembersPerClientAndServicePort) {
  AffinityTable t(1024);
  EXPECT_EQ(t.find(key(1), 0, kTimeout), nullptr);
  ASSERT_TRUE(t.remember(key(1), 11, 30080, 0, kTimeout));
  ASSERT_TRUE(t.remember(key(1, 443), 12, 30443, 0, kTimeout));
  ASSERT_TRUE(t.remember(key(1, 80, 17), 13, 30053, 0, kTimeout));
  const AffinityEntry* e = t.find(key(1), 5, kTimeout);
  ASSERT_NE(e, nullptr);
  EXPECT_EQ(e->node_ip, 11u);
  EXPECT_EQ(e->node_port, 30080);
  EXPECT_EQ(e->flows, 1u);
  EXPECT_EQ(t.find(key(1, 443), 5, kTimeout)->node_ip, 12u);
  EXPECT_EQ(t.find(key(1, 80, 17), 5, kTimeout)->node_ip, 13u);
  EXPECT_EQ(t.find(key(2), 5, kTimeout), nullptr);
  EXPECT_EQ(t.size(), 3u);
  // Remembering again moves the entry to the new node and counts one more flow.
  ASSERT_TRUE(t.remember(key(1), 14, 30080, 7, kTimeout));
  EXPECT_EQ(t.find(key(1), 8, kTimeout)->node_ip, 14u);
  EXPECT_EQ(t.find(key(1), 8, kTimeout)->flows, 2u);
  EXPECT_EQ(t.size(), 3u);
}

TEST(AffinityTable, HeldWhileFlowsLiveThenForTheTimeoutAfterTheNewestLastPacket) {
  AffinityTable t(64);
  ASSERT_TRUE(t.remember(key(1), 11, 30080, 1'000, kTimeout));
  ASSERT_TRUE(t.remember(key(1), 11, 30080, 2'000, kTimeout));
  EXPECT_NE(t.find(key(1), 1'000'000, kTimeout), nullptr) << "two live flows hold it";
  t.release(key(1), 50'000);
  EXPECT_NE(t.find(key(1), 1'000'000, kTimeout), nullptr) << "one live flow still holds it";
  t.release(key(1), 40'000);  // an older last packet does not move the clock back
  ASSERT_NE(t.find(key(1), 50'000, kTimeout), nullptr);
  EXPECT_EQ(t.find(key(1), 50'000, kTimeout)->last_seen_ms, 50'000u);
  EXPECT_NE(t.find(key(1), 60'000, kTimeout), nullptr);
  EXPECT_EQ(t.find(key(1), 60'001, kTimeout), nullptr);
  EXPECT_NE(t.find(key(1), 60'001, 2 * kTimeout), nullptr) << "judged with the service's current timeout";
  t.release(key(1), 70'000);  // an unmatched release never underflows
  EXPECT_EQ(t.find(key(1), 70'000, kTimeout)->flows, 0u);
  t.release(key(9), 70'000);  // unknown key: nothing happens
  EXPECT_EQ(t.size(), 1u);
}

TEST(AffinityTable, AFullBucketRefusesWithoutEvictingAndReusesExpiredWays) {
  AffinityTable t(4);  // one bucket: every key shares it
  for (uint32_t c = 1; c <= 4; ++c) ASSERT_TRUE(t.remember(key(c), 10 + c, 30080, 0, kTimeout));
  t.release(key(1), 0);  // client 1's flow ended; it idles from 0
  EXPECT_FALSE(t.remember(key(5), 15, 30080, kTimeout, kTimeout)) << "10 s idle is not past 10 s";
  EXPECT_EQ(t.find(key(5), kTimeout, kTimeout), nullptr);
  for (uint32_t c = 1; c <= 4; ++c) EXPECT_EQ(t.find(key(c), kTimeout, kTimeout)->node_ip, 10 + c) << c;
  ASSERT_TRUE(t.remember(key(5), 15, 30080, kTimeout + 1, kTimeout)) << "client 1's way has expired";
  EXPECT_EQ(t.find(key(1), kTimeout + 1, kTimeout), nullptr);
  EXPECT_EQ(t.find(key(5), kTimeout + 1, kTimeout)->node_ip, 15u);
  EXPECT_EQ(t.size(), 4u);
  // Clients 2..4 hold flows: no timeout makes their ways free.
  EXPECT_FALSE(t.remember(key(6), 16, 30080, 4'000'000'000u, kTimeout));
}

TEST(AffinityTable, AnExpiredEntryOfTheSameKeyIsRenewedWithTheNewNode) {
  AffinityTable t(64);
  ASSERT_TRUE(t.remember(key(1), 11, 30080, 0, kTimeout));
  t.release(key(1), 0);
  ASSERT_TRUE(t.remember(key(1), 12, 30080, 20'000, kTimeout));
  const AffinityEntry* e = t.find(key(1), 20'000, kTimeout);
  ASSERT_NE(e, nullptr);
  EXPECT_EQ(e->node_ip, 12u);
  EXPECT_EQ(e->flows, 1u);
  EXPECT_EQ(t.size(), 1u);
}

TEST(AffinityTable, SweepClearsExpiredEntriesWithinItsBudget) {
  AffinityTable t(4096);  // 1024 buckets
  for (uint32_t c = 1; c <= 300; ++c) {
    ASSERT_TRUE(t.remember(key(c), 11, 30080, 0, kTimeout));
    if (c % 3 != 0) t.release(key(c), 0);  // every third client keeps a flow
  }
  EXPECT_EQ(t.size(), 300u);
  EXPECT_EQ(t.expire(kTimeout, 1024), 0u) << "nothing is past its timeout yet";
  uint32_t cleared = 0;
  for (int round = 0; round < 4; ++round) cleared += t.expire(kTimeout + 1, 256);
  EXPECT_EQ(cleared, 200u);
  EXPECT_EQ(t.size(), 100u);
  EXPECT_EQ(t.expire(kTimeout + 1, 1024), 0u);
  for (uint32_t c = 1; c <= 300; ++c) EXPECT_EQ(t.find(key(c), kTimeout + 1, kTimeout) != nullptr, c % 3 == 0) << c;
}

TEST(AffinityTable, TheClockMayWrap) {
  AffinityTable t(64);
  const uint32_t before_wrap = 0u - 3'000u;
  ASSERT_TRUE(t.remember(key(1), 11, 30080, before_wrap, kTimeout));
  t.release(key(1), before_wrap + 1'000);  // 2 s before the wrap
  EXPECT_NE(t.find(key(1), 7'000, kTimeout), nullptr) << "9 s idle across the wrap";
  EXPECT_EQ(t.find(key(1), 9'000, kTimeout), nullptr) << "11 s idle across the wrap";
  EXPECT_EQ(t.expire(9'000, 16), 1u);
}

}  // namespace
}  // namespace ng::lb
