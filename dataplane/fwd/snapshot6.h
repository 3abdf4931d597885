#pragma once
// The IPv6 half of the ForwardingSnapshot (fwd/snapshot.h): service ports with IPv6 VIPs,
// their IPv6 node backends and source ranges. Same rules as the IPv4 types: built and
// finalized on the control thread, immutable after publication.
//
// Dual stack: a Service with an IPv4 and an IPv6 VIP compiles to one ServicePort per
// port in ForwardingSnapshot::service_ports (IPv4 VIP, IPv4 nodes) and one ServicePort6
// per port in service_ports6 (IPv6 VIP, IPv6 node addresses). Flows never change family:
// full-NAT IPv6 -> IPv6 only (client v6 -> VIP6:port becomes SNAT6:port -> node6:nodePort).
// Stats ids (Backend6::stats_id) share the BackendStats slot space with IPv4 backends:
// the compiler gives each (node, nodePort, family) its own id.

#include <cstdint>
#include <memory>
#include <vector>

#include "dataplane/lb/maglev.h"
#include "dataplane/pkt/bytes.h"
#include "dataplane/pkt/ip6.h"

namespace ng::fwd {

using Ip6 = pkt::Ip6;

enum class ForwardingMode : uint8_t { kFullNat, kTunnel };

// A NodePort backend reached over IPv6: node address : nodePort.
struct Backend6 {
  Ip6 node_ip;
  uint16_t node_port = 0;
  uint16_t weight = 1;
  uint32_t stats_id = 0;  // BackendStats slot, stable across generations (0 = none)
};

// An inclusive range of IPv6 addresses: one or more merged prefixes.
struct SourceRange6 {
  Ip6 first;
  Ip6 last;
  friend bool operator==(const SourceRange6&, const SourceRange6&) = default;
};

// The range a prefix covers (`length` 0..128; host bits of `address` are ignored).
[[nodiscard]] SourceRange6 prefixRange6(const Ip6& address, uint8_t length) noexcept;
// Sorts and merges overlapping and adjacent ranges (control thread).
[[nodiscard]] std::vector<SourceRange6> mergeSourceRanges6(std::vector<SourceRange6> ranges);

// One IPv6 VIP:port/protocol and where its new flows go.
struct ServicePort6 {
  Ip6 vip;
  uint16_t port = 0;
  uint8_t proto = 0;                    // IPPROTO_TCP / IPPROTO_UDP
  uint32_t id = 0;                      // index in ForwardingSnapshot::service_ports6
  // Maglev slot values index this vector; the compiler emits it sorted by node_ip, one
  // entry per node (finalize() notes whether that holds).
  std::vector<Backend6> backends;
  std::shared_ptr<const lb::MaglevTable> maglev;
  // The IPv6 prefixes of loadBalancerSourceRanges, compiled with mergeSourceRanges6.
  std::vector<SourceRange6> source_ranges;
  // True when the Service lists loadBalancerSourceRanges at all (of either family): then
  // only `source_ranges` may open flows - a Service that lists only IPv4 prefixes admits
  // no IPv6 client, as with kube-proxy. False: every source is allowed. Checked for new
  // flows only.
  bool restrict_sources = false;
  // sessionAffinity ClientIP idle timeout; 0 = no affinity (Maglev on the 5-tuple).
  uint32_t affinity_timeout_ms = 0;
  bool backends_sorted = false;         // set by ForwardingSnapshot::finalize()
  // kTunnel: IPv6-in-IPv6 to the node (DSR), processor6.cc. kFullNat: IPv6 full-NAT.
  ForwardingMode mode = ForwardingMode::kFullNat;

  // True when `src` may open a flow to this port: binary search, O(log ranges).
  [[nodiscard]] bool allowsSource(const Ip6& src) const noexcept;
  // The backend with a Maglev weight > 0 (still given new flows), or nullptr.
  [[nodiscard]] const Backend6* servingBackend(const Ip6& node_ip, uint16_t node_port) const noexcept;
};

// Static IPv6 neighbour entry from config (node with a fixed MAC).
struct StaticNeighbor6 {
  Ip6 ip;
  pkt::Mac mac{};
};

}  // namespace ng::fwd
