#include "dataplane/lb/fragment_table.h"

#include <gtest/gtest.h>

#include <stdexcept>

namespace ng::lb {
namespace {

FragmentKey keyOf(uint16_t id) { return {.src_ip = 0x0a640002, .dst_ip = 0x0a640064, .id = id, .proto = 17}; }

TEST(FragmentTableTest, ConstructionLimits) {
  EXPECT_THROW(FragmentTable(0), std::invalid_argument);
  EXPECT_THROW(FragmentTable((1u << 24) + 1), std::invalid_argument);
  EXPECT_EQ(FragmentTable(1).capacity(), FragmentTable::kWays);
  EXPECT_EQ(FragmentTable(4096).capacity(), 4096u);
  EXPECT_EQ(FragmentTable(4097).capacity(), 8192u);
}

TEST(FragmentTableTest, InsertFindEraseAndRestart) {
  FragmentTable t(64, 1000);
  EXPECT_EQ(t.find(keyOf(1), 0), nullptr);
  FragmentEntry* e = t.insert(keyOf(1), 10);
  ASSERT_NE(e, nullptr);
  EXPECT_EQ(e->key, keyOf(1));
  EXPECT_EQ(e->created_ms, 10u);
  e->received = 1480;
  EXPECT_EQ(t.find(keyOf(1), 20), e);
  EXPECT_EQ(t.find(keyOf(2), 20), nullptr);
  EXPECT_EQ(t.size(), 1u);
  // The same datagram's first fragment again: the same entry, started over.
  EXPECT_EQ(t.insert(keyOf(1), 30), e);
  EXPECT_EQ(e->received, 0u);
  EXPECT_EQ(e->created_ms, 30u);
  EXPECT_EQ(t.size(), 1u);
  t.erase(e);
  EXPECT_EQ(t.find(keyOf(1), 30), nullptr);
  EXPECT_EQ(t.size(), 0u);
  t.erase(e);  // twice: harmless
  EXPECT_EQ(t.size(), 0u);
}

TEST(FragmentTableTest, AFullBucketRefusesUntilAnEntryAges) {
  FragmentTable t(1, 1000);  // one bucket: every key shares it
  for (uint16_t id = 0; id < FragmentTable::kWays; ++id) ASSERT_NE(t.insert(keyOf(id), 0), nullptr);
  EXPECT_EQ(t.insert(keyOf(100), 1000), nullptr) << "live entries are never evicted";
  EXPECT_NE(t.find(keyOf(0), 1000), nullptr) << "idle exactly for the timeout: still live";
  EXPECT_EQ(t.find(keyOf(0), 1001), nullptr) << "aged out";
  FragmentEntry* e = t.insert(keyOf(100), 1001);
  ASSERT_NE(e, nullptr) << "an aged way is reused in place";
  EXPECT_EQ(t.size(), FragmentTable::kWays);
}

TEST(FragmentTableTest, SweepClearsAgedEntriesAcrossTheClockWrap) {
  FragmentTable t(16, 1000);
  const uint32_t t0 = 0xffffffffu - 100;
  for (uint16_t id = 0; id < 8; ++id) ASSERT_NE(t.insert(keyOf(id), t0), nullptr);
  EXPECT_EQ(t.sweep(t0 + 1000, 1000), 0u);
  EXPECT_EQ(t.size(), 8u);
  EXPECT_EQ(t.sweep(t0 + 1001, 1000), 8u);  // now_ms wrapped past 2^32
  EXPECT_EQ(t.size(), 0u);
}

}  // namespace
}  // namespace ng::lb
