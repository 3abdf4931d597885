#include "health/target_state.h"

#include <gtest/gtest.h>

namespace ng::health {
namespace {

const ProbeOutcome kOk = ProbeOutcome::ok("HTTP 200", 200);
const ProbeOutcome kRefused = ProbeOutcome::fail(FailReason::kRefused, "connection refused");
const ProbeOutcome kDrain503 = ProbeOutcome::drain("HTTP 503");

ProbeOutcome okWeight(uint32_t w) { return ProbeOutcome::ok("HTTP 200", 200, w); }

TEST(TargetState, FallsAfterFallConsecutiveFailures) {
  TargetState t(/*rise=*/2, /*fall=*/3);
  EXPECT_FALSE(t.record(kRefused, 1).state);
  EXPECT_FALSE(t.record(kRefused, 2).state);
  EXPECT_TRUE(t.up());
  const auto change = t.record(kRefused, 3);
  EXPECT_TRUE(change.state);
  EXPECT_TRUE(change.serving);
  EXPECT_FALSE(change.weight);
  EXPECT_EQ(t.state(), HealthState::kDown);
  EXPECT_EQ(t.transitions(), 1u);
  EXPECT_EQ(t.lastChangeUnixMs(), 3);
  EXPECT_EQ(t.lastReason(), FailReason::kRefused);
  EXPECT_EQ(t.lastDetail(), "connection refused");
  EXPECT_EQ(t.probes(), 3u);
  EXPECT_EQ(t.failures(), 3u);
}

TEST(TargetState, ASuccessBreaksAFailureStreak) {
  TargetState t(2, 3);
  t.record(kRefused, 1);
  t.record(kRefused, 2);
  t.record(kOk, 3);
  t.record(kRefused, 4);
  t.record(kRefused, 5);
  EXPECT_TRUE(t.up());
  EXPECT_TRUE(t.record(kRefused, 6).state);
  EXPECT_FALSE(t.up());
}

TEST(TargetState, RisesAfterRiseConsecutiveSuccesses) {
  TargetState t(2, 3, HealthState::kDown);
  EXPECT_FALSE(t.record(kOk, 1).state);
  EXPECT_FALSE(t.up());
  const auto change = t.record(kOk, 2);
  EXPECT_TRUE(change.state);
  EXPECT_TRUE(change.serving);
  EXPECT_TRUE(t.up());
  ASSERT_EQ(t.history().size(), 1u);
  EXPECT_EQ(t.history()[0].from, HealthState::kDown);
  EXPECT_EQ(t.history()[0].to, HealthState::kUp);
  EXPECT_EQ(t.history()[0].reason, FailReason::kNone);
}

TEST(TargetState, AFailureBreaksARiseStreak) {
  TargetState t(3, 1, HealthState::kDown);
  t.record(kOk, 1);
  t.record(kOk, 2);
  t.record(kRefused, 3);
  t.record(kOk, 4);
  t.record(kOk, 5);
  EXPECT_FALSE(t.up());
  EXPECT_TRUE(t.record(kOk, 6).state);
}

TEST(TargetState, FlappingEverySecondProbeNeverTransitions) {
  TargetState t(2, 3);
  for (int i = 0; i < 100; ++i) EXPECT_FALSE(t.record(i % 2 == 0 ? kOk : kRefused, i).state);
  EXPECT_EQ(t.transitions(), 0u);
  EXPECT_TRUE(t.history().empty());
}

TEST(TargetState, ZeroRiseAndFallAreClampedToOne) {
  TargetState t(0, 0);
  EXPECT_TRUE(t.record(kRefused, 1).state);
  EXPECT_TRUE(t.record(kOk, 2).state);
}

TEST(TargetState, DrainsWhenTheLastOfFallResultsIsA503) {
  TargetState t(2, 3);
  t.record(kRefused, 1);
  t.record(kRefused, 2);
  EXPECT_TRUE(t.record(kDrain503, 3).state);  // 503 and refused both count toward fall
  EXPECT_EQ(t.state(), HealthState::kDraining);
  EXPECT_FALSE(t.serving());
  EXPECT_EQ(t.lastReason(), FailReason::kHttpStatus);
  EXPECT_EQ(t.lastDetail(), "HTTP 503");
}

TEST(TargetState, WhileNotUpTheStateFollowsTheLatestResult) {
  TargetState t(2, 1);
  EXPECT_TRUE(t.record(kDrain503, 1).state);
  EXPECT_EQ(t.state(), HealthState::kDraining);
  auto change = t.record(kRefused, 2);  // the node died while draining
  EXPECT_TRUE(change.state);
  EXPECT_FALSE(change.serving);  // it was not serving either way
  EXPECT_EQ(t.state(), HealthState::kDown);
  EXPECT_FALSE(t.record(kRefused, 3).state);
  EXPECT_TRUE(t.record(kDrain503, 4).state);
  EXPECT_EQ(t.state(), HealthState::kDraining);
  EXPECT_EQ(t.transitions(), 3u);
}

TEST(TargetState, WeightZeroKeepsTheTargetUpButNotServing) {
  TargetState t(2, 3);
  EXPECT_EQ(t.weight(), 1u);
  auto change = t.record(okWeight(0), 1);
  EXPECT_FALSE(change.state);
  EXPECT_TRUE(change.serving);
  EXPECT_TRUE(change.weight);
  EXPECT_TRUE(t.up());
  EXPECT_FALSE(t.serving());
  change = t.record(okWeight(4), 2);  // weights apply at once, no rise needed
  EXPECT_TRUE(change.serving);
  EXPECT_TRUE(change.weight);
  EXPECT_TRUE(t.serving());
  EXPECT_EQ(t.weight(), 4u);
  change = t.record(okWeight(4), 3);
  EXPECT_FALSE(change.serving || change.weight || change.state);
}

TEST(TargetState, AnOkWithoutWeightResetsTheWeightToOne) {
  TargetState t(1, 1);
  t.record(okWeight(0), 1);
  EXPECT_FALSE(t.serving());
  EXPECT_TRUE(t.record(kOk, 2).weight);
  EXPECT_EQ(t.weight(), 1u);
  EXPECT_TRUE(t.serving());
}

TEST(TargetState, FailuresKeepTheLastReportedWeight) {
  TargetState t(1, 2);
  t.record(okWeight(7), 1);
  EXPECT_FALSE(t.record(kRefused, 2).weight);
  EXPECT_EQ(t.weight(), 7u);
  EXPECT_TRUE(t.record(kRefused, 3).serving);
  EXPECT_EQ(t.weight(), 7u);
}

TEST(TargetState, HistoryKeepsTheLastSixteenTransitionsOldestFirst) {
  TargetState t(1, 1);
  for (int i = 0; i < 40; ++i) t.record(i % 2 == 0 ? kRefused : kOk, 1000 + i);
  EXPECT_EQ(t.transitions(), 40u);
  ASSERT_EQ(t.history().size(), TargetState::kHistory);
  EXPECT_EQ(t.history().front().unix_ms, 1000 + 40 - 16);
  EXPECT_EQ(t.history().back().unix_ms, 1000 + 39);
  EXPECT_EQ(t.history().back().to, HealthState::kUp);
  EXPECT_EQ(t.history().front().to, HealthState::kDown);
}

TEST(TargetState, NewHysteresisAppliesToTheRunningStreak) {
  TargetState t(2, 5);
  t.record(kRefused, 1);
  t.record(kRefused, 2);
  t.setHysteresis(2, 3);
  EXPECT_TRUE(t.record(kRefused, 3).state);
}

TEST(TargetState, LastFailureIsKeptAfterRecovery) {
  TargetState t(1, 1, HealthState::kUp, /*created_unix_ms=*/500);
  EXPECT_EQ(t.lastChangeUnixMs(), 500);
  EXPECT_EQ(t.lastProbeUnixMs(), 0);
  t.record(kRefused, 600);
  t.record(kOk, 700);
  EXPECT_TRUE(t.up());
  EXPECT_EQ(t.lastReason(), FailReason::kRefused);
  EXPECT_EQ(t.lastChangeUnixMs(), 700);
  EXPECT_EQ(t.lastProbeUnixMs(), 700);
}

TEST(TargetState, StateNames) {
  EXPECT_STREQ(healthStateName(HealthState::kUp), "up");
  EXPECT_STREQ(healthStateName(HealthState::kDraining), "draining");
  EXPECT_STREQ(healthStateName(HealthState::kDown), "down");
}

}  // namespace
}  // namespace ng::health
