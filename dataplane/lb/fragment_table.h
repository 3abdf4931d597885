#pragma once
// Per-worker IPv4 fragment table: where the rest of a fragmented datagram goes.
//
// Only a datagram's first fragment carries the TCP/UDP ports, so only it can be matched
// to a flow. When the pipeline forwards a first fragment it records, under the
// datagram's identity (source, destination, protocol, IP id - RFC 791's reassembly key),
// the addresses it rewrote the fragment to and where it sent it; later fragments of the
// same datagram look that up and get the same treatment. The box never reassembles.
// The policy (what is forwarded, what is dropped and why) lives in fwd/processor.cc.
//
// Shape: set-associative, kWays entries per bucket, allocated once (lb::HugeArray), so
// every operation reads one bucket and nothing is allocated on the hot path. An entry
// ends when every byte of its datagram has passed (the last fragment gives the length)
// or `timeout_ms` after its first fragment, whichever comes first; an aged entry is
// reused in place, and sweep() clears them in the background so the 32-bit millisecond
// clock never wraps under one. A bucket full of live entries refuses a new datagram
// (the caller drops and counts it): entries of datagrams already under way are never
// evicted, since their other fragments are in flight.
//
// Threading: owned by one worker lcore; no locks, no allocation and no exceptions after
// construction.

#include <cstdint>
#include <type_traits>

#include "dataplane/lb/flow_key.h"
#include "dataplane/lb/huge_array.h"

namespace ng::lb {

// One template over the address type: FragmentTable (IPv4: 16-bit identification) and
// FragmentTable6 (IPv6: the Fragment extension header's 32-bit identification, RFC 8200
// 4.5). The key is RFC 791's / RFC 8200's reassembly key either way.
template <class Addr>
using FragmentIdFor = std::conditional_t<std::is_same_v<Addr, uint32_t>, uint16_t, uint32_t>;

template <class Addr>
struct BasicFragmentKey {
  Addr src_ip{};        // host byte order, as received
  Addr dst_ip{};
  FragmentIdFor<Addr> id = 0;  // IPv4 identification / IPv6 fragment identification
  uint8_t proto = 0;    // IPv6: the upper-layer protocol after the Fragment header
  uint8_t pad[sizeof(Addr) == 4 ? 1 : 3] = {};  // always zero
  friend bool operator==(const BasicFragmentKey&, const BasicFragmentKey&) = default;
};
using FragmentKey = BasicFragmentKey<uint32_t>;
using FragmentKey6 = BasicFragmentKey<Ip6>;
static_assert(sizeof(FragmentKey) == 12);
static_assert(sizeof(FragmentKey6) == 40);

template <class Addr>
struct BasicFragmentEntry {
  BasicFragmentKey<Addr> key;
  uint32_t created_ms = 0;   // when the first fragment passed
  Addr new_src_ip{};         // what the first fragment's addresses were rewritten to
  Addr new_dst_ip{};
  uint32_t stats_id = 0;     // the flow's backend counters (0 = none)
  uint32_t received = 0;     // IP payload bytes forwarded so far (first fragment included)
  uint32_t total = 0;        // the datagram's payload length once its last fragment passed; 0 = not yet
  uint16_t first_len = 0;    // payload bytes of the first fragment: later ones must start past it
  uint8_t in_port = 0;       // port slot the datagram arrives on
  uint8_t out_port = 0;      // port slot it leaves by
  uint8_t to_node = 0;       // 1: client -> node, 0: node -> client
  uint8_t used = 0;          // 0 = empty way
  FragmentIdFor<Addr> new_id = 0;  // identification every fragment of the datagram leaves with
  uint8_t tunnel = 0;        // 1: tunnel mode, fragments leave unchanged inside an outer
                             // header new_src_ip -> new_dst_ip (the node); new_id unused
  uint8_t to_kernel = 0;     // 1: the datagram goes to in_port's kernel interface (exception path)
};
using FragmentEntry = BasicFragmentEntry<uint32_t>;
using FragmentEntry6 = BasicFragmentEntry<Ip6>;

template <class Addr>
class BasicFragmentTable {
 public:
  using FragmentKey = BasicFragmentKey<Addr>;
  using FragmentEntry = BasicFragmentEntry<Addr>;
  static constexpr uint32_t kWays = 4;
  static constexpr uint32_t kDefaultTimeoutMs = 2'000;

  // `capacity` entries, rounded up to a power-of-two number of buckets of kWays (at
  // least one bucket). Throws std::invalid_argument (0 or > 2^24) / std::bad_alloc at
  // construction only.
  explicit BasicFragmentTable(uint32_t capacity, uint32_t timeout_ms = kDefaultTimeoutMs);

  // The live entry of `key`, or nullptr (none, or aged out).
  [[nodiscard]] FragmentEntry* find(const FragmentKey& key, uint32_t now_ms) noexcept;
  // A fresh entry for `key` (its fields reset, key, created_ms and used set): the entry
  // `key` already had (a first fragment seen again starts the datagram over), else an
  // empty or aged way of its bucket. nullptr when the bucket holds kWays live entries.
  [[nodiscard]] FragmentEntry* insert(const FragmentKey& key, uint32_t now_ms) noexcept;
  void erase(FragmentEntry* entry) noexcept;

  // Clears aged entries in up to `buckets` buckets from a rotating cursor; returns how
  // many it cleared.
  uint32_t sweep(uint32_t now_ms, uint32_t buckets) noexcept;

  [[nodiscard]] uint32_t capacity() const noexcept { return bucket_count_ * kWays; }
  [[nodiscard]] uint32_t size() const noexcept { return size_; }  // used entries, aged ones included
  [[nodiscard]] uint32_t timeoutMs() const noexcept { return timeout_ms_; }

 private:
  [[nodiscard]] bool aged(const FragmentEntry& e, uint32_t now_ms) const noexcept {
    return now_ms - e.created_ms > timeout_ms_;  // modulo 2^32: wrap-safe
  }
  [[nodiscard]] FragmentEntry* bucketOf(const FragmentKey& key) noexcept;

  HugeArray<FragmentEntry> entries_;
  uint32_t bucket_count_ = 0;
  uint32_t bucket_mask_ = 0;
  uint32_t timeout_ms_ = kDefaultTimeoutMs;
  uint32_t size_ = 0;
  uint32_t sweep_cursor_ = 0;
};

using FragmentTable = BasicFragmentTable<uint32_t>;
using FragmentTable6 = BasicFragmentTable<Ip6>;
extern template class BasicFragmentTable<uint32_t>;
extern template class BasicFragmentTable<Ip6>;

}  // namespace ng::lb
