#include "health/target_state.h"

#include <algorithm>

namespace ng::health {

const char* healthStateName(HealthState state) noexcept {
  switch (state) {
    case HealthState::kUp: return "up";
    case HealthState::kDraining: return "draining";
    case HealthState::kDown: return "down";
  }
  return "?";
}

TargetState::TargetState(uint32_t rise, uint32_t fall, HealthState initial,
                         int64_t created_unix_ms) noexcept
    : rise_(std::max(rise, 1u)),
      fall_(std::max(fall, 1u)),
      state_(initial),
      last_change_unix_ms_(created_unix_ms) {}

void TargetState::setHysteresis(uint32_t rise, uint32_t fall) noexcept {
  rise_ = std::max(rise, 1u);
  fall_ = std::max(fall, 1u);
}

TargetState::Change TargetState::record(const ProbeOutcome& outcome, int64_t unix_ms) {
  const bool was_serving = serving();
  const uint32_t old_weight = weight_;
  const HealthState old_state = state_;
  ++probes_;
  last_probe_unix_ms_ = unix_ms;

  if (outcome.result == ProbeOutcome::kOk) {
    ++ok_streak_;
    bad_streak_ = 0;
    weight_ = outcome.weight.value_or(1);
    if (!up() && ok_streak_ >= rise_) moveTo(HealthState::kUp, outcome, unix_ms);
  } else {
    ++failures_;
    ++bad_streak_;
    ok_streak_ = 0;
    last_reason_ = outcome.reason;
    last_detail_ = outcome.detail;
    const HealthState bad =
        outcome.result == ProbeOutcome::kDrain ? HealthState::kDraining : HealthState::kDown;
    // Leaving up needs `fall` in a row; once out, the state just follows the latest
    // result, so an operator sees "draining" turn into "down" when the node dies.
    if (up() ? bad_streak_ >= fall_ : state_ != bad) moveTo(bad, outcome, unix_ms);
  }
  return {.state = state_ != old_state,
          .serving = serving() != was_serving,
          .weight = weight_ != old_weight};
}

void TargetState::moveTo(HealthState to, const ProbeOutcome& cause, int64_t unix_ms) {
  if (history_.size() == kHistory) history_.erase(history_.begin());  // 16 entries: cheap
  history_.push_back({.unix_ms = unix_ms, .from = state_, .to = to,
                      .reason = cause.reason, .detail = cause.detail});
  state_ = to;
  last_change_unix_ms_ = unix_ms;
  ++transitions_;
}

}  // namespace ng::health
