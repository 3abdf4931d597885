#include "dataplane/lb/maglev.h"

#include <algorithm>
#include <array>
#include <cstddef>
#include <stdexcept>

#include "dataplane/lb/hash.h"

namespace ng::lb {
namespace {

// Seeds of the two independent hashes of a backend identity (Maglev section 3.4 uses two
// hash functions, h1 for the offset and h2 for the skip). Changing them reshuffles every
// table, so boxes running different versions would disagree: pinned by maglev_test.
constexpr uint64_t kOffsetSeed = 0x6d61676c65763a6f;  // "maglev:o"
constexpr uint64_t kSkipSeed = 0x6d61676c65763a73;    // "maglev:s"

uint64_t hashId(uint64_t id, uint64_t seed) noexcept {
  // Fixed little-endian encoding so the permutation does not depend on the host.
  std::array<std::byte, 8> bytes;
  for (size_t i = 0; i < bytes.size(); ++i) bytes[i] = static_cast<std::byte>(id >> (8 * i));
  return hashBytes(bytes, seed);
}

// One backend's walk through its permutation plus its weighted-turn bookkeeping, kept
// together in one flat array so the population loop touches a single cache line per turn.
struct Walker {
  uint32_t next;    // next preferred slot: permutation[j] for this backend's current j
  uint32_t skip;    // in [1, M-1]; M prime, so the walk visits every slot exactly once
  uint64_t credit;  // (r * weight) mod max_weight, see the turn rule below
  uint32_t weight;
  uint16_t index;   // position in the span passed to build()
};

}  // namespace

bool isPrime(uint32_t n) noexcept {
  if (n < 2) return false;
  if (n % 2 == 0) return n == 2;
  for (uint32_t d = 3; static_cast<uint64_t>(d) * d <= n; d += 2) {
    if (n % d == 0) return false;
  }
  return true;
}

MaglevTable MaglevTable::build(std::span<const MaglevBackend> backends, uint32_t size) {
  if (!isPrime(size)) throw std::invalid_argument("maglev: table size must be a prime > 1");
  if (backends.size() > kNoBackend) {
    throw std::invalid_argument("maglev: at most 65535 backends");
  }

  // Visit backends in id order so the table depends on the set, not on the order the
  // caller listed it in; entries still name positions in the caller's span.
  std::vector<uint16_t> order(backends.size());
  for (size_t i = 0; i < order.size(); ++i) order[i] = static_cast<uint16_t>(i);
  std::sort(order.begin(), order.end(),
            [&](uint16_t x, uint16_t y) { return backends[x].id < backends[y].id; });
  for (size_t i = 1; i < order.size(); ++i) {
    if (backends[order[i - 1]].id == backends[order[i]].id) {
      throw std::invalid_argument("maglev: duplicate backend id");
    }
  }

  MaglevTable table;
  table.slots_.assign(size, kNoBackend);

  // Permutation of each backend (section 3.4): offset = h1(id) mod M,
  // skip = h2(id) mod (M-1) + 1, permutation[j] = (offset + j * skip) mod M. Only the
  // current position is kept; the next one is one add and a conditional subtract.
  std::vector<Walker> walkers;
  walkers.reserve(order.size());
  uint32_t max_weight = 0;
  for (uint16_t i : order) {
    const MaglevBackend& b = backends[i];
    if (b.weight == 0) continue;  // draining: no slots
    walkers.push_back(Walker{
        .next = static_cast<uint32_t>(hashId(b.id, kOffsetSeed) % size),
        .skip = static_cast<uint32_t>(hashId(b.id, kSkipSeed) % (size - 1) + 1),
        .credit = 0,
        .weight = b.weight,
        .index = i,
    });
    max_weight = std::max(max_weight, b.weight);
  }
  if (walkers.empty()) return table;

  // Population (section 3.4, pseudocode 1), weighted. Rounds r = 0, 1, 2, ...; within a
  // round backends take turns in id order. A backend of weight w takes a turn in round r
  // iff floor((r+1)*w/wmax) > floor(r*w/wmax), so the heaviest backends take one slot
  // every round and a backend of weight w takes w/wmax as many: slot shares follow the
  // weights up to the last partial round. The floor test is evaluated without division:
  // `credit` holds (r*w) mod wmax and a turn is due when credit + w reaches wmax.
  // On its turn a backend takes its next preferred slot that is still free (unweighted
  // Maglev is the special case of all weights equal).
  uint16_t* const slots = table.slots_.data();
  uint32_t filled = 0;
  for (;;) {
    for (Walker& w : walkers) {
      w.credit += w.weight;
      if (w.credit < max_weight) continue;
      w.credit -= max_weight;

      uint32_t c = w.next;
      while (slots[c] != kNoBackend) {
        c += w.skip;
        if (c >= size) c -= size;
      }
      slots[c] = w.index;
      c += w.skip;
      if (c >= size) c -= size;
      w.next = c;
      if (++filled == size) return table;
    }
  }
}

uint32_t MaglevTable::slotsMoved(const MaglevTable& a, std::span<const MaglevBackend> a_backends,
                                 const MaglevTable& b, std::span<const MaglevBackend> b_backends) {
  if (a.size() != b.size()) throw std::invalid_argument("maglev: tables differ in size");
  auto identity = [](uint16_t entry, std::span<const MaglevBackend> backends) -> uint64_t {
    if (entry == kNoBackend) return 0;
    if (entry >= backends.size()) throw std::invalid_argument("maglev: entry outside backends");
    return backends[entry].id;
  };
  uint32_t moved = 0;
  for (uint32_t s = 0; s < a.size(); ++s) {
    const uint16_t x = a.slots_[s];
    const uint16_t y = b.slots_[s];
    // An empty slot differs from any backend, even one whose id happens to be 0.
    if ((x == kNoBackend) != (y == kNoBackend)) {
      ++moved;
    } else if (identity(x, a_backends) != identity(y, b_backends)) {
      ++moved;
    }
  }
  return moved;
}

}  // namespace ng::lb
