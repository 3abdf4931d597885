#pragma once
// Health state of one target: rise/fall hysteresis (HAProxy/IPVS-style) with a third
// state for drains, plus the weight a healthy node reports. Pure logic, no I/O, no
// clock: the caller passes the time. Not thread-safe; the engine guards each instance.
//
//   kUp       --fall consecutive non-OK-->  kDraining (latest was a drain, HTTP 503)
//                                           kDown     (latest was a failure)
//   kDraining <----- latest result ----->  kDown     (while not up, follows every result)
//   kDraining / kDown --rise consecutive OK-->  kUp
//
// A single lost probe therefore does not move traffic, and a node that turns 503 during
// a rollout stops taking new flows after `fall` probes while keeping its old ones.
// serving() = up and weight != 0: a 200 reporting weight 0 keeps the node up (it is
// alive and answers) but gives it no new flows. Weights apply at once, without rise.

#include <cstdint>
#include <string>
#include <vector>

#include "health/probe_outcome.h"

namespace ng::health {

enum class HealthState : uint8_t { kUp, kDraining, kDown };

[[nodiscard]] const char* healthStateName(HealthState state) noexcept;  // "up", "draining", "down"

struct Transition {
  int64_t unix_ms = 0;
  HealthState from = HealthState::kUp;
  HealthState to = HealthState::kUp;
  FailReason reason = FailReason::kNone;  // of the result that caused it (kNone for rises)
  std::string detail;                     // of that result ("HTTP 503", "HTTP 200", ...)
};

class TargetState {
 public:
  static constexpr size_t kHistory = 16;  // transitions kept, oldest dropped first

  // What one recorded result changed; the engine notifies on serving or weight only.
  struct Change {
    bool state = false;
    bool serving = false;
    bool weight = false;
  };

  // rise and fall are clamped to at least 1. Weight starts at 1; lastChangeUnixMs() starts
  // at `created_unix_ms` (when the target appeared).
  TargetState(uint32_t rise, uint32_t fall, HealthState initial = HealthState::kUp,
              int64_t created_unix_ms = 0) noexcept;

  // Records one probe result taken at `unix_ms`. A kOk result sets the weight to the one
  // it reports, or 1 when it reports none (a node that stops reporting is not stuck at 0).
  Change record(const ProbeOutcome& outcome, int64_t unix_ms);

  // New rise/fall for the next results; streaks so far are kept (clamped to at least 1).
  void setHysteresis(uint32_t rise, uint32_t fall) noexcept;

  [[nodiscard]] HealthState state() const noexcept { return state_; }
  [[nodiscard]] bool up() const noexcept { return state_ == HealthState::kUp; }
  [[nodiscard]] bool serving() const noexcept { return up() && weight_ != 0; }
  [[nodiscard]] uint32_t weight() const noexcept { return weight_; }
  // Of the last non-OK result; kept after recovery so operators see what went wrong.
  [[nodiscard]] FailReason lastReason() const noexcept { return last_reason_; }
  [[nodiscard]] const std::string& lastDetail() const noexcept { return last_detail_; }
  [[nodiscard]] int64_t lastChangeUnixMs() const noexcept { return last_change_unix_ms_; }
  [[nodiscard]] int64_t lastProbeUnixMs() const noexcept { return last_probe_unix_ms_; }
  [[nodiscard]] uint64_t probes() const noexcept { return probes_; }
  [[nodiscard]] uint64_t failures() const noexcept { return failures_; }  // non-OK results
  [[nodiscard]] uint32_t transitions() const noexcept { return transitions_; }
  [[nodiscard]] const std::vector<Transition>& history() const noexcept { return history_; }

 private:
  void moveTo(HealthState to, const ProbeOutcome& cause, int64_t unix_ms);

  uint32_t rise_;
  uint32_t fall_;
  HealthState state_;
  uint32_t weight_ = 1;
  uint32_t ok_streak_ = 0;   // consecutive kOk results
  uint32_t bad_streak_ = 0;  // consecutive kDrain/kFail results
  FailReason last_reason_ = FailReason::kNone;
  std::string last_detail_;
  int64_t last_change_unix_ms_ = 0;
  int64_t last_probe_unix_ms_ = 0;
  uint64_t probes_ = 0;
  uint64_t failures_ = 0;
  uint32_t transitions_ = 0;
  std::vector<Transition> history_;  // oldest first, at most kHistory
};

}  // namespace ng::health
