#include "dataplane/lb/flow_table.h"

#include <algorithm>
#include <bit>
#include <cstring>
#include <cassert>
#include <stdexcept>
#include <type_traits>

#include "dataplane/lb/hash.h"
#include "dataplane/pkt/headers.h"

namespace ng::lb {
namespace {

constexpr uint32_t kMaxCapacity = uint32_t{1} << 28;
// Old-array slots moved per insert while the index grows. A doubling starts past 1/4
// load of the old array (S slots, S/4 keys) and must end before the new one (2S slots)
// passes 1/2 load, S keys: at 8 slots an insert the S slots are moved within S/8
// inserts, that is by S/2 keys at most.
constexpr uint32_t kGrowthStepSlots = 8;

}  // namespace


void trackTcpState(FlowState& state, uint8_t tcp_flags, bool from_client) noexcept {
  if (state == FlowState::kUdp) return;
  if (tcp_flags & (pkt::tcp::kFin | pkt::tcp::kRst)) {
    // Either side closing. The record lingers for the transitory timeout, which is the
    // SNAT port's quarantine while the node holds the connection in TIME_WAIT.
    state = FlowState::kTcpClosing;
    return;
  }
  const bool syn = tcp_flags & pkt::tcp::kSyn;
  const bool ack = tcp_flags & pkt::tcp::kAckFlag;
  if (from_client) {
    if (syn && !ack) {
      // A fresh SYN on a closing flow: the client reuses its port for a new connection.
      if (state == FlowState::kTcpClosing) state = FlowState::kTcpSynSent;
    } else if (ack && !syn && state == FlowState::kTcpSynSent) {
      // The client's ACK of the handshake (we may have missed the SYN-ACK's effect).
      state = FlowState::kTcpEstablished;
    }
  } else if (ack && state == FlowState::kTcpSynSent) {
    // SYN-ACK or data from the node. Not from kTcpClosing: the ACKs of a FIN exchange
    // must not revive a closing flow.
    state = FlowState::kTcpEstablished;
  }
}

uint32_t timeoutFor(FlowState state, const FlowTimeouts& t) noexcept {
  switch (state) {
    case FlowState::kTcpEstablished:
      return t.tcp_established_ms;
    case FlowState::kUdp:
      return t.udp_ms;
    case FlowState::kTcpSynSent:
      return t.tcp_half_open_ms;
    case FlowState::kTcpClosing:
      break;
  }
  return t.tcp_transitory_ms;
}

template <class Key>
BasicFlowTable<Key>::BasicFlowTable(uint32_t capacity, uint32_t initial_index_slots) : capacity_(capacity) {
  if (capacity == 0 || capacity > kMaxCapacity) {
    throw std::invalid_argument("flow table: capacity must be in [1, 2^28]");
  }
  // Two keys per record at a load factor of at most 1/2: >= 4 slots per record. Linear
  // probing stays short at 1/2 (about 1.5 probes per hit, 2.5 per miss).
  static_assert(sizeof(Slot) == 8);
  static_assert(std::is_trivially_destructible_v<Flow> && std::is_trivially_destructible_v<Slot> &&
                std::is_trivially_destructible_v<Link>);
  full_slots_ = std::bit_ceil(capacity * 4);
  const uint32_t first_slots = std::bit_ceil(std::min(std::max(initial_index_slots, uint32_t{8}), full_slots_));

  // Everything is written here, so no page is first touched on the hot path.
  records_ = HugeArray<Flow>(capacity);
  free_list_ = HugeArray<uint32_t>(capacity);
  live_ = HugeArray<uint8_t>(capacity);  // value-initialised: all 0
  auto emptySlots = [](uint32_t n) {
    HugeArray<Slot> slots(n);
    for (uint32_t i = 0; i < n; ++i) slots[i] = Slot{.tag = 0, .ref = kEmptyRef};
    return slots;
  };
  slot_store_[0] = emptySlots(full_slots_);
  // [1] holds the sizes full/2, full/8, ...: needed only when the index starts below full.
  if (first_slots < full_slots_) slot_store_[1] = emptySlots(full_slots_ / 2);
  index_ = indexOfSize(first_slots);
  // Pop order 0, 1, 2, ...: a young table keeps its records dense.
  for (uint32_t i = 0; i < capacity; ++i) free_list_[i] = capacity - 1 - i;
  free_top_ = capacity;
  half_open_links_ = HugeArray<Link>(capacity);
  for (uint32_t i = 0; i < capacity; ++i) half_open_links_[i] = Link{.prev = kUnlinked, .next = kNil};
  setHalfOpenLimit(capacity / 4);
}

template <class Key>
void BasicFlowTable<Key>::setHalfOpenLimit(uint32_t limit) noexcept {
  half_open_limit_ = limit == 0 ? 1 : (limit > capacity_ ? capacity_ : limit);
}

template <class Key>
void BasicFlowTable<Key>::linkHalfOpen(uint32_t idx) noexcept {
  Link& l = half_open_links_[idx];
  if (l.prev != kUnlinked) return;
  l.prev = half_open_tail_;
  l.next = kNil;
  if (half_open_tail_ == kNil) {
    half_open_head_ = idx;
  } else {
    half_open_links_[half_open_tail_].next = idx;
  }
  half_open_tail_ = idx;
  ++half_open_;
}

template <class Key>
void BasicFlowTable<Key>::unlinkHalfOpen(uint32_t idx) noexcept {
  Link& l = half_open_links_[idx];
  if (l.prev == kUnlinked) return;
  if (l.prev == kNil) {
    half_open_head_ = l.next;
  } else {
    half_open_links_[l.prev].next = l.next;
  }
  if (l.next == kNil) {
    half_open_tail_ = l.prev;
  } else {
    half_open_links_[l.next].prev = l.prev;
  }
  l = Link{.prev = kUnlinked, .next = kNil};
  --half_open_;
}

template <class Key>
void BasicFlowTable<Key>::stateChanged(Flow& flow, FlowState before) noexcept {
  if (&flow < records_.data() || &flow >= records_.data() + capacity_) return;
  const auto idx = static_cast<uint32_t>(&flow - records_.data());
  if (!live_[idx]) return;
  if (flow.state == FlowState::kTcpSynSent) {
    linkHalfOpen(idx);  // e.g. a closing flow whose client sent a fresh SYN
  } else if (before == FlowState::kTcpSynSent) {
    unlinkHalfOpen(idx);  // promoted (SYN-ACK / ACK) or closed (RST)
  }
}

template <class Key>
BasicFlowTable<Key>::~BasicFlowTable() = default;

template <class Key>
typename BasicFlowTable<Key>::Hit BasicFlowTable<Key>::lookup(const Key& key) noexcept { return lookup(key, hashOf(key)); }

template <class Key>
bool BasicFlowTable<Key>::contains(const Key& key) const noexcept {
  uint32_t empty;
  return find(key, hashOf(key), empty).flow != nullptr;
}

template <class Key>
BasicFlow<Key>* BasicFlowTable<Key>::insert(const Key& client, const Key& node, FlowState state,
                        uint32_t now_ms) noexcept {
  if (free_top_ == 0 || client == node || !reserveKeys(2)) return nullptr;

  // One walk per key: it finds the key (reject) or the first empty slot of its run,
  // which is where the key goes.
  const uint32_t client_tag = hashOf(client);
  const uint32_t node_tag = hashOf(node);
  uint32_t client_pos = kNotFound;  // written by find() when it returns kNotFound
  uint32_t node_pos = kNotFound;
  if (find(client, client_tag, client_pos).flow != nullptr || find(node, node_tag, node_pos).flow != nullptr) {
    return nullptr;
  }
  if (client_pos == kNotFound || node_pos == kNotFound) return nullptr;  // flooded
  if (node_pos == client_pos) {
    // Both runs end in the same empty slot and the client key takes it. The run up to
    // there holds neither key, so the node key goes to the next empty slot - if that is
    // still within its displacement bound. Load <= 1/2 guarantees another empty slot.
    uint32_t p = (node_pos + 1) & index_.mask;
    while (index_.slots[p].ref != kEmptyRef) p = (p + 1) & index_.mask;
    if (((p - node_tag) & index_.mask) > kMaxDisplacement) return nullptr;
    node_pos = p;
  }

  const uint32_t idx = free_list_[--free_top_];
  Flow& f = records_[idx];
  f = Flow{.client = client, .node = node, .last_seen_ms = now_ms, .state = state};
  live_[idx] = 1;
  ++size_;
  if (state == FlowState::kTcpSynSent) linkHalfOpen(idx);
  index_.slots[client_pos] = Slot{.tag = client_tag, .ref = idx << 1};
  index_.slots[node_pos] = Slot{.tag = node_tag, .ref = idx << 1 | 1};
  keys_ += 2;
  return &f;
}

template <class Key>
typename BasicFlowTable<Key>::Flow* BasicFlowTable<Key>::insertClientOnly(const Key& client, const Key& node,
                                                                          FlowState state, uint32_t now_ms) noexcept {
  if (free_top_ == 0 || !reserveKeys(1)) return nullptr;
  const uint32_t tag = hashOf(client);
  uint32_t pos = kNotFound;
  if (find(client, tag, pos).flow != nullptr || pos == kNotFound) return nullptr;
  const uint32_t idx = free_list_[--free_top_];
  Flow& f = records_[idx];
  f = Flow{.client = client, .node = node, .last_seen_ms = now_ms, .state = state, .flags = kFlowClientKeyOnly};
  live_[idx] = 1;
  ++size_;
  if (state == FlowState::kTcpSynSent) linkHalfOpen(idx);
  index_.slots[pos] = Slot{.tag = tag, .ref = idx << 1};
  ++keys_;
  return &f;
}

template <class Key>
void BasicFlowTable<Key>::eraseRef(const Key& key, uint32_t ref) noexcept {
  const uint32_t tag = hashOf(key);
  [[maybe_unused]] const bool erased =
      eraseIn</*kSkipMoved=*/false>(index_, 0, tag, ref) ||
      (old_.slots != nullptr && eraseIn</*kSkipMoved=*/true>(old_, moved_, tag, ref));
  assert(erased);
  --keys_;
}

template <class Key>
template <bool kSkipMoved>
bool BasicFlowTable<Key>::eraseIn(const Index& index, uint32_t moved, uint32_t tag, uint32_t ref) noexcept {
  // The walk of findIn, for the entry itself rather than its key.
  uint32_t pos = tag & index.mask;
  for (uint32_t d = 0;; ++d, pos = (pos + 1) & index.mask) {
    if constexpr (kSkipMoved) stepOverMoved(pos, d, moved);
    if (d > kMaxDisplacement || index.slots[pos].ref == kEmptyRef) return false;
    if (index.slots[pos].ref == ref) break;
  }
  // Backward-shift deletion (no tombstones, so lookups never slow down with churn): pull
  // later entries of the run into the hole when that keeps them reachable from home,
  // i.e. when their home is not cyclically within (hole, j]. `gap` is j - hole: past
  // kMaxDisplacement no entry can have its home at or before the hole, so the scan ends
  // there at the latest. Moved-out slots of an old array count as occupied by entries
  // that stay put, as in findIn (so an old array can look full: the gap bound, and one
  // lap at most, end the scan then).
  uint32_t hole = pos;
  uint32_t j = pos;
  for (uint32_t gap = 1; gap <= kMaxDisplacement && gap <= index.mask; ++gap) {
    j = (j + 1) & index.mask;
    if constexpr (kSkipMoved) {
      stepOverMoved(j, gap, moved);
      if (gap > kMaxDisplacement || gap > index.mask) break;
    }
    const Slot s = index.slots[j];
    if (s.ref == kEmptyRef) break;
    if (((j - (s.tag & index.mask)) & index.mask) >= gap) {
      index.slots[hole] = s;
      hole = j;
      gap = 0;
    }
  }
  index.slots[hole] = Slot{.tag = 0, .ref = kEmptyRef};
  return true;
}

template <class Key>
typename BasicFlowTable<Key>::Index BasicFlowTable<Key>::indexOfSize(uint32_t slots) noexcept {
  // Sizes full, full/2, full/4, ... alternate between the two stores.
  const int store = (std::countr_zero(full_slots_) - std::countr_zero(slots)) & 1;
  return Index{.slots = slot_store_[store].data(), .mask = slots - 1};
}

template <class Key>
bool BasicFlowTable<Key>::reserveKeys(uint32_t keys) noexcept {
  if (old_.slots != nullptr) migrate(kGrowthStepSlots);
  // Doubles past 1/4 load, so the array in use runs at 1/8 to 1/4 (a hit costs ~1.2
  // probes, a miss ~1.4) until the full size, which holds up to 1/2 at full capacity.
  const uint32_t slots = index_.mask + 1;
  if (keys_ + keys > slots / 4 && old_.slots == nullptr && slots < full_slots_) {
    old_ = index_;
    moved_ = 0;
    index_ = indexOfSize(slots * 2);
    migrate(kGrowthStepSlots);
  }
  // 1/2 is the bound linear probing needs (insert relies on it). At full size the
  // records run out first (2 keys and 4 slots a record); below it only a growth held up
  // by crafted collisions (migrate()) can reach it.
  return keys_ + keys <= (index_.mask + 1) / 2;
}

template <class Key>
void BasicFlowTable<Key>::migrate(uint32_t budget) noexcept {
  for (; budget > 0 && old_.slots != nullptr; --budget) {
    Slot& s = old_.slots[moved_];
    if (s.ref != kEmptyRef) {
      // Not in index_ (keys are unique), so its place is the first empty slot from home.
      uint32_t pos = s.tag & index_.mask;
      uint32_t d = 0;
      while (index_.slots[pos].ref != kEmptyRef && d <= kMaxDisplacement) {
        pos = (pos + 1) & index_.mask;
        ++d;
      }
      if (d > kMaxDisplacement) return;  // crowded by crafted keys: wait here (see header)
      index_.slots[pos] = s;
      s = Slot{.tag = 0, .ref = kEmptyRef};
    }
    if (moved_++ == old_.mask) old_ = Index{};  // every old slot moved: the growth is done
  }
}

template <class Key>
void BasicFlowTable<Key>::erase(Flow* flow) noexcept {
  if (flow < records_.data() || flow >= records_.data() + capacity_) return;
  const auto idx = static_cast<uint32_t>(flow - records_.data());
  if (!live_[idx]) return;
  eraseRef(flow->client, idx << 1);
  if (!(flow->flags & kFlowClientKeyOnly)) eraseRef(flow->node, idx << 1 | 1);
  unlinkHalfOpen(idx);
  live_[idx] = 0;
  free_list_[free_top_++] = idx;
  --size_;
}

template <class Key>
uint32_t BasicFlowTable<Key>::expire(uint32_t now_ms, uint32_t budget, const FlowTimeouts& timeouts,
                           ExpiryObserver* observer) noexcept {
  migrate(budget);
  // Never more than one lap per call, whatever the budget.
  if (budget > capacity_) budget = capacity_;
  uint32_t removed = 0;
  for (uint32_t n = 0; n < budget; ++n) {
    const uint32_t i = expire_cursor_;
    expire_cursor_ = i + 1 == capacity_ ? 0 : i + 1;
    if (!live_[i]) continue;
    Flow& f = records_[i];
    // Unsigned subtraction is the age modulo 2^32, correct across a wrap of now_ms.
    if (now_ms - f.last_seen_ms > timeoutFor(f.state, timeouts)) {
      if (observer != nullptr) observer->onExpired(f);
      erase(&f);
      ++removed;
    }
  }
  return removed;
}

template <class Key>
size_t BasicFlowTable<Key>::bytesPerFlow() const noexcept {
  const size_t bytes = size_t{capacity_} * (sizeof(Flow) + sizeof(uint32_t) + sizeof(uint8_t) + sizeof(Link)) +
                       (slot_store_[0].size() + slot_store_[1].size()) * sizeof(Slot);
  return bytes / capacity_;
}

template class BasicFlowTable<FlowKey>;
template class BasicFlowTable<FlowKey6>;

}  // namespace ng::lb
