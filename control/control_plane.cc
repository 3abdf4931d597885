#include "control/control_plane.h"

#include <spdlog/spdlog.h>

#include <optional>

namespace ng::control {

bool bootSettingsEqual(const conf::Config& a, const conf::Config& b) {
  if (a.dataplane.eal != b.dataplane.eal || a.dataplane.workers != b.dataplane.workers ||
      a.dataplane.mbufs != b.dataplane.mbufs || a.dataplane.idle_sleep_us != b.dataplane.idle_sleep_us ||
      a.dataplane.ports.size() != b.dataplane.ports.size() ||
      a.dataplane.flows.capacity != b.dataplane.flows.capacity ||
      a.dataplane.flows.capacity6 != b.dataplane.flows.capacity6 || a.api.listen != b.api.listen ||
      a.api.tls_cert != b.api.tls_cert || a.api.tls_key != b.api.tls_key || a.kubernetes != b.kubernetes ||
      a.dataplane.exception_path.enabled != b.dataplane.exception_path.enabled ||
      a.dataplane.exception_path.rate_pps != b.dataplane.exception_path.rate_pps ||
      a.dataplane.exception_path.burst != b.dataplane.exception_path.burst) {
    return false;
  }
  for (size_t i = 0; i < a.dataplane.ports.size(); ++i) {
    const auto& x = a.dataplane.ports[i];
    const auto& y = b.dataplane.ports[i];
    if (x.name != y.name || x.device != y.device || x.role != y.role || !(x.address == y.address) ||
        x.gateway != y.gateway || x.mtu != y.mtu || x.kernel_iface != y.kernel_iface) {
      return false;
    }
  }
  return true;
}

void keepBootSettings(const conf::Config& running, conf::Config& next) {
  next.dataplane.eal = running.dataplane.eal;
  next.dataplane.workers = running.dataplane.workers;
  next.dataplane.ports = running.dataplane.ports;
  next.dataplane.flows.capacity = running.dataplane.flows.capacity;
  next.dataplane.flows.capacity6 = running.dataplane.flows.capacity6;
  next.dataplane.mbufs = running.dataplane.mbufs;
  next.dataplane.idle_sleep_us = running.dataplane.idle_sleep_us;
  next.dataplane.exception_path = running.dataplane.exception_path;
  next.api.listen = running.api.listen;
  next.api.tls_cert = running.api.tls_cert;
  next.api.tls_key = running.api.tls_key;
  next.kubernetes = running.kubernetes;
}

ControlPlane::ControlPlane(std::string config_path, conf::Config config, fwd::SnapshotPublisher& publisher,
                           std::shared_ptr<StatusModel> model, health::HealthEngine& health,
                           std::function<void(std::string)> on_token)
    : config_path_(std::move(config_path)),
      config_(std::move(config)),
      publisher_(publisher),
      model_(std::move(model)),
      health_(health),
      on_token_(std::move(on_token)),
      registry_(config_.state_dir + "/loadbalancers.json") {}

std::expected<void, std::string> ControlPlane::start() {
  if (!config_.api.token_file.empty()) {
    auto token = readTokenFile(config_.api.token_file);
    if (!token) return std::unexpected(token.error());
    if (on_token_) on_token_(std::move(*token));
  }
  auto loaded = registry_.load(config_);
  if (!loaded) return std::unexpected("cannot restore the load balancers: " + loaded.error());
  if (std::string why = registry_.conflictsWith(config_); !why.empty()) return std::unexpected(why);
  const conf::Config merged = registry_.merged(config_);
  health_.setTargets(healthTargets(merged));
  publish(compile(merged));
  const auto& st = compiler_.lastStats();
  spdlog::info("generation {}: {} service ports, {} Maglev tables, {} health targets, {} load balancers restored",
               generation_, st.service_ports, st.maglev_tables, health_.targetCount(), *loaded);
  return {};
}

std::unique_ptr<fwd::ForwardingSnapshot> ControlPlane::compile(const conf::Config& merged,
                                                               const HealthSnapshot* health) {
  std::optional<HealthSnapshot> now;
  if (health == nullptr) health = &now.emplace(healthNow(merged));
  auto snapshot = compiler_.compile(merged, generation_ + 1, health);
  last_verdicts_ = health->verdicts();
  return snapshot;
}

void ControlPlane::publish(std::unique_ptr<fwd::ForwardingSnapshot> snapshot) {
  generation_ = snapshot->generation;
  publisher_.publish(std::move(snapshot));
  auto view = std::make_shared<StatusView>(*compiler_.lastStatus());
  for (VipView& vip : view->vips) {
    if (auto source = registry_.sourceOf(vip.owner)) vip.source = *source == LbSource::kApi ? "api" : "kubernetes";
  }
  model_->publish(std::move(view));
}

uint64_t ControlPlane::republish(const char* why) {
  const conf::Config merged = registry_.merged(config_);
  // New targets start up (optimistic, like HAProxy) and existing ones keep their state.
  health_.setTargets(healthTargets(merged));
  publish(compile(merged));
  const auto& st = compiler_.lastStats();
  spdlog::info("{}: generation {}: {} service ports, {} Maglev tables ({} rebuilt), {} slots moved", why,
               generation_, st.service_ports, st.maglev_tables, st.maglev_built, st.slots_moved);
  return generation_;
}

HealthSnapshot ControlPlane::healthNow(const conf::Config& config) const {
  const int64_t now_ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                             std::chrono::system_clock::now().time_since_epoch()).count();
  return HealthSnapshot(health_.statuses(), uint64_t{config.health.drain_timeout_s} * 1000, now_ms);
}

