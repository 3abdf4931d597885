#include "dataplane/lb/reply_steering.h"

#include <bit>
#include <stdexcept>

namespace ng::lb {

ReplySteering ReplySteering::byPort(uint32_t workers) {
  if (workers == 0 || workers > kMaxWorkers) {
    throw std::invalid_argument("reply steering: " + std::to_string(workers) + " workers (1.." +
                                std::to_string(kMaxWorkers) + ")");
  }
  ReplySteering s;
  s.workers_ = workers;
  s.mode_ = workers == 1 ? Mode::kSingle : Mode::kByPort;
  return s;
}

std::optional<ReplySteering> ReplySteering::byRss(uint32_t workers, std::span<const uint8_t> key,
                                                  std::span<const uint16_t> reta, std::string* why) {
  const auto refuse = [why](std::string reason) -> std::optional<ReplySteering> {
    if (why != nullptr) *why = std::move(reason);
    return std::nullopt;
  };
  if (workers == 0 || workers > kMaxWorkers) return refuse(std::to_string(workers) + " workers");
  // The NIC indexes the RETA with the hash's low bits; only with a power-of-two size is
  // that `hash & mask`, which keeps the port's contribution separable from the rest.
  if (reta.empty() || reta.size() > kMaxRetaSize || !std::has_single_bit(reta.size())) {
    return refuse("RETA of " + std::to_string(reta.size()) + " entries (want a power of two up to " +
                           std::to_string(kMaxRetaSize) + ")");
  }
  if (key.size() < Toeplitz::kMinKeyLen) {
    return refuse("RSS key of " + std::to_string(key.size()) + " bytes");
  }
  ReplySteering s;
  s.workers_ = workers;
  s.mode_ = Mode::kRss;
  s.reta_mask_ = static_cast<uint32_t>(reta.size() - 1);
  s.toeplitz_ = Toeplitz(key);
  s.worker_of_.resize(reta.size());
  std::vector<bool> served(workers, false);
  for (size_t i = 0; i < reta.size(); ++i) {
    if (reta[i] >= workers) {
      return refuse("RETA entry " + std::to_string(i) + " names queue " + std::to_string(reta[i]) +
                             " of " + std::to_string(workers));
    }
    s.worker_of_[i] = static_cast<uint8_t>(reta[i]);
    served[reta[i]] = true;
  }
  // A worker without RETA entries could never own a reply: it could create no flow.
  for (uint32_t w = 0; w < workers; ++w) {
    if (!served[w]) return refuse("no RETA entry points to queue " + std::to_string(w));
  }
  return s;
}

const char* ReplySteering::modeName() const noexcept {
  switch (mode_) {
    case Mode::kSingle: return "single";
    case Mode::kByPort: return "by-port";
    case Mode::kRss: return "rss";
  }
  return "unknown";
}

}  // namespace ng::lb
