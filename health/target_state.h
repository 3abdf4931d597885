#pragma once
// Rise/fall hysteresis for one health-check target (HAProxy/IPVS-style): a target turns
// down after `fall` consecutive failures and up again after `rise` consecutive successes,
// so a single lost probe does not move traffic. Pure logic, no I/O; the prober engine
// (health/, a later version) owns one per distinct target and feeds it results.

#include <cstdint>

namespace ng::health {

class TargetState {
 public:
  // rise and fall are clamped to at least 1.
  TargetState(uint32_t rise, uint32_t fall, bool initially_up = true) noexcept;

  // Records one probe result; returns true when this result changed up() .
  bool record(bool success) noexcept;

  [[nodiscard]] bool up() const noexcept { return up_; }
  [[nodiscard]] uint32_t transitions() const noexcept { return transitions_; }

 private:
  uint32_t rise_;
  uint32_t fall_;
  bool up_;
  uint32_t streak_ = 0;  // consecutive results that disagree with up_
  uint32_t transitions_ = 0;
};

}  // namespace ng::health