void ControlPlane::onHealthChange() {
  HealthSnapshot health = healthNow(config_);
  if (health.verdicts() == last_verdicts_) return;
  publish(compile(registry_.merged(config_), &health));
  const auto& st = compiler_.lastStats();
  spdlog::info("health: generation {}: {} Maglev tables rebuilt, {} slots moved", generation_, st.maglev_built,
               st.slots_moved);
}

ReloadResult ControlPlane::reload(const char* trigger) {
  auto fail = [&](std::string message) {
    spdlog::error("reload ({}) rejected, generation {} keeps serving: {}", trigger, generation_, message);
    model_->recordReload(false, message);
    return ReloadResult{.ok = false, .message = std::move(message), .generation = generation_};
  };
  auto next = conf::loadConfig(config_path_);
  if (!next) return fail(next.error().message);
  if (!bootSettingsEqual(config_, *next)) {
    spdlog::warn("reload: boot-only settings (dataplane eal/workers/ports/mbufs/idle_sleep_us/flows.capacity/capacity6/"
                 "exception_path, "
                 "api.listen/tls, kubernetes) "
                 "changed; they take effect after a restart");
  }
  keepBootSettings(config_, *next);
  std::string token;
  if (!next->api.token_file.empty()) {
    auto read = readTokenFile(next->api.token_file);
    if (!read) return fail(read.error());
    token = std::move(*read);
  }
  if (std::string why = registry_.conflictsWith(*next); !why.empty()) return fail(why);
  if (next->state_dir != config_.state_dir) {
    spdlog::warn("reload: state_dir changed; the load balancers stay in {} until a restart", config_.state_dir);
  }
  registry_.configure(*next);
  const conf::Config merged = registry_.merged(*next);
  std::unique_ptr<fwd::ForwardingSnapshot> snapshot;
  try {
    health_.setTargets(healthTargets(merged));
    snapshot = compile(merged);
  } catch (const std::exception& e) {
    // Validation should have caught it; whatever slipped through must not stop the box.
    registry_.configure(config_);
    health_.setTargets(healthTargets(registry_.merged(config_)));
    return fail(e.what());
  }
  config_ = std::move(*next);
  if (on_token_) on_token_(std::move(token));
  publish(std::move(snapshot));
  const auto& st = compiler_.lastStats();
  std::string message = fmt::format("generation {}: {} service ports, {} Maglev tables ({} rebuilt), {} slots moved",
                                    generation_, st.service_ports, st.maglev_tables, st.maglev_built, st.slots_moved);
  spdlog::info("reload ({}): {}", trigger, message);
  model_->recordReload(true, message);
  return {.ok = true, .message = std::move(message), .generation = generation_};
}

void ControlPlane::loadBalancers(const LoadBalancerCall& call, std::function<void(LoadBalancerAnswer)> respond) {
  using Op = LoadBalancerCall::Op;
  LoadBalancerRegistry::Reply reply;
  switch (call.op) {
    case Op::kList: reply = registry_.list(); break;
    case Op::kGet: reply = registry_.get(call.namespace_name, call.name); break;
    case Op::kEnsure: reply = registry_.ensure(call.body, call.namespace_name, call.name); break;
    case Op::kUpdateNodes: reply = registry_.updateNodes(call.body, call.namespace_name, call.name); break;
    case Op::kDelete: reply = registry_.remove(call.namespace_name, call.name); break;
  }
  if (reply.status >= 400) {
    spdlog::warn("load balancer {}/{}: {} {}", call.namespace_name, call.name, reply.status,
                 reply.body.value("error", ""));
  }
  if (reply.changed) {
    spdlog::info("load balancer {}/{}: {}", call.namespace_name, call.name,
                 call.op == Op::kDelete ? "deleted" : "ensured");
    pending_.push_back([status = reply.status, body = std::move(reply.body),
                        respond = std::move(respond)](uint64_t generation) mutable {
      body["generation"] = generation;
      respond(LoadBalancerAnswer{.status = status, .body = body.dump(2)});
    });
    return;
  }
  if (reply.status == 200 && call.op != Op::kList) reply.body["generation"] = generation_;
  respond(LoadBalancerAnswer{.status = reply.status, .body = reply.body.dump(2)});
}

void ControlPlane::flush(std::chrono::steady_clock::time_point now) {
  if (pending_.empty() || now - last_flush_ < kCoalesceGap) return;
  last_flush_ = now;
  const uint64_t generation = republish(pending_.size() == 1 ? "load balancer change" : "load balancer changes");
  auto pending = std::move(pending_);
  pending_.clear();
  for (auto& tell : pending) tell(generation);
}

void ControlPlane::kubernetes(std::vector<KubeChange> changes,
                              std::function<void(std::vector<KubeOutcome>, uint64_t)> done) {
  std::vector<KubeOutcome> outcomes;
  outcomes.reserve(changes.size());
  bool changed = false;
  for (KubeChange& c : changes) {
    const std::string id = c.spec.id();
    auto reply = c.remove ? registry_.removeKubernetes(id) : registry_.ensureKubernetes(std::move(c.spec), c.fallback);
    changed |= reply.changed;
    KubeOutcome outcome{.id = id};
    if (reply.status >= 400) {
      outcome.error = reply.body.value("error", "refused");
    } else if (!c.remove) {
      outcome.addresses = registry_.addressesOf(id);
    }
    outcomes.push_back(std::move(outcome));
  }
  if (!changed) {
    done(std::move(outcomes), generation_);
    return;
  }
  pending_.push_back([outcomes = std::move(outcomes), done = std::move(done)](uint64_t generation) mutable {
    done(std::move(outcomes), generation);
  });
}

}  // namespace ng::control
