#pragma once
// ForwardingSnapshot: everything a worker needs to forward a packet, compiled by the
// control thread and published whole with one atomic pointer store (DESIGN.md sec. 2).
//
// Immutable after publication. Workers load the pointer once per burst and must not
// keep references past their next quiescent-state report; the control thread frees a
// snapshot only after the RCU grace period that follows its replacement.

#include <algorithm>
#include <array>
#include <cstdint>
#include <memory>
#include <span>
#include <vector>

#include "dataplane/lb/flow_table.h"
#include "dataplane/lb/maglev.h"

namespace ng::fwd {

using Mac = std::array<uint8_t, 6>;

// A NodePort backend: node address : nodePort.
struct Backend {
  uint32_t node_ip = 0;
  uint16_t node_port = 0;
  uint16_t weight = 1;
  uint32_t stats_id = 0;  // BackendStats slot, stable across generations (0 = none)
};

// An inclusive range of IPv4 addresses (host byte order): one or more merged prefixes.
struct SourceRange {
  uint32_t first = 0;
  uint32_t last = 0;
  friend bool operator==(const SourceRange&, const SourceRange&) = default;
};

// The range a prefix covers (`length` 0..32; host bits of `address` are ignored).
[[nodiscard]] SourceRange prefixRange(uint32_t address, uint8_t length) noexcept;
// Sorts and merges overlapping and adjacent ranges: the form ServicePort::source_ranges
// needs (control thread).
[[nodiscard]] std::vector<SourceRange> mergeSourceRanges(std::vector<SourceRange> ranges);

// One VIP:port/protocol and where its new flows go.
struct ServicePort {
  uint32_t vip = 0;
  uint16_t port = 0;
  uint8_t proto = 0;                    // IPPROTO_TCP / IPPROTO_UDP
  uint32_t id = 0;                      // index in ForwardingSnapshot::service_ports
  // Maglev slot values index this vector. The compiler emits it sorted by node_ip, one
  // entry per node (finalize() notes whether that holds, for backendFor()).
  std::vector<Backend> backends;
  std::shared_ptr<const lb::MaglevTable> maglev;  // shared between ports with equal node sets
  // loadBalancerSourceRanges, compiled: sorted, disjoint, non-adjacent (mergeSourceRanges).
  // Empty = every source is allowed. Checked for new flows only.
  std::vector<SourceRange> source_ranges;
  // sessionAffinity ClientIP idle timeout; 0 = no affinity (Maglev on the 5-tuple).
  uint32_t affinity_timeout_ms = 0;
  bool backends_sorted = false;         // set by ForwardingSnapshot::finalize()

  // True when `src` may open a flow to this port: binary search, O(log ranges).
  [[nodiscard]] bool allowsSource(uint32_t src) const noexcept;
  // The backend node_ip:node_port with a Maglev weight > 0 (still given new flows), or
  // nullptr. O(log n) when backends_sorted, else a scan.
  [[nodiscard]] const Backend* servingBackend(uint32_t node_ip, uint16_t node_port) const noexcept;
};

// Static neighbour entry from config (node with a fixed MAC).
struct StaticNeighbor {
  uint32_t ip = 0;
  Mac mac{};
};

class ForwardingSnapshot {
 public:
  uint64_t generation = 0;
  std::vector<ServicePort> service_ports;
  std::vector<uint32_t> vips;               // sorted, unique: answered for ARP/ICMP echo
  std::vector<uint32_t> snat_addresses;     // full-NAT source addresses
  std::vector<uint32_t> resolve_targets;    // next hops the worker keeps resolved (nodes)
  std::vector<StaticNeighbor> static_neighbors;
  lb::FlowTimeouts timeouts;
  // Backends (by stats id) whose established flows are cut: their node drained for
  // longer than health.drain_timeout_s. Sorted; almost always empty.
  std::vector<uint32_t> cut_stats_ids;
  // Share of each worker's flow table that half-open (SYN-sent) flows may hold, 1..100;
  // beyond it a new SYN evicts the oldest half-open flow (fwd/processor.cc).
  uint32_t half_open_budget_percent = 25;
  // VIP announcements (fwd::announceVips): vip_since[i] is the generation in which
  // vips[i] appeared (kept while it stays; a VIP removed and added again is new). When
  // the sizes differ, every VIP counts as appeared in `generation`. garp_interval_ms:
  // every VIP is announced again this often; 0 = only when it appears.
  std::vector<uint64_t> vip_since;
  uint32_t garp_interval_ms = 0;

  // Builds the VIP:port index and notes which ports' backends are sorted; call once
  // after filling service_ports (control thread).
  void finalize();

  [[nodiscard]] const ServicePort* find(uint32_t vip, uint16_t port, uint8_t proto) const noexcept;
  [[nodiscard]] bool isVip(uint32_t ip) const noexcept;
  // True when flows to the backend with this stats id are cut (binary search).
  [[nodiscard]] bool cutsFlowsOf(uint32_t stats_id) const noexcept {
    return std::binary_search(cut_stats_ids.begin(), cut_stats_ids.end(), stats_id);
  }

 private:
  // Open-addressing index (vip, port, proto) -> service_ports position; power-of-two
  // size, load factor <= 1/2, built once by finalize().
  struct IndexSlot {
    uint32_t vip = 0;
    uint16_t port = 0;
    uint8_t proto = 0;
    uint8_t used = 0;
    uint32_t position = 0;
  };
  std::vector<IndexSlot> index_;
  uint32_t index_mask_ = 0;
};

}  // namespace ng::fwd
