#pragma once
// Per-worker connection table. Owned by exactly one worker lcore; no locking, no
// allocation after construction, no exceptions on the lookup/insert/expire paths.
//
// Each flow is one record reachable by two keys: the client key (client -> VIP:port,
// as received on the external port) and the node key (node:nodePort -> SNAT addr:port,
// as the reply is received on the internal port). Records hold the backend itself
// (in the node key), never an index into a snapshot, so an established flow keeps its
// node when the forwarding tables change.
//
// One template over the key type: FlowTable (IPv4 FlowKey, 48-byte records) and
// FlowTable6 (IPv6 FlowKey6, 96-byte records) are separate instances with separate
// capacities, so an IPv4 entry does not pay for IPv6's 16-byte addresses
// (docs/BENCHMARKS.md has the bytes per flow of both).

#include <cstddef>
#include <cstdint>
#include <memory>

#include "dataplane/lb/flow_key.h"
#include "dataplane/lb/hash.h"
#include "dataplane/lb/huge_array.h"
#include "dataplane/pkt/checksum.h"
#include "dataplane/pkt/headers.h"

namespace ng::lb {

enum class FlowState : uint8_t {
  kTcpSynSent,      // SYN seen from the client, nothing back yet          (half-open)
  kTcpEstablished,  // data or SYN-ACK seen from the node                  (established)
  kTcpClosing,      // FIN or RST seen in either direction; also holds the SNAT
                    // port in quarantine while the node sits in TIME_WAIT  (transitory)
  kUdp,             //                                                      (udp)
};

struct FlowTimeouts {
  uint32_t tcp_established_ms = 900'000;
  uint32_t tcp_transitory_ms = 60'000;  // kTcpClosing (the SNAT port's quarantine)
  uint32_t udp_ms = 120'000;
  // kTcpSynSent: short, so a SYN flood's entries leave quickly; long enough to cover the
  // client's first SYN retransmissions (1 s, 3 s, 7 s after the first on Linux).
  uint32_t tcp_half_open_ms = 10'000;
};

template <class Key>
struct BasicFlow {
  Key client;              // as received from the client
  Key node;                // as the node's reply is received: node:nodePort -> snat:port
  uint32_t last_seen_ms = 0;
  // Which per-worker backend counters this flow's packets count toward (the snapshot's
  // Backend::stats_id at creation; 0 = unattributed). Stored, like the node itself, so a
  // flow keeps counting to its backend after the tables change.
  uint32_t stats_id = 0;
  FlowState state = FlowState::kTcpSynSent;
  uint8_t flags = 0;  // kFlowHoldsAffinity
  // An IPv4 full-NAT flow's checksum change client -> node (the reply's is its
  // negation), computed when the flow is created, so a frame of the flow applies it
  // without deriving it (fwd/processor.cc existingFullNat). Zero elsewhere.
  pkt::NatDelta nat{};
};
using Flow = BasicFlow<FlowKey>;
using Flow6 = BasicFlow<FlowKey6>;

// Flow::flags: the flow was counted in the worker's AffinityTable entry of its client key
// (sessionAffinity ClientIP) and must be released from it when it ends.
inline constexpr uint8_t kFlowHoldsAffinity = 0x01;
// Flow::flags, set by insertClientOnly(): the record is reachable by its client key only;
// `node` holds the backend but is not indexed (no reply comes back through the box).
inline constexpr uint8_t kFlowClientKeyOnly = 0x02;
// Flow::flags: a tunnel-mode flow (fwd/processor.cc): its packets leave IPIP-encapsulated
// to node.src_ip; always together with kFlowClientKeyOnly.
inline constexpr uint8_t kFlowTunnel = 0x04;

// Told about every flow that expire() removes, before its record can be reused.
template <class Key>
class BasicExpiryObserver {
 public:
  virtual void onExpired(const BasicFlow<Key>& flow) noexcept = 0;

 protected:
  ~BasicExpiryObserver() = default;
};
using ExpiryObserver = BasicExpiryObserver<FlowKey>;
using ExpiryObserver6 = BasicExpiryObserver<FlowKey6>;

