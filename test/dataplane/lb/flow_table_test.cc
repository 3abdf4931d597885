#include "dataplane/lb/flow_table.h"

#include "dataplane/pkt/headers.h"

#include <gtest/gtest.h>

#include <random>
#include <stdexcept>
#include <unordered_map>
#include <vector>

#include "dataplane/lb/hash.h"

template <>
struct std::hash<ng::lb::FlowKey> {
  size_t operator()(const ng::lb::FlowKey& k) const noexcept { return ng::lb::hashFlowKey(k, 99); }
};

namespace ng::lb {
namespace {

constexpr uint8_t kFin = pkt::tcp::kFin;
constexpr uint8_t kSyn = pkt::tcp::kSyn;
constexpr uint8_t kRst = pkt::tcp::kRst;
constexpr uint8_t kAck = pkt::tcp::kAckFlag;

FlowKey clientKey(uint32_t i) {
  return {.src_ip = 0xc6336400 + i, .dst_ip = 0xcb007101, .src_port = static_cast<uint16_t>(i),
          .dst_port = 443, .proto = 6};
}
FlowKey nodeKey(uint32_t i) {
  return {.src_ip = 0x0a000005, .dst_ip = 0x0a0000fe, .src_port = 30443,
          .dst_port = static_cast<uint16_t>(i), .proto = 6};
}

TEST(FlowTableTest, ConstructionLimits) {
  EXPECT_THROW(FlowTable(0), std::invalid_argument);
  EXPECT_THROW(FlowTable((1u << 28) + 1), std::invalid_argument);
  FlowTable t(1);
  EXPECT_EQ(t.capacity(), 1u);
  EXPECT_EQ(t.size(), 0u);
}

TEST(FlowTableTest, InsertAndLookupByBothKeys) {
  FlowTable t(16);
  Flow* f = t.insert(clientKey(1), nodeKey(1), FlowState::kTcpSynSent, 100);
  ASSERT_NE(f, nullptr);
  EXPECT_EQ(f->client, clientKey(1));
  EXPECT_EQ(f->node, nodeKey(1));
  EXPECT_EQ(f->last_seen_ms, 100u);
  EXPECT_EQ(f->state, FlowState::kTcpSynSent);
  EXPECT_EQ(t.size(), 1u);

  const auto by_client = t.lookup(clientKey(1));
  EXPECT_EQ(by_client.flow, f);
  EXPECT_FALSE(by_client.by_node_key);
  const auto by_node = t.lookup(nodeKey(1));
  EXPECT_EQ(by_node.flow, f);
  EXPECT_TRUE(by_node.by_node_key);
  EXPECT_TRUE(t.contains(clientKey(1)));
  EXPECT_TRUE(t.contains(nodeKey(1)));

  EXPECT_EQ(t.lookup(clientKey(2)).flow, nullptr);
  EXPECT_FALSE(t.contains(nodeKey(2)));
  // A key with the protocol changed is another flow.
  FlowKey udp = clientKey(1);
  udp.proto = 17;
  EXPECT_FALSE(t.contains(udp));
}

TEST(FlowTableTest, DuplicateKeysRejected) {
  FlowTable t(16);
  ASSERT_NE(t.insert(clientKey(1), nodeKey(1), FlowState::kTcpSynSent, 0), nullptr);
  EXPECT_EQ(t.insert(clientKey(1), nodeKey(2), FlowState::kTcpSynSent, 0), nullptr);
  EXPECT_EQ(t.insert(clientKey(2), nodeKey(1), FlowState::kTcpSynSent, 0), nullptr);
  // A key is unique across both roles.
  EXPECT_EQ(t.insert(nodeKey(1), nodeKey(3), FlowState::kTcpSynSent, 0), nullptr);
  EXPECT_EQ(t.insert(clientKey(3), clientKey(1), FlowState::kTcpSynSent, 0), nullptr);
  // Both keys of one flow equal.
  EXPECT_EQ(t.insert(clientKey(4), clientKey(4), FlowState::kTcpSynSent, 0), nullptr);
  EXPECT_EQ(t.size(), 1u);
  EXPECT_FALSE(t.contains(nodeKey(2)));
  EXPECT_FALSE(t.contains(clientKey(2)));
  EXPECT_FALSE(t.contains(clientKey(4)));
}

TEST(FlowTableTest, FullTableRejects) {
  FlowTable t(8);
  for (uint32_t i = 0; i < 8; ++i) {
    ASSERT_NE(t.insert(clientKey(i), nodeKey(i), FlowState::kUdp, 0), nullptr) << i;
  }
  EXPECT_EQ(t.size(), 8u);
  EXPECT_EQ(t.insert(clientKey(8), nodeKey(8), FlowState::kUdp, 0), nullptr);
  EXPECT_FALSE(t.contains(clientKey(8)));
  for (uint32_t i = 0; i < 8; ++i) EXPECT_TRUE(t.contains(nodeKey(i)));
}

TEST(FlowTableTest, EraseAndReinsert) {
  FlowTable t(4);
  Flow* a = t.insert(clientKey(1), nodeKey(1), FlowState::kUdp, 0);
  Flow* b = t.insert(clientKey(2), nodeKey(2), FlowState::kUdp, 0);
  ASSERT_NE(a, nullptr);
  ASSERT_NE(b, nullptr);
  t.erase(a);
  EXPECT_EQ(t.size(), 1u);
  EXPECT_FALSE(t.contains(clientKey(1)));
  EXPECT_FALSE(t.contains(nodeKey(1)));
  EXPECT_EQ(t.lookup(nodeKey(2)).flow, b);
  t.erase(a);  // already erased: no effect
  EXPECT_EQ(t.size(), 1u);
  Flow outside;
  t.erase(&outside);  // not ours: no effect
  EXPECT_EQ(t.size(), 1u);

  Flow* c = t.insert(clientKey(1), nodeKey(1), FlowState::kTcpSynSent, 5);
  ASSERT_NE(c, nullptr);
  EXPECT_EQ(c, a);  // the record is recycled
  EXPECT_EQ(t.lookup(clientKey(1)).flow, c);
  EXPECT_EQ(c->state, FlowState::kTcpSynSent);
  EXPECT_EQ(c->last_seen_ms, 5u);
}

// Hash flooding: keys crafted to share one home slot. The index refuses keys that would
// sit more than kMaxDisplacement from home, so probes stay bounded; other flows are
// still accepted and every accepted key is still found.
TEST(FlowTableTest, CollidingKeysAreBounded) {
  constexpr uint32_t kCapacity = 1024;  // 4096 index slots
  constexpr uint32_t kMask = 4 * kCapacity - 1;
  std::vector<FlowKey> colliding;
  for (uint32_t i = 0; colliding.size() < 2 * FlowTable::kMaxDisplacement + 10; ++i) {
    const FlowKey k = clientKey(i);
    if ((FlowTable::hashOf(k) & kMask) == 100) colliding.push_back(k);
  }
  FlowTable t(kCapacity);
  uint32_t accepted = 0;
  for (size_t i = 0; i + 1 < colliding.size(); i += 2) {
    if (t.insert(colliding[i], colliding[i + 1], FlowState::kTcpSynSent, 0) != nullptr) {
      ++accepted;
    }
  }
  // Displacements 0..127 hold 64 flows; the 65th flow's node key would need 129.
  EXPECT_EQ(accepted, (FlowTable::kMaxDisplacement) / 2);
  for (uint32_t i = 0; i < 2 * accepted; ++i) {
    const auto hit = t.lookup(colliding[i]);
    ASSERT_NE(hit.flow, nullptr) << i;
    EXPECT_EQ(hit.by_node_key, i % 2 == 1);
  }
  EXPECT_FALSE(t.contains(colliding[2 * accepted]));
  // Honest flows are unaffected.
  EXPECT_NE(t.insert(nodeKey(1), nodeKey(2), FlowState::kUdp, 0), nullptr);
  // Removing a colliding flow makes room for one more.
  t.erase(t.lookup(colliding[0]).flow);
  EXPECT_NE(t.insert(colliding[2 * accepted], colliding[2 * accepted + 1],
                     FlowState::kTcpSynSent, 0),
            nullptr);
  for (uint32_t i = 2; i < 2 * accepted + 2; ++i) ASSERT_TRUE(t.contains(colliding[i])) << i;
}

// Randomised (seeded) differential test against std::unordered_map. A small key space
// makes duplicates, collisions in the index, full-table rejects and long backward shifts
// common; capacity 16 (64 index slots) also exercises wrap-around of probe runs.
void runModel(uint32_t capacity, uint32_t key_space, uint32_t seed,
              uint32_t initial_index_slots = FlowTable::kDefaultInitialIndexSlots) {
  FlowTable t(capacity, initial_index_slots);
  struct Entry {
    Flow* flow;
    bool by_node;
  };
  std::unordered_map<FlowKey, Entry> model;
  std::vector<Flow*> live;
  std::mt19937 rng(seed);
  auto key = [&](uint32_t r) {
    // One key space for both roles: a client key of one insert can come up as the node
    // key of another, which must be rejected like any duplicate.
    return r % 2 ? clientKey(r) : nodeKey(r);
  };
  for (int op = 0; op < 100'000; ++op) {
    const uint32_t kind = rng() % 10;
    if (kind < 4) {
      const FlowKey c = key(rng() % key_space);
      const FlowKey n = key(rng() % key_space);
      const bool expect_ok = !(c == n) && !model.contains(c) && !model.contains(n) &&
                             live.size() < capacity;
      Flow* f = t.insert(c, n, FlowState::kUdp, static_cast<uint32_t>(op));
      ASSERT_EQ(f != nullptr, expect_ok) << "op " << op;
      if (f != nullptr) {
        model[c] = {f, false};
        model[n] = {f, true};
        live.push_back(f);
      }
    } else if (kind < 7) {
      if (live.empty()) continue;
      const size_t i = rng() % live.size();
      Flow* f = live[i];
      model.erase(f->client);
      model.erase(f->node);
      t.erase(f);
      live[i] = live.back();
      live.pop_back();
    } else {
      const FlowKey k = key(rng() % key_space);
      const auto hit = t.lookup(k);
      const auto it = model.find(k);
      ASSERT_EQ(hit.flow != nullptr, it != model.end()) << "op " << op;
      ASSERT_EQ(t.contains(k), it != model.end()) << "op " << op;
      if (it != model.end()) {
        ASSERT_EQ(hit.flow, it->second.flow) << "op " << op;
        ASSERT_EQ(hit.by_node_key, it->second.by_node) << "op " << op;
      }
    }
    ASSERT_EQ(t.size(), live.size());
  }
  // Final sweep: every key of the key space agrees.
  for (uint32_t r = 0; r < key_space; ++r) {
    const auto it = model.find(key(r));
    const auto hit = t.lookup(key(r));
    ASSERT_EQ(hit.flow != nullptr, it != model.end());
    if (it != model.end()) {
      ASSERT_EQ(hit.flow, it->second.flow);
    }
  }
}

TEST(FlowTableTest, MatchesModelSmallTable) { runModel(16, 64, 1); }
TEST(FlowTableTest, MatchesModelLargerTable) { runModel(2000, 6000, 2); }
// From an 8-slot index: doublings (8 -> 8192 slots) under way during inserts, erases
// (backward shifts in the old array across its moved-out slots) and lookups of both arrays.
TEST(FlowTableTest, MatchesModelWhileGrowing) { runModel(2000, 6000, 3, 8); }
TEST(FlowTableTest, MatchesModelWhileGrowingSmallTable) { runModel(16, 64, 4, 8); }

// The index in use follows the keys held: it starts small, doubles past 1/4 load, keeps
// every key reachable while entries move, and stops at the full size.
TEST(FlowTableTest, IndexGrowsWithTheFlows) {
  FlowTable t(1u << 12, 64);  // full size 16384 slots
  EXPECT_EQ(t.indexSlots(), 64u);
  EXPECT_FALSE(t.indexGrowing());
  uint32_t growths_seen_midway = 0;
  for (uint32_t i = 0; i < (1u << 12); ++i) {
    ASSERT_NE(t.insert(clientKey(i), nodeKey(i), FlowState::kUdp, 0), nullptr) << i;
    // Load <= 1/4 of the array inserts go to, whatever is still moving (1/2 at most
    // once it is full size).
    ASSERT_LE(2 * (i + 1), t.indexSlots() / (t.indexSlots() < (1u << 14) ? 4 : 2)) << i;
    if (t.indexGrowing()) {
      ++growths_seen_midway;
      for (uint32_t k = 0; k <= i; ++k) {
        ASSERT_EQ(t.lookup(clientKey(k)).flow, t.lookup(nodeKey(k)).flow) << i << " " << k;
        ASSERT_NE(t.lookup(nodeKey(k)).flow, nullptr) << i << " " << k;
      }
    }
  }
  EXPECT_GT(growths_seen_midway, 0u);
  EXPECT_EQ(t.indexSlots(), 1u << 14);  // 8192 keys: the full size, reached and not passed
  EXPECT_FALSE(t.insert(clientKey(1u << 12), nodeKey(1u << 12), FlowState::kUdp, 0));  // full
  EXPECT_FALSE(t.indexGrowing());
  // Erasing a flow in the middle of a growth: its keys may sit in either array.
  FlowTable u(1u << 12, 64);
  uint32_t n = 0;
  while (!(u.indexGrowing() && u.indexSlots() >= 1024)) {
    ASSERT_NE(u.insert(clientKey(n), nodeKey(n), FlowState::kUdp, 0), nullptr);
    ++n;
  }
  for (uint32_t k = 0; k < n; k += 2) u.erase(u.lookup(clientKey(k)).flow);
  for (uint32_t k = 0; k < n; ++k) {
    ASSERT_EQ(u.contains(clientKey(k)), k % 2 == 1) << k;
    ASSERT_EQ(u.contains(nodeKey(k)), k % 2 == 1) << k;
  }
  // Without inserts, expiry's budget finishes the growth.
  EXPECT_TRUE(u.indexGrowing());
  EXPECT_EQ(u.expire(0, 1024, FlowTimeouts{}), 0u);
  EXPECT_FALSE(u.indexGrowing());
  for (uint32_t k = 1; k < n; k += 2) ASSERT_EQ(u.lookup(nodeKey(k)).flow->client, clientKey(k)) << k;
}

// Erasing from the old array of a growth, across the slots already moved out: a run of
// the old array that wraps from its end to its start, cut by the moved-out slots at the
// start, must stay reachable (backward shift across them) and its entries findable for
// erasure (walk across them).
TEST(FlowTableTest, EraseDuringGrowthAcrossTheMovedOutSlots) {
  std::vector<FlowKey> wrapping;  // home 250 of 256: a run over 250..255 and 0..33
  std::vector<FlowKey> honest;    // homes 60..200: away from it
  for (uint32_t i = 0; wrapping.size() < 40 || honest.size() < 200; ++i) {
    const FlowKey k = clientKey(i);
    const uint32_t home = FlowTable::hashOf(k) & 255;
    if (home == 250 && wrapping.size() < 40) wrapping.push_back(k);
    if (home >= 60 && home <= 200) honest.push_back(k);
  }
  FlowTable t(1u << 10, 256);
  for (const FlowKey& k : wrapping) ASSERT_NE(t.insertClientOnly(k, nodeKey(0), FlowState::kUdp, 0), nullptr);
  size_t h = 0;
  while (!t.indexGrowing()) ASSERT_NE(t.insertClientOnly(honest[h++], nodeKey(0), FlowState::kUdp, 0), nullptr);
  // The doubling moved slots 0..7; one more insert moves 8..15. wrapping[6..21] (slots
  // 0..15) are in the new array now, wrapping[0..5] and [22..39] still in the old one.
  ASSERT_NE(t.insertClientOnly(honest[h++], nodeKey(0), FlowState::kUdp, 0), nullptr);
  ASSERT_TRUE(t.indexGrowing());
  std::vector<bool> erased(wrapping.size());
  for (size_t k : {size_t{0}, size_t{30}, size_t{3}, size_t{22}}) {
    t.erase(t.lookup(wrapping[k]).flow);
    erased[k] = true;
    for (size_t j = 0; j < wrapping.size(); ++j) ASSERT_EQ(t.contains(wrapping[j]), !erased[j]) << k << " " << j;
  }
  EXPECT_EQ(t.expire(0, 100'000, FlowTimeouts{}), 0u);
  EXPECT_FALSE(t.indexGrowing());
  for (size_t j = 0; j < wrapping.size(); ++j) ASSERT_EQ(t.contains(wrapping[j]), !erased[j]) << j;
  for (size_t k = 0; k < h; ++k) ASSERT_TRUE(t.contains(honest[k])) << k;
}

// A doubling whose next entry cannot be placed within kMaxDisplacement of its new home
// (keys crafted to share one home crowd it) waits there: nothing is lost, lookups still
// find both arrays' keys, and it finishes once the crowd leaves.
TEST(FlowTableTest, GrowthWaitsForRoomAfterCraftedCollisions) {
  // 512 slots at first, then 1024: keys whose home is 812 in the 1024-slot array have
  // their home at 300 in the 512-slot one.
  constexpr uint32_t kHome = 812;
  std::vector<FlowKey> colliding;
  std::vector<FlowKey> honest;  // homes below 100 in both sizes: away from the crowd
  for (uint32_t i = 0; colliding.size() < 400 || honest.size() < 200; ++i) {
    const FlowKey k = clientKey(i);
    const uint32_t home = FlowTable::hashOf(k) & 1023;
    if (home == kHome) colliding.push_back(k);
    if (home < 100 && home > 30) honest.push_back(k);
  }
  FlowTable t(1u << 10, 512);
  // The old array: 100 colliding keys at 300..399, honest ones until the doubling starts.
  size_t c = 0;
  for (; c < 100; ++c) ASSERT_NE(t.insertClientOnly(colliding[c], nodeKey(0), FlowState::kUdp, 0), nullptr);
  size_t h = 0;
  while (!t.indexGrowing()) ASSERT_NE(t.insertClientOnly(honest[h++], nodeKey(0), FlowState::kUdp, 0), nullptr);
  ASSERT_EQ(t.indexSlots(), 1024u);
  // New flows of two colliding keys each crowd the new array at 812 before the sweep
  // reaches the old cluster at 300: its later entries find no slot within the bound.
  std::vector<Flow*> crowd;
  for (int i = 0; i < 60; ++i, c += 2) {
    if (Flow* f = t.insert(colliding[c], colliding[c + 1], FlowState::kUdp, 0)) crowd.push_back(f);
  }
  EXPECT_GT(crowd.size(), 10u);
  EXPECT_EQ(t.expire(0, 100'000, FlowTimeouts{}), 0u);
  EXPECT_TRUE(t.indexGrowing());  // waiting, not lost
  for (size_t k = 0; k < 100; ++k) ASSERT_TRUE(t.contains(colliding[k])) << k;
  for (size_t k = 0; k < h; ++k) ASSERT_TRUE(t.contains(honest[k])) << k;
  for (Flow* f : crowd) ASSERT_EQ(t.lookup(f->node).flow, f);
  // Inserts still work meanwhile, up to 1/2 load of the new array.
  ASSERT_NE(t.insertClientOnly(honest[h++], nodeKey(0), FlowState::kUdp, 0), nullptr);
  for (Flow* f : crowd) t.erase(f);
  EXPECT_EQ(t.expire(0, 100'000, FlowTimeouts{}), 0u);
  EXPECT_FALSE(t.indexGrowing());
  for (size_t k = 0; k < 100; ++k) ASSERT_TRUE(t.contains(colliding[k])) << k;
  for (size_t k = 0; k < h; ++k) ASSERT_TRUE(t.contains(honest[k])) << k;
}

TEST(FlowTableTest, TimeoutsByState) {
  const FlowTimeouts to{.tcp_established_ms = 1000, .tcp_transitory_ms = 100, .udp_ms = 500, .tcp_half_open_ms = 30};
  EXPECT_EQ(timeoutFor(FlowState::kTcpSynSent, to), 30u);
  EXPECT_EQ(timeoutFor(FlowState::kTcpClosing, to), 100u);
  EXPECT_EQ(timeoutFor(FlowState::kTcpEstablished, to), 1000u);
  EXPECT_EQ(timeoutFor(FlowState::kUdp, to), 500u);
}

void expireByState(uint32_t t0) {
  const FlowTimeouts to{.tcp_established_ms = 1000, .tcp_transitory_ms = 100, .udp_ms = 500, .tcp_half_open_ms = 100};
  FlowTable t(8);
  ASSERT_NE(t.insert(clientKey(1), nodeKey(1), FlowState::kTcpSynSent, t0), nullptr);
  ASSERT_NE(t.insert(clientKey(2), nodeKey(2), FlowState::kTcpEstablished, t0), nullptr);
  ASSERT_NE(t.insert(clientKey(3), nodeKey(3), FlowState::kTcpClosing, t0), nullptr);
  ASSERT_NE(t.insert(clientKey(4), nodeKey(4), FlowState::kUdp, t0), nullptr);
  // Idle exactly for the timeout: kept; one more millisecond: gone.
  EXPECT_EQ(t.expire(t0 + 100, 8, to), 0u);
  EXPECT_EQ(t.expire(t0 + 101, 8, to), 2u);
  EXPECT_FALSE(t.contains(clientKey(1)));
  EXPECT_FALSE(t.contains(nodeKey(3)));
  EXPECT_EQ(t.expire(t0 + 500, 8, to), 0u);
  EXPECT_EQ(t.expire(t0 + 501, 8, to), 1u);
  EXPECT_FALSE(t.contains(clientKey(4)));
  EXPECT_EQ(t.expire(t0 + 1000, 8, to), 0u);
  EXPECT_TRUE(t.contains(clientKey(2)));
  EXPECT_EQ(t.expire(t0 + 1001, 8, to), 1u);
  EXPECT_EQ(t.size(), 0u);
}

TEST(FlowTableTest, ExpiryByState) { expireByState(1'000'000); }
// now_ms wraps from 2^32-1 to 0 between insertion and expiry.
TEST(FlowTableTest, ExpiryAcrossClockWrap) { expireByState(0xffffffffu - 50); }

TEST(FlowTableTest, ExpireBudgetBoundsWork) {
  const FlowTimeouts to{.tcp_established_ms = 1000, .tcp_transitory_ms = 100, .udp_ms = 100};
  FlowTable t(100);
  // Records are handed out in order: flows 0-9 are fresh, 10-99 stale.
  for (uint32_t i = 0; i < 100; ++i) {
    ASSERT_NE(t.insert(clientKey(i), nodeKey(i), FlowState::kUdp, i < 10 ? 5000 : 0), nullptr);
  }
  // The first call only reaches the ten fresh records.
  EXPECT_EQ(t.expire(5000, 10, to), 0u);
  EXPECT_EQ(t.size(), 100u);
  // The cursor moved on: the next ten are stale.
  EXPECT_EQ(t.expire(5000, 10, to), 10u);
  EXPECT_EQ(t.size(), 90u);
  EXPECT_FALSE(t.contains(clientKey(15)));
  EXPECT_TRUE(t.contains(clientKey(20)));
  // A budget above the capacity does at most one lap.
  EXPECT_EQ(t.expire(5000, 1'000'000, to), 80u);
  EXPECT_EQ(t.size(), 10u);
  for (uint32_t i = 0; i < 10; ++i) EXPECT_EQ(t.lookup(nodeKey(i)).flow->client, clientKey(i));
  EXPECT_EQ(t.expire(5000, 0, to), 0u);
}

TEST(FlowTableTest, BytesPerFlow) {
  FlowTable t(1u << 16);
  // Record + free-list entry + live flag + half-open list links + index slots of 8 bytes:
  // 4 for the full-size array, 2 for the half-size one a growing index moves from.
  EXPECT_EQ(t.bytesPerFlow(), sizeof(Flow) + 4 + 1 + 8 + (4 + 2) * 8);
  EXPECT_LE(t.bytesPerFlow(), 112u);
  // An index that starts at full size needs no second array.
  FlowTable full(1u << 10, 1u << 12);
  EXPECT_EQ(full.bytesPerFlow(), sizeof(Flow) + 4 + 1 + 8 + 4 * 8);
}

// Walks the half-open FIFO by evicting: the order in which oldestHalfOpen() hands out
// records, restored afterwards is not needed (each test builds its own table).
std::vector<FlowKey> drainHalfOpen(FlowTable& t) {
  std::vector<FlowKey> order;
  while (Flow* f = t.oldestHalfOpen()) {
    order.push_back(f->client);
    t.erase(f);
  }
  return order;
}

TEST(FlowTableTest, HalfOpenFlowsAreCountedAndListedOldestFirst) {
  FlowTable t(16);
  EXPECT_EQ(t.halfOpenLimit(), 4u) << "default: a quarter of the capacity";
  EXPECT_EQ(t.oldestHalfOpen(), nullptr);
  for (uint32_t i = 1; i <= 5; ++i) ASSERT_NE(t.insert(clientKey(i), nodeKey(i), FlowState::kTcpSynSent, i), nullptr);
  ASSERT_NE(t.insert(clientKey(6), nodeKey(6), FlowState::kTcpEstablished, 6), nullptr);
  ASSERT_NE(t.insert(clientKey(7), nodeKey(7), FlowState::kUdp, 7), nullptr);
  EXPECT_EQ(t.halfOpen(), 5u);
  EXPECT_TRUE(t.halfOpenFull()) << "5 half-open flows over a budget of 4";

  // Flow 2 is promoted by the node's SYN-ACK, flow 4 closed by a RST, flow 1 erased.
  t.track(*t.lookup(clientKey(2)).flow, pkt::tcp::kSyn | pkt::tcp::kAckFlag, /*from_client=*/false);
  t.track(*t.lookup(nodeKey(4)).flow, pkt::tcp::kRst, /*from_client=*/false);
  t.erase(t.lookup(clientKey(1)).flow);
  EXPECT_EQ(t.halfOpen(), 2u);
  EXPECT_FALSE(t.halfOpenFull());
  // A retransmitted SYN changes nothing; the client's ACK promotes.
  t.track(*t.lookup(clientKey(3)).flow, pkt::tcp::kSyn, /*from_client=*/true);
  EXPECT_EQ(t.halfOpen(), 2u);
  // A closed flow reopened by a fresh SYN is half-open again, now the newest.
  t.track(*t.lookup(clientKey(4)).flow, pkt::tcp::kSyn, /*from_client=*/true);
  EXPECT_EQ(t.halfOpen(), 3u);
  EXPECT_EQ(drainHalfOpen(t), (std::vector<FlowKey>{clientKey(3), clientKey(5), clientKey(4)}));
  EXPECT_EQ(t.halfOpen(), 0u);
  EXPECT_EQ(t.size(), 3u) << "only the established and the UDP flows are left";
  EXPECT_TRUE(t.contains(clientKey(2)));
  EXPECT_TRUE(t.contains(clientKey(6)));
  EXPECT_TRUE(t.contains(clientKey(7)));
}

TEST(FlowTableTest, HalfOpenLimitIsClampedAndFullTableCountsAsFull) {
  FlowTable t(4);
  t.setHalfOpenLimit(0);
  EXPECT_EQ(t.halfOpenLimit(), 1u);
  t.setHalfOpenLimit(100);
  EXPECT_EQ(t.halfOpenLimit(), 4u);
  t.setHalfOpenLimit(3);
  for (uint32_t i = 1; i <= 4; ++i) ASSERT_NE(t.insert(clientKey(i), nodeKey(i), FlowState::kUdp, 0), nullptr);
  EXPECT_EQ(t.halfOpen(), 0u);
  EXPECT_TRUE(t.halfOpenFull()) << "no free record: a new SYN needs room too";
  EXPECT_EQ(t.oldestHalfOpen(), nullptr) << "and there is nothing a flood may take";
}

TEST(FlowTableTest, HalfOpenFlowsExpireOnTheirOwnShortTimeout) {
  const FlowTimeouts to{.tcp_established_ms = 900'000, .tcp_transitory_ms = 60'000, .udp_ms = 120'000,
                        .tcp_half_open_ms = 5'000};
  FlowTable t(8);
  ASSERT_NE(t.insert(clientKey(1), nodeKey(1), FlowState::kTcpSynSent, 0), nullptr);
  ASSERT_NE(t.insert(clientKey(2), nodeKey(2), FlowState::kTcpEstablished, 0), nullptr);
  EXPECT_EQ(t.expire(5'000, 8, to), 0u);
  EXPECT_EQ(t.expire(5'001, 8, to), 1u);
  EXPECT_EQ(t.halfOpen(), 0u);
  EXPECT_EQ(t.oldestHalfOpen(), nullptr);
  EXPECT_TRUE(t.contains(clientKey(2)));
}

// The list stays consistent with the states through random inserts, promotions, closes
// and erases.
TEST(FlowTableTest, HalfOpenCountMatchesTheStatesUnderChurn) {
  FlowTable t(64);
  std::mt19937 rng(7);
  std::vector<uint32_t> live;
  uint32_t next = 0;
  for (int step = 0; step < 20'000; ++step) {
    const uint32_t op = rng() % 4;
    if (op == 0 && t.size() < t.capacity()) {
      const uint32_t i = next++;
      const FlowState st = rng() % 2 ? FlowState::kTcpSynSent : FlowState::kUdp;
      if (t.insert(clientKey(i), nodeKey(i), st, 0) != nullptr) live.push_back(i);
    } else if (!live.empty()) {
      const size_t pos = rng() % live.size();
      Flow* f = t.lookup(clientKey(live[pos])).flow;
      ASSERT_NE(f, nullptr);
      if (op == 1) {
        t.erase(f);
        live.erase(live.begin() + static_cast<ptrdiff_t>(pos));
      } else {
        const uint8_t flags[] = {pkt::tcp::kSyn, pkt::tcp::kAckFlag, pkt::tcp::kRst, pkt::tcp::kSyn | pkt::tcp::kAckFlag};
        t.track(*f, flags[rng() % 4], rng() % 2 == 0);
      }
    }
    uint32_t syn_sent = 0;
    for (uint32_t i : live) syn_sent += t.lookup(clientKey(i)).flow->state == FlowState::kTcpSynSent;
    ASSERT_EQ(t.halfOpen(), syn_sent) << "step " << step;
  }
}

struct TcpCase {
  const char* description;
  FlowState before;
  uint8_t flags;
  bool from_client;
  FlowState after;
};

TEST(FlowTableTest, TrackTcp) {
  using enum FlowState;
  const TcpCase cases[] = {
      {"SYN from client stays syn-sent", kTcpSynSent, kSyn, true, kTcpSynSent},
      {"SYN-ACK from node establishes", kTcpSynSent, kSyn | kAck, false, kTcpEstablished},
      {"data from node establishes", kTcpSynSent, kAck, false, kTcpEstablished},
      {"ACK from client after SYN establishes", kTcpSynSent, kAck, true, kTcpEstablished},
      {"node SYN without ACK does not establish", kTcpSynSent, kSyn, false, kTcpSynSent},
      {"data keeps established", kTcpEstablished, kAck, true, kTcpEstablished},
      {"FIN from client closes", kTcpEstablished, kFin | kAck, true, kTcpClosing},
      {"FIN from node closes", kTcpEstablished, kFin | kAck, false, kTcpClosing},
      {"RST from client closes", kTcpEstablished, kRst, true, kTcpClosing},
      {"RST from node closes syn-sent", kTcpSynSent, kRst | kAck, false, kTcpClosing},
      {"ACK of FIN from node keeps closing", kTcpClosing, kAck, false, kTcpClosing},
      {"ACK of FIN from client keeps closing", kTcpClosing, kAck, true, kTcpClosing},
      {"new SYN from client reuses the port", kTcpClosing, kSyn, true, kTcpSynSent},
      {"SYN on established is ignored", kTcpEstablished, kSyn, true, kTcpEstablished},
      {"UDP flows are not tracked", kUdp, kFin, true, kUdp},
  };
  for (const auto& c : cases) {
    Flow f;
    f.state = c.before;
    trackTcp(f, c.flags, c.from_client);
    EXPECT_EQ(f.state, c.after) << c.description;
  }
}

}  // namespace
}  // namespace ng::lb
