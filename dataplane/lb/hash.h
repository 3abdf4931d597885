#pragma once
// Hashes used on the hot path. Same inputs give the same value in every process and
// on every box (no per-process random seed), so boxes behind ECMP agree on Maglev
// choices. Not DoS-resistant by themselves: the flow table bounds probe lengths.

#include <bit>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <span>
#include <string_view>

#include "dataplane/lb/flow_key.h"

namespace ng::lb {

namespace detail {
// Odd "nothing up my sleeve" multipliers: the fractional bits of pi, e and the golden
// ratio. Odd, so multiplying by them is a bijection on 64-bit words.
inline constexpr uint64_t kPi = 0x243f6a8885a308d3;
inline constexpr uint64_t kE = 0xb7e151628aed2a6b;
inline constexpr uint64_t kPhi = 0x9e3779b97f4a7c15;

// Absorbs one word. Every step is a bijection of `w` for a fixed `h` and of `h` for a
// fixed `w` (xor, odd multiply, xorshift, rotate), so two inputs that differ in one word
// never collide before the finalizer, and the finalizer is a bijection too.
[[nodiscard]] inline uint64_t absorb(uint64_t h, uint64_t w) noexcept {
  w *= kE;
  w ^= w >> 32;
  h ^= w;
  return std::rotl(h, 27) * kPhi + kPi;
}

// Avalanche: xorshift / odd-multiply rounds so every input bit reaches every output bit.
[[nodiscard]] inline uint64_t finalize(uint64_t h) noexcept {
  h ^= h >> 31;
  h *= kE;
  h ^= h >> 29;
  h *= kPi;
  h ^= h >> 32;
  return h;
}

// The length goes into the initial state, so inputs that differ only by trailing zero
// bytes hash differently.
[[nodiscard]] inline uint64_t initial(uint64_t seed, size_t len) noexcept {
  return (seed ^ kPhi) + static_cast<uint64_t>(len) * kPi;
}

// The words the flow hashes take from a key, assembled from the fields rather than
// loaded from the struct: keys are built field by field just before hashing, and a wide
// load over fresh narrow stores misses store-to-load forwarding. For an IPv4 key the two
// words equal its 16 bytes read as little-endian (pinned by hash_test against hashBytes).
[[nodiscard]] inline uint64_t addressWord(const FlowKey& key) noexcept {
  return uint64_t{key.src_ip} | uint64_t{key.dst_ip} << 32;
}
template <class Key>
[[nodiscard]] uint64_t portsWord(const Key& key) noexcept {
  return uint64_t{key.src_port} | uint64_t{key.dst_port} << 16 | uint64_t{key.proto} << 32;
}

}  // namespace detail

// An IPv4 key as the two words the index hashes and compares: what the burst path
// takes from a frame's headers (pkt::SimpleIpv4) with one load and one byte swap each,
// without building a FlowKey.
struct FlowKeyWords {
  uint64_t addresses;  // detail::addressWord: src_ip | dst_ip << 32
  uint64_t ports;      // detail::portsWord: src_port | dst_port << 16 | proto << 32
};
[[nodiscard]] inline FlowKeyWords wordsOf(const FlowKey& key) noexcept {
  return {detail::addressWord(key), detail::portsWord(key)};
}

// Key equality for the flow index's probe. An IPv4 key as its two words: the stored
// key is read as two 8-byte loads (written long before), the probe's words built from
// its fields (fresh: no wide load over them) or taken from the frame.
[[nodiscard]] inline bool sameKey(const FlowKey& stored, const FlowKeyWords& probe) noexcept {
  static_assert(std::endian::native == std::endian::little, "the words are the key's bytes read little-endian");
  uint64_t w[2];
  std::memcpy(w, &stored, sizeof(w));
  return ((w[0] ^ probe.addresses) | (w[1] ^ probe.ports)) == 0;
}
[[nodiscard]] inline bool sameKey(const FlowKey& stored, const FlowKey& probe) noexcept {
  return sameKey(stored, wordsOf(probe));
}
[[nodiscard]] inline bool sameKey(const FlowKey6& stored, const FlowKey6& probe) noexcept {
  return stored == probe;
}

// 64-bit hash of a flow key; `seed` separates independent uses (flow table vs Maglev).
// Inline: the words come from the fields in registers (detail::addressWord, portsWord).
[[nodiscard]] inline uint64_t hashFlowKey(const FlowKey& key, uint64_t seed) noexcept {
  uint64_t h = detail::initial(seed, sizeof(FlowKey));
  h = detail::absorb(h, detail::addressWord(key));
  h = detail::absorb(h, detail::portsWord(key));
  return detail::finalize(h);
}

namespace detail {
// 64 x 64 -> 128-bit product with its halves xored (wyhash's "mum" step): the high half
// carries every bit of `x` into the low bits as well.
[[nodiscard]] inline uint64_t mum(uint64_t x, uint64_t k) noexcept {
  const unsigned __int128 product = static_cast<unsigned __int128>(x) * k;
  return static_cast<uint64_t>(product) ^ static_cast<uint64_t>(product >> 64);
}
}  // namespace detail

// The flow index's hash (lb::FlowTable::hashOf), cheaper than hashFlowKey: the index
// hashes every frame, and it needs a spread, not a full avalanche - its probe length is
// bounded whatever the hash does (FlowTable::kMaxDisplacement), and with honest keys it
// probes as far as with hashFlowKey (hash_test compares them). Each of the key's
// two words, xored with the seed, goes through its own multiply (independent, so they
// overlap); no key word value makes the other word's contribution vanish. About a
// dozen instructions against hashFlowKey's ~35. Pinned by hash_test; mirrored by
// scripts/mkpcap.py, which must pick the worker the index hash gives a flow.
[[nodiscard]] inline uint64_t hashFlowIndex(const FlowKeyWords& key, uint64_t seed) noexcept {
  return detail::mum(key.addresses ^ seed, detail::kPhi) ^ detail::mum(key.ports ^ seed, detail::kPi);
}
[[nodiscard]] inline uint64_t hashFlowIndex(const FlowKey& key, uint64_t seed) noexcept {
  return hashFlowIndex(wordsOf(key), seed);
}

// The IPv6 key: five words (both addresses' halves, then ports and protocol). The
// length in the initial state keeps it apart from an IPv4 key with the same words.
[[nodiscard]] inline uint64_t hashFlowKey(const FlowKey6& key, uint64_t seed) noexcept {
  uint64_t h = detail::initial(seed, sizeof(FlowKey6));
  h = detail::absorb(h, key.src_ip.hi);
  h = detail::absorb(h, key.src_ip.lo);
  h = detail::absorb(h, key.dst_ip.hi);
  h = detail::absorb(h, key.dst_ip.lo);
  h = detail::absorb(h, detail::portsWord(key));
  return detail::finalize(h);
}
// IPv6 keys keep the full hash in the index too: they are not on the IPv4 fast path.
[[nodiscard]] inline uint64_t hashFlowIndex(const FlowKey6& key, uint64_t seed) noexcept {
  return hashFlowKey(key, seed);
}

// 64-bit hash of arbitrary bytes (backend identities for Maglev permutations).
[[nodiscard]] uint64_t hashBytes(std::span<const std::byte> bytes, uint64_t seed) noexcept;

}  // namespace ng::lb
