#pragma once
// The Kubernetes service controller (DESIGN.md sec. 3, ../shared/KUBERNETES.md): keeps
// the load balancers of the Services of our class in step with the cluster, and writes
// back what the cluster expects: a finalizer before a VIP is programmed, the ingress
// status (only when it changed), the finalizer's removal only after the VIP has left the
// data plane, and Events.
//
// Threads. Two reflectors (control/kube/reflector.h), each on its own thread, list and
// watch Services and Nodes and hand their changes to the sinks below, which only queue
// them. run() is the controller's thread: it owns the caches and every decision, asks
// the control thread to apply changes through `Apply` (which returns once the generation
// carrying them is published), and makes the API server writes. The control thread never
// waits on the API server; this thread never compiles.
//
// Failure: a write that fails is retried with back-off; while the API server is
// unreachable nothing changes in the data plane (fail static) and the reflectors'
// status says since when. Nothing is acted on before both lists have been delivered
// once, so a cold start is one generation, not thousands.

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <set>
#include <stop_token>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "conf/config.h"
#include "control/control_plane.h"
#include "control/kube/api_client.h"
#include "control/kube/reflector.h"
#include "control/load_balancers.h"

namespace ng::control {

// Posts Events (best effort) from its own thread, so a slow API server never holds up
// the controller: a bounded queue, dropping (and counting) when full.
class KubeEventRecorder {
 public:
  struct Event {
    nlohmann::json involved;  // the Service (its metadata is read)
    std::string type;         // "Normal" or "Warning"
    std::string reason;       // "EnsuredLoadBalancer", ...
    std::string message;
  };
  static constexpr size_t kQueueLimit = 1000;

  explicit KubeEventRecorder(kube::ApiClient& api);
  ~KubeEventRecorder();
  void record(Event event);  // any thread
  [[nodiscard]] uint64_t posted() const noexcept { return posted_.load(); }
  [[nodiscard]] uint64_t dropped() const noexcept { return dropped_.load(); }
  [[nodiscard]] uint64_t failed() const noexcept { return failed_.load(); }

 private:
  void run(std::stop_token stop);

  kube::ApiClient& api_;
  std::mutex mutex_;
  std::condition_variable_any cv_;
  std::deque<Event> queue_;
  std::atomic<uint64_t> posted_{0}, dropped_{0}, failed_{0};
  std::jthread thread_;  // last: starts after the members it uses
};

class KubeController {
 public:
  struct Options {
    std::string class_name = "nodegate.io/lb";  // "" = default load balancer: Services without a class
    conf::NodeAddressType node_address = conf::NodeAddressType::kInternalIp;
    std::string ip_mode = "Proxy";               // "Proxy" (fullnat) or "VIP" (tunnel)
    std::string finalizer = "nodegate.io/cleanup";
    std::chrono::milliseconds settle{10};        // after a change, wait this long for more
    std::chrono::milliseconds retry_initial{500};  // failed writes: back-off start, doubling
    std::chrono::milliseconds retry_max{30000};
  };
  // Applies changes on the control thread and returns their outcomes once the
  // generation carrying them is published; nullopt when that did not happen in time or
  // `stop` was requested (the controller retries later).
  using Applied = std::pair<std::vector<KubeOutcome>, uint64_t>;
  using Apply = std::function<std::optional<Applied>(std::vector<KubeChange>, std::stop_token)>;

  // `api` is used from run()'s thread only; `events` may be null (no Events).
  KubeController(Options options, kube::ApiClient& api, Apply apply, KubeEventRecorder* events);

  [[nodiscard]] kube::ReflectorSink& serviceSink() noexcept { return service_sink_; }
  [[nodiscard]] kube::ReflectorSink& nodeSink() noexcept { return node_sink_; }

  void run(std::stop_token stop);  // the controller's thread; returns soon after stop

  struct Stats {
    bool synced = false;           // both lists delivered and acted on
    size_t services = 0;           // Services in the cache
    size_t ours = 0;               // programmed load balancers
    size_t candidate_nodes = 0;
    uint64_t passes = 0, applies = 0;
    uint64_t status_writes = 0, finalizer_writes = 0, write_failures = 0;
    size_t retrying = 0;           // Services waiting to retry a write or an apply
    std::string last_error;
  };
  [[nodiscard]] Stats stats() const;  // any thread
  // A node's Ready condition status ("True", "False", "Unknown"); nullopt = no such
  // node in the cache. Any thread.
  [[nodiscard]] std::optional<std::string> nodeReady(const std::string& name) const;

 private:
  enum class Kind { kService, kNode };
  struct Update {
    Kind kind;
    enum class Op { kUpsert, kRemove, kSynced } op;
    nlohmann::json object;
  };
  class Sink final : public kube::ReflectorSink {
   public:
    Sink(KubeController& owner, Kind kind) : owner_(owner), kind_(kind) {}
    void upsert(const nlohmann::json& object) override { owner_.enqueue({kind_, Update::Op::kUpsert, object}); }
    void remove(const nlohmann::json& object) override { owner_.enqueue({kind_, Update::Op::kRemove, object}); }
    void synced() override { owner_.enqueue({kind_, Update::Op::kSynced, nullptr}); }

   private:
    KubeController& owner_;
    Kind kind_;
  };
  struct Programmed {
    LoadBalancerSpec spec;
    std::vector<conf::IpAddress> addresses;  // ipFamilies order
  };
  using Clock = std::chrono::steady_clock;

  void enqueue(Update update);
  // Folds queued updates into the caches; marks what they touch dirty.
  void absorb(std::deque<Update>& updates);
  void refreshNodes();
  // One pass over the dirty Services: decide, apply, write back.
  void reconcile(std::stop_token stop);
  // API writes. Each returns true when done (or moot: the Service is gone).
  bool patchFinalizers(const std::string& id, bool add);
  bool patchStatus(const std::string& id, const nlohmann::json& ingress);
  bool patchService(const std::string& id, const std::string& path, const nlohmann::json& body, const char* what);
  void retryLater(const std::string& id);
  void event(const std::string& id, const char* type, const char* reason, std::string message);
  void publishStats();

  Options options_;
  kube::ApiClient& api_;
  Apply apply_;
  KubeEventRecorder* events_;
  Sink service_sink_{*this, Kind::kService};
  Sink node_sink_{*this, Kind::kNode};

  std::mutex queue_mutex_;
  std::condition_variable_any queue_cv_;
  std::deque<Update> queue_;

  // run()'s thread only.
  std::map<std::string, nlohmann::json> services_;  // by "namespace/name"
  std::map<std::string, nlohmann::json> nodes_;     // by name
  std::vector<LbNode> candidates_;                  // sorted by name
  bool services_synced_ = false, nodes_synced_ = false, acted_ = false;
  std::set<std::string> dirty_;
  std::map<std::string, Programmed> programmed_;
  std::map<std::string, std::string> last_error_;   // per Service, to warn once per error
  struct Retry {
    Clock::time_point at;
    std::chrono::milliseconds delay;
  };
  std::map<std::string, Retry> retry_;
  std::set<std::string> failed_;  // this pass's failures (reconcile() only)

  mutable std::mutex stats_mutex_;
  Stats stats_;
  std::map<std::string, std::string> node_ready_;  // under stats_mutex_
};

}  // namespace ng::control
