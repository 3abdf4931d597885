#include "dataplane/fwd/neighbor.h"

#include <gtest/gtest.h>

namespace ng::fwd {
namespace {

const NeighborTable::Mac kMacA{2, 0, 0, 0, 0, 0xa};
const NeighborTable::Mac kMacB{2, 0, 0, 0, 0, 0xb};

TEST(NeighborTable, LearnsAndLooksUp) {
  NeighborTable t(16);
  EXPECT_FALSE(t.lookup(1));
  t.learn(1, kMacA, 0);
  ASSERT_TRUE(t.lookup(1));
  EXPECT_EQ(*t.lookup(1), kMacA);
  t.learn(1, kMacB, 5);
  EXPECT_EQ(*t.lookup(1), kMacB);
}

TEST(NeighborTable, WantRateLimitsRequests) {
  NeighborTable t(16);
  EXPECT_TRUE(t.want(7, 0));
  EXPECT_TRUE(t.pending(7));
  EXPECT_FALSE(t.want(7, 999));
  EXPECT_TRUE(t.want(7, 1000));
  t.learn(7, kMacA, 1001);
  EXPECT_FALSE(t.pending(7));
  EXPECT_FALSE(t.want(7, 5000)) << "resolved: nothing to ask";
}

TEST(NeighborTable, StaticEntriesWinOverLearningAndAreNeverEvicted) {
  NeighborTable t(1);  // one set of 4 ways: everything collides
  t.learn(100, kMacA, 0, /*is_static=*/true);
  t.learn(100, kMacB, 1);
  EXPECT_EQ(*t.lookup(100), kMacA);
  for (uint32_t ip = 1; ip < 50; ++ip) t.learn(ip, kMacB, ip);
  ASSERT_TRUE(t.lookup(100));
  EXPECT_EQ(*t.lookup(100), kMacA);
  EXPECT_EQ(t.size(), NeighborTable::kWays) << "bounded: a flood of addresses cannot grow the table";
}

TEST(NeighborTable, EvictsTheLeastRecentlyLearned) {
  NeighborTable t(1);
  for (uint32_t ip = 1; ip <= 4; ++ip) t.learn(ip, kMacA, ip * 10);
  t.learn(5, kMacB, 100);
  EXPECT_FALSE(t.lookup(1)) << "oldest entry goes first";
  EXPECT_TRUE(t.lookup(2));
  EXPECT_TRUE(t.lookup(5));
}

TEST(NeighborTable, RefreshReconfirmsOldEntriesButKeepsThemUsable) {
  NeighborTable t(16);
  t.learn(9, kMacA, 0);
  EXPECT_FALSE(t.refreshDue(9, NeighborTable::kRefreshMs - 1));
  EXPECT_TRUE(t.refreshDue(9, NeighborTable::kRefreshMs));
  EXPECT_TRUE(t.lookup(9)) << "still usable while re-confirming";
  EXPECT_FALSE(t.refreshDue(9, NeighborTable::kRefreshMs + 10)) << "one request per second";
  t.learn(3, kMacA, 0, true);
  EXPECT_FALSE(t.refreshDue(3, 10 * NeighborTable::kRefreshMs)) << "static entries are never re-asked";
}

}  // namespace
}  // namespace ng::fwd
