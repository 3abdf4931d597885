#pragma once
// Service + Node -> NodePort backend sets: for every VIP:port of every Service, the nodes
// that may receive its new flows, on which nodePort, with which weight, and how each is
// health-checked. Pure functions of the model and a health view; the compiler
// (control/compiler.h) turns the result into Maglev tables and the status view.
//
// Policy (KUBERNETES.md, "kube-proxy health endpoints"):
//   - candidates: every configured node, or the Service's `nodes` subset, that has an
//     address of the VIP's family (a dual-stack Service gets one set per VIP and port);
//   - externalTrafficPolicy Local: probe GET node:healthCheckNodePort/healthz; 200 serves
//     with the reported weight (X-Load-Balancing-Endpoint-Weight / localEndpoints), 503
//     drains; Cluster: per health.cluster_probe, kube-proxy's node:10256/healthz (weight
//     1), a TCP connect to the nodePort, or no probe;
//   - a node serves when its probe says so; a node not probed yet serves (optimistic);
//   - when no candidate serves, health.all_down decides: fail-open uses every candidate
//     with weight 1 (a broken health path must not black-hole a Service), drop leaves
//     the port without backends (new flows dropped and counted as no_backend). Either
//     way the set says all_down, for status and metrics.

#include <compare>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "conf/config.h"

namespace ng::nodeport {

enum class ProbeKind : uint8_t { kHttp, kTcp };

// One thing to probe. Equal targets are probed once, whichever Services share them.
struct ProbeTarget {
  ProbeKind kind = ProbeKind::kHttp;
  conf::IpAddress address;  // node IP
  uint16_t port = 0;
  std::string path;      // HTTP only: "/healthz"
  auto operator<=>(const ProbeTarget&) const = default;
  // "http://10.0.0.1:10256/healthz", "tcp://10.0.0.1:30080", "http://[fd00::1]:10256/healthz"
  [[nodiscard]] std::string url() const;
};

struct TargetHealth {
  bool serving = true;
  uint32_t weight = 1;  // 0 = drain
  bool cut = false;     // drained for longer than health.drain_timeout_s: end its flows too
  friend bool operator==(const TargetHealth&, const TargetHealth&) = default;
};

// The health engine's current verdicts, as nodeport needs them. Implemented over the
// prober engine by the control plane, and by plain maps in tests.
class HealthView {
 public:
  virtual ~HealthView() = default;
  // nullopt: the target has no verdict yet.
  [[nodiscard]] virtual std::optional<TargetHealth> lookup(const ProbeTarget& target) const = 0;
};

// Largest weight passed to Maglev: a Local node reporting 10,000 endpoints must not blow
// up the table's balance for the others.
inline constexpr uint32_t kMaxWeight = 1000;

struct NodeBackend {
  std::string node;        // node name
  conf::IpAddress address;  // node IP, of the VIP's family
  uint16_t node_port = 0;
  uint32_t weight = 1;     // Maglev weight when serving
  bool serving = true;     // gets new flows (health up and weight > 0, or fail-open)
  bool cut = false;        // its established flows end too (drain timeout elapsed)
  std::optional<ProbeTarget> probe;  // nullopt: not health-checked
};

struct ServicePortBackends {
  std::string service;     // "namespace/name"
  std::string port_name;
  conf::IpAddress vip;     // one set per VIP (a dual-stack Service has two) and port
  uint16_t port = 0;
  conf::Protocol protocol = conf::Protocol::kTcp;
  conf::TrafficPolicy policy = conf::TrafficPolicy::kCluster;
  conf::Mode mode = conf::Mode::kFullNat;
  std::vector<NodeBackend> backends;  // every candidate, sorted by node address
  bool all_down = false;   // no candidate passed its health check
  // The Service's loadBalancerSourceRanges (empty = every source) and session affinity,
  // carried to the data plane unchanged.
  std::vector<conf::IpPrefix> source_ranges;  // both families, as configured
  conf::SessionAffinity session_affinity = conf::SessionAffinity::kNone;
  uint32_t session_affinity_timeout = conf::kDefaultSessionAffinityTimeout;  // seconds
};

// `health` may be null: every node serves (no probing at all).
[[nodiscard]] std::vector<ServicePortBackends> backendSets(const conf::Config& config,
                                                           const HealthView* health = nullptr);

// The distinct probe targets the config needs, sorted.
[[nodiscard]] std::vector<ProbeTarget> probeTargets(const conf::Config& config);

}  // namespace ng::nodeport
