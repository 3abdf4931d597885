#pragma once
// Maglev consistent hashing (Eisenbud et al., NSDI 2016, section 3.4), weighted.
//
// A pure function from (backends, table size) to a lookup table. Built by the control
// thread, never on a worker. Deterministic: the same set of backends gives the same
// table whatever order they are passed in, in every process.

#include <cstdint>
#include <span>
#include <vector>

namespace ng::lb {

inline constexpr uint32_t kDefaultMaglevSize = 65537;  // prime; >= 100x the backends

struct MaglevBackend {
  // Identity used for the permutation (offset/skip). NodeGate uses the node's address,
  // not its nodePort, so Services that span the same nodes with the same weights get
  // identical tables and the compiler can share them.
  uint64_t id = 0;
  uint32_t weight = 1;  // 0 = takes no slots (draining)
};

class MaglevTable {
 public:
  // Entries are indices into the `backends` span passed to build(); kNoBackend when
  // every backend has weight 0 or the span is empty.
  static constexpr uint16_t kNoBackend = 0xffff;

  // `size` must be prime and > 1; at most 65535 backends. Throws std::invalid_argument
  // otherwise (control path only).
  static MaglevTable build(std::span<const MaglevBackend> backends,
                           uint32_t size = kDefaultMaglevSize);

  [[nodiscard]] uint32_t size() const noexcept { return static_cast<uint32_t>(slots_.size()); }
  // Maps a 64-bit flow hash to a slot without division (Lemire's multiply-shift).
  [[nodiscard]] uint16_t lookup(uint64_t hash) const noexcept {
    return slots_[static_cast<uint32_t>(((hash & 0xffffffffu) * slots_.size()) >> 32)];
  }
  [[nodiscard]] std::span<const uint16_t> slots() const noexcept { return slots_; }

  // Number of slots whose backend *identity* differs between two tables built over
  // `a_backends` / `b_backends` (churn as an output; Katran/Envoy style).
  static uint32_t slotsMoved(const MaglevTable& a, std::span<const MaglevBackend> a_backends,
                             const MaglevTable& b, std::span<const MaglevBackend> b_backends);

  friend bool operator==(const MaglevTable&, const MaglevTable&) = default;

 private:
  std::vector<uint16_t> slots_;
};

[[nodiscard]] bool isPrime(uint32_t n) noexcept;

}  // namespace ng::lb
