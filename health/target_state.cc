#include "health/target_state.h"

#include <algorithm>

namespace ng::health {

TargetState::TargetState(uint32_t rise, uint32_t fall, bool initially_up) noexcept
    : rise_(std::max(rise, 1u)), fall_(std::max(fall, 1u)), up_(initially_up) {}

bool TargetState::record(bool success) noexcept {
  if (success == up_) {
    streak_ = 0;  // agreeing result: any run toward a change is broken
    return false;
  }
  if (++streak_ < (up_ ? fall_ : rise_)) return false;
  up_ = success;
  streak_ = 0;
  ++transitions_;
  return true;
}

}  // namespace ng::health
