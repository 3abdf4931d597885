#include "dataplane/lb/hash.h"

#include <bit>
#include <cstring>

namespace ng::lb {
namespace {

using detail::absorb;
using detail::finalize;
using detail::initial;

// Words are read as little-endian whatever the host, so backend identities hash the same
// on every box (Maglev tables must agree across boxes behind ECMP).
inline uint64_t loadLe64(const std::byte* p) noexcept {
  uint64_t w;
  std::memcpy(&w, p, sizeof w);
  if constexpr (std::endian::native == std::endian::big) w = std::byteswap(w);
  return w;
}

}  // namespace

uint64_t hashBytes(std::span<const std::byte> bytes, uint64_t seed) noexcept {
  uint64_t h = initial(seed, bytes.size());
  const std::byte* p = bytes.data();
  size_t n = bytes.size();
  for (; n >= 8; n -= 8, p += 8) h = absorb(h, loadLe64(p));
  if (n > 0) {
    // Tail as a little-endian word padded with zeros; the length in the initial state
    // keeps "ab" and "ab\0" apart.
    std::byte tail[8] = {};
    std::memcpy(tail, p, n);
    h = absorb(h, loadLe64(tail));
  }
  return finalize(h);
}

}  // namespace ng::lb
