#include "control/compiler.h"

#include <netinet/in.h>

#include <algorithm>
#include <chrono>
#include <tuple>

namespace ng::control {

const char* protocolName(conf::Protocol protocol) noexcept {
  return protocol == conf::Protocol::kTcp ? "TCP" : "UDP";
}
const char* modeName(conf::Mode mode) noexcept { return mode == conf::Mode::kFullNat ? "fullnat" : "tunnel"; }
const char* ipModeName(conf::Mode mode) noexcept { return mode == conf::Mode::kFullNat ? "Proxy" : "VIP"; }
const char* policyName(conf::TrafficPolicy policy) noexcept {
  return policy == conf::TrafficPolicy::kCluster ? "Cluster" : "Local";
}

SnapshotCompiler::SnapshotCompiler(uint32_t maglev_size, uint32_t stats_capacity)
    : maglev_size_(maglev_size), stats_capacity_(stats_capacity) {}

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

uint32_t SnapshotCompiler::takeFreeId() {
  if (next_fresh_id_ < stats_capacity_) return next_fresh_id_++;
  if (free_ids_.empty()) return 0;
  const uint32_t id = free_ids_.front();
  free_ids_.pop_front();
  return id;
}

void SnapshotCompiler::assignStatsIds(uint64_t port_key, const std::vector<nodeport::NodeBackend>& backends,
                                      std::vector<uint32_t>& ids) {
  PortIds& port = stats_ids_[port_key];
  std::vector<PortIds::Entry> next;
  next.reserve(backends.size());
  ids.clear();
  auto old = port.entries.begin();
  for (const nodeport::NodeBackend& b : backends) {
    // Entries of nodes that left (sorted before this backend) are released.
    while (old != port.entries.end() && std::pair(old->node, old->node_port) < std::pair(b.address, b.node_port)) {
      if (old->id != 0) released_.push_back(old->id);
      ++old;
    }
    uint32_t id = 0;
    if (old != port.entries.end() && old->node == b.address && old->node_port == b.node_port) {
      id = old->id;
      ++old;
    }
    if (id == 0) id = takeFreeId();  // new, or unattributed last time: try again
    if (id == 0) ++stats_.backends_unattributed;
    next.push_back(PortIds::Entry{.node = b.address, .node_port = b.node_port, .id = id});
    ids.push_back(id);
  }
  for (; old != port.entries.end(); ++old) {
    if (old->id != 0) released_.push_back(old->id);
  }
  port.entries = std::move(next);
  port.pass = pass_;
}

std::unique_ptr<fwd::ForwardingSnapshot> SnapshotCompiler::compile(const conf::Config& config,
                                                                   uint64_t generation,
                                                                   const nodeport::HealthView* health) {
  const auto started = std::chrono::steady_clock::now();
  stats_ = CompileStats{};
  ++pass_;
  auto snap = std::make_unique<fwd::ForwardingSnapshot>();
  auto view = std::make_shared<StatusView>();
  snap->generation = generation;
  view->generation = generation;
  snap->snat_addresses = config.dataplane.snat.addresses;
  const conf::FlowConfig& flows = config.dataplane.flows;
  snap->timeouts = lb::FlowTimeouts{.tcp_established_ms = flows.tcp_timeout * 1000,
                                    .tcp_transitory_ms = flows.tcp_transitory_timeout * 1000,
                                    .udp_ms = flows.udp_timeout * 1000,
                                    .tcp_half_open_ms = flows.tcp_half_open_timeout * 1000};
  snap->half_open_budget_percent = flows.half_open_budget;
  for (const conf::NodeConfig& node : config.nodes) {
    snap->resolve_targets.push_back(node.address);
    if (node.mac) snap->static_neighbors.push_back(fwd::StaticNeighbor{.ip = node.address, .mac = *node.mac});
    view->nodes.push_back(NodeView{.name = node.name, .address = node.address});
  }

  std::map<NodeSet, CachedTable> next_tables;
  std::map<std::tuple<uint32_t, uint16_t, uint8_t>, NodeSet> next_sets;
  std::map<uint32_t, VipView> vips;
  std::vector<uint32_t> stats_ids;
  for (nodeport::ServicePortBackends& set : nodeport::backendSets(config, health)) {
    fwd::ServicePort sp;
    sp.vip = set.vip;
    sp.port = set.port;
    sp.proto = set.protocol == conf::Protocol::kTcp ? IPPROTO_TCP : IPPROTO_UDP;
    // Source ranges become merged address intervals, so a worker answers "allowed?" with
    // one binary search whatever overlaps the list has.
    std::vector<fwd::SourceRange> ranges;
    for (const conf::Ipv4Prefix& prefix : set.source_ranges) {
      ranges.push_back(fwd::prefixRange(prefix.address, prefix.length));
    }
    sp.source_ranges = fwd::mergeSourceRanges(std::move(ranges));
    if (set.session_affinity == conf::SessionAffinity::kClientIp) {
      sp.affinity_timeout_ms = set.session_affinity_timeout * 1000;  // <= 86,400,000
    }
    PortView port_view{.name = set.port_name, .port = set.port, .protocol = set.protocol,
                       .node_port = set.backends.empty() ? uint16_t{0} : set.backends.front().node_port,
                       .policy = set.policy, .all_down = set.all_down, .backends = {}};
    NodeSet nodes;
    assignStatsIds(uint64_t{sp.vip} << 32 | uint64_t{sp.port} << 8 | sp.proto, set.backends, stats_ids);
    for (size_t i = 0; i < set.backends.size(); ++i) {  // sorted by address
      nodeport::NodeBackend& b = set.backends[i];
      const uint32_t stats_id = stats_ids[i];
      if (b.serving) {
        sp.backends.push_back(fwd::Backend{.node_ip = b.address, .node_port = b.node_port,
                                           .weight = static_cast<uint16_t>(b.weight), .stats_id = stats_id});
        nodes.emplace_back(b.address, b.weight);
      }
      if (b.cut) snap->cut_stats_ids.push_back(stats_id);
      port_view.backends.push_back(BackendView{.node = std::move(b.node), .address = b.address,
                                               .node_port = b.node_port, .weight = b.weight,
                                               .serving = b.serving, .stats_id = stats_id,
                                               .probe = std::move(b.probe)});
    }
    // No serving node (all_down = "drop", or no nodes at all): no table; new flows are
    // dropped and counted as no_backend.
    if (!nodes.empty()) sp.maglev = tableFor(nodes, next_tables);

    const auto key = std::make_tuple(sp.vip, sp.port, sp.proto);
    if (auto prev = previous_sets_.find(key); prev != previous_sets_.end() && prev->second != nodes &&
                                              !prev->second.empty() && !nodes.empty()) {
      const auto& old_entry = tables_.at(prev->second);
      const auto& new_entry = next_tables.at(nodes);
      // A table that changed size reshuffles everything: count every slot as moved.
      stats_.slots_moved += old_entry.table->size() == new_entry.table->size()
                                ? lb::MaglevTable::slotsMoved(*old_entry.table, old_entry.backends,
                                                              *new_entry.table, new_entry.backends)
                                : new_entry.table->size();
    }
    next_sets[key] = std::move(nodes);

    VipView& vip = vips[sp.vip];
    vip.vip = sp.vip;
    vip.owner = set.service;
    vip.mode = set.mode;
    vip.ports.push_back(std::move(port_view));
    snap->vips.push_back(sp.vip);
    snap->service_ports.push_back(std::move(sp));
  }
  snap->finalize();
  // When each VIP appeared, for gratuitous ARP (fwd::announceVips): kept while the VIP
  // stays, so a worker that skipped generations still announces what is new to it.
  std::map<uint32_t, uint64_t> next_since;
  snap->vip_since.reserve(snap->vips.size());
  for (uint32_t vip : snap->vips) {
    const auto prev = vip_since_.find(vip);
    const uint64_t since = prev != vip_since_.end() ? prev->second : generation;
    next_since.emplace(vip, since);
    snap->vip_since.push_back(since);
  }
  vip_since_ = std::move(next_since);
  snap->garp_interval_ms = config.dataplane.garp_interval_s * 1000;

  // Ids this generation did not use are released, reusable (oldest first) from the next.
  std::erase_if(stats_ids_, [this](const auto& entry) {
    if (entry.second.pass == pass_) return false;
    for (const PortIds::Entry& e : entry.second.entries) {
      if (e.id != 0) released_.push_back(e.id);
    }
    return true;
  });
  free_ids_.insert(free_ids_.end(), released_.begin(), released_.end());
  released_.clear();
  stats_.service_ports = static_cast<uint32_t>(snap->service_ports.size());
  stats_.maglev_tables = static_cast<uint32_t>(next_tables.size());
  tables_ = std::move(next_tables);
  previous_sets_ = std::move(next_sets);

  for (auto& [address, vip] : vips) {
    std::ranges::sort(vip.ports, {}, [](const PortView& p) { return std::pair(p.port, p.protocol); });
    view->vips.push_back(std::move(vip));
  }
  view->stats = stats_;
  view->compile_ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - started).count();
  view->compiled_unix_ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                               std::chrono::system_clock::now().time_since_epoch())
                               .count();
  status_ = std::move(view);
  return snap;
}

}  // namespace ng::control
