#include "control/status_model.h"

#include <algorithm>

namespace ng::control {

TrafficCounters& TrafficCounters::operator+=(const TrafficCounters& o) noexcept {
  packets_in += o.packets_in;
  bytes_in += o.bytes_in;
  packets_out += o.packets_out;
  bytes_out += o.bytes_out;
  new_flows += o.new_flows;
  active_flows += o.active_flows;
  return *this;
}

TrafficRates& TrafficRates::operator+=(const TrafficRates& o) noexcept {
  packets_in += o.packets_in;
  bytes_in += o.bytes_in;
  packets_out += o.packets_out;
  bytes_out += o.bytes_out;
  new_flows += o.new_flows;
  return *this;
}

StatusModel::StatusModel(std::vector<WorkerSource> workers, uint64_t tsc_hz)
    : workers_(std::move(workers)),
      tsc_hz_(tsc_hz),
      last_busy_cycles_(workers_.size(), 0),
      busy_ratio_(workers_.size(), 0.0) {}

StatusModel::Raw StatusModel::raw(uint32_t stats_id) const {
  Raw r;
  for (const WorkerSource& w : workers_) {
    if (w.backend_stats == nullptr) continue;
    const fwd::BackendCounters& c = w.backend_stats->at(stats_id);
    r.packets_in += c.packets_in.get();
    r.bytes_in += c.bytes_in.get();
    r.packets_out += c.packets_out.get();
    r.bytes_out += c.bytes_out.get();
    r.new_flows += c.new_flows.get();
    r.closed_flows += c.closed_flows.get();
  }
  return r;
}

void StatusModel::publish(std::shared_ptr<const StatusView> view) {
  std::map<uint32_t, std::string> owner;
  std::map<uint32_t, Raw> fresh;  // baselines for ids that changed owner
  for (const VipView& vip : view->vips) {
    for (const PortView& port : vip.ports) {
      for (const BackendView& b : port.backends) {
        if (b.stats_id == 0) continue;
        std::string key = conf::formatEndpoint(vip.vip, port.port) + "/" + protocolName(port.protocol) + " " +
                          conf::formatEndpoint(b.address, b.node_port);
        owner.emplace(b.stats_id, std::move(key));
      }
    }
  }
  std::lock_guard lock(mutex_);
  for (const auto& [id, key] : owner) {
    auto old = owner_.find(id);
    if (old == owner_.end() || old->second != key) {
      baseline_[id] = raw(id);
      last_raw_[id] = baseline_[id];
      rates_.erase(id);
    }
  }
  owner_ = std::move(owner);
  view_ = std::move(view);
  ++generations_;
}

void StatusModel::sample(std::chrono::steady_clock::time_point now) {
  std::lock_guard lock(mutex_);
  const double seconds = last_sample_ == std::chrono::steady_clock::time_point{}
                             ? 0.0
                             : std::chrono::duration<double>(now - last_sample_).count();
  last_sample_ = now;
  for (const auto& [id, key] : owner_) {
    const Raw r = raw(id);
    Raw& prev = last_raw_[id];
    if (seconds > 0) {
      auto per_s = [seconds](uint64_t a, uint64_t b) { return a >= b ? static_cast<double>(a - b) / seconds : 0.0; };
      rates_[id] = TrafficRates{.packets_in = per_s(r.packets_in, prev.packets_in),
                                .bytes_in = per_s(r.bytes_in, prev.bytes_in),
                                .packets_out = per_s(r.packets_out, prev.packets_out),
                                .bytes_out = per_s(r.bytes_out, prev.bytes_out),
                                .new_flows = per_s(r.new_flows, prev.new_flows)};
    }
    prev = r;
  }
  for (size_t i = 0; i < workers_.size(); ++i) {
    const uint64_t cycles = workers_[i].counters ? workers_[i].counters->busy_cycles.get() : 0;
    if (seconds > 0 && tsc_hz_ > 0) {
      busy_ratio_[i] = std::clamp(static_cast<double>(cycles - last_busy_cycles_[i]) /
                                      (seconds * static_cast<double>(tsc_hz_)), 0.0, 1.0);
    }
    last_busy_cycles_[i] = cycles;
  }
}

void StatusModel::recordReload(bool ok, std::string message) {
  std::lock_guard lock(mutex_);
  reload_ = ReloadRecord{.attempted = true, .ok = ok, .message = std::move(message),
                         .unix_ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                                        std::chrono::system_clock::now().time_since_epoch())
                                        .count()};
}

std::shared_ptr<const StatusView> StatusModel::view() const {
  std::lock_guard lock(mutex_);
  return view_;
}

TrafficCounters StatusModel::backendTotals(uint32_t stats_id) const {
  if (stats_id == 0) return {};
  Raw base;
  {
    std::lock_guard lock(mutex_);
    if (auto it = baseline_.find(stats_id); it != baseline_.end()) base = it->second;
  }
  const Raw r = raw(stats_id);
  auto since = [](uint64_t now, uint64_t then) { return now >= then ? now - then : 0; };
  const uint64_t opened = since(r.new_flows, base.new_flows);
  const uint64_t closed = since(r.closed_flows, base.closed_flows);
  return TrafficCounters{.packets_in = since(r.packets_in, base.packets_in),
                         .bytes_in = since(r.bytes_in, base.bytes_in),
                         .packets_out = since(r.packets_out, base.packets_out),
                         .bytes_out = since(r.bytes_out, base.bytes_out),
                         .new_flows = opened,
                         // Flows of a previous owner of a reused id may close here.
                         .active_flows = opened >= closed ? opened - closed : 0};
}

TrafficRates StatusModel::backendRates(uint32_t stats_id) const {
  std::lock_guard lock(mutex_);
  auto it = rates_.find(stats_id);
  return it == rates_.end() ? TrafficRates{} : it->second;
}

double StatusModel::busyRatio(size_t worker) const {
  std::lock_guard lock(mutex_);
  return worker < busy_ratio_.size() ? busy_ratio_[worker] : 0.0;
}

ReloadRecord StatusModel::lastReload() const {
  std::lock_guard lock(mutex_);
  return reload_;
}

uint64_t StatusModel::generationsPublished() const {
  std::lock_guard lock(mutex_);
  return generations_;
}

}  // namespace ng::control
