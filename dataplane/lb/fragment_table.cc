#include "dataplane/lb/fragment_table.h"

#include <bit>
#include <stdexcept>
#include <type_traits>

#include "dataplane/lb/flow_key.h"
#include "dataplane/lb/hash.h"

namespace ng::lb {
namespace {

constexpr uint32_t kMaxCapacity = uint32_t{1} << 24;
constexpr uint64_t kSeed = 0x667261672d696478;  // "frag-idx"

}  // namespace

template <class Addr>
BasicFragmentTable<Addr>::BasicFragmentTable(uint32_t capacity, uint32_t timeout_ms) : timeout_ms_(timeout_ms) {
  if (capacity == 0 || capacity > kMaxCapacity) {
    throw std::invalid_argument("fragment table: capacity must be in [1, 2^24]");
  }
  static_assert(std::is_trivially_destructible_v<FragmentEntry>);
  bucket_count_ = std::bit_ceil((capacity + kWays - 1) / kWays);
  bucket_mask_ = bucket_count_ - 1;
  entries_ = HugeArray<FragmentEntry>(size_t{bucket_count_} * kWays);  // value-initialised: all unused
}

template <class Addr>
BasicFragmentEntry<Addr>* BasicFragmentTable<Addr>::bucketOf(const FragmentKey& key) noexcept {
  // The flow-key hash over the same fields (id in the port's place): one hash function
  // for the whole data plane.
  const FlowKeyFor<Addr> k{.src_ip = key.src_ip, .dst_ip = key.dst_ip,
                           .src_port = static_cast<uint16_t>(key.id),
                           .dst_port = static_cast<uint16_t>(uint32_t{key.id} >> 16), .proto = key.proto};
  const auto b = static_cast<uint32_t>(hashFlowKey(k, kSeed)) & bucket_mask_;
  return &entries_[size_t{b} * kWays];
}

template <class Addr>
BasicFragmentEntry<Addr>* BasicFragmentTable<Addr>::find(const FragmentKey& key, uint32_t now_ms) noexcept {
  FragmentEntry* bucket = bucketOf(key);
  for (uint32_t w = 0; w < kWays; ++w) {
    FragmentEntry& e = bucket[w];
    if (e.used && e.key == key) return aged(e, now_ms) ? nullptr : &e;
  }
  return nullptr;
}

template <class Addr>
BasicFragmentEntry<Addr>* BasicFragmentTable<Addr>::insert(const FragmentKey& key, uint32_t now_ms) noexcept {
  FragmentEntry* bucket = bucketOf(key);
  FragmentEntry* slot = nullptr;
  for (uint32_t w = 0; w < kWays; ++w) {
    FragmentEntry& e = bucket[w];
    if (e.used && e.key == key) {
      slot = &e;  // the same datagram's first fragment again: start over
      break;
    }
    if (slot == nullptr && (!e.used || aged(e, now_ms))) slot = &e;
  }
  if (slot == nullptr) return nullptr;
  if (!slot->used) ++size_;
  *slot = FragmentEntry{.key = key, .created_ms = now_ms, .used = 1};
  return slot;
}

template <class Addr>
void BasicFragmentTable<Addr>::erase(FragmentEntry* entry) noexcept {
  if (entry == nullptr || !entry->used) return;
  *entry = FragmentEntry{};
  --size_;
}

template <class Addr>
uint32_t BasicFragmentTable<Addr>::sweep(uint32_t now_ms, uint32_t buckets) noexcept {
  if (buckets > bucket_count_) buckets = bucket_count_;
  uint32_t cleared = 0;
  for (uint32_t n = 0; n < buckets; ++n) {
    FragmentEntry* bucket = &entries_[size_t{sweep_cursor_} * kWays];
    sweep_cursor_ = (sweep_cursor_ + 1) & bucket_mask_;
    for (uint32_t w = 0; w < kWays; ++w) {
      if (bucket[w].used && aged(bucket[w], now_ms)) {
        erase(&bucket[w]);
        ++cleared;
      }
    }
  }
  return cleared;
}

template class BasicFragmentTable<uint32_t>;
template class BasicFragmentTable<Ip6>;

}  // namespace ng::lb
