#pragma once
// Per-worker IPv4 neighbour (ARP) cache. Owned by one worker; fixed size, no allocation
// after construction. 4-way set associative: an attacker who makes us learn many
// addresses can only evict within one set, and static entries are never evicted.
//
// Learning follows Linux: we learn the sender of an ARP request only when it asks for
// one of our addresses, and the sender of an ARP reply only when we asked.
//
// One template over the address type: NeighborTable (IPv4, ARP) and NeighborTable6 (IPv6,
// Neighbor Discovery: learned from solicited NAs and from the source link-layer option
// of NSs for our addresses; fwd/nd.cc has the rules).

#include <array>
#include <cstdint>
#include <optional>
#include <vector>

#include "dataplane/pkt/ip6.h"

namespace ng::fwd {

namespace detail {
// Multiplicative hash: neighbouring addresses land in different sets.
inline uint32_t neighborSetHash(uint32_t ip) noexcept { return (ip * 0x9e3779b1u) >> 16; }
inline uint32_t neighborSetHash(const pkt::Ip6& ip) noexcept {
  const uint64_t x = (ip.hi ^ ip.lo ^ (ip.lo >> 29)) * 0x9e3779b97f4a7c15ULL;
  return static_cast<uint32_t>(x >> 40);
}
}  // namespace detail

template <class Addr>
class BasicNeighborTable {
 public:
  using Mac = std::array<uint8_t, 6>;
  static constexpr uint32_t kWays = 4;
  static constexpr uint32_t kRetryMs = 1000;     // at most one ARP request per target per second
  static constexpr uint32_t kRefreshMs = 30'000;  // re-confirm learned entries this often

  explicit BasicNeighborTable(uint32_t sets = 256);

  // The resolved MAC of `ip`, or nullptr. A pointer, not an optional copy: the copy
  // through the stack cost a store-forwarding stall on every packet. Valid until the
  // next learn()/want() on this table.
  // Inline: called for every forwarded packet.
  [[nodiscard]] const Mac* lookup(const Addr& ip) const noexcept {
    const Entry* set = &entries_[size_t{setOf(ip)} * kWays];
    for (uint32_t w = 0; w < kWays; ++w) {
      if (set[w].ip == ip && set[w].used) return set[w].resolved ? &set[w].mac : nullptr;
    }
    return nullptr;
  }
  // Records a resolved address. `is_static` entries are never replaced by learning.
  void learn(const Addr& ip, const Mac& mac, uint32_t now_ms, bool is_static = false) noexcept;
  // Marks `ip` as wanted (a packet needed it). Returns true when an ARP request should be
  // sent now (never requested, or last request older than kRetryMs).
  [[nodiscard]] bool want(const Addr& ip, uint32_t now_ms) noexcept;
  // True when we sent a request for `ip` and have no answer yet.
  [[nodiscard]] bool pending(const Addr& ip) const noexcept;
  // For next hops we keep resolved (nodes, gateways): true when a request is due now,
  // either to resolve or to re-confirm a learned entry older than kRefreshMs. A
  // re-confirmation keeps the entry usable; the reply refreshes it.
  [[nodiscard]] bool refreshDue(const Addr& ip, uint32_t now_ms) noexcept;
  [[nodiscard]] uint32_t size() const noexcept;

 private:
  struct Entry {
    Addr ip{};
    Mac mac{};
    uint32_t learned_ms = 0;    // last time the MAC was learned or confirmed
    uint32_t requested_ms = 0;  // last time we sent a request
    bool used = false;
    bool resolved = false;
    bool requested = false;     // we asked and are waiting for the answer
    bool is_static = false;
  };
  Entry* find(const Addr& ip) noexcept;
  const Entry* find(const Addr& ip) const noexcept;
  // The way to (re)use for a new `ip`: a free one, else the least recently learned
  // non-static one; nullptr when every way of the set is static.
  Entry* victim(const Addr& ip, uint32_t now_ms) noexcept;
  uint32_t setOf(const Addr& ip) const noexcept {
    return detail::neighborSetHash(ip) & set_mask_;
  }

  std::vector<Entry> entries_;
  uint32_t set_mask_;
};

using NeighborTable = BasicNeighborTable<uint32_t>;
using NeighborTable6 = BasicNeighborTable<pkt::Ip6>;
extern template class BasicNeighborTable<uint32_t>;
extern template class BasicNeighborTable<pkt::Ip6>;

}  // namespace ng::fwd
