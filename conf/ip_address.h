#pragma once
// IpAddress and IpPrefix: an IPv4 or IPv6 address (or network) as the control plane
// handles them — config, REST, Kubernetes, IPAM, nodeport, status. The data plane has
// its own wire-order types; the compiler converts.
//
// An IPv4 address is kept as its 4 bytes (never as an IPv4-mapped IPv6 address): "10.0.0.1" and
// "::ffff:10.0.0.1" are different addresses of different families here, as they are to
// Kubernetes (ipFamilies) and to the wire. Ordering: every IPv4 address sorts before every
// IPv6 address; within a family, numerically.
//
// Implicit construction from uint32_t (an IPv4 address, host byte order) keeps the
// IPv4-only call sites and tests readable; the way back is explicit (v4()).
// Value type; thread-compatible.

#include <array>
#include <compare>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <optional>
#include <span>
#include <string>
#include <string_view>

namespace ng::conf {

enum class IpFamily : uint8_t { kIpv4, kIpv6 };

[[nodiscard]] constexpr const char* ipFamilyName(IpFamily family) noexcept {
  return family == IpFamily::kIpv4 ? "IPv4" : "IPv6";  // Kubernetes' ipFamilies spelling
}

class IpAddress {
 public:
  using Bytes16 = std::array<uint8_t, 16>;

  constexpr IpAddress() noexcept = default;
  // An IPv4 address, host byte order.
  constexpr IpAddress(uint32_t v4) noexcept  // NOLINT(google-explicit-constructor)
      : bytes_{static_cast<uint8_t>(v4 >> 24), static_cast<uint8_t>(v4 >> 16), static_cast<uint8_t>(v4 >> 8),
               static_cast<uint8_t>(v4)} {}
  // An IPv6 address, network byte order.
  [[nodiscard]] static constexpr IpAddress v6(const Bytes16& bytes) noexcept {
    IpAddress a;
    a.family_ = IpFamily::kIpv6;
    a.bytes_ = bytes;
    return a;
  }

  // "a.b.c.d" (no leading zeros, each octet 0..255) or an RFC 4291 text form ("fd00::1",
  // "2001:db8::a:b", "::ffff:1.2.3.4"); no zone ("%eth0"), no brackets, no prefix.
  [[nodiscard]] static std::optional<IpAddress> parse(std::string_view text) noexcept;

  [[nodiscard]] constexpr IpFamily family() const noexcept { return family_; }
  [[nodiscard]] constexpr bool isV4() const noexcept { return family_ == IpFamily::kIpv4; }
  [[nodiscard]] constexpr bool isV6() const noexcept { return family_ == IpFamily::kIpv6; }
  // IPv4 value, host byte order; 0 for an IPv6 address.
  [[nodiscard]] constexpr uint32_t v4() const noexcept {
    return isV4() ? uint32_t{bytes_[0]} << 24 | uint32_t{bytes_[1]} << 16 | uint32_t{bytes_[2]} << 8 | bytes_[3] : 0;
  }
  // The address in network byte order: 4 bytes (IPv4) or 16 (IPv6).
  [[nodiscard]] constexpr std::span<const uint8_t> bytes() const noexcept {
    return {bytes_.data(), isV4() ? size_t{4} : size_t{16}};
  }

  // The address's bit `i` counted from the most significant (0..31 or 0..127).
  [[nodiscard]] bool bit(unsigned i) const noexcept;
  [[nodiscard]] constexpr unsigned bits() const noexcept { return isV4() ? 32 : 128; }
  // This address with every bit from `length` on cleared (the network of a prefix).
  [[nodiscard]] IpAddress masked(unsigned length) const noexcept;
  // This address plus `n` (wrapping within the family), for walking a range.
  [[nodiscard]] IpAddress plus(uint64_t n) const noexcept;

  // True for an address that can name a host on the wire: not unspecified, loopback,
  // multicast, broadcast/reserved (IPv4 0/8, 127/8, 224/3), IPv4-mapped, or link-local
  // IPv6 (fe80::/10: valid only with a zone, which these settings have no place for).
  [[nodiscard]] bool isUnicastHost() const noexcept;
  [[nodiscard]] bool isLinkLocal() const noexcept;  // 169.254/16, fe80::/10

  // "10.0.0.1", "fd00::1" (RFC 5952 canonical form).
  [[nodiscard]] std::string str() const;

  // Family first, then the bytes: numeric order within a family (network byte order).
  friend constexpr bool operator==(const IpAddress&, const IpAddress&) noexcept = default;
  friend constexpr std::strong_ordering operator<=>(const IpAddress&, const IpAddress&) noexcept = default;

 private:
  // 17 bytes, byte-aligned: the compiler keeps millions of these at 10,000 Services x 300
  // nodes. An IPv4 address uses bytes 0..3, the rest stays zero (so == and <=> work).
  IpFamily family_ = IpFamily::kIpv4;
  Bytes16 bytes_{};
};
static_assert(sizeof(IpAddress) == 17);

// A network: address and prefix length (0..32 or 0..128).
struct IpPrefix {
  IpAddress address;
  uint8_t length = 32;

  // "10.0.0.0/24", "fd00::/64". The address's host bits may be set (a port's own
  // "10.0.0.1/24"); hasHostBits() tells.
  [[nodiscard]] static std::optional<IpPrefix> parse(std::string_view text) noexcept;
  [[nodiscard]] IpFamily family() const noexcept { return address.family(); }
  [[nodiscard]] bool hasHostBits() const noexcept { return address.masked(length) != address; }
  [[nodiscard]] IpPrefix network() const noexcept { return {.address = address.masked(length), .length = length}; }
  // Same family and inside the network.
  [[nodiscard]] bool contains(const IpAddress& a) const noexcept {
    return a.family() == address.family() && a.masked(length) == address.masked(length);
  }
  [[nodiscard]] bool overlaps(const IpPrefix& other) const noexcept;
  [[nodiscard]] std::string str() const { return address.str() + "/" + std::to_string(length); }

  friend bool operator==(const IpPrefix&, const IpPrefix&) = default;
  friend auto operator<=>(const IpPrefix&, const IpPrefix&) = default;
};

}  // namespace ng::conf

template <>
struct std::hash<ng::conf::IpAddress> {
  size_t operator()(const ng::conf::IpAddress& a) const noexcept;
};
