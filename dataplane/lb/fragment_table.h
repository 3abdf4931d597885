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

#include "dataplane/lb/huge_array.h"

namespace ng::lb {

struct FragmentKey {
  uint32_t src_ip = 0;  // host byte order, as received
  uint32_t dst_ip = 0;
  uint16_t id = 0;      // IPv4 identification
  uint8_t proto = 0;
  uint8_t pad = 0;      // always zero
  friend bool operator==(const FragmentKey&, const FragmentKey&) = default;
};
static_assert(sizeof(FragmentKey) == 12);

struct FragmentEntry {
  FragmentKey key;
  uint32_t created_ms = 0;   // when the first fragment passed
  uint32_t new_src_ip = 0;   // what the first fragment's addresses were rewritten to
  uint32_t new_dst_ip = 0;
  uint32_t stats_id = 0;     // the flow's backend counters (0 = none)
  uint32_t received = 0;     // IP payload bytes forwarded so far (first fragment included)
  uint32_t total = 0;        // the datagram's payload length once its last fragment passed; 0 = not yet
  uint16_t first_len = 0;    // payload bytes of the first fragment: later ones must start past it
  uint8_t in_port = 0;       // port slot the datagram arrives on
  uint8_t out_port = 0;      // port slot it leaves by
  uint8_t to_node = 0;       // 1: client -> node, 0: node -> client
  uint8_t used = 0;          // 0 = empty way
  uint16_t new_id = 0;       // IPv4 identification every fragment of the datagram leaves with
  uint8_t to_kernel = 0;     // 1: the datagram goes to in_port's kernel interface (exception path)
};

class FragmentTable {
 public:
  static constexpr uint32_t kWays = 4;
  static constexpr uint32_t kDefaultTimeoutMs = 2'000;

  // `capacity` entries, rounded up to a power-of-two number of buckets of kWays (at
  // least one bucket). Throws std::invalid_argument (0 or > 2^24) / std::bad_alloc at
  // construction only.
  explicit FragmentTable(uint32_t capacity, uint32_t timeout_ms = kDefaultTimeoutMs);

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

}  // namespace ng::lb
