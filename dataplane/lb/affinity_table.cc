#include "dataplane/lb/affinity_table.h"

#include <bit>
#include <type_traits>

#include "dataplane/lb/flow_key.h"
#include "dataplane/lb/hash.h"

namespace ng::lb {
namespace {

template <class Addr>
bool matches(const BasicAffinityEntry<Addr>& e, const BasicAffinityKey<Addr>& key) noexcept {
  return e.used && e.client_ip == key.client_ip && e.vip == key.vip && e.port == key.port &&
         e.proto == key.proto;
}

}  // namespace

template <class Addr>
BasicAffinityTable<Addr>::BasicAffinityTable(uint32_t capacity) {
  static_assert(std::is_trivially_destructible_v<Bucket>);
  const uint32_t wanted = capacity / kWays + (capacity % kWays != 0 ? 1 : 0);
  const uint32_t buckets = std::bit_ceil(wanted == 0 ? 1u : wanted);
  buckets_ = HugeArray<Bucket>(buckets);
  bucket_mask_ = buckets - 1;
}

template <class Addr>
uint32_t BasicAffinityTable<Addr>::bucketOf(const AffinityKey& key) const noexcept {
  // The flow-key hash over (client, VIP, port, protocol); not secret, so a crafted set of
  // client addresses can fill one bucket. That costs only those clients' memory of their
  // node (they get the Maglev choice), never a probe longer than kWays.
  const FlowKeyFor<Addr> k{.src_ip = key.client_ip, .dst_ip = key.vip, .src_port = 0, .dst_port = key.port,
                           .proto = key.proto};
  return static_cast<uint32_t>(hashFlowKey(k, kSeed)) & bucket_mask_;
}

template <class Addr>
bool BasicAffinityTable<Addr>::expired(const AffinityEntry& e, uint32_t now_ms, uint32_t timeout_ms) noexcept {
  // Wrap-safe: differences of the 32-bit millisecond clock; expire() keeps every idle
  // entry far younger than the 49-day wrap.
  return e.flows == 0 && now_ms - e.last_seen_ms > timeout_ms;
}

template <class Addr>
const BasicAffinityEntry<Addr>* BasicAffinityTable<Addr>::find(const AffinityKey& key, uint32_t now_ms,
                                         uint32_t timeout_ms) const noexcept {
  const Bucket& b = buckets_[bucketOf(key)];
  for (const AffinityEntry& e : b.ways) {
    if (matches(e, key)) return expired(e, now_ms, timeout_ms) ? nullptr : &e;
  }
  return nullptr;
}

template <class Addr>
bool BasicAffinityTable<Addr>::remember(const AffinityKey& key, const Addr& node_ip, uint16_t node_port,
                             uint32_t now_ms, uint32_t timeout_ms) noexcept {
  Bucket& b = buckets_[bucketOf(key)];
  AffinityEntry* slot = nullptr;
  for (AffinityEntry& e : b.ways) {
    if (matches(e, key)) {
      slot = &e;
      break;
    }
    // The first free way: empty, or expired under its own timeout.
    if (slot == nullptr && (!e.used || expired(e, now_ms, e.timeout_ms))) slot = &e;
  }
  if (slot == nullptr) return false;  // every way holds a live promise: keep them
  if (!matches(*slot, key)) {
    if (!slot->used) ++size_;
    *slot = AffinityEntry{.client_ip = key.client_ip, .vip = key.vip, .port = key.port,
                          .proto = key.proto, .used = 1};
  }
  slot->node_ip = node_ip;
  slot->node_port = node_port;
  slot->last_seen_ms = now_ms;
  slot->timeout_ms = timeout_ms;
  ++slot->flows;
  return true;
}

template <class Addr>
void BasicAffinityTable<Addr>::release(const AffinityKey& key, uint32_t last_seen_ms) noexcept {
  Bucket& b = buckets_[bucketOf(key)];
  for (AffinityEntry& e : b.ways) {
    if (!matches(e, key)) continue;
    if (e.flows > 0) --e.flows;
    // Newest wins, wrap-safe: a flow that ended may have been quieter than a newer one.
    if (static_cast<int32_t>(last_seen_ms - e.last_seen_ms) > 0) e.last_seen_ms = last_seen_ms;
    return;
  }
}

template <class Addr>
uint32_t BasicAffinityTable<Addr>::expire(uint32_t now_ms, uint32_t buckets) noexcept {
  uint32_t cleared = 0;
  if (size_ == 0) return 0;  // the common case without affinity Services: touch nothing
  for (uint32_t n = 0; n < buckets && n <= bucket_mask_; ++n) {
    Bucket& b = buckets_[cursor_];
    cursor_ = (cursor_ + 1) & bucket_mask_;
    for (AffinityEntry& e : b.ways) {
      if (e.used && expired(e, now_ms, e.timeout_ms)) {
        e = AffinityEntry{};
        --size_;
        ++cleared;
      }
    }
  }
  return cleared;
}

template class BasicAffinityTable<uint32_t>;
template class BasicAffinityTable<Ip6>;

}  // namespace ng::lb
