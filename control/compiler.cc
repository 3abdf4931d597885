#include "control/compiler.h"

#include <netinet/in.h>

#include <algorithm>
#include <tuple>

#include "nodeport/backends.h"

namespace ng::control {

SnapshotCompiler::SnapshotCompiler(uint32_t maglev_size) : maglev_size_(maglev_size) {}

uint32_t maglevSizeFor(uint32_t min_size, size_t backends) {
  // Maglev's balance and churn hold when M >= 100 N (NSDI'16 sec. 5.3); keep the
  // configured size unless a node set is too large for it.
  uint64_t size = std::max<uint64_t>(min_size, uint64_t{backends} * 100);
  while (!lb::isPrime(static_cast<uint32_t>(size))) ++size;
  return static_cast<uint32_t>(size);
}

std::shared_ptr<const lb::MaglevTable> SnapshotCompiler::tableFor(const NodeSet& nodes,
                                                                  std::map<NodeSet, CachedTable>& next) {
  if (auto it = next.find(nodes); it != next.end()) return it->second.table;
  CachedTable entry;
  if (auto old = tables_.find(nodes); old != tables_.end()) {
    entry = old->second;
  } else {
    for (const auto& [address, weight] : nodes) {
      // Identity = node address: equal node sets give equal tables on every box.
      entry.backends.push_back(lb::MaglevBackend{.id = address, .weight = weight});
    }
    entry.table = std::make_shared<const lb::MaglevTable>(
        lb::MaglevTable::build(entry.backends, maglevSizeFor(maglev_size_, entry.backends.size())));
    ++stats_.maglev_built;
  }
  next.emplace(nodes, entry);
  return entry.table;
}

std::unique_ptr<fwd::ForwardingSnapshot> SnapshotCompiler::compile(const conf::Config& config,
                                                                   uint64_t generation) {
  stats_ = CompileStats{};
  auto snap = std::make_unique<fwd::ForwardingSnapshot>();
  snap->generation = generation;
  snap->snat_addresses = config.dataplane.snat.addresses;
  const conf::FlowConfig& flows = config.dataplane.flows;
  snap->timeouts = lb::FlowTimeouts{.tcp_established_ms = flows.tcp_timeout * 1000,
                                    .tcp_transitory_ms = flows.tcp_transitory_timeout * 1000,
                                    .udp_ms = flows.udp_timeout * 1000};
  for (const conf::NodeConfig& node : config.nodes) {
    snap->resolve_targets.push_back(node.address);
    if (node.mac) snap->static_neighbors.push_back(fwd::StaticNeighbor{.ip = node.address, .mac = *node.mac});
  }

  std::map<NodeSet, CachedTable> next_tables;
  std::map<std::tuple<uint32_t, uint16_t, uint8_t>, NodeSet> next_sets;
  for (nodeport::ServicePortBackends& set : nodeport::backendSets(config)) {
    fwd::ServicePort sp;
    sp.vip = set.vip;
    sp.port = set.port;
    sp.proto = set.protocol == conf::Protocol::kTcp ? IPPROTO_TCP : IPPROTO_UDP;
    NodeSet nodes;
    for (const nodeport::NodeBackend& b : set.backends) {  // sorted by address
      sp.backends.push_back(fwd::Backend{.node_ip = b.address, .node_port = b.node_port,
                                         .weight = static_cast<uint16_t>(b.weight)});
      nodes.emplace_back(b.address, b.weight);
    }
    sp.maglev = tableFor(nodes, next_tables);

    const auto key = std::make_tuple(sp.vip, sp.port, sp.proto);
    if (auto prev = previous_sets_.find(key); prev != previous_sets_.end() && prev->second != nodes) {
      const auto& old_entry = tables_.at(prev->second);
      const auto& new_entry = next_tables.at(nodes);
      // A table that changed size reshuffles everything: count every slot as moved.
      stats_.slots_moved += old_entry.table->size() == new_entry.table->size()
                                ? lb::MaglevTable::slotsMoved(*old_entry.table, old_entry.backends,
                                                              *new_entry.table, new_entry.backends)
                                : new_entry.table->size();
    }
    next_sets[key] = std::move(nodes);
    snap->vips.push_back(sp.vip);
    snap->service_ports.push_back(std::move(sp));
  }
  snap->finalize();

  stats_.service_ports = static_cast<uint32_t>(snap->service_ports.size());
  stats_.maglev_tables = static_cast<uint32_t>(next_tables.size());
  tables_ = std::move(next_tables);
  previous_sets_ = std::move(next_sets);
  return snap;
}

}  // namespace ng::control
