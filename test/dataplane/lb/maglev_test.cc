#include "dataplane/lb/maglev.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cstdio>
#include <random>
#include <stdexcept>
#include <string>
#include <vector>

namespace ng::lb {
namespace {

constexpr uint16_t kNone = MaglevTable::kNoBackend;

// Slot -> backend id, so tables built from differently ordered spans compare by identity.
std::vector<uint64_t> idsOf(const MaglevTable& t, std::span<const MaglevBackend> backends) {
  std::vector<uint64_t> ids;
  ids.reserve(t.size());
  for (uint16_t e : t.slots()) ids.push_back(e == kNone ? ~uint64_t{0} : backends[e].id);
  return ids;
}

std::vector<uint32_t> countsOf(const MaglevTable& t, size_t n) {
  std::vector<uint32_t> counts(n, 0);
  for (uint16_t e : t.slots()) {
    if (e != kNone) ++counts[e];
  }
  return counts;
}

std::vector<MaglevBackend> equalBackends(size_t n) {
  std::vector<MaglevBackend> b;
  // Ids shaped like IPv4 node addresses (10.0.x.y), which is what NodeGate passes.
  for (size_t i = 0; i < n; ++i) b.push_back({.id = 0x0a000000u + 1 + i, .weight = 1});
  return b;
}

// Exact tables on tiny primes (Katran/Envoy style). Permutations of ids 1, 2, 3, i.e.
// (offset, skip) from our hash of the identity:
//   M=7:  id1 (0,1): 0 1 2 3 4 5 6   id2 (5,6): 5 4 3 2 1 0 6   id3 (3,4): 3 0 4 1 5 2 6
//   M=13: id1 (9,1): 9 10 11 12 0 1 ...          id2 (6,6): 6 12 5 11 4 10 3 9 2 8 ...
//         id3 (4,4): 4 8 12 3 7 11 2 6 10 1 5 9 0
// Equal weights, M=7, rounds in id order:
//   r0: id1->0, id2->5, id3->3; r1: id1->1, id2->4, id3 skips 0,4,1,5 ->2; r2: id1 skips
//   2,3,4,5 ->6. Full.
// M=13: r0: 9,6,4; r1: 10,12,8; r2: 11, 5, id3 skips 12 ->3; r3: id1 skips 12 ->0,
//   id2 skips 11,4,10,3,9 ->2, id3 ->7; r4: id1 ->1. Full.
TEST(MaglevTest, ExactTableM7) {
  const MaglevBackend b[] = {{.id = 1}, {.id = 2}, {.id = 3}};
  const auto t = MaglevTable::build(b, 7);
  EXPECT_EQ(idsOf(t, b), (std::vector<uint64_t>{1, 1, 3, 3, 2, 2, 1}));
}

TEST(MaglevTest, ExactTableM13) {
  const MaglevBackend b[] = {{.id = 1}, {.id = 2}, {.id = 3}};
  const auto t = MaglevTable::build(b, 13);
  EXPECT_EQ(idsOf(t, b), (std::vector<uint64_t>{1, 1, 2, 3, 3, 2, 2, 3, 3, 1, 1, 1, 2}));
}

// Weights 1:2:3 (wmax 3): id3 has a turn every round, id2 in rounds 1, 2, 4, 5, ...,
// id1 in rounds 2, 5, ...
//   M=7:  r0: id3->3; r1: id2->5, id3->0; r2: id1 skips 0 ->1, id2->4, id3 skips 4,1,5
//         ->2; r3: id3->6.
//   M=13: r0: id3->4; r1: id2->6, id3->8; r2: id1->9, id2->12, id3 skips 12 ->3;
//         r3: id3->7; r4: id2->5, id3->11; r5: id1->10, id2 skips 11,4,10,3,9 ->2,
//         id3 skips 2,6,10 ->1; r6: id3 skips 5,9 ->0.
TEST(MaglevTest, ExactWeightedTables) {
  const MaglevBackend b[] = {{.id = 1, .weight = 1}, {.id = 2, .weight = 2},
                             {.id = 3, .weight = 3}};
  EXPECT_EQ(idsOf(MaglevTable::build(b, 7), b), (std::vector<uint64_t>{3, 1, 3, 3, 2, 2, 3}));
  EXPECT_EQ(idsOf(MaglevTable::build(b, 13), b),
            (std::vector<uint64_t>{3, 3, 2, 3, 3, 2, 2, 3, 3, 1, 1, 3, 2}));
}

TEST(MaglevTest, EntriesAreIndicesIntoTheSpanAsPassed) {
  const MaglevBackend b[] = {{.id = 3}, {.id = 1}, {.id = 2}};
  const auto t = MaglevTable::build(b, 7);
  // Same identities as ExactTableM7; indices refer to this span's order.
  EXPECT_EQ(std::vector<uint16_t>(t.slots().begin(), t.slots().end()),
            (std::vector<uint16_t>{1, 1, 0, 0, 2, 2, 1}));
}

TEST(MaglevTest, DeterministicForAnyInputOrder) {
  auto backends = equalBackends(50);
  for (size_t i = 0; i < backends.size(); ++i) backends[i].weight = 1 + i % 4;
  const auto reference = idsOf(MaglevTable::build(backends, 4099), backends);
  std::mt19937 rng(12345);
  for (int round = 0; round < 10; ++round) {
    std::shuffle(backends.begin(), backends.end(), rng);
    ASSERT_EQ(idsOf(MaglevTable::build(backends, 4099), backends), reference) << round;
  }
}

TEST(MaglevTest, EqualWeightsBalance) {
  constexpr uint32_t kM = 65537;
  constexpr size_t kN = 100;
  const auto backends = equalBackends(kN);
  const auto counts = countsOf(MaglevTable::build(backends, kM), kN);
  const double ideal = static_cast<double>(kM) / kN;
  for (size_t i = 0; i < kN; ++i) {
    EXPECT_NEAR(counts[i], ideal, 0.01 * ideal) << "backend " << i;
  }
}

TEST(MaglevTest, WeightsSetShares) {
  constexpr uint32_t kM = 65537;
  const MaglevBackend b[] = {{.id = 0x0a000001, .weight = 1}, {.id = 0x0a000002, .weight = 3}};
  const auto counts = countsOf(MaglevTable::build(b, kM), 2);
  EXPECT_EQ(counts[0] + counts[1], kM);
  EXPECT_NEAR(100.0 * counts[0] / kM, 25.0, 1.0);
  EXPECT_NEAR(100.0 * counts[1] / kM, 75.0, 1.0);
}

TEST(MaglevTest, WeightZeroTakesNoSlots) {
  auto backends = equalBackends(10);
  backends[4].weight = 0;
  const auto counts = countsOf(MaglevTable::build(backends, 65537), backends.size());
  EXPECT_EQ(counts[4], 0u);
  for (size_t i = 0; i < backends.size(); ++i) {
    if (i != 4) {
      EXPECT_GT(counts[i], 0u);
    }
  }
}

TEST(MaglevTest, AllZeroOrEmptyGivesNoBackend) {
  auto backends = equalBackends(5);
  for (auto& b : backends) b.weight = 0;
  for (const auto& t : {MaglevTable::build(backends, 13), MaglevTable::build({}, 13)}) {
    ASSERT_EQ(t.size(), 13u);
    for (uint16_t e : t.slots()) EXPECT_EQ(e, kNone);
    EXPECT_EQ(t.lookup(0x123456789), kNone);
  }
}

// Removing 1 of N must move about M/N slots: the removed backend's own slots plus the
// knock-on moves of Maglev's round-robin fill (section 3.4 trades a little extra
// disruption for balance; the excess grows with N at a fixed M).
//
// Measured bound for N=100, M=65537: removing each of the 100 backends in turn moves
// 1.51x-1.63x M/N (median 1.56x), and an independent implementation of the paper's
// pseudocode with random (offset, skip) pairs gives the same (mean 1.54x). So 1.5x holds
// for N=10 (1.03x) but is not attainable by Maglev at N=100; we assert 1.75x there.
void checkRemoveOne(size_t n, double max_ratio) {
  constexpr uint32_t kM = 65537;
  const auto before = equalBackends(n);
  auto after = before;
  after.erase(after.begin() + static_cast<std::ptrdiff_t>(n / 2));
  const auto a = MaglevTable::build(before, kM);
  const auto b = MaglevTable::build(after, kM);
  const uint32_t moved = MaglevTable::slotsMoved(a, before, b, after);
  const double ideal = static_cast<double>(kM) / n;
  const double ratio = moved / ideal;
  std::printf("remove 1 of %zu: %u slots moved of %u (%.2f%%), ideal %.0f, ratio %.3f\n", n,
              moved, kM, 100.0 * moved / kM, ideal, ratio);
  ::testing::Test::RecordProperty("slots_moved_1_of_" + std::to_string(n),
                                  std::to_string(moved));
  ::testing::Test::RecordProperty("moved_ratio_1_of_" + std::to_string(n), std::to_string(ratio));
  // Every slot of the removed backend must move, so its share is a floor.
  EXPECT_GE(moved, countsOf(a, n)[n / 2]);
  EXPECT_LE(ratio, max_ratio);
}

TEST(MaglevTest, RemoveOneOfTenMovesAboutATenth) { checkRemoveOne(10, 1.5); }
TEST(MaglevTest, RemoveOneOfHundredMovesAboutAHundredth) { checkRemoveOne(100, 1.75); }

// Draining (weight 0) gives exactly the table without the backend, so a drain followed
// by removal moves nothing the second time.
TEST(MaglevTest, DrainEqualsRemoval) {
  auto drained = equalBackends(30);
  drained[7].weight = 0;
  auto removed = drained;
  removed.erase(removed.begin() + 7);
  EXPECT_EQ(MaglevTable::slotsMoved(MaglevTable::build(drained, 4099), drained,
                                    MaglevTable::build(removed, 4099), removed),
            0u);
}

TEST(MaglevTest, SlotsMovedComparesIdentities) {
  const auto backends = equalBackends(20);
  const auto t = MaglevTable::build(backends, 251);
  EXPECT_EQ(MaglevTable::slotsMoved(t, backends, t, backends), 0u);
  auto reversed = backends;
  std::reverse(reversed.begin(), reversed.end());
  const auto r = MaglevTable::build(reversed, 251);
  EXPECT_NE(t, r);  // different indices ...
  EXPECT_EQ(MaglevTable::slotsMoved(t, backends, r, reversed), 0u);  // ... same identities
  const auto empty = MaglevTable::build({}, 251);
  EXPECT_EQ(MaglevTable::slotsMoved(t, backends, empty, {}), 251u);
  EXPECT_THROW((void)MaglevTable::slotsMoved(t, backends, MaglevTable::build(backends, 257),
                                             backends),
               std::invalid_argument);
}

TEST(MaglevTest, InvalidSizesThrow) {
  const auto backends = equalBackends(3);
  for (uint32_t size : {0u, 1u, 4u, 9u, 65536u, 65535u}) {
    EXPECT_THROW((void)MaglevTable::build(backends, size), std::invalid_argument) << size;
  }
  EXPECT_NO_THROW((void)MaglevTable::build(backends, 2));
}

TEST(MaglevTest, DuplicateIdsAndTooManyBackendsThrow) {
  const MaglevBackend dup[] = {{.id = 5}, {.id = 6}, {.id = 5, .weight = 2}};
  EXPECT_THROW((void)MaglevTable::build(dup, 13), std::invalid_argument);
  const auto many = equalBackends(65536);
  EXPECT_THROW((void)MaglevTable::build(many, 65537), std::invalid_argument);
}

TEST(MaglevTest, LookupCoversTheTable) {
  const auto backends = equalBackends(3);
  const auto t = MaglevTable::build(backends, 7);
  EXPECT_EQ(t.lookup(0), t.slots()[0]);
  EXPECT_EQ(t.lookup(0xffffffffu), t.slots()[6]);
  // Only the low 32 bits of the flow hash select the slot.
  EXPECT_EQ(t.lookup(0xabcdef0000000000u), t.slots()[0]);
}

TEST(MaglevTest, IsPrime) {
  for (uint32_t p : {2u, 3u, 5u, 7u, 13u, 251u, 4099u, 65537u, 4294967291u}) {
    EXPECT_TRUE(isPrime(p)) << p;
  }
  for (uint32_t c : {0u, 1u, 4u, 9u, 15u, 65535u, 65536u, 4294967295u}) {
    EXPECT_FALSE(isPrime(c)) << c;
  }
}

}  // namespace
}  // namespace ng::lb
