#include "dataplane/lb/snat.h"

#include <array>
#include <cstddef>
#include <stdexcept>

#include "dataplane/lb/hash.h"

namespace ng::lb {
namespace {

constexpr uint64_t kCursorSeed = 0x736e61742d637572;  // "snat-cur"

// First port of an address's rotation. Derived from the address rather than port_min so
// that several SNAT addresses (and boxes sharing addresses after a failover) do not all
// start on the same ports, and from a per-boot seed so that a restarted box does not hand
// out the very ports its previous run just used: the nodes still hold those connections
// in TIME_WAIT and would stall the new SYNs (DESIGN.md sec. 2). Seed 0 (tests) is
// deterministic.
uint16_t startPort(uint32_t address, uint64_t seed, uint16_t port_min, uint16_t port_max) noexcept {
  std::array<std::byte, 4> bytes;
  for (size_t i = 0; i < bytes.size(); ++i) bytes[i] = static_cast<std::byte>(address >> (8 * i));
  const uint32_t range = uint32_t{port_max} - port_min + 1;
  return static_cast<uint16_t>(port_min + hashBytes(bytes, kCursorSeed ^ seed) % range);
}

uint16_t startPort(const Ip6& address, uint64_t seed, uint16_t port_min, uint16_t port_max) noexcept {
  std::array<std::byte, 16> bytes;
  for (size_t i = 0; i < 8; ++i) {
    bytes[i] = static_cast<std::byte>(address.hi >> (8 * i));
    bytes[8 + i] = static_cast<std::byte>(address.lo >> (8 * i));
  }
  const uint32_t range = uint32_t{port_max} - port_min + 1;
  return static_cast<uint16_t>(port_min + hashBytes(bytes, kCursorSeed ^ seed) % range);
}

}  // namespace

template <class Addr>
BasicSnatAllocator<Addr>::BasicSnatAllocator(std::span<const Addr> addresses, uint16_t port_min,
                                             uint16_t port_max)
    : port_min_(port_min), port_max_(port_max) {
  if (port_min > port_max) throw std::invalid_argument("snat: port_min > port_max");
  setAddresses(addresses);
}

template <class Addr>
void BasicSnatAllocator<Addr>::reseed(uint64_t seed) noexcept {
  start_seed_ = seed;
  for (uint32_t i = 0; i < count_; ++i) {
    cursors_[i].next_port = startPort(cursors_[i].address, seed, port_min_, port_max_);
  }
}

template <class Addr>
void BasicSnatAllocator<Addr>::setPortRange(uint16_t port_min, uint16_t port_max) noexcept {
  if (port_min > port_max) return;
  port_min_ = port_min;
  port_max_ = port_max;
  for (uint32_t i = 0; i < count_; ++i) {
    cursors_[i].next_port = startPort(cursors_[i].address, start_seed_, port_min_, port_max_);
  }
}

template <class Addr>
void BasicSnatAllocator<Addr>::setAddresses(std::span<const Addr> addresses) noexcept {
  std::array<Cursor, kMaxAddresses> next{};
  uint32_t n = 0;
  for (const Addr& a : addresses) {
    if (n == kMaxAddresses) break;
    bool duplicate = false;
    for (uint32_t i = 0; i < n; ++i) duplicate = duplicate || next[i].address == a;
    if (duplicate) continue;  // one rotation per address, however often it is listed
    Cursor cursor{.address = a, .next_port = startPort(a, start_seed_, port_min_, port_max_)};
    // A kept address continues its rotation, so ports released just before the update
    // are not handed out again right away.
    for (uint32_t i = 0; i < count_; ++i) {
      if (cursors_[i].address == a) cursor.next_port = cursors_[i].next_port;
    }
    next[n++] = cursor;
  }
  cursors_ = next;
  count_ = n;
  if (next_address_ >= count_) next_address_ = 0;
}

template <class Addr>
std::optional<BasicSnatEndpoint<Addr>> BasicSnatAllocator<Addr>::allocate(const BasicFlowTable<Key>& flows,
                                                                          const Addr& node_ip, uint16_t node_port,
                                                                          uint8_t proto) noexcept {
  const uint32_t n = count_;
  if (n == 0) return std::nullopt;
  const uint32_t range = uint32_t{port_max_} - port_min_ + 1;
  const bool steered = steering_ != nullptr && steering_->workers() > 1;
  // Ports examined per address: kMaxProbes owned ones on average when 1 in `workers`
  // ports is ours, never more than the whole range.
  const uint32_t scan = steered ? kMaxProbes * steering_->workers() : kMaxProbes;
  const uint32_t limit = range < scan ? range : scan;

  uint32_t ai = next_address_;
  for (uint32_t tried = 0; tried < n; ++tried) {
    Cursor& c = cursors_[ai];
    const uint32_t base = steered ? steering_->replyBase(node_ip, c.address, node_port) : 0;
    for (uint32_t p = 0; p < limit; ++p) {
      const uint16_t port = c.next_port;
      c.next_port = port == port_max_ ? port_min_ : static_cast<uint16_t>(port + 1);
      // Another worker's port: its reply would land on that worker's queue.
      if (steered && !steering_->ownsFor(&node_ip, worker_, base, port)) continue;
      // The key the node's reply will carry. A port is free toward this node:nodePort
      // unless a flow - live, or closing and so in quarantine - already holds it.
      const Key reply{.src_ip = node_ip,
                          .dst_ip = c.address,
                          .src_port = node_port,
                          .dst_port = port,
                          .proto = proto};
      if (!flows.contains(reply)) {
        // The next flow starts on the next address: several addresses share the load.
        next_address_ = ai + 1 == n ? 0 : ai + 1;
        return Endpoint{.address = c.address, .port = port};
      }
    }
    ai = ai + 1 == n ? 0 : ai + 1;
  }
  return std::nullopt;
}

template class BasicSnatAllocator<uint32_t>;
template class BasicSnatAllocator<Ip6>;

}  // namespace ng::lb
