#include "conf/ip_address.h"

#include <arpa/inet.h>

#include <algorithm>
#include <charconv>

namespace ng::conf {

namespace {

// Unsigned decimal without sign or leading zeros, at most `max`.
std::optional<uint32_t> parseDecimal(std::string_view text, uint32_t max) noexcept {
  if (text.empty() || text.size() > 10 || (text.size() > 1 && text.front() == '0')) return std::nullopt;
  uint32_t value = 0;
  const char* end = text.data() + text.size();
  auto [ptr, ec] = std::from_chars(text.data(), end, value);
  if (ec != std::errc{} || ptr != end || value > max) return std::nullopt;
  return value;
}

// Strict dotted quad: inet_pton(AF_INET) is strict too, but say so in one place that
// also refuses what inet_aton would guess at ("010.1", "1.2.3").
std::optional<uint32_t> parseV4(std::string_view text) noexcept {
  uint32_t address = 0;
  for (int i = 0; i < 4; ++i) {
    const size_t dot = text.find('.');
    const bool last = i == 3;
    if (last != (dot == std::string_view::npos)) return std::nullopt;
    const auto octet = parseDecimal(text.substr(0, dot), 255);
    if (!octet) return std::nullopt;
    address = (address << 8) | *octet;
    text = last ? std::string_view{} : text.substr(dot + 1);
  }
  return address;
}

}  // namespace

std::optional<IpAddress> IpAddress::parse(std::string_view text) noexcept {
  if (text.find(':') == std::string_view::npos) {
    const auto v4 = parseV4(text);
    if (!v4) return std::nullopt;
    return IpAddress(*v4);
  }
  // inet_pton needs a NUL-terminated string; the longest IPv6 text form is 45 chars.
  char buffer[INET6_ADDRSTRLEN + 1];
  if (text.size() >= sizeof buffer) return std::nullopt;
  text.copy(buffer, text.size());
  buffer[text.size()] = '\0';
  Bytes16 bytes{};
  if (inet_pton(AF_INET6, buffer, bytes.data()) != 1) return std::nullopt;
  return IpAddress::v6(bytes);
}

bool IpAddress::bit(unsigned i) const noexcept {
  return i < bits() && ((bytes_[i / 8] >> (7 - i % 8)) & 1u) != 0;
}

IpAddress IpAddress::masked(unsigned length) const noexcept {
  IpAddress out = *this;
  Bytes16& bytes = out.bytes_;
  for (unsigned i = 0; i < 16; ++i) {
    const unsigned first = i * 8;
    if (length >= first + 8) continue;
    const unsigned keep = length > first ? length - first : 0;  // 0..7 bits of this byte
    bytes[i] &= static_cast<uint8_t>(keep == 0 ? 0 : 0xff << (8 - keep));
  }
  return out;
}

IpAddress IpAddress::plus(uint64_t n) const noexcept {
  if (isV4()) return IpAddress(static_cast<uint32_t>(v4() + n));
  Bytes16 bytes = bytes_;
  // Add n to the 128-bit big-endian number, carrying from the last byte.
  unsigned carry = 0;
  for (int i = 15; i >= 0; --i) {
    const unsigned sum = bytes[i] + static_cast<unsigned>(n & 0xff) + carry;
    bytes[i] = static_cast<uint8_t>(sum);
    carry = sum >> 8;
    n >>= 8;
    if (n == 0 && carry == 0) break;
  }
  return IpAddress::v6(bytes);
}

bool IpAddress::isLinkLocal() const noexcept {
  if (isV4()) return bytes_[0] == 169 && bytes_[1] == 254;
  return bytes_[0] == 0xfe && (bytes_[1] & 0xc0) == 0x80;
}

bool IpAddress::isUnicastHost() const noexcept {
  if (isV4()) return bytes_[0] != 0 && bytes_[0] != 127 && bytes_[0] < 224;
  if (bytes_[0] == 0xff) return false;  // multicast
  if (isLinkLocal()) return false;
  // ::/96 holds the unspecified and loopback addresses and the deprecated IPv4-compatible
  // ones; ::ffff:0:0/96 the IPv4-mapped ones. None names a host on an IPv6 wire.
  bool zero80 = true;
  for (int i = 0; i < 10; ++i) zero80 = zero80 && bytes_[i] == 0;
  if (zero80) {
    const bool w5 = bytes_[10] == 0 && bytes_[11] == 0;
    const bool mapped = bytes_[10] == 0xff && bytes_[11] == 0xff;
    if (w5 || mapped) return false;
  }
  return true;
}

std::string IpAddress::str() const {
  if (isV4()) {
    std::string text;
    for (int i = 0; i < 4; ++i) {
      if (i > 0) text += '.';
      text += std::to_string(bytes_[i]);
    }
    return text;
  }
  char buffer[INET6_ADDRSTRLEN];
  if (inet_ntop(AF_INET6, bytes_.data(), buffer, sizeof buffer) == nullptr) return "?";
  return buffer;
}

std::optional<IpPrefix> IpPrefix::parse(std::string_view text) noexcept {
  const size_t slash = text.find('/');
  if (slash == std::string_view::npos) return std::nullopt;
  const auto address = IpAddress::parse(text.substr(0, slash));
  if (!address) return std::nullopt;
  const auto length = parseDecimal(text.substr(slash + 1), address->bits());
  if (!length) return std::nullopt;
  return IpPrefix{.address = *address, .length = static_cast<uint8_t>(*length)};
}

bool IpPrefix::overlaps(const IpPrefix& other) const noexcept {
  if (family() != other.family()) return false;
  const unsigned shorter = std::min(length, other.length);
  return address.masked(shorter) == other.address.masked(shorter);
}

}  // namespace ng::conf

size_t std::hash<ng::conf::IpAddress>::operator()(const ng::conf::IpAddress& a) const noexcept {
  // FNV-1a over the family and the bytes: control-plane maps only.
  uint64_t h = 1469598103934665603ull;
  auto mix = [&h](uint8_t byte) { h = (h ^ byte) * 1099511628211ull; };
  mix(static_cast<uint8_t>(a.family()));
  for (uint8_t byte : a.bytes()) mix(byte);
  return static_cast<size_t>(h);
}
