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

namespace {
// IPv6-in-IPv6 outer sources: dataplane.tunnel.source6 (its first address skipped below
// /127: the subnet-router anycast address, RFC 4291 sec. 2.6.1), else the internal
// port's address6 alone, else none (config validation refuses IPv6 tunnel VIPs then).
void setTunnelSource6(const conf::Config& config, fwd::TunnelSettings& out) {
  const conf::TunnelConfig& t = config.dataplane.tunnel;
  if (!t.source6) {
    const conf::PortConfig* internal = config.port(conf::PortRole::kInternal);
    out.source6_base = internal != nullptr && internal->address6 ? toIp6(internal->address6->address) : fwd::Ip6{};
    out.source6_count = 1;
    return;
  }
  const uint32_t size = uint32_t{1} << (128 - t.source6->length);  // length >= 112 (validated)
  const bool skip_first = t.source6->length < 127;
  out.source6_base = toIp6(t.source6->address);
  out.source6_base.lo += skip_first ? 1 : 0;
  out.source6_count = skip_first ? size - 1 : size;
}
}  // namespace

fwd::TunnelSettings tunnelSettings(const conf::Config& config) {
  const conf::TunnelConfig& t = config.dataplane.tunnel;
  fwd::TunnelSettings out{.icmp_rate = t.icmp_rate, .icmp_burst = t.icmp_burst};
  setTunnelSource6(config, out);
  if (!t.source) {
    const conf::PortConfig* internal = config.port(conf::PortRole::kInternal);
    out.source_base = internal != nullptr ? internal->address.address : 0;
    out.source_count = 1;
    return out;
  }
  const uint32_t size = uint32_t{1} << (32 - t.source->length);  // length >= 16 (validated)
  // A /30 or wider has a network and a broadcast address: a node would drop packets from
  // either as martians, so they are not used.
  const bool skip_ends = size >= 4;
  out.source_base = t.source->address + (skip_ends ? 1 : 0);
  out.source_count = skip_ends ? size - 2 : size;
  return out;
}

SnapshotCompiler::SnapshotCompiler(uint32_t maglev_size, uint32_t stats_capacity)
    : maglev_size_(maglev_size), stats_capacity_(stats_capacity) {}

fwd::Ip6 toIp6(const conf::IpAddress& address) noexcept {
  const auto b = address.bytes();
  if (b.size() != 16) return {};
  uint64_t hi = 0, lo = 0;
  for (size_t i = 0; i < 8; ++i) {
    hi = hi << 8 | b[i];
    lo = lo << 8 | b[i + 8];
  }
  return fwd::Ip6{.hi = hi, .lo = lo};
}

uint64_t maglevId(const conf::IpAddress& address) noexcept {
  if (address.isV4()) return address.v4();  // the identity IPv4 tables always had
  // FNV-1a over the 16 bytes, with the top bit set so no IPv6 id equals an IPv4 one.
  // Fixed, so every box (and every version) builds the same IPv6 tables.
  uint64_t h = 14695981039346656037ull;
  for (uint8_t b : address.bytes()) h = (h ^ b) * 1099511628211ull;
  return h | (uint64_t{1} << 63);
}

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
      entry.backends.push_back(lb::MaglevBackend{.id = maglevId(address), .weight = weight});
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