// TCP tracking: updates `flow.state` for a segment with `tcp_flags` (wire bits: FIN=0x01,
// SYN=0x02, RST=0x04, ACK=0x10) seen from the client (from_client) or from the node.
void trackTcpState(FlowState& state, uint8_t tcp_flags, bool from_client) noexcept;
template <class Key>
void trackTcp(BasicFlow<Key>& flow, uint8_t tcp_flags, bool from_client) noexcept {
  trackTcpState(flow.state, tcp_flags, from_client);
}

[[nodiscard]] uint32_t timeoutFor(FlowState state, const FlowTimeouts& t) noexcept;

template <class Key>
class BasicFlowTable {
 public:
  using Flow = BasicFlow<Key>;
  using ExpiryObserver = BasicExpiryObserver<Key>;

  // Allocates everything up front: `capacity` flow records and the index's memory for a
  // load factor of at most 1/2 over both keys at full capacity. Throws std::bad_alloc /
  // invalid_argument (capacity 0 or > 2^28) at construction only.
  //
  // The index in use starts at `initial_index_slots` (rounded up to a power of two, at
  // least 8, at most the full size) and doubles as keys arrive, so that its size follows
  // the flows actually held: a lookup touches as many pages as the live flows need, not
  // as the configured capacity reserves (a 1M-flow index is 32 MiB, and with a few
  // thousand flows each slot it visits would sit in a page of its own: a TLB miss per
  // packet). A doubling moves the old array's entries a few at a time, on inserts and on
  // expire(), so no call ever stops to rehash the table (see migrate()).
  static constexpr uint32_t kDefaultInitialIndexSlots = 4096;
  explicit BasicFlowTable(uint32_t capacity, uint32_t initial_index_slots = kDefaultInitialIndexSlots);

  // Bound on any index probe: lookups and inserts never walk more than
  // kMaxDisplacement + 1 slots, whatever keys an attacker sends.
  static constexpr uint32_t kMaxDisplacement = 128;
  // Seed of hashFlowIndex() (a different function and seed from Maglev's hashFlowKey,
  // so slot choice and index position are uncorrelated). Public so tests can craft
  // collisions.
  static constexpr uint64_t kIndexSeed = 0x666c6f772d696478;  // "flow-idx"

  ~BasicFlowTable();
  BasicFlowTable(const BasicFlowTable&) = delete;
  BasicFlowTable& operator=(const BasicFlowTable&) = delete;

  struct Hit {
    Flow* flow = nullptr;    // nullptr: no flow for this key
    bool by_node_key = false;  // true when the key matched the node (reply) key
  };
  [[nodiscard]] Hit lookup(const Key& key) noexcept;

  // Burst helpers (DPDK l3fwd / rte_hash bulk-lookup style): hash every key of a burst,
  // prefetch their index slots, then look up with the known hash, so the slots' cache
  // misses of a burst overlap instead of adding up.
  // Inline, so a key built from parsed fields is hashed from registers: called out of
  // line, the compiler merged the field loads into 8-byte loads over the fresh 4-byte
  // stores, a store-forwarding stall per packet.
  template <class Probe = Key>
  [[nodiscard]] static uint32_t hashOf(const Probe& key) noexcept {
    return static_cast<uint32_t>(hashFlowIndex(key, kIndexSeed));
  }
  // Always inline: out of line, GCC counts a function that only prefetches as free of
  // side effects and deletes its calls (it did so to a record prefetch here once).
  [[gnu::always_inline]] void prefetchSlot(uint32_t hash) const noexcept {
    __builtin_prefetch(&index_.slots[hash & index_.mask]);
  }
  // `hash` must be hashOf(key). Inline: the per-packet lookup of an established flow.
  template <class Probe = Key>
  [[nodiscard]] Hit lookup(const Probe& key, uint32_t hash) noexcept {
    uint32_t empty;
    const Found found = find(key, hash, empty);
    return {.flow = const_cast<Flow*>(found.flow), .by_node_key = found.by_node_key};
  }
  // The same in the index array in use only: while indexGrowing(), a key still in the
  // old array is missed, and a caller that sees no flow must ask lookup() before it
  // takes the key for a new one. For the burst loop: with the fallback to the old array
  // inlined, the compiler kept the key on the stack for it and the loop took 12 more
  // instructions a packet (docs/BENCHMARKS.md).
  template <class Probe = Key>
  [[nodiscard]] Hit lookupInCurrentIndex(const Probe& key, uint32_t hash) noexcept {
    uint32_t empty;
    const Found found = findIn</*kSkipMoved=*/false>(index_.slots, index_.mask, 0, key, hash, empty);
    return {.flow = const_cast<Flow*>(found.flow), .by_node_key = found.by_node_key};
  }
  [[nodiscard]] bool contains(const Key& key) const noexcept;

