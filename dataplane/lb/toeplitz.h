#pragma once
// The Toeplitz hash NICs use for receive-side scaling (Microsoft, "RSS hashing
// functions"; DPDK's rte_softrss computes the same), in plain C++ so packet and
// load-balancing code can predict which RX queue a frame will land on without DPDK.
//
// For an input bit string b[0..n) and a key bit string k, the hash is the XOR, over every
// set input bit i, of the 32 key bits k[i..i+32). That makes it linear:
// H(a XOR b) = H(a) XOR H(b) for inputs of equal length, which is what lets SNAT port
// choice split a reply's hash into a part fixed by the flow and a part chosen with the
// port (lb/reply_steering.h).
//
// Threading: immutable after construction; any thread may hash concurrently.

#include <array>
#include <cstddef>
#include <cstdint>
#include <span>

namespace ng::lb {

class Toeplitz {
 public:
  // The IPv4 TCP/UDP input: source address, destination address, source port,
  // destination port, all in network byte order.
  static constexpr size_t kIpv4TupleLen = 12;
  // The IPv6 TCP/UDP input: source (16 bytes), destination (16), source port, destination
  // port - what NICs hash for IPv6 TCP/UDP whatever extension headers sit in between
  // (RSS "IPv6 TCP/UDP", not the _EX variants). Needs the full 40-byte key.
  static constexpr size_t kIpv6TupleLen = 36;
  // Shortest key that covers the IPv4 tuple: 12 input bytes need 12 * 8 + 32 bits.
  static constexpr size_t kMinKeyLen = kIpv4TupleLen + 4;
  static constexpr size_t kDefaultKeyLen = 40;
  // Microsoft's verification key (the "RSS hashing functions" test suite), which many
  // NICs also use by default. Boot configures it where the device lets us.
  static constexpr std::array<uint8_t, kDefaultKeyLen> kMicrosoftKey = {
      0x6d, 0x5a, 0x56, 0xda, 0x25, 0x5b, 0x0e, 0xc2, 0x41, 0x67, 0x25, 0x3d, 0x43, 0xa3,
      0x8f, 0xb0, 0xd0, 0xca, 0x2b, 0xcb, 0xae, 0x7b, 0x30, 0xb4, 0x77, 0xcb, 0x2d, 0xa3,
      0x80, 0x30, 0xf2, 0x0c, 0x6a, 0x42, 0xb7, 0x3b, 0xbe, 0xac, 0x01, 0xfa};

  // Default: the Microsoft key.
  Toeplitz() noexcept;
  // `key` must hold at least kMinKeyLen bytes; bytes past 40 are ignored (inputs here
  // are never longer than the IPv4 tuple plus a few bytes). Throws std::invalid_argument
  // when the key is too short (start-up only).
  explicit Toeplitz(std::span<const uint8_t> key);

  // Hash of an arbitrary input of at most key length - 4 bytes (longer inputs: the
  // excess bits see a zero key). Bit by bit: for tests and start-up, not for packets.
  [[nodiscard]] uint32_t hash(std::span<const uint8_t> input) const noexcept;

  // Hash of the IPv4 tuple (host byte order arguments), from per-byte tables: 12 loads
  // and XORs.
  [[nodiscard]] uint32_t hashIpv4(uint32_t src_ip, uint32_t dst_ip, uint16_t src_port,
                                  uint16_t dst_port) const noexcept;

  // The contribution of the destination port alone: hashIpv4(s, d, sp, dp) ==
  // hashIpv4(s, d, sp, 0) ^ dstPortPart(dp).
  [[nodiscard]] uint32_t dstPortPart(uint16_t dst_port) const noexcept {
    return table_[10][dst_port >> 8] ^ table_[11][dst_port & 0xff];
  }

  // Hash of the IPv6 tuple (addresses as pkt::Ip6 halves, host order): 36 lookups.
  [[nodiscard]] uint32_t hashIpv6(uint64_t src_hi, uint64_t src_lo, uint64_t dst_hi, uint64_t dst_lo,
                                  uint16_t src_port, uint16_t dst_port) const noexcept;
  // hashIpv6(..., dp) == hashIpv6(..., 0) ^ dstPortPart6(dp).
  [[nodiscard]] uint32_t dstPortPart6(uint16_t dst_port) const noexcept {
    return table_[34][dst_port >> 8] ^ table_[35][dst_port & 0xff];
  }

  [[nodiscard]] std::span<const uint8_t> key() const noexcept { return {key_.data(), key_len_}; }

 private:
  void buildTables() noexcept;
  // The 32 key bits starting at bit `bit` (zeros past the key's end).
  [[nodiscard]] uint32_t window(size_t bit) const noexcept;

  std::array<uint8_t, kDefaultKeyLen> key_{};
  size_t key_len_ = 0;
  // table_[i][v]: the hash of an input that is all zeros except byte i, which is v.
  // Positions 0..11 serve the IPv4 tuple, 0..35 the IPv6 one (36 KiB).
  std::array<std::array<uint32_t, 256>, kIpv6TupleLen> table_{};
};

}  // namespace ng::lb
