#include "nodeport/backends.h"

#include <algorithm>

namespace ng::nodeport {
namespace {

std::optional<ProbeTarget> probeFor(const conf::Config& config, const conf::ServiceConfig& svc,
                                    const conf::ServicePortConfig& port, const conf::IpAddress& node) {
  if (svc.external_traffic_policy == conf::TrafficPolicy::kLocal) {
    return ProbeTarget{.kind = ProbeKind::kHttp, .address = node, .port = svc.health_check_node_port,
                       .path = "/healthz"};
  }
  switch (config.health.cluster_probe) {
    case conf::ClusterProbe::kKubeProxy:
      return ProbeTarget{.kind = ProbeKind::kHttp, .address = node, .port = config.health.kube_proxy_port,
                         .path = "/healthz"};
    case conf::ClusterProbe::kTcp:
      return ProbeTarget{.kind = ProbeKind::kTcp, .address = node, .port = port.node_port, .path = {}};
    case conf::ClusterProbe::kNone: break;
  }
  return std::nullopt;
}

struct Candidate {
  const conf::NodeConfig* node;
  conf::IpAddress address;  // the node's address of the VIP's family
};

// The Service's nodes that have an address of `family` (KUBERNETES.md: node addresses
// of the VIP's family), sorted by that address.
std::vector<Candidate> candidates(const conf::Config& config, const conf::ServiceConfig& svc, conf::IpFamily family) {
  std::vector<Candidate> nodes;
  for (const conf::NodeConfig& node : config.nodes) {
    if (!svc.node_names.empty() && std::ranges::find(svc.node_names, node.name) == svc.node_names.end()) continue;
    if (auto address = node.address(family)) nodes.push_back(Candidate{.node = &node, .address = *address});
  }
  std::ranges::sort(nodes, {}, &Candidate::address);
  return nodes;
}

}  // namespace

std::string ProbeTarget::url() const {
  const std::string host = conf::formatEndpoint(address, port);
  return kind == ProbeKind::kHttp ? "http://" + host + path : "tcp://" + host;
}

std::vector<ServicePortBackends> backendSets(const conf::Config& config, const HealthView* health) {
  std::vector<ServicePortBackends> out;
  for (const conf::ServiceConfig& svc : config.services) {
   for (const conf::IpAddress& vip : svc.vips) {
    const auto nodes = candidates(config, svc, vip.family());
    const bool local = svc.external_traffic_policy == conf::TrafficPolicy::kLocal;
    for (const conf::ServicePortConfig& port : svc.ports) {
      ServicePortBackends set{.service = svc.namespace_name + "/" + svc.name,
                              .port_name = port.name,
                              .vip = vip,
                              .port = port.port,
                              .protocol = port.protocol,
                              .policy = svc.external_traffic_policy,
                              .mode = svc.mode.value_or(config.dataplane.mode),
                              .backends = {},
                              .all_down = false,
                              .source_ranges = svc.source_ranges,
                              .session_affinity = svc.session_affinity,
                              .session_affinity_timeout = svc.session_affinity_timeout};
      bool any_serving = false;
      for (const Candidate& c : nodes) {
        NodeBackend b{.node = c.node->name, .address = c.address, .node_port = port.node_port,
                      .weight = 1, .serving = true, .probe = probeFor(config, svc, port, c.address)};
        if (health != nullptr && b.probe) {
          if (const auto verdict = health->lookup(*b.probe)) {
            // Only kube-proxy's per-Service endpoint reports a meaningful weight; its
            // node-wide /healthz (Cluster) says nothing about this Service's endpoints.
            const uint32_t weight = local ? std::min(verdict->weight, kMaxWeight) : (verdict->weight > 0 ? 1 : 0);
            b.serving = verdict->serving && weight > 0;
            b.weight = weight;  // 0 = drain: shown in status, never given to Maglev
            b.cut = verdict->cut && !b.serving;
          }
        }
        any_serving = any_serving || b.serving;
        set.backends.push_back(std::move(b));
      }
      if (!any_serving && !set.backends.empty()) {
        set.all_down = true;
        if (config.health.all_down == conf::AllDownPolicy::kFailOpen) {
          for (NodeBackend& b : set.backends) {
            b.serving = true;
            b.weight = 1;
            b.cut = false;
          }
        }
      }
      out.push_back(std::move(set));
    }
   }
  }
  return out;
}

std::vector<ProbeTarget> probeTargets(const conf::Config& config) {
  std::vector<ProbeTarget> targets;
  for (const conf::ServiceConfig& svc : config.services) {
    for (const conf::IpAddress& vip : svc.vips) {
      for (const Candidate& c : candidates(config, svc, vip.family())) {
        for (const conf::ServicePortConfig& port : svc.ports) {
          if (auto probe = probeFor(config, svc, port, c.address)) targets.push_back(std::move(*probe));
        }
      }
    }
  }
  std::ranges::sort(targets);
  targets.erase(std::unique(targets.begin(), targets.end()), targets.end());
  return targets;
}

}  // namespace ng::nodeport
