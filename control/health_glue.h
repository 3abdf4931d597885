#pragma once
// Glue between the health engine (health/) and the rest of the control plane: which
// targets to probe (from nodeport's probe targets and the health settings), the
// verdicts the compiler reads (a HealthView over one consistent copy of the engine's
// statuses), and the detail the status API shows.
// Control thread, except healthDetail() (any thread).

#include <map>
#include <optional>
#include <vector>

#include "conf/config.h"
#include "control/status_api.h"
#include "health/health_engine.h"
#include "nodeport/backends.h"

namespace ng::control {

[[nodiscard]] health::ProbeSpec probeSpecOf(const nodeport::ProbeTarget& target);
[[nodiscard]] std::vector<health::TargetSpec> healthTargets(const conf::Config& config);
[[nodiscard]] HealthDetail healthDetail(const health::TargetStatus& status);

// The engine's verdicts at one instant: every Service compiled in a generation sees the
// same health, even while probes keep completing.
class HealthSnapshot final : public nodeport::HealthView {
 public:
  // A target draining since more than `drain_timeout_ms` before `now_unix_ms` is cut
  // (its established flows end); drain_timeout_ms 0 = never.
  explicit HealthSnapshot(const std::vector<health::TargetStatus>& statuses, uint64_t drain_timeout_ms = 0,
                          int64_t now_unix_ms = 0);
  [[nodiscard]] std::optional<nodeport::TargetHealth> lookup(const nodeport::ProbeTarget& target) const override;
  // Serving/weight of every target: equal fingerprints mean an equal health picture.
  [[nodiscard]] const std::map<health::ProbeSpec, nodeport::TargetHealth>& verdicts() const noexcept {
    return verdicts_;
  }

 private:
  std::map<health::ProbeSpec, nodeport::TargetHealth> verdicts_;
};

}  // namespace ng::control
