#pragma once
// Service + Node -> NodePort backend sets: for every VIP:port of every Service, the nodes
// that may receive its new flows and on which nodePort. Pure function of the model; the
// compiler (control/compiler.h) turns the result into Maglev tables.
//
// Policy in this version: every configured node (or the Service's `nodes` subset) with
// weight 1. externalTrafficPolicy Local narrows the set to nodes whose
// healthCheckNodePort answers 200 once health probing exists (health/); until then Local
// Services use the same set as Cluster ones, which kube-proxy still serves correctly
// (it forwards to a local endpoint or drops), only without client-IP-preserving choice.

#include <cstdint>
#include <string>
#include <vector>

#include "conf/config.h"

namespace ng::nodeport {

struct NodeBackend {
  std::string node;        // node name
  uint32_t address = 0;    // node IP (host order)
  uint16_t node_port = 0;
  uint32_t weight = 1;
};

struct ServicePortBackends {
  std::string service;     // "namespace/name"
  std::string port_name;
  uint32_t vip = 0;
  uint16_t port = 0;
  conf::Protocol protocol = conf::Protocol::kTcp;
  std::vector<NodeBackend> backends;  // sorted by node address
};

[[nodiscard]] std::vector<ServicePortBackends> backendSets(const conf::Config& config);

}  // namespace ng::nodeport
