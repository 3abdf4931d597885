#pragma once
// Per-worker counters for each backend of each VIP:port (DESIGN.md sec. 2, "Counters").
//
// The control plane gives every (VIP:port/protocol, node:nodePort) pair a stats id that
// stays the same across generations (control/compiler.h); the snapshot's Backend carries
// it and every flow records it at creation, so a flow keeps counting toward its backend
// whatever the tables do later. Id 0 collects what cannot be attributed.
//
// Threading: written only by the owning worker (plain relaxed stores, see Counter), read
// by the control plane. Active flows are new_flows - closed_flows, summed over workers:
// a flow may be created on one burst and expire on another, but always on one worker.

#include <algorithm>
#include <bit>
#include <cstdint>
#include <memory>

#include "dataplane/fwd/counters.h"

namespace ng::fwd {

struct alignas(64) BackendCounters {
  Counter packets_in;   // client -> node frames
  Counter bytes_in;     // their Ethernet frame bytes
  Counter packets_out;  // node -> client frames
  Counter bytes_out;
  Counter new_flows;
  Counter closed_flows; // flows removed by expiry (idle or closed and quarantined)
};
static_assert(sizeof(BackendCounters) == 64, "one cache line per backend");

// Ids the control plane hands out: 1 .. kBackendStatsCapacity - 1.
inline constexpr uint32_t kBackendStatsCapacity = 65536;

class BackendStats {
 public:
  // `capacity` is rounded up to a power of two (>= 2). The default, 4 MiB per worker,
  // matches the compiler's id space; tests and the fuzzer, which build many contexts and
  // never hand out that many ids, use a few entries.
  explicit BackendStats(uint32_t capacity = kBackendStatsCapacity)
      : mask_(std::bit_ceil(std::max<uint32_t>(capacity, 2)) - 1),
        counters_(std::make_unique<BackendCounters[]>(size_t{mask_} + 1)) {}

  // Any id is safe: out-of-range ids wrap instead of writing out of bounds.
  [[nodiscard]] BackendCounters& at(uint32_t id) noexcept { return counters_[id & mask_]; }
  [[nodiscard]] const BackendCounters& at(uint32_t id) const noexcept { return counters_[id & mask_]; }

 private:
  uint32_t mask_;
  std::unique_ptr<BackendCounters[]> counters_;  // allocated at boot
};

}  // namespace ng::fwd
