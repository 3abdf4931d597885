#pragma once
// Per-worker memory of session affinity (Kubernetes `sessionAffinity: ClientIP`): which
// node a client IP was sent to, per service port, so its next connections go there too.
//
// Design (how the two halves of ClientIP affinity fit together):
//   1. The first choice for a client is Maglev on a hash of the client IP alone (not the
//      5-tuple), so every worker and every box behind ECMP picks the same node for it
//      without sharing state, and keeps picking it while the node set is unchanged.
//   2. This table makes the choice stick when the node set changes (a node added or
//      re-weighted moves some Maglev slots): the remembered node keeps the client for
//      the timeout as long as it is still among the service port's serving backends.
//      A remembered node that stopped serving (health, drain, removed) is chosen again.
// The table is a cache of promises, never a gate: a full bucket, a miss or a lost entry
// only means the client gets the Maglev choice of (1), which is the same node unless
// the table changed. So the table never blocks a new flow.
//
// Timeout semantics: an entry is held while flows it placed are alive (a client with an
// open connection keeps its node however long it lasts, like an IPVS persistence
// template), and then for `timeout_ms` after the last packet of the last of those flows
// (release() is told that time when the flow ends). Only new flows and flow ends touch the
// table, never established packets, so the established-flow fast path does not pay for it.
//
// Shape: set-associative, kWays entries per bucket (two cache lines), power-of-two
// buckets, allocated once (lb::HugeArray). Every operation reads one bucket, so a flood
// of new client addresses costs O(kWays) per packet and can fill at most the buckets it
// hits; a live entry (flows > 0, or idle less than its timeout) is never evicted, so a
// flood cannot take a remembered node away from a client. Expired entries are reused in
// place and swept by expire() (a rotating cursor, from the worker's slow tick), so none
// outlives its timeout by more than a sweep period and the 32-bit millisecond clock
// never wraps under an idle entry.
//
// Threading: owned by one worker lcore; no locks, no allocation after construction, no
// exceptions after construction.

#include <cstdint>

#include "dataplane/lb/flow_key.h"
#include "dataplane/lb/huge_array.h"

namespace ng::lb {

// One template over the address type: AffinityTable (IPv4 clients, 32-byte entries) and
// AffinityTable6 (IPv6 clients and nodes), so ClientIP affinity works for both families
// without widening the IPv4 entries.

// Which client, toward which VIP:port/protocol.
template <class Addr>
struct BasicAffinityKey {
  Addr client_ip{};
  Addr vip{};
  uint16_t port = 0;
  uint8_t proto = 0;
  friend bool operator==(const BasicAffinityKey&, const BasicAffinityKey&) = default;
};
using AffinityKey = BasicAffinityKey<uint32_t>;
using AffinityKey6 = BasicAffinityKey<Ip6>;

template <class Addr>
struct BasicAffinityEntry {
  Addr client_ip{};
  Addr vip{};
  uint16_t port = 0;
  uint8_t proto = 0;
  uint8_t used = 0;          // 0 = empty way
  Addr node_ip{};            // the remembered backend
  uint16_t node_port = 0;
  uint16_t reserved = 0;
  uint32_t flows = 0;        // live flows placed through this entry
  uint32_t last_seen_ms = 0; // newest flow start or flow end seen
  uint32_t timeout_ms = 0;   // idle timeout once `flows` is 0 (the service's setting)

  [[nodiscard]] BasicAffinityKey<Addr> key() const noexcept {
    return {.client_ip = client_ip, .vip = vip, .port = port, .proto = proto};
  }
};
using AffinityEntry = BasicAffinityEntry<uint32_t>;
using AffinityEntry6 = BasicAffinityEntry<Ip6>;
static_assert(sizeof(AffinityEntry) == 32);

template <class Addr>
class BasicAffinityTable {
 public:
  using AffinityKey = BasicAffinityKey<Addr>;
  using AffinityEntry = BasicAffinityEntry<Addr>;
  static constexpr uint32_t kWays = 4;
  // Seed of the bucket hash; distinct from the flow-table and Maglev seeds.
  static constexpr uint64_t kSeed = 0x6166662d74626c65;  // "aff-tble"

  // Room for at least `capacity` entries (rounded up to a power of two buckets of kWays;
  // at least one bucket). Allocates here only; throws std::bad_alloc on failure.
  explicit BasicAffinityTable(uint32_t capacity);

  // The live entry of `key` at `now_ms`, judged with the service's current
  // `timeout_ms`; nullptr when there is none (never seen, or idle past the timeout).
  [[nodiscard]] const AffinityEntry* find(const AffinityKey& key, uint32_t now_ms,
                                          uint32_t timeout_ms) const noexcept;

  // A new flow of `key` went to node_ip:node_port: creates or refreshes the entry (node,
  // time, timeout) and counts the flow in it. Returns false and changes nothing when the
  // key has no entry and every way of its bucket is live; the caller then must not call
  // release() for that flow.
  [[nodiscard]] bool remember(const AffinityKey& key, const Addr& node_ip, uint16_t node_port,
                              uint32_t now_ms, uint32_t timeout_ms) noexcept;

  // A flow that remember() counted has ended; its last packet was at `last_seen_ms`.
  // When no counted flow is left, the idle timeout runs from the newest such time.
  void release(const AffinityKey& key, uint32_t last_seen_ms) noexcept;

  // Incremental sweep: examines up to `buckets` buckets from a rotating cursor and clears
  // the entries that have expired. Returns the number cleared.
  uint32_t expire(uint32_t now_ms, uint32_t buckets) noexcept;

  [[nodiscard]] uint32_t size() const noexcept { return size_; }  // entries in use
  [[nodiscard]] uint32_t capacity() const noexcept { return bucket_mask_ * kWays + kWays; }

 private:
  struct alignas(64) Bucket {
    AffinityEntry ways[kWays];
  };
  static_assert(sizeof(Addr) != 4 || sizeof(Bucket) == 128);

  [[nodiscard]] uint32_t bucketOf(const AffinityKey& key) const noexcept;
  [[nodiscard]] static bool expired(const AffinityEntry& e, uint32_t now_ms, uint32_t timeout_ms) noexcept;

  HugeArray<Bucket> buckets_;
  uint32_t bucket_mask_ = 0;
  uint32_t size_ = 0;
  uint32_t cursor_ = 0;
};

using AffinityTable = BasicAffinityTable<uint32_t>;
using AffinityTable6 = BasicAffinityTable<Ip6>;
extern template class BasicAffinityTable<uint32_t>;
extern template class BasicAffinityTable<Ip6>;

}  // namespace ng::lb
