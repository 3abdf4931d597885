#include "health/target_state.h"

#include <gtest/gtest.h>

namespace ng::health {
namespace {

TEST(TargetState, FallsAfterFallConsecutiveFailures) {
  TargetState t(/*rise=*/2, /*fall=*/3);
  EXPECT_FALSE(t.record(false));
  EXPECT_FALSE(t.record(false));
  EXPECT_TRUE(t.up());
  EXPECT_TRUE(t.record(false));
  EXPECT_FALSE(t.up());
  EXPECT_EQ(t.transitions(), 1u);
}

TEST(TargetState, ASuccessBreaksAFailureStreak) {
  TargetState t(2, 3);
  t.record(false);
  t.record(false);
  t.record(true);
  t.record(false);
  t.record(false);
  EXPECT_TRUE(t.up());
  EXPECT_TRUE(t.record(false));
  EXPECT_FALSE(t.up());
}

TEST(TargetState, RisesAfterRiseConsecutiveSuccesses) {
  TargetState t(2, 3, /*initially_up=*/false);
  EXPECT_FALSE(t.record(true));
  EXPECT_FALSE(t.up());
  EXPECT_TRUE(t.record(true));
  EXPECT_TRUE(t.up());
}

TEST(TargetState, FlappingEverySecondProbeNeverTransitions) {
  TargetState t(2, 3);
  for (int i = 0; i < 100; ++i) EXPECT_FALSE(t.record(i % 2 == 0));
  EXPECT_EQ(t.transitions(), 0u);
}

TEST(TargetState, ZeroRiseAndFallAreClampedToOne) {
  TargetState t(0, 0);
  EXPECT_TRUE(t.record(false));
  EXPECT_TRUE(t.record(true));
}

}  // namespace
}  // namespace ng::health
