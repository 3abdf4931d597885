#pragma once
// ForwardingSnapshot: everything a worker needs to forward a packet, compiled by the
// control thread and published whole with one atomic pointer store (DESIGN.md sec. 2).
//
// Immutable after publication. Workers load the pointer once per burst and must not
// keep references past their next quiescent-state report; the control thread frees a
// snapshot only after the RCU grace period that follows its replacement.

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

// One VIP:port/protocol and where its new flows go.
struct ServicePort {
  uint32_t vip = 0;
  uint16_t port = 0;
  uint8_t proto = 0;                    // IPPROTO_TCP / IPPROTO_UDP
  uint32_t id = 0;                      // index in ForwardingSnapshot::service_ports
  std::vector<Backend> backends;        // Maglev slot values index this vector
  std::shared_ptr<const lb::MaglevTable> maglev;  // shared between ports with equal node sets
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

  // Builds the VIP:port index; call once after filling service_ports (control thread).
  void finalize();

  [[nodiscard]] const ServicePort* find(uint32_t vip, uint16_t port, uint8_t proto) const noexcept;
  [[nodiscard]] bool isVip(uint32_t ip) const noexcept;

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
