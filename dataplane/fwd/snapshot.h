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
#include "dataplane/fwd/snapshot6.h"

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

// How a service port's packets reach the node (DESIGN.md sec. 2, "Forwarding modes").
// kFullNat: VIP:port -> node:nodePort and client -> SNAT address:port; replies return
// through the box. kTunnel: the client's packet unchanged inside an IPv4 header to the
// node (IPIP, RFC 2003); the node answers the client directly (DSR).
// ForwardingMode: snapshot6.h (shared by both families).

// Tunnel mode's box-wide settings (dataplane.tunnel in the config).
struct TunnelSettings {
  // Outer source addresses: `source_count` consecutive addresses from `source_base`. Each
  // flow gets one, chosen by its flow hash, so a node whose NIC hashes only the outer
  // addresses (most do for IPIP) still spreads the box's flows over its RX queues.
  uint32_t source_base = 0;
  uint32_t source_count = 1;  // >= 1
  // ICMP "fragmentation needed" answers a worker may send: `icmp_rate` per second with
  // bursts of `icmp_burst` (token bucket); 0 = never answer (drop and count).
  uint32_t icmp_rate = 100;
  uint32_t icmp_burst = 20;

  // The outer source of the flow whose FlowTable::hashOf(client key) is `flow_hash`:
  // multiply-shift maps the hash onto the range without a division.
  [[nodiscard]] uint32_t sourceFor(uint32_t flow_hash) const noexcept {
    return source_base + static_cast<uint32_t>((uint64_t{flow_hash} * source_count) >> 32);
  }
  [[nodiscard]] bool isSource(uint32_t ip) const noexcept { return ip - source_base < source_count; }

  // IPv6-in-IPv6 outer sources (dataplane.tunnel.source6): `source6_count` consecutive
  // addresses from `source6_base` (the compiler keeps them inside one /96 or longer
  // prefix, so only the low 32 bits vary). Zero base: the tunnel has no IPv6 source and
  // IPv6 tunnel packets use the internal port's address6 (the compiler fills it in).
  // The outer source varies per flow for the same reason as IPv4's: NICs hash IPv6
  // packets of next header 41 on the address pair (most ignore the flow label), so a
  // single source would put every flow of the box on one RX queue of the node.
  Ip6 source6_base{};
  uint32_t source6_count = 1;  // >= 1

  [[nodiscard]] Ip6 sourceFor6(uint32_t flow_hash) const noexcept {
    Ip6 a = source6_base;
    a.lo += (uint64_t{flow_hash} * source6_count) >> 32;
    return a;
  }
  [[nodiscard]] bool isSource6(const Ip6& ip) const noexcept {
    return !source6_base.isZero() && ip.hi == source6_base.hi && ip.lo - source6_base.lo < source6_count;
  }
  // The outer flow label of the flow whose client-key hash is `flow_hash`: 20 bits of it,
  // never 0 (RFC 6437: 0 means "no label"), so routers and NICs that hash the label
  // (RFC 6438) spread the box's flows even from one source address.
  [[nodiscard]] static uint32_t flowLabelFor(uint32_t flow_hash) noexcept {
    const uint32_t label = (flow_hash ^ (flow_hash >> 20)) & 0xfffff;
    return label == 0 ? 1 : label;
  }
};

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
  ForwardingMode mode = ForwardingMode::kFullNat;

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
  // Outer sources and frag-needed rate of tunnel-mode service ports.
  TunnelSettings tunnel;
  // VIP announcements (fwd::announceVips): vip_since[i] is the generation in which
  // vips[i] appeared (kept while it stays; a VIP removed and added again is new). When
  // the sizes differ, every VIP counts as appeared in `generation`. garp_interval_ms:
  // every VIP is announced again this often; 0 = only when it appears.
  std::vector<uint64_t> vip_since;
  uint32_t garp_interval_ms = 0;

  // --- IPv6 (types and dual-stack rules in fwd/snapshot6.h) -------------------------
  // Mirrors of the IPv4 fields above, for IPv6. All may be empty (an IPv4-only box).
  std::vector<ServicePort6> service_ports6;
  std::vector<Ip6> vips6;                   // sorted, unique (finalize): answered for ND/ICMPv6 echo
  // vip_since6[i]: generation in which vips6[i] appeared (as vip_since, for unsolicited NA).
  std::vector<uint64_t> vip_since6;
  std::vector<Ip6> snat_addresses6;         // full-NAT IPv6 source addresses (at most 64 used)
  std::vector<Ip6> resolve_targets6;        // IPv6 next hops the worker keeps resolved (nodes)
  std::vector<StaticNeighbor6> static_neighbors6;

  // Builds the VIP:port indexes (IPv4 and IPv6) and notes which ports' backends are
  // sorted; call once after filling service_ports and service_ports6 (control thread).
  void finalize();

  [[nodiscard]] const ServicePort* find(uint32_t vip, uint16_t port, uint8_t proto) const noexcept;
  [[nodiscard]] bool isVip(uint32_t ip) const noexcept;
  [[nodiscard]] const ServicePort6* find6(const Ip6& vip, uint16_t port, uint8_t proto) const noexcept;
  [[nodiscard]] bool isVip6(const Ip6& ip) const noexcept;
  [[nodiscard]] bool isSnatAddress6(const Ip6& ip) const noexcept;
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

  struct IndexSlot6 {
    Ip6 vip;
    uint16_t port = 0;
    uint8_t proto = 0;
    uint8_t used = 0;
    uint32_t position = 0;
  };
  void finalize6();  // the IPv6 part of finalize() (fwd/snapshot6.cc)
  std::vector<IndexSlot6> index6_;
  uint32_t index6_mask_ = 0;
};

}  // namespace ng::fwd
