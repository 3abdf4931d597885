#pragma once
// Hashes used on the hot path. Same inputs give the same value in every process and
// on every box (no per-process random seed), so boxes behind ECMP agree on Maglev
// choices. Not DoS-resistant by themselves: the flow table bounds probe lengths.

#include <cstdint>
#include <span>
#include <string_view>

#include "dataplane/lb/flow_key.h"

namespace ng::lb {

// 64-bit hash of a flow key; `seed` separates independent uses (flow table vs Maglev).
[[nodiscard]] uint64_t hashFlowKey(const FlowKey& key, uint64_t seed) noexcept;

// 64-bit hash of arbitrary bytes (backend identities for Maglev permutations).
[[nodiscard]] uint64_t hashBytes(std::span<const std::byte> bytes, uint64_t seed) noexcept;

}  // namespace ng::lb