  // Inserts a flow under both keys. Returns nullptr (and changes nothing in the flows)
  // when the table is full, either key is already present, or a key would sit more than
  // kMaxDisplacement slots from its home in the index (crafted hash collisions; with
  // honest traffic the longest displacement at 4M flows is about 40). Every insert also
  // takes a step of the index's growth when one is under way, and may start one.
  [[nodiscard]] Flow* insert(const Key& client, const Key& node, FlowState state,
                             uint32_t now_ms) noexcept;
  // Same for a flow whose replies bypass the box (tunnel mode, DSR): indexed under its
  // client key only, `node` stored as given (not a key: any value, even one another
  // flow uses), flags = kFlowClientKeyOnly. nullptr when the table is full, the client
  // key is present, or it would sit more than kMaxDisplacement slots from home.
  [[nodiscard]] Flow* insertClientOnly(const Key& client, const Key& node, FlowState state,
                                       uint32_t now_ms) noexcept;
  void erase(Flow* flow) noexcept;

  // --- Half-open (kTcpSynSent) accounting: SYN-flood resistance -------------------------
  // Every record in kTcpSynSent is on a FIFO list in creation order, so the table always
  // knows how many half-open flows it holds and which is the oldest. The list links live
  // in their own array: established lookups never touch them.
  //
  // State changes of a live record must go through track() so the list
  // follows the state; writing flow.state directly is only for records outside a table.
  //
  // TCP tracking of a live record (trackTcp + list upkeep). Inline: the established path
  // pays one compare.
  void track(Flow& flow, uint8_t tcp_flags, bool from_client) noexcept {
    // An established flow's segments without SYN, FIN or RST change nothing: the
    // common case, decided here without a call.
    constexpr uint8_t kStateFlags = pkt::tcp::kFin | pkt::tcp::kSyn | pkt::tcp::kRst;
    if (flow.state == FlowState::kTcpEstablished && (tcp_flags & kStateFlags) == 0) return;
    const FlowState before = flow.state;
    trackTcp(flow, tcp_flags, from_client);
    if (flow.state != before) [[unlikely]] stateChanged(flow, before);
  }
  // Half-open records in the table now (<= size()).
  [[nodiscard]] uint32_t halfOpen() const noexcept { return half_open_; }
  // How many half-open records the owner allows (the policy lives with the caller, see
  // fwd/processor.cc); default capacity / 4, at least 1. Clamped to [1, capacity].
  void setHalfOpenLimit(uint32_t limit) noexcept;
  [[nodiscard]] uint32_t halfOpenLimit() const noexcept { return half_open_limit_; }
  // True when a new half-open flow needs room first: the half-open budget is used up or
  // the table is full.
  [[nodiscard]] bool halfOpenFull() const noexcept {
    return half_open_ >= half_open_limit_ || free_top_ == 0;
  }
  // The half-open record created longest ago, or nullptr when there is none.
  [[nodiscard]] Flow* oldestHalfOpen() noexcept {
    return half_open_head_ == kNil ? nullptr : &records_[half_open_head_];
  }

