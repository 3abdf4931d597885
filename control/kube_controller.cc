#include "control/kube_controller.h"

#include <unistd.h>

#include <algorithm>
#include <ctime>

#include <spdlog/spdlog.h>

#include "control/kube_service.h"
#include "control/status_view.h"

namespace ng::control {
namespace {

std::string joinAddresses(const std::vector<conf::IpAddress>& addresses) {
  std::string out;
  for (const conf::IpAddress& a : addresses) out += (out.empty() ? "" : ", ") + a.str();
  return out;
}

using nlohmann::json;

std::string servicePath(const std::string& id) {
  const size_t slash = id.find('/');
  return "/api/v1/namespaces/" + id.substr(0, slash) + "/services/" + id.substr(slash + 1);
}

std::string rfc3339Now() {
  const std::time_t now = std::time(nullptr);
  std::tm tm{};
  gmtime_r(&now, &tm);
  char text[32];
  std::strftime(text, sizeof text, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return text;
}

std::string hostName() {
  char name[256] = {};
  if (gethostname(name, sizeof name - 1) != 0) return "nodegate";
  return name;
}

}  // namespace

// --- Events ---------------------------------------------------------------------------

KubeEventRecorder::KubeEventRecorder(kube::ApiClient& api)
    : api_(api), thread_([this](std::stop_token stop) { run(stop); }) {}

KubeEventRecorder::~KubeEventRecorder() {
  thread_.request_stop();
  api_.cancel();
}

void KubeEventRecorder::record(Event event) {
  {
    std::lock_guard lock(mutex_);
    if (queue_.size() >= kQueueLimit) {
      dropped_.fetch_add(1);
      return;
    }
    queue_.push_back(std::move(event));
  }
  cv_.notify_one();
}

void KubeEventRecorder::run(std::stop_token stop) {
  const std::string instance = hostName();
  uint64_t sequence = 0;
  while (!stop.stop_requested()) {
    Event e;
    {
      std::unique_lock lock(mutex_);
      if (!cv_.wait(lock, stop, [this] { return !queue_.empty(); })) return;
      e = std::move(queue_.front());
      queue_.pop_front();
    }
    const std::string ns = stringField(e.involved, {"metadata", "namespace"});
    const std::string name = stringField(e.involved, {"metadata", "name"});
    if (ns.empty() || name.empty()) continue;
    const std::string now = rfc3339Now();
    // Named like client-go's recorder: the object's name and a unique suffix.
    const auto unique = std::chrono::system_clock::now().time_since_epoch().count() + static_cast<int64_t>(sequence++);
    json body{{"apiVersion", "v1"},
              {"kind", "Event"},
              {"metadata", {{"name", fmt::format("{}.{:x}", name, unique)}, {"namespace", ns}}},
              {"involvedObject",
               {{"apiVersion", "v1"}, {"kind", "Service"}, {"namespace", ns}, {"name", name},
                {"uid", stringField(e.involved, {"metadata", "uid"})},
                {"resourceVersion", stringField(e.involved, {"metadata", "resourceVersion"})}}},
              {"reason", e.reason},
              {"message", e.message},
              {"type", e.type},
              {"source", {{"component", "nodegate"}, {"host", instance}}},
              {"firstTimestamp", now},
              {"lastTimestamp", now},
              {"count", 1},
              {"reportingComponent", "nodegate.io/controller"},
              {"reportingInstance", instance}};
    auto reply = api_.post("/api/v1/namespaces/" + ns + "/events", body.dump());
    if (reply.status >= 200 && reply.status < 300) {
      posted_.fetch_add(1);
    } else {
      failed_.fetch_add(1);
      spdlog::debug("kubernetes: event {} for {}/{} not posted: {} {}", e.reason, ns, name, reply.status,
                    reply.status == 0 ? reply.error : reply.body.substr(0, 200));
    }
  }
}

// --- Controller -----------------------------------------------------------------------

KubeController::KubeController(Options options, kube::ApiClient& api, Apply apply, KubeEventRecorder* events)
    : options_(std::move(options)), api_(api), apply_(std::move(apply)), events_(events) {}

void KubeController::enqueue(Update update) {
  {
    std::lock_guard lock(queue_mutex_);
    queue_.push_back(std::move(update));
  }
  queue_cv_.notify_one();
}

KubeController::Stats KubeController::stats() const {
  std::lock_guard lock(stats_mutex_);
  return stats_;
}

std::optional<std::string> KubeController::nodeReady(const std::string& name) const {
  std::lock_guard lock(stats_mutex_);
  auto it = node_ready_.find(name);
  if (it == node_ready_.end()) return std::nullopt;
  return it->second;
}

void KubeController::publishStats() {
  std::lock_guard lock(stats_mutex_);
  stats_.synced = acted_;
  stats_.services = services_.size();
  stats_.ours = programmed_.size();
  stats_.candidate_nodes = candidates_.size();
  stats_.retrying = retry_.size();
}

void KubeController::run(std::stop_token stop) {
  while (!stop.stop_requested()) {
    std::deque<Update> updates;
    {
      std::unique_lock lock(queue_mutex_);
      auto ready = [this] { return !queue_.empty(); };
      if (retry_.empty()) {
        queue_cv_.wait(lock, stop, ready);
      } else {
        auto next = std::ranges::min_element(retry_, {}, [](const auto& r) { return r.second.at; })->second.at;
        queue_cv_.wait_until(lock, stop, next, ready);
      }
      if (stop.stop_requested()) return;
      if (!queue_.empty()) {
        // Let a burst finish arriving: one pass (and at most one generation) for all of it.
        lock.unlock();
        std::this_thread::sleep_for(options_.settle);
        lock.lock();
      }
      updates.swap(queue_);
    }
    absorb(updates);
    const auto now = Clock::now();
    for (auto it = retry_.begin(); it != retry_.end(); ++it) {
      if (it->second.at <= now) dirty_.insert(it->first);
    }
    if (!services_synced_ || !nodes_synced_) {
      publishStats();
      continue;  // act on the whole cluster, not on half a list
    }
    if (!acted_) {
      spdlog::info("kubernetes: {} Services and {} Nodes listed ({} candidate nodes); reconciling", services_.size(),
                   nodes_.size(), candidates_.size());
      // Also anything programmed before that the lists no longer show.
      for (const auto& [id, p] : programmed_) dirty_.insert(id);
    }
    if (!dirty_.empty()) reconcile(stop);
    acted_ = true;
    publishStats();
  }
}

void KubeController::absorb(std::deque<Update>& updates) {
  bool nodes_changed = false;
  for (Update& u : updates) {
    if (u.kind == Kind::kNode) {
      if (u.op == Update::Op::kSynced) {
        nodes_synced_ = true;
        continue;
      }
      const std::string key = objectKey(u.object);
      if (key.empty()) continue;
      if (u.op == Update::Op::kUpsert) {
        nodes_[key] = std::move(u.object);
      } else {
        nodes_.erase(key);
      }
      nodes_changed = true;
      continue;
    }
    if (u.op == Update::Op::kSynced) {
      services_synced_ = true;
      continue;
    }
    const std::string key = objectKey(u.object);
    if (key.empty()) continue;
    if (u.op == Update::Op::kUpsert) {
      services_[key] = std::move(u.object);
    } else {
      services_.erase(key);
    }
    dirty_.insert(key);
  }
  if (nodes_changed) refreshNodes();
}

void KubeController::refreshNodes() {
  std::vector<LbNode> next;
  for (const auto& [name, node] : nodes_) {
    if (auto candidate = candidateNode(node, options_.node_address)) next.push_back(std::move(*candidate));
  }
  {  // The Ready conditions, for operators (they decide nothing here).
    std::map<std::string, std::string> ready;
    for (const auto& [name, node] : nodes_) {
      std::string status = "Unknown";
      const json* conditions = nullptr;
      if (auto st = node.find("status"); st != node.end() && st->is_object()) {
        if (auto c = st->find("conditions"); c != st->end() && c->is_array()) conditions = &*c;
      }
      for (const json& c : conditions ? *conditions : json::array()) {
        if (stringField(c, {"type"}) == "Ready") status = stringField(c, {"status"});
      }
      if (status.empty()) status = "Unknown";
      ready.emplace(name, std::move(status));
    }
    std::lock_guard lock(stats_mutex_);
    node_ready_ = std::move(ready);
  }
  // nodes_ is a map by name: `next` is sorted already, so equal sets compare equal.
  if (next == candidates_) return;
  spdlog::info("kubernetes: candidate nodes {} -> {}", candidates_.size(), next.size());
  candidates_ = std::move(next);
  for (const auto& [id, p] : programmed_) dirty_.insert(id);
  for (const auto& [id, s] : services_) {
    if (wantsLoadBalancer(s, options_.class_name)) dirty_.insert(id);
  }
}

void KubeController::reconcile(std::stop_token stop) {
  {
    std::lock_guard lock(stats_mutex_);
    ++stats_.passes;
  }
  std::set<std::string> work;
  work.swap(dirty_);
  const std::set<std::string> retrying_before = [&] {
    std::set<std::string> ids;
    for (const auto& [id, r] : retry_) ids.insert(id);
    return ids;
  }();
  failed_.clear();
  std::vector<KubeChange> changes;
  std::vector<std::string> check_status;  // ours, programmed or about to be
  std::set<std::string> ensuring;         // spec changed: Events around it
  std::vector<std::string> removing;

  for (const std::string& id : work) {
    auto svc = services_.find(id);
    const bool present = svc != services_.end();
    const bool wants = present && wantsLoadBalancer(svc->second, options_.class_name);
    const bool finalized = present && hasFinalizer(svc->second, options_.finalizer);
    auto programmed = programmed_.find(id);
    if (!wants) {
      // Never touch a Service that was not ours: no finalizer, nothing programmed.
      if (programmed != programmed_.end() || finalized) {
        changes.push_back(KubeChange{.spec = programmed != programmed_.end() ? programmed->second.spec : LoadBalancerSpec{
                                         .namespace_name = stringField(svc->second, {"metadata", "namespace"}),
                                         .name = stringField(svc->second, {"metadata", "name"})},
                                     .remove = true});
        removing.push_back(id);
        if (present) event(id, "Normal", "DeletingLoadBalancer", "Deleting load balancer");
      }
      last_error_.erase(id);
      continue;
    }
    const LoadBalancerSpec* last_good = programmed != programmed_.end() ? &programmed->second.spec : nullptr;
    auto translated = translateService(svc->second, candidates_, last_good);
    if (!translated) {
      if (last_error_[id] != translated.error()) {
        spdlog::warn("kubernetes: Service {}: {}{}", id, translated.error(),
                     last_good ? "; the last good load balancer keeps serving" : "");
        event(id, "Warning", "SyncLoadBalancerFailed", translated.error());
        last_error_[id] = translated.error();
      }
      if (last_good) check_status.push_back(id);
      continue;
    }
    for (const std::string& w : translated->warnings) {
      if (last_error_[id] != w) {
        spdlog::warn("kubernetes: Service {}: {}", id, w);
        event(id, "Warning", "LoadBalancerWarning", w);
        last_error_[id] = w;
      }
    }
    if (translated->warnings.empty()) last_error_.erase(id);
    // The finalizer goes on before the VIP is programmed, so a deletion always waits
    // for the cleanup.
    if (!finalized && !patchFinalizers(id, true)) {
      retryLater(id);
      continue;
    }
    LoadBalancerSpec& spec = translated->spec;
    if (last_good != nullptr) {
      // The old status address is only a wish: once served, the address held counts.
      LoadBalancerSpec compare = spec;
      if (translated->fallback) compare.requested_ips = last_good->requested_ips;
      if (compare == *last_good) {
        check_status.push_back(id);
        continue;
      }
    }
    ensuring.insert(id);
    // Not on the first pass after a start: re-adopting a whole cluster is no news.
    if (acted_) event(id, "Normal", "EnsuringLoadBalancer", "Ensuring load balancer");
    changes.push_back(KubeChange{.spec = std::move(spec), .fallback = translated->fallback});
    check_status.push_back(id);
  }

  if (!changes.empty()) {
    // Requested addresses (and old status addresses) first, so that an automatic
    // allocation never takes the address another Service is about to re-adopt.
    std::ranges::stable_partition(changes, [](const KubeChange& c) { return !c.spec.requested_ips.empty(); });
    std::vector<std::string> ids;
    for (const KubeChange& c : changes) ids.push_back(c.spec.id());
    auto applied = apply_(changes, stop);
    {
      std::lock_guard lock(stats_mutex_);
      ++stats_.applies;
    }
    if (!applied) {
      spdlog::warn("kubernetes: the control thread did not apply {} changes in time; retrying", ids.size());
      for (const std::string& id : ids) retryLater(id);
      return;
    }
    std::map<std::string, KubeChange*> by_id;
    for (KubeChange& c : changes) by_id[c.spec.id()] = &c;
    for (const KubeOutcome& o : applied->first) {
      KubeChange* c = by_id[o.id];
      if (c == nullptr) continue;
      if (c->remove) {
        if (o.error.empty()) programmed_.erase(o.id);
        continue;
      }
      if (!o.error.empty() || o.addresses.empty()) {
        if (last_error_[o.id] != o.error) {
          spdlog::warn("kubernetes: Service {}: {}", o.id, o.error);
          event(o.id, "Warning", "SyncLoadBalancerFailed", o.error);
          last_error_[o.id] = o.error;
        }
        ensuring.erase(o.id);
        continue;
      }
      programmed_[o.id] = Programmed{.spec = std::move(c->spec), .addresses = o.addresses};
    }
  }

  for (const std::string& id : check_status) {
    auto p = programmed_.find(id);
    auto svc = services_.find(id);
    if (p == programmed_.end() || svc == services_.end()) continue;
    // The Service's own mode (annotation) decides its ipMode, else the box's default.
    const std::string_view ip_mode =
        p->second.spec.mode ? std::string_view(ipModeName(*p->second.spec.mode)) : std::string_view(options_.ip_mode);
    const json desired = ingressFor(p->second.spec, p->second.addresses, ip_mode);
    const bool write = currentIngress(svc->second) != desired;
    if (write && !patchStatus(id, desired)) {
      retryLater(id);
      continue;
    }
    if (ensuring.contains(id) && (acted_ || write)) {
      event(id, "Normal", "EnsuredLoadBalancer",
            "Ensured load balancer at " + joinAddresses(p->second.addresses));
    }
  }

  // Removed from the data plane (the generation is published): now the Service may
  // lose its status and our finalizer.
  for (const std::string& id : removing) {
    if (programmed_.contains(id)) {  // the removal itself failed
      retryLater(id);
      continue;
    }
    auto svc = services_.find(id);
    if (svc == services_.end()) continue;
    const bool deleting = isDeleting(svc->second);
    if (!deleting && !currentIngress(svc->second).is_null() && !patchStatus(id, nullptr)) {
      retryLater(id);
      continue;
    }
    if (hasFinalizer(svc->second, options_.finalizer) && !patchFinalizers(id, false)) {
      retryLater(id);
      continue;
    }
    event(id, "Normal", "DeletedLoadBalancer", "Deleted load balancer");
  }

  // Whatever was retrying and went through this time is done; the rest keep (and
  // double) their delay.
  for (const std::string& id : retrying_before) {
    if (work.contains(id) && !failed_.contains(id)) retry_.erase(id);
  }
}

bool KubeController::patchFinalizers(const std::string& id, bool add) {
  auto svc = services_.find(id);
  if (svc == services_.end()) return true;
  const json& meta = svc->second["metadata"];
  json finalizers = json::array();
  if (meta.contains("finalizers") && meta["finalizers"].is_array()) {
    for (const json& f : meta["finalizers"]) {
      if (f != options_.finalizer) finalizers.push_back(f);
    }
  }
  if (add) finalizers.push_back(options_.finalizer);
  // A merge patch replaces the whole list; the resourceVersion makes it conditional, so
  // a finalizer someone else added meanwhile is never lost (409: retry with the news).
  json body{{"metadata", {{"finalizers", std::move(finalizers)}, {"resourceVersion", stringField(svc->second, {"metadata", "resourceVersion"})}}}};
  if (!patchService(id, servicePath(id), body, add ? "finalizer add" : "finalizer removal")) return false;
  std::lock_guard lock(stats_mutex_);
  ++stats_.finalizer_writes;
  return true;
}

bool KubeController::patchStatus(const std::string& id, const json& ingress) {
  json body{{"status", {{"loadBalancer", {{"ingress", ingress}}}}}};
  if (!patchService(id, servicePath(id) + "/status", body, ingress.is_null() ? "status clear" : "status")) {
    return false;
  }
  std::lock_guard lock(stats_mutex_);
  ++stats_.status_writes;
  return true;
}

bool KubeController::patchService(const std::string& id, const std::string& path, const json& body, const char* what) {
  auto reply = api_.patch(path, body.dump(), "application/merge-patch+json");
  if (reply.status == 404) return true;  // gone: nothing left to write
  if (reply.status >= 200 && reply.status < 300) {
    // The answer is the Service as it is now: compare against it, not the stale copy.
    json updated = json::parse(reply.body, nullptr, /*allow_exceptions=*/false);
    if (updated.is_object() && objectKey(updated) == id) services_[id] = std::move(updated);
    return true;
  }
  std::string why = reply.status == 0 ? reply.error : std::to_string(reply.status) + " " + reply.body.substr(0, 300);
  spdlog::warn("kubernetes: Service {}: {} failed: {}", id, what, why);
  if (reply.status == 422) event(id, "Warning", "SyncLoadBalancerFailed", std::string(what) + " rejected: " + why);
  std::lock_guard lock(stats_mutex_);
  ++stats_.write_failures;
  stats_.last_error = id + ": " + what + ": " + why;
  return false;
}

void KubeController::retryLater(const std::string& id) {
  failed_.insert(id);
  auto [it, fresh] = retry_.try_emplace(id, Retry{.delay = options_.retry_initial});
  if (!fresh) it->second.delay = std::min(it->second.delay * 2, options_.retry_max);
  it->second.at = Clock::now() + it->second.delay;
}

void KubeController::event(const std::string& id, const char* type, const char* reason, std::string message) {
  if (events_ == nullptr) return;
  auto svc = services_.find(id);
  if (svc == services_.end()) return;
  events_->record(KubeEventRecorder::Event{
      .involved = json{{"metadata", svc->second["metadata"]}}, .type = type, .reason = reason, .message = std::move(message)});
}

}  // namespace ng::control
