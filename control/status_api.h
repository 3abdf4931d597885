#pragma once
// The box's HTTP API (cpp-httplib), served from its own threads, never a worker.
//   GET  /              the status page (self-contained HTML, control/ui)
//   GET  /healthz       200 "ok" while the process runs
//   GET  /readyz        200 once the data plane forwards with the first generation, else 503
//   GET  /v1/vips       every VIP: ports, backends with health, counters and rates
//   GET  /v1/vips/{ip}  one VIP (404 when unknown)
//   GET  /v1/nodes      every node with its probes' health
//   GET  /v1/status     generation, last reload, health summary, workers
//   GET  /v1/stats      counters summed over workers, drops by reason
//   GET  /metrics       the same in Prometheus text format
//   POST /v1/reload     re-reads the config file (mutating: bearer token when configured)
//   GET    /v1/loadbalancers[/{ns}/{name}]     the cloud-provider API (control/load_balancers.h):
//   PUT    /v1/loadbalancers/{ns}/{name}       EnsureLoadBalancer            (mutating)
//   PUT    /v1/loadbalancers/{ns}/{name}/nodes UpdateLoadBalancer (nodes)    (mutating)
//   DELETE /v1/loadbalancers/{ns}/{name}       EnsureLoadBalancerDeleted     (mutating)
// docs/api.md has an example of every response.
//
// Security: mutating calls need `Authorization: Bearer TOKEN` when a token is set,
// compared in constant time; conf/ refuses a non-loopback listen address without a token
// file. Bodies are limited to 64 KiB (413), reads and writes time out after 5 s, and
// requests run on a pool of threads so one slow client cannot hold the API.
// Threading: the API threads read only the StatusModel, health lookups and counters
// (relaxed loads); control work (reload) is handed to the control thread.

#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include "conf/config.h"
#include "control/status_model.h"
#include "nodeport/backends.h"

namespace httplib {
class Server;
struct Request;
struct Response;
}

namespace ng::control {

// One state change of a probe target.
struct HealthChange {
  int64_t unix_ms = 0;
  std::string from;
  std::string to;
  std::string reason;
  std::string detail;
};

// One probe target's health as the API shows it.
struct HealthDetail {
  std::string state;       // "up", "draining", "down"
  std::string reason;      // of the last failure: "refused", "timeout", "http_status", ...
  std::string detail;      // "connection refused", "HTTP 503", ...
  int64_t since_unix_ms = 0;
  uint32_t transitions = 0;
  uint64_t probes = 0;
  uint64_t failures = 0;
  uint32_t weight = 1;
  std::vector<HealthChange> history;  // the last transitions, oldest first
};

struct ReloadResult {
  bool ok = false;
  std::string message;     // the config error, or what the new generation contains
  uint64_t generation = 0;
};

// A cloud-provider API call (/v1/loadbalancers), run on the control thread.
struct LoadBalancerCall {
  enum class Op { kList, kGet, kEnsure, kUpdateNodes, kDelete };
  Op op = Op::kGet;
  std::string namespace_name;
  std::string name;
  nlohmann::json body;  // kEnsure, kUpdateNodes
};
struct LoadBalancerAnswer {
  int status = 200;
  std::string body;     // JSON text
};

struct StatusSources {
  std::function<bool()> ready;
  std::shared_ptr<StatusModel> model;
  // Health of a probe target; empty function or nullopt = not known.
  std::function<std::optional<HealthDetail>(const nodeport::ProbeTarget&)> health;
  // Runs a config reload on the control thread and waits for it; empty = not offered.
  std::function<ReloadResult()> reload;
  // Runs a load balancer call on the control thread and waits; empty = not offered.
  std::function<LoadBalancerAnswer(LoadBalancerCall)> load_balancers;
  // The Kubernetes source's state (control/kube_source.h); empty = not enabled.
  std::function<nlohmann::json()> kubernetes;
  // A node's Ready condition as the cluster reports it ("True", "False", "Unknown");
  // nullopt = not a Kubernetes node. Empty function = no Kubernetes source.
  std::function<std::optional<std::string>(const std::string& node)> node_ready;
};

// Response builders, public for tests. Times are RFC 3339 UTC strings.
[[nodiscard]] nlohmann::json statsJson(const StatusModel& model);
[[nodiscard]] nlohmann::json vipsJson(const StatusSources& sources);
[[nodiscard]] std::optional<nlohmann::json> vipJson(const StatusSources& sources, const conf::IpAddress& vip);
[[nodiscard]] nlohmann::json nodesJson(const StatusSources& sources);
[[nodiscard]] nlohmann::json statusJson(const StatusSources& sources);
[[nodiscard]] std::string metricsText(const StatusSources& sources);
[[nodiscard]] std::string formatTime(int64_t unix_ms);
// Constant-time check of an Authorization header value against "Bearer <token>".
[[nodiscard]] bool bearerMatches(std::string_view token, std::string_view authorization) noexcept;

class StatusApi {
 public:
  explicit StatusApi(StatusSources sources);
  ~StatusApi();
  StatusApi(const StatusApi&) = delete;
  StatusApi& operator=(const StatusApi&) = delete;

  // Token for mutating calls ("" = none needed); any thread, e.g. after a reload.
  void setToken(std::string token);

  // Binds api.listen (TLS when api.tls_cert is set) and serves from background threads.
  // Throws std::runtime_error naming the address or file when it cannot (start-up only).
  void start(const conf::ApiConfig& api);
  void stop();
  // The bound TCP port (after start()); api.listen may say port 0 in tests.
  [[nodiscard]] int port() const noexcept { return bound_port_; }

 private:
  [[nodiscard]] bool authorized(std::string_view authorization) const;
  // For a mutating call: true when authorized, else answers 401 and returns false.
  [[nodiscard]] bool admit(const httplib::Request& req, httplib::Response& res) const;

  StatusSources sources_;
  mutable std::mutex token_mutex_;
  std::string token_;
  std::unique_ptr<httplib::Server> server_;
  std::thread thread_;
  int bound_port_ = -1;
};

// Reads a bearer token file: the first line, surrounding whitespace removed. Errors name
// the file (missing, unreadable, empty).
[[nodiscard]] std::expected<std::string, std::string> readTokenFile(const std::string& path);

}  // namespace ng::control