  // Incremental expiry: examines at most `budget` record slots from a rotating cursor
  // and removes flows idle for longer than their state's timeout (wrap-safe uint32 ms
  // arithmetic). Returns the number of flows removed; `observer`, when given, sees each.
  // Also moves up to `budget` slots of a growing index, so a growth finishes even when
  // no new flow comes.
  uint32_t expire(uint32_t now_ms, uint32_t budget, const FlowTimeouts& timeouts,
                  ExpiryObserver* observer = nullptr) noexcept;

  [[nodiscard]] uint32_t size() const noexcept { return size_; }
  [[nodiscard]] uint32_t capacity() const noexcept { return capacity_; }
  // Slots of the index array inserts go to now (a power of two; the full size is
  // 4 x capacity rounded up), and whether a doubling is still moving entries out of
  // the previous array.
  [[nodiscard]] uint32_t indexSlots() const noexcept { return index_.mask + 1; }
  [[nodiscard]] bool indexGrowing() const noexcept { return old_.slots != nullptr; }
  // Memory held by the table divided by capacity: the "bytes per flow" benchmark figure.
  [[nodiscard]] size_t bytesPerFlow() const noexcept;

 private:
  // Implementation: open addressing with linear probing and backward-shift deletion
  // (no tombstones), index slots hold a hash tag and record index; records come from a
  // free list.
  // One index entry. `tag` is the low 32 bits of the key's hash; its low bits are also
  // the home position (slot count <= 2^30), so backward-shift deletion and growth find
  // every entry's home without touching the records. The bits above the mask filter out
  // most non-matching entries before the record's key is compared. `ref` = record
  // index << 1 | is_node_key, or kEmptyRef.
  struct Slot {
    uint32_t tag;
    uint32_t ref;
  };
  static constexpr uint32_t kEmptyRef = ~uint32_t{0};
  static constexpr uint32_t kNotFound = ~uint32_t{0};
  // One array of mask + 1 slots.
  struct Index {
    Slot* slots = nullptr;
    uint32_t mask = 0;
  };

