#pragma once
// Internet checksum (RFC 1071) and its incremental update (RFC 1624, eqn. 3).
//
// The incremental form HC' = ~(~HC + ~m + m') keeps a wrong checksum wrong: a frame that
// arrived corrupted leaves the box corrupted, so the receiver still drops it, instead of
// the box blessing damaged data with a freshly computed checksum.
//
// All 16-bit values are in the same byte order as each other (we use host-order values
// loaded from the wire big-endian); one's-complement sums do not care which.

#include <cstddef>
#include <cstdint>
#include <span>

namespace ng::pkt {

// One's-complement sum of `bytes` (big-endian 16-bit words, odd byte padded) added to
// `sum`; not folded.
[[nodiscard]] uint32_t checksumAdd(std::span<const std::byte> bytes, uint32_t sum = 0) noexcept;
// Folds a 32-bit one's-complement sum to 16 bits and complements it.
[[nodiscard]] uint16_t checksumFinish(uint32_t sum) noexcept;
// Checksum of `bytes` ready to store (complemented).
[[nodiscard]] inline uint16_t internetChecksum(std::span<const std::byte> bytes) noexcept {
  return checksumFinish(checksumAdd(bytes));
}

// RFC 1624 in pieces, for a rewrite that changes several fields: replacing word m by m'
// adds ~m + m' to the one's-complement sum. Deltas add up in a 64-bit accumulator (a
// few thousand of them cannot overflow it) and the checksum takes their sum once
// (applyChecksumDelta).
[[nodiscard]] inline uint32_t checksumDelta16(uint16_t before, uint16_t after) noexcept {
  return static_cast<uint16_t>(~before) + uint32_t{after};
}
// A 32-bit field (an IPv4 address, or a TCP/UDP header's two ports) as one word: one's-
// complement sums over 32-bit words fold to the same 16-bit sum (RFC 1071 sec. 2(C)), so
// its two halves need no separate handling. Values in the same byte order as the rest.
[[nodiscard]] inline uint64_t checksumDelta32(uint32_t before, uint32_t after) noexcept {
  return uint64_t{~before} + after;
}
// A 64-bit one's-complement sum folded to 16 bits (end-around carries). A positive sum
// folds into [1, 0xffff], its unique representative there; only 0 folds to 0.
[[nodiscard]] inline uint16_t foldChecksum(uint64_t sum) noexcept {
  sum = (sum & 0xffffffffu) + (sum >> 32);
  sum = (sum & 0xffffffffu) + (sum >> 32);
  sum = (sum & 0xffffu) + (sum >> 16);
  sum = (sum & 0xffffu) + (sum >> 16);
  return static_cast<uint16_t>(sum);
}
// HC' = ~(~HC + sum of deltas), folded: a wrong checksum stays wrong.
[[nodiscard]] inline uint16_t applyChecksumDelta(uint16_t csum, uint64_t delta) noexcept {
  return static_cast<uint16_t>(~foldChecksum(uint64_t{static_cast<uint16_t>(~csum)} + delta));
}
// The same for `delta` a sum of at most three folded 16-bit deltas (a change stored
// once and applied to many frames, pkt::NatDelta): two folds instead of four. The added
// 0xffff (one's-complement zero) keeps the sum positive, so the result is the
// representative applyChecksumDelta gives for the same change: the same bytes either way.
[[nodiscard]] inline uint16_t applyFoldedDelta(uint16_t csum, uint32_t delta) noexcept {
  uint32_t sum = uint32_t{static_cast<uint16_t>(~csum)} + delta + 0xffffu;
  sum = (sum & 0xffffu) + (sum >> 16);
  sum = (sum & 0xffffu) + (sum >> 16);
  return static_cast<uint16_t>(~sum);
}

// The checksum change of one full-NAT rewrite of IPv4 addresses and TCP/UDP ports
// (RFC 1624: it depends only on the old and the new values, so it can be computed once
// for many frames: pkt::natDelta, pkt::forwardNatKnown in rewrite.h). Folded
// one's-complement sums in the wire's byte order read as native integers.
struct NatDelta {
  uint16_t addresses = 0;  // both addresses: the IPv4 header's change, TTL aside, and
                           // the TCP/UDP pseudo-header's
  uint16_t l4 = 0;         // addresses and ports: the TCP/UDP checksum's change
  // The opposite rewrite, `to` -> `from`: the one's-complement negation.
  [[nodiscard]] NatDelta reversed() const noexcept {
    return {.addresses = static_cast<uint16_t>(~addresses), .l4 = static_cast<uint16_t>(~l4)};
  }
  friend bool operator==(const NatDelta&, const NatDelta&) = default;
};
// RFC 1624 update of checksum field `csum` when a 16-bit word changes old -> new.
// Inline: a full-NAT rewrite calls these seven times per packet.
[[nodiscard]] inline uint16_t checksumUpdate16(uint16_t csum, uint16_t old_word, uint16_t new_word) noexcept {
  // RFC 1624 eqn. 3: HC' = ~(~HC + ~m + m').
  uint32_t sum = static_cast<uint16_t>(~csum);
  sum += static_cast<uint16_t>(~old_word);
  sum += new_word;
  sum = (sum & 0xffffu) + (sum >> 16);
  sum = (sum & 0xffffu) + (sum >> 16);
  return static_cast<uint16_t>(~sum);
}

// Same for a 32-bit field (an IPv4 address): both 16-bit words in one fold.
[[nodiscard]] inline uint16_t checksumUpdate32(uint16_t csum, uint32_t old_value, uint32_t new_value) noexcept {
  uint32_t sum = static_cast<uint16_t>(~csum);
  sum += static_cast<uint16_t>(~(old_value >> 16)) + static_cast<uint16_t>(~old_value);
  sum += (new_value >> 16) + (new_value & 0xffffu);
  sum = (sum & 0xffffu) + (sum >> 16);
  sum = (sum & 0xffffu) + (sum >> 16);
  return static_cast<uint16_t>(~sum);
}

}  // namespace ng::pkt
