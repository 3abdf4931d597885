#include "control/health_glue.h"

namespace ng::control {

health::ProbeSpec probeSpecOf(const nodeport::ProbeTarget& target) {
  return health::ProbeSpec{.kind = target.kind == nodeport::ProbeKind::kHttp ? health::ProbeKind::kHttp
                                                                            : health::ProbeKind::kTcp,
                           .address = target.address.str(),
                           .port = target.port,
                           .path = target.kind == nodeport::ProbeKind::kHttp ? target.path : "/healthz",
                           .tls_verify = false};
}

std::vector<health::TargetSpec> healthTargets(const conf::Config& config) {
  const health::ProbeTiming timing{.interval_ms = config.health.interval_ms,
                                   .timeout_ms = config.health.timeout_ms,
                                   .rise = config.health.rise,
                                   .fall = config.health.fall};
  std::vector<health::TargetSpec> specs;
  for (const nodeport::ProbeTarget& target : nodeport::probeTargets(config)) {
    specs.push_back(health::TargetSpec{.probe = probeSpecOf(target), .timing = timing});
  }
  return specs;
}

HealthDetail healthDetail(const health::TargetStatus& s) {
  std::vector<HealthChange> history;
  for (const health::Transition& t : s.history) {
    history.push_back(HealthChange{.unix_ms = t.unix_ms,
                                   .from = health::healthStateName(t.from),
                                   .to = health::healthStateName(t.to),
                                   .reason = t.reason == health::FailReason::kNone ? "" : health::failReasonName(t.reason),
                                   .detail = t.detail});
  }
  return HealthDetail{.state = health::healthStateName(s.state),
                      .reason = s.last_reason == health::FailReason::kNone ? "" : health::failReasonName(s.last_reason),
                      .detail = s.last_detail,
                      .since_unix_ms = s.last_change_unix_ms,
                      .transitions = s.transitions,
                      .probes = s.probes,
                      .failures = s.failures,
                      .weight = s.weight,
                      .history = std::move(history)};
}

HealthSnapshot::HealthSnapshot(const std::vector<health::TargetStatus>& statuses, uint64_t drain_timeout_ms,
                               int64_t now_unix_ms) {
  for (const health::TargetStatus& s : statuses) {
    const bool cut = drain_timeout_ms != 0 && s.state == health::HealthState::kDraining &&
                     now_unix_ms - s.last_change_unix_ms >= static_cast<int64_t>(drain_timeout_ms);
    verdicts_.emplace(s.probe, nodeport::TargetHealth{.serving = s.serving, .weight = s.weight, .cut = cut});
  }
}

std::optional<nodeport::TargetHealth> HealthSnapshot::lookup(const nodeport::ProbeTarget& target) const {
  auto it = verdicts_.find(probeSpecOf(target));
  if (it == verdicts_.end()) return std::nullopt;
  return it->second;
}

}  // namespace ng::control
