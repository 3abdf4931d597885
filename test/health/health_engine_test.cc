// The engine's scheduling and state machine over a scripted fake prober (no sockets).
// Intervals are short, but every assertion waits for a condition with a generous
// deadline instead of sleeping a fixed time, so a loaded machine only makes it slower.
#include "health/health_engine.h"

#include <gtest/gtest.h>

#include <asio.hpp>
#include <atomic>
#include <deque>
#include <map>
#include <mutex>
#include <thread>

namespace ng::health {
namespace {

using namespace std::chrono_literals;

// Shared between the test thread (writes the script) and the engine thread (probes).
struct Script {
  std::mutex mu;
  std::map<ProbeSpec, std::deque<ProbeOutcome>> queued;  // served first, in order
  std::map<ProbeSpec, ProbeOutcome> steady;              // then this, forever
  std::map<ProbeSpec, std::vector<std::chrono::steady_clock::time_point>> calls;
  std::map<ProbeSpec, int> forgotten;  // Prober::forget() calls
  int throw_next = 0;  // probe() throws this many times first (a prober out of sockets)

  void setSteady(const ProbeSpec& p, ProbeOutcome o) {
    std::lock_guard lock(mu);
    steady[p] = std::move(o);
  }
  void queue(const ProbeSpec& p, std::vector<ProbeOutcome> outcomes) {
    std::lock_guard lock(mu);
    for (auto& o : outcomes) queued[p].push_back(std::move(o));
  }
  size_t callCount(const ProbeSpec& p) {
    std::lock_guard lock(mu);
    return calls[p].size();
  }
  std::vector<std::chrono::steady_clock::time_point> callTimes(const ProbeSpec& p) {
    std::lock_guard lock(mu);
    return calls[p];
  }
  int forgetCount(const ProbeSpec& p) {
    std::lock_guard lock(mu);
    return forgotten[p];
  }
};

class ScriptedProber final : public Prober {
 public:
  ScriptedProber(asio::io_context& io, std::shared_ptr<Script> script)
      : io_(io), script_(std::move(script)) {}

  void probe(const ProbeSpec& spec, std::chrono::milliseconds,
             std::function<void(ProbeOutcome)> done) override {
    ProbeOutcome outcome = ProbeOutcome::ok("connected");
    {
      std::lock_guard lock(script_->mu);
      if (script_->throw_next > 0) {
        --script_->throw_next;
        throw std::runtime_error("Too many open files");
      }
      script_->calls[spec].push_back(std::chrono::steady_clock::now());
      auto& q = script_->queued[spec];
      if (!q.empty()) {
        outcome = q.front();
        q.pop_front();
      } else if (auto it = script_->steady.find(spec); it != script_->steady.end()) {
        outcome = it->second;
      }
    }
    // Like a real prober: the result arrives later, on the loop, never inside probe().
    asio::post(io_, [done = std::move(done), outcome = std::move(outcome)] { done(outcome); });
  }

  void forget(const ProbeSpec& spec) override {
    std::lock_guard lock(script_->mu);
    ++script_->forgotten[spec];
  }

 private:
  asio::io_context& io_;
  std::shared_ptr<Script> script_;
};

ProbeSpec spec(int i, ProbeKind kind = ProbeKind::kHttp) {
  return {.kind = kind, .address = "10.0.0." + std::to_string(i), .port = 10256};
}

const ProbeTiming kFast{.interval_ms = 20, .timeout_ms = 10, .rise = 2, .fall = 3};
const ProbeOutcome kRefused = ProbeOutcome::fail(FailReason::kRefused, "connection refused");
const ProbeOutcome kDrain = ProbeOutcome::drain("HTTP 503");
ProbeOutcome ok(std::optional<uint32_t> weight = std::nullopt) {
  return ProbeOutcome::ok("HTTP 200", 200, weight);
}

template <class Pred>
bool eventually(Pred pred, std::chrono::milliseconds limit = 5000ms) {
  const auto deadline = std::chrono::steady_clock::now() + limit;
  while (std::chrono::steady_clock::now() < deadline) {
    if (pred()) return true;
    std::this_thread::sleep_for(2ms);
  }
  return pred();
}

class HealthEngineTest : public testing::Test {
 protected:
  HealthEngineTest()
      : script_(std::make_shared<Script>()),
        engine_([s = script_](asio::io_context& io) { return std::make_unique<ScriptedProber>(io, s); },
                [this] { changes_.fetch_add(1); }) {}

