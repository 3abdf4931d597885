#include "control/kube/backoff.h"

#include <algorithm>

namespace ng::kube {

Backoff::Backoff(std::chrono::milliseconds initial, std::chrono::milliseconds max, uint64_t seed)
    : initial_(std::max(initial, std::chrono::milliseconds{1})),
      max_(std::max(max, initial_)),
      base_(initial_),
      rng_(seed) {}

std::chrono::milliseconds Backoff::next(std::chrono::milliseconds floor) {
  const int64_t b = base_.count();
  std::uniform_int_distribution<int64_t> jitter(b - b / 4, b);
  const std::chrono::milliseconds wait{jitter(rng_)};
  ++failures_;
  base_ = std::min(max_, base_ * 2);
  return std::max(wait, floor);
}

void Backoff::reset() noexcept {
  failures_ = 0;
  base_ = initial_;
}

}  // namespace ng::kube
