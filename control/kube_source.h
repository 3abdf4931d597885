#pragma once
// The Kubernetes source as one piece (kubernetes.enabled = true): where the API server
// is (a kubeconfig, explicit server/CA/token settings, or the in-cluster service
// account), one API client per user (each reflector, the controller, the Event
// recorder: a client's cancel() ends only its own user's calls), the Service and Node
// reflectors, and the controller, each on its own thread.
//
// Threads: create() and stop() from the main thread; status() from any thread.

#include <expected>
#include <memory>
#include <stop_token>
#include <string>
#include <thread>

#include <nlohmann/json.hpp>

#include "conf/config.h"
#include "control/kube/api_client.h"
#include "control/kube/reflector.h"
#include "control/kube_controller.h"

namespace ng::control {

class KubeSource {
 public:
  // Error: the API server's access cannot be set up (unreadable kubeconfig, CA, ...);
  // the box must not start.
  [[nodiscard]] static std::expected<std::unique_ptr<KubeSource>, std::string> create(
      const conf::KubernetesConfig& config, conf::Mode mode, KubeController::Apply apply);
  ~KubeSource();  // stop()s

  void start();
  void stop();  // returns once every thread has ended

  // For /v1/status: synced or not, failing since when and why (fail static), counters.
  [[nodiscard]] nlohmann::json status() const;
  // A node's Ready condition (KubeController::nodeReady).
  [[nodiscard]] std::optional<std::string> nodeReady(const std::string& name) const {
    return controller_->nodeReady(name);
  }

 private:
  KubeSource() = default;

  std::string server_;
  std::unique_ptr<kube::HttpApiClient> services_client_, nodes_client_, writes_client_, events_client_;
  std::unique_ptr<KubeEventRecorder> events_;
  std::unique_ptr<KubeController> controller_;
  std::unique_ptr<kube::Reflector> services_, nodes_;
  std::jthread controller_thread_, services_thread_, nodes_thread_;
};

// The API server's access as configured: kubeconfig, else server + ca_file + token_file,
// else the in-cluster service account. Errors name the setting or file.
[[nodiscard]] std::expected<kube::KubeAccess, std::string> kubeAccessFor(const conf::KubernetesConfig& config);

}  // namespace ng::control
