#pragma once
// Exponential back-off with jitter for retrying the API server (KUBERNETES.md: ≈0.8 s
// start, ×2, jitter, cap 30 s). Not thread-safe: owned by one loop.

#include <chrono>
#include <cstdint>
#include <random>

namespace ng::kube {

class Backoff {
 public:
  // The n-th consecutive failure (n from 1) waits a uniformly random time in
  // [3/4 · base, base], base = min(max, initial · 2^(n-1)): never more than `max`, never
  // less than 3/4 of the nominal step, and peers that failed together spread out.
  Backoff(std::chrono::milliseconds initial, std::chrono::milliseconds max, uint64_t seed = std::random_device{}());

  // The wait after one more failure; `floor` (e.g. Retry-After) raises it.
  [[nodiscard]] std::chrono::milliseconds next(std::chrono::milliseconds floor = std::chrono::milliseconds{0});
  // The nominal step the next failure would use (before jitter).
  [[nodiscard]] std::chrono::milliseconds base() const noexcept { return base_; }
  [[nodiscard]] uint32_t failures() const noexcept { return failures_; }
  void reset() noexcept;  // after a success

 private:
  std::chrono::milliseconds initial_, max_, base_;
  uint32_t failures_ = 0;
  std::mt19937_64 rng_;
};

}  // namespace ng::kube
