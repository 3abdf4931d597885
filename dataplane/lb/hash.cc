#include "dataplane/lb/hash.h"

#include <bit>
#include <cstring>

namespace ng::lb {
namespace {

// Odd "nothing up my sleeve" multipliers: the fractional bits of pi, e and the golden
// ratio. Odd, so multiplying by them is a bijection on 64-bit words.
constexpr uint64_t kPi = 0x243f6a8885a308d3;
constexpr uint64_t kE = 0xb7e151628aed2a6b;
constexpr uint64_t kPhi = 0x9e3779b97f4a7c15;

// Words are read as little-endian whatever the host, so backend identities hash the same
// on every box (Maglev tables must agree across boxes behind ECMP).
inline uint64_t loadLe64(const std::byte* p) noexcept {
  uint64_t w;
  std::memcpy(&w, p, sizeof w);
  if constexpr (std::endian::native == std::endian::big) w = std::byteswap(w);
  return w;
}

// Absorbs one word. Every step is a bijection of `w` for a fixed `h` and of `h` for a
// fixed `w` (xor, odd multiply, xorshift, rotate), so two inputs that differ in one word
// never collide before the finalizer, and the finalizer is a bijection too.
inline uint64_t absorb(uint64_t h, uint64_t w) noexcept {
  w *= kE;
  w ^= w >> 32;
  h ^= w;
  return std::rotl(h, 27) * kPhi + kPi;
}

// Avalanche: xorshift / odd-multiply rounds so every input bit reaches every output bit.
inline uint64_t finalize(uint64_t h) noexcept {
  h ^= h >> 31;
  h *= kE;
  h ^= h >> 29;
  h *= kPi;
  h ^= h >> 32;
  return h;
}

// The length goes into the initial state, so inputs that differ only by trailing zero
// bytes hash differently.
inline uint64_t initial(uint64_t seed, size_t len) noexcept {
  return (seed ^ kPhi) + static_cast<uint64_t>(len) * kPi;
}

}  // namespace

uint64_t hashFlowKey(const FlowKey& key, uint64_t seed) noexcept {
  // Two 8-byte words: {src_ip, dst_ip} and {ports, proto, zero pad}. On little-endian
  // hosts this equals hashBytes() over the key's 16 bytes (pinned by hash_test).
  uint64_t a;
  uint64_t b;
  if constexpr (std::endian::native == std::endian::little) {
    std::memcpy(&a, &key, 8);
    std::memcpy(&b, reinterpret_cast<const std::byte*>(&key) + 8, 8);
  } else {
    a = uint64_t{key.src_ip} | uint64_t{key.dst_ip} << 32;
    b = uint64_t{key.src_port} | uint64_t{key.dst_port} << 16 | uint64_t{key.proto} << 32;
  }
  uint64_t h = initial(seed, sizeof(FlowKey));
  h = absorb(h, a);
  h = absorb(h, b);
  return finalize(h);
}

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