  TargetStatus st(const ProbeSpec& p) {
    auto s = engine_.status(p);
    EXPECT_TRUE(s.has_value()) << p.url();
    return s.value_or(TargetStatus{});
  }
  bool probedAtLeast(const ProbeSpec& p, uint64_t n) {
    auto s = engine_.status(p);
    return s && s->probes >= n;
  }

  std::shared_ptr<Script> script_;
  std::atomic<int> changes_{0};
  HealthEngine engine_;
};

TEST_F(HealthEngineTest, NewTargetsStartUpAndServingBeforeAnyProbe) {
  engine_.setTargets({{spec(1), kFast}});
  const auto s = st(spec(1));
  EXPECT_EQ(s.state, HealthState::kUp);
  EXPECT_TRUE(s.serving);
  EXPECT_EQ(s.weight, 1u);
  EXPECT_EQ(s.probes, 0u);
  EXPECT_EQ(s.last_probe_unix_ms, 0);
  EXPECT_GT(s.last_change_unix_ms, 0);
  EXPECT_EQ(s.timing, kFast);
  EXPECT_FALSE(engine_.status(spec(2)).has_value());
}

TEST_F(HealthEngineTest, FallsAfterFallFailuresAndRisesAfterRiseSuccesses) {
  script_->queue(spec(1), {kRefused, kRefused, kRefused, ok(), ok()});
  engine_.setTargets({{spec(1), kFast}});
  engine_.start();
  ASSERT_TRUE(eventually([&] { return probedAtLeast(spec(1), 8); }));
  const auto s = st(spec(1));
  EXPECT_EQ(s.state, HealthState::kUp);
  ASSERT_EQ(s.history.size(), 2u);
  EXPECT_EQ(s.history[0].from, HealthState::kUp);
  EXPECT_EQ(s.history[0].to, HealthState::kDown);
  EXPECT_EQ(s.history[0].reason, FailReason::kRefused);
  EXPECT_EQ(s.history[0].detail, "connection refused");
  EXPECT_EQ(s.history[1].to, HealthState::kUp);
  EXPECT_EQ(s.history[1].reason, FailReason::kNone);
  EXPECT_LE(s.history[0].unix_ms, s.history[1].unix_ms);
  EXPECT_EQ(s.transitions, 2u);
  EXPECT_EQ(s.failures, 3u);
  EXPECT_EQ(s.last_reason, FailReason::kRefused);
  EXPECT_EQ(changes_.load(), 2);  // serving true -> false -> true
}

TEST_F(HealthEngineTest, FewerThanFallFailuresInARowNeverTakeATargetOut) {
  script_->queue(spec(1), {kRefused, kRefused, ok(), kRefused, kRefused, ok(), kDrain, kDrain, ok()});
  engine_.setTargets({{spec(1), kFast}});
  engine_.start();
  ASSERT_TRUE(eventually([&] { return probedAtLeast(spec(1), 12); }));
  const auto s = st(spec(1));
  EXPECT_EQ(s.transitions, 0u);
  EXPECT_TRUE(s.serving);
  EXPECT_EQ(s.failures, 6u);
  EXPECT_EQ(changes_.load(), 0);
}

TEST_F(HealthEngineTest, A503DrainsAndARefusalWhileDrainingMeansDown) {
  script_->setSteady(spec(1), kDrain);
  engine_.setTargets({{spec(1), kFast}});
  engine_.start();
  ASSERT_TRUE(eventually([&] { return st(spec(1)).state == HealthState::kDraining; }));
  EXPECT_FALSE(st(spec(1)).serving);
  EXPECT_EQ(st(spec(1)).last_detail, "HTTP 503");
  ASSERT_TRUE(eventually([&] { return changes_.load() == 1; }));

  script_->setSteady(spec(1), kRefused);
  ASSERT_TRUE(eventually([&] { return st(spec(1)).state == HealthState::kDown; }));
  const uint64_t probes_when_down = st(spec(1)).probes;
  ASSERT_TRUE(eventually([&] { return probedAtLeast(spec(1), probes_when_down + 3); }));
  EXPECT_EQ(changes_.load(), 1) << "draining -> down does not change serving";

  script_->setSteady(spec(1), ok());
  ASSERT_TRUE(eventually([&] { return st(spec(1)).state == HealthState::kUp; }));
  const auto s = st(spec(1));
  ASSERT_EQ(s.history.size(), 3u);
  EXPECT_EQ(s.history[0].to, HealthState::kDraining);
  EXPECT_EQ(s.history[1].from, HealthState::kDraining);
  EXPECT_EQ(s.history[1].to, HealthState::kDown);
  EXPECT_EQ(s.history[2].to, HealthState::kUp);
  EXPECT_TRUE(eventually([&] { return changes_.load() == 2; }));
}

TEST_F(HealthEngineTest, WeightZeroKeepsUpButStopsServingAndWeightsApplyAtOnce) {
  script_->setSteady(spec(1), ok(0));
  engine_.setTargets({{spec(1), kFast}});
  engine_.start();
  ASSERT_TRUE(eventually([&] { return !st(spec(1)).serving; }));
  EXPECT_EQ(st(spec(1)).state, HealthState::kUp);
  EXPECT_EQ(st(spec(1)).weight, 0u);
  EXPECT_EQ(st(spec(1)).transitions, 0u);

  script_->setSteady(spec(1), ok(5));
  ASSERT_TRUE(eventually([&] { return st(spec(1)).weight == 5; }));
  EXPECT_TRUE(st(spec(1)).serving);
  const uint64_t probes = st(spec(1)).probes;
  ASSERT_TRUE(eventually([&] { return probedAtLeast(spec(1), probes + 3); }));
  EXPECT_EQ(changes_.load(), 2);  // 1 -> 0 (and serving), 0 -> 5; repeats of 5 say nothing
}

TEST_F(HealthEngineTest, OnChangeIsNotCalledPerProbe) {
  script_->setSteady(spec(1), ok());
  script_->setSteady(spec(2), ok(1));
  engine_.setTargets({{spec(1), kFast}, {spec(2), kFast}});
  engine_.start();
  ASSERT_TRUE(eventually([&] { return probedAtLeast(spec(1), 10) && probedAtLeast(spec(2), 10); }));
  EXPECT_EQ(changes_.load(), 0);
  EXPECT_GE(engine_.probesCompleted(), 20u);
  EXPECT_EQ(engine_.probeFailures(), 0u);
}

TEST_F(HealthEngineTest, ChangesOfManyTargetsInOneLoopTurnAreCoalesced) {
  std::vector<TargetSpec> targets;
  for (int i = 0; i < 50; ++i) {
    script_->setSteady(spec(i), ok(0));
    targets.push_back({spec(i), kFast});
  }
  engine_.setTargets(targets);
  engine_.start();
  ASSERT_TRUE(eventually([&] {
    for (const auto& s : engine_.statuses())
      if (s.serving) return false;
    return true;
  }));
  EXPECT_GE(changes_.load(), 1);
  EXPECT_LE(changes_.load(), 50);
}

TEST_F(HealthEngineTest, SetTargetsKeepsTheStateOfTargetsThatRemain) {
  script_->setSteady(spec(1), kRefused);
  engine_.setTargets({{spec(1), kFast}, {spec(2), kFast}});
  engine_.start();
  ASSERT_TRUE(eventually([&] { return st(spec(1)).state == HealthState::kDown; }));
  const auto before = st(spec(1));

  const ProbeTiming slower{.interval_ms = 30, .timeout_ms = 10, .rise = 5, .fall = 1};
  engine_.setTargets({{spec(3), kFast}, {spec(1), slower}});
  const auto after = st(spec(1));
  EXPECT_EQ(after.state, HealthState::kDown);
  EXPECT_EQ(after.history.size(), before.history.size());
  EXPECT_GE(after.probes, before.probes);
  EXPECT_EQ(after.last_change_unix_ms, before.last_change_unix_ms);
  EXPECT_EQ(after.timing, slower);
  EXPECT_FALSE(engine_.status(spec(2)).has_value());
  EXPECT_EQ(st(spec(3)).state, HealthState::kUp);
  EXPECT_EQ(engine_.targetCount(), 2u);
  ASSERT_EQ(engine_.statuses().size(), 2u);
  EXPECT_EQ(engine_.statuses()[0].probe, spec(1));  // sorted by spec

  // The new rise (5) applies: after recovery starts, the target needs 5 OKs.
  script_->setSteady(spec(1), ok());
  ASSERT_TRUE(eventually([&] { return st(spec(1)).state == HealthState::kUp; }));
  const auto up = st(spec(1));
  EXPECT_GE(up.probes - before.probes, 5u);
  EXPECT_TRUE(eventually([&] { return probedAtLeast(spec(3), 2); }));
}

TEST_F(HealthEngineTest, RemovedTargetsStopBeingProbed) {
  engine_.setTargets({{spec(1), kFast}, {spec(2), kFast}});
  engine_.start();
  ASSERT_TRUE(eventually([&] { return script_->callCount(spec(1)) >= 3; }));
  engine_.setTargets({{spec(2), kFast}});
  // Let spec(2) run ten more intervals: spec(1) gets at most the probe already started.
  const size_t calls = script_->callCount(spec(1));
  const size_t other = script_->callCount(spec(2));
  ASSERT_TRUE(eventually([&] { return script_->callCount(spec(2)) >= other + 10; }));
  EXPECT_LE(script_->callCount(spec(1)), calls + 1);
}

TEST_F(HealthEngineTest, TheProberForgetsARemovedTargetOnce) {
  engine_.setTargets({{spec(1), kFast}, {spec(2), kFast}});
  engine_.start();
  ASSERT_TRUE(eventually([&] { return script_->callCount(spec(1)) >= 3; }));
  EXPECT_EQ(script_->forgetCount(spec(1)), 0);
  engine_.setTargets({{spec(2), kFast}});
  ASSERT_TRUE(eventually([&] { return script_->forgetCount(spec(1)) == 1; }));
  const size_t other = script_->callCount(spec(2));
  ASSERT_TRUE(eventually([&] { return script_->callCount(spec(2)) >= other + 10; }));
  EXPECT_EQ(script_->forgetCount(spec(1)), 1);
  EXPECT_EQ(script_->forgetCount(spec(2)), 0);
}

TEST_F(HealthEngineTest, ATargetRemovedAndAddedBackIsNotForgotten) {
  // The old target is still scheduled or in flight when the new one (same spec) arrives:
  // what the prober keeps for the spec now belongs to the new one.
  engine_.setTargets({{spec(1), kFast}});
  engine_.start();
  ASSERT_TRUE(eventually([&] { return script_->callCount(spec(1)) >= 3; }));
  engine_.stop();  // so that nothing runs between the two updates
  engine_.setTargets({});
  engine_.setTargets({{spec(1), kFast}});
  const size_t calls = script_->callCount(spec(1));
  engine_.start();
  ASSERT_TRUE(eventually([&] { return script_->callCount(spec(1)) >= calls + 5; }));
  EXPECT_EQ(script_->forgetCount(spec(1)), 0);
}

TEST_F(HealthEngineTest, DuplicateSpecsCollapseIntoOneTargetWithTheFirstTiming) {
  const ProbeTiming other{.interval_ms = 500, .timeout_ms = 100, .rise = 1, .fall = 1};
  engine_.setTargets({{spec(1), kFast}, {spec(1), other}, {spec(2), kFast}, {spec(1), kFast}});
  ASSERT_EQ(engine_.statuses().size(), 2u);
  EXPECT_EQ(st(spec(1)).timing, kFast);
  engine_.start();
  ASSERT_TRUE(eventually([&] { return script_->callCount(spec(2)) >= 10; }));
  // One schedule for the spec, not three: about as many probes as the single other one.
  EXPECT_LE(script_->callCount(spec(1)), script_->callCount(spec(2)) + 3);
}

TEST_F(HealthEngineTest, SameAddressDifferentKindsAreDifferentTargets) {
  engine_.setTargets({{spec(1, ProbeKind::kTcp), kFast}, {spec(1, ProbeKind::kHttp), kFast}});
  EXPECT_EQ(engine_.targetCount(), 2u);
}

TEST_F(HealthEngineTest, FirstProbesAreSpreadOverTheInterval) {
  const ProbeTiming slow{.interval_ms = 1000, .timeout_ms = 100, .rise = 2, .fall = 3};
  std::vector<TargetSpec> targets;
  for (int i = 0; i < 200; ++i) targets.push_back({spec(i), slow});
  engine_.setTargets(targets);
  const auto t0 = std::chrono::steady_clock::now();
  engine_.start();
  ASSERT_TRUE(eventually([&] {
    for (int i = 0; i < 200; ++i)
      if (script_->callCount(spec(i)) == 0) return false;
    return true;
  }));
  auto first = std::chrono::steady_clock::time_point::max();
  auto last = std::chrono::steady_clock::time_point::min();
  for (int i = 0; i < 200; ++i) {
    const auto times = script_->callTimes(spec(i));
    ASSERT_FALSE(times.empty());
    first = std::min(first, times.front());
    last = std::max(last, times.front());
  }
  // Uniform offsets over 1 s span about 1 s; a burst at start-up would span ~0.
  EXPECT_GT(last - first, 300ms);
  EXPECT_GE(first, t0);
}

TEST_F(HealthEngineTest, GapsAreJitteredAroundTheIntervalNeverBelowNinetyPercent) {
  const ProbeTiming timing{.interval_ms = 100, .timeout_ms = 10, .rise = 2, .fall = 3};
  std::vector<TargetSpec> targets;
  for (int i = 0; i < 50; ++i) targets.push_back({spec(i), timing});
  engine_.setTargets(targets);
  engine_.start();
  ASSERT_TRUE(eventually([&] {
    for (int i = 0; i < 50; ++i)
      if (script_->callCount(spec(i)) < 6) return false;
    return true;
  }, 20000ms));
  engine_.stop();
  int shorter_than_interval = 0;
  for (int i = 0; i < 50; ++i) {
    const auto times = script_->callTimes(spec(i));
    for (size_t k = 1; k < times.size(); ++k) {
      const auto gap = times[k] - times[k - 1];
      EXPECT_GE(gap, 89ms) << "jitter is +-10% of the interval";
      if (gap < 100ms) ++shorter_than_interval;
    }
  }
  // About half the gaps are drawn below the interval; load can only lengthen them.
  EXPECT_GT(shorter_than_interval, 0);
}

TEST_F(HealthEngineTest, StopPausesProbingAndStartResumesIt) {
  engine_.setTargets({{spec(1), kFast}});
  engine_.start();
  ASSERT_TRUE(eventually([&] { return engine_.probesCompleted() >= 3; }));
  engine_.stop();
  engine_.stop();  // idempotent
  const uint64_t started = engine_.probesStarted();
  std::this_thread::sleep_for(100ms);
  EXPECT_EQ(engine_.probesStarted(), started);
  engine_.start();
  EXPECT_TRUE(eventually([&] { return engine_.probesStarted() >= started + 3; }));
}

TEST_F(HealthEngineTest, AProbeThatCannotStartIsRetriedAndTheRestKeepGoing) {
  {
    std::lock_guard lock(script_->mu);
    script_->throw_next = 3;
  }
  engine_.setTargets({{spec(1), kFast}, {spec(2), kFast}});
  engine_.start();
  ASSERT_TRUE(eventually([&] { return probedAtLeast(spec(1), 3) && probedAtLeast(spec(2), 3); }));
  EXPECT_EQ(st(spec(1)).failures, 0u);  // not started is not a result
  engine_.stop();
  // Probes that threw were never started: at most one per target is still unanswered.
  EXPECT_LE(engine_.probesStarted() - engine_.probesCompleted(), 2u);
}

TEST(HealthEngine, RejectsASourceAddressThatIsNotAnIp) {
  EXPECT_THROW(HealthEngine({.source_address = "not-an-ip"}, nullptr), std::invalid_argument);
  HealthEngine fine({.source_address = "127.0.0.1"}, nullptr);
  fine.start();
}

}  // namespace
}  // namespace ng::health
