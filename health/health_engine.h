#pragma once
// The health-check engine: one asio event loop on one thread probes every distinct
// target (thousands; never a thread per target), runs each target's rise/fall state
// machine and tells the control plane when the set of serving nodes or their weights
// change. DESIGN.md section 3 "Health", KUBERNETES.md "kube-proxy health endpoints".
//
// Threads: setTargets(), statuses(), status() and the counters may be called from any
// thread; on_change and all probing run on the engine thread. Scheduling: a new target
// is first probed at a random offset within its interval, then every interval +-10%
// (jitter, so probes do not synchronise), measured from probe start; a probe slower than
// the interval delays the next one rather than overlapping it. Probes due close together
// start together, on a 5 ms grid (at most 5 ms after they are due: one wake-up of the
// loop per batch, not per probe). Transitions are logged once each (spdlog info), never
// per probe.

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "health/probe_outcome.h"
#include "health/probe_spec.h"
#include "health/prober.h"
#include "health/target_state.h"

namespace ng::health {

// A consistent snapshot of one target, for the control plane and the status API.
struct TargetStatus {
  ProbeSpec probe;
  ProbeTiming timing;
  HealthState state = HealthState::kUp;
  bool serving = true;      // state == kUp && weight != 0: may get new flows
  uint32_t weight = 1;      // last weight a 200 reported (header / localEndpoints), 1 if none
  FailReason last_reason = FailReason::kNone;  // of the last non-OK result, kept after recovery
  std::string last_detail;                     // "connection refused", "HTTP 503", ...
  int64_t last_change_unix_ms = 0;             // last state change, or when the target appeared
  int64_t last_probe_unix_ms = 0;              // 0 before the first result
  uint64_t probes = 0;
  uint64_t failures = 0;  // non-OK results (drains included)
  uint32_t transitions = 0;
  std::vector<Transition> history;  // last TargetState::kHistory transitions, oldest first
};

class HealthEngine {
 public:
  struct Options {
    std::string source_address;  // bind probes to this local address when set (same family)
    // Keep one HTTP(S) connection per target alive between probes (AsioProber::Options;
    // false: a new connection with "Connection: close" per probe, as TCP probes always are).
    bool reuse_connections = true;
  };
  using ProberFactory = std::function<std::unique_ptr<Prober>(asio::io_context&)>;

  // on_change runs on the engine thread after any target's `serving` or `weight` changed
  // (several changes in one loop turn are coalesced into one call; never per probe, and
  // not for setTargets() itself, whose caller knows what it changed). It may call
  // statuses(); it must not call stop() or the destructor. It may be empty.
  // Throws std::invalid_argument for a source_address that is not an IP literal.
  HealthEngine(Options options, std::function<void()> on_change);  // real AsioProber
  // Tests and benchmarks: probes run through the prober the factory builds on the
  // engine's io_context.
  HealthEngine(ProberFactory make_prober, std::function<void()> on_change);
  ~HealthEngine();  // stop()s and joins
  HealthEngine(const HealthEngine&) = delete;
  HealthEngine& operator=(const HealthEngine&) = delete;

  // Starts the engine thread; targets set before start() begin probing now. stop() joins
  // it; probes in flight are abandoned (their results never recorded) and the schedule
  // resumes on the next start(). Both are idempotent; call them from one owner thread,
  // never from on_change.
  void start();
  void stop();

  // Replaces the whole target set (any thread; visible to statuses() on return).
  // Duplicate specs collapse into one target (the first timing listed wins). Targets that
  // remain keep their state, history and schedule (new timing applies from their next
  // probe); new ones start kUp (optimistic, like HAProxy: a fresh config does not start
  // with an empty backend set) and are first probed at a random offset within their
  // interval; removed ones stop, and a result still in flight for them is dropped.
  void setTargets(std::vector<TargetSpec> targets);

  [[nodiscard]] std::vector<TargetStatus> statuses() const;  // sorted by ProbeSpec
  [[nodiscard]] std::optional<TargetStatus> status(const ProbeSpec& probe) const;

  // Monotonic counters since construction (relaxed reads, any thread).
  [[nodiscard]] uint64_t probesStarted() const noexcept;
  [[nodiscard]] uint64_t probesCompleted() const noexcept;  // results recorded or dropped
  [[nodiscard]] uint64_t probeFailures() const noexcept;    // non-OK results
  [[nodiscard]] size_t targetCount() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace ng::health
