#pragma once
// The control thread's state and work (DESIGN.md sec. 3): the running config, the load
// balancers declared through the API, the compiler, and the publication of generations -
// at start-up, on reload (SIGHUP or POST /v1/reload), on a load balancer call, and when
// the health engine's verdicts change. Every generation is compiled from one model (the
// config file merged with the declared load balancers) and one consistent copy of the
// health verdicts; a change that fails validation changes nothing and the running
// generation keeps serving.
//
// Threading: every member runs on the control thread. Other threads reach it through
// the CommandQueue (control/command_queue.h). No DPDK here: the publisher is the
// fwd::SnapshotPublisher seam, so tests drive it with a fake.

#include <chrono>
#include <cstdint>
#include <functional>
#include <vector>
#include <expected>
#include <map>
#include <memory>
#include <optional>
#include <string>

#include "conf/config.h"
#include "control/compiler.h"
#include "control/health_glue.h"
#include "control/load_balancers.h"
#include "control/status_api.h"
#include "control/status_model.h"
#include "dataplane/fwd/publisher.h"
#include "health/health_engine.h"

namespace ng::control {

// Boot-only settings (DESIGN.md sec. 5) of `a` and `b` are equal.
[[nodiscard]] bool bootSettingsEqual(const conf::Config& a, const conf::Config& b);
// Copies the running boot-only settings into `next`: they need a restart to change.
void keepBootSettings(const conf::Config& running, conf::Config& next);

// One change the Kubernetes controller asks for (control/kube_controller.h).
struct KubeChange {
  LoadBalancerSpec spec;   // for a removal only its namespace and name count
  bool remove = false;
  bool fallback = false;   // spec.requested_ips are a wish (the old status addresses)
};
struct KubeOutcome {
  std::string id;          // "namespace/name"
  std::vector<conf::IpAddress> addresses;  // programmed at these (ipFamilies order); empty: removed or refused
  std::string error;       // why it was refused ("" = fine)
};

class ControlPlane {
 public:
  // `on_token` is told the API token whenever it is (re)read.
  ControlPlane(std::string config_path, conf::Config config, fwd::SnapshotPublisher& publisher,
               std::shared_ptr<StatusModel> model, health::HealthEngine& health,
               std::function<void(std::string)> on_token);

  // Start-up: reads the persisted load balancers (state_dir/loadbalancers.json), sets
  // the health targets and publishes the first generation. Error: the state file is
  // corrupt or unreadable, or the token file; the box must not start.
  [[nodiscard]] std::expected<void, std::string> start();

  // Re-reads the config file; `trigger` names the cause in the log ("SIGHUP", "API").
  ReloadResult reload(const char* trigger);
  // A /v1/loadbalancers call. Reads and refused changes are answered at once (through
  // `respond`, before this returns); an accepted change is persisted now and answered by
  // flush(), once the generation that carries it is published.
  void loadBalancers(const LoadBalancerCall& call, std::function<void(LoadBalancerAnswer)> respond);
  // Publishes the load balancer changes accepted since the last flush in one generation,
  // at most once per kCoalesceGap however many arrive (a burst of 100 updates to one
  // Service costs a few generations, not 100), and answers their callers.
  void flush(std::chrono::steady_clock::time_point now);
  // The Kubernetes controller's changes, applied in one go. `done` gets every change's
  // outcome and the generation that carries them: at once when nothing changed, else
  // from flush(), once that generation is published (so a removed VIP has left the data
  // plane before the controller drops the Service's finalizer).
  void kubernetes(std::vector<KubeChange> changes,
                  std::function<void(std::vector<KubeOutcome>, uint64_t generation)> done);
  static constexpr auto kCoalesceGap = std::chrono::milliseconds(100);
  // The health engine said a verdict changed, or a drain timeout may have run out: a
  // new generation if it matters.
  void onHealthChange();

  [[nodiscard]] uint64_t generation() const noexcept { return generation_; }
  [[nodiscard]] const conf::Config& config() const noexcept { return config_; }

 private:
  // Compiles the merged model against `health` (default: the engine's verdicts now).
  std::unique_ptr<fwd::ForwardingSnapshot> compile(const conf::Config& merged, const HealthSnapshot* health = nullptr);
  void publish(std::unique_ptr<fwd::ForwardingSnapshot> snapshot);
  // The engine's verdicts now, with `config`'s drain timeout applied.
  [[nodiscard]] HealthSnapshot healthNow(const conf::Config& config) const;
  // Recompiles the current model after a load balancer change; returns the generation.
  uint64_t republish(const char* why);

  std::string config_path_;
  conf::Config config_;
  fwd::SnapshotPublisher& publisher_;
  std::shared_ptr<StatusModel> model_;
  health::HealthEngine& health_;
  std::function<void(std::string)> on_token_;
  LoadBalancerRegistry registry_;
  SnapshotCompiler compiler_;
  std::map<health::ProbeSpec, nodeport::TargetHealth> last_verdicts_;
  uint64_t generation_ = 0;
  // Accepted changes not published yet: each is told the generation that carries it.
  std::vector<std::function<void(uint64_t generation)>> pending_;
  std::chrono::steady_clock::time_point last_flush_{};
};

}  // namespace ng::control
