#pragma once
// IPv6 addresses as two host-order 64-bit halves (`hi` = the first 8 bytes on the wire
// read big-endian), so they compare, sort, mask and hash like integers, and the IPv4
// data path's uint32_t habits carry over (sorted vectors, binary search, prefix ranges).
// Plain value type, no DPDK, no allocation.

#include <compare>
#include <cstddef>
#include <cstdint>

#include "dataplane/pkt/bytes.h"

namespace ng::pkt {

struct Ip6 {
  uint64_t hi = 0;
  uint64_t lo = 0;

  friend constexpr auto operator<=>(const Ip6&, const Ip6&) = default;
  friend constexpr bool operator==(const Ip6&, const Ip6&) = default;

  [[nodiscard]] constexpr bool isZero() const noexcept { return (hi | lo) == 0; }
  // ff00::/8
  [[nodiscard]] constexpr bool isMulticast() const noexcept { return (hi >> 56) == 0xff; }
  // fe80::/10
  [[nodiscard]] constexpr bool isLinkLocal() const noexcept { return (hi >> 54) == (0xfe80u >> 6); }
  // ::1
  [[nodiscard]] constexpr bool isLoopback() const noexcept { return hi == 0 && lo == 1; }
  // ::ffff:0:0/96 (IPv4-mapped; never a valid source or destination on the wire, RFC 4291 2.5.5.2)
  [[nodiscard]] constexpr bool isV4Mapped() const noexcept { return hi == 0 && (lo >> 32) == 0xffff; }

  // The 16 bits at word `i` (0..7) as written in text.
  [[nodiscard]] constexpr uint16_t word(unsigned i) const noexcept {
    return static_cast<uint16_t>((i < 4 ? hi >> (48 - 16 * i) : lo >> (48 - 16 * (i - 4))) & 0xffff);
  }
};

// The first `length` bits (0..128) of `a`, the rest zero.
[[nodiscard]] constexpr Ip6 ip6Mask(const Ip6& a, unsigned length) noexcept {
  if (length >= 128) return a;
  if (length == 0) return {};
  if (length <= 64) return {.hi = a.hi & (~uint64_t{0} << (64 - length)), .lo = 0};
  return {.hi = a.hi, .lo = a.lo & (~uint64_t{0} << (128 - length))};
}
// `a` with the host bits below a /`length` prefix set to one (the last address of it).
[[nodiscard]] constexpr Ip6 ip6LastOf(const Ip6& a, unsigned length) noexcept {
  if (length >= 128) return a;
  if (length == 0) return {.hi = ~uint64_t{0}, .lo = ~uint64_t{0}};
  if (length <= 64) {
    return {.hi = a.hi | (length == 64 ? 0 : ~uint64_t{0} >> length), .lo = ~uint64_t{0}};
  }
  return {.hi = a.hi, .lo = a.lo | (~uint64_t{0} >> (length - 64))};
}

// Loads/stores 16 wire bytes (callers check bounds).
[[nodiscard]] inline Ip6 loadIp6(const std::byte* p) noexcept {
  return {.hi = uint64_t{load32(p)} << 32 | load32(p + 4), .lo = uint64_t{load32(p + 8)} << 32 | load32(p + 12)};
}
inline void storeIp6(std::byte* p, const Ip6& a) noexcept {
  store32(p, static_cast<uint32_t>(a.hi >> 32));
  store32(p + 4, static_cast<uint32_t>(a.hi));
  store32(p + 8, static_cast<uint32_t>(a.lo >> 32));
  store32(p + 12, static_cast<uint32_t>(a.lo));
}

// ff02::1:ffXX:XXXX, the solicited-node multicast group of `target` (RFC 4291 2.7.1).
[[nodiscard]] constexpr Ip6 solicitedNode(const Ip6& target) noexcept {
  return {.hi = 0xff02000000000000ULL, .lo = 0x00000001ff000000ULL | (target.lo & 0xffffff)};
}
// 33:33 + the low 32 bits of a multicast group (RFC 2464 7).
[[nodiscard]] constexpr Mac multicastMac(const Ip6& group) noexcept {
  return {0x33, 0x33, static_cast<uint8_t>(group.lo >> 24), static_cast<uint8_t>(group.lo >> 16),
          static_cast<uint8_t>(group.lo >> 8), static_cast<uint8_t>(group.lo)};
}
// fe80::/64 with the modified EUI-64 interface id of `mac` (RFC 4291 app. A).
[[nodiscard]] constexpr Ip6 linkLocalFromMac(const Mac& m) noexcept {
  const uint64_t iid = uint64_t{static_cast<uint8_t>(m[0] ^ 0x02)} << 56 | uint64_t{m[1]} << 48 |
                       uint64_t{m[2]} << 40 | uint64_t{0xff} << 32 | uint64_t{0xfe} << 24 |
                       uint64_t{m[3]} << 16 | uint64_t{m[4]} << 8 | m[5];
  return {.hi = 0xfe80000000000000ULL, .lo = iid};
}

}  // namespace ng::pkt