  // The record `key` reaches and whether it is that record's node key; flow = nullptr
  // when absent, and then `empty` is the first empty slot of its run in index_ within
  // kMaxDisplacement of home, or kNotFound when there is none.
  // No entry sits further than kMaxDisplacement from its home (insert and growth refuse,
  // deletion only shifts entries closer), so the walk is bounded even under hash
  // flooding: a crafted cluster costs at most kMaxDisplacement + 1 probes, never a stall.
  struct Found {
    const Flow* flow;
    bool by_node_key;
  };
  template <class Probe = Key>
  Found find(const Probe& key, uint32_t tag, uint32_t& empty) const noexcept {
    const Found found = findIn</*kSkipMoved=*/false>(index_.slots, index_.mask, 0, key, tag, empty);
    if (found.flow != nullptr || old_.slots == nullptr) [[likely]] return found;
    return findInOld(key, tag);
  }
  // Out of line: the hot path that inlines find() keeps only the test for a growth.
  template <class Probe>
  [[gnu::noinline]] Found findInOld(const Probe& key, uint32_t tag) const noexcept {
    uint32_t unused;
    return findIn</*kSkipMoved=*/true>(old_.slots, old_.mask, moved_, key, tag, unused);
  }
  // In the old array of a growth, slots [0, moved) have been emptied by migrate() and
  // stand for the entries that were there: a walk steps over them as over occupied slots,
  // so an entry whose run crossed them is still reached. Moves `pos` past them and adds
  // them to `distance` (slots walked).
  static void stepOverMoved(uint32_t& pos, uint32_t& distance, uint32_t moved) noexcept {
    if (pos < moved) {
      distance += moved - pos;
      pos = moved;
    }
  }
  // One array's walk; kSkipMoved in a growth's old array (stepOverMoved).
  template <bool kSkipMoved, class Probe>
  Found findIn(const Slot* slots, uint32_t mask, uint32_t moved, const Probe& key, uint32_t tag,
               uint32_t& empty) const noexcept {
    uint32_t pos = tag & mask;
    for (uint32_t d = 0; d <= kMaxDisplacement; ++d, pos = (pos + 1) & mask) {
      if constexpr (kSkipMoved) {
        stepOverMoved(pos, d, moved);
        if (d > kMaxDisplacement) break;
      }
      const Slot s = slots[pos];
      if (s.ref == kEmptyRef) {
        empty = pos;
        return {nullptr, false};
      }
      if (s.tag != tag) continue;
      const Flow& f = records_[s.ref >> 1];
      const bool by_node_key = (s.ref & 1) != 0;
      if (sameKey(by_node_key ? f.node : f.client, key)) return {&f, by_node_key};
    }
    empty = kNotFound;  // neighbourhood saturated
    return {nullptr, false};
  }
  // Removes the index entry `ref` (record index << 1 | is_node_key) reached by `key`.
  void eraseRef(const Key& key, uint32_t ref) noexcept;
  template <bool kSkipMoved>
  bool eraseIn(const Index& index, uint32_t moved, uint32_t tag, uint32_t ref) noexcept;
  // Makes room in the index for `keys` more entries: takes a growth step, and starts a
  // doubling when the array in use would pass a load of 1/4. False when the array would
  // pass 1/2 (a growth held up by crafted collisions, see migrate()).
  bool reserveKeys(uint32_t keys) noexcept;
  // The array for an index of `slots` slots (a power of two <= full_slots_) in its store.
  Index indexOfSize(uint32_t slots) noexcept;
  // Moves up to `budget` slots of the old array into index_, in slot order; ends the
  // growth when the last one is done. An entry that would sit further than
  // kMaxDisplacement from its home in index_ (only crafted keys crowd it so) stays where
  // it is, and the growth waits there until expiry or erasure makes room: nothing is
  // lost, lookups keep walking both arrays meanwhile.
  void migrate(uint32_t budget) noexcept;
  void stateChanged(Flow& flow, FlowState before) noexcept;
  void linkHalfOpen(uint32_t idx) noexcept;    // append at the tail (newest)
  void unlinkHalfOpen(uint32_t idx) noexcept;  // no-op when not linked

  // Doubly linked FIFO of half-open records, by record index. prev == kUnlinked marks a
  // record that is not on the list.
  struct Link {
    uint32_t prev;
    uint32_t next;
  };
  static constexpr uint32_t kNil = ~uint32_t{0};
  static constexpr uint32_t kUnlinked = ~uint32_t{0} - 1;
  uint32_t capacity_ = 0;
  uint32_t size_ = 0;
  HugeArray<Flow> records_;
  HugeArray<uint32_t> free_list_;
  uint32_t free_top_ = 0;
  HugeArray<uint8_t> live_;  // 1 when records_[i] is in use
  // The index's memory: every power-of-two size from the initial one up to the full
  // size (4 x capacity rounded up) lives in one of the two, alternately - the full size
  // in [0], half of it in [1], a quarter in [0] and so on - so the two arrays of a
  // doubling never share memory. Slots outside the arrays in use are always empty
  // (growth leaves the old array empty), so a doubling starts without clearing anything.
  HugeArray<Slot> slot_store_[2];
  uint32_t full_slots_ = 0;
  Index index_;         // inserts go here; lookups look here first
  Index old_;           // growing: the previous array, its slots [0, moved_) moved out
  uint32_t moved_ = 0;
  uint32_t keys_ = 0;   // entries in index_ and old_ together
  uint32_t expire_cursor_ = 0;
  HugeArray<Link> half_open_links_;
  uint32_t half_open_head_ = kNil;
  uint32_t half_open_tail_ = kNil;
  uint32_t half_open_ = 0;
  uint32_t half_open_limit_ = 1;
};

using FlowTable = BasicFlowTable<FlowKey>;
using FlowTable6 = BasicFlowTable<FlowKey6>;
extern template class BasicFlowTable<FlowKey>;
extern template class BasicFlowTable<FlowKey6>;

}  // namespace ng::lb
