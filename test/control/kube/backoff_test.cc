#include "control/kube/backoff.h"

#include <gtest/gtest.h>

namespace ng::kube {
namespace {

using namespace std::chrono_literals;

TEST(Backoff, DoublesWithJitterUpToTheCapAndResets) {
  for (uint64_t seed = 0; seed < 50; ++seed) {
    Backoff b(800ms, 30000ms, seed);
    const int64_t nominal[] = {800, 1600, 3200, 6400, 12800, 25600, 30000, 30000, 30000};
    for (const int64_t step : nominal) {
      const auto wait = b.next();
      EXPECT_GE(wait.count(), step - step / 4) << "seed " << seed;
      EXPECT_LE(wait.count(), step) << "seed " << seed;
    }
    EXPECT_EQ(b.failures(), 9u);
    b.reset();
    EXPECT_EQ(b.failures(), 0u);
    EXPECT_EQ(b.base(), 800ms);
    EXPECT_LE(b.next(), 800ms);
  }
}

TEST(Backoff, JitterSpreadsPeersApart) {
  Backoff a(1000ms, 30000ms, 1), b(1000ms, 30000ms, 2);
  bool differ = false;
  for (int i = 0; i < 5; ++i) differ = differ || a.next() != b.next();
  EXPECT_TRUE(differ);
}

TEST(Backoff, FloorRaisesTheWait) {
  Backoff b(10ms, 40ms, 7);
  EXPECT_EQ(b.next(5000ms), 5000ms);
  EXPECT_EQ(b.base(), 20ms) << "a floor still counts as a failure";
  EXPECT_LE(b.next(1ms), 20ms);
}

}  // namespace
}  // namespace ng::kube
