#include "nodeport/backends.h"

#include <algorithm>

namespace ng::nodeport {

std::vector<ServicePortBackends> backendSets(const conf::Config& config) {
  std::vector<ServicePortBackends> out;
  for (const conf::ServiceConfig& svc : config.services) {
    std::vector<const conf::NodeConfig*> nodes;
    for (const conf::NodeConfig& node : config.nodes) {
      const bool selected = svc.node_names.empty() ||
                            std::ranges::find(svc.node_names, node.name) != svc.node_names.end();
      if (selected) nodes.push_back(&node);
    }
    std::ranges::sort(nodes, {}, [](const conf::NodeConfig* n) { return n->address; });
    for (const conf::ServicePortConfig& port : svc.ports) {
      ServicePortBackends set{.service = svc.namespace_name + "/" + svc.name,
                              .port_name = port.name,
                              .vip = svc.vip,
                              .port = port.port,
                              .protocol = port.protocol,
                              .backends = {}};
      for (const conf::NodeConfig* node : nodes) {
        set.backends.push_back(NodeBackend{.node = node->name, .address = node->address,
                                           .node_port = port.node_port, .weight = 1});
      }
      out.push_back(std::move(set));
    }
  }
  return out;
}

}  // namespace ng::nodeport
