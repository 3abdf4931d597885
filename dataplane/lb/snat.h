#pragma once
// SNAT source-port allocation for full-NAT, per worker.
//
// Ports are handed out in rotation (one cursor per SNAT address) and a port is taken
// only when no flow in the table - live or lingering in kTcpClosing - already uses the
// resulting node key. Closed flows linger for the transitory timeout, which is the
// quarantine that keeps a port away from a node still holding the old connection in
// TIME_WAIT (DESIGN.md section 2, "SNAT ports are not reused too soon").
//
// With several workers each allocator hands out only the ports whose reply reaches its
// own worker (lb/reply_steering.h): the rotation skips the others. Ownership partitions
// reply keys between workers, so checking this worker's flow table is enough.
//
// One template over the address type: SnatAllocator (IPv4 SNAT addresses, checked
// against the IPv4 FlowTable) and SnatAllocator6 (IPv6 SNAT addresses, FlowTable6).

#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <vector>

#include "dataplane/lb/flow_key.h"
#include "dataplane/lb/flow_table.h"
#include "dataplane/lb/reply_steering.h"

namespace ng::lb {

template <class Addr>
struct BasicSnatEndpoint {
  Addr address{};
  uint16_t port = 0;
};
using SnatEndpoint = BasicSnatEndpoint<uint32_t>;
using SnatEndpoint6 = BasicSnatEndpoint<Ip6>;

template <class Addr>
class BasicSnatAllocator {
 public:
  using Key = FlowKeyFor<Addr>;
  using Endpoint = BasicSnatEndpoint<Addr>;
  static constexpr uint16_t kPortMin = 1024;
  static constexpr uint16_t kPortMax = 65535;
  static constexpr uint32_t kMaxProbes = 64;  // bounded work per new flow

  BasicSnatAllocator() = default;
  explicit BasicSnatAllocator(std::span<const Addr> addresses, uint16_t port_min = kPortMin,
                         uint16_t port_max = kPortMax);

  // At most this many addresses; further ones are ignored (the config loader rejects them).
  static constexpr size_t kMaxAddresses = 64;

  // Replaces the address set (control decided; called by the worker between bursts when
  // a snapshot with other SNAT addresses arrives). Cursors of kept addresses survive.
  // Allocates nothing: safe on a worker.
  void setAddresses(std::span<const Addr> addresses) noexcept;

  // Seeds where each address's rotation starts (control thread, before traffic): a box
  // passes a new seed every boot so a restart does not replay the ports its previous run
  // used, which nodes may still hold in TIME_WAIT. Default 0: deterministic (tests).
  void reseed(uint64_t seed) noexcept;

  // Narrows the ports handed out to port_min..port_max (control thread, before traffic;
  // requires port_min <= port_max, else ignored). Why: with an exception path, a SNAT
  // address that is also the box's own port address shares its port space with the
  // kernel's sockets, and a node's packet to that address is a full-NAT reply only when
  // its port is one SNAT could have handed out (fwd/exception.cc). Cursors restart in
  // the new range.
  void setPortRange(uint16_t port_min, uint16_t port_max) noexcept;
  [[nodiscard]] uint16_t portMin() const noexcept { return port_min_; }
  [[nodiscard]] uint16_t portMax() const noexcept { return port_max_; }
  // True when `port` is one this allocator may hand out (a reply to it may be ours).
  [[nodiscard]] bool inRange(uint16_t port) const noexcept { return port >= port_min_ && port <= port_max_; }

  // Hands out only ports that `steering` says make `worker` the reply's owner (control
  // thread, before traffic; `steering` must outlive the allocator - it is the
  // WorkerContext's own copy). Default: no steering, every port (one worker).
  void steer(const ReplySteering* steering, uint32_t worker) noexcept {
    steering_ = steering;
    worker_ = worker;
  }

  // Picks an endpoint toward node_ip:node_port for protocol `proto` that is free in
  // `flows` and owned by this worker, or nullopt after kMaxProbes collisions per address
  // (counted by the caller). With steering, at most kMaxProbes * workers ports are
  // examined per address (about kMaxProbes of them owned): bounded work either way.
  [[nodiscard]] std::optional<Endpoint> allocate(const BasicFlowTable<Key>& flows, const Addr& node_ip,
                                                 uint16_t node_port, uint8_t proto) noexcept;

 private:
  struct Cursor {
    Addr address;
    uint16_t next_port;
  };
  std::array<Cursor, kMaxAddresses> cursors_{};
  uint32_t count_ = 0;
  uint32_t next_address_ = 0;  // rotates across addresses
  uint16_t port_min_ = kPortMin;
  uint16_t port_max_ = kPortMax;
  uint64_t start_seed_ = 0;
  const ReplySteering* steering_ = nullptr;
  uint32_t worker_ = 0;
};

using SnatAllocator = BasicSnatAllocator<uint32_t>;
using SnatAllocator6 = BasicSnatAllocator<Ip6>;
extern template class BasicSnatAllocator<uint32_t>;
extern template class BasicSnatAllocator<Ip6>;

}  // namespace ng::lb