void SnapshotCompiler::assignStatsIds(const PortKey& port_key, const std::vector<nodeport::NodeBackend>& backends,
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
  for (const conf::IpAddress& a : config.dataplane.snat.of(conf::IpFamily::kIpv4)) snap->snat_addresses.push_back(a.v4());
  for (const conf::IpAddress& a : config.dataplane.snat.of(conf::IpFamily::kIpv6)) {
    snap->snat_addresses6.push_back(toIp6(a));
  }
  const conf::FlowConfig& flows = config.dataplane.flows;
  snap->timeouts = lb::FlowTimeouts{.tcp_established_ms = flows.tcp_timeout * 1000,
                                    .tcp_transitory_ms = flows.tcp_transitory_timeout * 1000,
                                    .udp_ms = flows.udp_timeout * 1000,
                                    .tcp_half_open_ms = flows.tcp_half_open_timeout * 1000};
  snap->half_open_budget_percent = flows.half_open_budget;
  snap->tunnel = tunnelSettings(config);
  for (const conf::NodeConfig& node : config.nodes) {
    if (auto v4 = node.address(conf::IpFamily::kIpv4)) {
      snap->resolve_targets.push_back(v4->v4());
      if (node.mac) snap->static_neighbors.push_back(fwd::StaticNeighbor{.ip = v4->v4(), .mac = *node.mac});
    }
    if (auto v6 = node.address(conf::IpFamily::kIpv6)) {
      snap->resolve_targets6.push_back(toIp6(*v6));
      if (node.mac) snap->static_neighbors6.push_back(fwd::StaticNeighbor6{.ip = toIp6(*v6), .mac = *node.mac});
    }
    view->nodes.push_back(NodeView{.name = node.name, .addresses = node.addresses});
  }

  std::map<NodeSet, CachedTable> next_tables;
  std::map<PortKey, NodeSet> next_sets;
  std::map<conf::IpAddress, VipView> vips;
  std::vector<uint32_t> stats_ids;
  for (nodeport::ServicePortBackends& set : nodeport::backendSets(config, health)) {
    const uint8_t proto = set.protocol == conf::Protocol::kTcp ? IPPROTO_TCP : IPPROTO_UDP;
    const bool v4 = set.vip.isV4();
    PortView port_view{.name = set.port_name, .port = set.port, .protocol = set.protocol,
                       .node_port = set.backends.empty() ? uint16_t{0} : set.backends.front().node_port,
                       .policy = set.policy, .all_down = set.all_down, .backends = {}};
    NodeSet nodes;
    std::vector<fwd::Backend> backends;    // IPv4 VIP
    std::vector<fwd::Backend6> backends6;  // IPv6 VIP (nodeport gives nodes of the VIP's family)
    const PortKey key{set.vip, set.port, proto};
    assignStatsIds(key, set.backends, stats_ids);
    for (size_t i = 0; i < set.backends.size(); ++i) {  // sorted by address
      nodeport::NodeBackend& b = set.backends[i];
      const uint32_t stats_id = stats_ids[i];
      if (b.serving) {
        const auto weight = static_cast<uint16_t>(b.weight);
        if (v4) {
          backends.push_back(fwd::Backend{.node_ip = b.address.v4(), .node_port = b.node_port, .weight = weight,
                                          .stats_id = stats_id});
        } else {
          backends6.push_back(fwd::Backend6{.node_ip = toIp6(b.address), .node_port = b.node_port, .weight = weight,
                                            .stats_id = stats_id});
        }
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
    std::shared_ptr<const lb::MaglevTable> maglev;
    if (!nodes.empty()) maglev = tableFor(nodes, next_tables);

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

    const uint32_t affinity_ms =
        set.session_affinity == conf::SessionAffinity::kClientIp ? set.session_affinity_timeout * 1000 : 0;  // <= 86,400,000
    // Source ranges become merged address intervals, so a worker answers "allowed?" with
    // one binary search whatever overlaps the list has. A VIP takes the ranges of its
    // family; a list without one admits nobody on it (conf::ServiceConfig::source_ranges).
    if (v4) {
      fwd::ServicePort sp{.vip = set.vip.v4(), .port = set.port, .proto = proto};
      std::vector<fwd::SourceRange> ranges;
      for (const conf::IpPrefix& prefix : set.source_ranges) {
        if (prefix.address.isV4()) ranges.push_back(fwd::prefixRange(prefix.address.v4(), prefix.length));
      }
      sp.source_ranges = fwd::mergeSourceRanges(std::move(ranges));
      sp.mode = set.mode == conf::Mode::kTunnel ? fwd::ForwardingMode::kTunnel : fwd::ForwardingMode::kFullNat;
      if (!set.source_ranges.empty() && sp.source_ranges.empty()) {
        // An inclusive range with first > last holds no address, and a non-empty list
        // restricts: every source is refused (ServicePort::allowsSource).
        sp.source_ranges.push_back(fwd::SourceRange{.first = 1, .last = 0});
      }
      sp.backends = std::move(backends);
      sp.maglev = std::move(maglev);
      sp.affinity_timeout_ms = affinity_ms;
      snap->vips.push_back(sp.vip);
      snap->service_ports.push_back(std::move(sp));
    } else {
      fwd::ServicePort6 sp{.vip = toIp6(set.vip), .port = set.port, .proto = proto};
      // Each family tunnels in its own family: IPv6 VIPs go IPv6-in-IPv6 to IPv6 nodes.
      sp.mode = set.mode == conf::Mode::kTunnel ? fwd::ForwardingMode::kTunnel : fwd::ForwardingMode::kFullNat;
      std::vector<fwd::SourceRange6> ranges;
      for (const conf::IpPrefix& prefix : set.source_ranges) {
        if (prefix.address.isV6()) ranges.push_back(fwd::prefixRange6(toIp6(prefix.address), prefix.length));
      }
      sp.source_ranges = fwd::mergeSourceRanges6(std::move(ranges));
      sp.restrict_sources = !set.source_ranges.empty();
      sp.backends = std::move(backends6);
      sp.maglev = std::move(maglev);
      sp.affinity_timeout_ms = affinity_ms;
      snap->vips6.push_back(sp.vip);
      snap->service_ports6.push_back(std::move(sp));
    }

    VipView& vip = vips[set.vip];
    vip.vip = set.vip;
    vip.owner = set.service;
    vip.mode = set.mode;
    vip.ports.push_back(std::move(port_view));
  }
  snap->finalize();
  // When each VIP appeared, for gratuitous ARP and unsolicited NA (fwd::announceVips,
  // announceVips6): kept while the VIP
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
  std::map<pkt::Ip6, uint64_t> next_since6;
  snap->vip_since6.reserve(snap->vips6.size());
  for (const pkt::Ip6& vip : snap->vips6) {
    const auto prev = vip_since6_.find(vip);
    const uint64_t since = prev != vip_since6_.end() ? prev->second : generation;
    next_since6.emplace(vip, since);
    snap->vip_since6.push_back(since);
  }
  vip_since6_ = std::move(next_since6);
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
  stats_.service_ports = static_cast<uint32_t>(snap->service_ports.size() + snap->service_ports6.size());
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
